//! MLD messages (RFC 2710 §3, RFC 9777 §5): ICMPv6 messages, the upper-layer payload of an
//! IPv6 packet with next header 58.
//!
//! Queries, MLDv1 reports and Dones share the first 24 bytes:
//!
//! ```text
//! | Type (1) | Code (1) | Checksum (2) | Max Resp Delay / Code (2) | Reserved (2) |
//! | Multicast Address (16) |
//! ```
//!
//! An MLDv2 query continues with `Resv(4) | S(1) | QRV(3)`, QQIC, Number of Sources (2) and
//! the sources. An MLDv2 report has Reserved (2) and Number of Multicast Address Records (2)
//! at bytes 4..8, followed by the records.

use alloc::vec;
use alloc::vec::Vec;
use core::net::Ipv6Addr;
use core::time::Duration;

use etherparse::checksum::Sum16BitWords;

use super::record;
use super::{decode_code16, Error, GroupRecord, Result};

/// Byte offsets of the MLD fields.
pub mod field {
    use core::ops::Range;

    /// ICMPv6 Type (RFC 2710 §3, RFC 9777 §5).
    pub const TYPE: usize = 0;
    /// ICMPv6 Code: 0 when sent, ignored when received.
    pub const CODE: usize = 1;
    /// ICMPv6 checksum, big-endian, over the message and the IPv6 pseudo-header.
    pub const CHECKSUM: Range<usize> = 2..4;
    /// Maximum Response Delay (MLDv1, ms) or Maximum Response Code (MLDv2).
    pub const MAX_RESP: Range<usize> = 4..6;
    /// Reserved after the delay / code: 0 when sent, ignored when received.
    pub const RESERVED: Range<usize> = 6..8;
    /// Multicast Address (RFC 2710 §3.6, RFC 9777 §5.1); not in an MLDv2 report.
    pub const GROUP: Range<usize> = 8..24;

    // MLDv2 query (RFC 9777 §5.1).
    /// `Resv(4) | S(1) | QRV(3)`.
    pub const FLAGS: usize = 24;
    /// Querier's Query Interval Code (RFC 9777 §5.1.9).
    pub const QQIC: usize = 25;
    /// Number of Sources, big-endian (RFC 9777 §5.1).
    pub const NUM_SOURCES: Range<usize> = 26..28;
    /// Start of the Source Addresses, 16 bytes each (RFC 9777 §5.1).
    pub const SOURCES: usize = 28;

    // MLDv2 report (RFC 9777 §5.2).
    /// Reserved field before the record count: 0 when sent, ignored when received.
    pub const REPORT_RESERVED: Range<usize> = 4..6;
    /// Number of Multicast Address Records, big-endian (RFC 9777 §5.2).
    pub const NUM_RECORDS: Range<usize> = 6..8;
    /// Start of the Multicast Address Records (RFC 9777 §5.2.4).
    pub const RECORDS: usize = 8;
}

/// The fixed part every MLD message has (the MLDv2 report header).
pub const MIN_LEN: usize = 8;
/// Length of an MLDv1 message (query, report, done).
pub const V1_LEN: usize = field::GROUP.end;
/// Length of an MLDv2 query without sources.
pub const QUERY_V2_HEADER_LEN: usize = field::SOURCES;

/// IPv6 next header value of ICMPv6, used in the checksum pseudo-header.
const NEXT_HEADER_ICMPV6: u8 = 58;

/// ICMPv6 types of MLD (RFC 2710 §3, RFC 9777 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// 130, both versions; the version is told by the length.
    Query,
    /// 131
    ReportV1,
    /// 132
    Done,
    /// 143
    ReportV2,
    /// Any other ICMPv6 type, kept as is; [`MldRepr::parse`] rejects it with
    /// [`Error::UnknownType`].
    Unknown(u8),
}

impl MessageType {
    /// True for the four ICMPv6 types that are MLD.
    pub fn is_mld(icmpv6_type: u8) -> bool {
        !matches!(MessageType::from(icmpv6_type), MessageType::Unknown(_))
    }
}

impl From<u8> for MessageType {
    fn from(value: u8) -> Self {
        match value {
            130 => MessageType::Query,
            131 => MessageType::ReportV1,
            132 => MessageType::Done,
            143 => MessageType::ReportV2,
            other => MessageType::Unknown(other),
        }
    }
}

