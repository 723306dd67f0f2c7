//! The round loops driven by a scripted mechanism, one contender on the test's thread: the fake
//! [`Handoff`](crate::variant::Handoff) plays the other contenders by writing the arena the way
//! they would, on a clock the test moves by hand, so whoops, overlaps, barging, deadlines and dead
//! peers happen exactly when the script says, with no second process and no sleep.

mod fake;
mod free;
mod start;
mod turns;

use hdrhistogram::Histogram;

use super::watchdog::{AbortHandle, Watchdog};
use super::{Plan, SessionError};
use crate::arena::{Arena, Header};
use crate::measure::ContenderStats;
use crate::variant::{Exclusion, Handoff, Turn};
use fake::FakeHandoff;

/// The test clock: CLOCK_MONOTONIC until a test stops it, then only what the test says.
pub(super) mod clock {
    use std::cell::Cell;

    thread_local! {
        static NOW: Cell<Option<u64>> = const { Cell::new(None) };
    }

    /// What the round loops read as CLOCK_MONOTONIC.
    pub(crate) fn monotonic_ns() -> u64 {
        NOW.get().unwrap_or_else(crate::sys::clock::monotonic_ns)
    }

    /// This thread's clock stands at `ns` and moves only by [`advance`] until the guard drops.
    pub(crate) fn stop_at(ns: u64) -> Stopped {
        NOW.set(Some(ns));
        Stopped(())
    }

    /// Busy work on the stopped clock: it stands at `deadline_ns` (or later) afterwards.
    pub(crate) fn busy_until(deadline_ns: u64) -> u64 {
        match NOW.get() {
            Some(now) => {
                let now = now.max(deadline_ns);
                NOW.set(Some(now));
                now
            }
            None => crate::sys::clock::monotonic_ns().max(deadline_ns),
        }
    }

    /// Moves this thread's stopped clock on by `ns`.
    pub(crate) fn advance(ns: u64) {
        NOW.set(NOW.get().map(|now| now + ns));
    }

    /// Gives this thread its real clock back when dropped.
    #[derive(Debug)]
    pub(crate) struct Stopped(());

    impl Drop for Stopped {
        fn drop(&mut self) {
            NOW.set(None);
        }
    }
}

/// Where the test clock stands when the contender leaves the start line.
const START_NS: u64 = 1_000_000_000;
/// Far enough that no test reaches it.
const NO_DEADLINE: u64 = u64::MAX / 4;

/// `rounds` for `contender` of `contenders`, with no deadline in reach.
fn plan(contender: usize, contenders: usize, rounds: u64) -> Plan {
    Plan {
        contender,
        contenders,
        rounds,
        max_ns: NO_DEADLINE,
        start_timeout_ns: 1_000_000_000,
        cpu: None,
        hold_ns: 0,
        think_ns: 0,
    }
}

/// One contender's world: an arena whose other contenders already wait at the start line (so
/// ours is the last to arrive and never waits there), its abort handle, and a stopped clock.
struct Bench {
    arena: Arena,
    handle: AbortHandle,
    _clock: clock::Stopped,
}

impl Bench {
    fn new(contenders: u32) -> Bench {
        let arena = Arena::create(contenders).unwrap();
        arena
            .header()
            .arrived
            .store(contenders - 1, std::sync::atomic::Ordering::Relaxed);
        Bench {
            arena,
            handle: AbortHandle::new().unwrap(),
            _clock: clock::stop_at(START_NS),
        }
    }

    fn header(&self) -> &Header {
        self.arena.header()
    }

    /// Contender `me`'s end of the mechanism; contender `me + 1` plays the peer.
    fn handoff(&self, me: usize, exclusion: Exclusion) -> FakeHandoff<'_> {
        let contenders = self
            .header()
            .contenders
            .load(std::sync::atomic::Ordering::Relaxed);
        let peer = (me + 1) % contenders as usize;
        FakeHandoff::new(self.header(), self.handle.clone(), me, peer, exclusion)
    }

    fn turns(
        &self,
        plan: &Plan,
        handoff: &mut dyn Handoff,
        turn: &mut dyn Turn,
    ) -> Result<ContenderStats, SessionError> {
        let dog = Watchdog::idle(&self.handle);
        super::turns::run_turns(self.header(), handoff, turn, plan, &dog)
    }

    fn free(&self, plan: &Plan, handoff: &mut dyn Handoff) -> Result<ContenderStats, SessionError> {
        let dog = Watchdog::idle(&self.handle);
        super::free::run_free(&self.arena, handoff, plan, &dog)
    }
}

/// The values a histogram holds, with their counts (exact below 2048).
fn values(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}
