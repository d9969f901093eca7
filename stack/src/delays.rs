//! RFC 3918 §5.6 and §5.7: join delay and leave delay per (host, group).
//!
//! Join delay is the time from the first report of a join written to the device to the first
//! datagram of the group read from it; leave delay the time from the Leave (or TO_IN({}))
//! written to the last datagram of the group read after it. The daemon takes the timestamps at
//! the device read and write, not at the control request; they are nanoseconds on any
//! monotonic clock (an `Instant` minus the daemon's start), and this module never reads a clock.
//!
//! A record is 48 bytes: the host index and an interned group index packed into one `u64`
//! key, four timestamps and the interned source of its latest datagram. At most `capacity`
//! records are kept; joins beyond it are counted as untracked. A new join of a (host, group)
//! after its leave starts a new measurement.
//!
//! Only the right (S,G) measures: before the leave, a datagram counts when the host's filter
//! admits its source; after it (the filter is gone), when its source was admitted before the
//! leave, so that another source's traffic the device forwards neither fakes a join nor makes
//! a leave look slow. The sources a record admitted are remembered by interned number: one in
//! the record, any more beside it (an EXCLUDE join with several sources sending).

mod feed;

use std::collections::HashMap;
use std::net::IpAddr;

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::ids::LinkId;

/// Nanoseconds on the daemon's monotonic clock.
pub type Nanos = u64;

/// How long after a leave a datagram may still arrive without the group counting as "still
/// forwarded": a querier stops forwarding after Last Member Query Count × Last Member Query
/// Interval, 2 × 1 s by default (RFC 2236 §8.8, RFC 3376 §8.6–8.7), plus 1 s for datagrams
/// already in flight and a loaded router.
pub const DEFAULT_LEAVE_GRACE: Nanos = 3_000_000_000;

/// The most (host, group) records kept by default: 40 MiB.
pub const DEFAULT_CAPACITY: usize = 1 << 20;

/// "Not yet": timestamps are kept without an `Option` to keep the record at 32 bytes.
const NOT_YET: Nanos = Nanos::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DelayRecord {
    /// When the first report of this join was written.
    report_sent: Nanos,
    /// When the first datagram after that report was read.
    first_datagram: Nanos,
    /// When the latest datagram was read.
    last_datagram: Nanos,
    /// When the Leave / TO_IN({}) was written.
    left: Nanos,
    /// The interned source of the latest datagram admitted before the leave; [`NO_SOURCE`]
    /// before any.
    source: u32,
}

/// No source yet.
const NO_SOURCE: u32 = u32::MAX;
/// The most sources interned: beyond them, a new source's datagrams are not remembered (they
/// do not count after a leave). A bound against a flood of forged sources.
pub const MAX_SOURCES: usize = 1 << 16;

impl DelayRecord {
    fn join_delay(&self) -> Option<Nanos> {
        (self.first_datagram != NOT_YET).then(|| self.first_datagram - self.report_sent)
    }
}

/// The join and leave delays of every (host, group) being measured.
#[derive(Debug)]
pub struct DelayTracker {
    records: HashMap<u64, DelayRecord>,
    groups: Vec<IpAddr>,
    group_index: HashMap<IpAddr, u32>,
    capacity: usize,
    leave_grace: Nanos,
    untracked: u64,
    /// Sources of admitted datagrams, interned.
    sources: Vec<IpAddr>,
    source_index: HashMap<IpAddr, u32>,
    /// Per record that admitted more than one source before its leave: the others.
    more_sources: HashMap<u64, Vec<u32>>,
    /// The sources of each (link, group) read for every member, their latest datagram and
    /// the hosts yet to be checked against them ([`feed`]).
    feeds: feed::Feeds,
    /// The link of each host measured through [`DelayTracker::report_sent_on`].
    host_links: FxHashMap<u32, LinkId>,
    /// (link, group, source)s in `feeds`, all groups together: at most [`MAX_SOURCES`].
    fed_sources: usize,
}

