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

mod cli;
mod heard;
mod link;
mod query;

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

use cli::{one_line, Cli, Config, Payload};
use heard::Message;
use link::{Icmpv6Sender, Interface, Ipv4Sender};
use query::{build_query, query_source, Query};
use tools::packet_socket::{PacketSocket, ETHERTYPE_IPV4, ETHERTYPE_IPV6};

/// Large enough for any IP packet a TUN can carry.
const RECEIVE_BUFFER: usize = 65_536;

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
    let socket = PacketSocket::open(interface.index)
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

    #[test]
    fn raw_bytes_go_as_ipv6_only_if_they_say_so() {
        assert_eq!(raw_ethertype(&[0x60, 0]), ETHERTYPE_IPV6);
        assert_eq!(raw_ethertype(&[0x45]), ETHERTYPE_IPV4);
        assert_eq!(raw_ethertype(&[0xff]), ETHERTYPE_IPV4);
    }
}
