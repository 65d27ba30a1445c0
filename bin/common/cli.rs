//! The command line both tools share, parsed the way mosquitto parses it.
//!
//! mosquitto's options are unusual for a getopt-style parser: one option per token
//! (no `-vd` bundling, no `--qos=1`), `-t` repeated by the subscriber but "last one
//! wins" for the publisher, options that exist for one tool only and are an
//! "Unknown option" for the other, and error texts that name the option as
//! mosquitto names it (`-h argument given but no host specified.` even for
//! `--host`). A small hand-written loop over the tokens reproduces all of that
//! directly; each tool plugs its own options in through [`ToolOptions`].
//!
//! Before the real arguments, a defaults file is read: one option per line
//! (`-q 1`, `--quiet`), `#` starting a comment, from `$XDG_CONFIG_HOME/<tool>` or
//! else `~/.config/<tool>`, as mosquitto reads `~/.config/mosquitto_sub`.
//!
//! hbmqtt's `--config FILE` (also `--config-file`) names a client settings file in
//! hbmqtt's YAML layout (`broker: uri:`, `keep_alive`, `will`, `default_qos`,
//! `auto_reconnect`, ...). Its settings are defaults: any option on the command
//! line wins, wherever it stands. The library reads it
//! (`ClientOptions::apply_config`), so a file means the same to the tools as to
//! any other wren client.
//!
//! TLS follows mosquitto's rules: `--cafile`, `--cert`, `--tls-use-os-certs`, an
//! `mqtts://` URL or port 8883 turn it on, and without `-p` the port becomes 8883.
//! hbmqtt's `ws://` and `wss://` URLs connect over WebSocket.
//!
//! Options wren does not support yet (MQTT 5 properties and `-V 5`, TLS-PSK,
//! cipher lists, OpenSSL engines, `--capath`, SOCKS proxies, Unix sockets, binding
//! to a local address with `-A`) are refused with a message that says so, never
//! silently ignored.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use wren::client::{ClientOptions, Reconnect, TlsVersion};
use wren::config::ClientConfig;
use wren::protocol::{ProtocolVersion, QoS, TopicName};
use wren::transport::Kind;

use super::url;

/// A problem with the arguments, printed as mosquitto prints it: `Error: ...`, then
/// (usually) a blank line and `Use 'wren-sub --help' to see usage.`. Exit code 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError {
    text: String,
    hint: bool,
}

impl ArgError {
    /// `Error: <message>` on one line, then the usage hint.
    pub fn line(message: impl fmt::Display) -> ArgError {
        ArgError {
            text: format!("Error: {message}\n"),
            hint: true,
        }
    }

    /// `Error: <message>` and an empty line, then the usage hint: the layout mosquitto
    /// uses for most option errors.
    pub fn spaced(message: impl fmt::Display) -> ArgError {
        ArgError {
            text: format!("Error: {message}\n\n"),
            hint: true,
        }
    }

    /// Exactly `text`, without the usage hint.
    pub fn bare(text: impl Into<String>) -> ArgError {
        ArgError {
            text: text.into(),
            hint: false,
        }
    }

    /// The message as it goes to stderr, from the program called `tool`.
    pub fn render(&self, tool: &str) -> String {
        if self.hint {
            format!("{}\nUse '{tool} --help' to see usage.\n", self.text)
        } else {
            self.text.clone()
        }
    }
}

/// The argument tokens still to be read.
#[derive(Debug)]
pub struct Args {
    tokens: VecDeque<OsString>,
}

impl Args {
    /// The tokens, without the program name.
    pub fn new(tokens: impl IntoIterator<Item = OsString>) -> Args {
        Args {
            tokens: tokens.into_iter().collect(),
        }
    }

    fn next_token(&mut self) -> Option<OsString> {
        self.tokens.pop_front()
    }

    /// Whether every token has been read.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The value after `option` as raw bytes (payloads and passwords may be any
    /// bytes). `option` and `missing` fill mosquitto's message:
    /// `<option> argument given but no <missing> specified.`
    pub fn bytes(&mut self, option: &str, missing: &str) -> Result<Vec<u8>, ArgError> {
        match self.tokens.pop_front() {
            Some(value) => Ok(value.into_vec()),
            None => Err(ArgError::spaced(format!(
                "{option} argument given but no {missing} specified."
            ))),
        }
    }

