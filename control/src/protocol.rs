//! The tunmcastd control protocol, defined once: the daemon and every client use these types.
//!
//! A Unix stream socket; one JSON object per line each way. Requests carry `"cmd"`; every reply
//! carries `"ok"`: `{"ok":true, ...}` with the fields of its kind below, or
//! `{"ok":false,"error":"..."}`. Requests on one connection may be pipelined: the replies come
//! back in the order of the requests.
//!
//! | request | reply (besides `"ok"`) |
//! |---|---|
//! | `{"cmd":"join","group":G}` (+ `"count":N`, or `"groups":[...]` instead of `group`; `"iface"`; `"include":[S..]` or `"exclude":[S..]`) | [`ChangeReply`] |
//! | `{"cmd":"leave", ...}` (the same fields) | [`ChangeReply`] |
//! | `{"cmd":"filter","group":G,"owner":NAME,"include":[S..]}` (or `"exclude"`; + `"iface"`, `"host"`, `"hosts"`) | [`ChangeReply`] |
//! | `{"cmd":"listen","group":G}` (+ `"port"`, `"iface"`, a filter) | [`ListenReply`], then a listener socket (see `listen`) |
//! | `{"cmd":"show"}` (+ `"group":G`, `"iface":NAME`, `"limit":N`) | [`ShowHeader`] fields, then `"groups":[`[`GroupInfo`]`...]` and `"total_groups"`, streamed |
//! | `{"cmd":"stats"}` | [`StatsReply`] |
//! | `{"cmd":"ping"}` | [`PingReply`] |
//! | `{"cmd":"stream_add","link":L,"source":S,"group":G}` (+ `"groups"`, `"pps"`, `"size"`, ...) | [`StreamIdsReply`] |
//! | `{"cmd":"stream_remove","ids":[..]}` (or `"all":true`; also `stream_start`, `stream_stop`) | [`StreamIdsReply`] |
//! | `{"cmd":"streams"}` (+ `"host"`, `"group"`, `"iface"`, `"limit"`) | [`StreamsReply`] |
//! | `{"cmd":"test_start","test":{"kind":"zapping",...}}` (or `"name":N` of a configured one) | [`crate::testrun::TestStartReply`] |
//! | `{"cmd":"test_status"}` (+ `"name"`, `"host_offset"`, `"host_limit"`, `"brief":true`) | [`crate::testrun::TestStatusReply`] |
//! | `{"cmd":"test_report","format":"json"\|"junit"\|"html"}` (+ `"name"`) | [`crate::testrun::TestReportReply`] |
//! | `{"cmd":"test_stop"}` (+ `"name"`) | [`crate::testrun::TestStartReply`] |

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub use crate::streams::{
    ReceiverCounts, ReceiverInfo, StreamIdsArgs, StreamIdsReply, StreamInfo, StreamSpecArgs,
    StreamsArgs, StreamsReply,
};

/// The most groups one join or leave request may change.
pub const MAX_BATCH: u32 = 1 << 20;

/// A join or a leave: one group, COUNT consecutive groups from it, or a list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// The group, or the first of `count` consecutive groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<IpAddr>,
    /// How many consecutive groups from `group` (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Instead of `group`: these groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<IpAddr>>,
    /// The daemon's interface; `None`: its only one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iface: Option<String>,
    /// The emulated host to act on, by its IPv4 or IPv6 link-local address; default: the
    /// first host of the link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<IpAddr>,
    /// A range of emulated hosts, by IPv4 address, both ends included: `["10.99.1.10",
    /// "10.99.1.109"]`. Every address in it must be a host of the daemon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<HostRange>,
    /// Source filter: INCLUDE these sources only (for a leave: drop them)...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<IpAddr>>,
    /// ...or every source but these (for a leave: the EXCLUDE join with exactly these).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<Vec<IpAddr>>,
    /// The join's owner (like a socket): a join or leave with an owner acts on that owner's
    /// request only. A join adds the owner's request, or INCLUDE sources to its INCLUDE one
    /// (RFC 3678 MCAST_JOIN_SOURCE_GROUP); a leave drops it, or INCLUDE sources from it.
    /// Without one, each join is an anonymous request of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// `filter`: replaces one owner's source filter for a group in one step (RFC 3678
