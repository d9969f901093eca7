//! A running run's figures kept as it goes, so that `test status` and `/api/test` cost
//! O(channels + page) however many zaps it made: each probe is added once it is settled (past
//! the horizon after which nothing can change it: the view or twice the leave grace for a zap,
//! the whole iteration for RFC 3918) to log-bucketed sketches (16 buckets per octave: a
//! percentile within 3 % of the exact one; count, min, max and mean exact), overall and per
//! channel; per host, the page asked for is computed exactly from its settled probes. Once the
//! run is over its report is exact ([`super::Run::report_page`]).

use std::collections::BTreeMap;
use std::hash::Hash;
use std::net::IpAddr;

use control::prometheus::Histogram;
use control::testrun::{PartResult, Summary};

use super::summary::{self, Judge, Results};
use super::{Nanos, Probe};

const SUB_BITS: u32 = 4;
const BUCKETS: usize = crate::log_buckets::buckets(SUB_BITS);

fn bucket_of(ns: Nanos) -> usize {
    crate::log_buckets::bucket_of(ns, SUB_BITS)
}

/// The middle of bucket `b`.
fn value_of(b: usize) -> Nanos {
    crate::log_buckets::value_of(b, SUB_BITS)
}

/// Every settled probe's join and leave delay since the daemon started, over every run: the
/// `/metrics` histograms `tunmcast_test_join_delay_seconds` and `..._leave_...` (counters, so
/// they only grow; the buckets are the delay histograms' own, BNG Blaster's violation
/// thresholds).
#[derive(Debug, Clone)]
pub struct ZapHistograms {
    pub join: Histogram,
    pub leave: Histogram,
}

impl Default for ZapHistograms {
    fn default() -> ZapHistograms {
        ZapHistograms {
            join: Histogram::delays(),
            leave: Histogram::delays(),
        }
    }
}

/// Delays of one kind: a log-bucketed histogram (4 KiB) and the exact count, min, max, sum.
#[derive(Debug, Clone)]
pub struct Sketch {
    counts: Box<[u32; BUCKETS]>,
    count: u64,
    min: Nanos,
    max: Nanos,
    sum: u128,
}

impl Default for Sketch {
    fn default() -> Sketch {
        Sketch {
            counts: Box::new([0; BUCKETS]),
            count: 0,
            min: Nanos::MAX,
            max: 0,
            sum: 0,
        }
    }
}

impl Sketch {
    pub fn observe(&mut self, ns: Nanos) {
        let b = bucket_of(ns);
        self.counts[b] = self.counts[b].saturating_add(1);
        self.count += 1;
        self.min = self.min.min(ns);
        self.max = self.max.max(ns);
        self.sum += u128::from(ns);
    }

