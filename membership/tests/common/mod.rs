//! Shared by the integration tests of the core: the captured packets in `tests/vectors/`
//! (see its README), and hex helpers.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use membership::{Config, Host, Instant, InterfaceConfig, Transmit};

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

/// An interface's addresses: `v4` and the link-local `v6`.
pub fn addressed(v4: &str, v6: &str) -> InterfaceConfig {
    InterfaceConfig {
        ipv4: Some(v4.parse().unwrap()),
        ipv6_link_local: Some(v6.parse().unwrap()),
        ..InterfaceConfig::default()
    }
}

/// A host with interface `IF` at 10.99.0.2 and fe80::2.
pub fn host_on(config: Config, seed: u64) -> Host {
    let mut host = Host::new(config, seed);
    host.add_interface(IF, addressed("10.99.0.2", "fe80::2"))
        .unwrap();
    host
}

/// Fires the host's timers as they come due, up to `until`: what was sent, and when.
pub fn run_timers(host: &mut Host, until: u64) -> Vec<(u64, Transmit)> {
    let mut sent = Vec::new();
    while let Some(at) = host.poll_timeout() {
        if at.as_millis() > until {
            break;
        }
        host.handle_timeout(at);
        while let Some(tx) = host.poll_transmit() {
            sent.push((at.as_millis(), tx));
        }
    }
    sent
}

/// Runs the host's timers up to and including `until`; returns what it sent and when.
pub fn run(host: &mut Host, until: u64) -> Vec<(u64, Transmit)> {
    let mut sent = run_timers(host, until);
    sent.extend(now_sent(host, until).into_iter().map(|tx| (until, tx)));
    sent
}

/// What the host sends right now (joins, leaves, immediate answers).
pub fn now_sent(host: &mut Host, now: u64) -> Vec<Transmit> {
    let mut sent = Vec::new();
    host.handle_timeout(t(now));
    while let Some(tx) = host.poll_transmit() {
        sent.push(tx);
    }
    sent
}

/// An IGMPv3 General Query from `ROUTER4` to all-systems, Max Resp Code `max_resp_code`.
pub fn igmp_general_query(max_resp_code: u8) -> Vec<u8> {
    let query = membership::wire::igmp::IgmpRepr::QueryV3 {
        max_resp_code,
        group: Ipv4Addr::UNSPECIFIED,
        suppress_router: false,
        qrv: 2,
        qqic: 125,
        sources: Vec::new(),
    };
    membership::wire::ip::build_ipv4(ROUTER4, ALL_HOSTS, &query.to_bytes())
}

const LINKTYPE_RAW: u32 = 101;

/// Where the captures live: inside the repository, beside this file's directory.
pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// Every packet of a LINKTYPE_RAW pcap in `tests/vectors/`: the classic format, either byte
/// order, each record one whole IP packet. A missing or damaged file fails the test loudly.
pub fn vector_packets(name: &str) -> Vec<Vec<u8>> {
    let path = vectors_dir().join(name);
    let data = std::fs::read(&path)
        .unwrap_or_else(|error| panic!("cannot read test vector {}: {error}", path.display()));
    let path = path.display();
    assert!(data.len() >= 24, "{path}: no pcap global header");
    let magic = u32::from_le_bytes(data[0..4].try_into().unwrap());
    let little_endian = match magic {
        0xa1b2_c3d4 | 0xa1b2_3c4d => true,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
        other => panic!("{path}: not a pcap file (magic {other:#x})"),
    };
    let u32_at = |at: usize| {
        let bytes: [u8; 4] = data[at..at + 4].try_into().unwrap();
        if little_endian {
            u32::from_le_bytes(bytes)
        } else {
            u32::from_be_bytes(bytes)
        }
    };
    assert_eq!(u32_at(20), LINKTYPE_RAW, "{path}: link type");
    let mut packets = Vec::new();
    let mut at = 24;
    while at < data.len() {
        assert!(at + 16 <= data.len(), "{path}: cut record header");
        let captured = u32_at(at + 8) as usize;
        let original = u32_at(at + 12) as usize;
        assert_eq!(captured, original, "{path}: packet cut by snaplen");
        at += 16;
        assert!(at + captured <= data.len(), "{path}: cut record");
        packets.push(data[at..at + captured].to_vec());
        at += captured;
    }
    assert!(!packets.is_empty(), "{path}: no packets");
    packets
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
pub mod family;
