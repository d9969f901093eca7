use super::*;

const PATH: &str = "/etc/tunmcastd.toml";

fn parse(text: &str) -> Result<Option<Topology>, String> {
    let file = ConfigFile::parse(std::path::Path::new(PATH), text.to_string())
        .map_err(|e| e.to_string())?;
    topology(&file, HostParams::default()).map_err(|e| e.to_string())
}

fn links(text: &str) -> Vec<LinkSpec> {
    parse(text).unwrap().unwrap().links
}

fn mac(s: &str) -> Mac {
    s.parse().unwrap()
}

#[test]
fn a_file_without_links_is_the_one_link_form() {
    assert_eq!(parse("iface = \"t\"\nipv4 = \"10.1.1.1/24\"\n"), Ok(None));
}

#[test]
fn a_link_without_host_blocks_has_its_own_one_host() {
    let links = links(
        "robustness = 9\n\
         [[link]]\ndevice = \"tun0\"\nipv4 = \"10.99.0.2/24\"\nipv6_ll = \"fe80::2\"\n\
         [[link]]\ndevice = \"tun1\"\nipv4 = \"10.99.2.2/24\"\nrobustness = 3\n\
         [[link]]\ndevice = \"tap0\"\nkind = \"tap\"\nipv4 = \"10.99.3.2/24\"\n",
    );
    assert_eq!(links.len(), 3);
    let tun0 = &links[0];
    assert_eq!((tun0.device.as_str(), tun0.kind), ("tun0", LinkKind::Tun));
    assert!(tun0.suppression);
    assert_eq!(
        tun0.hosts,
        vec![HostSpec {
            mac: None,
            ipv4: ("10.99.0.2".parse().unwrap(), 24),
            ipv6_ll: "fe80::2".parse().unwrap(),
            // The top-level key is not a default of the links: the caller's are.
            params: HostParams::default(),
        }]
    );
    // As --ipv6-ll defaults on a TUN: fe80:: and the IPv4 address.
    assert_eq!(
        links[1].hosts[0].ipv6_ll,
        "fe80::a63:202".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(links[1].hosts[0].params.robustness, 3);
    // As --mac defaults on a TAP; the link-local from the MAC.
    let tap = &links[2].hosts[0];
    assert_eq!(tap.mac, Some(mac("02:00:0a:63:03:02")));
    assert_eq!(tap.ipv6_ll, eui64_link_local(mac("02:00:0a:63:03:02")));
}

#[test]
fn host_blocks_expand_to_consecutive_hosts() {
    let links = links(
        "[[link]]\ndevice = \"tap1\"\nkind = \"tap\"\nsuppression = false\nrobustness = 3\n\
         mtu = 9000\n\
         [[link.hosts]]\ncount = 1000\nmac = \"02:00:00:00:01:00\"\nipv4 = \"10.99.1.10/20\"\n\
         [[link.hosts]]\ncount = 3\nipv4 = \"10.99.8.1/20\"\nipv6_ll = \"fe80::1:fffe\"\n\
         igmp_version = 2\n",
    );
    let tap = &links[0];
    assert_eq!(tap.kind, LinkKind::Tap);
    assert!(!tap.suppression);
    assert_eq!(tap.mtu, 9000);
    assert_eq!(tap.hosts.len(), 1003);
    for (i, host) in tap.hosts[..1000].iter().enumerate() {
        let expected_mac = mac_from_number(0x0200_0000_0100 + i as u64);
        assert_eq!(host.mac, Some(expected_mac));
        assert_eq!(
            host.ipv4.0,
            Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 99, 1, 10)) + i as u32)
        );
        assert_eq!(host.ipv4.1, 20);
        assert_eq!(host.ipv6_ll, eui64_link_local(expected_mac));
        assert_eq!((host.params.robustness, host.params.mtu), (3, 9000));
        assert_eq!(host.params.igmp_version, 3);
    }
    let first = &tap.hosts[0];
    assert_eq!(
        first.ipv6_ll,
        "fe80::ff:fe00:100".parse::<Ipv6Addr>().unwrap()
    );
    let last = &tap.hosts[999];
    assert_eq!(last.mac, Some(mac("02:00:00:00:04:e7")));
    assert_eq!(last.ipv4.0, Ipv4Addr::new(10, 99, 4, 241));
    assert_eq!(
        last.ipv6_ll,
        "fe80::ff:fe00:4e7".parse::<Ipv6Addr>().unwrap()
    );
    // The second block: MACs from the IPv4 address, link-locals counted from the one given.
    let second: Vec<_> = tap.hosts[1000..]
        .iter()
        .map(|h| (h.mac.unwrap(), h.ipv6_ll))
        .collect();
    assert_eq!(
        second,
        vec![
            (mac("02:00:0a:63:08:01"), "fe80::1:fffe".parse().unwrap()),
            (mac("02:00:0a:63:08:02"), "fe80::1:ffff".parse().unwrap()),
            (mac("02:00:0a:63:08:03"), "fe80::2:0".parse().unwrap()),
        ]
    );
    assert_eq!(tap.hosts[1000].params.igmp_version, 2);
}

