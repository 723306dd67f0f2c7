//! A run that did fewer rounds than it was asked for: why it stopped and how far it got, so the
//! reports can say so in words instead of leaving it to an `end` column.

use super::{RunJson, RunReport};
use crate::measure::End;

/// Why a run stopped before its rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// A contender reached `--max-seconds` and stopped everyone.
    Deadline,
    /// A contender gave up (it died, was interrupted or failed) and stopped everyone.
    Aborted,
}

/// How a run fell short of the rounds it was asked for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EarlyEnd {
    pub cut: Cut,
    /// Rounds completed: the fewest turns or acquisitions of any contender.
    pub done: u64,
    /// Rounds asked for.
    pub asked: u64,
    /// The run's time limit, when the record has it.
    pub max_seconds: Option<f64>,
    /// Rounds per second while it ran (0 if it did none).
    pub pace: f64,
}

impl EarlyEnd {
    /// `None` when every round asked for was done.
    fn of(
        asked: u64,
        done: u64,
        mut ends: impl Iterator<Item = End>,
        max_seconds: Option<f64>,
        pace: f64,
    ) -> Option<EarlyEnd> {
        if done >= asked {
            return None;
        }
        let cut = if ends.any(|e| e == End::PeerAborted) {
            Cut::Aborted
        } else {
            Cut::Deadline
        };
        Some(EarlyEnd {
            cut,
            done,
            asked,
            max_seconds,
            pace,
        })
    }

    /// The seconds all the rounds asked for would take at this run's pace, if it did any.
    pub fn seconds_needed(&self) -> Option<f64> {
        (self.pace > 0.0).then(|| self.asked as f64 / self.pace)
    }
}

/// Rounds per second over `wall_ns` (0 for a run that took no time).
fn pace(done: u64, wall_ns: u64) -> f64 {
    if wall_ns == 0 {
        0.0
    } else {
        done as f64 * 1e9 / wall_ns as f64
    }
}

impl RunReport {
    /// How this run fell short of its rounds, if it did.
    pub fn early_end(&self) -> Option<EarlyEnd> {
        let done = self.contenders().map(|s| s.rounds).min().unwrap_or(0);
        let wall = self.contenders().map(|s| s.wall_ns).max().unwrap_or(0);
        EarlyEnd::of(
            self.rounds,
            done,
            self.contenders().map(|s| s.end),
            Some(self.max_seconds),
            pace(done, wall),
        )
    }
}

impl RunJson {
    /// How this run fell short of its rounds, if it did (from `summary.json`'s record too).
    pub fn early_end(&self) -> Option<EarlyEnd> {
        let done = self
            .contenders
            .iter()
            .map(|c| c.acquisitions)
            .min()
            .unwrap_or(0);
        let wall = self.server.wall_ns.max(self.client.wall_ns);
        EarlyEnd::of(
            self.rounds,
            done,
            [self.server.end, self.client.end].into_iter(),
            self.max_seconds,
            pace(done, wall),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_that_did_its_rounds_did_not_end_early() {
        assert_eq!(
            EarlyEnd::of(10, 10, [End::Completed].into_iter(), None, 5.0),
            None
        );
    }

    #[test]
    fn a_deadline_and_an_abort_are_told_apart() {
        let deadline = EarlyEnd::of(
            10_000,
            1_250,
            [End::Deadline, End::PeerDeadline].into_iter(),
            Some(10.0),
            125.0,
        )
        .unwrap();
        assert_eq!(deadline.cut, Cut::Deadline);
        assert_eq!(deadline.seconds_needed(), Some(80.0));
        let aborted = EarlyEnd::of(
            10,
            3,
            [End::PeerAborted, End::Completed].into_iter(),
            None,
            0.0,
        )
        .unwrap();
        assert_eq!(aborted.cut, Cut::Aborted);
        assert_eq!(aborted.seconds_needed(), None);
    }
}
