//! Links: one TUN or TAP device each, all served by the one loop. Reading a link, handing
//! what it carries to the right hosts (unicast: the one host it is addressed to; multicast:
//! every host of the link), answering ARP / ND / echo for the hosts, and closing a link whose
//! device went away while the others go on.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

use anyhow::{bail, Context as _};
use control::protocol::LinkInfo;
use log::{debug, error, info, warn};
use membership::{Event, Instant};
use mio::unix::SourceFd;
use mio::Interest;
use tun_tap::{Iface, Mode};

use super::{
    CoreId, Daemon, EmuHost, HostId, HostsByAddr, HostsByMac, IoStats, LinkId, READ_BURST,
};
use crate::datapath::Sorted;
use crate::framing::ethernet_payload;
use crate::ids::Table;
use crate::neighbour::{self, NeighbourHost, Neighbours};
use crate::tokens::Source;
use crate::topology::{LinkKind, LinkSpec};

/// One device and the hosts on it.
pub(super) struct Link {
    pub device: Iface,
    pub name: String,
    pub kind: LinkKind,
    /// The kernel's index of the device, to notice that it was deleted.
    pub ifindex: u32,
    /// v1/v2 reports one host sends are heard by the others (a shared LAN).
    pub suppression: bool,
    pub io: IoStats,
    /// The live hosts, in the order of the configuration: the first is the default one.
    pub hosts: Vec<HostId>,
    /// Unicast frames find their host by MAC (TAP).
    pub by_mac: HostsByMac,
    /// The hosts that joined each group since the start: the datagrams of a group are
    /// attributed to these (delays), and a report one of them sends is heard by the others.
    pub members: HashMap<IpAddr, HashSet<HostId>>,
    /// The device may hold packets (mio is edge-triggered: after a capped burst it may still
    /// hold some without a new event).
    pub readable: bool,
    /// Multicast packets still being handed to the hosts, oldest first.
    pub fanouts: VecDeque<Fanout>,
    /// Whether a host holds a group, as last found for a datagram no listener took (see
    /// [`Daemon::link_holds`]).
    member_hints: HashMap<IpAddr, MemberHint>,
}

/// What [`Daemon::link_holds`] last found for a group.
#[derive(Clone, Copy)]
enum MemberHint {
    /// This host held it (asked again each time).
    Host(HostId),
    /// Nobody, as of this join epoch (`Daemon::join_epoch`).
    Nobody(u64),
}

/// The most groups a link keeps [`MemberHint`]s for: past it they are cleared, so that a flood
/// of datagrams to ever new groups cannot grow them.
const MEMBER_HINTS: usize = 4096;

/// A multicast packet being handed to the hosts of a link with more than [`FANOUT_SLICE`] of
/// them: a General Query reaching a million hosts is a million core calls (a second of the
/// loop), so they are spread over loop turns, [`FANOUT_SLICE`] a turn, and the control socket
/// and the devices are served in between. Every host gets the packet with the time it was
/// read, so its timers run from the query (its answer is due within the query's Max Resp
/// Time), not from its turn. Packets are handed on in the order they were read.
pub(super) struct Fanout {
    packet: Vec<u8>,
    /// The index in the link's host list of the next host to hand it to.
    next: usize,
    /// When it was read.
    now: Instant,
}

/// The hosts of one link as [`neighbour::answer`] asks for them: found through the daemon's
/// index by address, so that a host costs no neighbour table entries of its own.
struct LinkNeighbours<'a> {
    link: LinkId,
    hosts: &'a Table<HostId, EmuHost>,
    by_addr: &'a HostsByAddr,
    shared_addrs: &'a HashMap<(LinkId, IpAddr), HostId>,
}

