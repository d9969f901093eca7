//! Owners on the wire: `tunmcastctl filter GROUP --owner NAME` changes one owner's filter in
//! one step, as setsourcefilter(3) does for a socket, and tshark judges the reports.
//!
//! INCLUDE (A) → INCLUDE (B) must be one interface state change: one State Change Report with
//! ALLOW (B − A) and BLOCK (A − B), retransmitted Robustness − 1 times (RFC 9777 §6.1, RFC 9776
//! §5.1), never the BLOCK (A) then ALLOW (B) of a leave and a join. Another owner's request
//! and the anonymous joins stay as they were; a refused request sends nothing.

use tests::*;

/// The v3 Unsolicited Report Interval given to the daemon (RFC default 1 s).
const UNSOLICITED_MS: u64 = 400;

struct Family {
    report: &'static str,
    group: &'static str,
    /// s[0..3]: sources.
    s: [&'static str; 4],
}

const IGMP: Family = Family {
    report: "igmpv3-report",
    group: "232.1.1.1",
    s: ["10.99.0.77", "10.99.0.78", "10.99.0.79", "10.99.0.80"],
};

const MLD: Family = Family {
    report: "mldv2-report",
    group: "ff3e::1",
    s: [
        "2001:db8::77",
        "2001:db8::78",
        "2001:db8::79",
        "2001:db8::80",
    ],
};

/// One request and the records each of its reports must carry (sent twice: Robustness 2).
struct Step {
    ctl: Vec<String>,
    records: Vec<Record>,
}

fn owners_on_the_wire(test: &str, family: Family) {
    let Some(ns) = Netns::new(test) else { return };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let mut capture = ns.capture(TUN);
    let interval = UNSOLICITED_MS.to_string();
    let daemon = ns.spawn_daemon(&[
        "--igmp-version",
        "3",
        "--mld-version",
        "2",
        "--robustness",
        "2",
        "--v3-unsolicited-interval-ms",
        &interval,
    ]);
    let g = family.group;
    let s = family.s;
    let ctl = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let steps = [
        Step {
            ctl: ctl(&[
                "join",
                g,
                "--owner",
                "app1",
                "--include",
                &format!("{},{}", s[0], s[1]),
            ]),
            records: vec![Record::new("allow", g, &[s[0], s[1]])],
        },
        Step {
            ctl: ctl(&["join", g, "--owner", "app2", "--include", s[3]]),
            records: vec![Record::new("allow", g, &[s[3]])],
        },
        // The one-step change: INCLUDE {s0,s1} → INCLUDE {s1,s2} for app1.
        Step {
            ctl: ctl(&[
                "filter",
                g,
                "--owner",
                "app1",
                "--include",
                &format!("{},{}", s[1], s[2]),
            ]),
            records: vec![
                Record::new("allow", g, &[s[2]]),
                Record::new("block", g, &[s[0]]),
            ],
        },
        // app1 leaves: app2's s3 stays.
        Step {
            ctl: ctl(&["leave", g, "--owner", "app1"]),
            records: vec![Record::new("block", g, &[s[1], s[2]])],
        },
        // app2 switches to EXCLUDE {s0} in one step: a filter-mode change.
        Step {
            ctl: ctl(&["filter", g, "--owner", "app2", "--exclude", s[0]]),
            records: vec![Record::new("to_ex", g, &[s[0]])],
        },
    ];
    let mut started = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let at = now();
        started.push(at);
        let args: Vec<&str> = step.ctl.iter().map(String::as_str).collect();
        daemon.ctl_ok(&args);
        capture.wait_for_full(
            &format!("the reports of `{}`", step.ctl.join(" ")),
            secs(8),
            |p| {
                p.iter()
                    .filter(|p| p.from_daemon() && p.is_report() && p.time >= at)
                    .count()
                    >= 2
            },
        );
        daemon.wait_v3_quiet(secs(3));
        if i == 2 {
            // show lists each owner with its own filter.
            let entry = daemon.group(g).expect("group listed");
            let owned: Vec<(String, String, usize)> = entry["requests"]
                .as_array()
                .expect("requests")
                .iter()
                .map(|r| {
                    (
                        r["owner"].as_str().unwrap_or("-").to_string(),
                        r["mode"].as_str().unwrap().to_string(),
                        r["sources"].as_array().unwrap().len(),
                    )
                })
                .collect();
            assert_eq!(
                owned,
                [
                    ("app1".into(), "include".into(), 2),
                    ("app2".into(), "include".into(), 1)
                ],
                "{entry}"
            );
            let table = daemon.ctl_ok(&["show"]);
            assert!(table.contains("[app1: include {"), "{table}");
        }
    }
    // Refused: nothing changes, nothing is sent.
    let refused_at = now();
    for bad in [
        vec!["filter", g, "--owner", "app9", "--include", ""],
        vec!["leave", g, "--owner", "app1"],
        vec!["join", g, "--owner", "app2"],
        vec!["filter", g, "--owner", "two words", "--exclude", ""],
    ] {
        let out = daemon.ctl(&bad);
        assert!(!out.status.success(), "`{}` was accepted", bad.join(" "));
        assert!(
            !out.stderr.is_empty(),
            "`{}`: no error message",
            bad.join(" ")
        );
    }
    std::thread::sleep(ms(2 * UNSOLICITED_MS));
    let packets = capture.stop_full();
    assert_daemon_packets_well_formed(&packets);
    assert!(
        !packets
            .iter()
            .any(|p| p.from_daemon() && p.is_report() && p.time >= refused_at),
        "a refused request sent a report:\n{}",
        full_listing(&packets)
    );
    for (i, step) in steps.iter().enumerate() {
        let until = started.get(i + 1).copied().unwrap_or(refused_at);
        let sent: Vec<&Pkt> = packets
            .iter()
            .filter(|p| p.from_daemon() && p.is_report() && p.time >= started[i] && p.time < until)
            .collect();
        assert_eq!(
            sent.len(),
            2,
            "`{}`: want one report and one retransmission:\n{}",
            step.ctl.join(" "),
            full_listing(&packets)
        );
        for p in sent {
            assert_eq!(p.kind, family.report, "{}", p.full_line());
            assert_eq!(
                p.records(),
                step.records,
                "`{}`:\n{}",
                step.ctl.join(" "),
                full_listing(&packets)
            );
        }
    }
}

