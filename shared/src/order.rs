//! Who got the lock in what order, and what that says about fairness: bypass, LWSS and MTTR,
//! computed from the arena's grant log of a `--mode free` run (pure functions of the log).
//!
//! Every acquisition has an *arrival* number (taken when its wait began; for a ticket lock, the
//! ticket) and a *grant* number (taken inside the critical section, so grants are numbered in
//! the order the lock granted them). The log holds, for grant `g`, the contender and arrival.
//!
//! - **Bypass** of an acquisition: how many acquisitions were granted, while it waited, to
//!   contenders whose wait began after its own: `#{h : grant(h) < grant(g), arrival(h) >
//!   arrival(g)}`. Zero for every acquisition of a FIFO lock, whatever the scheduler does; the
//!   textbook measure of bounded waiting. It is about the lock. Its percentiles are taken over
//!   the waits that *waited*: those during which at least one other acquisition was granted.
//!   (A barging lock's releaser that takes the lock straight back waited for nobody; counting
//!   those thousands of zeros would hide every overtaken waiter below the 99th percentile.)
//! - **LWSS** (Dice): the number of distinct contenders in each window of N consecutive
//!   acquisitions, averaged over every such window. N under strict round robin, 1 under a
//!   monopoly. It also carries the scheduler: a contender that is not running is not in the
//!   race.
//! - **MTTR** (Dice): the median, over acquisitions that have an earlier one by the same
//!   contender, of the number of other acquisitions in between. N-1 under strict round robin,
//!   0 under a monopoly. Scheduler too.

use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use crate::arena::{Arena, GRANT_LOG_CAPACITY};

/// One acquisition in grant order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    pub contender: usize,
    pub arrival: u64,
    /// Other contenders waiting when it was granted.
    pub others_waiting: u32,
    /// Acquisitions granted to others while it waited.
    pub waited_through: u64,
}

/// The bypass of every acquisition, in grant order: how many earlier grants arrived later.
/// O(n log n): a Fenwick tree over the arrivals' ranks.
pub fn bypasses(arrivals: &[u64]) -> Vec<u64> {
    let mut sorted: Vec<u64> = arrivals.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut tree = vec![0u64; sorted.len() + 1];
    let mut out = Vec::with_capacity(arrivals.len());
    for (seen, a) in arrivals.iter().enumerate() {
        // 1-based rank of `a`; grants at or below it so far, via prefix sums.
        let rank = sorted.partition_point(|x| x <= a);
        let mut not_later = 0;
        let mut i = rank;
        while i > 0 {
            not_later += tree[i];
            i &= i - 1;
        }
        out.push(seen as u64 - not_later);
        let mut i = rank;
        while i < tree.len() {
            tree[i] += 1;
            i += i & i.wrapping_neg();
        }
    }
    out
}

/// LWSS: distinct contenders per window of `window` consecutive acquisitions, averaged over
/// every window. `None` with fewer acquisitions than one window (or a zero window).
pub fn lwss(holders: &[usize], window: usize) -> Option<f64> {
    if window == 0 || holders.len() < window {
        return None;
    }
    let mut counts = std::collections::HashMap::<usize, usize>::new();
    let mut distinct = 0usize;
    let mut total = 0usize;
    for (i, &c) in holders.iter().enumerate() {
        let n = counts.entry(c).or_default();
        *n += 1;
        if *n == 1 {
            distinct += 1;
        }
        if i + 1 > window {
            let gone = holders[i - window];
            let n = counts.entry(gone).or_default();
            *n -= 1;
            if *n == 0 {
                distinct -= 1;
            }
        }
        if i + 1 >= window {
            total += distinct;
        }
    }
    Some(total as f64 / (holders.len() - window + 1) as f64)
}

/// MTTR: the median count of other acquisitions between two consecutive acquisitions of one
/// contender. `None` if no contender acquired twice.
pub fn mttr(holders: &[usize]) -> Option<f64> {
    let mut last = std::collections::HashMap::<usize, usize>::new();
    let mut gaps: Vec<usize> = holders
        .iter()
        .enumerate()
        .filter_map(|(g, &c)| last.insert(c, g).map(|prev| g - prev - 1))
        .collect();
    median(&mut gaps)
}

fn median(xs: &mut [usize]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_unstable();
    let mid = xs.len() / 2;
    Some(if xs.len() % 2 == 1 {
        xs[mid] as f64
    } else {
        (xs[mid - 1] + xs[mid]) as f64 / 2.0
    })
}

