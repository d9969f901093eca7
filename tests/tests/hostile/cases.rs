//! The hostile packets of `hostile.rs`: the addresses they use, how they are built (IPv4 and
//! IPv6 headers, IGMP and MLD with their checksums made right after each edit), and every case
//! with the one drop counter it must move.

use std::net::{Ipv4Addr, Ipv6Addr};

use membership::wire::igmp::IgmpRepr;
use membership::wire::ip::{build_ipv4, build_ipv6};
use membership::wire::mld::{icmpv6_checksum, MldRepr};
use membership::wire::{internet_checksum, GroupRecord, RecordType};
use tests::KERNEL_V4;

pub(crate) const KERNEL6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
pub(crate) const ALL_SYSTEMS4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 1);
pub(crate) const ALL_SYSTEMS6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
pub(crate) const V3_ROUTERS4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 22);
pub(crate) const V2_ROUTERS6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x16);
/// Joined before the hostile packets arrive.
pub(crate) const G4: Ipv4Addr = Ipv4Addr::new(239, 1, 2, 3);
pub(crate) const G4B: Ipv4Addr = Ipv4Addr::new(239, 4, 5, 6);
pub(crate) const G6: Ipv6Addr = Ipv6Addr::new(0xff12, 0, 0, 0, 0, 0, 0, 0x1234);
pub(crate) const G6B: Ipv6Addr = Ipv6Addr::new(0xff05, 0, 0, 0, 0, 4, 5, 6);
/// Not joined.
pub(crate) const OTHER4: Ipv4Addr = Ipv4Addr::new(239, 9, 9, 9);
pub(crate) const OTHER6: Ipv6Addr = Ipv6Addr::new(0xff12, 0, 0, 0, 0, 0, 0, 0x9999);
pub(crate) const UNICAST4: Ipv4Addr = Ipv4Addr::new(10, 1, 2, 3);
pub(crate) const GLOBAL6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
pub(crate) const SOURCE4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 9);
pub(crate) const SOURCE6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 9);

/// IPv4 protocol numbers, IPv6 next-header values.
pub(crate) const PROTO_IGMP: u8 = 2;
pub(crate) const PROTO_UDP: u8 = 17;
pub(crate) const NH_HOP_BY_HOP: u8 = 0;
pub(crate) const NH_FRAGMENT: u8 = 44;
pub(crate) const NH_ICMPV6: u8 = 58;
pub(crate) const NH_DEST_OPTS: u8 = 60;
/// Hop-by-hop header to ICMPv6 with Router Alert 0 (MLD) and PadN, as Linux sends it.
pub(crate) const HBH_RA: [u8; 8] = [NH_ICMPV6, 0, 5, 2, 0, 0, 1, 0];

// ---------- packet building ----------

/// Recomputes the IPv4 header checksum after an edit.
pub(crate) fn fix_ipv4_sum(p: &mut [u8]) {
    let header_len = (usize::from(p[0] & 0x0f) * 4).clamp(20, p.len());
    p[10..12].copy_from_slice(&[0, 0]);
    let sum = internet_checksum(&p[..header_len]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
}

/// `packet` with `edit` applied and the header checksum made right again.
pub(crate) fn edit_ipv4(mut packet: Vec<u8>, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    edit(&mut packet);
    fix_ipv4_sum(&mut packet);
    packet
}

/// IGMP as Linux sends it (Router Alert, TTL 1) from the kernel side to `dst`.
pub(crate) fn ipv4(dst: Ipv4Addr, igmp: &[u8]) -> Vec<u8> {
    build_ipv4(KERNEL_V4, dst, igmp)
}

/// IPv4 with any options, protocol and TTL; the header checksum right.
pub(crate) fn ipv4_raw(
    options: &[u8],
    ttl: u8,
    protocol: u8,
    dst: Ipv4Addr,
    payload: &[u8],
) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0, "options fill whole words");
    let header_len = 20 + options.len();
    let total = (header_len + payload.len()) as u16;
    let mut p = vec![0x40 | (header_len / 4) as u8, 0xc0];
    p.extend(total.to_be_bytes());
    p.extend([0, 0, 0x40, 0, ttl, protocol, 0, 0]);
    p.extend(KERNEL_V4.octets());
    p.extend(dst.octets());
    p.extend(options);
    fix_ipv4_sum(&mut p);
    p.extend(payload);
    p
}

