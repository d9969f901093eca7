//! IGMPv3 / MLDv2 hosts in virtual time, compatibility modes (RFC 9776 §7, RFC 9777 §8): an
//! older querier switches a family to its older mode until its timer runs out, pending v3
//! work is cancelled, and what the v3 querier taught shapes that timer. Each shared behaviour
//! runs for both families (IGMPv2 ↔ MLDv1); IGMPv1 has no MLD twin.

mod common;
mod v3;

use v3::*;

// ---------------------------------------------------------------------------------------------
// IGMP only (IGMPv1) and both families on one host.

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

// ---------------------------------------------------------------------------------------------
// For both families.

for_both_families!(
    older_queriers_switch_the_mode_and_it_times_out,
    an_older_querier_cancels_pending_v3_work,
    learned_qqic_and_qrv_shape_the_older_querier_timeout,
    an_older_mode_forgets_pending_source_news,
);

fn older_queriers_switch_the_mode_and_it_times_out<F: Family>() {
    let mut host = host();
    for g in [a::<F>("239.1.1.1"), a::<F::Other>("239.1.1.1")] {
        host.join(IF, g, t(0)).unwrap();
    }
    run(&mut host, 10_000);
    // A v3 query teaches QRV 2 and QQIC 125 s; Max Resp 1 s: timeout = 2 × 125 + 1 = 251 s.
    host.handle_packet(
        IF,
        &F::v3_query(None, &[], 1000, F::all_systems()),
        t(10_000),
    )
    .unwrap();
    run(&mut host, 20_000);
    host.handle_packet(IF, &F::older_general_query(1000), t(20_000))
        .unwrap();
    let info = &host.interfaces(t(20_000))[0];
    assert_eq!(
        (F::version(info), F::older_querier_ms(info)),
        (F::OLDER, Some(251_000))
    );
    assert_eq!(
        <F::Other as Family>::version(info),
        <F::Other as Family>::V3,
        "families are independent"
    );
    let sent = run(&mut host, 21_000);
    assert_eq!(sent.len(), 1);
    assert_eq!(F::older_kind(&sent[0].1), Some("report"));
    // In the older mode, state changes use its messages: a join reports, a leave leaves.
    host.join(IF, a::<F>("239.1.1.7"), t(30_000)).unwrap();
    assert_eq!(
        F::older_kind(&now_sent(&mut host, 30_000)[0]),
        Some("report")
    );
    // And reverts to v3 when the timer runs out.
    run(&mut host, 270_999);
    assert_eq!(F::version(&host.interfaces(t(270_999))[0]), F::OLDER);
    run(&mut host, 271_000);
    assert_eq!(F::version(&host.interfaces(t(271_000))[0]), F::V3);
    host.join(IF, a::<F>("239.1.1.8"), t(271_000)).unwrap();
    assert_eq!(
        records(&now_sent(&mut host, 271_000)[0]),
        [rec::<F>("to_ex", "239.1.1.8", &[])]
    );
}

/// An MLDv1 querier puts MLD in MLDv1 mode (an IGMPv2 one IGMP in v2 mode) and cancels the
/// pending v3 retransmission; the group is then answered and left in the older protocol.
fn an_older_querier_cancels_pending_v3_work<F: Family>() {
    let mut host = host();
    let g = a::<F>("239.1.1.1");
    host.join(IF, g, t(0)).unwrap();
    now_sent(&mut host, 0);
    // A retransmission is pending; the older query cancels it and is answered in its mode.
    host.handle_packet(IF, &F::older_general_query(1000), t(1))
        .unwrap();
    assert_eq!(F::version(&host.interfaces(t(1))[0]), F::OLDER);
    assert_eq!(
        F::older_querier_ms(&host.interfaces(t(1))[0]),
        Some(260_000),
        "2 × 125 s + 10 s"
    );
    let sent = run(&mut host, 5_000);
    assert_eq!(sent.len(), 1);
    assert_eq!(F::older_kind(&sent[0].1), Some("report"));
    host.leave(IF, g, t(5_000)).unwrap();
    assert_eq!(F::older_kind(&now_sent(&mut host, 5_000)[0]), Some("leave"));
}

fn learned_qqic_and_qrv_shape_the_older_querier_timeout<F: Family>() {
    let mut host = settled_in::<F>(&[("239.1.1.1", "exclude", &[])]);
    let q = F::v3_query_with(None, &[], 2000, F::all_systems(), (3, 20, true));
    host.handle_packet(IF, &q, t(10_000)).unwrap();
    host.handle_packet(IF, &F::older_general_query(1000), t(11_000))
        .unwrap();
    // 3 × 20 s + 2 s.
    assert_eq!(
        F::older_querier_ms(&host.interfaces(t(11_000))[0]),
        Some(62_000)
    );
}

/// Source news pending when an older querier arrives is dropped with the v3 mode, not kept for
/// the next return to v3: back in v3, a leave is retransmitted as robustness says and the
/// record then goes.
fn an_older_mode_forgets_pending_source_news<F: Family>() {
    let mut host = host();
    let g = a::<F>("239.1.1.1");
    let sources = || SourceFilter::include(addrs::<F>(&["10.1.1.1"]));
    host.join_filter(IF, g, sources(), t(0)).unwrap();
    assert_eq!(
        now_sent(&mut host, 0).len(),
        1,
        "ALLOW, one retransmission left"
    );
    host.handle_packet(IF, &F::older_general_query(1000), t(1))
        .unwrap();
    run(&mut host, 5_000);
    run(&mut host, 261_000);
    assert_eq!(F::version(&host.interfaces(t(261_000))[0]), F::V3);
    host.leave_filter(IF, g, sources(), t(270_000)).unwrap();
    let mut sent: Vec<Transmit> = now_sent(&mut host, 270_000);
    sent.extend(run(&mut host, 280_000).into_iter().map(|(_, tx)| tx));
    let leaves: Vec<Vec<String>> = sent.iter().map(records).collect();
    assert_eq!(
        leaves,
        vec![vec![rec::<F>("to_in", "239.1.1.1", &[])]; 2],
        "the leave and its retransmission (the router holds (*,G) after the older reports)"
    );
    assert!(host.group(IF, g, t(280_000)).is_none(), "the record went");
}
