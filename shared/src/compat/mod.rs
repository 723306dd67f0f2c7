//! `--seed-compat`: the blog's own two programs, unchanged, on one side and lockfair on the other.
//!
//! The seed experiment was published as two small programs. Their code is not part of lockfair;
//! this module follows the protocol as the blog describes it:
//!
//! - The channel is a Unix **datagram** socket; the server binds it (the blog uses
//!   `/tmp/test_socket`, [`BLOG_SOCKET`]).
//! - The client (the *reader*) creates a memfd (`MFD_CLOEXEC | MFD_ALLOW_SEALING`), makes it
//!   64 bytes ([`BLOG_FILE_SIZE`]), seals it with `F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL`, and
//!   sends **one datagram** to the server's path: the bare 16 bytes `CACHEDFILE HELLO`
//!   ([`BLOG_HELLO`], no terminator) with the memfd as `SCM_RIGHTS`. It does not bind, so no reply
//!   can reach it, and none is sent.
//! - Both then loop a fixed number of iterations ([`DEFAULT_ITERATIONS`], the blog's 100), whoops
//!   included, so neither can wait forever for the other. Each iteration: `F_OFD_SETLKW` write
//!   lock on the whole file through the descriptor it has; read the file offset
//!   (`lseek(fd, 0, SEEK_CUR)`); if it is this side's turn, do the turn, else count a **whoop**;
//!   unlock.
//! - The turn lives in the shared file offset. The server (the *writer*) has its turn when the
//!   offset is 0: it `write`s the next line, which moves the offset past it. The client has its
//!   turn when the offset is not 0: it `pread`s that many bytes from offset 0, checks they are
//!   the next line it expects (a **wrong read** otherwise), and `lseek`s back to 0.
//! - A line is the decimal count of lines written before it and a newline: `0\n`, `1\n`, …
//! - At the end the server prints `Ending connection, whoops = N`.
//!
//! Because the descriptor travelled over `SCM_RIGHTS`, both processes hold the same open file
//! description, and OFD locks belong to the description: the lock never excludes. The 64-byte
//! file has no room for lockfair's arena, so [`overlap`] detects overlapping critical sections
//! through the offset itself and asks the kernel (`kcmp(2)`) whether the two descriptors are one
//! description.
//!
//! The compat path is a separate, explicit mode. `lockfair-server` only diverts a datagram whose
//! payload is exactly [`BLOG_HELLO`] when started with `--seed-compat`, and checks its descriptor
//! as strictly as an arena ([`check_blog_fds`]); lockfair's own protocol is untouched.

pub mod overlap;
pub mod reader;
pub mod writer;

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use rustix::fs::{SealFlags, SeekFrom, seek};
use thiserror::Error;

use crate::arena::REQUIRED_SEALS;
use crate::session::watchdog::Watchdog;
use crate::session::{SessionError, retry};
use crate::sys::fdkind::{self, FdKind};
use crate::sys::locks::{self, ByteRange, LockMode, RecordOwner, Wait};

/// The blog's hello: exactly these 16 bytes, nothing before or after.
pub const BLOG_HELLO: &[u8] = b"CACHEDFILE HELLO";
/// Where the blog's server binds, and so where the blog's client sends.
pub const BLOG_SOCKET: &str = "/tmp/test_socket";
/// The blog's memfd size; a compat memfd must be at least this big.
pub const BLOG_FILE_SIZE: u64 = 64;
/// The blog's iteration count, on both sides.
pub const DEFAULT_ITERATIONS: u64 = 100;
/// The most iterations `--seed-iterations` accepts (about a second of work when nothing blocks).
pub const MAX_ITERATIONS: u64 = 1_000_000;

/// `lockfair-server --seed-compat`: also play the blog's server.
#[derive(Clone, Debug)]
pub struct SeedCompat {
    /// Iterations per compat session (`--seed-iterations`).
    pub iterations: u64,
}

