//! The zapping schedule and per-zap records, in virtual time.

use control::testrun::{Sla, TestSpec, Verdict, DEFAULT_THRESHOLDS_MS};

use super::super::TestRuns;
use super::*;

fn channel(n: u8) -> IpAddr {
    IpAddr::from([239, 2, 0, n])
}

fn spec(channels: u8, count: u32, order: ZapOrder, seed: Option<u64>) -> ZappingSpec {
    ZappingSpec {
        name: "z".into(),
        iface: None,
        hosts: None,
        channels: (1..=channels).map(channel).collect(),
        sources: vec![],
        view_ms: 1000,
        count: Some(count),
        order,
        seed,
        mode: ZapMode::LeaveJoin,
        not_received_ms: 500,
        leave_grace_ms: 3000,
        thresholds_ms: DEFAULT_THRESHOLDS_MS.to_vec(),
        streams: None,
        sla: Sla::default(),
    }
}

/// The channels each host joins, in order, running the schedule to its end.
fn joins(spec: &ZappingSpec, hosts: u32, seed: u64) -> Vec<Vec<IpAddr>> {
    let ids: Vec<(u32, u32)> = (0..hosts).map(|h| (h, h)).collect();
    let mut run = Zapping::new(spec, &ids, seed, 0);
    let mut per_host = vec![Vec::new(); hosts as usize];
    let mut out = Vec::new();
    while let Some(at) = run.next_deadline() {
        run.due(at, &mut out);
        for action in out.drain(..) {
            if let Action::Join { host, group, .. } = action {
                per_host[host as usize].push(group);
            }
        }
    }
    assert!(run.is_over());
    per_host
}

#[test]
fn sequential_order_starts_each_host_at_its_own_channel() {
    let plan = joins(&spec(4, 5, ZapOrder::Sequential, None), 3, 0);
    assert_eq!(
        plan[0],
        [1, 2, 3, 4, 1].map(channel).to_vec(),
        "host 0 from the first channel"
    );
    assert_eq!(plan[1], [2, 3, 4, 1, 2].map(channel).to_vec());
    assert_eq!(plan[2], [3, 4, 1, 2, 3].map(channel).to_vec());
}

#[test]
fn random_order_is_reproducible_from_its_seed_and_never_repeats_a_channel() {
    let z = spec(5, 40, ZapOrder::Random, Some(42));
    let a = joins(&z, 4, 0);
    let b = joins(&z, 4, 999); // the spec's seed wins over the daemon's
    assert_eq!(a, b);
    let other = joins(
        &ZappingSpec {
            seed: Some(43),
            ..z.clone()
        },
        4,
        0,
    );
    assert_ne!(a, other);
    assert_ne!(a[0], a[1], "each host draws its own sequence");
    for host in &a {
        assert_eq!(host.len(), 40);
        assert!(
            host.windows(2).all(|w| w[0] != w[1]),
            "a zap changes channel"
        );
        let seen: std::collections::BTreeSet<_> = host.iter().collect();
        assert!(seen.len() > 2, "more than two channels drawn: {host:?}");
    }
}

#[test]
fn hosts_start_spread_over_the_first_view_and_zap_every_view() {
    let ids = [(10u32, 0u32), (11, 0), (12, 0), (13, 0)];
    let mut run = Zapping::new(&spec(2, 2, ZapOrder::Sequential, None), &ids, 0, 5_000 * MS);
    let mut out = Vec::new();
    let mut times = Vec::new();
    while let Some(at) = run.next_deadline() {
        run.due(at, &mut out);
        if !out.is_empty() {
            times.push((at - 5_000 * MS) / MS);
        }
        out.clear();
    }
    // Joins at 0, 250, 500, 750 ms; zaps a view later; the final leaves a view after that.
    assert_eq!(
        times,
        vec![0, 250, 500, 750, 1000, 1250, 1500, 1750, 2000, 2250, 2500, 2750]
    );
}

