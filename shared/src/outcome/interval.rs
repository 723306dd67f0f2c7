//! How far another run's median may land: a distribution-free interval for the median of a
//! cell's repeats, from two of the repeats themselves (order statistics).
//!
//! With n repeats sorted, the pair (k-th smallest, k-th largest) holds the median of the
//! distribution the repeats come from unless at least n-k+1 of them fall on one side of it: the
//! chance of that is a binomial tail with p = 1/2, whatever the distribution. [`ranks`] picks the
//! narrowest such pair that holds the median with at least [`LEVEL`]; below 6 repeats no pair
//! does, and the widest one (min, max) is given with the level it actually reaches. A bootstrap
//! would need far more repeats than a `compare` affords to reach its own stated level.

/// The coverage asked for.
pub const LEVEL: f64 = 0.95;

/// The 1-based ranks (k, n+1-k) of the interval's ends among `n` sorted repeats, and the chance
/// that such an interval holds the median: the narrowest pair reaching [`LEVEL`], or (1, n)
/// when none does. `n = 0` gives `(0, 0, 0.0)`.
pub fn ranks(n: usize) -> (usize, usize, f64) {
    if n == 0 {
        return (0, 0, 0.0);
    }
    let mut best = (1, n, coverage(n, 1));
    for k in 2..=n.div_ceil(2) {
        let level = coverage(n, k);
        if level < LEVEL {
            break;
        }
        best = (k, n + 1 - k, level);
    }
    best
}

/// The chance that (k-th smallest, k-th largest) of `n` independent draws holds the
/// distribution's median: 1 - 2·P(Binomial(n, 1/2) ≤ k-1), exactly (up to f64 rounding).
pub fn coverage(n: usize, k: usize) -> f64 {
    if k == 0 || 2 * k > n + 1 {
        return 0.0;
    }
    let tail: f64 = (0..k).map(|i| choose(n, i)).sum::<f64>() / 2f64.powi(n as i32);
    (1.0 - 2.0 * tail).max(0.0)
}

/// n choose k, as a float (exact while it stays below 2^53).
pub fn choose(n: usize, k: usize) -> f64 {
    if k > n {
        return 0.0;
    }
    let k = k.min(n - k);
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// "the 2nd and 9th of 10 repeats": which repeats bound the interval.
pub fn bounds(n: usize) -> String {
    let (lo, hi, _) = ranks(n);
    match n {
        0 => "no repeats".into(),
        1 => "the one repeat".into(),
        _ if lo == 1 => format!("the lowest and highest of {n} repeats"),
        _ => format!("the {} and {} of {n} repeats", ordinal(lo), ordinal(hi)),
    }
}

/// `1st`, `2nd`, `3rd`, `4th`, … `11th`, `12th`, `13th`, `21st`.
fn ordinal(k: usize) -> String {
    let suffix = match (k % 10, k % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{k}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Coverage of (k, n+1-k) for n = 3..=20 and every k, against the binomial tails worked out
    /// by hand: 1 - 2·Σ_{i<k} C(n,i) / 2^n.
    #[test]
    fn coverage_matches_the_binomial_tails() {
        let known = [
            (3, 1, 0.75),
            (4, 1, 0.875),
            (5, 1, 0.9375),
            (6, 1, 0.96875),
            (6, 2, 0.78125),
            (7, 1, 0.984375),
            (7, 2, 0.875),
            (8, 1, 0.9921875),
            (8, 2, 0.9296875),
            (9, 2, 0.9609375),
            (10, 2, 0.978515625),
            (10, 3, 0.890625),
            (11, 2, 0.98828125),
            (11, 3, 0.934570312),
            (12, 3, 0.961425781),
            (13, 3, 0.977539062),
            (14, 3, 0.987060547),
            (14, 4, 0.942626953),
            (15, 4, 0.964843750),
            (16, 4, 0.978729248),
            (17, 5, 0.950958252),
            (18, 5, 0.969116211),
            (19, 5, 0.980789185),
            (20, 6, 0.958610535),
        ];
        for (n, k, want) in known {
            let got = coverage(n, k);
            assert!((got - want).abs() < 1e-8, "n={n} k={k}: {got} != {want}");
        }
        // The complement, counted the long way round: every subset of n signs.
        for n in 3..=20usize {
            for k in 1..=n.div_ceil(2) {
                let inside = (0u32..1 << n)
                    .filter(|s| {
                        let below = s.count_ones() as usize;
                        below >= k && n - below >= k
                    })
                    .count();
                let want = inside as f64 / (1u64 << n) as f64;
                assert!((coverage(n, k) - want).abs() < 1e-12, "n={n} k={k}");
            }
        }
    }

    #[test]
    fn the_narrowest_pair_reaching_95_percent_is_chosen() {
        let chosen: Vec<(usize, usize, usize)> =
            (6..=20).map(|n| (n, ranks(n).0, ranks(n).1)).collect();
        assert_eq!(
            chosen,
            [
                (6, 1, 6),
                (7, 1, 7),
                (8, 1, 8),
                (9, 2, 8),
                (10, 2, 9),
                (11, 2, 10),
                (12, 3, 10),
                (13, 3, 11),
                (14, 3, 12),
                (15, 4, 12),
                (16, 4, 13),
                (17, 5, 13),
                (18, 5, 14),
                (19, 5, 15),
                (20, 6, 15),
            ]
        );
        for n in 6..=100 {
            let (lo, hi, level) = ranks(n);
            assert_eq!(lo + hi, n + 1, "symmetric");
            assert!(level >= LEVEL, "n={n}");
            assert!(
                coverage(n, lo + 1) < LEVEL,
                "n={n}: a narrower pair would do"
            );
        }
    }

    #[test]
    fn too_few_repeats_give_the_range_with_its_real_level() {
        assert_eq!(ranks(0), (0, 0, 0.0));
        assert_eq!(ranks(1), (1, 1, 0.0));
        assert_eq!(ranks(2), (1, 2, 0.5));
        assert_eq!(ranks(3), (1, 3, 0.75));
        assert_eq!(ranks(5), (1, 5, 0.9375));
    }

    #[test]
    fn bounds_name_the_repeats() {
        assert_eq!(bounds(10), "the 2nd and 9th of 10 repeats");
        assert_eq!(bounds(8), "the lowest and highest of 8 repeats");
        assert_eq!(bounds(23), "the 7th and 17th of 23 repeats");
        assert_eq!(bounds(21), "the 6th and 16th of 21 repeats");
        assert_eq!(bounds(1), "the one repeat");
        assert_eq!(ordinal(3), "3rd");
        assert_eq!(ordinal(11), "11th");
        assert_eq!(ordinal(101), "101st");
    }
}
