//! Topic names, topic filters, and how a filter matches a name.
//!
//! A *topic name* is what a PUBLISH is sent to: `sensors/kitchen/temperature`. A *topic
//! filter* is what a SUBSCRIBE asks for, and may hold wildcards:
//!
//! | filter            | matches                                    | does not match            |
//! |-------------------|--------------------------------------------|---------------------------|
//! | `a/b`             | `a/b`                                      | `a/b/c`, `a`, `A/b`       |
//! | `a/+`             | `a/b`, `a/` (empty level)                  | `a`, `a/b/c`              |
//! | `+/+`             | `a/b`, `/b`, `/`                           | `a`, `a/b/c`              |
//! | `a/#`             | `a`, `a/`, `a/b`, `a/b/c`                  | `b/a`                     |
//! | `#`               | every topic not starting with `$`          | `$SYS/uptime`             |
//! | `+/uptime`        | `x/uptime`                                 | `$SYS/uptime`             |
//! | `$SYS/#`          | `$SYS/broker/uptime`                       |                           |
//!
//! Valid filters: `#`, `+`, `a/#`, `+/b/+`, `/`, `a//b`, `$SYS/+`.
//! Invalid filters: `` (empty), `a#`, `a/#/b`, `a/b#`, `a+`, `+a/b`, `a/+b`.
//! Invalid topic names: `` (empty), any name holding `+` or `#`.
//!
//! Levels are separated by `/`; an empty level is a level like any other, so `a//b`
//! has three levels and `/a` has two (the first one empty). Matching is by exact
//! bytes: no case folding and no Unicode normalisation ([MQTT-4.7.3-4]).
//!
//! Both types are checked when they are made, so code that holds a [`TopicName`] or a
//! [`TopicFilter`] never has to check again. Cloning one never copies the string. A
//! topic name decoded from a PUBLISH shares the packet's buffer with the payload; a
//! decoded filter has its own few bytes, because a subscription outlives the packet
//! that made it and should not keep that packet's buffer alive. `compact` gives a
//! name or filter its own bytes, for what is stored longer than one delivery.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

use super::error::TopicError;

/// The longest string MQTT can carry: its length prefix is two bytes.
pub const MAX_STRING_LEN: usize = 65_535;

/// A string of UTF-8 held in shared [`Bytes`].
///
/// Private building block of [`TopicName`] and [`TopicFilter`]: it lets a decoded topic
/// point into the packet's buffer instead of being copied into a `String`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    fn from_string(s: String) -> Self {
        Utf8Bytes(Bytes::from(s.into_bytes()))
    }

    /// Wraps `bytes` if they are UTF-8 that passes `check`. On failure the bytes come
    /// back with the reason: `None` for ill-formed UTF-8, else the rule broken.
    fn try_from_bytes(
        bytes: Bytes,
        check: fn(&[u8]) -> Result<(), TopicError>,
    ) -> Result<Self, (Bytes, Option<TopicError>)> {
        if is_plain_ascii(&bytes) {
            // Plain ASCII is UTF-8 and holds neither U+0000 nor a wildcard: only the
            // length rules are left, and they are the same for names and filters.
            return match check_len(bytes.len()) {
                Ok(()) => Ok(Utf8Bytes(bytes)),
                Err(error) => Err((bytes, Some(error))),
            };
        }
        // The rules look at bytes (see `check_name`); UTF-8 needs checking only when
        // something is not ASCII.
        let checked = if bytes.is_ascii() || std::str::from_utf8(&bytes).is_ok() {
            check(&bytes).map_err(Some)
        } else {
            Err(None)
        };
        match checked {
            Ok(()) => Ok(Utf8Bytes(bytes)),
            Err(error) => Err((bytes, error)),
        }
    }

    /// Moves the bytes into an allocation of their own, exactly their size (see
    /// [`TopicName::compact`]).
    fn compact(&mut self) {
        self.0 = Bytes::copy_from_slice(&self.0);
    }

    /// Takes `copy`, the same bytes held elsewhere.
    fn use_copy(&mut self, copy: Bytes) {
        debug_assert_eq!(copy, self.0);
        self.0 = copy;
    }

    /// The number of `/`-separated levels: one more than the number of `/`.
    fn levels(&self) -> usize {
        1 + self.0.iter().filter(|&&byte| byte == b'/').count()
    }

    fn as_str(&self) -> &str {
        // SAFETY: every constructor above checks valid UTF-8 (plain ASCII is), or is
        // given a `String`, and the bytes are never changed afterwards.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }
}

