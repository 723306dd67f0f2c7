//! The server: a tokio loop on one Unix datagram socket, each session on a blocking thread.
//!
//! The socket and every datagram on it are untrusted: the loop only receives, checks and replies;
//! a session's round loop (blocking syscalls) runs on `spawn_blocking`, so one stuck session never
//! holds up the others or the receive loop. Sessions are bounded (`--max-sessions`), and each is
//! bounded in time by its watchdog.

pub mod args;
mod compat_session;
mod session;
mod socket_path;

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::socket::{MsgFlags, UnixAddr};
use thiserror::Error;
use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

pub use session::{Limits, adopt, check_hello, side_spec};
pub use socket_path::{BoundSocket, SocketPathError, default_socket_path, ensure_private_dir};

use crate::channel::send_to;
use crate::proto::{self, MAX_DATAGRAM, Message, Ready};
use crate::session::run_side;
use crate::session::watchdog::{AbortHandle, AbortReason};
use crate::sys::scm::{Received, control_space, recv_with_fds};

/// How many descriptors a datagram may carry before the rest is cut off (`MSG_CTRUNC`).
const MAX_FDS: usize = 8;

/// Everything `lockfair-server` can be told.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub socket: PathBuf,
    /// Create and check the socket's directory as private (the default path); an explicit
    /// `--socket` elsewhere only gets a warning if its directory is open.
    pub private_dir: bool,
    pub max_sessions: usize,
    /// Uids besides our own that may start sessions.
    pub allow_uids: Vec<u32>,
    pub limits: Limits,
    /// Print a line for every refused datagram.
    pub verbose: bool,
    /// Shut down when this process exits (`compare` passes its own pid).
    pub exit_with: Option<i32>,
    /// `--seed-compat`: also play the blog's server for a bare `CACHEDFILE HELLO`.
    pub seed_compat: Option<crate::compat::SeedCompat>,
}

