//! wren-mqtt: MQTT from plain, blocking Rust.
//!
//! - [`client`]: connect, publish and subscribe with blocking calls; the library
//!   owns its threads, pings, reconnects and resends.
//! - [`broker`]: an embeddable broker ([`Broker`]), also run by `wren-broker`.
//! - [`auth`]: password files and access control lists, in mosquitto's and
//!   hbmqtt's formats, for checking who may connect, publish and subscribe.
#![warn(missing_docs)]

pub mod auth;
pub mod broker;
pub mod client;
pub mod config;
pub mod protocol;
pub mod transport;

pub use broker::Broker;
