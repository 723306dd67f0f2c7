//! glibc's process-shared robust mutex: a `pthread_mutex_t` made with `PTHREAD_PROCESS_SHARED`
//! and `PTHREAD_MUTEX_ROBUST`, placed in memory several processes map. This is the lock most C
//! programs reach for across processes, and the one whose holder's death the kernel reports:
//! the next locker gets `EOWNERDEAD` (surfaced here as [`Locked::OwnerDied`]), holds the lock,
//! and must call [`RobustMutex::consistent`] before unlocking, or the mutex becomes
//! `ENOTRECOVERABLE` for everyone.
//!
//! The mutex lives in a [`MutexRoom`]: 64 bytes of atomics, so the memory around it keeps the
//! "every bit pattern is valid" rule of shared mappings. glibc reads and writes the bytes itself
//! (a futex word holding the owner's TID, and the links of the owner thread's robust list).
//!
//! Trust: glibc follows the robust-list links stored inside the mutex when it unlocks. A process
//! that shares the mutex can therefore make another one write through a pointer of its choice;
//! share one only with processes you trust, as with any C program doing the same.

use std::sync::atomic::AtomicU64;

use nix::errno::Errno;
use nix::libc;
use nix::time::{ClockId, clock_gettime};

super::mapping::shared_atomics! {
    /// Room for one `pthread_mutex_t` (40 bytes on 64-bit glibc), on a cache line of its own.
    #[repr(align(64))]
    #[derive(Debug, Default)]
    pub struct MutexRoom {
        words: [AtomicU64; 8],
    }
}

const _: () = assert!(size_of::<libc::pthread_mutex_t>() <= size_of::<MutexRoom>());
const _: () = assert!(align_of::<libc::pthread_mutex_t>() <= align_of::<MutexRoom>());

impl MutexRoom {
    fn raw(&self) -> *mut libc::pthread_mutex_t {
        // Every byte of the room is inside an atomic (an `UnsafeCell`), so writing through a
        // pointer derived from a shared reference is allowed.
        std::ptr::from_ref(self)
            .cast_mut()
            .cast::<libc::pthread_mutex_t>()
    }
}

/// How a lock attempt that succeeded found the mutex.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Locked {
    /// Taken from a live owner's unlock (or free).
    Clean,
    /// `EOWNERDEAD`: the previous owner died holding it. We hold it now; the data it guards
    /// may be half-written. Call [`RobustMutex::consistent`] once repaired, then unlock.
    OwnerDied,
}

/// A process-shared robust mutex in a [`MutexRoom`].
#[derive(Debug, Clone, Copy)]
pub struct RobustMutex<'a> {
    room: &'a MutexRoom,
}

/// A pthread return code as a `Result`.
fn check(rc: libc::c_int) -> Result<(), Errno> {
    if rc == 0 {
        Ok(())
    } else {
        Err(Errno::from_raw(rc))
    }
}

/// A lock call's return code: success, the owner's death, or an error.
fn locked(rc: libc::c_int) -> Result<Locked, Errno> {
    match rc {
        0 => Ok(Locked::Clean),
        libc::EOWNERDEAD => Ok(Locked::OwnerDied),
        rc => Err(Errno::from_raw(rc)),
    }
}

impl<'a> RobustMutex<'a> {
    /// Makes `room` a fresh, unlocked, process-shared robust mutex of the default type. Only
    /// while no process uses it: re-initialising a mutex in use is undefined.
    pub fn init(room: &'a MutexRoom) -> Result<Self, Errno> {
        let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: initialises the attribute object we own on the stack.
        check(unsafe { libc::pthread_mutexattr_init(attr.as_mut_ptr()) })?;
        let attr_ptr = attr.as_mut_ptr();
        let result = (|| {
            // SAFETY: `attr_ptr` points to the attribute initialised above.
            check(unsafe {
                libc::pthread_mutexattr_setpshared(attr_ptr, libc::PTHREAD_PROCESS_SHARED)
            })?;
            // SAFETY: as above.
            check(unsafe {
                libc::pthread_mutexattr_setrobust(attr_ptr, libc::PTHREAD_MUTEX_ROBUST)
            })?;
            // SAFETY: the room is large and aligned enough (const asserts) and made of
            // interior-mutable atomics; the caller guarantees nobody uses it meanwhile.
            check(unsafe { libc::pthread_mutex_init(room.raw(), attr_ptr) })
        })();
        // SAFETY: destroys the attribute initialised above; the mutex does not keep it.
        unsafe { libc::pthread_mutexattr_destroy(attr_ptr) };
        result.map(|()| RobustMutex { room })
    }

