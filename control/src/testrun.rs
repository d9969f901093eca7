//! Test runs: what a test is ([`TestSpec`], as `tunmcastctl test ...` or a `[[test]]` table
//! of the daemon's configuration file gives it) and what it measured ([`TestReport`], the
//! versioned JSON report, schema [`REPORT_SCHEMA`]).
//!
//! Two kinds: IPTV channel zapping (BNG Blaster's zapping test, IGMP or MLD) and the RFC 3918
//! §6.1/§6.2 group join/leave delay procedure. Every delay is measured at the device: from
//! the report or leave written to the datagrams read, in nanoseconds.

use std::net::IpAddr;

use serde::{Deserialize, Deserializer, Serialize};

use crate::protocol::HostRange;
use crate::test_capacity::{CapacityResult, CapacitySpec};
use crate::test_traffic::{TestTraffic, TrafficResult};

/// The version of [`TestReport`]'s keys: raised when one changes meaning or goes away.
pub const REPORT_SCHEMA: u32 = 1;

/// BNG Blaster's join delay violation buckets (ms).
pub const DEFAULT_THRESHOLDS_MS: [u64; 5] = [125, 250, 500, 1000, 2000];

/// One test: a `[[test]]` table or the body of `test_start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum TestSpec {
    /// Each host zaps through the channel list.
    #[serde(rename = "zapping")]
    Zapping(ZappingSpec),
    /// RFC 3918 §6.1/§6.2: check, join, measure, leave, measure, check; iterations.
    #[serde(rename = "rfc3918-join-leave")]
    JoinLeave(JoinLeaveSpec),
    /// RFC 3918 §7.1: join groups in steps while a stream runs on each; the largest count
    /// forwarded correctly.
    #[serde(rename = "rfc3918-capacity")]
    Capacity(CapacitySpec),
}

impl ZappingSpec {
    /// The source channel `i` is joined from (SSM), if any.
    pub fn source_of(&self, i: usize) -> Option<IpAddr> {
        match self.sources[..] {
            [] => None,
            [one] => Some(one),
            ref each => each.get(i).copied(),
        }
    }
}

impl TestSpec {
    pub fn name(&self) -> &str {
        match self {
            TestSpec::Zapping(z) => &z.name,
            TestSpec::JoinLeave(j) => &j.name,
            TestSpec::Capacity(c) => &c.name,
        }
    }

