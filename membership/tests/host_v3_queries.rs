//! IGMPv3 / MLDv2 hosts in virtual time, queries: responses by the rules of RFC 9776 §5.2
//! (RFC 9777 §6.2), group-and-source-specific queries, packing to the MTU, and what queries
//! teach. Each shared behaviour runs for both families; tests of both at once stay as they
//! were.

mod common;
mod v3;

use v3::*;

// ---------------------------------------------------------------------------------------------
// Both families on one host.

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

// ---------------------------------------------------------------------------------------------
// For both families.

for_both_families!(
    group_and_source_specific_queries,
    pending_group_response_rules_four_and_five,
    rule_one_a_sooner_general_response_covers_a_group_query,
    a_huge_source_list_is_split_or_truncated_as_the_record_type_says,
    v3_hosts_do_not_suppress_on_other_reports,
    only_general_queries_teach_the_query_response_interval,
);

/// A group(-and-source)-specific v3 query for `g` with `sources`, to the group.
fn specific<F: Family>(g: &str, sources: &[&str], max_ms: u32) -> Vec<u8> {
    F::v3_query(Some(a::<F>(g)), &addrs::<F>(sources), max_ms, a::<F>(g))
}

fn group_and_source_specific_queries<F: Family>() {
    let mut host = settled_in::<F>(&[
        ("232.1.1.1", "include", &["10.0.0.1", "10.0.0.2"]),
        ("239.1.1.2", "exclude", &["10.0.0.9"]),
        ("239.1.1.3", "exclude", &[]),
    ]);
    let q = |g: &str, s: &[&str]| specific::<F>(g, s, 1000);
    // INCLUDE(A): IS_IN(A ∩ Q); EXCLUDE(A): IS_IN(Q − A); group-specific: IS_EX.
    host.handle_packet(IF, &q("232.1.1.1", &["10.0.0.2", "10.0.0.3"]), t(10_000))
        .unwrap();
    host.handle_packet(IF, &q("239.1.1.2", &["10.0.0.9", "10.0.0.8"]), t(10_000))
        .unwrap();
    host.handle_packet(IF, &q("239.1.1.3", &[]), t(10_000))
        .unwrap();
    let got = sorted(all_records(&run(&mut host, 20_000)));
    assert_eq!(
        got,
        sorted(vec![
            rec::<F>("is_ex", "239.1.1.3", &[]),
            rec::<F>("is_in", "232.1.1.1", &["10.0.0.2"]),
            rec::<F>("is_in", "239.1.1.2", &["10.0.0.8"]),
        ])
    );
    // Nothing of ours asked for: nothing sent.
    host.handle_packet(IF, &q("232.1.1.1", &["10.0.0.7"]), t(20_000))
        .unwrap();
    host.handle_packet(IF, &q("239.1.1.2", &["10.0.0.9"]), t(20_000))
        .unwrap();
    assert!(run(&mut host, 30_000).is_empty());
}

fn pending_group_response_rules_four_and_five<F: Family>() {
    let mut host = settled_in::<F>(&[(
        "232.1.1.1",
        "include",
        &["10.0.0.1", "10.0.0.2", "10.0.0.3"],
    )]);
    let q = |s: &[&str], max_ms: u32| specific::<F>("232.1.1.1", s, max_ms);
    // Rule 5: sources accumulate.
    host.handle_packet(IF, &q(&["10.0.0.1"], 5000), t(10_000))
        .unwrap();
    host.handle_packet(IF, &q(&["10.0.0.2"], 5000), t(10_000))
        .unwrap();
    assert_eq!(
        all_records(&run(&mut host, 20_000)),
        [rec::<F>("is_in", "232.1.1.1", &["10.0.0.1", "10.0.0.2"])]
    );
    // Rule 4: a group-specific query clears the list: the whole state is reported.
    host.handle_packet(IF, &q(&["10.0.0.1"], 5000), t(20_000))
        .unwrap();
    host.handle_packet(IF, &q(&[], 5000), t(20_000)).unwrap();
    assert_eq!(
        all_records(&run(&mut host, 30_000)),
        [rec::<F>(
            "is_in",
            "232.1.1.1",
            &["10.0.0.1", "10.0.0.2", "10.0.0.3"]
        )]
    );
}

