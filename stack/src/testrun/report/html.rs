//! One self-contained HTML page (no script, no network): the verdict, the figures as tables,
//! and inline SVG plots: the join delay histogram with the violation thresholds, the CDF of
//! the join and leave delays, per channel and per host p50/p99 bars, a timeline of the zaps.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use control::testrun::{PartResult, Summary, TestReport, Verdict};

use super::{escape, ms};

mod streams;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 40.0;
/// Hosts drawn in the timeline (the tables have them all).
const TIMELINE_HOSTS: usize = 40;
const HISTOGRAM_BINS: usize = 30;
/// Hosts drawn in the per-host bars.
const BAR_HOSTS: usize = 40;

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:.2em .6em;\
text-align:right}th{background:#eee}td:first-child,th:first-child{text-align:left}\
.pass{color:#176b1c}.fail{color:#b3141b}.verdict{font-size:1.6em;font-weight:bold}\
svg{border:1px solid #ddd;margin:.5em 0;background:#fff}figure{margin:1em 0}\
figcaption{font-weight:bold}";

pub fn render(report: &TestReport) -> String {
    let mut h = String::new();
    let title = format!(
        "tunmcast test {}: {}",
        report.name,
        verdict_word(report.verdict)
    );
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>{STYLE}</style></head><body>\n",
        escape(&title)
    );
    let class = if report.verdict == Verdict::Pass {
        "pass"
    } else {
        "fail"
    };
    let _ = writeln!(
        h,
        "<h1>{} <span class=\"verdict {class}\" id=\"verdict\">{}</span></h1>",
        escape(&report.name),
        verdict_word(report.verdict)
    );
    let _ = writeln!(
        h,
        "<p>kind {} · state <span id=\"state\">{}</span> · {} hosts · {} of {} zaps · {} \
         s · report schema {}{}{}</p>",
        escape(&report.kind),
        format!("{:?}", report.state).to_lowercase(),
        report.hosts,
        report.zaps,
        report.zaps_planned,
        format_args!("{:.1}", report.elapsed_ms as f64 / 1000.0),
        report.schema,
        report
            .seed
            .map_or(String::new(), |s| format!(" · seed {s}")),
        report
            .arrival_stamps
            .as_deref()
            .map_or(String::new(), |how| format!(
                " · arrivals stamped: <span id=\"arrival-stamps\">{}</span>",
                escape(how)
            )),
    );
    if let Some(error) = &report.error {
        let _ = writeln!(h, "<p class=\"fail\">error: {}</p>", escape(error));
    }
    let _ = writeln!(
        h,
        "<h2>Parameters</h2><pre id=\"spec\">{}</pre>",
        escape(&serde_json::to_string_pretty(&report.spec).unwrap_or_default())
    );
    summary_table(&mut h, report);
    checks_table(&mut h, report);
    if let Some(capacity) = &report.capacity {
        streams::capacity(&mut h, capacity);
    }
    if let Some(traffic) = &report.traffic {
        streams::traffic(&mut h, traffic);
    }
    buckets_table(&mut h, report);
    let joins: Vec<u64> = report
        .records
        .iter()
        .filter_map(|r| r.join_delay_ns)
        .collect();
    let leaves: Vec<u64> = report
        .records
        .iter()
        .filter_map(|r| r.leave_delay_ns)
        .collect();
    h.push_str("<h2>Plots</h2>\n");
    if (report.records.len() as u64) < report.records_total {
        let _ = writeln!(
            h,
            "<p>The plots show the first {} of the {} zaps; the tables are over all.</p>",
            report.records.len(),
            report.records_total
        );
    }
    let thresholds: Vec<u64> = report.buckets.iter().map(|b| b.threshold_ms).collect();
    histogram(&mut h, &joins, &thresholds);
    cdf(&mut h, &joins, &leaves);
    part_bars(&mut h, "channel-bars", "channel", &report.channels);
    // The first hosts (the table below has them all).
    let hosts = &report.per_host[..report.per_host.len().min(BAR_HOSTS)];
    part_bars(&mut h, "host-bars", "host", hosts);
    timeline(&mut h, report);
    parts_table(&mut h, "Per channel", "channels", &report.channels);
    parts_table(&mut h, "Per host", "hosts", &report.per_host);
    h.push_str("</body></html>\n");
    h
}

fn verdict_word(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pending => "running",
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        Verdict::Error => "ERROR",
    }
}

fn summary_row(h: &mut String, id: &str, label: &str, s: &Summary) {
    let _ = write!(
        h,
        "<tr><td>{label}</td><td id=\"{id}-count\">{}</td>",
        s.count
    );
    for (key, ns) in [
        ("min", s.min_ns),
        ("p50", s.p50_ns),
        ("p90", s.p90_ns),
        ("p99", s.p99_ns),
        ("max", s.max_ns),
        ("mean", s.mean_ns),
    ] {
        let _ = write!(h, "<td id=\"{id}-{key}\" data-ns=\"{ns}\">{}</td>", ms(ns));
    }
    h.push_str("</tr>\n");
}

fn summary_table(h: &mut String, r: &TestReport) {
    h.push_str(
        "<h2>Results</h2><table id=\"summary\"><tr><th>delay (ms)</th><th>count</th>\
         <th>min</th><th>p50</th><th>p90</th><th>p99</th><th>max</th><th>mean</th></tr>\n",
    );
    summary_row(h, "join", "join (zap time)", &r.join_delay);
    summary_row(h, "leave", "leave", &r.leave_delay);
    summary_row(h, "overlap", "overlap", &r.overlap);
    h.push_str("</table>\n<table id=\"counts\">");
    for (id, label, value) in [
        ("not-received", "not received", r.not_received),
        ("overlap-packets", "overlap packets", r.overlap_packets),
        (
            "leave-shared",
            "leaves shared with another host",
            r.leave_shared,
        ),
        (
            "forwarded-without-join",
            "forwarded without join",
            r.forwarded_without_join,
        ),
        (
            "forwarded-after-leave",
            "forwarded after leave",
            r.forwarded_after_leave,
        ),
    ] {
        let _ = write!(h, "<tr><td>{label}</td><td id=\"{id}\">{value}</td></tr>");
    }
    h.push_str("</table>\n");
}

fn checks_table(h: &mut String, r: &TestReport) {
    h.push_str(
        "<h2>SLA checks</h2><table id=\"checks\"><tr><th>check</th><th>scope</th>\
         <th>measured</th><th>threshold</th><th>result</th></tr>\n",
    );
    for c in &r.checks {
        let value = |v: u64| match c.unit.as_str() {
            "ns" => format!("{} ms", ms(v)),
            unit => format!("{v} {unit}"),
        };
        let (class, word) = if c.pass {
            ("pass", "pass")
        } else {
            ("fail", "FAIL")
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{word}\
             </td></tr>",
            escape(&c.name),
            escape(&c.scope),
            value(c.measured),
            value(c.threshold)
        );
    }
    h.push_str("</table>\n");
}

fn buckets_table(h: &mut String, r: &TestReport) {
    h.push_str("<h2>Join delay violations</h2><table id=\"buckets\"><tr><th>over</th>");
    for b in &r.buckets {
        let _ = write!(h, "<th>{} ms</th>", b.threshold_ms);
    }
    h.push_str("</tr><tr><td>zaps</td>");
    for b in &r.buckets {
        let _ = write!(h, "<td>{}</td>", b.over);
    }
    h.push_str("</tr></table>\n");
}

fn parts_table(h: &mut String, title: &str, id: &str, parts: &[PartResult]) {
    let _ = writeln!(
        h,
        "<h2>{title}</h2><table id=\"{id}\"><tr><th></th><th>joins</th><th>join p50</th>\
         <th>join p99</th><th>join max</th><th>leave p50</th><th>leave max</th>\
         <th>not received</th></tr>"
    );
    for p in parts {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td></tr>",
            escape(&p.of),
            p.join_delay.count,
            ms(p.join_delay.p50_ns),
            ms(p.join_delay.p99_ns),
            ms(p.join_delay.max_ns),
            ms(p.leave_delay.p50_ns),
            ms(p.leave_delay.max_ns),
            p.not_received
        );
    }
    h.push_str("</table>\n");
}

