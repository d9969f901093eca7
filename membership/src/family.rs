//! The group table of one address family, generic over the protocol: records, their report
//! timers, the per-interface querier-version state, and the code that carries out the
//! [`engine`](crate::engine)'s actions. IGMP and MLD each instantiate it once; everything that
//! differs between them is the small [`Protocol`] trait.

use core::fmt::Debug;
use core::hash::Hash;
use core::time::Duration;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;

use rand::rngs::SmallRng;
use rand::Rng;
use slab::Slab;

use crate::engine::{self, Actions, Context, Event, Member, Send, TimerCmd};
use crate::time::Instant;
use crate::timer::{TimerId, TimerWheel};
use crate::{Config, Error, IfIndex, InterfaceConfig, Stats, Transmit};

/// What differs between IGMP and MLD, as far as the shared machinery is concerned.
pub(crate) trait Protocol {
    type Addr: Copy + Eq + Hash + Ord + Debug + Into<IpAddr>;
    /// 224.0.0.1 / ff02::1: general queries are sent here.
    const ALL_SYSTEMS: Self::Addr;
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
    fn unsolicited_interval(config: &Config) -> Duration;
    /// Configured to speak IGMPv1 only.
    fn forced_v1(config: &Config) -> bool;
    /// Builds the message for `send`, counting it.
    fn transmit(
        iface: IfIndex,
        addrs: &InterfaceConfig,
        group: Self::Addr,
        send: Send,
        ctx: &Context,
        stats: &mut Stats,
    ) -> Transmit;
}

/// A multicast source filter (RFC 9776 §3.1, RFC 9777 §4.1). v1/v2 and MLDv1 only express
/// EXCLUDE {} (any source); IGMPv3/MLDv2 will merge and report the rest.
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
}

#[derive(Debug)]
pub(crate) struct Record<A> {
    pub iface: IfIndex,
    pub group: A,
    /// Joins held (the seeds' in_multi / in6_multi reference count).
    pub users: u32,
    pub member: Member,
    pub timer: Option<TimerId>,
    pub filter: Filter<A>,
}

/// Per interface and family: its groups and which querier versions are present.
#[derive(Debug)]
pub(crate) struct FamilyIface<A> {
    pub groups: HashMap<A, usize>,
    /// IGMPv1 Querier Present (RFC 2236 §4, "Version 1 Router Present Timeout"). In the seeds
    /// this is `rti_type` aged by the slow timeout; here it is a timer on the same wheel.
    pub v1_querier: Option<TimerId>,
}

