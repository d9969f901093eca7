//! ctlbench: load and latency figures for a running tunmcastd, for BENCHMARKS.md
//! (`scripts/bench-control.sh` runs it in a throwaway namespace).
//!
//! - `joins`: COUNT consecutive groups joined (or left) over ONE control connection, WINDOW
//!   requests in flight (pipelined), BATCH groups per request; rate and per-request latency.
//! - `show`: one `show` request; time to the first byte, to the last, bytes, and whether the
//!   reply is one complete JSON object.
//! - `wire-latency`: join request -> the report read on the kernel's end of the link
//!   (AF_PACKET), next to the kernel's own setsockopt(IP_ADD_MEMBERSHIP) -> its report on the
//!   same link, interleaved in one run.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::{CommandFactory, Parser, Subcommand};
use parking_lot::Mutex;
use serde_json::{json, Value};

#[derive(Parser)]
#[command(
    name = "ctlbench",
    version,
    about = "Load and latency figures for a running tunmcastd"
)]
struct Cli {
    /// Control socket of the daemon.
    #[arg(long, value_name = "PATH")]
    control: PathBuf,
    /// Print the figures as one JSON object.
    #[arg(short = 'j', long)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Join (or leave) COUNT consecutive groups from FIRST over one connection.
    Joins {
        /// First group; the next ones follow it (239.0.0.0, 239.0.0.1, ...).
        #[arg(long, default_value = "239.0.0.0")]
        first: IpAddr,
        /// Groups in all.
        #[arg(long, default_value_t = 100_000)]
        count: u32,
        /// Requests in flight at once (1: one by one, each waiting for its reply).
        #[arg(long, default_value_t = 64)]
        window: usize,
        /// Groups per request ("count" in a join request); 1 sends one group per request.
        #[arg(long, default_value_t = 1)]
        batch: u32,
        /// Leave instead of join.
        #[arg(long)]
        leave: bool,
    },
    /// One `show` request: time to first byte, total time, size.
    Show,
    /// Join request -> report on the wire, beside the kernel's setsockopt -> report. Run it in
    /// the namespace of the kernel's end of the link, the TUN its only device.
    WireLatency {
        /// The kernel's IPv4 address on that link.
        #[arg(long, default_value = "10.99.0.1")]
        kernel_ipv4: Ipv4Addr,
        /// Samples of each.
        #[arg(long, default_value_t = 200)]
        samples: u32,
    },
}

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(status) = tools::generate::handle(&argv, Cli::command(), "1") {
        return status;
    }
    let cli = Cli::parse_from(argv);
    let result = match &cli.command {
        Command::Joins {
            first,
            count,
            window,
            batch,
            leave,
        } => joins(&cli, *first, *count, *window, *batch, *leave),
        Command::Show => show(&cli),
        Command::WireLatency {
            kernel_ipv4,
            samples,
        } => wire_latency(&cli, *kernel_ipv4, *samples),
    };
    match result {
        Ok(figures) => {
            if cli.json {
                println!("{figures}");
            } else if let Value::Object(map) = figures {
                for (name, value) in map {
                    println!("{name:<24} {value}");
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ctlbench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn connect(cli: &Cli) -> anyhow::Result<UnixStream> {
    let stream = UnixStream::connect(&cli.control)
        .with_context(|| format!("cannot connect to {}", cli.control.display()))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    Ok(stream)
}

/// The group `n` places after `first`.
fn nth_group(first: IpAddr, n: u32) -> IpAddr {
    match first {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a).wrapping_add(n))),
        IpAddr::V6(a) => IpAddr::V6(std::net::Ipv6Addr::from(
            u128::from(a).wrapping_add(u128::from(n)),
        )),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let at = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[at].as_secs_f64() * 1e3
}

fn joins(
    cli: &Cli,
    first: IpAddr,
    count: u32,
    window: usize,
    batch: u32,
    leave: bool,
) -> anyhow::Result<Value> {
    anyhow::ensure!(window >= 1 && batch >= 1, "window and batch are at least 1");
    let stream = connect(cli)?;
    let mut writer = stream.try_clone()?;
    let requests = count.div_ceil(batch);
    // Send times of the requests in flight, oldest first; the reader takes them off in order.
    let in_flight = Arc::new(Mutex::new(VecDeque::<Instant>::new()));
    let (tokens_tx, tokens_rx) = crossbeam_channel::bounded::<()>(window);
    let reader_in_flight = in_flight.clone();
    let reader = thread::spawn(move || -> anyhow::Result<(Vec<Duration>, u64)> {
        let mut reader = BufReader::new(stream);
        let mut latencies = Vec::with_capacity(requests as usize);
        let mut errors = 0;
        let mut line = String::new();
        for _ in 0..requests {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                bail!("the daemon closed the connection");
            }
            let sent = reader_in_flight
                .lock()
                .pop_front()
                .expect("a request in flight");
            latencies.push(sent.elapsed());
            if !line.contains("\"ok\":true") {
                errors += 1;
                if errors == 1 {
                    eprintln!("ctlbench: first error reply: {}", line.trim());
                }
            }
            let _ = tokens_rx.recv();
        }
        Ok((latencies, errors))
    });
    let cmd = if leave { "leave" } else { "join" };
    let started = Instant::now();
    let mut line = Vec::with_capacity(128);
    for r in 0..requests {
        let n = r * batch;
        let group = nth_group(first, n);
        let request = if batch == 1 {
            json!({ "cmd": cmd, "group": group.to_string() })
        } else {
            json!({ "cmd": cmd, "group": group.to_string(), "count": batch.min(count - n) })
        };
        line.clear();
        serde_json::to_writer(&mut line, &request)?;
        line.push(b'\n');
        tokens_tx.send(())?;
        in_flight.lock().push_back(Instant::now());
        writer.write_all(&line)?;
    }
    let (mut latencies, errors) = reader.join().expect("reader thread")?;
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    Ok(json!({
        "groups": count,
        "requests": requests,
        "window": window,
        "batch": batch,
        "seconds": (elapsed * 1000.0).round() / 1000.0,
        "changes_per_second": (f64::from(count) / elapsed).round(),
        "request_p50_ms": percentile(&latencies, 0.5),
        "request_p99_ms": percentile(&latencies, 0.99),
        "error_replies": errors,
    }))
}

fn show(cli: &Cli) -> anyhow::Result<Value> {
    let mut stream = connect(cli)?;
    let started = Instant::now();
    stream.write_all(b"{\"cmd\":\"show\"}\n")?;
    let mut first = [0u8; 1];
    stream.read_exact(&mut first)?;
    let first_byte = started.elapsed();
    let mut rest = Vec::new();
    let mut reader = BufReader::new(stream);
    reader.read_until(b'\n', &mut rest)?;
    let total = started.elapsed();
    let mut reply = first.to_vec();
    reply.extend_from_slice(&rest);
    let parsed: Result<Value, _> = serde_json::from_slice(&reply);
    let groups = parsed
        .as_ref()
        .ok()
        .and_then(|v| v["groups"].as_array().map(Vec::len));
    Ok(json!({
        "first_byte_ms": first_byte.as_secs_f64() * 1e3,
        "total_ms": total.as_secs_f64() * 1e3,
        "bytes": reply.len(),
        "complete_json": parsed.is_ok(),
        "groups": groups,
    }))
}

/// An AF_PACKET socket that sees every packet of the namespace both ways: run ctlbench in a
/// namespace whose only link is the TUN, and it sees our reports coming in and the kernel's
/// going out.
struct Tap {
    socket: socket2::Socket,
}

impl Tap {
    fn open() -> anyhow::Result<Tap> {
        let all = i32::from((libc::ETH_P_ALL as u16).to_be());
        let socket = socket2::Socket::new(
            socket2::Domain::PACKET,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::from(all)),
        )
        .context("AF_PACKET socket (needs CAP_NET_RAW)")?;
        Ok(Tap { socket })
    }

    /// Waits up to `timeout` for an IGMP report naming `group`; the time it was read.
    fn wait_report(&self, group: Ipv4Addr, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 2048];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            self.socket
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .ok()?;
            let n = (&self.socket).read(&mut buf).ok()?;
            let at = Instant::now();
            if report_names(&buf[..n], group) {
                return Some(at);
            }
        }
    }
}

