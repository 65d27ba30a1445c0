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
//! MQTT 5 is mosquitto's too: `-V 5`, `-D` properties (checked as mosquitto checks
//! them, see `properties.rs`), and `-x` with mosquitto's defaults (never expire
//! with `-c`, else 0) and its demand for a client id when a session never expires.
//!
//! Options wren does not support yet (TLS-PSK, cipher lists, OpenSSL engines,
//! `--capath`, SOCKS proxies, Unix sockets, binding to a local address with `-A`)
//! are refused with a message that says so, never silently ignored.
//!
//! This file holds the parse itself: the defaults file, the loop over the tokens
//! and the checks at the end. `args.rs` holds the tokens and the errors,
//! `connection.rs` the options both tools share, `properties.rs` the `-D`
//! properties, and `config_file.rs` hbmqtt's `--config`.

mod args;
mod config_file;
mod connection;
mod properties;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use wren::config::ClientConfig;
use wren::protocol::ProtocolVersion;

pub use self::args::{parse_int, parse_qos, ArgError, Args};
use self::config_file::config_file;
pub use self::connection::{ConnectArgs, WillArgs};
pub use self::properties::{to_properties, Property, PropertyValue};

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
        if c.protocol == ProtocolVersion::V5 {
            let c = &mut self.connect;
            if !c.clean_session && c.session_expiry.is_none() {
                // A persistent session without -x is kept for ever.
                c.session_expiry = Some(u32::MAX);
            }
            let expiry = c.session_expiry.unwrap_or(0);
            if expiry > 0 {
                if expiry == u32::MAX && (c.id_prefix.is_some() || c.client_id.is_none()) {
                    return Err(ArgError::line(
                        "You must provide a client id if you are using an infinite session expiry interval.",
                    ));
                }
                c.properties.connect.push(Property {
                    id: properties::SESSION_EXPIRY_INTERVAL,
                    value: PropertyValue::Number(expiry),
                });
            }
        } else if !c.clean_session && (c.id_prefix.is_some() || c.client_id.is_none()) {
            return Err(ArgError::line(
                "You must provide a client id if you are using the -c option.",
            ));
        }
        let c = &self.connect;
        if self.url_without_topic && !self.tool.has_topic() {
            // mosquitto insists on a topic in the URL; hbmqtt takes it from -t. Both
            // are fine here, but one of them must give a topic.
            return Err(ArgError::line(
                "Invalid URL for -L argument specified - topic missing.",
            ));
        }
        self.tool.finish(c)?;
        c.properties.check(c.quiet)?;
        Ok(Command::Run(Box::new(self.connect), self.tool))
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
    use wren::protocol::{ProtocolVersion, QoS};
    use wren::transport::Kind;

    use super::connection::parse_session_expiry;
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
            &["--capath", "/etc/ssl/certs"][..],
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
