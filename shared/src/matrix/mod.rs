//! `lockfair-client matrix`: the lock-semantics matrix of the seed article, decided by experiment.
//!
//! The seed article judges by eye, from timestamps around a one-second sleep, whether two
//! contenders were serialized. Here the kernel answers: contender A holds an exclusive lock,
//! contender B asks for one *without waiting*, and B's errno (or its success) is the verdict. No
//! sleep decides anything; every wait is bounded.
//!
//! A tour:
//! - [`cells`]: the 32 cells, lock kind × access × concurrency, and their precise definitions.
//! - [`upgrade`]: a shared→exclusive upgrade while another contender waits (flock drops the
//!   lock first; POSIX and OFD convert atomically).
//! - [`close`]: the close pitfall (closing any descriptor drops a process's POSIX locks).
//! - [`shared_mode`]: two shared holders coexist, except with `lockf`, which has no shared mode.
//! - [`kernel_view`]: what `/proc/locks` and `lslocks` print for a live lock of each kind.
//! - [`mandatory`]: the article's mandatory locking (`-o mand`, setgid without group execute),
//!   tried and reported as the kernel answers.
//! - `scratch` (a private temporary directory), `waiter` (a bounded blocking waiter thread) and
//!   `text` (the terminal report) support them.
//!
//! Every experiment uses fresh regular files in one private 0700 directory, removed at the end;
//! the second *process* is `lockfair-client peer` ([`crate::peer`]), killed and reaped on drop.

pub mod cells;
pub mod close;
pub mod kernel_view;
pub mod mandatory;
mod scratch;
pub mod shared_mode;
mod text;
pub mod upgrade;
mod waiter;

use std::path::Path;

use nix::errno::Errno;
use serde::Serialize;
use thiserror::Error;

use crate::locking::LockFamily;
use crate::peer::{PeerError, PeerProcess, PeerRequest};

pub use cells::{Access, Cell, Concurrency};
pub use close::ClosePitfall;
pub use kernel_view::KernelView;
pub use mandatory::{MandatoryAttempt, MandatoryLocking};
pub use shared_mode::SharedMode;
pub use upgrade::{Upgrade, UpgradeRun};

/// Why the matrix could not be measured. A kernel answer is never an error: only a failure to
/// ask the question is.
#[derive(Debug, Error)]
pub enum MatrixError {
    #[error("cannot {what} {path}: {err}")]
    File {
        what: &'static str,
        path: String,
        err: std::io::Error,
    },
    #[error(transparent)]
    Peer(#[from] PeerError),
    #[error("the helper process could not {0}: {1}")]
    Helper(&'static str, Errno),
    #[error("cannot {0}: {1}")]
    Sys(&'static str, Errno),
    #[error("{lock}: {what}")]
    Unexpected { lock: LockFamily, what: String },
}

/// Everything `matrix` measured. Its JSON field names are an interface (issue 6).
#[derive(Clone, Debug, Serialize)]
pub struct MatrixReport {
    /// The running kernel (`uname -r`).
    pub kernel: String,
    /// This process's pid: contender A, and the pid `/proc/locks` shows for its locks.
    pub pid: i32,
    /// One record per cell: `{"lock", "access", "concurrency", "serialized", "errno"}`.
    pub cells: Vec<Cell>,
    /// Shared→exclusive upgrades while another contender waits (`flock`, `posix`, `ofd`).
    pub upgrade: Vec<Upgrade>,
    /// Whether closing an unrelated descriptor of the file drops the lock (all four kinds).
    pub close_pitfall: Vec<ClosePitfall>,
    /// Whether two shared holders coexist (all four kinds).
    pub shared_mode: Vec<SharedMode>,
    /// `/proc/locks` and `lslocks` for a live exclusive lock of each kind.
    pub kernel_view: Vec<KernelView>,
    /// The article's mandatory locking, as this kernel answers it.
    pub mandatory: MandatoryLocking,
}

impl MatrixReport {
    /// The terminal report: the table, then one short paragraph per extra experiment.
    pub fn to_text(&self) -> String {
        text::render(self)
    }

    /// The cell for this lock, access and concurrency.
    pub fn cell(
        &self,
        lock: LockFamily,
        access: Access,
        concurrency: Concurrency,
    ) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|c| c.lock == lock && c.access == access && c.concurrency == concurrency)
    }
}

/// Runs every experiment; `helper` is the `lockfair-client` executable (started as
/// `helper peer` for the second process).
pub fn run_matrix(helper: &Path) -> Result<MatrixReport, MatrixError> {
    let dir = scratch::ScratchDir::create()?;
    Ok(MatrixReport {
        kernel: crate::procinfo::kernel_release().unwrap_or_else(|| "unknown".to_string()),
        pid: std::process::id() as i32,
        cells: cells::measure_all(&dir, helper)?,
        upgrade: upgrade::measure_all(&dir, helper)?,
        close_pitfall: close::measure_all(&dir, helper)?,
        shared_mode: shared_mode::measure_all(&dir, helper)?,
        kernel_view: kernel_view::measure_all(&dir)?,
        mandatory: mandatory::measure(&dir, helper)?,
    })
}

/// Makes a [`MatrixError::File`] for `what` done to `path`.
fn file_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> MatrixError {
    let path = path.display().to_string();
    move |err| MatrixError::File { what, path, err }
}

/// A helper process with `path` open on a description of its own, and that descriptor's slot
/// in the helper: the "other process" of most experiments.
fn helper_opening(helper: &Path, path: &Path) -> Result<(PeerProcess, u32), MatrixError> {
    let mut peer = PeerProcess::spawn(helper)?;
    let open = PeerRequest::Open {
        path: scratch::utf8(path)?,
    };
    let slot = peer
        .slot(&open, None)?
        .map_err(|e| MatrixError::Helper("open the file", e))?;
    Ok((peer, slot))
}

/// The errno's symbolic name (`EAGAIN`), as the reports print it.
pub(crate) fn errno_name(e: Errno) -> String {
    format!("{e:?}")
}

/// A refusal because another owner holds a conflicting lock: `EAGAIN` (= `EWOULDBLOCK`, flock and
/// F_SETLK on Linux) or `EACCES` (what POSIX also allows F_SETLK and lockf to say).
pub(crate) fn is_conflict(e: Errno) -> bool {
    matches!(e, Errno::EAGAIN | Errno::EACCES)
}

/// The outcome of a non-blocking request that must either be granted or refused for a conflict:
/// `Ok(None)` granted, `Ok(Some(name))` refused, `Err` for anything else (the experiment broke).
pub(crate) fn try_outcome(
    lock: LockFamily,
    what: &str,
    result: Result<(), Errno>,
) -> Result<Option<String>, MatrixError> {
    match result {
        Ok(()) => Ok(None),
        Err(e) if is_conflict(e) => Ok(Some(errno_name(e))),
        Err(e) => Err(MatrixError::Unexpected {
            lock,
            what: format!(
                "{what} failed with {} instead of a grant or a refusal",
                errno_name(e)
            ),
        }),
    }
}
