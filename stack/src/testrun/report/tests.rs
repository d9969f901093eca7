//! The reports' structure, from a run scripted in virtual time.

use control::testrun::{
    ReportFormat, RunState, Sla, TestReport, TestSpec, Verdict, ZapMode, ZapOrder, ZappingSpec,
    DEFAULT_THRESHOLDS_MS,
};

use super::super::{Action, TestRuns, MS};
use super::*;

fn channel(n: u8) -> std::net::IpAddr {
    std::net::IpAddr::from([239, 3, 0, n])
}

/// Two hosts zap over 2 channels twice; host 1's joins take 30 and 300 ms, host 2's 10 and
/// 20 ms; max join delay allowed 250 ms.
pub(crate) fn scripted_report() -> TestReport {
    scripted_runs()
        .run(None)
        .unwrap()
        .report(0, &|h| format!("10.0.0.{h}"), usize::MAX, true)
}

/// The runs of [`scripted_report`], the one run over.
fn scripted_runs() -> TestRuns<u32, u32> {
    let spec = ZappingSpec {
        name: "lab<1>".into(),
        iface: None,
        hosts: None,
        channels: vec![channel(1), channel(2)],
        sources: vec![],
        view_ms: 1000,
        count: Some(2),
        order: ZapOrder::Sequential,
        seed: None,
        mode: ZapMode::LeaveJoin,
        not_received_ms: 2000,
        leave_grace_ms: 3000,
        thresholds_ms: DEFAULT_THRESHOLDS_MS.to_vec(),
        streams: None,
        sla: Sla {
            max_join_delay_ms: Some(250),
            ..Sla::default()
        },
    };
    let mut runs = TestRuns::<u32, u32>::default();
    let mut out = Vec::new();
    // Each host on a segment of its own.
    runs.start(TestSpec::Zapping(spec), vec![(1, 1), (2, 2)], 7, 0)
        .unwrap();
    let delays = [(1, [30, 300]), (2, [10, 20])];
    while let Some(at) = runs.next_deadline() {
        out.clear();
        runs.due(at, &mut out);
        for action in out.clone() {
            match action {
                Action::Join { host, group, .. } => {
                    runs.report_sent(host, group, at);
                    let zap = usize::from(group != channel(host as u8));
                    let d = delays[host as usize - 1].1[zap];
                    runs.datagram(host, group, at + d * MS);
                }
                Action::Leave { host, group } => runs.left(host, group, at),
            }
        }
    }
    runs
}

/// A run over: `test status` pages are those of the full report, from the results kept at
/// its end (the same however often asked).
#[test]
fn status_pages_of_a_run_over_are_the_report_s() {
    let runs = scripted_runs();
    let run = runs.run(None).unwrap();
    let name = |h: u32| format!("10.0.0.{h}");
    let full = run.report(0, &name, usize::MAX, true);
    assert_eq!(full.state, RunState::Finished);
    for _ in 0..2 {
        let page = run.report_page(0, &name, 1..2, false);
        assert_eq!(page.per_host, full.per_host[1..2]);
        assert_eq!(page.per_host_total, 2);
        assert_eq!(
            (page.join_delay, page.channels.clone(), page.checks.clone()),
            (full.join_delay, full.channels.clone(), full.checks.clone())
        );
        assert_eq!(page.verdict, full.verdict);
        assert!(page.records.is_empty());
    }
    let past_the_end = run.report_page(0, &name, 5..9, false);
    assert!(past_the_end.per_host.is_empty());
}

#[test]
fn json_has_the_stable_keys() {
    let report = scripted_report();
    let json: serde_json::Value = serde_json::from_str(&json(&report)).unwrap();
    assert_eq!(json["schema"], 1);
    assert_eq!(json["kind"], "zapping");
    assert_eq!(json["verdict"], "fail");
    assert_eq!(json["state"], "finished");
    assert_eq!(json["zaps"], 4);
    assert_eq!(json["join_delay"]["count"], 4);
    assert_eq!(json["join_delay"]["p50_ns"], 20 * MS);
    assert_eq!(json["join_delay"]["p99_ns"], 300 * MS);
    assert_eq!(json["join_delay"]["max_ns"], 300 * MS);
    assert_eq!(json["join_delay"]["mean_ns"], 90 * MS);
    assert_eq!(json["buckets"][0]["threshold_ms"], 125);
    assert_eq!(json["buckets"][0]["over"], 1);
    assert_eq!(json["buckets"][1]["over"], 1);
    assert_eq!(json["buckets"][2]["over"], 0);
    assert_eq!(json["spec"]["channels"][1], "239.3.0.2");
    assert_eq!(json["per_host"].as_array().unwrap().len(), 2);
    assert_eq!(json["records"].as_array().unwrap().len(), 6);
    assert_eq!(json["records_total"], 6);
    // It reads back as the typed report.
    let back: TestReport = serde_json::from_value(json).unwrap();
    assert_eq!(back, report);
}

