//! Shared by the Host tests: the kernel's packets from ../shared/vectors, and hex helpers.

#![allow(dead_code)]

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
