//! `tunmcastctl test ...`: start a test run (zapping, RFC 3918 join/leave delay, one of the
//! configuration file's, or the first `[[test]]` of a file), follow it, fetch its reports.
//! With `--wait`, `run` and `start --wait`: exit 0 when it passed, 1 when an SLA threshold was
//! broken, 2 when it could not run (or was stopped: Ctrl-C or SIGTERM while waiting stops it,
//! its groups left, and the reports written say "stopped").

use std::io::{IsTerminal, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use control::test_capacity::CapacitySpec;
use control::test_traffic::TestTraffic;
use control::testrun::{
    JoinLeaveSpec, ReportFormat, RunState, Sla, TestReport, TestReportReply, TestSelect, TestSpec,
    TestStartArgs, TestStartReply, TestStatusReply, ZapMode, ZapOrder, ZappingSpec,
    DEFAULT_THRESHOLDS_MS,
};
use signal_hook::consts::{SIGINT, SIGTERM};
use tools::{Client, Request};

mod text;
use text::status_text;

/// Nanoseconds as milliseconds with three decimals.
fn ms(ns: u64) -> String {
    format!("{}.{:03}", ns / 1_000_000, ns % 1_000_000 / 1_000)
}

#[derive(Subcommand)]
pub enum TestCommand {
    /// IPTV channel zapping: each host joins a channel, watches it --view-ms, changes to the
    /// next (leave and join at one instant), --count joins in all; per zap the join delay
    /// (zap time), leave delay, overlap and "not received", measured at the device.
    Zapping {
        #[command(flatten)]
        hosts: TestHosts,
        /// The channels, all IPv4 (IGMP) or all IPv6 (MLD).
        #[arg(long, value_name = "G1,G2,...", value_delimiter = ',', required = true)]
        channels: Vec<IpAddr>,
        /// SSM: join each channel from this source only: one for every channel, or one per
        /// channel in order (default: any source).
        #[arg(long, value_name = "S1,S2,...", value_delimiter = ',')]
        sources: Vec<IpAddr>,
        #[arg(long, value_name = "MS", default_value_t = 1000)]
        view_ms: u64,
        /// Channel joins per host, the first included (default: one per channel).
        #[arg(long, value_name = "N")]
        count: Option<u32>,
        #[arg(long, value_enum, default_value = "sequential")]
        order: OrderArg,
        /// The random order's seed (default: the daemon's); the report gives the one used.
        #[arg(long, value_name = "S")]
        seed: Option<u64>,
        /// leave-join (the old channel's leave first) or join-leave.
        #[arg(long, value_enum, default_value = "leave-join")]
        mode: ModeArg,
        /// No datagram of the new channel within this: "not received".
        #[arg(long, value_name = "MS", default_value_t = 2000)]
        not_received_ms: u64,
        #[command(flatten)]
        common: Common,
    },
    /// RFC 3918 §6.1/§6.2: with the traffic running, check that nothing arrives, join every
    /// group, measure the join delay, leave after --hold-ms, measure the leave delay, check
    /// that nothing arrives after the grace; --iterations times. With --stream-link the run
    /// sends its own streams (§5 forwarding latency per group), and with --background-group
    /// and --background-count it loads the device with streams no host joins (§8 burdened).
    JoinDelay {
        #[command(flatten)]
        hosts: TestHosts,
        #[arg(long, value_name = "G1,G2,...", value_delimiter = ',', required = true)]
        groups: Vec<IpAddr>,
        #[arg(long, value_name = "N", default_value_t = 3)]
        iterations: u32,
        /// Before each join and after each leave's grace: nothing may arrive for this long.
        #[arg(long, value_name = "MS", default_value_t = 1000)]
        check_ms: u64,
        /// How long the groups are held.
        #[arg(long, value_name = "MS", default_value_t = 2000)]
        hold_ms: u64,
        #[command(flatten)]
        common: Common,
    },
    /// RFC 3918 §7.1 group capacity: with the run's own stream on every group
    /// (--stream-link, --source), one host joins --start-groups groups, then --step-groups
    /// more at each step up to --max-groups; a step passes when every group joined was
    /// forwarded (a datagram within --window-ms, at most --max-loss-per-group lost). The
    /// result: the largest count forwarded correctly.
    Capacity {
        #[command(flatten)]
        hosts: TestHosts,
        /// The first of the consecutive groups.
        #[arg(long, value_name = "GROUP")]
        first_group: IpAddr,
        #[arg(long, value_name = "N", default_value_t = 16)]
        start_groups: u32,
        #[arg(long, value_name = "N", default_value_t = 16)]
        step_groups: u32,
        #[arg(long, value_name = "N", default_value_t = 256)]
        max_groups: u32,
        /// How long each step lasts from its joins to its verdict.
        #[arg(long, value_name = "MS", default_value_t = 2000)]
        step_ms: u64,
        #[arg(long, value_name = "MS", default_value_t = 500)]
        window_ms: u64,
        #[arg(long, value_name = "N", default_value_t = 0)]
        max_loss_per_group: u64,
        #[command(flatten)]
        common: Common,
    },
    /// Start a `[[test]]` of the daemon's configuration file by its name.
    Start {
        name: String,
        #[command(flatten)]
        follow: Follow,
    },
    /// Run the first `[[test]]` table of FILE (a TOML file) to its end: implies --wait.
    Run {
        file: PathBuf,
        /// Write report.json, junit.xml and report.html into DIR.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Progress and results of the test runs (or of NAME): count, min, p50, p90, p99, max,
    /// mean of the join and leave delays, violation buckets, the SLA checks.
    Status {
        name: Option<String>,
        /// List at most N hosts (default 20; the report has them all).
        #[arg(long, value_name = "N")]
        host_limit: Option<usize>,
        /// List the hosts from the N-th on (in address order, from 0): the next page.
        #[arg(long, value_name = "N")]
        host_offset: Option<usize>,
    },
    /// Write the report of the latest run (or NAME): JSON, JUnit XML or one HTML page.
    Report {
        name: Option<String>,
        #[arg(long, default_value = "json")]
        format: ReportFormat,
        /// The file to write (default: standard output).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Stop the running test, leaving its groups: its report is marked stopped (partial).
    Stop { name: Option<String> },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum OrderArg {
    Sequential,
    Random,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ModeArg {
    LeaveJoin,
    JoinLeave,
}

/// The hosts of a test.
#[derive(Args)]
pub struct TestHosts {
    /// The daemon's interface; default: the first it serves.
    #[arg(long = "iface", visible_alias = "dev", value_name = "NAME")]
    iface: Option<String>,
    /// The emulated hosts, an IPv4 range (default: the interface's first host).
    #[arg(long, value_name = "FIRST-LAST", value_parser = tools::protocol::parse_host_range)]
    hosts: Option<tools::protocol::HostRange>,
}

/// What every test takes: its name, thresholds, SLA, and how to follow it.
#[derive(Args)]
pub struct Common {
    /// The run's name (default: zapping / join-delay).
    #[arg(long)]
    name: Option<String>,
    /// Datagrams of a group left count as its leave delay for this long.
    #[arg(long, value_name = "MS", default_value_t = 3000)]
    leave_grace_ms: u64,
    /// Join delay violation buckets (ms).
    #[arg(long, value_name = "MS,...", value_delimiter = ',')]
    thresholds: Option<Vec<u64>>,
    /// SLA: the largest join delay allowed (overall and per channel).
    #[arg(long, value_name = "MS")]
    max_join_delay_ms: Option<u64>,
    /// SLA: the largest leave delay allowed.
    #[arg(long, value_name = "MS")]
    max_leave_delay_ms: Option<u64>,
    /// SLA: the longest overlap allowed.
    #[arg(long, value_name = "MS")]
    max_overlap_ms: Option<u64>,
    /// SLA: how many zaps may miss their channel.
    #[arg(long, value_name = "N", default_value_t = 0)]
    max_not_received: u64,
    /// SLA (with --stream-link): datagrams lost while joined, overall and per channel.
    #[arg(long, value_name = "N")]
    max_loss: Option<u64>,
    /// SLA (with --stream-link): the largest p99 one-way latency per channel (µs).
    #[arg(long, value_name = "US")]
    max_latency_us: Option<u64>,
    /// SLA (capacity): the fewest groups the device must forward correctly.
    #[arg(long, value_name = "N")]
    min_capacity: Option<u32>,
    #[command(flatten)]
    traffic: Box<TrafficArgs>,
    #[command(flatten)]
    follow: Follow,
}

/// The run's own streams.
#[derive(Args)]
pub struct TrafficArgs {
    /// Send a stream of each channel on this link of the daemon (the source side of the
    /// device under test) for the run's length; only their datagrams count.
    #[arg(long, value_name = "LINK", requires = "source")]
    stream_link: Option<String>,
    /// The streams' source address.
    #[arg(long, value_name = "ADDR", requires = "stream_link")]
    source: Option<IpAddr>,
    /// Packets per second of each channel's stream (default 1000).
    #[arg(long, value_name = "N", requires = "stream_link")]
    pps: Option<u32>,
    /// RFC 3918 §8 (burdened): background streams from this group on, that no host joins.
    #[arg(long, value_name = "GROUP", requires = "background_count")]
    background_group: Option<IpAddr>,
    /// How many background streams (consecutive groups).
    #[arg(
        long,
        value_name = "N",
        requires = "background_group",
        requires = "stream_link"
    )]
    background_count: Option<u32>,
    /// Packets per second of each background stream (default: --pps).
    #[arg(long, value_name = "N", requires = "background_group")]
    background_pps: Option<u32>,
}

impl TrafficArgs {
    fn traffic(&self) -> Option<Box<TestTraffic>> {
        Some(Box::new(TestTraffic {
            link: self.stream_link.clone()?,
            source: self.source?,
            pps: self.pps,
            size: None,
            background_group: self.background_group,
            background_count: self.background_count.unwrap_or(0),
            background_pps: self.background_pps,
        }))
    }
}

/// Waiting for the end and writing the reports.
#[derive(Args)]
pub struct Follow {
    /// Wait for the end: exit 0 on pass, 1 on fail, 2 when it could not run.
    #[arg(long)]
    wait: bool,
    /// With --wait: write report.json, junit.xml and report.html into DIR.
    #[arg(long, value_name = "DIR", requires = "wait")]
    out: Option<PathBuf>,
}

impl Common {
    fn sla(&self) -> Sla {
        Sla {
            max_join_delay_ms: self.max_join_delay_ms,
            max_leave_delay_ms: self.max_leave_delay_ms,
            max_overlap_ms: self.max_overlap_ms,
            max_not_received: self.max_not_received,
            max_loss: self.max_loss,
            max_latency_us: self.max_latency_us,
            min_capacity: self.min_capacity,
        }
    }

    fn thresholds(&self) -> Vec<u64> {
        self.thresholds
            .clone()
            .unwrap_or_else(|| DEFAULT_THRESHOLDS_MS.to_vec())
    }
}

/// Exit status 2: the test could not run.
const CANNOT_RUN: u8 = control::testrun::EXIT_CANNOT_RUN;

/// Runs a `test` subcommand; the exit status as the module says.
pub fn main(control: Option<&Path>, json: bool, command: TestCommand) -> ExitCode {
    match run(control, json, command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tunmcastctl: {e}");
            ExitCode::from(CANNOT_RUN)
        }
    }
}

fn run(control: Option<&Path>, json: bool, command: TestCommand) -> anyhow::Result<ExitCode> {
    // The spec is checked here first: a bad argument is refused before looking for a daemon.
    let (start, follow) = match command {
        TestCommand::Zapping {
            hosts,
            channels,
            sources,
            view_ms,
            count,
            order,
            seed,
            mode,
            not_received_ms,
            common,
        } => {
            let spec = TestSpec::Zapping(ZappingSpec {
                name: common.name.clone().unwrap_or_else(|| "zapping".into()),
                iface: hosts.iface,
                hosts: hosts.hosts,
                channels,
                sources,
                view_ms,
                count,
                order: match order {
                    OrderArg::Sequential => ZapOrder::Sequential,
                    OrderArg::Random => ZapOrder::Random,
                },
                seed,
                mode: match mode {
                    ModeArg::LeaveJoin => ZapMode::LeaveJoin,
                    ModeArg::JoinLeave => ZapMode::JoinLeave,
                },
                not_received_ms,
                leave_grace_ms: common.leave_grace_ms,
                thresholds_ms: common.thresholds(),
                streams: common.traffic.traffic(),
                sla: common.sla(),
            });
            spec.check().map_err(anyhow::Error::msg)?;
            (given(spec), common.follow)
        }
        TestCommand::JoinDelay {
            hosts,
            groups,
            iterations,
            check_ms,
            hold_ms,
            common,
        } => {
            let spec = TestSpec::JoinLeave(JoinLeaveSpec {
                name: common.name.clone().unwrap_or_else(|| "join-delay".into()),
                iface: hosts.iface,
                hosts: hosts.hosts,
                groups,
                iterations,
                check_ms,
                hold_ms,
                leave_grace_ms: common.leave_grace_ms,
                thresholds_ms: common.thresholds(),
                streams: common.traffic.traffic(),
                sla: common.sla(),
            });
            spec.check().map_err(anyhow::Error::msg)?;
            (given(spec), common.follow)
        }
        TestCommand::Capacity {
            hosts,
            first_group,
            start_groups,
            step_groups,
            max_groups,
            step_ms,
            window_ms,
            max_loss_per_group,
            common,
        } => {
            let spec = TestSpec::Capacity(CapacitySpec {
                name: common.name.clone().unwrap_or_else(|| "capacity".into()),
                iface: hosts.iface,
                hosts: hosts.hosts,
                first_group,
                start_groups,
                step_groups,
                max_groups,
                step_ms,
                window_ms,
                max_loss_per_group,
                leave_grace_ms: common.leave_grace_ms,
                thresholds_ms: common.thresholds(),
                streams: common.traffic.traffic(),
                sla: common.sla(),
            });
            spec.check().map_err(anyhow::Error::msg)?;
            (given(spec), common.follow)
        }
        TestCommand::Start { name, follow } => (
            TestStartArgs {
                test: None,
                name: Some(name),
                streams: Vec::new(),
            },
            follow,
        ),
        TestCommand::Run { file, out } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", file.display()))?;
            let tables = control::test_file::test_tables(&text)
                .map_err(|e| anyhow::anyhow!("{}:{e}", file.display()))?;
            let Some(first) = tables.into_iter().next() else {
                anyhow::bail!("{}: no [[test]] table", file.display());
            };
            // Its [[stream]] tables: the daemon starts them with the run, removes them after.
            let streams = control::test_file::stream_tables(&text)
                .map_err(|e| anyhow::anyhow!("{}:{e}", file.display()))?;
            let start = TestStartArgs {
                streams,
                ..given(first.spec)
            };
            (start, Follow { wait: true, out })
        }
        TestCommand::Status {
            name,
            host_limit,
            host_offset,
        } => {
            let select = TestSelect {
                name,
                host_limit,
                host_offset,
                ..TestSelect::default()
            };
            let mut client = connect(control)?;
            let reply = client.request(&Request::TestStatus(select))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&reply)?);
            } else {
                let status: TestStatusReply = tools::decode(client.path(), &reply)?;
                if status.tests.is_empty() {
                    println!("no test has run");
                }
                for report in &status.tests {
                    print!("{}", status_text(report));
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        TestCommand::Report { name, format, out } => {
            let mut client = connect(control)?;
            let report = fetch(&mut client, name, format)?;
            match out {
                Some(path) => write_file(&path, &report.content)?,
                None => std::io::stdout().write_all(report.content.as_bytes())?,
            }
            return Ok(ExitCode::SUCCESS);
        }
        TestCommand::Stop { name } => {
            let mut client = connect(control)?;
            let reply = client.request(&Request::TestStop(TestSelect {
                name,
                ..TestSelect::default()
            }))?;
            let stopped: TestStartReply = tools::decode(client.path(), &reply)?;
            println!("stopped test {} ({})", stopped.name, stopped.kind);
            return Ok(ExitCode::SUCCESS);
        }
    };
    let mut client = connect(control)?;
    let reply = client.request(&Request::TestStart(start))?;
    let started: TestStartReply = tools::decode(client.path(), &reply)?;
    if json && !follow.wait {
        println!("{}", serde_json::to_string_pretty(&reply)?);
    } else {
        println!(
            "test {} ({}) started on {} hosts",
            started.name, started.kind, started.hosts
        );
    }
    if !follow.wait {
        return Ok(ExitCode::SUCCESS);
    }
    let report = wait(&mut client, &started.name)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", status_text(&report));
    }
    if let Some(dir) = &follow.out {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("{}: cannot create: {e}", dir.display()))?;
        for (format, file) in [
            (ReportFormat::Json, "report.json"),
            (ReportFormat::Junit, "junit.xml"),
            (ReportFormat::Html, "report.html"),
        ] {
            let rendered = fetch(&mut client, Some(started.name.clone()), format)?;
            write_file(&dir.join(file), &rendered.content)?;
        }
    }
    Ok(ExitCode::from(report.exit_status()))
}

