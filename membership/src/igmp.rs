//! IGMPv1/v2 adapter (RFC 2236; NetBSD igmp.c 1.49): validates IGMP messages and turns them
//! into engine events, and turns the engine's sends into IGMP messages.

use core::net::{IpAddr, Ipv4Addr};
use core::time::Duration;

use crate::config::{IgmpVersion, ProtocolVersion};
use crate::gmp::v1v2::machine::{MemberContext, MemberMessage};
use crate::gmp::{
    Compat, Env, Family, Heard, PackedReport, Protocol, QueryProblem, QueryView, ReportProblem,
};
use crate::stats::{igmp_wire_drop, DropReason, Stats};
use crate::time::Instant;
use crate::wire::decode_code8;
use crate::wire::igmp::IgmpRepr;
use crate::wire::ip::Ipv4Meta;
use crate::{Config, IfIndex, IgmpTransmit, InterfaceConfig, Transmit};

#[derive(Debug)]
pub(crate) struct Igmp;

/// 224.0.0.2: IGMPv2 Leave Group messages go to all-routers (RFC 2236 §3).
const ALL_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 2);

/// 224.0.0.22: IGMPv3 reports go to all IGMPv3-capable routers (RFC 9776 §4.2.14).
const ALL_V3_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 22);

/// IGMPv1 queries carry no Max Resp Time; RFC 2236 §4 has hosts use 10 s.
const V1_MAX_RESPONSE: Duration = Duration::from_secs(10);

impl Protocol for Igmp {
    type Addr = Ipv4Addr;
    type Version = IgmpVersion;
    const ALL_SYSTEMS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 1);
    /// IPv4 header with Router Alert (24) and the report header (8).
    const REPORT_OVERHEAD: usize = 24 + 8;
    const RECORD_OVERHEAD: usize = 8;
    const ADDR_LEN: usize = 4;

    fn from_ip(addr: IpAddr) -> Option<Ipv4Addr> {
        match addr {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        }
    }

    fn is_source(addr: &Ipv4Addr) -> bool {
        !addr.is_multicast() && !addr.is_unspecified() && !addr.is_broadcast()
    }

    fn is_multicast(addr: &Ipv4Addr) -> bool {
        addr.is_multicast()
    }

    fn is_unspecified(addr: &Ipv4Addr) -> bool {
        addr.is_unspecified()
    }

    fn reportable(group: &Ipv4Addr, config: &Config) -> bool {
        // 224.0.0.1 is never reported (RFC 2236 §6); the seed's IN_LOCAL_GROUP keeps the rest
        // of 224.0.0.0/24 quiet too, unless configured otherwise.
        let local = group.octets()[..3] == [224, 0, 0];
        *group != Self::ALL_SYSTEMS && (!local || config.report_link_local_groups)
    }

    fn unsolicited_interval(config: &Config) -> Duration {
        config.igmp_unsolicited_interval
    }

    fn max_compat(config: &Config) -> Compat {
        match config.igmp_max_version {
            IgmpVersion::V1 => Compat::V1,
            IgmpVersion::V2 => Compat::V2,
            IgmpVersion::V3 => Compat::V3,
        }
    }

    fn version(mode: Compat) -> IgmpVersion {
        match mode {
            Compat::V1 => IgmpVersion::V1,
            Compat::V2 => IgmpVersion::V2,
            Compat::V3 => IgmpVersion::V3,
        }
    }

    fn v3_report(
        iface: IfIndex,
        addrs: &InterfaceConfig,
        report: PackedReport<Ipv4Addr>,
        stats: &mut Stats,
    ) -> Transmit {
        stats.igmp.igmp_snd_reports += 1;
        stats.igmp.igmp_snd_v3_reports += 1;
        Transmit::Igmp(IgmpTransmit::with_leaves(
            iface,
            addrs.ipv4.unwrap_or(Ipv4Addr::UNSPECIFIED),
            ALL_V3_ROUTERS,
            IgmpRepr::ReportV3 {
                records: report.records,
            },
            report.leaves,
        ))
    }

    fn count(stats: &mut Stats, heard: Heard) {
        let igmp = &mut stats.igmp;
        match heard {
            Heard::Query(form) => {
                igmp.igmp_rcv_queries += 1;
                match form {
                    Compat::V1 => igmp.igmp_rcv_v1_queries += 1,
                    Compat::V2 => igmp.igmp_rcv_v2_queries += 1,
                    Compat::V3 => igmp.igmp_rcv_v3_queries += 1,
                }
            }
            Heard::QueryRejected => igmp.igmp_rcv_badqueries += 1,
            Heard::Report { v1 } => {
                igmp.igmp_rcv_reports += 1;
                if v1 {
                    igmp.igmp_rcv_v1_reports += 1;
                } else {
                    igmp.igmp_rcv_v2_reports += 1;
                }
            }
            Heard::ReportRejected => igmp.igmp_rcv_badreports += 1,
            Heard::Looped => igmp.igmp_rcv_looped += 1,
            Heard::OurGroup => igmp.igmp_rcv_ourreports += 1,
        }
    }

    fn query_drop(problem: QueryProblem) -> DropReason {
        match problem {
            QueryProblem::BadGroup => DropReason::IgmpQueryBadGroup,
            QueryProblem::BadDestination => DropReason::IgmpQueryBadDestination,
            QueryProblem::GeneralWithSources => DropReason::IgmpGeneralQueryWithSources,
        }
    }

    fn report_drop(problem: ReportProblem) -> DropReason {
        match problem {
            ReportProblem::BadGroup => DropReason::IgmpReportBadGroup,
            ReportProblem::GroupMismatch => DropReason::IgmpReportGroupMismatch,
        }
    }

    fn transmit(
        iface: IfIndex,
        addrs: &InterfaceConfig,
        group: Ipv4Addr,
        message: MemberMessage,
        ctx: &MemberContext,
        stats: &mut Stats,
    ) -> Transmit {
        let (repr, dst) = match message {
            MemberMessage::Report if ctx.v1_querier => {
                stats.igmp.igmp_snd_v1_reports += 1;
                (IgmpRepr::ReportV1 { group }, group)
            }
            MemberMessage::Report => {
                stats.igmp.igmp_snd_v2_reports += 1;
                (IgmpRepr::ReportV2 { group }, group)
            }
            // Departure from the seed, RFC wins: NetBSD igmp.c 1.49 sends the Leave to the group
            // itself; RFC 2236 §3 sends it to the all-routers group.
            MemberMessage::Leave => {
                stats.igmp.igmp_snd_leaves += 1;
                (IgmpRepr::Leave { group }, ALL_ROUTERS)
            }
        };
        if message == MemberMessage::Report {
            stats.igmp.igmp_snd_reports += 1;
        }
        let src = addrs.ipv4.unwrap_or(Ipv4Addr::UNSPECIFIED);
        Transmit::Igmp(IgmpTransmit::new(iface, src, dst, repr))
    }
}

