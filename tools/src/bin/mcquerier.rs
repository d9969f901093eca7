//! mcquerier: a small IGMPv1/v2/v3 and MLDv1/v2 querier for tests and demos.
//!
//! It runs on the kernel side of a TUN link (usually inside a network namespace) and sends
//! queries through the namespace's IP stack: they go out onto the link towards whatever holds
//! the TUN, and are looped back to the kernel's own IGMP/MLD, so that both answer the same
//! query. IGMPv3 and MLDv2 queries may be general, group-specific or group-and-source-specific
//! (--group with --sources). It prints every IGMP and MLD message it hears from the TUN holder,
//! one line each,
//! flushed at once so that tests can read them live. What it sends is logged on stderr, never
//! on stdout.
//!
//! With --inject it writes onto the link with AF_PACKET instead, towards the TUN holder only,
//! and with --raw-hex it writes arbitrary bytes there (malformed packets, for hostile-input
//! tests).

// A binary's root module looks for modules next to it, not in a directory of its own name.
#[path = "mcquerier/heard.rs"]
mod heard;
#[path = "mcquerier/link.rs"]
mod link;

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::error::ErrorKind;
use clap::{ArgGroup, CommandFactory, Parser, ValueEnum};
use membership::wire::igmp::IgmpRepr;
use membership::wire::ip::{build_ipv4, build_ipv6};
use membership::wire::mld::MldRepr;
use membership::wire::{decode_code16, decode_code8, encode_code16, encode_code8};

use heard::Message;
use link::{Icmpv6Sender, Interface, Ipv4Sender, PacketSocket, ETHERTYPE_IPV4, ETHERTYPE_IPV6};

/// All-systems group, destination of IGMP general queries (RFC 2236 §2.1).
const ALL_SYSTEMS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 1);
/// Link-scope all-nodes group, destination of MLD general queries (RFC 2710 §5).
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// What hosts wait at most when no Max Resp Time is given: RFC 2236 §8.3 and RFC 2710 §7.3
/// both default to 10 s, and IGMPv1 hosts always use 10 s (RFC 2236 §4).
const DEFAULT_MAX_RESP_MS: u32 = 10_000;
/// How long to keep listening after the last query, beyond its Max Resp Time, by default.
const LISTEN_SLACK_MS: u64 = 1_000;
/// Large enough for any IP packet a TUN can carry.
const RECEIVE_BUFFER: usize = 65_536;
/// The Querier's Robustness Variable sent in v3 queries unless --qrv says otherwise (RFC 9776
/// §8.1, RFC 9777 §9.1).
const DEFAULT_QRV: u8 = 2;
/// Most sources an IGMPv3 query can list within one IPv4 packet: 65535 bytes less a 24-byte
/// header (Router Alert included) and the 12-byte query header, 4 bytes each.
const MAX_IGMP_SOURCES: usize = (65_535 - 24 - 12) / 4;
/// Most sources an MLDv2 query can list: the IPv6 payload (65535 bytes at most) holds the
/// 8-byte hop-by-hop header and the 28-byte query header, then 16 bytes each.
const MAX_MLD_SOURCES: usize = (65_535 - 8 - 28) / 16;

#[derive(Parser, Debug)]
#[command(
    name = "mcquerier",
    version,
    about = "Send IGMP/MLD queries on the kernel side of a TUN link and print the answers",
    after_help = "Output (stdout): one line per IGMP/MLD message heard from the TUN holder, \
`<seconds> <src> <type> <group>`, e.g. `0.812 10.99.0.2 v2-report 239.1.2.3`; \
types v1-report, v2-report, leave, v3-report, query, mld-report, mld-done, \
mld-v2-report, mld-query. v3 and MLDv2 reports list their records instead of a group: \
`0.734 10.99.0.2 v3-report 232.1.1.1:is_in{10.0.0.2} 239.1.1.1:is_ex{}` (in JSON: \
\"records\":[{\"type\":\"is_in\",\"group\":..,\"sources\":[..]}]). What is sent is \
logged on stderr.

IGMPv3 / MLDv2 queries carry Max Resp Code and QQIC in their floating-point form (QQIC from \
--interval, rounded up to whole seconds), the QRV of --qrv and the S flag of --s-flag. \
--group G --sources S1,S2 makes a group-and-source-specific query. General queries go to \
224.0.0.1 / ff02::1, the others to their group.

Queries go through the IP stack of the namespace: out of --dev to the TUN holder, and looped \
back to the kernel's own IGMP/MLD, which answers them too (its reports show with --all). \
--inject writes them onto the link with AF_PACKET instead: the TUN holder gets them, the \
kernel never does."
)]
#[command(allow_negative_numbers = true)]
#[command(group(ArgGroup::new("protocol").args(["igmp", "mld"])))]
struct Cli {
    /// Interface to query on: the kernel side of the TUN link.
    #[arg(long, value_name = "NAME")]
    dev: String,
    /// Send IGMP queries of this version (1, 2 or 3).
    #[arg(long, value_name = "VERSION", value_parser = clap::value_parser!(u8).range(1..=3))]
    igmp: Option<u8>,
    /// Send MLD queries of this version (1 or 2).
    #[arg(long, value_name = "VERSION", value_parser = clap::value_parser!(u8).range(1..=2))]
    mld: Option<u8>,
    /// Query for GROUP only (group-specific query) instead of a general query.
    #[arg(long, value_name = "GROUP")]
    group: Option<IpAddr>,
    /// With --group on an IGMPv3 / MLDv2 query: ask about these sources of the group only
    /// (group-and-source-specific query). Comma separated, same family as the group.
    #[arg(long, value_name = "S1,S2,...", value_delimiter = ',')]
    sources: Option<Vec<IpAddr>>,
    /// Max Resp Time in ms [default: 10000]; IGMPv2 sends it in tenths of a second
    /// (1..=255), IGMPv3 in tenths of a second as a floating-point code (up to 3174.4 s),
    /// MLDv2 in ms as a floating-point code; IGMPv1 cannot send it (hosts use 10 s).
    #[arg(long, value_name = "MS")]
    max_resp_ms: Option<u32>,
    /// IGMPv3 / MLDv2: the Querier's Robustness Variable to send (0..=7) [default: 2].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=7))]
    qrv: Option<u8>,
    /// IGMPv3 / MLDv2: the S flag (Suppress Router-Side Processing); auto sets it on general
    /// queries only [default: auto].
    #[arg(long, value_name = "WHEN", value_enum)]
    s_flag: Option<SFlag>,
    /// Seconds between queries (fractions allowed). IGMPv3 / MLDv2 queries also announce it
    /// as their QQIC, rounded up to whole seconds (at least 1).
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = parse_seconds)]
    interval: Duration,
    /// Number of queries to send; 0: forever.
    #[arg(long, value_name = "N", default_value_t = 1)]
    count: u64,
    /// How long to keep listening after the last query [default: Max Resp Time + 1000].
    #[arg(long, value_name = "MS")]
    listen_ms: Option<u64>,
    /// Print what is heard as JSON lines.
    #[arg(long)]
    json: bool,
    /// Source address of the queries [default: the interface's IPv4 address, or 0.0.0.0;
    /// for MLD its link-local address].
    #[arg(long, value_name = "ADDR")]
    src: Option<IpAddr>,
    /// Also print what the kernel side itself sends on the link (its own reports, and our
    /// queries unless --inject).
    #[arg(long)]
    all: bool,
    /// Write onto the link with AF_PACKET, towards the TUN holder only, instead of sending
    /// through the IP stack: the kernel of the namespace never hears what is written.
    #[arg(long)]
    inject: bool,
    /// With --inject: write these bytes (any IP packet, well-formed or not; whitespace and ':'
    /// between digits allowed) instead of a query, --count times. A first nibble of 6 writes
    /// them as IPv6, anything else as IPv4.
    #[arg(
        long,
        value_name = "HEX",
        value_parser = parse_hex,
        conflicts_with_all = [
            "protocol", "group", "sources", "max_resp_ms", "qrv", "s_flag", "src"
        ]
    )]
    // Spelled out so that clap takes it as one value, not as a list of u8.
    raw_hex: Option<::std::vec::Vec<u8>>,
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("{text:?} is not a number of seconds"));
    }
    Duration::try_from_secs_f64(seconds).map_err(|error| error.to_string())
}

