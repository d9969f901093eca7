//! The hosts a group-specific query reaches: every host of the link holding the group, however
//! the daemon came to keep the members of each group. A daemon keeps them once something
//! counts each group's datagrams per host (delays, checked streams) or a test runs, and then
//! hands a query about one group to its members alone; when that starts at run time, the
//! hosts that joined before are members too.

use std::net::IpAddr;

use tests::*;

const BR: &str = "br0";
const TAP: &str = "tap1";
const GROUP: &str = "239.3.3.3";
const HOST_A: &str = "10.99.0.10";
const HOST_B: &str = "10.99.0.11";

/// Host A joins a group; a stream is added (the daemon starts checking streams, and keeping
/// each group's members); host B joins the group too, and leaves it. The snooping bridge asks
/// about the group (its last-member queries): host A answers, and the bridge keeps forwarding
/// the group to the port.
#[test]
fn a_group_specific_query_reaches_the_members_that_joined_before_streams_were_checked() {
    let Some(ns) = Netns::new("members_backfill") else {
        return;
    };
    // General queries a minute apart: only the group-specific ones can keep the group.
    let config = SnoopingBridge {
        query_interval_cs: 6000,
        ..SnoopingBridge::default()
    };
    ns.snooping_bridge(BR, TAP, KERNEL_V4_CIDR, &config);
    let daemon = ns.spawn_configured(&format!(
        "log_level = \"info\"\nsolicited_node = \"off\"\n\
         [[link]]\ndevice = \"{TAP}\"\nkind = \"tap\"\nsuppression = false\n\
         [[link.hosts]]\ncount = 2\nipv4 = \"{HOST_A}/24\"\n"
    ));
    let group: IpAddr = ip(GROUP);
    // The bridge's two start-up queries, 1 s apart, heard by both hosts: none comes after.
    must_wait("the start-up queries", secs(10), || {
        daemon.counter("igmp_rcv_v3_queries") >= 4
    });
    std::thread::sleep(ms(1500));
    daemon.ctl_ok(&["join", GROUP, "--host", HOST_A]);
    must_wait("the bridge learns the group", secs(10), || {
        ns.mdb(BR, TAP).group(group).is_some()
    });
    daemon.ctl_ok(&[
        "stream",
        "add",
        "--link",
        TAP,
        "--source",
        "10.99.0.200",
        "--group",
        "239.3.3.99",
        "--pps",
        "10",
    ]);
    daemon.ctl_ok(&["join", GROUP, "--host", HOST_B]);
    std::thread::sleep(ms(500));
    let mut capture = ns.capture(TAP);
    daemon.ctl_ok(&["leave", GROUP, "--host", HOST_B]);
    // Two queries 0.5 s apart, then the group's port entry lapses without an answer.
    std::thread::sleep(secs(3));
    let packets = capture.stop_full();
    let asked = packets
        .iter()
        .find(|p| p.is_query() && p.about(group))
        .unwrap_or_else(|| panic!("the bridge asked about {GROUP}: {packets:#?}"))
        .time;
    assert!(
        packets.iter().all(|p| !p.is_query() || p.about(group)),
        "no general query: {packets:#?}"
    );
    let a: IpAddr = ip(HOST_A);
    let answered = packets
        .iter()
        .filter(|p| p.src == a && p.is_report() && p.time > asked)
        .any(|p| {
            p.records()
                .iter()
                .any(|r| r.group == group && r.kind == "is_ex")
        });
    assert!(answered, "{HOST_A} answered: {packets:#?}");
    assert!(
        ns.mdb(BR, TAP).group(group).is_some(),
        "the bridge still forwards {GROUP} to the port"
    );
}
