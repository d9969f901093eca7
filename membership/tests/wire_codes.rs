//! Max Resp Code / QQIC floating-point forms, the Internet checksum and record types.

use membership::wire::{
    decode_code16, decode_code8, encode_code16, encode_code8, internet_checksum, RecordType,
};
use proptest::prelude::*;

#[test]
fn code8_known_values() {
    // RFC 9776 §4.1.1: 1 | exp(3) | mant(4), value = (mant | 0x10) << (exp + 3).
    assert_eq!(decode_code8(0), 0);
    assert_eq!(decode_code8(100), 100);
    assert_eq!(decode_code8(127), 127);
    assert_eq!(decode_code8(0x80), 128);
    assert_eq!(decode_code8(0x81), 136);
    assert_eq!(decode_code8(0x8f), 248);
    assert_eq!(decode_code8(0x90), 256);
    assert_eq!(decode_code8(0xf0), 16 << 10);
    assert_eq!(decode_code8(0xff), 31744);

    assert_eq!(encode_code8(0), 0);
    assert_eq!(encode_code8(127), 127);
    assert_eq!(encode_code8(128), 0x80);
    assert_eq!(encode_code8(135), 0x80, "rounds down to 128");
    assert_eq!(encode_code8(136), 0x81);
    assert_eq!(encode_code8(31744), 0xff);
    assert_eq!(encode_code8(31745), 0xff);
    assert_eq!(encode_code8(u32::MAX), 0xff, "saturates");
}

#[test]
fn code16_known_values() {
    // RFC 9777 §5.1.3: 1 | exp(3) | mant(12), value = (mant | 0x1000) << (exp + 3).
    assert_eq!(decode_code16(0), 0);
    assert_eq!(decode_code16(10_000), 10_000);
    assert_eq!(decode_code16(0x7fff), 32767);
    assert_eq!(decode_code16(0x8000), 32768);
    assert_eq!(decode_code16(0x8001), 32776);
    assert_eq!(decode_code16(0xffff), 8_387_584);

    assert_eq!(encode_code16(32767), 0x7fff);
    assert_eq!(encode_code16(32768), 0x8000);
    assert_eq!(encode_code16(32775), 0x8000);
    assert_eq!(encode_code16(32776), 0x8001);
    assert_eq!(encode_code16(8_387_584), 0xffff);
    assert_eq!(encode_code16(u32::MAX), 0xffff);
}

#[test]
fn every_code_round_trips() {
    for code in 0..=u8::MAX {
        assert_eq!(encode_code8(decode_code8(code)), code, "code8 {code:#x}");
    }
    for code in 0..=u16::MAX {
        assert_eq!(encode_code16(decode_code16(code)), code, "code16 {code:#x}");
    }
}

#[test]
fn decoding_is_strictly_increasing() {
    for code in 1..=u8::MAX {
        assert!(
            decode_code8(code) > decode_code8(code - 1),
            "code8 {code:#x}"
        );
    }
    for code in 1..=u16::MAX {
        assert!(
            decode_code16(code) > decode_code16(code - 1),
            "code16 {code:#x}"
        );
    }
}

proptest! {
    #[test]
    fn code8_is_exact_below_128(value in 0u32..128) {
        prop_assert_eq!(u32::from(encode_code8(value)), value);
        prop_assert_eq!(decode_code8(encode_code8(value)), value);
    }

    #[test]
    fn code16_is_exact_below_32768(value in 0u32..32768) {
        prop_assert_eq!(u32::from(encode_code16(value)), value);
        prop_assert_eq!(decode_code16(encode_code16(value)), value);
    }

    /// The encoded value never exceeds the request, and the next code up would.
    #[test]
    fn code8_is_the_largest_not_above(value in any::<u32>()) {
        let code = encode_code8(value);
        let decoded = decode_code8(code);
        if value >= decode_code8(u8::MAX) {
            prop_assert_eq!(code, u8::MAX);
        } else {
            prop_assert!(decoded <= value);
            prop_assert!(decode_code8(code + 1) > value);
        }
    }

    #[test]
    fn code16_is_the_largest_not_above(value in any::<u32>()) {
        let code = encode_code16(value);
        let decoded = decode_code16(code);
        if value >= decode_code16(u16::MAX) {
            prop_assert_eq!(code, u16::MAX);
        } else {
            prop_assert!(decoded <= value);
            prop_assert!(decode_code16(code + 1) > value);
        }
    }

    #[test]
    fn encoding_is_monotone(a in any::<u32>(), b in any::<u32>()) {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(encode_code8(low) <= encode_code8(high));
        prop_assert!(encode_code16(low) <= encode_code16(high));
    }

    /// Filling in the checksum makes the data sum to zero, at any length and alignment.
    #[test]
    fn checksum_verifies_after_filling(mut data in proptest::collection::vec(any::<u8>(), 2..64)) {
        data[0] = 0;
        data[1] = 0;
        let checksum = internet_checksum(&data);
        data[..2].copy_from_slice(&checksum.to_be_bytes());
        prop_assert_eq!(internet_checksum(&data), 0);
    }

    #[test]
    fn record_type_round_trips(value in any::<u8>()) {
        prop_assert_eq!(u8::from(RecordType::from(value)), value);
    }
}

#[test]
fn checksum_known_values() {
    // RFC 1071 §3 example: the one's complement sum of these words is 0xddf2.
    let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
    assert_eq!(internet_checksum(&data), !0xddf2);
    // An odd length is padded with a zero byte.
    assert_eq!(internet_checksum(&[0x12]), !0x1200);
    assert_eq!(internet_checksum(&[]), 0xffff);
    // The IGMPv2 report for 239.1.2.4: 1600 ____ ef01 0204.
    assert_eq!(internet_checksum(&[0x16, 0, 0, 0, 0xef, 1, 2, 4]), 0xf8f9);
}

#[test]
fn record_types_have_rfc_numbers() {
    let named = [
        (RecordType::ModeIsInclude, 1),
        (RecordType::ModeIsExclude, 2),
        (RecordType::ChangeToInclude, 3),
        (RecordType::ChangeToExclude, 4),
        (RecordType::AllowNewSources, 5),
        (RecordType::BlockOldSources, 6),
    ];
    for (kind, number) in named {
        assert_eq!(u8::from(kind), number);
        assert_eq!(RecordType::from(number), kind);
    }
    assert_eq!(RecordType::from(0), RecordType::Unknown(0));
    assert_eq!(RecordType::from(7), RecordType::Unknown(7));
    let json = serde_json::to_string(&RecordType::ChangeToExclude).unwrap();
    assert_eq!(
        serde_json::from_str::<RecordType>(&json).unwrap(),
        RecordType::ChangeToExclude
    );
}
