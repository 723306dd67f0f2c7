//! The server: a tokio loop on one Unix datagram socket, each session on a blocking thread.
//!
//! The socket and every datagram on it are untrusted: the loop only receives, checks and replies;
//! a session's round loop (blocking syscalls) runs on `spawn_blocking`, so one stuck session never
//! holds up the others or the receive loop. Sessions are bounded (`--max-sessions` in all, a quota
//! per uid: `slots`), and each is bounded in time by its watchdog and by the client's pidfd
//! (`peer_watch`). What refused datagrams carried is closed on one thread of its own (`closer`),
//! never on the loop or the sessions' pool. Admission (who may ask, and for what) is
//! [`crate::admission`], shared with the client's helper contenders.

pub mod args;
mod closer;
mod compat_session;
mod lock;
mod peer_watch;
mod slots;
mod socket_path;

use std::collections::HashMap;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::socket::{MsgFlags, UnixAddr};
use thiserror::Error;
use tokio::io::unix::{AsyncFd, AsyncFdReadyGuard};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::task::JoinSet;

pub use slots::default_quota;
pub use socket_path::{BoundSocket, SocketPathError};

use crate::admission::{
    Limits, Refusal, adopt, check_hello, check_nice, check_sender, contender_spec,
};
use crate::channel::send_to;
use crate::errors::error_chain;
use crate::measure::ContenderStats;
use crate::proto::{self, Hello, MAX_DATAGRAM, Message, Ready};
use crate::session::watchdog::{AbortHandle, AbortReason};
use crate::session::{SessionError, run_contender};
use crate::sys::scm::{Credentials, Received, control_space, recv_with_fds};
use closer::Closer;
use peer_watch::{PeerWatch, WatchError, run_watched};
use slots::{Slot, Slots};

/// How many descriptors a datagram may carry before the rest is cut off (`MSG_CTRUNC`).
const MAX_FDS: usize = 8;

/// Everything `lockfair-server` can be told.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub socket: PathBuf,
    /// Create and check the socket's directory as private (the default path); the directory of
    /// an explicit `--socket` is refused if others own or can write it, and only warned about if
    /// they can enter it.
    pub private_dir: bool,
    pub max_sessions: usize,
    /// `--max-sessions-per-uid`, for every uid; without it our own uid may take every slot and
    /// any other [`default_quota`].
    pub max_sessions_per_uid: Option<usize>,
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
    slots: Slots,
    closer: Closer,
    running: Mutex<HashMap<u64, AbortHandle>>,
}

/// A hello that passed every check, and what its session holds.
struct Admitted {
    hello: Hello,
    creds: Credentials,
    slot: Slot,
    handle: AbortHandle,
    peer: PeerWatch,
}

/// What ends the server: SIGTERM, SIGINT, or the `--exit-with` process exiting.
struct Stop {
    sigterm: Signal,
    sigint: Signal,
    parent: Option<AsyncFd<OwnedFd>>,
}

impl Stop {
    fn new(exit_with: Option<i32>) -> Result<Stop, ServerError> {
        let watch = |e| ServerError::Io("watch the --exit-with process", e);
        let parent = match exit_with {
            Some(pid) => Some(
                crate::sys::pidfd::open(pid)
                    .map_err(|e| watch(e.into()))
                    .and_then(|fd| crate::sys::reactor::register(fd).map_err(watch))?,
            ),
            None => None,
        };
        Ok(Stop {
            sigterm: signal(SignalKind::terminate())
                .map_err(|e| ServerError::Io("handle SIGTERM", e))?,
            sigint: signal(SignalKind::interrupt())
                .map_err(|e| ServerError::Io("handle SIGINT", e))?,
            parent,
        })
    }

    /// Resolves when the server should stop (cancel-safe: a select may drop it and call again).
    async fn requested(&mut self) {
        tokio::select! {
            _ = self.sigterm.recv() => {}
            _ = self.sigint.recv() => {}
            () = peer_watch::exited(&self.parent) => {}
        }
    }
}

