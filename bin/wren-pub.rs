//! `wren-pub`: publish MQTT messages, as mosquitto_pub does.

// Not all of it is reached until the tools connect to a broker.
#[allow(dead_code)]
mod common;
#[allow(dead_code)]
#[path = "common/publisher/mod.rs"]
mod publisher;

use std::process::ExitCode;

use common::cli::{self, Command, ToolOptions};
use common::exit;
use publisher::options::PubOptions;
use publisher::usage;

fn main() -> ExitCode {
    let (_connect, _options) = match cli::parse::<PubOptions>(std::env::args_os().skip(1)) {
        Ok(Command::Run(connect, options)) => (connect, options),
        Ok(Command::Help) => {
            print!("{}", usage::usage());
            return exit::code(exit::FAILURE);
        }
        Ok(Command::Version) => {
            print!("{}", usage::version());
            return exit::code(exit::FAILURE);
        }
        Err(error) => {
            eprint!("{}", error.render(PubOptions::NAME));
            return exit::code(exit::FAILURE);
        }
    };
    exit::code(exit::SUCCESS)
}
