//! The group table of one address family, generic over the protocol: records with their
//! requests, report timers and retransmission state, the per-interface compatibility mode, and
//! the code that carries out the [`engine`](crate::engine)'s (v1/v2, MLDv1) and [`v3`]'s
//! (IGMPv3, MLDv2) decisions. IGMP and MLD each instantiate it once; everything that differs
//! between them is the small [`Protocol`] trait.

use core::fmt::Debug;
use core::hash::Hash;
use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;

use rand::rngs::SmallRng;
use rand::Rng;
use slab::Slab;

use crate::engine::{self, Actions, Context, Event, Member, MemberState, Send, TimerCmd};
use crate::time::Instant;
use crate::timer::{TimerId, TimerWheel};
use crate::v3::{self, Retransmit};
use crate::wire::{GroupRecord, RecordType};
use crate::{Config, Error, IfIndex, InterfaceConfig, Stats, Transmit};

/// What differs between IGMP and MLD, as far as the shared machinery is concerned.
pub(crate) trait Protocol {
    type Addr: Copy + Eq + Hash + Ord + Debug + Into<IpAddr>;
    /// 224.0.0.1 / ff02::1: general queries are sent here.
    const ALL_SYSTEMS: Self::Addr;
    /// Bytes of a v3 report (IP header with Router Alert, extension headers, message header)
    /// before the first record, and of each record's fixed part, and of one address.
    const REPORT_OVERHEAD: usize;
    const RECORD_OVERHEAD: usize;
    const ADDR_LEN: usize;
    /// This family's table within the host.
    fn select<'a>(
        igmp: &'a mut Family<crate::igmp::Igmp>,
        mld: &'a mut Family<crate::mld::Mld>,
    ) -> &'a mut Family<Self>
    where
        Self: Sized;
    fn is_multicast(addr: &Self::Addr) -> bool;
    fn is_unspecified(addr: &Self::Addr) -> bool;
    /// Whether a joined group is ever reported (never 224.0.0.0/24, ff02::1, scopes 0/1).
    fn reportable(group: &Self::Addr, config: &Config) -> bool;
    /// Unsolicited Report Interval in the v1/v2 (MLDv1) modes.
    fn unsolicited_interval(config: &Config) -> Duration;
    /// The newest mode configured (`--igmp-version`, `--mld-version`).
    fn max_compat(config: &Config) -> Compat;
    /// Builds a v1/v2 (MLDv1) message for `send`, counting it.
    fn transmit(
        iface: IfIndex,
        addrs: &InterfaceConfig,
        group: Self::Addr,
        send: Send,
        ctx: &Context,
        stats: &mut Stats,
    ) -> Transmit;
    /// Builds an IGMPv3 / MLDv2 report carrying `records`, counting it.
    fn v3_report(
        iface: IfIndex,
        addrs: &InterfaceConfig,
        records: Vec<GroupRecord<Self::Addr>>,
        stats: &mut Stats,
    ) -> Transmit;
}

/// Host compatibility mode (RFC 9776 §7.2, RFC 9777 §8.2), shared by both protocols: `V1` is
/// IGMPv1, `V2` is IGMPv2 and MLDv1, `V3` is IGMPv3 and MLDv2. Ordered oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Compat {
    V1,
    V2,
    V3,
}

/// A multicast source filter (RFC 9776 §3.1, RFC 9777 §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter<A> {
    pub mode: FilterMode,
    pub sources: BTreeSet<A>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterMode {
    Include,
    Exclude,
}

impl FilterMode {
    pub fn name(self) -> &'static str {
        match self {
            FilterMode::Include => "include",
            FilterMode::Exclude => "exclude",
        }
    }
}

impl<A: Ord> Filter<A> {
    /// Any source: EXCLUDE {}.
    pub fn any_source() -> Self {
        Filter {
            mode: FilterMode::Exclude,
            sources: BTreeSet::new(),
        }
    }

    /// No reception: INCLUDE {}.
    pub fn none() -> Self {
        Filter {
            mode: FilterMode::Include,
            sources: BTreeSet::new(),
        }
    }
}

/// How a request list changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RequestChange<A> {
    /// A new request (a join, with its filter).
    Add(Filter<A>),
    /// Drop one any-source request; without one, every request (the whole group).
    LeaveGroup,
    /// Drop these sources from the INCLUDE requests that list them.
    DropIncluded(BTreeSet<A>),
    /// Drop one EXCLUDE request with exactly these sources.
    DropExclude(BTreeSet<A>),
    /// Drop every request (shutdown).
    DropAll,
}

