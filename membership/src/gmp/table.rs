//! The group table: one record per (interface, group) (`gmp::entry`), the per-interface
//! state, the timer wheel's keys, and the request changes that drive it all.

use alloc::vec::Vec;
use core::net::IpAddr;
use core::time::Duration;

use super::compat::{OlderQueriers, QuerierParams};
use super::entry::{GroupEntry, GroupMode};
use super::index::{GroupIndex, NO_SLOT};
use super::v3::V3Iface;
use super::{Compat, Env, Family, Protocol};
use crate::event::Event;
use crate::filter::RequestChange;
use crate::time::Instant;
use crate::timer::TimerId;
use crate::{Error, IfIndex};

/// Per interface and family: its groups, the queriers heard, and v3 query state.
#[derive(Debug)]
pub(crate) struct FamilyIface<A> {
    /// Each group's record (its slot in the table; u32 keeps the index small).
    pub(super) groups: GroupIndex<A>,
    pub(super) older: OlderQueriers,
    pub(super) querier: QuerierParams,
    pub(super) v3: V3Iface,
}

impl<A> Default for FamilyIface<A> {
    fn default() -> Self {
        FamilyIface {
            groups: GroupIndex::default(),
            older: OlderQueriers::default(),
            querier: QuerierParams::default(),
            v3: V3Iface::default(),
        }
    }
}

/// What a timer on the wheel is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerKey {
    /// A record's report timer (v1/v2) or query-response timer (v3).
    Report(usize),
    /// An interface's v3 state-change retransmission.
    Retransmit(IfIndex),
    /// An interface's pending v3 General Query response, and the end of the query's Max Resp
    /// Time: the answer is paced so as to be out by then.
    GeneralResponse(IfIndex, Instant),
    /// The next reports of an interface's paced General Query answer.
    Answer(IfIndex),
    /// An Older Version Querier Present timer.
    OlderQuerier(IfIndex, Compat),
}

impl<P: Protocol> Family<P> {
    pub fn add_interface(&mut self, ifindex: IfIndex) {
        self.ifaces.add(ifindex);
    }

    /// A request change as the API gives it, its sources checked against the family.
    pub fn request(
        &mut self,
        ifindex: IfIndex,
        group: P::Addr,
        change: RequestChange<IpAddr>,
        now: Instant,
        env: &mut Env<'_>,
    ) -> Result<u32, Error> {
        let change = change.typed(|a| P::from_ip(a).filter(P::is_source))?;
        self.change(ifindex, group, change, now, env)
    }

    /// Changes the requests held for `group`; reports the change the way the interface's mode
    /// says. Returns the requests (users) left.
    pub fn change(
        &mut self,
        ifindex: IfIndex,
        group: P::Addr,
        change: RequestChange<P::Addr>,
        now: Instant,
        env: &mut Env<'_>,
    ) -> Result<u32, Error> {
        if !P::is_multicast(&group) {
            return Err(Error::NotMulticast(group.into()));
        }
        if !env.interfaces.contains_key(&ifindex) {
            return Err(Error::UnknownInterface(ifindex));
        }
        let mode = self.compat(ifindex, env.config);
        let reportable = P::reportable(&group, env.config);
        let iface = self
            .ifaces
            .get_mut(&ifindex)
            .ok_or(Error::UnknownInterface(ifindex))?;
        let adding = match &change {
            RequestChange::Add(_) => true,
            RequestChange::SetOwner(_, filter) => filter.has_reception_state(),
            _ => false,
        };
        let records = &self.records;
        let group_of = |slot: u32| records[slot as usize].group;
        let key = match iface.groups.get(&group, group_of).map(|k| k as usize) {
            // A group being left (its last retransmissions pending) is not joined any more.
            Some(key) if self.records[key].is_leaving() && !adding => {
                return Err(Error::NotJoined(group.into()));
            }
            Some(key) => key,
            None if !adding => return Err(Error::NotJoined(group.into())),
            None => {
                // The table grows by an eighth at a time, not by doubling: at a million groups
                // a doubled table would hold a million empty records' worth of memory.
                if self.records.len() == self.records.capacity() {
                    let step = (self.records.capacity() / 8).max(64);
                    self.records.reserve_exact(step);
                }
                // The index keeps slots as u32 (smaller per group), NO_SLOT never one; 2^32
                // records would take hundreds of GiB, but a full index is an error, never a
                // panic.
                let slot = match u32::try_from(self.records.vacant_key()) {
                    Ok(slot) if slot != NO_SLOT => slot,
                    _ => return Err(Error::TableFull),
                };
                let records = &self.records;
                iface
                    .groups
                    .insert(group, slot, |s| records[s as usize].group);
                self.records.insert(GroupEntry::new(
                    ifindex,
                    group,
                    GroupMode::new(mode, reportable),
                ))
            }
        };
        let old = match self.records[key].change(change) {
            Ok(old) => old,
            Err(e) => {
                self.forget_if_done(key); // a record created for a change that did not apply
                return Err(e);
            }
        };
        let record = &self.records[key];
        let filter = record.filter();
        let users = record.users();
        let had = old.has_reception_state();
        let has = filter.has_reception_state();
        let event = match (had, has) {
            (false, true) => Some(Event::Joined {
                iface: ifindex,
                group: group.into(),
            }),
            (true, false) => Some(Event::Left {
                iface: ifindex,
                group: group.into(),
            }),
            (true, true) if old != *filter => Some(Event::FilterChanged {
                iface: ifindex,
                group: group.into(),
                filter: filter.to_api(),
            }),
            _ => None,
        };
        if let Some(event) = event {
            env.event(event);
        }
        if !reportable {
            if !has && users == 0 {
                self.remove(key);
            }
            return Ok(users);
        }
        if mode == Compat::V3 {
            if old != *self.records[key].filter() {
                self.state_changed(key, &old, now, env);
            }
            self.forget_if_done(key);
        } else {
            self.reception_changed(key, had, has, now, env);
        }
        Ok(users)
    }

