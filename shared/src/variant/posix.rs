//! `posix`: F_SETLKW, the classic process-associated record lock, on the whole file. Owned by the
//! process, so it excludes between processes whatever descriptor each one uses (and never between
//! threads: that is why every contender is a process).

use std::os::fd::OwnedFd;

use super::spec::Spec;
use super::{Ctx, Opened, SetupError, file_lock};
use crate::locking::LockFamily;

pub(super) const SPEC: Spec = file_lock::whole_file(
    "posix",
    open,
    file_lock::owned_by_process,
    "nothing (POSIX); closing any descriptor of the file drops the lock",
    "a blocking fcntl: spawn_blocking (no descriptor to poll)",
);

fn open<'a>(ctx: &Ctx<'a>, _: Vec<OwnedFd>) -> Result<Opened<'a>, SetupError> {
    Ok(file_lock::opened(ctx, LockFamily::Posix))
}
