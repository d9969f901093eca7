//! Faults and abuse: a flood of a million packets from the kernel side (`mcflood`), the TUN
//! device deleted under the daemon, SIGKILL and a restart from the state file, and a thousand
//! control clients at once mixed with hostile ones.
//!
//! Two of them pin defects found while writing these, since fixed: control requests starved
//! during a flood, and descriptor exhaustion from control clients taken for a deleted TUN.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tests::*;

const FLOOD_COUNT: u64 = 1_000_000;
/// Max Resp Time of the queries in mcflood's mix (IGMPv2 code 100, MLDv1 10000 ms).
const FLOOD_MAX_RESP_MS: u64 = 10_000;
const MIB: u64 = 1024;
/// Where mcflood's invalid packets are counted: bad IGMP checksum, IPv4 header cut short,
/// IPv4 fragment, bad ICMPv6 checksum, MLD without Router Alert, not IP.
const FLOOD_DROPS: [&str; 6] = [
    "drop_igmp_bad_checksum",
    "drop_ipv4_truncated",
    "drop_fragment",
    "drop_mld_bad_checksum",
    "drop_mld_no_router_alert",
    "drop_not_ip",
];
/// Counters of mcflood's valid packets: v2 general query, v2 report, v3 report, MLDv1
/// general query, MLDv1 report, MLDv2 report.
const FLOOD_ACCEPTED: [&str; 6] = [
    "igmp_rcv_v2_queries",
    "igmp_rcv_v2_reports",
    "igmp_rcv_v3_reports",
    "mld_rcv_queries",
    "mld_rcv_reports",
    "mld_rcv_v2_reports",
];

fn netns(test: &str) -> Option<Netns> {
    let ns = Netns::new(test)?;
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    // Exact packet accounting: no Router Solicitations from the kernel.
    ns.no_router_solicitations(TUN);
    Some(ns)
}

fn count(stats: &Map<String, Value>, name: &str) -> u64 {
    stats
        .get(name)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no counter {name} in {stats:?}"))
}

/// Drop reasons decided at the IP level, before IGMP or MLD see the packet.
fn ip_level_drop(name: &str) -> bool {
    name == "drop_not_ip"
        || name == "drop_fragment"
        || name == "drop_other_ipv4"
        || name == "drop_other_ipv6"
        || name.starts_with("drop_ipv4_")
        || name.starts_with("drop_ipv6_")
}

