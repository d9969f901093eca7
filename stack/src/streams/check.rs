//! What each host received of each (source, group), accounted per flow: a frame read on a
//! link is the same frame for every host of the link, so its sequence (loss, duplicates,
//! reordering), bytes and latency are the flow's (link, source, group), counted once per
//! frame ([`SequenceWindow`], [`LatencyHistogram`]) whatever the number of hosts it reaches.
//!
//! Each (host, source, group) keeps a 64-byte record: what it has settled, its [`Reception`]
//! (receiving, leaking, after its leave...) and the flow's counters when that last changed.
//! Its figures are what it settled plus what the flow counted since, under its reception. A
//! record is settled only when its reception changes: at the host's join or leave (O(the
//! group's flows on the link)), at its first frame after a join (O(1) each), when its leave's
//! grace passes (at the flow's next frame, O(those hosts)), or, for a `listen` client, as the
//! frames reach it or stop reaching it (O(the link's clients)). A frame costs O(1) plus the
//! records whose reception changed since the flow's last frame: never O(hosts).
//!
//! Latency: a host's min / p50 / p99 / max are those of its flow's frames that some host
//! received (a histogram per flow, each frame weighted by the hosts receiving it; 64 bytes
//! leave no room for a histogram per host).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::IpAddr;

use control::stream_header::StreamHeader;
use rustc_hash::FxHashMap;

pub use super::latency::{LatencyHistogram, Nanos};
pub use super::record::{ReceiverFigures, ReceiverRecord, Reception};
use super::window::SequenceWindow;
use crate::ids::{FlowId, Id, LinkId};

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

/// A (link, source, group) a daemon's hosts receive. Records are keyed by (receiver number,
/// flow id), 8 bytes, so that a record costs 72 bytes in the table with its key.
pub type Flow = (LinkId, IpAddr, IpAddr);

/// One flow as its link read it.
#[derive(Debug)]
pub(super) struct FlowState {
    pub(super) flow: Flow,
    window: SequenceWindow,
    /// The latency of the frames received, each weighted by its receivers.
    pub(super) histogram: LatencyHistogram,
    /// The latency range of those frames; `Nanos::MAX` for min: none yet.
    min_ns: Nanos,
    max_ns: Nanos,
    /// Records whose reception receives (the weight of a frame's latency).
    receiving: u32,
    /// Receivers made `Pending` since the last frame (some may have moved on since).
    pending: Vec<u32>,
    /// Hosts that left, by the end of their grace.
    graces: BinaryHeap<Reverse<(Nanos, u32)>>,
    /// `listen` clients whose record counts (not `Idle`).
    listeners: Vec<u32>,
}

impl FlowState {
    fn new(flow: Flow) -> FlowState {
        FlowState {
            flow,
            window: SequenceWindow::default(),
            histogram: LatencyHistogram::default(),
            min_ns: Nanos::MAX,
            max_ns: 0,
            receiving: 0,
            pending: Vec::new(),
            graces: BinaryHeap::new(),
            listeners: Vec::new(),
        }
    }

    /// Settles `record` (of `receiver`) and gives it `reception`.
    fn set_reception(&mut self, record: &mut ReceiverRecord, receiver: u32, reception: Reception) {
        if record.reception == reception {
            return;
        }
        record.settle(&self.window.totals());
        if record.reception.receives() {
            self.receiving = self.receiving.saturating_sub(1);
        }
        if reception.receives() {
            self.receiving += 1;
        }
        if reception == Reception::Pending {
            self.pending.push(receiver);
        }
        record.reception = reception;
    }

    /// The latency range of its frames received: (0, 0) before any.
    fn latency_range(&self) -> (Nanos, Nanos) {
        match self.min_ns {
            Nanos::MAX => (0, 0),
            min => (min, self.max_ns),
        }
    }
}

