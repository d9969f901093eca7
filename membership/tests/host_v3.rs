//! IGMPv3 / MLDv2 hosts in virtual time: state-change reports and their retransmission, the
//! action table through the Host API, query responses (RFC 9776 §5.2 rules), compatibility
//! modes, packing, and byte-exact reports against the Linux kernel's.

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::{hex, ip, t, vector_packets, ALL_HOSTS, ALL_NODES, IF, ROUTER4, ROUTER6};
use membership::wire::igmp::IgmpRepr;
use membership::wire::ip::{build_ipv4, build_ipv6};
use membership::wire::mld::MldRepr;
use membership::wire::{encode_code8, RecordType};
use membership::{
    Config, DropReason, Host, IgmpVersion, InterfaceConfig, Message, MldVersion, SourceFilter,
    Transmit,
};

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| ip(s)).collect()
}

fn host_as(v4: &str, v6: &str, config: Config) -> Host {
    let mut host = Host::new(config, 11);
    host.add_interface(
        IF,
        InterfaceConfig {
            ipv4: Some(v4.parse().unwrap()),
            ipv6_link_local: Some(v6.parse().unwrap()),
            ..InterfaceConfig::default()
        },
    )
    .unwrap();
    host
}

fn host() -> Host {
    host_as("10.99.0.2", "fe80::2", Config::default())
}

fn run(host: &mut Host, until: u64) -> Vec<(u64, Transmit)> {
    let mut sent = Vec::new();
    while let Some(at) = host.poll_timeout() {
        if at.as_millis() > until {
            break;
        }
        host.handle_timeout(at);
        while let Some(tx) = host.poll_transmit() {
            sent.push((at.as_millis(), tx));
        }
    }
    host.handle_timeout(t(until));
    while let Some(tx) = host.poll_transmit() {
        sent.push((until, tx));
    }
    sent
}

fn now_sent(host: &mut Host, now: u64) -> Vec<Transmit> {
    let mut sent = Vec::new();
    host.handle_timeout(t(now));
    while let Some(tx) = host.poll_transmit() {
        sent.push(tx);
    }
    sent
}

/// A report's records as text: "to_ex 239.1.1.3 {}" ...
fn records(tx: &Transmit) -> Vec<String> {
    fn fmt<A: std::fmt::Display>(k: RecordType, g: A, s: &[A]) -> String {
        let s: Vec<String> = s.iter().map(|a| a.to_string()).collect();
        format!("{k} {g} {{{}}}", s.join(","))
    }
    match tx.message() {
        Message::Igmp(IgmpRepr::ReportV3 { records }) => {
            assert_eq!(tx.dst(), ip("224.0.0.22"));
            records
                .iter()
                .map(|r| fmt(r.kind, r.group, &r.sources))
                .collect()
        }
        Message::Mld(MldRepr::ReportV2 { records }) => {
            assert_eq!(tx.dst(), ip("ff02::16"));
            records
                .iter()
                .map(|r| fmt(r.kind, r.group, &r.sources))
                .collect()
        }
        other => panic!("not a v3 report: {other:?}"),
    }
}

fn all_records(sent: &[(u64, Transmit)]) -> Vec<String> {
    sent.iter().flat_map(|(_, tx)| records(tx)).collect()
}

fn v3_query(group: &str, sources: &[&str], max_tenths: u8, dst: Ipv4Addr) -> Vec<u8> {
    let q = IgmpRepr::QueryV3 {
        max_resp_code: max_tenths,
        group: group.parse().unwrap(),
        suppress_router: false,
        qrv: 2,
        qqic: 125,
        sources: sources.iter().map(|s| s.parse().unwrap()).collect(),
    };
    build_ipv4(ROUTER4, dst, &q.to_bytes())
}

fn mld_v2_query(group: &str, sources: &[&str], max_ms: u16, dst: Ipv6Addr) -> Vec<u8> {
    let q = MldRepr::QueryV2 {
        max_resp_code: max_ms,
        group: group.parse().unwrap(),
        suppress_router: false,
        qrv: 2,
        qqic: 125,
        sources: sources.iter().map(|s| s.parse().unwrap()).collect(),
    };
    build_ipv6(ROUTER6, dst, &q.to_bytes(&ROUTER6, &dst))
}

// ---------------------------------------------------------------------------------------------
// Byte-exact against the kernel (kernel-host.pcap: frames 10, 11, 14, 18, 19, 23).

