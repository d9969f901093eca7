//! Real packets from tests/vectors (LINKTYPE_RAW pcaps): every IGMP and MLD packet must
//! classify and parse to what tshark shows, re-emit to the same message bytes, and — where
//! the sender shaped its IP header as we do — rebuild to the same whole IP packet.

use std::net::{Ipv4Addr, Ipv6Addr};

mod common;

use common::vector_packets as capture;
use membership::wire::igmp::IgmpRepr;
use membership::wire::internet_checksum;
use membership::wire::ip::{build_ipv4, build_ipv6, classify, Classified, OtherKind};
use membership::wire::mld::MldRepr;
use membership::wire::{GroupRecord, RecordType};

/// What tshark shows for a frame.
#[derive(Debug)]
enum Expect {
    Igmp(IgmpRepr),
    Mld(MldRepr),
    /// Non-MLD ICMPv6 (the kernel's Router Solicitations).
    Icmpv6(u8),
}

const TO_IN: RecordType = RecordType::ChangeToInclude;
const TO_EX: RecordType = RecordType::ChangeToExclude;
const ALLOW: RecordType = RecordType::AllowNewSources;
const BLOCK: RecordType = RecordType::BlockOldSources;

type Record<'a> = (RecordType, &'a str, &'a [&'a str]);

fn v4(text: &str) -> Ipv4Addr {
    text.parse().unwrap()
}

fn v6(text: &str) -> Ipv6Addr {
    text.parse().unwrap()
}

fn records<A>(records: &[Record], parse: fn(&str) -> A) -> Vec<GroupRecord<A>> {
    records
        .iter()
        .map(|(kind, group, sources)| GroupRecord {
            kind: *kind,
            group: parse(group),
            sources: sources.iter().map(|source| parse(source)).collect(),
            aux_data: vec![],
        })
        .collect()
}

fn igmp_query(max_resp_code: u8, group: &str) -> Expect {
    Expect::Igmp(IgmpRepr::Query {
        max_resp_code,
        group: v4(group),
    })
}

fn igmp_query_v3(
    max_resp_code: u8,
    group: &str,
    suppress_router: bool,
    qrv: u8,
    qqic: u8,
    sources: &[&str],
) -> Expect {
    Expect::Igmp(IgmpRepr::QueryV3 {
        max_resp_code,
        group: v4(group),
        suppress_router,
        qrv,
        qqic,
        sources: sources.iter().map(|source| v4(source)).collect(),
    })
}

fn igmp_report_v1(group: &str) -> Expect {
    Expect::Igmp(IgmpRepr::ReportV1 { group: v4(group) })
}

fn igmp_report_v2(group: &str) -> Expect {
    Expect::Igmp(IgmpRepr::ReportV2 { group: v4(group) })
}

fn igmp_leave(group: &str) -> Expect {
    Expect::Igmp(IgmpRepr::Leave { group: v4(group) })
}

fn igmp_report_v3(list: &[Record]) -> Expect {
    Expect::Igmp(IgmpRepr::ReportV3 {
        records: records(list, v4),
    })
}

fn mld_query(max_resp_delay: u16, group: &str) -> Expect {
    Expect::Mld(MldRepr::Query {
        max_resp_delay,
        group: v6(group),
    })
}

fn mld_query_v2(
    max_resp_code: u16,
    group: &str,
    suppress_router: bool,
    qrv: u8,
    qqic: u8,
    sources: &[&str],
) -> Expect {
    Expect::Mld(MldRepr::QueryV2 {
        max_resp_code,
        group: v6(group),
        suppress_router,
        qrv,
        qqic,
        sources: sources.iter().map(|source| v6(source)).collect(),
    })
}

fn mld_report(group: &str) -> Expect {
    Expect::Mld(MldRepr::Report { group: v6(group) })
}

fn mld_done(group: &str) -> Expect {
    Expect::Mld(MldRepr::Done { group: v6(group) })
}

fn mld_report_v2(list: &[Record]) -> Expect {
    Expect::Mld(MldRepr::ReportV2 {
        records: records(list, v6),
    })
}

