//! The sans-IO host side of IP multicast group management: IGMPv1/v2 (RFC 2236) and MLDv1
//! (RFC 2710), with the NetBSD `igmp.c` 1.49 and KAME `mld6.c` seeds as the behaviour of record,
//! and IGMPv3 (RFC 9776) and MLDv2 (RFC 9777) with source filters.
//!
//! The core does no I/O, reads no clock and owns no randomness source: the driver passes the
//! time ([`Instant`]) into every call and a seed into [`Host::new`], feeds it received packets,
//! and writes out what [`Host::poll`] hands back. One generic engine ([`engine`], [`family`])
//! serves both protocols; `igmp` and `mld` are thin adapters that validate and translate
//! messages.

pub mod engine;
mod family;
mod host;
mod igmp;
mod mld;
pub mod stats;
pub mod time;
pub mod timer;
pub mod v3;
pub mod wire;

use core::time::Duration;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use engine::MemberState;
pub use family::{Compat, Filter, FilterMode};
pub use host::{GroupCursor, GroupInfo, Host, InterfaceInfo};
pub use stats::{DropReason, Stats};
pub use time::Instant;
pub use wire::ip::{Ipv4Meta, Ipv6Meta};

/// An interface, as the driver numbers it.
pub type IfIndex = u32;

/// Host-wide protocol settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Robustness Variable (RFC 2236 §8.1, RFC 2710 §7.1): unsolicited reports are sent this many
    /// times. Default 2.
    pub robustness: u8,
    /// IGMPv2 Unsolicited Report Interval (RFC 2236 §8.10). Default 10 s.
    pub igmp_unsolicited_interval: Duration,
    /// MLDv1 Unsolicited Report Interval (RFC 2710 §7.10). Default 10 s.
    pub mld_unsolicited_interval: Duration,
    /// Version 1 Router Present Timeout (RFC 2236 §8.11). Default 400 s. The NetBSD seed ages
    /// the v1 router out after IGMP_AGE_THRESHOLD slow ticks (540 at 2 Hz: 270 s); RFC wins.
    pub v1_querier_timeout: Duration,
    /// Report 224.0.0.0/24 groups other than 224.0.0.1 (Linux does by default; the seed never
    /// does, and neither do we unless asked).
    pub report_link_local_groups: bool,
    /// Highest IGMP version to speak (Linux's force_igmp_version): 1 behaves as if an IGMPv1
    /// querier were always present (v1 reports, no Leave), 2 as an IGMPv2 host. Default 3.
    pub igmp_max_version: u8,
    /// Highest MLD version to speak (Linux's force_mld_version): 1 or 2. Default 2.
    pub mld_max_version: u8,
    /// IGMPv3 / MLDv2 Unsolicited Report Interval (RFC 9776 §8.11): state-change reports are
    /// retransmitted at random within it. Default 1 s.
    pub v3_unsolicited_interval: Duration,
    /// Query Interval assumed until a querier's QQIC says otherwise (RFC 9776 §8.2). 125 s.
    pub query_interval: Duration,
    /// Query Response Interval assumed until a query says otherwise (RFC 9776 §8.3). 10 s.
    pub query_response_interval: Duration,
    /// What IP-level irregularities IGMP input tolerates.
    pub igmp_policy: InputPolicy,
    /// What IP-level irregularities MLD input tolerates.
    pub mld_policy: InputPolicy,
}

/// Whether input must carry Router Alert and TTL / hop limit 1. Violations are counted either
/// way; a strict policy also drops them.
///
/// Defaults interoperate: the Linux kernel and FRR accept IGMP without Router Alert and with
/// any TTL, so IGMP is lenient; RFC 2710 §3 requires both for MLD and Linux drops MLD without
/// them, so MLD is strict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputPolicy {
    pub require_router_alert: bool,
    pub require_hop_limit_one: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            robustness: 2,
            igmp_unsolicited_interval: Duration::from_secs(10),
            mld_unsolicited_interval: Duration::from_secs(10),
            v1_querier_timeout: Duration::from_secs(400),
            report_link_local_groups: false,
            igmp_max_version: 3,
            mld_max_version: 2,
            v3_unsolicited_interval: Duration::from_secs(1),
            query_interval: Duration::from_secs(125),
            query_response_interval: Duration::from_secs(10),
            igmp_policy: InputPolicy {
                require_router_alert: false,
                require_hop_limit_one: false,
            },
            mld_policy: InputPolicy {
                require_router_alert: true,
                require_hop_limit_one: true,
            },
        }
    }
}

impl Config {
    /// An IGMPv2 / MLDv1 host: the seeds' protocol versions, other settings default.
    pub fn v2() -> Config {
        Config {
            igmp_max_version: 2,
            mld_max_version: 1,
            ..Config::default()
        }
    }
}

