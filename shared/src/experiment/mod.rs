//! The client's work: run one session against a server, compare every variant with a private
//! server, and show by experiment why the seed has no mutual exclusion.

pub mod bench;
pub mod compare;
pub mod contender;
pub mod demo;
mod kernel;
pub mod probe;
pub mod progress;
pub mod run;
pub mod spawn;
pub mod unequal;
pub mod wakeup;

pub use run::{RunError, RunOptions, Shape, run};
