//! Source filters (RFC 9776 §3, RFC 9777 §4): the filter a request carries, the requests held
//! for a group, and their merge into the interface state.

use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::IpAddr;

use crate::Error;

/// INCLUDE or EXCLUDE (RFC 9776 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum FilterMode {
    /// Receive only from the sources listed.
    Include,
    /// Receive from every source but those listed.
    Exclude,
}

impl FilterMode {
    /// "include" or "exclude".
    pub fn name(self) -> &'static str {
        match self {
            FilterMode::Include => "include",
            FilterMode::Exclude => "exclude",
        }
    }
}

/// A source filter as the API takes it (RFC 9776 §3.1): the sources must be unicast addresses
/// of the group's family. Any source is `SourceFilter::exclude(vec![])`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SourceFilter {
    /// INCLUDE or EXCLUDE.
    pub mode: FilterMode,
    /// The sources listed.
    pub sources: Vec<IpAddr>,
}

impl SourceFilter {
    /// Only from `sources` (IP_ADD_SOURCE_MEMBERSHIP).
    pub fn include(sources: Vec<IpAddr>) -> SourceFilter {
        SourceFilter {
            mode: FilterMode::Include,
            sources,
        }
    }

    /// From everyone but `sources` (an any-source join with `sources` blocked).
    pub fn exclude(sources: Vec<IpAddr>) -> SourceFilter {
        SourceFilter {
            mode: FilterMode::Exclude,
            sources,
        }
    }
}

/// A source filter in one family's addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Filter<A> {
    pub mode: FilterMode,
    pub sources: BTreeSet<A>,
}

impl<A: Ord> Filter<A> {
    /// Any source: EXCLUDE {}.
    pub fn any_source() -> Self {
        Filter {
            mode: FilterMode::Exclude,
            sources: BTreeSet::new(),
        }
    }

    /// No reception: INCLUDE {}.
    pub fn none() -> Self {
        Filter {
            mode: FilterMode::Include,
            sources: BTreeSet::new(),
        }
    }

    /// Whether the state means any reception at all: INCLUDE {} is no state (RFC 9776 §3.2).
    pub fn has_reception_state(&self) -> bool {
        self.mode == FilterMode::Exclude || !self.sources.is_empty()
    }
}

impl<A: Copy + Into<IpAddr>> Filter<A> {
    /// The filter as the API shows it.
    pub fn to_api(&self) -> SourceFilter {
        SourceFilter {
            mode: self.mode,
            sources: self.sources.iter().map(|&s| s.into()).collect(),
        }
    }
}

/// One request kept whole: its filter and, when a client named one, its owner (the RFC 3678
/// socket whose filter it is). A request without an owner is one anonymous join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request<A> {
    pub owner: Option<Box<str>>,
    pub filter: Filter<A>,
}

/// The requests held for one group (each join is one), as a request change sees them. Plain
/// anonymous joins, EXCLUDE {}, are by far the most common and are only counted; the requests
/// with sources, INCLUDE ones, or owned ones are kept whole. The group's record keeps the two
/// apart (`gmp::entry`): the count in place, the others out of line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Requests<A> {
    pub any_source: u32,
    pub filtered: Vec<Request<A>>,
}

impl<A> Default for Requests<A> {
    fn default() -> Self {
        Requests {
            any_source: 0,
            filtered: Vec::new(),
        }
    }
}

impl<A: Ord + Copy> Requests<A> {
    /// How many requests (users).
    pub fn len(&self) -> usize {
        self.any_source as usize + self.filtered.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.any_source == 0 && self.filtered.is_empty()
    }

    /// Every request, the plain ones first.
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = Filter<A>> + '_ {
        (0..self.any_source)
            .map(|_| Filter::any_source())
            .chain(self.filtered.iter().map(|r| r.filter.clone()))
    }

    /// The interface state for the group: the requests merged.
    #[cfg(test)]
    pub fn merged(&self) -> Filter<A> {
        if self.any_source > 0 {
            // EXCLUDE {} intersected with anything is EXCLUDE {}, whatever the INCLUDEs add.
            return Filter::any_source();
        }
        merge_all(self.filtered.iter().map(|r| &r.filter))
    }
}

/// The interface state for a group, merged from every request held for it (RFC 9776 §3.2,
/// RFC 9777 §4.2): EXCLUDE if any request excludes, with the intersection of the EXCLUDE lists
/// minus the union of the INCLUDE lists; otherwise INCLUDE with the union of the INCLUDE lists.
#[cfg(test)]
pub(crate) fn merge<A: Ord + Copy>(requests: &[Filter<A>]) -> Filter<A> {
    merge_all(requests.iter())
}

