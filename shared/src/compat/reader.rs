//! The blog's client, played by `lockfair-client run --variant seed --seed-compat`: the reader.
//!
//! What the blog's client sends, byte for byte: a 64-byte memfd, offset 0, sealed with
//! `F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL`, sent from an unbound datagram socket `connect`ed
//! to the server's path, as the bare text `CACHEDFILE HELLO` with one `SCM_RIGHTS` descriptor.
//! Then the blog's turns. Nothing comes back: the blog's server does not answer.
//!
//! One deliberate difference the server cannot see: lockfair creates its memfd close-on-exec
//! (the blog's client does not). Close-on-exec is a flag of this process's descriptor-table
//! entry, not of the open file description that travels, so the server receives the same thing.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{UnixAddr, connect, setsockopt, sockopt};

use super::overlap::{Holder, Sharing, command, holders, sharing_with, socket_owner};
use super::turns::{BlogRole, Counts, Decimal, Played, StopWords, Taken, run_turns, side_watchdog};
use super::{BLOG_FILE_SIZE, BLOG_HELLO, CompatError, sys};
use crate::arena::REQUIRED_SEALS;
use crate::channel::{SEND_TIMEOUT, datagram_socket, nobody_listening};
use crate::session::watchdog::{AbortHandle, Watchdog};
use crate::sys::scm::send_with_fds;
use crate::sys::{memfd, rawio};

/// What `--seed-compat` runs.
#[derive(Clone, Debug)]
pub struct ReaderOptions {
    /// The blog's server's socket ([`super::BLOG_SOCKET`] unless `--socket`).
    pub socket: PathBuf,
    /// Turns to take (`--seed-iterations`, the blog's 100).
    pub turns: u64,
    /// The most the turns may take (`--max-seconds`): the blog's protocol never gives up on a
    /// server that died or never started; lockfair does.
    pub max_seconds: f64,
}

/// The reader's turn: the offset is not 0; it seeks to 0, then reads as many bytes as the offset
/// said from 0, and checks they are the decimal `n`.
#[derive(Debug, Default)]
pub(super) struct Reader {
    /// The blog's server, if it could be told before sending.
    server_pid: Option<i32>,
    /// kcmp's answer right after the first turn.
    first_turn: Option<Sharing>,
}

impl BlogRole for Reader {
    fn is_my_turn(&self, offset: u64) -> bool {
        offset != 0
    }

    fn take(&mut self, file: &File, offset: u64, n: u64) -> Result<Taken, Errno> {
        // The blog's order: seek first, then read. The writer may write its next line in
        // between (the lock keeps nobody out): that is a wrong read.
        rawio::seek_to(file, 0)?;
        let mut buf = [0u8; BLOG_FILE_SIZE as usize];
        let len = usize::try_from(offset).map_or(buf.len(), |o| o.min(buf.len()));
        let got = rawio::pread(file, &mut buf[..len], 0)?;
        let got = &buf[..got];
        Ok(Taken {
            left_at: 0,
            wrong: (got != Decimal::new(n).as_bytes())
                .then(|| String::from_utf8_lossy(got).into_owned()),
        })
    }

    fn after_unlock(&mut self, file: &File, counts: &Counts) {
        // The server has just written a line, so it holds the descriptor now: ask once, here,
        // because the watcher thread may not get a CPU while both loops spin.
        if counts.turns > 0
            && self.first_turn.is_none()
            && let Some(pid) = self.server_pid
        {
            self.first_turn = Some(sharing_with(file.as_fd(), pid));
        }
    }
}

/// What the client knows about who holds the description it sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// The server's pid was known (from the socket it bound): kcmp against its descriptors.
    Server {
        pid: i32,
        command: String,
        sharing: Sharing,
    },
    /// The server's pid was not known: every process we may inspect was searched afterwards.
    Scan(Result<Vec<Holder>, Errno>),
}

/// What the reader saw.
#[derive(Debug)]
pub struct ReaderReport {
    pub socket: PathBuf,
    pub played: Played,
    pub evidence: Evidence,
}

