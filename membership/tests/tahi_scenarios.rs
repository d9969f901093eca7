//! The state-change scenarios of TAHI's MLDv2 listener suite (sections 3.2-3.7, 6.1.a, 7.2.a)
//! in virtual time, each run for MLDv2 and, through the same engine, IGMPv3.
//!
//! A scenario names its sockets ("S1", "S2": owners, changed in one step with
//! `Host::set_filter`) and sources by number (1-4: 10.0.0.N / 2001:db8::N). Its expected
//! reports follow RFC 9777 §6.1 / RFC 9776 §5.1 with Robustness 2: each change is reported at
//! once, then retransmitted once within the Unsolicited Report Interval (1 s); a change made
//! before the retransmission is merged into it (a pending TO_IN / TO_EX goes out before the
//! sources changed since, and every report counts down every source).

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::{host_on, run_timers as run, t, ALL_HOSTS, ALL_NODES, IF, ROUTER4, ROUTER6};
use membership::wire::igmp::IgmpRepr;
use membership::wire::ip::{build_ipv4, build_ipv6};
use membership::wire::mld::MldRepr;
use membership::wire::GroupRecord;
use membership::{Config, Error, Host, Message, SourceFilter, Transmit};

/// What differs between the two runs of a scenario.
struct Family {
    name: &'static str,
    group: IpAddr,
    source: fn(u8) -> IpAddr,
    /// An IGMPv2 / MLDv1 General Query: puts the interface in the older mode.
    older_query: fn() -> Vec<u8>,
    /// A v3 query with Max Resp Time 10 s: general (`group` None) to all-systems, else to
    /// the group, with these sources.
    v3_query: fn(Option<IpAddr>, Vec<IpAddr>) -> Vec<u8>,
    /// Where v3 reports, older reports and Leave / Done go.
    v3_reports_to: IpAddr,
    leave_to: IpAddr,
}

fn families() -> [Family; 2] {
    [
        Family {
            name: "MLDv2",
            group: "ff15::1234".parse().unwrap(),
            source: |n| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n.into())),
            older_query: || {
                let q = MldRepr::Query {
                    max_resp_delay: 1000,
                    group: Ipv6Addr::UNSPECIFIED,
                };
                build_ipv6(ROUTER6, ALL_NODES, &q.to_bytes(&ROUTER6, &ALL_NODES))
            },
            v3_query: |group, sources| {
                let v6 = |a: IpAddr| match a {
                    IpAddr::V6(a) => a,
                    IpAddr::V4(_) => unreachable!(),
                };
                let q = MldRepr::QueryV2 {
                    max_resp_code: 10_000,
                    group: group.map_or(Ipv6Addr::UNSPECIFIED, v6),
                    suppress_router: false,
                    qrv: 2,
                    qqic: 125,
                    sources: sources.into_iter().map(v6).collect(),
                };
                let dst = group.map_or(ALL_NODES, v6);
                build_ipv6(ROUTER6, dst, &q.to_bytes(&ROUTER6, &dst))
            },
            v3_reports_to: "ff02::16".parse().unwrap(),
            leave_to: "ff02::2".parse().unwrap(),
        },
        Family {
            name: "IGMPv3",
            group: "232.1.1.1".parse().unwrap(),
            source: |n| IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)),
            older_query: || {
                let q = IgmpRepr::Query {
                    max_resp_code: 10,
                    group: Ipv4Addr::UNSPECIFIED,
                };
                build_ipv4(ROUTER4, ALL_HOSTS, &q.to_bytes())
            },
            v3_query: |group, sources| {
                let v4 = |a: IpAddr| match a {
                    IpAddr::V4(a) => a,
                    IpAddr::V6(_) => unreachable!(),
                };
                let q = IgmpRepr::QueryV3 {
                    max_resp_code: 100,
                    group: group.map_or(Ipv4Addr::UNSPECIFIED, v4),
                    suppress_router: false,
                    qrv: 2,
                    qqic: 125,
                    sources: sources.into_iter().map(v4).collect(),
                };
                build_ipv4(ROUTER4, group.map_or(ALL_HOSTS, v4), &q.to_bytes())
            },
            v3_reports_to: "224.0.0.22".parse().unwrap(),
            leave_to: "224.0.0.2".parse().unwrap(),
        },
    ]
}

/// One socket's filter change: (owner, INCLUDE?, sources). INCLUDE {} leaves.
type Op = (&'static str, bool, &'static [u8]);

const fn inc(owner: &'static str, sources: &'static [u8]) -> Op {
    (owner, true, sources)
}

