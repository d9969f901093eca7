//! MLD messages: round trips, length and checksum rules, the view.

use std::net::Ipv6Addr;
use std::time::Duration;

use membership::wire::mld::{field, icmpv6_checksum, MessageType, MldPacket, MldRepr};
use membership::wire::{Error, GroupRecord, RecordType};
use proptest::collection::vec;
use proptest::prelude::*;

const SRC: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
const DST: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x16);

fn addr() -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>().prop_map(Ipv6Addr::from)
}

fn record() -> impl Strategy<Value = GroupRecord<Ipv6Addr>> {
    (
        any::<u8>(),
        addr(),
        vec(addr(), 0..5),
        vec(any::<[u8; 4]>(), 0..3),
    )
        .prop_map(|(kind, group, sources, aux)| GroupRecord {
            kind: RecordType::from(kind),
            group,
            sources,
            aux_data: aux.concat(),
        })
}

fn repr() -> impl Strategy<Value = MldRepr> {
    prop_oneof![
        (any::<u16>(), addr()).prop_map(|(max_resp_delay, group)| MldRepr::Query {
            max_resp_delay,
            group
        }),
        (
            any::<u16>(),
            addr(),
            any::<bool>(),
            0u8..=7,
            any::<u8>(),
            vec(addr(), 0..6)
        )
            .prop_map(
                |(max_resp_code, group, suppress_router, qrv, qqic, sources)| {
                    MldRepr::QueryV2 {
                        max_resp_code,
                        group,
                        suppress_router,
                        qrv,
                        qqic,
                        sources,
                    }
                }
            ),
        addr().prop_map(|group| MldRepr::Report { group }),
        addr().prop_map(|group| MldRepr::Done { group }),
        vec(record(), 0..4).prop_map(|records| MldRepr::ReportV2 { records }),
    ]
}

fn emit(repr: &MldRepr) -> Vec<u8> {
    let mut buf = vec![0; repr.buffer_len()];
    repr.emit(&SRC, &DST, &mut buf);
    buf
}

fn parse(bytes: &[u8]) -> Result<MldRepr, Error> {
    MldRepr::parse(bytes, &SRC, &DST)
}

fn fix_checksum(bytes: &mut [u8]) {
    bytes[field::CHECKSUM].fill(0);
    let checksum = icmpv6_checksum(&SRC, &DST, bytes);
    bytes[field::CHECKSUM].copy_from_slice(&checksum.to_be_bytes());
}