/// The IGMP checksum made right again after an edit.
pub(crate) fn fix_igmp_sum(mut igmp: Vec<u8>) -> Vec<u8> {
    igmp[2..4].copy_from_slice(&[0, 0]);
    let sum = internet_checksum(&igmp);
    igmp[2..4].copy_from_slice(&sum.to_be_bytes());
    igmp
}

/// The ICMPv6 checksum made right again after an edit.
pub(crate) fn fix_mld_sum(src: Ipv6Addr, dst: Ipv6Addr, mut message: Vec<u8>) -> Vec<u8> {
    message[2..4].copy_from_slice(&[0, 0]);
    let sum = icmpv6_checksum(&src, &dst, &message);
    message[2..4].copy_from_slice(&sum.to_be_bytes());
    message
}

/// An IPv6 header (hop limit `hop_limit`, first next header `next`) followed by `rest`.
pub(crate) fn ipv6_raw(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    next: u8,
    rest: &[u8],
) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend((rest.len() as u16).to_be_bytes());
    p.extend([next, hop_limit]);
    p.extend(src.octets());
    p.extend(dst.octets());
    p.extend(rest);
    p
}

/// MLD as Linux sends it (hop-by-hop Router Alert, hop limit 1), checksum for `src`/`dst`.
pub(crate) fn mld(src: Ipv6Addr, dst: Ipv6Addr, repr: &MldRepr) -> Vec<u8> {
    build_ipv6(src, dst, &repr.to_bytes(&src, &dst))
}

pub(crate) fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

pub(crate) fn record4(group: Ipv4Addr, sources: Vec<Ipv4Addr>) -> GroupRecord<Ipv4Addr> {
    GroupRecord {
        kind: RecordType::ModeIsInclude,
        group,
        sources,
        aux_data: vec![],
    }
}

pub(crate) fn record6(group: Ipv6Addr, sources: Vec<Ipv6Addr>) -> GroupRecord<Ipv6Addr> {
    GroupRecord {
        kind: RecordType::ModeIsInclude,
        group,
        sources,
        aux_data: vec![],
    }
}

/// A malformed or illegal packet and the one drop counter it must move.
pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) counter: &'static str,
    pub(crate) packet: Vec<u8>,
}

pub(crate) fn case(name: impl Into<String>, counter: &'static str, packet: Vec<u8>) -> Case {
    Case {
        name: name.into(),
        counter,
        packet,
    }
}

