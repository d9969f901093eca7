use std::net::Ipv6Addr;

use super::*;
use crate::framing::Mac;
use crate::ids::Id;

fn host(link: LinkId, last: u8) -> EmuHost {
    let mac = Mac([2, 0, 10, 99, 0, last]);
    EmuHost {
        addrs: HostAddrs {
            mac: Some(mac),
            ipv4: (Ipv4Addr::new(10, 99, 0, 10), 24),
            ipv6_ll: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, u16::from(last)),
        },
        core: CoreId::from_index(0),
        ifindex: u32::from(last),
        link,
        retired: false,
        delay_number: u32::from(last),
        io: Default::default(),
    }
}

/// Two links each with a host at 10.99.0.10: each link's neighbour answers find its own.
#[test]
fn each_link_finds_its_own_host_of_a_shared_address() {
    let (a, b) = (LinkId::from_index(0), LinkId::from_index(1));
    let mut hosts = Hosts::new(
        0,
        CoreSettings::of(&<Args as clap::Parser>::parse_from([
            "tunmcastd",
            "--tun",
            "t0",
            "--ipv4",
            "10.99.0.2/24",
        ])),
    );
    let on_a = hosts.insert(host(a, 1));
    let on_b = hosts.insert(host(b, 2));
    // The later host is found by the address; each link keeps its own.
    let shared = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 10));
    assert_eq!(hosts.find(&shared), Some(on_b));
    let v4 = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 10));
    assert_eq!(
        hosts.neighbour(a, v4).unwrap().mac,
        Mac([2, 0, 10, 99, 0, 1])
    );
    assert_eq!(
        hosts.neighbour(b, v4).unwrap().mac,
        Mac([2, 0, 10, 99, 0, 2])
    );
    // A link-local is one host's: the other link does not answer for it.
    let ll_a = IpAddr::V6(hosts[on_a].addrs.ipv6_ll);
    assert!(hosts.neighbour(a, ll_a).is_some());
    assert!(hosts.neighbour(b, ll_a).is_none());
    let other = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 11));
    assert!(hosts.neighbour(a, other).is_none());
}
