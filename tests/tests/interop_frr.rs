//! A real multicast router as the peer: FRR's pimd as IGMPv2 querier learns the
//! daemon's groups from its answers to queries, and forgets a group after the
//! daemon's Leave.

use tests::*;

#[test]
fn frr_pimd_learns_and_forgets_groups_from_the_daemon() {
    if !frr_pimd_can_run("frr_pimd") {
        return;
    }
    let Some(ns) = Netns::new("frr_pimd") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let mut capture = ns.capture(TUN);
    let daemon = ns.spawn_daemon(&["--robustness", "1"]);
    let (kept, left) = (ip("239.5.5.5"), ip("239.1.2.3"));
    daemon.ctl_ok(&["join", &kept.to_string()]);
    daemon.ctl_ok(&["join", &left.to_string()]);
    capture.wait_for("the unsolicited reports", secs(8), |p| {
        !daemon_reports(p, kept).is_empty() && !daemon_reports(p, left).is_empty()
    });
    daemon.wait_quiet(secs(3));

    // pimd starts after the unsolicited reports: it can only learn the groups
    // from the daemon's answers to its general queries.
    let Some(frr) = ns.frr() else { return };
    let querier_up = now();
    frr.igmp_querier(TUN, 2, 10, 5);
    must_wait("pimd to learn both groups", secs(10), || {
        let groups = frr.igmp_groups(TUN);
        groups.contains(&kept) && groups.contains(&left)
    });
    let learned = capture.peek();
    assert!(
        learned.iter().any(|p| p.is_query()
            && p.src == KERNEL_V4
            && p.time >= querier_up
            && p.group.is_some_and(|g| g.is_unspecified())),
        "no general query from pimd:\n{}",
        listing(&learned)
    );

    let left_at = now();
    daemon.ctl_ok(&["leave", &left.to_string()]);
    // pimd sends group-specific queries (last member query); nobody answers.
    must_wait("pimd to forget the left group", secs(8), || {
        !frr.igmp_groups(TUN).contains(&left)
    });
    assert!(frr.igmp_groups(TUN).contains(&kept), "pimd lost {kept}");
    let packets = capture.stop();
    assert_daemon_packets_well_formed(&packets);
    assert!(
        packets
            .iter()
            .any(|p| p.is_query() && p.src == KERNEL_V4 && p.about(left) && p.time >= left_at),
        "pimd sent no group-specific query for {left}:\n{}",
        listing(&packets)
    );
    assert!(
        !daemon_reports(&packets, left)
            .iter()
            .any(|p| p.time >= left_at),
        "the daemon answered for a group it left:\n{}",
        listing(&packets)
    );
}
