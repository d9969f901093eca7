//! tunmcastd, the daemon: the membership core on real TUN and TAP devices, as a library
//! (its parts, for tests and for programs that embed the daemon) and a thin binary
//! (`src/main.rs`, which calls [`main`]).
//!
//! One mio event loop ([`daemon`]) owns all membership state: it reads IP packets from the
//! devices and hands them to the cores, writes what the cores want to send back onto the
//! devices, answers control requests arriving over a channel from the control thread, and
//! sleeps until the next timer deadline.

pub mod config;
pub mod control;
pub mod counters;
pub mod daemon;
pub mod datapath;
pub mod delays;
pub mod framing;
pub mod http;
pub mod ids;
pub mod listeners;
pub mod log_buckets;
pub mod logging;
pub mod member_datagrams;
pub mod neighbour;
pub mod runs;
pub mod state;
pub mod streams;
pub mod testrun;
pub mod tokens;
pub mod topology;

use std::ffi::OsString;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser};

/// Host side of IGMP and MLD behind a TUN or TAP device: joins and leaves groups on request,
/// answers the multicast routers' queries, and reports its memberships on the link.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "tunmcastd",
    version,
    args_override_self = true,
    after_help = "Every option can also be given as a key of the --config file \
                  (log_level = \"debug\"); the command line wins over the file.\n\
                  Signals: SIGTERM, SIGINT and SIGQUIT leave every group on the wire and exit 0; \
                  SIGHUP re-reads the --config file and applies the log level and the `[[link]]` \
                  tables (links and hosts added and removed).\n\
                  Exit status: 0 after a clean stop, 1 on a runtime error, 2 on a usage or \
                  configuration error; with --run-test, 0 the test passed, 1 it failed, 2 it \
                  could not run."
)]
pub struct Args {
    /// The device to attach to: a TUN device (created if it does not exist), or with --tap a
    /// TAP device. `--tun` is the old spelling.
    /// Required unless the --config file has `[[link]]` tables.
    #[arg(long, visible_alias = "tun", value_name = "NAME")]
    pub iface: Option<String>,
    /// The device is a TAP: Ethernet frames, this host having its own MAC address.
    #[arg(long)]
    pub tap: bool,
    /// With --tap: this host's MAC address. Default: 02:00 followed by the four bytes of
    /// --ipv4 (locally administered, unique on the link when the IPv4 addresses are).
    #[arg(long, value_name = "MAC", requires = "tap")]
    pub mac: Option<framing::Mac>,
    /// This host's IPv4 address and prefix on the link: the source of its IGMP messages.
    /// Required unless the --config file has `[[link]]` tables.
    #[arg(long, value_name = "ADDR/PLEN", value_parser = parse_ipv4_prefix)]
    pub ipv4: Option<(Ipv4Addr, u8)>,
    /// This host's IPv6 link-local address: the source of its MLD messages. Default: fe80::
    /// followed by the 32 bits of --ipv4 (10.99.0.2 gives fe80::a63:2), unique on the link
    /// whenever the IPv4 addresses are.
    #[arg(long, value_name = "ADDR", value_parser = parse_link_local)]
    pub ipv6_ll: Option<Ipv6Addr>,
    /// Control socket. Default: /run/tunmcast/NAME.sock (NAME: the --iface, or with `[[link]]`
    /// tables the --config file's name without its extension).
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
    /// Keep memberships in this file and join them again on start.
    #[arg(long, value_name = "PATH")]
    pub state: Option<PathBuf>,
    /// Highest IGMP version to speak (as Linux's force_igmp_version): 3 falls back to 2 or 1
    /// while older queriers are present; 2 is an RFC 2236 host; 1 sends v1 reports only.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=3))]
    pub igmp_version: u8,
    /// Highest MLD version to speak: 2 falls back to 1 while an MLDv1 querier is present.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub mld_version: u8,
    /// Robustness Variable: how many times an unsolicited report is sent.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=10))]
    pub robustness: u8,
    /// Unsolicited Report Interval in ms for IGMPv1/v2 and MLDv1 (RFC default 10000).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub unsolicited_interval_ms: u64,
    /// Unsolicited Report Interval in ms for IGMPv3 and MLDv2 (RFC default 1000).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub v3_unsolicited_interval_ms: u64,
    /// Link MTU in bytes: IGMPv3 / MLDv2 reports are packed to fit it.
    #[arg(long, default_value_t = 1500, value_parser = clap::value_parser!(u16).range(576..))]
    pub mtu: u16,
    /// How many reports of a large General Query answer (one host's many groups) go out at
    /// once; the rest are spread evenly over what is left of the query's Max Resp Time, never
    /// past it, so that a router policing the IGMP/MLD it punts to its CPU hears them all.
    /// State-change reports are never held back. 0: every report at once, as the RFCs do.
    #[arg(long, value_name = "REPORTS", default_value_t = 8)]
    pub answer_burst: u32,
    /// Every answer to a query is drawn to be out this many ms before the query's Max Resp Time
    /// ends (at most a tenth of it): a loop serving many hosts fires their timers a little
    /// late, and the margin keeps that lag from carrying a report past the deadline the
    /// querier counts from. 0: the RFCs' whole interval.
    #[arg(long, value_name = "MS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub answer_margin_ms: u64,
    /// How the packets read from the devices are stamped with their arrival (the join delays,
    /// latencies and zap times measured from them): `kernel`, the time the kernel sent each
    /// frame to the device, from a packet socket's copy of it (a capture's time; needs
    /// CAP_NET_RAW and costs the kernel a clone of each frame, so taken only while delays,
    /// checked streams or a test run measure); `thread`, a thread woken by
    /// the first packet to reach an empty device (a wake-up later: tens of µs on an idle
    /// machine, a millisecond or more on a busy one); `read`, when the loop reads it. Links
    /// that cannot have `kernel` get `thread`.
    #[arg(long, value_enum, value_name = "HOW", default_value_t = ArrivalStamping::Kernel)]
    pub arrival_stamps: ArrivalStamping,
    /// Drop IGMP without Router Alert or with TTL other than 1 (default: accept and count, as
    /// the Linux kernel and FRR do).
    #[arg(long)]
    pub strict_igmp: bool,
    /// Accept MLD without Router Alert or with hop limit other than 1 (default: drop, as
    /// RFC 2710 and the Linux kernel do).
    #[arg(long)]
    pub lenient_mld: bool,
    /// Report 224.0.0.x groups (other than 224.0.0.1) too, as Linux does.
    #[arg(long)]
    pub report_link_local_groups: bool,
    /// Which emulated hosts join and report the solicited-node multicast group of their IPv6
    /// link-local address (ff02::1:ffXX:XXXX, RFC 4861 §7.2.1), as an IPv6 host does, so that
    /// an MLD-snooping switch delivers them the Neighbour Solicitations they answer: `auto`,
    /// the hosts of TAP links (TUN links have no link-layer addresses, hence no neighbour
    /// discovery); `on`, every host; `off`, none (silence). The join belongs to the owner
    /// `solicited-node`.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = SolicitedNode::Auto)]
    pub solicited_node: SolicitedNode,
    /// Seed for the random report delays (default: from the clock and pid).
    #[arg(long)]
    pub seed: Option<u64>,
    /// What to log: a level (error, warn, info, debug, trace, off) or env_logger directives
    /// (info,stack::control=debug). Default: $RUST_LOG, else info. Reloaded on SIGHUP from the
    /// --config file.
    #[arg(long, value_name = "LEVEL", value_parser = parse_log_level)]
    pub log_level: Option<String>,
    /// A TOML file of options (keys are the long option names). Re-read on SIGHUP.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Measure RFC 3918 join and leave delays (`tunmcastctl delays`): a timestamp pair per
    /// (host, group), about 100 bytes each, so off unless asked for.
    #[arg(long)]
    pub delays: bool,
    /// Check the test streams' datagrams the hosts receive, per (host, source, group), from
    /// the start (`tunmcastctl streams`): on without it when the file has `[[stream]]` tables
    /// or with --delays; otherwise from the first `stream add` on (joins made before are not
    /// seen).
    #[arg(long)]
    pub check_streams: bool,
    /// Label the test streams' counters per stream in `stats --prometheus` and `/metrics`
    /// (`tunmcast_per_stream_..._total{stream,link,source,group}`), for the first N streams by
    /// id (1 to 1000): off by default, so that the label sets stay bounded.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(::control::streams::MAX_STREAM_METRICS)))]
    pub stream_metrics: Option<u32>,
    /// Serve a read-only view over HTTP on ADDR:PORT: `/metrics` (Prometheus), `/api/...`
    /// (JSON) and `/` (a live page). Off by default; a loopback address unless --http-public.
    #[arg(long, value_name = "ADDR:PORT")]
    pub http: Option<std::net::SocketAddr>,
    /// Allow --http on an address other than loopback: the view is then reachable from the
    /// network, without authentication (logged at start).
    #[arg(long, requires = "http")]
    pub http_public: bool,
    /// Run one test and exit: once the links are open, the first `[[test]]` table of FILE
    /// (its `[[stream]]` tables sent for the run, removed after), as `tunmcastctl test run`
    /// does; then its reports to --out, every group left, and the exit status 0 when it
    /// passed, 1 when an SLA threshold was broken, 2 when it could not run (a bad file is
    /// refused with the file, the line and the key before anything starts) or was stopped.
    #[arg(long, value_name = "FILE")]
    pub run_test: Option<PathBuf>,
    /// With --run-test: the directory (created) for `report.json`, `junit.xml` and
    /// `report.html`, as `tunmcastctl test run --out DIR` writes them.
    #[arg(long, value_name = "DIR", requires = "run_test")]
    pub out: Option<PathBuf>,
}

