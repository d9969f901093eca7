//! The daemon as an IGMPv3 / MLDv2 host (RFC 9776, RFC 9777), with mcquerier as the querier
//! and tshark dissecting every packet, group records included.
//!
//! - State-change reports: the record types and sources each filter change means, sent at
//!   once and retransmitted Robustness − 1 times within the Unsolicited Report Interval,
//!   well formed (checksums, Router Alert, TTL / hop limit 1, to 224.0.0.22 / ff02::16).
//! - Query responses: one current-state report for a general query, IS_EX / IS_IN for a
//!   group-specific one, the intersection for a group-and-source-specific one; an older
//!   query makes the interface fall back and answer in that version.

use std::net::IpAddr;

use tests::*;

/// The v3 Unsolicited Report Interval given to the daemon (RFC default 1 s).
const UNSOLICITED_MS: u64 = 400;

struct Family {
    /// [`Pkt::kind`] of the family's v3 report and of its v1/v2 report.
    report: &'static str,
    old_report: &'static str,
    /// Where v3 reports go.
    all_routers: &'static str,
    /// mcquerier's flags for the v3 and the older version.
    v3: [&'static str; 2],
    old: [&'static str; 2],
    /// show's interface fields: version spoken, older querier present timer; the versions.
    version_field: &'static str,
    v3_version: u8,
    old_version: u8,
    older_present_field: &'static str,
    /// Any-source group, INCLUDE group, EXCLUDE group.
    groups: [&'static str; 3],
    /// Sources: s[0], s[1] included, s[2] added later, s[3] excluded, s[4], s[5] never joined.
    s: [&'static str; 6],
    querier_src: &'static str,
}

const IGMP: Family = Family {
    report: "igmpv3-report",
    old_report: "igmpv2-report",
    all_routers: "224.0.0.22",
    v3: ["--igmp", "3"],
    old: ["--igmp", "2"],
    version_field: "igmp_version",
    v3_version: 3,
    old_version: 2,
    older_present_field: "igmp_v2_querier_present_ms",
    groups: ["239.1.1.1", "232.1.1.1", "239.2.2.2"],
    s: [
        "10.99.0.77",
        "10.99.0.78",
        "10.99.0.79",
        "10.99.0.9",
        "10.99.0.8",
        "10.99.0.66",
    ],
    querier_src: "10.99.0.1",
};

const MLD: Family = Family {
    report: "mldv2-report",
    old_report: "mld-report",
    all_routers: "ff02::16",
    v3: ["--mld", "2"],
    old: ["--mld", "1"],
    version_field: "mld_version",
    v3_version: 2,
    old_version: 1,
    older_present_field: "mld_v1_querier_present_ms",
    groups: ["ff12::1", "ff3e::1", "ff15::2"],
    s: [
        "2001:db8::77",
        "2001:db8::78",
        "2001:db8::79",
        "2001:db8::9",
        "2001:db8::8",
        "2001:db8::66",
    ],
    querier_src: KERNEL_LL,
};

fn v3_daemon<'a>(ns: &'a Netns, robustness: &str) -> Daemon<'a> {
    let interval = UNSOLICITED_MS.to_string();
    ns.spawn_daemon(&[
        "--igmp-version",
        "3",
        "--mld-version",
        "2",
        "--robustness",
        robustness,
        "--v3-unsolicited-interval-ms",
        &interval,
    ])
}

/// Every v3 report the daemon sent is one of the family's, to 224.0.0.22 / ff02::16, and
/// well formed (checksums Good, Router Alert, TTL / hop limit 1).
fn assert_v3_reports_well_formed(family: &Family, packets: &[Pkt]) {
    assert_daemon_packets_well_formed(packets);
    for p in packets.iter().filter(|p| p.from_daemon() && p.is_report()) {
        assert_eq!(p.kind, family.report, "{}", full_listing(packets));
        assert_eq!(p.dst, ip(family.all_routers), "{}", p.full_line());
        assert!(
            p.checksum_good && p.router_alert && p.ttl_or_hlim == 1,
            "{}",
            p.full_line()
        );
    }
}

/// One filter change and the single record it must produce.
struct Step {
    ctl: Vec<String>,
    record: Record,
    /// show's filter for the group afterwards (None: the group is gone).
    filter: Option<(&'static str, Vec<IpAddr>)>,
}

fn step(ctl: &[&str], record: Record, filter: Option<(&'static str, &[&str])>) -> Step {
    Step {
        ctl: ctl.iter().map(|s| s.to_string()).collect(),
        record,
        filter: filter.map(|(mode, sources)| {
            let mut sources: Vec<IpAddr> = sources.iter().map(|s| ip(s)).collect();
            sources.sort();
            (mode, sources)
        }),
    }
}

/// Each change, one at a time: exactly `robustness` reports, each carrying exactly the one
/// record the change means, the first at once, each retransmission within the interval.
fn state_changes(test: &str, family: Family, robustness: u8) {
    let Some(ns) = Netns::new(test) else { return };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let mut capture = ns.capture(TUN);
    let daemon = v3_daemon(&ns, &robustness.to_string());
    let [any, incl, excl] = family.groups;
    let s = family.s;
    let steps = [
        step(
            &["join", any],
            Record::new("to_ex", any, &[]),
            Some(("exclude", &[])),
        ),
        step(
            &["join", incl, "--include", &format!("{},{}", s[0], s[1])],
            Record::new("allow", incl, &[s[0], s[1]]),
            Some(("include", &[s[0], s[1]])),
        ),
        step(
            &["leave", incl, "--include", s[1]],
            Record::new("block", incl, &[s[1]]),
            Some(("include", &[s[0]])),
        ),
        step(
            &["join", incl, "--include", s[2]],
            Record::new("allow", incl, &[s[2]]),
            Some(("include", &[s[0], s[2]])),
        ),
        step(
            &["join", excl, "--exclude", s[3]],
            Record::new("to_ex", excl, &[s[3]]),
            Some(("exclude", &[s[3]])),
        ),
        step(&["leave", any], Record::new("to_in", any, &[]), None),
        step(
            &["leave", excl, "--exclude", s[3]],
            Record::new("to_in", excl, &[]),
            None,
        ),
    ];
    let mut started = Vec::new();
    for step in &steps {
        let at = now();
        started.push(at);
        let args: Vec<&str> = step.ctl.iter().map(String::as_str).collect();
        daemon.ctl_ok(&args);
        let group = step.record.group.to_string();
        match &step.filter {
            Some((mode, sources)) => {
                let entry = daemon.group(&group).expect("group listed");
                assert_eq!(entry["filter_mode"], *mode, "{entry}");
                let mut listed: Vec<IpAddr> = entry["sources"]
                    .as_array()
                    .expect("sources")
                    .iter()
                    .map(|s| ip(s.as_str().unwrap()))
                    .collect();
                listed.sort();
                assert_eq!(&listed, sources, "{entry}");
            }
            None => {
                // Kept, as "leaving", while TO_IN {} is retransmitted.
                if let Some(entry) = daemon.group(&group) {
                    assert_eq!(entry["state"], "leaving", "{entry}");
                }
            }
        }
        let wanted = usize::from(robustness);
        capture.wait_for_full(
            &format!("{wanted} reports with {}", step.record),
            secs(8),
            |p| {
                p.iter()
                    .filter(|p| p.from_daemon() && p.is_report() && p.time >= at)
                    .count()
                    >= wanted
            },
        );
        daemon.wait_v3_quiet(secs(3));
        if step.filter.is_none() {
            assert!(daemon.group(&group).is_none(), "{group} still listed");
        }
    }
    let packets = capture.stop_full();
    assert_v3_reports_well_formed(&family, &packets);

    let mut timings = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let until = started.get(i + 1).copied().unwrap_or(f64::INFINITY);
        let sent: Vec<&Pkt> = packets
            .iter()
            .filter(|p| p.from_daemon() && p.time >= started[i] && p.time < until)
            .collect();
        assert_eq!(
            sent.len(),
            usize::from(robustness),
            "`{}`: want the report and {} retransmission(s):\n{}",
            step.ctl.join(" "),
            robustness - 1,
            full_listing(&packets)
        );
        for p in &sent {
            assert_eq!(
                p.records(),
                vec![step.record.clone()],
                "`{}`:\n{}",
                step.ctl.join(" "),
                full_listing(&packets)
            );
        }
        let first = sent[0].time - started[i];
        assert!(
            first < 0.5,
            "`{}`: first report after {first:.3} s",
            step.ctl.join(" ")
        );
        let mut gaps = Vec::new();
        for pair in sent.windows(2) {
            let gap = pair[1].time - pair[0].time;
            assert!(
                gap <= UNSOLICITED_MS as f64 / 1000.0 + SLACK,
                "`{}`: retransmission {gap:.3} s after the previous (interval {UNSOLICITED_MS} ms)",
                step.ctl.join(" ")
            );
            gaps.push(format!("{gap:.3}"));
        }
        timings.push(format!(
            "{}: first {first:.3} s, gaps [{}]",
            step.record,
            gaps.join(", ")
        ));
    }
    eprintln!("{test}:\n  {}", timings.join("\n  "));
}

#[test]
fn igmpv3_state_change_reports_carry_the_right_records_and_are_retransmitted() {
    state_changes("v3_igmp_changes", IGMP, 2);
}

#[test]
fn mldv2_state_change_reports_carry_the_right_records_and_are_retransmitted() {
    state_changes("v3_mld_changes", MLD, 3);
}

/// Sends one query and returns the daemon's reports to it, once the daemon has nothing
/// pending any more (so the next query starts clean).
fn query(
    ns: &Netns,
    daemon: &Daemon,
    capture: &Capture,
    family: &Family,
    version: [&str; 2],
    extra: &[&str],
) -> (f64, Vec<Pkt>) {
    let at = now();
    let mut args = vec![
        "--dev",
        TUN,
        version[0],
        version[1],
        "--max-resp-ms",
        "1000",
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--count", "1", "--listen-ms", "0"]);
    ns.querier(&args).wait_exit(secs(5));
    let packets = capture.wait_for_full("the query on the wire", secs(8), |p| {
        p.iter()
            .any(|p| p.is_query() && p.src == ip(family.querier_src) && p.time >= at)
    });
    let query = packets
        .iter()
        .find(|p| p.is_query() && p.src == ip(family.querier_src) && p.time >= at)
        .unwrap()
        .clone();
    // Max Resp Time is 1 s: by 1 s + slack every answer is out.
    std::thread::sleep(secs_f64(1.0 + SLACK));
    daemon.wait_v3_quiet(secs(3));
    let packets = capture.peek_full();
    let answers = packets
        .into_iter()
        .filter(|p| p.from_daemon() && p.is_report() && p.time >= query.time)
        .collect();
    (query.time, answers)
}

fn sorted_records(p: &Pkt) -> Vec<Record> {
    let mut records = p.records();
    records.sort_by_key(|r| r.group);
    records
}

/// General, group-specific and group-and-source-specific v3 queries, then an older query.
fn query_responses(test: &str, family: Family) {
    let Some(ns) = Netns::new(test) else { return };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let mut capture = ns.capture(TUN);
    let daemon = v3_daemon(&ns, "2");
    let [any, incl, excl] = family.groups;
    let s = family.s;
    daemon.ctl_ok(&["join", any]);
    daemon.ctl_ok(&["join", incl, "--include", &format!("{},{}", s[0], s[1])]);
    daemon.ctl_ok(&["join", excl, "--exclude", s[3]]);
    daemon.wait_v3_quiet(secs(5));

    // What show says: filters and the interface's compatibility mode.
    let interface = daemon.interface();
    assert_eq!(
        interface[family.version_field], family.v3_version,
        "{interface}"
    );
    assert!(
        interface[family.older_present_field].is_null(),
        "{interface}"
    );
    for (group, mode, sources) in [
        (any, "exclude", vec![]),
        (incl, "include", vec![s[0], s[1]]),
        (excl, "exclude", vec![s[3]]),
    ] {
        let entry = daemon.group(group).expect("listed");
        assert_eq!(entry["filter_mode"], mode, "{entry}");
        let mut listed: Vec<IpAddr> = entry["sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| ip(s.as_str().unwrap()))
            .collect();
        listed.sort();
        let mut want: Vec<IpAddr> = sources.iter().map(|s| ip(s)).collect();
        want.sort();
        assert_eq!(listed, want, "{entry}");
        assert_eq!(entry["state"], "idle", "{entry}");
    }

    let mut checks: Vec<(String, Option<Vec<Record>>)> = Vec::new();
    let mut timings = Vec::new();
    let mut check = |what: &str, extra: &[&str], want: Option<Vec<Record>>| {
        let (at, answers) = query(&ns, &daemon, &capture, &family, family.v3, extra);
        match &want {
            Some(records) => {
                assert_eq!(
                    answers.len(),
                    1,
                    "{what}: want one report:\n{}",
                    full_listing(&capture.peek_full())
                );
                let mut want = records.clone();
                want.sort_by_key(|r| r.group);
                assert_eq!(sorted_records(&answers[0]), want, "{what}");
                let delay = answers[0].time - at;
                assert!(delay <= 1.0 + SLACK, "{what}: answered after {delay:.3} s");
                timings.push(format!("{what}: {delay:.3} s"));
            }
            None => assert!(
                answers.is_empty(),
                "{what}: want no answer:\n{}",
                full_listing(&capture.peek_full())
            ),
        }
        checks.push((what.to_string(), want));
    };
    check(
        "general query",
        &[],
        Some(vec![
            Record::new("is_ex", any, &[]),
            Record::new("is_in", incl, &[s[0], s[1]]),
            Record::new("is_ex", excl, &[s[3]]),
        ]),
    );
    check(
        "group-specific query (EXCLUDE group)",
        &["--group", excl],
        Some(vec![Record::new("is_ex", excl, &[s[3]])]),
    );
    check(
        "group-specific query (INCLUDE group)",
        &["--group", incl],
        Some(vec![Record::new("is_in", incl, &[s[0], s[1]])]),
    );
    let incl_sources = format!("{},{}", s[1], s[5]);
    check(
        "group-and-source query (INCLUDE group)",
        &["--group", incl, "--sources", &incl_sources],
        Some(vec![Record::new("is_in", incl, &[s[1]])]),
    );
    let excl_sources = format!("{},{}", s[3], s[4]);
    check(
        "group-and-source query (EXCLUDE group)",
        &["--group", excl, "--sources", &excl_sources],
        Some(vec![Record::new("is_in", excl, &[s[4]])]),
    );
    check(
        "group-and-source query (any-source group)",
        &["--group", any, "--sources", s[5]],
        Some(vec![Record::new("is_in", any, &[s[5]])]),
    );
    check(
        "group-and-source query, no source of ours",
        &["--group", incl, "--sources", s[5]],
        None,
    );
    let interface = daemon.interface();
    assert_eq!(
        interface[family.version_field], family.v3_version,
        "{interface}"
    );

    // The queries on the wire asked what we meant to ask.
    let packets = capture.peek_full();
    let queries: Vec<&Pkt> = packets
        .iter()
        .filter(|p| p.is_query() && p.src == ip(family.querier_src))
        .collect();
    assert_eq!(queries.len(), checks.len(), "{}", full_listing(&packets));
    let mut want_sources: Vec<IpAddr> = vec![ip(s[1]), ip(s[5])];
    want_sources.sort();
    assert_eq!(queries[3].query_sources(), want_sources, "{}", queries[3]);

    // An older query: the interface falls back and answers in that version, every group.
    let (at, answers) = query(&ns, &daemon, &capture, &family, family.old, &[]);
    let interface = daemon.interface();
    assert_eq!(
        interface[family.version_field], family.old_version,
        "{interface}"
    );
    // Older Version Querier Present Timeout: QRV 2 × QQIC 5 s (mcquerier's --interval) + the
    // last v3 query's Max Resp Time 1 s = 11 s.
    let present = interface[family.older_present_field]
        .as_u64()
        .unwrap_or_else(|| panic!("no older-querier timer: {interface}"));
    // What is left is 11 s less the time since the query went out (longer on a loaded machine).
    let since_query_ms = ((now() - at).max(0.0) * 1000.0) as u64;
    assert!(
        present <= 11_000 && present + since_query_ms + 500 >= 11_000,
        "older querier present for {present} ms more, {since_query_ms} ms after the query \
         (want 11 s in all): {interface}"
    );
    let mut answered: Vec<IpAddr> = answers.iter().filter_map(|p| p.group).collect();
    answered.sort();
    let mut want: Vec<IpAddr> = family.groups.iter().map(|g| ip(g)).collect();
    want.sort();
    assert_eq!(
        answered,
        want,
        "want one {} per group:\n{}",
        family.old_report,
        full_listing(&capture.peek_full())
    );
    assert!(answers.iter().all(|p| p.kind == family.old_report));
    assert!(answers.iter().all(|p| p.time - at <= 1.0 + SLACK));
    for entry in daemon.groups() {
        // The v2 / MLDv1 machine now runs each group.
        assert_eq!(entry["last_reporter"], true, "{entry}");
    }

    let packets = capture.stop_full();
    assert_daemon_packets_well_formed(&packets);
    for p in packets
        .iter()
        .filter(|p| p.from_daemon() && p.kind == family.report)
    {
        assert_eq!(p.dst, ip(family.all_routers), "{}", p.full_line());
    }
    eprintln!("{test}: answer delays: {}", timings.join(", "));
}

#[test]
fn igmpv3_queries_get_current_state_records_and_an_igmpv2_query_falls_back() {
    query_responses("v3_igmp_queries", IGMP);
}

#[test]
fn mldv2_queries_get_current_state_records_and_an_mldv1_query_falls_back() {
    query_responses("v3_mld_queries", MLD);
}
