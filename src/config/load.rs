//! From a YAML tree to typed settings, checking every value on the way.
//!
//! A [`Section`] is one YAML mapping being read. Each setting is *taken* from it by
//! name and converted by a [`Field`] method that knows the wording of the problem
//! (`expected a number, found "many"`). Whatever is left in a section at the end was
//! not a setting, and becomes an unknown-key warning. Problems carry the path of
//! their key; the line is looked up only when a message is actually made.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use super::yaml::{self, Node, Step};
use super::{
    AuthConfig, BrokerConfig, BrokerConnection, ClientConfig, ConfigError, ConfigWarning, Limits,
    ListenerConfig, ListenerKind, PersistenceConfig, TlsConfig, TopicCheckConfig, TopicDefaults,
    WarningKind, WillConfig,
};
use crate::protocol::{QoS, TopicFilter, TopicName, MAX_REMAINING_LENGTH};

/// Settings read from a file, with the warnings reading them gave.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Loaded<T> {
    /// The settings.
    pub config: T,
    /// What was accepted but deserves attention (already logged with `log::warn!`).
    pub warnings: Vec<ConfigWarning>,
}

/// The longest time a setting may give, in seconds: ten years. Longer ones would
/// overflow when added to the time now.
const MAX_SECONDS: u64 = 10 * 365 * 24 * 3600;

/// The deepest `max-topic-levels` accepted: a topic of this many levels is 65,535
/// bytes of slashes, the longest a packet can carry.
const MAX_TOPIC_LEVELS: u64 = 65_536;

/// Reads a broker settings file's text.
pub(crate) fn broker(text: &str, origin: &str) -> Result<Loaded<BrokerConfig>, ConfigError> {
    read(text, origin, read_broker)
}

/// Reads a client settings file's text.
pub(crate) fn client(text: &str, origin: &str) -> Result<Loaded<ClientConfig>, ConfigError> {
    read(text, origin, read_client)
}

/// Reads a whole file's text with `f`, the shared part of [`broker`] and [`client`].
pub(crate) fn read_file<T>(
    path: &std::path::Path,
    f: fn(&str, &str) -> Result<Loaded<T>, ConfigError>,
) -> Result<Loaded<T>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    f(&text, &path.display().to_string())
}

fn read<T>(
    text: &str,
    origin: &str,
    f: fn(Section, &mut Warnings) -> Result<T, Problem>,
) -> Result<Loaded<T>, ConfigError> {
    let root = yaml::parse(text).map_err(|error| ConfigError::Syntax {
        origin: origin.to_owned(),
        line: error.line,
        message: error.message + &syntax_hint(text, error.line),
    })?;
    let mut warnings = Warnings::default();
    let result =
        Section::new(Vec::new(), root, &mut warnings).and_then(|top| f(top, &mut warnings));
    let config = result.map_err(|problem| ConfigError::Invalid {
        origin: origin.to_owned(),
        line: line_of(text, &problem.path),
        key: path_text(&problem.path),
        message: problem.message,
    })?;
    let mut warnings: Vec<ConfigWarning> = warnings
        .0
        .into_iter()
        .map(|(path, kind, message)| ConfigWarning {
            origin: origin.to_owned(),
            line: line_of(text, &path),
            key: path_text(&path),
            kind,
            message,
        })
        .collect();
    // In file order, as a person reads them; unplaced ones last.
    warnings.sort_by_key(|w| w.line.unwrap_or(usize::MAX));
    for warning in &warnings {
        log::warn!("{warning}");
    }
    Ok(Loaded { config, warnings })
}

/// A hint for the one YAML syntax error hbmqtt users are sure to meet: brackets
/// start a list in YAML, so `bind: [::1]:1883` must be quoted.
fn syntax_hint(text: &str, line: Option<usize>) -> String {
    let Some(source) = line.and_then(|n| text.lines().nth(n.saturating_sub(1))) else {
        return String::new();
    };
    match source.trim_start().strip_prefix("bind:") {
        Some(value) if value.trim_start().starts_with('[') => {
            format!(
                " (in YAML an IPv6 bind needs quotes: bind: '{}')",
                value.trim()
            )
        }
        _ => String::new(),
    }
}

