//! [`ClientOptions`]: everything a client needs to know before it connects.
//!
//! This file holds the builder; `values.rs` the value types it is made of, `url.rs`
//! the reading of a broker URL, and `config.rs` the taking of hbmqtt-style
//! settings.

mod config;
mod url;
mod v5;
mod values;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;

pub use self::url::IntoClientOptions;
pub use self::v5::Authenticator;
pub(crate) use self::v5::AuthenticatorHandle;
pub use self::values::{Reconnect, TlsVersion, TopicDefaults, Will};
use super::Error;
use crate::protocol::{Properties, ProtocolVersion, QoS};
use crate::transport::{ClientTls, Kind};

/// How to connect, and how the connection behaves: a cheap value with a builder.
/// Start from a URL and change what you need:
///
/// ```
/// use std::time::Duration;
/// use wren::client::{ClientOptions, Will, QoS, Reconnect};
///
/// let options = ClientOptions::from_url("mqtt://user:secret@127.0.0.1:1883")?
///     .with_client_id("sensor-1")
///     .with_clean_session(false)
///     .with_keep_alive(Duration::from_secs(30))
///     .with_will(Will::new("sensors/sensor-1/status", "gone", QoS::AtLeastOnce, true))
///     .with_reconnect(Reconnect { max_interval: Duration::from_secs(5), ..Reconnect::default() });
/// assert_eq!(options.port(), 1883);
/// # Ok::<(), wren::client::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub(crate) kind: Kind,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) websocket_path: String,
    pub(crate) tls: ClientTls,
    pub(crate) client_id: Option<String>,
    pub(crate) clean_session: bool,
    pub(crate) keep_alive: Duration,
    pub(crate) ping_delay: Duration,
    pub(crate) pingresp_timeout: Option<Duration>,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<Bytes>,
    pub(crate) will: Option<Will>,
    pub(crate) connect_timeout: Duration,
    pub(crate) operation_timeout: Duration,
    pub(crate) reconnect: Reconnect,
    pub(crate) protocol: ProtocolVersion,
    pub(crate) session_expiry: Option<Duration>,
    pub(crate) max_inflight: usize,
    pub(crate) max_packet_size: usize,
    pub(crate) message_capacity: usize,
    pub(crate) default_qos: QoS,
    pub(crate) default_retain: bool,
    pub(crate) topics: HashMap<String, TopicDefaults>,
    /// MQTT 5: the CONNECT properties sent as given (user properties, request
    /// problem / response information, an authentication method and data).
    pub(crate) connect_properties: Properties,
    /// MQTT 5: the Receive Maximum announced to the broker.
    pub(crate) receive_maximum: Option<u16>,
    /// MQTT 5: how many topic aliases the broker may use towards us.
    pub(crate) topic_alias_maximum: u16,
    /// MQTT 5: whether to put topic aliases on outgoing messages.
    pub(crate) outgoing_topic_aliases: bool,
    /// MQTT 5: the enhanced authentication exchange.
    pub(crate) authenticator: Option<AuthenticatorHandle>,
    /// MQTT 5: whether a broker that refuses version 5 is asked again in 3.1.1.
    pub(crate) protocol_fallback: bool,
    /// MQTT 3.1 / 3.1.1: announce the client as a bridge (mosquitto's try_private).
    pub(crate) bridge: bool,
}

impl ClientOptions {
    /// Options for the broker at `host:port` over plain TCP, every other setting at
    /// its default.
    pub fn new(host: impl Into<String>, port: u16) -> ClientOptions {
        ClientOptions {
            kind: Kind::Tcp,
            host: host.into(),
            port,
            websocket_path: "/mqtt".into(),
            tls: ClientTls::default(),
            client_id: None,
            clean_session: true,
            keep_alive: Duration::from_secs(60),
            ping_delay: Duration::ZERO,
            pingresp_timeout: None,
            username: None,
            password: None,
            will: None,
            connect_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            reconnect: Reconnect::default(),
            protocol: ProtocolVersion::V3_1_1,
            session_expiry: None,
            max_inflight: 20,
            max_packet_size: crate::protocol::DEFAULT_MAX_PACKET_SIZE,
            message_capacity: 1024,
            default_qos: QoS::AtMostOnce,
            default_retain: false,
            topics: HashMap::new(),
            connect_properties: Properties::new(),
            receive_maximum: None,
            topic_alias_maximum: 0,
            outgoing_topic_aliases: false,
            authenticator: None,
            protocol_fallback: false,
            bridge: false,
        }
    }

