//! Access control lists: who may publish to, subscribe to and receive which topics.
//!
//! An [`Acl`] is read from one of two formats:
//!
//! - **mosquitto's `acl_file`** ([`Acl::from_mosquitto_file`]):
//!
//!   ```text
//!   # Rules before the first `user` line are for clients without a user name.
//!   topic read public/#
//!
//!   user alice
//!   topic readwrite alice/#
//!   topic deny alice/secret
//!
//!   # Patterns apply to every client; %u is its user name, %c its client id.
//!   pattern readwrite users/%u/#
//!   pattern read clients/%c/cmd
//!   ```
//!
//!   `topic [read|write|readwrite|deny] <filter>`: with no access word the rule is
//!   `readwrite`; the rest of the line is the filter, spaces included, so a line
//!   cannot end in a comment.
//!
//! - **hbmqtt / amqtt `topic-check`** ([`Acl::from_topic_check`]): a map from user name
//!   (`anonymous` for clients without one) to the filters that user may publish and
//!   subscribe to.
//!
//! # How a request is decided
//!
//! The rules considered are the client's own (its user's, or the anonymous ones)
//! and every pattern. If any of them that applies is `deny`, the request is
//! refused, wherever that rule stands in the file; otherwise it is allowed if one of
//! them that applies grants the access asked for; otherwise it is refused. So an
//! empty ACL allows nothing, and a client the file does not mention gets only what
//! the patterns give it.
//!
//! A rule *applies* to a PUBLISH or a delivery when its filter matches the topic
//! name, and to a SUBSCRIBE when its filter **covers** the requested filter: when
//! every topic the request could match is matched by the rule too.
//!
//! | rule | request | covered? |
//! |---|---|---|
//! | `a/#` | `a/+/b`, `a/#`, `a`, `a/b` | yes |
//! | `a/+` | `a/b`, `a/+` | yes |
//! | `a/+` | `a/#`, `a/b/c` | no |
//! | `+` | `#` | no |
//! | `+/#` | `#` | yes: both match every topic with one level or more |
//! | `a/b` | `a/+` | no |
//! | `#` | `$SYS/#` | no: filters starting with a wildcard never reach `$` topics |
//!
//! A rule whose filter starts with a wildcard never applies to a topic starting with
//! `$` ([MQTT-4.7.2-1]); `$SYS/...` takes a rule that names it.
//!
//! A subscription can be allowed while some of the topics it matches are denied
//! (`alice/#` above, with `alice/secret` denied). The broker must therefore also ask
//! [`Acl::can_receive`] before delivering each message, as mosquitto does.
//!
//! mosquitto 2.0 grants every SUBSCRIBE and filters only at delivery; wren's
//! [`Acl::can_subscribe`] is stricter, so that a client learns from its SUBACK that
//! it may not read there instead of waiting for messages that never come.
//!
//! # Patterns and hostile names
//!
//! `%u` and `%c` fill whole levels only. A user name or client id that holds `+`,
//! `#` or `/`, is empty, or starts with `$` where it would become the first level,
//! could make a pattern match other clients' topics (mosquitto CVE-2017-7650: a
//! client with the id `+` would turn `clients/%c/cmd` into `clients/+/cmd` and read
//! every client's commands; the user `bob/x` would write below `users/bob/`).
//! Such a value is never substituted: an allowing pattern then grants nothing, and a
//! denying pattern denies the request outright, since it cannot be evaluated safely.
//! (mosquitto, since that fix, denies such clients everything as soon as the file
//! has any pattern; wren still applies their own `topic` rules.)
//! A pattern with `%u` does not apply to a client without a user name.

mod mosquitto;

use std::collections::HashMap;
use std::path::Path;

use super::error::{AclLineError, Error};
use crate::protocol::topic;
use crate::protocol::{TopicFilter, TopicName};

/// What a rule allows (or, for `Deny`, forbids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Access {
    /// Subscribe to and receive matching topics.
    Read,
    /// Publish to matching topics.
    Write,
    /// Both: the default when a rule names no access.
    ReadWrite,
    /// Nothing, whatever other rules say.
    Deny,
}

