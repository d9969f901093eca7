//! The queries mcquerier sends: their protocol and fields, the bytes on the wire, and the
//! source address they go from.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::bail;
use membership::wire::igmp::IgmpRepr;
use membership::wire::ip::{build_ipv4, build_ipv6};
use membership::wire::mld::MldRepr;
use membership::wire::{decode_code16, decode_code8, encode_code16, encode_code8};

use crate::link::Interface;
use tools::packet_socket::{ETHERTYPE_IPV4, ETHERTYPE_IPV6};

/// All-systems group, destination of IGMP general queries (RFC 2236 §2.1).
pub const ALL_SYSTEMS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 1);
/// Link-scope all-nodes group, destination of MLD general queries (RFC 2710 §5).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// What hosts wait at most when no Max Resp Time is given: RFC 2236 §8.3 and RFC 2710 §7.3
/// both default to 10 s, and IGMPv1 hosts always use 10 s (RFC 2236 §4).
pub const DEFAULT_MAX_RESP_MS: u32 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// IGMP version 1, 2 or 3.
    Igmp(u8),
    /// MLD version 1 or 2.
    Mld(u8),
}

impl Protocol {
    pub fn is_ipv6(self) -> bool {
        matches!(self, Protocol::Mld(_))
    }

    /// IGMPv3 or MLDv2: queries with QRV, QQIC, S flag and sources.
    pub fn is_v3(self) -> bool {
        matches!(self, Protocol::Igmp(3) | Protocol::Mld(2))
    }

    /// `igmpv2`, `mldv1`...
    pub fn name(self) -> String {
        match self {
            Protocol::Igmp(version) => format!("igmpv{version}"),
            Protocol::Mld(version) => format!("mldv{version}"),
        }
    }
}

/// The Max Resp Code we send and the time it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxResp {
    pub code: u16,
    pub ms: u32,
}

