//! The control plane at scale: batch joins (`GROUP+COUNT`) packed into as few reports as the MTU
//! allows, pipelined requests on one connection, filtered views, and a `show` of a hundred
//! thousand groups streamed while a general query is still answered in time.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;

use serde_json::Value;
use tests::*;

#[test]
fn a_batch_join_is_one_request_and_its_reports_are_packed() {
    let Some(ns) = Netns::new("batch_join") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let capture = ns.capture(TUN);
    let daemon = ns.spawn_daemon(&["--igmp-version", "3", "--robustness", "1"]);
    let reply = daemon.ctl_json(&["join", "239.20.0.0+1000"]);
    assert_eq!(reply["count"], 1000, "{reply}");
    assert_eq!(reply["group"], "239.20.0.0", "{reply}");
    assert_eq!(
        daemon.ctl_ok(&["join", "239.20.0.0+1000"]),
        "joined 1000 groups from 239.20.0.0 on tun0\n"
    );
    // show GROUP and --limit.
    let one = daemon.ctl_json(&["show", "239.20.3.231"]);
    assert_eq!(one["groups"].as_array().map(Vec::len), Some(1), "{one}");
    assert_eq!(one["groups"][0]["users"], 2, "{one}");
    assert_eq!(one["total_groups"], 1000, "{one}");
    let some = daemon.ctl_json(&["show", "--limit", "7"]);
    assert_eq!(some["groups"].as_array().map(Vec::len), Some(7), "{some}");
    let out = daemon.ctl(&["show", "239.21.0.1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not joined"));
    // A leave of groups partly not joined changes nothing.
    let out = daemon.ctl(&["leave", "239.20.3.200+100"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(daemon.show()["total_groups"], 1000);

    // 1000 TO_EX {} records of 8 bytes: 184 fit a 1500-byte MTU, so six reports, not 1000.
    let first: Vec<Pkt> = capture
        .wait_for_full("reports for the 1000 groups", secs(8), |p| {
            let records: usize = p
                .iter()
                .filter(|p| p.from_daemon())
                .map(|p| p.records().len())
                .sum();
            records >= 1000
        })
        .into_iter()
        .filter(|p| p.from_daemon() && p.is_report())
        .collect();
    let sizes: Vec<usize> = first.iter().map(|p| p.records().len()).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 1000, "{sizes:?}");
    assert!(
        sizes.len() <= 6,
        "not packed: {} reports {sizes:?}",
        sizes.len()
    );
    assert_daemon_packets_well_formed(&first);

    let left = daemon.ctl_json(&["leave", "239.20.0.0+1000"]);
    assert_eq!(left["count"], 1000, "{left}");
}

#[test]
fn pipelined_requests_on_one_connection_are_answered_in_order() {
    let Some(ns) = Netns::new("pipelined") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let daemon = ns.spawn_daemon(&["--igmp-version", "3"]);
    let mut stream = UnixStream::connect(daemon.socket()).unwrap();
    stream.set_read_timeout(Some(secs(10))).unwrap();
    // 500 requests written before a single reply is read, one of them bad.
    let mut burst = String::new();
    for n in 0..500u32 {
        if n == 250 {
            burst.push_str("{\"cmd\":\"join\",\"group\":\"10.0.0.1\"}\n");
        } else {
            burst.push_str(&format!(
                "{{\"cmd\":\"join\",\"group\":\"239.30.{}.{}\"}}\n",
                n / 256,
                n % 256
            ));
        }
    }
    stream.write_all(burst.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    for n in 0..500u32 {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let reply: Value = serde_json::from_str(&line).unwrap();
        if n == 250 {
            assert_eq!(reply["ok"], false, "{reply}");
        } else {
            assert_eq!(reply["ok"], true, "{reply}");
            let want = format!("239.30.{}.{}", n / 256, n % 256);
            assert_eq!(
                reply["group"],
                want.as_str(),
                "reply {n} out of order: {reply}"
            );
        }
    }
}

/// A show of 100,000 groups is written a slice at a time between packets: an IGMPv3 general
/// query sent while it streams (to a client reading slowly) is answered within its Max Resp
/// Time, and the reply, once read, is one complete JSON object.
#[test]
fn a_general_query_is_answered_in_time_while_a_large_show_streams() {
    let Some(ns) = Netns::new("show_stream") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let daemon = ns.spawn_daemon(&["--igmp-version", "3", "--robustness", "1"]);
    for block in 0..4u32 {
        let first = format!("232.{}.0.0+25000", 10 + block);
        daemon.ctl_ok(&["join", &first]);
    }
    let mut stream = UnixStream::connect(daemon.socket()).unwrap();
    stream.set_read_timeout(Some(secs(60))).unwrap();
    stream.write_all(b"{\"cmd\":\"show\"}\n").unwrap();
    let mut first = [0u8; 4096];
    let n = stream.read(&mut first).unwrap();
    assert!(first[..n].starts_with(b"{\"ok\":true,\"interfaces\":["));

    // The show is under way, its client not reading: the query must not wait for it.
    let mut querier = ns.querier(&[
        "--iface",
        TUN,
        "--igmp",
        "3",
        "--max-resp-ms",
        "2000",
        "--count",
        "1",
        "--listen-ms",
        "4000",
        "--json",
    ]);
    querier.wait_exit(secs(15));
    let answers: Vec<f64> = querier
        .heard()
        .iter()
        .filter(|m| {
            m["src"] == "10.99.0.2" && m["type"].as_str().is_some_and(|t| t.contains("report"))
        })
        .filter_map(|m| m["time"].as_f64())
        .collect();
    assert!(
        !answers.is_empty(),
        "no report answered the query:\n{}",
        querier.output()
    );
    assert!(
        answers[0] <= 2.0 + SLACK,
        "the first report came {:.3} s after the query (Max Resp Time 2 s)",
        answers[0]
    );

    // Now read the rest: one complete object with every group.
    let mut rest = Vec::new();
    BufReader::new(stream).read_until(b'\n', &mut rest).unwrap();
    let mut whole = first[..n].to_vec();
    whole.extend_from_slice(&rest);
    let show: Value = serde_json::from_slice(&whole).expect("one complete JSON object");
    assert_eq!(show["groups"].as_array().map(Vec::len), Some(100_000));
    assert_eq!(show["total_groups"], 100_000);
}
