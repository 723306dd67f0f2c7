//! A scripted mechanism and turn: each call returns what the script says, and the other
//! contenders act in between by writing the arena header as they would.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use nix::errno::Errno;

use super::clock;
use crate::arena::{Header, StopReason};
use crate::session::watchdog::{AbortHandle, AbortReason};
use crate::variant::{Exclusion, Handoff, Turn};

/// How long a scripted wait takes unless the script says otherwise.
pub const WAIT_NS: u64 = 100;
/// More calls of `acquire` than any test asks for: a loop that never ends fails instead.
const RUNAWAY: usize = 1000;

/// What the fake mechanism was asked to do, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Did {
    Acquire,
    Release,
    HandOver(usize),
    WakeEveryone,
}

/// What the peer contender does while we wait, written into the arena as it would write it.
#[derive(Clone, Copy, Debug)]
pub enum Peer {
    /// Enters the critical section (its `occupant` bit), and stays.
    Enters,
    /// Leaves the critical section.
    Leaves,
    /// Starts waiting for the lock (its `waiting` bit).
    Waits,
    /// Got the lock and let it go: stops waiting, is `last_holder`, and as releaser notes who
    /// waited (us).
    Holds,
    /// Asks for the lock for the first time (`begun`).
    Begins,
    /// Is the first to finish its acquisitions (`first_finished`).
    Finishes,
    /// Stamped its release this many ns before our wait ended (`release_ns`).
    Released(u64),
    /// Stops the run (the arena's stop word).
    Stops(StopReason),
    /// Dies: our watchdog sees its pid exit and aborts the session.
    Dies(i32),
    /// Writes whatever it likes (the arena is shared: a peer can write any word).
    Writes(fn(&Header)),
}

/// One call of `acquire`: how long it waits (on the test clock), what the peer does meanwhile,
/// and what it returns.
#[derive(Debug)]
pub struct Call {
    wait_ns: u64,
    peer: Vec<Peer>,
    result: Result<(), Errno>,
}

/// `acquire` gets the mechanism.
pub fn got() -> Call {
    Call {
        wait_ns: WAIT_NS,
        peer: Vec::new(),
        result: Ok(()),
    }
}

/// `acquire` is interrupted (the watchdog's signal).
pub fn interrupted() -> Call {
    fails(Errno::EINTR)
}

/// `acquire` fails with `errno`.
pub fn fails(errno: Errno) -> Call {
    Call {
        result: Err(errno),
        ..got()
    }
}

impl Call {
    /// The wait takes `ns`.
    pub fn after(self, ns: u64) -> Call {
        Call {
            wait_ns: ns,
            ..self
        }
    }

    /// The peer does `what` during the wait.
    pub fn with(mut self, what: Peer) -> Call {
        self.peer.push(what);
        self
    }
}

/// Contender `me`'s end of a scripted mechanism; contender `peer` acts as the script says.
pub struct FakeHandoff<'a> {
    h: &'a Header,
    handle: AbortHandle,
    me: usize,
    peer: usize,
    exclusion: Exclusion,
    /// Once the script runs out, `acquire` just gets the mechanism.
    calls: VecDeque<Call>,
    /// Once these run out, `release` succeeds.
    releases: VecDeque<Result<(), Errno>>,
    /// Plays a lock with a queue of its own (a ticket): it raises our `waiting` bit itself and
    /// numbers our arrivals; the next ticket it hands out.
    ticket: Option<u64>,
    /// The ticket of the wait that got the mechanism last.
    held_ticket: Option<u64>,
    pub did: Vec<Did>,
    /// The arena's `waiting` mask as each `acquire` began.
    pub waiting_seen: Vec<u64>,
}

impl<'a> FakeHandoff<'a> {
    pub fn new(
        h: &'a Header,
        handle: AbortHandle,
        me: usize,
        peer: usize,
        exclusion: Exclusion,
    ) -> Self {
        FakeHandoff {
            h,
            handle,
            me,
            peer,
            exclusion,
            calls: VecDeque::new(),
            releases: VecDeque::new(),
            ticket: None,
            held_ticket: None,
            did: Vec::new(),
            waiting_seen: Vec::new(),
        }
    }

    /// `acquire` answers `calls`, in order.
    pub fn script(mut self, calls: impl IntoIterator<Item = Call>) -> Self {
        self.calls.extend(calls);
        self
    }

    /// `release` answers `results`, in order.
    pub fn releases(mut self, results: impl IntoIterator<Item = Result<(), Errno>>) -> Self {
        self.releases.extend(results);
        self
    }

    /// A ticket lock whose tickets start at `first`.
    pub fn ticket(mut self, first: u64) -> Self {
        self.ticket = Some(first);
        self
    }

