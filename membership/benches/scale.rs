//! `cargo bench -p membership --bench scale`: the core at scale. Live heap bytes, counted by a
//! global allocator that wraps the system's: per any-source membership (10^6 groups on one
//! interface, and 10^5 interfaces with 2 groups each), per idle interface, and the peak growth
//! while an IGMPv3 General Query is answered at 10^6 groups. Time: a General Query to each of
//! 10^4 interfaces answered. See BENCHMARKS.md.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant as Clock;

use membership::wire::igmp::IgmpRepr;
use membership::wire::ip::build_ipv4;
use membership::{Config, Host, Instant, InterfaceConfig};

/// The system allocator, counting the bytes live and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Relaxed) + bytes;
    PEAK.fetch_max(live, Relaxed);
}

// SAFETY: every call goes to `System` unchanged; only the counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        System.dealloc(ptr, layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_sub(layout.size(), Relaxed);
        grew(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Live bytes now, and the peak is reset to them.
fn mark() -> usize {
    let live = LIVE.load(Relaxed);
    PEAK.store(live, Relaxed);
    live
}

fn addresses(n: u32) -> InterfaceConfig {
    InterfaceConfig {
        ipv4: Some(Ipv4Addr::from(0x0a00_0000 + n)),
        ipv6_link_local: None,
        ..InterfaceConfig::default()
    }
}

fn group(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0xe800_0000 + i))
}

/// Runs the host's timers until `until` (ms), dropping what it sends; the packets sent.
fn run(host: &mut Host, from: u64, until: u64) -> usize {
    let mut sent = 0;
    let mut now = from;
    while let Some(at) = host.poll_timeout() {
        if at.as_millis() > until {
            break;
        }
        now = now.max(at.as_millis());
        host.handle_timeout(Instant::from_millis(now));
        while let Some(tx) = host.poll_transmit() {
            black_box(tx);
            sent += 1;
        }
    }
    sent
}

/// `n` any-source IPv4 joins on one interface, 1000 at a time, their retransmissions done.
fn one_interface(n: u32) -> Host {
    let mut host = Host::new(Config::default(), 7);
    host.add_interface(1, addresses(1)).unwrap();
    for batch in 0..n / 1000 {
        for i in batch * 1000..(batch + 1) * 1000 {
            host.join(1, group(i), Instant::ZERO).unwrap();
        }
        host.handle_timeout(Instant::ZERO);
        while let Some(tx) = host.poll_transmit() {
            black_box(tx);
        }
    }
    run(&mut host, 0, 5_000);
    host
}

fn general_query(max_resp_code: u8) -> Vec<u8> {
    let q = IgmpRepr::QueryV3 {
        max_resp_code,
        group: Ipv4Addr::UNSPECIFIED,
        suppress_router: false,
        qrv: 2,
        qqic: 125,
        sources: Vec::new(),
    };
    build_ipv4(
        Ipv4Addr::new(10, 0, 0, 254),
        Ipv4Addr::new(224, 0, 0, 1),
        &q.to_bytes(),
    )
}

/// Whether section `name` runs: every one without arguments, else those named (`cargo bench
/// -p membership --bench scale -- answer` runs the answer's timing alone, e.g. under `perf`).
fn wanted(name: &str) -> bool {
    let named: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    named.is_empty() || named.iter().any(|n| n == name)
}

fn main() {
    if wanted("groups") {
        groups_on_one_interface();
    }
    if wanted("interfaces") {
        interfaces();
    }
    if wanted("answer") {
        answer(10_000);
        answer(100_000);
    }
}