fn other_icmpv6(kind: u8) -> Expect {
    Expect::Icmpv6(kind)
}

/// How the IPv4 header of a capture relates to what `build_ipv4` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ipv4Shape {
    /// Every IGMP packet is byte-identical to ours (the Linux kernel: ID 0, DF).
    Kernel,
    /// Packets with ID 0 and DF are identical; others differ only in ID and flags.
    Mixed,
}

/// Checks every frame of a capture against `table` (frame number, tshark's reading).
/// Returns how many whole IP packets were rebuilt byte for byte.
fn check_capture(name: &str, table: &[(usize, Expect)], shape: Ipv4Shape) -> usize {
    let packets = capture(name);
    assert_eq!(
        packets.len(),
        table.len(),
        "{name}: frames in capture vs table"
    );
    let mut identical = 0;
    for (frame, expect) in table {
        let packet = &packets[frame - 1];
        let context = format!("{name} frame {frame}");
        let classified = classify(packet).unwrap_or_else(|error| panic!("{context}: {error}"));
        match (classified, expect) {
            (Classified::Igmp { meta, payload }, Expect::Igmp(expected)) => {
                assert_eq!(meta.ttl, 1, "{context}");
                assert!(meta.router_alert, "{context}: router alert");
                let repr = IgmpRepr::parse(payload).unwrap_or_else(|e| panic!("{context}: {e}"));
                assert_eq!(&repr, expected, "{context}");
                let emitted = repr.to_bytes();
                assert_eq!(emitted, payload, "{context}: re-emitted IGMP message");

                let mut rebuilt = build_ipv4(meta.src, meta.dst, &emitted);
                let kernel_shaped = packet[4..8] == [0, 0, 0x40, 0];
                if shape == Ipv4Shape::Kernel {
                    assert!(kernel_shaped, "{context}: not shaped like the kernel's");
                }
                if !kernel_shaped {
                    // Another sender's ID and flags; everything else must still match.
                    rebuilt[4..8].copy_from_slice(&packet[4..8]);
                    rebuilt[10..12].fill(0);
                    let checksum = internet_checksum(&rebuilt[..24]);
                    rebuilt[10..12].copy_from_slice(&checksum.to_be_bytes());
                }
                assert_eq!(&rebuilt, packet, "{context}: rebuilt IP packet");
                identical += usize::from(kernel_shaped);
            }
            (Classified::Mld { meta, payload }, Expect::Mld(expected)) => {
                assert_eq!(meta.hop_limit, 1, "{context}");
                assert!(meta.router_alert, "{context}: router alert");
                let repr = MldRepr::parse(payload, &meta.src, &meta.dst)
                    .unwrap_or_else(|e| panic!("{context}: {e}"));
                assert_eq!(&repr, expected, "{context}");
                let emitted = repr.to_bytes(&meta.src, &meta.dst);
                assert_eq!(emitted, payload, "{context}: re-emitted MLD message");
                let rebuilt = build_ipv6(meta.src, meta.dst, &emitted);
                assert_eq!(&rebuilt, packet, "{context}: rebuilt IP packet");
                identical += 1;
            }
            (Classified::Other(OtherKind::Icmpv6(kind)), Expect::Icmpv6(expected)) => {
                assert_eq!(kind, *expected, "{context}");
            }
            (classified, expect) => panic!("{context}: got {classified:?}, expected {expect:?}"),
        }
    }
    identical
}