/// `45c0001c...`, `45 c0 00 1c ...` or `45:c0:00:1c:...`: at least one byte.
fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let mut digits = Vec::with_capacity(text.len());
    for (position, c) in text.char_indices() {
        match c.to_digit(16) {
            Some(digit) => digits.push(digit as u8),
            None if c.is_ascii_whitespace() || c == ':' => {}
            None => return Err(format!("{c:?} at offset {position} is not a hex digit")),
        }
    }
    if digits.is_empty() {
        return Err("no bytes".to_owned());
    }
    if digits.len() % 2 != 0 {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    Ok(digits
        .chunks_exact(2)
        .map(|pair| pair[0] << 4 | pair[1])
        .collect())
}

/// --s-flag: the S flag of IGMPv3 / MLDv2 queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SFlag {
    On,
    Off,
    /// Set on general queries only, as FRR does.
    Auto,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// IGMP version 1, 2 or 3.
    Igmp(u8),
    /// MLD version 1 or 2.
    Mld(u8),
}

impl Protocol {
    fn is_ipv6(self) -> bool {
        matches!(self, Protocol::Mld(_))
    }

    /// IGMPv3 or MLDv2: queries with QRV, QQIC, S flag and sources.
    fn is_v3(self) -> bool {
        matches!(self, Protocol::Igmp(3) | Protocol::Mld(2))
    }

    /// `igmpv2`, `mldv1`...
    fn name(self) -> String {
        match self {
            Protocol::Igmp(version) => format!("igmpv{version}"),
            Protocol::Mld(version) => format!("mldv{version}"),
        }
    }
}

/// The Max Resp Code we send and the time it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MaxResp {
    code: u16,
    ms: u32,
}

impl MaxResp {
    fn for_protocol(protocol: Protocol, requested_ms: u32) -> Result<MaxResp, String> {
        match protocol {
            // RFC 2236 §4: an IGMPv1 query has code 0, and v1 hosts wait up to 10 s.
            Protocol::Igmp(1) => Ok(MaxResp {
                code: 0,
                ms: DEFAULT_MAX_RESP_MS,
            }),
            // Tenths of a second, as a floating-point code (RFC 9776 §4.1.1): exact up to
            // 12.7 s, then rounded down. 0 is valid in v3, but 1 at least, as in v2.
            Protocol::Igmp(3) => {
                let code = encode_code8((requested_ms / 100).max(1));
                Ok(MaxResp {
                    code: u16::from(code),
                    ms: decode_code8(code) * 100,
                })
            }
            // Tenths of a second; 0 would make it a v1 query, so 1 at least.
            Protocol::Igmp(_) => {
                let code = (requested_ms / 100).clamp(1, 255);
                Ok(MaxResp {
                    code: code as u16,
                    ms: code * 100,
                })
            }
            // Milliseconds as a floating-point code (RFC 9777 §5.1.3): exact up to 32767 ms,
            // then rounded down.
            Protocol::Mld(2) => {
                let code = encode_code16(requested_ms);
                Ok(MaxResp {
                    code,
                    ms: decode_code16(code),
                })
            }
            Protocol::Mld(_) => {
                let code = u16::try_from(requested_ms).map_err(|_| {
                    format!(
                        "--max-resp-ms {requested_ms}: MLDv1 Maximum Response Delay is at most \
                         65535 ms"
                    )
                })?;
                Ok(MaxResp {
                    code,
                    ms: requested_ms,
                })
            }
        }
    }
}

/// The command line, checked.
#[derive(Debug, Clone)]
struct Config {
    dev: String,
    payload: Payload,
    interval: Duration,
    /// 0: forever.
    count: u64,
    listen: Duration,
    json: bool,
    all: bool,
    /// Write onto the link with AF_PACKET rather than through the IP stack.
    inject: bool,
    /// Things worth telling the user that do not stop us.
    warnings: Vec<String>,
}

/// What to send.
#[derive(Debug, Clone)]
enum Payload {
    Query(QuerySpec),
    /// --raw-hex: these bytes, as they are (--inject only).
    Raw(Vec<u8>),
}

#[derive(Debug, Clone)]
struct QuerySpec {
    protocol: Protocol,
    group: Option<IpAddr>,
    max_resp: MaxResp,
    src: Option<IpAddr>,
    /// What only IGMPv3 and MLDv2 queries carry: present for those, and for those only.
    v3: Option<V3Fields>,
}

/// The fields of an IGMPv3 / MLDv2 query beyond those of v2 / v1.
#[derive(Debug, Clone, PartialEq, Eq)]
struct V3Fields {
    suppress_router: bool,
    qrv: u8,
    qqic: u8,
    /// Non-empty: a group-and-source-specific query (a group is then given).
    sources: Vec<IpAddr>,
}

impl Config {
    fn from_cli(cli: Cli) -> Result<Config, String> {
        if cli.count == 0 && cli.interval.is_zero() {
            return Err("--interval must be above 0 with --count 0 (forever)".to_owned());
        }
        let mut warnings = Vec::new();
        let (payload, default_listen_ms) = match cli.raw_hex {
            Some(bytes) => {
                if !cli.inject {
                    return Err("--raw-hex needs --inject: only AF_PACKET writes arbitrary \
                                bytes onto the link"
                        .to_owned());
                }
                (Payload::Raw(bytes), LISTEN_SLACK_MS)
            }
            None => {
                let spec = QuerySpec::from_cli(&cli, &mut warnings)?;
                let listen_ms = u64::from(spec.max_resp.ms) + LISTEN_SLACK_MS;
                (Payload::Query(spec), listen_ms)
            }
        };
        Ok(Config {
            dev: cli.dev,
            payload,
            interval: cli.interval,
            count: cli.count,
            listen: Duration::from_millis(cli.listen_ms.unwrap_or(default_listen_ms)),
            json: cli.json,
            all: cli.all,
            inject: cli.inject,
            warnings,
        })
    }
}

