//! The namespace's own kernel as a second host on the link: a socket in the namespace joins
//! groups on the TUN's kernel side, and the kernel's IGMP/MLD sends its reports to whatever
//! holds the TUN, i.e. to the daemon.
//!
//! - Its v1/v2 (MLDv1) reports suppress a report the daemon is delaying.
//! - Its IGMPv3 / MLDv2 reports are counted and change nothing on a v2 / MLDv1 daemon.
//! - A query from mcquerier reaches both hosts, and both answer it, in every version.
//!
//! Per LAB-NOTES the kernel never lets what the daemon writes suppress its own reports on a
//! TUN, so nothing here tests that direction; and a v1/v2 query leaves the kernel in a
//! compatibility mode for minutes, so every test has its own namespace.

use std::net::IpAddr;

use serde_json::Value;
use tests::*;

/// Fixed seed for the daemon's random report delays, so that its first draw (a query's
/// delay, the only draw with `--robustness 1`) is long enough for the kernel to speak first.
/// The tests check the drawn delay and say so if a change in the core makes it too short (as
/// drawing from [0, max) instead of [0, max] did to seed 7).
const SEED: &str = "12";

/// How each version makes the kernel report first while the daemon is delaying.
struct Suppression {
    test: &'static str,
    group: &'static str,
    /// sysctl selecting the kernel's version, and its value.
    force: (&'static str, &'static str),
    /// mcquerier arguments for the query (a long Max Resp Time).
    query: &'static [&'static str],
    /// [`Pkt::kind`] of the kernel's report.
    kernel_report: &'static str,
    /// The daemon's counter of such reports.
    counter: &'static str,
    /// The daemon's state for the group after hearing it.
    state_after: &'static str,
}

/// Joins the group on the daemon, has a querier ask for it with a long Max Resp Time, then
/// has the kernel join the same group while the daemon's report is still pending: the
/// kernel's unsolicited report goes out at once and suppresses the daemon's.
fn kernel_report_suppresses_ours(s: Suppression) {
    let Some(ns) = Netns::new(s.test) else { return };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    ns.sysctl(s.force.0, s.force.1);
    let mut capture = ns.capture(TUN);
    let daemon = ns.spawn_daemon(&["--robustness", "1", "--seed", SEED]);
    let group = ip(s.group);
    daemon.ctl_ok(&["join", s.group]);
    capture.wait_for("the daemon's unsolicited report", secs(8), |p| {
        !daemon_reports(p, group).is_empty()
    });
    daemon.wait_quiet(secs(3));
    let sent_before = daemon.stats();

    // The query reaches the kernel too, but it is no member yet: only the daemon delays.
    let queried_at = now();
    let mut query = vec!["--dev", TUN, "--group", s.group, "--count", "1"];
    query.extend_from_slice(s.query);
    query.extend_from_slice(&["--listen-ms", "0"]);
    let mut querier = ns.querier(&query);
    querier.wait_exit(secs(5));
    let mut entry = Value::Null;
    must_wait("the daemon to delay its answer", secs(3), || {
        entry = daemon.group(s.group).expect("group listed");
        entry["state"] == "delaying"
    });
    let left_ms = entry["timer_ms"].as_u64().unwrap_or(0);
    assert!(
        left_ms >= 2_000,
        "the daemon drew only {left_ms} ms with --seed {SEED}: pick a seed whose first draw \
         leaves the kernel time to report first ({entry})"
    );

    // Joining now makes the kernel report at once, long before the daemon's timer.
    let kernel_joined_at = now();
    let _kernel = ns.kernel_join(TUN, &[s.group]);
    must_wait(
        &format!("the daemon to hear the kernel ({})", s.counter),
        secs(3),
        || daemon.counter(s.counter) >= 1,
    );
    let entry = daemon.group(s.group).expect("group listed");
    assert_eq!(entry["state"], s.state_after, "{entry}");
    assert_eq!(entry["last_reporter"], false, "{entry}");
    assert!(
        entry["timer_ms"].is_null(),
        "report still scheduled: {entry}"
    );

    // Nothing from the daemon for this query round; its report timer is gone, so give the
    // capture a moment for anything already on its way.
    std::thread::sleep(ms(500));
    let packets = capture.stop();
    assert_daemon_packets_well_formed(&packets);
    let kernel_reports: Vec<&Pkt> = packets
        .iter()
        .filter(|p| !p.from_daemon() && p.is_report() && p.about(group))
        .collect();
    assert!(
        kernel_reports
            .iter()
            .any(|p| p.kind == s.kernel_report && p.time >= kernel_joined_at),
        "no {} from the kernel:\n{}",
        s.kernel_report,
        listing(&packets)
    );
    let ours: Vec<&Pkt> = daemon_reports(&packets, group)
        .into_iter()
        .filter(|p| p.time >= queried_at)
        .collect();
    assert!(
        ours.is_empty(),
        "the daemon answered although the kernel reported first:\n{}",
        listing(&packets)
    );
    let sent_after = daemon.stats();
    for counter in ["igmp_snd_reports", "mld_snd_reports"] {
        assert_eq!(sent_after[counter], sent_before[counter], "{counter}");
    }
    eprintln!(
        "{}: kernel's {} {:.3} s after its join; daemon had {left_ms} ms left, now {}",
        s.test,
        s.kernel_report,
        kernel_reports[0].time - kernel_joined_at,
        s.state_after
    );
}

