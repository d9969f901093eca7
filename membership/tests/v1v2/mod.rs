//! What the v1/v2 host tests share: the addresses of the link, packet builders, and a host
//! run in virtual time.

#![allow(dead_code, unused_imports)]

pub use std::collections::BTreeMap;
pub use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
pub use std::time::Duration;

pub use membership::wire::igmp::IgmpRepr;
pub use membership::wire::ip::{build_ipv4, build_ipv6, classify, Classified};
pub use membership::wire::mld::MldRepr;
pub use membership::wire::{GroupRecord, RecordType};
pub use membership::{
    Config, DropReason, GroupInfo, Host, IgmpVersion, Instant, InterfaceConfig, Message, Transmit,
};

pub use crate::common::family::Family;
pub use crate::common::*;
pub use crate::for_both_families;

pub const IF: u32 = 1;
pub const ME4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
pub const ME6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);
pub const ROUTER4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
pub const ROUTER6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
pub const ALL_HOSTS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 1);
pub const ALL_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 2);
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
pub const ALL_ROUTERS6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

pub fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

pub fn g4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse().unwrap())
}

pub fn g6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse().unwrap())
}

pub fn host_with(config: Config, seed: u64, v4: Ipv4Addr, v6: Ipv6Addr) -> Host {
    let mut host = Host::new(config, seed);
    host.add_interface(
        IF,
        InterfaceConfig {
            ipv4: Some(v4),
            ipv6_link_local: Some(v6),
            ..InterfaceConfig::default()
        },
    )
    .unwrap();
    host
}

pub fn host() -> Host {
    host_with(Config::v2(), 7, ME4, ME6)
}

pub fn igmp_packet(src: Ipv4Addr, dst: Ipv4Addr, repr: &IgmpRepr) -> Vec<u8> {
    build_ipv4(src, dst, &repr.to_bytes())
}

pub fn mld_packet(src: Ipv6Addr, dst: Ipv6Addr, repr: &MldRepr) -> Vec<u8> {
    let mut body = vec![0; repr.buffer_len()];
    repr.emit(&src, &dst, &mut body);
    build_ipv6(src, dst, &body)
}

pub fn v2_query(group: Ipv4Addr, dst: Ipv4Addr, tenths: u8) -> Vec<u8> {
    igmp_packet(
        ROUTER4,
        dst,
        &IgmpRepr::Query {
            max_resp_code: tenths,
            group,
        },
    )
}

pub fn v1_query() -> Vec<u8> {
    igmp_packet(
        ROUTER4,
        ALL_HOSTS,
        &IgmpRepr::Query {
            max_resp_code: 0,
            group: Ipv4Addr::UNSPECIFIED,
        },
    )
}

pub fn mld_query(group: Ipv6Addr, dst: Ipv6Addr, ms: u16) -> Vec<u8> {
    mld_packet(
        ROUTER6,
        dst,
        &MldRepr::Query {
            max_resp_delay: ms,
            group,
        },
    )
}

pub fn kinds(sent: &[(u64, Transmit)]) -> Vec<(IpAddr, String)> {
    sent.iter().map(|(_, tx)| (tx.dst(), kind(tx))).collect()
}

pub fn kind(tx: &Transmit) -> String {
    match tx.message() {
        Message::Igmp(IgmpRepr::ReportV1 { group }) => format!("v1-report {group}"),
        Message::Igmp(IgmpRepr::ReportV2 { group }) => format!("v2-report {group}"),
        Message::Igmp(IgmpRepr::Leave { group }) => format!("leave {group}"),
        Message::Mld(MldRepr::Report { group }) => format!("mld-report {group}"),
        Message::Mld(MldRepr::Done { group }) => format!("done {group}"),
        other => format!("{other:?}"),
    }
}

pub fn group<'a>(groups: &'a [GroupInfo], g: &str) -> &'a GroupInfo {
    let addr: IpAddr = g.parse().unwrap();
    groups
        .iter()
        .find(|i| i.group == addr)
        .unwrap_or_else(|| panic!("{g} not listed"))
}

/// A host whose groups are all idle with no timer running.
pub fn settled(groups: &[&str]) -> Host {
    let mut host = host();
    for g in groups {
        host.join(IF, g.parse().unwrap(), t(0)).unwrap();
    }
    run(&mut host, 20_000);
    assert!(host.groups(t(20_000)).iter().all(|g| g.timer_ms.is_none()));
    host
}

pub fn with_ipv4_checksum(mut packet: Vec<u8>) -> Vec<u8> {
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    packet[10] = 0;
    packet[11] = 0;
    let sum = membership::wire::internet_checksum(&packet[..ihl]);
    packet[10..12].copy_from_slice(&sum.to_be_bytes());
    packet
}

pub fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A host of `groups` (written in IPv4, each the family's own) with no timer running.
pub fn settled_in<F: Family>(groups: &[&str]) -> Host {
    let groups: Vec<String> = groups.iter().map(|g| F::addr(g).to_string()).collect();
    let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
    settled(&groups)
}
