//! Test runs against a real peer: the Linux bridge with IGMPv3 / MLDv2 snooping and its own
//! querier, the daemon's emulated hosts on a TAP port, a kernel-side sender on another port
//! (a veth from a second namespace) sending every channel at 200 datagrams a second.
//!
//! - Zapping (IGMP and MLD): every zap gets a join delay, below a sane bound; the verdict is
//!   pass and `--wait` exits 0; the same run with `--max-join-delay-ms 0` exits 1 and its
//!   JUnit file names the failed check; the HTML report, rendered by headless Chromium, shows
//!   the same p50 as the JSON report.
//! - RFC 3918 join/leave delay: nothing forwarded before the join or after the leave's grace;
//!   a join and a leave delay per host, group and iteration.
//! - Bad arguments and a bad `[[test]]` table: refused, naming what is wrong; nothing starts.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tests::*;

const BR: &str = "br0";
const TAP: &str = "tap1";
const HOSTS: &str = "10.99.0.10-10.99.0.12";
/// The daemon's HTTP view, inside the namespace.
const HTTP: &str = "127.0.0.1:8080";

/// How long the sender sends: longer than any run here.
const SENDING_S: u64 = 40;

/// The bridge with snooping and a querier, the daemon's three hosts on its TAP, and a
/// sender namespace on a veth port; the sender sends `channels` at 200 datagrams a second
/// each. Returns the sender's namespace (kept alive by the caller) and its process.
fn lab(ns: &Netns, test: &str, channels: &[&str]) -> (Netns, Spawned) {
    let src = Netns::new(&format!("{test}_src")).expect("privileged already checked");
    let config = SnoopingBridge {
        // Unwatched channels pruned 2 × 200 ms after their leave.
        last_member_interval_cs: 20,
        ..SnoopingBridge::default()
    };
    ns.snooping_bridge(BR, TAP, KERNEL_V4_CIDR, &config);
    ns.ip(&["link", "add", "vbr", "type", "veth", "peer", "name", "vsrc"]);
    ns.ip(&["link", "set", "vsrc", "netns", src.name()]);
    ns.ip(&["link", "set", "vbr", "master", BR]);
    ns.ip(&["link", "set", "vbr", "up"]);
    src.ip(&["addr", "add", "10.99.0.200/24", "dev", "vsrc"]);
    src.ip(&["-6", "addr", "add", "fe80::200/64", "dev", "vsrc", "nodad"]);
    src.ip(&["link", "set", "lo", "up"]);
    src.ip(&["link", "set", "vsrc", "up"]);
    let groups: Vec<String> = channels.iter().map(|g| format!("'{g}'")).collect();
    let script = format!(
        "import socket,time\n\
         groups=[{}]\n\
         v6=':' in groups[0]\n\
         s=socket.socket(socket.AF_INET6 if v6 else socket.AF_INET,socket.SOCK_DGRAM)\n\
         if v6:\n s.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_MULTICAST_IF,socket.if_nametoindex('vsrc'))\n\
         else:\n s.setsockopt(socket.IPPROTO_IP,socket.IP_MULTICAST_IF,socket.inet_aton('10.99.0.200'))\n\
         end=time.time()+{SENDING_S}\n\
         n=0\n\
         start=time.time()\n\
         while time.time()<end:\n\
         \x20for g in groups: s.sendto(b'x'*64,(g,5000))\n\
         \x20n+=1\n\
         \x20time.sleep(max(0,start+n*0.005-time.time()))\n",
        groups.join(",")
    );
    let sender = src.spawn("sender", Path::new("python3"), &["-c", &script]);
    (src, sender)
}

/// The daemon: three hosts from 10.99.0.10 on the TAP, behind a snooping switch, plus
/// `extra` configuration text.
fn daemon<'n>(ns: &'n Netns, extra: &str) -> Daemon<'n> {
    ns.spawn_configured(&format!(
        "log_level = \"info\"\n\
         v3_unsolicited_interval_ms = 200\n\
         {extra}\n\
         [[link]]\ndevice = \"{TAP}\"\nkind = \"tap\"\nsuppression = false\n\
         [[link.hosts]]\ncount = 3\nipv4 = \"10.99.0.10/24\"\n"
    ))
}

