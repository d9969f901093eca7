//! Counters. The IGMP ones keep NetBSD's `igmpstat` names and meanings (`rcv_ourreports`
//! counts reports heard for groups we are a member of); every dropped packet is also counted
//! under exactly one [`DropReason`].

use alloc::vec;
use alloc::vec::Vec;

use crate::wire;
use crate::wire::ip::IpError;

macro_rules! counter_struct {
    ($(#[$meta:meta])* $name:ident { $($(#[doc = $doc:literal])+ $field:ident,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Default, Clone, PartialEq, Eq)]
        pub struct $name {
            $(
                #[doc = concat!("`", stringify!($field), "`")]
                #[doc = ""]
                $(#[doc = $doc])*
                pub $field: u64,
            )*
        }

        impl $name {
            /// Every counter with its name, in declaration order.
            pub fn counters(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($field), self.$field),)*]
            }

            /// Every counter with its name and what it counts (its documentation).
            pub fn described(&self) -> Vec<(&'static str, u64, &'static str)> {
                vec![$((stringify!($field), self.$field, concat!($($doc),+).trim_start()),)*]
            }
        }
    };
}

counter_struct!(
    /// IGMP counters: NetBSD's `igmpstat` plus per-type detail.
    IgmpStats {
        /// IGMP messages handed to the core (igmpstat rcv_total).
        igmp_rcv_total,
        /// IGMP messages shorter than their header (igmpstat rcv_tooshort).
        igmp_rcv_tooshort,
        /// IGMP messages with a wrong checksum (igmpstat rcv_badsum).
        igmp_rcv_badsum,
        /// IGMP queries accepted, every version.
        igmp_rcv_queries,
        /// Queries rejected after parsing (bad destination, bad group, sources in a general query).
        igmp_rcv_badqueries,
        /// IGMP reports accepted from other hosts, every version.
        igmp_rcv_reports,
        /// IGMP reports rejected after parsing (bad group, group and destination differ).
        igmp_rcv_badreports,
        /// Reports from other hosts for groups we are a member of.
        igmp_rcv_ourreports,
        /// IGMPv1 queries accepted (Max Resp Time 0).
        igmp_rcv_v1_queries,
        /// IGMPv2 queries accepted.
        igmp_rcv_v2_queries,
        /// IGMPv3 queries accepted.
        igmp_rcv_v3_queries,
        /// IGMPv1 reports from other hosts.
        igmp_rcv_v1_reports,
        /// IGMPv2 reports from other hosts.
        igmp_rcv_v2_reports,
        /// IGMPv3 reports from others: understood and ignored (RFC 9776 §5.2, §7.2).
        igmp_rcv_v3_reports,
        /// Leaves from other hosts: hosts ignore them.
        igmp_rcv_leaves,
        /// Reports carrying our own source address: our own, looped back; ignored.
        igmp_rcv_looped,
        /// Accepted although the IP Router Alert option was missing (lenient policy).
        igmp_rcv_no_router_alert,
        /// Accepted although the TTL was not 1 (lenient policy).
        igmp_rcv_ttl_not_one,
        /// IGMP reports sent, every version.
        igmp_snd_reports,
        /// IGMPv1 reports sent.
        igmp_snd_v1_reports,
        /// IGMPv2 reports sent.
        igmp_snd_v2_reports,
        /// IGMPv2 Leave Group messages sent.
        igmp_snd_leaves,
        /// IGMPv3 reports sent (state-change and current-state).
        igmp_snd_v3_reports,
    }
);

counter_struct!(
    /// MLD counters, per message type.
    MldStats {
        /// MLD messages handed to the core.
        mld_rcv_total,
        /// MLD queries accepted, both versions.
        mld_rcv_queries,
        /// MLDv2 queries accepted.
        mld_rcv_v2_queries,
        /// MLD reports accepted from other hosts, both versions.
        mld_rcv_reports,
        /// MLDv2 reports from others: understood and ignored (RFC 9777 §6.2, §8.2).
        mld_rcv_v2_reports,
        /// MLDv1 Done messages from other hosts: hosts ignore them.
        mld_rcv_dones,
        /// MLD queries rejected after parsing (bad destination, bad group, sources in a general query).
        mld_rcv_badqueries,
        /// MLD reports rejected after parsing (bad group, group and destination differ).
        mld_rcv_badreports,
        /// Reports from other hosts for groups we are a member of.
        mld_rcv_ourreports,
        /// MLD reports carrying our own source address: our own, looped back; ignored.
        mld_rcv_looped,
        /// MLD reports sent, both versions.
        mld_snd_reports,
        /// MLDv1 Done messages sent.
        mld_snd_dones,
        /// MLDv2 reports sent (state-change and current-state).
        mld_snd_v2_reports,
    }
);

