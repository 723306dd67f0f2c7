//! A process-shared robust mutex: glibc's protocol for a robust `pthread_mutex_t` (the lock most
//! C programs reach for across processes), with nothing in shared memory that anyone follows as a
//! pointer.
//!
//! The shared state is one futex word, as in glibc: the owner's TID, plus `FUTEX_WAITERS` while
//! someone sleeps on it, plus `FUTEX_OWNER_DIED`, which the kernel sets when the owner exits
//! holding it (and wakes one waiter). The next locker takes the word and is told
//! [`Locked::OwnerDied`] (glibc's `EOWNERDEAD`); it must call [`RobustMutex::consistent`] before
//! unlocking, or the unlock leaves the word [`NOT_RECOVERABLE`] and every later lock fails with
//! `ENOTRECOVERABLE`, as glibc's does.
//!
//! Why not glibc's own: glibc links the owner's robust list *through the mutex* (`__list`), and
//! follows those links on unlock. Anyone who can write the shared mutex (the peer, or any process
//! that can open the memfd) can make the owner write through a pointer of its choice, or crash it;
//! and the links disclose the owner's thread control block address. Here the robust-list head and
//! entry live in the locking thread's private memory ([`super::robust_list`]), and the word is
//! only ever read, compared and swapped as an integer: a scribbled word can make a lock fail or
//! wait (bounded by the caller's deadline), never touch anything else.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::errno::Errno;

use super::clock::monotonic_ns;
use super::futex;
use super::robust_list::RobustSlot;

/// Set while at least one locker sleeps (or has slept) on the word.
const WAITERS: u32 = 0x8000_0000;
/// Set by the kernel when the owner died holding the word.
const OWNER_DIED: u32 = 0x4000_0000;
/// The owner's TID.
const TID_MASK: u32 = 0x3fff_ffff;
/// The word of a mutex unlocked without repair after its owner died: no thread has this TID
/// (the kernel's pid limit is 2^22).
pub const NOT_RECOVERABLE: u32 = TID_MASK;

super::mapping::shared_atomics! {
    /// Room for the mutex: its futex word, on a cache line of its own.
    #[repr(align(64))]
    #[derive(Debug, Default)]
    pub struct MutexRoom {
        word: AtomicU32,
        _pad: [AtomicU32; 15],
    }
}

const _: () = assert!(size_of::<MutexRoom>() == 64);

impl MutexRoom {
    /// The owner's TID as the word records it (0: free; [`NOT_RECOVERABLE`]: broken for good).
    pub fn owner_tid(&self) -> u32 {
        self.word.load(Ordering::Acquire) & TID_MASK
    }
}

/// How a lock attempt that succeeded found the mutex.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Locked {
    /// Taken from a live owner's unlock (or free).
    Clean,
    /// The previous owner died holding it (glibc's `EOWNERDEAD`). We hold it now; the data it
    /// guards may be half-written. Call [`RobustMutex::consistent`] once repaired, then unlock.
    OwnerDied,
}

/// One thread's handle on the robust mutex in a [`MutexRoom`]. It stays on the thread that
/// attached it: the kernel's robust list is per thread.
#[derive(Debug)]
pub struct RobustMutex<'a> {
    room: &'a MutexRoom,
    slot: RobustSlot,
    tid: u32,
    /// Taken with [`Locked::OwnerDied`] and not yet marked consistent.
    inconsistent: Cell<bool>,
}

/// How long a lock attempt may wait.
#[derive(Clone, Copy)]
enum Patience {
    Never,
    Until(u64),
    Forever,
}

impl<'a> RobustMutex<'a> {
    /// Makes `room` a fresh, unlocked mutex. Only while no process uses it.
    pub fn init(room: &'a MutexRoom) -> Result<Self, Errno> {
        room.word.store(0, Ordering::Release);
        Self::attach(room)
    }

    /// A handle on the mutex another process initialised in `room`, for this thread (which
    /// registers its robust list with the kernel the first time).
    pub fn attach(room: &'a MutexRoom) -> Result<Self, Errno> {
        Ok(RobustMutex {
            room,
            slot: RobustSlot::for_this_thread()?,
            tid: futex::thread_id(),
            inconsistent: Cell::new(false),
        })
    }

    /// Blocks until this thread holds the mutex; a signal does not end the wait.
    pub fn lock(&self) -> Result<Locked, Errno> {
        self.acquire(Patience::Forever)
    }

    /// Like [`RobustMutex::lock`], but gives up with `ETIMEDOUT` after `timeout_ns`, and with
    /// `EINTR` when a signal interrupts the wait (the caller looks at why and calls again).
    pub fn lock_within(&self, timeout_ns: u64) -> Result<Locked, Errno> {
        self.acquire(Patience::Until(monotonic_ns().saturating_add(timeout_ns)))
    }

