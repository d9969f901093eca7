//! Hostile input: malformed and illegal IGMP/MLD packets written onto the link from the kernel
//! side (`mcquerier --inject --raw-hex`, AF_PACKET, towards the TUN holder only). Each one must
//! be dropped and counted under its own `drop_*` counter (exactly +1 there, nothing on any
//! other drop counter), change no membership state, make the daemon send nothing, and leave
//! it serving. Then the Router Alert policies: IGMP without Router Alert is accepted by default
//! and dropped with --strict-igmp; MLD without it is dropped by default and accepted with
//! --lenient-mld.
//!
//! Run with `--nocapture` to see the table of cases.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use membership::wire::igmp::IgmpRepr;
use membership::wire::mld::MldRepr;
use serde_json::{Map, Value};
use tests::*;

#[path = "hostile/cases.rs"]
mod cases;

use cases::*;

// ---------- checking ----------

fn count(stats: &Map<String, Value>, name: &str) -> u64 {
    stats
        .get(name)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no counter {name} in {stats:?}"))
}

/// Membership state without the ticking parts: each `*_ms` field becomes "set or not".
fn state(daemon: &Daemon) -> Value {
    fn strip(value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let v = if k.ends_with("_ms") {
                            Value::Bool(!v.is_null())
                        } else {
                            strip(v)
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(strip).collect()),
            other => other.clone(),
        }
    }
    let show = daemon.show();
    serde_json::json!({
        "interfaces": strip(&show["interfaces"]),
        "groups": strip(&show["groups"]),
    })
}

/// Writes `packet` and waits until the daemon has read it (tun_rx_packets moved); returns the
/// counters from before and after. Fails if the daemon never reads it.
fn inject(ns: &Netns, daemon: &Daemon, packet: &[u8]) -> (Map<String, Value>, Map<String, Value>) {
    let before = daemon.stats();
    let rx = count(&before, "tun_rx_packets");
    ns.inject_raw(TUN, packet);
    let mut after = before.clone();
    let read = wait_until(secs(3), || {
        after = daemon.stats();
        count(&after, "tun_rx_packets") > rx
    });
    assert!(read, "the daemon never read {}", hex(packet));
    (before, after)
}

/// Counters that moved between `before` and `after`, with their deltas (control_* excluded:
/// our own requests move them).
fn moved(before: &Map<String, Value>, after: &Map<String, Value>) -> Vec<(String, i128)> {
    after
        .keys()
        .filter(|name| !name.starts_with("control_"))
        .filter_map(|name| {
            let delta = i128::from(count(after, name)) - i128::from(count(before, name));
            (delta != 0).then(|| (name.clone(), delta))
        })
        .collect()
}

/// What is wrong with how the daemon took one hostile packet (empty: nothing).
fn judge(
    case: &Case,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    state_before: &Value,
    state_after: &Value,
) -> Vec<String> {
    let mut problems = Vec::new();
    let delta = |name: &str| i128::from(count(after, name)) - i128::from(count(before, name));
    if delta(case.counter) != 1 {
        problems.push(format!("{} moved by {}", case.counter, delta(case.counter)));
    }
    if delta("tun_rx_packets") != 1 {
        problems.push(format!(
            "tun_rx_packets moved by {} (other traffic on the link?)",
            delta("tun_rx_packets")
        ));
    }
    for (name, d) in moved(before, after) {
        let sent = name.starts_with("tun_tx_") || name.contains("_snd_");
        if (name.starts_with("drop_") && name != case.counter) || sent {
            problems.push(format!("{name} moved by {d}"));
        }
    }
    if state_before != state_after {
        problems.push(format!(
            "state changed:\n      before {state_before}\n      after  {state_after}"
        ));
    }
    problems
}

fn table(rows: &[(String, &str, usize, String)]) -> String {
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let cwidth = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    let mut out = format!(
        "  {:<width$}  {:<cwidth$}  {:>5}  RESULT\n",
        "CASE", "COUNTER", "BYTES"
    );
    for (name, counter, len, result) in rows {
        out += &format!("  {name:<width$}  {counter:<cwidth$}  {len:>5}  {result}\n");
    }
    out
}

/// The daemon as the hostile tests run it: groups of both families joined and settled, no
/// Router Solicitations from the kernel in the way of exact counts.
fn settled_daemon<'a>(ns: &'a Netns, extra: &[&str], groups: &[IpAddr]) -> Daemon<'a> {
    let mut args = vec!["--robustness", "1"];
    args.extend_from_slice(extra);
    let daemon = ns.spawn_daemon(&args);
    for group in groups {
        daemon.ctl_ok(&["join", &group.to_string()]);
    }
    daemon.wait_quiet(secs(3));
    daemon
}

