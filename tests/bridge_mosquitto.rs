//! Bridges from a wren broker to mosquitto on loopback, over MQTT 3.1.1 (with
//! try_private) and MQTT 5 (with No Local): both directions, prefixes, QoS, no
//! loops, the state notifications, and mosquitto restarted mid-stream.

mod bridge_support;
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wren::bridge::Bridge;
use wren::client::{Client, ClientOptions};
use wren::config::BridgeConfig;
use wren::protocol::{ProtocolVersion, QoS};

use bridge_support::{
    bridge_config, collect, next, nothing_more, publish_across, subscriber, wait_connected, BOTH,
    IN, OUT,
};
use common::mosquitto::Mosquitto;
use common::{wait_until, WrenBroker};

const QUIET: Duration = Duration::from_millis(500);

/// Waits until mosquitto's log says the bridge's client subscribed.
fn wait_subscribed(remote: &Mosquitto, client_id: &str) {
    wait_until("mosquitto has the bridge's subscription", || {
        remote
            .log()
            .contains(&format!("Received SUBSCRIBE from {client_id}"))
    });
}

fn both_ways_with_prefixes(protocol: ProtocolVersion) {
    let local = WrenBroker::start();
    let remote = Mosquitto::start();
    let mut config: BridgeConfig = bridge_config(
        "cloud",
        &remote.url(),
        &[
            ("sensors/#", OUT, QoS::ExactlyOnce, "", ""),
            ("commands/#", IN, QoS::AtLeastOnce, "", ""),
            ("status/#", BOTH, QoS::AtMostOnce, "edge/", "site7/"),
        ],
    );
    config.protocol = protocol;
    let bridge = Bridge::start(&local, &config).unwrap();
    wait_connected(&bridge);
    wait_subscribed(&remote, "wren-bridge-cloud");

    let (_r, at_remote) = subscriber(&remote.url(), "r", "+/#", QoS::ExactlyOnce);
    let (_l, at_local) = subscriber(&local.url(), "l", "+/#", QoS::ExactlyOnce);
    let publisher = Client::connect(local.url().as_str()).unwrap();
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        publisher
            .publish("sensors/t", format!("{qos:?}"), qos, false)
            .unwrap();
        assert_eq!(next(&at_local).topic(), "sensors/t");
        let message = next(&at_remote);
        assert_eq!(message.topic(), "sensors/t");
        assert_eq!(message.qos(), qos);
    }
    let remote_publisher = Client::connect(remote.url().as_str()).unwrap();
    remote_publisher
        .publish("commands/open", "now", QoS::AtLeastOnce, false)
        .unwrap();
    assert_eq!(next(&at_remote).topic(), "commands/open");
    let command = next(&at_local);
    assert_eq!(command.topic(), "commands/open");
    assert_eq!(command.qos(), QoS::AtLeastOnce);

    publisher
        .publish("edge/status/door", "shut", QoS::AtMostOnce, false)
        .unwrap();
    assert_eq!(next(&at_local).topic(), "edge/status/door");
    assert_eq!(next(&at_remote).topic(), "site7/status/door");
    remote_publisher
        .publish("site7/status/window", "open", QoS::AtMostOnce, false)
        .unwrap();
    assert_eq!(next(&at_remote).topic(), "site7/status/window");
    assert_eq!(next(&at_local).topic(), "edge/status/window");

    // Nothing came back: the bridge's own messages are not echoed by mosquitto
    // (try_private over 3.1.1, No Local over 5), nor by wren.
    assert!(nothing_more(&at_local, QUIET).is_none());
    assert!(nothing_more(&at_remote, QUIET).is_none());
    assert_eq!(bridge.status().received(), 2);
}

#[test]
fn both_ways_with_prefixes_to_mosquitto_over_3_1_1() {
    both_ways_with_prefixes(ProtocolVersion::V3_1_1);
}

#[test]
fn both_ways_with_prefixes_to_mosquitto_over_5() {
    both_ways_with_prefixes(ProtocolVersion::V5);
}

