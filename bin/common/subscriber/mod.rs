//! The parts of `wren-sub` that are its own: its options, its help text and how it
//! prints messages.

pub mod clock;
pub mod filter;
pub mod json;
pub mod options;
pub mod output;
pub mod signals;
pub mod usage;
