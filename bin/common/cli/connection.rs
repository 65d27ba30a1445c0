//! The connection options wren-pub and wren-sub share (broker, identity, will, TLS,
//! session) and the parsing of them.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use wren::client::{Reconnect, TlsVersion};
use wren::protocol::{ProtocolVersion, QoS, TopicName};
use wren::transport::Kind;

use super::super::url;
use super::properties::{self, PropertyArgs};
use super::{parse_int, parse_qos, ArgError, Args, Parser, ToolOptions};

/// The will (`--will-*`), checked at the end because its parts come in any order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WillArgs {
    /// `--will-topic`.
    pub topic: Option<TopicName>,
    /// `--will-payload` / `--will-message`; an absent payload is an empty one.
    pub payload: Option<Vec<u8>>,
    /// `--will-qos`.
    pub qos: QoS,
    /// `--will-retain`.
    pub retain: bool,
}

/// TLS settings: `--cafile`, `--cert`, `--key`, `--insecure`, ...
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsArgs {
    /// `--cafile` (hbmqtt: `--ca-file`): CA certificates to trust, PEM.
    pub ca_file: Option<PathBuf>,
    /// hbmqtt's `--ca-data`: CA certificates as PEM text.
    pub ca_data: Option<String>,
    /// `--cert`: client certificate, PEM.
    pub cert: Option<PathBuf>,
    /// `--key`: the client certificate's private key, PEM (PKCS #8).
    pub key: Option<PathBuf>,
    /// `--insecure`: do not check the broker's certificate. Stricter libraries
    /// cannot skip the host name check alone, so this skips every check.
    pub insecure: bool,
    /// `--tls-use-os-certs`: use TLS, trusting the system's certificate authorities.
    pub os_certs: bool,
    /// `--tls-version`.
    pub min_version: Option<TlsVersion>,
}

/// How to reach the broker and who to be there: the options both tools share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectArgs {
    /// `-h`, or the host of `-L`; `localhost` when absent.
    pub host: String,
    /// `-p`, or the port of `-L`; see [`ConnectArgs::effective_port`] when absent.
    pub port: Option<u16>,
    /// The scheme of `-L`: TCP unless it says otherwise.
    pub scheme: Kind,
    /// The HTTP path of a `ws://` or `wss://` URL.
    pub websocket_path: Option<String>,
    /// TLS settings.
    pub tls: TlsArgs,
    /// `-i`: the client identifier; absent means empty (the broker assigns one).
    pub client_id: Option<String>,
    /// `-I`: a prefix to which the process id is appended.
    pub id_prefix: Option<String>,
    /// Cleared by `-c`.
    pub clean_session: bool,
    /// `-k`, seconds, 5 to 65535; 60 by default.
    pub keep_alive: u16,
    /// `-u`.
    pub username: Option<String>,
    /// `-P`: any bytes.
    pub password: Option<Vec<u8>>,
    /// `--will-*`.
    pub will: WillArgs,
    /// `-V`: MQTT 3.1.1 by default.
    pub protocol: ProtocolVersion,
    /// `-q`: the QoS of publishes, or the QoS asked for in subscriptions.
    pub qos: QoS,
    /// Whether `-q` was on the command line (rather than from `--config`).
    pub qos_given: bool,
    /// How to reconnect, when `--config` says (`auto_reconnect`, ...); otherwise
    /// each tool does as its mosquitto counterpart.
    pub reconnect: Option<Reconnect>,
    /// `-M`: most QoS 1/2 messages in flight at once; 20 by default.
    pub max_inflight: u32,
    /// `--nodelay`: disable Nagle's algorithm.
    pub nodelay: bool,
    /// `-x`: session expiry interval, seconds (`u32::MAX`: never). An MQTT 5
    /// property: with MQTT 3.1/3.1.1 it is checked and then has no effect, as with
    /// mosquitto's tools. In MQTT 5 it defaults to 0, or to never with `-c`.
    pub session_expiry: Option<u32>,
    /// `-D`: MQTT 5 properties, per packet.
    pub properties: PropertyArgs,
    /// The Receive Maximum an MQTT 5 CONNECT announces unless `-D connect
    /// receive-maximum` says otherwise: 20, as libmosquitto's (wren-sub lowers it
    /// to a `-C` count below 20, as mosquitto_sub does).
    pub receive_maximum: u16,
    /// `-d`: print the packets sent and received.
    pub debug: bool,
    /// `--quiet`: print no runtime errors.
    pub quiet: bool,
}

