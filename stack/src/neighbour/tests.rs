use super::*;
use etherparse::{Icmpv4Slice, Icmpv6Slice, SlicedPacket, TransportSlice};

const HOST_MAC: Mac = Mac([0x02, 0, 0, 0, 0x01, 0x00]);
const PEER_MAC: [u8; 6] = [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee];
const PEER_IPV4: [u8; 4] = [10, 99, 1, 1];

fn host_ipv6() -> Ipv6Addr {
    "fe80::ff:fe00:100".parse().unwrap()
}

fn peer_ipv6() -> Ipv6Addr {
    "fe80::1".parse().unwrap()
}

/// One host, found by its two addresses.
struct OneHost(NeighbourHost);

impl Neighbours for OneHost {
    fn by_ipv4(&self, addr: Ipv4Addr) -> Option<NeighbourHost> {
        (addr == self.0.ipv4).then_some(self.0)
    }

    fn by_ipv6(&self, addr: Ipv6Addr) -> Option<NeighbourHost> {
        (addr == self.0.ipv6_ll).then_some(self.0)
    }
}

fn table() -> OneHost {
    OneHost(NeighbourHost {
        mac: HOST_MAC,
        ipv4: Ipv4Addr::new(10, 99, 1, 10),
        ipv6_ll: host_ipv6(),
    })
}