impl From<IgmpVersion> for ProtocolVersion {
    fn from(v: IgmpVersion) -> ProtocolVersion {
        ProtocolVersion::Igmp(v)
    }
}

/// One IGMP message (the IPv4 payload) received on `ifindex`: validated, counted, handled.
pub(crate) fn input(
    family: &mut Family<Igmp>,
    env: &mut Env<'_>,
    ifindex: IfIndex,
    meta: &Ipv4Meta,
    payload: &[u8],
    now: Instant,
) -> Result<(), DropReason> {
    env.stats.igmp.igmp_rcv_total += 1;
    let Some(addrs) = env.interfaces.get(&ifindex) else {
        return Err(env.stats.reject(DropReason::UnknownInterface));
    };
    let own_address = addrs.ipv4;
    let repr = match IgmpRepr::parse(payload) {
        Ok(repr) => repr,
        Err(e) => {
            let reason = igmp_wire_drop(e);
            match reason {
                DropReason::IgmpTooShort => env.stats.igmp.igmp_rcv_tooshort += 1,
                DropReason::IgmpBadChecksum => env.stats.igmp.igmp_rcv_badsum += 1,
                DropReason::IgmpBadQueryLength => env.stats.igmp.igmp_rcv_badqueries += 1,
                _ => {}
            }
            return Err(env.stats.reject(reason));
        }
    };
    let policy = env.config.igmp_policy;
    if !meta.router_alert {
        if policy.require_router_alert {
            return Err(env.stats.reject(DropReason::IgmpNoRouterAlert));
        }
        env.stats.igmp.igmp_rcv_no_router_alert += 1;
    }
    if meta.ttl != 1 {
        if policy.require_hop_limit_one {
            return Err(env.stats.reject(DropReason::IgmpBadTtl));
        }
        env.stats.igmp.igmp_rcv_ttl_not_one += 1;
    }

    let dst = meta.dst;
    match &repr {
        IgmpRepr::Query { .. } | IgmpRepr::QueryV3 { .. } => {
            family.handle_query(ifindex, &IgmpQuery(&repr), (dst, own_address), now, env)
        }
        IgmpRepr::ReportV1 { group } | IgmpRepr::ReportV2 { group } => {
            let v1 = matches!(repr, IgmpRepr::ReportV1 { .. });
            let addrs = (meta.src, dst, own_address);
            family.handle_report(ifindex, *group, v1, addrs, now, env)
        }
        IgmpRepr::Leave { .. } => {
            env.stats.igmp.igmp_rcv_leaves += 1;
            Ok(())
        }
        // RFC 9776 §7.2: a v1/v2 host ignores IGMPv3 reports.
        IgmpRepr::ReportV3 { .. } => {
            env.stats.igmp.igmp_rcv_reports += 1;
            env.stats.igmp.igmp_rcv_v3_reports += 1;
            Ok(())
        }
    }
}

/// An IGMP query (a `Query` or `QueryV3` message) as the engine reads it.
struct IgmpQuery<'a>(&'a IgmpRepr);

impl QueryView<Ipv4Addr> for IgmpQuery<'_> {
    fn form(&self) -> Compat {
        match self.0 {
            IgmpRepr::Query {
                max_resp_code: 0, ..
            } => Compat::V1,
            IgmpRepr::Query { .. } => Compat::V2,
            _ => Compat::V3,
        }
    }

    fn group(&self) -> Ipv4Addr {
        match self.0 {
            IgmpRepr::Query { group, .. } | IgmpRepr::QueryV3 { group, .. } => *group,
            _ => Ipv4Addr::UNSPECIFIED,
        }
    }

    /// A v3 query's Max Resp Code is read in the v3 floating-point form, also in an older
    /// mode (RFC 9776 §7.2.1); IGMPv1's is 10 s.
    fn max_resp(&self) -> Duration {
        self.0.max_resp_time().unwrap_or(V1_MAX_RESPONSE)
    }

    fn sources(&self) -> &[Ipv4Addr] {
        match self.0 {
            IgmpRepr::QueryV3 { sources, .. } => sources,
            _ => &[],
        }
    }

    fn querier(&self) -> (u8, Duration) {
        match self.0 {
            IgmpRepr::QueryV3 { qrv, qqic, .. } => {
                (*qrv, Duration::from_secs(u64::from(decode_code8(*qqic))))
            }
            _ => (0, Duration::ZERO),
        }
    }
}