/// The line of `path`, or of the nearest enclosing key that is in the file (a value
/// a listener inherits from `default` is not under the listener's own key).
fn line_of(text: &str, path: &[Step]) -> Option<usize> {
    (1..=path.len())
        .rev()
        .find_map(|len| yaml::line_of(text, &path[..len]))
}

/// `listeners.my-tcp.bind`, `topic-check.acl.alice[2]`.
fn path_text(path: &[Step]) -> String {
    let mut text = String::new();
    for step in path {
        match step {
            Step::Key(key, _) => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(key);
            }
            Step::Index(i) => text.push_str(&format!("[{i}]")),
        }
    }
    text
}

/// A value that cannot be used, and where it is.
#[derive(Debug)]
struct Problem {
    path: Vec<Step>,
    message: String,
}

/// Warnings gathered while reading, positioned later.
#[derive(Default)]
struct Warnings(Vec<(Vec<Step>, WarningKind, String)>);

impl Warnings {
    fn add(&mut self, path: &[Step], kind: WarningKind, message: impl Into<String>) {
        self.0.push((path.to_vec(), kind, message.into()));
    }
}

/// One YAML mapping being read.
#[derive(Debug, Clone)]
struct Section {
    path: Vec<Step>,
    /// Key, value, and which repeat of the key the value came from (a key given
    /// twice keeps its last value, and messages point at that one).
    entries: Vec<(String, Node, usize)>,
}

impl Section {
    /// Reads `node` as a mapping. Nothing at all is an empty one; a key given twice
    /// keeps its last value, with a warning.
    fn new(path: Vec<Step>, node: Node, warnings: &mut Warnings) -> Result<Section, Problem> {
        let pairs = match node {
            Node::Null => Vec::new(),
            Node::Map(pairs) => pairs,
            other => {
                return Err(Problem {
                    path,
                    message: format!("expected a mapping of settings, found {}", other.describe()),
                })
            }
        };
        let mut section = Section {
            path,
            entries: Vec::with_capacity(pairs.len()),
        };
        for (key, value) in pairs {
            if let Some(earlier) = section.entries.iter_mut().find(|(k, ..)| *k == key) {
                earlier.1 = value;
                earlier.2 += 1;
                let at = section.child_path(&key);
                warnings.add(
                    &at,
                    WarningKind::DuplicateKey,
                    "given more than once; the last value is used",
                );
            } else {
                section.entries.push((key, value, 0));
            }
        }
        Ok(section)
    }

    fn child_path(&self, key: &str) -> Vec<Step> {
        let nth = self
            .entries
            .iter()
            .find(|(k, ..)| k == key)
            .map_or(0, |(.., nth)| *nth);
        let mut path = self.path.clone();
        path.push(Step::Key(key.to_owned(), nth));
        path
    }

    /// Removes `key` and returns its value; a key with no value counts as absent.
    fn take(&mut self, key: &str) -> Option<Field> {
        let field = self.get(key);
        self.entries.retain(|(k, ..)| k != key);
        field
    }

    /// Like [`take`](Self::take) but leaves the key in place.
    fn get(&self, key: &str) -> Option<Field> {
        let (_, node, _) = self.entries.iter().find(|(k, ..)| k == key)?;
        (*node != Node::Null).then(|| Field {
            path: self.child_path(key),
            node: node.clone(),
        })
    }

    /// Takes a key that hbmqtt or amqtt know and that has no effect here.
    fn not_supported(&mut self, key: &str, warnings: &mut Warnings, why: &str) {
        if let Some(field) = self.take(key) {
            warnings.add(&field.path, WarningKind::NotSupported, why);
        }
    }

    /// Takes a nested mapping; absent is an empty one.
    fn section(&mut self, key: &str, warnings: &mut Warnings) -> Result<Section, Problem> {
        let path = self.child_path(key);
        let node = self.take(key).map_or(Node::Null, |field| field.node);
        Section::new(path, node, warnings)
    }

    /// Ends reading: every key still here is unknown.
    fn finish(self, warnings: &mut Warnings) {
        for (key, ..) in &self.entries {
            warnings.add(
                &self.child_path(key),
                WarningKind::UnknownKey,
                "unknown key, ignored",
            );
        }
    }

    /// The remaining entries, each as a field, for mappings whose keys are names
    /// (listeners, users, topics).
    fn drain(self) -> impl Iterator<Item = (String, Field)> {
        let path = self.path;
        self.entries.into_iter().map(move |(key, node, nth)| {
            let mut at = path.clone();
            at.push(Step::Key(key.clone(), nth));
            (key, Field { path: at, node })
        })
    }
}

