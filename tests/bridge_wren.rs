//! Bridges between two wren brokers on loopback: both directions, prefixes, every
//! QoS, no loops, a remote restarted mid-stream, and a local broker restarted with
//! messages still queued for the remote.

mod bridge_support;
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use wren::bridge::Bridge;
use wren::client::Client;
use wren::protocol::QoS;

use bridge_support::{
    bridge_config, collect, next, nothing_more, publish_across, subscriber, wait_connected, BOTH,
    IN, OUT,
};
use common::{wait_until, WrenBroker};

/// How long a test looks for a message that must not come.
const QUIET: Duration = Duration::from_millis(500);

#[test]
fn messages_go_out_and_come_in_with_their_prefixes_and_qos() {
    let local = WrenBroker::start();
    let remote = WrenBroker::start();
    let config = bridge_config(
        "cloud",
        &remote.url(),
        &[
            ("sensors/#", OUT, QoS::ExactlyOnce, "", ""),
            ("commands/#", IN, QoS::ExactlyOnce, "", ""),
            ("status/#", BOTH, QoS::AtLeastOnce, "edge/", "site7/"),
        ],
    );
    let bridge = Bridge::start(&local, &config).unwrap();
    wait_connected(&bridge);
    remote.wait_until("the bridge subscribed", |b| {
        b.subscribed("wren-bridge-cloud") > 0
    });

    let (_r, at_remote) = subscriber(&remote.url(), "r", "#", QoS::ExactlyOnce);
    let (_l, at_local) = subscriber(&local.url(), "l", "#", QoS::ExactlyOnce);
    let publisher = Client::connect(local.url().as_str()).unwrap();
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        publisher
            .publish("sensors/t", format!("{qos:?}"), qos, false)
            .unwrap();
        // The local subscriber sees it too; skip that copy.
        assert_eq!(next(&at_local).topic(), "sensors/t");
        let message = next(&at_remote);
        assert_eq!(message.topic(), "sensors/t");
        assert_eq!(message.payload_str().unwrap(), format!("{qos:?}"));
        assert_eq!(
            message.qos(),
            qos,
            "carried at the QoS it was published with"
        );
    }

    let remote_publisher = Client::connect(remote.url().as_str()).unwrap();
    remote_publisher
        .publish("commands/open", "now", QoS::ExactlyOnce, false)
        .unwrap();
    assert_eq!(next(&at_remote).topic(), "commands/open");
    let command = next(&at_local);
    assert_eq!(command.topic(), "commands/open");
    assert_eq!(command.qos(), QoS::ExactlyOnce);

    // Prefixes: edge/status/... here is site7/status/... there, both ways.
    publisher
        .publish("edge/status/door", "shut", QoS::AtLeastOnce, false)
        .unwrap();
    assert_eq!(next(&at_local).topic(), "edge/status/door");
    assert_eq!(next(&at_remote).topic(), "site7/status/door");
    remote_publisher
        .publish("site7/status/window", "open", QoS::AtLeastOnce, false)
        .unwrap();
    assert_eq!(next(&at_remote).topic(), "site7/status/window");
    assert_eq!(next(&at_local).topic(), "edge/status/window");

    // Not carried: outside the filters or the prefixes.
    publisher
        .publish("status/door", "x", QoS::AtLeastOnce, false)
        .unwrap();
    remote_publisher
        .publish("sensors/remote", "x", QoS::AtLeastOnce, false)
        .unwrap();
    assert_eq!(next(&at_local).topic(), "status/door");
    assert_eq!(next(&at_remote).topic(), "sensors/remote");
    assert!(nothing_more(&at_local, QUIET).is_none());
    assert!(nothing_more(&at_remote, QUIET).is_none());
}

