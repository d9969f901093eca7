//! What mcquerier hears on the link, decoded and printed as one line each: plain text
//! (`<seconds> <src> <type> <group>`) or a JSON object.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use membership::wire::igmp::IgmpRepr;
use membership::wire::ip::{self, Classified};
use membership::wire::mld::MldRepr;
use membership::wire::{GroupRecord, V3QueryFields};
use serde::Serialize;

/// One IGMP or MLD message with the IP fields around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6).
    pub ttl: u8,
    pub router_alert: bool,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Igmp(IgmpRepr),
    Mld(MldRepr),
}

/// Decodes one IP packet: `Ok(None)` if it is not IGMP or MLD, `Err` with the reason if it
/// is malformed.
pub fn decode(packet: &[u8]) -> Result<Option<Message>, String> {
    match ip::classify(packet).map_err(|error| error.to_string())? {
        Classified::Igmp { meta, payload } => {
            let repr = IgmpRepr::parse(payload)
                .map_err(|error| format!("IGMP from {}: {error}", meta.src))?;
            Ok(Some(Message {
                src: meta.src.into(),
                dst: meta.dst.into(),
                ttl: meta.ttl,
                router_alert: meta.router_alert,
                body: Body::Igmp(repr),
            }))
        }
        Classified::Mld { meta, payload } => {
            let repr = MldRepr::parse(payload, &meta.src, &meta.dst)
                .map_err(|error| format!("MLD from {}: {error}", meta.src))?;
            Ok(Some(Message {
                src: meta.src.into(),
                dst: meta.dst.into(),
                ttl: meta.hop_limit,
                router_alert: meta.router_alert,
                body: Body::Mld(repr),
            }))
        }
        Classified::Other(_) => Ok(None),
    }
}

impl Body {
    fn name(&self) -> &'static str {
        match self {
            Body::Igmp(repr) => repr.name(),
            Body::Mld(repr) => repr.name(),
        }
    }
}

impl fmt::Display for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Igmp(repr) => repr.fmt(f),
            Body::Mld(repr) => repr.fmt(f),
        }
    }
}

/// The content of a message as the JSON form lays it out.
struct Summary {
    /// `None` for v3 reports, whose groups are in their records.
    group: Option<IpAddr>,
    /// Query version.
    version: Option<u8>,
    max_resp_ms: Option<u64>,
    /// Sources of a v3 query (omitted when empty).
    sources: Vec<IpAddr>,
    /// S flag, QRV and QQI of an IGMPv3 / MLDv2 query.
    v3: Option<V3Flags>,
    records: Option<Vec<Record>>,
}

/// What an IGMPv3 / MLDv2 query carries beyond a v2 / v1 one.
#[derive(Debug, Clone, Copy)]
struct V3Flags {
    suppress_router: bool,
    qrv: u8,
    /// The Querier's Query Interval that QQIC stands for, in seconds.
    qqi_s: u64,
}

impl<A> From<V3QueryFields<'_, A>> for V3Flags {
    fn from(fields: V3QueryFields<'_, A>) -> V3Flags {
        V3Flags {
            suppress_router: fields.suppress_router,
            qrv: fields.qrv,
            qqi_s: fields.query_interval().as_secs(),
        }
    }
}

#[derive(Serialize)]
struct Record {
    #[serde(rename = "type")]
    kind: String,
    group: IpAddr,
    sources: Vec<IpAddr>,
}

impl Record {
    fn of<A: Copy + Into<IpAddr>>(record: &GroupRecord<A>) -> Record {
        Record {
            kind: record.kind.to_string(),
            group: record.group.into(),
            sources: addrs(&record.sources),
        }
    }
}

/// A message about one group, or a report with records.
enum Subject<'a, A> {
    Group(A),
    Records(&'a [GroupRecord<A>]),
}

