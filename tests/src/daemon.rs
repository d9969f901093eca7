//! A tunmcastd started in a namespace, and tunmcastctl run against its control socket.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::{Map, Value};

use crate::processes::{bin, Spawned};
use crate::{ip, secs, wait_until, Netns, DAEMON_V4_CIDR};

impl Netns {
    /// Starts tunmcastd on the first TUN with the daemon's standard addresses
    /// and `<dir>/ctl.sock`, as an IGMPv2 / MLDv1 host unless `extra` names the
    /// versions, plus `extra`; returns once `tunmcastctl ping` answers.
    pub fn spawn_daemon(&self, extra: &[&str]) -> Daemon<'_> {
        self.spawn_daemon_under(&[], extra)
    }

    /// [`Netns::spawn_daemon`], started by `wrapper` (a program and the arguments before the
    /// daemon's path, as `setpriv --bounding-set=-net_raw` takes them); none: directly.
    pub fn spawn_daemon_under(&self, wrapper: &[&str], extra: &[&str]) -> Daemon<'_> {
        let socket = self.dir.join("ctl.sock");
        let socket_arg = socket.to_str().expect("UTF-8 temp dir").to_string();
        let tun = self.first_tun();
        let mut args = vec![
            "--tun",
            &tun,
            "--ipv4",
            DAEMON_V4_CIDR,
            "--ipv6-ll",
            "fe80::2",
            "--control",
            &socket_arg,
        ];
        // The v1/v2 suites speak the seeds' versions; a test that wants IGMPv3 / MLDv2 (the
        // daemon's defaults) says so with its own --igmp-version / --mld-version.
        if !extra.contains(&"--igmp-version") {
            args.extend_from_slice(&["--igmp-version", "2"]);
        }
        if !extra.contains(&"--mld-version") {
            args.extend_from_slice(&["--mld-version", "1"]);
        }
        args.extend_from_slice(extra);
        match wrapper.split_first() {
            None => self.spawn_daemon_with(&args, &socket),
            Some((program, before)) => {
                let daemon = bin("tunmcastd");
                let mut full: Vec<&str> = before.to_vec();
                full.push(daemon.to_str().expect("UTF-8 binary path"));
                full.extend_from_slice(&args);
                self.start_daemon(Path::new(program), &full, &socket)
            }
        }
    }

    /// The `--config` file [`Netns::spawn_configured`] writes: rewrite it and send SIGHUP to
    /// reload.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("links.toml")
    }

    /// Starts tunmcastd on the configuration file `text` (`[[link]]` tables and options),
    /// written to [`Netns::config_path`], with the control socket `<dir>/ctl.sock`.
    pub fn spawn_configured(&self, text: &str) -> Daemon<'_> {
        let config = self.config_path();
        std::fs::write(&config, text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", config.display()));
        let socket = self.dir.join("ctl.sock");
        let args = [
            "--config",
            config.to_str().expect("UTF-8 temp dir"),
            "--control",
            socket.to_str().expect("UTF-8 temp dir"),
        ];
        self.spawn_daemon_with(&args, &socket)
    }

    /// Starts tunmcastd with exactly `args`; `socket` is its control socket.
    pub fn spawn_daemon_with(&self, args: &[&str], socket: &Path) -> Daemon<'_> {
        self.start_daemon(&bin("tunmcastd"), args, socket)
    }

    /// Runs `program ARGS`, which starts the daemon, and waits for its control socket.
    fn start_daemon(&self, program: &Path, args: &[&str], socket: &Path) -> Daemon<'_> {
        let ctl = bin("tunmcastctl");
        let process = self.spawn("tunmcastd", program, args);
        let mut daemon = Daemon {
            ns: self,
            process,
            socket: socket.to_path_buf(),
            ctl,
        };
        let ready = wait_until(secs(10), || {
            if let Some(status) = daemon.process.try_status() {
                panic!(
                    "tunmcastd exited during start-up ({status}):\n{}",
                    daemon.log()
                );
            }
            daemon.socket.exists() && daemon.ctl(&["ping"]).status.success()
        });
        if !ready {
            panic!(
                "tunmcastd did not answer `tunmcastctl --control {} ping` within 10 s",
                socket.display()
            );
        }
        daemon
    }
}

/// A packet socket of the daemon, as `/proc/net/packet` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketSocket {
    /// 3 (ETH_P_ALL) once bound to receive, 0 before.
    pub protocol: u16,
    /// The device it is bound to; 0 unbound.
    pub ifindex: u32,
    /// Its hook is in the device's list: the kernel hands it a copy of each frame.
    pub hooked: bool,
}

/// A running tunmcastd. Killed on drop if still running.
pub struct Daemon<'a> {
    pub(crate) ns: &'a Netns,
    pub process: Spawned,
    pub(crate) socket: PathBuf,
    /// The tunmcastctl binary.
    pub(crate) ctl: PathBuf,
}

