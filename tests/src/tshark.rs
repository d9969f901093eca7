//! Captured packets as tshark dissects them: [`Pkt`] for every IGMP / MLD message, the group
//! records of IGMPv3 / MLDv2 reports ([`Record`]), listings for failure messages, and the
//! checks every packet of the daemon must pass.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use membership::wire::{decode_code8, RecordType};
use serde_json::Value;

use crate::processes::run;
use crate::{ip, ALL_ROUTERS_V4, ALL_ROUTERS_V6, DAEMON_LL, DAEMON_V4};

/// tshark fields pulled out of every frame; see [`Pkt`].
pub(crate) const TSHARK_FIELDS: &[&str] = &[
    "frame.time_epoch",
    "frame.time_relative",
    "ip.src",
    "ip.dst",
    "ip.ttl",
    "ip.opt.ra",
    "ip.checksum.status",
    "ipv6.src",
    "ipv6.dst",
    "ipv6.hlim",
    "ipv6.opt.router_alert",
    "igmp.type",
    "igmp.version",
    "igmp.maddr",
    "igmp.max_resp",
    "igmp.checksum.status",
    "icmpv6.type",
    "icmpv6.mld.multicast_address",
    "icmpv6.mld.maximum_response_delay",
    "icmpv6.checksum.status",
];

/// tshark fields for IGMPv3 / MLDv2 group records and v3 query sources, on top of
/// [`TSHARK_FIELDS`]. Repeated fields come as lists in record order.
const V3_FIELDS: &[&str] = &[
    "igmp.record_type",
    "igmp.num_src",
    "igmp.saddr",
    "igmp.s",
    "igmp.qrv",
    "igmp.qqic",
    "icmpv6.mldr.mar.record_type",
    "icmpv6.mldr.mar.multicast_address",
    "icmpv6.mldr.mar.nb_sources",
    "icmpv6.mldr.mar.source_address",
    "icmpv6.mld.source_address",
];

/// The times (epoch seconds) of the IPv4 datagrams in `file`, by destination address (as
/// tshark writes it): a UDP capture's datagrams of each group.
pub fn datagram_times(file: &Path) -> std::collections::HashMap<String, Vec<f64>> {
    let mut times: std::collections::HashMap<String, Vec<f64>> = Default::default();
    let fields = crate::run_ok(
        "tshark",
        &[
            "-r",
            file.to_str().expect("a UTF-8 path"),
            "-T",
            "fields",
            "-e",
            "frame.time_epoch",
            "-e",
            "ip.dst",
        ],
    );
    for line in fields.lines() {
        if let Some((time, dst)) = line.split_once('\t') {
            let time: f64 = time.trim().parse().expect("a frame time");
            times.entry(dst.trim().to_string()).or_default().push(time);
        }
    }
    times
}

/// Every frame of `file` dissected with `TSHARK_FIELDS` and `V3_FIELDS`: [`Pkt`]s whose
/// [`Pkt::records`] and [`Pkt::query_sources`] work.
pub fn dissect_full(file: &Path) -> Vec<Pkt> {
    tshark_layers(file, TSHARK_FIELDS.iter().chain(V3_FIELDS))
        .iter()
        .map(Pkt::from_tshark)
        .collect()
}

/// Every frame of `file` as tshark's flat map of `fields` (IPv4 header checksums verified too).
pub(crate) fn tshark_layers<'f>(
    file: &Path,
    fields: impl Iterator<Item = &'f &'f str>,
) -> Vec<Value> {
    let file = file.to_str().expect("UTF-8 temp dir");
    let mut args = vec!["-r", file, "-T", "json", "-o", "ip.check_checksum:TRUE"];
    for field in fields {
        args.extend(["-e", *field]);
    }
    let out = run("tshark", &args);
    // tshark exits non-zero on a packet cut short by a live capture but still prints what it
    // read before.
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim().is_empty() {
        return Vec::new();
    }
    let frames: Vec<Value> = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "tshark output is not JSON ({e}): {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    frames
        .into_iter()
        .map(|frame| frame["_source"]["layers"].clone())
        .collect()
}

/// One captured IP packet, as tshark dissected it.
#[derive(Debug, Clone)]
pub struct Pkt {
    /// Seconds since the epoch (comparable with [`now`](crate::now)).
    pub time: f64,
    /// Seconds since the first captured frame (for listings).
    pub rel: f64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl_or_hlim: u8,
    /// IPv4 Router Alert option, or IPv6 hop-by-hop Router Alert, with value 0.
    pub router_alert: bool,
    /// "igmp-query", "igmpv1-report", "igmpv2-report", "igmp-leave",
    /// "igmpv3-report", "mld-query", "mld-report", "mld-done", "mldv2-report",
    /// `"icmpv6-<type>"`, `"igmp-<type>"`, or `"other"`.
    pub kind: String,
    /// IGMP Group Address / MLD Multicast Address (unspecified in general queries).
    pub group: Option<IpAddr>,
    /// Max Resp Time / Maximum Response Delay of a query, in milliseconds.
    pub max_resp_ms: Option<u64>,
    /// IPv4 header checksum (if IPv4) and IGMP/ICMPv6 checksum all verified good.
    pub checksum_good: bool,
    /// tshark's fields for anything else.
    pub raw: Value,
}

