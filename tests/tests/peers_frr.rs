//! FRR's pimd as the IGMP querier on the TUN link, with short intervals (Query Interval
//! 2 s, Max Resp Time 1 s, so a Group Membership Interval of 2 × 2 + 1 = 5 s; Last Member
//! Query Interval 0.5 s, count 2).
//!
//! - IGMPv2 and IGMPv3: pimd learns a group within one query interval, keeps it only because
//!   the daemon answers its queries (watched for longer than the membership interval), and
//!   forgets it after the daemon leaves and pimd's group-specific queries go unanswered.
//!   (interop_frr.rs covers learning groups from answers alone.)
//! - IGMPv3 source filters: pimd's INCLUDE / EXCLUDE view follows the daemon's filters.
//! - An IGMPv2 pimd makes a v3 daemon fall back to v2, and the daemon returns to v3 one Older
//!   Version Querier Present Timeout after the last v2 query (2 × 2 s + 1 s = 5 s, learned
//!   from pimd's v3 queries).

use std::net::IpAddr;

use serde_json::Value;
use tests::*;

const QUERY_INTERVAL_S: u32 = 2;
const MAX_RESP_DS: u32 = 10;
/// Group Membership Interval = Older Version Querier Present Timeout: QRV × QI + QRI.
const GMI_S: f64 = 2.0 * QUERY_INTERVAL_S as f64 + MAX_RESP_DS as f64 / 10.0;
const MAX_RESP_S: f64 = MAX_RESP_DS as f64 / 10.0;

/// pimd as IGMP querier of `version` on the TUN, with the short intervals above.
fn querier<'a>(ns: &'a Netns, version: u8) -> Option<Frr<'a>> {
    let frr = ns.frr()?;
    frr.igmp_querier(TUN, version, MAX_RESP_DS, QUERY_INTERVAL_S);
    frr.interface_config(
        TUN,
        &[
            "ip igmp last-member-query-interval 5",
            "ip igmp last-member-query-count 2",
        ],
    );
    Some(frr)
}

fn daemon_v3<'a>(ns: &'a Netns) -> Daemon<'a> {
    ns.spawn_daemon(&[
        "--igmp-version",
        "3",
        "--mld-version",
        "2",
        "--v3-unsolicited-interval-ms",
        "500",
    ])
}

/// pimd's general queries from `since` on.
fn general_queries(packets: &[Pkt], since: f64) -> Vec<&Pkt> {
    packets
        .iter()
        .filter(|p| {
            p.is_query()
                && p.src == IpAddr::V4(KERNEL_V4)
                && p.time >= since
                && p.group.is_some_and(|g| g.is_unspecified())
        })
        .collect()
}

/// The daemon's answer to `query` for `group`: a report covering the group within Max Resp
/// Time (v3: an IS_EX / IS_IN record for it).
fn answer<'p>(packets: &'p [Pkt], query: &Pkt, group: IpAddr) -> Option<&'p Pkt> {
    packets.iter().find(|p| {
        p.from_daemon()
            && p.is_report()
            && p.time > query.time
            && p.time <= query.time + MAX_RESP_S + SLACK
            && match p.kind.as_str() {
                "igmpv3-report" => p
                    .records()
                    .iter()
                    .any(|r| r.group == group && (r.kind == "is_ex" || r.kind == "is_in")),
                _ => p.about(group),
            }
    })
}

/// Waits for pimd's first general query: it is the querier from then on.
fn wait_for_querier(capture: &Capture) {
    capture.wait_for("pimd's first general query", secs(5), |p| {
        !general_queries(p, 0.0).is_empty()
    });
}