/// [`merge`] over any list of filters.
pub(crate) fn merge_all<'a, A: Ord + Copy + 'a>(
    requests: impl Iterator<Item = &'a Filter<A>> + Clone,
) -> Filter<A> {
    let includes = requests
        .clone()
        .filter(|r| r.mode == FilterMode::Include)
        .flat_map(|r| r.sources.iter().copied())
        .collect::<BTreeSet<A>>();
    let mut excludes = requests.filter(|r| r.mode == FilterMode::Exclude);
    match excludes.next() {
        None => Filter {
            mode: FilterMode::Include,
            sources: includes,
        },
        Some(first) => {
            let mut sources = first.sources.clone();
            for other in excludes {
                sources.retain(|s| other.sources.contains(s));
            }
            sources.retain(|s| !includes.contains(s));
            Filter {
                mode: FilterMode::Exclude,
                sources,
            }
        }
    }
}

/// How a request list changes. Anonymous changes (every one but `SetOwner` and `DropAll`)
/// touch anonymous requests only: an owned request changes by its owner's word alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RequestChange<A> {
    /// A new anonymous request (a join, with its filter).
    Add(Filter<A>),
    /// Drop one anonymous any-source request; without one, every anonymous request.
    LeaveGroup,
    /// Drop these sources from the anonymous INCLUDE requests that list them.
    DropIncluded(BTreeSet<A>),
    /// Drop one anonymous EXCLUDE request with exactly these sources.
    DropExclude(BTreeSet<A>),
    /// Replace the owner's request with this filter in one step (RFC 3678 `setsourcefilter`):
    /// made if the owner holds none, dropped by INCLUDE {}.
    SetOwner(Box<str>, Filter<A>),
    /// Drop every request (shutdown).
    DropAll,
}

impl RequestChange<IpAddr> {
    /// The change with its sources in the group's family: `convert` gives a valid source of
    /// that family, or `None` (RFC 9776 §3.1: sources are unicast addresses of the group's
    /// family).
    pub fn typed<A: Ord>(
        self,
        convert: impl Fn(IpAddr) -> Option<A>,
    ) -> Result<RequestChange<A>, Error> {
        let typed = |s: BTreeSet<IpAddr>| -> Result<BTreeSet<A>, Error> {
            s.into_iter()
                .map(|a| convert(a).ok_or(Error::BadSource(a)))
                .collect()
        };
        Ok(match self {
            RequestChange::Add(f) => RequestChange::Add(Filter {
                mode: f.mode,
                sources: typed(f.sources)?,
            }),
            RequestChange::LeaveGroup => RequestChange::LeaveGroup,
            RequestChange::DropIncluded(s) => RequestChange::DropIncluded(typed(s)?),
            RequestChange::DropExclude(s) => RequestChange::DropExclude(typed(s)?),
            RequestChange::SetOwner(owner, f) => RequestChange::SetOwner(
                owner,
                Filter {
                    mode: f.mode,
                    sources: typed(f.sources)?,
                },
            ),
            RequestChange::DropAll => RequestChange::DropAll,
        })
    }
}

/// Applies `change` to the requests held for a group.
pub(crate) fn apply_change<A: Ord + Copy>(
    requests: &mut Requests<A>,
    change: RequestChange<A>,
) -> Result<(), Error> {
    let full = requests.len() >= u32::MAX as usize;
    match change {
        RequestChange::Add(_) if full => Err(Error::TooManyUsers),
        RequestChange::Add(filter) if filter == Filter::any_source() => {
            requests.any_source += 1;
            Ok(())
        }
        RequestChange::LeaveGroup if requests.any_source > 0 => {
            requests.any_source -= 1;
            Ok(())
        }
        RequestChange::DropExclude(sources) if sources.is_empty() && requests.any_source > 0 => {
            requests.any_source -= 1;
            Ok(())
        }
        RequestChange::DropAll => {
            *requests = Requests::default();
            Ok(())
        }
        change => change_filtered(&mut requests.filtered, change),
    }
}