    /// Takes the mutex if it is free; `EBUSY` if someone holds it.
    pub fn try_lock(&self) -> Result<Locked, Errno> {
        self.acquire(Patience::Never)
    }

    /// Releases the mutex this thread holds (`EPERM` if it does not). After
    /// [`Locked::OwnerDied`] without [`RobustMutex::consistent`], this makes the mutex
    /// permanently `ENOTRECOVERABLE` and wakes every waiter to say so.
    pub fn unlock(&self) -> Result<(), Errno> {
        let word = &self.room.word;
        let ours = word.load(Ordering::Relaxed) & TID_MASK == self.tid;
        if !ours || !self.slot.holding() || !self.slot.names(word) {
            return Err(Errno::EPERM);
        }
        let broken = self.inconsistent.replace(false);
        self.slot.begin_unlock();
        let was = word.swap(if broken { NOT_RECOVERABLE } else { 0 }, Ordering::AcqRel);
        let woken = if broken {
            futex::wake(word, i32::MAX as u32)
        } else if was & WAITERS != 0 {
            futex::wake(word, 1)
        } else {
            Ok(0)
        };
        self.slot.settle();
        woken.map(drop)
    }

    /// Marks the mutex usable again after [`Locked::OwnerDied`]; this thread must hold it
    /// (`EINVAL` otherwise, as glibc).
    pub fn consistent(&self) -> Result<(), Errno> {
        if self.inconsistent.replace(false) {
            Ok(())
        } else {
            Err(Errno::EINVAL)
        }
    }

    fn acquire(&self, patience: Patience) -> Result<Locked, Errno> {
        if self.slot.holding() {
            // One lock at a time per thread (the list has room for one entry).
            return Err(Errno::EDEADLK);
        }
        self.slot.begin_lock(&self.room.word);
        let taken = self.take_word(patience);
        match taken {
            Ok(how) => {
                self.slot.locked();
                self.inconsistent.set(how == Locked::OwnerDied);
            }
            Err(_) => self.slot.settle(),
        }
        taken
    }

