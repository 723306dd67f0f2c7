//! A helper process that performs lock operations on request.
//!
//! Experiments about *process*-level lock semantics need a second process that does exactly what
//! it is told, when it is told. `lockfair-client` re-executes itself as `lockfair-client peer`
//! (hidden) with one end of a SOCK_SEQPACKET socketpair as its stdin; requests and replies are
//! postcard messages, descriptors travel as SCM_RIGHTS. The helper exits when the socket closes,
//! so it can never outlive its parent's interest in it; the parent also kills and reaps it on drop
//! (both through [`crate::child`]).
//!
//! A descriptor can also reach the helper the way `fork` hands it over: inherited across
//! fork/exec ([`PeerProcess::spawn_inheriting`]). It becomes the helper's standard output, which
//! the helper never writes to: fd 1 is the one descriptor (besides stdin, taken by the socket) a
//! Rust program can name without `unsafe`, so the helper can lock through the inherited
//! descriptor itself rather than through a copy of it ([`PeerRequest::Inherited`]).

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::MsgFlags;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::child::{ChildProcess, ChildStartError};
use crate::locking::LockFamily;
use crate::sys::locks::{LockMode, Wait};
use crate::sys::scm::{control_space, recv_with_fds, send_with_fds};

/// What the helper can be asked to do. Descriptors live in numbered slots.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerRequest {
    /// Keep the descriptor attached to this request (SCM_RIGHTS) in a new slot.
    Adopt,
    /// Open a new, independent description of a slot's file through `/proc/self/fd/N`.
    Reopen { slot: u32 },
    /// `dup` a slot.
    Dup { slot: u32 },
    /// `open` a path read-write.
    Open { path: String },
    /// Take a lock on the whole file.
    Lock {
        slot: u32,
        family: LockFamily,
        mode: LockMode,
        wait: bool,
    },
    /// Release a lock.
    Unlock { slot: u32, family: LockFamily },
    /// `close` a slot.
    Close { slot: u32 },
    /// The helper's pid.
    Pid,
    /// Put the descriptor inherited across fork/exec (the helper's fd 1, see
    /// [`PeerProcess::spawn_inheriting`]) in a slot. The slot names fd 1 itself, not a copy;
    /// closing it points fd 1 at `/dev/null`. A helper started by [`PeerProcess::spawn`]
    /// inherited nothing: its fd 1 already is `/dev/null`.
    Inherited,
    /// In a mount namespace of the helper's own, mount a tmpfs with `-o mand` on `dir`, create
    /// `dir/file` with mode 2644 (setgid, no group execute), and take an exclusive POSIX lock
    /// on it. The reply carries an `O_NONBLOCK` read-write descriptor of the file, for the
    /// parent to try reads and writes against the lock; the mount dies with the helper.
    MountMandatory { dir: String, file: String },
}

/// The helper's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerReply {
    Done,
    Slot(u32),
    Pid(i32),
    /// The operation failed with this errno.
    Failed(i32),
    /// `MountMandatory` worked; how the helper's `/proc/self/mountinfo` lists the mount. The
    /// file's descriptor comes with the reply.
    Mounted(Option<crate::procinfo::MountInfo>),
}

/// Something went wrong talking to the helper.
#[derive(Debug, Error)]
pub enum PeerError {
    #[error("cannot start the helper process {path}: {err}")]
    Spawn { path: String, err: std::io::Error },
    #[error("cannot talk to the helper process: {0}")]
    Sys(Errno),
    #[error("the helper process did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the helper process sent an unreadable reply")]
    Garbled,
}

/// A running helper process.
#[derive(Debug)]
pub struct PeerProcess {
    child: ChildProcess,
    pid: i32,
}

const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

impl PeerProcess {
    /// Starts `helper peer` (normally `lockfair-client peer`).
    pub fn spawn(helper: &Path) -> Result<Self, PeerError> {
        Self::spawn_with_stdout(helper, Stdio::null())
    }

    /// Starts `helper peer` with `inherited` as its standard output: the helper holds that
    /// descriptor the way a forked child does (same open file description, inherited across
    /// fork/exec, never sent). [`PeerRequest::Inherited`] gives it a slot. Our copy of `inherited`
    /// is closed once the helper runs: mind that closing a descriptor drops this process's POSIX
    /// locks on the file, so spawn before locking.
    pub fn spawn_inheriting(helper: &Path, inherited: OwnedFd) -> Result<Self, PeerError> {
        Self::spawn_with_stdout(helper, Stdio::from(inherited))
    }

    fn spawn_with_stdout(helper: &Path, stdout: Stdio) -> Result<Self, PeerError> {
        // No grace on drop: a helper blocked in a lock would not see the hang-up.
        let child =
            ChildProcess::spawn(helper, "peer", stdout, Duration::ZERO).map_err(|e| match e {
                ChildStartError::Socketpair(errno) => PeerError::Sys(errno),
                ChildStartError::Spawn { path, err } => PeerError::Spawn {
                    path: path.display().to_string(),
                    err,
                },
            })?;
        let mut peer = PeerProcess {
            pid: child.pid(),
            child,
        };
        match peer.request(&PeerRequest::Pid, None)? {
            PeerReply::Pid(pid) => peer.pid = pid,
            _ => return Err(PeerError::Garbled),
        }
        Ok(peer)
    }

