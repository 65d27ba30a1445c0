//! The broker file's keys: limits, listeners, authentication, topic checks and
//! persistence.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use super::super::yaml::{Node, Step};
use super::super::{
    AuthConfig, BrokerConfig, Limits, ListenerConfig, ListenerKind, PersistenceConfig, TlsConfig,
    TopicCheckConfig, WarningKind,
};
use super::compat::{warn_amqtt_plugins, NO_PLUGINS};
use super::section::{Field, Problem, Section, Warnings};
use crate::protocol::{ReasonCode, TopicFilter, MAX_REMAINING_LENGTH};

/// The deepest `max-topic-levels` accepted: a topic of this many levels is 65,535
/// bytes of slashes, the longest a packet can carry.
const MAX_TOPIC_LEVELS: u64 = 65_536;

pub(super) fn read_broker(
    mut top: Section,
    warnings: &mut Warnings,
) -> Result<BrokerConfig, Problem> {
    let mut config = BrokerConfig::default();

    // Where each HTTP listener asked for basic authentication, for the check
    // against `auth.password-file` once that is read.
    let mut basic_auth_paths = Vec::new();
    if let Some(listeners) = top.take("listeners") {
        config.listeners = read_listeners(listeners, &mut basic_auth_paths, warnings)?;
    }

    let limits = &mut config.limits;
    if let Some(f) = top.take("timeout-disconnect-delay") {
        limits.timeout_disconnect_delay = f.seconds()?;
    }
    if let Some(f) = top.take("max-packet-size") {
        // The smallest packet is two bytes; the largest is what four bytes of
        // remaining length can say, plus the fixed header.
        limits.max_packet_size = f.count(2..=MAX_REMAINING_LENGTH as u64 + 5)? as usize;
    }
    if let Some(f) = top.take("max-inflight-messages") {
        // Each inflight message holds a packet identifier, of which there are 65535.
        limits.max_inflight_messages = f.count(1..=65_535)? as usize;
    }
    if let Some(f) = top.take("max-queued-messages") {
        limits.max_queued_messages = f.count(0..=u32::MAX as u64)? as usize;
    }
    if let Some(f) = top.take("max-queued-bytes") {
        limits.max_queued_bytes = f.limit()?;
    }
    if let Some(f) = top.take("max-keepalive") {
        limits.max_keep_alive = f.count(1..=65_535)? as u16;
    }
    if let Some(f) = top.take("receive-maximum") {
        limits.receive_maximum = f.count(1..=65_535)? as u16;
    }
    if let Some(f) = top.take("topic-alias-maximum") {
        limits.topic_alias_maximum = f.count(0..=65_535)? as u16;
    }
    if let Some(f) = top.take("outgoing-topic-aliases") {
        limits.outgoing_topic_aliases = f.flag()?;
    }
    if let Some(f) = top.take("denied-subscription-code") {
        limits.denied_subscription_code = match f.count(0x80..=0x87)? {
            0x80 => ReasonCode::UNSPECIFIED_ERROR,
            0x87 => ReasonCode::NOT_AUTHORIZED,
            _ => return Err(f.problem("expected 0x80 or 0x87 (128 or 135)")),
        };
    }
    if let Some(f) = top.take("max-qos") {
        limits.max_qos = f.qos()?;
    }
    if let Some(f) = top.take("retain-available") {
        limits.retain_available = f.flag()?;
    }
    if let Some(f) = top.take("wildcard-subscription-available") {
        limits.wildcard_subscriptions = f.flag()?;
    }
    if let Some(f) = top.take("subscription-identifier-available") {
        limits.subscription_identifiers = f.flag()?;
    }
    if let Some(f) = top.take("shared-subscription-available") {
        limits.shared_subscriptions = f.flag()?;
    }
    if let Some(f) = top.take("connect-timeout") {
        limits.connect_timeout = f.positive_seconds()?;
    }
    if let Some(f) = top.take("packet-timeout") {
        limits.packet_timeout = f.positive_seconds()?;
    }
    if let Some(f) = top.take("max-topic-levels") {
        limits.max_topic_levels = f.count(1..=MAX_TOPIC_LEVELS)? as usize;
    }
    if let Some(f) = top.take("max-subscriptions-per-client") {
        limits.max_subscriptions_per_client = f.limit()?;
    }
    if let Some(f) = top.take("max-subscription-bytes-per-client") {
        limits.max_subscription_bytes_per_client = f.limit()?;
    }
    if let Some(f) = top.take("max-retained-messages") {
        limits.max_retained_messages = f.limit()?;
    }
    if let Some(f) = top.take("max-retained-bytes") {
        limits.max_retained_bytes = f.limit()?;
    }
    if let Some(f) = top.take("max-persistent-sessions") {
        limits.max_persistent_sessions = f.limit()?;
    }
    if let Some(f) = top.take("persistent-client-expiration") {
        let expiry = f.seconds()?;
        limits.persistent_client_expiration = (!expiry.is_zero()).then_some(expiry);
    }
    if let Some(f) = top.take("max-inbox-bytes") {
        limits.max_inbox_bytes = f.count(1024..=u64::MAX)?.try_into().unwrap_or(usize::MAX);
    }
    if let Some(f) = top.take("max-client-id-length") {
        limits.max_client_id_length = f.count(23..=65_535)? as usize;
    }
    if let Some(f) = top.take("max-username-length") {
        limits.max_username_length = f.count(1..=65_535)? as usize;
    }
    if let Some(f) = top.take("max-password-length") {
        limits.max_password_length = f.count(1..=65_535)? as usize;
    }
    if let Some(f) = top.take("max-connections-per-address") {
        limits.max_connections_per_address = f.limit()?;
    }

    config.auth = read_auth(top.section("auth", warnings)?, warnings)?;
    check_basic_auth(&config, &basic_auth_paths)?;
    config.topic_check = read_topic_check(top.section("topic-check", warnings)?, warnings)?;

    if let Some(f) = top.take("sys_interval") {
        config.sys.interval = f.seconds()?;
    }
    if let Some(f) = top.take("sys-amqtt-compat") {
        config.sys.amqtt_compat = f.flag()?;
    }

    if let Some(f) = top.take("persistence") {
        config.persistence = read_persistence(f.section(warnings)?, warnings)?;
    }

    if let Some(f) = top.take("bridges") {
        config.bridges = super::bridge::read_bridges(f, warnings)?;
    }

    if let Some(f) = top.take("plugins") {
        warn_amqtt_plugins(f, warnings);
    }
    top.finish(warnings);
    Ok(config)
}

