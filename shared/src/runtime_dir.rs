//! Where lockfair keeps its sockets: the user's runtime directory, and private directories in it.
//!
//! Both programs need this (the server for its default socket, `compare` for its private
//! server's), so it lives below both. A private directory is created 0700 and refused if it is a
//! symlink, someone else's, or open to other users.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::getuid;
use thiserror::Error;

/// Why a directory is not private.
#[derive(Debug, Error)]
pub enum PrivateDirError {
    #[error(
        "{0} is not a directory (or is a symlink); the socket's directory must be a real one: pass another --socket"
    )]
    NotADirectory(PathBuf),
    #[error("{path} belongs to uid {owner}, not to us; pass another --socket")]
    ForeignOwner { path: PathBuf, owner: u32 },
    #[error("{path} is mode {mode:o}: other users could enter it; run `chmod 700 {path}` or pass another --socket", path = .path.display())]
    OpenDirectory { path: PathBuf, mode: u32 },
    #[error("cannot {what} {path}: {err}", path = .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        err: io::Error,
    },
}

/// `$XDG_RUNTIME_DIR`, when it names an existing directory by an absolute path.
pub fn xdg_runtime_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute() && p.is_dir())
}

/// The per-user default socket path: `$XDG_RUNTIME_DIR/lockfair/server.sock`, else
/// `/tmp/lockfair-<uid>/server.sock` (its directory is created and checked by the server).
pub fn default_socket_path() -> PathBuf {
    xdg_runtime_dir()
        .map(|p| p.join("lockfair"))
        .unwrap_or_else(|| PathBuf::from(format!("/tmp/lockfair-{}", getuid())))
        .join("server.sock")
}

/// The lock file beside a server's socket, `<socket>.lock`: whoever holds it serves the path.
pub fn lock_path(socket: &Path) -> PathBuf {
    let mut name = socket.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Makes sure `dir` exists, is ours and is closed to everyone else.
pub fn ensure_private_dir(dir: &Path) -> Result<(), PrivateDirError> {
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(err) => {
            return Err(PrivateDirError::Io {
                what: "create",
                path: dir.to_path_buf(),
                err,
            });
        }
    }
    check_private_dir(dir)
}

/// Refuses `dir` unless it is a real directory (not a symlink) owned by us with no group/other
/// access.
pub fn check_private_dir(dir: &Path) -> Result<(), PrivateDirError> {
    let meta = fs::symlink_metadata(dir).map_err(|err| PrivateDirError::Io {
        what: "inspect",
        path: dir.to_path_buf(),
        err,
    })?;
    if !meta.is_dir() {
        return Err(PrivateDirError::NotADirectory(dir.to_path_buf()));
    }
    if meta.uid() != getuid().as_raw() {
        return Err(PrivateDirError::ForeignOwner {
            path: dir.to_path_buf(),
            owner: meta.uid(),
        });
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(PrivateDirError::OpenDirectory {
            path: dir.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_directory_is_refused_and_a_private_one_accepted() {
        let dir = std::env::temp_dir().join(format!(
            "lockfair-rtdir-{}-{}",
            std::process::id(),
            crate::sys::clock::monotonic_ns()
        ));
        ensure_private_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(
            check_private_dir(&dir),
            Err(PrivateDirError::OpenDirectory { mode: 0o755, .. })
        ));
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        ensure_private_dir(&dir).unwrap();
        fs::remove_dir(&dir).unwrap();
    }
}