impl Default for DelayTracker {
    fn default() -> DelayTracker {
        DelayTracker::new(DEFAULT_CAPACITY, DEFAULT_LEAVE_GRACE)
    }
}

impl DelayTracker {
    /// A tracker that records nothing (`--delays` not given).
    pub fn off() -> DelayTracker {
        DelayTracker::new(0, DEFAULT_LEAVE_GRACE)
    }

    /// Whether it records anything at all.
    pub fn is_on(&self) -> bool {
        self.capacity > 0
    }

    /// At most `capacity` (host, group) records; datagrams later than a leave plus
    /// `leave_grace` mark the group as still forwarded.
    pub fn new(capacity: usize, leave_grace: Nanos) -> DelayTracker {
        DelayTracker {
            records: HashMap::new(),
            groups: Vec::new(),
            group_index: HashMap::new(),
            capacity,
            leave_grace,
            untracked: 0,
            sources: Vec::new(),
            source_index: HashMap::new(),
            more_sources: HashMap::new(),
            feeds: HashMap::new(),
            host_links: FxHashMap::default(),
            fed_sources: 0,
        }
    }

    /// Record `key`'s leave delay: to the latest datagram of a source it admitted before
    /// the leave, handed to it or read on its link for every member; 0 when none came after
    /// the leave.
    fn leave_delay(&self, key: u64, record: &DelayRecord) -> Option<Nanos> {
        if record.left == NOT_YET {
            return None;
        }
        let handed = (record.last_datagram != NOT_YET).then_some(record.last_datagram);
        let last = match (handed, self.last_datagram_of(key)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        Some(last.map_or(0, |last| last.saturating_sub(record.left)))
    }

    /// How many (host, group) records are kept.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Forgets every measurement (`tunmcastctl delays --reset`).
    pub fn reset(&mut self) {
        *self = DelayTracker::new(self.capacity, self.leave_grace);
    }

    fn key(&self, host: u32, group: IpAddr) -> Option<u64> {
        let index = self.group_index.get(&group)?;
        Some(u64::from(host) << 32 | u64::from(*index))
    }

    /// A report for `group` was written for `host` at `at`. Only the first report of a join
    /// counts: the repeated unsolicited reports (Robustness Variable) do not restart it.
    /// Link-local groups (224.0.0.0/24, ff02::/16, such as a host's solicited-node group) are
    /// not measured: no router forwards them, so RFC 3918's delays do not apply.
    pub fn report_sent(&mut self, host: u32, group: IpAddr, at: Nanos) {
        if is_link_local_scope(group) {
            return;
        }
        let full = self.records.len() >= self.capacity;
        let index = match self.group_index.get(&group) {
            Some(&index) => index,
            None => {
                // A new group would only be interned for a record that cannot be kept.
                let index = u32::try_from(self.groups.len()).ok().filter(|_| !full);
                let Some(index) = index else {
                    self.untracked += 1;
                    return;
                };
                self.groups.push(group);
                self.group_index.insert(group, index);
                index
            }
        };
        let key = u64::from(host) << 32 | u64::from(index);
        let fresh = DelayRecord {
            report_sent: at,
            first_datagram: NOT_YET,
            last_datagram: NOT_YET,
            left: NOT_YET,
            source: NO_SOURCE,
        };
        match self.records.get_mut(&key) {
            // A join again after a leave: a new measurement.
            Some(record) if record.left != NOT_YET => {
                *record = fresh;
                self.more_sources.remove(&key);
            }
            Some(_) => {}
            None if full => self.untracked += 1,
            None => {
                self.records.insert(key, fresh);
            }
        }
    }

    /// A datagram of `group` from `source` was read at `at` for `host`, a member of it (or
    /// being one); `admitted`: whether the host's filter admits the source now (none does
    /// once the host left). O(1), plus the record's other sources when it has several.
    /// Whether it came before the host's report (it arrived before the report was written,
    /// and was read after it): the host must still be handed the next one of its source
    /// (`delays::feed`), which may be its join's first.
    pub fn datagram(
        &mut self,
        host: u32,
        group: IpAddr,
        source: IpAddr,
        admitted: bool,
        at: Nanos,
    ) -> bool {
        let Some(key) = self.key(host, group) else {
            return false;
        };
        let Some(record) = self.records.get_mut(&key) else {
            return false;
        };
        if record.left == NOT_YET {
            if !admitted {
                return false;
            }
            let number = match self.source_index.get(&source) {
                Some(&number) => Some(number),
                None if self.sources.len() < MAX_SOURCES => {
                    let number = self.sources.len() as u32;
                    self.sources.push(source);
                    self.source_index.insert(source, number);
                    Some(number)
                }
                None => None,
            };
            if let Some(number) = number {
                if record.source == NO_SOURCE {
                    record.source = number;
                } else if record.source != number {
                    let more = self.more_sources.entry(key).or_default();
                    if !more.contains(&number) {
                        more.push(number);
                    }
                }
            }
            // Datagrams flowing before our report (another member on the link) do not
            // measure our join.
            if at < record.report_sent {
                return true;
            }
            if record.first_datagram == NOT_YET {
                record.first_datagram = at;
            }
        } else {
            // After the leave: only a source admitted before it.
            let Some(&number) = self.source_index.get(&source) else {
                return false;
            };
            let admitted_before = record.source == number
                || self
                    .more_sources
                    .get(&key)
                    .is_some_and(|more| more.contains(&number));
            if !admitted_before {
                return false;
            }
        }
        if record.last_datagram == NOT_YET || at > record.last_datagram {
            record.last_datagram = at;
        }
        false
    }

    /// The Leave / TO_IN({}) of `host` for `group` was written at `at`.
    pub fn left(&mut self, host: u32, group: IpAddr, at: Nanos) {
        let Some(key) = self.key(host, group) else {
            return;
        };
        if let Some(record) = self.records.get_mut(&key) {
            if record.left == NOT_YET {
                record.left = at;
            }
        }
    }

    /// Every (host, group) measured, in no particular order.
    pub fn delays(&self) -> impl Iterator<Item = HostGroupDelays> + '_ {
        self.records.iter().map(|(key, record)| HostGroupDelays {
            host: (key >> 32) as u32,
            group: self.groups[(*key as u32) as usize],
            join_delay_ns: record.join_delay(),
            leave_delay_ns: self.leave_delay(*key, record),
        })
    }