#[test]
fn kernel_igmpv2_report_suppresses_the_daemons_pending_report() {
    kernel_report_suppresses_ours(Suppression {
        test: "k_v2_suppress",
        group: "239.1.1.1",
        force: ("net.ipv4.conf.tun0.force_igmp_version", "2"),
        query: &["--igmp", "2", "--max-resp-ms", "25500"],
        kernel_report: "igmpv2-report",
        counter: "igmp_rcv_v2_reports",
        state_after: "lazy",
    });
}

#[test]
fn kernel_mldv1_report_suppresses_the_daemons_pending_report() {
    kernel_report_suppresses_ours(Suppression {
        test: "k_mldv1_suppress",
        group: "ff12::1",
        force: ("net.ipv6.conf.tun0.force_mld_version", "1"),
        query: &["--mld", "1", "--max-resp-ms", "30000"],
        kernel_report: "mld-report",
        counter: "mld_rcv_reports",
        state_after: "lazy",
    });
}

/// An IGMPv1 report heard while delaying, with an IGMPv2 querier (no v1 querier): the seed's
/// SLEEPING_MEMBER, not LAZY: the v1 host cannot be counted on to take part in Leave logic.
#[test]
fn kernel_igmpv1_report_puts_the_daemons_pending_report_to_sleep() {
    kernel_report_suppresses_ours(Suppression {
        test: "k_v1_suppress",
        group: "239.1.1.2",
        force: ("net.ipv4.conf.tun0.force_igmp_version", "1"),
        query: &["--igmp", "2", "--max-resp-ms", "25500"],
        kernel_report: "igmpv1-report",
        counter: "igmp_rcv_v1_reports",
        state_after: "sleeping",
    });
}

