//! Registering a descriptor with tokio's reactor.

use std::io;
use std::os::fd::OwnedFd;

use tokio::io::unix::AsyncFd;

/// Wraps `fd` in an `AsyncFd` (must run inside a tokio runtime).
pub fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an `OwnedFd` is open for its whole life and `as_raw_fd` always returns the same
    // number, which is what `register` requires; the AsyncFd owns it from here on.
    unsafe { AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)
}
