//! Emulated hosts: each one an interface of a membership core, with its own addresses, compat
//! mode, groups and timers. Hosts with the same protocol settings share a core.

use std::collections::HashSet;
use std::net::IpAddr;

use log::warn;
use membership::{Host, IfIndex, Instant, InterfaceConfig, SourceFilter};

use super::{core_config, Core, CoreId, Daemon, HostId, LinkId};
use crate::framing::Framing;
use crate::neighbour::solicited_node;
use crate::topology::{HostAddrs, HostParams, HostSpec};

/// The owner of each host's solicited-node join (`--solicited-node`).
pub(super) const SOLICITED_NODE_OWNER: &str = "solicited-node";

/// Core ifindexes of hosts after a link's first start here, far above the kernel's.
pub(super) const FIRST_SYNTHETIC_IFINDEX: IfIndex = 1 << 30;

pub(super) fn if_nametoindex(name: &str) -> Option<u32> {
    // Leaves errno set on failure, as callers read it.
    nix::net::if_::if_nametoindex(name).ok()
}

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
    /// Its core, in `Daemon::cores`, and its interface there.
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

impl Daemon {
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
            engine: Host::new(core_config(&self.args, &params), seed),
        })
    }

    /// Creates a host on link `link`: an interface of its core. The first host of a link
    /// takes the device's kernel ifindex (`kernel`), as the one-link daemon always did; the
    /// others a synthetic one.
    pub(super) fn add_host(
        &mut self,
        link: LinkId,
        spec: HostSpec,
        kernel: Option<u32>,
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
        let id = self.hosts.insert(EmuHost {
            addrs: spec.addrs(),
            core,
            ifindex,
            link,
            retired: false,
            delay_number,
            io: HostStats::default(),
        });
        self.by_iface.insert(core, ifindex, id);
        for addr in [IpAddr::V4(spec.ipv4.0), IpAddr::V6(spec.ipv6_ll)] {
            if let Some(other) = self.by_addr.insert(addr, id) {
                warn!("{addr} is the address of two hosts; --host finds the later one");
                // Each link still answers ARP / ND for its own one.
                self.shared_addrs
                    .insert((self.hosts[other].link, addr), other);
                self.shared_addrs.insert((link, addr), id);
            }
        }
        if self.args.solicited_node.joins(spec.mac.is_some()) {
            self.join_solicited_node(id);
        }
        let link = &mut self.links[link];
        if let Some(mac) = spec.mac {
            link.by_mac.insert(mac, id);
        }
        Ok(id)
    }

    /// Joins the solicited-node group of host `id`'s IPv6 link-local address (RFC 4861
    /// §7.2.1), as the owner [`SOLICITED_NODE_OWNER`]: never journalled as a user's join, and
    /// untouched by anonymous leaves. Reported like any group (RFC 9777 §6 reports every group
    /// but ff02::1, which this never is).
    fn join_solicited_node(&mut self, id: HostId) {
        let (core, ifindex) = (self.hosts[id].core, self.hosts[id].ifindex);
        let group = IpAddr::V6(solicited_node(self.hosts[id].addrs.ipv6_ll));
        let now = self.now();
        let joined = self.cores[core].engine.set_filter(
            ifindex,
            group,
            SOLICITED_NODE_OWNER,
            SourceFilter::exclude(Vec::new()),
            now,
        );
        while let Some(event) = self.cores[core].engine.poll_event() {
            self.log_event(core, &event);
        }
        match joined {
            Ok(_) => self.note_member(id, group),
            Err(e) => warn!("{}: cannot join {group}: {e}", self.host_label(id)),
        }
    }

    /// Removes hosts from their links: each leaves its groups on the wire (those leaves still
    /// go out through it), and nothing reaches it any more. O(the hosts, and one pass over the
    /// tables of their links), not one pass per host: a reload may remove a million.
    pub(super) fn remove_hosts(&mut self, ids: &[HostId], now: Instant) {
        for &id in ids {
            let (core, ifindex) = (self.hosts[id].core, self.hosts[id].ifindex);
            self.cores[core].engine.leave_interface(ifindex, now);
        }
        self.unlink_hosts(&ids.iter().copied().collect());
        self.departing.extend_from_slice(ids);
    }

    /// Removes the departing hosts whose leaves are all out (the core holds no record of
    /// them any more) from their cores and from the daemon. O(departing hosts).
    pub(super) fn remove_departed(&mut self) {
        let mut departing = std::mem::take(&mut self.departing);
        departing.retain(|&id| {
            let (core, ifindex) = (self.hosts[id].core, self.hosts[id].ifindex);
            if self.cores[core].engine.interface_group_records(ifindex) > 0 {
                return true;
            }
            let _ = self.cores[core].engine.remove_interface(ifindex);
            self.by_iface.remove(core, ifindex);
            self.hosts.remove(id);
            false
        });
        self.departing = departing;
    }

    /// Takes hosts off their links' tables (MAC, neighbours, members, addresses) and ends
    /// their listeners: each per-host entry directly, each link-wide list in one pass.
    fn unlink_hosts(&mut self, gone: &HashSet<HostId>) {
        self.listeners.forget_owners(gone);
        let mut links: Vec<LinkId> = Vec::new();
        for &id in gone {
            self.member_datagrams.forget(id);
            let host = &mut self.hosts[id];
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
            let Some(link) = self.links.get_mut(link_id) else {
                continue;
            };
            if let Some(mac) = spec.mac {
                link.by_mac.remove(mac);
            }
            if !links.contains(&link_id) {
                links.push(link_id); // links are few
            }
        }
        for id in links {
            let link = &mut self.links[id];
            link.hosts.retain(|h| !gone.contains(h));
            for members in link.members.values_mut() {
                members.retain(|h| !gone.contains(h));
            }
        }
    }

    /// Forgets the hosts of a closed link: their groups go without a word (the device is
    /// gone), their interfaces are removed from their cores at once.
    pub(super) fn forget_hosts(&mut self, ids: &[HostId]) {
        let gone: HashSet<HostId> = ids.iter().copied().collect();
        self.unlink_hosts(&gone);
        self.departing.retain(|h| !gone.contains(h));
        for &id in ids {
            let host = self.hosts.remove(id);
            let _ = self.cores[host.core].engine.remove_interface(host.ifindex);
            self.by_iface.remove(host.core, host.ifindex);
        }
    }

    /// How requests, the journal and `show` name a host: the device alone for the one host of
    /// the command line's link, else `device/IPv4`.
    pub(super) fn host_label(&self, id: HostId) -> String {
        let host = &self.hosts[id];
        let device = self.links.get(host.link).map_or("?", |l| l.name.as_str());
        if self.args.iface.is_some() {
            device.to_string()
        } else {
            format!("{device}/{}", host.addrs.ipv4.0)
        }
    }

    /// The link called `name`.
    pub(super) fn link_named(&self, name: &str) -> Option<LinkId> {
        self.links
            .iter()
            .find(|(_, l)| l.name == name)
            .map(|(id, _)| id)
    }

    /// The first host of link `link` (default: the first link of the configuration).
    pub(super) fn default_host(&self, link: Option<LinkId>) -> Option<HostId> {
        let link = match link {
            Some(link) => link,
            None => self
                .topology
                .links
                .iter()
                .find_map(|l| self.link_named(&l.device))?,
        };
        self.links.get(link)?.hosts.first().copied()
    }
}

impl Daemon {
    /// Notes that host `id` joined `group` on its link, where someone needs to know: the
    /// delay tracker (which credits a datagram to the hosts that joined its group), the
    /// stream checker, or the other hosts of a shared LAN (suppression). Otherwise nothing is
    /// kept per group: a one-host link, or hosts behind a snooping switch (`suppression =
    /// false`), without `--delays` or streams checked.
    pub(super) fn note_member(&mut self, id: HostId, group: IpAddr) {
        self.join_epoch += 1;
        let link_id = self.hosts[id].link;
        let link = &mut self.links[link_id];
        if (self.delays.is_on()
            || self.streams.is_checking()
            || (link.suppression && link.hosts.len() > 1))
            && link.members.entry(group).or_default().insert(id)
        {
            self.member_datagrams.member_added(id, link_id, group);
        }
    }

    /// Host `id`'s counters, with the datagrams it was handed with the rest of its groups'
    /// members.
    pub(super) fn host_stats(&self, id: HostId) -> HostStats {
        let host = &self.hosts[id];
        let mut io = host.io.clone();
        io.host_rx_datagrams += self.member_datagrams.of_host(id, host.link);
        io
    }
}