    /// How often it was asked to do `what`.
    pub fn count(&self, what: Did) -> usize {
        self.did.iter().filter(|&&d| d == what).count()
    }

    fn act(&self, what: Peer) {
        let (h, bit, tag) = (self.h, 1u64 << self.peer, self.peer as u32 + 1);
        match what {
            Peer::Enters => {
                h.occupant.fetch_or(bit, Ordering::AcqRel);
            }
            Peer::Leaves => {
                h.occupant.fetch_and(!bit, Ordering::AcqRel);
            }
            Peer::Waits => {
                h.waiting.fetch_or(bit, Ordering::AcqRel);
            }
            Peer::Holds => {
                h.waiting.fetch_and(!bit, Ordering::AcqRel);
                h.last_holder.store(tag, Ordering::Release);
                let waiting = h.waiting.load(Ordering::Acquire);
                h.waiting_at_release.store(waiting, Ordering::Release);
            }
            Peer::Begins => {
                h.begun.fetch_add(1, Ordering::AcqRel);
            }
            Peer::Finishes => {
                let (success, failure) = (Ordering::AcqRel, Ordering::Acquire);
                let _ = h.first_finished.compare_exchange(0, tag, success, failure);
            }
            Peer::Released(ago) => h
                .release_ns
                .store(clock::monotonic_ns() - ago, Ordering::Release),
            Peer::Stops(reason) => h.request_stop(reason),
            Peer::Dies(pid) => self.handle.abort(AbortReason::PeerDied(pid)),
            Peer::Writes(write) => write(h),
        }
    }
}

impl Handoff for FakeHandoff<'_> {
    fn exclusion(&self) -> Exclusion {
        self.exclusion
    }

    fn acquire(&mut self) -> Result<(), Errno> {
        assert!(self.waiting_seen.len() < RUNAWAY, "the loop does not end");
        self.did.push(Did::Acquire);
        self.waiting_seen
            .push(self.h.waiting.load(Ordering::Acquire));
        if self.ticket.is_some() {
            self.h.waiting.fetch_or(1 << self.me, Ordering::AcqRel);
        }
        let call = self.calls.pop_front().unwrap_or_else(got);
        clock::advance(call.wait_ns);
        for &what in &call.peer {
            self.act(what);
        }
        if let (Ok(()), Some(ticket)) = (call.result, self.ticket) {
            self.held_ticket = Some(ticket);
            self.ticket = Some(ticket + 1);
        }
        call.result
    }

    fn release(&mut self) -> Result<(), Errno> {
        self.did.push(Did::Release);
        self.releases.pop_front().unwrap_or(Ok(()))
    }

    fn hand_over(&mut self, next: usize) -> Result<(), Errno> {
        self.did.push(Did::HandOver(next));
        Ok(())
    }

    fn wake_everyone(&mut self) -> Result<(), Errno> {
        self.did.push(Did::WakeEveryone);
        Ok(())
    }

    fn marks_waiting(&self) -> bool {
        self.ticket.is_some()
    }

    fn arrival(&self) -> Option<u64> {
        self.held_ticket
    }
}

/// A scripted turn: whose it is, and what each turn reads.
#[derive(Debug, Default)]
pub struct FakeTurn {
    /// `is_mine` answers these, then `Ok(true)`.
    mine: VecDeque<Result<bool, Errno>>,
    /// `take` answers these (false: a wrong read), then `Ok(true)`.
    reads: VecDeque<Result<bool, Errno>>,
    /// The rounds `take` was asked for.
    pub taken: Vec<u64>,
    /// Who the turn was passed to.
    pub passed: Vec<usize>,
}

impl FakeTurn {
    /// `is_mine` answers `answers`, in order.
    pub fn mine(answers: impl IntoIterator<Item = bool>) -> Self {
        FakeTurn {
            mine: answers.into_iter().map(Ok).collect(),
            ..FakeTurn::default()
        }
    }

    /// `take` answers `results`, in order.
    pub fn reads(mut self, results: impl IntoIterator<Item = Result<bool, Errno>>) -> Self {
        self.reads.extend(results);
        self
    }

    /// `is_mine` then answers `results`, in order.
    pub fn then_mine(mut self, results: impl IntoIterator<Item = Result<bool, Errno>>) -> Self {
        self.mine.extend(results);
        self
    }
}

impl Turn for FakeTurn {
    fn is_mine(&mut self) -> Result<bool, Errno> {
        self.mine.pop_front().unwrap_or(Ok(true))
    }

    fn take(&mut self, round: u64) -> Result<bool, Errno> {
        self.taken.push(round);
        self.reads.pop_front().unwrap_or(Ok(true))
    }

    fn pass(&mut self, next: usize) -> Result<(), Errno> {
        self.passed.push(next);
        Ok(())
    }
}
