//! [`Host`]: the one owner of all membership state, and its public API.

use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;

use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde::Serialize;

use crate::family::{Env, Family, Protocol, Record};
use crate::igmp::Igmp;
use crate::mld::Mld;
use crate::stats::{DropReason, Stats};
use crate::time::Instant;
use crate::wire::ip::{classify, Classified, OtherKind};
use crate::{Config, Error, IfIndex, InterfaceConfig, Transmit};

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupInfo {
    pub iface: IfIndex,
    pub group: IpAddr,
    pub users: u32,
    pub state: &'static str,
    /// Time left on the report timer, in ms.
    pub timer_ms: Option<u64>,
    pub last_reporter: bool,
    /// Unsolicited repeats still to come after the scheduled report.
    pub unsolicited_left: u8,
    pub filter_mode: &'static str,
    pub sources: Vec<IpAddr>,
}

/// One interface, for `show`: the querier versions in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterfaceInfo {
    pub iface: IfIndex,
    /// 1 while an IGMPv1 querier is present, else 2.
    pub igmp_version: u8,
    /// Time left on the IGMPv1 Querier Present timer, in ms.
    pub igmp_v1_querier_ms: Option<u64>,
    pub mld_version: u8,
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
        let addrs = self
            .interfaces
            .get(&ifindex)
            .ok_or(Error::UnknownInterface(ifindex))?;
        let family = P::select(&mut self.igmp, &mut self.mld);
        let env = Env {
            config: &self.config,
            addrs,
            rng: &mut self.rng,
            out: &mut self.outbox,
            stats: &mut self.stats,
        };
        Ok((family, env))
    }

    /// Joins `group` (IPv4: IGMP, IPv6: MLD) for one more user. The first join reports at once;
    /// further joins only count. Returns the number of users.
    pub fn join(&mut self, ifindex: IfIndex, group: IpAddr, now: Instant) -> Result<u32, Error> {
        self.tick(now);
        fn join<P: Protocol>(
            h: &mut Host,
            i: IfIndex,
            g: P::Addr,
            now: Instant,
        ) -> Result<u32, Error> {
            let (family, mut env) = h.parts::<P>(i)?;
            family.join(i, g, now, &mut env)
        }
        match group {
            IpAddr::V4(g) => join::<Igmp>(self, ifindex, g, now),
            IpAddr::V6(g) => join::<Mld>(self, ifindex, g, now),
        }
    }

    /// Drops one user of `group`; the last one leaves (Leave / Done if we reported last).
    /// Returns the users left.
    pub fn leave(&mut self, ifindex: IfIndex, group: IpAddr, now: Instant) -> Result<u32, Error> {
        self.tick(now);
        fn leave<P: Protocol>(h: &mut Host, i: IfIndex, g: P::Addr) -> Result<u32, Error> {
            let (family, mut env) = h.parts::<P>(i)?;
            family.leave(i, g, &mut env)
        }
        match group {
            IpAddr::V4(g) => leave::<Igmp>(self, ifindex, g),
            IpAddr::V6(g) => leave::<Mld>(self, ifindex, g),
        }
    }

    /// Leaves every group on every interface, as a host shutting down does.
    pub fn leave_all(&mut self, now: Instant) {
        self.tick(now);
        let ifindexes: Vec<IfIndex> = self.interfaces.keys().copied().collect();
        for ifindex in ifindexes {
            if let Ok((family, mut env)) = self.parts::<Igmp>(ifindex) {
                family.leave_all(ifindex, &mut env);
            }
            if let Ok((family, mut env)) = self.parts::<Mld>(ifindex) {
                family.leave_all(ifindex, &mut env);
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
        igmp.advance(now, config, interfaces, rng, outbox, stats);
        mld.advance(now, config, interfaces, rng, outbox, stats);
        while let Some(tx) = self.outbox.pop_front() {
            transmit(tx);
        }
    }

    /// When `poll` has something to do next: the driver's sleep deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        if !self.outbox.is_empty() {
            return Some(self.now);
        }
        let igmp = self.igmp.tables.wheel.next_deadline();
        let mld = self.mld.tables.wheel.next_deadline();
        match (igmp, mld) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Every group record on every interface, sorted by interface and group.
    pub fn groups(&self, now: Instant) -> Vec<GroupInfo> {
        fn info<P: Protocol>(fam: &Family<P>, r: &Record<P::Addr>, now: Instant) -> GroupInfo {
            GroupInfo {
                iface: r.iface,
                group: r.group.into(),
                users: r.users,
                state: r.member.state.name(),
                timer_ms: fam.timer_left(r, now).map(millis),
                last_reporter: r.member.state.last_reporter(),
                unsolicited_left: r.member.unsolicited_left,
                filter_mode: r.filter.mode.name(),
                sources: r.filter.sources.iter().map(|&s| s.into()).collect(),
            }
        }
        let mut all: Vec<GroupInfo> = self
            .igmp
            .tables
            .records
            .iter()
            .map(|(_, r)| info(&self.igmp, r, now))
            .chain(
                self.mld
                    .tables
                    .records
                    .iter()
                    .map(|(_, r)| info(&self.mld, r, now)),
            )
            .collect();
        all.sort_by_key(|g| (g.iface, g.group));
        all
    }

    pub fn interfaces(&self, now: Instant) -> Vec<InterfaceInfo> {
        self.interfaces
            .keys()
            .map(|&ifindex| {
                let v1 = self.igmp.v1_querier_left(ifindex, now);
                let forced_v1 = self.config.igmp_max_version == 1;
                InterfaceInfo {
                    iface: ifindex,
                    igmp_version: if v1.is_some() || forced_v1 { 1 } else { 2 },
                    igmp_v1_querier_ms: v1.map(millis),
                    mld_version: 1,
                    igmp_groups: self.igmp.ifaces.get(&ifindex).map_or(0, |i| i.groups.len()),
                    mld_groups: self.mld.ifaces.get(&ifindex).map_or(0, |i| i.groups.len()),
                }
            })
            .collect()
    }
}