/// `show --json` through the real CLI from any thread (a [`Daemon`] stays on its test's
/// thread): the reply or the CLI's complaint, and how long it took.
fn show_from(ctl: &Path, socket: &Path) -> (Result<Value, String>, Duration) {
    let started = Instant::now();
    let out = Command::new(ctl)
        .arg("--control")
        .arg(socket)
        .args(["--json", "show"])
        .output()
        .expect("run tunmcastctl");
    let took = started.elapsed();
    let reply = if out.status.success() {
        serde_json::from_slice(&out.stdout).map_err(|e| format!("show JSON: {e}"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    };
    (reply, took)
}

/// Every joined group is listed once, with at most one report pending (a single timer, no
/// later than the flood queries' Max Resp Time).
fn check_one_timer_per_group(show: &Value, groups: &[&str]) {
    let listed = show["groups"].as_array().expect("groups array");
    assert_eq!(listed.len(), groups.len(), "{show}");
    for group in groups {
        let entries: Vec<&Value> = listed
            .iter()
            .filter(|g| g["group"].as_str().map(ip) == Some(ip(group)))
            .collect();
        assert_eq!(
            entries.len(),
            1,
            "{group} listed {} times: {show}",
            entries.len()
        );
        let timer = &entries[0]["timer_ms"];
        assert!(
            timer.is_null() || timer.as_u64().is_some_and(|t| t <= FLOOD_MAX_RESP_MS),
            "{group}: timer_ms {timer} is not one pending report: {show}"
        );
        assert_eq!(entries[0]["users"], 1, "{show}");
    }
}

#[test]
fn a_million_packet_flood_keeps_memory_flat_and_every_packet_accounted_for() {
    let Some(ns) = netns("flood") else { return };
    let groups = [
        "239.1.2.3",
        "239.4.5.6",
        "239.7.8.9",
        "ff12::1234",
        "ff05::4:5:6",
        "ff0e::7:8:9",
    ];
    let mut daemon = ns.spawn_daemon(&["--robustness", "1"]);
    for group in groups {
        daemon.ctl_ok(&["join", group]);
    }
    daemon.wait_quiet(secs(3));
    let pid = daemon.pid();
    let before = daemon.stats();
    let link_before = ns.link_counters(TUN);
    let rss_before = rss_kib(pid).expect("daemon RSS");

    let mut flood = ns.spawn(
        "mcflood",
        &bin("mcflood"),
        &["--dev", TUN, "--count", &FLOOD_COUNT.to_string(), "--json"],
    );
    // While it runs: RSS every 10 ms, and `show` over and over from another thread.
    let ctl = bin("tunmcastctl");
    let socket = daemon.socket().to_path_buf();
    let shows = Mutex::new(Vec::new());
    let flooding = std::sync::atomic::AtomicBool::new(true);
    let mut rss_during = Vec::new();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while flooding.load(Ordering::Relaxed) {
                let reply = show_from(&ctl, &socket);
                shows.lock().unwrap().push(reply);
            }
        });
        let deadline = Instant::now() + secs(50);
        while flood.try_status().is_none() && Instant::now() < deadline {
            if let Some(rss) = rss_kib(pid) {
                rss_during.push(rss);
            }
            std::thread::sleep(ms(10));
        }
        flooding.store(false, Ordering::Relaxed);
    });
    let status = flood.wait_timeout(secs(1)).expect("mcflood ended");
    assert!(status.success(), "mcflood failed: {}", flood.stderr_text());
    let report: Value = serde_json::from_str(flood.stdout_text().trim())
        .unwrap_or_else(|e| panic!("mcflood --json: {e}: {}", flood.stdout_text()));
    assert_eq!(report["sent"], FLOOD_COUNT, "{report}");

    // Once the daemon has read everything the TUN queued for it, the books must balance.
    let mut after = daemon.stats();
    let mut link_after = ns.link_counters(TUN);
    let drained = wait_until(secs(10), || {
        after = daemon.stats();
        link_after = ns.link_counters(TUN);
        count(&after, "tun_rx_packets") - count(&before, "tun_rx_packets")
            == link_after.tx_packets - link_before.tx_packets
    });
    let rss_after = rss_kib(pid).expect("daemon still running");
    assert!(
        drained,
        "the daemon read {} packets, the kernel queued {} for it",
        count(&after, "tun_rx_packets") - count(&before, "tun_rx_packets"),
        link_after.tx_packets - link_before.tx_packets
    );
    let delta = |name: &str| count(&after, name) - count(&before, name);
    let read = delta("tun_rx_packets");
    let kernel_dropped = link_after.tx_dropped - link_before.tx_dropped;
    let written = link_after.tx_packets - link_before.tx_packets + kernel_dropped;
    // Every packet mcflood wrote either reached the daemon or was dropped by the TUN because
    // the daemon was busy (the namespace's kernel sends next to nothing on the link: Router
    // Solicitations are off).
    assert!(
        (FLOOD_COUNT..FLOOD_COUNT + 5).contains(&written),
        "kernel: {} queued + {kernel_dropped} dropped, for {FLOOD_COUNT} written",
        link_after.tx_packets - link_before.tx_packets
    );
    // Every packet the daemon read went to the core, and ended up accepted by IGMP or MLD
    // or dropped at the IP level.
    assert_eq!(
        count(&after, "tun_rx_packets"),
        count(&after, "ip_rcv_total"),
        "{after:?}"
    );
    let ip_drops: u64 = after
        .iter()
        .filter(|(name, _)| ip_level_drop(name))
        .map(|(_, v)| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        count(&after, "ip_rcv_total"),
        ip_drops + count(&after, "igmp_rcv_total") + count(&after, "mld_rcv_total"),
        "ip_rcv_total != IP-level drops + igmp_rcv_total + mld_rcv_total: {after:?}"
    );
    // mcflood's invalid packets land on their six drop counters and nowhere else; its valid
    // ones are all taken.
    let mut moved_drops: Vec<&str> = after
        .keys()
        .filter(|name| name.starts_with("drop_") && delta(name) > 0)
        .map(String::as_str)
        .collect();
    moved_drops.sort();
    let mut expected_drops = FLOOD_DROPS.to_vec();
    expected_drops.sort();
    assert_eq!(moved_drops, expected_drops, "{after:?}");
    for name in FLOOD_ACCEPTED {
        assert!(delta(name) > 0, "{name} did not move: {after:?}");
    }
    let drops: u64 = FLOOD_DROPS.iter().map(|name| delta(name)).sum();
    assert_eq!(delta("tun_tx_errors"), 0, "{after:?}");

    // Memory: flat.
    let rss_max = rss_during.iter().copied().chain([rss_after]).max().unwrap();
    assert!(
        rss_max < rss_before + 16 * MIB,
        "RSS grew from {rss_before} KiB to {rss_max} KiB"
    );

    // At most one report pending per group, during and after the flood; and no report storm:
    // every report answers a query, and there are few of them. (A `show` sent during the
    // flood is only answered after it, or not at all if it lasts over 5 s: see the ignored
    // control_requests_are_answered_during_a_flood. Those are counted, not failed, here.)
    let shows = shows.into_inner().unwrap();
    let mut unanswered = Vec::new();
    for (reply, took) in &shows {
        match reply {
            Ok(show) => check_one_timer_per_group(show, &groups),
            Err(e) => unanswered.push(format!("after {took:?}: {e}")),
        }
    }
    check_one_timer_per_group(&daemon.show(), &groups);
    let queries = delta("igmp_rcv_queries") + delta("mld_rcv_queries");
    let reports = delta("igmp_snd_reports") + delta("mld_snd_reports");
    assert!(queries > 0, "no valid query got through: {after:?}");
    assert!(
        reports <= 10 * groups.len() as u64,
        "{reports} reports for {queries} queries and {} groups",
        groups.len()
    );
    daemon.ctl_ok(&["ping"]);
    assert!(daemon.process.try_status().is_none(), "daemon exited");

    let longest_show = shows
        .iter()
        .map(|(_, took)| *took)
        .max()
        .unwrap_or_default();
    println!(
        "flood: mcflood wrote {FLOOD_COUNT} packets in {:.2} s ({:.0} pkt/s); the daemon read \
         {read} ({:.0} pkt/s over the flood), the TUN dropped {kernel_dropped}; {drops} dropped \
         by the daemon; {queries} queries taken, {reports} reports sent (Max Resp 10 s)\n\
         RSS: before {rss_before} KiB, max during {} KiB, after {rss_after} KiB \
         ({} samples)\n\
         control: {} `show` during the flood, longest {longest_show:?}, unanswered: {unanswered:?}",
        report["seconds"].as_f64().unwrap(),
        report["rate"].as_f64().unwrap(),
        read as f64 / report["seconds"].as_f64().unwrap(),
        rss_during.iter().max().copied().unwrap_or(rss_after),
        rss_during.len(),
        shows.len(),
    );
}

