//! A group record: one group on one interface, kept to 32 bytes (IPv4) or 48 (IPv6). A core
//! may hold a million emulated hosts' memberships, nearly all of them plain any-source joins
//! with nothing pending: those hold their count of joins, their one timer and a few bytes of
//! mode state. What only filtered requests, source-specific queries and source news need is
//! boxed out of line ([`Rare`]), allocated while one of them is there and dropped after.

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use super::compat::Compat;
use super::v1v2::machine::{Member, MemberState};
use super::v3::Retransmit;
use crate::filter::{apply_change, merge_all, Filter, Request, RequestChange, Requests};
use crate::timer::TimerId;
use crate::{Error, IfIndex};

/// An entry of the group table: one group on one interface (not a group record of a v3
/// report, which is `wire::GroupRecord`).
#[derive(Debug)]
pub(crate) struct GroupEntry<A> {
    pub(super) iface: IfIndex,
    pub(super) group: A,
    /// Plain anonymous any-source joins (EXCLUDE {}), by far the most common requests: only
    /// counted. The others are in `rare`. A record without requests is a v3 group being left:
    /// only its leave's retransmissions keep it, and it is not joined any more.
    any_source: u32,
    /// The v1/v2 report timer or the v3 query-response timer.
    pub(super) timer: Option<TimerId>,
    /// What the interface's compatibility mode keeps for the group.
    pub(super) mode: GroupMode,
    /// Everything else; `None` while it would hold nothing.
    rare: Option<Box<Rare<A>>>,
}

/// A group's state in each compatibility mode; an interface switches all its records at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupMode {
    /// IGMPv1/v2, MLDv1: the group state machine.
    Older(Member),
    /// IGMPv3, MLDv2.
    V3 {
        /// Filter-mode change reports (TO_IN / TO_EX) still to send: every plain join and
        /// leave is one, and it costs this byte, nothing allocated.
        mode_change: u8,
        /// The group was reported in an older mode (IGMPv1/v2, MLDv1) and no change has been
        /// reported since: the router holds (*,G), EXCLUDE {}, whatever our filter says
        /// (RFC 9776 §7.3.2, RFC 9777 §8.3.2: an older report counts as IS_EX {}). The next
        /// state change is reported against that state (see `Family::state_changed`).
        router_any_source: bool,
    },
}

impl GroupMode {
    /// A new group's state in `mode`.
    pub(super) fn new(mode: Compat, reportable: bool) -> GroupMode {
        if mode == Compat::V3 {
            return GroupMode::V3 {
                mode_change: 0,
                router_any_source: false,
            };
        }
        let state = if reportable {
            MemberState::Idle {
                last_reporter: false,
            }
        } else {
            MemberState::Silent
        };
        GroupMode::Older(Member {
            state,
            unsolicited_left: 0,
        })
    }
}

/// The rare parts of a group's state, boxed together: 8 bytes in every record.
#[derive(Debug)]
struct Rare<A> {
    /// The requests kept whole: with sources, INCLUDE ones, or owned ones.
    filtered: Vec<Request<A>>,
    /// `filtered` merged (RFC 9776 §3.2); the interface state when there is no plain join.
    merged: Filter<A>,
    /// v3: the sources a group-and-source-specific query asked about (None: the whole group).
    queried: Option<BTreeSet<A>>,
    /// v3: sources to announce as allowed / blocked, with the reports each has left.
    news: BTreeMap<A, u8>,
}

impl<A: Ord> Default for Rare<A> {
    fn default() -> Self {
        Rare {
            filtered: Vec::new(),
            merged: Filter::none(),
            queried: None,
            news: BTreeMap::new(),
        }
    }
}

impl<A> Rare<A> {
    fn is_empty(&self) -> bool {
        self.filtered.is_empty() && self.queried.is_none() && self.news.is_empty()
    }
}

impl<A: Ord + Copy> GroupEntry<A> {
    /// A record without requests yet.
    pub(super) fn new(iface: IfIndex, group: A, mode: GroupMode) -> GroupEntry<A> {
        GroupEntry {
            iface,
            group,
            any_source: 0,
            timer: None,
            mode,
            rare: None,
        }
    }

    /// The requests held (users).
    pub(super) fn users(&self) -> u32 {
        let filtered = self.rare.as_ref().map_or(0, |r| r.filtered.len());
        u32::try_from(filtered)
            .unwrap_or(u32::MAX)
            .saturating_add(self.any_source)
    }