fn rule_one_a_sooner_general_response_covers_a_group_query<F: Family>() {
    let mut host = settled_in::<F>(&[("239.1.1.1", "exclude", &[])]);
    // Max resp 0 for the general query: due at once; the group query (up to 10 s) is covered.
    host.handle_packet(IF, &F::v3_query(None, &[], 0, F::all_systems()), t(10_000))
        .unwrap();
    host.handle_packet(IF, &specific::<F>("239.1.1.1", &[], 10_000), t(10_000))
        .unwrap();
    assert!(
        host.groups(t(10_000))[0].timer_ms.is_none(),
        "no group timer under rule 1"
    );
    assert_eq!(run(&mut host, 30_000).len(), 1);
}

fn a_huge_source_list_is_split_or_truncated_as_the_record_type_says<F: Family>() {
    let mut host = host();
    let many: Vec<IpAddr> = (0..400u32)
        .map(|i| a::<F>(&format!("10.0.{}.{}", i / 256, i % 256)))
        .collect();
    host.join_filter(
        IF,
        a::<F>("232.9.9.9"),
        SourceFilter::include(many.clone()),
        t(0),
    )
    .unwrap();
    host.join_filter(IF, a::<F>("239.9.9.9"), SourceFilter::exclude(many), t(0))
        .unwrap();
    let sent = now_sent(&mut host, 0);
    // ALLOW with 400 sources: split over reports of at most MAX_SOURCES sources each
    // (IGMPv3: (1500 - 32 - 8) / 4 = 365); TO_EX keeps as many as fit.
    let sizes: Vec<usize> = sent
        .iter()
        .map(|tx| match tx.message() {
            Message::Igmp(IgmpRepr::ReportV3 { records }) => {
                records.iter().map(|r| r.sources.len()).sum()
            }
            Message::Mld(MldRepr::ReportV2 { records }) => {
                records.iter().map(|r| r.sources.len()).sum()
            }
            other => panic!("not a v3 report: {other:?}"),
        })
        .collect();
    let mut expected: Vec<usize> = (0..400)
        .step_by(F::MAX_SOURCES)
        .map(|from| (400 - from).min(F::MAX_SOURCES))
        .collect();
    expected.push(F::MAX_SOURCES);
    assert_eq!(sizes, expected, "TO_EX keeps as many sources as fit");
    if F::NAME == "igmp" {
        assert_eq!(sizes, [365, 35, 365], "TO_EX keeps as many sources as fit");
    }
}

fn v3_hosts_do_not_suppress_on_other_reports<F: Family>() {
    let mut host = settled_in::<F>(&[("239.1.1.1", "exclude", &[])]);
    host.handle_packet(IF, &specific::<F>("239.1.1.1", &[], 5000), t(10_000))
        .unwrap();
    host.handle_packet(IF, &F::neighbour_report(a::<F>("239.1.1.1")), t(10_000))
        .unwrap();
    assert_eq!(run(&mut host, 20_000).len(), 1, "still answered");
}

fn only_general_queries_teach_the_query_response_interval<F: Family>() {
    let mut host = settled_in::<F>(&[("239.1.1.1", "exclude", &[])]);
    // General: Max Resp 1 s, QQIC 125 s. Then a last-member query with 0.1 s.
    host.handle_packet(
        IF,
        &F::v3_query(None, &[], 1000, F::all_systems()),
        t(10_000),
    )
    .unwrap();
    host.handle_packet(IF, &specific::<F>("239.1.1.1", &[], 100), t(10_000))
        .unwrap();
    host.handle_packet(IF, &F::older_general_query(1000), t(10_000))
        .unwrap();
    assert_eq!(
        F::older_querier_ms(&host.interfaces(t(10_000))[0]),
        Some(251_000),
        "2 × 125 s + 1 s"
    );
}