#[test]
fn state_change_reports_match_the_kernel_bytes() {
    let kernel = vector_packets("kernel-host.pcap");
    let mut host = host_as("10.99.0.1", "fe80::1", Config::default());

    host.join(IF, ip("239.1.1.3"), t(0)).unwrap();
    assert_eq!(
        hex(&now_sent(&mut host, 0)[0].to_packet()),
        hex(&kernel[9]),
        "TO_EX {{}} 239.1.1.3"
    );
    host.join(IF, ip("ff12::1113"), t(0)).unwrap();
    assert_eq!(
        hex(&now_sent(&mut host, 0)[0].to_packet()),
        hex(&kernel[10]),
        "MLDv2 TO_EX ff12::1113"
    );
    run(&mut host, 10_000);
    host.leave(IF, ip("239.1.1.3"), t(10_000)).unwrap();
    assert_eq!(
        hex(&now_sent(&mut host, 10_000)[0].to_packet()),
        hex(&kernel[13]),
        "TO_IN {{}}"
    );

    host.join_filter(
        IF,
        ip("232.1.1.1"),
        SourceFilter::include(ips(&["10.99.0.77"])),
        t(10_000),
    )
    .unwrap();
    assert_eq!(
        hex(&now_sent(&mut host, 10_000)[0].to_packet()),
        hex(&kernel[17]),
        "ALLOW"
    );
    host.join_filter(
        IF,
        ip("ff35::1"),
        SourceFilter::include(ips(&["2001:db8::77"])),
        t(10_000),
    )
    .unwrap();
    assert_eq!(
        hex(&now_sent(&mut host, 10_000)[0].to_packet()),
        hex(&kernel[18]),
        "MLDv2 ALLOW"
    );
    run(&mut host, 20_000);
    host.leave_filter(
        IF,
        ip("232.1.1.1"),
        SourceFilter::include(ips(&["10.99.0.77"])),
        t(20_000),
    )
    .unwrap();
    assert_eq!(
        hex(&now_sent(&mut host, 20_000)[0].to_packet()),
        hex(&kernel[22]),
        "BLOCK"
    );
    assert!(host
        .groups(t(20_000))
        .iter()
        .any(|g| g.group == ip("232.1.1.1") && g.state == "leaving"));
    run(&mut host, 30_000);
    assert!(
        !host
            .groups(t(30_000))
            .iter()
            .any(|g| g.group == ip("232.1.1.1")),
        "forgotten"
    );
}

// ---------------------------------------------------------------------------------------------
// State changes.

#[test]
fn join_sends_to_ex_and_retransmits_robustness_minus_one_times_within_a_second() {
    let mut host = host();
    host.join(IF, ip("239.1.1.1"), t(0)).unwrap();
    assert_eq!(records(&now_sent(&mut host, 0)[0]), ["to_ex 239.1.1.1 {}"]);
    let sent = run(&mut host, 60_000);
    assert_eq!(all_records(&sent), ["to_ex 239.1.1.1 {}"]);
    assert!(
        (1..=1000).contains(&sent[0].0),
        "retransmission at {} ms",
        sent[0].0
    );
    // A second any-source join changes nothing: nothing sent.
    host.join(IF, ip("239.1.1.1"), t(60_000)).unwrap();
    assert!(run(&mut host, 120_000).is_empty());
    assert_eq!(host.groups(t(0))[0].users, 2);
    // The last leave: TO_IN {} twice; the record lives until then.
    host.leave(IF, ip("239.1.1.1"), t(120_000)).unwrap();
    assert!(now_sent(&mut host, 120_000).is_empty(), "one user left");
    host.leave(IF, ip("239.1.1.1"), t(120_000)).unwrap();
    let sent: Vec<String> = now_sent(&mut host, 120_000)
        .iter()
        .flat_map(records)
        .collect();
    assert_eq!(sent, ["to_in 239.1.1.1 {}"]);
    assert_eq!(
        all_records(&run(&mut host, 200_000)),
        ["to_in 239.1.1.1 {}"]
    );
    assert!(host.groups(t(200_000)).is_empty());
    assert_eq!(host.stats().igmp.igmp_snd_v3_reports, 4);
}

