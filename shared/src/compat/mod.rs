//! `--seed-compat`: the blog's own two programs, unchanged, on one side and lockfair on the other.
//!
//! The seed experiment was published as two small programs. Their code is not part of lockfair;
//! this module follows the protocol they run:
//!
//! - The channel is a Unix **datagram** socket; the server binds it (the blog uses
//!   `/tmp/test_socket`, [`BLOG_SOCKET`]). The server receives at most 20 bytes and at most one
//!   descriptor per datagram.
//! - The client (the *reader*) creates a memfd with `MFD_ALLOW_SEALING`, `ftruncate`s it to 64
//!   bytes ([`BLOG_FILE_SIZE`]), seeks to 0, seals it with `F_SEAL_GROW | F_SEAL_SHRINK |
//!   F_SEAL_SEAL`, `connect`s an unbound datagram socket to the server's path and sends **one
//!   datagram**: the bare 16 bytes `CACHEDFILE HELLO` ([`BLOG_HELLO`], no terminator) with the
//!   memfd as `SCM_RIGHTS`. No reply can reach it, and none is sent.
//! - Each side then counts **turns** ([`turns`]): it keeps `n` from 0 and loops while `n < 100`
//!   ([`DEFAULT_TURNS`]). An iteration: `F_OFD_SETLKW` write lock on the whole file through the
//!   descriptor it has; `pos = lseek(fd, 0, SEEK_CUR)`; the turn or a **whoop**; unlock. Only a
//!   turn increments `n`, so each side ends after exactly 100 turns however many whoops it took.
//! - The turn lives in the shared file offset. The server (the *writer*) has its turn when
//!   `pos == 0`: it `write`s the decimal digits of `n` (`0`, `1`, … `99`: no newline, no
//!   terminator), which moves the offset to their length. The client has its turn when
//!   `pos != 0`: it seeks to 0, then `pread`s `pos` bytes from offset 0 and compares them with
//!   its own `n`. lockfair's reader counts a **wrong read** when they differ.
//! - At the end the server prints `Ending connection, whoops = W`, keeps the descriptor, and
//!   waits for the next datagram; the client prints `total whoops W` and exits.
//!
//! Because the descriptor travelled over `SCM_RIGHTS`, both processes hold the same open file
//! description, and OFD locks belong to the description: the lock never excludes. The writer can
//! write its next line between the reader's `lseek` to 0 and its `pread`; the reader then reads
//! line `k + 1` where it expected `k`, and `k + 1` again at its next turn (right, this time), and
//! both sides still end after their turns. The 64-byte file has no room for lockfair's arena, so
//! [`overlap`] detects overlapping critical sections through the offset itself and asks the kernel
//! (`kcmp(2)`) whether the two descriptors are one description.
//!
//! Nothing in the protocol stops a side whose peer died or never started: the blog's programs
//! then loop forever. lockfair's side stops when its peer's process exits (where its pid is
//! known), when its time limit passes (`--max-seconds` on the client, `--seed-max-seconds` on the
//! server), or on shutdown, and says after how many turns and why ([`turns::Played`]).
//!
//! # Why compat has a loop of its own, beside `session`'s ring
//!
//! `variant::seed` keeps its turn in the file offset too, and since the fix for the blog's real
//! protocol both loops count turns, not iterations. What they share is four steps: lock, look at
//! the turn, take it or whoop, unlock. Everything `session::turns` adds around those steps is a
//! protocol among lockfair contenders through the arena header, and the blog's process maps no
//! arena. Run with a private arena of lockfair's own, the one contender that touches it:
//!
//! - passes the start line alone at once (the line waits for nobody), and its stop word
//!   (`request_stop`, `stopped`) reaches nobody: the blog's side never reads it;
//! - never sees an overlap: the occupant word (`enter`/`leave`) needs the other process to mark
//!   itself inside, so `overlaps` would always be 0. compat's evidence is the offset witness
//!   ([`overlap::OffsetWitness`]): the offset read on entry, where this side left it after its
//!   turn, and again just before each unlock, on whoops too. The ring's [`crate::variant::Turn`]
//!   has no step between "take" and "release" on the whoop path where that read could go;
//! - times nothing real: `release_ns` is stamped only by itself, so the handoff histogram would
//!   time its own round trip and call it a handoff;
//! - hands the turn to `(me + 1) % contenders`, which is itself: the blog's process has no
//!   contender index; its turn passes by the `write` and the `lseek` alone.
//!
//! And two things compat must have are not in the ring: when the watchdog aborts (the peer
//! exited, the time limit passed), `session::turns::run_turns` returns `Err` and drops its counts,
//! while compat must say after how many turns and whoops it stopped ([`turns::Played`]); and a
//! wrong read is only a `false` from `Turn::take`, while compat names what was read. So one loop
//! could serve both only with every arena step switched off and three hooks added to lockfair's
//! own loop for compat's sake; compat instead keeps its own short loop ([`turns`]) and shares
//! what is truly common: the watchdog and its `retry`, the OFD lock calls
//! ([`crate::sys::locks`]), and the sealed-memfd checks ([`crate::sys::memfd`]).
//!
//! The compat path is a separate, explicit mode. `lockfair-server` only diverts a datagram whose
//! payload is exactly [`BLOG_HELLO`] when started with `--seed-compat`, and checks its descriptor
//! as strictly as an arena ([`check_blog_fds`]); lockfair's own protocol is untouched.

