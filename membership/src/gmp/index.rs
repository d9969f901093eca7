//! An interface's group index: each group's record slot, in group order.
//!
//! Most emulated hosts hold one or two groups. The index holds slots only, not the groups:
//! a group is read from its record (the `group_of` argument), so that the index is not a
//! second copy of the keys the records hold. Up to [`INLINE`] slots sit in the index itself
//! (no allocation at all), up to [`FEW`] in a sorted vector sized to them, and past that a
//! B-tree keyed by group takes over (the records are then too many to compare through).

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::ops::Bound;

/// Slots held in place, without allocating: as many as fit beside the vector's niche.
const INLINE: usize = 4;
/// Groups kept in the sorted vector; past this, a B-tree (and back under half of it).
const FEW: usize = 16;
/// An unused place in [`GroupIndex::Inline`]; never a slot (the table stops short of it).
pub(crate) const NO_SLOT: u32 = u32::MAX;

/// Group → record slot (u32: the table never holds 2^32 records).
#[derive(Debug)]
// The box keeps the enum at the vector's 24 bytes (the tree variant fits in its niche); the
// extra allocation is one per interface of more than FEW groups.
#[allow(clippy::box_collection)]
pub(crate) enum GroupIndex<A> {
    /// Up to [`INLINE`] slots sorted by their records' groups, then [`NO_SLOT`]s.
    Inline([u32; INLINE]),
    /// Slots sorted by their records' groups, capacity exactly the length.
    Few(Vec<u32>),
    /// Boxed, so that the index is no larger than the vector: every interface has one.
    Many(Box<BTreeMap<A, u32>>),
}

impl<A> Default for GroupIndex<A> {
    fn default() -> Self {
        GroupIndex::Inline([NO_SLOT; INLINE])
    }
}

/// The slots in use of an inline index.
fn inline_slots(slots: &[u32; INLINE]) -> &[u32] {
    let len = slots.iter().position(|&s| s == NO_SLOT).unwrap_or(INLINE);
    &slots[..len]
}

/// Where `group` is, or would go, among `slots` sorted by group.
fn search<A: Ord>(slots: &[u32], group: &A, group_of: impl Fn(u32) -> A) -> Result<usize, usize> {
    slots.binary_search_by(|&s| group_of(s).cmp(group))
}

impl<A: Ord + Copy> GroupIndex<A> {
    pub fn len(&self) -> usize {
        match self {
            GroupIndex::Inline(slots) => inline_slots(slots).len(),
            GroupIndex::Few(few) => few.len(),
            GroupIndex::Many(many) => many.len(),
        }
    }

    /// The slot of `group`; `group_of` gives the group of a slot the index holds.
    pub fn get(&self, group: &A, group_of: impl Fn(u32) -> A) -> Option<u32> {
        let slots = match self {
            GroupIndex::Inline(slots) => inline_slots(slots),
            GroupIndex::Few(few) => few,
            GroupIndex::Many(many) => return many.get(group).copied(),
        };
        search(slots, group, group_of).ok().map(|i| slots[i])
    }

    /// Adds `group`, which the index does not hold, at `slot` (never [`NO_SLOT`]); the
    /// record at `slot` may already say `group` or not: `group_of` is only asked about the
    /// slots held before.
    pub fn insert(&mut self, group: A, slot: u32, group_of: impl Fn(u32) -> A) {
        debug_assert!(slot != NO_SLOT);
        match self {
            GroupIndex::Inline(slots) => {
                let held = inline_slots(slots);
                let len = held.len();
                let Err(at) = search(held, &group, &group_of) else {
                    return;
                };
                if len < INLINE {
                    slots.copy_within(at..len, at + 1);
                    slots[at] = slot;
                } else {
                    let mut few = Vec::with_capacity(INLINE + 1);
                    few.extend_from_slice(&slots[..at]);
                    few.push(slot);
                    few.extend_from_slice(&slots[at..]);
                    *self = GroupIndex::Few(few);
                }
            }
            GroupIndex::Few(few) => {
                let Err(at) = search(few, &group, &group_of) else {
                    return;
                };
                if few.len() < FEW {
                    few.reserve_exact(1);
                    few.insert(at, slot);
                } else {
                    let mut many: BTreeMap<A, u32> =
                        few.drain(..).map(|s| (group_of(s), s)).collect();
                    many.insert(group, slot);
                    *self = GroupIndex::Many(Box::new(many));
                }
            }
            GroupIndex::Many(many) => {
                many.insert(group, slot);
            }
        }
    }

