//! The IP layer: builders, classification, and hostile packets.

use std::net::{Ipv4Addr, Ipv6Addr};

use membership::wire::igmp::IgmpRepr;
use membership::wire::internet_checksum;
use membership::wire::ip::{
    build_ipv4, build_ipv6, classify, Classified, IpError, Ipv4Meta, Ipv6Meta, OtherKind,
};
use membership::wire::mld::MldRepr;
use proptest::collection::vec;
use proptest::prelude::*;

const HOST_V4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const GROUP_V4: Ipv4Addr = Ipv4Addr::new(239, 1, 2, 4);
const HOST_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff12, 0, 0, 0, 0, 0, 0, 0x1111);

fn igmp_report() -> Vec<u8> {
    IgmpRepr::ReportV2 { group: GROUP_V4 }.to_bytes()
}

fn mld_report() -> Vec<u8> {
    MldRepr::Report { group: GROUP_V6 }.to_bytes(&HOST_V6, &GROUP_V6)
}

/// Recomputes the IPv4 header checksum over the IHL-long header.
fn fix_ipv4_checksum(packet: &mut [u8]) {
    let header_len = usize::from(packet[0] & 0x0f) * 4;
    packet[10..12].fill(0);
    let checksum = internet_checksum(&packet[..header_len]);
    packet[10..12].copy_from_slice(&checksum.to_be_bytes());
}

/// An IPv4 packet written by hand (independent of `build_ipv4`). `options` must be a
/// multiple of 4 bytes.
fn ipv4_packet(options: &[u8], flags_fragment: u16, protocol: u8, payload: &[u8]) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let header_len = 20 + options.len();
    let total_len = (header_len + payload.len()) as u16;
    let mut packet = vec![0x40 | (header_len / 4) as u8, 0xc0];
    packet.extend_from_slice(&total_len.to_be_bytes());
    packet.extend_from_slice(&[0, 0]);
    packet.extend_from_slice(&flags_fragment.to_be_bytes());
    packet.extend_from_slice(&[1, protocol, 0, 0]);
    packet.extend_from_slice(&HOST_V4.octets());
    packet.extend_from_slice(&GROUP_V4.octets());
    packet.extend_from_slice(options);
    packet.extend_from_slice(payload);
    fix_ipv4_checksum(&mut packet);
    packet
}

/// An IPv6 packet written by hand: `first` is the next header of the fixed header and
/// `chain` the extension headers and upper-layer data after it.
fn ipv6_packet(first: u8, chain: &[u8]) -> Vec<u8> {
    let mut packet = vec![0x60, 0, 0, 0];
    packet.extend_from_slice(&(chain.len() as u16).to_be_bytes());
    packet.extend_from_slice(&[first, 1]);
    packet.extend_from_slice(&HOST_V6.octets());
    packet.extend_from_slice(&GROUP_V6.octets());
    packet.extend_from_slice(chain);
    packet
}

/// A generic extension header (8-octet units) with the given next header and body.
fn ext(next: u8, body: &[u8]) -> Vec<u8> {
    assert_eq!((body.len() + 2) % 8, 0);
    let mut header = vec![next, ((body.len() + 2) / 8 - 1) as u8];
    header.extend_from_slice(body);
    header
}

const RA_PADN: [u8; 6] = [5, 2, 0, 0, 1, 0];

/// `Classified` without the borrow, for helpers that build the packet they classify.
#[derive(Debug, PartialEq, Eq)]
enum Owned {
    Igmp(Ipv4Meta, Vec<u8>),
    Mld(Ipv6Meta, Vec<u8>),
    Other(OtherKind),
}

fn classify_owned(packet: &[u8]) -> Result<Owned, IpError> {
    classify(packet).map(|classified| match classified {
        Classified::Igmp { meta, payload } => Owned::Igmp(meta, payload.to_vec()),
        Classified::Mld { meta, payload } => Owned::Mld(meta, payload.to_vec()),
        Classified::Other(kind) => Owned::Other(kind),
    })
}

fn mld_meta(router_alert: bool) -> Ipv6Meta {
    Ipv6Meta {
        src: HOST_V6,
        dst: GROUP_V6,
        hop_limit: 1,
        router_alert,
    }
}

