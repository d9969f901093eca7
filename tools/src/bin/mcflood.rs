//! mcflood: writes a flood of IGMP/MLD packets, valid and invalid, onto a link with AF_PACKET,
//! towards whatever holds the TUN device on its other side (the kernel of the namespace never
//! hears them). For load tests of tunmcastd.
//!
//! The packets are built once with `membership::wire` and then written as fast as the kernel
//! takes them: `sendto` on an AF_PACKET SOCK_DGRAM socket with protocol 0x0800 or 0x86DD,
//! retried on ENOBUFS. Note that a TUN device drops what its reader is too slow to take
//! (counted as TX drops of the interface): "sent" counts packets the kernel accepted.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use clap::{CommandFactory, Parser};
use membership::wire::igmp::IgmpRepr;
use membership::wire::ip::{build_ipv4, build_ipv6};
use membership::wire::mld::MldRepr;
use membership::wire::{internet_checksum, GroupRecord, RecordType};
use nix::errno::Errno;
use nix::net::if_::if_nametoindex;
use tools::packet_socket::{PacketSocket, ETHERTYPE_IPV4, ETHERTYPE_IPV6};

/// Write a flood of IGMP/MLD packets (a fixed mix of valid queries and reports and invalid
/// packets) onto a link with AF_PACKET, as fast as possible.
#[derive(Debug, Parser)]
#[command(name = "mcflood", version)]
struct Cli {
    /// Interface to write on: the kernel side of the TUN link. `--dev` is the old spelling.
    #[arg(long, visible_alias = "dev", value_name = "NAME")]
    iface: String,
    /// Number of packets to write.
    #[arg(long, value_name = "N")]
    count: u64,
    /// VALID,INVALID: out of every VALID+INVALID packets, VALID are valid and INVALID invalid.
    #[arg(long, value_name = "VALID,INVALID", default_value = "1,1", value_parser = parse_mix)]
    mix: (u32, u32),
    /// Source of the IPv4 packets.
    #[arg(long, value_name = "ADDR", default_value = "10.99.0.1")]
    src4: Ipv4Addr,
    /// Source of the IPv6 packets (link-local, or MLD hosts drop them).
    #[arg(long, value_name = "ADDR", default_value = "fe80::1")]
    src6: Ipv6Addr,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

fn parse_mix(s: &str) -> Result<(u32, u32), String> {
    let (valid, invalid) = s
        .split_once(',')
        .ok_or_else(|| format!("{s}: expected VALID,INVALID, e.g. 1,1"))?;
    let number = |n: &str| {
        n.trim()
            .parse::<u32>()
            .map_err(|_| format!("{n}: not a number"))
    };
    let mix = (number(valid)?, number(invalid)?);
    if mix.0 == 0 && mix.1 == 0 {
        return Err("the mix needs at least one packet".into());
    }
    Ok(mix)
}

/// One packet to write: its link protocol and bytes.
#[derive(Clone)]
struct Packet {
    ethertype: u16,
    bytes: Vec<u8>,
}

fn v4(bytes: Vec<u8>) -> Packet {
    Packet {
        ethertype: ETHERTYPE_IPV4,
        bytes,
    }
}

fn v6(bytes: Vec<u8>) -> Packet {
    Packet {
        ethertype: ETHERTYPE_IPV6,
        bytes,
    }
}

fn igmp(src: Ipv4Addr, dst: Ipv4Addr, repr: &IgmpRepr) -> Vec<u8> {
    build_ipv4(src, dst, &repr.to_bytes())
}

fn mld(src: Ipv6Addr, dst: Ipv6Addr, repr: &MldRepr) -> Vec<u8> {
    build_ipv6(src, dst, &repr.to_bytes(&src, &dst))
}

/// Valid queries and reports. The queries are general ones with a Max Resp Time of 10 s; the
/// reports are for groups the holder is unlikely to have joined.
fn valid_packets(src4: Ipv4Addr, src6: Ipv6Addr) -> Vec<Packet> {
    let all_systems4 = Ipv4Addr::new(224, 0, 0, 1);
    let all_systems6: Ipv6Addr = "ff02::1".parse().unwrap();
    let group4 = Ipv4Addr::new(239, 255, 77, 1);
    let group6: Ipv6Addr = "ff12::77:1".parse().unwrap();
    let record4 = GroupRecord {
        kind: RecordType::ModeIsExclude,
        group: group4,
        sources: vec![],
        aux_data: vec![],
    };
    let record6 = GroupRecord {
        kind: RecordType::ModeIsExclude,
        group: group6,
        sources: vec![],
        aux_data: vec![],
    };
    vec![
        v4(igmp(
            src4,
            all_systems4,
            &IgmpRepr::Query {
                max_resp_code: 100,
                group: Ipv4Addr::UNSPECIFIED,
            },
        )),
        v4(igmp(src4, group4, &IgmpRepr::ReportV2 { group: group4 })),
        v4(igmp(
            src4,
            Ipv4Addr::new(224, 0, 0, 22),
            &IgmpRepr::ReportV3 {
                records: vec![record4],
            },
        )),
        v6(mld(
            src6,
            all_systems6,
            &MldRepr::Query {
                max_resp_delay: 10_000,
                group: Ipv6Addr::UNSPECIFIED,
            },
        )),
        v6(mld(src6, group6, &MldRepr::Report { group: group6 })),
        v6(mld(
            src6,
            "ff02::16".parse().unwrap(),
            &MldRepr::ReportV2 {
                records: vec![record6],
            },
        )),
    ]
}

/// Invalid packets, one of each kind of fault: every one must be dropped.
fn invalid_packets(src4: Ipv4Addr, src6: Ipv6Addr) -> Vec<Packet> {
    let group4 = Ipv4Addr::new(239, 255, 77, 2);
    let group6: Ipv6Addr = "ff12::77:2".parse().unwrap();
    let report4 = igmp(src4, group4, &IgmpRepr::ReportV2 { group: group4 });
    let report6 = mld(src6, group6, &MldRepr::Report { group: group6 });

    // IGMP checksum off by one.
    let mut bad_igmp_sum = report4.clone();
    let last = bad_igmp_sum.len() - 1;
    bad_igmp_sum[last] ^= 1;
    // An IPv4 header cut short.
    let truncated_ipv4 = report4[..12].to_vec();
    // A fragment (More Fragments set), header checksum recomputed.
    let mut fragment = report4.clone();
    fragment[6] |= 0x20;
    fragment[10..12].copy_from_slice(&[0, 0]);
    let header_len = usize::from(fragment[0] & 0x0f) * 4;
    let sum = internet_checksum(&fragment[..header_len]);
    fragment[10..12].copy_from_slice(&sum.to_be_bytes());
    // ICMPv6 checksum off by one.
    let mut bad_mld_sum = report6.clone();
    let last = bad_mld_sum.len() - 1;
    bad_mld_sum[last] ^= 1;
    // MLD without the hop-by-hop header (so without Router Alert).
    let mut no_router_alert = report6[..40].to_vec();
    no_router_alert[6] = 58; // next header: ICMPv6
    no_router_alert[4..6].copy_from_slice(&((report6.len() - 48) as u16).to_be_bytes());
    no_router_alert.extend_from_slice(&report6[48..]);
    // Not IP at all.
    let garbage = b"\x00mcflood garbage, not an IP packet".to_vec();

    vec![
        v4(bad_igmp_sum),
        v4(truncated_ipv4),
        v4(fragment),
        v6(bad_mld_sum),
        v6(no_router_alert),
        v4(garbage),
    ]
}

/// The packets in sending order: `valid` valid ones, then `invalid` invalid ones, each list
/// taken round-robin, over one whole cycle of both lists.
fn schedule(mix: (u32, u32), valid: Vec<Packet>, invalid: Vec<Packet>) -> Vec<(Packet, bool)> {
    let (nv, ni) = (mix.0 as usize, mix.1 as usize);
    // Enough rounds that every packet of both lists comes up.
    let rounds = valid.len().max(invalid.len());
    let mut out = Vec::with_capacity(rounds * (nv + ni));
    let (mut vi, mut ii) = (0, 0);
    for _ in 0..rounds {
        for _ in 0..nv {
            out.push((valid[vi % valid.len()].clone(), true));
            vi += 1;
        }
        for _ in 0..ni {
            out.push((invalid[ii % invalid.len()].clone(), false));
            ii += 1;
        }
    }
    out
}

/// Writes one packet, retrying while the kernel has no buffer for it. Returns the number of
/// ENOBUFS retries.
fn send(link: &PacketSocket, packet: &Packet) -> io::Result<u64> {
    let mut retries = 0;
    loop {
        match link.send(packet.ethertype, &packet.bytes) {
            Ok(()) => return Ok(retries),
            Err(error) => match Errno::from_raw(error.raw_os_error().unwrap_or(0)) {
                Errno::ENOBUFS => {
                    retries += 1;
                    std::thread::yield_now();
                }
                Errno::EINTR => {}
                _ => return Err(error),
            },
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let packets = schedule(
        cli.mix,
        valid_packets(cli.src4, cli.src6),
        invalid_packets(cli.src4, cli.src6),
    );
    let ifindex = if_nametoindex(cli.iface.as_str())
        .map_err(io::Error::from)
        .with_context(|| format!("no interface {}", cli.iface))?;
    // Send-only: a socket that heard the link would queue up the holder's answers meanwhile.
    let link = PacketSocket::sender(ifindex).context("cannot open an AF_PACKET socket")?;
    let (mut valid, mut retries) = (0u64, 0u64);
    let started = Instant::now();
    for (packet, is_valid) in packets.iter().cycle().take(usize::try_from(cli.count)?) {
        retries += send(&link, packet).with_context(|| format!("{}: sendto", cli.iface))?;
        valid += u64::from(*is_valid);
    }
    let seconds = started.elapsed().as_secs_f64();
    let rate = if seconds > 0.0 {
        cli.count as f64 / seconds
    } else {
        0.0
    };
    if cli.json {
        println!(
            "{}",
            serde_json::json!({
                "sent": cli.count,
                "valid": valid,
                "invalid": cli.count - valid,
                "seconds": seconds,
                "rate": rate,
                "enobufs_retries": retries,
            })
        );
    } else {
        println!(
            "sent {} packets in {seconds:.3} s ({rate:.0} pkt/s)",
            cli.count
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(status) = tools::generate::handle(&argv, Cli::command(), "1") {
        return status;
    }
    let cli = Cli::parse_from(argv);
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcflood: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use membership::wire::ip::{classify, Classified};

    #[test]
    fn mix_parses() {
        assert_eq!(parse_mix("3,1"), Ok((3, 1)));
        assert_eq!(parse_mix("0,1"), Ok((0, 1)));
        assert!(parse_mix("0,0").is_err());
        assert!(parse_mix("3").is_err());
        assert!(parse_mix("a,1").is_err());
    }

    #[test]
    fn valid_packets_classify_and_invalid_ones_do_not_parse() {
        let src4 = Ipv4Addr::new(10, 99, 0, 1);
        let src6: Ipv6Addr = "fe80::1".parse().unwrap();
        for p in valid_packets(src4, src6) {
            match classify(&p.bytes) {
                Ok(Classified::Igmp { payload, .. }) => {
                    IgmpRepr::parse(payload).unwrap();
                }
                Ok(Classified::Mld { meta, payload }) => {
                    assert!(meta.router_alert);
                    MldRepr::parse(payload, &meta.src, &meta.dst).unwrap();
                }
                other => panic!("{other:?}"),
            }
        }
        for p in invalid_packets(src4, src6) {
            let bad = match classify(&p.bytes) {
                Err(_) => true,
                Ok(Classified::Igmp { payload, .. }) => IgmpRepr::parse(payload).is_err(),
                Ok(Classified::Mld { meta, payload }) => {
                    !meta.router_alert || MldRepr::parse(payload, &meta.src, &meta.dst).is_err()
                }
                Ok(Classified::Other(_)) => false,
            };
            assert!(bad, "{:02x?}", p.bytes);
        }
    }

    #[test]
    fn schedule_follows_the_mix() {
        let src4 = Ipv4Addr::new(10, 99, 0, 1);
        let src6: Ipv6Addr = "fe80::1".parse().unwrap();
        let s = schedule(
            (3, 1),
            valid_packets(src4, src6),
            invalid_packets(src4, src6),
        );
        assert_eq!(s.len(), 6 * 4);
        assert_eq!(s.iter().filter(|(_, v)| *v).count(), 18);
        assert!(s[..3].iter().all(|(_, v)| *v) && !s[3].1);
        let s = schedule(
            (0, 1),
            valid_packets(src4, src6),
            invalid_packets(src4, src6),
        );
        assert!(s.iter().all(|(_, v)| !*v));
    }
}
