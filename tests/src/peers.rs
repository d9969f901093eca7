//! Peers of the daemon on the link: mcquerier, FRR's pimd as an IGMP querier (where the kernel
//! has multicast routing), and the namespace's own kernel as a second host.

use std::fs::{self, File};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use nix::net::if_::if_nametoindex;
use nix::sched::{setns, CloneFlags};
use serde_json::Value;
use socket2::{Domain, InterfaceIndexOrAddress, Socket, Type};

use crate::kernel::{kernel_has, KernelFeature};
use crate::namespace::{ci, skipped, test_name};
use crate::processes::{bin, run_ok, Spawned};
use crate::{ip, must_wait, secs, Netns, FRR_DIR};

impl Netns {
    /// Starts mcquerier with `args` (include `--dev NAME`).
    pub fn querier(&self, args: &[&str]) -> Querier<'_> {
        Querier {
            _ns: self,
            process: self.spawn("mcquerier", &bin("mcquerier"), args),
        }
    }

    /// Starts FRR's zebra and pimd in the namespace (a real IGMP querier once
    /// [`Frr::igmp_querier`] configures an interface). `None` means not run (see
    /// [`frr_pimd_can_run`]): the test returns.
    pub fn frr(&self) -> Option<Frr<'_>> {
        if !frr_pimd_can_run(&self.test) {
            return None;
        }
        let zebra = Path::new(FRR_DIR).join("zebra");
        let pimd = Path::new(FRR_DIR).join("pimd");
        let dir = self.dir.join("frr");
        fs::create_dir_all(&dir).unwrap();
        // The daemons drop to user frr and create their sockets here.
        run_ok("chown", &["frr:frr", dir.to_str().unwrap()]);
        let dir_arg = dir.to_str().unwrap().to_string();
        let api = dir.join("zserv.api");
        let api_arg = api.to_str().unwrap().to_string();
        let start = |name: &str, program: &Path| {
            let pid_file = format!("{dir_arg}/{name}.pid");
            let process = self.spawn(
                name,
                program,
                &[
                    "-u",
                    "frr",
                    "-g",
                    "frr",
                    "-P",
                    "0",
                    "-f",
                    "/dev/null",
                    "--log",
                    "stdout",
                    "-z",
                    &api_arg,
                    "--vty_socket",
                    &dir_arg,
                    "-i",
                    &pid_file,
                ],
            );
            let vty = dir.join(format!("{name}.vty"));
            must_wait(&format!("{} to be up", vty.display()), secs(10), || {
                vty.exists()
            });
            process
        };
        let zebra = start("zebra", &zebra);
        let pimd = start("pimd", &pimd);
        Some(Frr {
            _ns: self,
            dir,
            _zebra: zebra,
            _pimd: pimd,
        })
    }

    /// Has the namespace's kernel join `groups` on `iface`, as a process in the namespace
    /// would: it sends its own unsolicited reports onto the link (LAB-NOTES). The sockets are
    /// made on a short-lived thread that enters the namespace; they stay in it.
    pub fn kernel_join(&self, iface: &str, groups: &[&str]) -> KernelMember<'_> {
        let path = Path::new("/var/run/netns").join(&self.name);
        let iface = iface.to_string();
        let groups: Vec<IpAddr> = groups.iter().map(|g| ip(g)).collect();
        let joined = std::thread::spawn(move || {
            let netns = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            // On this thread only; the thread ends right after.
            setns(&netns, CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns: {e}"))?;
            join_in_current_netns(&iface, &groups)
        })
        .join()
        .expect("the joining thread does not panic");
        match joined {
            Ok(sockets) => KernelMember { _ns: self, sockets },
            Err(e) => panic!("the kernel of {} could not join: {e}", self.name),
        }
    }
}

/// Whether FRR's pimd can be a querier here; a test calls it first, before it builds anything.
/// FRR not installed: a failure under `CI=true` (scripts/test.sh installs it), else a loud
/// SKIPPED line. A kernel without IPv4 multicast routing (pimd's `MRT_INIT` fails with
/// ENOPROTOOPT and it never learns a group): the test is not run, and says so.
pub fn frr_pimd_can_run(test: &str) -> bool {
    let installed = ["zebra", "pimd"]
        .iter()
        .all(|daemon| Path::new(FRR_DIR).join(daemon).is_file());
    if !installed {
        if ci() {
            panic!(
                "{}: FRR (zebra, pimd) is not installed; CI=true",
                test_name(test)
            );
        }
        skipped(&format!("SKIPPED (needs FRR): {}", test_name(test)));
        return false;
    }
    kernel_has(KernelFeature::Ipv4MulticastRouting, "FRR pimd")
}

/// FRR's zebra and pimd running in a namespace. Killed on drop.
pub struct Frr<'a> {
    _ns: &'a Netns,
    dir: PathBuf,
    _zebra: Spawned,
    _pimd: Spawned,
}

