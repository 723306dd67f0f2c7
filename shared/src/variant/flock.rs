//! `flock`: flock(LOCK_EX) on each side's own open file description. Like OFD locks, flock locks
//! belong to the description, so this excludes only because each side opened its own.

use std::os::fd::OwnedFd;

use super::holder_death::{Description, HolderDeath};
use super::spec::{Death, Family, Fds, Overtaking, Profile, Spec, Supports, no_preparation};
use super::{Ctx, Opened, SetupError, file_lock};
use crate::locking::LockFamily;

pub(super) const SPEC: Spec = Spec {
    name: "flock",
    family: Family::FileLocks,
    shares_description: false,
    supports: Supports::EVERYTHING,
    fds: Fds::NONE,
    prepare: no_preparation,
    open,
    death: HolderDeath::plain(
        &[Description::Own, Description::Shared],
        file_lock::owned_by_description,
    ),
    whoops_in_storms: true,
    yardstick: file_lock::NO_YARDSTICK,
    profile: Profile {
        overtaking: Overtaking::Unbounded,
        death: Death::Released,
        needs: "nothing; a description of its own per process",
        from_async: "a blocking flock: spawn_blocking (no descriptor to poll)",
    },
};

fn open<'a>(ctx: &Ctx<'a>, _: Vec<OwnedFd>) -> Result<Opened<'a>, SetupError> {
    Ok(file_lock::opened(ctx, LockFamily::Flock))
}
