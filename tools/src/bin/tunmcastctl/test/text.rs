//! `test status` as text.

use control::testrun::{RunState, TestReport, Verdict};

use super::ms;

/// A run's results as text.
pub(super) fn status_text(r: &TestReport) -> String {
    use std::fmt::Write as _;
    let mut t = String::new();
    let verdict = match r.verdict {
        Verdict::Pending => "running",
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        Verdict::Error => "ERROR",
    };
    let _ = writeln!(
        t,
        "test {} ({}): {verdict}, {} hosts, {}/{} zaps, {} s{}",
        r.name,
        r.kind,
        r.hosts,
        r.zaps,
        r.zaps_planned,
        r.elapsed_ms / 1000,
        match r.state {
            RunState::Stopped => " (stopped: partial)",
            _ => "",
        }
    );
    if let Some(e) = &r.error {
        let _ = writeln!(t, "  error: {e}");
    }
    let _ = writeln!(
        t,
        "  {:<10} {:>7} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "delay ms", "count", "min", "p50", "p90", "p99", "max", "mean"
    );
    for (label, s) in [
        ("join", &r.join_delay),
        ("leave", &r.leave_delay),
        ("overlap", &r.overlap),
    ] {
        let _ = writeln!(
            t,
            "  {label:<10} {:>7} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            s.count,
            ms(s.min_ns),
            ms(s.p50_ns),
            ms(s.p90_ns),
            ms(s.p99_ns),
            ms(s.max_ns),
            ms(s.mean_ns)
        );
    }
    if let Some(capacity) = &r.capacity {
        let steps: Vec<String> = capacity
            .steps
            .iter()
            .map(|s| format!("{}/{}", s.forwarded, s.groups))
            .collect();
        let _ = writeln!(
            t,
            "  capacity {} groups{} (forwarded per step: {})",
            capacity.groups,
            if capacity.limit_reached {
                ", the step limit"
            } else {
                ""
            },
            steps.join(", ")
        );
    }
    if let Some(traffic) = &r.traffic {
        let _ = writeln!(
            t,
            "  streams {} (+{} background): received {}, lost while joined {}, latency ms \
             p50 {} p99 {} max {}, background received {}",
            traffic.streams,
            traffic.background_streams,
            traffic.received,
            traffic.lost,
            ms(traffic.latency.p50_ns),
            ms(traffic.latency.p99_ns),
            ms(traffic.latency.max_ns),
            traffic.background_received
        );
    }
    let buckets: Vec<String> = r
        .buckets
        .iter()
        .map(|b| format!(">{}ms {}", b.threshold_ms, b.over))
        .collect();
    let _ = writeln!(t, "  join delay violations: {}", buckets.join(", "));
    let _ = writeln!(
        t,
        "  not received {}, overlap packets {}, leaves shared {}, forwarded without join {}, \
         after leave {}",
        r.not_received,
        r.overlap_packets,
        r.leave_shared,
        r.forwarded_without_join,
        r.forwarded_after_leave
    );
    for c in &r.channels {
        let _ = writeln!(
            t,
            "  channel {:<20} joins {:>5}  p50 {:>10}  p99 {:>10}  not received {}",
            c.of,
            c.join_delay.count,
            ms(c.join_delay.p50_ns),
            ms(c.join_delay.p99_ns),
            c.not_received
        );
    }
    for h in &r.per_host {
        let _ = writeln!(
            t,
            "  host {:<23} joins {:>5}  p50 {:>10}  p99 {:>10}  not received {}",
            h.of,
            h.join_delay.count,
            ms(h.join_delay.p50_ns),
            ms(h.join_delay.p99_ns),
            h.not_received
        );
    }
    if (r.per_host.len() as u64) < r.per_host_total {
        let _ = writeln!(
            t,
            "  ... {} hosts in all (--host-offset N --host-limit N, or the report)",
            r.per_host_total
        );
    }
    for c in &r.checks {
        let value = |v: u64| match c.unit.as_str() {
            "ns" => format!("{} ms", ms(v)),
            unit => format!("{v} {unit}"),
        };
        let _ = writeln!(
            t,
            "  check {} {}: {} (limit {}) {}",
            c.name,
            c.scope,
            value(c.measured),
            value(c.threshold),
            if c.pass { "pass" } else { "FAIL" }
        );
    }
    t
}
