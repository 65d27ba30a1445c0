//! Reading broker settings files: the hbmqtt / amqtt layout, defaults, inheritance
//! from the `default` listener, and the exact wording of every error and warning.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use wren::config::{
    BrokerConfig, ConfigError, ConfigWarning, Limits, ListenerConfig, ListenerKind, Loaded,
    WarningKind,
};
use wren::protocol::{QoS, ReasonCode};

fn load(text: &str) -> Loaded<BrokerConfig> {
    match BrokerConfig::load_yaml_str(text, "broker.yaml") {
        Ok(loaded) => loaded,
        Err(error) => panic!("expected the settings to load, got: {error}"),
    }
}

fn error(text: &str) -> ConfigError {
    match BrokerConfig::from_yaml_str(text, "broker.yaml") {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(error) => error,
    }
}

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("test address")
}

fn warnings_of(loaded: &Loaded<BrokerConfig>) -> Vec<String> {
    loaded
        .warnings
        .iter()
        .map(ConfigWarning::to_string)
        .collect()
}

/// amqtt's documented example (duplicate `capath` included: PyYAML keeps the last).
const AMQTT_STYLE: &str = "\
listeners:
    default:
        max-connections: 50000
        type: tcp
    my-tcp-1:
        bind: 127.0.0.1:1883
    my-tcp-2:
        bind: 1.2.3.4:1884
        max-connections: 1000
    my-tcp-ssl-1:
        bind: 127.0.0.1:8885
        ssl: on
        cafile: /some/cafile
        capath: /some/folder
        capath: certificate data
        certfile: /some/certfile
        keyfile: /some/key
    my-ws-1:
        bind: 0.0.0.0:8080
        type: ws
timeout-disconnect-delay: 2
sys_interval: 20
auth:
    plugins: ['auth.anonymous']
    allow-anonymous: false
    password-file: /some/passwd_file
topic-check:
    enabled: true
    plugins: ['topic_acl']
    acl:
        username1: ['repositories/+/master', 'calendar/#', 'data/memes']
        anonymous: []
";

#[test]
fn an_amqtt_style_file_is_read_in_full() {
    let loaded = load(AMQTT_STYLE);
    let config = &loaded.config;

    let names: Vec<&str> = config.listeners.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["my-tcp-1", "my-tcp-2", "my-tcp-ssl-1", "my-ws-1"]);

    let tcp1 = &config.listeners[0];
    assert_eq!(tcp1.bind, addr("127.0.0.1:1883"));
    assert_eq!(tcp1.kind, ListenerKind::Tcp);
    assert_eq!(tcp1.max_connections, 50_000, "inherited from default");
    assert_eq!(tcp1.tls, None);

    assert_eq!(config.listeners[1].max_connections, 1000, "own value wins");

    let tls = config.listeners[2].tls.as_ref().expect("ssl: on gives TLS");
    assert_eq!(tls.certfile, PathBuf::from("/some/certfile"));
    assert_eq!(tls.keyfile, PathBuf::from("/some/key"));
    assert_eq!(tls.cafile, Some(PathBuf::from("/some/cafile")));

    assert_eq!(
        config.listeners[3].kind,
        ListenerKind::WebSocket { path: None }
    );
    assert_eq!(config.listeners[3].bind, addr("0.0.0.0:8080"));

    assert_eq!(
        config.limits.timeout_disconnect_delay,
        Duration::from_secs(2)
    );
    assert_eq!(config.sys.interval, Duration::from_secs(20));
    assert_eq!(config.auth.allow_anonymous, Some(false));
    assert_eq!(
        config.auth.password_file,
        Some(PathBuf::from("/some/passwd_file"))
    );
    assert!(config.topic_check.enabled);
    assert_eq!(
        config.topic_check.acl["username1"],
        ["repositories/+/master", "calendar/#", "data/memes"]
    );
    assert!(config.topic_check.acl["anonymous"].is_empty());

    let kinds: Vec<(WarningKind, &str)> = loaded
        .warnings
        .iter()
        .map(|w| (w.kind, w.key.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (WarningKind::DuplicateKey, "listeners.my-tcp-ssl-1.capath"),
            (WarningKind::NotSupported, "listeners.my-tcp-ssl-1.capath"),
            (WarningKind::NotSupported, "auth.plugins"),
            (WarningKind::NotSupported, "topic-check.plugins"),
        ]
    );
    assert_eq!(
        warnings_of(&loaded)[0],
        "broker.yaml:15: listeners.my-tcp-ssl-1.capath: given more than once; the last value is used"
    );
}