#[test]
fn one_turn_costs_the_steps_due_not_the_hosts() {
    let ids: Vec<(u32, u32)> = (0..10_000).map(|h| (h, 0)).collect();
    let mut run = Zapping::new(&spec(4, 4, ZapOrder::Sequential, None), &ids, 0, 0);
    let mut out = Vec::new();
    // 1 ms of a 1 s view spread over 10,000 hosts: 10 or 11 hosts due.
    run.due(MS, &mut out);
    assert!((10..=11).contains(&out.len()), "{}", out.len());
}

/// A scripted zap: host 1 watches channel 1, zaps to 2; the old channel's packets continue
/// past the new one's first (overlap), then stop.
#[test]
fn a_zap_records_its_join_and_leave_delays_and_overlap() {
    let mut runs = TestRuns::<u32, u32>::default();
    let mut out = Vec::new();
    // SSM: each channel from its own source.
    let z = ZappingSpec {
        sources: vec![IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2])],
        sla: Sla {
            max_join_delay_ms: Some(100),
            max_overlap_ms: Some(50),
            ..Sla::default()
        },
        ..spec(2, 2, ZapOrder::Sequential, None)
    };
    runs.start(TestSpec::Zapping(z), vec![(1, 1)], 0, 0)
        .unwrap();
    assert!(out.is_empty(), "nothing before the first deadline");
    runs.due(0, &mut out);
    assert_eq!(
        out,
        vec![Action::Join {
            host: 1,
            group: channel(1),
            source: Some(IpAddr::from([10, 0, 0, 1]))
        }]
    );
    // A datagram before the report was written does not count.
    runs.datagram(1, channel(1), 0);
    runs.report_sent(1, channel(1), 2 * MS);
    runs.datagram(1, channel(1), 22 * MS);
    runs.datagram(1, channel(1), 500 * MS);
    out.clear();
    runs.due(1000 * MS, &mut out);
    assert_eq!(
        out,
        vec![
            Action::Leave {
                host: 1,
                group: channel(1)
            },
            Action::Join {
                host: 1,
                group: channel(2),
                source: Some(IpAddr::from([10, 0, 0, 2]))
            }
        ]
    );
    // v3: one report with both records, written at once.
    runs.left(1, channel(1), 1001 * MS);
    runs.report_sent(1, channel(2), 1001 * MS);
    // The robustness retransmission does not move them.
    runs.report_sent(1, channel(2), 1500 * MS);
    runs.datagram(1, channel(1), 1010 * MS);
    runs.datagram(1, channel(2), 1041 * MS);
    runs.datagram(1, channel(1), 1050 * MS);
    runs.datagram(1, channel(1), 1061 * MS);
    runs.datagram(1, channel(2), 1100 * MS);
    out.clear();
    runs.due(2000 * MS, &mut out);
    assert_eq!(
        out,
        vec![Action::Leave {
            host: 1,
            group: channel(2)
        }]
    );
    runs.left(1, channel(2), 2002 * MS);
    runs.datagram(1, channel(2), 2500 * MS);
    assert!(runs.is_running());
    out.clear();
    runs.due(5000 * MS, &mut out);
    assert!(!runs.is_running(), "over after the last leave's grace");
    let report = runs
        .run(None)
        .unwrap()
        .report(6000 * MS, &|h| format!("host{h}"), 10, true);
    assert_eq!(report.zaps, 2);
    assert_eq!(report.zaps_planned, 2);
    assert_eq!(report.join_delay.count, 2);
    assert_eq!(report.join_delay.min_ns, 20 * MS);
    assert_eq!(report.join_delay.max_ns, 40 * MS);
    // Leave delays: 1061 - 1001 and 2500 - 2002.
    assert_eq!(report.leave_delay.count, 2);
    assert_eq!(report.leave_delay.min_ns, 60 * MS);
    assert_eq!(report.leave_delay.max_ns, 498 * MS);
    assert_eq!(report.overlap.count, 1);
    assert_eq!(report.overlap.max_ns, 20 * MS);
    assert_eq!(report.overlap_packets, 2);
    assert_eq!(report.not_received, 0);
    assert_eq!(report.elapsed_ms, 5000);
    assert_eq!(report.records.len(), 3);
    assert_eq!(report.records[1].from, Some(channel(1)));
    assert_eq!(report.records[1].first_packet_ns, Some(1041 * MS));
    assert_eq!(report.per_host[0].of, "host1");
    assert_eq!(report.verdict, Verdict::Pass);
}

