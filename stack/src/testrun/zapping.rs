//! IPTV zapping: each host joins a channel, watches it for `view_ms`, changes to the next
//! (leave the old, join the new at one instant), `count` joins in all, then leaves the last.
//! Hosts start spread over the first view, each on its own schedule; one zap per host at a
//! time. Per zap: when the leave and the join were written, the new channel's first datagram,
//! the old one's last, the old one's datagrams after the new one's first (overlap).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::net::IpAddr;

use control::testrun::{ZapMode, ZapOrder, ZappingSpec};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{Action, Nanos, Probe, MS};

/// What a host does at its next deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Join the next channel (leaving the one watched).
    Zap,
    /// Leave the last channel.
    FinalLeave,
    /// The last leave's grace is over.
    Done,
    Over,
}

/// A channel's place in the list.
type Channel = u16;

struct Zapper<H> {
    host: H,
    rng: SmallRng,
    /// Its place in the host list (the sequential order starts there).
    slot: usize,
    joins: u32,
    /// The channel watched now, and the probe of the zap that joined it.
    watching: Option<(Channel, usize)>,
    /// Channels left and their zap's probe: their datagrams are that zap's leave delay.
    leaving: HashMap<Channel, usize>,
    step: Step,
}

/// One zapping run.
pub struct Zapping<H> {
    channels: Vec<IpAddr>,
    index: HashMap<IpAddr, Channel>,
    view: Nanos,
    count: u32,
    order: ZapOrder,
    mode: ZapMode,
    grace: Nanos,
    zappers: Vec<Zapper<H>>,
    by_host: HashMap<H, usize>,
    /// Per channel, how many of the run's hosts watch it now: a channel left by one host and
    /// watched by another keeps flowing for that other, so its datagrams are no leave delay.
    watchers: Vec<u32>,
    /// (due, zapper): every host's next step.
    deadlines: BinaryHeap<Reverse<(Nanos, usize)>>,
    probes: Vec<Probe<H>>,
    over: usize,
}

/// Spreads the seed over the hosts (SplitMix64's increment): each its own sequence.
const SEED_STEP: u64 = 0x9e37_79b9_7f4a_7c15;

impl<H: Copy + Eq + Hash> Zapping<H> {
    /// `spec` (checked) on `hosts`, from `now`; the random order drawn from `seed`.
    pub fn new(spec: &ZappingSpec, hosts: &[H], seed: u64, now: Nanos) -> Zapping<H> {
        let seed = spec.seed.unwrap_or(seed);
        let view = spec.view_ms * MS;
        let n = hosts.len() as u64;
        let mut deadlines = BinaryHeap::with_capacity(hosts.len());
        let zappers = hosts
            .iter()
            .enumerate()
            .map(|(slot, &host)| {
                // Spread over the first view: host k of n starts k/n of a view late.
                deadlines.push(Reverse((now + view * slot as u64 / n, slot)));
                Zapper {
                    host,
                    rng: SmallRng::seed_from_u64(
                        seed.wrapping_add(SEED_STEP.wrapping_mul(slot as u64 + 1)),
                    ),
                    slot,
                    joins: 0,
                    watching: None,
                    leaving: HashMap::new(),
                    step: Step::Zap,
                }
            })
            .collect();
        Zapping {
            index: spec
                .channels
                .iter()
                .enumerate()
                .map(|(i, &g)| (g, i as Channel))
                .collect(),
            channels: spec.channels.clone(),
            view,
            count: spec.count.unwrap_or(spec.channels.len() as u32),
            order: spec.order,
            mode: spec.mode,
            grace: spec.leave_grace_ms * MS,
            by_host: hosts.iter().enumerate().map(|(i, &h)| (h, i)).collect(),
            watchers: vec![0; spec.channels.len()],
            zappers,
            deadlines,
            probes: Vec::new(),
            over: 0,
        }
    }

    pub fn next_deadline(&self) -> Option<Nanos> {
        self.deadlines.peek().map(|Reverse((at, _))| *at)
    }

    pub fn is_over(&self) -> bool {
        self.over == self.zappers.len()
    }

    pub fn probes(&self) -> &[Probe<H>] {
        &self.probes
    }

    pub fn planned(&self) -> u64 {
        self.zappers.len() as u64 * u64::from(self.count)
    }

    /// The channel zapper `z` joins next.
    fn next_channel(&mut self, z: usize) -> Channel {
        let n = self.channels.len();
        let zapper = &mut self.zappers[z];
        let next = match (self.order, zapper.watching) {
            (ZapOrder::Sequential, _) => (zapper.slot + zapper.joins as usize) % n,
            (ZapOrder::Random, None) => zapper.rng.gen_range(0..n),
            // Any channel but the one watched.
            (ZapOrder::Random, Some((now, _))) => {
                let drawn = zapper.rng.gen_range(0..n - 1);
                if drawn >= now as usize {
                    drawn + 1
                } else {
                    drawn
                }
            }
        };
        next as Channel
    }

