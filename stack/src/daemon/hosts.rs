//! Emulated hosts: each one an interface of a membership core, with its own addresses, compat
//! mode, groups and timers. Hosts with the same protocol settings share a core.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Index;
use std::time::Duration;

use log::{debug, info, warn};
use membership::{
    Config, Event, Host, IfIndex, IgmpVersion, InputPolicy, Instant, InterfaceConfig, MldVersion,
    SourceFilter,
};

use super::addrs::{HostsByAddr, HostsByIface};
use super::links::Links;
use super::{CoreId, HostId, LinkId};
use crate::framing::Framing;
use crate::ids::{Id as _, IdVec, IdsFrom, Table};
use crate::listeners::Listeners;
use crate::member_datagrams::MemberDatagrams;
use crate::neighbour::{solicited_node, NeighbourHost};
use crate::topology::{HostAddrs, HostParams, HostSpec, Topology};
use crate::{Args, SolicitedNode};

/// The owner of each host's solicited-node join (`--solicited-node`).
pub(super) const SOLICITED_NODE_OWNER: &str = "solicited-node";

/// Core ifindexes of hosts after a link's first start here, far above the kernel's.
pub(super) const FIRST_SYNTHETIC_IFINDEX: IfIndex = 1 << 30;

crate::counters::counters! {
    /// One emulated host's counters.
    pub(super) struct HostStats {
        host_rx_packets: "IGMP / MLD and other non-UDP packets handed to this host.",
        host_rx_datagrams: "Multicast datagrams read for a group this host joined.",
        host_tx_reports: "Reports this host sent (every version).",
        host_tx_leaves: "IGMPv2 Leaves and MLDv1 Dones this host sent.",
        host_rx_suppressing: "Reports of the link's other hosts fed back to this one.",
    }
}

/// One emulated host.
pub(super) struct EmuHost {
    pub addrs: HostAddrs,
    /// Its core, in [`Hosts`], and its interface there.
    pub core: CoreId,
    pub ifindex: IfIndex,
    pub link: LinkId,
    /// Removed by a reload: its leaves still go out, nothing reaches it any more.
    pub retired: bool,
    /// Its number in the delay tracker: unique for the daemon's lifetime (slab ids are reused).
    pub delay_number: u32,
    pub io: HostStats,
}

impl EmuHost {
    /// Ethernet with its own MAC (TAP), or bare IP (TUN): told by its MAC, not kept twice.
    pub fn framing(&self) -> Framing {
        match self.addrs.mac {
            Some(mac) => Framing::Ethernet { mac },
            None => Framing::Ip,
        }
    }
}

/// The hosts with the same protocol settings share one membership core, each one an
/// interface of it (the core's settings are per core, its state per interface). "Host" in the
/// daemon means an emulated host ([`EmuHost`]); the core's `membership::Host` is its `engine`.
pub(super) struct Core {
    pub params: HostParams,
    pub engine: Host,
}

/// What the cores' settings take from the command line, beside each host's [`HostParams`].
#[derive(Clone)]
pub(super) struct CoreSettings {
    report_link_local_groups: bool,
    strict_igmp: bool,
    lenient_mld: bool,
    answer_burst: u32,
    answer_margin: Duration,
    solicited_node: SolicitedNode,
    /// The command line's one link: a host is named by its device alone.
    one_link: bool,
}

impl CoreSettings {
    pub fn of(args: &Args) -> CoreSettings {
        CoreSettings {
            report_link_local_groups: args.report_link_local_groups,
            strict_igmp: args.strict_igmp,
            lenient_mld: args.lenient_mld,
            answer_burst: args.answer_burst,
            answer_margin: Duration::from_millis(args.answer_margin_ms),
            solicited_node: args.solicited_node,
            one_link: args.iface.is_some(),
        }
    }
}