// Validation looks at bytes, not characters. U+0000, `#`, `+` and `/` are ASCII, and
// in UTF-8 no byte of a multi-byte character is below 0x80, so a byte equal to one of
// them is that character. The three that need a closer look are all at most `+`
// (0x2B), so the loops skip letters, digits, `/` and every non-ASCII byte with one
// comparison: every PUBLISH topic and every SUBSCRIBE filter goes through them.

/// The length rules that names and filters share, for a topic of `len` bytes.
fn check_len(len: usize) -> Result<(), TopicError> {
    if len == 0 {
        return Err(TopicError::Empty);
    }
    if len > MAX_STRING_LEN {
        return Err(TopicError::TooLong(len));
    }
    Ok(())
}

/// The lowest byte that never needs a closer look: `,` (0x2C), just above `+`.
const ABOVE_WILDCARDS: u8 = b'+' + 1;
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Eight bytes as one word (`chunk` is eight bytes long).
fn word(chunk: &[u8]) -> u64 {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(chunk);
    u64::from_le_bytes(bytes)
}

/// Whether some byte of `x` is below 0x2C: the classic "has a byte less than n" test,
/// `(x - n * ONES) & !x & HIGH`, whose answer is exact for n <= 128.
fn has_low_byte(x: u64) -> bool {
    x.wrapping_sub(ONES * u64::from(ABOVE_WILDCARDS)) & !x & HIGH != 0
}

/// Whether every byte is ASCII from `,` (0x2C) to DEL (0x7F): letters, digits, `/`,
/// `-`, `_`, `.` and the like, which is what nearly every topic is made of. Such a
/// string is UTF-8 and holds neither U+0000 nor a wildcard. Eight bytes at a time.
fn is_plain_ascii(bytes: &[u8]) -> bool {
    let plain = |x: u64| x & HIGH == 0 && !has_low_byte(x);
    if bytes.len() < 8 {
        return bytes
            .iter()
            .all(|&byte| (ABOVE_WILDCARDS..0x80).contains(&byte));
    }
    // Whole words, then the last eight bytes as one more word, overlapping the last
    // whole word rather than going through the remainder byte by byte.
    let chunks = bytes.chunks_exact(8);
    let tail = &bytes[bytes.len() - 8..];
    chunks.fold(true, |all, chunk| all & plain(word(chunk))) && plain(word(tail))
}

/// Calls `visit` with the index and value of every byte below 0x2C: U+0000, the two
/// wildcards, and some punctuation that needs no closer look. Eight bytes with none
/// of them are skipped at once.
fn for_each_low_byte(
    bytes: &[u8],
    mut visit: impl FnMut(usize, u8) -> Result<(), TopicError>,
) -> Result<(), TopicError> {
    for (number, chunk) in bytes.chunks(8).enumerate() {
        if chunk.len() == 8 && !has_low_byte(word(chunk)) {
            continue;
        }
        for (offset, &byte) in chunk.iter().enumerate() {
            if byte < ABOVE_WILDCARDS {
                visit(number * 8 + offset, byte)?;
            }
        }
    }
    Ok(())
}

fn check_name(topic: &[u8]) -> Result<(), TopicError> {
    check_len(topic.len())?;
    let mut wildcard = false;
    for_each_low_byte(topic, |_, byte| match byte {
        0 => Err(TopicError::NullCharacter),
        b'+' | b'#' => {
            wildcard = true; // reported unless a null character follows
            Ok(())
        }
        _ => Ok(()),
    })?;
    if wildcard {
        return Err(TopicError::WildcardInTopicName);
    }
    Ok(())
}

