//! IPTV zapping: each host joins a channel, watches it for `view_ms`, changes to the next
//! (leave the old, join the new at one instant), `count` joins in all, then leaves the last.
//! Hosts start spread over the first view, each on its own schedule; one zap per host at a
//! time. Per zap: when the leave and the join were written, the new channel's first datagram,
//! the old one's last, the old one's datagrams after the new one's first (overlap).
//!
//! A datagram is read once for a whole link (its hosts share the device), so it is handed in
//! per (link, channel) — a segment `L` — and touches only the zaps waiting on that channel
//! there: those awaiting their first datagram, those whose leave delay is open.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
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

struct Zapper<H, L> {
    host: H,
    segment: L,
    rng: SmallRng,
    /// Its place in the host list (the sequential order starts there).
    slot: usize,
    joins: u32,
    /// The channel watched now, and the probe of the zap that joined it.
    watching: Option<(Channel, usize)>,
    /// The channel it left last, and that zap's probe: its leave's timestamp goes there.
    last_leave: Option<(Channel, usize)>,
    step: Step,
}

/// The zaps one channel's datagrams on one segment concern.
#[derive(Default)]
struct Interest {
    /// Hosts of the run on the segment watching the channel: while there is one, the
    /// channel flows for it, and no leave of it can be measured.
    watchers: u32,
    /// (zapper, probe): joined, no datagram yet.
    awaiting: Vec<(usize, usize)>,
    /// (probe, when the leave was due): left, oldest first; measured until twice the grace
    /// after that.
    leaving: VecDeque<(usize, Nanos)>,
}

/// One zapping run.
pub struct Zapping<H, L> {
    channels: Vec<IpAddr>,
    /// Each channel's SSM source, if any.
    sources: Vec<Option<IpAddr>>,
    index: HashMap<IpAddr, Channel>,
    view: Nanos,
    count: u32,
    order: ZapOrder,
    mode: ZapMode,
    grace: Nanos,
    zappers: Vec<Zapper<H, L>>,
    by_host: HashMap<H, usize>,
    interests: HashMap<(L, Channel), Interest>,
    /// (due, zapper): every host's next step.
    deadlines: BinaryHeap<Reverse<(Nanos, usize)>>,
    probes: Vec<Probe<H>>,
    /// Zaps whose join was written.
    joins_sent: u64,
    over: usize,
}

/// Spreads the seed over the hosts (SplitMix64's increment): each its own sequence.
const SEED_STEP: u64 = 0x9e37_79b9_7f4a_7c15;

