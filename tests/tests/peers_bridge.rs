//! The Linux bridge's own IGMP / MLD snooping and querier as the peer, on every kernel with
//! bridging (FRR's pimd, in peers_frr.rs and interop_frr.rs, needs the kernel's multicast
//! routing; these tests prove the same without it, and for MLD too). The daemon is a host on a
//! TAP port of the bridge; what the bridge learned is read from `bridge -d -j mdb show`:
//!
//! - IGMPv3 and MLDv2 source filters: INCLUDE and EXCLUDE joins with sources become the
//!   bridge's group state with the right filter mode and source list, and its (S,G) entries;
//!   a BLOCK removes one source, a leave (TO_IN {}) the group.
//! - The bridge keeps a group only while the daemon answers its queries (in the version the
//!   querier speaks: IGMPv2, IGMPv3, MLDv1, MLDv2), relearns it from an answer alone, and
//!   forgets it after a leave.
//! - An IGMPv2 / MLDv1 bridge querier makes the daemon fall back, and the bridge learns its
//!   source filter as (*,G); the querier back at IGMPv3 / MLDv2 brings the daemon back after the
//!   Older Version Querier Present Timeout, and the bridge learns the INCLUDE state.
//! - Host blocks forced to IGMPv2 / MLDv1 and blocks speaking IGMPv3 / MLDv2 on one TAP: the
//!   bridge learns each host's join in that host's version.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use tests::*;

const BR: &str = "br0";
const TAP: &str = "tap1";

/// The bridge's Max Resp Time, and the slack on top of protocol deadlines here (the bridge's
/// timers run in jiffies, the tests poll every 20 ms).
const MAX_RESP_S: f64 = 1.0;
const BRIDGE_SLACK_S: f64 = 1.5;

/// The daemon as one host on the TAP (10.99.0.2, fe80::2), state changes retransmitted after
/// 200 ms at most, plus `extra`.
fn daemon_on_tap<'n>(ns: &'n Netns, extra: &[&str]) -> Daemon<'n> {
    let socket = ns.dir().join("ctl.sock");
    let mut args = vec![
        "--tap",
        "--iface",
        TAP,
        "--ipv4",
        DAEMON_V4_CIDR,
        "--ipv6-ll",
        "fe80::2",
        "--control",
        socket.to_str().expect("UTF-8 temp dir"),
        "--v3-unsolicited-interval-ms",
        "200",
    ];
    args.extend_from_slice(extra);
    ns.spawn_daemon_with(&args, &socket)
}

/// Waits up to `timeout` for the bridge's state of `group` on the TAP to be `want`
/// (`(mode, sources)`, or `None`: not learned); fails with the whole table otherwise.
fn wait_filter(ns: &Netns, group: &str, want: Option<(&str, &[&str])>, timeout: Duration) {
    let group = ip(group);
    let want = want.map(|(mode, sources)| {
        let mut sources: Vec<IpAddr> = sources.iter().map(|s| ip(s)).collect();
        sources.sort();
        (mode.to_string(), sources)
    });
    if !wait_until(timeout, || ns.mdb(BR, TAP).filter(group) == want) {
        panic!(
            "the bridge's state of {group} on {TAP}: want {want:?} within {timeout:?}, it \
             has:\n{}",
            ns.mdb(BR, TAP)
        );
    }
}

/// `packets` without the bridge's own MLD reports for its link-local groups, which it sends
/// from `::` as its link comes up: what is left is checked with
/// [`assert_daemon_packets_well_formed`] (the daemon has addresses, and reports nothing
/// link-scope from `::`).
fn without_the_bridges_reports(packets: &[Pkt]) -> Vec<Pkt> {
    let bridges = |p: &Pkt| {
        p.src.is_unspecified()
            && p.kind == "mldv2-report"
            && p.records()
                .iter()
                .all(|r| matches!(r.group, IpAddr::V6(g) if g.segments()[0] == 0xff02))
    };
    packets.iter().filter(|p| !bridges(p)).cloned().collect()
}

