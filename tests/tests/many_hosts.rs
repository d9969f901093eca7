//! Thousands of emulated hosts on one TAP port of a snooping bridge: the bridge's IGMPv3 and
//! MLDv2 general queries are answered by every host inside the Max Resp Time, the answers
//! spread over it, while a control client's `ping` keeps being answered and joins keep being
//! applied. (The daemon's work per query is O(hosts): `membership/tests/work_per_interface.rs`
//! counts it in virtual time; `scripts/bench-hosts.sh` measures 10^4 to 10^6 hosts.)

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tests::*;

const HOSTS: u32 = 2_000;
/// The bridge's Max Resp Time.
const MAX_RESP_S: f64 = 3.0;

/// One control connection sending `ping` every 10 ms until `stop`; the latency of each reply.
fn ping_loop(socket: std::path::PathBuf, stop: Arc<AtomicBool>) -> Vec<Duration> {
    let stream = UnixStream::connect(&socket).expect("connect to the control socket");
    stream.set_read_timeout(Some(secs(5))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut latencies = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let sent = Instant::now();
        writer
            .write_all(b"{\"cmd\":\"ping\"}\n")
            .expect("send ping");
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .expect("a ping answered within 5 s");
        assert!(line.contains("\"ok\":true"), "{line}");
        latencies.push(sent.elapsed());
        std::thread::sleep(ms(10));
    }
    latencies
}

#[test]
fn thousands_of_hosts_answer_a_general_query_in_time_while_the_control_plane_answers() {
    let Some(ns) = Netns::new("many_hosts") else {
        return;
    };
    // A /20 for the bridge and 2,000 hosts from 10.100.0.10; a general query every 5 s with a
    // 3 s Max Resp Time.
    let config = SnoopingBridge {
        query_interval_cs: 500,
        response_interval_cs: 300,
        ..SnoopingBridge::default()
    };
    ns.snooping_bridge("br0", "tap1", "10.100.0.1/20", &config);
    let daemon = ns.spawn_configured(&format!(
        "log_level = \"warn\"\n[[link]]\ndevice = \"tap1\"\nkind = \"tap\"\n\
         suppression = false\n[[link.hosts]]\ncount = {HOSTS}\nipv4 = \"10.100.0.10/20\"\n"
    ));
    let socket = daemon.socket().to_path_buf();
    let last = format!("10.100.{}.{}", (9 + HOSTS) / 256, (9 + HOSTS) % 256);
    let group = ip("239.40.0.1");
    daemon.ctl_ok(&[
        "join",
        "239.40.0.1",
        "--hosts",
        &format!("10.100.0.10-{last}"),
    ]);
    // The state-change reports and their repeats out of the way.
    std::thread::sleep(secs(3));

    let mut capture = ns.capture("tap1");
    let stop = Arc::new(AtomicBool::new(false));
    let pinger = {
        let (socket, stop) = (socket.clone(), stop.clone());
        std::thread::spawn(move || ping_loop(socket, stop))
    };
    let is_general =
        |p: &Pkt, kind: &str| p.kind == kind && p.group.is_some_and(|g| g.is_unspecified());
    capture.wait_for("the bridge's next general queries", secs(12), |p| {
        p.iter().any(|p| is_general(p, "igmp-query"))
            && p.iter().any(|p| is_general(p, "mld-query"))
    });
    // While the answers go out, joins are applied too.
    let joined = Instant::now();
    daemon.ctl_ok(&["join", "239.40.0.2", "--host", "10.100.0.10"]);
    let join_took = joined.elapsed();
    std::thread::sleep(secs_f64(MAX_RESP_S + 1.0));
    stop.store(true, Ordering::Relaxed);
    let mut latencies = pinger.join().expect("the ping loop does not panic");
    let packets = capture.stop_full();

    // Only the bridge queries.
    let first_query = |kind: &str| {
        packets
            .iter()
            .find(|p| is_general(p, kind))
            .map(|p| p.time)
            .unwrap_or_else(|| panic!("no general {kind}:\n{}", listing(&packets)))
    };
    let answered = |kind: &str, query_at: f64, record: &dyn Fn(&Record) -> bool| {
        let senders: BTreeSet<IpAddr> = packets
            .iter()
            .filter(|p| p.kind == kind && p.time > query_at)
            .filter(|p| p.time <= query_at + MAX_RESP_S + SLACK)
            .filter(|p| p.records().iter().any(record))
            .map(|p| p.src)
            // The bridge reports its own groups.
            .filter(|src| *src != ip("10.100.0.1") && *src != ip("fe80::1"))
            .collect();
        senders.len()
    };
    let igmp_query = first_query("igmp-query");
    let mld_query = first_query("mld-query");
    let igmp = answered("igmpv3-report", igmp_query, &|r| {
        r.kind == "is_ex" && r.group == group
    });
    // Every TAP host holds its solicited-node group (--solicited-node auto).
    let mld = answered("mldv2-report", mld_query, &|r| r.kind == "is_ex");
    // Spread: the answers to the IGMP query, per second of the Max Resp Time.
    let mut per_second = [0usize; 3];
    for p in packets.iter().filter(|p| p.kind == "igmpv3-report") {
        let after = p.time - igmp_query;
        if after > 0.0 && after < MAX_RESP_S {
            per_second[after as usize] += 1;
        }
    }
    latencies.sort();
    let p99 = latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)];
    let max = *latencies.last().unwrap();
    eprintln!(
        "many_hosts: {igmp} of {HOSTS} hosts answered the IGMPv3 query and {mld} the MLDv2 \
         one inside {MAX_RESP_S} s; IGMP reports per second {per_second:?}; {} pings, p99 \
         {p99:?}, max {max:?}; a join during the answer took {join_took:?}",
        latencies.len()
    );
    assert_eq!(
        igmp, HOSTS as usize,
        "hosts answering the IGMPv3 query in time"
    );
    assert_eq!(
        mld, HOSTS as usize,
        "hosts answering the MLDv2 query in time"
    );
    for (second, count) in per_second.iter().enumerate() {
        assert!(
            *count > HOSTS as usize / 6,
            "answers not spread over the Max Resp Time: {per_second:?} (second {second})"
        );
    }
    // A debug build on a shared 2-core machine: generous bounds, still far from a stall.
    assert!(latencies.len() >= 200, "{} pings answered", latencies.len());
    assert!(p99 < ms(250), "control ping p99 {p99:?} during the answer");
    assert!(
        join_took < secs(1),
        "a join took {join_took:?} during the answer"
    );
    assert!(daemon.group("239.40.0.2").is_some(), "the join was applied");
}

