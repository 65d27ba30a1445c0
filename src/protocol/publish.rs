//! PUBLISH: a message on its way (section 3.3).
//!
//! ```text
//! fixed header   0x30 | DUP << 3 | QoS << 1 | RETAIN, remaining length
//! topic name     two-byte length, UTF-8, no wildcards
//! packet id      two bytes, only when QoS is 1 or 2 [MQTT-2.3.1-5]
//! MQTT 5:        properties; the topic name may be empty when a Topic Alias names
//!                the topic
//! payload        everything else, any bytes, possibly none
//! ```

use bytes::{Bytes, BytesMut};

use super::codec::{field_len, write_fixed_header, write_prefixed, write_u16, Reader};
use super::error::{DecodeError, EncodeError};
use super::properties::{self, Properties, PropertyContext};
use super::{PacketId, PacketType, ProtocolVersion, QoS, TopicName};

const DUP: u8 = 0b1000;
const QOS_SHIFT: u8 = 1;
const QOS_MASK: u8 = 0b0110;
const RETAIN: u8 = 0b0001;

/// PUBLISH: a message sent to a topic.
///
/// `Debug` shows the payload's size, not its bytes.
///
/// ```
/// use wren::protocol::{Publish, QoS, TopicName};
///
/// let message = Publish::new(TopicName::new("a/b")?, "hello", QoS::AtMostOnce, false);
/// assert_eq!(&message.payload[..], b"hello");
/// # Ok::<(), wren::protocol::TopicError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Publish {
    /// This may be a re-delivery of an earlier attempt (QoS 1 and 2 only).
    pub dup: bool,
    /// The quality of service of this delivery.
    pub qos: QoS,
    /// Sent to the server: keep this as the topic's retained message. Sent by the
    /// server: this is a retained message, delivered because of a new subscription.
    pub retain: bool,
    /// Where the message is published.
    pub topic: TopicName,
    /// Present exactly when `qos` is 1 or 2.
    pub packet_id: Option<PacketId>,
    /// The application message: any bytes, shared without copying.
    pub payload: Bytes,
    /// MQTT 5 properties; `None` when there are none.
    pub properties: Option<Box<Properties>>,
}

impl Publish {
    /// A PUBLISH without a packet identifier and without DUP. Give it a packet
    /// identifier before encoding one of QoS 1 or 2.
    pub fn new(topic: TopicName, payload: impl Into<Bytes>, qos: QoS, retain: bool) -> Publish {
        Publish {
            dup: false,
            qos,
            retain,
            topic,
            packet_id: None,
            payload: payload.into(),
            properties: None,
        }
    }

    /// The MQTT 5 properties (empty when there are none).
    pub fn properties(&self) -> &Properties {
        properties::or_empty(&self.properties)
    }

    /// Copies the topic and payload into one allocation of their own, exactly their
    /// size.
    ///
    /// A decoded PUBLISH shares the buffer its packet was read into: no copy on the
    /// way in, and one payload shared by every subscriber on the way out. But as
    /// long as any part of that buffer lives, all of it stays allocated, so a small
    /// message kept for long (a retained message, a message queued for an offline
    /// session) would pin a read buffer many times its size. Compact a message
    /// before storing it for longer than its delivery; it costs one copy of topic
    /// and payload, so leave messages that are routed at once alone.
    ///
    /// ```
    /// use wren::protocol::{Publish, QoS, TopicName};
    ///
    /// let mut message = Publish::new(TopicName::new("a/b")?, "hello", QoS::AtMostOnce, true);
    /// message.compact();
    /// assert_eq!((message.topic.as_str(), &message.payload[..]), ("a/b", &b"hello"[..]));
    /// # Ok::<(), wren::protocol::TopicError>(())
    /// ```
    pub fn compact(&mut self) {
        // One allocation for both, topic first: half the allocations and frees of
        // a copy each, for a message queued for as many sessions as match it.
        let topic_len = self.topic.len();
        let mut both = BytesMut::with_capacity(topic_len + self.payload.len());
        both.extend_from_slice(self.topic.as_bytes());
        both.extend_from_slice(&self.payload);
        let mut topic = both.freeze();
        self.payload = topic.split_off(topic_len);
        self.topic.use_copy(topic);
    }

