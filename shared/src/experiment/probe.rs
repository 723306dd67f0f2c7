//! `lockfair-client probe`: why the seed has no mutual exclusion, shown by experiment.
//!
//! A helper process (A) and this process (B) both reach the same memfd. In the first experiment
//! A's descriptor arrived over SCM_RIGHTS, exactly as the seed passes it: it refers to the same
//! open file description as B's. In the second, A reopens `/proc/self/fd/N`, as lockfair's
//! server does, and owns a description of its own. In both, A takes an exclusive OFD lock and B
//! asks the kernel (F_OFD_GETLK), tries (F_OFD_SETLK), and reads `/proc/locks`. No timing, no
//! luck: the kernel's answers decide.

use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use serde::Serialize;
use thiserror::Error;

use crate::arena::{Arena, ArenaError};
use crate::locking::LockFamily;
use crate::peer::{PeerError, PeerProcess, PeerRequest};
use crate::procinfo::{ProcLock, proc_locks_for};
use crate::sys::locks::{
    ByteRange, LockMode, RecordOwner, Wait, record_conflict, record_lock, record_unlock,
};
use crate::sys::signal;

/// Why the probe could not run.
#[derive(Debug, Error)]
pub enum ProbeError {
    #[error(transparent)]
    Arena(#[from] ArenaError),
    #[error(transparent)]
    Peer(#[from] PeerError),
    #[error("the helper could not {0}: {1}")]
    Helper(&'static str, Errno),
    #[error("cannot {0}: {1}")]
    Sys(&'static str, Errno),
}

/// What one experiment found.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeCase {
    /// How process A got its descriptor.
    pub access: &'static str,
    /// Process B's F_OFD_GETLK: the conflicting lock the kernel reports (`null`: none).
    pub getlk_conflict: Option<ConflictJson>,
    /// Process B's non-blocking F_OFD_SETLK: `null` if granted, else the errno's name.
    pub trylock_errno: Option<String>,
    /// `/proc/locks` while A holds the lock (after B's attempt).
    pub proc_locks: Vec<ProcLock>,
    /// `/proc/locks` while B waits in F_OFD_SETLKW (only when B is refused).
    pub proc_locks_while_waiting: Vec<ProcLock>,
    /// Whether B's F_OFD_SETLKW was granted once A unlocked (only when B is refused).
    pub waiter_granted_after_unlock: Option<bool>,
    /// True if B was kept out while A held the lock.
    pub excluded: bool,
}

/// A conflicting lock as F_OFD_GETLK describes it.
#[derive(Clone, Debug, Serialize)]
pub struct ConflictJson {
    pub mode: LockMode,
    /// -1: an OFD lock, owned by a description, not a process.
    pub pid: i32,
}

/// Both experiments.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeReport {
    /// Process A, the helper that holds the lock.
    pub holder_pid: i32,
    /// Process B, this one.
    pub prober_pid: i32,
    pub passed_fd: ProbeCase,
    pub reopened: ProbeCase,
}

/// Runs both experiments, using `helper peer` as process A.
pub fn probe(helper: &Path) -> Result<ProbeReport, ProbeError> {
    let arena = Arena::create(2)?;
    let mut a = PeerProcess::spawn(helper)?;
    let passed = a
        .slot(&PeerRequest::Adopt, Some(arena.file().as_fd()))?
        .map_err(|e| ProbeError::Helper("adopt the descriptor", e))?;
    let passed_fd = experiment(
        &arena,
        &mut a,
        passed,
        "passed over SCM_RIGHTS (shared open file description)",
    )?;

    let received = a
        .slot(&PeerRequest::Adopt, Some(arena.file().as_fd()))?
        .map_err(|e| ProbeError::Helper("adopt the descriptor", e))?;
    let own = a
        .slot(&PeerRequest::Reopen { slot: received }, None)?
        .map_err(|e| ProbeError::Helper("reopen /proc/self/fd/N", e))?;
    // Keep only its own description, as lockfair's server does.
    let _ = a.act(&PeerRequest::Close { slot: received })?;
    let reopened = experiment(
        &arena,
        &mut a,
        own,
        "reopened through /proc/self/fd/N (own open file description)",
    )?;
    Ok(ProbeReport {
        holder_pid: a.pid(),
        prober_pid: std::process::id() as i32,
        passed_fd,
        reopened,
    })
}

fn experiment(
    arena: &Arena,
    a: &mut PeerProcess,
    slot: u32,
    access: &'static str,
) -> Result<ProbeCase, ProbeError> {
    let ours = arena.file();
    a.act(&PeerRequest::Lock {
        slot,
        family: LockFamily::Ofd,
        mode: LockMode::Exclusive,
        wait: false,
    })?
    .map_err(|e| ProbeError::Helper("take the OFD lock", e))?;
    let conflict = record_conflict(
        ours,
        RecordOwner::Description,
        LockMode::Exclusive,
        ByteRange::ALL,
    )
    .map_err(|e| ProbeError::Sys("ask F_OFD_GETLK", e))?;
    let attempt = record_lock(
        ours,
        RecordOwner::Description,
        LockMode::Exclusive,
        ByteRange::ALL,
        Wait::NoWait,
    );
    let proc_locks = proc_locks_for(ours);
    let mut case = ProbeCase {
        access,
        getlk_conflict: conflict.map(|c| ConflictJson {
            mode: c.mode,
            pid: c.pid,
        }),
        trylock_errno: attempt.err().map(|e| format!("{e:?}")),
        proc_locks,
        proc_locks_while_waiting: Vec::new(),
        waiter_granted_after_unlock: None,
        excluded: attempt.is_err(),
    };
    if case.excluded {
        let (waiting, granted) = wait_behind(arena, a, slot)?;
        case.proc_locks_while_waiting = waiting;
        case.waiter_granted_after_unlock = Some(granted);
    } else {
        a.act(&PeerRequest::Unlock {
            slot,
            family: LockFamily::Ofd,
        })?
        .map_err(|e| ProbeError::Helper("unlock", e))?;
    }
    let _ = record_unlock(ours, RecordOwner::Description, ByteRange::ALL);
    Ok(case)
}

/// B blocks in F_OFD_SETLKW on a thread; we photograph `/proc/locks` once the kernel lists the
/// blocked request, then A unlocks and B must be granted. Bounded: the waiter is interrupted if
/// it is still asleep after two seconds.
fn wait_behind(
    arena: &Arena,
    a: &mut PeerProcess,
    slot: u32,
) -> Result<(Vec<ProcLock>, bool), ProbeError> {
    signal::install_interrupt_handler();
    let ours = arena.file();
    let waiter_thread = Mutex::new(None);
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            *waiter_thread.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(signal::current_thread());
            record_lock(
                ours,
                RecordOwner::Description,
                LockMode::Exclusive,
                ByteRange::ALL,
                Wait::Block,
            )
        });
        let give_up = Instant::now() + Duration::from_secs(2);
        let mut snapshot = proc_locks_for(ours);
        while !snapshot.iter().any(|l| l.blocked) && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(2));
            snapshot = proc_locks_for(ours);
        }
        let unlocked = a.act(&PeerRequest::Unlock {
            slot,
            family: LockFamily::Ofd,
        });
        let give_up = Instant::now() + Duration::from_secs(2);
        while !waiter.is_finished() {
            if Instant::now() > give_up
                && let Some(t) = *waiter_thread.lock().unwrap_or_else(|p| p.into_inner())
            {
                let _ = signal::interrupt(t);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let granted = matches!(waiter.join(), Ok(Ok(())));
        unlocked?.map_err(|e| ProbeError::Helper("unlock", e))?;
        Ok((snapshot, granted))
    })
}

