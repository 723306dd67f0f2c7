//! What a received descriptor really is. A peer can send anything over SCM_RIGHTS (a pipe, a
//! socket, a directory, a FUSE file that blocks forever); we look before we use.

use std::fmt;
use std::os::fd::{AsFd, AsRawFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use rustix::fs::{FileType, SealFlags, fcntl_get_seals, fstat};

/// The kinds of descriptor lockfair tells apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FdKind {
    /// A memfd (tmpfs file from `memfd_create`).
    Memfd,
    Eventfd,
    PipeRead,
    PipeWrite,
    Socket,
    RegularFile,
    Directory,
    /// Anything else, with what `/proc/self/fd` calls it.
    Other(String),
}

impl fmt::Display for FdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FdKind::Memfd => f.write_str("a memfd"),
            FdKind::Eventfd => f.write_str("an eventfd"),
            FdKind::PipeRead => f.write_str("a pipe's read end"),
            FdKind::PipeWrite => f.write_str("a pipe's write end"),
            FdKind::Socket => f.write_str("a socket"),
            FdKind::RegularFile => f.write_str("a regular file"),
            FdKind::Directory => f.write_str("a directory"),
            FdKind::Other(name) => write!(f, "{name}"),
        }
    }
}

/// What `/proc/self/fd/N` points to: `/memfd:name (deleted)`, `anon_inode:[eventfd]`, ...
pub fn link_name(fd: impl AsFd) -> Result<String, Errno> {
    let path = format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd());
    std::fs::read_link(path)
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))
}

/// Classifies `fd` without reading from or writing to it.
pub fn classify(fd: impl AsFd) -> Result<FdKind, Errno> {
    let fd = fd.as_fd();
    let stat = fstat(fd).map_err(super::errno)?;
    let link = link_name(fd)?;
    Ok(match FileType::from_raw_mode(stat.st_mode) {
        FileType::Fifo => {
            let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
            if flags & OFlag::O_ACCMODE == OFlag::O_WRONLY {
                FdKind::PipeWrite
            } else {
                FdKind::PipeRead
            }
        }
        FileType::Socket => FdKind::Socket,
        FileType::Directory => FdKind::Directory,
        FileType::RegularFile if link.starts_with("/memfd:") && seals(fd).is_ok() => FdKind::Memfd,
        FileType::RegularFile => FdKind::RegularFile,
        _ if link == "anon_inode:[eventfd]" => FdKind::Eventfd,
        _ => FdKind::Other(link),
    })
}

/// The seals on a memfd (`F_GET_SEALS`); `EINVAL` for files that do not support sealing.
pub fn seals(fd: impl AsFd) -> Result<SealFlags, Errno> {
    fcntl_get_seals(fd).map_err(super::errno)
}

/// Size of the file behind `fd`.
pub fn size(fd: impl AsFd) -> Result<u64, Errno> {
    Ok(fstat(fd).map_err(super::errno)?.st_size as u64)
}

/// Turns a received descriptor into an `EventFd` after checking that it is one.
pub fn into_eventfd(fd: std::os::fd::OwnedFd) -> Result<nix::sys::eventfd::EventFd, Errno> {
    if classify(&fd)? != FdKind::Eventfd {
        return Err(Errno::EINVAL);
    }
    // SAFETY: `classify` just confirmed that `fd` is an eventfd, and we own it.
    Ok(unsafe { nix::sys::eventfd::EventFd::from_owned_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_the_common_kinds_apart() {
        let m = memfd::MemfdOptions::default()
            .allow_sealing(true)
            .create("k")
            .unwrap();
        assert_eq!(classify(m.as_file()).unwrap(), FdKind::Memfd);
        let e = nix::sys::eventfd::EventFd::new().unwrap();
        assert_eq!(classify(&e).unwrap(), FdKind::Eventfd);
        let (r, w) = nix::unistd::pipe().unwrap();
        assert_eq!(classify(&r).unwrap(), FdKind::PipeRead);
        assert_eq!(classify(&w).unwrap(), FdKind::PipeWrite);
        let f = std::fs::File::open("/proc/self/exe").unwrap();
        assert_eq!(classify(&f).unwrap(), FdKind::RegularFile);
        let d = std::fs::File::open("/").unwrap();
        assert_eq!(classify(&d).unwrap(), FdKind::Directory);
    }
}
