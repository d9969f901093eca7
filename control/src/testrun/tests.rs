//! The test requests' wire form and the specs' checks.

use super::*;
use crate::protocol::Request;

#[test]
fn test_requests_round_trip_as_one_json_object_each() {
    let spec = TestSpec::Zapping(ZappingSpec {
        name: "iptv".into(),
        iface: None,
        hosts: Some(["10.0.0.2".parse().unwrap(), "10.0.0.3".parse().unwrap()]),
        channels: vec!["239.1.1.1".parse().unwrap()],
        sources: vec![],
        view_ms: 500,
        count: None,
        order: ZapOrder::Sequential,
        seed: None,
        mode: ZapMode::LeaveJoin,
        not_received_ms: 2000,
        leave_grace_ms: 3000,
        thresholds_ms: vec![125],
        streams: None,
        sla: Sla::default(),
    });
    let cases = [
        (
            Request::TestStart(TestStartArgs {
                test: Some(spec),
                name: None,
                streams: Vec::new(),
            }),
            r#"{"cmd":"test_start","test":{"kind":"zapping","name":"iptv","hosts":["10.0.0.2","10.0.0.3"],"channels":["239.1.1.1"],"view_ms":500,"order":"sequential","mode":"leave-join","not_received_ms":2000,"leave_grace_ms":3000,"thresholds_ms":[125],"sla":{"max_not_received":0}}}"#,
        ),
        (
            Request::TestStart(TestStartArgs {
                test: None,
                name: Some("lab".into()),
                streams: Vec::new(),
            }),
            r#"{"cmd":"test_start","name":"lab"}"#,
        ),
        (
            Request::TestStatus(TestSelect::default()),
            r#"{"cmd":"test_status"}"#,
        ),
        (
            Request::TestReport(TestSelect {
                format: Some(ReportFormat::Junit),
                ..TestSelect::default()
            }),
            r#"{"cmd":"test_report","format":"junit"}"#,
        ),
        (
            Request::TestStop(TestSelect::default()),
            r#"{"cmd":"test_stop"}"#,
        ),
    ];
    for (request, line) in cases {
        assert_eq!(serde_json::to_string(&request).unwrap(), line);
        assert_eq!(serde_json::from_str::<Request>(line).unwrap(), request);
    }
    // The defaults fill what a request leaves out.
    let short: Request = serde_json::from_str(
        r#"{"cmd":"test_start","test":{"kind":"rfc3918-join-leave","groups":["ff1e::1"]}}"#,
    )
    .unwrap();
    let Request::TestStart(TestStartArgs {
        test: Some(TestSpec::JoinLeave(j)),
        ..
    }) = short
    else {
        panic!("{short:?}");
    };
    assert_eq!((j.iterations, j.check_ms, j.hold_ms), (3, 1000, 2000));
    assert_eq!(j.name, "join-delay");
}

#[test]
fn bad_test_requests_are_refused() {
    for bad in [
        r#"{"cmd":"test_start","test":{"kind":"flood","channels":["239.1.1.1"]}}"#,
        r#"{"cmd":"test_start","test":{"kind":"zapping","channels":["239.1.1.1"],"view":1}}"#,
        r#"{"cmd":"test_start","test":{"kind":"zapping"}}"#,
        r#"{"cmd":"test_start","test":{"kind":"zapping","channels":["239.1.1.1"],"hosts":"x"}}"#,
        r#"{"cmd":"test_report","format":"pdf"}"#,
        r#"{"cmd":"test_status","extra":1}"#,
    ] {
        assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
    }
}

#[test]
fn specs_are_checked_naming_the_key() {
    let base = ZappingSpec {
        name: "z".into(),
        iface: None,
        hosts: None,
        channels: vec!["239.1.1.1".parse().unwrap(), "239.1.1.2".parse().unwrap()],
        sources: vec![],
        view_ms: 1000,
        count: None,
        order: ZapOrder::Sequential,
        seed: None,
        mode: ZapMode::LeaveJoin,
        not_received_ms: 2000,
        leave_grace_ms: 3000,
        thresholds_ms: DEFAULT_THRESHOLDS_MS.to_vec(),
        streams: None,
        sla: Sla::default(),
    };
    assert_eq!(TestSpec::Zapping(base.clone()).check(), Ok(()));
    let one: IpAddr = "10.0.0.1".parse().unwrap();
    let ssm = ZappingSpec {
        sources: vec![one],
        ..base.clone()
    };
    assert_eq!(TestSpec::Zapping(ssm.clone()).check(), Ok(()));
    assert_eq!((ssm.source_of(0), ssm.source_of(1)), (Some(one), Some(one)));
    assert_eq!(base.source_of(1), None);
    let cases = [
        (
            ZappingSpec {
                channels: vec![],
                ..base.clone()
            },
            "channels: give at least one group",
        ),
        (
            ZappingSpec {
                channels: vec![base.channels[0], base.channels[0]],
                ..base.clone()
            },
            "channels: 239.1.1.1 is given twice",
        ),
        (
            ZappingSpec {
                thresholds_ms: vec![250, 125],
                ..base.clone()
            },
            "thresholds_ms:",
        ),
        (
            ZappingSpec {
                count: Some(0),
                ..base.clone()
            },
            "count: 1 or more",
        ),
        (
            ZappingSpec {
                name: "two words".into(),
                ..base.clone()
            },
            "name \"two words\"",
        ),
        (
            ZappingSpec {
                sources: vec!["10.0.0.1".parse().unwrap(); 3],
                ..base.clone()
            },
            "sources: one for every channel, or one per channel (2 channels, 3 sources)",
        ),
        (
            ZappingSpec {
                sources: vec!["239.0.0.1".parse().unwrap()],
                ..base.clone()
            },
            "sources: 239.0.0.1 is not a unicast address",
        ),
        (
            ZappingSpec {
                sources: vec!["2001:db8::1".parse().unwrap()],
                ..base.clone()
            },
            "sources: 2001:db8::1 is not of the channels' family",
        ),
    ];
    for (spec, expected) in cases {
        let error = TestSpec::Zapping(spec).check().unwrap_err();
        assert!(error.starts_with(expected), "{error}");
    }
}