#[test]
fn amqtt_default_broker_file_binds_the_default_section_itself() {
    let loaded = load(
        "---\nlisteners:\n  default:\n    type: tcp\n    bind: 0.0.0.0:1883\n\
         sys_interval: 20\nauth:\n  allow-anonymous: true\nplugins:\n  - auth_file\n  \
         - auth_anonymous\ntopic-check:\n  enabled: False\n",
    );
    let config = loaded.config;
    assert_eq!(config.listeners.len(), 1);
    assert_eq!(config.listeners[0].name, "default");
    assert_eq!(config.listeners[0].bind, addr("0.0.0.0:1883"));
    assert!(!config.topic_check.enabled);
    let keys: Vec<&str> = loaded.warnings.iter().map(|w| w.key.as_str()).collect();
    assert_eq!(keys, ["plugins[0]", "plugins[1]"]);
    assert!(loaded
        .warnings
        .iter()
        .all(|w| w.kind == WarningKind::NotSupported));
    assert!(loaded.warnings[0]
        .message
        .starts_with("auth_file is not loaded: wren-mqtt authenticates as `auth:` says"));
}

#[test]
fn amqtt_plugins_are_not_loaded_and_each_says_where_its_job_is_done() {
    let loaded = load(
        "plugins:
  amqtt.plugins.authentication.AnonymousAuthPlugin:
    allow_anonymous: false
  amqtt.plugins.topic_checking.TopicAccessControlListPlugin:
    acl:
      alice: ['a/#']
  amqtt.plugins.logging_amqtt.PacketLoggerPlugin:
",
    );
    assert_eq!(
        warnings_of(&loaded),
        [
            "broker.yaml:2: plugins.amqtt.plugins.authentication.AnonymousAuthPlugin: \
             amqtt.plugins.authentication.AnonymousAuthPlugin is not loaded: wren-mqtt \
             authenticates as `auth:` says (`allow-anonymous`, `password-file`)",
            "broker.yaml:4: plugins.amqtt.plugins.topic_checking.TopicAccessControlListPlugin: \
             amqtt.plugins.topic_checking.TopicAccessControlListPlugin is not loaded, so it \
             restricts no topic: wren-mqtt checks topics as `topic-check:` says (`enabled`, \
             `acl`, `publish-acl`, `acl-file`)",
            "broker.yaml:7: plugins.amqtt.plugins.logging_amqtt.PacketLoggerPlugin: \
             amqtt.plugins.logging_amqtt.PacketLoggerPlugin is not loaded: wren-mqtt has no plugins",
        ]
    );
    // The list form of amqtt's documents works the same way.
    let loaded = load("plugins:\n  - amqtt.plugins.sys.broker.BrokerSysPlugin:\n      sys_interval: 5\n  - auth_file\n");
    let keys: Vec<&str> = loaded.warnings.iter().map(|w| w.key.as_str()).collect();
    assert_eq!(keys, ["plugins[0]", "plugins[1]"]);
    assert!(loaded.warnings[0]
        .message
        .ends_with("$SYS topics are set with `sys_interval`"));
    assert!(loaded.warnings[1]
        .message
        .starts_with("auth_file is not loaded"));
}

#[test]
fn no_file_and_an_empty_file_mean_local_only_mode() {
    let config = BrokerConfig::default();
    let binds: Vec<SocketAddr> = config.listeners.iter().map(|l| l.bind).collect();
    assert_eq!(binds, [addr("127.0.0.1:1883"), addr("[::1]:1883")]);
    // Local-only listeners let anonymous clients in; network ones would not.
    assert_eq!(config.auth.allow_anonymous, None);
    assert!(config
        .listeners
        .iter()
        .all(|l| config.auth.allows_anonymous_on(&l.bind)));
    assert!(config.listeners.iter().all(|l| l.tls.is_none()));

    assert_eq!(load("").config, BrokerConfig::default());
    assert_eq!(load("# nothing\n").config, BrokerConfig::default());
    // Settings without `listeners` keep the local-only listeners.
    let config = load("max-keepalive: 60\n").config;
    assert_eq!(config.listeners, BrokerConfig::default().listeners);
    assert_eq!(config.limits.max_keep_alive, 60);
}