impl Daemon<'_> {
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn signal(&self, signal: Signal) {
        self.process.signal(signal);
    }

    /// Waits for the daemon to exit; fails the test if it does not within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        match self.process.wait_timeout(timeout) {
            Some(status) => status,
            None => panic!(
                "tunmcastd (pid {}) still running after {timeout:?}",
                self.pid()
            ),
        }
    }

    /// The daemon's stderr (its log, at RUST_LOG=debug).
    pub fn log(&self) -> String {
        self.process.stderr_text()
    }

    /// `tunmcastctl --control SOCKET ARGS` (run in the host namespace: the
    /// socket is a path, not a network resource).
    pub fn ctl(&self, args: &[&str]) -> Output {
        let mut command = Command::new(&self.ctl);
        command
            .arg("--control")
            .arg(&self.socket)
            .args(args)
            .env_remove("TUNMCAST_CONTROL")
            .stdin(Stdio::null());
        command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.ctl.display()))
    }

    /// [`Daemon::ctl`] that must succeed; returns stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        if !out.status.success() {
            panic!(
                "`tunmcastctl {}` failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8(out.stdout).expect("tunmcastctl prints UTF-8")
    }

    /// `tunmcastctl --json ARGS`, parsed.
    pub fn ctl_json(&self, args: &[&str]) -> Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let text = self.ctl_ok(&full);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("`tunmcastctl --json {}`: {e}: {text}", args.join(" ")))
    }

    /// `show --json`: `{"interfaces":[...],"groups":[...]}`.
    pub fn show(&self) -> Value {
        self.ctl_json(&["show"])
    }

    pub fn groups(&self) -> Vec<Value> {
        self.show()["groups"]
            .as_array()
            .cloned()
            .expect("show has a groups array")
    }

    /// The `show` entry for `group` (compared as addresses, not strings).
    pub fn group(&self, group: &str) -> Option<Value> {
        let wanted = ip(group);
        self.groups()
            .into_iter()
            .find(|g| g["group"].as_str().and_then(|s| s.parse().ok()) == Some(wanted))
    }

    /// `stats --json`: counter name → value.
    pub fn stats(&self) -> Map<String, Value> {
        match self.ctl_json(&["stats"]) {
            Value::Object(stats) => stats,
            other => panic!("stats --json is not an object: {other}"),
        }
    }

    pub fn counter(&self, name: &str) -> u64 {
        let stats = self.stats();
        stats
            .get(name)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("no counter {name} in {stats:?}"))
    }

    /// The daemon's packet sockets (its kernel stamps'), as the kernel lists them in
    /// `/proc/net/packet` of its namespace.
    pub fn packet_sockets(&self) -> Vec<PacketSocket> {
        let fds = format!("/proc/{}/fd", self.pid());
        let inodes: Vec<String> = std::fs::read_dir(&fds)
            .unwrap_or_else(|e| panic!("cannot list {fds}: {e}"))
            .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .filter_map(|target| {
                let target = target.to_str()?;
                Some(
                    target
                        .strip_prefix("socket:[")?
                        .strip_suffix(']')?
                        .to_string(),
                )
            })
            .collect();
        let table = self.ns.exec_ok(&["cat", "/proc/net/packet"]);
        // sk RefCnt Type Proto Iface R Rmem User Inode
        table
            .lines()
            .skip(1)
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .filter(|fields| fields.len() >= 9 && inodes.iter().any(|i| i == fields[8]))
            .map(|fields| PacketSocket {
                protocol: u16::from_str_radix(fields[3], 16).expect("a hex protocol"),
                ifindex: fields[4].parse().expect("an interface index"),
                hooked: fields[5] == "1",
            })
            .collect()
    }

    /// Waits until no group has a report pending (`timer_ms` null everywhere):
    /// after that the daemon sends nothing until something happens.
    pub fn wait_quiet(&self, timeout: Duration) {
        let mut last = Vec::new();
        let quiet = wait_until(timeout, || {
            last = self.groups();
            last.iter().all(|g| g["timer_ms"].is_null())
        });
        assert!(
            quiet,
            "groups still have report timers running after {timeout:?}: {last:?}"
        );
    }

    /// Sends `bytes` as-is on a fresh control connection and returns the
    /// first reply line, or `None` if the daemon closed without replying.
    pub fn raw_request(&self, bytes: &[u8]) -> Option<String> {
        let stream = UnixStream::connect(&self.socket)
            .unwrap_or_else(|e| panic!("connect {}: {e}", self.socket.display()));
        stream.set_read_timeout(Some(secs(5))).unwrap();
        stream.set_write_timeout(Some(secs(5))).unwrap();
        // The daemon may stop reading (and close) part-way through an oversized
        // line; a failed write is fine as long as the error reply arrives.
        let _ = (&stream).write_all(bytes);
        let mut line = String::new();
        match BufReader::new(&stream).take(1 << 20).read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(line),
            Err(e) => panic!("no reply to a raw control request within 5 s: {e}"),
        }
    }

    /// The first (only) interface of `show --json`.
    pub fn interface(&self) -> Value {
        self.show()["interfaces"][0].clone()
    }

    /// [`Daemon::wait_quiet`] for a v3 host as well: no report timer, no state-change
    /// retransmission, no pending General Query response, no group still being left.
    pub fn wait_v3_quiet(&self, timeout: Duration) {
        let mut last = Value::Null;
        let quiet = wait_until(timeout, || {
            last = self.show();
            let groups_quiet = last["groups"].as_array().is_some_and(|groups| {
                groups.iter().all(|g| {
                    g["timer_ms"].is_null()
                        && g["retransmit_ms"].is_null()
                        && g["state"] != "leaving"
                })
            });
            let ifaces_quiet = last["interfaces"].as_array().is_some_and(|ifaces| {
                ifaces.iter().all(|i| {
                    i["igmp_general_response_ms"].is_null()
                        && i["mld_general_response_ms"].is_null()
                })
            });
            groups_quiet && ifaces_quiet
        });
        assert!(
            quiet,
            "the daemon still has reports pending after {timeout:?}: {last}"
        );
    }
}