impl LinkNeighbours<'_> {
    fn find(&self, addr: IpAddr) -> Option<NeighbourHost> {
        let id = self
            .shared_addrs
            .get(&(self.link, addr))
            .copied()
            .or_else(|| self.by_addr.get(&addr))?;
        let host = self.hosts.get(id)?;
        if host.link != self.link || host.retired {
            return None;
        }
        Some(NeighbourHost {
            mac: host.addrs.mac?,
            ipv4: host.addrs.ipv4.0,
            ipv6_ll: host.addrs.ipv6_ll,
        })
    }
}

impl Neighbours for LinkNeighbours<'_> {
    fn by_ipv4(&self, addr: std::net::Ipv4Addr) -> Option<NeighbourHost> {
        self.find(IpAddr::V4(addr))
    }

    fn by_ipv6(&self, addr: std::net::Ipv6Addr) -> Option<NeighbourHost> {
        self.find(IpAddr::V6(addr))
    }
}

/// Hosts a multicast packet is handed to in one loop turn: about 4 ms at 1 µs a host in a
/// release build; a debug build, ten times slower or more, takes 512 a turn (so the
/// namespace tests, which run debug builds with thousands of hosts, go through the slices).
const FANOUT_SLICE: usize = if cfg!(debug_assertions) { 512 } else { 4096 };

impl Link {
    /// The link and its device's counters, as `show` and `/api/links` list it.
    pub fn info(&self) -> LinkInfo {
        LinkInfo {
            iface: self.name.clone(),
            device: self.kind_name().to_lowercase(),
            ifindex: self.ifindex,
            suppression: self.suppression,
            hosts: self.hosts.len() as u64,
            stats: self
                .io
                .described()
                .into_iter()
                .filter(|(name, _, _)| !name.starts_with("control_"))
                .map(|(name, value, _)| (name.to_string(), value))
                .collect(),
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            LinkKind::Tun => "TUN",
            LinkKind::Tap => "TAP",
        }
    }
}

/// Up to this many hosts, each one's mode changes are logged at info.
const MODE_LOG_HOSTS: usize = 16;

/// Which hosts of a link a frame is for.
#[derive(Clone, Copy)]
pub(super) enum Audience {
    Everyone,
    One(HostId),
}

impl Audience {
    pub(super) fn admits(self, host: HostId) -> bool {
        match self {
            Audience::Everyone => true,
            Audience::One(one) => one == host,
        }
    }
}

impl Daemon {
    /// Opens the device of `spec`, registers it with the loop and creates its hosts.
    pub(super) fn open_link(&mut self, spec: &LinkSpec) -> anyhow::Result<LinkId> {
        let (mode, kind) = match spec.kind {
            LinkKind::Tun => (Mode::Tun, "TUN"),
            LinkKind::Tap => (Mode::Tap, "TAP"),
        };
        let device = Iface::without_packet_info(&spec.device, mode)
            .with_context(|| format!("cannot attach to {kind} device {}", spec.device))?;
        device
            .set_non_blocking()
            .with_context(|| format!("cannot make the {kind} device non-blocking"))?;
        let name = device.name().to_string();
        let ifindex = super::hosts::if_nametoindex(&name)
            .with_context(|| format!("{kind} device {name} has no interface index"))?;
        let id = self.links.next_id();
        self.registry.register(
            &mut SourceFd(&device.as_raw_fd()),
            Source::Link(id).token(),
            Interest::READABLE,
        )?;
        let inserted = self.links.insert(Link {
            device,
            name,
            kind: spec.kind,
            ifindex,
            suppression: spec.suppression,
            io: IoStats::default(),
            hosts: Vec::with_capacity(spec.hosts.len()),
            by_mac: HostsByMac::default(),
            members: HashMap::new(),
            fanouts: VecDeque::new(),
            member_hints: HashMap::new(),
            // Packets may be waiting already (a device reopened by a reload).
            readable: true,
        });
        debug_assert_eq!(
            inserted, id,
            "the token was registered for the key the link got"
        );
        // Sized once: grown by doubling, the vectors freed on the way stay in the RSS.
        self.links[id].hosts.reserve_exact(spec.hosts.len());
        for (n, host) in spec.hosts.iter().enumerate() {
            let kernel = (n == 0).then_some(ifindex);
            let host = self.add_host(id, *host, kernel)?;
            self.links[id].hosts.push(host);
        }
        if spec.hosts.len() > 1 {
            info!(
                "{kind} {} (ifindex {ifindex}): {} hosts, suppression {}",
                spec.device,
                spec.hosts.len(),
                spec.suppression
            );
        }
        Ok(id)
    }