/// This host's addresses on an interface: the sources of what it sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceConfig {
    /// Source of IGMP messages. Without one, 0.0.0.0 (RFC 1112 allows it; FRR drops such reports).
    pub ipv4: Option<Ipv4Addr>,
    /// Source of MLD messages; `::` while there is none (RFC 2710 §3).
    pub ipv6_link_local: Option<Ipv6Addr>,
    /// Link MTU: IGMPv3 / MLDv2 reports are packed to fit it.
    pub mtu: u16,
}

impl Default for InterfaceConfig {
    fn default() -> Self {
        InterfaceConfig {
            ipv4: None,
            ipv6_link_local: None,
            mtu: 1500,
        }
    }
}

/// A source filter as the API takes it (RFC 9776 §3.1): the sources must be of the group's
/// family. `Filter::any_source` equivalent: `SourceFilter::exclude(vec![])`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourceFilter {
    pub mode: FilterMode,
    pub sources: Vec<IpAddr>,
}

impl SourceFilter {
    pub fn include(sources: Vec<IpAddr>) -> SourceFilter {
        SourceFilter {
            mode: FilterMode::Include,
            sources,
        }
    }

    pub fn exclude(sources: Vec<IpAddr>) -> SourceFilter {
        SourceFilter {
            mode: FilterMode::Exclude,
            sources,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("unknown interface {0}")]
    UnknownInterface(IfIndex),
    #[error("{0} is not a multicast address")]
    NotMulticast(IpAddr),
    #[error("{0} is not joined on this interface")]
    NotJoined(IpAddr),
    #[error("too many joins of one group")]
    TooManyUsers,
    #[error("interface {0} already exists")]
    InterfaceExists(IfIndex),
    #[error("no such source filter is held for the group")]
    NoSuchFilter,
    #[error("source {0} is not a unicast address of the group's family")]
    BadSource(IpAddr),
    #[error("an INCLUDE filter needs at least one source")]
    EmptyInclude,
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Igmp(wire::igmp::IgmpRepr),
    Mld(wire::mld::MldRepr),
}

/// One packet for the driver to write: where, from and to whom, what, and the IP-level needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub iface: IfIndex,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub message: Message,
    /// TTL / hop limit: always 1 for IGMP and MLD.
    pub hop_limit: u8,
    /// IPv4 Router Alert option / IPv6 hop-by-hop Router Alert (value 0, MLD).
    pub router_alert: bool,
}

impl Transmit {
    /// The whole IP packet: IPv4 with TOS 0xc0, DF, TTL 1 and Router Alert, as the Linux kernel
    /// sends it; IPv6 with hop limit 1 and a hop-by-hop Router Alert.
    pub fn to_packet(&self) -> Vec<u8> {
        match (&self.message, self.src, self.dst) {
            (Message::Igmp(repr), IpAddr::V4(src), IpAddr::V4(dst)) => {
                let mut body = vec![0; repr.buffer_len()];
                repr.emit(&mut body);
                wire::ip::build_ipv4(src, dst, &body)
            }
            (Message::Mld(repr), IpAddr::V6(src), IpAddr::V6(dst)) => {
                let mut body = vec![0; repr.buffer_len()];
                repr.emit(&src, &dst, &mut body);
                wire::ip::build_ipv6(src, dst, &body)
            }
            _ => unreachable!("transmits are built with matching address families"),
        }
    }

    /// Every group the message is about: the group of a v1/v2 message, each record's group of a
    /// v3 report.
    pub fn groups(&self) -> Vec<IpAddr> {
        use wire::igmp::IgmpRepr as I;
        use wire::mld::MldRepr as M;
        match &self.message {
            Message::Igmp(I::ReportV3 { records }) => {
                records.iter().map(|r| IpAddr::V4(r.group)).collect()
            }
            Message::Mld(M::ReportV2 { records }) => {
                records.iter().map(|r| IpAddr::V6(r.group)).collect()
            }
            _ => self.group().into_iter().collect(),
        }
    }

    /// The group a v1/v2 (MLDv1) message is about (the destination of a report, the group of
    /// a Leave).
    pub fn group(&self) -> Option<IpAddr> {
        use wire::igmp::IgmpRepr as I;
        use wire::mld::MldRepr as M;
        match &self.message {
            Message::Igmp(I::ReportV1 { group } | I::ReportV2 { group } | I::Leave { group }) => {
                Some((*group).into())
            }
            Message::Mld(M::Report { group } | M::Done { group }) => Some((*group).into()),
            _ => None,
        }
    }
}
