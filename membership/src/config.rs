//! What the embedder configures: host-wide protocol settings ([`Config`]), per-interface
//! addresses ([`InterfaceConfig`]), and the protocol versions they name.

use core::net::{Ipv4Addr, Ipv6Addr};
use core::time::Duration;

/// An IGMP version (RFC 1112, RFC 2236, RFC 9776).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum IgmpVersion {
    /// IGMPv1 (RFC 1112 Appendix I): reports only, no Leave.
    V1,
    /// IGMPv2 (RFC 2236): Leave Group, group-specific queries.
    V2,
    /// IGMPv3 (RFC 9776): source filters.
    V3,
}

/// An MLD version (RFC 2710, RFC 9777).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum MldVersion {
    /// MLDv1 (RFC 2710), the IPv6 counterpart of IGMPv2.
    V1,
    /// MLDv2 (RFC 9777), the IPv6 counterpart of IGMPv3.
    V2,
}

/// A version of either protocol: what a query was, what mode an interface speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum ProtocolVersion {
    /// IGMP, for IPv4 groups.
    Igmp(IgmpVersion),
    /// MLD, for IPv6 groups.
    Mld(MldVersion),
}

/// A version number out of range for its protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no such protocol version: {0}")]
pub struct BadVersion(pub u8);

impl IgmpVersion {
    /// The version number: 1, 2 or 3.
    pub fn number(self) -> u8 {
        match self {
            IgmpVersion::V1 => 1,
            IgmpVersion::V2 => 2,
            IgmpVersion::V3 => 3,
        }
    }
}

impl TryFrom<u8> for IgmpVersion {
    type Error = BadVersion;
    fn try_from(n: u8) -> Result<Self, BadVersion> {
        match n {
            1 => Ok(IgmpVersion::V1),
            2 => Ok(IgmpVersion::V2),
            3 => Ok(IgmpVersion::V3),
            _ => Err(BadVersion(n)),
        }
    }
}

impl MldVersion {
    /// The version number: 1 or 2.
    pub fn number(self) -> u8 {
        match self {
            MldVersion::V1 => 1,
            MldVersion::V2 => 2,
        }
    }
}

impl TryFrom<u8> for MldVersion {
    type Error = BadVersion;
    fn try_from(n: u8) -> Result<Self, BadVersion> {
        match n {
            1 => Ok(MldVersion::V1),
            2 => Ok(MldVersion::V2),
            _ => Err(BadVersion(n)),
        }
    }
}

impl core::fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ProtocolVersion::Igmp(v) => write!(f, "IGMPv{}", v.number()),
            ProtocolVersion::Mld(v) => write!(f, "MLDv{}", v.number()),
        }
    }
}

