//! hbmqtt's `--config FILE`: finding it among the arguments, and taking its
//! settings as defaults that the command line overrides.

use std::ffi::OsString;
use std::path::PathBuf;

use wren::client::ClientOptions;
use wren::config::ClientConfig;
use wren::protocol::TopicName;

use super::{ArgError, Parser, ToolOptions, WillArgs};

/// The file named by `--config` or `--config-file`, looked for before the real
/// parse so that its settings can be overridden by every other option.
pub(super) fn config_file(argv: &[OsString]) -> Result<Option<PathBuf>, ArgError> {
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

impl<T: ToolOptions> Parser<T> {
    /// Takes the settings of an hbmqtt client file as defaults.
    pub(super) fn apply_config(&mut self, path: &std::path::Path) -> Result<(), ArgError> {
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
            c.host = options.host().to_owned();
            c.port = Some(options.port());
            c.scheme = options.transport();
            c.websocket_path = options
                .transport()
                .is_websocket()
                .then(|| options.websocket_path().to_owned());
            c.username = options.username().map(str::to_owned);
            c.password = options.password().map(<[u8]>::to_vec);
        }
        let tls = options.tls();
        c.tls.ca_file = tls.ca_file.clone();
        c.tls.ca_data = tls.ca_data.clone();
        c.tls.insecure = tls.insecure;
        // Each on its own, so that one without the other is refused as on the
        // command line.
        c.tls.cert = config.certfile.clone();
        c.tls.key = config.keyfile.clone();
        c.keep_alive = u16::try_from(options.keep_alive().as_secs()).unwrap_or(u16::MAX);
        c.clean_session = config.clean_session;
        c.qos = config.default_qos;
        c.reconnect = Some(options.reconnect());
        if let Some(will) = &config.will {
            c.will = WillArgs {
                topic: Some(TopicName::new(will.topic.clone()).map_err(|_| {
                    ArgError::line(format!(
                        "--config: Invalid will topic '{}', does it contain '+' or '#'?",
                        will.topic
                    ))
                })?),
                payload: Some(will.payload.to_vec()),
                qos: will.qos,
                retain: will.retain,
            };
        }
        self.tool.apply_config(&config);
        Ok(())
    }
}
