//! Lock opportunity, after the scheduler-cooperative locks paper (Patel et al., EuroSys 2020,
//! "Avoiding scheduler subversion using scheduler-cooperative locks", §2): a contender's lock
//! opportunity is the time it held the lock plus the time the lock was idle (free for anyone to
//! take), as a share of the span measured. A contender that holds the lock for long stretches
//! denies everyone else opportunity, however fairly the lock orders its waiters; Jain's index
//! over the opportunities says how evenly the lock's time was offered.
//!
//! The contenders sum their own hold times (cheap: one more clock read per acquisition); the
//! idle time is what the span leaves over: idle = span − Σ hold. In `free` mode the span is the
//! common window, and a hold counts in it only if it began after the last contender joined and
//! ended before the first one finished, so with real exclusion Σ hold ≤ span. Where a mechanism
//! does not exclude (Σ hold > span) the idle time is taken as zero.

use serde::{Deserialize, Serialize};

use super::RunReport;
use super::fairness::jain_index;
use crate::measure::{ContenderStats, End};
use crate::variant::Mode;

/// Who had the lock's time over one span.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Opportunity {
    /// The span the shares are of: the common window (`free`) or the whole run (`turns`: from
    /// the first contender to start to the last to stop).
    pub span_ns: u64,
    /// The span minus everyone's hold time (never below zero).
    pub idle_ns: u64,
    /// Per contender, in order: share of the span it held the lock.
    pub hold_share: Vec<f64>,
    /// Per contender, in order: (its hold + idle) / span.
    pub opportunity: Vec<f64>,
    /// Jain's index over `opportunity`, in [1/N, 1].
    pub jain: f64,
}

impl Opportunity {
    /// The shares of `span_ns` given each contender's hold time; `None` for an empty span.
    pub fn of(holds_ns: &[u64], span_ns: u64) -> Option<Opportunity> {
        if span_ns == 0 || holds_ns.is_empty() {
            return None;
        }
        let held = holds_ns.iter().fold(0u64, |a, &h| a.saturating_add(h));
        let idle_ns = span_ns.saturating_sub(held);
        let share = |ns: u64| ns as f64 / span_ns as f64;
        let hold_share: Vec<f64> = holds_ns.iter().map(|&h| share(h)).collect();
        let opportunity: Vec<f64> = holds_ns
            .iter()
            .map(|&h| share(h.saturating_add(idle_ns)))
            .collect();
        Some(Opportunity {
            span_ns,
            idle_ns,
            jain: jain_index(&opportunity),
            hold_share,
            opportunity,
        })
    }

    /// The idle share of the span.
    pub fn idle_share(&self) -> f64 {
        self.idle_ns as f64 / self.span_ns as f64
    }
}

/// Each contender's hold time within `[start, end)`, from hold intervals `(contender, from, to)`:
/// the definition the contenders' own sums approximate (they count a hold by where it began).
pub fn holds_within(
    contenders: usize,
    intervals: &[(usize, u64, u64)],
    span: (u64, u64),
) -> Vec<u64> {
    let mut holds = vec![0u64; contenders];
    for &(c, from, to) in intervals {
        let (from, to) = (from.max(span.0), to.min(span.1));
        if c < contenders && to > from {
            holds[c] += to - from;
        }
    }
    holds
}

/// Each contender's share of the CPU time all of them used (thread CPU clock over the run).
pub fn cpu_shares(cpu_ns: &[u64]) -> Option<Vec<f64>> {
    let total = cpu_ns.iter().fold(0u64, |a, &c| a.saturating_add(c));
    (total > 0).then(|| cpu_ns.iter().map(|&c| c as f64 / total as f64).collect())
}

/// The common window of a `free` run from the contenders' own stamps: from the last to join to
/// the first to complete (or the last to leave, when nobody completed).
fn common_window(all: &[&ContenderStats]) -> Option<(u64, u64)> {
    let frees: Vec<_> = all.iter().map(|s| s.free.as_ref()).collect::<Option<_>>()?;
    let start = frees.iter().map(|f| f.joined_ns).max()?;
    let completed = all
        .iter()
        .zip(&frees)
        .filter(|(s, _)| s.end == End::Completed)
        .map(|(_, f)| f.left_ns)
        .min();
    let end = completed.or_else(|| frees.iter().map(|f| f.left_ns).max())?;
    (start > 0 && end > start).then_some((start, end))
}

impl RunReport {
    /// Lock opportunity over the common window (`free`) or the whole run (`turns`); `None` when
    /// that span is empty (the contenders never raced).
    pub fn opportunity(&self) -> Option<Opportunity> {
        let all: Vec<&ContenderStats> = self.contenders().collect();
        match self.mode {
            Mode::Free => {
                let (start, end) = common_window(&all)?;
                let holds: Vec<u64> = all
                    .iter()
                    .map(|s| s.free.as_ref().map_or(0, |f| f.held_in_window_ns))
                    .collect();
                Opportunity::of(&holds, end - start)
            }
            Mode::Turns => {
                // From the first to start to the last to stop: every turn lies in between.
                let start = all.iter().map(|s| s.started_ns).min()?;
                let span = all.iter().map(|s| s.ended_ns).max()?.saturating_sub(start);
                let holds: Vec<u64> = all.iter().map(|s| s.held_ns).collect();
                Opportunity::of(&holds, span)
            }
        }
    }