impl Default for ConnectArgs {
    fn default() -> ConnectArgs {
        ConnectArgs {
            host: "localhost".to_owned(),
            port: None,
            scheme: Kind::Tcp,
            websocket_path: None,
            tls: TlsArgs::default(),
            client_id: None,
            id_prefix: None,
            clean_session: true,
            keep_alive: 60,
            username: None,
            password: None,
            will: WillArgs::default(),
            protocol: ProtocolVersion::V3_1_1,
            qos: QoS::AtMostOnce,
            qos_given: false,
            reconnect: None,
            max_inflight: 20,
            nodelay: false,
            session_expiry: None,
            properties: PropertyArgs::default(),
            receive_maximum: 20,
            debug: false,
            quiet: false,
        }
    }
}

impl ConnectArgs {
    /// Whether to use TLS: asked for by the URL, by a TLS option, or (as with
    /// mosquitto) by connecting to port 8883.
    pub fn uses_tls(&self) -> bool {
        self.scheme.is_tls()
            || self.tls.ca_file.is_some()
            || self.tls.ca_data.is_some()
            || self.tls.cert.is_some()
            || self.tls.os_certs
            || self.port == Some(8883)
    }

    /// How to connect, once TLS options are taken into account.
    pub fn effective_scheme(&self) -> Kind {
        match (self.scheme.is_websocket(), self.uses_tls()) {
            (false, false) => Kind::Tcp,
            (false, true) => Kind::Tls,
            (true, false) => Kind::WebSocket,
            (true, true) => Kind::SecureWebSocket,
        }
    }

    /// The port to connect to: `-p`, else the default of the scheme (1883, 8883
    /// with TLS, 80 or 443 for WebSocket).
    pub fn effective_port(&self) -> u16 {
        self.port
            .unwrap_or_else(|| self.effective_scheme().default_port())
    }

    /// The client identifier to connect with: `-i`, or `-I` followed by the process
    /// id, or empty so that the broker assigns one.
    pub fn effective_client_id(&self) -> String {
        match (&self.client_id, &self.id_prefix) {
            (Some(id), _) => id.clone(),
            (None, Some(prefix)) => format!("{prefix}{}", std::process::id()),
            (None, None) => String::new(),
        }
    }
}

