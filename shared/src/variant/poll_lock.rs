//! `poll-lock`: the polling loop programs write around a non-blocking lock. `File::try_lock`
//! (`flock(LOCK_EX | LOCK_NB)` on Linux); on `WouldBlock`, sleep and try again. Nobody queues in
//! the kernel, so an unlock wakes nobody: the lock goes to whoever tries next, and a waiter pays
//! up to a whole sleep after every release it missed.
//!
//! The sleep is `--poll-sleep` (default [`DEFAULT_POLL_SLEEP`], 1 ms), each one drawn uniformly
//! from 0.5–1.5× it so that pollers do not beat in step. Programs write 1 to 100 ms (a lock file
//! checked "often enough" by a human's measure); a handoff here takes microseconds, so 1 ms is
//! already a thousand handoffs' worth, and the shortest sleep people write: shorter sleeps are
//! rounded up by the timer slack (50 µs) and turn the loop into a spinning one. Longer sleeps
//! scale the loss, and make a run of thousands of rounds take minutes (try `--poll-sleep 10ms`).
//!
//! Both sides need the sleep, and only this variant reads it: the client writes it in this
//! variant's arena region before sending the arena, and every contender reads it there when it
//! opens, clamped to [`MIN_POLL_SLEEP`]..=[`MAX_POLL_SLEEP`] (a peer's scribbles are only a
//! wrong sleep). The sleep is `clock_nanosleep`, which returns `EINTR` on the watchdog's signal
//! (never restarted), so a poller leaves as soon as the run stops, however long its sleep.

use std::fs::{File, TryLockError};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::time::TimeSpec;
use nix::time::{ClockId, ClockNanosleepFlags, clock_nanosleep};

use super::fair_futex::XorShift;
use super::spec::Spec;
use super::{Ctx, Exclusion, Handoff, Opened, Setup, SetupError, file_lock};
use crate::arena::Arena;
use crate::sys::io_errno;
use crate::sys::mapping::shared_atomics;

/// The mean sleep between two tries unless `--poll-sleep` says otherwise.
pub const DEFAULT_POLL_SLEEP: Duration = Duration::from_millis(1);
/// The shortest sleep accepted: below the timer slack a sleep is a spin.
pub const MIN_POLL_SLEEP: Duration = Duration::from_micros(50);
/// The longest sleep accepted: one that still ends a run of a few rounds within a minute.
pub const MAX_POLL_SLEEP: Duration = Duration::from_secs(1);

/// A whole-file flock like `std-lock`'s, with its sleep prepared in the arena.
pub(super) const SPEC: Spec = Spec {
    prepare,
    ..file_lock::whole_file(
        "poll-lock",
        open,
        file_lock::owned_by_description,
        "nothing; a description of its own per process",
        "try_lock, then an async sleep: no thread blocked",
    )
};

shared_atomics! {
/// `poll-lock`'s region: the mean sleep, in nanoseconds, as the client asked for it.
#[derive(Debug)]
struct PollRegion {
    sleep_ns: AtomicU64,
}
}

fn prepare(arena: &Arena, setup: &Setup) -> Result<(), SetupError> {
    let ns = u64::try_from(setup.poll_sleep.as_nanos()).unwrap_or(u64::MAX);
    arena
        .region::<PollRegion>()
        .sleep_ns
        .store(ns, Ordering::Release);
    Ok(())
}

fn open<'a>(ctx: &Ctx<'a>, _: Vec<OwnedFd>) -> Result<Opened<'a>, SetupError> {
    let sleep = asked_sleep(ctx.arena);
    Ok(Opened::in_arena(
        ctx,
        PollLock::new(ctx.arena.file(), ctx.contender, sleep),
    ))
}

/// The sleep the client wrote, within the accepted range whatever a peer wrote instead.
fn asked_sleep(arena: &Arena) -> Duration {
    let asked = arena
        .region::<PollRegion>()
        .sleep_ns
        .load(Ordering::Acquire);
    Duration::from_nanos(asked).clamp(MIN_POLL_SLEEP, MAX_POLL_SLEEP)
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

    /// The client's `--poll-sleep` reaches every contender through the arena, and a scribbled
    /// value is only a sleep at one of the bounds.
    #[test]
    fn every_contender_reads_the_sleep_the_client_asked_for_within_bounds() {
        let arena = Arena::create(2).unwrap();
        assert_eq!(asked_sleep(&arena), MIN_POLL_SLEEP, "an unprepared arena");
        let ms = Duration::from_millis;
        for (asked, got) in [
            (ms(3), ms(3)),
            (DEFAULT_POLL_SLEEP, DEFAULT_POLL_SLEEP),
            (Duration::ZERO, MIN_POLL_SLEEP),
            (Duration::from_secs(3600), MAX_POLL_SLEEP),
            (Duration::MAX, MAX_POLL_SLEEP),
        ] {
            let setup = Setup {
                poll_sleep: asked,
                ..Setup::new(crate::variant::Mode::Free, 2)
            };
            prepare(&arena, &setup).unwrap();
            assert_eq!(asked_sleep(&arena), got, "{asked:?}");
        }
        // Through the registry, as `run` prepares it.
        let setup = Setup::new(crate::variant::Mode::Turns, 2);
        super::super::Variant::PollLock
            .prepare_with(&arena, &setup)
            .unwrap();
        assert_eq!(asked_sleep(&arena), DEFAULT_POLL_SLEEP);
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