/// `--arrival-stamps`: how the packets read are stamped with their arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ArrivalStamping {
    /// The kernel's time of sending the frame to the device.
    Kernel,
    /// A thread's time of seeing the first packet reach an empty device.
    Thread,
    /// The loop's time of reading it.
    Read,
}

/// `--solicited-node`: which hosts join their solicited-node group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SolicitedNode {
    /// The hosts of TAP links, which do neighbour discovery.
    Auto,
    /// Every host.
    On,
    /// None.
    Off,
}

impl SolicitedNode {
    /// Whether a host with (`tap`) or without link-layer addresses joins the group.
    pub fn joins(self, tap: bool) -> bool {
        match self {
            SolicitedNode::Auto => tap,
            SolicitedNode::On => true,
            SolicitedNode::Off => false,
        }
    }
}

impl Args {
    pub fn unsolicited_interval(&self) -> Duration {
        Duration::from_millis(self.unsolicited_interval_ms)
    }

    /// The one-link form's IPv4 address (checked present by [`Args::topology`]).
    pub fn ipv4(&self) -> (Ipv4Addr, u8) {
        self.ipv4.unwrap_or((Ipv4Addr::UNSPECIFIED, 0))
    }

    pub fn ipv6_link_local(&self) -> Ipv6Addr {
        self.ipv6_ll.unwrap_or_else(|| {
            let v4 = u32::from(self.ipv4().0);
            Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, (v4 >> 16) as u16, v4 as u16)
        })
    }

    pub fn mac(&self) -> framing::Mac {
        self.mac.unwrap_or_else(|| {
            let o = self.ipv4().0.octets();
            framing::Mac([0x02, 0x00, o[0], o[1], o[2], o[3]])
        })
    }

    pub fn control_path(&self) -> PathBuf {
        let name = match (&self.iface, &self.config) {
            (Some(iface), _) => iface.clone(),
            (None, Some(config)) => config
                .file_stem()
                .map_or("tunmcastd".into(), |s| s.to_string_lossy().into_owned()),
            (None, None) => "tunmcastd".into(),
        };
        self.control
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("/run/tunmcast/{name}.sock")))
    }

    /// The links and hosts to serve: the `[[link]]` tables of the --config `file` (its
    /// top-level keys and the command line giving their defaults), else the one link of the
    /// command line; with the file's `[[stream]]` tables.
    pub fn topology(
        &self,
        file: Option<&config::ConfigFile>,
    ) -> Result<topology::Topology, ArgsError> {
        let defaults = topology::HostParams::from_args(self);
        if let Some(file) = file {
            if let Some(topology) =
                config::links::topology(file, defaults).map_err(ArgsError::Config)?
            {
                if self.iface.is_some() || self.ipv4.is_some() {
                    return Err(ArgsError::Config(config::ConfigError {
                        path: file.path.clone(),
                        line: 0,
                        message: "--iface and --ipv4 describe the one link of the command \
                                  line, and this file has `[[link]]` tables: give them in a \
                                  `[[link]]` instead"
                            .into(),
                    }));
                }
                return Self::with_streams(topology, file);
            }
        }
        let mut missing = Vec::new();
        if self.iface.is_none() {
            missing.push("--iface <NAME>");
        }
        if self.ipv4.is_none() {
            missing.push("--ipv4 <ADDR/PLEN>");
        }
        if !missing.is_empty() {
            return Err(ArgsError::Usage(Args::command().error(
                clap::error::ErrorKind::MissingRequiredArgument,
                format!(
                    "the following required arguments were not provided: {} (or a --config \
                     file with `[[link]]` tables)",
                    missing.join(" ")
                ),
            )));
        }
        let topology = topology::Topology::from_args(self);
        match file {
            Some(file) => Self::with_streams(topology, file),
            None => Ok(topology),
        }
    }

    /// `topology` with the `[[stream]]` tables of `file`, each on one of its links.
    fn with_streams(
        mut topology: topology::Topology,
        file: &config::ConfigFile,
    ) -> Result<topology::Topology, ArgsError> {
        let devices: Vec<&str> = topology.links.iter().map(|l| l.device.as_str()).collect();
        topology.streams = config::streams::streams(file, &devices).map_err(ArgsError::Config)?;
        Ok(topology)
    }

    /// `--http` on a non-loopback address needs `--http-public`: the view has no
    /// authentication.
    pub fn check_http(&self) -> Result<(), ArgsError> {
        match self.http {
            Some(addr) if !addr.ip().is_loopback() && !self.http_public => {
                Err(ArgsError::Usage(Args::command().error(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!(
                        "--http {addr} is not a loopback address: the view has no \
                         authentication; add --http-public to serve it beyond this host"
                    ),
                )))
            }
            _ => Ok(()),
        }
    }

    /// The options that differ from `running`, other than those a reload applies (the log
    /// level), by their long names.
    pub fn differs_beyond_reloadable(&self, running: &Args) -> Vec<&'static str> {
        let reloaded = Args {
            log_level: running.log_level.clone(),
            ..self.clone()
        };
        if reloaded == *running {
            return Vec::new();
        }
        let mut names = Vec::new();
        let mut differ = |name, changed: bool| {
            if changed {
                names.push(name)
            }
        };
        differ("iface", self.iface != running.iface);
        differ("tap", self.tap != running.tap);
        differ("mac", self.mac != running.mac);
        differ("ipv4", self.ipv4 != running.ipv4);
        differ("ipv6_ll", self.ipv6_ll != running.ipv6_ll);
        differ("control", self.control != running.control);
        differ("state", self.state != running.state);
        differ("igmp_version", self.igmp_version != running.igmp_version);
        differ("mld_version", self.mld_version != running.mld_version);
        differ("robustness", self.robustness != running.robustness);
        differ(
            "unsolicited_interval_ms",
            self.unsolicited_interval_ms != running.unsolicited_interval_ms,
        );
        differ(
            "v3_unsolicited_interval_ms",
            self.v3_unsolicited_interval_ms != running.v3_unsolicited_interval_ms,
        );
        differ("mtu", self.mtu != running.mtu);
        differ("answer_burst", self.answer_burst != running.answer_burst);
        differ(
            "answer_margin_ms",
            self.answer_margin_ms != running.answer_margin_ms,
        );
        differ(
            "arrival_stamps",
            self.arrival_stamps != running.arrival_stamps,
        );
        differ("strict_igmp", self.strict_igmp != running.strict_igmp);
        differ("lenient_mld", self.lenient_mld != running.lenient_mld);
        differ(
            "solicited_node",
            self.solicited_node != running.solicited_node,
        );
        differ(
            "report_link_local_groups",
            self.report_link_local_groups != running.report_link_local_groups,
        );
        differ("seed", self.seed != running.seed);
        differ("config", self.config != running.config);
        differ("delays", self.delays != running.delays);
        differ("check_streams", self.check_streams != running.check_streams);
        differ(
            "stream_metrics",
            self.stream_metrics != running.stream_metrics,
        );
        differ("http", self.http != running.http);
        differ("http_public", self.http_public != running.http_public);
        differ("run_test", self.run_test != running.run_test);
        differ("out", self.out != running.out);
        names
    }

    /// The log filter in force: --log-level, else $RUST_LOG, else info.
    pub fn log_filter(&self) -> String {
        self.log_level
            .clone()
            .or_else(|| {
                std::env::var("RUST_LOG")
                    .ok()
                    .filter(|f| logging::check_filter(f).is_ok())
            })
            .unwrap_or_else(|| logging::DEFAULT_FILTER.to_string())
    }

    /// Parses the command line of this process, with the --config file's options before it.
    /// Usage and configuration errors print one message and exit with status 2.
    pub fn from_command_line() -> (Args, topology::Topology, Vec<config::TestTable>) {
        let argv: Vec<OsString> = std::env::args_os().collect();
        let parsed = Args::from_argv(&argv).and_then(|(args, file)| {
            args.check_http()?;
            let topology = args.topology(file.as_ref())?;
            Ok((topology, args, file.map(|f| f.tests).unwrap_or_default()))
        });
        match parsed {
            Ok((topology, args, tests)) => (args, topology, tests),
            Err(ArgsError::Usage(e)) => e.exit(),
            Err(ArgsError::Config(e)) => {
                eprintln!("tunmcastd: {e}");
                std::process::exit(2)
            }
        }
    }

    /// Parses `argv` (the program name first) with the --config file's options before it;
    /// the file, read and parsed once, is returned for its tables.
    pub fn from_argv(argv: &[OsString]) -> Result<(Args, Option<config::ConfigFile>), ArgsError> {
        let (from_file, file) = match config::config_path(argv) {
            Some(path) => {
                let file = config::ConfigFile::read(&path).map_err(ArgsError::Config)?;
                (
                    config::args_from_options(&file).map_err(ArgsError::Config)?,
                    Some(file),
                )
            }
            None => (Vec::new(), None),
        };
        let args =
            Args::try_parse_from(config::merged_argv(argv, from_file)).map_err(ArgsError::Usage)?;
        Ok((args, file))
    }
}

