//! The links and hosts one tunmcastd serves: a validated model built from the `[[link]]`
//! tables of the configuration file (see `config::links`) or from the one-link command line,
//! so that the daemon has one model either way; and the difference between two models, which
//! a SIGHUP applies without disturbing what did not change.
//!
//! A TUN link carries one host (bare IP packets have no station address); a TAP link carries
//! any number of emulated hosts, each with its own MAC, IPv4 address and IPv6 link-local
//! address, each an interface of the membership core.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::framing::Mac;
use crate::Args;

/// Which device a link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// Bare IP packets; one host.
    Tun,
    /// Ethernet frames; any number of hosts, each with its own MAC.
    Tap,
}

/// The per-host protocol settings. Small and `Copy`: one per host, and there may be 10^5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostParams {
    /// Highest IGMP version to speak, 1 to 3.
    pub igmp_version: u8,
    /// Highest MLD version to speak, 1 or 2.
    pub mld_version: u8,
    /// Robustness Variable, 1 to 10.
    pub robustness: u8,
    /// Unsolicited Report Interval for IGMPv1/v2 and MLDv1, in ms.
    pub unsolicited_interval_ms: u32,
    /// Unsolicited Report Interval for IGMPv3 and MLDv2, in ms.
    pub v3_unsolicited_interval_ms: u32,
    /// IGMPv3 / MLDv2 reports are packed to fit this MTU.
    pub mtu: u16,
}

impl Default for HostParams {
    /// The defaults of the command line (RFC 3376 §8, RFC 3810 §9).
    fn default() -> HostParams {
        HostParams {
            igmp_version: 3,
            mld_version: 2,
            robustness: 2,
            unsolicited_interval_ms: 10_000,
            v3_unsolicited_interval_ms: 1_000,
            mtu: 1500,
        }
    }
}

impl HostParams {
    /// The settings of the command line (with the configuration file's top-level keys): the
    /// defaults of every `[[link]]` and `[[link.hosts]]`.
    pub fn from_args(args: &Args) -> HostParams {
        HostParams {
            igmp_version: args.igmp_version,
            mld_version: args.mld_version,
            robustness: args.robustness,
            // clap limits both to 3,600,000 ms.
            unsolicited_interval_ms: u32::try_from(args.unsolicited_interval_ms)
                .unwrap_or(u32::MAX),
            v3_unsolicited_interval_ms: u32::try_from(args.v3_unsolicited_interval_ms)
                .unwrap_or(u32::MAX),
            mtu: args.mtu,
        }
    }
}

/// One emulated host: an interface of the core. No heap data, so 10^5 of them stay compact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostSpec {
    /// Its station address on a TAP link; `None` on a TUN link.
    pub mac: Option<Mac>,
    /// Its IPv4 address and prefix length: the source of its IGMP messages.
    pub ipv4: (Ipv4Addr, u8),
    /// Its IPv6 link-local address: the source of its MLD messages.
    pub ipv6_ll: Ipv6Addr,
    pub params: HostParams,
}

/// A host's addresses: what the daemon keeps of its [`HostSpec`] (the protocol settings are
/// its core's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostAddrs {
    pub mac: Option<Mac>,
    pub ipv4: (Ipv4Addr, u8),
    pub ipv6_ll: Ipv6Addr,
}

impl HostSpec {
    pub fn addrs(&self) -> HostAddrs {
        HostAddrs {
            mac: self.mac,
            ipv4: self.ipv4,
            ipv6_ll: self.ipv6_ll,
        }
    }

    /// What identifies a host across a reload: its MAC and IPv4 address.
    pub fn identity(&self) -> (Option<[u8; 6]>, Ipv4Addr) {
        (self.mac.map(|m| m.0), self.ipv4.0)
    }
}

/// One TUN or TAP device and the hosts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSpec {
    /// The device name, unique in a topology.
    pub device: String,
    pub kind: LinkKind,
    /// The hosts share a LAN segment: a v1/v2 report one host sends is heard by the others
    /// and suppresses theirs (RFC 2236 §3). False behind a snooping switch, where each host
    /// must report for itself.
    pub suppression: bool,
    /// The device's MTU.
    pub mtu: u16,
    /// Never empty; exactly one on a TUN link.
    pub hosts: Vec<HostSpec>,
}

/// Every link the daemon serves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Topology {
    pub links: Vec<LinkSpec>,
    /// The `[[stream]]` tables: test streams sent on these links.
    pub streams: Vec<crate::streams::StreamSpec>,
}