#[test]
fn unset_values_take_their_defaults() {
    let config = load("listeners:\n  only:\n    bind: 127.0.0.1:0\n").config;
    let listener = &config.listeners[0];
    assert_eq!(listener.kind, ListenerKind::Tcp);
    assert_eq!(listener.max_connections, Limits::DEFAULT_MAX_CONNECTIONS);
    assert_eq!(config.limits, Limits::default());
    assert_eq!(config.sys.interval, Duration::from_secs(10));
    assert!(!config.sys.amqtt_compat);
    assert!(!config.persistence.enabled);
    assert_eq!(config.auth.allow_anonymous, None);
    assert!(!config.topic_check.enabled);
}

#[test]
fn named_listeners_inherit_every_default_value_and_may_override_it() {
    let config = load(
        "listeners:
  default:
    type: ws
    path: /ws
    max-connections: 7
    ssl: on
    certfile: c.pem
    keyfile: k.pem
  a:
    bind: 127.0.0.1:9001
  b:
    bind: 127.0.0.1:9002
    type: tcp
    ssl: off
    max-connections: 0
",
    )
    .config;
    let a = &config.listeners[0];
    assert_eq!(
        a.kind,
        ListenerKind::WebSocket {
            path: Some("/ws".into())
        }
    );
    assert_eq!(a.max_connections, 7);
    let tls = a.tls.as_ref().expect("inherited ssl");
    assert_eq!(tls.certfile, PathBuf::from("c.pem"));

    let b = &config.listeners[1];
    assert_eq!(b.kind, ListenerKind::Tcp);
    assert!(b.tls.is_none());
    assert_eq!(
        b.max_connections,
        usize::MAX,
        "0 means no limit, as in hbmqtt"
    );
}

#[test]
fn max_connections_is_also_read_as_hbmqtts_code_spells_it() {
    let loaded = load(
        "listeners:\n  default:\n    max_connections: 5\n  a:\n    bind: 127.0.0.1:0\n  \
         b:\n    bind: 127.0.0.1:0\n    max_connections: 6\n",
    );
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let limits: Vec<usize> = loaded
        .config
        .listeners
        .iter()
        .map(|l| l.max_connections)
        .collect();
    assert_eq!(limits, [5, 6]);
}

#[test]
fn the_default_section_may_turn_ssl_on_for_listeners_that_name_their_files() {
    let loaded = load(
        "listeners:
  default:
    ssl: on
    certfile: shared.pem
  a:
    bind: 127.0.0.1:8883
    keyfile: a.key
  b:
    bind: 127.0.0.1:8884
    ssl: off
",
    );
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let a = loaded.config.listeners[0].tls.as_ref().expect("a has TLS");
    assert_eq!(a.certfile, PathBuf::from("shared.pem"));
    assert_eq!(a.keyfile, PathBuf::from("a.key"));
    assert!(loaded.config.listeners[1].tls.is_none());
}

#[test]
fn ssl_accepts_yaml_booleans_and_hbmqtt_words() {
    for word in ["on", "ON", "true", "yes", "\"on\""] {
        let text =
            format!("listeners:\n  a:\n    bind: 127.0.0.1:0\n    ssl: {word}\n    certfile: c\n    keyfile: k\n");
        assert!(load(&text).config.listeners[0].tls.is_some(), "ssl: {word}");
    }
    for word in ["off", "false", "no", "\"off\""] {
        let text = format!("listeners:\n  a:\n    bind: 127.0.0.1:0\n    ssl: {word}\n");
        assert!(load(&text).config.listeners[0].tls.is_none(), "ssl: {word}");
    }
}

