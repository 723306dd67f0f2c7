//! Turning measurements into things people and programs read.

pub mod table;

pub use table::{Table, fmt_ns};
