//! Test streams sent and checked by the daemon, through a real device under test: a Linux
//! bridge with IGMP / MLD snooping. One daemon serves two TAP ports of the bridge: `tap-src`
//! sends the streams, the emulated hosts of `tap-rx` join and leave, and `tunmcastctl streams
//! --json` says what each (host, source, group) received.
//!
//! - Zero loss while joined, nothing beyond the grace after the leave, and the join delay the
//!   daemon measured agrees with a tcpdump capture on the bridge port (IPv4 and IPv6).
//! - A real source leak: an IGMPv2 / MLDv1 snooping bridge forwards every source of a group,
//!   so a host that joined INCLUDE {S1} counts S2's datagrams as `source_leaks`; an IGMPv3 /
//!   MLDv2 snooping bridge filters them and the count is 0.
//! - Exact loss, duplicates and reordering: mcmangle between the source TAP and the bridge
//!   drops, repeats and swaps known sequence numbers, and the counts equal what it did.
//! - Bad `stream add` arguments and bad `[[stream]]` keys: clear errors, nothing changed.

use std::process::Command;

use serde_json::Value;
use tests::*;

const BR: &str = "br0";
const RX: &str = "tap-rx";
const SRC: &str = "tap-src";
const HOST: &str = "10.99.0.10";
const OTHER_HOST: &str = "10.99.0.11";
const S1: &str = "10.99.0.251";
const S2: &str = "10.99.0.252";
const S1_V6: &str = "2001:db8::251";
const S2_V6: &str = "2001:db8::252";

/// The bridge (its querier speaking `igmp` / `mld`), the receivers' port `tap-rx` (no
/// unregistered multicast: it gets what the bridge learned) and, with `source_port`, the
/// streams' port `tap-src`.
fn bridge(ns: &Netns, igmp: u8, mld: u8, source_port: bool) {
    let config = SnoopingBridge {
        igmp_version: igmp,
        mld_version: mld,
        ..SnoopingBridge::default()
    };
    ns.snooping_bridge(BR, RX, KERNEL_V4_CIDR, &config);
    ns.ip(&["tuntap", "add", "dev", SRC, "mode", "tap"]);
    if source_port {
        ns.ip(&["link", "set", SRC, "master", BR]);
    }
    ns.ip(&["link", "set", SRC, "up"]);
}

/// The daemon: one host on `tap-src`, two on `tap-rx`, delays measured, `extra` appended
/// (`[[stream]]` tables).
fn daemon<'n>(ns: &'n Netns, extra: &str) -> Daemon<'n> {
    ns.spawn_configured(&format!(
        "log_level = \"info\"\nv3_unsolicited_interval_ms = 200\ndelays = true\n\
         check_streams = true\n\
         [[link]]\ndevice = \"{SRC}\"\nkind = \"tap\"\nipv4 = \"10.99.0.250/24\"\n\
         [[link]]\ndevice = \"{RX}\"\nkind = \"tap\"\nsuppression = false\n\
         [[link.hosts]]\ncount = 2\nipv4 = \"{HOST}/24\"\n{extra}"
    ))
}

fn stream_table(source: &str, group: &str, extra: &str) -> String {
    format!("[[stream]]\nlink = \"{SRC}\"\nsource = \"{source}\"\ngroup = \"{group}\"\n{extra}")
}

/// `streams --json`.
fn streams(daemon: &Daemon) -> Value {
    daemon.ctl_json(&["streams"])
}

/// The receiver record of (host, source, group), if there is one.
fn receiver(daemon: &Daemon, host: &str, source: &str, group: &str) -> Option<Value> {
    streams(daemon)["receivers"]
        .as_array()
        .expect("receivers")
        .iter()
        .find(|r| {
            r["host"] == host
                && ip(r["source"].as_str().unwrap()) == ip(source)
                && ip(r["group"].as_str().unwrap()) == ip(group)
        })
        .cloned()
}