const fn exc(owner: &'static str, sources: &'static [u8]) -> Op {
    (owner, false, sources)
}

struct Case {
    name: &'static str,
    /// Applied at 0 s and settled (every retransmission out) by 10 s.
    setup: &'static [Op],
    /// Applied one after the other at 10 s, before any retransmission.
    changes: &'static [Op],
    /// Every report from 10 s on, in order: its records, "allow{3} + block{1}".
    want: &'static [&'static str],
}

const A: &[u8] = &[1, 2];
const B: &[u8] = &[2, 3];
const C: &[u8] = &[3, 4];
const NULL: &[u8] = &[];

#[rustfmt::skip]
const CASES: &[Case] = &[
    // 3.2: one socket changes its filter in one step.
    Case { name: "3.2.a INCLUDE (A) to INCLUDE (NULL)", setup: &[inc("S1", A)], changes: &[inc("S1", NULL)],
        want: &["block{1,2}", "block{1,2}"] },
    Case { name: "3.2.b INCLUDE (A) to INCLUDE (B)", setup: &[inc("S1", A)], changes: &[inc("S1", B)],
        want: &["allow{3} + block{1}", "allow{3} + block{1}"] },
    Case { name: "3.2.c INCLUDE (A) to EXCLUDE (NULL)", setup: &[inc("S1", A)], changes: &[exc("S1", NULL)],
        want: &["to_ex{}", "to_ex{}"] },
    Case { name: "3.2.d INCLUDE (A) to EXCLUDE (B)", setup: &[inc("S1", A)], changes: &[exc("S1", B)],
        want: &["to_ex{2,3}", "to_ex{2,3}"] },
    Case { name: "3.2.e EXCLUDE (NULL) to INCLUDE (NULL)", setup: &[exc("S1", NULL)], changes: &[inc("S1", NULL)],
        want: &["to_in{}", "to_in{}"] },
    Case { name: "3.2.f EXCLUDE (NULL) to INCLUDE (A)", setup: &[exc("S1", NULL)], changes: &[inc("S1", A)],
        want: &["to_in{1,2}", "to_in{1,2}"] },
    Case { name: "3.2.g EXCLUDE (NULL) to EXCLUDE (NULL)", setup: &[exc("S1", NULL)], changes: &[exc("S1", NULL)],
        want: &[] },
    Case { name: "3.2.h EXCLUDE (NULL) to EXCLUDE (A)", setup: &[exc("S1", NULL)], changes: &[exc("S1", A)],
        want: &["block{1,2}", "block{1,2}"] },
    Case { name: "3.2.i EXCLUDE (A) to INCLUDE (NULL)", setup: &[exc("S1", A)], changes: &[inc("S1", NULL)],
        want: &["to_in{}", "to_in{}"] },
    Case { name: "3.2.j EXCLUDE (A) to INCLUDE (B)", setup: &[exc("S1", A)], changes: &[inc("S1", B)],
        want: &["to_in{2,3}", "to_in{2,3}"] },
    Case { name: "3.2.k EXCLUDE (A) to EXCLUDE (NULL)", setup: &[exc("S1", A)], changes: &[exc("S1", NULL)],
        want: &["allow{1,2}", "allow{1,2}"] },
    Case { name: "3.2.l EXCLUDE (A) to EXCLUDE (B)", setup: &[exc("S1", A)], changes: &[exc("S1", B)],
        want: &["allow{1} + block{3}", "allow{1} + block{3}"] },
    // 3.4: one socket changes while another holds its filter.
    Case { name: "3.4.a INCLUDE (A) + INCLUDE (B) to INCLUDE (NULL) + INCLUDE (B)", setup: &[inc("S1", A), inc("S2", B)],
        changes: &[inc("S1", NULL)], want: &["block{1}", "block{1}"] },
    Case { name: "3.4.b INCLUDE (A) + INCLUDE (B) to INCLUDE (C) + INCLUDE (B)", setup: &[inc("S1", A), inc("S2", B)],
        changes: &[inc("S1", C)], want: &["allow{4} + block{1}", "allow{4} + block{1}"] },
    Case { name: "3.4.c INCLUDE (A) + INCLUDE (B) to EXCLUDE (NULL) + INCLUDE (B)", setup: &[inc("S1", A), inc("S2", B)],
        changes: &[exc("S1", NULL)], want: &["to_ex{}", "to_ex{}"] },
    Case { name: "3.4.d INCLUDE (A) + INCLUDE (B) to EXCLUDE (C) + INCLUDE (B)", setup: &[inc("S1", A), inc("S2", B)],
        changes: &[exc("S1", C)], want: &["to_ex{4}", "to_ex{4}"] },
    Case { name: "3.4.e INCLUDE (A) + EXCLUDE (B) to INCLUDE (NULL) + EXCLUDE (B)", setup: &[inc("S1", A), exc("S2", B)],
        changes: &[inc("S1", NULL)], want: &["block{2}", "block{2}"] },
    Case { name: "3.4.f INCLUDE (A) + EXCLUDE (B) to INCLUDE (C) + EXCLUDE (B)", setup: &[inc("S1", A), exc("S2", B)],
        changes: &[inc("S1", C)], want: &["allow{3} + block{2}", "allow{3} + block{2}"] },
    Case { name: "3.4.g INCLUDE (A) + EXCLUDE (B) to EXCLUDE (NULL) + EXCLUDE (B)", setup: &[inc("S1", A), exc("S2", B)],
        changes: &[exc("S1", NULL)], want: &["allow{3}", "allow{3}"] },
    Case { name: "3.4.h INCLUDE (A) + EXCLUDE (B) to EXCLUDE (C) + EXCLUDE (B)", setup: &[inc("S1", A), exc("S2", B)],
        changes: &[exc("S1", C)], want: &[] },
    // 3.5: one socket changes twice, the second time before the first change's retransmission.
    Case { name: "3.5.a INCLUDE (A) -> INCLUDE (B) -> INCLUDE (NULL)", setup: &[inc("S1", A)],
        changes: &[inc("S1", B), inc("S1", NULL)], want: &["allow{3} + block{1}", "block{1,2,3}", "block{2,3}"] },
    Case { name: "3.5.b INCLUDE (A) -> INCLUDE (B) -> INCLUDE (C)", setup: &[inc("S1", A)],
        changes: &[inc("S1", B), inc("S1", C)], want: &["allow{3} + block{1}", "allow{3,4} + block{1,2}", "allow{4} + block{2}"] },
    Case { name: "3.5.c INCLUDE (A) -> INCLUDE (B) -> EXCLUDE (NULL)", setup: &[inc("S1", A)],
        changes: &[inc("S1", B), exc("S1", NULL)], want: &["allow{3} + block{1}", "to_ex{}", "to_ex{}"] },
    Case { name: "3.5.d INCLUDE (A) -> INCLUDE (B) -> EXCLUDE (C)", setup: &[inc("S1", A)],
        changes: &[inc("S1", B), exc("S1", C)], want: &["allow{3} + block{1}", "to_ex{3,4}", "to_ex{3,4}"] },
    Case { name: "3.5.e INCLUDE (NULL) -> EXCLUDE (A) -> INCLUDE (NULL)", setup: &[],
        changes: &[exc("S1", A), inc("S1", NULL)], want: &["to_ex{1,2}", "to_in{}", "to_in{}"] },
    Case { name: "3.5.f INCLUDE (NULL) -> EXCLUDE (A) -> INCLUDE (B)", setup: &[],
        changes: &[exc("S1", A), inc("S1", B)], want: &["to_ex{1,2}", "to_in{2,3}", "to_in{2,3}"] },
    Case { name: "3.5.g INCLUDE (NULL) -> EXCLUDE (A) -> EXCLUDE (NULL)", setup: &[],
        changes: &[exc("S1", A), exc("S1", NULL)], want: &["to_ex{1,2}", "to_ex{}", "allow{1,2}"] },
    Case { name: "3.5.h INCLUDE (NULL) -> EXCLUDE (A) -> EXCLUDE (B)", setup: &[],
        changes: &[exc("S1", A), exc("S1", B)], want: &["to_ex{1,2}", "to_ex{2,3}", "allow{1} + block{3}"] },
    Case { name: "3.5.i EXCLUDE (NULL) -> INCLUDE (A) -> INCLUDE (NULL)", setup: &[exc("S1", NULL)],
        changes: &[inc("S1", A), inc("S1", NULL)], want: &["to_in{1,2}", "to_in{}", "block{1,2}"] },
    Case { name: "3.5.j EXCLUDE (NULL) -> INCLUDE (A) -> INCLUDE (B)", setup: &[exc("S1", NULL)],
        changes: &[inc("S1", A), inc("S1", B)], want: &["to_in{1,2}", "to_in{2,3}", "allow{3} + block{1}"] },
    Case { name: "3.5.k EXCLUDE (NULL) -> INCLUDE (A) -> EXCLUDE (NULL)", setup: &[exc("S1", NULL)],
        changes: &[inc("S1", A), exc("S1", NULL)], want: &["to_in{1,2}", "to_ex{}", "to_ex{}"] },
    Case { name: "3.5.l EXCLUDE (NULL) -> INCLUDE (A) -> EXCLUDE (B)", setup: &[exc("S1", NULL)],
        changes: &[inc("S1", A), exc("S1", B)], want: &["to_in{1,2}", "to_ex{2,3}", "to_ex{2,3}"] },
    Case { name: "3.5.m EXCLUDE (A) -> EXCLUDE (B) -> INCLUDE (NULL)", setup: &[exc("S1", A)],
        changes: &[exc("S1", B), inc("S1", NULL)], want: &["allow{1} + block{3}", "to_in{}", "to_in{}"] },
    Case { name: "3.5.n EXCLUDE (A) -> EXCLUDE (B) -> INCLUDE (C)", setup: &[exc("S1", A)],
        changes: &[exc("S1", B), inc("S1", C)], want: &["allow{1} + block{3}", "to_in{3,4}", "to_in{3,4}"] },
    Case { name: "3.5.o EXCLUDE (A) -> EXCLUDE (B) -> EXCLUDE (NULL)", setup: &[exc("S1", A)],
        changes: &[exc("S1", B), exc("S1", NULL)], want: &["allow{1} + block{3}", "allow{1,2,3}", "allow{2,3}"] },
    Case { name: "3.5.p EXCLUDE (A) -> EXCLUDE (B) -> EXCLUDE (C)", setup: &[exc("S1", A)],
        changes: &[exc("S1", B), exc("S1", C)], want: &["allow{1} + block{3}", "allow{1,2} + block{3,4}", "allow{2} + block{4}"] },
    // 3.6: a second socket joins, then the first changes before the retransmission.
    Case { name: "3.6.d INCLUDE (A) -> + INCLUDE (B) -> INCLUDE (NULL) + INCLUDE (B)", setup: &[inc("S1", A)],
        changes: &[inc("S2", B), inc("S1", NULL)], want: &["allow{3}", "allow{3} + block{1}", "block{1}"] },
    Case { name: "3.6.e INCLUDE (A) -> + INCLUDE (B) -> INCLUDE (C) + INCLUDE (B)", setup: &[inc("S1", A)],
        changes: &[inc("S2", B), inc("S1", C)], want: &["allow{3}", "allow{3,4} + block{1}", "allow{4} + block{1}"] },
    Case { name: "3.6.f INCLUDE (A) -> + INCLUDE (B) -> EXCLUDE (NULL) + INCLUDE (B)", setup: &[inc("S1", A)],
        changes: &[inc("S2", B), exc("S1", NULL)], want: &["allow{3}", "to_ex{}", "to_ex{}"] },
    Case { name: "3.6.g INCLUDE (A) -> + INCLUDE (B) -> EXCLUDE (C) + INCLUDE (B)", setup: &[inc("S1", A)],
        changes: &[inc("S2", B), exc("S1", C)], want: &["allow{3}", "to_ex{4}", "to_ex{4}"] },
    Case { name: "3.6.h INCLUDE (A) -> + EXCLUDE (B) -> INCLUDE (NULL) + EXCLUDE (B)", setup: &[inc("S1", A)],
        changes: &[exc("S2", B), inc("S1", NULL)], want: &["to_ex{3}", "to_ex{2,3}", "block{2}"] },
    Case { name: "3.6.i INCLUDE (A) -> + EXCLUDE (B) -> INCLUDE (C) + EXCLUDE (B)", setup: &[inc("S1", A)],
        changes: &[exc("S2", B), inc("S1", C)], want: &["to_ex{3}", "to_ex{2}", "allow{3} + block{2}"] },
    Case { name: "3.6.j INCLUDE (A) -> + EXCLUDE (B) -> EXCLUDE (NULL) + EXCLUDE (B)", setup: &[inc("S1", A)],
        changes: &[exc("S2", B), exc("S1", NULL)], want: &["to_ex{3}", "to_ex{}", "allow{3}"] },
    // The interface state does not change (EXCLUDE (C ∩ B) = EXCLUDE {3}): no new report.
    Case { name: "3.6.k INCLUDE (A) -> + EXCLUDE (B) -> EXCLUDE (C) + EXCLUDE (B)", setup: &[inc("S1", A)],
        changes: &[exc("S2", B), exc("S1", C)], want: &["to_ex{3}", "to_ex{3}"] },
    // 3.7: the same from an EXCLUDE start.
    Case { name: "3.7.a INCLUDE (NULL) -> EXCLUDE (A) -> + INCLUDE (B)", setup: &[],
        changes: &[exc("S1", A), inc("S2", B)], want: &["to_ex{1,2}", "to_ex{1}", "allow{2}"] },
    Case { name: "3.7.b INCLUDE (NULL) -> EXCLUDE (A) -> + EXCLUDE (NULL)", setup: &[],
        changes: &[exc("S1", A), exc("S2", NULL)], want: &["to_ex{1,2}", "to_ex{}", "allow{1,2}"] },
    Case { name: "3.7.c INCLUDE (NULL) -> EXCLUDE (A) -> + EXCLUDE (B)", setup: &[],
        changes: &[exc("S1", A), exc("S2", B)], want: &["to_ex{1,2}", "to_ex{2}", "allow{1}"] },
    Case { name: "3.7.e EXCLUDE (A) -> + INCLUDE (B) -> INCLUDE (C) + INCLUDE (B)", setup: &[exc("S1", A)],
        changes: &[inc("S2", B), inc("S1", C)], want: &["allow{2}", "to_in{2,3,4}", "to_in{2,3,4}"] },
    Case { name: "3.7.f EXCLUDE (A) -> + INCLUDE (B) -> EXCLUDE (NULL) + INCLUDE (B)", setup: &[exc("S1", A)],
        changes: &[inc("S2", B), exc("S1", NULL)], want: &["allow{2}", "allow{1,2}", "allow{1}"] },
    Case { name: "3.7.g EXCLUDE (A) -> + INCLUDE (B) -> EXCLUDE (C) + INCLUDE (B)", setup: &[exc("S1", A)],
        changes: &[inc("S2", B), exc("S1", C)], want: &["allow{2}", "allow{1,2} + block{4}", "allow{1} + block{4}"] },
    // The interface state does not change (EXCLUDE (B − C) = EXCLUDE {2}): no new report.
    Case { name: "3.7.i EXCLUDE (A) -> + EXCLUDE (B) -> INCLUDE (C) + EXCLUDE (B)", setup: &[exc("S1", A)],
        changes: &[exc("S2", B), inc("S1", C)], want: &["allow{1}", "allow{1}"] },
    Case { name: "3.7.j EXCLUDE (A) -> + EXCLUDE (B) -> EXCLUDE (NULL) + EXCLUDE (B)", setup: &[exc("S1", A)],
        changes: &[exc("S2", B), exc("S1", NULL)], want: &["allow{1}", "allow{1,2}", "allow{2}"] },
    Case { name: "3.7.k EXCLUDE (A) -> + EXCLUDE (B) -> EXCLUDE (C) + EXCLUDE (B)", setup: &[exc("S1", A)],
        changes: &[exc("S2", B), exc("S1", C)], want: &["allow{1}", "allow{1,2} + block{3}", "allow{2} + block{3}"] },
    // Two cases with the suite's own source sets and its expected reports, word for word.
    Case { name: "3.7.c as the suite runs it", setup: &[],
        changes: &[exc("S1", &[1, 3]), exc("S2", &[2, 3])], want: &["to_ex{1,3}", "to_ex{3}", "allow{1}"] },
    Case { name: "3.7.i as the suite runs it", setup: &[exc("S1", &[1, 4, 5, 7])],
        changes: &[exc("S2", &[2, 4, 6, 7]), inc("S1", &[3, 5, 6, 7])],
        want: &["allow{1,5}", "allow{1,5,7} + block{2}", "allow{7} + block{2}"] },
];