    /// Summaries over all and per group, and at most `list_limit` entries of each list.
    pub fn report(&self, list_limit: usize) -> DelayReport {
        let mut joins: Vec<(u32, Nanos)> = Vec::new();
        let mut leaves: Vec<(u32, Nanos)> = Vec::new();
        let mut never_forwarded = Vec::new();
        let mut forwarded_after_leave = Vec::new();
        for (key, record) in &self.records {
            let group_index = *key as u32;
            let host_group = HostGroup {
                host: (key >> 32) as u32,
                group: self.groups[group_index as usize],
            };
            match record.join_delay() {
                Some(delay) => joins.push((group_index, delay)),
                None => never_forwarded.push(host_group),
            }
            if let Some(delay) = self.leave_delay(*key, record) {
                leaves.push((group_index, delay));
                if delay > self.leave_grace {
                    forwarded_after_leave.push(host_group);
                }
            }
        }
        let mut report = DelayReport {
            leave_grace_ns: self.leave_grace,
            join: summary(joins.iter().map(|(_, d)| *d).collect()),
            leave: summary(leaves.iter().map(|(_, d)| *d).collect()),
            groups: Vec::new(),
            never_forwarded_total: never_forwarded.len(),
            never_forwarded: bounded(never_forwarded, list_limit),
            forwarded_after_leave_total: forwarded_after_leave.len(),
            forwarded_after_leave: bounded(forwarded_after_leave, list_limit),
            untracked: self.untracked,
        };
        joins.sort_unstable();
        leaves.sort_unstable();
        let mut group_order: Vec<u32> = (0..self.groups.len() as u32).collect();
        group_order.sort_unstable_by_key(|&g| self.groups[g as usize]);
        for group_index in group_order {
            let of_group = |all: &[(u32, Nanos)]| {
                let start = all.partition_point(|(g, _)| *g < group_index);
                let end = all.partition_point(|(g, _)| *g <= group_index);
                summary(all[start..end].iter().map(|(_, d)| *d).collect())
            };
            let (join, leave) = (of_group(&joins), of_group(&leaves));
            if join.count > 0 || leave.count > 0 {
                report.groups.push(GroupDelays {
                    group: self.groups[group_index as usize],
                    join,
                    leave,
                });
            }
        }
        report
    }
}

