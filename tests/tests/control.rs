//! The control socket through the real CLI (show, stats, --json) and through
//! raw lines (malformed and refused requests).

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::net::UnixStream;

use serde_json::Value;
use tests::*;

const STATES: [&str; 6] = [
    "delaying",
    "idle",
    "lazy",
    "sleeping",
    "awakening",
    "silent",
];

#[test]
fn show_and_stats_report_groups_users_and_moving_counters() {
    let Some(ns) = Netns::new("show_stats") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let daemon = ns.spawn_daemon(&[]);

    let before = daemon.stats();
    for name in [
        "igmp_rcv_total",
        "igmp_rcv_queries",
        "igmp_snd_reports",
        "igmp_snd_leaves",
        "mld_rcv_queries",
        "mld_snd_reports",
        "mld_snd_dones",
    ] {
        assert!(
            before.get(name).is_some_and(Value::is_u64),
            "{name}: {before:?}"
        );
    }
    assert!(before.values().all(Value::is_u64), "{before:?}");

    assert_eq!(
        daemon.ctl_ok(&["join", "239.1.2.3"]),
        "joined 239.1.2.3 on tun0 (users 1)\n"
    );
    // A second local user of the same group.
    let again = daemon.ctl_json(&["join", "239.1.2.3", "--iface", TUN]);
    assert_eq!(again["users"], 2, "{again}");
    assert_eq!(again["iface"], TUN, "{again}");
    assert_eq!(again["group"], "239.1.2.3", "{again}");
    assert!(again.get("ok").is_none(), "--json drops \"ok\": {again}");
    daemon.ctl_ok(&["join", "ff12::1234"]);

    let show = daemon.show();
    assert!(show.get("ok").is_none(), "{show}");
    let interfaces = show["interfaces"].as_array().expect("interfaces array");
    assert_eq!(interfaces.len(), 1, "{show}");
    let iface = &interfaces[0];
    assert_eq!(iface["iface"], TUN, "{iface}");
    assert_eq!(iface["ipv4"], DAEMON_V4.to_string(), "{iface}");
    assert_eq!(iface["ipv6_ll"], DAEMON_LL.to_string(), "{iface}");
    assert_eq!(iface["igmp_version"], 2, "no v1 router heard: {iface}");
    assert_eq!(iface["mld_version"], 1, "{iface}");
    assert!(iface["igmp_v1_router_present_ms"].is_null(), "{iface}");

    let v4 = daemon.group("239.1.2.3").expect("239.1.2.3 listed");
    assert_eq!(v4["iface"], TUN);
    assert_eq!(v4["family"], "ipv4", "{v4}");
    assert_eq!(v4["users"], 2, "{v4}");
    assert!(STATES.contains(&v4["state"].as_str().unwrap_or("")), "{v4}");
    assert!(v4["last_reporter"].is_boolean(), "{v4}");
    assert!(v4["timer_ms"].is_null() || v4["timer_ms"].is_u64(), "{v4}");
    let v6 = daemon.group("ff12::1234").expect("ff12::1234 listed");
    assert_eq!(v6["family"], "ipv6", "{v6}");
    assert_eq!(v6["users"], 1, "{v6}");

    // Human tables carry the same facts.
    let table = daemon.ctl_ok(&["show"]);
    assert!(
        table.lines().any(|l| l.split_whitespace().eq([
            "IFACE",
            "GROUP",
            "USERS",
            "STATE",
            "TIMER",
            "LAST-REPORTER",
            "FILTER"
        ])),
        "{table}"
    );
    let row: Vec<&str> = table
        .lines()
        .find(|l| l.contains("239.1.2.3"))
        .unwrap_or_else(|| panic!("no row for 239.1.2.3:\n{table}"))
        .split_whitespace()
        .collect();
    assert_eq!(&row[..3], [TUN, "239.1.2.3", "2"], "{table}");
    assert!(
        table.contains("10.99.0.2") && table.contains("ff12::1234"),
        "{table}"
    );

    // Counters move: the joins put reports on the wire.
    must_wait(
        "igmp_snd_reports and mld_snd_reports to move",
        secs(3),
        || {
            let now = daemon.stats();
            ["igmp_snd_reports", "mld_snd_reports"]
                .iter()
                .all(|c| now[*c].as_u64() > before[*c].as_u64())
        },
    );
    // The table lists every counter, NAME VALUE (values may have moved since).
    let stats = daemon.stats();
    let text = daemon.ctl_ok(&["stats"]);
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(header, ["NAME", "VALUE"], "{text}");
    let rows: BTreeMap<&str, &str> = lines
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some((words.next()?, words.next()?))
        })
        .collect();
    assert_eq!(rows.len(), stats.len(), "{text}");
    for name in stats.keys() {
        let value = rows
            .get(name.as_str())
            .unwrap_or_else(|| panic!("no {name}:\n{text}"));
        assert!(value.parse::<u64>().is_ok(), "{name} {value}");
    }

    assert_eq!(
        daemon.ctl_ok(&["leave", "239.1.2.3"]),
        "left 239.1.2.3 on tun0 (users 1)\n"
    );
    assert_eq!(daemon.group("239.1.2.3").unwrap()["users"], 1);
    let last = daemon.ctl_json(&["leave", "239.1.2.3"]);
    assert_eq!(last["users"], 0, "{last}");
    assert!(
        daemon.group("239.1.2.3").is_none(),
        "left group still listed"
    );
    must_wait("igmp_snd_leaves to move", secs(3), || {
        daemon.counter("igmp_snd_leaves") > before["igmp_snd_leaves"].as_u64().unwrap()
    });
}

