//! One (host, source, group)'s record: what it has settled, its [`Reception`] and its flow's
//! counts when that last changed; its figures are those plus what the flow counted since,
//! under its reception.

use control::protocol::ReceiverCounts;

use super::latency::Nanos;
use super::window::FlowTotals;

/// What a host's frames of a flow count as, until it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Reception {
    /// Nothing: a `listen` client the frames no longer reach.
    #[default]
    Idle,
    /// Joined, the filter admits the source: its first frame starts its window.
    Pending,
    /// Joined, the filter admits the source, frames came: the flow's counts are its.
    Receiving,
    /// Left, inside the grace, having received: in flight, counted as received.
    InFlight,
    /// Joined and the filter excludes the source, or left inside the grace without having
    /// received any of it: each frame is a source leak.
    Leaking,
    /// Left longer than the grace ago: each frame came after the leave.
    AfterLeave,
}

impl Reception {
    /// Takes the flow's sequence counts (and weighs its latency).
    pub(super) fn receives(self) -> bool {
        matches!(self, Reception::Receiving | Reception::InFlight)
    }
}

/// One (host, source, group): 64 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceiverRecord {
    /// Settled.
    pub(super) received: u64,
    pub(super) bytes: u64,
    /// The flow's byte count when the record last settled.
    pub(super) mark_bytes: u64,
    pub(super) lost: u32,
    pub(super) duplicates: u32,
    pub(super) reordered: u32,
    pub(super) source_leaks: u32,
    pub(super) after_leave: u32,
    /// The flow's other counts (their low 32 bits: a reception lasts less than 2^32 frames)
    /// when the record last settled.
    pub(super) mark_received: u32,
    pub(super) mark_duplicates: u32,
    pub(super) mark_reordered: u32,
    pub(super) mark_lost: u32,
    pub(super) reception: Reception,
}

fn saturated(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl ReceiverRecord {
    /// Its counts: what it settled, and what its flow counted since (`now`) under its
    /// reception.
    pub(super) fn counts_at(&self, now: &FlowTotals) -> ReceiverCounts {
        let since = |now: u64, mark: u32| u64::from((now as u32).wrapping_sub(mark));
        let mut counts = ReceiverCounts {
            received: self.received,
            lost: u64::from(self.lost),
            duplicates: u64::from(self.duplicates),
            reordered: u64::from(self.reordered),
            source_leaks: u64::from(self.source_leaks),
            after_leave: u64::from(self.after_leave),
            bytes: self.bytes,
        };
        let frames =
            since(now.received, self.mark_received) + since(now.duplicates, self.mark_duplicates);
        match self.reception {
            Reception::Receiving | Reception::InFlight => {
                counts.received += since(now.received, self.mark_received);
                counts.duplicates += since(now.duplicates, self.mark_duplicates);
                counts.reordered += since(now.reordered, self.mark_reordered);
                counts.bytes += now.bytes.wrapping_sub(self.mark_bytes);
                // Numbers missing in the window when it settled may have come since (late):
                // the flow's loss can shrink.
                let lost = i64::from((now.lost as u32).wrapping_sub(self.mark_lost) as i32);
                counts.lost = counts.lost.saturating_add_signed(lost);
            }
            Reception::Leaking => counts.source_leaks += frames,
            Reception::AfterLeave => counts.after_leave += frames,
            Reception::Idle | Reception::Pending => {}
        }
        counts
    }

    /// Takes in what the flow counted since it last settled, and marks the flow's counts.
    pub(super) fn settle(&mut self, now: &FlowTotals) {
        let counts = self.counts_at(now);
        self.received = counts.received;
        self.bytes = counts.bytes;
        self.lost = saturated(counts.lost);
        self.duplicates = saturated(counts.duplicates);
        self.reordered = saturated(counts.reordered);
        self.source_leaks = saturated(counts.source_leaks);
        self.after_leave = saturated(counts.after_leave);
        self.mark_bytes = now.bytes;
        self.mark_received = now.received as u32;
        self.mark_duplicates = now.duplicates as u32;
        self.mark_reordered = now.reordered as u32;
        self.mark_lost = now.lost as u32;
    }
}

/// A record's figures as read: its counts and its flow's latency range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverFigures {
    pub(super) counts: ReceiverCounts,
    /// (0, 0) before any datagram received.
    pub(super) latency: (Nanos, Nanos),
}

impl ReceiverFigures {
    pub fn counts(&self) -> ReceiverCounts {
        self.counts
    }

    /// Minimum and maximum latency of its flow's frames received (0 and 0 before any
    /// datagram).
    pub fn latency_range(&self) -> (Nanos, Nanos) {
        self.latency
    }
}
