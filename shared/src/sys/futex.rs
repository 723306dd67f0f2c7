//! FUTEX_WAIT / FUTEX_WAKE on a word of the shared arena.
//!
//! The arena is a `MAP_SHARED` mapping seen by several processes, so these never use
//! `FUTEX_PRIVATE_FLAG`: a private futex is keyed by the process's own address space and a wake
//! from the other process would never find the waiter.

use std::num::NonZeroU32;
use std::sync::atomic::AtomicU32;

use nix::errno::Errno;
use rustix::thread::futex;

/// Sleeps while `*word == expected`. Returns at once with `EAGAIN` if it already differs; returns
/// `EINTR` when the session's watchdog interrupts the thread; otherwise `Ok` after a wake (which
/// may be spurious: callers re-check the word).
pub fn wait(word: &AtomicU32, expected: u32) -> Result<(), Errno> {
    futex::wait(word, futex::Flags::empty(), expected, None).map_err(super::errno)
}

/// Like [`wait`] but gives up after `timeout_ns` with `ETIMEDOUT`.
pub fn wait_for(word: &AtomicU32, expected: u32, timeout_ns: u64) -> Result<(), Errno> {
    futex::wait(
        word,
        futex::Flags::empty(),
        expected,
        Some(&super::clock::timespec(timeout_ns)),
    )
    .map_err(super::errno)
}

/// Wakes up to `count` waiters on `word`; returns how many were woken.
pub fn wake(word: &AtomicU32, count: u32) -> Result<usize, Errno> {
    futex::wake(word, futex::Flags::empty(), count).map_err(super::errno)
}

/// The wait/wake bit a contender (or a ticket) uses with the bitset operations: several waiters
/// share one futex word, and a wake reaches only the waiter it is meant for (exactly, up to 32
/// waiters; beyond that, two may share a bit and one wakes for nothing and sleeps again).
pub fn bit(index: usize) -> NonZeroU32 {
    NonZeroU32::new(1 << (index % 32)).unwrap_or(NonZeroU32::MIN)
}

/// Sleeps while `*word == expected`, wakeable only by [`wake_bits`] calls whose bits meet `bits`.
pub fn wait_bits(word: &AtomicU32, expected: u32, bits: NonZeroU32) -> Result<(), Errno> {
    futex::wait_bitset(word, futex::Flags::empty(), expected, None, bits).map_err(super::errno)
}

/// Wakes up to `count` waiters on `word` whose bits meet `bits`.
pub fn wake_bits(word: &AtomicU32, count: u32, bits: NonZeroU32) -> Result<usize, Errno> {
    futex::wake_bitset(word, futex::Flags::empty(), count, bits).map_err(super::errno)
}

/// PI futex word: set by the kernel while waiters are queued in it (the owner must unlock
/// through [`unlock_pi`]).
pub const PI_WAITERS: u32 = 0x8000_0000;
/// PI futex word: the owner's TID part.
pub const PI_TID_MASK: u32 = 0x3fff_ffff;

/// The calling thread's id, the value a PI futex word holds while the thread owns it.
pub fn thread_id() -> u32 {
    rustix::thread::gettid().as_raw_nonzero().get() as u32
}

/// Takes the PI futex `word` in the kernel (FUTEX_LOCK_PI2, Linux ≥ 5.14): queues behind the
/// current owner, boosting it, until the kernel hands the word over (it writes our TID there).
/// Gives up with `ETIMEDOUT` at `deadline_ns` on CLOCK_MONOTONIC. A signal does not end the wait
/// (the kernel restarts it), so the deadline is the only way out.
pub fn lock_pi_until(word: &AtomicU32, deadline_ns: u64) -> Result<(), Errno> {
    futex::lock_pi2(
        word,
        futex::Flags::empty(),
        Some(&super::clock::timespec(deadline_ns)),
    )
    .map_err(super::errno)
}

/// Releases the PI futex `word` this thread owns: the kernel writes the top waiter's TID into
/// it (handing the lock over) or 0 when nobody waits.
pub fn unlock_pi(word: &AtomicU32) -> Result<(), Errno> {
    futex::unlock_pi(word, futex::Flags::empty()).map_err(super::errno)
}
