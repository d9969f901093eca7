//! Integration-test harness: real network namespaces, real TUN devices, the real
//! binaries, real tcpdump and tshark. See tests/tests/ for the tests.
//!
//! Each test builds its own namespace (unique name), so tests run in parallel
//! and never touch the host's interfaces. Everything the test starts is owned
//! by a guard whose `Drop` kills it; [`Netns`]'s `Drop` sweeps whatever is left
//! in the namespace, deletes it, and on a failing test prints every log the
//! test produced.
//!
//! ```no_run
//! use tests::*;
//! let Some(ns) = Netns::new("example") else { return };
//! ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
//! let mut capture = ns.capture(TUN);
//! let daemon = ns.spawn_daemon(&[]);
//! daemon.ctl_ok(&["join", "239.1.2.3"]);
//! capture.wait_for("a report", secs(2), |p| p.iter().any(|p| p.kind == "igmpv2-report"));
//! let packets = capture.stop();
//! assert_daemon_packets_well_formed(&packets);
//! ```

//!
//! Modules: [`namespace`] (the namespace, its TUNs and settings), [`processes`] (binaries,
//! commands, spawned processes), [`daemon`] (tunmcastd and tunmcastctl), [`capture`]
//! (tcpdump), [`tshark`] (dissected packets and group records), [`peers`] (mcquerier, FRR,
//! the kernel as a second host), [`bridge`] (a snooping Linux bridge and what it learned),
//! [`kernel`] (kernel features a test needs, detected), [`http`] (HTTP from inside a
//! namespace), [`browser`] (headless Chromium: rendered DOM, screenshots, a live tab),
//! [`prometheus`] (a scrape read by the Prometheus parser).
//! Everything is re-exported here: tests `use tests::*`.

pub mod bridge;
pub mod browser;
pub mod capture;
pub mod daemon;
pub mod http;
pub mod kernel;
pub mod namespace;
pub mod peers;
pub mod processes;
pub mod prometheus;
pub mod tshark;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use bridge::{Mdb, MdbEntry, SnoopingBridge};
pub use browser::{chromium_available, Browser};
pub use capture::Capture;
pub use daemon::{Daemon, PacketSocket};
pub use http::{parse_response, Exchange, HttpResponse};
pub use kernel::{kernel_has, KernelFeature};
pub use namespace::{privileged, LinkCounters, Netns};
/// Signals for [`Spawned::signal`] and [`Daemon::signal`].
pub use nix::sys::signal::Signal;
pub use peers::{frr_pimd_can_run, Frr, KernelMember, Querier};
pub use processes::{
    bin, bin_dir, raise_fd_limit, rss_kib, run, run_ok, set_fd_limit, thread_count, Spawned,
};
pub use prometheus::{check_families, check_histogram, declared, parse_prometheus};
pub use tshark::{
    assert_daemon_packets_well_formed, daemon_reports, datagram_times, dissect_full, full_listing,
    listing, Pkt, Record,
};

mod datapath;
pub use datapath::*;

/// The TUN device every test creates (names are per namespace).
pub const TUN: &str = "tun0";

/// Kernel side of the link.
pub const KERNEL_V4_CIDR: &str = "10.99.0.1/24";

pub const KERNEL_V4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);

pub const KERNEL_LL: &str = "fe80::1";

/// The daemon's side of the link.
pub const DAEMON_V4_CIDR: &str = "10.99.0.2/24";

pub const DAEMON_V4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);

pub const DAEMON_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);

/// All-routers groups: where IGMPv2 Leave and MLD Done go.
pub const ALL_ROUTERS_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 2);

pub const ALL_ROUTERS_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// Where Debian installs the FRR daemons.
pub const FRR_DIR: &str = "/usr/lib/frr";

/// Allowance for scheduling and capture latency on top of protocol deadlines.
pub const SLACK: f64 = 0.25;

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// Wall-clock time in seconds since the epoch: the clock tshark stamps frames with.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

pub fn ip(text: &str) -> IpAddr {
    text.parse()
        .unwrap_or_else(|_| panic!("{text:?} is not an IP address"))
}

/// Polls `condition` every 20 ms until it holds (true) or `timeout` passes (false).
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(ms(20));
    }
}

/// [`wait_until`] that fails the test, saying what it waited for.
pub fn must_wait(what: &str, timeout: Duration, condition: impl FnMut() -> bool) {
    if !wait_until(timeout, condition) {
        panic!("timed out after {timeout:?} waiting for: {what}");
    }
}

pub fn secs_f64(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Bytes as lowercase hex, no separators (what `mcquerier --raw-hex` takes).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