#[test]
fn kernel_host() {
    // Transcribed from `tshark -r kernel-host.pcap -T json`.
    let table = [
        (1, mld_report("ff12::1111")),
        (2, igmp_report_v1("239.1.1.1")),
        (3, mld_done("ff12::1111")),
        (4, mld_report("ff12::1112")),
        (5, igmp_report_v2("239.1.1.2")),
        (6, igmp_report_v2("239.1.1.2")),
        (7, igmp_leave("239.1.1.2")),
        (8, mld_done("ff12::1112")),
        (9, other_icmpv6(133)),
        (10, igmp_report_v3(&[(TO_EX, "239.1.1.3", &[])])),
        (11, mld_report_v2(&[(TO_EX, "ff12::1113", &[])])),
        (12, mld_report_v2(&[(TO_EX, "ff12::1113", &[])])),
        (13, igmp_report_v3(&[(TO_EX, "239.1.1.3", &[])])),
        (14, igmp_report_v3(&[(TO_IN, "239.1.1.3", &[])])),
        (15, mld_report_v2(&[(TO_IN, "ff12::1113", &[])])),
        (16, igmp_report_v3(&[(TO_IN, "239.1.1.3", &[])])),
        (17, mld_report_v2(&[(TO_IN, "ff12::1113", &[])])),
        (18, igmp_report_v3(&[(ALLOW, "232.1.1.1", &["10.99.0.77"])])),
        (19, mld_report_v2(&[(ALLOW, "ff35::1", &["2001:db8::77"])])),
        (20, mld_report_v2(&[(ALLOW, "ff35::1", &["2001:db8::77"])])),
        (21, igmp_report_v3(&[(ALLOW, "232.1.1.1", &["10.99.0.77"])])),
        (22, other_icmpv6(133)),
        (23, igmp_report_v3(&[(BLOCK, "232.1.1.1", &["10.99.0.77"])])),
        (24, mld_report_v2(&[(BLOCK, "ff35::1", &["2001:db8::77"])])),
        (25, mld_report_v2(&[(BLOCK, "ff35::1", &["2001:db8::77"])])),
        (26, igmp_report_v3(&[(BLOCK, "232.1.1.1", &["10.99.0.77"])])),
        (
            27,
            igmp_report_v3(&[(TO_EX, "239.1.1.5", &[]), (TO_EX, "239.1.1.4", &[])]),
        ),
        (28, mld_report_v2(&[(TO_EX, "ff12::1114", &[])])),
        (
            29,
            igmp_report_v3(&[(TO_EX, "239.1.1.5", &[]), (TO_EX, "239.1.1.4", &[])]),
        ),
        (30, mld_report_v2(&[(TO_EX, "ff12::1114", &[])])),
        (31, igmp_report_v3(&[(ALLOW, "232.1.1.2", &["10.99.0.78"])])),
        (32, igmp_report_v3(&[(ALLOW, "232.1.1.2", &["10.99.0.78"])])),
        (33, igmp_report_v3(&[(BLOCK, "232.1.1.2", &["10.99.0.78"])])),
        // The retransmission that merged a pending BLOCK with two leaves.
        (
            34,
            igmp_report_v3(&[
                (TO_IN, "239.1.1.5", &[]),
                (TO_IN, "239.1.1.4", &[]),
                (BLOCK, "232.1.1.2", &["10.99.0.78"]),
            ]),
        ),
        (35, mld_report_v2(&[(TO_IN, "ff12::1114", &[])])),
        (36, mld_report_v2(&[(TO_IN, "ff12::1114", &[])])),
        (
            37,
            igmp_report_v3(&[(TO_IN, "239.1.1.5", &[]), (TO_IN, "239.1.1.4", &[])]),
        ),
        (38, other_icmpv6(133)),
    ];
    let identical = check_capture("kernel-host.pcap", &table, Ipv4Shape::Kernel);
    assert_eq!(
        identical, 35,
        "every IGMP and MLD packet rebuilt byte for byte"
    );
}

