//! A `MAP_SHARED` mapping of a file, and typed access to the structures inside it.
//!
//! The arena is shared memory written by another (untrusted) process at any moment, so the only
//! types we ever place in it are made of atomics: every bit pattern is a valid value, and
//! concurrent access from both sides is defined behaviour.

use std::ffi::c_void;
use std::num::NonZeroUsize;
use std::os::fd::AsFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU8, AtomicU16, AtomicU32, AtomicU64};

use nix::errno::Errno;
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};
use rustix::fs::SealFlags;

/// A type that may live in memory another process writes concurrently.
///
/// Implemented here for the atomic integers and arrays of them, and for structures declared with
/// `shared_atomics!`, which checks at compile time that every field is one of those. The crate
/// above names its structures through that macro and never implements this trait itself: `sys`
/// knows no lockfair type, and every `unsafe impl` stays in this file.
///
/// # Safety
/// Every bit pattern must be a valid value, and concurrent writes from another process must be
/// defined behaviour: the type is made only of atomic integers (interior mutability, no
/// invalid values) and no pointers.
pub unsafe trait SharedAtomics: Sync {}

macro_rules! atomic_integers {
    ($($t:ty),*) => {$(
        // SAFETY: an atomic integer accepts every bit pattern, and is written through `&self`.
        unsafe impl SharedAtomics for $t {}
    )*};
}
atomic_integers!(
    AtomicU8, AtomicU16, AtomicU32, AtomicU64, AtomicI32, AtomicI64
);

// SAFETY: an array adds no invalid values and no padding to its elements.
unsafe impl<T: SharedAtomics, const N: usize> SharedAtomics for [T; N] {}

/// Declares a `#[repr(C)]` structure that may be placed in shared memory, and implements
/// [`SharedAtomics`] for it after proving, at compile time, that every field's type implements
/// it too (atomic integers, arrays of them, or another such structure).
///
/// The structure takes no generics, and the macro adds `#[repr(C)]` itself (callers may add an
/// alignment with a second `#[repr(align(N))]`; a `packed` one stays sound, as Rust refuses a
/// reference to its misaligned fields). So the only types it can vouch for are made of atomics
/// all the way down: the `unsafe impl` it writes rests on the field check it writes beside it.
///
/// The impl carries `#[allow(unsafe_code)]` because it expands where the structure is declared,
/// outside `sys`, where the workspace denies unsafe code: the exemption covers this one impl,
/// whose text (and safety argument) lives here, and nothing else in the caller's module.
macro_rules! shared_atomics {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$fmeta:meta])* $fvis:vis $field:ident : $fty:ty),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        $vis struct $name {
            $($(#[$fmeta])* $fvis $field: $fty),*
        }

        const _: () = {
            const fn field_is_shared_atomics<T: $crate::sys::mapping::SharedAtomics>() {}
            $(field_is_shared_atomics::<$fty>();)*
        };

        // SAFETY: `#[repr(C)]`, no generics, and every field's type implements `SharedAtomics`
        // (checked by the const block above), so every bit pattern of the whole is valid and
        // concurrent writes to it are atomic writes.
        #[allow(unsafe_code)]
        unsafe impl $crate::sys::mapping::SharedAtomics for $name {}
    };
}
pub(crate) use shared_atomics;

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
