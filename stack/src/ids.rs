//! The daemon's ids, each its own type: a [`LinkId`] cannot index the hosts, nor a
//! [`HostId`] the cores, nor is a [`ListenerId`] taken for either. Their tables are [`Table`]s (a slab whose keys are reused) and
//! [`IdVec`]s (a vector that only grows), indexed by their own id type alone.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Index, IndexMut, Range};

use slab::Slab;

/// An id: a key of one kind of table.
pub trait Id: Copy {
    fn from_index(index: usize) -> Self;
    fn index(self) -> usize;
}

macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident: $repr:ty;)*) => {$(
        $(#[$doc])*
        #[repr(transparent)]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name($repr);

        impl Id for $name {
            /// Tables never reach `2^32` entries (a host costs hundreds of bytes: that would be
            /// a terabyte), so the narrowing never loses bits.
            fn from_index(index: usize) -> Self {
                $name(index as $repr)
            }
            fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        /// The number alone, as logs, `show` and owner names write it.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    )*};
}

ids! {
    /// A link (a TUN or TAP device and its hosts): its key in the daemon's links.
    LinkId: u32;
    /// An emulated host: its key in the daemon's hosts (reused once the host is gone). 32 bits:
    /// it is a value in several per-host indexes, where a `usize` would cost 4 bytes a host
    /// each.
    HostId: u32;
    /// A membership core (one `membership::Host`, serving many emulated hosts' interfaces):
    /// its place in the daemon's cores, which only grow.
    CoreId: u32;
    /// A `listen` client: numbered from 1 in the order they came, never reused; `show` lists
    /// it, its join's owner name in the core is made of it, and its socket's mio token. 64
    /// bits: numbers are never reused, and a long-lived daemon may see billions of clients.
    ListenerId: u64;
    /// A test stream: numbered from 1 in the order they were made, never reused, so that the
    /// id its packets carry names one stream for the daemon's life. 32 bits, as the stream
    /// header carries it.
    StreamId: u32;
    /// A (link, source, group) the hosts receive test streams from (`streams::check`): its
    /// place in the receivers' flows, which only grow.
    FlowId: u32;
}

impl StreamId {
    /// The first stream's.
    pub const FIRST: StreamId = StreamId(1);

    /// The id of the stream after this one (the last id, 2^32 - 1, stays the last).
    pub fn next(self) -> StreamId {
        StreamId(self.0.saturating_add(1))
    }

    /// As the stream header and the protocol write it.
    pub fn as_u32(self) -> u32 {
        self.0
    }
}

impl ListenerId {
    /// The first listener's.
    pub const FIRST: ListenerId = ListenerId(1);

    /// The id of the listener after this one.
    pub fn next(self) -> ListenerId {
        ListenerId(self.0 + 1)
    }

    /// As the protocol writes it.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

/// A slab whose keys are ids of type `I`.
pub struct Table<I, T> {
    slab: Slab<T>,
    id: PhantomData<I>,
}

impl<I: Id, T> Default for Table<I, T> {
    fn default() -> Self {
        Table {
            slab: Slab::new(),
            id: PhantomData,
        }
    }
}

impl<I: Id, T> Table<I, T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, value: T) -> I {
        // Grown by an eighth at a time, as the core's tables are: doubling would leave up to
        // half of a million-host table's memory empty.
        if self.slab.len() == self.slab.capacity() {
            let step = (self.slab.capacity() / 8).max(16);
            self.slab.reserve_exact(step);
        }
        I::from_index(self.slab.insert(value))
    }

    /// The id the next [`Table::insert`] returns.
    pub fn next_id(&self) -> I {
        I::from_index(self.slab.vacant_key())
    }

    /// Takes `id` out; panics if it is not there.
    pub fn remove(&mut self, id: I) -> T {
        self.slab.remove(id.index())
    }

    pub fn get(&self, id: I) -> Option<&T> {
        self.slab.get(id.index())
    }

    pub fn get_mut(&mut self, id: I) -> Option<&mut T> {
        self.slab.get_mut(id.index())
    }

    pub fn contains(&self, id: I) -> bool {
        self.slab.contains(id.index())
    }

    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    pub fn iter(&self) -> TableIter<'_, I, T> {
        self.slab.iter().map(|(k, v)| (I::from_index(k), v))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (I, &mut T)> {
        self.slab.iter_mut().map(|(k, v)| (I::from_index(k), v))
    }
}

/// [`Table::iter`].
pub type TableIter<'a, I, T> = std::iter::Map<slab::Iter<'a, T>, fn((usize, &'a T)) -> (I, &'a T)>;

impl<I: Id, T> Index<I> for Table<I, T> {
    type Output = T;
    fn index(&self, id: I) -> &T {
        &self.slab[id.index()]
    }
}

impl<I: Id, T> IndexMut<I> for Table<I, T> {
    fn index_mut(&mut self, id: I) -> &mut T {
        &mut self.slab[id.index()]
    }
}

/// A vector whose places are ids of type `I`; it only grows, so an id stays valid.
pub struct IdVec<I, T> {
    items: Vec<T>,
    id: PhantomData<I>,
}

impl<I: Id, T> Default for IdVec<I, T> {
    fn default() -> Self {
        IdVec {
            items: Vec::new(),
            id: PhantomData,
        }
    }
}

impl<I: Id, T> IdVec<I, T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, value: T) -> I {
        self.items.push(value);
        I::from_index(self.items.len() - 1)
    }

    pub fn get(&self, id: I) -> Option<&T> {
        self.items.get(id.index())
    }

    /// Every id once, from the one at `start` (modulo the length) round to the one before it:
    /// a round robin's turn, and the position after each id.
    /// It borrows nothing, so that the walk may change the items.
    pub fn ids_from(&self, start: usize) -> IdsFrom<I> {
        let len = self.items.len();
        let first = start % len.max(1);
        let step: fn(usize) -> (I, usize) = |i| (I::from_index(i), i + 1);
        (first..len).chain(0..first).map(step)
    }

    /// The first id, if any: where a walk of every item starts.
    pub fn first_id(&self) -> Option<I> {
        (!self.items.is_empty()).then(|| I::from_index(0))
    }

    /// The id after `id`, if any: a walk's next step.
    pub fn id_after(&self, id: I) -> Option<I> {
        let next = id.index() + 1;
        (next < self.items.len()).then(|| I::from_index(next))
    }

    pub fn get_mut(&mut self, id: I) -> Option<&mut T> {
        self.items.get_mut(id.index())
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }

    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, T> {
        self.items.iter_mut()
    }

    /// Every item with its id.
    pub fn iter_ids(&self) -> impl Iterator<Item = (I, &T)> {
        self.items
            .iter()
            .enumerate()
            .map(|(i, v)| (I::from_index(i), v))
    }

    /// The same places, holding what `f` makes of each item.
    pub fn map<'a, U>(&'a mut self, f: impl FnMut(&'a mut T) -> U) -> IdVec<I, U> {
        IdVec {
            items: self.items.iter_mut().map(f).collect(),
            id: PhantomData,
        }
    }
}

/// [`IdVec::ids_from`].
pub type IdsFrom<I> =
    std::iter::Map<std::iter::Chain<Range<usize>, Range<usize>>, fn(usize) -> (I, usize)>;

impl<I: Id, T> Index<I> for IdVec<I, T> {
    type Output = T;
    fn index(&self, id: I) -> &T {
        &self.items[id.index()]
    }
}

impl<I: Id, T> IndexMut<I> for IdVec<I, T> {
    fn index_mut(&mut self, id: I) -> &mut T {
        &mut self.items[id.index()]
    }
}

impl<'a, I: Id, T> IntoIterator for &'a IdVec<I, T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl<'a, I: Id, T> IntoIterator for &'a mut IdVec<I, T> {
    type Item = &'a mut T;
    type IntoIter = std::slice::IterMut<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter_mut()
    }
}

