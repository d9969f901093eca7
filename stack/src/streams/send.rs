//! A stream's frame, built once: IPv4 or IPv6 and UDP with correct lengths and checksums
//! (etherparse), in Ethernet to the group's multicast MAC from the stream's own MAC on a TAP.
//! Per packet only the stream header and the UDP checksum change: the checksum is the sum
//! kept of everything else plus the header's twelve 16-bit words.

use std::net::IpAddr;

use control::stream_header::{self, StreamHeader, HEADER_LEN};
use etherparse::PacketBuilder;

use crate::framing::Mac;

/// TTL / hop limit of stream packets: enough for a routed path through the device under test.
const HOP_LIMIT: u8 = 64;

/// The addresses and ports of one stream's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSpec {
    pub source: IpAddr,
    pub group: IpAddr,
    pub source_port: u16,
    pub port: u16,
    /// UDP payload bytes, header included.
    pub size: u16,
    /// On a TAP: the source MAC (the frame goes to the group's multicast MAC).
    pub ethernet: Option<Mac>,
}

/// One stream's frame, ready to stamp.
#[derive(Debug, Clone)]
pub struct StreamFrame {
    bytes: Vec<u8>,
    /// Where the UDP payload starts.
    payload_at: usize,
    /// Where the UDP checksum is.
    checksum_at: usize,
    /// The one's-complement sum (folded) of the pseudo-header, the UDP header with a zero
    /// checksum and the payload with a zero stream header.
    base_sum: u16,
}