/// One value being read.
#[derive(Debug, Clone)]
struct Field {
    path: Vec<Step>,
    node: Node,
}

impl Field {
    fn problem(&self, message: impl Into<String>) -> Problem {
        Problem {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    fn expected(&self, what: &str) -> Problem {
        self.problem(format!("expected {what}, found {}", self.node.describe()))
    }

    /// `true`/`false`, and the YAML 1.1 words PyYAML reads as booleans (`on`, `off`,
    /// `yes`, `no`), since hbmqtt files say `ssl: on`.
    fn flag(&self) -> Result<bool, Problem> {
        match &self.node {
            Node::Bool(b) => Ok(*b),
            Node::Str(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "on" | "yes" => Ok(true),
                "false" | "off" | "no" => Ok(false),
                _ => Err(self.expected("on or off (or true/false, yes/no)")),
            },
            _ => Err(self.expected("on or off (or true/false, yes/no)")),
        }
    }

    /// A whole number, which may be negative.
    fn integer(&self) -> Result<i128, Problem> {
        match &self.node {
            Node::Int(i) => Ok(*i),
            Node::Float(_) => Err(self.expected("a whole number")),
            _ => Err(self.expected("a number")),
        }
    }

    /// A whole number within `range`.
    fn count(&self, range: RangeInclusive<u64>) -> Result<u64, Problem> {
        let value = self.integer()?;
        if value < 0 {
            return Err(self.problem(format!("must not be negative, found {value}")));
        }
        match u64::try_from(value) {
            Ok(v) if range.contains(&v) => Ok(v),
            _ => Err(self.problem(format!(
                "must be from {} to {}, found {value}",
                range.start(),
                range.end()
            ))),
        }
    }

    /// A number of seconds, whole or not, zero or more, and at most
    /// [`MAX_SECONDS`] so that adding it to the time now cannot overflow.
    fn seconds(&self) -> Result<Duration, Problem> {
        let seconds = match &self.node {
            Node::Int(i) => *i as f64,
            Node::Float(f) => *f,
            _ => return Err(self.expected("a number of seconds")),
        };
        if seconds.is_nan() || seconds < 0.0 {
            return Err(self.problem(format!("must not be negative, found {seconds}")));
        }
        if seconds > MAX_SECONDS as f64 {
            return Err(self.problem(format!(
                "must be at most {MAX_SECONDS} seconds (10 years), found {seconds}"
            )));
        }
        Duration::try_from_secs_f64(seconds)
            .map_err(|_| self.problem(format!("{seconds} is not a usable number of seconds")))
    }

    /// A number of seconds more than zero (see [`seconds`](Self::seconds)).
    fn positive_seconds(&self) -> Result<Duration, Problem> {
        let seconds = self.seconds()?;
        if seconds.is_zero() {
            return Err(self.problem("must be more than 0 seconds"));
        }
        Ok(seconds)
    }

    /// A cap on a count or a size: a whole number, where 0 means "no limit" (as in
    /// mosquitto) and is read as `usize::MAX`.
    fn limit(&self) -> Result<usize, Problem> {
        match self.count(0..=u64::MAX)? {
            0 => Ok(usize::MAX),
            n => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        }
    }

    /// Text. A number is taken as its digits (a user or topic may be named `1234`).
    fn text(&self) -> Result<String, Problem> {
        match &self.node {
            Node::Str(s) => Ok(s.clone()),
            Node::Int(i) => Ok(i.to_string()),
            _ => Err(self.expected("text")),
        }
    }

    /// A file or directory name.
    fn file(&self) -> Result<PathBuf, Problem> {
        let text = self.text()?;
        if text.is_empty() {
            return Err(self.problem("expected a file name, found an empty string"));
        }
        Ok(PathBuf::from(text))
    }

    /// A QoS level, 0, 1 or 2.
    fn qos(&self) -> Result<QoS, Problem> {
        let level = self.count(0..=2)?;
        // `count` bounded it to 0..=2, which `from_u8` maps.
        QoS::from_u8(level as u8).ok_or_else(|| self.expected("0, 1 or 2"))
    }

    fn list(self) -> Result<Vec<Field>, Problem> {
        match self.node {
            Node::Seq(items) => Ok(items
                .into_iter()
                .enumerate()
                .map(|(i, node)| {
                    let mut path = self.path.clone();
                    path.push(Step::Index(i));
                    Field { path, node }
                })
                .collect()),
            other => Err(Problem {
                path: self.path,
                message: format!("expected a list, found {}", other.describe()),
            }),
        }
    }

    fn section(self, warnings: &mut Warnings) -> Result<Section, Problem> {
        Section::new(self.path, self.node, warnings)
    }
}

// ---------------------------------------------------------------------------------
// The broker

/// Why `plugins:` keys are taken but not acted on.
const NO_PLUGINS: &str = "wren-mqtt loads no plugins: its own authentication and topic \
     checks read `auth:` and `topic-check:`, so put plugin settings there (ignored)";

fn read_broker(mut top: Section, warnings: &mut Warnings) -> Result<BrokerConfig, Problem> {
    let mut config = BrokerConfig::default();

    if let Some(listeners) = top.take("listeners") {
        config.listeners = read_listeners(listeners, warnings)?;
    }

    let limits = &mut config.limits;
    if let Some(f) = top.take("timeout-disconnect-delay") {
        limits.timeout_disconnect_delay = f.seconds()?;
    }
    if let Some(f) = top.take("max-packet-size") {
        // The smallest packet is two bytes; the largest is what four bytes of
        // remaining length can say, plus the fixed header.
        limits.max_packet_size = f.count(2..=MAX_REMAINING_LENGTH as u64 + 5)? as usize;
    }
    if let Some(f) = top.take("max-inflight-messages") {
        // Each inflight message holds a packet identifier, of which there are 65535.
        limits.max_inflight_messages = f.count(1..=65_535)? as usize;
    }
    if let Some(f) = top.take("max-queued-messages") {
        limits.max_queued_messages = f.count(0..=u32::MAX as u64)? as usize;
    }
    if let Some(f) = top.take("max-queued-bytes") {
        limits.max_queued_bytes = f.limit()?;
    }
    if let Some(f) = top.take("max-keepalive") {
        limits.max_keep_alive = f.count(1..=65_535)? as u16;
    }
    if let Some(f) = top.take("connect-timeout") {
        limits.connect_timeout = f.positive_seconds()?;
    }
    if let Some(f) = top.take("packet-timeout") {
        limits.packet_timeout = f.positive_seconds()?;
    }
    if let Some(f) = top.take("max-topic-levels") {
        limits.max_topic_levels = f.count(1..=MAX_TOPIC_LEVELS)? as usize;
    }
    if let Some(f) = top.take("max-subscriptions-per-client") {
        limits.max_subscriptions_per_client = f.limit()?;
    }
    if let Some(f) = top.take("max-subscription-bytes-per-client") {
        limits.max_subscription_bytes_per_client = f.limit()?;
    }
    if let Some(f) = top.take("max-retained-messages") {
        limits.max_retained_messages = f.limit()?;
    }
    if let Some(f) = top.take("max-retained-bytes") {
        limits.max_retained_bytes = f.limit()?;
    }
    if let Some(f) = top.take("max-persistent-sessions") {
        limits.max_persistent_sessions = f.limit()?;
    }
    if let Some(f) = top.take("persistent-client-expiration") {
        let expiry = f.seconds()?;
        limits.persistent_client_expiration = (!expiry.is_zero()).then_some(expiry);
    }
    if let Some(f) = top.take("max-inbox-bytes") {
        limits.max_inbox_bytes = f.count(1024..=u64::MAX)?.try_into().unwrap_or(usize::MAX);
    }
    if let Some(f) = top.take("max-client-id-length") {
        limits.max_client_id_length = f.count(23..=65_535)? as usize;
    }
    if let Some(f) = top.take("max-username-length") {
        limits.max_username_length = f.count(1..=65_535)? as usize;
    }
    if let Some(f) = top.take("max-password-length") {
        limits.max_password_length = f.count(1..=65_535)? as usize;
    }
    if let Some(f) = top.take("max-connections-per-address") {
        limits.max_connections_per_address = f.limit()?;
    }

    config.auth = read_auth(top.section("auth", warnings)?, warnings)?;
    config.topic_check = read_topic_check(top.section("topic-check", warnings)?, warnings)?;

    if let Some(f) = top.take("sys_interval") {
        config.sys.interval = f.seconds()?;
    }
    if let Some(f) = top.take("sys-amqtt-compat") {
        config.sys.amqtt_compat = f.flag()?;
    }

    if let Some(f) = top.take("persistence") {
        config.persistence = read_persistence(f.section(warnings)?, warnings)?;
    }

    if let Some(f) = top.take("plugins") {
        warn_amqtt_plugins(f, warnings);
    }
    top.finish(warnings);
    Ok(config)
}

/// amqtt's newer `plugins:` section (a mapping from plugin class to its settings,
/// or a list of such names). None is loaded; each gets a warning saying where its
/// job is configured here, so that an ACL left in a plugin is not silently dropped.
fn warn_amqtt_plugins(field: Field, warnings: &mut Warnings) {
    let plugins: Vec<(String, Vec<Step>)> = match &field.node {
        Node::Map(entries) => entries
            .iter()
            .map(|(name, _)| {
                let mut path = field.path.clone();
                path.push(Step::Key(name.clone(), 0));
                (name.clone(), path)
            })
            .collect(),
        Node::Seq(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let name = match item {
                    Node::Str(name) => name.clone(),
                    Node::Map(entries) => match entries.as_slice() {
                        [(name, _)] => name.clone(),
                        _ => item.describe(),
                    },
                    other => other.describe(),
                };
                let mut path = field.path.clone();
                path.push(Step::Index(i));
                (name, path)
            })
            .collect(),
        _ => Vec::new(),
    };
    if plugins.is_empty() {
        warnings.add(&field.path, WarningKind::NotSupported, NO_PLUGINS);
    }
    for (name, path) in plugins {
        let lower = name.to_ascii_lowercase();
        let message = if ["accesscontrol", "acl", "taboo"]
            .iter()
            .any(|w| lower.contains(w))
        {
            format!(
                "{name} is not loaded, so it restricts no topic: wren-mqtt checks topics \
                 as `topic-check:` says (`enabled`, `acl`, `publish-acl`, `acl-file`)"
            )
        } else if lower.contains("auth") {
            format!(
                "{name} is not loaded: wren-mqtt authenticates as `auth:` says \
                 (`allow-anonymous`, `password-file`)"
            )
        } else if lower.contains("sys") {
            format!("{name} is not loaded: $SYS topics are set with `sys_interval`")
        } else {
            format!("{name} is not loaded: wren-mqtt has no plugins")
        };
        warnings.add(&path, WarningKind::NotSupported, message);
    }
}

/// The `listeners:` mapping. Every named listener starts from the `default`
/// section's values; `default` is itself a listener when it has a `bind`.
fn read_listeners(field: Field, warnings: &mut Warnings) -> Result<Vec<ListenerConfig>, Problem> {
    let listeners_path = field.path.clone();
    let section = field.section(warnings)?;
    let default = match section.get("default") {
        // Its own warnings come when it is read as a listener below.
        Some(f) => f.section(&mut Warnings::default())?,
        None => Section::new(Vec::new(), Node::Null, warnings)?,
    };

    let mut listeners = Vec::new();
    let mut bound: HashMap<SocketAddr, String> = HashMap::new();
    for (name, field) in section.drain() {
        let inherited = (name != "default").then_some(&default);
        let bind_path = {
            let mut p = field.path.clone();
            p.push(Step::Key("bind".into(), 0));
            p
        };
        let Some(listener) = read_listener(name, field.section(warnings)?, inherited, warnings)?
        else {
            continue;
        };
        if listener.bind.port() != 0 {
            if let Some(other) = bound.insert(listener.bind, listener.name.clone()) {
                return Err(Problem {
                    path: bind_path,
                    message: format!(
                        "{} is already the address of listener {other:?}",
                        listener.bind
                    ),
                });
            }
        }
        listeners.push(listener);
    }
    if listeners.is_empty() {
        return Err(Problem {
            path: listeners_path,
            message: "no listener has a bind address, so the broker would listen nowhere; \
                      add one such as `bind: 127.0.0.1:1883`"
                .to_owned(),
        });
    }
    Ok(listeners)
}

/// One listener; `None` when it has no `bind` (hbmqtt does not start those either).
fn read_listener(
    name: String,
    mut own: Section,
    inherited: Option<&Section>,
    warnings: &mut Warnings,
) -> Result<Option<ListenerConfig>, Problem> {
    // Certificate files written on a listener whose ssl is off are probably a
    // forgotten `ssl: on`; remember them before they are taken.
    let own_tls_files: Vec<Field> = ["certfile", "keyfile"]
        .iter()
        .filter_map(|key| own.get(key))
        .collect();
    // A listener's own value, else the one in `default`. The own value of the other
    // spelling of `max-connections` should win over the inherited one, so look in
    // the listener first for both.
    let own_max = own
        .take("max-connections")
        .or_else(|| own.take("max_connections"));
    let mut pick = |key: &str| own.take(key).or_else(|| inherited.and_then(|d| d.get(key)));

    let bind = pick("bind").map(|f| parse_bind(&f)).transpose()?;
    // The documents say `max-connections`; hbmqtt's code reads `max_connections`.
    let max_connections = match own_max
        .or_else(|| pick("max-connections"))
        .or_else(|| pick("max_connections"))
    {
        // 0 means "no limit" to hbmqtt and amqtt.
        Some(f) => match f.count(0..=u32::MAX as u64)? {
            0 => usize::MAX,
            n => n as usize,
        },
        None => Limits::DEFAULT_MAX_CONNECTIONS,
    };
    let kind_field = pick("type");
    let ssl = pick("ssl")
        .map(|f| f.flag().map(|on| (on, f)))
        .transpose()?;
    let certfile = pick("certfile").map(|f| f.file()).transpose()?;
    let keyfile = pick("keyfile").map(|f| f.file()).transpose()?;
    let cafile = pick("cafile").map(|f| f.file()).transpose()?;
    let ws_path = pick("path");

    let kind = match &kind_field {
        None => ListenerKind::Tcp,
        Some(f) => match f.text()?.to_ascii_lowercase().as_str() {
            "tcp" => ListenerKind::Tcp,
            "ws" => ListenerKind::WebSocket {
                path: match &ws_path {
                    Some(p) => {
                        let path = p.text()?;
                        if !path.starts_with('/') {
                            return Err(
                                p.problem(format!("an HTTP path starts with '/', found {path:?}"))
                            );
                        }
                        Some(path)
                    }
                    None => None,
                },
            },
            _ => return Err(f.expected("tcp or ws")),
        },
    };
    for key in ["capath", "cadata"] {
        own.not_supported(
            key,
            warnings,
            "not supported: put the CA certificates in one PEM file named by `cafile` (ignored)",
        );
    }
    let path = own.path.clone();
    own.finish(warnings);

    // Without a bind this is not a listener: either `default`, a set of values for
    // the others to inherit (its `ssl: on` may rely on each listener naming its own
    // files), or a listener that will not start. The rules about combinations of
    // values apply only to listeners that start.
    let Some(bind) = bind else {
        if name != "default" {
            warnings.add(
                &path,
                WarningKind::Suspicious,
                "no `bind` here or under listeners.default, so this listener is not started",
            );
        }
        return Ok(None);
    };

    if let (ListenerKind::Tcp, Some(p)) = (&kind, &ws_path) {
        warnings.add(
            &p.path,
            WarningKind::Suspicious,
            "`path` applies only to listeners of `type: ws`; ignored",
        );
    }
    let tls = match ssl {
        Some((true, ssl_field)) => {
            let missing = |what: &str| {
                ssl_field.problem(format!(
                    "ssl is on but no {what} is given (here or under listeners.default)"
                ))
            };
            Some(TlsConfig {
                certfile: certfile.ok_or_else(|| missing("certfile"))?,
                keyfile: keyfile.ok_or_else(|| missing("keyfile"))?,
                cafile,
            })
        }
        _ => {
            for file in &own_tls_files {
                warnings.add(
                    &file.path,
                    WarningKind::Suspicious,
                    "ssl is off for this listener, so this file is not used",
                );
            }
            None
        }
    };
    Ok(Some(ListenerConfig {
        name,
        bind,
        kind,
        tls,
        max_connections,
    }))
}

/// `host:port` as hbmqtt writes it: `0.0.0.0:1883`, `[::]:1883`, `localhost:1883`,
/// or `:1883` for every IPv4 interface.
fn parse_bind(field: &Field) -> Result<SocketAddr, Problem> {
    const FORM: &str = "an address and port such as 0.0.0.0:1883, [::]:1883 or :1883";
    let Node::Str(text) = &field.node else {
        return Err(field.expected(FORM));
    };
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(field.expected(FORM));
    };
    let port: u16 = match port.parse::<u64>() {
        Ok(p) if p <= u16::MAX as u64 => p as u16,
        Ok(p) => return Err(field.problem(format!("port {p} is out of range (0 to 65535)"))),
        Err(_) => return Err(field.problem(format!("port {port:?} is not a number"))),
    };
    let ip = match host {
        "" => Ipv4Addr::UNSPECIFIED.into(),
        "localhost" => Ipv4Addr::LOCALHOST.into(),
        _ => {
            if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
                v6.parse::<Ipv6Addr>()
                    .map_err(|_| field.problem(format!("{v6:?} is not an IPv6 address")))?
                    .into()
            } else if host.contains(':') {
                return Err(field.problem(format!(
                    "an IPv6 address goes in brackets, as in [{host}]:{port}"
                )));
            } else {
                host.parse::<Ipv4Addr>()
                    .map_err(|_| {
                        field.problem(format!(
                            "{host:?} is not an IP address (names other than localhost \
                             are not looked up; write the address)"
                        ))
                    })?
                    .into()
            }
        }
    };
    Ok(SocketAddr::new(ip, port))
}

