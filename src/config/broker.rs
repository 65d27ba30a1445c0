//! The broker's settings.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::load::{self, Loaded};
use super::ConfigError;
use crate::protocol::{QoS, ReasonCode};

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
    /// Connections to other brokers (`bridges:`). [`Broker`](crate::Broker) does
    /// not start them itself: [`Bridges::start`](crate::bridge::Bridges::start)
    /// does, on a started broker, as `wren-broker` does.
    pub bridges: Vec<super::BridgeConfig>,
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
            bridges: Vec::new(),
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
    /// Plain MQTT over TCP, MQTT over WebSocket, or the HTTP dashboard and metrics.
    pub kind: ListenerKind,
    /// TLS settings; `None` for a plain listener.
    pub tls: Option<TlsConfig>,
    /// Most connections open at once on this listener; more are refused at accept.
    /// `max-connections: 0` in a file means no limit, as in hbmqtt, and is read as
    /// `usize::MAX`. Default [`Limits::DEFAULT_MAX_CONNECTIONS`], and
    /// [`ListenerConfig::DEFAULT_MAX_HTTP_CONNECTIONS`] for an HTTP listener.
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

    /// The default `max-connections` of an HTTP listener: each request has a
    /// thread of its own for a few seconds at most, and a dashboard or a scraper
    /// needs one or two at a time.
    pub const DEFAULT_MAX_HTTP_CONNECTIONS: usize = 32;

    /// An HTTP listener for the dashboard and metrics (`type: http`), plain and
    /// without authentication, with the default connection limit.
    ///
    /// ```
    /// use wren::config::{BrokerConfig, ListenerConfig};
    ///
    /// let mut config = BrokerConfig::with_tcp_listener("127.0.0.1:0".parse()?);
    /// config.listeners.push(ListenerConfig::http("dashboard", "127.0.0.1:0".parse()?));
    /// # Ok::<(), std::net::AddrParseError>(())
    /// ```
    pub fn http(name: impl Into<String>, bind: SocketAddr) -> ListenerConfig {
        ListenerConfig {
            name: name.into(),
            bind,
            kind: ListenerKind::Http { basic_auth: false },
            tls: None,
            max_connections: ListenerConfig::DEFAULT_MAX_HTTP_CONNECTIONS,
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
    /// `type: ws`: MQTT in binary WebSocket frames, upgraded from HTTP.
    WebSocket {
        /// The one HTTP path clients may upgrade on (`path:`); any path when `None`,
        /// the default, as mosquitto and hbmqtt accept.
        path: Option<String>,
    },
    /// `type: http`: not MQTT, but the broker's dashboard (`GET /`), its figures
    /// as JSON (`/api/sys`, `/api/stats`), Prometheus metrics (`/metrics`) and a
    /// health check (`/healthz`), over HTTP/1.1 (HTTPS with `ssl: on`).
    Http {
        /// Whether every request must carry HTTP basic authentication checked
        /// against `auth.password-file` (`basic-auth`). Default false.
        basic_auth: bool,
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

impl TlsConfig {
    /// TLS with this certificate chain and key, and no CA for client certificates.
    pub fn new(certfile: impl Into<PathBuf>, keyfile: impl Into<PathBuf>) -> TlsConfig {
        TlsConfig {
            certfile: certfile.into(),
            keyfile: keyfile.into(),
            cafile: None,
        }
    }
}

/// Who may connect (`auth:` in YAML).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct AuthConfig {
    /// Let clients without a user name connect (`allow-anonymous`).
    ///
    /// `None`, the default, is mosquitto 2.0's rule: a listener bound to a loopback
    /// address lets them in, one reachable from the network refuses them. `Some`
    /// applies to every listener; a network listener that allows anonymous clients
    /// is logged as a warning at start. See [`AuthConfig::allows_anonymous_on`].
    pub allow_anonymous: Option<bool>,
    /// A mosquitto_passwd-style file of `user:hash` lines (`password-file`).
    pub password_file: Option<PathBuf>,
}

impl AuthConfig {
    /// Whether a listener bound to `bind` lets in clients without a user name.
    ///
    /// ```
    /// use wren::config::AuthConfig;
    ///
    /// let default = AuthConfig::default();
    /// assert!(default.allows_anonymous_on(&"127.0.0.1:1883".parse()?));
    /// assert!(default.allows_anonymous_on(&"[::1]:1883".parse()?));
    /// assert!(!default.allows_anonymous_on(&"0.0.0.0:1883".parse()?));
    ///
    /// let mut open = AuthConfig::default();
    /// open.allow_anonymous = Some(true);
    /// assert!(open.allows_anonymous_on(&"0.0.0.0:1883".parse()?));
    /// # Ok::<(), std::net::AddrParseError>(())
    /// ```
    pub fn allows_anonymous_on(&self, bind: &SocketAddr) -> bool {
        self.allow_anonymous
            .unwrap_or_else(|| bind.ip().is_loopback())
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

/// Bounds on what one connection, session or client may cost. The defaults are
/// safe for a broker open to a network; each can be raised in the configuration
/// file. A count read as `0` from a file means "no limit" (as in mosquitto) and is
/// stored as `usize::MAX`.
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
    /// Payload and topic bytes queued for one client beyond the inflight window
    /// (`max-queued-bytes`). Default 8 MiB; more are dropped and counted.
    pub max_queued_bytes: usize,
    /// Largest keep-alive accepted, seconds (`max-keepalive`); a client asking for
    /// more (or for 0) is held to this. Default 65535 (no limit).
    pub max_keep_alive: u16,
    /// Time allowed between accepting a socket and receiving its CONNECT
    /// (`connect-timeout`, seconds), TLS and WebSocket handshakes included. Default
    /// 10 s.
    pub connect_timeout: Duration,
    /// Time allowed for the rest of a packet once its first byte has arrived
    /// (`packet-timeout`, seconds). Default 60 s; a slower packet closes the
    /// connection.
    pub packet_timeout: Duration,
    /// Grace added to one and a half keep-alives before a silent client is
    /// dropped (hbmqtt's `timeout-disconnect-delay`, seconds). Default 0.
    pub timeout_disconnect_delay: Duration,
    /// Most levels in a topic name or filter (`max-topic-levels`). Default 201:
    /// mosquitto's fixed limit of 200 `/` separators. A PUBLISH or will with a
    /// deeper topic closes the connection; a deeper filter is refused in its SUBACK
    /// slot (0x80).
    pub max_topic_levels: usize,
    /// Most subscriptions one client may hold (`max-subscriptions-per-client`).
    /// Default 1000; a filter beyond is refused in its SUBACK slot (0x80).
    pub max_subscriptions_per_client: usize,
    /// Most memory one client's subscriptions may take
    /// (`max-subscription-bytes-per-client`): each filter counts its bytes and
    /// about half a KiB for each of its levels, what the subscription tree spends
    /// on it. Default 8 MiB: a thousand filters of ten levels, or some eighty of
    /// two hundred. A filter beyond is refused in its SUBACK slot (0x80).
    pub max_subscription_bytes_per_client: usize,
    /// Most retained messages the broker holds (`max-retained-messages`). Default
    /// 100,000; a retained message on a new topic beyond is routed but not retained.
    pub max_retained_messages: usize,
    /// Most memory all retained messages may take together (`max-retained-bytes`):
    /// their topics and payloads, and the tree that files them by topic level (about
    /// half a KiB for each level no other retained topic shares). Default 128 MiB; as
    /// for `max_retained_messages`.
    pub max_retained_bytes: usize,
    /// Most persistent sessions (clean session 0) the broker holds, connected or
    /// not (`max-persistent-sessions`). Default 10,000; a CONNECT that would create
    /// one more is refused with "server unavailable".
    pub max_persistent_sessions: usize,
    /// How long a persistent session whose client has not come back is kept
    /// (`persistent-client-expiration`, seconds, as mosquitto's option). Default
    /// `None`: kept until `max_persistent_sessions` needs the room refused.
    pub persistent_client_expiration: Option<Duration>,
    /// Bytes of events (packets on their way to the router) all connections
    /// together may have waiting in the router's inbox (`max-inbox-bytes`). Default
    /// 64 MiB; a reader waits (and TCP slows its client) while it is full.
    pub max_inbox_bytes: usize,
    /// Longest client identifier accepted, bytes (`max-client-id-length`). Default
    /// 256; a longer one is refused with "identifier rejected".
    pub max_client_id_length: usize,
    /// Longest user name accepted, bytes (`max-username-length`). Default 1024; a
    /// longer one is refused with "bad user name or password" before any check.
    pub max_username_length: usize,
    /// Longest password accepted, bytes (`max-password-length`). Default 1024;
    /// checked before any hashing, whose cost grows with the password's length.
    pub max_password_length: usize,
    /// Most connections open at once from one IP address, over all listeners
    /// (`max-connections-per-address`). Default `usize::MAX` (no limit).
    pub max_connections_per_address: usize,
    /// MQTT 5: QoS 1/2 messages a client may have sent and not yet had acknowledged
    /// (`receive-maximum`, the Receive Maximum of the CONNACK). Default 20, as
    /// mosquitto; a client sending more is disconnected with 0x93.
    pub receive_maximum: u16,
    /// MQTT 5: topic aliases the broker keeps for each client in each direction
    /// (`topic-alias-maximum`): those a client may set (one beyond is 0x94), and the
    /// most the broker uses towards a client that allows them. Default 10, as
    /// mosquitto; 0 turns aliases off.
    pub topic_alias_maximum: u16,
    /// MQTT 5: whether the broker sends topic aliases to clients that accept them
    /// (`outgoing-topic-aliases`), replacing a topic it has sent a client before by
    /// its number. Default false, as mosquitto, which never sends them.
    pub outgoing_topic_aliases: bool,
    /// MQTT 5: the highest QoS clients may publish with (`max-qos`, 0 to 2).
    /// Default 2. A v5 client publishing above it is disconnected with 0x9B;
    /// subscriptions are granted at most this QoS.
    pub max_qos: QoS,
    /// MQTT 5: whether retained messages are kept (`retain-available`). Default
    /// true; when false a v5 client publishing with RETAIN is disconnected with 0x9A
    /// and a 3.1.1 client's retained message is delivered but not kept.
    pub retain_available: bool,
    /// MQTT 5: whether filters may hold `+` and `#`
    /// (`wildcard-subscription-available`). Default true; when false such a filter
    /// is refused with 0xA2.
    pub wildcard_subscriptions: bool,
    /// MQTT 5: whether SUBSCRIBE may carry a Subscription Identifier
    /// (`subscription-identifier-available`). Default true; when false one that does
    /// is refused with DISCONNECT 0xA1.
    pub subscription_identifiers: bool,
    /// MQTT 5: the SUBACK reason code of a filter the authorization hooks or the
    /// ACL refuse (`denied-subscription-code`): 0x87 "Not authorized" (the
    /// default, as mosquitto) or 0x80 "Unspecified error" (which says less, and is
    /// what some test suites expect). MQTT 3.1.1 clients always get 0x80.
    pub denied_subscription_code: ReasonCode,
    /// Whether `$share/GROUP/filter` subscribes to a shared subscription
    /// (`shared-subscription-available`). Default true; when false such a filter is
    /// refused with 0x9E.
    pub shared_subscriptions: bool,
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
            max_queued_bytes: 8 * 1024 * 1024,
            max_keep_alive: u16::MAX,
            connect_timeout: Duration::from_secs(10),
            packet_timeout: Duration::from_secs(60),
            timeout_disconnect_delay: Duration::ZERO,
            max_topic_levels: 201,
            max_subscriptions_per_client: 1000,
            max_subscription_bytes_per_client: 8 * 1024 * 1024,
            max_retained_messages: 100_000,
            max_retained_bytes: 128 * 1024 * 1024,
            max_persistent_sessions: 10_000,
            persistent_client_expiration: None,
            max_inbox_bytes: 64 * 1024 * 1024,
            max_client_id_length: 256,
            max_username_length: 1024,
            max_password_length: 1024,
            max_connections_per_address: usize::MAX,
            receive_maximum: 20,
            topic_alias_maximum: 10,
            outgoing_topic_aliases: false,
            max_qos: QoS::ExactlyOnce,
            retain_available: true,
            wildcard_subscriptions: true,
            subscription_identifiers: true,
            shared_subscriptions: true,
            denied_subscription_code: ReasonCode::NOT_AUTHORIZED,
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