/// The changes that concern the requests kept whole (with sources, INCLUDE, or owned).
fn change_filtered<A: Ord + Copy>(
    filtered: &mut Vec<Request<A>>,
    change: RequestChange<A>,
) -> Result<(), Error> {
    let anonymous = |r: &Request<A>| r.owner.is_none();
    match change {
        RequestChange::Add(filter) => filtered.push(Request {
            owner: None,
            filter,
        }),
        RequestChange::SetOwner(owner, filter) => {
            let at = filtered
                .iter()
                .position(|r| r.owner.as_deref() == Some(&*owner));
            match (at, filter.has_reception_state()) {
                (Some(i), true) => filtered[i].filter = filter,
                (Some(i), false) => {
                    filtered.remove(i);
                }
                (None, true) => filtered.push(Request {
                    owner: Some(owner),
                    filter,
                }),
                (None, false) => return Err(Error::NoSuchOwner(String::from(&*owner))),
            }
        }
        // No anonymous request: an anonymous leave has nothing to drop.
        RequestChange::LeaveGroup if !filtered.iter().any(anonymous) => {
            return Err(Error::NoSuchFilter)
        }
        RequestChange::LeaveGroup => filtered.retain(|r| !anonymous(r)),
        RequestChange::DropAll => filtered.clear(),
        RequestChange::DropIncluded(sources) => {
            let mut found = false;
            for request in filtered
                .iter_mut()
                .filter(|r| anonymous(r) && r.filter.mode == FilterMode::Include)
            {
                let before = request.filter.sources.len();
                request.filter.sources.retain(|s| !sources.contains(s));
                found |= request.filter.sources.len() != before;
            }
            if !found {
                return Err(Error::NoSuchFilter);
            }
            filtered.retain(|r| r.filter.has_reception_state());
        }
        RequestChange::DropExclude(sources) => {
            let i = filtered
                .iter()
                .position(|r| {
                    anonymous(r)
                        && r.filter.mode == FilterMode::Exclude
                        && r.filter.sources == sources
                })
                .ok_or(Error::NoSuchFilter)?;
            filtered.remove(i);
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloc::vec;

    pub(crate) fn inc(s: &[u8]) -> Filter<u8> {
        Filter {
            mode: FilterMode::Include,
            sources: s.iter().copied().collect(),
        }
    }

    pub(crate) fn exc(s: &[u8]) -> Filter<u8> {
        Filter {
            mode: FilterMode::Exclude,
            sources: s.iter().copied().collect(),
        }
    }

    #[test]
    fn merge_rules() {
        #[rustfmt::skip]
        let table: Vec<(Vec<Filter<u8>>, Filter<u8>)> = vec![
            (vec![], inc(&[])),
            (vec![inc(&[1, 2]), inc(&[2, 3])], inc(&[1, 2, 3])),
            (vec![exc(&[])], exc(&[])),
            (vec![exc(&[1, 2]), exc(&[2, 3])], exc(&[2])),
            (vec![exc(&[1, 2, 3]), inc(&[2])], exc(&[1, 3])),
            (vec![exc(&[1]), exc(&[]), inc(&[5])], exc(&[])),
            (vec![inc(&[1]), exc(&[1, 2]), exc(&[1, 2, 3])], exc(&[2])),
        ];
        for (requests, want) in table {
            assert_eq!(merge(&requests), want, "{requests:?}");
        }
    }

    fn requests(list: Vec<Filter<u8>>) -> Requests<u8> {
        let mut r = Requests::default();
        for f in list {
            apply_change(&mut r, RequestChange::Add(f)).unwrap();
        }
        r
    }

    #[test]
    fn request_changes() {
        let mut r = requests(vec![inc(&[1, 2]), exc(&[]), exc(&[3]), inc(&[2])]);
        assert_eq!(r.len(), 4);
        assert_eq!(r.merged(), exc(&[]));
        apply_change(&mut r, RequestChange::DropIncluded([2].into())).unwrap();
        assert_eq!(r, requests(vec![inc(&[1]), exc(&[]), exc(&[3])]));
        apply_change(&mut r, RequestChange::DropExclude([3].into())).unwrap();
        assert_eq!(r, requests(vec![inc(&[1]), exc(&[])]));
        assert_eq!(
            apply_change(&mut r, RequestChange::DropExclude([3].into())),
            Err(Error::NoSuchFilter)
        );
        apply_change(&mut r, RequestChange::LeaveGroup).unwrap();
        assert_eq!(r, requests(vec![inc(&[1])]));
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![inc(&[1])]);
        // No any-source join left: leaving the group drops every request.
        apply_change(&mut r, RequestChange::LeaveGroup).unwrap();
        assert!(r.is_empty());
        assert_eq!(
            apply_change(&mut r, RequestChange::LeaveGroup),
            Err(Error::NoSuchFilter)
        );
    }

    #[test]
    fn plain_joins_are_counted_without_allocating() {
        let mut r = requests(vec![exc(&[]), exc(&[]), exc(&[])]);
        assert_eq!(r.len(), 3);
        assert!(r.filtered.is_empty());
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![exc(&[]); 3]);
        apply_change(&mut r, RequestChange::DropExclude(BTreeSet::new())).unwrap();
        apply_change(&mut r, RequestChange::LeaveGroup).unwrap();
        assert_eq!(r.len(), 1);
        // Merging with a plain join is any source, whatever else is held.
        apply_change(&mut r, RequestChange::Add(inc(&[7]))).unwrap();
        assert_eq!(r.merged(), exc(&[]));
        apply_change(&mut r, RequestChange::LeaveGroup).unwrap();
        assert_eq!(r.merged(), inc(&[7]));
        apply_change(&mut r, RequestChange::DropIncluded([7].into())).unwrap();
        assert!(r.is_empty());
    }
}
