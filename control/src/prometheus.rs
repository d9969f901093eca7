//! The Prometheus text exposition format (version 0.0.4), written once for `tunmcastctl stats
//! --prometheus` and for tunmcastd's `GET /metrics`: every family with its `# HELP` and
//! `# TYPE` lines.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::protocol::StatsReply;

/// Upper bounds (seconds) of the delay histograms' buckets: BNG Blaster's violation thresholds
/// (125, 250, 500, 1000, 2000 ms) and finer steps below them; `+Inf` is implicit. A fixed set,
/// so a scrape's size does not grow with what is measured.
pub const DELAY_BUCKETS_S: [f64; 13] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.125, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0,
];

/// Upper bounds (seconds) of the one-way latency histograms' buckets: from 10 µs (a veth or a
/// bridge in the same kernel) to 1 s; `+Inf` is implicit.
pub const LATENCY_BUCKETS_S: [f64; 14] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.1, 0.25, 1.0,
];

/// A histogram of delays: a count per bucket of [`DELAY_BUCKETS_S`] (not cumulative; the last
/// entry counts what is above the last bound), the sum and the count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Upper bounds in seconds, one per entry of `counts` but the last (`+Inf`).
    pub bounds_s: Vec<f64>,
    /// Observations per bucket: `counts[i]` are at most `bounds_s[i]` and above the bound
    /// before; the last entry are above every bound.
    pub counts: Vec<u64>,
    pub sum_s: f64,
    pub count: u64,
}

impl Histogram {
    /// An empty histogram over [`DELAY_BUCKETS_S`].
    pub fn delays() -> Histogram {
        Histogram {
            bounds_s: DELAY_BUCKETS_S.to_vec(),
            counts: vec![0; DELAY_BUCKETS_S.len() + 1],
            sum_s: 0.0,
            count: 0,
        }
    }

    /// An empty histogram over [`LATENCY_BUCKETS_S`].
    pub fn latencies() -> Histogram {
        Histogram {
            bounds_s: LATENCY_BUCKETS_S.to_vec(),
            counts: vec![0; LATENCY_BUCKETS_S.len() + 1],
            sum_s: 0.0,
            count: 0,
        }
    }

    /// Counts one delay of `ns` nanoseconds.
    pub fn observe_ns(&mut self, ns: u64) {
        self.observe_ns_times(ns, 1);
    }

    /// Counts `times` delays of `ns` nanoseconds each.
    pub fn observe_ns_times(&mut self, ns: u64, times: u64) {
        let seconds = ns as f64 / 1e9;
        let bucket = self.bounds_s.partition_point(|&bound| bound < seconds);
        self.counts[bucket] += times;
        self.sum_s += seconds * times as f64;
        self.count += times;
    }
}

/// Every counter as `tunmcast_NAME_total` with its HELP and TYPE lines, for node_exporter's
/// textfile collector or a scrape.
pub fn counters(stats: &StatsReply) -> String {
    let mut out = String::new();
    for (name, value) in &stats.stats {
        let metric = format!("tunmcast_{}_total", metric_name(name));
        let help = stats
            .help
            .get(name)
            .map_or_else(|| name.replace('_', " "), |h| h.clone());
        out.push_str(&format!("# HELP {metric} {}\n", escape_help(&help)));
        out.push_str(&format!("# TYPE {metric} counter\n"));
        out.push_str(&format!("{metric} {value}\n"));
    }
    // The per-link counters (test streams) as `tunmcast_link_NAME_total{link="..."}`: one
    // family per counter, one sample per link (links are few: the label set is bounded).
    let mut families: BTreeMap<&str, Vec<(&str, u64)>> = BTreeMap::new();
    for (link, counters) in &stats.per_link {
        for (name, value) in counters {
            families.entry(name).or_default().push((link, *value));
        }
    }
    for (name, samples) in families {
        let metric = format!("tunmcast_link_{}_total", metric_name(name));
        let help = stats
            .help
            .get(name)
            .map_or_else(|| name.replace('_', " "), |h| format!("{h} Per link."));
        out.push_str(&format!("# HELP {metric} {}\n", escape_help(&help)));
        out.push_str(&format!("# TYPE {metric} counter\n"));
        for (link, value) in samples {
            out.push_str(&format!(
                "{metric}{{link=\"{}\"}} {value}\n",
                escape_label(link)
            ));
        }
    }
    per_stream_counters(stats, &mut out);
    out
}

