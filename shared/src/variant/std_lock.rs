//! `std-lock`: `std::fs::File::lock` / `unlock`, the lock a Rust program reaches first (stable
//! since Rust 1.89). On Linux std implements it with `flock(2)` (`LOCK_EX`, then `LOCK_UN`;
//! `strace` shows exactly those calls), and does not retry on `EINTR`, so the watchdog's signal
//! still reaches a blocked waiter. Like `flock`, it excludes only because each contender locks
//! through an open file description of its own; what it adds is std's `io::Error` path, the
//! price a program pays for the portable call.

use std::fs::File;
use std::os::fd::OwnedFd;

use nix::errno::Errno;

use super::spec::Spec;
use super::{Ctx, Exclusion, Handoff, Opened, SetupError, file_lock};
use crate::sys::io_errno;

pub(super) const SPEC: Spec = file_lock::whole_file(
    "std-lock",
    open,
    file_lock::owned_by_description,
    "Rust 1.89; a description of its own per process",
    "a blocking File::lock: spawn_blocking (no descriptor to poll)",
);

fn open<'a>(ctx: &Ctx<'a>, _: Vec<OwnedFd>) -> Result<Opened<'a>, SetupError> {
    Ok(Opened::in_arena(
        ctx,
        StdLock {
            file: ctx.arena.file(),
        },
    ))
}

/// The whole arena file, locked through std.
#[derive(Debug)]
struct StdLock<'a> {
    file: &'a File,
}

impl Handoff for StdLock<'_> {
    fn exclusion(&self) -> Exclusion {
        Exclusion::Lock
    }

    fn acquire(&mut self) -> Result<(), Errno> {
        self.file.lock().map_err(|e| io_errno(&e))
    }

    fn release(&mut self) -> Result<(), Errno> {
        self.file.unlock().map_err(|e| io_errno(&e))
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

    /// std does not retry `flock` on `EINTR`: the watchdog can stop a blocked waiter.
    #[test]
    fn a_blocked_waiter_returns_on_the_watchdogs_signal() {
        let got = waiter_behind_a_holder("std-lock", |file| StdLock { file }.acquire());
        assert_eq!(got, Err(Errno::EINTR));
    }
}