/// Why a command line, with its configuration file, was refused.
#[derive(Debug)]
pub enum ArgsError {
    /// clap's own error: it prints itself, with usage, and knows its exit status.
    Usage(clap::Error),
    Config(config::ConfigError),
}

impl std::fmt::Display for ArgsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArgsError::Usage(e) => {
                let text = e.to_string();
                f.write_str(
                    text.lines()
                        .next()
                        .unwrap_or_default()
                        .trim_start_matches("error: "),
                )
            }
            ArgsError::Config(e) => e.fmt(f),
        }
    }
}

fn parse_log_level(s: &str) -> Result<String, String> {
    logging::check_filter(s).map(|()| s.trim().to_string())
}

fn parse_ipv4_prefix(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let (addr, plen) = s
        .split_once('/')
        .ok_or_else(|| format!("{s}: expected ADDR/PLEN, e.g. 10.99.0.2/24"))?;
    let addr: Ipv4Addr = addr
        .parse()
        .map_err(|_| format!("{addr}: not an IPv4 address"))?;
    let plen: u8 = plen
        .parse()
        .ok()
        .filter(|p| *p <= 32)
        .ok_or_else(|| format!("{plen}: prefix length must be 0 to 32"))?;
    if addr.is_unspecified() || addr.is_multicast() || addr.is_broadcast() {
        return Err(format!("{addr}: not a usable host address"));
    }
    Ok((addr, plen))
}

