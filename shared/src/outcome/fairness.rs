//! The fairness figures of one run, over all its contenders: Jain's index, the barging rate, the
//! longest wait. Shown beside each other in `run` and in every `compare` cell.

use hdrhistogram::Histogram;

use super::RunReport;
use crate::measure::new_histogram;

/// Jain's fairness index of `xs`: 1 when all are equal, 1/N when one has everything.
pub fn jain_index(xs: &[f64]) -> f64 {
    let sum: f64 = xs.iter().sum();
    let squares: f64 = xs.iter().map(|x| x * x).sum();
    if squares == 0.0 {
        1.0
    } else {
        sum * sum / (xs.len() as f64 * squares)
    }
}

impl RunReport {
    /// Jain's index (see [`RunJson::jain_index`](super::RunJson::jain_index)).
    pub fn jain_index(&self) -> Option<f64> {
        let xs: Vec<f64> = self
            .contenders()
            .map(|s| {
                s.free
                    .as_ref()
                    .map_or(s.rounds, |f| f.acquisitions_in_window) as f64
            })
            .collect();
        (xs.iter().sum::<f64>() > 0.0).then(|| jain_index(&xs))
    }

    /// The barging rate (see [`RunJson::barging_rate`](super::RunJson::barging_rate)).
    pub fn barging_rate(&self) -> f64 {
        let (mut barged, mut grants) = (0u64, 0u64);
        for s in self.contenders() {
            // Counts come from other processes: add without trusting them not to overflow.
            match &s.free {
                Some(f) => {
                    barged = barged.saturating_add(f.barging);
                    grants = grants.saturating_add(s.rounds);
                }
                None => {
                    barged = barged.saturating_add(s.whoops);
                    grants = grants.saturating_add(s.whoops.saturating_add(s.rounds));
                }
            }
        }
        if grants == 0 {
            0.0
        } else {
            barged as f64 / grants as f64
        }
    }

    /// The longest wait of any contender.
    pub fn max_wait_ns(&self) -> u64 {
        self.contenders().map(|s| s.wait().max()).max().unwrap_or(0)
    }

    /// Every contender's wait, merged.
    pub fn merged_wait(&self) -> Histogram<u64> {
        let mut all = new_histogram();
        for s in self.contenders() {
            let _ = all.add(s.wait());
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::jain_index;

    #[test]
    fn jain_index_spans_one_over_n_to_one() {
        assert_eq!(jain_index(&[5.0, 5.0, 5.0, 5.0]), 1.0);
        assert_eq!(jain_index(&[8.0, 0.0, 0.0, 0.0]), 0.25);
        let j = jain_index(&[3.0, 1.0]);
        assert!(j > 0.5 && j < 1.0);
    }
}