#[test]
fn builds_the_kernels_igmpv2_report_byte_for_byte() {
    // The Linux kernel's IGMPv2 report for 239.1.2.4 from 10.99.0.1, checksum left open.
    let mut expected = vec![
        0x46, 0xc0, 0x00, 0x20, 0x00, 0x00, 0x40, 0x00, 0x01, 0x02, 0x00, 0x00, 0x0a, 0x63, 0x00,
        0x01, 0xef, 0x01, 0x02, 0x04, 0x94, 0x04, 0x00, 0x00, 0x16, 0x00, 0xf8, 0xf9, 0xef, 0x01,
        0x02, 0x04,
    ];
    let checksum = internet_checksum(&expected[..24]);
    expected[10..12].copy_from_slice(&checksum.to_be_bytes());
    assert_eq!(build_ipv4(HOST_V4, GROUP_V4, &igmp_report()), expected);
}

#[test]
fn builds_mld_with_hop_by_hop_router_alert() {
    let body = mld_report();
    let packet = build_ipv6(HOST_V6, GROUP_V6, &body);
    assert_eq!(packet.len(), 40 + 8 + 24);
    assert_eq!(packet[..8], [0x60, 0, 0, 0, 0, 32, 0, 1]);
    assert_eq!(packet[8..24], HOST_V6.octets());
    assert_eq!(packet[24..40], GROUP_V6.octets());
    assert_eq!(packet[40..48], [0x3a, 0, 5, 2, 0, 0, 1, 0]);
    assert_eq!(packet[48..], body[..]);
}

#[test]
fn classifies_what_we_build() {
    let igmp = igmp_report();
    assert_eq!(
        classify(&build_ipv4(HOST_V4, GROUP_V4, &igmp)),
        Ok(Classified::Igmp {
            meta: Ipv4Meta {
                src: HOST_V4,
                dst: GROUP_V4,
                ttl: 1,
                router_alert: true
            },
            payload: &igmp[..]
        })
    );
    let mld = mld_report();
    assert_eq!(
        classify(&build_ipv6(HOST_V6, GROUP_V6, &mld)),
        Ok(Classified::Mld {
            meta: mld_meta(true),
            payload: &mld[..]
        })
    );
}

#[test]
fn link_padding_after_the_packet_is_ignored() {
    let igmp = igmp_report();
    let mut packet = build_ipv4(HOST_V4, GROUP_V4, &igmp);
    packet.extend_from_slice(&[0; 14]);
    assert!(matches!(classify(&packet), Ok(Classified::Igmp { payload, .. }) if payload == igmp));

    let mld = mld_report();
    let mut packet = build_ipv6(HOST_V6, GROUP_V6, &mld);
    packet.extend_from_slice(&[0xee; 5]);
    assert!(matches!(classify(&packet), Ok(Classified::Mld { payload, .. }) if payload == mld));
}

#[test]
fn not_ip() {
    assert_eq!(classify(&[]), Err(IpError::NotIp));
    for first in [0x00, 0x15, 0x05, 0x55, 0x75, 0xf0] {
        let mut packet = build_ipv4(HOST_V4, GROUP_V4, &igmp_report());
        packet[0] = first;
        assert_eq!(classify(&packet), Err(IpError::NotIp), "{first:#x}");
    }
}

#[test]
fn ipv4_truncated_at_every_length() {
    let packet = build_ipv4(HOST_V4, GROUP_V4, &igmp_report());
    for len in 1..packet.len() {
        let expected = if len < 24 {
            // Shorter than 20 bytes, or than the 24 bytes IHL announces.
            IpError::Ipv4Truncated
        } else {
            IpError::Ipv4BadTotalLength
        };
        assert_eq!(classify(&packet[..len]), Err(expected), "{len}");
    }
}