fn parse_link_local(s: &str) -> Result<Ipv6Addr, String> {
    let addr: Ipv6Addr = s.parse().map_err(|_| format!("{s}: not an IPv6 address"))?;
    if addr.segments()[0] & 0xffc0 != 0xfe80 {
        return Err(format!("{addr}: not a link-local (fe80::/10) address"));
    }
    Ok(addr)
}

/// The whole of `tunmcastd`: reads the command line (and the `--config` file), runs the loop
/// until a signal stops it, and says how it ended.
pub fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    if let Some(status) = clidoc::handle(&argv, Args::command(), "8") {
        return status;
    }
    let (args, topology, tests) = Args::from_command_line();
    logging::init(&args.log_filter());
    // --run-test: the file is read and checked before anything starts.
    let one_shot = match &args.run_test {
        Some(file) => match testrun::oneshot::OneShot::load(file, args.out.clone()) {
            Ok(one) => Some(std::sync::Arc::new(one)),
            Err(e) => {
                eprintln!("tunmcastd: --run-test {e}");
                return ExitCode::from(testrun::oneshot::CANNOT_RUN);
            }
        },
        None => None,
    };
    let result = daemon::run(args, topology, tests, one_shot.clone());
    if let Err(e) = &result {
        eprintln!("tunmcastd: {e:#}");
    }
    match (result, one_shot) {
        // Its verdict's status; none when the daemon stopped before the run was over.
        (_, Some(one)) => ExitCode::from(one.exit_code().unwrap_or(testrun::oneshot::CANNOT_RUN)),
        (Ok(()), None) => ExitCode::SUCCESS,
        (Err(_), None) => ExitCode::FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_link_local_comes_from_ipv4() {
        let args = Args::parse_from(["tunmcastd", "--tun", "t0", "--ipv4", "10.99.0.2/24"]);
        assert_eq!(
            args.ipv6_link_local(),
            "fe80::a63:2".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(args.control_path(), PathBuf::from("/run/tunmcast/t0.sock"));
        assert_eq!(args.mac().to_string(), "02:00:0a:63:00:02");
    }

    #[test]
    fn bad_arguments_are_refused() {
        for bad in [
            vec!["--ipv4", "10.99.0.2"],
            vec!["--ipv4", "10.99.0.2/33"],
            vec!["--ipv4", "239.1.1.1/24"],
            vec!["--ipv4", "10.99.0.2/24", "--ipv6-ll", "2001:db8::1"],
            vec!["--ipv4", "10.99.0.2/24", "--igmp-version", "4"],
            vec!["--ipv4", "10.99.0.2/24", "--mld-version", "3"],
            // --out is --run-test's.
            vec!["--ipv4", "10.99.0.2/24", "--out", "reports"],
            vec!["--ipv4", "10.99.0.2/24", "--robustness", "0"],
            vec!["--ipv4", "10.99.0.2/24", "--mac", "02:00:00:00:00:01"],
            vec![
                "--ipv4",
                "10.99.0.2/24",
                "--tap",
                "--mac",
                "01:00:5e:00:00:01",
            ],
        ] {
            let mut argv = vec!["tunmcastd", "--tun", "t0"];
            argv.extend(bad.iter());
            assert!(Args::try_parse_from(&argv).is_err(), "{argv:?}");
        }
    }

    #[test]
    fn http_is_loopback_unless_public() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["tunmcastd", "--tun", "t0", "--ipv4", "10.99.0.2/24"];
            argv.extend(extra);
            Args::try_parse_from(&argv)
        };
        assert_eq!(parse(&[]).unwrap().http, None);
        let local = parse(&["--http", "127.0.0.1:9464"]).unwrap();
        assert_eq!(local.http, Some("127.0.0.1:9464".parse().unwrap()));
        assert!(local.check_http().is_ok());
        assert!(parse(&["--http", "[::1]:9464"])
            .unwrap()
            .check_http()
            .is_ok());
        let public = parse(&["--http", "0.0.0.0:9464"]).unwrap();
        let error = public.check_http().unwrap_err().to_string();
        assert!(error.contains("--http-public"), "{error}");
        assert!(parse(&["--http", "0.0.0.0:9464", "--http-public"])
            .unwrap()
            .check_http()
            .is_ok());
        assert!(parse(&["--http-public"]).is_err(), "--http-public alone");
        assert!(parse(&["--http", "localhost"]).is_err());
    }
}
