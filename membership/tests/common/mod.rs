//! Shared by the integration tests of the core: the captured packets in `tests/vectors/`
//! (see its README), and hex helpers.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

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
