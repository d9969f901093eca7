//! ARP, Neighbour Discovery and ping answers for the emulated hosts of a TAP link, so that
//! switches and routers see real stations: each host answers for its own addresses only.
//!
//! Pure: [`answer`] takes one received Ethernet frame and the link's hosts ([`Neighbours`]), and
//! returns the one frame to send back, says the frame is not for this layer (IGMP, MLD, data:
//! hand it on), or names why it was dropped. Echo and NS carried behind IPv6 extension
//! headers, and fragmented pings, are not answered: real stations on a multicast test bed
//! do not send them, and answering them would need reassembly.

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::checksum::Sum16BitWords;
use etherparse::icmpv6::NeighborAdvertisementHeader;
use etherparse::{
    ArpEthIpv4Packet, ArpOperation, ArpPacket, EtherType, Ethernet2Header, Icmpv6Type, IpNumber,
    Ipv4Header, Ipv6Header, PacketBuilder,
};

use crate::framing::Mac;

/// One host's station addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighbourHost {
    pub mac: Mac,
    pub ipv4: Ipv4Addr,
    pub ipv6_ll: Ipv6Addr,
}

/// The hosts of one link, found by address in O(1): what [`answer`] asks. The daemon answers
/// from its own index of hosts by address, so that a host costs no table of its own here.
pub trait Neighbours {
    /// The host of this link with this IPv4 address.
    fn by_ipv4(&self, addr: Ipv4Addr) -> Option<NeighbourHost>;
    /// The host of this link with this IPv6 link-local address.
    fn by_ipv6(&self, addr: Ipv6Addr) -> Option<NeighbourHost>;
}

/// What to do with a received frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Send this frame: the answer of one of our hosts.
    Reply(Vec<u8>),
    /// Not ARP, NS or an echo request: the frame goes on to the rest of the link layer.
    NotNeighbour,
    /// Addressed to this layer but not answered, for this reason.
    Dropped(NeighbourDrop),
}

/// Why an ARP, NS or echo request was not answered. Each drop has exactly one reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NeighbourDrop {
    /// Shorter than its headers or than the lengths they declare.
    Truncated,
    /// ARP for another hardware or protocol than Ethernet and IPv4.
    ArpNotEthernetIpv4,
    /// An ARP reply or other operation: a host only answers requests.
    ArpNotRequest,
    /// A gratuitous ARP (sender and target address equal): an announcement, not a question.
    ArpGratuitous,
    /// The IPv4 header checksum is wrong.
    BadIpv4Checksum,
    /// The ICMP or ICMPv6 checksum is wrong.
    BadIcmpChecksum,
    /// An IPv4 fragment: not reassembled.
    Fragment,
    /// An NS whose hop limit is not 255 (RFC 4861 §7.1.1: it may come from off-link).
    NsHopLimit,
    /// An NS failing another check of RFC 4861 §7.1.1 (code, length, multicast target,
    /// a DAD probe not to a solicited-node address or with a source link-layer option, an
    /// option of length 0), or sent to an address that is neither the target nor its
    /// solicited-node address.
    NsInvalid,
    /// Asks for, or is sent to, an address none of our hosts has.
    NotOurAddress,
    /// Unicast to a MAC other than that of the host whose address it asks for.
    NotOurMac,
}

impl NeighbourDrop {
    /// Every reason, for counters indexed by `self as usize`.
    pub const ALL: [NeighbourDrop; 11] = [
        NeighbourDrop::Truncated,
        NeighbourDrop::ArpNotEthernetIpv4,
        NeighbourDrop::ArpNotRequest,
        NeighbourDrop::ArpGratuitous,
        NeighbourDrop::BadIpv4Checksum,
        NeighbourDrop::BadIcmpChecksum,
        NeighbourDrop::Fragment,
        NeighbourDrop::NsHopLimit,
        NeighbourDrop::NsInvalid,
        NeighbourDrop::NotOurAddress,
        NeighbourDrop::NotOurMac,
    ];

    /// The counter's name in logs and `tunmcastctl` output.
    pub fn name(self) -> &'static str {
        match self {
            NeighbourDrop::Truncated => "truncated",
            NeighbourDrop::ArpNotEthernetIpv4 => "arp_not_ethernet_ipv4",
            NeighbourDrop::ArpNotRequest => "arp_not_request",
            NeighbourDrop::ArpGratuitous => "arp_gratuitous",
            NeighbourDrop::BadIpv4Checksum => "bad_ipv4_checksum",
            NeighbourDrop::BadIcmpChecksum => "bad_icmp_checksum",
            NeighbourDrop::Fragment => "fragment",
            NeighbourDrop::NsHopLimit => "ns_hop_limit",
            NeighbourDrop::NsInvalid => "ns_invalid",
            NeighbourDrop::NotOurAddress => "not_our_address",
            NeighbourDrop::NotOurMac => "not_our_mac",
        }
    }
}

