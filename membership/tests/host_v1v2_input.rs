//! The v1/v2 Host's input validation, in virtual time: every rejected message is counted
//! under its reason and changes nothing; queries to our own addresses are processed.

mod common;
mod v1v2;

use v1v2::*;

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
