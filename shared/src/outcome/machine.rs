//! The machine a comparison was measured on: placement and clock matter to every number. Part of
//! the result model; `report` renders it.

use std::collections::BTreeMap;
use std::path::Path;

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
    /// How idle CPUs wait, and what a wakeup across CPUs cost: on two CPUs it sets most figures.
    #[serde(default)]
    pub idle: Idle,
}

/// The cpuidle setup, read from sysfs, and what the run measured and did about it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Idle {
    /// The cpuidle driver (`haltpoll` on this project's VMs, `intel_idle` or `acpi_idle` on
    /// metal), or `none` without cpuidle.
    pub driver: String,
    /// The cpuidle governor (`haltpoll`, `menu`, `teo`, `ladder`).
    pub governor: String,
    /// CPU 0's idle states, shallowest first.
    pub states: Vec<IdleState>,
    /// The haltpoll module's parameters (`guest_halt_poll_ns`, …), where it is loaded.
    pub haltpoll: BTreeMap<String, String>,
    /// True if the run held every CPU out of idle (`--hold-idle`).
    pub held_off: bool,
    /// Median cross-CPU wakeup measured before the run (a futex wake to a waiter asleep on
    /// another CPU, its CPU left to idle first), in ns; `None` with fewer than two CPUs.
    pub wakeup_ns: Option<u64>,
}

/// One cpuidle state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdleState {
    pub name: String,
    /// Exit latency, µs, as the driver declares it.
    pub latency_us: u64,
    pub disabled: bool,
}

const CPUIDLE: &str = "/sys/devices/system/cpu/cpuidle";
const CPU0_STATES: &str = "/sys/devices/system/cpu/cpu0/cpuidle";
const HALTPOLL: &str = "/sys/module/haltpoll/parameters";

/// A sysfs file's text, trimmed; empty if it cannot be read.
fn sysfs(path: &Path) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

impl Idle {
    /// Reads the setup from sysfs (the measured figures stay unset).
    pub fn current() -> Idle {
        let driver = sysfs(&Path::new(CPUIDLE).join("current_driver"));
        Idle {
            driver: if driver.is_empty() {
                "none".into()
            } else {
                driver
            },
            governor: ["current_governor", "current_governor_ro"]
                .iter()
                .map(|f| sysfs(&Path::new(CPUIDLE).join(f)))
                .find(|g| !g.is_empty())
                .unwrap_or_else(|| "none".into()),
            states: idle_states(),
            haltpoll: haltpoll_parameters(),
            held_off: false,
            wakeup_ns: None,
        }
    }
}

/// CPU 0's states, in the kernel's order (state0, state1, …).
fn idle_states() -> Vec<IdleState> {
    (0..)
        .map(|i| Path::new(CPU0_STATES).join(format!("state{i}")))
        .take_while(|dir| dir.is_dir())
        .map(|dir| IdleState {
            name: sysfs(&dir.join("name")),
            latency_us: sysfs(&dir.join("latency")).parse().unwrap_or(0),
            disabled: sysfs(&dir.join("disable")) == "1",
        })
        .collect()
}

/// `name = value` for every haltpoll parameter.
fn haltpoll_parameters() -> BTreeMap<String, String> {
    let Ok(entries) = std::fs::read_dir(HALTPOLL) else {
        return BTreeMap::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, sysfs(&e.path()))
        })
        .collect()
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
            idle: Idle::current(),
        }
    }
}

impl Idle {
    /// One line for a reader: driver, governor, states, haltpoll's poll window, the hold.
    pub fn describe(&self) -> String {
        let states: Vec<String> = self
            .states
            .iter()
            .map(|s| {
                let off = if s.disabled { ", disabled" } else { "" };
                format!("{} ({} µs{off})", s.name, s.latency_us)
            })
            .collect();
        let mut line = format!("{} (governor {})", self.driver, self.governor);
        if !states.is_empty() {
            line.push_str(&format!("; states: {}", states.join(", ")));
        }
        if let Some(ns) = self.haltpoll.get("guest_halt_poll_ns") {
            line.push_str(&format!("; haltpoll guest_halt_poll_ns={ns}"));
        }
        line.push_str(if self.held_off {
            "; held out of idle for the run (--hold-idle)"
        } else {
            "; CPUs free to idle"
        });
        line
    }

    /// The measured cross-CPU wakeup, for a reader.
    pub fn wakeup(&self) -> String {
        match self.wakeup_ns {
            Some(ns) => format!(
                "{:.1} µs (median, waiter's CPU idle first)",
                ns as f64 / 1e3
            ),
            None => "not measured (fewer than two CPUs)".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idle_line_names_driver_states_poll_window_and_hold() {
        let idle = Idle {
            driver: "haltpoll".into(),
            governor: "haltpoll".into(),
            states: vec![
                IdleState {
                    name: "POLL".into(),
                    latency_us: 0,
                    disabled: false,
                },
                IdleState {
                    name: "haltpoll idle".into(),
                    latency_us: 1,
                    disabled: true,
                },
            ],
            haltpoll: [("guest_halt_poll_ns".to_string(), "200000".to_string())].into(),
            held_off: true,
            wakeup_ns: Some(41_230),
        };
        assert_eq!(
            idle.describe(),
            "haltpoll (governor haltpoll); states: POLL (0 µs), haltpoll idle (1 µs, disabled); \
             haltpoll guest_halt_poll_ns=200000; held out of idle for the run (--hold-idle)"
        );
        assert_eq!(idle.wakeup(), "41.2 µs (median, waiter's CPU idle first)");
    }

    #[test]
    fn an_old_summary_without_idle_still_reads() {
        let old = r#"{"kernel":"Linux 6.1","cpu_model":"x","online_cpus":2,"allowed_cpus":"0-1","clocksource":"kvm-clock"}"#;
        let m: Machine = serde_json::from_str(old).unwrap();
        assert_eq!(m.idle, Idle::default());
    }

    #[test]
    fn this_machine_reads_without_error() {
        let idle = Idle::current();
        assert!(
            !idle.driver.is_empty() && !idle.governor.is_empty(),
            "{idle:?}"
        );
    }
}
