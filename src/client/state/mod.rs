//! The client's side of the MQTT session, as a plain state machine with no I/O.
//!
//! [`State`] decides which packet to send and what an incoming packet means; the
//! connection thread does the reading, writing and waiting. Because nothing here
//! touches a socket or a clock of its own (every method that needs the time is given
//! it), the QoS handshakes, packet-id allocation and keep-alive rules can be tested by
//! feeding it packets, as `state/tests.rs` does.
//!
//! What it keeps:
//!
//! - **Packet identifiers in use** ([MQTT-2.3.1-2]): every QoS 1/2 PUBLISH, SUBSCRIBE
//!   and UNSUBSCRIBE we sent and that is not finished yet. A new one never gets an id
//!   in use, and never 0; when all 65,535 are in use, none is handed out.
//! - **Outbound inflight messages**: a QoS 1 PUBLISH until its PUBACK, a QoS 2 PUBLISH
//!   until its PUBREC and then its PUBREL until the PUBCOMP. After a reconnect they are
//!   sent again with the same id, PUBLISH with DUP set ([MQTT-2.3.1-3], [MQTT-4.4.0-1]).
//! - **Inbound QoS 2 ids** from PUBLISH until PUBREL, so that a PUBLISH the broker
//!   sends again (with DUP, after a reconnect) is not handed to the application a
//!   second time: exactly once, also across a reconnect.
//! - **Keep-alive bookkeeping**: when we last sent anything, and whether a PINGREQ is
//!   waiting for its PINGRESP.
//!
//! Each request carries a *token* of the caller's choosing (`T`), given back when the
//! broker has answered; the connection thread uses it to wake the waiting caller.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::protocol::{
    Packet, PacketId, PacketType, Properties, PubAck, PubComp, PubRec, PubRel, Publish, QoS,
    ReasonCode, Subscribe, SubscribeFilter, TopicFilter, Unsubscribe,
};

/// What the broker's answer completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Done {
    /// A QoS 1 PUBLISH got its PUBACK, or a QoS 2 PUBLISH its PUBCOMP.
    Published,
    /// MQTT 5: the broker refused a QoS 1/2 PUBLISH, with this reason code in its
    /// PUBACK or PUBREC (0x87 not authorized, 0x97 quota exceeded ...).
    Refused(ReasonCode),
    /// A SUBSCRIBE got its SUBACK, with one code per filter: the QoS granted
    /// (0x00 to 0x02) or why the filter was refused (0x80 and up).
    Subscribed(PacketId, Vec<ReasonCode>),
    /// An UNSUBSCRIBE got its UNSUBACK, with MQTT 5's code per filter (none over
    /// 3.1.1).
    Unsubscribed(Vec<ReasonCode>),
}

/// What to do about one incoming packet.
#[derive(Debug, PartialEq)]
pub(crate) struct Effects<T> {
    /// A packet to send back at once (PUBREL for PUBREC, PUBCOMP for PUBREL, PUBREC
    /// for a repeated QoS 2 PUBLISH).
    pub reply: Option<Packet>,
    /// A request the packet completed, with its token.
    pub completed: Option<(T, Done)>,
    /// A message for the application. Once it has been handed over, call
    /// [`State::delivered`] for the acknowledgement to send.
    pub deliver: Option<Publish>,
}

impl<T> Default for Effects<T> {
    fn default() -> Self {
        Effects {
            reply: None,
            completed: None,
            deliver: None,
        }
    }
}

/// Why the state machine refuses a packet or a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StateError {
    /// All 65,535 packet identifiers are in use.
    #[error("all 65535 packet identifiers are in use")]
    NoPacketId,
    /// An acknowledgement for a packet id we are not waiting on. Harmless (a late
    /// duplicate); the connection goes on.
    #[error("{0} for packet id {1}, which is not in use")]
    Unsolicited(PacketType, u16),
    /// A packet a broker never sends to a client (CONNECT, SUBSCRIBE, ...) or one that
    /// is out of place (a second CONNACK). The connection must be closed.
    #[error("the broker sent {0}, which a broker never sends at this point")]
    Unexpected(PacketType),
    /// No PINGRESP came within the allowed delay: the connection is half-open.
    #[error("no PINGRESP within {0:?} of PINGREQ")]
    PingTimeout(Duration),
}