#[derive(Debug)]
pub(crate) struct Record<A> {
    pub iface: IfIndex,
    pub group: A,
    /// Every request held (each join is one; the seeds' reference count is their number).
    pub requests: Vec<Filter<A>>,
    /// The interface state: the requests merged.
    pub filter: Filter<A>,
    /// The v1/v2 (MLDv1) machine; used while the interface is in an older mode.
    pub member: Member,
    /// The v1/v2 report timer, or in v3 mode the group's query-response timer.
    pub timer: Option<TimerId>,
    /// v3: sources of a pending group-and-source-specific response (None: whole group).
    pub queried: Option<BTreeSet<A>>,
    /// v3: state-change news still to be retransmitted (by the interface's timer).
    pub retransmit: Retransmit<A>,
}

impl<A> Record<A> {
    pub fn users(&self) -> u32 {
        u32::try_from(self.requests.len()).unwrap_or(u32::MAX)
    }
}

/// Per interface and family: its groups, the querier versions heard, and v3 query state.
#[derive(Debug)]
pub(crate) struct FamilyIface<A> {
    pub groups: HashMap<A, usize>,
    /// Older Version Querier Present timers (RFC 9776 §7.2.1, RFC 9777 §8.2.1); for a host
    /// configured no newer than IGMPv2, `v1` is RFC 2236 §4's Version 1 Router Present timer.
    /// In the seeds this is `rti_type` aged by the slow timeout; here, timers on the same wheel.
    pub older_v1: Option<TimerId>,
    pub older_v2: Option<TimerId>,
    /// v3: the pending response to a General Query (the "interface timer").
    pub general: Option<TimerId>,
    /// v3: one retransmission timer for every group with state-change news left, as Linux
    /// does: a retransmission carries all of them, packed, instead of one report per group.
    pub retransmit: Option<TimerId>,
    /// The records (slab keys) with news left.
    pub changed: BTreeSet<usize>,
    /// v3: Robustness Variable and Query Interval learned from the querier's QRV and QQIC.
    pub learned_robustness: Option<u8>,
    pub learned_query_interval: Option<Duration>,
    pub learned_response_interval: Option<Duration>,
}

impl<A> Default for FamilyIface<A> {
    fn default() -> Self {
        FamilyIface {
            groups: HashMap::new(),
            older_v1: None,
            older_v2: None,
            general: None,
            retransmit: None,
            changed: BTreeSet::new(),
            learned_robustness: None,
            learned_query_interval: None,
            learned_response_interval: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerKey {
    Report(usize),
    Retransmit(IfIndex),
    GeneralResponse(IfIndex),
    OlderQuerier(IfIndex, Compat),
}

/// The Host's parts that every operation needs besides the family itself.
pub(crate) struct Env<'a> {
    pub config: &'a Config,
    pub interfaces: &'a BTreeMap<IfIndex, InterfaceConfig>,
    pub rng: &'a mut SmallRng,
    pub out: &'a mut VecDeque<Transmit>,
    pub stats: &'a mut Stats,
}

#[derive(Debug)]
pub(crate) struct Family<P: Protocol> {
    pub ifaces: HashMap<IfIndex, FamilyIface<P::Addr>>,
    pub records: Slab<Record<P::Addr>>,
    pub wheel: TimerWheel<TimerKey>,
    /// v3 records decided since the last `flush_reports`: what happens at one instant (a
    /// shutdown's leaves, a restart's joins, a General Query response) goes out packed into as
    /// few reports as fit the MTU.
    pub pending: Vec<(IfIndex, GroupRecord<P::Addr>)>,
}

/// Why a query was refused; the adapter maps it to its own drop reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueryProblem {
    BadGroup,
    BadDestination,
    GeneralWithSources,
}

/// Why a report was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReportProblem {
    BadGroup,
    GroupMismatch,
}

/// Which groups a query covers: `None` for a general query.
///
/// Departure from the seeds, RFC wins: NetBSD igmp.c 1.49 picks the records by the IP
/// destination (all of them when it is 224.0.0.1, else the one equal to it) and ignores the
/// group field; RFC 2236 §2.1 and RFC 2710 §3.6 define the query by its group field. A general
/// query must go to all-systems; a group-specific one to the group or, as the Linux bridge
/// sends them, to all-systems (RFC 9776 §4.1.12 allows a host to accept both).
pub(crate) fn query_target<P: Protocol>(
    group: P::Addr,
    dst: P::Addr,
    sources: usize,
) -> Result<Option<P::Addr>, QueryProblem> {
    if P::is_unspecified(&group) {
        if sources > 0 {
            return Err(QueryProblem::GeneralWithSources);
        }
        if dst != P::ALL_SYSTEMS {
            return Err(QueryProblem::BadDestination);
        }
        return Ok(None);
    }
    if !P::is_multicast(&group) {
        return Err(QueryProblem::BadGroup);
    }
    if dst != group && dst != P::ALL_SYSTEMS {
        return Err(QueryProblem::BadDestination);
    }
    Ok(Some(group))
}