impl Access {
    fn grants(self, wanted: Wanted) -> bool {
        matches!(
            (self, wanted),
            (Access::ReadWrite, _) | (Access::Read, Wanted::Read) | (Access::Write, Wanted::Write)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    Read,
    Write,
}

/// One request to decide.
#[derive(Clone, Copy)]
enum Request<'a> {
    Publish(&'a TopicName),
    Receive(&'a TopicName),
    Subscribe(&'a TopicFilter),
    /// A subscription that must not match any denied topic either.
    SubscribeAll(&'a TopicFilter),
}

impl Request<'_> {
    fn wanted(self) -> Wanted {
        match self {
            Request::Publish(_) => Wanted::Write,
            Request::Receive(_) | Request::Subscribe(_) | Request::SubscribeAll(_) => Wanted::Read,
        }
    }

    /// Whether a rule with this filter applies to the request.
    fn is_matched_by(self, rule_filter: &str) -> bool {
        match self {
            Request::Publish(name) | Request::Receive(name) => {
                rule_matches_topic(rule_filter, name.as_str())
            }
            Request::Subscribe(filter) | Request::SubscribeAll(filter) => {
                rule_covers_filter(rule_filter, filter.as_str())
            }
        }
    }

    /// Whether a `deny` rule with this filter refuses the request.
    fn is_denied_by(self, rule_filter: &str) -> bool {
        match self {
            Request::SubscribeAll(filter) => filters_overlap(rule_filter, filter.as_str()),
            _ => self.is_matched_by(rule_filter),
        }
    }
}

/// Whether a rule's filter matches a topic name. Besides the usual matching, a topic
/// starting with `$` is reached only by a rule that starts with `$` too, as in
/// mosquitto.
fn rule_matches_topic(rule: &str, topic_name: &str) -> bool {
    if topic_name.starts_with('$') && !rule.starts_with('$') {
        return false;
    }
    topic::matches(rule, topic_name)
}

/// Whether some topic name is matched by both filters.
fn filters_overlap(a: &str, b: &str) -> bool {
    // A filter starting with a wildcard matches no '$' topic; one starting with a
    // literal '$' level matches nothing else.
    let dollar = |f: &str| f.starts_with('$');
    let wild = |f: &str| f.starts_with(['+', '#']);
    if (dollar(a) && wild(b)) || (dollar(b) && wild(a)) {
        return false;
    }
    // As in `rule_covers_filter`: "#" and "/#" cannot match their empty parent.
    let a = without_empty_parent(a);
    let b = without_empty_parent(b);
    let mut a_levels = a.split('/');
    let mut b_levels = b.split('/');
    loop {
        match (a_levels.next(), b_levels.next()) {
            (Some("#"), _) | (_, Some("#")) => return true,
            (Some(x), Some(y)) => {
                if x != "+" && y != "+" && x != y {
                    return false;
                }
            }
            (None, None) => return true,
            // One ended where the other goes on, and not with "#" (the first arm).
            _ => return false,
        }
    }
}

/// `#` and `/#` written as `+/#` and `/+/#`, which match the same topics: the
/// parent level `#` also matches would be the empty topic, which cannot exist.
fn without_empty_parent(filter: &str) -> &str {
    match filter {
        "#" => "+/#",
        "/#" => "/+/#",
        other => other,
    }
}

/// Whether every topic that `requested` matches is matched by `rule` too.
fn rule_covers_filter(rule: &str, requested: &str) -> bool {
    if requested.starts_with('$') && !rule.starts_with('$') {
        return false;
    }
    // "x/#" matches its parent "x" too, so it is wider than "x/+/#". But when the
    // parent would be the empty topic, which no PUBLISH can have, "#" is no wider
    // than "+/#" and "/#" no wider than "/+/#": compare those forms, so that a rule
    // "+/#" covers a request for "#".
    let requested = without_empty_parent(requested);
    let mut rule_levels = rule.split('/');
    let mut requested_levels = requested.split('/');
    loop {
        match (rule_levels.next(), requested_levels.next()) {
            // `#` covers whatever is left, and also its parent level ("a/#" matches
            // "a"), so it covers a request that ends here.
            (Some("#"), _) => return true,
            // `+` covers one level of any kind, but not the many levels of `#`.
            (Some("+"), Some(level)) => {
                if level == "#" {
                    return false;
                }
            }
            // A literal level covers only itself: a wildcard in the request could
            // reach other levels.
            (Some(rule_level), Some(level)) => {
                if rule_level != level {
                    return false;
                }
            }
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[derive(Debug, Clone)]
struct Rule {
    access: Access,
    filter: TopicFilter,
}

/// A `pattern` rule: a filter with `%u` / `%c` levels.
#[derive(Debug, Clone)]
struct Pattern {
    access: Access,
    levels: Vec<PatternLevel>,
    /// As written, for log messages.
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PatternLevel {
    Text(String),
    UserName,
    ClientId,
}

enum Substitution {
    Filter(String),
    /// `%u` for a client without a user name.
    NotApplicable,
    /// The value would widen the pattern.
    Refused {
        /// `user name` or `client id`.
        what: &'static str,
        /// How the value would widen it.
        reason: &'static str,
    },
}

impl Pattern {
    fn substitute(&self, user: Option<&str>, client_id: &str) -> Substitution {
        let mut filter = String::new();
        for (index, level) in self.levels.iter().enumerate() {
            if index > 0 {
                filter.push('/');
            }
            let (what, value) = match level {
                PatternLevel::Text(text) => {
                    filter.push_str(text);
                    continue;
                }
                PatternLevel::UserName => match user {
                    Some(user) => ("user name", user),
                    None => return Substitution::NotApplicable,
                },
                PatternLevel::ClientId => ("client id", client_id),
            };
            if let Some(reason) = unsafe_value(value, index == 0) {
                return Substitution::Refused { what, reason };
            }
            filter.push_str(value);
        }
        Substitution::Filter(filter)
    }
}

/// Why `value` must not fill a pattern level, if it must not.
fn unsafe_value(value: &str, first_level: bool) -> Option<&'static str> {
    if value.is_empty() {
        Some("is empty")
    } else if value.contains(['+', '#']) {
        Some("contains a wildcard ('+' or '#')")
    } else if value.contains('/') {
        Some("contains '/'")
    } else if value.contains('\0') {
        Some("contains U+0000")
    } else if first_level && value.starts_with('$') {
        Some("starts with '$', which would reach the broker's $ topics")
    } else {
        None
    }
}

/// Access rules for publishing, subscribing and receiving; see the
/// [module docs](self) for the formats and how requests are decided.
///
/// ```
/// use wren::auth::Acl;
/// use wren::protocol::{TopicFilter, TopicName};
///
/// let acl = Acl::parse_mosquitto(
///     "topic read public/#\n\
///      user alice\n\
///      topic readwrite alice/#\n\
///      topic deny alice/secret\n\
///      pattern readwrite users/%u/#\n",
///     "acl.conf",
/// )?;
/// let name = |s: &str| TopicName::new(s).unwrap();
/// let filter = |s: &str| TopicFilter::new(s).unwrap();
///
/// assert!(acl.can_publish(Some("alice"), "c1", &name("alice/notes")));
/// assert!(!acl.can_publish(Some("alice"), "c1", &name("alice/secret")));
/// assert!(acl.can_publish(Some("bob"), "c2", &name("users/bob/x")));
/// assert!(!acl.can_publish(Some("bob"), "c2", &name("users/alice/x")));
/// assert!(acl.can_subscribe(None, "c3", &filter("public/+/news")));
/// assert!(!acl.can_publish(None, "c3", &name("public/news")));
/// assert!(!acl.can_subscribe(None, "c3", &filter("#")));
/// # Ok::<(), wren::auth::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Acl {
    /// Rules for clients that gave no user name.
    anonymous: Vec<Rule>,
    users: HashMap<String, Vec<Rule>>,
    patterns: Vec<Pattern>,
}

impl Acl {
    /// An ACL with no rules: it refuses everything.
    pub fn new() -> Acl {
        Acl::default()
    }

    /// Reads a mosquitto `acl_file`.
    pub fn from_mosquitto_file(path: impl AsRef<Path>) -> Result<Acl, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            action: "read",
            path: path.to_owned(),
            source,
        })?;
        Acl::parse_mosquitto(&text, &path.display().to_string())
    }

    /// Reads the text of a mosquitto `acl_file`; `name` is what error messages call
    /// it.
    pub fn parse_mosquitto(text: &str, name: &str) -> Result<Acl, Error> {
        mosquitto::parse(text, name)
    }

    /// Builds the ACL of hbmqtt / amqtt's `topic-check` section: each user (or
    /// `anonymous`, which also covers clients without a user name) may publish and
    /// subscribe to the listed filters, and to nothing else.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use wren::auth::Acl;
    /// use wren::protocol::{TopicFilter, TopicName};
    ///
    /// let mut config = BTreeMap::new();
    /// config.insert("anonymous".to_string(), vec!["public/#".to_string()]);
    /// config.insert("alice".to_string(), vec!["alice/+".to_string()]);
    /// let acl = Acl::from_topic_check(&config)?;
    ///
    /// assert!(acl.can_publish(None, "c", &TopicName::new("public/x")?));
    /// assert!(acl.can_subscribe(Some("alice"), "c", &TopicFilter::new("alice/+")?));
    /// assert!(!acl.can_subscribe(Some("alice"), "c", &TopicFilter::new("alice/#")?));
    /// assert!(!acl.can_publish(Some("bob"), "c", &TopicName::new("public/x")?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_topic_check(
        acl: impl IntoIterator<Item = (impl AsRef<str>, impl IntoIterator<Item = impl AsRef<str>>)>,
    ) -> Result<Acl, Error> {
        let mut result = Acl::new();
        result.add_topic_check("acl", acl, Access::ReadWrite)?;
        Ok(result)
    }

    /// Builds the ACL of amqtt's `topic-check` section when it also has a
    /// `publish-acl`: then `acl` lists what each user may subscribe to and receive,
    /// and `publish_acl` what each may publish to.
    ///
    /// ```
    /// use wren::auth::Acl;
    /// use wren::protocol::{TopicFilter, TopicName};
    ///
    /// let acl = Acl::from_topic_check_split(
    ///     [("sensor", ["commands/#"])],
    ///     [("sensor", ["readings/+"])],
    /// )?;
    /// assert!(acl.can_subscribe(Some("sensor"), "s", &TopicFilter::new("commands/#")?));
    /// assert!(!acl.can_publish(Some("sensor"), "s", &TopicName::new("commands/x")?));
    /// assert!(acl.can_publish(Some("sensor"), "s", &TopicName::new("readings/t")?));
    /// assert!(!acl.can_subscribe(Some("sensor"), "s", &TopicFilter::new("readings/t")?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_topic_check_split(
        acl: impl IntoIterator<Item = (impl AsRef<str>, impl IntoIterator<Item = impl AsRef<str>>)>,
        publish_acl: impl IntoIterator<
            Item = (impl AsRef<str>, impl IntoIterator<Item = impl AsRef<str>>),
        >,
    ) -> Result<Acl, Error> {
        let mut result = Acl::new();
        result.add_topic_check("acl", acl, Access::Read)?;
        result.add_topic_check("publish-acl", publish_acl, Access::Write)?;
        Ok(result)
    }

    fn add_topic_check(
        &mut self,
        section: &'static str,
        acl: impl IntoIterator<Item = (impl AsRef<str>, impl IntoIterator<Item = impl AsRef<str>>)>,
        access: Access,
    ) -> Result<(), Error> {
        for (user, filters) in acl {
            let user = user.as_ref();
            for filter in filters {
                let filter = filter.as_ref();
                let parsed =
                    TopicFilter::new(filter).map_err(|source| Error::TopicCheckFilter {
                        section,
                        user: user.to_owned(),
                        filter: filter.to_owned(),
                        source,
                    })?;
                // hbmqtt looks clients without a user name up as "anonymous", so a
                // user who logs in as "anonymous" gets the same rules.
                if user == "anonymous" {
                    self.add_rule(None, access, parsed.clone());
                }
                self.add_rule(Some(user), access, parsed);
            }
        }
        Ok(())
    }

    /// Adds a rule, as a `topic` line would: for `user`, or with `None` for clients
    /// without a user name.
    ///
    /// ```
    /// use wren::auth::{Access, Acl};
    /// use wren::protocol::{TopicFilter, TopicName};
    ///
    /// let mut acl = Acl::new();
    /// acl.add_rule(Some("sensor"), Access::Write, TopicFilter::new("sensors/+/temperature")?);
    /// acl.add_pattern(Access::Read, "devices/%c/config")?;
    ///
    /// assert!(acl.can_publish(Some("sensor"), "s1", &TopicName::new("sensors/s1/temperature")?));
    /// assert!(acl.can_receive(Some("sensor"), "s1", &TopicName::new("devices/s1/config")?));
    /// assert!(!acl.can_receive(Some("sensor"), "s1", &TopicName::new("devices/s2/config")?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_rule(&mut self, user: Option<&str>, access: Access, filter: TopicFilter) {
        let rule = Rule { access, filter };
        match user {
            Some(user) => self.add_user_rule(user, rule),
            None => self.anonymous.push(rule),
        }
    }

