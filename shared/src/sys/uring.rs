//! Futex waits and wakes through io_uring (`IORING_OP_FUTEX_WAIT` / `IORING_OP_FUTEX_WAKE`,
//! Linux ≥ 6.7), and the probe that says whether this machine can do them.
//!
//! A [`FutexRing`] is one small ring per waiting thread. A wait is a FUTEX_WAIT submission and an
//! `io_uring_enter` that waits for its completion; a wake is a FUTEX_WAKE submission, completed
//! inline during the `io_uring_enter` that submits it. Waits and wakes carry a bitset, so a wake
//! can reach one waiter among several on the same word. The futexes are shared ones (no
//! `FUTEX2_PRIVATE`): the word lives in a mapping several processes share.

use std::path::Path;
use std::sync::atomic::AtomicU32;

use io_uring::{IoUring, Probe, opcode};
use nix::errno::Errno;
use thiserror::Error;

/// `FUTEX2_SIZE_U32`: the futex word is 32 bits (futex2 flags, `include/uapi/linux/futex.h`).
const FUTEX2_SIZE_U32: u32 = 0x02;
/// Every waiter, whatever its bits.
pub const ALL_BITS: u32 = u32::MAX;
/// Where the kernel says whether io_uring may be used (Linux ≥ 6.6; absent before: allowed).
pub const DISABLED_SYSCTL: &str = "/proc/sys/kernel/io_uring_disabled";

const WAIT_TAG: u64 = 1;
const WAKE_TAG: u64 = 2;
/// A wait and a wake in flight at most, with room to spare.
const RING_ENTRIES: u32 = 8;

/// Why io_uring futexes cannot be used here.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum Unavailable {
    #[error(
        "io_uring is disabled ({path} = {value}); set it to 0 (or add this user to kernel.io_uring_group when it is 1)"
    )]
    Disabled { path: String, value: String },
    #[error(
        "io_uring_setup failed: {0} (a kernel without io_uring, or a seccomp/container policy)"
    )]
    Setup(Errno),
    #[error(
        "kernel {release} has no io_uring futex operations (IORING_OP_FUTEX_WAIT needs Linux 6.7)"
    )]
    NoFutexOps { release: String },
}

/// Checks that io_uring futex operations work here, reading the disable switch at `sysctl`
/// (normally [`DISABLED_SYSCTL`]): the switch first, then a ring and a probe of its opcodes.
pub fn probe(sysctl: &Path) -> Result<(), Unavailable> {
    // An unreadable or absent switch means a kernel before 6.6: io_uring is not switched off.
    if let Ok(text) = std::fs::read_to_string(sysctl) {
        let value = text.trim().to_string();
        // 1 lets privileged users (and kernel.io_uring_group) in: setup below tells.
        if value != "0" && value != "1" {
            return Err(Unavailable::Disabled {
                path: sysctl.display().to_string(),
                value,
            });
        }
    }
    let ring = IoUring::new(RING_ENTRIES).map_err(|e| match super::io_errno(&e) {
        Errno::EPERM => match std::fs::read_to_string(sysctl) {
            Ok(value) if value.trim() != "0" => Unavailable::Disabled {
                path: sysctl.display().to_string(),
                value: value.trim().to_string(),
            },
            _ => Unavailable::Setup(Errno::EPERM),
        },
        errno => Unavailable::Setup(errno),
    })?;
    let mut probe = Probe::new();
    let supported = ring.submitter().register_probe(&mut probe).is_ok()
        && probe.is_supported(opcode::FutexWait::CODE)
        && probe.is_supported(opcode::FutexWake::CODE);
    if supported {
        Ok(())
    } else {
        Err(Unavailable::NoFutexOps {
            release: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|r| r.trim().to_string())
                .unwrap_or_else(|_| "?".into()),
        })
    }
}

/// One thread's ring for futex waits and wakes.
pub struct FutexRing {
    ring: IoUring,
    /// A FUTEX_WAIT submitted whose completion has not been seen: the next wait waits for it
    /// instead of submitting another.
    waiting: bool,
    /// What the in-flight wait completed with, once it did.
    waited: Option<i32>,
    /// A wake that failed, reported by the next call.
    wake_failed: Option<Errno>,
}

impl std::fmt::Debug for FutexRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FutexRing")
            .field("waiting", &self.waiting)
            .finish_non_exhaustive()
    }
}

