//! The value types a client's options are made of: [`Will`], [`Reconnect`],
//! [`TlsVersion`] and [`TopicDefaults`].

use std::time::Duration;

use bytes::Bytes;

use crate::protocol::{Properties, QoS};

/// The message the broker publishes for this client if it disappears without saying
/// DISCONNECT: its socket breaks, or it stops answering keep-alive.
///
/// This is the will as a client asks for it ([`ClientOptions::with_will`], or the
/// `will:` of a client settings file, [`ClientConfig::will`]); the client sends it
/// in CONNECT as the wire form, [`wren::protocol::Will`](crate::protocol::Will),
/// after checking its topic.
///
/// [`ClientOptions::with_will`]: super::ClientOptions::with_will
/// [`ClientConfig::will`]: crate::config::ClientConfig::will
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// Where the will is published.
    pub topic: String,
    /// What it says.
    pub payload: Bytes,
    /// Its QoS.
    pub qos: QoS,
    /// Whether the broker keeps it as the topic's retained message.
    pub retain: bool,
    /// MQTT 5: the will's properties: Will Delay Interval, Message Expiry
    /// Interval, Content Type, Response Topic, Correlation Data, Payload Format
    /// Indicator and user properties. Empty by default; ignored over MQTT 3.1.1.
    pub properties: Properties,
}

impl Will {
    /// A will: `payload` to be published on `topic`. The topic is checked when the
    /// client connects.
    pub fn new(
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Will {
        Will {
            topic: topic.into(),
            payload: payload.into(),
            qos,
            retain,
            properties: Properties::new(),
        }
    }

    /// MQTT 5: the will with these properties (those a will cannot carry are left
    /// out when it is sent).
    ///
    /// ```
    /// use wren::client::{QoS, Will};
    /// use wren::protocol::Properties;
    ///
    /// let mut properties = Properties::new();
    /// properties.will_delay_interval = Some(30); // not for a blip of 30 s
    /// properties.content_type = Some("text/plain".into());
    /// let will = Will::new("sensors/1/status", "gone", QoS::AtLeastOnce, true)
    ///     .with_properties(properties);
    /// ```
    pub fn with_properties(mut self, properties: Properties) -> Will {
        self.properties = properties;
        self
    }
}

/// Whether and how the client reconnects when its connection breaks.
///
/// Attempts start a quarter of a second after the loss and back off exponentially
/// up to `max_interval`; the wait starts small again only after a connection has
/// lasted `max_interval`, so a broker that accepts and drops the client at once is
/// not hammered. After reconnecting the client subscribes again (when the
/// broker kept no session) and sends again, with DUP set, every QoS 1/2 message the
/// broker had not acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconnect {
    /// Reconnect at all. Without it a lost connection ends the client: every call
    /// then fails with [`Error::Disconnected`](crate::client::Error::Disconnected).
    pub enabled: bool,
    /// The longest wait between two attempts.
    pub max_interval: Duration,
    /// How many attempts in a row before giving up; `None` tries forever.
    pub retries: Option<u32>,
}

impl Default for Reconnect {
    /// Reconnect forever, waiting at most 10 s between attempts (hbmqtt's
    /// `reconnect_max_interval`).
    fn default() -> Self {
        Reconnect {
            enabled: true,
            max_interval: Duration::from_secs(10),
            retries: None,
        }
    }
}

impl Reconnect {
    /// Never reconnect.
    pub fn disabled() -> Reconnect {
        Reconnect {
            enabled: false,
            ..Reconnect::default()
        }
    }

    /// How long to wait before attempt number `attempt` (0 for the first).
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let base = Duration::from_millis(250);
        base.checked_mul(1u32 << attempt.min(16))
            .unwrap_or(self.max_interval)
            .min(self.max_interval)
    }
}

/// The oldest TLS version a client accepts from the broker
/// ([`ClientOptions::with_tls_min_version`](super::ClientOptions::with_tls_min_version));
/// TLS 1.2 unless told otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.0, for old brokers only.
    V1_0,
    /// TLS 1.1, for old brokers only.
    V1_1,
    /// TLS 1.2, the default.
    V1_2,
}

impl TlsVersion {
    pub(super) fn protocol(self) -> native_tls::Protocol {
        match self {
            TlsVersion::V1_0 => native_tls::Protocol::Tlsv10,
            TlsVersion::V1_1 => native_tls::Protocol::Tlsv11,
            TlsVersion::V1_2 => native_tls::Protocol::Tlsv12,
        }
    }
}

/// The QoS and retain flag used for one topic by
/// [`Client::publish_default`](crate::client::Client::publish_default) (hbmqtt's `topics`),
/// set with [`ClientOptions::with_topic_defaults`](super::ClientOptions::with_topic_defaults)
/// or read from a client settings file ([`ClientConfig::topics`](crate::config::ClientConfig::topics)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicDefaults {
    /// The QoS to publish with.
    pub qos: QoS,
    /// Whether to retain.
    pub retain: bool,
}
