//! `Host::poll_event`: what happened, without diffing counters; and the queue's bound.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use common::{host_on, ip, t, ALL_HOSTS, ALL_NODES, IF, ROUTER4, ROUTER6};

use membership::wire::igmp::IgmpRepr;
use membership::wire::ip::{build_ipv4, build_ipv6};
use membership::wire::mld::MldRepr;
use membership::{
    Config, Event, FilterMode, Host, IgmpVersion, MldVersion, ProtocolVersion, SourceFilter,
};

fn host_with(config: Config) -> Host {
    host_on(config, 3)
}

fn events(host: &mut Host) -> Vec<Event> {
    std::iter::from_fn(|| host.poll_event()).collect()
}

fn igmp(repr: IgmpRepr) -> Vec<u8> {
    build_ipv4(ROUTER4, ALL_HOSTS, &repr.to_bytes())
}

#[test]
fn joins_leaves_and_filter_changes() {
    let mut host = host_with(Config::default());
    let g = ip("232.1.1.1");
    host.join(IF, g, t(0)).unwrap();
    host.join(IF, g, t(0)).unwrap(); // a second user changes no state
    let src = SourceFilter::exclude(vec![ip("10.0.0.9")]);
    host.join_filter(IF, ip("239.2.2.2"), src, t(0)).unwrap();
    host.leave(IF, g, t(1)).unwrap();
    host.leave(IF, g, t(1)).unwrap();
    assert_eq!(
        events(&mut host),
        vec![
            Event::Joined {
                iface: IF,
                group: g
            },
            Event::Joined {
                iface: IF,
                group: ip("239.2.2.2")
            },
            Event::Left {
                iface: IF,
                group: g
            },
        ]
    );
    host.join_filter(
        IF,
        ip("239.2.2.2"),
        SourceFilter::include(vec![ip("10.0.0.9")]),
        t(2),
    )
    .unwrap();
    assert_eq!(
        events(&mut host),
        vec![Event::FilterChanged {
            iface: IF,
            group: ip("239.2.2.2"),
            filter: SourceFilter {
                mode: FilterMode::Exclude,
                sources: vec![]
            },
        }]
    );
}

#[test]
fn queries_and_compatibility_mode_changes() {
    let mut host = host_with(Config::default());
    host.join(IF, ip("239.1.1.1"), t(0)).unwrap();
    events(&mut host);
    let v2_query = IgmpRepr::Query {
        max_resp_code: 100,
        group: Ipv4Addr::UNSPECIFIED,
    };
    host.handle_packet(IF, &igmp(v2_query), t(1000)).unwrap();
    assert_eq!(
        events(&mut host),
        vec![
            Event::QueryHeard {
                iface: IF,
                version: ProtocolVersion::Igmp(IgmpVersion::V2),
                group: None,
                max_resp: Duration::from_secs(10),
            },
            Event::CompatibilityModeChanged {
                iface: IF,
                from: ProtocolVersion::Igmp(IgmpVersion::V3),
                to: ProtocolVersion::Igmp(IgmpVersion::V2),
            },
        ]
    );
    // The Older Version Querier Present timer runs out: back to IGMPv3.
    let back = host.interfaces(t(1000))[0].igmp_v2_querier_ms.unwrap();
    host.handle_timeout(t(1000 + back));
    while host.poll_transmit().is_some() {}
    assert!(
        events(&mut host).contains(&Event::CompatibilityModeChanged {
            iface: IF,
            from: ProtocolVersion::Igmp(IgmpVersion::V2),
            to: ProtocolVersion::Igmp(IgmpVersion::V3),
        })
    );

    // MLDv2 group-specific query; MLDv1 general query.
    let q = MldRepr::QueryV2 {
        max_resp_code: 2000,
        group: "ff12::1".parse().unwrap(),
        suppress_router: false,
        qrv: 2,
        qqic: 125,
        sources: vec![],
    };
    let dst: Ipv6Addr = "ff12::1".parse().unwrap();
    let packet = build_ipv6(ROUTER6, dst, &q.to_bytes(&ROUTER6, &dst));
    host.handle_packet(IF, &packet, t(2000)).unwrap();
    let q = MldRepr::Query {
        max_resp_delay: 1000,
        group: Ipv6Addr::UNSPECIFIED,
    };
    let packet = build_ipv6(ROUTER6, ALL_NODES, &q.to_bytes(&ROUTER6, &ALL_NODES));
    host.handle_packet(IF, &packet, t(2000)).unwrap();
    assert_eq!(
        events(&mut host),
        vec![
            Event::QueryHeard {
                iface: IF,
                version: ProtocolVersion::Mld(MldVersion::V2),
                group: Some(ip("ff12::1")),
                max_resp: Duration::from_secs(2),
            },
            Event::QueryHeard {
                iface: IF,
                version: ProtocolVersion::Mld(MldVersion::V1),
                group: None,
                max_resp: Duration::from_secs(1),
            },
            Event::CompatibilityModeChanged {
                iface: IF,
                from: ProtocolVersion::Mld(MldVersion::V2),
                to: ProtocolVersion::Mld(MldVersion::V1),
            },
        ]
    );
}

#[test]
fn a_rejected_query_is_no_event() {
    let mut host = host_with(Config::default());
    let bad = IgmpRepr::Query {
        max_resp_code: 100,
        group: Ipv4Addr::new(10, 0, 0, 1),
    };
    assert!(host.handle_packet(IF, &igmp(bad), t(0)).is_err());
    assert_eq!(host.poll_event(), None);
}

#[test]
fn the_queue_is_bounded_and_counts_what_it_drops() {
    let mut host = host_with(Config::default().with_event_capacity(2));
    for i in 1..=5 {
        host.join(IF, IpAddr::V4(Ipv4Addr::new(239, 0, 0, i)), t(0))
            .unwrap();
    }
    assert_eq!(events(&mut host).len(), 2);
    assert_eq!(host.stats().events_dropped, 3);

    let mut quiet = host_with(Config::default().with_event_capacity(0));
    quiet.join(IF, ip("239.0.0.1"), t(0)).unwrap();
    assert_eq!(quiet.poll_event(), None);
    assert_eq!(quiet.stats().events_dropped, 1);
}
