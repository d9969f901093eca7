//! `tunmcastd --run-test FILE --out DIR`, the one-shot form of a test run, against a Linux
//! bridge with IGMPv3 snooping: the daemon starts with its links (`--config`), runs the file's
//! zapping test driven by its own streams, writes `report.json`, `junit.xml` and
//! `report.html`, leaves every group (the bridge forgets them) and exits 0 on pass, 1 on a
//! broken SLA threshold; 2 when the test cannot start or the file is bad (its line and key
//! named, nothing started), or when SIGINT stops it (the reports written, marked partial).

use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use serde_json::Value;
use tests::*;

const BR: &str = "br0";
const RX: &str = "tap-rx";
const SRC: &str = "tap-src";
const CHANNELS: [&str; 4] = ["239.3.1.1", "239.3.1.2", "239.3.1.3", "239.3.1.4"];

/// The bridge (snooping, its own querier, left groups pruned 2 × 200 ms after the leave), the
/// hosts' port and the streams' port; the daemon's `--config` file: the streams' link and two
/// hosts on `tap-rx`. Returns once the querier's start-up hold (1 s) is over.
fn lab(ns: &Netns) -> PathBuf {
    let config = SnoopingBridge {
        last_member_interval_cs: 20,
        ..SnoopingBridge::default()
    };
    ns.snooping_bridge(BR, RX, KERNEL_V4_CIDR, &config);
    ns.ip(&["tuntap", "add", "dev", SRC, "mode", "tap"]);
    ns.ip(&["link", "set", SRC, "master", BR]);
    ns.ip(&["link", "set", SRC, "up"]);
    let links = ns.config_path();
    std::fs::write(
        &links,
        format!(
            "log_level = \"info\"\nv3_unsolicited_interval_ms = 200\n\
             [[link]]\ndevice = \"{SRC}\"\nkind = \"tap\"\nipv4 = \"10.99.0.250/24\"\n\
             [[link]]\ndevice = \"{RX}\"\nkind = \"tap\"\nsuppression = false\n\
             [[link.hosts]]\ncount = 2\nipv4 = \"10.99.0.10/24\"\n"
        ),
    )
    .unwrap();
    std::thread::sleep(ms(2000));
    links
}

/// A zapping test file: 2 hosts over the 4 channels, the run's own streams, `sla`.
fn test_file(ns: &Netns, name: &str, hosts: &str, sla: &str) -> PathBuf {
    test_file_viewing(ns, name, hosts, 300, sla)
}

/// [`test_file`] with each channel watched `view_ms`.
fn test_file_viewing(ns: &Netns, name: &str, hosts: &str, view_ms: u32, sla: &str) -> PathBuf {
    let file = ns.dir().join(format!("{name}.toml"));
    let channels: Vec<String> = CHANNELS.iter().map(|c| format!("\"{c}\"")).collect();
    std::fs::write(
        &file,
        format!(
            "[[test]]\nkind = \"zapping\"\nname = \"{name}\"\niface = \"{RX}\"\n\
             hosts = \"{hosts}\"\nchannels = [{}]\nview_ms = {view_ms}\ncount = 4\n\
             leave_grace_ms = 500\n\
             streams = {{ link = \"{SRC}\", source = \"10.99.0.251\", pps = 500 }}\n\
             [test.sla]\n{sla}\n",
            channels.join(", ")
        ),
    )
    .unwrap();
    file
}

/// `tunmcastd --config LINKS --run-test FILE [--out DIR]` in the namespace, to its end: its
/// exit status and its standard output and error.
fn run_test(ns: &Netns, links: &Path, file: &Path, out: Option<&Path>) -> (ExitStatus, String) {
    let mut daemon = spawn_run_test(ns, links, file, out);
    let status = daemon
        .wait_timeout(secs(30))
        .expect("tunmcastd --run-test exits once its test is over");
    let output = format!(
        "exit {status}\nstdout:\n{}\nstderr:\n{}",
        daemon.stdout_text(),
        daemon.stderr_text()
    );
    assert!(
        !ns.dir().join("ctl.sock").exists(),
        "the control socket is removed: {output}"
    );
    (status, output)
}