#[test]
fn ipv4_lying_lengths() {
    let packet = build_ipv4(HOST_V4, GROUP_V4, &igmp_report());

    for ihl in 0..5 {
        let mut bad = packet.clone();
        bad[0] = 0x40 | ihl;
        assert_eq!(
            classify(&bad),
            Err(IpError::Ipv4BadHeaderLength),
            "IHL {ihl}"
        );
    }
    // IHL says 60 bytes: more than the packet holds.
    let mut bad = packet.clone();
    bad[0] = 0x4f;
    assert_eq!(classify(&bad), Err(IpError::Ipv4Truncated));
    // IHL says 32 bytes while the total length is 32: the IGMP message becomes options,
    // which do not parse (0x16 0x00: length 0).
    let mut bad = packet.clone();
    bad[0] = 0x48;
    fix_ipv4_checksum(&mut bad);
    assert_eq!(classify(&bad), Err(IpError::Ipv4BadOptions));

    // Total length beyond the buffer, or inside the header.
    for total in [33u16, 0xffff, 23, 20, 0] {
        let mut bad = packet.clone();
        bad[2..4].copy_from_slice(&total.to_be_bytes());
        fix_ipv4_checksum(&mut bad);
        assert_eq!(
            classify(&bad),
            Err(IpError::Ipv4BadTotalLength),
            "total {total}"
        );
    }
    // A total length of exactly the header is a valid, empty IGMP payload.
    let mut empty = packet.clone();
    empty[2..4].copy_from_slice(&24u16.to_be_bytes());
    fix_ipv4_checksum(&mut empty);
    assert!(matches!(
        classify(&empty),
        Ok(Classified::Igmp { payload: &[], .. })
    ));
}

#[test]
fn ipv4_bad_header_checksum() {
    let packet = build_ipv4(HOST_V4, GROUP_V4, &igmp_report());
    for at in [1, 8, 10, 11, 15, 22] {
        let mut bad = packet.clone();
        bad[at] ^= 0x01;
        assert_eq!(classify(&bad), Err(IpError::Ipv4BadChecksum), "byte {at}");
    }
    // The payload is not covered by the header checksum.
    let mut payload_changed = packet.clone();
    payload_changed[30] ^= 0xff;
    assert!(matches!(
        classify(&payload_changed),
        Ok(Classified::Igmp { .. })
    ));
}

#[test]
fn ipv4_options() {
    let igmp = igmp_report();
    let router_alert = |options: &[u8]| match classify(&ipv4_packet(options, 0x4000, 2, &igmp)) {
        Ok(Classified::Igmp { meta, payload }) => {
            assert_eq!(payload, igmp);
            Ok(meta.router_alert)
        }
        Ok(other) => panic!("{other:?}"),
        Err(error) => Err(error),
    };
    assert_eq!(router_alert(&[]), Ok(false));
    assert_eq!(router_alert(&[0x94, 4, 0, 0]), Ok(true));
    assert_eq!(
        router_alert(&[1, 0x94, 4, 0, 0, 0, 0, 0]),
        Ok(true),
        "after a NOP"
    );
    assert_eq!(router_alert(&[0x94, 4, 0, 1]), Ok(false), "reserved value");
    assert_eq!(
        router_alert(&[0, 0x94, 4, 0]),
        Ok(false),
        "after End of Options"
    );
    assert_eq!(router_alert(&[1, 1, 1, 1]), Ok(false), "NOPs");
    // Options that lie about their length.
    assert_eq!(router_alert(&[0x94, 6, 0, 0]), Err(IpError::Ipv4BadOptions));
    assert_eq!(router_alert(&[0x94, 2, 0, 0]), Err(IpError::Ipv4BadOptions));
    assert_eq!(
        router_alert(&[0x94, 5, 0, 0, 0, 0, 0, 0]),
        Err(IpError::Ipv4BadOptions)
    );
    assert_eq!(router_alert(&[0x07, 1, 0, 0]), Err(IpError::Ipv4BadOptions));
    assert_eq!(router_alert(&[0x07, 0, 0, 0]), Err(IpError::Ipv4BadOptions));
    assert_eq!(
        router_alert(&[1, 1, 1, 0x44]),
        Err(IpError::Ipv4BadOptions),
        "no length byte"
    );
    assert_eq!(router_alert(&[0x44, 8, 0, 0]), Err(IpError::Ipv4BadOptions));
    // A long, valid timestamp-like option followed by Router Alert.
    assert_eq!(router_alert(&[0x44, 4, 5, 0, 0x94, 4, 0, 0]), Ok(true));
}

