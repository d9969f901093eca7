//! The v1/v2 Host in virtual time: byte-exact output, joins and leaves, queries, router
//! versions, and random delays. Reports from other hosts and a simulated link are in
//! host_v1v2_others.rs, input validation in host_v1v2_input.rs.

mod common;
mod v1v2;

use v1v2::*;

// ---------------------------------------------------------------------------------------------
// Byte-exact output.

use common::{hex, vector_packets};

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
    assert_eq!(first[0].src(), IpAddr::V4(ME4));
    assert_eq!(first[0].dst(), g4("239.1.1.1"));
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
    let config = Config::v2()
        .with_robustness(4)
        .with_igmp_unsolicited_interval(Duration::from_secs(1))
        .with_mld_unsolicited_interval(Duration::from_secs(2));
    let mut host = host_with(config, 3, ME4, ME6);
    host.join(IF, g4("239.1.1.1"), t(0)).unwrap();
    host.join(IF, g6("ff12::1"), t(0)).unwrap();
    assert_eq!(now_sent(&mut host, 0).len(), 2);
    let sent = run(&mut host, 60_000);
    let v4: Vec<u64> = sent
        .iter()
        .filter(|(_, tx)| tx.dst().is_ipv4())
        .map(|(at, _)| *at)
        .collect();
    let v6: Vec<u64> = sent
        .iter()
        .filter(|(_, tx)| tx.dst().is_ipv6())
        .map(|(at, _)| *at)
        .collect();
    assert_eq!((v4.len(), v6.len()), (3, 3));
    assert!(v4.windows(2).all(|w| w[1] - w[0] <= 1000) && v4[0] <= 1000);
    assert!(v6.windows(2).all(|w| w[1] - w[0] <= 2000) && v6[0] <= 2000);
}

#[test]
fn mld_join_and_done() {
    let mut host = host();
    host.join(IF, g6("ff12::1234"), t(0)).unwrap();
    let sent = now_sent(&mut host, 0);
    assert_eq!(kind(&sent[0]), "mld-report ff12::1234");
    assert_eq!(
        (sent[0].src(), sent[0].dst()),
        (IpAddr::V6(ME6), g6("ff12::1234"))
    );
    assert_eq!(run(&mut host, 100_000).len(), 1);
    host.leave(IF, g6("ff12::1234"), t(100_000)).unwrap();
    let sent = now_sent(&mut host, 100_000);
    assert_eq!(
        (sent[0].dst(), kind(&sent[0])),
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
    let sources: Vec<IpAddr> = now_sent(&mut host, 0).iter().map(|tx| tx.src()).collect();
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
    let config = Config::v2().with_report_link_local_groups(true);
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
// A configured maximum version.

#[test]
fn forced_igmp_version_1_sends_v1_reports_and_no_leave() {
    let config = Config::v2().with_igmp_max_version(IgmpVersion::V1);
    let mut host = host_with(config, 1, ME4, ME6);
    host.join(IF, g4("239.1.1.1"), t(0)).unwrap();
    assert_eq!(kind(&now_sent(&mut host, 0)[0]), "v1-report 239.1.1.1");
    assert_eq!(host.interfaces(t(0))[0].igmp_version.number(), 1);
    run(&mut host, 30_000);
    host.leave(IF, g4("239.1.1.1"), t(30_000)).unwrap();
    assert!(now_sent(&mut host, 30_000).is_empty());
}

// ---------------------------------------------------------------------------------------------
// For both families: IGMPv2 and MLDv1.

for_both_families!(
    joins_are_counted_and_only_the_last_leave_leaves,
    leave_during_the_repeats_still_leaves_and_cancels_them,
    a_query_never_lengthens_a_running_timer,
    a_query_shortens_the_unsolicited_repeat,
    random_delays_are_uniform_over_the_allowed_range,
);

fn joins_are_counted_and_only_the_last_leave_leaves<F: Family>() {
    let mut host = host();
    let g = F::addr("239.1.1.1");
    assert_eq!(host.join(IF, g, t(0)).unwrap(), 1);
    assert_eq!(host.join(IF, g, t(5)).unwrap(), 2);
    assert_eq!(
        now_sent(&mut host, 5).len(),
        1,
        "the second join sends nothing"
    );
    run(&mut host, 30_000);
    assert_eq!(host.leave(IF, g, t(30_000)).unwrap(), 1);
    assert!(
        now_sent(&mut host, 30_000).is_empty(),
        "one user left: no Leave"
    );
    assert_eq!(host.groups(t(30_000))[0].users, 1);
    assert_eq!(host.leave(IF, g, t(30_001)).unwrap(), 0);
    let sent = now_sent(&mut host, 30_001);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].dst(), F::older_kind(&sent[0]), sent[0].group()),
        (F::all_routers(), Some("leave"), Some(g))
    );
    assert!(host.groups(t(30_001)).is_empty());
    assert_eq!(
        host.leave(IF, g, t(30_002)),
        Err(membership::Error::NotJoined(g))
    );
    assert_eq!(F::leaves_sent(host.stats()), 1);
    assert_eq!(F::reports_sent(host.stats()), 2);
}

