//! HdrHistogram's standard percentile-distribution text (`.hgrm`), as Java's
//! `outputPercentileDistribution` writes it: the format HdrHistogram's online plotter and tools
//! read. The Rust crate has no writer, so this is the one piece written by hand.

use std::fmt::Write;

use hdrhistogram::Histogram;

/// Values are written in microseconds: nanoseconds divided by this.
pub const SCALE_TO_MICROS: f64 = 1000.0;
/// Percentile rows per halving of the distance to 100% (Java's default is 5).
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// The `.hgrm` text of `h` (recorded in ns), values in µs.
pub fn to_hgrm(h: &Histogram<u64>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let scale = SCALE_TO_MICROS;
    if !h.is_empty() {
        let mut total = 0u64;
        for v in h.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            let value = v.value_iterated_to() as f64 / scale;
            let q = v.quantile_iterated_to();
            total += v.count_since_last_iteration();
            if q < 1.0 {
                let _ = writeln!(
                    out,
                    "{value:12.3} {q:2.12} {total:10} {:14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(out, "{value:12.3} {q:2.12} {total:10}");
            }
        }
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        h.mean() / scale,
        h.stdev() / scale
    );
    let _ = writeln!(
        out,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        h.max() as f64 / scale,
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        sub_bucket_count(crate::measure::SIGNIFICANT_DIGITS)
    );
    out
}

/// HdrHistogram's sub-bucket count for `digits` significant digits (2048 for 3).
fn sub_bucket_count(digits: u8) -> u64 {
    let single_unit = 2 * 10u64.pow(u32::from(digits));
    single_unit.next_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::new_histogram;

    #[test]
    fn rows_parse_and_end_at_the_total() {
        let mut h = new_histogram();
        for v in 1..=10_000u64 {
            h.record(v * 100).unwrap();
        }
        let text = to_hgrm(&h);
        let rows: Vec<Vec<f64>> = text
            .lines()
            .skip(2)
            .take_while(|l| !l.starts_with('#'))
            .map(|l| l.split_whitespace().map(|f| f.parse().unwrap()).collect())
            .collect();
        assert!(rows.len() > 20);
        assert!(
            rows.windows(2).all(|w| w[0][1] <= w[1][1]),
            "percentiles grow"
        );
        let last = rows.last().unwrap();
        assert_eq!(last.len(), 3, "the 100% row has no 1/(1-p)");
        assert_eq!(last[2] as u64, 10_000);
        assert!(
            (last[0] - 1000.0).abs() < 1.0,
            "max is 1 ms = 1000 µs: {last:?}"
        );
        assert!(text.contains("Total count    =        10000"));
    }
}