#[test]
fn junit_has_one_case_per_check_and_names_the_failure() {
    let report = scripted_report();
    let xml = render(&report, ReportFormat::Junit);
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"));
    // overall + 2 channels for max_join_delay_ms, and max_not_received.
    assert_eq!(xml.matches("<testcase ").count(), 4, "{xml}");
    assert_eq!(xml.matches("<failure ").count(), 2, "{xml}");
    assert!(
        xml.contains("tests=\"4\" failures=\"2\" errors=\"0\""),
        "{xml}"
    );
    assert!(
        xml.contains("max_join_delay_ms 239.3.0.2: measured 300.000 ms &gt; threshold 250.000 ms"),
        "{xml}"
    );
    assert!(
        xml.contains("name=\"lab&lt;1&gt;\""),
        "the name escaped: {xml}"
    );
    assert!(xml.contains("<testcase classname=\"tunmcast.lab&lt;1&gt;\" name=\"max_join_delay_ms 239.3.0.1\" time=\"0\"></testcase>"));
    let mut errored = report.clone();
    errored.state = RunState::Error;
    errored.verdict = Verdict::Error;
    errored.error = Some("host 10.0.0.1 is gone".into());
    let xml = junit::render(&errored);
    assert!(xml.contains("<error type=\"run\" message=\"host 10.0.0.1 is gone\">"));
    assert!(xml.contains("errors=\"1\""));
}

