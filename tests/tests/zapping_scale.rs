//! Zapping at the issue's size against a real peer: 100 emulated hosts zap over 20 channels
//! through a Linux bridge with IGMPv3 / MLDv2 snooping, the channels driven by the run's own
//! streams (the daemon sends them out of a second port of the bridge). Every zap is measured
//! (none "not received"), nothing is lost while joined, and each zap's join delay agrees with
//! a capture of the hosts' port (the host's TO_EX report to the channel's next datagram, as
//! tcpdump timestamps them) within the bounds justified in `zapping_at_scale`: 99 % within 1 ms.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::Output;

use serde_json::Value;
use tests::*;

const BR: &str = "br0";
const RX: &str = "tap-rx";
const SRC: &str = "tap-src";
const HOST_COUNT: u32 = 100;
const FIRST_HOST: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 10);
/// The first host's link-local address; each next host's is one more.
const FIRST_HOST_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 1, 0x10);
const CHANNELS: u32 = 20;
/// Datagrams a second per channel: one every 10 ms.
const PPS: u64 = 100;
const VIEW_MS: u64 = 400;

/// The bridge (snooping, its own querier, a left group queried twice 200 ms apart), the
/// hosts' port and the streams' port; the daemon with its 100 hosts on `tap-rx`.
fn lab(ns: &Netns) -> Daemon<'_> {
    let config = SnoopingBridge {
        last_member_interval_cs: 20,
        ..SnoopingBridge::default()
    };
    ns.snooping_bridge(BR, RX, KERNEL_V4_CIDR, &config);
    ns.ip(&["tuntap", "add", "dev", SRC, "mode", "tap"]);
    ns.ip(&["link", "set", SRC, "master", BR]);
    ns.ip(&["link", "set", SRC, "up"]);
    ns.spawn_configured(&format!(
        "log_level = \"info\"\nv3_unsolicited_interval_ms = 200\nsolicited_node = \"off\"\n\
         [[link]]\ndevice = \"{SRC}\"\nkind = \"tap\"\nipv4 = \"10.99.0.250/24\"\n\
         [[link]]\ndevice = \"{RX}\"\nkind = \"tap\"\nsuppression = false\n\
         [[link.hosts]]\ncount = {HOST_COUNT}\nipv4 = \"{FIRST_HOST}/24\"\n\
         ipv6_ll = \"{FIRST_HOST_LL}\"\n"
    ))
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn number(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// What the capture of the hosts' port holds: each (host address, group)'s first TO_EX
/// record, and every stream datagram's time per group.
#[derive(Default)]
struct Captured {
    joins: HashMap<(IpAddr, IpAddr), f64>,
    datagrams: HashMap<IpAddr, Vec<f64>>,
}

/// Reads `file` with tshark's field output (one line a frame: fast at tens of thousands).
fn read_capture(file: &Path) -> Captured {
    let text = run_ok(
        "tshark",
        &[
            "-r",
            file.to_str().unwrap(),
            "-T",
            "fields",
            "-E",
            "separator=/t",
            "-e",
            "frame.time_epoch",
            "-e",
            "ip.src",
            "-e",
            "ipv6.src",
            "-e",
            "ip.dst",
            "-e",
            "ipv6.dst",
            "-e",
            "udp.dstport",
            "-e",
            "igmp.record_type",
            "-e",
            "igmp.maddr",
            "-e",
            "icmpv6.mldr.mar.record_type",
            "-e",
            "icmpv6.mldr.mar.multicast_address",
        ],
    );
    let mut captured = Captured::default();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 10, "{line}");
        let time: f64 = f[0].parse().unwrap();
        let src = [f[1], f[2]].into_iter().find(|s| !s.is_empty());
        let dst = [f[3], f[4]].into_iter().find(|s| !s.is_empty());
        let (Some(src), Some(dst)) = (src, dst) else {
            continue;
        };
        if !f[5].is_empty() {
            captured.datagrams.entry(ip(dst)).or_default().push(time);
            continue;
        }
        let (kinds, groups) = if f[6].is_empty() {
            (f[8], f[9])
        } else {
            (f[6], f[7])
        };
        for (kind, group) in kinds.split(',').zip(groups.split(',')) {
            // CHANGE_TO_EXCLUDE_MODE: the join (IGMPv3 and MLDv2 alike).
            if kind == "4" {
                captured.joins.entry((ip(src), ip(group))).or_insert(time);
            }
        }
    }
    captured
}

