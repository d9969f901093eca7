//! The Host in virtual time: joins, leaves, queries, suppression, router versions, validation,
//! byte-exact output, and a simulated link with one querier and three hosts.

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use membership::wire::igmp::IgmpRepr;
use membership::wire::ip::{build_ipv4, build_ipv6, classify, Classified};
use membership::wire::mld::MldRepr;
use membership::wire::{GroupRecord, RecordType};
use membership::{
    Config, DropReason, GroupInfo, Host, IgmpVersion, Instant, InterfaceConfig, Message, Transmit,
};

const IF: u32 = 1;
const ME4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
const ME6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);
const ROUTER4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const ROUTER6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
const ALL_HOSTS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 1);
const ALL_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 2);
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ALL_ROUTERS6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn g4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse().unwrap())
}

fn g6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse().unwrap())
}

fn host_with(config: Config, seed: u64, v4: Ipv4Addr, v6: Ipv6Addr) -> Host {
    let mut host = Host::new(config, seed);
    host.add_interface(
        IF,
        InterfaceConfig {
            ipv4: Some(v4),
            ipv6_link_local: Some(v6),
            ..InterfaceConfig::default()
        },
    )
    .unwrap();
    host
}

fn host() -> Host {
    host_with(Config::v2(), 7, ME4, ME6)
}

/// Runs the host's timers up to and including `until`; returns what it sent and when.
fn run(host: &mut Host, until: u64) -> Vec<(u64, Transmit)> {
    let mut sent = Vec::new();
    while let Some(at) = host.next_deadline() {
        if at.as_millis() > until {
            break;
        }
        host.poll(at, |tx| sent.push((at.as_millis(), tx)));
    }
    host.poll(t(until), |tx| sent.push((until, tx)));
    sent
}

/// What the host sends right now (joins, leaves, immediate answers).
fn now_sent(host: &mut Host, now: u64) -> Vec<Transmit> {
    let mut sent = Vec::new();
    host.poll(t(now), |tx| sent.push(tx));
    sent
}

fn igmp_packet(src: Ipv4Addr, dst: Ipv4Addr, repr: &IgmpRepr) -> Vec<u8> {
    build_ipv4(src, dst, &repr.to_bytes())
}

fn mld_packet(src: Ipv6Addr, dst: Ipv6Addr, repr: &MldRepr) -> Vec<u8> {
    let mut body = vec![0; repr.buffer_len()];
    repr.emit(&src, &dst, &mut body);
    build_ipv6(src, dst, &body)
}

fn v2_query(group: Ipv4Addr, dst: Ipv4Addr, tenths: u8) -> Vec<u8> {
    igmp_packet(
        ROUTER4,
        dst,
        &IgmpRepr::Query {
            max_resp_code: tenths,
            group,
        },
    )
}

fn v1_query() -> Vec<u8> {
    igmp_packet(
        ROUTER4,
        ALL_HOSTS,
        &IgmpRepr::Query {
            max_resp_code: 0,
            group: Ipv4Addr::UNSPECIFIED,
        },
    )
}

fn mld_query(group: Ipv6Addr, dst: Ipv6Addr, ms: u16) -> Vec<u8> {
    mld_packet(
        ROUTER6,
        dst,
        &MldRepr::Query {
            max_resp_delay: ms,
            group,
        },
    )
}

fn kinds(sent: &[(u64, Transmit)]) -> Vec<(IpAddr, String)> {
    sent.iter().map(|(_, tx)| (tx.dst, kind(tx))).collect()
}

fn kind(tx: &Transmit) -> String {
    match &tx.message {
        Message::Igmp(IgmpRepr::ReportV1 { group }) => format!("v1-report {group}"),
        Message::Igmp(IgmpRepr::ReportV2 { group }) => format!("v2-report {group}"),
        Message::Igmp(IgmpRepr::Leave { group }) => format!("leave {group}"),
        Message::Mld(MldRepr::Report { group }) => format!("mld-report {group}"),
        Message::Mld(MldRepr::Done { group }) => format!("done {group}"),
        other => format!("{other:?}"),
    }
}

fn group<'a>(groups: &'a [GroupInfo], g: &str) -> &'a GroupInfo {
    let addr: IpAddr = g.parse().unwrap();
    groups
        .iter()
        .find(|i| i.group == addr)
        .unwrap_or_else(|| panic!("{g} not listed"))
}

// ---------------------------------------------------------------------------------------------
// Byte-exact output.

use common::{hex, vector_packets};

fn with_ipv4_checksum(mut packet: Vec<u8>) -> Vec<u8> {
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    packet[10] = 0;
    packet[11] = 0;
    let sum = membership::wire::internet_checksum(&packet[..ihl]);
    packet[10..12].copy_from_slice(&sum.to_be_bytes());
    packet
}

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The Linux kernel's own IGMPv2 report for 239.1.2.4 from 10.99.0.1 (TOS 0xc0, DF, TTL 1,
/// Router Alert), header checksum filled in; our join must produce exactly these bytes.
#[test]
fn join_report_matches_the_kernel_bytes() {
    let mut host = host_with(Config::v2(), 1, ROUTER4, ROUTER6);
    host.join(IF, g4("239.1.2.4"), t(0)).unwrap();
    let sent = now_sent(&mut host, 0);
    assert_eq!(sent.len(), 1);
    let kernel = with_ipv4_checksum(unhex(
        "46c00020 00004000 01020000 0a630001 ef010204 94040000 1600f8f9 ef010204",
    ));
    assert_eq!(hex(&sent[0].to_packet()), hex(&kernel));

    // And the Leave, which the kernel sends to 224.0.0.2 (type 0x17).
    run(&mut host, 60_000);
    host.leave(IF, g4("239.1.2.4"), t(60_000)).unwrap();
    let sent = now_sent(&mut host, 60_000);
    let kernel_leave = with_ipv4_checksum(unhex(
        "46c00020 00004000 01020000 0a630001 e0000002 94040000 1700f7f9 ef010204",
    ));
    assert_eq!(hex(&sent[0].to_packet()), hex(&kernel_leave));
}