/// The `listeners:` mapping. Every named listener starts from the `default`
/// section's values; `default` is itself a listener when it has a `bind`.
fn read_listeners(
    field: Field,
    basic_auth_paths: &mut Vec<Vec<Step>>,
    warnings: &mut Warnings,
) -> Result<Vec<ListenerConfig>, Problem> {
    let listeners_path = field.path.clone();
    let section = field.section(warnings)?;
    let default = match section.get("default") {
        // Its own warnings come when it is read as a listener below.
        Some(f) => f.section(&mut Warnings::default())?,
        None => Section::new(Vec::new(), Node::Null, warnings)?,
    };

    let mut listeners = Vec::new();
    let mut bound: HashMap<SocketAddr, String> = HashMap::new();
    for (name, field) in section.drain() {
        let inherited = (name != "default").then_some(&default);
        let bind_path = {
            let mut p = field.path.clone();
            p.push(Step::Key("bind".into(), 0));
            p
        };
        let basic_auth_path = {
            let mut p = field.path.clone();
            p.push(Step::Key("basic-auth".into(), 0));
            p
        };
        let Some(listener) = read_listener(name, field.section(warnings)?, inherited, warnings)?
        else {
            continue;
        };
        if let ListenerKind::Http { basic_auth: true } = listener.kind {
            basic_auth_paths.push(basic_auth_path);
        }
        if listener.bind.port() != 0 {
            if let Some(other) = bound.insert(listener.bind, listener.name.clone()) {
                return Err(Problem {
                    path: bind_path,
                    message: format!(
                        "{} is already the address of listener {other:?}",
                        listener.bind
                    ),
                });
            }
        }
        listeners.push(listener);
    }
    if listeners.is_empty() {
        return Err(Problem {
            path: listeners_path,
            message: "no listener has a bind address, so the broker would listen nowhere; \
                      add one such as `bind: 127.0.0.1:1883`"
                .to_owned(),
        });
    }
    Ok(listeners)
}