/// Why the server could not run.
#[derive(Debug, Error)]
pub enum ServerError {
    #[error(transparent)]
    Socket(#[from] SocketPathError),
    #[error("cannot {0}: {1}")]
    Io(&'static str, io::Error),
}

struct Server {
    socket: AsyncFd<OwnedFd>,
    config: ServerConfig,
    uid: u32,
    slots: Arc<Semaphore>,
    running: Mutex<HashMap<u64, AbortHandle>>,
}

/// Binds the socket, calls `on_listening`, then serves until SIGINT or SIGTERM. On the way out
/// it aborts running sessions, waits briefly for them, and removes the socket.
pub async fn serve(
    config: ServerConfig,
    on_listening: impl FnOnce(&BoundSocket),
) -> Result<(), ServerError> {
    // Read before any session thread is pinned: a pinned thread sees only its own CPU.
    crate::placement::allowed_cpus();
    // Before the socket exists: a SIGTERM right after `listening on` must still clean up.
    let mut sigterm =
        signal(SignalKind::terminate()).map_err(|e| ServerError::Io("handle SIGTERM", e))?;
    let mut sigint =
        signal(SignalKind::interrupt()).map_err(|e| ServerError::Io("handle SIGINT", e))?;
    let bound = BoundSocket::bind(&config.socket, config.private_dir)?;
    on_listening(&bound);
    let BoundSocket { socket, guard, .. } = bound;
    let server = Arc::new(Server {
        socket: crate::sys::reactor::register(socket)
            .map_err(|e| ServerError::Io("register the socket", e))?,
        slots: Arc::new(Semaphore::new(config.max_sessions)),
        uid: nix::unistd::getuid().as_raw(),
        config,
        running: Mutex::new(HashMap::new()),
    });
    let parent = match server.config.exit_with {
        Some(pid) => Some(
            crate::sys::pidfd::open(pid)
                .map_err(|e| ServerError::Io("watch the --exit-with process", e.into()))
                .and_then(|fd| {
                    crate::sys::reactor::register(fd)
                        .map_err(|e| ServerError::Io("watch the --exit-with process", e))
                })?,
        ),
        None => None,
    };
    let parent_gone = async {
        match &parent {
            Some(fd) => drop(fd.readable().await),
            None => std::future::pending().await,
        }
    };
    tokio::pin!(parent_gone);
    let mut tasks = JoinSet::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut control = vec![0u8; control_space(MAX_FDS)];
    let mut next_id = 0u64;
    loop {
        tokio::select! {
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = &mut parent_gone => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            ready = server.socket.readable() => {
                let mut ready = ready.map_err(|e| ServerError::Io("wait for datagrams", e))?;
                // Drain everything queued, then wait again.
                loop {
                    let got = ready.try_io(|fd| {
                        recv_with_fds(fd.get_ref(), &mut buf, &mut control, MsgFlags::MSG_DONTWAIT)
                            .map_err(io::Error::from)
                    });
                    match got {
                        Ok(Ok(received)) => {
                            next_id += 1;
                            server.handle(next_id, received, &buf, &mut tasks);
                        }
                        Ok(Err(e)) => {
                            if server.config.verbose {
                                eprintln!("lockfair-server: receive failed: {e}");
                            }
                            break;
                        }
                        Err(_would_block) => break,
                    }
                }
            }
        }
    }
    for handle in server
        .running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
    {
        handle.abort(AbortReason::Shutdown);
    }
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    drop(guard);
    Ok(())
}

/// Closes received descriptors off the receive loop: closing a file on a FUSE mount waits for
/// its daemon, which a peer controls.
pub(crate) fn discard(fds: Vec<OwnedFd>) {
    if !fds.is_empty() {
        drop(tokio::task::spawn_blocking(move || drop(fds)));
    }
}

/// An error and its sources on one line, the way `anyhow` prints `{:#}`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl Server {
    /// Looks at one datagram; refuses it with an `error` reply, or starts a session.
    fn handle(self: &Arc<Self>, id: u64, got: Received, buf: &[u8], tasks: &mut JoinSet<()>) {
        // The blog's client sends from an unbound socket: divert before the address check.
        if let Some(compat) = &self.config.seed_compat
            && crate::compat::is_blog_hello(&buf[..got.len])
        {
            return self.handle_compat(id, compat, got, tasks);
        }
        let Received {
            len,
            truncated,
            control_truncated,
            fds,
            credentials,
            from,
        } = got;
        // Without an address there is nobody to answer.
        let Some(from) = from else {
            self.log(id, "datagram from an unbound socket: dropped");
            return discard(fds);
        };
        let Some(creds) = credentials else {
            return self.refuse(
                id,
                &from,
                "no credentials arrived with the datagram".into(),
                fds,
            );
        };
        if creds.uid != self.uid && !self.config.allow_uids.contains(&creds.uid) {
            let why = format!(
                "uid {} may not use this server (it runs as uid {}); start it with --allow-uid {}",
                creds.uid, self.uid, creds.uid
            );
            return self.refuse(id, &from, why, fds);
        }
        if truncated {
            let why = format!("datagram larger than {MAX_DATAGRAM} bytes");
            return self.refuse(id, &from, why, fds);
        }
        if control_truncated {
            let why =
                format!("too many descriptors: ancillary data truncated (at most {MAX_FDS} fit)");
            return self.refuse(id, &from, why, fds);
        }
        let hello = match proto::decode_hello(&buf[..len]) {
            Ok(hello) => hello,
            Err(e) => return self.refuse(id, &from, e.to_string(), fds),
        };
        if let Err(why) = check_hello(
            &hello,
            &self.config.limits,
            crate::placement::allowed_cpus(),
        ) {
            return self.refuse(id, &from, why, fds);
        }
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            let why = format!(
                "server busy: {} sessions running (--max-sessions); try again later",
                self.config.max_sessions
            );
            return self.refuse(id, &from, why, fds);
        };
        let Ok(handle) = AbortHandle::new() else {
            return self.refuse(id, &from, "server out of resources (eventfd)".into(), fds);
        };
        let spec = session::side_spec(&hello, &self.config.limits, Some(creds.pid));
        let what = format!(
            "session {id} (pid {}): {} {}",
            creds.pid, hello.variant, hello.placement
        );
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, handle.clone());
        let server = self.clone();
        tasks.spawn(async move {
            let _permit = permit;
            // Looking at the descriptors and mapping the arena happen off the receive loop too.
            let adopted = tokio::task::spawn_blocking(move || session::adopt(&hello, fds)).await;
            let reply = match adopted {
                Ok(Ok((arena, fds))) => {
                    server.reply_now(
                        &from,
                        &Message::Ready(Ready {
                            cpu: spec.plan.cpu.map(|c| c as u16),
                        }),
                    );
                    println!("{what}: started");
                    let outcome = tokio::task::spawn_blocking(move || {
                        run_side(&spec, &arena, fds, None, handle)
                    })
                    .await;
                    match outcome {
                        Ok(Ok(stats)) => {
                            println!(
                                "{what}: {} rounds, {} whoops, {} overlaps, {} wrong reads ({})",
                                stats.rounds,
                                stats.whoops,
                                stats.overlaps,
                                stats.wrong_reads,
                                crate::measure::end_name(stats.end)
                            );
                            Message::Result(Box::new(stats))
                        }
                        Ok(Err(e)) => {
                            println!("{what}: failed: {}", error_chain(&e));
                            Message::Error(error_chain(&e))
                        }
                        Err(e) => Message::Error(format!("the session thread failed: {e}")),
                    }
                }
                Ok(Err(why)) => {
                    server.log(id, &why);
                    Message::Error(why)
                }
                Err(e) => Message::Error(format!("the session thread failed: {e}")),
            };
            server
                .running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            server.reply_patiently(&from, &reply).await;
        });
    }

    /// Refuses a datagram: logs, answers with the reason, and closes its descriptors.
    fn refuse(&self, id: u64, to: &UnixAddr, why: String, fds: Vec<OwnedFd>) {
        self.log(id, &why);
        self.reply_now(to, &Message::Error(why));
        discard(fds);
    }

    /// One non-blocking attempt: a peer that does not read its socket gets nothing.
    fn reply_now(&self, to: &UnixAddr, msg: &Message) {
        if let Err(e) = send_to(self.socket.get_ref().as_fd(), msg, &[], Some(to)) {
            self.log(0, &format!("reply not sent: {e}"));
        }
    }

    /// Retries for up to a second when the peer's queue is full: results matter.
    async fn reply_patiently(&self, to: &UnixAddr, msg: &Message) {
        for _ in 0..100 {
            match send_to(self.socket.get_ref().as_fd(), msg, &[], Some(to)) {
                Err(crate::channel::ChannelError::Sys {
                    errno: nix::errno::Errno::EAGAIN,
                    ..
                }) => tokio::time::sleep(Duration::from_millis(10)).await,
                _ => return,
            }
        }
    }

    fn log(&self, id: u64, what: &str) {
        if self.config.verbose {
            eprintln!("lockfair-server: datagram {id}: {what}");
        }
    }
}