#[test]
fn frr_querier() {
    // Transcribed from `tshark -r frr-querier.pcap -T json`. Queries come from pimd (IPv4
    // ID counting, DF), reports from the namespace's kernel.
    let table = [
        (
            1,
            igmp_report_v3(&[(TO_EX, "224.0.0.22", &[]), (TO_EX, "224.0.0.2", &[])]),
        ),
        (
            2,
            igmp_report_v3(&[(TO_EX, "224.0.0.22", &[]), (TO_EX, "224.0.0.2", &[])]),
        ),
        (3, igmp_query(10, "0.0.0.0")),
        (4, igmp_report_v2("224.0.0.22")),
        (5, igmp_report_v2("224.0.0.2")),
        (6, igmp_query(10, "0.0.0.0")),
        (7, other_icmpv6(133)),
        (8, igmp_report_v2("224.0.0.2")),
        (9, igmp_report_v2("224.0.0.22")),
        (10, igmp_query(10, "0.0.0.0")),
        (11, igmp_report_v2("224.0.0.2")),
        (12, igmp_report_v2("224.0.0.22")),
        (13, igmp_query(10, "239.5.5.5")),
        (14, other_icmpv6(133)),
        (15, igmp_query(10, "239.5.5.5")),
        (16, igmp_query(10, "0.0.0.0")),
        (17, igmp_report_v2("224.0.0.22")),
        (18, igmp_report_v2("224.0.0.2")),
        (19, igmp_query_v3(10, "0.0.0.0", true, 2, 5, &[])),
        (20, igmp_report_v2("224.0.0.2")),
        (21, igmp_report_v2("224.0.0.22")),
        (22, igmp_query_v3(10, "0.0.0.0", true, 2, 5, &[])),
        (23, igmp_report_v2("224.0.0.22")),
        (
            24,
            igmp_query_v3(10, "232.1.1.1", false, 2, 5, &["10.99.0.78"]),
        ),
        (25, igmp_report_v2("224.0.0.2")),
        (
            26,
            igmp_query_v3(10, "232.1.1.1", false, 2, 5, &["10.99.0.78"]),
        ),
        (27, other_icmpv6(133)),
        (28, igmp_query_v3(10, "0.0.0.0", true, 2, 5, &[])),
        (29, igmp_report_v2("224.0.0.2")),
        (30, igmp_report_v2("224.0.0.22")),
        (31, igmp_query_v3(10, "239.6.6.6", false, 2, 5, &[])),
        (32, igmp_query_v3(10, "239.6.6.6", false, 2, 5, &[])),
        (33, igmp_query_v3(10, "0.0.0.0", true, 2, 5, &[])),
        (34, igmp_report_v2("224.0.0.2")),
        (35, igmp_report_v2("224.0.0.22")),
        (36, igmp_leave("224.0.0.22")),
        (37, igmp_leave("224.0.0.2")),
    ];
    let identical = check_capture("frr-querier.pcap", &table, Ipv4Shape::Mixed);
    assert_eq!(
        identical, 20,
        "the kernel's reports and leaves byte for byte"
    );
}

#[test]
fn scapy_crafted() {
    // Transcribed from `tshark -r scapy-crafted.pcap -T json`. scapy sets IPv4 ID 1 and
    // no DF; its IPv6 packets have exactly our shape.
    let table = [
        (1, igmp_query(100, "0.0.0.0")),
        (2, igmp_report_v2("239.1.2.3")),
        (3, igmp_leave("239.1.2.3")),
        (4, igmp_query_v3(20, "0.0.0.0", false, 2, 125, &[])),
        (5, igmp_report_v3(&[(TO_EX, "239.1.2.3", &[])])),
        (6, mld_query(1000, "::")),
        (7, mld_report("ff12::1234")),
        (8, mld_done("ff12::1234")),
        (9, mld_query_v2(1000, "::", false, 2, 125, &[])),
        (10, mld_report_v2(&[(TO_EX, "ff12::1234", &[])])),
    ];
    let identical = check_capture("scapy-crafted.pcap", &table, Ipv4Shape::Mixed);
    assert_eq!(identical, 5, "the MLD packets byte for byte");
}

/// The kernel's IGMPv2 report, rebuilt from nothing but the group and source.
#[test]
fn our_igmpv2_report_is_the_kernels() {
    let packets = capture("kernel-host.pcap");
    let kernel = &packets[4];
    let group = Ipv4Addr::new(239, 1, 1, 2);
    let ours = build_ipv4(
        Ipv4Addr::new(10, 99, 0, 1),
        group,
        &IgmpRepr::ReportV2 { group }.to_bytes(),
    );
    assert_eq!(&ours, kernel);
}