impl Frr<'_> {
    /// `vtysh -c C1 -c C2 ...` against these daemons; fails the test on error.
    pub fn vtysh(&self, commands: &[&str]) -> String {
        let mut args = vec!["--vty_socket", self.dir.to_str().unwrap()];
        for command in commands {
            args.extend(["-c", command]);
        }
        run_ok("vtysh", &args)
    }

    /// Makes pimd an IGMP querier of `version` on `iface`, with Max Resp Time
    /// `max_resp_ds` (1/10 s) and Query Interval `interval_s`.
    pub fn igmp_querier(&self, iface: &str, version: u8, max_resp_ds: u32, interval_s: u32) {
        let interface = format!("interface {iface}");
        let version = format!("ip igmp version {version}");
        // Max response time before query interval, or FRR refuses the config.
        let max_resp = format!("ip igmp query-max-response-time {max_resp_ds}");
        let interval = format!("ip igmp query-interval {interval_s}");
        self.vtysh(&[
            "configure terminal",
            &interface,
            "ip igmp",
            &version,
            &max_resp,
            &interval,
        ]);
    }

    /// Groups pimd has learned on `iface` (`show ip igmp groups json`).
    pub fn igmp_groups(&self, iface: &str) -> Vec<IpAddr> {
        let text = self.vtysh(&["show ip igmp groups json"]);
        let json: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("show ip igmp groups json: {e}: {text}"));
        json[iface]["groups"]
            .as_array()
            .map(|groups| {
                groups
                    .iter()
                    .filter_map(|g| g["group"].as_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `configure terminal` / `interface IFACE` / `lines`, e.g.
    /// `["ip igmp last-member-query-interval 5"]`.
    pub fn interface_config(&self, iface: &str, lines: &[&str]) {
        let interface = format!("interface {iface}");
        let mut commands = vec!["configure terminal", interface.as_str()];
        commands.extend_from_slice(lines);
        self.vtysh(&commands);
    }

    fn vtysh_json(&self, command: &str) -> Value {
        let text = self.vtysh(&[command]);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{command}: {e}: {text}"))
    }

    /// pimd's entry for `group` on `iface` in `show ip igmp groups json`
    /// (`{"group","mode","timer","sourcesCount","version","uptime"}`; v2 entries have no mode).
    pub fn igmp_group(&self, iface: &str, group: IpAddr) -> Option<Value> {
        let json = self.vtysh_json("show ip igmp groups json");
        json[iface]["groups"]
            .as_array()?
            .iter()
            .find(|g| g["group"].as_str().and_then(|s| s.parse().ok()) == Some(group))
            .cloned()
    }

    /// pimd's entry for `group` on `iface` in `show ip igmp sources json`
    /// (`{"group","sources":[{"source","timer","forwarded","uptime"}]}`).
    pub fn igmp_group_sources(&self, iface: &str, group: IpAddr) -> Option<Value> {
        let json = self.vtysh_json("show ip igmp sources json");
        let entry = &json[iface][group.to_string()];
        (!entry.is_null()).then(|| entry.clone())
    }

    /// The sources pimd lists for `group` (as text: `*` stands for any source), each with
    /// whether its timer runs (`--:--` marks an excluded source in EXCLUDE mode).
    pub fn igmp_source_list(&self, iface: &str, group: IpAddr) -> Vec<(String, bool)> {
        self.igmp_group_sources(iface, group)
            .and_then(|entry| entry["sources"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|s| {
                (
                    s["source"].as_str().unwrap_or("?").to_string(),
                    s["timer"].as_str() != Some("--:--"),
                )
            })
            .collect()
    }
}

/// A running mcquerier. Killed on drop if still running.
pub struct Querier<'a> {
    _ns: &'a Netns,
    pub process: Spawned,
}

impl Querier<'_> {
    /// Waits up to `timeout` for mcquerier to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.process.wait_timeout(timeout)
    }

    /// What it printed so far.
    pub fn output(&self) -> String {
        self.process.stdout_text()
    }

    /// Its `--json` lines so far (`{"time":..,"src":..,"type":..,"group":..}`).
    pub fn heard(&self) -> Vec<Value> {
        self.output()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

/// The namespace's kernel as a second host on the link: sockets made inside the namespace,
/// each joined to one group on one interface (IP_ADD_MEMBERSHIP with an ifindex,
/// IPV6_JOIN_GROUP). Dropping it (or [`KernelMember::leave`]) closes them: the kernel leaves.
pub struct KernelMember<'a> {
    _ns: &'a Netns,
    sockets: Vec<(IpAddr, Socket)>,
}

impl KernelMember<'_> {
    /// Closes the socket that holds `group`: the kernel leaves it.
    pub fn leave(&mut self, group: &str) {
        let group = ip(group);
        let before = self.sockets.len();
        self.sockets.retain(|(g, _)| *g != group);
        assert!(
            self.sockets.len() < before,
            "the kernel never joined {group}"
        );
    }
}

/// Joins `groups` on `iface` from the calling thread (already in the namespace).
fn join_in_current_netns(iface: &str, groups: &[IpAddr]) -> Result<Vec<(IpAddr, Socket)>, String> {
    let ifindex = if_nametoindex(iface).map_err(|e| format!("no interface {iface}: {e}"))?;
    let mut sockets = Vec::new();
    for &group in groups {
        let domain = if group.is_ipv4() {
            Domain::IPV4
        } else {
            Domain::IPV6
        };
        let socket = Socket::new(domain, Type::DGRAM, None).map_err(|e| format!("socket: {e}"))?;
        let joined = match group {
            // IP_ADD_MEMBERSHIP with an ip_mreqn naming the interface by index.
            IpAddr::V4(group) => {
                socket.join_multicast_v4_n(&group, &InterfaceIndexOrAddress::Index(ifindex))
            }
            IpAddr::V6(group) => socket.join_multicast_v6(&group, ifindex),
        };
        joined.map_err(|e| format!("joining {group}: {e}"))?;
        sockets.push((group, socket));
    }
    Ok(sockets)
}