fn read_auth(mut auth: Section, warnings: &mut Warnings) -> Result<AuthConfig, Problem> {
    let mut config = AuthConfig::default();
    if let Some(f) = auth.take("allow-anonymous") {
        config.allow_anonymous = Some(f.flag()?);
    }
    if let Some(f) = auth.take("password-file") {
        config.password_file = Some(f.file()?);
    }
    auth.not_supported("plugins", warnings, NO_PLUGINS);
    auth.finish(warnings);
    Ok(config)
}

fn read_topic_check(
    mut check: Section,
    warnings: &mut Warnings,
) -> Result<TopicCheckConfig, Problem> {
    let mut config = TopicCheckConfig::default();
    if let Some(f) = check.take("enabled") {
        config.enabled = f.flag()?;
    }
    if let Some(f) = check.take("acl") {
        config.acl = read_acl(f, warnings)?;
    }
    if let Some(f) = check.take("publish-acl") {
        config.publish_acl = Some(read_acl(f, warnings)?);
    }
    if let Some(f) = check.take("acl-file") {
        config.acl_file = Some(f.file()?);
    }
    check.not_supported("plugins", warnings, NO_PLUGINS);
    check.finish(warnings);
    Ok(config)
}

/// `user: [filter, ...]`, every filter checked.
fn read_acl(
    field: Field,
    warnings: &mut Warnings,
) -> Result<BTreeMap<String, Vec<String>>, Problem> {
    let mut acl = BTreeMap::new();
    for (user, filters) in field.section(warnings)?.drain() {
        let mut allowed = Vec::new();
        for item in filters.list()? {
            let filter = item.text()?;
            TopicFilter::new(filter.as_str())
                .map_err(|e| item.problem(format!("{filter:?} is not a topic filter: {e}")))?;
            allowed.push(filter);
        }
        acl.insert(user, allowed);
    }
    Ok(acl)
}