/// `setsourcefilter`): one interface state change, one State Change Report. INCLUDE with no
/// sources drops the owner's request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterArgs {
    pub group: IpAddr,
    pub owner: String,
    /// The new filter: INCLUDE these sources...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<IpAddr>>,
    /// ...or EXCLUDE these. Exactly one of the two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<Vec<IpAddr>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iface: Option<String>,
    /// The emulated host to act on, by its IPv4 or IPv6 link-local address; default: the
    /// first host of the link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<IpAddr>,
    /// A range of emulated hosts, by IPv4 address, both ends included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<HostRange>,
}

impl Change {
    /// A change of one group.
    pub fn one(group: IpAddr) -> Change {
        Change {
            group: Some(group),
            ..Change::default()
        }
    }

    /// The groups it names, in order; the error says what is wrong with the request.
    pub fn groups(&self) -> Result<Vec<IpAddr>, String> {
        match (&self.group, &self.groups, self.count) {
            (Some(_), Some(_), _) => Err("give \"group\" or \"groups\", not both".into()),
            (None, None, _) => Err("missing \"group\"".into()),
            (None, Some(_), Some(_)) => Err("\"count\" goes with \"group\", not \"groups\"".into()),
            (None, Some(list), None) => {
                if list.is_empty() {
                    return Err("\"groups\" is empty".into());
                }
                if list.len() > MAX_BATCH as usize {
                    return Err(format!("more than {MAX_BATCH} groups in one request"));
                }
                Ok(list.clone())
            }
            (Some(first), None, count) => {
                let count = count.unwrap_or(1);
                if count == 0 || count > MAX_BATCH {
                    return Err(format!("\"count\" must be 1 to {MAX_BATCH}"));
                }
                (0..count)
                    .map(|n| {
                        nth_address(*first, n).ok_or_else(|| {
                            format!("{first}+{count} runs past the end of the address space")
                        })
                    })
                    .collect()
            }
        }
    }
}

/// The address `n` places after `first`, if there is one.
pub fn nth_address(first: IpAddr, n: u32) -> Option<IpAddr> {
    match first {
        IpAddr::V4(a) => u32::from(a).checked_add(n).map(|a| IpAddr::V4(a.into())),
        IpAddr::V6(a) => u128::from(a)
            .checked_add(u128::from(n))
            .map(|a| IpAddr::V6(a.into())),
    }
}

/// What `show` lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShowArgs {
    /// Only this group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<IpAddr>,
    /// Only this interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iface: Option<String>,
    /// The emulated host to act on, by its IPv4 or IPv6 link-local address; default: the
    /// first host of the link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<IpAddr>,
    /// A range of emulated hosts, by IPv4 address, both ends included: `["10.99.1.10",
    /// "10.99.1.109"]`. Every address in it must be a host of the daemon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<HostRange>,
    /// At most this many groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// A `listen` request: a join held by a listener socket (see `listen`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenArgs {
    pub group: IpAddr,
    /// Only datagrams to this UDP destination port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iface: Option<String>,
    /// The emulated host to act on, by its IPv4 or IPv6 link-local address; default: the
    /// first host of the link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<IpAddr>,
    /// A range of emulated hosts, by IPv4 address, both ends included: `["10.99.1.10",
    /// "10.99.1.109"]`. Every address in it must be a host of the daemon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<HostRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<IpAddr>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<Vec<IpAddr>>,
}

/// One control request, a JSON line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    Join(Change),
    Leave(Change),
    Filter(FilterArgs),
    Listen(ListenArgs),
    Show(ShowArgs),
    Stats(StatsArgs),
    Delays(DelaysArgs),
    Ping,
    /// Test streams (`crate::streams`).
    StreamAdd(StreamSpecArgs),
    StreamRemove(StreamIdsArgs),
    StreamStart(StreamIdsArgs),
    StreamStop(StreamIdsArgs),
    Streams(StreamsArgs),
    /// Test runs (`crate::testrun`): start one, its progress and results, its report, stop it.
    TestStart(crate::testrun::TestStartArgs),
    TestStatus(crate::testrun::TestSelect),
    TestReport(crate::testrun::TestSelect),
    TestStop(crate::testrun::TestSelect),
}

/// Reply to `join` and `leave`.
/// An inclusive range of hosts by IPv4 address.
pub type HostRange = [std::net::Ipv4Addr; 2];

