//! The group table: one record per (interface, group) with the requests held for it, the
//! per-interface state, the timer wheel's keys, and the request changes that drive it all.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::net::IpAddr;
use core::time::Duration;

use super::compat::{OlderQueriers, QuerierParams};
use super::index::GroupIndex;
use super::v1v2::machine::{Member, MemberState};
use super::v3::{Retransmit, V3Iface};
use super::{Compat, Env, Family, Protocol};
use crate::event::Event;
use crate::filter::{apply_change, Filter, RequestChange, Requests};
use crate::time::Instant;
use crate::timer::TimerId;
use crate::{Error, IfIndex};

/// An entry of the group table: one group on one interface (not a group record of a v3
/// report, which is `wire::GroupRecord`).
#[derive(Debug)]
pub(crate) struct GroupEntry<A> {
    pub(super) iface: IfIndex,
    pub(super) group: A,
    /// Every request held (each join is one; the seeds' reference count is their number). A
    /// record without requests is a v3 group being left: only its leave's retransmissions keep
    /// it, and it is not joined any more.
    pub(super) requests: Requests<A>,
    /// The interface state: the requests merged.
    pub(super) filter: Filter<A>,
    /// What the interface's compatibility mode keeps for the group.
    pub(super) mode: GroupMode<A>,
}

/// A group's state in each compatibility mode; an interface switches all its records at once.
#[derive(Debug)]
pub(crate) enum GroupMode<A> {
    /// IGMPv1/v2, MLDv1: the group state machine and its report timer.
    Older {
        member: Member,
        report: Option<TimerId>,
    },
    /// IGMPv3, MLDv2. The rarely used parts are boxed, so that a settled group stays small.
    V3 {
        /// The pending response to a group-specific or group-and-source-specific query.
        response: Option<TimerId>,
        /// Filter-mode change reports (TO_IN / TO_EX) still to send: every plain join and
        /// leave is one, and it costs this byte, nothing allocated.
        mode_change: u8,
        /// The group was reported in an older mode (IGMPv1/v2, MLDv1) and no change has been
        /// reported since: the router holds (*,G), EXCLUDE {}, whatever our filter says
        /// (RFC 9776 §7.3.2, RFC 9777 §8.3.2: an older report counts as IS_EX {}). The next
        /// state change is reported against that state (see `Family::state_changed`).
        router_any_source: bool,
        /// What only source-specific queries and source changes need.
        extra: Option<Box<V3Extra<A>>>,
    },
}

/// The rare parts of a v3 group's state, boxed together: 8 bytes in every record.
#[derive(Debug)]
pub(crate) struct V3Extra<A> {
    /// The sources a group-and-source-specific query asked about (None: the whole group).
    pub(super) queried: Option<BTreeSet<A>>,
    /// Sources to announce as allowed / blocked, with the reports each has left.
    pub(super) sources: BTreeMap<A, u8>,
}

/// Drops the box of `extra` once it holds nothing.
pub(super) fn tidy<A>(extra: &mut Option<Box<V3Extra<A>>>) {
    if extra
        .as_ref()
        .is_some_and(|e| e.queried.is_none() && e.sources.is_empty())
    {
        *extra = None;
    }
}

/// Runs `f` on a v3 group's state-change news as a [`Retransmit`] and keeps what it leaves.
pub(super) fn with_news<A: Ord + Copy, T>(
    mode_change: &mut u8,
    extra: &mut Option<Box<V3Extra<A>>>,
    f: impl FnOnce(&mut Retransmit<A>) -> T,
) -> T {
    let mut news = Retransmit {
        mode_change: *mode_change,
        sources: extra
            .as_mut()
            .map(|e| core::mem::take(&mut e.sources))
            .unwrap_or_default(),
    };
    let result = f(&mut news);
    *mode_change = news.mode_change;
    if !news.sources.is_empty() {
        extra
            .get_or_insert_with(|| {
                Box::new(V3Extra {
                    queried: None,
                    sources: BTreeMap::new(),
                })
            })
            .sources = news.sources;
    }
    tidy(extra);
    result
}

impl<A: Ord + Copy> GroupMode<A> {
    /// A new group's state in `mode`.
    pub(super) fn new(mode: Compat, reportable: bool) -> GroupMode<A> {
        if mode == Compat::V3 {
            return GroupMode::V3 {
                response: None,
                mode_change: 0,
                router_any_source: false,
                extra: None,
            };
        }
        let state = if reportable {
            MemberState::Idle {
                last_reporter: false,
            }
        } else {
            MemberState::Silent
        };
        GroupMode::Older {
            member: Member {
                state,
                unsolicited_left: 0,
            },
            report: None,
        }
    }

    /// The group's timer: the v1/v2 report timer or the v3 query-response timer.
    pub(super) fn timer(&self) -> Option<TimerId> {
        match self {
            GroupMode::Older { report, .. } => *report,
            GroupMode::V3 { response, .. } => *response,
        }
    }

