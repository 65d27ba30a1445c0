//! The broker's HTTP listener (`type: http`): the JSON and Prometheus figures
//! follow what clients do, bad and slow HTTP clients get a clear status and hold
//! no thread for long, basic authentication keeps strangers out, and the
//! dashboard works in a real browser.
//!
//! Every broker listens on 127.0.0.1 port 0; every socket has a read timeout.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::raw::Raw;
use common::{wait_for_stats, wait_until, TIMEOUT};
use wren::auth::PasswordFile;
use wren::broker::{Broker, PasswordFileHook};
use wren::config::{BrokerConfig, ListenerConfig, TlsConfig};
use wren::protocol::QoS;

/// How long a test waits for any HTTP answer: longer than the broker gives a
/// slow client, so that a 408 arrives before this fires.
const HTTP_PATIENCE: Duration = Duration::from_secs(30);

/// A broker with an MQTT listener and an HTTP one, `$SYS` off.
fn start(adjust: impl FnOnce(&mut BrokerConfig)) -> (Broker, SocketAddr, SocketAddr) {
    let mut config = BrokerConfig::with_tcp_listener("127.0.0.1:0".parse().unwrap());
    config.listeners.push(ListenerConfig::http(
        "dashboard",
        "127.0.0.1:0".parse().unwrap(),
    ));
    config.sys.interval = Duration::ZERO;
    adjust(&mut config);
    let broker = Broker::start(config).expect("broker starts");
    let http = broker.http_addrs()[0];
    let mqtt = broker.local_addr();
    (broker, mqtt, http)
}

/// An HTTP answer, split.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` as it is and reads the answer to the end (the server closes).
fn exchange(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).expect("connect to the HTTP listener");
    stream.set_read_timeout(Some(HTTP_PATIENCE)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    stream.write_all(request).expect("send the request");
    read_answer(&mut stream)
}

fn read_answer(stream: &mut impl Read) -> Answer {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the answer");
    parse_answer(&raw)
}

fn parse_answer(raw: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("header with a colon");
            (n.to_string(), v.trim().to_string())
        })
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

fn get(addr: SocketAddr, path: &str) -> Answer {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
    )
}

fn get_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let answer = get(addr, path);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/json"));
    serde_json::from_str(&answer.body).expect("the body is JSON")
}

/// The value of the one sample of `name` with no labels.
fn sample(exposition: &str, name: &str) -> u64 {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {name} in\n{exposition}"))
        .parse()
        .unwrap()
}