/// The address the host named `host` (its IPv4 address) writes its reports from.
fn report_source(host: Ipv4Addr, v6: bool) -> IpAddr {
    if !v6 {
        return IpAddr::V4(host);
    }
    let offset = u32::from(host) - u32::from(FIRST_HOST);
    IpAddr::V6(Ipv6Addr::from(
        u128::from(FIRST_HOST_LL) + u128::from(offset),
    ))
}

/// Each zap's join delay as the capture has it against the daemon's, |difference| in ms,
/// sorted.
fn against_the_capture(report: &Value, captured: &Captured, v6: bool) -> Vec<f64> {
    let mut differences = Vec::new();
    for record in report["records"].as_array().unwrap() {
        let (Some(to), Some(delay)) = (record["to"].as_str(), record["join_delay_ns"].as_u64())
        else {
            continue;
        };
        let host: Ipv4Addr = record["host"].as_str().unwrap().parse().unwrap();
        let to = ip(to);
        let sent = *captured
            .joins
            .get(&(report_source(host, v6), to))
            .unwrap_or_else(|| panic!("no TO_EX({to}) from {host} in the capture"));
        let times = &captured.datagrams[&to];
        let first = times[times.partition_point(|&t| t < sent)..]
            .first()
            .unwrap_or_else(|| panic!("no datagram of {to} after {host}'s join"));
        differences.push(((first - sent) * 1e3 - delay as f64 / 1e6).abs());
    }
    differences.sort_by(f64::total_cmp);
    differences
}

