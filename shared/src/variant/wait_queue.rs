//! The wait queue of the handoff locks (`fair-futex`, `starvation-futex`): a FIFO of parked
//! contenders kept in the arena, what parking_lot's hash table of queues and Go's semaphore
//! tree are inside one process.
//!
//! The queue is a ring of contender indices guarded by a small three-state futex mutex
//! (`queue_lock`, held only for a few stores). A parked contender sleeps on its own `token`
//! word; whoever takes it off the queue writes the token (woken to compete, or
//! handed the lock) under the queue lock, then wakes it. Every value here may have been written
//! by another process: indices are checked, loops are bounded by the ring's size.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use nix::errno::Errno;

use super::futex::{lock_slow, unlock};
use crate::arena::{Arena, MAX_CONTENDERS};
use crate::sys::clock::monotonic_ns;
use crate::sys::futex;
use crate::sys::mapping::shared_atomics;

/// Not in the queue.
pub(super) const IDLE: u32 = 0;
/// In the queue, asleep or about to be.
pub(super) const QUEUED: u32 = 1;
/// Taken off the queue and woken: compete for the lock again.
pub(super) const WOKEN: u32 = 2;
/// Taken off the queue and handed the lock: it is ours, still locked on our behalf.
pub(super) const HANDOFF: u32 = 3;

/// The longest the queue lock is waited for before giving up (its holder does a few stores; only
/// a holder that died inside, or a hostile peer, keeps it this long).
const QUEUE_LOCK_PATIENCE_NS: u64 = 2_000_000_000;
const RING: u32 = MAX_CONTENDERS as u32;

shared_atomics! {
/// A queued contender's token, on a cache line of its own.
#[repr(align(64))]
#[derive(Debug)]
struct Token {
    /// What the unlocker left this contender ([`IDLE`], [`QUEUED`], [`WOKEN`], [`HANDOFF`]): the
    /// futex word it sleeps on.
    token: AtomicU32,
    _pad: [AtomicU32; 15],
}
}

shared_atomics! {
/// The region of the handoff locks (`fair-futex`, `starvation-futex`): their lock word and
/// what they keep beside it, then the wait queue, then a token per contender.
#[repr(align(64))]
#[derive(Debug)]
pub(super) struct QueueWords {
    /// The lock word (flags, and a waiter count for `starvation-futex`).
    pub(super) state: AtomicU32,
    /// A three-state futex mutex guarding the wait queue below.
    queue_lock: AtomicU32,
    /// Contenders in the wait queue.
    pub(super) queue_len: AtomicU32,
    /// Index in `queue` of the queue's head.
    queue_head: AtomicU32,
    /// `starvation-futex`: wakeups released while nobody was queued yet (a semaphore count).
    pub(super) permits: AtomicU32,
    _pad: AtomicU32,
    /// `fair-futex`: CLOCK_MONOTONIC (ns) after which the next unlock hands the lock over.
    pub(super) fair_deadline: AtomicU64,
    _pad2: [AtomicU64; 4],
    /// The wait queue, a ring of contender indices (+1).
    queue: [AtomicU32; MAX_CONTENDERS],
    tokens: [Token; MAX_CONTENDERS],
}
}

const _: () = assert!(size_of::<Token>() == 64);
const _: () = assert!(std::mem::offset_of!(QueueWords, fair_deadline) == 24);
const _: () = assert!(std::mem::offset_of!(QueueWords, queue) == 64);
const _: () = assert!(std::mem::offset_of!(QueueWords, tokens) == 320);

#[derive(Debug, Clone, Copy)]
pub(super) struct WaitQueue<'a> {
    words: &'a QueueWords,
    contenders: usize,
}

/// The queue lock, held: the queue may be read and changed.
#[derive(Debug)]
pub(super) struct Held<'q, 'a> {
    queue: &'q WaitQueue<'a>,
}

impl Drop for Held<'_, '_> {
    fn drop(&mut self) {
        // Cannot fail: a FUTEX_WAKE on our own mapping.
        let _ = unlock(&self.queue.words.queue_lock);
    }
}

impl<'a> WaitQueue<'a> {
    pub(super) fn new(arena: &'a Arena, contenders: usize) -> Self {
        WaitQueue {
            words: arena.region(),
            contenders: contenders.min(MAX_CONTENDERS),
        }
    }