    /// The mutex another process initialised in `room`.
    pub fn attach(room: &'a MutexRoom) -> Self {
        RobustMutex { room }
    }

    /// Blocks until this thread holds the mutex. Neither a signal nor anything else ends the
    /// wait early: prefer [`RobustMutex::lock_within`] wherever a wait needs a bound.
    pub fn lock(&self) -> Result<Locked, Errno> {
        // SAFETY: the room holds an initialised mutex (or bytes glibc rejects with an error).
        locked(unsafe { libc::pthread_mutex_lock(self.room.raw()) })
    }

    /// Like [`RobustMutex::lock`], but gives up with `ETIMEDOUT` after `timeout_ns`. (The
    /// deadline is on CLOCK_REALTIME, the only clock glibc's timedlock takes.)
    pub fn lock_within(&self, timeout_ns: u64) -> Result<Locked, Errno> {
        let now = clock_gettime(ClockId::CLOCK_REALTIME)?;
        let total = now.tv_nsec() as u64 + timeout_ns % 1_000_000_000;
        let deadline = libc::timespec {
            tv_sec: now.tv_sec()
                + (timeout_ns / 1_000_000_000) as i64
                + (total / 1_000_000_000) as i64,
            tv_nsec: (total % 1_000_000_000) as i64,
        };
        // SAFETY: as for `lock`; `deadline` outlives the call.
        locked(unsafe { libc::pthread_mutex_timedlock(self.room.raw(), &deadline) })
    }

    /// Takes the mutex if it is free; `EBUSY` if someone holds it.
    pub fn try_lock(&self) -> Result<Locked, Errno> {
        // SAFETY: as for `lock`.
        locked(unsafe { libc::pthread_mutex_trylock(self.room.raw()) })
    }

    /// Releases the mutex this thread holds (`EPERM` if it does not). After
    /// [`Locked::OwnerDied`] without [`RobustMutex::consistent`], this makes the mutex
    /// permanently `ENOTRECOVERABLE`.
    pub fn unlock(&self) -> Result<(), Errno> {
        // SAFETY: as for `lock`.
        check(unsafe { libc::pthread_mutex_unlock(self.room.raw()) })
    }

    /// Marks the mutex usable again after [`Locked::OwnerDied`]; this thread must hold it.
    pub fn consistent(&self) -> Result<(), Errno> {
        // SAFETY: as for `lock`.
        check(unsafe { libc::pthread_mutex_consistent(self.room.raw()) })
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
                let other = RobustMutex::attach(&room);
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
    fn a_dead_owner_is_reported_and_can_be_repaired() {
        let room = MutexRoom::default();
        let m = RobustMutex::init(&room).unwrap();
        // A thread that exits holding the mutex: the kernel walks its robust list.
        std::thread::scope(|s| {
            s.spawn(|| assert_eq!(m.lock().unwrap(), Locked::Clean));
        });
        assert_eq!(m.lock_within(5_000_000_000).unwrap(), Locked::OwnerDied);
        m.consistent().unwrap();
        m.unlock().unwrap();
        assert_eq!(m.lock().unwrap(), Locked::Clean);
        m.unlock().unwrap();
    }

    #[test]
    fn unlocking_without_repair_makes_it_unrecoverable() {
        let room = MutexRoom::default();
        let m = RobustMutex::init(&room).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| assert_eq!(m.lock().unwrap(), Locked::Clean));
        });
        assert_eq!(m.lock().unwrap(), Locked::OwnerDied);
        m.unlock().unwrap();
        assert_eq!(m.lock(), Err(Errno::ENOTRECOVERABLE));
    }
}
