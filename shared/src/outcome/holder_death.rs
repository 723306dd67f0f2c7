//! What the holder-death experiment ([`crate::crash`]) found: one answer per cell. The types
//! live here, below the code that runs the experiment and the code that renders it, so a
//! `compare --crash` report can carry them ([`CompareReport::holder_death`](super::CompareReport)).
//! The field names are `crash --json`'s interface: keep them.

use serde::{Deserialize, Serialize};

/// Who else holds what the holder locked: declared per variant, in the variant layer.
pub use crate::variant::Description;
use crate::variant::Variant;

/// One cell's answer. The field names are the `--json` interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellResult {
    pub variant: Variant,
    pub holder_description: Description,
    /// Did the survivor get the lock or the turn within the limit?
    pub recovered: bool,
    /// After how long, from the holder's SIGKILL (0 if it never had to wait).
    pub recovered_ns: Option<u64>,
    /// Did the mechanism (or, survivable, its protection) tell the survivor the holder died?
    pub owner_died_seen: bool,
    /// What happened and why, in one line.
    pub how: String,
    /// Run with `--survivable`'s protection.
    pub survivable: bool,
    /// What `/proc/locks` said about the arena when the survivor's wait was judged (file locks
    /// only): who the kernel thinks holds it, and how many wait.
    pub kernel_view: Option<String>,
}

/// Every cell of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashReport {
    pub cells: Vec<CellResult>,
    /// Cells that could not be set up on this machine (a variant the kernel refuses), and why.
    pub skipped: Vec<Skipped>,
}

impl CrashReport {
    /// The cells run with (`true`) or without (`false`) `--survivable`'s protection, with the
    /// skipped cells kept beside the plain ones.
    pub fn part(&self, survivable: bool) -> CrashReport {
        CrashReport {
            cells: self
                .cells
                .iter()
                .filter(|c| c.survivable == survivable)
                .cloned()
                .collect(),
            skipped: if survivable {
                Vec::new()
            } else {
                self.skipped.clone()
            },
        }
    }

    /// Appends `other`'s cells and skipped cells.
    pub fn extend(&mut self, other: CrashReport) {
        self.cells.extend(other.cells);
        self.skipped.extend(other.skipped);
    }
}

/// A cell that did not run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub variant: Variant,
    pub holder_description: Description,
    pub why: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(variant: Variant, survivable: bool) -> CellResult {
        CellResult {
            variant,
            holder_description: Description::Own,
            recovered: survivable,
            recovered_ns: survivable.then_some(5),
            owner_died_seen: survivable,
            how: String::new(),
            survivable,
            kernel_view: None,
        }
    }

    #[test]
    fn parts_split_plain_from_survivable_and_keep_skipped_with_plain() {
        let mut r = CrashReport {
            cells: vec![cell(Variant::Eventfd, false)],
            skipped: vec![Skipped {
                variant: Variant::UringFutex,
                holder_description: Description::Own,
                why: "no io_uring".into(),
            }],
        };
        r.extend(CrashReport {
            cells: vec![cell(Variant::Eventfd, true)],
            skipped: vec![],
        });
        let plain = r.part(false);
        let protected = r.part(true);
        assert_eq!(plain.cells, [cell(Variant::Eventfd, false)]);
        assert_eq!(plain.skipped.len(), 1);
        assert_eq!(protected.cells, [cell(Variant::Eventfd, true)]);
        assert!(protected.skipped.is_empty());
    }
}
