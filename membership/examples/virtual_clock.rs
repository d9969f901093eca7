//! A Host driven on a virtual clock: it joins a group, a router's General Query arrives, time
//! advances to the report's deadline, and the group is left. Every packet the host would write
//! to the link is printed with the time it is due.
//!
//! `cargo run -p membership --example virtual_clock`

use std::net::{IpAddr, Ipv4Addr};

use membership::wire::igmp::IgmpRepr;
use membership::wire::ip::build_ipv4;
use membership::{Carries, Config, Host, Instant, InterfaceConfig, Message, Transmit};

const IF: u32 = 1;

/// Runs every timer due up to `until`, as a driver sleeping until `poll_timeout` and then
/// calling `handle_timeout` would, printing what is sent and what happened.
fn run_until(host: &mut Host, until: Instant) {
    while let Some(at) = host.poll_timeout().filter(|&at| at <= until) {
        host.handle_timeout(at);
        while let Some(tx) = host.poll_transmit() {
            print(at, &tx);
        }
        events(host, at);
    }
    host.handle_timeout(until);
    while let Some(tx) = host.poll_transmit() {
        print(until, &tx);
    }
    events(host, until);
}

fn events(host: &mut Host, at: Instant) {
    while let Some(event) = host.poll_event() {
        println!("{:>8}  event {event:?}", at.to_string());
    }
}

fn print(at: Instant, tx: &Transmit) {
    let what = match tx.message() {
        Message::Igmp(repr) => format!("{repr:?}"),
        Message::Mld(repr) => format!("{repr:?}"),
    };
    let len = tx.to_packet().len();
    let at = at.to_string();
    println!(
        "{at:>8}  send  {} -> {} ({len} bytes): {what}",
        tx.src(),
        tx.dst()
    );
    // What the transmit says it carries, without parsing the message.
    match tx.carries() {
        Carries::Report(group) => println!("{:>8}  (a report of {group})", ""),
        Carries::Leave(group) => println!("{:>8}  (a leave of {group})", ""),
        Carries::Records(records) => {
            for record in records {
                let what = if record.is_leave {
                    "leave"
                } else {
                    "receiving"
                };
                println!("{:>8}  ({what} of {}: {:?})", "", record.group, record.kind);
            }
        }
        Carries::Query => {}
    }
}

fn say(at: Instant, what: &str) {
    println!("{:>8}  {what}", at.to_string());
}

fn main() {
    // The seed fixes every random delay: the run is the same each time.
    let mut host = Host::new(Config::default(), 7);
    host.add_interface(
        IF,
        InterfaceConfig {
            ipv4: Some(Ipv4Addr::new(192, 0, 2, 7)),
            ..InterfaceConfig::default()
        },
    )
    .expect("a new interface");

    let group = IpAddr::V4(Ipv4Addr::new(239, 1, 2, 3));
    let mut now = Instant::ZERO;
    say(now, &format!("join  {group}"));
    host.join(IF, group, now).expect("a multicast group");
    // The state-change report goes at once; its retransmission within 1 s.
    run_until(&mut host, Instant::from_secs(5));

    // A querier's IGMPv3 General Query, Max Resp Time 10 s, as read from the link.
    now = Instant::from_secs(5);
    let query = IgmpRepr::QueryV3 {
        max_resp_code: 100,
        group: Ipv4Addr::UNSPECIFIED,
        suppress_router: false,
        qrv: 2,
        qqic: 125,
        sources: Vec::new(),
    };
    let packet = build_ipv4(
        Ipv4Addr::new(192, 0, 2, 1),
        Ipv4Addr::new(224, 0, 0, 1),
        &query.to_bytes(),
    );
    say(now, "recv  General Query from 192.0.2.1");
    host.handle_packet(IF, &packet, now).expect("a valid query");
    events(&mut host, now);
    // The answer goes at random within the 10 s the query allows.
    run_until(&mut host, Instant::from_secs(20));

    now = Instant::from_secs(30);
    say(now, &format!("leave {group}"));
    host.leave(IF, group, now).expect("joined before");
    let end = Instant::from_secs(40);
    run_until(&mut host, end);
    say(end, &format!("{} groups left", host.groups(end).len()));
}