/// Adds the 16-bit big-endian words of `bytes` (even length) to `sum`, unfolded.
fn add_words(mut sum: u32, bytes: &[u8]) -> u32 {
    for word in bytes.chunks_exact(2) {
        sum += u32::from(u16::from_be_bytes([word[0], word[1]]));
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

impl StreamFrame {
    /// The frame of `spec`; the error names what is wrong.
    pub fn build(spec: &FrameSpec) -> Result<StreamFrame, String> {
        stream_header::check_size(usize::from(spec.size))?;
        if !spec.group.is_multicast() {
            return Err(format!("{} is not a multicast group", spec.group));
        }
        if spec.source.is_ipv4() != spec.group.is_ipv4() {
            return Err(format!(
                "source {} is not of the same family as group {}",
                spec.source, spec.group
            ));
        }
        if spec.source.is_multicast() || spec.source.is_unspecified() {
            return Err(format!("{} is not a unicast source address", spec.source));
        }
        let payload = stream_header::payload(usize::from(spec.size));
        let (builder, link_len) = match spec.ethernet {
            Some(mac) => (
                PacketBuilder::ethernet2(mac.0, Mac::for_multicast(spec.group).0),
                14,
            ),
            None => (PacketBuilder::ethernet2([0; 6], [0; 6]), 0),
        };
        let mut bytes = Vec::new();
        let ip_len = match (spec.source, spec.group) {
            (IpAddr::V4(s), IpAddr::V4(g)) => {
                let b = builder
                    .ipv4(s.octets(), g.octets(), HOP_LIMIT)
                    .udp(spec.source_port, spec.port);
                b.write(&mut bytes, &payload).map_err(|e| e.to_string())?;
                20
            }
            (IpAddr::V6(s), IpAddr::V6(g)) => {
                let b = builder
                    .ipv6(s.octets(), g.octets(), HOP_LIMIT)
                    .udp(spec.source_port, spec.port);
                b.write(&mut bytes, &payload).map_err(|e| e.to_string())?;
                40
            }
            _ => unreachable!("families checked above"),
        };
        // A TUN carries the IP packet alone.
        if link_len == 0 {
            bytes.drain(..14);
        }
        let checksum_at = link_len + ip_len + 6;
        let written = u16::from_be_bytes([bytes[checksum_at], bytes[checksum_at + 1]]);
        Ok(StreamFrame {
            payload_at: link_len + ip_len + 8,
            checksum_at,
            base_sum: !written,
            bytes,
        })
    }

    /// The frame carrying `header`: only the header and the UDP checksum are written.
    pub fn stamp(&mut self, header: &StreamHeader) -> &[u8] {
        let at = self.payload_at;
        header
            .encode(&mut self.bytes[at..at + HEADER_LEN])
            .expect("the payload holds the header (size checked)");
        let sum = add_words(u32::from(self.base_sum), &self.bytes[at..at + HEADER_LEN]);
        let checksum = match !fold(sum) {
            0 => 0xffff, // RFC 768: a computed zero is sent as all ones
            c => c,
        };
        self.bytes[self.checksum_at..self.checksum_at + 2].copy_from_slice(&checksum.to_be_bytes());
        &self.bytes
    }

    /// Bytes of the frame.
    #[cfg(test)]
    pub fn frame_len(&self) -> usize {
        self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    use super::*;

    fn spec(source: &str, group: &str, ethernet: Option<Mac>) -> FrameSpec {
        FrameSpec {
            source: source.parse().unwrap(),
            group: group.parse().unwrap(),
            source_port: 4000,
            port: 5000,
            size: 100,
            ethernet,
        }
    }

    /// Every stamped frame parses, and its UDP checksum is what etherparse computes.
    fn check(frame: &mut StreamFrame, ethernet: bool) {
        for sequence in [0, 1, 0xffff, 1 << 40, u64::MAX] {
            let header = StreamHeader {
                stream: 7,
                sequence,
                sent_ns: sequence.wrapping_mul(0x9e37_79b9),
            };
            let bytes = frame.stamp(&header).to_vec();
            let packet = if ethernet {
                SlicedPacket::from_ethernet(&bytes).unwrap()
            } else {
                SlicedPacket::from_ip(&bytes).unwrap()
            };
            let Some(TransportSlice::Udp(udp)) = packet.transport else {
                panic!("not UDP");
            };
            let expected = match &packet.net {
                Some(NetSlice::Ipv4(ip)) => udp
                    .to_header()
                    .calc_checksum_ipv4(&ip.header().to_header(), udp.payload())
                    .unwrap(),
                Some(NetSlice::Ipv6(ip)) => udp
                    .to_header()
                    .calc_checksum_ipv6(&ip.header().to_header(), udp.payload())
                    .unwrap(),
                _ => panic!("not IP"),
            };
            assert_eq!(udp.checksum(), expected, "sequence {sequence}");
            assert_eq!(StreamHeader::decode(udp.payload()), Some(header));
            assert_eq!(udp.payload().len(), 100);
            assert_eq!(udp.payload()[99], 99, "the pattern");
            if let Some(NetSlice::Ipv4(ip)) = &packet.net {
                let h = ip.header().to_header();
                assert_eq!(h.header_checksum, h.calc_header_checksum());
            }
        }
    }

    #[test]
    fn ipv4_and_ipv6_frames_carry_right_checksums_on_tun_and_tap() {
        let mac = Mac([2, 0, 10, 1, 1, 1]);
        let mut tap4 = StreamFrame::build(&spec("10.1.1.1", "232.1.1.1", Some(mac))).unwrap();
        assert_eq!(
            &tap4.stamp(&StreamHeader {
                stream: 1,
                sequence: 0,
                sent_ns: 0
            })[..12],
            &[1, 0, 0x5e, 1, 1, 1, 2, 0, 10, 1, 1, 1]
        );
        assert_eq!(tap4.frame_len(), 14 + 20 + 8 + 100);
        check(&mut tap4, true);
        let mut tun4 = StreamFrame::build(&spec("10.1.1.1", "239.1.1.1", None)).unwrap();
        assert_eq!(tun4.frame_len(), 20 + 8 + 100);
        check(&mut tun4, false);
        let mut tap6 = StreamFrame::build(&spec("2001:db8::1", "ff3e::8000:1", Some(mac))).unwrap();
        check(&mut tap6, true);
        let mut tun6 = StreamFrame::build(&spec("fe80::1", "ff12::1", None)).unwrap();
        assert_eq!(tun6.frame_len(), 40 + 8 + 100);
        check(&mut tun6, false);
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        let error = |s: FrameSpec| StreamFrame::build(&s).unwrap_err();
        assert!(error(FrameSpec {
            size: 23,
            ..spec("10.1.1.1", "232.1.1.1", None)
        })
        .contains("24-byte header"));
        assert!(error(spec("10.1.1.1", "10.2.2.2", None)).contains("not a multicast group"));
        assert!(error(spec("fe80::1", "232.1.1.1", None)).contains("same family"));
        assert!(error(spec("224.1.1.1", "232.1.1.1", None)).contains("unicast source"));
    }
}
