//! Unsolicited reports on join (and their repeat), Leave / Done on leave: what
//! goes over the wire, dissected by tshark.

use tests::*;

/// Join, see the report and its one repeat, leave, see the Leave / Done.
/// `report_kind`/`leave_kind` are [`Pkt::kind`] names.
fn join_report_repeat_leave(test: &str, group: &str, report_kind: &str, leave_kind: &str) {
    let Some(ns) = Netns::new(test) else { return };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let mut capture = ns.capture(TUN);
    // Default robustness 2: the report plus one repeat, within the unsolicited
    // interval (10 s by default, shortened here).
    let daemon = ns.spawn_daemon(&["--unsolicited-interval-ms", "2000"]);
    let g = ip(group);

    let joined_at = now();
    assert_eq!(
        daemon.ctl_ok(&["join", group]),
        format!("joined {group} on {TUN} (users 1)\n")
    );
    let reports_of = |p: &[Pkt]| {
        p.iter()
            .filter(|p| p.from_daemon() && p.kind == report_kind && p.about(g))
            .count()
    };
    capture.wait_for(&format!("two {report_kind}s for {group}"), secs(5), |p| {
        reports_of(p) >= 2
    });
    daemon.wait_quiet(secs(3));
    let entry = daemon.group(group).expect("joined group is listed");
    assert_eq!(entry["last_reporter"], true, "{entry}");

    let left_at = now();
    assert_eq!(
        daemon.ctl_ok(&["leave", group]),
        format!("left {group} on {TUN} (users 0)\n")
    );
    capture.wait_for(&format!("{leave_kind} for {group}"), secs(8), |p| {
        p.iter()
            .any(|p| p.from_daemon() && p.kind == leave_kind && p.about(g))
    });
    assert!(
        daemon.group(group).is_none(),
        "{group} still listed after leave"
    );
    let packets = capture.stop();
    assert_daemon_packets_well_formed(&packets);

    let reports: Vec<&Pkt> = packets
        .iter()
        .filter(|p| p.from_daemon() && p.is_report())
        .collect();
    assert_eq!(
        reports.len(),
        2,
        "expected exactly the report and its repeat (robustness 2):\n{}",
        listing(&packets)
    );
    assert!(
        reports.iter().all(|p| p.kind == report_kind && p.about(g)),
        "{}",
        listing(&packets)
    );
    let (first, repeat) = (reports[0], reports[1]);
    assert!(
        first.time - joined_at < 1.0,
        "first report {:.3} s after join (want < 1 s)",
        first.time - joined_at
    );
    let gap = repeat.time - first.time;
    assert!(
        gap > 0.0 && gap <= 2.0 + SLACK,
        "repeat {gap:.3} s after the first report (want within the 2 s unsolicited interval)"
    );
    let leaves: Vec<&Pkt> = packets
        .iter()
        .filter(|p| p.from_daemon() && p.kind == leave_kind)
        .collect();
    assert!(!leaves.is_empty(), "{}", listing(&packets));
    assert!(
        leaves.iter().all(|p| p.about(g) && p.time >= left_at),
        "{}",
        listing(&packets)
    );
    assert!(
        reports.iter().all(|p| p.time < left_at),
        "report after leave:\n{}",
        listing(&packets)
    );
}

#[test]
fn igmpv2_join_reports_twice_and_leave_goes_to_all_routers() {
    join_report_repeat_leave(
        "igmpv2_join_leave",
        "239.1.2.3",
        "igmpv2-report",
        "igmp-leave",
    );
}

#[test]
fn mldv1_join_reports_twice_and_done_goes_to_all_routers() {
    join_report_repeat_leave("mldv1_join_leave", "ff12::1234", "mld-report", "mld-done");
}

/// Groups the RFCs forbid reporting are never reported, even when joined:
/// 224.0.0.0/24 (RFC 2236 §6), ff02::1 and scopes 0 and 1 (RFC 2710 §5).
#[test]
fn link_scope_all_nodes_and_reserved_scopes_are_never_reported() {
    let Some(ns) = Netns::new("never_reported") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let mut capture = ns.capture(TUN);
    let daemon = ns.spawn_daemon(&["--robustness", "1"]);
    // A reportable group on each family shows that reporting works at all.
    let markers = ["239.7.7.7", "ff12::7"];
    let never = ["224.0.0.251", "ff02::1", "ff11::1", "ff10::1"];
    for group in never.iter().chain(&markers) {
        // Refusing the join is as good as never reporting it; the status is not checked.
        daemon.ctl(&["join", group]);
    }
    capture.wait_for("reports for 239.7.7.7 and ff12::7", secs(8), |p| {
        markers.iter().all(|g| !daemon_reports(p, ip(g)).is_empty())
    });
    daemon.wait_quiet(secs(3));
    for group in never.iter().chain(&markers) {
        daemon.ctl(&["leave", group]);
    }
    capture.wait_for("Leave and Done for the marker groups", secs(8), |p| {
        markers.iter().all(|g| {
            p.iter().any(|p| {
                p.from_daemon()
                    && p.about(ip(g))
                    && (p.kind == "igmp-leave" || p.kind == "mld-done")
            })
        })
    });
    let packets = capture.stop();
    assert_daemon_packets_well_formed(&packets);
    for group in never {
        let g = ip(group);
        assert!(
            !packets.iter().any(|p| p.from_daemon() && p.about(g)),
            "{group} must never be reported or left:\n{}",
            listing(&packets)
        );
    }
}
