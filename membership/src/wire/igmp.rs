//! IGMP messages (RFC 1112 appendix I, RFC 2236 §2, RFC 9776 §4): the IP payload of
//! protocol 2.
//!
//! All versions share the first eight bytes:
//!
//! ```text
//! | Type (1) | Max Resp Code (1) | Checksum (2) | Group Address (4) |
//! ```
//!
//! An IGMPv3 query continues with `Resv(4) | S(1) | QRV(3)`, QQIC, Number of Sources (2) and
//! the sources. An IGMPv3 report reuses bytes 4..8 as Reserved (2) and Number of Group
//! Records (2), followed by the records.

use alloc::vec;
use alloc::vec::Vec;
use core::net::Ipv4Addr;
use core::time::Duration;

use super::record;
use super::{decode_code8, internet_checksum, Error, GroupRecord, Result};

/// Byte offsets of the IGMP fields.
pub mod field {
    use core::ops::Range;

    /// Type (RFC 2236 §2.1, RFC 9776 §4).
    pub const TYPE: usize = 0;
    /// Max Resp Code (RFC 2236 §2.2, RFC 9776 §4.1.1); Reserved in an IGMPv3 report.
    pub const MAX_RESP_CODE: usize = 1;
    /// Checksum, big-endian, over the whole IGMP message (RFC 2236 §2.3).
    pub const CHECKSUM: Range<usize> = 2..4;
    /// Group Address (RFC 2236 §2.4, RFC 9776 §4.1); not in an IGMPv3 report.
    pub const GROUP: Range<usize> = 4..8;

    // IGMPv3 query (RFC 9776 §4.1).
    /// `Resv(4) | S(1) | QRV(3)`.
    pub const FLAGS: usize = 8;
    /// Querier's Query Interval Code (RFC 9776 §4.1.7).
    pub const QQIC: usize = 9;
    /// Number of Sources, big-endian (RFC 9776 §4.1).
    pub const NUM_SOURCES: Range<usize> = 10..12;
    /// Start of the Source Addresses, 4 bytes each (RFC 9776 §4.1).
    pub const SOURCES: usize = 12;

    // IGMPv3 report (RFC 9776 §4.2).
    /// Reserved field before the record count: 0 when sent, ignored when received.
    pub const REPORT_RESERVED: Range<usize> = 4..6;
    /// Number of Group Records, big-endian (RFC 9776 §4.2).
    pub const NUM_RECORDS: Range<usize> = 6..8;
    /// Start of the group records (RFC 9776 §4.2.4).
    pub const RECORDS: usize = 8;
}

/// Length of an IGMPv1/v2 message and of the fixed part of every IGMP message.
pub const HEADER_LEN: usize = 8;
/// Length of an IGMPv3 query without sources.
pub const QUERY_V3_HEADER_LEN: usize = field::SOURCES;

/// IGMP message types (RFC 9776 §4, §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// 0x11, all versions; the version is told by the length.
    MembershipQuery,
    /// 0x12
    ReportV1,
    /// 0x16
    ReportV2,
    /// 0x17
    LeaveGroup,
    /// 0x22
    ReportV3,
    /// Any other type byte, kept as is; [`IgmpRepr::parse`] rejects it with
    /// [`Error::UnknownType`].
    Unknown(u8),
}

impl From<u8> for MessageType {
    fn from(value: u8) -> Self {
        match value {
            0x11 => MessageType::MembershipQuery,
            0x12 => MessageType::ReportV1,
            0x16 => MessageType::ReportV2,
            0x17 => MessageType::LeaveGroup,
            0x22 => MessageType::ReportV3,
            other => MessageType::Unknown(other),
        }
    }
}

impl From<MessageType> for u8 {
    fn from(kind: MessageType) -> u8 {
        match kind {
            MessageType::MembershipQuery => 0x11,
            MessageType::ReportV1 => 0x12,
            MessageType::ReportV2 => 0x16,
            MessageType::LeaveGroup => 0x17,
            MessageType::ReportV3 => 0x22,
            MessageType::Unknown(other) => other,
        }
    }
}

/// A view of an IGMP message over a buffer that holds exactly the message (the IP payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgmpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

shared_accessors!(IgmpPacket, Ipv4Addr, "IGMPv3");

