//! The v1/v2 Host among other hosts, in virtual time: their reports suppress ours, older
//! versions put ours to sleep, and a simulated link with one querier and three hosts.

mod common;
mod v1v2;

use v1v2::*;

// ---------------------------------------------------------------------------------------------
// Reports from others.

fn other_report(src: Ipv4Addr, group: &str, v1: bool) -> Vec<u8> {
    let g: Ipv4Addr = group.parse().unwrap();
    let repr = if v1 {
        IgmpRepr::ReportV1 { group: g }
    } else {
        IgmpRepr::ReportV2 { group: g }
    };
    igmp_packet(src, g, &repr)
}

for_both_families!(another_hosts_report_suppresses_ours_and_takes_the_leave);

fn another_hosts_report_suppresses_ours_and_takes_the_leave<F: Family>() {
    let (g1, g2) = (F::addr("239.1.1.1"), F::addr("239.1.1.2"));
    let mut host = settled_in::<F>(&["239.1.1.1", "239.1.1.2"]);
    host.handle_packet(IF, &F::older_general_query(10_000), t(20_000))
        .unwrap();
    host.handle_packet(IF, &F::neighbour_report(g1), t(20_000))
        .unwrap();
    let groups = host.groups(t(20_000));
    let info = |g: IpAddr| groups.iter().find(|i| i.group == g).unwrap();
    assert_eq!((info(g1).state, info(g1).last_reporter), ("lazy", false));
    assert_eq!(info(g2).state, "delaying");
    let sent: Vec<_> = run(&mut host, 40_000)
        .iter()
        .map(|(_, tx)| (tx.dst(), F::older_kind(tx), tx.group()))
        .collect();
    assert_eq!(sent, vec![(g2, Some("report"), Some(g2))]);
    for g in [g1, g2] {
        host.leave(IF, g, t(40_000)).unwrap();
    }
    let sent: Vec<_> = now_sent(&mut host, 40_000)
        .iter()
        .map(|tx| (F::older_kind(tx), tx.group()))
        .collect();
    assert_eq!(sent, [(Some("leave"), Some(g2))]);
    assert_eq!(F::reports_of_our_groups_heard(host.stats()), 1);
}

#[test]
fn v1_report_puts_a_member_to_sleep_and_a_v2_query_only_wakes_it() {
    let mut host = settled(&["239.1.1.1"]);
    host.handle_packet(
        IF,
        &other_report(Ipv4Addr::new(10, 99, 0, 3), "239.1.1.1", true),
        t(20_000),
    )
    .unwrap();
    assert_eq!(host.groups(t(20_000))[0].state, "sleeping");
    host.handle_packet(
        IF,
        &v2_query(Ipv4Addr::UNSPECIFIED, ALL_HOSTS, 10),
        t(21_000),
    )
    .unwrap();
    assert_eq!(host.groups(t(21_000))[0].state, "awakening");
    assert!(run(&mut host, 30_000).is_empty());
    host.handle_packet(
        IF,
        &v2_query(Ipv4Addr::UNSPECIFIED, ALL_HOSTS, 10),
        t(30_000),
    )
    .unwrap();
    assert_eq!(host.groups(t(30_000))[0].state, "delaying");
    assert_eq!(run(&mut host, 31_000).len(), 1);
}

#[test]
fn our_own_report_looped_back_is_ignored() {
    let mut host = settled(&["239.1.1.1", "ff12::1"]);
    let before = host.groups(t(20_000));
    host.handle_packet(IF, &other_report(ME4, "239.1.1.1", false), t(20_000))
        .unwrap();
    let g6q: Ipv6Addr = "ff12::1".parse().unwrap();
    host.handle_packet(
        IF,
        &mld_packet(ME6, g6q, &MldRepr::Report { group: g6q }),
        t(20_000),
    )
    .unwrap();
    assert_eq!(host.groups(t(20_000)), before);
    assert_eq!(host.stats().igmp.igmp_rcv_looped, 1);
    assert_eq!(host.stats().mld.mld_rcv_looped, 1);
}

#[test]
fn v3_reports_and_leaves_from_others_are_counted_and_ignored() {
    let mut host = settled(&["239.1.1.1", "ff12::1"]);
    host.handle_packet(
        IF,
        &v2_query(Ipv4Addr::UNSPECIFIED, ALL_HOSTS, 100),
        t(20_000),
    )
    .unwrap();
    let before = host.groups(t(20_000));
    let v3 = IgmpRepr::ReportV3 {
        records: vec![GroupRecord {
            kind: RecordType::ModeIsExclude,
            group: "239.1.1.1".parse().unwrap(),
            sources: vec![],
            aux_data: vec![],
        }],
    };
    let other = Ipv4Addr::new(10, 99, 0, 3);
    host.handle_packet(
        IF,
        &igmp_packet(other, "224.0.0.22".parse().unwrap(), &v3),
        t(20_000),
    )
    .unwrap();
    let leave = IgmpRepr::Leave {
        group: "239.1.1.1".parse().unwrap(),
    };
    host.handle_packet(IF, &igmp_packet(other, ALL_ROUTERS, &leave), t(20_000))
        .unwrap();
    let v2r = MldRepr::ReportV2 {
        records: vec![GroupRecord {
            kind: RecordType::ChangeToExclude,
            group: "ff12::1".parse().unwrap(),
            sources: vec![],
            aux_data: vec![],
        }],
    };
    host.handle_packet(
        IF,
        &mld_packet(
            "fe80::3".parse().unwrap(),
            "ff02::16".parse().unwrap(),
            &v2r,
        ),
        t(20_000),
    )
    .unwrap();
    assert_eq!(host.groups(t(20_000)), before);
    assert_eq!(host.stats().igmp.igmp_rcv_v3_reports, 1);
    assert_eq!(host.stats().igmp.igmp_rcv_leaves, 1);
    assert_eq!(host.stats().mld.mld_rcv_v2_reports, 1);
}

