//! A stateful property test: random sequences of CONNECT, SUBSCRIBE, PUBLISH,
//! UNSUBSCRIBE, DISCONNECT and dropped sockets from a few raw clients, against a
//! broker with small limits, each answer compared with a model of what the broker
//! must do.
//!
//! After every step the broker still answers a control client, its counters agree
//! with the model, and subscriptions never exceed their cap. At the end, once every
//! session is wiped and every retained message cleared, the broker holds nothing:
//! no subscription, no queued or inflight message, no retained message and no
//! stored byte (DESIGN invariant 4).

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;

use common::peer::{describe, Next, Peer};
use common::wait_for_stats;
use proptest::collection::vec;
use proptest::prelude::*;
use wren::broker::Stats;
use wren::protocol::topic::matches;
use wren::protocol::{Connect, ConnectReturnCode, Packet, QoS};

const CLIENTS: usize = 3;
const MAX_SUBSCRIPTIONS: usize = 3;
const MAX_RETAINED: usize = 3;
const MAX_PERSISTENT: usize = 2;
const MAX_QUEUED: usize = 5;
const MAX_LEVELS: usize = 4;

/// Filters clients subscribe to; the last has 5 levels, one beyond the limit.
const FILTERS: [&str; 7] = ["m/a", "m/+", "m/#", "#", "n", "+/+", "m/a/b/c/d"];
/// Topics clients publish to; the last has 5 levels, one beyond the limit.
const TOPICS: [&str; 4] = ["m/a", "m/b", "n", "m/a/b/c/d"];

fn too_deep(topic: &str) -> bool {
    topic.split('/').count() > MAX_LEVELS
}

#[derive(Debug, Clone)]
enum Op {
    /// Connects (after closing the client's socket if it is connected).
    Connect {
        client: usize,
        clean: bool,
    },
    Subscribe {
        client: usize,
        filter: usize,
        qos: QoS,
    },
    Publish {
        client: usize,
        topic: usize,
        qos: QoS,
        retain: bool,
    },
    Unsubscribe {
        client: usize,
        filter: usize,
    },
    /// Sends DISCONNECT.
    Disconnect {
        client: usize,
    },
    /// Closes the socket without DISCONNECT.
    Drop {
        client: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let client = 0..CLIENTS;
    let qos = prop_oneof![Just(QoS::AtMostOnce), Just(QoS::AtLeastOnce)];
    let filter = prop_oneof![6 => 0..FILTERS.len() - 1, 1 => Just(FILTERS.len() - 1)];
    let topic = prop_oneof![8 => 0..TOPICS.len() - 1, 1 => Just(TOPICS.len() - 1)];
    prop_oneof![
        3 => (client.clone(), any::<bool>())
            .prop_map(|(client, clean)| Op::Connect { client, clean }),
        3 => (client.clone(), filter.clone(), qos.clone())
            .prop_map(|(client, filter, qos)| Op::Subscribe { client, filter, qos }),
        4 => (client.clone(), topic, qos, any::<bool>())
            .prop_map(|(client, topic, qos, retain)| Op::Publish { client, topic, qos, retain }),
        2 => (client.clone(), filter)
            .prop_map(|(client, filter)| Op::Unsubscribe { client, filter }),
        1 => client.clone().prop_map(|client| Op::Disconnect { client }),
        1 => client.prop_map(|client| Op::Drop { client }),
    ]
}

/// What the broker must hold for one client id.
#[derive(Default)]
struct Client {
    peer: Option<Peer>,
    /// Whether the client id has a persistent session (connected or not).
    persistent: bool,
    /// The filters of its session, connected or persistent.
    filters: BTreeSet<&'static str>,
    next_packet_id: u16,
}

impl Client {
    fn packet_id(&mut self) -> u16 {
        self.next_packet_id = self.next_packet_id % u16::MAX + 1;
        self.next_packet_id
    }

