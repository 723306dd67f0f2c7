//! A contender that really waits: a thread of this process asleep in a blocking lock request.
//!
//! The request is bounded: past its deadline (or when the [`Waiter`] is dropped on an error
//! path) the thread is sent [`signal::INTERRUPT`], whose handler is installed without
//! `SA_RESTART`, so the request returns `EINTR`. The signal is repeated until the thread is out,
//! because one sent before the thread entered the kernel is simply absorbed.

use std::fs::File;
use std::sync::{Arc, Mutex};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::pthread::Pthread;

use crate::locking::LockFamily;
use crate::sys::locks::{LockMode, Wait};
use crate::sys::signal;

/// How long to sleep between two looks at the kernel's state.
pub(super) const POLL: Duration = Duration::from_millis(1);

/// A thread in a blocking exclusive request.
#[derive(Debug)]
pub(super) struct Waiter<'scope> {
    handle: Option<ScopedJoinHandle<'scope, Result<(), Errno>>>,
    thread: Arc<Mutex<Option<Pthread>>>,
    outcome: Option<Result<(), Errno>>,
}

impl<'scope> Waiter<'scope> {
    /// Starts a thread that asks for an exclusive `lock` on `file` and waits for it.
    pub(super) fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        lock: LockFamily,
        file: &'env File,
    ) -> Waiter<'scope> {
        signal::install_interrupt_handler();
        let thread = Arc::new(Mutex::new(None));
        let registered = Arc::clone(&thread);
        let handle = scope.spawn(move || {
            *registered.lock().unwrap_or_else(|p| p.into_inner()) = Some(signal::current_thread());
            lock.lock(file, LockMode::Exclusive, Wait::Block)
        });
        Waiter {
            handle: Some(handle),
            thread,
            outcome: None,
        }
    }

    /// The request's result once it returned (`Ok`: granted), `None` while it still waits.
    pub(super) fn poll(&mut self) -> Option<Result<(), Errno>> {
        if self.outcome.is_none() && self.handle.as_ref().is_some_and(|h| h.is_finished()) {
            let joined = self.handle.take().map(ScopedJoinHandle::join);
            // The closure cannot panic; if it somehow did, call it an I/O error.
            self.outcome = Some(match joined {
                Some(Ok(r)) => r,
                _ => Err(Errno::EIO),
            });
        }
        self.outcome
    }

    /// Waits up to `limit` for the request to return, then interrupts it. `Err(EINTR)`: it was
    /// still waiting at the deadline.
    pub(super) fn finish(mut self, limit: Duration) -> Result<(), Errno> {
        let give_up = Instant::now() + limit;
        loop {
            if let Some(r) = self.poll() {
                return r;
            }
            if Instant::now() >= give_up {
                self.interrupt();
            }
            std::thread::sleep(POLL);
        }
    }

    fn interrupt(&self) {
        if let Some(t) = *self.thread.lock().unwrap_or_else(|p| p.into_inner()) {
            let _ = signal::interrupt(t);
        }
    }
}

impl Drop for Waiter<'_> {
    /// On an early return the scope would join a thread that may wait forever: get it out first.
    fn drop(&mut self) {
        while self.handle.as_ref().is_some_and(|h| !h.is_finished()) {
            self.interrupt();
            std::thread::sleep(POLL);
        }
    }
}
