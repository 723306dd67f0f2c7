//! `posix`: F_SETLKW, the classic process-associated record lock, on the whole file. Owned by the
//! process, so it excludes between processes whatever descriptor each one uses (and never between
//! threads: that is why every contender is a process).

use crate::locking::LockFamily;

pub(super) const FAMILY: LockFamily = LockFamily::Posix;