    /// The first byte of the fixed header: type, DUP, QoS and RETAIN.
    fn first_byte(&self) -> u8 {
        ((PacketType::Publish as u8) << 4)
            | if self.dup { DUP } else { 0 }
            | ((self.qos as u8) << QOS_SHIFT)
            | if self.retain { RETAIN } else { 0 }
    }

    /// The number of bytes [`encode`](Self::encode) writes (MQTT 3.1.1).
    pub fn encoded_len(&self) -> usize {
        let body = self.body_len();
        Self::with_header(body)
    }

    /// The number of bytes [`encode_for`](Self::encode_for) writes for `version`:
    /// with the properties for MQTT 5. For checking a packet against the Maximum
    /// Packet Size a receiver allows.
    pub fn encoded_len_for(&self, version: ProtocolVersion) -> usize {
        let props = if version == ProtocolVersion::V5 {
            properties::encoded_len(
                properties::present(&self.properties),
                PropertyContext::Publish,
            )
            .unwrap_or(usize::MAX / 2)
        } else {
            0
        };
        Self::with_header(self.body_len().saturating_add(props))
    }

    fn with_header(body: usize) -> usize {
        let header = match body {
            0..=127 => 2,
            128..=16_383 => 3,
            16_384..=2_097_151 => 4,
            _ => 5,
        };
        header + body
    }

    fn body_len(&self) -> usize {
        2 + self.topic.len() + if self.packet_id.is_some() { 2 } else { 0 } + self.payload.len()
    }

    /// Appends the packet's MQTT 3.1.1 bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.encode_for(ProtocolVersion::V3_1_1, out)
    }

    /// Appends the packet's bytes for `version` to `out`: with its properties for
    /// MQTT 5, without them for 3.1 and 3.1.1.
    pub fn encode_for(
        &self,
        version: ProtocolVersion,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        if self.packet_id.is_some() != (self.qos != QoS::AtMostOnce) {
            return Err(EncodeError::PacketIdMismatch {
                qos: self.qos as u8,
            });
        }
        if self.dup && self.qos == QoS::AtMostOnce {
            return Err(EncodeError::DupWithQoS0);
        }
        field_len("topic name", self.topic.len())?;
        let v5 = version == ProtocolVersion::V5;
        let props = properties::present(&self.properties);
        if self.topic.is_empty() {
            if !v5 {
                return Err(EncodeError::NotInVersion {
                    what: "a PUBLISH without topic name",
                    version,
                });
            }
            if props.and_then(|p| p.topic_alias).is_none() {
                return Err(EncodeError::InvalidProperties(
                    DecodeError::EmptyTopicWithoutAlias,
                ));
            }
        }
        let props_len = if v5 {
            properties::encoded_len(props, PropertyContext::Publish)?
        } else {
            0
        };
        let body = self.body_len() + props_len;
        out.reserve(Self::with_header(body));
        write_fixed_header(out, self.first_byte(), body)?;
        write_prefixed(out, self.topic.as_bytes());
        if let Some(id) = self.packet_id {
            write_u16(out, id.get());
        }
        if v5 {
            properties::write(out, props);
        }
        out.extend_from_slice(&self.payload);
        Ok(())
    }
}

pub(crate) fn decode(reader: &mut Reader, flags: u8, v5: bool) -> Result<Publish, DecodeError> {
    let qos = QoS::from_u8((flags & QOS_MASK) >> QOS_SHIFT).ok_or(DecodeError::InvalidQoS {
        packet_type: PacketType::Publish,
    })?;
    let dup = flags & DUP != 0;
    if dup && qos == QoS::AtMostOnce {
        return Err(DecodeError::DupWithQoS0);
    }
    // MQTT 5 allows an empty topic name when a Topic Alias names the topic.
    let alias_only = v5 && reader.starts_with(&[0, 0]);
    let topic = if alias_only {
        reader.u16("topic name")?;
        TopicName::empty_for_alias()
    } else {
        reader.topic_name("topic name")?
    };
    let packet_id = match qos {
        QoS::AtMostOnce => None,
        _ => Some(reader.packet_id()?),
    };
    let properties = if v5 {
        properties::decode(reader, PropertyContext::Publish)?
    } else {
        None
    };
    if alias_only && properties.as_ref().and_then(|p| p.topic_alias).is_none() {
        return Err(DecodeError::EmptyTopicWithoutAlias);
    }
    Ok(Publish {
        dup,
        qos,
        retain: flags & RETAIN != 0,
        topic,
        packet_id,
        payload: reader.rest(),
        properties,
    })
}

