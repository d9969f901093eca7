//! Fuzzes the whole input path: any bytes read from the link, handed to a Host with joined
//! groups, then its timers run. Nothing may panic, and every packet is accepted or counted
//! under exactly one drop reason.
//!
//! Run: `cd membership && RUSTC_BOOTSTRAP=1 cargo fuzz run input_path -- -max_total_time=60`

#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use membership::{Config, Host, Instant, InterfaceConfig};

fuzz_target!(|data: &[u8]| {
    let mut host = Host::new(Config::default(), 1);
    host.add_interface(
        1,
        InterfaceConfig {
            ipv4: Some(Ipv4Addr::new(10, 99, 0, 2)),
            ipv6_link_local: Some("fe80::2".parse().unwrap()),
            ..InterfaceConfig::default()
        },
    )
    .unwrap();
    for g in ["239.1.1.1", "224.0.0.9", "ff12::1", "ff02::1"] {
        host.join(1, g.parse().unwrap(), Instant::ZERO).unwrap();
    }
    // The first byte splits the input into up to two packets, so state carries over.
    let (first, rest) = data.split_at(data.first().map_or(0, |&b| usize::from(b)).min(data.len()));
    let mut now = 1000;
    for packet in [first, rest] {
        let before = host.stats().total_dropped();
        let result = host.handle_packet(1, packet, Instant::from_millis(now));
        let after = host.stats().total_dropped();
        assert_eq!(after - before, u64::from(result.is_err()));
        now += 500;
        host.handle_timeout(Instant::from_millis(now));
        while let Some(tx) = host.poll_transmit() {
            let _ = tx.to_packet();
        }
    }
    host.handle_timeout(Instant::from_millis(now + 1_000_000));
    while host.poll_transmit().is_some() {}
});
