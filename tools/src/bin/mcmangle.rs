//! mcmangle: forwards Ethernet frames from one device to another (AF_PACKET, SOCK_RAW), and
//! on the way drops, repeats and swaps the test-stream packets with the sequence numbers given
//! (the stream header of tunmcastd's streams, `control::stream_header`): a device under test
//! with exactly known loss, duplicates and reordering, where netem is missing.
//!
//! Frames read on `--from` (those arriving on it, not those the kernel sends out of it) are
//! written out of `--to` unchanged, except stream packets whose sequence number is listed:
//! `--drop N` is not written, `--repeat N` is written twice, `--swap N` is held back and written
//! after the next packet of its stream. Runs until killed; prints what it did on stderr.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{CommandFactory, Parser};
use etherparse::{SlicedPacket, TransportSlice};
use nix::net::if_::if_nametoindex;
use tools::packet_socket::PacketSocket;
use tools::stream_header::StreamHeader;

/// Forward frames from one device to another, dropping, repeating and swapping the test-stream
/// packets with the sequence numbers given.
#[derive(Debug, Parser)]
#[command(name = "mcmangle", version)]
struct Cli {
    /// Device to read frames from.
    #[arg(long, value_name = "NAME")]
    from: String,
    /// Device to write them out of.
    #[arg(long, value_name = "NAME")]
    to: String,
    /// Sequence numbers not to forward.
    #[arg(long, value_name = "N,...", value_delimiter = ',')]
    drop: Vec<u64>,
    /// Sequence numbers to forward twice.
    #[arg(long, value_name = "N,...", value_delimiter = ',')]
    repeat: Vec<u64>,
    /// Sequence numbers to forward after the next packet of their stream.
    #[arg(long, value_name = "N,...", value_delimiter = ',')]
    swap: Vec<u64>,
}

/// The stream header in an Ethernet frame's UDP payload, if it carries one.
fn stream_header(frame: &[u8]) -> Option<StreamHeader> {
    let packet = SlicedPacket::from_ethernet(frame).ok()?;
    match packet.transport? {
        TransportSlice::Udp(udp) => StreamHeader::decode(udp.payload()),
        _ => None,
    }
}

/// Writes `frame` as it is, with its own EtherType as the packet's protocol.
fn send(to: &PacketSocket, frame: &[u8]) -> std::io::Result<()> {
    let ethertype = frame
        .get(12..14)
        .map_or(0, |t| u16::from_be_bytes([t[0], t[1]]));
    to.send(ethertype, frame)
}

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(status) = tools::generate::handle(&argv, Cli::command(), "1") {
        return status;
    }
    match run(Cli::parse_from(argv)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcmangle: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let index = |name: &str| if_nametoindex(name).with_context(|| format!("no interface {name}"));
    let from = PacketSocket::open_frames(index(&cli.from)?)
        .with_context(|| format!("cannot read frames on {}", cli.from))?;
    let to = PacketSocket::open_frames(index(&cli.to)?)
        .with_context(|| format!("cannot write frames on {}", cli.to))?;
    eprintln!(
        "mcmangle: {} -> {}: drop {:?}, repeat {:?}, swap {:?}",
        cli.from, cli.to, cli.drop, cli.repeat, cli.swap
    );
    let mut buf = vec![0u8; 65_536];
    // A swapped packet waiting for the next of its stream: (stream, frame).
    let mut held: Option<(u32, Vec<u8>)> = None;
    loop {
        if !from.wait_readable(Duration::from_secs(1))? {
            continue;
        }
        while let Some(received) = from.try_recv(&mut buf)? {
            if received.outgoing {
                continue;
            }
            let frame = &buf[..received.len];
            let Some(header) = stream_header(frame) else {
                send(&to, frame)?;
                continue;
            };
            let sequence = header.sequence;
            if cli.drop.contains(&sequence) {
                eprintln!(
                    "mcmangle: dropped stream {} sequence {sequence}",
                    header.stream
                );
                continue;
            }
            if cli.swap.contains(&sequence) && held.is_none() {
                eprintln!(
                    "mcmangle: holding stream {} sequence {sequence}",
                    header.stream
                );
                held = Some((header.stream, frame.to_vec()));
                continue;
            }
            send(&to, frame)?;
            if cli.repeat.contains(&sequence) {
                eprintln!(
                    "mcmangle: repeated stream {} sequence {sequence}",
                    header.stream
                );
                send(&to, frame)?;
            }
            if held
                .as_ref()
                .is_some_and(|(stream, _)| *stream == header.stream)
            {
                let (_, frame) = held.take().expect("checked");
                send(&to, &frame)?;
                eprintln!(
                    "mcmangle: swapped after stream {} sequence {sequence}",
                    header.stream
                );
            }
        }
    }
}
