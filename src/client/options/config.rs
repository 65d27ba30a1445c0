//! Options from hbmqtt-style client settings: [`ClientOptions::from_config`] and
//! [`ClientOptions::apply_config`].

use super::{ClientOptions, Reconnect};
use crate::client::Error;
use crate::config::ClientConfig;
use crate::transport::ClientTls;

impl ClientOptions {
    /// Options from hbmqtt-style client settings ([`ClientConfig`], read from YAML
    /// with [`ClientConfig::from_yaml_file`]): the broker from `broker.uri`, and
    /// `keep_alive`, `ping_delay`, `default_qos`, `default_retain`, `topics`,
    /// `auto_reconnect`, `reconnect_max_interval`, `reconnect_retries`,
    /// `cleansession` and `will` with hbmqtt's meaning.
    ///
    /// ```
    /// use wren::client::{ClientOptions, QoS};
    /// use wren::config::ClientConfig;
    ///
    /// let config = ClientConfig::from_yaml_str(
    ///     "broker:\n  uri: mqtt://127.0.0.1:1883\ndefault_qos: 1\ntopics:\n  status: {retain: true}\n",
    ///     "client.yaml",
    /// )?;
    /// let options = ClientOptions::from_config(&config)?;
    /// let status = options.defaults_for("status");
    /// assert_eq!((status.qos, status.retain), (QoS::AtLeastOnce, true));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// TLS comes from `broker.cafile`, `broker.cadata`, `certfile`, `keyfile` and
    /// `check_hostname`. Fails when `broker.uri` is missing or invalid, and when
    /// `broker.capath` is given (see [`apply_config`](Self::apply_config)).
    pub fn from_config(config: &ClientConfig) -> Result<ClientOptions, Error> {
        let uri = config.broker.uri.as_deref().ok_or_else(|| {
            Error::InvalidOptions("the client settings name no broker (broker: uri:)".into())
        })?;
        ClientOptions::from_url(uri)?.apply_config(config)
    }

    /// Takes hbmqtt-style client settings on top of these options, as
    /// [`from_config`](Self::from_config) does, except that `broker.uri` may be
    /// missing: when given, it replaces the broker (transport, host, port, WebSocket
    /// path, user name and password); otherwise the broker stays as it is. The
    /// other settings, TLS included, replace the ones already set.
    ///
    /// ```
    /// use std::time::Duration;
    /// use wren::client::ClientOptions;
    /// use wren::config::ClientConfig;
    ///
    /// let config = ClientConfig::from_yaml_str("keep_alive: 30\n", "client.yaml")?;
    /// let options = ClientOptions::new("broker.example", 1884).apply_config(&config)?;
    /// assert_eq!((options.host(), options.port()), ("broker.example", 1884));
    /// assert_eq!(options.keep_alive(), Duration::from_secs(30));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// Fails when `broker.uri` is invalid, or when `broker.capath` names a directory
    /// of CA certificates, which wren-mqtt cannot read yet: ignoring it would trust
    /// other authorities than the settings say.
    pub fn apply_config(mut self, config: &ClientConfig) -> Result<ClientOptions, Error> {
        if let Some(uri) = &config.broker.uri {
            let broker = ClientOptions::from_url(uri)?;
            self.kind = broker.kind;
            self.host = broker.host;
            self.port = broker.port;
            self.websocket_path = broker.websocket_path;
            self.username = broker.username;
            self.password = broker.password;
        }
        if config.broker.capath.is_some() {
            return Err(Error::InvalidOptions(
                "capath (a directory of CA certificates) is not supported yet; use cafile".into(),
            ));
        }
        let mut options = self
            .with_keep_alive(config.keep_alive)
            .with_ping_delay(config.ping_delay)
            .with_clean_session(config.clean_session)
            .with_default_qos(config.default_qos)
            .with_default_retain(config.default_retain)
            .with_reconnect(Reconnect {
                enabled: config.auto_reconnect,
                max_interval: config.reconnect_max_interval,
                retries: config.reconnect_retries,
            });
        for (topic, defaults) in &config.topics {
            options = options.with_topic_defaults(topic.clone(), defaults.qos, defaults.retain);
        }
        options.tls = ClientTls {
            ca_file: config.broker.cafile.clone(),
            ca_data: config.broker.cadata.clone(),
            client_cert: config.certfile.clone().zip(config.keyfile.clone()),
            // hbmqtt's check_hostname: false is for test brokers; native-tls can
            // only skip every check at once.
            insecure: !config.check_hostname,
            ..ClientTls::default()
        };
        if let Some(will) = &config.will {
            options = options.with_will(will.clone());
        }
        Ok(options)
    }
}
