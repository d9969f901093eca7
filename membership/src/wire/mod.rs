//! Wire formats: IGMP v1/v2/v3 (RFC 1112, 2236, 9776), MLD v1/v2 (RFC 2710, 9777) and the IP
//! layer that carries them.
//!
//! Each message format has two layers, as in smoltcp:
//! - a zero-copy view over a buffer ([`igmp::IgmpPacket`], [`mld::MldPacket`]) whose
//!   `new_checked` validates lengths once so that its getters cannot panic afterwards;
//! - a semantic representation ([`igmp::IgmpRepr`], [`mld::MldRepr`]) with `parse`,
//!   `buffer_len` and `emit`, so that `parse(emit(r)) == r`.
//!
//! [`ip::classify`] takes a raw IP packet as read from a TUN device and hands back the IGMP or
//! MLD message inside it together with the IP fields the protocols care about.

use alloc::vec::Vec;
use core::net::{Ipv4Addr, Ipv6Addr};

#[macro_use]
mod accessors;
mod code;
mod display;
pub mod igmp;
pub mod ip;
pub mod mld;
mod record;
mod v3_query;

pub use code::{decode_code16, decode_code8, encode_code16, encode_code8};
pub use record::{GroupRecordView, GroupRecords};
pub use v3_query::V3QueryFields;

/// Why an IGMP or MLD message was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Shorter than the fixed header of its message type.
    #[error("message truncated")]
    Truncated,
    /// The checksum does not verify: for IGMP the Internet checksum over the whole message
    /// (RFC 2236 §2.3, RFC 9776 §4.1, §4.2), for MLD the ICMPv6 checksum with the IPv6
    /// pseudo-header (RFC 2710 §3, RFC 9777 §5.1, §5.2). Never returned under `cfg(fuzzing)`.
    #[error("bad checksum")]
    Checksum,
    /// A message type the protocol does not define (IGMP: other than 0x11, 0x12, 0x16, 0x17,
    /// 0x22; MLD: other than 130, 131, 132, 143); the value is the type byte.
    #[error("unknown message type {0}")]
    UnknownType(u8),
    /// A query's Number of Sources, a report's Number of Group Records, or a record's Number
    /// of Sources or Aux Data Len claims more bytes than the message holds.
    #[error("source or record count runs past the end of the message")]
    BadCount,
    /// RFC 9776 §7.1: a query of 9 to 11 bytes is neither v1/v2 nor v3 and must be ignored.
    /// MLD queries of 25 to 27 bytes (RFC 9777 §8.1) are reported the same way.
    /// One error for both protocols, so its text names both lengths.
    #[error("query too long for v1/v2 and too short for v3 (IGMP: 9 to 11 bytes, MLD: 25 to 27)")]
    BadQueryLength,
}

/// The result of the wire parsers, failing with an [`Error`].
pub type Result<T> = core::result::Result<T, Error>;

/// Group Record Type of IGMPv3 / MLDv2 reports (RFC 9776 §4.2.12, RFC 9777 §5.2.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum RecordType {
    /// 1, `MODE_IS_INCLUDE`: current-state record, filter mode INCLUDE with the listed sources.
    ModeIsInclude,
    /// 2, `MODE_IS_EXCLUDE`: current-state record, filter mode EXCLUDE with the listed sources.
    ModeIsExclude,
    /// 3, `CHANGE_TO_INCLUDE_MODE`: filter-mode-change record, the mode changed to INCLUDE.
    ChangeToInclude,
    /// 4, `CHANGE_TO_EXCLUDE_MODE`: filter-mode-change record, the mode changed to EXCLUDE.
    ChangeToExclude,
    /// 5, `ALLOW_NEW_SOURCES`: source-list-change record, the listed sources are now wanted.
    AllowNewSources,
    /// 6, `BLOCK_OLD_SOURCES`: source-list-change record, the listed sources are no longer
    /// wanted.
    BlockOldSources,
    /// Any other value. Receivers must ignore such records (RFC 9776 §4.2.12); keeping the
    /// value lets a report be re-emitted unchanged.
    Unknown(u8),
}

impl From<u8> for RecordType {
    fn from(value: u8) -> Self {
        match value {
            1 => RecordType::ModeIsInclude,
            2 => RecordType::ModeIsExclude,
            3 => RecordType::ChangeToInclude,
            4 => RecordType::ChangeToExclude,
            5 => RecordType::AllowNewSources,
            6 => RecordType::BlockOldSources,
            other => RecordType::Unknown(other),
        }
    }
}

impl From<RecordType> for u8 {
    fn from(kind: RecordType) -> u8 {
        match kind {
            RecordType::ModeIsInclude => 1,
            RecordType::ModeIsExclude => 2,
            RecordType::ChangeToInclude => 3,
            RecordType::ChangeToExclude => 4,
            RecordType::AllowNewSources => 5,
            RecordType::BlockOldSources => 6,
            RecordType::Unknown(other) => other,
        }
    }
}

/// One group record of an IGMPv3 (`A = Ipv4Addr`) or MLDv2 (`A = Ipv6Addr`) report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord<A> {
    /// Record Type (RFC 9776 §4.2.12, RFC 9777 §5.2.12).
    pub kind: RecordType,
    /// Multicast Address the record is about.
    pub group: A,
    /// Source Addresses in wire order; their number is the record's Number of Sources.
    pub sources: Vec<A>,
    /// Auxiliary data; its length must be a multiple of 4 (the wire counts it in 32-bit
    /// words) and at most 255 words. No record type defined so far uses it.
    pub aux_data: Vec<u8>,
}

/// Addresses that can appear in a group record: the IGMP and MLD cases share one layout.
pub trait RecordAddress: Copy + 'static + sealed::Sealed {
    /// Length of the address on the wire.
    const LEN: usize;
    /// Reads an address from the first `LEN` bytes. Panics if `bytes` is shorter.
    fn read(bytes: &[u8]) -> Self;
    /// Writes the address into the first `LEN` bytes. Panics if `out` is shorter.
    fn write(&self, out: &mut [u8]);
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for core::net::Ipv4Addr {}
    impl Sealed for core::net::Ipv6Addr {}
}

impl RecordAddress for Ipv4Addr {
    const LEN: usize = 4;
    fn read(bytes: &[u8]) -> Self {
        let mut octets = [0; 4];
        octets.copy_from_slice(&bytes[..4]);
        Ipv4Addr::from(octets)
    }
    fn write(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.octets());
    }
}

impl RecordAddress for Ipv6Addr {
    const LEN: usize = 16;
    fn read(bytes: &[u8]) -> Self {
        let mut octets = [0; 16];
        octets.copy_from_slice(&bytes[..16]);
        Ipv6Addr::from(octets)
    }
    fn write(&self, out: &mut [u8]) {
        out[..16].copy_from_slice(&self.octets());
    }
}

/// The Internet checksum (RFC 1071) of `data`, odd lengths padded with a zero byte.
///
/// A message whose checksum field is filled in correctly sums to 0 here. The result is the
/// value to store big-endian in a checksum field (as `set_checksum` does).
pub fn internet_checksum(data: &[u8]) -> u16 {
    etherparse::checksum::Sum16BitWords::new()
        .add_slice(data)
        .ones_complement()
        .to_be()
}
