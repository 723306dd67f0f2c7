//! The one mount lockfair ever makes: a small tmpfs with `-o mand`, for the semantics matrix's
//! mandatory-locking experiment. It is made inside a mount namespace of its own (in a helper
//! process), so it vanishes with that process whatever happens: no unmount to forget, nothing
//! left behind by a kill.

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

/// Moves the calling process into a mount namespace of its own, with propagation turned off so
/// nothing mounted here reaches the parent namespace. Needs CAP_SYS_ADMIN.
pub fn private_mount_namespace() -> Result<(), Errno> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
    // SAFETY: a null source, type and data, and a NUL-terminated target that outlives the call.
    let rc = unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    Errno::result(rc).map(drop)
}
