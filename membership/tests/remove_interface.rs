//! `Host::remove_interface` in virtual time: an emulated host removed from a link leaves its
//! groups first, then its interface goes with its records, index entries and timers; the
//! other interfaces are not touched.

mod common;

use std::net::Ipv4Addr;

use common::{addressed, host_on, igmp_general_query, ip, t, ALL_HOSTS, IF, ROUTER4};
use membership::wire::igmp::IgmpRepr;
use membership::wire::ip::build_ipv4;
use membership::{Config, Host, Transmit};

const GONE: u32 = 2;

fn two_interfaces() -> Host {
    let mut host = host_on(Config::default(), 7);
    host.add_interface(GONE, addressed("10.99.0.3", "fe80::3"))
        .unwrap();
    host
}

/// Every transmit due up to `until` ms, in deadline order.
fn run(host: &mut Host, from: u64, until: u64) -> Vec<Transmit> {
    let mut sent = Vec::new();
    host.handle_timeout(t(from));
    while let Some(tx) = host.poll_transmit() {
        sent.push(tx);
    }
    while let Some(at) = host.poll_timeout() {
        if at.as_millis() > until {
            break;
        }
        host.handle_timeout(at);
        while let Some(tx) = host.poll_transmit() {
            sent.push(tx);
        }
    }
    sent
}

fn query(q: IgmpRepr) -> Vec<u8> {
    build_ipv4(ROUTER4, ALL_HOSTS, &q.to_bytes())
}

/// A v3 General Query with a 10 s Max Resp Time: a pending response on every interface.
fn general_query() -> Vec<u8> {
    igmp_general_query(100)
}

#[test]
fn a_host_leaves_then_its_interface_goes_and_the_others_stay() {
    let mut host = two_interfaces();
    for iface in [IF, GONE] {
        host.join(iface, ip("239.1.1.1"), t(0)).unwrap();
        host.join(iface, ip("ff12::1"), t(0)).unwrap();
    }
    host.join(GONE, ip("239.1.1.2"), t(0)).unwrap();
    run(&mut host, 0, 5_000);
    host.handle_packet(GONE, &general_query(), t(5_000))
        .unwrap();
    host.handle_packet(IF, &general_query(), t(5_000)).unwrap();
    assert_eq!(host.interface_group_records(GONE), 3);

    host.leave_interface(GONE, t(5_001));
    // The leaves go out (TO_IN({}) and its retransmission within 1 s) ...
    let sent = run(&mut host, 5_001, 7_000);
    assert!(sent.iter().any(|tx| tx.iface() == GONE));
    assert_eq!(host.interface_group_records(GONE), 0);
    // ... then the interface goes, with its pending General Query response.
    host.remove_interface(GONE).unwrap();
    assert!(host.remove_interface(GONE).is_err(), "removed twice");
    assert!(host.join(GONE, ip("239.1.1.3"), t(7_000)).is_err());
    assert_eq!(host.group_records(), 2);
    let later = run(&mut host, 7_000, 300_000);
    assert!(later.iter().all(|tx| tx.iface() == IF), "{later:?}");
    // The other interface answers its query (inside its 10 s) and stays joined.
    assert!(sent.iter().chain(&later).any(|tx| tx.iface() == IF));
    let groups: Vec<_> = host.groups(t(300_000)).iter().map(|g| g.iface).collect();
    assert_eq!(groups, [IF, IF]);
}

#[test]
fn removing_an_interface_cancels_every_timer_of_it() {
    let mut host = two_interfaces();
    host.join(GONE, ip("239.1.1.1"), t(0)).unwrap();
    host.join(GONE, ip("ff12::1"), t(0)).unwrap();
    // An IGMPv2 querier (Older Version Querier Present, minutes), a report timer, the v3
    // retransmissions still due: all pending at once.
    let v2 = query(IgmpRepr::Query {
        max_resp_code: 100,
        group: Ipv4Addr::UNSPECIFIED,
    });
    host.handle_packet(GONE, &v2, t(10)).unwrap();
    assert!(host.poll_timeout().is_some());
    host.remove_interface(GONE).unwrap();
    assert_eq!(host.group_records(), 0);
    assert_eq!(
        host.poll_timeout(),
        None,
        "a timer of the removed interface is left"
    );
    let mut sent = Vec::new();
    host.handle_timeout(t(1_000_000));
    while let Some(tx) = host.poll_transmit() {
        sent.push(tx);
    }
    assert!(sent.is_empty(), "{sent:?}");
    assert!(host.groups(t(1_000_000)).is_empty());
}
