//! lockfair measures how Linux hands a file lock (or a turn) from one process to another.
//!
//! A tour, from the bottom up (each layer uses only those below it):
//! 1. [`sys`]: the thin syscall wrappers, the only `unsafe` code; it knows no lockfair type
//!    (among them `sys::out_dir`: output folders written relative to a descriptor, never through
//!    a symlink). Beside it, helpers with no lockfair knowledge either: [`command`] (another
//!    program, with a deadline), [`errors`] (one-line error chains), [`text`] (terminal tables and
//!    durations), [`runtime_dir`] (where sockets and lock files live, and that nobody else could
//!    have put a file there), [`histwire`] (bounded histogram transfer), [`tally`] (HdrHistogram's
//!    buckets as a flat counter, for the hot loops).
//! 2. [`arena`]: the sealed memfd the contenders map; its header holds the turn, the overlap
//!    detector and the stop word, and its variant region the words one variant lays out itself. [`measure`]: what one contender records. [`order`]: bypass,
//!    LWSS and MTTR from the arena's grant log (who got the lock in what order). [`placement`]:
//!    which CPUs. [`locking`]: the four file-lock families. [`procinfo`]: what `/proc` says.
//! 3. [`variant`]: one file per handoff mechanism (file locks, eventfd, futex, pipe, ticket, …),
//!    all behind the `Handoff` trait. Each file declares all its mechanism is in a `Spec` (what
//!    it supports, its descriptors and arena words, its family, what its holder's death does,
//!    its `bench` yardstick); one registry lists the variants, and the layers above ask the spec.
//! 4. [`session`]: the two round loops (turns, free), the start line and the watchdog, once for
//!    every variant. [`outcome`]: the result model (a run, a comparison) and the figures computed
//!    from it (among them `outcome::opportunity`: lock opportunity, SCL's hold + idle time), below
//!    both the code that fills it and the code that renders it.
//! 5. [`proto`] and [`channel`]: versioned, length-checked datagrams over a Unix socket, with the
//!    arena passed as SCM_RIGHTS; [`admission`]: the checks every side that answers a hello
//!    makes; [`child`]: helper processes of our own, on a socketpair, reaped on drop.
//! 6. The programs' logic: [`server`]; [`experiment`] (the client's `run`, `compare`, `bench`,
//!    `probe`; `experiment::unequal`: per-contender `--hold`, `--think`, `--nice`); [`peer`] (a helper that locks on request); [`matrix`] (the lock semantics
//!    experiments); [`compat`] (the blog's own protocol, so its unchanged programs can face
//!    lockfair); [`ktrace`] (the kernel's account, from tracefs); [`crash`](mod@crash) (what every
//!    mechanism does when the holder dies inside its critical section, and the way out).
//! 7. [`report`]: renders the result model (terminal, Markdown, JSON, `.hgrm`, SVG, HTML).
//!
//! The binaries (`lockfair-client`, `lockfair-server`) only parse their arguments and call the
//! entry points re-exported here.
#![deny(missing_debug_implementations)]

/// A hash of this library's sources. Both binaries print it (`--build-id`), so `compare` and
/// `bench` refuse a `lockfair-server` linked against other sources.
pub const BUILD_ID: &str = env!("LOCKFAIR_BUILD_ID");

pub mod admission;
pub mod arena;
pub mod channel;
pub mod child;
pub mod command;
pub mod compat;
pub mod crash;
pub mod errors;
pub mod experiment;
pub mod histwire;
pub mod ktrace;
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
pub mod tally;
pub mod text;
pub mod variant;

pub use arena::Arena;
pub use crash::{CrashOptions, CrashReport, crash};
pub use experiment::compare::{CompareOptions, compare};
pub use experiment::{RunError, RunOptions, Shape, run};
pub use outcome::{CompareReport, RunJson, RunReport};
pub use placement::Placement;
pub use server::{ServerConfig, serve};
pub use variant::{Mode, Variant};