    /// The value after `option`, which must be UTF-8 (topics, host names, ...).
    pub fn text(&mut self, option: &str, missing: &str) -> Result<String, ArgError> {
        let bytes = self.bytes(option, missing)?;
        String::from_utf8(bytes)
            .map_err(|_| ArgError::spaced(format!("Malformed UTF-8 in {option} argument.")))
    }
}

/// A whole number as mosquitto's tools take it, but strict: `12abc` and `abc` are
/// errors here, where `atoi` would read 12 and 0.
pub fn parse_int(text: &str) -> Option<i64> {
    text.parse().ok()
}

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
    /// `-x`: session expiry interval. An MQTT 5 property: with MQTT 3.1/3.1.1, which
    /// are all wren speaks so far, it is checked and then has no effect, exactly as
    /// with mosquitto's tools in those versions.
    pub session_expiry: Option<u32>,
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

/// The options one tool adds to the shared ones.
pub trait ToolOptions: Default {
    /// The program these options belong to: `wren-pub` or `wren-sub`.
    const NAME: &'static str;

    /// Takes a topic from `-t` or from the path of `-L` (`option` names which, for
    /// messages).
    fn add_topic(&mut self, topic: String, option: &str) -> Result<(), ArgError>;

    /// Handles `option` if it is one of this tool's, reading its value from `args`.
    /// Returns `Ok(false)` for an option that is not this tool's.
    fn parse_option(
        &mut self,
        option: &str,
        args: &mut Args,
        connect: &mut ConnectArgs,
    ) -> Result<bool, ArgError>;

    /// Takes this tool's defaults from a `--config` file (before any argument).
    fn apply_config(&mut self, config: &ClientConfig);

    /// Whether a topic has been given (by `-t` or `-L`).
    fn has_topic(&self) -> bool;

    /// Checks made once every argument has been read.
    fn finish(&mut self, connect: &ConnectArgs) -> Result<(), ArgError>;
}

/// The outcome of reading the command line.
#[derive(Debug)]
pub enum Command<T> {
    /// Connect and do the work.
    Run(Box<ConnectArgs>, T),
    /// `--help`: print usage (to stdout) and exit 1.
    Help,
    /// `--version`: print the version (to stdout) and exit 1.
    Version,
}

/// Reads the tool's defaults file, then `argv` (without the program name).
pub fn parse<T: ToolOptions>(
    argv: impl IntoIterator<Item = OsString>,
) -> Result<Command<T>, ArgError> {
    parse_with_defaults(defaults_file(T::NAME), argv)
}

/// Reads tool `T`'s command line: the arguments to run with, or, after printing the
/// help, the version or what is wrong (as mosquitto's tools do, all exiting 1), the
/// exit code.
pub fn from_env<T: ToolOptions>(
    usage: fn() -> String,
    version: fn() -> String,
) -> Result<(Box<ConnectArgs>, T), std::process::ExitCode> {
    let exit = || super::exit::code(super::exit::FAILURE);
    match parse::<T>(std::env::args_os().skip(1)) {
        Ok(Command::Run(connect, options)) => Ok((connect, options)),
        Ok(Command::Help) => {
            print!("{}", usage());
            Err(exit())
        }
        Ok(Command::Version) => {
            print!("{}", version());
            Err(exit())
        }
        Err(error) => {
            eprint!("{}", error.render(T::NAME));
            Err(exit())
        }
    }
}

/// Reads the defaults file at `defaults` (if any), then `argv`.
pub fn parse_with_defaults<T: ToolOptions>(
    defaults: Option<PathBuf>,
    argv: impl IntoIterator<Item = OsString>,
) -> Result<Command<T>, ArgError> {
    let argv: Vec<OsString> = argv.into_iter().collect();
    let mut state = Parser::<T>::default();
    if let Some(path) = config_file(&argv)? {
        state.apply_config(&path)?;
    }
    if let Some(path) = defaults {
        // A missing or unreadable defaults file is no error, as with mosquitto.
        if let Ok(contents) = std::fs::read(&path) {
            for line in contents.split(|&b| b == b'\n') {
                if let Some(stop) = state.parse_tokens(Args::new(defaults_line(line)))? {
                    return Ok(stop);
                }
            }
        }
    }
    if let Some(stop) = state.parse_tokens(Args::new(argv))? {
        return Ok(stop);
    }
    state.finish()
}