/// Parses `FIRST-LAST` (or one address) into a [`HostRange`].
pub fn parse_host_range(s: &str) -> Result<HostRange, String> {
    let (first, last) = s.split_once('-').unwrap_or((s, s));
    let parse = |a: &str| {
        a.trim()
            .parse::<std::net::Ipv4Addr>()
            .map_err(|_| format!("{a:?} is not an IPv4 address (hosts are FIRST-LAST)"))
    };
    let (first, last) = (parse(first)?, parse(last)?);
    if first > last {
        return Err(format!("{first}-{last}: the range is empty"));
    }
    Ok([first, last])
}

/// `stats`: every counter, or those of one link or one host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsArgs {
    /// Only this link's device counters and its hosts' totals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iface: Option<String>,
    /// Only this host's counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<IpAddr>,
}

/// `delays`: RFC 3918 join and leave delays measured at the device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelaysArgs {
    /// Forget every measurement (after the reply is built).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reset: bool,
    /// List at most this many (host, group) pairs in each list (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// One summary of delays, in nanoseconds (nearest-rank percentiles); all 0 when `count` is 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelaySummary {
    pub count: usize,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

/// The delays of one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupDelays {
    pub group: IpAddr,
    pub join: DelaySummary,
    pub leave: DelaySummary,
}

/// A (host, group) pair in a delay list; `host` is the host's IPv4 address (the daemon's
/// delay tracker, which numbers its hosts, makes a `HostGroup<u32>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostGroup<H = String> {
    pub host: H,
    pub group: IpAddr,
}

/// The reply to `delays`: what `tunmcastctl delays [--json]` shows. The daemon's delay
/// tracker makes it with its own host numbers (`DelaysReply<u32>`), which the daemon names
/// ([`DelaysReply::map_hosts`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelaysReply<H = String> {
    /// Datagrams later than a leave plus this count the group as still forwarded.
    pub leave_grace_ns: u64,
    /// Over every (host, group) whose first datagram came.
    pub join: DelaySummary,
    /// Over every (host, group) left; 0 when no datagram came after the leave.
    pub leave: DelaySummary,
    /// Per group, by group address.
    pub groups: Vec<GroupDelays>,
    /// Joined, and no datagram yet; by host then group, at most the list limit.
    pub never_forwarded: Vec<HostGroup<H>>,
    pub never_forwarded_total: usize,
    /// A datagram came later than the leave plus the grace.
    pub forwarded_after_leave: Vec<HostGroup<H>>,
    pub forwarded_after_leave_total: usize,
    /// Joins not measured because the table was full.
    pub untracked: u64,
}

impl<H> DelaysReply<H> {
    /// The same report, each host named by `name`.
    pub fn map_hosts<K>(self, mut name: impl FnMut(H) -> K) -> DelaysReply<K> {
        let mut names = |list: Vec<HostGroup<H>>| -> Vec<HostGroup<K>> {
            list.into_iter()
                .map(|hg| HostGroup {
                    host: name(hg.host),
                    group: hg.group,
                })
                .collect()
        };
        DelaysReply {
            leave_grace_ns: self.leave_grace_ns,
            join: self.join,
            leave: self.leave,
            groups: self.groups,
            never_forwarded: names(self.never_forwarded),
            never_forwarded_total: self.never_forwarded_total,
            forwarded_after_leave: names(self.forwarded_after_leave),
            forwarded_after_leave_total: self.forwarded_after_leave_total,
            untracked: self.untracked,
        }
    }
}

/// One link's device and counters, in `show`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkInfo {
    pub iface: String,
    pub device: String,
    pub ifindex: u32,
    pub suppression: bool,
    pub hosts: u64,
    pub stats: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeReply {
    pub iface: String,
    /// The (first) group changed.
    pub group: IpAddr,
    /// Groups changed by the request.
    #[serde(default = "one")]
    pub count: u32,
    /// Requests (joins) the group holds now; of the last group for a batch.
    pub users: u32,
    /// Set when the change is in force but could not be saved to the state file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// How many hosts the request changed (more than one with `hosts`).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub hosts: u32,
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

fn one() -> u32 {
    1
}

/// Reply to `listen`, sent with the listener socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenReply {
    /// The listener's number, as `show` lists it.
    pub id: u64,
    pub iface: String,
    pub group: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Requests (joins) the group holds now, this one included.
    pub users: u32,
}