/// MLDv1 report and Done for ff12::1111 from fe80::1, against the kernel's packets in
/// tests/vectors/kernel-host.pcap.
#[test]
fn mld_report_and_done_match_the_kernel_bytes() {
    let mut kernel_report = None;
    let mut kernel_done = None;
    let group: Ipv6Addr = "ff12::1111".parse().unwrap();
    for packet in vector_packets("kernel-host.pcap") {
        if let Ok(Classified::Mld { meta, payload }) = classify(&packet) {
            match MldRepr::parse(payload, &meta.src, &meta.dst) {
                Ok(MldRepr::Report { group: g }) if g == group => {
                    kernel_report.get_or_insert(packet.clone());
                }
                Ok(MldRepr::Done { group: g }) if g == group => {
                    kernel_done.get_or_insert(packet.clone());
                }
                _ => {}
            }
        }
    }
    let kernel_report = kernel_report.expect("kernel MLDv1 report for ff12::1111 in the pcap");
    let kernel_done = kernel_done.expect("kernel MLDv1 done for ff12::1111 in the pcap");

    let mut host = host_with(Config::v2(), 1, ROUTER4, ROUTER6);
    host.join(IF, g6("ff12::1111"), t(0)).unwrap();
    let sent = now_sent(&mut host, 0);
    assert_eq!(hex(&sent[0].to_packet()), hex(&kernel_report));
    run(&mut host, 60_000);
    host.leave(IF, g6("ff12::1111"), t(60_000)).unwrap();
    let sent = now_sent(&mut host, 60_000);
    assert_eq!(hex(&sent[0].to_packet()), hex(&kernel_done));
}

// ---------------------------------------------------------------------------------------------
// Join and leave.

#[test]
fn join_reports_at_once_and_repeats_within_the_unsolicited_interval() {
    let mut host = host();
    assert_eq!(host.join(IF, g4("239.1.1.1"), t(0)).unwrap(), 1);
    let first = now_sent(&mut host, 0);
    assert_eq!(first.len(), 1);
    assert_eq!(kind(&first[0]), "v2-report 239.1.1.1");
    assert_eq!(first[0].src, IpAddr::V4(ME4));
    assert_eq!(first[0].dst, g4("239.1.1.1"));
    // TTL 1 and the Router Alert option (RFC 2236 §2).
    let packet = first[0].to_packet();
    assert_eq!((packet[8], &packet[20..24]), (1, &[0x94, 4, 0, 0][..]));

    let repeats = run(&mut host, 100_000);
    assert_eq!(repeats.len(), 1, "robustness 2: one repeat");
    assert!(
        repeats[0].0 <= 10_000,
        "repeat at {} ms, beyond 10 s",
        repeats[0].0
    );
    assert_eq!(kind(&repeats[0].1), "v2-report 239.1.1.1");
    let info = host.groups(t(100_000));
    assert_eq!((info[0].state, info[0].last_reporter), ("idle", true));
}

#[test]
fn robustness_and_interval_are_configurable() {
    let config = Config {
        robustness: 4,
        igmp_unsolicited_interval: Duration::from_secs(1),
        mld_unsolicited_interval: Duration::from_secs(2),
        ..Config::v2()
    };
    let mut host = host_with(config, 3, ME4, ME6);
    host.join(IF, g4("239.1.1.1"), t(0)).unwrap();
    host.join(IF, g6("ff12::1"), t(0)).unwrap();
    assert_eq!(now_sent(&mut host, 0).len(), 2);
    let sent = run(&mut host, 60_000);
    let v4: Vec<u64> = sent
        .iter()
        .filter(|(_, tx)| tx.dst.is_ipv4())
        .map(|(at, _)| *at)
        .collect();
    let v6: Vec<u64> = sent
        .iter()
        .filter(|(_, tx)| tx.dst.is_ipv6())
        .map(|(at, _)| *at)
        .collect();
    assert_eq!((v4.len(), v6.len()), (3, 3));
    assert!(v4.windows(2).all(|w| w[1] - w[0] <= 1000) && v4[0] <= 1000);
    assert!(v6.windows(2).all(|w| w[1] - w[0] <= 2000) && v6[0] <= 2000);
}

#[test]
fn joins_are_counted_and_only_the_last_leave_leaves() {
    let mut host = host();
    assert_eq!(host.join(IF, g4("239.1.1.1"), t(0)).unwrap(), 1);
    assert_eq!(host.join(IF, g4("239.1.1.1"), t(5)).unwrap(), 2);
    assert_eq!(
        now_sent(&mut host, 5).len(),
        1,
        "the second join sends nothing"
    );
    run(&mut host, 30_000);
    assert_eq!(host.leave(IF, g4("239.1.1.1"), t(30_000)).unwrap(), 1);
    assert!(
        now_sent(&mut host, 30_000).is_empty(),
        "one user left: no Leave"
    );
    assert_eq!(host.groups(t(30_000))[0].users, 1);
    assert_eq!(host.leave(IF, g4("239.1.1.1"), t(30_001)).unwrap(), 0);
    let sent = now_sent(&mut host, 30_001);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].dst, kind(&sent[0])),
        (IpAddr::V4(ALL_ROUTERS), "leave 239.1.1.1".into())
    );
    assert!(host.groups(t(30_001)).is_empty());
    assert_eq!(
        host.leave(IF, g4("239.1.1.1"), t(30_002)),
        Err(membership::Error::NotJoined(g4("239.1.1.1")))
    );
    assert_eq!(host.stats().igmp.igmp_snd_leaves, 1);
    assert_eq!(host.stats().igmp.igmp_snd_reports, 2);
}

#[test]
fn leave_during_the_repeats_still_leaves_and_cancels_them() {
    let mut host = host();
    host.join(IF, g4("239.1.1.1"), t(0)).unwrap();
    now_sent(&mut host, 0);
    host.leave(IF, g4("239.1.1.1"), t(1)).unwrap();
    assert_eq!(
        kinds(&run(&mut host, 1)),
        vec![(IpAddr::V4(ALL_ROUTERS), "leave 239.1.1.1".into())]
    );
    assert!(run(&mut host, 100_000).is_empty());
    assert_eq!(host.next_deadline(), None);
}

#[test]
fn mld_join_and_done() {
    let mut host = host();
    host.join(IF, g6("ff12::1234"), t(0)).unwrap();
    let sent = now_sent(&mut host, 0);
    assert_eq!(kind(&sent[0]), "mld-report ff12::1234");
    assert_eq!(
        (sent[0].src, sent[0].dst),
        (IpAddr::V6(ME6), g6("ff12::1234"))
    );
    assert_eq!(run(&mut host, 100_000).len(), 1);
    host.leave(IF, g6("ff12::1234"), t(100_000)).unwrap();
    let sent = now_sent(&mut host, 100_000);
    assert_eq!(
        (sent[0].dst, kind(&sent[0])),
        (IpAddr::V6(ALL_ROUTERS6), "done ff12::1234".into())
    );
    assert_eq!(host.stats().mld.mld_snd_reports, 2);
    assert_eq!(host.stats().mld.mld_snd_dones, 1);
}