/// The receive loop's buffers, reused for every datagram.
struct Inbox {
    buf: Vec<u8>,
    control: Vec<u8>,
    next_id: u64,
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
    let mut stop = Stop::new(config.exit_with)?;
    let bound = BoundSocket::bind(&config.socket, config.private_dir)?;
    on_listening(&bound);
    let BoundSocket { socket, guard, .. } = bound;
    let (closer, closing) =
        Closer::start().map_err(|e| ServerError::Io("start the closer thread", e))?;
    let uid = nix::unistd::getuid().as_raw();
    let server = Arc::new(Server {
        socket: crate::sys::reactor::register(socket)
            .map_err(|e| ServerError::Io("register the socket", e))?,
        slots: Slots::new(config.max_sessions, config.max_sessions_per_uid, uid),
        closer,
        uid,
        config,
        running: Mutex::new(HashMap::new()),
    });
    let mut tasks = JoinSet::new();
    let served = server.receive(&mut stop, &mut tasks).await;
    // Nothing is refused any more: the closer ends once its queue is empty.
    server.closer.stop();
    server.shut_down(tasks).await;
    if !closing.finish(Duration::from_secs(1)).await {
        eprintln!(
            "lockfair-server: a refused datagram's descriptor is still closing (a slow file system?); exiting without waiting for it"
        );
    }
    drop(guard);
    served
}

/// One line of the server's log on stdout. When whoever reads it is gone (`| head`), the server
/// stops as if told to (SIGTERM), like other Unix tools: its sessions end, its socket is removed,
/// and it exits with status 0.
pub fn say(line: &str) {
    let mut out = io::stdout().lock();
    let written = writeln!(out, "{line}").and_then(|()| out.flush());
    if written.is_err_and(|e| e.kind() == io::ErrorKind::BrokenPipe) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGTERM);
    }
}

impl Server {
    /// The receive loop: every queued datagram is handled, until `stop`.
    async fn receive(
        self: &Arc<Self>,
        stop: &mut Stop,
        tasks: &mut JoinSet<()>,
    ) -> Result<(), ServerError> {
        let mut inbox = Inbox {
            buf: vec![0u8; MAX_DATAGRAM],
            control: vec![0u8; control_space(MAX_FDS)],
            next_id: 0,
        };
        loop {
            tokio::select! {
                () = stop.requested() => return Ok(()),
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                ready = self.socket.readable() => {
                    let ready = ready.map_err(|e| ServerError::Io("wait for datagrams", e))?;
                    self.drain(ready, &mut inbox, tasks);
                }
            }
        }
    }

    /// Handles everything queued on the socket, then returns to wait again.
    fn drain(
        self: &Arc<Self>,
        mut ready: AsyncFdReadyGuard<'_, OwnedFd>,
        inbox: &mut Inbox,
        tasks: &mut JoinSet<()>,
    ) {
        loop {
            let got = ready.try_io(|fd| {
                recv_with_fds(
                    fd.get_ref(),
                    &mut inbox.buf,
                    &mut inbox.control,
                    MsgFlags::MSG_DONTWAIT,
                )
                .map_err(io::Error::from)
            });
            match got {
                Ok(Ok(received)) => {
                    inbox.next_id += 1;
                    self.handle(inbox.next_id, received, &inbox.buf, tasks);
                }
                Ok(Err(e)) => {
                    if self.config.verbose {
                        eprintln!("lockfair-server: receive failed: {e}");
                    }
                    return;
                }
                Err(_would_block) => return,
            }
        }
    }

    /// Aborts running sessions and gives them a moment to report.
    async fn shut_down(&self, mut tasks: JoinSet<()>) {
        for handle in self
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
    }

    /// Looks at one datagram; refuses it with an `error` reply, or starts a session.
    fn handle(self: &Arc<Self>, id: u64, mut got: Received, buf: &[u8], tasks: &mut JoinSet<()>) {
        // The blog's client sends from an unbound socket: divert before the address check.
        if let Some(compat) = &self.config.seed_compat
            && crate::compat::is_blog_hello(&buf[..got.len])
        {
            return self.handle_compat(id, compat, got, tasks);
        }
        // Without an address there is nobody to answer.
        let Some(from) = got.from.take() else {
            self.log(id, "datagram from an unbound socket: dropped");
            return self.closer.discard(got.fds);
        };
        let payload = &buf[..got.len.min(buf.len())];
        match self.admit(&mut got, payload, &from) {
            Ok(admitted) => self.start(id, from, admitted, got.fds, tasks),
            Err(why) => self.refuse(id, &from, why.to_string(), got.fds),
        }
    }