/// The nearest-rank `q` quantile of sorted `xs` (0 when empty).
fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The order measures of one run, as reports print them. Field names are an interface.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderStats {
    /// Acquisitions in the grant log (the first ones of the run, up to its capacity).
    pub logged: u64,
    /// True if the run made more acquisitions than the log holds.
    pub truncated: bool,
    /// Logged acquisitions whose wait saw at least one other acquisition granted: the waits
    /// the bypass percentiles are taken over.
    pub waited: u64,
    /// Bypass of the waits that waited (the maximum is the maximum over every wait).
    pub bypass_p50: u64,
    pub bypass_p99: u64,
    pub bypass_max: u64,
    pub bypass_mean: f64,
    /// Acquisitions in the common window (before the first contender finished), over which
    /// LWSS, MTTR and the contending count are taken.
    pub window: u64,
    /// `null` when the window is shorter than N acquisitions.
    pub lwss: Option<f64>,
    /// `null` when no contender acquired twice in the window.
    pub mttr: Option<f64>,
    /// Contenders waiting at a grant, the one granted included, averaged over the window: how
    /// many were actually in the race (N if all were; 1 if the others were not even running).
    pub contending_mean: f64,
}

impl OrderStats {
    /// The measures of `grants` (in grant order) among `contenders` contenders, LWSS and MTTR
    /// over the first `window` of them.
    pub fn of(grants: &[Grant], contenders: usize, window: usize, truncated: bool) -> Self {
        let arrivals: Vec<u64> = grants.iter().map(|g| g.arrival).collect();
        let mut bypass: Vec<u64> = bypasses(&arrivals)
            .into_iter()
            .zip(grants)
            .filter(|(b, g)| g.waited_through > 0 || *b > 0)
            .map(|(b, _)| b)
            .collect();
        bypass.sort_unstable();
        let window = window.min(grants.len());
        let holders: Vec<usize> = grants[..window].iter().map(|g| g.contender).collect();
        let waiting: u64 = grants[..window]
            .iter()
            .map(|g| u64::from(g.others_waiting) + 1)
            .sum();
        OrderStats {
            logged: grants.len() as u64,
            truncated,
            waited: bypass.len() as u64,
            bypass_p50: quantile(&bypass, 0.50),
            bypass_p99: quantile(&bypass, 0.99),
            bypass_max: bypass.last().copied().unwrap_or(0),
            bypass_mean: if bypass.is_empty() {
                0.0
            } else {
                bypass.iter().sum::<u64>() as f64 / bypass.len() as f64
            },
            window: window as u64,
            lwss: lwss(&holders, contenders),
            mttr: mttr(&holders),
            contending_mean: if window == 0 {
                0.0
            } else {
                waiting as f64 / window as f64
            },
        }
    }
}

/// The common window's end in `grants`: just after the last acquisition of `first_finished`
/// (the contender that finished first), or all of them if none did (or it is unknown).
pub fn window_end(grants: &[Grant], first_finished: Option<usize>) -> usize {
    first_finished
        .and_then(|f| grants.iter().rposition(|g| g.contender == f))
        .map_or(grants.len(), |last| last + 1)
}