    /// `zapping`, `rfc3918-join-leave` or `rfc3918-capacity`.
    pub fn kind(&self) -> &'static str {
        match self {
            TestSpec::Zapping(_) => "zapping",
            TestSpec::JoinLeave(_) => "rfc3918-join-leave",
            TestSpec::Capacity(_) => "rfc3918-capacity",
        }
    }

    pub fn sla(&self) -> &Sla {
        match self {
            TestSpec::Zapping(z) => &z.sla,
            TestSpec::JoinLeave(j) => &j.sla,
            TestSpec::Capacity(c) => &c.sla,
        }
    }

    /// The streams the run starts itself, if any.
    pub fn traffic(&self) -> Option<&TestTraffic> {
        match self {
            TestSpec::Zapping(z) => z.streams.as_deref(),
            TestSpec::JoinLeave(j) => j.streams.as_deref(),
            TestSpec::Capacity(c) => c.streams.as_deref(),
        }
    }

    /// Its channels (zapping) or groups (RFC 3918; every group a capacity run may join).
    pub fn channels(&self) -> std::borrow::Cow<'_, [IpAddr]> {
        match self {
            TestSpec::Zapping(z) => (&z.channels[..]).into(),
            TestSpec::JoinLeave(j) => (&j.groups[..]).into(),
            TestSpec::Capacity(c) => c.groups().into(),
        }
    }

    pub fn thresholds_ms(&self) -> &[u64] {
        match self {
            TestSpec::Zapping(z) => &z.thresholds_ms,
            TestSpec::JoinLeave(j) => &j.thresholds_ms,
            TestSpec::Capacity(c) => &c.thresholds_ms,
        }
    }

    /// What is wrong with it, before anything starts: names the key.
    pub fn check(&self) -> Result<(), String> {
        let name = self.name();
        if name.is_empty() || name.len() > 32 || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "name {name:?}: 1 to 32 printable characters without spaces"
            ));
        }
        let (channels, key) = match self {
            TestSpec::Zapping(z) => (&z.channels, "channels"),
            TestSpec::JoinLeave(j) => (&j.groups, "groups"),
            TestSpec::Capacity(c) => {
                c.check()?;
                positive("step_ms", c.step_ms)?;
                if c.leave_grace_ms > MAX_MS {
                    return Err(format!("leave_grace_ms: 0 to {MAX_MS} ms"));
                }
                if let Some(traffic) = &c.streams {
                    traffic.check(&c.groups())?;
                }
                return Ok(());
            }
        };
        if channels.is_empty() {
            return Err(format!("{key}: give at least one group"));
        }
        if channels.len() > MAX_CHANNELS {
            return Err(format!("{key}: at most {MAX_CHANNELS} groups"));
        }
        for (i, g) in channels.iter().enumerate() {
            if !g.is_multicast() {
                return Err(format!("{key}: {g} is not a multicast address"));
            }
            if g.is_ipv4() != channels[0].is_ipv4() {
                return Err(format!(
                    "{key}: {g} and {} are not of one family (IGMP or MLD, not both)",
                    channels[0]
                ));
            }
            if channels[..i].contains(g) {
                return Err(format!("{key}: {g} is given twice"));
            }
        }
        let thresholds = self.thresholds_ms();
        if thresholds.is_empty() || thresholds.windows(2).any(|w| w[0] >= w[1]) {
            return Err("thresholds_ms: one or more, each larger than the one before".into());
        }
        let grace = match self {
            TestSpec::Zapping(z) => z.leave_grace_ms,
            TestSpec::JoinLeave(j) => j.leave_grace_ms,
            TestSpec::Capacity(c) => c.leave_grace_ms,
        };
        if grace > MAX_MS {
            return Err(format!("leave_grace_ms: 0 to {MAX_MS} ms"));
        }
        if thresholds.last().is_some_and(|&t| t > MAX_MS) {
            return Err(format!("thresholds_ms: at most {MAX_MS} ms"));
        }
        match self {
            TestSpec::Zapping(z) => {
                positive("view_ms", z.view_ms)?;
                positive("not_received_ms", z.not_received_ms)?;
                if z.count == Some(0) {
                    return Err("count: 1 or more zaps per host".into());
                }
                if z.order == ZapOrder::Random && z.channels.len() < 2 {
                    return Err("order = random needs 2 channels or more".into());
                }
                if z.sources.len() > 1 && z.sources.len() != z.channels.len() {
                    return Err(format!(
                        "sources: one for every channel, or one per channel ({} channels, {} \
                         sources)",
                        z.channels.len(),
                        z.sources.len()
                    ));
                }
                for s in &z.sources {
                    if s.is_multicast() || s.is_unspecified() {
                        return Err(format!("sources: {s} is not a unicast address"));
                    }
                    if s.is_ipv4() != z.channels[0].is_ipv4() {
                        return Err(format!("sources: {s} is not of the channels' family"));
                    }
                }
            }
            TestSpec::JoinLeave(j) => {
                positive("check_ms", j.check_ms)?;
                positive("hold_ms", j.hold_ms)?;
                if j.iterations == 0 || j.iterations > 10_000 {
                    return Err("iterations: 1 to 10000".into());
                }
            }
            TestSpec::Capacity(_) => {}
        }
        if let Some(traffic) = self.traffic() {
            traffic.check(channels)?;
        } else if self.sla().max_loss.is_some() || self.sla().max_latency_us.is_some() {
            return Err(
                "streams: max_loss and max_latency_us need the run's own streams (`streams`)"
                    .into(),
            );
        }
        Ok(())
    }
}

/// The longest duration a test takes in any of its settings: an hour.
const MAX_MS: u64 = 3_600_000;

fn positive(key: &str, value: u64) -> Result<(), String> {
    if value == 0 || value > MAX_MS {
        return Err(format!("{key}: 1 to {MAX_MS} ms"));
    }
    Ok(())
}

