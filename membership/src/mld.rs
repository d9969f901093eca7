//! MLDv1 adapter (RFC 2710; KAME / NetBSD mld6.c): validates MLD messages and turns them into
//! engine events, and turns the engine's sends into MLD messages.

use core::net::{IpAddr, Ipv6Addr};
use core::time::Duration;

use crate::config::{MldVersion, ProtocolVersion};
use crate::gmp::v1v2::machine::{MemberContext, MemberMessage};
use crate::gmp::{
    Compat, Env, Family, Heard, PackedReport, Protocol, QueryProblem, QueryView, ReportProblem,
};
use crate::stats::{mld_wire_drop, DropReason, Stats};
use crate::time::Instant;
use crate::wire::decode_code8;
use crate::wire::ip::Ipv6Meta;
use crate::wire::mld::MldRepr;
use crate::{Config, IfIndex, InterfaceConfig, MldTransmit, Transmit};

#[derive(Debug)]
pub(crate) struct Mld;

/// ff02::2: Done messages go to all-routers (RFC 2710 §3).
const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// ff02::16: MLDv2 reports go to all MLDv2-capable routers (RFC 9777 §5.2.14).
const ALL_V2_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x16);

fn is_link_local_unicast(addr: &Ipv6Addr) -> bool {
    addr.segments()[0] & 0xffc0 == 0xfe80
}

/// The scope nibble of a multicast address (RFC 4291 §2.7).
fn multicast_scope(addr: &Ipv6Addr) -> u16 {
    addr.segments()[0] & 0x000f
}

impl Protocol for Mld {
    type Addr = Ipv6Addr;
    type Version = MldVersion;
    const ALL_SYSTEMS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    /// IPv6 header (40), hop-by-hop header with Router Alert (8), report header (8).
    const REPORT_OVERHEAD: usize = 40 + 8 + 8;
    const RECORD_OVERHEAD: usize = 20;
    const ADDR_LEN: usize = 16;

    fn from_ip(addr: IpAddr) -> Option<Ipv6Addr> {
        match addr {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        }
    }

    fn is_source(addr: &Ipv6Addr) -> bool {
        !addr.is_multicast() && !addr.is_unspecified()
    }

    fn is_multicast(addr: &Ipv6Addr) -> bool {
        addr.is_multicast()
    }

    fn is_unspecified(addr: &Ipv6Addr) -> bool {
        addr.is_unspecified()
    }

    /// RFC 2710 §5: never for ff02::1, nor for scopes 0 (reserved) and 1 (interface-local).
    fn reportable(group: &Ipv6Addr, _config: &Config) -> bool {
        *group != Self::ALL_SYSTEMS && multicast_scope(group) > 1
    }

    fn unsolicited_interval(config: &Config) -> Duration {
        config.mld_unsolicited_interval
    }

    /// MLDv1 is the v2-like mode; MLD has no v1-like one.
    fn max_compat(config: &Config) -> Compat {
        match config.mld_max_version {
            MldVersion::V1 => Compat::V2,
            MldVersion::V2 => Compat::V3,
        }
    }

    /// MLDv1 is the V2 mode, MLDv2 the V3 one.
    fn version(mode: Compat) -> MldVersion {
        match mode {
            Compat::V1 | Compat::V2 => MldVersion::V1,
            Compat::V3 => MldVersion::V2,
        }
    }

    fn v3_report(
        iface: IfIndex,
        addrs: &InterfaceConfig,
        report: PackedReport<Ipv6Addr>,
        stats: &mut Stats,
    ) -> Transmit {
        stats.mld.mld_snd_reports += 1;
        stats.mld.mld_snd_v2_reports += 1;
        Transmit::Mld(MldTransmit::with_leaves(
            iface,
            addrs.ipv6_link_local.unwrap_or(Ipv6Addr::UNSPECIFIED),
            ALL_V2_ROUTERS,
            MldRepr::ReportV2 {
                records: report.records,
            },
            report.leaves,
        ))
    }

    /// MLD counts no query or report versions but MLDv2's.
    fn count(stats: &mut Stats, heard: Heard) {
        let mld = &mut stats.mld;
        match heard {
            Heard::Query(form) => {
                mld.mld_rcv_queries += 1;
                if form == Compat::V3 {
                    mld.mld_rcv_v2_queries += 1;
                }
            }
            Heard::QueryRejected => mld.mld_rcv_badqueries += 1,
            Heard::Report { .. } => mld.mld_rcv_reports += 1,
            Heard::ReportRejected => mld.mld_rcv_badreports += 1,
            Heard::Looped => mld.mld_rcv_looped += 1,
            Heard::OurGroup => mld.mld_rcv_ourreports += 1,
        }
    }

    fn query_drop(problem: QueryProblem) -> DropReason {
        match problem {
            QueryProblem::BadGroup => DropReason::MldQueryBadGroup,
            QueryProblem::BadDestination => DropReason::MldQueryBadDestination,
            QueryProblem::GeneralWithSources => DropReason::MldGeneralQueryWithSources,
        }
    }