/// Drops counted per reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NeighbourDropCounts([u64; NeighbourDrop::ALL.len()]);

impl NeighbourDropCounts {
    pub fn count(&mut self, reason: NeighbourDrop) {
        self.0[reason as usize] += 1;
    }

    pub fn get(&self, reason: NeighbourDrop) -> u64 {
        self.0[reason as usize]
    }

    /// (name, count) of every reason, for display.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        NeighbourDrop::ALL.iter().map(|r| (r.name(), self.get(*r)))
    }
}

const BROADCAST: [u8; 6] = [0xff; 6];
const ICMPV4_ECHO_REQUEST: u8 = 8;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_NEIGHBOUR_SOLICITATION: u8 = 135;
/// RFC 4861 §4.6.1.
const SOURCE_LINK_LAYER_ADDRESS: u8 = 1;
const TARGET_LINK_LAYER_ADDRESS: u8 = 2;
/// What our hosts put in the TTL / hop limit of an echo reply (Linux's default).
const REPLY_HOP_LIMIT: u8 = 64;
/// RFC 4861 §7.1.1 and §7.1.2: ND messages are sent and accepted with hop limit 255 only.
const ND_HOP_LIMIT: u8 = 255;

/// The answer of our hosts to `frame`, received on a TAP link whose hosts are `hosts`.
pub fn answer(frame: &[u8], hosts: &impl Neighbours) -> Answer {
    let Ok((ethernet, payload)) = Ethernet2Header::from_slice(frame) else {
        return Answer::NotNeighbour;
    };
    let result = match ethernet.ether_type {
        EtherType::ARP => answer_arp(&ethernet, payload, hosts),
        EtherType::IPV4 => answer_ipv4(&ethernet, payload, hosts),
        EtherType::IPV6 => answer_ipv6(&ethernet, payload, hosts),
        _ => Ok(None),
    };
    match result {
        Ok(Some(reply)) => Answer::Reply(reply),
        Ok(None) => Answer::NotNeighbour,
        Err(reason) => Answer::Dropped(reason),
    }
}

type Handled = Result<Option<Vec<u8>>, NeighbourDrop>;

/// The frame's destination MAC must be the host's own, or broadcast / multicast when `group`.
fn check_destination_mac(
    ethernet: &Ethernet2Header,
    host: &NeighbourHost,
    group: bool,
) -> Result<(), NeighbourDrop> {
    let to_group = Mac(ethernet.destination).is_multicast();
    if ethernet.destination == host.mac.0 || (group && to_group) {
        Ok(())
    } else {
        Err(NeighbourDrop::NotOurMac)
    }
}

/// RFC 826: a request for one of our hosts' IPv4 addresses gets that host's MAC.
fn answer_arp(ethernet: &Ethernet2Header, payload: &[u8], hosts: &impl Neighbours) -> Handled {
    let arp = ArpPacket::from_slice(payload).map_err(|_| NeighbourDrop::Truncated)?;
    let arp = arp
        .try_eth_ipv4()
        .map_err(|_| NeighbourDrop::ArpNotEthernetIpv4)?;
    if arp.operation != ArpOperation::REQUEST {
        return Err(NeighbourDrop::ArpNotRequest);
    }
    if arp.sender_ipv4 == arp.target_ipv4 {
        return Err(NeighbourDrop::ArpGratuitous);
    }
    let host = hosts
        .by_ipv4(arp.target_ipv4_addr())
        .ok_or(NeighbourDrop::NotOurAddress)?;
    if ethernet.destination != BROADCAST {
        check_destination_mac(ethernet, &host, false)?;
    }
    let reply = ArpEthIpv4Packet {
        operation: ArpOperation::REPLY,
        sender_mac: host.mac.0,
        sender_ipv4: host.ipv4.octets(),
        target_mac: arp.sender_mac,
        target_ipv4: arp.sender_ipv4,
    };
    let mut frame = Vec::with_capacity(Ethernet2Header::LEN + ArpEthIpv4Packet::LEN);
    PacketBuilder::ethernet2(host.mac.0, arp.sender_mac)
        .arp(ArpPacket::from(reply))
        .write_to_vec(&mut frame)
        .map_err(|_| NeighbourDrop::Truncated)?;
    Ok(Some(frame))
}

