//! What a received descriptor really is. A peer can send anything over SCM_RIGHTS (a pipe, a
//! socket, a directory, a file on a FUSE mount whose daemon never answers); we look before we
//! use, and the looking itself must not block: the server does it on its receive loop.
//!
//! So classification never calls `fstat` (a `getattr` on FUSE can wait forever). It reads
//! `/proc/self/fd/N` (a name built from the kernel's own dentry, no filesystem call) and asks
//! `F_GET_SEALS`, which only shmem and hugetlbfs answer, and `F_GETFL`.

use std::fmt;
use std::os::fd::{AsFd, AsRawFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use rustix::fs::{SealFlags, fcntl_get_seals, fstat};

/// The kinds of descriptor lockfair tells apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FdKind {
    /// A memfd (`memfd_create`): its name starts with `/memfd:` and it answers `F_GET_SEALS`.
    Memfd,
    Eventfd,
    /// An anonymous pipe's read end.
    PipeRead,
    /// An anonymous pipe's write end.
    PipeWrite,
    Socket,
    /// Anything else, with what `/proc/self/fd` calls it (a path, `anon_inode:[...]`, ...).
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
            FdKind::Other(name) if name.starts_with('/') => write!(f, "the file {name}"),
            FdKind::Other(name) => write!(f, "{name}"),
        }
    }
}

/// What `/proc/self/fd/N` points to: `/memfd:name (deleted)`, `anon_inode:[eventfd]`, ...
pub fn link_name(fd: impl AsFd) -> Result<String, Errno> {
    let path = format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd());
    std::fs::read_link(path)
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(|e| crate::sys::io_errno(&e))
}

/// Classifies `fd` without reading, writing or stat-ing it.
pub fn classify(fd: impl AsFd) -> Result<FdKind, Errno> {
    let fd = fd.as_fd();
    let link = link_name(fd)?;
    Ok(if link == "anon_inode:[eventfd]" {
        FdKind::Eventfd
    } else if link.starts_with("pipe:[") {
        let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
        if flags & OFlag::O_ACCMODE == OFlag::O_WRONLY {
            FdKind::PipeWrite
        } else {
            FdKind::PipeRead
        }
    } else if link.starts_with("socket:[") {
        FdKind::Socket
    } else if link.starts_with("/memfd:") && seals(fd).is_ok() {
        FdKind::Memfd
    } else {
        FdKind::Other(link)
    })
}

/// The seals on a memfd (`F_GET_SEALS`); `EINVAL` for files that do not support sealing.
pub fn seals(fd: impl AsFd) -> Result<SealFlags, Errno> {
    fcntl_get_seals(fd).map_err(super::errno)
}

/// Size of the file behind `fd`. Only for descriptors [`classify`] called a memfd: `fstat` on
/// shmem never blocks.
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
        assert!(matches!(classify(&f).unwrap(), FdKind::Other(p) if p.starts_with('/')));
        let d = std::fs::File::open("/").unwrap();
        assert_eq!(classify(&d).unwrap(), FdKind::Other("/".into()));
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(classify(&a).unwrap(), FdKind::Socket);
    }
}
