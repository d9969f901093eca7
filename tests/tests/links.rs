//! One daemon, many links and many hosts: `[[link]]` configuration files, emulated hosts on a
//! TAP port of a snooping Linux bridge (each host answering queries, ARP, ND and ping for
//! itself), two links kept apart, RFC 3918 delays checked against a capture, and SIGHUP
//! reloads that add and remove links and hosts.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use tests::*;

/// A snooping bridge `br` with its own IGMPv3 / MLDv2 querier (general queries every
/// `query_cs` centiseconds, 1 s to answer), `tap` one of its ports with no flooding of
/// unregistered multicast, and `addr` on the bridge.
fn bridge(ns: &Netns, br: &str, tap: &str, addr: &str, query_cs: u32) {
    let config = SnoopingBridge {
        query_interval_cs: query_cs,
        ..SnoopingBridge::default()
    };
    ns.snooping_bridge(br, tap, addr, &config);
}

/// The groups the bridge `br` learned on port `tap`, but for the hosts' solicited-node groups
/// (ff02::1:ffXX:XXXX, which every TAP host joins: `--solicited-node auto`).
fn mdb(ns: &Netns, br: &str, tap: &str) -> BTreeSet<String> {
    ns.mdb(br, tap)
        .groups()
        .iter()
        .filter(|g| !matches!(g, IpAddr::V6(v6) if v6.segments()[..6] == [0xff02, 0, 0, 0, 0, 1]))
        .map(IpAddr::to_string)
        .collect()
}

/// Starts tunmcastd on the `[[link]]` file `text`; returns it and the file (for reloads).
fn spawn_linked<'n>(ns: &'n Netns, text: &str) -> (Daemon<'n>, PathBuf) {
    (ns.spawn_configured(text), ns.config_path())
}

/// A tcpdump of `filter` on `iface`, for frames the standard capture leaves out (UDP).
fn tcpdump(ns: &Netns, iface: &str, filter: &str) -> (Spawned, PathBuf) {
    let file = ns.dir().join(format!("{iface}-udp.pcap"));
    let process = ns.tcpdump("tcpdump-udp", iface, filter, &file);
    must_wait("tcpdump listening", secs(10), || {
        process.stderr_text().contains("listening on")
    });
    (process, file)
}

/// Epoch times of the frames in `file`.
fn frame_times(file: &Path) -> Vec<f64> {
    run_ok(
        "tshark",
        &[
            "-r",
            file.to_str().unwrap(),
            "-T",
            "fields",
            "-e",
            "frame.time_epoch",
        ],
    )
    .lines()
    .filter_map(|l| l.trim().parse().ok())
    .collect()
}

fn host_range(first: u8, count: u8) -> String {
    format!("10.99.0.{first}-10.99.0.{}", first + count - 1)
}