    /// Every check a datagram must pass before a session starts, in order: the sender, the
    /// datagram's size, the hello, a free slot (within the sender's uid quota), and a way to
    /// know when the sender exits. A refusal after the slot drops it, which frees it.
    fn admit(
        &self,
        got: &mut Received,
        payload: &[u8],
        from: &UnixAddr,
    ) -> Result<Admitted, Refusal> {
        let creds = check_sender(got.credentials, self.uid, &self.config.allow_uids)?;
        if got.truncated {
            return Err(Refusal::TooLarge);
        }
        if got.control_truncated {
            return Err(Refusal::TooManyFds { max: MAX_FDS });
        }
        let hello = proto::decode_hello(payload)?;
        check_hello(
            &hello,
            &self.config.limits,
            crate::placement::allowed_cpus(),
        )?;
        check_nice(&hello, creds.uid)?;
        let slot = self.slots.take(creds.uid)?;
        let handle = AbortHandle::new().map_err(Refusal::OutOfResources)?;
        let peer = peer_watch::sender_watch(got.pidfd.take(), creds.pid, from)?;
        Ok(Admitted {
            hello,
            creds,
            slot,
            handle,
            peer,
        })
    }

    /// Starts an admitted session as a task: adopt its descriptors, answer `ready`, run, reply.
    fn start(
        self: &Arc<Self>,
        id: u64,
        from: UnixAddr,
        admitted: Admitted,
        fds: Vec<OwnedFd>,
        tasks: &mut JoinSet<()>,
    ) {
        let what = format!(
            "session {id} (pid {}): {} {}",
            admitted.creds.pid, admitted.hello.variant, admitted.hello.placement
        );
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, admitted.handle.clone());
        let server = self.clone();
        tasks.spawn(async move {
            let reply = server.session(id, &from, &what, admitted, fds).await;
            server
                .running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            server.reply_patiently(&from, &reply).await;
        });
    }

    /// One session, from its descriptors to the message that ends it.
    async fn session(
        &self,
        id: u64,
        from: &UnixAddr,
        what: &str,
        admitted: Admitted,
        fds: Vec<OwnedFd>,
    ) -> Message {
        let Admitted {
            hello,
            creds,
            slot,
            handle,
            peer,
        } = admitted;
        let spec = contender_spec(&hello, &self.config.limits, peer.watchdog_pid());
        // Looking at the descriptors and mapping the arena happen off the receive loop too.
        // This may close them (a refused arena, the wrong count) and so wait on a slow file
        // system; unlike a refused datagram's, that costs no extra pool thread: an admitted
        // session holds one for its whole run anyway, and its slot bounds how many there are.
        let (arena, fds) = match tokio::task::spawn_blocking(move || adopt(&hello, fds)).await {
            Ok(Ok(parts)) => parts,
            Ok(Err(why)) => {
                self.log(id, &why.to_string());
                return Message::Error(why.to_string());
            }
            Err(e) => return Message::Error(error_chain(&WatchError::from(e))),
        };
        let peer = match peer.into_async() {
            Ok(peer) => peer,
            Err(e) => return Message::Error(error_chain(&e)),
        };
        let ready = Ready {
            cpu: spec.plan.cpu.map(|c| c as u16),
        };
        self.reply_now(from, &Message::Ready(ready));
        say(&format!("{what}: started"));
        let outcome = run_watched(&peer, handle.clone(), creds.pid, move || {
            on_own_thread_if_niced(spec.nice.is_some(), || {
                run_contender(&spec, &arena, fds, None, handle)
            })
        })
        .await;
        // Free before the session's last line: whoever reads it may start the next at once.
        drop(slot);
        collect(what, outcome)
    }

    /// Refuses a datagram: logs, answers with the reason, and closes its descriptors.
    fn refuse(&self, id: u64, to: &UnixAddr, why: String, fds: Vec<OwnedFd>) {
        self.log(id, &why);
        self.reply_now(to, &Message::Error(why));
        self.closer.discard(fds);
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

/// The session's last message, and its line on stdout.
fn collect(
    what: &str,
    outcome: Result<Result<ContenderStats, SessionError>, WatchError>,
) -> Message {
    match outcome {
        Ok(Ok(stats)) => {
            say(&format!(
                "{what}: {} rounds, {} whoops, {} overlaps, {} wrong reads ({})",
                stats.rounds,
                stats.whoops,
                stats.overlaps,
                stats.wrong_reads,
                crate::measure::end_name(stats.end)
            ));
            Message::Result(Box::new(stats))
        }
        Ok(Err(e)) => {
            say(&format!("{what}: failed: {}", error_chain(&e)));
            Message::Error(error_chain(&e))
        }
        Err(e) => Message::Error(error_chain(&e)),
    }
}

/// Runs `session` on a thread of its own when it changes its thread's nice value: a pool thread
/// would keep the value for later sessions (going back down needs CAP_SYS_NICE), a thread of its
/// own ends with the session.
fn on_own_thread_if_niced<T: Send>(niced: bool, session: impl FnOnce() -> T + Send) -> T {
    if !niced {
        return session();
    }
    std::thread::scope(|s| {
        s.spawn(session)
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
