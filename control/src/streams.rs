//! The control protocol's test-stream requests and replies (`stream_add`, `stream_remove`,
//! `stream_start`, `stream_stop`, `streams`): the daemon sends multicast streams whose
//! payloads carry a [`crate::stream_header`], and checks what its hosts receive per (host,
//! source, group).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Packets per second of a stream unless given: BNG Blaster's rate per group, fine enough for
/// a join delay to the millisecond.
pub const DEFAULT_PPS: u32 = 1000;
/// Payload bytes of a stream unless given.
pub const DEFAULT_SIZE: u16 = 64;
/// Destination UDP port unless given.
pub const DEFAULT_PORT: u16 = 5000;
/// Source UDP port unless given.
pub const DEFAULT_SOURCE_PORT: u16 = 4000;
/// The most packets per second of one stream.
pub const MAX_PPS: u32 = 10_000_000;
/// The most streams one request may make.
pub const MAX_STREAMS_PER_REQUEST: u32 = 100_000;
/// Receivers listed by `streams` unless `limit` says otherwise, and the most it may say: the
/// reply is built in one turn of the loop, so it stays a few milliseconds of work.
pub const DEFAULT_RECEIVER_LIMIT: u64 = 1000;
pub const MAX_RECEIVER_LIMIT: u64 = 10_000;

/// The most streams `tunmcastd --stream-metrics N` may label.
pub const MAX_STREAM_METRICS: u32 = 1000;

/// One stream's counters for `stats` (`--stream-metrics N`: the first N streams by id), which
/// `--prometheus` writes with `stream`, `link`, `source` and `group` labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamCounters {
    pub id: u32,
    /// The link it is sent on.
    pub link: String,
    pub source: IpAddr,
    pub group: IpAddr,
    /// Sent by it, and received by every receiver of its (source, group), by counter name.
    pub counters: BTreeMap<String, u64>,
}

/// `stream_add`: one stream, or `groups` streams on consecutive groups from `group`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSpecArgs {
    /// The daemon's link (TUN or TAP device) to send on.
    pub link: String,
    /// The source address (of the group's family).
    pub source: IpAddr,
    /// The group, or the first of `groups` consecutive ones.
    pub group: IpAddr,
    /// How many streams, on consecutive groups from `group` (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<u32>,
    /// Destination UDP port (default [`DEFAULT_PORT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Source UDP port (default [`DEFAULT_SOURCE_PORT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_port: Option<u16>,
    /// Packets per second (default [`DEFAULT_PPS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pps: Option<u32>,
    /// UDP payload bytes, header included (default [`DEFAULT_SIZE`], at least 24).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u16>,
    /// Stop after this many packets...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// ...or after this many seconds (default: until stopped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u64>,
    /// The source MAC on a TAP (default 02:00 and the last four bytes of the source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Packets sent back to back at each turn of the schedule (default 1): the same rate
    /// in bursts of this many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

/// `stream_remove`, `stream_start`, `stream_stop`: these streams, or every one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamIdsArgs {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<u32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
}

/// `streams`: the streams sent and the receivers checked, filtered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamsArgs {
    /// Only the receivers of this host (IPv4 or IPv6 link-local address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<IpAddr>,
    /// Only this group's streams and receivers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<IpAddr>,
    /// Only this link's streams and receivers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iface: Option<String>,
    /// At most this many receivers listed (default [`DEFAULT_RECEIVER_LIMIT`]); the totals
    /// count every one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Receivers skipped before those listed (default 0): with `limit`, a page of the
    /// receivers in the order of their host's number, then of their (link, source, group)'s
    /// first datagram.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// At most this many streams listed (default: every one), from `stream_offset`
    /// (default 0); the reply's `total_streams` then counts every one the filters admit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_offset: Option<u64>,
}

/// The reply to `stream_add`, `stream_remove`, `stream_start`, `stream_stop`: the streams
/// made or changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamIdsReply {
    pub ids: Vec<u32>,
}

