//! Mounting and unmounting tracefs, for `--kernel-trace` on a machine where nobody mounted it.
//! Unlike the matrix's tmpfs this mount is in the machine's own namespace (tracefs instances are
//! global anyway), so the caller must unmount what it mounted.

use std::path::Path;

use nix::NixPath;
use nix::errno::Errno;
use nix::libc;

/// Mounts tracefs on `target` with `source` as the mount's name (what `/proc/self/mountinfo`
/// shows, so a later run can tell a mount lockfair made from one the system made). Needs
/// CAP_SYS_ADMIN.
pub fn mount_tracefs(source: &std::ffi::CStr, target: &Path) -> Result<(), Errno> {
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    target.with_nix_path(|target| {
        // SAFETY: every pointer is a NUL-terminated string that outlives the call, data is null;
        // the kernel copies them and keeps none.
        let rc = unsafe {
            libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                c"tracefs".as_ptr(),
                flags,
                std::ptr::null(),
            )
        };
        Errno::result(rc).map(drop)
    })?
}

/// Unmounts `target`; `EBUSY` while anyone still has a file open under it.
pub fn unmount(target: &Path) -> Result<(), Errno> {
    target.with_nix_path(|target| {
        // SAFETY: a NUL-terminated path that outlives the call.
        let rc = unsafe { libc::umount2(target.as_ptr(), 0) };
        Errno::result(rc).map(drop)
    })?
}
