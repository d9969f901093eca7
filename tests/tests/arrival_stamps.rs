//! How the daemon stamps the packets it reads with their arrival, against a capture of the
//! device (tcpdump): with the time the kernel sent each to the device (a packet socket's copy,
//! the time the capture gives it too) while it measures; without CAP_NET_RAW, with the time a
//! thread woken by the packet saw it. The zapping tests check the kernel's stamps on TAP
//! ports of a bridge at 100 hosts; these, on a TUN, one host, and the fallback.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Map, Value};
use tests::*;

const GROUPS: [&str; 5] = [
    "239.7.0.1",
    "239.7.0.2",
    "239.7.0.3",
    "239.7.0.4",
    "239.7.0.5",
];
/// Each group's datagrams are this many ms apart.
const INTERVAL_MS: u64 = 5;

/// The kernel sends each of [`GROUPS`] into the TUN every [`INTERVAL_MS`] for `seconds`.
fn sender(ns: &Netns, seconds: u64) -> Spawned {
    let script = format!(
        "import socket,time\n\
         s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
         s.setsockopt(socket.IPPROTO_IP,socket.IP_MULTICAST_IF,socket.inet_aton('{KERNEL_V4}'))\n\
         groups={GROUPS:?}\n\
         end=time.time()+{seconds}\n\
         while time.time()<end:\n \
           for g in groups:\n  s.sendto(b'x'*64,(g,5000)); time.sleep({step})\n",
        step = INTERVAL_MS as f64 / 1e3 / GROUPS.len() as f64,
    );
    ns.spawn("sender", Path::new("python3"), &["-c", &script])
}

/// Each group's join delay as the capture has it: the daemon's report with TO_EX(G) to the
/// first datagram of G after it, ms.
fn capture_join_delays(reports: &[Pkt], udp_file: &Path) -> HashMap<String, f64> {
    let datagrams = datagram_times(udp_file);
    let mut delays = HashMap::new();
    for group in GROUPS {
        let joined = reports
            .iter()
            .filter(|p| p.from_daemon() && p.is_report())
            .find(|p| {
                p.records()
                    .iter()
                    .any(|r| r.kind == "to_ex" && r.group.to_string() == group)
            })
            .unwrap_or_else(|| panic!("no TO_EX({group}) in the capture"))
            .time;
        let first = datagrams[group]
            .iter()
            .copied()
            .find(|&t| t >= joined)
            .unwrap_or_else(|| panic!("no datagram of {group} after the join"));
        delays.insert(group.to_string(), (first - joined) * 1e3);
    }
    delays
}

/// The daemon's join delay of each group (one host: each group's only one), ms.
fn daemon_join_delays(daemon: &Daemon<'_>) -> HashMap<String, f64> {
    let delays = daemon.ctl_json(&["delays"]);
    let groups = delays["groups"]
        .as_array()
        .unwrap_or_else(|| panic!("no groups in {delays}"));
    groups
        .iter()
        .map(|g| {
            let ns = g["join"]["max_ns"]
                .as_u64()
                .unwrap_or_else(|| panic!("no join delay in {g}"));
            (g["group"].as_str().unwrap().to_string(), ns as f64 / 1e6)
        })
        .collect()
}

/// Joins the groups one after the other while the kernel sends them; the daemon's join delays
/// and the capture's, and the daemon's counters.
fn join_while_sending(ns: &Netns, daemon: &Daemon<'_>) -> (Vec<f64>, Map<String, Value>) {
    let mut capture = ns.capture(TUN);
    let udp_file = ns.dir().join("udp.pcap");
    let mut udp = ns.tcpdump("tcpdump-udp", TUN, "udp", &udp_file);
    must_wait("tcpdump listening", secs(10), || {
        udp.stderr_text().contains("listening on")
    });
    let mut sending = sender(ns, 4);
    std::thread::sleep(ms(500));
    for group in GROUPS {
        daemon.ctl_ok(&["join", group]);
        std::thread::sleep(ms(300));
    }
    let _ = sending.wait_timeout(secs(10));
    std::thread::sleep(ms(200));
    udp.signal(Signal::SIGINT);
    let _ = udp.wait_timeout(secs(5));
    let reports = capture.stop_full();
    let captured = capture_join_delays(&reports, &udp_file);
    let measured = daemon_join_delays(daemon);
    let mut differences: Vec<f64> = GROUPS
        .iter()
        .map(|g| {
            let daemon_ms = measured
                .get(*g)
                .unwrap_or_else(|| panic!("no delay of {g}: {measured:?}"));
            (daemon_ms - captured[*g]).abs()
        })
        .collect();
    differences.sort_by(f64::total_cmp);
    eprintln!(
        "join delays, daemon {measured:.3?} ms, capture {captured:.3?} ms: |difference| \
         {differences:.3?}"
    );
    (differences, daemon.stats())
}