fn read_persistence(
    mut section: Section,
    warnings: &mut Warnings,
) -> Result<PersistenceConfig, Problem> {
    let mut config = PersistenceConfig::default();
    let enabled = section.take("enabled");
    if let Some(f) = &enabled {
        config.enabled = f.flag()?;
    }
    if let Some(f) = section.take("path") {
        config.path = Some(f.file()?);
    }
    if let (true, None, Some(f)) = (config.enabled, &config.path, &enabled) {
        return Err(f.problem("persistence is enabled but no `path` says where to keep it"));
    }
    section.finish(warnings);
    Ok(config)
}

// ---------------------------------------------------------------------------------
// The client

fn read_client(mut top: Section, warnings: &mut Warnings) -> Result<ClientConfig, Problem> {
    let mut config = ClientConfig::default();

    if let Some(f) = top.take("keep_alive") {
        config.keep_alive = Duration::from_secs(f.count(0..=65_535)?);
    }
    if let Some(f) = top.take("ping_delay") {
        config.ping_delay = f.seconds()?;
    }
    if let Some(f) = top.take("default_qos") {
        config.default_qos = f.qos()?;
    }
    if let Some(f) = top.take("default_retain") {
        config.default_retain = f.flag()?;
    }
    if let Some(f) = top.take("auto_reconnect") {
        config.auto_reconnect = f.flag()?;
    }
    if let Some(f) = top.take("reconnect_max_interval") {
        config.reconnect_max_interval = f.seconds()?;
    }
    if let Some(f) = top.take("reconnect_retries") {
        let retries = f.integer()?;
        // hbmqtt: a negative number retries forever.
        config.reconnect_retries = if retries < 0 {
            None
        } else {
            Some(
                u32::try_from(retries)
                    .map_err(|_| f.problem(format!("{retries} is too many retries")))?,
            )
        };
    }
    match (top.take("cleansession"), top.take("clean_session")) {
        (Some(_), Some(second)) => {
            return Err(second.problem("cleansession is given too; keep one of the two"))
        }
        (Some(f), None) | (None, Some(f)) => config.clean_session = f.flag()?,
        (None, None) => {}
    }
    if let Some(f) = top.take("topics") {
        for (name, settings) in f.section(warnings)?.drain() {
            TopicName::new(name.as_str())
                .map_err(|e| settings.problem(format!("{name:?} is not a topic name: {e}")))?;
            let mut settings = settings.section(warnings)?;
            let mut defaults = TopicDefaults::default();
            if let Some(f) = settings.take("qos") {
                defaults.qos = Some(f.qos()?);
            }
            if let Some(f) = settings.take("retain") {
                defaults.retain = Some(f.flag()?);
            }
            settings.finish(warnings);
            config.topics.insert(name, defaults);
        }
    }
    if let Some(f) = top.take("will") {
        config.will = Some(read_will(f, warnings)?);
    }
    if let Some(f) = top.take("broker") {
        config.broker = read_broker_connection(f.section(warnings)?, warnings)?;
    }
    if let Some(f) = top.take("certfile") {
        config.certfile = Some(f.file()?);
    }
    if let Some(f) = top.take("keyfile") {
        config.keyfile = Some(f.file()?);
    }
    if let Some(f) = top.take("check_hostname") {
        config.check_hostname = f.flag()?;
    }
    top.not_supported(
        "plugins",
        warnings,
        "wren-mqtt has no client plugins (ignored)",
    );
    top.finish(warnings);
    Ok(config)
}