impl<T: AsRef<[u8]>> IgmpPacket<T> {
    /// Wraps a buffer without any check; getters may panic on a short buffer.
    pub fn new_unchecked(buffer: T) -> Self {
        IgmpPacket { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the lengths the message type needs, so that the getters for that type cannot
    /// panic: 8 bytes for every message; for a query, 8 or at least 12 bytes
    /// (RFC 9776 §7.1), and an IGMPv3 query must hold its sources. The records of an
    /// IGMPv3 report are checked one by one by [`records`](Self::records).
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.msg_type() == MessageType::MembershipQuery && len > HEADER_LEN {
            if len < QUERY_V3_HEADER_LEN {
                return Err(Error::BadQueryLength);
            }
            let sources_len = usize::from(self.num_sources()) * 4;
            if len < QUERY_V3_HEADER_LEN + sources_len {
                return Err(Error::BadCount);
            }
        }
        Ok(())
    }

    /// Gives back the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Type (byte 0). Panics on an empty buffer.
    pub fn msg_type(&self) -> MessageType {
        MessageType::from(self.bytes()[field::TYPE])
    }

    /// Max Resp Code; unused (0) in IGMPv1 and in reports and leaves.
    pub fn max_resp_code(&self) -> u8 {
        self.bytes()[field::MAX_RESP_CODE]
    }

    /// Checksum field as stored (big-endian on the wire), not verified: see
    /// [`verify_checksum`](Self::verify_checksum).
    pub fn checksum(&self) -> u16 {
        self.read_u16(field::CHECKSUM)
    }

    /// True for a query long enough to be an IGMPv3 query (RFC 9776 §7.1).
    pub fn is_v3_query(&self) -> bool {
        self.msg_type() == MessageType::MembershipQuery && self.bytes().len() >= QUERY_V3_HEADER_LEN
    }

    /// The checksum covers the whole IGMP message (RFC 9776 §4.1.2).
    ///
    /// Always true when built for fuzzing (`cfg(fuzzing)`), as in smoltcp: random inputs
    /// almost never carry a right checksum, and the fuzzer must reach the state machine.
    pub fn verify_checksum(&self) -> bool {
        if cfg!(fuzzing) {
            return true;
        }
        internet_checksum(self.bytes()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IgmpPacket<T> {
    /// Writes the Type byte.
    pub fn set_msg_type(&mut self, kind: MessageType) {
        self.bytes_mut()[field::TYPE] = u8::from(kind);
    }

    /// Writes the Max Resp Code byte.
    pub fn set_max_resp_code(&mut self, code: u8) {
        self.bytes_mut()[field::MAX_RESP_CODE] = code;
    }

    /// Computes the checksum over the whole buffer and stores it.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let checksum = internet_checksum(self.bytes());
        self.set_checksum(checksum);
    }
}

/// An IGMP message, any version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgmpRepr {
    /// An 8-byte query: IGMPv1 if `max_resp_code` is 0, else IGMPv2 (RFC 2236 §4).
    Query {
        /// Max Resp Code: 0 in IGMPv1, otherwise tenths of a second (RFC 2236 §2.2).
        max_resp_code: u8,
        /// 0.0.0.0 for a General Query, the group for a Group-Specific Query (RFC 2236 §2.4).
        group: Ipv4Addr,
    },
    /// An IGMPv3 query (12 bytes or more).
    QueryV3 {
        /// Max Resp Code, the floating-point code in tenths of a second (RFC 9776 §4.1.1);
        /// see [`decode_code8`].
        max_resp_code: u8,
        /// 0.0.0.0 for a General Query, else the group being queried (RFC 9776 §4.1).
        group: Ipv4Addr,
        /// S flag, Suppress Router-Side Processing (RFC 9776 §4.1).
        suppress_router: bool,
        /// Querier's Robustness Variable (RFC 9776 §4.1), 0..=7: `parse` yields the low
        /// three bits of its byte, `emit` writes only those.
        qrv: u8,
        /// Querier's Query Interval Code (RFC 9776 §4.1.7).
        qqic: u8,
        /// Source Addresses in wire order; empty but in a Group-and-Source-Specific Query.
        sources: Vec<Ipv4Addr>,
    },
    /// IGMPv1 Membership Report, type 0x12 (RFC 1112 appendix I).
    ReportV1 {
        /// The group reported.
        group: Ipv4Addr,
    },
    /// IGMPv2 Membership Report, type 0x16 (RFC 2236 §2).
    ReportV2 {
        /// The group reported.
        group: Ipv4Addr,
    },
    /// IGMPv2 Leave Group, type 0x17 (RFC 2236 §2).
    Leave {
        /// The group left.
        group: Ipv4Addr,
    },
    /// IGMPv3 Membership Report, type 0x22 (RFC 9776 §4.2).
    ReportV3 {
        /// Group records in wire order (RFC 9776 §4.2.4).
        records: Vec<GroupRecord<Ipv4Addr>>,
    },
}

impl IgmpRepr {
    /// Parses a whole IGMP message (the IP payload within the IP total length).
    ///
    /// Checks, in order: 8 bytes at least ([`Error::Truncated`]); the checksum over the whole
    /// message; then the type and the length rules of RFC 9776 §7.1. Bytes after the last
    /// source of a v3 query, after the last record of a v3 report and after the first eight
    /// bytes of other messages are ignored. The Max Resp Code of v1/v2 reports and leaves is
    /// ignored (unused, RFC 2236 §2.2).
    pub fn parse(bytes: &[u8]) -> Result<IgmpRepr> {
        if bytes.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let packet = IgmpPacket::new_unchecked(bytes);
        if !packet.verify_checksum() {
            return Err(Error::Checksum);
        }
        packet.check_len()?;
        match packet.msg_type() {
            MessageType::MembershipQuery if packet.is_v3_query() => Ok(IgmpRepr::QueryV3 {
                max_resp_code: packet.max_resp_code(),
                group: packet.group(),
                suppress_router: packet.suppress_router(),
                qrv: packet.qrv(),
                qqic: packet.qqic(),
                sources: packet.sources().collect(),
            }),
            MessageType::MembershipQuery => Ok(IgmpRepr::Query {
                max_resp_code: packet.max_resp_code(),
                group: packet.group(),
            }),
            MessageType::ReportV1 => Ok(IgmpRepr::ReportV1 {
                group: packet.group(),
            }),
            MessageType::ReportV2 => Ok(IgmpRepr::ReportV2 {
                group: packet.group(),
            }),
            MessageType::LeaveGroup => Ok(IgmpRepr::Leave {
                group: packet.group(),
            }),
            MessageType::ReportV3 => Ok(IgmpRepr::ReportV3 {
                records: record::parse_records(&bytes[field::RECORDS..], packet.num_records())?,
            }),
            MessageType::Unknown(kind) => Err(Error::UnknownType(kind)),
        }
    }

    /// Length of the message `emit` writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            IgmpRepr::Query { .. }
            | IgmpRepr::ReportV1 { .. }
            | IgmpRepr::ReportV2 { .. }
            | IgmpRepr::Leave { .. } => HEADER_LEN,
            IgmpRepr::QueryV3 { sources, .. } => QUERY_V3_HEADER_LEN + 4 * sources.len(),
            IgmpRepr::ReportV3 { records } => {
                field::RECORDS + records.iter().map(GroupRecord::buffer_len).sum::<usize>()
            }
        }
    }

