//! RFC 3918 §7.1 multicast group capacity: one host joins groups in steps while the run's
//! streams send on every group; at the end of each step every group joined must have been
//! forwarded (a datagram within the window, loss within the limit). The first step that fails
//! ends the run: the capacity is the step before it (or every group, the step limit).

use std::collections::HashMap;
use std::net::IpAddr;

use control::test_capacity::{CapacityResult, CapacitySpec, CapacityStep};

use super::{Action, Nanos, Probe, MS};

/// One group's datagrams in the current step.
#[derive(Debug, Clone, Copy, Default)]
struct GroupStep {
    /// The first sequence number read in the step, and the highest.
    first: Option<u64>,
    highest: u64,
    received: u64,
    last_at: Option<Nanos>,
}

impl GroupStep {
    fn lost(&self) -> u64 {
        self.first.map_or(0, |first| {
            (self.highest.saturating_sub(first) + 1).saturating_sub(self.received)
        })
    }
}

/// A capacity run.
pub struct Capacity<H, L> {
    host: H,
    segment: L,
    groups: Vec<IpAddr>,
    index: HashMap<IpAddr, usize>,
    /// The group counts of the steps, and the step going on.
    steps: Vec<u32>,
    step: usize,
    step_ms: Nanos,
    window: Nanos,
    max_loss: u64,
    /// Groups joined so far (the first `joined` of `groups`).
    joined: u32,
    current: Vec<GroupStep>,
    /// When the step's verdict is due; `None` before the first step and once over.
    deadline: Option<Nanos>,
    started: bool,
    over: bool,
    result: CapacityResult,
}

impl<H: Copy, L: Copy + PartialEq> Capacity<H, L> {
    pub fn new(spec: &CapacitySpec, host: (H, L)) -> Capacity<H, L> {
        let groups = spec.groups();
        Capacity {
            host: host.0,
            segment: host.1,
            index: groups.iter().enumerate().map(|(i, &g)| (g, i)).collect(),
            current: vec![GroupStep::default(); groups.len()],
            groups,
            steps: spec.steps(),
            step: 0,
            step_ms: spec.step_ms * MS,
            window: spec.window_ms * MS,
            max_loss: spec.max_loss_per_group,
            joined: 0,
            deadline: None,
            started: false,
            over: false,
            result: CapacityResult::default(),
        }
    }

    pub fn next_deadline(&self) -> Option<Nanos> {
        match (self.started, self.over) {
            (false, _) => Some(0),
            (_, true) => None,
            _ => self.deadline,
        }
    }

    /// Joins the groups of step `self.step` and starts its clock.
    fn begin_step(&mut self, now: Nanos, out: &mut Vec<Action<H>>) {
        let target = self.steps[self.step];
        for i in self.joined..target {
            out.push(Action::Join {
                host: self.host,
                group: self.groups[i as usize],
                source: None,
            });
        }
        self.joined = target;
        for g in &mut self.current {
            *g = GroupStep::default();
        }
        self.deadline = Some(now + self.step_ms);
    }

    fn finish(&mut self, out: &mut Vec<Action<H>>) {
        self.held(out);
        self.over = true;
        self.deadline = None;
    }

    pub fn due(&mut self, now: Nanos, out: &mut Vec<Action<H>>) {
        if self.over {
            return;
        }
        if !self.started {
            self.started = true;
            self.begin_step(now, out);
            return;
        }
        let Some(deadline) = self.deadline.filter(|&d| d <= now) else {
            return;
        };
        let since = deadline.saturating_sub(self.window);
        let joined = &self.current[..self.joined as usize];
        let forwarded = joined
            .iter()
            .filter(|g| g.last_at.is_some_and(|at| at >= since) && g.lost() <= self.max_loss)
            .count() as u32;
        self.result.steps.push(CapacityStep {
            groups: self.joined,
            forwarded,
            lost: joined.iter().map(GroupStep::lost).sum(),
        });
        if forwarded < self.joined {
            return self.finish(out);
        }
        self.result.groups = self.joined;
        if self.step + 1 == self.steps.len() {
            self.result.limit_reached = true;
            return self.finish(out);
        }
        self.step += 1;
        self.begin_step(now, out);
    }

