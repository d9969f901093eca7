//! What the IGMPv3 / MLDv2 host tests share: a host on one interface run in virtual time, its
//! reports' records as text, and the same helpers for a test generic over the family
//! (`common::family`).

#![allow(dead_code, unused_imports)]

pub use std::collections::BTreeMap;
pub use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use membership::wire::igmp::IgmpRepr;
pub use membership::wire::ip::{build_ipv4, build_ipv6};
pub use membership::wire::mld::MldRepr;
pub use membership::wire::{encode_code8, RecordType};
pub use membership::{
    Config, DropReason, Host, IgmpVersion, InterfaceConfig, Message, MldVersion, SourceFilter,
    Transmit,
};

pub use crate::common::family::{Family, Igmp, Mld};
pub use crate::common::{
    hex, ip, now_sent, run, t, vector_packets, ALL_HOSTS, ALL_NODES, IF, ROUTER4, ROUTER6,
};
pub use crate::for_both_families;

pub fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| ip(s)).collect()
}

pub fn host_as(v4: &str, v6: &str, config: Config) -> Host {
    let mut host = Host::new(config, 11);
    host.add_interface(
        IF,
        InterfaceConfig {
            ipv4: Some(v4.parse().unwrap()),
            ipv6_link_local: Some(v6.parse().unwrap()),
            ..InterfaceConfig::default()
        },
    )
    .unwrap();
    host
}

/// A host at 10.99.0.2 and fe80::2.
pub fn host() -> Host {
    host_as("10.99.0.2", "fe80::2", Config::default())
}

/// A report's records as text: "to_ex 239.1.1.3 {}" ...
pub fn records(tx: &Transmit) -> Vec<String> {
    fn fmt<A: std::fmt::Display>(k: RecordType, g: A, s: &[A]) -> String {
        let s: Vec<String> = s.iter().map(|a| a.to_string()).collect();
        format!("{k} {g} {{{}}}", s.join(","))
    }
    match tx.message() {
        Message::Igmp(IgmpRepr::ReportV3 { records }) => {
            assert_eq!(tx.dst(), ip("224.0.0.22"));
            records
                .iter()
                .map(|r| fmt(r.kind, r.group, &r.sources))
                .collect()
        }
        Message::Mld(MldRepr::ReportV2 { records }) => {
            assert_eq!(tx.dst(), ip("ff02::16"));
            records
                .iter()
                .map(|r| fmt(r.kind, r.group, &r.sources))
                .collect()
        }
        other => panic!("not a v3 report: {other:?}"),
    }
}

pub fn all_records(sent: &[(u64, Transmit)]) -> Vec<String> {
    sent.iter().flat_map(|(_, tx)| records(tx)).collect()
}

/// An IGMPv3 query from the router.
pub fn v3_query(group: &str, sources: &[&str], max_tenths: u8, dst: Ipv4Addr) -> Vec<u8> {
    let q = IgmpRepr::QueryV3 {
        max_resp_code: max_tenths,
        group: group.parse().unwrap(),
        suppress_router: false,
        qrv: 2,
        qqic: 125,
        sources: sources.iter().map(|s| s.parse().unwrap()).collect(),
    };
    build_ipv4(ROUTER4, dst, &q.to_bytes())
}

/// An MLDv2 query from the router.
pub fn mld_v2_query(group: &str, sources: &[&str], max_ms: u16, dst: Ipv6Addr) -> Vec<u8> {
    let q = MldRepr::QueryV2 {
        max_resp_code: max_ms,
        group: group.parse().unwrap(),
        suppress_router: false,
        qrv: 2,
        qqic: 125,
        sources: sources.iter().map(|s| s.parse().unwrap()).collect(),
    };
    build_ipv6(ROUTER6, dst, &q.to_bytes(&ROUTER6, &dst))
}

/// A host whose groups are joined with these filters and whose state-change reports are
/// all out.
pub fn settled(groups: &[(&str, SourceFilter)]) -> Host {
    let mut host = host();
    for (g, f) in groups {
        host.join_filter(IF, ip(g), f.clone(), t(0)).unwrap();
    }
    run(&mut host, 10_000);
    host
}

// ---------------------------------------------------------------------------------------------
// For tests generic over the family: addresses written in IPv4, made the family's own.

/// The family's address for `v4`.
pub fn a<F: Family>(v4: &str) -> IpAddr {
    F::addr(v4)
}

/// The family's addresses for `list`.
pub fn addrs<F: Family>(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| F::addr(s)).collect()
}

/// A record as [`records`] writes it: `kind group {sources}`, in the family's addresses.
pub fn rec<F: Family>(kind: &str, group: &str, sources: &[&str]) -> String {
    let sources: Vec<String> = addrs::<F>(sources).iter().map(|s| s.to_string()).collect();
    format!("{kind} {} {{{}}}", F::addr(group), sources.join(","))
}

/// A settled host, as [`settled`], with the family's addresses.
pub fn settled_in<F: Family>(groups: &[(&str, &str, &[&str])]) -> Host {
    let mut host = host();
    for (g, mode, sources) in groups {
        let filter = match *mode {
            "include" => SourceFilter::include(addrs::<F>(sources)),
            _ => SourceFilter::exclude(addrs::<F>(sources)),
        };
        host.join_filter(IF, F::addr(g), filter, t(0)).unwrap();
    }
    run(&mut host, 10_000);
    host
}

/// Both lists sorted: records whose order the test does not fix, compared.
pub fn sorted(mut list: Vec<String>) -> Vec<String> {
    list.sort();
    list
}