/// Join → pimd lists the group within one query interval; it stays listed through general
/// queries answered by the daemon, watched for longer than the Group Membership Interval;
/// leave → pimd's group-specific queries go unanswered and it forgets the group.
fn learn_keep_forget(test: &str, version: u8, group: &str) {
    if !frr_pimd_can_run(test) {
        return;
    }
    let Some(ns) = Netns::new(test) else { return };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let mut capture = ns.capture(TUN);
    let daemon = if version == 2 {
        ns.spawn_daemon(&["--unsolicited-interval-ms", "500"])
    } else {
        daemon_v3(&ns)
    };
    let Some(frr) = querier(&ns, version) else {
        return;
    };
    wait_for_querier(&capture);
    let g = ip(group);

    let joined_at = now();
    daemon.ctl_ok(&["join", group]);
    must_wait(
        "pimd to list the group within one query interval",
        secs_f64(QUERY_INTERVAL_S as f64 + SLACK),
        || frr.igmp_group(TUN, g).is_some(),
    );
    let learned_after = now() - joined_at;
    let entry = frr.igmp_group(TUN, g).unwrap();
    assert_eq!(entry["version"], version, "{entry}");
    if version == 3 {
        assert_eq!(entry["mode"], "EXCLUDE", "any-source join: {entry}");
    }
    eprintln!("{test}: pimd's entry for {group}: {entry}");

    // From here on only answers to queries keep the group alive at pimd.
    if version == 2 {
        daemon.wait_quiet(secs(3));
    } else {
        daemon.wait_v3_quiet(secs(3));
    }
    let quiet_at = now();
    let mut rounds = 0;
    let watched = wait_until(secs(12), || {
        assert!(
            frr.igmp_group(TUN, g).is_some(),
            "pimd forgot {group} {:.1} s after the daemon's last unsolicited report:\n{}",
            now() - quiet_at,
            full_listing(&capture.peek_full())
        );
        let packets = capture.peek_full();
        rounds = general_queries(&packets, quiet_at)
            .iter()
            .filter(|q| answer(&packets, q, g).is_some())
            .count();
        std::thread::sleep(ms(250));
        rounds >= 3 && now() - quiet_at > GMI_S
    });
    let packets = capture.peek_full();
    assert!(
        watched,
        "want 3 of pimd's general queries answered over more than {GMI_S} s, got {rounds}:\n{}",
        full_listing(&packets)
    );
    // Every query whose Max Resp Time has passed got its answer, of the right version.
    let settled = now() - MAX_RESP_S - SLACK;
    let mut delays = Vec::new();
    for query in general_queries(&packets, quiet_at)
        .into_iter()
        .filter(|q| q.time < settled)
    {
        let report = answer(&packets, query, g).unwrap_or_else(|| {
            panic!(
                "no answer to pimd's query at {:.3}:\n{}",
                query.rel,
                full_listing(&packets)
            )
        });
        let expected = if version == 2 {
            "igmpv2-report"
        } else {
            "igmpv3-report"
        };
        assert_eq!(report.kind, expected, "{}", report.full_line());
        if version == 3 {
            assert!(query.igmp_version() == Some(3), "{query}");
            assert_eq!(
                report.records(),
                vec![Record::new("is_ex", group, &[])],
                "{}",
                report.full_line()
            );
        }
        delays.push(format!("{:.3}", report.time - query.time));
    }

    let left_at = now();
    daemon.ctl_ok(&["leave", group]);
    must_wait("pimd to forget the group", secs(5), || {
        frr.igmp_group(TUN, g).is_none()
    });
    let forgot_after = now() - left_at;
    std::thread::sleep(ms(300));
    let packets = capture.stop_full();
    assert_daemon_packets_well_formed(&packets);
    let specific: Vec<&Pkt> = packets
        .iter()
        .filter(|p| p.is_query() && p.src == IpAddr::V4(KERNEL_V4) && p.about(g))
        .filter(|p| p.time >= left_at)
        .collect();
    assert!(
        !specific.is_empty(),
        "pimd sent no group-specific query after the leave:\n{}",
        full_listing(&packets)
    );
    let after_leave: Vec<&Pkt> = packets
        .iter()
        .filter(|p| p.from_daemon() && p.time >= left_at && p.covers(g))
        .collect();
    assert!(!after_leave.is_empty(), "{}", full_listing(&packets));
    for p in &after_leave {
        if version == 2 {
            assert_eq!(
                p.kind,
                "igmp-leave",
                "the daemon answered for a group it left:\n{}",
                full_listing(&packets)
            );
        } else {
            assert_eq!(
                p.records(),
                vec![Record::new("to_in", group, &[])],
                "the daemon answered for a group it left:\n{}",
                full_listing(&packets)
            );
        }
    }
    eprintln!(
        "{test}: listed {learned_after:.3} s after join; {} general queries answered after \
         {:.3}..{:.3} s; forgotten {forgot_after:.3} s after leave ({} group-specific \
         queries, {} {} from us)",
        delays.len(),
        delays.first().map(String::as_str).unwrap_or("-"),
        delays.last().map(String::as_str).unwrap_or("-"),
        specific.len(),
        after_leave.len(),
        if version == 2 { "Leave" } else { "TO_IN {}" },
    );
}