#[test]
fn json_and_metrics_follow_connects_publishes_and_drops() {
    let (broker, mqtt, http) = start(|config| config.limits.max_queued_messages = 2);

    // A persistent session subscribes and goes away: its queue holds two
    // messages, and the other three of five are dropped.
    let mut sleeper = Raw::connect(mqtt, "sleeper", false, false);
    sleeper.subscribe("plant/#", QoS::AtLeastOnce);
    sleeper.disconnect();
    let mut publisher = Raw::connect(mqtt, "publisher", true, false);
    let _watcher = Raw::connect(mqtt, "watcher", true, false);
    for id in 1..=5 {
        publisher.publish1("plant/temperature", b"21.5", false, id);
    }
    wait_for_stats(&broker, "three drops and two clients", |s| {
        s.publish_dropped == 3 && s.connected_clients == 2 && s.queued_messages == 2
    });
    // The sleeper's socket leaves the listener's count when its thread is done.
    wait_until("two open MQTT connections", || {
        broker.metrics().listeners[0].connections == 2
    });

    let stats = get_json(http, "/api/stats");
    assert_eq!(stats["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(stats["connected_clients"], 2);
    assert_eq!(stats["disconnected_clients"], 1);
    assert_eq!(stats["publish_received"], 5);
    assert_eq!(stats["publish_dropped"], 3);
    assert_eq!(stats["queued_messages"], 2);
    assert_eq!(stats["subscriptions"], 1);
    let listeners = stats["listeners"].as_array().unwrap();
    assert_eq!(listeners.len(), 2);
    assert_eq!(listeners[0]["name"], "default");
    assert_eq!(listeners[0]["protocol"], "mqtt");
    assert_eq!(listeners[0]["address"], mqtt.to_string());
    assert_eq!(listeners[0]["connections"], 2);
    assert_eq!(listeners[1]["name"], "dashboard");
    assert_eq!(listeners[1]["protocol"], "http");
    // The request being answered is the one open connection.
    assert_eq!(listeners[1]["connections"], 1);

    let sys = get_json(http, "/api/sys");
    assert_eq!(sys["$SYS/broker/clients/connected"], "2");
    assert_eq!(sys["$SYS/broker/clients/disconnected"], "1");
    assert_eq!(sys["$SYS/broker/publish/messages/received"], "5");
    assert_eq!(sys["$SYS/broker/publish/messages/dropped"], "3");
    assert_eq!(sys["$SYS/broker/subscriptions/count"], "1");
    assert_eq!(
        sys["$SYS/broker/version"],
        format!("wren-mqtt version {}", env!("CARGO_PKG_VERSION"))
    );
    assert!(sys["$SYS/broker/uptime"]
        .as_str()
        .unwrap()
        .ends_with(" seconds"));

    let metrics = get(http, "/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = &metrics.body;
    assert_eq!(sample(text, "wren_clients_connected"), 2);
    assert_eq!(sample(text, "wren_clients_disconnected"), 1);
    assert_eq!(sample(text, "wren_publish_received_total"), 5);
    assert_eq!(sample(text, "wren_publish_dropped_total"), 3);
    assert_eq!(sample(text, "wren_queued_messages"), 2);
    assert!(
        text.contains(&format!(
            "wren_listener_connections{{listener=\"default\",protocol=\"mqtt\",address=\"{mqtt}\"}} 2\n"
        )),
        "{text}"
    );
    assert!(text.contains(&format!(
        "wren_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    )));

    // The typed snapshot says the same.
    let snapshot = broker.metrics();
    assert_eq!(snapshot.stats.publish_dropped, 3);
    assert_eq!(snapshot.listeners[0].connections, 2);
    assert_eq!(snapshot.listeners[1].address, http);
    assert_eq!(broker.local_addrs(), [mqtt, http]);
}

/// Checks one line of the Prometheus text format (0.0.4), returning the metric
/// name of a sample line.
fn check_exposition_line(line: &str) -> Result<Option<String>, String> {
    fn is_name(name: &str) -> bool {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    fn is_label_name(name: &str) -> bool {
        is_name(name) && !name.contains(':')
    }
    fn is_value(value: &str) -> bool {
        matches!(value, "NaN" | "+Inf" | "-Inf") || value.parse::<f64>().is_ok()
    }
    if let Some(rest) = line.strip_prefix("# ") {
        let mut parts = rest.splitn(3, ' ');
        let (Some(keyword), Some(name)) = (parts.next(), parts.next()) else {
            return Err("comment without a metric name".into());
        };
        if !is_name(name) {
            return Err(format!("bad metric name {name:?}"));
        }
        return match (keyword, parts.next()) {
            ("HELP", Some(help)) if !help.is_empty() => Ok(None),
            ("TYPE", Some("counter" | "gauge" | "histogram" | "summary" | "untyped")) => Ok(None),
            _ => Err("neither a HELP nor a TYPE line".into()),
        };
    }
    // name [ "{" label="value" { "," label="value" } "}" ] value [ timestamp ]
    let name_end = line.find(['{', ' ']).ok_or("sample without a value")?;
    let name = &line[..name_end];
    if !is_name(name) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    if let Some(labels) = rest.strip_prefix('{') {
        let mut chars = labels.char_indices().peekable();
        let end;
        'labels: loop {
            // A label name up to '='.
            let start = chars.peek().ok_or("unfinished labels")?.0;
            let mut eq = None;
            for (i, c) in chars.by_ref() {
                if c == '=' {
                    eq = Some(i);
                    break;
                }
            }
            let eq = eq.ok_or("label without '='")?;
            if !is_label_name(&labels[start..eq]) {
                return Err(format!("bad label name {:?}", &labels[start..eq]));
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err("label value not quoted".into());
            }
            // The value, with \\, \" and \n escapes.
            loop {
                match chars.next().ok_or("unterminated label value")?.1 {
                    '\\' => match chars.next().ok_or("dangling escape")?.1 {
                        '\\' | '"' | 'n' => {}
                        other => return Err(format!("bad escape \\{other}")),
                    },
                    '"' => break,
                    '\n' => return Err("raw line feed in a label value".into()),
                    _ => {}
                }
            }
            match chars.next().ok_or("unfinished labels")? {
                (_, ',') => continue 'labels,
                (i, '}') => {
                    end = i;
                    break 'labels;
                }
                (_, other) => return Err(format!("unexpected {other:?} after a label")),
            }
        }
        rest = &labels[end + 1..];
    }
    let rest = rest.strip_prefix(' ').ok_or("no space before the value")?;
    let mut fields = rest.split(' ');
    let value = fields.next().unwrap_or("");
    if !is_value(value) {
        return Err(format!("bad value {value:?}"));
    }
    if let Some(timestamp) = fields.next() {
        timestamp
            .parse::<i64>()
            .map_err(|_| format!("bad timestamp {timestamp:?}"))?;
    }
    if fields.next().is_some() {
        return Err("trailing fields".into());
    }
    Ok(Some(name.to_string()))
}

#[test]
fn the_prometheus_exposition_parses_line_by_line() {
    let (broker, mqtt, http) = start(|_| {});
    let _client = Raw::connect(mqtt, "counted", true, false);
    wait_for_stats(&broker, "one client", |s| s.connected_clients == 1);
    let answer = get(http, "/metrics");
    assert_eq!(answer.status, 200);
    let text = answer.body;
    assert!(text.ends_with('\n'), "the last line ends with a line feed");

    let mut typed: Vec<(String, String)> = Vec::new();
    let mut sampled = HashSet::new();
    for (number, line) in text.lines().enumerate() {
        match check_exposition_line(line) {
            Ok(None) => {
                if let Some(rest) = line.strip_prefix("# TYPE ") {
                    let (name, kind) = rest.split_once(' ').unwrap();
                    assert!(!typed.iter().any(|(n, _)| n == name), "{name} typed twice");
                    typed.push((name.to_string(), kind.to_string()));
                }
            }
            Ok(Some(name)) => {
                // Each sample follows the TYPE line of its family.
                let (family, kind) = typed
                    .last()
                    .unwrap_or_else(|| panic!("line {}: sample before any TYPE", number + 1));
                assert_eq!(&name, family, "line {}: {line}", number + 1);
                assert_eq!(
                    kind == "counter",
                    name.ends_with("_total"),
                    "line {}: counters and only counters end in _total: {line}",
                    number + 1
                );
                assert!(name.starts_with("wren_"));
                sampled.insert(name);
            }
            Err(why) => panic!("line {} does not parse ({why}): {line:?}", number + 1),
        }
    }
    for (name, _) in &typed {
        assert!(sampled.contains(name), "family {name} has no sample");
    }
    for expected in [
        "wren_clients_connected",
        "wren_clients_disconnected",
        "wren_clients_maximum",
        "wren_subscriptions",
        "wren_retained_messages",
        "wren_queued_messages",
        "wren_publish_dropped_total",
        "wren_received_bytes_total",
        "wren_sent_bytes_total",
        "wren_uptime_seconds",
        "wren_limit_reached_total",
        "wren_listener_connections",
    ] {
        assert!(sampled.contains(expected), "no {expected}");
    }
    assert_eq!(sample(&text, "wren_clients_connected"), 1);
}

#[test]
fn the_grammar_check_itself_refuses_bad_lines() {
    for bad in [
        "wren_x",
        "wren_x 1 2 3",
        "wren x 1",
        "wren_x{a=\"b} 1",
        "wren_x{a=b} 1",
        "wren_x{a=\"\\q\"} 1",
        "wren_x one",
        "# TYPE wren_x meter",
        "# HELP wren_x",
    ] {
        assert!(check_exposition_line(bad).is_err(), "{bad:?} passed");
    }
    assert!(check_exposition_line("wren_x{a=\"\\\"b\",c=\"\"} 1.5 17").is_ok());
}

#[test]
fn a_broker_with_http_listeners_only_does_not_start() {
    let mut config = BrokerConfig::with_tcp_listener("127.0.0.1:0".parse().unwrap());
    config.listeners = vec![ListenerConfig::http(
        "dashboard",
        "127.0.0.1:0".parse().unwrap(),
    )];
    let error = Broker::start(config).unwrap_err();
    assert!(
        error.to_string().contains("add an MQTT listener"),
        "{error}"
    );
}

#[test]
fn bad_requests_get_a_clear_status() {
    let (_broker, _mqtt, http) = start(|_| {});

    let unknown = get(http, "/nowhere");
    assert_eq!(unknown.status, 404);
    assert!(unknown.body.contains("/metrics"), "{unknown:?}");

    let post = exchange(
        http,
        b"POST /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));

    let mut huge = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Padding: ".to_vec();
    huge.resize(64 * 1024, b'a');
    huge.extend_from_slice(b"\r\n\r\n");
    // The server answers as soon as 8 KiB are in, and may close before the rest
    // is written: the answer counts, not the write.
    let mut stream = TcpStream::connect(http).unwrap();
    stream.set_read_timeout(Some(HTTP_PATIENCE)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    let _ = stream.write_all(&huge);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    assert_eq!(parse_answer(&raw).status, 431);

    assert_eq!(exchange(http, b"GET / HTTP/2.0\r\n\r\n").status, 505);
    assert_eq!(
        exchange(http, b"\x16\x03\x01\x02\x00\x01\r\n\r\n").status,
        400
    );
    assert_eq!(exchange(http, b"GET /\r\n\r\n").status, 400);

    let head = exchange(http, b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_ne!(head.header("content-length"), Some("0"));

    let health = get(http, "/healthz");
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
}

#[test]
fn silent_and_dribbling_clients_are_answered_408_and_let_go() {
    let (broker, _mqtt, http) = start(|_| {});

    let mut silent = TcpStream::connect(http).unwrap();
    silent.set_read_timeout(Some(HTTP_PATIENCE)).unwrap();

    // A client sending one byte of a never-ending header every 100 ms.
    let mut dribbler = TcpStream::connect(http).unwrap();
    dribbler.set_read_timeout(Some(HTTP_PATIENCE)).unwrap();
    dribbler.set_write_timeout(Some(TIMEOUT)).unwrap();
    let writer = {
        let mut stream = dribbler.try_clone().unwrap();
        thread::spawn(move || {
            let bytes = b"GET / HTTP/1.1\r\nX-Slow: "
                .iter()
                .chain([b'a'; 400].iter());
            for byte in bytes {
                if stream.write_all(&[*byte]).is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(100));
            }
        })
    };
    // Both hold a thread of the listener until they are cut off.
    wait_until("both connections are counted", || {
        broker.metrics().listeners[1].connections == 2
    });
    assert_eq!(read_answer(&mut silent).status, 408);
    assert_eq!(read_answer(&mut dribbler).status, 408);
    writer.join().unwrap();
    wait_until("the listener holds no connection", || {
        broker.metrics().listeners[1].connections == 0
    });
}

#[test]
fn connections_beyond_max_connections_are_answered_503() {
    let (broker, _mqtt, http) = start(|config| config.listeners[1].max_connections = 2);
    let idle: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(http).unwrap()).collect();
    wait_until("two connections are counted", || {
        broker.metrics().listeners[1].connections == 2
    });
    let busy = get(http, "/metrics");
    assert_eq!(busy.status, 503, "{busy:?}");
    assert_eq!(busy.header("retry-after"), Some("1"));
    drop(idle);
    wait_until("the idle connections are let go", || {
        broker.metrics().listeners[1].connections == 0
    });
    assert_eq!(get(http, "/healthz").status, 200);
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

#[test]
fn basic_auth_refuses_strangers_and_admits_users_of_the_password_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwords");
    let mut passwords = PasswordFile::new();
    passwords.set_password("operator", b"s3cret").unwrap();
    passwords.save(&path).unwrap();

    let mut config = BrokerConfig::from_yaml_str(
        &format!(
            "listeners:\n  mqtt:\n    bind: 127.0.0.1:0\n  dashboard:\n    bind: 127.0.0.1:0\n    \
             type: http\n    basic-auth: on\nauth:\n  password-file: {}\nsys_interval: 0\n",
            path.display()
        ),
        "broker.yaml",
    )
    .unwrap();
    config.auth.allow_anonymous = Some(true);
    let broker = Broker::builder(config)
        .hook(Arc::new(PasswordFileHook::new(passwords)))
        .start()
        .unwrap();
    let http = broker.http_addrs()[0];

    for path in ["/", "/metrics", "/api/sys", "/api/stats", "/nowhere"] {
        let anonymous = get(http, path);
        assert_eq!(anonymous.status, 401, "{path}: {anonymous:?}");
        let challenge = anonymous.header("www-authenticate").unwrap();
        assert!(challenge.starts_with("Basic realm="), "{challenge}");
    }
    let with = |authorization: &str| {
        exchange(
            http,
            format!("GET /metrics HTTP/1.1\r\nAuthorization: {authorization}\r\n\r\n").as_bytes(),
        )
        .status
    };
    assert_eq!(with(&basic("operator", "guess")), 401);
    assert_eq!(with(&basic("nobody", "s3cret")), 401);
    assert_eq!(with("Bearer abc"), 401);
    assert_eq!(with("Basic !!!"), 401);
    assert_eq!(with(&basic("operator", "s3cret")), 200);
    // Load balancers need no password.
    assert_eq!(get(http, "/healthz").status, 200);
}

#[test]
fn an_https_listener_answers_over_tls() {
    let certs = common::certs::make();
    let (_broker, _mqtt, http) = start(|config| {
        config.listeners[1].tls = Some(TlsConfig::new(&certs.cert, &certs.key));
    });
    let connector = native_tls::TlsConnector::builder()
        .add_root_certificate(native_tls::Certificate::from_pem(certs.ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let socket = TcpStream::connect(http).unwrap();
    socket.set_read_timeout(Some(HTTP_PATIENCE)).unwrap();
    let mut tls = connector
        .connect("localhost", socket)
        .expect("TLS handshake");
    tls.write_all(b"GET /api/stats HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    // The server ends with close_notify; a reset after it is no matter.
    let _ = tls.read_to_end(&mut raw);
    let answer = parse_answer(&raw);
    assert_eq!(answer.status, 200);
    let stats: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(stats["listeners"][1]["protocol"], "https");
}

/// Runs chromium headless on `args` and returns what it printed, killing it if
/// it takes more than a minute. Panics, not skips, when chromium is missing:
/// `tests/run` installs it.
fn chromium(args: &[&str]) -> String {
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium must be installed to test the dashboard (tests/run installs it)");
    let mut stdout = child.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within a minute");
        }
        thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap()
}

#[test]
fn the_dashboard_shows_the_connected_clients_in_a_headless_browser() {
    let (broker, mqtt, http) = start(|_| {});
    let _clients: Vec<Raw> = (0..3)
        .map(|i| Raw::connect(mqtt, &format!("browser-test-{i}"), true, false))
        .collect();
    wait_for_stats(&broker, "three clients", |s| s.connected_clients == 3);

    // Virtual time runs the page's timers at once; its requests still go to the
    // broker over the network.
    let url = format!("http://{http}/");
    let dom = chromium(&["--virtual-time-budget=5000", "--dump-dom", &url]);
    assert!(
        dom.contains("<div class=\"v\" id=\"clients-connected\">3</div>"),
        "the page does not show 3 connected clients:\n{dom}"
    );
    let updates: u32 = dom
        .split("data-updates=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no update count in\n{dom}"));
    assert!(updates >= 2, "the page updated {updates} times:\n{dom}");
    assert!(
        dom.contains("<td>dashboard</td>"),
        "no listener table:\n{dom}"
    );
}
