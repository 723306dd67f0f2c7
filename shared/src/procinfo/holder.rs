//! Who holds a lock, by the kernel's own records, and what each record says.
//!
//! A waiter that gives up should say whom it waited for. The kernel keeps an owner for some
//! locks and not for others, and its sources disagree:
//! - `/proc/locks` prints a pid for POSIX (`fcntl`, `lockf`) and `flock` locks, and -1 for OFD
//!   locks, which belong to an open file description rather than a process
//!   (fs/locks.c `locks_translate_pid`).
//! - `F_GETLK` and `F_OFD_GETLK` report the conflicting lock's `l_pid` the same way: the owner's
//!   pid for a POSIX lock, -1 for an OFD lock; neither sees `flock` locks at all.
//! - `/proc/PID/fdinfo/FD` lists, per descriptor, the locks whose owner is that descriptor's
//!   description or file table (`show_fd_locks`): the one place that ties an OFD lock to the
//!   processes holding its description. Reading another process's fdinfo needs ptrace-read
//!   access to it (same user, or root).
//! - A PI futex word and a robust mutex's word hold their owner's thread id; `/proc/TID/status`
//!   maps it to its process (`Tgid`). A plain futex word, an eventfd, a pipe or a ticket
//!   counter record no owner: nothing names the holder.

use std::os::fd::AsFd;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ProcLock, lock_file_id, parse_proc_locks, proc_locks_for_id};
use crate::sys::locks::{ByteRange, LockMode, RecordOwner, record_conflict};

/// What each of the kernel's sources said about the holder. `None` (or empty): that source
/// had nothing to say, or was not asked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelSays {
    /// The lock `/proc/locks` shows granted on the file (the first one, if several).
    pub proc_locks: Option<LockLine>,
    /// `F_GETLK`'s `l_pid` for a write lock on the whole file, asked through the caller's
    /// descriptor.
    pub getlk_pid: Option<i32>,
    /// `F_OFD_GETLK`'s `l_pid`, asked the same way.
    pub ofd_getlk_pid: Option<i32>,
    /// The processes whose `/proc/PID/fdinfo` shows a lock on the file: asked only when no
    /// other source named a process.
    pub fdinfo_pids: Vec<i32>,
    /// The thread id in the lock word, for a word that records its owner (0 bits: free).
    pub futex_owner_tid: Option<u32>,
}

/// One granted lock as `/proc/locks` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockLine {
    /// `OFDLCK`, `POSIX` or `FLOCK`.
    pub kind: String,
    pub pid: i64,
}

/// Where the holder's name came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    #[serde(rename = "futex owner TID")]
    FutexOwner,
    #[serde(rename = "F_GETLK")]
    GetLk,
    #[serde(rename = "/proc/locks")]
    ProcLocks,
    #[serde(rename = "/proc/PID/fdinfo")]
    FdInfo,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::FutexOwner => "futex owner TID",
            Source::GetLk => "F_GETLK",
            Source::ProcLocks => "/proc/locks",
            Source::FdInfo => "/proc/PID/fdinfo",
        }
    }
}

/// A process the kernel named as the holder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderName {
    pub pid: i32,
    /// The thread the lock word names, if it was a word (its process is `pid`).
    pub tid: Option<i32>,
    /// `/proc/PID/comm`.
    pub comm: String,
    /// The state letter of `/proc/PID/stat` (`T`: stopped), empty if the process is gone.
    pub state: String,
    pub source: Source,
}

impl HolderName {
    /// "pid 4242 (lockfair-client), stopped".
    pub fn describe(&self) -> String {
        format!(
            "pid {} ({}), {}",
            self.pid,
            self.comm,
            state_words(&self.state)
        )
    }
}

/// The kernel's records and the holder they name, if any does.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Named {
    pub says: KernelSays,
    pub holder: Option<HolderName>,
}

/// Asks every source who holds the lock on the file behind `fd` (or, `owner_tid`, the lock word
/// the caller read). `fd` must be the caller's own descriptor, not a fresh open: closing a
/// descriptor of the file would drop the caller's POSIX locks on it. `F_OFD_GETLK` through a
/// description that shares the holder's sees no conflict (it is the same owner).
pub fn name_holder(fd: impl AsFd, owner_tid: Option<u32>) -> Named {
    let fd = fd.as_fd();
    let mut says = KernelSays {
        futex_owner_tid: owner_tid,
        ..KernelSays::default()
    };
    let id = lock_file_id(fd);
    let granted = id.as_deref().map(granted_locks).unwrap_or_default();
    says.proc_locks = granted.first().map(|l| LockLine {
        kind: l.kind.clone(),
        pid: l.pid,
    });
    let ask = |owner| record_conflict(fd, owner, LockMode::Exclusive, ByteRange::ALL).ok();
    says.getlk_pid = ask(RecordOwner::Process).flatten().map(|c| c.pid);
    says.ofd_getlk_pid = ask(RecordOwner::Description).flatten().map(|c| c.pid);
    let mut holder = first_named(&says);
    if holder.is_none() && !granted.is_empty() {
        says.fdinfo_pids = id.as_deref().map(fdinfo_holders).unwrap_or_default();
        holder = says
            .fdinfo_pids
            .first()
            .and_then(|&pid| process(pid, None, Source::FdInfo));
    }
    Named { says, holder }
}