    /// Writes the message, checksum included, into `buf`.
    ///
    /// Panics if `buf` is not exactly [`buffer_len`](Self::buffer_len) bytes long, or if a
    /// count does not fit its field (more than 65535 sources or records; auxiliary data not
    /// a multiple of 4 bytes or longer than 255 words).
    pub fn emit(&self, buf: &mut [u8]) {
        assert_eq!(
            buf.len(),
            self.buffer_len(),
            "IGMP emit buffer must be exactly buffer_len() bytes"
        );
        let mut packet = IgmpPacket::new_unchecked(buf);
        match self {
            IgmpRepr::Query {
                max_resp_code,
                group,
            } => {
                packet.set_msg_type(MessageType::MembershipQuery);
                packet.set_max_resp_code(*max_resp_code);
                packet.set_group(*group);
            }
            IgmpRepr::QueryV3 {
                max_resp_code,
                group,
                suppress_router,
                qrv,
                qqic,
                sources,
            } => {
                packet.set_msg_type(MessageType::MembershipQuery);
                packet.set_max_resp_code(*max_resp_code);
                packet.set_group(*group);
                packet.emit_v3_query_fields(*suppress_router, *qrv, *qqic, sources);
            }
            IgmpRepr::ReportV1 { group } => {
                packet.set_msg_type(MessageType::ReportV1);
                packet.set_max_resp_code(0);
                packet.set_group(*group);
            }
            IgmpRepr::ReportV2 { group } => {
                packet.set_msg_type(MessageType::ReportV2);
                packet.set_max_resp_code(0);
                packet.set_group(*group);
            }
            IgmpRepr::Leave { group } => {
                packet.set_msg_type(MessageType::LeaveGroup);
                packet.set_max_resp_code(0);
                packet.set_group(*group);
            }
            IgmpRepr::ReportV3 { records } => {
                packet.set_msg_type(MessageType::ReportV3);
                packet.set_max_resp_code(0);
                packet.emit_v3_records(records);
            }
        }
        packet.fill_checksum();
    }

    /// Convenience: a freshly allocated buffer holding the emitted message.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buf = vec![0; self.buffer_len()];
        self.emit(&mut buf);
        buf
    }

    /// Max Resp Time of a query: IGMPv1 (code 0) means 10 s (RFC 2236 §4), IGMPv2 counts
    /// tenths of a second, IGMPv3 uses the floating-point code (RFC 9776 §4.1.1). `None` for
    /// reports and leaves.
    pub fn max_resp_time(&self) -> Option<Duration> {
        match self {
            IgmpRepr::Query {
                max_resp_code: 0, ..
            } => Some(Duration::from_secs(10)),
            IgmpRepr::Query { max_resp_code, .. } => {
                Some(Duration::from_millis(u64::from(*max_resp_code) * 100))
            }
            IgmpRepr::QueryV3 { max_resp_code, .. } => Some(Duration::from_millis(
                u64::from(decode_code8(*max_resp_code)) * 100,
            )),
            _ => None,
        }
    }
}
