//! From the probes of a run to its results: percentiles, violation buckets, per channel and
//! per host figures, the SLA checks and the verdict.

use std::collections::BTreeMap;
use std::net::IpAddr;

use control::testrun::{
    Bucket, Check, PartResult, Sla, Summary, Verdict, ZapRecord, MAX_REPORT_RECORDS,
};

use super::{Nanos, Probe};

const MS: Nanos = 1_000_000;

/// Nearest-rank percentiles, min, max and mean of `delays` (sorted here).
pub fn summary(delays: &mut [Nanos]) -> Summary {
    if delays.is_empty() {
        return Summary::default();
    }
    delays.sort_unstable();
    let rank = |p: usize| -> Nanos {
        // The smallest delay with at least p % of the delays at or below it.
        let index = (p * delays.len()).div_ceil(100).max(1) - 1;
        delays[index]
    };
    let total: u128 = delays.iter().map(|&d| u128::from(d)).sum();
    Summary {
        count: delays.len() as u64,
        min_ns: delays[0],
        p50_ns: rank(50),
        p90_ns: rank(90),
        p99_ns: rank(99),
        max_ns: delays[delays.len() - 1],
        mean_ns: (total / delays.len() as u128) as u64,
    }
}

/// How many of `delays` exceed each threshold.
pub fn buckets(delays: &[Nanos], thresholds_ms: &[u64]) -> Vec<Bucket> {
    thresholds_ms
        .iter()
        .map(|&threshold_ms| Bucket {
            threshold_ms,
            over: delays
                .iter()
                .filter(|&&d| d > threshold_ms.saturating_mul(MS))
                .count() as u64,
        })
        .collect()
}

/// What one probe measured, judged against the not-received limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    pub join_delay: Option<Nanos>,
    pub leave_delay: Option<Nanos>,
    pub overlap: Option<Nanos>,
    pub not_received: bool,
}

impl<H> Probe<H> {
    /// Its delays; a first packet later than `not_received_limit` after the join (or none
    /// at all) is "not received" and no join delay.
    pub fn measured(&self, not_received_limit: Nanos) -> Measured {
        let join = self
            .join_sent
            .zip(self.first_packet)
            .map(|(sent, first)| first.saturating_sub(sent))
            .filter(|&d| d <= not_received_limit);
        let not_received = self.to.is_some() && self.join_sent.is_some() && join.is_none();
        let leave = match (self.leave_sent, self.leave_shared) {
            (Some(sent), false) => Some(self.last_packet.map_or(0, |l| l.saturating_sub(sent))),
            _ => None,
        };
        let overlap = match (self.zap, self.first_packet, self.last_packet) {
            (true, Some(first), Some(last)) if !self.leave_shared => {
                Some(last.saturating_sub(first))
            }
            _ => None,
        };
        Measured {
            join_delay: join,
            leave_delay: leave,
            overlap,
            not_received,
        }
    }
}

/// The results of a run's probes, before the report names its hosts.
#[derive(Debug, Clone)]
pub struct Results {
    pub join_delay: Summary,
    pub leave_delay: Summary,
    pub overlap: Summary,
    pub overlap_packets: u64,
    pub not_received: u64,
    pub leave_shared: u64,
    pub forwarded_without_join: u64,
    pub forwarded_after_leave: u64,
    pub zaps: u64,
    pub buckets: Vec<Bucket>,
    pub channels: Vec<PartResult>,
    pub per_host: Vec<PartResult>,
    pub checks: Vec<Check>,
    pub records: Vec<ZapRecord>,
    pub records_total: u64,
}

impl Results {
    /// These results with the hosts of `hosts` listed (their places in address order):
    /// O(channels + the page), whatever the number of zaps and hosts.
    pub fn page(&self, hosts: std::ops::Range<usize>) -> Results {
        let end = hosts.end.min(self.per_host.len());
        let start = hosts.start.min(end);
        Results {
            buckets: self.buckets.clone(),
            channels: self.channels.clone(),
            per_host: self.per_host[start..end].to_vec(),
            checks: self.checks.clone(),
            records: self.records.clone(),
            ..*self
        }
    }
}