impl Topology {
    /// The one-link form of the command line: a TUN link with one host, or with `--tap` a TAP
    /// link with one host whose MAC is `--mac` (or derived from `--ipv4`). Addresses are
    /// derived exactly as the one-link daemon always did.
    pub fn from_args(args: &Args) -> Topology {
        let host = HostSpec {
            mac: args.tap.then(|| args.mac()),
            ipv4: args.ipv4(),
            ipv6_ll: args.ipv6_link_local(),
            params: HostParams::from_args(args),
        };
        Topology {
            links: vec![LinkSpec {
                device: args.iface.clone().unwrap_or_default(),
                kind: if args.tap {
                    LinkKind::Tap
                } else {
                    LinkKind::Tun
                },
                suppression: true,
                mtu: args.mtu,
                hosts: vec![host],
            }],
            streams: Vec::new(),
        }
    }

    /// How many hosts on all links.
    pub fn host_count(&self) -> usize {
        self.links.iter().map(|l| l.hosts.len()).sum()
    }

    /// What a reload from `self` to `new` changes. Links are matched by device name, hosts
    /// on a link by MAC and IPv4 address. O(links + hosts).
    pub fn diff(&self, new: &Topology) -> TopologyDiff {
        let old_by_device: HashMap<&str, usize> = self
            .links
            .iter()
            .enumerate()
            .map(|(i, l)| (l.device.as_str(), i))
            .collect();
        let mut diff = TopologyDiff::default();
        let mut old_matched = vec![false; self.links.len()];
        for (new_index, new_link) in new.links.iter().enumerate() {
            let old_index = old_by_device
                .get(new_link.device.as_str())
                .copied()
                .filter(|&i| self.links[i].kind == new_link.kind);
            match old_index {
                // A device that changed kind is a different device under the same name.
                None => diff.links_added.push(new_index),
                Some(old_index) => {
                    old_matched[old_index] = true;
                    diff.links_kept.push(link_diff(
                        old_index,
                        &self.links[old_index],
                        new_index,
                        new_link,
                    ));
                }
            }
        }
        diff.links_removed = (0..self.links.len()).filter(|&i| !old_matched[i]).collect();
        diff
    }
}

/// What changes between two topologies. Indices point into the old (`removed`) or the new
/// (`added`) topology's `links` and `hosts`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopologyDiff {
    /// New links, by index in the new topology: open them.
    pub links_added: Vec<usize>,
    /// Gone links (or links whose kind changed), by index in the old topology: their hosts
    /// leave their groups, then the device is closed.
    pub links_removed: Vec<usize>,
    /// Links present in both: their devices stay open.
    pub links_kept: Vec<LinkDiff>,
}

impl TopologyDiff {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.links_added.is_empty()
            && self.links_removed.is_empty()
            && self.links_kept.iter().all(LinkDiff::is_empty)
    }
}

/// What changes on a link present in both topologies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkDiff {
    pub old_link: usize,
    pub new_link: usize,
    /// `suppression` or `mtu` of the link changed: apply in place.
    pub settings_changed: bool,
    /// Hosts to create, by index in the new link.
    pub hosts_added: Vec<usize>,
    /// Hosts to remove, by index in the old link. A host whose settings changed is removed
    /// and added again (its groups are left and joined again by whoever owns them).
    pub hosts_removed: Vec<usize>,
    /// Hosts to keep untouched: (old index, new index).
    pub hosts_unchanged: Vec<(usize, usize)>,
}

impl LinkDiff {
    pub fn is_empty(&self) -> bool {
        !self.settings_changed && self.hosts_added.is_empty() && self.hosts_removed.is_empty()
    }
}

fn link_diff(old_index: usize, old: &LinkSpec, new_index: usize, new: &LinkSpec) -> LinkDiff {
    let old_by_identity: HashMap<_, usize> = old
        .hosts
        .iter()
        .enumerate()
        .map(|(i, h)| (h.identity(), i))
        .collect();
    let mut diff = LinkDiff {
        old_link: old_index,
        new_link: new_index,
        settings_changed: old.suppression != new.suppression || old.mtu != new.mtu,
        hosts_added: Vec::new(),
        hosts_removed: Vec::new(),
        hosts_unchanged: Vec::new(),
    };
    let mut old_kept = vec![false; old.hosts.len()];
    for (new_host, host) in new.hosts.iter().enumerate() {
        match old_by_identity.get(&host.identity()) {
            Some(&old_host) if old.hosts[old_host] == *host => {
                old_kept[old_host] = true;
                diff.hosts_unchanged.push((old_host, new_host));
            }
            _ => diff.hosts_added.push(new_host),
        }
    }
    diff.hosts_removed = (0..old.hosts.len()).filter(|&i| !old_kept[i]).collect();
    diff
}

