//! The broker's settings.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::load::{self, Loaded};
use super::ConfigError;

/// Everything a broker needs to know to start.
///
/// `BrokerConfig::default()` is mosquitto 2.0's local-only mode: one TCP listener on
/// `127.0.0.1:1883` and one on `[::1]:1883`, anonymous access, `$SYS` every 10 s, and
/// the safe limits of [`Limits::default`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BrokerConfig {
    /// Where the broker accepts connections. Named as in the YAML file.
    pub listeners: Vec<ListenerConfig>,
    /// Who may connect.
    pub auth: AuthConfig,
    /// Who may publish and subscribe to what.
    pub topic_check: TopicCheckConfig,
    /// The `$SYS` tree.
    pub sys: SysConfig,
    /// Bounds on memory and time per connection and session.
    pub limits: Limits,
    /// Keeping sessions and retained messages across restarts (`persistence:`).
    pub persistence: PersistenceConfig,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            listeners: vec![
                ListenerConfig::tcp("default-ipv4", SocketAddr::from(([127, 0, 0, 1], 1883))),
                ListenerConfig::tcp(
                    "default-ipv6",
                    SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 1883)),
                ),
            ],
            auth: AuthConfig::default(),
            topic_check: TopicCheckConfig::default(),
            sys: SysConfig::default(),
            limits: Limits::default(),
            persistence: PersistenceConfig::default(),
        }
    }
}

impl BrokerConfig {
    /// Reads a broker settings file laid out as hbmqtt's and amqtt's are.
    ///
    /// Warnings (unknown keys, keys without effect here) are logged with
    /// `log::warn!`; [`load_yaml_file`](Self::load_yaml_file) also returns them. A file
    /// with `listeners` replaces the default local-only listeners; a file without
    /// keeps them.
    ///
    /// ```no_run
    /// let config = wren::config::BrokerConfig::from_yaml_file("broker.yaml")?;
    /// # Ok::<(), wren::config::ConfigError>(())
    /// ```
    pub fn from_yaml_file(path: impl AsRef<Path>) -> Result<BrokerConfig, ConfigError> {
        Self::load_yaml_file(path).map(|loaded| loaded.config)
    }

    /// Reads broker settings from YAML text. `origin` names the text in messages,
    /// as a file name would.
    ///
    /// ```
    /// use wren::config::BrokerConfig;
    ///
    /// let config = BrokerConfig::from_yaml_str(
    ///     "listeners:\n  default:\n    bind: 0.0.0.0:1883\n",
    ///     "broker.yaml",
    /// )?;
    /// assert_eq!(config.listeners[0].bind, "0.0.0.0:1883".parse()?);
    ///
    /// let error = BrokerConfig::from_yaml_str("max-keepalive: forever\n", "broker.yaml")
    ///     .unwrap_err();
    /// assert_eq!(
    ///     error.to_string(),
    ///     r#"broker.yaml:1: max-keepalive: expected a number, found "forever""#
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_yaml_str(text: &str, origin: &str) -> Result<BrokerConfig, ConfigError> {
        Self::load_yaml_str(text, origin).map(|loaded| loaded.config)
    }

    /// Like [`from_yaml_file`](Self::from_yaml_file), and returns the warnings too.
    pub fn load_yaml_file(path: impl AsRef<Path>) -> Result<Loaded<BrokerConfig>, ConfigError> {
        load::read_file(path.as_ref(), load::broker)
    }

    /// Like [`from_yaml_str`](Self::from_yaml_str), and returns the warnings too.
    ///
    /// ```
    /// use wren::config::{BrokerConfig, WarningKind};
    ///
    /// let text = "listeners:\n  my-tcp:\n    bind: 127.0.0.1:1883\n    bnd: oops\n";
    /// let loaded = BrokerConfig::load_yaml_str(text, "broker.yaml")?;
    /// let warning = &loaded.warnings[0];
    /// assert_eq!(warning.kind, WarningKind::UnknownKey);
    /// assert_eq!(warning.to_string(), "broker.yaml:4: listeners.my-tcp.bnd: unknown key, ignored");
    /// # Ok::<(), wren::config::ConfigError>(())
    /// ```
    pub fn load_yaml_str(text: &str, origin: &str) -> Result<Loaded<BrokerConfig>, ConfigError> {
        load::broker(text, origin)
    }

    /// A configuration with a single plain TCP listener on `bind` and every other
    /// setting at its default. `127.0.0.1:0` picks a free port, which is what tests
    /// and examples want.
    pub fn with_tcp_listener(bind: SocketAddr) -> BrokerConfig {
        BrokerConfig {
            listeners: vec![ListenerConfig::tcp("default", bind)],
            ..BrokerConfig::default()
        }
    }
}

