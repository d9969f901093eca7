//! The IP layer around IGMP and MLD: sorting raw packets read from a TUN device, and building
//! the packets we send.
//!
//! Header layouts come from etherparse; the Router Alert option (RFC 2113 for IPv4, RFC 2711
//! for IPv6) is decoded here from the raw option bytes, since etherparse leaves options raw.

use alloc::vec::Vec;
use core::net::{Ipv4Addr, Ipv6Addr};

use etherparse::err::ipv4::{HeaderError as Ipv4HeaderError, HeaderSliceError};
use etherparse::{
    IpAuthHeaderSlice, IpDscp, IpNumber, Ipv4Header, Ipv4HeaderSlice, Ipv6FlowLabel, Ipv6Header,
    Ipv6HeaderSlice, Ipv6RawExtHeader, Ipv6RawExtHeaderSlice,
};

use super::internet_checksum;
use super::mld::MessageType as MldType;

/// The IPv4 fields IGMP cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Meta {
    /// Source Address of the IPv4 header.
    pub src: Ipv4Addr,
    /// Destination Address of the IPv4 header.
    pub dst: Ipv4Addr,
    /// Time to Live as received (IGMP is sent with TTL 1, RFC 2236 §2, RFC 9776 §4).
    pub ttl: u8,
    /// A Router Alert option with value 0 ("examine packet", RFC 2113) is present.
    pub router_alert: bool,
}

/// The IPv6 fields MLD cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Meta {
    /// Source Address of the IPv6 header.
    pub src: Ipv6Addr,
    /// Destination Address of the IPv6 header.
    pub dst: Ipv6Addr,
    /// Hop Limit as received (MLD is sent with hop limit 1, RFC 2710 §3, RFC 9777 §5).
    pub hop_limit: u8,
    /// The hop-by-hop header carries a Router Alert option with value 0 (MLD, RFC 2711).
    pub router_alert: bool,
}

/// What [`classify`] found in a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classified<'a> {
    /// An IGMP message: the IPv4 payload within the total length.
    Igmp {
        /// The IPv4 header fields IGMP cares about.
        meta: Ipv4Meta,
        /// From the end of the IPv4 header (options included) to the Total Length; not yet
        /// validated as IGMP (see [`IgmpRepr::parse`](super::igmp::IgmpRepr::parse)).
        payload: &'a [u8],
    },
    /// An MLD message: the ICMPv6 message within the payload length.
    Mld {
        /// The IPv6 header fields MLD cares about.
        meta: Ipv6Meta,
        /// From after the last extension header to the end of the Payload Length; its first
        /// byte is an MLD type (130, 131, 132 or 143). Neither length nor checksum is checked
        /// yet (see [`MldRepr::parse`](super::mld::MldRepr::parse)).
        payload: &'a [u8],
    },
    /// A well-formed packet of no interest to us.
    Other(OtherKind),
}

/// A well-formed packet that is neither IGMP nor MLD ([`Classified::Other`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtherKind {
    /// IPv4, protocol number.
    Ipv4(u8),
    /// IPv6, the next header after the last extension header we walked (58 for an ICMPv6
    /// payload too short to hold a type).
    Ipv6(u8),
    /// ICMPv6 that is not MLD (e.g. 133, Router Solicitation).
    Icmpv6(u8),
}