/// The file named by `--config` or `--config-file`, looked for before the real
/// parse so that its settings can be overridden by every other option.
fn config_file(argv: &[OsString]) -> Result<Option<PathBuf>, ArgError> {
    let mut path = None;
    let mut tokens = argv.iter();
    while let Some(token) = tokens.next() {
        if token == "--config" || token == "--config-file" {
            match tokens.next() {
                Some(value) => path = Some(PathBuf::from(value)),
                None => {
                    return Err(ArgError::spaced(
                        "--config argument given but no file specified.",
                    ))
                }
            }
        }
    }
    Ok(path)
}

/// Where the defaults file for the program `name` lives.
fn defaults_file(name: &str) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME") {
        return Some(PathBuf::from(dir).join(name));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config").join(name))
}

/// The tokens of one defaults-file line: the option, then (if anything follows the
/// first space) the rest of the line as one value, so `-m hello world` works.
fn defaults_line(line: &[u8]) -> Vec<OsString> {
    if line.first() == Some(&b'#') {
        return Vec::new();
    }
    let mut line = line;
    while let [rest @ .., b'\r' | b'\n'] = line {
        line = rest;
    }
    let start = line.iter().position(|&b| b != b' ').unwrap_or(line.len());
    let line = &line[start..];
    if line.is_empty() {
        return Vec::new();
    }
    match line.iter().position(|&b| b == b' ') {
        Some(space) => {
            let mut tokens = vec![OsString::from_vec(line[..space].to_vec())];
            if space + 1 < line.len() {
                tokens.push(OsString::from_vec(line[space + 1..].to_vec()));
            }
            tokens
        }
        None => vec![OsString::from_vec(line.to_vec())],
    }
}

#[derive(Default)]
struct Parser<T> {
    connect: ConnectArgs,
    tool: T,
    /// A `-L` URL had no topic; say so at the end if `-t` gave none either.
    url_without_topic: bool,
    will_payload_given: bool,
}

impl<T: ToolOptions> Parser<T> {
    /// Takes the settings of an hbmqtt client file as defaults.
    fn apply_config(&mut self, path: &std::path::Path) -> Result<(), ArgError> {
        let loaded = ClientConfig::load_yaml_file(path)
            .map_err(|e| ArgError::line(format!("--config: {e}")))?;
        for warning in &loaded.warnings {
            eprintln!("Warning: {warning}");
        }
        let config = loaded.config;
        let c = &mut self.connect;
        if config.broker.capath.is_some() {
            // The library refuses it too; this is mosquitto's way of saying so.
            return Err(ArgError::line(
                "--config: capath (a directory of CA certificates) is not supported yet; use cafile.",
            ));
        }
        // The library reads the file as it would for any client; what it gives
        // becomes the defaults that the command line may override.
        let options = ClientOptions::new(c.host.clone(), c.effective_port())
            .apply_config(&config)
            .map_err(|e| ArgError::line(format!("--config: {e}")))?;
        if config.broker.uri.is_some() {
            c.host = options.get_host().to_owned();
            c.port = Some(options.get_port());
            c.scheme = options.get_kind();
            c.websocket_path = options
                .get_kind()
                .is_websocket()
                .then(|| options.get_websocket_path().to_owned());
            c.username = options.get_username().map(str::to_owned);
            c.password = options.get_password().map(<[u8]>::to_vec);
        }
        let tls = options.get_tls();
        c.tls.ca_file = tls.ca_file.clone();
        c.tls.ca_data = tls.ca_data.clone();
        c.tls.insecure = tls.insecure;
        // Each on its own, so that one without the other is refused as on the
        // command line.
        c.tls.cert = config.certfile.clone();
        c.tls.key = config.keyfile.clone();
        c.keep_alive = u16::try_from(options.get_keep_alive().as_secs()).unwrap_or(u16::MAX);
        c.clean_session = config.clean_session;
        c.qos = config.default_qos;
        c.reconnect = Some(options.get_reconnect());
        if let Some(will) = &config.will {
            c.will = WillArgs {
                topic: Some(TopicName::new(will.topic.clone()).map_err(|_| {
                    ArgError::line(format!(
                        "--config: Invalid will topic '{}', does it contain '+' or '#'?",
                        will.topic
                    ))
                })?),
                payload: Some(will.message.clone().into_bytes()),
                qos: will.qos,
                retain: will.retain,
            };
        }
        self.tool.apply_config(&config);
        Ok(())
    }

