//! PUBACK, PUBREC, PUBREL and PUBCOMP from clients, and what to do with one that
//! matches no message in flight.

use std::time::Instant;

use crate::broker::event::ConnectionId;
use crate::broker::hooks::DisconnectReason;
use crate::broker::session::Session;
use crate::broker::subs::ClientKey;
use crate::protocol::{Packet, PacketId, PubComp, PubRel};

use super::{session_op, touched, RouterState};

impl RouterState {
    /// A PUBREC for a QoS 2 message in flight is answered with PUBREL.
    pub(super) fn pubrec(&mut self, id: ConnectionId, key: &ClientKey, packet_id: PacketId) {
        let known = self.sessions.get_mut(key).is_some_and(|entry| {
            let known = session_op(&mut self.held, &mut entry.session, |s| s.pubrec(packet_id));
            touched(&mut self.durable, key, &mut entry.session);
            known
        });
        if known {
            self.progressed(key);
            self.send(id, Packet::PubRel(PubRel::new(packet_id)));
        } else {
            self.wrong_acknowledgement(id, key, packet_id, "PUBREC");
        }
    }

    /// A PUBACK or PUBCOMP, which `ack` applies to the session: its window moves
    /// on, and publishers held back for it may go on too.
    pub(super) fn acknowledged(
        &mut self,
        id: ConnectionId,
        key: &ClientKey,
        packet_id: PacketId,
        ack: fn(&mut Session, PacketId) -> bool,
        what: &str,
    ) {
        let known = self.sessions.get_mut(key).is_some_and(|entry| {
            let known = session_op(&mut self.held, &mut entry.session, |s| ack(s, packet_id));
            touched(&mut self.durable, key, &mut entry.session);
            known
        });
        if known {
            self.progressed(key);
            self.fill_window(key);
            if self.pacing.holds_back(key) {
                self.check_behind(key, Instant::now());
            }
        } else {
            self.wrong_acknowledgement(id, key, packet_id, what);
        }
    }

    /// Releases an inbound QoS 2 packet identifier and answers PUBCOMP, even for an
    /// identifier not held (a PUBREL repeated after a lost PUBCOMP) [MQTT-4.3.3-2].
    /// While a session the publisher's messages went to is behind, the PUBCOMP is
    /// held back like a PUBACK: that is what paces a QoS 2 publisher.
    pub(super) fn pubrel(&mut self, id: ConnectionId, key: &ClientKey, packet_id: PacketId) {
        if let Some(entry) = self.sessions.get_mut(key) {
            entry.session.pubrel(packet_id);
            touched(&mut self.durable, key, &mut entry.session);
        }
        let now = Instant::now();
        let behind: Vec<ClientKey> = self
            .connections
            .get(&id)
            .map(|connection| {
                connection
                    .waiting_on
                    .iter()
                    .filter(|session| self.is_behind(session, now))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if let Some(connection) = self.connections.get_mut(&id) {
            if connection.held_acks.is_empty() {
                // Sessions no longer behind are forgotten.
                connection
                    .waiting_on
                    .retain(|session| behind.contains(session));
            }
        }
        self.acknowledge(id, Packet::PubComp(PubComp::new(packet_id)), behind);
    }

    /// An acknowledgement that matched nothing: ignored if its packet identifier is
    /// not in flight (a late or repeated one), a protocol violation if it is, but
    /// for a message of another QoS or in another state (a PUBACK for QoS 2, say),
    /// which closes the connection as mosquitto does.
    fn wrong_acknowledgement(
        &mut self,
        id: ConnectionId,
        key: &ClientKey,
        packet_id: PacketId,
        what: &str,
    ) {
        let in_flight = self
            .sessions
            .get(key)
            .is_some_and(|entry| entry.session.is_inflight(packet_id));
        if in_flight {
            self.to_close.push((
                id,
                DisconnectReason::protocol_violation(format!(
                    "{what} for packet {packet_id}, which waits for another acknowledgement"
                )),
            ));
        } else {
            log::debug!(
                "Client {key} sent {what} for unknown packet {packet_id} (connection {id})."
            );
        }
    }

    /// Notes that a session's client acknowledged something: it is working.
    fn progressed(&mut self, key: &ClientKey) {
        if let Some(entry) = self.sessions.get_mut(key) {
            entry.last_progress = Instant::now();
        }
    }
}