fn bounded(mut list: Vec<HostGroup>, limit: usize) -> Vec<HostGroup> {
    list.sort_unstable_by_key(|hg| (hg.host, hg.group));
    list.truncate(limit);
    list
}

/// Nearest-rank percentiles of `delays`.
fn summary(mut delays: Vec<Nanos>) -> DelaySummary {
    delays.sort_unstable();
    let rank = |p: usize| -> Nanos {
        if delays.is_empty() {
            return 0;
        }
        // The smallest delay with at least p % of the delays at or below it.
        let index = (p * delays.len()).div_ceil(100).max(1) - 1;
        delays[index]
    };
    DelaySummary {
        count: delays.len(),
        p50_ns: rank(50),
        p99_ns: rank(99),
        max_ns: delays.last().copied().unwrap_or(0),
    }
}

/// 224.0.0.0/24 (RFC 5771 Local Network Control Block) and IPv6 link-local scope (RFC 4291
/// §2.7: scope 2).
fn is_link_local_scope(group: IpAddr) -> bool {
    match group {
        IpAddr::V4(g) => g.octets()[..3] == [224, 0, 0],
        IpAddr::V6(g) => g.segments()[0] & 0xff0f == 0xff02,
    }
}

/// One (host, group)'s delays; `None` while not measured yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HostGroupDelays {
    pub host: u32,
    pub group: IpAddr,
    pub join_delay_ns: Option<Nanos>,
    pub leave_delay_ns: Option<Nanos>,
}