/// One stream, as `streams` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamInfo {
    pub id: u32,
    pub link: String,
    pub group: IpAddr,
    pub source: IpAddr,
    pub port: u16,
    pub size: u16,
    /// The rate asked for.
    pub pps: u32,
    /// Packets written to the device.
    pub sent: u64,
    /// Packets that could not be written (the device full or down).
    pub send_errors: u64,
    /// Packets per second achieved since the stream (last) started.
    pub rate_pps: f64,
    /// "running", "stopped" or "done" (its count or time reached).
    pub state: String,
}

/// What one host received of one (source, group), or the sum over many.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiverCounts {
    /// Datagrams received with a stream header, the host's filter admitting their source.
    pub received: u64,
    /// Sequence numbers missing, settled once they left the reorder window.
    pub lost: u64,
    pub duplicates: u64,
    /// Datagrams that came after a later sequence number.
    pub reordered: u64,
    /// Datagrams from a source the host's filter for the group excludes.
    pub source_leaks: u64,
    /// Datagrams more than the grace period after the host left the group.
    pub after_leave: u64,
    /// UDP payload bytes of the datagrams received.
    pub bytes: u64,
}

impl StreamSpecArgs {
    /// One stream of `group` from `source` on `link`, every other key at its default.
    pub fn new(link: &str, source: IpAddr, group: IpAddr) -> StreamSpecArgs {
        StreamSpecArgs {
            link: link.to_string(),
            source,
            group,
            groups: None,
            port: None,
            source_port: None,
            pps: None,
            size: None,
            count: None,
            seconds: None,
            mac: None,
            burst: None,
        }
    }
}

impl ReceiverCounts {
    /// Adds `other` to these.
    pub fn add(&mut self, other: &ReceiverCounts) {
        self.received += other.received;
        self.lost += other.lost;
        self.duplicates += other.duplicates;
        self.reordered += other.reordered;
        self.source_leaks += other.source_leaks;
        self.after_leave += other.after_leave;
        self.bytes += other.bytes;
    }
}

/// One (host, source, group) checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiverInfo {
    /// The host's IPv4 address, or `listener N` for what `listen` client N received (checked
    /// against the client's own filter, not its host's).
    pub host: String,
    pub link: String,
    pub source: IpAddr,
    pub group: IpAddr,
    #[serde(flatten)]
    pub counts: ReceiverCounts,
    /// One-way latency, send to receive on the daemon's clock: the record's own minimum
    /// and maximum; p50 and p99 from the histogram of its (link, source, group).
    pub min_ns: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

/// One (link, source, group) the hosts receive: its receivers' counters summed, as the live
/// view's per-(S,G) table shows them (`GET /api/stream-flows`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowInfo {
    pub link: String,
    pub source: IpAddr,
    pub group: IpAddr,
    /// The (host, source, group) records of this flow.
    pub receivers: u64,
    #[serde(flatten)]
    pub counts: ReceiverCounts,
    /// One-way latency of every datagram of the flow the hosts received.
    pub p50_ns: u64,
    pub p99_ns: u64,
}

/// A page of [`FlowInfo`], ordered by link, group and source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowsPage {
    pub offset: u64,
    pub limit: u64,
    /// Every flow the filters admit.
    pub total: u64,
    pub flows: Vec<FlowInfo>,
}

/// The reply to `streams`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamsReply {
    pub streams: Vec<StreamInfo>,
    /// With the request's `stream_limit`: every stream the filters admit, listed or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_streams: Option<u64>,
    /// At most the request's `limit`, from its `offset`, in the order of the host's number
    /// (the daemon's count of hosts made), then of the first datagram of their (link, source,
    /// group).
    pub receivers: Vec<ReceiverInfo>,
    /// Every receiver the filters admit, listed or not.
    pub total_receivers: u64,
    /// Their counters summed.
    pub totals: ReceiverCounts,
    /// Per link: stream datagrams for a group no host of the link ever joined.
    pub not_joined: BTreeMap<String, u64>,
}

#[cfg(test)]
mod tests {
    use crate::protocol::Request;

    use super::*;

