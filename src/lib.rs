//! wren-mqtt: MQTT from plain, blocking Rust.
//!
//! - [`client`]: connect, publish and subscribe with blocking calls; the library
//!   owns its threads, pings, reconnects and resends.
#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod protocol;
pub mod transport;
