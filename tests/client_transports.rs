//! The client over TLS, WebSocket and secure WebSocket: TLS against mosquitto's
//! own TLS listener, WebSocket through a front made of wren's transport acceptor
//! (Debian's mosquitto cannot open WebSocket listeners here).

mod client_support;
mod common;

use client_support::{test_certificates, Mosquitto, WebSocketFront, PATIENCE};
use wren::client::{Client, ClientOptions, ClientTls, Error, Kind, QoS};

const TLS_FILES: &str =
    "cafile {dir}/ca.pem\ncertfile {dir}/cert.pem\nkeyfile {dir}/key.pem\nallow_anonymous true\n";

fn tls_broker(extra: &str) -> (Mosquitto, String) {
    let certificates = test_certificates();
    let broker = Mosquitto::with_config(
        &format!("{extra}{TLS_FILES}"),
        &[
            ("ca.pem", &certificates.ca),
            ("cert.pem", &certificates.cert),
            ("key.pem", &certificates.key),
        ],
    );
    (broker, certificates.ca)
}

/// Subscribes and publishes one message of each QoS over `options`.
fn round_trip(options: ClientOptions) {
    let client = Client::connect(options.with_operation_timeout(PATIENCE)).unwrap();
    let subscription = client.subscribe("over/#", QoS::ExactlyOnce).unwrap();
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        client
            .publish("over/there", format!("{qos}"), qos, false)
            .unwrap();
        let message = subscription
            .recv_timeout(PATIENCE)
            .unwrap()
            .expect("a message");
        assert_eq!(message.payload_str().unwrap(), format!("{qos}"));
    }
    client.disconnect().unwrap();
}

fn trusting(ca_pem: String) -> ClientTls {
    ClientTls {
        ca_data: Some(ca_pem),
        ..ClientTls::default()
    }
}

#[test]
fn mqtt_over_tls() {
    let (broker, ca) = tls_broker("");
    let url = format!("mqtts://localhost:{}", broker.port());
    let options = ClientOptions::from_url(&url).unwrap();
    assert_eq!(options.transport(), Kind::Tls);
    round_trip(options.with_tls(trusting(ca)));
}

#[test]
fn an_untrusted_broker_certificate_is_refused() {
    let (broker, _) = tls_broker("");
    let url = format!("mqtts://localhost:{}", broker.port());
    let error = Client::connect(url.as_str()).unwrap_err();
    assert!(matches!(error, Error::Transport { .. }), "{error:?}");
    assert!(error.to_string().contains("TLS"), "{error}");
}

#[test]
fn mqtt_over_websocket() {
    let broker = Mosquitto::start();
    let front = WebSocketFront::to(broker.address(), None);
    let url = format!("ws://127.0.0.1:{}/mqtt", front.port());
    round_trip(ClientOptions::from_url(&url).unwrap());
}

#[test]
fn mqtt_over_secure_websocket() {
    let broker = Mosquitto::start();
    let certificates = test_certificates();
    let front = WebSocketFront::to(broker.address(), Some(&certificates));
    let url = format!("wss://localhost:{}", front.port());
    round_trip(
        ClientOptions::from_url(&url)
            .unwrap()
            .with_tls(trusting(certificates.ca)),
    );
}
