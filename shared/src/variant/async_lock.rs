//! `async-lock`: a tokio program waiting for a file lock the way the ecosystem does it today,
//! the blocking lock call moved to the runtime's blocking pool (`spawn_blocking`) and the
//! runtime's thread awaiting it. That is what fs4's async `FileExt` and most hand-written code
//! do: Linux has no file lock to poll, so an async wait costs a thread of the pool per waiter.
//!
//! The lock underneath is the one `std-lock` and `fs4` take, `flock(LOCK_EX)` (std's
//! `File::lock`) on the whole arena file through the contender's own open file description
//! (the pool thread locks through a `dup` of it: the same description, so the same lock). Only
//! the waiting differs, so `compare --variants std-lock,async-lock` prices the async wait and
//! nothing else, and a holder's death does what it does to `flock`: the lock belongs to the
//! description, not to the thread that took it.
//!
//! Each contender drives its own current-thread runtime on its session thread. A request is an
//! [`attempt::Attempt`], which a dropped waiter cannot orphan; the public [`lock_within`] is the
//! async acquire with a deadline built on it. The watchdog's signal cannot reach a wait inside
//! the runtime (tokio retries `epoll_wait` on `EINTR`), so every wait also listens to the
//! session's abort eventfd, and an aborted wait is dropped like a timed-out one. The pool
//! threads' CPU time is charged to the contender ([`pool_cpu::PoolCpu`]).

mod attempt;
mod pool_cpu;

use std::fs::File;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use nix::errno::Errno;
use tokio::io::unix::AsyncFd;
use tokio::runtime::Runtime;

use super::spec::Spec;
use super::{Ctx, Exclusion, Handoff, Opened, SetupError, file_lock};
use crate::sys::{io_errno, reactor};
use attempt::Attempt;
use pool_cpu::PoolCpu;

pub(super) const SPEC: Spec = file_lock::whole_file(
    "async-lock",
    open,
    file_lock::owned_by_description,
    "a tokio runtime and a pool thread per waiter; a description of its own per process",
    "yes: spawn_blocking(flock) awaited; lockfair's lock_within gives up without orphaning",
);

/// How long dropping a contender waits for its runtime's pool threads to finish.
const SHUTDOWN: Duration = Duration::from_secs(2);

/// Takes the exclusive `flock` on `file`'s description from async code, waiting at most `limit`
/// (`ETIMEDOUT` then). The wait runs on the blocking pool of the current tokio runtime (which
/// must have its timer enabled), and when it gives up nothing stays behind: the pool thread is
/// out of `flock`, and no grant that arrived meanwhile stays held. Getting the thread out takes
/// a signal: the first call installs a no-op `SIGUSR2` handler for the whole process (without
/// `SA_RESTART`), and giving up blocks the calling thread until the pool thread has left
/// `flock` (one signal, in practice; at most 2 s).
pub async fn lock_within(file: &Arc<File>, limit: Duration) -> Result<(), Errno> {
    let attempt = Attempt::start(file, &Arc::new(PoolCpu::default()));
    tokio::time::timeout(limit, attempt)
        .await
        .unwrap_or(Err(Errno::ETIMEDOUT))
}

fn open<'a>(ctx: &Ctx<'a>, _: Vec<OwnedFd>) -> Result<Opened<'a>, SetupError> {
    Ok(Opened::in_arena(ctx, AsyncLock::new(ctx)?))
}

/// One contender's runtime, its `dup` of the arena's description and its abort registration.
#[derive(Debug)]
struct AsyncLock<'a> {
    /// Both `Some` until dropped: the registration goes before the runtime that owns it.
    abort: Option<AsyncFd<BorrowedFd<'a>>>,
    rt: Option<Runtime>,
    file: Arc<File>,
    cpu: Arc<PoolCpu>,
}

fn setup_error(what: &'static str) -> impl Fn(std::io::Error) -> SetupError {
    move |e| SetupError::Sys {
        what,
        errno: io_errno(&e),
    }
}

impl<'a> AsyncLock<'a> {
    fn new(ctx: &Ctx<'a>) -> Result<Self, SetupError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(setup_error("start a tokio runtime"))?;
        let file = ctx
            .arena
            .file()
            .try_clone()
            .map_err(setup_error("duplicate the arena descriptor"))?;
        let abort = {
            let _entered = rt.enter();
            reactor::register_borrowed(ctx.abort)
                .map_err(setup_error("register the abort eventfd with tokio"))?
        };
        Ok(AsyncLock {
            abort: Some(abort),
            rt: Some(rt),
            file: Arc::new(file),
            cpu: Arc::new(PoolCpu::default()),
        })
    }
}

impl Handoff for AsyncLock<'_> {
    fn exclusion(&self) -> Exclusion {
        Exclusion::Lock
    }

    fn acquire(&mut self) -> Result<(), Errno> {
        let (Some(rt), Some(abort)) = (&self.rt, &self.abort) else {
            return Err(Errno::EBADF);
        };
        let (file, cpu) = (&self.file, &self.cpu);
        rt.block_on(async move {
            let attempt = Attempt::start(file, cpu);
            tokio::select! {
                biased;
                // Aborted: the attempt is dropped (and its thread interrupted); report EINTR,
                // as an interrupted syscall would.
                _ = abort.readable() => Err(Errno::EINTR),
                got = attempt => got,
            }
        })
    }

    fn release(&mut self) -> Result<(), Errno> {
        self.file.unlock().map_err(|e| io_errno(&e))
    }

    fn hand_over(&mut self, _next: usize) -> Result<(), Errno> {
        self.release()
    }

    fn wake_everyone(&mut self) -> Result<(), Errno> {
        // Pool threads sleep in the kernel's flock queue; unlocking (done by the caller) wakes
        // them, and an abort reaches the awaiting side through the abort eventfd.
        Ok(())
    }

    fn helper_cpu_ns(&self) -> u64 {
        self.cpu.total_ns()
    }
}

impl Drop for AsyncLock<'_> {
    /// A runtime's drop waits for its pool threads without a bound: give it one.
    fn drop(&mut self) {
        drop(self.abort.take());
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(SHUTDOWN);
        }
    }
}

#[cfg(test)]
mod tests;
