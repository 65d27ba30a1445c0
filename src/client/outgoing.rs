//! [`Publish`]: a message to publish, built step by step, with what MQTT 5 can say
//! about it.

use std::time::Duration;

use bytes::Bytes;

use super::{Error, Message};
use crate::protocol::{self, Properties, QoS, TopicName};

/// A message to publish: a topic and a payload, then, as needed, its QoS, RETAIN
/// and MQTT 5 properties. [`Client::send`](super::Client::send) publishes it.
///
/// ```no_run
/// use std::time::Duration;
/// use wren::client::{Client, ClientOptions, Publish, QoS};
/// use wren::protocol::ProtocolVersion;
///
/// let options = ClientOptions::from_url("mqtt://127.0.0.1:1883")?
///     .with_protocol(ProtocolVersion::V5);
/// let client = Client::connect(options)?;
/// client.send(
///     Publish::new("sensors/kitchen", "21.5")
///         .qos(QoS::AtLeastOnce)
///         .content_type("text/plain")
///         .user_property("unit", "celsius")
///         .message_expiry(Duration::from_secs(60)),
/// )?;
/// # Ok::<(), wren::client::Error>(())
/// ```
///
/// Properties are MQTT 5's: a client speaking 3.1 or 3.1.1 sends the message
/// without them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    topic: String,
    payload: Bytes,
    qos: QoS,
    retain: bool,
    properties: Properties,
}

impl Publish {
    /// A message to `topic`, at QoS 0, not retained, without properties.
    pub fn new(topic: impl Into<String>, payload: impl Into<Bytes>) -> Publish {
        Publish {
            topic: topic.into(),
            payload: payload.into(),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: Properties::new(),
        }
    }

    /// Replaces the message's MQTT 5 properties, as when passing on a message
    /// received elsewhere with its user properties, content type and the rest.
    /// Properties a PUBLISH may not carry from a client (Subscription
    /// Identifiers, a Topic Alias) are left out.
    pub fn with_properties(mut self, mut properties: Properties) -> Publish {
        properties.subscription_identifiers.clear();
        properties.topic_alias = None;
        self.properties = properties;
        self
    }

    /// Publishes at `qos`.
    pub fn qos(mut self, qos: QoS) -> Publish {
        self.qos = qos;
        self
    }

    /// Asks the broker to retain the message (or, with an empty payload, to clear
    /// the retained message of its topic).
    pub fn retain(mut self, retain: bool) -> Publish {
        self.retain = retain;
        self
    }

    /// Adds a User Property: a name and a value, kept in the order added, names
    /// free to repeat.
    pub fn user_property(mut self, name: impl Into<String>, value: impl Into<String>) -> Publish {
        self.properties
            .user_properties
            .push((name.into(), value.into()));
        self
    }

    /// The MIME type of the payload (Content Type).
    pub fn content_type(mut self, content_type: impl Into<String>) -> Publish {
        self.properties.content_type = Some(content_type.into());
        self
    }

    /// Says the payload is UTF-8 text (Payload Format Indicator 1).
    pub fn utf8_payload(mut self) -> Publish {
        self.properties.payload_format_indicator = Some(1);
        self
    }

    /// Where an answer should go (Response Topic), for request / response.
    pub fn response_topic(mut self, topic: impl Into<String>) -> Publish {
        self.properties.response_topic = Some(topic.into());
        self
    }

    /// Bytes that tie an answer to its request (Correlation Data).
    pub fn correlation_data(mut self, data: impl Into<Bytes>) -> Publish {
        self.properties.correlation_data = Some(data.into());
        self
    }

    /// How long the broker may keep the message for subscribers that have not
    /// received it yet (Message Expiry Interval), in whole seconds.
    pub fn message_expiry(mut self, expiry: Duration) -> Publish {
        self.properties.message_expiry_interval =
            Some(u32::try_from(expiry.as_secs()).unwrap_or(u32::MAX));
        self
    }

    /// The response to `request`, a message that named a Response Topic: to that
    /// topic, with the request's Correlation Data, as MQTT 5's request / response
    /// asks (section 4.10). `None` when the request named no Response Topic.
    ///
    /// ```no_run
    /// use wren::client::{Client, Publish, QoS};
    ///
    /// # let client: Client = todo!();
    /// for request in client.subscribe("services/time", QoS::AtLeastOnce)?.iter() {
    ///     if let Some(response) = Publish::response_to(&request, "12:00") {
    ///         client.send(response.qos(QoS::AtLeastOnce))?;
    ///     }
    /// }
    /// # Ok::<(), wren::client::Error>(())
    /// ```
    pub fn response_to(request: &Message, payload: impl Into<Bytes>) -> Option<Publish> {
        let properties = request.properties();
        let topic = properties.response_topic.clone()?;
        let mut response = Publish::new(topic, payload);
        response.properties.correlation_data = properties.correlation_data.clone();
        Some(response)
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The payload.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// The QoS it is published at.
    pub fn qos_level(&self) -> QoS {
        self.qos
    }

    /// Whether it is retained.
    pub fn is_retained(&self) -> bool {
        self.retain
    }

    /// Its MQTT 5 properties (empty when there are none).
    pub fn properties(&self) -> &Properties {
        &self.properties
    }

    /// The PUBLISH packet, after checking the topic and the properties as the
    /// broker would.
    pub(crate) fn into_packet(self) -> Result<protocol::Publish, Error> {
        let topic =
            TopicName::new(self.topic.as_str()).map_err(|e| Error::topic(&self.topic, e))?;
        let mut publish = protocol::Publish::new(topic, self.payload, self.qos, self.retain);
        if !self.properties.is_empty() {
            self.properties
                .check(protocol::PropertyContext::Publish)
                .map_err(|error| {
                    Error::InvalidOptions(format!("invalid message properties: {error}"))
                })?;
            publish.properties = Some(Box::new(self.properties));
        }
        Ok(publish)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builder_fills_the_packet_and_keeps_user_properties_in_order() {
        let publish = Publish::new("a/b", "x")
            .qos(QoS::ExactlyOnce)
            .retain(true)
            .user_property("k", "1")
            .user_property("k", "2")
            .content_type("text/plain")
            .response_topic("replies/1")
            .correlation_data(&b"id"[..])
            .message_expiry(Duration::from_secs(30))
            .into_packet()
            .unwrap();
        assert_eq!(publish.topic.as_str(), "a/b");
        assert_eq!((publish.qos, publish.retain), (QoS::ExactlyOnce, true));
        let properties = publish.properties();
        assert_eq!(
            properties.user_properties,
            [("k".to_string(), "1".to_string()), ("k".into(), "2".into())]
        );
        assert_eq!(properties.content_type.as_deref(), Some("text/plain"));
        assert_eq!(properties.response_topic.as_deref(), Some("replies/1"));
        assert_eq!(properties.correlation_data.as_deref(), Some(&b"id"[..]));
        assert_eq!(properties.message_expiry_interval, Some(30));
    }

    #[test]
    fn a_bad_topic_or_response_topic_is_refused_before_sending() {
        assert!(matches!(
            Publish::new("a/#", "x").into_packet(),
            Err(Error::InvalidTopic { .. })
        ));
        assert!(matches!(
            Publish::new("a", "x").response_topic("r/+").into_packet(),
            Err(Error::InvalidOptions(_))
        ));
    }

    #[test]
    fn a_message_without_properties_carries_none() {
        let publish = Publish::new("a", "x").into_packet().unwrap();
        assert_eq!(publish.properties, None);
    }
}