/// A plot's frame: `<figure>`, the SVG, its axes (x in ms up to `x_max`, y up to `y_max`).
fn frame(
    h: &mut String,
    id: &str,
    caption: &str,
    x_label: &str,
    x_max: f64,
    y_label: &str,
    y_max: f64,
) {
    let _ = writeln!(
        h,
        "<figure id=\"{id}\"><figcaption>{caption}</figcaption>\
         <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-size=\"11\">"
    );
    let (x0, y0, x1, y1) = (LEFT, HEIGHT - BOTTOM, WIDTH - RIGHT, TOP);
    let _ = writeln!(
        h,
        "<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"#444\"/>\
         <line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{y1}\" stroke=\"#444\"/>"
    );
    for i in 0..=4 {
        let f = f64::from(i) / 4.0;
        let x = x0 + f * (x1 - x0);
        let y = y0 - f * (y0 - y1);
        let _ = writeln!(
            h,
            "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            y0 + 14.0,
            short(f * x_max),
            x0 - 4.0,
            y + 4.0,
            short(f * y_max)
        );
    }
    let _ = writeln!(
        h,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{x_label}</text>\
         <text x=\"12\" y=\"{:.1}\" transform=\"rotate(-90 12 {:.1})\" \
         text-anchor=\"middle\">{y_label}</text>",
        (x0 + x1) / 2.0,
        HEIGHT - 6.0,
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0
    );
}