impl<T: ToolOptions> Parser<T> {
    /// Handles the options both tools take; `Ok(false)` if `option` is not one.
    pub(super) fn parse_shared(&mut self, option: &str, args: &mut Args) -> Result<bool, ArgError> {
        let c = &mut self.connect;
        match option {
            "-A" => {
                args.text("-A", "address")?;
                return Err(ArgError::line(
                    "-A: binding to a local address is not supported yet.",
                ));
            }
            "-c" | "--disable-clean-session" => c.clean_session = false,
            // hbmqtt's flag; a clean session is already the default.
            "--clean-session" => c.clean_session = true,
            "-d" | "--debug" => c.debug = true,
            "-D" | "--property" => {
                properties::parse_property(args, &mut c.properties)?;
                // As in mosquitto, a property means MQTT 5 (a later -V still wins).
                c.protocol = ProtocolVersion::V5;
            }
            "-h" | "--host" => c.host = args.text("-h", "host")?,
            "-i" | "--id" | "--client-id" => {
                if c.id_prefix.is_some() {
                    return Err(ArgError::spaced("-i and -I argument cannot be used together."));
                }
                c.client_id = Some(args.text("-i", "id")?);
            }
            "-I" | "--id-prefix" => {
                if c.client_id.is_some() {
                    return Err(ArgError::spaced("-i and -I argument cannot be used together."));
                }
                c.id_prefix = Some(args.text("-I", "id prefix")?);
            }
            "-k" | "--keepalive" => {
                let value = args.text("-k", "keepalive")?;
                c.keep_alive = parse_int(&value)
                    .filter(|k| (5..=65535).contains(k))
                    .and_then(|k| u16::try_from(k).ok())
                    .ok_or_else(|| {
                        ArgError::spaced(
                            "Invalid keepalive given, it must be between 5 and 65535 inclusive.",
                        )
                    })?;
            }
            "-L" | "--url" => self.parse_url(args)?,
            "-M" => {
                if args.is_empty() {
                    return Err(ArgError::spaced(
                        "-M argument given but max_inflight not specified.",
                    ));
                }
                let value = args.text("-M", "max_inflight")?;
                c.max_inflight = parse_int(&value)
                    .filter(|&n| n >= 1)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        ArgError::spaced("Maximum inflight messages must be greater than 0.")
                    })?;
            }
            "--nodelay" => c.nodelay = true,
            // Read before the other options (see `config_file`).
            "--config" | "--config-file" => {
                args.bytes("--config", "file")?;
            }
            "-p" | "--port" => {
                let value = args.text("-p", "port")?;
                c.port = Some(
                    parse_int(&value)
                        .and_then(|p| u16::try_from(p).ok())
                        .ok_or_else(|| ArgError::line(format!("Invalid port given: {value}")))?,
                );
            }
            "-P" | "--pw" => c.password = Some(args.bytes("-P", "password")?),
            "-q" | "--qos" => {
                let value = args.text("-q", "QoS")?;
                c.qos = parse_qos(&value)
                    .ok_or_else(|| ArgError::line(format!("Invalid QoS given: {value}")))?;
                c.qos_given = true;
            }
            "--quiet" => c.quiet = true,
            "-t" | "--topic" => {
                let topic = args.text("-t", "topic")?;
                self.tool.add_topic(topic, "-t")?;
            }
            "-u" | "--username" => c.username = Some(args.text("-u", "username")?),
            "-V" | "--protocol-version" => {
                let value = args.text("--protocol-version", "version")?;
                c.protocol = match value.as_str() {
                    "mqttv31" | "31" => ProtocolVersion::V3_1,
                    "mqttv311" | "311" => ProtocolVersion::V3_1_1,
                    "mqttv5" | "5" => ProtocolVersion::V5,
                    _ => return Err(ArgError::spaced("Invalid protocol version argument given.")),
                };
            }
            "--will-payload" | "--will-message" => {
                c.will.payload = Some(args.bytes("--will-payload", "will payload")?);
                self.will_payload_given = true;
            }
            "--will-qos" => {
                let value = args.text("--will-qos", "will QoS")?;
                c.will.qos = parse_qos(&value)
                    .ok_or_else(|| ArgError::spaced(format!("Invalid will QoS {value}.")))?;
            }
            "--will-retain" => c.will.retain = true,
            "--will-topic" => {
                let topic = args.text("--will-topic", "will topic")?;
                c.will.topic = Some(TopicName::new(topic.clone()).map_err(|_| {
                    ArgError::line(format!(
                        "Invalid will topic '{topic}', does it contain '+' or '#'?"
                    ))
                })?);
            }
            "-x" => {
                let value = args.text("-x", "session expiry interval")?;
                c.session_expiry = Some(parse_session_expiry(&value)?);
            }
            "--cafile" | "--ca-file" => {
                c.tls.ca_file = Some(PathBuf::from(OsString::from_vec(
                    args.bytes("--cafile", "file")?,
                )));
            }
            "--ca-data" => c.tls.ca_data = Some(args.text("--ca-data", "certificate")?),
            "--cert" => {
                c.tls.cert = Some(PathBuf::from(OsString::from_vec(args.bytes("--cert", "file")?)));
            }
            "--key" => {
                c.tls.key = Some(PathBuf::from(OsString::from_vec(args.bytes("--key", "file")?)));
            }
            "--insecure" => c.tls.insecure = true,
            "--tls-use-os-certs" => c.tls.os_certs = true,
            "--tls-version" => {
                let value = args.text("--tls-version", "version")?;
                c.tls.min_version = Some(match value.as_str() {
                    "tlsv1.2" => TlsVersion::V1_2,
                    "tlsv1.1" => TlsVersion::V1_1,
                    "tlsv1" => TlsVersion::V1_0,
                    "tlsv1.3" => {
                        return Err(ArgError::line(
                            "--tls-version: requiring TLS 1.3 is not supported yet; TLS 1.3 is used whenever the broker offers it.",
                        ))
                    }
                    _ => {
                        return Err(ArgError::line(
                            "Problem setting TLS options, check the options are valid.",
                        ))
                    }
                });
            }
            "--capath" | "--ca-path" => {
                return Err(ArgError::line(format!(
                    "{option}: a directory of CA certificates is not supported yet; name a file with --cafile."
                )))
            }
            "--ciphers" | "--tls-alpn" | "--tls-engine" | "--keyform" | "--tls-engine-kpass-sha1"
            | "--psk" | "--psk-identity" => {
                return Err(ArgError::line(format!("{option}: not supported yet.")))
            }
            "--proxy" => {
                return Err(ArgError::line(
                    "--proxy: SOCKS5 proxies are not supported yet.",
                ))
            }
            "--unix" => {
                return Err(ArgError::line(
                    "--unix: Unix domain sockets are not supported yet; use -h and -p.",
                ))
            }
            "--extra-headers" => {
                return Err(ArgError::line(
                    "--extra-headers: WebSocket connections are not supported yet.",
                ))
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn parse_url(&mut self, args: &mut Args) -> Result<(), ArgError> {
        let text = args.text("-L", "URL")?;
        let url = url::parse(&text).map_err(|e| match e {
            url::UrlError::UnsupportedScheme => ArgError::spaced(e),
            _ => ArgError::line(format!("-L: {e}")),
        })?;
        match url.topic {
            Some(topic) => self.tool.add_topic(topic, "-L topic")?,
            None => self.url_without_topic = true,
        }
        let c = &mut self.connect;
        if let Some(username) = url.username {
            c.username = Some(username);
        }
        if let Some(password) = url.password {
            c.password = Some(password.into_bytes());
        }
        c.host = url.host;
        c.port = Some(url.port);
        c.scheme = url.scheme;
        c.websocket_path = url.websocket_path;
        Ok(())
    }
}

/// mosquitto's `-x`: seconds, `-1` or `∞` for "never expires". Read as C's
/// `strtol` with base 0 reads it: `0x10` is 16 and `010` is 8.
pub(super) fn parse_session_expiry(text: &str) -> Result<u32, ArgError> {
    if text == "∞" {
        return Ok(u32::MAX);
    }
    let value =
        strtol(text).ok_or_else(|| ArgError::spaced("session-expiry-interval not a number."))?;
    match value {
        -1 => Ok(u32::MAX),
        _ => u32::try_from(value)
            .map_err(|_| ArgError::spaced("session-expiry-interval out of range.")),
    }
}

/// The whole of `text` as a number in C's `strtol(text, &end, 0)` way: blanks and
/// a sign first, then hexadecimal after `0x`, octal after `0`, else decimal.
/// `None` unless every character is read; a number too large saturates.
fn strtol(text: &str) -> Option<i64> {
    let trimmed = text.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (negative, unsigned) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let (radix, digits) = if let Some(hex) = unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0X"))
        .filter(|h| h.starts_with(|c: char| c.is_ascii_hexdigit()))
    {
        (16, hex)
    } else if unsigned.len() > 1 && unsigned.starts_with('0') {
        (8, &unsigned[1..])
    } else {
        (10, unsigned)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i64::from_str_radix(digits, radix).unwrap_or(i64::MAX);
    Some(if negative { -magnitude } else { magnitude })
}
