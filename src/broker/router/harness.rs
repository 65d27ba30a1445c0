//! A test driver for the router: events in, outboxes read, no thread and no socket.

//!
//! The tests of each file of the router import this module whole: it also names
//! what they share.

pub(super) use std::sync::Arc;
pub(super) use std::time::{Duration, Instant};

pub(super) use bytes::Bytes;

pub(super) use super::RouterState;
pub(super) use crate::broker::event::{
    outbox, Closer, ConnectionId, Event, NewConnection, OutboxReceiver, ReadGate,
    OUTBOX_CROWDED_SLOTS, OUTBOX_QOS0_SLOTS, OUTBOX_REPLY_RESERVE,
};
pub(super) use crate::broker::hooks::{ClientInfo, DisconnectReason, Hooks};
pub(super) use crate::broker::stats::{Counters, Limit};
pub(super) use crate::broker::store::MemoryStorage;
pub(super) use crate::config::{Limits, SysConfig};
pub(super) use crate::protocol::{
    ConnAck, Connect, Packet, PacketId, PubAck, PubComp, PubRec, PubRel, Publish, QoS, Subscribe,
    SubscribeFilter, TopicFilter, TopicName,
};

pub(super) struct Harness {
    pub(super) state: RouterState,
    pub(super) next_id: ConnectionId,
}

pub(super) struct Client {
    pub(super) id: ConnectionId,
    pub(super) outbox: OutboxReceiver,
    pub(super) gate: Arc<ReadGate>,
}

impl Client {
    pub(super) fn received(&self) -> Vec<Packet> {
        std::iter::from_fn(|| self.outbox.try_recv().ok()).collect()
    }

    /// Whether the router dropped this connection's outbox (after anything
    /// still in it).
    pub(super) fn is_closed(&self) -> bool {
        loop {
            match self.outbox.try_recv() {
                Ok(_) => continue,
                Err(error) => return error.is_disconnected(),
            }
        }
    }
}

pub(super) fn limits() -> Limits {
    Limits {
        max_inflight_messages: 2,
        max_queued_messages: 3,
        ..Limits::default()
    }
}

impl Harness {
    pub(super) fn new() -> Harness {
        Harness::with_limits(limits())
    }

    pub(super) fn with_limits(limits: Limits) -> Harness {
        Harness::build(limits, None)
    }

    /// A router with `store`, as a broker with persistence has.
    pub(super) fn with_store(store: MemoryStorage) -> Harness {
        Harness::build(limits(), Some(Box::new(store)))
    }

    fn build(limits: Limits, store: Option<Box<dyn crate::broker::store::Storage>>) -> Harness {
        let sys = SysConfig {
            interval: std::time::Duration::ZERO,
            ..SysConfig::default()
        };
        let state = RouterState::new(
            limits,
            &sys,
            Hooks::default(),
            Arc::new(Counters::default()),
            store,
        )
        .unwrap();
        Harness { state, next_id: 1 }
    }

    /// Ends the router's batch and waits for the store to commit it: what waited
    /// for the commit leaves.
    pub(super) fn commit(&mut self) {
        self.state.end_batch(false);
        let commits = self
            .state
            .durable
            .as_ref()
            .map(|durable| durable.commits())
            .expect("a router with a store");
        while self
            .state
            .durable
            .as_ref()
            .is_some_and(|d| d.wait_for().is_some())
        {
            let commit = commits
                .recv_timeout(std::time::Duration::from_secs(10))
                .expect("the store commits");
            self.state.committed(commit);
            self.state.end_batch(false);
        }
    }

    pub(super) fn connect_with(&mut self, connect: Connect) -> Client {
        let id = self.next_id;
        self.next_id += 1;
        let (tx, rx) = outbox(2);
        let gate = Arc::new(ReadGate::default());
        let client = ClientInfo {
            client_id: connect.client_id.clone(),
            username: connect.username.clone(),
            remote_addr: ([127, 0, 0, 1], 1).into(),
            listener: "test".into(),
            protocol: connect.protocol,
        };
        self.state.handle(Event::Connect(Box::new(NewConnection {
            id,
            connect,
            client,
            outbox: tx,
            closer: Closer::detached(),
            gate: gate.clone(),
            trusted: false,
            connack: None,
        })));
        Client {
            id,
            outbox: rx,
            gate,
        }
    }

    pub(super) fn connect(&mut self, client_id: &str, clean: bool) -> Client {
        let mut connect = Connect::new(client_id);
        connect.clean_session = clean;
        self.connect_with(connect)
    }

    pub(super) fn subscribe(&mut self, client: &Client, filter: &str, qos: QoS) {
        self.state.handle(Event::Subscribe {
            connection: client.id,
            subscribe: Subscribe {
                packet_id: pid(100),
                filters: vec![SubscribeFilter::new(TopicFilter::new(filter).unwrap(), qos)],
                properties: None,
            },
            authorized: vec![true],
        });
    }

    pub(super) fn publish(
        &mut self,
        client: &Client,
        topic: &str,
        payload: &'static str,
        qos: QoS,
        retain: bool,
        packet_id: u16,
    ) {
        let mut publish = Publish::new(TopicName::new(topic).unwrap(), payload, qos, retain);
        publish.packet_id = PacketId::new(packet_id);
        self.state.handle(Event::Publish {
            connection: client.id,
            publish,
            authorized: true,
        });
    }

    pub(super) fn packet(&mut self, client: &Client, packet: Packet) {
        self.state.handle(Event::from_packet(client.id, packet));
    }

    pub(super) fn disconnect(&mut self, client: &Client, reason: DisconnectReason) {
        self.state.handle(Event::Disconnect {
            connection: client.id,
            reason,
            session_expiry: None,
        });
    }
}

pub(super) fn pid(value: u16) -> PacketId {
    PacketId::new(value).unwrap()
}

pub(super) fn publishes(packets: &[Packet]) -> Vec<&Publish> {
    packets
        .iter()
        .filter_map(|p| match p {
            Packet::Publish(publish) => Some(publish),
            _ => None,
        })
        .collect()
}

pub(super) fn limit_count(h: &Harness, limit: Limit) -> u64 {
    h.state
        .counters
        .snapshot(Duration::ZERO)
        .limit_reached(limit)
}
