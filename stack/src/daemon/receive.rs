//! What the links carry in: reading a link's device, answering ARP / ND / echo for its hosts,
//! and handing each packet to the right hosts (unicast: the one host it is addressed to;
//! multicast: every host of the link), the data path (listeners), the delay tracker, the
//! stream checker and the running test. [`Receive`] is this concern's view of the loop's
//! owners: it touches nothing else (no control plane, no journal).

use std::net::{IpAddr, Ipv6Addr};

use log::{debug, info};
use membership::wire::ip::{classify, Classified};
use membership::Instant;

use super::hosts::Hosts;
use super::links::{Fanout, Links, MemberHint, Received};
use super::{Clock, HostId, LinkId, READ_BURST};
use crate::datapath::{Datagram, Sorted};
use crate::delays::DelayTracker;
use crate::framing::ethernet_payload;
use crate::ids::FlowId;
use crate::listeners::Listeners;
use crate::neighbour::{self, NeighbourHost, Neighbours};
use crate::streams::check::{listener_receiver, Admission};
use crate::streams::Streams;
use crate::testrun::TestRuns;
use crate::topology::LinkKind;
use control::stream_header::StreamHeader;

/// Hosts a multicast packet is handed to in one loop turn: about 4 ms at 1 µs a host in a
/// release build; a debug build, ten times slower or more, takes 512 a turn (so the
/// namespace tests, which run debug builds with thousands of hosts, go through the slices).
const FANOUT_SLICE: usize = if cfg!(debug_assertions) { 512 } else { 4096 };

/// The most groups a link keeps [`MemberHint`]s for: past it they are cleared, so that a flood
/// of datagrams to ever new groups cannot grow them.
const MEMBER_HINTS: usize = 4096;

/// Delay tracker records a read burst hands datagrams to at most (then it ends, the link still
/// readable): a datagram goes only to the records it changes (`delays::feed`: the first of each
/// source after a host's report), but a source new to the link, or a General Query answered by
/// 10^4 hosts, makes that every member once (about 0.3 µs each); the bound lets the protocol's
/// timers run between such frames. The test streams' checking does not count here: it costs
/// O(1) per frame whatever the members (`streams::check`).
pub(super) const MEMBER_WORK_PER_BURST: usize = 16 * 1024;

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

/// The hosts of one link as [`neighbour::answer`] asks for them: found through the hosts'
/// index by address, so that a host costs no neighbour table entries of its own.
struct LinkNeighbours<'a> {
    link: LinkId,
    hosts: &'a Hosts,
}

impl Neighbours for LinkNeighbours<'_> {
    fn by_ipv4(&self, addr: std::net::Ipv4Addr) -> Option<NeighbourHost> {
        self.hosts.neighbour(self.link, IpAddr::V4(addr))
    }

    fn by_ipv6(&self, addr: std::net::Ipv6Addr) -> Option<NeighbourHost> {
        self.hosts.neighbour(self.link, IpAddr::V6(addr))
    }
}

/// The group whose members alone would see `packet`, sent to every host of a link; `None`
/// when every host would. A query about one group is sent to that group's address (RFC 9776
/// §4.1.12, RFC 9777 §5.1.15), and a host's network card passes a multicast frame only for
/// the groups its host joined (and all-hosts / all-nodes): a host that does not hold the group
/// never sees the query. Handed to every host of a link instead, each group-specific query
/// cost the loop O(hosts): at 1,000 hosts zapping 20 channels on one bridge port, 59 % of its
/// time went to queries its hosts then ignored. Queries to all-hosts (224.0.0.1, ff02::1), and
/// to the link-local control block 224.0.0.0/24 that hosts never join, still reach everyone,
/// so that every host checks and counts them as before.
fn only_for_members(packet: &[u8]) -> Option<IpAddr> {
    const IGMP_QUERY: u8 = 0x11;
    const MLD_QUERY: u8 = 130;
    match classify(packet).ok()? {
        Classified::Igmp { meta, payload } if payload.first() == Some(&IGMP_QUERY) => {
            let dst = meta.dst;
            (dst.is_multicast() && dst.octets()[..3] != [224, 0, 0]).then_some(IpAddr::V4(dst))
        }
        Classified::Mld { meta, payload } if payload.first() == Some(&MLD_QUERY) => {
            let dst = meta.dst;
            (dst.is_multicast() && dst != Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1))
                .then_some(IpAddr::V6(dst))
        }
        _ => None,
    }
}