/// A v1/v2 report (MLDv1 report) names a multicast group and is sent to it.
pub(crate) fn check_report<P: Protocol>(group: P::Addr, dst: P::Addr) -> Result<(), ReportProblem> {
    if !P::is_multicast(&group) {
        return Err(ReportProblem::BadGroup);
    }
    if group != dst {
        return Err(ReportProblem::GroupMismatch);
    }
    Ok(())
}

fn random_delay(rng: &mut SmallRng, max: Duration) -> Duration {
    let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rng.gen_range(0..=max_ms))
}

/// Splits records over as few reports as fit `space` bytes of records each (RFC 9776 §5.2,
/// RFC 9777 §6.2): a record too large for one report is split into records of the same type
/// over several reports, except IS_EX / TO_EX, which carry as many sources as fit.
pub(crate) fn pack<A: Copy>(
    records: Vec<GroupRecord<A>>,
    space: usize,
    record_overhead: usize,
    addr_len: usize,
) -> Vec<Vec<GroupRecord<A>>> {
    let max_sources = space.saturating_sub(record_overhead) / addr_len;
    let mut pieces = Vec::new();
    for record in records {
        if record.sources.len() <= max_sources {
            pieces.push(record);
        } else if matches!(
            record.kind,
            RecordType::ModeIsExclude | RecordType::ChangeToExclude
        ) {
            let mut record = record;
            record.sources.truncate(max_sources);
            pieces.push(record);
        } else {
            for chunk in record.sources.chunks(max_sources.max(1)) {
                pieces.push(GroupRecord {
                    kind: record.kind,
                    group: record.group,
                    sources: chunk.to_vec(),
                    aux_data: Vec::new(),
                });
            }
        }
    }
    let mut reports: Vec<Vec<GroupRecord<A>>> = Vec::new();
    let mut used = 0;
    for piece in pieces {
        let size = record_overhead + addr_len * piece.sources.len();
        match reports.last_mut() {
            Some(report) if used + size <= space => {
                report.push(piece);
                used += size;
            }
            _ => {
                used = size;
                reports.push(vec![piece]);
            }
        }
    }
    reports
}

impl<P: Protocol> Default for Family<P> {
    fn default() -> Self {
        Family {
            ifaces: HashMap::new(),
            records: Slab::new(),
            wheel: TimerWheel::new(),
            pending: Vec::new(),
        }
    }
}

impl<P: Protocol> Family<P> {
    pub fn add_interface(&mut self, ifindex: IfIndex) {
        self.ifaces.entry(ifindex).or_default();
    }

    /// The compatibility mode in force: the oldest querier version heard recently, never newer
    /// than configured.
    pub fn compat(&self, ifindex: IfIndex, config: &Config) -> Compat {
        let heard = match self.ifaces.get(&ifindex) {
            Some(i) if i.older_v1.is_some() => Compat::V1,
            Some(i) if i.older_v2.is_some() => Compat::V2,
            _ => Compat::V3,
        };
        heard.min(P::max_compat(config))
    }

    pub fn context(&self, ifindex: IfIndex, config: &Config) -> Context {
        Context {
            v1_querier: self.compat(ifindex, config) == Compat::V1,
            robustness: config.robustness,
            unsolicited_interval: P::unsolicited_interval(config),
        }
    }