/// Starts `tunmcastd --config LINKS --run-test FILE [--out DIR]` in the namespace.
fn spawn_run_test(ns: &Netns, links: &Path, file: &Path, out: Option<&Path>) -> Spawned {
    let socket = ns.dir().join("ctl.sock");
    let mut args = vec![
        "--config",
        links.to_str().unwrap(),
        "--control",
        socket.to_str().unwrap(),
        "--run-test",
        file.to_str().unwrap(),
    ];
    if let Some(out) = out {
        args.extend(["--out", out.to_str().unwrap()]);
    }
    ns.spawn("tunmcastd-run-test", &bin("tunmcastd"), &args)
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// "12.345" for `ns`, as the reports write milliseconds.
fn ms_text(ns: u64) -> String {
    format!("{}.{:03}", ns / 1_000_000, ns % 1_000_000 / 1_000)
}

/// The three reports of `dir` exist and agree: JUnit's test cases are the JSON's checks (a
/// failure for each failed one, read by a real XML parser), the HTML page shows the JSON's
/// verdict and p50.
fn reports_agree(dir: &Path) -> Value {
    let report = read_json(&dir.join("report.json"));
    let junit = dir.join("junit.xml");
    let parsed = run_ok(
        "python3",
        &[
            "-c",
            "import sys, xml.etree.ElementTree as E\n\
             root = E.parse(sys.argv[1]).getroot()\n\
             for case in root.iter('testcase'):\n\
             \x20   print(case.get('name'), case.find('failure') is not None)",
            junit.to_str().unwrap(),
        ],
    );
    let cases: Vec<(String, bool)> = parsed
        .lines()
        .map(|line| {
            let (name, failed) = line.rsplit_once(' ').unwrap();
            (name.to_string(), failed == "True")
        })
        .collect();
    let checks: Vec<(String, bool)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                format!(
                    "{} {}",
                    c["name"].as_str().unwrap(),
                    c["scope"].as_str().unwrap()
                ),
                !c["pass"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(cases, checks, "one JUnit case per check of the JSON report");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let p50 = report["join_delay"]["p50_ns"].as_u64().unwrap();
    let shown = format!("id=\"join-p50\" data-ns=\"{p50}\">{}</td>", ms_text(p50));
    assert!(html.contains(&shown), "{shown} not in report.html");
    let verdict = report["verdict"].as_str().unwrap().to_uppercase();
    assert!(
        html.contains(&format!("id=\"verdict\">{verdict}</span>")),
        "{verdict} not in report.html"
    );
    report
}

/// The channels the bridge still has for the hosts' port.
fn channels_on_the_bridge(ns: &Netns) -> Vec<String> {
    ns.mdb(BR, RX)
        .groups()
        .iter()
        .map(|g| g.to_string())
        .filter(|g| CHANNELS.contains(&g.as_str()))
        .collect()
}

#[test]
fn run_test_runs_a_file_writes_its_reports_and_exits_with_its_verdict() {
    let Some(ns) = Netns::new("run_test") else {
        return;
    };
    let links = lab(&ns);

    // Pass: exit 0, every zap measured, the reports agree, the groups left on the wire.
    let file = test_file(
        &ns,
        "pass",
        "10.99.0.10-10.99.0.11",
        "max_join_delay_ms = 1000\nmax_loss = 0",
    );
    let out = ns.dir().join("pass");
    let (status, output) = run_test(&ns, &links, &file, Some(&out));
    assert_eq!(status.code(), Some(0), "{output}");
    assert!(output.contains("test pass (zapping): pass"), "{output}");
    let report = reports_agree(&out);
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["state"], "finished");
    assert_eq!(report["zaps"], 8, "2 hosts × 4 joins");
    assert_eq!(report["join_delay"]["count"], 8, "every zap measured");
    assert_eq!(report["traffic"]["lost"], 0, "{}", report["traffic"]);
    must_wait("the bridge forgetting the channels", secs(5), || {
        channels_on_the_bridge(&ns).is_empty()
    });

    // Fail: no join delay allowed: exit 1, the failed check in JUnit as in the JSON.
    let file = test_file(
        &ns,
        "fail",
        "10.99.0.10-10.99.0.11",
        "max_join_delay_ms = 0",
    );
    let out = ns.dir().join("fail");
    let (status, output) = run_test(&ns, &links, &file, Some(&out));
    assert_eq!(status.code(), Some(1), "{output}");
    let report = reports_agree(&out);
    assert_eq!(report["verdict"], "fail");
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(
        junit.contains("name=\"max_join_delay_ms overall\""),
        "{junit}"
    );
    must_wait("the bridge forgetting the channels", secs(5), || {
        channels_on_the_bridge(&ns).is_empty()
    });

    // Cannot run: a host the links do not have. Exit 2, why on stderr, no report.
    let file = test_file(&ns, "nohost", "10.99.0.10-10.99.0.50", "max_loss = 0");
    let out = ns.dir().join("nohost");
    let (status, output) = run_test(&ns, &links, &file, Some(&out));
    assert_eq!(status.code(), Some(2), "{output}");
    assert!(
        output.contains("test nohost cannot start: no host has the address 10.99.0.12"),
        "{output}"
    );
    assert!(!out.join("report.json").exists(), "{output}");

    // A bad file: refused with the file, the line and the key before anything starts.
    let bad = ns.dir().join("bad.toml");
    std::fs::write(
        &bad,
        "[[test]]\nkind = \"zapping\"\nchannels = [\"239.3.1.1\"]\nview = 100\n",
    )
    .unwrap();
    let (status, output) = run_test(&ns, &links, &bad, None);
    assert_eq!(status.code(), Some(2), "{output}");
    assert!(
        output.contains("bad.toml:4: [[test]]: unknown field `view`"),
        "{output}"
    );
    assert!(
        !output.contains("tunmcastd on"),
        "nothing started: {output}"
    );
}

/// SIGINT stops a `--run-test` run as `tunmcastctl test stop` does: its groups left, the
/// reports written and marked partial, exit 2.
#[test]
fn sigint_stops_a_run_test_with_a_partial_report() {
    let Some(ns) = Netns::new("run_test_sigint") else {
        return;
    };
    let links = lab(&ns);
    let file = test_file_viewing(&ns, "long", "10.99.0.10-10.99.0.11", 5000, "max_loss = 0");
    let out = ns.dir().join("long");
    let mut daemon = spawn_run_test(&ns, &links, &file, Some(&out));
    must_wait("the run's channels on the bridge", secs(10), || {
        channels_on_the_bridge(&ns).len() == 2
    });
    daemon.signal(Signal::SIGINT);
    let status = daemon.wait_timeout(secs(10)).expect("tunmcastd exits");
    let output = format!(
        "exit {status}\nstdout:\n{}\nstderr:\n{}",
        daemon.stdout_text(),
        daemon.stderr_text()
    );
    assert_eq!(status.code(), Some(2), "{output}");
    assert!(output.contains("(stopped: partial)"), "{output}");
    let report = reports_agree(&out);
    assert_eq!(report["state"], "stopped");
    assert_eq!(report["zaps"], 2, "each host's first join: {report}");
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(
        junit.contains("<property name=\"partial\" value=\"true\"/>"),
        "{junit}"
    );
    must_wait("the bridge forgetting the channels", secs(5), || {
        channels_on_the_bridge(&ns).is_empty()
    });
}