    #[test]
    fn stream_requests_round_trip_and_unknown_keys_are_refused() {
        let add = Request::StreamAdd(StreamSpecArgs {
            groups: Some(10),
            pps: Some(500),
            ..StreamSpecArgs::new(
                "tap1",
                "10.1.1.1".parse().unwrap(),
                "232.1.1.1".parse().unwrap(),
            )
        });
        let line = serde_json::to_string(&add).unwrap();
        assert_eq!(
            line,
            r#"{"cmd":"stream_add","link":"tap1","source":"10.1.1.1","group":"232.1.1.1","groups":10,"pps":500}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), add);
        let stop: Request = serde_json::from_str(r#"{"cmd":"stream_stop","all":true}"#).unwrap();
        assert_eq!(
            stop,
            Request::StreamStop(StreamIdsArgs {
                ids: vec![],
                all: true
            })
        );
        for bad in [
            r#"{"cmd":"stream_add","link":"t","source":"10.1.1.1","group":"232.1.1.1","rate":1}"#,
            r#"{"cmd":"stream_add","link":"t","group":"232.1.1.1"}"#,
            r#"{"cmd":"streams","limit":"x"}"#,
        ] {
            assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
        }
    }
}

/// `GROUP` or `GROUP+COUNT` (COUNT consecutive groups from GROUP), as `join`, `leave`,
/// `stream add` and the `[[stream]]` tables write it: the group, and the count when given.
pub fn group_and_count(text: &str) -> Result<(IpAddr, Option<u32>), String> {
    let (group, count) = match text.split_once('+') {
        Some((group, count)) => {
            let count = count.trim().parse::<u32>().ok().filter(|&c| c >= 1);
            let Some(count) = count else {
                return Err(format!(
                    "invalid count in {text:?}: expected GROUP+COUNT, COUNT 1 or more"
                ));
            };
            (group, Some(count))
        }
        None => (text, None),
    };
    let group = group
        .trim()
        .parse()
        .map_err(|_| format!("invalid group {group:?}: not an IPv4 or IPv6 address"))?;
    Ok((group, count))
}

/// One `[[stream]]` table, in the daemon's configuration file and in a test file alike.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamTable {
    pub link: String,
    pub source: IpAddr,
    /// `GROUP` or `GROUP+COUNT`.
    pub group: String,
    pub port: Option<u16>,
    pub source_port: Option<u16>,
    pub pps: Option<u32>,
    pub size: Option<u16>,
    pub count: Option<u64>,
    pub seconds: Option<u64>,
    pub mac: Option<String>,
    pub burst: Option<u32>,
}

impl StreamTable {
    /// As a `stream_add` request; the error names the key (`group`).
    pub fn to_args(&self) -> Result<StreamSpecArgs, String> {
        let (group, groups) = group_and_count(&self.group).map_err(|e| format!("`group`: {e}"))?;
        Ok(StreamSpecArgs {
            groups,
            port: self.port,
            source_port: self.source_port,
            pps: self.pps,
            size: self.size,
            count: self.count,
            seconds: self.seconds,
            mac: self.mac.clone(),
            burst: self.burst,
            ..StreamSpecArgs::new(&self.link, self.source, group)
        })
    }
}

#[cfg(test)]
mod group_count_tests {
    use super::*;

    #[test]
    fn group_and_count_reads_both_forms_and_names_what_is_wrong() {
        let g: IpAddr = "232.1.1.1".parse().unwrap();
        assert_eq!(group_and_count("232.1.1.1"), Ok((g, None)));
        assert_eq!(group_and_count(" 232.1.1.1 +10"), Ok((g, Some(10))));
        assert!(group_and_count("232.1.1.1+0")
            .unwrap_err()
            .contains("COUNT 1 or more"));
        assert!(group_and_count("232.1.1.1+x")
            .unwrap_err()
            .contains("invalid count"));
        assert_eq!(
            group_and_count("x").unwrap_err(),
            "invalid group \"x\": not an IPv4 or IPv6 address"
        );
    }
}