/// Why [`classify`] rejected a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IpError {
    /// Empty, or the version nibble of the first byte is neither 4 nor 6.
    #[error("not an IP packet (empty, or version not 4 or 6)")]
    NotIp,
    /// Shorter than 20 bytes, or than the header length IHL gives.
    #[error("IPv4 header truncated")]
    Ipv4Truncated,
    /// IHL below 5.
    #[error("IPv4 header length below 20 bytes")]
    Ipv4BadHeaderLength,
    /// Total Length runs past the bytes read or is shorter than the header length.
    #[error("IPv4 total length beyond the packet or shorter than the header")]
    Ipv4BadTotalLength,
    /// The header checksum (over the header, options included) does not verify. Not checked
    /// under `cfg(fuzzing)`.
    #[error("bad IPv4 header checksum")]
    Ipv4BadChecksum,
    /// An option other than End of Option List or No Operation has a length below 2 or runs
    /// past the header, or a Router Alert option (RFC 2113) has a length other than 4.
    #[error("malformed IPv4 options")]
    Ipv4BadOptions,
    /// An IPv4 fragment (More Fragments set or a non-zero Fragment Offset) or an IPv6 packet
    /// with a Fragment header: fragments are not reassembled.
    #[error("IP fragment")]
    Fragment,
    /// Shorter than the 40-byte IPv6 header.
    #[error("IPv6 header truncated")]
    Ipv6Truncated,
    /// Payload Length runs past the bytes read.
    #[error("IPv6 payload length beyond the packet")]
    Ipv6BadPayloadLength,
    /// A hop-by-hop, destination options, routing or authentication header runs past the
    /// payload; an option in a hop-by-hop or destination options header runs past its header,
    /// or a Router Alert option's data is not 2 bytes (RFC 2711); or a hop-by-hop header
    /// comes anywhere but first (RFC 8200 §4.1).
    #[error("malformed IPv6 extension header")]
    Ipv6BadExtension,
}

/// IPv4 option type of Router Alert: copied flag, class 0, number 20 (RFC 2113).
const IPV4_OPTION_ROUTER_ALERT: u8 = 0x94;
const IPV4_OPTION_END: u8 = 0;
const IPV4_OPTION_NOP: u8 = 1;
/// What we send: Router Alert, length 4, value 0.
const IPV4_ROUTER_ALERT: [u8; 4] = [IPV4_OPTION_ROUTER_ALERT, 4, 0, 0];
/// DSCP CS6 (TOS 0xc0, "internetwork control"), as the Linux kernel sends IGMP.
const IPV4_TOS_DSCP: IpDscp = IpDscp::CS6;

const IPV6_OPTION_PAD1: u8 = 0;
const IPV6_OPTION_ROUTER_ALERT: u8 = 5;
/// Hop-by-hop option bytes we send after next header and length: Router Alert with value 0
/// (MLD, RFC 2711) and a two-byte PadN to fill the 8-byte header.
const IPV6_HOP_BY_HOP_OPTIONS: [u8; 6] = [IPV6_OPTION_ROUTER_ALERT, 2, 0, 0, 1, 0];

const IPV6_HEADER_LEN: usize = Ipv6Header::LEN;

/// Sorts one raw IP packet (as read from a TUN without packet information).
///
/// IPv4: the header checksum is verified, lengths and options are validated, fragments are
/// refused, and the payload of an IGMP packet is bounded by the total length (link padding
/// after it is ignored). IPv6: the payload length is validated, hop-by-hop (only first),
/// routing, destination options and authentication headers are walked and checked, a
/// fragment header is refused, and MLD is recognised by its ICMPv6 type. Never panics.
pub fn classify(packet: &[u8]) -> Result<Classified<'_>, IpError> {
    match packet.first().map(|byte| byte >> 4) {
        Some(4) => classify_ipv4(packet),
        Some(6) => classify_ipv6(packet),
        _ => Err(IpError::NotIp),
    }
}

fn classify_ipv4(packet: &[u8]) -> Result<Classified<'_>, IpError> {
    let header = Ipv4HeaderSlice::from_slice(packet).map_err(|error| match error {
        HeaderSliceError::Len(_) => IpError::Ipv4Truncated,
        HeaderSliceError::Content(Ipv4HeaderError::HeaderLengthSmallerThanHeader { .. }) => {
            IpError::Ipv4BadHeaderLength
        }
        HeaderSliceError::Content(Ipv4HeaderError::UnexpectedVersion { .. }) => IpError::NotIp,
    })?;
    let header_len = header.slice().len();
    let total_len = usize::from(header.total_len());
    if total_len > packet.len() || total_len < header_len {
        return Err(IpError::Ipv4BadTotalLength);
    }
    // Not checked when fuzzing (see `IgmpPacket::verify_checksum`).
    if !cfg!(fuzzing) && internet_checksum(header.slice()) != 0 {
        return Err(IpError::Ipv4BadChecksum);
    }
    if header.is_fragmenting_payload() {
        return Err(IpError::Fragment);
    }
    let router_alert = ipv4_router_alert(header.options())?;
    match header.protocol() {
        IpNumber::IGMP => Ok(Classified::Igmp {
            meta: Ipv4Meta {
                src: header.source_addr(),
                dst: header.destination_addr(),
                ttl: header.ttl(),
                router_alert,
            },
            payload: &packet[header_len..total_len],
        }),
        other => Ok(Classified::Other(OtherKind::Ipv4(other.0))),
    }
}

