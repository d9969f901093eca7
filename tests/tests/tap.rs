//! TAP mode: the daemon as a host with its own MAC on a Linux bridge port. The bridge (with
//! multicast snooping and its own IGMPv3 / MLDv2 querier) is the real peer: `bridge mdb`
//! shows what it learned from our reports, and every frame we send carries our MAC and the
//! multicast MAC of its destination.

use std::time::Duration;

use tests::*;

const TAP: &str = "tap0";
const MAC: &str = "02:00:0a:63:00:02";

/// The bridge's groups on port tap0 (`grp`, or `grp src S` for an (S,G) entry), for messages.
fn mdb(ns: &Netns) -> Vec<String> {
    ns.mdb("br0", TAP)
        .entries
        .iter()
        .map(|e| match e.source {
            Some(source) => format!("{} src {source}", e.group),
            None => e.group.to_string(),
        })
        .collect()
}

fn wait_mdb(ns: &Netns, what: &str, timeout: Duration, condition: impl Fn(&[String]) -> bool) {
    let ok = wait_until(timeout, || condition(&mdb(ns)));
    assert!(ok, "bridge mdb: {what}; it has {:?}", mdb(ns));
}

#[test]
fn a_bridge_querier_learns_our_groups_and_sources_from_tap_frames() {
    let Some(ns) = Netns::new("tap_bridge") else {
        return;
    };
    // A snooping bridge that queries every 2 s, answered within 1 s.
    let config = SnoopingBridge {
        query_interval_cs: 200,
        ..SnoopingBridge::default()
    };
    ns.snooping_bridge("br0", TAP, KERNEL_V4_CIDR, &config);
    let mut capture = ns.capture(TAP);

    let socket = ns.dir().join("ctl.sock");
    let socket_arg = socket.to_str().expect("UTF-8 temp dir").to_string();
    let args = [
        "--tap",
        "--tun",
        TAP,
        "--ipv4",
        DAEMON_V4_CIDR,
        "--ipv6-ll",
        "fe80::2",
        "--control",
        &socket_arg,
    ];
    let daemon = ns.spawn_daemon_with(&args, &socket);
    let iface = daemon.interface();
    assert_eq!(
        (iface["device"].as_str(), iface["mac"].as_str()),
        (Some("tap"), Some(MAC))
    );

    daemon.ctl_ok(&["join", "239.1.2.3"]);
    daemon.ctl_ok(&["join", "232.1.1.1", "--include", "10.99.0.77"]);
    daemon.ctl_ok(&["join", "ff12::1234"]);
    wait_mdb(&ns, "all three groups and the source", secs(5), |m| {
        ["239.1.2.3", "232.1.1.1 src 10.99.0.77", "ff12::1234"]
            .iter()
            .all(|g| m.iter().any(|e| e == g))
    });
    // It keeps them because we answer its queries (each general query is answered).
    let answered = wait_until(secs(10), || {
        daemon.counter("igmp_rcv_v3_queries") >= 2 && daemon.counter("mld_rcv_v2_queries") >= 1
    });
    assert!(
        answered,
        "the bridge's IGMP and MLD queries did not both reach the daemon"
    );

    // Leaving: the bridge's last-member queries go unanswered and the group is dropped.
    daemon.ctl_ok(&["leave", "239.1.2.3"]);
    wait_mdb(&ns, "239.1.2.3 gone after the leave", secs(5), |m| {
        !m.iter().any(|e| e == "239.1.2.3")
    });
    assert!(mdb(&ns).iter().any(|e| e == "ff12::1234"));

    // Every frame we sent: our MAC, the destination group's multicast MAC, an IP packet with
    // good checksums, Router Alert, TTL / hop limit 1.
    let packets = capture.stop();
    let ours: Vec<Pkt> = packets
        .iter()
        .filter(|p| p.from_daemon())
        .cloned()
        .collect();
    assert!(ours.len() >= 6, "{}", listing(&packets));
    assert_daemon_packets_well_formed(&ours);
    let frames = run_ok(
        "tshark",
        &[
            "-r",
            capture.file().to_str().unwrap(),
            "-T",
            "fields",
            "-e",
            "eth.src",
            "-e",
            "eth.dst",
            "-e",
            "ip.dst",
            "-e",
            "ipv6.dst",
        ],
    );
    let mut checked = 0;
    for line in frames.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.first() != Some(&MAC) {
            continue;
        }
        let want = match (
            f.get(2).copied().unwrap_or(""),
            f.get(3).copied().unwrap_or(""),
        ) {
            ("224.0.0.22", _) => "01:00:5e:00:00:16",
            (_, "ff02::16") => "33:33:00:00:00:16",
            other => panic!("a frame of ours to {other:?}: {line}"),
        };
        assert_eq!(f[1], want, "{line}");
        checked += 1;
    }
    assert_eq!(
        checked,
        ours.len(),
        "every packet of ours came in a frame from our MAC"
    );
    eprintln!(
        "tap: {checked} frames from {MAC}, bridge mdb now {:?}",
        mdb(&ns)
    );
}
