//! The data path: UDP to joined groups, read from real TUN and TAP devices where the
//! namespace's kernel sends it, delivered to `tunmcastctl listen` clients by each one's own
//! source filter (RFC 9776 §3.2), everything else counted and dropped.

use tests::*;

const GROUP4: &str = "239.1.2.3";
const GROUP6: &str = "ff12::1234";
/// The kernel's second source address on the link.
const OTHER_V4: &str = "10.99.0.3";
const OTHER_LL: &str = "fe80::3";

/// A TUN link whose kernel side has two addresses of each family, and a daemon on it.
fn link<'a>(ns: &'a Netns, extra: &[&str]) -> Daemon<'a> {
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    ns.ip(&["addr", "add", &format!("{OTHER_V4}/24"), "dev", TUN]);
    ns.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{OTHER_LL}/64"),
        "dev",
        TUN,
        "nodad",
    ]);
    ns.spawn_daemon(extra)
}

fn hexes(payloads: &[&[u8]]) -> Vec<String> {
    payloads.iter().map(|p| hex(p)).collect()
}

#[test]
fn each_listener_receives_what_its_own_filter_admits_ipv4() {
    let Some(ns) = Netns::new("dp_v4") else {
        return;
    };
    let daemon = link(&ns, &["--igmp-version", "3"]);
    let k = &KERNEL_V4.to_string();
    let any = daemon.listen(&[GROUP4]);
    let include = daemon.listen(&[&format!("{GROUP4}:5000"), "--include", k]);
    let exclude = daemon.listen(&[GROUP4, "--exclude", k]);

    ns.kernel_send(
        TUN,
        &[
            Udp::new(k, GROUP4, 5000, b"one from .1"),
            Udp::new(OTHER_V4, GROUP4, 5000, b"two from .3"),
            Udp::new(k, GROUP4, 6000, b"three from .1 to 6000"),
            Udp::new(OTHER_V4, GROUP4, 5000, &[0, 1, 2, 255, 254]),
            // Nobody listens to this group.
            Udp::new(k, "239.9.9.9", 5000, b"not joined"),
        ],
    );
    assert_eq!(
        wait_payloads(&any, 4, secs(5)),
        hexes(&[
            b"one from .1",
            b"two from .3",
            b"three from .1 to 6000",
            &[0, 1, 2, 255, 254]
        ])
    );
    assert_eq!(
        wait_payloads(&exclude, 2, secs(5)),
        hexes(&[b"two from .3", &[0, 1, 2, 255, 254]])
    );
    assert_eq!(
        wait_payloads(&include, 1, secs(5)),
        hexes(&[b"one from .1"])
    );
    // The JSON of one datagram.
    let first = &received(&include)[0];
    assert_eq!(first["src"], KERNEL_V4.to_string());
    assert_eq!(first["group"], GROUP4);
    assert_eq!(first["dport"], 5000);
    assert_eq!(first["len"], 11);
    assert!(first["sport"].as_u64().is_some_and(|p| p > 0), "{first}");

    // Nothing more arrives, and the drops are counted.
    std::thread::sleep(ms(300));
    assert_eq!(received(&any).len(), 4);
    assert_eq!(received(&exclude).len(), 2);
    assert_eq!(received(&include).len(), 1);
    let stats = daemon.stats();
    let get = |name: &str| stats[name].as_u64().unwrap();
    assert_eq!(get("udp_rcv_datagrams"), 5, "{stats:?}");
    assert_eq!(get("udp_delivered"), 7, "{stats:?}");
    assert_eq!(get("udp_drop_not_joined"), 1, "{stats:?}");
    assert_eq!(get("drop_other_ipv4"), 0, "{stats:?}");

    // show lists them with their counts.
    let listeners = daemon.listeners();
    let delivered: Vec<u64> = listeners
        .iter()
        .map(|l| l["delivered"].as_u64().unwrap())
        .collect();
    assert_eq!(delivered, [4, 1, 2], "{listeners:?}");
    assert_eq!(listeners[1]["filter_mode"], "include");
    assert_eq!(listeners[1]["port"], 5000);
    let table = daemon.ctl_ok(&["show"]);
    assert!(table.contains("LISTENER"), "{table}");
}