fn apply(host: &mut Host, fam: &Family, (owner, include, sources): Op, at: u64) {
    let sources = sources.iter().map(|&n| (fam.source)(n)).collect();
    let filter = if include {
        SourceFilter::include(sources)
    } else {
        SourceFilter::exclude(sources)
    };
    host.set_filter(IF, fam.group, owner, filter, t(at))
        .unwrap_or_else(|e| panic!("{}: {owner}: {e}", fam.name));
}

/// A v3 report's records as "to_ex{1,2} + allow{3}", sources by number.
fn render(fam: &Family, tx: &Transmit) -> String {
    assert_eq!(tx.dst(), fam.v3_reports_to, "{}", fam.name);
    let records: Vec<GroupRecord<IpAddr>> = match tx.message() {
        Message::Igmp(IgmpRepr::ReportV3 { records }) => records
            .iter()
            .map(|r| GroupRecord {
                kind: r.kind,
                group: IpAddr::V4(r.group),
                sources: r.sources.iter().map(|&s| IpAddr::V4(s)).collect(),
                aux_data: Vec::new(),
            })
            .collect(),
        Message::Mld(MldRepr::ReportV2 { records }) => records
            .iter()
            .map(|r| GroupRecord {
                kind: r.kind,
                group: IpAddr::V6(r.group),
                sources: r.sources.iter().map(|&s| IpAddr::V6(s)).collect(),
                aux_data: Vec::new(),
            })
            .collect(),
        other => panic!("{}: not a v3 report: {other:?}", fam.name),
    };
    let number = |s: &IpAddr| (1..=9).find(|&n| (fam.source)(n) == *s).unwrap();
    records
        .iter()
        .map(|r| {
            assert_eq!(r.group, fam.group);
            let sources: Vec<String> = r.sources.iter().map(|s| number(s).to_string()).collect();
            format!("{}{{{}}}", r.kind, sources.join(","))
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

#[test]
fn tahi_state_change_scenarios_for_both_families() {
    for fam in families() {
        for case in CASES {
            let what = format!("{} {}", fam.name, case.name);
            let mut host = host_on(Config::default(), 5);
            for &op in case.setup {
                apply(&mut host, &fam, op, 0);
            }
            run(&mut host, 10_000);
            let mut got = Vec::new();
            for &op in case.changes {
                apply(&mut host, &fam, op, 10_000);
                host.handle_timeout(t(10_000));
                while let Some(tx) = host.poll_transmit() {
                    got.push((10_000, tx));
                }
            }
            got.extend(run(&mut host, 30_000));
            let reports: Vec<String> = got.iter().map(|(_, tx)| render(&fam, tx)).collect();
            assert_eq!(reports, case.want, "{what}");
            // Each change at once, the retransmission within the Unsolicited Report Interval,
            // then nothing.
            assert!(
                got.iter().all(|(at, _)| (10_000..=11_000).contains(at)),
                "{what}: {:?}",
                got.iter().map(|(at, _)| at).collect::<Vec<_>>()
            );
            assert!(
                host.poll_timeout().is_none(),
                "{what}: nothing left to send"
            );
        }
    }
}

/// TAHI 4.10.g-l: a query, then one socket's filter changed before the answer is due. The
/// change is reported at once and retransmitted; the answer, due within the Max Resp Time
/// (10 s), carries the state at the time it is sent (RFC 9777 §6.3, RFC 9776 §5.2): a
/// query's answer is built when its timer fires, not when the query arrives.
#[test]
fn tahi_query_then_state_update_for_both_families() {
    /// (name, query: None general / Some(sources) group(-and-source)-specific, change,
    /// state-change reports, the answer)
    type QueryCase = (
        &'static str,
        Option<&'static [u8]>,
        Op,
        &'static [&'static str],
        &'static str,
    );
    #[rustfmt::skip]
    let cases: &[QueryCase] = &[
        ("4.10.g general, INCLUDE (A) -> INCLUDE (B)", None, inc("S1", B),
            &["allow{3} + block{1}", "allow{3} + block{1}"], "is_in{2,3}"),
        ("4.10.h group-specific, INCLUDE (A) -> INCLUDE (B)", Some(&[]), inc("S1", B),
            &["allow{3} + block{1}", "allow{3} + block{1}"], "is_in{2,3}"),
        ("4.10.i group-and-source-specific {1,3}, INCLUDE (A) -> INCLUDE (B)", Some(&[1, 3]), inc("S1", B),
            &["allow{3} + block{1}", "allow{3} + block{1}"], "is_in{3}"),
        ("4.10.j general, INCLUDE (A) -> EXCLUDE (B)", None, exc("S1", B),
            &["to_ex{2,3}", "to_ex{2,3}"], "is_ex{2,3}"),
        ("4.10.k group-specific, INCLUDE (A) -> EXCLUDE (B)", Some(&[]), exc("S1", B),
            &["to_ex{2,3}", "to_ex{2,3}"], "is_ex{2,3}"),
        ("4.10.l group-and-source-specific {1,3}, INCLUDE (A) -> EXCLUDE (B)", Some(&[1, 3]), exc("S1", B),
            &["to_ex{2,3}", "to_ex{2,3}"], "is_in{1}"),
    ];
    for fam in families() {
        for &(name, query, change, want_changes, want_answer) in cases {
            let what = format!("{} {name}", fam.name);
            let mut host = host_on(Config::default(), 21);
            apply(&mut host, &fam, inc("S1", A), 0);
            run(&mut host, 10_000);
            let packet = match query {
                None => (fam.v3_query)(None, Vec::new()),
                Some(sources) => (fam.v3_query)(
                    Some(fam.group),
                    sources.iter().map(|&n| (fam.source)(n)).collect(),
                ),
            };
            host.handle_packet(IF, &packet, t(10_000)).unwrap();
            apply(&mut host, &fam, change, 10_000);
            let mut got = Vec::new();
            host.handle_timeout(t(10_000));
            while let Some(tx) = host.poll_transmit() {
                got.push((10_000, tx));
            }
            got.extend(run(&mut host, 40_000));
            let (answers, changes): (Vec<_>, Vec<_>) = got
                .iter()
                .map(|(at, tx)| (*at, render(&fam, tx)))
                .partition(|(_, r)| r.starts_with("is_"));
            let changes: Vec<&str> = changes.iter().map(|(_, r)| r.as_str()).collect();
            assert_eq!(changes, want_changes, "{what}");
            assert_eq!(answers.len(), 1, "{what}: {answers:?}");
            assert_eq!(answers[0].1, want_answer, "{what}");
            assert!(
                (10_000..=20_000).contains(&answers[0].0),
                "{what}: {answers:?}"
            );
        }
    }
}

/// Puts the interface in the older mode (IGMPv2 / MLDv1) at `at`.
fn older_querier(host: &mut Host, fam: &Family, at: u64) {
    host.handle_packet(IF, &(fam.older_query)(), t(at)).unwrap();
}

fn is_older_report(fam: &Family, tx: &Transmit) -> bool {
    match tx.message() {
        Message::Igmp(IgmpRepr::ReportV2 { group }) => IpAddr::V4(*group) == fam.group,
        Message::Mld(MldRepr::Report { group }) => IpAddr::V6(*group) == fam.group,
        _ => false,
    }
}

fn is_leave(fam: &Family, tx: &Transmit) -> bool {
    let group = match tx.message() {
        Message::Igmp(IgmpRepr::Leave { group }) => IpAddr::V4(*group),
        Message::Mld(MldRepr::Done { group }) => IpAddr::V6(*group),
        _ => return false,
    };
    group == fam.group && tx.dst() == fam.leave_to
}

/// TAHI 6.1.a: a group joined INCLUDE {S1} in the older mode was reported with older reports,
/// which the router holds as (*,G), EXCLUDE {} (RFC 9777 §8.3.2, RFC 9776 §7.3.2). Left once
/// the Older Version Querier Present timer has run out, it sends TO_IN {}, which ends that
/// state, not BLOCK {S1}, which would leave it.
#[test]
fn leaving_after_the_compatibility_period_sends_to_in_nothing() {
    for fam in families() {
        let mut host = host_on(Config::default(), 9);
        older_querier(&mut host, &fam, 0);
        apply(&mut host, &fam, inc("S1", &[1]), 1_000);
        let mut sent = Vec::new();
        host.handle_timeout(t(1_000));
        while let Some(tx) = host.poll_transmit() {
            sent.push(tx);
        }
        sent.extend(run(&mut host, 20_000).into_iter().map(|(_, tx)| tx));
        assert_eq!(sent.len(), 2, "{}: two unsolicited older reports", fam.name);
        assert!(
            sent.iter().all(|tx| is_older_report(&fam, tx)),
            "{}",
            fam.name
        );
        // 2 × 125 s + 10 s after the query the host is a v3 host again.
        assert!(run(&mut host, 270_000).is_empty(), "{}", fam.name);
        apply(&mut host, &fam, inc("S1", &[]), 270_000);
        let mut got = Vec::new();
        host.handle_timeout(t(270_000));
        while let Some(tx) = host.poll_transmit() {
            got.push((270_000, tx));
        }
        got.extend(run(&mut host, 280_000));
        let reports: Vec<String> = got.iter().map(|(_, tx)| render(&fam, tx)).collect();
        assert_eq!(reports, ["to_in{}", "to_in{}"], "{}", fam.name);
    }
}

/// The same rule for a change that keeps the group: INCLUDE {S1} → INCLUDE {S1, S2} after the
/// compatibility period is a filter-mode change from the router's (*,G): TO_IN {1,2}. Only the
/// first change is reported that way; the next one is an ordinary source-list change.
#[test]
fn the_first_change_after_the_compatibility_period_starts_from_any_source() {
    for fam in families() {
        let mut host = host_on(Config::default(), 9);
        apply(&mut host, &fam, inc("S1", &[1]), 0);
        run(&mut host, 10_000);
        older_querier(&mut host, &fam, 10_000);
        run(&mut host, 300_000);
        apply(&mut host, &fam, inc("S1", &[1, 2]), 300_000);
        let mut got = Vec::new();
        host.handle_timeout(t(300_000));
        while let Some(tx) = host.poll_transmit() {
            got.push((300_000, tx));
        }
        got.extend(run(&mut host, 310_000));
        apply(&mut host, &fam, inc("S1", &[2]), 310_000);
        host.handle_timeout(t(310_000));
        while let Some(tx) = host.poll_transmit() {
            got.push((310_000, tx));
        }
        got.extend(run(&mut host, 320_000));
        let reports: Vec<String> = got.iter().map(|(_, tx)| render(&fam, tx)).collect();
        assert_eq!(
            reports,
            ["to_in{1,2}", "to_in{1,2}", "block{1}", "block{1}"],
            "{}",
            fam.name
        );
    }
}

/// TAHI 7.2.a: in the older mode a leave sends a single Done / Leave. RFC 2710 §4: a node
/// "SHOULD send a single Done message"; RFC 2236 §3 sends one Leave Group message; RFC 9777
/// §8.2 and RFC 9776 §7.2 only say that the older protocol is used in the older mode, so its
/// rule holds (the suite's own text for 7.2.a says "a single MLDv1 Done message").
#[test]
fn older_mode_leaves_send_one_done_or_leave() {
    for fam in families() {
        let mut host = host_on(Config::default(), 3);
        older_querier(&mut host, &fam, 0);
        apply(&mut host, &fam, inc("S1", &[1]), 1_000);
        run(&mut host, 20_000);
        apply(&mut host, &fam, inc("S1", &[]), 20_000);
        let mut sent = Vec::new();
        host.handle_timeout(t(20_000));
        while let Some(tx) = host.poll_transmit() {
            sent.push(tx);
        }
        sent.extend(run(&mut host, 100_000).into_iter().map(|(_, tx)| tx));
        assert_eq!(sent.len(), 1, "{}: {sent:?}", fam.name);
        assert!(is_leave(&fam, &sent[0]), "{}", fam.name);
    }
}

/// One owner's change touches its own request only, bad input changes nothing, and the
/// anonymous leave leaves owned requests alone.
#[test]
fn owners_change_their_own_filters_only() {
    let fam = &families()[0];
    let mut host = host_on(Config::default(), 1);
    apply(&mut host, fam, inc("S1", &[1]), 0);
    apply(&mut host, fam, inc("S2", &[2]), 0);
    host.join_filter(
        IF,
        fam.group,
        SourceFilter::include(vec![(fam.source)(3)]),
        t(0),
    )
    .unwrap();
    run(&mut host, 10_000);
    let info = host.group(IF, fam.group, t(10_000)).unwrap();
    assert_eq!(info.owners, [Some("S1".into()), Some("S2".into()), None]);
    assert_eq!(info.users, 3);
    let before = host.groups(t(10_000));
    let bad: Vec<(&str, SourceFilter, Error)> = vec![
        (
            "",
            SourceFilter::exclude(vec![]),
            Error::BadOwner("".into()),
        ),
        (
            "two words",
            SourceFilter::exclude(vec![]),
            Error::BadOwner("two words".into()),
        ),
        (
            "S9",
            SourceFilter::include(vec![]),
            Error::NoSuchOwner("S9".into()),
        ),
        (
            "S1",
            SourceFilter::include(vec![ip4()]),
            Error::BadSource(ip4()),
        ),
    ];
    for (owner, filter, err) in bad {
        assert_eq!(
            host.set_filter(IF, fam.group, owner, filter, t(10_000)),
            Err(err)
        );
    }
    assert_eq!(
        host.groups(t(10_000)),
        before,
        "refused changes change nothing"
    );
    assert!(run(&mut host, 20_000).is_empty());
    // The anonymous leave drops S3 (its only anonymous request), not the owners' sources.
    host.leave_filter(
        IF,
        fam.group,
        SourceFilter::include(vec![(fam.source)(1), (fam.source)(3)]),
        t(20_000),
    )
    .unwrap();
    let mut sent = Vec::new();
    host.handle_timeout(t(20_000));
    while let Some(tx) = host.poll_transmit() {
        sent.push(tx);
    }
    assert_eq!(render(fam, &sent[0]), "block{3}");
    let info = host.group(IF, fam.group, t(20_000)).unwrap();
    assert_eq!(info.owners, [Some("S1".into()), Some("S2".into())]);
}

fn ip4() -> IpAddr {
    "10.0.0.1".parse().unwrap()
}
