//! Where tracefs is, mounting it where allowed.
//!
//! lockfair uses a tracefs mount that exists; if none does, it mounts one at
//! `/sys/kernel/tracing` under the name `lockfair-tracefs`, so that `/proc/self/mountinfo` tells
//! later runs who made it. A mount of that name is unmounted when its last lockfair instance is
//! gone: by the run that made it, or, after a killed run, by the next one. `EBUSY` (someone
//! still has a file open in it) leaves it for that someone's run to remove.
//!
//! Two runs must not race (one unmounting between the other's finding the mount and making its
//! instance), so both decisions are taken under a [`MountGuard`].

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::unistd::geteuid;
use thiserror::Error;

use super::TraceError;
use crate::runtime_dir::lock_file::{LockFileError, open_checked};
use crate::sys::locks::{LockMode, Wait, flock};
use crate::sys::tracefs::{mount_tracefs, unmount};

/// How long to wait for another lockfair process's mount decision (it takes milliseconds).
const GUARD_TIMEOUT: Duration = Duration::from_secs(2);
/// The guard's lock file, in the first of these directories that exists (root's, closed to
/// others' writes): `/run` on any current system.
const GUARD_DIRS: [&str; 2] = ["/run", "/var/lib"];
const GUARD_NAME: &str = "lockfair-tracefs.lock";

/// Why the mount guard could not be taken.
#[derive(Debug, Error)]
pub enum GuardError {
    #[error(transparent)]
    File(#[from] LockFileError),
    #[error("another lockfair run as root has held the tracefs mount guard {path} for over {}s (it mounts or unmounts in milliseconds): wait for it to end and try again", GUARD_TIMEOUT.as_secs(), path = .path.display())]
    Busy { path: PathBuf },
    #[error("cannot lock the tracefs mount guard {path}: {errno}", path = .path.display())]
    Lock { path: PathBuf, errno: Errno },
}

/// An exclusive `flock` on root's lock file `/run/lockfair-tracefs.lock`: held by a lockfair
/// process running as root while it finds or mounts tracefs and makes its instance, or while it
/// decides to unmount. Only root can open the file (0600, checked to be root's, regular, not a
/// hard link), so no other user can hold the guard; a holder is another root run, and one that
/// keeps it too long is an error (or, when unmounting, a mount left for the next run), never a
/// reason to go on unguarded.
#[derive(Debug)]
pub struct MountGuard {
    _held: Option<File>,
}

impl MountGuard {
    /// Takes the guard, waiting 2 s at most for its holder. A process that is not root takes
    /// none: it can neither mount nor unmount tracefs, and could not open root's file.
    pub fn take() -> Result<MountGuard, GuardError> {
        if !geteuid().is_root() {
            return Ok(MountGuard { _held: None });
        }
        let dir = GUARD_DIRS
            .iter()
            .map(Path::new)
            .find(|d| d.is_dir())
            .unwrap_or(Path::new(GUARD_DIRS[0]));
        let held = take_at(&dir.join(GUARD_NAME), 0, GUARD_TIMEOUT)?;
        Ok(MountGuard { _held: Some(held) })
    }
}

/// Opens and checks the lock file at `path` (it must be `owner`'s) and locks it, waiting up to
/// `timeout` for its holder.
fn take_at(path: &Path, owner: u32, timeout: Duration) -> Result<File, GuardError> {
    let file = open_checked(path, owner)?;
    let give_up = Instant::now() + timeout;
    loop {
        match flock(&file, Some(LockMode::Exclusive), Wait::NoWait) {
            Ok(()) => return Ok(file),
            Err(Errno::EWOULDBLOCK | Errno::EINTR) if Instant::now() < give_up => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(Errno::EWOULDBLOCK | Errno::EINTR) => {
                return Err(GuardError::Busy {
                    path: path.to_path_buf(),
                });
            }
            Err(errno) => {
                return Err(GuardError::Lock {
                    path: path.to_path_buf(),
                    errno,
                });
            }
        }
    }
}

/// Where tracefs lives on current systems.
pub const TRACEFS: &str = "/sys/kernel/tracing";
/// The mount source lockfair gives the tracefs it mounts.
pub const MOUNT_NAME: &str = "lockfair-tracefs";
/// The prefix of every lockfair instance's directory name.
pub const INSTANCE_PREFIX: &str = "lockfair-";

/// A tracefs mount lockfair can use.
#[derive(Debug)]
pub struct Tracefs {
    root: PathBuf,
    /// Mounted by lockfair (now or by an earlier run): unmounted once no instance remains.
    ours: bool,
}

impl Tracefs {
    /// Finds tracefs, or mounts it at [`TRACEFS`] if we may. Hold a [`MountGuard`] until the
    /// instance is made.
    pub fn open(_guard: &MountGuard) -> Result<Tracefs, TraceError> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        if let Some((root, source)) = find_tracefs(&mountinfo) {
            return Ok(Tracefs {
                ours: source == MOUNT_NAME,
                root,
            });
        }
        let root = PathBuf::from(TRACEFS);
        let name = c"lockfair-tracefs";
        match mount_tracefs(name, &root) {
            Ok(()) => Ok(Tracefs { root, ours: true }),
            Err(Errno::EPERM | Errno::EACCES) => Err(TraceError::MountNotAllowed),
            Err(Errno::ENOENT | Errno::ENODEV) => Err(TraceError::NoTracefs),
            Err(errno) => Err(TraceError::Mount(errno)),
        }
    }

