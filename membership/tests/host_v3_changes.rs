//! IGMPv3 / MLDv2 hosts in virtual time, state changes: state-change reports and their
//! retransmission, the action table through the Host API, leaves, and byte-exact reports
//! against the Linux kernel's. Each shared behaviour runs for both families. Queries are in
//! host_v3_queries.rs, compatibility modes in host_v3_compat.rs.

mod common;
mod v3;

use v3::*;

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
// State changes, for both families.

for_both_families!(
    join_sends_to_ex_and_retransmits_robustness_minus_one_times_within_a_second,
    action_table_through_merged_requests,
    a_change_during_retransmissions_is_merged,
    bad_filters_are_refused_and_change_nothing,
    a_group_being_left_is_not_joined_but_can_be_joined_again,
    changes_at_one_instant_share_reports,
    retransmissions_of_all_groups_share_one_interface_timer,
);

fn join_sends_to_ex_and_retransmits_robustness_minus_one_times_within_a_second<F: Family>() {
    let mut host = host();
    let g = a::<F>("239.1.1.1");
    let to_ex = rec::<F>("to_ex", "239.1.1.1", &[]);
    host.join(IF, g, t(0)).unwrap();
    assert_eq!(
        records(&now_sent(&mut host, 0)[0]),
        std::slice::from_ref(&to_ex)
    );
    let sent = run(&mut host, 60_000);
    assert_eq!(all_records(&sent), [to_ex]);
    assert!(
        (1..=1000).contains(&sent[0].0),
        "retransmission at {} ms",
        sent[0].0
    );
    // A second any-source join changes nothing: nothing sent.
    host.join(IF, g, t(60_000)).unwrap();
    assert!(run(&mut host, 120_000).is_empty());
    assert_eq!(host.groups(t(0))[0].users, 2);
    // The last leave: TO_IN {} twice; the record lives until then.
    host.leave(IF, g, t(120_000)).unwrap();
    assert!(now_sent(&mut host, 120_000).is_empty(), "one user left");
    host.leave(IF, g, t(120_000)).unwrap();
    let sent: Vec<String> = now_sent(&mut host, 120_000)
        .iter()
        .flat_map(records)
        .collect();
    let to_in = rec::<F>("to_in", "239.1.1.1", &[]);
    assert_eq!(sent, std::slice::from_ref(&to_in));
    assert_eq!(all_records(&run(&mut host, 200_000)), [to_in]);
    assert!(host.groups(t(200_000)).is_empty());
    assert_eq!(F::v3_reports_sent(host.stats()), 4);
}