/// Every hostile packet, IP layer first, then IGMP, IPv6 and MLD.
pub(crate) fn cases() -> Vec<Case> {
    // A valid IGMPv2 general query (Max Resp 1 s) and a valid MLDv1 one, to corrupt.
    let query4 = IgmpRepr::Query {
        max_resp_code: 10,
        group: Ipv4Addr::UNSPECIFIED,
    }
    .to_bytes();
    let valid4 = ipv4(ALL_SYSTEMS4, &query4);
    assert_eq!(valid4.len(), 32);
    let mld_query = |group| MldRepr::Query {
        max_resp_delay: 1000,
        group,
    };
    let query6 = mld_query(Ipv6Addr::UNSPECIFIED).to_bytes(&KERNEL6, &ALL_SYSTEMS6);
    let valid6 = mld(KERNEL6, ALL_SYSTEMS6, &mld_query(Ipv6Addr::UNSPECIFIED));
    assert_eq!(valid6.len(), 72);
    let udp = [0x12, 0x34, 0x12, 0x34, 0, 12, 0, 0, b'h', b'i', b'!', 0];
    let v3_query4 = |group, sources| IgmpRepr::QueryV3 {
        max_resp_code: 10,
        group,
        suppress_router: false,
        qrv: 2,
        qqic: 125,
        sources,
    };
    let v3_query6 = |group, sources| MldRepr::QueryV2 {
        max_resp_code: 1000,
        group,
        suppress_router: false,
        qrv: 2,
        qqic: 125,
        sources,
    };
    let v3_report4 = IgmpRepr::ReportV3 {
        records: vec![record4(OTHER4, vec![SOURCE4])],
    }
    .to_bytes();
    let v2_report6 = MldRepr::ReportV2 {
        records: vec![record6(OTHER6, vec![])],
    }
    .to_bytes(&KERNEL6, &V2_ROUTERS6);
    let set_u16 = |bytes: &mut Vec<u8>, at: usize, value: u16| {
        bytes[at..at + 2].copy_from_slice(&value.to_be_bytes());
    };

    let mut cases = vec![
        // ---- not IP, IPv4 header ----
        case(
            "garbage, not IP (version 0)",
            "drop_not_ip",
            b"\x00\x11 this is not an IP packet".to_vec(),
        ),
        case(
            "IP version 5",
            "drop_not_ip",
            edit_ipv4(valid4.clone(), |p| p[0] = 0x56),
        ),
        case(
            "IPv4 header cut at 12 bytes",
            "drop_ipv4_truncated",
            valid4[..12].to_vec(),
        ),
        case(
            "IPv4 options cut short (IHL 6, 22 bytes)",
            "drop_ipv4_truncated",
            valid4[..22].to_vec(),
        ),
        case(
            "IPv4 IHL 4 (< 5)",
            "drop_ipv4_bad_header_length",
            edit_ipv4(valid4.clone(), |p| p[0] = 0x44),
        ),
        case(
            "IPv4 total length 4 bytes past the packet",
            "drop_ipv4_bad_total_length",
            edit_ipv4(valid4.clone(), |p| set_u16(p, 2, 36)),
        ),
        case(
            "IPv4 total length 20, below the 24-byte header",
            "drop_ipv4_bad_total_length",
            edit_ipv4(valid4.clone(), |p| set_u16(p, 2, 20)),
        ),
        case("IPv4 header checksum wrong", "drop_ipv4_bad_checksum", {
            let mut p = valid4.clone();
            p[10] ^= 0x5a;
            p
        }),
        case(
            "IPv4 Router Alert option claims 8 bytes in a 4-byte option area",
            "drop_ipv4_bad_options",
            ipv4_raw(&[0x94, 8, 0, 0], 1, PROTO_IGMP, ALL_SYSTEMS4, &query4),
        ),
        case(
            "IPv4 option of length 1",
            "drop_ipv4_bad_options",
            ipv4_raw(&[7, 1, 0, 0], 1, PROTO_IGMP, ALL_SYSTEMS4, &query4),
        ),
        case(
            "IPv4 Router Alert option of length 6",
            "drop_ipv4_bad_options",
            ipv4_raw(
                &[0x94, 6, 0, 0, 0, 0, 0, 0],
                1,
                PROTO_IGMP,
                ALL_SYSTEMS4,
                &query4,
            ),
        ),
        case(
            "IPv4 fragment: More Fragments set",
            "drop_fragment",
            edit_ipv4(valid4.clone(), |p| p[6] = 0x20),
        ),
        case(
            "IPv4 fragment: offset 8",
            "drop_fragment",
            edit_ipv4(valid4.clone(), |p| set_u16(p, 6, 1)),
        ),
        case(
            "IPv4 UDP to a joined group without a listener",
            "udp_drop_no_listener",
            ipv4_raw(&[], 1, PROTO_UDP, G4, &udp),
        ),
        // ---- IGMP ----
        case(
            "IGMP cut to 4 bytes",
            "drop_igmp_too_short",
            ipv4(ALL_SYSTEMS4, &query4[..4]),
        ),
        case("IGMP checksum wrong", "drop_igmp_bad_checksum", {
            let mut q = query4.clone();
            q[2] ^= 0x5a;
            ipv4(ALL_SYSTEMS4, &q)
        }),
    ];
    for len in 9..=11 {
        let mut q = query4.clone();
        q.resize(len, 0);
        cases.push(case(
            format!("IGMP query of {len} bytes"),
            "drop_igmp_bad_query_length",
            ipv4(ALL_SYSTEMS4, &fix_igmp_sum(q)),
        ));
    }
    cases.extend([
        case(
            "IGMP type 0x55 (unknown)",
            "drop_igmp_unknown_type",
            ipv4(ALL_SYSTEMS4, &fix_igmp_sum(vec![0x55, 0, 0, 0, 0, 0, 0, 0])),
        ),
        case(
            "IGMPv3 query: 3 sources claimed, 1 present",
            "drop_igmp_bad_count",
            ipv4(G4, &{
                let mut q = v3_query4(G4, vec![SOURCE4]).to_bytes();
                set_u16(&mut q, 10, 3);
                fix_igmp_sum(q)
            }),
        ),
        case(
            "IGMPv3 report: 2 records claimed, 1 present",
            "drop_igmp_bad_count",
            ipv4(V3_ROUTERS4, &{
                let mut r = v3_report4.clone();
                set_u16(&mut r, 6, 2);
                fix_igmp_sum(r)
            }),
        ),
        case(
            "IGMPv3 report: record claims 5 sources, has 1",
            "drop_igmp_bad_count",
            ipv4(V3_ROUTERS4, &{
                let mut r = v3_report4.clone();
                set_u16(&mut r, 8 + 2, 5);
                fix_igmp_sum(r)
            }),
        ),
        case(
            "IGMPv3 report: record's aux data runs past the end",
            "drop_igmp_bad_count",
            ipv4(V3_ROUTERS4, &{
                let mut r = v3_report4.clone();
                r[8 + 1] = 4;
                fix_igmp_sum(r)
            }),
        ),
        // To a unicast address that is not the daemon's: one to its own is a query it must
        // answer (RFC 9776 §4.1.12, RFC 9777 §5.1.15).
        case(
            "IGMPv2 general query to unicast 10.99.0.9 (not ours)",
            "drop_igmp_query_bad_destination",
            ipv4(SOURCE4, &query4),
        ),
        case(
            "IGMPv1 query to unicast 10.99.0.9 (not ours)",
            "drop_igmp_query_bad_destination",
            ipv4(
                SOURCE4,
                &IgmpRepr::Query {
                    max_resp_code: 0,
                    group: Ipv4Addr::UNSPECIFIED,
                }
                .to_bytes(),
            ),
        ),
        case(
            "IGMPv2 query for 239.1.2.3 sent to 239.9.9.9",
            "drop_igmp_query_bad_destination",
            ipv4(
                OTHER4,
                &IgmpRepr::Query {
                    max_resp_code: 10,
                    group: G4,
                }
                .to_bytes(),
            ),
        ),
        case(
            "IGMPv2 query for non-multicast 10.1.2.3",
            "drop_igmp_query_bad_group",
            ipv4(
                ALL_SYSTEMS4,
                &IgmpRepr::Query {
                    max_resp_code: 10,
                    group: UNICAST4,
                }
                .to_bytes(),
            ),
        ),
        case(
            "IGMPv3 general query listing a source",
            "drop_igmp_general_query_with_sources",
            ipv4(
                ALL_SYSTEMS4,
                &v3_query4(Ipv4Addr::UNSPECIFIED, vec![SOURCE4]).to_bytes(),
            ),
        ),
        case(
            "IGMPv2 report for 239.1.2.3 sent to 239.9.9.9",
            "drop_igmp_report_group_mismatch",
            ipv4(OTHER4, &IgmpRepr::ReportV2 { group: G4 }.to_bytes()),
        ),
        case(
            "IGMPv1 report for 239.4.5.6 sent to 224.0.0.1",
            "drop_igmp_report_group_mismatch",
            ipv4(ALL_SYSTEMS4, &IgmpRepr::ReportV1 { group: G4B }.to_bytes()),
        ),
        case(
            "IGMPv2 report for non-multicast 10.1.2.3",
            "drop_igmp_report_bad_group",
            ipv4(UNICAST4, &IgmpRepr::ReportV2 { group: UNICAST4 }.to_bytes()),
        ),
        // ---- IPv6 header and extension headers ----
        case(
            "IPv6 header cut at 30 bytes",
            "drop_ipv6_truncated",
            valid6[..30].to_vec(),
        ),
        case(
            "IPv6 payload length 8 bytes past the packet",
            "drop_ipv6_bad_payload_length",
            {
                let mut p = valid6.clone();
                set_u16(&mut p, 4, 40);
                p
            },
        ),
        case(
            "IPv6 hop-by-hop header cut to 4 bytes",
            "drop_ipv6_bad_extension",
            ipv6_raw(KERNEL6, ALL_SYSTEMS6, 1, NH_HOP_BY_HOP, &HBH_RA[..4]),
        ),
        case(
            "IPv6 hop-by-hop claims 88 bytes, 32 present",
            "drop_ipv6_bad_extension",
            ipv6_raw(
                KERNEL6,
                ALL_SYSTEMS6,
                1,
                NH_HOP_BY_HOP,
                &cat(&[&[NH_ICMPV6, 10, 5, 2, 0, 0, 1, 0], &query6]),
            ),
        ),
        case(
            "IPv6 destination options claim 48 bytes, 24 present",
            "drop_ipv6_bad_extension",
            ipv6_raw(
                KERNEL6,
                ALL_SYSTEMS6,
                1,
                NH_HOP_BY_HOP,
                &cat(&[
                    &[NH_DEST_OPTS, 0, 5, 2, 0, 0, 1, 0],
                    &[NH_ICMPV6, 5, 1, 4, 0, 0, 0, 0],
                    &query6[..16],
                ]),
            ),
        ),
        case(
            "IPv6 Router Alert option data runs past its header",
            "drop_ipv6_bad_extension",
            ipv6_raw(
                KERNEL6,
                ALL_SYSTEMS6,
                1,
                NH_HOP_BY_HOP,
                &cat(&[&[NH_ICMPV6, 0, 5, 8, 0, 0, 1, 0], &query6]),
            ),
        ),
        case(
            "IPv6 Router Alert option of 4 bytes",
            "drop_ipv6_bad_extension",
            ipv6_raw(
                KERNEL6,
                ALL_SYSTEMS6,
                1,
                NH_HOP_BY_HOP,
                &cat(&[&[NH_ICMPV6, 0, 5, 4, 0, 0, 0, 0], &query6]),
            ),
        ),
        case(
            "IPv6 hop-by-hop after destination options (not first)",
            "drop_ipv6_bad_extension",
            ipv6_raw(
                KERNEL6,
                ALL_SYSTEMS6,
                1,
                NH_DEST_OPTS,
                &cat(&[&[NH_HOP_BY_HOP, 0, 1, 4, 0, 0, 0, 0], &HBH_RA, &query6]),
            ),
        ),
        case(
            "IPv6 fragment header before MLD",
            "drop_fragment",
            ipv6_raw(
                KERNEL6,
                ALL_SYSTEMS6,
                1,
                NH_HOP_BY_HOP,
                &cat(&[
                    &[NH_FRAGMENT, 0, 5, 2, 0, 0, 1, 0],
                    &[NH_ICMPV6, 0, 0, 1, 0, 0, 0, 7],
                    &query6,
                ]),
            ),
        ),
        case(
            "IPv6 UDP with a zero checksum (RFC 8200 §8.1: not allowed over IPv6)",
            "udp_drop_bad_checksum",
            ipv6_raw(KERNEL6, G6, 1, PROTO_UDP, &udp),
        ),
        // No MLD type: the daemon files it as other ICMPv6 (drop_mld_unknown_type is not
        // reachable through classify, which only hands the four MLD types to the MLD code).
        case(
            "ICMPv6 type 200 behind Router Alert (unknown MLD type)",
            "drop_other_ipv6",
            build_ipv6(KERNEL6, ALL_SYSTEMS6, &{
                let mut m = query6.clone();
                m[0] = 200;
                fix_mld_sum(KERNEL6, ALL_SYSTEMS6, m)
            }),
        ),
        // ---- MLD ----
        case(
            "MLD cut to 4 bytes",
            "drop_mld_too_short",
            build_ipv6(KERNEL6, ALL_SYSTEMS6, &query6[..4]),
        ),
        case(
            "MLD query cut to 20 bytes",
            "drop_mld_too_short",
            build_ipv6(
                KERNEL6,
                ALL_SYSTEMS6,
                &fix_mld_sum(KERNEL6, ALL_SYSTEMS6, query6[..20].to_vec()),
            ),
        ),
        case("ICMPv6 checksum wrong", "drop_mld_bad_checksum", {
            let mut m = query6.clone();
            m[2] ^= 0x5a;
            build_ipv6(KERNEL6, ALL_SYSTEMS6, &m)
        }),
        case(
            "MLD query of 26 bytes",
            "drop_mld_bad_query_length",
            build_ipv6(KERNEL6, ALL_SYSTEMS6, &{
                let mut m = query6.clone();
                m.resize(26, 0);
                fix_mld_sum(KERNEL6, ALL_SYSTEMS6, m)
            }),
        ),
        case(
            "MLDv2 query: 3 sources claimed, 1 present",
            "drop_mld_bad_count",
            build_ipv6(KERNEL6, G6, &{
                let mut m = v3_query6(G6, vec![SOURCE6]).to_bytes(&KERNEL6, &G6);
                set_u16(&mut m, 26, 3);
                fix_mld_sum(KERNEL6, G6, m)
            }),
        ),
        case(
            "MLDv2 report: 2 records claimed, 1 present",
            "drop_mld_bad_count",
            build_ipv6(KERNEL6, V2_ROUTERS6, &{
                let mut m = v2_report6.clone();
                set_u16(&mut m, 6, 2);
                fix_mld_sum(KERNEL6, V2_ROUTERS6, m)
            }),
        ),
        case(
            "MLDv2 report: record claims 4 sources, has 0",
            "drop_mld_bad_count",
            build_ipv6(KERNEL6, V2_ROUTERS6, &{
                let mut m = v2_report6.clone();
                set_u16(&mut m, 8 + 2, 4);
                fix_mld_sum(KERNEL6, V2_ROUTERS6, m)
            }),
        ),
        case(
            "MLD query from global 2001:db8::1",
            "drop_mld_source_not_link_local",
            mld(GLOBAL6, ALL_SYSTEMS6, &mld_query(Ipv6Addr::UNSPECIFIED)),
        ),
        case(
            "MLD query from ::",
            "drop_mld_source_not_link_local",
            mld(
                Ipv6Addr::UNSPECIFIED,
                ALL_SYSTEMS6,
                &mld_query(Ipv6Addr::UNSPECIFIED),
            ),
        ),
        case(
            "MLD without hop-by-hop header (no Router Alert)",
            "drop_mld_no_router_alert",
            ipv6_raw(KERNEL6, ALL_SYSTEMS6, 1, NH_ICMPV6, &query6),
        ),
        case(
            "MLD hop-by-hop with PadN only (no Router Alert)",
            "drop_mld_no_router_alert",
            ipv6_raw(
                KERNEL6,
                ALL_SYSTEMS6,
                1,
                NH_HOP_BY_HOP,
                &cat(&[&[NH_ICMPV6, 0, 1, 4, 0, 0, 0, 0], &query6]),
            ),
        ),
        case(
            "MLD Router Alert value 1 (not MLD)",
            "drop_mld_no_router_alert",
            ipv6_raw(
                KERNEL6,
                ALL_SYSTEMS6,
                1,
                NH_HOP_BY_HOP,
                &cat(&[&[NH_ICMPV6, 0, 5, 2, 0, 1, 1, 0], &query6]),
            ),
        ),
        case("MLD hop limit 255", "drop_mld_bad_hop_limit", {
            let mut p = valid6.clone();
            p[7] = 255;
            p
        }),
        case(
            "MLDv1 query to unicast fe80::9 (not ours)",
            "drop_mld_query_bad_destination",
            mld(KERNEL6, SOURCE6, &mld_query(Ipv6Addr::UNSPECIFIED)),
        ),
        case(
            "MLDv1 query for ff12::1234 sent to ff12::9999",
            "drop_mld_query_bad_destination",
            mld(KERNEL6, OTHER6, &mld_query(G6)),
        ),
        case(
            "MLDv1 query for non-multicast 2001:db8::1",
            "drop_mld_query_bad_group",
            mld(KERNEL6, ALL_SYSTEMS6, &mld_query(GLOBAL6)),
        ),
        case(
            "MLDv2 general query listing a source",
            "drop_mld_general_query_with_sources",
            mld(
                KERNEL6,
                ALL_SYSTEMS6,
                &v3_query6(Ipv6Addr::UNSPECIFIED, vec![SOURCE6]),
            ),
        ),
        case(
            "MLD report for ff12::1234 sent to ff12::9999",
            "drop_mld_report_group_mismatch",
            mld(KERNEL6, OTHER6, &MldRepr::Report { group: G6 }),
        ),
        case(
            "MLD report for unicast fe80::9",
            "drop_mld_report_bad_group",
            mld(KERNEL6, SOURCE6, &MldRepr::Report { group: SOURCE6 }),
        ),
    ]);
    cases
}
