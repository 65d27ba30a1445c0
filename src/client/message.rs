//! [`Message`]: an application message received from the broker.

use bytes::Bytes;

use super::Error;
use crate::protocol::{PacketId, Properties, Publish, QoS, TopicName};

/// A message the broker delivered to this client.
///
/// Cloning one is cheap: the topic and the payload are shared, not copied.
///
/// ```no_run
/// use wren::client::{Client, QoS};
///
/// let client = Client::connect("mqtt://127.0.0.1:1883")?;
/// let subscription = client.subscribe("sensors/#", QoS::AtLeastOnce)?;
/// for message in subscription.iter().take(1) {
///     println!("{} (QoS {}): {}", message.topic(), message.qos(), message.payload_str()?);
/// }
/// # Ok::<(), wren::client::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    topic: TopicName,
    payload: Bytes,
    qos: QoS,
    retain: bool,
    dup: bool,
    packet_id: Option<PacketId>,
    /// MQTT 5 properties; `None` when there are none (always, before MQTT 5).
    properties: Option<Box<Properties>>,
}

impl Message {
    /// A message, as a broker would deliver it. Useful for testing code that
    /// consumes messages.
    pub fn new(topic: TopicName, payload: impl Into<Bytes>, qos: QoS, retain: bool) -> Message {
        Message {
            topic,
            payload: payload.into(),
            qos,
            retain,
            dup: false,
            packet_id: None,
            properties: None,
        }
    }

    pub(crate) fn from_publish(publish: &Publish) -> Message {
        Message {
            topic: publish.topic.clone(),
            payload: publish.payload.clone(),
            qos: publish.qos,
            retain: publish.retain,
            dup: publish.dup,
            packet_id: publish.packet_id,
            properties: publish.properties.clone(),
        }
    }

    /// MQTT 5: the message's properties as the broker forwarded them (user
    /// properties in order, content type, response topic, correlation data,
    /// message expiry, subscription identifiers ...); empty for a message without
    /// any, and for every message over MQTT 3.1.1.
    pub fn properties(&self) -> &Properties {
        crate::protocol::properties::or_empty(&self.properties)
    }

    /// The topic the message was published to.
    pub fn topic(&self) -> &str {
        self.topic.as_str()
    }

    /// The topic, as the validated [`TopicName`].
    pub fn topic_name(&self) -> &TopicName {
        &self.topic
    }

    /// The payload: any bytes, possibly none.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// The payload as text.
    ///
    /// Fails with [`Error::PayloadNotUtf8`], naming the topic and the position of the
    /// first bad byte, when the payload is not UTF-8: MQTT payloads are bytes, and
    /// nothing promises they are text.
    pub fn payload_str(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.payload).map_err(|source| Error::PayloadNotUtf8 {
            topic: self.topic.to_string(),
            source,
        })
    }

    /// The payload parsed as JSON into `T`.
    ///
    /// ```
    /// use wren::client::{Message, QoS};
    /// use wren::protocol::TopicName;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Reading { celsius: f64 }
    ///
    /// let message = Message::new(TopicName::new("kitchen")?, r#"{"celsius": 21.5}"#, QoS::AtMostOnce, false);
    /// assert_eq!(message.json::<Reading>()?.celsius, 21.5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.payload).map_err(|source| Error::Json {
            topic: Some(self.topic.to_string()),
            source,
        })
    }

    /// The QoS the message was delivered with: the lower of the publisher's and the
    /// subscription's.
    pub fn qos(&self) -> QoS {
        self.qos
    }

    /// Whether this is a retained message, sent because a subscription was made
    /// rather than because someone just published it.
    pub fn retain(&self) -> bool {
        self.retain
    }

    /// Whether the broker says this may be a second attempt at delivering it.
    pub fn dup(&self) -> bool {
        self.dup
    }

    /// The packet identifier of the PUBLISH that brought the message: `None` for
    /// QoS 0. Chosen by the broker for this connection; mosquitto_sub prints it as
    /// `%m`.
    pub fn packet_id(&self) -> Option<PacketId> {
        self.packet_id
    }

    /// Takes the payload out of the message, without copying.
    pub fn into_payload(self) -> Bytes {
        self.payload
    }
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("topic", &self.topic)
            .field("payload", &format_args!("<{} bytes>", self.payload.len()))
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .field("dup", &self.dup)
            .field("packet_id", &self.packet_id)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(payload: &'static [u8]) -> Message {
        Message::new(
            TopicName::new("t/1").unwrap(),
            payload,
            QoS::AtLeastOnce,
            false,
        )
    }

    #[test]
    fn a_message_keeps_the_packet_id_and_flags_of_its_publish() {
        let mut publish = Publish::new(TopicName::new("t").unwrap(), "x", QoS::ExactlyOnce, true);
        publish.packet_id = PacketId::new(42);
        publish.dup = true;
        let message = Message::from_publish(&publish);
        assert_eq!(message.packet_id(), PacketId::new(42));
        assert!(message.dup() && message.retain());
        assert_eq!(message.qos(), QoS::ExactlyOnce);
        assert_eq!(
            Message::new(publish.topic, "x", QoS::AtMostOnce, false).packet_id(),
            None
        );
    }

    #[test]
    fn payload_str_names_the_topic_when_the_payload_is_not_utf8() {
        let error = message(b"ok\xFF").payload_str().unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("'t/1'") && text.contains("not UTF-8"),
            "{text}"
        );
        assert_eq!(message(b"fine").payload_str().unwrap(), "fine");
    }

    #[test]
    fn json_reports_the_topic_of_a_bad_document() {
        let error = message(b"{not json")
            .json::<serde_json::Value>()
            .unwrap_err();
        assert!(error.to_string().contains("'t/1'"), "{error}");
    }
}
