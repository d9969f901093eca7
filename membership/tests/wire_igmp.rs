//! IGMP messages: round trips, length and checksum rules, the view.

use std::net::Ipv4Addr;
use std::time::Duration;

use membership::wire::igmp::{field, IgmpPacket, IgmpRepr, MessageType};
use membership::wire::{internet_checksum, Error, GroupRecord, RecordType};
use proptest::collection::vec;
use proptest::prelude::*;

fn addr() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

fn record() -> impl Strategy<Value = GroupRecord<Ipv4Addr>> {
    (
        any::<u8>(),
        addr(),
        vec(addr(), 0..6),
        vec(any::<[u8; 4]>(), 0..3),
    )
        .prop_map(|(kind, group, sources, aux)| GroupRecord {
            kind: RecordType::from(kind),
            group,
            sources,
            aux_data: aux.concat(),
        })
}

fn repr() -> impl Strategy<Value = IgmpRepr> {
    prop_oneof![
        (any::<u8>(), addr()).prop_map(|(max_resp_code, group)| IgmpRepr::Query {
            max_resp_code,
            group
        }),
        (
            any::<u8>(),
            addr(),
            any::<bool>(),
            0u8..=7,
            any::<u8>(),
            vec(addr(), 0..8)
        )
            .prop_map(
                |(max_resp_code, group, suppress_router, qrv, qqic, sources)| {
                    IgmpRepr::QueryV3 {
                        max_resp_code,
                        group,
                        suppress_router,
                        qrv,
                        qqic,
                        sources,
                    }
                }
            ),
        addr().prop_map(|group| IgmpRepr::ReportV1 { group }),
        addr().prop_map(|group| IgmpRepr::ReportV2 { group }),
        addr().prop_map(|group| IgmpRepr::Leave { group }),
        vec(record(), 0..5).prop_map(|records| IgmpRepr::ReportV3 { records }),
    ]
}

fn emit(repr: &IgmpRepr) -> Vec<u8> {
    let mut buf = vec![0; repr.buffer_len()];
    repr.emit(&mut buf);
    buf
}

/// Sets the checksum field so that `bytes` verifies.
fn fix_checksum(bytes: &mut [u8]) {
    bytes[field::CHECKSUM].fill(0);
    let checksum = internet_checksum(bytes);
    bytes[field::CHECKSUM].copy_from_slice(&checksum.to_be_bytes());
}

