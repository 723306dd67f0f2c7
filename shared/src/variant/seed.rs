//! `seed`: the original experiment, faithfully. Both sides lock the whole file with F_OFD_SETLKW
//! through the descriptor that travelled over SCM_RIGHTS, and the turn is the shared file offset:
//! the writer writes the decimal line n when the offset is at the start, the reader reads it with
//! `pread` when it is not, checks it and seeks back.
//!
//! SCM_RIGHTS passes a reference to the same *open file description*, and OFD locks belong to the
//! description. So both processes are the same lock owner: neither request ever conflicts, and
//! there is no mutual exclusion at all. The overlap detector and wrong reads show it happening;
//! `lockfair-client probe` shows why.
//!
//! The data lives on its own page of the memfd ([`SEED_OFFSET`]), away from the arena header.

use std::fs::File;
use std::os::fd::OwnedFd;

use nix::errno::Errno;

use super::holder_death::{Description, HolderDeath, Outcome};
use super::spec::{Death, Family, Fds, Overtaking, Profile, Spec, Supports};
use super::{Ctx, FileLockHandoff, Opened, Setup, SetupError, Turn, Variant, file_lock, sys};
use crate::arena::{Arena, LINE_CAPACITY, LineCounter, SEED_OFFSET};
use crate::locking::LockFamily;
use crate::measure::Role;
use crate::sys::rawio;

pub(super) const SPEC: Spec = Spec {
    name: "seed",
    family: Family::FileLocks,
    // The arena's descriptor is the received one: both sides lock through one description.
    shares_description: true,
    supports: Supports {
        exactly: Some(2),
        ..Supports::EVERYTHING
    },
    fds: Fds::NONE,
    prepare,
    open,
    // `seed` only shares: that is what it is.
    death: HolderDeath::plain(&[Description::Shared], never_excluded),
    whoops_in_storms: true,
    yardstick: file_lock::NO_YARDSTICK,
    profile: Profile {
        overtaking: Overtaking::NoExclusion,
        death: Death::NoExclusion,
        needs: "Linux ≥ 3.15 (OFD locks)",
        from_async: "a blocking fcntl: spawn_blocking",
    },
};

/// The variant the blog's own programs speak (`run --seed-compat`).
pub const BLOG_VARIANT: Variant = Variant::Seed;

fn open<'a>(ctx: &Ctx<'a>, _: Vec<OwnedFd>) -> Result<Opened<'a>, SetupError> {
    Ok(Opened {
        handoff: Box::new(FileLockHandoff::new(LockFamily::Ofd, ctx.arena.file())),
        turn: Box::new(FileOffsetTurn::new(ctx)),
    })
}

fn never_excluded(_: Description, outcome: Outcome) -> Option<&'static str> {
    matches!(outcome, Outcome::Got { early: true, .. }).then_some(
        "never excluded: holder and survivor lock through one open file description, one owner (see `probe`)",
    )
}

fn prepare(arena: &Arena, _: &Setup) -> Result<(), SetupError> {
    prepare_offset(arena).map_err(sys("seek the seed's offset"))
}

/// Puts the shared offset at the start of the seed's page (the "writer's turn"), before the
/// descriptor is sent: the offset travels with the description.
fn prepare_offset(arena: &Arena) -> Result<(), Errno> {
    rawio::seek_to(arena.file(), SEED_OFFSET)
}

/// The turn as the seed keeps it: in the file offset both sides share.
#[derive(Debug)]
struct FileOffsetTurn<'a> {
    file: &'a File,
    role: Role,
    /// The offset seen by the last `is_mine`, as the seed's reader uses it for its `pread`.
    seen: u64,
    lines: LineCounter,
}

impl<'a> FileOffsetTurn<'a> {
    fn new(ctx: &Ctx<'a>) -> Self {
        FileOffsetTurn {
            file: ctx.arena.file(),
            role: ctx.role(),
            seen: SEED_OFFSET,
            lines: LineCounter::default(),
        }
    }
}

impl Turn for FileOffsetTurn<'_> {
    fn is_mine(&mut self) -> Result<bool, Errno> {
        self.seen = rawio::offset(self.file)?;
        Ok(match self.role {
            Role::Writer => self.seen == SEED_OFFSET,
            Role::Reader => self.seen != SEED_OFFSET,
        })
    }

    fn take(&mut self, round: u64) -> Result<bool, Errno> {
        let line = self.lines.line(round).as_bytes();
        match self.role {
            Role::Writer => {
                // write(2) at the shared offset, which moves it: that is the seed's handoff.
                rawio::write(self.file, line)?;
                Ok(true)
            }
            Role::Reader => {
                // Anything longer than a line cannot be the line (the offset may be anywhere in
                // the seed's page if the protocol broke).
                let mut buf = [0u8; LINE_CAPACITY];
                let len = self.seen.saturating_sub(SEED_OFFSET) as usize;
                if len == 0 || len > buf.len() {
                    return Ok(false);
                }
                let got = rawio::pread(self.file, &mut buf[..len], SEED_OFFSET)?;
                Ok(&buf[..got] == line)
            }
        }
    }

    fn take_passes(&self) -> bool {
        self.role == Role::Writer
    }

    fn pass(&mut self, _next: usize) -> Result<(), Errno> {
        if self.role == Role::Reader {
            rawio::seek_to(self.file, SEED_OFFSET)?;
        }
        Ok(())
    }
}