    /// Forgets `group`, whose record is still where `group_of` finds it; its slot.
    pub fn remove(&mut self, group: &A, group_of: impl Fn(u32) -> A) -> Option<u32> {
        match self {
            GroupIndex::Inline(slots) => {
                let held = inline_slots(slots);
                let len = held.len();
                let at = search(held, group, &group_of).ok()?;
                let slot = slots[at];
                slots.copy_within(at + 1..len, at);
                slots[len - 1] = NO_SLOT;
                Some(slot)
            }
            GroupIndex::Few(few) => {
                let at = search(few, group, &group_of).ok()?;
                let slot = few.remove(at);
                if few.len() <= INLINE {
                    let mut slots = [NO_SLOT; INLINE];
                    slots[..few.len()].copy_from_slice(few);
                    *self = GroupIndex::Inline(slots);
                } else {
                    few.shrink_to_fit();
                }
                Some(slot)
            }
            GroupIndex::Many(many) => {
                let slot = many.remove(group)?;
                if many.len() <= FEW / 2 {
                    let mut few: Vec<u32> = Vec::with_capacity(many.len());
                    few.extend(many.values().copied());
                    *self = GroupIndex::Few(few);
                }
                Some(slot)
            }
        }
    }

    /// Every slot, in group order.
    pub fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        let (few, many) = match self {
            GroupIndex::Inline(slots) => (Some(inline_slots(slots).iter()), None),
            GroupIndex::Few(few) => (Some(few.iter()), None),
            GroupIndex::Many(many) => (None, Some(many.values())),
        };
        few.into_iter()
            .flatten()
            .chain(many.into_iter().flatten())
            .copied()
    }

    /// The first group after `after` (from the first with `None`), and its slot: a cursor
    /// that resumes in O(log n) however the index changed meanwhile.
    pub fn next_after(&self, after: Option<A>, group_of: impl Fn(u32) -> A) -> Option<(A, u32)> {
        let slots = match self {
            GroupIndex::Inline(slots) => inline_slots(slots),
            GroupIndex::Few(few) => few,
            GroupIndex::Many(many) => {
                let from = after.map_or(Bound::Unbounded, Bound::Excluded);
                return many
                    .range((from, Bound::Unbounded))
                    .next()
                    .map(|(&g, &s)| (g, s));
            }
        };
        let start = match after {
            Some(a) => slots.partition_point(|&s| group_of(s).cmp(&a) != Ordering::Greater),
            None => 0,
        };
        slots.get(start).map(|&s| (group_of(s), s))
    }
}

#[cfg(test)]
mod tests {
    use alloc::collections::BTreeMap;
    use alloc::vec::Vec;

    use super::{GroupIndex, FEW, INLINE};

    /// The index against a BTreeMap through growth past INLINE and FEW and shrinking back:
    /// the same lookups, order and cursor steps. Slot `s` holds group `groups[s]`, as the
    /// record table would.
    #[test]
    fn behaves_as_a_sorted_map_across_all_forms() {
        let mut index = GroupIndex::default();
        let mut model = BTreeMap::new();
        // A scattered insertion order, then removals down to nothing.
        let groups: Vec<u32> = (0..3 * FEW as u32).map(|i| (i * 37) % 101).collect();
        let group_of = |s: u32| groups[s as usize];
        let check = |index: &GroupIndex<u32>, model: &BTreeMap<u32, u32>| {
            assert_eq!(index.len(), model.len());
            let slots: Vec<u32> = index.slots().collect();
            let want: Vec<u32> = model.values().copied().collect();
            assert_eq!(slots, want);
            let mut cursor = None;
            let mut walked = Vec::new();
            while let Some((g, s)) = index.next_after(cursor, group_of) {
                assert_eq!(group_of(s), g);
                walked.push(s);
                cursor = Some(g);
            }
            assert_eq!(walked, want);
            for g in 0..101 {
                assert_eq!(index.get(&g, group_of), model.get(&g).copied());
            }
        };
        let mut forms = Vec::new();
        for (slot, &g) in groups.iter().enumerate() {
            index.insert(g, slot as u32, group_of);
            model.insert(g, slot as u32);
            check(&index, &model);
            forms.push(core::mem::discriminant(&index));
        }
        assert!(matches!(index, GroupIndex::Many(_)));
        assert!(matches!(
            GroupIndex::<u32>::default(),
            GroupIndex::Inline(_)
        ));
        // Inline up to INLINE groups, a vector up to FEW.
        assert_eq!(forms[INLINE - 1], forms[0]);
        assert_ne!(forms[INLINE], forms[0]);
        assert_eq!(forms[FEW - 1], forms[INLINE]);
        for g in &groups {
            assert_eq!(index.remove(g, group_of), model.remove(g));
            check(&index, &model);
            if let GroupIndex::Few(few) = &index {
                assert_eq!(few.capacity(), few.len(), "a vector sized to its slots");
            }
        }
        assert!(matches!(index, GroupIndex::Inline(_)));
        assert_eq!(index.remove(&5, group_of), None);
    }

    /// Every interface holds one per family: no larger than the B-tree map it replaced.
    #[test]
    fn the_index_is_no_larger_than_a_map() {
        use core::net::{Ipv4Addr, Ipv6Addr};
        assert!(core::mem::size_of::<GroupIndex<Ipv4Addr>>() <= 24);
        assert!(core::mem::size_of::<GroupIndex<Ipv6Addr>>() <= 24);
    }
}