/// One listener; `None` when it has no `bind` (hbmqtt does not start those either).
fn read_listener(
    name: String,
    mut own: Section,
    inherited: Option<&Section>,
    warnings: &mut Warnings,
) -> Result<Option<ListenerConfig>, Problem> {
    // Certificate files written on a listener whose ssl is off are probably a
    // forgotten `ssl: on`; remember them before they are taken.
    let own_tls_files: Vec<Field> = ["certfile", "keyfile"]
        .iter()
        .filter_map(|key| own.get(key))
        .collect();
    // A listener's own value, else the one in `default`. The own value of the other
    // spelling of `max-connections` should win over the inherited one, so look in
    // the listener first for both.
    let own_max = own
        .take("max-connections")
        .or_else(|| own.take("max_connections"));
    let mut pick = |key: &str| own.take(key).or_else(|| inherited.and_then(|d| d.get(key)));

    let bind = pick("bind").map(|f| parse_bind(&f)).transpose()?;
    // The documents say `max-connections`; hbmqtt's code reads `max_connections`.
    let max_connections = match own_max
        .or_else(|| pick("max-connections"))
        .or_else(|| pick("max_connections"))
    {
        // 0 means "no limit" to hbmqtt and amqtt.
        Some(f) => Some(match f.count(0..=u32::MAX as u64)? {
            0 => usize::MAX,
            n => n as usize,
        }),
        None => None,
    };
    let kind_field = pick("type");
    let ssl = pick("ssl")
        .map(|f| f.flag().map(|on| (on, f)))
        .transpose()?;
    let certfile = pick("certfile").map(|f| f.file()).transpose()?;
    let keyfile = pick("keyfile").map(|f| f.file()).transpose()?;
    let cafile = pick("cafile").map(|f| f.file()).transpose()?;
    let ws_path = pick("path");
    let basic_auth = pick("basic-auth");

    let kind = match &kind_field {
        None => ListenerKind::Tcp,
        Some(f) => match f.text()?.to_ascii_lowercase().as_str() {
            "tcp" => ListenerKind::Tcp,
            "ws" => ListenerKind::WebSocket {
                path: match &ws_path {
                    Some(p) => {
                        let path = p.text()?;
                        if !path.starts_with('/') {
                            return Err(
                                p.problem(format!("an HTTP path starts with '/', found {path:?}"))
                            );
                        }
                        Some(path)
                    }
                    None => None,
                },
            },
            "http" => ListenerKind::Http {
                basic_auth: basic_auth
                    .as_ref()
                    .map(Field::flag)
                    .transpose()?
                    .unwrap_or(false),
            },
            _ => return Err(f.expected("tcp, ws or http")),
        },
    };
    let max_connections = max_connections.unwrap_or(match kind {
        ListenerKind::Http { .. } => ListenerConfig::DEFAULT_MAX_HTTP_CONNECTIONS,
        _ => Limits::DEFAULT_MAX_CONNECTIONS,
    });
    for key in ["capath", "cadata"] {
        own.not_supported(
            key,
            warnings,
            "not supported: put the CA certificates in one PEM file named by `cafile` (ignored)",
        );
    }
    let path = own.path.clone();
    own.finish(warnings);

    // Without a bind this is not a listener: either `default`, a set of values for
    // the others to inherit (its `ssl: on` may rely on each listener naming its own
    // files), or a listener that will not start. The rules about combinations of
    // values apply only to listeners that start.
    let Some(bind) = bind else {
        if name != "default" {
            warnings.add(
                &path,
                WarningKind::Suspicious,
                "no `bind` here or under listeners.default, so this listener is not started",
            );
        }
        return Ok(None);
    };

    if let (ListenerKind::Tcp | ListenerKind::Http { .. }, Some(p)) = (&kind, &ws_path) {
        warnings.add(
            &p.path,
            WarningKind::Suspicious,
            "`path` applies only to listeners of `type: ws`; ignored",
        );
    }
    if let (ListenerKind::Tcp | ListenerKind::WebSocket { .. }, Some(f)) = (&kind, &basic_auth) {
        warnings.add(
            &f.path,
            WarningKind::Suspicious,
            "`basic-auth` applies only to listeners of `type: http` (MQTT clients log in \
             with CONNECT); ignored",
        );
    }
    let tls = match ssl {
        Some((true, ssl_field)) => {
            let missing = |what: &str| {
                ssl_field.problem(format!(
                    "ssl is on but no {what} is given (here or under listeners.default)"
                ))
            };
            Some(TlsConfig {
                certfile: certfile.ok_or_else(|| missing("certfile"))?,
                keyfile: keyfile.ok_or_else(|| missing("keyfile"))?,
                cafile,
            })
        }
        _ => {
            for file in &own_tls_files {
                warnings.add(
                    &file.path,
                    WarningKind::Suspicious,
                    "ssl is off for this listener, so this file is not used",
                );
            }
            None
        }
    };
    Ok(Some(ListenerConfig {
        name,
        bind,
        kind,
        tls,
        max_connections,
    }))
}