#[test]
fn a_source_filtered_out_is_counted_and_not_delivered() {
    let Some(ns) = Netns::new("dp_filtered") else {
        return;
    };
    let daemon = link(&ns, &["--igmp-version", "3"]);
    let only_other = daemon.listen(&[GROUP4, "--include", OTHER_V4]);
    ns.kernel_send(
        TUN,
        &[
            Udp::new(&KERNEL_V4.to_string(), GROUP4, 5000, b"filtered"),
            Udp::new(OTHER_V4, GROUP4, 5000, b"admitted"),
        ],
    );
    assert_eq!(
        wait_payloads(&only_other, 1, secs(5)),
        hexes(&[b"admitted"])
    );
    std::thread::sleep(ms(300));
    assert_eq!(received(&only_other).len(), 1);
    assert_eq!(daemon.counter("udp_drop_source_filtered"), 1);
    assert_eq!(daemon.counter("udp_delivered"), 1);
}

#[test]
fn ipv6_datagrams_with_and_without_hop_by_hop_reach_the_right_listeners() {
    let Some(ns) = Netns::new("dp_v6") else {
        return;
    };
    let daemon = link(&ns, &["--mld-version", "2"]);
    let any = daemon.listen(&[&format!("[{GROUP6}]:5000")]);
    let include = daemon.listen(&[GROUP6, "--include", KERNEL_LL]);
    let exclude = daemon.listen(&[GROUP6, "--exclude", KERNEL_LL]);
    ns.kernel_send(
        TUN,
        &[
            Udp::new(KERNEL_LL, GROUP6, 5000, b"plain from ::1"),
            Udp::new(KERNEL_LL, GROUP6, 5000, b"hbh from ::1").with_hop_by_hop(),
            Udp::new(OTHER_LL, GROUP6, 5000, b"hbh from ::3").with_hop_by_hop(),
            Udp::new(OTHER_LL, GROUP6, 5001, b"plain from ::3 to 5001"),
        ],
    );
    assert_eq!(
        wait_payloads(&any, 3, secs(5)),
        hexes(&[b"plain from ::1", b"hbh from ::1", b"hbh from ::3"])
    );
    assert_eq!(
        wait_payloads(&include, 2, secs(5)),
        hexes(&[b"plain from ::1", b"hbh from ::1"])
    );
    assert_eq!(
        wait_payloads(&exclude, 2, secs(5)),
        hexes(&[b"hbh from ::3", b"plain from ::3 to 5001"])
    );
    assert_eq!(received(&include)[0]["src"], KERNEL_LL);
    std::thread::sleep(ms(300));
    assert_eq!(received(&any).len(), 3);
    assert_eq!(daemon.counter("udp_rcv_datagrams"), 4);
    assert_eq!(daemon.counter("drop_other_ipv6"), 0);
}

#[test]
fn a_listener_killed_with_sigkill_leaves_on_the_wire() {
    let Some(ns) = Netns::new("dp_kill9") else {
        return;
    };
    let daemon = link(&ns, &[]);
    let capture = ns.capture(TUN);
    let listener = daemon.listen(&[GROUP4]);
    capture.wait_for("the report of the listener's join", secs(5), |p| {
        p.iter()
            .any(|p| p.from_daemon() && p.is_report() && p.about(ip(GROUP4)))
    });
    assert!(daemon.group(GROUP4).is_some());
    let killed_at = now();
    listener.signal(Signal::SIGKILL);
    must_wait("the listener and its join to be gone", secs(5), || {
        daemon.listeners().is_empty() && daemon.group(GROUP4).is_none()
    });
    let packets = capture.wait_for("the Leave", secs(5), |p| {
        p.iter().any(|p| {
            p.from_daemon() && p.kind == "igmp-leave" && p.about(ip(GROUP4)) && p.time >= killed_at
        })
    });
    assert_daemon_packets_well_formed(&packets);
    assert_eq!(daemon.counter("listeners_closed"), 1);
}

#[test]
fn udp_to_forwards_payloads_to_a_plain_udp_socket() {
    let Some(ns) = Netns::new("dp_udp_to") else {
        return;
    };
    let daemon = link(&ns, &[]);
    let sink = ns.udp_socket("127.0.0.1:7000");
    sink.set_read_timeout(Some(secs(5))).unwrap();
    let mut listener = daemon.listen(&[GROUP4, "--udp-to", "127.0.0.1:7000", "--count", "3"]);
    let payloads: [&[u8]; 3] = [b"first", b"", &[0xff; 1400]];
    let sends: Vec<Udp> = payloads
        .iter()
        .map(|p| Udp::new(&KERNEL_V4.to_string(), GROUP4, 5000, p))
        .collect();
    ns.kernel_send(TUN, &sends);
    let mut buf = [0u8; 2048];
    for want in payloads {
        let n = sink.recv(&mut buf).expect("a forwarded payload");
        assert_eq!(&buf[..n], want);
    }
    // --count 3: it exits 0, and its join goes with it.
    let status = listener
        .wait_timeout(secs(5))
        .expect("listen exits after 3");
    assert!(status.success(), "{status}");
    must_wait("the join to be gone", secs(5), || {
        daemon.group(GROUP4).is_none()
    });
}

