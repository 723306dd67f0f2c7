//! Variants grouped the way a reader compares them: the file locks, the explicit handoffs, the
//! mutexes and the FIFO locks. The plots draw one panel per family, so a dozen curves never
//! share one panel.

use crate::variant::Variant;

/// A group of variants drawn together: each variant's spec names its own.
pub use crate::variant::Family;

impl Family {
    /// Every family, in report order.
    pub const ALL: [Family; 4] = [
        Family::FileLocks,
        Family::ExplicitHandoffs,
        Family::Mutexes,
        Family::FifoLocks,
    ];

    /// The family of `variant`, as its spec says.
    pub fn of(variant: Variant) -> Family {
        variant.spec().family
    }

    /// The panel's title.
    pub fn title(self) -> &'static str {
        match self {
            Family::FileLocks => "file locks",
            Family::ExplicitHandoffs => "explicit handoffs",
            Family::Mutexes => "mutexes",
            Family::FifoLocks => "FIFO locks",
        }
    }

    /// `variants` of this family, in their order.
    pub fn members(self, variants: &[Variant]) -> Vec<Variant> {
        variants
            .iter()
            .copied()
            .filter(|&v| Family::of(v) == self)
            .collect()
    }
}