    /// The helper's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends one request (with an optional descriptor) and waits for the reply.
    pub fn request(
        &mut self,
        req: &PeerRequest,
        fd: Option<BorrowedFd<'_>>,
    ) -> Result<PeerReply, PeerError> {
        self.send(req, fd)?;
        self.reply().map(|(reply, _)| reply)
    }

    fn request_with_fd(
        &mut self,
        req: &PeerRequest,
    ) -> Result<(PeerReply, Option<OwnedFd>), PeerError> {
        self.send(req, None)?;
        self.reply()
    }

    fn send(&self, req: &PeerRequest, fd: Option<BorrowedFd<'_>>) -> Result<(), PeerError> {
        let bytes = postcard::to_allocvec(req).map_err(|_| PeerError::Sys(Errno::EINVAL))?;
        self.child
            .send(&bytes, fd.as_slice())
            .map_err(PeerError::Sys)
    }

    fn reply(&mut self) -> Result<(PeerReply, Option<OwnedFd>), PeerError> {
        let mut buf = [0u8; 1024];
        let mut got = self
            .child
            .recv(&mut buf, 1, REPLY_TIMEOUT)
            .map_err(PeerError::Sys)?
            .ok_or(PeerError::Timeout(REPLY_TIMEOUT))?;
        let reply = postcard::from_bytes(&buf[..got.len]).map_err(|_| PeerError::Garbled)?;
        Ok((reply, got.fds.pop()))
    }

    /// Requests that answer `Done` or an errno.
    pub fn act(&mut self, req: &PeerRequest) -> Result<Result<(), Errno>, PeerError> {
        match self.request(req, None)? {
            PeerReply::Done => Ok(Ok(())),
            PeerReply::Failed(e) => Ok(Err(Errno::from_raw(e))),
            _ => Err(PeerError::Garbled),
        }
    }

    /// [`PeerRequest::MountMandatory`]: the file's descriptor and the mount as the helper sees it.
    pub fn mount_mandatory(
        &mut self,
        dir: String,
        file: String,
    ) -> Result<Result<(File, Option<crate::procinfo::MountInfo>), Errno>, PeerError> {
        let (reply, fd) = self.request_with_fd(&PeerRequest::MountMandatory { dir, file })?;
        match (reply, fd) {
            (PeerReply::Mounted(info), Some(fd)) => Ok(Ok((File::from(fd), info))),
            (PeerReply::Failed(e), _) => Ok(Err(Errno::from_raw(e))),
            _ => Err(PeerError::Garbled),
        }
    }

    /// Requests that answer a slot.
    pub fn slot(
        &mut self,
        req: &PeerRequest,
        fd: Option<BorrowedFd<'_>>,
    ) -> Result<Result<u32, Errno>, PeerError> {
        match self.request(req, fd)? {
            PeerReply::Slot(s) => Ok(Ok(s)),
            PeerReply::Failed(e) => Ok(Err(Errno::from_raw(e))),
            _ => Err(PeerError::Garbled),
        }
    }
}

/// What a helper slot holds.
#[derive(Debug)]
enum Held {
    /// A descriptor the helper opened, duplicated or received.
    File(File),
    /// The descriptor inherited across fork/exec: fd 1 itself.
    Inherited(std::io::Stdout),
}

impl Held {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Held::File(f) => f.as_fd(),
            Held::Inherited(out) => out.as_fd(),
        }
    }
}

/// The helper's main loop, on the socket it got as stdin. Returns when the parent hangs up.
pub fn serve(socket: BorrowedFd<'_>) -> Result<(), Errno> {
    let mut slots: Vec<Option<Held>> = Vec::new();
    let mut buf = [0u8; 512];
    let mut control = vec![0u8; control_space(4)];
    loop {
        let got = recv_with_fds(socket, &mut buf, &mut control, MsgFlags::empty())?;
        if got.len == 0 {
            return Ok(());
        }
        let (reply, attached) = match postcard::from_bytes::<PeerRequest>(&buf[..got.len]) {
            Ok(PeerRequest::MountMandatory { dir, file }) => {
                match mount_mandatory(Path::new(&dir), &file, &mut slots) {
                    Ok((info, slot)) => (PeerReply::Mounted(info), Some(slot)),
                    Err(e) => (PeerReply::Failed(e as i32), None),
                }
            }
            Ok(req) => (act(req, got.fds, &mut slots), None),
            Err(_) => (PeerReply::Failed(Errno::EINVAL as i32), None),
        };
        let bytes = postcard::to_allocvec(&reply).map_err(|_| Errno::EINVAL)?;
        let attached = attached.and_then(|slot| get(&slots, slot));
        send_with_fds(socket, &bytes, attached.as_slice(), None)?;
    }
}

