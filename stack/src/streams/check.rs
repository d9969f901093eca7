//! What one host received of one (source, group): a 64-byte record with a sequence window
//! (the highest sequence seen and a 64-bit bitmap of the 64 numbers up to it), so that loss,
//! duplicates and reordering are counted exactly within the window; and latency histograms,
//! one per (link, source, group), which the records of that link share (64 bytes leave no room
//! for a histogram per record: the p50 / p99 a receiver lists are those of its link's copy of
//! the stream; its min and max are its own).
//!
//! Loss is settled as numbers leave the window: a number 64 or more below the highest seen
//! that never came is lost. A datagram still older than that is counted as reordered (it stays
//! counted as lost: it came too late to be told from a long-delayed duplicate). The numbers
//! missing inside the window are added when the counts are read, so a stream that has ended
//! shows its whole loss.

use std::collections::HashMap;
use std::net::IpAddr;

use control::protocol::ReceiverCounts;
use control::stream_header::StreamHeader;
use rustc_hash::FxHashMap;

use crate::ids::LinkId;

/// Nanoseconds.
pub type Nanos = u64;

/// Sequence numbers the window holds.
pub const WINDOW: u64 = 64;

/// One (host, source, group): 64 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverRecord {
    /// The highest sequence seen, plus one; 0 before the first.
    next: u64,
    /// Bit `i`: sequence `next - 1 - i` was received.
    seen: u64,
    received: u64,
    bytes: u64,
    lost: u32,
    duplicates: u32,
    reordered: u32,
    pub source_leaks: u32,
    pub after_leave: u32,
    /// One-way latency, saturating at 2^32 - 1 ns (4.3 s); `u32::MAX` for min means none.
    min_ns: u32,
    max_ns: u32,
    /// [`Receivers`]' count of joins-after-a-leave when this record was last checked against
    /// its host's membership: a join of its group after a leave since starts a new window
    /// (what was not sent to a host that was not a member is not lost). While the count has
    /// not moved, nothing is looked up.
    checked: u32,
}

impl Default for ReceiverRecord {
    /// Nothing received yet.
    fn default() -> ReceiverRecord {
        ReceiverRecord {
            next: 0,
            seen: 0,
            received: 0,
            bytes: 0,
            lost: 0,
            duplicates: 0,
            reordered: 0,
            source_leaks: 0,
            after_leave: 0,
            min_ns: u32::MAX,
            max_ns: 0,
            checked: 0,
        }
    }
}

impl ReceiverRecord {
    /// Starts a new window: the host joined again after a leave.
    pub fn restart_window(&mut self) {
        self.settle_window();
        self.next = 0;
        self.seen = 0;
    }

    /// Counts the numbers missing in the window as lost and empties it.
    fn settle_window(&mut self) {
        if self.next > 0 {
            self.add_lost(u64::from(self.window_missing()));
        }
        self.seen = u64::MAX;
    }

    /// Numbers inside the window not received (none below the first number seen: the
    /// window starts full).
    fn window_missing(&self) -> u32 {
        if self.next == 0 {
            return 0;
        }
        self.seen.count_zeros()
    }

    fn add_lost(&mut self, n: u64) {
        self.lost = self
            .lost
            .saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
    }

    /// A datagram of `bytes` payload bytes with `sequence`, `latency_ns` after it was sent.
    pub fn receive(&mut self, sequence: u64, bytes: usize, latency_ns: Nanos) {
        self.bytes += bytes as u64;
        let latency = u32::try_from(latency_ns).unwrap_or(u32::MAX);
        self.min_ns = self.min_ns.min(latency);
        self.max_ns = self.max_ns.max(latency);
        if self.next == 0 {
            // The first: nothing before it was owed to us (the join's own delay).
            self.next = sequence.saturating_add(1);
            self.seen = u64::MAX;
            self.received += 1;
            return;
        }
        if sequence >= self.next {
            let shift = sequence - self.next + 1;
            if shift >= WINDOW {
                // Every number of the old window leaves it, and those between it and the new
                // one never entered it.
                self.add_lost(u64::from(self.seen.count_zeros()));
                self.add_lost(shift - WINDOW);
                self.seen = 1;
            } else {
                let leaving = self.seen >> (WINDOW - shift);
                self.add_lost(shift - u64::from(leaving.count_ones()));
                self.seen = (self.seen << shift) | 1;
            }
            self.next = sequence + 1;
            self.received += 1;
            return;
        }
        let behind = self.next - 1 - sequence;
        if behind >= WINDOW {
            // Settled as lost already.
            self.reordered = self.reordered.saturating_add(1);
            self.received += 1;
            return;
        }
        let bit = 1u64 << behind;
        if self.seen & bit != 0 {
            self.duplicates = self.duplicates.saturating_add(1);
        } else {
            self.seen |= bit;
            self.reordered = self.reordered.saturating_add(1);
            self.received += 1;
        }
    }