    fn robustness(&self, ifindex: IfIndex, config: &Config) -> u8 {
        self.ifaces
            .get(&ifindex)
            .and_then(|i| i.learned_robustness)
            .unwrap_or(config.robustness)
            .max(1)
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
        let interfaces = env.interfaces;
        let addrs = interfaces
            .get(&ifindex)
            .ok_or(Error::UnknownInterface(ifindex))?;
        let mode = self.compat(ifindex, env.config);
        let ctx = self.context(ifindex, env.config);
        let robustness = self.robustness(ifindex, env.config);
        let reportable = P::reportable(&group, env.config);
        let iface = self
            .ifaces
            .get_mut(&ifindex)
            .ok_or(Error::UnknownInterface(ifindex))?;
        let key = match iface.groups.get(&group) {
            // A group being left (its last retransmissions pending) is not joined any more.
            Some(&key)
                if self.records[key].requests.is_empty()
                    && !matches!(change, RequestChange::Add(_)) =>
            {
                return Err(Error::NotJoined(group.into()));
            }
            Some(&key) => key,
            None => {
                if !matches!(change, RequestChange::Add(_)) {
                    return Err(Error::NotJoined(group.into()));
                }
                let state = if reportable {
                    MemberState::Idle {
                        last_reporter: false,
                    }
                } else {
                    MemberState::Silent
                };
                let key = self.records.insert(Record {
                    iface: ifindex,
                    group,
                    requests: Vec::new(),
                    filter: Filter::none(),
                    member: Member {
                        state,
                        unsolicited_left: 0,
                    },
                    timer: None,
                    queried: None,
                    retransmit: Retransmit::default(),
                });
                iface.groups.insert(group, key);
                key
            }
        };
        if let Err(e) = apply_change(&mut self.records[key].requests, change) {
            self.forget_if_done(key); // a record created for a change that did not apply
            return Err(e);
        }
        let record = &mut self.records[key];
        let old = std::mem::replace(&mut record.filter, v3::merge(&record.requests));
        let users = record.users();
        let had = v3::has_reception_state(&old);
        let has = v3::has_reception_state(&record.filter);
        if !reportable {
            if !has && users == 0 {
                self.remove(key);
            }
            return Ok(users);
        }
        if mode == Compat::V3 {
            if old != record.filter {
                record.retransmit.change(&old, &record.filter, robustness);
                self.send_state_change(key, now, env);
            }
            self.forget_if_done(key);
            return Ok(users);
        }
        // v1/v2 and MLDv1 cannot express sources: only gaining and losing reception state
        // count, as a join and a leave.
        match (had, has) {
            (false, true) => {
                let (member, actions) = engine::join(true, &ctx);
                self.apply(key, member, actions, &ctx, now, env);
            }
            (true, false) => {
                let member = self.records[key].member;
                self.remove(key);
                if let Some(send) = engine::leave(member, &ctx) {
                    let tx = P::transmit(ifindex, addrs, group, send, &ctx, env.stats);
                    env.out.push_back(tx);
                }
            }
            _ => {}
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

    fn remove(&mut self, key: usize) {
        let record = self.records.remove(key);
        if let Some(timer) = record.timer {
            self.wheel.cancel(timer);
        }
        if let Some(iface) = self.ifaces.get_mut(&record.iface) {
            iface.groups.remove(&record.group);
            iface.changed.remove(&key);
            if iface.changed.is_empty() {
                if let Some(timer) = iface.retransmit.take() {
                    self.wheel.cancel(timer);
                }
            }
        }
    }

    /// A record with no requests stays only while its leave is being retransmitted.
    fn forget_if_done(&mut self, key: usize) {
        let record = &self.records[key];
        if record.requests.is_empty() && record.retransmit.is_done() {
            self.remove(key);
        }
    }

    /// Sends a group's state-change report at once (RFC 9776 §5.1) and leaves what is left of
    /// it to the interface's retransmission timer.
    fn send_state_change(&mut self, key: usize, now: Instant, env: &mut Env<'_>) {
        let ifindex = self.records[key].iface;
        let records = self.next_records(key);
        self.send_v3(ifindex, records);
        if self.records[key].retransmit.is_done() {
            return;
        }
        let Some(iface) = self.ifaces.get_mut(&ifindex) else {
            return;
        };
        iface.changed.insert(key);
        if iface.retransmit.is_none() {
            // At random in (0, Unsolicited Report Interval]; a change while the timer runs
            // rides along with the retransmission already scheduled.
            let delay = random_delay(env.rng, env.config.v3_unsolicited_interval)
                .max(Duration::from_millis(1));
            iface.retransmit = Some(
                self.wheel
                    .schedule(now + delay, TimerKey::Retransmit(ifindex)),
            );
        }
    }

    /// The interface's retransmission timer: every group's next records in one go.
    fn retransmit(&mut self, ifindex: IfIndex, at: Instant, env: &mut Env<'_>) {
        let Some(iface) = self.ifaces.get_mut(&ifindex) else {
            return;
        };
        iface.retransmit = None;
        let keys: Vec<usize> = iface.changed.iter().copied().collect();
        for key in keys {
            let records = self.next_records(key);
            self.send_v3(ifindex, records);
            if self.records[key].retransmit.is_done() {
                if let Some(iface) = self.ifaces.get_mut(&ifindex) {
                    iface.changed.remove(&key);
                }
                self.forget_if_done(key);
            }
        }
        let Some(iface) = self.ifaces.get_mut(&ifindex) else {
            return;
        };
        if !iface.changed.is_empty() {
            let delay = random_delay(env.rng, env.config.v3_unsolicited_interval)
                .max(Duration::from_millis(1));
            iface.retransmit = Some(
                self.wheel
                    .schedule(at + delay, TimerKey::Retransmit(ifindex)),
            );
        }
    }

    /// A group's next state-change records, counting one transmission.
    fn next_records(&mut self, key: usize) -> Vec<GroupRecord<P::Addr>> {
        let record = &mut self.records[key];
        let group = record.group;
        record
            .retransmit
            .next(&record.filter)
            .into_iter()
            .map(|(kind, sources)| GroupRecord {
                kind,
                group,
                sources: sources.into_iter().collect(),
                aux_data: Vec::new(),
            })
            .collect()
    }

    fn send_v3(&mut self, ifindex: IfIndex, records: Vec<GroupRecord<P::Addr>>) {
        self.pending
            .extend(records.into_iter().map(|record| (ifindex, record)));
    }

    /// Packs the pending v3 records of each interface, in the order they were decided, into
    /// as few reports as fit its MTU (RFC 9776 §5.2, RFC 9777 §6.2).
    pub fn flush_reports(&mut self, env: &mut Env<'_>) {
        if self.pending.is_empty() {
            return;
        }
        let mut by_iface: Vec<(IfIndex, Vec<GroupRecord<P::Addr>>)> = Vec::new();
        for (ifindex, record) in self.pending.drain(..) {
            match by_iface.iter_mut().find(|(i, _)| *i == ifindex) {
                Some((_, records)) => records.push(record),
                None => by_iface.push((ifindex, vec![record])),
            }
        }
        for (ifindex, records) in by_iface {
            let Some(addrs) = env.interfaces.get(&ifindex) else {
                continue;
            };
            let space = usize::from(addrs.mtu).saturating_sub(P::REPORT_OVERHEAD);
            for report in pack(records, space, P::RECORD_OVERHEAD, P::ADDR_LEN) {
                let tx = P::v3_report(ifindex, addrs, report, env.stats);
                env.out.push_back(tx);
            }
        }
    }

    /// Carries out one v1/v2 transition's actions for record `key`.
    fn apply(
        &mut self,
        key: usize,
        member: Member,
        actions: Actions,
        ctx: &Context,
        now: Instant,
        env: &mut Env<'_>,
    ) {
        let record = &mut self.records[key];
        record.member = member;
        match actions.timer {
            TimerCmd::Keep => {}
            TimerCmd::Cancel => {
                if let Some(timer) = record.timer.take() {
                    self.wheel.cancel(timer);
                }
            }
            TimerCmd::StartRandom { max } => {
                if let Some(timer) = record.timer.take() {
                    self.wheel.cancel(timer);
                }
                let at = now + random_delay(env.rng, max);
                record.timer = Some(self.wheel.schedule(at, TimerKey::Report(key)));
            }
        }
        if let Some(send) = actions.send {
            if let Some(addrs) = env.interfaces.get(&record.iface) {
                let tx = P::transmit(record.iface, addrs, record.group, send, ctx, env.stats);
                env.out.push_back(tx);
            }
        }
    }

    fn event(&mut self, key: usize, event: Event, ctx: &Context, now: Instant, env: &mut Env<'_>) {
        let record = &self.records[key];
        if !v3::has_reception_state(&record.filter) {
            return;
        }
        let remaining = record
            .timer
            .and_then(|t| self.wheel.deadline(t))
            .map(|deadline| deadline - now);
        let (member, actions) = engine::on_event(record.member, event, remaining, ctx);
        self.apply(key, member, actions, ctx, now, env);
    }

    /// Records in memory order rather than the group map's hash order: a query over 10^5
    /// groups is several times cheaper this way (BENCHMARKS.md).
    fn keys_on(&self, ifindex: IfIndex) -> Vec<usize> {
        self.records
            .iter()
            .filter(|(_, r)| r.iface == ifindex)
            .map(|(key, _)| key)
            .collect()
    }

    /// A query of an older version (IGMPv1/v2, MLDv1) was heard: its querier is present.
    pub fn older_querier_heard(
        &mut self,
        ifindex: IfIndex,
        version: Compat,
        now: Instant,
        env: &mut Env<'_>,
    ) {
        if version >= P::max_compat(env.config) {
            // A querier of the newest version we speak changes nothing (an IGMPv2 host
            // hearing IGMPv2 queries): no timer to keep.
            return;
        }
        let before = self.compat(ifindex, env.config);
        let timeout = self.older_querier_timeout(ifindex, env.config);
        let Some(iface) = self.ifaces.get_mut(&ifindex) else {
            return;
        };
        let slot = match version {
            Compat::V1 => &mut iface.older_v1,
            Compat::V2 => &mut iface.older_v2,
            Compat::V3 => return,
        };
        if let Some(timer) = slot.take() {
            self.wheel.cancel(timer);
        }
        *slot = Some(
            self.wheel
                .schedule(now + timeout, TimerKey::OlderQuerier(ifindex, version)),
        );
        let after = self.compat(ifindex, env.config);
        if before == Compat::V3 && after < Compat::V3 {
            self.leave_v3_mode(ifindex);
        }
    }

    /// RFC 9776 §7.2.1 / RFC 9777 §8.2.1: Robustness × Query Interval + Query Response
    /// Interval, with what the querier told us. A host configured no newer than IGMPv2 keeps
    /// RFC 2236 §4's Version 1 Router Present Timeout (400 s; the seed's 270 s).
    fn older_querier_timeout(&self, ifindex: IfIndex, config: &Config) -> Duration {
        if P::max_compat(config) < Compat::V3 {
            return config.v1_querier_timeout;
        }
        let iface = self.ifaces.get(&ifindex);
        let robustness = self.robustness(ifindex, config);
        let interval = iface
            .and_then(|i| i.learned_query_interval)
            .unwrap_or(config.query_interval);
        let response = iface
            .and_then(|i| i.learned_response_interval)
            .unwrap_or(config.query_response_interval);
        interval * u32::from(robustness) + response
    }

    /// Entering an older mode cancels v3's pending responses and retransmissions (RFC 9776
    /// §7.2.1); groups being left in v3 are forgotten.
    fn leave_v3_mode(&mut self, ifindex: IfIndex) {
        self.pending.retain(|(i, _)| *i != ifindex);
        if let Some(iface) = self.ifaces.get_mut(&ifindex) {
            iface.changed.clear();
            for timer in [iface.general.take(), iface.retransmit.take()]
                .into_iter()
                .flatten()
            {
                self.wheel.cancel(timer);
            }
        }
        for key in self.keys_on(ifindex) {
            let record = &mut self.records[key];
            if let Some(timer) = record.timer.take() {
                self.wheel.cancel(timer);
            }
            record.queried = None;
            record.retransmit = Retransmit::default();
            self.forget_if_done(key);
        }
    }

    /// Back to v3 from an older mode: the v1/v2 machines stop.
    fn enter_v3_mode(&mut self, ifindex: IfIndex) {
        for key in self.keys_on(ifindex) {
            let record = &mut self.records[key];
            if let Some(timer) = record.timer.take() {
                self.wheel.cancel(timer);
            }
            if record.member.state != MemberState::Silent {
                record.member = Member {
                    state: MemberState::Idle {
                        last_reporter: false,
                    },
                    unsolicited_left: 0,
                };
            }
        }
    }

    /// A v1/v2 (MLDv1) query for `target` (None: every group), or a newer query heard in an
    /// older mode and handled as one of that mode (RFC 9776 §7.2.1, RFC 9777 §8.2.1).
    pub fn query(
        &mut self,
        ifindex: IfIndex,
        target: Option<P::Addr>,
        max_delay: Duration,
        from_v1_querier: bool,
        now: Instant,
        env: &mut Env<'_>,
    ) {
        let ctx = self.context(ifindex, env.config);
        let Some(iface) = self.ifaces.get(&ifindex) else {
            return;
        };
        let event = Event::Query {
            max_delay,
            from_v1_querier,
        };
        match target {
            None => {
                for key in self.keys_on(ifindex) {
                    self.event(key, event, &ctx, now, env);
                }
            }
            Some(group) => {
                if let Some(&key) = iface.groups.get(&group) {
                    self.event(key, event, &ctx, now, env);
                }
            }
        }
    }

    /// An IGMPv3 / MLDv2 query. In an older mode it is handled as a query of that mode.
    #[allow(clippy::too_many_arguments)]
    pub fn v3_query(
        &mut self,
        ifindex: IfIndex,
        target: Option<P::Addr>,
        sources: BTreeSet<P::Addr>,
        max_delay: Duration,
        querier: (u8, Duration),
        now: Instant,
        env: &mut Env<'_>,
    ) {
        let mode = self.compat(ifindex, env.config);
        let Some(iface) = self.ifaces.get_mut(&ifindex) else {
            return;
        };
        // RFC 9776 §4.1.6-4.1.7: a QRV of 0 keeps the old value; QQIC gives the interval.
        let (qrv, qqi) = querier;
        if qrv != 0 {
            iface.learned_robustness = Some(qrv);
        }
        if !qqi.is_zero() {
            iface.learned_query_interval = Some(qqi);
        }
        // RFC 9776 §8.3: the Query Response Interval is the general queries' Max Resp Time;
        // last-member (group-specific) queries use shorter ones.
        if target.is_none() {
            iface.learned_response_interval = Some(max_delay);
        }
        if mode < Compat::V3 {
            self.query(ifindex, target, max_delay, mode == Compat::V1, now, env);
            return;
        }
        let at = now + random_delay(env.rng, max_delay);
        // Rule 1: a general response due sooner covers this query.
        if let Some(general) = iface.general.and_then(|t| self.wheel.deadline(t)) {
            if general <= at {
                return;
            }
        }
        let Some(group) = target else {
            // Rule 2: (re)schedule the interface timer.
            if let Some(timer) = iface.general.take() {
                self.wheel.cancel(timer);
            }
            iface.general = Some(self.wheel.schedule(at, TimerKey::GeneralResponse(ifindex)));
            return;
        };
        let Some(&key) = iface.groups.get(&group) else {
            return;
        };
        let record = &mut self.records[key];
        if !v3::has_reception_state(&record.filter) || !P::reportable(&group, env.config) {
            return;
        }
        let pending = record.timer.and_then(|t| self.wheel.deadline(t));
        match pending {
            // Rule 3: nothing pending: schedule, remembering the sources.
            None => {
                record.queried = (!sources.is_empty()).then_some(sources);
                record.timer = Some(self.wheel.schedule(at, TimerKey::Report(key)));
            }
            Some(due) => {
                if sources.is_empty() || record.queried.is_none() {
                    // Rule 4: the whole group is asked for.
                    record.queried = None;
                } else if let Some(queried) = record.queried.as_mut() {
                    // Rule 5: add the sources.
                    queried.extend(sources);
                }
                if at < due {
                    if let Some(timer) = record.timer.take() {
                        self.wheel.cancel(timer);
                    }
                    record.timer = Some(self.wheel.schedule(at, TimerKey::Report(key)));
                }
            }
        }
    }

    /// Another host's v1/v2 (MLDv1) report. Returns whether we are a member of the group. In v3
    /// mode reports from others change nothing (RFC 9776 §5.2: no suppression).
    pub fn report_heard(
        &mut self,
        ifindex: IfIndex,
        group: P::Addr,
        v1: bool,
        now: Instant,
        env: &mut Env<'_>,
    ) -> bool {
        let Some(&key) = self.ifaces.get(&ifindex).and_then(|i| i.groups.get(&group)) else {
            return false;
        };
        if self.compat(ifindex, env.config) < Compat::V3 {
            let ctx = self.context(ifindex, env.config);
            self.event(key, Event::ReportHeard { v1 }, &ctx, now, env);
        }
        true
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
                let ifindex = record.iface;
                if self.compat(ifindex, env.config) < Compat::V3 {
                    let ctx = self.context(ifindex, env.config);
                    self.event(record_key, Event::TimerExpired, &ctx, at, env);
                    return;
                }
                let record = &mut self.records[record_key];
                let queried = record.queried.take();
                if let Some((kind, sources)) = v3::current_state(&record.filter, queried.as_ref()) {
                    let group = record.group;
                    let records = vec![GroupRecord {
                        kind,
                        group,
                        sources: sources.into_iter().collect(),
                        aux_data: Vec::new(),
                    }];
                    self.send_v3(ifindex, records);
                }
            }
            TimerKey::Retransmit(ifindex) => self.retransmit(ifindex, at, env),
            TimerKey::GeneralResponse(ifindex) => {
                if let Some(iface) = self.ifaces.get_mut(&ifindex) {
                    iface.general = None;
                }
                let records: Vec<GroupRecord<P::Addr>> = self
                    .keys_on(ifindex)
                    .into_iter()
                    .filter_map(|key| {
                        let r = &self.records[key];
                        if !P::reportable(&r.group, env.config) {
                            return None;
                        }
                        let (kind, sources) = v3::current_state(&r.filter, None)?;
                        Some(GroupRecord {
                            kind,
                            group: r.group,
                            sources: sources.into_iter().collect(),
                            aux_data: Vec::new(),
                        })
                    })
                    .collect();
                self.send_v3(ifindex, records);
            }
            TimerKey::OlderQuerier(ifindex, version) => {
                let before = self.compat(ifindex, env.config);
                if let Some(iface) = self.ifaces.get_mut(&ifindex) {
                    match version {
                        Compat::V1 => iface.older_v1 = None,
                        Compat::V2 => iface.older_v2 = None,
                        Compat::V3 => {}
                    }
                }
                if before < Compat::V3 && self.compat(ifindex, env.config) == Compat::V3 {
                    self.enter_v3_mode(ifindex);
                }
            }
        }
    }