#[test]
fn deleting_the_tun_device_makes_the_daemon_exit_nonzero_naming_it() {
    let Some(ns) = netns("tun_deleted") else {
        return;
    };
    let mut daemon = ns.spawn_daemon(&[]);
    daemon.ctl_ok(&["join", "239.1.2.3"]);
    ns.ip(&["link", "del", TUN]);
    let status = daemon.wait_exit(secs(5));
    let log = daemon.log();
    assert!(
        !status.success() && status.code().is_some(),
        "exit status {status}, want a non-zero exit code:\n{log}"
    );
    let last = log.lines().last().unwrap_or("");
    assert!(
        last.starts_with("tunmcastd: ") && last.contains(TUN),
        "the last line of the log must say what happened to {TUN}: {last:?}\n{log}"
    );
    assert!(
        !daemon.socket().exists(),
        "control socket {} left behind",
        daemon.socket().display()
    );
}

#[test]
fn sigkill_then_restart_with_the_state_file_announces_every_group_again() {
    let Some(ns) = netns("sigkill_restart") else {
        return;
    };
    let state = ns.dir().join("state.json");
    let state_arg = state.to_str().unwrap();
    let args = ["--state", state_arg, "--robustness", "1"];
    let groups = ["239.1.2.3", "239.4.5.6", "ff12::1234", "ff05::4:5:6"];
    {
        let mut first = ns.spawn_daemon(&args);
        for group in groups {
            first.ctl_ok(&["join", group]);
        }
        // A second user of one group: the count survives too.
        first.ctl_ok(&["join", groups[0]]);
        first.wait_quiet(secs(3));
        first.signal(Signal::SIGKILL);
        let status = first.wait_exit(secs(5));
        assert_eq!(status.signal(), Some(Signal::SIGKILL as i32), "{status}");
        assert!(
            first.socket().exists(),
            "SIGKILL cannot clean up, so a stale socket should be there"
        );
    }

    let mut capture = ns.capture(TUN);
    let restarted_at = now();
    let second = ns.spawn_daemon(&args);
    for group in groups {
        let entry = second
            .group(group)
            .unwrap_or_else(|| panic!("{group} not restored: {}", second.show()));
        let users = if group == groups[0] { 2 } else { 1 };
        assert_eq!(entry["users"], users, "{entry}");
    }
    capture.wait_for("a fresh report for every group", secs(8), |p| {
        groups.iter().all(|g| {
            daemon_reports(p, ip(g))
                .iter()
                .any(|r| r.time >= restarted_at)
        })
    });
    second.wait_quiet(secs(3));
    assert_daemon_packets_well_formed(&capture.stop());
}

