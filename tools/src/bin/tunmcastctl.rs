//! tunmcastctl: join and leave groups, inspect a running tunmcastd.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use serde_json::{Map, Value};
use tools::{ClientError, MembershipReply, Request, ShowReply};

#[derive(Parser)]
#[command(
    name = "tunmcastctl",
    version,
    about = "Control a running tunmcastd",
    after_help = "Without --control, the socket is $TUNMCAST_CONTROL, else the only *.sock in \
                  /run/tunmcast/.\nExit status: 0 on success, 1 when the request fails (no \
                  daemon, refused, timed out), 2 on a usage error."
)]
struct Cli {
    /// Control socket of the daemon.
    #[arg(long, value_name = "PATH", global = true)]
    control: Option<PathBuf>,
    /// Print the daemon's reply as JSON instead of a table.
    #[arg(short = 'j', long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Join GROUP, from any source or with a source filter. Each join is one request, like one
    /// socket's membership: two joins need two leaves.
    Join {
        /// IPv4 or IPv6 multicast address, e.g. 239.1.2.3 or ff12::1234.
        group: String,
        #[command(flatten)]
        iface: IfaceArg,
        #[command(flatten)]
        filter: JoinFilter,
    },
    /// Leave GROUP: without a filter, drop one any-source join (or, with none left, every
    /// request for the group); --include S drops sources S from the INCLUDE joins; --exclude S
    /// drops the EXCLUDE join with exactly those sources.
    Leave {
        /// IPv4 or IPv6 multicast address, as given to join.
        group: String,
        #[command(flatten)]
        iface: IfaceArg,
        #[command(flatten)]
        filter: LeaveFilter,
    },
    /// Receive the group's UDP datagrams: a join of its own for as long as this runs. Prints
    /// one line per datagram (--json: one object), or forwards payloads with --udp-to.
    Listen {
        /// GROUP or GROUP:PORT ([GROUP]:PORT for IPv6): with a port, only datagrams to it.
        group: String,
        #[command(flatten)]
        iface: IfaceArg,
        #[command(flatten)]
        filter: JoinFilter,
        /// Exit after N datagrams.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        /// Send each payload, unchanged, to this UDP address instead of printing it.
        #[arg(long, value_name = "HOST:PORT")]
        udp_to: Option<std::net::SocketAddr>,
    },
    /// Interfaces (router versions in force), joined groups (state, timers, filters) and
    /// listeners. A filter `exclude {}` means from any source.
    Show,
    /// Every protocol and I/O counter.
    Stats,
    /// Check that the daemon answers.
    Ping,
}

/// The interface a join or leave applies to.
#[derive(clap::Args)]
struct IfaceArg {
    /// The daemon's interface (its TUN or TAP device) to act on; default: the only one it
    /// serves.
    #[arg(long = "iface", visible_alias = "dev", value_name = "NAME")]
    name: Option<String>,
}

/// A join's source filter (IGMPv3 / MLDv2): comma-separated source addresses.
#[derive(clap::Args)]
#[group(multiple = false)]
struct JoinFilter {
    /// Receive from these sources only (INCLUDE mode).
    #[arg(long, value_name = "S1,S2,...", value_delimiter = ',')]
    include: Option<Vec<String>>,
    /// Receive from every source but these (EXCLUDE mode).
    #[arg(long, value_name = "S1,S2,...", value_delimiter = ',')]
    exclude: Option<Vec<String>>,
}

/// Which sources or which join a leave drops.
#[derive(clap::Args)]
#[group(multiple = false)]
struct LeaveFilter {
    /// Stop receiving from these sources: drop them from the group's INCLUDE joins.
    #[arg(long, value_name = "S1,S2,...", value_delimiter = ',')]
    include: Option<Vec<String>>,
    /// Drop the EXCLUDE join made with exactly these sources.
    #[arg(long, value_name = "S1,S2,...", value_delimiter = ',')]
    exclude: Option<Vec<String>>,
}

/// The parsed `--include` and `--exclude` lists.
type SourceLists = (Option<Vec<IpAddr>>, Option<Vec<IpAddr>>);

