//! The command line, parsed by clap and then checked into a [`Config`]: what to send, how
//! often, and how to print what is heard.

use std::net::IpAddr;
use std::time::Duration;

use clap::{ArgGroup, Parser, ValueEnum};
use membership::wire::{decode_code8, encode_code8};

use crate::query::{MaxResp, Protocol, QuerySpec, V3Fields, DEFAULT_MAX_RESP_MS};

/// How long to keep listening after the last query, beyond its Max Resp Time, by default.
pub const LISTEN_SLACK_MS: u64 = 1_000;
/// The Querier's Robustness Variable sent in v3 queries unless --qrv says otherwise (RFC 9776
/// §8.1, RFC 9777 §9.1).
pub const DEFAULT_QRV: u8 = 2;
/// Most sources an IGMPv3 query can list within one IPv4 packet: 65535 bytes less a 24-byte
/// header (Router Alert included) and the 12-byte query header, 4 bytes each.
pub const MAX_IGMP_SOURCES: usize = (65_535 - 24 - 12) / 4;
/// Most sources an MLDv2 query can list: the IPv6 payload (65535 bytes at most) holds the
/// 8-byte hop-by-hop header and the 28-byte query header, then 16 bytes each.
pub const MAX_MLD_SOURCES: usize = (65_535 - 8 - 28) / 16;

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
pub struct Cli {
    /// Interface to query on: the kernel side of the TUN link. `--dev` is the old spelling.
    #[arg(long = "iface", visible_alias = "dev", value_name = "NAME")]
    pub dev: String,
    /// Send IGMP queries of this version (1, 2 or 3).
    #[arg(long, value_name = "VERSION", value_parser = clap::value_parser!(u8).range(1..=3))]
    pub igmp: Option<u8>,
    /// Send MLD queries of this version (1 or 2).
    #[arg(long, value_name = "VERSION", value_parser = clap::value_parser!(u8).range(1..=2))]
    pub mld: Option<u8>,
    /// Query for GROUP only (group-specific query) instead of a general query.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<IpAddr>,
    /// With --group on an IGMPv3 / MLDv2 query: ask about these sources of the group only
    /// (group-and-source-specific query). Comma separated, same family as the group.
    #[arg(long, value_name = "S1,S2,...", value_delimiter = ',')]
    pub sources: Option<Vec<IpAddr>>,
    /// Max Resp Time in ms [default: 10000]; IGMPv2 sends it in tenths of a second
    /// (1..=255), IGMPv3 in tenths of a second as a floating-point code (up to 3174.4 s),
    /// MLDv2 in ms as a floating-point code; IGMPv1 cannot send it (hosts use 10 s).
    #[arg(long, value_name = "MS")]
    pub max_resp_ms: Option<u32>,
    /// IGMPv3 / MLDv2: the Querier's Robustness Variable to send (0..=7) [default: 2].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=7))]
    pub qrv: Option<u8>,
    /// IGMPv3 / MLDv2: the S flag (Suppress Router-Side Processing); auto sets it on general
    /// queries only [default: auto].
    #[arg(long, value_name = "WHEN", value_enum)]
    pub s_flag: Option<SFlag>,
    /// Interval between queries, in seconds (fractions allowed). IGMPv3 / MLDv2 queries also announce it
    /// as their QQIC, rounded up to whole seconds (at least 1).
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = parse_seconds)]
    pub interval: Duration,
    /// Number of queries to send; 0: forever.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub count: u64,
    /// How long to keep listening after the last query, in ms [default: Max Resp Time + 1000].
    #[arg(long, value_name = "MS")]
    pub listen_ms: Option<u64>,
    /// Print what is heard as JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Source address of the queries [default: the interface's IPv4 address, or 0.0.0.0;
    /// for MLD its link-local address].
    #[arg(long, value_name = "ADDR")]
    pub src: Option<IpAddr>,
    /// Also print what the kernel side itself sends on the link (its own reports, and our
    /// queries unless --inject).
    #[arg(long)]
    pub all: bool,
    /// Write onto the link with AF_PACKET, towards the TUN holder only, instead of sending
    /// through the IP stack: the kernel of the namespace never hears what is written.
    #[arg(long)]
    pub inject: bool,
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
    pub raw_hex: Option<::std::vec::Vec<u8>>,
}

pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("{text:?} is not a number of seconds"));
    }
    Duration::try_from_secs_f64(seconds).map_err(|error| error.to_string())
}

/// `45c0001c...`, `45 c0 00 1c ...` or `45:c0:00:1c:...`: at least one byte.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
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
pub enum SFlag {
    On,
    Off,
    /// Set on general queries only, as FRR does.
    Auto,
}

/// The command line, checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub dev: String,
    pub payload: Payload,
    pub interval: Duration,
    /// 0: forever.
    pub count: u64,
    pub listen: Duration,
    pub json: bool,
    pub all: bool,
    /// Write onto the link with AF_PACKET rather than through the IP stack.
    pub inject: bool,
    /// Things worth telling the user that do not stop us.
    pub warnings: Vec<String>,
}

/// What to send.
#[derive(Debug, Clone)]
pub enum Payload {
    Query(QuerySpec),
    /// --raw-hex: these bytes, as they are (--inject only).
    Raw(Vec<u8>),
}
impl Config {
    pub fn from_cli(cli: Cli) -> Result<Config, String> {
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
    pub fn from_cli(cli: &Cli, warnings: &mut Vec<String>) -> Result<QuerySpec, String> {
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
    pub fn from_cli(cli: &Cli, ipv6: bool, warnings: &mut Vec<String>) -> Result<V3Fields, String> {
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

/// clap's message on one line: its first line plus the lines that continue it (the list of
/// missing arguments), without usage and tips.
pub fn one_line(error: &clap::Error) -> String {
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

#[cfg(test)]
pub mod tests;