    /// Adds a rule for every client, as a `pattern` line would: `%u` and `%c`, each
    /// filling a whole level, stand for the client's user name and client id.
    pub fn add_pattern(&mut self, access: Access, pattern: &str) -> Result<(), AclLineError> {
        let levels = mosquitto::pattern_levels(pattern)?;
        self.patterns.push(Pattern {
            access,
            levels,
            text: pattern.to_owned(),
        });
        Ok(())
    }

    fn add_user_rule(&mut self, user: &str, rule: Rule) {
        self.users.entry(user.to_owned()).or_default().push(rule);
    }

    /// Whether a client may PUBLISH to `topic_name`. `user` is the user name it
    /// connected with, `None` for none.
    pub fn can_publish(&self, user: Option<&str>, client_id: &str, topic_name: &TopicName) -> bool {
        self.decide(user, client_id, Request::Publish(topic_name))
    }

    /// Whether a client may SUBSCRIBE to `filter`: some rule with read access must
    /// cover all of it, and no `deny` rule may cover it.
    pub fn can_subscribe(&self, user: Option<&str>, client_id: &str, filter: &TopicFilter) -> bool {
        self.decide(user, client_id, Request::Subscribe(filter))
    }

    /// Whether a client may SUBSCRIBE to `filter` and be sent every message it
    /// matches: as [`can_subscribe`](Self::can_subscribe), and besides no `deny` rule
    /// may name any topic the filter matches. For a broker that does not ask
    /// [`can_receive`](Self::can_receive) at each delivery.
    ///
    /// ```
    /// use wren::auth::Acl;
    /// use wren::protocol::TopicFilter;
    ///
    /// let acl = Acl::parse_mosquitto("user u\ntopic a/#\ntopic deny a/secret\n", "acl")?;
    /// let filter = |f: &str| TopicFilter::new(f).unwrap();
    /// assert!(acl.can_subscribe(Some("u"), "c", &filter("a/#")));
    /// assert!(!acl.can_receive_all_of(Some("u"), "c", &filter("a/#")));
    /// assert!(!acl.can_receive_all_of(Some("u"), "c", &filter("a/+")));
    /// assert!(acl.can_receive_all_of(Some("u"), "c", &filter("a/open/#")));
    /// # Ok::<(), wren::auth::Error>(())
    /// ```
    pub fn can_receive_all_of(
        &self,
        user: Option<&str>,
        client_id: &str,
        filter: &TopicFilter,
    ) -> bool {
        self.decide(user, client_id, Request::SubscribeAll(filter))
    }

