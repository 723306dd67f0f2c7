//! Thin wrappers around the syscalls lockfair needs.
//!
//! This is the only module allowed `unsafe`: each block is one syscall or one pointer cast with a
//! `// SAFETY:` line. Everything above works with `OwnedFd`, references and `Result`s, and gets
//! errors as [`nix::errno::Errno`] so callers can match on `EINTR` or `EAGAIN` and print names.
#![allow(unsafe_code)]

pub mod clock;
pub mod cpu;
pub mod fdkind;
pub mod futex;
pub mod idle;
pub mod kcmp;
pub mod locks;
pub mod mapping;
pub mod memfd;
pub mod mount;
pub mod out_dir;
pub mod pidfd;
pub mod poll;
pub mod prefetch;
pub mod rawio;
pub mod reactor;
pub mod robust_list;
pub mod robust_mutex;
pub mod rusage;
pub mod scm;
pub mod signal;
pub mod tracefs;
pub mod uring;

use nix::errno::Errno;

/// Converts rustix's error into nix's, so the rest of the crate has one errno type.
pub(crate) fn errno(e: rustix::io::Errno) -> Errno {
    Errno::from_raw(e.raw_os_error())
}

/// The errno inside an `std::io::Error` (`EIO` if it carries none), for the same reason.
pub(crate) fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(Errno::EIO as i32))
}