fn given(spec: TestSpec) -> TestStartArgs {
    TestStartArgs {
        test: Some(spec),
        name: None,
        streams: Vec::new(),
    }
}

fn connect(control: Option<&Path>) -> anyhow::Result<Client> {
    let path = tools::control_path(control)?;
    Ok(Client::connect(&path)?)
}

fn fetch(
    client: &mut Client,
    name: Option<String>,
    format: ReportFormat,
) -> anyhow::Result<TestReportReply> {
    let reply = client.request(&Request::TestReport(TestSelect {
        name,
        format: Some(format),
        ..TestSelect::default()
    }))?;
    Ok(tools::decode(client.path(), &reply)?)
}

fn write_file(path: &Path, content: &str) -> anyhow::Result<()> {
    std::fs::write(path, content)
        .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", path.display()))
}

/// How often the run is asked for its progress (brief: O(1) for the daemon).
const POLL: Duration = Duration::from_millis(200);
/// A line of progress at most this often when not on a terminal.
const PROGRESS_LINE: Duration = Duration::from_secs(5);

/// Polls the run until it is over: a progress bar on a terminal, a line every few seconds
/// otherwise (on standard error); its final status. SIGINT or SIGTERM stops the run (once).
fn wait(client: &mut Client, name: &str) -> anyhow::Result<TestReport> {
    let terminal = std::io::stderr().is_terminal();
    let mut last_line = Instant::now();
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register(signal, interrupted.clone())?;
    }
    let mut stop_sent = false;
    loop {
        if interrupted.load(Ordering::Relaxed) && !stop_sent {
            stop_sent = true;
            eprintln!("\nstopping test {name}: leaving its groups");
            // Refused only when it ended meanwhile: the status below says how.
            let _ = client.request(&Request::TestStop(TestSelect {
                name: Some(name.to_string()),
                ..TestSelect::default()
            }));
        }
        let reply = client.request(&Request::TestStatus(TestSelect {
            name: Some(name.to_string()),
            brief: true,
            ..TestSelect::default()
        }))?;
        let mut status: TestStatusReply = tools::decode(client.path(), &reply)?;
        let Some(report) = status.tests.pop() else {
            anyhow::bail!("the daemon lost test {name}");
        };
        let done = report.zaps.min(report.zaps_planned);
        let planned = report.zaps_planned.max(1);
        if report.state != RunState::Running {
            if terminal {
                eprintln!();
            }
            // Over: its results, once (hosts listed as `test status` does).
            let reply = client.request(&Request::TestStatus(TestSelect {
                name: Some(name.to_string()),
                ..TestSelect::default()
            }))?;
            let mut status: TestStatusReply = tools::decode(client.path(), &reply)?;
            return status
                .tests
                .pop()
                .ok_or_else(|| anyhow::anyhow!("the daemon lost test {name}"));
        }
        if terminal {
            let filled = (done * 30 / planned) as usize;
            eprint!(
                "\r{name} [{}{}] {done}/{planned} zaps, {} s",
                "#".repeat(filled),
                " ".repeat(30 - filled),
                report.elapsed_ms / 1000
            );
        } else if last_line.elapsed() >= PROGRESS_LINE {
            eprintln!(
                "{name}: {done}/{planned} zaps, {} s",
                report.elapsed_ms / 1000
            );
            last_line = Instant::now();
        }
        std::thread::sleep(POLL);
    }
}
