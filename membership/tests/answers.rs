//! IGMPv3 / MLDv2 General Query answers in virtual time: generated report by report from a
//! cursor over the groups, and paced over what is left of the Max Resp Time
//! (`Config::answer_burst`), never past it, state-change reports never held back.

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use common::{host_on, igmp_general_query, ip, t, IF, ROUTER4};
use membership::wire::igmp::IgmpRepr;
use membership::wire::ip::build_ipv4;
use membership::{Config, Host, Message, SourceFilter, Transmit};

/// Runs the timers from `from` until `until` (ms): what was sent, with when.
fn run(host: &mut Host, from: u64, until: u64) -> Vec<(u64, Transmit)> {
    let mut sent = Vec::new();
    while let Some(at) = host.poll_timeout() {
        let at = at.as_millis().max(from);
        if at > until {
            break;
        }
        host.handle_timeout(t(at));
        while let Some(tx) = host.poll_transmit() {
            sent.push((at, tx));
        }
    }
    sent
}

/// A report's records: (type and group, number of sources).
fn shape(tx: &Transmit) -> Vec<(String, usize)> {
    match tx.message() {
        Message::Igmp(IgmpRepr::ReportV3 { records }) => records
            .iter()
            .map(|r| (format!("{} {}", r.kind, r.group), r.sources.len()))
            .collect(),
        other => panic!("not an IGMPv3 report: {other:?}"),
    }
}

fn group(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0xef00_0000 + i))
}

/// A host with `n` any-source groups on `IF`, its state-change reports all sent by 10 s.
fn joined(config: Config, n: u32) -> Host {
    let mut host = host_on(config, 3);
    for i in 1..=n {
        host.join(IF, group(i), t(0)).unwrap();
    }
    run(&mut host, 0, 10_000);
    host
}

/// The answer is generated report by report from a cursor over the groups: a record split
/// over reports resumes in the next one, which then fills up with the following groups, exactly
/// as packing the whole list would.
#[test]
fn an_answer_resumes_mid_record_and_packs_to_the_mtu() {
    let mut host = host_on(Config::default(), 3);
    let many: Vec<IpAddr> = (0..400u32)
        .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)))
        .collect();
    host.join_filter(
        IF,
        ip("232.1.1.1"),
        SourceFilter::include(many.clone()),
        t(0),
    )
    .unwrap();
    for i in 1..=200u32 {
        host.join(IF, group(i), t(0)).unwrap();
    }
    host.join_filter(IF, ip("239.9.9.9"), SourceFilter::exclude(many), t(0))
        .unwrap();
    run(&mut host, 0, 10_000);
    host.handle_packet(IF, &igmp_general_query(10), t(10_000))
        .unwrap();
    let sent = run(&mut host, 10_000, 20_000);
    let shapes: Vec<Vec<(String, usize)>> = sent.iter().map(|(_, tx)| shape(tx)).collect();
    let plain = |from: u32, to: u32| -> Vec<(String, usize)> {
        (from..=to)
            .map(|i| (format!("is_ex {}", group(i)), 0))
            .collect()
    };
    // 1468 bytes of records a report: IS_IN split 365 + 35 sources; then 8 bytes a group.
    let mut second = vec![("is_in 232.1.1.1".to_string(), 35)];
    second.extend(plain(1, 165));
    assert_eq!(
        shapes,
        [
            vec![("is_in 232.1.1.1".to_string(), 365)],
            second,
            plain(166, 200),
            vec![("is_ex 239.9.9.9".to_string(), 365)],
        ]
    );
    assert!(sent.iter().all(|(_, tx)| tx.to_packet().len() <= 1500));
}