    /// The steps due at `now`: O(steps due).
    pub fn due(&mut self, now: Nanos, out: &mut Vec<Action<H>>) {
        while let Some(&Reverse((at, z))) = self.deadlines.peek() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            if let Some(next) = self.step(z, at, out) {
                self.deadlines.push(Reverse((next, z)));
            }
        }
    }

    /// Zapper `z`'s step due at `at`; when its next one is due.
    fn step(&mut self, z: usize, at: Nanos, out: &mut Vec<Action<H>>) -> Option<Nanos> {
        let host = self.zappers[z].host;
        match self.zappers[z].step {
            Step::Zap => {
                let to = self.next_channel(z);
                let zapper = &mut self.zappers[z];
                let from = zapper.watching.map(|(c, _)| c);
                let probe = self.probes.len();
                self.probes.push(Probe {
                    host,
                    seq: zapper.joins,
                    zap: from.is_some(),
                    from: from.map(|c| self.channels[c as usize]),
                    to: Some(self.channels[to as usize]),
                    ..probe_of(host)
                });
                // Datagrams of the new channel are its join's from now on.
                zapper.leaving.remove(&to);
                let join = Action::Join {
                    host,
                    group: self.channels[to as usize],
                };
                let leave = from.map(|c| {
                    zapper.leaving.insert(c, probe);
                    Action::Leave {
                        host,
                        group: self.channels[c as usize],
                    }
                });
                match self.mode {
                    ZapMode::LeaveJoin => out.extend(leave.into_iter().chain([join])),
                    ZapMode::JoinLeave => out.extend([join].into_iter().chain(leave)),
                }
                zapper.watching = Some((to, probe));
                zapper.joins += 1;
                self.watchers[to as usize] += 1;
                if let Some(from) = from {
                    self.watchers[from as usize] -= 1;
                }
                if zapper.joins >= self.count {
                    zapper.step = Step::FinalLeave;
                }
                Some(at + self.view)
            }
            Step::FinalLeave => {
                let zapper = &mut self.zappers[z];
                let (channel, _) = zapper.watching.take()?;
                self.watchers[channel as usize] -= 1;
                let probe = self.probes.len();
                self.probes.push(Probe {
                    host,
                    seq: zapper.joins,
                    from: Some(self.channels[channel as usize]),
                    ..probe_of(host)
                });
                zapper.leaving.insert(channel, probe);
                out.push(Action::Leave {
                    host,
                    group: self.channels[channel as usize],
                });
                zapper.step = Step::Done;
                Some(at + self.grace)
            }
            Step::Done | Step::Over => {
                let zapper = &mut self.zappers[z];
                zapper.leaving = HashMap::new();
                if zapper.step == Step::Done {
                    zapper.step = Step::Over;
                    self.over += 1;
                }
                None
            }
        }
    }

    /// The zapper of `host` and the channel `group` is, if both are the run's.
    fn find(&self, host: H, group: IpAddr) -> Option<(usize, Channel)> {
        Some((*self.by_host.get(&host)?, *self.index.get(&group)?))
    }

    pub fn report_sent(&mut self, host: H, group: IpAddr, at: Nanos) {
        let Some((z, c)) = self.find(host, group) else {
            return;
        };
        if let Some((watching, p)) = self.zappers[z].watching {
            let probe = &mut self.probes[p];
            if watching == c && probe.join_sent.is_none() {
                probe.join_sent = Some(at);
            }
        }
    }

    pub fn left(&mut self, host: H, group: IpAddr, at: Nanos) {
        let Some((z, c)) = self.find(host, group) else {
            return;
        };
        if let Some(&p) = self.zappers[z].leaving.get(&c) {
            self.probes[p].leave_sent.get_or_insert(at);
        }
    }

    pub fn leave_shared(&mut self, host: H, group: IpAddr) {
        let Some((z, c)) = self.find(host, group) else {
            return;
        };
        if let Some(&p) = self.zappers[z].leaving.get(&c) {
            self.probes[p].leave_shared = true;
        }
    }

    /// O(1): the host's zap that joined `group`, or the one that left it.
    pub fn datagram(&mut self, host: H, group: IpAddr, at: Nanos) {
        let Some((z, c)) = self.find(host, group) else {
            return;
        };
        let zapper = &self.zappers[z];
        if let Some((watching, p)) = zapper.watching {
            let probe = &mut self.probes[p];
            if watching == c
                && probe.first_packet.is_none()
                && probe.join_sent.is_some_and(|sent| sent <= at)
            {
                probe.first_packet = Some(at);
            }
        }
        if let Some(&p) = zapper.leaving.get(&c) {
            let probe = &mut self.probes[p];
            if self.watchers[c as usize] > 0 {
                // Another host of the run watches it: not this leave's.
                probe.leave_shared = true;
                return;
            }
            probe.last_packet = probe.last_packet.max(Some(at));
            if probe.first_packet.is_some_and(|first| at > first) {
                probe.overlap_packets += 1;
            }
            if probe.leave_sent.is_some_and(|sent| at > sent + self.grace) {
                probe.after_leave_packets += 1;
            }
        }
    }

    /// The channel each host watches now (to leave them all when stopped).
    pub fn held(&self, out: &mut Vec<Action<H>>) {
        for zapper in &self.zappers {
            if let Some((c, _)) = zapper.watching {
                out.push(Action::Leave {
                    host: zapper.host,
                    group: self.channels[c as usize],
                });
            }
        }
    }
}

fn probe_of<H>(host: H) -> Probe<H> {
    Probe {
        host,
        seq: 0,
        zap: false,
        from: None,
        to: None,
        join_sent: None,
        first_packet: None,
        leave_sent: None,
        last_packet: None,
        overlap_packets: 0,
        leave_shared: false,
        before_join_packets: 0,
        after_leave_packets: 0,
    }
}

#[cfg(test)]
mod tests;