    /// Each contender's share of the CPU time all contenders used.
    pub fn cpu_shares(&self) -> Option<Vec<f64>> {
        let cpu: Vec<u64> = self.contenders().map(|s| s.rusage.cpu_ns).collect();
        cpu_shares(&cpu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn two_contenders_with_idle_gaps_share_the_idle_time() {
        // 0..100: A holds 0-10 and 50-60, B holds 20-50; idle 10-20 and 60-100 (50 in all).
        let holds = holds_within(2, &[(0, 0, 10), (1, 20, 50), (0, 50, 60)], (0, 100));
        assert_eq!(holds, [20, 30]);
        let o = Opportunity::of(&holds, 100).unwrap();
        assert_eq!(o.idle_ns, 50);
        assert!(close(o.hold_share[0], 0.2) && close(o.hold_share[1], 0.3));
        assert!(close(o.opportunity[0], 0.7) && close(o.opportunity[1], 0.8));
        assert!(close(o.idle_share(), 0.5));
        assert!(o.jain > 0.99 && o.jain < 1.0);
    }

    #[test]
    fn a_long_holder_with_no_idle_time_takes_the_opportunity() {
        // 1:100 holds with no gap: the short holder's opportunity is its own tiny hold.
        let o = Opportunity::of(&[1, 100], 101).unwrap();
        assert_eq!(o.idle_ns, 0);
        assert!(close(o.opportunity[1], 100.0 / 101.0));
        assert!(o.jain < 0.52 && o.jain >= 0.5);
    }

    #[test]
    fn an_idle_lock_offers_everyone_all_of_it() {
        let o = Opportunity::of(&[0, 0, 0], 1_000).unwrap();
        assert_eq!(o.opportunity, [1.0, 1.0, 1.0]);
        assert_eq!(o.jain, 1.0);
    }

    #[test]
    fn intervals_are_clipped_to_the_span_and_overlaps_leave_no_negative_idle() {
        let holds = holds_within(2, &[(0, 0, 50), (1, 90, 150), (5, 0, 10)], (20, 100));
        assert_eq!(holds, [30, 10]);
        // Without exclusion the holds can add up past the span: idle is zero, not negative.
        let o = Opportunity::of(&[80, 80], 100).unwrap();
        assert_eq!(o.idle_ns, 0);
        assert_eq!(o.opportunity, o.hold_share);
    }

    /// A `free` contender that joined at `joined`, left at `left` (`completed` or stopped) and
    /// held the lock `held` ns in the common window.
    fn side(c: usize, joined: u64, left: u64, completed: bool, held: u64) -> ContenderStats {
        let mut s = ContenderStats::new(c, None);
        s.end = if completed {
            End::Completed
        } else {
            End::PeerDeadline
        };
        s.rusage.cpu_ns = held;
        s.free = Some(crate::measure::FreeStats {
            joined_ns: joined,
            left_ns: left,
            held_in_window_ns: held,
            ..Default::default()
        });
        s
    }

    fn report(server: ContenderStats, client: ContenderStats) -> RunReport {
        RunReport {
            variant: crate::variant::Variant::Ofd,
            mode: Mode::Free,
            placement: crate::placement::Placement::Free,
            rounds: 10,
            max_seconds: 1.0,
            server,
            client,
            others: Vec::new(),
            kernel: None,
            order: None,
        }
    }

    #[test]
    fn a_free_run_measures_from_the_last_to_join_to_the_first_to_complete() {
        // Window 200..1200: the client joins last, the server completes first.
        let r = report(
            side(0, 100, 1_200, true, 100),
            side(1, 200, 5_000, true, 700),
        );
        let o = r.opportunity().unwrap();
        assert_eq!((o.span_ns, o.idle_ns), (1_000, 200));
        assert!(close(o.opportunity[0], 0.3) && close(o.opportunity[1], 0.9));
        // Nobody completed (a deadline stop): the window runs to the last to leave.
        let r = report(side(0, 100, 900, false, 0), side(1, 100, 1_100, false, 0));
        assert_eq!(r.opportunity().unwrap().span_ns, 1_000);
        // Never raced: no window, no figure.
        let r = report(side(0, 500, 400, true, 0), side(1, 100, 300, true, 0));
        assert_eq!(r.opportunity(), None);
        let json = report(
            side(0, 100, 1_200, true, 100),
            side(1, 200, 5_000, true, 700),
        )
        .to_json();
        assert_eq!(json.opportunity_span_ns, Some(1_000));
        assert!(close(json.contenders[1].cpu_share.unwrap(), 0.875));
        assert!(json.opportunity_jain.unwrap() < 1.0);
    }

    #[test]
    fn an_empty_span_has_no_opportunity_and_cpu_shares_add_up() {
        assert_eq!(Opportunity::of(&[1, 2], 0), None);
        assert_eq!(cpu_shares(&[0, 0]), None);
        let shares = cpu_shares(&[300, 100]).unwrap();
        assert!(close(shares[0], 0.75) && close(shares[1], 0.25));
    }
}