/// Every receiver record, the flows they count from, and what classifies them.
#[derive(Debug, Default)]
pub struct Receivers {
    /// By receiver number (high 32 bits) and flow id (low 32 bits).
    pub(super) records: FxHashMap<u64, ReceiverRecord>,
    flow_ids: HashMap<Flow, FlowId>,
    /// By flow id; those of a closed link stay, empty.
    pub(super) flows: Vec<FlowState>,
    /// The flows of each (link, group).
    group_flows: HashMap<(LinkId, IpAddr), Vec<FlowId>>,
    /// When each (host number, group) left, until it joins again.
    left_at: FxHashMap<(u32, IpAddr), Nanos>,
    /// Stream datagrams per link for a group no host of the link ever joined.
    not_joined: HashMap<LinkId, u64>,
    /// A datagram this long after a leave counts as `after_leave`.
    leave_grace: Nanos,
    /// Records the frames settled (their receptions changed): what frames cost beyond O(1).
    settled_by_frames: u64,
}

fn packed(receiver: u32, flow: FlowId) -> u64 {
    u64::from(receiver) << 32 | flow.index() as u64
}

impl Receivers {
    pub fn new(leave_grace: Nanos) -> Receivers {
        Receivers {
            leave_grace,
            ..Receivers::default()
        }
    }

    /// The id of the flow (`link`, `source`, `group`), and whether it is new (then the
    /// caller gives each member of the group its reception: [`Receivers::classify`]). Looked
    /// up once per frame, whatever the number of hosts it reaches.
    pub fn flow(&mut self, link: LinkId, source: IpAddr, group: IpAddr) -> (FlowId, bool) {
        let flow = (link, source, group);
        if let Some(&id) = self.flow_ids.get(&flow) {
            return (id, false);
        }
        let id = FlowId::from_index(self.flows.len());
        self.flows.push(FlowState::new(flow));
        self.flow_ids.insert(flow, id);
        self.group_flows.entry((link, group)).or_default().push(id);
        (id, true)
    }

    pub(super) fn key_of(&self, packed: u64) -> ReceiverKey {
        let (link, source, group) = self.flows[(packed as u32) as usize].flow;
        ReceiverKey {
            host: (packed >> 32) as u32,
            link,
            source,
            group,
        }
    }

    /// The reception of a host whose filter says `admission` of a flow's source, its record
    /// as it is, at `now`; and the end of its grace when it is inside one.
    fn reception_of(
        &self,
        host: u32,
        group: IpAddr,
        record: &ReceiverRecord,
        admission: Admission,
        now: Nanos,
    ) -> (Reception, Option<Nanos>) {
        match admission {
            Admission::Admitted if record.reception == Reception::Receiving => {
                (Reception::Receiving, None)
            }
            Admission::Admitted => (Reception::Pending, None),
            Admission::Excluded => (Reception::Leaking, None),
            Admission::NotJoined => {
                let grace_end = self
                    .left_at
                    .get(&(host, group))
                    .map(|left| left.saturating_add(self.leave_grace));
                match grace_end {
                    Some(end) if now > end => (Reception::AfterLeave, None),
                    // A source the host never admitted, still forwarded as it leaves.
                    _ if record.received == 0 && !record.reception.receives() => {
                        (Reception::Leaking, grace_end)
                    }
                    // In flight when the host left: counted as received.
                    _ => (Reception::InFlight, grace_end),
                }
            }
        }
    }

    /// Host `host`, a member of `flow`'s group, whose filter says `admission` of its source
    /// at `now`: for a flow new to the link, each member once.
    pub fn classify(&mut self, host: u32, flow: FlowId, admission: Admission, now: Nanos) {
        let Some(state) = self.flows.get(flow.index()) else {
            return;
        };
        let group = state.flow.2;
        let current = *self.records.entry(packed(host, flow)).or_default();
        let (reception, grace_end) = self.reception_of(host, group, &current, admission, now);
        let state = &mut self.flows[flow.index()];
        if let Some(record) = self.records.get_mut(&packed(host, flow)) {
            state.set_reception(record, host, reception);
        }
        if let Some(end) = grace_end {
            state.graces.push(Reverse((end, host)));
        }
    }

