//! RFC 3918 §6.1 Group Join Delay and §6.2 Group Leave Delay as one procedure, per host, all
//! groups at once, `iterations` times: with the traffic running, nothing may arrive for
//! `check_ms` ("forwarded without join"); join; the first datagram of each group is its join
//! delay; after `hold_ms` leave; the last datagram is its leave delay, and anything later
//! than the leave plus `leave_grace_ms`, for `check_ms`, is "forwarded after leave".
//!
//! Not built here: §7.1 group capacity and §5/§8 latency and burdened delays, which need the
//! daemon's own test streams.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::net::IpAddr;

use control::testrun::JoinLeaveSpec;

use super::{Action, Nanos, Probe, MS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not joined: any datagram is forwarded without a join.
    Before,
    Joined,
    Left,
    Over,
}

struct Prober<H> {
    host: H,
    iteration: u32,
    phase: Phase,
    /// This iteration's probes, one per group, from this index.
    first_probe: usize,
}

/// One join/leave delay run.
pub struct JoinLeave<H, L> {
    groups: Vec<IpAddr>,
    index: HashMap<IpAddr, usize>,
    iterations: u32,
    check: Nanos,
    hold: Nanos,
    grace: Nanos,
    probers: Vec<Prober<H>>,
    by_host: HashMap<H, usize>,
    /// The probers of each segment (link): a datagram read there is theirs.
    by_segment: HashMap<L, Vec<usize>>,
    deadlines: BinaryHeap<Reverse<(Nanos, usize)>>,
    probes: Vec<Probe<H>>,
    /// (host, group, iteration) joins written.
    joins_sent: u64,
    over: usize,
}

impl<H: Copy + Eq + Hash, L: Copy + Eq + Hash> JoinLeave<H, L> {
    /// `spec` (checked) on `hosts` (each with its segment) from `now`.
    pub fn new(spec: &JoinLeaveSpec, hosts: &[(H, L)], now: Nanos) -> Self {
        let mut run = JoinLeave {
            index: spec
                .groups
                .iter()
                .enumerate()
                .map(|(i, &g)| (g, i))
                .collect(),
            groups: spec.groups.clone(),
            iterations: spec.iterations,
            check: spec.check_ms * MS,
            hold: spec.hold_ms * MS,
            grace: spec.leave_grace_ms * MS,
            probers: Vec::with_capacity(hosts.len()),
            by_host: hosts
                .iter()
                .enumerate()
                .map(|(i, &(h, _))| (h, i))
                .collect(),
            by_segment: HashMap::new(),
            deadlines: BinaryHeap::with_capacity(hosts.len()),
            probes: Vec::new(),
            joins_sent: 0,
            over: 0,
        };
        for (p, &(host, segment)) in hosts.iter().enumerate() {
            run.by_segment.entry(segment).or_default().push(p);
            let first_probe = run.new_iteration(host, 0, now);
            run.probers.push(Prober {
                host,
                iteration: 0,
                phase: Phase::Before,
                first_probe,
            });
            run.deadlines.push(Reverse((now + run.check, p)));
        }
        run
    }

    /// The probes of `host`'s iteration `iteration`; the first one's index.
    fn new_iteration(&mut self, host: H, iteration: u32, at: Nanos) -> usize {
        let first = self.probes.len();
        for &group in &self.groups {
            self.probes.push(Probe {
                created: at,
                seq: iteration,
                from: Some(group),
                to: Some(group),
                ..Probe::new(host)
            });
        }
        first
    }

    pub fn next_deadline(&self) -> Option<Nanos> {
        self.deadlines.peek().map(|Reverse((at, _))| *at)
    }

    pub fn is_over(&self) -> bool {
        self.over == self.probers.len()
    }

    pub fn probes(&self) -> &[Probe<H>] {
        &self.probes
    }

    /// Joins written so far.
    pub fn joins_sent(&self) -> u64 {
        self.joins_sent
    }

    pub fn planned(&self) -> u64 {
        self.probers.len() as u64 * u64::from(self.iterations) * self.groups.len() as u64
    }

