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
