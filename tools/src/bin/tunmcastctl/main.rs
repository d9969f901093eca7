//! tunmcastctl: join and leave groups, receive their traffic, inspect a running tunmcastd.

mod render;
mod streams;
mod test;

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use serde_json::{Map, Value};
use tools::protocol::{
    Change, ChangeReply, DelaysArgs, FilterArgs, ListenArgs, PingReply, ShowArgs, StatsArgs,
    StatsReply,
};
use tools::{Client, ClientError, Request};

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
        /// IPv4 or IPv6 multicast address, e.g. 239.1.2.3 or ff12::1234; GROUP+COUNT joins
        /// COUNT consecutive groups from GROUP in one request (239.1.0.0+1000).
        group: String,
        #[command(flatten)]
        iface: IfaceArg,
        #[command(flatten)]
        filter: JoinFilter,
        /// The join's owner, like a socket: the owner's request only. A second join of the
        /// same owner adds --include sources to its INCLUDE filter; anything else is refused
        /// (change it with `filter`).
        #[arg(long, value_name = "NAME")]
        owner: Option<String>,
    },
    /// Leave GROUP: without a filter, drop one anonymous any-source join (or, with none left,
    /// every anonymous request for the group); --include S drops sources S from the anonymous
    /// INCLUDE joins; --exclude S drops the anonymous EXCLUDE join with exactly those sources.
    /// With --owner, the same on that owner's request only.
    Leave {
        /// IPv4 or IPv6 multicast address, as given to join; GROUP+COUNT leaves COUNT
        /// consecutive groups.
        group: String,
        #[command(flatten)]
        iface: IfaceArg,
        #[command(flatten)]
        filter: LeaveFilter,
        /// Act on this owner's request only (see join --owner).
        #[arg(long, value_name = "NAME")]
        owner: Option<String>,
    },
    /// Set one owner's source filter for GROUP in one step, as setsourcefilter(3) does for a
    /// socket: INCLUDE (A) -> INCLUDE (B) is one change, reported at once as ALLOW (B - A) and
    /// BLOCK (A - B). Made if the owner holds none; --include "" drops it.
    Filter {
        /// IPv4 or IPv6 multicast address.
        group: String,
        /// Whose filter: a name of 1 to 64 printable characters.
        #[arg(long, value_name = "NAME")]
        owner: String,
        #[command(flatten)]
        iface: IfaceArg,
        #[command(flatten)]
        filter: SetFilter,
    },
    /// Receive the group's UDP datagrams: a join of its own for as long as this runs. Prints
    /// one line per datagram (--json: one object), or forwards payloads with --udp-to.
    Listen {
        /// GROUP or GROUP:PORT (`[GROUP]:PORT` for IPv6): with a port, only datagrams to it.
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
    /// listeners. A filter `exclude {}` means from any source. Groups are listed as the daemon
    /// reads them, streamed: any number of them.
    Show {
        /// Only this group.
        group: Option<String>,
        /// Only the hosts (and their groups) on this interface, or the --host / --hosts given.
        #[command(flatten)]
        iface: IfaceArg,
        /// At most N groups.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
    },
    /// Every protocol and I/O counter.
    Stats {
        /// In the Prometheus text format (tunmcast_*_total counters with HELP and TYPE lines),
        /// for node_exporter's textfile collector or a scrape.
        #[arg(long, conflicts_with = "json")]
        prometheus: bool,
        /// Only this link's device counters and its hosts' summed.
        #[arg(long = "iface", visible_alias = "dev", value_name = "NAME")]
        iface: Option<String>,
        /// Only this emulated host's counters.
        #[arg(long, value_name = "ADDR", conflicts_with = "iface")]
        host: Option<IpAddr>,
    },
    /// RFC 3918 join and leave delays, measured at the device: from the first report written
    /// to the first datagram of the group read, from the leave written to the last datagram
    /// read. Per group and overall (count, p50, p99, max), and the (host, group) pairs never
    /// forwarded or still forwarded after the leave.
    Delays {
        /// Forget every measurement after printing them.
        #[arg(long)]
        reset: bool,
        /// List at most N pairs in each list.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// Check that the daemon answers.
    Ping,
    /// Multicast test streams the daemon sends: add, remove, start, stop.
    #[command(subcommand)]
    Stream(streams::StreamCommand),
    /// The test streams sent (packets, rate) and what the hosts received of each (host,
    /// source, group): received, lost, duplicates, reordered, source leaks (a source the
    /// host's filter excludes), datagrams after the leave's grace, bytes, one-way latency
    /// (min, p50, p99, max), with totals.
    Streams(streams::StreamsFilter),
    /// Test runs: IPTV zapping, the RFC 3918 join/leave delay procedure, their results and
    /// reports (JSON, JUnit, HTML). With --wait: exit 0 pass, 1 fail, 2 could not run.
    Test {
        #[command(subcommand)]
        command: test::TestCommand,
    },
}

/// The interface and the emulated hosts a request applies to.
#[derive(clap::Args)]
struct IfaceArg {
    /// The daemon's interface (its TUN or TAP device) to act on; default: the first it
    /// serves.
    #[arg(long = "iface", visible_alias = "dev", value_name = "NAME")]
    name: Option<String>,
    /// The emulated host to act as, by its IPv4 or IPv6 link-local address; default: the
    /// first host of the interface.
    #[arg(long, value_name = "ADDR")]
    host: Option<IpAddr>,
    /// Every emulated host of an IPv4 range, both ends included (10.99.1.10-10.99.1.109).
    #[arg(long, value_name = "FIRST-LAST", value_parser = tools::protocol::parse_host_range, conflicts_with = "host")]
    hosts: Option<tools::protocol::HostRange>,
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

/// The filter `filter` sets: exactly one of the two.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct SetFilter {
    /// Receive from these sources only (INCLUDE mode); "" for none: the owner leaves.
    #[arg(long, value_name = "S1,S2,...", value_delimiter = ',')]
    include: Option<Vec<String>>,
    /// Receive from every source but these (EXCLUDE mode); "" for any source.
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
        // `--include ""` is the empty list.
        let parsed = sources
            .iter()
            .filter(|s| !s.trim().is_empty())
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
    if let Command::Test { command } = cli.command {
        return test::main(cli.control.as_deref(), cli.json, command);
    }
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
    // Check the arguments before looking for a daemon: a typo is the more useful error.
    let request = match cli.command {
        Command::Join {
            ref group,
            ref iface,
            ref filter,
            ref owner,
        } => Request::Join(Change {
            owner: owner.clone(),
            ..change(group, iface, &filter.include, &filter.exclude)?
        }),
        Command::Leave {
            ref group,
            ref iface,
            ref filter,
            ref owner,
        } => Request::Leave(Change {
            owner: owner.clone(),
            ..change(group, iface, &filter.include, &filter.exclude)?
        }),
        Command::Filter {
            ref group,
            ref owner,
            ref iface,
            ref filter,
        } => {
            let group = parse_group(group)?;
            let (include, exclude) = parse_sources(&group, &filter.include, &filter.exclude)?;
            Request::Filter(FilterArgs {
                group,
                owner: owner.clone(),
                include,
                exclude,
                iface: iface.name.clone(),
                host: iface.host,
                hosts: iface.hosts,
            })
        }
        Command::Listen {
            ref group,
            ref iface,
            ref filter,
            count,
            udp_to,
        } => {
            let (group, port) =
                tools::listen::parse_group_port(group).map_err(anyhow::Error::msg)?;
            let (include, exclude) = parse_sources(&group, &filter.include, &filter.exclude)?;
            let request = Request::Listen(ListenArgs {
                group,
                port,
                iface: iface.name.clone(),
                host: iface.host,
                hosts: iface.hosts,
                include,
                exclude,
            });
            let options = tools::listen::ListenOptions {
                count,
                json: cli.json,
                udp_to,
            };
            let path = tools::control_path(cli.control.as_deref())?;
            return tools::listen::listen(&path, &request, &options);
        }
        Command::Show {
            ref group,
            ref iface,
            limit,
        } => Request::Show(ShowArgs {
            group: group.as_deref().map(parse_group).transpose()?,
            iface: iface.name.clone(),
            host: iface.host,
            hosts: iface.hosts,
            limit,
        }),
        Command::Stats {
            ref iface, host, ..
        } => Request::Stats(StatsArgs {
            iface: iface.clone(),
            host,
        }),
        Command::Delays { reset, limit } => Request::Delays(DelaysArgs { reset, limit }),
        Command::Ping => Request::Ping,
        Command::Stream(ref command) => command.request()?,
        Command::Streams(ref filter) => filter.request(),
        Command::Test { .. } => unreachable!("handled in main"),
    };
    let path = tools::control_path(cli.control.as_deref())?;
    let mut client = Client::connect(&path)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let text = match &request {
        Request::Show(_) => return show(&mut client, &request, cli.json, &mut out),
        // The counters alone, as a flat object: what scripts read.
        Request::Stats(_) if cli.json => {
            let stats: StatsReply = decode(&path, client.request(&request)?)?;
            let mut text = serde_json::to_string_pretty(&stats.stats)?;
            text.push('\n');
            text
        }
        _ if cli.json => to_json(&client.request(&request)?),
        Request::Join(_) => change_line("joined", &decode(&path, client.request(&request)?)?),
        Request::Leave(_) => change_line("left", &decode(&path, client.request(&request)?)?),
        Request::Filter(_) => change_line("filtered", &decode(&path, client.request(&request)?)?),
        Request::Stats(_) => {
            let stats: StatsReply = decode(&path, client.request(&request)?)?;
            match cli.command {
                Command::Stats {
                    prometheus: true, ..
                } => render::prometheus(&stats),
                _ => render::stats_table(&stats),
            }
        }
        Request::Delays(_) => render::delays(&decode(&path, client.request(&request)?)?),
        Request::Ping => {
            let ping: PingReply = decode(&path, client.request(&request)?)?;
            format!(
                "tunmcastd {} is running ({})\n",
                ping.version,
                path.display()
            )
        }
        Request::StreamAdd(_) => {
            streams::ids_line("added", &decode(&path, client.request(&request)?)?)
        }
        Request::StreamRemove(_) => {
            streams::ids_line("removed", &decode(&path, client.request(&request)?)?)
        }
        Request::StreamStart(_) => {
            streams::ids_line("started", &decode(&path, client.request(&request)?)?)
        }
        Request::StreamStop(_) => {
            streams::ids_line("stopped", &decode(&path, client.request(&request)?)?)
        }
        Request::Streams(_) => streams::render(&decode(&path, client.request(&request)?)?),
        Request::Listen(_)
        | Request::TestStart(_)
        | Request::TestStatus(_)
        | Request::TestReport(_)
        | Request::TestStop(_) => unreachable!("handled above"),
    };
    out.write_all(text.as_bytes())?;
    Ok(())
}

/// A join or leave of GROUP or GROUP+COUNT.
fn change(
    group: &str,
    iface: &IfaceArg,
    include: &Option<Vec<String>>,
    exclude: &Option<Vec<String>>,
) -> anyhow::Result<Change> {
    let (first, count) = control::streams::group_and_count(group).map_err(anyhow::Error::msg)?;
    let (include, exclude) = parse_sources(&first, include, exclude)?;
    Ok(Change {
        group: Some(first),
        count,
        groups: None,
        iface: iface.name.clone(),
        host: iface.host,
        hosts: iface.hosts,
        include,
        exclude,
        owner: None,
    })
}

/// `show`: the tables, or with --json the daemon's reply copied through as it streams in.
fn show(
    client: &mut Client,
    request: &Request,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if json {
        client.request_into(request, out)?;
        return Ok(());
    }
    client.send(request)?;
    let path = client.path().to_path_buf();
    let mut printer = render::ShowPrinter::new(out);
    let summary = tools::show_stream::read_show(client.reader(), &mut printer);
    printer.finish(summary.is_ok())?;
    match summary {
        Ok(_) => Ok(()),
        Err(tools::show_stream::ShowError::Refused(e)) => Err(ClientError::Daemon(e).into()),
        Err(tools::show_stream::ShowError::Bad(detail)) => {
            Err(ClientError::BadReply { path, detail }.into())
        }
    }
}

fn parse_group(text: &str) -> anyhow::Result<IpAddr> {
    text.trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid group {text:?}: not an IPv4 or IPv6 address"))
}

fn decode<T: serde::de::DeserializeOwned>(
    path: &Path,
    reply: Map<String, Value>,
) -> Result<T, ClientError> {
    tools::decode(path, &reply)
}

fn to_json(object: &Map<String, Value>) -> String {
    let mut text = serde_json::to_string_pretty(object).expect("a JSON map always serializes");
    text.push('\n');
    text
}

fn change_line(verb: &str, reply: &ChangeReply) -> String {
    let on = if reply.hosts > 1 {
        format!("{} hosts from {}", reply.hosts, reply.iface)
    } else {
        reply.iface.clone()
    };
    let mut line = if reply.count == 1 {
        format!("{verb} {} on {on} (users {})", reply.group, reply.users)
    } else {
        format!("{verb} {} groups from {} on {on}", reply.count, reply.group)
    };
    if let Some(warning) = &reply.warning {
        line.push_str(&format!(" (warning: {warning})"));
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_plus_count_is_a_batch() {
        let iface = IfaceArg {
            name: None,
            host: None,
            hosts: None,
        };
        let c = change("239.1.0.0+1000", &iface, &None, &None).unwrap();
        assert_eq!(
            (c.group, c.count),
            (Some("239.1.0.0".parse().unwrap()), Some(1000))
        );
        assert_eq!(change("ff12::1", &iface, &None, &None).unwrap().count, None);
        for bad in ["239.1.0.0+0", "239.1.0.0+x", "239.1.0.0+", "x+3"] {
            assert!(change(bad, &iface, &None, &None).is_err(), "{bad}");
        }
    }
}