    fn report_drop(problem: ReportProblem) -> DropReason {
        match problem {
            ReportProblem::BadGroup => DropReason::MldReportBadGroup,
            ReportProblem::GroupMismatch => DropReason::MldReportGroupMismatch,
        }
    }

    fn transmit(
        iface: IfIndex,
        addrs: &InterfaceConfig,
        group: Ipv6Addr,
        message: MemberMessage,
        _ctx: &MemberContext,
        stats: &mut Stats,
    ) -> Transmit {
        let (repr, dst) = match message {
            MemberMessage::Report => {
                stats.mld.mld_snd_reports += 1;
                (MldRepr::Report { group }, group)
            }
            MemberMessage::Leave => {
                stats.mld.mld_snd_dones += 1;
                (MldRepr::Done { group }, ALL_ROUTERS)
            }
        };
        let src = addrs.ipv6_link_local.unwrap_or(Ipv6Addr::UNSPECIFIED);
        Transmit::Mld(MldTransmit::new(iface, src, dst, repr))
    }
}

impl From<MldVersion> for ProtocolVersion {
    fn from(v: MldVersion) -> ProtocolVersion {
        ProtocolVersion::Mld(v)
    }
}

/// One MLD message (the ICMPv6 message after the IPv6 header chain) received on `ifindex`:
/// validated, counted, handled.
pub(crate) fn input(
    family: &mut Family<Mld>,
    env: &mut Env<'_>,
    ifindex: IfIndex,
    meta: &Ipv6Meta,
    payload: &[u8],
    now: Instant,
) -> Result<(), DropReason> {
    env.stats.mld.mld_rcv_total += 1;
    let Some(addrs) = env.interfaces.get(&ifindex) else {
        return Err(env.stats.reject(DropReason::UnknownInterface));
    };
    let own_address = addrs.ipv6_link_local;
    // Length and checksum first, as for IGMP: a corrupt packet is counted as corrupt.
    let repr = MldRepr::parse(payload, &meta.src, &meta.dst)
        .map_err(|e| env.stats.reject(mld_wire_drop(e)))?;
    // RFC 2710 §3: MLD is sent from a link-local source with hop limit 1 and Router
    // Alert. The seeds drop a non-link-local source; the others are policy.
    if !is_link_local_unicast(&meta.src) {
        return Err(env.stats.reject(DropReason::MldSourceNotLinkLocal));
    }
    let policy = env.config.mld_policy;
    if meta.hop_limit != 1 && policy.require_hop_limit_one {
        return Err(env.stats.reject(DropReason::MldBadHopLimit));
    }
    if !meta.router_alert && policy.require_router_alert {
        return Err(env.stats.reject(DropReason::MldNoRouterAlert));
    }

    let dst = meta.dst;
    match &repr {
        MldRepr::Query { .. } | MldRepr::QueryV2 { .. } => {
            family.handle_query(ifindex, &MldQuery(&repr), (dst, own_address), now, env)
        }
        MldRepr::Report { group } => {
            let addrs = (meta.src, dst, own_address);
            family.handle_report(ifindex, *group, false, addrs, now, env)
        }
        MldRepr::Done { .. } => {
            env.stats.mld.mld_rcv_dones += 1;
            Ok(())
        }
        // RFC 9777 §8.2: an MLDv1 host ignores MLDv2 reports.
        MldRepr::ReportV2 { .. } => {
            env.stats.mld.mld_rcv_reports += 1;
            env.stats.mld.mld_rcv_v2_reports += 1;
            Ok(())
        }
    }
}

/// An MLD query (a `Query` or `QueryV2` message) as the engine reads it.
struct MldQuery<'a>(&'a MldRepr);

impl QueryView<Ipv6Addr> for MldQuery<'_> {
    /// MLDv1 is the V2 form, MLDv2 the V3 one; MLD has no V1 form.
    fn form(&self) -> Compat {
        match self.0 {
            MldRepr::QueryV2 { .. } => Compat::V3,
            _ => Compat::V2,
        }
    }

    fn group(&self) -> Ipv6Addr {
        match self.0 {
            MldRepr::Query { group, .. } | MldRepr::QueryV2 { group, .. } => *group,
            _ => Ipv6Addr::UNSPECIFIED,
        }
    }

    /// An MLDv2 query's Maximum Response Code is read in the v2 form, also in MLDv1 mode
    /// (RFC 9777 §8.2.1).
    fn max_resp(&self) -> Duration {
        self.0.max_resp_time().unwrap_or_default()
    }

    fn sources(&self) -> &[Ipv6Addr] {
        match self.0 {
            MldRepr::QueryV2 { sources, .. } => sources,
            _ => &[],
        }
    }

    fn querier(&self) -> (u8, Duration) {
        match self.0 {
            MldRepr::QueryV2 { qrv, qqic, .. } => {
                (*qrv, Duration::from_secs(u64::from(decode_code8(*qqic))))
            }
            _ => (0, Duration::ZERO),
        }
    }
}
