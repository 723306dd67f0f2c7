//! Atomic mode switch: a shared→exclusive upgrade while another contender waits.
//!
//! Holder H (a helper process, its own open of the file) holds a shared lock. Waiter W (a thread
//! of this process, its own open) asks for an exclusive lock and really waits: the experiment
//! goes on only once `/proc/locks` lists W's request as blocked (a `->` line). Then H asks for
//! exclusive without waiting, and we look at what the kernel did, in two runs:
//!
//! - `alone`: H is the only holder. The upgrade is granted at once for every kind; W keeps
//!   waiting. (For flock this is not atomicity: the kernel drops H's shared lock and takes the
//!   exclusive one within one hold of the inode's lock list spinlock, so W, though woken, finds
//!   the exclusive lock when it runs.)
//! - `beside_reader`: a second reader R (another helper process) also holds a shared lock, so
//!   the upgrade cannot be granted and is refused. flock has already dropped H's shared lock by
//!   then (`flock(2)`: "the existing lock is first removed, and then a new lock is established"):
//!   H is left with nothing, and once R unlocks, W gets in. POSIX and OFD locks convert
//!   atomically: the refused request leaves H's shared lock in place, and W still waits behind
//!   it after R is gone.
//!
//! Decisions come from the kernel's state, never from a sleep: after each step we poll (bounded)
//! until either W's request returned or `/proc/locks` lists it as blocked again, which is stable
//! because nobody releases anything meanwhile. `lockf` has no shared mode and is left out.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::scratch::ScratchDir;
use super::waiter::{POLL, Waiter};
use super::{MatrixError, errno_name, try_outcome};
use crate::locking::LockFamily;
use crate::peer::{PeerProcess, PeerRequest};
use crate::procinfo::{ProcLock, lock_file_id, proc_locks_for_id};
use crate::sys::locks::LockMode;

/// The kinds that have a shared mode to upgrade from.
pub const KINDS: [LockFamily; 3] = [LockFamily::Flock, LockFamily::Posix, LockFamily::Ofd];

/// How long any single state may take to show up. Only a broken kernel or a stuck helper gets
/// near it (each wait returns as soon as the state shows), so it is generous: on a loaded 2-CPU
/// machine a thread can wait seconds for a CPU, and a miss would be reported as a finding.
const DEADLINE: Duration = Duration::from_secs(10);

/// One run of the upgrade experiment.
#[derive(Clone, Debug, Serialize)]
pub struct UpgradeRun {
    /// H, the helper process that holds the shared lock and upgrades.
    pub holder_pid: i32,
    /// R, the second reader, in the `beside_reader` run.
    pub reader_pid: Option<i32>,
    /// `/proc/locks` once W's exclusive request is listed as blocked.
    pub proc_locks_while_waiting: Vec<ProcLock>,
    /// H's non-blocking exclusive request: `null` granted, else the errno.
    pub upgrade_errno: Option<String>,
    /// `/proc/locks` once the upgrade's effect settled (R still holding, if present).
    pub proc_locks_after_upgrade: Vec<ProcLock>,
    /// Whether H still held a lock (its shared one, or the exclusive one) after the request.
    pub holder_kept_lock: bool,
    /// Whether W got the lock before H released anything (in `beside_reader`: once R left).
    pub waiter_got_in: bool,
    /// Whether W was granted by the end (once H unlocked, if not before): it was a real waiter.
    pub waiter_granted: bool,
}

/// The upgrade experiment for one lock kind.
#[derive(Clone, Debug, Serialize)]
pub struct Upgrade {
    pub lock: LockFamily,
    /// H is the only holder.
    pub alone: UpgradeRun,
    /// H shares the lock with a second reader R, so the upgrade must be refused.
    pub beside_reader: UpgradeRun,
    /// The verdict: in both runs H kept a lock through its upgrade request and W never got in
    /// before H let go.
    pub atomic: bool,
}

pub(super) fn measure_all(dir: &ScratchDir, helper: &Path) -> Result<Vec<Upgrade>, MatrixError> {
    KINDS
        .into_iter()
        .map(|lock| {
            let alone = run(dir, helper, lock, false)?;
            let beside_reader = run(dir, helper, lock, true)?;
            let atomic = [&alone, &beside_reader]
                .iter()
                .all(|r| r.holder_kept_lock && !r.waiter_got_in);
            Ok(Upgrade {
                lock,
                alone,
                beside_reader,
                atomic,
            })
        })
        .collect()
}

/// A helper process holding a shared lock through its own open of `path`.
fn shared_holder(helper: &Path, path: &Path, lock: LockFamily) -> Result<Holder, MatrixError> {
    let (mut p, slot) = super::helper_opening(helper, path)?;
    p.act(&PeerRequest::Lock {
        slot,
        family: lock,
        mode: LockMode::Shared,
        wait: false,
    })?
    .map_err(|e| MatrixError::Helper("take a shared lock", e))?;
    Ok((p, slot))
}

/// A helper process holding a shared lock, and its slot for the file.
type Holder = (PeerProcess, u32);

