//! The two families a host test can run over, so that a behaviour IGMP and MLD share is tested
//! once, as a generic fn, and run for both ([`for_both_families!`]): IGMPv3 ↔ MLDv2 and
//! IGMPv2 ↔ MLDv1 (IGMPv1 has no MLD twin).
//!
//! Tests are written with IPv4 addresses, as they always were; [`Family::addr`] gives each
//! family's own: itself for IGMP; for MLD a multicast a.b.c.d becomes `ff1e::a:b:c:d` (global
//! scope, reported) and a unicast one `2001:db8::a:b:c:d`, so that both keep their order.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use membership::wire::igmp::IgmpRepr;
use membership::wire::ip::{build_ipv4, build_ipv6};
use membership::wire::mld::MldRepr;
use membership::wire::{encode_code16, encode_code8};
use membership::{DropReason, InterfaceInfo, Message, Stats, Transmit};

use super::{ALL_HOSTS, ALL_NODES, ROUTER4, ROUTER6};

/// What a generic host test needs to know of a family.
pub trait Family {
    /// The other family: a host speaks both, independently.
    type Other: Family;
    /// "igmp" or "mld".
    const NAME: &'static str;
    /// The version numbers of the v3-like mode (IGMPv3, MLDv2) and of the older one the
    /// family shares with the other (IGMPv2, MLDv1).
    const V3: u8;
    const OLDER: u8;
    /// The most sources one record of a report carries at MTU 1500: (1500 − report overhead −
    /// record overhead) / address length.
    const MAX_SOURCES: usize;

    /// This family's address for a test address written in IPv4.
    fn addr(v4: &str) -> IpAddr;
    /// The unspecified address: a General Query's group, a bad source.
    fn unspecified() -> IpAddr;
    /// All-systems (224.0.0.1, ff02::1).
    fn all_systems() -> IpAddr;
    /// This host's address on the test interface (10.99.0.2, fe80::2).
    fn me() -> IpAddr;
    /// Another host on the link (10.99.0.3, fe80::3).
    fn neighbour() -> IpAddr;
    /// An address of the other family.
    fn foreign() -> IpAddr;

    /// A v3 query (IGMPv3, MLDv2) from the router: `group` (None: general), `sources`,
    /// Max Resp Time `max_ms`, sent to `dst`.
    fn v3_query(group: Option<IpAddr>, sources: &[IpAddr], max_ms: u32, dst: IpAddr) -> Vec<u8> {
        Self::v3_query_with(group, sources, max_ms, dst, (2, 125, false))
    }
    /// [`Family::v3_query`] with its QRV, QQI (seconds) and S flag.
    fn v3_query_with(
        group: Option<IpAddr>,
        sources: &[IpAddr],
        max_ms: u32,
        dst: IpAddr,
        querier: (u8, u32, bool),
    ) -> Vec<u8>;
    /// An older general query (IGMPv2, MLDv1) from the router to all-systems.
    fn older_general_query(max_ms: u32) -> Vec<u8> {
        Self::older_query(None, max_ms, Self::all_systems())
    }
    /// An older query (IGMPv2, MLDv1) from the router: `group` (None: general), Max Resp
    /// Time `max_ms`, sent to `dst`.
    fn older_query(group: Option<IpAddr>, max_ms: u32, dst: IpAddr) -> Vec<u8>;
    /// All-routers (224.0.0.2, ff02::2): where a Leave / Done goes.
    fn all_routers() -> IpAddr;
    /// The reports sent, of every version.
    fn reports_sent(stats: &Stats) -> u64;
    /// The Leaves / Dones sent.
    fn leaves_sent(stats: &Stats) -> u64;
    /// Other hosts' reports heard of groups we are a member of.
    fn reports_of_our_groups_heard(stats: &Stats) -> u64;
    /// Another host's older report (IGMPv2, MLDv1) of `group`.
    fn neighbour_report(group: IpAddr) -> Vec<u8>;

