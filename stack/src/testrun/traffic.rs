//! A run's own streams ([`control::test_traffic::TestTraffic`]): which datagrams are its
//! channels' (by the stream header's stream number, the source and the group, so that a wrong
//! source or another stream of the group cannot fake a join), their one-way latency per
//! channel, and, once the run is over, what each host received and lost while joined (from the
//! receiver records, less what they held before the run).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hash;
use std::net::IpAddr;

use control::test_traffic::{Latency, TrafficPart, TrafficResult};
use control::testrun::{Check, Sla};

use super::Nanos;
use crate::streams::check::LatencyHistogram;

/// Latency of one channel's datagrams (or all of them).
#[derive(Debug, Clone, Default)]
struct LatencyRecord {
    histogram: LatencyHistogram,
    count: u64,
    max: Nanos,
}

impl LatencyRecord {
    fn observe(&mut self, ns: Nanos) {
        self.histogram.observe(ns);
        self.count += 1;
        self.max = self.max.max(ns);
    }

    fn latency(&self) -> Latency {
        Latency {
            count: self.count,
            p50_ns: self.histogram.quantile(0.5),
            p99_ns: self.histogram.quantile(0.99),
            max_ns: self.max,
        }
    }
}

/// Received and lost, of a host or a channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Got {
    pub received: u64,
    pub lost: u64,
}

impl Got {
    fn add(&mut self, other: Got) {
        self.received += other.received;
        self.lost += other.lost;
    }

    fn since(self, before: Got) -> Got {
        Got {
            received: self.received.saturating_sub(before.received),
            lost: self.lost.saturating_sub(before.lost),
        }
    }
}

/// What a datagram read on one of the run's segments is to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credit {
    /// Its channel stream's: credited to the zaps.
    Channel,
    /// A background stream's, or anything else: not the run's.
    Not,
}

/// The run's streams and what they measured.
#[derive(Debug)]
pub struct RunTraffic<H, L> {
    source: IpAddr,
    channels: Vec<IpAddr>,
    /// The daemon's stream numbers: each channel stream's channel.
    by_stream: HashMap<u32, usize>,
    background: HashSet<u32>,
    /// The run's hosts, and where they read.
    hosts: Vec<H>,
    segments: HashSet<L>,
    latency: Vec<LatencyRecord>,
    all: LatencyRecord,
    background_received: u64,
    /// Receiver figures of (host, channel) from before the run, where there were some.
    baseline: HashMap<(H, usize), Got>,
    /// Per host and per channel, once settled.
    per_host: BTreeMap<H, Got>,
    per_channel: Vec<Got>,
    settled: bool,
}

impl<H: Copy + Eq + Hash + Ord, L: Copy + Eq + Hash> RunTraffic<H, L> {
    /// The streams `channel_streams` (one per channel, in order) and `background` from
    /// `source`, for `hosts`, each on its segment.
    pub fn new(
        source: IpAddr,
        channels: Vec<IpAddr>,
        channel_streams: &[u32],
        background: &[u32],
        hosts: &[(H, L)],
    ) -> RunTraffic<H, L> {
        let n = channels.len();
        RunTraffic {
            source,
            channels,
            by_stream: channel_streams
                .iter()
                .enumerate()
                .map(|(i, &s)| (s, i))
                .collect(),
            background: background.iter().copied().collect(),
            hosts: hosts.iter().map(|&(h, _)| h).collect(),
            segments: hosts.iter().map(|&(_, l)| l).collect(),
            latency: vec![LatencyRecord::default(); n],
            all: LatencyRecord::default(),
            background_received: 0,
            baseline: HashMap::new(),
            per_host: BTreeMap::new(),
            per_channel: vec![Got::default(); n],
            settled: false,
        }
    }

    /// Every stream the run started.
    pub fn stream_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .by_stream
            .keys()
            .chain(&self.background)
            .copied()
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The run's hosts.
    pub fn hosts(&self) -> &[H] {
        &self.hosts
    }

    pub fn source(&self) -> IpAddr {
        self.source
    }

    pub fn channels(&self) -> &[IpAddr] {
        &self.channels
    }

    /// What a host held of channel `channel` before the run (its record's figures).
    pub fn set_baseline(&mut self, host: H, channel: usize, received: u64, lost: u64) {
        self.baseline
            .insert((host, channel), Got { received, lost });
    }

    /// A datagram of `group` from `source` read on `segment`, with the stream number and
    /// send time of its header (if it has one), at `at`. O(1).
    pub fn datagram(
        &mut self,
        segment: L,
        source: IpAddr,
        group: IpAddr,
        header: Option<(u32, Nanos)>,
        at: Nanos,
    ) -> Credit {
        let Some((stream, sent)) = header else {
            return Credit::Not;
        };
        if source != self.source || !self.segments.contains(&segment) {
            return Credit::Not;
        }
        if let Some(&channel) = self.by_stream.get(&stream) {
            if self.channels[channel] != group {
                return Credit::Not;
            }
            let latency = at.saturating_sub(sent);
            self.latency[channel].observe(latency);
            self.all.observe(latency);
            return Credit::Channel;
        }
        if self.background.contains(&stream) {
            self.background_received += 1;
        }
        Credit::Not
    }

    pub fn is_settled(&self) -> bool {
        self.settled
    }

    /// The run is over: `figures` gives, for each (host, channel) that has a receiver record,
    /// its received and lost now; less the baseline, they are the run's.
    pub fn settle(&mut self, figures: impl IntoIterator<Item = (H, usize, u64, u64)>) {
        for (host, channel, received, lost) in figures {
            let now = Got { received, lost };
            let before = self
                .baseline
                .get(&(host, channel))
                .copied()
                .unwrap_or_default();
            let got = now.since(before);
            self.per_host.entry(host).or_default().add(got);
            if let Some(c) = self.per_channel.get_mut(channel) {
                c.add(got);
            }
        }
        self.baseline = HashMap::new();
        self.settled = true;
    }