/// `--stream-metrics`: each stream counter as `tunmcast_per_stream_NAME_total{stream, link,
/// source, group}`, one sample per stream the daemon labels (a bounded number).
fn per_stream_counters(stats: &StatsReply, out: &mut String) {
    let mut families: BTreeMap<&str, Vec<(String, u64)>> = BTreeMap::new();
    for stream in &stats.per_stream {
        let labels = format!(
            "stream=\"{}\",link=\"{}\",source=\"{}\",group=\"{}\"",
            stream.id,
            escape_label(&stream.link),
            stream.source,
            stream.group
        );
        for (name, value) in &stream.counters {
            families
                .entry(name)
                .or_default()
                .push((labels.clone(), *value));
        }
    }
    for (name, samples) in families {
        let short = name.strip_prefix("stream_").unwrap_or(name);
        let metric = format!("tunmcast_per_stream_{}_total", metric_name(short));
        let help = stats.help.get(name).map_or_else(
            || name.replace('_', " "),
            |h| format!("{h} Per stream (tunmcastd --stream-metrics N: the first N by id)."),
        );
        let _ = writeln!(out, "# HELP {metric} {}", escape_help(&help));
        let _ = writeln!(out, "# TYPE {metric} counter");
        for (labels, value) in samples {
            let _ = writeln!(out, "{metric}{{{labels}}} {value}");
        }
    }
}

/// A label value escapes backslash, double quote and newline.
fn escape_label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One gauge family of one sample, no labels.
pub fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    let metric = format!("tunmcast_{}", metric_name(name));
    let _ = writeln!(out, "# HELP {metric} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {metric} gauge");
    let _ = writeln!(out, "{metric} {value}");
}

