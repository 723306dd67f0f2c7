//! A flat counter with exactly HdrHistogram's buckets, for the round loops' hot path.
//!
//! `Histogram::saturating_record` costs about 65 instructions (an `Option` index, a resize check,
//! a saturating add, the min/max and total updates); a round loop records three values per turn,
//! and on one CPU those instructions are a measurable share of a 3 µs round trip (docs/overhead.md).
//! A [`Tally`] computes the same bucket index in a few shifts and bumps one counter; at the end of
//! the run [`Tally::to_histogram`] records each bucket's count at that bucket's value, so the
//! resulting histogram is identical to recording every value directly (the tests check it).

use std::sync::OnceLock;

use hdrhistogram::Histogram;

use crate::histwire::{MAX_TRACKED, SIGNIFICANT_DIGITS, new_histogram};

/// log2 of half the sub-buckets per bucket: 3 significant digits need 2 × 10³ unit-resolution
/// values, so 2048 sub-buckets, half of them 1024.
const HALF_MAGNITUDE: u32 = 10;
const HALF_COUNT: usize = 1 << HALF_MAGNITUDE;
const SUB_BUCKET_MASK: u64 = (2 << HALF_MAGNITUDE) - 1;
/// HdrHistogram's `leading_zero_count_base` for a lowest discernible value of 1 (unit magnitude 0).
const LEADING_ZERO_BASE: u32 = 64 - HALF_MAGNITUDE - 1;

const _: () = assert!(
    SIGNIFICANT_DIGITS == 3,
    "HALF_MAGNITUDE is derived for 3 digits"
);

/// Counts per HdrHistogram bucket of lockfair's standard histogram ([`new_histogram`]).
#[derive(Clone, Debug)]
pub struct Tally {
    counts: Vec<u64>,
    /// Where values above the histogram's range go: the bucket of [`MAX_TRACKED`], as
    /// `saturating_record` clamps them.
    top: usize,
}

impl Default for Tally {
    fn default() -> Self {
        Tally::new()
    }
}

impl Tally {
    /// Empty, as long as the standard histogram's counts array.
    pub fn new() -> Self {
        // The standard histogram's counts length, learnt once (a histogram is a 270 KB allocation).
        static LEN: OnceLock<usize> = OnceLock::new();
        let len = *LEN.get_or_init(|| new_histogram().distinct_values());
        let top = index_of(MAX_TRACKED);
        debug_assert!(top < len);
        Tally {
            counts: vec![0; len],
            top,
        }
    }

    /// Counts `value` (clamped to the histogram's range, as `saturating_record` does).
    #[inline]
    pub fn record(&mut self, value: u64) {
        let i = index_of(value);
        let i = if i < self.counts.len() { i } else { self.top };
        self.counts[i] += 1;
    }

    /// The standard histogram these counts describe.
    pub fn to_histogram(&self) -> Histogram<u64> {
        let mut h = new_histogram();
        for (i, &n) in self.counts.iter().enumerate().filter(|(_, n)| **n > 0) {
            h.saturating_record_n(value_of(i), n);
        }
        h
    }
}

/// HdrHistogram's `index_for` for lockfair's bounds.
#[inline]
fn index_of(value: u64) -> usize {
    let bucket = LEADING_ZERO_BASE - (value | SUB_BUCKET_MASK).leading_zeros();
    let sub_bucket = (value >> bucket) as usize;
    ((bucket as usize + 1) << HALF_MAGNITUDE) + sub_bucket - HALF_COUNT
}

/// The lowest value that lands at `index` (HdrHistogram's `value_for`).
fn value_of(index: usize) -> u64 {
    let bucket = (index >> HALF_MAGNITUDE) as i64 - 1;
    let sub_bucket = (index & (HALF_COUNT - 1)) + HALF_COUNT;
    if bucket < 0 {
        (sub_bucket - HALF_COUNT) as u64
    } else {
        (sub_bucket as u64) << bucket
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(values: &[u64]) {
        let mut direct = new_histogram();
        let mut tally = Tally::new();
        for &v in values {
            direct.saturating_record(v);
            tally.record(v);
        }
        let via = tally.to_histogram();
        assert_eq!(via, direct);
        let a: Vec<_> = direct
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        let b: Vec<_> = via
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        assert_eq!(a, b);
        assert_eq!(via.max(), direct.max());
        assert_eq!(via.min(), direct.min());
        assert_eq!(via.len(), values.len() as u64);
    }

    #[test]
    fn bucket_edges_land_where_hdrhistogram_puts_them() {
        let mut values = vec![0, 1, 2, 1023, 1024, 2047, 2048, 2049, 4095, 4096, 4097];
        for shift in 0..63 {
            let p = 1u64 << shift;
            values.extend([p - 1, p, p + 1, p + p / 3]);
        }
        values.extend([MAX_TRACKED - 1, MAX_TRACKED, MAX_TRACKED + 1, u64::MAX]);
        same(&values);
    }

    #[test]
    fn random_values_give_the_same_histogram() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let values: Vec<u64> = (0..20_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x >> (x % 60)
            })
            .collect();
        same(&values);
    }

    #[test]
    fn every_index_round_trips_through_its_value() {
        let len = new_histogram().distinct_values();
        for i in 0..len {
            assert_eq!(index_of(value_of(i)), i, "index {i}");
        }
    }
}