impl std::fmt::Debug for Publish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publish")
            .field("dup", &self.dup)
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .field("topic", &self.topic)
            .field("packet_id", &self.packet_id)
            .field("payload", &format_args!("<{} bytes>", self.payload.len()))
            .field("properties", &self.properties)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::protocol::{Decoder, Packet};

    #[test]
    fn qos_1_publish_has_exact_bytes_and_leaves_the_next_packet() {
        let mut buffer = BytesMut::from(
            &[
                0x3B, 9, // PUBLISH, DUP, QoS 1, RETAIN; remaining length
                0, 3, b'a', b'/', b'b', // topic name
                0x12, 0x34, // packet id
                b'h', b'i', // payload
                0xC0, 0x00, // the next packet: PINGREQ
            ][..],
        );
        let expected = Publish {
            dup: true,
            qos: QoS::AtLeastOnce,
            retain: true,
            topic: TopicName::new("a/b").unwrap(),
            packet_id: PacketId::new(0x1234),
            payload: Bytes::from_static(b"hi"),
            properties: None,
        };
        let mut decoder = Decoder::new();
        assert_eq!(
            decoder.decode(&mut buffer),
            Ok(Some(Packet::Publish(expected.clone())))
        );
        assert_eq!(&buffer[..], &[0xC0, 0x00]);
        let mut out = Vec::new();
        expected.encode(&mut out).unwrap();
        assert_eq!(out.len(), expected.encoded_len());
        assert_eq!(out[..2], [0x3B, 9]);
    }

    #[test]
    fn qos_0_publish_has_no_packet_id_mqtt_2_3_1_5() {
        // The two bytes after the topic are payload, not a packet identifier.
        let mut buffer = BytesMut::from(&[0x30, 5, 0, 1, b't', 0x00, 0x07][..]);
        let Ok(Some(Packet::Publish(publish))) = Decoder::new().decode(&mut buffer) else {
            panic!("not decoded");
        };
        assert_eq!(publish.packet_id, None);
        assert_eq!(&publish.payload[..], &[0x00, 0x07]);
    }

    #[test]
    fn encoding_refuses_a_missing_or_surplus_packet_id() {
        let mut publish = Publish::new(TopicName::new("t").unwrap(), "", QoS::AtLeastOnce, false);
        let mut out = Vec::new();
        assert_eq!(
            publish.encode(&mut out),
            Err(EncodeError::PacketIdMismatch { qos: 1 })
        );
        publish.qos = QoS::AtMostOnce;
        publish.packet_id = PacketId::new(1);
        assert_eq!(
            publish.encode(&mut out),
            Err(EncodeError::PacketIdMismatch { qos: 0 })
        );
        assert!(out.is_empty());
    }

    #[test]
    fn a_compacted_publish_no_longer_shares_the_read_buffer() {
        let mut buffer = BytesMut::from(
            &[
                0x30, 7, // PUBLISH, QoS 0; remaining length
                0, 3, b'a', b'/', b'b', // topic name
                b'h', b'i', // payload
                0xC0, 0x00, // the next packet: PINGREQ
            ][..],
        );
        let read = buffer.as_ptr_range();
        let Ok(Some(Packet::Publish(mut publish))) = Decoder::new().decode(&mut buffer) else {
            panic!("not decoded");
        };
        let in_buffer = |bytes: &[u8]| read.contains(&bytes.as_ptr());
        assert!(in_buffer(publish.topic.as_bytes()) && in_buffer(&publish.payload));
        let before = publish.clone();
        publish.compact();
        assert!(!in_buffer(publish.topic.as_bytes()) && !in_buffer(&publish.payload));
        assert_eq!(publish, before);
    }

    #[test]
    fn debug_shows_the_payload_size_not_the_payload() {
        let publish = Publish::new(
            TopicName::new("t").unwrap(),
            "secret",
            QoS::AtMostOnce,
            false,
        );
        let shown = format!("{publish:?}");
        assert!(
            shown.contains("<6 bytes>") && !shown.contains("secret"),
            "{shown}"
        );
    }
}
