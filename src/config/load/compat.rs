//! What files written for hbmqtt and amqtt meet here: the plugins wren-mqtt does not
//! load, and the YAML syntax error their users are sure to make.

use super::super::yaml::{Node, Step};
use super::super::WarningKind;
use super::section::{Field, Warnings};

/// Why `plugins:` keys are taken but not acted on.
pub(super) const NO_PLUGINS: &str = "wren-mqtt loads no plugins: its own authentication and topic \
     checks read `auth:` and `topic-check:`, so put plugin settings there (ignored)";

/// A hint for the one YAML syntax error hbmqtt users are sure to meet: brackets
/// start a list in YAML, so `bind: [::1]:1883` must be quoted.
pub(super) fn syntax_hint(text: &str, line: Option<usize>) -> String {
    let Some(source) = line.and_then(|n| text.lines().nth(n.saturating_sub(1))) else {
        return String::new();
    };
    match source.trim_start().strip_prefix("bind:") {
        Some(value) if value.trim_start().starts_with('[') => {
            format!(
                " (in YAML an IPv6 bind needs quotes: bind: '{}')",
                value.trim()
            )
        }
        _ => String::new(),
    }
}

/// amqtt's newer `plugins:` section (a mapping from plugin class to its settings,
/// or a list of such names). None is loaded; each gets a warning saying where its
/// job is configured here, so that an ACL left in a plugin is not silently dropped.
pub(super) fn warn_amqtt_plugins(field: Field, warnings: &mut Warnings) {
    let plugins: Vec<(String, Vec<Step>)> = match &field.node {
        Node::Map(entries) => entries
            .iter()
            .map(|(name, _)| {
                let mut path = field.path.clone();
                path.push(Step::Key(name.clone(), 0));
                (name.clone(), path)
            })
            .collect(),
        Node::Seq(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let name = match item {
                    Node::Str(name) => name.clone(),
                    Node::Map(entries) => match entries.as_slice() {
                        [(name, _)] => name.clone(),
                        _ => item.describe(),
                    },
                    other => other.describe(),
                };
                let mut path = field.path.clone();
                path.push(Step::Index(i));
                (name, path)
            })
            .collect(),
        _ => Vec::new(),
    };
    if plugins.is_empty() {
        warnings.add(&field.path, WarningKind::NotSupported, NO_PLUGINS);
    }
    for (name, path) in plugins {
        let lower = name.to_ascii_lowercase();
        let message = if ["accesscontrol", "acl", "taboo"]
            .iter()
            .any(|w| lower.contains(w))
        {
            format!(
                "{name} is not loaded, so it restricts no topic: wren-mqtt checks topics \
                 as `topic-check:` says (`enabled`, `acl`, `publish-acl`, `acl-file`)"
            )
        } else if lower.contains("auth") {
            format!(
                "{name} is not loaded: wren-mqtt authenticates as `auth:` says \
                 (`allow-anonymous`, `password-file`)"
            )
        } else if lower.contains("sys") {
            format!("{name} is not loaded: $SYS topics are set with `sys_interval`")
        } else {
            format!("{name} is not loaded: wren-mqtt has no plugins")
        };
        warnings.add(&path, WarningKind::NotSupported, message);
    }
}
