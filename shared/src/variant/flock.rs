//! `flock`: flock(LOCK_EX) on each side's own open file description. Like OFD locks, flock locks
//! belong to the description, so this excludes only because each side opened its own.

use super::{Ctx, FileLockHandoff};
use crate::locking::LockFamily;

pub(super) fn open<'a>(ctx: &Ctx<'a>) -> FileLockHandoff<'a> {
    FileLockHandoff::new(LockFamily::Flock, ctx.arena.file())
}