fn count(record: &Value, key: &str) -> u64 {
    record[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no {key} in {record}"))
}

/// Waits until the bridge forwards `group` to `tap-rx`.
fn wait_learned(ns: &Netns, group: &str) {
    must_wait(&format!("the bridge learning {group}"), secs(5), || {
        ns.mdb(BR, RX).group(ip(group)).is_some()
    });
}

/// Zero loss while joined, nothing after the leave's grace, and the join delay the daemon
/// measured at the device within a few ms of the one a capture on the bridge port shows;
/// IPv4 and IPv6 streams side by side.
#[test]
fn joined_hosts_get_every_packet_none_after_the_grace_and_the_join_delay_agrees_with_a_capture() {
    let Some(ns) = Netns::new("streams_join") else {
        return;
    };
    bridge(&ns, 3, 2, true);
    let (v4, v6) = ("239.1.1.1", "ff1e::1:1");
    let daemon = daemon(
        &ns,
        &format!(
            "{}{}",
            stream_table(S1, v4, ""),
            stream_table(S1_V6, v6, "pps = 500\n")
        ),
    );
    // The bridge's startup queries answered; the streams run, reaching nobody yet.
    std::thread::sleep(secs(2));
    assert!(receiver(&daemon, HOST, S1, v4).is_none());
    let mut capture = ns.capture_matching(RX, &format!("igmp or (udp and dst host {v4})"));
    daemon.ctl_ok(&["join", v4, "--host", HOST]);
    daemon.ctl_ok(&["join", v6, "--host", HOST]);
    std::thread::sleep(secs(3));
    let packets = capture.stop_full();

    for (source, group, pps) in [(S1, v4, 1000), (S1_V6, v6, 500)] {
        let r = receiver(&daemon, HOST, source, group)
            .unwrap_or_else(|| panic!("{HOST} received nothing of ({source}, {group})"));
        // 3 s joined, minus the join delay.
        assert!(count(&r, "received") > pps * 2, "{r}");
        for key in [
            "lost",
            "duplicates",
            "reordered",
            "source_leaks",
            "after_leave",
        ] {
            assert_eq!(count(&r, key), 0, "{key}: {r}");
        }
        assert!(
            count(&r, "min_ns") > 0 && count(&r, "p50_ns") <= count(&r, "max_ns") * 2,
            "{r}"
        );
        assert!(
            receiver(&daemon, OTHER_HOST, source, group).is_none(),
            "never joined"
        );
    }

    // The host's own counter of the datagrams read for its groups (counted per group, not
    // per host): every one it received of both streams, and nothing for the other host.
    let host_rx =
        |host: &str| daemon.ctl_json(&["stats", "--host", host])["host_rx_datagrams"].as_u64();
    let received: u64 = [(S1, v4), (S1_V6, v6)]
        .iter()
        .map(|(s, g)| count(&receiver(&daemon, HOST, s, g).unwrap(), "received"))
        .sum();
    let counted = host_rx(HOST).expect("host_rx_datagrams");
    assert!(counted >= received, "{counted} of {received}");
    assert_eq!(host_rx(OTHER_HOST), Some(0));

    // The join delay: from the report written to the first datagram read, the daemon's
    // timestamps against tcpdump's on the same port.
    let group = ip(v4);
    let report = packets
        .iter()
        .find(|p| p.src == ip(HOST) && p.is_report() && p.covers(group))
        .unwrap_or_else(|| panic!("no report of {v4}:\n{}", full_listing(&packets)));
    let first = packets
        .iter()
        .find(|p| p.dst == group && !p.is_membership() && p.time >= report.time)
        .unwrap_or_else(|| panic!("no datagram of {v4}:\n{}", full_listing(&packets)));
    let captured_ms = (first.time - report.time) * 1e3;
    let delays = daemon.ctl_json(&["delays"]);
    let measured = delays["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == v4)
        .unwrap_or_else(|| panic!("no delay of {v4}: {delays}"));
    let measured_ms = measured["join"]["p50_ns"].as_u64().unwrap() as f64 / 1e6;
    assert!(
        (measured_ms - captured_ms).abs() < 5.0,
        "join delay: the daemon measured {measured_ms:.3} ms, the capture shows {captured_ms:.3} ms"
    );

    daemon.ctl_ok(&["leave", v4, "--host", HOST]);
    daemon.ctl_ok(&["leave", v6, "--host", HOST]);
    // The bridge's last-member queries (2 × 0.5 s), then the grace (3 s) and a margin.
    std::thread::sleep(secs(4));
    let before: Vec<Value> = [(S1, v4), (S1_V6, v6)]
        .iter()
        .map(|(s, g)| receiver(&daemon, HOST, s, g).unwrap())
        .collect();
    std::thread::sleep(secs(1));
    for (n, (source, group)) in [(S1, v4), (S1_V6, v6)].into_iter().enumerate() {
        let r = receiver(&daemon, HOST, source, group).unwrap();
        assert_eq!(count(&r, "after_leave"), 0, "{r}");
        assert_eq!(count(&r, "lost"), 0, "{r}");
        assert_eq!(
            count(&r, "received"),
            count(&before[n], "received"),
            "still forwarded: {r}"
        );
    }
    let sent = streams(&daemon)["streams"].as_array().unwrap().clone();
    assert_eq!(sent.len(), 2);
    for s in &sent {
        let rate = s["rate_pps"].as_f64().unwrap();
        let pps = s["pps"].as_f64().unwrap();
        assert!(
            (rate - pps).abs() <= pps * 0.01,
            "rate {rate} of {pps}: {s}"
        );
        assert_eq!(s["state"], "running");
    }
}

/// (leaks of S2, received of S1) for IPv4 and IPv6, with a bridge snooping in `igmp` / `mld`.
fn leaks(name: &str, igmp: u8, mld: u8) -> [(u64, u64); 2] {
    let Some(ns) = Netns::new(name) else {
        return [(0, 1); 2];
    };
    bridge(&ns, igmp, mld, true);
    let (v4, v6) = ("232.1.1.1", "ff3e::1:1");
    let tables = [(S1, v4), (S2, v4), (S1_V6, v6), (S2_V6, v6)]
        .iter()
        .map(|(s, g)| stream_table(s, g, "pps = 200\n"))
        .collect::<String>();
    let daemon = daemon(&ns, &tables);
    std::thread::sleep(secs(2));
    daemon.ctl_ok(&["join", v4, "--host", HOST, "--include", S1]);
    daemon.ctl_ok(&["join", v6, "--host", HOST, "--include", S1_V6]);
    wait_learned(&ns, v4);
    wait_learned(&ns, v6);
    std::thread::sleep(secs(2));
    [(v4, S1, S2), (v6, S1_V6, S2_V6)].map(|(group, good, bad)| {
        let wanted = receiver(&daemon, HOST, good, group)
            .unwrap_or_else(|| panic!("nothing of ({good}, {group}): {}", streams(&daemon)));
        assert_eq!(count(&wanted, "lost"), 0, "{wanted}");
        assert_eq!(count(&wanted, "source_leaks"), 0, "{wanted}");
        let leaked = receiver(&daemon, HOST, bad, group).map_or(0, |r| {
            assert_eq!(
                count(&r, "received"),
                0,
                "an excluded source is not received: {r}"
            );
            count(&r, "source_leaks")
        });
        (leaked, count(&wanted, "received"))
    })
}

/// IGMPv2 / MLDv1 snooping forwards every source of the group: the host's INCLUDE {S1} filter
/// names S2's datagrams as source leaks.
#[test]
fn an_igmpv2_snooping_bridge_leaks_the_other_source_and_it_is_counted() {
    for (family, (leaked, received)) in
        ["IPv4", "IPv6"]
            .into_iter()
            .zip(leaks("streams_leak_v2", 2, 1))
    {
        assert!(received > 0, "{family}");
        assert!(
            leaked > 100,
            "{family}: {leaked} leaks of S2 in 2 s at 200 pps"
        );
    }
}

/// IGMPv3 / MLDv2 snooping filters by source: no leak.
#[test]
fn an_igmpv3_snooping_bridge_filters_the_other_source_and_no_leak_is_counted() {
    for (family, (leaked, received)) in
        ["IPv4", "IPv6"]
            .into_iter()
            .zip(leaks("streams_leak_v3", 3, 2))
    {
        assert!(received > 0, "{family}");
        assert_eq!(leaked, 0, "{family}");
    }
}

/// The leave delay is the right stream's: the IGMPv2 snooping bridge goes on forwarding S2 to
/// a host that joined INCLUDE {S1} until its last-member queries end, after S1 stopped; the
/// host's leave delay stays 0 and S2's datagrams are leaks, not received.
#[test]
fn another_sources_datagrams_after_the_leave_do_not_delay_it() {
    let Some(ns) = Netns::new("streams_leave_source") else {
        return;
    };
    bridge(&ns, 2, 1, true);
    let group = "232.1.1.1";
    let tables = stream_table(S1, group, "pps = 200\n") + &stream_table(S2, group, "pps = 200\n");
    let daemon = daemon(&ns, &tables);
    std::thread::sleep(secs(2));
    daemon.ctl_ok(&["join", group, "--host", HOST, "--include", S1]);
    wait_learned(&ns, group);
    std::thread::sleep(secs(1));
    // S1 (stream 1) stops; S2 still flows, and the bridge forwards it while the host is a
    // member and through its last-member queries (2 × 0.5 s).
    daemon.ctl_ok(&["stream", "stop", "1"]);
    std::thread::sleep(ms(200));
    let leaks_before = receiver(&daemon, HOST, S2, group).map_or(0, |r| count(&r, "source_leaks"));
    daemon.ctl_ok(&["leave", group, "--host", HOST]);
    std::thread::sleep(secs(2));
    let s2 = receiver(&daemon, HOST, S2, group).expect("S2 reached the host");
    assert_eq!(count(&s2, "received"), 0, "{s2}");
    let leaked_after = count(&s2, "source_leaks") - leaks_before;
    assert!(
        leaked_after >= 50,
        "S2 forwarded after the leave: {leaked_after} datagrams, {s2}"
    );
    let delays = daemon.ctl_json(&["delays"]);
    let leave = &delays["leave"];
    assert_eq!(leave["count"], 1, "{delays}");
    assert_eq!(
        leave["max_ns"], 0,
        "S1 stopped before the leave: S2's datagrams do not delay it: {delays}"
    );
    assert_eq!(delays["forwarded_after_leave_total"], 0, "{delays}");
}

/// A `listen` client is checked against its own join, not its host's merged filter: the
/// client asked INCLUDE {S1}, another join of the same host INCLUDE {S2}; the bridge (IGMPv3)
/// rightly forwards both sources to the host, and the client counts S2's as leaks.
#[test]
fn a_listen_client_is_checked_against_its_own_filter() {
    let Some(ns) = Netns::new("streams_listen") else {
        return;
    };
    bridge(&ns, 3, 2, true);
    let group = "232.1.1.1";
    let tables = stream_table(S1, group, "pps = 200\n") + &stream_table(S2, group, "pps = 200\n");
    let daemon = daemon(&ns, &tables);
    std::thread::sleep(secs(2));
    let _client = daemon.listen(&[group, "--host", HOST, "--include", S1]);
    daemon.ctl_ok(&["join", group, "--host", HOST, "--include", S2]);
    wait_learned(&ns, group);
    std::thread::sleep(secs(2));
    for source in [S1, S2] {
        let r = receiver(&daemon, HOST, source, group).expect("the host's record");
        assert!(count(&r, "received") > 200, "{r}");
        assert_eq!(
            count(&r, "source_leaks"),
            0,
            "its merged filter admits both: {r}"
        );
    }
    let client = "listener 1";
    let wanted = receiver(&daemon, client, S1, group).expect("the client's record of S1");
    assert!(count(&wanted, "received") > 200, "{wanted}");
    assert_eq!(count(&wanted, "lost"), 0, "{wanted}");
    assert_eq!(count(&wanted, "source_leaks"), 0, "{wanted}");
    let other = receiver(&daemon, client, S2, group).expect("the client's record of S2");
    assert_eq!(count(&other, "received"), 0, "{other}");
    assert!(count(&other, "source_leaks") > 200, "{other}");
}

/// mcmangle between the source TAP and the bridge drops 50 and 100, repeats 70 and swaps 120
/// with 121 of a 300-packet stream: the receiver counts exactly that.
#[test]
fn loss_duplicates_and_reordering_made_on_the_way_are_counted_exactly() {
    let Some(ns) = Netns::new("streams_mangle") else {
        return;
    };
    bridge(&ns, 3, 2, false);
    ns.ip(&[
        "link", "add", "mg-in", "type", "veth", "peer", "name", "mg-out",
    ]);
    ns.ip(&["link", "set", "mg-out", "master", BR]);
    for dev in ["mg-in", "mg-out"] {
        ns.ip(&["link", "set", dev, "up"]);
    }
    let daemon = daemon(&ns, "");
    let _mangle = ns.spawn(
        "mcmangle",
        &bin("mcmangle"),
        &[
            "--from", SRC, "--to", "mg-in", "--drop", "50,100", "--repeat", "70", "--swap", "120",
        ],
    );
    for (group, source) in [("239.2.2.2", S1), ("ff1e::2:2", S1_V6)] {
        daemon.ctl_ok(&["join", group, "--host", HOST]);
        wait_learned(&ns, group);
        std::thread::sleep(secs(2));
        let added = daemon.ctl_ok(&[
            "stream", "add", "--link", SRC, "--source", source, "--group", group, "--pps", "500",
            "--count", "300",
        ]);
        assert!(added.starts_with("added 1 stream(s): "), "{added}");
        let all_in = wait_until(secs(5), || {
            receiver(&daemon, HOST, source, group).is_some_and(|r| count(&r, "received") >= 298)
        });
        assert!(
            all_in,
            "not all of ({source}, {group}) came: {}",
            streams(&daemon)
        );
        std::thread::sleep(ms(300));
        let r = receiver(&daemon, HOST, source, group).unwrap();
        assert_eq!(
            [
                count(&r, "received"),
                count(&r, "lost"),
                count(&r, "duplicates"),
                count(&r, "reordered")
            ],
            [298, 2, 1, 1],
            "{r}"
        );
        assert_eq!(
            count(&r, "bytes"),
            299 * 64,
            "every datagram's payload, the duplicate too"
        );
    }
    let sent = streams(&daemon)["streams"].as_array().unwrap().clone();
    assert!(
        sent.iter()
            .all(|s| s["sent"] == 300 && s["state"] == "done"),
        "{sent:?}"
    );
    // The same counters in `stats`, and per link with a label in the Prometheus text.
    let stats = daemon.stats();
    assert_eq!(stats["stream_tx_packets"], 600);
    assert_eq!(stats["stream_rx_lost"], 4);
    assert_eq!(stats["stream_rx_duplicates"], 2);
    let text = daemon.ctl_ok(&["stats", "--prometheus"]);
    for line in [
        "tunmcast_stream_rx_received_total 596",
        "# TYPE tunmcast_link_stream_rx_received_total counter",
        "tunmcast_link_stream_rx_received_total{link=\"tap-rx\"} 596",
        "tunmcast_link_stream_tx_packets_total{link=\"tap-src\"} 600",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
    // The tables for people: the streams, the receivers, the totals.
    let table = daemon.ctl_ok(&["streams", "--iface", RX]);
    assert!(table.starts_with("ID  LINK"), "{table}");
    assert!(
        table.contains("2 receivers (2 listed): received 596, lost 4, duplicates 2, reordered 2"),
        "{table}"
    );
    // Stop, start, remove: the reply names the streams, and a removed one is gone.
    assert_eq!(
        daemon.ctl_ok(&["stream", "stop", "1"]),
        "stopped 1 stream(s): 1\n"
    );
    assert_eq!(
        daemon.ctl_ok(&["stream", "remove", "--all"]),
        "removed 2 stream(s): 1 2\n"
    );
    assert!(streams(&daemon)["streams"].as_array().unwrap().is_empty());
}

/// Bad `stream add` arguments are refused with a clear error and change nothing; a bad
/// `[[stream]]` table stops the daemon from starting (exit 2, the file and line named), and on
/// SIGHUP is refused with the running streams kept.
#[test]
fn bad_stream_arguments_and_tables_are_refused_and_change_nothing() {
    let Some(ns) = Netns::new("streams_bad") else {
        return;
    };
    bridge(&ns, 3, 2, true);
    let daemon = daemon(&ns, &stream_table(S1, "239.3.3.3", "pps = 10\n"));
    let refused: [(&[&str], &str); 6] = [
        (
            &["--link", "nope", "--source", S1, "--group", "239.1.1.1"],
            "unknown link nope",
        ),
        (
            &["--link", SRC, "--source", S1, "--group", "10.1.1.1"],
            "not a multicast",
        ),
        (
            &["--link", SRC, "--source", S1_V6, "--group", "239.1.1.1"],
            "same family",
        ),
        (
            &[
                "--link",
                SRC,
                "--source",
                S1,
                "--group",
                "239.1.1.1",
                "--size",
                "8",
            ],
            "24-byte header",
        ),
        (
            &[
                "--link",
                SRC,
                "--source",
                S1,
                "--group",
                "239.1.1.1",
                "--pps",
                "0",
            ],
            "`pps`",
        ),
        (
            &[
                "--link",
                SRC,
                "--source",
                S1,
                "--group",
                "239.1.1.1",
                "--mac",
                "01:00:5e:00:00:01",
            ],
            "cannot be a multicast address",
        ),
    ];
    for (args, expected) in refused {
        let mut full = vec!["stream", "add"];
        full.extend_from_slice(args);
        let out = daemon.ctl(&full);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("tunmcastctl: ") && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
    }
    let out = daemon.ctl(&["stream", "stop", "99"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no stream 99"));
    let listed = streams(&daemon)["streams"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1, "only the file's stream: {listed:?}");
    assert_eq!(listed[0]["state"], "running");

    // A reload with a bad table: refused, the stream keeps running under its id.
    let config = ns.config_path();
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{good}rate = 5\n")).unwrap();
    daemon.signal(Signal::SIGHUP);
    must_wait("the reload refused", secs(3), || {
        daemon.show()["config_error"]
            .as_str()
            .is_some_and(|e| e.contains("unknown field `rate`"))
    });
    let after = streams(&daemon)["streams"].as_array().unwrap().clone();
    assert_eq!((after.len(), &after[0]["id"]), (1, &listed[0]["id"]));

    // A good reload adds the new table's stream and keeps the unchanged one running, its
    // sequence going on; then one without the first table removes it.
    let second = stream_table(S2, "239.3.3.4", "pps = 10\n");
    std::fs::write(&config, format!("{good}{second}")).unwrap();
    daemon.signal(Signal::SIGHUP);
    must_wait("the second stream", secs(3), || {
        streams(&daemon)["streams"].as_array().unwrap().len() == 2
    });
    let both = streams(&daemon)["streams"].as_array().unwrap().clone();
    assert_eq!(both[0]["id"], listed[0]["id"], "{both:?}");
    assert!(
        both[0]["sent"].as_u64() >= listed[0]["sent"].as_u64(),
        "{both:?}"
    );
    let first_table = stream_table(S1, "239.3.3.3", "pps = 10\n");
    std::fs::write(
        &config,
        format!("{}{second}", good.replace(&first_table, "")),
    )
    .unwrap();
    daemon.signal(Signal::SIGHUP);
    must_wait("the first stream removed", secs(3), || {
        let now = streams(&daemon)["streams"].as_array().unwrap().clone();
        now.len() == 1 && now[0]["id"] == both[1]["id"]
    });

    // At start: exit 2, the file's line and the key named, nothing made.
    let socket = ns.dir().join("bad.sock");
    for (table, expected) in [
        ("rate = 5\n", "unknown field `rate`"),
        ("size = 10\n", "[[stream]] #1: `size`"),
    ] {
        let text = format!(
            "[[link]]\ndevice = \"tap-bad\"\nkind = \"tap\"\nipv4 = \"10.99.7.2/24\"\n{}",
            stream_table(S1, "239.1.1.1", table).replace(SRC, "tap-bad")
        );
        let path = ns.dir().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let out = Command::new("ip")
            .args(["netns", "exec", ns.name()])
            .arg(bin("tunmcastd"))
            .arg("--config")
            .arg(&path)
            .arg("--control")
            .arg(&socket)
            .output()
            .expect("run tunmcastd");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("bad.toml:") && stderr.contains(expected),
            "{stderr}"
        );
        assert!(!socket.exists());
    }
}

/// Sending and checking do not delay the protocol: 200 hosts joined to 10 groups, a stream per
/// group (2,000 datagrams a second, each checked for every member host: 400,000 checks a
/// second in this debug build), and every host answers the bridge's IGMPv3 General Query inside
/// its Max Resp Time.
#[test]
fn queries_are_answered_in_time_while_streams_are_sent_and_checked() {
    const HOSTS: u32 = 200;
    const MAX_RESP_S: f64 = 3.0;
    let Some(ns) = Netns::new("streams_queries") else {
        return;
    };
    let config = SnoopingBridge {
        query_interval_cs: 500,
        response_interval_cs: 300,
        ..SnoopingBridge::default()
    };
    ns.snooping_bridge(BR, RX, "10.100.0.1/20", &config);
    ns.ip(&["tuntap", "add", "dev", SRC, "mode", "tap"]);
    ns.ip(&["link", "set", SRC, "master", BR]);
    ns.ip(&["link", "set", SRC, "up"]);
    let daemon = ns.spawn_configured(&format!(
        "log_level = \"warn\"\ncheck_streams = true\nsolicited_node = \"off\"\n\
         [[link]]\ndevice = \"{SRC}\"\nkind = \"tap\"\nipv4 = \"10.100.0.250/20\"\n\
         [[link]]\ndevice = \"{RX}\"\nkind = \"tap\"\nsuppression = false\n\
         [[link.hosts]]\ncount = {HOSTS}\nipv4 = \"10.100.1.10/20\"\n\
         [[stream]]\nlink = \"{SRC}\"\nsource = \"10.100.0.251\"\ngroup = \"239.50.0.1+10\"\n\
         pps = 200\n"
    ));
    let last = format!("10.100.{}.{}", 1 + (9 + HOSTS) / 256, (9 + HOSTS) % 256);
    daemon.ctl_ok(&[
        "join",
        "239.50.0.1+10",
        "--iface",
        RX,
        "--hosts",
        &format!("10.100.1.10-{last}"),
    ]);
    // The state-change reports out of the way; the streams reach every host.
    std::thread::sleep(secs(3));
    let mut capture = ns.capture_matching(RX, "igmp");
    let is_general =
        |p: &Pkt| p.kind == "igmp-query" && p.group.is_some_and(|g| g.is_unspecified());
    capture.wait_for("the bridge's next general query", secs(12), |p| {
        p.iter().any(is_general)
    });
    std::thread::sleep(secs_f64(MAX_RESP_S + 1.0));
    let packets = capture.stop_full();
    let query = packets.iter().find(|p| is_general(p)).unwrap().time;
    let answered: std::collections::BTreeSet<_> = packets
        .iter()
        .filter(|p| p.kind == "igmpv3-report" && p.time > query)
        .filter(|p| p.time <= query + MAX_RESP_S + SLACK)
        .filter(|p| p.records().iter().filter(|r| r.kind == "is_ex").count() == 10)
        .map(|p| p.src)
        .collect();
    let totals = &streams(&daemon)["totals"];
    eprintln!(
        "streams_queries: {} of {HOSTS} hosts answered in time; totals {totals}",
        answered.len()
    );
    assert_eq!(
        answered.len(),
        HOSTS as usize,
        "hosts answering the query in time"
    );
    assert!(
        count(totals, "received") > u64::from(HOSTS) * 10 * 200,
        "{totals}"
    );
}