fn check_filter(filter: &[u8]) -> Result<(), TopicError> {
    check_len(filter.len())?;
    let mut misplaced = None;
    for_each_low_byte(filter, |index, byte| {
        match byte {
            0 => return Err(TopicError::NullCharacter),
            b'+' | b'#' if misplaced.is_none() && !fills_its_level(filter, index) => {
                misplaced = Some(index); // reported unless a null character follows
            }
            _ => {}
        }
        Ok(())
    })?;
    match misplaced {
        Some(index) => Err(misplaced_wildcard(filter, index)),
        None => Ok(()),
    }
}

/// Whether the wildcard at `index` is where section 4.7.1 allows it: `+` alone in
/// its level, `#` alone in the last level.
fn fills_its_level(filter: &[u8], index: usize) -> bool {
    let starts_level = index == 0 || filter[index - 1] == b'/';
    let ends_level = index + 1 == filter.len() || filter[index + 1] == b'/';
    match filter[index] {
        b'#' => starts_level && index + 1 == filter.len(),
        _ => starts_level && ends_level,
    }
}

/// The error for the first misplaced wildcard, at `index`: a level holding `#` breaks
/// [MQTT-4.7.1-2] whatever else it holds; otherwise it is a `+` breaking
/// [MQTT-4.7.1-3].
fn misplaced_wildcard(filter: &[u8], index: usize) -> TopicError {
    let start = filter[..index]
        .iter()
        .rposition(|&byte| byte == b'/')
        .map_or(0, |slash| slash + 1);
    let end = filter[index..]
        .iter()
        .position(|&byte| byte == b'/')
        .map_or(filter.len(), |slash| index + slash);
    if filter[start..end].contains(&b'#') {
        TopicError::MisplacedMultiLevelWildcard
    } else {
        TopicError::MisplacedSingleLevelWildcard
    }
}

/// A valid topic name: what a PUBLISH is sent to. Non-empty, at most 65,535 bytes, no
/// U+0000 and no wildcard.
///
/// ```
/// use wren::protocol::TopicName;
///
/// let topic = TopicName::new("sensors/kitchen/temperature")?;
/// assert_eq!(topic.as_str(), "sensors/kitchen/temperature");
/// assert!(TopicName::new("sensors/+/temperature").is_err());
/// # Ok::<(), wren::protocol::TopicError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(Utf8Bytes);

impl TopicName {
    /// Checks `name` against the rules of section 4.7.
    pub fn new(name: impl Into<String>) -> Result<Self, TopicError> {
        let name = name.into();
        check_name(name.as_bytes())?;
        Ok(TopicName(Utf8Bytes::from_string(name)))
    }

    /// Checks decoded bytes, sharing them on success and giving them back with the
    /// reason on failure (`None`: not UTF-8).
    pub(crate) fn from_bytes(bytes: Bytes) -> Result<Self, (Bytes, Option<TopicError>)> {
        Utf8Bytes::try_from_bytes(bytes, check_name).map(TopicName)
    }

