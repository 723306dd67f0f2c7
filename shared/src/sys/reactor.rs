//! Registering a descriptor with tokio's reactor (must run inside a tokio runtime).

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use tokio::io::unix::AsyncFd;

/// Wraps an owned descriptor in an `AsyncFd`.
pub fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an `OwnedFd` is open for its whole life and `as_raw_fd` always returns the same
    // number, which is what `register` requires; the AsyncFd owns it from here on.
    unsafe { AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)
}

/// Wraps a borrowed descriptor in an `AsyncFd` that cannot outlive the borrow.
pub fn register_borrowed(fd: BorrowedFd<'_>) -> io::Result<AsyncFd<BorrowedFd<'_>>> {
    // SAFETY: the borrow keeps the descriptor open, and the same number, for as long as the
    // AsyncFd (which holds the borrow) exists.
    unsafe { AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)
}