/// 100 emulated hosts on a TAP port of a snooping bridge: the bridge learns their group,
/// forwards its traffic to the port only between the first join and the last leave, and every
/// host answers a general query; `tunmcastctl delays` agrees with the capture.
#[test]
fn a_hundred_hosts_behind_a_snooping_bridge() {
    let Some(ns) = Netns::new("links_bridge") else {
        return;
    };
    let Some(src) = Netns::new("links_bridge_src") else {
        return;
    };
    bridge(&ns, "br0", "tap1", KERNEL_V4_CIDR, 300);
    // The multicast source: its own namespace behind a veth on the bridge.
    ns.ip(&["link", "add", "vbr", "type", "veth", "peer", "name", "vsrc"]);
    ns.ip(&["link", "set", "vsrc", "netns", src.name()]);
    ns.ip(&["link", "set", "vbr", "master", "br0"]);
    ns.ip(&["link", "set", "vbr", "up"]);
    src.ip(&["addr", "add", "10.99.0.200/24", "dev", "vsrc"]);
    src.ip(&["link", "set", "lo", "up"]);
    src.ip(&["link", "set", "vsrc", "up"]);

    // At info: a debug line per host per query slows a debug build's loop by hundreds of ms
    // under 200 datagrams/s.
    let (daemon, _) = spawn_linked(
        &ns,
        "log_level = \"info\"\ndelays = true\n\
         [[link]]\ndevice = \"tap1\"\nkind = \"tap\"\nsuppression = false\n\
         [[link.hosts]]\ncount = 100\nipv4 = \"10.99.0.10/24\"\n",
    );
    assert_eq!(daemon.show()["interfaces"].as_array().unwrap().len(), 100);
    let mut capture = ns.capture("tap1");
    let (mut udp, udp_file) = tcpdump(&ns, "tap1", "udp");
    // Snooped forwarding starts once the bridge has sent its first query (LAB-NOTES).
    must_wait("the bridge's first query", secs(10), || {
        daemon.counter("igmp_rcv_v3_queries") >= 100
    });

    let group: IpAddr = "239.1.1.1".parse().unwrap();
    // 200 datagrams a second for 14 s, from the source's namespace.
    let script = "import socket,time\n\
                  s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
                  s.setsockopt(socket.IPPROTO_IP,socket.IP_MULTICAST_IF,socket.inet_aton('10.99.0.200'))\n\
                  end=time.time()+14\n\
                  while time.time()<end:\n s.sendto(b'x'*64,('239.1.1.1',5000)); time.sleep(0.005)\n";
    {
        let mut sender = src.spawn("source", Path::new("python3"), &["-c", script]);
        std::thread::sleep(secs(2));
        let before_join = frame_times(&udp_file).len();
        assert_eq!(before_join, 0, "traffic reached the TAP before any join");
        daemon.ctl_ok(&["join", "239.1.1.1", "--hosts", &host_range(10, 100)]);
        must_wait("the bridge learns the group", secs(5), || {
            mdb(&ns, "br0", "tap1").contains("239.1.1.1")
        });
        // Two general queries later every host has answered at least one.
        let queries = daemon.counter("igmp_rcv_v3_queries");
        must_wait("two more general queries", secs(10), || {
            daemon.counter("igmp_rcv_v3_queries") >= queries + 200
        });
        std::thread::sleep(secs(1)); // the answers to the last one
        daemon.ctl_ok(&["leave", "239.1.1.1", "--hosts", &host_range(10, 100)]);
        must_wait("the bridge forgets the group", secs(5), || {
            !mdb(&ns, "br0", "tap1").contains("239.1.1.1")
        });
        std::thread::sleep(secs(2));
        let _ = sender.wait_timeout(secs(10));
    }
    let packets = capture.stop_full();
    udp.signal(Signal::SIGTERM);
    let _ = udp.wait_timeout(secs(5));
    let udp_times = frame_times(&udp_file);
    assert!(!udp_times.is_empty(), "no traffic reached the TAP");

    // Every host answered a general query with its own report.
    let queries: Vec<&Pkt> = packets
        .iter()
        .filter(|p| p.kind == "igmp-query" && !p.from_daemon())
        .collect();
    let reports: Vec<&Pkt> = packets
        .iter()
        .filter(|p| p.kind == "igmpv3-report")
        .collect();
    let after_join_query = queries
        .iter()
        .map(|q| q.time)
        .find(|&t| reports.iter().any(|r| r.time < t && r.covers(group)))
        .expect("a general query after the join");
    let answering: BTreeSet<IpAddr> = reports
        .iter()
        .filter(|r| r.time > after_join_query && r.time < after_join_query + 1.2)
        .filter(|r| r.records().iter().any(|rec| rec.kind == "is_ex"))
        .map(|r| r.src)
        .collect();
    assert_eq!(answering.len(), 100, "hosts answering one general query");

    // Traffic only between the first join report and the last leave (plus the bridge's
    // last-member queries).
    let first_of = |wanted: &dyn Fn(&Record) -> bool| -> HashMap<IpAddr, f64> {
        let mut first = HashMap::new();
        for r in &reports {
            if r.records()
                .iter()
                .any(|rec| rec.group == group && wanted(rec))
            {
                first.entry(r.src).or_insert(r.time);
            }
        }
        first
    };
    let joins = first_of(&|rec| rec.kind == "to_ex");
    let leaves = first_of(&|rec| rec.kind == "to_in" && rec.sources.is_empty());
    assert_eq!(
        (joins.len(), leaves.len()),
        (100, 100),
        "hosts joining, leaving"
    );
    let first_join = joins.values().copied().fold(f64::MAX, f64::min);
    let first_leave = leaves.values().copied().fold(f64::MAX, f64::min);
    let (first_udp, last_udp) = (udp_times[0], *udp_times.last().unwrap());
    assert!(first_udp > first_join, "traffic before the first join");
    assert!(
        last_udp - first_leave < 4.0,
        "traffic went on {:.3} s after the leave",
        last_udp - first_leave
    );

    // RFC 3918 from the capture, per host: its first report to the first datagram after it;
    // its leave to the last datagram.
    let per_host = |events: &HashMap<IpAddr, f64>, delay: &dyn Fn(f64) -> f64| -> Vec<f64> {
        let mut delays: Vec<f64> = events.values().map(|&t| delay(t) * 1e3).collect();
        delays.sort_by(f64::total_cmp);
        delays
    };
    let capture_join = per_host(&joins, &|sent| {
        udp_times
            .iter()
            .find(|&&t| t >= sent)
            .map_or(f64::NAN, |t| t - sent)
    });
    let capture_leave = per_host(&leaves, &|left| (last_udp - left).max(0.0));
    let delays = daemon.ctl_json(&["delays"]);
    let ms = |what: &str, rank: &str| delays[what][rank].as_u64().unwrap() as f64 / 1e6;
    // Nearest rank, as the daemon computes it.
    let p50 = |sorted: &[f64]| sorted[(sorted.len() / 2).max(1) - 1];
    eprintln!(
        "links: join delay capture p50 {:.1} / max {:.1} ms, daemon {:.1} / {:.1} ms; leave \
         delay capture p50 {:.1} / max {:.1} ms, daemon {:.1} / {:.1} ms; {} hosts answered \
         one query",
        p50(&capture_join),
        capture_join[99],
        ms("join", "p50_ns"),
        ms("join", "max_ns"),
        p50(&capture_leave),
        capture_leave[99],
        ms("leave", "p50_ns"),
        ms("leave", "max_ns"),
        answering.len()
    );
    assert_eq!(delays["join"]["count"], 100, "{delays}");
    assert_eq!(delays["leave"]["count"], 100, "{delays}");
    // The daemon stamps a datagram with the time the kernel sent it to the TAP (as the capture
    // does), a report with its write. When written both agreed to 0.1 ms (0.7 / 5.2 ms join,
    // 1008.6 / 1009.1 ms leave). The median within 1 ms; the largest within 10 (the OS may
    // take the core from the loop between a report's stamp and its write, on a shared machine).
    for (what, capture) in [("join", &capture_join), ("leave", &capture_leave)] {
        for (rank, figure, within) in [("p50_ns", p50(capture), 1.0), ("max_ns", capture[99], 10.0)]
        {
            assert!(
                (ms(what, rank) - figure).abs() < within,
                "{what} delay {rank}: daemon {} ms, capture {figure} ms",
                ms(what, rank)
            );
        }
    }
    assert_eq!(delays["never_forwarded_total"], 0, "{delays}");
    assert_eq!(delays["forwarded_after_leave_total"], 0, "{delays}");
}