#[test]
fn a_topic_bridged_both_ways_does_not_loop() {
    let local = WrenBroker::start();
    let remote = WrenBroker::start();
    let config = bridge_config(
        "loop",
        &remote.url(),
        &[("loop/#", BOTH, QoS::AtLeastOnce, "", "")],
    );
    let bridge = Bridge::start(&local, &config).unwrap();
    wait_connected(&bridge);
    remote.wait_until("the bridge subscribed", |b| {
        b.subscribed("wren-bridge-loop") > 0
    });

    let (_l, at_local) = subscriber(&local.url(), "l", "loop/#", QoS::AtLeastOnce);
    let (_r, at_remote) = subscriber(&remote.url(), "r", "loop/#", QoS::AtLeastOnce);
    let local_publisher = Client::connect(local.url().as_str()).unwrap();
    let remote_publisher = Client::connect(remote.url().as_str()).unwrap();

    local_publisher
        .publish("loop/a", "from local", QoS::AtLeastOnce, false)
        .unwrap();
    assert_eq!(next(&at_local).payload_str().unwrap(), "from local");
    assert_eq!(next(&at_remote).payload_str().unwrap(), "from local");
    remote_publisher
        .publish("loop/b", "from remote", QoS::AtLeastOnce, false)
        .unwrap();
    assert_eq!(next(&at_remote).payload_str().unwrap(), "from remote");
    assert_eq!(next(&at_local).payload_str().unwrap(), "from remote");

    // Each once: nothing came back over the bridge.
    assert!(nothing_more(&at_local, QUIET).is_none());
    assert!(nothing_more(&at_remote, QUIET).is_none());
    assert_eq!(bridge.status().sent(), 1);
    assert_eq!(bridge.status().received(), 1);
}

#[test]
fn wren_broker_honours_try_private_from_a_3_1_1_bridge() {
    let broker = WrenBroker::start();
    let options = wren::client::ClientOptions::from_url(&broker.url())
        .unwrap()
        .with_client_id("peer")
        .with_bridge(true);
    let peer = Client::connect(options).unwrap();
    let own = peer.subscribe("t/#", QoS::AtLeastOnce).unwrap();
    let (_o, other) = subscriber(&broker.url(), "other", "t/#", QoS::AtLeastOnce);
    peer.publish("t/1", "mine", QoS::AtLeastOnce, false)
        .unwrap();
    assert_eq!(next(&other).payload_str().unwrap(), "mine");
    let outsider = Client::connect(broker.url().as_str()).unwrap();
    outsider
        .publish("t/2", "theirs", QoS::AtLeastOnce, false)
        .unwrap();
    // The bridge gets the others' message, never its own.
    assert_eq!(next(&own).payload_str().unwrap(), "theirs");
    assert!(nothing_more(&own, QUIET).is_none());
}

/// Publishes `count` messages `prefix-N` on `topic` at `qos` from a new client of
/// `url`, each waited for.
fn publish_numbered(url: &str, topic: &str, prefix: &str, count: usize, qos: QoS) -> Vec<String> {
    let publisher = Client::connect(url).unwrap();
    let payloads: Vec<String> = (0..count).map(|n| format!("{prefix}-{n}")).collect();
    for payload in &payloads {
        publisher
            .publish(topic, payload.clone(), qos, false)
            .unwrap();
    }
    payloads
}

#[test]
fn nothing_accepted_is_lost_when_the_remote_restarts_mid_stream() {
    let local = WrenBroker::start();
    // Its store (kept in memory by the test fixture) survives its restarts.
    let mut remote = WrenBroker::start();
    let config = bridge_config(
        "cloud",
        &remote.url(),
        &[("data/#", OUT, QoS::ExactlyOnce, "", "")],
    );
    let bridge = Bridge::start(&local, &config).unwrap();
    wait_connected(&bridge);
    let (sink_client, sink) = subscriber(&remote.url(), "sink", "data/#", QoS::ExactlyOnce);

    let restarted = Arc::new(AtomicBool::new(false));
    let publishing = |topic: &'static str, prefix: &'static str, qos: QoS| {
        let (url, restarted) = (local.url(), restarted.clone());
        thread::spawn(move || publish_across(&url, topic, prefix, qos, &restarted))
    };
    let qos1 = publishing("data/1", "q1", QoS::AtLeastOnce);
    let qos2 = publishing("data/2", "q2", QoS::ExactlyOnce);
    // Mid-stream: once some have gone across, and both publishers go on after.
    wait_until("some messages crossed", || bridge.status().sent() >= 20);
    remote.restart();
    restarted.store(true, Ordering::SeqCst);
    let mut payloads = qos1.join().unwrap();
    payloads.extend(qos2.join().unwrap());
    let seen = collect(&sink, &payloads);
    for (payload, times) in &seen {
        if payload.starts_with("q2-") {
            assert_eq!(*times, 1, "{payload} is QoS 2: exactly once");
        }
    }
    wait_until("every message acknowledged here", || {
        bridge.status().sent() >= payloads.len() as u64
    });
    drop(sink_client);
}

