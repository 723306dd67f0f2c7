//! `posix`: F_SETLKW, the classic process-associated record lock, on the whole file. Owned by the
//! process, so it excludes between processes whatever descriptor each one uses (and never between
//! threads: that is why every contender is a process).

use std::os::fd::OwnedFd;

use super::holder_death::{Description, HolderDeath};
use super::spec::{Death, Family, Fds, Overtaking, Profile, Spec, Supports, no_preparation};
use super::{Ctx, Opened, SetupError, file_lock};
use crate::locking::LockFamily;

pub(super) const SPEC: Spec = Spec {
    name: "posix",
    family: Family::FileLocks,
    shares_description: false,
    supports: Supports::EVERYTHING,
    fds: Fds::NONE,
    prepare: no_preparation,
    open,
    death: HolderDeath::plain(
        &[Description::Own, Description::Shared],
        file_lock::owned_by_process,
    ),
    whoops_in_storms: true,
    yardstick: file_lock::NO_YARDSTICK,
    profile: Profile {
        overtaking: Overtaking::Unbounded,
        death: Death::Released,
        needs: "nothing (POSIX); closing any descriptor of the file drops the lock",
        from_async: "a blocking fcntl: spawn_blocking (no descriptor to poll)",
    },
};

fn open<'a>(ctx: &Ctx<'a>, _: Vec<OwnedFd>) -> Result<Opened<'a>, SetupError> {
    Ok(file_lock::opened(ctx, LockFamily::Posix))
}
