//! CPU affinity: which CPUs this process may really use (a cgroup cpuset can allow fewer than
//! `nproc`), pinning the calling thread, and asking where it runs.

use nix::errno::Errno;
use nix::sched::{CpuSet, sched_getaffinity, sched_getcpu, sched_setaffinity};
use nix::unistd::Pid;

/// The CPUs the calling thread is allowed to run on, in ascending order.
pub fn allowed_cpus() -> Result<Vec<usize>, Errno> {
    let set = sched_getaffinity(Pid::from_raw(0))?;
    Ok((0..CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .collect())
}

/// Restricts the calling thread (not the whole process) to `cpus`.
pub fn pin_current_thread(cpus: &[usize]) -> Result<(), Errno> {
    let mut set = CpuSet::new();
    for &cpu in cpus {
        set.set(cpu)?;
    }
    sched_setaffinity(Pid::from_raw(0), &set)
}

/// The CPU the calling thread is running on right now.
pub fn current_cpu() -> Result<usize, Errno> {
    sched_getcpu()
}