/// Host-wide protocol settings.
///
/// `#[non_exhaustive]`, so that a setting can be added without breaking anyone: outside this
/// crate, start from [`Config::default`] (or [`Config::v2`]) and change what you need with the
/// `with_*` builder methods, one per field. The fields stay public, to be read.
///
/// ```
/// use membership::Config;
///
/// let config = Config::default().with_robustness(3).with_answer_burst(u32::MAX);
/// assert_eq!((config.robustness, config.answer_burst), (3, u32::MAX));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
    /// Highest IGMP version to speak (Linux's force_igmp_version): V1 behaves as if an IGMPv1
    /// querier were always present (v1 reports, no Leave), V2 as an IGMPv2 host. Default V3.
    pub igmp_max_version: IgmpVersion,
    /// Highest MLD version to speak (Linux's force_mld_version). Default V2.
    pub mld_max_version: MldVersion,
    /// IGMPv3 / MLDv2 Unsolicited Report Interval (RFC 9776 §8.11, RFC 9777 §9.11):
    /// state-change reports are retransmitted at random within it. Default 1 s.
    pub v3_unsolicited_interval: Duration,
    /// Query Interval assumed until a querier's QQIC says otherwise (RFC 9776 §8.2). 125 s.
    pub query_interval: Duration,
    /// Query Response Interval assumed until a query says otherwise (RFC 9776 §8.3). 10 s.
    pub query_response_interval: Duration,
    /// What IP-level irregularities IGMP input tolerates.
    pub igmp_policy: InputPolicy,
    /// What IP-level irregularities MLD input tolerates.
    pub mld_policy: InputPolicy,
    /// A General Query answer of more IGMPv3 / MLDv2 reports than this sends that many at once,
    /// then spreads the rest evenly over what is left of the query's Max Resp Time, never past
    /// it. Departure from RFC 9776 §5.2 / RFC 9777 §6.2, which send the whole answer when the
    /// interface timer expires: routers police the IGMP / MLD they take to their CPU at a few
    /// thousand packets per second, and most of a burst of thousands of reports would be lost.
    /// State-change reports are never held back by it. `u32::MAX` sends every report at once,
    /// as the RFCs do. Default 8.
    pub answer_burst: u32,
    /// Answers to a query are drawn to be out this long before its Max Resp Time ends (at most
    /// a tenth of it): the delays are drawn from [0, Max Resp Time − margin), and a paced answer
    /// ends that much early. A driver serving many hosts fires their timers a little late (a
    /// loop answering 10^6 hosts in 10 s is milliseconds behind at times); the margin keeps that
    /// lag from carrying a report past the deadline the querier counts from. RFC 9776 §5.2 and
    /// RFC 9777 §6.2 draw from the whole interval; a narrower range is still within it.
    /// Default 0 (the RFCs' range).
    pub answer_margin: Duration,
    /// Events kept for [`Host::poll_event`](crate::Host::poll_event) before further ones are
    /// dropped (and counted in [`Stats::events_dropped`](crate::Stats::events_dropped)), so
    /// that a driver that never asks does not make the host grow. 0 turns events off. 1024.
    pub event_capacity: usize,
}

/// Whether input must carry Router Alert and TTL / hop limit 1. Violations are counted either
/// way; a strict policy also drops them.
///
/// Defaults interoperate: the Linux kernel and FRR accept IGMP without Router Alert and with
/// any TTL, so IGMP is lenient; RFC 2710 §3 requires both for MLD and Linux drops MLD without
/// them, so MLD is strict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputPolicy {
    /// Drop messages without the IP Router Alert option (RFC 2113, RFC 2711).
    pub require_router_alert: bool,
    /// Drop messages whose TTL / hop limit is not 1.
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
            igmp_max_version: IgmpVersion::V3,
            mld_max_version: MldVersion::V2,
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
            answer_burst: 8,
            answer_margin: Duration::ZERO,
            event_capacity: 1024,
        }
    }
}

impl Config {
    /// An IGMPv2 / MLDv1 host: the seeds' protocol versions, other settings default.
    pub fn v2() -> Config {
        Config {
            igmp_max_version: IgmpVersion::V2,
            mld_max_version: MldVersion::V1,
            ..Config::default()
        }
    }
}

/// One `with_<field>` builder method per field: the config with that field set.
macro_rules! builders {
    ($($with:ident: $field:ident: $ty:ty,)*) => {
        impl Config {
            $(
                #[doc = concat!(
                    "This config with [`",
                    stringify!($field),
                    "`](Config::",
                    stringify!($field),
                    ") set to `value`.",
                )]
                #[must_use = "a builder method returns the changed config"]
                pub fn $with(mut self, value: $ty) -> Config {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

builders! {
    with_robustness: robustness: u8,
    with_igmp_unsolicited_interval: igmp_unsolicited_interval: Duration,
    with_mld_unsolicited_interval: mld_unsolicited_interval: Duration,
    with_v1_querier_timeout: v1_querier_timeout: Duration,
    with_report_link_local_groups: report_link_local_groups: bool,
    with_igmp_max_version: igmp_max_version: IgmpVersion,
    with_mld_max_version: mld_max_version: MldVersion,
    with_v3_unsolicited_interval: v3_unsolicited_interval: Duration,
    with_query_interval: query_interval: Duration,
    with_query_response_interval: query_response_interval: Duration,
    with_igmp_policy: igmp_policy: InputPolicy,
    with_mld_policy: mld_policy: InputPolicy,
    with_answer_burst: answer_burst: u32,
    with_answer_margin: answer_margin: Duration,
    with_event_capacity: event_capacity: usize,
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
