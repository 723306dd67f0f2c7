//! The one mount lockfair ever makes: a small private tmpfs, for the semantics matrix's
//! mandatory-locking experiment (which needs a filesystem mounted with `-o mand`).

use std::path::Path;

use nix::NixPath;
use nix::errno::Errno;
use nix::libc;

/// Mounts a private tmpfs (`nosuid,nodev,noexec`, 1 MiB, mode 0700) on `target`, with
/// `MS_MANDLOCK` (`-o mand`) if `mandatory` is set. Needs CAP_SYS_ADMIN. nix's mount wrapper sits
/// behind a feature this crate does not enable, so this is a direct libc call.
pub fn mount_private_tmpfs(target: &Path, mandatory: bool) -> Result<(), Errno> {
    let mut flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    if mandatory {
        flags |= libc::MS_MANDLOCK;
    }
    target.with_nix_path(|target| {
        // SAFETY: every pointer is a NUL-terminated string that outlives the call; the kernel
        // copies them and keeps none.
        let rc = unsafe {
            libc::mount(
                c"lockfair".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                flags,
                c"size=1m,mode=0700".as_ptr().cast(),
            )
        };
        Errno::result(rc).map(drop)
    })?
}

/// `umount2(target, 0)`, or with `MNT_DETACH` (lazy: gone from the tree now, freed when unused).
pub fn unmount(target: &Path, detach: bool) -> Result<(), Errno> {
    let flags = if detach { libc::MNT_DETACH } else { 0 };
    target.with_nix_path(|target| {
        // SAFETY: `target` is a NUL-terminated string that outlives the call.
        let rc = unsafe { libc::umount2(target.as_ptr(), flags) };
        Errno::result(rc).map(drop)
    })?
}
