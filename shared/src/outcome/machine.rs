//! The machine a comparison was measured on: placement and clock matter to every number. Part of
//! the result model; `report` renders it.

use serde::{Deserialize, Serialize};

use crate::placement::{allowed_cpus, format_cpus};

/// What a reader needs to know about where the numbers came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// `uname -sr`.
    pub kernel: String,
    /// The first `model name` in /proc/cpuinfo.
    pub cpu_model: String,
    /// CPUs online on the machine.
    pub online_cpus: usize,
    /// CPUs this process may use (a cgroup cpuset or taskset can allow fewer).
    pub allowed_cpus: String,
    /// The kernel's clocksource (CLOCK_MONOTONIC's cost and resolution depend on it).
    pub clocksource: String,
}

impl Machine {
    /// Reads it from the running system.
    pub fn current() -> Machine {
        let uts = nix::sys::utsname::uname().ok();
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Machine {
            kernel: uts
                .map(|u| {
                    format!(
                        "{} {}",
                        u.sysname().to_string_lossy(),
                        u.release().to_string_lossy()
                    )
                })
                .unwrap_or_default(),
            cpu_model: cpuinfo
                .lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_else(|| "unknown".into()),
            online_cpus: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(0)
                .max(
                    cpuinfo
                        .lines()
                        .filter(|l| l.starts_with("processor"))
                        .count(),
                ),
            allowed_cpus: format_cpus(allowed_cpus()),
            clocksource: std::fs::read_to_string(
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            )
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into()),
        }
    }
}