#[test]
fn queued_messages_survive_a_restart_of_the_local_broker() {
    // The local fixture's store outlives its restarts, as a file would.
    let mut local = WrenBroker::start();
    let remote = WrenBroker::start();
    let config = bridge_config(
        "cloud",
        &remote.url(),
        &[("data/#", OUT, QoS::AtLeastOnce, "", "")],
    );
    let (_sink_client, sink) = subscriber(&remote.url(), "sink", "data/#", QoS::AtLeastOnce);
    // The first start makes the bridge's persistent local session.
    let bridge = Bridge::start(&local, &config).unwrap();
    wait_connected(&bridge);
    bridge.shutdown();

    // With the bridge away, its session queues what it subscribed to.
    let payloads = publish_numbered(&local.url(), "data/x", "queued", 50, QoS::AtLeastOnce);
    local.wait_until("the messages queued", |b| b.stats().queued_messages >= 50);
    local.restart();
    assert!(
        local.stats().queued_messages >= 50,
        "kept across the restart"
    );

    let bridge = Bridge::start(&local, &config).unwrap();
    let seen = collect(&sink, &payloads);
    assert_eq!(seen.len(), 50);
    wait_until("the queue drained", || {
        bridge.status().sent() >= 50 && local.stats().queued_messages == 0
    });
}

#[test]
fn sys_shows_a_bridge_whose_remote_is_down_and_what_waits_for_it() {
    let local = WrenBroker::start();
    let nowhere = format!("mqtt://127.0.0.1:{}", common::free_port());
    let config = bridge_config(
        "down",
        &nowhere,
        &[("data/#", OUT, QoS::AtLeastOnce, "", "")],
    );
    let _bridge = Bridge::start(&local, &config).unwrap();
    let connected = local
        .subscribe("$SYS/broker/bridges/down/connected", QoS::AtMostOnce)
        .unwrap();
    let flag = connected.recv_timeout(common::PATIENCE).unwrap().unwrap();
    assert_eq!(&flag.payload[..], b"0");

    publish_numbered(&local.url(), "data/x", "waiting", 30, QoS::AtLeastOnce);
    let queued = local
        .subscribe("$SYS/broker/bridges/down/queued", QoS::AtMostOnce)
        .unwrap();
    wait_until(
        "$SYS says 30 messages wait",
        || matches!(queued.recv_timeout(common::PATIENCE), Ok(Some(m)) if &m.payload[..] == b"30"),
    );
}

#[test]
fn an_overflowing_bridge_queue_is_counted_by_the_broker() {
    let local = WrenBroker::with_config(|config| {
        config.limits.max_queued_messages = 10;
        config.limits.max_inflight_messages = 5;
    });
    let nowhere = format!("mqtt://127.0.0.1:{}", common::free_port());
    let config = bridge_config(
        "full",
        &nowhere,
        &[("data/#", OUT, QoS::AtLeastOnce, "", "")],
    );
    let _bridge = Bridge::start(&local, &config).unwrap();
    publish_numbered(&local.url(), "data/x", "m", 40, QoS::AtLeastOnce);
    // 5 in flight and 10 queued wait; the other 25 are dropped and counted.
    common::wait_for_stats(&local, "25 dropped", |stats| stats.publish_dropped == 25);
}

#[test]
fn queued_messages_survive_a_restart_with_persistence_in_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = wren::config::BrokerConfig::with_tcp_listener("127.0.0.1:0".parse().unwrap());
    config.persistence.enabled = true;
    config.persistence.path = Some(dir.path().join("store"));
    let remote = WrenBroker::start();
    let (_sink_client, sink) = subscriber(&remote.url(), "sink", "data/#", QoS::AtLeastOnce);
    let bridge_settings = bridge_config(
        "cloud",
        &remote.url(),
        &[("data/#", OUT, QoS::AtLeastOnce, "", "")],
    );

    let local = wren::Broker::start(config.clone()).unwrap();
    let bridge = Bridge::start(&local, &bridge_settings).unwrap();
    wait_connected(&bridge);
    bridge.shutdown();
    let url = format!("mqtt://{}", local.local_addr());
    let payloads = publish_numbered(&url, "data/x", "stored", 40, QoS::AtLeastOnce);
    local.shutdown();

    // A new broker on the same file: the bridge's session and its messages are
    // still there.
    let local = wren::Broker::start(config).unwrap();
    assert!(local.stats().queued_messages >= 40);
    let bridge = Bridge::start(&local, &bridge_settings).unwrap();
    let seen = collect(&sink, &payloads);
    assert_eq!(seen.len(), 40);
    wait_until("the stored queue drained", || {
        bridge.status().sent() >= 40 && local.stats().queued_messages == 0
    });
}