#[test]
fn mld_source_is_unspecified_without_a_link_local_address() {
    let mut host = Host::new(Config::v2(), 1);
    host.add_interface(IF, InterfaceConfig::default()).unwrap();
    host.join(IF, g6("ff12::1"), t(0)).unwrap();
    host.join(IF, g4("239.9.9.9"), t(0)).unwrap();
    let sources: Vec<IpAddr> = now_sent(&mut host, 0).iter().map(|tx| tx.src).collect();
    assert_eq!(
        sources,
        [
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        ]
    );
}

#[test]
fn groups_that_are_never_reported() {
    let mut host = host();
    for g in ["224.0.0.1", "224.0.0.5", "224.0.0.251"] {
        host.join(IF, g4(g), t(0)).unwrap();
    }
    for g in ["ff02::1", "ff01::5", "ff00::5", "ff11::7", "ff10::7"] {
        host.join(IF, g6(g), t(0)).unwrap();
    }
    assert!(now_sent(&mut host, 0).is_empty());
    host.handle_packet(IF, &v2_query(Ipv4Addr::UNSPECIFIED, ALL_HOSTS, 10), t(1))
        .unwrap();
    host.handle_packet(IF, &mld_query(Ipv6Addr::UNSPECIFIED, ALL_NODES, 0), t(1))
        .unwrap();
    assert!(run(&mut host, 60_000).is_empty());
    assert!(host.groups(t(60_000)).iter().all(|g| g.state == "silent"));
    for g in ["224.0.0.1", "224.0.0.5", "224.0.0.251"] {
        host.leave(IF, g4(g), t(60_000)).unwrap();
    }
    for g in ["ff02::1", "ff01::5", "ff00::5", "ff11::7", "ff10::7"] {
        host.leave(IF, g6(g), t(60_000)).unwrap();
    }
    assert!(now_sent(&mut host, 60_000).is_empty());

    // Scope 2 and up are reported; 224.0.0.x too when configured (Linux's behaviour).
    host.join(IF, g6("ff02::5"), t(60_000)).unwrap();
    assert_eq!(now_sent(&mut host, 60_000).len(), 1);
    let config = Config {
        report_link_local_groups: true,
        ..Config::v2()
    };
    let mut host = host_with(config, 1, ME4, ME6);
    host.join(IF, g4("224.0.0.251"), t(0)).unwrap();
    host.join(IF, g4("224.0.0.1"), t(0)).unwrap();
    assert_eq!(now_sent(&mut host, 0).len(), 1, "224.0.0.1 never");
}