    /// The empty topic name of an MQTT 5 PUBLISH that names its topic by a Topic
    /// Alias alone (section 3.3.2.3.4). Only such a PUBLISH may carry it; every other
    /// topic name has at least one character [MQTT-4.7.3-1].
    pub fn empty_for_alias() -> TopicName {
        TopicName(Utf8Bytes(Bytes::new()))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Whether the name starts with `$`, as `$SYS/...` does. Filters that start with a
    /// wildcard do not match such names ([MQTT-4.7.2-1]).
    pub fn is_system(&self) -> bool {
        self.as_str().starts_with('$')
    }

    /// The number of levels: `/` separates them and an empty level counts, so a
    /// broker can refuse topics deeper than it is willing to store.
    ///
    /// ```
    /// use wren::protocol::TopicName;
    ///
    /// assert_eq!(TopicName::new("a")?.levels(), 1);
    /// assert_eq!(TopicName::new("/")?.levels(), 2);
    /// assert_eq!(TopicName::new("a//b")?.levels(), 3);
    /// # Ok::<(), wren::protocol::TopicError>(())
    /// ```
    pub fn levels(&self) -> usize {
        self.0.levels()
    }

    /// Copies the name into an allocation of its own, exactly its size.
    ///
    /// A name decoded from a PUBLISH points into the buffer the packet was read into,
    /// which also held the payload and possibly other packets: as long as the name
    /// lives, that whole buffer stays allocated. That is right for a message on its
    /// way, and wrong for one kept for long (a retained or queued message, a
    /// subscription made from a name): a few bytes of topic could pin kilobytes.
    /// Compact what you store for longer than one delivery; it costs one copy.
    ///
    /// ```
    /// use wren::protocol::TopicName;
    ///
    /// let mut topic = TopicName::new("a/b")?;
    /// topic.compact();
    /// assert_eq!(topic, "a/b");
    /// # Ok::<(), wren::protocol::TopicError>(())
    /// ```
    pub fn compact(&mut self) {
        self.0.compact();
    }

    /// Holds `copy` instead of its bytes: the same bytes, in an allocation the
    /// caller made (see [`Publish::compact`](super::Publish::compact)).
    pub(crate) fn use_copy(&mut self, copy: Bytes) {
        self.0.use_copy(copy);
    }
}

/// A valid topic filter: what a SUBSCRIBE asks for. A topic name, or one with `+`
/// filling whole levels and `#` filling the last level.
///
/// ```
/// use wren::protocol::{TopicFilter, TopicName};
///
/// let filter = TopicFilter::new("sensors/+/temperature")?;
/// assert!(filter.matches(&TopicName::new("sensors/kitchen/temperature")?));
/// assert!(!filter.matches(&TopicName::new("sensors/kitchen/humidity")?));
/// assert!(TopicFilter::new("sensors/#/temperature").is_err());
/// # Ok::<(), wren::protocol::TopicError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicFilter(Utf8Bytes);

impl TopicFilter {
    /// Checks `filter` against the rules of section 4.7.
    pub fn new(filter: impl Into<String>) -> Result<Self, TopicError> {
        let filter = filter.into();
        check_filter(filter.as_bytes())?;
        Ok(TopicFilter(Utf8Bytes::from_string(filter)))
    }

    /// Checks decoded bytes, sharing them on success and giving them back with the
    /// reason on failure (`None`: not UTF-8).
    pub(crate) fn from_bytes(bytes: Bytes) -> Result<Self, (Bytes, Option<TopicError>)> {
        Utf8Bytes::try_from_bytes(bytes, check_filter).map(TopicFilter)
    }

    /// The filter as a string slice.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Whether the filter holds `+` or `#`.
    pub fn has_wildcards(&self) -> bool {
        self.as_str().contains(['+', '#'])
    }

    /// The number of levels, wildcards included: `/` separates them and an empty
    /// level counts, so a broker can refuse filters deeper than it is willing to
    /// store.
    ///
    /// ```
    /// use wren::protocol::TopicFilter;
    ///
    /// assert_eq!(TopicFilter::new("a")?.levels(), 1);
    /// assert_eq!(TopicFilter::new("/")?.levels(), 2);
    /// assert_eq!(TopicFilter::new("a//b")?.levels(), 3);
    /// assert_eq!(TopicFilter::new("a/+/#")?.levels(), 3);
    /// # Ok::<(), wren::protocol::TopicError>(())
    /// ```
    pub fn levels(&self) -> usize {
        self.0.levels()
    }

    /// Copies the filter into an allocation of its own, exactly its size.
    ///
    /// A decoded filter already has its own bytes, but one made from a decoded
    /// [`TopicName`] (through `From`) shares the buffer of the PUBLISH it came from,
    /// and keeps that whole buffer allocated for as long as it lives. Compact a
    /// filter before storing it for long (as a subscription); it costs one copy.
    pub fn compact(&mut self) {
        self.0.compact();
    }

