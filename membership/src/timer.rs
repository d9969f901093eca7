//! A hierarchical timing wheel at 1 ms resolution.
//!
//! The seeds keep one countdown per membership record and decrement every one of them on each
//! 200 ms fast timeout (`igmp_fasttimo`, `mld6_fasttimeo`): the cost of a tick is the number of
//! records. Here a tick costs what expires plus a scan of at most [`LEVELS`] occupancy words.
//!
//! Layout: `LEVELS` levels of 64 slots. Level `l` slots are `64^l` ms wide. A timer lives at the
//! level of the highest 6-bit digit in which its deadline differs from the wheel's current time,
//! so that everything in a lower level is due before anything in a higher one. Each slot is an
//! intrusive doubly linked list threaded through one slab of entries, which makes schedule and
//! cancel O(1). When time reaches a slot of a level above 0, its entries move down ("cascade");
//! each entry cascades at most `LEVELS - 1` times over its life.

use crate::time::Instant;
use alloc::vec::Vec;
use core::num::NonZeroU32;

const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;
/// Seven levels cover 2^42 ms, about 139 years.
pub const LEVELS: usize = 7;
const RANGE: u64 = 1 << (SLOT_BITS as usize * LEVELS);
/// Deadlines further out than this are pulled in to it (they then fire "only" 69 years out).
const MAX_AHEAD: u64 = RANGE / 2;
const NIL: u32 = u32::MAX;
/// A wheel of fewer entries than this is never trimmed: too small to matter.
const TRIM_FROM: usize = 4096;

/// A handle to a scheduled timer. Stale handles (the timer fired or was cancelled) are harmless:
/// the generation check makes `cancel` and `deadline` return `None` for them.
///
/// The generation is never zero, so that `Option<TimerId>` takes no more room than a
/// `TimerId` (every group record holds one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId {
    index: u32,
    generation: NonZeroU32,
}

#[derive(Debug)]
struct Entry<K> {
    key: Option<K>,
    deadline: u64,
    prev: u32,
    next: u32,
    level: u8,
    slot: u8,
    generation: NonZeroU32,
}

/// A timing wheel of keys `K`: what a timer carries back to its owner when it fires.
#[derive(Debug)]
pub struct TimerWheel<K> {
    entries: Vec<Entry<K>>,
    free_head: u32,
    heads: [[u32; SLOTS]; LEVELS],
    occupied: [u64; LEVELS],
    /// Wheel time: every timer with a deadline at or before it has fired.
    elapsed: u64,
    len: usize,
    /// Timers released since the free tail of `entries` was last looked at ([`Self::trim`]).
    released: usize,
    /// The highest generation of an entry cut off the end of `entries`: a stale handle may
    /// still name it, so an entry made anew at its index starts above it.
    generation_floor: u32,
}

impl<K: Copy> Default for TimerWheel<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Copy> TimerWheel<K> {
    pub fn new() -> Self {
        TimerWheel {
            entries: Vec::new(),
            free_head: NIL,
            heads: [[NIL; SLOTS]; LEVELS],
            occupied: [0; LEVELS],
            elapsed: 0,
            len: 0,
            released: 0,
            generation_floor: 0,
        }
    }

    /// Number of scheduled timers.
    #[cfg_attr(not(any(test, feature = "__bench")), allow(dead_code))]
    pub fn len(&self) -> usize {
        self.len
    }

    #[cfg_attr(not(any(test, feature = "__bench")), allow(dead_code))]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The wheel's current time: the last `advance` target.
    #[cfg_attr(not(any(test, feature = "__bench")), allow(dead_code))]
    pub fn now(&self) -> Instant {
        Instant::from_millis(self.elapsed)
    }

    /// Schedules `key` to fire at `deadline`. A deadline in the past fires on the next
    /// `advance`. O(1).
    pub fn schedule(&mut self, deadline: Instant, key: K) -> TimerId {
        let deadline = deadline
            .as_millis()
            .clamp(self.elapsed, self.elapsed + MAX_AHEAD);
        let index = self.alloc(key, deadline);
        self.link(index);
        self.len += 1;
        TimerId {
            index,
            generation: self.entries[index as usize].generation,
        }
    }

    /// Cancels a timer; returns its key if it was still pending. O(1).
    pub fn cancel(&mut self, id: TimerId) -> Option<K> {
        let entry = self.entries.get(id.index as usize)?;
        if entry.generation != id.generation || entry.key.is_none() {
            return None;
        }
        self.unlink(id.index);
        self.len -= 1;
        let key = self.release(id.index);
        self.trim();
        Some(key)
    }

