//! Where the server's socket lives, and leaving no trace of it.
//!
//! The default is `$XDG_RUNTIME_DIR/lockfair/server.sock`, else `/tmp/lockfair-<uid>/server.sock`,
//! in a directory only the user can enter (created 0700, refused if someone else owns it or can
//! enter it). The directory of a `--socket` the user names must be ours (or root's) and writable
//! by nobody else; if others can enter it, a warning. The socket is created 0600: its mode is set
//! on the unbound socket (`fchmod`), which the kernel gives the file `bind` makes, so no other
//! user can connect in between and no chmod by path can be redirected by a symlink. An existing
//! path is never unlinked blindly: if a server answers on it we refuse to start; only a socket
//! nobody listens on (a crashed server's leftover) is removed. On exit the socket is removed if
//! it is still the one we created. "One server per path" is atomic: the check and the bind happen
//! under the path's lock ([`super::lock`]), held for the server's life.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, UnixAddr, bind, setsockopt, socket, sockopt,
};
use nix::sys::stat::{Mode, fchmod};
use nix::unistd::getuid;
use thiserror::Error;

use super::lock::ServerLock;
use crate::runtime_dir::lock_file::LockFileError;
use crate::runtime_dir::{PrivateDirError, check_socket_dir, ensure_private_dir};

