//! An MQTT broker inside your own program, with a hook that decides who may connect
//! and that watches every message.
//!
//! ```sh
//! cargo run --example embedded_broker
//! # in another terminal:
//! mosquitto_sub -p 1884 -u demo -P demo -t 'demo/#' -v
//! mosquitto_pub -p 1884 -u demo -P demo -t demo/hello -m world
//! ```
//!
//! Stop it with Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;

use wren::broker::{AuthDecision, Broker, ClientInfo, ConnectInfo, Hook, HookError};
use wren::config::BrokerConfig;
use wren::protocol::{ConnectReturnCode, Publish};

/// Lets in the user "demo" with the password "demo", and prints what is published.
struct DemoHook;

impl Hook for DemoHook {
    fn authenticate(&self, connect: &ConnectInfo) -> Result<AuthDecision, HookError> {
        Ok(
            match (connect.username.as_deref(), connect.password.as_deref()) {
                (Some("demo"), Some(b"demo")) => AuthDecision::Allow,
                _ => AuthDecision::Deny(ConnectReturnCode::BadUserNameOrPassword),
            },
        )
    }

    fn on_published(&self, client: &ClientInfo, publish: &Publish) {
        println!(
            "{} published {} bytes on '{}'",
            client.client_id,
            publish.payload.len(),
            publish.topic
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();

    let config = BrokerConfig::with_tcp_listener(SocketAddr::from(([127, 0, 0, 1], 1884)));
    let broker = Broker::builder(config).hook(Arc::new(DemoHook)).start()?;
    println!(
        "Broker listening on {}; Ctrl-C stops it.",
        broker.local_addr()
    );

    let (stop, stopped) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop.send(());
    })?;
    let _ = stopped.recv();

    let stats = broker.stats();
    broker.shutdown();
    println!(
        "Stopped after {:?}: {} messages received, {} sent.",
        stats.uptime, stats.publish_received, stats.publish_sent
    );
    Ok(())
}
