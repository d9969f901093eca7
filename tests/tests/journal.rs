//! `--state` as a journal: SIGKILL in the middle of a bulk join loses nothing acknowledged, and
//! a torn or corrupt tail is reported and cut, the valid prefix kept.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tests::*;

/// Joins 239.70.0.0 and the groups after it one by one, pipelined `window` deep, until the
/// connection breaks or `limit` are acknowledged; returns the acknowledged groups.
fn join_until_killed(
    socket: &Path,
    limit: u32,
    window: u32,
    acked_enough: impl Fn(usize),
) -> Vec<IpAddr> {
    let stream = UnixStream::connect(socket).expect("connect to the control socket");
    stream.set_read_timeout(Some(secs(10))).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let group = |n: u32| IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(239, 70, 0, 0)) + n));
    let mut acked = Vec::new();
    let mut sent = 0;
    let mut line = String::new();
    while (acked.len() as u32) < limit {
        while sent < limit && sent - (acked.len() as u32) < window {
            let request = format!("{{\"cmd\":\"join\",\"group\":\"{}\"}}\n", group(sent));
            if writer.write_all(request.as_bytes()).is_err() {
                return acked;
            }
            sent += 1;
        }
        line.clear();
        match reader.read_line(&mut line) {
            Ok(n) if n > 0 => {
                assert!(line.starts_with("{\"ok\":true"), "refused: {line}");
                acked.push(group(acked.len() as u32));
                acked_enough(acked.len());
            }
            _ => return acked, // killed
        }
    }
    acked
}

#[test]
fn sigkill_during_a_bulk_join_loses_no_acknowledged_join_and_a_torn_tail_is_cut() {
    let Some(ns) = Netns::new("journal_kill") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let state = ns.dir().join("state.journal");
    let state_arg = state.to_str().unwrap().to_string();
    let args = [
        "--state",
        &state_arg,
        "--igmp-version",
        "3",
        "--robustness",
        "1",
        "--log-level",
        "info",
    ];
    let acked = {
        let mut first = ns.spawn_daemon(&args);
        let killed = Arc::new(AtomicBool::new(false));
        let pid = first.pid();
        let acked = join_until_killed(first.socket(), 20_000, 64, |n| {
            // Mid-burst: requests in flight, changes of this turn not yet fsynced.
            if n == 1500 && !killed.swap(true, Ordering::SeqCst) {
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL)
                    .expect("kill -9");
            }
        });
        first.wait_exit(secs(5));
        acked
    };
    assert!(
        (1500..20_000).contains(&acked.len()),
        "{} joins acknowledged: the kill did not land mid-burst",
        acked.len()
    );

    // A write cut short by the crash, at the end of the journal.
    let mut journal = std::fs::OpenOptions::new()
        .append(true)
        .open(&state)
        .unwrap();
    journal
        .write_all(b"1234abcd {\"iface\":\"tun0\",\"group\":\"239.99")
        .unwrap();
    drop(journal);

    let capture = ns.capture(TUN);
    let second = ns.spawn_daemon(&args);
    let log = second.log();
    assert!(
        log.contains("is damaged (torn") && log.contains("kept the"),
        "the torn tail was not reported:\n{log}"
    );
    let joined: BTreeSet<IpAddr> = second
        .groups()
        .iter()
        .filter_map(|g| g["group"].as_str()?.parse().ok())
        .collect();
    let missing: Vec<&IpAddr> = acked.iter().filter(|g| !joined.contains(g)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged joins lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    // Every acknowledged join is back on the wire, packed into IGMPv3 reports.
    let wanted: BTreeSet<IpAddr> = acked.iter().copied().collect();
    let packets = capture.wait_for_full("reports naming every acknowledged group", secs(8), |p| {
        let reported: BTreeSet<IpAddr> = p
            .iter()
            .filter(|p| p.from_daemon())
            .flat_map(|p| p.records())
            .map(|r| r.group)
            .collect();
        wanted.is_subset(&reported)
    });
    assert_daemon_packets_well_formed(&packets);
    // The cut file is valid again: a third start reads it without a complaint.
    drop(second);
    let third = ns.spawn_daemon(&args);
    assert!(!third.log().contains("damaged"), "{}", third.log());
    assert!(third.groups().len() >= acked.len());
}
