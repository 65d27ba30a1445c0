//! wren-broker: an MQTT 3.1 / 3.1.1 broker, started like mosquitto.
//!
//! ```text
//! wren-broker              listen on 127.0.0.1:1883 and [::1]:1883 only
//! wren-broker -p 1884      the same on port 1884
//! wren-broker -c b.yaml    settings from a YAML file laid out as hbmqtt's
//! wren-broker -v           debug logs (RUST_LOG overrides)
//! ```

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;

use wren::bridge::Bridges;
use wren::broker::{hooks_from_config, Broker, Error};
use wren::config::{BrokerConfig, ListenerKind};

const HELP: &str = "\
wren-broker is an MQTT 3.1 / 3.1.1 broker.

Usage: wren-broker [-c config_file] [-p port] [-v] [-d]

 -c FILE    read the settings from FILE (YAML, laid out as hbmqtt's and amqtt's)
 -p PORT    listen on PORT instead of the configured port (all MQTT listeners)
 -v         verbose: debug logs (RUST_LOG, if set, wins)
 -d         accepted for mosquitto compatibility; the broker stays in the foreground
 --version  print the version and exit
 --help     print this help and exit

With no configuration file the broker listens on 127.0.0.1 and [::1] only, and
lets clients connect without a user name.
";

/// What the command line asks for.
struct Options {
    config: Option<PathBuf>,
    port: Option<u16>,
    verbose: bool,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("wren-broker: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let Some(options) = parse_args()? else {
        return Ok(());
    };
    let default_level = if options.verbose { "debug" } else { "info" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        .init();

    let mut config = match &options.config {
        Some(path) => BrokerConfig::from_yaml_file(path).map_err(|e| e.to_string())?,
        None => BrokerConfig::default(),
    };
    if config
        .listeners
        .iter()
        .all(|listener| listener.bind.ip().is_loopback())
    {
        // As mosquitto 2.0 without a listener: say first that nothing outside this
        // machine can connect.
        log::info!(
            "Starting in local only mode. Connections will only be possible from clients running on this machine."
        );
        if options.config.is_none() {
            log::info!(
                "Create a configuration file which defines a listener to allow remote access."
            );
        }
    }
    if let Some(port) = options.port {
        // An HTTP listener (the dashboard) keeps its own port.
        for listener in &mut config.listeners {
            if !matches!(listener.kind, ListenerKind::Http { .. }) {
                listener.bind.set_port(port);
            }
        }
    }
    log::info!("wren-broker {} starting.", env!("CARGO_PKG_VERSION"));
    let bridge_configs = std::mem::take(&mut config.bridges);
    let broker = start(config)?;
    let bridges = Bridges::start(&broker, &bridge_configs).map_err(|e| e.to_string())?;

    let (stop_tx, stop_rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })
    .map_err(|e| format!("cannot install the signal handler: {e}"))?;
    // Blocks until SIGINT or SIGTERM.
    let _ = stop_rx.recv();
    log::info!("Signal received, shutting down.");
    bridges.shutdown();
    broker.shutdown();
    Ok(())
}

/// Starts the broker. The default IPv6 loopback listener is optional: a machine
/// without IPv6 still gets a broker on 127.0.0.1, with a warning.
fn start(mut config: BrokerConfig) -> Result<Broker, String> {
    // The password file and ACL the configuration names, read once.
    let hooks = hooks_from_config(&config).map_err(|e| e.to_string())?;
    loop {
        let mut builder = Broker::builder(config.clone());
        for hook in &hooks {
            builder = builder.hook(hook.clone());
        }
        match builder.start() {
            Ok(broker) => return Ok(broker),
            Err(Error::Bind {
                listener,
                addr,
                source,
            }) if addr.ip() == IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
                && config.listeners.len() > 1 =>
            {
                log::warn!("Cannot listen on {addr} (listener {listener}): {source}; continuing without it.");
                config.listeners.retain(|l| l.name != listener);
            }
            Err(error) => return Err(error.to_string()),
        }
    }
}

/// `None` when the program is done (after --help or --version).
fn parse_args() -> Result<Option<Options>, String> {
    let mut args = pico_args::Arguments::from_env();
    if args.contains(["-h", "--help"]) {
        print!("{HELP}");
        return Ok(None);
    }
    if args.contains("--version") {
        println!("wren-broker version {}", env!("CARGO_PKG_VERSION"));
        return Ok(None);
    }
    let config = args
        .opt_value_from_os_str("-c", |path| Ok::<_, String>(PathBuf::from(path)))
        .map_err(|e| format!("-c: {e}"))?;
    let port = args
        .opt_value_from_str::<_, u16>("-p")
        .map_err(|e| format!("-p: {e}"))?;
    if port == Some(0) {
        return Err("-p: the port must be between 1 and 65535".into());
    }
    let verbose = args.contains("-v");
    let _daemon = args.contains("-d");
    let rest = args.finish();
    if let Some(unknown) = rest.first() {
        return Err(format!(
            "unknown option '{}' (see wren-broker --help)",
            unknown.to_string_lossy()
        ));
    }
    Ok(Some(Options {
        config,
        port,
        verbose,
    }))
}
