//! `lockf`: lockf(F_LOCK, 0), which glibc turns into F_SETLKW on `[offset, ∞)`. The descriptor's
//! offset is set to 0 first so both sides lock the whole file.

use std::os::fd::OwnedFd;

use super::spec::Spec;
use super::{Ctx, Opened, SetupError, file_lock, sys};
use crate::locking::LockFamily;
use crate::sys::rawio;

pub(super) const SPEC: Spec = file_lock::whole_file(
    "lockf",
    open,
    file_lock::owned_by_process,
    "nothing (POSIX lockf); closing any descriptor of the file drops the lock",
    "a blocking lockf: spawn_blocking (no descriptor to poll)",
);

fn open<'a>(ctx: &Ctx<'a>, _: Vec<OwnedFd>) -> Result<Opened<'a>, SetupError> {
    rawio::seek_to(ctx.arena.file(), 0).map_err(sys("seek the arena to offset 0 for lockf"))?;
    Ok(file_lock::opened(ctx, LockFamily::Lockf))
}
