//! The sequence window of one flow (link, source, group) as the link received it: the highest
//! sequence seen and a 64-bit bitmap of the 64 numbers up to it, so that loss, duplicates and
//! reordering are counted exactly within the window, once per frame whatever the number of
//! hosts the frame reaches.
//!
//! Loss is settled as numbers leave the window: a number 64 or more below the highest seen
//! that never came is lost. A datagram still older than that is counted as reordered (it stays
//! counted as lost: it came too late to be told from a long-delayed duplicate). The numbers
//! missing inside the window are added when the counts are read, so a stream that has ended
//! shows its whole loss.

/// Sequence numbers the window holds.
pub const WINDOW: u64 = 64;

/// A flow's counters since it was first read: every frame is one of `received` or
/// `duplicates`; `lost` counts the numbers missing inside the window too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowTotals {
    pub received: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub lost: u64,
    /// Payload bytes of every frame, duplicates too.
    pub bytes: u64,
}

impl FlowTotals {
    /// Frames read: each one received or a duplicate.
    pub fn frames(&self) -> u64 {
        self.received + self.duplicates
    }
}

/// One flow's sequence window and counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct SequenceWindow {
    /// The highest sequence seen, plus one; 0 before the first.
    next: u64,
    /// Bit `i`: sequence `next - 1 - i` was received.
    seen: u64,
    /// Lost as settled (left the window unseen).
    lost: u64,
    received: u64,
    duplicates: u64,
    reordered: u64,
    bytes: u64,
}

impl SequenceWindow {
    /// A frame of `bytes` payload bytes with `sequence`. O(1).
    pub fn receive(&mut self, sequence: u64, bytes: usize) {
        self.bytes += bytes as u64;
        if self.next == 0 {
            // The first: nothing before it was owed (the join's own delay).
            self.next = sequence.saturating_add(1);
            self.seen = u64::MAX;
            self.received += 1;
            return;
        }
        if sequence >= self.next {
            let shift = sequence - self.next + 1;
            if shift >= WINDOW {
                // Every number of the old window leaves it, and those between it and the new
                // one never entered it.
                self.lost += u64::from(self.seen.count_zeros()) + (shift - WINDOW);
                self.seen = 1;
            } else {
                let leaving = self.seen >> (WINDOW - shift);
                self.lost += shift - u64::from(leaving.count_ones());
                self.seen = (self.seen << shift) | 1;
            }
            self.next = sequence + 1;
            self.received += 1;
            return;
        }
        let behind = self.next - 1 - sequence;
        if behind >= WINDOW {
            // Settled as lost already.
            self.reordered += 1;
            self.received += 1;
            return;
        }
        let bit = 1u64 << behind;
        if self.seen & bit != 0 {
            self.duplicates += 1;
        } else {
            self.seen |= bit;
            self.reordered += 1;
            self.received += 1;
        }
    }

    /// The counters now: the numbers missing in the window are counted lost.
    pub fn totals(&self) -> FlowTotals {
        let in_window = if self.next == 0 {
            0
        } else {
            u64::from(self.seen.count_zeros())
        };
        FlowTotals {
            received: self.received,
            duplicates: self.duplicates,
            reordered: self.reordered,
            lost: self.lost + in_window,
            bytes: self.bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(sequences: impl IntoIterator<Item = u64>) -> FlowTotals {
        let mut window = SequenceWindow::default();
        for s in sequences {
            window.receive(s, 100);
        }
        window.totals()
    }

    #[test]
    fn a_clean_stream_counts_nothing_but_received() {
        let c = run(0..1000);
        assert_eq!(
            (c.received, c.lost, c.duplicates, c.reordered),
            (1000, 0, 0, 0)
        );
        assert_eq!(c.bytes, 100_000);
        // Read from the middle: what came before the first is not lost.
        let c = run(500..600);
        assert_eq!((c.received, c.lost), (100, 0));
    }

    #[test]
    fn losses_duplicates_and_swaps_are_exact() {
        // 0..200 without 10, 20 and 21; 30 twice; 40 and 41 swapped.
        let mut seq: Vec<u64> = (0..200).filter(|s| ![10, 20, 21].contains(s)).collect();
        let at30 = seq.iter().position(|&s| s == 30).unwrap();
        seq.insert(at30 + 1, 30);
        let at40 = seq.iter().position(|&s| s == 40).unwrap();
        seq.swap(at40, at40 + 1);
        let c = run(seq);
        assert_eq!(
            (c.received, c.lost, c.duplicates, c.reordered),
            (197, 3, 1, 1)
        );
        assert_eq!(c.frames(), 198);
    }

    #[test]
    fn missing_numbers_inside_the_window_count_when_read() {
        // The stream ends right after a gap: 5 and 6 never come.
        let c = run((0..5).chain(7..10));
        assert_eq!((c.received, c.lost), (8, 2));
        // A gap wider than the window is settled at once, whole.
        let c = run([0, 1, 1000, 1001]);
        assert_eq!((c.received, c.lost), (4, 998));
    }

    #[test]
    fn a_datagram_later_than_the_window_is_reordered_and_stays_lost() {
        let c = run((0..100).filter(|&s| s != 3).chain([3]));
        assert_eq!(
            (c.received, c.lost, c.reordered, c.duplicates),
            (100, 1, 1, 0)
        );
        // Within the window it is reordered only.
        let c = run((0..100).filter(|&s| s != 90).chain([90]));
        assert_eq!((c.received, c.lost, c.reordered), (100, 0, 1));
    }

    #[test]
    fn the_bitmap_wraps_over_many_windows() {
        // Every 64th number dropped, over 100 windows: each loss settled exactly once (a
        // number after the highest seen is not known to be lost: 6400 is received).
        let c = run((0..6401).filter(|s| s % 64 != 63));
        assert_eq!((c.received, c.lost), (6301, 100));
        // A duplicate exactly 63 behind is still seen; 64 behind is past the window.
        let c = run((0..64).chain([0]));
        assert_eq!((c.duplicates, c.reordered), (1, 0));
        let c = run((0..65).chain([0]));
        assert_eq!((c.duplicates, c.reordered), (0, 1));
    }
}
