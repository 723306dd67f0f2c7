//! `lock-chain`: a turn protocol made only of file locks that alternates strictly, with zero
//! whoops. The unfairness of the other file-lock variants is in how they use the lock (take it,
//! look at the turn, let go, retry), not in file locks as such.
//!
//! N contenders use M = N+1 one-byte OFD locks L[0..M) (each contender through its own open file
//! description; OFD locks have no deadlock detector to trip over the ring). During turn j a
//! contender holds L[j mod M] and L[(j-1) mod M]. When it is done it releases L[j mod M], which
//! is exactly the lock the next contender is blocked on, and blocks on L[(j+N-1) mod M], which
//! the contender before it in the ring still holds until *its* next turn is over. The releaser
//! never asks for the lock it just released, so it cannot barge back in: every wakeup is the
//! right contender's, every acquisition its turn.
//!
//! Start: contender c holds L[c] (contender 0 also L[N]) before the start line; after it, c > 0
//! blocks on L[c-1]. Stopping releases everything held, which unblocks the successor, who does
//! the same: the stop runs round the ring.

use std::fs::File;
use std::os::fd::OwnedFd;

use nix::errno::Errno;

use super::holder_death::{Description, HolderDeath, Outcome};
use super::spec::{Death, Family, Fds, Overtaking, Profile, Spec, Supports, no_preparation};
use super::{Ctx, Exclusion, Handoff, Mode, Opened, SetupError, file_lock};
use crate::sys::locks::{ByteRange, LockMode, RecordOwner, Wait, record_lock, record_unlock};

pub(super) const SPEC: Spec = Spec {
    name: "lock-chain",
    family: Family::FileLocks,
    shares_description: false,
    supports: Supports {
        not_in: Some((
            Mode::Free,
            "it is a turn protocol made of locks, not a lock; use --mode turns",
        )),
        ..Supports::EVERYTHING
    },
    fds: Fds::NONE,
    prepare: no_preparation,
    open,
    death: HolderDeath::plain(
        &[Description::Own, Description::Shared],
        links_are_ofd_locks,
    ),
    whoops_in_storms: false,
    yardstick: file_lock::NO_YARDSTICK,
    profile: Profile {
        overtaking: Overtaking::Handoff,
        death: Death::Released,
        needs: "Linux ≥ 3.15 (OFD locks); turns only",
        from_async: "blocking fcntls: spawn_blocking",
    },
};

/// The locks live far past the end of the file (byte-range locks need no data there).
const BASE: u64 = 1 << 20;

fn open<'a>(ctx: &Ctx<'a>, _: Vec<OwnedFd>) -> Result<Opened<'a>, SetupError> {
    let m = ctx.contenders + 1;
    let mut chain = LockChain {
        file: ctx.arena.file(),
        contenders: ctx.contenders,
        turn: ctx.contender,
        held: vec![false; m],
    };
    let mut first = vec![ctx.contender];
    if ctx.contender == 0 {
        first.push(ctx.contenders);
    }
    for i in first {
        // Nobody else holds these yet: a conflict means the arena was already in use.
        chain
            .take(i, Wait::NoWait)
            .map_err(|errno| SetupError::Sys {
                what: "take the lock chain's first link",
                errno,
            })?;
    }
    Ok(Opened::in_arena(ctx, chain))
}

/// The links are OFD locks: they belong to the open file description.
fn links_are_ofd_locks(case: Description, outcome: Outcome) -> Option<&'static str> {
    match (outcome, case) {
        (Outcome::Got { .. }, _) => Some(
            "the next link came free when the holder's own description closed: the links are OFD locks",
        ),
        (Outcome::Nothing, Description::Shared) => Some(
            "held forever: the dead holder's links are OFD locks on a description a live process still holds",
        ),
        _ => None,
    }
}

#[derive(Debug)]
struct LockChain<'a> {
    file: &'a File,
    contenders: usize,
    /// The turn this contender takes next (c, c+N, c+2N, ...).
    turn: usize,
    held: Vec<bool>,
}

impl LockChain<'_> {
    fn link(&self, i: usize) -> ByteRange {
        ByteRange::byte(BASE + i as u64)
    }

    fn take(&mut self, i: usize, wait: Wait) -> Result<(), Errno> {
        record_lock(
            self.file,
            RecordOwner::Description,
            LockMode::Exclusive,
            self.link(i),
            wait,
        )?;
        self.held[i] = true;
        Ok(())
    }

    fn drop_link(&mut self, i: usize) -> Result<(), Errno> {
        record_unlock(self.file, RecordOwner::Description, self.link(i))?;
        self.held[i] = false;
        Ok(())
    }

    fn m(&self) -> usize {
        self.contenders + 1
    }
}

impl Handoff for LockChain<'_> {
    fn exclusion(&self) -> Exclusion {
        Exclusion::Lock
    }

    fn acquire(&mut self) -> Result<(), Errno> {
        // Turn j also needs L[(j-1) mod M], released when turn j-1 is over.
        let wait_on = (self.turn + self.m() - 1) % self.m();
        if self.held[wait_on] {
            return Ok(());
        }
        self.take(wait_on, Wait::Block)
    }

    fn release(&mut self) -> Result<(), Errno> {
        // A turn is always ours once the chain lets us in: nothing to give back.
        Ok(())
    }

    fn hand_over(&mut self, _next: usize) -> Result<(), Errno> {
        let done = self.turn % self.m();
        self.drop_link(done)?;
        self.turn += self.contenders;
        Ok(())
    }

    fn wake_everyone(&mut self) -> Result<(), Errno> {
        for i in 0..self.m() {
            if self.held[i] {
                self.drop_link(i)?;
            }
        }
        Ok(())
    }
}