    fn take_timer(&mut self) -> Option<TimerId> {
        match self {
            GroupMode::Older { report, .. } => report.take(),
            GroupMode::V3 { response, .. } => response.take(),
        }
    }

    /// Whether no state-change news is left to retransmit.
    pub(super) fn news_done(&self) -> bool {
        match self {
            GroupMode::V3 {
                mode_change, extra, ..
            } => *mode_change == 0 && extra.as_ref().is_none_or(|e| e.sources.is_empty()),
            GroupMode::Older { .. } => true,
        }
    }
}

impl<A: Ord + Copy> GroupEntry<A> {
    pub(super) fn users(&self) -> u32 {
        u32::try_from(self.requests.len()).unwrap_or(u32::MAX)
    }

    /// A v3 group whose last request was dropped: kept only while its leave is retransmitted,
    /// and not joined any more.
    pub(super) fn is_leaving(&self) -> bool {
        self.requests.is_empty()
    }
}

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
        let key = match iface.groups.get(&group).map(|&k| k as usize) {
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
                // The index keeps slots as u32 (smaller per group); 2^32 records would take
                // hundreds of GiB, but a full index is an error, never a panic.
                let Ok(slot) = u32::try_from(self.records.vacant_key()) else {
                    return Err(Error::TableFull);
                };
                let key = self.records.insert(GroupEntry {
                    iface: ifindex,
                    group,
                    requests: Requests::default(),
                    filter: Filter::none(),
                    mode: GroupMode::new(mode, reportable),
                });
                iface.groups.insert(group, slot);
                key
            }
        };
        if let Err(e) = apply_change(&mut self.records[key].requests, change) {
            self.forget_if_done(key); // a record created for a change that did not apply
            return Err(e);
        }
        let record = &mut self.records[key];
        let old = core::mem::replace(&mut record.filter, record.requests.merged());
        let users = record.users();
        let had = old.has_reception_state();
        let has = record.filter.has_reception_state();
        let event = match (had, has) {
            (false, true) => Some(Event::Joined {
                iface: ifindex,
                group: group.into(),
            }),
            (true, false) => Some(Event::Left {
                iface: ifindex,
                group: group.into(),
            }),
            (true, true) if old != record.filter => Some(Event::FilterChanged {
                iface: ifindex,
                group: group.into(),
                filter: record.filter.to_api(),
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
            if old != self.records[key].filter {
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
            Some(iface) => iface.groups.keys().copied().collect(),
            None => return,
        };
        for group in groups {
            let _ = self.change(ifindex, group, RequestChange::DropAll, now, env);
        }
    }

    pub(super) fn remove(&mut self, key: usize) {
        let mut record = self.records.remove(key);
        if let Some(timer) = record.mode.take_timer() {
            self.wheel.cancel(timer);
        }
        if let Some(iface) = self.ifaces.get_mut(&record.iface) {
            iface.groups.remove(&record.group);
            if !record.mode.news_done() {
                // Seldom: a record goes with news pending only when its interface leaves v3.
                iface.v3.changed.retain(|&k| k as usize != key);
            }
            if iface.v3.changed.is_empty() {
                if let Some(timer) = iface.v3.retransmit.take() {
                    self.wheel.cancel(timer);
                }
            }
        }
    }

    /// A record with no requests stays only while its leave is being retransmitted.
    pub(super) fn forget_if_done(&mut self, key: usize) {
        let record = &self.records[key];
        if record.is_leaving() && record.mode.news_done() {
            self.remove(key);
        }
    }

    /// Cancels a record's timer.
    pub(super) fn cancel_timer(&mut self, key: usize) {
        if let Some(timer) = self.records[key].mode.take_timer() {
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
        let mut keys: Vec<usize> = iface.groups.values().map(|&k| k as usize).collect();
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
                match record.mode {
                    GroupMode::Older { ref mut report, .. } => {
                        *report = None;
                        self.report_timer_expired(record_key, at, env);
                    }
                    GroupMode::V3 {
                        ref mut response, ..
                    } => {
                        *response = None;
                        self.query_response_due(record_key);
                    }
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

    use super::{GroupEntry, TimerKey};

    /// Per-membership memory (DESIGN.md: ≤ 150 B per any-source membership at 10^6 groups).
    /// Before the per-mode state types: 144 and 160 bytes; 96 and 112 before the v3 news kept
    /// their mode-change count in the record.
    #[test]
    fn records_stay_small() {
        assert!(core::mem::size_of::<GroupEntry<Ipv4Addr>>() <= 88);
        assert!(core::mem::size_of::<GroupEntry<Ipv6Addr>>() <= 104);
    }

    /// Every timer on the wheel holds one; the General Query's deadline rides in the padding.
    #[test]
    fn timer_keys_stay_small() {
        assert!(core::mem::size_of::<TimerKey>() <= 16);
    }
}
