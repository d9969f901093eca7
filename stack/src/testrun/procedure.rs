//! What a run is made of, whatever its kind: the actions it asks of the loop ([`Action`]),
//! the probe each measurement fills ([`Probe`]), and the procedure each kind implements
//! ([`Procedure`]), dispatched here once for the runs ([`Run`](super::Run)).

use std::hash::Hash;
use std::net::IpAddr;

use super::{capacity, rfc3918, zapping, Nanos};

/// What a run wants done now, for a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<H> {
    /// Join `group` (the run's owner's request): from `source` only (SSM), or from any.
    Join {
        host: H,
        group: IpAddr,
        source: Option<IpAddr>,
    },
    /// Drop the run's request for `group`.
    Leave { host: H, group: IpAddr },
}

/// One measurement: a zap (leave `from`, join `to`), or one RFC 3918 iteration of a host and
/// a group (`from` = `to`). Times on the daemon's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe<H> {
    pub host: H,
    /// When it was made: it can change for a while after ([`Run`](super::Run)'s settling horizon).
    pub created: Nanos,
    pub seq: u32,
    /// A channel change: overlap is measured.
    pub zap: bool,
    pub from: Option<IpAddr>,
    pub to: Option<IpAddr>,
    /// The first report of the join written.
    pub join_sent: Option<Nanos>,
    /// The first datagram of `to` read after it.
    pub first_packet: Option<Nanos>,
    /// The leave of `from` written.
    pub leave_sent: Option<Nanos>,
    /// The last datagram of `from` read.
    pub last_packet: Option<Nanos>,
    /// Datagrams of `from` read after the first of `to`.
    pub overlap_packets: u64,
    /// Another host of the link still held `from`.
    pub leave_shared: bool,
    pub before_join_packets: u64,
    pub after_leave_packets: u64,
}

impl<H> Probe<H> {
    /// A probe of `host` with nothing measured yet.
    pub fn new(host: H) -> Probe<H> {
        Probe {
            host,
            created: 0,
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
}

/// A run of either kind.
pub enum Procedure<H, L> {
    Zapping(zapping::Zapping<H, L>),
    JoinLeave(rfc3918::JoinLeave<H, L>),
    Capacity(capacity::Capacity<H, L>),
}

impl<H: Copy + Eq + Hash + Ord, L: Copy + Eq + Hash> Procedure<H, L> {
    pub(super) fn next_deadline(&self) -> Option<Nanos> {
        match self {
            Procedure::Zapping(z) => z.next_deadline(),
            Procedure::JoinLeave(j) => j.next_deadline(),
            Procedure::Capacity(c) => c.next_deadline(),
        }
    }

    pub(super) fn due(&mut self, now: Nanos, out: &mut Vec<Action<H>>) {
        match self {
            Procedure::Zapping(z) => z.due(now, out),
            Procedure::JoinLeave(j) => j.due(now, out),
            Procedure::Capacity(c) => c.due(now, out),
        }
    }

    pub(super) fn is_over(&self) -> bool {
        match self {
            Procedure::Zapping(z) => z.is_over(),
            Procedure::JoinLeave(j) => j.is_over(),
            Procedure::Capacity(c) => c.is_over(),
        }
    }

    pub(super) fn report_sent(&mut self, host: H, group: IpAddr, at: Nanos) {
        match self {
            Procedure::Zapping(z) => z.report_sent(host, group, at),
            Procedure::JoinLeave(j) => j.report_sent(host, group, at),
            // No join delay: the groups are judged step by step.
            Procedure::Capacity(_) => {}
        }
    }

    pub(super) fn left(&mut self, host: H, group: IpAddr, at: Nanos) {
        match self {
            Procedure::Zapping(z) => z.left(host, group, at),
            Procedure::JoinLeave(j) => j.left(host, group, at),
            Procedure::Capacity(_) => {}
        }
    }

    pub(super) fn datagram(&mut self, segment: L, group: IpAddr, at: Nanos) {
        match self {
            Procedure::Zapping(z) => z.datagram(segment, group, at),
            Procedure::JoinLeave(j) => j.datagram(segment, group, at),
            // Judged from the streams' sequence numbers: [`TestRuns::stream_datagram`].
            Procedure::Capacity(_) => {}
        }
    }

    /// Every group each host holds for the run now.
    pub(super) fn held(&self, out: &mut Vec<Action<H>>) {
        match self {
            Procedure::Zapping(z) => z.held(out),
            Procedure::JoinLeave(j) => j.held(out),
            Procedure::Capacity(c) => c.held(out),
        }
    }

    pub(super) fn probes(&self) -> &[Probe<H>] {
        match self {
            Procedure::Zapping(z) => z.probes(),
            Procedure::JoinLeave(j) => j.probes(),
            Procedure::Capacity(c) => c.probes(),
        }
    }

    pub(super) fn planned(&self) -> u64 {
        match self {
            Procedure::Zapping(z) => z.planned(),
            Procedure::JoinLeave(j) => j.planned(),
            Procedure::Capacity(c) => c.planned(),
        }
    }

    pub(super) fn joins_sent(&self) -> u64 {
        match self {
            Procedure::Zapping(z) => z.joins_sent(),
            Procedure::JoinLeave(j) => j.joins_sent(),
            Procedure::Capacity(c) => c.joins_sent(),
        }
    }
}
