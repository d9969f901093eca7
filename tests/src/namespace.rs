//! The network namespace a test runs in: creating it, running commands and processes inside
//! it, its TUN devices and kernel settings, and sweeping it away (with the logs of a failed
//! test) on drop.

use std::cell::RefCell;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use nix::sys::signal::Signal;

use crate::processes::{bin, run, run_ok, signal_pid, Spawned};
use crate::{hex, ms};

pub(crate) fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Says loudly that a test did not run. Straight to fd 2: libtest captures
/// `eprintln!` of passing tests, and a skip must not go unnoticed.
pub(crate) fn skipped(line: &str) {
    let _ = writeln!(std::io::stderr(), "\n*** {line} ***\n");
}

/// The running test's name (libtest names each test's thread after it), else `tag`.
pub(crate) fn test_name(tag: &str) -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_string(),
        _ => tag.to_string(),
    }
}

/// True if this process may build namespaces. Otherwise: under `CI=true` the
/// test fails; elsewhere it prints a loud SKIPPED line and the caller returns.
pub fn privileged(test: &str) -> bool {
    let reason = if !nix::unistd::geteuid().is_root() {
        Some("not running as root".to_string())
    } else {
        match Command::new("ip").args(["netns", "list"]).output() {
            Ok(out) if out.status.success() => None,
            Ok(out) => Some(format!(
                "`ip netns list` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => Some(format!("cannot run `ip` (iproute2): {e}")),
        }
    };
    match reason {
        None => true,
        Some(reason) if ci() => panic!(
            "{}: needs root and `ip netns` ({reason}); CI=true",
            test_name(test)
        ),
        Some(reason) => {
            skipped(&format!(
                "SKIPPED (needs root): {} ({reason})",
                test_name(test)
            ));
            false
        }
    }
}

static NEXT_NETNS: AtomicUsize = AtomicUsize::new(0);

/// A throwaway network namespace with a per-test scratch directory.
pub struct Netns {
    pub(crate) name: String,
    pub(crate) test: String,
    pub(crate) dir: PathBuf,
    tuns: RefCell<Vec<String>>,
    logs: RefCell<Vec<PathBuf>>,
    /// How many processes were spawned: numbers their log files (and captures).
    pub(crate) spawned: AtomicUsize,
}

impl Netns {
    /// Creates `tmc-<test>-<pid>-<n>` with `lo` up. `None` means skipped (see
    /// [`privileged`]): the test should return.
    pub fn new(test: &str) -> Option<Netns> {
        if !privileged(test) {
            return None;
        }
        let short: String = test.chars().take(20).collect();
        let name = format!(
            "tmc-{short}-{}-{}",
            std::process::id(),
            NEXT_NETNS.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join("tunmcast-tests").join(&name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        run_ok("ip", &["netns", "add", &name]);
        let ns = Netns {
            name,
            test: test.to_string(),
            dir,
            tuns: RefCell::new(Vec::new()),
            logs: RefCell::new(Vec::new()),
            spawned: AtomicUsize::new(0),
        };
        ns.ip(&["link", "set", "lo", "up"]);
        Some(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Per-test scratch directory (removed when the test passes, kept when it fails).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `ip -n NS ARGS`, failing the test on error; returns stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut full = vec!["-n", &self.name];
        full.extend_from_slice(args);
        run_ok("ip", &full)
    }

    /// `ip netns exec NS ARGS` to completion.
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut full = vec!["netns", "exec", &self.name];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// [`Netns::exec`] that fails the test unless the command succeeds; returns stdout.
    pub fn exec_ok(&self, args: &[&str]) -> String {
        let mut full = vec!["netns", "exec", &self.name];
        full.extend_from_slice(args);
        run_ok("ip", &full)
    }

    /// Creates a TUN device the way LAB-NOTES prescribes; `v4_cidr` and
    /// `v6_ll` are the kernel's side of the link (`fe80::1`, no prefix).
    pub fn tun(&self, name: &str, v4_cidr: &str, v6_ll: &str) {
        self.ip(&["tuntap", "add", "dev", name, "mode", "tun"]);
        // Without addrgenmode none the kernel adds a second, random link-local.
        self.ip(&["link", "set", name, "addrgenmode", "none"]);
        self.ip(&["addr", "add", v4_cidr, "dev", name]);
        let ll = format!("{v6_ll}/64");
        self.ip(&["-6", "addr", "add", &ll, "dev", name, "nodad"]);
        self.ip(&["link", "set", name, "up"]);
        self.tuns.borrow_mut().push(name.to_string());
    }

    pub(crate) fn first_tun(&self) -> String {
        self.tuns
            .borrow()
            .first()
            .cloned()
            .expect("create a TUN with Netns::tun first")
    }

    /// Starts `program ARGS` inside the namespace with stdout and stderr in
    /// `<dir>/<label>-<n>.{out,err}` (printed if the test fails).
    pub fn spawn(&self, label: &str, program: &Path, args: &[&str]) -> Spawned {
        let n = self.spawned.fetch_add(1, Ordering::Relaxed);
        let stdout = self.dir.join(format!("{label}-{n}.out"));
        let stderr = self.dir.join(format!("{label}-{n}.err"));
        let create = |path: &Path| {
            File::create(path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()))
        };
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .arg(program)
            .args(args)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(create(&stdout))
            .stderr(create(&stderr))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        self.logs
            .borrow_mut()
            .extend([stdout.clone(), stderr.clone()]);
        Spawned::new(child, stdout, stderr)
    }

    fn dump_logs(&self) {
        eprintln!(
            "\n===== {} failed: logs of netns {} (kept in {}) =====",
            test_name(&self.test),
            self.name,
            self.dir.display()
        );
        for path in self.logs.borrow().iter() {
            let text = fs::read_to_string(path).unwrap_or_default();
            if text.trim().is_empty() {
                continue;
            }
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(200)..];
            eprintln!("----- {} (last {} lines) -----", path.display(), tail.len());
            for line in tail {
                eprintln!("{line}");
            }
        }
        eprintln!("===== end of logs =====\n");
    }

    /// `sysctl -qw KEY=VALUE` inside the namespace.
    pub fn sysctl(&self, key: &str, value: &str) {
        self.exec_ok(&["sysctl", "-qw", &format!("{key}={value}")]);
    }

    /// Stops the kernel from sending Router Solicitations on `dev` (it does, with backoff, once
    /// something holds the TUN): for tests that count every packet the daemon reads. Call
    /// before starting the daemon.
    pub fn no_router_solicitations(&self, dev: &str) {
        self.sysctl(&format!("net.ipv6.conf.{dev}.router_solicitations"), "0");
    }

    /// Writes `packet` onto `dev` towards the TUN holder, as-is, with `mcquerier --inject
    /// --raw-hex` (AF_PACKET; the first nibble 6 makes it IPv6, anything else IPv4).
    pub fn inject_raw(&self, dev: &str, packet: &[u8]) {
        let mcquerier = bin("mcquerier");
        let hex = hex(packet);
        self.exec_ok(&[
            mcquerier.to_str().expect("UTF-8 path"),
            "--dev",
            dev,
            "--inject",
            "--raw-hex",
            &hex,
            "--count",
            "1",
            "--listen-ms",
            "0",
        ]);
    }

    /// Kernel-side counters of `dev`.
    pub fn link_counters(&self, dev: &str) -> LinkCounters {
        let text = self.ip(&["-s", "-j", "link", "show", dev]);
        let json: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("ip -s -j link show {dev}: {e}: {text}"));
        let stats = &json[0]["stats64"];
        let get = |dir: &str, name: &str| {
            stats[dir][name]
                .as_u64()
                .unwrap_or_else(|| panic!("no {dir}.{name} in {text}"))
        };
        LinkCounters {
            tx_packets: get("tx", "packets"),
            tx_dropped: get("tx", "dropped"),
            rx_packets: get("rx", "packets"),
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Whatever still runs in the namespace was started by this test.
        for _ in 0..50 {
            let pids = Command::new("ip")
                .args(["netns", "pids", &self.name])
                .output()
                .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
                .unwrap_or_default();
            let pids: Vec<u32> = pids
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                signal_pid(pid, Signal::SIGKILL);
            }
            std::thread::sleep(ms(20));
        }
        let deleted = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status()
            .is_ok_and(|s| s.success());
        if !deleted {
            eprintln!("warning: could not delete netns {}", self.name);
        }
        if std::thread::panicking() {
            self.dump_logs();
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Kernel-side packet counters of one interface (`ip -s -j link show`): what the kernel
/// wrote into a TUN is its TX, what the TUN holder could not take its TX drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkCounters {
    pub tx_packets: u64,
    pub tx_dropped: u64,
    pub rx_packets: u64,
}
