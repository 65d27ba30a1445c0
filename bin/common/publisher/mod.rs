//! The parts of `wren-pub` that are its own: its options, its help text and where
//! its messages come from.

pub mod input;
pub mod options;
pub mod usage;