    /// The counts as listed: the numbers missing in the window are counted lost now.
    pub fn counts(&self) -> ReceiverCounts {
        ReceiverCounts {
            received: self.received,
            lost: u64::from(self.lost) + u64::from(self.window_missing()),
            duplicates: u64::from(self.duplicates),
            reordered: u64::from(self.reordered),
            source_leaks: u64::from(self.source_leaks),
            after_leave: u64::from(self.after_leave),
            bytes: self.bytes,
        }
    }

    /// Minimum and maximum latency (0 and 0 before any datagram).
    pub fn latency_range(&self) -> (Nanos, Nanos) {
        match self.min_ns {
            u32::MAX if self.max_ns == 0 => (0, 0),
            min => (u64::from(min), u64::from(self.max_ns)),
        }
    }
}

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

fn bucket_of(ns: Nanos) -> usize {
    crate::log_buckets::bucket_of(ns, SUB_BITS)
}

/// The middle of bucket `b`.
fn value_of(b: usize) -> Nanos {
    crate::log_buckets::value_of(b, SUB_BITS)
}

impl LatencyHistogram {
    pub fn observe(&mut self, ns: Nanos) {
        let b = bucket_of(ns);
        self.counts[b] = self.counts[b].saturating_add(1);
        self.total += 1;
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

/// What the host's filter says of a datagram's source: the core's answer
/// (`membership::Host::admits_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Joined, and the filter admits the source.
    Admitted,
    /// Joined, and the filter excludes the source: a source leak.
    Excluded,
    /// Not joined (left, or being left).
    NotJoined,
}

impl Admission {
    pub fn of(answer: Option<bool>) -> Admission {
        match answer {
            Some(true) => Admission::Admitted,
            Some(false) => Admission::Excluded,
            None => Admission::NotJoined,
        }
    }
}

/// Receiver numbers with this bit are `listen` clients' (the low 31 bits of their id: unique
/// over 2^31 clients); those without it are hosts' numbers.
pub const LISTENER_RECEIVER: u32 = 1 << 31;

/// A (host, source, group) checked: the host by its number for the daemon's life (ids of
/// removed hosts are reused; these numbers are not), or a `listen` client's number (with
/// [`LISTENER_RECEIVER`]), and its link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReceiverKey {
    pub host: u32,
    pub link: LinkId,
    pub source: IpAddr,
    pub group: IpAddr,
}

/// A host's membership of a group, as the wire saw it.
#[derive(Debug, Clone, Copy, Default)]
struct Session {
    /// [`Receivers`]' count of joins-after-a-leave when this one last joined after a leave.
    rejoined: u32,
    /// When its leave was written, until it joins again.
    left_at: Option<Nanos>,
}

/// A (link, source, group) a daemon's hosts receive, interned: records are keyed by (host
/// number, flow), 8 bytes, so that a record costs 72 bytes in the table with its key.
pub type Flow = (LinkId, IpAddr, IpAddr);

