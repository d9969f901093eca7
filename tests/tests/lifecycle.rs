//! Stopping and restarting the daemon: clean leave on SIGTERM, memberships
//! carried over a restart by the state file.

use tests::*;

#[test]
fn sigterm_leaves_every_group_removes_the_socket_and_exits_0() {
    signal_leaves_every_group_removes_the_socket_and_exits_0("sigterm", Signal::SIGTERM);
}

/// Ctrl-\\ in a shell: as clean as SIGTERM (no core dump, every group left).
#[test]
fn sigquit_leaves_every_group_removes_the_socket_and_exits_0() {
    signal_leaves_every_group_removes_the_socket_and_exits_0("sigquit", Signal::SIGQUIT);
}

fn signal_leaves_every_group_removes_the_socket_and_exits_0(test: &str, signal: Signal) {
    let Some(ns) = Netns::new(test) else {
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

    let signalled_at = now();
    daemon.signal(signal);
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
    assert_left_on_the_wire(&capture.stop(), signalled_at, &[v4], &[v6]);
}

/// Every IPv4 group got a Leave and every IPv6 group a Done after `since`, and no report went
/// out after it.
fn assert_left_on_the_wire(packets: &[Pkt], since: f64, v4: &[&str], v6: &[&str]) {
    assert_daemon_packets_well_formed(packets);
    let after: Vec<&Pkt> = packets
        .iter()
        .filter(|p| p.from_daemon() && p.time >= since)
        .collect();
    for (groups, kind) in [(v4, "igmp-leave"), (v6, "mld-done")] {
        for group in groups {
            assert!(
                after.iter().any(|p| p.kind == kind && p.about(ip(group))),
                "no {kind} for {group}:\n{}",
                listing(packets)
            );
        }
    }
    assert!(
        !after.iter().any(|p| p.is_report()),
        "reports after the signal:\n{}",
        listing(packets)
    );
}

/// SIGHUP, which a shell sends its jobs when the terminal closes, must not end the daemon: it
/// keeps its groups, answers, sends nothing, and re-reads its --config file (the log level
/// changes at once; a bad file is refused and changes nothing). SIGTERM afterwards still
/// leaves every group and exits 0.
#[test]
fn sighup_keeps_the_groups_and_reloads_the_log_level() {
    let Some(ns) = Netns::new("sighup") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let config = ns.dir().join("tunmcastd.toml");
    std::fs::write(&config, "log_level = \"info\"\nrobustness = 1\n").unwrap();
    let config_arg = config.to_str().unwrap();
    let mut capture = ns.capture(TUN);
    let mut daemon = ns.spawn_daemon(&["--config", config_arg]);
    let (v4, v6) = ("239.1.2.3", "ff12::1234");
    daemon.ctl_ok(&["join", v4]);
    daemon.ctl_ok(&["join", v6]);
    capture.wait_for("the reports for both groups", secs(8), |p| {
        !daemon_reports(p, ip(v4)).is_empty() && !daemon_reports(p, ip(v6)).is_empty()
    });
    daemon.wait_quiet(secs(3));
    assert!(
        !daemon.log().contains("DEBUG"),
        "debug lines at log level info:\n{}",
        daemon.log()
    );

    // 1. The file unchanged: nothing changes, nothing is sent.
    let hup_at = now();
    daemon.signal(Signal::SIGHUP);
    must_wait("the reload to be logged", secs(3), || {
        daemon.log().contains("SIGHUP: re-read")
    });
    std::thread::sleep(secs(2));
    assert!(
        daemon.process.try_status().is_none(),
        "SIGHUP ended the daemon:\n{}",
        daemon.log()
    );
    daemon.ctl_ok(&["ping"]);
    for group in [v4, v6] {
        let entry = daemon
            .group(group)
            .unwrap_or_else(|| panic!("{group} lost on SIGHUP: {}", daemon.show()));
        assert_eq!(entry["users"], 1, "{entry}");
    }
    let quiet: Vec<Pkt> = capture
        .peek()
        .into_iter()
        .filter(|p| p.from_daemon() && p.time >= hup_at)
        .collect();
    assert!(
        quiet.is_empty(),
        "the daemon sent packets on SIGHUP:\n{}",
        listing(&quiet)
    );

    // 2. A new log level takes effect at once.
    std::fs::write(&config, "log_level = \"debug\"\nrobustness = 1\n").unwrap();
    daemon.signal(Signal::SIGHUP);
    must_wait("the new log level to be logged", secs(3), || {
        daemon.log().contains("log level \"debug\"")
    });
    daemon.ctl_ok(&["join", "239.9.9.9"]);
    must_wait("a debug line after the reload", secs(3), || {
        daemon.log().contains("DEBUG")
    });

    // 3. A bad file is refused with its line, and the running configuration is kept.
    std::fs::write(&config, "log_level = \"info\"\nrobustness = 0\n").unwrap();
    daemon.signal(Signal::SIGHUP);
    must_wait("the refusal to be logged", secs(3), || {
        daemon.log().contains("tunmcastd.toml:2: `robustness`")
    });
    assert!(
        daemon.log().contains("the running configuration is kept"),
        "{}",
        daemon.log()
    );
    daemon.ctl_ok(&["ping"]);
    daemon.wait_quiet(secs(5));

    let terminated_at = now();
    daemon.signal(Signal::SIGTERM);
    let status = daemon.wait_exit(secs(5));
    assert_eq!(status.code(), Some(0), "{status}:\n{}", daemon.log());
    assert_left_on_the_wire(&capture.stop(), terminated_at, &[v4, "239.9.9.9"], &[v6]);
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
