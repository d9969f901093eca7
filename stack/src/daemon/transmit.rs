//! What the cores send: each transmit leaves on the link of its host, framed with the host's
//! MAC; the RFC 3918 delay clock starts or stops right after the write; on a suppressing link a
//! v1/v2 report is also heard by the link's other hosts, as on a shared LAN.

use std::net::IpAddr;

use log::debug;
use membership::{Carries, Transmit};

use super::hosts::Hosts;
use super::links::Links;
use super::{Clock, CoreId, HostId, LinkId};
use crate::delays::DelayTracker;
use crate::streams::check::Admission;
use crate::streams::Streams;
use crate::testrun::TestRuns;

/// The owners what the cores send reaches: the links it leaves on, and those that measure it
/// (the delay tracker, the stream checker, the running test).
pub(super) struct Wire<'a> {
    pub hosts: &'a mut Hosts,
    pub links: &'a mut Links,
    pub delays: &'a mut DelayTracker,
    pub streams: &'a mut Streams,
    pub tests: &'a mut TestRuns<HostId, LinkId>,
    pub clock: Clock,
}

impl Wire<'_> {
    /// Writes what is due, up to `budget` packets, each packet written before the next is
    /// asked for (a General Query answer over a million groups is built one report at a time),
    /// the cores taken in turn from the one after the last that ran out of budget. The packets
    /// written, and whether the budget ran out (more may be due).
    ///
    /// A core's timers fire only while fewer than [`QUEUED_BEFORE_FIRING`] of its packets wait
    /// to be written: when its timers make more a turn than the budget writes (the
    /// last-member queries of 10,000 hosts on one port, each answered by every host holding
    /// the group), they wait in the wheel until those are out, instead of as built reports
    /// queued without bound (346 MB in 14 s).
    pub fn flush_up_to(&mut self, budget: usize) -> (usize, bool) {
        let now = self.clock.now();
        let mut sent = 0;
        for core in self.hosts.flush_order() {
            let engine = self.hosts.engine_mut(core);
            if engine.transmits_queued() < QUEUED_BEFORE_FIRING {
                engine.handle_timeout(now);
            }
            while sent < budget {
                let Some(tx) = self.hosts.engine_mut(core).poll_transmit() else {
                    break;
                };
                self.hosts.drain_events(core, self.links);
                self.transmit(core, tx);
                sent += 1;
            }
            self.hosts.drain_events(core, self.links);
            if sent >= budget {
                self.hosts.resume_flush_after(core);
                break;
            }
        }
        (sent, sent >= budget)
    }

    fn transmit(&mut self, core: CoreId, tx: Transmit) {
        let (src, dst) = (tx.src(), tx.dst());
        let Some(id) = self.hosts.at_iface(core, tx.iface()) else {
            // A host of a closed link: its device is gone.
            debug!("dropped {} {src} -> {dst}: no link", tx.message());
            return;
        };
        let host = &self.hosts[id];
        let link = host.link;
        let packet = tx.to_packet();
        let frame = host.framing().encap(&packet, dst);
        // Stamped as the frame is handed to the device: the write returns only once the
        // kernel has carried it through the link's far side (a bridge, its snooping, a
        // capture), which on a loaded machine takes milliseconds that are not the device's
        // delay (RFC 3918 §5.6: from the report's transmission).
        let at = self.clock.now_ns();
        if !self.links.write(link, &frame) {
            debug!("dropped {} {src} -> {dst}", tx.message());
            return;
        }
        debug!("sent {} {src} -> {dst}", tx.message());
        // What the transmit says it carries: no lookup of our own.
        match tx.carries() {
            Carries::Report(group) => {
                self.hosts.io_mut(id).host_tx_reports += 1;
                self.delays
                    .report_sent_on(link, id, self.hosts[id].delay_number, group, at);
                self.stream_host_joined(id, group);
                self.tests.report_sent(id, group, at);
                self.heard_by_others(id, group, &packet);
            }
            Carries::Leave(group) => {
                self.hosts.io_mut(id).host_tx_leaves += 1;
                self.delays.left(self.hosts[id].delay_number, group, at);
                self.streams
                    .host_left(self.hosts[id].delay_number, link, group, at);
                self.tests.left(id, group, at);
            }
            Carries::Records(records) => {
                self.hosts.io_mut(id).host_tx_reports += 1;
                if !self.delays.is_on() && !self.streams.is_checking() && !self.tests.is_running() {
                    return;
                }
                let number = self.hosts[id].delay_number;
                for record in records {
                    // A record of a group with no reception state left is its leave
                    // (TO_IN({}), or BLOCK of the last sources); any other is a join or a
                    // change.
                    if record.is_leave {
                        self.delays.left(number, record.group, at);
                        self.streams.host_left(number, link, record.group, at);
                        self.tests.left(id, record.group, at);
                    } else {
                        self.delays
                            .report_sent_on(link, id, number, record.group, at);
                        self.stream_host_joined(id, record.group);
                        self.tests.report_sent(id, record.group, at);
                    }
                }
            }
            Carries::Query => {}
        }
    }

    /// The first report of a join (or a change) of `group` went out for host `id`: its
    /// receptions of the group's flows on its link.
    fn stream_host_joined(&mut self, id: HostId, group: IpAddr) {
        let h = &self.hosts[id];
        let engine = &self.hosts.core(h.core).engine;
        self.streams
            .host_joined(h.delay_number, h.link, group, |source| {
                Admission::of(engine.admits_source(h.ifindex, group, source))
            });
    }

    /// On a suppressing link, the members of `group` other than `sender` hear its report, as
    /// on a shared LAN (RFC 2236 §3: it cancels their pending reports).
    fn heard_by_others(&mut self, sender: HostId, group: IpAddr, packet: &[u8]) {
        let link = &self.links[self.hosts[sender].link];
        if !link.suppression || link.hosts.len() < 2 {
            return;
        }
        let Some(members) = link.members.get(&group) else {
            return;
        };
        let others: Vec<HostId> = members.iter().copied().filter(|&h| h != sender).collect();
        let now = self.clock.now();
        for other in others {
            self.hosts.io_mut(other).host_rx_suppressing += 1;
            let core = self.hosts[other].core;
            let (engine, ifindex) = self.hosts.engine_of(other);
            // A report the other host's core drops is counted there, under its reason.
            let _ = engine.handle_packet(ifindex, packet, now);
            self.hosts.drain_events(core, self.links);
        }
    }
}

/// Packets sent after which the allocator is asked to give freed pages back.
pub(super) const TRIM_AFTER: usize = 1000;

/// The most packets one loop turn writes: at about 14 µs a report (a million hosts' answers,
/// release build), a turn of 512 takes some 7 ms, and a control request waits no longer.
/// (1,024 gave a `ping` p99 of 136 ms at 10^6 hosts, 512 gives 22 ms, with more answers out
/// in time: stack/BENCHMARKS.md.)
pub(super) const FLUSH_BUDGET: usize = 512;

/// A core's timers wait while this many of its packets are built and not yet written: four
/// turns' budget.
pub(super) const QUEUED_BEFORE_FIRING: usize = 4 * FLUSH_BUDGET;

/// A burst (a million groups' retransmissions, a General Query answered for all of them) is
/// built and sent in one go: thousands of reports of a few KiB, freed right after. glibc keeps
/// such memory in its heap for reuse, where it counts in RSS for good; `malloc_trim` hands
/// the free pages back (since glibc 2.8 from the middle of the heap too). Costs a walk of the
/// allocator's free lists, once per burst.
pub(super) fn release_free_memory() {
    // SAFETY: malloc_trim takes no pointers and only touches the allocator's own free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}