    /// glibc's robust lock: compare-exchange a free word to our TID (keeping `FUTEX_WAITERS`,
    /// and setting it once we have slept, as others may sleep too), else mark waiters and sleep.
    fn take_word(&self, patience: Patience) -> Result<Locked, Errno> {
        let word = &self.room.word;
        let mut slept = 0;
        loop {
            let seen = word.load(Ordering::Relaxed);
            if seen == NOT_RECOVERABLE {
                return Err(Errno::ENOTRECOVERABLE);
            }
            match seen & TID_MASK {
                0 => {
                    let mine = self.tid | (seen & WAITERS) | slept;
                    if word
                        .compare_exchange(seen, mine, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
                    {
                        let died = seen & OWNER_DIED != 0;
                        return Ok(if died {
                            Locked::OwnerDied
                        } else {
                            Locked::Clean
                        });
                    }
                }
                owner if owner == self.tid => return Err(Errno::EDEADLK),
                _ => {
                    self.sleep(seen, patience)?;
                    slept = WAITERS;
                }
            }
        }
    }

    /// Marks the word as having waiters and sleeps on it while it stays as seen.
    fn sleep(&self, seen: u32, patience: Patience) -> Result<(), Errno> {
        let word = &self.room.word;
        let marked = seen | WAITERS;
        if seen != marked
            && word
                .compare_exchange(seen, marked, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return Ok(());
        }
        let waited = match patience {
            Patience::Never => return Err(Errno::EBUSY),
            Patience::Forever => futex::wait(word, marked),
            Patience::Until(deadline) => match deadline.checked_sub(monotonic_ns()) {
                Some(left) if left > 0 => futex::wait_for(word, marked, left),
                _ => return Err(Errno::ETIMEDOUT),
            },
        };
        match waited {
            Ok(()) | Err(Errno::EAGAIN) => Ok(()),
            Err(Errno::EINTR) if matches!(patience, Patience::Forever) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Drop for RobustMutex<'_> {
    /// A handle dropped while its thread still holds the mutex (a session ended early) lets it go:
    /// a live thread is never "dead", so nobody else could ever take it. If the word no longer
    /// names us (someone wrote over it), only our private entry is taken off the list.
    fn drop(&mut self) {
        if !self.slot.holding() || !self.slot.names(&self.room.word) {
            return;
        }
        if self.unlock().is_err() {
            self.slot.begin_unlock();
            self.slot.settle();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_locker_waits_and_times_out() {
        let room = MutexRoom::default();
        let m = RobustMutex::init(&room).unwrap();
        assert_eq!(m.lock().unwrap(), Locked::Clean);
        std::thread::scope(|s| {
            s.spawn(|| {
                let other = RobustMutex::attach(&room).unwrap();
                assert_eq!(other.try_lock(), Err(Errno::EBUSY));
                assert_eq!(other.lock_within(1_000_000), Err(Errno::ETIMEDOUT));
                // Not the owner: refused.
                assert_eq!(other.unlock(), Err(Errno::EPERM));
            });
        });
        m.unlock().unwrap();
        assert_eq!(m.try_lock().unwrap(), Locked::Clean);
        m.unlock().unwrap();
    }

    #[test]
    fn a_waiter_is_woken_by_the_unlock() {
        let room = MutexRoom::default();
        let m = RobustMutex::init(&room).unwrap();
        m.lock().unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let other = RobustMutex::attach(&room).unwrap();
                let got = other.lock_within(10_000_000_000);
                other.unlock().unwrap();
                got
            });
            // Let go once the waiter has marked the word.
            let give_up = monotonic_ns() + 10_000_000_000;
            while room.word.load(Ordering::Relaxed) & WAITERS == 0 && monotonic_ns() < give_up {
                std::thread::yield_now();
            }
            m.unlock().unwrap();
            assert_eq!(waiter.join().unwrap(), Ok(Locked::Clean));
        });
        assert_eq!(room.word.load(Ordering::Relaxed), 0, "free, nobody waiting");
    }

    #[test]
    fn a_dead_owner_is_reported_and_can_be_repaired() {
        let room = MutexRoom::default();
        let m = RobustMutex::init(&room).unwrap();
        // A thread that exits holding the mutex: the kernel walks its robust list.
        std::thread::scope(|s| {
            s.spawn(|| {
                let dying = RobustMutex::attach(&room).unwrap();
                assert_eq!(dying.lock().unwrap(), Locked::Clean);
                // Dies holding it: no handle left to let go.
                std::mem::forget(dying);
            });
        });
        assert_eq!(m.lock_within(5_000_000_000).unwrap(), Locked::OwnerDied);
        m.consistent().unwrap();
        m.unlock().unwrap();
        assert_eq!(m.lock().unwrap(), Locked::Clean);
        assert_eq!(m.consistent(), Err(Errno::EINVAL), "nothing to repair");
        m.unlock().unwrap();
    }

    #[test]
    fn unlocking_without_repair_makes_it_unrecoverable() {
        let room = MutexRoom::default();
        let m = RobustMutex::init(&room).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                let dying = RobustMutex::attach(&room).unwrap();
                assert_eq!(dying.lock().unwrap(), Locked::Clean);
                // Dies holding it: no handle left to let go.
                std::mem::forget(dying);
            });
        });
        assert_eq!(m.lock().unwrap(), Locked::OwnerDied);
        m.unlock().unwrap();
        assert_eq!(m.lock(), Err(Errno::ENOTRECOVERABLE));
    }

    #[test]
    fn a_scribbled_word_fails_a_lock_and_touches_nothing_else() {
        let room = MutexRoom::default();
        let m = RobustMutex::init(&room).unwrap();
        m.lock().unwrap();
        // Another process writes whatever it likes while we hold the mutex.
        for garbage in [u32::MAX, 0xdead_beef, OWNER_DIED, WAITERS | 1, 0] {
            room.word.store(garbage, Ordering::Relaxed);
            assert_eq!(m.unlock(), Err(Errno::EPERM), "{garbage:#x} is not ours");
        }
        // Our own TID written back: ours again, released normally.
        room.word.store(m.tid, Ordering::Relaxed);
        m.unlock().unwrap();
        // A word naming a thread that is not there makes a bounded lock time out.
        room.word.store(TID_MASK - 1, Ordering::Relaxed);
        assert_eq!(m.lock_within(1_000_000), Err(Errno::ETIMEDOUT));
        assert!(!m.slot.holding(), "a failed lock leaves nothing linked");
    }

    #[test]
    fn a_handle_dropped_while_holding_lets_go_even_of_a_scribbled_word() {
        let room = MutexRoom::default();
        let m = RobustMutex::init(&room).unwrap();
        m.lock().unwrap();
        drop(m);
        assert_eq!(room.word.load(Ordering::Relaxed), 0, "released on drop");
        let m = RobustMutex::attach(&room).unwrap();
        m.lock().unwrap();
        room.word.store(0xdead_beef, Ordering::Relaxed);
        drop(m);
        assert_eq!(
            room.word.load(Ordering::Relaxed),
            0xdead_beef,
            "not ours: untouched"
        );
        // The thread can lock again: its entry was taken off the list.
        room.word.store(0, Ordering::Relaxed);
        let m = RobustMutex::attach(&room).unwrap();
        assert_eq!(m.try_lock(), Ok(Locked::Clean));
    }
}
