//! The data path's first half: which packets read from the link are multicast UDP, and is
//! each one whole and correct.
//!
//! The IP layer is the core's own: `membership::wire::ip::classify` validates the IPv4 header
//! (checksum, options, lengths) or walks the IPv6 extension headers, and tells us the
//! protocol. Only then does etherparse slice the packet once more to hand us the UDP bytes
//! (classify returns the protocol number, not an offset). UDP itself is checked here as
//! Linux's `__udp4_lib_rcv` / `udpv6_rcv` do: the length field must cover the header and stay
//! inside the IP payload (bytes after it are trimmed), and the checksum must be right — zero
//! means "none" on IPv4 only (RFC 768; RFC 8200 §8.1 makes it mandatory on IPv6).

use std::net::IpAddr;

use etherparse::{IpNumber, IpSlice, UdpHeader};
use membership::wire::ip::{classify, Classified, IpError, OtherKind};

const UDP: u8 = IpNumber::UDP.0;
const UDP_HEADER_LEN: usize = UdpHeader::LEN;

/// A well-formed UDP datagram to a multicast group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram<'a> {
    pub src: IpAddr,
    pub group: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub payload: &'a [u8],
}

/// Why a multicast UDP packet cannot be delivered, before looking at who listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpDrop {
    /// The IP payload is shorter than a UDP header.
    Truncated,
    /// The UDP length field is below 8 or runs past the IP payload (0 too: no jumbograms).
    BadLength,
    BadChecksum,
    /// A fragment: this host does not reassemble.
    Fragment,
}

/// What [`sort`] made of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sorted<'a> {
    /// Not UDP to a multicast destination, or not a valid IP packet: the core's business
    /// (it handles IGMP and MLD and counts everything else).
    NotMulticastUdp,
    Datagram(Datagram<'a>),
    Dropped(UdpDrop),
}

/// Sorts one IP packet. Never panics.
pub fn sort(packet: &[u8]) -> Sorted<'_> {
    match classify(packet) {
        Ok(Classified::Other(OtherKind::Ipv4(UDP) | OtherKind::Ipv6(UDP))) => {}
        Err(IpError::Fragment) => {
            return match IpSlice::from_slice(packet) {
                Ok(ip)
                    if ip.payload_ip_number() == IpNumber::UDP
                        && ip.destination_addr().is_multicast() =>
                {
                    Sorted::Dropped(UdpDrop::Fragment)
                }
                _ => Sorted::NotMulticastUdp,
            };
        }
        _ => return Sorted::NotMulticastUdp,
    }
    // classify accepted the headers; etherparse walks the same ones to find the payload.
    let Ok(ip) = IpSlice::from_slice(packet) else {
        return Sorted::NotMulticastUdp;
    };
    let group = ip.destination_addr();
    if !group.is_multicast() {
        return Sorted::NotMulticastUdp;
    }
    let src = ip.source_addr();
    match udp(src, group, ip.payload().payload) {
        Ok(datagram) => Sorted::Datagram(datagram),
        Err(reason) => Sorted::Dropped(reason),
    }
}