#[derive(Default)]
struct Part {
    joins: Vec<Nanos>,
    leaves: Vec<Nanos>,
    not_received: u64,
}

impl Part {
    fn result(mut self, of: String) -> PartResult {
        PartResult {
            of,
            join_delay: summary(&mut self.joins),
            leave_delay: summary(&mut self.leaves),
            not_received: self.not_received,
        }
    }
}

/// One host's (or any set of probes') figures, exact.
pub fn part_of<'p, H: 'p>(
    probes: impl Iterator<Item = &'p Probe<H>>,
    judge: &Judge,
    of: String,
) -> PartResult {
    let mut part = Part::default();
    for probe in probes {
        let m = probe.measured(judge.not_received_limit);
        if let Some(d) = m.join_delay {
            part.joins.push(d);
        }
        if m.not_received {
            part.not_received += 1;
        }
        if let Some(d) = m.leave_delay {
            part.leaves.push(d);
        }
    }
    part.result(of)
}

/// How the results are judged and shown.
pub struct Judge<'a> {
    pub sla: &'a Sla,
    pub thresholds_ms: &'a [u64],
    pub not_received_limit: Nanos,
    /// RFC 3918: forwarded without join / after leave are checked (0 allowed).
    pub forwarding_checks: bool,
    /// The run's start: record times are from it.
    pub start: Nanos,
    /// Keep every record (the report) or none (`test status`).
    pub with_records: bool,
}

/// Everything measured by `probes`, hosts named by `name`.
pub fn results<H: Copy + Ord>(
    probes: &[Probe<H>],
    judge: &Judge,
    name: &dyn Fn(H) -> String,
) -> Results {
    let mut all = Part::default();
    let mut channels: BTreeMap<IpAddr, Part> = BTreeMap::new();
    let mut hosts: BTreeMap<H, Part> = BTreeMap::new();
    let mut overlaps = Vec::new();
    let mut records = Vec::new();
    let (mut overlap_packets, mut leave_shared, mut zaps) = (0, 0, 0);
    let (mut without_join, mut after_leave) = (0, 0);
    for probe in probes {
        let m = probe.measured(judge.not_received_limit);
        let host = hosts.entry(probe.host).or_default();
        if probe.join_sent.is_some() {
            zaps += 1;
        }
        if let Some(d) = m.join_delay {
            all.joins.push(d);
            host.joins.push(d);
            if let Some(to) = probe.to {
                channels.entry(to).or_default().joins.push(d);
            }
        }
        if m.not_received {
            all.not_received += 1;
            host.not_received += 1;
            if let Some(to) = probe.to {
                channels.entry(to).or_default().not_received += 1;
            }
        }
        if let Some(d) = m.leave_delay {
            all.leaves.push(d);
            host.leaves.push(d);
            if let Some(from) = probe.from {
                channels.entry(from).or_default().leaves.push(d);
            }
        }
        if let Some(d) = m.overlap {
            overlaps.push(d);
        }
        overlap_packets += probe.overlap_packets;
        leave_shared += u64::from(probe.leave_shared);
        without_join += probe.before_join_packets;
        after_leave += probe.after_leave_packets;
        if judge.with_records && records.len() < MAX_REPORT_RECORDS {
            let at = |t: Option<Nanos>| t.map(|t| t.saturating_sub(judge.start));
            records.push(ZapRecord {
                host: name(probe.host),
                seq: probe.seq,
                from: probe.from,
                to: probe.to,
                join_sent_ns: at(probe.join_sent),
                first_packet_ns: at(probe.first_packet),
                leave_sent_ns: at(probe.leave_sent),
                last_packet_ns: at(probe.last_packet),
                join_delay_ns: m.join_delay,
                leave_delay_ns: m.leave_delay,
                overlap_ns: m.overlap,
                overlap_packets: probe.overlap_packets,
                not_received: m.not_received,
                leave_shared: probe.leave_shared,
                before_join_packets: probe.before_join_packets,
                after_leave_packets: probe.after_leave_packets,
            });
        }
    }
    let buckets = buckets(&all.joins, judge.thresholds_ms);
    let join_delay = summary(&mut all.joins);
    let leave_delay = summary(&mut all.leaves);
    let overlap = summary(&mut overlaps);
    let channels: Vec<PartResult> = channels
        .into_iter()
        .map(|(g, part)| part.result(g.to_string()))
        .collect();
    let per_host: Vec<PartResult> = hosts
        .into_iter()
        .map(|(h, part)| part.result(name(h)))
        .collect();
    let mut results = Results {
        join_delay,
        leave_delay,
        overlap,
        overlap_packets,
        not_received: all.not_received,
        leave_shared,
        forwarded_without_join: without_join,
        forwarded_after_leave: after_leave,
        zaps,
        buckets,
        channels,
        per_host,
        checks: Vec::new(),
        records,
        records_total: if judge.with_records {
            probes.len() as u64
        } else {
            0
        },
    };
    results.checks = checks(&results, judge);
    results
}