#[test]
fn not_received_and_leave_delays() {
    let mut runs = TestRuns::<u32, u32>::default();
    let mut out = Vec::new();
    runs.start(
        TestSpec::Zapping(spec(2, 2, ZapOrder::Sequential, None)),
        vec![(1, 1)],
        0,
        0,
    )
    .unwrap();
    runs.due(0, &mut out);
    runs.report_sent(1, channel(1), MS);
    // Only after the 500 ms limit: not received.
    runs.datagram(1, channel(1), 900 * MS);
    runs.due(1000 * MS, &mut out);
    runs.left(1, channel(1), 1000 * MS);
    runs.report_sent(1, channel(2), 1000 * MS);
    runs.datagram(1, channel(1), 1300 * MS);
    runs.due(2000 * MS, &mut out);
    runs.left(1, channel(2), 2000 * MS);
    // Nothing of channel 2 ever came.
    runs.due(5000 * MS, &mut out);
    let report = runs
        .run(None)
        .unwrap()
        .report(0, &|h| h.to_string(), 10, false);
    assert_eq!(report.not_received, 2);
    assert_eq!(report.join_delay.count, 0);
    assert_eq!(report.leave_shared, 0);
    // Channel 1 left at 1000 ms, its last datagram at 1300 ms; the final leave: none after.
    assert_eq!(report.leave_delay.count, 2);
    assert_eq!(report.leave_delay.max_ns, 300 * MS);
    assert_eq!(report.leave_delay.min_ns, 0);
    assert!(report.records.is_empty(), "status: no records");
    assert_eq!(report.verdict, Verdict::Fail, "max_not_received 0");
    assert_eq!(report.channels.len(), 2);
    assert_eq!(report.channels[0].not_received, 1);
}

#[test]
fn one_run_at_a_time_and_a_stop_leaves_what_it_holds() {
    let mut runs = TestRuns::<u32, u32>::default();
    let mut out = Vec::new();
    let z = TestSpec::Zapping(spec(2, 3, ZapOrder::Sequential, None));
    runs.start(z.clone(), vec![(1, 1), (2, 2)], 0, 0).unwrap();
    let refused = runs.start(z.clone(), vec![(3, 3)], 0, 0).unwrap_err();
    assert!(refused.contains("one at a time"), "{refused}");
    runs.due(0, &mut out);
    out.clear();
    runs.stop(100 * MS, None, &mut out);
    assert_eq!(
        out,
        vec![Action::Leave {
            host: 1,
            group: channel(1)
        }]
    );
    let report = runs
        .run(Some("z"))
        .unwrap()
        .report(0, &|h| h.to_string(), 10, false);
    assert_eq!(report.state, control::testrun::RunState::Stopped);
    assert!(runs.run(Some("other")).is_err());
    // A bad spec is refused before anything starts.
    let bad = TestSpec::Zapping(ZappingSpec {
        channels: vec![channel(1), IpAddr::from([10, 0, 0, 1])],
        ..spec(1, 1, ZapOrder::Sequential, None)
    });
    let error = runs.start(bad, vec![(1, 1)], 0, 0).unwrap_err();
    assert!(
        error.contains("channels: 10.0.0.1 is not a multicast"),
        "{error}"
    );
    let too_many = TestSpec::Zapping(spec(2, 1000, ZapOrder::Sequential, None));
    let hosts: Vec<(u32, u32)> = (0..2001).map(|h| (h, 0)).collect();
    let error = runs.start(too_many, hosts, 0, 0).unwrap_err();
    assert!(
        error.starts_with("2001000 zaps planned (2001 hosts): at most 2000000"),
        "{error}"
    );
    assert_eq!(runs.runs().len(), 1);
}

