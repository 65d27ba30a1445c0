//! wren-mqtt: MQTT from plain, blocking Rust.
#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod protocol;
pub mod transport;