/// A core's settings: `Config` is `#[non_exhaustive]`, so it is built from the default
/// with its builder methods.
pub(super) fn core_config(settings: &CoreSettings, params: &HostParams) -> Config {
    let unsolicited = Duration::from_millis(params.unsolicited_interval_ms.into());
    Config::default()
        .with_robustness(params.robustness)
        .with_igmp_unsolicited_interval(unsolicited)
        .with_mld_unsolicited_interval(unsolicited)
        .with_report_link_local_groups(settings.report_link_local_groups)
        .with_igmp_max_version(
            IgmpVersion::try_from(params.igmp_version).expect("checked to be 1..=3"),
        )
        .with_mld_max_version(
            MldVersion::try_from(params.mld_version).expect("checked to be 1..=2"),
        )
        .with_v3_unsolicited_interval(Duration::from_millis(
            params.v3_unsolicited_interval_ms.into(),
        ))
        .with_igmp_policy(InputPolicy {
            require_router_alert: settings.strict_igmp,
            require_hop_limit_one: settings.strict_igmp,
        })
        .with_mld_policy(InputPolicy {
            require_router_alert: !settings.lenient_mld,
            require_hop_limit_one: !settings.lenient_mld,
        })
        .with_answer_burst(match settings.answer_burst {
            0 => u32::MAX,
            burst => burst,
        })
        .with_answer_margin(settings.answer_margin)
}

/// [`Hosts::flush_order`]: the cores, a round robin's turn.
pub(super) type CoresFrom = std::iter::Map<IdsFrom<CoreId>, fn((CoreId, usize)) -> CoreId>;

/// Up to this many hosts, each one's mode changes are logged at info.
const MODE_LOG_HOSTS: usize = 16;

/// The membership cores and the emulated hosts, each an interface of one core, with the
/// indexes that find a host by address and by core interface. Keeps them consistent: a host
/// is added, removed and forgotten only here.
pub(super) struct Hosts {
    cores: IdVec<CoreId, Core>,
    all: Table<HostId, EmuHost>,
    /// (core, core ifindex) -> host: where a transmit leaves.
    by_iface: HostsByIface,
    /// Live hosts by their IPv4 and IPv6 link-local addresses: `--host`, `--hosts`.
    by_addr: HostsByAddr,
    /// The hosts whose address another link's host has too, by (link, address): rare (two labs
    /// numbered alike), and how each link still finds its own for ARP / ND.
    shared_addrs: HashMap<(LinkId, IpAddr), HostId>,
    /// Hosts removed by a reload whose leaves are still going out: their core interfaces are
    /// removed once the core holds no record of them.
    departing: Vec<HostId>,
    /// The next synthetic core ifindex, for hosts after a link's first.
    next_ifindex: IfIndex,
    /// The IPv4 address of every host ever made, by its delay number ([`EmuHost`]): numbers
    /// are never reused, so a removed host's delay figures never mix with a new host's.
    delay_hosts: Vec<Ipv4Addr>,
    /// Counts the joins made ([`Hosts::note_member`]): a link's "nobody holds this group"
    /// stays true until it moves.
    join_epoch: u64,
    /// The core the next flush starts with, so that a budget cut shares the turns.
    next_flush_core: usize,
    /// Each host's `host_rx_datagrams` read for every member of a group (O(1) a datagram).
    member_datagrams: MemberDatagrams,
    seed: u64,
    settings: CoreSettings,
}

impl Index<HostId> for Hosts {
    type Output = EmuHost;

    fn index(&self, id: HostId) -> &EmuHost {
        &self.all[id]
    }
}