    /// The version the interface speaks in this family.
    fn version(info: &InterfaceInfo) -> u8;
    /// What is left of the older querier present timer of the family's shared older mode.
    fn older_querier_ms(info: &InterfaceInfo) -> Option<u64>;
    /// The v3 reports sent.
    fn v3_reports_sent(stats: &Stats) -> u64;
    /// The drop reason of a query to a bad destination.
    fn bad_query_destination() -> DropReason;
    /// An older (IGMPv2, MLDv1) message's kind: "report" or "leave"; `None` for others.
    fn older_kind(tx: &Transmit) -> Option<&'static str>;
}

/// IGMP, for IPv4 groups.
pub struct Igmp;

/// MLD, for IPv6 groups.
pub struct Mld;

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn as_v4(addr: IpAddr) -> Ipv4Addr {
    match addr {
        IpAddr::V4(a) => a,
        IpAddr::V6(a) => panic!("{a} in an IGMP test"),
    }
}

fn as_v6(addr: IpAddr) -> Ipv6Addr {
    match addr {
        IpAddr::V6(a) => a,
        IpAddr::V4(a) => panic!("{a} in an MLD test"),
    }
}

impl Family for Igmp {
    type Other = Mld;
    const NAME: &'static str = "igmp";
    const V3: u8 = 3;
    const OLDER: u8 = 2;
    /// (1500 − 32 − 8) / 4.
    const MAX_SOURCES: usize = 365;

    fn addr(v4_written: &str) -> IpAddr {
        IpAddr::V4(v4(v4_written))
    }
    fn unspecified() -> IpAddr {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
    fn all_systems() -> IpAddr {
        IpAddr::V4(ALL_HOSTS)
    }
    fn me() -> IpAddr {
        Self::addr("10.99.0.2")
    }
    fn neighbour() -> IpAddr {
        Self::addr("10.99.0.3")
    }
    fn foreign() -> IpAddr {
        "ff12::1".parse().unwrap()
    }

    fn v3_query_with(
        group: Option<IpAddr>,
        sources: &[IpAddr],
        max_ms: u32,
        dst: IpAddr,
        (qrv, qqi, suppress_router): (u8, u32, bool),
    ) -> Vec<u8> {
        let q = IgmpRepr::QueryV3 {
            max_resp_code: encode_code8(max_ms / 100),
            group: group.map_or(Ipv4Addr::UNSPECIFIED, as_v4),
            suppress_router,
            qrv,
            qqic: encode_code8(qqi),
            sources: sources.iter().copied().map(as_v4).collect(),
        };
        build_ipv4(ROUTER4, as_v4(dst), &q.to_bytes())
    }
    fn older_query(group: Option<IpAddr>, max_ms: u32, dst: IpAddr) -> Vec<u8> {
        let q = IgmpRepr::Query {
            max_resp_code: u8::try_from(max_ms / 100).unwrap(),
            group: group.map_or(Ipv4Addr::UNSPECIFIED, as_v4),
        };
        build_ipv4(ROUTER4, as_v4(dst), &q.to_bytes())
    }
    fn all_routers() -> IpAddr {
        Self::addr("224.0.0.2")
    }
    fn reports_sent(stats: &Stats) -> u64 {
        stats.igmp.igmp_snd_reports
    }
    fn leaves_sent(stats: &Stats) -> u64 {
        stats.igmp.igmp_snd_leaves
    }
    fn reports_of_our_groups_heard(stats: &Stats) -> u64 {
        stats.igmp.igmp_rcv_ourreports
    }
    fn neighbour_report(group: IpAddr) -> Vec<u8> {
        let group = as_v4(group);
        let report = IgmpRepr::ReportV2 { group };
        build_ipv4(as_v4(Self::neighbour()), group, &report.to_bytes())
    }

    fn version(info: &InterfaceInfo) -> u8 {
        info.igmp_version.number()
    }
    fn older_querier_ms(info: &InterfaceInfo) -> Option<u64> {
        info.igmp_v2_querier_ms
    }
    fn v3_reports_sent(stats: &Stats) -> u64 {
        stats.igmp.igmp_snd_v3_reports
    }
    fn bad_query_destination() -> DropReason {
        DropReason::IgmpQueryBadDestination
    }
    fn older_kind(tx: &Transmit) -> Option<&'static str> {
        match tx.message() {
            Message::Igmp(IgmpRepr::ReportV2 { .. }) => Some("report"),
            Message::Igmp(IgmpRepr::Leave { .. }) => Some("leave"),
            _ => None,
        }
    }
}

