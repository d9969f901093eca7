//! A run's own streams ([`control::test_traffic::TestTraffic`]): which datagrams are its
//! channels' (by the stream header's stream number, the source and the group, so that a wrong
//! source or another stream of the group cannot fake a join), their one-way latency per
//! channel, and what each host received and lost while joined.
//!
//! Loss while joined is counted per host session (its join to its leave of a channel) from
//! what the host's segment read, in O(1) per datagram whatever the number of hosts: each
//! (segment, channel) keeps the datagrams read so far and the highest sequence number; a
//! session notes both at its first datagram and again at its leave, and what it should have
//! received (the sequence numbers between) less what was read is its loss. (Hosts on one
//! segment share their datagrams: the daemon's receiver records, per host, count a datagram
//! read while another host of the segment watches the group as the left host's, and the gap
//! before it as lost, which is not loss while joined.)

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
}

/// What a datagram read on one of the run's segments is to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credit {
    /// Its channel stream's: credited to the zaps.
    Channel,
    /// A background stream's, or anything else: not the run's.
    Not,
}

/// One (segment, channel): what it read, and the sessions waiting for their first datagram.
#[derive(Debug)]
struct SegmentFlow<H> {
    received: u64,
    /// The highest sequence number read.
    highest: u64,
    waiting: Vec<H>,
}

impl<H> Default for SegmentFlow<H> {
    fn default() -> SegmentFlow<H> {
        SegmentFlow {
            received: 0,
            highest: 0,
            waiting: Vec::new(),
        }
    }
}

/// A host joined to a channel: its segment, and from its first datagram on, that datagram's
/// sequence number and what the segment had read before it.
#[derive(Debug, Clone, Copy)]
struct Session<L> {
    segment: L,
    start: Option<(u64, u64)>,
}

