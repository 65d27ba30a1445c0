//! wren-mqtt: MQTT from plain, blocking Rust.
#![warn(missing_docs)]

pub mod config;
pub mod protocol;
pub mod transport;