#[test]
fn refused_requests_fail_the_cli_with_the_daemons_message() {
    let Some(ns) = Netns::new("cli_refused") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let daemon = ns.spawn_daemon(&[]);
    for args in [
        &["join", "10.1.2.3"][..],
        &["join", "2001:db8::1"],
        &["join", "239.1.2.3", "--iface", "nosuch0"],
    ] {
        let out = daemon.ctl(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("tunmcastctl: ") && stderr.lines().count() == 1,
            "{args:?}: want one `tunmcastctl: ...` line, got {stderr:?}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert!(daemon.groups().is_empty(), "refused joins changed state");
}

/// Sends `line` raw and expects `{"ok":false,"error":"..."}` back.
fn expect_error(daemon: &Daemon, what: &str, line: &[u8]) {
    let reply = daemon
        .raw_request(line)
        .unwrap_or_else(|| panic!("{what}: connection closed without an error reply"));
    let reply: Value = serde_json::from_str(&reply)
        .unwrap_or_else(|e| panic!("{what}: reply is not JSON ({e}): {reply:?}"));
    assert_eq!(reply["ok"], false, "{what}: {reply}");
    assert!(
        reply["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{what}: no error message: {reply}"
    );
    // And the daemon keeps serving.
    daemon.ctl_ok(&["ping"]);
}

#[test]
fn malformed_and_refused_control_lines_get_error_replies() {
    let Some(ns) = Netns::new("bad_requests") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let daemon = ns.spawn_daemon(&[]);

    let ok = daemon
        .raw_request(b"{\"cmd\":\"ping\"}\n")
        .expect("reply to ping");
    let ok: Value = serde_json::from_str(&ok).unwrap();
    assert_eq!(ok["ok"], true, "{ok}");
    assert!(ok["version"].is_string(), "{ok}");

    expect_error(&daemon, "invalid JSON", b"{\"cmd\": \"join\", \n");
    expect_error(&daemon, "not an object", b"[1,2,3]\n");
    expect_error(&daemon, "unknown cmd", b"{\"cmd\":\"frobnicate\"}\n");
    expect_error(&daemon, "missing group", b"{\"cmd\":\"join\"}\n");
    expect_error(
        &daemon,
        "group not an address",
        b"{\"cmd\":\"join\",\"group\":\"not-an-address\"}\n",
    );
    expect_error(
        &daemon,
        "non-multicast group",
        b"{\"cmd\":\"join\",\"group\":\"10.1.2.3\"}\n",
    );
    expect_error(
        &daemon,
        "unknown iface",
        b"{\"cmd\":\"join\",\"group\":\"239.1.2.3\",\"iface\":\"nosuch0\"}\n",
    );
    // Over 64 KiB in one line: an error (the daemon may close afterwards).
    let mut huge = b"{\"cmd\":\"ping\",\"pad\":\"".to_vec();
    huge.resize(huge.len() + 70 * 1024, b'x');
    huge.extend_from_slice(b"\"}\n");
    expect_error(&daemon, "line over 64 KiB", &huge);

    assert!(daemon.groups().is_empty(), "bad requests changed state");
    assert_eq!(
        daemon.ctl_ok(&["join", "239.1.2.3"]),
        "joined 239.1.2.3 on tun0 (users 1)\n"
    );
}

/// A client that connects and sends half a line must not stall everyone else.
#[test]
fn a_stalled_client_does_not_block_others() {
    let Some(ns) = Netns::new("stalled_client") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let daemon = ns.spawn_daemon(&[]);
    let mut stalled = UnixStream::connect(daemon.socket()).expect("connect");
    stalled
        .write_all(b"{\"cmd\":")
        .expect("write half a request");
    let idle = UnixStream::connect(daemon.socket()).expect("connect");
    let started = std::time::Instant::now();
    daemon.ctl_ok(&["join", "239.1.2.3"]);
    daemon.ctl_ok(&["ping"]);
    assert!(
        started.elapsed() < secs(2),
        "other clients waited {:?} behind a stalled one",
        started.elapsed()
    );
    drop((stalled, idle));
}

/// `stats --prometheus` is read by a real Prometheus text parser (the Prometheus project's
/// Python client): every counter of `stats --json` is there, as `tunmcast_NAME_total`, a
/// counter with a HELP line, with the same value.
#[test]
fn prometheus_text_parses_with_every_counter() {
    let Some(ns) = Netns::new("prometheus") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    // One report per change and no timers after it: the counters hold still.
    let daemon = ns.spawn_daemon(&["--igmp-version", "3", "--robustness", "1"]);
    daemon.ctl_ok(&["join", "239.1.2.3"]);
    daemon.wait_quiet(secs(5));
    let stats = daemon.stats();
    let text = daemon.ctl_ok(&["stats", "--prometheus"]);
    let parser = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        out[sample.name] = {"type": family.type, "help": family.documentation,
                            "value": sample.value}
print(json.dumps(out))
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", parser])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused the text (pip install prometheus-client):\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        parsed.as_object().unwrap().len(),
        stats.len(),
        "samples vs counters:\n{text}"
    );
    for (name, value) in &stats {
        let sample = &parsed[format!("tunmcast_{name}_total")];
        assert_eq!(sample["type"], "counter", "{name}: {sample}");
        assert!(
            sample["help"].as_str().is_some_and(|h| !h.is_empty()),
            "{name} has no HELP"
        );
        if name == "control_requests" {
            // The stats request itself moves it.
            assert!(sample["value"].as_f64() > value.as_f64(), "{name}");
        } else {
            assert_eq!(sample["value"].as_f64(), value.as_f64(), "{name}");
        }
    }
    assert!(stats["igmp_snd_reports"].as_u64() >= Some(1));
}
