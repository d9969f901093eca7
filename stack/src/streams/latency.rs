//! A log-bucketed latency histogram, one per flow (link, source, group): each frame is
//! observed once, weighted by the hosts that received it, so that the quantiles and the
//! per-link Prometheus histogram count host-datagrams as before at the cost of one frame.

/// Nanoseconds.
pub type Nanos = u64;

/// Sub-buckets per power of two: a value is placed within 1/8 of an octave (≤ 9 %).
const SUB_BITS: u32 = 3;
const BUCKETS: usize = crate::log_buckets::buckets(SUB_BITS);

/// A log-bucketed latency histogram: 512 buckets of u32 counts, 2 KiB.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    counts: Box<[u32; BUCKETS]>,
    total: u64,
}

impl Default for LatencyHistogram {
    fn default() -> LatencyHistogram {
        LatencyHistogram {
            counts: Box::new([0; BUCKETS]),
            total: 0,
        }
    }
}

pub(super) fn bucket_of(ns: Nanos) -> usize {
    crate::log_buckets::bucket_of(ns, SUB_BITS)
}

/// The middle of bucket `b`.
pub(super) fn value_of(b: usize) -> Nanos {
    crate::log_buckets::value_of(b, SUB_BITS)
}

impl LatencyHistogram {
    pub fn observe(&mut self, ns: Nanos) {
        self.observe_times(ns, 1);
    }

    /// `times` values of `ns` (one frame as `times` hosts received it): O(1).
    pub fn observe_times(&mut self, ns: Nanos, times: u32) {
        if times == 0 {
            return;
        }
        let b = bucket_of(ns);
        self.counts[b] = self.counts[b].saturating_add(times);
        self.total += u64::from(times);
    }

    /// Each bucket that counted something: its middle and its count, smallest first.
    pub fn occupied(&self) -> impl Iterator<Item = (Nanos, u32)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, &count)| count > 0)
            .map(|(b, &count)| (value_of(b), count))
    }

    /// The `q` quantile (0 to 1) by nearest rank, as its bucket's middle; 0 when empty.
    pub fn quantile(&self, q: f64) -> Nanos {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0u64;
        for (b, &count) in self.counts.iter().enumerate() {
            seen += u64::from(count);
            if seen >= rank {
                return value_of(b);
            }
        }
        value_of(BUCKETS - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_within_a_ninth_of_the_value() {
        let mut h = LatencyHistogram::default();
        assert_eq!(h.quantile(0.5), 0);
        for ns in 1..=1000u64 {
            h.observe(ns * 1000);
        }
        let near = |got: u64, want: u64| u128::from(got.abs_diff(want)) * 9 <= u128::from(want);
        assert!(near(h.quantile(0.5), 500_000), "{}", h.quantile(0.5));
        assert!(near(h.quantile(0.99), 990_000), "{}", h.quantile(0.99));
        for ns in [0u64, 1, 7, 8, 9, 1000, u64::MAX / 2, u64::MAX] {
            let mid = value_of(bucket_of(ns));
            assert!(ns < 8 && mid == ns || near(mid, ns), "{ns}: {mid}");
        }
    }

    #[test]
    fn a_weighted_observation_counts_as_many() {
        let mut once = LatencyHistogram::default();
        let mut weighted = LatencyHistogram::default();
        for _ in 0..3 {
            once.observe(5000);
        }
        once.observe(90_000);
        weighted.observe_times(5000, 3);
        weighted.observe_times(90_000, 1);
        weighted.observe_times(1, 0);
        assert_eq!(
            once.occupied().collect::<Vec<_>>(),
            weighted.occupied().collect::<Vec<_>>()
        );
        assert_eq!(weighted.quantile(0.5), once.quantile(0.5));
        assert_eq!(weighted.quantile(0.99), once.quantile(0.99));
    }
}
