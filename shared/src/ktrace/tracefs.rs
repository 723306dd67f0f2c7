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

use super::TraceError;
use crate::sys::locks::{LockMode, Wait, flock};
use crate::sys::tracefs::{mount_tracefs, unmount};

/// How long to wait for another lockfair process's mount decision (it takes milliseconds).
const GUARD_TIMEOUT: Duration = Duration::from_secs(2);

/// An exclusive `flock` on the mount point's parent directory (`/sys/kernel`, never a mount
/// point itself, so every process locks the same inode): held by a lockfair process while it
/// finds or mounts tracefs and makes its instance, or while it decides to unmount.
#[derive(Debug)]
pub struct MountGuard {
    _held: Option<File>,
}

impl MountGuard {
    /// Takes the guard, waiting a bounded time; without it (no directory to lock, or a holder
    /// that never lets go) the caller goes on unguarded rather than hang.
    pub fn take() -> MountGuard {
        let Some(dir) = Path::new(TRACEFS).parent().and_then(|p| File::open(p).ok()) else {
            return MountGuard { _held: None };
        };
        let give_up = Instant::now() + GUARD_TIMEOUT;
        loop {
            match flock(&dir, Some(LockMode::Exclusive), Wait::NoWait) {
                Ok(()) => return MountGuard { _held: Some(dir) },
                Err(Errno::EWOULDBLOCK | Errno::EINTR) if Instant::now() < give_up => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(_) => return MountGuard { _held: None },
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
        let _guard = MountGuard::take();
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
}