/// The kernel (default IGMPv3 / MLDv2) joins groups the daemon does not have, then the
/// daemon's own groups while the daemon delays answers: its v3 reports are counted and
/// change nothing on a v2 / MLDv1 daemon (RFC 9776 §7.2, RFC 9777 §8.2 for hosts of the
/// older versions), neither the groups it holds nor a pending answer.
#[test]
fn kernel_v3_and_mldv2_reports_are_counted_and_change_nothing_on_a_v2_daemon() {
    let Some(ns) = Netns::new("k_v3_on_v2") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let mut capture = ns.capture(TUN);
    let daemon = ns.spawn_daemon(&["--robustness", "1", "--seed", SEED]);
    let (g4, g6) = ("239.1.1.1", "ff12::1");
    daemon.ctl_ok(&["join", g4]);
    daemon.ctl_ok(&["join", g6]);
    capture.wait_for("the daemon's unsolicited reports", secs(8), |p| {
        !daemon_reports(p, ip(g4)).is_empty() && !daemon_reports(p, ip(g6)).is_empty()
    });
    daemon.wait_quiet(secs(3));
    let before = daemon.stats();
    let groups_before = daemon.groups();
    for g in &groups_before {
        assert_eq!(g["state"], "idle", "{g}");
        assert_eq!(g["last_reporter"], true, "{g}");
    }
    let quiet_since = now();

    // Other groups: the kernel's state-change reports (two per join, robustness 2).
    let _other = ns.kernel_join(TUN, &["239.7.7.7", "ff12::7"]);
    let grew = |name: &str, by: u64| {
        daemon.counter(name) >= before[name].as_u64().expect("a counter") + by
    };
    must_wait(
        "the kernel's IGMPv3 and MLDv2 reports to be counted",
        secs(5),
        || grew("igmp_rcv_v3_reports", 2) && grew("mld_rcv_v2_reports", 2),
    );
    assert_eq!(
        daemon.groups(),
        groups_before,
        "v3 reports about other groups changed the daemon's groups"
    );
    let stats = daemon.stats();
    for counter in ["igmp_snd_reports", "mld_snd_reports", "igmp_rcv_ourreports"] {
        assert_eq!(stats[counter], before[counter], "{counter}");
    }
    assert_eq!(stats["mld_rcv_ourreports"], before["mld_rcv_ourreports"]);

    // Our groups, while the daemon delays its answers to queries only it hears (--inject):
    // a v2 / MLDv1 host ignores v3 reports, so its answers still go out.
    for args in [
        ["--igmp", "2", "--group", g4],
        ["--mld", "1", "--group", g6],
    ] {
        let mut query = vec!["--dev", TUN, "--inject", "--max-resp-ms", "5000"];
        query.extend_from_slice(&args);
        query.extend_from_slice(&["--count", "1", "--listen-ms", "0"]);
        ns.querier(&query).wait_exit(secs(5));
    }
    let mut pending = Vec::new();
    must_wait("both groups to be delaying", secs(3), || {
        pending = daemon.groups();
        pending.iter().all(|g| g["state"] == "delaying")
    });
    for g in &pending {
        let left = g["timer_ms"].as_u64().unwrap_or(0);
        assert!(
            left >= 1_500,
            "the daemon drew only {left} ms with --seed {SEED}: pick another seed ({g})"
        );
    }
    let v3_before = daemon.counter("igmp_rcv_v3_reports");
    let mld2_before = daemon.counter("mld_rcv_v2_reports");
    let kernel_joined_at = now();
    let _ours = ns.kernel_join(TUN, &[g4, g6]);
    must_wait(
        "the kernel's reports about our groups to be counted",
        secs(3),
        || {
            daemon.counter("igmp_rcv_v3_reports") > v3_before
                && daemon.counter("mld_rcv_v2_reports") > mld2_before
        },
    );
    for g in daemon.groups() {
        assert_eq!(g["state"], "delaying", "a v3 report suppressed ours: {g}");
        assert_eq!(g["last_reporter"], true, "{g}");
    }
    let packets = capture.wait_for("the daemon's answers", secs(7), |p| {
        [g4, g6].iter().all(|g| {
            daemon_reports(p, ip(g))
                .iter()
                .any(|r| r.time > kernel_joined_at)
        })
    });
    daemon.wait_quiet(secs(3));
    for g in daemon.groups() {
        assert_eq!(g["state"], "idle", "{g}");
        assert_eq!(g["last_reporter"], true, "{g}");
    }
    assert!(
        packets
            .iter()
            .filter(|p| p.from_daemon() && p.time >= quiet_since && p.time < kernel_joined_at)
            .count()
            == 0,
        "the daemon sent something on hearing v3 reports about other groups:\n{}",
        listing(&packets)
    );
    // Allow the kernel's retransmissions to finish before comparing counts.
    std::thread::sleep(ms(1200));
    let packets = capture.stop();
    assert_daemon_packets_well_formed(&packets);
    let kernel_v3 = packets
        .iter()
        .filter(|p| p.src == IpAddr::V4(KERNEL_V4) && p.kind == "igmpv3-report")
        .count() as u64;
    let kernel_mld2 = packets
        .iter()
        .filter(|p| p.src == ip(KERNEL_LL) && p.kind == "mldv2-report")
        .count() as u64;
    let stats = daemon.stats();
    let counted = |name: &str| stats[name].as_u64().unwrap() - before[name].as_u64().unwrap();
    assert_eq!(
        counted("igmp_rcv_v3_reports"),
        kernel_v3,
        "IGMPv3 reports on the wire vs counted:\n{}",
        listing(&packets)
    );
    assert_eq!(
        counted("mld_rcv_v2_reports"),
        kernel_mld2,
        "MLDv2 reports on the wire vs counted:\n{}",
        listing(&packets)
    );
    eprintln!("kernel sent {kernel_v3} IGMPv3 and {kernel_mld2} MLDv2 reports; all counted");
}