#[test]
fn frr_igmpv2_querier_learns_keeps_and_forgets_a_group() {
    learn_keep_forget("frr_v2_keep", 2, "239.10.2.2");
}

#[test]
fn frr_igmpv3_querier_keeps_an_any_source_join_in_exclude_mode() {
    learn_keep_forget("frr_v3_keep", 3, "239.10.3.3");
}

fn sorted(list: &[&str]) -> Vec<String> {
    let mut list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    list.sort();
    list
}

/// pimd's sources for `group`, all with running timers (an INCLUDE group's sources).
fn running_sources(frr: &Frr, group: IpAddr) -> Option<Vec<String>> {
    let list = frr.igmp_source_list(TUN, group);
    if list.iter().any(|(_, running)| !running) {
        return None;
    }
    let mut names: Vec<String> = list.into_iter().map(|(s, _)| s).collect();
    names.sort();
    Some(names)
}

/// Waits until no state-change retransmission is pending (general-query answers may be).
fn wait_retransmitted(daemon: &Daemon) {
    must_wait("the retransmissions to be over", secs(3), || {
        daemon.groups().iter().all(|g| g["retransmit_ms"].is_null())
    });
}

fn mode(frr: &Frr, group: IpAddr) -> Option<String> {
    frr.igmp_group(TUN, group)
        .and_then(|g| g["mode"].as_str().map(str::to_string))
}

