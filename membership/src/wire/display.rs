//! How messages print: one vocabulary for the daemon's logs, mcquerier's output and the tests.
//!
//! `v2-report 239.1.2.3`, `query 0.0.0.0 v2 max-resp 1000ms`,
//! `query 232.1.1.1 v3 max-resp 1000ms sources{10.0.0.2} qrv 2 qqi 125s s-flag off`,
//! `v3-report 232.1.1.1:is_in{10.0.0.2} 239.1.1.1:to_ex{}`; MLD names carry an `mld-` prefix
//! (`mld-query`, `mld-report`, `mld-done`, `mld-v2-report`).

use core::fmt;

use super::igmp::IgmpRepr;
use super::mld::MldRepr;
use super::{GroupRecord, RecordType, V3QueryFields};
use crate::Message;

/// The short names of RFC 9776 §4.2.12 / RFC 9777 §5.2.12 (as tcpdump and FRR print them).
impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordType::ModeIsInclude => f.write_str("is_in"),
            RecordType::ModeIsExclude => f.write_str("is_ex"),
            RecordType::ChangeToInclude => f.write_str("to_in"),
            RecordType::ChangeToExclude => f.write_str("to_ex"),
            RecordType::AllowNewSources => f.write_str("allow"),
            RecordType::BlockOldSources => f.write_str("block"),
            RecordType::Unknown(value) => write!(f, "type{value}"),
        }
    }
}

/// Addresses separated by commas, in braces: `{10.0.0.1,10.0.0.2}`, `{}`.
struct Braced<'a, A>(&'a [A]);

impl<A: fmt::Display> fmt::Display for Braced<'_, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (index, addr) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            write!(f, "{addr}")?;
        }
        f.write_str("}")
    }
}

/// `232.1.1.1:allow{10.0.0.1,10.0.0.2}`, `239.1.1.1:to_ex{}`.
impl<A: fmt::Display> fmt::Display for GroupRecord<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}{}", self.group, self.kind, Braced(&self.sources))
    }
}

/// `sources{10.0.0.2} qrv 2 qqi 125s s-flag off` (no `sources{}` when there are none).
impl<A: fmt::Display> fmt::Display for V3QueryFields<'_, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.sources.is_empty() {
            write!(f, "sources{} ", Braced(self.sources))?;
        }
        write!(
            f,
            "qrv {} qqi {}s s-flag {}",
            self.qrv,
            self.query_interval().as_secs(),
            if self.suppress_router { "on" } else { "off" }
        )
    }
}

/// What [`IgmpRepr`] and [`MldRepr`] print alike, once taken apart.
enum Parts<'a, A> {
    /// A message about one group: a v1/v2 report, a Leave or Done.
    Group(A),
    Query {
        group: A,
        version: u8,
        max_resp_ms: u128,
        v3: Option<V3QueryFields<'a, A>>,
    },
    Records(&'a [GroupRecord<A>]),
}

impl<A: fmt::Display> Parts<'_, A> {
    fn write(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(name)?;
        match self {
            Parts::Group(group) => write!(f, " {group}"),
            Parts::Query {
                group,
                version,
                max_resp_ms,
                v3,
            } => {
                write!(f, " {group} v{version} max-resp {max_resp_ms}ms")?;
                match v3 {
                    Some(v3) => write!(f, " {v3}"),
                    None => Ok(()),
                }
            }
            Parts::Records(records) => records.iter().try_for_each(|r| write!(f, " {r}")),
        }
    }
}

impl IgmpRepr {
    /// `query`, `v1-report`, `v2-report`, `leave` or `v3-report`.
    pub fn name(&self) -> &'static str {
        match self {
            IgmpRepr::Query { .. } | IgmpRepr::QueryV3 { .. } => "query",
            IgmpRepr::ReportV1 { .. } => "v1-report",
            IgmpRepr::ReportV2 { .. } => "v2-report",
            IgmpRepr::Leave { .. } => "leave",
            IgmpRepr::ReportV3 { .. } => "v3-report",
        }
    }

    /// 1, 2 or 3 for a query (RFC 2236 §4: a v1 query has Max Resp Code 0); `None` otherwise.
    pub fn query_version(&self) -> Option<u8> {
        match self {
            IgmpRepr::Query {
                max_resp_code: 0, ..
            } => Some(1),
            IgmpRepr::Query { .. } => Some(2),
            IgmpRepr::QueryV3 { .. } => Some(3),
            _ => None,
        }
    }
}

impl fmt::Display for IgmpRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = match self {
            IgmpRepr::Query { group, .. } | IgmpRepr::QueryV3 { group, .. } => Parts::Query {
                group: *group,
                version: self.query_version().unwrap_or_default(),
                max_resp_ms: self.max_resp_time().unwrap_or_default().as_millis(),
                v3: self.v3_query(),
            },
            IgmpRepr::ReportV1 { group }
            | IgmpRepr::ReportV2 { group }
            | IgmpRepr::Leave { group } => Parts::Group(*group),
            IgmpRepr::ReportV3 { records } => Parts::Records(records),
        };
        parts.write(self.name(), f)
    }
}

impl MldRepr {
    /// `mld-query`, `mld-report`, `mld-done` or `mld-v2-report`.
    pub fn name(&self) -> &'static str {
        match self {
            MldRepr::Query { .. } | MldRepr::QueryV2 { .. } => "mld-query",
            MldRepr::Report { .. } => "mld-report",
            MldRepr::Done { .. } => "mld-done",
            MldRepr::ReportV2 { .. } => "mld-v2-report",
        }
    }

    /// 1 or 2 for a query; `None` otherwise.
    pub fn query_version(&self) -> Option<u8> {
        match self {
            MldRepr::Query { .. } => Some(1),
            MldRepr::QueryV2 { .. } => Some(2),
            _ => None,
        }
    }
}

impl fmt::Display for MldRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = match self {
            MldRepr::Query { group, .. } | MldRepr::QueryV2 { group, .. } => Parts::Query {
                group: *group,
                version: self.query_version().unwrap_or_default(),
                max_resp_ms: self.max_resp_time().unwrap_or_default().as_millis(),
                v3: self.v3_query(),
            },
            MldRepr::Report { group } | MldRepr::Done { group } => Parts::Group(*group),
            MldRepr::ReportV2 { records } => Parts::Records(records),
        };
        parts.write(self.name(), f)
    }
}

impl fmt::Display for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Igmp(repr) => repr.fmt(f),
            Message::Mld(repr) => repr.fmt(f),
        }
    }
}