    pub fn is_over(&self) -> bool {
        self.over
    }

    /// A datagram of the run's stream of `group`, sequence `sequence`, read on `segment`.
    pub fn datagram(&mut self, segment: L, group: IpAddr, sequence: u64, at: Nanos) {
        if segment != self.segment {
            return;
        }
        let Some(&i) = self.index.get(&group) else {
            return;
        };
        let g = &mut self.current[i];
        g.first.get_or_insert(sequence);
        g.highest = g.highest.max(sequence);
        g.received += 1;
        g.last_at = Some(at);
    }

    pub fn held(&self, out: &mut Vec<Action<H>>) {
        for &group in &self.groups[..self.joined as usize] {
            out.push(Action::Leave {
                host: self.host,
                group,
            });
        }
    }

    /// No per-join measurement: the result is [`Capacity::result`].
    pub fn probes(&self) -> &[Probe<H>] {
        &[]
    }

    pub fn planned(&self) -> u64 {
        self.groups.len() as u64
    }

    pub fn joins_sent(&self) -> u64 {
        u64::from(self.joined)
    }

    pub fn result(&self) -> &CapacityResult {
        &self.result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use control::test_traffic::TestTraffic;
    use control::testrun::Sla;

    fn spec() -> CapacitySpec {
        CapacitySpec {
            name: "capacity".into(),
            iface: None,
            hosts: None,
            first_group: "239.5.0.1".parse().unwrap(),
            start_groups: 2,
            step_groups: 2,
            max_groups: 5,
            step_ms: 100,
            window_ms: 50,
            max_loss_per_group: 0,
            leave_grace_ms: 3000,
            thresholds_ms: vec![125],
            streams: Some(Box::new(TestTraffic {
                link: "tap0".into(),
                source: "10.0.0.1".parse().unwrap(),
                pps: None,
                size: None,
                background_group: None,
                background_count: 0,
                background_pps: None,
            })),
            sla: Sla::default(),
        }
    }

    /// Steps of 2, 4, 5 groups; the device forwards `forwards` groups at most (the first
    /// ones), each at sequence numbers 0, 1, ... every 10 ms.
    fn run(forwards: usize, lose: bool) -> (CapacityResult, Vec<Action<u8>>) {
        let mut c = Capacity::<u8, u8>::new(&spec(), (1, 0));
        let mut out = Vec::new();
        let mut now = 0;
        let mut seq = 0;
        while !c.is_over() {
            if c.next_deadline().is_some_and(|d| d <= now) {
                c.due(now, &mut out);
            }
            for (i, &g) in c.groups.clone().iter().enumerate() {
                let joined = i < c.joined as usize;
                if joined && i < forwards && !(lose && seq % 3 == 1) {
                    c.datagram(0, g, seq, now);
                }
            }
            // Another segment's datagrams count for nothing.
            c.datagram(1, c.groups[4], seq, now);
            seq += 1;
            now += 10 * MS;
            assert!(now < 10_000 * MS, "the run ends");
        }
        (c.result().clone(), out)
    }

    #[test]
    fn the_capacity_is_the_last_step_forwarded_whole() {
        assert_eq!(spec().steps(), vec![2, 4, 5]);
        let (r, out) = run(3, false);
        assert_eq!(r.groups, 2, "3 forwarded: the step of 4 fails");
        assert!(!r.limit_reached);
        assert_eq!(
            r.steps
                .iter()
                .map(|s| (s.groups, s.forwarded))
                .collect::<Vec<_>>(),
            vec![(2, 2), (4, 3)]
        );
        let joins = out
            .iter()
            .filter(|a| matches!(a, Action::Join { .. }))
            .count();
        let leaves = out
            .iter()
            .filter(|a| matches!(a, Action::Leave { .. }))
            .count();
        assert_eq!((joins, leaves), (4, 4), "every group joined is left");
        let (r, _) = run(5, false);
        assert_eq!((r.groups, r.limit_reached), (5, true));
    }

    #[test]
    fn loss_beyond_the_limit_is_not_forwarded_correctly() {
        let (r, _) = run(5, true);
        assert_eq!(r.groups, 0);
        assert_eq!(r.steps.len(), 1);
        assert!(r.steps[0].lost > 0);
    }
}
