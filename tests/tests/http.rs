//! `tunmcastd --http`: the Prometheus scrape, the JSON API and the live page, checked against
//! the control socket with real clients (the Prometheus project's Python parser, headless
//! Chromium), and the server's limits under idle, slow and oversized clients.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::*;

const HTTP: &str = "127.0.0.1:8080";

fn http_addr() -> SocketAddr {
    HTTP.parse().unwrap()
}

/// Where the screenshot is kept: the test's scratch directory goes when the test passes.
fn artifact(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("http");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Stats without the control counters, which every `tunmcastctl` run moves.
fn steady(stats: &serde_json::Map<String, Value>) -> BTreeMap<String, u64> {
    stats
        .iter()
        .filter(|(name, _)| !name.starts_with("control_"))
        .map(|(name, value)| (name.clone(), value.as_u64().unwrap()))
        .collect()
}

/// Each value of `seen` lies between the one of `before` and of `after` (counters only grow).
fn between(
    what: &str,
    seen: &BTreeMap<String, u64>,
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) {
    for (name, low) in before {
        let high = after[name];
        let value = seen
            .get(name)
            .unwrap_or_else(|| panic!("{what}: no counter {name}"));
        assert!(
            (*low..=high).contains(value),
            "{what}: {name} = {value}, the control socket said {low} before and {high} after"
        );
    }
}

/// A group record as both views give it: host, group, filter.
fn group_key(g: &Value) -> (String, String, String, String) {
    (
        g["iface"].as_str().unwrap().to_string(),
        g["group"].as_str().unwrap().to_string(),
        g["filter_mode"].as_str().unwrap().to_string(),
        g["sources"].to_string(),
    )
}

/// 100 emulated hosts on a TAP port of a snooping bridge, a multicast source behind the
/// bridge, delays measured: `/metrics`, `/api/...` and the live page in Chromium all say what
/// the control socket says, and a join shows on the open page within a second or two.
#[test]
fn a_hundred_hosts_seen_over_http() {
    let Some(ns) = Netns::new("http_hosts") else {
        return;
    };
    let Some(src) = Netns::new("http_hosts_src") else {
        return;
    };
    let config = SnoopingBridge {
        query_interval_cs: 300,
        ..SnoopingBridge::default()
    };
    ns.snooping_bridge("br0", "tap1", KERNEL_V4_CIDR, &config);
    ns.ip(&["link", "add", "vbr", "type", "veth", "peer", "name", "vsrc"]);
    ns.ip(&["link", "set", "vsrc", "netns", src.name()]);
    ns.ip(&["link", "set", "vbr", "master", "br0"]);
    ns.ip(&["link", "set", "vbr", "up"]);
    src.ip(&["addr", "add", "10.99.0.200/24", "dev", "vsrc"]);
    src.ip(&["link", "set", "lo", "up"]);
    src.ip(&["link", "set", "vsrc", "up"]);

    // `http` from the file, as every option can be.
    let daemon = ns.spawn_configured(&format!(
        "log_level = \"info\"\ndelays = true\nhttp = \"{HTTP}\"\n\
         [[link]]\ndevice = \"tap1\"\nkind = \"tap\"\nsuppression = false\n\
         [[link.hosts]]\ncount = 100\nipv4 = \"10.99.0.10/24\"\n"
    ));
    assert!(daemon.log().contains("HTTP view on http://127.0.0.1:8080/"));
    must_wait("the bridge's first query", secs(10), || {
        daemon.counter("igmp_rcv_v3_queries") >= 100
    });

    // Every host joins 239.1.1.1, whose datagrams flow; ten hosts an SSM group, five an
    // IPv6 one.
    let script = "import socket,time\n\
                  s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
                  s.setsockopt(socket.IPPROTO_IP,socket.IP_MULTICAST_IF,socket.inet_aton('10.99.0.200'))\n\
                  end=time.time()+6\n\
                  while time.time()<end:\n s.sendto(b'x'*64,('239.1.1.1',5000)); time.sleep(0.01)\n";
    let mut sender = src.spawn("source", Path::new("python3"), &["-c", script]);
    daemon.ctl_ok(&["join", "239.1.1.1", "--hosts", "10.99.0.10-10.99.0.109"]);
    daemon.ctl_ok(&[
        "join",
        "232.1.1.1",
        "--hosts",
        "10.99.0.10-10.99.0.19",
        "--include",
        "10.99.0.200",
    ]);
    daemon.ctl_ok(&["join", "ff15::42", "--hosts", "10.99.0.10-10.99.0.14"]);
    must_wait("a join delay for every host", secs(10), || {
        daemon.ctl_json(&["delays"])["join"]["count"] == 100
    });
    sender.wait_timeout(secs(10)).expect("the source ends");
    // Ten hosts leave: ten leave delays (no datagram after them: 0 s).
    daemon.ctl_ok(&["leave", "239.1.1.1", "--hosts", "10.99.0.100-10.99.0.109"]);
    // Quiet from now on: no query for a minute, no datagram.
    ns.ip(&[
        "link",
        "set",
        "br0",
        "type",
        "bridge",
        "mcast_query_interval",
        "6000",
    ]);
    daemon.wait_v3_quiet(secs(10));
    std::thread::sleep(secs(1));

    // /metrics: the parser reads it; every family has HELP and TYPE; counters as `stats`.
    let before = steady(&daemon.stats());
    let metrics = ns.http_get(http_addr(), "/metrics");
    let after = steady(&daemon.stats());
    assert_eq!(metrics.status, 200, "{}", metrics.text());
    assert!(metrics
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")));
    let text = metrics.text();
    let families = parse_prometheus(&text);
    check_families(&text, &families);
    let mut scraped = BTreeMap::new();
    for name in before.keys() {
        let family = &families[&format!("tunmcast_{name}")];
        assert_eq!(family["type"], "counter", "{name}");
        scraped.insert(
            name.clone(),
            family["samples"][0][2].as_f64().unwrap() as u64,
        );
    }
    between("/metrics", &scraped, &before, &after);
    let delays = daemon.ctl_json(&["delays"]);
    let joins = check_histogram(&families["tunmcast_join_delay_seconds"], "join delay");
    assert_eq!(joins, delays["join"]["count"].as_u64().unwrap());
    assert_eq!(joins, 100);
    let leaves = check_histogram(&families["tunmcast_leave_delay_seconds"], "leave delay");
    assert_eq!(leaves, delays["leave"]["count"].as_u64().unwrap());
    assert_eq!(leaves, 10);
    assert_eq!(families["tunmcast_hosts"]["samples"][0][2], 100.0);

    // The JSON API agrees with `show --json`.
    let show = daemon.show();
    let shown_hosts: BTreeMap<String, &Value> = show["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["ipv4"].as_str().unwrap().to_string(), i))
        .collect();
    assert_eq!(shown_hosts.len(), 100);
    let hosts = ns.http_get(http_addr(), "/api/hosts?limit=1000").json();
    assert_eq!(hosts["total"], 100);
    let listed = hosts["hosts"].as_array().unwrap();
    assert_eq!(listed.len(), 100);
    for host in listed {
        let shown = shown_hosts[host["ipv4"].as_str().unwrap()];
        for field in [
            "iface",
            "ipv6_ll",
            "mac",
            "igmp_groups",
            "mld_groups",
            "igmp_version",
        ] {
            assert_eq!(host[field], shown[field], "{field} of {host}");
        }
    }
    let searched = ns
        .http_get(http_addr(), "/api/hosts?q=10.99.0.10&limit=5")
        .json();
    // 10.99.0.10 and 10.99.0.100 to .109.
    assert_eq!(searched["total"], 11, "{searched}");
    assert_eq!(searched["hosts"].as_array().unwrap().len(), 5);
    let page2 = ns
        .http_get(http_addr(), "/api/hosts?offset=50&limit=25")
        .json();
    assert_eq!(page2["hosts"][0]["ipv4"], listed[50]["ipv4"]);

    let shown_groups: BTreeSet<_> = show["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(group_key)
        .collect();
    // Ours, and each TAP host's solicited-node group (joined by the daemon itself).
    let total = shown_groups.len();
    assert_eq!(total, 90 + 10 + 5 + 100);
    let mut paged = BTreeSet::new();
    let mut offset = Some(0);
    let mut pages = 0;
    while let Some(at) = offset {
        let page = ns
            .http_get(http_addr(), &format!("/api/groups?offset={at}&limit=37"))
            .json();
        assert_eq!(page["total"], total);
        for g in page["groups"].as_array().unwrap() {
            assert!(paged.insert(group_key(g)), "listed twice: {g}");
        }
        offset = page["next_offset"].as_u64();
        pages += 1;
    }
    assert_eq!(pages, total.div_ceil(37));
    assert_eq!(paged, shown_groups);
    let one = ns
        .http_get(http_addr(), "/api/groups?host=10.99.0.12")
        .json();
    let of_one: BTreeSet<_> = one["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(group_key)
        .collect();
    let shown_one: BTreeSet<_> = shown_groups
        .iter()
        .filter(|k| k.0 == "tap1/10.99.0.12")
        .cloned()
        .collect();
    assert_eq!(of_one, shown_one);
    assert_eq!(of_one.len(), 4);
    let api_stats = ns.http_get(http_addr(), "/api/stats").json();
    between(
        "/api/stats",
        &steady(api_stats["stats"].as_object().unwrap()),
        &before,
        &steady(&daemon.stats()),
    );
    let links = ns.http_get(http_addr(), "/api/links").json();
    assert_eq!(links["links"][0]["iface"], "tap1");
    assert_eq!(links["links"][0]["hosts"], 100);
    let api_delays = ns.http_get(http_addr(), "/api/delays").json();
    assert_eq!(api_delays["join"], delays["join"]);

    // Bad requests: clear statuses, nothing changed.
    let status = |request: &str| {
        ns.http_send(http_addr(), request.as_bytes().to_vec())
            .response
            .map(|r| (r.status, r.text()))
    };
    assert_eq!(status("GET /nope HTTP/1.1\r\n\r\n").unwrap().0, 404);
    let (code, body) = status("POST /api/groups HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}").unwrap();
    assert_eq!(code, 405, "{body}");
    assert!(body.contains("read-only"), "{body}");
    let (code, body) = status("GET /api/hosts?limit=5000 HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(code, 400);
    assert!(
        body.contains("limit=\\\"5000\\\": a number from 1 to 1000"),
        "{body}"
    );
    assert_eq!(
        status("GET /api/groups?host=x HTTP/1.1\r\n\r\n").unwrap().0,
        400
    );
    assert_eq!(
        status("GET /api/groups?host=10.1.1.1 HTTP/1.1\r\n\r\n")
            .unwrap()
            .0,
        404
    );
    let head = ns
        .http_send(http_addr(), b"HEAD /metrics HTTP/1.1\r\n\r\n".to_vec())
        .response
        .unwrap();
    assert_eq!((head.status, head.body.len()), (200, 0));
    assert!(
        head.header("content-length").is_some_and(|l| l != "0"),
        "{}",
        head.head
    );
    assert_eq!(daemon.show()["groups"].as_array().unwrap().len(), total);

    if !chromium_available() {
        return;
    }
    // The rendered page, as `--dump-dom` gives it: the first page of hosts with their
    // addresses, the chosen host's groups.
    let url = format!("http://{HTTP}/#host=10.99.0.12");
    let dom = ns.dump_dom(&url, secs(3));
    for host in &listed[..50] {
        let addr = host["ipv4"].as_str().unwrap();
        assert!(
            dom.contains(&format!("data-host=\"{addr}\"")),
            "{addr} not on the page"
        );
    }
    assert!(!dom.contains(&format!(
        "data-host=\"{}\"",
        listed[50]["ipv4"].as_str().unwrap()
    )));
    for group in ["239.1.1.1", "232.1.1.1", "ff15::42"] {
        assert!(
            dom.contains(&format!("<tr data-group=\"{group}\">")),
            "{group} not listed"
        );
    }
    assert!(dom.contains("<td data-field=\"sources\">10.99.0.200</td>"));

    // The live page: its numbers are the control socket's, and a join shows within 2 s.
    let mut browser = ns.browse(&url);
    must_wait("the page's first refresh", secs(10), || {
        browser.eval("!!document.getElementById('updated')?.hasAttribute('data-ms')") == true
    });
    let before = steady(&daemon.stats());
    let page = browser.eval(
        r#"(() => {
            const cells = (sel, f) => Object.fromEntries(Array.from(document.querySelectorAll(sel))
                .map(r => [r.getAttribute(f[0]), r.querySelector(f[1]).textContent]));
            return {
              hosts: document.getElementById('hosts-count').textContent,
              records: document.getElementById('group-records').textContent,
              groups: cells('#hosts tbody tr', ['data-host', '[data-field=groups]']),
              stats: cells('#stats tbody tr', ['data-counter', 'td.n']),
              link_hosts: document.querySelector('#links tr[data-link=tap1] [data-field=hosts]').textContent,
              join_count: document.getElementById('join-count').textContent,
              leave_count: document.getElementById('leave-count').textContent,
              bars: Array.from(document.querySelectorAll('#join-hist rect')).map(r => +r.getAttribute('data-count')),
              host_groups: Array.from(document.querySelectorAll('#groups tbody tr')).map(r => r.getAttribute('data-group')),
            };
        })()"#,
    );
    let after = steady(&daemon.stats());
    assert_eq!(page["hosts"], "100");
    assert_eq!(page["records"], total.to_string());
    assert_eq!(page["link_hosts"], "100");
    assert_eq!(page["join_count"], delays["join"]["count"].to_string());
    assert_eq!(page["leave_count"], delays["leave"]["count"].to_string());
    let bars: u64 = page["bars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap())
        .sum();
    assert_eq!(bars, 100);
    let shown_on_page: BTreeMap<String, u64> = page["groups"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().parse().unwrap()))
        .collect();
    assert_eq!(shown_on_page.len(), 50);
    for (addr, groups) in &shown_on_page {
        let shown = shown_hosts[addr.as_str()];
        let expected =
            shown["igmp_groups"].as_u64().unwrap() + shown["mld_groups"].as_u64().unwrap();
        assert_eq!(*groups, expected, "groups of {addr} on the page");
    }
    let page_stats: BTreeMap<String, u64> = page["stats"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().parse().unwrap()))
        .collect();
    between("the page's counters", &page_stats, &before, &after);
    let mut host_groups: Vec<&str> = page["host_groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    host_groups.sort();
    let mut expected: Vec<&str> = shown_one.iter().map(|k| k.1.as_str()).collect();
    expected.sort();
    assert_eq!(host_groups, expected);
    assert!(host_groups.contains(&"ff15::42"));

    let joined = Instant::now();
    daemon.ctl_ok(&[
        "join",
        "239.7.7.7",
        "--host",
        "10.99.0.12",
        "--exclude",
        "10.99.0.201",
    ]);
    let seen = wait_until(secs(5), || {
        browser.eval("!!document.querySelector('#groups tr[data-group=\"239.7.7.7\"]')") == true
    });
    let latency = joined.elapsed();
    assert!(seen, "the join never showed on the page");
    eprintln!("a join showed on the live page after {latency:?}");
    assert!(
        latency <= Duration::from_secs(2),
        "the join took {latency:?} to show"
    );
    let row = browser.eval(
        "(() => { const r = document.querySelector('#groups tr[data-group=\"239.7.7.7\"]'); \
         return [r.querySelector('[data-field=filter_mode]').textContent, \
                 r.querySelector('[data-field=sources]').textContent]; })()",
    );
    assert_eq!(row, serde_json::json!(["exclude", "10.99.0.201"]));
    drop(browser);

    let shot = artifact("live-page.png");
    ns.screenshot(&url, secs(3), &shot);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{}",
        shot.display()
    );
    eprintln!("screenshot kept at {}", shot.display());
}

/// The server's limits: a thousand idle connections, a slowloris client and a 10 MB request
/// neither exhaust the daemon's memory nor keep its control socket or the scrape waiting.
#[test]
fn http_clients_cannot_exhaust_the_daemon() {
    let Some(ns) = Netns::new("http_abuse") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let daemon = ns.spawn_daemon(&["--igmp-version", "3", "--mld-version", "2", "--http", HTTP]);
    daemon.ctl_ok(&["join", "239.1.1.1+100"]);
    assert_eq!(ns.http_get(http_addr(), "/metrics").status, 200);
    let rss_before = rss_kib(daemon.pid()).unwrap();
    let threads_before = thread_count(daemon.pid()).unwrap();
    raise_fd_limit(4096);

    let timed_ping = || {
        let start = Instant::now();
        daemon.ctl_ok(&["ping"]);
        start.elapsed()
    };

    // A thousand idle connections: the control socket and a scrape are still answered.
    let idle = ns.tcp_connections(http_addr(), 1000);
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        slowest = slowest.max(timed_ping());
        let start = Instant::now();
        let metrics = ns.http_get(http_addr(), "/metrics");
        assert_eq!(metrics.status, 200);
        slowest = slowest.max(start.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(500),
        "slowest answer {slowest:?}"
    );
    assert_eq!(thread_count(daemon.pid()), Some(threads_before));

    // Slowloris: a byte every 300 ms of a request that never ends: closed at the request
    // timeout (5 s), while a ping stays quick.
    let started = Instant::now();
    let slow = std::thread::spawn({
        let ns_name = ns.name().to_string();
        move || slowloris(&ns_name)
    });
    for _ in 0..10 {
        slowest = slowest.max(timed_ping());
        std::thread::sleep(ms(300));
    }
    let (bytes_sent, closed_after) = slow.join().unwrap();
    assert!(
        closed_after < Duration::from_secs(8),
        "the slowloris client was kept {closed_after:?} ({bytes_sent} bytes)"
    );
    eprintln!(
        "slowloris closed after {closed_after:?}, {bytes_sent} bytes in; {:?} since start",
        started.elapsed()
    );

    // 10 MB: a head that never ends, and a request announcing a 10 MB body.
    let mut garbage = b"GET /".to_vec();
    garbage.resize(10 << 20, b'a');
    let exchange = ns.http_send(http_addr(), garbage);
    assert!(
        exchange.response.as_ref().is_some_and(|r| r.status == 413) || !exchange.sent_all,
        "a 10 MB request head: {exchange:?}"
    );
    let mut post = b"GET /metrics HTTP/1.1\r\nContent-Length: 10485760\r\n\r\n".to_vec();
    post.resize(post.len() + (10 << 20), b'x');
    let exchange = ns.http_send(http_addr(), post);
    assert!(
        exchange.response.as_ref().is_some_and(|r| r.status == 413) || !exchange.sent_all,
        "a 10 MB body: {exchange:?}"
    );
    slowest = slowest.max(timed_ping());
    eprintln!("slowest ping or scrape under abuse: {slowest:?}");
    assert!(
        slowest < Duration::from_millis(500),
        "slowest ping {slowest:?}"
    );

    // The idle connections are closed by the server (timeout or room for newer ones).
    let mut closed = 0;
    for mut stream in idle {
        stream.set_read_timeout(Some(secs(8))).unwrap();
        let mut byte = [0u8; 1];
        if matches!(std::io::Read::read(&mut stream, &mut byte), Ok(0) | Err(_)) {
            closed += 1;
        }
    }
    assert_eq!(closed, 1000);

    let rss_after = rss_kib(daemon.pid()).unwrap();
    eprintln!("RSS {rss_before} KiB before, {rss_after} KiB after");
    assert!(
        rss_after < rss_before + 16 * 1024,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
    assert_eq!(
        ns.http_get(http_addr(), "/api/groups?limit=1000").json()["total"],
        100
    );
    assert_eq!(daemon.counter("control_errors"), 0);
}

/// Sends a request head a byte at a time from inside namespace `ns`; returns the bytes the
/// server took and how long it kept the connection.
fn slowloris(ns: &str) -> (usize, Duration) {
    let path = Path::new("/var/run/netns").join(ns);
    let netns = std::fs::File::open(path).unwrap();
    nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
    let mut stream = std::net::TcpStream::connect(http_addr()).unwrap();
    let start = Instant::now();
    let head = b"GET /metrics HTTP/1.1\r\nX-Slow: "
        .iter()
        .chain(std::iter::repeat(&b'a'));
    let mut sent = 0;
    for byte in head {
        if std::io::Write::write_all(&mut stream, &[*byte]).is_err() {
            break;
        }
        sent += 1;
        // A closed connection reads as end-of-file or an error; an open one would block.
        stream.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 512];
        let eof = !matches!(
            std::io::Read::read(&mut stream, &mut buf),
            Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock
        );
        stream.set_nonblocking(false).unwrap();
        if eof || start.elapsed() > secs(20) {
            break;
        }
        std::thread::sleep(ms(300));
    }
    (sent, start.elapsed())
}

/// `--http` beyond loopback needs `--http-public`; with it, the daemon says so in its log.
#[test]
fn a_public_address_needs_its_flag() {
    let out = run(
        bin("tunmcastd"),
        &[
            "--iface",
            "tunx",
            "--ipv4",
            "10.99.0.2/24",
            "--http",
            "0.0.0.0:8080",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(
        error.contains("--http 0.0.0.0:8080 is not a loopback address")
            && error.contains("--http-public"),
        "{error}"
    );
    let Some(ns) = Netns::new("http_public") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let daemon = ns.spawn_daemon(&["--http", "0.0.0.0:8080", "--http-public"]);
    assert!(
        daemon.log().contains("not a loopback address"),
        "{}",
        daemon.log()
    );
    // Reachable on the link's address too.
    let on_link: SocketAddr = "10.99.0.1:8080".parse().unwrap();
    assert_eq!(ns.http_get(on_link, "/api/overview").json()["hosts"], 1);
}
