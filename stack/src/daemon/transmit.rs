//! What the cores send: each transmit leaves on the link of its host, framed with the host's
//! MAC; the RFC 3918 delay clock starts or stops right after the write; on a suppressing link a
//! v1/v2 report is also heard by the link's other hosts, as on a shared LAN.

use std::net::IpAddr;

use log::debug;
use membership::wire::igmp::IgmpRepr;
use membership::wire::mld::MldRepr;
use membership::{Message, Transmit};

use super::{CoreId, Daemon, HostId};

/// What a transmit means for the delay measurements and for the link's other hosts.
enum Meaning {
    /// A v1/v2 or MLDv1 report of one group: others hear it.
    Report(IpAddr),
    /// A Leave or Done.
    Leave(IpAddr),
    /// A v3 report: its records' groups.
    Records(Vec<IpAddr>),
    Other,
}

fn meaning(tx: &Transmit) -> Meaning {
    match &tx.message {
        Message::Igmp(IgmpRepr::ReportV1 { group } | IgmpRepr::ReportV2 { group }) => {
            Meaning::Report((*group).into())
        }
        Message::Mld(MldRepr::Report { group }) => Meaning::Report((*group).into()),
        Message::Igmp(IgmpRepr::Leave { group }) => Meaning::Leave((*group).into()),
        Message::Mld(MldRepr::Done { group }) => Meaning::Leave((*group).into()),
        Message::Igmp(IgmpRepr::ReportV3 { .. }) | Message::Mld(MldRepr::ReportV2 { .. }) => {
            Meaning::Records(tx.groups())
        }
        _ => Meaning::Other,
    }
}

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
            while sent < budget {
                let Some(tx) = self.cores[core].host.poll_transmit(now) else {
                    break;
                };
                while let Some(event) = self.cores[core].host.poll_event() {
                    self.log_event(core, &event);
                }
                self.transmit(core, tx);
                sent += 1;
            }
            while let Some(event) = self.cores[core].host.poll_event() {
                self.log_event(core, &event);
            }
            if sent >= budget {
                self.next_flush_core = after;
                break;
            }
        }
        if sent >= TRIM_AFTER {
            release_free_memory();
        }
        sent >= budget
    }

    fn transmit(&mut self, core: CoreId, tx: Transmit) {
        let Some(&id) = self.by_iface.get(&(core, tx.iface)) else {
            // A host of a closed link: its device is gone.
            debug!("dropped {} {} -> {}: no link", tx.message, tx.src, tx.dst);
            return;
        };
        let host = &self.hosts[id];
        let link = host.link;
        let packet = tx.to_packet();
        let frame = host.framing.encap(&packet, tx.dst);
        if !self.write_frame(link, &frame) {
            debug!("dropped {} {} -> {}", tx.message, tx.src, tx.dst);
            return;
        }
        let at = self.now_ns();
        debug!("sent {} {} -> {}", tx.message, tx.src, tx.dst);
        match meaning(&tx) {
            Meaning::Report(group) => {
                self.hosts[id].io.host_tx_reports += 1;
                self.delays
                    .report_sent(self.hosts[id].delay_number, group, at);
                self.tests.report_sent(id, group, at);
                self.heard_by_others(id, group, &packet);
            }
            Meaning::Leave(group) => {
                self.hosts[id].io.host_tx_leaves += 1;
                self.delays.left(self.hosts[id].delay_number, group, at);
                self.tests.left(id, group, at);
            }
            Meaning::Records(groups) => {
                self.hosts[id].io.host_tx_reports += 1;
                if !self.delays.is_on() && !self.tests.is_running() {
                    return;
                }
                let now = self.now();
                let number = self.hosts[id].delay_number;
                for group in groups {
                    // A record of a group with no request left is its leave (TO_IN({}), or
                    // BLOCK of the last sources); any other is a join or a change.
                    let left = self.cores[core]
                        .host
                        .group(tx.iface, group, now)
                        .is_none_or(|g| g.users == 0);
                    if left {
                        self.delays.left(number, group, at);
                        self.tests.left(id, group, at);
                    } else {
                        self.delays.report_sent(number, group, at);
                        self.tests.report_sent(id, group, at);
                    }
                }
            }
            Meaning::Other => {}
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
            let _ = self.cores[core].host.handle_packet(ifindex, packet, now);
            while let Some(event) = self.cores[core].host.poll_event() {
                self.log_event(core, &event);
            }
        }
    }
}

/// Packets in one flush after which the allocator is asked to give freed pages back.
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