/// Walks the IPv4 options (RFC 791): End of Option List stops, No Operation is one byte, the
/// rest are type-length-value with a length of at least 2 that must stay inside the header.
fn ipv4_router_alert(mut options: &[u8]) -> Result<bool, IpError> {
    let mut router_alert = false;
    while let Some(&kind) = options.first() {
        match kind {
            IPV4_OPTION_END => break,
            IPV4_OPTION_NOP => options = &options[1..],
            _ => {
                let len = usize::from(*options.get(1).ok_or(IpError::Ipv4BadOptions)?);
                if len < 2 || len > options.len() {
                    return Err(IpError::Ipv4BadOptions);
                }
                if kind == IPV4_OPTION_ROUTER_ALERT {
                    // RFC 2113 fixes the length at 4; value 0 is "examine packet", the
                    // others are reserved (Linux also accepts only 0).
                    if len != 4 {
                        return Err(IpError::Ipv4BadOptions);
                    }
                    router_alert |= options[2..4] == [0, 0];
                }
                options = &options[len..];
            }
        }
    }
    Ok(router_alert)
}

fn classify_ipv6(packet: &[u8]) -> Result<Classified<'_>, IpError> {
    let header = Ipv6HeaderSlice::from_slice(packet).map_err(|_| IpError::Ipv6Truncated)?;
    let end = IPV6_HEADER_LEN + usize::from(header.payload_length());
    if end > packet.len() {
        return Err(IpError::Ipv6BadPayloadLength);
    }
    let mut rest = &packet[IPV6_HEADER_LEN..end];
    let mut next_header = header.next_header();
    let mut router_alert = false;
    let mut first = true;
    // Every step consumes at least 8 bytes of `rest` or returns, so this terminates.
    loop {
        match next_header {
            IpNumber::IPV6_HEADER_HOP_BY_HOP => {
                // RFC 8200 §4.1: hop-by-hop options only immediately after the IPv6 header.
                if !first {
                    return Err(IpError::Ipv6BadExtension);
                }
                let ext = Ipv6RawExtHeaderSlice::from_slice(rest)
                    .map_err(|_| IpError::Ipv6BadExtension)?;
                router_alert = ipv6_router_alert(ext.payload())?;
                next_header = ext.next_header();
                rest = &rest[ext.slice().len()..];
            }
            IpNumber::IPV6_DESTINATION_OPTIONS => {
                let ext = Ipv6RawExtHeaderSlice::from_slice(rest)
                    .map_err(|_| IpError::Ipv6BadExtension)?;
                // Validated for well-formedness only: Router Alert belongs in hop-by-hop.
                ipv6_router_alert(ext.payload())?;
                next_header = ext.next_header();
                rest = &rest[ext.slice().len()..];
            }
            IpNumber::IPV6_ROUTE_HEADER => {
                let ext = Ipv6RawExtHeaderSlice::from_slice(rest)
                    .map_err(|_| IpError::Ipv6BadExtension)?;
                next_header = ext.next_header();
                rest = &rest[ext.slice().len()..];
            }
            IpNumber::AUTHENTICATION_HEADER => {
                let ext =
                    IpAuthHeaderSlice::from_slice(rest).map_err(|_| IpError::Ipv6BadExtension)?;
                next_header = ext.next_header();
                rest = &rest[ext.slice().len()..];
            }
            IpNumber::IPV6_FRAGMENTATION_HEADER => return Err(IpError::Fragment),
            IpNumber::IPV6_ICMP => {
                let meta = Ipv6Meta {
                    src: header.source_addr(),
                    dst: header.destination_addr(),
                    hop_limit: header.hop_limit(),
                    router_alert,
                };
                return Ok(match rest.first() {
                    Some(&kind) if MldType::is_mld(kind) => Classified::Mld {
                        meta,
                        payload: rest,
                    },
                    Some(&kind) => Classified::Other(OtherKind::Icmpv6(kind)),
                    // No ICMPv6 type at all: nothing we could answer.
                    None => Classified::Other(OtherKind::Ipv6(next_header.0)),
                });
            }
            other => return Ok(Classified::Other(OtherKind::Ipv6(other.0))),
        }
        first = false;
    }
}

