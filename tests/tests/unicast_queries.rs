//! Queries sent to the host's own unicast address (TAHI MLDv2 2.4.a and its IGMP twin):
//! RFC 9777 §5.1.15 and RFC 9776 §4.1.12 say a host MUST accept and process a query whose
//! destination is any address assigned to the interface. Written onto the link from the
//! kernel side, each is answered like one to all-systems.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use membership::wire::igmp::IgmpRepr;
use membership::wire::ip::{build_ipv4, build_ipv6};
use membership::wire::mld::MldRepr;
use tests::*;

#[test]
fn queries_to_our_unicast_addresses_are_answered() {
    let Some(ns) = Netns::new("unicast_queries") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let mut capture = ns.capture(TUN);
    // IGMPv2 / MLDv1 (the harness's default), Robustness 1: one report per join.
    let daemon = ns.spawn_daemon(&["--robustness", "1"]);
    let (g4, g6) = ("239.1.2.3", "ff12::1234");
    daemon.ctl_ok(&["join", g4]);
    daemon.ctl_ok(&["join", g6]);
    capture.wait_for("the joins' reports", secs(8), |p| {
        !daemon_reports(p, ip(g4)).is_empty() && !daemon_reports(p, ip(g6)).is_empty()
    });
    daemon.wait_quiet(secs(3));

    let sent_at = now();
    let igmp = IgmpRepr::Query {
        max_resp_code: 10, // 1 s
        group: Ipv4Addr::UNSPECIFIED,
    };
    ns.inject_raw(TUN, &build_ipv4(KERNEL_V4, DAEMON_V4, &igmp.to_bytes()));
    let kernel_ll: Ipv6Addr = KERNEL_LL.parse().unwrap();
    let mld = MldRepr::Query {
        max_resp_delay: 1000,
        group: Ipv6Addr::UNSPECIFIED,
    };
    let mld = mld.to_bytes(&kernel_ll, &DAEMON_LL);
    ns.inject_raw(TUN, &build_ipv6(kernel_ll, DAEMON_LL, &mld));
    let answered = |p: &[Pkt], g: &str| daemon_reports(p, ip(g)).iter().any(|r| r.time >= sent_at);
    must_wait("both queries answered", secs(5), || {
        daemon.counter("igmp_rcv_queries") >= 1 && daemon.counter("mld_rcv_queries") >= 1
    });
    capture.wait_for("an answer for each group", secs(5), |p| {
        answered(p, g4) && answered(p, g6)
    });
    std::thread::sleep(secs_f64(1.0 + SLACK));
    let packets = capture.stop();
    assert_daemon_packets_well_formed(&packets);
    assert_eq!(daemon.counter("drop_igmp_query_bad_destination"), 0);
    assert_eq!(daemon.counter("drop_mld_query_bad_destination"), 0);
    let reports: Vec<IpAddr> = packets
        .iter()
        .filter(|p| p.from_daemon() && p.is_report() && p.time >= sent_at)
        .map(|p| p.dst)
        .collect();
    assert_eq!(
        reports.len(),
        2,
        "one answer per group:\n{}",
        full_listing(&packets)
    );
}