fn no_loop(protocol: ProtocolVersion) {
    let local = WrenBroker::start();
    let remote = Mosquitto::start();
    let mut config = bridge_config(
        "loop",
        &remote.url(),
        &[("loop/#", BOTH, QoS::AtLeastOnce, "", "")],
    );
    config.protocol = protocol;
    let bridge = Bridge::start(&local, &config).unwrap();
    wait_connected(&bridge);
    wait_subscribed(&remote, "wren-bridge-loop");
    let (_l, at_local) = subscriber(&local.url(), "l", "loop/#", QoS::AtLeastOnce);
    let (_r, at_remote) = subscriber(&remote.url(), "r", "loop/#", QoS::AtLeastOnce);

    Client::connect(local.url().as_str())
        .unwrap()
        .publish("loop/a", "from local", QoS::AtLeastOnce, false)
        .unwrap();
    Client::connect(remote.url().as_str())
        .unwrap()
        .publish("loop/b", "from remote", QoS::AtLeastOnce, false)
        .unwrap();
    let mut got_local: Vec<String> = (0..2)
        .map(|_| next(&at_local).payload_str().unwrap().to_owned())
        .collect();
    let mut got_remote: Vec<String> = (0..2)
        .map(|_| next(&at_remote).payload_str().unwrap().to_owned())
        .collect();
    got_local.sort();
    got_remote.sort();
    assert_eq!(got_local, ["from local", "from remote"]);
    assert_eq!(got_remote, ["from local", "from remote"]);
    assert!(
        nothing_more(&at_local, QUIET).is_none(),
        "a copy came back here"
    );
    assert!(
        nothing_more(&at_remote, QUIET).is_none(),
        "a copy went back there"
    );
    assert_eq!((bridge.status().sent(), bridge.status().received()), (1, 1));
}

#[test]
fn a_topic_bridged_both_ways_to_mosquitto_does_not_loop_over_3_1_1() {
    no_loop(ProtocolVersion::V3_1_1);
}

#[test]
fn a_topic_bridged_both_ways_to_mosquitto_does_not_loop_over_5() {
    no_loop(ProtocolVersion::V5);
}

#[test]
fn the_bridge_state_is_published_on_both_brokers_as_mosquitto_does() {
    let local = WrenBroker::start();
    let remote = Mosquitto::start();
    let config = bridge_config(
        "cloud",
        &remote.url(),
        &[("a/#", OUT, QoS::AtLeastOnce, "", "")],
    );
    let state_topic = "$SYS/broker/connection/wren-bridge-cloud/state";
    let bridge = Bridge::start(&local, &config).unwrap();
    wait_connected(&bridge);

    let (_r, remote_state) = subscriber(&remote.url(), "r", state_topic, QoS::AtLeastOnce);
    let state = next(&remote_state);
    assert_eq!((state.payload_str().unwrap(), state.retain()), ("1", true));
    let local_state = local.subscribe(state_topic, QoS::AtLeastOnce).unwrap();
    let state = local_state.recv_timeout(common::PATIENCE).unwrap().unwrap();
    assert_eq!(&state.payload[..], b"1");
    let connected = local
        .subscribe("$SYS/broker/bridges/cloud/connected", QoS::AtMostOnce)
        .unwrap();
    let flag = connected.recv_timeout(common::PATIENCE).unwrap().unwrap();
    assert_eq!(&flag.payload[..], b"1");

    bridge.shutdown();
    assert_eq!(next(&remote_state).payload_str().unwrap(), "0");
    let state = local_state.recv_timeout(common::PATIENCE).unwrap().unwrap();
    assert_eq!(&state.payload[..], b"0");
}

