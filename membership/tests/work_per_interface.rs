//! Work in proportion to what an event concerns (issue 16): a query heard on one interface of a
//! core with many interfaces visits that interface's records, never all of them. Counted in
//! records visited (`Host::records_visited`), not in wall time, in virtual time.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};

use common::{igmp_general_query, t, ALL_HOSTS, ALL_NODES, ROUTER4, ROUTER6};
use membership::wire::igmp::IgmpRepr;
use membership::wire::ip::{build_ipv4, build_ipv6};
use membership::wire::mld::MldRepr;
use membership::{Config, Host, InterfaceConfig};

const HOSTS: u32 = 10_000;

/// `HOSTS` interfaces, each with two IPv4 groups and one IPv6 group, their state-change
/// reports all sent.
fn many_interfaces() -> Host {
    let mut host = Host::new(Config::default(), 5);
    for n in 0..HOSTS {
        host.add_interface(
            n,
            InterfaceConfig {
                ipv4: Some(Ipv4Addr::from(0x0a00_0000 + n)),
                ipv6_link_local: Some(Ipv6Addr::from((0xfe80_u128 << 112) | (u128::from(n) + 1))),
                ..InterfaceConfig::default()
            },
        )
        .unwrap();
        for g in ["239.1.1.1", "239.1.1.2", "ff12::1"] {
            host.join(n, g.parse().unwrap(), t(0)).unwrap();
        }
    }
    run(&mut host, 0, 5_000);
    host
}

/// Runs the timers from `from` to `until` (ms); the interfaces that sent, one entry a packet.
fn run(host: &mut Host, from: u64, until: u64) -> Vec<u32> {
    let mut sent = Vec::new();
    while let Some(at) = host.poll_timeout() {
        if at.as_millis() > until {
            break;
        }
        host.handle_timeout(t(at.as_millis().max(from)));
        while let Some(tx) = host.poll_transmit() {
            sent.push(tx.iface());
        }
    }
    sent
}

fn igmpv2_general_query() -> Vec<u8> {
    let q = IgmpRepr::Query {
        max_resp_code: 100,
        group: Ipv4Addr::UNSPECIFIED,
    };
    build_ipv4(ROUTER4, ALL_HOSTS, &q.to_bytes())
}

fn mldv2_general_query() -> Vec<u8> {
    let q = MldRepr::QueryV2 {
        max_resp_code: 10_000,
        group: Ipv6Addr::UNSPECIFIED,
        suppress_router: false,
        qrv: 2,
        qqic: 125,
        sources: Vec::new(),
    };
    build_ipv6(ROUTER6, ALL_NODES, &q.to_bytes(&ROUTER6, &ALL_NODES))
}

#[test]
fn a_general_query_on_one_interface_visits_its_records_only() {
    let mut host = many_interfaces();
    assert_eq!(host.group_records(), 3 * HOSTS as usize);
    let before = host.records_visited();
    host.handle_packet(7, &igmp_general_query(100), t(5_000))
        .unwrap();
    assert_eq!(
        run(&mut host, 5_000, 20_000),
        [7],
        "one report, from interface 7"
    );
    let visited = host.records_visited() - before;
    assert!(
        (2..=3).contains(&visited),
        "{visited} records visited to answer for 2 groups"
    );

    // MLDv2: the interface's one IPv6 group.
    let before = host.records_visited();
    host.handle_packet(8, &mldv2_general_query(), t(20_000))
        .unwrap();
    assert_eq!(run(&mut host, 20_000, 40_000), [8]);
    let visited = host.records_visited() - before;
    assert!((1..=2).contains(&visited), "{visited} records visited");
}

#[test]
fn a_general_query_on_every_interface_costs_their_records_in_all() {
    let mut host = many_interfaces();
    let before = host.records_visited();
    let query = igmp_general_query(100);
    for n in 0..HOSTS {
        host.handle_packet(n, &query, t(5_000)).unwrap();
    }
    let mut sent = run(&mut host, 5_000, 20_000);
    sent.sort_unstable();
    assert_eq!(sent, (0..HOSTS).collect::<Vec<_>>(), "one report each");
    let visited = host.records_visited() - before;
    assert!(
        visited <= 3 * u64::from(HOSTS),
        "{visited} records visited for {} IPv4 memberships",
        2 * HOSTS
    );
}

#[test]
fn an_older_querier_on_one_interface_switches_its_records_only() {
    let mut host = many_interfaces();
    let before = host.records_visited();
    // IGMPv2 querier: interface 3 leaves v3 mode (its records switch), then the query sets a
    // report timer for each of its groups; later the mode times out and switches back.
    host.handle_packet(3, &igmpv2_general_query(), t(5_000))
        .unwrap();
    let sent = run(&mut host, 5_000, 1_000_000);
    assert_eq!(sent, [3, 3], "a v2 report per group");
    let visited = host.records_visited() - before;
    assert!(
        (4..=8).contains(&visited),
        "{visited} records visited: 2 groups switched to v2, queried, switched back"
    );
    assert_eq!(
        host.interfaces(t(1_000_000))[3].igmp_version,
        membership::IgmpVersion::V3
    );
}