    /// TLS settings for `mqtts://` and `wss://`: extra certificate authorities to
    /// trust, a client certificate.
    ///
    /// ```
    /// use wren::client::ClientOptions;
    /// use wren::transport::ClientTls;
    ///
    /// let options = ClientOptions::from_url("mqtts://broker.example")?.with_tls(ClientTls {
    ///     ca_file: Some("/etc/wren/ca.crt".into()),
    ///     ..ClientTls::default()
    /// });
    /// # Ok::<(), wren::client::Error>(())
    /// ```
    pub fn with_tls(mut self, tls: ClientTls) -> ClientOptions {
        self.tls = tls;
        self
    }

    /// The oldest TLS version to accept from the broker: TLS 1.2 by default. Set
    /// it after [`with_tls`](Self::with_tls), which replaces every TLS setting.
    ///
    /// ```
    /// use wren::client::{ClientOptions, TlsVersion};
    ///
    /// let options = ClientOptions::from_url("mqtts://old-broker.example")?
    ///     .with_tls_min_version(TlsVersion::V1_1);
    /// # Ok::<(), wren::client::Error>(())
    /// ```
    pub fn with_tls_min_version(mut self, version: TlsVersion) -> ClientOptions {
        self.tls.min_version = Some(version.protocol());
        self
    }

    /// The transport: TCP, TLS, WebSocket or WebSocket over TLS, as a URL's scheme
    /// chooses it. The port stays as it is.
    ///
    /// ```
    /// use wren::client::{ClientOptions, Kind};
    ///
    /// let options = ClientOptions::new("broker.example", 9001).with_transport(Kind::WebSocket);
    /// assert_eq!((options.transport(), options.port()), (Kind::WebSocket, 9001));
    /// ```
    pub fn with_transport(mut self, kind: Kind) -> ClientOptions {
        self.kind = kind;
        self
    }

    /// The HTTP path of a WebSocket connection (`ws://` and `wss://`): `/mqtt` by
    /// default. It may end with a `?query`.
    ///
    /// ```
    /// use wren::client::{ClientOptions, Kind};
    ///
    /// let options = ClientOptions::new("broker.example", 443)
    ///     .with_transport(Kind::SecureWebSocket)
    ///     .with_websocket_path("/ws");
    /// assert_eq!(options.websocket_path(), "/ws");
    /// ```
    pub fn with_websocket_path(mut self, path: impl Into<String>) -> ClientOptions {
        self.websocket_path = path.into();
        self
    }

    /// Sets the client id, which names the session on the broker. Without one the
    /// client makes up `wren-` followed by 16 random hex digits.
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> ClientOptions {
        self.client_id = Some(client_id.into());
        self
    }

    /// `true` (the default): start a new session and drop it on disconnect.
    /// `false`: keep subscriptions and undelivered QoS 1/2 messages on the broker
    /// while away; needs a [`with_client_id`](Self::with_client_id) ([MQTT-3.1.3-7]).
    pub fn with_clean_session(mut self, clean: bool) -> ClientOptions {
        self.clean_session = clean;
        self
    }

    /// The longest silence before the client sends PINGREQ; 60 s by default, zero
    /// turns keep-alive off. Sent to the broker in whole seconds (at most 65,535).
    pub fn with_keep_alive(mut self, keep_alive: Duration) -> ClientOptions {
        self.keep_alive = keep_alive.min(Duration::from_secs(u64::from(u16::MAX)));
        self
    }

    /// How long before the keep-alive runs out the PINGREQ goes (hbmqtt's
    /// `ping_delay`): 0 by default, pinging after a full keep-alive of silence, which
    /// MQTT allows since the broker waits one and a half. At most half the
    /// keep-alive is taken off.
    pub fn with_ping_delay(mut self, delay: Duration) -> ClientOptions {
        self.ping_delay = delay;
        self
    }

    /// How long a PINGRESP may take before the connection is considered dead (half
    /// open) and replaced: half the keep-alive by default.
    pub fn with_pingresp_timeout(mut self, timeout: Duration) -> ClientOptions {
        self.pingresp_timeout = Some(timeout);
        self
    }

    /// Sets the user name and password.
    pub fn with_credentials(
        mut self,
        username: impl Into<String>,
        password: impl Into<Bytes>,
    ) -> ClientOptions {
        self.username = Some(username.into());
        self.password = Some(password.into());
        self
    }

