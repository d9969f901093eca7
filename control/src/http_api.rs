//! The JSON of tunmcastd's read-only HTTP API (`--http`): pages and summaries around the
//! control protocol's own types ([`crate::protocol`]), so that a client reads a host or a group
//! the same way from either.
//!
//! | path | reply |
//! |---|---|
//! | `GET /api/hosts?offset=&limit=&q=` | [`HostsPage`] |
//! | `GET /api/groups?host=&offset=&limit=` | [`GroupsPage`] |
//! | `GET /api/links` | [`LinksReply`] |
//! | `GET /api/stats` | [`StatsReply`](crate::protocol::StatsReply) |
//! | `GET /api/delays?limit=` | [`DelaysReply`](crate::protocol::DelaysReply) |
//! | `GET /api/histograms` | [`DelayHistograms`] |
//! | `GET /api/overview` | [`Overview`] |
//! | `GET /api/streams?host=&group=&iface=&offset=&limit=` | [`StreamsReply`](crate::protocol::StreamsReply) (as `tunmcastctl streams --json`) |
//! | `GET /api/stream-flows?group=&iface=&offset=&limit=` | [`FlowsPage`](crate::streams::FlowsPage) |
//!
//! An error is an HTTP status with `{"error":"..."}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::prometheus::Histogram;
use crate::protocol::{GroupInfo, InterfaceInfo, LinkInfo};

/// The most hosts or groups one page holds.
pub const MAX_PAGE: u64 = 1000;
/// A page's size when the query does not say.
pub const DEFAULT_PAGE: u64 = 100;

/// One emulated host: what `show` lists for it, its link and its counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    #[serde(flatten)]
    pub interface: InterfaceInfo,
    /// The link (device) it is on.
    pub link: String,
    pub stats: BTreeMap<String, u64>,
}

/// A page of hosts, in the daemon's order (stable while the hosts stay).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostsPage {
    pub offset: u64,
    pub limit: u64,
    /// Hosts matching the query (all hosts without `q`).
    pub total: u64,
    pub hosts: Vec<HostInfo>,
}

/// A page of group records: every host's, or one host's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupsPage {
    pub offset: u64,
    pub limit: u64,
    /// Group records of the hosts asked for (records being left included).
    pub total: u64,
    /// Where the next page starts; `None` after the last.
    pub next_offset: Option<u64>,
    pub groups: Vec<GroupInfo>,
}

/// Every link with its device counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinksReply {
    pub links: Vec<LinkInfo>,
}

/// Join and leave delays (RFC 3918) of every (host, group) measured, as histograms.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DelayHistograms {
    /// `--delays` is on.
    pub measured: bool,
    pub join: Histogram,
    pub leave: Histogram,
}

/// What the live page's header shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overview {
    pub version: String,
    pub links: u64,
    pub hosts: u64,
    /// Group records of every host (records being left included).
    pub group_records: u64,
    /// `--delays` is on.
    pub delays: bool,
    pub uptime_ms: u64,
}