#[test]
fn every_bind_form_hbmqtt_users_write_is_understood() {
    for (bind, expected) in [
        ("0.0.0.0:1883", "0.0.0.0:1883"),
        (":1883", "0.0.0.0:1883"),
        ("[::]:1883", "[::]:1883"),
        ("[::1]:1884", "[::1]:1884"),
        ("localhost:1885", "127.0.0.1:1885"),
        ("127.0.0.1:0", "127.0.0.1:0"),
    ] {
        let text = format!("listeners:\n  l:\n    bind: '{bind}'\n");
        assert_eq!(
            load(&text).config.listeners[0].bind,
            addr(expected),
            "{bind}"
        );
    }
}

#[test]
fn yaml_11_booleans_are_read_where_a_yes_or_no_is_expected() {
    for (word, expected) in [
        ("on", true),
        ("On", true),
        ("yes", true),
        ("true", true),
        ("off", false),
        ("OFF", false),
        ("no", false),
        ("false", false),
    ] {
        let text = format!("auth:\n  allow-anonymous: {word}\n");
        assert_eq!(
            load(&text).config.auth.allow_anonymous,
            Some(expected),
            "{word}"
        );
    }
}

#[test]
fn our_own_keys_are_read() {
    let config = load(
        "max-packet-size: 2048
max-inflight-messages: 5
max-queued-messages: 0
max-keepalive: 120
connect-timeout: 2.5
sys-amqtt-compat: yes
sys_interval: 0
topic-check:
  acl-file: /etc/wren/acl
  publish-acl:
    alice: ['a/#']
persistence:
  enabled: true
  path: /var/lib/wren
listeners:
  ws:
    bind: 127.0.0.1:0
    type: ws
    path: /mqtt-ws
",
    )
    .config;
    assert_eq!(config.limits.max_packet_size, 2048);
    assert_eq!(config.limits.max_inflight_messages, 5);
    assert_eq!(config.limits.max_queued_messages, 0);
    assert_eq!(config.limits.max_keep_alive, 120);
    assert_eq!(config.limits.connect_timeout, Duration::from_millis(2500));
    assert!(config.sys.amqtt_compat);
    assert_eq!(config.sys.interval, Duration::ZERO);
    assert_eq!(
        config.topic_check.acl_file,
        Some(PathBuf::from("/etc/wren/acl"))
    );
    assert_eq!(
        config
            .topic_check
            .publish_acl
            .as_ref()
            .map(|acl| &acl["alice"]),
        Some(&vec!["a/#".to_owned()])
    );
    assert!(config.persistence.enabled);
    assert_eq!(
        config.persistence.path,
        Some(PathBuf::from("/var/lib/wren"))
    );
    assert_eq!(
        config.listeners[0].kind,
        ListenerKind::WebSocket {
            path: Some("/mqtt-ws".into())
        }
    );
}

#[test]
fn the_mqtt_5_keys_are_read() {
    let config = load(
        "receive-maximum: 10
topic-alias-maximum: 2
outgoing-topic-aliases: true
max-qos: 1
retain-available: false
wildcard-subscription-available: no
subscription-identifier-available: false
shared-subscription-available: false
denied-subscription-code: 0x80
",
    )
    .config;
    let limits = &config.limits;
    assert_eq!(limits.receive_maximum, 10);
    assert_eq!(limits.topic_alias_maximum, 2);
    assert!(limits.outgoing_topic_aliases);
    assert_eq!(limits.max_qos, QoS::AtLeastOnce);
    assert!(!limits.retain_available);
    assert!(!limits.wildcard_subscriptions);
    assert!(!limits.subscription_identifiers);
    assert!(!limits.shared_subscriptions);
    assert_eq!(
        limits.denied_subscription_code,
        ReasonCode::UNSPECIFIED_ERROR
    );

    let defaults = Limits::default();
    assert_eq!(
        (defaults.receive_maximum, defaults.topic_alias_maximum),
        (20, 10)
    );
    assert_eq!(
        defaults.denied_subscription_code,
        ReasonCode::NOT_AUTHORIZED
    );
}