impl QuerySpec {
    fn from_cli(cli: &Cli, warnings: &mut Vec<String>) -> Result<QuerySpec, String> {
        let protocol = match (cli.igmp, cli.mld) {
            (Some(version), None) => Protocol::Igmp(version),
            (None, Some(version)) => Protocol::Mld(version),
            (None, None) => {
                return Err(
                    "give one of --igmp and --mld (or --inject --raw-hex to write raw bytes)"
                        .into(),
                )
            }
            // clap's argument group already refuses this.
            (Some(_), Some(_)) => return Err("give only one of --igmp and --mld".into()),
        };
        let ipv6 = protocol.is_ipv6();
        let family = if ipv6 { "--mld" } else { "--igmp" };
        if let Some(group) = cli.group {
            if group.is_ipv6() != ipv6 {
                return Err(format!(
                    "--group {group}: {family} needs an {} group",
                    if ipv6 { "IPv6" } else { "IPv4" }
                ));
            }
            if !group.is_multicast() {
                return Err(format!("--group {group} is not a multicast address"));
            }
            if protocol == Protocol::Igmp(1) {
                return Err(
                    "--group: IGMPv1 has no group-specific queries (use --igmp 2)".to_owned(),
                );
            }
        }
        if let Some(src) = cli.src {
            if src.is_ipv6() != ipv6 {
                return Err(format!(
                    "--src {src}: {family} needs an {} source",
                    if ipv6 { "IPv6" } else { "IPv4" }
                ));
            }
        }
        let v3 = if protocol.is_v3() {
            Some(V3Fields::from_cli(cli, ipv6, warnings)?)
        } else {
            let v3_only = [
                ("--sources", cli.sources.is_some()),
                ("--qrv", cli.qrv.is_some()),
                ("--s-flag", cli.s_flag.is_some()),
            ];
            if let Some((option, _)) = v3_only.iter().find(|(_, given)| *given) {
                return Err(format!(
                    "{option} needs an IGMPv3 or MLDv2 query (--igmp 3 or --mld 2): {} \
                     queries carry no {}",
                    protocol.name(),
                    if *option == "--sources" {
                        "sources"
                    } else {
                        "QRV, QQIC or S flag"
                    }
                ));
            }
            None
        };
        let max_resp =
            MaxResp::for_protocol(protocol, cli.max_resp_ms.unwrap_or(DEFAULT_MAX_RESP_MS))?;
        if let Some(requested) = cli.max_resp_ms {
            if protocol == Protocol::Igmp(1) {
                warnings.push(format!(
                    "--max-resp-ms {requested} ignored: IGMPv1 queries carry no Max Resp Time \
                     (hosts wait up to 10 s)"
                ));
            } else if requested != max_resp.ms {
                warnings.push(format!(
                    "--max-resp-ms {requested} sent as {} ms (Max Resp Code {})",
                    max_resp.ms, max_resp.code
                ));
            }
        }
        Ok(QuerySpec {
            protocol,
            group: cli.group,
            max_resp,
            src: cli.src,
            v3,
        })
    }
}

impl V3Fields {
    /// The v3-only options, once the version, family and group are checked.
    fn from_cli(cli: &Cli, ipv6: bool, warnings: &mut Vec<String>) -> Result<V3Fields, String> {
        let sources = cli.sources.clone().unwrap_or_default();
        if !sources.is_empty() && cli.group.is_none() {
            let message = "--sources needs --group: only group-and-source-specific queries list \
                           sources";
            return Err(message.to_owned());
        }
        for source in &sources {
            if source.is_ipv6() != ipv6 {
                return Err(format!(
                    "--sources {source}: {} needs {} sources",
                    if ipv6 { "--mld" } else { "--igmp" },
                    if ipv6 { "IPv6" } else { "IPv4" }
                ));
            }
            if source.is_multicast() || source.is_unspecified() {
                return Err(format!(
                    "--sources {source} is not a unicast source address"
                ));
            }
        }
        let most = if ipv6 {
            MAX_MLD_SOURCES
        } else {
            MAX_IGMP_SOURCES
        };
        if sources.len() > most {
            return Err(format!(
                "--sources: {} sources do not fit in one query ({most} at most)",
                sources.len()
            ));
        }
        let suppress_router = match cli.s_flag.unwrap_or(SFlag::Auto) {
            SFlag::On => true,
            SFlag::Off => false,
            SFlag::Auto => cli.group.is_none(),
        };
        // QQIC announces the query interval in whole seconds: rounded up, at least 1.
        let interval = cli.interval;
        let seconds = interval.as_secs() + u64::from(interval.subsec_nanos() > 0);
        let seconds = u32::try_from(seconds.max(1)).unwrap_or(u32::MAX);
        let qqic = encode_code8(seconds);
        let announced = decode_code8(qqic);
        if announced != seconds {
            warnings.push(format!(
                "--interval {}: QQIC announces {announced} s (QQIC {qqic}), the nearest \
                 value it can carry",
                interval.as_secs_f64()
            ));
        }
        Ok(V3Fields {
            suppress_router,
            qrv: cli.qrv.unwrap_or(DEFAULT_QRV),
            qqic,
            sources,
        })
    }
}

/// A query ready to go onto the link.
#[derive(Debug, Clone)]
struct Query {
    ethertype: u16,
    dst: IpAddr,
    /// The IGMP or ICMPv6 message alone.
    message: Vec<u8>,
    /// The whole IP packet around it.
    packet: Vec<u8>,
    /// `igmpv2 general query max-resp 1000ms from 10.99.0.1 to 224.0.0.1`
    description: String,
}

