//! The server's end of `--seed-compat`: a blog client's `CACHEDFILE HELLO`, checked like any
//! hello and played on a blocking thread like any session (the protocol is in [`crate::compat`]).

use std::os::fd::OwnedFd;
use std::sync::Arc;

use nix::sys::socket::UnixAddr;
use thiserror::Error;
use tokio::task::JoinSet;

use super::Server;
use super::peer_watch::{PeerWatch, WatchError, run_watched};
use super::slots::Slot;
use crate::admission::{self, check_sender};
use crate::compat::writer::{BlogSession, WriterReport};
use crate::compat::{CompatError, SeedCompat};
use crate::errors::error_chain;
use crate::proto::Message;
use crate::session::watchdog::AbortHandle;
use crate::sys::scm::{Credentials, Received};

/// Why a blog hello was not played, and whether to print it whatever `--verbose` says.
struct Refusal {
    why: String,
    loud: bool,
}

/// Who sent a blog hello, for its refusal.
struct BlogSender {
    id: u64,
    pid: i32,
    /// Only a sender that bound its socket can be answered; the blog's client does not.
    from: Option<UnixAddr>,
}

impl BlogSender {
    /// Prints the refusal (on stderr when loud, else only with `--verbose`) and answers it to a
    /// sender that has an address.
    fn refuse(&self, server: &Server, Refusal { why, loud }: Refusal) {
        let BlogSender { id, pid, .. } = *self;
        if loud {
            eprintln!("lockfair-server: compat datagram {id} (pid {pid}): refused: {why}");
        } else {
            server.log(id, &why);
        }
        if let Some(to) = &self.from {
            server.reply_now(to, &Message::Error(why));
        }
    }
}

impl Server {
    /// Handles a datagram whose payload is exactly `CACHEDFILE HELLO` (only with `--seed-compat`).
    ///
    /// The blog's client does not bind, so it cannot be answered: refusals are printed on
    /// stderr, and sent as an `error` datagram only to a sender that has an address. The uid
    /// check, `--max-sessions` and the uid's quota apply as to lockfair's own sessions. Checking
    /// the descriptor (and asking kcmp about the sender's) happens on a blocking thread, off the
    /// receive loop.
    pub(super) fn handle_compat(
        self: &Arc<Self>,
        id: u64,
        compat: &SeedCompat,
        got: Received,
        tasks: &mut JoinSet<()>,
    ) {
        let Received {
            control_truncated,
            fds,
            credentials,
            pidfd,
            from,
            ..
        } = got;
        let sender = BlogSender {
            id,
            pid: credentials.map_or(0, |c| c.pid),
            from,
        };
        let slot = match self.admit_compat(credentials, control_truncated) {
            Ok(slot) => slot,
            Err(refusal) => {
                sender.refuse(self, refusal);
                return self.closer.discard(fds);
            }
        };
        let Ok(handle) = AbortHandle::new() else {
            eprintln!("lockfair-server: compat datagram {id}: server out of resources (eventfd)");
            return self.closer.discard(fds);
        };
        let blog = BlogHello {
            pid: sender.pid,
            fds,
            peer: client_watch(pidfd, sender.pid),
            compat: compat.clone(),
            handle,
        };
        self.start_compat(sender, blog, slot, tasks);
    }

    /// Plays an admitted blog hello as a task, and prints how it ended. The session ends when
    /// its turns are done, the client exits, or `--seed-max-seconds` passes: the blog's client
    /// never gives up, so the server must.
    fn start_compat(
        self: &Arc<Self>,
        sender: BlogSender,
        blog: BlogHello,
        slot: Slot,
        tasks: &mut JoinSet<()>,
    ) {
        let BlogSender { id, pid, .. } = sender;
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, blog.handle.clone());
        let server = self.clone();
        tasks.spawn(async move {
            let outcome = play(blog).await;
            drop(slot);
            server
                .running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            match outcome {
                Ok(report) => super::say(report.to_text(id).trim_end_matches('\n')),
                Err(Unplayed::Refused(e)) => sender.refuse(
                    &server,
                    Refusal {
                        why: e.to_string(),
                        loud: true,
                    },
                ),
                Err(e) => super::say(&format!(
                    "compat session {id} (pid {pid}): failed: {}",
                    error_chain(&e)
                )),
            }
        });
    }

    /// The checks that need no look at the descriptor, in the order of `handle`'s: credentials,
    /// uid, truncation, a free slot within the uid's quota.
    fn admit_compat(
        &self,
        credentials: Option<Credentials>,
        control_truncated: bool,
    ) -> Result<Slot, Refusal> {
        let loud = |why: String| Refusal { why, loud: true };
        // Same words as lockfair's own sessions; a uid refusal is only printed with --verbose.
        let creds =
            check_sender(credentials, self.uid, &self.config.allow_uids).map_err(|r| Refusal {
                loud: !matches!(r, admission::Refusal::Uid { .. }),
                why: r.to_string(),
            })?;
        if control_truncated {
            return Err(loud(CompatError::FdsTruncated.to_string()));
        }
        self.slots.take(creds.uid).map_err(|r| loud(r.to_string()))
    }
}

/// How the session learns that the blog's client exited. Its own pidfd (`SCM_PIDFD`) names it
/// whatever happens to its pid; without one (a kernel before 6.5) the session's watchdog opens
/// one for the pid. The blog's client is unbound, so that pid cannot be confirmed through its
/// socket as a lockfair client's is.
fn client_watch(pidfd: Option<Result<OwnedFd, nix::errno::Errno>>, pid: i32) -> PeerWatch {
    match pidfd {
        Some(Ok(fd)) => PeerWatch::Pidfd(fd),
        _ => PeerWatch::Pid(pid),
    }
}

/// An admitted blog hello, on its way to a blocking thread.
struct BlogHello {
    pid: i32,
    fds: Vec<OwnedFd>,
    peer: PeerWatch,
    compat: SeedCompat,
    handle: AbortHandle,
}

/// Why a blog hello was not played to its end.
#[derive(Debug, Error)]
enum Unplayed {
    /// The descriptor did not check out: refused, as loudly as a bad hello.
    #[error(transparent)]
    Refused(CompatError),
    /// Failed while playing.
    #[error(transparent)]
    Failed(CompatError),
    #[error(transparent)]
    Server(#[from] WatchError),
}

/// Checks the descriptor and plays the blog's server on a blocking thread, and aborts the play
/// when the client's pidfd says it exited.
async fn play(blog: BlogHello) -> Result<WriterReport, Unplayed> {
    let BlogHello {
        pid,
        fds,
        peer,
        compat,
        handle,
    } = blog;
    let watch_pid = peer.watchdog_pid();
    let peer = peer.into_async()?;
    run_watched(&peer, handle.clone(), pid, move || {
        let blog = BlogSession::accept(fds, pid, &compat).map_err(Unplayed::Refused)?;
        blog.play(handle, watch_pid).map_err(Unplayed::Failed)
    })
    .await?
}