/// The owners a received packet may reach.
pub(super) struct Receive<'a> {
    pub links: &'a mut Links,
    pub hosts: &'a mut Hosts,
    pub listeners: &'a mut Listeners,
    pub delays: &'a mut DelayTracker,
    pub streams: &'a mut Streams,
    pub tests: &'a mut TestRuns<HostId, LinkId>,
    pub clock: Clock,
    /// Hosts handed a datagram in this read burst (see [`MEMBER_WORK_PER_BURST`]).
    pub member_work: usize,
}

impl Receive<'_> {
    /// Reads at most [`READ_BURST`] packets from link `id`, then sends what they brought the
    /// listeners (one batch per listener). `Err`: the device failed, why (the link is to be
    /// closed).
    pub fn read_burst(&mut self, id: LinkId, buf: &mut [u8]) -> Result<(), String> {
        let read = self.read_packets(id, buf);
        self.listeners.flush();
        read
    }

    fn read_packets(&mut self, id: LinkId, buf: &mut [u8]) -> Result<(), String> {
        self.member_work = 0;
        for _ in 0..READ_BURST {
            // Datagrams handed to many members (test streams checked at 10^4 hosts a frame)
            // end the burst early: the link stays readable, the timers' answers go out between.
            if self.member_work >= MEMBER_WORK_PER_BURST {
                return Ok(());
            }
            match self.links.recv(id, buf) {
                Received::Frame(n) => {
                    let read_at = self.clock.now_ns();
                    let at = self.links.arrival_stamp(id, &buf[..n], read_at, self.clock);
                    self.handle_frame(id, &buf[..n], at);
                }
                Received::Empty => return Ok(()),
                Received::Failed(why) => return Err(why),
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
                    hosts: self.hosts,
                };
                match neighbour::answer(frame, &neighbours) {
                    neighbour::Answer::Reply(reply) => {
                        link.io.tap_neighbour_answers += 1;
                        self.links.write(id, &reply);
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
        // The core's time of the packet: its arrival, so that a query's answers are drawn from
        // when it came (RFC 3376 §5.2, RFC 3810 §6.2), not from when a busy loop read it. (At
        // its read unless the arrivals are stamped: `Links::arrival_stamp`.)
        let now = Instant::from_millis(at / 1_000_000);
        let (accepted, query) = match audience {
            Audience::One(host) => self.hand_to_host(host, packet, now),
            Audience::Everyone => {
                let only = only_for_members(packet);
                let complete = self.links.members_complete;
                let link = &mut self.links[id];
                // A query about one group, where every holder of it is among its members: to
                // those alone, whatever the link's size (O(members), not O(hosts)).
                let members = only.and_then(|group| link.members.get(&group));
                let to_members = match (only, members) {
                    (Some(_), None) if complete => return, // nobody holds it
                    (Some(_), Some(members)) if complete || members.len() <= FANOUT_SLICE => {
                        Some(members)
                    }
                    _ => None,
                };
                if let Some(members) = to_members {
                    if members.len() <= FANOUT_SLICE && link.fanouts.is_empty() {
                        let members: Vec<HostId> = members.iter().copied().collect();
                        let handed = self.hand_to_holders(&members, only, packet, now);
                        return self.log_handed(id, packet, handed.0, handed.1);
                    }
                }
                if link.hosts.len() > FANOUT_SLICE || !link.fanouts.is_empty() {
                    // Many members: a slice a turn of them (a snapshot: members join meanwhile).
                    let hosts = to_members
                        .filter(|m| m.len() < link.hosts.len())
                        .map(|m| m.iter().copied().collect());
                    link.fanouts.push_back(Fanout {
                        packet: packet.to_vec(),
                        only,
                        hosts,
                        next: 0,
                        now,
                    });
                    self.continue_fanout(id);
                    return;
                }
                let hosts = std::mem::take(&mut self.links[id].hosts);
                let handed = self.hand_to_holders(&hosts, only, packet, now);
                self.links[id].hosts = hosts;
                handed
            }
        };
        self.log_handed(id, packet, accepted, query);
    }

    /// `packet` to each of `hosts` (those holding `only`, if given): (one accepted it, one
    /// heard a query).
    fn hand_to_holders(
        &mut self,
        hosts: &[HostId],
        only: Option<IpAddr>,
        packet: &[u8],
        now: Instant,
    ) -> (bool, bool) {
        let mut handed = (false, false);
        for &host in hosts {
            if let Some(group) = only {
                let h = &self.hosts[host];
                if !self.hosts.core(h.core).engine.is_joined(h.ifindex, group) {
                    continue;
                }
            }
            let (accepted, query) = self.hand_to_host(host, packet, now);
            handed = (handed.0 | accepted, handed.1 | query);
        }
        handed
    }

    /// Whether a host of link `id` holds `group`. Where the link keeps member sets (delays,
    /// suppression), its members are asked; elsewhere the answer is kept per group, so that a
    /// flood of a group costs O(1) a datagram, not O(hosts): a "yes" as the host that held it
    /// (asked again each time), a "no" until the next join anywhere (only a join makes a host
    /// hold a group). The hosts are asked again only when that changed.
    fn link_holds(&mut self, id: LinkId, group: IpAddr) -> bool {
        let hosts = &*self.hosts;
        let holds = |m: &HostId| {
            let h = &hosts[*m];
            hosts.core(h.core).engine.is_joined(h.ifindex, group)
        };
        let link = &self.links[id];
        if let Some(members) = link.members.get(&group) {
            return members.iter().any(holds);
        }
        let epoch = hosts.join_epoch();
        match link.member_hints.get(&group) {
            Some(MemberHint::Host(host)) if hosts.contains(*host) && holds(host) => return true,
            Some(MemberHint::Nobody(at)) if *at == epoch => return false,
            _ => {}
        }
        let found = link.hosts.iter().find(|m| holds(m)).copied();
        let hint = found.map_or(MemberHint::Nobody(epoch), MemberHint::Host);
        let hints = &mut self.links[id].member_hints;
        if hints.len() >= MEMBER_HINTS {
            hints.clear();
        }
        hints.insert(group, hint);
        found.is_some()
    }

    /// Hands the oldest multicast packet still being handed on link `id` to its next
    /// [`FANOUT_SLICE`] hosts. The loop calls it every turn while the link has one.
    pub fn continue_fanout(&mut self, id: LinkId) {
        let Some(mut fanout) = self.links[id].fanouts.pop_front() else {
            return;
        };
        // To the group's members (a query about one group), else every host of the link.
        let (hosts, to_members) = match fanout.hosts.take() {
            Some(members) => (members, true),
            None => (std::mem::take(&mut self.links[id].hosts), false),
        };
        let end = (fanout.next + FANOUT_SLICE).min(hosts.len());
        let slice = hosts.get(fanout.next..end).unwrap_or_default();
        let handed = self.hand_to_holders(slice, fanout.only, &fanout.packet, fanout.now);
        let total = hosts.len();
        if to_members {
            fanout.hosts = Some(hosts);
        } else {
            self.links[id].hosts = hosts;
        }
        if fanout.next == 0 {
            self.log_handed(id, &fanout.packet, handed.0, handed.1);
        }
        fanout.next = end;
        if end < total {
            self.links[id].fanouts.push_front(fanout);
        }
    }

    /// One packet to one host's core: (accepted, a query heard).
    fn hand_to_host(&mut self, host: HostId, packet: &[u8], now: Instant) -> (bool, bool) {
        self.hosts.io_mut(host).host_rx_packets += 1;
        let core = self.hosts[host].core;
        let (engine, ifindex) = self.hosts.engine_of(host);
        let result = engine.handle_packet(ifindex, packet, now);
        let query = self.hosts.drain_events(core, self.links);
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

    /// A multicast datagram read on link `id` at `at`, for the running test: with its stream
    /// header when the test has its own streams. O(1).
    fn test_datagram(&mut self, id: LinkId, datagram: &Datagram<'_>, at: u64) {
        if !self.tests.is_running() {
            return;
        }
        let header =
            StreamHeader::decode(datagram.payload).map(|h| (h.stream, h.sequence, h.sent_ns));
        self.tests
            .stream_datagram(id, datagram.src, datagram.group, header, at);
    }

    /// A multicast datagram read on link `id` at `at`, handed to the members of its group the
    /// frame was for: counted per host, its time given to the delay tracker (unless the host's
    /// filter excludes its source: a wrong source cannot fake a join), and, with a stream
    /// header, checked once for its flow (link, source, group), whose counts are every member's
    /// (`streams::check`). Where the link keeps member sets (delays, streams checked, hosts
    /// that hear each other). O(1) whatever the members (the per-host counter is the
    /// group's, `member_datagrams`), but for a new flow or source (each member once) and the
    /// delay records a host's report left to check (`delays::feed`).
    fn datagram_to_members(
        &mut self,
        id: LinkId,
        datagram: &Datagram<'_>,
        audience: Audience,
        at: u64,
    ) {
        let header = self
            .streams
            .is_checking()
            .then(|| StreamHeader::decode(datagram.payload))
            .flatten();
        let members = self.links[id].members.get(&datagram.group);
        // Interned only for a group some host joined: a flood of datagrams to ever new
        // groups makes no flows.
        let joined_by_some = members.is_some_and(|m| !m.is_empty());
        // A frame for one host's MAC on a shared link is not its flow's: checked only when it
        // reaches every member.
        let reaches_all = match audience {
            Audience::Everyone => true,
            Audience::One(_) => members.is_none_or(|m| m.iter().all(|&h| audience.admits(h))),
        };
        if let Some(header) = header.filter(|_| joined_by_some && reaches_all) {
            let flow = self.stream_flow(id, datagram, at);
            // What each `listen` client receives, checked against its own filter: a client
            // that asked INCLUDE {S1} counts S2's datagrams as leaks even when another join of
            // its host admits S2.
            let listeners: Vec<(u32, Admission)> = self
                .listeners
                .reached(id, datagram)
                .map(|(listener, admitted)| {
                    let admission = if admitted {
                        Admission::Admitted
                    } else {
                        Admission::Excluded
                    };
                    (listener_receiver(listener.as_u64()), admission)
                })
                .collect();
            self.streams
                .receivers
                .frame(flow, &header, datagram.payload.len(), at, &listeners);
        }
        if joined_by_some {
            match audience {
                Audience::Everyone => self.hosts.datagram_for_every_member(id, datagram.group),
                Audience::One(host) => {
                    let members = self.links[id].members.get(&datagram.group);
                    if members.is_some_and(|m| m.contains(&host)) {
                        self.hosts.io_mut(host).host_rx_datagrams += 1;
                    }
                }
            }
        }
        if joined_by_some && self.delays.is_on() {
            self.delay_datagram(id, datagram, audience, at);
        }
        if header.is_some() && !joined_by_some {
            self.streams.receivers.not_joined(id);
        }
    }

    /// The delay tracker's share of a datagram for the members of its group on link `id`:
    /// for every member, only the records it changes (`delays::feed`); for one host, its
    /// record. Only the right (S,G) measures: a source the filter excludes neither makes a
    /// join nor, after the leave, delays it.
    fn delay_datagram(&mut self, id: LinkId, datagram: &Datagram<'_>, audience: Audience, at: u64) {
        let (delays, links, hosts) = (&mut *self.delays, &*self.links, &*self.hosts);
        let (group, source) = (datagram.group, datagram.src);
        let admits = |host: HostId, number: u32| {
            hosts.get(host).is_some_and(|h| {
                h.delay_number == number
                    && hosts
                        .core(h.core)
                        .engine
                        .admits_source(h.ifindex, group, source)
                        == Some(true)
            })
        };
        match audience {
            Audience::Everyone => {
                let members = || {
                    links[id]
                        .members
                        .get(&group)
                        .into_iter()
                        .flatten()
                        .map(|&h| (h, hosts[h].delay_number))
                };
                let handed = delays.datagram_for_members(id, group, source, at, members, admits);
                self.member_work = self.member_work.saturating_add(handed);
            }
            Audience::One(host) => {
                let number = hosts[host].delay_number;
                delays.datagram(number, group, source, admits(host, number), at);
            }
        }
    }

    /// What host `host`'s filter says of `source` in `group`.
    fn admission(&self, host: HostId, group: IpAddr, source: IpAddr) -> Admission {
        let h = &self.hosts[host];
        Admission::of(
            self.hosts
                .core(h.core)
                .engine
                .admits_source(h.ifindex, group, source),
        )
    }

    /// The flow of `datagram` on link `id`; a new one gives each member of its group its
    /// reception (once per flow: O(the group's members)).
    fn stream_flow(&mut self, id: LinkId, datagram: &Datagram<'_>, at: u64) -> FlowId {
        let (flow, new) = self
            .streams
            .receivers
            .flow(id, datagram.src, datagram.group);
        if new {
            if let Some(members) = self.links[id].members.get(&datagram.group) {
                for &host in members {
                    let admission = self.admission(host, datagram.group, datagram.src);
                    let number = self.hosts[host].delay_number;
                    self.streams.receivers.classify(number, flow, admission, at);
                }
            }
        }
        flow
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
    use std::net::Ipv4Addr;

    use membership::wire::ip::{build_ipv4, build_ipv6};

    use super::*;

    /// An IGMPv3 query (12 bytes, no sources) about `group`, to `dst`.
    fn igmp_query(group: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
        let mut igmp = vec![0x11, 100, 0, 0];
        igmp.extend_from_slice(&group.octets());
        igmp.extend_from_slice(&[2, 125, 0, 0]);
        build_ipv4(Ipv4Addr::new(10, 99, 0, 1), dst, &igmp)
    }

    /// An MLDv2 query (28 bytes, no sources) about `group`, to `dst`.
    fn mld_query(group: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
        let mut mld = vec![130, 0, 0, 0, 0x27, 0x10, 0, 0];
        mld.extend_from_slice(&group.octets());
        mld.extend_from_slice(&[2, 125, 0, 0]);
        build_ipv6("fe80::1".parse().unwrap(), dst, &mld)
    }

    #[test]
    fn a_query_about_one_group_is_for_its_members_and_a_general_one_for_everyone() {
        let g4 = Ipv4Addr::new(239, 1, 2, 3);
        let all_hosts = Ipv4Addr::new(224, 0, 0, 1);
        assert_eq!(only_for_members(&igmp_query(g4, g4)), Some(IpAddr::V4(g4)));
        assert_eq!(
            only_for_members(&igmp_query(Ipv4Addr::UNSPECIFIED, all_hosts)),
            None
        );
        // To all-hosts or the control block: every host checks (and counts) it as before.
        assert_eq!(only_for_members(&igmp_query(g4, all_hosts)), None);
        let control = Ipv4Addr::new(224, 0, 0, 22);
        assert_eq!(only_for_members(&igmp_query(control, control)), None);
        let g6: Ipv6Addr = "ff0e::1:2".parse().unwrap();
        let all_nodes: Ipv6Addr = "ff02::1".parse().unwrap();
        assert_eq!(only_for_members(&mld_query(g6, g6)), Some(IpAddr::V6(g6)));
        assert_eq!(
            only_for_members(&mld_query(Ipv6Addr::UNSPECIFIED, all_nodes)),
            None
        );
        // Not a query: a report to the group is everyone's (suppression), as before.
        let mut report = igmp_query(g4, g4);
        report[24] = 0x16;
        assert_eq!(only_for_members(&report), None);
        // Garbage is everyone's: each host's core counts why it is dropped.
        assert_eq!(only_for_members(&[0x45, 0, 0]), None);
    }
}