    /// A v3 group whose last request was dropped: kept only while its leave is retransmitted,
    /// and not joined any more.
    pub(super) fn is_leaving(&self) -> bool {
        self.users() == 0
    }

    /// The interface state: the requests merged. Borrowed when it has sources, made (without
    /// allocating) when it is EXCLUDE {} or INCLUDE {}.
    pub(super) fn filter(&self) -> Cow<'_, Filter<A>> {
        if self.any_source > 0 {
            // EXCLUDE {} intersected with anything is EXCLUDE {}, whatever the INCLUDEs add.
            return Cow::Owned(Filter::any_source());
        }
        match &self.rare {
            Some(rare) if !rare.filtered.is_empty() => Cow::Borrowed(&rare.merged),
            _ => Cow::Owned(Filter::none()),
        }
    }

    /// Whether the interface state means any reception at all (not INCLUDE {}).
    pub(super) fn has_reception_state(&self) -> bool {
        // `filter().has_reception_state()`, without making the filter.
        self.any_source > 0
            || self
                .rare
                .as_ref()
                .is_some_and(|r| !r.filtered.is_empty() && r.merged.has_reception_state())
    }

    /// Applies a request change; the interface state before it. Nothing changes on an error.
    pub(super) fn change(&mut self, change: RequestChange<A>) -> Result<Filter<A>, Error> {
        let old = self.filter().into_owned();
        let mut requests = Requests {
            any_source: self.any_source,
            filtered: self
                .rare
                .as_mut()
                .map(|r| core::mem::take(&mut r.filtered))
                .unwrap_or_default(),
        };
        let touched = !requests.filtered.is_empty();
        let result = apply_change(&mut requests, change);
        self.any_source = requests.any_source;
        if touched || !requests.filtered.is_empty() {
            let rare = self.rare.get_or_insert_with(Box::default);
            requests.filtered.shrink_to_fit();
            rare.merged = merge_all(requests.filtered.iter().map(|r| &r.filter));
            rare.filtered = requests.filtered;
        }
        self.tidy();
        result.map(|()| old)
    }

    /// Every request with its owner (`None`: an anonymous join), the plain ones first.
    pub(super) fn requests(&self) -> impl Iterator<Item = (Option<&str>, Filter<A>)> + '_ {
        let filtered = self.rare.as_ref().map_or(&[][..], |r| &r.filtered[..]);
        (0..self.any_source)
            .map(|_| (None, Filter::any_source()))
            .chain(
                filtered
                    .iter()
                    .map(|r| (r.owner.as_deref(), r.filter.clone())),
            )
    }

    /// The sources a pending group-and-source-specific query asked about.
    pub(super) fn queried(&self) -> Option<&BTreeSet<A>> {
        self.rare.as_ref()?.queried.as_ref()
    }

    /// Sets (or with `None`, clears) the sources the pending query asks about; the ones it
    /// asked about before.
    pub(super) fn set_queried(&mut self, queried: Option<BTreeSet<A>>) -> Option<BTreeSet<A>> {
        let before = match (queried, self.rare.as_mut()) {
            (queried, Some(rare)) => core::mem::replace(&mut rare.queried, queried),
            (Some(queried), None) => {
                self.rare = Some(Box::new(Rare {
                    queried: Some(queried),
                    ..Rare::default()
                }));
                None
            }
            (None, None) => None,
        };
        self.tidy();
        before
    }

    /// Whether no v3 state-change news is left to retransmit.
    pub(super) fn news_done(&self) -> bool {
        match self.mode {
            GroupMode::V3 { mode_change, .. } => {
                mode_change == 0 && self.rare.as_ref().is_none_or(|r| r.news.is_empty())
            }
            GroupMode::Older(_) => true,
        }
    }

    /// Runs `f` on a v3 group's state-change news as a [`Retransmit`], with the interface
    /// state, and keeps what it leaves. In an older mode there is no news: `f` is not run.
    pub(super) fn with_news<T>(
        &mut self,
        f: impl FnOnce(&mut Retransmit<A>, &Filter<A>) -> T,
    ) -> Option<T> {
        let GroupMode::V3 { mode_change, .. } = self.mode else {
            return None;
        };
        let mut news = Retransmit {
            mode_change,
            sources: self
                .rare
                .as_mut()
                .map(|r| core::mem::take(&mut r.news))
                .unwrap_or_default(),
        };
        let result = f(&mut news, &self.filter());
        if let GroupMode::V3 { mode_change, .. } = &mut self.mode {
            *mode_change = news.mode_change;
        }
        if !news.sources.is_empty() {
            self.rare.get_or_insert_with(Box::default).news = news.sources;
        }
        self.tidy();
        Some(result)
    }

    /// Switches the record to `mode`. Leaving v3 drops what only v3 keeps (a source-specific
    /// query's sources, source news): the v1/v2 machine starts afresh, and the state of a
    /// mode left is not brought back by the next switch to v3.
    pub(super) fn set_mode(&mut self, mode: GroupMode) {
        if let (GroupMode::Older(_), Some(rare)) = (mode, self.rare.as_mut()) {
            rare.queried = None;
            rare.news.clear();
        }
        self.mode = mode;
        self.tidy();
    }

    /// Takes the record's timer out.
    pub(super) fn take_timer(&mut self) -> Option<TimerId> {
        self.timer.take()
    }

    /// Drops the rare parts' box once it holds nothing.
    fn tidy(&mut self) {
        if self.rare.as_ref().is_some_and(|r| r.is_empty()) {
            self.rare = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use core::net::{Ipv4Addr, Ipv6Addr};

    use super::{GroupEntry, GroupMode};
    use crate::filter::tests::{exc, inc};
    use crate::filter::RequestChange;
    use crate::gmp::compat::Compat;

    /// Per-membership memory (DESIGN.md: ≤ 150 B per any-source membership at 10^6 groups).
    /// 88 and 104 bytes before the filter, the requests with sources and the v3 source state
    /// went out of line together; 144 and 160 before the per-mode state types.
    #[test]
    fn records_stay_small() {
        assert!(core::mem::size_of::<GroupEntry<Ipv4Addr>>() <= 32);
        assert!(core::mem::size_of::<GroupEntry<Ipv6Addr>>() <= 48);
        // The slab's vacant entries take no room of their own: the record's niches hold them.
        enum SlabEntry<T> {
            _Vacant(usize),
            _Occupied(T),
        }
        assert!(core::mem::size_of::<SlabEntry<GroupEntry<Ipv4Addr>>>() <= 32);
    }

    /// The rare parts come with a filtered request or a source query and go with the last.
    #[test]
    fn the_rare_parts_are_boxed_only_while_used() {
        let mut record = GroupEntry::new(1, 9u8, GroupMode::new(Compat::V3, true));
        assert_eq!(record.change(RequestChange::Add(exc(&[]))), Ok(inc(&[])));
        assert!(record.rare.is_none(), "a plain join allocates nothing");
        assert_eq!(record.change(RequestChange::Add(inc(&[3]))), Ok(exc(&[])));
        assert_eq!(*record.filter(), exc(&[]));
        assert_eq!(record.users(), 2);
        assert_eq!(record.change(RequestChange::LeaveGroup), Ok(exc(&[])));
        assert_eq!(*record.filter(), inc(&[3]));
        assert!(record.set_queried(Some([3].into())).is_none());
        assert_eq!(
            record.change(RequestChange::DropIncluded([3].into())),
            Ok(inc(&[3]))
        );
        assert!(record.rare.is_some(), "the query's sources are still held");
        assert_eq!(record.set_queried(None), Some([3].into()));
        assert!(record.rare.is_none() && record.is_leaving());
        // Leaving v3 forgets a pending query's sources; the filtered requests stay.
        assert_eq!(record.change(RequestChange::Add(inc(&[4]))), Ok(inc(&[])));
        record.set_queried(Some([4].into()));
        record.set_mode(GroupMode::new(Compat::V2, true));
        assert!(record.queried().is_none() && record.rare.is_some());
        assert_eq!(*record.filter(), inc(&[4]));
        assert_eq!(
            record.change(RequestChange::DropIncluded([4].into())),
            Ok(inc(&[4]))
        );
        assert!(record.rare.is_none());
        // A change that fails changes nothing.
        assert!(record.change(RequestChange::LeaveGroup).is_err());
        assert!(record.rare.is_none() && record.users() == 0);
    }
}
