//! `read(2)`, `write(2)`, `pread(2)` and `lseek(2)` as bare syscalls, for the handoffs' eventfds
//! and pipes and the seed's file offset.
//!
//! Through glibc (nix, std) each call also enters and leaves a pthread cancellation point: about
//! 35 instructions per call that lockfair never uses (it cancels no thread), on every turn of an
//! eventfd or pipe handoff (and of the seed, whose turn is the file offset). rustix makes the
//! syscall itself. Same syscall, same kernel work.

use std::os::fd::AsFd;

use nix::errno::Errno;
use rustix::fs::{SeekFrom, seek};

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

/// Reads into `buf` from `offset`, leaving the file offset where it is; the byte count.
#[inline]
pub fn pread(fd: impl AsFd, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
    rustix::io::pread(fd, buf, offset).map_err(super::errno)
}

/// Moves the file offset (shared by everyone holding the open file description) to `offset`.
#[inline]
pub fn seek_to(fd: impl AsFd, offset: u64) -> Result<(), Errno> {
    seek(fd, SeekFrom::Start(offset))
        .map(drop)
        .map_err(super::errno)
}

/// The file offset of the open file description.
#[inline]
pub fn offset(fd: impl AsFd) -> Result<u64, Errno> {
    seek(fd, SeekFrom::Current(0)).map_err(super::errno)
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

    #[test]
    fn the_offset_moves_with_writes_and_seeks_but_not_with_pread() {
        let file =
            crate::sys::memfd::create_sealed("rawio", 64, rustix::fs::SealFlags::empty()).unwrap();
        assert_eq!(write(&file, b"12\n"), Ok(3));
        assert_eq!(offset(&file), Ok(3));
        let mut buf = [0u8; 3];
        assert_eq!(pread(&file, &mut buf, 0), Ok(3));
        assert_eq!((&buf, offset(&file)), (b"12\n", Ok(3)));
        seek_to(&file, 0).unwrap();
        assert_eq!(offset(&file), Ok(0));
    }
}
