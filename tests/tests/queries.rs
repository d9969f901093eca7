//! Answers to queries from a querier on the kernel side of the link (mcquerier):
//! a general query gets exactly one report per joined group within Max Resp
//! Time, a group-specific query only one for that group.

use std::net::IpAddr;

use tests::*;

struct Family {
    querier: [&'static str; 2],
    report: &'static str,
    groups: [&'static str; 3],
    querier_src: IpAddr,
}

const MAX_RESP_S: f64 = 1.0;

/// The first query from `querier_src` at or after `since`, and the daemon's
/// reports from then on.
fn answers_after(packets: &[Pkt], since: f64, querier_src: IpAddr) -> Option<(&Pkt, Vec<&Pkt>)> {
    let query = packets
        .iter()
        .find(|p| p.is_query() && p.src == querier_src && p.time >= since)?;
    let reports = packets
        .iter()
        .filter(|p| p.from_daemon() && p.is_report() && p.time >= query.time)
        .collect();
    Some((query, reports))
}

/// Starts mcquerier for one query; keep the guard until the answers are in
/// (mcquerier may exit at once or linger to listen: either is fine).
fn start_query<'a>(ns: &'a Netns, family: &Family, extra: &[&str]) -> Querier<'a> {
    let mut args = vec!["--dev", TUN, family.querier[0], family.querier[1]];
    args.extend_from_slice(&["--max-resp-ms", "1000", "--count", "1", "--json"]);
    args.extend_from_slice(extra);
    ns.querier(&args)
}

fn general_and_group_specific(test: &str, family: Family) {
    let Some(ns) = Netns::new(test) else { return };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let mut capture = ns.capture(TUN);
    // Robustness 1: one unsolicited report per join and no repeats to wait out.
    let daemon = ns.spawn_daemon(&["--robustness", "1"]);
    for group in family.groups {
        daemon.ctl_ok(&["join", group]);
    }
    capture.wait_for("one unsolicited report per group", secs(8), |p| {
        family
            .groups
            .iter()
            .all(|g| !daemon_reports(p, ip(g)).is_empty())
    });
    daemon.wait_quiet(secs(3));

    // General query: every group answers once, within Max Resp Time.
    let general_at = now();
    let querier = start_query(&ns, &family, &[]);
    capture.wait_for("an answer for every group", secs(5), |p| {
        answers_after(p, general_at, family.querier_src).is_some_and(|(_, reports)| {
            family
                .groups
                .iter()
                .all(|g| reports.iter().any(|r| r.about(ip(g))))
        })
    });
    daemon.wait_quiet(secs(3));
    drop(querier);

    // Group-specific query: only that group answers.
    let specific = family.groups[1];
    let specific_at = now();
    let querier = start_query(&ns, &family, &["--group", specific]);
    capture.wait_for(&format!("an answer for {specific}"), secs(5), |p| {
        answers_after(p, specific_at, family.querier_src)
            .is_some_and(|(_, reports)| reports.iter().any(|r| r.about(ip(specific))))
    });
    daemon.wait_quiet(secs(3));
    drop(querier);
    let packets = capture.stop();
    assert_daemon_packets_well_formed(&packets);

    let (query, general) = answers_after(&packets, general_at, family.querier_src).unwrap();
    let general: Vec<&Pkt> = general
        .into_iter()
        .filter(|p| p.time < specific_at)
        .collect();
    assert!(
        query.group.is_some_and(|g| g.is_unspecified()),
        "not a general query: {query}"
    );
    assert_eq!(
        query.max_resp_ms,
        Some(1000),
        "mcquerier ignored --max-resp-ms: {query}"
    );
    for group in family.groups {
        let answers: Vec<&&Pkt> = general.iter().filter(|p| p.about(ip(group))).collect();
        assert_eq!(
            answers.len(),
            1,
            "{group}: want exactly one answer to the general query:\n{}",
            listing(&packets)
        );
        let delay = answers[0].time - query.time;
        assert!(
            delay <= MAX_RESP_S + SLACK,
            "{group} answered {delay:.3} s after the query (Max Resp Time 1 s)"
        );
    }
    assert_eq!(general.len(), family.groups.len(), "{}", listing(&packets));
    assert!(general.iter().all(|p| p.kind == family.report));

    let (query, answers) = answers_after(&packets, specific_at, family.querier_src).unwrap();
    assert_eq!(
        query.group,
        Some(ip(specific)),
        "not group-specific: {query}"
    );
    assert_eq!(query.max_resp_ms, Some(1000), "{query}");
    assert_eq!(
        answers.len(),
        1,
        "want one answer, for {specific} only:\n{}",
        listing(&packets)
    );
    assert!(answers[0].about(ip(specific)) && answers[0].kind == family.report);
    assert!(answers[0].time - query.time <= MAX_RESP_S + SLACK);

    // The daemon counted every query that went over the wire.
    let sent = packets
        .iter()
        .filter(|p| p.is_query() && p.src == family.querier_src)
        .count() as u64;
    let counter = if family.report == "igmpv2-report" {
        "igmp_rcv_queries"
    } else {
        "mld_rcv_queries"
    };
    assert_eq!(daemon.counter(counter), sent, "{counter}");
}

