//! The fuzzer's seed corpus (`fuzz/seeds/`), built with the crate's own emitters: valid
//! IGMPv3 and MLDv2 queries and reports for the groups the fuzz target joins, so libFuzzer
//! starts inside the v3 state machine of both protocols instead of having to find a
//! hop-by-hop Router Alert and a link-local source by chance.
//!
//! The committed files must equal what this test builds; `FUZZ_SEEDS_WRITE=1 cargo test -p
//! membership --test fuzz_seeds` rewrites them.
//!
//! The fuzz target splits an input at its first byte (first packet = that many bytes). Each
//! seed is one packet shorter than its own first byte (0x46 = 70 for IPv4 with Router Alert,
//! 0x60 = 96 for IPv6), so the whole packet is the first one and the second is empty.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use common::{host_on, ip, t, ALL_HOSTS, ALL_NODES, IF, ROUTER4, ROUTER6};
use membership::wire::igmp::IgmpRepr;
use membership::wire::ip::{build_ipv4, build_ipv6};
use membership::wire::mld::MldRepr;
use membership::wire::{GroupRecord, RecordType};
use membership::Config;

/// Joined by the fuzz target (`fuzz/fuzz_targets/input_path.rs`).
const GROUP4: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 1);
const GROUP6: Ipv6Addr = Ipv6Addr::new(0xff12, 0, 0, 0, 0, 0, 0, 1);
const OTHER_HOST4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 3);
/// MLD input must come from a link-local source (RFC 9777 §5.1.14), as ROUTER6 is.
const OTHER_HOST6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 3);
const IGMPV3_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 22);
const MLDV2_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x16);

fn igmp(src: Ipv4Addr, dst: Ipv4Addr, repr: &IgmpRepr) -> Vec<u8> {
    build_ipv4(src, dst, &repr.to_bytes())
}

fn mld(src: Ipv6Addr, dst: Ipv6Addr, repr: &MldRepr) -> Vec<u8> {
    build_ipv6(src, dst, &repr.to_bytes(&src, &dst))
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let source4 = Ipv4Addr::new(192, 0, 2, 9);
    let source6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 9);
    vec![
        (
            "igmpv3-general-query",
            igmp(
                ROUTER4,
                ALL_HOSTS,
                &IgmpRepr::QueryV3 {
                    max_resp_code: 100,
                    group: Ipv4Addr::UNSPECIFIED,
                    suppress_router: false,
                    qrv: 2,
                    qqic: 125,
                    sources: Vec::new(),
                },
            ),
        ),
        (
            "igmpv3-group-source-query",
            igmp(
                ROUTER4,
                GROUP4,
                &IgmpRepr::QueryV3 {
                    max_resp_code: 10,
                    group: GROUP4,
                    suppress_router: false,
                    qrv: 2,
                    qqic: 125,
                    sources: vec![source4],
                },
            ),
        ),
        (
            "igmpv3-report",
            igmp(
                OTHER_HOST4,
                IGMPV3_ROUTERS,
                &IgmpRepr::ReportV3 {
                    records: vec![GroupRecord {
                        kind: RecordType::ChangeToExclude,
                        group: GROUP4,
                        sources: Vec::new(),
                        aux_data: Vec::new(),
                    }],
                },
            ),
        ),
        (
            "mldv2-general-query",
            mld(
                ROUTER6,
                ALL_NODES,
                &MldRepr::QueryV2 {
                    max_resp_code: 10_000,
                    group: Ipv6Addr::UNSPECIFIED,
                    suppress_router: false,
                    qrv: 2,
                    qqic: 125,
                    sources: Vec::new(),
                },
            ),
        ),
        (
            "mldv2-group-source-query",
            mld(
                ROUTER6,
                GROUP6,
                &MldRepr::QueryV2 {
                    max_resp_code: 1_000,
                    group: GROUP6,
                    suppress_router: false,
                    qrv: 2,
                    qqic: 125,
                    sources: vec![source6],
                },
            ),
        ),
        (
            "mldv2-report",
            mld(
                OTHER_HOST6,
                MLDV2_ROUTERS,
                &MldRepr::ReportV2 {
                    records: vec![GroupRecord {
                        kind: RecordType::ChangeToExclude,
                        group: GROUP6,
                        sources: Vec::new(),
                        aux_data: Vec::new(),
                    }],
                },
            ),
        ),
    ]
}

fn seed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds")
}

#[test]
fn each_seed_is_one_whole_first_packet() {
    for (name, packet) in seeds() {
        assert!(
            packet.len() <= usize::from(packet[0]),
            "{name}: {} bytes, split at {}",
            packet.len(),
            packet[0]
        );
    }
}

#[test]
fn each_seed_is_accepted_by_the_fuzz_targets_host() {
    for (name, packet) in seeds() {
        // The interface and groups of `fuzz/fuzz_targets/input_path.rs`.
        let mut host = host_on(Config::default(), 1);
        for group in ["239.1.1.1", "224.0.0.9", "ff12::1", "ff02::1"] {
            host.join(IF, ip(group), t(0)).unwrap();
        }
        let result = host.handle_packet(IF, &packet, t(1000));
        assert!(result.is_ok(), "{name}: {result:?}");
    }
}

#[test]
fn committed_seeds_are_what_the_emitters_build() {
    let dir = seed_dir();
    let write = std::env::var_os("FUZZ_SEEDS_WRITE").is_some();
    if write {
        std::fs::create_dir_all(&dir).unwrap();
    }
    for (name, packet) in seeds() {
        let path = dir.join(name);
        if write {
            std::fs::write(&path, &packet).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; rebuild with FUZZ_SEEDS_WRITE=1 cargo test -p membership --test fuzz_seeds",
                path.display()
            )
        });
        assert_eq!(
            committed, packet,
            "{name} differs from what the emitters build"
        );
    }
    let committed = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(committed, seeds().len(), "stray files in {}", dir.display());
}
