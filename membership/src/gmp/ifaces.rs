//! A family's interfaces: each one's state in a dense slab, found through a small index by
//! interface number. A core may hold a million emulated hosts as interfaces: in a B-tree map
//! keyed by interface the states (120 bytes then, 80 now) sat in nodes about half full (about
//! 230 bytes an interface); here they cost their own size and the index about 9 bytes an
//! entry, over its load.
//!
//! The index is a hash table, not a B-tree: every packet, timer and answer of an interface
//! starts by finding it, and at 10^5 interfaces a B-tree search was five nodes deep, a cache
//! miss at each of the lower ones (its compares were the hottest instructions of the General
//! Query answer in `perf`). A hash table finds it in one probe, in about the memory of the
//! B-tree's half-full nodes (8 bytes and a control byte an entry, at 44 to 87 % load).

use hashbrown::HashMap;
use rustc_hash::FxBuildHasher;
use slab::Slab;

use super::table::FamilyIface;
use crate::IfIndex;

/// Interface number → its state.
#[derive(Debug)]
pub(crate) struct IfaceTable<A> {
    /// Each interface's slot in `states` (u32: never 2^32 interfaces).
    slots: HashMap<IfIndex, u32, FxBuildHasher>,
    states: Slab<FamilyIface<A>>,
}

impl<A> Default for IfaceTable<A> {
    fn default() -> Self {
        IfaceTable {
            slots: HashMap::with_hasher(FxBuildHasher),
            states: Slab::new(),
        }
    }
}

impl<A> IfaceTable<A> {
    /// Adds `ifindex` with a fresh state, unless it is there already.
    pub fn add(&mut self, ifindex: IfIndex) {
        if self.slots.contains_key(&ifindex) {
            return;
        }
        // Grown by an eighth at a time, as the record table is: a doubled slab would hold
        // up to a million empty states' worth of memory.
        if self.states.len() == self.states.capacity() {
            let step = (self.states.capacity() / 8).max(16);
            self.states.reserve_exact(step);
        }
        let Ok(slot) = u32::try_from(self.states.vacant_key()) else {
            return; // 2^32 interfaces would take terabytes: never reached
        };
        self.states.insert(FamilyIface::default());
        self.slots.insert(ifindex, slot);
    }

    pub fn get(&self, ifindex: &IfIndex) -> Option<&FamilyIface<A>> {
        let slot = *self.slots.get(ifindex)?;
        self.states.get(slot as usize)
    }

    pub fn get_mut(&mut self, ifindex: &IfIndex) -> Option<&mut FamilyIface<A>> {
        let slot = *self.slots.get(ifindex)?;
        self.states.get_mut(slot as usize)
    }

    /// Takes `ifindex` out; its state.
    pub fn remove(&mut self, ifindex: &IfIndex) -> Option<FamilyIface<A>> {
        let slot = self.slots.remove(ifindex)?;
        Some(self.states.remove(slot as usize))
    }
}

#[cfg(test)]
mod tests {
    use core::net::Ipv4Addr;

    use super::IfaceTable;

    #[test]
    fn interfaces_are_found_by_number_and_slots_reused() {
        let mut table: IfaceTable<Ipv4Addr> = IfaceTable::default();
        for ifindex in [7, 3, 1 << 30] {
            table.add(ifindex);
        }
        table
            .get_mut(&3)
            .unwrap()
            .groups
            .insert(Ipv4Addr::new(239, 1, 1, 1), 9, |_| {
                unreachable!("the first group")
            });
        table.add(3); // already there: kept as it is
        assert_eq!(table.get(&3).unwrap().groups.len(), 1);
        assert!(table.get(&4).is_none());
        assert_eq!(table.remove(&3).unwrap().groups.len(), 1);
        assert!(table.get(&3).is_none() && table.remove(&3).is_none());
        table.add(4);
        assert_eq!(
            table.get(&4).unwrap().groups.len(),
            0,
            "a fresh state in the freed slot"
        );
        assert!(table.get(&7).is_some() && table.get(&(1 << 30)).is_some());
    }
}
