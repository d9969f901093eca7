//! IGMPv1/v2 adapter (RFC 2236; NetBSD igmp.c 1.49): validates IGMP messages and turns them
//! into engine events, and turns the engine's sends into IGMP messages.

use core::net::{IpAddr, Ipv4Addr};
use core::time::Duration;

use crate::config::{IgmpVersion, ProtocolVersion};
use crate::event::Event;
use crate::gmp::v1v2::machine::{MemberContext, MemberMessage};
use crate::gmp::{
    check_report, query_target, Compat, Env, Family, PackedReport, Protocol, QueryProblem,
    ReportProblem,
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

    match repr {
        IgmpRepr::Query {
            max_resp_code: 0, ..
        } => {
            env.stats.igmp.igmp_rcv_queries += 1;
            env.stats.igmp.igmp_rcv_v1_queries += 1;
            // IGMPv1 queries are always general and go to all-hosts (RFC 1112 App. I). The
            // seed marks the v1 router present before checking; we change no state for a
            // query we reject.
            // Or to our own address (RFC 9776 §4.1.12, see `query_target`).
            if meta.dst != Igmp::ALL_SYSTEMS && Some(meta.dst) != own_address {
                env.stats.igmp.igmp_rcv_badqueries += 1;
                return Err(env.stats.reject(DropReason::IgmpQueryBadDestination));
            }
            let query = (IgmpVersion::V1, None, V1_MAX_RESPONSE);
            older_query(family, env, ifindex, query, now);
        }
        IgmpRepr::Query {
            max_resp_code,
            group,
        } => {
            env.stats.igmp.igmp_rcv_queries += 1;
            env.stats.igmp.igmp_rcv_v2_queries += 1;
            let target = query_target_or_drop(env, group, meta.dst, own_address, 0)?;
            let max = Duration::from_millis(u64::from(max_resp_code) * 100);
            older_query(family, env, ifindex, (IgmpVersion::V2, target, max), now);
        }
        // A v3 query reaching a v1/v2 host is handled as a query of its mode (RFC 9776
        // §7.2.1), its Max Resp Code read in the v3 floating-point form.
        ref q @ IgmpRepr::QueryV3 {
            group,
            ref sources,
            qrv,
            qqic,
            ..
        } => {
            env.stats.igmp.igmp_rcv_queries += 1;
            env.stats.igmp.igmp_rcv_v3_queries += 1;
            let target = query_target_or_drop(env, group, meta.dst, own_address, sources.len())?;
            let max = q.max_resp_time().unwrap_or(V1_MAX_RESPONSE);
            query_heard(env, ifindex, IgmpVersion::V3, target, max);
            let qqi = Duration::from_secs(u64::from(decode_code8(qqic)));
            let sources = sources.iter().copied().collect();
            family.v3_query(ifindex, target, sources, max, (qrv, qqi), now, env);
        }
        IgmpRepr::ReportV1 { group } | IgmpRepr::ReportV2 { group } => {
            let v1 = matches!(repr, IgmpRepr::ReportV1 { .. });
            env.stats.igmp.igmp_rcv_reports += 1;
            if v1 {
                env.stats.igmp.igmp_rcv_v1_reports += 1;
            } else {
                env.stats.igmp.igmp_rcv_v2_reports += 1;
            }
            if let Err(problem) = check_report::<Igmp>(group, meta.dst) {
                env.stats.igmp.igmp_rcv_badreports += 1;
                return Err(env.stats.reject(match problem {
                    ReportProblem::BadGroup => DropReason::IgmpReportBadGroup,
                    ReportProblem::GroupMismatch => DropReason::IgmpReportGroupMismatch,
                }));
            }
            // Our own report looped back must not clear the last-reporter flag (the seed
            // makes the same check under MROUTING).
            if Some(meta.src) == own_address {
                env.stats.igmp.igmp_rcv_looped += 1;
                return Ok(());
            }
            if family.report_heard(ifindex, group, v1, now, env) {
                env.stats.igmp.igmp_rcv_ourreports += 1;
            }
        }
        IgmpRepr::Leave { .. } => env.stats.igmp.igmp_rcv_leaves += 1,
        // RFC 9776 §7.2: a v1/v2 host ignores IGMPv3 reports.
        IgmpRepr::ReportV3 { .. } => {
            env.stats.igmp.igmp_rcv_reports += 1;
            env.stats.igmp.igmp_rcv_v3_reports += 1;
        }
    }
    Ok(())
}

fn query_target_or_drop(
    env: &mut Env<'_>,
    group: Ipv4Addr,
    dst: Ipv4Addr,
    own: Option<Ipv4Addr>,
    sources: usize,
) -> Result<Option<Ipv4Addr>, DropReason> {
    query_target::<Igmp>(group, dst, own, sources).map_err(|problem| {
        env.stats.igmp.igmp_rcv_badqueries += 1;
        env.stats.reject(match problem {
            QueryProblem::BadGroup => DropReason::IgmpQueryBadGroup,
            QueryProblem::BadDestination => DropReason::IgmpQueryBadDestination,
            QueryProblem::GeneralWithSources => DropReason::IgmpGeneralQueryWithSources,
        })
    })
}

fn query_heard(
    env: &mut Env<'_>,
    ifindex: IfIndex,
    version: IgmpVersion,
    group: Option<Ipv4Addr>,
    max_resp: Duration,
) {
    env.event(Event::QueryHeard {
        iface: ifindex,
        version: version.into(),
        group: group.map(IpAddr::V4),
        max_resp,
    });
}

/// An IGMPv1 or v2 query: its querier is present, then the query is answered.
fn older_query(
    family: &mut Family<Igmp>,
    env: &mut Env<'_>,
    ifindex: IfIndex,
    (version, target, max): (IgmpVersion, Option<Ipv4Addr>, Duration),
    now: Instant,
) {
    query_heard(env, ifindex, version, target, max);
    let mode = match version {
        IgmpVersion::V1 => Compat::V1,
        _ => Compat::V2,
    };
    family.older_querier_heard(ifindex, mode, now, env);
    family.query(ifindex, target, max, mode == Compat::V1, now, env);
}