#[test]
fn join_rejects_what_is_not_a_group() {
    let mut host = host();
    for g in [
        "10.0.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "::",
        "fe80::1",
        "2001:db8::1",
    ] {
        let addr: IpAddr = g.parse().unwrap();
        assert_eq!(
            host.join(IF, addr, t(0)),
            Err(membership::Error::NotMulticast(addr))
        );
    }
    assert_eq!(
        host.join(9, g4("239.1.1.1"), t(0)),
        Err(membership::Error::UnknownInterface(9))
    );
    assert!(host.groups(t(0)).is_empty());
    assert!(now_sent(&mut host, 0).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Queries.

/// A host whose groups are all idle with no timer running.
fn settled(groups: &[&str]) -> Host {
    let mut host = host();
    for g in groups {
        host.join(IF, g.parse().unwrap(), t(0)).unwrap();
    }
    run(&mut host, 20_000);
    assert!(host.groups(t(20_000)).iter().all(|g| g.timer_ms.is_none()));
    host
}

#[test]
fn general_query_gets_one_report_per_group_within_max_resp_time() {
    let mut host = settled(&["239.1.1.1", "239.1.1.2", "239.1.1.3", "ff12::1", "ff12::2"]);
    host.handle_packet(
        IF,
        &v2_query(Ipv4Addr::UNSPECIFIED, ALL_HOSTS, 25),
        t(20_000),
    )
    .unwrap();
    host.handle_packet(
        IF,
        &mld_query(Ipv6Addr::UNSPECIFIED, ALL_NODES, 2500),
        t(20_000),
    )
    .unwrap();
    let sent = run(&mut host, 40_000);
    let mut reported: Vec<String> = sent.iter().map(|(_, tx)| kind(tx)).collect();
    reported.sort();
    assert_eq!(
        reported,
        [
            "mld-report ff12::1",
            "mld-report ff12::2",
            "v2-report 239.1.1.1",
            "v2-report 239.1.1.2",
            "v2-report 239.1.1.3"
        ]
    );
    assert!(sent.iter().all(|(at, _)| (20_000..=22_500).contains(at)));
    assert_eq!(host.stats().igmp.igmp_rcv_queries, 1);
    assert_eq!(host.stats().mld.mld_rcv_queries, 1);
}

#[test]
fn group_specific_query_gets_only_that_group() {
    let mut host = settled(&["239.1.1.1", "239.1.1.2", "ff12::1", "ff12::2"]);
    let g: Ipv4Addr = "239.1.1.2".parse().unwrap();
    host.handle_packet(IF, &v2_query(g, g, 10), t(20_000))
        .unwrap();
    // The Linux bridge sends group-specific queries to 224.0.0.1: accepted too.
    let g6q: Ipv6Addr = "ff12::2".parse().unwrap();
    host.handle_packet(IF, &mld_query(g6q, ALL_NODES, 1000), t(20_000))
        .unwrap();
    let sent = run(&mut host, 40_000);
    let mut reported: Vec<String> = sent.iter().map(|(_, tx)| kind(tx)).collect();
    reported.sort();
    assert_eq!(reported, ["mld-report ff12::2", "v2-report 239.1.1.2"]);
    // A query for a group we are not in changes nothing.
    host.handle_packet(
        IF,
        &v2_query(
            "239.7.7.7".parse().unwrap(),
            "239.7.7.7".parse().unwrap(),
            10,
        ),
        t(40_000),
    )
    .unwrap();
    assert!(run(&mut host, 60_000).is_empty());
}

#[test]
fn a_query_never_lengthens_a_running_timer() {
    let mut host = settled(&["239.1.1.1", "239.1.1.2", "239.1.1.3", "239.1.1.4"]);
    host.handle_packet(
        IF,
        &v2_query(Ipv4Addr::UNSPECIFIED, ALL_HOSTS, 10),
        t(20_000),
    )
    .unwrap();
    let before: Vec<Option<u64>> = host.groups(t(20_000)).iter().map(|g| g.timer_ms).collect();
    assert!(before.iter().all(|t| t.is_some_and(|ms| ms <= 1000)));
    host.handle_packet(
        IF,
        &v2_query(Ipv4Addr::UNSPECIFIED, ALL_HOSTS, 100),
        t(20_000),
    )
    .unwrap();
    let after: Vec<Option<u64>> = host.groups(t(20_000)).iter().map(|g| g.timer_ms).collect();
    assert_eq!(before, after);
    // A shorter one does shorten.
    host.handle_packet(
        IF,
        &v2_query(Ipv4Addr::UNSPECIFIED, ALL_HOSTS, 1),
        t(20_000),
    )
    .unwrap();
    assert!(host
        .groups(t(20_000))
        .iter()
        .all(|g| g.timer_ms.unwrap() <= 100));
}

#[test]
fn a_query_shortens_the_unsolicited_repeat() {
    let mut host = host();
    host.join(IF, g4("239.1.1.1"), t(0)).unwrap();
    now_sent(&mut host, 0);
    let left = host.groups(t(0))[0].timer_ms.unwrap();
    assert!(left > 100, "seeded delay {left} ms");
    host.handle_packet(IF, &v2_query(Ipv4Addr::UNSPECIFIED, ALL_HOSTS, 1), t(0))
        .unwrap();
    let sent = run(&mut host, 100);
    assert_eq!(sent.len(), 1);
}

#[test]
fn mld_query_with_zero_delay_is_answered_at_once() {
    let mut host = settled(&["ff12::1", "ff12::2"]);
    host.handle_packet(
        IF,
        &mld_query(Ipv6Addr::UNSPECIFIED, ALL_NODES, 0),
        t(20_000),
    )
    .unwrap();
    let sent = now_sent(&mut host, 20_000);
    assert_eq!(sent.len(), 2);
    assert!(host
        .groups(t(20_000))
        .iter()
        .all(|g| g.state == "idle" && g.last_reporter));
}

#[test]
fn igmp_v3_query_is_handled_as_v2() {
    let mut host = settled(&["239.1.1.1", "239.1.1.2"]);
    // Max Resp Code 0x8f: floating point, (0xf | 0x10) << 3 = 248 tenths = 24.8 s.
    let q = IgmpRepr::QueryV3 {
        max_resp_code: 0x8f,
        group: Ipv4Addr::UNSPECIFIED,
        suppress_router: true,
        qrv: 2,
        qqic: 125,
        sources: vec![],
    };
    host.handle_packet(IF, &igmp_packet(ROUTER4, ALL_HOSTS, &q), t(20_000))
        .unwrap();
    let max = host
        .groups(t(20_000))
        .iter()
        .map(|g| g.timer_ms.unwrap())
        .max()
        .unwrap();
    assert!(max <= 24_800);
    let sent = run(&mut host, 60_000);
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|(_, tx)| kind(tx).starts_with("v2-report")));
    assert_eq!(
        host.interfaces(t(60_000))[0].igmp_version.number(),
        2,
        "a v3 querier does not make us v1"
    );
    assert_eq!(host.stats().igmp.igmp_rcv_v3_queries, 1);
}

#[test]
fn mldv2_query_is_handled_as_v1() {
    let mut host = settled(&["ff12::1"]);
    let q = MldRepr::QueryV2 {
        max_resp_code: 2000,
        group: Ipv6Addr::UNSPECIFIED,
        suppress_router: false,
        qrv: 2,
        qqic: 125,
        sources: vec![],
    };
    host.handle_packet(IF, &mld_packet(ROUTER6, ALL_NODES, &q), t(20_000))
        .unwrap();
    assert!(host.groups(t(20_000))[0].timer_ms.unwrap() <= 2000);
    assert_eq!(run(&mut host, 30_000).len(), 1);
    assert_eq!(host.stats().mld.mld_rcv_v2_queries, 1);
}

#[test]
fn igmpv1_querier_makes_v1_reports_no_leave_and_ages_out_after_400_s() {
    let mut host = settled(&["239.1.1.1"]);
    host.handle_packet(IF, &v1_query(), t(20_000)).unwrap();
    let iface = &host.interfaces(t(20_000))[0];
    assert_eq!(
        (iface.igmp_version.number(), iface.igmp_v1_querier_ms),
        (1, Some(400_000))
    );
    let sent = run(&mut host, 30_000);
    assert_eq!(
        kinds(&sent),
        vec![(g4("239.1.1.1"), "v1-report 239.1.1.1".into())]
    );
    assert!(sent[0].0 <= 30_000);
    // Joins while v1 is in force report with v1 reports.
    host.join(IF, g4("239.1.1.2"), t(30_000)).unwrap();
    assert_eq!(kind(&now_sent(&mut host, 30_000)[0]), "v1-report 239.1.1.2");
    let repeat = run(&mut host, 40_000);
    assert_eq!(
        kinds(&repeat),
        vec![(g4("239.1.1.2"), "v1-report 239.1.1.2".into())]
    );
    // Leave: no Leave message exists in v1.
    host.leave(IF, g4("239.1.1.1"), t(40_000)).unwrap();
    assert!(now_sent(&mut host, 40_000).is_empty());
    // Still v1 just before 400 s, v2 at 400 s (RFC 2236 §4; the seed says 270 s).
    run(&mut host, 419_999);
    assert_eq!(host.interfaces(t(419_999))[0].igmp_version.number(), 1);
    run(&mut host, 420_000);
    assert_eq!(host.interfaces(t(420_000))[0].igmp_version.number(), 2);
    host.leave(IF, g4("239.1.1.2"), t(420_000)).unwrap();
    assert_eq!(kind(&now_sent(&mut host, 420_000)[0]), "leave 239.1.1.2");
}