    /// Reads every token of `args`; `Some` when `--help` or `--version` ends parsing.
    fn parse_tokens(&mut self, mut args: Args) -> Result<Option<Command<T>>, ArgError> {
        while let Some(token) = args.next_token() {
            let option = match token.into_string() {
                Ok(option) => option,
                Err(token) => {
                    return Err(ArgError::line(format!(
                        "Unknown option '{}'.",
                        token.to_string_lossy()
                    )))
                }
            };
            match option.as_str() {
                "--help" => return Ok(Some(Command::Help)),
                "--version" => return Ok(Some(Command::Version)),
                _ => {}
            }
            if !self.parse_shared(&option, &mut args)?
                && !self
                    .tool
                    .parse_option(&option, &mut args, &mut self.connect)?
            {
                return Err(ArgError::line(format!("Unknown option '{option}'.")));
            }
        }
        Ok(None)
    }

    /// Handles the options both tools take; `Ok(false)` if `option` is not one.
    fn parse_shared(&mut self, option: &str, args: &mut Args) -> Result<bool, ArgError> {
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
                return Err(ArgError::line(format!(
                    "{option}: MQTT 5 properties are not supported yet; wren speaks MQTT 3.1 and 3.1.1."
                )))
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
                    "mqttv5" | "5" => {
                        return Err(ArgError::spaced(
                            "MQTT 5 is not supported yet; use -V mqttv311 or -V mqttv31.",
                        ))
                    }
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

    fn finish(mut self) -> Result<Command<T>, ArgError> {
        let c = &self.connect;
        if self.will_payload_given && c.will.topic.is_none() {
            return Err(ArgError::line(
                "Will payload given, but no will topic given.",
            ));
        }
        if c.will.retain && c.will.topic.is_none() {
            return Err(ArgError::line(
                "Will retain given, but no will topic given.",
            ));
        }
        if c.tls.cert.is_some() != c.tls.key.is_some() {
            return Err(ArgError::line(
                "Both certfile and keyfile must be provided if one of them is set.",
            ));
        }
        if !c.clean_session && (c.id_prefix.is_some() || c.client_id.is_none()) {
            return Err(ArgError::line(
                "You must provide a client id if you are using the -c option.",
            ));
        }
        if self.url_without_topic && !self.tool.has_topic() {
            // mosquitto insists on a topic in the URL; hbmqtt takes it from -t. Both
            // are fine here, but one of them must give a topic.
            return Err(ArgError::line(
                "Invalid URL for -L argument specified - topic missing.",
            ));
        }
        self.tool.finish(c)?;
        Ok(Command::Run(Box::new(self.connect), self.tool))
    }
}

/// `0`, `1` or `2`.
pub fn parse_qos(text: &str) -> Option<QoS> {
    parse_int(text)
        .and_then(|q| u8::try_from(q).ok())
        .and_then(QoS::from_u8)
}

/// mosquitto's `-x`: seconds, `-1` or `∞` for "never expires".
fn parse_session_expiry(text: &str) -> Result<u32, ArgError> {
    if text == "∞" {
        return Ok(u32::MAX);
    }
    let value =
        parse_int(text).ok_or_else(|| ArgError::spaced("session-expiry-interval not a number."))?;
    match value {
        -1 => Ok(u32::MAX),
        _ => u32::try_from(value)
            .map_err(|_| ArgError::spaced("session-expiry-interval out of range.")),
    }
}

/// Parses `args` as a run of `program` with no defaults file, for the option
/// tests of each tool: the options, or the error as the tool would print it.
#[cfg(test)]
pub fn parse_for_test<T: ToolOptions + std::fmt::Debug>(
    program: &str,
    args: &[&str],
) -> Result<T, String> {
    match parse_with_defaults::<T>(None, args.iter().map(OsString::from)) {
        Ok(Command::Run(_, options)) => Ok(options),
        Ok(other) => panic!("expected options to run with, got {other:?}"),
        Err(e) => Err(e.render(program)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tool with no options of its own and one required topic, to test the shared
    /// part.
    #[derive(Debug, Default)]
    struct Bare {
        topics: Vec<String>,
    }

    impl ToolOptions for Bare {
        const NAME: &'static str = "wren-sub";
        fn add_topic(&mut self, topic: String, _option: &str) -> Result<(), ArgError> {
            self.topics.push(topic);
            Ok(())
        }
        fn parse_option(
            &mut self,
            _option: &str,
            _args: &mut Args,
            _connect: &mut ConnectArgs,
        ) -> Result<bool, ArgError> {
            Ok(false)
        }
        fn apply_config(&mut self, _config: &ClientConfig) {}
        fn has_topic(&self) -> bool {
            !self.topics.is_empty()
        }
        fn finish(&mut self, _connect: &ConnectArgs) -> Result<(), ArgError> {
            if self.topics.is_empty() {
                return Err(ArgError::line("You must specify a topic to subscribe to."));
            }
            Ok(())
        }
    }

    fn run(args: &[&str]) -> Result<(ConnectArgs, Bare), String> {
        match parse_with_defaults::<Bare>(None, args.iter().map(OsString::from))
            .map_err(|e| e.render("wren-sub"))?
        {
            Command::Run(connect, tool) => Ok((*connect, tool)),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn error(args: &[&str]) -> String {
        run(args).expect_err("arguments should be refused")
    }

    #[test]
    fn defaults_are_mosquittos() {
        let (c, _) = run(&["-t", "a"]).unwrap();
        assert_eq!(c.host, "localhost");
        assert_eq!(c.effective_port(), 1883);
        assert_eq!(c.keep_alive, 60);
        assert!(c.clean_session);
        assert_eq!(c.qos, QoS::AtMostOnce);
        assert_eq!(c.protocol, ProtocolVersion::V3_1_1);
        assert_eq!(c.max_inflight, 20);
        assert_eq!(c.effective_client_id(), "");
    }

    #[test]
    fn shared_options_are_read() {
        let (c, tool) = run(&[
            "-h",
            "example",
            "-p",
            "1884",
            "-i",
            "me",
            "-c",
            "-k",
            "30",
            "-u",
            "ann",
            "-P",
            "pw",
            "-q",
            "2",
            "-V",
            "mqttv31",
            "--will-topic",
            "w",
            "--will-payload",
            "bye",
            "--will-qos",
            "1",
            "--will-retain",
            "-d",
            "--quiet",
            "-t",
            "a",
            "--topic",
            "b",
        ])
        .unwrap();
        assert_eq!(c.host, "example");
        assert_eq!(c.port, Some(1884));
        assert_eq!(c.client_id.as_deref(), Some("me"));
        assert!(!c.clean_session);
        assert_eq!(c.keep_alive, 30);
        assert_eq!(c.username.as_deref(), Some("ann"));
        assert_eq!(c.password.as_deref(), Some(&b"pw"[..]));
        assert_eq!(c.qos, QoS::ExactlyOnce);
        assert_eq!(c.protocol, ProtocolVersion::V3_1);
        assert_eq!(c.will.topic.as_ref().map(|t| t.as_str()), Some("w"));
        assert_eq!(c.will.payload.as_deref(), Some(&b"bye"[..]));
        assert_eq!(c.will.qos, QoS::AtLeastOnce);
        assert!(c.will.retain);
        assert!(c.debug && c.quiet);
        assert_eq!(tool.topics, ["a", "b"]);
    }

    #[test]
    fn tls_is_chosen_as_mosquitto_chooses_it() {
        let tls = |args: &[&str]| {
            let (c, _) = run(args).unwrap();
            (c.effective_scheme(), c.effective_port())
        };
        assert_eq!(tls(&["-t", "a"]), (Kind::Tcp, 1883));
        assert_eq!(tls(&["-t", "a", "--cafile", "ca.pem"]), (Kind::Tls, 8883));
        assert_eq!(
            tls(&["-t", "a", "--cafile", "ca.pem", "-p", "1"]),
            (Kind::Tls, 1)
        );
        assert_eq!(tls(&["-t", "a", "-p", "8883"]), (Kind::Tls, 8883));
        assert_eq!(tls(&["-t", "a", "--tls-use-os-certs"]), (Kind::Tls, 8883));
        assert_eq!(tls(&["-L", "mqtts://h/t"]), (Kind::Tls, 8883));
        assert_eq!(
            tls(&["--url", "ws://h/mqtt", "-t", "a"]),
            (Kind::WebSocket, 80)
        );
        assert_eq!(
            tls(&["--url", "wss://h:9001", "-t", "a"]),
            (Kind::SecureWebSocket, 9001)
        );
        assert_eq!(
            error(&["-t", "a", "--cert", "c.pem"]),
            "Error: Both certfile and keyfile must be provided if one of them is set.\n\n\
             Use 'wren-sub --help' to see usage.\n"
        );
    }

    #[test]
    fn id_prefix_appends_the_process_id() {
        let (c, _) = run(&["-I", "pre-", "-t", "a"]).unwrap();
        assert_eq!(
            c.effective_client_id(),
            format!("pre-{}", std::process::id())
        );
    }

    #[test]
    fn a_url_sets_host_port_credentials_and_topic() {
        let (c, tool) = run(&["-L", "mqtt://u:p@h:1999/x/y"]).unwrap();
        assert_eq!((c.host.as_str(), c.port), ("h", Some(1999)));
        assert_eq!(c.username.as_deref(), Some("u"));
        assert_eq!(c.password.as_deref(), Some(&b"p"[..]));
        assert_eq!(tool.topics, ["x/y"]);
    }

    #[test]
    fn a_url_without_topic_takes_it_from_t() {
        let (c, tool) = run(&["--url", "mqtt://h", "-t", "x"]).unwrap();
        assert_eq!(c.host, "h");
        assert_eq!(tool.topics, ["x"]);
        assert_eq!(
            error(&["-L", "mqtt://h"]),
            "Error: Invalid URL for -L argument specified - topic missing.\n\n\
             Use 'wren-sub --help' to see usage.\n"
        );
    }

    #[test]
    fn errors_use_mosquittos_words() {
        let hint = "\nUse 'wren-sub --help' to see usage.\n";
        let cases: &[(&[&str], &str)] = &[
            (&["-q", "3"], "Error: Invalid QoS given: 3\n"),
            (&["-p", "70000"], "Error: Invalid port given: 70000\n"),
            (
                &["-k", "2"],
                "Error: Invalid keepalive given, it must be between 5 and 65535 inclusive.\n\n",
            ),
            (
                &["-h"],
                "Error: -h argument given but no host specified.\n\n",
            ),
            (
                &["--host"],
                "Error: -h argument given but no host specified.\n\n",
            ),
            (
                &["-i", "a", "-I", "b"],
                "Error: -i and -I argument cannot be used together.\n\n",
            ),
            (
                &["-V", "4"],
                "Error: Invalid protocol version argument given.\n\n",
            ),
            (&["--will-qos", "3"], "Error: Invalid will QoS 3.\n\n"),
            (
                &["--will-topic", "a/+"],
                "Error: Invalid will topic 'a/+', does it contain '+' or '#'?\n",
            ),
            (&["-S"], "Error: Unknown option '-S'.\n"),
            (
                &["-c", "-t", "a"],
                "Error: You must provide a client id if you are using the -c option.\n",
            ),
            (
                &["--will-payload", "x", "-t", "a"],
                "Error: Will payload given, but no will topic given.\n",
            ),
            (
                &["--will-retain", "-t", "a"],
                "Error: Will retain given, but no will topic given.\n",
            ),
            (
                &["-M", "0"],
                "Error: Maximum inflight messages must be greater than 0.\n\n",
            ),
            (
                &["-x", "abc"],
                "Error: session-expiry-interval not a number.\n\n",
            ),
            (&["-L", "http://h/t"], "Error: unsupported URL scheme.\n\n"),
        ];
        for (args, text) in cases {
            assert_eq!(error(args), format!("{text}{hint}"), "for {args:?}");
        }
    }

    #[test]
    fn unsupported_features_are_refused_not_ignored() {
        for args in [
            &["-V", "5"][..],
            &["-V", "mqttv5"],
            &["-D", "connect", "user-property", "a", "b"],
            &["--capath", "/etc/ssl/certs"],
            &["--psk", "00"],
            &["--proxy", "socks5h://p"],
            &["--unix", "/tmp/s"],
            &["-A", "127.0.0.1"],
        ] {
            let text = error(args);
            assert!(text.contains("not supported yet"), "{args:?}: {text}");
        }
    }

    #[test]
    fn help_and_version_stop_parsing() {
        let mut parser = Parser::<Bare>::default();
        let outcome = parser
            .parse_tokens(Args::new(["--help", "-q", "9"].map(OsString::from)))
            .unwrap();
        assert!(matches!(outcome, Some(Command::Help)));
        let outcome = parser
            .parse_tokens(Args::new(["--version"].map(OsString::from)))
            .unwrap();
        assert!(matches!(outcome, Some(Command::Version)));
    }

    #[test]
    fn defaults_file_lines_are_option_and_rest() {
        assert_eq!(defaults_line(b"# comment"), Vec::<OsString>::new());
        assert_eq!(defaults_line(b"-q 1\r\n"), ["-q", "1"].map(OsString::from));
        assert_eq!(
            defaults_line(b"-m hello world"),
            ["-m", "hello world"].map(OsString::from)
        );
        assert_eq!(defaults_line(b"  --quiet"), ["--quiet"].map(OsString::from));
        assert_eq!(defaults_line(b""), Vec::<OsString>::new());
    }

    #[test]
    fn a_config_file_gives_defaults_that_options_override() {
        let path = std::env::temp_dir().join(format!("wren-cli-test-{}.yaml", std::process::id()));
        std::fs::write(
            &path,
            "keep_alive: 30\ndefault_qos: 2\nbroker:\n  uri: mqtt://u:p@example:1999\n\
             will:\n  topic: w\n  message: bye\n  qos: 1\n  retain: true\n",
        )
        .unwrap();
        let file = path.to_str().unwrap();
        let (c, _) = run(&["-k", "45", "-t", "a", "--config", file]).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!((c.host.as_str(), c.port), ("example", Some(1999)));
        assert_eq!(c.username.as_deref(), Some("u"));
        assert_eq!(c.keep_alive, 45, "the option wins, though it came first");
        assert_eq!(c.qos, QoS::ExactlyOnce);
        assert!(!c.qos_given);
        assert_eq!(c.will.payload.as_deref(), Some(&b"bye"[..]));
        assert!(c.will.retain);
        assert_eq!(
            error(&["-t", "a", "--config"]),
            "Error: --config argument given but no file specified.\n\n\n\
             Use 'wren-sub --help' to see usage.\n"
        );
    }

    #[test]
    fn a_config_file_broker_is_read_as_the_library_reads_it() {
        let path =
            std::env::temp_dir().join(format!("wren-cli-test-ws-{}.yaml", std::process::id()));
        std::fs::write(&path, "broker:\n  uri: wss://u%40x:p@example:9001/ws\n").unwrap();
        let file = path.to_str().unwrap();
        let (c, _) = run(&["-t", "a", "--config", file]).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            (c.effective_scheme(), c.effective_port()),
            (Kind::SecureWebSocket, 9001)
        );
        assert_eq!(c.websocket_path.as_deref(), Some("/ws"));
        assert_eq!(c.username.as_deref(), Some("u@x"));
        assert_eq!(c.password.as_deref(), Some(&b"p"[..]));
    }

    #[test]
    fn session_expiry_accepts_mosquittos_spellings() {
        assert_eq!(parse_session_expiry("∞"), Ok(u32::MAX));
        assert_eq!(parse_session_expiry("-1"), Ok(u32::MAX));
        assert_eq!(parse_session_expiry("60"), Ok(60));
        assert!(parse_session_expiry("-2").is_err());
    }
}