#[test]
fn frr_igmpv3_querier_follows_source_filters() {
    if !frr_pimd_can_run("frr_v3_filters") {
        return;
    }
    let Some(ns) = Netns::new("frr_v3_filters") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let mut capture = ns.capture(TUN);
    let daemon = daemon_v3(&ns);
    let Some(frr) = querier(&ns, 3) else { return };
    wait_for_querier(&capture);
    let (incl, excl) = (ip("232.1.1.1"), ip("239.2.2.2"));
    let one_interval = secs_f64(QUERY_INTERVAL_S as f64 + SLACK);

    daemon.ctl_ok(&["join", "232.1.1.1", "--include", "10.99.0.77,10.99.0.78"]);
    daemon.ctl_ok(&["join", "239.2.2.2", "--exclude", "10.99.0.9"]);
    must_wait("pimd: 232.1.1.1 INCLUDE {77, 78}", one_interval, || {
        mode(&frr, incl).as_deref() == Some("INCLUDE")
            && running_sources(&frr, incl) == Some(sorted(&["10.99.0.77", "10.99.0.78"]))
    });
    must_wait("pimd: 239.2.2.2 EXCLUDE {9}", one_interval, || {
        mode(&frr, excl).as_deref() == Some("EXCLUDE")
            && frr.igmp_source_list(TUN, excl) == vec![("10.99.0.9".to_string(), false)]
    });
    // pimd's own words, for the record.
    for group in [incl, excl] {
        let entry = frr.igmp_group(TUN, group).unwrap();
        let sources = frr.igmp_group_sources(TUN, group).unwrap();
        eprintln!(
            "pimd on {group}:\n  show ip igmp groups json: {}\n  show ip igmp sources json: {}",
            serde_json::to_string(&entry).unwrap(),
            serde_json::to_string(&sources).unwrap()
        );
    }

    // Block a source: pimd asks about it (group-and-source query), nobody answers, it goes.
    // (Each change waits out the previous one's retransmissions, so that what is on the wire
    // in between belongs to one change.)
    wait_retransmitted(&daemon);
    let blocked_at = now();
    daemon.ctl_ok(&["leave", "232.1.1.1", "--include", "10.99.0.78"]);
    must_wait("pimd: 232.1.1.1 INCLUDE {77}", one_interval, || {
        running_sources(&frr, incl) == Some(sorted(&["10.99.0.77"]))
    });
    let blocked_after = now() - blocked_at;

    // Add a source.
    wait_retransmitted(&daemon);
    let allowed_at = now();
    daemon.ctl_ok(&["join", "232.1.1.1", "--include", "10.99.0.79"]);
    must_wait("pimd: 232.1.1.1 INCLUDE {77, 79}", one_interval, || {
        running_sources(&frr, incl) == Some(sorted(&["10.99.0.77", "10.99.0.79"]))
    });
    let allowed_after = now() - allowed_at;

    // An any-source join on top of the EXCLUDE {9} one: EXCLUDE {}, 9 is wanted again.
    wait_retransmitted(&daemon);
    let unexcluded_at = now();
    daemon.ctl_ok(&["join", "239.2.2.2"]);
    must_wait(
        "pimd: 239.2.2.2 no longer excluding 9",
        one_interval,
        || {
            mode(&frr, excl).as_deref() == Some("EXCLUDE")
                && !frr
                    .igmp_source_list(TUN, excl)
                    .contains(&("10.99.0.9".to_string(), false))
        },
    );
    let unexcluded_after = now() - unexcluded_at;

    // The view survives a query round answered with current-state records.
    wait_retransmitted(&daemon);
    let round_at = now();
    let packets = capture.wait_for_full("a general query answered", secs(5), |p| {
        general_queries(p, round_at)
            .iter()
            .any(|q| answer(p, q, incl).is_some())
    });
    let query = general_queries(&packets, round_at)[0];
    let report = answer(&packets, query, incl).unwrap();
    let mut records = report.records();
    records.sort_by_key(|r| r.group);
    assert_eq!(
        records,
        vec![
            Record::new("is_in", "232.1.1.1", &["10.99.0.77", "10.99.0.79"]),
            Record::new("is_ex", "239.2.2.2", &[]),
        ],
        "{}",
        report.full_line()
    );
    std::thread::sleep(ms(200));
    assert_eq!(mode(&frr, incl).as_deref(), Some("INCLUDE"));
    assert_eq!(
        running_sources(&frr, incl),
        Some(sorted(&["10.99.0.77", "10.99.0.79"]))
    );
    assert_eq!(mode(&frr, excl).as_deref(), Some("EXCLUDE"));

    let packets = capture.stop_full();
    assert_daemon_packets_well_formed(&packets);
    let from_daemon_after = |since: f64, until: f64| -> Vec<Record> {
        packets
            .iter()
            .filter(|p| p.from_daemon() && p.time >= since && p.time < until)
            .flat_map(|p| p.records())
            .collect()
    };
    // State-change records between the changes (current-state ones answer general queries).
    let changes = |since: f64, until: f64| -> Vec<Record> {
        from_daemon_after(since, until)
            .into_iter()
            .filter(|r| r.kind != "is_in" && r.kind != "is_ex")
            .collect()
    };
    let blocks = changes(blocked_at, allowed_at);
    assert!(
        !blocks.is_empty()
            && blocks
                .iter()
                .all(|r| *r == Record::new("block", "232.1.1.1", &["10.99.0.78"])),
        "{}",
        full_listing(&packets)
    );
    let gs_query = packets
        .iter()
        .find(|p| p.is_query() && p.about(incl) && p.time >= blocked_at && p.time < allowed_at);
    let gs_query = gs_query.unwrap_or_else(|| {
        panic!(
            "pimd sent no group-and-source query after the BLOCK:\n{}",
            full_listing(&packets)
        )
    });
    assert_eq!(
        gs_query.query_sources(),
        vec![ip("10.99.0.78")],
        "{gs_query}"
    );
    let allows = changes(allowed_at, unexcluded_at);
    assert!(
        !allows.is_empty()
            && allows
                .iter()
                .all(|r| *r == Record::new("allow", "232.1.1.1", &["10.99.0.79"])),
        "{}",
        full_listing(&packets)
    );
    let unexcluded = changes(unexcluded_at, round_at);
    assert!(
        !unexcluded.is_empty()
            && unexcluded
                .iter()
                .all(|r| *r == Record::new("allow", "239.2.2.2", &["10.99.0.9"])),
        "{}",
        full_listing(&packets)
    );
    // Nobody ever claimed 10.99.0.78 again after blocking it.
    assert!(
        !packets
            .iter()
            .filter(|p| p.from_daemon() && p.time >= blocked_at)
            .flat_map(|p| p.records())
            .any(|r| r.kind != "block" && r.sources.contains(&ip("10.99.0.78"))),
        "{}",
        full_listing(&packets)
    );
    eprintln!(
        "frr_v3_filters: pimd dropped the blocked source after {blocked_after:.3} s, added \
         the allowed one after {allowed_after:.3} s, un-excluded after {unexcluded_after:.3} s"
    );
}