proptest! {
    #[test]
    fn parse_emit_round_trips(repr in repr()) {
        let bytes = emit(&repr);
        prop_assert_eq!(bytes.len(), repr.buffer_len());
        prop_assert_eq!(parse(&bytes), Ok(repr.clone()));
        prop_assert_eq!(repr.to_bytes(&SRC, &DST), bytes);
    }

    /// The checksum covers the pseudo-header: an address one bit off does not verify.
    #[test]
    fn checksum_binds_the_addresses(repr in repr(), bit in 0u32..128) {
        let bytes = emit(&repr);
        let flip = |addr: Ipv6Addr| Ipv6Addr::from(u128::from(addr) ^ (1u128 << bit));
        prop_assert_eq!(MldRepr::parse(&bytes, &flip(SRC), &DST), Err(Error::Checksum));
        prop_assert_eq!(MldRepr::parse(&bytes, &SRC, &flip(DST)), Err(Error::Checksum));
        prop_assert_eq!(MldRepr::parse(&bytes, &DST, &SRC), Ok(repr), "the sum is symmetric");
    }

    #[test]
    fn emitted_messages_pass_the_view_checks(repr in repr()) {
        let bytes = emit(&repr);
        let packet = MldPacket::new_checked(&bytes[..]).unwrap();
        prop_assert!(packet.verify_checksum(&SRC, &DST));
        prop_assert_eq!(packet.code(), 0);
        if let MldRepr::ReportV2 { records } = &repr {
            prop_assert_eq!(packet.records().count(), records.len());
            prop_assert!(packet.records().all(|record| record.is_ok()));
        }
    }

    #[test]
    fn parse_never_panics(bytes in vec(any::<u8>(), 0..120)) {
        let _ = parse(&bytes);
        if let Ok(packet) = MldPacket::new_checked(&bytes[..]) {
            let _ = (packet.msg_type(), packet.checksum(), packet.max_resp_code());
            if matches!(packet.msg_type(), MessageType::Query | MessageType::ReportV1 | MessageType::Done) {
                let _ = packet.group();
            }
            if packet.is_v2_query() {
                let _ = (packet.suppress_router(), packet.qrv(), packet.qqic());
                let _ = packet.sources().count();
            }
            let _ = packet.records().count();
        }
    }

    #[test]
    fn parse_never_panics_with_valid_checksum(
        kind in prop_oneof![Just(130u8), Just(131), Just(132), Just(143), any::<u8>()],
        mut bytes in vec(any::<u8>(), 8..120),
    ) {
        bytes[0] = kind;
        fix_checksum(&mut bytes);
        match parse(&bytes) {
            Ok(repr) => prop_assert!(repr.buffer_len() <= bytes.len()),
            Err(error) => prop_assert_ne!(error, Error::Checksum),
        }
    }

    #[test]
    fn corruption_is_detected(repr in repr(), bit in any::<prop::sample::Index>()) {
        let mut bytes = emit(&repr);
        let bit = bit.index(bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        prop_assert_eq!(parse(&bytes), Err(Error::Checksum));
    }

    #[test]
    fn trailing_bytes_are_ignored(repr in repr(), tail in vec(any::<u8>(), 1..8)) {
        let mut bytes = emit(&repr);
        bytes.extend_from_slice(&tail);
        fix_checksum(&mut bytes);
        let parsed = parse(&bytes);
        match repr {
            MldRepr::Query { .. } => {
                let other_version = matches!(parsed, Ok(MldRepr::QueryV2 { .. }));
                prop_assert!(parsed.is_err() || other_version);
            }
            _ => prop_assert_eq!(parsed, Ok(repr)),
        }
    }
}

#[test]
fn length_rules() {
    for len in 0..8 {
        assert_eq!(parse(&vec![143; len]), Err(Error::Truncated), "{len}");
    }
    for kind in [130u8, 131, 132] {
        for len in 8..24 {
            let mut bytes = vec![0; len];
            bytes[0] = kind;
            fix_checksum(&mut bytes);
            assert_eq!(
                parse(&bytes),
                Err(Error::Truncated),
                "type {kind} len {len}"
            );
        }
    }
    // RFC 9777 §8.1: 24 bytes MLDv1, 28 and more MLDv2, in between invalid.
    for len in 24..=30 {
        let mut bytes = vec![0; len];
        bytes[0] = 130;
        bytes[field::MAX_RESP].copy_from_slice(&1000u16.to_be_bytes());
        fix_checksum(&mut bytes);
        let parsed = parse(&bytes);
        match len {
            24 => assert_eq!(
                parsed,
                Ok(MldRepr::Query {
                    max_resp_delay: 1000,
                    group: Ipv6Addr::UNSPECIFIED
                })
            ),
            25..=27 => assert_eq!(parsed, Err(Error::BadQueryLength), "{len}"),
            _ => assert_eq!(
                parsed,
                Ok(MldRepr::QueryV2 {
                    max_resp_code: 1000,
                    group: Ipv6Addr::UNSPECIFIED,
                    suppress_router: false,
                    qrv: 0,
                    qqic: 0,
                    sources: vec![]
                }),
                "{len}"
            ),
        }
    }
}

#[test]
fn checksum_is_checked_before_type() {
    let mut bytes = vec![200, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(parse(&bytes), Err(Error::Checksum));
    fix_checksum(&mut bytes);
    assert_eq!(parse(&bytes), Err(Error::UnknownType(200)));
}

#[test]
fn counts_must_fit() {
    let source = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x77);
    let mut query = emit(&MldRepr::QueryV2 {
        max_resp_code: 0x8000,
        group: Ipv6Addr::new(0xff35, 0, 0, 0, 0, 0, 0, 1),
        suppress_router: true,
        qrv: 2,
        qqic: 125,
        sources: vec![source],
    });
    assert_eq!(query[field::FLAGS], 0x0a);
    query[field::NUM_SOURCES].copy_from_slice(&2u16.to_be_bytes());
    fix_checksum(&mut query);
    assert_eq!(parse(&query), Err(Error::BadCount));

    let report = emit(&MldRepr::ReportV2 {
        records: vec![GroupRecord {
            kind: RecordType::AllowNewSources,
            group: Ipv6Addr::new(0xff35, 0, 0, 0, 0, 0, 0, 1),
            sources: vec![source],
            aux_data: vec![],
        }],
    });
    assert_eq!(report.len(), 8 + 20 + 16);
    let mut bytes = report.clone();
    bytes[field::NUM_RECORDS].copy_from_slice(&2u16.to_be_bytes());
    fix_checksum(&mut bytes);
    assert_eq!(parse(&bytes), Err(Error::BadCount));
    let mut bytes = report.clone();
    bytes[8 + 3] = 2;
    fix_checksum(&mut bytes);
    assert_eq!(parse(&bytes), Err(Error::BadCount));
    let mut bytes = report.clone();
    bytes[8 + 1] = 1;
    fix_checksum(&mut bytes);
    assert_eq!(parse(&bytes), Err(Error::BadCount));
    let mut bytes = report[..8 + 19].to_vec();
    fix_checksum(&mut bytes);
    assert_eq!(parse(&bytes), Err(Error::BadCount));
}

#[test]
fn reports_and_done_carry_zero_delay() {
    let group = Ipv6Addr::new(0xff12, 0, 0, 0, 0, 0, 0, 0x1111);
    for repr in [MldRepr::Report { group }, MldRepr::Done { group }] {
        let bytes = emit(&repr);
        assert_eq!(bytes.len(), 24);
        assert_eq!(bytes[1], 0, "code");
        assert_eq!(bytes[4..8], [0, 0, 0, 0]);
        assert_eq!(bytes[8..], group.octets());
        // A delay and code in a received report are ignored (RFC 2710 §3.4, §3.2).
        let mut odd = bytes.clone();
        odd[1] = 7;
        odd[4] = 0x12;
        fix_checksum(&mut odd);
        assert_eq!(parse(&odd), Ok(repr));
    }
    assert_eq!(u8::from(MessageType::ReportV1), 131);
    assert_eq!(MessageType::from(143), MessageType::ReportV2);
    assert!(!MessageType::is_mld(133));
}

#[test]
fn view_setters_and_getters() {
    let mut buf = [0u8; 44];
    let mut packet = MldPacket::new_unchecked(&mut buf[..]);
    packet.set_msg_type(MessageType::Query);
    packet.set_code(0);
    packet.set_max_resp_code(0xffff);
    packet.clear_reserved();
    packet.set_group(Ipv6Addr::new(0xff35, 0, 0, 0, 0, 0, 0, 1));
    packet.set_flags(false, 3);
    packet.set_qqic(0x80);
    packet.set_num_sources(1);
    packet.set_source(0, SRC);
    packet.fill_checksum(&SRC, &DST);
    assert!(packet.verify_checksum(&SRC, &DST));
    assert!(packet.is_v2_query());
    assert_eq!(packet.max_resp_code(), 0xffff);
    assert_eq!(packet.max_resp_delay(), 0xffff);
    assert!(!packet.suppress_router());
    assert_eq!(packet.qrv(), 3);
    assert_eq!(packet.qqic(), 0x80);
    assert_eq!(packet.source(0), SRC);
    let repr = MldRepr::parse(packet.into_inner(), &SRC, &DST).unwrap();
    assert_eq!(repr.max_resp_time(), Some(Duration::from_millis(8_387_584)));
}

#[test]
fn max_resp_time() {
    let group = Ipv6Addr::UNSPECIFIED;
    let v1 = MldRepr::Query {
        max_resp_delay: 10_000,
        group,
    };
    assert_eq!(v1.max_resp_time(), Some(Duration::from_secs(10)));
    let v2 = |max_resp_code| MldRepr::QueryV2 {
        max_resp_code,
        group,
        suppress_router: false,
        qrv: 2,
        qqic: 125,
        sources: vec![],
    };
    assert_eq!(v2(10_000).max_resp_time(), Some(Duration::from_secs(10)));
    assert_eq!(
        v2(0x8000).max_resp_time(),
        Some(Duration::from_millis(32_768))
    );
    assert_eq!(MldRepr::Done { group }.max_resp_time(), None);
}

#[test]
#[should_panic(expected = "buffer_len")]
fn emit_insists_on_the_exact_length() {
    let mut buf = [0u8; 23];
    MldRepr::Done {
        group: Ipv6Addr::UNSPECIFIED,
    }
    .emit(&SRC, &DST, &mut buf);
}