fn build_query(spec: &QuerySpec, src: IpAddr) -> Query {
    let max_resp = spec.max_resp;
    let (ethertype, dst, message, packet) = match (spec.protocol, src) {
        (Protocol::Igmp(_), IpAddr::V4(src)) => {
            let group = match spec.group {
                Some(IpAddr::V4(group)) => Some(group),
                _ => None,
            };
            let dst = group.unwrap_or(ALL_SYSTEMS);
            let group = group.unwrap_or(Ipv4Addr::UNSPECIFIED);
            let max_resp_code = max_resp.code as u8;
            let repr = match &spec.v3 {
                Some(v3) => IgmpRepr::QueryV3 {
                    max_resp_code,
                    group,
                    suppress_router: v3.suppress_router,
                    qrv: v3.qrv,
                    qqic: v3.qqic,
                    sources: v3
                        .sources
                        .iter()
                        .filter_map(|source| match source {
                            IpAddr::V4(source) => Some(*source),
                            IpAddr::V6(_) => None,
                        })
                        .collect(),
                },
                None => IgmpRepr::Query {
                    max_resp_code,
                    group,
                },
            };
            let message = repr.to_bytes();
            let packet = build_ipv4(src, dst, &message);
            (ETHERTYPE_IPV4, IpAddr::V4(dst), message, packet)
        }
        (Protocol::Mld(_), IpAddr::V6(src)) => {
            let group = match spec.group {
                Some(IpAddr::V6(group)) => Some(group),
                _ => None,
            };
            let dst = group.unwrap_or(ALL_NODES);
            let group = group.unwrap_or(Ipv6Addr::UNSPECIFIED);
            let repr = match &spec.v3 {
                Some(v3) => MldRepr::QueryV2 {
                    max_resp_code: max_resp.code,
                    group,
                    suppress_router: v3.suppress_router,
                    qrv: v3.qrv,
                    qqic: v3.qqic,
                    sources: v3
                        .sources
                        .iter()
                        .filter_map(|source| match source {
                            IpAddr::V6(source) => Some(*source),
                            IpAddr::V4(_) => None,
                        })
                        .collect(),
                },
                None => MldRepr::Query {
                    max_resp_delay: max_resp.code,
                    group,
                },
            };
            let mut message = vec![0; repr.buffer_len()];
            repr.emit(&src, &dst, &mut message);
            let packet = build_ipv6(src, dst, &message);
            (ETHERTYPE_IPV6, IpAddr::V6(dst), message, packet)
        }
        _ => unreachable!("Config::from_cli checks the source family"),
    };
    let mut description = spec.protocol.name();
    match (spec.group, &spec.v3) {
        (None, _) => description.push_str(" general query"),
        (Some(group), Some(v3)) if !v3.sources.is_empty() => {
            let sources: Vec<String> = v3.sources.iter().map(IpAddr::to_string).collect();
            description.push_str(&format!(
                " group-and-source-specific query {group} sources{{{}}}",
                sources.join(",")
            ));
        }
        (Some(group), _) => description.push_str(&format!(" group-specific query {group}")),
    }
    description.push_str(&format!(" max-resp {}ms", max_resp.ms));
    if let Some(v3) = &spec.v3 {
        description.push_str(&format!(
            " qrv {} qqi {}s s-flag {}",
            v3.qrv,
            decode_code8(v3.qqic),
            if v3.suppress_router { "on" } else { "off" }
        ));
    }
    description.push_str(&format!(" from {src} to {dst}"));
    Query {
        ethertype,
        dst,
        message,
        packet,
        description,
    }
}

/// The source of our queries, and a warning if it is a doubtful one. Through the IP stack
/// (`inject` false) an unspecified source is the kernel's to choose.
fn query_source(
    spec: &QuerySpec,
    interface: &Interface,
    inject: bool,
) -> anyhow::Result<(IpAddr, Option<String>)> {
    let dev = &interface.name;
    match spec.protocol {
        Protocol::Igmp(_) => {
            let (src, reason) = match (spec.src, interface.ipv4) {
                (Some(src), _) => (src, format!("--src {src}")),
                (None, Some(addr)) => (addr.into(), String::new()),
                (None, None) => (
                    Ipv4Addr::UNSPECIFIED.into(),
                    format!("{dev} has no IPv4 address"),
                ),
            };
            let warning = match (src, inject) {
                (IpAddr::V4(Ipv4Addr::UNSPECIFIED), true) => {
                    Some(format!("{reason}: queries go from 0.0.0.0"))
                }
                // raw(7): with IP_HDRINCL a zero source is filled in by the kernel.
                (IpAddr::V4(Ipv4Addr::UNSPECIFIED), false) => Some(format!(
                    "{reason}: queries go from 0.0.0.0 only if no interface has an IPv4 \
                     address, else the kernel picks one of them (--inject keeps 0.0.0.0)"
                )),
                _ => None,
            };
            Ok((src, warning))
        }
        // RFC 2710 §3: hosts (the Linux kernel among them) drop MLD queries whose source is
        // not link-local. A test may want exactly that, so --src is taken as given.
        Protocol::Mld(_) => match (spec.src, interface.link_local) {
            (Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)), _) if !inject => Ok((
                Ipv6Addr::UNSPECIFIED.into(),
                Some(format!(
                    "--src :: lets the kernel pick the source (a link-local address of {dev})"
                )),
            )),
            (Some(IpAddr::V6(src)), _) if !src.is_unicast_link_local() => Ok((
                src.into(),
                Some(format!(
                    "--src {src} is not link-local: hosts will ignore these MLD queries"
                )),
            )),
            (Some(src), _) => Ok((src, None)),
            (None, Some(addr)) => Ok((addr.into(), None)),
            (None, None) => bail!(
                "{dev} has no link-local IPv6 address, which MLD queries must come from \
                 (add one: ip -6 addr add fe80::1/64 dev {dev} nodad; or give --src)"
            ),
        },
    }
}

/// Where heard messages go: stdout, flushed after every line.
struct Output {
    json: bool,
    all: bool,
    start: Instant,
}

impl Output {
    fn seconds(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Prints one packet read from the link if it is IGMP or MLD (and from the TUN holder,
    /// unless --all). Only stdout errors are returned: bad packets are logged and skipped.
    fn packet(&self, packet: &[u8], outgoing: bool) -> io::Result<()> {
        if outgoing && !self.all {
            return Ok(());
        }
        let seconds = self.seconds();
        let direction = if outgoing {
            "sent by the kernel"
        } else {
            "heard"
        };
        match heard::decode(packet) {
            Ok(Some(message)) => self.message(&message, seconds, outgoing),
            Ok(None) => Ok(()),
            Err(reason) => {
                eprintln!("{seconds:.3} ignored malformed packet ({direction}): {reason}");
                Ok(())
            }
        }
    }

    fn message(&self, message: &Message, seconds: f64, outgoing: bool) -> io::Result<()> {
        let line = if self.json {
            message.json_line(seconds, outgoing)
        } else {
            message.text_line(seconds)
        };
        let mut stdout = io::stdout().lock();
        writeln!(stdout, "{line}")?;
        stdout.flush()
    }
}

/// How what we send gets onto the link.
enum Sender {
    /// AF_PACKET, through the listening socket: towards the TUN holder only.
    Inject { ethertype: u16, packet: Vec<u8> },
    /// Through the IPv4 stack, header included: out of the interface and looped back.
    Ipv4 {
        socket: Ipv4Sender,
        dst: Ipv4Addr,
        packet: Vec<u8>,
    },
    /// Through the IPv6 stack, which adds the header: out of the interface and looped back.
    Icmpv6 {
        socket: Icmpv6Sender,
        dst: Ipv6Addr,
        message: Vec<u8>,
    },
}

impl Sender {
    fn for_query(
        query: Query,
        src: IpAddr,
        inject: bool,
        interface: &Interface,
    ) -> anyhow::Result<Sender> {
        let dev = &interface.name;
        if inject {
            return Ok(Sender::Inject {
                ethertype: query.ethertype,
                packet: query.packet,
            });
        }
        Ok(match (query.dst, src) {
            (IpAddr::V4(dst), _) => Sender::Ipv4 {
                socket: Ipv4Sender::open(interface)
                    .with_context(|| format!("{dev}: opening a raw IPv4 socket"))?,
                dst,
                packet: query.packet,
            },
            (IpAddr::V6(dst), IpAddr::V6(src)) => Sender::Icmpv6 {
                socket: Icmpv6Sender::open(interface, src).with_context(|| dev.clone())?,
                dst,
                message: query.message,
            },
            (IpAddr::V6(_), IpAddr::V4(_)) => {
                unreachable!("Config::from_cli checks the source family")
            }
        })
    }

    fn send(&self, link: &PacketSocket) -> io::Result<()> {
        match self {
            Sender::Inject { ethertype, packet } => link.send(*ethertype, packet),
            Sender::Ipv4 {
                socket,
                dst,
                packet,
            } => socket.send(packet, *dst),
            Sender::Icmpv6 {
                socket,
                dst,
                message,
            } => socket.send(message, *dst),
        }
    }
}

fn is_unreachable(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::ENETUNREACH | libc::ENETDOWN)
    )
}