#[test]
fn a_stopped_listener_slows_neither_other_listeners_nor_the_protocol() {
    let Some(ns) = Netns::new("dp_slow") else {
        return;
    };
    let daemon = link(&ns, &[]);
    let capture = ns.capture(TUN);
    let stopped = daemon.listen(&[GROUP4]);
    let _running = daemon.listen(&[GROUP4]);
    stopped.signal(Signal::SIGSTOP);
    // A general query (Max Resp Time 1 s) half a second into a 3 s flood of 3,000
    // datagrams/s: more than the stopped listener's queue holds, less than a running debug
    // build of tunmcastctl prints.
    let query = format!(
        "sleep 0.5; exec {} --dev {TUN} --igmp 2 --max-resp-ms 1000 --count 1 --listen-ms 0",
        bin("mcquerier").display()
    );
    let _querier = ns.spawn("querier", std::path::Path::new("sh"), &["-c", &query]);
    let flood = Flood {
        src: KERNEL_V4.into(),
        group: ip(GROUP4),
        port: 5000,
        duration: secs(3),
        rate: 3_000,
        len: 64,
    };
    let sent = ns.kernel_flood(TUN, &flood);

    let packets = capture.wait_for("the query and our answer", secs(5), |p| {
        let query = p.iter().find(|p| p.is_query());
        query.is_some_and(|q| {
            p.iter()
                .any(|r| r.from_daemon() && r.is_report() && r.about(ip(GROUP4)) && r.time > q.time)
        })
    });
    let query = packets.iter().find(|p| p.is_query()).unwrap();
    let report = packets
        .iter()
        .find(|r| r.from_daemon() && r.is_report() && r.about(ip(GROUP4)) && r.time > query.time)
        .unwrap();
    let delay = report.time - query.time;
    assert!(
        delay <= 1.0 + SLACK,
        "answered after {delay:.3} s:\n{}",
        listing(&packets)
    );

    let listeners = daemon.listeners();
    let count = |i: usize, what: &str| listeners[i][what].as_u64().unwrap();
    let received = daemon.counter("udp_rcv_datagrams");
    eprintln!(
        "flood: {sent} sent, {received} read; stopped listener {} delivered / {} dropped, \
         running listener {} / {}",
        count(0, "delivered"),
        count(0, "dropped"),
        count(1, "delivered"),
        count(1, "dropped"),
    );
    assert!(count(0, "dropped") > 0, "{listeners:?}");
    assert_eq!(count(1, "dropped"), 0, "{listeners:?}");
    assert_eq!(count(1, "delivered"), received, "{listeners:?}");
    assert_eq!(
        daemon.counter("udp_drop_queue_full"),
        count(0, "dropped"),
        "{listeners:?}"
    );
    stopped.signal(Signal::SIGCONT);
}

#[test]
fn tap_delivers_frames_sent_to_the_group_mac() {
    let Some(ns) = Netns::new("dp_tap") else {
        return;
    };
    const TAP: &str = "tap0";
    let daemon = ns.tap_daemon(TAP);
    let v4 = daemon.listen(&[&format!("{GROUP4}:5000")]);
    let v6 = daemon.listen(&[&format!("[{GROUP6}]:5000")]);
    ns.kernel_send(
        TAP,
        &[
            Udp::new(&KERNEL_V4.to_string(), GROUP4, 5000, b"over ethernet"),
            Udp::new(KERNEL_LL, GROUP6, 5000, b"over ethernet v6").with_hop_by_hop(),
        ],
    );
    assert_eq!(wait_payloads(&v4, 1, secs(5)), hexes(&[b"over ethernet"]));
    assert_eq!(
        wait_payloads(&v6, 1, secs(5)),
        hexes(&[b"over ethernet v6"])
    );
}

/// A UDP socket in `ns` at `addr` whose receive buffer holds a whole burst.
fn roomy_sink(ns: &Netns, addr: &str) -> std::net::UdpSocket {
    use std::os::fd::AsRawFd;
    let socket = ns.udp_socket(addr);
    let size: libc::c_int = 32 << 20;
    // SAFETY: setsockopt with a pointer to a local int and its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_RCVBUFFORCE: {}", std::io::Error::last_os_error());
    socket.set_read_timeout(Some(secs(5))).unwrap();
    socket
}