impl<A> Default for FamilyIface<A> {
    fn default() -> Self {
        FamilyIface {
            groups: HashMap::new(),
            v1_querier: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerKey {
    Report(usize),
    V1QuerierPresent(IfIndex),
}

/// The Host's parts that every operation needs besides the family itself.
pub(crate) struct Env<'a> {
    pub config: &'a Config,
    pub addrs: &'a InterfaceConfig,
    pub rng: &'a mut SmallRng,
    pub out: &'a mut VecDeque<Transmit>,
    pub stats: &'a mut Stats,
}

/// Records and their timers, apart from the interface index so both can be borrowed at once.
#[derive(Debug)]
pub(crate) struct Tables<A> {
    pub records: Slab<Record<A>>,
    pub wheel: TimerWheel<TimerKey>,
}

#[derive(Debug)]
pub(crate) struct Family<P: Protocol> {
    pub ifaces: HashMap<IfIndex, FamilyIface<P::Addr>>,
    pub tables: Tables<P::Addr>,
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

impl<P: Protocol> Default for Family<P> {
    fn default() -> Self {
        Family {
            ifaces: HashMap::new(),
            tables: Tables {
                records: Slab::new(),
                wheel: TimerWheel::new(),
            },
        }
    }
}

impl<A: Copy + Eq + Hash + Ord + Debug + Into<IpAddr>> Tables<A> {
    /// Carries out one transition's actions for record `key`.
    fn apply<P: Protocol<Addr = A>>(
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
            let tx = P::transmit(record.iface, env.addrs, record.group, send, ctx, env.stats);
            env.out.push_back(tx);
        }
    }

    fn event<P: Protocol<Addr = A>>(
        &mut self,
        key: usize,
        event: Event,
        ctx: &Context,
        now: Instant,
        env: &mut Env<'_>,
    ) {
        let record = &self.records[key];
        let remaining = record
            .timer
            .and_then(|t| self.wheel.deadline(t))
            .map(|deadline| deadline - now);
        let (member, actions) = engine::on_event(record.member, event, remaining, ctx);
        self.apply::<P>(key, member, actions, ctx, now, env);
    }
}

impl<P: Protocol> Family<P> {
    pub fn add_interface(&mut self, ifindex: IfIndex) {
        self.ifaces.entry(ifindex).or_default();
    }

    pub fn context(&self, ifindex: IfIndex, config: &Config) -> Context {
        Context {
            v1_querier: P::forced_v1(config)
                || self
                    .ifaces
                    .get(&ifindex)
                    .is_some_and(|i| i.v1_querier.is_some()),
            robustness: config.robustness,
            unsolicited_interval: P::unsolicited_interval(config),
        }
    }

    /// One more user of `group`; only the first join sends anything. Returns the users now.
    pub fn join(
        &mut self,
        ifindex: IfIndex,
        group: P::Addr,
        now: Instant,
        env: &mut Env<'_>,
    ) -> Result<u32, Error> {
        if !P::is_multicast(&group) {
            return Err(Error::NotMulticast(group.into()));
        }
        let ctx = self.context(ifindex, env.config);
        let iface = self
            .ifaces
            .get_mut(&ifindex)
            .ok_or(Error::UnknownInterface(ifindex))?;
        if let Some(&key) = iface.groups.get(&group) {
            let record = &mut self.tables.records[key];
            record.users = record.users.checked_add(1).ok_or(Error::TooManyUsers)?;
            return Ok(record.users);
        }
        let (member, actions) = engine::join(P::reportable(&group, env.config), &ctx);
        let key = self.tables.records.insert(Record {
            iface: ifindex,
            group,
            users: 1,
            member,
            timer: None,
            filter: Filter::any_source(),
        });
        iface.groups.insert(group, key);
        self.tables.apply::<P>(key, member, actions, &ctx, now, env);
        Ok(1)
    }

    /// One user fewer; the last one leaves the group, with Leave/Done where the engine says.
    /// Returns the users left.
    pub fn leave(
        &mut self,
        ifindex: IfIndex,
        group: P::Addr,
        env: &mut Env<'_>,
    ) -> Result<u32, Error> {
        let ctx = self.context(ifindex, env.config);
        let iface = self
            .ifaces
            .get_mut(&ifindex)
            .ok_or(Error::UnknownInterface(ifindex))?;
        let key = *iface
            .groups
            .get(&group)
            .ok_or(Error::NotJoined(group.into()))?;
        let record = &mut self.tables.records[key];
        record.users -= 1;
        if record.users > 0 {
            return Ok(record.users);
        }
        iface.groups.remove(&group);
        let record = self.tables.records.remove(key);
        if let Some(timer) = record.timer {
            self.tables.wheel.cancel(timer);
        }
        if let Some(send) = engine::leave(record.member, &ctx) {
            let tx = P::transmit(ifindex, env.addrs, group, send, &ctx, env.stats);
            env.out.push_back(tx);
        }
        Ok(0)
    }

    /// Every group on `ifindex`, all users at once (shutdown, interface removal).
    pub fn leave_all(&mut self, ifindex: IfIndex, env: &mut Env<'_>) {
        let groups: Vec<P::Addr> = match self.ifaces.get(&ifindex) {
            Some(iface) => iface.groups.keys().copied().collect(),
            None => return,
        };
        for group in groups {
            if let Some(&key) = self.ifaces[&ifindex].groups.get(&group) {
                self.tables.records[key].users = 1;
                let _ = self.leave(ifindex, group, env);
            }
        }
    }

    /// A query for `target` (None: every group on the interface).
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
                // Visit the records in slab order rather than in the group map's hash order:
                // memory order makes a query over 10^5 groups several times cheaper (BENCHMARKS.md).
                let keys: Vec<usize> = self
                    .tables
                    .records
                    .iter()
                    .filter(|(_, r)| r.iface == ifindex)
                    .map(|(key, _)| key)
                    .collect();
                for key in keys {
                    self.tables.event::<P>(key, event, &ctx, now, env);
                }
            }
            Some(group) => {
                if let Some(&key) = iface.groups.get(&group) {
                    self.tables.event::<P>(key, event, &ctx, now, env);
                }
            }
        }
    }

    /// Another host's report. Returns whether we are a member of the group.
    pub fn report_heard(
        &mut self,
        ifindex: IfIndex,
        group: P::Addr,
        v1: bool,
        now: Instant,
        env: &mut Env<'_>,
    ) -> bool {
        let ctx = self.context(ifindex, env.config);
        let Some(&key) = self.ifaces.get(&ifindex).and_then(|i| i.groups.get(&group)) else {
            return false;
        };
        self.tables
            .event::<P>(key, Event::ReportHeard { v1 }, &ctx, now, env);
        true
    }

    /// An IGMPv1 query was heard: (re)start the v1 Querier Present timer.
    pub fn v1_querier_heard(&mut self, ifindex: IfIndex, now: Instant, config: &Config) {
        let Some(iface) = self.ifaces.get_mut(&ifindex) else {
            return;
        };
        if let Some(timer) = iface.v1_querier.take() {
            self.tables.wheel.cancel(timer);
        }
        let at = now + config.v1_querier_timeout;
        iface.v1_querier = Some(
            self.tables
                .wheel
                .schedule(at, TimerKey::V1QuerierPresent(ifindex)),
        );
    }

    /// Fires every timer due by `now`.
    pub fn advance(
        &mut self,
        now: Instant,
        config: &Config,
        interfaces: &std::collections::BTreeMap<IfIndex, InterfaceConfig>,
        rng: &mut SmallRng,
        out: &mut VecDeque<Transmit>,
        stats: &mut Stats,
    ) {
        let mut due = Vec::new();
        loop {
            // A repeat drawn from a deadline in the past may itself be due by `now`.
            self.tables
                .wheel
                .advance(now, |key, at| due.push((key, at)));
            if due.is_empty() {
                break;
            }
            for (key, at) in due.drain(..) {
                self.fire(key, at, config, interfaces, rng, out, stats);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn fire(
        &mut self,
        key: TimerKey,
        at: Instant,
        config: &Config,
        interfaces: &std::collections::BTreeMap<IfIndex, InterfaceConfig>,
        rng: &mut SmallRng,
        out: &mut VecDeque<Transmit>,
        stats: &mut Stats,
    ) {
        {
            match key {
                TimerKey::Report(record_key) => {
                    let Some(record) = self.tables.records.get_mut(record_key) else {
                        return;
                    };
                    record.timer = None;
                    let ifindex = record.iface;
                    let Some(addrs) = interfaces.get(&ifindex) else {
                        return;
                    };
                    let ctx = self.context(ifindex, config);
                    let mut env = Env {
                        config,
                        addrs,
                        rng,
                        out,
                        stats,
                    };
                    // Repeats are drawn from the deadline, not from when the driver got round
                    // to polling, so a late poll does not stretch the schedule.
                    self.tables
                        .event::<P>(record_key, Event::TimerExpired, &ctx, at, &mut env);
                }
                TimerKey::V1QuerierPresent(ifindex) => {
                    if let Some(iface) = self.ifaces.get_mut(&ifindex) {
                        iface.v1_querier = None;
                    }
                }
            }
        }
    }

    pub fn v1_querier_left(&self, ifindex: IfIndex, now: Instant) -> Option<Duration> {
        let timer = self.ifaces.get(&ifindex)?.v1_querier?;
        Some(self.tables.wheel.deadline(timer)? - now)
    }

    pub fn timer_left(&self, record: &Record<P::Addr>, now: Instant) -> Option<Duration> {
        Some(self.tables.wheel.deadline(record.timer?)? - now)
    }
}