/// Parses the `--include` / `--exclude` lists: addresses of the group's family.
fn parse_sources(
    group: &IpAddr,
    include: &Option<Vec<String>>,
    exclude: &Option<Vec<String>>,
) -> anyhow::Result<SourceLists> {
    let list = |sources: &Option<Vec<String>>| -> anyhow::Result<Option<Vec<IpAddr>>> {
        let Some(sources) = sources else {
            return Ok(None);
        };
        let parsed = sources
            .iter()
            .map(|s| {
                let addr: IpAddr = s.trim().parse().map_err(|_| {
                    anyhow::anyhow!("invalid source {s:?}: not an IPv4 or IPv6 address")
                })?;
                if addr.is_ipv4() != group.is_ipv4() {
                    anyhow::bail!("source {addr} is not of the same family as group {group}");
                }
                Ok(addr)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Some(parsed))
    };
    Ok((list(include)?, list(exclude)?))
}

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(status) = tools::generate::handle(&argv, Cli::command(), "1") {
        return status;
    }
    let cli = Cli::parse_from(argv);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{e}`, not `{e:#}`: our messages already carry the OS error text.
            eprintln!("tunmcastctl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Listen {
        group,
        iface,
        filter,
        count,
        udp_to,
    } = cli.command
    {
        let (group, port) = tools::listen::parse_group_port(&group).map_err(anyhow::Error::msg)?;
        let (include, exclude) = parse_sources(&group, &filter.include, &filter.exclude)?;
        let request = Request::Listen {
            group,
            port,
            iface: iface.name,
            include,
            exclude,
        };
        let options = tools::listen::ListenOptions {
            count,
            json: cli.json,
            udp_to,
        };
        let path = tools::control_path(cli.control.as_deref())?;
        return tools::listen::listen(&path, &request, &options);
    }
    // Check the argument before looking for a daemon: a typo is the more useful error.
    let request = match cli.command {
        Command::Join {
            group,
            iface,
            filter,
        } => {
            let group = parse_group(&group)?;
            let (include, exclude) = parse_sources(&group, &filter.include, &filter.exclude)?;
            Request::Join {
                group,
                iface: iface.name,
                include,
                exclude,
            }
        }
        Command::Leave {
            group,
            iface,
            filter,
        } => {
            let group = parse_group(&group)?;
            let (include, exclude) = parse_sources(&group, &filter.include, &filter.exclude)?;
            Request::Leave {
                group,
                iface: iface.name,
                include,
                exclude,
            }
        }
        Command::Show => Request::Show,
        Command::Stats => Request::Stats,
        Command::Ping => Request::Ping,
        Command::Listen { .. } => unreachable!("handled above"),
    };
    let path = tools::control_path(cli.control.as_deref())?;
    let reply = tools::request(&path, &request)?;
    let text = match &request {
        Request::Join { .. } | Request::Leave { .. } if cli.json => to_json(&reply),
        Request::Join { .. } => membership_line("joined", &tools::decode(&path, &reply)?),
        Request::Leave { .. } => membership_line("left", &tools::decode(&path, &reply)?),
        Request::Show if cli.json => to_json(&reply),
        Request::Show => show_tables(&tools::decode(&path, &reply)?),
        Request::Stats => {
            let stats = match reply.get("stats") {
                Some(Value::Object(stats)) => stats,
                _ => {
                    return Err(ClientError::BadReply {
                        path,
                        detail: "no \"stats\" object".into(),
                    }
                    .into())
                }
            };
            if cli.json {
                to_json(stats)
            } else {
                stats_table(stats)
            }
        }
        Request::Ping | Request::Listen { .. } if cli.json => to_json(&reply),
        Request::Ping => {
            let version = reply.get("version").and_then(Value::as_str).unwrap_or("?");
            format!("tunmcastd {version} is running ({})\n", path.display())
        }
        Request::Listen { .. } => unreachable!("handled above"),
    };
    print!("{text}");
    Ok(())
}

fn parse_group(text: &str) -> anyhow::Result<IpAddr> {
    text.parse()
        .map_err(|_| anyhow::anyhow!("invalid group {text:?}: not an IPv4 or IPv6 address"))
}

fn to_json(object: &Map<String, Value>) -> String {
    let mut text = serde_json::to_string_pretty(object).expect("a JSON map always serializes");
    text.push('\n');
    text
}

fn membership_line(verb: &str, reply: &MembershipReply) -> String {
    format!(
        "{verb} {} on {} (users {})\n",
        reply.group, reply.iface, reply.users
    )
}

fn show_tables(show: &ShowReply) -> String {
    let dash = || "-".to_string();
    let version = |prefix: &str, v: Option<u8>| v.map_or_else(dash, |v| format!("{prefix}{v}"));
    let interfaces = show
        .interfaces
        .iter()
        .map(|i| {
            vec![
                i.iface.clone(),
                i.ipv4.clone().unwrap_or_else(dash),
                i.ipv6_ll.clone().unwrap_or_else(dash),
                version("IGMPv", i.igmp_version),
                i.igmp_v1_router_present_ms.map_or_else(dash, seconds),
                i.igmp_v2_querier_present_ms.map_or_else(dash, seconds),
                version("MLDv", i.mld_version),
                i.mld_v1_querier_present_ms.map_or_else(dash, seconds),
            ]
        })
        .collect();
    let groups = show
        .groups
        .iter()
        .map(|g| {
            vec![
                g.iface.clone(),
                g.group.clone(),
                g.users.to_string(),
                g.state.clone().unwrap_or_else(dash),
                g.timer_ms.map_or_else(dash, seconds),
                match g.last_reporter {
                    Some(true) => "yes".into(),
                    Some(false) => "no".into(),
                    None => dash(),
                },
                filter_text(g),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "IFACE",
            "IPV4",
            "IPV6-LL",
            "IGMP",
            "V1-QUERIER-LEFT",
            "V2-QUERIER-LEFT",
            "MLD",
            "MLDV1-QUERIER-LEFT",
        ],
        interfaces,
    );
    out.push('\n');
    out.push_str(&table(
        &[
            "IFACE",
            "GROUP",
            "USERS",
            "STATE",
            "TIMER",
            "LAST-REPORTER",
            "FILTER",
        ],
        groups,
    ));
    if show.groups.is_empty() {
        out.push_str("(no groups joined)\n");
    }
    if !show.listeners.is_empty() {
        out.push('\n');
        out.push_str(&listener_table(&show.listeners));
    }
    out
}

fn listener_table(listeners: &[tools::ListenerInfo]) -> String {
    let rows = listeners
        .iter()
        .map(|l| {
            vec![
                l.id.to_string(),
                l.iface.clone(),
                l.group.clone(),
                l.port.map_or_else(|| "any".into(), |p| p.to_string()),
                format!("{} {{{}}}", l.filter_mode, l.sources.join(",")),
                l.delivered.to_string(),
                l.dropped.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "LISTENER",
            "IFACE",
            "GROUP",
            "PORT",
            "FILTER",
            "DELIVERED",
            "DROPPED",
        ],
        rows,
    )
}

/// "include {10.0.0.1,10.0.0.2}", "exclude {10.0.0.9}", and "exclude {} (any source)": an
/// empty EXCLUDE filter is what a plain join asks for, and it is spelled out for the reader.
fn filter_text(g: &tools::GroupInfo) -> String {
    match &g.filter_mode {
        Some(mode) if mode == "exclude" && g.sources.is_empty() => "exclude {} (any source)".into(),
        Some(mode) => format!("{mode} {{{}}}", g.sources.join(",")),
        None => "-".into(),
    }
}

fn stats_table(stats: &Map<String, Value>) -> String {
    let rows = stats
        .iter()
        .map(|(name, value)| vec![name.clone(), value.to_string()])
        .collect();
    table(&["NAME", "VALUE"], rows)
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

/// Left-aligned columns two spaces apart, no trailing blanks.
fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            line.push_str(&format!("{cell:<width$}  "));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_trim() {
        let text = table(
            &["NAME", "VALUE"],
            vec![
                vec!["igmp_snd_reports".into(), "3".into()],
                vec!["x".into(), "12".into()],
            ],
        );
        assert_eq!(
            text,
            "NAME              VALUE\nigmp_snd_reports  3\nx                 12\n"
        );
    }

    #[test]
    fn show_renders_both_tables() {
        let show: ShowReply = serde_json::from_str(
            r#"{"interfaces":[{"iface":"tun0","ipv4":"10.99.0.2","ipv6_ll":"fe80::2",
                "igmp_version":1,"igmp_v1_router_present_ms":12345,"mld_version":1}],
                "groups":[{"iface":"tun0","group":"239.1.2.3","family":"ipv4","users":2,
                "state":"delaying","timer_ms":1234,"last_reporter":true,
                "filter_mode":"exclude","sources":[]}]}"#,
        )
        .unwrap();
        let text = show_tables(&show);
        assert!(
            text.contains("tun0   10.99.0.2  fe80::2  IGMPv1  12.345s"),
            "{text}"
        );
        assert!(
            text.contains("239.1.2.3  2      delaying  1.234s  yes            exclude {}"),
            "{text}"
        );
    }
}