    /// The deadline of a pending timer.
    pub fn deadline(&self, id: TimerId) -> Option<Instant> {
        let entry = self.entries.get(id.index as usize)?;
        (entry.generation == id.generation && entry.key.is_some())
            .then(|| Instant::from_millis(entry.deadline))
    }

    /// When the driver should call `advance` next. Exact for timers due within 64 ms of the
    /// wheel's time; for later ones it is the start of their slot, never later than the real
    /// deadline (waking early only moves them down a level).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.next_slot()
            .map(|(_, _, start)| Instant::from_millis(start.max(self.elapsed)))
    }

    /// Advances the wheel to `now`, calling `fire` for every timer due by then, in deadline
    /// order. Cost: the timers that fire, the entries that cascade, and one bitmap scan per
    /// level per visited slot.
    pub fn advance(&mut self, now: Instant, mut fire: impl FnMut(K, Instant)) {
        let now = now.as_millis();
        if now < self.elapsed {
            return;
        }
        while let Some((level, slot, start)) = self.next_slot() {
            if start > now {
                break;
            }
            self.elapsed = self.elapsed.max(start);
            let mut index = core::mem::replace(&mut self.heads[level][slot], NIL);
            self.occupied[level] &= !(1u64 << slot);
            while index != NIL {
                let next = self.entries[index as usize].next;
                let deadline = self.entries[index as usize].deadline;
                if deadline <= self.elapsed {
                    self.len -= 1;
                    let key = self.release(index);
                    fire(key, Instant::from_millis(deadline));
                } else {
                    // Cascade: relative to the new wheel time it belongs to a lower level.
                    self.link(index);
                }
                index = next;
            }
        }
        self.elapsed = now;
        self.trim();
    }

    /// Gives back the memory of a burst: a million hosts' retransmissions schedule a million
    /// timers at once, and the entries stayed allocated long after they fired. Once as many
    /// timers were released as there are entries (so the look costs O(1) a timer, amortised),
    /// if at most a quarter are in use and the free tail is at least half of them, the tail
    /// is cut off and the free list rebuilt lowest index first (so that new timers fill the
    /// front and the next cut finds a long tail).
    fn trim(&mut self) {
        if self.released < self.entries.len() || self.entries.len() < TRIM_FROM {
            return;
        }
        self.released = 0;
        if self.len.saturating_mul(4) > self.entries.len() {
            return;
        }
        let mut keep = self.entries.len();
        while keep > 0 && self.entries[keep - 1].key.is_none() {
            keep -= 1;
        }
        if keep > self.entries.len() / 2 {
            return;
        }
        for entry in &self.entries[keep..] {
            self.generation_floor = self.generation_floor.max(entry.generation.get());
        }
        self.entries.truncate(keep);
        self.entries.shrink_to_fit();
        self.free_head = NIL;
        for index in (0..keep).rev() {
            if self.entries[index].key.is_none() {
                self.entries[index].next = self.free_head;
                self.free_head = index as u32;
            }
        }
    }

    /// Entries allocated, live or free: what [`Self::trim`] bounds.
    #[cfg_attr(not(any(test, feature = "__bench")), allow(dead_code))]
    pub fn capacity(&self) -> usize {
        self.entries.capacity()
    }

    /// The first occupied slot: (level, slot, the time at which the slot starts).
    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        // Everything in level l is due before anything in level l + 1 (see module docs), so
        // the first level with an occupied slot holds the next expiry.
        for level in 0..LEVELS {
            let occupied = self.occupied[level];
            if occupied == 0 {
                continue;
            }
            let shift = SLOT_BITS * level as u32;
            let current = ((self.elapsed >> shift) as usize) & (SLOTS - 1);
            let offset = occupied.rotate_right(current as u32).trailing_zeros() as usize;
            let slot = (current + offset) & (SLOTS - 1);
            let level_span = 1u64 << (shift + SLOT_BITS);
            let level_start = self.elapsed & !(level_span - 1);
            let mut start = level_start + ((slot as u64) << shift);
            if slot < current {
                // Only reachable for deadlines pulled in by MAX_AHEAD in the top level.
                start += level_span;
            }
            return Some((level, slot, start));
        }
        None
    }

    fn level_and_slot(&self, deadline: u64) -> (usize, usize) {
        let differing = (self.elapsed ^ deadline) | (SLOTS as u64 - 1);
        let highest_bit = 63 - differing.leading_zeros();
        let level = ((highest_bit / SLOT_BITS) as usize).min(LEVELS - 1);
        let slot = ((deadline >> (SLOT_BITS * level as u32)) as usize) & (SLOTS - 1);
        (level, slot)
    }

    fn link(&mut self, index: u32) {
        let (level, slot) = self.level_and_slot(self.entries[index as usize].deadline);
        let head = self.heads[level][slot];
        {
            let entry = &mut self.entries[index as usize];
            entry.level = level as u8;
            entry.slot = slot as u8;
            entry.prev = NIL;
            entry.next = head;
        }
        if head != NIL {
            self.entries[head as usize].prev = index;
        }
        self.heads[level][slot] = index;
        self.occupied[level] |= 1u64 << slot;
    }

    fn unlink(&mut self, index: u32) {
        let (prev, next, level, slot) = {
            let e = &self.entries[index as usize];
            (e.prev, e.next, e.level as usize, e.slot as usize)
        };
        if prev == NIL {
            self.heads[level][slot] = next;
            if next == NIL {
                self.occupied[level] &= !(1u64 << slot);
            }
        } else {
            self.entries[prev as usize].next = next;
        }
        if next != NIL {
            self.entries[next as usize].prev = prev;
        }
    }

    fn alloc(&mut self, key: K, deadline: u64) -> u32 {
        if self.free_head != NIL {
            let index = self.free_head;
            let entry = &mut self.entries[index as usize];
            self.free_head = entry.next;
            entry.key = Some(key);
            entry.deadline = deadline;
            index
        } else {
            let index = u32::try_from(self.entries.len()).expect("fewer than 2^32 timers");
            self.entries.push(Entry {
                key: Some(key),
                deadline,
                prev: NIL,
                next: NIL,
                level: 0,
                slot: 0,
                generation: NonZeroU32::new(self.generation_floor.wrapping_add(1))
                    .unwrap_or(NonZeroU32::MIN),
            });
            index
        }
    }

    fn release(&mut self, index: u32) -> K {
        let entry = &mut self.entries[index as usize];
        entry.generation = entry.generation.checked_add(1).unwrap_or(NonZeroU32::MIN);
        entry.next = self.free_head;
        self.free_head = index;
        self.released += 1;
        entry.key.take().expect("released entry was live")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, Rng, SeedableRng};

    fn ms(v: u64) -> Instant {
        Instant::from_millis(v)
    }

    fn drain(wheel: &mut TimerWheel<u32>, to: u64) -> Vec<(u32, u64)> {
        let mut fired = Vec::new();
        wheel.advance(ms(to), |k, at| fired.push((k, at.as_millis())));
        fired
    }

    #[test]
    fn fires_exactly_at_deadline() {
        let mut wheel = TimerWheel::new();
        wheel.schedule(ms(5), 1u32);
        wheel.schedule(ms(64), 2);
        wheel.schedule(ms(4097), 3);
        assert_eq!(drain(&mut wheel, 4), vec![]);
        assert_eq!(drain(&mut wheel, 5), vec![(1, 5)]);
        assert_eq!(drain(&mut wheel, 63), vec![]);
        assert_eq!(drain(&mut wheel, 64), vec![(2, 64)]);
        assert_eq!(drain(&mut wheel, 4096), vec![]);
        assert_eq!(wheel.next_deadline(), Some(ms(4097)));
        assert_eq!(drain(&mut wheel, 5000), vec![(3, 4097)]);
        assert!(wheel.is_empty());
        assert_eq!(wheel.next_deadline(), None);
    }

    #[test]
    fn past_deadline_fires_on_next_advance() {
        let mut wheel = TimerWheel::new();
        drain(&mut wheel, 1000);
        wheel.schedule(ms(10), 7u32);
        assert_eq!(wheel.next_deadline(), Some(ms(1000)));
        assert_eq!(drain(&mut wheel, 1000), vec![(7, 1000)]);
    }

    #[test]
    fn cancel_and_stale_handles() {
        let mut wheel = TimerWheel::new();
        let a = wheel.schedule(ms(100), 1u32);
        let b = wheel.schedule(ms(100), 2);
        assert_eq!(wheel.deadline(a), Some(ms(100)));
        assert_eq!(wheel.cancel(a), Some(1));
        assert_eq!(wheel.cancel(a), None);
        assert_eq!(wheel.deadline(a), None);
        // The freed entry is reused; the old handle must not reach the new timer.
        let c = wheel.schedule(ms(200), 3);
        assert_eq!(wheel.cancel(a), None);
        assert_eq!(drain(&mut wheel, 150), vec![(2, 100)]);
        assert_eq!(wheel.cancel(b), None);
        assert_eq!(wheel.cancel(c), Some(3));
        assert!(wheel.is_empty());
    }

    #[test]
    fn far_deadlines_are_capped_not_lost() {
        let mut wheel = TimerWheel::new();
        wheel.schedule(ms(u64::MAX), 9u32);
        assert!(wheel.next_deadline().is_some());
        assert_eq!(drain(&mut wheel, MAX_AHEAD - 1), vec![]);
        assert_eq!(drain(&mut wheel, MAX_AHEAD), vec![(9, MAX_AHEAD)]);
    }

    #[test]
    fn a_burst_gives_its_memory_back_and_stale_handles_stay_stale() {
        let mut wheel = TimerWheel::new();
        let ids: Vec<TimerId> = (0..100_000u32).map(|k| wheel.schedule(ms(10), k)).collect();
        let peak = wheel.capacity();
        assert!(peak >= 100_000);
        assert_eq!(drain(&mut wheel, 10).len(), 100_000);
        assert!(
            wheel.capacity() < TRIM_FROM,
            "{} entries kept",
            wheel.capacity()
        );
        // New timers take the cut-off indexes again: the old handles reach none of them.
        let new: Vec<TimerId> = (0..200u32).map(|k| wheel.schedule(ms(20), k)).collect();
        for id in &ids {
            assert_eq!(wheel.cancel(*id), None);
            assert_eq!(wheel.deadline(*id), None);
        }
        assert_eq!(wheel.len(), 200);
        assert_eq!(wheel.cancel(new[7]), Some(7));
        assert_eq!(drain(&mut wheel, 20).len(), 199);
    }

    #[test]
    fn a_wheel_still_in_use_keeps_its_entries() {
        let mut wheel = TimerWheel::new();
        for k in 0..10_000u32 {
            wheel.schedule(ms(10 + u64::from(k % 2) * 1_000), k);
        }
        // Half fire, half stay: more than a quarter in use, nothing is cut.
        assert_eq!(drain(&mut wheel, 10).len(), 5_000);
        assert!(wheel.capacity() >= 10_000);
        assert_eq!(drain(&mut wheel, 2_000).len(), 5_000);
    }

    /// Against a sorted reference: random schedules, cancels and advances; every timer fires
    /// once, at its deadline, in deadline order, and never early.
    #[test]
    fn matches_reference_model() {
        reference_model(0x5eed, 20, false);
    }

    /// The same with bursts of thousands of timers at once, so that the wheel trims its
    /// entries between them: every handle still reaches its own timer, and only it.
    #[test]
    fn matches_reference_model_through_bursts_and_trims() {
        reference_model(0xb0057, 6, true);
    }

    fn reference_model(seed: u64, rounds: usize, bursts: bool) {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut trimmed = false;
        for _round in 0..rounds {
            let mut wheel = TimerWheel::new();
            let mut live: Vec<(TimerId, u32, u64)> = Vec::new();
            let mut now = 0u64;
            let mut next_key = 0u32;
            for _ in 0..2000 {
                if bursts && rng.gen_range(0..40) == 0 {
                    for _ in 0..rng.gen_range(4_000..12_000) {
                        let deadline = now + rng.gen_range(0..200);
                        let id = wheel.schedule(ms(deadline), next_key);
                        live.push((id, next_key, deadline));
                        next_key += 1;
                    }
                }
                let before = wheel.capacity();
                match rng.gen_range(0..10) {
                    0..=4 => {
                        let span = [10u64, 100, 5_000, 400_000, 50_000_000][rng.gen_range(0..5)];
                        let deadline = now + rng.gen_range(0..span);
                        let id = wheel.schedule(ms(deadline), next_key);
                        live.push((id, next_key, deadline));
                        next_key += 1;
                    }
                    5 | 6 if !live.is_empty() => {
                        let i = rng.gen_range(0..live.len());
                        let (id, key, _) = live.swap_remove(i);
                        assert_eq!(wheel.cancel(id), Some(key));
                    }
                    _ => {
                        let step = [1u64, 7, 64, 3000, 1_000_000][rng.gen_range(0..5)];
                        now += rng.gen_range(0..step);
                        if let Some(next) = wheel.next_deadline() {
                            let due = live.iter().map(|l| l.2).min().unwrap();
                            assert!(next.as_millis() <= due.max(wheel.now().as_millis()));
                        }
                        let fired = drain(&mut wheel, now);
                        let mut expected: Vec<(u32, u64)> = live
                            .iter()
                            .filter(|l| l.2 <= now)
                            .map(|l| (l.1, l.2))
                            .collect();
                        live.retain(|l| l.2 > now);
                        expected.sort_by_key(|e| (e.1, e.0));
                        let mut got = fired.clone();
                        got.sort_by_key(|e| (e.1, e.0));
                        assert_eq!(got, expected);
                        assert!(fired.windows(2).all(|w| w[0].1 <= w[1].1), "in order");
                    }
                }
                trimmed |= wheel.capacity() < before;
                assert_eq!(wheel.len(), live.len());
            }
        }
        assert_eq!(trimmed, bursts, "the wheel trimmed its entries");
    }
}