/// Why the socket could not be set up.
#[derive(Debug, Error)]
pub enum SocketPathError {
    #[error("a lockfair server is already listening on {0}; stop it or pass another --socket")]
    LiveServer(PathBuf),
    #[error("another lockfair-server is serving {path}{}; stop it or pass another --socket",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default(), path = .path.display())]
    AlreadyServing { path: PathBuf, pid: Option<i32> },
    #[error("{0} exists and is not a socket; remove it or pass another --socket")]
    NotASocket(PathBuf),
    #[error(transparent)]
    Dir(#[from] PrivateDirError),
    #[error(transparent)]
    LockFile(#[from] LockFileError),
    #[error("{path} was replaced while we bound it (it is no longer our socket): someone else can write its directory; pass a --socket in a directory only you can write", path = .0.display())]
    Replaced(PathBuf),
    #[error("{path} came out mode {mode:03o}, not 0600: if your umask takes the owner's read or write bits, run with `umask 077`", path = .path.display())]
    SocketMode { path: PathBuf, mode: u32 },
    #[error("{path} belongs to uid {owner}, not to us; pass another --socket")]
    ForeignOwner { path: PathBuf, owner: u32 },
    #[error("cannot {what} {path}: {err}", path = .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        err: io::Error,
    },
    #[error("socket path {0} is too long for a Unix socket address")]
    TooLong(PathBuf),
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SocketPathError {
    let path = path.to_path_buf();
    move |err| SocketPathError::Io { what, path, err }
}

fn errno_err(what: &'static str, path: &Path) -> impl FnOnce(Errno) -> SocketPathError {
    let path = path.to_path_buf();
    move |e| SocketPathError::Io {
        what,
        path,
        err: io::Error::from_raw_os_error(e as i32),
    }
}

/// The server's bound socket and the guard that removes its path.
#[derive(Debug)]
pub struct BoundSocket {
    pub socket: OwnedFd,
    pub guard: PathGuard,
    /// Set when the socket's directory is open to other users (the socket is still 0600).
    pub warning: Option<String>,
}

/// Removes the socket's path when dropped, if it is still the socket we created, then releases
/// (and removes) the path's lock: in that order, so a newcomer never finds our socket after
/// taking the lock.
#[derive(Debug)]
pub struct PathGuard {
    socket: SocketFile,
    _lock: ServerLock,
}

/// The socket's path and the identity of the socket we bound there.
#[derive(Debug)]
struct SocketFile {
    path: PathBuf,
    identity: (u64, u64),
}

impl BoundSocket {
    /// Binds a non-blocking datagram socket at `path` with SO_PASSCRED on.
    pub fn bind(path: &Path, private_dir: bool) -> Result<BoundSocket, SocketPathError> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let warning = if private_dir {
            ensure_private_dir(dir)?;
            None
        } else {
            check_socket_dir(dir)?.map(|e| {
                format!("warning: {e}; the socket itself is mode 0600 and peers' uids are checked")
            })
        };
        let addr = UnixAddr::new(path).map_err(|_| SocketPathError::TooLong(path.to_path_buf()))?;
        // Before the stale check and the bind: the two are one step for whoever holds the lock.
        let lock = ServerLock::acquire(path)?;
        remove_if_stale(path, &addr)?;
        let socket = private_socket(path)?;
        bind(socket.as_raw_fd(), &addr).map_err(errno_err("bind", path))?;
        match configure(path, &socket) {
            Ok(identity) => Ok(BoundSocket {
                socket,
                guard: PathGuard {
                    socket: SocketFile {
                        path: path.to_path_buf(),
                        identity,
                    },
                    _lock: lock,
                },
                warning,
            }),
            Err(e) => {
                // Still holding the lock: the path is ours to remove.
                let _ = fs::remove_file(path);
                drop(lock);
                Err(e)
            }
        }
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.guard.socket.path
    }
}

/// A non-blocking datagram socket whose file will be born 0600: Linux's `bind` gives the new
/// file the socket inode's mode (less the umask), and that mode is set here, before any path
/// exists. (A umask around `bind` would do it too, but the umask is the whole process's and the
/// server has threads.)
fn private_socket(path: &Path) -> Result<OwnedFd, SocketPathError> {
    let socket = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(errno_err("create a socket for", path))?;
    fchmod(&socket, Mode::from_bits_truncate(0o600))
        .map_err(errno_err("set the mode of the socket for", path))?;
    Ok(socket)
}

/// Checks the freshly bound socket's file (still a socket, 0600) without following a symlink,
/// asks for credentials (and the sender's pidfd where the kernel has them) on every datagram;
/// returns the socket file's identity.
fn configure(path: &Path, socket: &OwnedFd) -> Result<(u64, u64), SocketPathError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => meta,
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err("inspect", path)(e)),
        _ => return Err(SocketPathError::Replaced(path.to_path_buf())),
    };
    let mode = meta.permissions().mode() & 0o7777;
    if mode != 0o600 {
        return Err(SocketPathError::SocketMode {
            path: path.to_path_buf(),
            mode,
        });
    }
    setsockopt(socket, sockopt::PassCred, &true)
        .map_err(errno_err("enable SO_PASSCRED on", path))?;
    // Linux 6.5 and later: the sender's pidfd comes with its datagram; before, the session
    // falls back to a checked pidfd_open of the credentials' pid.
    let _ = crate::sys::scm::pass_pidfd(socket);
    // Room for bursts of hellos; the kernel caps it at net.core.rmem_max.
    let _ = setsockopt(socket, sockopt::RcvBuf, &(1 << 20));
    Ok((meta.dev(), meta.ino()))
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        // Only remove the path if it is still our socket (not one a later server put there).
        if let Ok(meta) = fs::symlink_metadata(&self.path)
            && (meta.dev(), meta.ino()) == self.identity
        {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Removes `path` only if it is our own socket and nobody is listening on it.
fn remove_if_stale(path: &Path, addr: &UnixAddr) -> Result<(), SocketPathError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("inspect", path)(e)),
    };
    if !meta.file_type().is_socket() {
        return Err(SocketPathError::NotASocket(path.to_path_buf()));
    }
    if meta.uid() != getuid().as_raw() {
        return Err(SocketPathError::ForeignOwner {
            path: path.to_path_buf(),
            owner: meta.uid(),
        });
    }
    match crate::channel::probe(addr) {
        Ok(()) => Err(SocketPathError::LiveServer(path.to_path_buf())),
        Err(Errno::ECONNREFUSED) => {
            fs::remove_file(path).map_err(io_err("remove stale socket", path))
        }
        Err(e) => Err(errno_err("probe", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn of_two_servers_started_at_once_exactly_one_serves_and_nothing_is_left() {
        let dir = tempdir();
        let path = dir.join("s.sock");
        let start = std::sync::Barrier::new(2);
        let (a, b) = std::thread::scope(|s| {
            let try_bind = || {
                start.wait();
                BoundSocket::bind(&path, true)
            };
            let a = s.spawn(try_bind);
            let b = s.spawn(try_bind);
            (a.join().unwrap(), b.join().unwrap())
        });
        let (winner, loser) = match (a, b) {
            (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
            (a, b) => panic!("exactly one must serve: {a:?} {b:?}"),
        };
        let me = std::process::id() as i32;
        assert!(
            matches!(loser, SocketPathError::AlreadyServing { pid: Some(p), .. } if p == me)
                || matches!(loser, SocketPathError::AlreadyServing { pid: None, .. }),
            "{loser}"
        );
        assert!(loser.to_string().starts_with(&format!(
            "another lockfair-server is serving {}",
            path.display()
        )));
        assert!(crate::runtime_dir::lock_path(&path).exists());
        drop(winner);
        assert!(!path.exists(), "no socket left");
        assert!(
            !crate::runtime_dir::lock_path(&path).exists(),
            "no lock file left"
        );
        // The path is free again.
        drop(BoundSocket::bind(&path, true).unwrap());
        fs::remove_dir(&dir).unwrap();
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "lockfair-sockpath-{}-{}",
            std::process::id(),
            crate::sys::clock::monotonic_ns()
        ));
        ensure_private_dir(&dir).unwrap();
        dir
    }

    #[test]
    fn binds_refuses_a_live_server_and_cleans_up() {
        let dir = tempdir();
        let path = dir.join("s.sock");
        let first = BoundSocket::bind(&path, true).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(
            BoundSocket::bind(&path, true).unwrap_err(),
            SocketPathError::AlreadyServing { .. }
        ));
        drop(first);
        assert!(!path.exists(), "the socket is removed on drop");
        fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn a_live_socket_without_a_lock_is_not_replaced() {
        let dir = tempdir();
        let path = dir.join("s.sock");
        // A server that takes no lock (an older build) listening on the path.
        let older = crate::channel::datagram_socket().unwrap();
        bind(older.as_raw_fd(), &UnixAddr::new(&path).unwrap()).unwrap();
        assert!(matches!(
            BoundSocket::bind(&path, true).unwrap_err(),
            SocketPathError::LiveServer(_)
        ));
        assert!(path.exists(), "a live server's socket is left alone");
        assert!(!crate::runtime_dir::lock_path(&path).exists());
        drop(older);
        fs::remove_file(&path).unwrap();
        fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn a_stale_socket_is_replaced_and_a_regular_file_is_not() {
        let dir = tempdir();
        let path = dir.join("s.sock");
        // A crashed server: its socket closed, its path left behind.
        let crashed = crate::channel::datagram_socket().unwrap();
        bind(crashed.as_raw_fd(), &UnixAddr::new(&path).unwrap()).unwrap();
        drop(crashed);
        assert!(path.exists());
        let second = BoundSocket::bind(&path, true).unwrap();
        drop(second);
        fs::write(&path, b"not a socket").unwrap();
        assert!(matches!(
            BoundSocket::bind(&path, true).unwrap_err(),
            SocketPathError::NotASocket(_)
        ));
        fs::remove_file(&path).unwrap();
        fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn an_explicit_socket_in_a_directory_others_can_write_is_refused_and_nothing_is_made() {
        let dir = tempdir();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777)).unwrap();
        let path = dir.join("s.sock");
        let e = BoundSocket::bind(&path, false).unwrap_err();
        assert!(
            matches!(
                e,
                SocketPathError::Dir(PrivateDirError::WritableByOthers { .. })
            ),
            "{e}"
        );
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0, "nothing made");
        fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn a_lock_file_that_is_a_hard_link_is_refused_and_its_target_kept() {
        let dir = tempdir();
        let path = dir.join("s.sock");
        let victim = dir.join("victim");
        fs::write(&victim, b"precious").unwrap();
        fs::hard_link(&victim, crate::runtime_dir::lock_path(&path)).unwrap();
        let e = BoundSocket::bind(&path, true).unwrap_err();
        assert!(
            matches!(e, SocketPathError::LockFile(LockFileError::HardLink { .. })),
            "{e}"
        );
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert!(!path.exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