impl FutexRing {
    /// A fresh ring.
    pub fn new() -> Result<FutexRing, Errno> {
        let ring = IoUring::new(RING_ENTRIES).map_err(|e| super::io_errno(&e))?;
        Ok(FutexRing {
            ring,
            waiting: false,
            waited: None,
            wake_failed: None,
        })
    }

    /// Sleeps while `*word == expected`, until a wake whose bits meet `bits`. `Ok` after a wake
    /// (maybe spurious: re-check the word), `EAGAIN` if the word already differed, `EINTR` when a
    /// signal interrupted the wait (it stays queued: the next call waits for it, whatever
    /// `expected` it is given).
    pub fn wait(&mut self, word: &AtomicU32, expected: u32, bits: u32) -> Result<(), Errno> {
        self.take_wake_error()?;
        if !self.waiting {
            let sqe = opcode::FutexWait::new(
                word.as_ptr().cast_const(),
                u64::from(expected),
                u64::from(bits),
                FUTEX2_SIZE_U32,
            )
            .build()
            .user_data(WAIT_TAG);
            self.push(&sqe)?;
            self.waiting = true;
        }
        loop {
            self.ring
                .submit_and_wait(1)
                .map_err(|e| super::io_errno(&e))?;
            let reaped = self.reap();
            if let Some(res) = self.waited.take() {
                return if res < 0 {
                    Err(Errno::from_raw(-res))
                } else {
                    Ok(())
                };
            }
            if reaped == 0 {
                // Back without any completion: a signal came after the submission.
                return Err(Errno::EINTR);
            }
        }
    }

    /// Wakes up to `count` waiters on `word` whose bits meet `bits`.
    pub fn wake(&mut self, word: &AtomicU32, count: u32, bits: u32) -> Result<(), Errno> {
        self.take_wake_error()?;
        let sqe = opcode::FutexWake::new(
            word.as_ptr().cast_const(),
            u64::from(count),
            u64::from(bits),
            FUTEX2_SIZE_U32,
        )
        .build()
        .user_data(WAKE_TAG);
        self.push(&sqe)?;
        loop {
            match self.ring.submit() {
                Ok(_) => break,
                Err(e) if super::io_errno(&e) == Errno::EINTR => continue,
                Err(e) => return Err(super::io_errno(&e)),
            }
        }
        // Wakes complete inline: collect the result now, so the queue never fills up.
        self.reap();
        self.take_wake_error()
    }

    fn push(&mut self, sqe: &io_uring::squeue::Entry) -> Result<(), Errno> {
        // Make room: completions left from earlier calls.
        self.reap();
        // SAFETY: a futex SQE carries only the word's address, which the kernel reads when it
        // issues the request, during the io_uring_enter that the caller makes next; the word is
        // in a mapping that outlives this ring's use of it (the caller's `&AtomicU32`), a queued
        // futex wait keeps the futex's key, not the pointer, and the kernel never writes there.
        unsafe { self.ring.submission().push(sqe) }.map_err(|_| Errno::EBUSY)
    }

    /// Takes every completion; returns how many there were.
    fn reap(&mut self) -> usize {
        let mut n = 0;
        for cqe in self.ring.completion() {
            n += 1;
            match cqe.user_data() {
                WAIT_TAG => {
                    self.waiting = false;
                    self.waited = Some(cqe.result());
                }
                _ if cqe.result() < 0 => self.wake_failed = Some(Errno::from_raw(-cqe.result())),
                _ => {}
            }
        }
        n
    }

    fn take_wake_error(&mut self) -> Result<(), Errno> {
        self.wake_failed.take().map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disabled_switch_is_refused_with_its_path_and_value() {
        let dir = std::env::temp_dir().join(format!("lockfair-uring-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("io_uring_disabled");
        std::fs::write(&path, "2\n").unwrap();
        let err = probe(&path).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            err,
            Unavailable::Disabled {
                path: path.display().to_string(),
                value: "2".into()
            }
        );
        let line = err.to_string();
        assert!(
            !line.contains('\n') && line.contains("io_uring_disabled = 2"),
            "{line}"
        );
    }

    #[test]
    fn a_wait_on_a_changed_word_returns_eagain_and_a_wake_finds_nobody() {
        if probe(Path::new(DISABLED_SYSCTL)).is_err() {
            return; // Nothing to exercise on this kernel; the refusal is tested above.
        }
        let word = AtomicU32::new(5);
        let mut ring = FutexRing::new().unwrap();
        assert_eq!(ring.wait(&word, 4, ALL_BITS), Err(Errno::EAGAIN));
        assert_eq!(ring.wake(&word, 1, ALL_BITS), Ok(()));
    }
}