fn short(v: f64) -> String {
    if v >= 100.0 || v == 0.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn x_of(v: f64, max: f64) -> f64 {
    LEFT + v / max * (WIDTH - LEFT - RIGHT)
}

fn y_of(v: f64, max: f64) -> f64 {
    HEIGHT - BOTTOM - v / max * (HEIGHT - BOTTOM - TOP)
}

fn empty(h: &mut String) {
    let _ = writeln!(
        h,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">no measurement</text>",
        WIDTH / 2.0,
        HEIGHT / 2.0
    );
}

/// The join delays in [`HISTOGRAM_BINS`] bins, the violation thresholds within as lines.
fn histogram(h: &mut String, joins: &[u64], thresholds_ms: &[u64]) {
    let max_ms = joins
        .iter()
        .max()
        .map_or(1.0, |&m| m as f64 / 1e6)
        .max(0.001)
        * 1.05;
    let width = max_ms / HISTOGRAM_BINS as f64;
    let mut bins = [0u64; HISTOGRAM_BINS];
    for &d in joins {
        let b = ((d as f64 / 1e6) / width) as usize;
        bins[b.min(HISTOGRAM_BINS - 1)] += 1;
    }
    let top = bins.iter().copied().max().unwrap_or(0).max(1) as f64;
    frame(
        h,
        "join-histogram",
        "Join delay histogram (violation thresholds dashed)",
        "join delay (ms)",
        max_ms,
        "zaps",
        top,
    );
    if joins.is_empty() {
        empty(h);
    }
    for (i, &n) in bins.iter().enumerate() {
        if n == 0 {
            continue;
        }
        let x = x_of(i as f64 * width, max_ms);
        let w = x_of((i + 1) as f64 * width, max_ms) - x;
        let y = y_of(n as f64, top);
        let over = thresholds_ms
            .iter()
            .any(|&t| (i as f64 * width) >= t as f64);
        let fill = if over { "#d9822b" } else { "#3b75af" };
        let _ = writeln!(
            h,
            "<rect class=\"bin\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" \
             fill=\"{fill}\"><title>{n}</title></rect>",
            (w - 1.0).max(1.0),
            HEIGHT - BOTTOM - y
        );
    }
    for &t in thresholds_ms {
        if (t as f64) <= max_ms {
            let x = x_of(t as f64, max_ms);
            let _ = writeln!(
                h,
                "<line class=\"threshold\" x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{}\" \
                 stroke=\"#b3141b\" stroke-dasharray=\"4 3\"/><text x=\"{x:.1}\" y=\"{}\" \
                 fill=\"#b3141b\">{t} ms</text>",
                HEIGHT - BOTTOM,
                TOP - 4.0
            );
        }
    }
    h.push_str("</svg></figure>\n");
}

/// The cumulative distributions of the join and leave delays.
fn cdf(h: &mut String, joins: &[u64], leaves: &[u64]) {
    let max_ms = joins
        .iter()
        .chain(leaves)
        .max()
        .map_or(1.0, |&m| m as f64 / 1e6)
        .max(0.001);
    frame(
        h,
        "cdf",
        "CDF of join (blue) and leave (orange) delays",
        "delay (ms)",
        max_ms,
        "fraction",
        1.0,
    );
    if joins.is_empty() && leaves.is_empty() {
        empty(h);
    }
    for (class, delays, colour) in [("join", joins, "#3b75af"), ("leave", leaves, "#d9822b")] {
        if delays.is_empty() {
            continue;
        }
        let mut sorted = delays.to_vec();
        sorted.sort_unstable();
        // At most 500 points: a step every so many delays.
        let step = sorted.len().div_ceil(500);
        let n = sorted.len() as f64;
        let mut points = format!("{:.1},{:.1}", x_of(0.0, max_ms), y_of(0.0, 1.0));
        for (i, &d) in sorted.iter().enumerate() {
            if i % step == 0 || i + 1 == sorted.len() {
                let x = x_of(d as f64 / 1e6, max_ms);
                let _ = write!(points, " {x:.1},{:.1}", y_of(i as f64 / n, 1.0));
                let _ = write!(points, " {x:.1},{:.1}", y_of((i + 1) as f64 / n, 1.0));
            }
        }
        let _ = writeln!(
            h,
            "<polyline class=\"cdf-{class}\" fill=\"none\" stroke=\"{colour}\" \
             stroke-width=\"2\" points=\"{points}\"/>"
        );
    }
    h.push_str("</svg></figure>\n");
}

/// Per channel (or host): the join delay's p50 and p99, side by side.
fn part_bars(h: &mut String, id: &str, what: &str, channels: &[PartResult]) {
    let max_ms = channels
        .iter()
        .map(|c| c.join_delay.p99_ns)
        .max()
        .map_or(1.0, |m| m as f64 / 1e6)
        .max(0.001)
        * 1.1;
    // Horizontal bars: y is the channel, x the delay.
    let _ = writeln!(
        h,
        "<figure id=\"{id}\"><figcaption>Join delay per {what}: p50 (blue), p99 \
         (orange), ms</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" \
         height=\"{}\" font-size=\"11\">",
        TOP + 24.0 * channels.len().max(1) as f64 + 10.0
    );
    if channels.is_empty() {
        let _ = writeln!(h, "<text x=\"{}\" y=\"30\">no {what}</text>", WIDTH / 2.0);
    }
    let left = 130.0;
    let scale = |ns: u64| (ns as f64 / 1e6) / max_ms * (WIDTH - left - 90.0);
    for (i, c) in channels.iter().enumerate() {
        let y = TOP + 24.0 * i as f64;
        let _ = writeln!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect class=\"p50\" x=\"{left}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"9\" \
             fill=\"#3b75af\"/><rect class=\"p99\" x=\"{left}\" y=\"{:.1}\" width=\"{:.1}\" \
             height=\"9\" fill=\"#d9822b\"/><text x=\"{:.1}\" y=\"{:.1}\">{} / {}</text>",
            left - 6.0,
            y + 14.0,
            escape(&c.of),
            scale(c.join_delay.p50_ns).max(1.0),
            y + 10.0,
            scale(c.join_delay.p99_ns).max(1.0),
            left + scale(c.join_delay.p99_ns).max(1.0) + 6.0,
            y + 16.0,
            ms(c.join_delay.p50_ns),
            ms(c.join_delay.p99_ns)
        );
    }
    h.push_str("</svg></figure>\n");
}

