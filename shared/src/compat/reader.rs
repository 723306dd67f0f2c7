//! The blog's client, played by `lockfair-client run --variant seed --seed-compat`: the reader.
//!
//! Byte for byte what the blog's client sends: a 64-byte memfd (`MFD_CLOEXEC |
//! MFD_ALLOW_SEALING`) sealed with `F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL`, sent from an
//! unbound datagram socket as the bare text `CACHEDFILE HELLO` with one `SCM_RIGHTS` descriptor.
//! Then the blog's iterations. Nothing comes back: the blog's server does not answer.

use std::fs::File;
use std::os::fd::{AsFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use memfd::{FileSeal, MemfdOptions};
use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, setsockopt, socket, sockopt};
use nix::sys::time::TimeVal;
use rustix::fs::{SeekFrom, seek};

use super::overlap::{Holder, Sharing, command, holders, sharing_with, socket_owner};
use super::{BLOG_FILE_SIZE, BLOG_HELLO, BlogRole, CompatError, Counts, run_iterations, sys};
use crate::arena::{LINE_CAPACITY, LineCounter};
use crate::session::SessionError;
use crate::session::watchdog::{AbortHandle, Watchdog, WatchdogSpec};
use crate::sys::clock::monotonic_ns;
use crate::sys::scm::send_with_fds;

/// What `--seed-compat` runs.
#[derive(Clone, Debug)]
pub struct ReaderOptions {
    /// The blog's server's socket ([`super::BLOG_SOCKET`] unless `--socket`).
    pub socket: PathBuf,
    pub iterations: u64,
    /// The most the iterations may take (`--max-seconds`): a server that holds the lock on a
    /// description of its own cannot keep us waiting longer.
    pub max_seconds: f64,
}

/// The reader's turn: the offset is not 0; it reads that many bytes from 0, checks them, and
/// seeks back to 0.
#[derive(Debug, Default)]
struct Reader {
    lines: LineCounter,
    read: u64,
    /// The blog's server, if it could be told before sending.
    server_pid: Option<i32>,
    /// kcmp's answer right after the first turn.
    first_turn: Option<Sharing>,
}

impl BlogRole for Reader {
    fn is_my_turn(&self, offset: u64) -> bool {
        offset != 0
    }

    fn take(&mut self, file: &File, offset: u64) -> Result<(u64, bool), Errno> {
        let want = *self.lines.line(self.read);
        self.read += 1;
        let mut buf = [0u8; LINE_CAPACITY];
        // Anything longer than a line cannot be the line.
        let right = match usize::try_from(offset) {
            Ok(len) if len <= buf.len() => {
                let got = rustix::io::pread(file, &mut buf[..len], 0).map_err(crate::sys::errno)?;
                &buf[..got] == want.as_bytes()
            }
            _ => false,
        };
        seek(file, SeekFrom::Start(0)).map_err(crate::sys::errno)?;
        Ok((0, right))
    }

    fn after_unlock(&mut self, file: &File) {
        // The server has just written a line, so it holds the descriptor now: ask once, here,
        // because the watcher thread may not get a CPU while both loops spin.
        if self.read > 0
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
#[derive(Clone, Debug)]
pub struct ReaderReport {
    pub socket: PathBuf,
    pub counts: Counts,
    pub evidence: Evidence,
}

/// Creates and seals the blog's memfd, sends the blog's hello to `opts.socket`, and runs the
/// reader's iterations.
pub fn run_reader(opts: &ReaderOptions) -> Result<ReaderReport, CompatError> {
    let memfd = MemfdOptions::default()
        .close_on_exec(true)
        .allow_sealing(true)
        .create("lockfair-compat")
        .map_err(|e| CompatError::Create(e.to_string()))?;
    memfd
        .as_file()
        .set_len(BLOG_FILE_SIZE)
        .map_err(|e| CompatError::Create(e.to_string()))?;
    memfd
        .add_seals(&[FileSeal::SealGrow, FileSeal::SealShrink, FileSeal::SealSeal])
        .map_err(|e| CompatError::Create(e.to_string()))?;
    let file = memfd.into_file();
    // Before anything is sent, so the search costs the protocol nothing.
    let server_pid = socket_owner(&opts.socket);
    let command = server_pid.map(command).unwrap_or_default();
    send_hello(&opts.socket, &file)?;

    let dog = Watchdog::start(WatchdogSpec {
        peer_pids: Vec::new(),
        stop: None,
        deadline_ns: monotonic_ns().saturating_add((opts.max_seconds * 1e9) as u64),
        watch: None,
        handle: AbortHandle::new().map_err(sys("create an abort handle"))?,
    })
    .map_err(|errno| SessionError::Sys {
        what: "start the watchdog",
        errno,
    })?;
    // The iterations on this thread; kcmp against the server on another, from now until it has
    // an answer, and once on this one right after the first turn.
    let stop = AtomicBool::new(false);
    let (counts, sharing) = std::thread::scope(|scope| {
        let (file, stop) = (&file, &stop);
        let watcher = server_pid.map(|pid| scope.spawn(move || watch_server(file, pid, stop)));
        let mut reader = Reader {
            server_pid,
            ..Reader::default()
        };
        let counts = run_iterations(file, &mut reader, opts.iterations, &dog);
        stop.store(true, Ordering::Release);
        let watched = watcher.map(|w| w.join().unwrap_or(Sharing::NoPid));
        let sharing = match (reader.first_turn, watched) {
            (Some(s @ Sharing::Shared { .. }), _) | (_, Some(s)) | (Some(s), None) => Some(s),
            (None, None) => None,
        };
        (counts, sharing)
    });
    let counts = counts?;
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
        counts,
        evidence,
    })
}

/// Sends the blog's hello from an unbound socket, as the blog's client does.
fn send_hello(path: &Path, file: &File) -> Result<(), CompatError> {
    let sock = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(sys("create a socket"))?;
    // A server that never reads must not block us forever once its queue is full.
    setsockopt(&sock, sockopt::SendTimeout, &TimeVal::new(5, 0))
        .map_err(sys("set a send timeout"))?;
    let addr = UnixAddr::new(path).map_err(sys("use the socket path"))?;
    match send_with_fds(&sock, BLOG_HELLO, &[file.as_fd()], Some(&addr)) {
        Ok(_) => Ok(()),
        Err(Errno::ENOENT | Errno::ECONNREFUSED | Errno::ENOTDIR) => {
            Err(CompatError::NoServer(path.to_path_buf()))
        }
        Err(errno) => Err(CompatError::Sys {
            what: "send CACHEDFILE HELLO",
            errno,
        }),
    }
}

/// How often the watcher asks kcmp.
const WATCH_EVERY: Duration = Duration::from_micros(100);
/// How long it keeps asking after the iterations ended (the server may still be receiving).
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
    /// What `lockfair-client run --variant seed --seed-compat` prints.
    pub fn to_text(&self) -> String {
        let c = &self.counts;
        format!(
            "sent \"CACHEDFILE HELLO\" and a {BLOG_FILE_SIZE}-byte sealed memfd to {} (the blog's client protocol)\n\
             iterations: {}, lines read: {}, whoops: {}, wrong reads: {}\n\
             overlaps seen: {} (offset moved under a held lock)\n\
             verdict: {}\n",
            self.socket.display(),
            c.iterations,
            c.turns,
            c.whoops,
            c.wrong_reads,
            c.overlaps,
            self.verdict(),
        )
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
        if self.counts.overlaps > 0 {
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
