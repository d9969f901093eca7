//! [`Host`]: the one owner of all membership state, and its public API.

use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;

use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde::Serialize;

use crate::family::{Compat, Env, Family, Protocol, Record, RequestChange};
use crate::igmp::Igmp;
use crate::mld::Mld;
use crate::stats::{DropReason, Stats};
use crate::time::Instant;
use crate::wire::ip::{classify, Classified, OtherKind};
use crate::{Config, Error, Filter, FilterMode, IfIndex, InterfaceConfig, SourceFilter, Transmit};

/// The host side of IGMP and MLD on any number of interfaces.
#[derive(Debug)]
pub struct Host {
    pub(crate) config: Config,
    pub(crate) rng: SmallRng,
    pub(crate) interfaces: BTreeMap<IfIndex, InterfaceConfig>,
    pub(crate) igmp: Family<Igmp>,
    pub(crate) mld: Family<Mld>,
    pub(crate) outbox: VecDeque<Transmit>,
    pub(crate) stats: Stats,
    /// The latest time the driver has told us.
    pub(crate) now: Instant,
}

/// One group record, for `show`.
/// Where a walk of the group table with [`Host::groups_page`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCursor {
    family: u8,
    index: usize,
}

impl GroupCursor {
    /// The beginning of the table.
    pub const START: GroupCursor = GroupCursor {
        family: 0,
        index: 0,
    };
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupInfo {
    pub iface: IfIndex,
    pub group: IpAddr,
    pub users: u32,
    pub state: &'static str,
    /// Time left on the report timer, in ms.
    pub timer_ms: Option<u64>,
    pub last_reporter: bool,
    /// Unsolicited repeats still to come after the scheduled report (v1/v2).
    pub unsolicited_left: u8,
    /// v3: a state-change retransmission is pending, due in this many ms.
    pub retransmit_ms: Option<u64>,
    pub filter_mode: &'static str,
    pub sources: Vec<IpAddr>,
    /// Every request held (what `users` counts), each with its own filter.
    pub requests: Vec<SourceFilter>,
}

/// One interface, for `show`: the compatibility modes in force and the timers that hold them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterfaceInfo {
    pub iface: IfIndex,
    /// IGMP version spoken now: 1, 2 or 3.
    pub igmp_version: u8,
    /// Time left on the IGMPv1 / IGMPv2 Querier Present timers, in ms.
    pub igmp_v1_querier_ms: Option<u64>,
    pub igmp_v2_querier_ms: Option<u64>,
    /// MLD version spoken now: 1 or 2.
    pub mld_version: u8,
    /// Time left on the MLDv1 Querier Present timer, in ms.
    pub mld_v1_querier_ms: Option<u64>,
    /// v3: a General Query response is pending, due in this many ms.
    pub igmp_general_response_ms: Option<u64>,
    pub mld_general_response_ms: Option<u64>,
    pub igmp_groups: usize,
    pub mld_groups: usize,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Host {
    /// A host with no interfaces. `rng_seed` seeds every random delay it will draw.
    pub fn new(config: Config, rng_seed: u64) -> Host {
        Host {
            config,
            rng: SmallRng::seed_from_u64(rng_seed),
            interfaces: BTreeMap::new(),
            igmp: Family::default(),
            mld: Family::default(),
            outbox: VecDeque::new(),
            stats: Stats::new(),
            now: Instant::ZERO,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn add_interface(
        &mut self,
        ifindex: IfIndex,
        config: InterfaceConfig,
    ) -> Result<(), Error> {
        if self.interfaces.contains_key(&ifindex) {
            return Err(Error::InterfaceExists(ifindex));
        }
        self.interfaces.insert(ifindex, config);
        self.igmp.add_interface(ifindex);
        self.mld.add_interface(ifindex);
        Ok(())
    }

    pub(crate) fn tick(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// Family `P` and the environment its operations need, borrowed apart.
    pub(crate) fn parts<P: Protocol>(
        &mut self,
        ifindex: IfIndex,
    ) -> Result<(&mut Family<P>, Env<'_>), Error> {
        if !self.interfaces.contains_key(&ifindex) {
            return Err(Error::UnknownInterface(ifindex));
        }
        let family = P::select(&mut self.igmp, &mut self.mld);
        let env = Env {
            config: &self.config,
            interfaces: &self.interfaces,
            rng: &mut self.rng,
            out: &mut self.outbox,
            stats: &mut self.stats,
        };
        Ok((family, env))
    }

    fn change(
        &mut self,
        ifindex: IfIndex,
        group: IpAddr,
        change: impl FnOnce(&dyn Fn(&[IpAddr]) -> Result<Sources, Error>) -> Result<Change, Error>,
        now: Instant,
    ) -> Result<u32, Error> {
        self.tick(now);
        fn run<P: Protocol>(
            host: &mut Host,
            ifindex: IfIndex,
            group: P::Addr,
            change: RequestChange<P::Addr>,
            now: Instant,
        ) -> Result<u32, Error> {
            let (family, mut env) = host.parts::<P>(ifindex)?;
            family.change(ifindex, group, change, now, &mut env)
        }
        match group {
            IpAddr::V4(g) => {
                let sources = |s: &[IpAddr]| -> Result<Sources, Error> {
                    s.iter()
                        .map(|&a| match a {
                            IpAddr::V4(v4)
                                if !v4.is_multicast()
                                    && !v4.is_unspecified()
                                    && !v4.is_broadcast() =>
                            {
                                Ok(v4)
                            }
                            other => Err(Error::BadSource(other)),
                        })
                        .collect::<Result<_, _>>()
                        .map(Sources::V4)
                };
                let change = change(&sources)?.typed(|s| match s {
                    Sources::V4(s) => Some(s),
                    Sources::V6(_) => None,
                });
                run::<Igmp>(self, ifindex, g, change, now)
            }
            IpAddr::V6(g) => {
                let sources = |s: &[IpAddr]| -> Result<Sources, Error> {
                    s.iter()
                        .map(|&a| match a {
                            IpAddr::V6(v6) if !v6.is_multicast() && !v6.is_unspecified() => Ok(v6),
                            other => Err(Error::BadSource(other)),
                        })
                        .collect::<Result<_, _>>()
                        .map(Sources::V6)
                };
                let change = change(&sources)?.typed(|s| match s {
                    Sources::V6(s) => Some(s),
                    Sources::V4(_) => None,
                });
                run::<Mld>(self, ifindex, g, change, now)
            }
        }
    }

    /// Adds a request for `group` with a source filter (RFC 9776 §3.1: like a socket's
    /// IP_ADD_SOURCE_MEMBERSHIP / MCAST_JOIN_SOURCE_GROUP). The interface state merges every
    /// request held; a v3 host reports the change at once. Returns the requests held.
    pub fn join_filter(
        &mut self,
        ifindex: IfIndex,
        group: IpAddr,
        filter: SourceFilter,
        now: Instant,
    ) -> Result<u32, Error> {
        if filter.mode == FilterMode::Include && filter.sources.is_empty() {
            return Err(Error::EmptyInclude);
        }
        self.change(
            ifindex,
            group,
            |sources| Ok(Change::Add(filter.mode, sources(&filter.sources)?)),
            now,
        )
    }

    /// Drops sources: INCLUDE S drops S from the INCLUDE requests that list them; EXCLUDE S
    /// drops one EXCLUDE request with exactly S. Returns the requests left.
    pub fn leave_filter(
        &mut self,
        ifindex: IfIndex,
        group: IpAddr,
        filter: SourceFilter,
        now: Instant,
    ) -> Result<u32, Error> {
        self.change(
            ifindex,
            group,
            |sources| {
                let s = sources(&filter.sources)?;
                Ok(match filter.mode {
                    FilterMode::Include => Change::DropIncluded(s),
                    FilterMode::Exclude => Change::DropExclude(s),
                })
            },
            now,
        )
    }

    /// Joins `group` (IPv4: IGMP, IPv6: MLD) for one more user, any source. The first join
    /// reports at once; further joins only count. Returns the number of users (requests).
    pub fn join(&mut self, ifindex: IfIndex, group: IpAddr, now: Instant) -> Result<u32, Error> {
        self.join_filter(ifindex, group, SourceFilter::exclude(Vec::new()), now)
    }

    /// Drops one any-source user of `group`, or, with none left, every request for it (the
    /// whole group). The last one leaves: Leave / Done if we reported last (v2), a
    /// CHANGE_TO_INCLUDE {} (v3). Returns the users left.
    pub fn leave(&mut self, ifindex: IfIndex, group: IpAddr, now: Instant) -> Result<u32, Error> {
        self.change(ifindex, group, |_| Ok(Change::LeaveGroup), now)
    }

    /// Leaves every group on every interface, as a host shutting down does.
    pub fn leave_all(&mut self, now: Instant) {
        self.tick(now);
        let ifindexes: Vec<IfIndex> = self.interfaces.keys().copied().collect();
        for ifindex in ifindexes {
            if let Ok((family, mut env)) = self.parts::<Igmp>(ifindex) {
                family.leave_all(ifindex, now, &mut env);
            }
            if let Ok((family, mut env)) = self.parts::<Mld>(ifindex) {
                family.leave_all(ifindex, now, &mut env);
            }
        }
    }

    /// A whole IP packet read from the link: classified, validated, handled. Anything that is
    /// not IGMP or MLD, or is malformed, is counted under its reason and dropped.
    pub fn handle_packet(
        &mut self,
        ifindex: IfIndex,
        packet: &[u8],
        now: Instant,
    ) -> Result<(), DropReason> {
        self.stats.ip_rcv_total += 1;
        let classified = classify(packet).map_err(|e| self.dropped(e.into()))?;
        match classified {
            Classified::Igmp { meta, payload } => self.handle_igmp(ifindex, &meta, payload, now),
            Classified::Mld { meta, payload } => self.handle_mld(ifindex, &meta, payload, now),
            Classified::Other(OtherKind::Ipv4(_)) => Err(self.dropped(DropReason::OtherIpv4)),
            Classified::Other(OtherKind::Ipv6(_) | OtherKind::Icmpv6(_)) => {
                Err(self.dropped(DropReason::OtherIpv6))
            }
        }
    }

    pub(crate) fn dropped(&mut self, reason: DropReason) -> DropReason {
        self.stats.drop(reason);
        reason
    }

    /// Fires due timers and hands every packet waiting to be sent to `transmit`.
    pub fn poll(&mut self, now: Instant, mut transmit: impl FnMut(Transmit)) {
        self.tick(now);
        let Host {
            config,
            rng,
            interfaces,
            igmp,
            mld,
            outbox,
            stats,
            ..
        } = self;
        let mut env = Env {
            config,
            interfaces,
            rng,
            out: outbox,
            stats,
        };
        igmp.advance(now, &mut env);
        mld.advance(now, &mut env);
        igmp.flush_reports(&mut env);
        mld.flush_reports(&mut env);
        while let Some(tx) = self.outbox.pop_front() {
            transmit(tx);
        }
    }

    /// When `poll` has something to do next: the driver's sleep deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        if !self.outbox.is_empty() || !self.igmp.pending.is_empty() || !self.mld.pending.is_empty()
        {
            return Some(self.now);
        }
        let igmp = self.igmp.wheel.next_deadline();
        let mld = self.mld.wheel.next_deadline();
        match (igmp, mld) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// One group on one interface, as [`Host::groups`] lists it; `None` if there is no record.
    pub fn group(&self, ifindex: IfIndex, group: IpAddr, now: Instant) -> Option<GroupInfo> {
        fn find<P: Protocol>(fam: &Family<P>, ifindex: IfIndex, group: P::Addr) -> Option<usize> {
            fam.ifaces.get(&ifindex)?.groups.get(&group).copied()
        }
        match group {
            IpAddr::V4(g) => find(&self.igmp, ifindex, g)
                .map(|key| group_info(&self.igmp, &self.igmp.records[key], &self.config, now)),
            IpAddr::V6(g) => find(&self.mld, ifindex, g)
                .map(|key| group_info(&self.mld, &self.mld.records[key], &self.config, now)),
        }
    }

    /// Up to `max` group records from `cursor` on (start with [`GroupCursor::START`]), in
    /// table order (IPv4 first, then IPv6; not sorted), appended to `out`; the cursor to go on
    /// from, or `None` when every record has been visited. Each call costs what it lists: a
    /// view of a million groups is built a slice at a time. A group held throughout a walk is
    /// listed exactly once; one joined or left during it may or may not be.
    pub fn groups_page(
        &self,
        cursor: GroupCursor,
        max: usize,
        now: Instant,
        out: &mut Vec<GroupInfo>,
    ) -> Option<GroupCursor> {
        fn page<P: Protocol>(
            fam: &Family<P>,
            from: usize,
            max: usize,
            config: &Config,
            now: Instant,
            out: &mut Vec<GroupInfo>,
        ) -> Option<usize> {
            let end = fam.records.capacity();
            let mut at = from;
            let mut taken = 0;
            while at < end {
                if taken == max {
                    return Some(at);
                }
                if let Some(r) = fam.records.get(at) {
                    out.push(group_info(fam, r, config, now));
                    taken += 1;
                }
                at += 1;
            }
            None
        }
        let mut cursor = cursor;
        if cursor.family == 0 {
            let before = out.len();
            match page(&self.igmp, cursor.index, max, &self.config, now, out) {
                Some(index) => return Some(GroupCursor { family: 0, index }),
                None => {
                    cursor = GroupCursor {
                        family: 1,
                        index: 0,
                    };
                    let max = max - (out.len() - before);
                    if max == 0 {
                        return Some(cursor);
                    }
                    return page(&self.mld, 0, max, &self.config, now, out)
                        .map(|index| GroupCursor { family: 1, index });
                }
            }
        }
        page(&self.mld, cursor.index, max, &self.config, now, out)
            .map(|index| GroupCursor { family: 1, index })
    }

    /// Every group record on every interface, sorted by interface and group.
    pub fn groups(&self, now: Instant) -> Vec<GroupInfo> {
        let mut all: Vec<GroupInfo> = self
            .igmp
            .records
            .iter()
            .map(|(_, r)| group_info(&self.igmp, r, &self.config, now))
            .chain(
                self.mld
                    .records
                    .iter()
                    .map(|(_, r)| group_info(&self.mld, r, &self.config, now)),
            )
            .collect();
        all.sort_by_key(|g| (g.iface, g.group));
        all
    }

    pub fn interfaces(&self, now: Instant) -> Vec<InterfaceInfo> {
        let version = |c: Compat| match c {
            Compat::V1 => 1,
            Compat::V2 => 2,
            Compat::V3 => 3,
        };
        self.interfaces
            .keys()
            .map(|&ifindex| {
                let igmp_general = self.igmp.ifaces.get(&ifindex).and_then(|i| i.general);
                let mld_general = self.mld.ifaces.get(&ifindex).and_then(|i| i.general);
                InterfaceInfo {
                    iface: ifindex,
                    igmp_version: version(self.igmp.compat(ifindex, &self.config)),
                    igmp_v1_querier_ms: self
                        .igmp
                        .older_querier_left(ifindex, Compat::V1, now)
                        .map(millis),
                    igmp_v2_querier_ms: self
                        .igmp
                        .older_querier_left(ifindex, Compat::V2, now)
                        .map(millis),
                    // MLDv1 is the V2 mode, MLDv2 the V3 one.
                    mld_version: version(self.mld.compat(ifindex, &self.config)) - 1,
                    mld_v1_querier_ms: self
                        .mld
                        .older_querier_left(ifindex, Compat::V2, now)
                        .map(millis),
                    igmp_general_response_ms: self.igmp.timer_left(igmp_general, now).map(millis),
                    mld_general_response_ms: self.mld.timer_left(mld_general, now).map(millis),
                    igmp_groups: self.igmp.ifaces.get(&ifindex).map_or(0, |i| i.groups.len()),
                    mld_groups: self.mld.ifaces.get(&ifindex).map_or(0, |i| i.groups.len()),
                }
            })
            .collect()
    }
}

/// Sources converted to one family.
enum Sources {
    V4(BTreeSet<std::net::Ipv4Addr>),
    V6(BTreeSet<std::net::Ipv6Addr>),
}

/// A request change before its sources are typed.
enum Change {
    Add(FilterMode, Sources),
    LeaveGroup,
    DropIncluded(Sources),
    DropExclude(Sources),
}

impl Change {
    /// The change with its sources in the group's family; `family` unwraps them (the sources
    /// were checked against the group's family when they were converted).
    fn typed<A: Ord>(self, family: impl Fn(Sources) -> Option<BTreeSet<A>>) -> RequestChange<A> {
        let typed = |s| family(s).expect("sources were converted for the group's family");
        match self {
            Change::Add(mode, s) => RequestChange::Add(Filter {
                mode,
                sources: typed(s),
            }),
            Change::LeaveGroup => RequestChange::LeaveGroup,
            Change::DropIncluded(s) => RequestChange::DropIncluded(typed(s)),
            Change::DropExclude(s) => RequestChange::DropExclude(typed(s)),
        }
    }
}

/// What `show` tells of one record.
fn group_info<P: Protocol>(
    fam: &Family<P>,
    r: &Record<P::Addr>,
    config: &Config,
    now: Instant,
) -> GroupInfo {
    let v3 = fam.compat(r.iface, config) == Compat::V3;
    let timer_ms = fam.timer_left(r.timer, now).map(millis);
    let retransmit_ms = if r.retransmit.is_done() {
        None
    } else {
        let timer = fam.ifaces.get(&r.iface).and_then(|i| i.retransmit);
        fam.timer_left(timer, now).map(millis)
    };
    let state = if !v3 || r.member.state == crate::MemberState::Silent {
        r.member.state.name()
    } else if r.requests.is_empty() {
        "leaving"
    } else if timer_ms.is_some() {
        "delaying"
    } else if retransmit_ms.is_some() {
        "reporting"
    } else {
        "idle"
    };
    GroupInfo {
        iface: r.iface,
        group: r.group.into(),
        users: r.users(),
        state,
        timer_ms,
        last_reporter: !v3 && r.member.state.last_reporter(),
        unsolicited_left: r.member.unsolicited_left,
        retransmit_ms,
        filter_mode: r.filter.mode.name(),
        sources: r.filter.sources.iter().map(|&s| s.into()).collect(),
        requests: r
            .requests
            .iter()
            .map(|f| SourceFilter {
                mode: f.mode,
                sources: f.sources.iter().map(|&s| s.into()).collect(),
            })
            .collect(),
    }
}
