//! One vocabulary for printing messages: the daemon's logs, mcquerier and the tests use it.

use std::net::{Ipv4Addr, Ipv6Addr};

use membership::wire::igmp::IgmpRepr;
use membership::wire::mld::MldRepr;
use membership::wire::{GroupRecord, RecordType};

fn v4(text: &str) -> Ipv4Addr {
    text.parse().unwrap()
}

fn v6(text: &str) -> Ipv6Addr {
    text.parse().unwrap()
}

#[test]
fn record_types_have_short_names() {
    let names: Vec<String> = (1..=7)
        .map(|code| RecordType::from(code).to_string())
        .collect();
    assert_eq!(
        names,
        ["is_in", "is_ex", "to_in", "to_ex", "allow", "block", "type7"]
    );
}

#[test]
fn igmp_messages_print_on_one_line() {
    let cases = [
        (
            IgmpRepr::ReportV2 {
                group: v4("239.1.2.3"),
            },
            "v2-report 239.1.2.3",
        ),
        (
            IgmpRepr::Leave {
                group: v4("239.1.2.3"),
            },
            "leave 239.1.2.3",
        ),
        (
            IgmpRepr::Query {
                max_resp_code: 0,
                group: Ipv4Addr::UNSPECIFIED,
            },
            "query 0.0.0.0 v1 max-resp 10000ms",
        ),
        (
            IgmpRepr::QueryV3 {
                max_resp_code: 0x89,
                group: v4("232.1.1.1"),
                suppress_router: false,
                qrv: 2,
                qqic: 125,
                sources: vec![v4("10.0.0.2"), v4("10.0.0.9")],
            },
            "query 232.1.1.1 v3 max-resp 20000ms sources{10.0.0.2,10.0.0.9} qrv 2 qqi 125s \
             s-flag off",
        ),
        (
            IgmpRepr::ReportV3 {
                records: vec![
                    GroupRecord {
                        kind: RecordType::ModeIsInclude,
                        group: v4("232.1.1.1"),
                        sources: vec![v4("10.0.0.2")],
                        aux_data: vec![],
                    },
                    GroupRecord {
                        kind: RecordType::ChangeToExclude,
                        group: v4("239.1.1.1"),
                        sources: vec![],
                        aux_data: vec![],
                    },
                ],
            },
            "v3-report 232.1.1.1:is_in{10.0.0.2} 239.1.1.1:to_ex{}",
        ),
    ];
    for (repr, text) in cases {
        assert_eq!(repr.to_string(), text);
    }
}

#[test]
fn mld_messages_print_on_one_line() {
    let cases = [
        (
            MldRepr::Done {
                group: v6("ff12::1"),
            },
            "mld-done ff12::1",
        ),
        (
            MldRepr::Query {
                max_resp_delay: 1000,
                group: Ipv6Addr::UNSPECIFIED,
            },
            "mld-query :: v1 max-resp 1000ms",
        ),
        (
            MldRepr::QueryV2 {
                max_resp_code: 0x8388,
                group: Ipv6Addr::UNSPECIFIED,
                suppress_router: true,
                qrv: 2,
                qqic: 0x80,
                sources: vec![],
            },
            "mld-query :: v2 max-resp 40000ms qrv 2 qqi 128s s-flag on",
        ),
    ];
    for (repr, text) in cases {
        assert_eq!(repr.to_string(), text);
    }
    let v3 = MldRepr::QueryV2 {
        max_resp_code: 1000,
        group: v6("ff3e::1"),
        suppress_router: false,
        qrv: 7,
        qqic: 0x8f,
        sources: vec![v6("2001:db8::1")],
    };
    let fields = v3.v3_query().expect("an MLDv2 query");
    assert_eq!((fields.qrv, fields.query_interval().as_secs()), (7, 248));
    assert_eq!(fields.sources, [v6("2001:db8::1")]);
    assert!(MldRepr::Report {
        group: v6("ff12::1")
    }
    .v3_query()
    .is_none());
}