impl Default for SeedCompat {
    fn default() -> Self {
        SeedCompat {
            iterations: DEFAULT_ITERATIONS,
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
    #[error("cannot create the memfd: {0}")]
    Create(String),
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

/// The checks of [`check_blog_fds`] on one descriptor.
pub fn check_blog_memfd(fd: impl AsFd) -> Result<(), CompatError> {
    let fd = fd.as_fd();
    let kind = fdkind::classify(fd).map_err(sys("inspect the descriptor"))?;
    if kind != FdKind::Memfd {
        return Err(CompatError::NotMemfd(kind));
    }
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
    let have = fdkind::seals(fd).map_err(sys("read the memfd's seals"))?;
    if !have.contains(REQUIRED_SEALS) {
        return Err(CompatError::MissingSeals {
            have,
            missing: REQUIRED_SEALS.difference(have),
        });
    }
    if have.intersects(SealFlags::WRITE | SealFlags::FUTURE_WRITE) {
        return Err(CompatError::WriteSealed);
    }
    let size = fdkind::size(fd).map_err(sys("stat the memfd"))?;
    if size < BLOG_FILE_SIZE {
        return Err(CompatError::TooSmall(size));
    }
    Ok(())
}

/// One side's counts after its iterations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Iterations done (lock, look, maybe a turn, unlock).
    pub iterations: u64,
    /// Iterations that were this side's turn: lines written, or lines read.
    pub turns: u64,
    /// Iterations that held the lock but found it was not this side's turn.
    pub whoops: u64,
    /// Turns that read something other than the expected line (the reader only).
    pub wrong_reads: u64,
    /// Critical sections during which the offset moved without this side moving it.
    pub overlaps: u64,
}

/// One side of the blog's protocol: when its turn is, and what it does with it.
pub(crate) trait BlogRole {
    /// True if `offset` (read under the lock) means it is this side's turn.
    fn is_my_turn(&self, offset: u64) -> bool;
    /// Takes the turn found at `offset`. Returns the offset this side leaves behind by its own
    /// doing, and false for a wrong read.
    fn take(&mut self, file: &File, offset: u64) -> Result<(u64, bool), Errno>;
    /// Called after each iteration's unlock, outside the critical section.
    fn after_unlock(&mut self, _file: &File) {}
}

/// The shared file offset, read without moving it.
pub(crate) fn offset(file: &File) -> Result<u64, CompatError> {
    seek(file, SeekFrom::Current(0)).map_err(|e| CompatError::Sys {
        what: "read the file offset",
        errno: crate::sys::errno(e),
    })
}

/// The blog's loop: `iterations` times lock the whole file (`F_OFD_SETLKW`), look at the offset,
/// take the turn or count a whoop, unlock. The lock is released on every path out of an
/// iteration. Stops early only when the watchdog says so (deadline, server shutdown).
pub(crate) fn run_iterations(
    file: &File,
    role: &mut dyn BlogRole,
    iterations: u64,
    dog: &Watchdog,
) -> Result<Counts, CompatError> {
    let mut counts = Counts::default();
    for _ in 0..iterations {
        dog.check().map_err(SessionError::from)?;
        retry(dog, "take the OFD lock", || {
            locks::record_lock(
                file,
                RecordOwner::Description,
                LockMode::Exclusive,
                ByteRange::ALL,
                Wait::Block,
            )
        })?;
        let inside = critical_section(file, role, &mut counts);
        let unlocked = locks::record_unlock(file, RecordOwner::Description, ByteRange::ALL)
            .map_err(sys("release the OFD lock"));
        inside?;
        unlocked?;
        role.after_unlock(file);
        counts.iterations += 1;
    }
    Ok(counts)
}

/// What happens while the lock is held; `counts` takes the outcome.
fn critical_section(
    file: &File,
    role: &mut dyn BlogRole,
    counts: &mut Counts,
) -> Result<(), CompatError> {
    let mut witness = overlap::OffsetWitness::enter(offset(file)?);
    let entry = witness.entry();
    if role.is_my_turn(entry) {
        let (left_at, right) = role.take(file, entry).map_err(sys("take the turn"))?;
        witness.moved_to(left_at);
        counts.turns += 1;
        if !right {
            counts.wrong_reads += 1;
        }
    } else {
        counts.whoops += 1;
    }
    if witness.leave(offset(file)?) {
        counts.overlaps += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use memfd::{FileSeal, MemfdOptions};

    fn memfd(size: u64, seals: &[FileSeal]) -> OwnedFd {
        let m = MemfdOptions::default()
            .allow_sealing(true)
            .create("compat-test")
            .unwrap();
        m.as_file().set_len(size).unwrap();
        m.add_seals(seals).unwrap();
        OwnedFd::from(m.into_file())
    }

    const BLOG_SEALS: [FileSeal; 3] =
        [FileSeal::SealGrow, FileSeal::SealShrink, FileSeal::SealSeal];

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
        check_blog_fds(vec![memfd(64, &BLOG_SEALS)]).unwrap();
        check_blog_fds(vec![memfd(4096, &BLOG_SEALS)]).unwrap();
        let err = |fds| check_blog_fds(fds).unwrap_err().to_string();
        assert!(err(vec![]).contains("exactly one descriptor"));
        let two = vec![memfd(64, &BLOG_SEALS), memfd(64, &BLOG_SEALS)];
        assert!(err(two).contains("got 2"));
        assert!(err(vec![memfd(64, &[])]).contains("lacks seals"));
        assert!(err(vec![memfd(32, &BLOG_SEALS)]).contains("32 bytes"));
        let write_sealed = [
            FileSeal::SealGrow,
            FileSeal::SealShrink,
            FileSeal::SealWrite,
            FileSeal::SealSeal,
        ];
        assert!(err(vec![memfd(64, &write_sealed)]).contains("write-sealed"));
        let file = OwnedFd::from(std::fs::File::open("/proc/self/exe").unwrap());
        assert!(err(vec![file]).contains("not a memfd"));
    }

    #[test]
    fn a_read_only_or_append_view_of_a_good_memfd_is_refused() {
        let good = memfd(64, &BLOG_SEALS);
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
