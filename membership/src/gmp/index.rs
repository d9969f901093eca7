//! An interface's group index: each group's record slot, in group order. Most emulated hosts
//! hold one or two groups, and a B-tree's first leaf takes 100 bytes (IPv4) or 232 bytes (IPv6)
//! however little it holds: more than the record itself. So a few groups live in a sorted
//! vector sized to them, and the tree takes over past [`FEW`].

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::ops::Bound;

/// Groups kept in the sorted vector; past this, a B-tree (and back under half of it).
const FEW: usize = 16;

/// Group → record slot (u32: the table never holds 2^32 records).
#[derive(Debug)]
// The box keeps the enum at the vector's 24 bytes (the tree variant fits in its niche); the
// extra allocation is one per interface of more than FEW groups.
#[allow(clippy::box_collection)]
pub(crate) enum GroupIndex<A> {
    /// Sorted by group, capacity exactly the length.
    Few(Vec<(A, u32)>),
    /// Boxed, so that the index is no larger than the vector: every interface has one.
    Many(Box<BTreeMap<A, u32>>),
}

impl<A> Default for GroupIndex<A> {
    fn default() -> Self {
        GroupIndex::Few(Vec::new())
    }
}

impl<A: Ord + Copy> GroupIndex<A> {
    pub fn len(&self) -> usize {
        match self {
            GroupIndex::Few(few) => few.len(),
            GroupIndex::Many(many) => many.len(),
        }
    }

    pub fn get(&self, group: &A) -> Option<&u32> {
        match self {
            GroupIndex::Few(few) => few
                .binary_search_by(|(g, _)| g.cmp(group))
                .ok()
                .map(|i| &few[i].1),
            GroupIndex::Many(many) => many.get(group),
        }
    }

    pub fn contains_key(&self, group: &A) -> bool {
        self.get(group).is_some()
    }

    /// Sets the slot of `group`; the slot it had.
    pub fn insert(&mut self, group: A, slot: u32) -> Option<u32> {
        match self {
            GroupIndex::Few(few) => match few.binary_search_by(|(g, _)| g.cmp(&group)) {
                Ok(i) => Some(core::mem::replace(&mut few[i].1, slot)),
                Err(i) if few.len() < FEW => {
                    few.reserve_exact(1);
                    few.insert(i, (group, slot));
                    None
                }
                Err(_) => {
                    let mut many: BTreeMap<A, u32> = few.drain(..).collect();
                    many.insert(group, slot);
                    *self = GroupIndex::Many(Box::new(many));
                    None
                }
            },
            GroupIndex::Many(many) => many.insert(group, slot),
        }
    }

    /// Forgets `group`; its slot.
    pub fn remove(&mut self, group: &A) -> Option<u32> {
        match self {
            GroupIndex::Few(few) => {
                let i = few.binary_search_by(|(g, _)| g.cmp(group)).ok()?;
                let (_, slot) = few.remove(i);
                few.shrink_to_fit();
                Some(slot)
            }
            GroupIndex::Many(many) => {
                let slot = many.remove(group)?;
                if many.len() <= FEW / 2 {
                    let mut few: Vec<(A, u32)> = Vec::with_capacity(many.len());
                    few.extend(core::mem::take(many.as_mut()));
                    *self = GroupIndex::Few(few);
                }
                Some(slot)
            }
        }
    }

    /// Every group and its slot, in group order.
    pub fn iter(&self) -> impl Iterator<Item = (&A, &u32)> {
        let (few, many) = match self {
            GroupIndex::Few(few) => (Some(few.iter().map(|(g, s)| (g, s))), None),
            GroupIndex::Many(many) => (None, Some(many.iter())),
        };
        few.into_iter().flatten().chain(many.into_iter().flatten())
    }

    pub fn keys(&self) -> impl Iterator<Item = &A> {
        self.iter().map(|(g, _)| g)
    }

    pub fn values(&self) -> impl Iterator<Item = &u32> {
        self.iter().map(|(_, s)| s)
    }

    /// The first group after `after` (from the first with `None`), and its slot: a cursor
    /// that resumes in O(log n) however the index changed meanwhile.
    pub fn next_after(&self, after: Option<A>) -> Option<(A, u32)> {
        match self {
            GroupIndex::Few(few) => {
                let start = match after {
                    Some(a) => few.partition_point(|(g, _)| *g <= a),
                    None => 0,
                };
                few.get(start).copied()
            }
            GroupIndex::Many(many) => {
                let from = after.map_or(Bound::Unbounded, Bound::Excluded);
                many.range((from, Bound::Unbounded))
                    .next()
                    .map(|(&g, &s)| (g, s))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::collections::BTreeMap;
    use alloc::vec::Vec;

    use super::{GroupIndex, FEW};

    /// The index against a BTreeMap through growth past FEW and shrinking back: the same
    /// lookups, order and cursor steps.
    #[test]
    fn behaves_as_a_sorted_map_across_both_forms() {
        let mut index = GroupIndex::default();
        let mut model = BTreeMap::new();
        // A scattered insertion order, then removals down to nothing.
        let groups: Vec<u32> = (0..3 * FEW as u32).map(|i| (i * 37) % 101).collect();
        let check = |index: &GroupIndex<u32>, model: &BTreeMap<u32, u32>| {
            assert_eq!(index.len(), model.len());
            let listed: Vec<(u32, u32)> = index.iter().map(|(&g, &s)| (g, s)).collect();
            let want: Vec<(u32, u32)> = model.iter().map(|(&g, &s)| (g, s)).collect();
            assert_eq!(listed, want);
            let mut cursor = None;
            let mut walked = Vec::new();
            while let Some((g, s)) = index.next_after(cursor) {
                walked.push((g, s));
                cursor = Some(g);
            }
            assert_eq!(walked, want);
            for g in 0..101 {
                assert_eq!(index.get(&g), model.get(&g));
            }
        };
        for (slot, &g) in groups.iter().enumerate() {
            assert_eq!(index.insert(g, slot as u32), model.insert(g, slot as u32));
            check(&index, &model);
        }
        assert!(matches!(index, GroupIndex::Many(_)));
        assert_eq!(index.insert(groups[0], 999), model.insert(groups[0], 999));
        for g in &groups {
            assert_eq!(index.remove(g), model.remove(g));
            check(&index, &model);
        }
        assert!(matches!(index, GroupIndex::Few(ref few) if few.capacity() == 0));
        assert_eq!(index.remove(&5), None);
    }

    /// Every interface holds one per family: no larger than the B-tree map it replaced.
    #[test]
    fn the_index_is_no_larger_than_a_map() {
        use core::net::{Ipv4Addr, Ipv6Addr};
        assert!(core::mem::size_of::<GroupIndex<Ipv4Addr>>() <= 24);
        assert!(core::mem::size_of::<GroupIndex<Ipv6Addr>>() <= 24);
    }
}
