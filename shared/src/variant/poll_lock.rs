//! `poll-lock`: the polling loop programs write around a non-blocking lock. `File::try_lock`
//! (`flock(LOCK_EX | LOCK_NB)` on Linux); on `WouldBlock`, sleep and try again. Nobody queues in
//! the kernel, so an unlock wakes nobody: the lock goes to whoever tries next, and a waiter pays
//! up to a whole sleep after every release it missed.
//!
//! The sleep is [`POLL_SLEEP`], 1 ms, drawn uniformly from 0.5–1.5× so that pollers do not beat
//! in step. Programs write 1 to 100 ms (a lock file checked "often enough" by a human's
//! measure); a handoff here takes microseconds, so 1 ms is already a thousand handoffs' worth,
//! and the shortest sleep anyone writes: shorter sleeps are rounded up by the timer slack
//! (50 µs) and turn the loop into a spinning one. Longer sleeps only scale the loss, and would
//! make a run of thousands of rounds take minutes. The sleep is fixed for now (not yet a
//! command-line option: both sides would need it in the hello).
//!
//! The sleep is `clock_nanosleep`, which returns `EINTR` on the watchdog's signal (never
//! restarted), so a poller leaves as soon as the run stops.

use std::fs::{File, TryLockError};
use std::os::fd::OwnedFd;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::time::TimeSpec;
use nix::time::{ClockId, ClockNanosleepFlags, clock_nanosleep};

use super::fair_futex::XorShift;
use super::holder_death::{Description, HolderDeath};
use super::spec::{Death, Family, Fds, Overtaking, Profile, Spec, Supports, no_preparation};
use super::{Ctx, Exclusion, Handoff, Opened, SetupError, file_lock};
use crate::sys::io_errno;

/// The mean sleep between two tries.
pub(super) const POLL_SLEEP: Duration = Duration::from_millis(1);

pub(super) const SPEC: Spec = Spec {
    name: "poll-lock",
    family: Family::FileLocks,
    shares_description: false,
    supports: Supports::EVERYTHING,
    fds: Fds::NONE,
    prepare: no_preparation,
    open,
    death: HolderDeath::plain(
        &[Description::Own, Description::Shared],
        file_lock::owned_by_description,
    ),
    whoops_in_storms: true,
    yardstick: file_lock::NO_YARDSTICK,
    profile: Profile {
        overtaking: Overtaking::Unbounded,
        death: Death::Released,
        needs: "nothing; a description of its own per process",
        from_async: "try_lock, then an async sleep: no thread blocked",
    },
};

fn open<'a>(ctx: &Ctx<'a>, _: Vec<OwnedFd>) -> Result<Opened<'a>, SetupError> {
    Ok(Opened::in_arena(
        ctx,
        PollLock::new(ctx.arena.file(), ctx.contender, POLL_SLEEP),
    ))
}

/// Try, sleep, try again, on the whole arena file.
#[derive(Debug)]
struct PollLock<'a> {
    file: &'a File,
    sleep: Duration,
    rng: XorShift,
}

impl<'a> PollLock<'a> {
    fn new(file: &'a File, contender: usize, sleep: Duration) -> Self {
        PollLock {
            file,
            sleep,
            rng: XorShift::seeded(contender),
        }
    }

    /// One sleep of 0.5–1.5× the mean; `EINTR` if the watchdog interrupts it.
    fn nap(&mut self) -> Result<(), Errno> {
        let mean = self.sleep.as_nanos().min(u128::from(u64::MAX / 2)) as u64;
        let ns = mean / 2 + self.rng.below(mean + 1);
        let request = TimeSpec::from_duration(Duration::from_nanos(ns));
        clock_nanosleep(
            ClockId::CLOCK_MONOTONIC,
            ClockNanosleepFlags::empty(),
            &request,
        )
        .map(drop)
    }
}

impl Handoff for PollLock<'_> {
    fn exclusion(&self) -> Exclusion {
        Exclusion::Lock
    }

    fn acquire(&mut self) -> Result<(), Errno> {
        loop {
            match self.file.try_lock() {
                Ok(()) => return Ok(()),
                Err(TryLockError::WouldBlock) => self.nap()?,
                Err(TryLockError::Error(e)) => return Err(io_errno(&e)),
            }
        }
    }

    fn release(&mut self) -> Result<(), Errno> {
        self.file.unlock().map_err(|e| io_errno(&e))
    }

    fn hand_over(&mut self, _next: usize) -> Result<(), Errno> {
        self.release()
    }

    fn wake_everyone(&mut self) -> Result<(), Errno> {
        // Pollers sleep on their own clocks: the watchdog's signal ends their sleep.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use nix::errno::Errno;

    use super::super::file_lock::interrupt_check::waiter_behind_a_holder;
    use super::*;

    /// A poller asleep between two tries leaves on the watchdog's signal.
    #[test]
    fn a_sleeping_poller_returns_on_the_watchdogs_signal() {
        let got = waiter_behind_a_holder("poll-lock", |file| {
            PollLock::new(file, 0, Duration::from_secs(3600)).acquire()
        });
        assert_eq!(got, Err(Errno::EINTR));
    }

    /// Each nap lasts 0.5-1.5x the mean: never a spin, never much longer.
    #[test]
    fn a_nap_lasts_about_the_mean() {
        let file = File::open("/dev/null").unwrap();
        let mut poller = PollLock::new(&file, 1, Duration::from_millis(2));
        for _ in 0..5 {
            let start = Instant::now();
            poller.nap().unwrap();
            assert!(start.elapsed() >= Duration::from_millis(1));
        }
    }
}