/// The most zap records a report lists (their figures are over all of them): the report
/// stays a few MiB, under the control client's reply limit.
pub const MAX_REPORT_RECORDS: usize = 20_000;

/// The most channels (groups) one test zaps through.
pub const MAX_CHANNELS: usize = 1024;

/// Accepts `"10.0.0.2-10.0.0.9"`, `"10.0.0.2"` or `["10.0.0.2","10.0.0.9"]`.
pub fn host_range<'de, D: Deserializer<'de>>(d: D) -> Result<Option<HostRange>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Pair(HostRange),
    }
    match Either::deserialize(d)? {
        Either::Text(text) => crate::protocol::parse_host_range(&text)
            .map(Some)
            .map_err(serde::de::Error::custom),
        Either::Pair(pair) => Ok(Some(pair)),
    }
}

/// In what order each host visits the channels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ZapOrder {
    /// The list in order, host k starting at channel k (mod the list).
    #[default]
    Sequential,
    /// Each next channel drawn among the others, per host, from `seed`.
    Random,
}

/// How a zap changes channel: both changes at one instant, in this order. IGMPv3 / MLDv2
/// carry both in one report when they fit (TO_IN {} and TO_EX {}); v1/v2 send a Leave and a
/// Report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ZapMode {
    #[default]
    LeaveJoin,
    JoinLeave,
}

/// Pass/fail thresholds. Not received and forwarded-without-join are always checked (0
/// allowed unless raised).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sla {
    /// The largest join delay (zap time) allowed, overall and per channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_join_delay_ms: Option<u64>,
    /// The largest leave delay allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_leave_delay_ms: Option<u64>,
    /// The longest overlap allowed (the old channel's last packet after the new one's first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_overlap_ms: Option<u64>,
    /// How many zaps may miss their channel (default 0).
    #[serde(default)]
    pub max_not_received: u64,
    /// With the run's own streams: how many datagrams may be lost while joined, overall and
    /// per channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_loss: Option<u64>,
    /// With the run's own streams: the largest p99 one-way latency allowed, per channel (µs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency_us: Option<u64>,
    /// RFC 3918 §7.1: the fewest groups the device must forward correctly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_capacity: Option<u32>,
}

fn default_name() -> String {
    "zapping".into()
}
fn default_join_leave_name() -> String {
    "join-delay".into()
}
fn default_view_ms() -> u64 {
    1000
}
fn default_not_received_ms() -> u64 {
    2000
}
fn default_leave_grace_ms() -> u64 {
    3000
}
fn default_thresholds() -> Vec<u64> {
    DEFAULT_THRESHOLDS_MS.to_vec()
}
fn default_iterations() -> u32 {
    3
}
fn default_check_ms() -> u64 {
    1000
}
fn default_hold_ms() -> u64 {
    2000
}

/// `kind = "zapping"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZappingSpec {
    #[serde(default = "default_name")]
    pub name: String,
    /// The daemon's interface; default: the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iface: Option<String>,
    /// The hosts, by IPv4 address: `"FIRST-LAST"` in a file, `["FIRST","LAST"]` in JSON;
    /// default: the first host of the interface.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "host_range"
    )]
    pub hosts: Option<HostRange>,
    /// The channels (groups), all IPv4 (IGMP) or all IPv6 (MLD).
    pub channels: Vec<IpAddr>,
    /// SSM: each channel joined INCLUDE {its source}, one source for every channel or one
    /// per channel (in order); none: any source.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<IpAddr>,
    /// How long each channel is watched before the next zap.
    #[serde(default = "default_view_ms")]
    pub view_ms: u64,
    /// Channel joins per host, the first included (default: one per channel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default)]
    pub order: ZapOrder,
    /// The random order's seed (default: the daemon's `--seed`); the report gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default)]
    pub mode: ZapMode,
    /// No datagram of the new channel within this: "not received".
    #[serde(default = "default_not_received_ms")]
    pub not_received_ms: u64,
    /// Datagrams of a channel left are its leave delay for this long.
    #[serde(default = "default_leave_grace_ms")]
    pub leave_grace_ms: u64,
    /// Join delay violation buckets: how many join delays exceed each.
    #[serde(default = "default_thresholds")]
    pub thresholds_ms: Vec<u64>,
    /// The streams the run starts itself (one per channel, from its first step to its end),
    /// whose headers credit the datagrams: only the run's own stream of a channel counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams: Option<Box<TestTraffic>>,
    #[serde(default)]
    pub sla: Sla,
}