/// Per membership at 10^6 groups on one interface, and the General Query answer's peak.
fn groups_on_one_interface() {
    const GROUPS: u32 = 1_000_000;
    let base = mark();
    let mut host = one_interface(GROUPS);
    let joined = mark() - base;
    println!(
        "{GROUPS} any-source groups on one interface: {:.1} B per membership",
        joined as f64 / f64::from(GROUPS)
    );

    // The answer to a General Query (Max Resp 10 s) over all of them.
    let before = mark();
    host.handle_packet(1, &general_query(100), Instant::from_secs(5))
        .unwrap();
    let reports = run(&mut host, 5_000, 16_000);
    let peak = PEAK.load(Relaxed) - before;
    println!(
        "General Query answered at {GROUPS} groups: {reports} reports, peak growth {:.1} KiB",
        peak as f64 / 1024.0
    );
}

/// Per idle interface, and per membership at 2 groups per interface.
fn interfaces() {
    const IFACES: u32 = 100_000;
    let base = mark();
    let mut host = Host::new(Config::default(), 7);
    for n in 0..IFACES {
        host.add_interface(n, addresses(n)).unwrap();
    }
    let idle = mark() - base;
    let start = Clock::now();
    for batch in 0..IFACES / 500 {
        for n in batch * 500..(batch + 1) * 500 {
            host.join(n, group(1), Instant::ZERO).unwrap();
            host.join(n, group(2), Instant::ZERO).unwrap();
        }
        host.handle_timeout(Instant::ZERO);
        while let Some(tx) = host.poll_transmit() {
            black_box(tx);
        }
    }
    let joining = start.elapsed();
    run(&mut host, 0, 5_000);
    let peak = PEAK.load(Relaxed) - base - idle;
    let joined = mark() - base - idle;
    println!(
        "{} joins (500 interfaces' at a time, their first reports out): {:.0} ns each",
        2 * IFACES,
        joining.as_secs_f64() * 1e9 / f64::from(2 * IFACES)
    );
    println!(
        "{IFACES} interfaces: {:.1} B per idle interface, {:.1} B per membership at 2 groups each (at the peak of the joins and their retransmissions: {:.1} B)",
        idle as f64 / f64::from(IFACES),
        joined as f64 / f64::from(2 * IFACES),
        peak as f64 / f64::from(2 * IFACES)
    );
    let before = mark();
    host.handle_packet(0, &general_query(100), Instant::from_secs(5))
        .unwrap();
    let reports = run(&mut host, 5_000, 16_000);
    println!(
        "General Query on one of them: {reports} report(s), peak growth {} B",
        PEAK.load(Relaxed) - before
    );
}

/// Work: a General Query heard by every one of `hosts` interfaces, 2 groups each, and
/// answered: the time per interface, query and answer.
fn answer(hosts: u32) {
    let mut host = Host::new(Config::default(), 7);
    for n in 0..hosts {
        host.add_interface(n, addresses(n)).unwrap();
        host.join(n, group(1), Instant::ZERO).unwrap();
        host.join(n, group(2), Instant::ZERO).unwrap();
        while host.poll_transmit().is_some() {}
        while host.poll_event().is_some() {}
    }
    run(&mut host, 0, 5_000);
    let query = general_query(100);
    // Rounds 20 s apart, each a General Query (Max Resp 10 s) to every interface, answered;
    // the fastest and the median round (a shared machine's other work lands in some rounds).
    let mut rounds: Vec<(f64, usize)> = (0..ROUNDS)
        .map(|round| {
            let at = 5_000 + 20_000 * round;
            let start = Clock::now();
            for n in 0..hosts {
                host.handle_packet(n, &query, Instant::from_millis(at))
                    .unwrap();
            }
            let reports = run(&mut host, at, at + 11_000);
            while host.poll_event().is_some() {}
            (start.elapsed().as_secs_f64(), reports)
        })
        .collect();
    rounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    let per = |secs: f64| secs * 1e6 / f64::from(hosts);
    println!(
        "General Query to each of {hosts} interfaces: {} reports a round, {:.2} µs per interface (fastest of {ROUNDS} rounds), {:.2} µs (median)",
        rounds[0].1,
        per(rounds[0].0),
        per(rounds[rounds.len() / 2].0)
    );
}

/// Rounds of [`answer`].
const ROUNDS: u64 = 7;
