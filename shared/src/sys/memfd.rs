//! Sealed memfds: create one with a size and seals, and check a received one before mapping or
//! writing it. The arena and the compat mode's memfd differ only in size and in what they do
//! with it; the syscalls and the checks are these.

use std::fs::File;
use std::os::fd::AsFd;

use nix::errno::Errno;
use rustix::fs::{MemfdFlags, fcntl_add_seals, ftruncate, memfd_create};

/// The seals a memfd carries (`F_ADD_SEALS`, `F_GET_SEALS`), as the rest of the crate names them.
pub use rustix::fs::SealFlags;
use thiserror::Error;

use super::fdkind::{self, FdKind};

/// A step of [`create_sealed`] failed.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("cannot {step} the memfd")]
pub struct CreateError {
    /// `create`, `size` or `seal`.
    pub step: &'static str,
    #[source]
    pub errno: Errno,
}

/// What is wrong with a memfd received from another process.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SealError {
    #[error("it is {0}, not a memfd")]
    NotMemfd(FdKind),
    #[error("it lacks seals {missing:?} (it has {have:?})")]
    MissingSeals { have: SealFlags, missing: SealFlags },
    #[error("it is write-sealed")]
    WriteSealed,
    #[error("cannot {what} it")]
    Sys {
        what: &'static str,
        #[source]
        errno: Errno,
    },
}

/// Creates a close-on-exec memfd named `name`, `size` bytes long, carrying `seals`.
///
/// Sealed before anyone maps it: with `SealFlags::SHRINK` among `seals`, no mapping of it can
/// ever lose its pages (a read would SIGBUS).
pub fn create_sealed(name: &str, size: u64, seals: SealFlags) -> Result<File, CreateError> {
    let step = |step| {
        move |e| CreateError {
            step,
            errno: super::errno(e),
        }
    };
    let fd = memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .map_err(step("create"))?;
    ftruncate(&fd, size).map_err(step("size"))?;
    fcntl_add_seals(&fd, seals).map_err(step("seal"))?;
    Ok(File::from(fd))
}

/// Checks, without reading, writing or mapping it, that `fd` is a memfd carrying at least
/// `required` seals and no write seal; returns its size.
///
/// Safe on any descriptor a peer sent: [`fdkind::classify`] never calls into a filesystem, and
/// `fstat` runs only once the descriptor is known to be shmem.
pub fn check_sealed(fd: impl AsFd, required: SealFlags) -> Result<u64, SealError> {
    let fd = fd.as_fd();
    let sys = |what| move |errno| SealError::Sys { what, errno };
    let kind = fdkind::classify(fd).map_err(sys("inspect"))?;
    if kind != FdKind::Memfd {
        return Err(SealError::NotMemfd(kind));
    }
    let have = fdkind::seals(fd).map_err(sys("read the seals of"))?;
    if !have.contains(required) {
        return Err(SealError::MissingSeals {
            have,
            missing: required.difference(have),
        });
    }
    if have.intersects(SealFlags::WRITE | SealFlags::FUTURE_WRITE) {
        return Err(SealError::WriteSealed);
    }
    fdkind::size(fd).map_err(sys("stat"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEALS: SealFlags = SealFlags::SHRINK
        .union(SealFlags::GROW)
        .union(SealFlags::SEAL);

    #[test]
    fn a_created_memfd_passes_the_check_with_its_size() {
        let f = create_sealed("t", 8192, SEALS).unwrap();
        assert_eq!(check_sealed(&f, SEALS).unwrap(), 8192);
        assert_eq!(
            f.set_len(4096).unwrap_err().raw_os_error(),
            Some(Errno::EPERM as i32)
        );
    }

    #[test]
    fn missing_and_write_seals_are_named() {
        let f = create_sealed("t", 64, SealFlags::GROW).unwrap();
        assert_eq!(
            check_sealed(&f, SEALS).unwrap_err(),
            SealError::MissingSeals {
                have: SealFlags::GROW,
                missing: SealFlags::SHRINK | SealFlags::SEAL
            }
        );
        let w = create_sealed("t", 64, SEALS | SealFlags::WRITE).unwrap();
        assert_eq!(check_sealed(&w, SEALS).unwrap_err(), SealError::WriteSealed);
        let (r, _w) = nix::unistd::pipe().unwrap();
        assert_eq!(
            check_sealed(&r, SEALS).unwrap_err(),
            SealError::NotMemfd(FdKind::PipeRead)
        );
    }
}