impl Summary {
    fn of(body: &Body) -> Summary {
        match body {
            Body::Igmp(repr) => {
                let subject = match repr {
                    IgmpRepr::Query { group, .. }
                    | IgmpRepr::QueryV3 { group, .. }
                    | IgmpRepr::ReportV1 { group }
                    | IgmpRepr::ReportV2 { group }
                    | IgmpRepr::Leave { group } => Subject::Group(*group),
                    IgmpRepr::ReportV3 { records } => Subject::Records(records),
                };
                let query = (repr.query_version(), repr.max_resp_time());
                Summary::new(subject, query, repr.v3_query())
            }
            Body::Mld(repr) => {
                let subject = match repr {
                    MldRepr::Query { group, .. }
                    | MldRepr::QueryV2 { group, .. }
                    | MldRepr::Report { group }
                    | MldRepr::Done { group } => Subject::Group(*group),
                    MldRepr::ReportV2 { records } => Subject::Records(records),
                };
                let query = (repr.query_version(), repr.max_resp_time());
                Summary::new(subject, query, repr.v3_query())
            }
        }
    }

    /// `query`: the version and Max Resp Time of a query, both `None` for other messages.
    fn new<A: Copy + Into<IpAddr>>(
        subject: Subject<'_, A>,
        (version, max_resp_time): (Option<u8>, Option<Duration>),
        v3: Option<V3QueryFields<'_, A>>,
    ) -> Summary {
        let (group, records) = match subject {
            Subject::Group(group) => (Some(group.into()), None),
            Subject::Records(records) => (None, Some(records.iter().map(Record::of).collect())),
        };
        Summary {
            group,
            version,
            max_resp_ms: max_resp_time.map(|time| time.as_millis() as u64),
            sources: v3.map_or_else(Vec::new, |v3| addrs(v3.sources)),
            v3: v3.map(V3Flags::from),
            records,
        }
    }
}

fn addrs<A: Copy + Into<IpAddr>>(list: &[A]) -> Vec<IpAddr> {
    list.iter().map(|&addr| addr.into()).collect()
}

#[derive(Serialize)]
struct JsonLine<'a> {
    time: f64,
    src: IpAddr,
    dst: IpAddr,
    #[serde(rename = "type")]
    kind: &'a str,
    group: Option<IpAddr>,
    ttl: u8,
    router_alert: bool,
    /// "in": from the TUN holder; "out": sent by the kernel side (only with --all).
    dir: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_resp_ms: Option<u64>,
    #[serde(skip_serializing_if = "<[IpAddr]>::is_empty")]
    sources: &'a [IpAddr],
    /// IGMPv3 / MLDv2 queries only, like the next two.
    #[serde(skip_serializing_if = "Option::is_none")]
    suppress_router: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    qrv: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    qqi_s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    records: Option<&'a [Record]>,
}

impl Message {
    /// `0.812 10.99.0.2 v2-report 239.1.2.3`; queries add their version and Max Resp Time
    /// (`0.001 10.99.0.1 query 0.0.0.0 v2 max-resp 1000ms`), v3 queries their sources, QRV,
    /// QQI and S flag (`... query 232.1.1.1 v3 max-resp 1000ms sources{10.0.0.2} qrv 2 qqi
    /// 125s s-flag off`), v3 reports list their records instead of a group.
    pub fn text_line(&self, seconds: f64) -> String {
        format!("{seconds:.3} {} {}", self.src, self.body)
    }