#[test]
fn a_filter_dropped_from_the_configuration_is_unsubscribed_locally() {
    let local = WrenBroker::start();
    let remote = WrenBroker::start();
    let before = bridge_config(
        "cloud",
        &remote.url(),
        &[
            ("a/#", OUT, QoS::AtLeastOnce, "", ""),
            ("b/#", OUT, QoS::AtLeastOnce, "", ""),
        ],
    );
    let bridge = Bridge::start(&local, &before).unwrap();
    wait_connected(&bridge);
    bridge.shutdown();
    let after = bridge_config(
        "cloud",
        &remote.url(),
        &[("a/#", OUT, QoS::AtLeastOnce, "", "")],
    );
    let bridge = Bridge::start(&local, &after).unwrap();
    bridge.shutdown();
    // The bridge's persistent local session is subscribed to a/# only.
    let session = local
        .inline_session("local.wren-bridge-cloud", true, Vec::new())
        .unwrap();
    assert!(session.session_present());
    let filters: Vec<String> = session
        .subscriptions()
        .unwrap()
        .iter()
        .map(|f| f.to_string())
        .collect();
    assert_eq!(filters, ["a/#"]);
}

#[test]
fn several_bridges_carry_their_own_topics() {
    let local = WrenBroker::start();
    let (east, west) = (WrenBroker::start(), WrenBroker::start());
    let configs = [
        bridge_config(
            "east",
            &east.url(),
            &[("e/#", OUT, QoS::AtLeastOnce, "", "")],
        ),
        bridge_config(
            "west",
            &west.url(),
            &[("w/#", OUT, QoS::AtLeastOnce, "", "")],
        ),
    ];
    let bridges = wren::bridge::Bridges::start(&local, &configs).unwrap();
    for bridge in bridges.iter() {
        wait_connected(bridge);
    }
    let (_e, at_east) = subscriber(&east.url(), "e", "#", QoS::AtLeastOnce);
    let (_w, at_west) = subscriber(&west.url(), "w", "#", QoS::AtLeastOnce);
    local
        .publish("e/1", "east", QoS::AtLeastOnce, false)
        .unwrap();
    local
        .publish("w/1", "west", QoS::AtLeastOnce, false)
        .unwrap();
    assert_eq!(next(&at_east).topic(), "e/1");
    assert_eq!(next(&at_west).topic(), "w/1");
    assert!(nothing_more(&at_east, QUIET).is_none());
    assert!(nothing_more(&at_west, QUIET).is_none());
    let east_bridge = bridges.get("east").unwrap();
    wait_until("east counts its message", || {
        east_bridge.status().sent() == 1
    });
    bridges.shutdown();
}

#[test]
fn the_brokers_figures_show_each_bridge_while_it_runs() {
    let local = WrenBroker::start();
    let remote = WrenBroker::start();
    // Credentials in the URL are not shown.
    let url = remote.url().replace("mqtt://", "mqtt://edge:secret@");
    let config = bridge_config(
        "cloud",
        &url,
        &[("sensors/#", OUT, QoS::AtLeastOnce, "", "")],
    );
    let bridge = Bridge::start(&local, &config).unwrap();
    wait_connected(&bridge);
    let publisher = Client::connect(local.url().as_str()).unwrap();
    publisher
        .publish("sensors/t", "21", QoS::AtLeastOnce, false)
        .unwrap();
    wait_until("the figures count the message sent", || {
        local.metrics().bridges.first().is_some_and(|b| b.sent == 1)
    });
    let figures = local.metrics().bridges;
    assert_eq!(figures.len(), 1);
    assert_eq!(figures[0].name, "cloud");
    assert!(figures[0].connected);
    assert_eq!(figures[0].remote, remote.url());
    bridge.shutdown();
    assert!(
        local.metrics().bridges.is_empty(),
        "a stopped bridge is gone"
    );
}