/// Every receiver record and what classifies their datagrams.
#[derive(Debug, Default)]
pub struct Receivers {
    /// By host number (high 32 bits) and flow number (low 32 bits).
    pub(super) records: FxHashMap<u64, ReceiverRecord>,
    /// Flow numbers, and each flow with its latency histogram.
    flow_numbers: HashMap<Flow, u32>,
    pub(super) flows: Vec<(Flow, LatencyHistogram)>,
    /// Per (host number, group).
    sessions: FxHashMap<(u32, IpAddr), Session>,
    /// Joins after a leave, of any host and group.
    rejoins: u32,
    /// Stream datagrams per link for a group no host of the link ever joined.
    not_joined: HashMap<LinkId, u64>,
    /// A datagram this long after a leave counts as `after_leave`.
    leave_grace: Nanos,
}

impl ReceiverKey {
    /// The `listen` client's number (the low 31 bits of its id), for a client's record.
    pub fn listener(&self) -> Option<u32> {
        (self.host & LISTENER_RECEIVER != 0).then_some(self.host & !LISTENER_RECEIVER)
    }
}

/// The receiver number of `listen` client `id`.
pub fn listener_receiver(id: u64) -> u32 {
    LISTENER_RECEIVER | (id as u32 & !LISTENER_RECEIVER)
}

impl Receivers {
    pub fn new(leave_grace: Nanos) -> Receivers {
        Receivers {
            leave_grace,
            ..Receivers::default()
        }
    }

    /// The number of the flow (`link`, `source`, `group`), made on first use: looked up once
    /// per datagram, whatever the number of hosts it reaches.
    pub fn flow(&mut self, link: LinkId, source: IpAddr, group: IpAddr) -> u32 {
        let flow = (link, source, group);
        if let Some(&n) = self.flow_numbers.get(&flow) {
            return n;
        }
        let n = u32::try_from(self.flows.len()).unwrap_or(u32::MAX);
        self.flows.push((flow, LatencyHistogram::default()));
        self.flow_numbers.insert(flow, n);
        n
    }

    pub(super) fn key_of(&self, packed: u64) -> ReceiverKey {
        let ((link, source, group), _) = self.flows[(packed as u32) as usize];
        ReceiverKey {
            host: (packed >> 32) as u32,
            link,
            source,
            group,
        }
    }

    /// The first report of a join (or a change) of `group` went out for `host`.
    pub fn joined(&mut self, host: u32, group: IpAddr) {
        let session = self.sessions.entry((host, group)).or_default();
        if session.left_at.take().is_some() {
            self.rejoins = self.rejoins.wrapping_add(1);
            session.rejoined = self.rejoins;
        }
    }

    /// The leave of `group` went out for `host` at `at`.
    pub fn left(&mut self, host: u32, group: IpAddr, at: Nanos) {
        let session = self.sessions.entry((host, group)).or_default();
        session.left_at.get_or_insert(at);
    }

    /// A datagram of `flow` (see [`Receivers::flow`]) with a stream header, read at `at` for
    /// `host`, a member of the flow's group, whose filter says `admission`. O(1): a host whose
    /// membership has not changed is not looked up.
    pub fn datagram(
        &mut self,
        host: u32,
        flow: u32,
        header: &StreamHeader,
        payload_len: usize,
        admission: Admission,
        at: Nanos,
    ) {
        let rejoins = self.rejoins;
        let Some((flow_key, histogram)) = self.flows.get_mut(flow as usize) else {
            return;
        };
        let record = self
            .records
            .entry(u64::from(host) << 32 | u64::from(flow))
            .or_default();
        let latency = at.saturating_sub(header.sent_ns);
        if admission == Admission::Admitted && record.checked == rejoins && record.next > 0 {
            record.receive(header.sequence, payload_len, latency);
            histogram.observe(latency);
            return;
        }
        let session = self
            .sessions
            .get(&(host, flow_key.2))
            .copied()
            .unwrap_or_default();
        match admission {
            Admission::Excluded => {
                record.source_leaks = record.source_leaks.saturating_add(1);
                return;
            }
            Admission::NotJoined => {
                if let Some(left) = session.left_at {
                    if at > left.saturating_add(self.leave_grace) {
                        record.after_leave = record.after_leave.saturating_add(1);
                        return;
                    }
                }
                if record.received == 0 {
                    // A source the host never admitted, still forwarded as it leaves.
                    record.source_leaks = record.source_leaks.saturating_add(1);
                    return;
                }
                // In flight when the host left: counted as received.
            }
            Admission::Admitted => {}
        }
        if session.rejoined > record.checked {
            record.restart_window();
        }
        record.checked = rejoins;
        record.receive(header.sequence, payload_len, latency);
        histogram.observe(latency);
    }