fn field<'v>(raw: &'v Value, name: &str) -> Option<&'v str> {
    raw.get(name)?.get(0)?.as_str()
}

fn number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

impl Pkt {
    pub fn from_tshark(raw: &Value) -> Pkt {
        let f = |name| field(raw, name);
        let addr = |name| f(name).and_then(|s| s.parse::<IpAddr>().ok());
        let good = |name| f(name) == Some("1");
        let time = f("frame.time_epoch")
            .and_then(|t| t.parse().ok())
            .unwrap_or(f64::NAN);
        let rel = f("frame.time_relative")
            .and_then(|t| t.parse().ok())
            .unwrap_or(f64::NAN);
        let unspecified: IpAddr = Ipv4Addr::UNSPECIFIED.into();
        let (src, dst, ttl, ra, mut checksum_good);
        if f("ip.src").is_some() {
            src = addr("ip.src");
            dst = addr("ip.dst");
            ttl = f("ip.ttl").and_then(number);
            ra = f("ip.opt.ra").and_then(number) == Some(0);
            checksum_good = good("ip.checksum.status");
        } else {
            src = addr("ipv6.src");
            dst = addr("ipv6.dst");
            ttl = f("ipv6.hlim").and_then(number);
            ra = f("ipv6.opt.router_alert").and_then(number) == Some(0);
            checksum_good = true;
        }
        let (kind, group, max_resp_ms) = if let Some(t) = f("igmp.type").and_then(number) {
            checksum_good &= good("igmp.checksum.status");
            let kind = match t {
                0x11 => "igmp-query".to_string(),
                0x12 => "igmpv1-report".to_string(),
                0x16 => "igmpv2-report".to_string(),
                0x17 => "igmp-leave".to_string(),
                0x22 => "igmpv3-report".to_string(),
                t => format!("igmp-{t:#x}"),
            };
            // tshark gives the raw Max Resp Code (1/10 s; floating-point form from
            // 128 on, RFC 9776 §4.1.1); IGMPv1 queries have none.
            let max_resp = f("igmp.max_resp")
                .and_then(number)
                .and_then(|code| u8::try_from(code).ok())
                .map(|code| u64::from(decode_code8(code)) * 100);
            (kind, addr("igmp.maddr"), max_resp)
        } else if let Some(t) = f("icmpv6.type").and_then(number) {
            checksum_good &= good("icmpv6.checksum.status");
            let kind = match t {
                130 => "mld-query".to_string(),
                131 => "mld-report".to_string(),
                132 => "mld-done".to_string(),
                143 => "mldv2-report".to_string(),
                t => format!("icmpv6-{t}"),
            };
            let max_resp = f("icmpv6.mld.maximum_response_delay").and_then(number);
            (kind, addr("icmpv6.mld.multicast_address"), max_resp)
        } else {
            ("other".to_string(), None, None)
        };
        Pkt {
            time,
            rel,
            src: src.unwrap_or(unspecified),
            dst: dst.unwrap_or(unspecified),
            ttl_or_hlim: ttl.and_then(|t| u8::try_from(t).ok()).unwrap_or(0),
            router_alert: ra,
            kind,
            group,
            max_resp_ms,
            checksum_good,
            raw: raw.clone(),
        }
    }

    pub fn from_daemon(&self) -> bool {
        self.src == IpAddr::V4(DAEMON_V4) || self.src == IpAddr::V6(DAEMON_LL)
    }

    /// IGMP or MLD (as opposed to, say, the kernel's Router Solicitations).
    pub fn is_membership(&self) -> bool {
        self.kind.starts_with("igmp") || self.kind.starts_with("mld")
    }

    pub fn is_report(&self) -> bool {
        self.kind.ends_with("-report")
    }

    pub fn is_query(&self) -> bool {
        self.kind == "igmp-query" || self.kind == "mld-query"
    }

    /// A report, Leave or Done about `group`.
    pub fn about(&self, group: IpAddr) -> bool {
        self.group == Some(group)
    }