    pub fn due(&mut self, now: Nanos, out: &mut Vec<Action<H>>) {
        while let Some(&Reverse((at, p))) = self.deadlines.peek() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            if let Some(next) = self.step(p, at, out) {
                self.deadlines.push(Reverse((next, p)));
            }
        }
    }

    fn step(&mut self, p: usize, at: Nanos, out: &mut Vec<Action<H>>) -> Option<Nanos> {
        let host = self.probers[p].host;
        match self.probers[p].phase {
            Phase::Before => {
                self.probers[p].phase = Phase::Joined;
                out.extend(self.groups.iter().map(|&group| Action::Join {
                    host,
                    group,
                    source: None,
                }));
                Some(at + self.hold)
            }
            Phase::Joined => {
                self.probers[p].phase = Phase::Left;
                out.extend(
                    self.groups
                        .iter()
                        .map(|&group| Action::Leave { host, group }),
                );
                // The grace, then the check that nothing comes.
                Some(at + self.grace + self.check)
            }
            Phase::Left => {
                let iteration = self.probers[p].iteration + 1;
                if iteration >= self.iterations {
                    self.probers[p].phase = Phase::Over;
                    self.over += 1;
                    return None;
                }
                let first_probe = self.new_iteration(host, iteration, at);
                let prober = &mut self.probers[p];
                prober.iteration = iteration;
                prober.first_probe = first_probe;
                prober.phase = Phase::Before;
                Some(at + self.check)
            }
            Phase::Over => None,
        }
    }

    /// The probe of `host`'s current iteration for `group`, and the phase.
    fn probe(&mut self, host: H, group: IpAddr) -> Option<(&mut Probe<H>, Phase)> {
        let prober = &self.probers[*self.by_host.get(&host)?];
        let g = *self.index.get(&group)?;
        let phase = prober.phase;
        Some((&mut self.probes[prober.first_probe + g], phase))
    }

    pub fn report_sent(&mut self, host: H, group: IpAddr, at: Nanos) {
        if let Some((probe, Phase::Joined)) = self.probe(host, group) {
            if probe.join_sent.is_none() {
                probe.join_sent = Some(at);
                self.joins_sent += 1;
            }
        }
    }

    pub fn left(&mut self, host: H, group: IpAddr, at: Nanos) {
        if let Some((probe, Phase::Left)) = self.probe(host, group) {
            probe.leave_sent.get_or_insert(at);
        }
    }

    /// A datagram of `group` read on `segment` at `at`: each of its hosts' probe of the group.
    pub fn datagram(&mut self, segment: L, group: IpAddr, at: Nanos) {
        let (Some(probers), Some(&g)) = (self.by_segment.get(&segment), self.index.get(&group))
        else {
            return;
        };
        for &p in probers {
            let prober = &self.probers[p];
            let probe = &mut self.probes[prober.first_probe + g];
            match prober.phase {
                Phase::Before => probe.before_join_packets += 1,
                Phase::Joined | Phase::Left => {
                    if probe.join_sent.is_none_or(|sent| sent > at) {
                        continue;
                    }
                    probe.first_packet.get_or_insert(at);
                    probe.last_packet = probe.last_packet.max(Some(at));
                    if probe.leave_sent.is_some_and(|left| at > left + self.grace) {
                        probe.after_leave_packets += 1;
                    }
                }
                Phase::Over => {}
            }
        }
    }

    /// The groups held now: those of the hosts joined.
    pub fn held(&self, out: &mut Vec<Action<H>>) {
        for prober in &self.probers {
            if prober.phase == Phase::Joined {
                out.extend(self.groups.iter().map(|&group| Action::Leave {
                    host: prober.host,
                    group,
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use control::testrun::{Sla, TestSpec, DEFAULT_THRESHOLDS_MS};

    use super::super::TestRuns;
    use super::*;

    fn spec() -> JoinLeaveSpec {
        JoinLeaveSpec {
            name: "jl".into(),
            iface: None,
            hosts: None,
            groups: vec![IpAddr::from([239, 1, 1, 1]), IpAddr::from([239, 1, 1, 2])],
            iterations: 2,
            check_ms: 1000,
            hold_ms: 2000,
            leave_grace_ms: 3000,
            thresholds_ms: DEFAULT_THRESHOLDS_MS.to_vec(),
            streams: None,
            sla: Sla::default(),
        }
    }

    #[test]
    fn check_join_leave_check_and_again() {
        let mut runs = TestRuns::<u32, u32>::default();
        let mut out = Vec::new();
        // Host 7 on segment 70.
        runs.start(TestSpec::JoinLeave(spec()), vec![(7, 70)], 0, 0)
            .unwrap();
        let (g1, g2) = (IpAddr::from([239, 1, 1, 1]), IpAddr::from([239, 1, 1, 2]));
        // Forwarded before the join: a failure.
        runs.datagram(70, g1, 500 * MS);
        out.clear();
        runs.due(1000 * MS, &mut out);
        assert_eq!(
            out,
            vec![
                Action::Join {
                    host: 7,
                    group: g1,
                    source: None
                },
                Action::Join {
                    host: 7,
                    group: g2,
                    source: None
                }
            ]
        );
        runs.report_sent(7, g1, 1001 * MS);
        runs.report_sent(7, g2, 1001 * MS);
        runs.datagram(70, g1, 1011 * MS);
        runs.datagram(70, g2, 1021 * MS);
        out.clear();
        runs.due(3000 * MS, &mut out);
        assert_eq!(out.len(), 2, "both left");
        runs.left(7, g1, 3001 * MS);
        runs.left(7, g2, 3001 * MS);
        runs.datagram(70, g1, 3501 * MS);
        // g2 still forwarded past the grace.
        runs.datagram(70, g2, 6500 * MS);
        assert_eq!(runs.next_deadline(), Some(7000 * MS));
        // Iteration 2: clean.
        for (at, step) in [(7000, 0), (8000, 1), (10_000, 2), (14_000, 3)] {
            out.clear();
            runs.due(at * MS, &mut out);
            match step {
                1 => {
                    runs.report_sent(7, g1, 8001 * MS);
                    runs.report_sent(7, g2, 8001 * MS);
                    runs.datagram(70, g1, 8101 * MS);
                    runs.datagram(70, g2, 8101 * MS);
                }
                2 => {
                    runs.left(7, g1, 10_001 * MS);
                    runs.left(7, g2, 10_001 * MS);
                }
                _ => {}
            }
        }
        assert!(!runs.is_running());
        let report = runs
            .run(None)
            .unwrap()
            .report(0, &|h| h.to_string(), 10, true);
        assert_eq!(report.forwarded_without_join, 1);
        assert_eq!(report.forwarded_after_leave, 1);
        assert_eq!(report.join_delay.count, 4);
        assert_eq!(report.join_delay.min_ns, 10 * MS);
        assert_eq!(report.join_delay.max_ns, 100 * MS);
        assert_eq!(report.leave_delay.max_ns, 3499 * MS);
        assert_eq!(report.zaps_planned, 4);
        assert_eq!(report.verdict, control::testrun::Verdict::Fail);
        let failed: Vec<&str> = report
            .checks
            .iter()
            .filter(|c| !c.pass)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(failed, ["forwarded_without_join", "forwarded_after_leave"]);
    }
}