#[test]
fn nothing_accepted_is_lost_when_mosquitto_restarts_mid_stream() {
    let local = WrenBroker::start();
    // mosquitto saves its sessions when it stops.
    let mut remote = Mosquitto::anonymous("persistence true\npersistence_location {dir}/\n");
    let config = bridge_config(
        "cloud",
        &remote.url(),
        &[("data/#", OUT, QoS::AtLeastOnce, "", "")],
    );
    let bridge = Bridge::start(&local, &config).unwrap();
    wait_connected(&bridge);
    let sink_options = ClientOptions::from_url(&remote.url())
        .unwrap()
        .with_client_id("sink")
        .with_clean_session(false);
    let sink = Client::connect(sink_options).unwrap();
    let sink_subscription = sink.subscribe("data/#", QoS::AtLeastOnce).unwrap();

    let restarted = Arc::new(AtomicBool::new(false));
    let publishing = {
        let (url, restarted) = (local.url(), restarted.clone());
        std::thread::spawn(move || {
            publish_across(&url, "data/x", "m", QoS::AtLeastOnce, &restarted)
        })
    };
    wait_until("some messages crossed", || bridge.status().sent() >= 20);
    remote.restart_gracefully();
    restarted.store(true, Ordering::SeqCst);
    let payloads = publishing.join().unwrap();
    let seen = collect(&sink_subscription, &payloads);
    assert_eq!(seen.len(), payloads.len());
}

#[test]
fn a_bridge_connects_over_tls_with_a_client_certificate() {
    let pem = common::certs::pem();
    // mosquitto asks every client for a certificate signed by the test CA.
    let remote = Mosquitto::with_config(
        "allow_anonymous true\ncafile {dir}/ca.pem\ncertfile {dir}/cert.pem\n\
         keyfile {dir}/key.pem\nrequire_certificate true\n",
        &[
            ("ca.pem", &pem.ca),
            ("cert.pem", &pem.cert),
            ("key.pem", &pem.key),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = common::certs::write(&pem, dir.path());
    let local = WrenBroker::start();
    let url = format!("mqtts://localhost:{}", remote.port());
    let mut config = bridge_config("secure", &url, &[("tls/#", OUT, QoS::AtLeastOnce, "", "")]);
    config.cafile = Some(ca.clone());
    config.client_cert = Some((cert.clone(), key.clone()));
    let bridge = Bridge::start(&local, &config).unwrap();
    wait_connected(&bridge);

    let reader = Client::connect(ClientOptions::from_url(&url).unwrap().with_tls(
        wren::transport::ClientTls {
            ca_file: Some(ca),
            client_cert: Some((cert, key)),
            ..Default::default()
        },
    ))
    .unwrap();
    let at_remote = reader.subscribe("tls/#", QoS::AtLeastOnce).unwrap();
    local
        .publish("tls/hello", "over TLS", QoS::AtLeastOnce, false)
        .unwrap();
    assert_eq!(next(&at_remote).payload_str().unwrap(), "over TLS");
}

#[test]
fn without_try_private_mosquitto_echoes_a_bridged_message_back_once() {
    // What try_private is for: over 3.1.1 without it, mosquitto sends the bridge
    // its own message back; the local session's No Local keeps it from going out
    // a second time, so it echoes once and stops.
    let local = WrenBroker::start();
    let remote = Mosquitto::start();
    let mut config = bridge_config(
        "echo",
        &remote.url(),
        &[("echo/#", BOTH, QoS::AtLeastOnce, "", "")],
    );
    config.try_private = false;
    let bridge = Bridge::start(&local, &config).unwrap();
    wait_connected(&bridge);
    wait_subscribed(&remote, "wren-bridge-echo");
    let (_l, at_local) = subscriber(&local.url(), "l", "echo/#", QoS::AtLeastOnce);
    Client::connect(local.url().as_str())
        .unwrap()
        .publish("echo/a", "once", QoS::AtLeastOnce, false)
        .unwrap();
    assert_eq!(next(&at_local).payload_str().unwrap(), "once");
    assert_eq!(next(&at_local).payload_str().unwrap(), "once", "the echo");
    assert!(nothing_more(&at_local, QUIET).is_none(), "only one echo");
    assert_eq!((bridge.status().sent(), bridge.status().received()), (1, 1));
}