    /// Closes a link: its hosts are retired (their state is gone with the device), the device
    /// is closed. The daemon ends when it was the last link.
    pub(super) fn close_link(&mut self, id: LinkId, why: &str) -> anyhow::Result<()> {
        let link = self.links.remove(id);
        self.streams.link_closed(id);
        let _ = self
            .registry
            .deregister(&mut SourceFd(&link.device.as_raw_fd()));
        self.io.add(&link.io);
        // Its live hosts, and those removed earlier whose leaves are still going out.
        let mut retired = link.hosts.clone();
        retired.extend(
            self.departing
                .iter()
                .copied()
                .filter(|&h| self.hosts[h].link == id),
        );
        self.forget_hosts(&retired);
        self.topology.links.retain(|l| l.device != link.name);
        if self.links.is_empty() {
            bail!("{why}");
        }
        error!("{why}: the link is closed, the other links go on");
        Ok(())
    }

    /// Reads at most [`READ_BURST`] packets from link `id`, then sends what they brought the
    /// listeners (one batch per listener).
    pub(super) fn read_burst(&mut self, id: LinkId, buf: &mut [u8]) -> anyhow::Result<()> {
        let read = self.read_packets(id, buf);
        self.listeners.flush();
        read
    }

    fn read_packets(&mut self, id: LinkId, buf: &mut [u8]) -> anyhow::Result<()> {
        self.member_work = 0;
        for _ in 0..READ_BURST {
            // Datagrams handed to many members (test streams checked at 10^4 hosts a frame)
            // end the burst early: the link stays readable, the timers' answers go out between.
            if self.member_work >= super::streams::MEMBER_WORK_PER_BURST {
                return Ok(());
            }
            let link = &self.links[id];
            match link.device.recv(buf) {
                Ok(n) => {
                    let at = self.now_ns();
                    self.handle_frame(id, &buf[..n], at);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.links[id].readable = false;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let why = format!(
                        "{} device {} failed (deleted?): {e}",
                        link.kind_name(),
                        link.name
                    );
                    return self.close_link(id, &why);
                }
            }
        }
        Ok(())
    }

    /// The device is deleted when its name is gone or names another interface. Only ENODEV
    /// counts: `if_nametoindex` needs a socket, and running out of descriptors must not be
    /// taken for a deleted device (a read on a deleted TUN fails with EBADFD anyway).
    pub(super) fn check_devices(&mut self) -> anyhow::Result<()> {
        let ids: Vec<LinkId> = self.links.iter().map(|(id, _)| id).collect();
        for id in ids {
            let link = &self.links[id];
            let gone = match super::hosts::if_nametoindex(&link.name) {
                Some(index) if index == link.ifindex => None,
                Some(_) => Some(format!(
                    "{} device {} has gone away (the name is another device now)",
                    link.kind_name(),
                    link.name
                )),
                None if io::Error::last_os_error().raw_os_error() == Some(libc::ENODEV) => Some(
                    format!("{} device {} has gone away", link.kind_name(), link.name),
                ),
                None => {
                    warn!(
                        "cannot check {} device {}: {}",
                        link.kind_name(),
                        link.name,
                        io::Error::last_os_error()
                    );
                    None
                }
            };
            if let Some(why) = gone {
                self.close_link(id, &why)?;
            }
        }
        Ok(())
    }