/// The daemon's `igmp_version`, polled; returns when it equals `want`.
fn wait_version(daemon: &Daemon, want: u64, timeout: std::time::Duration) -> Option<f64> {
    let mut seen = Value::Null;
    let ok = wait_until(timeout, || {
        seen = daemon.interface();
        seen["igmp_version"] == want
    });
    ok.then(now)
}

#[test]
fn frr_igmpv2_querier_makes_a_v3_daemon_fall_back_and_it_returns_to_v3() {
    if !frr_pimd_can_run("frr_fallback") {
        return;
    }
    let Some(ns) = Netns::new("frr_fallback") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let mut capture = ns.capture(TUN);
    let daemon = daemon_v3(&ns);
    let Some(frr) = querier(&ns, 3) else { return };
    let (g1, g2, g3) = ("239.4.4.4", "239.4.4.5", "239.4.4.6");
    daemon.ctl_ok(&["join", g1]);

    // A v3 query answered: the daemon has learned QQIC 2 s, QRV 2 and 1 s from it.
    let start = now();
    capture.wait_for_full("a v3 general query answered", secs(6), |p| {
        general_queries(p, start)
            .iter()
            .any(|q| q.igmp_version() == Some(3) && answer(p, q, ip(g1)).is_some())
    });
    let interface = daemon.interface();
    assert_eq!(interface["igmp_version"], 3, "{interface}");
    assert!(
        interface["igmp_v2_querier_present_ms"].is_null(),
        "{interface}"
    );

    // pimd speaks IGMPv2 from now on.
    let switched_at = now();
    frr.interface_config(TUN, &["ip igmp version 2"]);
    let packets = capture.wait_for("pimd's first v2 query", secs(4), |p| {
        general_queries(p, switched_at)
            .iter()
            .any(|q| q.igmp_version() == Some(2))
    });
    let first_v2 = general_queries(&packets, switched_at)
        .into_iter()
        .find(|q| q.igmp_version() == Some(2))
        .unwrap()
        .time;
    wait_version(&daemon, 2, secs(2)).expect("the daemon to fall back to IGMPv2");
    let interface = daemon.interface();
    let present = interface["igmp_v2_querier_present_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("no v2-querier-present timer: {interface}"));
    assert!(
        present <= (GMI_S * 1000.0) as u64 && present >= 3_000,
        "v2 querier present for {present} ms more (want just under {GMI_S} s)"
    );
    let fallback_present_ms = present;

    // As long as pimd's v2 queries come, the daemon stays v2 (watched for longer than the
    // timeout), answers them with v2 reports, and reports a new group with a v2 report.
    daemon.ctl_ok(&["join", g2]);
    let stay_until = now() + GMI_S + 1.0;
    while now() < stay_until {
        let interface = daemon.interface();
        assert_eq!(
            interface["igmp_version"], 2,
            "back to v3 too early: {interface}"
        );
        std::thread::sleep(ms(250));
    }
    must_wait("pimd to list the v2-reported group", secs(1), || {
        frr.igmp_group(TUN, ip(g2)).is_some()
    });

    // pimd back to v3: one timeout after its last v2 query the daemon is v3 again.
    let back_at = now();
    frr.interface_config(TUN, &["ip igmp version 3"]);
    let returned_at = wait_version(&daemon, 3, secs_f64(QUERY_INTERVAL_S as f64 + GMI_S + 2.0))
        .unwrap_or_else(|| panic!("the daemon still speaks IGMPv2: {}", daemon.interface()));
    let interface = daemon.interface();
    assert!(
        interface["igmp_v2_querier_present_ms"].is_null(),
        "{interface}"
    );

    // Its next state change is an IGMPv3 report.
    let joined_at = now();
    daemon.ctl_ok(&["join", g3]);
    capture.wait_for_full("a TO_EX record for the new group", secs(8), |p| {
        p.iter().any(|p| {
            p.from_daemon()
                && p.time >= joined_at
                && p.records() == vec![Record::new("to_ex", g3, &[])]
        })
    });
    must_wait("pimd to list the v3-reported group", secs(2), || {
        frr.igmp_group(TUN, ip(g3)).is_some()
    });
    let g3_entry = frr.igmp_group(TUN, ip(g3)).unwrap();
    let packets = capture.stop_full();
    assert_daemon_packets_well_formed(&packets);

    let v2_queries: Vec<&Pkt> = general_queries(&packets, switched_at)
        .into_iter()
        .filter(|q| q.igmp_version() == Some(2))
        .collect();
    let last_v2 = v2_queries
        .iter()
        .filter(|q| q.time < returned_at)
        .map(|q| q.time)
        .fold(f64::NAN, f64::max);
    let took = returned_at - last_v2;
    assert!(
        (GMI_S - 0.3..=GMI_S + 0.8).contains(&took),
        "back to v3 {took:.3} s after pimd's last v2 query (want {GMI_S} s):\n{}",
        full_listing(&packets)
    );
    // Between the first v2 query and the return: only v2 reports from the daemon, and one
    // for each of pimd's v2 queries.
    let in_v2: Vec<&Pkt> = packets
        .iter()
        .filter(|p| p.from_daemon() && p.time > first_v2 && p.time < returned_at)
        .collect();
    assert!(
        in_v2.iter().all(|p| p.kind == "igmpv2-report"),
        "v3 messages while a v2 querier was present:\n{}",
        full_listing(&packets)
    );
    let answered = v2_queries
        .iter()
        .filter(|q| q.time + MAX_RESP_S + SLACK < returned_at)
        .filter(|q| answer(&packets, q, ip(g1)).is_some_and(|r| r.kind == "igmpv2-report"))
        .count();
    let due = v2_queries
        .iter()
        .filter(|q| q.time + MAX_RESP_S + SLACK < returned_at)
        .count();
    assert_eq!(answered, due, "{}", full_listing(&packets));
    assert!(
        in_v2.iter().any(|p| p.about(ip(g2))),
        "no v2 report for the group joined in v2 mode:\n{}",
        full_listing(&packets)
    );
    eprintln!(
        "frr_fallback: v2 querier present {fallback_present_ms} ms after the first v2 query; \
         {answered} v2 queries answered in v2; pimd back to v3 at +{:.3} s, daemon v3 again \
         {took:.3} s after the last v2 query; pimd on {g3}: {g3_entry}",
        back_at - switched_at
    );
}
