//! Reading client settings files in hbmqtt's layout.

use std::path::PathBuf;
use std::time::Duration;

use wren::client::Will;
use wren::config::{ClientConfig, ConfigWarning, WarningKind};
use wren::protocol::QoS;

fn load(text: &str) -> (ClientConfig, Vec<ConfigWarning>) {
    match ClientConfig::load_yaml_str(text, "client.yaml") {
        Ok(loaded) => (loaded.config, loaded.warnings),
        Err(error) => panic!("expected the settings to load, got: {error}"),
    }
}

fn error(text: &str) -> String {
    match ClientConfig::from_yaml_str(text, "client.yaml") {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn defaults_are_hbmqtts() {
    let config = ClientConfig::default();
    assert_eq!(config.keep_alive, Duration::from_secs(10));
    assert_eq!(config.ping_delay, Duration::from_secs(1));
    assert_eq!(config.default_qos, QoS::AtMostOnce);
    assert!(!config.default_retain);
    assert!(config.auto_reconnect);
    assert_eq!(config.reconnect_max_interval, Duration::from_secs(10));
    assert_eq!(config.reconnect_retries, Some(2));
    assert!(config.clean_session);
    assert!(config.topics.is_empty());
    assert_eq!(config.will, None);
    assert_eq!(config.broker.uri, None);
    assert!(config.check_hostname);
    assert_eq!(load("").0, config);
}

#[test]
fn amqtts_default_client_file_is_the_defaults_plus_a_uri() {
    let (config, warnings) = load(
        "---\nkeep_alive: 10\nping_delay: 1\ndefault_qos: 0\ndefault_retain: false\n\
         auto_reconnect: true\ncleansession: true\nreconnect_max_interval: 10\n\
         reconnect_retries: 2\nbroker:\n  uri: \"mqtt://127.0.0.1\"",
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    let mut expected = ClientConfig::default();
    expected.broker.uri = Some("mqtt://127.0.0.1".into());
    assert_eq!(config, expected);
}

#[test]
fn every_hbmqtt_key_is_read() {
    let (config, warnings) = load(
        "keep_alive: 30
ping_delay: 2
default_qos: 1
default_retain: yes
auto_reconnect: off
reconnect_max_interval: 60
reconnect_retries: -1
clean_session: false
topics:
  /test: {qos: 1}
  /some_topic: {qos: 2, retain: true}
will:
  topic: clients/1/status
  message: gone
  qos: 2
  retain: true
broker:
  uri: mqtts://user:pw@broker.example:8883
  cafile: ca.pem
  capath: /etc/ssl/certs
  cadata: '-----BEGIN CERTIFICATE-----'
certfile: client.pem
keyfile: client.key
check_hostname: false
",
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(config.keep_alive, Duration::from_secs(30));
    assert_eq!(config.ping_delay, Duration::from_secs(2));
    assert_eq!(config.default_qos, QoS::AtLeastOnce);
    assert!(config.default_retain);
    assert!(!config.auto_reconnect);
    assert_eq!(config.reconnect_max_interval, Duration::from_secs(60));
    assert_eq!(config.reconnect_retries, None, "negative retries forever");
    assert!(!config.clean_session);
    assert_eq!(config.publish_defaults("/test"), (QoS::AtLeastOnce, true));
    assert_eq!(
        config.publish_defaults("/some_topic"),
        (QoS::ExactlyOnce, true)
    );
    assert_eq!(config.publish_defaults("/other"), (QoS::AtLeastOnce, true));
    let will = config.will.as_ref().expect("will");
    assert_eq!(
        (
            will.topic.as_str(),
            &will.payload[..],
            will.qos,
            will.retain
        ),
        ("clients/1/status", &b"gone"[..], QoS::ExactlyOnce, true)
    );
    assert_eq!(
        config.broker.uri.as_deref(),
        Some("mqtts://user:pw@broker.example:8883")
    );
    assert_eq!(config.broker.cafile, Some(PathBuf::from("ca.pem")));
    assert_eq!(config.broker.capath, Some(PathBuf::from("/etc/ssl/certs")));
    assert_eq!(
        config.broker.cadata.as_deref(),
        Some("-----BEGIN CERTIFICATE-----")
    );
    assert_eq!(config.certfile, Some(PathBuf::from("client.pem")));
    assert_eq!(config.keyfile, Some(PathBuf::from("client.key")));
    assert!(!config.check_hostname);
}

#[test]
fn a_will_without_qos_or_retain_takes_theirs_from_defaults() {
    let (config, _) = load("will:\n  topic: a\n  message: b\n");
    let expected = ClientConfig::from_yaml_str(
        "will: {topic: a, message: b, qos: 0, retain: false}",
        "client.yaml",
    )
    .expect("loads");
    assert_eq!(config.will, expected.will);
    assert!(matches!(
        config.will,
        Some(Will {
            qos: QoS::AtMostOnce,
            retain: false,
            ..
        })
    ));
}

#[test]
fn unknown_and_unsupported_keys_are_warnings() {
    let (_, warnings) = load(
        "keepalive: 5\nplugins:\n  amqtt.plugins.logging_amqtt.PacketLoggerPlugin:\n\
         will:\n  topic: a\n  message: b\n  qos: 1\n  retian: true\n",
    );
    let seen: Vec<(WarningKind, String)> =
        warnings.iter().map(|w| (w.kind, w.to_string())).collect();
    assert_eq!(
        seen,
        [
            (
                WarningKind::UnknownKey,
                "client.yaml:1: keepalive: unknown key, ignored".to_owned()
            ),
            (
                WarningKind::NotSupported,
                "client.yaml:2: plugins: wren-mqtt has no client plugins (ignored)".to_owned()
            ),
            (
                WarningKind::UnknownKey,
                "client.yaml:8: will.retian: unknown key, ignored".to_owned()
            ),
        ]
    );
}

#[test]
fn every_error_names_file_line_and_key() {
    let cases: &[(&str, &str)] = &[
        (
            "keep_alive: 70000\n",
            "client.yaml:1: keep_alive: must be from 0 to 65535, found 70000",
        ),
        (
            "keep_alive: -1\n",
            "client.yaml:1: keep_alive: must not be negative, found -1",
        ),
        (
            "ping_delay: soon\n",
            r#"client.yaml:1: ping_delay: expected a number of seconds, found "soon""#,
        ),
        (
            "default_qos: 3\n",
            "client.yaml:1: default_qos: must be from 0 to 2, found 3",
        ),
        (
            "default_retain: 1\n",
            "client.yaml:1: default_retain: expected on or off (or true/false, yes/no), found 1",
        ),
        (
            "reconnect_retries: lots\n",
            r#"client.yaml:1: reconnect_retries: expected a number, found "lots""#,
        ),
        (
            "reconnect_retries: 99999999999\n",
            "client.yaml:1: reconnect_retries: 99999999999 is too many retries",
        ),
        (
            "cleansession: true\nclean_session: false\n",
            "client.yaml:2: clean_session: cleansession is given too; keep one of the two",
        ),
        (
            "topics:\n  a/+/b: {qos: 1}\n",
            r#"client.yaml:2: topics.a/+/b: "a/+/b" is not a topic name: topic name contains a wildcard ('+' or '#'), allowed only in filters [MQTT-4.7.1-1]"#,
        ),
        (
            "topics:\n  a: {qos: 5}\n",
            "client.yaml:2: topics.a.qos: must be from 0 to 2, found 5",
        ),
        (
            "will:\n  message: bye\n",
            "client.yaml:1: will: a will needs a `topic`",
        ),
        (
            "will:\n  topic: a/#\n  message: bye\n",
            r#"client.yaml:2: will.topic: "a/#" is not a topic name: topic name contains a wildcard ('+' or '#'), allowed only in filters [MQTT-4.7.1-1]"#,
        ),
        (
            "broker:\n  uri: http://example.com\n",
            r#"client.yaml:2: broker.uri: expected a URL starting with mqtt://, mqtts://, ws:// or wss://, found "http://example.com""#,
        ),
        (
            "broker: mqtt://localhost\n",
            r#"client.yaml:1: broker: expected a mapping of settings, found "mqtt://localhost""#,
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(error(text), *expected, "for:\n{text}");
    }
}

#[test]
fn the_sample_client_file_loads_without_warnings() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/client.yaml");
    let loaded = ClientConfig::load_yaml_file(path).expect("examples/client.yaml loads");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let config = loaded.config;
    assert_eq!(config.broker.uri.as_deref(), Some("mqtt://127.0.0.1:1883"));
    assert_eq!(
        config.publish_defaults("status/online"),
        (QoS::AtLeastOnce, true)
    );
    assert_eq!(config.will.map(|w| w.topic), Some("status/online".into()));
}
