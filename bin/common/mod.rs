//! What `wren-pub` and `wren-sub` share: the command line they both accept
//! ([`cli`], [`url`]), connecting and reporting a failure ([`connect`]), exit codes
//! ([`exit`]) and the `-d` packet log ([`debug`]). What belongs to one tool alone
//! lives in that tool's own folder, `bin/wren-pub/` or `bin/wren-sub/`.
//!
//! Both tools take mosquitto_pub / mosquitto_sub's options with the same letters,
//! defaults, messages and exit codes, so a script written for mosquitto runs with
//! wren by changing the program name. mosquitto parses one token at a time, stops at
//! the first problem and names the option in its message; [`cli`] does the same.
//! Each tool adds its own options through [`cli::ToolOptions`].

pub mod cli;
pub mod connect;
pub mod debug;
pub mod exit;
pub mod url;