#[test]
fn another_v1_query_restarts_the_v1_querier_timer() {
    let mut host = settled(&["239.1.1.1"]);
    host.handle_packet(IF, &v1_query(), t(20_000)).unwrap();
    run(&mut host, 300_000);
    host.handle_packet(IF, &v1_query(), t(300_000)).unwrap();
    run(&mut host, 500_000);
    assert_eq!(host.interfaces(t(500_000))[0].igmp_version.number(), 1);
    run(&mut host, 700_000);
    assert_eq!(host.interfaces(t(700_000))[0].igmp_version.number(), 2);
}

// ---------------------------------------------------------------------------------------------
// Reports from others.

fn other_report(src: Ipv4Addr, group: &str, v1: bool) -> Vec<u8> {
    let g: Ipv4Addr = group.parse().unwrap();
    let repr = if v1 {
        IgmpRepr::ReportV1 { group: g }
    } else {
        IgmpRepr::ReportV2 { group: g }
    };
    igmp_packet(src, g, &repr)
}

#[test]
fn another_hosts_report_suppresses_ours_and_takes_the_leave() {
    let mut host = settled(&["239.1.1.1", "239.1.1.2", "ff12::1"]);
    host.handle_packet(
        IF,
        &v2_query(Ipv4Addr::UNSPECIFIED, ALL_HOSTS, 100),
        t(20_000),
    )
    .unwrap();
    host.handle_packet(
        IF,
        &mld_query(Ipv6Addr::UNSPECIFIED, ALL_NODES, 10_000),
        t(20_000),
    )
    .unwrap();
    host.handle_packet(
        IF,
        &other_report(Ipv4Addr::new(10, 99, 0, 3), "239.1.1.1", false),
        t(20_000),
    )
    .unwrap();
    let other6: Ipv6Addr = "fe80::3".parse().unwrap();
    let g6q: Ipv6Addr = "ff12::1".parse().unwrap();
    host.handle_packet(
        IF,
        &mld_packet(other6, g6q, &MldRepr::Report { group: g6q }),
        t(20_000),
    )
    .unwrap();
    let groups = host.groups(t(20_000));
    assert_eq!(
        (
            group(&groups, "239.1.1.1").state,
            group(&groups, "239.1.1.1").last_reporter
        ),
        ("lazy", false)
    );
    assert!(!group(&groups, "ff12::1").last_reporter);
    assert_eq!(group(&groups, "239.1.1.2").state, "delaying");
    let sent = run(&mut host, 40_000);
    assert_eq!(
        kinds(&sent),
        vec![(g4("239.1.1.2"), "v2-report 239.1.1.2".into())]
    );
    for g in ["239.1.1.1", "239.1.1.2", "ff12::1"] {
        host.leave(IF, g.parse().unwrap(), t(40_000)).unwrap();
    }
    let sent = now_sent(&mut host, 40_000);
    assert_eq!(
        sent.iter().map(kind).collect::<Vec<_>>(),
        ["leave 239.1.1.2"]
    );
    assert_eq!(host.stats().igmp.igmp_rcv_ourreports, 1);
    assert_eq!(host.stats().mld.mld_rcv_ourreports, 1);
}

#[test]
fn v1_report_puts_a_member_to_sleep_and_a_v2_query_only_wakes_it() {
    let mut host = settled(&["239.1.1.1"]);
    host.handle_packet(
        IF,
        &other_report(Ipv4Addr::new(10, 99, 0, 3), "239.1.1.1", true),
        t(20_000),
    )
    .unwrap();
    assert_eq!(host.groups(t(20_000))[0].state, "sleeping");
    host.handle_packet(
        IF,
        &v2_query(Ipv4Addr::UNSPECIFIED, ALL_HOSTS, 10),
        t(21_000),
    )
    .unwrap();
    assert_eq!(host.groups(t(21_000))[0].state, "awakening");
    assert!(run(&mut host, 30_000).is_empty());
    host.handle_packet(
        IF,
        &v2_query(Ipv4Addr::UNSPECIFIED, ALL_HOSTS, 10),
        t(30_000),
    )
    .unwrap();
    assert_eq!(host.groups(t(30_000))[0].state, "delaying");
    assert_eq!(run(&mut host, 31_000).len(), 1);
}

#[test]
fn our_own_report_looped_back_is_ignored() {
    let mut host = settled(&["239.1.1.1", "ff12::1"]);
    let before = host.groups(t(20_000));
    host.handle_packet(IF, &other_report(ME4, "239.1.1.1", false), t(20_000))
        .unwrap();
    let g6q: Ipv6Addr = "ff12::1".parse().unwrap();
    host.handle_packet(
        IF,
        &mld_packet(ME6, g6q, &MldRepr::Report { group: g6q }),
        t(20_000),
    )
    .unwrap();
    assert_eq!(host.groups(t(20_000)), before);
    assert_eq!(host.stats().igmp.igmp_rcv_looped, 1);
    assert_eq!(host.stats().mld.mld_rcv_looped, 1);
}

#[test]
fn v3_reports_and_leaves_from_others_are_counted_and_ignored() {
    let mut host = settled(&["239.1.1.1", "ff12::1"]);
    host.handle_packet(
        IF,
        &v2_query(Ipv4Addr::UNSPECIFIED, ALL_HOSTS, 100),
        t(20_000),
    )
    .unwrap();
    let before = host.groups(t(20_000));
    let v3 = IgmpRepr::ReportV3 {
        records: vec![GroupRecord {
            kind: RecordType::ModeIsExclude,
            group: "239.1.1.1".parse().unwrap(),
            sources: vec![],
            aux_data: vec![],
        }],
    };
    let other = Ipv4Addr::new(10, 99, 0, 3);
    host.handle_packet(
        IF,
        &igmp_packet(other, "224.0.0.22".parse().unwrap(), &v3),
        t(20_000),
    )
    .unwrap();
    let leave = IgmpRepr::Leave {
        group: "239.1.1.1".parse().unwrap(),
    };
    host.handle_packet(IF, &igmp_packet(other, ALL_ROUTERS, &leave), t(20_000))
        .unwrap();
    let v2r = MldRepr::ReportV2 {
        records: vec![GroupRecord {
            kind: RecordType::ChangeToExclude,
            group: "ff12::1".parse().unwrap(),
            sources: vec![],
            aux_data: vec![],
        }],
    };
    host.handle_packet(
        IF,
        &mld_packet(
            "fe80::3".parse().unwrap(),
            "ff02::16".parse().unwrap(),
            &v2r,
        ),
        t(20_000),
    )
    .unwrap();
    assert_eq!(host.groups(t(20_000)), before);
    assert_eq!(host.stats().igmp.igmp_rcv_v3_reports, 1);
    assert_eq!(host.stats().igmp.igmp_rcv_leaves, 1);
    assert_eq!(host.stats().mld.mld_rcv_v2_reports, 1);
}

