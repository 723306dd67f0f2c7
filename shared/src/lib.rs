//! lockfair measures how Linux hands a file lock (or a turn) from one process to another.
//!
//! A tour, from the bottom up:
//! - [`sys`]: the thin syscall wrappers, the only `unsafe` code.
//! - [`arena`]: the sealed memfd both sides map; its header holds the turn, the overlap detector
//!   and the payload.
//! - [`order`]: bypass, LWSS and MTTR from the arena's grant log (who got the lock in what order).
//! - [`proto`] and [`channel`]: versioned, length-checked datagrams over a Unix socket, with the
//!   arena passed as SCM_RIGHTS.
//! - [`variant`]: one file per handoff mechanism (file locks, eventfd, futex, pipe), all behind
//!   one trait.
//! - [`session`]: the round loop, the measurements and the watchdog, once for every variant.
//! - [`admission`]: the checks every side that answers a hello makes, word for word the same.
//! - [`server`] and [`client`]: the two programs' logic; the binaries only parse arguments.
//! - [`compat`]: `--seed-compat`, the seed blog's own protocol (a bare `CACHEDFILE HELLO`, a
//!   64-byte memfd, the turn in the file offset), so its unchanged programs can face lockfair.
#![deny(missing_debug_implementations)]

/// A hash of this library's sources. Both binaries print it (`--build-id`), so tests can refuse
/// to run against a binary that was linked against other sources.
pub const BUILD_ID: &str = env!("LOCKFAIR_BUILD_ID");

pub mod admission;
pub mod arena;
pub mod channel;
pub mod child;
pub mod client;
pub mod command;
pub mod compat;
pub mod errors;
pub mod histwire;
pub mod locking;
pub mod matrix;
pub mod measure;
pub mod order;
pub mod outcome;
pub mod peer;
pub mod placement;
pub mod procinfo;
pub mod proto;
pub mod report;
pub mod runtime_dir;
pub mod server;
pub mod session;
pub mod sys;
pub mod text;
pub mod variant;