#[test]
fn ipv4_fragments_and_other_protocols() {
    let igmp = igmp_report();
    assert_eq!(
        classify(&ipv4_packet(&[], 0x2000, 2, &igmp)),
        Err(IpError::Fragment),
        "MF"
    );
    assert_eq!(
        classify(&ipv4_packet(&[], 0x0001, 2, &igmp)),
        Err(IpError::Fragment),
        "offset"
    );
    assert_eq!(
        classify(&ipv4_packet(&[], 0x1fff, 17, &igmp)),
        Err(IpError::Fragment)
    );
    assert!(matches!(
        classify(&ipv4_packet(&[], 0x0000, 2, &igmp)),
        Ok(Classified::Igmp {
            meta: Ipv4Meta {
                router_alert: false,
                ttl: 1,
                ..
            },
            ..
        })
    ));
    assert_eq!(
        classify(&ipv4_packet(&[], 0x4000, 17, &[0; 8])),
        Ok(Classified::Other(OtherKind::Ipv4(17)))
    );
    assert_eq!(
        classify(&ipv4_packet(&[0x94, 4, 0, 0], 0x4000, 1, &[])),
        Ok(Classified::Other(OtherKind::Ipv4(1)))
    );
}

#[test]
fn ipv6_truncated_and_lying_payload_length() {
    let packet = build_ipv6(HOST_V6, GROUP_V6, &mld_report());
    for len in 1..40 {
        assert_eq!(
            classify(&packet[..len]),
            Err(IpError::Ipv6Truncated),
            "{len}"
        );
    }
    for len in 40..packet.len() {
        assert_eq!(
            classify(&packet[..len]),
            Err(IpError::Ipv6BadPayloadLength),
            "{len}"
        );
    }
    let mut bad = packet.clone();
    bad[4..6].copy_from_slice(&0xffffu16.to_be_bytes());
    assert_eq!(classify(&bad), Err(IpError::Ipv6BadPayloadLength));
    // A payload length that cuts into the hop-by-hop header.
    for payload_len in 0..8u16 {
        let mut bad = packet.clone();
        bad[4..6].copy_from_slice(&payload_len.to_be_bytes());
        assert_eq!(
            classify(&bad),
            Err(IpError::Ipv6BadExtension),
            "{payload_len}"
        );
    }
    // A payload length that cuts into the MLD message leaves a short ICMPv6 message for
    // the MLD parser to reject.
    let mut short = packet.clone();
    short[4..6].copy_from_slice(&20u16.to_be_bytes());
    assert!(matches!(classify(&short), Ok(Classified::Mld { payload, .. }) if payload.len() == 12));
}

