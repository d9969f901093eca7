//! The whole input path (`Host::handle_packet`) under random and mutated packets: it never
//! panics, every packet is either accepted or counted under exactly one drop reason, packets
//! never change who is joined, and no group ever has more than one report pending.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::{host_on, IF};

use membership::wire::igmp::IgmpRepr;
use membership::wire::ip::{build_ipv4, build_ipv6};
use membership::wire::mld::MldRepr;
use membership::wire::{GroupRecord, RecordType};
use membership::{Config, DropReason, Host, Instant};
use proptest::prelude::*;

fn host() -> Host {
    let mut host = host_on(Config::v2(), 42);
    for g in [
        "239.1.1.1",
        "239.1.1.2",
        "224.0.0.9",
        "ff12::1",
        "ff05::2",
        "ff02::1",
    ] {
        host.join(IF, g.parse().unwrap(), Instant::ZERO).unwrap();
    }
    host.handle_timeout(Instant::ZERO);
    while host.poll_transmit().is_some() {}
    host
}

fn mld(src: Ipv6Addr, dst: Ipv6Addr, repr: &MldRepr) -> Vec<u8> {
    build_ipv6(src, dst, &repr.to_bytes(&src, &dst))
}

/// Valid packets of every kind, to be mutated.
fn seeds() -> Vec<Vec<u8>> {
    let r4 = Ipv4Addr::new(10, 99, 0, 1);
    let r6: Ipv6Addr = "fe80::1".parse().unwrap();
    let g4 = Ipv4Addr::new(239, 1, 1, 1);
    let g6: Ipv6Addr = "ff12::1".parse().unwrap();
    let all4 = Ipv4Addr::new(224, 0, 0, 1);
    let all6: Ipv6Addr = "ff02::1".parse().unwrap();
    vec![
        build_ipv4(
            r4,
            all4,
            &IgmpRepr::Query {
                max_resp_code: 100,
                group: Ipv4Addr::UNSPECIFIED,
            }
            .to_bytes(),
        ),
        build_ipv4(
            r4,
            all4,
            &IgmpRepr::Query {
                max_resp_code: 0,
                group: Ipv4Addr::UNSPECIFIED,
            }
            .to_bytes(),
        ),
        build_ipv4(
            r4,
            g4,
            &IgmpRepr::Query {
                max_resp_code: 10,
                group: g4,
            }
            .to_bytes(),
        ),
        build_ipv4(
            r4,
            g4,
            &IgmpRepr::QueryV3 {
                max_resp_code: 10,
                group: g4,
                suppress_router: false,
                qrv: 2,
                qqic: 125,
                sources: vec![Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)],
            }
            .to_bytes(),
        ),
        build_ipv4(
            Ipv4Addr::new(10, 99, 0, 3),
            g4,
            &IgmpRepr::ReportV2 { group: g4 }.to_bytes(),
        ),
        build_ipv4(
            Ipv4Addr::new(10, 99, 0, 3),
            g4,
            &IgmpRepr::ReportV1 { group: g4 }.to_bytes(),
        ),
        build_ipv4(
            Ipv4Addr::new(10, 99, 0, 3),
            Ipv4Addr::new(224, 0, 0, 22),
            &IgmpRepr::ReportV3 {
                records: vec![GroupRecord {
                    kind: RecordType::AllowNewSources,
                    group: g4,
                    sources: vec![Ipv4Addr::new(10, 0, 0, 9)],
                    aux_data: vec![],
                }],
            }
            .to_bytes(),
        ),
        mld(
            r6,
            all6,
            &MldRepr::Query {
                max_resp_delay: 1000,
                group: Ipv6Addr::UNSPECIFIED,
            },
        ),
        mld(
            r6,
            g6,
            &MldRepr::QueryV2 {
                max_resp_code: 1000,
                group: g6,
                suppress_router: true,
                qrv: 2,
                qqic: 125,
                sources: vec!["2001:db8::1".parse().unwrap()],
            },
        ),
        mld(
            "fe80::3".parse().unwrap(),
            g6,
            &MldRepr::Report { group: g6 },
        ),
        mld(
            "fe80::3".parse().unwrap(),
            "ff02::2".parse().unwrap(),
            &MldRepr::Done { group: g6 },
        ),
    ]
}

