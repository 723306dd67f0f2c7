//! The calling thread's nice value. Linux keeps nice per thread: `setpriority(PRIO_PROCESS, 0)`
//! changes only the caller, which is what a session thread in a server running several wants.

use nix::errno::Errno;
use rustix::process::{getpriority_process, setpriority_process};

/// The lowest (most favoured) and highest nice values.
pub const NICE_RANGE: std::ops::RangeInclusive<i32> = -20..=19;

/// The calling thread's nice value.
pub fn thread_nice() -> Result<i32, Errno> {
    getpriority_process(None).map_err(super::errno)
}

/// Sets the calling thread's nice value (lowering it needs CAP_SYS_NICE: `EACCES` otherwise).
pub fn set_thread_nice(nice: i32) -> Result<(), Errno> {
    setpriority_process(None, nice).map_err(super::errno)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_raises_its_own_nice_and_reads_it_back_without_touching_the_others() {
        let before = thread_nice().unwrap();
        let seen = std::thread::spawn(|| {
            set_thread_nice(7).unwrap();
            thread_nice().unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(seen, 7);
        assert_eq!(thread_nice().unwrap(), before);
    }
}