/// `host:port` as hbmqtt writes it: `0.0.0.0:1883`, `[::]:1883`, `localhost:1883`,
/// or `:1883` for every IPv4 interface.
fn parse_bind(field: &Field) -> Result<SocketAddr, Problem> {
    const FORM: &str = "an address and port such as 0.0.0.0:1883, [::]:1883 or :1883";
    let Node::Str(text) = &field.node else {
        return Err(field.expected(FORM));
    };
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(field.expected(FORM));
    };
    let port: u16 = match port.parse::<u64>() {
        Ok(p) if p <= u16::MAX as u64 => p as u16,
        Ok(p) => return Err(field.problem(format!("port {p} is out of range (0 to 65535)"))),
        Err(_) => return Err(field.problem(format!("port {port:?} is not a number"))),
    };
    let ip = match host {
        "" => Ipv4Addr::UNSPECIFIED.into(),
        "localhost" => Ipv4Addr::LOCALHOST.into(),
        _ => {
            if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
                v6.parse::<Ipv6Addr>()
                    .map_err(|_| field.problem(format!("{v6:?} is not an IPv6 address")))?
                    .into()
            } else if host.contains(':') {
                return Err(field.problem(format!(
                    "an IPv6 address goes in brackets, as in [{host}]:{port}"
                )));
            } else {
                host.parse::<Ipv4Addr>()
                    .map_err(|_| {
                        field.problem(format!(
                            "{host:?} is not an IP address (names other than localhost \
                             are not looked up; write the address)"
                        ))
                    })?
                    .into()
            }
        }
    };
    Ok(SocketAddr::new(ip, port))
}

/// An HTTP listener with `basic-auth: on` checks users against the password file,
/// so there must be one.
fn check_basic_auth(config: &BrokerConfig, paths: &[Vec<Step>]) -> Result<(), Problem> {
    match (paths.first(), &config.auth.password_file) {
        (Some(path), None) => Err(Problem {
            path: path.clone(),
            message: "basic-auth is on but auth.password-file is not set: HTTP users are \
                      checked against the password file"
                .to_owned(),
        }),
        _ => Ok(()),
    }
}

fn read_auth(mut auth: Section, warnings: &mut Warnings) -> Result<AuthConfig, Problem> {
    let mut config = AuthConfig::default();
    if let Some(f) = auth.take("allow-anonymous") {
        config.allow_anonymous = Some(f.flag()?);
    }
    if let Some(f) = auth.take("password-file") {
        config.password_file = Some(f.file()?);
    }
    auth.not_supported("plugins", warnings, NO_PLUGINS);
    auth.finish(warnings);
    Ok(config)
}

fn read_topic_check(
    mut check: Section,
    warnings: &mut Warnings,
) -> Result<TopicCheckConfig, Problem> {
    let mut config = TopicCheckConfig::default();
    if let Some(f) = check.take("enabled") {
        config.enabled = f.flag()?;
    }
    if let Some(f) = check.take("acl") {
        config.acl = read_acl(f, warnings)?;
    }
    if let Some(f) = check.take("publish-acl") {
        config.publish_acl = Some(read_acl(f, warnings)?);
    }
    if let Some(f) = check.take("acl-file") {
        config.acl_file = Some(f.file()?);
    }
    check.not_supported("plugins", warnings, NO_PLUGINS);
    check.finish(warnings);
    Ok(config)
}

/// `user: [filter, ...]`, every filter checked.
fn read_acl(
    field: Field,
    warnings: &mut Warnings,
) -> Result<BTreeMap<String, Vec<String>>, Problem> {
    let mut acl = BTreeMap::new();
    for (user, filters) in field.section(warnings)?.drain() {
        let mut allowed = Vec::new();
        for item in filters.list()? {
            let filter = item.text()?;
            TopicFilter::new(filter.as_str())
                .map_err(|e| item.problem(format!("{filter:?} is not a topic filter: {e}")))?;
            allowed.push(filter);
        }
        acl.insert(user, allowed);
    }
    Ok(acl)
}

fn read_persistence(
    mut section: Section,
    warnings: &mut Warnings,
) -> Result<PersistenceConfig, Problem> {
    let mut config = PersistenceConfig::default();
    let enabled = section.take("enabled");
    if let Some(f) = &enabled {
        config.enabled = f.flag()?;
    }
    if let Some(f) = section.take("path") {
        config.path = Some(f.file()?);
    }
    if let (true, None, Some(f)) = (config.enabled, &config.path, &enabled) {
        return Err(f.problem("persistence is enabled but no `path` says where to keep it"));
    }
    section.finish(warnings);
    Ok(config)
}