/// Walks the TLV options of a hop-by-hop or destination options header (RFC 8200 §4.2):
/// Pad1 is one byte, every other option is type, length, data and must stay inside the
/// header. Options we do not know are skipped whatever their action bits say.
fn ipv6_router_alert(mut options: &[u8]) -> Result<bool, IpError> {
    let mut router_alert = false;
    while let Some(&kind) = options.first() {
        if kind == IPV6_OPTION_PAD1 {
            options = &options[1..];
            continue;
        }
        let data_len = usize::from(*options.get(1).ok_or(IpError::Ipv6BadExtension)?);
        let len = 2 + data_len;
        if len > options.len() {
            return Err(IpError::Ipv6BadExtension);
        }
        if kind == IPV6_OPTION_ROUTER_ALERT {
            // RFC 2711: the value is two bytes; 0 means MLD.
            if data_len != 2 {
                return Err(IpError::Ipv6BadExtension);
            }
            router_alert |= options[2..4] == [0, 0];
        }
        options = &options[len..];
    }
    Ok(router_alert)
}

/// An IPv4 packet carrying `igmp`, shaped as the Linux kernel sends IGMP (RFC 2236 §2,
/// RFC 9776 §4): TOS 0xc0, ID 0, DF, TTL 1, protocol 2, Router Alert option, header checksum.
///
/// Panics if `igmp` does not fit an IPv4 packet.
pub fn build_ipv4(src: Ipv4Addr, dst: Ipv4Addr, igmp: &[u8]) -> Vec<u8> {
    let mut header = Ipv4Header::new(0, 1, IpNumber::IGMP, src.octets(), dst.octets())
        .expect("empty payload fits");
    header.dscp = IPV4_TOS_DSCP;
    header.identification = 0;
    header.dont_fragment = true;
    header.options = IPV4_ROUTER_ALERT.into();
    header
        .set_payload_len(igmp.len())
        .expect("IGMP message too long for an IPv4 packet");
    header.header_checksum = header.calc_header_checksum();
    let mut packet = Vec::with_capacity(header.header_len() + igmp.len());
    packet.extend_from_slice(&header.to_bytes());
    packet.extend_from_slice(igmp);
    packet
}

/// An IPv6 packet carrying the ICMPv6 message `icmpv6` behind a hop-by-hop header with a
/// Router Alert (RFC 2710 §3, RFC 9777 §5): traffic class 0, flow label 0, hop limit 1.
/// The checksum inside `icmpv6` must already be computed for `src` and `dst`.
///
/// Panics if `icmpv6` does not fit an IPv6 payload.
pub fn build_ipv6(src: Ipv6Addr, dst: Ipv6Addr, icmpv6: &[u8]) -> Vec<u8> {
    let hop_by_hop = Ipv6RawExtHeader::new_raw(IpNumber::IPV6_ICMP, &IPV6_HOP_BY_HOP_OPTIONS)
        .expect("6 option bytes make an 8-byte header");
    let hop_by_hop = hop_by_hop.to_bytes();
    let payload_length = u16::try_from(hop_by_hop.len() + icmpv6.len())
        .expect("ICMPv6 message too long for an IPv6 packet");
    let header = Ipv6Header {
        traffic_class: 0,
        flow_label: Ipv6FlowLabel::ZERO,
        payload_length,
        next_header: IpNumber::IPV6_HEADER_HOP_BY_HOP,
        hop_limit: 1,
        source: src.octets(),
        destination: dst.octets(),
    };
    let mut packet = Vec::with_capacity(IPV6_HEADER_LEN + usize::from(payload_length));
    packet.extend_from_slice(&header.to_bytes());
    packet.extend_from_slice(&hop_by_hop);
    packet.extend_from_slice(icmpv6);
    packet
}