fn read_will(field: Field, warnings: &mut Warnings) -> Result<WillConfig, Problem> {
    let will_path = field.path.clone();
    let mut will = field.section(warnings)?;
    let required = |key: &str| Problem {
        path: will_path.clone(),
        message: format!("a will needs a `{key}`"),
    };
    let topic_field = will.take("topic").ok_or_else(|| required("topic"))?;
    let topic = topic_field.text()?;
    TopicName::new(topic.as_str())
        .map_err(|e| topic_field.problem(format!("{topic:?} is not a topic name: {e}")))?;
    let message = will
        .take("message")
        .ok_or_else(|| required("message"))?
        .text()?;
    let qos = will
        .take("qos")
        .map(|f| f.qos())
        .transpose()?
        .unwrap_or_default();
    let retain = will
        .take("retain")
        .map(|f| f.flag())
        .transpose()?
        .unwrap_or(false);
    will.finish(warnings);
    Ok(WillConfig {
        topic,
        message,
        qos,
        retain,
    })
}

fn read_broker_connection(
    mut broker: Section,
    warnings: &mut Warnings,
) -> Result<BrokerConnection, Problem> {
    let mut config = BrokerConnection::default();
    if let Some(f) = broker.take("uri") {
        let uri = f.text()?;
        let scheme = uri.split_once("://").map(|(scheme, _)| scheme);
        if !matches!(scheme, Some("mqtt" | "mqtts" | "ws" | "wss")) {
            return Err(f.problem(format!(
                "expected a URL starting with mqtt://, mqtts://, ws:// or wss://, found {uri:?}"
            )));
        }
        config.uri = Some(uri);
    }
    if let Some(f) = broker.take("cafile") {
        config.cafile = Some(f.file()?);
    }
    if let Some(f) = broker.take("capath") {
        config.capath = Some(f.file()?);
    }
    if let Some(f) = broker.take("cadata") {
        config.cadata = Some(f.text()?);
    }
    broker.finish(warnings);
    Ok(config)
}
