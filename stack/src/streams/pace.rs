//! When each stream's next packet is due: a stream's packet `k` is due at
//! `start + ⌊k / burst⌋ · burst · 10⁹ / pps` ns (computed from `k`, so that no rounding error
//! accumulates: the rate is exact over any span), and the streams wait in one binary heap of
//! deadlines, so a turn of the loop costs O(log n) per packet sent, never a walk of every
//! stream.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::ids::StreamId;

/// Nanoseconds on the daemon's monotonic clock.
pub type Nanos = u64;

/// One stream's timetable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// When packet 0 was due.
    pub start_ns: Nanos,
    pub pps: u32,
    /// Packets due together.
    pub burst: u32,
    /// Packets sent since `start_ns`.
    pub sent: u64,
    /// The stream ends after this many packets.
    pub limit: Option<u64>,
}

impl Schedule {
    /// When packet `k` is due.
    pub fn due(&self, k: u64) -> Nanos {
        let burst = u64::from(self.burst.max(1));
        let first_of_burst = u128::from(k / burst * burst);
        let offset = first_of_burst * 1_000_000_000 / u128::from(self.pps.max(1));
        self.start_ns
            .saturating_add(u64::try_from(offset).unwrap_or(u64::MAX))
    }

    /// When the next packet is due; `None` once the limit is reached.
    pub fn next_due(&self) -> Option<Nanos> {
        if self.limit.is_some_and(|limit| self.sent >= limit) {
            return None;
        }
        Some(self.due(self.sent))
    }
}

/// The deadlines of the running streams. An entry carries the stream's epoch when it was
/// pushed: a stream stopped, restarted or removed since has a new epoch (or none), so its old
/// entries are dropped when they come up instead of being searched for.
#[derive(Debug, Default)]
pub struct Pacer {
    heap: BinaryHeap<Reverse<(Nanos, StreamId, u32)>>,
}

impl Pacer {
    /// Stream `id` (at `epoch`) is due at `at`.
    pub fn schedule(&mut self, id: StreamId, epoch: u32, at: Nanos) {
        self.heap.push(Reverse((at, id, epoch)));
    }

    /// The earliest deadline (possibly of a stale entry: waking for it is harmless).
    pub fn next_deadline(&self) -> Option<Nanos> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The earliest entry due at `now`, taken off the heap.
    pub fn pop_due(&mut self, now: Nanos) -> Option<(StreamId, u32)> {
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= now => {
                let Reverse((_, id, epoch)) = self.heap.pop().expect("peeked");
                Some((id, epoch))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(pps: u32, burst: u32) -> Schedule {
        Schedule {
            start_ns: 0,
            pps,
            burst,
            sent: 0,
            limit: None,
        }
    }

    #[test]
    fn packets_are_due_at_exact_multiples_of_the_period() {
        let s = schedule(3, 1);
        assert_eq!(s.due(0), 0);
        assert_eq!(s.due(1), 333_333_333);
        assert_eq!(s.due(3), 1_000_000_000, "no drift from a rounded period");
        assert_eq!(s.due(3_000_000), 1_000_000_000_000_000);
        let bursts = schedule(1000, 4);
        assert_eq!(
            (0..9).map(|k| bursts.due(k)).collect::<Vec<_>>(),
            [0, 0, 0, 0, 4_000_000, 4_000_000, 4_000_000, 4_000_000, 8_000_000]
        );
        let done = Schedule {
            sent: 5,
            limit: Some(5),
            ..schedule(10, 1)
        };
        assert_eq!(done.next_due(), None);
    }

    #[test]
    fn the_heap_gives_the_earliest_first_and_only_when_due() {
        let mut pacer = Pacer::default();
        let (a, b) = (StreamId::FIRST, StreamId::FIRST.next());
        pacer.schedule(a, 0, 20);
        pacer.schedule(b, 3, 10);
        assert_eq!(pacer.next_deadline(), Some(10));
        assert_eq!(pacer.pop_due(9), None);
        assert_eq!(pacer.pop_due(25), Some((b, 3)));
        assert_eq!(pacer.pop_due(25), Some((a, 0)));
        assert_eq!(pacer.pop_due(25), None);
    }
}