// ---------------------------------------------------------------------------------------------
// Validation: every rejected message is counted under its reason and changes nothing.

fn corrupt_igmp_checksum(mut p: Vec<u8>) -> Vec<u8> {
    let ihl = usize::from(p[0] & 0x0f) * 4;
    p[ihl + 2] ^= 0x55;
    p
}

/// RFC 2236 / RFC 2710 queries sent to this host's own unicast address (IPv4, IPv6
/// link-local) are accepted and answered like those to all-systems (RFC 9776 §4.1.12, RFC 9777
/// §5.1.15: any address assigned to the interface).
#[test]
fn queries_to_our_own_unicast_address_are_processed() {
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "v2 general query to our IPv4 address",
            v2_query(Ipv4Addr::UNSPECIFIED, ME4, 10),
            vec!["v2-report 239.1.1.1"],
        ),
        (
            "v2 group query to our IPv4 address",
            v2_query("239.1.1.1".parse().unwrap(), ME4, 10),
            vec!["v2-report 239.1.1.1"],
        ),
        (
            "v1 query to our IPv4 address",
            igmp_packet(
                ROUTER4,
                ME4,
                &IgmpRepr::Query {
                    max_resp_code: 0,
                    group: Ipv4Addr::UNSPECIFIED,
                },
            ),
            vec!["v1-report 239.1.1.1"],
        ),
        (
            "MLDv1 general query to our link-local address",
            mld_query(Ipv6Addr::UNSPECIFIED, ME6, 1000),
            vec!["mld-report ff12::1"],
        ),
    ];
    for (name, packet, want) in cases {
        let mut host = settled(&["239.1.1.1", "ff12::1"]);
        assert_eq!(host.handle_packet(IF, &packet, t(20_000)), Ok(()), "{name}");
        assert_eq!(host.stats().total_dropped(), 0, "{name}");
        let sent: Vec<String> = run(&mut host, 60_000)
            .iter()
            .map(|(_, tx)| kind(tx))
            .collect();
        assert_eq!(sent, want, "{name}");
    }
}

#[test]
fn rejected_messages_are_counted_and_change_nothing() {
    let me = "239.1.1.1".parse::<Ipv4Addr>().unwrap();
    let me6 = "ff12::1".parse::<Ipv6Addr>().unwrap();
    let gen6 = Ipv6Addr::UNSPECIFIED;
    let global6: Ipv6Addr = "2001:db8::1".parse().unwrap();
    // A unicast address that is not ours: queries to our own are processed (see
    // `queries_to_our_own_unicast_address_are_processed`).
    let unicast: Ipv4Addr = "10.99.0.9".parse().unwrap();
    let not_me6: Ipv6Addr = "fe80::9".parse().unwrap();
    let short_igmp = {
        let mut p = build_ipv4(ROUTER4, ALL_HOSTS, &[0x11, 0x0a, 0, 0, 0, 0]);
        p.truncate(p.len());
        p
    };
    let v3_general_with_sources = IgmpRepr::QueryV3 {
        max_resp_code: 10,
        group: Ipv4Addr::UNSPECIFIED,
        suppress_router: false,
        qrv: 2,
        qqic: 125,
        sources: vec![Ipv4Addr::new(10, 1, 1, 1)],
    };
    let mld_v2_general_with_sources = MldRepr::QueryV2 {
        max_resp_code: 1000,
        group: gen6,
        suppress_router: false,
        qrv: 2,
        qqic: 125,
        sources: vec![global6],
    };
    let mld_no_ra = {
        // An MLD query without the hop-by-hop header: IPv6 next header 58 directly.
        let repr = MldRepr::Query {
            max_resp_delay: 1000,
            group: gen6,
        };
        let mut body = vec![0; repr.buffer_len()];
        repr.emit(&ROUTER6, &ALL_NODES, &mut body);
        let mut p = vec![0x60, 0, 0, 0, 0, body.len() as u8, 58, 1];
        p.extend_from_slice(&ROUTER6.octets());
        p.extend_from_slice(&ALL_NODES.octets());
        p.extend_from_slice(&body);
        p
    };
    let mld_hop_limit_255 = {
        let mut p = mld_query(gen6, ALL_NODES, 1000);
        p[7] = 255;
        p
    };
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<u8>, DropReason)> = vec![
        ("igmp too short", short_igmp, DropReason::IgmpTooShort),
        ("igmp bad checksum", corrupt_igmp_checksum(v2_query(Ipv4Addr::UNSPECIFIED, ALL_HOSTS, 10)), DropReason::IgmpBadChecksum),
        ("igmp unknown type", build_ipv4(ROUTER4, ALL_HOSTS, &with_igmp_checksum(vec![0x42, 0, 0, 0, 0, 0, 0, 0])), DropReason::IgmpUnknownType),
        ("igmp 10-byte query", build_ipv4(ROUTER4, ALL_HOSTS, &with_igmp_checksum(vec![0x11, 10, 0, 0, 0, 0, 0, 0, 0, 0])), DropReason::IgmpBadQueryLength),
        ("v2 query to unicast", v2_query(Ipv4Addr::UNSPECIFIED, unicast, 10), DropReason::IgmpQueryBadDestination),
        ("v1 query not to all-hosts", igmp_packet(ROUTER4, me, &IgmpRepr::Query { max_resp_code: 0, group: Ipv4Addr::UNSPECIFIED }), DropReason::IgmpQueryBadDestination),
        ("general query to a group", v2_query(Ipv4Addr::UNSPECIFIED, me, 10), DropReason::IgmpQueryBadDestination),
        ("group query to another group", v2_query(me, "239.2.2.2".parse().unwrap(), 10), DropReason::IgmpQueryBadDestination),
        ("query for a unicast group", v2_query(unicast, ALL_HOSTS, 10), DropReason::IgmpQueryBadGroup),
        ("v3 general query with sources", igmp_packet(ROUTER4, ALL_HOSTS, &v3_general_with_sources), DropReason::IgmpGeneralQueryWithSources),
        ("report group != destination", igmp_packet(Ipv4Addr::new(10, 99, 0, 3), "239.9.9.9".parse().unwrap(), &IgmpRepr::ReportV2 { group: me }), DropReason::IgmpReportGroupMismatch),
        ("report for unicast group", igmp_packet(Ipv4Addr::new(10, 99, 0, 3), unicast, &IgmpRepr::ReportV2 { group: unicast }), DropReason::IgmpReportBadGroup),
        ("mld from a global source", mld_packet(global6, ALL_NODES, &MldRepr::Query { max_resp_delay: 1000, group: gen6 }), DropReason::MldSourceNotLinkLocal),
        ("mld from ::", mld_packet(gen6, ALL_NODES, &MldRepr::Query { max_resp_delay: 1000, group: gen6 }), DropReason::MldSourceNotLinkLocal),
        ("mld without router alert", mld_no_ra, DropReason::MldNoRouterAlert),
        ("mld hop limit 255", mld_hop_limit_255, DropReason::MldBadHopLimit),
        ("mld query to unicast", mld_packet(ROUTER6, not_me6, &MldRepr::Query { max_resp_delay: 1000, group: gen6 }), DropReason::MldQueryBadDestination),
        ("mld query for unicast group", mld_packet(ROUTER6, ALL_NODES, &MldRepr::Query { max_resp_delay: 1000, group: ME6 }), DropReason::MldQueryBadGroup),
        ("mldv2 general with sources", mld_packet(ROUTER6, ALL_NODES, &mld_v2_general_with_sources), DropReason::MldGeneralQueryWithSources),
        ("mld report group != destination", mld_packet("fe80::3".parse().unwrap(), "ff12::9".parse().unwrap(), &MldRepr::Report { group: me6 }), DropReason::MldReportGroupMismatch),
        ("mld report for unicast", mld_packet("fe80::3".parse().unwrap(), ME6, &MldRepr::Report { group: ME6 }), DropReason::MldReportBadGroup),
        ("mld bad checksum", { let mut p = mld_query(gen6, ALL_NODES, 1000); let n = p.len(); p[n - 20] ^= 1; p }, DropReason::MldBadChecksum),
        ("other ipv4", build_udp_like(), DropReason::OtherIpv4),
        ("not ip", vec![0x00, 1, 2, 3], DropReason::NotIp),
    ];
    for (name, packet, reason) in cases {
        let mut host = settled(&["239.1.1.1", "ff12::1"]);
        let groups = host.groups(t(20_000));
        let ifaces = host.interfaces(t(20_000));
        let before = host.stats().dropped(reason);
        assert_eq!(
            host.handle_packet(IF, &packet, t(20_000)),
            Err(reason),
            "{name}"
        );
        assert_eq!(host.stats().dropped(reason), before + 1, "{name}: counted");
        assert_eq!(host.stats().total_dropped(), 1, "{name}: counted once");
        assert_eq!(host.groups(t(20_000)), groups, "{name}: no state change");
        assert_eq!(
            host.interfaces(t(20_000)),
            ifaces,
            "{name}: no state change"
        );
        assert!(run(&mut host, 60_000).is_empty(), "{name}: nothing sent");
    }
}

