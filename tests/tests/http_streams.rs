//! The test streams in the live view (`tunmcastd --http`): `/api/streams` is the `streams`
//! reply, paged; `/api/stream-flows` sums the receivers per (link, source, group); `/metrics`
//! has the one-way latency histogram per link; the live page, read from headless Chromium's
//! DOM, shows the numbers `tunmcastctl streams --json` gives. The device under test is a
//! snooping Linux bridge: one daemon sends on its port `tap-src`, 100 emulated hosts receive
//! on `tap-rx`.

use std::net::SocketAddr;
use std::path::Path;

use serde_json::Value;
use tests::*;

const HTTP: &str = "127.0.0.1:8080";
const BR: &str = "br0";
const RX: &str = "tap-rx";
const SRC: &str = "tap-src";
const SOURCE: &str = "10.99.0.251";
/// Packets each stream sends.
const COUNT: u64 = 2000;

fn http_addr() -> SocketAddr {
    HTTP.parse().unwrap()
}

fn n(value: &Value, key: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no {key} in {value}"))
}

/// 100 hosts join 239.1.1.1, twenty of them 239.1.1.2 too; a stream of each group sends
/// [`COUNT`] packets: every view says the same as the control socket.
#[test]
fn streams_seen_over_http_and_on_the_live_page() {
    let Some(ns) = Netns::new("http_streams") else {
        return;
    };
    ns.snooping_bridge(BR, RX, KERNEL_V4_CIDR, &SnoopingBridge::default());
    ns.ip(&["tuntap", "add", "dev", SRC, "mode", "tap"]);
    ns.ip(&["link", "set", SRC, "master", BR]);
    ns.ip(&["link", "set", SRC, "up"]);
    let daemon = ns.spawn_configured(&format!(
        "log_level = \"info\"\ncheck_streams = true\nhttp = \"{HTTP}\"\nstream_metrics = 1\n\
         [[link]]\ndevice = \"{SRC}\"\nkind = \"tap\"\nipv4 = \"10.99.0.250/24\"\n\
         [[link]]\ndevice = \"{RX}\"\nkind = \"tap\"\nsuppression = false\n\
         [[link.hosts]]\ncount = 100\nipv4 = \"10.99.0.10/24\"\n"
    ));
    // The bridge's startup queries answered first (as in tests/tests/streams.rs).
    std::thread::sleep(secs(2));
    daemon.ctl_ok(&["join", "239.1.1.1", "--hosts", "10.99.0.10-10.99.0.109"]);
    daemon.ctl_ok(&["join", "239.1.1.2", "--hosts", "10.99.0.10-10.99.0.29"]);
    for group in ["239.1.1.1", "239.1.1.2"] {
        must_wait(&format!("the bridge learning {group}"), secs(5), || {
            ns.mdb(BR, RX).group(ip(group)).is_some()
        });
    }
    daemon.ctl_ok(&[
        "stream",
        "add",
        "--link",
        SRC,
        "--source",
        SOURCE,
        "--group",
        "239.1.1.1+2",
        "--count",
        &COUNT.to_string(),
    ]);
    must_wait("both streams done", secs(10), || {
        daemon.ctl_json(&["streams"])["streams"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "done")
    });
    // The last datagrams read; nothing moves from now on.
    std::thread::sleep(secs(1));
    let cli = daemon.ctl_json(&["streams", "--limit", "10000"]);
    let totals = &cli["totals"];
    assert_eq!(n(&cli, "total_receivers"), 120, "{cli}");
    assert_eq!(n(totals, "received"), 120 * COUNT, "{totals}");
    for key in [
        "lost",
        "duplicates",
        "reordered",
        "source_leaks",
        "after_leave",
    ] {
        assert_eq!(n(totals, key), 0, "{key}: {totals}");
    }
    let receivers = cli["receivers"].as_array().unwrap();

    // /api/streams: the same reply, paged.
    let api = ns.http_get(http_addr(), "/api/streams?limit=1000").json();
    assert_eq!(api["streams"], cli["streams"]);
    assert_eq!(api["total_streams"], 2);
    assert_eq!(api["receivers"], cli["receivers"]);
    assert_eq!(api["totals"], cli["totals"]);
    assert_eq!(api["total_receivers"], cli["total_receivers"]);
    let page = ns
        .http_get(
            http_addr(),
            "/api/streams?offset=50&limit=25&stream_limit=1",
        )
        .json();
    assert_eq!(page["receivers"].as_array().unwrap()[..], receivers[50..75]);
    assert_eq!(page["streams"].as_array().unwrap().len(), 1);
    assert_eq!(
        (&page["total_streams"], &page["totals"]),
        (&api["total_streams"], totals)
    );
    let paged_cli = daemon.ctl_json(&["streams", "--offset", "100", "--limit", "50"]);
    assert_eq!(
        paged_cli["receivers"].as_array().unwrap()[..],
        receivers[100..]
    );
    let one = ns
        .http_get(http_addr(), "/api/streams?host=10.99.0.12&group=239.1.1.2")
        .json();
    assert_eq!(one["total_receivers"], 1);
    assert_eq!(n(&one["receivers"][0], "received"), COUNT);
    let refused = ns.http_get(http_addr(), "/api/streams?host=10.1.2.3");
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(refused.text().contains("no host has the address 10.1.2.3"));

    // /api/stream-flows: per (S,G), the receivers' sums.
    let flows = ns.http_get(http_addr(), "/api/stream-flows").json();
    assert_eq!(flows["total"], 2);
    for (flow, group, hosts) in [
        (&flows["flows"][0], "239.1.1.1", 100),
        (&flows["flows"][1], "239.1.1.2", 20),
    ] {
        assert_eq!(
            (flow["link"].as_str(), flow["group"].as_str()),
            (Some(RX), Some(group))
        );
        assert_eq!(n(flow, "receivers"), hosts);
        let of_group = daemon.ctl_json(&["streams", "--group", group]);
        for key in [
            "received",
            "lost",
            "duplicates",
            "reordered",
            "source_leaks",
            "bytes",
        ] {
            assert_eq!(flow[key], of_group["totals"][key], "{key} of {group}");
        }
        let p50 = n(flow, "p50_ns");
        assert!(p50 > 0 && p50 <= n(flow, "p99_ns"), "{flow}");
    }

    // /metrics: the latency histogram per link counts every datagram received.
    let text = ns.http_get(http_addr(), "/metrics").text();
    let families = parse_prometheus(&text);
    check_families(&text, &families);
    let latency = &families["tunmcast_stream_latency_seconds"];
    assert_eq!(check_histogram(latency, "latency"), 120 * COUNT);
    for sample in latency["samples"].as_array().unwrap() {
        assert_eq!(sample[1]["link"], RX, "one label set per link: {sample}");
    }
    // `stream_metrics = 1`: the first stream's counters, labelled; the second's not.
    for (family, value) in [
        ("tunmcast_per_stream_tx_packets", COUNT),
        ("tunmcast_per_stream_rx_received", 100 * COUNT),
        ("tunmcast_per_stream_rx_lost", 0),
    ] {
        let samples = families[family]["samples"].as_array().unwrap();
        assert_eq!(samples.len(), 1, "{family}: {samples:?}");
        let labels = &samples[0][1];
        assert_eq!(
            (
                &labels["stream"],
                &labels["link"],
                &labels["source"],
                &labels["group"]
            ),
            (
                &Value::from("1"),
                &Value::from(SRC),
                &Value::from(SOURCE),
                &Value::from("239.1.1.1")
            ),
        );
        assert_eq!(samples[0][2].as_f64(), Some(value as f64), "{family}");
    }
    let printed = daemon.ctl_ok(&["stats", "--prometheus"]);
    assert!(
        printed.contains(&format!(
            "tunmcast_per_stream_tx_packets_total{{stream=\"1\",link=\"{SRC}\",\
             source=\"{SOURCE}\",group=\"239.1.1.1\"}} {COUNT}\n"
        )),
        "{printed}"
    );

    if !chromium_available() {
        return;
    }
    let url = format!("http://{HTTP}/");
    let mut browser = ns.browse(&url);
    must_wait("the page's streams panel", secs(10), || {
        browser.eval("document.getElementById('streams-note')?.textContent")
            == "2 streams, 120 receivers"
    });
    let shown = browser.eval(
        r#"(() => {
            const fields = (row) => Object.fromEntries(Array.from(row.querySelectorAll('[data-field]'))
                .map(c => [c.getAttribute('data-field'), c.getAttribute('data-ns') ?? c.textContent]));
            const rows = (sel, key) => Array.from(document.querySelectorAll(sel))
                .map(r => [r.getAttribute(key), fields(r)]);
            return {
              totals: Object.fromEntries(Array.from(document.querySelectorAll('#streams-totals [data-total]'))
                .map(s => [s.getAttribute('data-total'), s.querySelector('b').textContent])),
              streams: rows('#streams tbody tr', 'data-stream'),
              flows: rows('#flows tbody tr', 'data-flow'),
              receivers: rows('#receivers tbody tr', 'data-receiver'),
              range: document.getElementById('receivers-range').textContent,
            };
        })()"#,
    );
    for key in [
        "received",
        "lost",
        "duplicates",
        "reordered",
        "source_leaks",
        "after_leave",
        "bytes",
    ] {
        assert_eq!(
            shown["totals"][key],
            totals[key].to_string(),
            "total {key} on the page"
        );
    }
    assert_eq!(shown["totals"]["not_joined"], "0");
    for (row, stream) in shown["streams"]
        .as_array()
        .unwrap()
        .iter()
        .zip(cli["streams"].as_array().unwrap())
    {
        assert_eq!(row[0], stream["id"].to_string());
        assert_eq!(row[1]["sent"], stream["sent"].to_string());
        assert_eq!(row[1]["state"], "done");
    }
    assert_eq!(shown["streams"].as_array().unwrap().len(), 2);
    let shown_flows = shown["flows"].as_array().unwrap();
    assert_eq!(shown_flows.len(), 2);
    for (row, flow) in shown_flows.iter().zip(flows["flows"].as_array().unwrap()) {
        assert_eq!(
            row[0],
            format!("{RX} {SOURCE} {}", flow["group"].as_str().unwrap())
        );
        for key in [
            "receivers",
            "received",
            "lost",
            "source_leaks",
            "p50_ns",
            "p99_ns",
        ] {
            assert_eq!(row[1][key], flow[key].to_string(), "{key} of {row}");
        }
    }
    // The first page of receivers, in the reply's order, with the reply's numbers.
    let shown_receivers = shown["receivers"].as_array().unwrap();
    assert_eq!(shown_receivers.len(), 50, "a page");
    assert_eq!(shown["range"], "1–50 of 120");
    for (row, r) in shown_receivers.iter().zip(receivers) {
        let key = format!(
            "{} {} {}",
            r["host"].as_str().unwrap(),
            r["source"].as_str().unwrap(),
            r["group"].as_str().unwrap()
        );
        assert_eq!(row[0], key.as_str());
        for field in [
            "received",
            "lost",
            "duplicates",
            "reordered",
            "source_leaks",
            "after_leave",
            "p50_ns",
            "p99_ns",
            "max_ns",
        ] {
            assert_eq!(row[1][field], r[field].to_string(), "{field} of {key}");
        }
    }
    drop(browser);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("http");
    std::fs::create_dir_all(&dir).unwrap();
    let shot = dir.join("live-streams.png");
    ns.screenshot(&url, secs(3), &shot);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{}",
        shot.display()
    );
    eprintln!("screenshot kept at {}", shot.display());
}

/// `--stream-metrics` takes 1 to 1000 streams: anything else is refused at start, naming it.
#[test]
fn stream_metrics_out_of_range_is_refused() {
    for bad in ["0", "1001", "x"] {
        let out = run(
            bin("tunmcastd"),
            &[
                "--iface",
                "tunx",
                "--ipv4",
                "10.99.0.2/24",
                "--stream-metrics",
                bad,
            ],
        );
        assert_eq!(out.status.code(), Some(2), "--stream-metrics {bad}");
        let error = String::from_utf8_lossy(&out.stderr);
        assert!(error.contains("--stream-metrics"), "{error}");
    }
}
