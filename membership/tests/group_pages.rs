//! Walking the group table a slice at a time (`Host::groups_page`), as `show` does at a
//! million groups: every record held throughout the walk is listed exactly once, whatever the
//! slice size, and one lookup (`Host::group`) finds a single record.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use membership::{Config, GroupCursor, Host, Instant, InterfaceConfig};

const IF: u32 = 1;

fn host_with(v4: u32, v6: u32) -> (Host, Vec<IpAddr>) {
    let mut host = Host::new(Config::default(), 7);
    host.add_interface(
        IF,
        InterfaceConfig {
            ipv4: Some("10.99.0.2".parse().unwrap()),
            ipv6_link_local: Some("fe80::2".parse().unwrap()),
            ..InterfaceConfig::default()
        },
    )
    .unwrap();
    let now = Instant::from_millis(0);
    let mut groups = Vec::new();
    for n in 0..v4 {
        groups.push(IpAddr::V4(Ipv4Addr::from(0xef01_0000 + n)));
    }
    for n in 0..v6 {
        groups.push(IpAddr::V6(Ipv6Addr::new(
            0xff12,
            0,
            0,
            0,
            0,
            0,
            0,
            n as u16 + 1,
        )));
    }
    for g in &groups {
        host.join(IF, *g, now).unwrap();
    }
    (host, groups)
}

fn walk(host: &Host, slice: usize, mut between: impl FnMut(&mut Vec<IpAddr>)) -> Vec<IpAddr> {
    let now = Instant::from_millis(1);
    let mut listed = Vec::new();
    let mut cursor = Some(GroupCursor::START);
    let mut page = Vec::new();
    while let Some(at) = cursor {
        page.clear();
        cursor = host.groups_page(at, slice, now, &mut page);
        assert!(
            page.len() <= slice,
            "a slice of {slice} gave {}",
            page.len()
        );
        listed.extend(page.iter().map(|g| g.group));
        between(&mut listed);
    }
    listed
}

#[test]
fn every_group_is_listed_once_whatever_the_slice() {
    let (host, groups) = host_with(25, 9);
    let all: BTreeSet<IpAddr> = groups.iter().copied().collect();
    for slice in [1, 2, 7, 25, 26, 34, 1000] {
        let listed = walk(&host, slice, |_| {});
        assert_eq!(listed.len(), groups.len(), "slice {slice}");
        assert_eq!(
            listed.iter().copied().collect::<BTreeSet<_>>(),
            all,
            "slice {slice}"
        );
    }
    let (empty, _) = host_with(0, 0);
    assert!(walk(&empty, 3, |_| {}).is_empty());
    let (v6_only, groups) = host_with(0, 4);
    assert_eq!(walk(&v6_only, 3, |_| {}).len(), groups.len());
}

#[test]
fn one_group_is_found_by_lookup() {
    let (host, groups) = host_with(3, 2);
    let now = Instant::from_millis(1);
    for g in &groups {
        let info = host.group(IF, *g, now).expect("joined");
        assert_eq!((info.group, info.users), (*g, 1));
    }
    assert!(host.group(IF, "239.9.9.9".parse().unwrap(), now).is_none());
    assert!(host.group(IF + 1, groups[0], now).is_none());
}