impl<H: Copy + Eq + Hash, L: Copy + Eq + Hash> Zapping<H, L> {
    /// `spec` (checked) on `hosts` (each with its segment), from `now`; the random order drawn
    /// from the spec's seed, else `seed`.
    pub fn new(spec: &ZappingSpec, hosts: &[(H, L)], seed: u64, now: Nanos) -> Zapping<H, L> {
        let seed = spec.seed.unwrap_or(seed);
        let view = spec.view_ms * MS;
        let n = hosts.len() as u64;
        let mut deadlines = BinaryHeap::with_capacity(hosts.len());
        let zappers = hosts
            .iter()
            .enumerate()
            .map(|(slot, &(host, segment))| {
                // Spread over the first view: host k of n starts k/n of a view late.
                let late = u128::from(view) * slot as u128 / u128::from(n);
                deadlines.push(Reverse((now + late as u64, slot)));
                Zapper {
                    host,
                    segment,
                    rng: SmallRng::seed_from_u64(
                        seed.wrapping_add(SEED_STEP.wrapping_mul(slot as u64 + 1)),
                    ),
                    slot,
                    joins: 0,
                    watching: None,
                    last_leave: None,
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
            sources: (0..spec.channels.len())
                .map(|i| spec.source_of(i))
                .collect(),
            view,
            count: spec.count.unwrap_or(spec.channels.len() as u32),
            order: spec.order,
            mode: spec.mode,
            grace: spec.leave_grace_ms * MS,
            by_host: hosts
                .iter()
                .enumerate()
                .map(|(i, &(h, _))| (h, i))
                .collect(),
            interests: HashMap::new(),
            zappers,
            deadlines,
            probes: Vec::new(),
            joins_sent: 0,
            over: 0,
        }
    }

    /// Zaps whose join was written so far.
    pub fn joins_sent(&self) -> u64 {
        self.joins_sent
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

    /// Zapper `z` stops watching `channel`: probe `p` is its leave's. A channel another
    /// host of the segment still watches keeps flowing: that leave is shared, not measured.
    fn stop_watching(&mut self, z: usize, channel: Channel, p: usize, at: Nanos) {
        self.zappers[z].last_leave = Some((channel, p));
        let interest = self
            .interests
            .entry((self.zappers[z].segment, channel))
            .or_default();
        interest.watchers -= 1;
        if interest.watchers > 0 {
            self.probes[p].leave_shared = true;
        } else {
            interest.leaving.push_back((p, at));
        }
    }

    /// Zapper `z`'s step due at `at`; when its next one is due.
    fn step(&mut self, z: usize, at: Nanos, out: &mut Vec<Action<H>>) -> Option<Nanos> {
        let host = self.zappers[z].host;
        match self.zappers[z].step {
            Step::Zap => {
                let to = self.next_channel(z);
                let from = self.zappers[z].watching.map(|(c, _)| c);
                let p = self.probes.len();
                self.probes.push(Probe {
                    created: at,
                    seq: self.zappers[z].joins,
                    zap: from.is_some(),
                    from: from.map(|c| self.channels[c as usize]),
                    to: Some(self.channels[to as usize]),
                    ..Probe::new(host)
                });
                let join = Action::Join {
                    host,
                    group: self.channels[to as usize],
                    source: self.sources[to as usize],
                };
                let leave = from.map(|c| Action::Leave {
                    host,
                    group: self.channels[c as usize],
                });
                match self.mode {
                    ZapMode::LeaveJoin => out.extend(leave.into_iter().chain([join])),
                    ZapMode::JoinLeave => out.extend([join].into_iter().chain(leave)),
                }
                if let Some(from) = from {
                    self.stop_watching(z, from, p, at);
                }
                let interest = self
                    .interests
                    .entry((self.zappers[z].segment, to))
                    .or_default();
                interest.watchers += 1;
                interest.awaiting.push((z, p));
                let zapper = &mut self.zappers[z];
                zapper.watching = Some((to, p));
                zapper.joins += 1;
                if zapper.joins >= self.count {
                    zapper.step = Step::FinalLeave;
                }
                Some(at + self.view)
            }
            Step::FinalLeave => {
                let (channel, _) = self.zappers[z].watching.take()?;
                let p = self.probes.len();
                self.probes.push(Probe {
                    created: at,
                    seq: self.zappers[z].joins,
                    from: Some(self.channels[channel as usize]),
                    ..Probe::new(host)
                });
                self.stop_watching(z, channel, p, at);
                out.push(Action::Leave {
                    host,
                    group: self.channels[channel as usize],
                });
                self.zappers[z].step = Step::Done;
                Some(at + self.grace)
            }
            Step::Done | Step::Over => {
                let zapper = &mut self.zappers[z];
                if zapper.step == Step::Done {
                    zapper.step = Step::Over;
                    self.over += 1;
                }
                None
            }
        }
    }

    /// The report for `group` (its first only) was written for `host` at `at`.
    pub fn report_sent(&mut self, host: H, group: IpAddr, at: Nanos) {
        let (Some(&z), Some(&c)) = (self.by_host.get(&host), self.index.get(&group)) else {
            return;
        };
        if let Some((watching, p)) = self.zappers[z].watching {
            if watching == c && self.probes[p].join_sent.is_none() {
                self.probes[p].join_sent = Some(at);
                self.joins_sent += 1;
            }
        }
    }

    /// The leave of `group` was written for `host` at `at`: the latest zap that left it.
    pub fn left(&mut self, host: H, group: IpAddr, at: Nanos) {
        let (Some(&z), Some(&c)) = (self.by_host.get(&host), self.index.get(&group)) else {
            return;
        };
        if let Some((left, p)) = self.zappers[z].last_leave {
            if left == c {
                self.probes[p].leave_sent.get_or_insert(at);
            }
        }
    }

    /// A datagram of `group` read on `segment` at `at`: O(the zaps it concerns).
    pub fn datagram(&mut self, segment: L, group: IpAddr, at: Nanos) {
        let Some(&c) = self.index.get(&group) else {
            return;
        };
        let Some(interest) = self.interests.get_mut(&(segment, c)) else {
            return;
        };
        let (probes, zappers) = (&mut self.probes, &self.zappers);
        // First datagrams: the zaps still watching it whose join is written.
        interest.awaiting.retain(|&(z, p)| {
            if zappers[z].watching.map(|(_, current)| current) != Some(p) {
                return false; // zapped away before any came: not received
            }
            match probes[p].join_sent {
                Some(sent) if sent <= at => {
                    probes[p].first_packet = Some(at);
                    false
                }
                _ => true,
            }
        });
        if interest.watchers > 0 {
            // It flows for a host watching it: no leave before it is this datagram's.
            for (p, _) in interest.leaving.drain(..) {
                probes[p].leave_shared = true;
            }
            return;
        }
        // Leave delays: measured for twice the grace after the leave was due (the second one
        // counts datagrams still forwarded after the grace); the oldest go first.
        let horizon = 2 * self.grace;
        while interest
            .leaving
            .front()
            .is_some_and(|&(_, due)| due + horizon < at)
        {
            interest.leaving.pop_front();
        }
        for &(p, _) in &interest.leaving {
            let probe = &mut probes[p];
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

#[cfg(test)]
mod tests;
