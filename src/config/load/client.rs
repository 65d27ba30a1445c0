//! The client file's keys: session, reconnection, topic defaults, will and broker.

use std::time::Duration;

use super::super::{BrokerConnection, ClientConfig};
use super::section::{Field, Problem, Section, Warnings};
use crate::client::{TopicDefaults, Will};
use crate::protocol::TopicName;

pub(super) fn read_client(
    mut top: Section,
    warnings: &mut Warnings,
) -> Result<ClientConfig, Problem> {
    let mut config = ClientConfig::default();

    if let Some(f) = top.take("keep_alive") {
        config.keep_alive = Duration::from_secs(f.count(0..=65_535)?);
    }
    if let Some(f) = top.take("ping_delay") {
        config.ping_delay = f.seconds()?;
    }
    if let Some(f) = top.take("default_qos") {
        config.default_qos = f.qos()?;
    }
    if let Some(f) = top.take("default_retain") {
        config.default_retain = f.flag()?;
    }
    if let Some(f) = top.take("auto_reconnect") {
        config.auto_reconnect = f.flag()?;
    }
    if let Some(f) = top.take("reconnect_max_interval") {
        config.reconnect_max_interval = f.seconds()?;
    }
    if let Some(f) = top.take("reconnect_retries") {
        let retries = f.integer()?;
        // hbmqtt: a negative number retries forever.
        config.reconnect_retries = if retries < 0 {
            None
        } else {
            Some(
                u32::try_from(retries)
                    .map_err(|_| f.problem(format!("{retries} is too many retries")))?,
            )
        };
    }
    match (top.take("cleansession"), top.take("clean_session")) {
        (Some(_), Some(second)) => {
            return Err(second.problem("cleansession is given too; keep one of the two"))
        }
        (Some(f), None) | (None, Some(f)) => config.clean_session = f.flag()?,
        (None, None) => {}
    }
    if let Some(f) = top.take("topics") {
        for (name, settings) in f.section(warnings)?.drain() {
            TopicName::new(name.as_str())
                .map_err(|e| settings.problem(format!("{name:?} is not a topic name: {e}")))?;
            let mut settings = settings.section(warnings)?;
            // default_qos and default_retain are read above, whatever their place
            // in the file.
            let mut defaults = TopicDefaults {
                qos: config.default_qos,
                retain: config.default_retain,
            };
            if let Some(f) = settings.take("qos") {
                defaults.qos = f.qos()?;
            }
            if let Some(f) = settings.take("retain") {
                defaults.retain = f.flag()?;
            }
            settings.finish(warnings);
            config.topics.insert(name, defaults);
        }
    }
    if let Some(f) = top.take("will") {
        config.will = Some(read_will(f, warnings)?);
    }
    if let Some(f) = top.take("broker") {
        config.broker = read_broker_connection(f.section(warnings)?, warnings)?;
    }
    if let Some(f) = top.take("certfile") {
        config.certfile = Some(f.file()?);
    }
    if let Some(f) = top.take("keyfile") {
        config.keyfile = Some(f.file()?);
    }
    if let Some(f) = top.take("check_hostname") {
        config.check_hostname = f.flag()?;
    }
    top.not_supported(
        "plugins",
        warnings,
        "wren-mqtt has no client plugins (ignored)",
    );
    top.finish(warnings);
    Ok(config)
}

fn read_will(field: Field, warnings: &mut Warnings) -> Result<Will, Problem> {
    let will_path = field.path.clone();
    let mut will = field.section(warnings)?;
    let required = |key: &str| Problem {
        path: will_path.clone(),
        message: format!("a will needs a `{key}`"),
    };
    let topic_field = will.take("topic").ok_or_else(|| required("topic"))?;
    let topic = topic_field.text()?;
    TopicName::new(topic.as_str())
        .map_err(|e| topic_field.problem(format!("{topic:?} is not a topic name: {e}")))?;
    let message = will
        .take("message")
        .ok_or_else(|| required("message"))?
        .text()?;
    let qos = will
        .take("qos")
        .map(|f| f.qos())
        .transpose()?
        .unwrap_or_default();
    let retain = will
        .take("retain")
        .map(|f| f.flag())
        .transpose()?
        .unwrap_or(false);
    will.finish(warnings);
    Ok(Will::new(topic, message, qos, retain))
}

fn read_broker_connection(
    mut broker: Section,
    warnings: &mut Warnings,
) -> Result<BrokerConnection, Problem> {
    let mut config = BrokerConnection::default();
    if let Some(f) = broker.take("uri") {
        let uri = f.text()?;
        let scheme = uri.split_once("://").map(|(scheme, _)| scheme);
        if !matches!(scheme, Some("mqtt" | "mqtts" | "ws" | "wss")) {
            return Err(f.problem(format!(
                "expected a URL starting with mqtt://, mqtts://, ws:// or wss://, found {uri:?}"
            )));
        }
        config.uri = Some(uri);
    }
    if let Some(f) = broker.take("cafile") {
        config.cafile = Some(f.file()?);
    }
    if let Some(f) = broker.take("capath") {
        config.capath = Some(f.file()?);
    }
    if let Some(f) = broker.take("cadata") {
        config.cadata = Some(f.text()?);
    }
    broker.finish(warnings);
    Ok(config)
}