    /// The connection ended (DISCONNECT, dropped socket or closed by the broker):
    /// a clean session goes with it.
    fn gone(&mut self) {
        self.peer = None;
        if !self.persistent {
            self.filters.clear();
        }
    }
}

struct Run {
    broker: common::WrenBroker,
    addr: SocketAddr,
    control: Peer,
    clients: Vec<Client>,
    retained: BTreeSet<&'static str>,
    step: usize,
}

impl Run {
    fn start() -> Run {
        let broker = common::start_broker_with(|config| {
            config.limits.max_subscriptions_per_client = MAX_SUBSCRIPTIONS;
            config.limits.max_retained_messages = MAX_RETAINED;
            config.limits.max_persistent_sessions = MAX_PERSISTENT;
            config.limits.max_queued_messages = MAX_QUEUED;
            config.limits.max_topic_levels = MAX_LEVELS;
        });
        let addr = broker.local_addr();
        let (control, _) = Peer::connected(addr, "model-control", true);
        Run {
            broker,
            addr,
            control,
            clients: (0..CLIENTS).map(|_| Client::default()).collect(),
            retained: BTreeSet::new(),
            step: 0,
        }
    }

    fn id(client: usize) -> String {
        format!("model-{client}")
    }

    fn connected(&self) -> u64 {
        self.clients.iter().filter(|c| c.peer.is_some()).count() as u64
    }

    fn subscriptions(&self) -> u64 {
        self.clients.iter().map(|c| c.filters.len() as u64).sum()
    }

    fn apply(&mut self, op: &Op) {
        self.step += 1;
        let step = self.step;
        match *op {
            Op::Connect { client, clean } => self.connect(client, clean),
            Op::Subscribe {
                client,
                filter,
                qos,
            } => {
                let model = &mut self.clients[client];
                let id = model.packet_id();
                let Some(peer) = model.peer.as_mut() else {
                    return;
                };
                let filter = FILTERS[filter];
                let expected = if too_deep(filter) {
                    0x80
                } else if model.filters.contains(filter) || model.filters.len() < MAX_SUBSCRIPTIONS
                {
                    model.filters.insert(filter);
                    qos as u8
                } else {
                    0x80
                };
                let codes = peer.subscribe(id, &[(filter, qos)]);
                assert_eq!(
                    codes,
                    [expected],
                    "step {step}: {op:?} ({filter}): SUBACK code"
                );
            }
            Op::Unsubscribe { client, filter } => {
                let model = &mut self.clients[client];
                let id = model.packet_id();
                let Some(peer) = model.peer.as_mut() else {
                    return;
                };
                let filter = FILTERS[filter];
                model.filters.remove(filter);
                peer.unsubscribe(id, &[filter]);
            }
            Op::Publish {
                client,
                topic,
                qos,
                retain,
            } => {
                let model = &mut self.clients[client];
                let id = model.packet_id();
                let Some(peer) = model.peer.as_mut() else {
                    return;
                };
                let topic = TOPICS[topic];
                let payload = format!("step {step}");
                peer.publish(topic, payload.as_bytes(), qos, retain, id);
                if too_deep(topic) {
                    peer.expect_closed_eventually(&format!(
                        "step {step}: a PUBLISH to {topic} breaks max_topic_levels {MAX_LEVELS}"
                    ));
                    model.gone();
                    return;
                }
                // Once acknowledged (or answered after), the message has been
                // routed: what the other clients get is on its way before their
                // PINGRESP.
                if qos == QoS::AtLeastOnce {
                    peer.puback(id);
                } else {
                    peer.sync();
                }
                if retain && (self.retained.contains(topic) || self.retained.len() < MAX_RETAINED) {
                    self.retained.insert(topic);
                }
            }
            Op::Disconnect { client } => {
                let model = &mut self.clients[client];
                if let Some(peer) = model.peer.take() {
                    peer.disconnect();
                    model.gone();
                }
            }
            Op::Drop { client } => {
                let model = &mut self.clients[client];
                if model.peer.take().is_some() {
                    model.gone();
                }
            }
        }
    }