/// RFC 792: an echo request to one of our hosts' IPv4 addresses gets an echo reply.
fn answer_ipv4(ethernet: &Ethernet2Header, payload: &[u8], hosts: &impl Neighbours) -> Handled {
    let Ok((ip, _)) = Ipv4Header::from_slice(payload) else {
        return Ok(None);
    };
    if ip.protocol != IpNumber::ICMP {
        return Ok(None);
    }
    let total_len = usize::from(ip.total_len);
    let icmp = payload
        .get(ip.header_len()..total_len)
        .ok_or(NeighbourDrop::Truncated)?;
    if icmp.len() < 8 || icmp[0] != ICMPV4_ECHO_REQUEST || icmp[1] != 0 {
        return Ok(None);
    }
    if ip.header_checksum != ip.calc_header_checksum() {
        return Err(NeighbourDrop::BadIpv4Checksum);
    }
    if ip.is_fragmenting_payload() {
        return Err(NeighbourDrop::Fragment);
    }
    if Sum16BitWords::new().add_slice(icmp).ones_complement() != 0 {
        return Err(NeighbourDrop::BadIcmpChecksum);
    }
    let host = hosts
        .by_ipv4(Ipv4Addr::from(ip.destination))
        .ok_or(NeighbourDrop::NotOurAddress)?;
    check_destination_mac(ethernet, &host, false)?;
    let (id, seq) = id_and_sequence(icmp);
    let mut frame = Vec::with_capacity(Ethernet2Header::LEN + 20 + icmp.len());
    PacketBuilder::ethernet2(host.mac.0, ethernet.source)
        .ipv4(host.ipv4.octets(), ip.source, REPLY_HOP_LIMIT)
        .icmpv4_echo_reply(id, seq)
        .write(&mut frame, &icmp[8..])
        .map_err(|_| NeighbourDrop::Truncated)?;
    Ok(Some(frame))
}

fn id_and_sequence(icmp: &[u8]) -> (u16, u16) {
    (
        u16::from_be_bytes([icmp[4], icmp[5]]),
        u16::from_be_bytes([icmp[6], icmp[7]]),
    )
}

/// ICMPv6 NS (RFC 4861) and echo (RFC 4443 §4.1) for one of our hosts' link-locals.
fn answer_ipv6(ethernet: &Ethernet2Header, payload: &[u8], hosts: &impl Neighbours) -> Handled {
    let Ok((ip, rest)) = Ipv6Header::from_slice(payload) else {
        return Ok(None);
    };
    // MLD comes behind a Hop-by-Hop header: it is not ours, and neither is anything else
    // behind extension headers.
    if ip.next_header != IpNumber::IPV6_ICMP {
        return Ok(None);
    }
    let icmp = rest
        .get(..usize::from(ip.payload_length))
        .ok_or(NeighbourDrop::Truncated)?;
    let icmp_type = match icmp.first() {
        Some(&t @ (ICMPV6_ECHO_REQUEST | ICMPV6_NEIGHBOUR_SOLICITATION)) => t,
        _ => return Ok(None),
    };
    if icmp.len() < 8 {
        return Err(NeighbourDrop::Truncated);
    }
    let source = Ipv6Addr::from(ip.source);
    let destination = Ipv6Addr::from(ip.destination);
    if icmpv6_sum(source, destination, icmp) != 0 {
        return Err(NeighbourDrop::BadIcmpChecksum);
    }
    if icmp_type == ICMPV6_NEIGHBOUR_SOLICITATION {
        return answer_solicitation(ethernet, &ip, icmp, hosts);
    }
    if icmp[1] != 0 {
        return Ok(None);
    }
    let host = hosts
        .by_ipv6(destination)
        .ok_or(NeighbourDrop::NotOurAddress)?;
    check_destination_mac(ethernet, &host, false)?;
    let (id, seq) = id_and_sequence(icmp);
    let mut frame = Vec::with_capacity(Ethernet2Header::LEN + Ipv6Header::LEN + icmp.len());
    PacketBuilder::ethernet2(host.mac.0, ethernet.source)
        .ipv6(host.ipv6_ll.octets(), ip.source, REPLY_HOP_LIMIT)
        .icmpv6_echo_reply(id, seq)
        .write(&mut frame, &icmp[8..])
        .map_err(|_| NeighbourDrop::Truncated)?;
    Ok(Some(frame))
}

