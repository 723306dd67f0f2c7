//! `flock`: flock(LOCK_EX) on each side's own open file description. Like OFD locks, flock locks
//! belong to the description, so this excludes only because each side opened its own.

use std::os::fd::OwnedFd;

use super::spec::Spec;
use super::{Ctx, Opened, SetupError, file_lock};
use crate::locking::LockFamily;

pub(super) const SPEC: Spec = file_lock::whole_file(
    "flock",
    open,
    file_lock::owned_by_description,
    "nothing; a description of its own per process",
    "a blocking flock: spawn_blocking (no descriptor to poll)",
);

fn open<'a>(ctx: &Ctx<'a>, _: Vec<OwnedFd>) -> Result<Opened<'a>, SetupError> {
    Ok(file_lock::opened(ctx, LockFamily::Flock))
}
