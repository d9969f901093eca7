//! The emulated hosts' indexes: by IPv4 and IPv6 address (`--host`, `--hosts`, ARP and
//! Neighbour Discovery), by MAC (a TAP link's unicast frames) and by core interface (where a
//! transmit leaves). Each is a [`RunIndex`]: a block of hosts numbers its addresses, MACs and
//! interfaces one after the other, so a block costs one run and 4 bytes a host in each (hash
//! maps cost 20 to 50 bytes a host each at 10^6 hosts: stack/BENCHMARKS.md).

use std::net::IpAddr;

use membership::IfIndex;

use super::{CoreId, HostId};
use crate::framing::Mac;
use crate::ids::Id;
use crate::runs::RunIndex;

fn host(value: u32) -> HostId {
    HostId::from_index(value as usize)
}

fn value(id: HostId) -> u32 {
    // Host ids are slab keys: never near 2^32 - 1, which the index keeps for "removed".
    id.index() as u32
}

/// Hosts by address, one index per family.
#[derive(Debug, Default)]
pub(super) struct HostsByAddr {
    ipv4: RunIndex<u32>,
    ipv6: RunIndex<u128>,
}

impl HostsByAddr {
    pub fn get(&self, addr: &IpAddr) -> Option<HostId> {
        match addr {
            IpAddr::V4(a) => self.ipv4.get(u32::from(*a)),
            IpAddr::V6(a) => self.ipv6.get(u128::from(*a)),
        }
        .map(host)
    }

    /// The host that had `addr` before, if any.
    pub fn insert(&mut self, addr: IpAddr, id: HostId) -> Option<HostId> {
        match addr {
            IpAddr::V4(a) => self.ipv4.insert(u32::from(a), value(id)),
            IpAddr::V6(a) => self.ipv6.insert(u128::from(a), value(id)),
        }
        .map(host)
    }

    pub fn remove(&mut self, addr: &IpAddr) -> Option<HostId> {
        match addr {
            IpAddr::V4(a) => self.ipv4.remove(u32::from(*a)),
            IpAddr::V6(a) => self.ipv6.remove(u128::from(*a)),
        }
        .map(host)
    }

    /// Hosts found by their IPv4 address: every live host has one.
    #[cfg(test)]
    pub fn hosts(&self) -> usize {
        self.ipv4.len()
    }
}

/// One link's hosts by MAC.
#[derive(Debug, Default)]
pub(super) struct HostsByMac(RunIndex<u64>);

fn mac_key(mac: Mac) -> u64 {
    let mut bytes = [0u8; 8];
    bytes[2..].copy_from_slice(&mac.0);
    u64::from_be_bytes(bytes)
}

impl HostsByMac {
    pub fn get(&self, mac: Mac) -> Option<HostId> {
        self.0.get(mac_key(mac)).map(host)
    }

    pub fn insert(&mut self, mac: Mac, id: HostId) -> Option<HostId> {
        self.0.insert(mac_key(mac), value(id)).map(host)
    }

    pub fn remove(&mut self, mac: Mac) -> Option<HostId> {
        self.0.remove(mac_key(mac)).map(host)
    }
}

/// Hosts by (core, core interface): where a core's transmit leaves.
#[derive(Debug, Default)]
pub(super) struct HostsByIface(RunIndex<u64>);

fn iface_key(core: CoreId, ifindex: IfIndex) -> u64 {
    (core.index() as u64) << 32 | u64::from(ifindex)
}

impl HostsByIface {
    pub fn get(&self, core: CoreId, ifindex: IfIndex) -> Option<HostId> {
        self.0.get(iface_key(core, ifindex)).map(host)
    }

    pub fn insert(&mut self, core: CoreId, ifindex: IfIndex, id: HostId) -> Option<HostId> {
        self.0.insert(iface_key(core, ifindex), value(id)).map(host)
    }

    pub fn remove(&mut self, core: CoreId, ifindex: IfIndex) -> Option<HostId> {
        self.0.remove(iface_key(core, ifindex)).map(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_family_finds_its_own() {
        let mut index = HostsByAddr::default();
        let (a, b) = (HostId::from_index(1), HostId::from_index(2));
        let v4 = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
        let v6: IpAddr = "fe80::a00:1".parse().unwrap(); // the same low 32 bits
        assert_eq!(index.insert(v4, a), None);
        assert_eq!(index.insert(v6, b), None);
        assert_eq!((index.get(&v4), index.get(&v6)), (Some(a), Some(b)));
        assert_eq!(index.insert(v4, b), Some(a));
        assert_eq!(index.hosts(), 1);
        assert_eq!(index.remove(&v4), Some(b));
        assert_eq!(index.get(&v4), None);
        assert_eq!(index.get(&v6), Some(b));
    }

    #[test]
    fn macs_and_interfaces_find_their_hosts() {
        let mut macs = HostsByMac::default();
        let mut ifaces = HostsByIface::default();
        for n in 0..300u32 {
            let id = HostId::from_index(n as usize);
            let last = n.to_be_bytes();
            macs.insert(Mac([2, 0, 10, last[1], last[2], last[3]]), id);
            ifaces.insert(CoreId::from_index(1), (1 << 30) + n, id);
        }
        let id = HostId::from_index(257);
        assert_eq!(macs.get(Mac([2, 0, 10, 0, 1, 1])), Some(id));
        assert_eq!(ifaces.get(CoreId::from_index(1), (1 << 30) + 257), Some(id));
        // The same interface number on another core is another interface.
        assert_eq!(ifaces.get(CoreId::from_index(0), (1 << 30) + 257), None);
        assert_eq!(macs.remove(Mac([2, 0, 10, 0, 1, 1])), Some(id));
        assert_eq!(macs.get(Mac([2, 0, 10, 0, 1, 1])), None);
        assert_eq!(
            ifaces.remove(CoreId::from_index(1), (1 << 30) + 257),
            Some(id)
        );
    }
}