/// The order measures of the run just played in `arena` (by the side that created it, once
/// every contender is done): the grant log read back, the common window cut where the first
/// contender to finish made its last acquisition. `None` if nothing was logged (a `turns` run).
pub fn from_arena(arena: &Arena, contenders: usize) -> Option<OrderStats> {
    let h = arena.header();
    let granted = h.grants.load(Ordering::Acquire);
    let logged = usize::try_from(granted)
        .unwrap_or(usize::MAX)
        .min(GRANT_LOG_CAPACITY);
    let grants: Vec<Grant> = (0..logged)
        .filter_map(|g| Some((g, arena.grant_entry(g, contenders)?)))
        .map(|(g, e)| Grant {
            contender: usize::from(e.contender),
            arrival: e.arrival,
            others_waiting: u32::from(e.others_waiting),
            waited_through: (g as u64).saturating_sub(e.granted_before),
        })
        .collect();
    if grants.is_empty() {
        return None;
    }
    let first = match h.first_finished.load(Ordering::Acquire) {
        0 => None,
        tag => Some(tag as usize - 1),
    };
    let window = window_end(&grants, first);
    Some(OrderStats::of(
        &grants,
        contenders,
        window,
        granted > GRANT_LOG_CAPACITY as u64,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arena::GrantEntry;

    /// Grants where every wait waited (for the percentiles' population).
    fn grants(holders: &[usize], arrivals: &[u64]) -> Vec<Grant> {
        holders
            .iter()
            .zip(arrivals)
            .map(|(&contender, &arrival)| Grant {
                contender,
                arrival,
                others_waiting: 0,
                waited_through: 1,
            })
            .collect()
    }

    #[test]
    fn strict_round_robin_is_ideal() {
        // 4 contenders, each re-arrives as soon as it is served: FIFO, arrivals in grant order.
        let holders: Vec<usize> = (0..40).map(|g| g % 4).collect();
        let arrivals: Vec<u64> = (0..40).collect();
        assert!(bypasses(&arrivals).iter().all(|&b| b == 0));
        assert_eq!(lwss(&holders, 4), Some(4.0));
        assert_eq!(mttr(&holders), Some(3.0));
        let s = OrderStats::of(&grants(&holders, &arrivals), 4, 40, false);
        assert_eq!((s.bypass_p50, s.bypass_p99, s.bypass_max), (0, 0, 0));
        assert_eq!(s.lwss, Some(4.0));
        assert_eq!(s.mttr, Some(3.0));
    }

    #[test]
    fn a_monopoly_bypasses_everyone_who_waits() {
        // Contender 0 takes the lock 6 times while 1, 2 and 3 (arrivals 1, 2, 3) wait from the
        // start; then they are served. Contender 0 re-arrives (4, 5, ...) after each grant.
        let holders = [0, 0, 0, 0, 0, 0, 1, 2, 3];
        let arrivals = [0, 4, 5, 6, 7, 8, 1, 2, 3];
        // The first grant bypassed nobody; grants 1..5 arrived after 1, 2, 3 but waited for
        // nobody; 1, 2 and 3 were each overtaken by the five grants with arrivals 4..8.
        assert_eq!(bypasses(&arrivals), vec![0, 0, 0, 0, 0, 0, 5, 5, 5]);
        assert_eq!(
            lwss(&holders, 4),
            Some((1 + 1 + 1 + 2 + 3 + 4) as f64 / 6.0)
        );
        // Contender 0's gaps are all 0; nobody else acquired twice.
        assert_eq!(mttr(&holders), Some(0.0));
        let s = OrderStats::of(&grants(&holders, &arrivals), 4, 9, false);
        assert_eq!(s.bypass_max, 5);
        assert_eq!(s.bypass_p50, 0);
        assert_eq!(s.bypass_p99, 5);
        // Only 1, 2 and 3 waited through other grants: the percentiles see just them.
        let mut g = grants(&holders, &arrivals);
        for x in &mut g[..6] {
            x.waited_through = 0;
        }
        let s = OrderStats::of(&g, 4, 9, false);
        assert_eq!((s.waited, s.bypass_p50, s.bypass_max), (3, 5, 5));
    }

    #[test]
    fn a_random_order_matches_hand_counting() {
        // Grants by contenders 2,0,1,2,1,0,0 whose waits began (arrival numbers) as below.
        let holders = [2, 0, 1, 2, 1, 0, 0];
        let arrivals = [1, 0, 3, 2, 6, 4, 5];
        // g0 (a1): nobody before. g1 (a0): a1 came later -> 1. g2 (a3): none later -> 0.
        // g3 (a2): a3 -> 1. g4 (a6): 0. g5 (a4): a6 -> 1. g6 (a5): a6 -> 1.
        assert_eq!(bypasses(&arrivals), vec![0, 1, 0, 1, 0, 1, 1]);
        // Windows of 3: (2,0,1)=3 (0,1,2)=3 (1,2,1)=2 (2,1,0)=3 (1,0,0)=2 -> 13/5.
        assert_eq!(lwss(&holders, 3), Some(13.0 / 5.0));
        // Gaps: 2: g0->g3 = 2; 1: g2->g4 = 1; 0: g1->g5 = 3, g5->g6 = 0 -> sorted 0,1,2,3.
        assert_eq!(mttr(&holders), Some(1.5));
    }

    #[test]
    fn ties_and_empty_inputs_do_not_count_or_panic() {
        assert!(bypasses(&[]).is_empty());
        assert_eq!(bypasses(&[3, 3, 3]), vec![0, 0, 0]);
        assert_eq!(lwss(&[1, 2], 3), None);
        assert_eq!(lwss(&[1, 2], 0), None);
        assert_eq!(mttr(&[0, 1, 2]), None);
        let s = OrderStats::of(&[], 4, 0, false);
        assert_eq!(s, OrderStats::default());
    }

    #[test]
    fn the_arena_log_reads_back_what_was_logged() {
        let arena = Arena::create(2).unwrap();
        assert_eq!(from_arena(&arena, 2), None);
        // Round robin between 0 and 1; 1 finishes first, after grant 3.
        for g in 0..6u64 {
            arena.log_grant(GrantEntry {
                contender: (g % 2) as u8,
                others_waiting: 1,
                arrival: g,
                granted_before: g.saturating_sub(1),
            });
        }
        arena.header().first_finished.store(2, Ordering::Release);
        let s = from_arena(&arena, 2).unwrap();
        assert_eq!((s.logged, s.window, s.truncated), (6, 6, false));
        assert_eq!(s.waited, 5);
        assert_eq!((s.bypass_max, s.lwss, s.mttr), (0, Some(2.0), Some(1.0)));
        assert_eq!(s.contending_mean, 2.0);
        // A word no contender could have written is skipped, not trusted.
        arena.grant_log()[12].store(0xff, Ordering::Release);
        arena.header().grants.fetch_add(1, Ordering::AcqRel);
        assert_eq!(from_arena(&arena, 2).unwrap().logged, 6);
    }

    #[test]
    fn the_window_ends_at_the_first_finisher_last_grant() {
        let g = grants(&[0, 1, 0, 1, 1], &[0, 1, 2, 3, 4]);
        assert_eq!(window_end(&g, Some(0)), 3);
        assert_eq!(window_end(&g, None), 5);
        assert_eq!(window_end(&g, Some(7)), 5);
    }
}
