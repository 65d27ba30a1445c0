//! wren-mqtt: MQTT from plain, blocking Rust.
//!
//! - [`client`]: connect, publish and subscribe with blocking calls; the library
//!   owns its threads, pings, reconnects and resends.
//! - [`broker`]: an embeddable broker ([`Broker`]), also run by `wren-broker`.
#![warn(missing_docs)]

pub mod broker;
pub mod client;
pub mod config;
pub mod protocol;
pub mod transport;

pub use broker::Broker;
