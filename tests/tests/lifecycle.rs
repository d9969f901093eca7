//! Stopping and restarting the daemon: clean leave on SIGTERM, memberships
//! carried over a restart by the state file.

use tests::*;

#[test]
fn sigterm_leaves_every_group_removes_the_socket_and_exits_0() {
    let Some(ns) = Netns::new("sigterm") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let mut capture = ns.capture(TUN);
    let mut daemon = ns.spawn_daemon(&["--robustness", "1"]);
    let (v4, v6) = ("239.1.2.3", "ff12::1234");
    daemon.ctl_ok(&["join", v4]);
    daemon.ctl_ok(&["join", v6]);
    capture.wait_for("the reports for both groups", secs(8), |p| {
        !daemon_reports(p, ip(v4)).is_empty() && !daemon_reports(p, ip(v6)).is_empty()
    });
    daemon.wait_quiet(secs(3));

    let terminated_at = now();
    daemon.signal(Signal::SIGTERM);
    let status = daemon.wait_exit(secs(5));
    assert_eq!(
        status.code(),
        Some(0),
        "exit status {status}:\n{}",
        daemon.log()
    );
    assert!(
        !daemon.socket().exists(),
        "control socket {} left behind",
        daemon.socket().display()
    );
    let packets = capture.stop();
    assert_daemon_packets_well_formed(&packets);
    let after: Vec<&Pkt> = packets
        .iter()
        .filter(|p| p.from_daemon() && p.time >= terminated_at)
        .collect();
    assert!(
        after
            .iter()
            .any(|p| p.kind == "igmp-leave" && p.about(ip(v4))),
        "no Leave for {v4} on SIGTERM:\n{}",
        listing(&packets)
    );
    assert!(
        after
            .iter()
            .any(|p| p.kind == "mld-done" && p.about(ip(v6))),
        "no Done for {v6} on SIGTERM:\n{}",
        listing(&packets)
    );
    assert!(
        !after.iter().any(|p| p.is_report()),
        "reports after SIGTERM:\n{}",
        listing(&packets)
    );
}

#[test]
fn state_file_carries_memberships_over_a_restart() {
    let Some(ns) = Netns::new("state_file") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let state = ns.dir().join("state.json");
    let state_arg = state.to_str().unwrap();
    let groups = ["239.1.2.3", "ff12::1234"];
    {
        let mut first = ns.spawn_daemon(&["--state", state_arg, "--robustness", "1"]);
        for group in groups {
            first.ctl_ok(&["join", group]);
        }
        first.wait_quiet(secs(3));
        // SIGINT must be as clean as SIGTERM.
        first.signal(Signal::SIGINT);
        let status = first.wait_exit(secs(5));
        assert_eq!(
            status.code(),
            Some(0),
            "exit status {status}:\n{}",
            first.log()
        );
    }
    assert!(state.is_file(), "no state file at {}", state.display());

    let mut capture = ns.capture(TUN);
    let restarted_at = now();
    let second = ns.spawn_daemon(&["--state", state_arg, "--robustness", "1"]);
    for group in groups {
        let entry = second
            .group(group)
            .unwrap_or_else(|| panic!("{group} not restored: {}", second.show()));
        assert!(entry["users"].as_u64() >= Some(1), "{entry}");
    }
    let packets = capture.wait_for("fresh reports for both groups", secs(8), |p| {
        groups.iter().all(|g| {
            daemon_reports(p, ip(g))
                .iter()
                .any(|r| r.time >= restarted_at)
        })
    });
    assert_daemon_packets_well_formed(&packets);
    second.wait_quiet(secs(3));
    assert_daemon_packets_well_formed(&capture.stop());
}

/// `--tun NAME` for a device that does not exist yet: the daemon creates it (a TUN that lives
/// as long as the daemon holds it) and serves on it. Until the kernel side sets the link up,
/// what the daemon sends is dropped and counted, not fatal; once it is up, reports flow. The
/// device goes away with the daemon.
#[test]
fn a_missing_tun_device_is_created_and_served() {
    let Some(ns) = Netns::new("create_tun") else {
        return;
    };
    let socket = ns.dir().join("ctl.sock");
    let socket_arg = socket.to_str().expect("UTF-8 temp dir").to_string();
    let args = [
        "--tun",
        "tmcnew0",
        "--ipv4",
        DAEMON_V4_CIDR,
        "--igmp-version",
        "2",
        "--control",
        &socket_arg,
    ];
    let mut daemon = ns.spawn_daemon_with(&args, &socket);
    let link = ns.ip(&["-d", "link", "show", "tmcnew0"]);
    assert!(link.contains("tun"), "not a TUN device: {link}");
    let show = daemon.show();
    assert_eq!(show["interfaces"][0]["iface"], "tmcnew0", "{show}");
    daemon.ctl_ok(&["join", "239.9.9.9"]);
    assert_eq!(daemon.group("239.9.9.9").expect("listed")["users"], 1);
    must_wait(
        "the report dropped on the down link to be counted",
        secs(3),
        || daemon.counter("tun_tx_link_down") >= 1,
    );
    assert!(daemon.ctl(&["ping"]).status.success(), "{}", daemon.log());

    ns.ip(&["addr", "add", KERNEL_V4_CIDR, "dev", "tmcnew0"]);
    ns.ip(&["link", "set", "tmcnew0", "up"]);
    let mut capture = ns.capture("tmcnew0");
    let sent = daemon.counter("tun_tx_packets");
    daemon.ctl_ok(&["join", "239.9.9.10"]);
    capture.wait_for("the report for 239.9.9.10", secs(8), |p| {
        !daemon_reports(p, ip("239.9.9.10")).is_empty()
    });
    assert!(daemon.counter("tun_tx_packets") > sent);
    assert_daemon_packets_well_formed(&capture.stop());
    daemon.signal(Signal::SIGTERM);
    assert_eq!(
        daemon.wait_exit(secs(5)).code(),
        Some(0),
        "{}",
        daemon.log()
    );
    let gone = ns.exec(&["ip", "link", "show", "tmcnew0"]);
    assert!(
        !gone.status.success(),
        "the device outlived the daemon that made it"
    );
}
