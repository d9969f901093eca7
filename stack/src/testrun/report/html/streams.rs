//! The HTML report's sections of a run with its own streams: the traffic table and the loss
//! and latency per stream (channel), and an RFC 3918 §7.1 capacity run's steps.

use std::fmt::Write as _;

use control::test_capacity::CapacityResult;
use control::test_traffic::TrafficResult;

use super::{escape, ms, TOP, WIDTH};

/// The traffic table, and a plot of each channel stream's loss and p99 latency.
pub(super) fn traffic(h: &mut String, t: &TrafficResult) {
    let _ = writeln!(
        h,
        "<h2>Streams</h2><p id=\"traffic\">{} channel streams, {} background · received \
         <span id=\"traffic-received\">{}</span> · lost while joined \
         <span id=\"traffic-lost\">{}</span> · latency p50 {} p99 {} max {} ms · background \
         received {}</p>",
        t.streams,
        t.background_streams,
        t.received,
        t.lost,
        ms(t.latency.p50_ns),
        ms(t.latency.p99_ns),
        ms(t.latency.max_ns),
        t.background_received
    );
    h.push_str(
        "<table id=\"streams\"><tr><th>channel</th><th>received</th><th>lost</th>\
         <th>latency p50</th><th>p99</th><th>max</th></tr>\n",
    );
    for c in &t.channels {
        let l = c.latency.unwrap_or_default();
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&c.of),
            c.received,
            c.lost,
            ms(l.p50_ns),
            ms(l.p99_ns),
            ms(l.max_ns)
        );
    }
    h.push_str("</table>\n");
    // Loss per stream (red, packets) and p99 latency (grey, ms), each on its own scale.
    let most_lost = t.channels.iter().map(|c| c.lost).max().unwrap_or(0).max(1) as f64;
    let slowest = t
        .channels
        .iter()
        .filter_map(|c| c.latency.map(|l| l.p99_ns))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let left = 130.0;
    let span = (WIDTH - left - 120.0) / 2.0;
    let _ = writeln!(
        h,
        "<figure id=\"loss-bars\"><figcaption>Loss per stream (red, packets) and p99 latency \
         (grey, ms)</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" \
         height=\"{}\" font-size=\"11\">",
        TOP + 20.0 * t.channels.len().max(1) as f64 + 10.0
    );
    for (i, c) in t.channels.iter().enumerate() {
        let y = TOP + 20.0 * i as f64;
        let p99 = c.latency.map_or(0, |l| l.p99_ns);
        let _ = writeln!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect class=\"lost\" x=\"{left}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"12\" \
             fill=\"#b3141b\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>\
             <rect class=\"latency\" x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"12\" \
             fill=\"#888\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            left - 6.0,
            y + 10.0,
            escape(&c.of),
            (c.lost as f64 / most_lost * (span - 40.0)).max(1.0),
            left + (c.lost as f64 / most_lost * (span - 40.0)).max(1.0) + 4.0,
            y + 10.0,
            c.lost,
            left + span,
            (p99 as f64 / slowest * (span - 40.0)).max(1.0),
            left + span + (p99 as f64 / slowest * (span - 40.0)).max(1.0) + 4.0,
            y + 10.0,
            ms(p99)
        );
    }
    h.push_str("</svg></figure>\n");
}

/// The capacity found, and a plot of each step: groups joined (grey) and forwarded
/// correctly (green).
pub(super) fn capacity(h: &mut String, c: &CapacityResult) {
    let _ = writeln!(
        h,
        "<h2>Group capacity (RFC 3918 §7.1)</h2><p>capacity <span id=\"capacity\">{}</span> \
         groups{}</p><table id=\"capacity-steps\"><tr><th>step</th><th>groups joined</th>\
         <th>forwarded</th><th>lost</th></tr>",
        c.groups,
        if c.limit_reached {
            " (the step limit: every group forwarded)"
        } else {
            ""
        }
    );
    for (i, s) in c.steps.iter().enumerate() {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            i + 1,
            s.groups,
            s.forwarded,
            s.lost
        );
    }
    h.push_str("</table>\n");
    let most = c.steps.iter().map(|s| s.groups).max().unwrap_or(0).max(1) as f64;
    let left = 80.0;
    let scale = |n: u32| (f64::from(n) / most * (WIDTH - left - 80.0)).max(1.0);
    let _ = writeln!(
        h,
        "<figure id=\"capacity-bars\"><figcaption>Groups joined (grey) and forwarded \
         correctly (green) per step</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{WIDTH}\" height=\"{}\" font-size=\"11\">",
        TOP + 20.0 * c.steps.len().max(1) as f64 + 10.0
    );
    for (i, s) in c.steps.iter().enumerate() {
        let y = TOP + 20.0 * i as f64;
        let _ = writeln!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">step {}</text>\
             <rect class=\"joined\" x=\"{left}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"12\" \
             fill=\"#bbb\"/><rect class=\"forwarded\" x=\"{left}\" y=\"{y:.1}\" \
             width=\"{:.1}\" height=\"12\" fill=\"#176b1c\"/><text x=\"{:.1}\" y=\"{:.1}\">{} \
             / {}</text>",
            left - 6.0,
            y + 10.0,
            i + 1,
            scale(s.groups),
            scale(s.forwarded),
            left + scale(s.groups) + 4.0,
            y + 10.0,
            s.forwarded,
            s.groups
        );
    }
    h.push_str("</svg></figure>\n");
}