fn zapping_at_scale(test: &str, first_channel: &str, source: &str, queries: &str) {
    let Some(ns) = Netns::new(test) else { return };
    let daemon = lab(&ns);
    must_wait("the bridge's first queries", secs(10), || {
        daemon.counter(queries) >= 3
    });
    // The querier's start-up hold on snooped forwarding (1 s) over.
    std::thread::sleep(ms(1500));
    let v6 = first_channel.contains(':');
    let first = ip(first_channel);
    let channels: Vec<String> = (0..CHANNELS)
        .map(|c| match first {
            IpAddr::V4(g) => Ipv4Addr::from(u32::from(g) + c).to_string(),
            IpAddr::V6(g) => Ipv6Addr::from(u128::from(g) + u128::from(c)).to_string(),
        })
        .collect();
    let last_host = Ipv4Addr::from(u32::from(FIRST_HOST) + HOST_COUNT - 1);
    let file = ns.dir().join("rx.pcap");
    let mut tcpdump = ns.tcpdump("tcpdump-rx", RX, "igmp or udp or ip6", &file);
    must_wait("tcpdump listening", secs(10), || {
        tcpdump.stderr_text().contains("listening on")
    });
    let out = ns.dir().join("out");
    let started = std::time::Instant::now();
    let run = daemon.ctl(&[
        "test",
        "zapping",
        "--iface",
        RX,
        "--hosts",
        &format!("{FIRST_HOST}-{last_host}"),
        "--channels",
        &channels.join(","),
        "--view-ms",
        &VIEW_MS.to_string(),
        "--leave-grace-ms",
        "1000",
        "--stream-link",
        SRC,
        "--source",
        source,
        "--pps",
        &PPS.to_string(),
        "--max-join-delay-ms",
        &VIEW_MS.to_string(),
        "--max-loss",
        "0",
        "--wait",
        "--out",
        out.to_str().unwrap(),
    ]);
    let took = started.elapsed();
    // Whatever is still on its way to the capture lands before it stops.
    std::thread::sleep(ms(300));
    tcpdump.signal(Signal::SIGINT);
    tcpdump.wait_timeout(secs(5)).expect("tcpdump stops");
    eprintln!(
        "{test}: the run took {took:?}; tcpdump: {}",
        tcpdump.stderr_text().trim()
    );
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let zaps = u64::from(HOST_COUNT * CHANNELS);
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["zaps"], zaps, "100 hosts × 20 joins");
    assert_eq!(report["not_received"], 0, "{}", report["join_delay"]);
    assert_eq!(report["join_delay"]["count"], zaps, "every zap measured");
    assert_eq!(
        report["records_total"],
        zaps + u64::from(HOST_COUNT),
        "the zaps and each host's final leave"
    );
    let traffic = &report["traffic"];
    assert_eq!(traffic["streams"], CHANNELS, "one stream per channel");
    assert_eq!(
        number(traffic, "lost"),
        0,
        "no loss while joined: {traffic}"
    );
    assert_eq!(
        traffic["per_host"].as_array().unwrap().len(),
        HOST_COUNT as usize
    );
    for host in traffic["per_host"].as_array().unwrap() {
        assert!(
            number(host, "received") > 0 && number(host, "lost") == 0,
            "{host}"
        );
    }

    // The capture: every zap's join found, its delay the capture's within the bound.
    let dropped = tcpdump.stderr_text();
    assert!(
        dropped
            .lines()
            .any(|l| l.trim() == "0 packets dropped by kernel"),
        "the capture is incomplete: {dropped}"
    );
    let captured = read_capture(&file);
    let differences = against_the_capture(&report, &captured, v6);
    let at = |q: f64| differences[((differences.len() - 1) as f64 * q) as usize];
    eprintln!(
        "{test}: the daemon's join delays against the capture's over {} zaps, |difference| \
         ms: p50 {:.3} p90 {:.3} p99 {:.3} max {:.3}",
        differences.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        differences[differences.len() - 1]
    );
    assert_eq!(differences.len() as u64, zaps, "every zap in the capture");
    // Each zap: the daemon stamps a datagram with the time the kernel sent it to the port
    // (--arrival-stamps kernel, the default: the copy of its packet socket), the time the
    // capture gives it too; a report with the time it handed it to the device, microseconds
    // before the kernel (and the capture) has it. When written: p50 0.001 ms, p99 0.006 /
    // 0.005 ms, the largest 0.009 / 0.053 ms (IGMP / MLD), in a debug build (with a thread's
    // stamps: p99 1.4 / 2.0 ms, the largest 1.9 / 8.5 ms). So: the median within 0.1 ms, 99 %
    // within 1 ms. The largest may be one datagram interval (1000 / PPS = 10 ms) and a loop
    // turn more, on a machine shared with other tests: the OS can take the core from the loop
    // between the report's stamp and its write, and a datagram sent in between is the
    // daemon's first and not the capture's.
    let interval_ms = 1000.0 / PPS as f64;
    assert!(at(0.5) < 0.1, "median {:.3} ms: {differences:?}", at(0.5));
    assert!(at(0.99) < 1.0, "p99 {:.3} ms: {differences:?}", at(0.99));
    let worst = differences[differences.len() - 1];
    assert!(
        worst < interval_ms + 40.0,
        "the largest difference {worst:.3} ms: {differences:?}"
    );
    // Every datagram read was matched to its copy but those already queued when the run's
    // measuring hooked the sockets.
    let stats = daemon.ctl_json(&["stats", "--iface", RX]);
    let (stamped, missed) = (
        number(&stats, "rx_kernel_stamps"),
        number(&stats, "rx_kernel_stamps_missed"),
    );
    assert!(
        stamped > 0 && missed * 100 <= stamped,
        "{stamped} packets stamped by the kernel, {missed} not"
    );
    assert!(
        daemon.ctl_json(&["streams"])["streams"]
            .as_array()
            .unwrap()
            .is_empty(),
        "the run's streams went with it"
    );
}

#[test]
fn igmp_zapping_100_hosts_20_channels_every_zap_measured() {
    zapping_at_scale("zs_igmp", "239.5.1.1", "10.99.0.251", "igmp_rcv_v3_queries");
}

#[test]
fn mld_zapping_100_hosts_20_channels_every_zap_measured() {
    zapping_at_scale("zs_mld", "ff1e::5:1", "2001:db8::251", "mld_rcv_v2_queries");
}
