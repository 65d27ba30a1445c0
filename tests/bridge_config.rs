//! The `bridges:` section of the broker file: read as mosquitto's bridge options
//! mean, and a bad value named by file, line and key.

use std::time::Duration;

use wren::config::{BrokerConfig, Direction};
use wren::protocol::{ProtocolVersion, QoS};

const EXAMPLE: &str = "\
bridges:
  cloud:
    url: mqtts://cluster.example:8883
    client-id: edge-7
    username: edge-7
    password: secret
    cafile: /etc/wren/ca.crt
    clean-session: false
    keep-alive: 60
    protocol-version: 5
    topics:
      - {filter: 'sensors/#', direction: out, qos: 1}
      - {filter: 'commands/#', direction: in, qos: 1}
      - {filter: 'status/#', direction: both, qos: 0, local-prefix: 'edge/', remote-prefix: 'site7/'}
  backup:
    url: mqtt://10.0.0.2:1883
    notifications: false
    topics:
      - {filter: '#'}
";

#[test]
fn the_documented_example_reads_as_it_says() {
    let loaded = BrokerConfig::load_yaml_str(EXAMPLE, "broker.yaml").unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let bridges = &loaded.config.bridges;
    assert_eq!(bridges.len(), 2);
    let cloud = &bridges[0];
    assert_eq!(cloud.name, "cloud");
    assert_eq!(cloud.url, "mqtts://cluster.example:8883");
    assert_eq!(cloud.client_id, "edge-7");
    assert_eq!(cloud.username.as_deref(), Some("edge-7"));
    assert_eq!(cloud.password.as_deref(), Some("secret"));
    assert!(
        !format!("{cloud:?}").contains("secret"),
        "Debug hides the password"
    );
    assert_eq!(cloud.cafile.as_deref(), Some("/etc/wren/ca.crt".as_ref()));
    assert!(!cloud.clean_session);
    assert_eq!(cloud.keep_alive, Duration::from_secs(60));
    assert_eq!(cloud.protocol, ProtocolVersion::V5);
    assert!(cloud.notifications);
    assert_eq!(
        cloud.notification_topic,
        "$SYS/broker/connection/edge-7/state"
    );
    let status = &cloud.topics[2];
    assert_eq!(status.filter.as_str(), "status/#");
    assert_eq!(status.direction, Direction::Both);
    assert_eq!(status.qos, QoS::AtMostOnce);
    assert_eq!(
        (status.local_prefix.as_str(), status.remote_prefix.as_str()),
        ("edge/", "site7/")
    );
    assert_eq!(cloud.topics[1].direction, Direction::In);

    // mosquitto's defaults: out, QoS 0, a client id of the bridge's own.
    let backup = &bridges[1];
    assert_eq!(backup.client_id, "wren-bridge-backup");
    assert!(!backup.notifications);
    assert_eq!(backup.topics[0].direction, Direction::Out);
    assert_eq!(backup.topics[0].qos, QoS::AtMostOnce);
    assert_eq!(backup.protocol, ProtocolVersion::V3_1_1);
}

/// The error for `yaml`, as `wren-broker` prints it.
fn error(yaml: &str) -> String {
    BrokerConfig::load_yaml_str(yaml, "broker.yaml")
        .expect_err("a bad bridge")
        .to_string()
}

#[test]
fn a_bad_bridge_is_named_by_file_line_and_key() {
    let bad_direction =
        "bridges:\n  cloud:\n    url: mqtt://h\n    topics:\n      - {filter: a, direction: sideways}\n";
    let message = error(bad_direction);
    assert!(
        message.starts_with(
            "broker.yaml:5: bridges.cloud.topics[0].direction: expected in, out or both"
        ),
        "{message}"
    );

    let message = error("bridges:\n  cloud:\n    url: http://h\n    topics: [{filter: a}]\n");
    assert!(
        message.starts_with("broker.yaml:3: bridges.cloud.url: expected a URL"),
        "{message}"
    );

    let message = error("bridges:\n  cloud:\n    topics: [{filter: a}]\n");
    assert!(
        message.contains("bridges.cloud: bridge \"cloud\" has no `url`"),
        "{message}"
    );

    let message = error("bridges:\n  cloud:\n    url: mqtt://h\n    topics: [{filter: 'a/#/b'}]\n");
    assert!(
        message.contains("bridges.cloud.topics[0].filter:"),
        "{message}"
    );

    let message = error(
        "bridges:\n  cloud:\n    url: mqtt://h\n    topics: [{filter: a, local-prefix: 'x/+/'}]\n",
    );
    assert!(
        message.contains("bridges.cloud.topics[0].local-prefix: a prefix is plain topic levels"),
        "{message}"
    );

    let message =
        error("bridges:\n  cloud:\n    url: mqtt://h\n    topics: [{filter: a, qos: 3}]\n");
    assert!(
        message.contains("bridges.cloud.topics[0].qos:"),
        "{message}"
    );

    let message = error(
        "bridges:\n  a:\n    url: mqtt://h\n    client-id: x\n    topics: [{filter: a}]\n  b:\n    url: mqtt://h\n    client-id: x\n    topics: [{filter: a}]\n",
    );
    assert!(
        message.contains("already uses the client-id \"x\""),
        "{message}"
    );
}

#[test]
fn an_unknown_bridge_key_is_a_warning() {
    let yaml =
        "bridges:\n  cloud:\n    url: mqtt://h\n    topic: oops\n    topics: [{filter: a}]\n";
    let loaded = BrokerConfig::load_yaml_str(yaml, "broker.yaml").unwrap();
    assert_eq!(
        loaded.warnings[0].to_string(),
        "broker.yaml:4: bridges.cloud.topic: unknown key, ignored"
    );
}

#[test]
fn the_commented_bridge_of_the_example_file_reads_once_uncommented() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/broker.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let start = text
        .find("# bridges:")
        .expect("a commented bridges: section");
    let yaml: String = text[start..]
        .lines()
        .map(|line| line.strip_prefix("# ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n");
    let loaded = BrokerConfig::load_yaml_str(&yaml, "broker.yaml").unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let cloud = &loaded.config.bridges[0];
    assert_eq!(cloud.client_id, "edge-7");
    assert_eq!(cloud.topics.len(), 3);
}
