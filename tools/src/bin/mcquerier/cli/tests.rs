//! The command line's checks: what is refused and why, what is derived.

use super::*;

pub fn config(args: &[&str]) -> Result<Config, String> {
    let cli =
        Cli::try_parse_from(["mcquerier"].iter().chain(args)).map_err(|error| one_line(&error))?;
    Config::from_cli(cli)
}

pub fn spec(config: &Config) -> &QuerySpec {
    match &config.payload {
        Payload::Query(spec) => spec,
        Payload::Raw(_) => panic!("not a query"),
    }
}

fn max_resp(config: &Config) -> MaxResp {
    spec(config).max_resp
}

fn v3(config: &Config) -> V3Fields {
    spec(config).v3.clone().expect("a v3 query")
}

#[test]
fn argument_errors_are_one_clear_line() {
    let both = config(&["--dev", "t0", "--igmp", "2", "--mld", "1"]).unwrap_err();
    assert!(both.contains("cannot be used with"), "{both}");
    let none = config(&["--dev", "t0"]).unwrap_err();
    assert!(none.contains("--igmp") && !none.contains('\n'), "{none}");
    let wrong_family = config(&["--dev", "t0", "--mld", "1", "--group", "239.1.2.3"]);
    assert!(wrong_family.unwrap_err().contains("needs an IPv6 group"));
    let unicast = config(&["--dev", "t0", "--igmp", "2", "--group", "10.0.0.1"]);
    assert!(unicast.unwrap_err().contains("not a multicast address"));
    let v1_specific = config(&["--dev", "t0", "--igmp", "1", "--group", "239.1.2.3"]);
    assert!(v1_specific.unwrap_err().contains("IGMPv1"));
    let src = config(&["--dev", "t0", "--igmp", "2", "--src", "fe80::1"]);
    assert!(src.unwrap_err().contains("IPv4 source"));
    let delay = config(&["--dev", "t0", "--mld", "1", "--max-resp-ms", "70000"]);
    assert!(delay.unwrap_err().contains("65535"));
    let interval = config(&["--dev", "t0", "--igmp", "2", "--interval", "-1"]);
    assert!(interval.unwrap_err().contains("seconds"));
    let version = config(&["--dev", "t0", "--igmp", "4"]).unwrap_err();
    assert!(version.contains("1..=3"), "{version}");
    let version = config(&["--dev", "t0", "--mld", "3"]).unwrap_err();
    assert!(version.contains("1..=2"), "{version}");
}

#[test]
fn v3_options_are_checked() {
    let error = |args: &[&str]| {
        let args: Vec<&str> = ["--dev", "t0"].iter().chain(args).copied().collect();
        let error = config(&args).unwrap_err();
        assert!(!error.contains('\n'), "{error}");
        error
    };
    let no_group = error(&["--igmp", "3", "--sources", "10.0.0.1"]);
    assert!(no_group.contains("--sources needs --group"), "{no_group}");
    for (version, name) in [(["--igmp", "2"], "igmpv2"), (["--mld", "1"], "mldv1")] {
        let group = if name == "igmpv2" {
            "232.1.1.1"
        } else {
            "ff3e::1"
        };
        let source = if name == "igmpv2" {
            "10.0.0.1"
        } else {
            "2001:db8::1"
        };
        let e = error(&[
            version[0],
            version[1],
            "--group",
            group,
            "--sources",
            source,
        ]);
        assert!(
            e.contains("--sources needs an IGMPv3 or MLDv2 query") && e.contains(name),
            "{e}"
        );
        let e = error(&[version[0], version[1], "--qrv", "3"]);
        assert!(e.contains("--qrv needs an IGMPv3 or MLDv2 query"), "{e}");
        let e = error(&[version[0], version[1], "--s-flag", "on"]);
        assert!(e.contains("--s-flag needs"), "{e}");
    }
    let e = error(&["--igmp", "1", "--s-flag", "off"]);
    assert!(e.contains("igmpv1"), "{e}");
    let family = error(&[
        "--igmp",
        "3",
        "--group",
        "232.1.1.1",
        "--sources",
        "10.0.0.1,2001:db8::1",
    ]);
    assert!(family.contains("--igmp needs IPv4 sources"), "{family}");
    let family = error(&["--mld", "2", "--group", "ff3e::1", "--sources", "10.0.0.1"]);
    assert!(family.contains("--mld needs IPv6 sources"), "{family}");
    for bad in ["224.1.1.1", "0.0.0.0"] {
        let e = error(&["--igmp", "3", "--group", "232.1.1.1", "--sources", bad]);
        assert!(e.contains("not a unicast source"), "{e}");
    }
    let e = error(&[
        "--igmp",
        "3",
        "--group",
        "232.1.1.1",
        "--sources",
        "10.0.0.1,",
    ]);
    assert!(e.contains("--sources"), "{e}");
    let e = error(&["--igmp", "3", "--group", "232.1.1.1", "--sources", "nope"]);
    assert!(e.contains("invalid value 'nope'"), "{e}");
    let e = error(&["--igmp", "3", "--qrv", "8"]);
    assert!(e.contains("0..=7"), "{e}");
    let e = error(&["--mld", "2", "--s-flag", "maybe"]);
    assert!(e.contains("possible values: on, off, auto"), "{e}");
    let e = error(&["--inject", "--raw-hex", "45", "--sources", "10.0.0.1"]);
    assert!(e.contains("cannot be used with"), "{e}");
    let e = error(&["--inject", "--raw-hex", "45", "--qrv", "1"]);
    assert!(e.contains("cannot be used with"), "{e}");
}