/// What one control client saw.
#[derive(Debug, Default)]
struct Outcomes {
    good: AtomicUsize,
    problems: Mutex<Vec<String>>,
}

impl Outcomes {
    fn problem(&self, who: &str, what: String) {
        self.problems.lock().unwrap().push(format!("{who}: {what}"));
    }
}

fn connect(socket: &Path) -> std::io::Result<UnixStream> {
    let stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(secs(30)))?;
    stream.set_write_timeout(Some(secs(30)))?;
    Ok(stream)
}

/// Sends one line, reads one reply line and parses it.
fn exchange(stream: &UnixStream, reader: &mut impl BufRead, line: &[u8]) -> Result<Value, String> {
    let _ = (&*stream).write_all(line);
    let mut reply = String::new();
    match reader.read_line(&mut reply) {
        Ok(0) => Err("closed without a reply".into()),
        Ok(_) => serde_json::from_str(&reply).map_err(|e| format!("{e}: {reply:?}")),
        Err(e) => Err(format!("no reply: {e}")),
    }
}

/// A well-behaved client: ping, wait until every client is connected, show.
fn good_client(socket: &Path, arrived: &AtomicUsize, all: usize, out: &Outcomes, n: usize) {
    let who = format!("client {n}");
    let stream = match connect(socket) {
        Ok(s) => s,
        Err(e) => {
            arrived.fetch_add(1, Ordering::SeqCst);
            return out.problem(&who, format!("connect: {e}"));
        }
    };
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let pong = exchange(&stream, &mut reader, b"{\"cmd\":\"ping\"}\n");
    arrived.fetch_add(1, Ordering::SeqCst);
    match pong {
        Ok(v) if v["ok"] == true => {}
        other => return out.problem(&who, format!("ping: {other:?}")),
    }
    // All connections open at once before anyone goes on.
    let deadline = Instant::now() + secs(30);
    while arrived.load(Ordering::SeqCst) < all && Instant::now() < deadline {
        std::thread::sleep(ms(5));
    }
    match exchange(&stream, &mut reader, b"{\"cmd\":\"show\"}\n") {
        Ok(v) if v["ok"] == true && v["groups"].as_array().is_some_and(|g| g.len() == 2) => {
            out.good.fetch_add(1, Ordering::SeqCst);
        }
        other => out.problem(&who, format!("show: {other:?}")),
    }
}