proptest! {
    #[test]
    fn parse_emit_round_trips(repr in repr()) {
        let bytes = emit(&repr);
        prop_assert_eq!(bytes.len(), repr.buffer_len());
        prop_assert_eq!(IgmpRepr::parse(&bytes), Ok(repr.clone()));
        prop_assert_eq!(repr.to_bytes(), bytes);
    }

    #[test]
    fn emitted_messages_pass_the_view_checks(repr in repr()) {
        let bytes = emit(&repr);
        let packet = IgmpPacket::new_checked(&bytes[..]).unwrap();
        prop_assert!(packet.verify_checksum());
        if let IgmpRepr::ReportV3 { records } = &repr {
            prop_assert_eq!(packet.records().count(), records.len());
            prop_assert!(packet.records().all(|record| record.is_ok()));
        }
    }

    #[test]
    fn parse_never_panics(bytes in vec(any::<u8>(), 0..80)) {
        let _ = IgmpRepr::parse(&bytes);
        if let Ok(packet) = IgmpPacket::new_checked(&bytes[..]) {
            let _ = (packet.msg_type(), packet.max_resp_code(), packet.group(), packet.checksum());
            if packet.is_v3_query() {
                let _ = (packet.suppress_router(), packet.qrv(), packet.qqic());
                let _ = packet.sources().count();
            }
            let _ = packet.records().count();
        }
    }

    /// Arbitrary bytes with a valid checksum get past the checksum and exercise the length
    /// and count rules.
    #[test]
    fn parse_never_panics_with_valid_checksum(
        kind in prop_oneof![Just(0x11u8), Just(0x22), Just(0x16), any::<u8>()],
        mut bytes in vec(any::<u8>(), 8..80),
    ) {
        bytes[0] = kind;
        fix_checksum(&mut bytes);
        match IgmpRepr::parse(&bytes) {
            Ok(repr) => prop_assert!(repr.buffer_len() <= bytes.len()),
            Err(error) => prop_assert_ne!(error, Error::Checksum),
        }
    }

    /// Any single flipped bit is caught by the checksum (or makes the message too short).
    #[test]
    fn corruption_is_detected(repr in repr(), bit in any::<prop::sample::Index>()) {
        let mut bytes = emit(&repr);
        let bit = bit.index(bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        prop_assert_eq!(IgmpRepr::parse(&bytes), Err(Error::Checksum));
    }

    /// Bytes after the message proper (inside the IP total length) are ignored, but the
    /// checksum covers them.
    #[test]
    fn trailing_bytes_are_ignored(repr in repr(), tail in vec(any::<u8>(), 1..8)) {
        let mut bytes = emit(&repr);
        bytes.extend_from_slice(&tail);
        fix_checksum(&mut bytes);
        let parsed = IgmpRepr::parse(&bytes);
        match repr {
            // A longer 8-byte query is a different version or invalid.
            IgmpRepr::Query { .. } => {
                let other_version = matches!(parsed, Ok(IgmpRepr::QueryV3 { .. }));
                prop_assert!(parsed.is_err() || other_version);
            }
            _ => prop_assert_eq!(parsed, Ok(repr)),
        }
    }
}

#[test]
fn too_short_is_truncated() {
    for len in 0..8 {
        assert_eq!(
            IgmpRepr::parse(&vec![0x16; len]),
            Err(Error::Truncated),
            "{len}"
        );
    }
    assert_eq!(
        IgmpPacket::new_checked(&[0x16u8, 0, 0][..]),
        Err(Error::Truncated)
    );
}

#[test]
fn checksum_is_checked_before_type_and_length() {
    let mut query = emit(&IgmpRepr::Query {
        max_resp_code: 100,
        group: Ipv4Addr::UNSPECIFIED,
    });
    query.push(0);
    query.push(0);
    // 10 bytes with the old checksum: still valid, since zero bytes add nothing.
    assert_eq!(IgmpRepr::parse(&query), Err(Error::BadQueryLength));
    query[9] = 1;
    assert_eq!(IgmpRepr::parse(&query), Err(Error::Checksum));

    let mut unknown = vec![0x99, 0, 0, 0, 1, 2, 3, 4];
    assert_eq!(IgmpRepr::parse(&unknown), Err(Error::Checksum));
    fix_checksum(&mut unknown);
    assert_eq!(IgmpRepr::parse(&unknown), Err(Error::UnknownType(0x99)));
}

#[test]
fn query_length_tells_the_version() {
    // RFC 9776 §7.1: 8 bytes v1/v2, 9..=11 ignored, 12 and more v3.
    let base = [0x11, 100, 0, 0, 239, 1, 2, 3];
    for len in 8..=16 {
        let mut bytes = base.to_vec();
        bytes.resize(len, 0);
        fix_checksum(&mut bytes);
        let parsed = IgmpRepr::parse(&bytes);
        match len {
            8 => assert_eq!(
                parsed,
                Ok(IgmpRepr::Query {
                    max_resp_code: 100,
                    group: Ipv4Addr::new(239, 1, 2, 3)
                })
            ),
            9..=11 => assert_eq!(parsed, Err(Error::BadQueryLength), "{len}"),
            _ => assert_eq!(
                parsed,
                Ok(IgmpRepr::QueryV3 {
                    max_resp_code: 100,
                    group: Ipv4Addr::new(239, 1, 2, 3),
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
fn query_v3_source_count_must_fit() {
    let repr = IgmpRepr::QueryV3 {
        max_resp_code: 0x8f,
        group: Ipv4Addr::new(232, 1, 1, 1),
        suppress_router: true,
        qrv: 7,
        qqic: 0xff,
        sources: vec![Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)],
    };
    let mut bytes = emit(&repr);
    assert_eq!(bytes[field::FLAGS], 0x0f, "Resv 0 | S | QRV 7");
    bytes[field::NUM_SOURCES].copy_from_slice(&3u16.to_be_bytes());
    fix_checksum(&mut bytes);
    assert_eq!(IgmpRepr::parse(&bytes), Err(Error::BadCount));
    assert_eq!(
        IgmpPacket::new_checked(&bytes[..]).unwrap_err(),
        Error::BadCount
    );
    bytes[field::NUM_SOURCES].copy_from_slice(&0xffffu16.to_be_bytes());
    fix_checksum(&mut bytes);
    assert_eq!(IgmpRepr::parse(&bytes), Err(Error::BadCount));
}

#[test]
fn reserved_query_bits_are_ignored() {
    let mut bytes = emit(&IgmpRepr::QueryV3 {
        max_resp_code: 10,
        group: Ipv4Addr::UNSPECIFIED,
        suppress_router: false,
        qrv: 2,
        qqic: 125,
        sources: vec![],
    });
    bytes[field::FLAGS] |= 0xf0;
    fix_checksum(&mut bytes);
    assert!(matches!(
        IgmpRepr::parse(&bytes),
        Ok(IgmpRepr::QueryV3 {
            qrv: 2,
            suppress_router: false,
            ..
        })
    ));
}

#[test]
fn report_v3_records_must_fit() {
    let repr = IgmpRepr::ReportV3 {
        records: vec![
            GroupRecord {
                kind: RecordType::ModeIsExclude,
                group: Ipv4Addr::new(239, 1, 1, 1),
                sources: vec![],
                aux_data: vec![],
            },
            GroupRecord {
                kind: RecordType::AllowNewSources,
                group: Ipv4Addr::new(232, 1, 1, 1),
                sources: vec![Ipv4Addr::new(10, 0, 0, 1)],
                aux_data: vec![1, 2, 3, 4],
            },
        ],
    };
    let good = emit(&repr);
    assert_eq!(good.len(), 8 + 8 + 16);

    // One record more than present.
    let mut bytes = good.clone();
    bytes[field::NUM_RECORDS].copy_from_slice(&3u16.to_be_bytes());
    fix_checksum(&mut bytes);
    assert_eq!(IgmpRepr::parse(&bytes), Err(Error::BadCount));

    // A source count running past the end.
    let mut bytes = good.clone();
    bytes[8 + 8 + 3] = 2;
    fix_checksum(&mut bytes);
    assert_eq!(IgmpRepr::parse(&bytes), Err(Error::BadCount));

    // Aux data running past the end.
    let mut bytes = good.clone();
    bytes[8 + 8 + 1] = 2;
    fix_checksum(&mut bytes);
    assert_eq!(IgmpRepr::parse(&bytes), Err(Error::BadCount));

    // A record cut in its header.
    let mut bytes = good[..8 + 8 + 6].to_vec();
    fix_checksum(&mut bytes);
    assert_eq!(IgmpRepr::parse(&bytes), Err(Error::BadCount));

    // The view walks the records lazily and stops at the first bad one.
    let packet = IgmpPacket::new_checked(&bytes[..]).unwrap();
    let mut records = packet.records();
    let first = records.next().unwrap().unwrap();
    assert_eq!(first.kind(), RecordType::ModeIsExclude);
    assert_eq!(first.group(), Ipv4Addr::new(239, 1, 1, 1));
    assert_eq!(records.next(), Some(Err(Error::BadCount)));
    assert_eq!(records.next(), None);

    // A huge count over a short message fails cleanly.
    let mut bytes = vec![0x22, 0, 0, 0, 0, 0, 0xff, 0xff];
    fix_checksum(&mut bytes);
    assert_eq!(IgmpRepr::parse(&bytes), Err(Error::BadCount));
}

#[test]
fn record_view_exposes_fields() {
    let record = GroupRecord {
        kind: RecordType::Unknown(9),
        group: Ipv4Addr::new(232, 1, 1, 1),
        sources: vec![Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)],
        aux_data: vec![9, 9, 9, 9],
    };
    let bytes = emit(&IgmpRepr::ReportV3 {
        records: vec![record.clone()],
    });
    let packet = IgmpPacket::new_checked(&bytes[..]).unwrap();
    assert_eq!(packet.msg_type(), MessageType::ReportV3);
    assert_eq!(packet.num_records(), 1);
    let view = packet.records().next().unwrap().unwrap();
    assert_eq!(view.kind(), RecordType::Unknown(9));
    assert_eq!(view.aux_data_len(), 1);
    assert_eq!(view.num_sources(), 2);
    assert_eq!(view.sources().collect::<Vec<_>>(), record.sources);
    assert_eq!(view.aux_data(), &[9, 9, 9, 9]);
    assert_eq!(view.len(), record.buffer_len());
    assert_eq!(view.to_repr(), record);
}

#[test]
fn reports_and_leave_are_eight_bytes_with_code_zero() {
    let group = Ipv4Addr::new(239, 1, 2, 4);
    assert_eq!(
        emit(&IgmpRepr::ReportV2 { group }),
        [0x16, 0, 0xf8, 0xf9, 239, 1, 2, 4]
    );
    assert_eq!(emit(&IgmpRepr::ReportV1 { group })[..2], [0x12, 0]);
    assert_eq!(emit(&IgmpRepr::Leave { group })[..2], [0x17, 0]);
    // A non-zero code in a report is ignored (unused, RFC 2236 §2.2); a longer leave too.
    let mut bytes = vec![0x17, 55, 0, 0, 239, 1, 2, 4, 1, 2, 3, 4];
    fix_checksum(&mut bytes);
    assert_eq!(IgmpRepr::parse(&bytes), Ok(IgmpRepr::Leave { group }));
}

#[test]
fn view_setters_and_getters() {
    let mut buf = [0u8; 16];
    let mut packet = IgmpPacket::new_unchecked(&mut buf[..]);
    packet.set_msg_type(MessageType::MembershipQuery);
    packet.set_max_resp_code(0x80);
    packet.set_group(Ipv4Addr::new(239, 9, 9, 9));
    packet.set_flags(true, 9);
    packet.set_qqic(125);
    packet.set_num_sources(1);
    packet.set_source(0, Ipv4Addr::new(10, 1, 2, 3));
    packet.fill_checksum();
    assert!(packet.verify_checksum());
    assert!(packet.is_v3_query());
    assert_eq!(packet.max_resp_code(), 0x80);
    assert_eq!(packet.group(), Ipv4Addr::new(239, 9, 9, 9));
    assert!(packet.suppress_router());
    assert_eq!(packet.qrv(), 1, "QRV is three bits");
    assert_eq!(packet.qqic(), 125);
    assert_eq!(packet.source(0), Ipv4Addr::new(10, 1, 2, 3));
    let checksum = packet.checksum();
    let bytes = packet.into_inner();
    assert_eq!(u16::from_be_bytes([bytes[2], bytes[3]]), checksum);
    assert_eq!(
        IgmpRepr::parse(bytes).unwrap().max_resp_time(),
        Some(Duration::from_millis(12_800))
    );
    for kind in [0x11, 0x12, 0x16, 0x17, 0x22, 0x00, 0xff] {
        assert_eq!(u8::from(MessageType::from(kind)), kind);
    }
}

#[test]
fn max_resp_time() {
    let group = Ipv4Addr::UNSPECIFIED;
    let v1 = IgmpRepr::Query {
        max_resp_code: 0,
        group,
    };
    assert_eq!(v1.max_resp_time(), Some(Duration::from_secs(10)));
    let v2 = IgmpRepr::Query {
        max_resp_code: 100,
        group,
    };
    assert_eq!(v2.max_resp_time(), Some(Duration::from_secs(10)));
    let v3 = |max_resp_code| IgmpRepr::QueryV3 {
        max_resp_code,
        group,
        suppress_router: false,
        qrv: 2,
        qqic: 125,
        sources: vec![],
    };
    assert_eq!(v3(0).max_resp_time(), Some(Duration::ZERO));
    assert_eq!(v3(100).max_resp_time(), Some(Duration::from_secs(10)));
    assert_eq!(
        v3(0xff).max_resp_time(),
        Some(Duration::from_millis(3_174_400))
    );
    assert_eq!(IgmpRepr::ReportV2 { group }.max_resp_time(), None);
    assert_eq!(IgmpRepr::ReportV3 { records: vec![] }.max_resp_time(), None);
}

#[test]
#[should_panic(expected = "buffer_len")]
fn emit_insists_on_the_exact_length() {
    let mut buf = [0u8; 9];
    IgmpRepr::Leave {
        group: Ipv4Addr::UNSPECIFIED,
    }
    .emit(&mut buf);
}