    /// A datagram with a stream header read on `link` for a group none of its hosts joined.
    pub fn not_joined(&mut self, link: LinkId) {
        *self.not_joined.entry(link).or_default() += 1;
    }

    /// Every record, in no particular order.
    pub fn records(&self) -> impl Iterator<Item = (ReceiverKey, &ReceiverRecord)> {
        self.records.iter().map(|(k, r)| (self.key_of(*k), r))
    }

    /// The (p50, p99) latency of `key`'s (link, source, group).
    pub fn quantiles(&self, key: &ReceiverKey) -> (Nanos, Nanos) {
        self.flow_numbers
            .get(&(key.link, key.source, key.group))
            .map_or((0, 0), |&n| {
                let h = &self.flows[n as usize].1;
                (h.quantile(0.5), h.quantile(0.99))
            })
    }

    /// Stream datagrams for groups nobody joined, per link.
    pub fn not_joined_counts(&self) -> impl Iterator<Item = (LinkId, u64)> + '_ {
        self.not_joined.iter().map(|(l, n)| (*l, *n))
    }

    /// Forgets the figures of a closed link (its hosts are gone).
    pub fn link_closed(&mut self, link: LinkId) {
        let flows = &self.flows;
        self.records
            .retain(|k, _| flows[(*k as u32) as usize].0 .0 != link);
        // The link's flows keep their numbers (a few bytes each); their histograms go.
        for ((flow_link, _, _), histogram) in &mut self.flows {
            if *flow_link == link {
                *histogram = LatencyHistogram::default();
            }
        }
        self.not_joined.remove(&link);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(sequences: impl IntoIterator<Item = u64>) -> ReceiverCounts {
        let mut record = ReceiverRecord::default();
        for s in sequences {
            record.receive(s, 100, 1000);
        }
        record.counts()
    }

    #[test]
    fn the_record_is_at_most_64_bytes() {
        assert!(std::mem::size_of::<ReceiverRecord>() <= 64);
        // With its key in the table: the host's number and the interned (link, S, G).
        assert!(std::mem::size_of::<(u64, ReceiverRecord)>() <= 72);
    }

    #[test]
    fn a_clean_stream_counts_nothing_but_received() {
        let c = run(0..1000);
        assert_eq!(
            (c.received, c.lost, c.duplicates, c.reordered),
            (1000, 0, 0, 0)
        );
        assert_eq!(c.bytes, 100_000);
        // Joined late: what came before the first is not lost.
        let c = run(500..600);
        assert_eq!((c.received, c.lost), (100, 0));
    }

    #[test]
    fn losses_duplicates_and_swaps_are_exact() {
        // 0..200 without 10, 20 and 21; 30 twice; 40 and 41 swapped.
        let mut seq: Vec<u64> = (0..200).filter(|s| ![10, 20, 21].contains(s)).collect();
        let at30 = seq.iter().position(|&s| s == 30).unwrap();
        seq.insert(at30 + 1, 30);
        let at40 = seq.iter().position(|&s| s == 40).unwrap();
        seq.swap(at40, at40 + 1);
        let c = run(seq);
        assert_eq!(
            (c.received, c.lost, c.duplicates, c.reordered),
            (197, 3, 1, 1)
        );
    }

    #[test]
    fn missing_numbers_inside_the_window_count_when_read() {
        // The stream ends right after a gap: 5 and 6 never come.
        let c = run((0..5).chain(7..10));
        assert_eq!((c.received, c.lost), (8, 2));
        // A gap wider than the window is settled at once, whole.
        let c = run([0, 1, 1000, 1001]);
        assert_eq!((c.received, c.lost), (4, 998));
    }

    #[test]
    fn a_datagram_later_than_the_window_is_reordered_and_stays_lost() {
        let c = run((0..100).filter(|&s| s != 3).chain([3]));
        assert_eq!(
            (c.received, c.lost, c.reordered, c.duplicates),
            (100, 1, 1, 0)
        );
        // Within the window it is reordered only.
        let c = run((0..100).filter(|&s| s != 90).chain([90]));
        assert_eq!((c.received, c.lost, c.reordered), (100, 0, 1));
    }

    #[test]
    fn the_bitmap_wraps_over_many_windows() {
        // Every 64th number dropped, over 100 windows: each loss settled exactly once (a
        // number after the highest seen is not known to be lost: 6400 is received).
        let c = run((0..6401).filter(|s| s % 64 != 63));
        assert_eq!((c.received, c.lost), (6301, 100));
        // A duplicate exactly 63 behind is still seen; 64 behind is past the window.
        let c = run((0..64).chain([0]));
        assert_eq!((c.duplicates, c.reordered), (1, 0));
        let c = run((0..65).chain([0]));
        assert_eq!((c.duplicates, c.reordered), (0, 1));
    }

    #[test]
    fn a_new_session_starts_a_new_window() {
        let mut record = ReceiverRecord::default();
        for s in 0..10 {
            record.receive(s, 10, 5);
        }
        record.restart_window();
        for s in 5000..5010 {
            record.receive(s, 10, 5);
        }
        let c = record.counts();
        assert_eq!((c.received, c.lost), (20, 0));
        assert_eq!(record.latency_range(), (5, 5));
    }

    fn key(source: &str) -> ReceiverKey {
        ReceiverKey {
            host: 7,
            link: crate::ids::Id::from_index(0),
            source: source.parse().unwrap(),
            group: "232.1.1.1".parse().unwrap(),
        }
    }

    fn header(sequence: u64) -> StreamHeader {
        StreamHeader {
            stream: 1,
            sequence,
            sent_ns: sequence * 1_000_000,
        }
    }

    #[test]
    fn leaks_and_datagrams_after_the_grace_are_named() {
        let mut receivers = Receivers::new(3_000_000_000);
        let (s1, s2) = (key("10.1.1.1"), key("10.1.1.2"));
        let f1 = receivers.flow(s1.link, s1.source, s1.group);
        let f2 = receivers.flow(s2.link, s2.source, s2.group);
        receivers.joined(7, s1.group);
        for n in 0..10 {
            let at = n * 1_000_000 + 500;
            receivers.datagram(7, f1, &header(n), 64, Admission::Admitted, at);
            receivers.datagram(7, f2, &header(n), 64, Admission::Excluded, at);
        }
        // Left at 10 ms: in flight until 3.01 s, then after the leave.
        receivers.left(7, s1.group, 10_000_000);
        receivers.datagram(7, f1, &header(10), 64, Admission::NotJoined, 10_000_500);
        receivers.datagram(
            7,
            f1,
            &header(4000),
            64,
            Admission::NotJoined,
            4_000_000_000,
        );
        // Joined again: a new window, nothing lost in between.
        receivers.joined(7, s1.group);
        receivers.datagram(7, f1, &header(5000), 64, Admission::Admitted, 5_000_000_500);
        let counts: HashMap<IpAddr, ReceiverCounts> = receivers
            .records()
            .map(|(k, r)| (k.source, r.counts()))
            .collect();
        let c1 = counts[&s1.source];
        assert_eq!(
            (c1.received, c1.lost, c1.after_leave, c1.source_leaks),
            (12, 0, 1, 0)
        );
        let c2 = counts[&s2.source];
        assert_eq!((c2.received, c2.source_leaks, c2.bytes), (0, 10, 0));
        let mid = value_of(bucket_of(500));
        assert_eq!(receivers.quantiles(&s1), (mid, mid));
        assert_eq!(mid, 496, "the middle of 480..512");
        receivers.not_joined(s1.link);
        assert_eq!(
            receivers.not_joined_counts().collect::<Vec<_>>(),
            [(s1.link, 1)]
        );
    }

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
}
