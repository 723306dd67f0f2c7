//! Unequal contenders (`--hold`, `--think`, `--nice`): each flag one value for everyone, or one
//! per contender (contender 0 is the server, 1 this client, 2.. its helper processes).

use std::time::Duration;

use thiserror::Error;

use crate::sys::priority::NICE_RANGE;

/// The longest busy work accepted (the server checks the same bound).
pub const MAX_BUSY: Duration = Duration::from_nanos(crate::session::MAX_BUSY_NS);

/// Per-contender work and priority. An empty list means the default (no busy work, nice left
/// as it is); one value applies to everyone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unequal {
    /// Busy work inside each critical section (in `turns` mode, inside each turn).
    pub hold: Vec<Duration>,
    /// Busy work after each release, before asking again.
    pub think: Vec<Duration>,
    /// The session thread's nice value.
    pub nice: Vec<i32>,
}

/// A list that does not fit the run.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum UnequalError {
    #[error(
        "--{flag} has {got} values for {contenders} contenders: give one value for all, or exactly {contenders} (one per contender, the server first)"
    )]
    Count {
        flag: &'static str,
        got: usize,
        contenders: usize,
    },
    #[error(
        "--{flag} {value:?} is longer than {MAX_BUSY:?}: busy work that long cannot be interrupted"
    )]
    TooLong { flag: &'static str, value: Duration },
    #[error("--nice {0} is out of range: nice values run from -20 to 19")]
    NiceRange(i32),
    #[error(
        "--nice {0}: a negative nice value needs root (CAP_SYS_NICE); run as root or give 0 to 19"
    )]
    NeedsRoot(i32),
}

impl Unequal {
    /// Checks every list against `contenders`, and that a negative nice is asked only as root
    /// (`root`: the effective uid is 0).
    pub fn check(&self, contenders: usize, root: bool) -> Result<(), UnequalError> {
        count("hold", self.hold.len(), contenders)?;
        count("think", self.think.len(), contenders)?;
        count("nice", self.nice.len(), contenders)?;
        for (flag, list) in [("hold", &self.hold), ("think", &self.think)] {
            if let Some(&value) = list.iter().find(|d| **d > MAX_BUSY) {
                return Err(UnequalError::TooLong { flag, value });
            }
        }
        if let Some(&n) = self.nice.iter().find(|n| !NICE_RANGE.contains(n)) {
            return Err(UnequalError::NiceRange(n));
        }
        match self.nice.iter().find(|n| **n < 0) {
            Some(&n) if !root => Err(UnequalError::NeedsRoot(n)),
            _ => Ok(()),
        }
    }

    /// Contender `c`'s hold, in ns.
    pub fn hold_ns(&self, c: usize) -> u64 {
        pick(&self.hold, c).map_or(0, |d| d.as_nanos() as u64)
    }

    /// Contender `c`'s think time, in ns.
    pub fn think_ns(&self, c: usize) -> u64 {
        pick(&self.think, c).map_or(0, |d| d.as_nanos() as u64)
    }

    /// Contender `c`'s nice value, if one was asked.
    pub fn nice(&self, c: usize) -> Option<i32> {
        pick(&self.nice, c).copied()
    }
}

fn count(flag: &'static str, got: usize, contenders: usize) -> Result<(), UnequalError> {
    if got <= 1 || got == contenders {
        Ok(())
    } else {
        Err(UnequalError::Count {
            flag,
            got,
            contenders,
        })
    }
}

/// One value for all, or contender `c`'s own.
fn pick<T>(list: &[T], c: usize) -> Option<&T> {
    match list {
        [] => None,
        [one] => Some(one),
        many => many.get(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(v: u64) -> Duration {
        Duration::from_micros(v)
    }

    #[test]
    fn one_value_is_everyones_and_a_list_is_one_per_contender() {
        let u = Unequal {
            hold: vec![us(1), us(100)],
            think: vec![us(5)],
            nice: vec![],
        };
        assert_eq!(u.check(2, false), Ok(()));
        assert_eq!((u.hold_ns(0), u.hold_ns(1)), (1_000, 100_000));
        assert_eq!((u.think_ns(0), u.think_ns(1)), (5_000, 5_000));
        assert_eq!(u.nice(1), None);
        assert_eq!(Unequal::default().hold_ns(3), 0);
    }

    #[test]
    fn a_list_of_the_wrong_length_a_long_hold_or_a_bad_nice_is_refused_in_one_line() {
        let u = Unequal {
            hold: vec![us(1), us(2), us(3)],
            ..Default::default()
        };
        let e = u.check(2, true).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--hold has 3 values for 2 contenders: give one value for all, or exactly 2 (one per contender, the server first)"
        );
        let long = Unequal {
            think: vec![Duration::from_secs(2)],
            ..Default::default()
        };
        assert!(matches!(
            long.check(2, true),
            Err(UnequalError::TooLong { flag: "think", .. })
        ));
        let nice = |n: Vec<i32>| Unequal {
            nice: n,
            ..Default::default()
        };
        assert_eq!(
            nice(vec![0, 20]).check(2, true),
            Err(UnequalError::NiceRange(20))
        );
        assert_eq!(
            nice(vec![-5, 0]).check(2, false),
            Err(UnequalError::NeedsRoot(-5))
        );
        assert_eq!(nice(vec![-5, 0]).check(2, true), Ok(()));
        assert_eq!(nice(vec![0, 19]).check(2, false), Ok(()));
    }
}