/// mcquerier's `--json --all` lines of type `kind` from `src` (dir "in": from the daemon,
/// "out": from the kernel side).
fn heard<'v>(lines: &'v [Value], dir: &str, src: IpAddr, kind: &str) -> Vec<&'v Value> {
    lines
        .iter()
        .filter(|l| {
            l["dir"] == dir
                && l["type"] == kind
                && l["src"].as_str().and_then(|s| s.parse().ok()) == Some(src)
        })
        .collect()
}

/// One query with mcquerier (through the namespace's IP stack, so both hosts hear it); its
/// `--json --all` lines once it has stopped listening.
fn query_both(ns: &Netns, version: [&str; 2]) -> Vec<Value> {
    let mut querier = ns.querier(&[
        "--dev",
        TUN,
        version[0],
        version[1],
        "--max-resp-ms",
        "1000",
        "--count",
        "1",
        "--listen-ms",
        "1500",
        "--json",
        "--all",
    ]);
    if querier.wait_exit(secs(6)).is_none() {
        panic!("mcquerier still listening after 6 s:\n{}", querier.output());
    }
    querier.heard()
}

/// The time mcquerier printed for `line`, checked against Max Resp Time (1 s).
fn within_max_resp(line: &Value) {
    let t = line["time"].as_f64().expect("a time");
    assert!(
        t <= 1.0 + SLACK,
        "answered {t:.3} s after the query: {line}"
    );
}

fn records_of(line: &Value) -> Vec<(String, String, Vec<String>)> {
    let mut records: Vec<(String, String, Vec<String>)> = line["records"]
        .as_array()
        .unwrap_or_else(|| panic!("no records: {line}"))
        .iter()
        .map(|r| {
            let mut sources: Vec<String> = r["sources"]
                .as_array()
                .expect("sources")
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect();
            sources.sort();
            (
                r["type"].as_str().unwrap().to_string(),
                r["group"].as_str().unwrap().to_string(),
                sources,
            )
        })
        .collect();
    records.sort();
    records
}

fn rec(kind: &str, group: &str, sources: &[&str]) -> (String, String, Vec<String>) {
    (
        kind.to_string(),
        group.to_string(),
        sources.iter().map(|s| s.to_string()).collect(),
    )
}

