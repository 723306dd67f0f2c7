//! Seeing the blog's lock fail to exclude, with nothing but its 64-byte file.
//!
//! lockfair's own runs detect overlaps with the occupant word in the arena header; the blog's
//! memfd is 64 bytes of the blog's protocol, with no room for it. Two other kinds of evidence
//! remain, and lockfair uses both:
//!
//! - **During the run, the shared offset** ([`OffsetWitness`]). In the blog's protocol only the
//!   side whose critical section it is moves the offset: the writer's `write` moves it off 0, the
//!   reader's `lseek` puts it back. So a side that holds the (supposedly exclusive) lock reads the
//!   offset when it enters and again just before it unlocks; a value it did not leave there itself
//!   proves that the other process moved it, inside its own critical section, at the same time.
//!   The detector has no false positives. It does miss overlaps that move nothing: two sections
//!   that overlap while neither side has its turn change no offset, so the count is a lower bound.
//! - **Once, from the kernel** ([`sharing_with`], [`holders`]): `kcmp(2)` with `KCMP_FILE` says
//!   whether the peer's descriptor and ours are the same open file description. If they are, OFD
//!   locks through them have one owner, and that owner's requests never conflict with each other:
//!   no exclusion, whatever the run happened to show. This needs the peer alive, holding the
//!   descriptor, and inspectable (same uid, no seccomp filter against kcmp); when it is not, the
//!   verdict says so. The server asks on arrival (the pid comes with SCM_CREDENTIALS), while the
//!   blog's client is still looping. The client learns the server's pid before it sends anything
//!   ([`socket_owner`]), asks from another thread every 100 µs from the moment it sends until it
//!   has an answer, and once on its own thread right after its first turn, when the server has
//!   just written a line and so surely holds the descriptor (the watcher may get no CPU while
//!   both loops spin).
//!
//! Not used, and why: timing both sides' critical sections needs timestamps from both processes,
//! and the blog's programs record none; a second open file description of the server's own
//! probing the lock (`F_OFD_GETLK`) while the server holds it sees the lock held, but the
//! client's lock and the server's are one record of one owner, so the probe looks the same
//! whether the client is inside or not.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;

use crate::sys::kcmp;

/// One critical section's view of the shared offset.
#[derive(Clone, Copy, Debug)]
pub struct OffsetWitness {
    entry: u64,
    expected: u64,
}

impl OffsetWitness {
    /// Starts a critical section that found the offset at `offset`.
    pub fn enter(offset: u64) -> Self {
        OffsetWitness {
            entry: offset,
            expected: offset,
        }
    }

    /// The offset at entry.
    pub fn entry(&self) -> u64 {
        self.entry
    }

    /// This side itself moved the offset to `offset` (its turn's `write` or `lseek`).
    pub fn moved_to(&mut self, offset: u64) {
        self.expected = offset;
    }

    /// Ends the section with the offset read just before unlocking. True if it is not where this
    /// side left it: the other process was inside its critical section at the same time.
    pub fn leave(self, offset: u64) -> bool {
        offset != self.expected
    }
}

/// Whether one peer process holds our open file description, by `kcmp(2)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharing {
    /// Its descriptor `fd` is our open file description.
    Shared { pid: i32, fd: RawFd },
    /// It is alive and none of its descriptors is our description.
    NotShared { pid: i32 },
    /// It had exited (or dropped its descriptors on the way out) before it could be compared.
    Gone { pid: i32 },
    /// kcmp(2) or its descriptor table was refused to us (`EPERM`, `EACCES`, `ENOSYS`).
    Unavailable { pid: i32, errno: Errno },
    /// No pid to look at (the sender lives in another pid namespace).
    NoPid,
}

/// Compares `ours` with every descriptor of process `pid`.
pub fn sharing_with(ours: BorrowedFd<'_>, pid: i32) -> Sharing {
    if pid <= 0 {
        return Sharing::NoPid;
    }
    let me = std::process::id() as i32;
    let dir = match std::fs::read_dir(format!("/proc/{pid}/fd")) {
        Ok(dir) => dir,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Sharing::Gone { pid },
        Err(e) => {
            return Sharing::Unavailable {
                pid,
                errno: crate::sys::io_errno(&e),
            };
        }
    };
    for entry in dir.flatten() {
        let Some(fd) = fd_number(&entry) else {
            continue;
        };
        match kcmp::same_file(me, ours.as_raw_fd(), pid, fd) {
            Ok(true) => return Sharing::Shared { pid, fd },
            // Closed since the listing: not ours.
            Ok(false) | Err(Errno::EBADF) => {}
            Err(Errno::ESRCH) => return Sharing::Gone { pid },
            Err(errno) => return Sharing::Unavailable { pid, errno },
        }
    }
    if has_exited(pid) {
        Sharing::Gone { pid }
    } else {
        Sharing::NotShared { pid }
    }
}

/// Another process found holding our open file description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub pid: i32,
    pub fd: RawFd,
    /// Its `/proc/PID/comm`.
    pub command: String,
}