impl From<MessageType> for u8 {
    fn from(kind: MessageType) -> u8 {
        match kind {
            MessageType::Query => 130,
            MessageType::ReportV1 => 131,
            MessageType::Done => 132,
            MessageType::ReportV2 => 143,
            MessageType::Unknown(other) => other,
        }
    }
}

/// The ICMPv6 checksum of `message` with the IPv6 pseudo-header (RFC 8200 §8.1).
///
/// A message whose checksum field is filled in correctly gives 0. The result is the value
/// to store big-endian in the checksum field (as [`MldPacket::set_checksum`] does).
pub fn icmpv6_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, message: &[u8]) -> u16 {
    // Upper-layer lengths above u32 cannot occur: IPv6 payloads are at most 65535 bytes
    // without jumbograms, which we do not handle.
    let length = message.len() as u32;
    Sum16BitWords::new()
        .add_16bytes(src.octets())
        .add_16bytes(dst.octets())
        .add_4bytes(length.to_be_bytes())
        .add_4bytes([0, 0, 0, NEXT_HEADER_ICMPV6])
        .add_slice(message)
        .ones_complement()
        .to_be()
}

/// A view of an MLD message over a buffer holding exactly the ICMPv6 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MldPacket<T: AsRef<[u8]>> {
    buffer: T,
}

shared_accessors!(MldPacket, Ipv6Addr, "MLDv2");

