//! `crash --stop`: the holder is stopped (SIGSTOP) inside its critical section instead of
//! killed: a debugger, a frozen VM or an NFS stall look the same to everyone else.
//!
//! Per variant, the holder takes the lock or holds the turn, a survivor starts waiting, and the
//! holder is stopped. A stopped process exits nothing and closes nothing, so no mechanism has
//! anything to tell the survivor: a pipe's reader gets no EOF while the writer merely sleeps, a
//! PI futex is handed on only at its owner's exit. The survivor waits with its own deadline
//! (`--limit`, kept by the driver, which also gave the killed holder's survivor its limit);
//! when it passes, the driver asks the kernel who holds what the survivor waits for
//! ([`name_holder`]: `/proc/locks`, `F_GETLK`, `F_OFD_GETLK`, fdinfo, the lock word's owner
//! TID) and words the survivor's error from the answer. Then the holder gets SIGCONT and both
//! children are killed and reaped, on every path out (a guard continues the holder on drop).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::child::{ANSWER_TIMEOUT, ExperimentChild, Report};
use super::{
    Cell, CrashError, CrashOptions, Description, Pair, Skipped, cells, run_each, start_pair,
};
use crate::procinfo::holder::{
    HolderName, KernelSays, Named, deadline_error, lock_words, name_holder, process_state,
};
use crate::sys::clock::monotonic_ns;
use crate::variant::Variant;

/// One variant's answer. The field names are `crash --stop --json`'s interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopCell {
    pub variant: Variant,
    pub holder_description: Description,
    /// The stopped holder's pid, as the driver that started it knows it: the truth the
    /// kernel's answers are held against.
    pub holder_pid: i32,
    /// Did the survivor learn anything (an error, end-of-file) while the holder was stopped?
    pub noticed: bool,
    /// How long after the SIGSTOP the survivor got the lock or the turn (0: it never had to
    /// wait); null: not within its deadline.
    pub acquired_after_ns: Option<u64>,
    /// How long the survivor waited, from the SIGSTOP to its answer or its deadline.
    pub waited_ns: u64,
    /// What happened, in one line.
    pub how: String,
    /// The holder as the kernel's records name it at the deadline; null: none names it.
    pub holder: Option<HolderName>,
    /// What each of the kernel's records said.
    pub kernel: KernelSays,
    /// The error the survivor gives when its deadline passes (null if it got an answer).
    pub deadline_error: Option<String>,
}

/// Every cell of one `crash --stop` run, and the counts the docs quote.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StopReport {
    /// The survivor's deadline, in seconds (`--limit`).
    pub limit_s: f64,
    /// The kernel that answered (`uname -r`).
    pub kernel_release: Option<String>,
    pub cells: Vec<StopCell>,
    pub skipped: Vec<Skipped>,
    pub summary: StopSummary,
}

/// How many cells did what.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopSummary {
    pub cells: usize,
    /// Cells whose survivor was told anything while the holder was stopped.
    pub noticed: usize,
    /// Cells whose survivor got the lock or the turn within its deadline.
    pub acquired: usize,
    /// Cells where the kernel named the stopped holder's process.
    pub named: usize,
}

impl StopSummary {
    fn of(cells: &[StopCell]) -> StopSummary {
        let count = |f: fn(&StopCell) -> bool| cells.iter().filter(|c| f(c)).count();
        StopSummary {
            cells: cells.len(),
            noticed: count(|c| c.noticed),
            acquired: count(|c| c.acquired_after_ns.is_some()),
            named: count(|c| c.holder.as_ref().is_some_and(|h| h.pid == c.holder_pid)),
        }
    }
}

/// Runs one cell per variant (its first holder-death case: `own` where it has one); `progress`
/// sees each as it comes.
pub fn stop(
    opts: &CrashOptions,
    mut progress: impl FnMut(&StopCell),
) -> Result<StopReport, CrashError> {
    let mut chosen = cells(false, &opts.variants, &opts.descriptions);
    chosen.dedup_by_key(|c| c.variant);
    let (cells, skipped) = run_each(chosen, |cell| stop_cell(opts, cell), &mut progress)?;
    Ok(StopReport {
        limit_s: opts.limit.as_secs_f64(),
        kernel_release: crate::procinfo::kernel_release(),
        summary: StopSummary::of(&cells),
        cells,
        skipped,
    })
}