/// The modified EUI-64 link-local address of a MAC (RFC 4291 §2.5.1 and appendix A):
/// fe80:: followed by the MAC with the universal/local bit flipped and ff:fe in its middle.
pub fn eui64_link_local(mac: Mac) -> Ipv6Addr {
    let m = mac.0;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 0x02,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn host(mac: u8, ipv4: [u8; 4]) -> HostSpec {
        let mac = Mac([2, 0, 0, 0, 0, mac]);
        HostSpec {
            mac: Some(mac),
            ipv4: (Ipv4Addr::from(ipv4), 24),
            ipv6_ll: eui64_link_local(mac),
            params: HostParams::default(),
        }
    }

    fn link(device: &str, kind: LinkKind, hosts: Vec<HostSpec>) -> LinkSpec {
        LinkSpec {
            device: device.to_string(),
            kind,
            suppression: true,
            mtu: 1500,
            hosts,
        }
    }

    #[test]
    fn host_spec_stays_small() {
        assert!(std::mem::size_of::<HostSpec>() <= 48);
    }

    #[test]
    fn the_command_line_is_one_link_with_one_host() {
        let args = Args::parse_from(["d", "--iface", "tun3", "--ipv4", "10.99.0.2/24"]);
        let topology = Topology::from_args(&args);
        assert_eq!(topology.links.len(), 1);
        let link = &topology.links[0];
        assert_eq!((link.device.as_str(), link.kind), ("tun3", LinkKind::Tun));
        assert_eq!(link.hosts.len(), 1);
        assert_eq!(link.hosts[0].mac, None);
        assert_eq!(
            link.hosts[0].ipv6_ll,
            "fe80::a63:2".parse::<Ipv6Addr>().unwrap()
        );

        let args = Args::parse_from([
            "d",
            "--iface",
            "tap3",
            "--tap",
            "--ipv4",
            "10.99.0.2/24",
            "--robustness",
            "4",
        ]);
        let topology = Topology::from_args(&args);
        let link = &topology.links[0];
        assert_eq!(link.kind, LinkKind::Tap);
        assert_eq!(link.hosts[0].mac, Some(args.mac()));
        assert_eq!(link.hosts[0].params.robustness, 4);
    }

    #[test]
    fn eui64_flips_the_universal_local_bit() {
        let mac = "02:00:00:00:01:00".parse().unwrap();
        assert_eq!(
            eui64_link_local(mac),
            "fe80::ff:fe00:100".parse::<Ipv6Addr>().unwrap()
        );
        let mac = "00:1b:21:0a:0b:0c".parse().unwrap();
        assert_eq!(
            eui64_link_local(mac),
            "fe80::21b:21ff:fe0a:b0c".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn diff_matches_links_by_device_and_hosts_by_mac_and_address() {
        let old = Topology {
            links: vec![
                link(
                    "tap0",
                    LinkKind::Tap,
                    vec![host(1, [10, 0, 0, 1]), host(2, [10, 0, 0, 2])],
                ),
                link("tun0", LinkKind::Tun, vec![host(9, [10, 1, 0, 1])]),
                link("gone", LinkKind::Tap, vec![host(7, [10, 2, 0, 1])]),
            ],
            streams: Vec::new(),
        };
        let mut changed = host(2, [10, 0, 0, 2]);
        changed.params.robustness = 5;
        let new = Topology {
            links: vec![
                link("tun0", LinkKind::Tap, vec![host(9, [10, 1, 0, 1])]),
                link(
                    "tap0",
                    LinkKind::Tap,
                    vec![host(3, [10, 0, 0, 3]), changed, host(1, [10, 0, 0, 1])],
                ),
                link("new", LinkKind::Tun, vec![host(8, [10, 3, 0, 1])]),
            ],
            streams: Vec::new(),
        };
        let diff = old.diff(&new);
        // tun0 became a TAP: removed and added again.
        assert_eq!(diff.links_added, vec![0, 2]);
        assert_eq!(diff.links_removed, vec![1, 2]);
        assert_eq!(
            diff.links_kept,
            vec![LinkDiff {
                old_link: 0,
                new_link: 1,
                settings_changed: false,
                hosts_added: vec![0, 1],
                hosts_removed: vec![1],
                hosts_unchanged: vec![(0, 2)],
            }]
        );
        assert!(!diff.is_empty());
        assert!(new.diff(&new).is_empty());
        assert_eq!(new.diff(&new).links_kept[1].hosts_unchanged.len(), 3);
    }
}
