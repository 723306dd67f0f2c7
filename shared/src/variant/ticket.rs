//! `ticket`: a FIFO ticket lock on futexes in the arena. Each acquisition takes a ticket
//! (`next_ticket`, fetch-and-add) and waits until `now_serving` reaches it; releasing serves the
//! next ticket. Waiters sleep on `now_serving` with FUTEX_WAIT_BITSET, one bit per ticket, and the
//! releaser wakes only the bit of the ticket it serves: no thundering herd, and nobody barges.
//!
//! In `turns` mode the tickets are taken in turn order: contender c starts with ticket c (the
//! arena is prepared with `next_ticket = N`) and takes its next ticket while still holding the
//! lock, so the queue is always the ring and no contender ever gets the lock out of turn.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::errno::Errno;

use super::holder_death::{Description, HolderDeath, Outcome, Protected, Protection, Repair};
use super::spec::{Death, Family, Fds, Overtaking, Profile, Spec, Supports, Yardstick};
use super::{Ctx, Exclusion, Handoff, Mode, Opened, Setup, SetupError};
use crate::arena::{Arena, Header};
use crate::sys::futex;
use crate::sys::mapping::shared_atomics;

pub(super) const SPEC: Spec = Spec {
    name: "ticket",
    family: Family::FifoLocks,
    shares_description: false,
    supports: Supports::EVERYTHING,
    fds: Fds::NONE,
    prepare,
    open,
    death: HolderDeath {
        survivable: &[Description::Own],
        protection: Some(Protected {
            kind: Protection::WatcherThread,
            token: 0,
            repair: Repair::Words(take_over),
            survived: None,
        }),
        ..HolderDeath::plain(&[Description::Own], never_served_on)
    },
    whoops_in_storms: false,
    yardstick: Yardstick::NoCounterpart("bench/pingpong.c has no ticket lock"),
    profile: Profile {
        overtaking: Overtaking::Fifo,
        death: Death::Held,
        needs: "a shared mapping",
        from_async: "no descriptor: a thread",
    },
};

shared_atomics! {
/// `ticket`'s region: its two counters, on a cache line of their own.
#[repr(align(64))]
#[derive(Debug)]
struct Tickets {
    /// The next ticket to hand out.
    next_ticket: AtomicU32,
    /// The ticket now being served (the futex word).
    now_serving: AtomicU32,
    _pad: [AtomicU32; 14],
}
}

const _: () = assert!(size_of::<Tickets>() == 64);

/// Sets the counters: in `turns` mode tickets 0..N-1 are already handed out, one per contender.
fn prepare(arena: &Arena, setup: &Setup) -> Result<(), SetupError> {
    let t = arena.region::<Tickets>();
    let issued = match setup.mode {
        Mode::Turns => setup.contenders as u32,
        Mode::Free => 0,
    };
    t.next_ticket.store(issued, Ordering::Relaxed);
    t.now_serving.store(0, Ordering::Release);
    Ok(())
}

fn open<'a>(ctx: &Ctx<'a>, _: Vec<OwnedFd>) -> Result<Opened<'a>, SetupError> {
    let lock = TicketLock {
        header: ctx.arena.header(),
        tickets: ctx.arena.region(),
        me: ctx.contender,
        mode: ctx.mode,
        ticket: match ctx.mode {
            Mode::Turns => Some(ctx.contender as u32),
            Mode::Free => None,
        },
    };
    Ok(Opened::in_arena(ctx, lock))
}

fn never_served_on(_: Description, outcome: Outcome) -> Option<&'static str> {
    (outcome == Outcome::Nothing).then_some(
        "held forever: the dead holder's ticket is never served on, and every later ticket waits behind it",
    )
}

/// After `dead` died (`turns` mode, two contenders): if the ticket being served is the dead
/// one's, it is skipped; then `me` is woken.
fn take_over(arena: &Arena, _me: usize, dead: usize) {
    let h = arena.region::<Tickets>();
    // Contender c holds tickets c, c+2, ...
    let serving = h.now_serving.load(Ordering::Acquire);
    if serving % 2 == dead as u32 {
        let _ = h.now_serving.compare_exchange(
            serving,
            serving.wrapping_add(1),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }
    let _ = futex::wake_bits(&h.now_serving, i32::MAX as u32, std::num::NonZeroU32::MAX);
}

#[derive(Debug)]
struct TicketLock<'a> {
    header: &'a Header,
    tickets: &'a Tickets,
    me: usize,
    mode: Mode,
    /// The ticket this contender waits with or holds (kept across an interrupted wait, so a
    /// retry does not take a second ticket).
    ticket: Option<u32>,
}

impl TicketLock<'_> {
    fn serve_next(&self) -> Result<(), Errno> {
        let served = self
            .tickets
            .now_serving
            .fetch_add(1, Ordering::AcqRel)
            .wrapping_add(1);
        futex::wake_bits(
            &self.tickets.now_serving,
            i32::MAX as u32,
            futex::bit(served as usize),
        )
        .map(drop)
    }
}

impl Handoff for TicketLock<'_> {
    fn exclusion(&self) -> Exclusion {
        Exclusion::Lock
    }

    fn acquire(&mut self) -> Result<(), Errno> {
        let (h, t) = (self.header, self.tickets);
        let (me, mode) = (self.me, self.mode);
        let mine = *self.ticket.get_or_insert_with(|| {
            let ticket = t.next_ticket.fetch_add(1, Ordering::Relaxed);
            if mode == Mode::Free {
                // Waiting, for the barging count, means being in the queue: from now on.
                h.waiting.fetch_or(1 << me, Ordering::AcqRel);
            }
            ticket
        });
        loop {
            let serving = t.now_serving.load(Ordering::Acquire);
            // In turns mode a stopped run is over for everyone. In free mode the queue is
            // served to the end: every waiter gets its last acquisition, then sees the stop.
            if serving == mine || (self.mode == Mode::Turns && h.stopped().is_some()) {
                return Ok(());
            }
            match futex::wait_bits(&t.now_serving, serving, futex::bit(mine as usize)) {
                Ok(()) | Err(Errno::EAGAIN) => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn release(&mut self) -> Result<(), Errno> {
        match self.mode {
            Mode::Free => {
                self.ticket = None;
                self.serve_next()
            }
            // A turn is always ours when our ticket is served: there is nothing to give back
            // without handing over.
            Mode::Turns => Ok(()),
        }
    }

    fn hand_over(&mut self, _next: usize) -> Result<(), Errno> {
        if self.mode == Mode::Turns {
            // Queue up for our next turn before letting the next contender in.
            self.ticket = Some(self.tickets.next_ticket.fetch_add(1, Ordering::Relaxed));
        }
        self.serve_next()
    }

    fn marks_waiting(&self) -> bool {
        self.mode == Mode::Free
    }

    fn arrival(&self) -> Option<u64> {
        // The ticket is the arrival order of the queue the lock serves.
        (self.mode == Mode::Free)
            .then_some(self.ticket)
            .flatten()
            .map(u64::from)
    }

    fn wake_everyone(&mut self) -> Result<(), Errno> {
        if self.mode == Mode::Free {
            // Releases keep serving the queue; skipping a ticket would let two contenders in.
            return Ok(());
        }
        // Turns mode, stopping: move the word so nobody can fall asleep on the old value, and
        // wake every bit; the waiters see the stop flag.
        self.tickets.now_serving.fetch_add(1, Ordering::AcqRel);
        futex::wake_bits(
            &self.tickets.now_serving,
            i32::MAX as u32,
            std::num::NonZeroU32::MAX,
        )
        .map(drop)
    }
}