    /// Splits a shared subscription filter (MQTT 5 section 4.8.2)
    /// `$share/{ShareName}/{filter}` into its ShareName and the filter its group
    /// subscribes to: `Ok(None)` for an ordinary filter, including `$shared/a` or
    /// `$SHARE/a/b` (the prefix is compared exactly).
    ///
    /// The ShareName is at least one character [MQTT-4.8.2-1], holds neither `/`,
    /// `+` nor `#`, and is followed by `/` and a topic filter [MQTT-4.8.2-2]; the
    /// level checks of [`TopicFilter::new`] already refuse a wildcard sharing a level
    /// with other characters, so this is left to refuse a ShareName that is `+` or
    /// `#`. Match topics against the filter part, not the whole text (which
    /// [`matches`](Self::matches) would take literally): its wildcards follow the
    /// usual rules from its own first level, so `$share/g/#` receives `a/b` but not
    /// `$SYS/x` [MQTT-4.7.2-1].
    ///
    /// ```
    /// use wren::protocol::{TopicError, TopicFilter};
    ///
    /// let shared = TopicFilter::new("$share/workers/jobs/+")?;
    /// assert_eq!(shared.shared()?, Some(("workers", "jobs/+")));
    /// assert_eq!(TopicFilter::new("jobs/+")?.shared()?, None);
    /// assert_eq!(
    ///     TopicFilter::new("$share/workers")?.shared(),
    ///     Err(TopicError::MissingSharedFilter)
    /// );
    /// assert_eq!(
    ///     TopicFilter::new("$share/+/jobs")?.shared(),
    ///     Err(TopicError::WildcardInShareName)
    /// );
    /// # Ok::<(), wren::protocol::TopicError>(())
    /// ```
    pub fn shared(&self) -> Result<Option<(&str, &str)>, TopicError> {
        let Some(rest) = self.as_str().strip_prefix("$share") else {
            return Ok(None);
        };
        let rest = match rest.strip_prefix('/') {
            Some(rest) => rest,
            None if rest.is_empty() => return Err(TopicError::MissingShareName),
            // `$shared/...`: an ordinary filter whose first level merely starts so.
            None => return Ok(None),
        };
        let (name, filter) = rest.split_once('/').unwrap_or((rest, ""));
        if name.is_empty() {
            return Err(TopicError::MissingShareName);
        }
        if name.contains(['+', '#']) {
            return Err(TopicError::WildcardInShareName);
        }
        if filter.is_empty() {
            return Err(TopicError::MissingSharedFilter);
        }
        Ok(Some((name, filter)))
    }

    /// Whether a message published to `topic` reaches a subscription to this filter.
    pub fn matches(&self, topic: &TopicName) -> bool {
        matches(self.as_str(), topic.as_str())
    }
}

/// Whether `filter` matches `topic`, both assumed valid (see [`TopicFilter::matches`]).
///
/// ```
/// use wren::protocol::topic::matches;
///
/// assert!(matches("a/#", "a"));
/// assert!(matches("+/+", "/"));
/// assert!(!matches("#", "$SYS/broker/uptime"));
/// assert!(matches("$SYS/#", "$SYS/broker/uptime"));
/// ```
pub fn matches(filter: &str, topic: &str) -> bool {
    // [MQTT-4.7.2-1]: a filter starting with a wildcard must not match a topic
    // starting with '$'.
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut topic_levels = topic.split('/');
    for filter_level in filter.split('/') {
        if filter_level == "#" {
            // '#' also matches the parent level: "a/#" matches "a" [MQTT-4.7.1-2].
            return true;
        }
        match topic_levels.next() {
            Some(topic_level) if filter_level == "+" || filter_level == topic_level => {}
            _ => return false,
        }
    }
    topic_levels.next().is_none()
}

macro_rules! string_like {
    ($type:ident) => {
        impl Deref for $type {
            type Target = str;
            fn deref(&self) -> &str {
                self.as_str()
            }
        }

        impl AsRef<str> for $type {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl fmt::Debug for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.as_str(), f)
            }
        }

        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $type {
            type Err = TopicError;
            fn from_str(s: &str) -> Result<Self, TopicError> {
                $type::new(s)
            }
        }

        impl TryFrom<&str> for $type {
            type Error = TopicError;
            fn try_from(s: &str) -> Result<Self, TopicError> {
                $type::new(s)
            }
        }