#[test]
fn a_channel_another_host_watches_is_no_leave_delay() {
    let mut runs = TestRuns::<u32, u32>::default();
    let mut out = Vec::new();
    // Host 1 from channel 1 to 2, host 2 from channel 2 to 1 (sequential, 2 channels).
    runs.start(
        TestSpec::Zapping(spec(2, 2, ZapOrder::Sequential, None)),
        vec![(1, 0), (2, 0)],
        0,
        0,
    )
    .unwrap();
    runs.due(0, &mut out); // host 1 joins channel 1
    runs.due(500 * MS, &mut out); // host 2 joins channel 2
    runs.report_sent(1, channel(1), MS);
    runs.report_sent(2, channel(2), 501 * MS);
    runs.datagram(0, channel(1), 10 * MS);
    runs.datagram(0, channel(2), 510 * MS);
    runs.due(1000 * MS, &mut out); // host 1: 1 -> 2, where host 2 is
    runs.left(1, channel(1), 1000 * MS);
    runs.report_sent(1, channel(2), 1000 * MS);
    // Channel 2 is flowing already (host 2): joined at once.
    runs.datagram(0, channel(2), 1002 * MS);
    runs.datagram(0, channel(1), 1100 * MS);
    runs.due(1500 * MS, &mut out); // host 2: 2 -> 1
    runs.left(2, channel(2), 1500 * MS);
    runs.report_sent(2, channel(1), 1500 * MS);
    // Channel 2, left by host 2, still watched by host 1: no leave delay for host 2.
    runs.datagram(0, channel(2), 1700 * MS);
    let report = runs
        .run(None)
        .unwrap()
        .report(0, &|h| h.to_string(), 10, true);
    let zap_of = |host: &str| {
        report
            .records
            .iter()
            .find(|r| r.host == host && r.seq == 1)
            .unwrap()
            .clone()
    };
    let host1 = zap_of("1");
    assert_eq!(host1.join_delay_ns, Some(2 * MS));
    assert_eq!(
        host1.leave_delay_ns,
        Some(100 * MS),
        "nobody else watched channel 1"
    );
    let host2 = zap_of("2");
    assert!(host2.leave_shared);
    assert_eq!(host2.leave_delay_ns, None);
}

#[test]
fn a_datagram_is_its_own_links_only() {
    let mut runs = TestRuns::<u32, u32>::default();
    let mut out = Vec::new();
    // One channel, both hosts on it, each behind a link of its own.
    runs.start(
        TestSpec::Zapping(spec(1, 1, ZapOrder::Sequential, None)),
        vec![(1, 10), (2, 20)],
        0,
        0,
    )
    .unwrap();
    runs.due(500 * MS, &mut out);
    assert_eq!(out.len(), 2, "both joined: {out:?}");
    runs.report_sent(1, channel(1), MS);
    runs.report_sent(2, channel(1), 501 * MS);
    runs.datagram(20, channel(1), 530 * MS);
    runs.datagram(10, channel(1), 311 * MS);
    // A link of no host of the run, a group of no channel: nothing.
    runs.datagram(30, channel(1), 612 * MS);
    runs.datagram(10, channel(9), 613 * MS);
    let report = runs
        .run(None)
        .unwrap()
        .report(0, &|h| h.to_string(), 10, true);
    let delays: Vec<(String, Option<Nanos>)> = report
        .records
        .iter()
        .map(|r| (r.host.clone(), r.join_delay_ns))
        .collect();
    assert_eq!(
        delays,
        vec![("1".into(), Some(310 * MS)), ("2".into(), Some(29 * MS))]
    );
}

