//! An index of keys that come in runs of consecutive values: the emulated hosts by IPv4 and
//! IPv6 address, by MAC and by core interface number. A `[[link.hosts]]` block numbers its hosts
//! one after the other in each of these, so a block is one run: a sorted map entry for the run
//! and 4 bytes a host, where a hash map costs 20 to 50 bytes a host (its entries, its control
//! bytes, and a table kept at most 7/8 full and grown by doubling, so often half empty at 10^6).
//!
//! Lookups cost O(log runs). Keys in no order at all make a run each: the index still works,
//! at about the cost of a hash map entry and a small allocation a key.

use std::collections::BTreeMap;

/// A key with a successor: an address or a number.
pub trait RunKey: Copy + Ord {
    /// `self - start`, when it fits in a run's length.
    fn offset_from(self, start: Self) -> Option<u32>;
}

macro_rules! run_keys {
    ($($t:ty),*) => {$(
        impl RunKey for $t {
            fn offset_from(self, start: Self) -> Option<u32> {
                self.checked_sub(start).and_then(|d| u32::try_from(d).ok())
            }
        }
    )*};
}
run_keys!(u32, u64, u128);

/// A slot no value holds.
const VACANT: u32 = u32::MAX;

/// Consecutive keys from a start: their values, `VACANT` where a key was removed.
#[derive(Debug)]
struct Run {
    values: Vec<u32>,
    live: u32,
}

/// Keys of type `K` to values of 32 bits (ids) other than `u32::MAX`.
#[derive(Debug)]
pub struct RunIndex<K> {
    runs: BTreeMap<K, Run>,
    len: usize,
}

impl<K> Default for RunIndex<K> {
    fn default() -> Self {
        RunIndex {
            runs: BTreeMap::new(),
            len: 0,
        }
    }
}

impl<K: RunKey> RunIndex<K> {
    /// The run that holds or would hold `key` at its end: its start, and `key`'s offset.
    fn place(&self, key: K) -> Option<(K, u32)> {
        let (&start, run) = self.runs.range(..=key).next_back()?;
        let offset = key.offset_from(start)?;
        (offset as usize <= run.values.len()).then_some((start, offset))
    }

    pub fn get(&self, key: K) -> Option<u32> {
        let (start, offset) = self.place(key)?;
        let value = *self.runs[&start].values.get(offset as usize)?;
        (value != VACANT).then_some(value)
    }

    /// Sets `key`'s value; the one it had, if any.
    pub fn insert(&mut self, key: K, value: u32) -> Option<u32> {
        debug_assert_ne!(value, VACANT, "u32::MAX marks a removed key");
        let (start, offset) = match self.place(key) {
            Some(place) => place,
            None => {
                self.runs.insert(
                    key,
                    Run {
                        values: Vec::with_capacity(4),
                        live: 0,
                    },
                );
                (key, 0)
            }
        };
        let run = self.runs.get_mut(&start).expect("placed in this run");
        let old = match run.values.get_mut(offset as usize) {
            Some(slot) => std::mem::replace(slot, value),
            None => {
                // Grown by an eighth: a block of a million hosts leaves little empty.
                if run.values.len() == run.values.capacity() {
                    run.values.reserve_exact((run.values.len() / 8).max(4));
                }
                run.values.push(value);
                VACANT
            }
        };
        if old == VACANT {
            run.live += 1;
            self.len += 1;
            None
        } else {
            Some(old)
        }
    }

    /// Removes `key`; its value, if it had one. A run left empty goes.
    pub fn remove(&mut self, key: K) -> Option<u32> {
        let (start, offset) = self.place(key)?;
        let run = self.runs.get_mut(&start).expect("placed in this run");
        let slot = run.values.get_mut(offset as usize)?;
        let old = std::mem::replace(slot, VACANT);
        if old == VACANT {
            return None;
        }
        run.live -= 1;
        self.len -= 1;
        if run.live == 0 {
            self.runs.remove(&start);
        }
        Some(old)
    }

    /// Keys that have a value.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Runs of consecutive keys: what the index costs beyond 4 bytes a key.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Makes room for `more` keys after `key` (a block about to be added from `key` on), so
    /// that the run is allocated once.
    pub fn reserve_after(&mut self, key: K, more: usize) {
        if let Some((start, _)) = self.place(key) {
            if let Some(run) = self.runs.get_mut(&start) {
                run.values.reserve_exact(more);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_of_consecutive_keys_is_one_run() {
        let mut index: RunIndex<u32> = RunIndex::default();
        for n in 0..1000u32 {
            assert_eq!(index.insert(10_000 + n, n), None);
        }
        assert_eq!((index.len(), index.runs()), (1000, 1));
        assert_eq!(index.get(10_000), Some(0));
        assert_eq!(index.get(10_999), Some(999));
        assert_eq!(index.get(9_999), None);
        assert_eq!(index.get(11_000), None);
    }

    #[test]
    fn keys_out_of_order_and_gaps_make_runs_of_their_own() {
        let mut index: RunIndex<u64> = RunIndex::default();
        for (key, value) in [(50, 1), (10, 2), (11, 3), (70, 4), (12, 5), (49, 6)] {
            index.insert(key, value);
        }
        assert_eq!(index.runs(), 4); // 10-12, 49, 50, 70
        for (key, value) in [(50, 1), (10, 2), (11, 3), (70, 4), (12, 5), (49, 6)] {
            assert_eq!(index.get(key), Some(value), "{key}");
        }
        for absent in [0, 9, 13, 48, 51, 69, 71, u64::MAX] {
            assert_eq!(index.get(absent), None, "{absent}");
        }
    }

    #[test]
    fn removal_leaves_the_others_and_drops_an_emptied_run() {
        let mut index: RunIndex<u128> = RunIndex::default();
        for n in 0..10u32 {
            index.insert(u128::from(n) + (1 << 100), n);
        }
        assert_eq!(index.remove((1 << 100) + 3), Some(3));
        assert_eq!(index.remove((1 << 100) + 3), None);
        assert_eq!(index.get((1 << 100) + 3), None);
        assert_eq!(index.get((1 << 100) + 4), Some(4));
        assert_eq!(index.len(), 9);
        // The removed key can come back, with a new value.
        assert_eq!(index.insert((1 << 100) + 3, 33), None);
        assert_eq!(index.get((1 << 100) + 3), Some(33));
        for n in 0..10u128 {
            index.remove((1 << 100) + n);
        }
        assert_eq!((index.len(), index.runs()), (0, 0));
        assert!(index.is_empty());
    }

    #[test]
    fn a_key_set_again_returns_the_old_value() {
        let mut index: RunIndex<u32> = RunIndex::default();
        assert_eq!(index.insert(7, 1), None);
        assert_eq!(index.insert(7, 2), Some(1));
        assert_eq!((index.get(7), index.len()), (Some(2), 1));
    }

    #[test]
    fn keys_at_the_ends_of_the_type() {
        let mut index: RunIndex<u32> = RunIndex::default();
        index.insert(u32::MAX, 1);
        index.insert(0, 2);
        assert_eq!((index.get(u32::MAX), index.get(0)), (Some(1), Some(2)));
        assert_eq!(index.get(u32::MAX - 1), None);
    }

    #[test]
    fn a_reserved_run_grows_without_reallocating() {
        let mut index: RunIndex<u32> = RunIndex::default();
        index.insert(100, 0);
        index.reserve_after(100, 10_000);
        let before = index.runs[&100].values.as_ptr();
        for n in 1..10_000u32 {
            index.insert(100 + n, n);
        }
        assert_eq!(index.runs[&100].values.as_ptr(), before);
    }
}
