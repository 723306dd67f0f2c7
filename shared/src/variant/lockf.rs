//! `lockf`: lockf(F_LOCK, 0), which glibc turns into F_SETLKW on `[offset, ∞)`. The descriptor's
//! offset is set to 0 first so both sides lock the whole file.

use rustix::fs::{SeekFrom, seek};

use super::{Ctx, FileLockHandoff, SetupError};
use crate::locking::LockFamily;

pub(super) fn open<'a>(ctx: &Ctx<'a>) -> Result<FileLockHandoff<'a>, SetupError> {
    seek(ctx.arena.file(), SeekFrom::Start(0)).map_err(|e| SetupError::Sys {
        what: "seek the arena to offset 0 for lockf",
        errno: crate::sys::errno(e),
    })?;
    Ok(FileLockHandoff::new(LockFamily::Lockf, ctx.arena.file()))
}
