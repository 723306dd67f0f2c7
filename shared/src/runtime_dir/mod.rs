//! Where lockfair keeps its sockets and lock files: the user's runtime directory, private
//! directories in it, and the checks that nobody else can plant a file where we keep ours.
//!
//! Both programs need this (the server for its default socket, `compare` for its private
//! server's), so it lives below both. A private directory is created 0700 and refused if it is a
//! symlink, someone else's, or open to other users. The directory of a socket the user names
//! (`--socket`) may be readable by others, never writable by them ([`check_socket_dir`]); lock
//! files are checked on their descriptor ([`lock_file`]).

pub mod lock_file;

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::{Mode, SFlag, fstat};
use nix::unistd::{geteuid, getuid};
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
    #[error("{path} (owner uid {owner}, mode {mode:o}) belongs to another user, who could replace the socket or hold its lock file: pass a --socket in a directory only you can write, e.g. the default {default}", path = .path.display(), default = .default.display())]
    OthersDirectory {
        path: PathBuf,
        owner: u32,
        mode: u32,
        default: PathBuf,
    },
    #[error("{path} (owner uid {owner}, mode {mode:o}) can be written by other users, who could plant the socket's lock file or replace the socket: pass a --socket in a directory only you can write, e.g. the default {default}", path = .path.display(), default = .default.display())]
    WritableByOthers {
        path: PathBuf,
        owner: u32,
        mode: u32,
        default: PathBuf,
    },
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

/// Checks the directory of a socket the user named. Refused (`Err`): a symlink or not a
/// directory, a directory owned by anyone but us or root, or one that group or others can write
/// (even sticky: they could plant the lock file's name). Accepted with a warning (`Ok(Some)`): one
/// that others can read or enter (the socket itself is 0600). Checked on a descriptor opened
/// without following a symlink.
pub fn check_socket_dir(dir: &Path) -> Result<Option<PrivateDirError>, PrivateDirError> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let stat = open(dir, flags, Mode::empty())
        .and_then(fstat)
        .map_err(|e| match e {
            Errno::ELOOP | Errno::ENOTDIR => PrivateDirError::NotADirectory(dir.to_path_buf()),
            e => PrivateDirError::Io {
                what: "open",
                path: dir.to_path_buf(),
                err: e.into(),
            },
        })?;
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
        return Err(PrivateDirError::NotADirectory(dir.to_path_buf()));
    }
    let (path, owner, mode) = (dir.to_path_buf(), stat.st_uid, stat.st_mode & 0o7777);
    let default = default_socket_path();
    if owner != geteuid().as_raw() && owner != 0 {
        return Err(PrivateDirError::OthersDirectory {
            path,
            owner,
            mode,
            default,
        });
    }
    if mode & 0o022 != 0 {
        return Err(PrivateDirError::WritableByOthers {
            path,
            owner,
            mode,
            default,
        });
    }
    Ok(
        (mode & 0o077 != 0).then_some(PrivateDirError::OpenDirectory {
            path,
            mode: mode & 0o777,
        }),
    )
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

    fn tempdir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "lockfair-rtdir-{tag}-{}-{}",
            std::process::id(),
            crate::sys::clock::monotonic_ns()
        ));
        ensure_private_dir(&dir).unwrap();
        dir
    }

    #[test]
    fn a_socket_directory_others_can_write_is_refused_even_sticky() {
        let dir = tempdir("writable");
        for mode in [0o777, 0o1777, 0o770, 0o1733, 0o702] {
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).unwrap();
            let e = check_socket_dir(&dir).unwrap_err();
            assert!(
                matches!(e, PrivateDirError::WritableByOthers { mode: m, .. } if m == mode),
                "{mode:o}: {e}"
            );
            let text = e.to_string();
            assert!(text.contains(&format!("mode {mode:o}")), "{text}");
            assert!(
                text.contains("pass a --socket in a directory only you can write"),
                "{text}"
            );
            assert_eq!(text.lines().count(), 1, "{text}");
        }
        fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn a_socket_directory_others_can_only_enter_is_a_warning_and_a_private_one_nothing() {
        let dir = tempdir("readable");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(
            check_socket_dir(&dir),
            Ok(Some(PrivateDirError::OpenDirectory { mode: 0o755, .. }))
        ));
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o711)).unwrap();
        assert!(matches!(check_socket_dir(&dir), Ok(Some(_))));
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        assert!(matches!(check_socket_dir(&dir), Ok(None)));
        fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn a_socket_directory_that_is_a_symlink_or_a_file_is_refused() {
        let dir = tempdir("symlink");
        let link = dir.join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert!(matches!(
            check_socket_dir(&link),
            Err(PrivateDirError::NotADirectory(_))
        ));
        let file = dir.join("file");
        fs::write(&file, b"").unwrap();
        assert!(matches!(
            check_socket_dir(&file),
            Err(PrivateDirError::NotADirectory(_))
        ));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_socket_directory_of_another_user_is_refused() {
        if !geteuid().is_root() {
            eprintln!("skipped: only root can give a directory to another uid");
            return;
        }
        let dir = tempdir("foreign");
        nix::unistd::chown(&dir, Some(65534.into()), Some(65534.into())).unwrap();
        let e = check_socket_dir(&dir).unwrap_err();
        assert!(
            matches!(
                e,
                PrivateDirError::OthersDirectory {
                    owner: 65534,
                    mode: 0o700,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("owner uid 65534"), "{e}");
        fs::remove_dir(&dir).unwrap();
    }
}