    /// Sets a user name without a password.
    pub fn with_username(mut self, username: impl Into<String>) -> ClientOptions {
        self.username = Some(username.into());
        self
    }

    /// MQTT 5: sets a password without a user name (a token, say), which MQTT 5
    /// allows and 3.1.1 does not [MQTT-3.1.2-22]: over 3.1.1, connecting with it
    /// fails with [`Error::InvalidOptions`].
    pub fn with_password(mut self, password: impl Into<Bytes>) -> ClientOptions {
        self.password = Some(password.into());
        self
    }

    /// Sets the will.
    pub fn with_will(mut self, will: Will) -> ClientOptions {
        self.will = Some(will);
        self
    }

    /// How long opening the TCP connection, and then waiting for CONNACK, may each
    /// take: 10 s by default.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> ClientOptions {
        self.connect_timeout = timeout;
        self
    }

    /// How long a call waits for the broker's answer (PUBACK, PUBCOMP, SUBACK,
    /// UNSUBACK) or for room to send: 30 s by default.
    pub fn with_operation_timeout(mut self, timeout: Duration) -> ClientOptions {
        self.operation_timeout = timeout;
        self
    }

    /// Sets the reconnect policy ([`Reconnect::default`]: forever, backing off to 10 s).
    pub fn with_reconnect(mut self, reconnect: Reconnect) -> ClientOptions {
        self.reconnect = reconnect;
        self
    }

    /// The version of MQTT to speak: 3.1.1 by default, 3.1 for old brokers, 5 for
    /// what MQTT 5 adds (the API stays the same; MQTT 5's extras appear where
    /// they apply, as [`Message::properties`](super::Message::properties)).
    ///
    /// ```
    /// use wren::client::ClientOptions;
    /// use wren::protocol::ProtocolVersion;
    ///
    /// let options = ClientOptions::new("localhost", 1883).with_protocol(ProtocolVersion::V5);
    /// assert_eq!(options.protocol(), ProtocolVersion::V5);
    /// ```
    pub fn with_protocol(mut self, protocol: ProtocolVersion) -> ClientOptions {
        self.protocol = protocol;
        self
    }

    /// MQTT 5: how long the broker keeps the session after the connection ends (its
    /// Session Expiry Interval), whole seconds; `Duration::MAX` for ever. Without
    /// it, a clean session ends with the connection and a persistent one
    /// ([`with_clean_session(false)`](Self::with_clean_session)) is kept for ever,
    /// as in MQTT 3.1.1. MQTT 3.1 and 3.1.1 have no such setting and ignore it.
    pub fn with_session_expiry(mut self, expiry: Duration) -> ClientOptions {
        self.session_expiry = Some(expiry);
        self
    }

    /// Announces the client as a bridge from another broker, as mosquitto's
    /// bridges do with `try_private true`: over MQTT 3.1 and 3.1.1 the CONNECT's
    /// protocol level carries bit 7 (0x84), and a broker that knows it (mosquitto,
    /// wren-broker) sends the client none of the messages the client published
    /// itself, so that two bridged brokers do not pass a message back and forth.
    /// Over MQTT 5 nothing is added: subscribe with No Local instead
    /// ([`SubscribeFilter`](crate::protocol::SubscribeFilter)). A broker that does
    /// not know the bit refuses the connection (CONNACK 0x01).
    ///
    /// ```
    /// use wren::client::ClientOptions;
    ///
    /// let options = ClientOptions::new("cloud.example", 1883).with_bridge(true);
    /// assert!(options.bridge());
    /// ```
    pub fn with_bridge(mut self, bridge: bool) -> ClientOptions {
        self.bridge = bridge;
        self
    }

    /// How many QoS 1/2 messages may wait for their acknowledgements at once: 20 by
    /// default. A publish beyond it waits for room.
    ///
    /// MQTT 3.1.1 gives a client no way to learn the broker's limit, and a broker
    /// whose limit is exceeded may drop messages it nevertheless acknowledges
    /// (mosquitto does, beyond its `max_inflight_messages`, 20 by default). Raise it
    /// only as far as the broker allows.
    pub fn with_max_inflight(mut self, max_inflight: u16) -> ClientOptions {
        self.max_inflight = usize::from(max_inflight.max(1));
        self
    }

    /// The largest packet accepted from the broker, in bytes: 1 MiB by default. A
    /// larger one closes the connection.
    pub fn with_max_packet_size(mut self, bytes: usize) -> ClientOptions {
        self.max_packet_size = bytes;
        self
    }

    /// How many messages each [`Subscription`](super::Subscription) and
    /// [`Messages`](super::Messages) holds for the application: 1,024 by default.
    ///
    /// When one is full, QoS 1 and 2 messages wait, unacknowledged, until it has
    /// room (so the broker's own inflight limit slows it down), and QoS 0 messages
    /// are dropped once 1,024 more wait behind it, with a warning in the log.
    pub fn with_message_capacity(mut self, capacity: usize) -> ClientOptions {
        self.message_capacity = capacity.max(1);
        self
    }

    /// The QoS of [`Client::publish_default`](super::Client::publish_default) for
    /// topics without their own entry (hbmqtt's `default_qos`).
    pub fn with_default_qos(mut self, qos: QoS) -> ClientOptions {
        self.default_qos = qos;
        self
    }

    /// The retain flag of [`Client::publish_default`](super::Client::publish_default)
    /// for topics without their own entry (hbmqtt's `default_retain`).
    pub fn with_default_retain(mut self, retain: bool) -> ClientOptions {
        self.default_retain = retain;
        self
    }

    /// QoS and retain flag for publishing on one topic with
    /// [`Client::publish_default`](super::Client::publish_default) (hbmqtt's `topics`).
    pub fn with_topic_defaults(
        mut self,
        topic: impl Into<String>,
        qos: QoS,
        retain: bool,
    ) -> ClientOptions {
        self.topics
            .insert(topic.into(), TopicDefaults { qos, retain });
        self
    }

    /// The transport: TCP, TLS, WebSocket or secure WebSocket.
    pub fn transport(&self) -> Kind {
        self.kind
    }

    /// The broker's host name or address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The broker's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The HTTP path of a WebSocket connection.
    pub fn websocket_path(&self) -> &str {
        &self.websocket_path
    }

    /// The TLS settings.
    pub fn tls(&self) -> &ClientTls {
        &self.tls
    }

    /// The user name set, if any.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// The password set, if any.
    pub fn password(&self) -> Option<&[u8]> {
        self.password.as_deref()
    }

    /// The keep-alive.
    pub fn keep_alive(&self) -> Duration {
        self.keep_alive
    }

    /// The reconnect policy.
    pub fn reconnect(&self) -> Reconnect {
        self.reconnect
    }

    /// Whether the client announces itself as a bridge
    /// ([`with_bridge`](Self::with_bridge)).
    pub fn bridge(&self) -> bool {
        self.bridge
    }

    /// The client id set, if any.
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    /// Whether the session is clean (`true`, the default) or kept on the broker.
    pub fn clean_session(&self) -> bool {
        self.clean_session
    }

    /// How long before the keep-alive runs out the PINGREQ goes.
    pub fn ping_delay(&self) -> Duration {
        self.ping_delay
    }

    /// How long a PINGRESP may take, if set; `None` means half the keep-alive.
    pub fn pingresp_timeout(&self) -> Option<Duration> {
        self.pingresp_timeout
    }

    /// The will set, if any.
    pub fn will(&self) -> Option<&Will> {
        self.will.as_ref()
    }

    /// How long opening the connection, and then waiting for CONNACK, may each take.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// How long a call waits for the broker's answer or for room to send.
    pub fn operation_timeout(&self) -> Duration {
        self.operation_timeout
    }

    /// The version of MQTT spoken.
    pub fn protocol(&self) -> ProtocolVersion {
        self.protocol
    }

    /// MQTT 5: the Session Expiry Interval asked for, in seconds: the one set with
    /// [`with_session_expiry`](Self::with_session_expiry) (`u32::MAX` for ever, the
    /// longest MQTT 5 can say), or else 0 for a clean session and `u32::MAX` for a
    /// persistent one.
    pub fn session_expiry(&self) -> u32 {
        match self.session_expiry {
            Some(expiry) => u32::try_from(expiry.as_secs()).unwrap_or(u32::MAX),
            None if self.clean_session => 0,
            None => u32::MAX,
        }
    }

    /// How many QoS 1/2 messages may wait for their acknowledgements at once.
    pub fn max_inflight(&self) -> u16 {
        u16::try_from(self.max_inflight).unwrap_or(u16::MAX)
    }

    /// The largest packet accepted from the broker, in bytes.
    pub fn max_packet_size(&self) -> usize {
        self.max_packet_size
    }

    /// How many messages each subscription holds for the application.
    pub fn message_capacity(&self) -> usize {
        self.message_capacity
    }

    /// The QoS of `publish_default` for topics without their own entry.
    pub fn default_qos(&self) -> QoS {
        self.default_qos
    }

    /// The retain flag of `publish_default` for topics without their own entry.
    pub fn default_retain(&self) -> bool {
        self.default_retain
    }

    /// The QoS and retain flag `publish_default` uses for `topic`.
    pub fn defaults_for(&self, topic: &str) -> TopicDefaults {
        self.topics.get(topic).copied().unwrap_or(TopicDefaults {
            qos: self.default_qos,
            retain: self.default_retain,
        })
    }

    /// How long a PINGRESP may take.
    pub(crate) fn ping_timeout(&self) -> Duration {
        self.pingresp_timeout
            .unwrap_or(self.keep_alive / 2)
            .max(Duration::from_millis(100))
    }

    /// After how much silence a PINGREQ goes; zero when keep-alive is off. An MQTT
    /// 5 broker's Server Keep Alive, when it sent one, replaces the keep-alive
    /// asked for [MQTT-3.2.2-21].
    pub(crate) fn ping_interval(&self, server_keep_alive: Option<Duration>) -> Duration {
        let keep_alive = server_keep_alive.unwrap_or(self.keep_alive);
        let early = self.ping_delay.min(keep_alive / 2);
        keep_alive - early
    }

    /// `host:port`, with brackets around an IPv6 address.
    pub(crate) fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Checks what can be checked before connecting.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let has_id = self.client_id.as_deref().is_some_and(|id| !id.is_empty());
        // MQTT 5 lets the broker assign an id to a session that is kept: the client
        // takes the Assigned Client Identifier and resumes with it.
        if !self.clean_session && !has_id && self.protocol != ProtocolVersion::V5 {
            return Err(Error::InvalidOptions(
                "a persistent session (with_clean_session(false)) needs a client id over MQTT 3.1.1 [MQTT-3.1.3-7]"
                    .into(),
            ));
        }
        // MQTT 5 allows a password without a user name; 3.1.1 does not.
        if self.password.is_some()
            && self.username.is_none()
            && self.protocol != ProtocolVersion::V5
        {
            return Err(Error::InvalidOptions(
                "a password needs a user name [MQTT-3.1.2-22]".into(),
            ));
        }
        if let Some(will) = &self.will {
            crate::protocol::TopicName::new(will.topic.as_str())
                .map_err(|error| Error::topic(&will.topic, error))?;
        }
        Ok(())
    }
}