    /// The mount point.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Unmounts tracefs if lockfair mounted it and no lockfair instance is left in it.
    pub fn release(&mut self) {
        if !self.ours {
            return;
        }
        // Without the guard the mount stays: the next run that finds it unused removes it.
        let Ok(_guard) = MountGuard::take() else {
            self.ours = false;
            return;
        };
        let others = std::fs::read_dir(self.root.join("instances"))
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with(INSTANCE_PREFIX))
            })
            .unwrap_or(false);
        if !others {
            // EBUSY: a file is open in it (another run between its checks); that run cleans up.
            let _ = unmount(&self.root);
        }
        self.ours = false;
    }
}

impl Drop for Tracefs {
    fn drop(&mut self) {
        self.release();
    }
}

/// The tracefs mount to use from `/proc/self/mountinfo`, and its source: [`TRACEFS`] if mounted
/// there, else the first one.
fn find_tracefs(mountinfo: &str) -> Option<(PathBuf, String)> {
    let mounts: Vec<(PathBuf, String)> = mountinfo
        .lines()
        .filter_map(|line| {
            // "ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER"
            let (left, right) = line.split_once(" - ")?;
            let mut right = right.split(' ');
            if right.next()? != "tracefs" {
                return None;
            }
            let point = left.split(' ').nth(4)?;
            let source = right.next()?.to_string();
            // Paths with spaces are escaped as \040; a tracefs mount point has none to speak of.
            (!point.contains('\\')).then(|| (PathBuf::from(point), source))
        })
        .collect();
    let main = mounts.iter().rev().find(|(p, _)| p == Path::new(TRACEFS));
    main.or(mounts.first()).cloned()
}

/// The pid in an instance name `lockfair-<pid>` or `lockfair-<pid>-<n>`.
pub fn instance_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix(INSTANCE_PREFIX)?;
    rest.split('-').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_the_standard_mount_point_and_reads_who_made_it() {
        let text = "22 1 254:0 / / rw - ext4 /dev/vda rw\n\
                    50 23 0:12 / /sys/kernel/debug/tracing rw - tracefs tracefs rw\n\
                    51 23 0:12 / /sys/kernel/tracing rw,nosuid - tracefs lockfair-tracefs rw\n";
        let (root, source) = find_tracefs(text).unwrap();
        assert_eq!(root, Path::new(TRACEFS));
        assert_eq!(source, MOUNT_NAME);
        let only_debug = "50 23 0:12 / /sys/kernel/debug/tracing rw - tracefs nodev rw\n";
        assert_eq!(
            find_tracefs(only_debug).unwrap().0,
            Path::new("/sys/kernel/debug/tracing")
        );
        assert_eq!(find_tracefs("22 1 254:0 / / rw - ext4 /dev/vda rw\n"), None);
    }

    #[test]
    fn reads_the_pid_of_an_instance_name() {
        assert_eq!(instance_pid("lockfair-1234"), Some(1234));
        assert_eq!(instance_pid("lockfair-1234-2"), Some(1234));
        assert_eq!(instance_pid("lockfair-x"), None);
        assert_eq!(instance_pid("other-1234"), None);
    }

    /// A private directory for a guard file, so the tests leave `/run` alone.
    fn guard_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "lockfair-guard-{tag}-{}-{}",
            std::process::id(),
            crate::sys::clock::monotonic_ns()
        ));
        crate::runtime_dir::ensure_private_dir(&dir).unwrap();
        dir
    }

    fn me() -> u32 {
        geteuid().as_raw()
    }

    #[test]
    fn the_guard_is_taken_once_and_a_holder_makes_the_next_wait_then_fail() {
        let dir = guard_dir("busy");
        let path = dir.join(GUARD_NAME);
        let held = take_at(&path, me(), GUARD_TIMEOUT).unwrap();
        let e = take_at(&path, me(), Duration::from_millis(20)).unwrap_err();
        assert!(matches!(e, GuardError::Busy { .. }), "{e}");
        drop(held);
        drop(take_at(&path, me(), GUARD_TIMEOUT).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_symlink_or_a_hard_link_at_the_guard_path_is_refused() {
        let dir = guard_dir("planted");
        let victim = dir.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let path = dir.join(GUARD_NAME);
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let e = take_at(&path, me(), GUARD_TIMEOUT).unwrap_err();
        assert!(
            matches!(e, GuardError::File(LockFileError::Symlink { .. })),
            "{e}"
        );
        std::fs::remove_file(&path).unwrap();
        std::fs::hard_link(&victim, &path).unwrap();
        let e = take_at(&path, me(), GUARD_TIMEOUT).unwrap_err();
        assert!(
            matches!(e, GuardError::File(LockFileError::HardLink { .. })),
            "{e}"
        );
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_guard_file_of_another_user_is_refused_not_waited_for() {
        if !geteuid().is_root() {
            eprintln!("skipped: only root can give a file to another uid");
            return;
        }
        let dir = guard_dir("foreign");
        let path = dir.join(GUARD_NAME);
        std::fs::write(&path, b"").unwrap();
        nix::unistd::chown(&path, Some(65534.into()), Some(65534.into())).unwrap();
        // Held by its owner, it must still be refused at once, not waited for.
        let theirs = File::open(&path).unwrap();
        flock(&theirs, Some(LockMode::Exclusive), Wait::NoWait).unwrap();
        let e = take_at(&path, 0, Duration::from_secs(600)).unwrap_err();
        assert!(
            matches!(
                e,
                GuardError::File(LockFileError::ForeignOwner { owner: 65534, .. })
            ),
            "{e}"
        );
        assert!(e.to_string().contains("remove it"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