/// The bridge's side resolves and pings emulated hosts over IPv4 and IPv6.
#[test]
fn emulated_hosts_answer_arp_neighbour_discovery_and_ping() {
    let Some(ns) = Netns::new("links_neighbours") else {
        return;
    };
    // The bridge's link-local is fe80::1, without DAD.
    bridge(&ns, "br0", "tap1", KERNEL_V4_CIDR, 1000);
    let (daemon, _) = spawn_linked(
        &ns,
        "[[link]]\ndevice = \"tap1\"\nkind = \"tap\"\n\
         [[link.hosts]]\ncount = 5\nipv4 = \"10.99.0.10/24\"\n",
    );
    for host in ["10.99.0.12", "10.99.0.14"] {
        ns.exec_ok(&["ping", "-c1", "-W2", host]);
    }
    // 02:00:0a:63:00:0c -> EUI-64 fe80::ff:fe63:c... computed by the daemon: read it back.
    let interfaces = daemon.show()["interfaces"].as_array().unwrap().clone();
    let ll = interfaces
        .iter()
        .find(|i| i["ipv4"] == "10.99.0.12")
        .map(|i| i["ipv6_ll"].as_str().unwrap().to_string())
        .unwrap();
    ns.exec_ok(&["ping", "-6", "-c1", "-W2", &format!("{ll}%br0")]);
    let neigh = ns.ip(&["neigh", "show", "dev", "br0"]);
    assert!(
        neigh.contains("10.99.0.12") && neigh.contains(&ll),
        "{neigh}"
    );
    assert!(daemon.counter("tap_neighbour_answers") >= 4);
}