fn check(host: &mut Host, packet: &[u8], now: u64) {
    let users_before: Vec<(IpAddr, u32)> = host
        .groups(Instant::from_millis(now))
        .iter()
        .map(|g| (g.group, g.users))
        .collect();
    let before = host.stats().clone();
    let result = host.handle_packet(IF, packet, Instant::from_millis(now));
    let after = host.stats();
    assert_eq!(after.ip_rcv_total, before.ip_rcv_total + 1);
    match result {
        Ok(()) => assert_eq!(after.total_dropped(), before.total_dropped()),
        Err(reason) => {
            assert_eq!(after.dropped(reason), before.dropped(reason) + 1);
            assert_eq!(
                after.total_dropped(),
                before.total_dropped() + 1,
                "{reason:?} only"
            );
            assert!(DropReason::ALL.contains(&reason));
        }
    }
    let users_after: Vec<(IpAddr, u32)> = host
        .groups(Instant::from_millis(now))
        .iter()
        .map(|g| (g.group, g.users))
        .collect();
    assert_eq!(
        users_before, users_after,
        "packets never change memberships"
    );
    // At most one report per group ever waits: one timer per record, and what is due now goes
    // out in this poll without duplicates.
    let mut sent = Vec::new();
    host.handle_timeout(Instant::from_millis(now));
    while let Some(tx) = host.poll_transmit() {
        sent.push(tx.group());
    }
    let mut groups = sent.clone();
    groups.sort();
    groups.dedup();
    assert_eq!(
        groups.len(),
        sent.len(),
        "one report per group at a time: {sent:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes(packet in proptest::collection::vec(any::<u8>(), 0..200), now in 0u64..100_000) {
        check(&mut host(), &packet, now);
    }

    #[test]
    fn random_bytes_behind_a_plausible_header(v6 in any::<bool>(), body in proptest::collection::vec(any::<u8>(), 0..120)) {
        let mut packet = if v6 { vec![0x60, 0, 0, 0, 0, body.len() as u8, 0, 1] } else {
            let total = 24 + body.len() as u16;
            let mut p = vec![0x46, 0xc0, (total >> 8) as u8, total as u8, 0, 0, 0x40, 0, 1, 2, 0, 0, 10, 99, 0, 1, 224, 0, 0, 1, 0x94, 4, 0, 0];
            let sum = membership::wire::internet_checksum(&p);
            p[10..12].copy_from_slice(&sum.to_be_bytes());
            p
        };
        if v6 {
            packet.extend_from_slice(&"fe80::1".parse::<Ipv6Addr>().unwrap().octets());
            packet.extend_from_slice(&"ff02::1".parse::<Ipv6Addr>().unwrap().octets());
        }
        packet.extend_from_slice(&body);
        check(&mut host(), &packet, 1000);
    }

    #[test]
    fn mutated_valid_packets(
        picks in proptest::collection::vec((0usize..11, proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4), 0usize..8), 1..20),
    ) {
        let seeds = seeds();
        let mut host = host();
        let mut now = 1000;
        for (which, flips, cut) in picks {
            let mut packet = seeds[which % seeds.len()].clone();
            for (at, value) in flips {
                let i = at.index(packet.len());
                packet[i] = value;
            }
            if cut > 5 {
                let keep = packet.len().saturating_sub(cut * 3);
                packet.truncate(keep);
            }
            now += 37;
            check(&mut host, &packet, now);
        }
    }
}

#[test]
fn every_seed_packet_is_accepted() {
    let mut host = host();
    for (i, packet) in seeds().iter().enumerate() {
        assert_eq!(
            host.handle_packet(IF, packet, Instant::from_millis(1000)),
            Ok(()),
            "seed {i}"
        );
    }
}