impl MaxResp {
    pub fn for_protocol(protocol: Protocol, requested_ms: u32) -> Result<MaxResp, String> {
        match protocol {
            // RFC 2236 §4: an IGMPv1 query has code 0, and v1 hosts wait up to 10 s.
            Protocol::Igmp(1) => Ok(MaxResp {
                code: 0,
                ms: DEFAULT_MAX_RESP_MS,
            }),
            // Tenths of a second, as a floating-point code (RFC 9776 §4.1.1): exact up to
            // 12.7 s, then rounded down. 0 is valid in v3, but 1 at least, as in v2.
            Protocol::Igmp(3) => {
                let code = encode_code8((requested_ms / 100).max(1));
                Ok(MaxResp {
                    code: u16::from(code),
                    ms: decode_code8(code) * 100,
                })
            }
            // Tenths of a second; 0 would make it a v1 query, so 1 at least.
            Protocol::Igmp(_) => {
                let code = (requested_ms / 100).clamp(1, 255);
                Ok(MaxResp {
                    code: code as u16,
                    ms: code * 100,
                })
            }
            // Milliseconds as a floating-point code (RFC 9777 §5.1.3): exact up to 32767 ms,
            // then rounded down.
            Protocol::Mld(2) => {
                let code = encode_code16(requested_ms);
                Ok(MaxResp {
                    code,
                    ms: decode_code16(code),
                })
            }
            Protocol::Mld(_) => {
                let code = u16::try_from(requested_ms).map_err(|_| {
                    format!(
                        "--max-resp-ms {requested_ms}: MLDv1 Maximum Response Delay is at most \
                         65535 ms"
                    )
                })?;
                Ok(MaxResp {
                    code,
                    ms: requested_ms,
                })
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct QuerySpec {
    pub protocol: Protocol,
    pub group: Option<IpAddr>,
    pub max_resp: MaxResp,
    pub src: Option<IpAddr>,
    /// What only IGMPv3 and MLDv2 queries carry: present for those, and for those only.
    pub v3: Option<V3Fields>,
}

/// The fields of an IGMPv3 / MLDv2 query beyond those of v2 / v1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V3Fields {
    pub suppress_router: bool,
    pub qrv: u8,
    pub qqic: u8,
    /// Non-empty: a group-and-source-specific query (a group is then given).
    pub sources: Vec<IpAddr>,
}

/// A query ready to go onto the link.
#[derive(Debug, Clone)]
pub struct Query {
    pub ethertype: u16,
    pub dst: IpAddr,
    /// The IGMP or ICMPv6 message alone.
    pub message: Vec<u8>,
    /// The whole IP packet around it.
    pub packet: Vec<u8>,
    /// `igmpv2 general query max-resp 1000ms from 10.99.0.1 to 224.0.0.1`
    pub description: String,
}

/// What differs between an IGMP and an MLD query: the address family, where a general query
/// goes, and the message with the packet around it.
trait QueryFamily: Copy + Into<IpAddr> {
    const ETHERTYPE: u16;
    /// Where a general query goes.
    const ALL: Self;
    const UNSPECIFIED: Self;

    fn of(addr: IpAddr) -> Option<Self>;

    /// The query message and the whole IP packet around it; `v3` with its sources makes it
    /// an IGMPv3 / MLDv2 query.
    fn query(
        src: Self,
        dst: Self,
        group: Self,
        max_resp_code: u16,
        v3: Option<(&V3Fields, Vec<Self>)>,
    ) -> (Vec<u8>, Vec<u8>);
}

impl QueryFamily for Ipv4Addr {
    const ETHERTYPE: u16 = ETHERTYPE_IPV4;
    const ALL: Self = ALL_SYSTEMS;
    const UNSPECIFIED: Self = Ipv4Addr::UNSPECIFIED;

    fn of(addr: IpAddr) -> Option<Self> {
        match addr {
            IpAddr::V4(addr) => Some(addr),
            IpAddr::V6(_) => None,
        }
    }

    fn query(
        src: Self,
        dst: Self,
        group: Self,
        max_resp_code: u16,
        v3: Option<(&V3Fields, Vec<Self>)>,
    ) -> (Vec<u8>, Vec<u8>) {
        // MaxResp::for_protocol keeps IGMP codes within a byte.
        let max_resp_code = max_resp_code as u8;
        let repr = match v3 {
            Some((v3, sources)) => IgmpRepr::QueryV3 {
                max_resp_code,
                group,
                suppress_router: v3.suppress_router,
                qrv: v3.qrv,
                qqic: v3.qqic,
                sources,
            },
            None => IgmpRepr::Query {
                max_resp_code,
                group,
            },
        };
        let message = repr.to_bytes();
        let packet = build_ipv4(src, dst, &message);
        (message, packet)
    }
}

impl QueryFamily for Ipv6Addr {
    const ETHERTYPE: u16 = ETHERTYPE_IPV6;
    const ALL: Self = ALL_NODES;
    const UNSPECIFIED: Self = Ipv6Addr::UNSPECIFIED;

    fn of(addr: IpAddr) -> Option<Self> {
        match addr {
            IpAddr::V6(addr) => Some(addr),
            IpAddr::V4(_) => None,
        }
    }

    fn query(
        src: Self,
        dst: Self,
        group: Self,
        max_resp_code: u16,
        v3: Option<(&V3Fields, Vec<Self>)>,
    ) -> (Vec<u8>, Vec<u8>) {
        let repr = match v3 {
            Some((v3, sources)) => MldRepr::QueryV2 {
                max_resp_code,
                group,
                suppress_router: v3.suppress_router,
                qrv: v3.qrv,
                qqic: v3.qqic,
                sources,
            },
            None => MldRepr::Query {
                max_resp_delay: max_resp_code,
                group,
            },
        };
        let message = repr.to_bytes(&src, &dst);
        let packet = build_ipv6(src, dst, &message);
        (message, packet)
    }
}

/// Ethertype, destination, message and packet of the query `spec` asks for, from `src`.
fn family_query<A: QueryFamily>(spec: &QuerySpec, src: A) -> (u16, IpAddr, Vec<u8>, Vec<u8>) {
    let group = spec.group.and_then(A::of);
    let dst = group.unwrap_or(A::ALL);
    let v3 = spec.v3.as_ref().map(|v3| {
        let sources = v3.sources.iter().copied().filter_map(A::of).collect();
        (v3, sources)
    });
    let group = group.unwrap_or(A::UNSPECIFIED);
    let (message, packet) = A::query(src, dst, group, spec.max_resp.code, v3);
    (A::ETHERTYPE, dst.into(), message, packet)
}

pub fn build_query(spec: &QuerySpec, src: IpAddr) -> Query {
    let max_resp = spec.max_resp;
    let (ethertype, dst, message, packet) = match (spec.protocol, src) {
        (Protocol::Igmp(_), IpAddr::V4(src)) => family_query(spec, src),
        (Protocol::Mld(_), IpAddr::V6(src)) => family_query(spec, src),
        _ => unreachable!("Config::from_cli checks the source family"),
    };
    let mut description = spec.protocol.name();
    match (spec.group, &spec.v3) {
        (None, _) => description.push_str(" general query"),
        (Some(group), Some(v3)) if !v3.sources.is_empty() => {
            let sources: Vec<String> = v3.sources.iter().map(IpAddr::to_string).collect();
            description.push_str(&format!(
                " group-and-source-specific query {group} sources{{{}}}",
                sources.join(",")
            ));
        }
        (Some(group), _) => description.push_str(&format!(" group-specific query {group}")),
    }
    description.push_str(&format!(" max-resp {}ms", max_resp.ms));
    if let Some(v3) = &spec.v3 {
        description.push_str(&format!(
            " qrv {} qqi {}s s-flag {}",
            v3.qrv,
            decode_code8(v3.qqic),
            if v3.suppress_router { "on" } else { "off" }
        ));
    }
    description.push_str(&format!(" from {src} to {dst}"));
    Query {
        ethertype,
        dst,
        message,
        packet,
        description,
    }
}

/// The source of our queries, and a warning if it is a doubtful one. Through the IP stack
/// (`inject` false) an unspecified source is the kernel's to choose.
pub fn query_source(
    spec: &QuerySpec,
    interface: &Interface,
    inject: bool,
) -> anyhow::Result<(IpAddr, Option<String>)> {
    let dev = &interface.name;
    match spec.protocol {
        Protocol::Igmp(_) => {
            let (src, reason) = match (spec.src, interface.ipv4) {
                (Some(src), _) => (src, format!("--src {src}")),
                (None, Some(addr)) => (addr.into(), String::new()),
                (None, None) => (
                    Ipv4Addr::UNSPECIFIED.into(),
                    format!("{dev} has no IPv4 address"),
                ),
            };
            let warning = match (src, inject) {
                (IpAddr::V4(Ipv4Addr::UNSPECIFIED), true) => {
                    Some(format!("{reason}: queries go from 0.0.0.0"))
                }
                // raw(7): with IP_HDRINCL a zero source is filled in by the kernel.
                (IpAddr::V4(Ipv4Addr::UNSPECIFIED), false) => Some(format!(
                    "{reason}: queries go from 0.0.0.0 only if no interface has an IPv4 \
                     address, else the kernel picks one of them (--inject keeps 0.0.0.0)"
                )),
                _ => None,
            };
            Ok((src, warning))
        }
        // RFC 2710 §3: hosts (the Linux kernel among them) drop MLD queries whose source is
        // not link-local. A test may want exactly that, so --src is taken as given.
        Protocol::Mld(_) => match (spec.src, interface.link_local) {
            (Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)), _) if !inject => Ok((
                Ipv6Addr::UNSPECIFIED.into(),
                Some(format!(
                    "--src :: lets the kernel pick the source (a link-local address of {dev})"
                )),
            )),
            (Some(IpAddr::V6(src)), _) if !src.is_unicast_link_local() => Ok((
                src.into(),
                Some(format!(
                    "--src {src} is not link-local: hosts will ignore these MLD queries"
                )),
            )),
            (Some(src), _) => Ok((src, None)),
            (None, Some(addr)) => Ok((addr.into(), None)),
            (None, None) => bail!(
                "{dev} has no link-local IPv6 address, which MLD queries must come from \
                 (add one: ip -6 addr add fe80::1/64 dev {dev} nodad; or give --src)"
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::tests::{config, spec};
    use membership::wire::ip::{classify, Classified};

    /// The query that `mcquerier --dev t0 ARGS` sends from `src`.
    fn query(args: &[&str], src: &str) -> Query {
        let args: Vec<&str> = ["--dev", "t0"].iter().chain(args).copied().collect();
        build_query(spec(&config(&args).unwrap()), src.parse().unwrap())
    }

    fn v4(text: &str) -> Ipv4Addr {
        text.parse().unwrap()
    }

    fn v6(text: &str) -> Ipv6Addr {
        text.parse().unwrap()
    }

    #[test]
    fn igmpv3_queries_are_well_formed() {
        let general = query(&["--igmp", "3", "--max-resp-ms", "1000"], "10.99.0.1");
        assert_eq!(general.dst, IpAddr::V4(ALL_SYSTEMS));
        assert_eq!(general.message.len(), 12);
        assert_eq!(
            general.description,
            "igmpv3 general query max-resp 1000ms qrv 2 qqi 5s s-flag on from 10.99.0.1 to \
             224.0.0.1"
        );
        let Ok(Classified::Igmp { meta, payload }) = classify(&general.packet) else {
            panic!("not IGMP");
        };
        assert_eq!(payload, general.message);
        assert_eq!((meta.ttl, meta.router_alert), (1, true));
        assert_eq!(meta.dst, ALL_SYSTEMS);
        assert_eq!(
            IgmpRepr::parse(payload),
            Ok(IgmpRepr::QueryV3 {
                max_resp_code: 10,
                group: Ipv4Addr::UNSPECIFIED,
                suppress_router: true,
                qrv: 2,
                qqic: 5,
                sources: vec![]
            })
        );

        let specific = query(
            &[
                "--igmp",
                "3",
                "--group",
                "232.1.1.1",
                "--sources",
                "10.0.0.2,10.0.0.9",
                "--interval",
                "125",
                "--qrv",
                "3",
            ],
            "10.99.0.1",
        );
        assert_eq!(specific.message.len(), 12 + 2 * 4);
        assert_eq!(
            specific.description,
            "igmpv3 group-and-source-specific query 232.1.1.1 sources{10.0.0.2,10.0.0.9} \
             max-resp 10000ms qrv 3 qqi 125s s-flag off from 10.99.0.1 to 232.1.1.1"
        );
        let Ok(Classified::Igmp { meta, payload }) = classify(&specific.packet) else {
            panic!("not IGMP");
        };
        assert_eq!(meta.dst, v4("232.1.1.1"));
        assert_eq!(specific.dst, IpAddr::V4(meta.dst));
        assert_eq!(
            IgmpRepr::parse(payload),
            Ok(IgmpRepr::QueryV3 {
                max_resp_code: 100,
                group: v4("232.1.1.1"),
                suppress_router: false,
                qrv: 3,
                qqic: 125,
                sources: vec![v4("10.0.0.2"), v4("10.0.0.9")]
            })
        );
        // Group-specific, without sources: S flag clear, to the group.
        let group = query(&["--igmp", "3", "--group", "239.1.1.1"], "10.99.0.1");
        assert!(group
            .description
            .starts_with("igmpv3 group-specific query 239.1.1.1 "));
        let Ok(IgmpRepr::QueryV3 {
            group: g,
            suppress_router: false,
            sources,
            ..
        }) = IgmpRepr::parse(&group.message)
        else {
            panic!("not a v3 query without S flag");
        };
        assert_eq!((g, sources.len()), (v4("239.1.1.1"), 0));
        assert_eq!(group.dst, IpAddr::V4(g));
    }

    #[test]
    fn mldv2_queries_are_well_formed() {
        let src = v6("fe80::1");
        let general = query(&["--mld", "2", "--max-resp-ms", "40000"], "fe80::1");
        assert_eq!(general.ethertype, ETHERTYPE_IPV6);
        assert_eq!(general.dst, IpAddr::V6(ALL_NODES));
        assert_eq!(general.message.len(), 28);
        let Ok(Classified::Mld { meta, payload }) = classify(&general.packet) else {
            panic!("not MLD");
        };
        assert_eq!(payload, general.message);
        assert_eq!((meta.src, meta.dst), (src, ALL_NODES));
        assert_eq!((meta.hop_limit, meta.router_alert), (1, true));
        assert_eq!(
            MldRepr::parse(payload, &meta.src, &meta.dst),
            Ok(MldRepr::QueryV2 {
                max_resp_code: 0x8388,
                group: Ipv6Addr::UNSPECIFIED,
                suppress_router: true,
                qrv: 2,
                qqic: 5,
                sources: vec![]
            })
        );
        assert_eq!(
            general.description,
            "mldv2 general query max-resp 40000ms qrv 2 qqi 5s s-flag on from fe80::1 to ff02::1"
        );

        let specific = query(
            &[
                "--mld",
                "2",
                "--group",
                "ff3e::8000:1",
                "--sources",
                "2001:db8::1,2001:db8::2",
                "--max-resp-ms",
                "1000",
                "--s-flag",
                "on",
                "--interval",
                "0.5",
            ],
            "fe80::1",
        );
        let group = v6("ff3e::8000:1");
        assert_eq!(specific.message.len(), 28 + 2 * 16);
        assert_eq!(specific.dst, IpAddr::V6(group));
        let Ok(Classified::Mld { meta, payload }) = classify(&specific.packet) else {
            panic!("not MLD");
        };
        assert_eq!(meta.dst, group);
        assert_eq!(
            MldRepr::parse(payload, &meta.src, &meta.dst),
            Ok(MldRepr::QueryV2 {
                max_resp_code: 1000,
                group,
                suppress_router: true,
                qrv: 2,
                qqic: 1,
                sources: vec![v6("2001:db8::1"), v6("2001:db8::2")]
            })
        );
    }

    #[test]
    fn igmp_queries_are_well_formed() {
        let general = query(&["--igmp", "2", "--max-resp-ms", "1000"], "10.99.0.1");
        assert_eq!(general.ethertype, ETHERTYPE_IPV4);
        assert_eq!(general.dst, IpAddr::V4(ALL_SYSTEMS));
        assert_eq!(
            general.description,
            "igmpv2 general query max-resp 1000ms from 10.99.0.1 to 224.0.0.1"
        );
        let Ok(Classified::Igmp { meta, payload }) = classify(&general.packet) else {
            panic!("not IGMP");
        };
        assert_eq!(payload, general.message);
        // TOS 0xc0 (internetwork control), as Linux sends IGMP.
        assert_eq!(general.packet[1], 0xc0);
        assert_eq!((meta.ttl, meta.router_alert), (1, true));
        assert_eq!(meta.dst, ALL_SYSTEMS);
        assert_eq!(
            IgmpRepr::parse(payload),
            Ok(IgmpRepr::Query {
                max_resp_code: 10,
                group: Ipv4Addr::UNSPECIFIED
            })
        );
        let group: IpAddr = "239.1.2.3".parse().unwrap();
        let specific = query(
            &[
                "--igmp",
                "2",
                "--max-resp-ms",
                "1000",
                "--group",
                "239.1.2.3",
            ],
            "10.99.0.1",
        );
        let Ok(Classified::Igmp { meta, payload }) = classify(&specific.packet) else {
            panic!("not IGMP");
        };
        assert_eq!(IpAddr::V4(meta.dst), group);
        assert_eq!(
            IgmpRepr::parse(payload).unwrap(),
            IgmpRepr::Query {
                max_resp_code: 10,
                group: "239.1.2.3".parse().unwrap()
            }
        );
    }

    #[test]
    fn mld_queries_are_well_formed() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let group: Ipv6Addr = "ff12::1234".parse().unwrap();
        for (group, dst) in [(None, ALL_NODES), (Some(group), group)] {
            let mut args = vec!["--mld", "1", "--max-resp-ms", "1000"];
            let group_text = group.map(|group| group.to_string());
            if let Some(text) = &group_text {
                args.extend(["--group", text.as_str()]);
            }
            let query = query(&args, "fe80::1");
            assert_eq!(query.ethertype, ETHERTYPE_IPV6);
            let Ok(Classified::Mld { meta, payload }) = classify(&query.packet) else {
                panic!("not MLD");
            };
            assert_eq!(payload, query.message);
            assert_eq!(query.dst, IpAddr::V6(dst));
            assert_eq!((meta.src, meta.dst), (src, dst));
            assert_eq!((meta.hop_limit, meta.router_alert), (1, true));
            assert_eq!(
                MldRepr::parse(payload, &meta.src, &meta.dst),
                Ok(MldRepr::Query {
                    max_resp_delay: 1000,
                    group: group.unwrap_or(Ipv6Addr::UNSPECIFIED)
                })
            );
        }
    }
}
