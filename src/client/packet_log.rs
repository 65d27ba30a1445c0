//! The client's packet log: one line per packet sent or received, at `debug` level
//! with target [`PACKET_LOG_TARGET`], in the words mosquitto's client library uses
//! (`Client wren-0a1b sending PUBLISH (d0, q1, r0, m1, 'a/b', ... (5 bytes))`), so
//! that the tools' `-d` output reads line for line like mosquitto_pub's and
//! mosquitto_sub's.

use std::cell::Cell;

use crate::protocol::{Packet, ProtocolVersion};

/// The log target of the packet lines.
pub const PACKET_LOG_TARGET: &str = "wren::client::packets";

thread_local! {
    /// The protocol of the last CONNECT this thread logged: the CONNACK that
    /// answers it is read by the same thread, and its code is logged as a 3.1.1
    /// return code or as an MQTT 5 reason code accordingly.
    static CONNECT_VERSION: Cell<ProtocolVersion> = const { Cell::new(ProtocolVersion::V3_1_1) };
    /// The last packet identifier this thread logged as sent. mosquitto numbers
    /// every PUBLISH it sends, QoS 0 included, from the counter its SUBSCRIBEs
    /// and QoS 1/2 PUBLISHes take their ids from, and logs a QoS 0 PUBLISH with
    /// that number; the line for one here takes the number after the last id sent.
    static LAST_SENT_ID: Cell<u16> = const { Cell::new(0) };
}

/// The `m` number of a sent PUBLISH (see `LAST_SENT_ID`), or of a received one
/// (its packet identifier, 0 for QoS 0).
fn publish_mid(sending: bool, publish: &crate::protocol::Publish) -> u16 {
    match (sending, publish.packet_id) {
        (true, Some(id)) => {
            LAST_SENT_ID.with(|last| last.set(id.get()));
            id.get()
        }
        (true, None) => LAST_SENT_ID.with(|last| {
            let next = last.get().checked_add(1).unwrap_or(1);
            last.set(next);
            next
        }),
        (false, id) => id.map_or(0, |id| id.get()),
    }
}

/// Logs `packet` in mosquitto's words: `Client <id> sending CONNECT`.
pub(crate) fn log_packet(client_id: &str, sending: bool, packet: &Packet) {
    if log::log_enabled!(target: PACKET_LOG_TARGET, log::Level::Debug) {
        for line in lines(client_id, sending, packet) {
            log::debug!(target: PACKET_LOG_TARGET, "{line}");
        }
    }
}

/// The whole lines mosquitto's client library logs for `packet`:
/// `Client <id> sending <packet>` (`(null)` for an empty id), with two exceptions
/// it makes. After an MQTT 5
/// CONNACK that assigns a client identifier, that identifier names the client;
/// a DISCONNECT from the broker is `Received DISCONNECT (<reason code>)`.
pub(crate) fn lines(client_id: &str, sending: bool, packet: &Packet) -> Vec<String> {
    match (sending, packet) {
        (true, Packet::Connect(connect)) => CONNECT_VERSION.with(|v| v.set(connect.protocol)),
        (false, Packet::Disconnect(d)) => {
            return vec![format!("Received DISCONNECT ({})", d.reason_code.0)]
        }
        (false, Packet::ConnAck(c)) => {
            if let Some(assigned) = &c.properties().assigned_client_identifier {
                return vec![format!("Client {assigned} received {}", connack(c))];
            }
        }
        _ => {}
    }
    let direction = if sending { "sending" } else { "received" };
    // No identifier yet (the broker is to assign one): mosquitto prints C's
    // "(null)".
    let client_id = if client_id.is_empty() {
        "(null)"
    } else {
        client_id
    };
    describe(sending, packet)
        .into_iter()
        .map(|line| format!("Client {client_id} {direction} {line}"))
        .collect()
}

/// `CONNACK (<code>)`: the 3.1.1 return code, or in MQTT 5 the reason code.
fn connack(c: &crate::protocol::ConnAck) -> String {
    let code = match CONNECT_VERSION.with(Cell::get) {
        ProtocolVersion::V5 => c.code.0,
        _ => c.return_code() as u8,
    };
    format!("CONNACK ({code})")
}

