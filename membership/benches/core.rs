//! `cargo bench -p membership`: the timing wheel against the seeds' fast-timeout scan, a general
//! query over 100,000 groups, and parse + handle of single messages. See BENCHMARKS.md.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use membership::timer::TimerWheel;
use membership::wire::igmp::IgmpRepr;
use membership::wire::ip::build_ipv4;
use membership::{Config, Host, Instant, InterfaceConfig};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const SIZES: [usize; 4] = [1_000, 10_000, 100_000, 1_000_000];

/// The seeds' membership record as far as `igmp_fasttimo` / `mld6_fasttimeo` touch it.
struct SeedInMulti {
    timer: u32,
    state: u8,
}

const DELAYING: u8 = 1;
const IDLE: u8 = 2;

/// A faithful port of NetBSD igmp.c 1.49 `igmp_fasttimo`: one pass over every membership record
/// per tick, decrementing each running timer; a record whose timer reaches zero sends its report.
fn seed_fasttimo(records: &mut [SeedInMulti], timers_are_running: &mut bool, sent: &mut u64) {
    if !*timers_are_running {
        return;
    }
    *timers_are_running = false;
    for inm in records.iter_mut() {
        if inm.timer == 0 {
            // do nothing
        } else {
            inm.timer -= 1;
            if inm.timer == 0 {
                if inm.state == DELAYING {
                    *sent += 1; // igmp_sendpkt(inm, ...)
                    inm.state = IDLE;
                }
            } else {
                *timers_are_running = true;
            }
        }
    }
}

fn tick(c: &mut Criterion) {
    let mut group = c.benchmark_group("tick_one_expires");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_millis(500));
    for &n in &SIZES {
        // Wheel: n timers spread from 1 s to ~12 days out; one is due on every tick and is
        // rescheduled, as are any far ones that come due, so the population stays n.
        group.bench_with_input(BenchmarkId::new("wheel", n), &n, |b, &n| {
            let mut rng = SmallRng::seed_from_u64(1);
            let mut wheel = TimerWheel::new();
            for key in 1..n as u32 {
                wheel.schedule(
                    Instant::from_millis(rng.gen_range(1_000..1_000_000_000)),
                    key,
                );
            }
            wheel.schedule(Instant::from_millis(1), 0u32);
            let mut now = 0u64;
            b.iter(|| {
                now += 1;
                let mut fired = Vec::new();
                wheel.advance(Instant::from_millis(now), |key, _| fired.push(key));
                for key in fired {
                    let next = if key == 0 {
                        now + 1
                    } else {
                        now + rng.gen_range(1_000..1_000_000_000)
                    };
                    wheel.schedule(Instant::from_millis(next), black_box(key));
                }
            });
        });
        // Seed: n records with running timers; one reaches zero on every tick and is re-armed.
        group.bench_with_input(BenchmarkId::new("seed_scan", n), &n, |b, &n| {
            let mut records: Vec<SeedInMulti> = (0..n)
                .map(|_| SeedInMulti {
                    timer: u32::MAX,
                    state: DELAYING,
                })
                .collect();
            let mut running = true;
            let mut sent = 0u64;
            b.iter(|| {
                records[0].timer = 1;
                records[0].state = DELAYING;
                seed_fasttimo(&mut records, &mut running, &mut sent);
                black_box(sent);
            });
        });
    }
    group.finish();
}

const IF: u32 = 1;

fn host_with_groups(n: u32) -> Host {
    let mut host = Host::new(Config::v2().with_robustness(1), 9);
    host.add_interface(
        IF,
        InterfaceConfig {
            ipv4: Some(Ipv4Addr::new(10, 99, 0, 2)),
            ipv6_link_local: None,
            ..InterfaceConfig::default()
        },
    )
    .unwrap();
    for i in 0..n {
        let group = Ipv4Addr::from(0xef00_0000 + i);
        host.join(IF, IpAddr::V4(group), Instant::ZERO).unwrap();
    }
    host.handle_timeout(Instant::ZERO);
    while let Some(tx) = host.poll_transmit() {
        black_box(tx);
    }
    host
}

fn query_packet(group: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let q = IgmpRepr::Query {
        max_resp_code: 100,
        group,
    };
    build_ipv4(Ipv4Addr::new(10, 99, 0, 1), dst, &q.to_bytes())
}

fn general_query(c: &mut Criterion) {
    const N: u32 = 100_000;
    let mut group = c.benchmark_group("general_query");
    group.sample_size(10);
    group.throughput(Throughput::Elements(u64::from(N)));
    let packet = query_packet(Ipv4Addr::UNSPECIFIED, Ipv4Addr::new(224, 0, 0, 1));
    group.bench_function("100000_groups", |b| {
        b.iter_batched_ref(
            || host_with_groups(N),
            |host| {
                host.handle_packet(IF, &packet, Instant::from_secs(1))
                    .unwrap();
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

fn single_messages(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_and_handle");
    let mut host = host_with_groups(1000);
    let g = Ipv4Addr::new(239, 0, 1, 0);
    let query = query_packet(g, g);
    let report = build_ipv4(
        Ipv4Addr::new(10, 99, 0, 3),
        g,
        &IgmpRepr::ReportV2 { group: g }.to_bytes(),
    );
    let mut now = 1000u64;
    group.bench_function("group_specific_query", |b| {
        b.iter(|| {
            now += 1;
            host.handle_packet(IF, black_box(&query), Instant::from_millis(now))
                .unwrap();
        });
    });
    group.bench_function("report_from_other_host", |b| {
        b.iter(|| {
            now += 1;
            host.handle_packet(IF, black_box(&report), Instant::from_millis(now))
                .unwrap();
        });
    });
    group.finish();
}

criterion_group!(benches, tick, general_query, single_messages);
criterion_main!(benches);