/// RFC 9776 §5.1's table (RFC 9777 §6.1's), through requests merged on one interface.
fn action_table_through_merged_requests<F: Family>() {
    let config = Config::default().with_robustness(1);
    let mut host = host_as("10.99.0.2", "fe80::2", config);
    let g = a::<F>("232.1.1.1");
    let step = |host: &mut Host, at: u64| -> Vec<String> {
        now_sent(host, at)
            .iter()
            .flat_map(records)
            .collect::<Vec<_>>()
    };
    let r = |kind: &str, sources: &[&str]| [rec::<F>(kind, "232.1.1.1", sources)];
    // {} -> INCLUDE {a,b}: ALLOW {a,b}
    host.join_filter(
        IF,
        g,
        SourceFilter::include(addrs::<F>(&["10.0.0.1", "10.0.0.2"])),
        t(0),
    )
    .unwrap();
    assert_eq!(step(&mut host, 0), r("allow", &["10.0.0.1", "10.0.0.2"]));
    // INCLUDE {a,b} -> INCLUDE {a,b,c}: ALLOW {c}
    host.join_filter(
        IF,
        g,
        SourceFilter::include(addrs::<F>(&["10.0.0.3"])),
        t(1),
    )
    .unwrap();
    assert_eq!(step(&mut host, 1), r("allow", &["10.0.0.3"]));
    // INCLUDE {a,b,c} -> INCLUDE {b,c}: BLOCK {a}
    host.leave_filter(
        IF,
        g,
        SourceFilter::include(addrs::<F>(&["10.0.0.1"])),
        t(2),
    )
    .unwrap();
    assert_eq!(step(&mut host, 2), r("block", &["10.0.0.1"]));
    // INCLUDE {b,c} + EXCLUDE {b,d} -> EXCLUDE {d}: TO_EX {d}
    host.join_filter(
        IF,
        g,
        SourceFilter::exclude(addrs::<F>(&["10.0.0.2", "10.0.0.4"])),
        t(3),
    )
    .unwrap();
    assert_eq!(step(&mut host, 3), r("to_ex", &["10.0.0.4"]));
    assert_eq!(host.groups(t(3))[0].filter_mode, "exclude");
    assert_eq!(host.groups(t(3))[0].sources, addrs::<F>(&["10.0.0.4"]));
    // + EXCLUDE {} -> EXCLUDE {}: ALLOW {d}
    host.join(IF, g, t(4)).unwrap();
    assert_eq!(step(&mut host, 4), r("allow", &["10.0.0.4"]));
    // - EXCLUDE {}: back to EXCLUDE {d}: BLOCK {d}
    host.leave(IF, g, t(5)).unwrap();
    assert_eq!(step(&mut host, 5), r("block", &["10.0.0.4"]));
    // - EXCLUDE {b,d}: INCLUDE {b,c}: TO_IN {b,c}
    host.leave_filter(
        IF,
        g,
        SourceFilter::exclude(addrs::<F>(&["10.0.0.2", "10.0.0.4"])),
        t(6),
    )
    .unwrap();
    assert_eq!(step(&mut host, 6), r("to_in", &["10.0.0.2", "10.0.0.3"]));
    // Leaving the group with no any-source join left drops every request: BLOCK {b,c}.
    host.leave(IF, g, t(7)).unwrap();
    assert_eq!(step(&mut host, 7), r("block", &["10.0.0.2", "10.0.0.3"]));
    assert!(host.groups(t(7)).is_empty());
}

fn a_change_during_retransmissions_is_merged<F: Family>() {
    let mut host = host();
    let g = a::<F>("232.1.1.2");
    host.join_filter(
        IF,
        g,
        SourceFilter::include(addrs::<F>(&["10.0.0.1"])),
        t(0),
    )
    .unwrap();
    assert_eq!(
        records(&now_sent(&mut host, 0)[0]),
        [rec::<F>("allow", "232.1.1.2", &["10.0.0.1"])]
    );
    // Before the retransmission: add 10.0.0.2. The next report carries both ALLOWs.
    host.join_filter(
        IF,
        g,
        SourceFilter::include(addrs::<F>(&["10.0.0.2"])),
        t(0),
    )
    .unwrap();
    assert_eq!(
        records(&now_sent(&mut host, 0)[0]),
        [rec::<F>("allow", "232.1.1.2", &["10.0.0.1", "10.0.0.2"])]
    );
    let later = all_records(&run(&mut host, 10_000));
    assert_eq!(
        later,
        [rec::<F>("allow", "232.1.1.2", &["10.0.0.2"])],
        "10.0.0.1 has used up its retransmissions"
    );
}

fn bad_filters_are_refused_and_change_nothing<F: Family>() {
    let mut host = host();
    let g = a::<F>("232.1.1.3");
    for (filter, err) in [
        (
            SourceFilter::include(vec![]),
            membership::Error::EmptyInclude,
        ),
        (
            SourceFilter::include(vec![F::foreign()]),
            membership::Error::BadSource(F::foreign()),
        ),
        (
            SourceFilter::include(addrs::<F>(&["239.1.1.1"])),
            membership::Error::BadSource(a::<F>("239.1.1.1")),
        ),
        (
            SourceFilter::exclude(vec![F::unspecified()]),
            membership::Error::BadSource(F::unspecified()),
        ),
    ] {
        assert_eq!(host.join_filter(IF, g, filter, t(0)), Err(err));
    }
    assert_eq!(
        host.leave_filter(
            IF,
            g,
            SourceFilter::include(addrs::<F>(&["10.0.0.1"])),
            t(0)
        ),
        Err(membership::Error::NotJoined(g))
    );
    host.join(IF, g, t(0)).unwrap();
    now_sent(&mut host, 0);
    assert_eq!(
        host.leave_filter(
            IF,
            g,
            SourceFilter::exclude(addrs::<F>(&["10.0.0.1"])),
            t(0)
        ),
        Err(membership::Error::NoSuchFilter)
    );
    assert_eq!(host.groups(t(0))[0].users, 1);
    assert!(now_sent(&mut host, 0).is_empty());
}