/// One run: H (and R, `with_reader`) hold shared locks, W waits for an exclusive one, H asks to
/// upgrade; then everyone lets go in turn and we record what the kernel did at each step.
fn run(
    dir: &ScratchDir,
    helper: &Path,
    lock: LockFamily,
    with_reader: bool,
) -> Result<UpgradeRun, MatrixError> {
    let name = format!(
        "upgrade-{lock}-{}",
        if with_reader {
            "beside-reader"
        } else {
            "alone"
        }
    );
    let (path, w_file) = dir.fresh(&name)?;
    // Taken once: W is a POSIX owner in this process, and opening/closing a descriptor later to
    // ask would drop its lock.
    let id = lock_file_id(&w_file).ok_or(MatrixError::Sys(
        "fstat the experiment's file",
        nix::errno::Errno::EBADF,
    ))?;
    let mut h = shared_holder(helper, &path, lock)?;
    let mut r = match with_reader {
        true => Some(shared_holder(helper, &path, lock)?),
        false => None,
    };

    std::thread::scope(|scope| {
        let mut w = Waiter::start(scope, lock, &w_file);
        let proc_locks_while_waiting = wait_until(DEADLINE, || {
            let snapshot = proc_locks_for_id(&id);
            snapshot.iter().any(|l| l.blocked).then_some(snapshot)
        })
        .ok_or_else(|| {
            unexpected(
                lock,
                "W's exclusive request never showed up as blocked in /proc/locks",
            )
        })?;
        let outcome = upgrade(lock, &mut h, &mut w, &id, with_reader)?;
        let mut got_in = outcome.got_in;
        if let Some(reader) = r.as_mut() {
            unlock(lock, reader)?;
            if !got_in {
                got_in = settle(lock, &mut w, &id)?.0;
            }
        }
        unlock(lock, &mut h)?;
        Ok(UpgradeRun {
            holder_pid: h.0.pid(),
            reader_pid: r.as_ref().map(|(p, _)| p.pid()),
            proc_locks_while_waiting,
            upgrade_errno: outcome.errno,
            proc_locks_after_upgrade: outcome.proc_locks,
            holder_kept_lock: outcome.holder_kept_lock,
            waiter_got_in: got_in,
            waiter_granted: waiter_granted(lock, w)?,
        })
    })
}

/// What H's upgrade request did, once its effect settled.
struct UpgradeOutcome {
    /// `None` granted, else the errno's name.
    errno: Option<String>,
    /// Whether W got the lock meanwhile.
    got_in: bool,
    proc_locks: Vec<ProcLock>,
    holder_kept_lock: bool,
}

/// H asks for exclusive without waiting; we wait for the kernel's state to settle and count
/// the granted locks to see whether H still holds one.
fn upgrade(
    lock: LockFamily,
    (h, h_slot): &mut Holder,
    w: &mut Waiter<'_>,
    id: &str,
    with_reader: bool,
) -> Result<UpgradeOutcome, MatrixError> {
    let answer = h.act(&PeerRequest::Lock {
        slot: *h_slot,
        family: lock,
        mode: LockMode::Exclusive,
        wait: false,
    })?;
    let errno = try_outcome(lock, "H's upgrade", answer)?;
    let (got_in, proc_locks) = settle(lock, w, id)?;
    let holders = proc_locks.iter().filter(|l| !l.blocked).count();
    Ok(UpgradeOutcome {
        errno,
        got_in,
        holder_kept_lock: holders > usize::from(with_reader) + usize::from(got_in),
        proc_locks,
    })
}

/// A holder lets go of its lock.
fn unlock(lock: LockFamily, (p, slot): &mut Holder) -> Result<(), MatrixError> {
    p.act(&PeerRequest::Unlock {
        slot: *slot,
        family: lock,
    })?
    .map_err(|e| MatrixError::Helper("unlock", e))
}

/// Whether W's blocking request was granted once everyone let go (`false`: it was interrupted
/// after the deadline).
fn waiter_granted(lock: LockFamily, w: Waiter<'_>) -> Result<bool, MatrixError> {
    match w.finish(DEADLINE) {
        Ok(()) => Ok(true),
        Err(nix::errno::Errno::EINTR) => Ok(false),
        Err(e) => Err(unexpected(
            lock,
            &format!("W's blocking request failed with {}", errno_name(e)),
        )),
    }
}

fn unexpected(lock: LockFamily, what: &str) -> MatrixError {
    MatrixError::Unexpected {
        lock,
        what: what.to_string(),
    }
}

/// Waits (bounded) until W's request returned granted (`true`) or `/proc/locks` lists it as
/// blocked (`false`), and returns that with the `/proc/locks` lines of that moment.
fn settle(
    lock: LockFamily,
    w: &mut Waiter<'_>,
    id: &str,
) -> Result<(bool, Vec<ProcLock>), MatrixError> {
    let mut failed = None;
    let state = wait_until(DEADLINE, || match w.poll() {
        Some(Ok(())) => Some(true),
        Some(Err(e)) => {
            failed = Some(e);
            Some(false)
        }
        None => proc_locks_for_id(id)
            .iter()
            .any(|l| l.blocked)
            .then_some(false),
    });
    if let Some(e) = failed {
        return Err(MatrixError::Unexpected {
            lock,
            what: format!("W's blocking request failed with {}", errno_name(e)),
        });
    }
    let got_in = state.ok_or_else(|| MatrixError::Unexpected {
        lock,
        what: "W neither got the lock nor showed up as blocked in /proc/locks".to_string(),
    })?;
    Ok((got_in, proc_locks_for_id(id)))
}

/// Calls `check` until it answers or `limit` passes.
pub(super) fn wait_until<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let give_up = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= give_up {
            return None;
        }
        std::thread::sleep(POLL);
    }
}
