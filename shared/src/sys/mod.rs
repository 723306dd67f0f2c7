//! Thin wrappers around the syscalls lockfair needs.
//!
//! This is the only module allowed `unsafe`: each block is one syscall or one pointer cast with a
//! `// SAFETY:` line. Everything above works with `OwnedFd`, references and `Result`s, and gets
//! errors as [`nix::errno::Errno`] so callers can match on `EINTR` or `EAGAIN` and print names.
//!
//! One syscall crate above this module: code above `sys` calls nix (the project's choice) and
//! matches nix's `Errno`, never rustix. What only rustix offers (futex and io_uring words, bare
//! `read`/`write`/`pread`/`lseek` without glibc's cancellation points, `poll` on borrowed
//! descriptors, pidfds, seals) is wrapped here, and its errors converted here (`errno`, private
//! to this module); the few rustix types the rest of the crate must name ([`memfd::SealFlags`])
//! are re-exported from here. A test below holds the rule.
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
pub mod priority;
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
fn errno(e: rustix::io::Errno) -> Errno {
    Errno::from_raw(e.raw_os_error())
}

/// The errno inside an `std::io::Error` (`EIO` if it carries none), for the same reason.
pub(crate) fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(Errno::EIO as i32))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Outside `sys`, no library code names rustix (comments and unit tests aside).
    #[test]
    fn rustix_stays_inside_sys() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut naming = Vec::new();
        let mut dirs = vec![src.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path == src.join("sys") {
                    continue;
                } else if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") && names_rustix(&path) {
                    naming.push(path);
                }
            }
        }
        assert!(naming.is_empty(), "rustix named above sys: {naming:?}");
    }

    /// True if the file's code before its unit-test module mentions rustix outside comments.
    fn names_rustix(path: &Path) -> bool {
        let text = std::fs::read_to_string(path).unwrap();
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
        code.lines()
            .any(|l| l.split("//").next().unwrap_or("").contains("rustix"))
    }
}
