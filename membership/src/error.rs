//! Why a request to the [`Host`](crate::Host) was refused. A refused request changes nothing.

use alloc::string::String;
use core::net::IpAddr;

use crate::IfIndex;

/// A refused join, leave or interface change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The interface was never added.
    #[error("unknown interface {0}")]
    UnknownInterface(IfIndex),
    /// The group is not a multicast address.
    #[error("{0} is not a multicast address")]
    NotMulticast(IpAddr),
    /// A leave for a group that holds no request (or is already being left).
    #[error("{0} is not joined on this interface")]
    NotJoined(IpAddr),
    /// More than `u32::MAX` requests for one group.
    #[error("too many joins of one group")]
    TooManyUsers,
    /// The group table holds 2^32 records: no more groups can be joined.
    #[error("the group table is full")]
    TableFull,
    /// The interface was added before.
    #[error("interface {0} already exists")]
    InterfaceExists(IfIndex),
    /// A source-filter leave that matches no request held.
    #[error("no such source filter is held for the group")]
    NoSuchFilter,
    /// A filter source that is not a unicast address of the group's family (RFC 9776 §3.1).
    #[error("source {0} is not a unicast address of the group's family")]
    BadSource(IpAddr),
    /// A change for an owner that holds no request for the group.
    #[error("owner {0:?} holds no filter for the group")]
    NoSuchOwner(String),
    /// An owner's name must be 1 to 64 printable characters.
    #[error("bad owner name {0:?}: 1 to 64 printable characters, no spaces")]
    BadOwner(String),
    /// INCLUDE {} is a leave, not a join (RFC 9776 §3.1).
    #[error("an INCLUDE filter needs at least one source")]
    EmptyInclude,
}