/// The helper's side of [`PeerRequest::MountMandatory`]; returns the slot of the descriptor to
/// send back. The locked descriptor and that one both stay in `slots`: closing any descriptor of
/// the file would drop this process's POSIX lock on it.
fn mount_mandatory(
    dir: &Path,
    file: &str,
    slots: &mut Vec<Option<Held>>,
) -> Result<(Option<crate::procinfo::MountInfo>, u32), Errno> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |e: std::io::Error| crate::sys::io_errno(&e);
    crate::sys::mount::private_mount_namespace()?;
    crate::sys::mount::mount_private_tmpfs(dir, true)?;
    let info = crate::procinfo::mount_info(dir);
    let path = dir.join(file);
    let mut locked = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(io)?;
    locked
        .write_all(b"mandatory locking, as the article tried it\n")
        .map_err(io)?;
    locked
        .set_permissions(std::fs::Permissions::from_mode(0o2644))
        .map_err(io)?;
    let theirs = File::options()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(&path)
        .map_err(io)?;
    LockFamily::Posix.lock(&locked, LockMode::Exclusive, Wait::NoWait)?;
    keep(slots, locked);
    keep(slots, theirs);
    Ok((info, slots.len() as u32 - 1))
}

fn act(req: PeerRequest, mut fds: Vec<OwnedFd>, slots: &mut Vec<Option<Held>>) -> PeerReply {
    let io = io_failed;
    let errno = |e: Errno| PeerReply::Failed(e as i32);
    let done = |r: Result<(), Errno>| r.map_or_else(errno, |()| PeerReply::Done);
    match req {
        PeerRequest::Pid => PeerReply::Pid(std::process::id() as i32),
        PeerRequest::Adopt => match fds.pop() {
            Some(fd) => keep(slots, File::from(fd)),
            None => errno(Errno::EBADF),
        },
        PeerRequest::Open { path } => match File::options().read(true).write(true).open(path) {
            Ok(f) => keep(slots, f),
            Err(e) => io(e),
        },
        PeerRequest::Reopen { slot } => reopen(slots, slot),
        PeerRequest::Dup { slot } => match get(slots, slot).map(|fd| fd.try_clone_to_owned()) {
            Some(Ok(fd)) => keep(slots, File::from(fd)),
            Some(Err(e)) => io(e),
            None => errno(Errno::EBADF),
        },
        PeerRequest::Lock {
            slot,
            family,
            mode,
            wait,
        } => match get(slots, slot) {
            Some(fd) => done(family.lock(fd, mode, if wait { Wait::Block } else { Wait::NoWait })),
            None => errno(Errno::EBADF),
        },
        PeerRequest::Unlock { slot, family } => match get(slots, slot) {
            Some(fd) => done(family.unlock(fd)),
            None => errno(Errno::EBADF),
        },
        PeerRequest::Close { slot } => close(slots, slot),
        // Handled by `serve`, which needs to attach a descriptor to the reply.
        PeerRequest::MountMandatory { .. } => errno(Errno::EINVAL),
        PeerRequest::Inherited => {
            slots.push(Some(Held::Inherited(std::io::stdout())));
            PeerReply::Slot(slots.len() as u32 - 1)
        }
    }
}

/// The failure reply for an I/O error.
fn io_failed(e: std::io::Error) -> PeerReply {
    PeerReply::Failed(crate::sys::io_errno(&e) as i32)
}

/// Opens the file in `slot` again through `/proc/self/fd`: a new open file description.
fn reopen(slots: &mut Vec<Option<Held>>, slot: u32) -> PeerReply {
    let Some(fd) = get(slots, slot) else {
        return PeerReply::Failed(Errno::EBADF as i32);
    };
    match File::options()
        .read(true)
        .write(true)
        .open(format!("/proc/self/fd/{}", fd.as_raw_fd()))
    {
        Ok(f) => keep(slots, f),
        Err(e) => io_failed(e),
    }
}

/// Closes the descriptor in `slot` (the slot stays, empty).
fn close(slots: &mut [Option<Held>], slot: u32) -> PeerReply {
    match slots.get_mut(slot as usize).and_then(Option::take) {
        Some(Held::File(f)) => {
            drop(f);
            PeerReply::Done
        }
        // fd 1 is not ours to close: point it at /dev/null, which drops the inherited
        // reference to the description just the same.
        Some(Held::Inherited(_)) => match File::options().write(true).open("/dev/null") {
            Ok(null) => match nix::unistd::dup2_stdout(&null) {
                Ok(()) => PeerReply::Done,
                Err(e) => PeerReply::Failed(e as i32),
            },
            Err(e) => io_failed(e),
        },
        None => PeerReply::Failed(Errno::EBADF as i32),
    }
}

fn keep(slots: &mut Vec<Option<Held>>, f: File) -> PeerReply {
    slots.push(Some(Held::File(f)));
    PeerReply::Slot(slots.len() as u32 - 1)
}

fn get(slots: &[Option<Held>], slot: u32) -> Option<BorrowedFd<'_>> {
    slots
        .get(slot as usize)
        .and_then(Option::as_ref)
        .map(Held::fd)
}
