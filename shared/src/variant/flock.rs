//! `flock`: flock(LOCK_EX) on each side's own open file description. Like OFD locks, flock locks
//! belong to the description, so this excludes only because each side opened its own.

use crate::locking::LockFamily;

pub(super) const FAMILY: LockFamily = LockFamily::Flock;