    /// The first report of a join (or a change) of `group` went out for `host` on `link`;
    /// `admission` says what its filter says of a source now. O(the group's flows on the
    /// link).
    pub fn joined(
        &mut self,
        host: u32,
        link: LinkId,
        group: IpAddr,
        admission: impl Fn(IpAddr) -> Admission,
    ) {
        self.left_at.remove(&(host, group));
        let Some(flows) = self.group_flows.get(&(link, group)) else {
            return;
        };
        for &flow in flows {
            let state = &mut self.flows[flow.index()];
            let record = self.records.entry(packed(host, flow)).or_default();
            let reception = match admission(state.flow.1) {
                Admission::Admitted if record.reception == Reception::Receiving => {
                    Reception::Receiving
                }
                Admission::Admitted => Reception::Pending,
                // Joined and the source excluded, or (the filter changed since the report)
                // not joined: nothing of the source is owed to the host.
                Admission::Excluded | Admission::NotJoined => Reception::Leaking,
            };
            state.set_reception(record, host, reception);
        }
    }

    /// The leave of `group` went out for `host` on `link` at `at` (its repeats change
    /// nothing). O(the group's flows on the link).
    pub fn left(&mut self, host: u32, link: LinkId, group: IpAddr, at: Nanos) {
        if self.left_at.contains_key(&(host, group)) {
            return;
        }
        self.left_at.insert((host, group), at);
        let Some(flows) = self.group_flows.get(&(link, group)) else {
            return;
        };
        let grace_end = at.saturating_add(self.leave_grace);
        for &flow in flows {
            let Some(record) = self.records.get_mut(&packed(host, flow)) else {
                continue;
            };
            let state = &mut self.flows[flow.index()];
            let reception = if record.received > 0 || record.reception.receives() {
                Reception::InFlight
            } else {
                Reception::Leaking
            };
            state.set_reception(record, host, reception);
            state.graces.push(Reverse((grace_end, host)));
        }
    }

    /// A frame of `flow` with a stream header and `payload_len` payload bytes, read at `at`
    /// for every member of the flow's group on its link, and for the `listen` clients of
    /// `listeners` (each with what its own filter says). O(1) plus the records whose
    /// reception changed since the flow's last frame (and the link's clients).
    pub fn frame(
        &mut self,
        flow: FlowId,
        header: &StreamHeader,
        payload_len: usize,
        at: Nanos,
        listeners: &[(u32, Admission)],
    ) {
        let Some(state) = self.flows.get_mut(flow.index()) else {
            return;
        };
        let group = state.flow.2;
        // The clients no longer reached stop counting; those reached count as they say.
        let mut gone = std::mem::take(&mut state.listeners);
        gone.retain(|l| !listeners.iter().any(|(r, _)| r == l));
        for listener in gone {
            if let Some(record) = self.records.get_mut(&packed(listener, flow)) {
                state.set_reception(record, listener, Reception::Idle);
                self.settled_by_frames += 1;
            }
        }
        for &(listener, admission) in listeners {
            let record = self.records.entry(packed(listener, flow)).or_default();
            let reception = match admission {
                Admission::Admitted if record.reception == Reception::Receiving => {
                    Reception::Receiving
                }
                Admission::Admitted => Reception::Pending,
                Admission::Excluded | Admission::NotJoined => Reception::Leaking,
            };
            if record.reception != reception {
                state.set_reception(record, listener, reception);
                self.settled_by_frames += 1;
            }
            state.listeners.push(listener);
        }
        // The graces that ended before this frame: what comes now is after the leave.
        while let Some(&Reverse((end, host))) = state.graces.peek() {
            if end >= at {
                break;
            }
            state.graces.pop();
            let current = self
                .left_at
                .get(&(host, group))
                .is_some_and(|left| left.saturating_add(self.leave_grace) == end);
            let Some(record) = self.records.get_mut(&packed(host, flow)) else {
                continue;
            };
            if current && matches!(record.reception, Reception::InFlight | Reception::Leaking) {
                state.set_reception(record, host, Reception::AfterLeave);
                self.settled_by_frames += 1;
            }
        }
        state.window.receive(header.sequence, payload_len);
        // The receivers this frame starts: it is their first, nothing before it was owed.
        if !state.pending.is_empty() {
            let now = state.window.totals();
            for receiver in std::mem::take(&mut state.pending) {
                let Some(record) = self.records.get_mut(&packed(receiver, flow)) else {
                    continue;
                };
                if record.reception != Reception::Pending {
                    continue; // moved on before any frame
                }
                record.settle(&now);
                record.received += 1;
                record.bytes += payload_len as u64;
                record.reception = Reception::Receiving;
                state.receiving += 1;
                self.settled_by_frames += 1;
            }
        }
        if state.receiving > 0 {
            let latency = at.saturating_sub(header.sent_ns);
            state.histogram.observe_times(latency, state.receiving);
            state.min_ns = state.min_ns.min(latency);
            state.max_ns = state.max_ns.max(latency);
        }
    }

