//! The kernel's own account of every handoff, from tracefs: `--kernel-trace`.
//!
//! lockfair infers barging from a waiting bit a contender raises before its syscall: a proxy.
//! The kernel records the real thing in the `filelock` and `sched` tracepoints. This module
//! records them for one session's contenders only, and rebuilds the handoffs from them.
//!
//! - [`tracefs`]: finds tracefs, mounting it where allowed (and unmounting what it mounted).
//! - [`instance`]: a private tracing instance `instances/lockfair-<pid>`, configured, read, and
//!   removed on every exit path; stale ones of dead processes are swept at the next start.
//! - [`format`], [`text`], [`event`]: the events' `format` files, the `trace` text, typed events.
//! - [`handoff`]: requests, grants, blocks, unlocks, wakeups, barges, wake-to-run latency.
//! - [`timeline`]: the first milliseconds as one lane per contender, for `timeline.svg`.

pub mod event;
pub mod format;
pub mod handoff;
pub mod text;
