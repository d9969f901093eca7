//! The Linux bridge as a peer: a bridge with IGMP / MLD snooping and its own querier, a TAP
//! port for the daemon, and what the bridge learned (`bridge -d -j mdb show`): per port and
//! group the filter mode and source list of its IGMPv3 / MLDv2 state, and its (S,G) entries.
//! It needs no multicast routing in the kernel, so it is the peer every kernel with bridging
//! has.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use serde_json::Value;

use crate::processes::run_ok;
use crate::{ip, Netns};

/// How a snooping bridge is made: its querier's protocol versions and intervals (centiseconds,
/// as `ip link` takes them).
#[derive(Debug, Clone, Copy)]
pub struct SnoopingBridge {
    /// `mcast_igmp_version`: 2 or 3.
    pub igmp_version: u8,
    /// `mcast_mld_version`: 1 or 2.
    pub mld_version: u8,
    /// `mcast_query_interval`.
    pub query_interval_cs: u32,
    /// `mcast_query_response_interval`: the queries' Max Resp Time.
    pub response_interval_cs: u32,
    /// `mcast_last_member_interval`: between group(-and-source)-specific queries.
    pub last_member_interval_cs: u32,
    /// `mcast_membership_interval`: how long a group (or source) is kept without a report.
    /// `None`: the kernel's default (260 s).
    pub membership_interval_cs: Option<u32>,
}

impl Default for SnoopingBridge {
    /// IGMPv3 and MLDv2, a general query every 3 s answered within 1 s, 0.5 s between
    /// last-member queries.
    fn default() -> SnoopingBridge {
        SnoopingBridge {
            igmp_version: 3,
            mld_version: 2,
            query_interval_cs: 300,
            response_interval_cs: 100,
            last_member_interval_cs: 50,
            membership_interval_cs: None,
        }
    }
}

impl Netns {
    /// Creates bridge `br` as `config` says, with multicast snooping and its own querier, the
    /// IPv4 address `addr` and the link-local `fe80::1` (no DAD: the MLD querier needs a
    /// usable link-local source from the start), and a TAP `tap` as a port that gets no
    /// unregistered multicast (so what reaches it is what the bridge learned).
    pub fn snooping_bridge(&self, br: &str, tap: &str, addr: &str, config: &SnoopingBridge) {
        let igmp = config.igmp_version.to_string();
        let mld = config.mld_version.to_string();
        let query = config.query_interval_cs.to_string();
        let response = config.response_interval_cs.to_string();
        let last_member = config.last_member_interval_cs.to_string();
        let membership = config.membership_interval_cs.map(|cs| cs.to_string());
        let mut args = vec![
            "link",
            "add",
            br,
            "type",
            "bridge",
            "mcast_snooping",
            "1",
            "mcast_query_use_ifaddr",
            "1",
            "mcast_igmp_version",
            &igmp,
            "mcast_mld_version",
            &mld,
            "mcast_query_interval",
            &query,
            "mcast_query_response_interval",
            &response,
            "mcast_startup_query_interval",
            &response,
            "mcast_last_member_interval",
            &last_member,
        ];
        if let Some(membership) = &membership {
            args.extend(["mcast_membership_interval", membership]);
        }
        self.ip(&args);
        // The querier only after the intervals: switching it on holds snooped forwarding back
        // for one query response interval, the one in force at that moment (netlink applies
        // the attributes in its own order, so `mcast_querier 1` in the `add` meets the default
        // 10 s, and nothing is forwarded to the TAP for the first 10 s).
        self.ip(&["link", "set", br, "type", "bridge", "mcast_querier", "1"]);
        self.ip(&["link", "set", br, "addrgenmode", "none"]);
        self.ip(&["tuntap", "add", "dev", tap, "mode", "tap"]);
        self.ip(&["link", "set", tap, "master", br]);
        self.ip(&["addr", "add", addr, "dev", br]);
        self.ip(&["-6", "addr", "add", "fe80::1/64", "dev", br, "nodad"]);
        self.ip(&["link", "set", br, "up"]);
        self.ip(&["link", "set", tap, "up"]);
        run_ok(
            "bridge",
            &[
                "-n",
                self.name(),
                "link",
                "set",
                "dev",
                tap,
                "mcast_flood",
                "off",
            ],
        );
    }

    /// Changes the protocol versions bridge `br`'s querier speaks, at run time.
    pub fn bridge_versions(&self, br: &str, igmp_version: u8, mld_version: u8) {
        self.ip(&[
            "link",
            "set",
            br,
            "type",
            "bridge",
            "mcast_igmp_version",
            &igmp_version.to_string(),
            "mcast_mld_version",
            &mld_version.to_string(),
        ]);
    }