/// Every other process we may inspect that holds `ours`'s open file description (for the client,
/// which does not know the server's pid). Only memfd descriptors are compared. `Err` when kcmp
/// was refused and nothing was found.
pub fn holders(ours: BorrowedFd<'_>) -> Result<Vec<Holder>, Errno> {
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    let mut refused = None;
    for (pid, fds) in other_processes().map_err(|e| crate::sys::io_errno(&e))? {
        for entry in fds.flatten() {
            let Some(fd) = fd_number(&entry) else {
                continue;
            };
            let is_memfd = std::fs::read_link(entry.path())
                .is_ok_and(|target| target.to_string_lossy().starts_with("/memfd:"));
            if !is_memfd {
                continue;
            }
            match kcmp::same_file(me, ours.as_raw_fd(), pid, fd) {
                Ok(true) => found.push(Holder {
                    pid,
                    fd,
                    command: command(pid),
                }),
                Ok(false) | Err(Errno::EBADF | Errno::ESRCH) => {}
                Err(errno) => refused = Some(errno),
            }
        }
    }
    match refused {
        Some(errno) if found.is_empty() => Err(errno),
        _ => Ok(found),
    }
}

/// The process that has a Unix socket bound at `path` (the blog's server, before we send it
/// anything): the socket's inode from `/proc/net/unix`, then the process holding `socket:[inode]`.
/// `None` if it cannot be told (a relative path bound elsewhere, another user's process).
pub fn socket_owner(path: &Path) -> Option<i32> {
    let inodes = sockets_bound_at(path)?;
    other_processes().ok()?.find_map(|(pid, fds)| {
        let owns = fds.flatten().any(|entry| {
            std::fs::read_link(entry.path())
                .is_ok_and(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()))
        });
        owns.then_some(pid)
    })
}

/// The sockets bound at `path` (under each name it may have in `/proc/net/unix`), as a
/// descriptor's link in `/proc/PID/fd` names them: `socket:[inode]`. `None` if there are none.
fn sockets_bound_at(path: &Path) -> Option<Vec<String>> {
    let mut names = vec![path.to_path_buf()];
    if let Ok(cwd) = std::env::current_dir() {
        names.push(cwd.join(path));
    }
    if let (Some(dir), Some(name)) = (path.parent(), path.file_name())
        && let Ok(dir) = std::fs::canonicalize(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })
    {
        names.push(dir.join(name));
    }
    let table = std::fs::read_to_string("/proc/net/unix").ok()?;
    // Num RefCount Protocol Flags Type St Inode Path
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let bound = fields.get(7..).map(|rest| rest.join(" "))?;
            names
                .iter()
                .any(|n| n.as_os_str() == bound.as_str())
                .then(|| format!("socket:[{}]", fields[6]))
        })
        .collect();
    (!inodes.is_empty()).then_some(inodes)
}

/// Every other process whose descriptors we may list: its pid and its `/proc/PID/fd`. Other
/// users' processes, and those that exit meanwhile, are skipped: we may not look.
fn other_processes() -> std::io::Result<impl Iterator<Item = (i32, std::fs::ReadDir)>> {
    let me = std::process::id() as i32;
    Ok(std::fs::read_dir("/proc")?
        .flatten()
        .filter_map(move |entry| {
            let pid = entry.file_name().to_str()?.parse::<i32>().ok()?;
            if pid == me {
                return None;
            }
            let fds = std::fs::read_dir(entry.path().join("fd")).ok()?;
            Some((pid, fds))
        }))
}

fn fd_number(entry: &std::fs::DirEntry) -> Option<RawFd> {
    entry.file_name().to_str()?.parse().ok()
}

/// `/proc/PID/comm`, or `?`.
pub fn command(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim_end().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// True if `pid` is gone or a zombie (whose descriptor table is already empty).
fn has_exited(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    // The state follows the command in parentheses, which may itself contain ") ".
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    matches!(state, Some('Z' | 'X') | None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn the_witness_sees_only_moves_it_did_not_make() {
        let mut w = OffsetWitness::enter(0);
        w.moved_to(2);
        assert!(!w.leave(2), "its own write");
        assert!(
            OffsetWitness::enter(2).leave(0),
            "the reader's lseek, unseen"
        );
        let mut w = OffsetWitness::enter(0);
        w.moved_to(2);
        assert!(w.leave(0), "the reader put it back while we were inside");
        assert!(
            !OffsetWitness::enter(0).leave(0),
            "a whoop that saw nothing"
        );
    }

    #[test]
    fn a_child_holding_our_description_is_found_and_a_gone_one_is_not() {
        let m = memfd::MemfdOptions::default()
            .close_on_exec(false)
            .create("overlap-test")
            .unwrap()
            .into_file();
        // Our own process is never a holder of our own descriptor.
        match holders(m.as_fd()) {
            Ok(found) => assert!(found.iter().all(|h| h.pid != std::process::id() as i32)),
            Err(Errno::EPERM | Errno::ENOSYS) => return,
            Err(e) => panic!("{e}"),
        }
        // A child inherits the description (no CLOEXEC on this memfd).
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(3);
        let shared = loop {
            match sharing_with(m.as_fd(), pid) {
                s @ Sharing::Shared { .. } => break s,
                _ if std::time::Instant::now() > give_up => break Sharing::NoPid,
                _ => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        };
        assert!(matches!(shared, Sharing::Shared { .. }), "{shared:?}");
        assert!(
            holders(m.as_fd()).unwrap().iter().any(|h| h.pid == pid),
            "the /proc scan finds it too"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(sharing_with(m.as_fd(), pid), Sharing::Gone { pid });
        assert_eq!(sharing_with(m.as_fd(), 0), Sharing::NoPid);
    }
}