/// The delay report's parts are the protocol's: the tracker's hosts are its numbers.
pub use control::protocol::{DelaySummary, GroupDelays};
pub type HostGroup = control::protocol::HostGroup<u32>;
/// What `tunmcastctl delays [--json]` shows, the hosts by the tracker's numbers.
pub type DelayReport = control::protocol::DelaysReply<u32>;

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Nanos = 1_000_000;

    fn group(last: u8) -> IpAddr {
        IpAddr::from([239, 1, 1, last])
    }

    fn source(last: u8) -> IpAddr {
        IpAddr::from([10, 1, 1, last])
    }

    #[test]
    fn only_the_sources_admitted_before_the_leave_measure_it() {
        let mut tracker = DelayTracker::new(16, 3000 * MS);
        // Host 1 joined INCLUDE {S1}: S2's datagrams (not admitted) do not make the join.
        tracker.report_sent(1, group(1), 0);
        tracker.datagram(1, group(1), source(2), false, 5 * MS);
        tracker.datagram(1, group(1), source(1), true, 20 * MS);
        tracker.left(1, group(1), 1000 * MS);
        // After the leave, S2 still flows (a leak the device makes), S1 stops at 1.2 s.
        tracker.datagram(1, group(1), source(1), false, 1200 * MS);
        tracker.datagram(1, group(1), source(2), false, 1500 * MS);
        tracker.datagram(1, group(1), source(2), false, 5000 * MS);
        // Host 2 joined EXCLUDE {}: both sources admitted before its leave, both count after.
        tracker.report_sent(2, group(1), 0);
        tracker.datagram(2, group(1), source(1), true, 10 * MS);
        tracker.datagram(2, group(1), source(2), true, 11 * MS);
        tracker.datagram(2, group(1), source(2), true, 12 * MS);
        tracker.left(2, group(1), 1000 * MS);
        tracker.datagram(2, group(1), source(1), false, 1100 * MS);
        tracker.datagram(2, group(1), source(2), false, 1300 * MS);
        // A source never seen before the leave does not count either.
        tracker.datagram(2, group(1), source(3), false, 1400 * MS);
        let mut delays: Vec<_> = tracker.delays().collect();
        delays.sort_by_key(|d| d.host);
        assert_eq!(delays[0].join_delay_ns, Some(20 * MS));
        assert_eq!(delays[0].leave_delay_ns, Some(200 * MS));
        assert_eq!(delays[1].join_delay_ns, Some(10 * MS));
        assert_eq!(delays[1].leave_delay_ns, Some(300 * MS));
        assert!(tracker.report(10).forwarded_after_leave.is_empty());
        // A new join forgets the sources of the last one.
        tracker.report_sent(2, group(1), 6000 * MS);
        tracker.datagram(2, group(1), source(1), true, 6010 * MS);
        tracker.left(2, group(1), 7000 * MS);
        tracker.datagram(2, group(1), source(2), false, 7100 * MS);
        let after: Vec<_> = tracker.delays().filter(|d| d.host == 2).collect();
        assert_eq!(after[0].leave_delay_ns, Some(0));
    }

    #[test]
    fn link_local_groups_are_not_measured() {
        let mut tracker = DelayTracker::new(10, MS);
        for group in ["ff02::1:ff00:2", "224.0.0.251", "ff12::1", "ff1e::2:2"] {
            tracker.report_sent(1, group.parse().unwrap(), 0);
        }
        assert_eq!(tracker.len(), 1, "only the group a router forwards");
    }

    #[test]
    fn records_are_compact() {
        assert!(std::mem::size_of::<(u64, DelayRecord)>() <= 48);
    }

    #[test]
    fn join_delay_runs_from_the_first_report_to_the_first_datagram() {
        let mut tracker = DelayTracker::default();
        tracker.report_sent(1, group(1), 100 * MS);
        // The robustness retransmission does not restart the measurement.
        tracker.report_sent(1, group(1), 1100 * MS);
        tracker.datagram(1, group(1), source(1), true, 130 * MS);
        tracker.datagram(1, group(1), source(1), true, 140 * MS);
        // A datagram for a group nobody measures is ignored.
        tracker.datagram(2, group(1), source(1), true, 140 * MS);
        tracker.datagram(1, group(9), source(1), true, 140 * MS);
        let delays: Vec<_> = tracker.delays().collect();
        assert_eq!(
            delays,
            vec![HostGroupDelays {
                host: 1,
                group: group(1),
                join_delay_ns: Some(30 * MS),
                leave_delay_ns: None,
            }]
        );
    }

    #[test]
    fn leave_delay_runs_from_the_leave_to_the_last_datagram() {
        let mut tracker = DelayTracker::new(16, 3000 * MS);
        tracker.report_sent(1, group(1), 0);
        tracker.datagram(1, group(1), source(1), true, 10 * MS);
        tracker.left(1, group(1), 1000 * MS);
        tracker.datagram(1, group(1), source(1), true, 1500 * MS);
        tracker.datagram(1, group(1), source(1), true, 2000 * MS);
        // A second leave (a retransmission) does not move the leave time.
        tracker.left(1, group(1), 1900 * MS);
        // Left with no datagram after: leave delay 0.
        tracker.report_sent(2, group(1), 0);
        tracker.datagram(2, group(1), source(1), true, 20 * MS);
        tracker.left(2, group(1), 500 * MS);
        // Still forwarded well past the grace.
        tracker.report_sent(3, group(2), 0);
        tracker.datagram(3, group(2), source(1), true, 5 * MS);
        tracker.left(3, group(2), 100 * MS);
        tracker.datagram(3, group(2), source(1), true, 4000 * MS);
        let mut delays: Vec<_> = tracker.delays().collect();
        delays.sort_by_key(|d| d.host);
        let leave: Vec<_> = delays.iter().map(|d| d.leave_delay_ns).collect();
        assert_eq!(leave, vec![Some(1000 * MS), Some(0), Some(3900 * MS)]);
        let report = tracker.report(10);
        assert_eq!(
            report.forwarded_after_leave,
            vec![HostGroup {
                host: 3,
                group: group(2)
            }]
        );
        assert_eq!(report.forwarded_after_leave_total, 1);
        assert_eq!(report.leave.count, 3);
        assert_eq!(report.leave.max_ns, 3900 * MS);
    }

    #[test]
    fn a_new_join_after_a_leave_is_a_new_measurement() {
        let mut tracker = DelayTracker::default();
        tracker.report_sent(1, group(1), 0);
        tracker.datagram(1, group(1), source(1), true, 10 * MS);
        tracker.left(1, group(1), 100 * MS);
        tracker.report_sent(1, group(1), 1000 * MS);
        // Traffic still flowing from before the join counts for "last", not for the join.
        tracker.datagram(1, group(1), source(1), true, 990 * MS);
        tracker.datagram(1, group(1), source(1), true, 1007 * MS);
        let delays: Vec<_> = tracker.delays().collect();
        assert_eq!(delays[0].join_delay_ns, Some(7 * MS));
        assert_eq!(delays[0].leave_delay_ns, None);
    }

    #[test]
    fn the_summary_has_nearest_rank_percentiles_per_group_and_over_all() {
        let mut tracker = DelayTracker::default();
        // 100 hosts on group 1 with join delays 1..=100 ms, 2 never forwarded on group 2.
        for host in 0..100u32 {
            tracker.report_sent(host, group(1), 0);
            tracker.datagram(host, group(1), source(1), true, Nanos::from(host + 1) * MS);
        }
        tracker.report_sent(7, group(2), 0);
        tracker.report_sent(3, group(2), 0);
        let report = tracker.report(1);
        let expected = DelaySummary {
            count: 100,
            p50_ns: 50 * MS,
            p99_ns: 99 * MS,
            max_ns: 100 * MS,
        };
        assert_eq!(report.join, expected);
        assert_eq!(report.leave, DelaySummary::default());
        assert_eq!(
            report.groups,
            vec![GroupDelays {
                group: group(1),
                join: expected,
                leave: DelaySummary::default(),
            }]
        );
        // The list is bounded, sorted, and its total says how long it was.
        assert_eq!(
            report.never_forwarded,
            vec![HostGroup {
                host: 3,
                group: group(2)
            }]
        );
        assert_eq!(report.never_forwarded_total, 2);
        assert_eq!(summary(vec![5]).p99_ns, 5);
        assert_eq!(summary(vec![1, 2]).p50_ns, 1);

        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["join"]["p99_ns"], 99 * MS);
        assert_eq!(json["groups"][0]["group"], "239.1.1.1");
        assert_eq!(json["never_forwarded"][0]["host"], 3);
    }

    #[test]
    fn the_tracker_is_bounded_and_can_be_reset() {
        let mut tracker = DelayTracker::new(2, DEFAULT_LEAVE_GRACE);
        for host in 0..5 {
            tracker.report_sent(host, "ff0e::1".parse().unwrap(), 0);
        }
        assert_eq!(tracker.len(), 2);
        assert_eq!(tracker.report(10).untracked, 3);
        tracker.reset();
        assert!(tracker.is_empty());
        assert_eq!(tracker.report(10).untracked, 0);
        tracker.report_sent(9, group(1), 0);
        assert_eq!(tracker.len(), 1);
    }
}