fn with_igmp_checksum(mut body: Vec<u8>) -> Vec<u8> {
    body[2] = 0;
    body[3] = 0;
    let sum = membership::wire::internet_checksum(&body);
    body[2..4].copy_from_slice(&sum.to_be_bytes());
    body
}

fn build_udp_like() -> Vec<u8> {
    let mut p = build_ipv4(ROUTER4, ALL_HOSTS, &[0; 8]);
    p[9] = 17;
    with_ipv4_checksum(p)
}

#[test]
fn strict_igmp_policy_drops_missing_router_alert_and_ttl() {
    let q = IgmpRepr::Query {
        max_resp_code: 10,
        group: Ipv4Addr::UNSPECIFIED,
    };
    let mut no_ra = vec![0x45, 0, 0, 28, 0, 0, 0x40, 0, 1, 2, 0, 0];
    no_ra.extend_from_slice(&ROUTER4.octets());
    no_ra.extend_from_slice(&ALL_HOSTS.octets());
    no_ra.extend_from_slice(&q.to_bytes());
    let no_ra = with_ipv4_checksum(no_ra);
    let mut ttl_64 = v2_query(Ipv4Addr::UNSPECIFIED, ALL_HOSTS, 10);
    ttl_64[8] = 64;
    let ttl_64 = with_ipv4_checksum(ttl_64);

    // Lenient default: accepted and counted (Linux and FRR accept these).
    let mut host = settled(&["239.1.1.1"]);
    host.handle_packet(IF, &no_ra, t(20_000)).unwrap();
    host.handle_packet(IF, &ttl_64, t(20_000)).unwrap();
    assert_eq!(host.stats().igmp.igmp_rcv_no_router_alert, 1);
    assert_eq!(host.stats().igmp.igmp_rcv_ttl_not_one, 1);

    let mut config = Config::v2();
    config.igmp_policy.require_router_alert = true;
    config.igmp_policy.require_hop_limit_one = true;
    let mut host = host_with(config, 1, ME4, ME6);
    host.join(IF, g4("239.1.1.1"), t(0)).unwrap();
    run(&mut host, 20_000);
    assert_eq!(
        host.handle_packet(IF, &no_ra, t(20_000)),
        Err(DropReason::IgmpNoRouterAlert)
    );
    assert_eq!(
        host.handle_packet(IF, &ttl_64, t(20_000)),
        Err(DropReason::IgmpBadTtl)
    );
    assert!(run(&mut host, 60_000).is_empty());
}

#[test]
fn unknown_interface_is_counted() {
    let mut host = host();
    assert_eq!(
        host.handle_packet(5, &v2_query(Ipv4Addr::UNSPECIFIED, ALL_HOSTS, 10), t(0)),
        Err(DropReason::UnknownInterface)
    );
    assert_eq!(host.stats().dropped(DropReason::UnknownInterface), 1);
}

// ---------------------------------------------------------------------------------------------
// A simulated link: one querier, three hosts.

struct Link {
    hosts: Vec<Host>,
    /// (time, host index, transmit) of everything the hosts sent.
    wire: Vec<(u64, usize, Transmit)>,
}