/// One request of ours waiting for the broker.
#[derive(Debug)]
struct Outgoing<T> {
    /// Order of sending, so that a resend after reconnecting keeps the order.
    sequence: u64,
    token: T,
    kind: OutgoingKind,
}

#[derive(Debug)]
enum OutgoingKind {
    /// QoS 1 waiting for PUBACK, or QoS 2 waiting for PUBREC.
    Publish(Publish),
    /// QoS 2 after PUBREC: PUBREL sent, waiting for PUBCOMP.
    Released,
    Subscribe(Subscribe),
    Unsubscribe(Unsubscribe),
}

/// An inbound QoS 2 message between its PUBLISH and its PUBREL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InboundQoS2 {
    /// Given to the connection thread, not yet handed to the application.
    Delivering,
    /// Handed over and PUBREC sent; waiting for PUBREL.
    Received,
}

/// The client's session state. See the module documentation.
#[derive(Debug)]
pub(crate) struct State<T> {
    /// Where the search for a free packet id starts: one after the last given.
    next_packet_id: u16,
    outgoing: HashMap<u16, Outgoing<T>>,
    next_sequence: u64,
    /// How many outbound QoS 1/2 PUBLISH may wait for their acknowledgements at once.
    max_inflight: usize,
    inflight_publishes: usize,
    /// QoS 2 PUBLISH sent and not yet PUBREC'd (see [`State::holds_order`]).
    unreleased_qos2: usize,
    inbound_qos2: HashMap<u16, InboundQoS2>,
    keep_alive: Duration,
    ping_timeout: Duration,
    last_sent: Instant,
    ping_sent: Option<Instant>,
}

impl<T> State<T> {
    /// A fresh session. `keep_alive` is the silence after which a PINGREQ goes (zero
    /// turns pings off); `ping_timeout` is how long a PINGRESP may take before the
    /// connection is considered dead.
    pub fn new(
        max_inflight: usize,
        keep_alive: Duration,
        ping_timeout: Duration,
        now: Instant,
    ) -> State<T> {
        State {
            next_packet_id: 1,
            outgoing: HashMap::new(),
            next_sequence: 0,
            max_inflight: max_inflight.clamp(1, usize::from(u16::MAX)),
            inflight_publishes: 0,
            unreleased_qos2: 0,
            inbound_qos2: HashMap::new(),
            keep_alive,
            ping_timeout,
            last_sent: now,
            ping_sent: None,
        }
    }

    /// Sets the inflight window (on a new connection, to the broker's Receive
    /// Maximum). Messages in flight beyond it stay; new ones wait for room.
    pub fn set_max_inflight(&mut self, max_inflight: usize) {
        self.max_inflight = max_inflight.clamp(1, usize::from(u16::MAX));
    }

    /// Sets the silence after which a PINGREQ goes (on a new connection, from the
    /// broker's Server Keep Alive).
    pub fn set_keep_alive(&mut self, keep_alive: Duration) {
        self.keep_alive = keep_alive;
    }

    /// Whether another QoS 1/2 PUBLISH would exceed the inflight window.
    pub fn inflight_full(&self) -> bool {
        self.inflight_publishes >= self.max_inflight
    }

    /// Whether a QoS 0 or QoS 1 PUBLISH must wait to keep the publisher's order:
    /// a QoS 2 message sent before it has not had its PUBREL yet. A broker may
    /// deliver a QoS 2 message only once it has the PUBREL (mosquitto does, MQTT's
    /// "method B"), so a QoS 0/1 message sent meanwhile would overtake it
    /// [MQTT-4.6.0-6]. QoS 2 messages need not wait for each other: their PUBRELs go
    /// out in order.
    pub fn holds_order(&self) -> bool {
        self.unreleased_qos2 > 0
    }

    /// How many QoS 1/2 PUBLISH wait for their acknowledgements.
    #[cfg(test)]
    pub fn inflight(&self) -> usize {
        self.inflight_publishes
    }

    /// Whether all 65,535 packet identifiers are in use, so that no QoS 1/2
    /// PUBLISH, SUBSCRIBE or UNSUBSCRIBE can be made until one is acknowledged.
    pub fn packet_ids_exhausted(&self) -> bool {
        self.outgoing.len() >= usize::from(u16::MAX)
    }

