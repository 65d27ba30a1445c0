//! `-d`: print each packet sent and received, as mosquitto's `-d` does.
//!
//! The client library logs every packet at debug level under the target
//! `wren::client::packets`, already in mosquitto's words
//! (`Client sub-1 sending SUBSCRIBE (Mid: 1, Topic: a/#, QoS: 0, Options: 0x00)`).
//! This logger prints exactly those lines on stdout, where mosquitto prints them,
//! and nothing else, so `-d` output stays comparable line for line.

use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// The log target the client library uses for packet lines.
pub const PACKET_TARGET: &str = "wren::client::packets";

struct PacketPrinter;

impl Log for PacketPrinter {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= Level::Debug && metadata.target().starts_with(PACKET_TARGET)
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            let mut out = std::io::stdout().lock();
            // A closed stdout only costs the debug line; the tool carries on.
            let _ = writeln!(out, "{}", record.args());
            let _ = out.flush();
        }
    }

    fn flush(&self) {
        let _ = std::io::stdout().flush();
    }
}

static PRINTER: PacketPrinter = PacketPrinter;

/// Installs the packet printer as the process's logger. Call once, before
/// connecting; a second call changes nothing.
pub fn install() {
    if log::set_logger(&PRINTER).is_ok() {
        log::set_max_level(LevelFilter::Debug);
    }
}

/// Sets up the tool's logging: with `-d` the packet printer, which keeps stdout
/// comparable with mosquitto's; without it, the usual `RUST_LOG` logger on
/// stderr, silent unless `RUST_LOG` asks (mosquitto's tools print nothing more).
pub fn init(debug: bool) {
    if debug {
        install();
    } else {
        let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("off"))
            .try_init();
    }
}