/// One histogram family, no labels: cumulative `_bucket{le=..}` samples, `_sum`, `_count`.
pub fn histogram(out: &mut String, name: &str, help: &str, histogram: &Histogram) {
    let metric = format!("tunmcast_{}", metric_name(name));
    let _ = writeln!(out, "# HELP {metric} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {metric} histogram");
    let mut cumulative = 0;
    for (bound, count) in histogram.bounds_s.iter().zip(&histogram.counts) {
        cumulative += count;
        let _ = writeln!(out, "{metric}_bucket{{le=\"{bound}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{metric}_bucket{{le=\"+Inf\"}} {}", histogram.count);
    let _ = writeln!(out, "{metric}_sum {}", histogram.sum_s);
    let _ = writeln!(out, "{metric}_count {}", histogram.count);
}

/// One histogram family with a sample set per value of `label` (e.g. one per link): the
/// caller keeps the values few.
pub fn labelled_histograms<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    histograms: impl IntoIterator<Item = (&'a str, &'a Histogram)>,
) {
    let metric = format!("tunmcast_{}", metric_name(name));
    let _ = writeln!(out, "# HELP {metric} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {metric} histogram");
    for (value, histogram) in histograms {
        let value = escape_label(value);
        let mut cumulative = 0;
        for (bound, count) in histogram.bounds_s.iter().zip(&histogram.counts) {
            cumulative += count;
            let _ = writeln!(
                out,
                "{metric}_bucket{{{label}=\"{value}\",le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = histogram.count;
        let _ = writeln!(
            out,
            "{metric}_bucket{{{label}=\"{value}\",le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "{metric}_sum{{{label}=\"{value}\"}} {}",
            histogram.sum_s
        );
        let _ = writeln!(out, "{metric}_count{{{label}=\"{value}\"}} {count}");
    }
}

/// A metric name may hold `[a-zA-Z0-9_:]` only.
fn metric_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// HELP text escapes backslash and newline.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_have_help_type_and_samples() {
        let mut stats = StatsReply::default();
        stats.stats.insert("igmp_rcv_queries".into(), 7);
        stats.help.insert(
            "igmp_rcv_queries".into(),
            "IGMP queries received\\ok".into(),
        );
        assert_eq!(
            counters(&stats),
            "# HELP tunmcast_igmp_rcv_queries_total IGMP queries received\\\\ok\n\
             # TYPE tunmcast_igmp_rcv_queries_total counter\n\
             tunmcast_igmp_rcv_queries_total 7\n"
        );
    }

    #[test]
    fn per_link_counters_are_labelled_families() {
        let mut stats = StatsReply::default();
        stats.help.insert("stream_rx_lost".into(), "Lost.".into());
        for (link, lost) in [("tap1", 3), ("ta\"p2", 0)] {
            stats
                .per_link
                .entry(link.into())
                .or_default()
                .insert("stream_rx_lost".into(), lost);
        }
        assert_eq!(
            counters(&stats),
            "# HELP tunmcast_link_stream_rx_lost_total Lost. Per link.\n\
             # TYPE tunmcast_link_stream_rx_lost_total counter\n\
             tunmcast_link_stream_rx_lost_total{link=\"ta\\\"p2\"} 0\n\
             tunmcast_link_stream_rx_lost_total{link=\"tap1\"} 3\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_at_the_count() {
        let mut h = Histogram::delays();
        for ns in [500_000, 1_000_000, 120_000_000, 126_000_000, 60_000_000_000] {
            h.observe_ns(ns);
        }
        let mut out = String::new();
        histogram(&mut out, "join_delay_seconds", "Join delays.", &h);
        assert!(out.starts_with(
            "# HELP tunmcast_join_delay_seconds Join delays.\n\
             # TYPE tunmcast_join_delay_seconds histogram\n\
             tunmcast_join_delay_seconds_bucket{le=\"0.001\"} 2\n\
             tunmcast_join_delay_seconds_bucket{le=\"0.005\"} 2\n"
        ));
        assert!(out.contains("_bucket{le=\"0.125\"} 3\n"));
        assert!(out.contains("_bucket{le=\"0.25\"} 4\n"));
        assert!(out.contains("_bucket{le=\"10\"} 4\n"));
        assert!(out.contains("_bucket{le=\"+Inf\"} 5\n"));
        assert!(out.ends_with("tunmcast_join_delay_seconds_count 5\n"));
        assert_eq!(h.counts.iter().sum::<u64>(), 5);
    }

    #[test]
    fn per_stream_counters_are_labelled_and_named_apart() {
        let mut stats = StatsReply::default();
        stats.stats.insert("stream_tx_packets".into(), 5);
        stats
            .help
            .insert("stream_tx_packets".into(), "Packets written.".into());
        stats.per_stream.push(crate::streams::StreamCounters {
            id: 3,
            link: "tap1".into(),
            source: "10.1.1.1".parse().unwrap(),
            group: "232.1.1.1".parse().unwrap(),
            counters: [("stream_tx_packets".to_string(), 5)].into(),
        });
        let text = counters(&stats);
        assert!(text.ends_with(
            "# HELP tunmcast_per_stream_tx_packets_total Packets written. Per stream \
             (tunmcastd --stream-metrics N: the first N by id).\n\
             # TYPE tunmcast_per_stream_tx_packets_total counter\n\
             tunmcast_per_stream_tx_packets_total{stream=\"3\",link=\"tap1\",\
             source=\"10.1.1.1\",group=\"232.1.1.1\"} 5\n"
        ));
        assert!(text.starts_with("# HELP tunmcast_stream_tx_packets_total Packets written.\n"));
    }

    #[test]
    fn labelled_histograms_have_one_sample_set_per_label() {
        let mut tap1 = Histogram::latencies();
        tap1.observe_ns_times(20_000, 3);
        tap1.observe_ns(2_000_000_000);
        let tap2 = Histogram::latencies();
        let mut out = String::new();
        labelled_histograms(
            &mut out,
            "stream_latency_seconds",
            "Latency.",
            "link",
            [("tap1", &tap1), ("tap\"2", &tap2)],
        );
        assert!(out.starts_with(
            "# HELP tunmcast_stream_latency_seconds Latency.\n\
             # TYPE tunmcast_stream_latency_seconds histogram\n\
             tunmcast_stream_latency_seconds_bucket{link=\"tap1\",le=\"0.00001\"} 0\n\
             tunmcast_stream_latency_seconds_bucket{link=\"tap1\",le=\"0.000025\"} 3\n"
        ));
        assert!(out.contains("{link=\"tap1\",le=\"1\"} 3\n"));
        assert!(out.contains("{link=\"tap1\",le=\"+Inf\"} 4\n"));
        assert!(out.contains("tunmcast_stream_latency_seconds_sum{link=\"tap1\"} 2.00006\n"));
        assert!(out.contains("tunmcast_stream_latency_seconds_count{link=\"tap\\\"2\"} 0\n"));
        assert_eq!(out.matches("# TYPE").count(), 1);
    }
}
