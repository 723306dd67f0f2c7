//! One blocking `flock(LOCK_EX)` moved to a tokio runtime's blocking pool, the way async programs
//! wait for a file lock (`spawn_blocking(move || file.lock())`), made safe to give up on.
//!
//! The plain pattern has a trap. When the future awaiting the pool thread is dropped (a
//! `tokio::time::timeout` that fires, a `select!` that takes another branch), the thread goes on
//! waiting in `flock`, and when the holder lets go it takes the lock for a description the
//! program still has open: an orphaned lock that nobody will release, and every other process
//! waits behind it. [`Attempt`] closes the trap from both sides:
//! - dropped while its thread waits, it marks itself abandoned and sends the thread
//!   [`signal::INTERRUPT`] (installed without `SA_RESTART`, so `flock` returns `EINTR`), again
//!   until the thread is out, since a signal that arrives just before the thread enters the
//!   kernel is absorbed;
//! - a thread granted the lock after its waiter left (the grant raced the deadline) unlocks at
//!   once, and a grant that arrived before the drop but was never collected is unlocked by the
//!   drop itself.

use std::fs::File;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::pthread::Pthread;
use tokio::task::JoinHandle;

use super::pool_cpu::PoolCpu;
use crate::sys::{io_errno, signal};

/// How long a drop keeps interrupting a thread that is still in `flock` (one signal is usually
/// enough). Past it the thread is left to give back whatever it gets.
const GIVE_UP: Duration = Duration::from_secs(2);
/// The pause between two signals.
const PAUSE: Duration = Duration::from_millis(1);

/// Where the pool thread is, as it and the waiter agree under one mutex.
#[derive(Debug, Default)]
pub(super) struct Progress {
    /// The pool thread, from just before it calls `flock` until it returns.
    waiting_in: Option<Pthread>,
    /// The thread returned from `flock`, or saw the waiter gone and never called it.
    out: bool,
    /// The thread got the lock for a waiter that was still there.
    granted: bool,
    /// The waiter is gone: whatever the thread gets, it gives back.
    pub(super) abandoned: bool,
}

/// A lock request on a thread of the blocking pool; a future of its outcome (`Ok`: the lock is
/// held through `file`'s description). Dropping it before it completes leaves nothing behind.
#[derive(Debug)]
pub(super) struct Attempt {
    file: Arc<File>,
    progress: Arc<Mutex<Progress>>,
    /// `None` once the outcome was collected: then the caller owns the lock, if it was granted.
    handle: Option<JoinHandle<Result<(), Errno>>>,
}

fn lock(progress: &Mutex<Progress>) -> MutexGuard<'_, Progress> {
    progress
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Attempt {
    /// Starts the request on the current runtime's blocking pool; `cpu` is charged with the
    /// pool thread's time.
    pub(super) fn start(file: &Arc<File>, cpu: &Arc<PoolCpu>) -> Attempt {
        signal::install_interrupt_handler();
        let progress = Arc::new(Mutex::new(Progress::default()));
        let (theirs, shared, cpu) = (Arc::clone(file), Arc::clone(&progress), Arc::clone(cpu));
        let handle = tokio::task::spawn_blocking(move || {
            let got = wait_in_pool(&theirs, &shared);
            cpu.charge_this_thread();
            got
        });
        Attempt {
            file: Arc::clone(file),
            progress,
            handle: Some(handle),
        }
    }
}

/// The pool thread's side: `flock`, unless the waiter is gone before or after it.
pub(super) fn wait_in_pool(file: &File, progress: &Mutex<Progress>) -> Result<(), Errno> {
    {
        let mut p = lock(progress);
        if p.abandoned {
            p.out = true;
            return Err(Errno::ECANCELED);
        }
        p.waiting_in = Some(signal::current_thread());
    }
    let got = file.lock().map_err(|e| io_errno(&e));
    let mut p = lock(progress);
    p.waiting_in = None;
    p.out = true;
    if got.is_ok() && p.abandoned {
        drop(p);
        file.unlock().map_err(|e| io_errno(&e))?;
        return Err(Errno::ECANCELED);
    }
    p.granted = got.is_ok();
    got
}

impl Future for Attempt {
    type Output = Result<(), Errno>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(handle) = self.handle.as_mut() else {
            return Poll::Ready(Err(Errno::EALREADY));
        };
        let joined = ready!(Pin::new(handle).poll(cx));
        self.handle = None;
        // The closure does not panic; if it somehow did, call it an I/O error.
        Poll::Ready(joined.unwrap_or(Err(Errno::EIO)))
    }
}

impl Drop for Attempt {
    /// Given up before its outcome was collected: get the thread out of `flock`, and give back a
    /// grant nobody will use.
    fn drop(&mut self) {
        if self.handle.is_none() {
            return;
        }
        let give_up = Instant::now() + GIVE_UP;
        loop {
            let mut p = lock(&self.progress);
            p.abandoned = true;
            if p.out {
                if p.granted {
                    let _ = self.file.unlock();
                }
                return;
            }
            let Some(thread) = p.waiting_in else {
                // Not started yet: it will see `abandoned` and never call `flock`.
                return;
            };
            // Valid: the thread is between setting and clearing `waiting_in`, which it cannot
            // clear while we hold the mutex.
            let _ = signal::interrupt(thread);
            drop(p);
            if Instant::now() >= give_up {
                return;
            }
            std::thread::sleep(PAUSE);
        }
    }
}