/// The words mosquitto's client library logs for `packet` (lib/send_*.c and
/// lib/handle_*.c), so that `-d` output of our tools reads like theirs. One line per
/// filter for SUBSCRIBE and UNSUBSCRIBE, as mosquitto does. Reason codes are
/// MQTT 5's (always 0 in 3.1.1); SUBSCRIBE's options are the subscription options
/// byte without the QoS (No Local 0x04, Retain As Published 0x08, Retain Handling
/// 0x10 / 0x20).
pub(crate) fn describe(sending: bool, packet: &Packet) -> Vec<String> {
    let line = match (sending, packet) {
        (_, Packet::Connect(_)) => "CONNECT".to_owned(),
        (_, Packet::ConnAck(c)) => connack(c),
        (_, Packet::Publish(p)) => format!(
            "PUBLISH (d{}, q{}, r{}, m{}, '{}', ... ({} bytes))",
            p.dup as u8,
            p.qos as u8,
            p.retain as u8,
            publish_mid(sending, p),
            // A message sent with a topic alias alone has no topic: mosquitto
            // prints C's "(null)" for it.
            if sending && p.topic.as_str().is_empty() {
                "(null)"
            } else {
                p.topic.as_str()
            },
            p.payload.len()
        ),
        (true, Packet::PubAck(a)) => format!("PUBACK (m{}, rc{})", a.packet_id, a.reason_code.0),
        (false, Packet::PubAck(a)) => {
            format!("PUBACK (Mid: {}, RC:{})", a.packet_id, a.reason_code.0)
        }
        (true, Packet::PubRec(a)) => format!("PUBREC (m{}, rc{})", a.packet_id, a.reason_code.0),
        (false, Packet::PubRec(a)) => format!("PUBREC (Mid: {})", a.packet_id),
        (true, Packet::PubRel(a)) => format!("PUBREL (m{})", a.packet_id),
        (false, Packet::PubRel(a)) => format!("PUBREL (Mid: {})", a.packet_id),
        (true, Packet::PubComp(a)) => format!("PUBCOMP (m{})", a.packet_id),
        (false, Packet::PubComp(a)) => {
            format!("PUBCOMP (Mid: {}, RC:{})", a.packet_id, a.reason_code.0)
        }
        (_, Packet::Subscribe(s)) => {
            if sending {
                LAST_SENT_ID.with(|last| last.set(s.packet_id.get()));
            }
            return s
                .filters
                .iter()
                .map(|f| {
                    let options = (u8::from(f.no_local) << 2)
                        | (u8::from(f.retain_as_published) << 3)
                        | ((f.retain_handling as u8) << 4);
                    format!(
                        "SUBSCRIBE (Mid: {}, Topic: {}, QoS: {}, Options: 0x{options:02x})",
                        s.packet_id, f.filter, f.qos as u8
                    )
                })
                .collect();
        }
        (_, Packet::SubAck(_)) => "SUBACK".to_owned(),
        (_, Packet::Unsubscribe(u)) => {
            if sending {
                LAST_SENT_ID.with(|last| last.set(u.packet_id.get()));
            }
            return u
                .filters
                .iter()
                .map(|f| format!("UNSUBSCRIBE (Mid: {}, Topic: {})", u.packet_id, f))
                .collect();
        }
        (_, Packet::UnsubAck(_)) => "UNSUBACK".to_owned(),
        (_, Packet::PingReq) => "PINGREQ".to_owned(),
        (_, Packet::PingResp) => "PINGRESP".to_owned(),
        (_, Packet::Disconnect(_)) => "DISCONNECT".to_owned(),
        (_, Packet::Auth(_)) => "AUTH".to_owned(),
    };
    vec![line]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{
        ConnAck, Connect, Disconnect, PacketId, Properties, PubAck, Publish, QoS, ReasonCode,
        RetainHandling, Subscribe, SubscribeFilter, TopicFilter, TopicName,
    };

    fn id(n: u16) -> PacketId {
        PacketId::new(n).unwrap()
    }

    fn connect(protocol: ProtocolVersion) -> Packet {
        let mut connect = Connect::new("");
        connect.protocol = protocol;
        Packet::Connect(Box::new(connect))
    }

    #[test]
    fn mqtt_5_lines_are_mosquittos() {
        // CONNECT without an identifier, then the one the broker assigns.
        assert_eq!(
            lines("", true, &connect(ProtocolVersion::V5)),
            ["Client (null) sending CONNECT"]
        );
        let mut properties = Properties::new();
        properties.assigned_client_identifier = Some("auto-1".into());
        let connack = Packet::ConnAck(ConnAck {
            session_present: false,
            code: ReasonCode::NOT_AUTHORIZED,
            properties: Some(Box::new(properties)),
        });
        assert_eq!(
            lines("", false, &connack),
            ["Client auto-1 received CONNACK (135)"]
        );
        let mut ack = PubAck::new(id(1));
        ack.reason_code = ReasonCode::NO_MATCHING_SUBSCRIBERS;
        assert_eq!(
            lines("c", false, &Packet::PubAck(ack)),
            ["Client c received PUBACK (Mid: 1, RC:16)"]
        );
        assert_eq!(
            lines(
                "c",
                false,
                &Packet::Disconnect(Disconnect::new(ReasonCode::SERVER_SHUTTING_DOWN))
            ),
            ["Received DISCONNECT (139)"]
        );
        let mut filter = SubscribeFilter::new(TopicFilter::new("a/#").unwrap(), QoS::AtLeastOnce);
        filter.retain_as_published = true;
        filter.retain_handling = RetainHandling::DoNotSend;
        assert_eq!(
            lines(
                "c",
                true,
                &Packet::Subscribe(Subscribe::new(id(3), vec![filter]))
            ),
            ["Client c sending SUBSCRIBE (Mid: 3, Topic: a/#, QoS: 1, Options: 0x28)"]
        );
    }

    #[test]
    fn a_3_1_1_connack_shows_the_return_code() {
        let _ = lines("c", true, &connect(ProtocolVersion::V3_1_1));
        let connack = Packet::ConnAck(ConnAck {
            session_present: false,
            code: ReasonCode::NOT_AUTHORIZED,
            properties: None,
        });
        assert_eq!(
            lines("c", false, &connack),
            ["Client c received CONNACK (5)"]
        );
    }

    #[test]
    fn qos_0_publishes_sent_take_the_next_message_id() {
        let publish = |qos: QoS, packet_id: Option<PacketId>| {
            let mut p = Publish::new(TopicName::new("t").unwrap(), "x", qos, false);
            p.packet_id = packet_id;
            Packet::Publish(p)
        };
        assert_eq!(
            lines("c", true, &publish(QoS::AtLeastOnce, Some(id(4)))),
            ["Client c sending PUBLISH (d0, q1, r0, m4, 't', ... (1 bytes))"]
        );
        assert_eq!(
            lines("c", true, &publish(QoS::AtMostOnce, None)),
            ["Client c sending PUBLISH (d0, q0, r0, m5, 't', ... (1 bytes))"]
        );
        assert_eq!(
            lines("c", false, &publish(QoS::AtMostOnce, None)),
            ["Client c received PUBLISH (d0, q0, r0, m0, 't', ... (1 bytes))"]
        );
    }
}