#[test]
fn ipv6_extension_chains() {
    let mld = mld_report();
    let with = |first: u8, headers: &[Vec<u8>]| {
        let mut chain = headers.concat();
        chain.extend_from_slice(&mld);
        classify_owned(&ipv6_packet(first, &chain))
    };
    let found = |router_alert| Ok(Owned::Mld(mld_meta(router_alert), mld.clone()));

    assert_eq!(with(58, &[]), found(false), "no extension header");
    assert_eq!(with(0, &[ext(58, &RA_PADN)]), found(true));
    assert_eq!(
        with(0, &[ext(58, &[1, 4, 0, 0, 0, 0])]),
        found(false),
        "PadN only"
    );
    assert_eq!(with(0, &[ext(58, &[0; 6])]), found(false), "Pad1 only");
    assert_eq!(
        with(0, &[ext(58, &[5, 2, 0, 1, 1, 0])]),
        found(false),
        "RA value 1 is not MLD"
    );
    assert_eq!(
        with(
            0,
            &[ext(58, &[0x3e, 0, 5, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])]
        ),
        found(true),
        "unknown option and Pad1s around RA, two 8-byte units"
    );
    // Hop-by-hop, destination options, routing and AH are walked.
    let ah = [60, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1].to_vec();
    assert_eq!(
        with(
            0,
            &[
                ext(51, &RA_PADN),
                ah,
                ext(43, &[0; 6]),
                ext(58, &[1, 4, 0, 0, 0, 0])
            ]
        ),
        found(true)
    );
    assert_eq!(
        with(60, &[ext(58, &RA_PADN)]),
        found(false),
        "RA outside hop-by-hop"
    );

    // Hop-by-hop anywhere but first.
    assert_eq!(
        with(60, &[ext(0, &[1, 4, 0, 0, 0, 0]), ext(58, &RA_PADN)]),
        Err(IpError::Ipv6BadExtension)
    );
    assert_eq!(
        with(0, &[ext(0, &RA_PADN), ext(58, &RA_PADN)]),
        Err(IpError::Ipv6BadExtension)
    );
    // Option TLVs that run past their header, or a malformed Router Alert.
    for body in [
        [1, 5, 0, 0, 0, 0],
        [5, 4, 0, 0, 0, 0],
        [5, 2, 0, 0, 1, 1],
        [0, 0, 0, 0, 0, 0x3e],
    ] {
        assert_eq!(
            with(0, &[ext(58, &body)]),
            Err(IpError::Ipv6BadExtension),
            "{body:?}"
        );
        assert_eq!(
            with(60, &[ext(58, &body)]),
            Err(IpError::Ipv6BadExtension),
            "destination options {body:?}"
        );
    }
    // A header length beyond the payload.
    let mut long = ext(58, &RA_PADN);
    long[1] = 9;
    assert_eq!(with(0, &[long.clone()]), Err(IpError::Ipv6BadExtension));
    long[0] = 58;
    assert_eq!(with(43, &[long]), Err(IpError::Ipv6BadExtension));
    // AH with a zero or overlong length.
    assert_eq!(
        with(51, &[vec![58, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]]),
        Err(IpError::Ipv6BadExtension)
    );
    assert_eq!(
        with(51, &[vec![58, 200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]]),
        Err(IpError::Ipv6BadExtension)
    );
    // Fragments, first or later in the chain.
    let fragment = vec![58, 0, 0, 0, 0, 0, 0, 1];
    assert_eq!(
        with(0, &[ext(44, &RA_PADN), fragment.clone()]),
        Err(IpError::Fragment)
    );
    assert_eq!(with(44, &[fragment]), Err(IpError::Fragment));
}

#[test]
fn ipv6_other_traffic() {
    // The kernel's Router Solicitation on link-up.
    let rs = [133, 0, 0x7d, 0x36, 0, 0, 0, 0];
    assert_eq!(
        classify(&ipv6_packet(58, &rs)),
        Ok(Classified::Other(OtherKind::Icmpv6(133)))
    );
    assert_eq!(
        classify(&ipv6_packet(0, &[ext(58, &RA_PADN), rs.to_vec()].concat())),
        Ok(Classified::Other(OtherKind::Icmpv6(133)))
    );
    assert_eq!(
        classify(&ipv6_packet(17, &[0; 8])),
        Ok(Classified::Other(OtherKind::Ipv6(17)))
    );
    assert_eq!(
        classify(&ipv6_packet(0, &ext(59, &RA_PADN))),
        Ok(Classified::Other(OtherKind::Ipv6(59)))
    );
    assert_eq!(
        classify(&ipv6_packet(58, &[])),
        Ok(Classified::Other(OtherKind::Ipv6(58))),
        "an empty ICMPv6 message"
    );
}

#[test]
fn mld_checksum_survives_extension_headers() {
    // The pseudo-header length is the ICMPv6 length, not the IPv6 payload length.
    let repr = MldRepr::Done { group: GROUP_V6 };
    let body = repr.to_bytes(&HOST_V6, &GROUP_V6);
    let chain = [ext(60, &RA_PADN), ext(43, &[0; 6]), ext(58, &[0; 6]), body].concat();
    match classify(&ipv6_packet(0, &chain)) {
        Ok(Classified::Mld { meta, payload }) => {
            assert_eq!(MldRepr::parse(payload, &meta.src, &meta.dst), Ok(repr));
        }
        other => panic!("{other:?}"),
    }
}

fn ipv4_addr() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

fn ipv6_addr() -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>().prop_map(Ipv6Addr::from)
}