fn granted_locks(id: &str) -> Vec<ProcLock> {
    let mut locks = proc_locks_for_id(id);
    locks.retain(|l| !l.blocked);
    locks
}

/// The holder named by the futex word, `F_GETLK` or `/proc/locks`, in that order.
fn first_named(says: &KernelSays) -> Option<HolderName> {
    if let Some(tid) = says.futex_owner_tid.filter(|&t| t != 0) {
        let tid = i32::try_from(tid).ok()?;
        return process(thread_group(tid)?, Some(tid), Source::FutexOwner);
    }
    if let Some(pid) = says.getlk_pid.filter(|&p| p > 0) {
        return process(pid, None, Source::GetLk);
    }
    let pid = says.proc_locks.as_ref().map(|l| l.pid).filter(|&p| p > 0)?;
    process(i32::try_from(pid).ok()?, None, Source::ProcLocks)
}

fn process(pid: i32, tid: Option<i32>, source: Source) -> Option<HolderName> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(HolderName {
        pid,
        tid,
        comm: comm.trim_end().to_string(),
        state: process_state(pid).map(String::from).unwrap_or_default(),
        source,
    })
}

/// The process thread `tid` belongs to (`Tgid` in `/proc/TID/status`).
pub fn thread_group(tid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The state letter of process `pid` (`/proc/PID/stat`, after the command's parenthesis).
pub fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.trim_start().chars().next()
}

/// The state letter in words, for an error line.
pub fn state_words(state: &str) -> &'static str {
    match state {
        "T" => "stopped",
        "t" => "stopped by a tracer",
        "D" => "in uninterruptible sleep (disk or network I/O)",
        "S" => "asleep",
        "R" => "running",
        "Z" => "exited, not yet reaped",
        "" => "gone",
        _ => "alive",
    }
}

/// The processes with a descriptor whose fdinfo shows a granted lock on the file `id`.
fn fdinfo_holders(id: &str) -> Vec<i32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let pids = procs
        .flatten()
        .filter_map(|d| d.file_name().to_str()?.parse::<i32>().ok());
    pids.filter(|&pid| holds_via_fdinfo(pid, id)).collect()
}

fn holds_via_fdinfo(pid: i32, id: &str) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        let text = std::fs::read_to_string(fd.path()).unwrap_or_default();
        let locks: String = text
            .lines()
            .filter_map(|l| l.strip_prefix("lock:"))
            .map(|l| format!("{}\n", l.trim()))
            .collect();
        parse_proc_locks(&locks, id).iter().any(|l| !l.blocked)
    })
}

/// What a lock is, by the kind `/proc/locks` gives it, for an error line.
pub fn lock_words(says: &KernelSays) -> Option<&'static str> {
    Some(match says.proc_locks.as_ref()?.kind.as_str() {
        "OFDLCK" => "the OFD lock",
        "POSIX" => "the POSIX lock",
        "FLOCK" => "the flock lock",
        _ => "the file lock",
    })
}

/// The one line a waiter gives when its deadline passes: what it waited for, and who holds it
/// by the kernel's records ("waited 2.0 s for the OFD lock on the arena; held by pid 4242
/// (lockfair-client), stopped"), or that nothing records an owner.
pub fn deadline_error(waited: Duration, what: &str, named: &Named) -> String {
    let waited = format!("waited {:.1} s for {what}", waited.as_secs_f64());
    match &named.holder {
        Some(h) => format!("{waited}; held by {}", h.describe()),
        None if named.says.proc_locks.is_some() => {
            format!("{waited}; the kernel shows it held but names no process we can read")
        }
        None => format!("{waited}; no owner recorded: the kernel keeps none for it"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_this_process_as_the_holder_of_its_own_lock_word() {
        let me = crate::sys::futex::thread_id();
        let file = std::fs::File::open("/proc/self/exe").unwrap();
        let named = name_holder(&file, Some(me));
        let h = named.holder.expect("our own thread is named");
        assert_eq!(h.pid, std::process::id() as i32);
        assert_eq!(h.tid, Some(me as i32));
        assert_eq!(h.source, Source::FutexOwner);
        assert!(!h.state.is_empty());
        assert_eq!(named.says.proc_locks, None);
        assert_eq!(named.says.getlk_pid, None);
    }

    #[test]
    fn a_free_word_and_no_lock_name_nobody() {
        let file = std::fs::File::open("/proc/self/exe").unwrap();
        let named = name_holder(&file, Some(0));
        assert_eq!(named.holder, None);
        let line = deadline_error(Duration::from_millis(2000), "the futex turn", &named);
        assert_eq!(
            line,
            "waited 2.0 s for the futex turn; no owner recorded: the kernel keeps none for it"
        );
    }

    #[test]
    fn the_error_names_pid_command_and_state() {
        let named = Named {
            says: KernelSays::default(),
            holder: Some(HolderName {
                pid: 4242,
                tid: None,
                comm: "lockfair-client".into(),
                state: "T".into(),
                source: Source::FdInfo,
            }),
        };
        let line = deadline_error(Duration::from_secs(2), "the OFD lock on the arena", &named);
        assert_eq!(
            line,
            "waited 2.0 s for the OFD lock on the arena; held by pid 4242 (lockfair-client), stopped"
        );
    }
}