/// `kind = "rfc3918-join-leave"`: RFC 3918 §6.1 Group Join Delay and §6.2 Group Leave Delay
/// as one procedure, on every host given, all groups at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinLeaveSpec {
    #[serde(default = "default_join_leave_name")]
    pub name: String,
    /// The daemon's interface; default: the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iface: Option<String>,
    /// The hosts, by IPv4 address: `"FIRST-LAST"` in a file, `["FIRST","LAST"]` in JSON;
    /// default: the first host of the interface.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "host_range"
    )]
    pub hosts: Option<HostRange>,
    pub groups: Vec<IpAddr>,
    #[serde(default = "default_iterations")]
    pub iterations: u32,
    /// Before each join (and after each leave's grace): nothing may arrive for this long.
    #[serde(default = "default_check_ms")]
    pub check_ms: u64,
    /// How long the groups are held between the join and the leave.
    #[serde(default = "default_hold_ms")]
    pub hold_ms: u64,
    /// Datagrams of a group left are its leave delay for this long, then a failure.
    #[serde(default = "default_leave_grace_ms")]
    pub leave_grace_ms: u64,
    #[serde(default = "default_thresholds")]
    pub thresholds_ms: Vec<u64>,
    /// The streams the run starts itself (one per channel, from its first step to its end),
    /// whose headers credit the datagrams: only the run's own stream of a channel counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams: Option<Box<TestTraffic>>,
    #[serde(default)]
    pub sla: Sla,
}

/// `test_start`: a test given whole, or one of the configuration file's by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestStartArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<TestSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Streams (a test file's `[[stream]]` tables) the daemon starts with the run and removes
    /// at its end; their datagrams count as an outside sender's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<crate::streams::StreamSpecArgs>,
}

/// `test_status`, `test_report`, `test_stop`: a run by name (default: the latest).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSelect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `test_report`: json (default), junit or html.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ReportFormat>,
    /// `test_status`: list at most this many hosts (default 20); the report has them all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_limit: Option<usize>,
    /// `test_status`: the hosts listed start at this place (in address order; default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_offset: Option<usize>,
    /// `test_status`: progress only (state, zaps, elapsed; no delays, no checks), in O(1)
    /// however many zaps the run made: what `--wait` asks while it waits.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub brief: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    Json,
    Junit,
    Html,
}

impl std::str::FromStr for ReportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<ReportFormat, String> {
        match s {
            "json" => Ok(ReportFormat::Json),
            "junit" => Ok(ReportFormat::Junit),
            "html" => Ok(ReportFormat::Html),
            _ => Err(format!("{s:?}: the formats are json, junit and html")),
        }
    }
}

/// Reply to `test_start` and `test_stop`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestStartReply {
    pub name: String,
    pub kind: String,
    pub hosts: u32,
}

/// Reply to `test_status`: every run the daemon keeps, the latest last.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestStatusReply {
    pub tests: Vec<TestReport>,
}

/// Reply to `test_report`: the report rendered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestReportReply {
    pub name: String,
    pub format: ReportFormat,
    pub verdict: Verdict,
    pub content: String,
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    /// Every step done.
    Finished,
    /// Stopped before the end (`test stop`, the daemon stopping): a partial report.
    Stopped,
    /// Could not go on (a host gone): no verdict but `error`.
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Still running.
    Pending,
    Pass,
    Fail,
    Error,
}

/// Delays of one kind, nanoseconds, nearest-rank percentiles; all 0 when `count` is 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub count: u64,
    pub min_ns: u64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
    pub mean_ns: u64,
}

/// How many join delays exceed `threshold_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub threshold_ms: u64,
    pub over: u64,
}

/// The figures of one channel or one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartResult {
    /// The channel (group) or the host (IPv4 address).
    pub of: String,
    pub join_delay: Summary,
    pub leave_delay: Summary,
    pub not_received: u64,
}

