//! wren-mqtt: MQTT from plain, blocking Rust.
//!
//! - [`protocol`]: the MQTT 3.1 / 3.1.1 packets and topic rules, sans I/O.
//! - [`config`]: settings as plain values.
//! - [`broker`]: an embeddable broker ([`Broker`]), also run by `wren-broker`.
#![warn(missing_docs)]

pub mod broker;
pub mod config;
pub mod protocol;
pub mod transport;

pub use broker::Broker;
