//! One server per socket path, atomically: an exclusive `flock` on `<socket>.lock`, taken before
//! the stale-socket check and the bind and held for the server's whole life.
//!
//! Probing the socket and then binding it are two steps; two servers started at the same instant
//! could both find the path free. The lock makes the pair one step: whoever holds it owns the
//! path. The holder writes its pid into the file so a second server can say who serves.
//!
//! Leaving no lock file behind without racing a newcomer: the holder unlinks the file only while
//! it still holds the lock, and whoever locks re-checks that the file it locked is still the one
//! at the path (a newcomer that opened the file just before the holder unlinked it locks an
//! orphan, notices, and tries again on a fresh file).
//!
//! The socket's directory is writable by us (or root) alone, so nobody else can make the file;
//! it is still checked on its descriptor before it is locked, read or truncated (ours, regular,
//! one name: see [`crate::runtime_dir::lock_file`]), so a file planted before that rule is
//! refused rather than held, believed or wiped.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::unistd::geteuid;

use super::socket_path::SocketPathError;
use crate::runtime_dir::lock_file::open_checked;
use crate::runtime_dir::lock_path;
use crate::sys::locks::{LockMode, Wait, flock};

/// How often a newcomer retries when the file it locked was unlinked under it.
const ATTEMPTS: usize = 20;

/// The held lock on `<socket>.lock`; unlinks the file and releases the lock on drop.
#[derive(Debug)]
pub struct ServerLock {
    file: File,
    path: PathBuf,
}

impl ServerLock {
    /// Takes the lock for `socket`, or says which server holds it.
    pub fn acquire(socket: &Path) -> Result<ServerLock, SocketPathError> {
        let path = lock_path(socket);
        let io = |what| {
            let path = path.clone();
            move |err| SocketPathError::Io { what, path, err }
        };
        for _ in 0..ATTEMPTS {
            let mut file = open_checked(&path, geteuid().as_raw())?;
            match flock(&file, Some(LockMode::Exclusive), Wait::NoWait) {
                Ok(()) => {}
                Err(Errno::EWOULDBLOCK) => {
                    return Err(SocketPathError::AlreadyServing {
                        path: socket.to_path_buf(),
                        pid: holder_pid(&mut file),
                    });
                }
                Err(e) => return Err(io("lock")(std::io::Error::from(e))),
            }
            if !still_at_path(&file, &path) {
                continue;
            }
            file.set_len(0).map_err(io("write the lock file"))?;
            write!(file, "{}", std::process::id()).map_err(io("write the lock file"))?;
            return Ok(ServerLock { file, path });
        }
        Err(io("lock")(std::io::Error::from(Errno::EAGAIN)))
    }
}

/// The file we hold is the one the path names (the previous holder did not unlink it after we
/// opened it).
fn still_at_path(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(ours), Ok(there)) => (ours.dev(), ours.ino()) == (there.dev(), there.ino()),
        _ => false,
    }
}

/// The pid the holder wrote, if it has written one yet.
fn holder_pid(file: &mut File) -> Option<i32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok().filter(|&pid: &i32| pid > 0)
}

impl Drop for ServerLock {
    fn drop(&mut self) {
        // Still holding the lock: nobody else can be between their lock and their re-check with
        // this file as the one at the path.
        if still_at_path(&self.file, &self.path) {
            let _ = fs::remove_file(&self.path);
        }
    }
}