#[test]
fn igmpv3_owner_filter_changes_are_one_report() {
    owners_on_the_wire("owners_igmp", IGMP);
}

#[test]
fn mldv2_owner_filter_changes_are_one_report() {
    owners_on_the_wire("owners_mld", MLD);
}

/// `--solicited-node`: the host joins and reports ff02::1:ff00:2, the solicited-node group of
/// its fe80::2 (RFC 4861 §7.2.1), as the owner `solicited-node`, and never ff02::1. An
/// anonymous leave of the group does not take it away.
#[test]
fn solicited_node_group_is_joined_and_reported() {
    let Some(ns) = Netns::new("owners_solicited") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let mut capture = ns.capture(TUN);
    let daemon = ns.spawn_daemon(&["--mld-version", "2", "--solicited-node", "on"]);
    let group = "ff02::1:ff00:2";
    capture.wait_for_full("the solicited-node join", secs(8), |p| {
        p.iter().any(|p| {
            p.from_daemon() && p.is_report() && p.records().iter().any(|r| r.group == ip(group))
        })
    });
    let entry = daemon.group(group).expect("solicited-node group listed");
    assert_eq!(entry["requests"][0]["owner"], "solicited-node", "{entry}");
    let out = daemon.ctl(&["leave", group]);
    assert!(
        !out.status.success(),
        "an anonymous leave took the owned join"
    );
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(error.contains("held by owner solicited-node"), "{error}");
    daemon.wait_v3_quiet(secs(3));
    let packets = capture.stop_full();
    assert_daemon_packets_well_formed(&packets);
    let records: Vec<Record> = packets
        .iter()
        .filter(|p| p.from_daemon() && p.is_report())
        .flat_map(|p| p.records())
        .collect();
    assert_eq!(
        records,
        vec![Record::new("to_ex", group, &[]); 2],
        "{}",
        full_listing(&packets)
    );
}

