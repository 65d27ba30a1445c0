//! UNSUBSCRIBE: a client takes back subscriptions (section 3.10).
//!
//! ```text
//! fixed header   0xA2, remaining length  (flags 0010 [MQTT-3.10.1-1])
//! packet id      two bytes, never zero
//! MQTT 5:        properties (User Property)
//! payload        one or more topic filters (two-byte length, UTF-8) [MQTT-3.10.3-2]
//! ```

use super::codec::{field_len, first_byte, write_fixed_header, write_prefixed, write_u16, Reader};
use super::error::{DecodeError, EncodeError};
use super::properties::{self, Properties, PropertyContext};
use super::{PacketId, PacketType, ProtocolVersion, TopicFilter};

/// UNSUBSCRIBE: the filters to remove, exactly as they were subscribed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Pairs the UNSUBSCRIBE with its UNSUBACK.
    pub packet_id: PacketId,
    /// At least one filter.
    pub filters: Vec<TopicFilter>,
    /// MQTT 5 properties; `None` when there are none.
    pub properties: Option<Box<Properties>>,
}

impl Unsubscribe {
    /// The UNSUBSCRIBE `packet_id` for `filters`, without properties.
    pub fn new(packet_id: PacketId, filters: Vec<TopicFilter>) -> Unsubscribe {
        Unsubscribe {
            packet_id,
            filters,
            properties: None,
        }
    }

    /// The MQTT 5 properties (empty when there are none).
    pub fn properties(&self) -> &Properties {
        properties::or_empty(&self.properties)
    }

    pub(crate) fn encode_for(
        &self,
        version: ProtocolVersion,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::EmptyList(PacketType::Unsubscribe));
        }
        let v5 = version == ProtocolVersion::V5;
        let props = properties::present(&self.properties);
        let mut len = 2;
        if v5 {
            len += properties::encoded_len(props, PropertyContext::Unsubscribe)?;
        }
        for filter in &self.filters {
            len += field_len("topic filter", filter.len())?;
        }
        write_fixed_header(out, first_byte(PacketType::Unsubscribe), len)?;
        write_u16(out, self.packet_id.get());
        if v5 {
            properties::write(out, props);
        }
        for filter in &self.filters {
            write_prefixed(out, filter.as_bytes());
        }
        Ok(())
    }
}

pub(crate) fn decode(reader: &mut Reader, v5: bool) -> Result<Unsubscribe, DecodeError> {
    let packet_id = reader.packet_id()?;
    let properties = if v5 {
        properties::decode(reader, PropertyContext::Unsubscribe)?
    } else {
        None
    };
    // One allocation, sized by the filters that really arrived (each takes at least
    // three bytes), not by any number the peer wrote.
    let mut filters = Vec::with_capacity(reader.count_filters(0));
    while !reader.is_empty() {
        filters.push(reader.topic_filter()?);
    }
    if filters.is_empty() {
        return Err(DecodeError::NoUnsubscribeFilters);
    }
    Ok(Unsubscribe {
        packet_id,
        filters,
        properties,
    })
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::protocol::{Decoder, Packet};

    #[test]
    fn unsubscribe_round_trips() {
        let bytes: &[u8] = &[0xA2, 9, 0x00, 0x09, 0, 1, b'a', 0, 2, b'b', b'/'];
        let unsubscribe = Unsubscribe::new(
            PacketId::new(9).unwrap(),
            vec![
                TopicFilter::new("a").unwrap(),
                TopicFilter::new("b/").unwrap(),
            ],
        );
        let mut out = Vec::new();
        Packet::Unsubscribe(unsubscribe.clone())
            .encode(&mut out)
            .unwrap();
        assert_eq!(out, bytes);
        assert_eq!(
            Decoder::new().decode(&mut BytesMut::from(bytes)),
            Ok(Some(Packet::Unsubscribe(unsubscribe)))
        );
    }
}
