//! Which records a datagram read for every member of a group concerns: O(1) a datagram plus
//! the (host, source) pairs not yet checked, never O(members).
//!
//! A datagram of source S changes a (host, group) record only the first time S reaches the
//! host after its report: it may be the join's first datagram (S admitted), and it makes S a
//! source admitted before the leave (S admitted) or not (S excluded); the same source's later
//! datagrams change nothing until the host reports again (its filter may have changed) or
//! leaves. After the leave, the leave delay runs to the last datagram of a source admitted
//! before it, which is the last datagram of that source read on the link: kept per (link,
//! group, source) and read with the record ([`DelayTracker::last_datagram_of`]).
//!
//! So each (link, group, source) keeps the hosts that have not seen it since their last
//! report; a report puts its host there for each source known on the link (O(those
//! sources)), a source new to the link takes every member once, and a datagram hands itself
//! to those it keeps, then forgets them.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::IpAddr;

use rustc_hash::FxHashMap;

use super::{is_link_local_scope, DelayTracker, Nanos, MAX_SOURCES, NOT_YET};
use crate::ids::{HostId, LinkId};

/// One source of a group on a link.
#[derive(Debug, Default)]
pub(super) struct SourceFeed {
    /// When its latest datagram was read.
    pub(super) last: Nanos,
    /// Hosts (by tracker number, with their id) that have not seen it since their report.
    unchecked: FxHashMap<u32, HostId>,
}

impl DelayTracker {
    /// [`DelayTracker::report_sent`] for host `id` (number `host`) of `link`: its next
    /// datagram of each source known on the link is checked against its filter. O(those
    /// sources).
    pub fn report_sent_on(
        &mut self,
        link: LinkId,
        id: HostId,
        host: u32,
        group: IpAddr,
        at: Nanos,
    ) {
        self.report_sent(host, group, at);
        if is_link_local_scope(group)
            || self
                .key(host, group)
                .is_none_or(|k| !self.records.contains_key(&k))
        {
            return;
        }
        self.host_links.insert(host, link);
        if let Some(sources) = self.feeds.get_mut(&(link, group)) {
            for source in sources.values_mut() {
                source.unchecked.insert(host, id);
            }
        }
    }

    /// A datagram of `group` from `source` read on `link` at `at` for every member of the
    /// group there. A source new to the link is checked for each of `members` (called once,
    /// then); `admits` says whether a host's filter admits `source` now. Returns how many
    /// records it handed the datagram to.
    pub fn datagram_for_members<M>(
        &mut self,
        link: LinkId,
        group: IpAddr,
        source: IpAddr,
        at: Nanos,
        members: impl FnOnce() -> M,
        admits: impl Fn(HostId, u32) -> bool,
    ) -> usize
    where
        M: IntoIterator<Item = (HostId, u32)>,
    {
        if !self.group_index.contains_key(&group) {
            return 0; // nobody measured joins it
        }
        let sources = self.feeds.entry((link, group)).or_default();
        let feed = match sources.entry(source) {
            Entry::Occupied(known) => known.into_mut(),
            // A flood of forged sources measures nothing.
            Entry::Vacant(_) if self.fed_sources >= MAX_SOURCES => return 0,
            Entry::Vacant(new) => {
                self.fed_sources += 1;
                new.insert(SourceFeed {
                    last: NOT_YET,
                    unchecked: members().into_iter().map(|(id, n)| (n, id)).collect(),
                })
            }
        };
        feed.last = at;
        if feed.unchecked.is_empty() {
            return 0;
        }
        let mut unchecked = std::mem::take(&mut feed.unchecked);
        let handed = unchecked.len();
        // A datagram that arrived before a host's report (read after it) leaves the host
        // waiting for the next one: that may be its join's first.
        unchecked.retain(|&host, &mut id| {
            let admitted = admits(id, host);
            self.datagram(host, group, source, admitted, at)
        });
        if !unchecked.is_empty() {
            if let Some(feed) = self
                .feeds
                .get_mut(&(link, group))
                .and_then(|sources| sources.get_mut(&source))
            {
                feed.unchecked.extend(unchecked);
            }
        }
        handed
    }