/// Reply to `ping`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingReply {
    /// The daemon's version.
    pub version: String,
}

/// Reply to `stats`: every counter by name, and what each counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsReply {
    pub stats: BTreeMap<String, u64>,
    /// One line per counter, for `--prometheus` HELP lines.
    #[serde(default)]
    pub help: BTreeMap<String, String>,
    /// With test streams: their counters per link (link -> counter -> value), which
    /// `--prometheus` writes with a `link` label. Absent without streams.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub per_link: BTreeMap<String, BTreeMap<String, u64>>,
    /// With `tunmcastd --stream-metrics N`: the counters of the first N streams. Absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_stream: Vec<crate::streams::StreamCounters>,
}

/// One interface, as `show` lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceInfo {
    pub iface: String,
    pub ifindex: u32,
    /// "tun" or "tap".
    pub device: String,
    /// TAP: the host's MAC address.
    #[serde(default)]
    pub mac: Option<String>,
    pub ipv4: String,
    pub ipv4_prefix_len: u8,
    pub ipv6_ll: String,
    /// IGMP version spoken now, and the highest the daemon may speak.
    pub igmp_version: u8,
    pub igmp_max_version: u8,
    /// Time left on the IGMPv1 Router Present / IGMPv2 Querier Present timers (ms).
    #[serde(default)]
    pub igmp_v1_router_present_ms: Option<u64>,
    #[serde(default)]
    pub igmp_v2_querier_present_ms: Option<u64>,
    /// An IGMPv3 General Query response is due in this many ms.
    #[serde(default)]
    pub igmp_general_response_ms: Option<u64>,
    pub mld_version: u8,
    pub mld_max_version: u8,
    #[serde(default)]
    pub mld_v1_querier_present_ms: Option<u64>,
    #[serde(default)]
    pub mld_general_response_ms: Option<u64>,
    pub igmp_groups: u64,
    pub mld_groups: u64,
}

/// One join's filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterInfo {
    /// "include" or "exclude"; `exclude` with no sources is a join from any source.
    pub mode: String,
    pub sources: Vec<IpAddr>,
    /// The owner that set it (`join --owner`, `filter`); absent for an anonymous join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// One group on one interface, as `show` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    pub iface: String,
    pub group: IpAddr,
    /// "ipv4" or "ipv6".
    pub family: String,
    /// Requests (joins) held.
    pub users: u32,
    /// idle, delaying, reporting, leaving (v3); lazy, sleeping, ... (v1/v2: the seeds' names).
    pub state: String,
    /// Time left until the pending report (ms).
    #[serde(default)]
    pub timer_ms: Option<u64>,
    /// v1/v2: whether this host sent the last report (and so sends the Leave / Done).
    pub last_reporter: bool,
    /// v1/v2: unsolicited repeats still to come.
    pub unsolicited_left: u8,
    /// v3: a state-change retransmission is due in this many ms.
    #[serde(default)]
    pub retransmit_ms: Option<u64>,
    /// The interface-level filter: every request merged (RFC 9776 §3.2).
    pub filter_mode: String,
    pub sources: Vec<IpAddr>,
    /// Every request held, each with its own filter.
    pub requests: Vec<FilterInfo>,
}

/// A `listen` client as `show` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerInfo {
    pub id: u64,
    pub iface: String,
    pub group: IpAddr,
    #[serde(default)]
    pub port: Option<u16>,
    pub filter_mode: String,
    #[serde(default)]
    pub sources: Vec<IpAddr>,
    /// Datagrams queued to the client.
    pub delivered: u64,
    /// Datagrams lost because the client's queue was full.
    pub dropped: u64,
}