/// 20,000 groups: 110 reports of 183 records. The first 8 go when the interface timer fires,
/// the other 102 evenly over what is left of the 10 s, the last before it ends; every group
/// once.
#[test]
fn a_large_answer_is_spread_over_what_is_left_of_max_resp_time() {
    const GROUPS: u32 = 20_000;
    let mut host = joined(Config::default(), GROUPS);
    host.handle_packet(IF, &igmp_general_query(100), t(10_000))
        .unwrap();
    let sent = run(&mut host, 10_000, 60_000);
    assert_eq!(sent.len(), 110);
    let mut seen = BTreeMap::new();
    for (_, tx) in &sent {
        for g in tx.groups() {
            *seen.entry(g).or_insert(0) += 1;
        }
    }
    assert_eq!(seen.len(), GROUPS as usize);
    assert!(seen.values().all(|&n| n == 1), "every group once");

    let fired = sent[0].0;
    let by = 20_000;
    assert!(sent[..8].iter().all(|(at, _)| *at == fired), "the burst");
    assert!(sent[8].0 > fired, "then paced");
    let last = sent.last().unwrap().0;
    assert!(
        last < by,
        "the last report at {last}, Max Resp Time ends at {by}"
    );
    // Even spacing: report k after the burst goes at fired + span * k / 103 (ms, floored).
    let span = by - fired;
    for (k, (at, _)) in sent[8..].iter().enumerate() {
        let want = fired + span * (k as u64 + 1) / 103;
        assert!(
            at.abs_diff(want) <= 1,
            "paced report {k} at {at}, want {want}"
        );
    }
}

#[test]
fn answer_burst_max_sends_the_whole_answer_at_once() {
    let config = Config::default().with_answer_burst(u32::MAX);
    let mut host = joined(config, 2_000);
    host.handle_packet(IF, &igmp_general_query(100), t(10_000))
        .unwrap();
    let sent = run(&mut host, 10_000, 60_000);
    assert_eq!(sent.len(), 11, "2000 records, 183 a report");
    assert!(sent.iter().all(|(at, _)| *at == sent[0].0));
}

/// A join while an answer is paced: its state-change report goes at once, not behind the
/// answer's reports.
#[test]
fn state_changes_are_not_held_back_by_a_paced_answer() {
    let mut host = joined(Config::default(), 20_000);
    host.handle_packet(IF, &igmp_general_query(100), t(10_000))
        .unwrap();
    let mut sent = Vec::new();
    while sent.len() < 20 {
        let at = host.poll_timeout().unwrap();
        host.handle_timeout(at);
        while let Some(tx) = host.poll_transmit() {
            sent.push(tx);
        }
    }
    let now = host.poll_timeout().unwrap();
    assert!(now < t(20_000), "the answer is still going");
    host.join(IF, ip("232.7.7.7"), now).unwrap();
    let mut at_once = Vec::new();
    host.handle_timeout(now);
    while let Some(tx) = host.poll_transmit() {
        at_once.push(tx);
    }
    assert_eq!(shape(&at_once[0]), [("to_ex 232.7.7.7".to_string(), 0)]);
}

/// An IGMPv2 querier heard mid-answer: the interface leaves v3 (RFC 9776 §7.2.1 cancels pending
/// responses), and the answer's remaining reports are not sent.
#[test]
fn an_older_querier_cancels_the_rest_of_a_paced_answer() {
    let mut host = joined(Config::default(), 20_000);
    host.handle_packet(IF, &igmp_general_query(100), t(10_000))
        .unwrap();
    let mut v3_reports = 0;
    while v3_reports < 20 {
        let at = host.poll_timeout().unwrap();
        host.handle_timeout(at);
        while host.poll_transmit().is_some() {
            v3_reports += 1;
        }
    }
    let now = host.poll_timeout().unwrap();
    let v2_query = IgmpRepr::Query {
        max_resp_code: 100,
        group: Ipv4Addr::new(239, 0, 0, 1),
    };
    let packet = build_ipv4(ROUTER4, Ipv4Addr::new(239, 0, 0, 1), &v2_query.to_bytes());
    host.handle_packet(IF, &packet, now).unwrap();
    let rest = run(&mut host, now.as_millis(), 30_000);
    assert!(
        rest.iter()
            .all(|(_, tx)| matches!(tx.message(), Message::Igmp(IgmpRepr::ReportV2 { .. }))),
        "no IGMPv3 report after the IGMPv2 query"
    );
    assert_eq!(rest.len(), 1, "the queried group's v2 report");
}

