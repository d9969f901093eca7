//! `Host::admits_source`: the interface state's answer for one (group, source), as a data path
//! asks it per datagram.

mod common;

use common::{ip, t, IF};
use membership::{Config, Host, InterfaceConfig, SourceFilter};

fn host() -> Host {
    let mut host = Host::new(Config::default(), 5);
    host.add_interface(
        IF,
        InterfaceConfig {
            ipv4: Some("10.99.0.2".parse().unwrap()),
            ipv6_link_local: Some("fe80::2".parse().unwrap()),
            ..InterfaceConfig::default()
        },
    )
    .unwrap();
    host
}

#[test]
fn include_exclude_and_no_record_answer_as_the_filter_says() {
    let mut host = host();
    let (s1, s2) = (ip("10.1.1.1"), ip("10.1.1.2"));
    let group = ip("232.1.1.1");
    assert_eq!(host.admits_source(IF, group, s1), None, "not joined");
    host.join_filter(IF, group, SourceFilter::include(vec![s1]), t(0))
        .unwrap();
    assert_eq!(host.admits_source(IF, group, s1), Some(true));
    assert_eq!(host.admits_source(IF, group, s2), Some(false));
    assert_eq!(host.admits_source(IF, group, ip("fe80::9")), Some(false));
    // A second request, EXCLUDE {S1}: the merge is EXCLUDE {} (RFC 9776 §3.2).
    host.join_filter(IF, group, SourceFilter::exclude(vec![s1]), t(0))
        .unwrap();
    assert_eq!(host.admits_source(IF, group, s2), Some(true));
    let v6 = ip("ff3e::1");
    host.join_filter(IF, v6, SourceFilter::exclude(vec![ip("2001:db8::1")]), t(0))
        .unwrap();
    assert_eq!(host.admits_source(IF, v6, ip("2001:db8::1")), Some(false));
    assert_eq!(host.admits_source(IF, v6, ip("2001:db8::2")), Some(true));
    assert_eq!(host.admits_source(IF + 1, v6, ip("2001:db8::2")), None);
    // Left: the record stays while its state change goes out, without reception state.
    host.leave(IF, v6, t(1)).unwrap();
    assert_eq!(host.admits_source(IF, v6, ip("2001:db8::2")), None);
}