pub mod overlap;
pub mod reader;
pub mod turns;
pub mod writer;

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use crate::sys::memfd::SealFlags;
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use thiserror::Error;

use crate::arena::REQUIRED_SEALS;
use crate::session::SessionError;
use crate::sys::fdkind::FdKind;
use crate::sys::memfd::{self, CreateError, SealError};

/// The blog's hello: exactly these 16 bytes, nothing before or after.
pub const BLOG_HELLO: &[u8] = b"CACHEDFILE HELLO";
/// Where the blog's server binds, and so where the blog's client sends.
pub const BLOG_SOCKET: &str = "/tmp/test_socket";
/// The blog's memfd size; a compat memfd must be at least this big.
pub const BLOG_FILE_SIZE: u64 = 64;
/// The blog's turn count, on both sides.
pub const DEFAULT_TURNS: u64 = 100;
/// The most turns `--seed-iterations` accepts.
pub const MAX_TURNS: u64 = 1_000_000;
/// How long a compat session may last on the server by default (`--seed-max-seconds`): 100
/// turns take milliseconds when both sides get a CPU, and well under a second on a loaded one.
pub const DEFAULT_SESSION_SECONDS: u64 = 10;

/// `lockfair-server --seed-compat`: also play the blog's server.
#[derive(Clone, Debug)]
pub struct SeedCompat {
    /// Turns per compat session (`--seed-iterations`).
    pub turns: u64,
    /// The most one compat session may take (`--seed-max-seconds`).
    pub max_seconds: u64,
}

impl Default for SeedCompat {
    fn default() -> Self {
        SeedCompat {
            turns: DEFAULT_TURNS,
            max_seconds: DEFAULT_SESSION_SECONDS,
        }
    }
}

/// True if `payload` is the blog's hello, exactly.
pub fn is_blog_hello(payload: &[u8]) -> bool {
    payload == BLOG_HELLO
}

