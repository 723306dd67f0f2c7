//! Mandatory locking, tried the way the article describes it, and reported as the kernel answers.
//!
//! Linux once enforced POSIX locks on ordinary `read`/`write` for files on a filesystem mounted
//! with `-o mand` whose mode has the setgid bit without group execute. Linux 5.15 removed it.
//! The experiment never assumes either way:
//!
//! 1. With CAP_SYS_ADMIN, a helper process moves into a mount namespace of its own, mounts a
//!    tmpfs with `MS_MANDLOCK` on a directory inside our private one and records the answer
//!    (`EPERM`, or accepted, and what its `/proc/self/mountinfo` then lists). Without the
//!    capability, say so and skip the mount.
//! 2. On that mount (if any) and on the private directory's own filesystem: a file with mode 2644
//!    (setgid, no group execute; the mode is read back, not assumed) is exclusively POSIX-locked
//!    by a helper process, and this process `write`s and `read`s it through an `O_NONBLOCK`
//!    descriptor (on the mount, one the helper opened and sent: the mount is not visible here).
//!    A kernel that enforces refuses both with `EAGAIN` (and `O_NONBLOCK` keeps an enforcing
//!    kernel from putting us to sleep); otherwise they succeed.
//!
//! The mount (`nosuid,nodev,noexec`, 1 MiB, 0700) exists only in the helper's namespace, so it
//! vanishes with the helper, however this process ends: there is no unmount to forget.

use std::fs::{File, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use nix::errno::Errno;
use serde::Serialize;

use super::scratch::{self, ScratchDir};
use super::{MatrixError, errno_name};
use crate::locking::LockFamily;
use crate::peer::{PeerProcess, PeerRequest};
use crate::procinfo::{self, MountInfo};
use crate::sys::locks::LockMode;

/// What the report says when the mount cannot even be tried.
pub const SKIPPED: &str = "skipped: needs CAP_SYS_ADMIN to mount with -o mand";

/// The whole mandatory-locking experiment.
#[derive(Clone, Debug, Serialize)]
pub struct MandatoryLocking {
    /// `uname -r`.
    pub kernel: String,
    /// `mounted`, `refused: <errno>`, or [`SKIPPED`].
    pub mount: String,
    /// The mount's errno, when refused.
    pub mount_errno: Option<String>,
    /// How `/proc/self/mountinfo` lists the `-o mand` tmpfs while it is mounted.
    pub mount_info: Option<MountInfo>,
    /// One attempt per filesystem: the `-o mand` tmpfs (when mounted), then the default one.
    pub attempts: Vec<MandatoryAttempt>,
    /// The verdict: some conflicting read or write was refused.
    pub enforced: bool,
}

/// A conflicting `read`/`write` against a POSIX-locked setgid file on one filesystem.
#[derive(Clone, Debug, Serialize)]
pub struct MandatoryAttempt {
    /// Which filesystem: `tmpfs -o mand` or `default`.
    pub filesystem: &'static str,
    /// Its type, from `fstatfs` (`ext2/3/4`, `tmpfs`, ...).
    pub fs_type: String,
    /// The file's permission bits as the kernel reports them (octal).
    pub file_mode: String,
    /// Setgid set and group execute clear: the mode that used to ask for mandatory locking.
    pub setgid_without_group_exec: bool,
    /// The helper process holding an exclusive POSIX lock on the whole file.
    pub holder_pid: i32,
    /// Our non-blocking `write`: `null` if it went through.
    pub write_errno: Option<String>,
    /// Our non-blocking `read`: `null` if it went through.
    pub read_errno: Option<String>,
    /// The verdict: the write or the read was refused.
    pub enforced: bool,
}

pub(super) fn measure(dir: &ScratchDir, helper: &Path) -> Result<MandatoryLocking, MatrixError> {
    let kernel = procinfo::kernel_release().unwrap_or_else(|| "unknown".to_string());
    let mut attempts = Vec::new();
    // The helper that made the mount must outlive the probe: the mount dies with it.
    let mut mount_holder = None;
    let (mount, mount_errno, mount_info) =
        if procinfo::has_effective_capability(procinfo::CAP_SYS_ADMIN) {
            let path = dir.path().join("mand");
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&path)
                .map_err(super::file_err("create the mount point", &path))?;
            let mut holder = PeerProcess::spawn(helper)?;
            match holder.mount_mandatory(scratch::utf8(&path)?, "mandatory".to_string())? {
                Ok((file, info)) => {
                    attempts.push(probe("tmpfs -o mand", &file, holder.pid()));
                    mount_holder = Some(holder);
                    // Only report a mount that was really listed as the tmpfs.
                    let info = info.filter(|i| i.fs_type == "tmpfs");
                    ("mounted".to_string(), None, info)
                }
                Err(e) => (
                    format!("refused: {}", errno_name(e)),
                    Some(errno_name(e)),
                    None,
                ),
            }
        } else {
            (SKIPPED.to_string(), None, None)
        };
    drop(mount_holder);
    attempts.push(default_filesystem(dir, helper)?);
    Ok(MandatoryLocking {
        kernel,
        mount,
        mount_errno,
        mount_info,
        enforced: attempts.iter().any(|a| a.enforced),
        attempts,
    })
}