/// Hostile clients. Those that get an answer must get an error, and where the connection
/// stays open, a ping afterwards must still work.
fn bad_client(socket: &Path, kind: usize, out: &Outcomes, hold: &AtomicUsize) {
    let who = format!("bad client kind {kind}");
    let stream = match connect(socket) {
        Ok(s) => s,
        Err(e) => return out.problem(&who, format!("connect: {e}")),
    };
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let expect_error = |reply: Result<Value, String>, what: &str| match reply {
        Ok(v) if v["ok"] == false && v["error"].as_str().is_some_and(|e| !e.is_empty()) => {}
        other => out.problem(&who, format!("{what}: want an error reply, got {other:?}")),
    };
    match kind % 6 {
        // Garbage, then a proper request on the same connection.
        0 => {
            expect_error(
                exchange(&stream, &mut reader, b"\x00\xff\xfe garbage {{{ \n"),
                "binary garbage",
            );
            expect_error(
                exchange(&stream, &mut reader, b"{\"cmd\":\"join\",\"group\":7}\n"),
                "ill-typed join",
            );
            match exchange(&stream, &mut reader, b"{\"cmd\":\"ping\"}\n") {
                Ok(v) if v["ok"] == true => {}
                other => out.problem(&who, format!("ping after garbage: {other:?}")),
            }
        }
        // A line over 64 KiB: an error, then the daemon hangs up.
        1 => {
            let mut huge = b"{\"cmd\":\"ping\",\"pad\":\"".to_vec();
            huge.resize(huge.len() + 70 * 1024, b'x');
            huge.extend_from_slice(b"\"}\n");
            expect_error(exchange(&stream, &mut reader, &huge), "line over 64 KiB");
            let mut rest = Vec::new();
            let _ = reader.read_to_end(&mut rest);
        }
        // Hangs up in the middle of a request.
        2 => {
            let _ = (&stream).write_all(b"{\"cmd\":\"sh");
        }
        // Connects and hangs up at once.
        3 => {}
        // Half a request, then silence until everyone is done.
        4 => {
            let _ = (&stream).write_all(b"{\"cmd\":");
            while hold.load(Ordering::SeqCst) == 0 {
                std::thread::sleep(ms(10));
            }
        }
        // Connects and says nothing until everyone is done.
        _ => {
            while hold.load(Ordering::SeqCst) == 0 {
                std::thread::sleep(ms(10));
            }
        }
    }
}

/// A client thread with a small stack (there are over a thousand of them).
fn spawn_small<'scope, F: FnOnce() + Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    f: F,
) -> std::thread::ScopedJoinHandle<'scope, ()> {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn_scoped(scope, f)
        .expect("spawn a client thread")
}

#[test]
fn a_thousand_control_clients_at_once_with_hostile_ones_mixed_in() {
    let Some(ns) = netns("many_clients") else {
        return;
    };
    const GOOD: usize = 1000;
    const BAD: usize = 120;
    // The test holds two descriptors per client, the daemon as many (the socket and its
    // clone), plus a few. Set both limits rather than depend on what we inherited (see the
    // ignored fd-exhaustion test for what happens to the daemon below that).
    let need = 2 * (GOOD + BAD) as u64 + 256;
    let have = raise_fd_limit(need);
    assert!(
        have >= need,
        "cannot raise the open-file limit to {need} (have {have})"
    );
    let daemon = ns.spawn_daemon(&[]);
    set_fd_limit(daemon.pid(), need);
    daemon.ctl_ok(&["join", "239.1.2.3"]);
    daemon.ctl_ok(&["join", "ff12::1234"]);
    let threads_before = thread_count(daemon.pid()).expect("daemon threads");

    let socket: PathBuf = daemon.socket().to_path_buf();
    let outcomes = Outcomes::default();
    let arrived = AtomicUsize::new(0);
    let hold = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        let mut bad = Vec::new();
        for kind in 0..BAD {
            let (socket, outcomes, hold) = (&socket, &outcomes, &hold);
            bad.push(spawn_small(scope, move || {
                bad_client(socket, kind, outcomes, hold)
            }));
        }
        let mut good = Vec::new();
        for n in 0..GOOD {
            let (socket, outcomes, arrived) = (&socket, &outcomes, &arrived);
            good.push(spawn_small(scope, move || {
                good_client(socket, arrived, GOOD, outcomes, n)
            }));
        }
        for thread in good {
            thread.join().expect("client thread");
        }
        hold.store(1, Ordering::SeqCst);
        for thread in bad {
            thread.join().expect("client thread");
        }
    });
    let took = started.elapsed();
    let problems = outcomes.problems.into_inner().unwrap();
    assert!(
        problems.is_empty(),
        "{} problems (first 20):\n  {}",
        problems.len(),
        problems[..problems.len().min(20)].join("\n  ")
    );
    assert_eq!(outcomes.good.load(Ordering::SeqCst), GOOD);
    // Still serving, and every client thread gone again.
    assert_eq!(daemon.groups().len(), 2);
    must_wait("the daemon's client threads to end", secs(5), || {
        thread_count(daemon.pid()).is_some_and(|n| n <= threads_before)
    });
    println!(
        "{GOOD} good clients (all connected at once) and {BAD} hostile ones served in {took:?}"
    );
}