/// IGMPv2 and MLDv1 queries: the kernel (pushed into v2 / MLDv1 mode by them) and the daemon
/// (an IGMPv2 / MLDv1 host) each report their own group, within Max Resp Time.
#[test]
fn kernel_and_daemon_both_answer_igmpv2_and_mldv1_queries() {
    let Some(ns) = Netns::new("k_both_v2") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let mut capture = ns.capture(TUN);
    let daemon = ns.spawn_daemon(&["--robustness", "1"]);
    daemon.ctl_ok(&["join", "239.1.1.1"]);
    daemon.ctl_ok(&["join", "ff12::1"]);
    let _kernel = ns.kernel_join(TUN, &["239.9.9.9", "ff12::99"]);
    capture.wait_for("both hosts' unsolicited reports", secs(4), |p| {
        let kernel = |kind: &str| {
            p.iter()
                .filter(|p| !p.from_daemon() && p.kind == kind)
                .count()
                >= 2
        };
        kernel("igmpv3-report") && kernel("mldv2-report")
    });
    daemon.wait_quiet(secs(3));

    let igmp_at = now();
    let igmp = query_both(&ns, ["--igmp", "2"]);
    let mld_at = now();
    let mld = query_both(&ns, ["--mld", "1"]);
    let packets = capture.stop();
    assert_daemon_packets_well_formed(&packets);

    for (lines, kind, daemon_src, kernel_src, ours, theirs) in [
        (
            &igmp,
            "v2-report",
            IpAddr::V4(DAEMON_V4),
            IpAddr::V4(KERNEL_V4),
            "239.1.1.1",
            "239.9.9.9",
        ),
        (
            &mld,
            "mld-report",
            IpAddr::V6(DAEMON_LL),
            ip(KERNEL_LL),
            "ff12::1",
            "ff12::99",
        ),
    ] {
        let from_daemon = heard(lines, "in", daemon_src, kind);
        let from_kernel = heard(lines, "out", kernel_src, kind);
        assert_eq!(from_daemon.len(), 1, "daemon's answers: {lines:?}");
        assert_eq!(from_kernel.len(), 1, "kernel's answers: {lines:?}");
        assert_eq!(from_daemon[0]["group"], ours, "{lines:?}");
        assert_eq!(from_kernel[0]["group"], theirs, "{lines:?}");
        within_max_resp(from_daemon[0]);
        within_max_resp(from_kernel[0]);
    }
    // The same on the wire.
    for (since, until, kind, ours, theirs) in [
        (igmp_at, mld_at, "igmpv2-report", "239.1.1.1", "239.9.9.9"),
        (mld_at, f64::INFINITY, "mld-report", "ff12::1", "ff12::99"),
    ] {
        let answers: Vec<&Pkt> = packets
            .iter()
            .filter(|p| p.kind == kind && p.time >= since && p.time < until)
            .collect();
        assert!(
            answers.iter().any(|p| p.from_daemon() && p.about(ip(ours)))
                && answers
                    .iter()
                    .any(|p| !p.from_daemon() && p.about(ip(theirs))),
            "want {kind}s for {ours} (daemon) and {theirs} (kernel):\n{}",
            listing(&packets)
        );
    }
}