    /// Every request on `ifindex` dropped (shutdown): each group leaves as the mode says.
    pub fn leave_all(&mut self, ifindex: IfIndex, now: Instant, env: &mut Env<'_>) {
        let groups: Vec<P::Addr> = match self.ifaces.get(&ifindex) {
            Some(iface) => iface
                .groups
                .slots()
                .map(|slot| self.records[slot as usize].group)
                .collect(),
            None => return,
        };
        for group in groups {
            let _ = self.change(ifindex, group, RequestChange::DropAll, now, env);
        }
    }

    pub(super) fn remove(&mut self, key: usize) {
        let record = &self.records[key];
        let (ifindex, group, news_left) = (record.iface, record.group, !record.news_done());
        if let Some(iface) = self.ifaces.get_mut(&ifindex) {
            let records = &self.records;
            iface.groups.remove(&group, |s| records[s as usize].group);
            if news_left {
                // Seldom: a record goes with news pending only when its interface leaves v3.
                iface.v3.changed.remove(key as u32);
            }
            if iface.v3.changed.is_empty() {
                if let Some(timer) = iface.v3.retransmit.take() {
                    self.wheel.cancel(timer);
                }
            }
        }
        let mut record = self.records.remove(key);
        if let Some(timer) = record.take_timer() {
            self.wheel.cancel(timer);
        }
    }

    /// A record with no requests stays only while its leave is being retransmitted.
    pub(super) fn forget_if_done(&mut self, key: usize) {
        let record = &self.records[key];
        if record.is_leaving() && record.news_done() {
            self.remove(key);
        }
    }

    /// Cancels a record's timer.
    pub(super) fn cancel_timer(&mut self, key: usize) {
        if let Some(timer) = self.records[key].take_timer() {
            self.wheel.cancel(timer);
        }
    }

    /// The records of `ifindex`, from its own index: O(its groups), whatever the other
    /// interfaces hold (a core serves a million emulated hosts as interfaces). Sorted into
    /// memory (slot) order rather than the group map's: a query over 10^5 groups is several
    /// times cheaper this way (BENCHMARKS.md), and the records meet the RNG in the order they
    /// always have.
    pub(super) fn keys_on(&mut self, ifindex: IfIndex) -> Vec<usize> {
        let Some(iface) = self.ifaces.get(&ifindex) else {
            return Vec::new();
        };
        let mut keys: Vec<usize> = iface.groups.slots().map(|k| k as usize).collect();
        keys.sort_unstable();
        self.visited += keys.len() as u64;
        keys
    }

    /// Fires every timer due by `now`.
    pub fn advance(&mut self, now: Instant, env: &mut Env<'_>) {
        let mut due = Vec::new();
        loop {
            // A repeat drawn from a deadline in the past may itself be due by `now`.
            self.wheel.advance(now, |key, at| due.push((key, at)));
            if due.is_empty() {
                break;
            }
            for (key, at) in due.drain(..) {
                self.fire(key, at, env);
            }
        }
    }

    /// One timer. Follow-up timers are drawn from its deadline, not from when the driver got
    /// round to polling, so a late poll does not stretch the schedule.
    fn fire(&mut self, key: TimerKey, at: Instant, env: &mut Env<'_>) {
        match key {
            TimerKey::Report(record_key) => {
                let Some(record) = self.records.get_mut(record_key) else {
                    return;
                };
                record.timer = None;
                match record.mode {
                    GroupMode::Older(_) => self.report_timer_expired(record_key, at, env),
                    GroupMode::V3 { .. } => self.query_response_due(record_key),
                }
            }
            TimerKey::Retransmit(ifindex) => self.retransmit(ifindex, at, env),
            TimerKey::GeneralResponse(ifindex, by) => {
                self.general_response_due(ifindex, at, by, env)
            }
            TimerKey::Answer(ifindex) => self.answer_due(ifindex),
            TimerKey::OlderQuerier(ifindex, version) => {
                self.older_querier_expired(ifindex, version, env)
            }
        }
    }

    /// When `advance` has a timer to fire next.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.wheel.next_deadline()
    }

    /// Whether v3 records wait for `flush_reports`, or answers for `poll_answer`.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty() || self.has_answers_due()
    }

    pub(super) fn timer_left(&self, timer: Option<TimerId>, now: Instant) -> Option<Duration> {
        Some(self.wheel.deadline(timer?)? - now)
    }
}

#[cfg(test)]
mod tests {
    use core::net::{Ipv4Addr, Ipv6Addr};

    use super::{FamilyIface, TimerKey};

    /// Every emulated host holds one per family (issue 16: ≤ 512 B per idle host in the
    /// daemon). 120 bytes before the querier's times went to milliseconds and the list of
    /// records with news to a box of its own.
    #[test]
    fn interface_states_stay_small() {
        assert!(core::mem::size_of::<FamilyIface<Ipv4Addr>>() <= 80);
        assert!(core::mem::size_of::<FamilyIface<Ipv6Addr>>() <= 80);
    }

    /// Every timer on the wheel holds one; the General Query's deadline rides in the padding.
    #[test]
    fn timer_keys_stay_small() {
        assert!(core::mem::size_of::<TimerKey>() <= 16);
    }
}