    /// The latest datagram read of a source record `key` admitted before its leave, on its
    /// host's link, if any came through [`DelayTracker::datagram_for_members`].
    pub(super) fn last_datagram_of(&self, key: u64) -> Option<Nanos> {
        let host = (key >> 32) as u32;
        let group = self.groups[(key as u32) as usize];
        let link = self.host_links.get(&host)?;
        let sources = self.feeds.get(&(*link, group))?;
        let record = self.records.get(&key)?;
        let admitted = std::iter::once(record.source)
            .chain(self.more_sources.get(&key).into_iter().flatten().copied())
            .filter_map(|n| self.sources.get(n as usize));
        let mut last = None;
        for source in admitted {
            match sources.get(source).map(|f| f.last) {
                Some(at) if at != NOT_YET => last = Some(last.map_or(at, |l: Nanos| l.max(at))),
                _ => {}
            }
        }
        last
    }
}

/// The sources of each (link, group) the tracker has seen.
pub(super) type Feeds = HashMap<(LinkId, IpAddr), HashMap<IpAddr, SourceFeed>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Id;

    const MS: Nanos = 1_000_000;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// 1,000 hosts joined INCLUDE {S1}; S1 and S2 send: the first datagram of each source
    /// is checked for every host, the later ones for none; the join delays, the leave
    /// delays (S1's last datagram after the leave, not S2's) are each host's.
    #[test]
    fn a_datagram_is_handed_only_to_the_records_it_changes() {
        let mut tracker = DelayTracker::new(1 << 16, 3000 * MS);
        let link = LinkId::from_index(0);
        let (g, s1, s2) = (ip("232.1.1.1"), ip("10.0.0.1"), ip("10.0.0.2"));
        let hosts: Vec<(HostId, u32)> = (0..1000)
            .map(|n| (HostId::from_index(n), n as u32))
            .collect();
        for &(id, n) in &hosts {
            tracker.report_sent_on(link, id, n, g, u64::from(n) * 1000);
        }
        let members = || hosts.clone();
        let admits_s1 = |_: HostId, _: u32| true;
        let excludes = |_: HostId, _: u32| false;
        let first = tracker.datagram_for_members(link, g, s1, 10 * MS, members, admits_s1);
        assert_eq!(first, 1000);
        assert_eq!(
            tracker.datagram_for_members(link, g, s2, 11 * MS, members, excludes),
            1000
        );
        let mut handed = 0;
        for ms in 12..100 {
            handed += tracker.datagram_for_members(link, g, s1, ms * MS, members, admits_s1);
            handed += tracker.datagram_for_members(link, g, s2, ms * MS, members, excludes);
        }
        assert_eq!(handed, 0, "the same sources again: nothing per host");
        // Host 7 reports again (its filter may have changed): its next datagram of each
        // source is checked, for it alone.
        tracker.report_sent_on(link, HostId::from_index(7), 7, g, 100 * MS);
        assert_eq!(
            tracker.datagram_for_members(link, g, s1, 101 * MS, members, admits_s1),
            1
        );
        // Host 3 leaves at 200 ms; S1 goes on until 500 ms, S2 until 900 ms.
        tracker.left(3, g, 200 * MS);
        for ms in [300, 500] {
            tracker.datagram_for_members(link, g, s1, ms * MS, members, admits_s1);
        }
        tracker.datagram_for_members(link, g, s2, 900 * MS, members, excludes);
        let delays: HashMap<u32, _> = tracker.delays().map(|d| (d.host, d)).collect();
        assert_eq!(delays[&3].join_delay_ns, Some(10 * MS - 3000));
        assert_eq!(delays[&3].leave_delay_ns, Some(300 * MS));
        assert_eq!(delays[&4].leave_delay_ns, None);
        assert_eq!(tracker.report(10).leave.max_ns, 300 * MS);
    }

    #[test]
    fn a_flood_of_forged_sources_is_bounded() {
        let mut tracker = DelayTracker::new(16, 3000 * MS);
        let link = LinkId::from_index(0);
        let g = ip("239.1.1.1");
        let a = (HostId::from_index(1), 1);
        tracker.report_sent_on(link, a.0, a.1, g, 0);
        let excludes = |_: HostId, _: u32| false;
        let mut handed = Vec::new();
        for n in 0..MAX_SOURCES as u32 + 10 {
            let source = IpAddr::from(n.to_be_bytes());
            handed.push(tracker.datagram_for_members(link, g, source, MS, || [a], excludes));
        }
        assert!(handed[..MAX_SOURCES].iter().all(|&n| n == 1));
        assert!(
            handed[MAX_SOURCES..].iter().all(|&n| n == 0),
            "beyond the bound"
        );
        assert_eq!(tracker.fed_sources, MAX_SOURCES);
    }

    #[test]
    fn a_host_that_joins_later_measures_from_its_own_report() {
        let mut tracker = DelayTracker::new(16, 3000 * MS);
        let link = LinkId::from_index(0);
        let (g, s1) = (ip("239.1.1.1"), ip("10.0.0.1"));
        let (a, b) = ((HostId::from_index(1), 1), (HostId::from_index(2), 2));
        tracker.report_sent_on(link, a.0, a.1, g, 0);
        let admits = |_: HostId, _: u32| true;
        tracker.datagram_for_members(link, g, s1, 5 * MS, || [a], admits);
        tracker.datagram_for_members(link, g, s1, 6 * MS, || [a], admits);
        // B joins while S1 flows: its join delay is to the first datagram after its report.
        tracker.report_sent_on(link, b.0, b.1, g, 20 * MS);
        tracker.datagram_for_members(link, g, s1, 23 * MS, || [a, b], admits);
        // Another link's datagrams of the group are not B's.
        let other = LinkId::from_index(1);
        tracker.left(2, g, 30 * MS);
        tracker.datagram_for_members(other, g, s1, 40 * MS, || [], admits);
        let delays: HashMap<u32, _> = tracker.delays().map(|d| (d.host, d)).collect();
        assert_eq!(delays[&1].join_delay_ns, Some(5 * MS));
        assert_eq!(delays[&2].join_delay_ns, Some(3 * MS));
        assert_eq!(delays[&2].leave_delay_ns, Some(0));
    }

    /// A datagram that arrived before a host's report was written, and was read after it
    /// (stamped at its arrival), does not measure the join and leaves the host waiting: the
    /// next datagram of the source is its join's first.
    #[test]
    fn a_datagram_from_before_the_report_leaves_the_host_waiting_for_the_next() {
        let mut tracker = DelayTracker::new(16, 3000 * MS);
        let link = LinkId::from_index(0);
        let (g, s1) = (ip("239.1.1.1"), ip("10.0.0.1"));
        let (a, b) = ((HostId::from_index(1), 1), (HostId::from_index(2), 2));
        let admits = |_: HostId, _: u32| true;
        tracker.report_sent_on(link, a.0, a.1, g, 0);
        tracker.datagram_for_members(link, g, s1, 5 * MS, || [a], admits);
        tracker.report_sent_on(link, b.0, b.1, g, 20 * MS);
        // Arrived at 19 ms, read after B's report.
        assert_eq!(
            tracker.datagram_for_members(link, g, s1, 19 * MS, || [a, b], admits),
            1
        );
        assert_eq!(
            tracker.datagram_for_members(link, g, s1, 25 * MS, || [a, b], admits),
            1,
            "B still waits for its first"
        );
        assert_eq!(
            tracker.datagram_for_members(link, g, s1, 30 * MS, || [a, b], admits),
            0
        );
        let delays: HashMap<u32, _> = tracker.delays().map(|d| (d.host, d)).collect();
        assert_eq!(delays[&2].join_delay_ns, Some(5 * MS));
    }
}