/// A client id nobody else has: `wren-` and 16 hex digits (21 characters, within
/// the 23 every broker must accept, [MQTT-3.1.3-5]).
pub(crate) fn random_client_id() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};

    // RandomState is seeded from the operating system's random source once per
    // process and varied per instance; mixing in a counter, the time and the process
    // id keeps two ids apart even where that seed is weak.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    if let Ok(elapsed) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(elapsed.as_nanos());
    }
    format!("wren-{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ClientConfig;

    #[test]
    fn a_url_gives_host_port_and_percent_decoded_credentials() {
        let options = ClientOptions::from_url("mqtt://us%40er:p%3Ass@broker.example:1884").unwrap();
        assert_eq!(options.host(), "broker.example");
        assert_eq!(options.port(), 1884);
        assert_eq!(options.username.as_deref(), Some("us@er"));
        assert_eq!(options.password.as_deref(), Some(&b"p:ss"[..]));
    }

    #[test]
    fn each_scheme_picks_its_transport_and_port() {
        for (url, kind, port) in [
            ("mqtt://h", Kind::Tcp, 1883),
            ("mqtts://h", Kind::Tls, 8883),
            ("ws://h", Kind::WebSocket, 80),
            ("wss://h:9001", Kind::SecureWebSocket, 9001),
        ] {
            let options = ClientOptions::from_url(url).unwrap();
            assert_eq!((options.transport(), options.port()), (kind, port), "{url}");
        }
        assert_eq!(
            ClientOptions::from_url("ws://h").unwrap().websocket_path,
            "/mqtt"
        );
        assert_eq!(
            ClientOptions::from_url("ws://h/ws").unwrap().websocket_path,
            "/ws"
        );
    }

    #[test]
    fn other_schemes_and_paths_are_invalid() {
        assert!(matches!(
            ClientOptions::from_url("http://h"),
            Err(Error::InvalidUrl { .. })
        ));
        assert!(matches!(
            ClientOptions::from_url("mqtt://h/topic"),
            Err(Error::InvalidUrl { .. })
        ));
        assert!(matches!(
            ClientOptions::from_url("not a url"),
            Err(Error::InvalidUrl { .. })
        ));
    }

    #[test]
    fn a_persistent_session_needs_a_client_id_mqtt_3_1_3_7() {
        let options = ClientOptions::new("h", 1).with_clean_session(false);
        assert!(matches!(options.validate(), Err(Error::InvalidOptions(_))));
        assert!(options.with_client_id("me").validate().is_ok());
    }

    #[test]
    fn random_client_ids_are_recognisable_short_and_distinct() {
        let a = random_client_id();
        let b = random_client_id();
        assert!(a.starts_with("wren-") && a.len() <= 23, "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let reconnect = Reconnect {
            max_interval: Duration::from_secs(2),
            ..Reconnect::default()
        };
        assert_eq!(reconnect.delay(0), Duration::from_millis(250));
        assert_eq!(reconnect.delay(1), Duration::from_millis(500));
        assert_eq!(reconnect.delay(3), Duration::from_secs(2));
        assert_eq!(reconnect.delay(40), Duration::from_secs(2));
    }

    #[test]
    fn hbmqtt_settings_become_options() {
        let config = ClientConfig::from_yaml_str(
            "broker: {uri: 'mqtt://u:p@h:1999'}\nkeep_alive: 30\nping_delay: 5\n\
             cleansession: false\nauto_reconnect: false\nreconnect_retries: -1\n\
             will: {topic: bye, message: gone, qos: 2, retain: true}\n",
            "client.yaml",
        )
        .unwrap();
        let options = ClientOptions::from_config(&config).unwrap();
        assert_eq!((options.host(), options.port()), ("h", 1999));
        assert_eq!(options.username.as_deref(), Some("u"));
        assert_eq!(options.keep_alive, Duration::from_secs(30));
        assert_eq!(options.ping_interval(None), Duration::from_secs(25));
        assert_eq!(
            options.ping_interval(Some(Duration::from_secs(10))),
            Duration::from_secs(5)
        );
        assert!(!options.clean_session);
        assert_eq!(
            options.reconnect,
            Reconnect {
                enabled: false,
                max_interval: Duration::from_secs(10),
                retries: None
            }
        );
        assert_eq!(
            options.will,
            Some(Will::new("bye", "gone", QoS::ExactlyOnce, true))
        );
    }

    #[test]
    fn settings_without_a_broker_keep_the_broker_already_set() {
        let config = ClientConfig::from_yaml_str("keep_alive: 30\n", "client.yaml").unwrap();
        let options = ClientOptions::new("h", 1999)
            .with_transport(Kind::Tls)
            .apply_config(&config)
            .unwrap();
        assert_eq!(
            (options.transport(), options.host(), options.port()),
            (Kind::Tls, "h", 1999)
        );
        assert_eq!(options.keep_alive, Duration::from_secs(30));
    }

    #[test]
    fn a_directory_of_ca_certificates_is_refused_not_ignored() {
        let config = ClientConfig::from_yaml_str(
            "broker: {uri: 'mqtts://h', capath: /etc/ssl/certs}\n",
            "client.yaml",
        )
        .unwrap();
        let error = ClientOptions::from_config(&config).unwrap_err();
        assert!(error.to_string().contains("capath"), "{error}");
    }

    #[test]
    fn the_tls_minimum_version_is_a_wren_type() {
        let options = ClientOptions::new("h", 1).with_tls_min_version(TlsVersion::V1_1);
        assert!(matches!(
            options.tls.min_version,
            Some(native_tls::Protocol::Tlsv11)
        ));
    }

    #[test]
    fn settings_without_a_broker_are_refused() {
        let error = ClientOptions::from_config(&ClientConfig::default()).unwrap_err();
        assert!(error.to_string().contains("broker"), "{error}");
    }

    #[test]
    fn topic_defaults_fall_back_to_the_client_defaults() {
        let options = ClientOptions::new("h", 1)
            .with_default_qos(QoS::AtLeastOnce)
            .with_topic_defaults("status", QoS::ExactlyOnce, true);
        assert_eq!(
            options.defaults_for("status"),
            TopicDefaults {
                qos: QoS::ExactlyOnce,
                retain: true
            }
        );
        assert_eq!(
            options.defaults_for("other"),
            TopicDefaults {
                qos: QoS::AtLeastOnce,
                retain: false
            }
        );
    }
}
