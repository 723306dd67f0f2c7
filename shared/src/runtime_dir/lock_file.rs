//! Lock files nobody else could have planted: opened without following a symlink, then checked
//! on the open descriptor (a regular file, its expected owner's, not a hard link) before it is
//! locked, read or written.
//!
//! A lock file someone else made could be held by them forever (we never start), could name a
//! false pid, or could be a hard link to a file of ours that writing the lock file would wipe.
//! The checks look at the descriptor, so the file checked is the file used.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::libc;
use thiserror::Error;

/// Why a lock file was refused.
#[derive(Debug, Error)]
pub enum LockFileError {
    #[error("{path} is a symbolic link, not a lock file: remove it (`rm {path}`) and start again", path = .path.display())]
    Symlink { path: PathBuf },
    #[error("{path} is {kind}, not a regular lock file: remove it (`rm {path}`) and start again", path = .path.display())]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("{path} belongs to uid {owner}, not to uid {expected}: someone else made it; remove it (`rm {path}`) and start again", path = .path.display())]
    ForeignOwner {
        path: PathBuf,
        owner: u32,
        expected: u32,
    },
    #[error("{path} has {links} names (a hard link to another file): remove it (`rm {path}`; the other file stays) and start again", path = .path.display())]
    HardLink { path: PathBuf, links: u64 },
    #[error("cannot open the lock file {path}: {err}", path = .path.display())]
    Io { path: PathBuf, err: io::Error },
}

/// Opens the lock file at `path` for reading and writing, creating it (mode 0600) if absent;
/// refuses anything but a regular file of `owner`'s with one name (or none left: unlinked after
/// we opened it).
pub fn open_checked(path: &Path, owner: u32) -> Result<File, LockFileError> {
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|err| match err.raw_os_error() {
            Some(libc::ELOOP) => LockFileError::Symlink {
                path: path.to_path_buf(),
            },
            _ => LockFileError::Io {
                path: path.to_path_buf(),
                err,
            },
        })?;
    check(&file, path, owner)?;
    Ok(file)
}

/// The checks, on the open file (`fstat`), not on whatever the path names by now.
fn check(file: &File, path: &Path, owner: u32) -> Result<(), LockFileError> {
    let path = path.to_path_buf();
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(err) => return Err(LockFileError::Io { path, err }),
    };
    if let Some(kind) = not_a_file(&meta.file_type()) {
        return Err(LockFileError::NotAFile { path, kind });
    }
    if meta.uid() != owner {
        return Err(LockFileError::ForeignOwner {
            path,
            owner: meta.uid(),
            expected: owner,
        });
    }
    // No name at all is no hard link: a file unlinked since we opened it (its holder let go),
    // which the caller notices by looking at the path again.
    if meta.nlink() > 1 {
        return Err(LockFileError::HardLink {
            path,
            links: meta.nlink(),
        });
    }
    Ok(())
}

/// What a non-regular file is, in words; `None` for a regular file.
fn not_a_file(kind: &std::fs::FileType) -> Option<&'static str> {
    if kind.is_file() {
        return None;
    }
    Some(if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tempdir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "lockfair-lockfile-{tag}-{}-{}",
            std::process::id(),
            crate::sys::clock::monotonic_ns()
        ));
        super::super::ensure_private_dir(&dir).unwrap();
        dir
    }

    fn me() -> u32 {
        nix::unistd::geteuid().as_raw()
    }

    #[test]
    fn a_fresh_lock_file_is_ours_and_private() {
        let dir = tempdir("fresh");
        let path = dir.join("x.lock");
        drop(open_checked(&path, me()).unwrap());
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // And it opens again.
        drop(open_checked(&path, me()).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_symlink_a_hard_link_and_a_fifo_are_refused_and_left_alone() {
        let dir = tempdir("planted");
        let victim = dir.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let path = dir.join("x.lock");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let e = open_checked(&path, me()).unwrap_err();
        assert!(matches!(e, LockFileError::Symlink { .. }), "{e}");
        std::fs::remove_file(&path).unwrap();
        std::fs::hard_link(&victim, &path).unwrap();
        let e = open_checked(&path, me()).unwrap_err();
        assert!(matches!(e, LockFileError::HardLink { links: 2, .. }), "{e}");
        assert!(e.to_string().contains("hard link"), "{e}");
        std::fs::remove_file(&path).unwrap();
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = open_checked(&path, me()).unwrap_err();
        assert!(
            matches!(e, LockFileError::NotAFile { kind: "a FIFO", .. }),
            "{e}"
        );
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_of_another_owner_is_refused() {
        let dir = tempdir("owner");
        let path = dir.join("x.lock");
        drop(open_checked(&path, me()).unwrap());
        // Not chown (root only): ask for another owner than the file's.
        let e = open_checked(&path, me() ^ 1).unwrap_err();
        assert!(
            matches!(e, LockFileError::ForeignOwner { owner, .. } if owner == me()),
            "{e}"
        );
        assert!(e.to_string().contains("remove it"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_lock_file_unlinked_after_opening_is_no_hard_link() {
        // The server's lock: a newcomer may open the file just before its holder unlinks it.
        let dir = tempdir("orphan");
        let path = dir.join("x.lock");
        let file = open_checked(&path, me()).unwrap();
        std::fs::remove_file(&path).unwrap();
        check(&file, &path, me()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