/// Addresses of `count` hosts from 10.100.0.10, as `--hosts` and the range's JSON take them.
fn host_range(count: u32) -> (String, String) {
    let last = 9 + count;
    (
        "10.100.0.10".to_string(),
        format!("10.100.{}.{}", last / 256, last % 256),
    )
}

/// A join of more hosts than one loop turn changes (4,096 changes) is made a slice a turn;
/// requests pipelined after it on the same connection act after it, in order, and a read from
/// another client is answered meanwhile. Every host ends up holding every group.
#[test]
fn a_join_larger_than_a_turn_is_made_in_slices_and_the_requests_after_it_wait() {
    let Some(ns) = Netns::new("big_join") else {
        return;
    };
    const BIG: u32 = 6_000; // 3 groups each: 18,000 changes, five slices
    ns.snooping_bridge("br0", "tap1", "10.100.0.1/19", &SnoopingBridge::default());
    let daemon = ns.spawn_configured(&format!(
        "log_level = \"warn\"\n[[link]]\ndevice = \"tap1\"\nkind = \"tap\"\n\
         suppression = false\n[[link.hosts]]\ncount = {BIG}\nipv4 = \"10.100.0.10/19\"\n"
    ));
    let (first, last) = host_range(BIG);
    let stream = UnixStream::connect(daemon.socket()).expect("connect to the control socket");
    stream.set_read_timeout(Some(secs(30))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    // The leave is of the last host, which the join reaches in its last slice: were it made
    // before, it would be refused ("not joined").
    let pipeline = format!(
        "{{\"cmd\":\"join\",\"group\":\"239.41.0.1\",\"count\":3,\"hosts\":[\"{first}\",\"{last}\"]}}\n\
         {{\"cmd\":\"leave\",\"group\":\"239.41.0.1\",\"host\":\"{last}\"}}\n\
         {{\"cmd\":\"ping\"}}\n"
    );
    let sent = Instant::now();
    writer.write_all(pipeline.as_bytes()).unwrap();
    // Another client's read is answered while the join is being made.
    let other = daemon.ctl_json(&["stats"]);
    assert!(other.is_object(), "{other}");
    let mut replies = Vec::new();
    for _ in 0..3 {
        let mut line = String::new();
        reader.read_line(&mut line).expect("a reply within 30 s");
        // While a long change is made the daemon writes a space a second, which JSON skips.
        let reply: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("reply {line:?} is not JSON: {e}"));
        replies.push(reply);
    }
    let took = sent.elapsed();
    eprintln!("big_join: {BIG} hosts x 3 groups joined, then a leave and a ping, in {took:?}");
    assert_eq!(replies[0]["ok"], true, "{}", replies[0]);
    assert_eq!(replies[0]["hosts"], BIG, "{}", replies[0]);
    assert_eq!(replies[0]["count"], 3, "{}", replies[0]);
    assert_eq!(
        replies[1]["ok"], true,
        "the leave after the join: {}",
        replies[1]
    );
    assert_eq!(replies[2]["ok"], true, "{}", replies[2]);

    // Held: any-source (EXCLUDE {}) joins; a left group stays listed, INCLUDE {}, while its
    // TO_IN({}) is repeated.
    let holders = |group: &str| {
        daemon.ctl_json(&["show", group])["groups"]
            .as_array()
            .map_or(0, |groups| {
                groups
                    .iter()
                    .filter(|g| g["filter_mode"] == "exclude")
                    .count()
            })
    };
    assert_eq!(
        holders("239.41.0.1"),
        BIG as usize - 1,
        "239.41.0.1 after the leave"
    );
    assert_eq!(holders("239.41.0.3"), BIG as usize, "239.41.0.3");
}
