//! `kcmp(2)` with `KCMP_FILE`: are two descriptors, possibly of two processes, the same open file
//! description? Neither nix nor rustix wraps it, so this is one raw syscall.
//!
//! The kernel allows it when the caller may inspect both processes (a `PTRACE_MODE_READ` check:
//! the same uid without Yama's `ptrace_scope` 3, or `CAP_SYS_PTRACE`). Container runtimes often
//! filter it out with seccomp (`EPERM`), and kernels built without `CONFIG_KCMP` lack it
//! (`ENOSYS`): callers report those instead of failing.

use std::os::fd::RawFd;

use nix::errno::Errno;
use nix::libc;

/// `KCMP_FILE` from `<linux/kcmp.h>`.
const KCMP_FILE: libc::c_long = 0;

/// True when descriptor `fd1` of process `pid1` and descriptor `fd2` of process `pid2` refer to
/// the same open file description. `ESRCH`: a process is gone; `EBADF`: a descriptor is not
/// open (or the process has exited and dropped its files); `EPERM`/`ENOSYS`: kcmp is unavailable.
pub fn same_file(pid1: i32, fd1: RawFd, pid2: i32, fd2: RawFd) -> Result<bool, Errno> {
    // SAFETY: kcmp takes five integers (passed as full longs, as the variadic syscall(2) reads
    // them) and reads or writes no memory of ours.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            libc::c_long::from(pid1),
            libc::c_long::from(pid2),
            KCMP_FILE,
            libc::c_long::from(fd1),
            libc::c_long::from(fd2),
        )
    };
    // 0 means equal; 1 and 2 order two different descriptions.
    Errno::result(rc).map(|order| order == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_dup_is_the_same_description_and_a_reopen_is_not() {
        let me = std::process::id() as i32;
        let f = std::fs::File::open("/proc/self/exe").unwrap();
        let dup = f.try_clone().unwrap();
        let reopened = std::fs::File::open("/proc/self/exe").unwrap();
        match same_file(me, f.as_raw_fd(), me, dup.as_raw_fd()) {
            Ok(same) => assert!(same),
            // A sandbox without kcmp: nothing more to check here.
            Err(Errno::EPERM | Errno::ENOSYS) => return,
            Err(e) => panic!("kcmp failed: {e}"),
        }
        assert!(!same_file(me, f.as_raw_fd(), me, reopened.as_raw_fd()).unwrap());
        let closed = reopened.as_raw_fd();
        drop(reopened);
        assert_eq!(same_file(me, f.as_raw_fd(), me, closed), Err(Errno::EBADF));
    }
}
