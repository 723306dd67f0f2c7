//! A `MAP_SHARED` mapping of a file, and typed access to the structures inside it.
//!
//! The arena is shared memory written by another (untrusted) process at any moment, so the only
//! types we ever place in it are made of atomics: every bit pattern is a valid value, and
//! concurrent access from both sides is defined behaviour.

use std::ffi::c_void;
use std::num::NonZeroUsize;
use std::os::fd::AsFd;
use std::ptr::NonNull;

use nix::errno::Errno;
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};
use rustix::fs::SealFlags;

/// A type that may live in memory another process writes concurrently.
///
/// # Safety
/// Implementors must be `#[repr(C)]`, contain only atomics (or arrays of them), and accept every
/// bit pattern as a valid value.
pub unsafe trait SharedAtomics: Sync {}

// SAFETY: `#[repr(C)]`, only atomics and arrays of atomics: every bit pattern is valid.
unsafe impl SharedAtomics for crate::arena::Header {}
// SAFETY: as for `Header`.
unsafe impl SharedAtomics for crate::arena::Slot {}
// SAFETY: an array of atomics: every bit pattern is valid, concurrent access is defined.
unsafe impl<const N: usize> SharedAtomics for [std::sync::atomic::AtomicU64; N] {}

/// An owned `MAP_SHARED`, read-write mapping; unmapped on drop.
#[derive(Debug)]
pub struct SharedMapping {
    addr: NonNull<c_void>,
    len: usize,
}

// SAFETY: the mapping is plain memory; all access goes through `SharedAtomics` references.
unsafe impl Send for SharedMapping {}
// SAFETY: as above; shared references only hand out atomics.
unsafe impl Sync for SharedMapping {}

impl SharedMapping {
    /// Maps the first `len` bytes of `fd` read-write and shared.
    ///
    /// Only a file sealed with `F_SEAL_SHRINK` and at least `len` bytes long is accepted
    /// (`EINVAL` otherwise, `EINVAL` too for files that cannot be sealed): a file that could
    /// shrink under the mapping would turn a read of it into SIGBUS.
    pub fn map(fd: impl AsFd, len: usize) -> Result<Self, Errno> {
        let nz = NonZeroUsize::new(len).ok_or(Errno::EINVAL)?;
        if !super::fdkind::seals(&fd)?.contains(SealFlags::SHRINK)
            || super::fdkind::size(&fd)? < len as u64
        {
            return Err(Errno::EINVAL);
        }
        // SAFETY: a fresh mapping at an address the kernel chooses; it aliases no Rust object.
        let addr = unsafe {
            mmap(
                None,
                nz,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                fd,
                0,
            )?
        };
        Ok(Self { addr, len })
    }

    /// A reference to the `T` at `offset`, or `None` if it would not fit or is misaligned.
    pub fn get<T: SharedAtomics>(&self, offset: usize) -> Option<&T> {
        let end = offset.checked_add(size_of::<T>())?;
        if end > self.len || !(self.addr.as_ptr() as usize + offset).is_multiple_of(align_of::<T>())
        {
            return None;
        }
        // SAFETY: in bounds and aligned (checked above); `T: SharedAtomics` accepts any bits and
        // tolerates concurrent writers; the reference cannot outlive `self`, hence the mapping.
        Some(unsafe { &*self.addr.as_ptr().cast::<u8>().add(offset).cast::<T>() })
    }
}

impl Drop for SharedMapping {
    fn drop(&mut self) {
        // SAFETY: `addr`/`len` are exactly what mmap returned, and no reference into the mapping
        // can outlive `self`.
        let _ = unsafe { munmap(self.addr, self.len) };
    }
}