/// Creates and seals the blog's memfd, sends the blog's hello to `opts.socket`, and takes the
/// reader's turns.
pub fn run_reader(opts: &ReaderOptions) -> Result<ReaderReport, CompatError> {
    // Ctrl-C ends the turns with a report (the watchdog sees the request), not mid-line.
    crate::sys::signal::install_stop_handler();
    let file = blog_memfd()?;
    // Before anything is sent, so the search costs the protocol nothing.
    let server_pid = socket_owner(&opts.socket);
    let command = server_pid.map(command).unwrap_or_default();
    send_hello(&opts.socket, &file)?;

    let handle = AbortHandle::new().map_err(sys("create an abort handle"))?;
    let dog = side_watchdog(server_pid, opts.max_seconds, handle)?;
    let words = StopWords {
        peer: "server",
        command: command.clone(),
        limit_seconds: opts.max_seconds,
        limit_flag: "--max-seconds",
    };
    let (played, sharing) = play_and_watch(&file, server_pid, opts.turns, &dog, &words);
    drop(dog);
    let evidence = match (server_pid, sharing) {
        (Some(pid), Some(sharing)) => Evidence::Server {
            pid,
            command,
            sharing,
        },
        _ => Evidence::Scan(look_for_holders(&file)),
    };
    Ok(ReaderReport {
        socket: opts.socket.clone(),
        played,
        evidence,
    })
}

/// The blog's memfd: 64 bytes, sealed against grow, shrink and further seals. Its offset is 0,
/// as a new open file description's always is (the blog's client seeks there all the same).
fn blog_memfd() -> Result<File, CompatError> {
    memfd::create_sealed("lockfair-compat", BLOG_FILE_SIZE, REQUIRED_SEALS)
        .map_err(CompatError::Create)
}

/// The turns on this thread; kcmp against the server on another, from now until it has an
/// answer, and once on this one right after the first turn. Returns the run and kcmp's answer.
fn play_and_watch(
    file: &File,
    server_pid: Option<i32>,
    turns: u64,
    dog: &Watchdog,
    words: &StopWords,
) -> (Played, Option<Sharing>) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let stop = &stop;
        let watcher = server_pid.map(|pid| scope.spawn(move || watch_server(file, pid, stop)));
        let mut reader = Reader {
            server_pid,
            ..Reader::default()
        };
        let played = run_turns(file, &mut reader, turns, dog, words);
        stop.store(true, Ordering::Release);
        let watched = watcher.map(|w| w.join().unwrap_or(Sharing::NoPid));
        let sharing = match (reader.first_turn, watched) {
            (Some(s @ Sharing::Shared { .. }), _) | (_, Some(s)) | (Some(s), None) => Some(s),
            (None, None) => None,
        };
        (played, sharing)
    })
}

/// Sends the blog's hello as the blog's client does: an unbound socket, `connect`ed to the
/// server's path, one datagram.
fn send_hello(path: &Path, file: &File) -> Result<(), CompatError> {
    let sock = datagram_socket().map_err(sys("create a socket"))?;
    setsockopt(&sock, sockopt::SendTimeout, &SEND_TIMEOUT).map_err(sys("set a send timeout"))?;
    let addr = UnixAddr::new(path).map_err(sys("use the socket path"))?;
    let no_server = |errno| match errno {
        errno if nobody_listening(errno) => CompatError::NoServer(path.to_path_buf()),
        errno => CompatError::Sys {
            what: "send CACHEDFILE HELLO",
            errno,
        },
    };
    connect(sock.as_raw_fd(), &addr).map_err(no_server)?;
    send_with_fds(&sock, BLOG_HELLO, &[file.as_fd()], None).map_err(no_server)
}

/// How often the watcher asks kcmp.
const WATCH_EVERY: Duration = Duration::from_micros(100);
/// How long it keeps asking after the turns ended or stopped (a server that never played may
/// still be receiving).
const WATCH_GRACE: Duration = Duration::from_millis(100);

