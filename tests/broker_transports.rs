//! The broker's TLS, WebSocket and secure WebSocket listeners, with real peers:
//! mosquitto's clients over TLS, wren's client over all four URL schemes, and
//! Python's paho-mqtt over WebSocket.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::certs::{self, Certificates};
use common::mosquitto::{self, Subscriber};
use common::TIMEOUT;
use wren::broker::Broker;
use wren::client::{Client, ClientOptions, ClientTls, QoS};
use wren::config::{BrokerConfig, ListenerConfig, ListenerKind, TlsConfig};

/// A broker with four listeners: plain, TLS, WebSocket and secure WebSocket.
struct Listeners {
    broker: Broker,
    certificates: Certificates,
}

impl Listeners {
    fn start() -> Listeners {
        let _ = env_logger::builder().is_test(true).try_init();
        let certificates = certs::make();
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let tls = || Some(TlsConfig::new(&certificates.cert, &certificates.key));
        let mut config = BrokerConfig::with_tcp_listener(any);
        config.sys.interval = Duration::ZERO;
        let mut secure = ListenerConfig::tcp("tls", any);
        secure.tls = tls();
        let mut websocket = ListenerConfig::tcp("ws", any);
        websocket.kind = ListenerKind::WebSocket { path: None };
        let mut secure_websocket = ListenerConfig::tcp("wss", any);
        secure_websocket.kind = ListenerKind::WebSocket {
            path: Some("/mqtt".into()),
        };
        secure_websocket.tls = tls();
        config
            .listeners
            .extend([secure, websocket, secure_websocket]);
        let broker = Broker::start(config).expect("a broker with four listeners");
        Listeners {
            broker,
            certificates,
        }
    }

    fn port(&self, index: usize) -> u16 {
        self.broker.local_addrs()[index].port()
    }

    fn url(&self, scheme: &str) -> String {
        let index = ["mqtt", "mqtts", "ws", "wss"]
            .iter()
            .position(|s| *s == scheme)
            .expect("a known scheme");
        let path = if scheme.starts_with("ws") {
            "/mqtt"
        } else {
            ""
        };
        format!("{scheme}://localhost:{}{path}", self.port(index))
    }

    fn client(&self, scheme: &str, id: &str) -> Client {
        let options = ClientOptions::from_url(&self.url(scheme))
            .expect("a valid URL")
            .with_client_id(id)
            .with_operation_timeout(TIMEOUT)
            .with_tls(ClientTls {
                ca_data: Some(self.certificates.ca_pem.clone()),
                ..ClientTls::default()
            });
        Client::connect(options).unwrap_or_else(|e| panic!("{scheme}: {e}"))
    }
}

#[test]
fn wren_clients_on_all_four_transports_reach_each_other() {
    let listeners = Listeners::start();
    let schemes = ["mqtt", "mqtts", "ws", "wss"];
    let subscribers: Vec<_> = schemes
        .iter()
        .map(|scheme| {
            let client = listeners.client(scheme, &format!("sub-{scheme}"));
            let subscription = client.subscribe("mixed/#", QoS::ExactlyOnce).unwrap();
            (client, subscription)
        })
        .collect();
    for scheme in schemes {
        let publisher = listeners.client(scheme, &format!("pub-{scheme}"));
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let payload = format!("{scheme} q{qos}");
            publisher
                .publish(&format!("mixed/{scheme}"), payload.clone(), qos, false)
                .unwrap();
            for (_, subscription) in &subscribers {
                let message = subscription
                    .recv_timeout(TIMEOUT)
                    .unwrap()
                    .expect("a delivery");
                assert_eq!(message.payload_str().unwrap(), payload);
                assert_eq!(message.qos(), qos);
            }
        }
    }
}