    /// What bridge `br` learned on port `port` (`bridge -d -j mdb show dev BR`).
    pub fn mdb(&self, br: &str, port: &str) -> Mdb {
        let text = run_ok(
            "bridge",
            &["-n", self.name(), "-d", "-j", "mdb", "show", "dev", br],
        );
        let json: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("bridge -d -j mdb show dev {br}: {e}: {text}"));
        let entries = json
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|table| table["mdb"].as_array())
            .flatten()
            .filter(|entry| entry["port"] == port)
            .map(MdbEntry::from_json)
            .collect();
        Mdb { entries }
    }

    /// Forgets bridge `br`'s entry for `group` on `port` (`bridge mdb del`), as if it had
    /// timed out: only a report can bring it back.
    pub fn mdb_forget(&self, br: &str, port: &str, group: IpAddr) {
        run_ok(
            "bridge",
            &[
                "-n",
                self.name(),
                "mdb",
                "del",
                "dev",
                br,
                "port",
                port,
                "grp",
                &group.to_string(),
            ],
        );
    }
}

/// One entry of the bridge's multicast database on one port: a group's state (`source` none)
/// or one (S,G) of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdbEntry {
    pub group: IpAddr,
    /// The source of an (S,G) entry; `None` for the group's own entry.
    pub source: Option<IpAddr>,
    /// "include" or "exclude" (IGMPv3 / MLDv2 snooping); `None` under IGMPv2 / MLDv1 snooping.
    pub filter_mode: Option<String>,
    /// The group entry's source list (sorted), each with whether its timer runs. INCLUDE:
    /// the sources wanted (timers running); EXCLUDE: those whose timer stopped are excluded.
    pub source_list: Vec<(IpAddr, bool)>,
    /// An (S,G) entry of a source excluded from the group (EXCLUDE mode).
    pub blocked: bool,
}

impl MdbEntry {
    fn from_json(entry: &Value) -> MdbEntry {
        let text = |key: &str| entry[key].as_str().map(str::to_string);
        let mut source_list: Vec<(IpAddr, bool)> = entry["source_list"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| {
                let running = s["timer"]
                    .as_str()
                    .and_then(|t| t.parse::<f64>().ok())
                    .is_some_and(|t| t > 0.0);
                Some((ip(s["address"].as_str()?), running))
            })
            .collect();
        source_list.sort();
        MdbEntry {
            group: ip(&text("grp").unwrap_or_else(|| panic!("an mdb entry without grp: {entry}"))),
            source: text("src").map(|s| ip(&s)),
            filter_mode: text("filter_mode"),
            source_list,
            blocked: entry["flags"]
                .as_array()
                .is_some_and(|flags| flags.iter().any(|f| f == "blocked")),
        }
    }
}

/// The bridge's entries on one port.
#[derive(Debug, Clone, Default)]
pub struct Mdb {
    pub entries: Vec<MdbEntry>,
}

impl Mdb {
    /// The group's own entry.
    pub fn group(&self, group: IpAddr) -> Option<&MdbEntry> {
        self.entries
            .iter()
            .find(|e| e.group == group && e.source.is_none())
    }

    /// The groups learned (each once).
    pub fn groups(&self) -> BTreeSet<IpAddr> {
        self.entries.iter().map(|e| e.group).collect()
    }

    /// The group's state as `(mode, sources)`: INCLUDE and the sources it forwards, or
    /// EXCLUDE and the sources it blocks, checked against the (S,G) entries it must come with
    /// (one per listed source, blocked where its timer stopped in EXCLUDE mode). `None` if
    /// the group is not learned; a panic if the group's entry and its (S,G) entries disagree.
    pub fn filter(&self, group: IpAddr) -> Option<(String, Vec<IpAddr>)> {
        let entry = self.group(group)?;
        // IGMPv2 / MLDv1 snooping keeps no filter mode: its (*,G) is the any-source state,
        // EXCLUDE {}.
        let mode = entry
            .filter_mode
            .clone()
            .unwrap_or_else(|| "exclude".to_string());
        let mut per_source: Vec<(IpAddr, bool)> = self
            .entries
            .iter()
            .filter(|e| e.group == group)
            .filter_map(|e| Some((e.source?, e.blocked)))
            .collect();
        per_source.sort();
        let expected: Vec<(IpAddr, bool)> = entry
            .source_list
            .iter()
            .map(|&(s, running)| (s, mode == "exclude" && !running))
            .collect();
        assert_eq!(
            per_source, expected,
            "the (S,G) entries of {group} disagree with its source list:\n{self}"
        );
        let sources = expected
            .iter()
            .filter(|&&(_, blocked)| blocked == (mode == "exclude"))
            .map(|&(s, _)| s)
            .collect();
        Some((mode, sources))
    }
}

impl fmt::Display for Mdb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.entries {
            let sources: Vec<String> = e
                .source_list
                .iter()
                .map(|(s, running)| format!("{s}{}", if *running { "" } else { "/0" }))
                .collect();
            writeln!(
                f,
                "grp {} src {} mode {} sources {{{}}}{}",
                e.group,
                e.source.map_or("*".to_string(), |s| s.to_string()),
                e.filter_mode.as_deref().unwrap_or("-"),
                sources.join(","),
                if e.blocked { " blocked" } else { "" }
            )?;
        }
        Ok(())
    }
}