/// Asks kcmp whether process `pid` holds our description until it does, it is gone, kcmp is
/// refused, or `stop` was set more than [`WATCH_GRACE`] ago.
fn watch_server(file: &File, pid: i32, stop: &AtomicBool) -> Sharing {
    let mut give_up = None;
    loop {
        let sharing = sharing_with(file.as_fd(), pid);
        if !matches!(sharing, Sharing::NotShared { .. }) {
            return sharing;
        }
        if stop.load(Ordering::Acquire) {
            let at = *give_up.get_or_insert_with(|| Instant::now() + WATCH_GRACE);
            if Instant::now() >= at {
                return sharing;
            }
        }
        std::thread::sleep(WATCH_EVERY);
    }
}

/// Looks (a few times, briefly: the server may still be receiving) for the process that holds
/// our description.
fn look_for_holders(file: &File) -> Result<Vec<Holder>, Errno> {
    let mut last = Ok(Vec::new());
    for attempt in 0..5 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
        last = holders(file.as_fd());
        if !matches!(&last, Ok(found) if found.is_empty()) {
            break;
        }
    }
    last
}

impl ReaderReport {
    /// What `lockfair-client run --variant seed --seed-compat` prints: the blog's client's own
    /// line (or, if it gave up, why), then lockfair's counts, wrong reads, overlaps and verdict.
    pub fn to_text(&self) -> String {
        let c = &self.played.counts;
        let ending = self
            .played
            .stop_line()
            .unwrap_or_else(|| format!("total whoops {}", c.whoops));
        let mut text = format!(
            "sent \"CACHEDFILE HELLO\" and a {BLOG_FILE_SIZE}-byte sealed memfd to {} (the blog's client protocol)\n\
             {ending}\n\
             lines read: {} of {}, whoops: {}, wrong reads: {} ({} iterations)\n",
            self.socket.display(),
            c.turns,
            self.played.target,
            c.whoops,
            c.wrong_reads,
            c.iterations(),
        );
        if c.wrong_reads > 0 {
            text.push_str(&format!(
                "wrong reads: {} (the server wrote its next line between this side's lseek to 0 and its pread)\n",
                c.wrong_reads_text()
            ));
        }
        text.push_str(&format!(
            "overlaps seen: {} (offset moved under a held lock)\nverdict: {}\n",
            c.overlaps,
            self.verdict()
        ));
        text
    }

    fn verdict(&self) -> String {
        let shared = |who: String, fd: RawFd| {
            format!(
                "{who} holds this process's own open file description (kcmp: its fd {fd}): F_OFD_SETLKW through it excludes nobody"
            )
        };
        match &self.evidence {
            Evidence::Server {
                pid,
                command,
                sharing: Sharing::Shared { fd, .. },
            } => return shared(format!("the server (pid {pid}, {command})"), *fd),
            Evidence::Scan(Ok(found)) if !found.is_empty() => {
                let h = &found[0];
                return shared(format!("pid {} ({})", h.pid, h.command), h.fd);
            }
            _ => {}
        }
        if self.played.counts.overlaps > 0 {
            format!(
                "critical sections overlapped under the lock: F_OFD_SETLKW through the descriptor we sent gave no mutual exclusion ({})",
                self.no_kcmp()
            )
        } else {
            format!(
                "not proven by this run: no overlap was seen, and {}",
                self.no_kcmp()
            )
        }
    }

    /// Why kcmp could not confirm sharing.
    fn no_kcmp(&self) -> String {
        match &self.evidence {
            Evidence::Server {
                pid,
                command,
                sharing,
            } => match sharing {
                Sharing::Unavailable { errno, .. } => {
                    format!("kcmp(2) is not permitted here ({errno})")
                }
                Sharing::Gone { .. } => format!(
                    "the server (pid {pid}, {command}) had exited before kcmp could compare"
                ),
                _ => format!(
                    "the server (pid {pid}, {command}) held no descriptor of our description whenever kcmp looked"
                ),
            },
            Evidence::Scan(Err(errno)) => format!("kcmp(2) is not permitted here ({errno})"),
            Evidence::Scan(Ok(_)) => "no other process held our open file description when we looked (the server had finished, or not yet received it)".into(),
        }
    }
}
