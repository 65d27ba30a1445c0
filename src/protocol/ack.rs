//! The packets that carry nothing but a packet identifier: PUBACK, PUBREC, PUBREL,
//! PUBCOMP (sections 3.4 to 3.7) and UNSUBACK (section 3.11).
//!
//! ```text
//! fixed header   0x40 PUBACK, 0x50 PUBREC, 0x62 PUBREL, 0x70 PUBCOMP, 0xB0 UNSUBACK;
//!                remaining length 0x02
//! packet id      two bytes, never zero
//! ```
//!
//! PUBREL is the one with flags `0010` [MQTT-3.6.1-1].

use super::codec::{first_byte, write_fixed_header, write_u16, Reader};
use super::error::{DecodeError, EncodeError};
use super::{PacketId, PacketType};

macro_rules! id_only_packet {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name {
            /// The identifier of the packet this one answers.
            pub packet_id: PacketId,
        }

        impl $name {
            /// The packet for `packet_id`.
            pub fn new(packet_id: PacketId) -> $name {
                $name { packet_id }
            }

            pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
                write_fixed_header(out, first_byte(PacketType::$name), 2)?;
                write_u16(out, self.packet_id.get());
                Ok(())
            }

            pub(crate) fn decode(reader: &mut Reader) -> Result<$name, DecodeError> {
                Ok($name {
                    packet_id: reader.packet_id()?,
                })
            }
        }
    };
}

id_only_packet!(
    /// PUBACK: the receiver of a QoS 1 PUBLISH has it.
    PubAck
);
id_only_packet!(
    /// PUBREC: QoS 2, step 2: the receiver of the PUBLISH has it and holds its
    /// packet identifier.
    PubRec
);
id_only_packet!(
    /// PUBREL: QoS 2, step 3: the sender lets the receiver release the identifier.
    PubRel
);
id_only_packet!(
    /// PUBCOMP: QoS 2, step 4: the exchange is complete.
    PubComp
);
id_only_packet!(
    /// UNSUBACK: the server has processed an UNSUBSCRIBE.
    UnsubAck
);

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::protocol::{Decoder, Packet};

    fn id(value: u16) -> PacketId {
        PacketId::new(value).unwrap()
    }

    #[test]
    fn each_ack_has_its_first_byte_mqtt_2_2_2_1() {
        let cases = [
            (Packet::PubAck(PubAck::new(id(0x1234))), 0x40),
            (Packet::PubRec(PubRec::new(id(0x1234))), 0x50),
            (Packet::PubRel(PubRel::new(id(0x1234))), 0x62),
            (Packet::PubComp(PubComp::new(id(0x1234))), 0x70),
            (Packet::UnsubAck(UnsubAck::new(id(0x1234))), 0xB0),
        ];
        for (packet, first) in cases {
            let mut out = Vec::new();
            packet.encode(&mut out).unwrap();
            assert_eq!(out, [first, 2, 0x12, 0x34]);
            let decoded = Decoder::new().decode(&mut BytesMut::from(&out[..]));
            assert_eq!(decoded, Ok(Some(packet)));
        }
    }
}
