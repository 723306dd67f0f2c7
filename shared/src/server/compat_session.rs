//! The server's end of `--seed-compat`: a blog client's `CACHEDFILE HELLO`, checked like any
//! hello and played on a blocking thread like any session (the protocol is in [`crate::compat`]).

use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinSet;

use super::{Server, discard, error_chain};
use crate::admission::{self, check_sender};
use crate::compat::writer::BlogSession;
use crate::compat::{CompatError, SeedCompat};
use crate::proto::Message;
use crate::session::watchdog::AbortHandle;
use crate::sys::scm::{Credentials, Received};

/// Why a blog hello was not played, and whether to print it whatever `--verbose` says.
struct Refusal {
    why: String,
    loud: bool,
}

impl Server {
    /// Handles a datagram whose payload is exactly `CACHEDFILE HELLO` (only with `--seed-compat`).
    ///
    /// The blog's client does not bind, so it cannot be answered: refusals are printed on
    /// stderr, and sent as an `error` datagram only to a sender that has an address. The uid check
    /// and `--max-sessions` apply as to lockfair's own sessions. Checking the descriptor (and
    /// asking kcmp about the sender's) happens on a blocking thread, off the receive loop.
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
            from,
            ..
        } = got;
        let pid = credentials.map_or(0, |c| c.pid);
        let refused = move |server: &Server, Refusal { why, loud }: Refusal| {
            if loud {
                eprintln!("lockfair-server: compat datagram {id} (pid {pid}): refused: {why}");
            } else {
                server.log(id, &why);
            }
            if let Some(to) = &from {
                server.reply_now(to, &Message::Error(why));
            }
        };
        let permit = match self.admit_compat(credentials, control_truncated) {
            Ok(permit) => permit,
            Err(refusal) => {
                refused(self, refusal);
                return discard(fds);
            }
        };
        let Ok(handle) = AbortHandle::new() else {
            eprintln!("lockfair-server: compat datagram {id}: server out of resources (eventfd)");
            return discard(fds);
        };
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, handle.clone());
        // The blog's iterations take well under a millisecond when the lock does not exclude;
        // a client that holds a lock of its own gets as long as a lockfair client gets to start.
        let limits = &self.config.limits;
        let budget_ns = (limits.start_timeout_ms + limits.grace_ms) * 1_000_000;
        let compat = compat.clone();
        let server = self.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let outcome = tokio::task::spawn_blocking(move || {
                let blog = BlogSession::accept(fds, pid, &compat).map_err(Err)?;
                blog.play(budget_ns, handle).map_err(Ok)
            })
            .await;
            server
                .running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            match outcome {
                Ok(Ok(report)) => println!("{}", report.to_text(id)),
                // Refused: the descriptor did not check out.
                Ok(Err(Err(e))) => refused(
                    &server,
                    Refusal {
                        why: e.to_string(),
                        loud: true,
                    },
                ),
                Ok(Err(Ok(e))) => println!(
                    "compat session {id} (pid {pid}): failed: {}",
                    error_chain(&e)
                ),
                Err(e) => println!(
                    "compat session {id} (pid {pid}): failed: the session thread failed: {e}"
                ),
            }
        });
    }

    /// The checks that need no look at the descriptor, in the order of `handle`'s: credentials,
    /// uid, truncation, a free slot.
    fn admit_compat(
        &self,
        credentials: Option<Credentials>,
        control_truncated: bool,
    ) -> Result<OwnedSemaphorePermit, Refusal> {
        let loud = |why: String| Refusal { why, loud: true };
        // Same words as lockfair's own sessions; a uid refusal is only printed with --verbose.
        check_sender(credentials, self.uid, &self.config.allow_uids).map_err(|r| Refusal {
            loud: !matches!(r, admission::Refusal::Uid { .. }),
            why: r.to_string(),
        })?;
        if control_truncated {
            return Err(loud(CompatError::FdsTruncated.to_string()));
        }
        self.slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| loud(admission::Refusal::Busy(self.config.max_sessions).to_string()))
    }
}