/// The ones' complement of the ICMPv6 sum with its pseudo-header (RFC 8200 §8.1), in native
/// byte order as etherparse sums: 0 when the checksum in `icmp` is right.
fn icmpv6_sum(source: Ipv6Addr, destination: Ipv6Addr, icmp: &[u8]) -> u16 {
    let length = u32::try_from(icmp.len()).unwrap_or(u32::MAX);
    Sum16BitWords::new()
        .add_slice(&source.octets())
        .add_slice(&destination.octets())
        .add_slice(&length.to_be_bytes())
        .add_slice(&[0, 0, 0, u8::from(IpNumber::IPV6_ICMP)])
        .add_slice(icmp)
        .ones_complement()
}

/// The solicited-node multicast address of `target` (RFC 4291 §2.7.1).
pub fn solicited_node(target: Ipv6Addr) -> Ipv6Addr {
    let t = target.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, t[13], t[14], t[15],
    ])
}

/// RFC 4861 §7.1.1 checks, then §7.2.4: the target's owner answers with an NA carrying its
/// link-layer address. A DAD probe (source ::) is answered to all-nodes with S clear, which
/// defends the address; any other NS is answered to its source with S set.
fn answer_solicitation(
    ethernet: &Ethernet2Header,
    ip: &Ipv6Header,
    icmp: &[u8],
    hosts: &impl Neighbours,
) -> Handled {
    if ip.hop_limit != ND_HOP_LIMIT {
        return Err(NeighbourDrop::NsHopLimit);
    }
    // Type, code, checksum, reserved, target: 24 bytes.
    if icmp[1] != 0 || icmp.len() < 24 {
        return Err(NeighbourDrop::NsInvalid);
    }
    let mut target = [0u8; 16];
    target.copy_from_slice(&icmp[8..24]);
    let target = Ipv6Addr::from(target);
    if target.is_multicast() {
        return Err(NeighbourDrop::NsInvalid);
    }
    let mut source_link_layer = None;
    let mut options = &icmp[24..];
    while !options.is_empty() {
        let length = usize::from(*options.get(1).ok_or(NeighbourDrop::NsInvalid)?) * 8;
        if length == 0 || length > options.len() {
            return Err(NeighbourDrop::NsInvalid);
        }
        if options[0] == SOURCE_LINK_LAYER_ADDRESS && length >= 8 {
            let mut mac = [0u8; 6];
            mac.copy_from_slice(&options[2..8]);
            source_link_layer = Some(mac);
        }
        options = &options[length..];
    }
    let source = Ipv6Addr::from(ip.source);
    let destination = Ipv6Addr::from(ip.destination);
    let duplicate_address_detection = source.is_unspecified();
    if duplicate_address_detection
        && (destination != solicited_node(target) || source_link_layer.is_some())
    {
        return Err(NeighbourDrop::NsInvalid);
    }
    let host = hosts.by_ipv6(target).ok_or(NeighbourDrop::NotOurAddress)?;
    if destination != target && destination != solicited_node(target) {
        return Err(NeighbourDrop::NsInvalid);
    }
    check_destination_mac(ethernet, &host, true)?;

    let (to_ip, to_mac) = if duplicate_address_detection {
        let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
        (all_nodes, Mac::for_multicast(all_nodes.into()).0)
    } else {
        (source, source_link_layer.unwrap_or(ethernet.source))
    };
    let advertisement = NeighborAdvertisementHeader {
        router: false,
        solicited: !duplicate_address_detection,
        r#override: true,
    };
    let mut body = [0u8; 24];
    body[..16].copy_from_slice(&target.octets());
    body[16] = TARGET_LINK_LAYER_ADDRESS;
    body[17] = 1;
    body[18..].copy_from_slice(&host.mac.0);
    let mut frame = Vec::with_capacity(Ethernet2Header::LEN + Ipv6Header::LEN + 32);
    PacketBuilder::ethernet2(host.mac.0, to_mac)
        .ipv6(host.ipv6_ll.octets(), to_ip.octets(), ND_HOP_LIMIT)
        .icmpv6(Icmpv6Type::NeighborAdvertisement(advertisement))
        .write(&mut frame, &body)
        .map_err(|_| NeighbourDrop::Truncated)?;
    Ok(Some(frame))
}

#[cfg(test)]
mod tests;
