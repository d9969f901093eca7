//! What the cores send: each transmit leaves on the link of its host, framed with the host's
//! MAC; the RFC 3918 delay clock starts or stops right after the write; on a suppressing link a
//! v1/v2 report is also heard by the link's other hosts, as on a shared LAN.

use std::net::IpAddr;

use log::debug;
use membership::{Carries, Transmit};

use super::{CoreId, Daemon, HostId};

impl Daemon {
    /// Sends everything the cores have due, each packet written before the next is asked
    /// for: a General Query answer over a million groups is built one report at a time. For
    /// start-up, shutdown and links being closed; the loop uses [`Daemon::flush_some`].
    pub(super) fn flush(&mut self) -> anyhow::Result<()> {
        self.flush_up_to(usize::MAX);
        Ok(())
    }

    /// [`Daemon::flush`] of at most [`FLUSH_BUDGET`] packets, plus `owed` (the reports this
    /// turn's requests may have made): a loop that is behind on its timers (a million hosts
    /// answering one query) gives the control socket and the devices a turn every so many
    /// packets, rather than writing all that is due first. Sets `transmits_due` when it
    /// stopped at the budget, so that the loop comes back at once.
    pub(super) fn flush_some(&mut self, owed: usize) {
        self.transmits_due = self.flush_up_to(FLUSH_BUDGET.saturating_add(owed));
    }

    /// Writes what is due, up to `budget` packets, the cores taken in turn from the one after
    /// the last that ran out of budget; true if the budget ran out (more may be due).
    fn flush_up_to(&mut self, budget: usize) -> bool {
        let now = self.now();
        let mut sent = 0;
        for (core, after) in self.cores.ids_from(self.next_flush_core) {
            self.cores[core].engine.handle_timeout(now);
            while sent < budget {
                let Some(tx) = self.cores[core].engine.poll_transmit() else {
                    break;
                };
                while let Some(event) = self.cores[core].engine.poll_event() {
                    self.log_event(core, &event);
                }
                self.transmit(core, tx);
                sent += 1;
            }
            while let Some(event) = self.cores[core].engine.poll_event() {
                self.log_event(core, &event);
            }
            if sent >= budget {
                self.next_flush_core = after;
                break;
            }
        }
        self.untrimmed_sends = self.untrimmed_sends.saturating_add(sent);
        if sent >= TRIM_AFTER {
            self.trim_heap();
        }
        sent >= budget
    }

    /// Gives the allocator's free pages back once [`TRIM_AFTER`] packets went out since the
    /// last time, whatever the size of each flush: the loop calls it once a second. A join
    /// of many hosts leaves each of its retransmission states to be freed over the next
    /// seconds, a few in each turn; without this their pages stayed in RSS (at 10^5 hosts
    /// with 2 groups each, about 66 B per membership of 270).
    pub(super) fn trim_heap_if_due(&mut self) {
        if self.untrimmed_sends >= TRIM_AFTER {
            self.trim_heap();
        }
    }

    fn trim_heap(&mut self) {
        self.untrimmed_sends = 0;
        release_free_memory();
    }

    fn transmit(&mut self, core: CoreId, tx: Transmit) {
        let (src, dst) = (tx.src(), tx.dst());
        let Some(id) = self.by_iface.get(core, tx.iface()) else {
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
        let at = self.now_ns();
        if !self.write_frame(link, &frame) {
            debug!("dropped {} {src} -> {dst}", tx.message());
            return;
        }
        debug!("sent {} {src} -> {dst}", tx.message());
        // What the transmit says it carries: no lookup of our own.
        match tx.carries() {
            Carries::Report(group) => {
                self.hosts[id].io.host_tx_reports += 1;
                self.delays
                    .report_sent_on(link, id, self.hosts[id].delay_number, group, at);
                self.stream_host_joined(id, group);
                self.tests.report_sent(id, group, at);
                self.heard_by_others(id, group, &packet);
            }
            Carries::Leave(group) => {
                self.hosts[id].io.host_tx_leaves += 1;
                self.delays.left(self.hosts[id].delay_number, group, at);
                self.streams
                    .host_left(self.hosts[id].delay_number, link, group, at);
                self.tests.left(id, group, at);
            }
            Carries::Records(records) => {
                self.hosts[id].io.host_tx_reports += 1;
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
        let now = self.now();
        for other in others {
            let host = &mut self.hosts[other];
            host.io.host_rx_suppressing += 1;
            let (core, ifindex) = (host.core, host.ifindex);
            // A report the other host's core drops is counted there, under its reason.
            let _ = self.cores[core].engine.handle_packet(ifindex, packet, now);
            while let Some(event) = self.cores[core].engine.poll_event() {
                self.log_event(core, &event);
            }
        }
    }
}

/// Packets sent after which the allocator is asked to give freed pages back.
const TRIM_AFTER: usize = 1000;

/// The most packets one loop turn writes: at about 14 µs a report (a million hosts' answers,
/// release build), a turn of 512 takes some 7 ms, and a control request waits no longer.
/// (1,024 gave a `ping` p99 of 136 ms at 10^6 hosts, 512 gives 22 ms, with more answers out
/// in time: stack/BENCHMARKS.md.)
const FLUSH_BUDGET: usize = 512;

/// A burst (a million groups' retransmissions, a General Query answered for all of them) is
/// built and sent in one go: thousands of reports of a few KiB, freed right after. glibc keeps
/// such memory in its heap for reuse, where it counts in RSS for good; `malloc_trim` hands
/// the free pages back (since glibc 2.8 from the middle of the heap too). Costs a walk of the
/// allocator's free lists, once per burst.
fn release_free_memory() {
    // SAFETY: malloc_trim takes no pointers and only touches the allocator's own free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}