// ---------------------------------------------------------------------------------------------
// A simulated link: one querier, three hosts.

struct Link {
    hosts: Vec<Host>,
    /// (time, host index, transmit) of everything the hosts sent.
    wire: Vec<(u64, usize, Transmit)>,
}

impl Link {
    fn new(n: usize) -> Link {
        let hosts = (0..n)
            .map(|i| {
                let v4 = Ipv4Addr::new(10, 99, 0, 2 + i as u8);
                let v6 = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2 + i as u16);
                host_with(Config::v2(), 100 + i as u64, v4, v6)
            })
            .collect();
        Link {
            hosts,
            wire: Vec::new(),
        }
    }

    /// Delivers what host `from` sends to every other host, at `now`.
    fn flush(&mut self, from: usize, now: u64) {
        let mut sent = Vec::new();
        self.hosts[from].handle_timeout(t(now));
        while let Some(tx) = self.hosts[from].poll_transmit() {
            sent.push(tx);
        }
        for tx in sent {
            let packet = tx.to_packet();
            for (i, other) in self.hosts.iter_mut().enumerate() {
                if i != from {
                    other.handle_packet(IF, &packet, t(now)).unwrap();
                }
            }
            self.wire.push((now, from, tx));
        }
    }

    fn run(&mut self, until: u64) {
        loop {
            let next = self
                .hosts
                .iter()
                .enumerate()
                .filter_map(|(i, h)| h.poll_timeout().map(|d| (d.as_millis(), i)))
                .min();
            match next {
                Some((at, i)) if at <= until => self.flush(i, at),
                _ => break,
            }
        }
    }

    fn query(&mut self, packet: &[u8], now: u64) {
        for host in &mut self.hosts {
            host.handle_packet(IF, packet, t(now)).unwrap();
        }
        for i in 0..self.hosts.len() {
            self.flush(i, now);
        }
    }

    fn sent_since(&self, since: u64) -> Vec<(u64, usize, String)> {
        self.wire
            .iter()
            .filter(|w| w.0 >= since)
            .map(|(at, i, tx)| (*at, *i, kind(tx)))
            .collect()
    }
}

#[test]
fn simulated_link_one_report_per_group_per_query_and_one_leave() {
    let groups = ["239.1.1.1", "239.1.1.2", "239.1.1.3", "ff12::1", "ff12::2"];
    let mut link = Link::new(3);
    for i in 0..3 {
        for g in groups {
            link.hosts[i]
                .join(IF, g.parse().unwrap(), t(i as u64 * 10))
                .unwrap();
        }
        link.flush(i, i as u64 * 10);
    }
    link.run(30_000);

    for round in 0..5u64 {
        let at = 30_000 + round * 20_000;
        link.query(&v2_query(Ipv4Addr::UNSPECIFIED, ALL_HOSTS, 100), at);
        link.query(&mld_query(Ipv6Addr::UNSPECIFIED, ALL_NODES, 10_000), at);
        link.run(at + 19_999);
        let mut per_group: BTreeMap<String, usize> = BTreeMap::new();
        for (_, _, k) in link.sent_since(at) {
            *per_group.entry(k).or_default() += 1;
        }
        assert_eq!(
            per_group.len(),
            groups.len(),
            "round {round}: every group reported: {per_group:?}"
        );
        assert!(
            per_group.values().all(|&n| n == 1),
            "round {round}: exactly one report each: {per_group:?}"
        );
    }

    // Everyone leaves: only the host that sent the last report sends Leave / Done.
    let last_reporter: BTreeMap<String, usize> = link
        .wire
        .iter()
        .map(|(_, i, tx)| (tx.group().unwrap().to_string(), *i))
        .collect();
    let at = 200_000;
    for i in 0..3 {
        for g in groups {
            link.hosts[i].leave(IF, g.parse().unwrap(), t(at)).unwrap();
        }
        link.flush(i, at);
    }
    let leaves = link.sent_since(at);
    assert_eq!(leaves.len(), groups.len(), "{leaves:?}");
    for (_, i, k) in leaves {
        let g = k.split(' ').nth(1).unwrap().to_string();
        assert!(k.starts_with("leave") || k.starts_with("done"));
        assert_eq!(
            last_reporter[&g], i,
            "{g}: Leave/Done from the last reporter only"
        );
    }
}
