//! `read(2)` and `write(2)` as bare syscalls, for the handoffs' eventfds and pipes.
//!
//! Through glibc (nix, std) each call also enters and leaves a pthread cancellation point: about
//! 35 instructions per call that lockfair never uses (it cancels no thread), on every turn of an
//! eventfd or pipe handoff. rustix makes the syscall itself. Same syscall, same kernel work.

use std::os::fd::AsFd;

use nix::errno::Errno;

/// Reads into `buf`; the byte count (0 at end of file).
#[inline]
pub fn read(fd: impl AsFd, buf: &mut [u8]) -> Result<usize, Errno> {
    rustix::io::read(fd, buf).map_err(super::errno)
}

/// Writes `buf`; the byte count.
#[inline]
pub fn write(fd: impl AsFd, buf: &[u8]) -> Result<usize, Errno> {
    rustix::io::write(fd, buf).map_err(super::errno)
}

/// Reads an eventfd's 8-byte counter (blocking until it is non-zero, unless non-blocking).
#[inline]
pub fn eventfd_read(fd: impl AsFd) -> Result<u64, Errno> {
    let mut value = [0u8; 8];
    read(fd, &mut value)?;
    Ok(u64::from_ne_bytes(value))
}

/// Adds `value` to an eventfd's counter.
#[inline]
pub fn eventfd_write(fd: impl AsFd, value: u64) -> Result<(), Errno> {
    write(fd, &value.to_ne_bytes()).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::eventfd::{EfdFlags, EventFd};

    #[test]
    fn eventfd_counts_through_bare_syscalls() {
        let efd = EventFd::from_value_and_flags(0, EfdFlags::EFD_NONBLOCK).unwrap();
        assert_eq!(eventfd_read(&efd), Err(Errno::EAGAIN));
        eventfd_write(&efd, 2).unwrap();
        eventfd_write(&efd, 3).unwrap();
        assert_eq!(eventfd_read(&efd), Ok(5));
    }

    #[test]
    fn a_pipe_carries_a_byte_and_then_reports_end_of_file() {
        let (r, w) = nix::unistd::pipe().unwrap();
        assert_eq!(write(&w, b"t"), Ok(1));
        drop(w);
        let mut b = [0u8; 1];
        assert_eq!(read(&r, &mut b), Ok(1));
        assert_eq!(&b, b"t");
        assert_eq!(read(&r, &mut b), Ok(0));
    }
}