    /// One frame (TAP) or packet (TUN) read from link `id` at `at` (ns).
    fn handle_frame(&mut self, id: LinkId, frame: &[u8], at: u64) {
        let link = &mut self.links[id];
        link.io.tun_rx_packets += 1;
        let (packet, audience) = match link.kind {
            LinkKind::Tun => match link.hosts.first() {
                Some(&host) => (frame, Audience::One(host)),
                None => return,
            },
            LinkKind::Tap => {
                // The hosts answer for their own addresses before anything else.
                let neighbours = LinkNeighbours {
                    link: id,
                    hosts: &self.hosts,
                    by_addr: &self.by_addr,
                    shared_addrs: &self.shared_addrs,
                };
                match neighbour::answer(frame, &neighbours) {
                    neighbour::Answer::Reply(reply) => {
                        link.io.tap_neighbour_answers += 1;
                        self.write_frame(id, &reply);
                        return;
                    }
                    neighbour::Answer::Dropped(reason) => {
                        link.io.tap_neighbour_drops += 1;
                        debug!("{}: neighbour frame dropped: {}", link.name, reason.name());
                        return;
                    }
                    neighbour::Answer::NotNeighbour => {}
                }
                let (dst, packet) = match ethernet_payload(frame) {
                    Ok(split) => split,
                    Err(_) => {
                        link.io.tap_rx_truncated += 1;
                        return;
                    }
                };
                let audience = if dst.is_multicast() {
                    Audience::Everyone
                } else {
                    match link.by_mac.get(dst) {
                        Some(host) => Audience::One(host),
                        None => {
                            link.io.tap_rx_not_for_us += 1;
                            return;
                        }
                    }
                };
                match packet {
                    Ok(packet) => (packet, audience),
                    Err(_) => {
                        link.io.tap_rx_other_ethertype += 1;
                        return;
                    }
                }
            }
        };
        self.handle_packet(id, packet, audience, at);
    }

    fn handle_packet(&mut self, id: LinkId, packet: &[u8], audience: Audience, at: u64) {
        // Multicast UDP is the data path's; the core sees (and counts) everything else.
        match crate::datapath::sort(packet) {
            Sorted::Datagram(datagram) => {
                self.test_datagram(id, &datagram, at);
                self.datagram_to_members(id, &datagram, audience, at);
                // Asked only when no listener takes the datagram, to count it under the right
                // reason.
                let joined = !self.listeners.takes(id, datagram.group)
                    && self.link_holds(id, datagram.group);
                return self.listeners.deliver(id, &datagram, || joined);
            }
            Sorted::Dropped(reason) => return self.listeners.dropped(reason),
            Sorted::NotMulticastUdp => {}
        }
        let now = self.now();
        let (accepted, query) = match audience {
            Audience::One(host) => self.hand_to_host(host, packet, now),
            Audience::Everyone => {
                let link = &mut self.links[id];
                if link.hosts.len() > FANOUT_SLICE || !link.fanouts.is_empty() {
                    link.fanouts.push_back(Fanout {
                        packet: packet.to_vec(),
                        next: 0,
                        now,
                    });
                    self.continue_fanout(id);
                    return;
                }
                let hosts = std::mem::take(&mut self.links[id].hosts);
                let mut handed = (false, false);
                for &host in &hosts {
                    let (accepted, query) = self.hand_to_host(host, packet, now);
                    handed = (handed.0 | accepted, handed.1 | query);
                }
                self.links[id].hosts = hosts;
                handed
            }
        };
        self.log_handed(id, packet, accepted, query);
    }