    fn connect(&mut self, client: usize, clean: bool) {
        let step = self.step;
        if self.clients[client].peer.take().is_some() {
            self.clients[client].gone();
            // The broker must have seen the old connection go before the new one
            // comes, or this would be a takeover of a live session.
            self.settle();
        }
        let persistent_sessions = self.clients.iter().filter(|c| c.persistent).count();
        let model = &mut self.clients[client];
        let mut connect = Connect::new(Run::id(client));
        connect.clean_session = clean;
        let (mut peer, next) = Peer::connect(self.addr, connect);
        let connack = match next {
            Next::Packet(Packet::ConnAck(connack)) => connack,
            other => panic!(
                "step {step}: {} (clean {clean}): expected CONNACK, got {}",
                Run::id(client),
                describe(&other)
            ),
        };
        let expected = if clean {
            model.persistent = false;
            model.filters.clear();
            (ConnectReturnCode::Accepted, false)
        } else if model.persistent {
            (ConnectReturnCode::Accepted, true)
        } else if persistent_sessions < MAX_PERSISTENT {
            model.persistent = true;
            model.filters.clear();
            (ConnectReturnCode::Accepted, false)
        } else {
            (ConnectReturnCode::ServerUnavailable, false)
        };
        assert_eq!(
            (connack.return_code(), connack.session_present),
            expected,
            "step {step}: {} (clean {clean}) with {persistent_sessions} persistent sessions of {MAX_PERSISTENT}: CONNACK",
            Run::id(client)
        );
        if connack.code == ConnectReturnCode::Accepted {
            model.peer = Some(peer);
        } else {
            peer.expect_closed(&format!("step {step}: after a refused CONNECT"));
        }
    }

    /// Waits until the broker's counters agree with the model.
    fn settle(&self) {
        let expected = (
            self.connected() + 1, // the control client
            self.subscriptions(),
            self.retained.len() as u64,
        );
        let seen = |s: &Stats| (s.connected_clients, s.subscriptions, s.retained_messages);
        wait_for_stats(
            &self.broker,
            &format!(
                "step {}: (connected, subscriptions, retained) == {expected:?}",
                self.step
            ),
            |s| seen(s) == expected,
        );
    }

    /// The checks after every step.
    fn check(&mut self) {
        let step = self.step;
        self.control.ping();
        for (n, model) in self.clients.iter_mut().enumerate() {
            let Some(peer) = model.peer.as_mut() else {
                continue;
            };
            // Deliveries are acknowledged as they are read; each must match a
            // filter of the session.
            for packet in peer.ping() {
                let Packet::Publish(publish) = packet else {
                    panic!("step {step}: {}: unexpected {packet}", Run::id(n));
                };
                let topic = publish.topic.as_str();
                assert!(
                    model.filters.iter().any(|f| matches(f, topic)),
                    "step {step}: {} received {topic} without a matching filter (holds {:?})",
                    Run::id(n),
                    model.filters
                );
            }
        }
        self.settle();
        let stats = self.broker.stats();
        assert!(
            stats.subscriptions <= (CLIENTS * MAX_SUBSCRIPTIONS) as u64,
            "step {step}: {} subscriptions for {CLIENTS} clients of at most {MAX_SUBSCRIPTIONS}",
            stats.subscriptions
        );
        assert!(
            stats.disconnected_clients <= MAX_PERSISTENT as u64,
            "step {step}: {} offline sessions, max_persistent_sessions {MAX_PERSISTENT}",
            stats.disconnected_clients
        );
    }

    /// Wipes every session and every retained message; the broker must then hold
    /// nothing.
    fn finish(mut self) {
        for client in 0..CLIENTS {
            if let Some(peer) = self.clients[client].peer.take() {
                peer.disconnect();
            }
            let (peer, present) = Peer::connected(self.addr, &Run::id(client), true);
            assert!(!present, "a clean session never has a session present");
            peer.disconnect();
        }
        for (n, topic) in TOPICS.iter().filter(|t| !too_deep(t)).enumerate() {
            self.control.publish1(topic, b"", true, n as u16 + 1);
        }
        wait_for_stats(
            &self.broker,
            "an empty broker: only the control client, nothing subscribed, queued, inflight, retained or stored",
            |s| {
                s.connected_clients == 1
                    && s.disconnected_clients == 0
                    && s.subscriptions == 0
                    && s.queued_messages == 0
                    && s.inflight_messages == 0
                    && s.retained_messages == 0
                    && s.stored_bytes == 0
            },
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        // A failing case can wait on read timeouts; keep shrinking bounded.
        max_shrink_iters: 200,
        max_shrink_time: 30_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_clients_never_break_the_limits_and_leave_nothing_behind(
        ops in vec(op(), 1..=40)
    ) {
        let mut run = Run::start();
        for op in &ops {
            run.apply(op);
            run.check();
        }
        run.finish();
    }
}