/// One cell: holder in, survivor waiting, holder stopped; what the survivor got by its
/// deadline, and who the kernel says holds it then.
fn stop_cell(opts: &CrashOptions, cell: &Cell) -> Result<StopCell, CrashError> {
    let Pair {
        arena,
        holder,
        mut survivor,
        kept,
        early,
    } = start_pair(opts, cell)?;
    // Dropped before the children: the holder is continued, then killed and reaped.
    let stopped = Stopped::stop(&holder)?;
    let stop_ns = monotonic_ns();
    let report = match early {
        Some(r) => Some(r),
        None => survivor.next(opts.limit)?,
    };
    let waited_ns = monotonic_ns().saturating_sub(stop_ns);
    let owner_tid = cell.variant.spec().death.owner_tid.map(|r| r(&arena));
    let named = name_holder(arena.file(), owner_tid);
    drop(stopped);
    drop((survivor, kept));
    if let Some(Report::Failed(why)) = report {
        return Err(CrashError::ChildFailed(why));
    }
    Ok(judge(
        cell,
        holder.pid(),
        report,
        (stop_ns, waited_ns, opts.limit),
        named,
    ))
}

/// The cell's answer from the survivor's report (`None`: nothing by its `deadline`, which its
/// error then names: the wait it was willing to make, not the driver's measured overshoot).
fn judge(
    cell: &Cell,
    holder_pid: i32,
    report: Option<Report>,
    (stop_ns, waited_ns, deadline): (u64, u64, Duration),
    named: Named,
) -> StopCell {
    let timed_out = report.is_none();
    let (noticed, acquired_after_ns, how) = match report {
        Some(Report::Got { at_ns, .. }) => {
            // A survivor that got in before the stop (it was never excluded) counts 0.
            let after = at_ns.saturating_sub(stop_ns);
            let how = if after == 0 {
                "got it at once: it never excluded the survivor".to_string()
            } else {
                "got it although the holder was stopped".to_string()
            };
            (false, Some(after), how)
        }
        Some(Report::Eof { .. }) => (
            true,
            None,
            "EOF: told, while the holder was only stopped".into(),
        ),
        Some(Report::Refused { errno, .. }) => {
            let errno = nix::errno::Errno::from_raw(errno);
            (true, None, format!("the wait failed: {}", errno.desc()))
        }
        _ => (false, None, waited_out(&named)),
    };
    let deadline_error = timed_out.then(|| {
        let what = wait_words(cell.variant, &named.says);
        deadline_error(deadline, &what, &named)
    });
    StopCell {
        variant: cell.variant,
        holder_description: cell.description,
        holder_pid,
        noticed,
        acquired_after_ns,
        waited_ns,
        how,
        holder: named.holder,
        kernel: named.says,
        deadline_error,
    }
}

fn waited_out(named: &Named) -> String {
    let whom = if named.holder.is_some() {
        "the kernel names the stopped holder"
    } else {
        "and nothing names the holder"
    };
    format!("waited out its deadline, never told: {whom}")
}

/// What the survivor waits for, for its error line.
fn wait_words(variant: Variant, says: &KernelSays) -> String {
    if let Some(lock) = lock_words(says) {
        return format!("{lock} on the arena");
    }
    if says.futex_owner_tid.is_some() {
        return format!("the {variant} lock word in the arena");
    }
    format!("the {variant} turn")
}

/// A holder stopped with SIGSTOP until this is dropped, then continued (SIGCONT).
#[derive(Debug)]
struct Stopped {
    pid: nix::unistd::Pid,
}

impl Stopped {
    /// Stops `holder` and waits (bounded) until the kernel shows it stopped (`T`).
    fn stop(holder: &ExperimentChild) -> Result<Stopped, CrashError> {
        use nix::sys::signal::{Signal, kill};
        let pid = nix::unistd::Pid::from_raw(holder.pid());
        kill(pid, Signal::SIGSTOP).map_err(|errno| CrashError::Sys {
            what: "stop the holder",
            errno,
        })?;
        let stopped = Stopped { pid };
        let give_up = monotonic_ns() + ANSWER_TIMEOUT.as_nanos() as u64;
        while process_state(holder.pid()) != Some('T') {
            if monotonic_ns() > give_up {
                return Err(CrashError::Timeout(ANSWER_TIMEOUT));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(stopped)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGCONT);
    }
}