/// The part of the `show` reply before its groups. On the wire the reply is
/// `{"ok":true,"interfaces":[...],"listeners":[...],"groups":[...],"total_groups":N}`, and the
/// groups are written as they are read from the daemon's table, a slice at a time, so that a
/// view of a million groups never sits whole in memory on either side.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowHeader {
    pub interfaces: Vec<InterfaceInfo>,
    pub listeners: Vec<ListenerInfo>,
    /// Every link (several with a `[[link]]` configuration file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LinkInfo>,
    /// Why the last SIGHUP's configuration file was refused (the running one is kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Request, String> {
        serde_json::from_str(line).map_err(|e| e.to_string())
    }

    #[test]
    fn requests_round_trip_as_one_json_object_each() {
        let cases = [
            (
                Request::Join(Change::one("239.1.2.3".parse().unwrap())),
                r#"{"cmd":"join","group":"239.1.2.3"}"#,
            ),
            (
                Request::Leave(Change {
                    iface: Some("tun0".into()),
                    ..Change::one("ff12::1234".parse().unwrap())
                }),
                r#"{"cmd":"leave","group":"ff12::1234","iface":"tun0"}"#,
            ),
            (
                Request::Join(Change {
                    include: Some(vec!["10.0.0.1".parse().unwrap()]),
                    count: Some(100),
                    ..Change::one("232.1.1.1".parse().unwrap())
                }),
                r#"{"cmd":"join","group":"232.1.1.1","count":100,"include":["10.0.0.1"]}"#,
            ),
            (Request::Show(ShowArgs::default()), r#"{"cmd":"show"}"#),
            (
                Request::Show(ShowArgs {
                    limit: Some(5),
                    ..ShowArgs::default()
                }),
                r#"{"cmd":"show","limit":5}"#,
            ),
            (Request::Stats(StatsArgs::default()), r#"{"cmd":"stats"}"#),
            (
                Request::Join(Change {
                    hosts: Some(["10.99.1.10".parse().unwrap(), "10.99.1.12".parse().unwrap()]),
                    ..Change::one("239.1.1.1".parse().unwrap())
                }),
                r#"{"cmd":"join","group":"239.1.1.1","hosts":["10.99.1.10","10.99.1.12"]}"#,
            ),
            (
                Request::Delays(DelaysArgs::default()),
                r#"{"cmd":"delays"}"#,
            ),
            (
                Request::Leave(Change {
                    owner: Some("app1".into()),
                    ..Change::one("232.1.1.1".parse().unwrap())
                }),
                r#"{"cmd":"leave","group":"232.1.1.1","owner":"app1"}"#,
            ),
            (
                Request::Filter(FilterArgs {
                    group: "232.1.1.1".parse().unwrap(),
                    owner: "app1".into(),
                    include: Some(vec!["10.0.0.2".parse().unwrap()]),
                    exclude: None,
                    iface: None,
                    host: None,
                    hosts: None,
                }),
                r#"{"cmd":"filter","group":"232.1.1.1","owner":"app1","include":["10.0.0.2"]}"#,
            ),
        ];
        for (request, line) in cases {
            assert_eq!(serde_json::to_string(&request).unwrap(), line);
            assert_eq!(parse(line), Ok(request));
        }
    }

    #[test]
    fn bad_requests_are_refused() {
        for bad in [
            r#"{}"#,
            r#"[1,2]"#,
            r#"{"cmd":"explode"}"#,
            r#"{"cmd":"join","group":"239.1.1.1","extra":1}"#,
            r#"{"cmd":"join","group":"not-an-address"}"#,
            r#"{"cmd":"join","group":"239.1.1.1","count":-1}"#,
            r#"{"cmd":"show","limit":"x"}"#,
            r#"{"cmd":"listen"}"#,
            r#"{"cmd":"filter","group":"232.1.1.1","include":[]}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn changes_name_their_groups() {
        let first: IpAddr = "239.0.0.254".parse().unwrap();
        let change = Change {
            count: Some(3),
            ..Change::one(first)
        };
        assert_eq!(
            change.groups().unwrap(),
            ["239.0.0.254", "239.0.0.255", "239.0.1.0"].map(|g| g.parse::<IpAddr>().unwrap())
        );
        let end = Change {
            count: Some(2),
            ..Change::one("255.255.255.255".parse().unwrap())
        };
        assert!(end.groups().unwrap_err().contains("past the end"));
        assert!(Change::default().groups().is_err());
        let zero = Change {
            count: Some(0),
            ..Change::one(first)
        };
        assert!(zero.groups().is_err());
        let both = Change {
            groups: Some(vec![first]),
            ..Change::one(first)
        };
        assert!(both.groups().is_err());
        let list = Change {
            groups: Some(vec![first, "ff12::1".parse().unwrap()]),
            ..Change::default()
        };
        assert_eq!(list.groups().unwrap().len(), 2);
    }
}