fn a_group_being_left_is_not_joined_but_can_be_joined_again<F: Family>() {
    let mut host = host();
    let g = a::<F>("239.3.3.3");
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
    let to_ex = rec::<F>("to_ex", "239.3.3.3", &[]);
    assert_eq!(
        records(&now_sent(&mut host, 10_001)[0]),
        std::slice::from_ref(&to_ex)
    );
    assert_eq!(all_records(&run(&mut host, 20_000)), [to_ex]);
    assert_eq!(host.groups(t(20_000))[0].users, 1);
}

fn changes_at_one_instant_share_reports<F: Family>() {
    let mut host = host();
    for i in 0..10u32 {
        host.join(IF, a::<F>(&format!("239.5.0.{i}")), t(0))
            .unwrap();
    }
    host.join_filter(
        IF,
        a::<F>("232.5.5.5"),
        SourceFilter::include(addrs::<F>(&["10.0.0.1"])),
        t(0),
    )
    .unwrap();
    let sent = now_sent(&mut host, 0);
    assert_eq!(sent.len(), 1, "one report for eleven state changes");
    assert_eq!(records(&sent[0]).len(), 11);
    assert_eq!(
        records(&sent[0])[10],
        rec::<F>("allow", "232.5.5.5", &["10.0.0.1"])
    );
    // Shutdown: every leave of the instant in one report, retransmitted per group.
    run(&mut host, 10_000);
    host.leave_all(t(10_000));
    let sent = now_sent(&mut host, 10_000);
    assert_eq!(sent.len(), 1);
    assert_eq!(records(&sent[0]).len(), 11);
    let leaves = records(&sent[0]);
    assert_eq!(leaves.iter().filter(|r| r.starts_with("to_in")).count(), 10);
    assert!(leaves.contains(&rec::<F>("block", "232.5.5.5", &["10.0.0.1"])));
    assert_eq!(all_records(&run(&mut host, 20_000)).len(), 11);
    assert!(host.groups(t(20_000)).is_empty());
}

/// As the kernel does (kernel-host.pcap frame 34): a BLOCK waiting to be retransmitted and two
/// leaves made meanwhile go out together in one 3-record retransmission.
fn retransmissions_of_all_groups_share_one_interface_timer<F: Family>() {
    let mut host = settled_in::<F>(&[
        ("239.1.1.4", "exclude", &[]),
        ("239.1.1.5", "exclude", &[]),
        ("232.1.1.2", "include", &["10.99.0.78"]),
    ]);
    host.leave_filter(
        IF,
        a::<F>("232.1.1.2"),
        SourceFilter::include(addrs::<F>(&["10.99.0.78"])),
        t(10_000),
    )
    .unwrap();
    let block = rec::<F>("block", "232.1.1.2", &["10.99.0.78"]);
    assert_eq!(
        records(&now_sent(&mut host, 10_000)[0]),
        std::slice::from_ref(&block)
    );
    let due = host
        .groups(t(10_000))
        .iter()
        .find_map(|g| g.retransmit_ms)
        .unwrap();
    host.leave(IF, a::<F>("239.1.1.5"), t(10_000)).unwrap();
    host.leave(IF, a::<F>("239.1.1.4"), t(10_000)).unwrap();
    let (to_in_5, to_in_4) = (
        rec::<F>("to_in", "239.1.1.5", &[]),
        rec::<F>("to_in", "239.1.1.4", &[]),
    );
    assert_eq!(
        records(&now_sent(&mut host, 10_000)[0]),
        [to_in_5.clone(), to_in_4.clone()]
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
    assert_eq!(
        sorted(records(&sent[0].1)),
        sorted(vec![block, to_in_4, to_in_5])
    );
    assert!(host.groups(t(20_000)).is_empty());
    assert_eq!(host.poll_timeout(), None);
}