/// IGMPv3 and MLDv2 queries: the kernel (default versions) and the daemon (v3 mode, with a
/// source filter on one group) each send one current-state report, IS_EX / IS_IN records.
#[test]
fn kernel_and_daemon_both_answer_igmpv3_and_mldv2_queries() {
    let Some(ns) = Netns::new("k_both_v3") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let mut capture = ns.capture(TUN);
    let daemon = ns.spawn_daemon(&["--igmp-version", "3", "--mld-version", "2"]);
    daemon.ctl_ok(&["join", "239.1.1.1"]);
    daemon.ctl_ok(&["join", "232.1.1.1", "--include", "10.99.0.77"]);
    daemon.ctl_ok(&["join", "ff12::1"]);
    daemon.ctl_ok(&["join", "ff3e::1", "--include", "2001:db8::77"]);
    let _kernel = ns.kernel_join(TUN, &["239.9.9.9", "ff12::99"]);
    capture.wait_for("the kernel's unsolicited reports", secs(4), |p| {
        let kernel = |kind: &str| {
            p.iter()
                .filter(|p| !p.from_daemon() && p.kind == kind)
                .count()
                >= 2
        };
        kernel("igmpv3-report") && kernel("mldv2-report")
    });
    daemon.wait_v3_quiet(secs(5));
    let interface = daemon.interface();
    assert_eq!(interface["igmp_version"], 3, "{interface}");
    assert_eq!(interface["mld_version"], 2, "{interface}");

    let igmp_at = now();
    let igmp = query_both(&ns, ["--igmp", "3"]);
    daemon.wait_v3_quiet(secs(3));
    let mld_at = now();
    let mld = query_both(&ns, ["--mld", "2"]);
    daemon.wait_v3_quiet(secs(3));
    let packets = capture.stop_full();
    assert_daemon_packets_well_formed(&packets);

    let cases = [
        (
            &igmp,
            "v3-report",
            IpAddr::V4(DAEMON_V4),
            IpAddr::V4(KERNEL_V4),
            vec![
                rec("is_ex", "239.1.1.1", &[]),
                rec("is_in", "232.1.1.1", &["10.99.0.77"]),
            ],
            vec![rec("is_ex", "239.9.9.9", &[])],
        ),
        (
            &mld,
            "mld-v2-report",
            IpAddr::V6(DAEMON_LL),
            ip(KERNEL_LL),
            vec![
                rec("is_ex", "ff12::1", &[]),
                rec("is_in", "ff3e::1", &["2001:db8::77"]),
            ],
            vec![rec("is_ex", "ff12::99", &[])],
        ),
    ];
    for (lines, kind, daemon_src, kernel_src, mut ours, mut theirs) in cases {
        ours.sort();
        theirs.sort();
        let from_daemon = heard(lines, "in", daemon_src, kind);
        let from_kernel = heard(lines, "out", kernel_src, kind);
        assert_eq!(from_daemon.len(), 1, "daemon's answers: {lines:?}");
        assert_eq!(from_kernel.len(), 1, "kernel's answers: {lines:?}");
        assert_eq!(records_of(from_daemon[0]), ours, "{lines:?}");
        assert_eq!(records_of(from_kernel[0]), theirs, "{lines:?}");
        within_max_resp(from_daemon[0]);
        within_max_resp(from_kernel[0]);
    }

    // On the wire: one report each, to 224.0.0.22 / ff02::16, with the same records.
    for (since, until, kind, dst, ours, theirs) in [
        (
            igmp_at,
            mld_at,
            "igmpv3-report",
            ip("224.0.0.22"),
            vec![
                Record::new("is_in", "232.1.1.1", &["10.99.0.77"]),
                Record::new("is_ex", "239.1.1.1", &[]),
            ],
            vec![Record::new("is_ex", "239.9.9.9", &[])],
        ),
        (
            mld_at,
            f64::INFINITY,
            "mldv2-report",
            ip("ff02::16"),
            vec![
                Record::new("is_ex", "ff12::1", &[]),
                Record::new("is_in", "ff3e::1", &["2001:db8::77"]),
            ],
            vec![Record::new("is_ex", "ff12::99", &[])],
        ),
    ] {
        let answers: Vec<&Pkt> = packets
            .iter()
            .filter(|p| p.kind == kind && p.time >= since && p.time < until)
            .collect();
        let sorted = |p: &Pkt| {
            let mut r = p.records();
            r.sort_by_key(|r| r.group);
            r
        };
        let daemon_answers: Vec<&&Pkt> = answers.iter().filter(|p| p.from_daemon()).collect();
        let kernel_answers: Vec<&&Pkt> = answers.iter().filter(|p| !p.from_daemon()).collect();
        assert_eq!(daemon_answers.len(), 1, "{}", full_listing(&packets));
        assert_eq!(kernel_answers.len(), 1, "{}", full_listing(&packets));
        assert_eq!(
            sorted(daemon_answers[0]),
            ours,
            "{}",
            full_listing(&packets)
        );
        assert_eq!(
            sorted(kernel_answers[0]),
            theirs,
            "{}",
            full_listing(&packets)
        );
        assert!(
            answers.iter().all(|p| p.dst == dst),
            "{}",
            full_listing(&packets)
        );
    }
    // The daemon heard the kernel's v3 reports and counted them.
    assert!(daemon.counter("igmp_rcv_v3_reports") >= 3);
    assert!(daemon.counter("mld_rcv_v2_reports") >= 3);
}