/// RFC 9776 §5.1's table, through requests merged on one interface.
#[test]
fn action_table_through_merged_requests() {
    let config = Config::default().with_robustness(1);
    let mut host = host_as("10.99.0.2", "fe80::2", config);
    let g = ip("232.1.1.1");
    let step = |host: &mut Host, at: u64| -> Vec<String> {
        now_sent(host, at)
            .iter()
            .flat_map(records)
            .collect::<Vec<_>>()
    };
    // {} -> INCLUDE {a,b}: ALLOW {a,b}
    host.join_filter(
        IF,
        g,
        SourceFilter::include(ips(&["10.0.0.1", "10.0.0.2"])),
        t(0),
    )
    .unwrap();
    assert_eq!(step(&mut host, 0), ["allow 232.1.1.1 {10.0.0.1,10.0.0.2}"]);
    // INCLUDE {a,b} -> INCLUDE {a,b,c}: ALLOW {c}
    host.join_filter(IF, g, SourceFilter::include(ips(&["10.0.0.3"])), t(1))
        .unwrap();
    assert_eq!(step(&mut host, 1), ["allow 232.1.1.1 {10.0.0.3}"]);
    // INCLUDE {a,b,c} -> INCLUDE {b,c}: BLOCK {a}
    host.leave_filter(IF, g, SourceFilter::include(ips(&["10.0.0.1"])), t(2))
        .unwrap();
    assert_eq!(step(&mut host, 2), ["block 232.1.1.1 {10.0.0.1}"]);
    // INCLUDE {b,c} + EXCLUDE {b,d} -> EXCLUDE {d}: TO_EX {d}
    host.join_filter(
        IF,
        g,
        SourceFilter::exclude(ips(&["10.0.0.2", "10.0.0.4"])),
        t(3),
    )
    .unwrap();
    assert_eq!(step(&mut host, 3), ["to_ex 232.1.1.1 {10.0.0.4}"]);
    assert_eq!(host.groups(t(3))[0].filter_mode, "exclude");
    assert_eq!(host.groups(t(3))[0].sources, ips(&["10.0.0.4"]));
    // + EXCLUDE {} -> EXCLUDE {}: ALLOW {d}
    host.join(IF, g, t(4)).unwrap();
    assert_eq!(step(&mut host, 4), ["allow 232.1.1.1 {10.0.0.4}"]);
    // - EXCLUDE {}: back to EXCLUDE {d}: BLOCK {d}
    host.leave(IF, g, t(5)).unwrap();
    assert_eq!(step(&mut host, 5), ["block 232.1.1.1 {10.0.0.4}"]);
    // - EXCLUDE {b,d}: INCLUDE {b,c}: TO_IN {b,c}
    host.leave_filter(
        IF,
        g,
        SourceFilter::exclude(ips(&["10.0.0.2", "10.0.0.4"])),
        t(6),
    )
    .unwrap();
    assert_eq!(step(&mut host, 6), ["to_in 232.1.1.1 {10.0.0.2,10.0.0.3}"]);
    // Leaving the group with no any-source join left drops every request: BLOCK {b,c}.
    host.leave(IF, g, t(7)).unwrap();
    assert_eq!(step(&mut host, 7), ["block 232.1.1.1 {10.0.0.2,10.0.0.3}"]);
    assert!(host.groups(t(7)).is_empty());
}

#[test]
fn a_change_during_retransmissions_is_merged() {
    let mut host = host();
    let g = ip("232.1.1.2");
    host.join_filter(IF, g, SourceFilter::include(ips(&["10.0.0.1"])), t(0))
        .unwrap();
    assert_eq!(
        records(&now_sent(&mut host, 0)[0]),
        ["allow 232.1.1.2 {10.0.0.1}"]
    );
    // Before the retransmission: add 10.0.0.2. The next report carries both ALLOWs.
    host.join_filter(IF, g, SourceFilter::include(ips(&["10.0.0.2"])), t(0))
        .unwrap();
    assert_eq!(
        records(&now_sent(&mut host, 0)[0]),
        ["allow 232.1.1.2 {10.0.0.1,10.0.0.2}"]
    );
    let later = all_records(&run(&mut host, 10_000));
    assert_eq!(
        later,
        ["allow 232.1.1.2 {10.0.0.2}"],
        "10.0.0.1 has used up its retransmissions"
    );
}