#[test]
fn errors_name_the_file_the_line_and_the_problem() {
    let link = "[[link]]\ndevice = \"tap0\"\nkind = \"tap\"\n";
    let cases: Vec<(String, &str)> = vec![
        (
            "[[link]]\ndevice = \"tun0\"\nipv4 = \n".into(),
            "/etc/tunmcastd.toml:3: string values must be quoted, expected literal string",
        ),
        (
            "[[link]]\ndevice = \"tun0\"\nipv4 = \"10.0.0.1/24\"\nspeed = 10\n".into(),
            "/etc/tunmcastd.toml:4: [[link]]: unknown field `speed`, expected one of `device`, \
             `kind`, `suppression`, `ipv4`, `ipv6_ll`, `mac`, `hosts`, `igmp_version`, \
             `mld_version`, `robustness`, `unsolicited_interval_ms`, \
             `v3_unsolicited_interval_ms`, `mtu`",
        ),
        (
            format!("{link}[[link.hosts]]\nipv4 = \"10.0.0.1/24\"\ncolour = 1\n"),
            "/etc/tunmcastd.toml:6: [[link.hosts]]: unknown field `colour`, expected one of \
             `count`, `ipv4`, `ipv6_ll`, `mac`, `igmp_version`, `mld_version`, `robustness`, \
             `unsolicited_interval_ms`, `v3_unsolicited_interval_ms`, `mtu`",
        ),
        (
            "[[link]]\ndevice = \"tun0\"\nipv4 = \"10.0.0.1/24\"\n\
             [[link]]\ndevice = \"tun0\"\nipv4 = \"10.0.1.1/24\"\n"
                .into(),
            "/etc/tunmcastd.toml:5: device `tun0` is already the device of the [[link]] on line 2",
        ),
        (
            "[[link]]\ndevice = \"tun0\"\n[[link.hosts]]\ncount = 2\nipv4 = \"10.0.0.1/24\"\n"
                .into(),
            "/etc/tunmcastd.toml:4: a TUN link has one host, and this gives 2 to `tun0`: many \
             hosts need kind = \"tap\"",
        ),
        (
            format!(
                "{link}[[link.hosts]]\ncount = 10\nipv4 = \"10.0.0.1/24\"\n\
                 [[link]]\ndevice = \"tap1\"\nkind = \"tap\"\n[[link.hosts]]\n\
                 ipv4 = \"10.0.0.10/24\"\nmac = \"02:00:00:00:00:01\"\n"
            ),
            "/etc/tunmcastd.toml:11: IPv4 addresses 10.0.0.10 to 10.0.0.10 overlap those given \
             on line 6 (10.0.0.1 to 10.0.0.10)",
        ),
        (
            format!(
                "{link}[[link.hosts]]\ncount = 10\nipv4 = \"10.0.0.1/24\"\n\
                 mac = \"02:00:00:00:00:01\"\n[[link.hosts]]\nipv4 = \"10.0.1.1/24\"\n\
                 mac = \"02:00:00:00:00:0a\"\n"
            ),
            "/etc/tunmcastd.toml:10: MACs 02:00:00:00:00:0a to 02:00:00:00:00:0a overlap those \
             given on line 7 (02:00:00:00:00:01 to 02:00:00:00:00:0a)",
        ),
        (
            format!("{link}[[link.hosts]]\ncount = 0\nipv4 = \"10.0.0.1/24\"\n"),
            "/etc/tunmcastd.toml:5: `count` must be 1 to 1000000, not 0",
        ),
        (
            format!("{link}[[link.hosts]]\ncount = 250\nipv4 = \"10.0.0.10/24\"\n"),
            "/etc/tunmcastd.toml:6: `ipv4`: 250 hosts from 10.0.0.10 run out of 10.0.0.0/24 \
             (the last would be 10.0.1.3)",
        ),
        (
            format!("{link}[[link.hosts]]\ncount = 246\nipv4 = \"10.0.0.10/24\"\n"),
            "/etc/tunmcastd.toml:6: `ipv4`: 246 hosts from 10.0.0.10 reach 10.0.0.255, \
             the broadcast address of 10.0.0.0/24",
        ),
        (
            format!("{link}[[link.hosts]]\ncount = 3\nipv4 = \"255.255.255.254/0\"\n"),
            "/etc/tunmcastd.toml:6: `ipv4`: 3 hosts from 255.255.255.254 run past 255.255.255.255",
        ),
        (
            format!(
                "{link}[[link.hosts]]\ncount = 2\nipv4 = \"10.0.0.1/24\"\nmac = \"fe:ff:ff:ff:ff:ff\"\n"
            ),
            "/etc/tunmcastd.toml:7: `mac`: 2 hosts from fe:ff:ff:ff:ff:ff reach ff:00:00:00:00:00, \
             a multicast MAC",
        ),
        (
            format!(
                "{link}[[link.hosts]]\ncount = 2\nipv4 = \"10.0.0.1/24\"\nmac = \"fe:ff:ff:ff:ff:ff\"\n"
            )
            .replace("fe:ff", "ff:ff"),
            "/etc/tunmcastd.toml:7: `mac`: ff:ff:ff:ff:ff:ff: a host's own MAC cannot be a \
             multicast address",
        ),
        (
            format!(
                "{link}[[link.hosts]]\ncount = 2\nipv4 = \"10.0.0.1/24\"\nipv6_ll = \"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff\"\n"
            ),
            "/etc/tunmcastd.toml:7: `ipv6_ll`: 2 hosts from febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff \
             run out of fe80::/10",
        ),
        (
            format!("{link}ipv4 = \"10.0.0.1/24\"\nigmp_version = 4\n"),
            "/etc/tunmcastd.toml:5: `igmp_version` must be 1 to 3, not 4",
        ),
        (
            format!("{link}[[link.hosts]]\nipv4 = \"10.0.0.1/24\"\nmld_version = 0\n"),
            "/etc/tunmcastd.toml:6: `mld_version` must be 1 to 2, not 0",
        ),
        (
            format!("{link}ipv4 = \"10.0.0.1/24\"\nrobustness = \"2\"\n"),
            "/etc/tunmcastd.toml:5: [[link]]: `robustness`: invalid type: string \"2\", expected an integer",
        ),
        (
            "ipv4 = \"10.0.0.1/24\"\n[[link]]\ndevice = \"tun0\"\nipv4 = \"10.0.0.1/24\"\n".into(),
            "/etc/tunmcastd.toml:1: `ipv4` describes the one link of the short form, and this \
             file has [[link]] tables: give `ipv4` inside a [[link]] (`device` for `iface`), or \
             drop the [[link]] tables",
        ),
        (
            "iface = \"tun0\"\n[[link]]\ndevice = \"tun0\"\nipv4 = \"10.0.0.1/24\"\n".into(),
            "/etc/tunmcastd.toml:1: `iface` describes the one link of the short form, and this \
             file has [[link]] tables: give `device` inside a [[link]] (`device` for `iface`), \
             or drop the [[link]] tables",
        ),
        (
            "[[link]]\nkind = \"tap\"\nipv4 = \"10.0.0.1/24\"\n".into(),
            "/etc/tunmcastd.toml:1: a [[link]] needs `device`",
        ),
        (
            "[[link]]\ndevice = \"tun0\"\nkind = \"tan\"\n".into(),
            "/etc/tunmcastd.toml:3: [[link]]: `kind`: unknown variant `tan`, expected `tun` or `tap`",
        ),
        (
            "[[link]]\ndevice = \"tun0\"\n".into(),
            "/etc/tunmcastd.toml:1: a [[link]] without [[link.hosts]] needs `ipv4` (its one \
             host's address)",
        ),
        (
            "[[link]]\ndevice = \"tun0\"\nmac = \"02:00:00:00:00:01\"\nipv4 = \"10.0.0.1/24\"\n"
                .into(),
            "/etc/tunmcastd.toml:3: `mac` on a TUN link, which carries no Ethernet: use \
             kind = \"tap\"",
        ),
        (
            format!("{link}ipv4 = \"10.0.0.1/24\"\n[[link.hosts]]\nipv4 = \"10.0.0.2/24\"\n"),
            "/etc/tunmcastd.toml:4: `ipv4` of a [[link]] is its one host's, and this link has \
             [[link.hosts]]: give `ipv4` in each [[link.hosts]]",
        ),
        (
            format!("{link}[[link.hosts]]\nipv4 = \"10.0.0.1\"\n"),
            "/etc/tunmcastd.toml:5: `ipv4`: 10.0.0.1: expected ADDR/PLEN, e.g. 10.99.0.2/24",
        ),
        (
            "[[link]]\ndevice = \"a/b\"\nipv4 = \"10.0.0.1/24\"\n".into(),
            "/etc/tunmcastd.toml:2: `device` \"a/b\" is not a device name (1 to 15 characters, \
             no '/', ':' or spaces)",
        ),
        (
            format!("{link}[link.hosts]\nipv4 = \"10.0.0.1/24\"\n"),
            "/etc/tunmcastd.toml:4: [[link]]: [link.hosts] is one table: write [[link.hosts]] \
             tables, with two brackets",
        ),
        (
            format!("{link}hosts = [{{ ipv4 = \"10.0.0.1/24\", colour = 1 }}]\n"),
            "/etc/tunmcastd.toml:4: [[link]]: unknown field `colour`, expected one of `count`, \
             `ipv4`, `ipv6_ll`, `mac`, `igmp_version`, `mld_version`, `robustness`, \
             `unsolicited_interval_ms`, `v3_unsolicited_interval_ms`, `mtu`",
        ),
        (
            "link = 3\n".into(),
            "/etc/tunmcastd.toml:1: `link` holds links: write each as a [[link]] table",
        ),
        (
            format!("{link}ipv4 = \"10.0.0.1/24\"\nsuppression = 1\n"),
            "/etc/tunmcastd.toml:5: [[link]]: `suppression`: invalid type: integer `1`, expected a \
             boolean",
        ),
        (
            format!(
                "{link}[[link.hosts]]\ncount = 2\nipv4 = \"10.0.0.1/24\"\nipv6_ll = \"fe80::1\"\n\
                 [[link.hosts]]\nipv4 = \"10.0.0.5/24\"\nipv6_ll = \"fe80::2\"\n"
            ),
            "/etc/tunmcastd.toml:10: IPv6 link-local addresses fe80::2 to fe80::2 overlap those \
             given on line 7 (fe80::1 to fe80::2)",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(parse(&text).unwrap_err(), expected, "{text}");
    }
}

#[test]
fn link_locals_may_repeat_on_different_links() {
    let links = links(
        "[[link]]\ndevice = \"tun0\"\nipv4 = \"10.0.0.1/24\"\nipv6_ll = \"fe80::1\"\n\
         [[link]]\ndevice = \"tun1\"\nipv4 = \"10.0.1.1/24\"\nipv6_ll = \"fe80::1\"\n",
    );
    assert_eq!(links[0].hosts[0].ipv6_ll, links[1].hosts[0].ipv6_ll);
}

#[test]
fn overlaps_are_found_among_many_blocks() {
    // 2,000 blocks of 5 hosts, the last one overlapping the first: found by sorting.
    let mut text = String::from("[[link]]\ndevice = \"tap0\"\nkind = \"tap\"\n");
    for i in 0..2000u32 {
        let first = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 1)) + 5 * i);
        text.push_str(&format!(
            "[[link.hosts]]\ncount = 5\nipv4 = \"{first}/8\"\n"
        ));
    }
    assert_eq!(links(&text)[0].hosts.len(), 10_000);
    let last_usable = "[[link]]\ndevice = \"tap0\"\nkind = \"tap\"\n\
                       [[link.hosts]]\ncount = 245\nipv4 = \"10.0.0.10/24\"\n";
    assert_eq!(
        links(last_usable)[0].hosts[244].ipv4.0,
        Ipv4Addr::new(10, 0, 0, 254)
    );
    text.push_str("[[link.hosts]]\nipv4 = \"10.0.0.3/8\"\n");
    let error = parse(&text).unwrap_err();
    assert_eq!(
        error,
        "/etc/tunmcastd.toml:6005: IPv4 addresses 10.0.0.3 to 10.0.0.3 overlap those given on \
         line 6 (10.0.0.1 to 10.0.0.5)"
    );
}