#[test]
fn a_leave_is_measured_for_twice_its_grace() {
    let mut runs = TestRuns::<u32, u32>::default();
    let mut out = Vec::new();
    // Grace 3 s: channel 1, left at 1 s, still comes at 3.5 s (in the grace), 5 s (after
    // it: forwarded after leave) and 8 s (beyond twice the grace: no longer this leave's).
    runs.start(
        TestSpec::Zapping(spec(2, 2, ZapOrder::Sequential, None)),
        vec![(1, 1)],
        0,
        0,
    )
    .unwrap();
    runs.due(0, &mut out);
    runs.report_sent(1, channel(1), 0);
    runs.datagram(1, channel(1), 5 * MS);
    runs.due(1000 * MS, &mut out);
    runs.left(1, channel(1), 1000 * MS);
    runs.report_sent(1, channel(2), 1000 * MS);
    runs.datagram(1, channel(2), 1010 * MS);
    for at in [3500, 5000, 8000] {
        runs.datagram(1, channel(1), at * MS);
    }
    let report = runs
        .run(None)
        .unwrap()
        .report(0, &|h| h.to_string(), 10, true);
    let zap = &report.records[1];
    assert_eq!(zap.leave_delay_ns, Some(4000 * MS));
    assert_eq!(zap.after_leave_packets, 1);
    assert_eq!(zap.overlap_packets, 2);
    assert_eq!(report.forwarded_after_leave, 1);
}

#[test]
fn progress_counts_the_joins_written_without_the_delays() {
    let mut runs = TestRuns::<u32, u32>::default();
    let mut out = Vec::new();
    runs.start(
        TestSpec::Zapping(spec(2, 2, ZapOrder::Sequential, None)),
        vec![(1, 1), (2, 2)],
        0,
        0,
    )
    .unwrap();
    runs.due(600 * MS, &mut out);
    runs.report_sent(1, channel(1), MS);
    runs.report_sent(1, channel(1), 2 * MS); // the retransmission: not another
    runs.report_sent(2, channel(2), 501 * MS);
    runs.datagram(1, channel(1), 5 * MS);
    let progress = runs.run(None).unwrap().progress(700 * MS);
    assert_eq!((progress.zaps, progress.zaps_planned), (2, 4));
    assert_eq!(progress.elapsed_ms, 700);
    assert_eq!(progress.verdict, Verdict::Pending);
    assert_eq!(progress.join_delay.count, 0, "no delays computed");
    assert!(progress.checks.is_empty());
}

#[test]
fn a_zap_record_is_small() {
    // The MAX_ZAPS bound and the README count on it: about 150 bytes a zap.
    assert!(
        std::mem::size_of::<Probe<u64>>() <= 160,
        "{}",
        std::mem::size_of::<Probe<u64>>()
    );
}

#[test]
fn hosts_are_listed_a_page_at_a_time() {
    let mut runs = TestRuns::<u32, u32>::default();
    let mut out = Vec::new();
    let hosts: Vec<(u32, u32)> = (1..=5).map(|h| (h, h)).collect();
    runs.start(
        TestSpec::Zapping(spec(2, 1, ZapOrder::Sequential, None)),
        hosts,
        0,
        0,
    )
    .unwrap();
    runs.due(MS * 1000, &mut out);
    let run = runs.run(None).unwrap();
    let page = run.report_page(0, &|h| format!("h{h}"), 1..3, false);
    let listed: Vec<&str> = page.per_host.iter().map(|p| p.of.as_str()).collect();
    assert_eq!(listed, ["h2", "h3"]);
    assert_eq!(page.per_host_total, 5);
    let past_the_end = run.report_page(0, &|h| format!("h{h}"), 9..12, false);
    assert!(past_the_end.per_host.is_empty());
}