/// The run's zaps in time, one row per host (the first [`TIMELINE_HOSTS`]): a tick at each
/// join, a bar to its first datagram, a cross where none came.
fn timeline(h: &mut String, r: &TestReport) {
    let mut rows: BTreeMap<&str, usize> = BTreeMap::new();
    for record in &r.records {
        let next = rows.len();
        if next < TIMELINE_HOSTS || rows.contains_key(record.host.as_str()) {
            rows.entry(&record.host).or_insert(next);
        }
    }
    let end_ms = (r.elapsed_ms as f64).max(1.0);
    let n = rows.len().max(1) as f64;
    frame(
        h,
        "timeline",
        "Timeline: each host's joins (bar: join to first packet; red: not received)",
        "time since the start (ms)",
        end_ms,
        "host",
        n,
    );
    for record in &r.records {
        let (Some(&row), Some(sent)) = (rows.get(record.host.as_str()), record.join_sent_ns) else {
            continue;
        };
        let y = y_of(row as f64 + 0.5, n);
        let x = x_of(sent as f64 / 1e6, end_ms);
        match record.first_packet_ns.filter(|_| !record.not_received) {
            Some(first) => {
                let x2 = x_of(first as f64 / 1e6, end_ms).max(x + 1.0);
                let _ = writeln!(
                    h,
                    "<line class=\"zap\" x1=\"{x:.1}\" y1=\"{y:.1}\" x2=\"{x2:.1}\" \
                     y2=\"{y:.1}\" stroke=\"#3b75af\" stroke-width=\"4\"/>"
                );
            }
            None => {
                let _ = writeln!(
                    h,
                    "<text class=\"missed\" x=\"{x:.1}\" y=\"{:.1}\" fill=\"#b3141b\" \
                     text-anchor=\"middle\">×</text>",
                    y + 4.0
                );
            }
        }
    }
    h.push_str("</svg></figure>\n");
}