#[test]
fn large_messages_cross_tls_and_websocket_intact() {
    let listeners = Listeners::start();
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    for scheme in ["mqtts", "ws", "wss"] {
        let client = listeners.client(scheme, &format!("big-{scheme}"));
        let subscription = client.subscribe("big", QoS::AtLeastOnce).unwrap();
        client
            .publish("big", payload.clone(), QoS::AtLeastOnce, false)
            .unwrap();
        let message = subscription
            .recv_timeout(TIMEOUT)
            .unwrap()
            .expect("the big message");
        assert!(message.payload()[..] == payload[..], "{scheme}");
    }
}

#[test]
fn mosquitto_clients_use_the_tls_listener() {
    let listeners = Listeners::start();
    let tls_addr = SocketAddr::from(([127, 0, 0, 1], listeners.port(1)));
    let cafile = listeners.certificates.ca.to_str().unwrap().to_string();
    let mut subscriber = Subscriber::start(
        tls_addr,
        &[
            "--cafile", &cafile, "-t", "secure/#", "-q", "1", "-v", "-C", "1",
        ],
    );
    // mosquitto_sub may not have subscribed yet: retained delivery covers both orders.
    mosquitto::publish(
        tls_addr,
        &[
            "--cafile",
            &cafile,
            "-t",
            "secure/news",
            "-m",
            "over TLS",
            "-q",
            "1",
            "-r",
        ],
    );
    assert_eq!(subscriber.line(), "secure/news over TLS");
    assert!(subscriber.wait().success());
}

#[test]
fn mosquitto_pub_without_the_ca_cannot_connect_over_tls() {
    let listeners = Listeners::start();
    let tls_addr = SocketAddr::from(([127, 0, 0, 1], listeners.port(1)));
    let port = tls_addr.port().to_string();
    let other = certs::make();
    let output = mosquitto::run(
        "mosquitto_pub",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "--cafile",
            other.ca.to_str().unwrap(),
            "-t",
            "t",
            "-m",
            "m",
        ],
    );
    assert!(!output.status.success());
    // The broker keeps serving others.
    let client = listeners.client("mqtts", "after-refusal");
    client.publish("t", "m", QoS::AtLeastOnce, false).unwrap();
}

/// Runs a Python program with paho-mqtt; fails loudly if Python or paho-mqtt is
/// missing (`.ci/run` installs paho-mqtt from PyPI).
fn python(program: &str) -> String {
    let output = Command::new("python3")
        .arg("-c")
        .arg(program)
        .output()
        .expect("python3 must be installed");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named 'paho'"),
        "paho-mqtt is missing: pip install paho-mqtt (.ci/run does)"
    );
    assert!(output.status.success(), "python failed: {stderr}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn python_paho_talks_to_the_websocket_listener() {
    let listeners = Listeners::start();
    let port = listeners.port(2);
    let wren = listeners.client("ws", "wren-side");
    let subscription = wren.subscribe("browser/up", QoS::AtLeastOnce).unwrap();
    wren.publish("browser/down", "from wren", QoS::AtLeastOnce, true)
        .unwrap();

    let received = python(&format!(
        r#"
import paho.mqtt.publish as publish, paho.mqtt.subscribe as subscribe
message = subscribe.simple("browser/down", hostname="127.0.0.1", port={port},
                           transport="websockets", keepalive=10)
print(message.payload.decode())
publish.single("browser/up", "from paho", qos=1, hostname="127.0.0.1", port={port},
               transport="websockets")
"#
    ));
    assert_eq!(received.trim(), "from wren");
    let message = subscription
        .recv_timeout(TIMEOUT)
        .unwrap()
        .expect("paho's message");
    assert_eq!(message.payload_str().unwrap(), "from paho");
}

#[test]
fn a_listener_with_a_missing_certificate_stops_the_broker_at_start() {
    let mut config = BrokerConfig::with_tcp_listener(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.listeners[0].tls = Some(TlsConfig::new(
        "/nonexistent/cert.pem",
        "/nonexistent/key.pem",
    ));
    let error = Broker::start(config).unwrap_err().to_string();
    assert!(error.contains("listener 'default'"), "{error}");
    assert!(error.contains("/nonexistent/cert.pem"), "{error}");
}
