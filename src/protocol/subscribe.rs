//! SUBSCRIBE: a client asks for messages (section 3.8).
//!
//! ```text
//! fixed header   0x82, remaining length  (flags 0010 [MQTT-3.8.1-1])
//! packet id      two bytes, never zero
//! MQTT 5:        properties (Subscription Identifier, User Property)
//! payload        one or more of: topic filter (two-byte length, UTF-8),
//!                requested QoS (one byte: 0, 1 or 2 [MQTT-3.8.3-4]); in MQTT 5 the
//!                byte holds the subscription options: bits 1-0 QoS, 2 No Local,
//!                3 Retain As Published, 5-4 Retain Handling, 7-6 reserved (0)
//! ```

use super::codec::{field_len, first_byte, write_fixed_header, write_prefixed, write_u16, Reader};
use super::error::{DecodeError, EncodeError};
use super::properties::{self, Properties, PropertyContext};
use super::{PacketId, PacketType, ProtocolVersion, QoS, TopicFilter};

const NO_LOCAL: u8 = 0b0000_0100;
const RETAIN_AS_PUBLISHED: u8 = 0b0000_1000;
const RETAIN_HANDLING_SHIFT: u8 = 4;
const RESERVED: u8 = 0b1100_0000;

/// SUBSCRIBE: one or more topic filters, each with the highest QoS the client wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Pairs the SUBSCRIBE with its SUBACK.
    pub packet_id: PacketId,
    /// At least one filter [MQTT-3.8.3-3].
    pub filters: Vec<SubscribeFilter>,
    /// MQTT 5 properties; `None` when there are none.
    pub properties: Option<Box<Properties>>,
}

/// MQTT 5: whether retained messages are sent when the subscription is made
/// (section 3.8.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum RetainHandling {
    /// 0: send retained messages at the time of the subscribe (what 3.1.1 does).
    #[default]
    SendAtSubscribe = 0,
    /// 1: send them only if the subscription did not exist yet.
    SendIfNew = 1,
    /// 2: do not send them.
    DoNotSend = 2,
}

/// One topic filter of a SUBSCRIBE, with the QoS asked for and, in MQTT 5, the
/// other subscription options (3.1 and 3.1.1 carry only the QoS; the others keep
/// their defaults).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubscribeFilter {
    /// What to subscribe to.
    pub filter: TopicFilter,
    /// The highest QoS the client wants messages delivered with.
    pub qos: QoS,
    /// MQTT 5: do not send this client the messages it publishes itself.
    pub no_local: bool,
    /// MQTT 5: keep the RETAIN flag of forwarded messages as published.
    pub retain_as_published: bool,
    /// MQTT 5: when to send retained messages.
    pub retain_handling: RetainHandling,
}

impl SubscribeFilter {
    /// A filter with the QoS asked for and the default options.
    pub fn new(filter: TopicFilter, qos: QoS) -> SubscribeFilter {
        SubscribeFilter {
            filter,
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::SendAtSubscribe,
        }
    }

    /// The MQTT 5 subscription options byte.
    fn options(&self) -> u8 {
        self.qos as u8
            | if self.no_local { NO_LOCAL } else { 0 }
            | if self.retain_as_published {
                RETAIN_AS_PUBLISHED
            } else {
                0
            }
            | (self.retain_handling as u8) << RETAIN_HANDLING_SHIFT
    }
}

impl Subscribe {
    /// The SUBSCRIBE `packet_id` with `filters` and no properties.
    pub fn new(packet_id: PacketId, filters: Vec<SubscribeFilter>) -> Subscribe {
        Subscribe {
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
            return Err(EncodeError::EmptyList(PacketType::Subscribe));
        }
        let v5 = version == ProtocolVersion::V5;
        let props = properties::present(&self.properties);
        let mut len = 2;
        if v5 {
            len += properties::encoded_len(props, PropertyContext::Subscribe)?;
        }
        for entry in &self.filters {
            len += field_len("topic filter", entry.filter.len())? + 1;
        }
        write_fixed_header(out, first_byte(PacketType::Subscribe), len)?;
        write_u16(out, self.packet_id.get());
        if v5 {
            properties::write(out, props);
        }
        for entry in &self.filters {
            write_prefixed(out, entry.filter.as_bytes());
            out.push(if v5 { entry.options() } else { entry.qos as u8 });
        }
        Ok(())
    }
}

pub(crate) fn decode(reader: &mut Reader, v5: bool) -> Result<Subscribe, DecodeError> {
    let packet_id = reader.packet_id()?;
    let properties = if v5 {
        properties::decode(reader, PropertyContext::Subscribe)?
    } else {
        None
    };
    // One allocation, sized by the entries that really arrived (each takes at least
    // four bytes), not by any number the peer wrote.
    let mut filters = Vec::with_capacity(reader.count_filters(1));
    while !reader.is_empty() {
        let filter = reader.topic_filter()?;
        let requested = reader.u8(if v5 {
            "subscription options"
        } else {
            "requested QoS"
        })?;
        if v5 && requested & RESERVED != 0 {
            return Err(DecodeError::SubscriptionOptionsReservedBits(requested));
        }
        let bits = if v5 { requested & 0b11 } else { requested };
        let qos = QoS::from_u8(bits).ok_or(DecodeError::InvalidRequestedQoS(requested))?;
        let mut entry = SubscribeFilter::new(filter, qos);
        if v5 {
            entry.no_local = requested & NO_LOCAL != 0;
            entry.retain_as_published = requested & RETAIN_AS_PUBLISHED != 0;
            entry.retain_handling = match (requested >> RETAIN_HANDLING_SHIFT) & 0b11 {
                0 => RetainHandling::SendAtSubscribe,
                1 => RetainHandling::SendIfNew,
                2 => RetainHandling::DoNotSend,
                _ => return Err(DecodeError::InvalidRetainHandling),
            };
            if entry.no_local && entry.filter.as_str().starts_with("$share/") {
                return Err(DecodeError::NoLocalOnSharedSubscription(
                    entry.filter.as_str().to_owned(),
                ));
            }
        }
        filters.push(entry);
    }
    if filters.is_empty() {
        return Err(DecodeError::NoSubscribeFilters);
    }
    Ok(Subscribe {
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
    fn subscribe_with_two_filters_round_trips() {
        let bytes: &[u8] = &[
            0x82, 12, // SUBSCRIBE, remaining length
            0x00, 0x07, // packet id
            0, 3, b'a', b'/', b'#', 1, // "a/#" QoS 1
            0, 1, b'+', 2, // "+" QoS 2
        ];
        let subscribe = Subscribe::new(
            PacketId::new(7).unwrap(),
            vec![
                SubscribeFilter::new(TopicFilter::new("a/#").unwrap(), QoS::AtLeastOnce),
                SubscribeFilter::new(TopicFilter::new("+").unwrap(), QoS::ExactlyOnce),
            ],
        );
        let mut out = Vec::new();
        Packet::Subscribe(subscribe.clone())
            .encode(&mut out)
            .unwrap();
        assert_eq!(out, bytes);
        assert_eq!(
            Decoder::new().decode(&mut BytesMut::from(bytes)),
            Ok(Some(Packet::Subscribe(subscribe)))
        );
    }
}