impl<'a, I: Id, T> IntoIterator for &'a Table<I, T> {
    type Item = (I, &'a T);
    type IntoIter = TableIter<'a, I, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_their_places() {
        let mut hosts: Table<HostId, &str> = Table::new();
        let next = hosts.next_id();
        let a = hosts.insert("a");
        assert_eq!(a, next);
        let b = hosts.insert("b");
        assert_eq!((hosts[a], hosts[b]), ("a", "b"));
        assert_eq!(hosts.remove(a), "a");
        assert!(!hosts.contains(a) && hosts.get(a).is_none());
        // A slab reuses the key of a removed entry.
        assert_eq!(hosts.insert("c"), a);
        let ids: Vec<HostId> = hosts.iter().map(|(id, _)| id).collect();
        assert_eq!(ids, [a, b]);

        let mut cores: IdVec<CoreId, u32> = IdVec::new();
        let c = cores.push(7);
        cores[c] += 1;
        assert_eq!(cores.iter_ids().collect::<Vec<_>>(), [(c, &8)]);
        assert_eq!(format!("{c:?}"), "CoreId(0)");
        let d = cores.push(9);
        assert_eq!(
            (cores.first_id(), cores.id_after(c), cores.id_after(d)),
            (Some(c), Some(d), None)
        );
        let turn: Vec<(CoreId, usize)> = cores.ids_from(3).collect();
        assert_eq!(turn, [(d, 2), (c, 1)]);
    }
}
