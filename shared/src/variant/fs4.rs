//! `fs4`: the file lock of the ecosystem's most used lock crate, `fs4::FileExt::lock` /
//! `unlock` (fs2's maintained fork). Chosen over `fd-lock` by use and upkeep, as crates.io
//! reported them when it was added (from a stored copy of crates.io's API, date of copy
//! unknown, newer than April 2026): fs4 71.7 M downloads (19.1 M recent), last release 1.1.0 in
//! April 2026; fd-lock 67.2 M (14.6 M recent), last release 4.0.4 in March 2025. On Linux fs4
//! calls `flock(2)` through rustix (`LOCK_EX`, `LOCK_UN`), returning `EINTR` to its caller, so
//! the watchdog's signal reaches a blocked waiter. Its methods share std's names (`lock`,
//! `unlock`) and std's inherent ones win a plain method call, so this file names the trait to
//! reach the crate's own code.

use std::fs::File;
use std::os::fd::OwnedFd;

use nix::errno::Errno;

use super::spec::Spec;
use super::{Ctx, Exclusion, Handoff, Opened, SetupError, file_lock};
use crate::sys::io_errno;

pub(super) const SPEC: Spec = file_lock::whole_file(
    "fs4",
    open,
    file_lock::owned_by_description,
    "the fs4 crate; a description of its own per process",
    "fs4's async FileExt (tokio, smol): the blocking flock on a thread pool",
);

fn open<'a>(ctx: &Ctx<'a>, _: Vec<OwnedFd>) -> Result<Opened<'a>, SetupError> {
    Ok(Opened::in_arena(
        ctx,
        Fs4Lock {
            file: ctx.arena.file(),
        },
    ))
}

/// The whole arena file, locked through fs4.
#[derive(Debug)]
struct Fs4Lock<'a> {
    file: &'a File,
}

impl Handoff for Fs4Lock<'_> {
    fn exclusion(&self) -> Exclusion {
        Exclusion::Lock
    }

    fn acquire(&mut self) -> Result<(), Errno> {
        ::fs4::FileExt::lock(self.file).map_err(|e| io_errno(&e))
    }

    fn release(&mut self) -> Result<(), Errno> {
        ::fs4::FileExt::unlock(self.file).map_err(|e| io_errno(&e))
    }

    fn hand_over(&mut self, _next: usize) -> Result<(), Errno> {
        self.release()
    }

    fn wake_everyone(&mut self) -> Result<(), Errno> {
        // Waiters sleep in the kernel's flock queue; unlocking (done by the caller) wakes them.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use nix::errno::Errno;

    use super::super::file_lock::interrupt_check::waiter_behind_a_holder;
    use super::*;

    /// fs4 (through rustix) does not retry `flock` on `EINTR`: the watchdog can stop a waiter.
    #[test]
    fn a_blocked_waiter_returns_on_the_watchdogs_signal() {
        let got = waiter_behind_a_holder("fs4", |file| Fs4Lock { file }.acquire());
        assert_eq!(got, Err(Errno::EINTR));
    }
}
