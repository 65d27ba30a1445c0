//! Configuration of the broker and the client, as plain Rust values.
//!
//! Both can be built in code or read from YAML files laid out as hbmqtt and amqtt lay
//! theirs out, so their users can bring their files along. All YAML handling lives in
//! this module (the rest of the crate sees only the typed values), so the YAML library
//! can be replaced without touching anything else.
//!
//! Reading a file is strict about values and lenient about keys:
//!
//! - a value that cannot be used is an error naming the file, the line and the key:
//!   `broker.yaml:7: listeners.default.max-connections: expected a number, found "many"`;
//! - a key that means nothing here is a warning naming the key
//!   (`listeners.my-tcp.bnd: unknown key, ignored`), logged and returned in
//!   [`Loaded::warnings`]; so are keys hbmqtt and amqtt know that wren-mqtt does not
//!   act on, such as `plugins`.
//!
//! The files are YAML 1.2, with one allowance for files written for PyYAML: where a
//! setting is a yes/no, `on`, `off`, `yes` and `no` are read as booleans
//! (`ssl: on`).
//!
//! `examples/broker.yaml` and `examples/client.yaml` in the repository are commented
//! samples that show every key.
//!
//! Where a setting has a type of its own in the client, the client settings use it:
//! `will:` reads into a [`wren::client::Will`](crate::client::Will) and each entry of
//! `topics:` into a [`wren::client::TopicDefaults`](crate::client::TopicDefaults), so
//! there is one name for each.
//!
//! Layout of the module: `broker.rs` and `client.rs` hold the typed settings,
//! `yaml.rs` turns text into a plain tree (the only file that knows the YAML
//! library), `load/` reads that tree into the typed settings, checking every value,
//! and `error.rs` says what went wrong.

mod bridge;
mod broker;
mod client;
mod error;
mod load;
mod yaml;

pub use bridge::{BridgeConfig, BridgeTopic, Direction};
pub use broker::{
    AuthConfig, BrokerConfig, Limits, ListenerConfig, ListenerKind, PersistenceConfig, SysConfig,
    TlsConfig, TopicCheckConfig,
};
pub use client::{BrokerConnection, ClientConfig};
pub use error::{ConfigError, ConfigWarning, WarningKind};
pub use load::Loaded;