    /// Whether any request of ours waits for the broker.
    pub fn has_outgoing(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// A packet identifier not in use, never 0 ([MQTT-2.3.1-2]).
    fn allocate_packet_id(&mut self) -> Result<PacketId, StateError> {
        if self.packet_ids_exhausted() {
            return Err(StateError::NoPacketId);
        }
        loop {
            let candidate = self.next_packet_id;
            self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
            if let Some(id) = PacketId::new(candidate) {
                if !self.outgoing.contains_key(&candidate) {
                    return Ok(id);
                }
            }
        }
    }

    fn insert(&mut self, id: PacketId, token: T, kind: OutgoingKind) {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.outgoing.insert(
            id.get(),
            Outgoing {
                sequence,
                token,
                kind,
            },
        );
    }

    /// Prepares a PUBLISH. QoS 0 is returned as it is, and its token handed back at
    /// once, since nothing will answer it. QoS 1/2 gets a packet id and is kept until
    /// acknowledged. The caller checks [`inflight_full`](Self::inflight_full) first.
    pub fn publish(
        &mut self,
        mut publish: Publish,
        token: T,
    ) -> Result<(Packet, Option<T>), StateError> {
        publish.dup = false;
        if publish.qos == QoS::AtMostOnce {
            publish.packet_id = None;
            return Ok((Packet::Publish(publish), Some(token)));
        }
        let id = self.allocate_packet_id()?;
        publish.packet_id = Some(id);
        if publish.qos == QoS::ExactlyOnce {
            self.unreleased_qos2 += 1;
        }
        self.insert(id, token, OutgoingKind::Publish(publish.clone()));
        self.inflight_publishes += 1;
        Ok((Packet::Publish(publish), None))
    }

    /// Prepares a SUBSCRIBE for `filters`, with MQTT 5 `properties`, and keeps it
    /// until its SUBACK.
    pub fn subscribe(
        &mut self,
        filters: Vec<SubscribeFilter>,
        properties: Option<Box<Properties>>,
        token: T,
    ) -> Result<Packet, StateError> {
        let id = self.allocate_packet_id()?;
        let mut subscribe = Subscribe::new(id, filters);
        subscribe.properties = properties;
        self.insert(id, token, OutgoingKind::Subscribe(subscribe.clone()));
        Ok(Packet::Subscribe(subscribe))
    }

    /// Prepares an UNSUBSCRIBE for `filters`, with MQTT 5 `properties`, and keeps
    /// it until its UNSUBACK.
    pub fn unsubscribe(
        &mut self,
        filters: Vec<TopicFilter>,
        properties: Option<Box<Properties>>,
        token: T,
    ) -> Result<Packet, StateError> {
        let id = self.allocate_packet_id()?;
        let mut unsubscribe = Unsubscribe::new(id, filters);
        unsubscribe.properties = properties;
        self.insert(id, token, OutgoingKind::Unsubscribe(unsubscribe.clone()));
        Ok(Packet::Unsubscribe(unsubscribe))
    }

    /// Applies one packet from the broker.
    pub fn incoming(&mut self, packet: Packet) -> Result<Effects<T>, StateError> {
        let mut effects = Effects::default();
        match packet {
            Packet::Publish(publish) => match (publish.qos, publish.packet_id) {
                (QoS::ExactlyOnce, Some(id)) => match self.inbound_qos2.get(&id.get()) {
                    // Already delivered: the broker missed our PUBREC; say it again.
                    Some(InboundQoS2::Received) => {
                        effects.reply = Some(Packet::PubRec(PubRec::new(id)));
                    }
                    // On its way to the application: its PUBREC follows when it
                    // arrives there.
                    Some(InboundQoS2::Delivering) => {}
                    None => {
                        self.inbound_qos2.insert(id.get(), InboundQoS2::Delivering);
                        effects.deliver = Some(publish);
                    }
                },
                _ => effects.deliver = Some(publish),
            },
            Packet::PubAck(ack) => {
                let (token, done) =
                    self.finish_publish(PacketType::PubAck, ack.packet_id, QoS::AtLeastOnce)?;
                // MQTT 5 can refuse a message; 0x10 "no matching subscribers" is not a
                // refusal.
                let done = if ack.reason_code.is_error() {
                    Done::Refused(ack.reason_code)
                } else {
                    done
                };
                effects.completed = Some((token, done));
            }
            Packet::PubRec(rec) if rec.reason_code.is_error() => {
                // A refused QoS 2 message ends here, without PUBREL [MQTT-4.3.3-4].
                let (token, _) =
                    self.finish_publish(PacketType::PubRec, rec.packet_id, QoS::ExactlyOnce)?;
                self.unreleased_qos2 -= 1;
                effects.completed = Some((token, Done::Refused(rec.reason_code)));
            }
            Packet::PubRec(rec) => {
                let id = rec.packet_id;
                match self.outgoing.get_mut(&id.get()) {
                    Some(entry) => match &entry.kind {
                        OutgoingKind::Publish(p) if p.qos == QoS::ExactlyOnce => {
                            entry.kind = OutgoingKind::Released;
                            self.unreleased_qos2 -= 1;
                            effects.reply = Some(Packet::PubRel(PubRel::new(id)));
                        }
                        // PUBREC again after our PUBREL was lost: send PUBREL again.
                        OutgoingKind::Released => {
                            effects.reply = Some(Packet::PubRel(PubRel::new(id)));
                        }
                        _ => return Err(StateError::Unsolicited(PacketType::PubRec, id.get())),
                    },
                    None => return Err(StateError::Unsolicited(PacketType::PubRec, id.get())),
                }
            }
            Packet::PubComp(comp) => {
                let id = comp.packet_id;
                match self.outgoing.get(&id.get()) {
                    Some(Outgoing {
                        kind: OutgoingKind::Released,
                        ..
                    }) => {
                        if let Some(entry) = self.outgoing.remove(&id.get()) {
                            self.inflight_publishes -= 1;
                            effects.completed = Some((entry.token, Done::Published));
                        }
                    }
                    _ => return Err(StateError::Unsolicited(PacketType::PubComp, id.get())),
                }
            }
            Packet::PubRel(rel) => {
                let id = rel.packet_id;
                match self.inbound_qos2.get(&id.get()) {
                    // Not yet handed over: the PUBCOMP must wait, or a crash now would
                    // lose a message the broker considers delivered.
                    Some(InboundQoS2::Delivering) => {}
                    Some(InboundQoS2::Received) => {
                        self.inbound_qos2.remove(&id.get());
                        effects.reply = Some(Packet::PubComp(PubComp::new(id)));
                    }
                    // Already completed (our PUBCOMP was lost): complete it again, as
                    // [MQTT-4.3.3-2] asks of a receiver that no longer has the id.
                    None => effects.reply = Some(Packet::PubComp(PubComp::new(id))),
                }
            }
            Packet::SubAck(suback) => {
                let id = suback.packet_id;
                match self.outgoing.get(&id.get()) {
                    Some(Outgoing {
                        kind: OutgoingKind::Subscribe(_),
                        ..
                    }) => {
                        if let Some(entry) = self.outgoing.remove(&id.get()) {
                            effects.completed =
                                Some((entry.token, Done::Subscribed(id, suback.reason_codes)));
                        }
                    }
                    _ => return Err(StateError::Unsolicited(PacketType::SubAck, id.get())),
                }
            }
            Packet::UnsubAck(unsuback) => {
                let id = unsuback.packet_id;
                match self.outgoing.get(&id.get()) {
                    Some(Outgoing {
                        kind: OutgoingKind::Unsubscribe(_),
                        ..
                    }) => {
                        if let Some(entry) = self.outgoing.remove(&id.get()) {
                            effects.completed =
                                Some((entry.token, Done::Unsubscribed(unsuback.reason_codes)));
                        }
                    }
                    _ => return Err(StateError::Unsolicited(PacketType::UnsubAck, id.get())),
                }
            }
            Packet::PingResp => self.ping_sent = None,
            other => return Err(StateError::Unexpected(other.packet_type())),
        }
        Ok(effects)
    }

    fn finish_publish(
        &mut self,
        ack: PacketType,
        id: PacketId,
        qos: QoS,
    ) -> Result<(T, Done), StateError> {
        match self.outgoing.get(&id.get()) {
            Some(Outgoing {
                kind: OutgoingKind::Publish(p),
                ..
            }) if p.qos == qos => {}
            _ => return Err(StateError::Unsolicited(ack, id.get())),
        }
        let entry = self
            .outgoing
            .remove(&id.get())
            .ok_or(StateError::Unsolicited(ack, id.get()))?;
        self.inflight_publishes -= 1;
        Ok((entry.token, Done::Published))
    }

    /// The acknowledgement to send once `publish` (from [`Effects::deliver`]) has
    /// been handed to the application: PUBACK for QoS 1, PUBREC for QoS 2, nothing for
    /// QoS 0. Acknowledging only then means a message the broker thinks delivered
    /// has really reached the application.
    pub fn delivered(&mut self, publish: &Publish) -> Option<Packet> {
        let id = publish.packet_id?;
        match publish.qos {
            QoS::AtMostOnce => None,
            QoS::AtLeastOnce => Some(Packet::PubAck(PubAck::new(id))),
            QoS::ExactlyOnce => {
                self.inbound_qos2.insert(id.get(), InboundQoS2::Received);
                Some(Packet::PubRec(PubRec::new(id)))
            }
        }
    }

    /// Notes that a packet was written at `now`.
    pub fn sent(&mut self, packet: &Packet, now: Instant) {
        self.last_sent = now;
        if matches!(packet, Packet::PingReq) && self.ping_sent.is_none() {
            self.ping_sent = Some(now);
        }
    }

    /// When [`keep_alive_due`](Self::keep_alive_due) must be called next, if ever.
    pub fn next_keep_alive(&self) -> Option<Instant> {
        if self.keep_alive.is_zero() {
            return None;
        }
        Some(match self.ping_sent {
            Some(sent) => sent + self.ping_timeout,
            None => self.last_sent + self.keep_alive,
        })
    }

    /// What keep-alive asks for at `now`: a PINGREQ when we have been silent for the
    /// keep-alive interval ([MQTT-3.1.2-23]), an error when the PINGRESP is overdue.
    pub fn keep_alive_due(&mut self, now: Instant) -> Result<Option<Packet>, StateError> {
        if self.keep_alive.is_zero() {
            return Ok(None);
        }
        match self.ping_sent {
            Some(sent) if now >= sent + self.ping_timeout => {
                Err(StateError::PingTimeout(self.ping_timeout))
            }
            Some(_) => Ok(None),
            None if now >= self.last_sent + self.keep_alive => Ok(Some(Packet::PingReq)),
            None => Ok(None),
        }
    }

    /// The packets to send on a new connection, after its CONNACK, in the order first
    /// sent: unacknowledged PUBLISH again with DUP, PUBREL for QoS 2 messages past
    /// PUBREC, SUBSCRIBE and UNSUBSCRIBE with their ids.
    ///
    /// Without a session on the broker (`session_present` false) inbound QoS 2 ids are
    /// forgotten, since the broker has forgotten them too.
    pub fn reconnected(&mut self, session_present: bool, now: Instant) -> Vec<Packet> {
        self.ping_sent = None;
        self.last_sent = now;
        if !session_present {
            // Keep the ones still being handed over: their PUBREC will simply be
            // unsolicited for the broker, which ignores it.
            self.inbound_qos2
                .retain(|_, stage| *stage == InboundQoS2::Delivering);
        }
        let mut entries: Vec<(&u16, &Outgoing<T>)> = self.outgoing.iter().collect();
        entries.sort_by_key(|(_, entry)| entry.sequence);
        entries
            .into_iter()
            .filter_map(|(&id, entry)| {
                let id = PacketId::new(id)?;
                Some(match &entry.kind {
                    OutgoingKind::Publish(publish) => {
                        let mut publish = publish.clone();
                        publish.dup = true;
                        Packet::Publish(publish)
                    }
                    OutgoingKind::Released => Packet::PubRel(PubRel::new(id)),
                    OutgoingKind::Subscribe(subscribe) => Packet::Subscribe(subscribe.clone()),
                    OutgoingKind::Unsubscribe(unsubscribe) => {
                        Packet::Unsubscribe(unsubscribe.clone())
                    }
                })
            })
            .collect()
    }

    /// Gives up every request, handing back their tokens (the client is closing for
    /// good).
    pub fn drain(&mut self) -> Vec<T> {
        self.inflight_publishes = 0;
        self.unreleased_qos2 = 0;
        let mut entries: Vec<Outgoing<T>> = self.outgoing.drain().map(|(_, e)| e).collect();
        entries.sort_by_key(|entry| entry.sequence);
        entries.into_iter().map(|entry| entry.token).collect()
    }
}

#[cfg(test)]
mod tests;