impl Hosts {
    pub fn new(seed: u64, settings: CoreSettings) -> Hosts {
        Hosts {
            cores: IdVec::new(),
            all: Table::new(),
            by_iface: HostsByIface::default(),
            by_addr: HostsByAddr::default(),
            shared_addrs: HashMap::new(),
            departing: Vec::new(),
            next_ifindex: FIRST_SYNTHETIC_IFINDEX,
            delay_hosts: Vec::new(),
            join_epoch: 0,
            next_flush_core: 0,
            member_datagrams: MemberDatagrams::default(),
            seed,
            settings,
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn get(&self, id: HostId) -> Option<&EmuHost> {
        self.all.get(id)
    }

    pub fn contains(&self, id: HostId) -> bool {
        self.all.contains(id)
    }

    /// Live hosts: all but those departing (a removed host is retired and departing until
    /// its leaves are out, then gone).
    pub fn live(&self) -> usize {
        self.all.len() - self.departing.len()
    }

    /// The live host with the address `addr`.
    pub fn find(&self, addr: &IpAddr) -> Option<HostId> {
        self.by_addr.get(addr)
    }

    /// The host that is interface `ifindex` of core `core`.
    pub fn at_iface(&self, core: CoreId, ifindex: IfIndex) -> Option<HostId> {
        self.by_iface.get(core, ifindex)
    }

    /// The live host of that core interface.
    pub fn live_at_iface(&self, core: CoreId, ifindex: IfIndex) -> bool {
        self.by_iface
            .get(core, ifindex)
            .is_some_and(|h| !self.all[h].retired)
    }

    pub fn io_mut(&mut self, id: HostId) -> &mut HostStats {
        &mut self.all[id].io
    }

    /// The IPv4 address of the host with delay number `n`, removed or not.
    pub fn delay_host(&self, n: u32) -> Option<Ipv4Addr> {
        self.delay_hosts.get(n as usize).copied()
    }

    pub fn join_epoch(&self) -> u64 {
        self.join_epoch
    }

    pub fn cores(&self) -> impl Iterator<Item = (CoreId, &Core)> {
        self.cores.iter_ids()
    }

    pub fn core(&self, id: CoreId) -> &Core {
        &self.cores[id]
    }

    pub fn first_core(&self) -> Option<CoreId> {
        self.cores.first_id()
    }

    pub fn core_after(&self, id: CoreId) -> Option<CoreId> {
        self.cores.id_after(id)
    }

    /// Every core's engine, by core: what the listeners hold their joins in.
    pub fn engines_mut(&mut self) -> IdVec<CoreId, &mut Host> {
        self.cores.map(|c| &mut c.engine)
    }

    pub fn engine_mut(&mut self, core: CoreId) -> &mut Host {
        &mut self.cores[core].engine
    }

    /// Host `id`'s core and its interface there.
    pub fn engine_of(&mut self, id: HostId) -> (&mut Host, IfIndex) {
        let host = &self.all[id];
        (&mut self.cores[host.core].engine, host.ifindex)
    }

    /// Host `id`'s record of `group`, as its core has it now.
    pub fn group(&self, id: HostId, group: IpAddr, now: Instant) -> Option<membership::GroupInfo> {
        let host = &self.all[id];
        self.cores[host.core].engine.group(host.ifindex, group, now)
    }

    /// The cores in flush order, from the one after the last that ran out of budget. Borrows
    /// nothing, so that the flush may change them.
    pub fn flush_order(&self) -> CoresFrom {
        self.cores.ids_from(self.next_flush_core).map(|(id, _)| id)
    }

    /// Core `core` ran out of the flush's budget: the next flush starts with the one after.
    pub fn resume_flush_after(&mut self, core: CoreId) {
        self.next_flush_core = core.index() + 1;
    }

    /// The earliest deadline of any core.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.cores
            .iter()
            .filter_map(|c| c.engine.poll_timeout())
            .min()
    }

    /// Every host leaves every group (shutdown).
    pub fn leave_all(&mut self, now: Instant) {
        for core in &mut self.cores {
            core.engine.leave_all(now);
        }
    }

    /// Some core still holds a group record. O(cores): the cores count their records.
    pub fn hold_records(&self) -> bool {
        self.cores.iter().any(|c| c.engine.group_records() > 0)
    }

    /// The longest v3 unsolicited report interval of any core (ms).
    pub fn longest_v3_interval_ms(&self) -> u32 {
        self.cores
            .iter()
            .map(|c| c.params.v3_unsolicited_interval_ms)
            .max()
            .unwrap_or(0)
    }

    /// Groups of the hosts `wanted` admits, on every core.
    pub fn total_groups(&self, wanted: &dyn Fn(HostId) -> bool, now: Instant) -> u64 {
        let mut total = 0;
        for (c, core) in self.cores.iter_ids() {
            for i in core.engine.interfaces(now) {
                if let Some(id) = self.by_iface.get(c, i.iface) {
                    if !self.all[id].retired && wanted(id) {
                        total += (i.igmp_groups + i.mld_groups) as u64;
                    }
                }
            }
        }
        total
    }

    /// The core for hosts with `params`, made on first use.
    fn core_for(&mut self, params: HostParams) -> CoreId {
        // The MTU is per interface; the rest is the core's.
        let key = HostParams { mtu: 0, ..params };
        if let Some((id, _)) = self.cores.iter_ids().find(|(_, c)| c.params == key) {
            return id;
        }
        let seed = self.seed ^ (self.cores.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.cores.push(Core {
            params: key,
            engine: Host::new(core_config(&self.settings, &params), seed),
        })
    }

    /// Creates a host on link `link`: an interface of its core. The first host of a link
    /// takes the device's kernel ifindex (`kernel`), as the one-link daemon always did; the
    /// others a synthetic one. `tracking`: someone counts each group's members (see
    /// [`Hosts::note_member`]).
    pub fn add_host(
        &mut self,
        links: &mut Links,
        link: LinkId,
        spec: HostSpec,
        kernel: Option<u32>,
        tracking: bool,
        now: Instant,
    ) -> anyhow::Result<HostId> {
        let core = self.core_for(spec.params);
        let config = InterfaceConfig {
            ipv4: Some(spec.ipv4.0),
            ipv6_link_local: Some(spec.ipv6_ll),
            mtu: spec.params.mtu,
        };
        let engine = &mut self.cores[core].engine;
        let ifindex = match kernel {
            Some(index) if engine.add_interface(index, config.clone()).is_ok() => index,
            _ => {
                let index = self.next_ifindex;
                self.next_ifindex += 1;
                engine.add_interface(index, config)?;
                index
            }
        };
        let delay_number = u32::try_from(self.delay_hosts.len())
            .map_err(|_| anyhow::anyhow!("more than 2^32 hosts made in this daemon's life"))?;
        self.delay_hosts.push(spec.ipv4.0);
        let id = self.insert(EmuHost {
            addrs: spec.addrs(),
            core,
            ifindex,
            link,
            retired: false,
            delay_number,
            io: HostStats::default(),
        });
        if let Some(mac) = spec.mac {
            links[link].by_mac.insert(mac, id);
        }
        if self.settings.solicited_node.joins(spec.mac.is_some()) {
            self.join_solicited_node(links, id, tracking, now);
        }
        Ok(id)
    }

    /// Puts `host` in the table and in the indexes by core interface and by address.
    fn insert(&mut self, host: EmuHost) -> HostId {
        let (core, ifindex, link, addrs) = (host.core, host.ifindex, host.link, host.addrs);
        let id = self.all.insert(host);
        self.by_iface.insert(core, ifindex, id);
        for addr in [IpAddr::V4(addrs.ipv4.0), IpAddr::V6(addrs.ipv6_ll)] {
            if let Some(other) = self.by_addr.insert(addr, id) {
                warn!("{addr} is the address of two hosts; --host finds the later one");
                // Each link still answers ARP / ND for its own one.
                self.shared_addrs
                    .insert((self.all[other].link, addr), other);
                self.shared_addrs.insert((link, addr), id);
            }
        }
        id
    }

    /// Joins the solicited-node group of host `id`'s IPv6 link-local address (RFC 4861
    /// §7.2.1), as the owner [`SOLICITED_NODE_OWNER`]: never journalled as a user's join, and
    /// untouched by anonymous leaves. Reported like any group (RFC 9777 §6 reports every group
    /// but ff02::1, which this never is).
    fn join_solicited_node(&mut self, links: &mut Links, id: HostId, tracking: bool, now: Instant) {
        let core = self.all[id].core;
        let group = IpAddr::V6(solicited_node(self.all[id].addrs.ipv6_ll));
        let (engine, ifindex) = self.engine_of(id);
        let joined = engine.set_filter(
            ifindex,
            group,
            SOLICITED_NODE_OWNER,
            SourceFilter::exclude(Vec::new()),
            now,
        );
        self.drain_events(core, links);
        match joined {
            Ok(_) => self.note_member(links, id, group, tracking),
            Err(e) => warn!("{}: cannot join {group}: {e}", self.label(id, links)),
        }
    }

    /// Removes hosts from their links: each leaves its groups on the wire (those leaves still
    /// go out through it), and nothing reaches it any more. O(the hosts, and one pass over the
    /// tables of their links), not one pass per host: a reload may remove a million.
    pub fn remove_hosts(
        &mut self,
        ids: &[HostId],
        now: Instant,
        links: &mut Links,
        listeners: &mut Listeners,
    ) {
        for &id in ids {
            let (engine, ifindex) = self.engine_of(id);
            engine.leave_interface(ifindex, now);
        }
        self.unlink_hosts(&ids.iter().copied().collect(), links, listeners);
        self.departing.extend_from_slice(ids);
    }

    /// Removes the departing hosts whose leaves are all out (the core holds no record of
    /// them any more) from their cores and from the daemon. O(departing hosts).
    pub fn remove_departed(&mut self) {
        let mut departing = std::mem::take(&mut self.departing);
        departing.retain(|&id| {
            let (core, ifindex) = (self.all[id].core, self.all[id].ifindex);
            if self.cores[core].engine.interface_group_records(ifindex) > 0 {
                return true;
            }
            let _ = self.cores[core].engine.remove_interface(ifindex);
            self.by_iface.remove(core, ifindex);
            self.all.remove(id);
            false
        });
        self.departing = departing;
    }

    /// The departing hosts of link `link`.
    pub fn departing_on(&self, link: LinkId) -> impl Iterator<Item = HostId> + '_ {
        self.departing
            .iter()
            .copied()
            .filter(move |&h| self.all[h].link == link)
    }

    /// Takes hosts off their links' tables (MAC, neighbours, members, addresses) and ends
    /// their listeners: each per-host entry directly, each link-wide list in one pass.
    fn unlink_hosts(
        &mut self,
        gone: &HashSet<HostId>,
        links: &mut Links,
        listeners: &mut Listeners,
    ) {
        listeners.forget_owners(gone);
        let mut touched: Vec<LinkId> = Vec::new();
        for &id in gone {
            self.member_datagrams.forget(id);
            let host = &mut self.all[id];
            host.retired = true;
            let (spec, link_id) = (host.addrs, host.link);
            for addr in [IpAddr::V4(spec.ipv4.0), IpAddr::V6(spec.ipv6_ll)] {
                if self.shared_addrs.get(&(link_id, addr)) == Some(&id) {
                    self.shared_addrs.remove(&(link_id, addr));
                }
                if self.by_addr.get(&addr) == Some(id) {
                    self.by_addr.remove(&addr);
                    // Another link's host with the same address, if any, is found again.
                    let other = self
                        .shared_addrs
                        .iter()
                        .find(|((_, a), _)| *a == addr)
                        .map(|(_, &other)| other);
                    if let Some(other) = other {
                        self.by_addr.insert(addr, other);
                    }
                }
            }
            let Some(link) = links.get_mut(link_id) else {
                continue;
            };
            if let Some(mac) = spec.mac {
                link.by_mac.remove(mac);
            }
            if !touched.contains(&link_id) {
                touched.push(link_id); // links are few
            }
        }
        for id in touched {
            let link = &mut links[id];
            link.hosts.retain(|h| !gone.contains(h));
            for members in link.members.values_mut() {
                members.retain(|h| !gone.contains(h));
            }
        }
    }

    /// Forgets the hosts of a closed link: their groups go without a word (the device is
    /// gone), their interfaces are removed from their cores at once.
    pub fn forget_hosts(&mut self, ids: &[HostId], links: &mut Links, listeners: &mut Listeners) {
        let gone: HashSet<HostId> = ids.iter().copied().collect();
        self.unlink_hosts(&gone, links, listeners);
        self.departing.retain(|h| !gone.contains(h));
        for &id in ids {
            let host = self.all.remove(id);
            let _ = self.cores[host.core].engine.remove_interface(host.ifindex);
            self.by_iface.remove(host.core, host.ifindex);
        }
    }

    /// How requests, the journal and `show` name a host: the device alone for the one host of
    /// the command line's link, else `device/IPv4`.
    pub fn label(&self, id: HostId, links: &Links) -> String {
        let host = &self.all[id];
        let device = links.get(host.link).map_or("?", |l| l.name.as_str());
        if self.settings.one_link {
            device.to_string()
        } else {
            format!("{device}/{}", host.addrs.ipv4.0)
        }
    }

    /// The host a journal record names ([`Hosts::label`]'s form), if it is still there.
    pub fn by_label(&self, label: &str, links: &Links, topology: &Topology) -> Option<HostId> {
        match label.split_once('/') {
            Some((device, ipv4)) => {
                let addr: Ipv4Addr = ipv4.parse().ok()?;
                let id = self.by_addr.get(&IpAddr::V4(addr))?;
                let link = links.named(device)?;
                (self.all[id].link == link).then_some(id)
            }
            None => links.default_host(Some(links.named(label)?), topology),
        }
    }

    /// The host of link `link` answering for `addr` in ARP / ND: its own if another link's
    /// host has the address too.
    pub fn neighbour(&self, link: LinkId, addr: IpAddr) -> Option<NeighbourHost> {
        let id = self
            .shared_addrs
            .get(&(link, addr))
            .copied()
            .or_else(|| self.by_addr.get(&addr))?;
        let host = self.all.get(id)?;
        if host.link != link || host.retired {
            return None;
        }
        Some(NeighbourHost {
            mac: host.addrs.mac?,
            ipv4: host.addrs.ipv4.0,
            ipv6_ll: host.addrs.ipv6_ll,
        })
    }

    /// Logs what core `core` reports having done (mode changes at info while there are few
    /// hosts, one line per host otherwise; the rest at debug); true if it heard a query.
    pub fn drain_events(&mut self, core: CoreId, links: &Links) -> bool {
        let mut query = false;
        while let Some(event) = self.cores[core].engine.poll_event() {
            query |= matches!(event, Event::QueryHeard { .. });
            match event {
                Event::CompatibilityModeChanged { from, to, iface } => {
                    let label = self
                        .by_iface
                        .get(core, iface)
                        .map_or_else(|| iface.to_string(), |h| self.label(h, links));
                    if self.all.len() <= MODE_LOG_HOSTS {
                        info!("{label}: {from} -> {to} (compatibility mode)")
                    } else {
                        debug!("{label}: {from} -> {to} (compatibility mode)")
                    }
                }
                other => debug!("{other:?}"),
            }
        }
        query
    }

    /// Notes that host `id` joined `group` on its link, where someone needs to know
    /// (`tracking`: the delay tracker, which credits a datagram to the hosts that joined its
    /// group, or the stream checker) or the other hosts of a shared LAN (suppression).
    /// Otherwise nothing is kept per group: a one-host link, or hosts behind a snooping switch
    /// (`suppression = false`), without `--delays` or streams checked.
    pub fn note_member(&mut self, links: &mut Links, id: HostId, group: IpAddr, tracking: bool) {
        self.join_epoch += 1;
        let link_id = self.all[id].link;
        let tracking = tracking || links.members_complete;
        let link = &mut links[link_id];
        if (tracking || (link.suppression && link.hosts.len() > 1))
            && link.members.entry(group).or_default().insert(id)
        {
            self.member_datagrams.member_added(id, link_id, group);
        }
    }

    /// Notes every group each live host holds now as its link's member (see
    /// [`Hosts::note_member`]): when the daemon starts keeping members at run time (the first
    /// stream checked or test run), the hosts that joined before are members too, or a
    /// group-specific query handed to the members would miss them. O(memberships), once.
    pub fn note_all_members(&mut self, links: &mut Links, now: Instant) {
        let ids: Vec<HostId> = self
            .all
            .iter()
            .filter(|(_, h)| !h.retired)
            .map(|(id, _)| id)
            .collect();
        let mut groups = Vec::new();
        for id in ids {
            let host = &self.all[id];
            groups.clear();
            self.cores[host.core].engine.interface_groups_page(
                host.ifindex,
                0,
                usize::MAX,
                now,
                &mut groups,
            );
            for info in &groups {
                let group = info.group;
                let host = &self.all[id];
                if self.cores[host.core].engine.is_joined(host.ifindex, group) {
                    self.note_member(links, id, group, true);
                }
            }
        }
    }

    /// A datagram of `group` read on link `link` for every member of the group there: each
    /// one's `host_rx_datagrams`, at O(1).
    pub fn datagram_for_every_member(&mut self, link: LinkId, group: IpAddr) {
        self.member_datagrams.read_for_every_member(link, group);
    }

    /// Host `id`'s counters, with the datagrams it was handed with the rest of its groups'
    /// members.
    pub fn host_stats(&self, id: HostId) -> HostStats {
        let host = &self.all[id];
        let mut io = host.io.clone();
        io.host_rx_datagrams += self.member_datagrams.of_host(id, host.link);
        io
    }
}

#[cfg(test)]
mod tests;