impl<T: AsRef<[u8]>> MldPacket<T> {
    /// Wraps a buffer without any check; getters may panic on a short buffer.
    pub fn new_unchecked(buffer: T) -> Self {
        MldPacket { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the lengths the message type needs, so that the getters for that type cannot
    /// panic: 8 bytes for every message; 24 for a query, report or done; a query is 24 bytes
    /// or at least 28 (RFC 9777 §8.1) and an MLDv2 query must hold its sources. The records
    /// of an MLDv2 report are checked one by one by [`records`](Self::records).
    pub fn check_len(&self) -> Result<()> {
        let len = self.bytes().len();
        if len < MIN_LEN {
            return Err(Error::Truncated);
        }
        match self.msg_type() {
            MessageType::Query | MessageType::ReportV1 | MessageType::Done if len < V1_LEN => {
                Err(Error::Truncated)
            }
            MessageType::Query if len > V1_LEN => {
                if len < QUERY_V2_HEADER_LEN {
                    return Err(Error::BadQueryLength);
                }
                let sources_len = usize::from(self.num_sources()) * 16;
                if len < QUERY_V2_HEADER_LEN + sources_len {
                    return Err(Error::BadCount);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Gives back the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// ICMPv6 Type (byte 0). Panics on an empty buffer.
    pub fn msg_type(&self) -> MessageType {
        MessageType::from(self.bytes()[field::TYPE])
    }

    /// ICMPv6 code: 0 when sent, ignored when received.
    pub fn code(&self) -> u8 {
        self.bytes()[field::CODE]
    }

    /// Checksum field as stored (big-endian on the wire), not verified: see
    /// [`verify_checksum`](Self::verify_checksum).
    pub fn checksum(&self) -> u16 {
        self.read_u16(field::CHECKSUM)
    }

    /// MLDv1 Maximum Response Delay in milliseconds (queries; 0 in reports and dones).
    pub fn max_resp_delay(&self) -> u16 {
        self.read_u16(field::MAX_RESP)
    }

    /// MLDv2 Maximum Response Code: the same two bytes as the MLDv1 delay.
    pub fn max_resp_code(&self) -> u16 {
        self.read_u16(field::MAX_RESP)
    }

    /// True for a query long enough to be an MLDv2 query (RFC 9777 §8.1).
    pub fn is_v2_query(&self) -> bool {
        self.msg_type() == MessageType::Query && self.bytes().len() >= QUERY_V2_HEADER_LEN
    }

    /// Checks the ICMPv6 checksum with the pseudo-header of the enclosing IPv6 packet.
    ///
    /// Always true when built for fuzzing (`cfg(fuzzing)`), as in smoltcp: random inputs
    /// almost never carry a right checksum, and the fuzzer must reach the state machine.
    pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        if cfg!(fuzzing) {
            return true;
        }
        icmpv6_checksum(src, dst, self.bytes()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> MldPacket<T> {
    /// Writes the ICMPv6 Type byte.
    pub fn set_msg_type(&mut self, kind: MessageType) {
        self.bytes_mut()[field::TYPE] = u8::from(kind);
    }

    /// Writes the ICMPv6 Code byte.
    pub fn set_code(&mut self, code: u8) {
        self.bytes_mut()[field::CODE] = code;
    }

    /// Writes the MLDv1 Maximum Response Delay in milliseconds (bytes 4..6, big-endian).
    pub fn set_max_resp_delay(&mut self, delay_ms: u16) {
        self.write_u16(field::MAX_RESP, delay_ms);
    }

    /// Writes the MLDv2 Maximum Response Code (bytes 4..6, big-endian).
    pub fn set_max_resp_code(&mut self, code: u16) {
        self.write_u16(field::MAX_RESP, code);
    }

    /// Clears the Reserved field after the Maximum Response Delay / Code.
    pub fn clear_reserved(&mut self) {
        self.write_u16(field::RESERVED, 0);
    }

    /// Computes the ICMPv6 checksum over the whole buffer and the pseudo-header, and stores it.
    pub fn fill_checksum(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.set_checksum(0);
        let checksum = icmpv6_checksum(src, dst, self.bytes());
        self.set_checksum(checksum);
    }
}

/// An MLD message, either version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MldRepr {
    /// A 24-byte MLDv1 query (RFC 2710 §3.4); the delay is in milliseconds.
    Query {
        /// Maximum Response Delay in milliseconds (RFC 2710 §3.4).
        max_resp_delay: u16,
        /// `::` for a General Query, the address for a Multicast-Address-Specific Query
        /// (RFC 2710 §3.6).
        group: Ipv6Addr,
    },
    /// An MLDv2 query (28 bytes or more).
    QueryV2 {
        /// Maximum Response Code, milliseconds in the 16-bit floating-point code
        /// (RFC 9777 §5.1.3); see [`decode_code16`].
        max_resp_code: u16,
        /// `::` for a General Query, else the address being queried (RFC 9777 §5.1).
        group: Ipv6Addr,
        /// S flag, Suppress Router-Side Processing (RFC 9777 §5.1).
        suppress_router: bool,
        /// Querier's Robustness Variable (RFC 9777 §5.1), 0..=7: `parse` yields the low
        /// three bits of its byte, `emit` writes only those.
        qrv: u8,
        /// Querier's Query Interval Code (RFC 9777 §5.1.9).
        qqic: u8,
        /// Source Addresses in wire order; empty but in a
        /// Multicast-Address-and-Source-Specific Query.
        sources: Vec<Ipv6Addr>,
    },
    /// MLDv1 Multicast Listener Report, ICMPv6 type 131 (RFC 2710 §3).
    Report {
        /// The multicast address reported.
        group: Ipv6Addr,
    },
    /// MLDv1 Multicast Listener Done, ICMPv6 type 132 (RFC 2710 §3).
    Done {
        /// The multicast address left.
        group: Ipv6Addr,
    },
    /// MLDv2 Multicast Listener Report, ICMPv6 type 143 (RFC 9777 §5.2).
    ReportV2 {
        /// Multicast Address Records in wire order (RFC 9777 §5.2.4).
        records: Vec<GroupRecord<Ipv6Addr>>,
    },
}

impl MldRepr {
    /// Parses an MLD message: the ICMPv6 message, bounded by the IPv6 payload length, of a
    /// packet from `src` to `dst` (for the checksum pseudo-header).
    ///
    /// Checks, in order: 8 bytes at least ([`Error::Truncated`]); the checksum; then the type
    /// and the length rules. ICMPv6 code, the Reserved fields and bytes after the message
    /// proper are ignored, as is the delay field of MLDv1 reports and dones.
    pub fn parse(bytes: &[u8], src: &Ipv6Addr, dst: &Ipv6Addr) -> Result<MldRepr> {
        if bytes.len() < MIN_LEN {
            return Err(Error::Truncated);
        }
        let packet = MldPacket::new_unchecked(bytes);
        if !packet.verify_checksum(src, dst) {
            return Err(Error::Checksum);
        }
        packet.check_len()?;
        match packet.msg_type() {
            MessageType::Query if packet.is_v2_query() => Ok(MldRepr::QueryV2 {
                max_resp_code: packet.max_resp_code(),
                group: packet.group(),
                suppress_router: packet.suppress_router(),
                qrv: packet.qrv(),
                qqic: packet.qqic(),
                sources: packet.sources().collect(),
            }),
            MessageType::Query => Ok(MldRepr::Query {
                max_resp_delay: packet.max_resp_delay(),
                group: packet.group(),
            }),
            MessageType::ReportV1 => Ok(MldRepr::Report {
                group: packet.group(),
            }),
            MessageType::Done => Ok(MldRepr::Done {
                group: packet.group(),
            }),
            MessageType::ReportV2 => Ok(MldRepr::ReportV2 {
                records: record::parse_records(&bytes[field::RECORDS..], packet.num_records())?,
            }),
            MessageType::Unknown(kind) => Err(Error::UnknownType(kind)),
        }
    }

    /// Length of the message `emit` writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            MldRepr::Query { .. } | MldRepr::Report { .. } | MldRepr::Done { .. } => V1_LEN,
            MldRepr::QueryV2 { sources, .. } => QUERY_V2_HEADER_LEN + 16 * sources.len(),
            MldRepr::ReportV2 { records } => {
                field::RECORDS + records.iter().map(GroupRecord::buffer_len).sum::<usize>()
            }
        }
    }

    /// Writes the message into `buf`, with the checksum for a packet from `src` to `dst`.
    ///
    /// Panics if `buf` is not exactly [`buffer_len`](Self::buffer_len) bytes long, or if a
    /// count does not fit its field (more than 65535 sources or records; auxiliary data not
    /// a multiple of 4 bytes or longer than 255 words).
    pub fn emit(&self, src: &Ipv6Addr, dst: &Ipv6Addr, buf: &mut [u8]) {
        assert_eq!(
            buf.len(),
            self.buffer_len(),
            "MLD emit buffer must be exactly buffer_len() bytes"
        );
        let mut packet = MldPacket::new_unchecked(buf);
        packet.set_code(0);
        match self {
            MldRepr::Query {
                max_resp_delay,
                group,
            } => {
                packet.set_msg_type(MessageType::Query);
                packet.set_max_resp_delay(*max_resp_delay);
                packet.clear_reserved();
                packet.set_group(*group);
            }
            MldRepr::QueryV2 {
                max_resp_code,
                group,
                suppress_router,
                qrv,
                qqic,
                sources,
            } => {
                packet.set_msg_type(MessageType::Query);
                packet.set_max_resp_code(*max_resp_code);
                packet.clear_reserved();
                packet.set_group(*group);
                packet.emit_v3_query_fields(*suppress_router, *qrv, *qqic, sources);
            }
            MldRepr::Report { group } => {
                packet.set_msg_type(MessageType::ReportV1);
                packet.set_max_resp_delay(0);
                packet.clear_reserved();
                packet.set_group(*group);
            }
            MldRepr::Done { group } => {
                packet.set_msg_type(MessageType::Done);
                packet.set_max_resp_delay(0);
                packet.clear_reserved();
                packet.set_group(*group);
            }
            MldRepr::ReportV2 { records } => {
                packet.set_msg_type(MessageType::ReportV2);
                packet.emit_v3_records(records);
            }
        }
        packet.fill_checksum(src, dst);
    }

    /// Convenience: a freshly allocated buffer holding the emitted message.
    pub fn to_bytes(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> Vec<u8> {
        let mut buf = vec![0; self.buffer_len()];
        self.emit(src, dst, &mut buf);
        buf
    }

    /// Maximum Response Delay of a query: MLDv1 counts milliseconds, MLDv2 uses the
    /// floating-point code (RFC 9777 §5.1.3). `None` for reports and dones.
    pub fn max_resp_time(&self) -> Option<Duration> {
        match self {
            MldRepr::Query { max_resp_delay, .. } => {
                Some(Duration::from_millis(u64::from(*max_resp_delay)))
            }
            MldRepr::QueryV2 { max_resp_code, .. } => Some(Duration::from_millis(u64::from(
                decode_code16(*max_resp_code),
            ))),
            _ => None,
        }
    }
}