    /// Whether a host of link `id` holds `group`. Where the link keeps member sets (delays,
    /// suppression), its members are asked; elsewhere the answer is kept per group, so that a
    /// flood of a group costs O(1) a datagram, not O(hosts): a "yes" as the host that held it
    /// (asked again each time), a "no" until the next join anywhere (only a join makes a host
    /// hold a group). The hosts are asked again only when that changed.
    fn link_holds(&mut self, id: LinkId, group: IpAddr) -> bool {
        let (hosts, cores) = (&self.hosts, &self.cores);
        let holds = |m: &HostId| {
            let h = &hosts[*m];
            cores[h.core].engine.is_joined(h.ifindex, group)
        };
        let link = &self.links[id];
        if let Some(members) = link.members.get(&group) {
            return members.iter().any(holds);
        }
        match link.member_hints.get(&group) {
            Some(MemberHint::Host(host)) if hosts.contains(*host) && holds(host) => return true,
            Some(MemberHint::Nobody(epoch)) if *epoch == self.join_epoch => return false,
            _ => {}
        }
        let found = link.hosts.iter().find(|m| holds(m)).copied();
        let hint = found.map_or(MemberHint::Nobody(self.join_epoch), MemberHint::Host);
        let hints = &mut self.links[id].member_hints;
        if hints.len() >= MEMBER_HINTS {
            hints.clear();
        }
        hints.insert(group, hint);
        found.is_some()
    }

    /// Hands the oldest multicast packet still being handed on link `id` to its next
    /// [`FANOUT_SLICE`] hosts. The loop calls it every turn while the link has one.
    pub(super) fn continue_fanout(&mut self, id: LinkId) {
        let Some(mut fanout) = self.links[id].fanouts.pop_front() else {
            return;
        };
        let hosts = std::mem::take(&mut self.links[id].hosts);
        let end = (fanout.next + FANOUT_SLICE).min(hosts.len());
        let mut handed = (false, false);
        for &host in hosts.get(fanout.next..end).unwrap_or_default() {
            let (accepted, query) = self.hand_to_host(host, &fanout.packet, fanout.now);
            handed = (handed.0 | accepted, handed.1 | query);
        }
        self.links[id].hosts = hosts;
        if fanout.next == 0 {
            self.log_handed(id, &fanout.packet, handed.0, handed.1);
        }
        fanout.next = end;
        if end < self.links[id].hosts.len() {
            self.links[id].fanouts.push_front(fanout);
        }
    }

    /// One packet to one host's core: (accepted, a query heard).
    fn hand_to_host(&mut self, host: HostId, packet: &[u8], now: Instant) -> (bool, bool) {
        let h = &mut self.hosts[host];
        h.io.host_rx_packets += 1;
        let (core, ifindex) = (h.core, h.ifindex);
        let result = self.cores[core].engine.handle_packet(ifindex, packet, now);
        let mut query = false;
        while let Some(event) = self.cores[core].engine.poll_event() {
            query |= matches!(event, Event::QueryHeard { .. });
            self.log_event(core, &event);
        }
        match result {
            Ok(()) => (true, query),
            Err(reason) => {
                debug!(
                    "dropped {} bytes from {}: {}",
                    packet.len(),
                    source_of(packet),
                    reason.describe()
                );
                (false, query)
            }
        }
    }

    fn log_handed(&self, id: LinkId, packet: &[u8], accepted: bool, query: bool) {
        if query {
            info!(
                "query on {} from {}",
                self.links[id].name,
                source_of(packet)
            );
        } else if accepted {
            debug!("accepted {} bytes from {}", packet.len(), source_of(packet));
        }
    }

    /// What the core reports having done, at debug level (mode changes at info).
    /// Mode changes at info while there are few hosts (one line per host otherwise).
    pub(super) fn log_event(&self, core: CoreId, event: &Event) {
        match event {
            Event::CompatibilityModeChanged { from, to, iface } => {
                let label = self
                    .by_iface
                    .get(core, *iface)
                    .map_or_else(|| iface.to_string(), |h| self.host_label(h));
                if self.hosts.len() <= MODE_LOG_HOSTS {
                    info!("{label}: {from} -> {to} (compatibility mode)")
                } else {
                    debug!("{label}: {from} -> {to} (compatibility mode)")
                }
            }
            other => debug!("{other:?}"),
        }
    }

    /// Writes one frame to link `id`; false when it was lost.
    pub(super) fn write_frame(&mut self, id: LinkId, frame: &[u8]) -> bool {
        self.links[id].write(frame)
    }
}

