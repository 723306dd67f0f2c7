//! The kernel's own account of every handoff, from tracefs: `--kernel-trace`.
//!
//! lockfair infers barging from a waiting bit a contender raises before its syscall: a proxy.
//! The kernel records the real thing in the `filelock` and `sched` tracepoints. This module
//! records them for one session's contenders only, and rebuilds the handoffs from them.
//!
//! - [`tracefs`]: finds tracefs, mounting it where allowed (and unmounting what it mounted).
//! - [`instance`]: a private tracing instance `instances/lockfair-<pid>`, configured, read, and
//!   removed on every exit path; stale ones of dead processes are swept at the next start.
//! - [`recorder`]: one run's recording, from preparing the instance to reading it back.
//! - [`format`](mod@format), [`text`], [`event`]: the events' `format` files, the `trace` text, typed events.
//! - [`handoff`]: requests, grants, blocks, unlocks, wakeups, barges, wake-to-run latency.
//! - [`figures`]: the `kernel` object of `run --json`.
//! - [`timeline`]: the first milliseconds as one lane per contender, for `timeline.svg`.

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use thiserror::Error;

pub mod event;
pub mod figures;
pub mod format;
pub mod handoff;
pub mod instance;
pub mod recorder;
pub mod text;
pub mod timeline;
pub mod tracefs;

pub use figures::kernel_figures;
pub use recorder::{Capture, Recorder, buffer_kb_for};

/// Why the kernel trace could not be taken. Print it with its sources
/// ([`crate::errors::error_chain`]): the io error or the format's fault is one of them.
#[derive(Debug, Error)]
pub enum TraceError {
    #[error(
        "tracefs is not mounted and only root may mount it: run as root (or have root run `mount -t tracefs nodev {}` and grant tracing rights)",
        tracefs::TRACEFS
    )]
    MountNotAllowed,
    #[error(
        "this kernel has no tracefs (built without CONFIG_TRACING): run without --kernel-trace"
    )]
    NoTracefs,
    #[error("cannot mount tracefs on {path}: {errno}", path = tracefs::TRACEFS, errno = .0)]
    Mount(Errno),
    #[error(
        "kernel tracing is not allowed here ({path}: permission denied): run as root, or with CAP_SYS_ADMIN"
    )]
    NotAllowed { path: PathBuf },
    #[error("cannot {what} {path}", path = .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the trace events' formats")]
    Format(#[from] format::FormatError),
    #[error(transparent)]
    Guard(#[from] tracefs::GuardError),
}

impl TraceError {
    fn io(what: &'static str, path: &Path, source: std::io::Error) -> TraceError {
        TraceError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }

    /// A permission error on tracefs means tracing is not allowed; say that, not `EACCES`.
    fn or_not_allowed(self) -> TraceError {
        match self {
            TraceError::Io { path, source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                TraceError::NotAllowed { path }
            }
            other => other,
        }
    }

    /// True when the trace is impossible on this machine or for this user (as opposed to a
    /// failure mid-run): the run goes on without it, and tests skip.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            TraceError::MountNotAllowed
                | TraceError::NoTracefs
                | TraceError::Mount(_)
                | TraceError::NotAllowed { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::error_chain;

    #[test]
    fn a_failure_prints_its_reason_once_and_a_refusal_says_what_to_do() {
        let io = TraceError::io("open", Path::new("/t/x"), std::io::Error::other("boom"));
        assert_eq!(error_chain(&io), "cannot open /t/x: boom");
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let refused = TraceError::io("open", Path::new("/t/x"), denied).or_not_allowed();
        assert!(refused.is_unavailable());
        assert!(error_chain(&refused).contains("run as root"));
    }
}
