//! Asking the CPU for a cache line before it is needed.

use std::sync::atomic::AtomicU64;

/// Starts fetching `word`'s cache line in exclusive state (`prefetchw`), so that a write to it
/// soon after does not wait for the line's ownership to move from another CPU. Only a hint: it
/// never faults and changes no value; x86 CPUs without the instruction run it as a NOP (its
/// opcode sits in the reserved-NOP space; Intel has it since Broadwell, AMD since the K6-2).
pub fn for_write(word: &AtomicU64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetchw` reads no register but the address, writes no memory, flags or stack,
    // and cannot fault; `word` is a live reference besides.
    unsafe {
        std::arch::asm!(
            "prefetchw [{0}]",
            in(reg) word.as_ptr(),
            options(nostack, preserves_flags, readonly)
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = word;
}