    /// Nearest-rank percentiles as their bucket's middle (within the exact min and max).
    pub fn summary(&self) -> Summary {
        if self.count == 0 {
            return Summary::default();
        }
        let ranks = [50u64, 90, 99].map(|p| (p * self.count).div_ceil(100).max(1));
        let mut found = [0; 3];
        let mut seen = 0u64;
        let mut next = 0;
        for (b, &n) in self.counts.iter().enumerate() {
            seen += u64::from(n);
            while next < 3 && seen >= ranks[next] {
                found[next] = value_of(b).clamp(self.min, self.max);
                next += 1;
            }
            if next == 3 {
                break;
            }
        }
        Summary {
            count: self.count,
            min_ns: self.min,
            p50_ns: found[0],
            p90_ns: found[1],
            p99_ns: found[2],
            max_ns: self.max,
            mean_ns: (self.sum / u128::from(self.count)) as u64,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct ChannelTally {
    joins: Sketch,
    leaves: Sketch,
    not_received: u64,
}

/// The settled probes' figures.
#[derive(Debug)]
pub struct Tally<H> {
    /// Probes before this index are in.
    settled: usize,
    /// A probe is settled this long after it was made.
    horizon: Nanos,
    joins: Sketch,
    leaves: Sketch,
    overlaps: Sketch,
    over_threshold: Vec<u64>,
    not_received: u64,
    overlap_packets: u64,
    leave_shared: u64,
    without_join: u64,
    after_leave: u64,
    zaps: u64,
    channels: BTreeMap<IpAddr, ChannelTally>,
    /// Each host's settled probes.
    by_host: BTreeMap<H, Vec<u32>>,
}

impl<H: Copy + Ord + Hash> Tally<H> {
    /// The run's `hosts` (each listed from the start); probes settle `horizon` after they are
    /// made; join delays are counted over each of `thresholds` ms.
    pub fn new(hosts: impl IntoIterator<Item = H>, horizon: Nanos, thresholds: usize) -> Tally<H> {
        Tally {
            settled: 0,
            horizon,
            joins: Sketch::default(),
            leaves: Sketch::default(),
            overlaps: Sketch::default(),
            over_threshold: vec![0; thresholds],
            not_received: 0,
            overlap_packets: 0,
            leave_shared: 0,
            without_join: 0,
            after_leave: 0,
            zaps: 0,
            channels: BTreeMap::new(),
            by_host: hosts.into_iter().map(|h| (h, Vec::new())).collect(),
        }
    }

    /// Adds the probes settled by `now`, in the order they were made, to the run's figures
    /// and to the daemon's histograms `metrics`: O(those).
    pub fn settle(
        &mut self,
        probes: &[Probe<H>],
        now: Nanos,
        judge: &Judge,
        metrics: &mut ZapHistograms,
    ) {
        while let Some(probe) = probes.get(self.settled) {
            if probe.created.saturating_add(self.horizon) >= now {
                break;
            }
            self.add(probe, judge, metrics);
            self.by_host
                .entry(probe.host)
                .or_default()
                .push(self.settled as u32);
            self.settled += 1;
        }
    }

    fn add(&mut self, probe: &Probe<H>, judge: &Judge, metrics: &mut ZapHistograms) {
        let m = probe.measured(judge.not_received_limit);
        if probe.join_sent.is_some() {
            self.zaps += 1;
        }
        if let Some(d) = m.join_delay {
            self.joins.observe(d);
            metrics.join.observe_ns(d);
            for (over, &t) in self.over_threshold.iter_mut().zip(judge.thresholds_ms) {
                if d > t.saturating_mul(super::MS) {
                    *over += 1;
                }
            }
            if let Some(to) = probe.to {
                self.channels.entry(to).or_default().joins.observe(d);
            }
        }
        if m.not_received {
            self.not_received += 1;
            if let Some(to) = probe.to {
                self.channels.entry(to).or_default().not_received += 1;
            }
        }
        if let Some(d) = m.leave_delay {
            self.leaves.observe(d);
            metrics.leave.observe_ns(d);
            if let Some(from) = probe.from {
                self.channels.entry(from).or_default().leaves.observe(d);
            }
        }
        if let Some(d) = m.overlap {
            self.overlaps.observe(d);
        }
        self.overlap_packets += probe.overlap_packets;
        self.leave_shared += u64::from(probe.leave_shared);
        self.without_join += probe.before_join_packets;
        self.after_leave += probe.after_leave_packets;
    }

    /// The figures of the settled probes, the hosts of `hosts` (their places in address
    /// order) listed; and how many hosts there are. O(channels + the page's probes).
    pub fn results(
        &self,
        probes: &[Probe<H>],
        judge: &Judge,
        name: &dyn Fn(H) -> String,
        hosts: std::ops::Range<usize>,
    ) -> (Results, u64) {
        let per_host = self
            .by_host
            .iter()
            .skip(hosts.start)
            .take(hosts.end.saturating_sub(hosts.start))
            .map(|(&h, indices)| {
                summary::part_of(indices.iter().map(|&i| &probes[i as usize]), judge, name(h))
            })
            .collect();
        let mut results = Results {
            join_delay: self.joins.summary(),
            leave_delay: self.leaves.summary(),
            overlap: self.overlaps.summary(),
            overlap_packets: self.overlap_packets,
            not_received: self.not_received,
            leave_shared: self.leave_shared,
            forwarded_without_join: self.without_join,
            forwarded_after_leave: self.after_leave,
            zaps: self.zaps,
            buckets: judge
                .thresholds_ms
                .iter()
                .zip(&self.over_threshold)
                .map(|(&threshold_ms, &over)| control::testrun::Bucket { threshold_ms, over })
                .collect(),
            channels: self
                .channels
                .iter()
                .map(|(g, c)| PartResult {
                    of: g.to_string(),
                    join_delay: c.joins.summary(),
                    leave_delay: c.leaves.summary(),
                    not_received: c.not_received,
                })
                .collect(),
            per_host,
            checks: Vec::new(),
            records: Vec::new(),
            records_total: 0,
        };
        results.checks = summary::checks(&results, judge);
        (results, self.by_host.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sketch_percentiles_are_within_the_bucket_width_and_the_rest_exact() {
        let mut sketch = Sketch::default();
        let mut exact: Vec<Nanos> = (1..=1000u64).map(|i| i * 37_123 + i * i * 11).collect();
        for &d in &exact {
            sketch.observe(d);
        }
        let got = sketch.summary();
        let want = summary::summary(&mut exact);
        assert_eq!(
            (got.count, got.min_ns, got.max_ns, got.mean_ns),
            (want.count, want.min_ns, want.max_ns, want.mean_ns)
        );
        for (g, w) in [
            (got.p50_ns, want.p50_ns),
            (got.p90_ns, want.p90_ns),
            (got.p99_ns, want.p99_ns),
        ] {
            assert!(g.abs_diff(w) * 100 <= w * 4, "{g} against {w}");
        }
        assert_eq!(Sketch::default().summary(), Summary::default());
    }
}