macro_rules! drop_reasons {
    ($($variant:ident => $name:literal: $doc:literal,)*) => {
        /// Why a packet was dropped. Each has its own counter, `drop_<name>`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum DropReason {
            $(#[doc = $doc] $variant,)*
        }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];

            /// The counter name, `drop_...`.
            pub fn name(self) -> &'static str {
                match self {
                    $(DropReason::$variant => concat!("drop_", $name),)*
                }
            }

            /// A short description of the reason.
            pub fn describe(self) -> &'static str {
                match self {
                    $(DropReason::$variant => $doc,)*
                }
            }
        }
    };
}

drop_reasons! {
    NotIp => "not_ip": "not an IPv4 or IPv6 packet",
    Ipv4Truncated => "ipv4_truncated": "IPv4 header truncated",
    Ipv4BadHeaderLength => "ipv4_bad_header_length": "IPv4 header length field out of range",
    Ipv4BadTotalLength => "ipv4_bad_total_length": "IPv4 total length disagrees with the packet",
    Ipv4BadChecksum => "ipv4_bad_checksum": "IPv4 header checksum wrong",
    Ipv4BadOptions => "ipv4_bad_options": "IPv4 options malformed",
    Fragment => "fragment": "fragmented IGMP/MLD packet",
    Ipv6Truncated => "ipv6_truncated": "IPv6 header truncated",
    Ipv6BadPayloadLength => "ipv6_bad_payload_length": "IPv6 payload length disagrees with the packet",
    Ipv6BadExtension => "ipv6_bad_extension": "IPv6 extension header malformed",
    OtherIpv4 => "other_ipv4": "IPv4 traffic other than IGMP",
    OtherIpv6 => "other_ipv6": "IPv6 traffic other than MLD",
    UnknownInterface => "unknown_interface": "packet on an interface the core does not know",
    IgmpTooShort => "igmp_too_short": "IGMP message shorter than its header",
    IgmpBadChecksum => "igmp_bad_checksum": "IGMP checksum wrong",
    IgmpUnknownType => "igmp_unknown_type": "IGMP message type unknown",
    IgmpBadCount => "igmp_bad_count": "IGMP source or record count runs past the message",
    IgmpBadQueryLength => "igmp_bad_query_length": "IGMP query of 9 to 11 bytes",
    IgmpQueryBadDestination => "igmp_query_bad_destination": "IGMP query to a wrong destination",
    IgmpQueryBadGroup => "igmp_query_bad_group": "IGMP query for a non-multicast group",
    IgmpGeneralQueryWithSources => "igmp_general_query_with_sources": "IGMPv3 general query listing sources",
    IgmpReportBadGroup => "igmp_report_bad_group": "IGMP report for a non-multicast group",
    IgmpReportGroupMismatch => "igmp_report_group_mismatch": "IGMP report whose group differs from its destination",
    IgmpNoRouterAlert => "igmp_no_router_alert": "IGMP without Router Alert (strict policy)",
    IgmpBadTtl => "igmp_bad_ttl": "IGMP with TTL other than 1 (strict policy)",
    MldTooShort => "mld_too_short": "MLD message shorter than its header",
    MldBadChecksum => "mld_bad_checksum": "ICMPv6 checksum wrong",
    MldUnknownType => "mld_unknown_type": "MLD message type unknown",
    MldBadCount => "mld_bad_count": "MLD source or record count runs past the message",
    MldBadQueryLength => "mld_bad_query_length": "MLD query of 25 to 27 bytes",
    MldSourceNotLinkLocal => "mld_source_not_link_local": "MLD from a source that is not link-local",
    MldNoRouterAlert => "mld_no_router_alert": "MLD without hop-by-hop Router Alert",
    MldBadHopLimit => "mld_bad_hop_limit": "MLD with hop limit other than 1",
    MldQueryBadDestination => "mld_query_bad_destination": "MLD query to a wrong destination",
    MldQueryBadGroup => "mld_query_bad_group": "MLD query for a non-multicast group",
    MldGeneralQueryWithSources => "mld_general_query_with_sources": "MLDv2 general query listing sources",
    MldReportBadGroup => "mld_report_bad_group": "MLD report for a non-multicast group",
    MldReportGroupMismatch => "mld_report_group_mismatch": "MLD report whose group differs from its destination",
}