    /// Whether a message published to `topic_name` may be delivered to a client.
    /// Ask this for every delivery: a subscription allowed by
    /// [`can_subscribe`](Self::can_subscribe) may still match denied topics.
    pub fn can_receive(&self, user: Option<&str>, client_id: &str, topic_name: &TopicName) -> bool {
        self.decide(user, client_id, Request::Receive(topic_name))
    }

    fn decide(&self, user: Option<&str>, client_id: &str, request: Request<'_>) -> bool {
        let wanted = request.wanted();
        let own_rules: &[Rule] = match user {
            None => &self.anonymous,
            Some(user) => self.users.get(user).map_or(&[], Vec::as_slice),
        };
        let mut allowed = false;
        for rule in own_rules {
            if rule.access == Access::Deny {
                if request.is_denied_by(rule.filter.as_str()) {
                    return false;
                }
            } else if request.is_matched_by(rule.filter.as_str()) {
                allowed |= rule.access.grants(wanted);
            }
        }
        for pattern in &self.patterns {
            let filter = match pattern.substitute(user, client_id) {
                Substitution::Filter(filter) => filter,
                Substitution::NotApplicable => continue,
                Substitution::Refused { what, reason } => {
                    if pattern.access == Access::Deny {
                        log::warn!(
                            "ACL: denying client {client_id:?} (user {user:?}): its {what} \
                             {reason}, so deny pattern {:?} cannot be applied safely",
                            pattern.text
                        );
                        return false;
                    }
                    log::info!(
                        "ACL: pattern {:?} grants nothing to client {client_id:?} \
                         (user {user:?}): its {what} {reason}",
                        pattern.text
                    );
                    continue;
                }
            };
            if pattern.access == Access::Deny {
                if request.is_denied_by(&filter) {
                    return false;
                }
            } else if request.is_matched_by(&filter) {
                allowed |= pattern.access.grants(wanted);
            }
        }
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_follows_what_each_filter_can_match() {
        let cases = [
            ("a/#", "a/+/b", true),
            ("a/#", "a/#", true),
            ("a/#", "a", true),
            ("a/#", "a/b/c", true),
            ("a/#", "#", false),
            ("a/#", "b/#", false),
            ("#", "#", true),
            ("#", "+/+", true),
            ("#", "$SYS/#", false),
            ("#", "$SYS", false),
            ("+", "#", false),
            ("+/#", "#", true),
            ("/+/#", "/#", true),
            ("+/+/#", "/#", true),
            ("+/+/#", "#", false),
            ("a/+/#", "a/#", false),
            ("+", "+", true),
            ("+", "a", true),
            ("+", "a/b", false),
            ("+/#", "a/b/#", true),
            ("a/+", "a/+", true),
            ("a/+", "a/b", true),
            ("a/+", "a/#", false),
            ("a/+", "a/b/c", false),
            ("a/+", "a", false),
            ("a/b", "a/+", false),
            ("a/b", "a/#", false),
            ("a/b", "a/b", true),
            ("a/b", "a/b/c", false),
            ("$SYS/#", "$SYS/+/x", true),
            ("+/x", "$SYS/x", false),
            ("$SYS/+", "$SYS/#", false),
        ];
        for (rule, requested, expected) in cases {
            assert_eq!(
                rule_covers_filter(rule, requested),
                expected,
                "rule {rule} covers {requested}"
            );
        }
    }

    #[test]
    fn overlap_means_some_topic_matches_both() {
        let cases = [
            ("a/#", "a", true),
            ("a/+", "a/b/#", true),
            ("a/b", "+/b", true),
            ("a/b", "a/c", false),
            ("a/+", "a", false),
            ("#", "$SYS/x", false),
            ("+/x", "$SYS/#", false),
            ("$SYS/#", "$SYS/+", true),
            ("a/b/c", "a/#", true),
            ("a/b/c", "a/b", false),
        ];
        for (a, b, expected) in cases {
            assert_eq!(filters_overlap(a, b), expected, "{a} / {b}");
            assert_eq!(filters_overlap(b, a), expected, "{b} / {a}");
        }
    }

    #[test]
    fn unsafe_values_are_named() {
        assert!(unsafe_value("alice", true).is_none());
        assert!(unsafe_value("a$b", true).is_none());
        assert!(unsafe_value("$x", false).is_none());
        for value in ["", "+", "#", "a/b", "/", "a+", "x#", "a\0b"] {
            assert!(unsafe_value(value, false).is_some(), "{value:?}");
        }
        assert!(unsafe_value("$SYS", true).is_some());
    }
}