#[test]
fn mqtt_5_values_out_of_range_name_their_key() {
    for (text, key) in [
        ("receive-maximum: 0\n", "receive-maximum"),
        ("max-qos: 3\n", "max-qos"),
        (
            "denied-subscription-code: 0x81\n",
            "denied-subscription-code",
        ),
        ("topic-alias-maximum: 70000\n", "topic-alias-maximum"),
    ] {
        let message = error(text).to_string();
        assert!(message.contains(key), "{text}: {message}");
    }
}

#[test]
fn unknown_keys_are_warnings_naming_the_key_path_and_line() {
    let loaded = load(
        "listeners:
  my-tcp:
    bind: 127.0.0.1:1883
    bnd: 127.0.0.1:1884
auth:
  allow-anonymus: true
colour: blue
persistence:
  enabeld: true
",
    );
    assert_eq!(
        warnings_of(&loaded),
        [
            "broker.yaml:4: listeners.my-tcp.bnd: unknown key, ignored",
            "broker.yaml:6: auth.allow-anonymus: unknown key, ignored",
            "broker.yaml:7: colour: unknown key, ignored",
            "broker.yaml:9: persistence.enabeld: unknown key, ignored",
        ]
    );
    assert!(loaded
        .warnings
        .iter()
        .all(|w| w.kind == WarningKind::UnknownKey && w.origin == "broker.yaml"));
}

#[test]
fn suspicious_but_valid_settings_are_warnings() {
    let loaded = load(
        "listeners:
  plain:
    bind: 127.0.0.1:1883
    certfile: c.pem
    path: /mqtt
  unbound:
    type: tcp
",
    );
    assert_eq!(loaded.config.listeners.len(), 1);
    assert_eq!(
        warnings_of(&loaded),
        [
            "broker.yaml:4: listeners.plain.certfile: ssl is off for this listener, so this file is not used",
            "broker.yaml:5: listeners.plain.path: `path` applies only to listeners of `type: ws`; ignored",
            "broker.yaml:6: listeners.unbound: no `bind` here or under listeners.default, so this listener is not started",
        ]
    );
}