/// One SLA check: one JUnit test case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// e.g. `max_join_delay_ms`.
    pub name: String,
    /// `overall` or a channel.
    pub scope: String,
    pub measured: u64,
    pub threshold: u64,
    /// `ms` or `zaps` / `packets`.
    pub unit: String,
    pub pass: bool,
}

/// One zap (or one RFC 3918 iteration of one host and group), times in ns from the run's
/// start; absent: did not happen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZapRecord {
    pub host: String,
    /// 0, 1, ...: the host's zaps (the RFC 3918 iteration).
    pub seq: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_sent_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_packet_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leave_sent_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_packet_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_delay_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leave_delay_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap_ns: Option<u64>,
    pub overlap_packets: u64,
    pub not_received: bool,
    /// Another host of the link still held the channel left: its leave delay is not the
    /// device's and is not counted.
    pub leave_shared: bool,
    /// RFC 3918: datagrams before the join, and later than the leave plus the grace.
    pub before_join_packets: u64,
    pub after_leave_packets: u64,
}

/// The JSON report (and `test status`): stable keys, [`REPORT_SCHEMA`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestReport {
    pub schema: u32,
    pub name: String,
    pub kind: String,
    /// The test as run: its parameters and iterations (RFC 3918 asks for them).
    pub spec: TestSpec,
    /// The random order's seed used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    pub state: RunState,
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Since the run started.
    pub elapsed_ms: u64,
    /// How the datagrams and queries the hosts read were stamped with their arrival, the
    /// time every delay is measured from: `kernel` (the time the kernel sent each to the
    /// device, as a capture stamps it), `thread` (a thread woken by the first to reach an
    /// empty device), `read` (the daemon's read); several, comma-separated, when the links
    /// differ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival_stamps: Option<String>,
    pub hosts: u32,
    /// Zaps (joins of a channel) planned, and made so far.
    pub zaps_planned: u64,
    pub zaps: u64,
    pub join_delay: Summary,
    pub leave_delay: Summary,
    pub overlap: Summary,
    pub overlap_packets: u64,
    pub not_received: u64,
    pub leave_shared: u64,
    /// RFC 3918: datagrams read before the join ("forwarded without join"), after the
    /// leave's grace ("forwarded after leave").
    pub forwarded_without_join: u64,
    pub forwarded_after_leave: u64,
    pub buckets: Vec<Bucket>,
    pub channels: Vec<PartResult>,
    /// Per host: `test status` lists `host_limit` of them, the report all.
    pub per_host: Vec<PartResult>,
    pub per_host_total: u64,
    pub checks: Vec<Check>,
    /// Every zap, the first [`MAX_REPORT_RECORDS`] of them: in the report, not in `test
    /// status`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<ZapRecord>,
    /// How many zaps there are in all (more than `records` holds past the limit).
    #[serde(default)]
    pub records_total: u64,
    /// With the run's own streams (`spec.streams`): what its hosts received of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficResult>,
    /// RFC 3918 §7.1: the capacity found, and each step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<CapacityResult>,
}

/// Exit status of a run waited for: it passed.
pub const EXIT_PASS: u8 = 0;
/// Exit status: an SLA threshold was broken.
pub const EXIT_FAIL: u8 = 1;
/// Exit status: the test could not run, or was stopped before its end (a partial report).
pub const EXIT_CANNOT_RUN: u8 = 2;

impl TestReport {
    /// The exit status of `tunmcastctl test run` / `--wait` and `tunmcastd --run-test` for
    /// this report: [`EXIT_PASS`], [`EXIT_FAIL`], or [`EXIT_CANNOT_RUN`] when it was stopped
    /// or has no verdict.
    pub fn exit_status(&self) -> u8 {
        match (self.state, self.verdict) {
            (RunState::Stopped, _) => EXIT_CANNOT_RUN,
            (_, Verdict::Pass) => EXIT_PASS,
            (_, Verdict::Fail) => EXIT_FAIL,
            (_, Verdict::Pending | Verdict::Error) => EXIT_CANNOT_RUN,
        }
    }
}

#[cfg(test)]
mod tests;
