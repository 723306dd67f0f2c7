//! The way out: survivors that learn of the holder's death without polling and without hanging.
//!
//! - **eventfd, pipe**: `PidfdRing` waits in one `poll` on its own eventfd (or pipe) *and* a
//!   pidfd of every peer. A pidfd becomes readable when its process exits, so the death wakes the
//!   waiter exactly as a handoff would, and the waiter knows which it was.
//! - **tokio-eventfd**: `TokioPidfdRing` registers the peers' pidfds with the same runtime as
//!   its eventfd and selects on both. The registration is made once (epoll), so a wait costs no
//!   more than before.
//! - **futex, ticket, spin-futex**: a futex waits on a memory word, and `FUTEX_WAITV` waits on
//!   several words, never on a descriptor. A robust futex list (`set_robust_list`, the kernel
//!   sets `FUTEX_OWNER_DIED` and wakes a waiter) only works for a word that holds its owner's
//!   TID, a mutex; a turn word, a ticket counter or a `parked` flag holds no TID. A bounded
//!   `FUTEX_WAIT` plus a pidfd check would be polling. So a `DeathWatcher` thread sleeps in
//!   `poll` on the peers' pidfds; when one dies it repairs the shared state for its own
//!   contender (`take_over`, the repair the variant declares: the turn, or the ticket being
//!   served, passes on) and wakes it. It
//!   changes the very word the contender sleeps on before waking it, and FUTEX_WAIT compares
//!   that word under the kernel's lock, so the wakeup cannot be lost. In the no-crash case it
//!   adds no syscall to a handoff: it costs a sleeping thread.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::thread::{Scope, ScopedJoinHandle};

use nix::errno::Errno;
use nix::sys::eventfd::{EfdFlags, EventFd};
use tokio::io::unix::AsyncFd;
use tokio::runtime::Runtime;

use crate::arena::Arena;
use crate::sys::poll::PollSet;
use crate::sys::{rawio, reactor};
use crate::variant::{Exclusion, Handoff, Repair, Variant};

/// How a variant's survivor learns of a death: each variant declares its own.
pub use crate::variant::Protection;

/// The `turns`-mode ring of eventfds or pipes, waiting in one `poll` with the peers' pidfds.
/// `acquire` answers `EOWNERDEAD` when a peer died, `EPIPE` on a pipe's end-of-file.
#[derive(Debug)]
pub(super) struct PidfdRing {
    mine: OwnedFd,
    next: OwnedFd,
    peers: Vec<OwnedFd>,
    /// Bytes per token: 8 for an eventfd counter, 1 for a pipe.
    token: usize,
}

impl PidfdRing {
    /// `fds` as [`Variant::expected_fds`] orders them for `turns` mode: mine, then the next's;
    /// `token`: bytes per token, 8 (an eventfd counter) or 1 (a pipe byte).
    pub(super) fn new(
        token: usize,
        fds: Vec<OwnedFd>,
        peers: Vec<OwnedFd>,
    ) -> Result<PidfdRing, Errno> {
        if token != 8 && token != 1 {
            return Err(Errno::EINVAL);
        }
        let mut it = fds.into_iter();
        match (it.next(), it.next()) {
            (Some(mine), Some(next)) => Ok(PidfdRing {
                mine,
                next,
                peers,
                token,
            }),
            _ => Err(Errno::EBADF),
        }
    }