/// Each bad file and the exact message it gives.
#[test]
fn every_error_names_file_line_and_key() {
    let cases: &[(&str, &str)] = &[
        (
            "listeners:\n  default:\n    type: tcp\n    max-connections: many\n",
            r#"broker.yaml:4: listeners.default.max-connections: expected a number, found "many""#,
        ),
        (
            "listeners:\n  a:\n    bind: 127.0.0.1:1883\n    max-connections: -1\n",
            "broker.yaml:4: listeners.a.max-connections: must not be negative, found -1",
        ),
        (
            "listeners:\n  a:\n    bind: 127.0.0.1:1883\n    max_connections: x\n",
            r#"broker.yaml:4: listeners.a.max_connections: expected a number, found "x""#,
        ),
        (
            "listeners:\n  a:\n    bind: 127.0.0.1:70000\n",
            "broker.yaml:3: listeners.a.bind: port 70000 is out of range (0 to 65535)",
        ),
        (
            "listeners:\n  a:\n    bind: 127.0.0.1:http\n",
            r#"broker.yaml:3: listeners.a.bind: port "http" is not a number"#,
        ),
        (
            "listeners:\n  a:\n    bind: example.com:1883\n",
            r#"broker.yaml:3: listeners.a.bind: "example.com" is not an IP address (names other than localhost are not looked up; write the address)"#,
        ),
        (
            "listeners:\n  a:\n    bind: 1883\n",
            "broker.yaml:3: listeners.a.bind: expected an address and port such as 0.0.0.0:1883, [::]:1883 or :1883, found 1883",
        ),
        (
            "listeners:\n  a:\n    bind: '::1:1883'\n",
            "broker.yaml:3: listeners.a.bind: an IPv6 address goes in brackets, as in [::1]:1883",
        ),
        (
            "listeners:\n  a:\n    bind: '[::g]:1883'\n",
            r#"broker.yaml:3: listeners.a.bind: "::g" is not an IPv6 address"#,
        ),
        (
            "listeners:\n  a:\n    bind: 127.0.0.1:1883\n    type: udp\n",
            r#"broker.yaml:4: listeners.a.type: expected tcp, ws or http, found "udp""#,
        ),
        (
            "listeners:\n  a:\n    bind: 127.0.0.1:1883\n    ssl: maybe\n",
            r#"broker.yaml:4: listeners.a.ssl: expected on or off (or true/false, yes/no), found "maybe""#,
        ),
        (
            "listeners:\n  a:\n    bind: 127.0.0.1:1883\n    ssl: on\n    keyfile: k.pem\n",
            "broker.yaml:4: listeners.a.ssl: ssl is on but no certfile is given (here or under listeners.default)",
        ),
        (
            "listeners:\n  a:\n    bind: 127.0.0.1:1883\n    ssl: on\n    certfile: c.pem\n",
            "broker.yaml:4: listeners.a.ssl: ssl is on but no keyfile is given (here or under listeners.default)",
        ),
        (
            "listeners:\n  a:\n    bind: 127.0.0.1:1883\n    type: ws\n    path: mqtt\n",
            r#"broker.yaml:5: listeners.a.path: an HTTP path starts with '/', found "mqtt""#,
        ),
        (
            "listeners:\n  a:\n    bind: 127.0.0.1:1883\n  b:\n    bind: 127.0.0.1:1883\n",
            r#"broker.yaml:5: listeners.b.bind: 127.0.0.1:1883 is already the address of listener "a""#,
        ),
        (
            "listeners:\n  default:\n    type: tcp\n",
            "broker.yaml:1: listeners: no listener has a bind address, so the broker would listen nowhere; add one such as `bind: 127.0.0.1:1883`",
        ),
        (
            "listeners: [a, b]\n",
            "broker.yaml:1: listeners: expected a mapping of settings, found a list",
        ),
        (
            "listeners:\n  a: 127.0.0.1:1883\n",
            r#"broker.yaml:2: listeners.a: expected a mapping of settings, found "127.0.0.1:1883""#,
        ),
        (
            "timeout-disconnect-delay: -2\n",
            "broker.yaml:1: timeout-disconnect-delay: must not be negative, found -2",
        ),
        (
            "sys_interval: often\n",
            r#"broker.yaml:1: sys_interval: expected a number of seconds, found "often""#,
        ),
        (
            "max-packet-size: 1\n",
            "broker.yaml:1: max-packet-size: must be from 2 to 268435460, found 1",
        ),
        (
            "max-inflight-messages: 0\n",
            "broker.yaml:1: max-inflight-messages: must be from 1 to 65535, found 0",
        ),
        (
            "max-queued-messages: 1.5\n",
            "broker.yaml:1: max-queued-messages: expected a whole number, found 1.5",
        ),
        (
            "max-keepalive: 70000\n",
            "broker.yaml:1: max-keepalive: must be from 1 to 65535, found 70000",
        ),
        (
            "max-keepalive: 10\nmax-keepalive: ten\n",
            r#"broker.yaml:2: max-keepalive: expected a number, found "ten""#,
        ),
        (
            "connect-timeout: 0\n",
            "broker.yaml:1: connect-timeout: must be more than 0 seconds",
        ),
        (
            "auth:\n  allow-anonymous: perhaps\n",
            r#"broker.yaml:2: auth.allow-anonymous: expected on or off (or true/false, yes/no), found "perhaps""#,
        ),
        (
            "auth:\n  password-file: ''\n",
            "broker.yaml:2: auth.password-file: expected a file name, found an empty string",
        ),
        (
            "topic-check:\n  acl:\n    alice: ['ok/#', 'bad/#/x']\n",
            r#"broker.yaml:3: topic-check.acl.alice[1]: "bad/#/x" is not a topic filter: '#' must be the last character and fill its whole level [MQTT-4.7.1-2]"#,
        ),
        (
            "topic-check:\n  acl:\n    alice: 'a/#'\n",
            r#"broker.yaml:3: topic-check.acl.alice: expected a list, found "a/#""#,
        ),
        (
            "persistence:\n  enabled: true\n",
            "broker.yaml:2: persistence.enabled: persistence is enabled but no `path` says where to keep it",
        ),
        (
            "auth: yes\n",
            r#"broker.yaml:1: auth: expected a mapping of settings, found "yes""#,
        ),
        (
            "- just\n- a list\n",
            "broker.yaml: expected a mapping of settings, found a list",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(error(text).to_string(), *expected, "for:\n{text}");
    }
}

#[test]
fn an_error_in_an_inherited_value_points_at_the_default_section() {
    let error = error(
        "listeners:
  default:
    max-connections: lots
  a:
    bind: 127.0.0.1:1883
",
    );
    assert_eq!(error.key(), Some("listeners.default.max-connections"));
    assert_eq!(error.line(), Some(3));

    // A rule broken by the combination points at the listener's own key.
    let error = BrokerConfig::from_yaml_str(
        "listeners:\n  default:\n    ssl: on\n  a:\n    bind: 127.0.0.1:1883\n",
        "broker.yaml",
    )
    .unwrap_err();
    assert_eq!(error.key(), Some("listeners.default.ssl"));
    assert_eq!(error.line(), Some(3));
}

#[test]
fn yaml_syntax_errors_name_the_file_and_line() {
    let error = error("listeners:\n  a:\n    bind: [127.0.0.1:1883\n");
    assert!(matches!(error, ConfigError::Syntax { .. }), "{error:?}");
    assert_eq!(error.line(), Some(4));
    assert!(error.to_string().starts_with("broker.yaml:4: "), "{error}");
}

#[test]
fn files_are_read_and_named_in_messages() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("broker.yaml");
    std::fs::write(&path, "listeners:\n  a:\n    bind: 127.0.0.1:99999\n").expect("write");
    let error = BrokerConfig::from_yaml_file(&path).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{}:3: listeners.a.bind: port 99999 is out of range (0 to 65535)",
            path.display()
        )
    );

    let missing = dir.path().join("missing.yaml");
    let error = BrokerConfig::from_yaml_file(&missing).unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }), "{error:?}");
    assert!(error
        .to_string()
        .starts_with(&format!("{}: cannot read: ", missing.display())));
}