/// Valid packets of both families, some with longer extension chains.
fn valid_packet() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (ipv4_addr(), ipv4_addr(), ipv4_addr()).prop_map(|(src, dst, group)| {
            build_ipv4(src, dst, &IgmpRepr::Leave { group }.to_bytes())
        }),
        (ipv6_addr(), ipv6_addr(), ipv6_addr()).prop_map(|(src, dst, group)| {
            build_ipv6(src, dst, &MldRepr::Report { group }.to_bytes(&src, &dst))
        }),
        Just(ipv6_packet(
            0,
            &[
                ext(60, &RA_PADN),
                ext(51, &[0; 6]),
                vec![58, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                MldRepr::Done { group: GROUP_V6 }.to_bytes(&HOST_V6, &GROUP_V6),
            ]
            .concat()
        )),
        Just(ipv4_packet(
            &[1, 0x94, 4, 0, 0, 0x44, 4, 0],
            0x4000,
            2,
            &[0x11; 12]
        )),
    ]
}

proptest! {
    #[test]
    fn classify_never_panics(bytes in vec(any::<u8>(), 0..100)) {
        let _ = classify(&bytes);
    }

    #[test]
    fn classify_never_panics_on_ip_like_bytes(
        version in prop_oneof![Just(0x40u8), Just(0x60)],
        mut bytes in vec(any::<u8>(), 1..120),
    ) {
        bytes[0] = version | (bytes[0] & 0x0f);
        if let Ok(Classified::Igmp { payload, .. } | Classified::Mld { payload, .. }) = classify(&bytes) {
            prop_assert!(payload.len() < bytes.len());
        }
    }

    /// Valid packets with bytes overwritten, cut short or extended: never a panic, and
    /// whatever comes back lies inside the packet.
    #[test]
    fn classify_survives_mutation(
        packet in valid_packet(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        fix_header_checksum in any::<bool>(),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut packet = packet;
        for (at, value) in edits {
            let at = at.index(packet.len());
            packet[at] = value;
        }
        let header_len = usize::from(packet[0] & 0x0f) * 4;
        if fix_header_checksum && packet[0] >> 4 == 4 && (20..=packet.len()).contains(&header_len) {
            // Keep the IPv4 header checksum right so that the checks after it run.
            fix_ipv4_checksum(&mut packet);
        }
        if let Some(cut) = cut {
            let len = cut.index(packet.len() + 1);
            packet.truncate(len);
        }
        let start = packet.as_ptr() as usize;
        if let Ok(Classified::Igmp { payload, .. } | Classified::Mld { payload, .. }) = classify(&packet) {
            let offset = payload.as_ptr() as usize - start;
            prop_assert!(offset + payload.len() <= packet.len());
        }
    }

    #[test]
    fn igmp_survives_the_ip_layer(src in ipv4_addr(), dst in ipv4_addr(), group in ipv4_addr(), code in any::<u8>()) {
        for repr in [
            IgmpRepr::Query { max_resp_code: code, group },
            IgmpRepr::ReportV1 { group },
            IgmpRepr::ReportV2 { group },
            IgmpRepr::Leave { group },
        ] {
            let packet = build_ipv4(src, dst, &repr.to_bytes());
            match classify(&packet) {
                Ok(Classified::Igmp { meta, payload }) => {
                    prop_assert_eq!(meta, Ipv4Meta { src, dst, ttl: 1, router_alert: true });
                    prop_assert_eq!(IgmpRepr::parse(payload), Ok(repr));
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }

    #[test]
    fn mld_survives_the_ip_layer(src in ipv6_addr(), dst in ipv6_addr(), group in ipv6_addr(), delay in any::<u16>()) {
        for repr in [
            MldRepr::Query { max_resp_delay: delay, group },
            MldRepr::Report { group },
            MldRepr::Done { group },
        ] {
            let packet = build_ipv6(src, dst, &repr.to_bytes(&src, &dst));
            match classify(&packet) {
                Ok(Classified::Mld { meta, payload }) => {
                    prop_assert_eq!(meta, Ipv6Meta { src, dst, hop_limit: 1, router_alert: true });
                    prop_assert_eq!(MldRepr::parse(payload, &src, &dst), Ok(repr));
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }
}