/// Whether an IPv4 packet is an IGMP report (v1, v2 or v3) that names `group`.
fn report_names(packet: &[u8], group: Ipv4Addr) -> bool {
    if packet.len() < 28 || packet[0] >> 4 != 4 || packet[9] != 2 {
        return false;
    }
    let igmp = &packet[usize::from(packet[0] & 0x0f) * 4..];
    let wanted = group.octets();
    match igmp.first() {
        Some(0x12 | 0x16) => igmp.get(4..8) == Some(&wanted[..]),
        Some(0x22) => igmp.windows(4).skip(8).any(|w| w == wanted),
        _ => false,
    }
}

fn wire_latency(cli: &Cli, kernel_ipv4: Ipv4Addr, samples: u32) -> anyhow::Result<Value> {
    let tap = Tap::open()?;
    let stream = connect(cli)?;
    let mut writer = stream.try_clone()?;
    let mut replies = BufReader::new(stream);
    let mut ours = Vec::new();
    let mut kernel = Vec::new();
    let mut lost = (0, 0);
    // One socket per kernel join: Linux allows 20 memberships per socket by default.
    let mut sockets = Vec::new();
    let mut line = String::new();
    for i in 0..samples {
        // Ours: 239.77.x.y, joined through the control socket.
        let group = Ipv4Addr::from(u32::from(Ipv4Addr::new(239, 77, 0, 0)) + i);
        let started = Instant::now();
        writer.write_all(format!("{{\"cmd\":\"join\",\"group\":\"{group}\"}}\n").as_bytes())?;
        match tap.wait_report(group, Duration::from_secs(2)) {
            Some(at) => ours.push(at - started),
            None => lost.0 += 1,
        }
        line.clear();
        replies.read_line(&mut line)?;
        // The kernel's: 239.88.x.y, joined on its end of the same link.
        let group = Ipv4Addr::from(u32::from(Ipv4Addr::new(239, 88, 0, 0)) + i);
        let socket =
            UdpSocket::bind((kernel_ipv4, 0)).context("a UDP socket for the kernel's joins")?;
        let started = Instant::now();
        socket
            .join_multicast_v4(&group, &kernel_ipv4)
            .with_context(|| format!("IP_ADD_MEMBERSHIP {group}"))?;
        sockets.push(socket);
        match tap.wait_report(group, Duration::from_secs(2)) {
            Some(at) => kernel.push(at - started),
            None => lost.1 += 1,
        }
    }
    ours.sort();
    kernel.sort();
    let p50 = (percentile(&ours, 0.5), percentile(&kernel, 0.5));
    Ok(json!({
        "samples": samples,
        "tunmcast_p50_ms": p50.0,
        "tunmcast_p99_ms": percentile(&ours, 0.99),
        "kernel_p50_ms": p50.1,
        "kernel_p99_ms": percentile(&kernel, 0.99),
        "kernel_over_tunmcast_p50": p50.1 / p50.0,
        "tunmcast_lost": lost.0,
        "kernel_lost": lost.1,
    }))
}