/// The run's streams and what they measured.
#[derive(Debug)]
pub struct RunTraffic<H, L> {
    source: IpAddr,
    channels: Vec<IpAddr>,
    /// The daemon's stream numbers: each channel stream's channel.
    by_stream: HashMap<u32, usize>,
    background: HashSet<u32>,
    /// The channels' numbers.
    channel_of: HashMap<IpAddr, usize>,
    /// The run's hosts' segments.
    segment_of: HashMap<H, L>,
    segments: HashSet<L>,
    flows: HashMap<(L, usize), SegmentFlow<H>>,
    sessions: HashMap<(H, usize), Session<L>>,
    latency: Vec<LatencyRecord>,
    all: LatencyRecord,
    background_received: u64,
    /// Per host and per channel, of the sessions closed.
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
        let channel_of = channels.iter().enumerate().map(|(i, &g)| (g, i)).collect();
        RunTraffic {
            channel_of,
            source,
            channels,
            by_stream: channel_streams
                .iter()
                .enumerate()
                .map(|(i, &s)| (s, i))
                .collect(),
            background: background.iter().copied().collect(),
            segment_of: hosts.iter().copied().collect(),
            segments: hosts.iter().map(|&(_, l)| l).collect(),
            flows: HashMap::new(),
            sessions: HashMap::new(),
            latency: vec![LatencyRecord::default(); n],
            all: LatencyRecord::default(),
            background_received: 0,
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

    /// A report of `host` naming `group` went out: a channel not joined yet starts a session,
    /// waiting for its first datagram.
    pub fn joined(&mut self, host: H, group: IpAddr) {
        let (Some(&channel), Some(&segment)) =
            (self.channel_of.get(&group), self.segment_of.get(&host))
        else {
            return;
        };
        if self.sessions.contains_key(&(host, channel)) {
            return;
        }
        self.sessions.insert(
            (host, channel),
            Session {
                segment,
                start: None,
            },
        );
        self.flows
            .entry((segment, channel))
            .or_default()
            .waiting
            .push(host);
    }

    /// The leave of `host` for `group` went out: its session's figures are added.
    pub fn left(&mut self, host: H, group: IpAddr) {
        let Some(&channel) = self.channel_of.get(&group) else {
            return;
        };
        if let Some(session) = self.sessions.remove(&(host, channel)) {
            self.close(host, channel, session);
        }
    }

    fn close(&mut self, host: H, channel: usize, session: Session<L>) {
        let Some(flow) = self.flows.get_mut(&(session.segment, channel)) else {
            return;
        };
        let Some((first, before)) = session.start else {
            flow.waiting.retain(|&h| h != host);
            return;
        };
        let received = flow.received - before;
        let expected = flow.highest.saturating_sub(first) + 1;
        let got = Got {
            received,
            // A duplicate counts as received: it hides a loss rather than invents one.
            lost: expected.saturating_sub(received),
        };
        self.per_host.entry(host).or_default().add(got);
        self.per_channel[channel].add(got);
    }

    /// A datagram of `group` from `source` read on `segment`, with the stream number,
    /// sequence number and send time of its header (if it has one), at `at`. O(1), and the
    /// sessions that waited for it.
    pub fn datagram(
        &mut self,
        segment: L,
        source: IpAddr,
        group: IpAddr,
        header: Option<(u32, u64, Nanos)>,
        at: Nanos,
    ) -> Credit {
        let Some((stream, sequence, sent)) = header else {
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
            let flow = self.flows.entry((segment, channel)).or_default();
            for host in flow.waiting.drain(..) {
                if let Some(session) = self.sessions.get_mut(&(host, channel)) {
                    session.start = Some((sequence, flow.received));
                }
            }
            flow.received += 1;
            flow.highest = flow.highest.max(sequence);
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

    /// The run is over: the sessions still open are closed (as if left now).
    pub fn settle(&mut self) {
        let open: Vec<((H, usize), Session<L>)> = self.sessions.drain().collect();
        for ((host, channel), session) in open {
            self.close(host, channel, session);
        }
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
        assert_eq!(
            t.datagram(0, s, g1, Some((7, 0, 100)), 1100),
            Credit::Channel
        );
        // No header, another source, another stream of the group, another segment.
        assert_eq!(t.datagram(0, s, g1, None, 1100), Credit::Not);
        assert_eq!(
            t.datagram(0, "10.0.0.1".parse().unwrap(), g1, Some((7, 0, 0)), 1),
            Credit::Not
        );
        assert_eq!(t.datagram(0, s, g1, Some((8, 0, 0)), 1), Credit::Not);
        assert_eq!(t.datagram(1, s, g1, Some((7, 0, 0)), 1), Credit::Not);
        assert_eq!(
            t.datagram(0, s, g2, Some((8, 0, 2000)), 5000),
            Credit::Channel
        );
        assert_eq!(
            t.datagram(0, s, "239.2.0.1".parse().unwrap(), Some((9, 0, 0)), 1),
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
    fn loss_while_joined_is_per_session_from_its_first_datagram_to_its_leave() {
        let mut t = traffic();
        let s: IpAddr = "10.0.0.250".parse().unwrap();
        let g1: IpAddr = "239.1.1.1".parse().unwrap();
        let read = |t: &mut RunTraffic<u32, u8>, seq: u64| {
            assert_eq!(t.datagram(0, s, g1, Some((7, seq, 0)), 10), Credit::Channel);
        };
        // Before any join: not owed to anyone.
        read(&mut t, 0);
        t.joined(1, g1);
        t.joined(1, g1); // a repeated report: one session
        read(&mut t, 1);
        read(&mut t, 2);
        // 3 and 4 lost on the way; host 2 joins (same segment) and gets 5 first.
        t.joined(2, g1);
        read(&mut t, 5);
        t.left(1, g1);
        // Nobody of host 1 from now: 6..=99 not sent to it; host 2 still watches.
        for seq in 6..100 {
            read(&mut t, seq);
        }
        t.left(1, g1); // a repeated leave: nothing more
        let r = t.result(&|h| format!("h{h}"), 0..10);
        assert_eq!((r.per_host[0].received, r.per_host[0].lost), (3, 2));
        assert_eq!(r.per_host.len(), 1, "host 2's session is open");
        t.settle();
        let r = t.result(&|h| format!("h{h}"), 0..1);
        assert_eq!(r.per_host.len(), 1, "a page of one");
        assert_eq!((r.received, r.lost), (3 + 95, 2));
        assert_eq!((r.channels[0].received, r.channels[0].lost), (98, 2));
        let sla = Sla {
            max_loss: Some(1),
            ..Sla::default()
        };
        let checks = t.checks(&sla, &r);
        let failed: Vec<&str> = checks
            .iter()
            .filter(|c| !c.pass)
            .map(|c| c.scope.as_str())
            .collect();
        assert_eq!(failed, ["overall", "239.1.1.1"]);
        // A session that never got a datagram leaves nothing behind.
        let g2: IpAddr = "239.1.1.2".parse().unwrap();
        let mut t = traffic();
        t.joined(1, g2);
        t.left(1, g2);
        t.settle();
        assert_eq!(t.result(&|h| format!("h{h}"), 0..10).received, 0);
    }
}