    pub fn older_querier_left(
        &self,
        ifindex: IfIndex,
        version: Compat,
        now: Instant,
    ) -> Option<Duration> {
        let iface = self.ifaces.get(&ifindex)?;
        let timer = match version {
            Compat::V1 => iface.older_v1?,
            Compat::V2 => iface.older_v2?,
            Compat::V3 => return None,
        };
        Some(self.wheel.deadline(timer)? - now)
    }

    pub fn timer_left(&self, timer: Option<TimerId>, now: Instant) -> Option<Duration> {
        Some(self.wheel.deadline(timer?)? - now)
    }
}

fn apply_change<A: Ord + Copy>(
    requests: &mut Vec<Filter<A>>,
    change: RequestChange<A>,
) -> Result<(), Error> {
    match change {
        RequestChange::Add(filter) => {
            if requests.len() >= u32::MAX as usize {
                return Err(Error::TooManyUsers);
            }
            requests.push(filter);
        }
        RequestChange::LeaveGroup => {
            let any = Filter::any_source();
            match requests.iter().position(|r| *r == any) {
                Some(i) => {
                    requests.remove(i);
                }
                None if !requests.is_empty() => requests.clear(),
                None => return Err(Error::NoSuchFilter),
            }
        }
        RequestChange::DropIncluded(sources) => {
            let mut found = false;
            for request in requests
                .iter_mut()
                .filter(|r| r.mode == FilterMode::Include)
            {
                let before = request.sources.len();
                request.sources.retain(|s| !sources.contains(s));
                found |= request.sources.len() != before;
            }
            if !found {
                return Err(Error::NoSuchFilter);
            }
            requests.retain(|r| r.mode == FilterMode::Exclude || !r.sources.is_empty());
        }
        RequestChange::DropExclude(sources) => {
            let i = requests
                .iter()
                .position(|r| r.mode == FilterMode::Exclude && r.sources == sources)
                .ok_or(Error::NoSuchFilter)?;
            requests.remove(i);
        }
        RequestChange::DropAll => requests.clear(),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(kind: RecordType, group: u8, n: usize) -> GroupRecord<u8> {
        GroupRecord {
            kind,
            group,
            sources: (0..n as u8).collect(),
            aux_data: Vec::new(),
        }
    }

    #[test]
    fn packing_fills_reports_and_splits_large_records() {
        // Space for 3 sources per record (8 + 4 * 3 = 20 bytes).
        let reports = pack(
            vec![
                rec(RecordType::ModeIsInclude, 1, 1),
                rec(RecordType::ModeIsInclude, 2, 0),
                rec(RecordType::ModeIsInclude, 3, 7),
                rec(RecordType::ModeIsExclude, 4, 7),
            ],
            20,
            8,
            4,
        );
        let shape: Vec<Vec<(u8, usize)>> = reports
            .iter()
            .map(|r| r.iter().map(|g| (g.group, g.sources.len())).collect())
            .collect();
        // 12 + 8 fit together; 7 IS_IN sources split 3/3/1; IS_EX truncated to 3.
        assert_eq!(
            shape,
            vec![
                vec![(1, 1), (2, 0)],
                vec![(3, 3)],
                vec![(3, 3)],
                vec![(3, 1)],
                vec![(4, 3)]
            ]
        );
    }

    #[test]
    fn request_changes() {
        let inc = |s: &[u8]| Filter {
            mode: FilterMode::Include,
            sources: s.iter().copied().collect(),
        };
        let exc = |s: &[u8]| Filter {
            mode: FilterMode::Exclude,
            sources: s.iter().copied().collect(),
        };
        let mut r = vec![inc(&[1, 2]), exc(&[]), exc(&[3]), inc(&[2])];
        apply_change(&mut r, RequestChange::DropIncluded([2].into())).unwrap();
        assert_eq!(r, vec![inc(&[1]), exc(&[]), exc(&[3])]);
        apply_change(&mut r, RequestChange::DropExclude([3].into())).unwrap();
        assert_eq!(r, vec![inc(&[1]), exc(&[])]);
        assert_eq!(
            apply_change(&mut r, RequestChange::DropExclude([3].into())),
            Err(Error::NoSuchFilter)
        );
        apply_change(&mut r, RequestChange::LeaveGroup).unwrap();
        assert_eq!(r, vec![inc(&[1])]);
        // No any-source join left: leaving the group drops every request.
        apply_change(&mut r, RequestChange::LeaveGroup).unwrap();
        assert!(r.is_empty());
        assert_eq!(
            apply_change(&mut r, RequestChange::LeaveGroup),
            Err(Error::NoSuchFilter)
        );
    }
}