/// The groups and sources of one family's source-filter test.
struct Family {
    /// Joined INCLUDE {s[0], s[1]}.
    include_group: &'static str,
    /// Joined EXCLUDE {s[2]}.
    exclude_group: &'static str,
    /// Joined from any source.
    any_group: &'static str,
    sources: [&'static str; 3],
}

const IPV4: Family = Family {
    include_group: "232.1.1.1",
    exclude_group: "239.2.2.2",
    any_group: "239.3.3.3",
    sources: ["10.99.5.1", "10.99.5.2", "10.99.5.3"],
};

const IPV6: Family = Family {
    include_group: "ff3e::1:1",
    exclude_group: "ff1e::2:2",
    any_group: "ff1e::3:3",
    sources: ["2001:db8::1", "2001:db8::2", "2001:db8::3"],
};

/// INCLUDE, EXCLUDE and any-source joins appear in the bridge with their filter mode, source
/// list and (S,G) entries; BLOCK drops one source; a leave (TO_IN {}, or the last source
/// blocked) removes the group. The daemon's records on the wire say the same.
fn source_filters_become_the_bridges_state(test: &str, family: &Family) {
    let Some(ns) = Netns::new(test) else { return };
    ns.snooping_bridge(BR, TAP, KERNEL_V4_CIDR, &SnoopingBridge::default());
    let mut capture = ns.capture(TAP);
    let daemon = daemon_on_tap(&ns, &[]);
    let [s1, s2, s3] = family.sources;
    let (incl, excl, any) = (family.include_group, family.exclude_group, family.any_group);
    let settle = secs(5);

    daemon.ctl_ok(&["join", incl, "--include", &format!("{s1},{s2}")]);
    daemon.ctl_ok(&["join", excl, "--exclude", s3]);
    daemon.ctl_ok(&["join", any]);
    wait_filter(&ns, incl, Some(("include", &[s1, s2])), settle);
    wait_filter(&ns, excl, Some(("exclude", &[s3])), settle);
    wait_filter(&ns, any, Some(("exclude", &[])), settle);
    eprintln!("{test}: the bridge learned\n{}", ns.mdb(BR, TAP));

    // BLOCK {s1}: the bridge asks about s1 (a group-and-source-specific query), nobody
    // answers for it, it goes; s2 stays.
    daemon.ctl_ok(&["leave", incl, "--include", s1]);
    wait_filter(&ns, incl, Some(("include", &[s2])), settle);
    // TO_IN {}: the EXCLUDE join and the any-source join end.
    daemon.ctl_ok(&["leave", excl, "--exclude", s3]);
    daemon.ctl_ok(&["leave", any]);
    wait_filter(&ns, excl, None, settle);
    wait_filter(&ns, any, None, settle);
    // The last included source blocked: INCLUDE {}, the group ends.
    daemon.ctl_ok(&["leave", incl, "--include", s2]);
    wait_filter(&ns, incl, None, settle);

    let packets = capture.stop_full();
    assert_daemon_packets_well_formed(&without_the_bridges_reports(&packets));
    let records: Vec<Record> = packets
        .iter()
        .filter(|p| p.from_daemon() && p.is_report())
        .flat_map(Pkt::records)
        .collect();
    for expected in [
        Record::new("block", incl, &[s1]),
        Record::new("to_in", excl, &[]),
        Record::new("to_in", any, &[]),
        Record::new("block", incl, &[s2]),
    ] {
        assert!(
            records.contains(&expected),
            "the daemon never sent {expected}:\n{}",
            full_listing(&packets)
        );
    }
}

#[test]
fn igmpv3_include_and_exclude_joins_become_the_bridges_source_state() {
    source_filters_become_the_bridges_state("bridge_igmpv3_filters", &IPV4);
}

#[test]
fn mldv2_include_and_exclude_joins_become_the_bridges_source_state() {
    source_filters_become_the_bridges_state("bridge_mldv2_filters", &IPV6);
}

/// Query Interval 2 s, Max Resp Time 1 s, Group Membership Interval 5 s: the bridge forgets a
/// group 5 s after the last report for it.
fn short_intervals(igmp_version: u8, mld_version: u8) -> SnoopingBridge {
    SnoopingBridge {
        igmp_version,
        mld_version,
        query_interval_cs: 200,
        response_interval_cs: 100,
        last_member_interval_cs: 50,
        membership_interval_cs: Some(500),
    }
}
const QUERY_INTERVAL_S: f64 = 2.0;
const MEMBERSHIP_INTERVAL_S: f64 = 5.0;

/// The report kinds a querier of these versions hears in answer to its general queries.
fn answer_kinds(igmp_version: u8, mld_version: u8) -> [&'static str; 2] {
    [
        if igmp_version == 2 {
            "igmpv2-report"
        } else {
            "igmpv3-report"
        },
        if mld_version == 1 {
            "mld-report"
        } else {
            "mldv2-report"
        },
    ]
}

/// The bridge's general queries (from its own addresses) in `packets`.
fn bridge_general_queries(packets: &[Pkt]) -> Vec<&Pkt> {
    packets
        .iter()
        .filter(|p| p.is_query() && !p.from_daemon() && p.group.is_some_and(|g| g.is_unspecified()))
        .collect()
}

/// The bridge learns an IPv4 and an IPv6 group, relearns each from the daemon's answer to a
/// general query alone after forgetting it, keeps them for longer than its membership
/// interval only because every query is answered (in the querier's version), and forgets them
/// after the daemon leaves.
fn kept_while_answered_and_forgotten_after_leave(test: &str, igmp_version: u8, mld_version: u8) {
    let Some(ns) = Netns::new(test) else { return };
    ns.snooping_bridge(
        BR,
        TAP,
        KERNEL_V4_CIDR,
        &short_intervals(igmp_version, mld_version),
    );
    let mut capture = ns.capture(TAP);
    let daemon = daemon_on_tap(&ns, &[]);
    let groups = [ip("239.5.5.5"), ip("ff1e::5:5")];
    for g in groups {
        daemon.ctl_ok(&["join", &g.to_string()]);
    }
    let learned = |ns: &Netns| {
        let mdb = ns.mdb(BR, TAP);
        groups.map(|g| mdb.group(g).is_some())
    };
    must_wait("the bridge learns both groups", secs(5), || {
        learned(&ns) == [true, true]
    });
    // A query round, so that the daemon speaks the querier's version from now on.
    std::thread::sleep(secs_f64(QUERY_INTERVAL_S + MAX_RESP_S));

    // Forgotten by hand: only an answer to the next general query can bring them back.
    for g in groups {
        ns.mdb_forget(BR, TAP, g);
    }
    assert_eq!(learned(&ns), [false, false], "{}", ns.mdb(BR, TAP));
    let forgotten_at = now();
    must_wait(
        "the bridge relearns both groups from the answers to one general query",
        secs_f64(QUERY_INTERVAL_S + MAX_RESP_S + BRIDGE_SLACK_S),
        || learned(&ns) == [true, true],
    );

    // Kept for twice the membership interval: only the answers keep them.
    let watch = Instant::now();
    while watch.elapsed() < secs_f64(2.0 * MEMBERSHIP_INTERVAL_S) {
        assert_eq!(
            learned(&ns),
            [true, true],
            "the bridge lost a group after {:?}:\n{}",
            watch.elapsed(),
            ns.mdb(BR, TAP)
        );
        std::thread::sleep(ms(250));
    }

    let left_at = now();
    for g in groups {
        daemon.ctl_ok(&["leave", &g.to_string()]);
    }
    must_wait(
        "the bridge forgets both groups after the leaves",
        secs(4),
        || learned(&ns) == [false, false],
    );

    let packets = capture.stop_full();
    assert_daemon_packets_well_formed(&without_the_bridges_reports(&packets));
    let queries = bridge_general_queries(&packets);
    let since_forgotten: Vec<&&Pkt> = queries
        .iter()
        .filter(|q| q.time >= forgotten_at && q.time + MAX_RESP_S + SLACK < left_at)
        .collect();
    assert!(
        since_forgotten.len() as f64 >= 2.0 * MEMBERSHIP_INTERVAL_S / QUERY_INTERVAL_S,
        "{} general queries while watched:\n{}",
        since_forgotten.len(),
        listing(&packets)
    );
    // Each of those queries answered for each group in the querier's version (a query over
    // IGMP is answered with IGMP, one over MLD with MLD), inside its Max Resp Time.
    for query in since_forgotten {
        let is_v4 = query.kind == "igmp-query";
        let (group, kind) = if is_v4 {
            (groups[0], answer_kinds(igmp_version, mld_version)[0])
        } else {
            (groups[1], answer_kinds(igmp_version, mld_version)[1])
        };
        let answered = packets.iter().any(|p| {
            p.from_daemon()
                && p.kind == kind
                && p.time > query.time
                && p.time <= query.time + MAX_RESP_S + SLACK
                && p.covers(group)
        });
        assert!(
            answered,
            "no {kind} for {group} answering the query at {:.3}:\n{}",
            query.time,
            full_listing(&packets)
        );
    }
    // The leaves in the querier's version: Leave / Done, or TO_IN {}.
    let leaves = packets
        .iter()
        .filter(|p| p.from_daemon() && p.time >= left_at);
    let left: Vec<IpAddr> = leaves
        .flat_map(|p| match p.kind.as_str() {
            "igmp-leave" | "mld-done" => p.group.into_iter().collect(),
            "igmpv3-report" | "mldv2-report" => p
                .records()
                .into_iter()
                .filter(|r| r.kind == "to_in" && r.sources.is_empty())
                .map(|r| r.group)
                .collect(),
            _ => Vec::new(),
        })
        .collect();
    for g in groups {
        assert!(
            left.contains(&g),
            "no leave of {g}:\n{}",
            full_listing(&packets)
        );
    }
}

#[test]
fn an_igmpv2_and_mldv1_bridge_keeps_groups_while_answered_and_forgets_them_after_leave() {
    kept_while_answered_and_forgotten_after_leave("bridge_keep_v2", 2, 1);
}

#[test]
fn an_igmpv3_and_mldv2_bridge_keeps_groups_while_answered_and_forgets_them_after_leave() {
    kept_while_answered_and_forgotten_after_leave("bridge_keep_v3", 3, 2);
}

/// The bridge's querier at IGMPv3 / MLDv2 first (the daemon learns its Query Interval, 2 s,
/// and Robustness, 2, from the queries), then IGMPv2 / MLDv1: the daemon falls back, and the
/// bridge, its state forgotten, relearns the INCLUDE {S} joins as (*,G), all that v2 / v1
/// answers can say. The querier back at IGMPv3 / MLDv2: one Older Version Querier Present
/// Timeout (2 × 2 s + 1 s) after the last old query the daemon speaks v3 / v2 again, and once
/// the bridge's (*,G) state has timed out it holds INCLUDE {S}, learned from the daemon's
/// current-state records.
#[test]
fn an_old_bridge_querier_makes_the_daemon_fall_back_and_a_new_one_brings_it_back() {
    let Some(ns) = Netns::new("bridge_fallback") else {
        return;
    };
    ns.snooping_bridge(BR, TAP, KERNEL_V4_CIDR, &short_intervals(3, 2));
    let mut capture = ns.capture(TAP);
    let daemon = daemon_on_tap(&ns, &[]);
    let joins = [("232.1.1.1", "10.99.5.1"), ("ff3e::1:1", "2001:db8::1")];
    for (group, source) in joins {
        daemon.ctl_ok(&["join", group, "--include", source]);
    }
    for (group, source) in joins {
        wait_filter(&ns, group, Some(("include", &[source])), secs(5));
    }
    let versions = |daemon: &Daemon| {
        let interface = daemon.interface();
        (
            interface["igmp_version"].as_u64(),
            interface["mld_version"].as_u64(),
        )
    };
    // A query round: the daemon has the bridge's Query Interval and Robustness.
    std::thread::sleep(secs_f64(QUERY_INTERVAL_S + MAX_RESP_S));

    ns.bridge_versions(BR, 2, 1);
    must_wait(
        "the daemon to fall back to IGMPv2 and MLDv1",
        secs(5),
        || versions(&daemon) == (Some(2), Some(1)),
    );
    for (group, _) in joins {
        ns.mdb_forget(BR, TAP, ip(group));
    }
    for (group, _) in joins {
        wait_filter(
            &ns,
            group,
            Some(("exclude", &[])),
            secs_f64(QUERY_INTERVAL_S + MAX_RESP_S + BRIDGE_SLACK_S),
        );
    }
    // Still so a query round later: the v2 / v1 answers hold (*,G).
    std::thread::sleep(secs_f64(QUERY_INTERVAL_S + MAX_RESP_S));
    assert_eq!(versions(&daemon), (Some(2), Some(1)));
    let fell_back_at = now();
    for (group, _) in joins {
        wait_filter(&ns, group, Some(("exclude", &[])), secs(1));
    }

    let switched_at = now();
    ns.bridge_versions(BR, 3, 2);
    // Older Version Querier Present Timeout: Robustness × Query Interval + Max Resp Time.
    let timeout = 2.0 * QUERY_INTERVAL_S + MAX_RESP_S;
    must_wait(
        "the daemon back at IGMPv3 and MLDv2",
        secs_f64(timeout + QUERY_INTERVAL_S + BRIDGE_SLACK_S),
        || versions(&daemon) == (Some(3), Some(2)),
    );
    let back_after = now() - switched_at;
    // The bridge's (*,G) times out one membership interval after the last v2 / v1 answer;
    // the IS_IN {S} answers since then leave INCLUDE {S}.
    for (group, source) in joins {
        wait_filter(
            &ns,
            group,
            Some(("include", &[source])),
            secs_f64(MEMBERSHIP_INTERVAL_S + QUERY_INTERVAL_S + BRIDGE_SLACK_S),
        );
    }
    eprintln!("bridge_fallback: back at v3 / MLDv2 {back_after:.2} s after the switch");
    assert!(
        back_after >= timeout - QUERY_INTERVAL_S - SLACK,
        "back after {back_after:.2} s: before the older querier's timeout could expire"
    );

    let packets = capture.stop_full();
    assert_daemon_packets_well_formed(&without_the_bridges_reports(&packets));
    // Every report in the last query round before the switch back is in the old versions;
    // after the return, current-state records in the new ones.
    let old_answers: Vec<&Pkt> = packets
        .iter()
        .filter(|p| p.from_daemon() && p.is_report())
        .filter(|p| p.time > fell_back_at - QUERY_INTERVAL_S && p.time < switched_at)
        .collect();
    assert!(!old_answers.is_empty(), "{}", listing(&packets));
    for p in &old_answers {
        assert!(
            p.kind == "igmpv2-report" || p.kind == "mld-report",
            "a {} while the querier spoke IGMPv2 / MLDv1:\n{}",
            p.kind,
            full_listing(&packets)
        );
    }
    let returned_at = switched_at + back_after;
    for (group, source) in joins {
        let is_in = Record::new("is_in", group, &[source]);
        assert!(
            packets
                .iter()
                .filter(|p| p.from_daemon() && p.time >= returned_at)
                .any(|p| p.records().contains(&is_in)),
            "no {is_in} after the return:\n{}",
            full_listing(&packets)
        );
    }
}

/// What the bridge learns of a group: its filter mode and sources.
type Learned = (&'static str, &'static [&'static str]);

/// Two host blocks on one TAP, one forced to IGMPv2 / MLDv1, one speaking IGMPv3 / MLDv2, under
/// the bridge's IGMPv3 / MLDv2 querier: each host's INCLUDE {S} join is learned as the host's
/// version can say it, (*,G) from the old host and INCLUDE {S} from the new one, and stays so
/// through query rounds; the old host's Leave / Done and the new host's BLOCK end them.
#[test]
fn the_bridge_learns_each_host_blocks_joins_in_that_blocks_version() {
    let Some(ns) = Netns::new("bridge_blocks") else {
        return;
    };
    ns.snooping_bridge(BR, TAP, KERNEL_V4_CIDR, &short_intervals(3, 2));
    let mut capture = ns.capture(TAP);
    let daemon = ns.spawn_configured(
        "log_level = \"info\"\nv3_unsolicited_interval_ms = 200\n\
         [[link]]\ndevice = \"tap1\"\nkind = \"tap\"\nsuppression = false\n\
         [[link.hosts]]\ncount = 2\nipv4 = \"10.99.0.10/24\"\nigmp_version = 2\nmld_version = 1\n\
         [[link.hosts]]\ncount = 2\nipv4 = \"10.99.0.20/24\"\n",
    );
    let (old_host, new_host) = ("10.99.0.10", "10.99.0.20");
    // (host, group, source, what the bridge learns)
    let joins: [(&str, &str, &str, Learned); 4] = [
        (old_host, "239.1.1.1", "10.99.5.1", ("exclude", &[])),
        (
            new_host,
            "232.2.2.2",
            "10.99.5.1",
            ("include", &["10.99.5.1"]),
        ),
        (old_host, "ff1e::1:1", "2001:db8::1", ("exclude", &[])),
        (
            new_host,
            "ff3e::2:2",
            "2001:db8::1",
            ("include", &["2001:db8::1"]),
        ),
    ];
    for (host, group, source, _) in joins {
        daemon.ctl_ok(&["join", group, "--host", host, "--include", source]);
    }
    for (_, group, _, learned) in joins {
        wait_filter(&ns, group, Some(learned), secs(5));
    }
    // Two query rounds later, unchanged: the old block answers in v2 / v1, the new in v3 / v2.
    std::thread::sleep(secs_f64(2.0 * QUERY_INTERVAL_S + MAX_RESP_S));
    for (_, group, _, learned) in joins {
        wait_filter(&ns, group, Some(learned), secs(1));
    }
    let interfaces = daemon.show()["interfaces"].as_array().unwrap().clone();
    let address_of = |host: &str, key: &str| -> IpAddr {
        let interface = interfaces
            .iter()
            .find(|i| i["ipv4"] == host)
            .unwrap_or_else(|| panic!("no host {host}"));
        ip(interface[key].as_str().unwrap())
    };
    for (host, group, source, _) in joins {
        daemon.ctl_ok(&["leave", group, "--host", host, "--include", source]);
    }
    for (_, group, _, _) in joins {
        wait_filter(&ns, group, None, secs(5));
    }

    let packets = capture.stop_full();
    let reports_from = |host: &str, key: &str| -> Vec<&Pkt> {
        let source = address_of(host, key);
        packets
            .iter()
            .filter(|p| p.src == source && (p.is_report() || !p.is_query()))
            .filter(|p| p.is_membership())
            .collect()
    };
    for (host, key, kinds) in [
        (old_host, "ipv4", ["igmpv2-report", "igmp-leave"]),
        (old_host, "ipv6_ll", ["mld-report", "mld-done"]),
        (new_host, "ipv4", ["igmpv3-report", "igmpv3-report"]),
        (new_host, "ipv6_ll", ["mldv2-report", "mldv2-report"]),
    ] {
        let sent = reports_from(host, key);
        assert!(!sent.is_empty(), "nothing from {host} ({key})");
        for p in &sent {
            assert!(
                kinds.contains(&p.kind.as_str()),
                "{host} ({key}) sent a {}:\n{}",
                p.kind,
                full_listing(&packets)
            );
        }
    }
}
