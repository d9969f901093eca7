//! The emulated hosts by address: `--host`, `--hosts`, ARP and Neighbour Discovery find them
//! here. One map per family, so that an IPv4 entry costs its 8 bytes and not an `IpAddr`'s 24
//! (a host has one address of each family; at 10^6 hosts the two maps are most of the daemon's
//! own memory per host).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::HostId;

#[derive(Debug, Default)]
pub(super) struct HostsByAddr {
    ipv4: HashMap<Ipv4Addr, HostId>,
    ipv6: HashMap<Ipv6Addr, HostId>,
}

impl HostsByAddr {
    pub fn get(&self, addr: &IpAddr) -> Option<&HostId> {
        match addr {
            IpAddr::V4(a) => self.ipv4.get(a),
            IpAddr::V6(a) => self.ipv6.get(a),
        }
    }

    /// The host that had `addr` before, if any.
    pub fn insert(&mut self, addr: IpAddr, host: HostId) -> Option<HostId> {
        match addr {
            IpAddr::V4(a) => self.ipv4.insert(a, host),
            IpAddr::V6(a) => self.ipv6.insert(a, host),
        }
    }

    pub fn remove(&mut self, addr: &IpAddr) -> Option<HostId> {
        match addr {
            IpAddr::V4(a) => self.ipv4.remove(a),
            IpAddr::V6(a) => self.ipv6.remove(a),
        }
    }

    /// Hosts found by their IPv4 address: every live host has one.
    pub fn hosts(&self) -> usize {
        self.ipv4.len()
    }

    /// Room for `more` hosts, made once before a block of hosts is added.
    pub fn reserve(&mut self, more: usize) {
        self.ipv4.reserve(more);
        self.ipv6.reserve(more);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Id;

    #[test]
    fn each_family_finds_its_own() {
        let mut index = HostsByAddr::default();
        let (a, b) = (HostId::from_index(1), HostId::from_index(2));
        let v4 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let v6: IpAddr = "fe80::1".parse().unwrap();
        assert_eq!(index.insert(v4, a), None);
        assert_eq!(index.insert(v6, b), None);
        assert_eq!((index.get(&v4), index.get(&v6)), (Some(&a), Some(&b)));
        assert_eq!(index.insert(v4, b), Some(a));
        assert_eq!(index.hosts(), 1);
        assert_eq!(index.remove(&v4), Some(b));
        assert_eq!(index.get(&v4), None);
        assert_eq!(index.get(&v6), Some(&b));
    }
}
