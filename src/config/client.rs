//! The client's settings, in hbmqtt's terms.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::load::{self, Loaded};
use super::ConfigError;
use crate::client::{TopicDefaults, Will};
use crate::protocol::QoS;

/// A client's settings, with the keys and defaults of hbmqtt's `MQTTClient`, so an
/// hbmqtt or amqtt client file can be read as it is.
///
/// `ClientConfig::default()` equals hbmqtt's defaults: keep-alive 10 s, ping 1 s
/// early, QoS 0, no retain, reconnect on (at most 2 retries, at most 10 s apart),
/// clean session.
///
/// ```
/// use std::time::Duration;
/// use wren::config::ClientConfig;
/// use wren::protocol::QoS;
///
/// let config = ClientConfig::from_yaml_str(
///     "keep_alive: 30\ntopics:\n  sensors/temp: {qos: 1, retain: true}\n",
///     "client.yaml",
/// )?;
/// assert_eq!(config.keep_alive, Duration::from_secs(30));
/// assert_eq!(config.topics["sensors/temp"].qos, QoS::AtLeastOnce);
/// # Ok::<(), wren::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The keep-alive asked for in CONNECT (`keep_alive`, whole seconds up to 65535;
    /// 0 turns keep-alive off). Default 10 s.
    pub keep_alive: Duration,
    /// How long before the keep-alive runs out a PINGREQ is sent when nothing else
    /// was (`ping_delay`). Default 1 s.
    pub ping_delay: Duration,
    /// QoS of a publish that names none and whose topic is not in `topics`
    /// (`default_qos`). Default 0.
    pub default_qos: QoS,
    /// Retain flag of a publish that names none and whose topic is not in `topics`
    /// (`default_retain`). Default false.
    pub default_retain: bool,
    /// Reconnect by itself when the connection is lost (`auto_reconnect`). Default on.
    pub auto_reconnect: bool,
    /// Longest wait between two reconnect attempts; the waits double from 2 s up to
    /// this (`reconnect_max_interval`). Default 10 s.
    pub reconnect_max_interval: Duration,
    /// Reconnect attempts before giving up (`reconnect_retries`); `None` retries
    /// forever (a negative number in the file). Default 2.
    pub reconnect_retries: Option<u32>,
    /// The CONNECT clean-session flag (`cleansession`, also spelt `clean_session`).
    /// Default true.
    pub clean_session: bool,
    /// Per-topic QoS and retain defaults for publishing (`topics`), keyed by topic
    /// name, as the client's own [`TopicDefaults`]. Explicit arguments to a publish
    /// call win over these. An entry that leaves out `qos` or `retain` gets
    /// `default_qos` or `default_retain` when the file is read.
    pub topics: BTreeMap<String, TopicDefaults>,
    /// The last-will message the broker publishes if the client vanishes (`will`),
    /// as the client's own [`Will`]: `topic` (required, no wildcards), `message`
    /// (required, the payload as text), `qos` (default 0) and `retain` (default
    /// false).
    pub will: Option<Will>,
    /// Where to connect and which CAs to trust (`broker`).
    pub broker: BrokerConnection,
    /// A client certificate, PEM (`certfile`), for brokers that ask for one.
    pub certfile: Option<PathBuf>,
    /// The private key of `certfile`, PEM (`keyfile`).
    pub keyfile: Option<PathBuf>,
    /// Check that the broker's certificate names the host connected to
    /// (`check_hostname`). Default true; turning it off is for tests only.
    pub check_hostname: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            keep_alive: Duration::from_secs(10),
            ping_delay: Duration::from_secs(1),
            default_qos: QoS::AtMostOnce,
            default_retain: false,
            auto_reconnect: true,
            reconnect_max_interval: Duration::from_secs(10),
            reconnect_retries: Some(2),
            clean_session: true,
            topics: BTreeMap::new(),
            will: None,
            broker: BrokerConnection::default(),
            certfile: None,
            keyfile: None,
            check_hostname: true,
        }
    }
}

impl ClientConfig {
    /// Reads a client settings file laid out as hbmqtt's. Warnings are logged with
    /// `log::warn!`; [`load_yaml_file`](Self::load_yaml_file) also returns them.
    pub fn from_yaml_file(path: impl AsRef<Path>) -> Result<ClientConfig, ConfigError> {
        Self::load_yaml_file(path).map(|loaded| loaded.config)
    }

    /// Reads client settings from YAML text; `origin` names it in messages.
    pub fn from_yaml_str(text: &str, origin: &str) -> Result<ClientConfig, ConfigError> {
        Self::load_yaml_str(text, origin).map(|loaded| loaded.config)
    }

    /// Like [`from_yaml_file`](Self::from_yaml_file), and returns the warnings too.
    pub fn load_yaml_file(path: impl AsRef<Path>) -> Result<Loaded<ClientConfig>, ConfigError> {
        load::read_file(path.as_ref(), load::client)
    }

    /// Like [`from_yaml_str`](Self::from_yaml_str), and returns the warnings too.
    pub fn load_yaml_str(text: &str, origin: &str) -> Result<Loaded<ClientConfig>, ConfigError> {
        load::client(text, origin)
    }

    /// The QoS and retain flag for a publish to `topic` that gives neither: the
    /// topic's entry in `topics`, else `default_qos` and `default_retain`.
    pub fn publish_defaults(&self, topic: &str) -> (QoS, bool) {
        self.topics
            .get(topic)
            .map_or((self.default_qos, self.default_retain), |defaults| {
                (defaults.qos, defaults.retain)
            })
    }
}

/// Where the client connects (`broker:`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct BrokerConnection {
    /// `mqtt://`, `mqtts://`, `ws://` or `wss://` URL, user and password allowed
    /// (`uri`). hbmqtt has no default; programs pass one or the file gives it.
    pub uri: Option<String>,
    /// PEM file of CA certificates to trust for `mqtts`/`wss` (`cafile`).
    pub cafile: Option<PathBuf>,
    /// Directory of PEM CA certificates to trust (`capath`), as mosquitto's
    /// `--capath`. Read, but not supported yet: [`ClientOptions::from_config`]
    /// refuses settings that name one rather than trust other authorities.
    ///
    /// [`ClientOptions::from_config`]: crate::client::ClientOptions::from_config
    pub capath: Option<PathBuf>,
    /// PEM CA certificates given inline (`cadata`).
    pub cadata: Option<String>,
}