/// What went wrong on the compat path.
#[derive(Debug, Error)]
pub enum CompatError {
    #[error("a CACHEDFILE HELLO must carry exactly one descriptor (the sealed memfd), got {0}")]
    FdCount(usize),
    #[error(
        "too many descriptors: ancillary data truncated; a CACHEDFILE HELLO carries exactly one"
    )]
    FdsTruncated,
    #[error("the CACHEDFILE HELLO descriptor is {0}, not a memfd: send the memfd_create(2) file")]
    NotMemfd(FdKind),
    #[error(
        "the memfd lacks seals {missing:?} (it has {have:?}); seal it with F_SEAL_GROW|F_SEAL_SHRINK|F_SEAL_SEAL as the blog does"
    )]
    MissingSeals { have: SealFlags, missing: SealFlags },
    #[error("the memfd is write-sealed; the blog's server writes its lines into it")]
    WriteSealed,
    #[error(
        "the memfd is {0} bytes; the blog's protocol needs {BLOG_FILE_SIZE} or more (ftruncate it before sealing)"
    )]
    TooSmall(u64),
    #[error(
        "the memfd is open {0}; send it read-write without O_APPEND, as memfd_create(2) returns it"
    )]
    AccessMode(&'static str),
    #[error(
        "nobody is listening at {path}: start the blog's server (or `lockfair-server --seed-compat --socket {path}`) first, or pass --socket",
        path = .0.display()
    )]
    NoServer(PathBuf),
    #[error("cannot create the blog's memfd")]
    Create(#[source] CreateError),
    #[error("cannot check the CACHEDFILE HELLO descriptor")]
    Check(#[source] SealError),
    #[error("cannot {what}: {errno}")]
    Sys { what: &'static str, errno: Errno },
    #[error(transparent)]
    Session(#[from] SessionError),
}

pub(crate) fn sys(what: &'static str) -> impl FnOnce(Errno) -> CompatError {
    move |errno| CompatError::Sys { what, errno }
}

/// Checks the descriptors of a blog hello: exactly one, a memfd, open read-write (not append),
/// carrying the blog's seals and not write-sealed, at least [`BLOG_FILE_SIZE`] bytes. Every
/// descriptor is closed on every error path (they are dropped before this returns).
pub fn check_blog_fds(mut fds: Vec<OwnedFd>) -> Result<File, CompatError> {
    if fds.len() != 1 {
        return Err(CompatError::FdCount(fds.len()));
    }
    let fd = fds.pop().ok_or(CompatError::FdCount(0))?;
    check_blog_memfd(&fd)?;
    Ok(File::from(fd))
}

/// The checks of [`check_blog_fds`] on one descriptor: the sealed-memfd checks every received
/// memfd gets ([`memfd::check_sealed`]), then the blog's own needs (read-write, not append, at
/// least [`BLOG_FILE_SIZE`] bytes).
pub fn check_blog_memfd(fd: impl AsFd) -> Result<(), CompatError> {
    let fd = fd.as_fd();
    let size = memfd::check_sealed(fd, REQUIRED_SEALS)?;
    let flags = OFlag::from_bits_truncate(
        fcntl(fd, FcntlArg::F_GETFL).map_err(sys("read the memfd's flags"))?,
    );
    match flags & OFlag::O_ACCMODE {
        OFlag::O_RDWR => {}
        OFlag::O_RDONLY => return Err(CompatError::AccessMode("read-only")),
        _ => return Err(CompatError::AccessMode("write-only")),
    }
    if flags.contains(OFlag::O_APPEND) {
        return Err(CompatError::AccessMode("O_APPEND"));
    }
    if size < BLOG_FILE_SIZE {
        return Err(CompatError::TooSmall(size));
    }
    Ok(())
}

impl From<SealError> for CompatError {
    fn from(e: SealError) -> Self {
        match e {
            SealError::NotMemfd(kind) => CompatError::NotMemfd(kind),
            SealError::MissingSeals { have, missing } => {
                CompatError::MissingSeals { have, missing }
            }
            SealError::WriteSealed => CompatError::WriteSealed,
            e @ SealError::Sys { .. } => CompatError::Check(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memfd(size: u64, seals: SealFlags) -> OwnedFd {
        OwnedFd::from(memfd::create_sealed("compat-test", size, seals).unwrap())
    }

    const BLOG_SEALS: SealFlags = REQUIRED_SEALS;

    #[test]
    fn only_the_exact_bare_text_is_a_blog_hello() {
        assert!(is_blog_hello(b"CACHEDFILE HELLO"));
        for other in [
            &b"CACHEDFILE HELLO\0"[..],
            b"CACHEDFILE HELLO\n",
            b"cachedfile hello",
            b"CACHEDFILE HELL",
            b"",
        ] {
            assert!(!is_blog_hello(other), "{other:?}");
        }
    }

    #[test]
    fn the_blogs_memfd_passes_and_every_deviation_is_named() {
        check_blog_fds(vec![memfd(64, BLOG_SEALS)]).unwrap();
        check_blog_fds(vec![memfd(4096, BLOG_SEALS)]).unwrap();
        let err = |fds| check_blog_fds(fds).unwrap_err().to_string();
        assert!(err(vec![]).contains("exactly one descriptor"));
        let two = vec![memfd(64, BLOG_SEALS), memfd(64, BLOG_SEALS)];
        assert!(err(two).contains("got 2"));
        assert!(err(vec![memfd(64, SealFlags::empty())]).contains("lacks seals"));
        assert!(err(vec![memfd(32, BLOG_SEALS)]).contains("32 bytes"));
        let write_sealed = memfd(64, BLOG_SEALS | SealFlags::WRITE);
        assert!(err(vec![write_sealed]).contains("write-sealed"));
        let file = OwnedFd::from(std::fs::File::open("/proc/self/exe").unwrap());
        assert!(err(vec![file]).contains("not a memfd"));
    }

    #[test]
    fn a_read_only_or_append_view_of_a_good_memfd_is_refused() {
        let good = memfd(64, BLOG_SEALS);
        let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&good));
        let ro = OwnedFd::from(File::open(&path).unwrap());
        assert!(
            check_blog_fds(vec![ro])
                .unwrap_err()
                .to_string()
                .contains("read-only")
        );
        let append = OwnedFd::from(File::options().read(true).append(true).open(&path).unwrap());
        let err = check_blog_fds(vec![append]).unwrap_err().to_string();
        assert!(err.contains("O_APPEND"), "{err}");
    }
}