    /// The result, with the hosts of `hosts` (their places in host order) listed.
    pub fn result(
        &self,
        name: &dyn Fn(H) -> String,
        hosts: std::ops::Range<usize>,
    ) -> TrafficResult {
        let mut total = Got::default();
        for got in &self.per_channel {
            total.add(*got);
        }
        TrafficResult {
            streams: self.by_stream.len() as u32,
            background_streams: self.background.len() as u32,
            received: total.received,
            lost: total.lost,
            latency: self.all.latency(),
            background_received: self.background_received,
            channels: self
                .channels
                .iter()
                .zip(&self.per_channel)
                .zip(&self.latency)
                .map(|((g, got), latency)| TrafficPart {
                    of: g.to_string(),
                    received: got.received,
                    lost: got.lost,
                    latency: Some(latency.latency()),
                })
                .collect(),
            per_host: self
                .per_host
                .iter()
                .skip(hosts.start)
                .take(hosts.end.saturating_sub(hosts.start))
                .map(|(&h, got)| TrafficPart {
                    of: name(h),
                    received: got.received,
                    lost: got.lost,
                    latency: None,
                })
                .collect(),
        }
    }

    /// The SLA checks of the traffic: loss (overall and per channel, once settled) and the
    /// p99 latency per channel.
    pub fn checks(&self, sla: &Sla, result: &TrafficResult) -> Vec<Check> {
        let mut checks = Vec::new();
        if let Some(max) = sla.max_loss {
            let mut loss = |scope: &str, lost: u64| {
                checks.push(Check {
                    name: "max_loss".into(),
                    scope: scope.into(),
                    measured: lost,
                    threshold: max,
                    unit: "packets".into(),
                    pass: lost <= max,
                })
            };
            loss("overall", result.lost);
            for c in &result.channels {
                loss(&c.of, c.lost);
            }
        }
        if let Some(max_us) = sla.max_latency_us {
            let threshold = max_us.saturating_mul(1000);
            for c in &result.channels {
                let p99 = c.latency.map_or(0, |l| l.p99_ns);
                checks.push(Check {
                    name: "max_latency_us".into(),
                    scope: c.of.clone(),
                    measured: p99,
                    threshold,
                    unit: "ns".into(),
                    pass: p99 <= threshold,
                });
            }
        }
        checks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traffic() -> RunTraffic<u32, u8> {
        RunTraffic::new(
            "10.0.0.250".parse().unwrap(),
            vec!["239.1.1.1".parse().unwrap(), "239.1.1.2".parse().unwrap()],
            &[7, 8],
            &[9],
            &[(1, 0), (2, 0)],
        )
    }

    #[test]
    fn only_the_run_s_own_stream_of_a_channel_is_credited() {
        let mut t = traffic();
        let s: IpAddr = "10.0.0.250".parse().unwrap();
        let (g1, g2): (IpAddr, IpAddr) =
            ("239.1.1.1".parse().unwrap(), "239.1.1.2".parse().unwrap());
        assert_eq!(t.datagram(0, s, g1, Some((7, 100)), 1100), Credit::Channel);
        // No header, another source, another stream of the group, another segment.
        assert_eq!(t.datagram(0, s, g1, None, 1100), Credit::Not);
        assert_eq!(
            t.datagram(0, "10.0.0.1".parse().unwrap(), g1, Some((7, 0)), 1),
            Credit::Not
        );
        assert_eq!(t.datagram(0, s, g1, Some((8, 0)), 1), Credit::Not);
        assert_eq!(t.datagram(1, s, g1, Some((7, 0)), 1), Credit::Not);
        assert_eq!(t.datagram(0, s, g2, Some((8, 2000)), 5000), Credit::Channel);
        assert_eq!(
            t.datagram(0, s, "239.2.0.1".parse().unwrap(), Some((9, 0)), 1),
            Credit::Not
        );
        let r = t.result(&|h| format!("h{h}"), 0..10);
        assert_eq!(r.latency.count, 2);
        assert_eq!(r.latency.max_ns, 3000);
        assert_eq!(r.channels[0].latency.unwrap().max_ns, 1000);
        assert_eq!(r.background_received, 1);
        assert_eq!((r.streams, r.background_streams), (2, 1));
        assert_eq!(t.stream_ids(), vec![7, 8, 9]);
    }

    #[test]
    fn settled_figures_are_the_run_s_less_the_baseline_and_judged() {
        let mut t = traffic();
        t.set_baseline(1, 0, 100, 3);
        t.settle([(1, 0, 150, 4), (1, 1, 40, 0), (2, 0, 60, 2)]);
        let r = t.result(&|h| format!("h{h}"), 0..1);
        assert_eq!((r.received, r.lost), (150, 3));
        assert_eq!((r.channels[0].received, r.channels[0].lost), (110, 3));
        assert_eq!(r.per_host.len(), 1, "a page of one");
        assert_eq!(
            (r.per_host[0].of.as_str(), r.per_host[0].received),
            ("h1", 90)
        );
        let sla = Sla {
            max_loss: Some(2),
            ..Sla::default()
        };
        let checks = t.checks(&sla, &r);
        let failed: Vec<&str> = checks
            .iter()
            .filter(|c| !c.pass)
            .map(|c| c.scope.as_str())
            .collect();
        assert_eq!(failed, ["overall", "239.1.1.1"]);
    }
}