fn leave_during_the_repeats_still_leaves_and_cancels_them<F: Family>() {
    let mut host = host();
    let g = F::addr("239.1.1.1");
    host.join(IF, g, t(0)).unwrap();
    now_sent(&mut host, 0);
    host.leave(IF, g, t(1)).unwrap();
    let sent: Vec<_> = run(&mut host, 1)
        .iter()
        .map(|(_, tx)| (tx.dst(), F::older_kind(tx), tx.group()))
        .collect();
    assert_eq!(sent, vec![(F::all_routers(), Some("leave"), Some(g))]);
    assert!(run(&mut host, 100_000).is_empty());
    assert_eq!(host.poll_timeout(), None);
}

fn a_query_never_lengthens_a_running_timer<F: Family>() {
    let mut host = settled_in::<F>(&["239.1.1.1", "239.1.1.2", "239.1.1.3", "239.1.1.4"]);
    let general = |max_ms| F::older_query(None, max_ms, F::all_systems());
    host.handle_packet(IF, &general(1000), t(20_000)).unwrap();
    let before: Vec<Option<u64>> = host.groups(t(20_000)).iter().map(|g| g.timer_ms).collect();
    assert!(before.iter().all(|t| t.is_some_and(|ms| ms <= 1000)));
    host.handle_packet(IF, &general(10_000), t(20_000)).unwrap();
    let after: Vec<Option<u64>> = host.groups(t(20_000)).iter().map(|g| g.timer_ms).collect();
    assert_eq!(before, after);
    // A shorter one does shorten.
    host.handle_packet(IF, &general(100), t(20_000)).unwrap();
    assert!(host
        .groups(t(20_000))
        .iter()
        .all(|g| g.timer_ms.unwrap() <= 100));
}

fn a_query_shortens_the_unsolicited_repeat<F: Family>() {
    let mut host = host();
    host.join(IF, F::addr("239.1.1.1"), t(0)).unwrap();
    now_sent(&mut host, 0);
    let left = host.groups(t(0))[0].timer_ms.unwrap();
    assert!(left > 100, "seeded delay {left} ms");
    host.handle_packet(IF, &F::older_query(None, 100, F::all_systems()), t(0))
        .unwrap();
    let sent = run(&mut host, 100);
    assert_eq!(sent.len(), 1);
}

/// Random delays are uniform over [0, Max Resp Time].
fn random_delays_are_uniform_over_the_allowed_range<F: Family>() {
    const GROUPS: u32 = 20_000;
    const BINS: usize = 20;
    let mut host = host_with(Config::v2().with_robustness(1), 0xfeed, ME4, ME6);
    for i in 0..GROUPS {
        let group = F::addr(&format!("239.0.{}.{}", i / 256, i % 256));
        host.join(IF, group, t(0)).unwrap();
    }
    now_sent(&mut host, 0);
    host.handle_packet(IF, &F::older_general_query(10_000), t(1000))
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