fn counter(stats: &Map<String, Value>, name: &str) -> u64 {
    stats[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no {name} in the stats"))
}

/// While the daemon measures (--delays), every packet it reads from the TUN is stamped with
/// the time the kernel sent it (its copy found), and each join delay is the capture's to a
/// fraction of a millisecond (µs when written, in a debug build).
#[test]
fn the_kernel_stamps_a_tuns_packets_while_the_daemon_measures() {
    let Some(ns) = Netns::new("stamps_kernel") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let daemon = ns.spawn_daemon(&["--igmp-version", "3", "--delays"]);
    // One socket for every link, bound to every device (its filter keeps the links').
    let hooked = PacketSocket {
        protocol: 3, // ETH_P_ALL
        ifindex: 0,
        hooked: true,
    };
    must_wait("the packet socket hooked", secs(5), || {
        daemon.packet_sockets() == [hooked]
    });
    let (differences, stats) = join_while_sending(&ns, &daemon);
    // The median within 0.5 ms; the largest one datagram interval and a loop turn more (the
    // OS may take the core from the loop between a report's stamp and its write).
    assert!(differences[2] < 0.5, "{differences:?}");
    assert!(
        differences[4] < INTERVAL_MS as f64 + 20.0,
        "{differences:?}"
    );
    let (read, stamped, missed) = (
        counter(&stats, "tun_rx_packets"),
        counter(&stats, "rx_kernel_stamps"),
        counter(&stats, "rx_kernel_stamps_missed"),
    );
    assert!(read > 100, "{read} packets read");
    // Packets already queued when the first turn of the loop hooked the socket have no copy.
    assert!(
        stamped + missed == read && missed <= 2,
        "{read} read, {stamped} stamped by the kernel, {missed} not"
    );
}

/// Without measuring there are no copies to take (the kernel clones nothing); without
/// CAP_NET_RAW there is no packet socket: the daemon says so, and a thread stamps the packets,
/// its join delays still the capture's within a few ms.
#[test]
fn without_cap_net_raw_a_thread_stamps_the_packets() {
    let Some(ns) = Netns::new("stamps_thread") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let daemon = ns.spawn_daemon_under(
        &["setpriv", "--inh-caps=-net_raw", "--bounding-set=-net_raw"],
        &["--igmp-version", "3", "--delays"],
    );
    must_wait("the daemon's warning", secs(5), || {
        daemon.log().contains("no kernel stamps")
    });
    assert_eq!(daemon.packet_sockets(), [], "no packet socket");
    let (differences, stats) = join_while_sending(&ns, &daemon);
    assert!(differences[2] < 5.0, "{differences:?}");
    assert!(
        differences[4] < INTERVAL_MS as f64 + 20.0,
        "{differences:?}"
    );
    assert_eq!(counter(&stats, "rx_kernel_stamps"), 0);
    assert_eq!(counter(&stats, "rx_kernel_stamps_missed"), 0);
    assert!(counter(&stats, "tun_rx_packets") > 100);
}

/// Not measuring (no --delays, no streams, no test run), the daemon takes no kernel stamps:
/// its packet socket is unhooked (unbound), so the kernel clones nothing for it.
#[test]
fn no_kernel_stamps_while_nothing_measures() {
    let Some(ns) = Netns::new("stamps_idle") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let daemon = ns.spawn_daemon(&["--igmp-version", "3"]);
    daemon.ctl_ok(&["join", GROUPS[0]]);
    let mut sending = sender(&ns, 1);
    let _ = sending.wait_timeout(secs(10));
    must_wait("the datagrams read", secs(5), || {
        daemon.counter("tun_rx_packets") > 100
    });
    let stats = daemon.stats();
    assert_eq!(counter(&stats, "rx_kernel_stamps"), 0);
    assert_eq!(counter(&stats, "rx_kernel_stamps_missed"), 0);
    let unhooked = PacketSocket {
        protocol: 0,
        ifindex: 0,
        hooked: false,
    };
    assert_eq!(daemon.packet_sockets(), [unhooked], "one, unbound");
}