impl Family for Mld {
    type Other = Igmp;
    const NAME: &'static str = "mld";
    const V3: u8 = 2;
    const OLDER: u8 = 1;
    /// (1500 − 56 − 20) / 16.
    const MAX_SOURCES: usize = 89;

    fn addr(v4_written: &str) -> IpAddr {
        let [a, b, c, d] = v4(v4_written).octets().map(u16::from);
        let decimal = |n: u16| u16::from_str_radix(&n.to_string(), 16).unwrap();
        let [a, b, c, d] = [a, b, c, d].map(decimal);
        let first = if v4(v4_written).is_multicast() {
            [0xff1e, 0]
        } else {
            [0x2001, 0xdb8]
        };
        IpAddr::V6(Ipv6Addr::new(first[0], first[1], 0, 0, a, b, c, d))
    }
    fn unspecified() -> IpAddr {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    }
    fn all_systems() -> IpAddr {
        IpAddr::V6(ALL_NODES)
    }
    fn me() -> IpAddr {
        "fe80::2".parse().unwrap()
    }
    fn neighbour() -> IpAddr {
        "fe80::3".parse().unwrap()
    }
    fn foreign() -> IpAddr {
        "10.0.0.1".parse().unwrap()
    }

    fn v3_query_with(
        group: Option<IpAddr>,
        sources: &[IpAddr],
        max_ms: u32,
        dst: IpAddr,
        (qrv, qqi, suppress_router): (u8, u32, bool),
    ) -> Vec<u8> {
        let dst = as_v6(dst);
        let q = MldRepr::QueryV2 {
            max_resp_code: encode_code16(max_ms),
            group: group.map_or(Ipv6Addr::UNSPECIFIED, as_v6),
            suppress_router,
            qrv,
            qqic: encode_code8(qqi),
            sources: sources.iter().copied().map(as_v6).collect(),
        };
        build_ipv6(ROUTER6, dst, &q.to_bytes(&ROUTER6, &dst))
    }
    fn older_query(group: Option<IpAddr>, max_ms: u32, dst: IpAddr) -> Vec<u8> {
        let dst = as_v6(dst);
        let q = MldRepr::Query {
            max_resp_delay: u16::try_from(max_ms).unwrap(),
            group: group.map_or(Ipv6Addr::UNSPECIFIED, as_v6),
        };
        build_ipv6(ROUTER6, dst, &q.to_bytes(&ROUTER6, &dst))
    }
    fn all_routers() -> IpAddr {
        "ff02::2".parse().unwrap()
    }
    fn reports_sent(stats: &Stats) -> u64 {
        stats.mld.mld_snd_reports
    }
    fn leaves_sent(stats: &Stats) -> u64 {
        stats.mld.mld_snd_dones
    }
    fn reports_of_our_groups_heard(stats: &Stats) -> u64 {
        stats.mld.mld_rcv_ourreports
    }
    fn neighbour_report(group: IpAddr) -> Vec<u8> {
        let (src, group) = (as_v6(Self::neighbour()), as_v6(group));
        let report = MldRepr::Report { group };
        build_ipv6(src, group, &report.to_bytes(&src, &group))
    }

    fn version(info: &InterfaceInfo) -> u8 {
        info.mld_version.number()
    }
    fn older_querier_ms(info: &InterfaceInfo) -> Option<u64> {
        info.mld_v1_querier_ms
    }
    fn v3_reports_sent(stats: &Stats) -> u64 {
        stats.mld.mld_snd_v2_reports
    }
    fn bad_query_destination() -> DropReason {
        DropReason::MldQueryBadDestination
    }
    fn older_kind(tx: &Transmit) -> Option<&'static str> {
        match tx.message() {
            Message::Mld(MldRepr::Report { .. }) => Some("report"),
            Message::Mld(MldRepr::Done { .. }) => Some("leave"),
            _ => None,
        }
    }
}

/// Runs each generic test fn named for both families: `name::igmp` and `name::mld`.
#[macro_export]
macro_rules! for_both_families {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn igmp() {
                    super::$name::<$crate::common::family::Igmp>();
                }

                #[test]
                fn mld() {
                    super::$name::<$crate::common::family::Mld>();
                }
            }
        )*
    };
}