fn hex(s: &str) -> Vec<u8> {
    let s = s.replace(' ', "");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn reply(frame: &[u8]) -> Vec<u8> {
    match answer(frame, &table()) {
        Answer::Reply(reply) => reply,
        other => panic!("no reply: {other:?}"),
    }
}

fn dropped(frame: &[u8]) -> NeighbourDrop {
    match answer(frame, &table()) {
        Answer::Dropped(reason) => reason,
        other => panic!("not dropped: {other:?}"),
    }
}

const ARP_REQUEST: &str = "ffffffffffff02aabbccddee0806\
                           0001080006040001 02aabbccddee0a630101 0000000000000a63010a";

#[test]
fn arp_requests_for_a_host_are_answered_from_its_mac() {
    let request = hex(&ARP_REQUEST.replace(' ', ""));
    let expected = hex(concat!(
        "02aabbccddee 020000000100 0806",
        "0001080006040002 020000000100 0a63010a 02aabbccddee 0a630101",
    ));
    assert_eq!(reply(&request), expected);
    // Unicast to the host's MAC (a cache refresh) is answered too, to another MAC not.
    let mut unicast = request.clone();
    unicast[..6].copy_from_slice(&HOST_MAC.0);
    assert_eq!(reply(&unicast), expected);
    unicast[..6].copy_from_slice(&[2, 9, 9, 9, 9, 9]);
    assert_eq!(dropped(&unicast), NeighbourDrop::NotOurMac);
}

#[test]
fn other_arp_is_dropped_with_its_reason() {
    let request = hex(&ARP_REQUEST.replace(' ', ""));
    let mut other_target = request.clone();
    other_target[41] = 11;
    assert_eq!(dropped(&other_target), NeighbourDrop::NotOurAddress);
    let mut arp_reply = request.clone();
    arp_reply[21] = 2;
    assert_eq!(dropped(&arp_reply), NeighbourDrop::ArpNotRequest);
    let mut gratuitous = request.clone();
    gratuitous[28..32].copy_from_slice(&[10, 99, 1, 10]);
    assert_eq!(dropped(&gratuitous), NeighbourDrop::ArpGratuitous);
    let mut not_ipv4 = request.clone();
    not_ipv4[16..18].copy_from_slice(&[0x86, 0xdd]);
    assert_eq!(dropped(&not_ipv4), NeighbourDrop::ArpNotEthernetIpv4);
    assert_eq!(dropped(&request[..30]), NeighbourDrop::Truncated);
}

/// From fe80::1 to the solicited-node address of the host, with a source link-layer option.
const SOLICITATION: &str = concat!(
    "3333ff000100 02aabbccddee 86dd",
    "6000000000203aff fe800000000000000000000000000001 ff0200000000000000000001ff000100",
    "8700df3600000000 fe80000000000000000000fffe000100 010102aabbccddee",
);

#[test]
fn a_solicitation_gets_a_solicited_override_advertisement() {
    let expected = hex(concat!(
        "02aabbccddee 020000000100 86dd",
        "6000000000203aff fe80000000000000000000fffe000100 fe800000000000000000000000000001",
        "8800172060000000 fe80000000000000000000fffe000100 0201020000000100",
    ));
    let answer = reply(&hex(SOLICITATION));
    assert_eq!(answer, expected);
    // The checksum checks out by recomputation as well.
    assert_eq!(icmpv6_sum(host_ipv6(), peer_ipv6(), &answer[54..]), 0);
}

fn solicitation(source: Ipv6Addr, destination: Ipv6Addr, hop_limit: u8, options: &[u8]) -> Vec<u8> {
    let mut body = host_ipv6().octets().to_vec();
    body.extend_from_slice(options);
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(PEER_MAC, Mac::for_multicast(destination.into()).0)
        .ipv6(source.octets(), destination.octets(), hop_limit)
        .icmpv6_raw(ICMPV6_NEIGHBOUR_SOLICITATION, 0, [0; 4])
        .write(&mut frame, &body)
        .unwrap();
    frame
}

#[test]
fn a_dad_probe_is_answered_to_all_nodes_without_the_solicited_flag() {
    let probe = solicitation(Ipv6Addr::UNSPECIFIED, solicited_node(host_ipv6()), 255, &[]);
    let answer = reply(&probe);
    let packet = SlicedPacket::from_ethernet(&answer).unwrap();
    let ethernet = packet.link.unwrap().to_header().unwrap();
    let ethernet = ethernet.ethernet2().unwrap();
    assert_eq!(ethernet.destination, [0x33, 0x33, 0, 0, 0, 1]);
    assert_eq!(ethernet.source, HOST_MAC.0);
    let Some(etherparse::NetSlice::Ipv6(ip)) = packet.net else {
        panic!("not IPv6")
    };
    assert_eq!(
        ip.header().destination_addr(),
        "ff02::1".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(ip.header().hop_limit(), 255);
    let Some(TransportSlice::Icmpv6(icmp)) = packet.transport else {
        panic!("not ICMPv6")
    };
    assert_eq!(
        icmp.icmp_type(),
        Icmpv6Type::NeighborAdvertisement(NeighborAdvertisementHeader {
            router: false,
            solicited: false,
            r#override: true,
        })
    );
    assert_eq!(
        icmpv6_sum(host_ipv6(), "ff02::1".parse().unwrap(), icmp.slice()),
        0
    );
    assert_eq!(&icmp.slice()[24..], &[2, 1, 2, 0, 0, 0, 1, 0]);
}

#[test]
fn bad_solicitations_are_dropped_with_their_reason() {
    let to_group = solicited_node(host_ipv6());
    let slla = [1, 1, 2, 0xaa, 0xbb, 0xcc, 0xdd, 0xee];
    let cases = [
        (
            solicitation(peer_ipv6(), to_group, 64, &slla),
            NeighbourDrop::NsHopLimit,
        ),
        // RFC 4861 §7.1.1: a DAD probe carries no source link-layer address.
        (
            solicitation(Ipv6Addr::UNSPECIFIED, to_group, 255, &slla),
            NeighbourDrop::NsInvalid,
        ),
        (
            solicitation(Ipv6Addr::UNSPECIFIED, host_ipv6(), 255, &[]),
            NeighbourDrop::NsInvalid,
        ),
        (
            solicitation(peer_ipv6(), to_group, 255, &[1, 0, 0, 0, 0, 0, 0, 0]),
            NeighbourDrop::NsInvalid,
        ),
        (
            solicitation(peer_ipv6(), "ff02::1".parse().unwrap(), 255, &[]),
            NeighbourDrop::NsInvalid,
        ),
    ];
    for (frame, reason) in cases {
        assert_eq!(dropped(&frame), reason);
    }
    let mut bad_sum = hex(SOLICITATION);
    bad_sum[57] ^= 1;
    assert_eq!(dropped(&bad_sum), NeighbourDrop::BadIcmpChecksum);
    let mut other_target = hex(SOLICITATION);
    other_target[77] = 0x01;
    // The checksum made right for the changed target, so that only the target is wrong.
    let mut body = other_target[54..].to_vec();
    body[2..4].copy_from_slice(&[0, 0]);
    let checksum = icmpv6_sum(peer_ipv6(), solicited_node(host_ipv6()), &body);
    // etherparse sums in native byte order.
    other_target[56..58].copy_from_slice(&checksum.to_ne_bytes());
    assert_eq!(dropped(&other_target), NeighbourDrop::NotOurAddress);
    assert_eq!(dropped(&hex(SOLICITATION)[..70]), NeighbourDrop::Truncated);
}

fn ping_v4(destination: [u8; 4], to_mac: [u8; 6]) -> Vec<u8> {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(PEER_MAC, to_mac)
        .ipv4(PEER_IPV4, destination, 64)
        .icmpv4_echo_request(0x1234, 7)
        .write(&mut frame, b"abcdefgh")
        .unwrap();
    frame
}

#[test]
fn pings_to_a_host_are_answered() {
    let answer = reply(&ping_v4([10, 99, 1, 10], HOST_MAC.0));
    assert_eq!(&answer[..12], &[PEER_MAC, HOST_MAC.0].concat()[..]);
    let (ip, rest) = Ipv4Header::from_slice(&answer[14..]).unwrap();
    assert_eq!((ip.source, ip.destination), ([10, 99, 1, 10], PEER_IPV4));
    assert_eq!(ip.header_checksum, ip.calc_header_checksum());
    let icmp = Icmpv4Slice::from_slice(rest).unwrap();
    assert_eq!(Sum16BitWords::new().add_slice(rest).ones_complement(), 0);
    assert_eq!(
        &rest[..8],
        &[
            0,
            0,
            icmp.checksum().to_be_bytes()[0],
            icmp.checksum().to_be_bytes()[1],
            0x12,
            0x34,
            0,
            7
        ]
    );
    assert_eq!(icmp.payload(), b"abcdefgh");

    let mut frame = Vec::new();
    PacketBuilder::ethernet2(PEER_MAC, HOST_MAC.0)
        .ipv6(peer_ipv6().octets(), host_ipv6().octets(), 64)
        .icmpv6_echo_request(0x4321, 9)
        .write(&mut frame, b"xyz")
        .unwrap();
    let answer = reply(&frame);
    let (ip, rest) = Ipv6Header::from_slice(&answer[14..]).unwrap();
    assert_eq!(Ipv6Addr::from(ip.source), host_ipv6());
    assert_eq!(Ipv6Addr::from(ip.destination), peer_ipv6());
    let icmp = Icmpv6Slice::from_slice(rest).unwrap();
    assert_eq!(icmp.type_u8(), 129);
    assert_eq!(&rest[4..8], &[0x43, 0x21, 0, 9]);
    assert_eq!(icmp.payload(), b"xyz");
    assert_eq!(icmpv6_sum(host_ipv6(), peer_ipv6(), rest), 0);
}

#[test]
fn bad_pings_are_dropped_and_other_traffic_passes() {
    assert_eq!(
        dropped(&ping_v4([10, 99, 1, 11], HOST_MAC.0)),
        NeighbourDrop::NotOurAddress
    );
    assert_eq!(
        dropped(&ping_v4([10, 99, 1, 10], [0xff; 6])),
        NeighbourDrop::NotOurMac
    );
    let mut bad_header = ping_v4([10, 99, 1, 10], HOST_MAC.0);
    bad_header[22] = 1; // TTL, under the header checksum
    assert_eq!(dropped(&bad_header), NeighbourDrop::BadIpv4Checksum);
    let mut bad_icmp = ping_v4([10, 99, 1, 10], HOST_MAC.0);
    *bad_icmp.last_mut().unwrap() ^= 0xff;
    assert_eq!(dropped(&bad_icmp), NeighbourDrop::BadIcmpChecksum);

    // An IGMPv2 general query.
    let igmp = hex("01005e00000102aabbccddee0800\
                    4500001c000000000102d8c30a630101e0000001 1164ee9b00000000"
        .replace(' ', "")
        .as_str());
    assert_eq!(answer(&igmp, &table()), Answer::NotNeighbour);
    // MLD behind a Hop-by-Hop header, and UDP data: not this layer's.
    let mld = hex(
        "333300000001020000000001 86dd 60000000 0024 00 01 fe800000000000000000000000000001 \
                   ff020000000000000000000000000001 3a00050200000100 8200 0000 0000 0000 \
                   00000000000000000000000000000000"
            .replace(' ', "")
            .as_str(),
    );
    assert_eq!(answer(&mld, &table()), Answer::NotNeighbour);
    let mut udp = Vec::new();
    PacketBuilder::ethernet2(PEER_MAC, HOST_MAC.0)
        .ipv4(PEER_IPV4, [10, 99, 1, 10], 64)
        .udp(5000, 5001)
        .write(&mut udp, b"data")
        .unwrap();
    assert_eq!(answer(&udp, &table()), Answer::NotNeighbour);
    assert_eq!(answer(&[0u8; 5], &table()), Answer::NotNeighbour);
}

#[test]
fn every_drop_reason_has_its_count() {
    let mut counts = NeighbourDropCounts::default();
    counts.count(NeighbourDrop::NsHopLimit);
    assert_eq!(counts.get(NeighbourDrop::NsHopLimit), 1);
    assert_eq!(counts.iter().count(), NeighbourDrop::ALL.len());
}

#[test]
fn solicited_node_groups_keep_the_low_24_bits() {
    for (addr, group) in [
        ("fe80::a63:2", "ff02::1:ff63:2"),
        ("fe80::2", "ff02::1:ff00:2"),
        ("fe80::1234:5678:9abc", "ff02::1:ff78:9abc"),
    ] {
        assert_eq!(
            solicited_node(addr.parse().unwrap()),
            group.parse::<Ipv6Addr>().unwrap()
        );
    }
}