#[test]
fn html_shows_the_figures_and_the_plots_without_the_network() {
    let report = scripted_report();
    let html = render(&report, ReportFormat::Html);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(
        !html.contains("http://")
            || html.matches("http://").count()
                == html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count(),
        "no link but the SVG namespace"
    );
    assert!(!html.contains("<script"), "no script");
    assert!(html.contains("id=\"join-p50\" data-ns=\"20000000\">20.000</td>"));
    assert!(html.contains("id=\"join-p99\" data-ns=\"300000000\">300.000</td>"));
    assert!(html.contains("id=\"verdict\">FAIL</span>"));
    for plot in [
        "join-histogram",
        "cdf",
        "channel-bars",
        "host-bars",
        "timeline",
    ] {
        assert!(html.contains(&format!("<figure id=\"{plot}\">")), "{plot}");
    }
    // The histogram's bars hold the 4 zaps; the 125 and 250 ms thresholds are drawn.
    let in_bins: u64 = html
        .match_indices("<rect class=\"bin\"")
        .map(|(at, _)| {
            let title = &html[at..];
            let start = title.find("<title>").unwrap() + 7;
            let end = title.find("</title>").unwrap();
            title[start..end].parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(in_bins, 4);
    assert_eq!(html.matches("class=\"threshold\"").count(), 2);
    assert_eq!(html.matches("class=\"cdf-join\"").count(), 1);
    assert_eq!(html.matches("class=\"zap\"").count(), 4);
    // p50 and p99 bars: 2 channels and 2 hosts.
    assert_eq!(html.matches("<rect class=\"p50\"").count(), 4);
    assert!(html.contains("10.0.0.2"), "per host table");
    assert!(html.contains("lab&lt;1&gt;"));
}

#[test]
fn html_and_json_show_the_streams_and_the_capacity() {
    use control::test_capacity::{CapacityResult, CapacityStep};
    use control::test_traffic::{Latency, TrafficPart, TrafficResult};
    let mut report = scripted_report();
    // Without streams the report has neither key (byte-identical to before).
    let json = render(&report, ReportFormat::Json);
    assert!(!json.contains("\"traffic\"") && !json.contains("\"capacity\""));
    let latency = Latency {
        count: 10,
        p50_ns: 41_000,
        p99_ns: 97_000,
        max_ns: 120_000,
    };
    report.traffic = Some(TrafficResult {
        streams: 2,
        background_streams: 50,
        received: 1234,
        lost: 7,
        latency,
        background_received: 0,
        channels: vec![TrafficPart {
            of: "239.3.0.1".into(),
            received: 1234,
            lost: 7,
            latency: Some(latency),
        }],
        per_host: vec![],
    });
    report.capacity = Some(CapacityResult {
        groups: 32,
        limit_reached: false,
        steps: vec![
            CapacityStep {
                groups: 16,
                forwarded: 16,
                lost: 0,
            },
            CapacityStep {
                groups: 32,
                forwarded: 32,
                lost: 0,
            },
            CapacityStep {
                groups: 48,
                forwarded: 0,
                lost: 0,
            },
        ],
    });
    let html = render(&report, ReportFormat::Html);
    for needle in [
        "id=\"traffic-received\">1234<",
        "id=\"traffic-lost\">7<",
        "id=\"loss-bars\"",
        "id=\"capacity\">32<",
        "id=\"capacity-bars\"",
        "0.097",
    ] {
        assert!(html.contains(needle), "{needle}");
    }
    assert!(!html.contains("<script"), "no script");
    let json: serde_json::Value =
        serde_json::from_str(&render(&report, ReportFormat::Json)).unwrap();
    assert_eq!(json["traffic"]["lost"], 7);
    assert_eq!(json["capacity"]["steps"][2]["groups"], 48);
}

/// While a run goes on, `test status` shows the settled zaps from the tally: once every probe
/// is settled, its figures are the exact ones (percentiles within the sketch's 3 %).
#[test]
fn the_running_tally_agrees_with_the_exact_results() {
    use super::super::{judge_of, tally::Tally, tally::ZapHistograms};
    let runs = scripted_runs();
    let run = runs.run(None).unwrap();
    let probes = run.procedure.probes();
    let judge = judge_of(&run.spec, run.start, false);
    let name = |h: u32| format!("10.0.0.{h}");
    let mut tally = Tally::new([1, 2], 1000 * MS, judge.thresholds_ms.len());
    let mut metrics = ZapHistograms::default();
    // Nothing is settled before its horizon.
    tally.settle(probes, 0, &judge, &mut metrics);
    assert_eq!(metrics.join.count, 0);
    let (early, hosts) = tally.results(probes, &judge, &name, 0..10);
    assert_eq!((early.join_delay.count, hosts), (0, 2));
    assert_eq!(
        early.per_host[1].join_delay.count, 0,
        "listed, nothing settled"
    );
    tally.settle(probes, u64::MAX / 2, &judge, &mut metrics);
    let (got, hosts) = tally.results(probes, &judge, &name, 0..10);
    let want = super::super::summary::results(probes, &judge, &name);
    // The daemon's histograms count every settled join and leave delay, their sums exact.
    assert_eq!(metrics.join.count, want.join_delay.count);
    assert_eq!(metrics.leave.count, want.leave_delay.count);
    assert_eq!(metrics.join.counts.iter().sum::<u64>(), metrics.join.count);
    let mean_s = metrics.join.sum_s / metrics.join.count as f64;
    assert!(
        (mean_s * 1e9 - want.join_delay.mean_ns as f64).abs() < 1e3,
        "{mean_s}"
    );
    assert_eq!(hosts, 2);
    assert_eq!(got.per_host, want.per_host, "per host: exact");
    assert_eq!(got.buckets, want.buckets);
    assert_eq!(got.not_received, want.not_received);
    for (g, w) in [
        (got.join_delay, want.join_delay),
        (got.leave_delay, want.leave_delay),
    ] {
        assert_eq!(
            (g.count, g.min_ns, g.max_ns, g.mean_ns),
            (w.count, w.min_ns, w.max_ns, w.mean_ns)
        );
        for (a, b) in [(g.p50_ns, w.p50_ns), (g.p99_ns, w.p99_ns)] {
            assert!(a.abs_diff(b) * 100 <= b * 4, "{a} against {b}");
        }
    }
    assert_eq!(
        got.checks.iter().map(|c| c.pass).collect::<Vec<_>>(),
        want.checks.iter().map(|c| c.pass).collect::<Vec<_>>()
    );
}