impl Link {
    fn new(n: usize) -> Link {
        let hosts = (0..n)
            .map(|i| {
                let v4 = Ipv4Addr::new(10, 99, 0, 2 + i as u8);
                let v6 = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2 + i as u16);
                host_with(Config::v2(), 100 + i as u64, v4, v6)
            })
            .collect();
        Link {
            hosts,
            wire: Vec::new(),
        }
    }

    /// Delivers what host `from` sends to every other host, at `now`.
    fn flush(&mut self, from: usize, now: u64) {
        let mut sent = Vec::new();
        self.hosts[from].poll(t(now), |tx| sent.push(tx));
        for tx in sent {
            let packet = tx.to_packet();
            for (i, other) in self.hosts.iter_mut().enumerate() {
                if i != from {
                    other.handle_packet(IF, &packet, t(now)).unwrap();
                }
            }
            self.wire.push((now, from, tx));
        }
    }

    fn run(&mut self, until: u64) {
        loop {
            let next = self
                .hosts
                .iter()
                .enumerate()
                .filter_map(|(i, h)| h.next_deadline().map(|d| (d.as_millis(), i)))
                .min();
            match next {
                Some((at, i)) if at <= until => self.flush(i, at),
                _ => break,
            }
        }
    }

    fn query(&mut self, packet: &[u8], now: u64) {
        for host in &mut self.hosts {
            host.handle_packet(IF, packet, t(now)).unwrap();
        }
        for i in 0..self.hosts.len() {
            self.flush(i, now);
        }
    }

    fn sent_since(&self, since: u64) -> Vec<(u64, usize, String)> {
        self.wire
            .iter()
            .filter(|w| w.0 >= since)
            .map(|(at, i, tx)| (*at, *i, kind(tx)))
            .collect()
    }
}

#[test]
fn simulated_link_one_report_per_group_per_query_and_one_leave() {
    let groups = ["239.1.1.1", "239.1.1.2", "239.1.1.3", "ff12::1", "ff12::2"];
    let mut link = Link::new(3);
    for i in 0..3 {
        for g in groups {
            link.hosts[i]
                .join(IF, g.parse().unwrap(), t(i as u64 * 10))
                .unwrap();
        }
        link.flush(i, i as u64 * 10);
    }
    link.run(30_000);

    for round in 0..5u64 {
        let at = 30_000 + round * 20_000;
        link.query(&v2_query(Ipv4Addr::UNSPECIFIED, ALL_HOSTS, 100), at);
        link.query(&mld_query(Ipv6Addr::UNSPECIFIED, ALL_NODES, 10_000), at);
        link.run(at + 19_999);
        let mut per_group: BTreeMap<String, usize> = BTreeMap::new();
        for (_, _, k) in link.sent_since(at) {
            *per_group.entry(k).or_default() += 1;
        }
        assert_eq!(
            per_group.len(),
            groups.len(),
            "round {round}: every group reported: {per_group:?}"
        );
        assert!(
            per_group.values().all(|&n| n == 1),
            "round {round}: exactly one report each: {per_group:?}"
        );
    }

    // Everyone leaves: only the host that sent the last report sends Leave / Done.
    let last_reporter: BTreeMap<String, usize> = link
        .wire
        .iter()
        .map(|(_, i, tx)| (tx.group().unwrap().to_string(), *i))
        .collect();
    let at = 200_000;
    for i in 0..3 {
        for g in groups {
            link.hosts[i].leave(IF, g.parse().unwrap(), t(at)).unwrap();
        }
        link.flush(i, at);
    }
    let leaves = link.sent_since(at);
    assert_eq!(leaves.len(), groups.len(), "{leaves:?}");
    for (_, i, k) in leaves {
        let g = k.split(' ').nth(1).unwrap().to_string();
        assert!(k.starts_with("leave") || k.starts_with("done"));
        assert_eq!(
            last_reporter[&g], i,
            "{g}: Leave/Done from the last reporter only"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Random delays are uniform over [0, Max Resp Time].

#[test]
fn random_delays_are_uniform_over_the_allowed_range() {
    const GROUPS: u32 = 20_000;
    const BINS: usize = 20;
    let mut host = host_with(
        Config {
            robustness: 1,
            ..Config::v2()
        },
        0xfeed,
        ME4,
        ME6,
    );
    for i in 0..GROUPS {
        host.join(IF, IpAddr::V4(Ipv4Addr::from(0xef00_0000 + i)), t(0))
            .unwrap();
    }
    now_sent(&mut host, 0);
    host.handle_packet(
        IF,
        &v2_query(Ipv4Addr::UNSPECIFIED, ALL_HOSTS, 100),
        t(1000),
    )
    .unwrap();
    let delays: Vec<u64> = host
        .groups(t(1000))
        .iter()
        .map(|g| g.timer_ms.unwrap())
        .collect();
    assert!(delays.iter().all(|&d| d <= 10_000));
    assert!(
        delays.contains(&0) || delays.iter().min().unwrap() < &10,
        "reaches the low end"
    );
    assert!(
        delays.iter().max().unwrap() > &9_990,
        "reaches the high end"
    );
    let mut bins = [0f64; BINS];
    for d in &delays {
        bins[((*d as usize) * BINS / 10_001).min(BINS - 1)] += 1.0;
    }
    let expected = GROUPS as f64 / BINS as f64;
    let chi2: f64 = bins.iter().map(|o| (o - expected).powi(2) / expected).sum();
    // 19 degrees of freedom: the 99.9th percentile is 43.8.
    assert!(chi2 < 43.8, "chi-square {chi2:.1} over bins {bins:?}");
    let mean = delays.iter().sum::<u64>() as f64 / delays.len() as f64;
    assert!((mean - 5000.0).abs() < 100.0, "mean {mean}");
}

#[test]
fn forced_igmp_version_1_sends_v1_reports_and_no_leave() {
    let config = Config {
        igmp_max_version: IgmpVersion::V1,
        ..Config::v2()
    };
    let mut host = host_with(config, 1, ME4, ME6);
    host.join(IF, g4("239.1.1.1"), t(0)).unwrap();
    assert_eq!(kind(&now_sent(&mut host, 0)[0]), "v1-report 239.1.1.1");
    assert_eq!(host.interfaces(t(0))[0].igmp_version.number(), 1);
    run(&mut host, 30_000);
    host.leave(IF, g4("239.1.1.1"), t(30_000)).unwrap();
    assert!(now_sent(&mut host, 30_000).is_empty());
}