fn netns(test: &str) -> Option<Netns> {
    let ns = Netns::new(test)?;
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    ns.no_router_solicitations(TUN);
    Some(ns)
}

#[test]
fn every_hostile_packet_is_dropped_counted_and_changes_nothing() {
    let Some(ns) = netns("hostile") else { return };
    let groups: [IpAddr; 4] = [G4.into(), G4B.into(), G6.into(), G6B.into()];
    let daemon = settled_daemon(&ns, &[], &groups);
    let mut capture = ns.capture(TUN);
    let started = now();

    let cases = cases();
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    let mut injected_at = Vec::new();
    let mut state_before = state(&daemon);
    for case in &cases {
        injected_at.push((now(), case.name.as_str()));
        let (before, after) = inject(&ns, &daemon, &case.packet);
        let state_after = state(&daemon);
        let problems = judge(case, &before, &after, &state_before, &state_after);
        let pong = daemon.ctl(&["ping"]);
        let mut result = if problems.is_empty() {
            "dropped, counted once".to_string()
        } else {
            format!("FAILED: {}", problems.join("; "))
        };
        if !pong.status.success() {
            result += "; FAILED: ping not answered";
        }
        if result.contains("FAILED") {
            failures.push(format!("{}: {}", case.name, result));
        }
        rows.push((case.name.clone(), case.counter, case.packet.len(), result));
        state_before = state_after;
    }
    let listing_of_cases = table(&rows);
    assert!(
        failures.is_empty(),
        "{} of {} hostile cases failed:\n  {}\n\n{listing_of_cases}",
        failures.len(),
        cases.len(),
        failures.join("\n  ")
    );

    // Still serving: a valid query of each family is answered for every group.
    let queried_at = now();
    let mut queriers = [
        ns.querier(&[
            "--dev",
            TUN,
            "--inject",
            "--igmp",
            "2",
            "--max-resp-ms",
            "500",
            "--json",
        ]),
        ns.querier(&[
            "--dev",
            TUN,
            "--inject",
            "--mld",
            "1",
            "--max-resp-ms",
            "500",
            "--json",
        ]),
    ];
    capture.wait_for("an answer for every group", secs(5), |p| {
        groups
            .iter()
            .all(|g| daemon_reports(p, *g).iter().any(|r| r.time >= queried_at))
    });
    for querier in &mut queriers {
        querier.wait_exit(secs(5));
    }
    let packets = capture.stop();
    // Only the daemon's own: the capture holds the hostile packets too (one comes from ::).
    let ours: Vec<Pkt> = packets
        .iter()
        .filter(|p| p.from_daemon())
        .cloned()
        .collect();
    assert_daemon_packets_well_formed(&ours);
    // Nothing from the daemon while the hostile packets came in.
    let early: Vec<&Pkt> = packets
        .iter()
        .filter(|p| p.from_daemon() && p.time >= started && p.time < queried_at)
        .collect();
    if !early.is_empty() {
        let blame: Vec<String> = early
            .iter()
            .map(|p| {
                let after = injected_at
                    .iter()
                    .rev()
                    .find(|(t, _)| *t <= p.time)
                    .map_or("(before the first case)", |(_, name)| name);
                format!("{p}  <- after \"{after}\"")
            })
            .collect();
        panic!(
            "the daemon sent packets because of hostile input:\n  {}",
            blame.join("\n  ")
        );
    }
    println!(
        "{} hostile cases, each dropped and counted once:\n{listing_of_cases}",
        cases.len()
    );
}

/// A v2 general query with Max Resp 0.5 s, for the policy tests.
fn short_query4() -> Vec<u8> {
    IgmpRepr::Query {
        max_resp_code: 5,
        group: Ipv4Addr::UNSPECIFIED,
    }
    .to_bytes()
}

fn short_query6() -> MldRepr {
    MldRepr::Query {
        max_resp_delay: 500,
        group: Ipv6Addr::UNSPECIFIED,
    }
}

/// Checks that the query just read was dropped under `counter` and nothing is pending.
fn assert_dropped(
    daemon: &Daemon,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    counter: &str,
) {
    let moved = moved(before, after);
    assert!(
        moved.iter().any(|(n, d)| n == counter && *d == 1),
        "{counter} did not move by 1: {moved:?}"
    );
    let drops = moved.iter().filter(|(n, _)| n.starts_with("drop_")).count();
    assert_eq!(drops, 1, "more than one drop counter moved: {moved:?}");
    // A query that got through would have a report pending now.
    let pending: Vec<Value> = daemon
        .groups()
        .into_iter()
        .filter(|g| !g["timer_ms"].is_null())
        .collect();
    assert!(
        pending.is_empty(),
        "a dropped query started timers: {pending:?}"
    );
}