/// The bridge's querier is up (`queries` counted its first queries), and its start-up hold
/// on snooped forwarding (one query response interval, 1 s: see `tests/src/bridge.rs`) is
/// over: a join made before then waits for the hold, not for the bridge.
fn wait_for_the_querier(daemon: &Daemon, queries: &str) {
    must_wait("the bridge's first queries", secs(10), || {
        daemon.counter(queries) >= 3
    });
    std::thread::sleep(ms(1500));
}

/// The groups the test runs still hold (their owner is `test:NAME`).
fn test_groups(daemon: &Daemon) -> Vec<Value> {
    daemon
        .groups()
        .into_iter()
        .filter(|g| {
            g["requests"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["owner"].as_str().is_some_and(|o| o.starts_with("test:")))
        })
        .collect()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn status(output: &std::process::Output) -> i32 {
    output.status.code().expect("exited")
}

fn describe(output: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Zaps across 4 channels; what every zapping test checks.
fn zapping_through_the_bridge(test: &str, channels: [&str; 4], queries: &str) {
    let Some(ns) = Netns::new(test) else { return };
    let (_src, sender) = lab(&ns, test, &channels);
    let daemon = daemon(&ns, &format!("http = \"{HTTP}\""));
    wait_for_the_querier(&daemon, queries);
    // The kernel stamps' sockets are hooked only while something measures: a run.
    let unhooked = |d: &Daemon<'_>| d.packet_sockets().iter().all(|s| !s.hooked);
    assert!(unhooked(&daemon), "{:?}", daemon.packet_sockets());
    let list = channels.join(",");
    let out: PathBuf = ns.dir().join("pass");
    let zapping = |name: &str, dir: &Path, extra: &[&str]| {
        let mut args = vec![
            "test",
            "zapping",
            "--name",
            name,
            "--hosts",
            HOSTS,
            "--channels",
            &list,
            "--view-ms",
            "800",
            "--count",
            "4",
            "--leave-grace-ms",
            "1500",
            "--wait",
            "--out",
            dir.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        daemon.ctl(&args)
    };

    // IGMP: the daemon's figures are checked against a capture of the TAP.
    let ipv4 = channels[0].contains('.');
    let captures = ipv4.then(|| {
        let udp_file = ns.dir().join("udp.pcap");
        let udp = ns.tcpdump("tcpdump-udp", TAP, "udp", &udp_file);
        must_wait("tcpdump listening", secs(10), || {
            udp.stderr_text().contains("listening on")
        });
        (ns.capture(TAP), udp, udp_file)
    });
    let run = zapping("iptv", &out, &["--max-join-delay-ms", "1000"]);
    assert_eq!(status(&run), 0, "{}", describe(&run));
    let report = read_json(&out.join("report.json"));
    if let Some((mut capture, udp, udp_file)) = captures {
        let packets = capture.stop_full();
        udp.signal(Signal::SIGTERM);
        compare_with_the_capture(&report, &packets, &udp_file);
    }
    eprintln!("{test}: {}", String::from_utf8_lossy(&run.stdout));
    assert_eq!(report["schema"], 1);
    assert_eq!(
        report["arrival_stamps"], "kernel",
        "how its delays were stamped"
    );
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["state"], "finished");
    assert_eq!(report["zaps"], 12, "3 hosts × 4 joins");
    assert_eq!(
        report["join_delay"]["count"], 12,
        "every zap got a join delay"
    );
    assert_eq!(report["not_received"], 0);
    let max = report["join_delay"]["max_ns"].as_u64().unwrap();
    assert!(max < 1_000_000_000, "join delays below 1 s: max {max} ns");
    let p50 = report["join_delay"]["p50_ns"].as_u64().unwrap();
    assert!(p50 <= max);
    assert_eq!(report["channels"].as_array().unwrap().len(), 4);
    assert_eq!(report["per_host"].as_array().unwrap().len(), 3);
    // Every record: the join written, then the first datagram after it.
    for record in report["records"].as_array().unwrap() {
        if record["to"].is_string() {
            let sent = record["join_sent_ns"].as_u64().unwrap();
            let first = record["first_packet_ns"].as_u64().unwrap();
            assert!(first >= sent, "{record}");
        } else {
            assert!(
                record["leave_sent_ns"].is_u64(),
                "the final leave went out: {record}"
            );
        }
    }
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(!junit.contains("<failure"), "{junit}");
    // The hosts a page at a time.
    let page = daemon.ctl_json(&[
        "test",
        "status",
        "iptv",
        "--host-offset",
        "1",
        "--host-limit",
        "1",
    ]);
    assert_eq!(
        page["tests"][0]["per_host"][0]["of"], "10.99.0.11",
        "{page}"
    );
    assert_eq!(page["tests"][0]["per_host_total"], 3);
    // `test report` writes the same file later.
    let again = ns.dir().join("again.xml");
    daemon.ctl_ok(&[
        "test",
        "report",
        "iptv",
        "--format",
        "junit",
        "--out",
        again.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(&again).unwrap(), junit);
    assert_eq!(
        junit.matches("<testcase ").count(),
        6,
        "overall, 4 channels, not received"
    );

    // The HTML report as Chromium renders it shows the JSON's p50.
    if chromium_available() {
        let url = format!("file://{}", out.join("report.html").display());
        let dom = ns.dump_dom(&url, secs(2));
        let shown = format!("id=\"join-p50\" data-ns=\"{p50}\">{}</td>", ms_text(p50));
        assert!(dom.contains(&shown), "{shown} not in the page:\n{dom}");
        for plot in [
            "join-histogram",
            "cdf",
            "channel-bars",
            "host-bars",
            "timeline",
        ] {
            assert!(dom.contains(&format!("<figure id=\"{plot}\">")), "{plot}");
        }
        assert!(dom.contains("id=\"verdict\">PASS</span>"));
        assert!(dom.contains("<span id=\"arrival-stamps\">kernel</span>"));
        // The HTTP view's test panel says the same.
        let page = ns.dump_dom(&format!("http://{HTTP}/"), secs(3));
        let cell = format!(
            "data-field=\"p50_ns\" data-ns=\"{p50}\">{}</td>",
            ms_text(p50)
        );
        assert!(page.contains(&cell), "{cell} not on the live page");
        assert!(page.contains("data-verdict=\"pass\""));
    }
    let api = ns.http_get(HTTP.parse().unwrap(), "/api/test").json();
    assert_eq!(api["tests"][0]["join_delay"]["p50_ns"], p50);
    assert_eq!(api["tests"][0]["verdict"], "pass");
    // /metrics: the zap times as histograms, read by the Prometheus parser; every join delay
    // of the run counted, their mean the report's.
    let text = ns.http_get(HTTP.parse().unwrap(), "/metrics").text();
    let families = parse_prometheus(&text);
    check_families(&text, &families);
    let zaps = check_histogram(
        &families["tunmcast_test_join_delay_seconds"],
        "test join delay",
    );
    assert_eq!(
        Some(zaps),
        api["tests"][0]["join_delay"]["count"].as_u64(),
        "{text}"
    );
    check_histogram(
        &families["tunmcast_test_leave_delay_seconds"],
        "test leave delay",
    );

    // The same with no join delay allowed: exit 1, the JUnit file names the check.
    let strict = ns.dir().join("strict");
    let run = zapping("strict", &strict, &["--max-join-delay-ms", "0"]);
    assert_eq!(status(&run), 1, "{}", describe(&run));
    let report = read_json(&strict.join("report.json"));
    assert_eq!(report["verdict"], "fail");
    let junit = std::fs::read_to_string(strict.join("junit.xml")).unwrap();
    assert!(junit.contains("<failure type=\"sla\""), "{junit}");
    assert!(
        junit.contains("name=\"max_join_delay_ms overall\""),
        "{junit}"
    );
    assert!(junit.contains("threshold 0.000 ms"), "{junit}");
    // A real XML parser reads it: 6 test cases, the failures among them.
    let counted = tests::run_ok(
        "python3",
        &[
            "-c",
            "import sys, xml.etree.ElementTree as E\n\
             root = E.parse(sys.argv[1]).getroot()\n\
             print(len(list(root.iter('testcase'))), len(list(root.iter('failure'))))",
            strict.join("junit.xml").to_str().unwrap(),
        ],
    );
    let (cases, failures) = counted.trim().split_once(' ').unwrap();
    assert_eq!(cases, "6", "{junit}");
    assert!(
        failures.parse::<u32>().unwrap() >= 2,
        "overall and a channel: {junit}"
    );
    let mut runs = 2;
    if ipv4 {
        // SSM: every channel joined INCLUDE {the sender}: the bridge forwards them all...
        let ssm = ns.dir().join("ssm");
        let run = zapping("ssm", &ssm, &["--sources", "10.99.0.200"]);
        assert_eq!(status(&run), 0, "{}", describe(&run));
        let report = read_json(&ssm.join("report.json"));
        assert_eq!(
            report["join_delay"]["count"], 12,
            "{}",
            report["join_delay"]
        );
        assert_eq!(report["spec"]["sources"][0], "10.99.0.200");
        // ...and from another source, none: every zap not received, exit 1.
        let other = ns.dir().join("other");
        let run = zapping("other-source", &other, &["--sources", "10.99.0.201"]);
        assert_eq!(status(&run), 1, "{}", describe(&run));
        let report = read_json(&other.join("report.json"));
        assert_eq!(report["not_received"], 12, "{report}");
        runs += 2;
    }
    // Every run is kept; the groups are all left.
    let status_all = daemon.ctl_json(&["test", "status"]);
    assert_eq!(status_all["tests"].as_array().unwrap().len(), runs);
    assert_eq!(test_groups(&daemon), Vec::<Value>::new());
    assert!(daemon.counter("rx_kernel_stamps") > 0);
    must_wait(
        "the packet sockets unhooked after the runs",
        secs(5),
        || unhooked(&daemon),
    );
    sender.signal(Signal::SIGTERM);
}

/// Each zap's join delay as the capture of the TAP has it (the host's first report with
/// TO_EX(G) to the first datagram of G after it) against the daemon's: the median within 0.5
/// ms (the daemon stamps a datagram with the kernel's time of sending it to the TAP, as the
/// capture does: 0.012 ms at most when written), the largest difference within 20 (the OS may
/// take the core from the loop between a report's stamp and its write, on a shared machine).
fn compare_with_the_capture(report: &Value, packets: &[Pkt], udp_file: &Path) {
    let datagrams = datagram_times(udp_file);
    let mut differences = Vec::new();
    for record in report["records"].as_array().unwrap() {
        let (Some(to), Some(delay)) = (record["to"].as_str(), record["join_delay_ns"].as_u64())
        else {
            continue;
        };
        let host: IpAddr = record["host"].as_str().unwrap().parse().unwrap();
        let sent = packets
            .iter()
            .filter(|p| p.src == host && p.is_report())
            .find(|p| {
                p.records()
                    .iter()
                    .any(|r| r.kind == "to_ex" && r.group.to_string() == to)
            })
            .unwrap_or_else(|| panic!("no TO_EX({to}) from {host} in the capture"))
            .time;
        let first = datagrams[to]
            .iter()
            .copied()
            .find(|&t| t >= sent)
            .unwrap_or_else(|| panic!("no datagram of {to} after {host}'s join"));
        differences.push(((first - sent) * 1e3 - delay as f64 / 1e6).abs());
    }
    differences.sort_by(f64::total_cmp);
    eprintln!(
        "the daemon's join delays against the capture's, |difference| in ms: {differences:.3?}"
    );
    assert_eq!(differences.len(), 12, "every zap found in the capture");
    assert!(differences[6] < 0.5, "{differences:?}");
    assert!(differences[11] < 20.0, "{differences:?}");
}

/// "12.345" for `ns`, as the reports write milliseconds.
fn ms_text(ns: u64) -> String {
    format!("{}.{:03}", ns / 1_000_000, ns % 1_000_000 / 1_000)
}

#[test]
fn igmp_zapping_through_a_snooping_bridge() {
    zapping_through_the_bridge(
        "zapping_igmp",
        ["239.9.0.1", "239.9.0.2", "239.9.0.3", "239.9.0.4"],
        "igmp_rcv_v3_queries",
    );
}

#[test]
fn mld_zapping_through_a_snooping_bridge() {
    zapping_through_the_bridge(
        "zapping_mld",
        ["ff1e::9:1", "ff1e::9:2", "ff1e::9:3", "ff1e::9:4"],
        "mld_rcv_v2_queries",
    );
}

/// RFC 3918 §6.1/§6.2 through the bridge, started from a `[[test]]` table by name:
/// nothing before the join, a join and a leave delay per (host, group, iteration), nothing
/// after the leave's grace.
#[test]
fn rfc3918_join_and_leave_delay_through_a_snooping_bridge() {
    let test = "zapping_rfc3918";
    let Some(ns) = Netns::new(test) else { return };
    let (_src, sender) = lab(&ns, test, &["239.9.1.1", "239.9.1.2"]);
    let daemon = daemon(
        &ns,
        "[[test]]\nkind = \"rfc3918-join-leave\"\nname = \"rfc\"\n\
         hosts = \"10.99.0.10-10.99.0.11\"\ngroups = [\"239.9.1.1\", \"239.9.1.2\"]\n\
         iterations = 2\ncheck_ms = 500\nhold_ms = 1000\nleave_grace_ms = 1500\n\
         [test.sla]\nmax_join_delay_ms = 1000\nmax_leave_delay_ms = 1500\n",
    );
    wait_for_the_querier(&daemon, "igmp_rcv_v3_queries");
    let out = ns.dir().join("rfc");
    let run = daemon.ctl(&[
        "test",
        "start",
        "rfc",
        "--wait",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(status(&run), 0, "{}", describe(&run));
    let report = read_json(&out.join("report.json"));
    assert_eq!(report["kind"], "rfc3918-join-leave");
    assert_eq!(
        report["spec"]["iterations"], 2,
        "the parameters are in the report"
    );
    assert_eq!(report["forwarded_without_join"], 0);
    assert_eq!(report["forwarded_after_leave"], 0);
    assert_eq!(
        report["join_delay"]["count"], 8,
        "2 hosts × 2 groups × 2 iterations"
    );
    assert_eq!(report["leave_delay"]["count"], 8);
    assert_eq!(report["verdict"], "pass");
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    for check in [
        "forwarded_without_join",
        "forwarded_after_leave",
        "max_leave_delay_ms",
    ] {
        assert!(junit.contains(check), "{check}: {junit}");
    }
    // The same from a test file: `test run FILE --out DIR` writes the three reports.
    let file = ns.dir().join("one.toml");
    std::fs::write(
        &file,
        "[[test]]\nkind = \"rfc3918-join-leave\"\nname = \"from-file\"\n\
         hosts = \"10.99.0.12\"\ngroups = [\"239.9.1.2\"]\niterations = 1\ncheck_ms = 500\n\
         hold_ms = 500\nleave_grace_ms = 1500\n",
    )
    .unwrap();
    let from_file = ns.dir().join("from-file");
    let run = daemon.ctl(&[
        "test",
        "run",
        file.to_str().unwrap(),
        "--out",
        from_file.to_str().unwrap(),
    ]);
    assert_eq!(status(&run), 0, "{}", describe(&run));
    let report = read_json(&from_file.join("report.json"));
    assert_eq!(report["name"], "from-file");
    assert_eq!(report["join_delay"]["count"], 1);
    for file in ["junit.xml", "report.html"] {
        assert!(from_file.join(file).is_file(), "{file}");
    }
    sender.signal(Signal::SIGTERM);
}

/// Bad arguments and bad tables are refused with what is wrong; nothing starts.
#[test]
fn bad_tests_are_refused_and_nothing_starts() {
    let Some(ns) = Netns::new("zapping_bad") else {
        return;
    };
    ns.snooping_bridge(BR, TAP, KERNEL_V4_CIDR, &SnoopingBridge::default());
    let daemon = daemon(&ns, "");
    for (args, expected) in [
        (
            vec!["--channels", "239.1.1.1,10.1.1.1"],
            "channels: 10.1.1.1 is not a multicast address",
        ),
        (
            vec!["--channels", "239.1.1.1,ff1e::1"],
            "are not of one family",
        ),
        (
            vec!["--channels", "239.1.1.1", "--view-ms", "0"],
            "view_ms: 1 to 3600000 ms",
        ),
        (
            vec![
                "--channels",
                "239.1.1.1",
                "--hosts",
                "10.99.0.10-10.99.0.50",
            ],
            "no host has the address 10.99.0.13",
        ),
        (
            vec!["--channels", "239.1.1.1", "--order", "random"],
            "order = random needs 2 channels",
        ),
    ] {
        let mut argv = vec!["test", "zapping"];
        argv.extend(args);
        let run = daemon.ctl(&argv);
        assert_eq!(status(&run), 2, "{argv:?}: {}", describe(&run));
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains(expected), "{argv:?}: {stderr}");
    }
    let none = daemon.ctl(&["test", "start", "nothing", "--wait"]);
    assert_eq!(status(&none), 2, "{}", describe(&none));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no [[test]] named nothing"));
    assert_eq!(
        daemon.ctl_json(&["test", "status"])["tests"],
        Value::Array(Vec::new()),
        "nothing started"
    );
    assert_eq!(test_groups(&daemon), Vec::<Value>::new());
    assert!(daemon
        .groups()
        .iter()
        .all(|g| !g["group"].as_str().unwrap().starts_with("239.")));

    // A test file with a bad table: `test run` names the file, the line and the key.
    let file = ns.dir().join("bad.toml");
    std::fs::write(
        &file,
        "[[test]]\nkind = \"zapping\"\nchannels = [\"239.1.1.1\"]\nview = 100\n",
    )
    .unwrap();
    let run = daemon.ctl(&["test", "run", file.to_str().unwrap()]);
    assert_eq!(status(&run), 2, "{}", describe(&run));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("bad.toml:4: [[test]]: unknown field `view`"),
        "{stderr}"
    );

    // SIGHUP reads the [[test]] tables again: a bad one is refused and shown, a good one
    // can be started by name.
    let base = std::fs::read_to_string(ns.config_path()).unwrap();
    std::fs::write(
        ns.config_path(),
        format!(
            "{base}\n[[test]]\nkind = \"zapping\"\nname = \"later\"\nchannels = [\"10.1.1.1\"]\n"
        ),
    )
    .unwrap();
    daemon.signal(Signal::SIGHUP);
    must_wait("the bad table shown", secs(5), || {
        daemon.show()["config_error"]
            .as_str()
            .is_some_and(|e| e.contains("[[test]] later: channels: 10.1.1.1 is not a multicast"))
    });
    std::fs::write(
        ns.config_path(),
        format!(
            "{base}\n[[test]]\nkind = \"zapping\"\nname = \"later\"\nchannels = [\"239.9.3.1\"]\n"
        ),
    )
    .unwrap();
    daemon.signal(Signal::SIGHUP);
    must_wait("the table read again", secs(5), || {
        daemon.ctl(&["test", "start", "later"]).status.success()
    });
    daemon.ctl_ok(&["test", "stop", "later"]);

    // The daemon refuses to start on a configuration file with a bad [[test]] table.
    let config = ns.dir().join("bad-daemon.toml");
    std::fs::write(&config, "[[test]]\nkind = \"zapping\"\nchannels = []\n").unwrap();
    let refused = tests::run(bin("tunmcastd"), &["--config", config.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2), "{}", describe(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("channels: give at least one group"),
        "{}",
        describe(&refused)
    );
}

/// Ctrl-C on a `--wait`ing `tunmcastctl` stops the run: its groups are left, the reports say
/// "stopped" (partial), the exit status is 2.
#[test]
fn ctrl_c_stops_a_waiting_run_and_leaves_its_groups() {
    let Some(ns) = Netns::new("zapping_ctrl_c") else {
        return;
    };
    ns.snooping_bridge(BR, TAP, KERNEL_V4_CIDR, &SnoopingBridge::default());
    let daemon = daemon(&ns, "");
    let out = ns.dir().join("stopped");
    let socket = daemon.socket().to_str().unwrap().to_string();
    let mut waiting = ns.spawn(
        "tunmcastctl-wait",
        &bin("tunmcastctl"),
        &[
            "--control",
            &socket,
            "test",
            "zapping",
            "--hosts",
            HOSTS,
            "--channels",
            "239.9.2.1,239.9.2.2",
            "--view-ms",
            "4500",
            "--wait",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    must_wait("the test's joins", secs(5), || {
        test_groups(&daemon).len() == 3
    });
    waiting.signal(Signal::SIGINT);
    let status = waiting.wait_timeout(secs(5)).expect("tunmcastctl exits");
    assert_eq!(status.code(), Some(2), "{}", waiting.stderr_text());
    assert!(waiting.stdout_text().contains("(stopped: partial)"));
    let report = read_json(&out.join("report.json"));
    assert_eq!(report["state"], "stopped");
    // Hosts start 1.5 s apart; the first zaps again at 4.5 s.
    assert!(report["zaps"].as_u64().unwrap() >= 3, "{}", report["zaps"]);
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(
        junit.contains("<property name=\"partial\" value=\"true\"/>"),
        "{junit}"
    );
    must_wait("every group of the test left", secs(5), || {
        test_groups(&daemon).is_empty()
    });
}
