//! Warnings reach the log as well as the caller.
//!
//! In its own test binary because a process has one logger.

use std::sync::Mutex;

use log::{Level, Log, Metadata, Record};
use wren::config::BrokerConfig;

struct Collect(Mutex<Vec<(Level, String)>>);

impl Log for Collect {
    fn enabled(&self, _: &Metadata) -> bool {
        true
    }
    fn log(&self, record: &Record) {
        if let Ok(mut lines) = self.0.lock() {
            lines.push((record.level(), record.args().to_string()));
        }
    }
    fn flush(&self) {}
}

static LOGGER: Collect = Collect(Mutex::new(Vec::new()));

#[test]
fn warnings_are_logged_at_warn_level() {
    log::set_logger(&LOGGER).expect("the only logger in this test binary");
    log::set_max_level(log::LevelFilter::Trace);

    let config = BrokerConfig::from_yaml_str(
        "listeners:\n  a:\n    bind: 127.0.0.1:1883\n    bnd: oops\n",
        "broker.yaml",
    )
    .expect("loads");
    assert_eq!(config.listeners.len(), 1);

    let lines = LOGGER.0.lock().expect("not poisoned").clone();
    assert!(
        lines.contains(&(
            Level::Warn,
            "broker.yaml:4: listeners.a.bnd: unknown key, ignored".to_owned()
        )),
        "{lines:?}"
    );
}