/// The private directory's own filesystem: we create the setgid file, a helper locks it.
fn default_filesystem(dir: &ScratchDir, helper: &Path) -> Result<MandatoryAttempt, MatrixError> {
    let (path, mut file) = dir.fresh("mandatory")?;
    let file_err = |what| super::file_err(what, &path);
    file.write_all(b"mandatory locking, as the article tried it\n")
        .map_err(file_err("write"))?;
    file.set_permissions(Permissions::from_mode(0o2644))
        .map_err(file_err("chmod 2644"))?;

    let (mut holder, slot) = super::helper_opening(helper, &path)?;
    holder
        .act(&PeerRequest::Lock {
            slot,
            family: LockFamily::Posix,
            mode: LockMode::Exclusive,
            wait: false,
        })?
        .map_err(|e| MatrixError::Helper("take an exclusive POSIX lock", e))?;

    let ours: File = File::options()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(&path)
        .map_err(file_err("open (O_NONBLOCK)"))?;
    Ok(probe("default", &ours, holder.pid()))
    // The helper is killed and reaped here.
}

/// A non-blocking `write` and `read` through `ours` while `holder_pid` holds an exclusive POSIX
/// lock on the whole file. The mode and filesystem are read back from the descriptor.
fn probe(filesystem: &'static str, ours: &File, holder_pid: i32) -> MandatoryAttempt {
    let mode = ours
        .metadata()
        .map_or(0, |m| m.permissions().mode() & 0o7777);
    let fs_type = nix::sys::statfs::fstatfs(ours)
        .map(|s| fs_name(s.filesystem_type().0 as u64))
        .unwrap_or_else(|_| "unknown".to_string());
    let name_of = |r: std::io::Result<usize>| r.err().map(|e| errno_name(crate::sys::io_errno(&e)));
    let write_errno = name_of(ours.write_at(b"M", 0));
    let mut buf = [0u8; 8];
    let read_errno = name_of(ours.read_at(&mut buf, 0));
    let refused = |e: &Option<String>| e.as_deref() == Some(errno_name(Errno::EAGAIN).as_str());
    MandatoryAttempt {
        filesystem,
        fs_type,
        file_mode: format!("{mode:o}"),
        setgid_without_group_exec: mode & 0o2000 != 0 && mode & 0o010 == 0,
        holder_pid,
        enforced: refused(&write_errno) || refused(&read_errno),
        write_errno,
        read_errno,
    }
}

/// A filesystem's name from its `statfs` magic number.
fn fs_name(magic: u64) -> String {
    match magic & 0xffff_ffff {
        0xef53 => "ext2/3/4".to_string(),
        0x0102_1994 => "tmpfs".to_string(),
        0x9123_683e => "btrfs".to_string(),
        0x5846_5342 => "xfs".to_string(),
        0x794c_7630 => "overlayfs".to_string(),
        0x2fc1_2fc1 => "zfs".to_string(),
        0x6573_5546 => "fuse".to_string(),
        other => format!("0x{other:x}"),
    }
}
