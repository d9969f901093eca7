//! One interface's groups a page at a time (`Host::interface_groups_page`), as the HTTP view
//! lists a host's groups at 10^5 hosts: its own records only, IPv4 then IPv6, each in address
//! order, every one exactly once across pages, whatever the other interfaces hold.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use membership::{Config, Host, Instant, InterfaceConfig};

#[test]
fn a_page_of_one_interfaces_groups() {
    let mut host = Host::new(Config::default(), 7);
    for ifindex in 1..=3u32 {
        host.add_interface(
            ifindex,
            InterfaceConfig {
                ipv4: Some(Ipv4Addr::new(10, 99, 0, ifindex as u8 + 1)),
                ipv6_link_local: Some(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, ifindex as u16 + 1)),
                ..InterfaceConfig::default()
            },
        )
        .unwrap();
    }
    let now = Instant::from_millis(0);
    // Joined out of order, on interface 2; the others hold groups of their own.
    let mut mine: Vec<IpAddr> = Vec::new();
    for n in [7u32, 3, 5, 1] {
        mine.push(IpAddr::V4(Ipv4Addr::from(0xef01_0000 + n)));
    }
    for n in [9u16, 2] {
        mine.push(IpAddr::V6(Ipv6Addr::new(0xff12, 0, 0, 0, 0, 0, 0, n)));
    }
    for g in &mine {
        host.join(2, *g, now).unwrap();
    }
    for n in 0..100u32 {
        host.join(1, IpAddr::V4(Ipv4Addr::from(0xef02_0000 + n)), now)
            .unwrap();
        host.join(
            3,
            IpAddr::V6(Ipv6Addr::new(0xff12, 0, 0, 0, 0, 0, 1, n as u16)),
            now,
        )
        .unwrap();
    }
    let mut expected = mine.clone();
    expected.sort(); // IPv4 sorts before IPv6, each by address
    for size in 1..=7 {
        let mut listed = Vec::new();
        let mut skip = 0;
        loop {
            let mut page = Vec::new();
            host.interface_groups_page(2, skip, size, now, &mut page);
            assert!(page.len() <= size);
            assert!(page.iter().all(|g| g.iface == 2));
            if page.is_empty() {
                break;
            }
            skip += page.len();
            listed.extend(page.iter().map(|g| g.group));
        }
        assert_eq!(listed, expected, "pages of {size}");
    }
    let mut none = Vec::new();
    host.interface_groups_page(9, 0, 10, now, &mut none);
    assert!(none.is_empty());
    assert_eq!(host.interface_group_records(2), 6);
}