impl From<IpError> for DropReason {
    fn from(e: IpError) -> Self {
        match e {
            IpError::NotIp => DropReason::NotIp,
            IpError::Ipv4Truncated => DropReason::Ipv4Truncated,
            IpError::Ipv4BadHeaderLength => DropReason::Ipv4BadHeaderLength,
            IpError::Ipv4BadTotalLength => DropReason::Ipv4BadTotalLength,
            IpError::Ipv4BadChecksum => DropReason::Ipv4BadChecksum,
            IpError::Ipv4BadOptions => DropReason::Ipv4BadOptions,
            IpError::Fragment => DropReason::Fragment,
            IpError::Ipv6Truncated => DropReason::Ipv6Truncated,
            IpError::Ipv6BadPayloadLength => DropReason::Ipv6BadPayloadLength,
            IpError::Ipv6BadExtension => DropReason::Ipv6BadExtension,
        }
    }
}

pub(crate) fn igmp_wire_drop(e: wire::Error) -> DropReason {
    match e {
        wire::Error::Truncated => DropReason::IgmpTooShort,
        wire::Error::Checksum => DropReason::IgmpBadChecksum,
        wire::Error::UnknownType(_) => DropReason::IgmpUnknownType,
        wire::Error::BadCount => DropReason::IgmpBadCount,
        wire::Error::BadQueryLength => DropReason::IgmpBadQueryLength,
    }
}

pub(crate) fn mld_wire_drop(e: wire::Error) -> DropReason {
    match e {
        wire::Error::Truncated => DropReason::MldTooShort,
        wire::Error::Checksum => DropReason::MldBadChecksum,
        wire::Error::UnknownType(_) => DropReason::MldUnknownType,
        wire::Error::BadCount => DropReason::MldBadCount,
        wire::Error::BadQueryLength => DropReason::MldBadQueryLength,
    }
}

/// All counters of a [`crate::Host`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// IGMP counters.
    pub igmp: IgmpStats,
    /// MLD counters.
    pub mld: MldStats,
    drops: Vec<u64>,
    /// Packets handed to the core at the IP level (`Host::handle_packet`).
    pub ip_rcv_total: u64,
    /// Events dropped because the queue held [`Config::event_capacity`](crate::Config) of them
    /// already (the driver did not call `Host::poll_event`).
    pub events_dropped: u64,
}

impl Stats {
    /// All counters zero.
    pub fn new() -> Stats {
        Stats {
            drops: vec![0; DropReason::ALL.len()],
            ..Default::default()
        }
    }

    /// Packets dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops.get(reason as usize).copied().unwrap_or_default()
    }

    /// Packets dropped for any reason.
    pub fn total_dropped(&self) -> u64 {
        self.drops.iter().sum()
    }

    pub(crate) fn drop(&mut self, reason: DropReason) {
        if self.drops.len() < DropReason::ALL.len() {
            self.drops.resize(DropReason::ALL.len(), 0);
        }
        self.drops[reason as usize] += 1;
    }

    /// Counts a dropped packet and hands its reason back.
    pub(crate) fn reject(&mut self, reason: DropReason) -> DropReason {
        self.drop(reason);
        reason
    }

    /// Every counter with its name and what it counts, in [`Stats::counters`] order.
    pub fn described(&self) -> Vec<(&'static str, u64, &'static str)> {
        let mut all = vec![(
            "ip_rcv_total",
            self.ip_rcv_total,
            "Packets handed to the core at the IP level.",
        )];
        all.extend(self.igmp.described());
        all.extend(self.mld.described());
        all.extend(
            DropReason::ALL
                .iter()
                .map(|&r| (r.name(), self.dropped(r), r.describe())),
        );
        all.push((
            "events_dropped",
            self.events_dropped,
            "Events dropped because the driver did not take them (the queue was full).",
        ));
        all
    }

    /// Every counter by name: IP level, IGMP, MLD, then one per drop reason.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        let mut all = vec![("ip_rcv_total", self.ip_rcv_total)];
        all.extend(self.igmp.counters());
        all.extend(self.mld.counters());
        all.extend(DropReason::ALL.iter().map(|&r| (r.name(), self.dropped(r))));
        all.push(("events_dropped", self.events_dropped));
        all
    }
}