/// Checks that the query just read was accepted and gets an answer.
fn assert_answered(
    daemon: &Daemon,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    sent: &str,
) {
    let moved = moved(before, after);
    assert!(
        !moved.iter().any(|(n, _)| n.starts_with("drop_")),
        "dropped: {moved:?}"
    );
    let was = count(before, sent);
    must_wait(&format!("{sent} to move (the answer)"), secs(3), || {
        daemon.counter(sent) > was
    });
    daemon.wait_quiet(secs(3));
}

#[test]
fn igmp_without_router_alert_is_accepted_by_default_and_dropped_when_strict() {
    let Some(ns) = netns("igmp_ra_policy") else {
        return;
    };
    let no_ra = ipv4_raw(&[], 1, PROTO_IGMP, ALL_SYSTEMS4, &short_query4());
    let ttl_2 = edit_ipv4(ipv4(ALL_SYSTEMS4, &short_query4()), |p| p[8] = 2);
    let with_ra = ipv4(ALL_SYSTEMS4, &short_query4());
    {
        let mut daemon = settled_daemon(&ns, &[], &[G4.into()]);
        let (before, after) = inject(&ns, &daemon, &no_ra);
        assert_eq!(
            count(&after, "igmp_rcv_no_router_alert"),
            count(&before, "igmp_rcv_no_router_alert") + 1
        );
        assert_answered(&daemon, &before, &after, "igmp_snd_v2_reports");
        let (before, after) = inject(&ns, &daemon, &ttl_2);
        assert_eq!(
            count(&after, "igmp_rcv_ttl_not_one"),
            count(&before, "igmp_rcv_ttl_not_one") + 1
        );
        assert_answered(&daemon, &before, &after, "igmp_snd_v2_reports");
        daemon.signal(Signal::SIGTERM);
        daemon.wait_exit(secs(5));
    }
    let daemon = settled_daemon(&ns, &["--strict-igmp"], &[G4.into()]);
    let (before, after) = inject(&ns, &daemon, &no_ra);
    assert_dropped(&daemon, &before, &after, "drop_igmp_no_router_alert");
    assert_eq!(
        count(&after, "igmp_rcv_no_router_alert"),
        count(&before, "igmp_rcv_no_router_alert"),
        "a dropped packet counted as accepted"
    );
    let (before, after) = inject(&ns, &daemon, &ttl_2);
    assert_dropped(&daemon, &before, &after, "drop_igmp_bad_ttl");
    // Strict is not deaf: a proper query is answered.
    let (before, after) = inject(&ns, &daemon, &with_ra);
    assert_answered(&daemon, &before, &after, "igmp_snd_v2_reports");
}

#[test]
fn mld_without_router_alert_is_dropped_by_default_and_accepted_when_lenient() {
    let Some(ns) = netns("mld_ra_policy") else {
        return;
    };
    let message = short_query6().to_bytes(&KERNEL6, &ALL_SYSTEMS6);
    let no_ra = ipv6_raw(KERNEL6, ALL_SYSTEMS6, 1, NH_ICMPV6, &message);
    let hop_limit_255 = {
        let mut p = mld(KERNEL6, ALL_SYSTEMS6, &short_query6());
        p[7] = 255;
        p
    };
    {
        let mut daemon = settled_daemon(&ns, &[], &[G6.into()]);
        let (before, after) = inject(&ns, &daemon, &no_ra);
        assert_dropped(&daemon, &before, &after, "drop_mld_no_router_alert");
        let (before, after) = inject(&ns, &daemon, &hop_limit_255);
        assert_dropped(&daemon, &before, &after, "drop_mld_bad_hop_limit");
        daemon.signal(Signal::SIGTERM);
        daemon.wait_exit(secs(5));
    }
    let daemon = settled_daemon(&ns, &["--lenient-mld"], &[G6.into()]);
    let (before, after) = inject(&ns, &daemon, &no_ra);
    assert_eq!(
        count(&after, "mld_rcv_queries"),
        count(&before, "mld_rcv_queries") + 1
    );
    assert_answered(&daemon, &before, &after, "mld_snd_reports");
    let (before, after) = inject(&ns, &daemon, &hop_limit_255);
    assert_answered(&daemon, &before, &after, "mld_snd_reports");
}
