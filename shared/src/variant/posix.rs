//! `posix`: F_SETLKW, the classic process-associated record lock, on the whole file. Owned by the
//! process, so it excludes between processes whatever descriptor each one uses.

use super::{Ctx, FileLockHandoff};
use crate::locking::LockFamily;

pub(super) fn open<'a>(ctx: &Ctx<'a>) -> FileLockHandoff<'a> {
    FileLockHandoff::new(LockFamily::Posix, ctx.arena.file())
}
