//! Bridges from the broker to other brokers (`bridges:` in the broker file), as
//! mosquitto's `connection` sections are. [`crate::bridge`] runs them.

use std::path::PathBuf;
use std::time::Duration;

use crate::protocol::{ProtocolVersion, QoS, TopicFilter};

/// One bridge: a connection from this broker to a remote one, and the topics it
/// carries each way.
///
/// ```yaml
/// bridges:
///   cloud:
///     url: mqtts://cluster.example:8883
///     client-id: edge-7
///     topics:
///       - {filter: 'sensors/#', direction: out, qos: 1}
///       - {filter: 'commands/#', direction: in, qos: 1}
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BridgeConfig {
    /// The bridge's name: its key under `bridges:`. It names the bridge's local
    /// session and its `$SYS/broker/bridges/NAME/...` topics.
    pub name: String,
    /// The remote broker, `mqtt://`, `mqtts://`, `ws://` or `wss://` (`url`).
    pub url: String,
    /// The client identifier on the remote (`client-id`); `wren-bridge-NAME` by
    /// default.
    pub client_id: String,
    /// The user name on the remote (`username`).
    pub username: Option<String>,
    /// The password on the remote (`password`).
    pub password: Option<String>,
    /// A PEM file of CA certificates to trust besides the system's, for
    /// `mqtts://` and `wss://` (`cafile`).
    pub cafile: Option<PathBuf>,
    /// A client certificate and its key, PEM, for a remote that asks for one
    /// (`certfile` and `keyfile`).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Skip the remote's certificate and host name checks (`insecure`): for tests
    /// only.
    pub insecure: bool,
    /// Ask the remote for a clean session (`clean-session`); default `false`, so
    /// the remote keeps the bridge's subscriptions and queues what comes in for it
    /// while the bridge is away.
    pub clean_session: bool,
    /// Keep-alive with the remote (`keep-alive`), 60 s by default.
    pub keep_alive: Duration,
    /// MQTT 3.1.1 or 5 with the remote (`protocol-version: 3.1.1 | 5`); 3.1.1 by
    /// default, which every broker speaks.
    pub protocol: ProtocolVersion,
    /// Over MQTT 3.1.1, announce the bridge to the remote as mosquitto's
    /// `try_private` does, so it does not send back what the bridge published
    /// (`try-private`, default `true`; turn off for a broker that refuses it).
    pub try_private: bool,
    /// Publish the bridge's state, retained "1" when connected and "0" when not,
    /// on both brokers (`notifications`, default `true`).
    pub notifications: bool,
    /// Where the state is published (`notification-topic`); by default
    /// `$SYS/broker/connection/CLIENT-ID/state`, as in mosquitto.
    pub notification_topic: String,
    /// The longest wait between reconnection attempts (`reconnect-max-interval`,
    /// 30 s by default); attempts back off from a quarter of a second up to it.
    pub reconnect_max_interval: Duration,
    /// The topics the bridge carries, and which way (`topics`).
    pub topics: Vec<BridgeTopic>,
}

impl BridgeConfig {
    /// A bridge to `url` named `name`, carrying nothing yet, every other setting at
    /// its default.
    ///
    /// ```
    /// use wren::config::{BridgeConfig, BridgeTopic, Direction};
    /// use wren::protocol::QoS;
    ///
    /// let mut bridge = BridgeConfig::new("cloud", "mqtt://127.0.0.1:1884");
    /// bridge.topics.push(BridgeTopic::new("sensors/#", Direction::Out, QoS::AtLeastOnce)?);
    /// assert_eq!(bridge.client_id, "wren-bridge-cloud");
    /// assert_eq!(bridge.notification_topic, "$SYS/broker/connection/wren-bridge-cloud/state");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> BridgeConfig {
        let name = name.into();
        let client_id = format!("wren-bridge-{name}");
        BridgeConfig {
            notification_topic: default_notification_topic(&client_id),
            name,
            url: url.into(),
            client_id,
            username: None,
            password: None,
            cafile: None,
            client_cert: None,
            insecure: false,
            clean_session: false,
            keep_alive: Duration::from_secs(60),
            protocol: ProtocolVersion::V3_1_1,
            try_private: true,
            notifications: true,
            reconnect_max_interval: Duration::from_secs(30),
            topics: Vec::new(),
        }
    }
}

impl std::fmt::Debug for BridgeConfig {
    /// Shows everything but the password, which logs must never hold.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeConfig")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("cafile", &self.cafile)
            .field("client_cert", &self.client_cert)
            .field("insecure", &self.insecure)
            .field("clean_session", &self.clean_session)
            .field("keep_alive", &self.keep_alive)
            .field("protocol", &self.protocol)
            .field("try_private", &self.try_private)
            .field("notifications", &self.notifications)
            .field("notification_topic", &self.notification_topic)
            .field("reconnect_max_interval", &self.reconnect_max_interval)
            .field("topics", &self.topics)
            .finish()
    }
}

/// mosquitto's notification topic for a bridge with client identifier
/// `client_id`.
pub(crate) fn default_notification_topic(client_id: &str) -> String {
    format!("$SYS/broker/connection/{client_id}/state")
}

/// Which way a bridge carries the messages of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From this broker to the remote (`out`).
    Out,
    /// From the remote to this broker (`in`).
    In,
    /// Both ways (`both`).
    Both,
}

impl Direction {
    /// Whether messages go from this broker to the remote.
    pub fn outward(self) -> bool {
        matches!(self, Direction::Out | Direction::Both)
    }

    /// Whether messages come from the remote to this broker.
    pub fn inward(self) -> bool {
        matches!(self, Direction::In | Direction::Both)
    }
}

/// One entry of a bridge's `topics`: mosquitto's
/// `topic PATTERN DIRECTION QOS LOCAL-PREFIX REMOTE-PREFIX`.
///
/// A message on `LOCAL-PREFIX` + `T` here is the message on `REMOTE-PREFIX` + `T`
/// there, where `T` matches `filter`: the bridge subscribes to the prefixed filter
/// on the side messages come from and swaps the prefix as it passes them on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BridgeTopic {
    /// The topic filter, without the prefixes (`filter`).
    pub filter: TopicFilter,
    /// Which way messages go (`direction`, `out` by default as in mosquitto).
    pub direction: Direction,
    /// The QoS of the bridge's subscriptions (`qos`, 0 by default): a message goes
    /// across at the lower of its own QoS and this one.
    pub qos: QoS,
    /// Put before the filter on this broker (`local-prefix`).
    pub local_prefix: String,
    /// Put before the filter on the remote (`remote-prefix`).
    pub remote_prefix: String,
}

impl BridgeTopic {
    /// A topic without prefixes.
    pub fn new(
        filter: &str,
        direction: Direction,
        qos: QoS,
    ) -> Result<BridgeTopic, crate::protocol::TopicError> {
        Ok(BridgeTopic {
            filter: TopicFilter::new(filter)?,
            direction,
            qos,
            local_prefix: String::new(),
            remote_prefix: String::new(),
        })
    }

    /// The same with prefixes on this broker and on the remote. The prefixes are
    /// plain topic levels (no wildcards), usually ending with `/`.
    pub fn with_prefixes(
        mut self,
        local_prefix: impl Into<String>,
        remote_prefix: impl Into<String>,
    ) -> BridgeTopic {
        self.local_prefix = local_prefix.into();
        self.remote_prefix = remote_prefix.into();
        self
    }
}
