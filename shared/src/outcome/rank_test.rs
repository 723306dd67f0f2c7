//! Whether two runs' repeats of one figure differ beyond their scatter: the Mann–Whitney U test
//! (Wilcoxon rank-sum), two-sided. It asks nothing of the distribution, only that each run's
//! repeats are independent draws, and it reads every repeat rather than two ends of a range.
//!
//! For up to [`EXACT_UP_TO`] repeats in all the p-value is exact: the share of all the ways to
//! split the pooled repeats into groups of the two sizes whose rank sum lies at least as far from
//! its mean as the one observed, with tied values given their mean rank. Beyond that, the normal
//! approximation with the tie and continuity corrections, which is close there.

/// Pooled repeats up to which the p-value is counted exactly.
pub const EXACT_UP_TO: usize = 40;

/// What the test found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RankTest {
    /// The two-sided p-value: how often repeats with no difference at all would look at least
    /// this different.
    pub p: f64,
    /// The smallest p-value these two numbers of repeats can give: above the level asked for,
    /// no data could show a change.
    pub min_p: f64,
    /// Counted exactly (not the normal approximation).
    pub exact: bool,
}

/// Tests `a` against `b`; `None` when either has no values or a value is not a number.
pub fn mann_whitney(a: &[f64], b: &[f64]) -> Option<RankTest> {
    let (m, n) = (a.len(), b.len());
    if m == 0 || n == 0 || a.iter().chain(b).any(|x| x.is_nan()) {
        return None;
    }
    let ways = super::interval::choose(m + n, m);
    let min_p = (2.0 / ways).min(1.0);
    let ranks = doubled_ranks(a, b);
    let exact = m + n <= EXACT_UP_TO;
    let p = if ranks.iter().all(|&r| r == ranks[0]) {
        1.0 // every repeat ties: nothing to tell apart
    } else if exact {
        exact_p(&ranks, m)
    } else {
        normal_p(a, b, &ranks)
    };
    Some(RankTest { p, min_p, exact })
}

/// Twice the mid-rank of every pooled value, `a`'s first: integers, so the exact count can
/// index by them. Tied values share the mean of the ranks they span.
fn doubled_ranks(a: &[f64], b: &[f64]) -> Vec<usize> {
    let pooled: Vec<f64> = a.iter().chain(b).copied().collect();
    let mut order: Vec<usize> = (0..pooled.len()).collect();
    order.sort_by(|&i, &j| pooled[i].total_cmp(&pooled[j]));
    let mut ranks = vec![0; pooled.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start;
        while end + 1 < order.len() && pooled[order[end + 1]] == pooled[order[start]] {
            end += 1;
        }
        // Ranks start+1 ..= end+1; twice their mean is start + end + 2.
        for &i in &order[start..=end] {
            ranks[i] = start + end + 2;
        }
        start = end + 1;
    }
    ranks
}

/// The exact two-sided p-value: counts, for every rank sum, the subsets of `m` of the pooled
/// ranks that reach it (a knapsack over the ranks), then the share at least as far from the
/// mean as the first `m` ranks' sum.
fn exact_p(ranks: &[usize], m: usize) -> f64 {
    let total: usize = ranks.iter().sum();
    // ways[j][s]: subsets of j ranks among those seen so far summing to s.
    let mut ways = vec![vec![0f64; total + 1]; m + 1];
    ways[0][0] = 1.0;
    for (seen, &r) in ranks.iter().enumerate() {
        for j in (1..=m.min(seen + 1)).rev() {
            let (below, here) = ways.split_at_mut(j);
            for s in (r..=total).rev() {
                here[0][s] += below[j - 1][s - r];
            }
        }
    }
    // The mean of the sum, doubled like the ranks: m (N + 1).
    let mean = (m * (ranks.len() + 1)) as i64;
    let observed: usize = ranks[..m].iter().sum();
    let far = (observed as i64 - mean).abs();
    let (mut extreme, mut all) = (0.0, 0.0);
    for (s, &w) in ways[m].iter().enumerate() {
        all += w;
        if (s as i64 - mean).abs() >= far {
            extreme += w;
        }
    }
    (extreme / all).min(1.0)
}