/// The interface is there, up or not, but nothing holds the TUN.
fn lacks_carrier(dev: &str) -> bool {
    Interface::lookup(dev).is_ok_and(|interface| !interface.carrier)
}

/// The link protocol of raw bytes: IPv6 if they say so, IPv4 otherwise.
fn raw_ethertype(bytes: &[u8]) -> u16 {
    match bytes.first() {
        Some(first) if first >> 4 == 6 => ETHERTYPE_IPV6,
        _ => ETHERTYPE_IPV4,
    }
}

fn run(config: &Config) -> anyhow::Result<()> {
    let dev = &config.dev;
    let interface = Interface::lookup(dev)?;
    if !interface.up {
        bail!("{dev} is down (ip link set {dev} up)");
    }
    let mut warnings = config.warnings.clone();
    let (sender, description) = match &config.payload {
        Payload::Query(spec) => {
            let (src, src_warning) = query_source(spec, &interface, config.inject)?;
            warnings.extend(src_warning);
            let query = build_query(spec, src);
            let description = if config.inject {
                format!("{} (injected)", query.description)
            } else {
                query.description.clone()
            };
            (
                Sender::for_query(query, src, config.inject, &interface)?,
                description,
            )
        }
        Payload::Raw(bytes) => {
            let ethertype = raw_ethertype(bytes);
            let description = format!(
                "raw {} bytes as {} (injected)",
                bytes.len(),
                if ethertype == ETHERTYPE_IPV6 {
                    "IPv6"
                } else {
                    "IPv4"
                }
            );
            let packet = bytes.clone();
            (Sender::Inject { ethertype, packet }, description)
        }
    };
    for warning in &warnings {
        eprintln!("mcquerier: warning: {warning}");
    }
    if !interface.carrier {
        eprintln!(
            "mcquerier: warning: {dev} has no carrier (nothing holds the TUN?): the kernel \
             drops what is sent on it"
        );
    }
    // Listening before the first query goes out, so that no early answer is missed.
    let socket = PacketSocket::open(&interface)
        .with_context(|| format!("{dev}: opening an AF_PACKET socket"))?;
    let output = Output {
        json: config.json,
        all: config.all,
        start: Instant::now(),
    };
    let mut buf = vec![0; RECEIVE_BUFFER];
    let mut sent: u64 = 0;
    // When the next query is due; `None` once the last one is out.
    let mut next_query = Some(output.start);
    let mut listen_until = output.start;
    loop {
        let now = Instant::now();
        if let Some(due) = next_query.filter(|&due| due <= now) {
            match sender.send(&socket) {
                Ok(()) => eprintln!("sent {description} at {:.3}", output.seconds()),
                // Without carrier IPv6 has no multicast route on the interface: nothing would
                // hear the query anyway. Keep going, so that a holder may still come.
                Err(error) if is_unreachable(&error) && lacks_carrier(dev) => eprintln!(
                    "mcquerier: warning: {description} not sent at {:.3}: {error} ({dev} \
                     has no carrier: nothing holds the TUN?)",
                    output.seconds()
                ),
                Err(error) => {
                    return Err(error).with_context(|| format!("{dev}: sending {description}"))
                }
            }
            sent += 1;
            if config.count != 0 && sent >= config.count {
                next_query = None;
                listen_until = now + config.listen;
            } else {
                // On schedule, without drift; after a stall, one query now, not a burst.
                next_query = Some((due + config.interval).max(now));
            }
            continue;
        }
        let wake = match next_query {
            Some(due) => due,
            None if now >= listen_until => return Ok(()),
            None => listen_until,
        };
        if !socket
            .wait_readable(wake - now)
            .with_context(|| format!("{dev}: waiting for packets"))?
        {
            continue;
        }
        while let Some(received) = socket
            .try_recv(&mut buf)
            .with_context(|| format!("{dev}: receiving"))?
        {
            if received.ethertype != ETHERTYPE_IPV4 && received.ethertype != ETHERTYPE_IPV6 {
                continue;
            }
            match output.packet(&buf[..received.len], received.outgoing) {
                Ok(()) => {}
                // Whoever read our output is gone (`| head`): nothing left to do.
                Err(error) if error.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
                Err(error) => return Err(error).context("writing to stdout"),
            }
        }
    }
}