impl ProbeReport {
    /// The human-readable account.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (n, case) in [(1, &self.passed_fd), (2, &self.reopened)] {
            self.push_case(&mut out, n, case);
        }
        out.push_str(
            "OFD locks belong to the open file description. SCM_RIGHTS (like dup and fork) passes\n\
             the description itself, so the seed's two processes were one lock owner: no mutual\n\
             exclusion. Reopening /proc/self/fd/N gives a description of one's own.\n",
        );
        out
    }

    /// One experiment's paragraph: what B was told, what `/proc/locks` showed, the verdict.
    fn push_case(&self, out: &mut String, n: usize, case: &ProbeCase) {
        out.push_str(&format!(
            "Experiment {n}: process A (pid {}) holds F_OFD_SETLK(F_WRLCK) on a descriptor {}.\n",
            self.holder_pid, case.access
        ));
        out.push_str(&format!(
            "  B (pid {}) F_OFD_GETLK:  {}\n",
            self.prober_pid,
            match &case.getlk_conflict {
                None => "no conflicting lock".to_string(),
                Some(c) => format!(
                    "conflicts with an {} lock held by pid {} (-1: an OFD lock)",
                    match c.mode {
                        LockMode::Exclusive => "exclusive (write)",
                        LockMode::Shared => "shared (read)",
                    },
                    c.pid
                ),
            }
        ));
        out.push_str(&format!(
            "  B F_OFD_SETLK(F_WRLCK): {}\n",
            match &case.trylock_errno {
                None => "granted: A and B both \"hold\" the exclusive lock".to_string(),
                Some(e) => format!("refused with {e}"),
            }
        ));
        out.push_str("  /proc/locks:\n");
        for l in &case.proc_locks {
            out.push_str(&format!("    {}\n", l.line));
        }
        if !case.proc_locks_while_waiting.is_empty() {
            out.push_str(
                "  /proc/locks while B waits in F_OFD_SETLKW (-> marks the blocked request):\n",
            );
            for l in &case.proc_locks_while_waiting {
                out.push_str(&format!("    {}\n", l.line));
            }
        }
        if let Some(granted) = case.waiter_granted_after_unlock {
            out.push_str(&format!(
                "  A unlocks: B's F_OFD_SETLKW {}\n",
                if granted {
                    "returns, granted"
                } else {
                    "did not return"
                }
            ));
        }
        out.push_str(&format!(
            "  => {}\n\n",
            if case.excluded {
                "two descriptions, two owners: the lock excludes"
            } else {
                "one description, one owner: the lock excludes nobody"
            }
        ));
    }
}