    /// Contender `c`'s token word.
    pub(super) fn token(&self, c: usize) -> &'a AtomicU32 {
        &self.words.tokens[c.min(MAX_CONTENDERS - 1)].token
    }

    /// Takes the queue lock. A signal does not end the wait (the lock is about to be free, and
    /// an unlock must not stop half-way); only a holder stuck for [`QUEUE_LOCK_PATIENCE_NS`] does.
    pub(super) fn lock(&self) -> Result<Held<'_, 'a>, Errno> {
        let give_up = monotonic_ns().saturating_add(QUEUE_LOCK_PATIENCE_NS);
        loop {
            match lock_slow(&self.words.queue_lock) {
                Ok(()) => return Ok(Held { queue: self }),
                Err(Errno::EINTR) if monotonic_ns() < give_up => continue,
                Err(Errno::EINTR) => return Err(Errno::EDEADLK),
                Err(e) => return Err(e),
            }
        }
    }

    /// Sleeps while `me`'s token says [`QUEUED`]; returns the token it was left ([`WOKEN`] or
    /// [`HANDOFF`]). Interrupted (the run stopping, the watchdog), it leaves the queue and
    /// returns `EINTR`, calling `on_leave` with the queue's new length under the queue lock; if
    /// it was woken meanwhile, it returns the token as if it had not been interrupted.
    pub(super) fn park(&self, me: usize, on_leave: impl FnOnce(u32)) -> Result<u32, Errno> {
        let token = self.token(me);
        loop {
            let t = token.load(Ordering::Acquire);
            if t != QUEUED {
                return Ok(t);
            }
            match futex::wait(token, QUEUED) {
                Ok(()) | Err(Errno::EAGAIN) => continue,
                Err(Errno::EINTR) => {
                    let held = self.lock()?;
                    if token.load(Ordering::Acquire) == QUEUED && held.remove(me) {
                        token.store(IDLE, Ordering::Relaxed);
                        on_leave(held.len());
                        return Err(Errno::EINTR);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Wakes `c` after [`Held::pop`] took it off the queue and left it its token; call with the
    /// queue lock dropped, so the woken contender does not run into it.
    pub(super) fn wake(&self, c: usize) -> Result<(), Errno> {
        futex::wake(self.token(c), 1).map(drop)
    }
}

impl Held<'_, '_> {
    fn head(&self) -> u32 {
        self.queue.words.queue_head.load(Ordering::Relaxed) % RING
    }

    fn set(&self, head: u32, len: u32) {
        let h = self.queue.words;
        h.queue_head.store(head % RING, Ordering::Relaxed);
        h.queue_len.store(len, Ordering::Relaxed);
    }

    /// Contenders queued.
    pub(super) fn len(&self) -> u32 {
        self.queue.words.queue_len.load(Ordering::Relaxed).min(RING)
    }

    fn at(&self, i: u32) -> &AtomicU32 {
        &self.queue.words.queue[((self.head() + i) % RING) as usize]
    }

    /// Queues `c` at the back (`front`: at the front, for a waiter that already waited) and
    /// marks it [`QUEUED`].
    pub(super) fn push(&self, c: usize, front: bool) -> Result<(), Errno> {
        let len = self.len();
        if len >= RING {
            return Err(Errno::EOVERFLOW);
        }
        self.queue.token(c).store(QUEUED, Ordering::Relaxed);
        let tag = c as u32 + 1;
        if front {
            let head = (self.head() + RING - 1) % RING;
            self.queue.words.queue[head as usize].store(tag, Ordering::Relaxed);
            self.set(head, len + 1);
        } else {
            self.at(len).store(tag, Ordering::Relaxed);
            self.set(self.head(), len + 1);
        }
        Ok(())
    }

    /// The contender at the front of the queue, left in it. Drops entries no contender could
    /// have written.
    pub(super) fn front(&self) -> Option<usize> {
        while self.len() > 0 {
            let tag = self.at(0).load(Ordering::Relaxed) as usize;
            if (1..=self.queue.contenders).contains(&tag) {
                return Some(tag - 1);
            }
            self.set(self.head() + 1, self.len() - 1);
        }
        None
    }

    /// Takes the contender at the front off the queue and leaves it `token` (wake it with
    /// [`WaitQueue::wake`] once the lock is dropped). An awake contender may act on its token
    /// at once, before the queue lock is dropped: whatever it needs must be written before.
    pub(super) fn pop(&self, token: u32) -> Option<usize> {
        let c = self.front()?;
        self.set(self.head() + 1, self.len() - 1);
        self.queue.token(c).store(token, Ordering::Release);
        #[cfg(test)]
        on_token::seen(self.queue.words, c, token);
        Some(c)
    }

    /// Takes `c` out of the queue wherever it is; false if it was not in it.
    pub(super) fn remove(&self, c: usize) -> bool {
        let (len, tag) = (self.len(), c as u32 + 1);
        let Some(found) = (0..len).find(|&i| self.at(i).load(Ordering::Relaxed) == tag) else {
            return false;
        };
        for i in found..len - 1 {
            let next = self.at(i + 1).load(Ordering::Relaxed);
            self.at(i).store(next, Ordering::Relaxed);
        }
        self.set(self.head(), len - 1);
        true
    }
}

/// Tests: a look at the words at the moment a token is handed out, as the contender it is
/// handed to could take it (it may run before the handing unlock returns).
#[cfg(test)]
pub(super) mod on_token {
    use std::cell::RefCell;

    use super::QueueWords;

    type Look = Box<dyn Fn(&QueueWords, usize, u32)>;

    thread_local! {
        static LOOK: RefCell<Option<Look>> = const { RefCell::new(None) };
    }

    /// Calls `look` with the words, each contender and the token [`super::Held::pop`] hands
    /// out on this thread.
    pub(in crate::variant) fn set(look: Option<Look>) {
        LOOK.with(|l| *l.borrow_mut() = look);
    }

    pub(super) fn seen(words: &QueueWords, c: usize, token: u32) {
        LOOK.with(|l| {
            if let Some(look) = &*l.borrow() {
                look(words, c, token);
            }
        });
    }
}