fn udp<'a>(src: IpAddr, group: IpAddr, bytes: &'a [u8]) -> Result<Datagram<'a>, UdpDrop> {
    if bytes.len() < UDP_HEADER_LEN {
        return Err(UdpDrop::Truncated);
    }
    let length = usize::from(u16::from_be_bytes([bytes[4], bytes[5]]));
    if length < UDP_HEADER_LEN || length > bytes.len() {
        return Err(UdpDrop::BadLength);
    }
    let (header, payload) =
        UdpHeader::from_slice(&bytes[..length]).map_err(|_| UdpDrop::Truncated)?;
    let expected = match (src, group) {
        (IpAddr::V4(_), IpAddr::V4(_)) if header.checksum == 0 => None,
        (IpAddr::V4(s), IpAddr::V4(d)) => header
            .calc_checksum_ipv4_raw(s.octets(), d.octets(), payload)
            .ok(),
        (IpAddr::V6(s), IpAddr::V6(d)) => header
            .calc_checksum_ipv6_raw(s.octets(), d.octets(), payload)
            .ok(),
        _ => return Err(UdpDrop::BadChecksum),
    };
    if expected.is_some_and(|sum| sum != header.checksum) {
        return Err(UdpDrop::BadChecksum);
    }
    Ok(Datagram {
        src,
        group,
        sport: header.source_port,
        dport: header.destination_port,
        payload,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    pub(crate) fn udp4(src: [u8; 4], group: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
        let builder = PacketBuilder::ipv4(src, group, 1).udp(40000, dport);
        let mut packet = Vec::new();
        builder.write(&mut packet, payload).unwrap();
        packet
    }

    fn udp6(payload: &[u8]) -> Vec<u8> {
        let src = "fe80::1".parse::<std::net::Ipv6Addr>().unwrap().octets();
        let dst = "ff12::1234".parse::<std::net::Ipv6Addr>().unwrap().octets();
        let builder = PacketBuilder::ipv6(src, dst, 1).udp(40000, 5000);
        let mut packet = Vec::new();
        builder.write(&mut packet, payload).unwrap();
        packet
    }

    #[test]
    fn good_datagrams_are_sorted_out() {
        let packet = udp4([10, 99, 0, 1], [239, 1, 2, 3], 5000, b"hello");
        let Sorted::Datagram(d) = sort(&packet) else {
            panic!("{:?}", sort(&packet));
        };
        assert_eq!(
            (
                d.src.to_string(),
                d.group.to_string(),
                d.sport,
                d.dport,
                d.payload
            ),
            (
                "10.99.0.1".into(),
                "239.1.2.3".into(),
                40000,
                5000,
                &b"hello"[..]
            )
        );
        let packet = udp6(b"hi");
        assert!(matches!(sort(&packet), Sorted::Datagram(d) if d.payload == b"hi"));
    }

    #[test]
    fn ipv6_with_hop_by_hop_is_walked() {
        let plain = udp6(b"hbh");
        // Insert an 8-byte hop-by-hop header (PadN) between the IPv6 header and UDP.
        let mut packet = plain[..40].to_vec();
        packet[6] = 0; // next header: hop-by-hop
        let len = u16::from_be_bytes([packet[4], packet[5]]) + 8;
        packet[4..6].copy_from_slice(&len.to_be_bytes());
        packet.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
        packet.extend_from_slice(&plain[40..]);
        assert!(matches!(sort(&packet), Sorted::Datagram(d) if d.payload == b"hbh"));
    }

    #[test]
    fn bad_udp_is_dropped_by_reason() {
        let good = udp4([10, 99, 0, 1], [239, 1, 2, 3], 5000, b"hello");
        let mut bad_sum = good.clone();
        *bad_sum.last_mut().unwrap() ^= 1;
        assert_eq!(sort(&bad_sum), Sorted::Dropped(UdpDrop::BadChecksum));
        let mut no_sum = bad_sum.clone();
        no_sum[26..28].fill(0);
        assert!(matches!(sort(&no_sum), Sorted::Datagram(_)));
        let mut long = good.clone();
        long[24..26].copy_from_slice(&100u16.to_be_bytes());
        assert_eq!(sort(&long), Sorted::Dropped(UdpDrop::BadLength));
        let mut short = good.clone();
        short[24..26].copy_from_slice(&4u16.to_be_bytes());
        assert_eq!(sort(&short), Sorted::Dropped(UdpDrop::BadLength));

        // An IP payload of 4 bytes: total length 24, header checksum fixed up.
        let mut truncated = good[..24].to_vec();
        truncated[2..4].copy_from_slice(&24u16.to_be_bytes());
        fix_ipv4_checksum(&mut truncated);
        assert_eq!(sort(&truncated), Sorted::Dropped(UdpDrop::Truncated));

        let mut fragment = good.clone();
        fragment[6] = 0x20; // more fragments
        fix_ipv4_checksum(&mut fragment);
        assert_eq!(sort(&fragment), Sorted::Dropped(UdpDrop::Fragment));

        let mut v6 = udp6(b"x");
        let last = v6.len() - 1;
        v6[last] ^= 0xff;
        assert_eq!(sort(&v6), Sorted::Dropped(UdpDrop::BadChecksum));
    }

    #[test]
    fn everything_else_is_the_cores() {
        let unicast = udp4([10, 99, 0, 1], [10, 99, 0, 2], 5000, b"x");
        assert_eq!(sort(&unicast), Sorted::NotMulticastUdp);
        for junk in [&[][..], &[0x45], &[0x60; 30], &[0xff; 64]] {
            assert_eq!(sort(junk), Sorted::NotMulticastUdp);
        }
        let mut bad_header = udp4([10, 99, 0, 1], [239, 1, 2, 3], 5000, b"x");
        bad_header[10] ^= 1;
        assert_eq!(sort(&bad_header), Sorted::NotMulticastUdp);
    }

    fn fix_ipv4_checksum(packet: &mut [u8]) {
        packet[10..12].fill(0);
        let sum = membership::wire::internet_checksum(&packet[..20]);
        packet[10..12].copy_from_slice(&sum.to_be_bytes());
    }
}
