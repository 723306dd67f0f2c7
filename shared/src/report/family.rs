//! Variants grouped the way a reader compares them: the file locks, the explicit handoffs and
//! the fair locks. The plots draw one panel per family, so a dozen curves never share one panel.

use crate::variant::Variant;

/// A group of variants drawn together.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// Kernel file locks (and protocols built of them): whoever asks first after an unlock wins.
    FileLocks,
    /// The turn is handed to the next contender by name: eventfd, futex, pipe...
    ExplicitHandoffs,
    /// Locks that queue their waiters and grant in order.
    FairLocks,
}

impl Family {
    /// Every family, in report order.
    pub const ALL: [Family; 3] = [
        Family::FileLocks,
        Family::ExplicitHandoffs,
        Family::FairLocks,
    ];

    /// The family of `variant`. A new variant that is not an explicit handoff gets one line here.
    pub fn of(variant: Variant) -> Family {
        match variant {
            Variant::Seed
            | Variant::Ofd
            | Variant::Posix
            | Variant::Lockf
            | Variant::Flock
            | Variant::LockChain => Family::FileLocks,
            Variant::Ticket => Family::FairLocks,
            _ => Family::ExplicitHandoffs,
        }
    }

    /// The panel's title.
    pub fn title(self) -> &'static str {
        match self {
            Family::FileLocks => "file locks",
            Family::ExplicitHandoffs => "explicit handoffs",
            Family::FairLocks => "fair locks",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_exactly_one_family() {
        let total: usize = Family::ALL
            .iter()
            .map(|f| f.members(&Variant::ALL).len())
            .sum();
        assert_eq!(total, Variant::ALL.len());
        assert_eq!(Family::of(Variant::Ofd), Family::FileLocks);
        assert_eq!(Family::of(Variant::Eventfd), Family::ExplicitHandoffs);
        assert_eq!(Family::of(Variant::Ticket), Family::FairLocks);
    }
}
