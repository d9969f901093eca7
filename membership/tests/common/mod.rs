//! Shared by the Host tests: the kernel's packets from ../shared/vectors, and hex helpers.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use membership::{Config, Host, Instant, InterfaceConfig};

pub const IF: u32 = 1;
pub const ROUTER4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
pub const ROUTER6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
pub const ALL_HOSTS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 1);
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

pub fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A host with interface `IF` at 10.99.0.2 and fe80::2.
pub fn host_on(config: Config, seed: u64) -> Host {
    let mut host = Host::new(config, seed);
    host.add_interface(
        IF,
        InterfaceConfig {
            ipv4: Some(Ipv4Addr::new(10, 99, 0, 2)),
            ipv6_link_local: Some("fe80::2".parse().unwrap()),
            ..InterfaceConfig::default()
        },
    )
    .unwrap();
    host
}

/// Every packet of a LINKTYPE_RAW pcap in ../shared/vectors (24-byte global header, 16-byte
/// record headers, little-endian).
pub fn vector_packets(name: &str) -> Vec<Vec<u8>> {
    let path = format!("{}/../../shared/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let pcap = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (../shared must sit beside the repository)"));
    let mut packets = Vec::new();
    let mut off = 24;
    while off + 16 <= pcap.len() {
        let len = u32::from_le_bytes(pcap[off + 8..off + 12].try_into().unwrap()) as usize;
        packets.push(pcap[off + 16..off + 16 + len].to_vec());
        off += 16 + len;
    }
    packets
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
