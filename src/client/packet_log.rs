//! The client's packet log: one line per packet sent or received, at `debug` level
//! with target [`PACKET_LOG_TARGET`], in the words mosquitto's client library uses
//! (`Client wren-0a1b sending PUBLISH (d0, q1, r0, m1, 'a/b', ... (5 bytes))`), so
//! that the tools' `-d` output reads line for line like mosquitto_pub's and
//! mosquitto_sub's.

use crate::protocol::Packet;

/// The log target of the packet lines.
pub const PACKET_LOG_TARGET: &str = "wren::client::packets";

/// Logs `packet` in mosquitto's words: `Client <id> sending CONNECT`.
pub(crate) fn log_packet(client_id: &str, sending: bool, packet: &Packet) {
    if log::log_enabled!(target: PACKET_LOG_TARGET, log::Level::Debug) {
        let direction = if sending { "sending" } else { "received" };
        for line in describe(sending, packet) {
            log::debug!(target: PACKET_LOG_TARGET, "Client {client_id} {direction} {line}");
        }
    }
}

/// The words mosquitto's client library logs for `packet` (lib/send_*.c and
/// lib/handle_*.c), so that `-d` output of our tools reads like theirs. One line per
/// filter for SUBSCRIBE and UNSUBSCRIBE, as mosquitto does.
pub(crate) fn describe(sending: bool, packet: &Packet) -> Vec<String> {
    let line = match (sending, packet) {
        (_, Packet::Connect(_)) => "CONNECT".to_owned(),
        (_, Packet::ConnAck(c)) => format!("CONNACK ({})", c.return_code() as u8),
        (_, Packet::Publish(p)) => format!(
            "PUBLISH (d{}, q{}, r{}, m{}, '{}', ... ({} bytes))",
            p.dup as u8,
            p.qos as u8,
            p.retain as u8,
            p.packet_id.map_or(0, |id| id.get()),
            p.topic,
            p.payload.len()
        ),
        (true, Packet::PubAck(a)) => format!("PUBACK (m{}, rc0)", a.packet_id),
        (false, Packet::PubAck(a)) => format!("PUBACK (Mid: {}, RC:0)", a.packet_id),
        (true, Packet::PubRec(a)) => format!("PUBREC (m{}, rc0)", a.packet_id),
        (false, Packet::PubRec(a)) => format!("PUBREC (Mid: {})", a.packet_id),
        (true, Packet::PubRel(a)) => format!("PUBREL (m{})", a.packet_id),
        (false, Packet::PubRel(a)) => format!("PUBREL (Mid: {})", a.packet_id),
        (true, Packet::PubComp(a)) => format!("PUBCOMP (m{})", a.packet_id),
        (false, Packet::PubComp(a)) => format!("PUBCOMP (Mid: {}, RC:0)", a.packet_id),
        (_, Packet::Subscribe(s)) => {
            return s
                .filters
                .iter()
                .map(|f| {
                    format!(
                        "SUBSCRIBE (Mid: {}, Topic: {}, QoS: {}, Options: 0x00)",
                        s.packet_id, f.filter, f.qos as u8
                    )
                })
                .collect()
        }
        (_, Packet::SubAck(_)) => "SUBACK".to_owned(),
        (_, Packet::Unsubscribe(u)) => {
            return u
                .filters
                .iter()
                .map(|f| format!("UNSUBSCRIBE (Mid: {}, Topic: {})", u.packet_id, f))
                .collect()
        }
        (_, Packet::UnsubAck(_)) => "UNSUBACK".to_owned(),
        (_, Packet::PingReq) => "PINGREQ".to_owned(),
        (_, Packet::PingResp) => "PINGRESP".to_owned(),
        (_, Packet::Disconnect(_)) => "DISCONNECT".to_owned(),
        (_, Packet::Auth(_)) => "AUTH".to_owned(),
    };
    vec![line]
}
