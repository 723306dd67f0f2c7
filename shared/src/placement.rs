//! Where the contenders run. Placement changes lock handoff by orders of magnitude (on one CPU a
//! woken waiter cannot run until the holder's time slice ends), so every report names it, and an
//! impossible placement is skipped with a reason rather than faked.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The three placements lockfair compares.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// Every contender pinned to the same CPU.
    SameCpu,
    /// Each contender pinned to a CPU of its own.
    Split,
    /// No pinning: the scheduler decides.
    Free,
}

impl Placement {
    /// All placements, in report order.
    pub const ALL: [Placement; 3] = [Placement::SameCpu, Placement::Split, Placement::Free];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Placement::SameCpu => "same-cpu",
            Placement::Split => "split",
            Placement::Free => "free",
        }
    }

    /// The CPU for each of `contenders` contenders (`None`: unpinned), drawn from `allowed`.
    pub fn assign(
        self,
        allowed: &[usize],
        contenders: usize,
    ) -> Result<Vec<Option<usize>>, PlacementError> {
        let Some(&first) = allowed.first() else {
            // An empty list is what `allowed_cpus` falls back to when it could not read the
            // affinity: say that, not "no CPU".
            return Err(match affinity_error() {
                Some(errno) => PlacementError::Affinity(errno),
                None => PlacementError::NoCpus,
            });
        };
        match self {
            Placement::SameCpu => Ok(vec![Some(first); contenders]),
            Placement::Free => Ok(vec![None; contenders]),
            Placement::Split if allowed.len() >= contenders => {
                Ok(allowed[..contenders].iter().map(|&c| Some(c)).collect())
            }
            Placement::Split => Err(PlacementError::TooFewCpus {
                need: contenders,
                allowed: format_cpus(allowed),
            }),
        }
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a placement cannot be honoured on this machine.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PlacementError {
    #[error("this process may not run on any CPU")]
    NoCpus,
    #[error("cannot read which CPUs this process may use (sched_getaffinity)")]
    Affinity(#[source] nix::errno::Errno),
    #[error(
        "split placement needs {need} CPUs, one per contender, but this process may use only CPU {allowed}"
    )]
    TooFewCpus { need: usize, allowed: String },
}

/// "0-3,6" style list of CPU numbers.
pub fn format_cpus(cpus: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        let mut end = start;
        while i + 1 < cpus.len() && cpus[i + 1] == end + 1 {
            i += 1;
            end = cpus[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(",")
}

static ALLOWED: std::sync::OnceLock<Result<Vec<usize>, nix::errno::Errno>> =
    std::sync::OnceLock::new();

fn allowed() -> &'static Result<Vec<usize>, nix::errno::Errno> {
    ALLOWED.get_or_init(crate::sys::cpu::allowed_cpus)
}

/// The CPUs this process may use, read once (call it at start-up, before anything is pinned: a
/// pinned thread only sees its own CPU). Empty if the affinity could not be read; then
/// [`Placement::assign`] fails with [`PlacementError::Affinity`], which says why.
pub fn allowed_cpus() -> &'static [usize] {
    allowed().as_deref().unwrap_or_default()
}

/// Why [`allowed_cpus`] is empty, if reading the affinity failed.
pub fn affinity_error() -> Option<nix::errno::Errno> {
    allowed().as_ref().err().copied()
}

/// Pins the calling thread to `cpu`, or with `None` lets it run on every allowed CPU again
/// (a pooled thread may still carry an earlier session's pin).
pub fn pin_current_thread(cpu: Option<usize>) -> Result<(), nix::errno::Errno> {
    match cpu {
        Some(cpu) => crate::sys::cpu::pin_current_thread(&[cpu]),
        None => crate::sys::cpu::pin_current_thread(allowed_cpus()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_needs_a_cpu_per_contender() {
        assert_eq!(
            Placement::Split.assign(&[0, 1], 2).unwrap(),
            vec![Some(0), Some(1)]
        );
        let err = Placement::Split.assign(&[3], 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "split placement needs 2 CPUs, one per contender, but this process may use only CPU 3"
        );
        assert_eq!(
            Placement::SameCpu.assign(&[2, 5], 3).unwrap(),
            vec![Some(2); 3]
        );
        assert_eq!(Placement::Free.assign(&[0], 2).unwrap(), vec![None, None]);
    }

    #[test]
    fn an_unreadable_affinity_names_its_cause() {
        let err = PlacementError::Affinity(nix::errno::Errno::EPERM);
        assert!(err.to_string().contains("sched_getaffinity"), "{err}");
        assert_eq!(
            std::error::Error::source(&err).map(|s| s.to_string()),
            Some(nix::errno::Errno::EPERM.to_string())
        );
        // On this machine the affinity is readable, so an empty list means no CPU at all.
        assert_eq!(affinity_error(), None);
        assert_eq!(
            Placement::Free.assign(&[], 1).unwrap_err(),
            PlacementError::NoCpus
        );
    }

    #[test]
    fn cpu_lists_are_compact() {
        assert_eq!(format_cpus(&[0, 1, 2, 3, 6, 8, 9]), "0-3,6,8-9");
        assert_eq!(format_cpus(&[]), "");
    }
}