impl Link {
    /// Writes one frame to the device; false when it was lost (counted).
    pub fn write(&mut self, frame: &[u8]) -> bool {
        let link = self;
        match link.device.send(frame) {
            Ok(_) => {
                link.io.tun_tx_packets += 1;
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                link.io.tun_tx_errors += 1;
                warn!(
                    "{} device {} is full: a packet was dropped",
                    link.kind_name(),
                    link.name
                );
                false
            }
            // EIO: the link is down (a device we created, not yet set up on the kernel
            // side). Like a host on a dead link, we lose the packet and carry on.
            Err(e) if e.raw_os_error() == Some(libc::EIO) => {
                link.io.tun_tx_errors += 1;
                link.io.tun_tx_link_down += 1;
                if link.io.tun_tx_link_down == 1 {
                    warn!(
                        "{} device {} is down: packets are dropped until it is up",
                        link.kind_name(),
                        link.name
                    );
                }
                false
            }
            Err(e) => {
                link.io.tun_tx_errors += 1;
                warn!(
                    "cannot write to {} device {}: {e}",
                    link.kind_name(),
                    link.name
                );
                false
            }
        }
    }
}

/// The source address of an IP packet, for log lines.
fn source_of(packet: &[u8]) -> String {
    match packet.first().map(|b| b >> 4) {
        Some(4) if packet.len() >= 20 => {
            std::net::Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]).to_string()
        }
        Some(6) if packet.len() >= 24 => {
            let bytes: [u8; 16] = packet[8..24].try_into().expect("16 bytes");
            std::net::Ipv6Addr::from(bytes).to_string()
        }
        _ => "?".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::framing::Mac;
    use crate::ids::Id;
    use crate::topology::HostAddrs;

    fn host(link: LinkId, last: u8) -> EmuHost {
        let mac = Mac([2, 0, 10, 99, 0, last]);
        EmuHost {
            addrs: HostAddrs {
                mac: Some(mac),
                ipv4: (Ipv4Addr::new(10, 99, 0, 10), 24),
                ipv6_ll: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, u16::from(last)),
            },
            core: CoreId::from_index(0),
            ifindex: 1,
            link,
            retired: false,
            delay_number: u32::from(last),
            io: Default::default(),
        }
    }

    /// Two links each with a host at 10.99.0.10: each link's neighbour answers find its own.
    #[test]
    fn each_link_finds_its_own_host_of_a_shared_address() {
        let (a, b) = (LinkId::from_index(0), LinkId::from_index(1));
        let mut hosts = Table::new();
        let on_a = hosts.insert(host(a, 1));
        let on_b = hosts.insert(host(b, 2));
        let shared = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 10));
        // What add_host leaves: the later host in by_addr, both by link in shared_addrs.
        let mut by_addr = HostsByAddr::default();
        for (addr, host) in [
            (shared, on_b),
            (IpAddr::V6(hosts[on_a].addrs.ipv6_ll), on_a),
            (IpAddr::V6(hosts[on_b].addrs.ipv6_ll), on_b),
        ] {
            by_addr.insert(addr, host);
        }
        let shared_addrs = HashMap::from([((a, shared), on_a), ((b, shared), on_b)]);
        let view = |link| LinkNeighbours {
            link,
            hosts: &hosts,
            by_addr: &by_addr,
            shared_addrs: &shared_addrs,
        };
        let v4 = Ipv4Addr::new(10, 99, 0, 10);
        assert_eq!(view(a).by_ipv4(v4).unwrap().mac, Mac([2, 0, 10, 99, 0, 1]));
        assert_eq!(view(b).by_ipv4(v4).unwrap().mac, Mac([2, 0, 10, 99, 0, 2]));
        // A link-local is one host's: the other link does not answer for it.
        let ll_a = hosts[on_a].addrs.ipv6_ll;
        assert!(view(a).by_ipv6(ll_a).is_some());
        assert!(view(b).by_ipv6(ll_a).is_none());
        assert!(view(a).by_ipv4(Ipv4Addr::new(10, 99, 0, 11)).is_none());
    }
}