    /// The group records of an IGMPv3 / MLDv2 report (empty for anything else). Needs a
    /// packet from [`dissect_full`] (or [`Capture::peek_full`](crate::Capture::peek_full) and friends).
    pub fn records(&self) -> Vec<Record> {
        let names = match self.kind.as_str() {
            "igmpv3-report" => [
                "igmp.record_type",
                "igmp.maddr",
                "igmp.num_src",
                "igmp.saddr",
            ],
            "mldv2-report" => [
                "icmpv6.mldr.mar.record_type",
                "icmpv6.mldr.mar.multicast_address",
                "icmpv6.mldr.mar.nb_sources",
                "icmpv6.mldr.mar.source_address",
            ],
            _ => return Vec::new(),
        };
        let [types, groups, counts, sources] = names.map(|name| field_list(&self.raw, name));
        assert!(
            !types.is_empty() && types.len() == groups.len() && types.len() == counts.len(),
            "{self}: records not dissected (use dissect_full / peek_full): {}",
            self.raw
        );
        let mut sources = sources.iter().map(|s| ip(s));
        types
            .iter()
            .zip(&groups)
            .zip(&counts)
            .map(|((kind, group), count)| {
                let count = number(count).expect("a source count");
                let mut list: Vec<IpAddr> = sources.by_ref().take(count as usize).collect();
                assert_eq!(list.len() as u64, count, "{self}: sources cut short");
                list.sort();
                Record {
                    kind: record_type(number(kind).expect("a record type")),
                    group: ip(group),
                    sources: list,
                }
            })
            .collect()
    }

    /// IGMP version as tshark tells it (1, 2 or 3: queries by length and Max Resp Code).
    pub fn igmp_version(&self) -> Option<u8> {
        field(&self.raw, "igmp.version")
            .and_then(number)
            .and_then(|v| u8::try_from(v).ok())
    }

    /// Sources of an IGMPv3 / MLDv2 group-and-source-specific query (needs [`dissect_full`]).
    pub fn query_sources(&self) -> Vec<IpAddr> {
        let name = if self.kind == "igmp-query" {
            "igmp.saddr"
        } else {
            "icmpv6.mld.source_address"
        };
        let mut list: Vec<IpAddr> = field_list(&self.raw, name).iter().map(|s| ip(s)).collect();
        list.sort();
        list
    }

    /// A v1/v2 message about `group`, or a v3 report with a record for it.
    pub fn covers(&self, group: IpAddr) -> bool {
        match self.kind.as_str() {
            "igmpv3-report" | "mldv2-report" => self.records().iter().any(|r| r.group == group),
            _ => self.about(group),
        }
    }

    /// The packet and its records on one line.
    pub fn full_line(&self) -> String {
        let records: Vec<String> = self.records().iter().map(Record::to_string).collect();
        if records.is_empty() {
            self.to_string()
        } else {
            format!("{self} [{}]", records.join("; "))
        }
    }
}

impl fmt::Display for Pkt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:8.3} {} -> {} {}",
            self.rel, self.src, self.dst, self.kind
        )?;
        if let Some(group) = self.group {
            write!(f, " group {group}")?;
        }
        if let (true, Some(max_resp)) = (self.is_query(), self.max_resp_ms) {
            write!(f, " max-resp {max_resp}ms")?;
        }
        write!(
            f,
            " ttl {} ra {} checksums {}",
            self.ttl_or_hlim,
            if self.router_alert { "yes" } else { "NO" },
            if self.checksum_good { "good" } else { "BAD" }
        )
    }
}

/// One line per packet, for failure messages.
pub fn listing<'p>(packets: impl IntoIterator<Item = &'p Pkt>) -> String {
    let lines: Vec<String> = packets.into_iter().map(|p| format!("  {p}")).collect();
    if lines.is_empty() {
        "  (no packets)".to_string()
    } else {
        lines.join("\n")
    }
}

/// [`listing`] with each v3 report's records.
pub fn full_listing<'p>(packets: impl IntoIterator<Item = &'p Pkt>) -> String {
    let lines: Vec<String> = packets
        .into_iter()
        .map(|p| format!("  {}", p.full_line()))
        .collect();
    if lines.is_empty() {
        "  (no packets)".to_string()
    } else {
        lines.join("\n")
    }
}

/// Reports (any version) from the daemon about `group`.
pub fn daemon_reports(packets: &[Pkt], group: IpAddr) -> Vec<&Pkt> {
    packets
        .iter()
        .filter(|p| p.from_daemon() && p.is_report() && p.about(group))
        .collect()
}

