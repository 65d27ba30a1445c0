//! The broker file's `bridges:` mapping: one section per remote broker.

use std::collections::HashMap;
use std::time::Duration;

use super::super::bridge::default_notification_topic;
use super::super::{BridgeConfig, BridgeTopic, Direction};
use super::section::{Field, Problem, Section, Warnings};
use crate::protocol::{ProtocolVersion, TopicFilter, TopicName};

/// The schemes the client dials.
const SCHEMES: [&str; 4] = ["mqtt", "mqtts", "ws", "wss"];

pub(super) fn read_bridges(
    field: Field,
    warnings: &mut Warnings,
) -> Result<Vec<BridgeConfig>, Problem> {
    let section = field.section(warnings)?;
    let mut bridges: Vec<BridgeConfig> = Vec::new();
    let mut client_ids: HashMap<String, String> = HashMap::new();
    for (name, field) in section.drain() {
        let path = field.path.clone();
        let bridge = read_bridge(name, field.section(warnings)?, warnings)?;
        // Two bridges with one client identifier would take each other's session
        // over on the remote, for ever.
        if let Some(other) = client_ids.insert(bridge.client_id.clone(), bridge.name.clone()) {
            return Err(Problem {
                path,
                message: format!(
                    "bridge {other:?} already uses the client-id {:?}; each bridge needs its own",
                    bridge.client_id
                ),
            });
        }
        bridges.push(bridge);
    }
    Ok(bridges)
}

fn read_bridge(
    name: String,
    mut section: Section,
    warnings: &mut Warnings,
) -> Result<BridgeConfig, Problem> {
    let Some(url) = section.take("url") else {
        return Err(missing(
            &section,
            format!(
                "bridge {name:?} has no `url` saying which broker to connect to, such as \
             `url: mqtt://broker.example:1883`"
            ),
        ));
    };
    let url_text = url.text()?;
    match url::Url::parse(&url_text) {
        Ok(parsed) if SCHEMES.contains(&parsed.scheme()) && parsed.host_str().is_some() => {}
        _ => {
            return Err(url.problem(format!(
                "expected a URL such as mqtt://host:1883 (mqtt, mqtts, ws or wss), found \
                 {url_text:?}"
            )))
        }
    }
    let mut bridge = BridgeConfig::new(name, url_text);
    if let Some(f) = section.take("client-id") {
        let id = f.text()?;
        if id.is_empty() || id.len() > 65_535 {
            return Err(f.problem("expected a client identifier of 1 to 65535 bytes"));
        }
        bridge.client_id = id;
    }
    bridge.notification_topic = default_notification_topic(&bridge.client_id);
    if let Some(f) = section.take("username") {
        bridge.username = Some(f.text()?);
    }
    if let Some(f) = section.take("password") {
        bridge.password = Some(f.text()?);
    }
    if let Some(f) = section.take("cafile") {
        bridge.cafile = Some(f.file()?);
    }
    let certfile = section.take("certfile");
    let keyfile = section.take("keyfile");
    match (certfile, keyfile) {
        (Some(cert), Some(key)) => bridge.client_cert = Some((cert.file()?, key.file()?)),
        (None, None) => {}
        (Some(f), None) | (None, Some(f)) => {
            return Err(f.problem("a client certificate takes both `certfile` and `keyfile`"))
        }
    }
    if let Some(f) = section.take("insecure") {
        bridge.insecure = f.flag()?;
    }
    if let Some(f) = section.take("clean-session") {
        bridge.clean_session = f.flag()?;
    }
    if let Some(f) = section.take("keep-alive") {
        bridge.keep_alive = Duration::from_secs(f.count(1..=65_535)?);
    }
    if let Some(f) = section.take("protocol-version") {
        bridge.protocol = match f.text()?.as_str() {
            "3.1.1" | "4" | "mqttv311" => ProtocolVersion::V3_1_1,
            "5" | "5.0" | "mqttv50" => ProtocolVersion::V5,
            other => return Err(f.problem(format!("expected 3.1.1 or 5, found {other:?}"))),
        };
    }
    if let Some(f) = section.take("try-private") {
        bridge.try_private = f.flag()?;
    }
    if let Some(f) = section.take("notifications") {
        bridge.notifications = f.flag()?;
    }
    if let Some(f) = section.take("notification-topic") {
        let topic = f.text()?;
        if TopicName::new(&topic).is_err() || topic.is_empty() {
            return Err(f.problem(format!("expected a topic name, found {topic:?}")));
        }
        bridge.notification_topic = topic;
    }
    if let Some(f) = section.take("reconnect-max-interval") {
        bridge.reconnect_max_interval = f.positive_seconds()?;
    }
    let Some(topics) = section.take("topics") else {
        return Err(missing(
            &section,
            format!(
                "bridge {:?} has no `topics`, so it would carry nothing; add one such as \
             `- {{filter: 'sensors/#', direction: out, qos: 1}}`",
                bridge.name
            ),
        ));
    };
    for f in topics.list()? {
        bridge
            .topics
            .push(read_topic(f.section(warnings)?, warnings)?);
    }
    if bridge.topics.is_empty() {
        return Err(missing(
            &section,
            format!("bridge {:?} has an empty `topics` list", bridge.name),
        ));
    }
    section.finish(warnings);
    Ok(bridge)
}

fn read_topic(mut section: Section, warnings: &mut Warnings) -> Result<BridgeTopic, Problem> {
    let Some(f) = section.take("filter") else {
        return Err(missing(
            &section,
            "a bridge topic needs a `filter`, such as 'sensors/#'",
        ));
    };
    let text = f.text()?;
    let filter = TopicFilter::new(&text)
        .map_err(|error| f.problem(format!("{text:?} is not a topic filter: {error}")))?;
    if filter.shared().ok().flatten().is_some() {
        return Err(f.problem("a bridge cannot carry a shared subscription ($share/...)"));
    }
    let mut topic = BridgeTopic {
        filter,
        direction: Direction::Out,
        qos: crate::protocol::QoS::AtMostOnce,
        local_prefix: String::new(),
        remote_prefix: String::new(),
    };
    if let Some(f) = section.take("direction") {
        topic.direction = match f.text()?.as_str() {
            "out" => Direction::Out,
            "in" => Direction::In,
            "both" => Direction::Both,
            other => return Err(f.problem(format!("expected in, out or both, found {other:?}"))),
        };
    }
    if let Some(f) = section.take("qos") {
        topic.qos = f.qos()?;
    }
    for (key, prefix) in [
        ("local-prefix", &mut topic.local_prefix),
        ("remote-prefix", &mut topic.remote_prefix),
    ] {
        if let Some(f) = section.take(key) {
            let text = f.text()?;
            if text.contains(['#', '+', '\0']) {
                return Err(f.problem(format!(
                    "a prefix is plain topic levels, without wildcards; found {text:?}"
                )));
            }
            // The prefixed filter must still be one (its levels within limits).
            if TopicFilter::new(format!("{text}{}", topic.filter)).is_err() {
                return Err(f.problem(format!(
                    "{text:?} before the filter does not make a topic filter"
                )));
            }
            *prefix = text;
        }
    }
    section.finish(warnings);
    Ok(topic)
}

/// A problem with a whole section: something it lacks.
fn missing(section: &Section, message: impl Into<String>) -> Problem {
    Problem {
        path: section.path.clone(),
        message: message.into(),
    }
}
