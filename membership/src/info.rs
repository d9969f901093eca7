//! Snapshots of the host's state, for a driver's `show` (what `ip maddr` and
//! `/proc/net/igmp` tell on Linux).

use alloc::string::String;
use alloc::vec::Vec;
use core::net::IpAddr;

use crate::config::{IgmpVersion, MldVersion};
use crate::filter::SourceFilter;
use crate::IfIndex;

/// Where a walk of the group table with [`Host::groups_page`](crate::Host::groups_page)
/// stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCursor {
    pub(crate) ipv6: bool,
    pub(crate) slot: usize,
}

impl GroupCursor {
    /// The beginning of the table.
    pub const START: GroupCursor = GroupCursor {
        ipv6: false,
        slot: 0,
    };
}

/// One group record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct GroupInfo {
    /// The interface.
    pub iface: IfIndex,
    /// The group.
    pub group: IpAddr,
    /// Requests held (each join is one).
    pub users: u32,
    /// The group's state. In the IGMPv1/v2 and MLDv1 modes, RFC 2236 §6's and the NetBSD seed's
    /// states: "delaying", "idle" (we reported last), "lazy" (another host did), "sleeping",
    /// "awakening"; in the v3 modes "delaying" (a query response is pending), "reporting"
    /// (state-change retransmissions are pending), "leaving", "idle"; "silent" for groups that
    /// are never reported (224.0.0.0/24, ff02::1, IPv6 scopes 0 and 1).
    pub state: &'static str,
    /// Time left on the report timer, in ms.
    pub timer_ms: Option<u64>,
    /// Whether we sent the last report (v1/v2): a Leave / Done will be sent.
    pub last_reporter: bool,
    /// Unsolicited repeats still to come after the scheduled report (v1/v2).
    pub unsolicited_left: u8,
    /// v3: a state-change retransmission is pending, due in this many ms.
    pub retransmit_ms: Option<u64>,
    /// The interface state's filter mode: "include" or "exclude".
    pub filter_mode: &'static str,
    /// The interface state's sources.
    pub sources: Vec<IpAddr>,
    /// Every request held (what `users` counts), each with its own filter.
    pub requests: Vec<SourceFilter>,
    /// The owner of each request, in the order of `requests` (`None`: an anonymous join).
    pub owners: Vec<Option<String>>,
}

/// One interface: the compatibility modes in force and the timers that hold them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct InterfaceInfo {
    /// The interface.
    pub iface: IfIndex,
    /// IGMP version spoken now (RFC 9776 §7.2).
    pub igmp_version: IgmpVersion,
    /// Time left on the IGMPv1 Querier Present timer (RFC 2236 §4's Version 1 Router Present
    /// timer for an IGMPv2 host), in ms.
    pub igmp_v1_querier_ms: Option<u64>,
    /// Time left on the IGMPv2 Querier Present timer, in ms.
    pub igmp_v2_querier_ms: Option<u64>,
    /// MLD version spoken now (RFC 9777 §8.2).
    pub mld_version: MldVersion,
    /// Time left on the MLDv1 Querier Present timer, in ms.
    pub mld_v1_querier_ms: Option<u64>,
    /// IGMPv3: a General Query response is pending, due in this many ms.
    pub igmp_general_response_ms: Option<u64>,
    /// MLDv2: a General Query response is pending, due in this many ms.
    pub mld_general_response_ms: Option<u64>,
    /// IGMP group records on the interface.
    pub igmp_groups: usize,
    /// MLD group records on the interface.
    pub mld_groups: usize,
}
