//! membership's smoltcp example (`membership/examples/smoltcp_tun.rs`) on a real TUN: the
//! Host's IGMPv3 report on the wire and nobody else's (smoltcp's own reporter silenced), and
//! the UDP datagrams the kernel sends to the group received by smoltcp and printed.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use membership::wire::igmp::IgmpRepr;
use membership::wire::ip::build_ipv4;
use tests::*;

const GROUP: &str = "239.1.2.3";
const PORT: u16 = 5000;
const ALL_SYSTEMS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 1);

/// The example binary, built next to the workspace binaries; this test builds nothing.
fn example() -> PathBuf {
    let path = bin_dir().join("examples").join("smoltcp_tun");
    if !path.is_file() {
        panic!(
            "{} not found: build it first with `cargo build -p membership --examples` \
             (scripts/test.sh does), or point TUNMCAST_BIN_DIR at a profile directory \
             holding examples/smoltcp_tun",
            path.display()
        );
    }
    path
}

#[test]
fn joins_with_the_hosts_report_alone_and_prints_the_datagrams() {
    let example = example();
    let Some(ns) = Netns::new("example_smoltcp") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let mut capture = ns.capture(TUN);
    // An IPv6 address too, so that MLD could be sent; the Host joins no IPv6 group, so none
    // may come from the example at all.
    let mut process = ns.spawn(
        "smoltcp_tun",
        &example,
        &[
            "--iface",
            TUN,
            "--ipv4",
            DAEMON_V4_CIDR,
            "--ipv6-ll",
            &DAEMON_LL.to_string(),
            "--group",
            GROUP,
            "--port",
            &PORT.to_string(),
            "--count",
            "3",
        ],
    );
    let group = ip(GROUP);
    let join = Record::new("to_ex", GROUP, &[]);
    capture.wait_for_full("the Host's IGMPv3 join report", secs(5), |packets| {
        packets
            .iter()
            .any(|p| p.from_daemon() && p.kind == "igmpv3-report" && p.records() == [join.clone()])
    });

    // A General Query, Max Resp Time 1 s: the Host answers it. smoltcp, which would answer
    // too, never sees it.
    let query = IgmpRepr::QueryV3 {
        max_resp_code: 10,
        group: Ipv4Addr::UNSPECIFIED,
        suppress_router: false,
        qrv: 2,
        qqic: 125,
        sources: Vec::new(),
    };
    ns.inject_raw(TUN, &build_ipv4(KERNEL_V4, ALL_SYSTEMS, &query.to_bytes()));
    let current = Record::new("is_ex", GROUP, &[]);
    capture.wait_for_full("the Host's answer to the query", secs(5), |packets| {
        packets.iter().any(|p| {
            p.from_daemon() && p.kind == "igmpv3-report" && p.records() == [current.clone()]
        })
    });

    let k = &KERNEL_V4.to_string();
    ns.kernel_send(
        TUN,
        &[
            // Neither may be printed: another port, a group not joined.
            Udp::new(k, GROUP, PORT + 1, b"to another port"),
            Udp::new(k, "239.9.9.9", PORT, b"to another group"),
            Udp::new(k, GROUP, PORT, b"one"),
            Udp::new(k, GROUP, PORT, b"two"),
            Udp::new(k, GROUP, PORT, b"three"),
        ],
    );
    let status = process.wait_timeout(secs(10)).unwrap_or_else(|| {
        panic!(
            "the example did not exit after 3 datagrams; printed {:?}",
            process.stdout_text()
        )
    });
    assert!(status.success(), "{status}: {}", process.stderr_text());
    assert_eq!(process.stdout_text(), "one\ntwo\nthree\n");

    // Every IGMP/MLD packet from the example's addresses is one of the Host's IGMPv3 reports:
    // the join first, the leave last. smoltcp's own reporter would add an IGMPv2 report when
    // it joins the group, and its answer to the query.
    let packets = capture.stop_full();
    assert_daemon_packets_well_formed(&packets);
    let ours: Vec<&Pkt> = packets
        .iter()
        .filter(|p| p.from_daemon() && p.is_membership())
        .collect();
    let listing = full_listing(packets.iter());
    assert!(
        ours.iter().all(|p| p.kind == "igmpv3-report"),
        "only the Host's IGMPv3 reports may come from the example:\n{listing}"
    );
    assert_eq!(
        ours.first().map(|p| p.records()),
        Some(vec![join]),
        "{listing}"
    );
    assert_eq!(
        ours.last().map(|p| p.records()),
        Some(vec![Record::new("to_in", GROUP, &[])]),
        "{listing}"
    );
    assert!(ours.iter().all(|p| p.covers(group)), "{listing}");
    // And the example did have something of smoltcp's to drop: its join report.
    let log = process.stderr_text();
    let dropped: u64 = log
        .lines()
        .find_map(|l| l.split("dropped ").nth(1)?.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no count of smoltcp's own packets in:\n{log}"));
    assert!(dropped >= 1, "{log}");
}