/// One check per SLA threshold given, overall and per channel; not received always (and for
/// RFC 3918, forwarding without a join and after the leave).
pub fn checks(r: &Results, judge: &Judge) -> Vec<Check> {
    let sla = judge.sla;
    let mut checks = Vec::new();
    let mut delay = |name: &str, scope: &str, measured: &Summary, max_ms: u64| {
        let threshold = max_ms.saturating_mul(MS);
        checks.push(Check {
            name: name.into(),
            scope: scope.into(),
            measured: measured.max_ns,
            threshold,
            unit: "ns".into(),
            pass: measured.max_ns <= threshold,
        });
    };
    if let Some(max) = sla.max_join_delay_ms {
        delay("max_join_delay_ms", "overall", &r.join_delay, max);
        for c in &r.channels {
            delay("max_join_delay_ms", &c.of, &c.join_delay, max);
        }
    }
    if let Some(max) = sla.max_leave_delay_ms {
        delay("max_leave_delay_ms", "overall", &r.leave_delay, max);
        for c in &r.channels {
            delay("max_leave_delay_ms", &c.of, &c.leave_delay, max);
        }
    }
    if let Some(max) = sla.max_overlap_ms {
        delay("max_overlap_ms", "overall", &r.overlap, max);
    }
    let mut count = |name: &str, measured: u64, threshold: u64, unit: &str| {
        checks.push(Check {
            name: name.into(),
            scope: "overall".into(),
            measured,
            threshold,
            unit: unit.into(),
            pass: measured <= threshold,
        });
    };
    count(
        "max_not_received",
        r.not_received,
        sla.max_not_received,
        "zaps",
    );
    if judge.forwarding_checks {
        count(
            "forwarded_without_join",
            r.forwarded_without_join,
            0,
            "packets",
        );
        count(
            "forwarded_after_leave",
            r.forwarded_after_leave,
            0,
            "packets",
        );
    }
    checks
}