/// The normal approximation, with the variance reduced for ties and a continuity correction.
fn normal_p(a: &[f64], b: &[f64], ranks: &[usize]) -> f64 {
    let (m, n) = (a.len() as f64, b.len() as f64);
    let big_n = m + n;
    let rank_sum = ranks[..a.len()].iter().sum::<usize>() as f64 / 2.0;
    let u = rank_sum - m * (m + 1.0) / 2.0;
    let mut sorted: Vec<f64> = a.iter().chain(b).copied().collect();
    sorted.sort_by(f64::total_cmp);
    let ties: f64 = sorted
        .chunk_by(|x, y| x == y)
        .map(|g| {
            let t = g.len() as f64;
            t * t * t - t
        })
        .sum();
    let var = m * n / 12.0 * ((big_n + 1.0) - ties / (big_n * (big_n - 1.0)));
    if var <= 0.0 {
        return 1.0;
    }
    let z = ((u - m * n / 2.0).abs() - 0.5).max(0.0) / var.sqrt();
    erfc(z / std::f64::consts::SQRT_2).min(1.0)
}

/// The complementary error function (Numerical Recipes' `erfcc`, relative error below 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &[f64], b: &[f64]) -> f64 {
        mann_whitney(a, b).unwrap().p
    }

    #[test]
    fn identical_samples_show_no_change() {
        let a = [5.0, 7.0, 6.0, 9.0, 8.0, 5.5, 6.5, 7.5];
        let t = mann_whitney(&a, &a).unwrap();
        assert_eq!(t.p, 1.0);
        assert!(t.exact);
        assert_eq!(p(&[3.0; 8], &[3.0; 8]), 1.0, "all tied");
    }

    #[test]
    fn clearly_shifted_samples_are_a_change_at_the_exact_level() {
        let a = [10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0];
        let b: Vec<f64> = a.iter().map(|x| x + 100.0).collect();
        // No overlap at all: only 2 of the C(16, 8) = 12870 splits are as extreme.
        let t = mann_whitney(&a, &b).unwrap();
        assert!((t.p - 2.0 / 12870.0).abs() < 1e-15, "{}", t.p);
        assert_eq!(t.p, t.min_p);
        assert!(p(&b, &a) < 0.01, "two-sided");
    }

    /// Known values of the exact test, counted by hand for small groups: with 3 and 3 the
    /// rank sum of the first group has 20 equally likely values.
    #[test]
    fn exact_p_values_match_the_counted_distribution() {
        // Rank sums of 3 of 6: 6 (1 way), 7 (1), 8 (2), 9 (3), 10 (3), 11 (3), 12 (3), 13 (2),
        // 14 (1), 15 (1); the mean is 10.5.
        assert!((p(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]) - 0.1).abs() < 1e-12);
        assert!((p(&[1.0, 2.0, 4.0], &[3.0, 5.0, 6.0]) - 0.2).abs() < 1e-12);
        assert!((p(&[1.0, 2.0, 5.0], &[3.0, 4.0, 6.0]) - 0.4).abs() < 1e-12);
        assert!((p(&[1.0, 3.0, 5.0], &[2.0, 4.0, 6.0]) - 0.7).abs() < 1e-12);
        // Ties take the mean rank: ranks 1, 2.5, 2.5 against 4, 5, 6; sums of 3 of
        // {1, 2.5, 2.5, 4, 5, 6} at least 4.5 from the mean 10.5 happen 2 ways in 20.
        assert!((p(&[1.0, 2.0, 2.0], &[4.0, 5.0, 6.0]) - 0.1).abs() < 1e-12);
        assert_eq!(
            mann_whitney(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0])
                .unwrap()
                .min_p,
            0.1
        );
    }

    #[test]
    fn the_normal_approximation_takes_over_for_many_repeats_and_agrees() {
        let a: Vec<f64> = (0..30).map(|i| i as f64).collect();
        let b: Vec<f64> = (0..30).map(|i| i as f64 + 8.5).collect();
        let t = mann_whitney(&a, &b).unwrap();
        assert!(!t.exact);
        // The same data, 20 against 20: exact and approximate agree within a few per cent.
        let exact = p(&a[..20], &b[..20]);
        let approx = normal_p(&a[..20], &b[..20], &doubled_ranks(&a[..20], &b[..20]));
        assert!((exact - approx).abs() < 0.01, "{exact} vs {approx}");
        // U = 231 of 900 pairs, z = (450 - 231 - 0.5) / sqrt(30·30·61/12) = 3.23.
        assert!((t.p - 0.001_23).abs() < 0.000_05, "{}", t.p);
    }

    #[test]
    fn empty_or_nan_input_is_no_test() {
        assert_eq!(mann_whitney(&[], &[1.0]), None);
        assert_eq!(mann_whitney(&[f64::NAN], &[1.0]), None);
    }

    #[test]
    fn erfc_is_close() {
        assert!((erfc(0.0) - 1.0).abs() < 1e-7);
        assert!((erfc(1.0) - 0.157_299_207).abs() < 1e-7);
        assert!((erfc(-1.0) - 1.842_700_793).abs() < 1e-7);
    }
}
