//! Each emulated host's `host_rx_datagrams` (multicast datagrams read for a group it joined)
//! at O(1) a datagram: a datagram read for every member of a group on a link counts once for
//! the (link, group); a host's count is what was added to it alone plus, for each group it is
//! a member of, what its (link, group) counted since it became one. Reading a host's count
//! costs O(its groups), a datagram O(1) whatever the members.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::ids::{HostId, LinkId};

/// The datagrams read per (link, group) and each member's mark.
#[derive(Debug, Default)]
pub struct MemberDatagrams {
    /// Datagrams read for every member of the group on the link.
    read: HashMap<(LinkId, IpAddr), u64>,
    /// Per host: each group it is a member of, with the group's count when it became one.
    marks: HashMap<HostId, Vec<(IpAddr, u64)>>,
}

impl MemberDatagrams {
    /// Host `host` of `link` became a member of `group`: what the group read before is not
    /// its.
    pub fn member_added(&mut self, host: HostId, link: LinkId, group: IpAddr) {
        let now = self.read.get(&(link, group)).copied().unwrap_or(0);
        let marks = self.marks.entry(host).or_default();
        match marks.iter_mut().find(|(g, _)| *g == group) {
            Some(mark) => mark.1 = now,
            None => marks.push((group, now)),
        }
    }

    /// A datagram of `group` read on `link` for every member. O(1).
    pub fn read_for_every_member(&mut self, link: LinkId, group: IpAddr) {
        *self.read.entry((link, group)).or_default() += 1;
    }

    /// What `host` (of `link`) was handed with the rest of its groups' members. O(its
    /// groups).
    pub fn of_host(&self, host: HostId, link: LinkId) -> u64 {
        self.marks.get(&host).map_or(0, |marks| {
            marks
                .iter()
                .map(|(group, mark)| {
                    let now = self.read.get(&(link, *group)).copied().unwrap_or(0);
                    now.saturating_sub(*mark)
                })
                .sum()
        })
    }

    /// Host `host` is gone (its id may be reused).
    pub fn forget(&mut self, host: HostId) {
        self.marks.remove(&host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Id;

    #[test]
    fn a_member_counts_what_its_groups_read_since_it_joined() {
        let mut counts = MemberDatagrams::default();
        let (link, other_link) = (LinkId::from_index(0), LinkId::from_index(1));
        let (a, b) = (HostId::from_index(1), HostId::from_index(2));
        let (g1, g2): (IpAddr, IpAddr) = ("239.1.1.1".parse().unwrap(), "ff1e::1".parse().unwrap());
        counts.read_for_every_member(link, g1); // before anyone joined
        counts.member_added(a, link, g1);
        counts.read_for_every_member(link, g1);
        counts.member_added(b, link, g1);
        counts.member_added(a, link, g2);
        counts.member_added(a, link, g2); // twice: one mark
        for _ in 0..3 {
            counts.read_for_every_member(link, g1);
            counts.read_for_every_member(link, g2);
            counts.read_for_every_member(other_link, g2);
        }
        assert_eq!(counts.of_host(a, link), 4 + 3);
        assert_eq!(counts.of_host(b, link), 3);
        counts.forget(a);
        assert_eq!(counts.of_host(a, link), 0);
        // Its id reused by a new host: it starts from nothing.
        counts.member_added(a, link, g1);
        assert_eq!(counts.of_host(a, link), 0);
    }
}
