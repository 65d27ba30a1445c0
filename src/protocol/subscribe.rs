//! SUBSCRIBE: a client asks for messages (section 3.8).
//!
//! ```text
//! fixed header   0x82, remaining length  (flags 0010 [MQTT-3.8.1-1])
//! packet id      two bytes, never zero
//! payload        one or more of: topic filter (two-byte length, UTF-8),
//!                requested QoS (one byte: 0, 1 or 2 [MQTT-3.8.3-4])
//! ```

use super::codec::{field_len, first_byte, write_fixed_header, write_prefixed, write_u16, Reader};
use super::error::{DecodeError, EncodeError};
use super::{PacketId, PacketType, QoS, TopicFilter};

/// SUBSCRIBE: one or more topic filters, each with the highest QoS the client wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Pairs the SUBSCRIBE with its SUBACK.
    pub packet_id: PacketId,
    /// At least one filter [MQTT-3.8.3-3].
    pub filters: Vec<SubscribeFilter>,
}

/// One topic filter of a SUBSCRIBE, with the QoS asked for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubscribeFilter {
    /// What to subscribe to.
    pub filter: TopicFilter,
    /// The highest QoS the client wants messages delivered with.
    pub qos: QoS,
}

impl SubscribeFilter {
    /// A filter with the QoS asked for.
    pub fn new(filter: TopicFilter, qos: QoS) -> SubscribeFilter {
        SubscribeFilter { filter, qos }
    }
}

impl Subscribe {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::EmptyList(PacketType::Subscribe));
        }
        let mut len = 2;
        for entry in &self.filters {
            len += field_len("topic filter", entry.filter.len())? + 1;
        }
        write_fixed_header(out, first_byte(PacketType::Subscribe), len)?;
        write_u16(out, self.packet_id.get());
        for entry in &self.filters {
            write_prefixed(out, entry.filter.as_bytes());
            out.push(entry.qos as u8);
        }
        Ok(())
    }
}

pub(crate) fn decode(reader: &mut Reader) -> Result<Subscribe, DecodeError> {
    let packet_id = reader.packet_id()?;
    // One allocation, sized by the entries that really arrived (each takes at least
    // four bytes), not by any number the peer wrote.
    let mut filters = Vec::with_capacity(reader.count_filters(1));
    while !reader.is_empty() {
        let filter = reader.topic_filter()?;
        let requested = reader.u8("requested QoS")?;
        let qos = QoS::from_u8(requested).ok_or(DecodeError::InvalidRequestedQoS(requested))?;
        filters.push(SubscribeFilter { filter, qos });
    }
    if filters.is_empty() {
        return Err(DecodeError::NoSubscribeFilters);
    }
    Ok(Subscribe { packet_id, filters })
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::protocol::{Decoder, Packet};

    #[test]
    fn subscribe_with_two_filters_round_trips() {
        let bytes: &[u8] = &[
            0x82, 12, // SUBSCRIBE, remaining length
            0x00, 0x07, // packet id
            0, 3, b'a', b'/', b'#', 1, // "a/#" QoS 1
            0, 1, b'+', 2, // "+" QoS 2
        ];
        let subscribe = Subscribe {
            packet_id: PacketId::new(7).unwrap(),
            filters: vec![
                SubscribeFilter::new(TopicFilter::new("a/#").unwrap(), QoS::AtLeastOnce),
                SubscribeFilter::new(TopicFilter::new("+").unwrap(), QoS::ExactlyOnce),
            ],
        };
        let mut out = Vec::new();
        subscribe.encode(&mut out).unwrap();
        assert_eq!(out, bytes);
        assert_eq!(
            Decoder::new().decode(&mut BytesMut::from(bytes)),
            Ok(Some(Packet::Subscribe(subscribe)))
        );
    }
}