/// Two links in one daemon: each bridge learns only its own link's groups, each link's
/// queries are answered on that link only.
#[test]
fn two_links_never_mix_groups_queries_or_reports() {
    let Some(ns) = Netns::new("links_two") else {
        return;
    };
    bridge(&ns, "br0", "tapa", "10.99.0.1/24", 200);
    bridge(&ns, "br1", "tapb", "10.98.0.1/24", 200);
    let (daemon, _) = spawn_linked(
        &ns,
        "[[link]]\ndevice = \"tapa\"\nkind = \"tap\"\n\
         [[link.hosts]]\ncount = 3\nipv4 = \"10.99.0.10/24\"\n\
         [[link]]\ndevice = \"tapb\"\nkind = \"tap\"\n\
         [[link.hosts]]\ncount = 3\nipv4 = \"10.98.0.10/24\"\n",
    );
    let mut capture_a = ns.capture("tapa");
    let mut capture_b = ns.capture("tapb");
    daemon.ctl_ok(&["join", "239.1.1.1", "--hosts", "10.99.0.10-10.99.0.12"]);
    daemon.ctl_ok(&["join", "239.2.2.2", "--iface", "tapb"]);
    daemon.ctl_ok(&["join", "239.3.3.3", "--host", "10.98.0.11"]);
    must_wait("both bridges learn their groups", secs(5), || {
        mdb(&ns, "br0", "tapa") == BTreeSet::from(["239.1.1.1".to_string()])
            && mdb(&ns, "br1", "tapb")
                == BTreeSet::from(["239.2.2.2".to_string(), "239.3.3.3".to_string()])
    });
    // A host of one link cannot be named on the other.
    let refused = daemon.ctl(&[
        "join",
        "239.4.4.4",
        "--iface",
        "tapa",
        "--host",
        "10.98.0.10",
    ]);
    assert!(!refused.status.success());
    std::thread::sleep(secs(5)); // two rounds of queries on each link
    let (a, b) = (capture_a.stop_full(), capture_b.stop_full());
    let ours = |packets: &[Pkt], prefix: &str| {
        packets
            .iter()
            .filter(|p| p.is_report())
            .all(|p| p.src.to_string().starts_with(prefix) || p.src.is_ipv6())
    };
    assert!(ours(&a, "10.99.0."), "{}", listing(&a));
    assert!(ours(&b, "10.98.0."), "{}", listing(&b));
    // The emulated hosts' reports (the bridges report 224.0.0.106 for themselves).
    let groups = |packets: &[Pkt]| -> BTreeSet<String> {
        packets
            .iter()
            .filter(|p| p.kind == "igmpv3-report" && !p.src.to_string().ends_with(".0.1"))
            .flat_map(|p| p.records())
            .map(|r| r.group.to_string())
            .collect()
    };
    assert_eq!(groups(&a), BTreeSet::from(["239.1.1.1".to_string()]));
    assert_eq!(
        groups(&b),
        BTreeSet::from(["239.2.2.2".to_string(), "239.3.3.3".to_string()])
    );
    // Each link's queries reached only its own hosts: per-link counters.
    let stats_a = daemon.ctl_json(&["stats", "--iface", "tapa"]);
    let stats_b = daemon.ctl_json(&["stats", "--iface", "tapb"]);
    assert!(stats_a["host_rx_packets"].as_u64().unwrap() >= 3);
    assert!(stats_b["host_rx_packets"].as_u64().unwrap() >= 3);
    // Three hosts with one group each, and each its solicited-node group.
    let show = daemon.ctl_json(&["show", "--iface", "tapa"]);
    assert_eq!(show["total_groups"], 6, "{show}");
    let one = daemon.ctl_json(&["show", "--host", "10.98.0.11"]);
    assert_eq!(one["total_groups"], 2, "{one}");
}