    /// Blocks until my descriptor is readable (`Ok(true)`) or a peer died (`Ok(false)`).
    fn wait(&self) -> Result<bool, Errno> {
        let mine = std::iter::once(self.mine.as_fd());
        let mut set = PollSet::readable(mine.chain(self.peers.iter().map(AsFd::as_fd)));
        loop {
            match set.wait(None) {
                Ok(_) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
        // A turn that arrived counts, even if its sender died just after; otherwise poll woke
        // for a pidfd: a peer died.
        Ok(set.ready(0))
    }

    fn post(&self) -> Result<(), Errno> {
        let bytes = 1u64.to_ne_bytes();
        let token = if self.token == 8 { &bytes[..] } else { b"t" };
        rawio::write(&self.next, token).map(drop)
    }
}

impl Handoff for PidfdRing {
    fn exclusion(&self) -> Exclusion {
        Exclusion::Turn
    }

    fn acquire(&mut self) -> Result<(), Errno> {
        if !self.wait()? {
            return Err(Errno::EOWNERDEAD);
        }
        let mut buf = [0u8; 8];
        match rawio::read(&self.mine, &mut buf[..self.token])? {
            0 => Err(Errno::EPIPE),
            _ => Ok(()),
        }
    }

    fn release(&mut self) -> Result<(), Errno> {
        Ok(())
    }

    fn hand_over(&mut self, _next: usize) -> Result<(), Errno> {
        self.post()
    }

    fn wake_everyone(&mut self) -> Result<(), Errno> {
        self.post()
    }
}

/// tokio-eventfd's ring with the peers' pidfds registered in its runtime: `acquire` answers
/// `EOWNERDEAD` when a peer died. Fields drop in order: registrations before their runtime.
#[derive(Debug)]
pub(super) struct TokioPidfdRing {
    mine: AsyncFd<OwnedFd>,
    peers: Vec<AsyncFd<OwnedFd>>,
    next: OwnedFd,
    rt: Runtime,
}

impl TokioPidfdRing {
    /// `fds`: my non-blocking eventfd, then the next contender's.
    pub(super) fn new(fds: Vec<OwnedFd>, peers: Vec<OwnedFd>) -> std::io::Result<TokioPidfdRing> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let mut it = fds.into_iter();
        let (Some(mine), Some(next)) = (it.next(), it.next()) else {
            return Err(std::io::Error::from_raw_os_error(Errno::EBADF as i32));
        };
        let entered = rt.enter();
        let mine = reactor::register(mine)?;
        let peers = peers
            .into_iter()
            .map(reactor::register)
            .collect::<std::io::Result<Vec<_>>>()?;
        drop(entered);
        Ok(TokioPidfdRing {
            mine,
            peers,
            next,
            rt,
        })
    }
}

/// Resolves once any of `peers` is readable: a peer died (never, if there are none).
async fn any_died(peers: &[AsyncFd<OwnedFd>]) {
    std::future::poll_fn(|cx| {
        // Poll every one, so each registers its waker.
        let ready = peers
            .iter()
            .filter(|p| p.poll_read_ready(cx).is_ready())
            .count();
        if ready > 0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

impl Handoff for TokioPidfdRing {
    fn exclusion(&self) -> Exclusion {
        Exclusion::Turn
    }

    fn acquire(&mut self) -> Result<(), Errno> {
        let (mine, peers) = (&self.mine, &self.peers);
        self.rt.block_on(async move {
            loop {
                tokio::select! {
                    biased;
                    ready = mine.readable() => {
                        let mut ready = ready.map_err(|e| crate::sys::io_errno(&e))?;
                        let got = ready.try_io(|fd| {
                            rawio::read(fd.get_ref(), &mut [0u8; 8])
                                .map_err(|e| std::io::Error::from_raw_os_error(e as i32))
                        });
                        match got {
                            Ok(Ok(_)) => return Ok(()),
                            Ok(Err(e)) => return Err(crate::sys::io_errno(&e)),
                            Err(_would_block) => continue,
                        }
                    }
                    () = any_died(peers) => return Err(Errno::EOWNERDEAD),
                }
            }
        })
    }

    fn release(&mut self) -> Result<(), Errno> {
        Ok(())
    }

    fn hand_over(&mut self, _next: usize) -> Result<(), Errno> {
        rawio::eventfd_write(&self.next, 1)
    }

    fn wake_everyone(&mut self) -> Result<(), Errno> {
        self.hand_over(0)
    }
}

/// A thread asleep in `poll` on the peers' pidfds, which runs a repair when one of them dies.
#[derive(Debug)]
pub(super) struct DeathWatcher<'scope> {
    shared: Arc<Watched>,
    thread: ScopedJoinHandle<'scope, ()>,
}

#[derive(Debug)]
struct Watched {
    stop: EventFd,
    fired: AtomicBool,
}

impl<'scope> DeathWatcher<'scope> {
    /// Starts watching `pidfds`; `on_death` runs on the watcher thread when a peer dies.
    pub(super) fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        pidfds: &'env [OwnedFd],
        on_death: impl FnOnce() + Send + 'scope,
    ) -> Result<DeathWatcher<'scope>, Errno> {
        let shared = Arc::new(Watched {
            stop: EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC)?,
            fired: AtomicBool::new(false),
        });
        let theirs = shared.clone();
        let thread = scope.spawn(move || {
            if watch(&theirs.stop, pidfds) {
                theirs.fired.store(true, Ordering::SeqCst);
                on_death();
            }
        });
        Ok(DeathWatcher { shared, thread })
    }

    /// True once a peer died (and the repair ran).
    pub(super) fn fired(&self) -> bool {
        self.shared.fired.load(Ordering::SeqCst)
    }

    /// Stops the thread; returns whether a peer died meanwhile.
    pub(super) fn stop(self) -> bool {
        let _ = self.shared.stop.write(1);
        let _ = self.thread.join();
        self.shared.fired.load(Ordering::SeqCst)
    }
}

/// Sleeps until `stop` or one of `pidfds` is readable; true if a peer died.
fn watch(stop: &EventFd, pidfds: &[OwnedFd]) -> bool {
    let all = std::iter::once(stop.as_fd()).chain(pidfds.iter().map(AsFd::as_fd));
    let mut set = PollSet::readable(all);
    loop {
        match set.wait(None) {
            Ok(_) => break,
            Err(Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
    (1..=pidfds.len()).any(|i| set.ready(i))
}

/// The repair after contender `dead` died, as `variant` declares it: if `dead` held the turn
/// (or the ticket being served), the turn passes to `me`; then `me` is woken wherever its variant
/// sleeps. `own_eventfd`: `me`'s own eventfd, for a variant woken by a token posted there.
pub(super) fn take_over(
    variant: Variant,
    arena: &Arena,
    (me, dead): (usize, usize),
    own_eventfd: Option<&OwnedFd>,
) {
    let repair = variant.spec().death.protection.map(|p| p.repair);
    match (repair, own_eventfd) {
        (Some(Repair::Words(repair)), _) => repair(arena, me, dead),
        (Some(Repair::PostOwnEventfd), Some(fd)) => drop(rawio::eventfd_write(fd, 1)),
        _ => {}
    }
}

/// Gives the turn word to `me` if `dead` held it: the turn the eventfd or pipe never delivered.
pub(super) fn claim_turn(arena: &Arena, me: usize, dead: usize) {
    let _ = arena.header().turn.compare_exchange(
        dead as u32,
        me as u32,
        Ordering::AcqRel,
        Ordering::Acquire,
    );
}