#[test]
fn bad_filters_are_refused_and_change_nothing() {
    let mut host = host();
    let g = ip("232.1.1.3");
    for (filter, err) in [
        (
            SourceFilter::include(vec![]),
            membership::Error::EmptyInclude,
        ),
        (
            SourceFilter::include(ips(&["ff12::1"])),
            membership::Error::BadSource(ip("ff12::1")),
        ),
        (
            SourceFilter::include(ips(&["239.1.1.1"])),
            membership::Error::BadSource(ip("239.1.1.1")),
        ),
        (
            SourceFilter::exclude(ips(&["0.0.0.0"])),
            membership::Error::BadSource(ip("0.0.0.0")),
        ),
    ] {
        assert_eq!(host.join_filter(IF, g, filter, t(0)), Err(err));
    }
    assert_eq!(
        host.leave_filter(IF, g, SourceFilter::include(ips(&["10.0.0.1"])), t(0)),
        Err(membership::Error::NotJoined(g))
    );
    host.join(IF, g, t(0)).unwrap();
    now_sent(&mut host, 0);
    assert_eq!(
        host.leave_filter(IF, g, SourceFilter::exclude(ips(&["10.0.0.1"])), t(0)),
        Err(membership::Error::NoSuchFilter)
    );
    assert_eq!(host.groups(t(0))[0].users, 1);
    assert!(now_sent(&mut host, 0).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Queries.

fn settled(groups: &[(&str, SourceFilter)]) -> Host {
    let mut host = host();
    for (g, f) in groups {
        host.join_filter(IF, ip(g), f.clone(), t(0)).unwrap();
    }
    run(&mut host, 10_000);
    host
}

#[test]
fn general_query_answers_every_group_in_one_report_later_not_at_once() {
    let mut host = settled(&[
        ("239.1.1.1", SourceFilter::exclude(vec![])),
        (
            "232.1.1.1",
            SourceFilter::include(ips(&["10.0.0.1", "10.0.0.2"])),
        ),
        ("239.1.1.2", SourceFilter::exclude(ips(&["10.0.0.9"]))),
        ("ff12::1", SourceFilter::exclude(vec![])),
    ]);
    host.handle_packet(IF, &v3_query("0.0.0.0", &[], 100, ALL_HOSTS), t(10_000))
        .unwrap();
    host.handle_packet(IF, &mld_v2_query("::", &[], 10_000, ALL_NODES), t(10_000))
        .unwrap();
    let info = &host.interfaces(t(10_000))[0];
    assert!(info.igmp_general_response_ms.is_some_and(|ms| ms <= 10_000));
    let sent = run(&mut host, 30_000);
    assert_eq!(sent.len(), 2, "one report per family");
    assert!(sent.iter().all(|(at, _)| (10_000..=20_000).contains(at)));
    let mut got = all_records(&sent);
    got.sort();
    assert_eq!(
        got,
        [
            "is_ex 239.1.1.1 {}",
            "is_ex 239.1.1.2 {10.0.0.9}",
            "is_ex ff12::1 {}",
            "is_in 232.1.1.1 {10.0.0.1,10.0.0.2}",
        ]
    );
}

/// TAHI MLDv2 2.4.a and its IGMPv3 twin: a query to the host's own unicast address (IPv4,
/// IPv6 link-local) is accepted and answered (RFC 9776 §4.1.12, RFC 9777 §5.1.15); one to
/// another unicast address is dropped.
#[test]
fn v3_queries_to_our_own_unicast_address_are_answered() {
    let mut host = settled(&[
        ("239.1.1.1", SourceFilter::exclude(vec![])),
        ("ff12::1", SourceFilter::include(ips(&["2001:db8::7"]))),
    ]);
    let me4: Ipv4Addr = "10.99.0.2".parse().unwrap();
    let me6: Ipv6Addr = "fe80::2".parse().unwrap();
    host.handle_packet(IF, &v3_query("0.0.0.0", &[], 10, me4), t(10_000))
        .unwrap();
    host.handle_packet(IF, &mld_v2_query("ff12::1", &[], 1000, me6), t(10_000))
        .unwrap();
    let mut got = all_records(&run(&mut host, 20_000));
    got.sort();
    assert_eq!(got, ["is_ex 239.1.1.1 {}", "is_in ff12::1 {2001:db8::7}"]);
    let other4 = v3_query("0.0.0.0", &[], 10, "10.99.0.9".parse().unwrap());
    let other6 = mld_v2_query("::", &[], 1000, "fe80::9".parse().unwrap());
    assert_eq!(
        host.handle_packet(IF, &other4, t(20_000)),
        Err(DropReason::IgmpQueryBadDestination)
    );
    assert_eq!(
        host.handle_packet(IF, &other6, t(20_000)),
        Err(DropReason::MldQueryBadDestination)
    );
    assert!(run(&mut host, 40_000).is_empty());
}

#[test]
fn group_and_source_specific_queries() {
    let mut host = settled(&[
        (
            "232.1.1.1",
            SourceFilter::include(ips(&["10.0.0.1", "10.0.0.2"])),
        ),
        ("239.1.1.2", SourceFilter::exclude(ips(&["10.0.0.9"]))),
        ("239.1.1.3", SourceFilter::exclude(vec![])),
    ]);
    let q = |g: &str, s: &[&str]| v3_query(g, s, 10, g.parse().unwrap());
    // INCLUDE(A): IS_IN(A ∩ Q); EXCLUDE(A): IS_IN(Q − A); group-specific: IS_EX.
    host.handle_packet(IF, &q("232.1.1.1", &["10.0.0.2", "10.0.0.3"]), t(10_000))
        .unwrap();
    host.handle_packet(IF, &q("239.1.1.2", &["10.0.0.9", "10.0.0.8"]), t(10_000))
        .unwrap();
    host.handle_packet(IF, &q("239.1.1.3", &[]), t(10_000))
        .unwrap();
    let mut got = all_records(&run(&mut host, 20_000));
    got.sort();
    assert_eq!(
        got,
        [
            "is_ex 239.1.1.3 {}",
            "is_in 232.1.1.1 {10.0.0.2}",
            "is_in 239.1.1.2 {10.0.0.8}"
        ]
    );
    // Nothing of ours asked for: nothing sent.
    host.handle_packet(IF, &q("232.1.1.1", &["10.0.0.7"]), t(20_000))
        .unwrap();
    host.handle_packet(IF, &q("239.1.1.2", &["10.0.0.9"]), t(20_000))
        .unwrap();
    assert!(run(&mut host, 30_000).is_empty());
}

#[test]
fn pending_group_response_rules_four_and_five() {
    let mut host = settled(&[(
        "232.1.1.1",
        SourceFilter::include(ips(&["10.0.0.1", "10.0.0.2", "10.0.0.3"])),
    )]);
    let q = |s: &[&str], tenths: u8| v3_query("232.1.1.1", s, tenths, "232.1.1.1".parse().unwrap());
    // Rule 5: sources accumulate.
    host.handle_packet(IF, &q(&["10.0.0.1"], 50), t(10_000))
        .unwrap();
    host.handle_packet(IF, &q(&["10.0.0.2"], 50), t(10_000))
        .unwrap();
    assert_eq!(
        all_records(&run(&mut host, 20_000)),
        ["is_in 232.1.1.1 {10.0.0.1,10.0.0.2}"]
    );
    // Rule 4: a group-specific query clears the list: the whole state is reported.
    host.handle_packet(IF, &q(&["10.0.0.1"], 50), t(20_000))
        .unwrap();
    host.handle_packet(IF, &q(&[], 50), t(20_000)).unwrap();
    assert_eq!(
        all_records(&run(&mut host, 30_000)),
        ["is_in 232.1.1.1 {10.0.0.1,10.0.0.2,10.0.0.3}"]
    );
}

#[test]
fn rule_one_a_sooner_general_response_covers_a_group_query() {
    let mut host = settled(&[("239.1.1.1", SourceFilter::exclude(vec![]))]);
    // Max resp 0 for the general query: due at once; the group query (up to 10 s) is covered.
    host.handle_packet(IF, &v3_query("0.0.0.0", &[], 0, ALL_HOSTS), t(10_000))
        .unwrap();
    host.handle_packet(
        IF,
        &v3_query("239.1.1.1", &[], 100, "239.1.1.1".parse().unwrap()),
        t(10_000),
    )
    .unwrap();
    assert!(
        host.groups(t(10_000))[0].timer_ms.is_none(),
        "no group timer under rule 1"
    );
    assert_eq!(run(&mut host, 30_000).len(), 1);
}

#[test]
fn large_responses_are_packed_to_the_mtu() {
    let mut host = host();
    for i in 0..300u32 {
        host.join(IF, IpAddr::V4(Ipv4Addr::from(0xef02_0000 + i)), t(0))
            .unwrap();
        host.join(
            IF,
            IpAddr::V6(Ipv6Addr::from(
                0xff12_0000_0000_0000_0000_0000_0002_0000u128 + u128::from(i),
            )),
            t(0),
        )
        .unwrap();
    }
    run(&mut host, 10_000);
    host.handle_packet(IF, &v3_query("0.0.0.0", &[], 10, ALL_HOSTS), t(10_000))
        .unwrap();
    host.handle_packet(IF, &mld_v2_query("::", &[], 1000, ALL_NODES), t(10_000))
        .unwrap();
    let sent = run(&mut host, 20_000);
    let mut per_family: BTreeMap<bool, (usize, usize)> = BTreeMap::new();
    for (_, tx) in &sent {
        let len = tx.to_packet().len();
        assert!(len <= 1500, "{len} bytes");
        let e = per_family.entry(tx.dst().is_ipv4()).or_default();
        e.0 += 1;
        e.1 += tx.groups().count();
    }
    // IGMPv3: (1500 - 32) / 8 = 183 records per report -> 2; MLDv2: (1500 - 56) / 20 = 72 -> 5.
    assert_eq!(per_family[&true], (2, 300));
    assert_eq!(per_family[&false], (5, 300));
}

#[test]
fn a_huge_source_list_is_split_or_truncated_as_the_record_type_says() {
    let mut host = host();
    let many: Vec<IpAddr> = (0..400u32)
        .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)))
        .collect();
    host.join_filter(
        IF,
        ip("232.9.9.9"),
        SourceFilter::include(many.clone()),
        t(0),
    )
    .unwrap();
    host.join_filter(IF, ip("239.9.9.9"), SourceFilter::exclude(many), t(0))
        .unwrap();
    let sent = now_sent(&mut host, 0);
    // ALLOW with 400 sources: split over reports of at most (1500 - 32 - 8) / 4 = 365 sources.
    let sizes: Vec<usize> = sent
        .iter()
        .map(|tx| match tx.message() {
            Message::Igmp(IgmpRepr::ReportV3 { records }) => {
                records.iter().map(|r| r.sources.len()).sum()
            }
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(sizes, [365, 35, 365], "TO_EX keeps as many sources as fit");
}

// ---------------------------------------------------------------------------------------------
// Compatibility modes.

#[test]
fn older_queriers_switch_the_mode_and_it_times_out() {
    let mut host = settled(&[
        ("239.1.1.1", SourceFilter::exclude(vec![])),
        ("ff12::1", SourceFilter::exclude(vec![])),
    ]);
    // A v3 query teaches QRV 2 and QQIC 125 s; Max Resp 1 s: timeout = 2 × 125 + 1 = 251 s.
    host.handle_packet(IF, &v3_query("0.0.0.0", &[], 10, ALL_HOSTS), t(10_000))
        .unwrap();
    run(&mut host, 20_000);
    let v2q = IgmpRepr::Query {
        max_resp_code: 10,
        group: Ipv4Addr::UNSPECIFIED,
    };
    host.handle_packet(
        IF,
        &build_ipv4(ROUTER4, ALL_HOSTS, &v2q.to_bytes()),
        t(20_000),
    )
    .unwrap();
    let info = &host.interfaces(t(20_000))[0];
    assert_eq!(
        (info.igmp_version.number(), info.igmp_v2_querier_ms),
        (2, Some(251_000))
    );
    assert_eq!(info.mld_version.number(), 2, "families are independent");
    let sent = run(&mut host, 21_000);
    assert_eq!(sent.len(), 1);
    assert!(matches!(
        sent[0].1.message(),
        Message::Igmp(IgmpRepr::ReportV2 { .. })
    ));
    // In v2 mode, state changes use v2 messages: a join reports, a leave sends Leave.
    host.join(IF, ip("239.1.1.7"), t(30_000)).unwrap();
    assert!(matches!(
        now_sent(&mut host, 30_000)[0].message(),
        Message::Igmp(IgmpRepr::ReportV2 { .. })
    ));
    // And reverts to v3 when the timer runs out.
    run(&mut host, 270_999);
    assert_eq!(host.interfaces(t(270_999))[0].igmp_version.number(), 2);
    run(&mut host, 271_000);
    assert_eq!(host.interfaces(t(271_000))[0].igmp_version.number(), 3);
    host.join(IF, ip("239.1.1.8"), t(271_000)).unwrap();
    assert_eq!(
        records(&now_sent(&mut host, 271_000)[0]),
        ["to_ex 239.1.1.8 {}"]
    );
}

#[test]
fn mldv1_querier_puts_mld_in_v1_mode_and_cancels_pending_v3_work() {
    let mut host = host();
    host.join(IF, ip("ff12::1"), t(0)).unwrap();
    now_sent(&mut host, 0);
    // A retransmission is pending; the MLDv1 query cancels it and is answered in MLDv1.
    let q = MldRepr::Query {
        max_resp_delay: 1000,
        group: Ipv6Addr::UNSPECIFIED,
    };
    host.handle_packet(
        IF,
        &build_ipv6(ROUTER6, ALL_NODES, &q.to_bytes(&ROUTER6, &ALL_NODES)),
        t(1),
    )
    .unwrap();
    assert_eq!(host.interfaces(t(1))[0].mld_version.number(), 1);
    assert_eq!(
        host.interfaces(t(1))[0].mld_v1_querier_ms,
        Some(260_000),
        "2 × 125 s + 10 s"
    );
    let sent = run(&mut host, 5_000);
    assert_eq!(sent.len(), 1);
    assert!(matches!(
        sent[0].1.message(),
        Message::Mld(MldRepr::Report { .. })
    ));
    host.leave(IF, ip("ff12::1"), t(5_000)).unwrap();
    assert!(matches!(
        now_sent(&mut host, 5_000)[0].message(),
        Message::Mld(MldRepr::Done { .. })
    ));
}

#[test]
fn v1_querier_wins_over_v2() {
    let mut host = settled(&[("239.1.1.1", SourceFilter::exclude(vec![]))]);
    let v1q = IgmpRepr::Query {
        max_resp_code: 0,
        group: Ipv4Addr::UNSPECIFIED,
    };
    let v2q = IgmpRepr::Query {
        max_resp_code: 10,
        group: Ipv4Addr::UNSPECIFIED,
    };
    host.handle_packet(
        IF,
        &build_ipv4(ROUTER4, ALL_HOSTS, &v1q.to_bytes()),
        t(10_000),
    )
    .unwrap();
    host.handle_packet(
        IF,
        &build_ipv4(ROUTER4, ALL_HOSTS, &v2q.to_bytes()),
        t(10_000),
    )
    .unwrap();
    assert_eq!(host.interfaces(t(10_000))[0].igmp_version.number(), 1);
    let sent = run(&mut host, 30_000);
    assert!(sent
        .iter()
        .all(|(_, tx)| matches!(tx.message(), Message::Igmp(IgmpRepr::ReportV1 { .. }))));
    // A v3 query in v1 mode is answered as a v1 query.
    host.handle_packet(IF, &v3_query("0.0.0.0", &[], 10, ALL_HOSTS), t(30_000))
        .unwrap();
    let sent = run(&mut host, 40_000);
    assert_eq!(sent.len(), 1);
    assert!(matches!(
        sent[0].1.message(),
        Message::Igmp(IgmpRepr::ReportV1 { .. })
    ));
}

#[test]
fn configured_maximum_versions_hold() {
    let config = Config::default()
        .with_igmp_max_version(IgmpVersion::V2)
        .with_mld_max_version(MldVersion::V1);
    let mut host = host_as("10.99.0.2", "fe80::2", config);
    host.join(IF, ip("239.1.1.1"), t(0)).unwrap();
    host.join(IF, ip("ff12::1"), t(0)).unwrap();
    let sent = now_sent(&mut host, 0);
    assert!(matches!(
        sent[0].message(),
        Message::Igmp(IgmpRepr::ReportV2 { .. })
    ));
    assert!(matches!(
        sent[1].message(),
        Message::Mld(MldRepr::Report { .. })
    ));
    let info = &host.interfaces(t(0))[0];
    assert_eq!(
        (info.igmp_version.number(), info.mld_version.number()),
        (2, 1)
    );
}

#[test]
fn v3_hosts_do_not_suppress_on_other_reports() {
    let mut host = settled(&[("239.1.1.1", SourceFilter::exclude(vec![]))]);
    host.handle_packet(
        IF,
        &v3_query("239.1.1.1", &[], 50, "239.1.1.1".parse().unwrap()),
        t(10_000),
    )
    .unwrap();
    let other = IgmpRepr::ReportV2 {
        group: "239.1.1.1".parse().unwrap(),
    };
    host.handle_packet(
        IF,
        &build_ipv4(
            "10.99.0.3".parse().unwrap(),
            "239.1.1.1".parse().unwrap(),
            &other.to_bytes(),
        ),
        t(10_000),
    )
    .unwrap();
    assert_eq!(run(&mut host, 20_000).len(), 1, "still answered");
}

#[test]
fn learned_qqic_and_qrv_shape_the_older_querier_timeout() {
    let mut host = settled(&[("239.1.1.1", SourceFilter::exclude(vec![]))]);
    let q = IgmpRepr::QueryV3 {
        max_resp_code: 20,
        group: Ipv4Addr::UNSPECIFIED,
        suppress_router: true,
        qrv: 3,
        qqic: encode_code8(20),
        sources: vec![],
    };
    host.handle_packet(
        IF,
        &build_ipv4(ROUTER4, ALL_HOSTS, &q.to_bytes()),
        t(10_000),
    )
    .unwrap();
    let v2q = IgmpRepr::Query {
        max_resp_code: 10,
        group: Ipv4Addr::UNSPECIFIED,
    };
    host.handle_packet(
        IF,
        &build_ipv4(ROUTER4, ALL_HOSTS, &v2q.to_bytes()),
        t(11_000),
    )
    .unwrap();
    // 3 × 20 s + 2 s.
    assert_eq!(
        host.interfaces(t(11_000))[0].igmp_v2_querier_ms,
        Some(62_000)
    );
}

#[test]
fn a_group_being_left_is_not_joined_but_can_be_joined_again() {
    let mut host = host();
    let g = ip("239.3.3.3");
    host.join(IF, g, t(0)).unwrap();
    run(&mut host, 10_000);
    host.leave(IF, g, t(10_000)).unwrap();
    now_sent(&mut host, 10_000);
    assert_eq!(
        host.leave(IF, g, t(10_000)),
        Err(membership::Error::NotJoined(g))
    );
    // Joining again during the TO_IN retransmissions: TO_EX {} takes over.
    host.join(IF, g, t(10_001)).unwrap();
    assert_eq!(
        records(&now_sent(&mut host, 10_001)[0]),
        ["to_ex 239.3.3.3 {}"]
    );
    assert_eq!(all_records(&run(&mut host, 20_000)), ["to_ex 239.3.3.3 {}"]);
    assert_eq!(host.groups(t(20_000))[0].users, 1);
}

#[test]
fn only_general_queries_teach_the_query_response_interval() {
    let mut host = settled(&[("239.1.1.1", SourceFilter::exclude(vec![]))]);
    // General: Max Resp 1 s, QQIC 125 s. Then a last-member query with 0.1 s.
    host.handle_packet(IF, &v3_query("0.0.0.0", &[], 10, ALL_HOSTS), t(10_000))
        .unwrap();
    host.handle_packet(
        IF,
        &v3_query("239.1.1.1", &[], 1, "239.1.1.1".parse().unwrap()),
        t(10_000),
    )
    .unwrap();
    let v2q = IgmpRepr::Query {
        max_resp_code: 10,
        group: Ipv4Addr::UNSPECIFIED,
    };
    host.handle_packet(
        IF,
        &build_ipv4(ROUTER4, ALL_HOSTS, &v2q.to_bytes()),
        t(10_000),
    )
    .unwrap();
    assert_eq!(
        host.interfaces(t(10_000))[0].igmp_v2_querier_ms,
        Some(251_000),
        "2 × 125 s + 1 s"
    );
}

#[test]
fn changes_at_one_instant_share_reports() {
    let mut host = host();
    for i in 0..10u32 {
        host.join(IF, IpAddr::V4(Ipv4Addr::from(0xef05_0000 + i)), t(0))
            .unwrap();
    }
    host.join_filter(
        IF,
        ip("232.5.5.5"),
        SourceFilter::include(ips(&["10.0.0.1"])),
        t(0),
    )
    .unwrap();
    let sent = now_sent(&mut host, 0);
    assert_eq!(sent.len(), 1, "one report for eleven state changes");
    assert_eq!(records(&sent[0]).len(), 11);
    assert_eq!(records(&sent[0])[10], "allow 232.5.5.5 {10.0.0.1}");
    // Shutdown: every leave of the instant in one report, retransmitted per group.
    run(&mut host, 10_000);
    host.leave_all(t(10_000));
    let sent = now_sent(&mut host, 10_000);
    assert_eq!(sent.len(), 1);
    assert_eq!(records(&sent[0]).len(), 11);
    let leaves = records(&sent[0]);
    assert_eq!(leaves.iter().filter(|r| r.starts_with("to_in")).count(), 10);
    assert!(leaves.contains(&"block 232.5.5.5 {10.0.0.1}".to_string()));
    assert_eq!(all_records(&run(&mut host, 20_000)).len(), 11);
    assert!(host.groups(t(20_000)).is_empty());
}

/// As the kernel does (kernel-host.pcap frame 34): a BLOCK waiting to be retransmitted and two
/// leaves made meanwhile go out together in one 3-record retransmission.
#[test]
fn retransmissions_of_all_groups_share_one_interface_timer() {
    let mut host = settled(&[
        ("239.1.1.4", SourceFilter::exclude(vec![])),
        ("239.1.1.5", SourceFilter::exclude(vec![])),
        ("232.1.1.2", SourceFilter::include(ips(&["10.99.0.78"]))),
    ]);
    host.leave_filter(
        IF,
        ip("232.1.1.2"),
        SourceFilter::include(ips(&["10.99.0.78"])),
        t(10_000),
    )
    .unwrap();
    assert_eq!(
        records(&now_sent(&mut host, 10_000)[0]),
        ["block 232.1.1.2 {10.99.0.78}"]
    );
    let due = host
        .groups(t(10_000))
        .iter()
        .find_map(|g| g.retransmit_ms)
        .unwrap();
    host.leave(IF, ip("239.1.1.5"), t(10_000)).unwrap();
    host.leave(IF, ip("239.1.1.4"), t(10_000)).unwrap();
    assert_eq!(
        records(&now_sent(&mut host, 10_000)[0]),
        ["to_in 239.1.1.5 {}", "to_in 239.1.1.4 {}"]
    );
    // Every group waits for the same timer.
    let left: Vec<Option<u64>> = host
        .groups(t(10_000))
        .iter()
        .map(|g| g.retransmit_ms)
        .collect();
    assert_eq!(left, vec![Some(due); 3]);
    let sent = run(&mut host, 20_000);
    assert_eq!(sent.len(), 1, "one retransmission for the three groups");
    assert_eq!(sent[0].0, 10_000 + due);
    let mut got = records(&sent[0].1);
    got.sort();
    assert_eq!(
        got,
        [
            "block 232.1.1.2 {10.99.0.78}",
            "to_in 239.1.1.4 {}",
            "to_in 239.1.1.5 {}"
        ]
    );
    assert!(host.groups(t(20_000)).is_empty());
    assert_eq!(host.poll_timeout(), None);
}