/// A bad file at start: exit 2, nothing made. A bad file on SIGHUP: the running links stay and
/// `show` says why. A good one: links and hosts added and removed, the removed hosts' groups
/// left on the wire.
#[test]
fn config_errors_and_reloads_of_links_and_hosts() {
    let Some(ns) = Netns::new("links_reload") else {
        return;
    };
    let config = ns.dir().join("links.toml");
    let socket = ns.dir().join("ctl.sock");
    std::fs::write(
        &config,
        "[[link]]\ndevice = \"tapz\"\nkind = \"tap\"\n[[link.hosts]]\ncount = 2\n",
    )
    .unwrap();
    let out = std::process::Command::new(bin("tunmcastd"))
        .args(["--config", config.to_str().unwrap()])
        .args(["--control", socket.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("needs `ipv4`"), "{stderr}");
    assert!(!socket.exists());
    assert!(!ns.ip(&["link", "show"]).contains("tapz"));

    bridge(&ns, "br0", "tap1", KERNEL_V4_CIDR, 1000);
    bridge(&ns, "br1", "tap2", "10.98.0.1/24", 1000);
    let first = "[[link]]\ndevice = \"tap1\"\nkind = \"tap\"\n\
                 [[link.hosts]]\ncount = 4\nipv4 = \"10.99.0.10/24\"\n";
    let (daemon, config) = spawn_linked(&ns, first);
    let mut capture = ns.capture("tap1");
    daemon.ctl_ok(&["join", "239.1.1.1", "--hosts", "10.99.0.10-10.99.0.13"]);

    std::fs::write(
        &config,
        "[[link]]\ndevice = \"tap1\"\nkind = \"sideways\"\n",
    )
    .unwrap();
    daemon.signal(Signal::SIGHUP);
    must_wait("show reports the bad file", secs(5), || {
        daemon.show()["config_error"]
            .as_str()
            .is_some_and(|e| e.contains("`kind`"))
    });
    assert_eq!(daemon.show()["interfaces"].as_array().unwrap().len(), 4);

    // Hosts .12 and .13 go, tap2 comes with two hosts.
    std::fs::write(
        &config,
        "[[link]]\ndevice = \"tap1\"\nkind = \"tap\"\n\
         [[link.hosts]]\ncount = 2\nipv4 = \"10.99.0.10/24\"\n\
         [[link]]\ndevice = \"tap2\"\nkind = \"tap\"\n\
         [[link.hosts]]\ncount = 2\nipv4 = \"10.98.0.10/24\"\n",
    )
    .unwrap();
    daemon.signal(Signal::SIGHUP);
    must_wait("the new topology", secs(5), || {
        let show = daemon.show();
        show["interfaces"].as_array().unwrap().len() == 4 && show.get("config_error").is_none()
    });
    daemon.ctl_ok(&["join", "239.2.2.2", "--iface", "tap2"]);
    must_wait("br1 learns tap2's group", secs(5), || {
        mdb(&ns, "br1", "tap2").contains("239.2.2.2")
    });
    std::thread::sleep(secs(2));
    let packets = capture.stop_full();
    for gone in ["10.99.0.12", "10.99.0.13"] {
        let left = packets.iter().any(|p| {
            p.src.to_string() == gone
                && p.records()
                    .iter()
                    .any(|r| r.kind == "to_in" && r.sources.is_empty())
        });
        assert!(
            left,
            "{gone} did not leave its group: {}",
            listing(&packets)
        );
    }
    // The hosts that stayed kept their group, undisturbed (and each its solicited-node group).
    assert_eq!(
        daemon.ctl_json(&["show", "--iface", "tap1"])["total_groups"],
        4
    );
}

/// FRR's pimd as the IGMPv3 querier on a TAP link (its kernel side): `show ip igmp groups
/// json` lists the groups the emulated hosts joined, each in the version its block is
/// forced to (a v2 block's group in v2 compatibility, a v3 block's in v3 EXCLUDE).
#[test]
fn frr_lists_the_groups_of_host_blocks_in_their_igmp_versions() {
    if !frr_pimd_can_run("links_frr") {
        return;
    }
    let Some(ns) = Netns::new("links_frr") else {
        return;
    };
    ns.ip(&["tuntap", "add", "dev", "tap1", "mode", "tap"]);
    ns.ip(&["addr", "add", KERNEL_V4_CIDR, "dev", "tap1"]);
    let (daemon, _) = spawn_linked(
        &ns,
        "[[link]]\ndevice = \"tap1\"\nkind = \"tap\"\nsuppression = false\n\
         [[link.hosts]]\ncount = 3\nipv4 = \"10.99.0.10/24\"\nigmp_version = 2\n\
         [[link.hosts]]\ncount = 3\nipv4 = \"10.99.0.20/24\"\nigmp_version = 3\n",
    );
    ns.ip(&["link", "set", "tap1", "up"]);
    let Some(frr) = ns.frr() else {
        return;
    };
    frr.igmp_querier("tap1", 3, 10, 2);
    daemon.ctl_ok(&["join", "239.1.1.1", "--hosts", "10.99.0.10-10.99.0.12"]);
    daemon.ctl_ok(&["join", "239.1.1.2", "--host", "10.99.0.11"]);
    daemon.ctl_ok(&["join", "239.2.2.2", "--hosts", "10.99.0.20-10.99.0.22"]);
    daemon.ctl_ok(&["join", "239.2.2.3", "--host", "10.99.0.22"]);
    let wanted: BTreeSet<IpAddr> = ["239.1.1.1", "239.1.1.2", "239.2.2.2", "239.2.2.3"]
        .iter()
        .map(|g| g.parse().unwrap())
        .collect();
    must_wait("pimd learns every group", secs(10), || {
        frr.igmp_groups("tap1").into_iter().collect::<BTreeSet<_>>() == wanted
    });
    // A query round later the versions are settled (pimd's v3 queries keep the v3 block in
    // v3; the v2 block answers them in v2).
    std::thread::sleep(secs(3));
    for (group, version) in [
        ("239.1.1.1", 2),
        ("239.1.1.2", 2),
        ("239.2.2.2", 3),
        ("239.2.2.3", 3),
    ] {
        let entry = frr
            .igmp_group("tap1", group.parse().unwrap())
            .unwrap_or_else(|| panic!("pimd forgot {group}"));
        assert_eq!(entry["version"], version, "{group}: {entry}");
        if version == 3 {
            assert_eq!(entry["mode"], "EXCLUDE", "{group}: {entry}");
        }
    }
    assert_eq!(
        frr.igmp_groups("tap1").into_iter().collect::<BTreeSet<_>>(),
        wanted
    );
}

/// `listen` per host: a listener is the join of the host `--host` (or `--iface`) names, and
/// receives the datagrams read on that host's link only.
#[test]
fn listeners_are_joins_of_their_host_and_hear_their_link_only() {
    let Some(ns) = Netns::new("links_listen") else {
        return;
    };
    for (tap, kernel) in [("tapa", "10.99.0.1/24"), ("tapb", "10.98.0.1/24")] {
        ns.ip(&["tuntap", "add", "dev", tap, "mode", "tap"]);
        ns.ip(&["addr", "add", kernel, "dev", tap]);
    }
    let (daemon, _) = spawn_linked(
        &ns,
        "[[link]]\ndevice = \"tapa\"\nkind = \"tap\"\n\
         [[link.hosts]]\ncount = 2\nipv4 = \"10.99.0.10/24\"\n\
         [[link]]\ndevice = \"tapb\"\nkind = \"tap\"\n\
         [[link.hosts]]\ncount = 2\nipv4 = \"10.98.0.10/24\"\n",
    );
    for tap in ["tapa", "tapb"] {
        ns.ip(&["link", "set", tap, "up"]);
    }
    let on_a = daemon.listen(&["239.5.5.5", "--host", "10.99.0.11", "--count", "1"]);
    let on_b = daemon.listen(&["239.5.5.5", "--iface", "tapb", "--count", "1"]);
    let labels: BTreeSet<String> = daemon
        .listeners()
        .iter()
        .map(|l| l["iface"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        labels,
        BTreeSet::from(["tapa/10.99.0.11".to_string(), "tapb/10.98.0.10".to_string()])
    );
    // The join is the named host's, nobody else's (each holds its solicited-node group too).
    assert_eq!(
        daemon.ctl_json(&["show", "--host", "10.99.0.11"])["total_groups"],
        2
    );
    assert_eq!(
        daemon.ctl_json(&["show", "--host", "10.99.0.10"])["total_groups"],
        1
    );
    ns.kernel_send("tapa", &[Udp::new("10.99.0.1", "239.5.5.5", 5000, b"aa")]);
    ns.kernel_send("tapb", &[Udp::new("10.98.0.1", "239.5.5.5", 5000, b"bb")]);
    assert_eq!(wait_payloads(&on_a, 1, secs(5)), ["6161"]);
    assert_eq!(wait_payloads(&on_b, 1, secs(5)), ["6262"]);
    // A listener is one host's join: a range is refused.
    let refused = daemon.ctl(&["listen", "239.5.5.6", "--hosts", "10.99.0.10-10.99.0.11"]);
    assert!(!refused.status.success());
}

/// A query about one group reaches only the hosts holding it, as a network card's multicast
/// filter lets through only its host's groups: the other hosts are not handed it (their
/// counters stay), the holders answer it. A general query still reaches every host.
#[test]
fn a_query_about_one_group_reaches_only_the_hosts_holding_it() {
    let Some(ns) = Netns::new("links_specific_query") else {
        return;
    };
    ns.ip(&["tuntap", "add", "dev", "tap1", "mode", "tap"]);
    // Nothing else on the link: the kernel's own IPv6 (its MLD reports, router and neighbour
    // solicitations) would reach every host too.
    ns.exec_ok(&["sysctl", "-qw", "net.ipv6.conf.tap1.disable_ipv6=1"]);
    ns.ip(&["addr", "add", "10.99.0.1/24", "dev", "tap1"]);
    ns.ip(&["link", "set", "tap1", "up"]);
    let (daemon, _) = spawn_linked(
        &ns,
        "solicited_node = \"off\"\n[[link]]\ndevice = \"tap1\"\nkind = \"tap\"\n\
         suppression = false\n[[link.hosts]]\ncount = 6\nipv4 = \"10.99.0.10/24\"\n",
    );
    daemon.ctl_ok(&["join", "239.2.2.2", "--hosts", "10.99.0.10-10.99.0.11"]);
    let hosts: Vec<String> = (10..16).map(|n| format!("10.99.0.{n}")).collect();
    let handed = || -> Vec<u64> {
        hosts
            .iter()
            .map(|h| {
                daemon.ctl_json(&["stats", "--host", h])["host_rx_packets"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };
    let query = |group: Option<&str>| {
        let mut args = vec!["--dev", "tap1", "--igmp", "3", "--max-resp-ms", "500"];
        if let Some(group) = group {
            args.extend(["--group", group]);
        }
        args.extend(["--count", "1", "--listen-ms", "1500", "--json"]);
        let mut querier = ns.querier(&args);
        assert!(
            querier.wait_exit(secs(6)).is_some(),
            "mcquerier still listening: {}",
            querier.output()
        );
        querier.heard()
    };
    let before = handed();
    let heard = query(Some("239.2.2.2"));
    let after = handed();
    let deltas: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert_eq!(deltas, [1, 1, 0, 0, 0, 0], "the query handed to each host");
    let answered: BTreeSet<&str> = heard
        .iter()
        .filter(|v| v["type"] == "v3-report")
        .filter_map(|v| v["src"].as_str())
        .collect();
    assert_eq!(
        answered,
        BTreeSet::from(["10.99.0.10", "10.99.0.11"]),
        "{heard:?}"
    );
    let before = handed();
    query(None);
    let after = handed();
    let deltas: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert_eq!(deltas, [1; 6], "a general query handed to each host");
}