/// DEFECT (ignored until fixed): the event loop reads the TUN until it would block, so
/// while a flood keeps it readable, control requests wait for the whole flood (the CLI gives
/// up after 5 s, the daemon's client thread after 10 s).
#[test]
fn control_requests_are_answered_during_a_flood() {
    let Some(ns) = netns("flood_control") else {
        return;
    };
    let daemon = ns.spawn_daemon(&[]);
    daemon.ctl_ok(&["join", "239.1.2.3"]);
    let link_before = ns.link_counters(TUN);
    let mut flood = ns.spawn(
        "mcflood",
        &bin("mcflood"),
        &["--dev", TUN, "--count", "3000000"],
    );
    // Under way once the kernel is writing into the TUN (asking the daemon would wait).
    must_wait("the flood to start", secs(5), || {
        let link = ns.link_counters(TUN);
        link.tx_packets + link.tx_dropped > link_before.tx_packets + link_before.tx_dropped + 1000
    });
    let mut slowest = Duration::ZERO;
    let mut answered = 0;
    while flood.try_status().is_none() {
        let started = Instant::now();
        let pong = daemon.ctl(&["ping"]);
        let took = started.elapsed();
        assert!(
            pong.status.success(),
            "ping during the flood failed after {took:?}: {}",
            String::from_utf8_lossy(&pong.stderr)
        );
        slowest = slowest.max(took);
        answered += 1;
    }
    println!("{answered} pings answered during the flood, slowest {slowest:?}");
    assert!(
        slowest < secs(1),
        "a ping during the flood took {slowest:?} ({answered} answered)"
    );
}

/// DEFECT (ignored until fixed): each control client costs the daemon a thread and two
/// descriptors, it never raises its open-file limit (MAX_CLIENTS is 4096, the usual soft
/// limit 1024), and when descriptors run out `if_nametoindex` fails inside the loop's
/// device check, which the daemon takes for a deleted TUN: it exits with
/// "TUN device tun0 has gone away".
#[test]
fn running_out_of_descriptors_does_not_kill_the_daemon() {
    let Some(ns) = netns("fd_exhaustion") else {
        return;
    };
    raise_fd_limit(2048);
    let mut daemon = ns.spawn_daemon(&[]);
    set_fd_limit(daemon.pid(), 256);
    daemon.ctl_ok(&["join", "239.1.2.3"]);
    // More idle clients than the daemon has descriptors for.
    let clients: Vec<UnixStream> = (0..300)
        .filter_map(|_| UnixStream::connect(daemon.socket()).ok())
        .collect();
    // Let the accept thread run into the limit, then give the descriptors back.
    must_wait("the daemon to run out of descriptors", secs(5), || {
        daemon.log().contains("Too many open files")
    });
    // It must live through a while without descriptors (its device check runs every second).
    let died = daemon.process.wait_timeout(secs(2));
    drop(clients);
    assert!(
        died.is_none(),
        "the daemon exited ({died:?}):\n{}",
        daemon.log()
    );
    must_wait("the daemon to answer again", secs(5), || {
        daemon.ctl(&["ping"]).status.success()
    });
    assert!(daemon.group("239.1.2.3").is_some());
}