/// Every packet the daemon sent must be well formed: good checksums, Router
/// Alert (optional on IGMPv1 reports only), TTL / hop limit 1, reports to the group itself, Leave to 224.0.0.2,
/// Done to ff02::2. Nothing may come from an unspecified source: the daemon
/// has addresses on both families.
pub fn assert_daemon_packets_well_formed(packets: &[Pkt]) {
    let mut problems = Vec::new();
    for p in packets {
        if p.is_membership() && p.src.is_unspecified() {
            problems.push(format!("unspecified source: {p}"));
        }
        if !p.from_daemon() {
            continue;
        }
        if !p.checksum_good {
            problems.push(format!("bad checksum: {p}"));
        }
        // RFC 1112 predates Router Alert (RFC 2113): a v1 report may go without.
        if !p.router_alert && p.kind != "igmpv1-report" {
            problems.push(format!("no Router Alert: {p}"));
        }
        if p.ttl_or_hlim != 1 {
            problems.push(format!("TTL / hop limit not 1: {p}"));
        }
        let expected_dst = match p.kind.as_str() {
            "igmpv1-report" | "igmpv2-report" | "mld-report" => p.group,
            "igmp-leave" => Some(ALL_ROUTERS_V4.into()),
            "mld-done" => Some(ALL_ROUTERS_V6.into()),
            _ => Some(p.dst),
        };
        if expected_dst != Some(p.dst) {
            problems.push(format!("wrong destination: {p}"));
        }
    }
    assert!(
        problems.is_empty(),
        "malformed packets from the daemon:\n  {}\nfull capture:\n{}",
        problems.join("\n  "),
        listing(packets)
    );
}

/// One IGMPv3 / MLDv2 group record (RFC 9776 §4.2.4, RFC 9777 §5.2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// "is_in", "is_ex", "to_in", "to_ex", "allow", "block", or "typeN" ([`RecordType`]'s names).
    pub kind: String,
    pub group: IpAddr,
    /// Sorted.
    pub sources: Vec<IpAddr>,
}

impl Record {
    /// An expected record: `Record::new("allow", "232.1.1.1", &["10.99.0.77"])`.
    pub fn new(kind: &str, group: &str, sources: &[&str]) -> Record {
        let mut sources: Vec<IpAddr> = sources.iter().map(|s| ip(s)).collect();
        sources.sort();
        Record {
            kind: kind.to_string(),
            group: ip(group),
            sources,
        }
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sources: Vec<String> = self.sources.iter().map(IpAddr::to_string).collect();
        write!(f, "{} {} {{{}}}", self.kind, self.group, sources.join(","))
    }
}

/// The name of a record type code, as membership prints it.
fn record_type(code: u64) -> String {
    u8::try_from(code).map_or_else(
        |_| format!("type{code}"),
        |code| RecordType::from(code).to_string(),
    )
}

fn field_list(raw: &Value, name: &str) -> Vec<String> {
    raw.get(name)
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ip;

    #[test]
    fn tshark_fields_become_packets() {
        let raw: Value = serde_json::from_str(
            r#"{"frame.time_epoch":["1795305522.409277000"],"ip.src":["10.99.0.2"],
                "ip.dst":["239.1.2.3"],"ip.ttl":["1"],"ip.opt.ra":["0"],
                "ip.checksum.status":["1"],"igmp.type":["0x16"],"igmp.maddr":["239.1.2.3"],
                "igmp.checksum.status":["1"],"igmp.max_resp":["0"]}"#,
        )
        .unwrap();
        let p = Pkt::from_tshark(&raw);
        assert_eq!(p.kind, "igmpv2-report");
        assert_eq!(p.group, Some(ip("239.1.2.3")));
        assert!(p.from_daemon() && p.router_alert && p.checksum_good);
        assert_eq!(p.ttl_or_hlim, 1);
        assert_daemon_packets_well_formed(&[p]);

        let raw: Value = serde_json::from_str(
            r#"{"ip.src":["10.99.0.1"],"ip.dst":["224.0.0.1"],"igmp.type":["0x11"],
                "igmp.max_resp":["10"],"igmp.maddr":["0.0.0.0"]}"#,
        )
        .unwrap();
        let p = Pkt::from_tshark(&raw);
        assert!(p.is_query() && p.group.is_some_and(|g| g.is_unspecified()));
        assert_eq!(p.max_resp_ms, Some(1000));

        let raw: Value = serde_json::from_str(
            r#"{"frame.time_epoch":["1.5"],"ipv6.src":["fe80::2"],"ipv6.dst":["ff02::2"],
                "ipv6.hlim":["1"],"ipv6.opt.router_alert":["0"],"icmpv6.type":["132"],
                "icmpv6.mld.multicast_address":["ff12::1234"],"icmpv6.checksum.status":["0"]}"#,
        )
        .unwrap();
        let p = Pkt::from_tshark(&raw);
        assert_eq!(p.kind, "mld-done");
        assert!(!p.checksum_good);
    }
}