    /// Records the frames settled so far: a frame settles only the records whose reception
    /// changed since the flow's last frame, never all of its hosts.
    pub fn settled_by_frames(&self) -> u64 {
        self.settled_by_frames
    }

    /// A datagram with a stream header read on `link` for a group none of its hosts joined.
    pub fn not_joined(&mut self, link: LinkId) {
        *self.not_joined.entry(link).or_default() += 1;
    }

    /// The figures of the record `packed`, `None` while it counted nothing.
    pub(super) fn figures(&self, packed: u64, record: &ReceiverRecord) -> Option<ReceiverFigures> {
        let state = &self.flows[(packed as u32) as usize];
        let counts = record.counts_at(&state.window.totals());
        let counted = counts.received
            + counts.lost
            + counts.duplicates
            + counts.source_leaks
            + counts.after_leave;
        (counted > 0).then(|| ReceiverFigures {
            counts,
            latency: if counts.received > 0 {
                state.latency_range()
            } else {
                (0, 0)
            },
        })
    }

    /// Every record that counted something, in no particular order. O(records).
    pub fn records(&self) -> impl Iterator<Item = (ReceiverKey, ReceiverFigures)> + '_ {
        self.records
            .iter()
            .filter_map(|(&k, r)| Some((self.key_of(k), self.figures(k, r)?)))
    }

    /// The (p50, p99) latency of `key`'s (link, source, group).
    pub fn quantiles(&self, key: &ReceiverKey) -> (Nanos, Nanos) {
        self.flow_ids
            .get(&(key.link, key.source, key.group))
            .map_or((0, 0), |id| {
                let h = &self.flows[id.index()].histogram;
                (h.quantile(0.5), h.quantile(0.99))
            })
    }

    /// Stream datagrams for groups nobody joined, per link.
    pub fn not_joined_counts(&self) -> impl Iterator<Item = (LinkId, u64)> + '_ {
        self.not_joined.iter().map(|(l, n)| (*l, *n))
    }

    /// Forgets the figures of a closed link (its hosts are gone): its flows keep their ids,
    /// empty; a later link with its id makes new ones.
    pub fn link_closed(&mut self, link: LinkId) {
        let flows = &self.flows;
        self.records
            .retain(|k, _| flows[(*k as u32) as usize].flow.0 != link);
        for state in &mut self.flows {
            if state.flow.0 == link {
                *state = FlowState::new(state.flow);
            }
        }
        self.flow_ids.retain(|flow, _| flow.0 != link);
        self.group_flows.retain(|(l, _), _| *l != link);
        self.not_joined.remove(&link);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use control::protocol::ReceiverCounts;

    #[test]
    fn the_record_is_at_most_64_bytes() {
        assert!(std::mem::size_of::<ReceiverRecord>() <= 64);
        // With its key in the table: the host's number and the flow's id.
        assert!(std::mem::size_of::<(u64, ReceiverRecord)>() <= 72);
    }

    fn key(source: &str) -> ReceiverKey {
        ReceiverKey {
            host: 7,
            link: LinkId::from_index(0),
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

    fn counts_of(receivers: &Receivers, host: u32) -> HashMap<IpAddr, ReceiverCounts> {
        receivers
            .records()
            .filter(|(k, _)| k.host == host)
            .map(|(k, r)| (k.source, r.counts()))
            .collect()
    }

    #[test]
    fn leaks_and_datagrams_after_the_grace_are_named() {
        let mut receivers = Receivers::new(3_000_000_000);
        let (s1, s2) = (key("10.1.1.1"), key("10.1.1.2"));
        receivers.joined(7, s1.link, s1.group, |_| Admission::Admitted);
        // Host 7 joined INCLUDE {S1} before either source sent: each new flow classifies it.
        let (f1, new) = receivers.flow(s1.link, s1.source, s1.group);
        assert!(new);
        receivers.classify(7, f1, Admission::Admitted, 0);
        let (f2, _) = receivers.flow(s2.link, s2.source, s2.group);
        receivers.classify(7, f2, Admission::Excluded, 0);
        assert_eq!(receivers.flow(s1.link, s1.source, s1.group), (f1, false));
        assert_eq!(receivers.records().count(), 0, "nothing counted yet");
        for n in 0..10 {
            let at = n * 1_000_000 + 500;
            receivers.frame(f1, &header(n), 64, at, &[]);
            receivers.frame(f2, &header(n), 64, at, &[]);
        }
        // Left at 10 ms: in flight until 3.01 s, then after the leave.
        receivers.left(7, s1.link, s1.group, 10_000_000);
        receivers.left(7, s1.link, s1.group, 10_500_000); // a repeat: no change
        receivers.frame(f1, &header(10), 64, 10_000_500, &[]);
        receivers.frame(f1, &header(4000), 64, 4_000_000_000, &[]);
        // Joined again: a new window, nothing lost in between.
        receivers.joined(7, s1.link, s1.group, |s| {
            Admission::of(Some(s == s1.source))
        });
        receivers.frame(f1, &header(5000), 64, 5_000_000_500, &[]);
        let counts = counts_of(&receivers, 7);
        let c1 = counts[&s1.source];
        assert_eq!(
            (c1.received, c1.lost, c1.after_leave, c1.source_leaks),
            (12, 0, 1, 0)
        );
        assert_eq!(c1.bytes, 12 * 64);
        let c2 = counts[&s2.source];
        assert_eq!((c2.received, c2.source_leaks, c2.bytes), (0, 10, 0));
        let mid = super::super::latency::value_of(super::super::latency::bucket_of(500));
        assert_eq!(receivers.quantiles(&s1), (mid, mid));
        assert_eq!(mid, 496, "the middle of 480..512");
        let (_, leak) = receivers
            .records()
            .find(|(k, _)| k.source == s2.source)
            .unwrap();
        assert_eq!(leak.latency_range(), (0, 0), "a leak has no latency");
        receivers.not_joined(s1.link);
        assert_eq!(
            receivers.not_joined_counts().collect::<Vec<_>>(),
            [(s1.link, 1)]
        );
    }

    #[test]
    fn a_join_after_a_silent_link_starts_a_new_window_and_a_leave_ends_the_count() {
        let mut receivers = Receivers::new(1_000);
        let k = key("10.1.1.1");
        let (flow, _) = receivers.flow(k.link, k.source, k.group);
        receivers.classify(7, flow, Admission::Admitted, 0);
        receivers.classify(8, flow, Admission::Admitted, 0);
        for s in 0..10 {
            receivers.frame(flow, &header(s), 10, s * 1_000_000 + 5, &[]);
        }
        // Both leave; the device stops, and forwards again 5000 numbers later when host 8
        // joins again: host 8 lost nothing, host 7 (still gone) neither.
        receivers.left(7, k.link, k.group, 20_000_000);
        receivers.left(8, k.link, k.group, 20_000_000);
        receivers.joined(8, k.link, k.group, |_| Admission::Admitted);
        for s in 5000..5010 {
            receivers.frame(flow, &header(s), 10, s * 1_000_000 + 5, &[]);
        }
        let c7 = counts_of(&receivers, 7)[&k.source];
        assert_eq!((c7.received, c7.lost, c7.after_leave), (10, 0, 10));
        let c8 = counts_of(&receivers, 8)[&k.source];
        assert_eq!((c8.received, c8.lost, c8.after_leave), (20, 0, 0));
        let (_, figures) = receivers.records().find(|(k, _)| k.host == 8).unwrap();
        assert_eq!(figures.latency_range(), (5, 5));
    }

    #[test]
    fn each_host_counts_the_loss_of_its_own_session_only() {
        let mut receivers = Receivers::new(1_000_000_000);
        let k = key("10.1.1.1");
        let (flow, _) = receivers.flow(k.link, k.source, k.group);
        receivers.classify(1, flow, Admission::Admitted, 0);
        // 0..100 without 10 (host 1 alone), host 2 joins at 100; then without 150.
        for s in (0..100).filter(|&s| s != 10) {
            receivers.frame(flow, &header(s), 10, s, &[]);
        }
        receivers.joined(2, k.link, k.group, |_| Admission::Admitted);
        for s in (100..300).filter(|&s| s != 150) {
            receivers.frame(flow, &header(s), 10, s, &[]);
        }
        let lost = |host| counts_of(&receivers, host)[&k.source].lost;
        assert_eq!((lost(1), lost(2)), (2, 1));
        let received = |host| counts_of(&receivers, host)[&k.source].received;
        assert_eq!((received(1), received(2)), (298, 199));
    }

    #[test]
    fn a_listen_client_counts_while_the_frames_reach_it() {
        let mut receivers = Receivers::new(1_000_000_000);
        let k = key("10.1.1.1");
        let client = listener_receiver(3);
        let (flow, _) = receivers.flow(k.link, k.source, k.group);
        for s in 0..5 {
            receivers.frame(flow, &header(s), 10, s, &[(client, Admission::Admitted)]);
        }
        for s in 5..8 {
            receivers.frame(flow, &header(s), 10, s, &[(client, Admission::Excluded)]);
        }
        // Gone: its record stops counting.
        for s in 8..20 {
            receivers.frame(flow, &header(s), 10, s, &[]);
        }
        let c = counts_of(&receivers, client)[&k.source];
        assert_eq!((c.received, c.lost, c.source_leaks), (5, 0, 3));
    }

    /// A frame's cost, in records settled, does not grow with the hosts it reaches: 10 or
    /// 10,000 members, each frame after the first settles nothing, and the counts are the
    /// same per host.
    #[test]
    fn a_frame_settles_no_more_records_for_more_members() {
        let mut work = Vec::new();
        for members in [10u32, 10_000] {
            let mut receivers = Receivers::new(1_000_000_000);
            let k = key("10.1.1.1");
            let (flow, _) = receivers.flow(k.link, k.source, k.group);
            for host in 0..members {
                receivers.classify(host, flow, Admission::Admitted, 0);
            }
            receivers.frame(flow, &header(0), 100, 1_000, &[]);
            assert_eq!(
                receivers.settled_by_frames(),
                u64::from(members),
                "each starts"
            );
            let before = receivers.settled_by_frames();
            for s in (1..1000).filter(|s| s % 100 != 0) {
                receivers.frame(flow, &header(s), 100, s * 1_000_000 + 1_000, &[]);
            }
            work.push(receivers.settled_by_frames() - before);
            let totals = receivers
                .records()
                .fold(ReceiverCounts::default(), |mut sum, (_, r)| {
                    sum.add(&r.counts());
                    sum
                });
            let m = u64::from(members);
            assert_eq!(
                (totals.received, totals.lost, totals.bytes),
                (991 * m, 9 * m, 991 * 100 * m)
            );
            // The latency histogram weighs each frame by its receivers.
            let counted: u32 = receivers.flows[0]
                .histogram
                .occupied()
                .map(|(_, n)| n)
                .sum();
            assert_eq!(u64::from(counted), 991 * m);
        }
        assert_eq!(work, [0, 0], "frames settled records: {work:?}");
    }

    #[test]
    fn a_closed_link_forgets_its_flows_and_a_new_link_with_its_id_starts_anew() {
        let mut receivers = Receivers::new(1_000);
        let k = key("10.1.1.1");
        let (flow, _) = receivers.flow(k.link, k.source, k.group);
        receivers.classify(7, flow, Admission::Admitted, 0);
        receivers.frame(flow, &header(0), 10, 5, &[]);
        assert_eq!(receivers.records().count(), 1);
        receivers.link_closed(k.link);
        assert_eq!(receivers.records().count(), 0);
        let (again, new) = receivers.flow(k.link, k.source, k.group);
        assert!(new && again != flow);
        assert_eq!(receivers.quantiles(&k), (0, 0));
    }
}