/// Pass when every check passes.
pub fn verdict(checks: &[Check]) -> Verdict {
    if checks.iter().all(|c| c.pass) {
        Verdict::Pass
    } else {
        Verdict::Fail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_known_data() {
        let mut delays: Vec<Nanos> = (1..=100).rev().collect();
        let s = summary(&mut delays);
        assert_eq!(
            s,
            Summary {
                count: 100,
                min_ns: 1,
                p50_ns: 50,
                p90_ns: 90,
                p99_ns: 99,
                max_ns: 100,
                mean_ns: 50,
            }
        );
        let one = summary(&mut [7]);
        assert_eq!(
            (one.p50_ns, one.p99_ns, one.min_ns, one.mean_ns),
            (7, 7, 7, 7)
        );
        assert_eq!(summary(&mut []), Summary::default());
        // Nearest rank: of 4, p50 is the 2nd, p90 and p99 the 4th.
        let four = summary(&mut [40, 10, 30, 20]);
        assert_eq!((four.p50_ns, four.p90_ns, four.p99_ns), (20, 40, 40));
        assert_eq!(four.mean_ns, 25);
    }

    #[test]
    fn buckets_count_the_delays_over_each_threshold() {
        let delays = [100 * MS, 125 * MS, 126 * MS, 600 * MS, 3000 * MS];
        let b = buckets(&delays, &[125, 250, 500, 1000, 2000]);
        let over: Vec<(u64, u64)> = b.iter().map(|b| (b.threshold_ms, b.over)).collect();
        assert_eq!(
            over,
            vec![(125, 3), (250, 2), (500, 2), (1000, 1), (2000, 1)]
        );
    }

    fn probe(host: u32, to: u8, join_sent: Nanos, first: Option<Nanos>) -> Probe<u32> {
        Probe {
            host,
            seq: 0,
            zap: true,
            from: None,
            to: Some(IpAddr::from([239, 0, 0, to])),
            join_sent: Some(join_sent),
            first_packet: first,
            ..Probe::new(host)
        }
    }

    #[test]
    fn sla_thresholds_decide_the_verdict_per_channel() {
        let probes = vec![
            probe(1, 1, 0, Some(20 * MS)),
            probe(1, 2, 1000 * MS, Some(1300 * MS)),
            probe(2, 1, 0, Some(30 * MS)),
        ];
        let sla = Sla {
            max_join_delay_ms: Some(100),
            ..Sla::default()
        };
        let judge = Judge {
            sla: &sla,
            thresholds_ms: &[125, 250],
            not_received_limit: 2000 * MS,
            forwarding_checks: false,
            start: 0,
            with_records: true,
        };
        let r = results(&probes, &judge, &|h| format!("h{h}"));
        assert_eq!(r.join_delay.count, 3);
        assert_eq!(r.join_delay.max_ns, 300 * MS);
        let failed: Vec<(&str, &str)> = r
            .checks
            .iter()
            .filter(|c| !c.pass)
            .map(|c| (c.name.as_str(), c.scope.as_str()))
            .collect();
        assert_eq!(
            failed,
            vec![
                ("max_join_delay_ms", "overall"),
                ("max_join_delay_ms", "239.0.0.2")
            ]
        );
        assert_eq!(verdict(&r.checks), Verdict::Fail);
        // Channel 239.0.0.1 passes on its own; not received is checked (none).
        assert!(r
            .checks
            .iter()
            .any(|c| c.scope == "239.0.0.1" && c.pass && c.measured == 30 * MS));
        assert!(r
            .checks
            .iter()
            .any(|c| c.name == "max_not_received" && c.pass));
        assert_eq!(r.per_host.len(), 2);
        assert_eq!(r.per_host[0].of, "h1");
        assert_eq!(r.per_host[0].join_delay.count, 2);
        assert_eq!(r.records.len(), 3);
        let loose = Sla {
            max_join_delay_ms: Some(300),
            ..Sla::default()
        };
        let judge = Judge {
            sla: &loose,
            ..judge
        };
        assert_eq!(
            verdict(&results(&probes, &judge, &|h| h.to_string()).checks),
            Verdict::Pass
        );
    }

    #[test]
    fn a_late_first_packet_is_not_received() {
        let late = probe(1, 1, 0, Some(2500 * MS));
        let m = late.measured(2000 * MS);
        assert!(m.not_received);
        assert_eq!(m.join_delay, None);
        let never = probe(1, 1, 0, None);
        assert!(never.measured(2000 * MS).not_received);
        let fine = probe(1, 1, 0, Some(5 * MS));
        assert_eq!(fine.measured(2000 * MS).join_delay, Some(5 * MS));
    }
}
