//! The family's side of [`GroupInfo`] and [`InterfaceInfo`](crate::InterfaceInfo).

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use super::entry::{GroupEntry, GroupMode};
use super::{Family, Protocol};
use crate::info::GroupInfo;
use crate::time::Instant;
use crate::{Config, IfIndex};

/// Milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl<P: Protocol> Family<P> {
    /// Every group record, in no particular order.
    pub fn group_infos(&self, config: &Config, now: Instant, out: &mut Vec<GroupInfo>) {
        out.extend(
            self.records
                .iter()
                .map(|(_, r)| self.group_info(r, config, now)),
        );
    }

    /// Whether `group` has a record on `ifindex`.
    pub fn has_record(&self, ifindex: IfIndex, group: P::Addr) -> bool {
        self.slot_of(ifindex, group).is_some()
    }

    /// The slot of the record of `group` on `ifindex`. O(log of the interface's groups).
    pub(super) fn slot_of(&self, ifindex: IfIndex, group: P::Addr) -> Option<usize> {
        let iface = self.ifaces.get(&ifindex)?;
        let slot = iface
            .groups
            .get(&group, |s| self.records[s as usize].group)?;
        Some(slot as usize)
    }

    /// Whether the interface state of `group` on `ifindex` admits `source` (RFC 9776 §3.2):
    /// `None` without a record or with no reception state (a record being left). O(log of
    /// the group's sources).
    pub fn admits_source(&self, ifindex: IfIndex, group: P::Addr, source: P::Addr) -> Option<bool> {
        let key = self.slot_of(ifindex, group)?;
        let filter = self.records[key].filter();
        if !filter.has_reception_state() {
            return None;
        }
        let listed = filter.sources.contains(&source);
        Some(match filter.mode {
            crate::FilterMode::Include => listed,
            crate::FilterMode::Exclude => !listed,
        })
    }

    /// The record of `group` on `ifindex`, if there is one.
    pub fn find_group_info(
        &self,
        ifindex: IfIndex,
        group: P::Addr,
        config: &Config,
        now: Instant,
    ) -> Option<GroupInfo> {
        let key = self.slot_of(ifindex, group)?;
        Some(self.group_info(&self.records[key], config, now))
    }

    /// Up to `max` records from slab slot `from` on, appended to `out`, in slot order; the slot
    /// to go on from, or `None` past the last. A record present throughout a walk keeps its
    /// slot, so it is listed exactly once.
    pub fn group_infos_page(
        &self,
        from: usize,
        max: usize,
        config: &Config,
        now: Instant,
        out: &mut Vec<GroupInfo>,
    ) -> Option<usize> {
        let mut taken = 0;
        for at in from..self.records.capacity() {
            if taken == max {
                return Some(at);
            }
            if let Some(r) = self.records.get(at) {
                out.push(self.group_info(r, config, now));
                taken += 1;
            }
        }
        None
    }

    /// Up to `max` records of `ifindex` in group order, the first `skip` passed over, appended
    /// to `out`. Costs `skip + max` steps of the interface's own index, whatever the table holds.
    pub fn iface_group_infos(
        &self,
        ifindex: IfIndex,
        skip: usize,
        max: usize,
        config: &Config,
        now: Instant,
        out: &mut Vec<GroupInfo>,
    ) {
        if let Some(iface) = self.ifaces.get(&ifindex) {
            out.extend(
                iface
                    .groups
                    .slots()
                    .skip(skip)
                    .take(max)
                    .map(|key| self.group_info(&self.records[key as usize], config, now)),
            );
        }
    }

    fn group_info(&self, r: &GroupEntry<P::Addr>, config: &Config, now: Instant) -> GroupInfo {
        let timer_ms = self.timer_left(r.timer, now).map(millis);
        let (state, last_reporter, unsolicited_left, retransmit_ms) = match r.mode {
            GroupMode::Older(member) => (
                member.state.name(),
                member.state.last_reporter(),
                member.unsolicited_left,
                None,
            ),
            GroupMode::V3 { .. } => {
                let retransmit_ms = (!r.news_done()).then_some(()).and_then(|()| {
                    let timer = self.ifaces.get(&r.iface).and_then(|i| i.v3.retransmit);
                    self.timer_left(timer, now).map(millis)
                });
                let state = if !P::reportable(&r.group, config) {
                    "silent"
                } else if r.is_leaving() {
                    "leaving"
                } else if timer_ms.is_some() {
                    "delaying"
                } else if retransmit_ms.is_some() {
                    "reporting"
                } else {
                    "idle"
                };
                (state, false, 0, retransmit_ms)
            }
        };
        let filter = r.filter();
        GroupInfo {
            iface: r.iface,
            group: r.group.into(),
            users: r.users(),
            state,
            timer_ms,
            last_reporter,
            unsolicited_left,
            retransmit_ms,
            filter_mode: filter.mode.name(),
            sources: filter.sources.iter().map(|&s| s.into()).collect(),
            requests: r.requests().map(|(_, f)| f.to_api()).collect(),
            owners: r
                .requests()
                .map(|(owner, _)| owner.map(String::from))
                .collect(),
        }
    }

    /// Time left until the pending v3 General Query response.
    pub fn general_response_left(&self, ifindex: IfIndex, now: Instant) -> Option<Duration> {
        let timer = self.ifaces.get(&ifindex).and_then(|i| i.v3.general);
        self.timer_left(timer, now)
    }

    /// Group records on `ifindex`.
    pub fn group_count(&self, ifindex: IfIndex) -> usize {
        self.ifaces.get(&ifindex).map_or(0, |i| i.groups.len())
    }
}