    pub fn json_line(&self, seconds: f64, outgoing: bool) -> String {
        let summary = Summary::of(&self.body);
        let line = JsonLine {
            // Milliseconds are all the precision a read loop offers.
            time: (seconds * 1000.0).round() / 1000.0,
            src: self.src,
            dst: self.dst,
            kind: self.body.name(),
            group: summary.group,
            ttl: self.ttl,
            router_alert: self.router_alert,
            dir: if outgoing { "out" } else { "in" },
            version: summary.version,
            max_resp_ms: summary.max_resp_ms,
            sources: &summary.sources,
            suppress_router: summary.v3.map(|v3| v3.suppress_router),
            qrv: summary.v3.map(|v3| v3.qrv),
            qqi_s: summary.v3.map(|v3| v3.qqi_s),
            records: summary.records.as_deref(),
        };
        serde_json::to_string(&line).expect("plain data serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use membership::wire::ip::{build_ipv4, build_ipv6};
    use membership::wire::RecordType;
    use serde_json::{json, Value};
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(text: &str) -> Ipv4Addr {
        text.parse().unwrap()
    }

    fn v6(text: &str) -> Ipv6Addr {
        text.parse().unwrap()
    }

    fn igmp(src: &str, dst: &str, repr: &IgmpRepr) -> Message {
        let packet = build_ipv4(v4(src), v4(dst), &repr.to_bytes());
        decode(&packet).unwrap().unwrap()
    }

    fn mld(src: &str, dst: &str, repr: &MldRepr) -> Message {
        let (src, dst) = (v6(src), v6(dst));
        let mut body = vec![0; repr.buffer_len()];
        repr.emit(&src, &dst, &mut body);
        decode(&build_ipv6(src, dst, &body)).unwrap().unwrap()
    }

    #[test]
    fn v2_report_text_and_json() {
        let group = v4("239.1.2.3");
        let message = igmp("10.99.0.2", "239.1.2.3", &IgmpRepr::ReportV2 { group });
        assert_eq!(
            message.text_line(0.8123),
            "0.812 10.99.0.2 v2-report 239.1.2.3"
        );
        let value: Value = serde_json::from_str(&message.json_line(0.8123, false)).unwrap();
        assert_eq!(
            value,
            json!({"time":0.812,"src":"10.99.0.2","dst":"239.1.2.3","type":"v2-report",
                   "group":"239.1.2.3","ttl":1,"router_alert":true,"dir":"in"})
        );
    }

    #[test]
    fn v3_report_lists_records_compactly() {
        let records = vec![
            GroupRecord {
                kind: RecordType::ChangeToExclude,
                group: v4("239.1.1.1"),
                sources: vec![],
                aux_data: vec![],
            },
            GroupRecord {
                kind: RecordType::AllowNewSources,
                group: v4("232.1.1.1"),
                sources: vec![v4("10.0.0.1"), v4("10.0.0.2")],
                aux_data: vec![],
            },
        ];
        let message = igmp("10.99.0.1", "224.0.0.22", &IgmpRepr::ReportV3 { records });
        assert_eq!(
            message.text_line(1.0),
            "1.000 10.99.0.1 v3-report 239.1.1.1:to_ex{} 232.1.1.1:allow{10.0.0.1,10.0.0.2}"
        );
        let value: Value = serde_json::from_str(&message.json_line(1.0, true)).unwrap();
        assert_eq!(value["type"], "v3-report");
        assert_eq!(value["group"], Value::Null);
        assert_eq!(value["dir"], "out");
        assert_eq!(
            value["records"],
            json!([{"type":"to_ex","group":"239.1.1.1","sources":[]},
                   {"type":"allow","group":"232.1.1.1","sources":["10.0.0.1","10.0.0.2"]}])
        );
    }

    #[test]
    fn queries_carry_version_and_max_resp() {
        let general = v4("0.0.0.0");
        let v1 = IgmpRepr::Query {
            max_resp_code: 0,
            group: general,
        };
        assert_eq!(
            igmp("10.99.0.1", "224.0.0.1", &v1).text_line(0.0),
            "0.000 10.99.0.1 query 0.0.0.0 v1 max-resp 10000ms"
        );
        let v2 = IgmpRepr::Query {
            max_resp_code: 10,
            group: v4("239.1.2.3"),
        };
        assert_eq!(
            igmp("10.99.0.1", "239.1.2.3", &v2).text_line(0.0),
            "0.000 10.99.0.1 query 239.1.2.3 v2 max-resp 1000ms"
        );
        let mld1 = MldRepr::Query {
            max_resp_delay: 2500,
            group: v6("::"),
        };
        let message = mld("fe80::1", "ff02::1", &mld1);
        assert_eq!(
            message.text_line(0.0),
            "0.000 fe80::1 mld-query :: v1 max-resp 2500ms"
        );
        let value: Value = serde_json::from_str(&message.json_line(0.0, false)).unwrap();
        assert_eq!(value["version"], 1);
        assert_eq!(value["max_resp_ms"], 2500);
    }

    #[test]
    fn v3_queries_carry_sources_and_flags() {
        let igmp3 = IgmpRepr::QueryV3 {
            max_resp_code: 10,
            group: v4("232.1.1.1"),
            suppress_router: false,
            qrv: 2,
            qqic: 0x8f, // (0xf | 0x10) << 3 = 248 s
            sources: vec![v4("10.0.0.2"), v4("10.0.0.9")],
        };
        let message = igmp("10.99.0.1", "232.1.1.1", &igmp3);
        assert_eq!(
            message.text_line(0.0),
            "0.000 10.99.0.1 query 232.1.1.1 v3 max-resp 1000ms sources{10.0.0.2,10.0.0.9} \
             qrv 2 qqi 248s s-flag off"
        );
        let value: Value = serde_json::from_str(&message.json_line(0.0, true)).unwrap();
        assert_eq!(value["version"], 3);
        assert_eq!(value["sources"], json!(["10.0.0.2", "10.0.0.9"]));
        assert_eq!(
            (&value["suppress_router"], &value["qrv"], &value["qqi_s"]),
            (&json!(false), &json!(2), &json!(248))
        );
        let mld2 = MldRepr::QueryV2 {
            max_resp_code: 0x8000, // 0x1000 << 3 = 32768 ms
            group: v6("::"),
            suppress_router: true,
            qrv: 7,
            qqic: 125,
            sources: vec![],
        };
        let message = mld("fe80::1", "ff02::1", &mld2);
        assert_eq!(
            message.text_line(0.0),
            "0.000 fe80::1 mld-query :: v2 max-resp 32768ms qrv 7 qqi 125s s-flag on"
        );
        let value: Value = serde_json::from_str(&message.json_line(0.0, false)).unwrap();
        assert_eq!(value["max_resp_ms"], 32768);
        assert_eq!(value["suppress_router"], true);
        assert!(value.get("sources").is_none());
        // v1/v2 queries have none of the v3 fields.
        let v2 = IgmpRepr::Query {
            max_resp_code: 10,
            group: v4("0.0.0.0"),
        };
        let value: Value =
            serde_json::from_str(&igmp("10.99.0.1", "224.0.0.1", &v2).json_line(0.0, false))
                .unwrap();
        assert!(["suppress_router", "qrv", "qqi_s", "records"]
            .iter()
            .all(|key| value.get(key).is_none()));
    }

    #[test]
    fn mld_reports_and_done() {
        let group = v6("ff12::1234");
        let report = mld("fe80::2", "ff12::1234", &MldRepr::Report { group });
        assert_eq!(report.text_line(2.5), "2.500 fe80::2 mld-report ff12::1234");
        let done = mld("fe80::2", "ff02::2", &MldRepr::Done { group });
        let value: Value = serde_json::from_str(&done.json_line(2.5, false)).unwrap();
        assert_eq!(value["type"], "mld-done");
        assert_eq!(value["dst"], "ff02::2");
        assert_eq!(value["group"], "ff12::1234");
        let records = vec![GroupRecord {
            kind: RecordType::ModeIsInclude,
            group,
            sources: vec![v6("2001:db8::1")],
            aux_data: vec![],
        }];
        let v2 = mld("fe80::2", "ff02::16", &MldRepr::ReportV2 { records });
        assert_eq!(
            v2.text_line(3.0),
            "3.000 fe80::2 mld-v2-report ff12::1234:is_in{2001:db8::1}"
        );
        let value: Value = serde_json::from_str(&v2.json_line(3.0, false)).unwrap();
        assert_eq!(value["type"], "mld-v2-report");
        assert_eq!(value["group"], Value::Null);
        assert_eq!(
            value["records"],
            json!([{"type":"is_in","group":"ff12::1234","sources":["2001:db8::1"]}])
        );
    }

    #[test]
    fn malformed_and_foreign_packets() {
        let mut packet = build_ipv4(
            v4("10.99.0.2"),
            v4("239.1.2.3"),
            &IgmpRepr::ReportV2 {
                group: v4("239.1.2.3"),
            }
            .to_bytes(),
        );
        let last = packet.len() - 1;
        packet[last] ^= 1;
        let error = decode(&packet).unwrap_err();
        assert!(error.contains("checksum"), "{error}");
        assert!(decode(&[]).is_err());
        // A UDP packet: not ours, not an error.
        let mut header = etherparse::Ipv4Header::new(
            8,
            64,
            etherparse::IpNumber::UDP,
            [10, 99, 0, 2],
            [10, 99, 0, 1],
        )
        .unwrap();
        header.header_checksum = header.calc_header_checksum();
        let mut udp = header.to_bytes().to_vec();
        udp.extend_from_slice(&[0; 8]);
        assert_eq!(decode(&udp), Ok(None));
    }
}