/// One listening socket.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ListenerConfig {
    /// The listener's name in the configuration file (`my-tcp-1`), for logs.
    pub name: String,
    /// The address and port to listen on; port 0 picks a free one.
    pub bind: SocketAddr,
    /// Plain MQTT over TCP, or MQTT over WebSocket.
    pub kind: ListenerKind,
    /// TLS settings; `None` for a plain listener.
    pub tls: Option<TlsConfig>,
    /// Most connections open at once on this listener; more are refused at accept.
    /// `max-connections: 0` in a file means no limit, as in hbmqtt, and is read as
    /// `usize::MAX`.
    pub max_connections: usize,
}

impl ListenerConfig {
    /// A plain TCP listener with the default connection limit.
    pub fn tcp(name: impl Into<String>, bind: SocketAddr) -> ListenerConfig {
        ListenerConfig {
            name: name.into(),
            bind,
            kind: ListenerKind::Tcp,
            tls: None,
            max_connections: Limits::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// The kind of a listener (`type:` in YAML).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ListenerKind {
    /// `type: tcp`: MQTT straight over TCP.
    #[default]
    Tcp,
    /// `type: ws`: MQTT in binary WebSocket frames, upgraded from HTTP at `path`.
    WebSocket {
        /// The HTTP path clients upgrade on, `/mqtt` by default.
        path: String,
    },
}

/// TLS for a listener (`ssl: on`, `certfile`, `keyfile`, `cafile`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsConfig {
    /// PEM certificate chain presented to clients.
    pub certfile: PathBuf,
    /// PEM private key of that certificate.
    pub keyfile: PathBuf,
    /// PEM CA certificates for verifying client certificates, if required.
    pub cafile: Option<PathBuf>,
}

/// Who may connect (`auth:` in YAML).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthConfig {
    /// Let clients without a user name connect (`allow-anonymous`).
    pub allow_anonymous: bool,
    /// A mosquitto_passwd-style file of `user:hash` lines (`password-file`).
    pub password_file: Option<PathBuf>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            allow_anonymous: true,
            password_file: None,
        }
    }
}

/// Topic access control (`topic-check:` in YAML).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TopicCheckConfig {
    /// Whether ACLs are applied at all (`enabled`).
    pub enabled: bool,
    /// hbmqtt's ACL: user name (or `anonymous`) to the topic filters the user may
    /// publish and subscribe to (`acl`).
    pub acl: BTreeMap<String, Vec<String>>,
    /// amqtt's separate publish ACL (`publish-acl`): when present, publishing is
    /// checked against it instead of `acl`, which then governs subscribing only.
    pub publish_acl: Option<BTreeMap<String, Vec<String>>>,
    /// A mosquitto-format ACL file (`acl-file`).
    pub acl_file: Option<PathBuf>,
}

/// The `$SYS` tree.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SysConfig {
    /// How often `$SYS` topics are published (`sys_interval`, seconds); zero turns
    /// them off. Default 10 s, as mosquitto.
    pub interval: Duration,
    /// Also publish the topics amqtt has and mosquitto lacks (`sys-amqtt-compat`).
    pub amqtt_compat: bool,
}

impl Default for SysConfig {
    fn default() -> Self {
        SysConfig {
            interval: Duration::from_secs(10),
            amqtt_compat: false,
        }
    }
}

/// Bounds on what one connection or session may cost. The defaults are safe for a
/// broker open to a network; each can be raised in the configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest packet accepted, fixed header included (`max-packet-size`). Default
    /// 1 MiB; a larger packet closes the connection.
    pub max_packet_size: usize,
    /// QoS 1/2 messages sent to one client and not yet acknowledged
    /// (`max-inflight-messages`). Default 20, as mosquitto.
    pub max_inflight_messages: usize,
    /// Messages queued for one client beyond the inflight window, while it is offline
    /// or slow (`max-queued-messages`). Default 1000, as mosquitto; more are dropped
    /// and counted.
    pub max_queued_messages: usize,
    /// Largest keep-alive accepted, seconds (`max-keepalive`); a client asking for
    /// more (or for 0) is held to this. Default 65535 (no limit).
    pub max_keep_alive: u16,
    /// Time allowed between accepting a socket and receiving its CONNECT
    /// (`connect-timeout`, seconds). Default 10 s.
    pub connect_timeout: Duration,
    /// Grace added to one and a half keep-alives before a silent client is
    /// dropped (hbmqtt's `timeout-disconnect-delay`, seconds). Default 0.
    pub timeout_disconnect_delay: Duration,
}

impl Limits {
    /// The default `max-connections` of a listener.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_packet_size: crate::protocol::DEFAULT_MAX_PACKET_SIZE,
            max_inflight_messages: 20,
            max_queued_messages: 1000,
            max_keep_alive: u16::MAX,
            connect_timeout: Duration::from_secs(10),
            timeout_disconnect_delay: Duration::ZERO,
        }
    }
}

/// Keeping sessions and retained messages on disk across restarts (`persistence:`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PersistenceConfig {
    /// Whether anything is written to disk (`enabled`). Default off.
    pub enabled: bool,
    /// Where the store lives (`path`); required when `enabled` is on.
    pub path: Option<PathBuf>,
}