#[test]
fn the_sample_broker_file_loads_without_warnings() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/broker.yaml");
    let loaded = BrokerConfig::load_yaml_file(path).expect("examples/broker.yaml loads");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let names: Vec<&str> = loaded
        .config
        .listeners
        .iter()
        .map(|l| l.name.as_str())
        .collect();
    assert_eq!(names, ["local", "tls", "websocket", "dashboard"]);
    assert!(loaded.config.listeners[1].tls.is_some());
    assert_eq!(
        loaded.config.listeners[3].kind,
        ListenerKind::Http { basic_auth: false }
    );
}

#[test]
fn an_unquoted_ipv6_bind_gets_a_hint() {
    let error = error("listeners:\n  a:\n    bind: [::1]:1883\n");
    assert!(matches!(error, ConfigError::Syntax { .. }), "{error:?}");
    assert_eq!(error.line(), Some(3));
    assert!(
        error
            .to_string()
            .ends_with("(in YAML an IPv6 bind needs quotes: bind: '[::1]:1883')"),
        "{error}"
    );
}

#[test]
fn every_limit_against_hostile_clients_is_a_key_and_0_means_no_limit() {
    let config = load(
        "max-queued-bytes: 1000\npacket-timeout: 5\nmax-topic-levels: 8\n\
         max-subscriptions-per-client: 0\nmax-subscription-bytes-per-client: 4096\n\
         max-retained-messages: 10\n\
         max-retained-bytes: 2048\nmax-persistent-sessions: 3\n\
         persistent-client-expiration: 3600\nmax-inbox-bytes: 4096\n\
         max-client-id-length: 64\nmax-username-length: 32\nmax-password-length: 16\n\
         max-connections-per-address: 4\n",
    )
    .config;
    let limits = &config.limits;
    assert_eq!(limits.max_queued_bytes, 1000);
    assert_eq!(limits.packet_timeout, Duration::from_secs(5));
    assert_eq!(limits.max_topic_levels, 8);
    assert_eq!(limits.max_subscriptions_per_client, usize::MAX);
    assert_eq!(limits.max_subscription_bytes_per_client, 4096);
    assert_eq!(limits.max_retained_messages, 10);
    assert_eq!(limits.max_retained_bytes, 2048);
    assert_eq!(limits.max_persistent_sessions, 3);
    assert_eq!(
        limits.persistent_client_expiration,
        Some(Duration::from_secs(3600))
    );
    assert_eq!(limits.max_inbox_bytes, 4096);
    assert_eq!(limits.max_client_id_length, 64);
    assert_eq!(limits.max_username_length, 32);
    assert_eq!(limits.max_password_length, 16);
    assert_eq!(limits.max_connections_per_address, 4);

    let defaults = load("").config.limits;
    assert_eq!(defaults.max_topic_levels, 201);
    assert_eq!(defaults.persistent_client_expiration, None);
    assert_eq!(defaults.max_connections_per_address, usize::MAX);
}

