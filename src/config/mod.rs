//! Configuration of the broker and the client, as plain Rust values.
//!
//! Both can be built in code or read from YAML files laid out as hbmqtt and amqtt lay
//! theirs out, so their users can bring their files along. All YAML handling lives in
//! this module (the rest of the crate sees only the typed values), so the YAML library
//! can be replaced without touching anything else.

mod broker;

pub use broker::{
    AuthConfig, BrokerConfig, Limits, ListenerConfig, ListenerKind, SysConfig, TlsConfig,
    TopicCheckConfig,
};