#[test]
fn v3_fields_and_defaults() {
    // General query: QRV 2, QQIC from the 5 s default interval, S flag set (auto).
    let c = config(&["--dev", "t0", "--igmp", "3"]).unwrap();
    assert_eq!(
        v3(&c),
        V3Fields {
            suppress_router: true,
            qrv: 2,
            qqic: 5,
            sources: vec![]
        }
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // Group-(and-source-)specific: S flag clear (auto).
    let c = config(&[
        "--dev",
        "t0",
        "--mld",
        "2",
        "--group",
        "ff3e::8000:1",
        "--sources",
        "2001:db8::1,2001:db8::2",
        "--sources",
        "2001:db8::3",
    ])
    .unwrap();
    let fields = v3(&c);
    assert!(!fields.suppress_router);
    assert_eq!(
        fields.sources,
        ["2001:db8::1", "2001:db8::2", "2001:db8::3"].map(|s| s.parse::<IpAddr>().unwrap())
    );
    // Overrides.
    let c = config(&[
        "--dev",
        "t0",
        "--igmp",
        "3",
        "--group",
        "239.1.1.1",
        "--s-flag",
        "on",
        "--qrv",
        "7",
    ])
    .unwrap();
    assert_eq!((v3(&c).suppress_router, v3(&c).qrv), (true, 7));
    let c = config(&[
        "--dev", "t0", "--igmp", "3", "--s-flag", "off", "--qrv", "0",
    ])
    .unwrap();
    assert_eq!((v3(&c).suppress_router, v3(&c).qrv), (false, 0));
    // QQIC: whole seconds rounded up, at least 1; floating-point beyond 127 s.
    for (interval, qqic, warned) in [
        ("0.25", 1, false),
        ("0", 1, false),
        ("125", 125, false),
        ("125.5", 126, false),
        ("130", 0x80, true), // 128 s
        ("248", 0x8f, false),
        ("100000", 0xff, true), // 31744 s
    ] {
        let c = config(&["--dev", "t0", "--mld", "2", "--interval", interval]).unwrap();
        assert_eq!(v3(&c).qqic, qqic, "--interval {interval}");
        assert_eq!(c.warnings.len(), usize::from(warned), "{:?}", c.warnings);
    }
    // v1/v2 queries carry none of it.
    for version in [["--igmp", "1"], ["--igmp", "2"], ["--mld", "1"]] {
        let c = config(&["--dev", "t0", version[0], version[1]]).unwrap();
        assert!(spec(&c).v3.is_none());
    }
}

#[test]
fn v3_max_resp_codes() {
    for (ms, code, sent) in [
        (None, 100, 10_000),
        (Some("1000"), 10, 1000),
        (Some("50"), 1, 100),
        (Some("0"), 1, 100),
        (Some("12700"), 127, 12_700),
        (Some("20000"), 0x89, 20_000), // (9 | 16) << 3 = 200 tenths
        (Some("25000"), 0x8f, 24_800), // rounded down: 248 tenths
        (Some("4294967295"), 0xff, 3_174_400),
    ] {
        let mut args = vec!["--dev", "t0", "--igmp", "3"];
        args.extend(ms.map(|ms| ["--max-resp-ms", ms]).iter().flatten());
        let c = config(&args).unwrap();
        assert_eq!(max_resp(&c), MaxResp { code, ms: sent }, "{ms:?}");
        let warned = ms.is_some_and(|ms| ms.parse::<u32>().unwrap() != sent);
        assert_eq!(c.warnings.len(), usize::from(warned), "{:?}", c.warnings);
        assert_eq!(c.listen, Duration::from_millis(u64::from(sent) + 1000));
    }
    for (ms, code, sent) in [
        (None, 10_000, 10_000),
        (Some("0"), 0, 0),
        (Some("32767"), 0x7fff, 32_767),
        (Some("40000"), 0x8388, 40_000), // (0x388 | 0x1000) << 3
        (Some("70001"), 0x9117, 70_000), // rounded down, no MLDv1 limit
        (Some("4294967295"), 0xffff, 8_387_584),
    ] {
        let mut args = vec!["--dev", "t0", "--mld", "2"];
        args.extend(ms.map(|ms| ["--max-resp-ms", ms]).iter().flatten());
        let c = config(&args).unwrap();
        assert_eq!(max_resp(&c), MaxResp { code, ms: sent }, "{ms:?}");
    }
}

#[test]
fn raw_hex_needs_inject_and_no_query() {
    let c = config(&[
        "--dev",
        "t0",
        "--inject",
        "--raw-hex",
        "45 00:0a",
        "--count",
        "3",
    ])
    .unwrap();
    assert!(c.inject);
    assert!(matches!(&c.payload, Payload::Raw(bytes) if bytes == &[0x45, 0x00, 0x0a]));
    assert_eq!(c.count, 3);
    assert_eq!(c.listen, Duration::from_millis(LISTEN_SLACK_MS));
    let alone = config(&["--dev", "t0", "--raw-hex", "4500"]).unwrap_err();
    assert!(alone.contains("--inject"), "{alone}");
    let with_query = config(&["--dev", "t0", "--inject", "--igmp", "2", "--raw-hex", "45"]);
    assert!(with_query.unwrap_err().contains("cannot be used with"));
    let with_group = config(&[
        "--dev",
        "t0",
        "--inject",
        "--raw-hex",
        "45",
        "--group",
        "239.1.1.1",
    ]);
    assert!(with_group.unwrap_err().contains("cannot be used with"));
    for (bad, reason) in [("", "no bytes"), ("450", "odd"), ("4x", "'x' at offset 1")] {
        let error = config(&["--dev", "t0", "--inject", "--raw-hex", bad]).unwrap_err();
        assert!(error.contains(reason), "{bad:?}: {error}");
    }
    // --inject alone still sends queries.
    let c = config(&["--dev", "t0", "--inject", "--mld", "1"]).unwrap();
    assert!(c.inject && matches!(c.payload, Payload::Query(_)));
}

#[test]
fn defaults_and_max_resp_codes() {
    let c = config(&["--dev", "t0", "--igmp", "2"]).unwrap();
    assert_eq!(
        max_resp(&c),
        MaxResp {
            code: 100,
            ms: 10_000
        }
    );
    assert_eq!(c.listen, Duration::from_millis(11_000));
    assert_eq!(c.interval, Duration::from_secs(5));
    assert_eq!(c.count, 1);
    let c = config(&["--dev", "t0", "--igmp", "2", "--max-resp-ms", "50"]).unwrap();
    assert_eq!(max_resp(&c), MaxResp { code: 1, ms: 100 });
    assert_eq!(c.warnings.len(), 1);
    let c = config(&["--dev", "t0", "--igmp", "2", "--max-resp-ms", "99999"]).unwrap();
    assert_eq!(
        max_resp(&c),
        MaxResp {
            code: 255,
            ms: 25_500
        }
    );
    let c = config(&["--dev", "t0", "--igmp", "1", "--max-resp-ms", "1000"]).unwrap();
    assert_eq!(
        max_resp(&c),
        MaxResp {
            code: 0,
            ms: 10_000
        }
    );
    let c = config(&["--dev", "t0", "--mld", "1", "--max-resp-ms", "1500"]).unwrap();
    assert_eq!(
        max_resp(&c),
        MaxResp {
            code: 1500,
            ms: 1500
        }
    );
    assert_eq!(c.listen, Duration::from_millis(2500));
    let c = config(&["--dev", "t0", "--mld", "1", "--interval", "0.25"]).unwrap();
    assert_eq!(c.interval, Duration::from_millis(250));
    assert!(config(&[
        "--dev",
        "t0",
        "--mld",
        "1",
        "--interval",
        "0",
        "--count",
        "0"
    ])
    .is_err());
}