#[test]
fn times_that_would_overflow_are_refused_with_file_line_and_key() {
    for key in [
        "connect-timeout",
        "packet-timeout",
        "timeout-disconnect-delay",
    ] {
        let text = format!("sys_interval: 10\n{key}: 1e300\n");
        let message = error(&text).to_string();
        assert!(
            message.starts_with(&format!("broker.yaml:2: {key}: must be at most")),
            "{message}"
        );
    }
    let message = error("persistent-client-expiration: 9223372036854775807\n").to_string();
    assert!(
        message.contains("persistent-client-expiration: must be at most"),
        "{message}"
    );
    let message = error("max-topic-levels: 0\n").to_string();
    assert!(
        message.contains("max-topic-levels: must be from 1"),
        "{message}"
    );
}

#[test]
fn http_listeners_are_read_with_their_own_connection_default() {
    let loaded = load(
        "listeners:\n  mqtt:\n    bind: 127.0.0.1:1883\n  dashboard:\n    bind: 127.0.0.1:8088\n    \
         type: http\n  secure-dashboard:\n    bind: 127.0.0.1:8443\n    type: HTTP\n    \
         basic-auth: on\n    ssl: on\n    certfile: cert.pem\n    keyfile: key.pem\n    \
         max-connections: 4\nauth:\n  password-file: passwd\n",
    );
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let [mqtt, plain, secure] = &loaded.config.listeners[..] else {
        panic!("three listeners expected");
    };
    assert_eq!(mqtt.kind, ListenerKind::Tcp);
    assert_eq!(plain.kind, ListenerKind::Http { basic_auth: false });
    assert_eq!(
        plain.max_connections,
        ListenerConfig::DEFAULT_MAX_HTTP_CONNECTIONS
    );
    assert_eq!(plain.tls, None);
    assert_eq!(secure.kind, ListenerKind::Http { basic_auth: true });
    assert_eq!(secure.max_connections, 4);
    assert!(secure.tls.is_some());
}

#[test]
fn http_listener_errors_and_warnings_name_the_file_and_key() {
    assert_eq!(
        error(
            "listeners:\n  dashboard:\n    bind: 127.0.0.1:8088\n    type: http\n    \
             basic-auth: on\n"
        )
        .to_string(),
        "broker.yaml:5: listeners.dashboard.basic-auth: basic-auth is on but \
         auth.password-file is not set: HTTP users are checked against the password file"
    );
    assert_eq!(
        error(
            "listeners:\n  dashboard:\n    bind: 127.0.0.1:8088\n    type: http\n    \
             basic-auth: maybe\n"
        )
        .to_string(),
        r#"broker.yaml:5: listeners.dashboard.basic-auth: expected on or off (or true/false, yes/no), found "maybe""#
    );
    let loaded = load(
        "listeners:\n  mqtt:\n    bind: 127.0.0.1:1883\n    basic-auth: on\n  \
         dashboard:\n    bind: 127.0.0.1:8088\n    type: http\n    path: /dash\n",
    );
    assert_eq!(
        warnings_of(&loaded),
        [
            "broker.yaml:4: listeners.mqtt.basic-auth: `basic-auth` applies only to listeners \
             of `type: http` (MQTT clients log in with CONNECT); ignored",
            "broker.yaml:8: listeners.dashboard.path: `path` applies only to listeners of \
             `type: ws`; ignored",
        ]
    );
}