/// clap's message on one line: its first line plus the lines that continue it (the list of
/// missing arguments), without usage and tips.
fn one_line(error: &clap::Error) -> String {
    let text = error.render().to_string();
    let mut parts = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if line.is_empty() || line.starts_with("tip:") {
            continue;
        }
        parts.push(line.strip_prefix("error: ").unwrap_or(line));
    }
    parts.join(" ")
}

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(status) = tools::generate::handle(&argv, Cli::command(), "1") {
        return status;
    }
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(error) => match error.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => error.exit(),
            _ => {
                eprintln!("mcquerier: {} (see --help)", one_line(&error));
                return ExitCode::from(2);
            }
        },
    };
    let config = match Config::from_cli(cli) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("mcquerier: {message}");
            return ExitCode::from(2);
        }
    };
    match run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mcquerier: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use membership::wire::ip::{classify, Classified};

    fn config(args: &[&str]) -> Result<Config, String> {
        let cli = Cli::try_parse_from(["mcquerier"].iter().chain(args))
            .map_err(|error| one_line(&error))?;
        Config::from_cli(cli)
    }

    fn spec(config: &Config) -> &QuerySpec {
        match &config.payload {
            Payload::Query(spec) => spec,
            Payload::Raw(_) => panic!("not a query"),
        }
    }

    fn max_resp(config: &Config) -> MaxResp {
        spec(config).max_resp
    }

    fn v3(config: &Config) -> V3Fields {
        spec(config).v3.clone().expect("a v3 query")
    }

    /// The query that `mcquerier --dev t0 ARGS` sends from `src`.
    fn query(args: &[&str], src: &str) -> Query {
        let args: Vec<&str> = ["--dev", "t0"].iter().chain(args).copied().collect();
        build_query(spec(&config(&args).unwrap()), src.parse().unwrap())
    }

    fn v4(text: &str) -> Ipv4Addr {
        text.parse().unwrap()
    }

    fn v6(text: &str) -> Ipv6Addr {
        text.parse().unwrap()
    }

    #[test]
    fn argument_errors_are_one_clear_line() {
        let both = config(&["--dev", "t0", "--igmp", "2", "--mld", "1"]).unwrap_err();
        assert!(both.contains("cannot be used with"), "{both}");
        let none = config(&["--dev", "t0"]).unwrap_err();
        assert!(none.contains("--igmp") && !none.contains('\n'), "{none}");
        let wrong_family = config(&["--dev", "t0", "--mld", "1", "--group", "239.1.2.3"]);
        assert!(wrong_family.unwrap_err().contains("needs an IPv6 group"));
        let unicast = config(&["--dev", "t0", "--igmp", "2", "--group", "10.0.0.1"]);
        assert!(unicast.unwrap_err().contains("not a multicast address"));
        let v1_specific = config(&["--dev", "t0", "--igmp", "1", "--group", "239.1.2.3"]);
        assert!(v1_specific.unwrap_err().contains("IGMPv1"));
        let src = config(&["--dev", "t0", "--igmp", "2", "--src", "fe80::1"]);
        assert!(src.unwrap_err().contains("IPv4 source"));
        let delay = config(&["--dev", "t0", "--mld", "1", "--max-resp-ms", "70000"]);
        assert!(delay.unwrap_err().contains("65535"));
        let interval = config(&["--dev", "t0", "--igmp", "2", "--interval", "-1"]);
        assert!(interval.unwrap_err().contains("seconds"));
        let version = config(&["--dev", "t0", "--igmp", "4"]).unwrap_err();
        assert!(version.contains("1..=3"), "{version}");
        let version = config(&["--dev", "t0", "--mld", "3"]).unwrap_err();
        assert!(version.contains("1..=2"), "{version}");
    }

    #[test]
    fn v3_options_are_checked() {
        let error = |args: &[&str]| {
            let args: Vec<&str> = ["--dev", "t0"].iter().chain(args).copied().collect();
            let error = config(&args).unwrap_err();
            assert!(!error.contains('\n'), "{error}");
            error
        };
        let no_group = error(&["--igmp", "3", "--sources", "10.0.0.1"]);
        assert!(no_group.contains("--sources needs --group"), "{no_group}");
        for (version, name) in [(["--igmp", "2"], "igmpv2"), (["--mld", "1"], "mldv1")] {
            let group = if name == "igmpv2" {
                "232.1.1.1"
            } else {
                "ff3e::1"
            };
            let source = if name == "igmpv2" {
                "10.0.0.1"
            } else {
                "2001:db8::1"
            };
            let e = error(&[
                version[0],
                version[1],
                "--group",
                group,
                "--sources",
                source,
            ]);
            assert!(
                e.contains("--sources needs an IGMPv3 or MLDv2 query") && e.contains(name),
                "{e}"
            );
            let e = error(&[version[0], version[1], "--qrv", "3"]);
            assert!(e.contains("--qrv needs an IGMPv3 or MLDv2 query"), "{e}");
            let e = error(&[version[0], version[1], "--s-flag", "on"]);
            assert!(e.contains("--s-flag needs"), "{e}");
        }
        let e = error(&["--igmp", "1", "--s-flag", "off"]);
        assert!(e.contains("igmpv1"), "{e}");
        let family = error(&[
            "--igmp",
            "3",
            "--group",
            "232.1.1.1",
            "--sources",
            "10.0.0.1,2001:db8::1",
        ]);
        assert!(family.contains("--igmp needs IPv4 sources"), "{family}");
        let family = error(&["--mld", "2", "--group", "ff3e::1", "--sources", "10.0.0.1"]);
        assert!(family.contains("--mld needs IPv6 sources"), "{family}");
        for bad in ["224.1.1.1", "0.0.0.0"] {
            let e = error(&["--igmp", "3", "--group", "232.1.1.1", "--sources", bad]);
            assert!(e.contains("not a unicast source"), "{e}");
        }
        let e = error(&[
            "--igmp",
            "3",
            "--group",
            "232.1.1.1",
            "--sources",
            "10.0.0.1,",
        ]);
        assert!(e.contains("--sources"), "{e}");
        let e = error(&["--igmp", "3", "--group", "232.1.1.1", "--sources", "nope"]);
        assert!(e.contains("invalid value 'nope'"), "{e}");
        let e = error(&["--igmp", "3", "--qrv", "8"]);
        assert!(e.contains("0..=7"), "{e}");
        let e = error(&["--mld", "2", "--s-flag", "maybe"]);
        assert!(e.contains("possible values: on, off, auto"), "{e}");
        let e = error(&["--inject", "--raw-hex", "45", "--sources", "10.0.0.1"]);
        assert!(e.contains("cannot be used with"), "{e}");
        let e = error(&["--inject", "--raw-hex", "45", "--qrv", "1"]);
        assert!(e.contains("cannot be used with"), "{e}");
    }

    #[test]
    fn v3_fields_and_defaults() {
        // General query: QRV 2, QQIC from the 5 s default interval, S flag set (auto).
        let c = config(&["--dev", "t0", "--igmp", "3"]).unwrap();
        assert_eq!(
            v3(&c),
            V3Fields {
                suppress_router: true,
                qrv: 2,
                qqic: 5,
                sources: vec![]
            }
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        // Group-(and-source-)specific: S flag clear (auto).
        let c = config(&[
            "--dev",
            "t0",
            "--mld",
            "2",
            "--group",
            "ff3e::8000:1",
            "--sources",
            "2001:db8::1,2001:db8::2",
            "--sources",
            "2001:db8::3",
        ])
        .unwrap();
        let fields = v3(&c);
        assert!(!fields.suppress_router);
        assert_eq!(
            fields.sources,
            ["2001:db8::1", "2001:db8::2", "2001:db8::3"].map(|s| s.parse::<IpAddr>().unwrap())
        );
        // Overrides.
        let c = config(&[
            "--dev",
            "t0",
            "--igmp",
            "3",
            "--group",
            "239.1.1.1",
            "--s-flag",
            "on",
            "--qrv",
            "7",
        ])
        .unwrap();
        assert_eq!((v3(&c).suppress_router, v3(&c).qrv), (true, 7));
        let c = config(&[
            "--dev", "t0", "--igmp", "3", "--s-flag", "off", "--qrv", "0",
        ])
        .unwrap();
        assert_eq!((v3(&c).suppress_router, v3(&c).qrv), (false, 0));
        // QQIC: whole seconds rounded up, at least 1; floating-point beyond 127 s.
        for (interval, qqic, warned) in [
            ("0.25", 1, false),
            ("0", 1, false),
            ("125", 125, false),
            ("125.5", 126, false),
            ("130", 0x80, true), // 128 s
            ("248", 0x8f, false),
            ("100000", 0xff, true), // 31744 s
        ] {
            let c = config(&["--dev", "t0", "--mld", "2", "--interval", interval]).unwrap();
            assert_eq!(v3(&c).qqic, qqic, "--interval {interval}");
            assert_eq!(c.warnings.len(), usize::from(warned), "{:?}", c.warnings);
        }
        // v1/v2 queries carry none of it.
        for version in [["--igmp", "1"], ["--igmp", "2"], ["--mld", "1"]] {
            let c = config(&["--dev", "t0", version[0], version[1]]).unwrap();
            assert!(spec(&c).v3.is_none());
        }
    }

    #[test]
    fn v3_max_resp_codes() {
        for (ms, code, sent) in [
            (None, 100, 10_000),
            (Some("1000"), 10, 1000),
            (Some("50"), 1, 100),
            (Some("0"), 1, 100),
            (Some("12700"), 127, 12_700),
            (Some("20000"), 0x89, 20_000), // (9 | 16) << 3 = 200 tenths
            (Some("25000"), 0x8f, 24_800), // rounded down: 248 tenths
            (Some("4294967295"), 0xff, 3_174_400),
        ] {
            let mut args = vec!["--dev", "t0", "--igmp", "3"];
            args.extend(ms.map(|ms| ["--max-resp-ms", ms]).iter().flatten());
            let c = config(&args).unwrap();
            assert_eq!(max_resp(&c), MaxResp { code, ms: sent }, "{ms:?}");
            let warned = ms.is_some_and(|ms| ms.parse::<u32>().unwrap() != sent);
            assert_eq!(c.warnings.len(), usize::from(warned), "{:?}", c.warnings);
            assert_eq!(c.listen, Duration::from_millis(u64::from(sent) + 1000));
        }
        for (ms, code, sent) in [
            (None, 10_000, 10_000),
            (Some("0"), 0, 0),
            (Some("32767"), 0x7fff, 32_767),
            (Some("40000"), 0x8388, 40_000), // (0x388 | 0x1000) << 3
            (Some("70001"), 0x9117, 70_000), // rounded down, no MLDv1 limit
            (Some("4294967295"), 0xffff, 8_387_584),
        ] {
            let mut args = vec!["--dev", "t0", "--mld", "2"];
            args.extend(ms.map(|ms| ["--max-resp-ms", ms]).iter().flatten());
            let c = config(&args).unwrap();
            assert_eq!(max_resp(&c), MaxResp { code, ms: sent }, "{ms:?}");
        }
    }

    #[test]
    fn igmpv3_queries_are_well_formed() {
        let general = query(&["--igmp", "3", "--max-resp-ms", "1000"], "10.99.0.1");
        assert_eq!(general.dst, IpAddr::V4(ALL_SYSTEMS));
        assert_eq!(general.message.len(), 12);
        assert_eq!(
            general.description,
            "igmpv3 general query max-resp 1000ms qrv 2 qqi 5s s-flag on from 10.99.0.1 to \
             224.0.0.1"
        );
        let Ok(Classified::Igmp { meta, payload }) = classify(&general.packet) else {
            panic!("not IGMP");
        };
        assert_eq!(payload, general.message);
        assert_eq!((meta.ttl, meta.router_alert), (1, true));
        assert_eq!(meta.dst, ALL_SYSTEMS);
        assert_eq!(
            IgmpRepr::parse(payload),
            Ok(IgmpRepr::QueryV3 {
                max_resp_code: 10,
                group: Ipv4Addr::UNSPECIFIED,
                suppress_router: true,
                qrv: 2,
                qqic: 5,
                sources: vec![]
            })
        );

        let specific = query(
            &[
                "--igmp",
                "3",
                "--group",
                "232.1.1.1",
                "--sources",
                "10.0.0.2,10.0.0.9",
                "--interval",
                "125",
                "--qrv",
                "3",
            ],
            "10.99.0.1",
        );
        assert_eq!(specific.message.len(), 12 + 2 * 4);
        assert_eq!(
            specific.description,
            "igmpv3 group-and-source-specific query 232.1.1.1 sources{10.0.0.2,10.0.0.9} \
             max-resp 10000ms qrv 3 qqi 125s s-flag off from 10.99.0.1 to 232.1.1.1"
        );
        let Ok(Classified::Igmp { meta, payload }) = classify(&specific.packet) else {
            panic!("not IGMP");
        };
        assert_eq!(meta.dst, v4("232.1.1.1"));
        assert_eq!(specific.dst, IpAddr::V4(meta.dst));
        assert_eq!(
            IgmpRepr::parse(payload),
            Ok(IgmpRepr::QueryV3 {
                max_resp_code: 100,
                group: v4("232.1.1.1"),
                suppress_router: false,
                qrv: 3,
                qqic: 125,
                sources: vec![v4("10.0.0.2"), v4("10.0.0.9")]
            })
        );
        // Group-specific, without sources: S flag clear, to the group.
        let group = query(&["--igmp", "3", "--group", "239.1.1.1"], "10.99.0.1");
        assert!(group
            .description
            .starts_with("igmpv3 group-specific query 239.1.1.1 "));
        let Ok(IgmpRepr::QueryV3 {
            group: g,
            suppress_router: false,
            sources,
            ..
        }) = IgmpRepr::parse(&group.message)
        else {
            panic!("not a v3 query without S flag");
        };
        assert_eq!((g, sources.len()), (v4("239.1.1.1"), 0));
        assert_eq!(group.dst, IpAddr::V4(g));
    }

    #[test]
    fn mldv2_queries_are_well_formed() {
        let src = v6("fe80::1");
        let general = query(&["--mld", "2", "--max-resp-ms", "40000"], "fe80::1");
        assert_eq!(general.ethertype, ETHERTYPE_IPV6);
        assert_eq!(general.dst, IpAddr::V6(ALL_NODES));
        assert_eq!(general.message.len(), 28);
        let Ok(Classified::Mld { meta, payload }) = classify(&general.packet) else {
            panic!("not MLD");
        };
        assert_eq!(payload, general.message);
        assert_eq!((meta.src, meta.dst), (src, ALL_NODES));
        assert_eq!((meta.hop_limit, meta.router_alert), (1, true));
        assert_eq!(
            MldRepr::parse(payload, &meta.src, &meta.dst),
            Ok(MldRepr::QueryV2 {
                max_resp_code: 0x8388,
                group: Ipv6Addr::UNSPECIFIED,
                suppress_router: true,
                qrv: 2,
                qqic: 5,
                sources: vec![]
            })
        );
        assert_eq!(
            general.description,
            "mldv2 general query max-resp 40000ms qrv 2 qqi 5s s-flag on from fe80::1 to ff02::1"
        );

        let specific = query(
            &[
                "--mld",
                "2",
                "--group",
                "ff3e::8000:1",
                "--sources",
                "2001:db8::1,2001:db8::2",
                "--max-resp-ms",
                "1000",
                "--s-flag",
                "on",
                "--interval",
                "0.5",
            ],
            "fe80::1",
        );
        let group = v6("ff3e::8000:1");
        assert_eq!(specific.message.len(), 28 + 2 * 16);
        assert_eq!(specific.dst, IpAddr::V6(group));
        let Ok(Classified::Mld { meta, payload }) = classify(&specific.packet) else {
            panic!("not MLD");
        };
        assert_eq!(meta.dst, group);
        assert_eq!(
            MldRepr::parse(payload, &meta.src, &meta.dst),
            Ok(MldRepr::QueryV2 {
                max_resp_code: 1000,
                group,
                suppress_router: true,
                qrv: 2,
                qqic: 1,
                sources: vec![v6("2001:db8::1"), v6("2001:db8::2")]
            })
        );
    }

    #[test]
    fn raw_hex_needs_inject_and_no_query() {
        let c = config(&[
            "--dev",
            "t0",
            "--inject",
            "--raw-hex",
            "45 00:0a",
            "--count",
            "3",
        ])
        .unwrap();
        assert!(c.inject);
        assert!(matches!(&c.payload, Payload::Raw(bytes) if bytes == &[0x45, 0x00, 0x0a]));
        assert_eq!(c.count, 3);
        assert_eq!(c.listen, Duration::from_millis(LISTEN_SLACK_MS));
        let alone = config(&["--dev", "t0", "--raw-hex", "4500"]).unwrap_err();
        assert!(alone.contains("--inject"), "{alone}");
        let with_query = config(&["--dev", "t0", "--inject", "--igmp", "2", "--raw-hex", "45"]);
        assert!(with_query.unwrap_err().contains("cannot be used with"));
        let with_group = config(&[
            "--dev",
            "t0",
            "--inject",
            "--raw-hex",
            "45",
            "--group",
            "239.1.1.1",
        ]);
        assert!(with_group.unwrap_err().contains("cannot be used with"));
        for (bad, reason) in [("", "no bytes"), ("450", "odd"), ("4x", "'x' at offset 1")] {
            let error = config(&["--dev", "t0", "--inject", "--raw-hex", bad]).unwrap_err();
            assert!(error.contains(reason), "{bad:?}: {error}");
        }
        // --inject alone still sends queries.
        let c = config(&["--dev", "t0", "--inject", "--mld", "1"]).unwrap();
        assert!(c.inject && matches!(c.payload, Payload::Query(_)));
        assert_eq!(raw_ethertype(&[0x60, 0]), ETHERTYPE_IPV6);
        assert_eq!(raw_ethertype(&[0x45]), ETHERTYPE_IPV4);
        assert_eq!(raw_ethertype(&[0xff]), ETHERTYPE_IPV4);
    }

    #[test]
    fn defaults_and_max_resp_codes() {
        let c = config(&["--dev", "t0", "--igmp", "2"]).unwrap();
        assert_eq!(
            max_resp(&c),
            MaxResp {
                code: 100,
                ms: 10_000
            }
        );
        assert_eq!(c.listen, Duration::from_millis(11_000));
        assert_eq!(c.interval, Duration::from_secs(5));
        assert_eq!(c.count, 1);
        let c = config(&["--dev", "t0", "--igmp", "2", "--max-resp-ms", "50"]).unwrap();
        assert_eq!(max_resp(&c), MaxResp { code: 1, ms: 100 });
        assert_eq!(c.warnings.len(), 1);
        let c = config(&["--dev", "t0", "--igmp", "2", "--max-resp-ms", "99999"]).unwrap();
        assert_eq!(
            max_resp(&c),
            MaxResp {
                code: 255,
                ms: 25_500
            }
        );
        let c = config(&["--dev", "t0", "--igmp", "1", "--max-resp-ms", "1000"]).unwrap();
        assert_eq!(
            max_resp(&c),
            MaxResp {
                code: 0,
                ms: 10_000
            }
        );
        let c = config(&["--dev", "t0", "--mld", "1", "--max-resp-ms", "1500"]).unwrap();
        assert_eq!(
            max_resp(&c),
            MaxResp {
                code: 1500,
                ms: 1500
            }
        );
        assert_eq!(c.listen, Duration::from_millis(2500));
        let c = config(&["--dev", "t0", "--mld", "1", "--interval", "0.25"]).unwrap();
        assert_eq!(c.interval, Duration::from_millis(250));
        assert!(config(&[
            "--dev",
            "t0",
            "--mld",
            "1",
            "--interval",
            "0",
            "--count",
            "0"
        ])
        .is_err());
    }

    #[test]
    fn igmp_queries_are_well_formed() {
        let general = query(&["--igmp", "2", "--max-resp-ms", "1000"], "10.99.0.1");
        assert_eq!(general.ethertype, ETHERTYPE_IPV4);
        assert_eq!(general.dst, IpAddr::V4(ALL_SYSTEMS));
        assert_eq!(
            general.description,
            "igmpv2 general query max-resp 1000ms from 10.99.0.1 to 224.0.0.1"
        );
        let Ok(Classified::Igmp { meta, payload }) = classify(&general.packet) else {
            panic!("not IGMP");
        };
        assert_eq!(payload, general.message);
        // TOS 0xc0 (internetwork control), as Linux sends IGMP.
        assert_eq!(general.packet[1], 0xc0);
        assert_eq!((meta.ttl, meta.router_alert), (1, true));
        assert_eq!(meta.dst, ALL_SYSTEMS);
        assert_eq!(
            IgmpRepr::parse(payload),
            Ok(IgmpRepr::Query {
                max_resp_code: 10,
                group: Ipv4Addr::UNSPECIFIED
            })
        );
        let group: IpAddr = "239.1.2.3".parse().unwrap();
        let specific = query(
            &[
                "--igmp",
                "2",
                "--max-resp-ms",
                "1000",
                "--group",
                "239.1.2.3",
            ],
            "10.99.0.1",
        );
        let Ok(Classified::Igmp { meta, payload }) = classify(&specific.packet) else {
            panic!("not IGMP");
        };
        assert_eq!(IpAddr::V4(meta.dst), group);
        assert_eq!(
            IgmpRepr::parse(payload).unwrap(),
            IgmpRepr::Query {
                max_resp_code: 10,
                group: "239.1.2.3".parse().unwrap()
            }
        );
    }

    #[test]
    fn mld_queries_are_well_formed() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let group: Ipv6Addr = "ff12::1234".parse().unwrap();
        for (group, dst) in [(None, ALL_NODES), (Some(group), group)] {
            let mut args = vec!["--mld", "1", "--max-resp-ms", "1000"];
            let group_text = group.map(|group| group.to_string());
            if let Some(text) = &group_text {
                args.extend(["--group", text.as_str()]);
            }
            let query = query(&args, "fe80::1");
            assert_eq!(query.ethertype, ETHERTYPE_IPV6);
            let Ok(Classified::Mld { meta, payload }) = classify(&query.packet) else {
                panic!("not MLD");
            };
            assert_eq!(payload, query.message);
            assert_eq!(query.dst, IpAddr::V6(dst));
            assert_eq!((meta.src, meta.dst), (src, dst));
            assert_eq!((meta.hop_limit, meta.router_alert), (1, true));
            assert_eq!(
                MldRepr::parse(payload, &meta.src, &meta.dst),
                Ok(MldRepr::Query {
                    max_resp_delay: 1000,
                    group: group.unwrap_or(Ipv6Addr::UNSPECIFIED)
                })
            );
        }
    }
}