/// A listener's join is its own request (owner `listen-N`): two listeners INCLUDE {s0} and
/// one anonymous join INCLUDE {s0, s1}; one listener closing changes no interface state and
/// sends nothing (before owners, the leave took s0 from every INCLUDE join and gave it back:
/// BLOCK then ALLOW), and a client cannot take a listener's name.
#[test]
fn a_listener_closing_changes_no_other_join() {
    let Some(ns) = Netns::new("owners_listeners") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let mut capture = ns.capture(TUN);
    let daemon = ns.spawn_daemon(&["--igmp-version", "3", "--v3-unsolicited-interval-ms", "200"]);
    let (g, s) = (IGMP.group, IGMP.s);
    let first = daemon.listen(&[g, "--include", s[0]]);
    let _second = daemon.listen(&[g, "--include", s[0]]);
    daemon.ctl_ok(&["join", g, "--include", &format!("{},{}", s[0], s[1])]);
    must_wait("two listeners", secs(5), || daemon.listeners().len() == 2);
    daemon.wait_v3_quiet(secs(3));
    let owners: Vec<String> = daemon.group(g).expect("listed")["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["owner"].as_str().unwrap_or("-").to_string())
        .collect();
    assert_eq!(
        owners.iter().filter(|o| o.starts_with("listen-")).count(),
        2,
        "{owners:?}"
    );
    let taken = daemon.ctl(&["filter", g, "--owner", &owners[0], "--include", ""]);
    assert!(
        !taken.status.success(),
        "a client changed a listener's join"
    );
    let closed_at = now();
    first.signal(Signal::SIGKILL);
    must_wait("one listener left", secs(5), || {
        daemon.listeners().len() == 1
    });
    daemon.wait_v3_quiet(secs(3));
    std::thread::sleep(ms(500));
    let entry = daemon.group(g).expect("still joined");
    assert_eq!(entry["users"], 2, "{entry}");
    let packets = capture.stop_full();
    assert!(
        !packets
            .iter()
            .any(|p| p.from_daemon() && p.is_report() && p.time >= closed_at),
        "closing one of two equal listeners sent a report:\n{}",
        full_listing(&packets)
    );
}

/// The `--state` journal keeps owners: after a restart each owner holds its own filter again,
/// and `filter` goes on from it in one step.
#[test]
fn owners_survive_a_restart() {
    let Some(ns) = Netns::new("owners_state") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let state = ns.dir().join("state");
    let state_arg = state.to_str().unwrap();
    let args = [
        "--state",
        state_arg,
        "--igmp-version",
        "3",
        "--v3-unsolicited-interval-ms",
        "200",
    ];
    let (g, s) = (IGMP.group, IGMP.s);
    let owned = |daemon: &Daemon| -> Vec<(String, String)> {
        let entry = daemon.group(g).expect("group listed");
        entry["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let sources: Vec<&str> = r["sources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap())
                    .collect();
                (
                    r["owner"].as_str().unwrap_or("-").to_string(),
                    format!("{} {}", r["mode"].as_str().unwrap(), sources.join(",")),
                )
            })
            .collect()
    };
    let before = {
        let mut first = ns.spawn_daemon(&args);
        first.ctl_ok(&["filter", g, "--owner", "app1", "--include", s[0]]);
        first.ctl_ok(&["join", g, "--include", s[1]]);
        first.ctl_ok(&["filter", g, "--owner", "app2", "--exclude", s[2]]);
        let before = owned(&first);
        first.signal(Signal::SIGTERM);
        first.wait_exit(secs(5));
        before
    };
    assert_eq!(
        before,
        [
            ("app1".to_string(), format!("include {}", s[0])),
            ("-".to_string(), format!("include {}", s[1])),
            ("app2".to_string(), format!("exclude {}", s[2])),
        ]
    );
    let second = ns.spawn_daemon(&args);
    let mut after = owned(&second);
    after.sort();
    let mut want = before.clone();
    want.sort();
    assert_eq!(after, want, "{}", second.show());
    second.ctl_ok(&["filter", g, "--owner", "app2", "--include", ""]);
    let after: Vec<String> = owned(&second).into_iter().map(|(o, _)| o).collect();
    assert!(!after.contains(&"app2".to_string()), "{after:?}");
}