#[test]
fn igmpv2_queries_get_one_report_per_group_within_max_resp_time() {
    general_and_group_specific(
        "igmpv2_queries",
        Family {
            querier: ["--igmp", "2"],
            report: "igmpv2-report",
            groups: ["239.1.2.3", "239.1.2.4", "239.200.0.1"],
            querier_src: KERNEL_V4.into(),
        },
    );
}

#[test]
fn mldv1_queries_get_one_report_per_group_within_max_resp_time() {
    general_and_group_specific(
        "mldv1_queries",
        Family {
            querier: ["--mld", "1"],
            report: "mld-report",
            groups: ["ff12::1234", "ff15::abcd", "ff1e::42"],
            querier_src: ip(KERNEL_LL),
        },
    );
}

/// An IGMPv1 query (Max Resp Code 0: 10 s) puts the interface into IGMPv1 mode
/// for 400 s (RFC 2236 §4): v1 reports, and no Leave on leaving.
#[test]
fn igmpv1_querier_switches_to_v1_reports_and_no_leave() {
    let Some(ns) = Netns::new("igmpv1_querier") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let mut capture = ns.capture(TUN);
    let daemon = ns.spawn_daemon(&["--robustness", "1"]);
    let group = "239.1.2.3";
    daemon.ctl_ok(&["join", group]);
    capture.wait_for("the unsolicited report", secs(8), |p| {
        !daemon_reports(p, ip(group)).is_empty()
    });
    daemon.wait_quiet(secs(3));

    let queried_at = now();
    let _querier = ns.querier(&["--dev", TUN, "--igmp", "1", "--count", "1", "--json"]);
    capture.wait_for("a v1 report (up to 10 s)", secs(12), |p| {
        p.iter().any(|p| {
            p.from_daemon()
                && p.kind == "igmpv1-report"
                && p.about(ip(group))
                && p.time >= queried_at
        })
    });
    let interface = daemon.show()["interfaces"][0].clone();
    assert_eq!(interface["igmp_version"], 1, "{interface}");
    let left = interface["igmp_v1_router_present_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("no v1-router-present time: {interface}"));
    assert!(
        (380_000..=400_000).contains(&left),
        "v1 router present for {left} ms more (want about 400 s)"
    );
    daemon.wait_quiet(secs(3));

    daemon.ctl_ok(&["leave", group]);
    must_wait("the group to be gone", secs(3), || {
        daemon.group(group).is_none()
    });
    let packets = capture.stop();
    assert_daemon_packets_well_formed(&packets);
    assert!(
        !packets
            .iter()
            .any(|p| p.from_daemon() && p.kind == "igmp-leave"),
        "IGMPv1 has no Leave (RFC 2236 §4):\n{}",
        listing(&packets)
    );
    let answers: Vec<&Pkt> = daemon_reports(&packets, ip(group))
        .into_iter()
        .filter(|p| p.time >= queried_at)
        .collect();
    assert_eq!(answers.len(), 1, "{}", listing(&packets));
    assert_eq!(answers[0].kind, "igmpv1-report");
}