        impl TryFrom<String> for $type {
            type Error = TopicError;
            fn try_from(s: String) -> Result<Self, TopicError> {
                $type::new(s)
            }
        }

        impl PartialEq<str> for $type {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $type {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

string_like!(TopicName);
string_like!(TopicFilter);

impl From<TopicName> for TopicFilter {
    /// Every topic name is a filter that matches only itself.
    fn from(name: TopicName) -> Self {
        TopicFilter(name.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_filters_are_accepted() {
        for filter in [
            "#", "+", "a/#", "+/b/+", "/", "a//b", "$SYS/+", "+/+/#", "a/+/#",
        ] {
            assert!(TopicFilter::new(filter).is_ok(), "{filter}");
        }
    }

    #[test]
    fn hash_must_be_last_and_alone_in_its_level_mqtt_4_7_1_2() {
        for filter in ["a#", "a/#/b", "a/b#", "#/a", "##"] {
            assert_eq!(
                TopicFilter::new(filter),
                Err(TopicError::MisplacedMultiLevelWildcard),
                "{filter}"
            );
        }
    }

    #[test]
    fn plus_must_fill_its_level_mqtt_4_7_1_3() {
        for filter in ["a+", "+a/b", "a/+b", "a/b+/c", "++"] {
            assert_eq!(
                TopicFilter::new(filter),
                Err(TopicError::MisplacedSingleLevelWildcard),
                "{filter}"
            );
        }
    }

    #[test]
    fn topic_names_have_no_wildcards_mqtt_4_7_1_1() {
        for name in ["a/+", "#", "a/#", "a+b", "a#b"] {
            assert_eq!(
                TopicName::new(name),
                Err(TopicError::WildcardInTopicName),
                "{name}"
            );
        }
    }

    #[test]
    fn empty_topics_are_refused_mqtt_4_7_3_1() {
        assert_eq!(TopicName::new(""), Err(TopicError::Empty));
        assert_eq!(TopicFilter::new(""), Err(TopicError::Empty));
    }

    #[test]
    fn null_characters_are_refused_mqtt_4_7_3_2() {
        assert_eq!(TopicName::new("a\0b"), Err(TopicError::NullCharacter));
        assert_eq!(TopicFilter::new("a/\0"), Err(TopicError::NullCharacter));
    }

    #[test]
    fn topics_longer_than_65535_bytes_are_refused_mqtt_4_7_3_3() {
        let longest = "a".repeat(65_535);
        assert!(TopicName::new(longest.clone()).is_ok());
        assert_eq!(
            TopicName::new(longest + "a"),
            Err(TopicError::TooLong(65_536))
        );
    }

    #[test]
    fn filters_match_as_section_4_7_describes() {
        let cases = [
            ("a/b", "a/b", true),
            ("a/b", "a/b/c", false),
            ("a/b", "A/b", false),
            ("a/+", "a/b", true),
            ("a/+", "a/", true),
            ("a/+", "a", false),
            ("a/+", "a/b/c", false),
            ("+/+", "/", true),
            ("+/+", "/b", true),
            ("+", "a", true),
            ("+", "/a", false),
            ("a/#", "a", true),
            ("a/#", "a/", true),
            ("a/#", "a/b/c", true),
            ("a/#", "b/a", false),
            ("#", "a/b/c", true),
            ("#", "/", true),
            ("a//b", "a//b", true),
            ("a/+/b", "a//b", true),
            ("sport/tennis/+", "sport/tennis/player1", true),
            ("sport/tennis/+", "sport/tennis/player1/ranking", false),
            ("sport/+", "sport", false),
            ("sport/+", "sport/", true),
            ("+/tennis/#", "sport/tennis/player1/ranking", true),
        ];
        for (filter, topic, expected) in cases {
            assert_eq!(matches(filter, topic), expected, "{filter} ~ {topic}");
        }
    }

    #[test]
    fn wildcards_at_the_start_do_not_match_dollar_topics_mqtt_4_7_2_1() {
        assert!(!matches("#", "$SYS/broker/uptime"));
        assert!(!matches("+/broker/uptime", "$SYS/broker/uptime"));
        assert!(!matches("+", "$SYS"));
        assert!(matches("$SYS/#", "$SYS/broker/uptime"));
        assert!(matches("$SYS/+/uptime", "$SYS/broker/uptime"));
        assert!(matches("a/#", "a/$b"));
    }

    #[test]
    fn levels_count_empty_levels_too() {
        for (topic, levels) in [("a", 1), ("/", 2), ("a//b", 3), ("/a/", 3), ("$SYS/x", 2)] {
            assert_eq!(TopicName::new(topic).unwrap().levels(), levels, "{topic}");
            assert_eq!(TopicFilter::new(topic).unwrap().levels(), levels, "{topic}");
        }
        assert_eq!(TopicFilter::new("+/+/#").unwrap().levels(), 3);
        assert_eq!(
            TopicName::new("/".repeat(MAX_STRING_LEN)).unwrap().levels(),
            65_536
        );
    }

    /// Whether `inner` lies inside the bytes of `outer`.
    fn points_into(inner: &[u8], outer: &[u8]) -> bool {
        let outer = outer.as_ptr_range();
        outer.contains(&inner.as_ptr())
    }

    #[test]
    fn compacting_stops_sharing_the_buffer_the_topic_came_from() {
        let buffer = Bytes::from(b"a/b and the rest of a large read buffer".to_vec());
        let mut name = TopicName::from_bytes(buffer.slice(..3)).unwrap();
        let mut filter = TopicFilter::from(name.clone());
        assert!(points_into(name.as_bytes(), &buffer));
        assert!(points_into(filter.as_bytes(), &buffer));
        name.compact();
        filter.compact();
        assert!(!points_into(name.as_bytes(), &buffer));
        assert!(!points_into(filter.as_bytes(), &buffer));
        assert_eq!((name.as_str(), filter.as_str()), ("a/b", "a/b"));
    }

    #[test]
    fn shared_filters_split_into_share_name_and_filter_mqtt_4_8_2() {
        let cases = [
            ("$share/g/a/b", Some(("g", "a/b"))),
            ("$share/g/#", Some(("g", "#"))),
            ("$share/g/+/x", Some(("g", "+/x"))),
            ("$share/g//", Some(("g", "/"))),
            ("$share/g/$SYS/#", Some(("g", "$SYS/#"))),
            ("$share/a.b-c/$share/x", Some(("a.b-c", "$share/x"))),
            ("a/b", None),
            ("#", None),
            ("$shared/g/a", None),
            ("$SHARE/g/a", None),
            ("$SYS/#", None),
            ("x/$share/g/a", None),
        ];
        for (filter, expected) in cases {
            assert_eq!(
                TopicFilter::new(filter).unwrap().shared(),
                Ok(expected),
                "{filter}"
            );
        }
    }

    #[test]
    fn shared_filters_need_a_share_name_and_a_filter_mqtt_4_8_2_1_and_2() {
        let cases = [
            ("$share", TopicError::MissingShareName),
            ("$share/", TopicError::MissingShareName),
            ("$share//a", TopicError::MissingShareName),
            ("$share/g", TopicError::MissingSharedFilter),
            ("$share/g/", TopicError::MissingSharedFilter),
            ("$share/+/a", TopicError::WildcardInShareName),
            ("$share/#", TopicError::WildcardInShareName),
        ];
        for (filter, error) in cases {
            assert_eq!(
                TopicFilter::new(filter).unwrap().shared(),
                Err(error),
                "{filter}"
            );
        }
        // A wildcard sharing the ShareName's level is refused as any misplaced one is.
        assert!(TopicFilter::new("$share/g+/a").is_err());
        assert!(TopicFilter::new("$share/g#/a").is_err());
    }

    #[test]
    fn a_byte_order_mark_is_kept_and_matched_exactly_mqtt_1_5_3_3() {
        let with_bom = TopicName::new("\u{FEFF}a/b").unwrap();
        assert_eq!(with_bom.as_bytes(), b"\xEF\xBB\xBFa/b");
        assert!(matches("\u{FEFF}a/b", &with_bom));
        assert!(!matches("a/b", &with_bom));
    }
}
