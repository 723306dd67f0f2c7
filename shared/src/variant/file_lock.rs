//! What the file-lock variants (`ofd`, `posix`, `lockf`, `flock`, `seed`) share: a lock family
//! applied to the whole arena file, and the kernel's answers when a holder dies, which depend on
//! whom the lock belongs to (fs/locks.c): the process, or the open file description.

use std::fs::File;

use nix::errno::Errno;

use std::os::fd::OwnedFd;

use super::holder_death::{Description, HolderDeath, Outcome};
use super::spec::{Death, Family, Fds, Overtaking, Profile, Spec, Supports, no_preparation};
use super::{Ctx, Exclusion, Handoff, Opened, SetupError, Yardstick};
use crate::locking::LockFamily;
use crate::sys::locks::{LockMode, Wait};

/// None of the file locks has a counterpart in the C ping-pong.
pub(super) const NO_YARDSTICK: Yardstick =
    Yardstick::NoCounterpart("bench/pingpong.c has no file-lock mode");

/// How a holder's death is explained, for a file-lock variant (see [`owned_by_process`] and
/// [`owned_by_description`]).
type DeathReason = fn(Description, Outcome) -> Option<&'static str>;

/// What a lock on the whole arena file is, whichever family takes it: a barging lock, its whoops
/// in storms, released by the kernel when its owner goes (process or description), crashed
/// with its description its own or shared. Each file-lock variant names what differs.
pub(super) const fn whole_file(
    name: &'static str,
    open: OpenFn,
    reason: DeathReason,
    needs: &'static str,
    from_async: &'static str,
) -> Spec {
    Spec {
        name,
        family: Family::FileLocks,
        shares_description: false,
        supports: Supports::EVERYTHING,
        fds: Fds::NONE,
        prepare: no_preparation,
        open,
        death: HolderDeath::plain(&[Description::Own, Description::Shared], reason),
        whoops_in_storms: true,
        yardstick: NO_YARDSTICK,
        profile: Profile {
            overtaking: Overtaking::Unbounded,
            death: Death::Released,
            needs,
            from_async,
        },
    }
}

/// A variant's `open`, as the spec holds it.
type OpenFn = for<'a> fn(&Ctx<'a>, Vec<OwnedFd>) -> Result<Opened<'a>, SetupError>;

/// `family` on the whole arena file, the turn in the arena.
pub(super) fn opened<'a>(ctx: &Ctx<'a>, family: LockFamily) -> Opened<'a> {
    Opened::in_arena(ctx, FileLockHandoff::new(family, ctx.arena.file()))
}

/// A POSIX lock (`posix`, `lockf`) belongs to the process.
pub(super) fn owned_by_process(case: Description, outcome: Outcome) -> Option<&'static str> {
    match (outcome, case) {
        (Outcome::Got { .. }, Description::Shared) => Some(
            "released at the holder's exit, though a live process still holds the description: a POSIX lock belongs to the process",
        ),
        (Outcome::Got { .. }, Description::Own) => Some(
            "released at the holder's exit: a POSIX lock belongs to the process, and the kernel drops it as the process closes its files",
        ),
        _ => None,
    }
}

/// An OFD or `flock` lock belongs to the open file description.
pub(super) fn owned_by_description(case: Description, outcome: Outcome) -> Option<&'static str> {
    match (outcome, case) {
        (Outcome::Got { .. }, _) => Some(
            "released when the holder's own description closed at its exit: the lock belongs to the open file description",
        ),
        (Outcome::Nothing, Description::Shared) => Some(
            "held forever by a dead process: the lock belongs to the open file description, which a live process still holds",
        ),
        _ => None,
    }
}

/// A lock family applied to the whole arena file: the shape shared by the file-lock variants.
#[derive(Debug)]
pub struct FileLockHandoff<'a> {
    family: LockFamily,
    file: &'a File,
}

impl<'a> FileLockHandoff<'a> {
    pub(super) fn new(family: LockFamily, file: &'a File) -> Self {
        FileLockHandoff { family, file }
    }
}

impl Handoff for FileLockHandoff<'_> {
    fn exclusion(&self) -> Exclusion {
        Exclusion::Lock
    }

    fn acquire(&mut self) -> Result<(), Errno> {
        self.family
            .lock(self.file, LockMode::Exclusive, Wait::Block)
    }

    fn release(&mut self) -> Result<(), Errno> {
        self.family.unlock(self.file)
    }

    fn hand_over(&mut self, _next: usize) -> Result<(), Errno> {
        self.release()
    }

    fn wake_everyone(&mut self) -> Result<(), Errno> {
        // Waiters sleep in the kernel's lock queue; unlocking (done by the caller) wakes them.
        Ok(())
    }
}

/// For the variants that lock through a library call rather than [`LockFamily`]: what a waiter
/// blocked behind a live holder returns when the watchdog's signal arrives.
#[cfg(test)]
pub(super) mod interrupt_check {
    use std::fs::File;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use nix::errno::Errno;

    use crate::sys::signal;

    /// Holds the lock on one description of a scratch file while `wait` runs on another, in a
    /// thread interrupted every 20 ms until it returns (within 10 s); what `wait` returned.
    pub(in crate::variant) fn waiter_behind_a_holder(
        tag: &str,
        wait: impl FnOnce(&File) -> Result<(), Errno> + Send + 'static,
    ) -> Result<(), Errno> {
        signal::install_interrupt_handler();
        let path = std::env::temp_dir().join(format!("lockfair-{tag}-{}", std::process::id()));
        let holder = File::create(&path).unwrap();
        holder.lock().unwrap();
        let theirs = File::options().write(true).open(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let (tx, rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            tx.send(signal::current_thread()).unwrap();
            wait(&theirs)
        });
        let thread = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !waiter.is_finished() && Instant::now() < deadline {
            // Joinable until joined, so the handle stays valid even once it has returned.
            let _ = signal::interrupt(thread);
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(waiter.is_finished(), "{tag}: the waiter ignored the signal");
        waiter.join().unwrap()
    }
}