/// The numbers (first 4 bytes) of the payloads a listener handed on, in the order they came.
fn numbers(payloads: impl Iterator<Item = Vec<u8>>) -> Vec<u32> {
    payloads
        .map(|p| u32::from_be_bytes(p[..4].try_into().expect("a numbered payload")))
        .collect()
}

/// 10,000 datagrams as fast as the kernel sends them, to three listeners of one group (two
/// `--udp-to`, whose payloads the loop sends in batches, and one printing client on its
/// listener socket): each gets the datagrams the daemon read in the order they were sent, and
/// whatever one could not take is counted, exactly, as its drops.
#[test]
fn a_burst_reaches_three_listeners_complete_and_in_order() {
    let Some(ns) = Netns::new("dp_burst") else {
        return;
    };
    let daemon = link(&ns, &[]);
    // Room at the TUN for the whole burst: the test is about the daemon's queues.
    ns.ip(&["link", "set", TUN, "txqueuelen", "20000"]);
    let sinks = [
        roomy_sink(&ns, "127.0.0.1:7001"),
        roomy_sink(&ns, "127.0.0.1:7002"),
    ];
    let _forwarders = [
        daemon.listen(&[GROUP4, "--udp-to", "127.0.0.1:7001"]),
        daemon.listen(&[GROUP4, "--udp-to", "127.0.0.1:7002"]),
    ];
    let printer = daemon.listen(&[GROUP4]);
    const BURST: u32 = 10_000;
    ns.kernel_numbered_burst(TUN, (KERNEL_V4.into(), ip(GROUP4), 5000), BURST, 64);

    // The daemon is done when what it read stops growing, the listeners' counts read in
    // between.
    let mut read = u64::MAX;
    let mut listeners = Vec::new();
    must_wait("the daemon to read the whole burst", secs(20), || {
        std::thread::sleep(ms(300));
        let before = daemon.counter("udp_rcv_datagrams");
        listeners = daemon.listeners();
        let after = daemon.counter("udp_rcv_datagrams");
        std::mem::replace(&mut read, after) == before && before == after
    });
    assert!(read > 0 && read <= u64::from(BURST), "read {read}");
    let count = |i: usize, what: &str| listeners[i][what].as_u64().unwrap();
    eprintln!(
        "burst of {BURST}: the daemon read {read}; delivered / dropped: {:?}",
        (0..3)
            .map(|i| (count(i, "delivered"), count(i, "dropped")))
            .collect::<Vec<_>>()
    );
    for i in 0..3 {
        assert_eq!(
            count(i, "delivered") + count(i, "dropped"),
            read,
            "every datagram read is delivered or counted dropped: {listeners:?}"
        );
    }
    let dropped: u64 = (0..3).map(|i| count(i, "dropped")).sum();
    assert_eq!(daemon.counter("udp_drop_queue_full"), dropped);
    assert_eq!(
        daemon.counter("udp_delivered"),
        3 * read - dropped,
        "{listeners:?}"
    );

    let strictly_increasing = |got: &[u32]| got.windows(2).all(|w| w[0] < w[1]);
    for (i, sink) in sinks.iter().enumerate() {
        let delivered = count(i, "delivered") as usize;
        let mut buf = [0u8; 2048];
        let got = numbers((0..delivered).map(|_| {
            let n = sink.recv(&mut buf).expect("a forwarded payload");
            buf[..n].to_vec()
        }));
        assert!(strictly_increasing(&got), "forwarder {i} out of order");
        assert!(got.last().is_some_and(|&n| n < BURST));
        if count(i, "dropped") == 0 {
            // Nothing lost: the daemon's reads in order, every one.
            assert_eq!(got.len() as u64, read);
        }
        sink.set_read_timeout(Some(ms(300))).unwrap();
        assert!(
            sink.recv(&mut buf).is_err(),
            "forwarder {i}: more than delivered"
        );
    }
    let delivered = count(2, "delivered") as usize;
    let printed = wait_payloads(&printer, delivered, secs(60));
    let got = numbers(printed.iter().map(|h| {
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect()
    }));
    assert_eq!(
        got.len(),
        delivered,
        "the printer: exactly what was delivered"
    );
    assert!(strictly_increasing(&got), "the printer: out of order");
}