/// An interface removed mid-answer: nothing more is sent for it, and no timer of its answer
/// is left behind.
#[test]
fn removing_the_interface_ends_its_answer() {
    let mut host = joined(Config::default(), 20_000);
    host.handle_packet(IF, &igmp_general_query(100), t(10_000))
        .unwrap();
    let mut reports = 0;
    while reports < 20 {
        let at = host.poll_timeout().unwrap();
        host.handle_timeout(at);
        while host.poll_transmit().is_some() {
            reports += 1;
        }
    }
    let now = host.poll_timeout().unwrap();
    host.remove_interface(IF).unwrap();
    assert_eq!(host.poll_timeout(), None, "the answer's timer went with it");
    assert!(run(&mut host, now.as_millis(), 60_000).is_empty());
}

/// `Config::answer_margin`: every answer drawn to be out that long before the query's Max Resp
/// Time ends (the margin at most a tenth of it), in IGMPv3 and in IGMPv2 mode, and a paced
/// answer ends that much early too.
#[test]
fn the_answer_margin_brings_every_answer_forward() {
    let margin = std::time::Duration::from_millis(500);
    // (config, Max Resp Code, the window the answers must fall in, ms after the query)
    let cases = [
        (Config::default(), 100, 9_500),
        (Config::v2(), 100, 9_500),
        // 1 s: the margin is capped at a tenth of it.
        (Config::default(), 10, 900),
        (Config::v2(), 10, 900),
    ];
    for (config, code, window) in cases {
        let mut latest = 0;
        for seed in 0..200 {
            let mut host = host_on(config.clone().with_answer_margin(margin), seed);
            host.join(IF, group(1), t(0)).unwrap();
            run(&mut host, 0, 10_000);
            host.handle_packet(IF, &igmp_general_query(code), t(10_000))
                .unwrap();
            let sent = run(&mut host, 10_000, 40_000);
            assert_eq!(sent.len(), 1, "one answer (seed {seed})");
            latest = latest.max(sent[0].0 - 10_000);
        }
        assert!(
            (window * 9 / 10..window).contains(&latest),
            "code {code}: the latest of 200 answers {latest} ms after the query, window {window} ms"
        );
    }

    let mut host = joined(Config::default().with_answer_margin(margin), 20_000);
    host.handle_packet(IF, &igmp_general_query(100), t(10_000))
        .unwrap();
    let sent = run(&mut host, 10_000, 60_000);
    assert_eq!(sent.len(), 110);
    let last = sent.last().unwrap().0;
    assert!(
        (19_400..19_500).contains(&last),
        "the paced answer's last report at {last}"
    );
}

/// `Host::transmits_queued` counts the packets built and not yet taken: a driver's measure of
/// how far behind its writes are.
#[test]
fn transmits_queued_counts_the_built_packets_not_yet_taken() {
    let mut host = host_on(Config::default(), 3);
    assert_eq!(host.transmits_queued(), 0);
    for i in 1..=3 {
        host.join(IF, group(i), t(0)).unwrap();
    }
    let mut built = 0;
    while host.poll_transmit().is_some() {
        built += 1;
    }
    assert!(built >= 1);
    assert_eq!(host.transmits_queued(), 0, "all taken");
    // The retransmissions, due within the unsolicited interval: built when their timers fire.
    host.handle_timeout(t(1_000));
    let queued = host.transmits_queued();
    assert!(queued >= 1, "the retransmission built");
    assert!(host.poll_transmit().is_some());
    assert_eq!(host.transmits_queued(), queued - 1);
}
