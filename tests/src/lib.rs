//! Integration-test harness: real network namespaces, real TUN devices, the real
//! binaries, real tcpdump and tshark. See tests/tests/ for the tests.
//!
//! Each test builds its own namespace (unique name), so tests run in parallel
//! and never touch the host's interfaces. Everything the test starts is owned
//! by a guard whose `Drop` kills it; [`Netns`]'s `Drop` sweeps whatever is left
//! in the namespace, deletes it, and on a failing test prints every log the
//! test produced.
//!
//! ```no_run
//! use tests::*;
//! let Some(ns) = Netns::new("example") else { return };
//! ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
//! let mut capture = ns.capture(TUN);
//! let daemon = ns.spawn_daemon(&[]);
//! daemon.ctl_ok(&["join", "239.1.2.3"]);
//! capture.wait_for("a report", secs(2), |p| p.iter().any(|p| p.kind == "igmpv2-report"));
//! let packets = capture.stop();
//! assert_daemon_packets_well_formed(&packets);
//! ```

use std::cell::RefCell;
use std::fmt;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

mod datapath;
pub use datapath::*;

/// The TUN device every test creates (names are per namespace).
pub const TUN: &str = "tun0";
/// Kernel side of the link.
pub const KERNEL_V4_CIDR: &str = "10.99.0.1/24";
pub const KERNEL_V4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
pub const KERNEL_LL: &str = "fe80::1";
/// The daemon's side of the link.
pub const DAEMON_V4_CIDR: &str = "10.99.0.2/24";
pub const DAEMON_V4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
pub const DAEMON_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);
/// All-routers groups: where IGMPv2 Leave and MLD Done go.
pub const ALL_ROUTERS_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 2);
pub const ALL_ROUTERS_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// Where Debian installs the FRR daemons.
pub const FRR_DIR: &str = "/usr/lib/frr";

/// Allowance for scheduling and capture latency on top of protocol deadlines.
pub const SLACK: f64 = 0.25;

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// Wall-clock time in seconds since the epoch: the clock tshark stamps frames with.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

pub fn ip(text: &str) -> IpAddr {
    text.parse()
        .unwrap_or_else(|_| panic!("{text:?} is not an IP address"))
}

/// Polls `condition` every 20 ms until it holds (true) or `timeout` passes (false).
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(ms(20));
    }
}

/// [`wait_until`] that fails the test, saying what it waited for.
pub fn must_wait(what: &str, timeout: Duration, condition: impl FnMut() -> bool) {
    if !wait_until(timeout, condition) {
        panic!("timed out after {timeout:?} waiting for: {what}");
    }
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Says loudly that a test did not run. Straight to fd 2: libtest captures
/// `eprintln!` of passing tests, and a skip must not go unnoticed.
fn skipped(line: &str) {
    let _ = writeln!(std::io::stderr(), "\n*** {line} ***\n");
}

/// The running test's name (libtest names each test's thread after it), else `tag`.
fn test_name(tag: &str) -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_string(),
        _ => tag.to_string(),
    }
}

/// True if this process may build namespaces. Otherwise: under `CI=true` the
/// test fails; elsewhere it prints a loud SKIPPED line and the caller returns.
pub fn privileged(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let reason = if unsafe { libc::geteuid() } != 0 {
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

/// Directory of the workspace binaries: `$TUNMCAST_BIN_DIR`, else the profile
/// directory this test executable was built into (target/debug/deps/x → target/debug).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TUNMCAST_BIN_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("path of the test executable");
    let dir = exe.parent().expect("test executable has a directory");
    if dir.file_name().is_some_and(|name| name == "deps") {
        dir.parent().expect("deps has a parent").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// Path of a workspace binary; fails the test clearly when it was not built.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    if !path.is_file() {
        panic!(
            "{} not found: build the binaries first with `cargo build --workspace --bins` \
             (scripts/test.sh does), or point TUNMCAST_BIN_DIR at them",
            path.display()
        );
    }
    path
}

fn require_tool(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    if !found {
        panic!("{tool} is not installed (scripts/test.sh installs it)");
    }
}

/// Runs a command to completion, failing the test if it cannot be started.
pub fn run(program: impl AsRef<Path>, args: &[&str]) -> Output {
    let program = program.as_ref();
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
}

/// [`run`] that fails the test unless the command succeeds; returns stdout.
pub fn run_ok(program: impl AsRef<Path>, args: &[&str]) -> String {
    let out = run(program.as_ref(), args);
    if !out.status.success() {
        panic!(
            "`{} {}` failed ({}): {}{}",
            program.as_ref().display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn signal_pid(pid: u32, signal: i32) {
    // SAFETY: kill(2) on a pid we spawned; an already-dead pid only yields ESRCH.
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

/// Waits for a child with a deadline; `None` if it is still running.
fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(ms(10)),
            Ok(None) => return None,
            Err(e) => panic!("waiting for pid {}: {e}", child.id()),
        }
    }
}

fn kill_child(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        signal_pid(child.id(), libc::SIGKILL);
        let _ = child.wait();
    }
}

static NEXT_NETNS: AtomicUsize = AtomicUsize::new(0);

/// A throwaway network namespace with a per-test scratch directory.
pub struct Netns {
    name: String,
    test: String,
    dir: PathBuf,
    tuns: RefCell<Vec<String>>,
    logs: RefCell<Vec<PathBuf>>,
    spawned: AtomicUsize,
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

    fn first_tun(&self) -> String {
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
        Spawned {
            child,
            stdout,
            stderr,
            status: None,
        }
    }

    /// Starts tunmcastd on the first TUN with the daemon's standard addresses
    /// and `<dir>/ctl.sock`, as an IGMPv2 / MLDv1 host unless `extra` names the
    /// versions, plus `extra`; returns once `tunmcastctl ping` answers.
    pub fn spawn_daemon(&self, extra: &[&str]) -> Daemon<'_> {
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
        self.spawn_daemon_with(&args, &socket)
    }

    /// Starts tunmcastd with exactly `args`; `socket` is its control socket.
    pub fn spawn_daemon_with(&self, args: &[&str], socket: &Path) -> Daemon<'_> {
        let ctl = bin("tunmcastctl");
        let process = self.spawn("tunmcastd", &bin("tunmcastd"), args);
        let mut daemon = Daemon {
            _ns: self,
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

    /// Starts tcpdump on `iface` (both directions, `igmp or ip6`) and returns
    /// once it is capturing.
    pub fn capture(&self, iface: &str) -> Capture<'_> {
        require_tool("tcpdump");
        require_tool("tshark");
        // The .pcap suffix matters: Debian's AppArmor profile for tcpdump only
        // lets it write files named like that.
        let file = self.dir.join(format!(
            "{iface}-{}.pcap",
            self.spawned.load(Ordering::Relaxed)
        ));
        let file_arg = file.to_str().expect("UTF-8 temp dir");
        // -Z root: Debian's tcpdump otherwise drops to user tcpdump, which may not
        // write here. --immediate-mode: hand packets over at once, not per block.
        let process = self.spawn(
            "tcpdump",
            Path::new("tcpdump"),
            &[
                "-i",
                iface,
                "-Z",
                "root",
                "-U",
                "--immediate-mode",
                "-w",
                file_arg,
                "igmp or ip6",
            ],
        );
        let mut capture = Capture {
            _ns: self,
            process,
            file,
            stopped: false,
        };
        let listening = wait_until(secs(10), || {
            if let Some(status) = capture.process.try_status() {
                panic!(
                    "tcpdump exited ({status}): {}",
                    capture.process.stderr_text()
                );
            }
            capture.process.stderr_text().contains("listening on")
        });
        assert!(listening, "tcpdump did not start capturing within 10 s");
        capture
    }

    /// Starts mcquerier with `args` (include `--dev NAME`).
    pub fn querier(&self, args: &[&str]) -> Querier<'_> {
        Querier {
            _ns: self,
            process: self.spawn("mcquerier", &bin("mcquerier"), args),
        }
    }

    /// Starts FRR's zebra and pimd in the namespace (a real IGMP querier once
    /// [`Frr::igmp_querier`] configures an interface). `None` means skipped:
    /// FRR is not installed and CI is not set.
    pub fn frr(&self) -> Option<Frr<'_>> {
        let zebra = Path::new(FRR_DIR).join("zebra");
        let pimd = Path::new(FRR_DIR).join("pimd");
        if !zebra.is_file() || !pimd.is_file() {
            if ci() {
                panic!(
                    "{}: FRR (zebra, pimd) is not installed; CI=true",
                    test_name(&self.test)
                );
            }
            skipped(&format!("SKIPPED (needs FRR): {}", test_name(&self.test)));
            return None;
        }
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
                signal_pid(pid, libc::SIGKILL);
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

/// A process started in a namespace, with its output going to files.
pub struct Spawned {
    child: Child,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    status: Option<ExitStatus>,
}

impl Spawned {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: i32) {
        if self.status.is_none() {
            signal_pid(self.pid(), signal);
        }
    }

    /// Exit status if the process has ended (never blocks).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait on our child");
        }
        self.status
    }

    /// Waits up to `timeout` for the process to end.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = wait_child(&mut self.child, timeout);
        }
        self.status
    }

    pub fn stdout_text(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub fn stderr_text(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}

/// A running tunmcastd. Killed on drop if still running.
pub struct Daemon<'a> {
    _ns: &'a Netns,
    pub process: Spawned,
    socket: PathBuf,
    ctl: PathBuf,
}

impl Daemon<'_> {
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn signal(&self, signal: i32) {
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
}

/// A tcpdump capture in a namespace.
pub struct Capture<'a> {
    _ns: &'a Netns,
    process: Spawned,
    file: PathBuf,
    stopped: bool,
}

/// tshark fields pulled out of every frame; see [`Pkt`].
const TSHARK_FIELDS: &[&str] = &[
    "frame.time_epoch",
    "frame.time_relative",
    "ip.src",
    "ip.dst",
    "ip.ttl",
    "ip.opt.ra",
    "ip.checksum.status",
    "ipv6.src",
    "ipv6.dst",
    "ipv6.hlim",
    "ipv6.opt.router_alert",
    "igmp.type",
    "igmp.version",
    "igmp.maddr",
    "igmp.max_resp",
    "igmp.checksum.status",
    "icmpv6.type",
    "icmpv6.mld.multicast_address",
    "icmpv6.mld.maximum_response_delay",
    "icmpv6.checksum.status",
];

impl Capture<'_> {
    pub fn file(&self) -> &Path {
        &self.file
    }

    fn size(&self) -> u64 {
        fs::metadata(&self.file).map(|m| m.len()).unwrap_or(0)
    }

    /// Dissects what has been captured so far (tcpdump keeps running).
    pub fn peek(&self) -> Vec<Pkt> {
        self.packets().iter().map(Pkt::from_tshark).collect()
    }

    /// Waits until `condition` holds for the packets captured so far and returns
    /// them; fails the test with a listing of the capture on timeout. Only
    /// re-dissects when the file grew (or every second), so waiting is cheap.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        condition: impl Fn(&[Pkt]) -> bool,
    ) -> Vec<Pkt> {
        self.wait_dissected(what, timeout, Self::peek, |p| listing(p), condition)
    }

    /// The loop behind `wait_for` and `wait_for_full`: `dissect` reads the capture, `list`
    /// renders it for the failure message.
    fn wait_dissected(
        &self,
        what: &str,
        timeout: Duration,
        dissect: impl Fn(&Self) -> Vec<Pkt>,
        list: impl Fn(&[Pkt]) -> String,
        condition: impl Fn(&[Pkt]) -> bool,
    ) -> Vec<Pkt> {
        let deadline = Instant::now() + timeout;
        let mut seen_size = u64::MAX;
        let mut dissected_at = Instant::now();
        let mut packets = Vec::new();
        loop {
            let size = self.size();
            if size != seen_size || dissected_at.elapsed() >= secs(1) {
                seen_size = size;
                dissected_at = Instant::now();
                packets = dissect(self);
                if condition(&packets) {
                    return packets;
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for: {what}\ncaptured so far:\n{}",
                    list(&packets)
                );
            }
            std::thread::sleep(ms(50));
        }
    }

    /// Stops tcpdump once the capture file has stopped growing (so nothing
    /// already on the wire is lost), then dissects the whole capture.
    pub fn stop(&mut self) -> Vec<Pkt> {
        if !self.stopped {
            let mut size = self.size();
            let mut stable_since = Instant::now();
            let give_up = Instant::now() + secs(3);
            while stable_since.elapsed() < ms(300) && Instant::now() < give_up {
                std::thread::sleep(ms(50));
                let now_size = self.size();
                if now_size != size {
                    size = now_size;
                    stable_since = Instant::now();
                }
            }
            self.process.signal(libc::SIGINT);
            if self.process.wait_timeout(secs(5)).is_none() {
                panic!("tcpdump ignored SIGINT for 5 s");
            }
            self.stopped = true;
        }
        self.peek()
    }

    /// Every frame as tshark's flat field map: `{"ip.src":["10.99.0.2"], ...}`
    /// (IPv4 header checksums verified too).
    pub fn packets(&self) -> Vec<Value> {
        tshark_layers(&self.file, TSHARK_FIELDS.iter())
    }
}

impl Drop for Capture<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.stopped {
            self.process.signal(libc::SIGINT);
            self.process.wait_timeout(secs(2));
            self.stopped = true;
            let packets: Vec<Pkt> = self.peek();
            eprintln!(
                "\n----- capture {} -----\n{}",
                self.file.display(),
                listing(&packets)
            );
        }
    }
}

/// One captured IP packet, as tshark dissected it.
#[derive(Debug, Clone)]
pub struct Pkt {
    /// Seconds since the epoch (comparable with [`now`]).
    pub time: f64,
    /// Seconds since the first captured frame (for listings).
    pub rel: f64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl_or_hlim: u8,
    /// IPv4 Router Alert option, or IPv6 hop-by-hop Router Alert, with value 0.
    pub router_alert: bool,
    /// "igmp-query", "igmpv1-report", "igmpv2-report", "igmp-leave",
    /// "igmpv3-report", "mld-query", "mld-report", "mld-done", "mldv2-report",
    /// "icmpv6-<type>", "igmp-<type>", or "other".
    pub kind: String,
    /// IGMP Group Address / MLD Multicast Address (unspecified in general queries).
    pub group: Option<IpAddr>,
    /// Max Resp Time / Maximum Response Delay of a query, in milliseconds.
    pub max_resp_ms: Option<u64>,
    /// IPv4 header checksum (if IPv4) and IGMP/ICMPv6 checksum all verified good.
    pub checksum_good: bool,
    /// tshark's fields for anything else.
    pub raw: Value,
}

fn field<'v>(raw: &'v Value, name: &str) -> Option<&'v str> {
    raw.get(name)?.get(0)?.as_str()
}

fn number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

impl Pkt {
    pub fn from_tshark(raw: &Value) -> Pkt {
        let f = |name| field(raw, name);
        let addr = |name| f(name).and_then(|s| s.parse::<IpAddr>().ok());
        let good = |name| f(name) == Some("1");
        let time = f("frame.time_epoch")
            .and_then(|t| t.parse().ok())
            .unwrap_or(f64::NAN);
        let rel = f("frame.time_relative")
            .and_then(|t| t.parse().ok())
            .unwrap_or(f64::NAN);
        let unspecified: IpAddr = Ipv4Addr::UNSPECIFIED.into();
        let (src, dst, ttl, ra, mut checksum_good);
        if f("ip.src").is_some() {
            src = addr("ip.src");
            dst = addr("ip.dst");
            ttl = f("ip.ttl").and_then(number);
            ra = f("ip.opt.ra").and_then(number) == Some(0);
            checksum_good = good("ip.checksum.status");
        } else {
            src = addr("ipv6.src");
            dst = addr("ipv6.dst");
            ttl = f("ipv6.hlim").and_then(number);
            ra = f("ipv6.opt.router_alert").and_then(number) == Some(0);
            checksum_good = true;
        }
        let (kind, group, max_resp_ms) = if let Some(t) = f("igmp.type").and_then(number) {
            checksum_good &= good("igmp.checksum.status");
            let kind = match t {
                0x11 => "igmp-query".to_string(),
                0x12 => "igmpv1-report".to_string(),
                0x16 => "igmpv2-report".to_string(),
                0x17 => "igmp-leave".to_string(),
                0x22 => "igmpv3-report".to_string(),
                t => format!("igmp-{t:#x}"),
            };
            // tshark gives the raw Max Resp Code (1/10 s; floating-point form from
            // 128 on, RFC 9776 §4.1.1); IGMPv1 queries have none.
            let max_resp = f("igmp.max_resp").and_then(number).map(|code| {
                let tenths = if code < 128 {
                    code
                } else {
                    ((code & 0x0f) | 0x10) << (((code >> 4) & 0x07) + 3)
                };
                tenths * 100
            });
            (kind, addr("igmp.maddr"), max_resp)
        } else if let Some(t) = f("icmpv6.type").and_then(number) {
            checksum_good &= good("icmpv6.checksum.status");
            let kind = match t {
                130 => "mld-query".to_string(),
                131 => "mld-report".to_string(),
                132 => "mld-done".to_string(),
                143 => "mldv2-report".to_string(),
                t => format!("icmpv6-{t}"),
            };
            let max_resp = f("icmpv6.mld.maximum_response_delay").and_then(number);
            (kind, addr("icmpv6.mld.multicast_address"), max_resp)
        } else {
            ("other".to_string(), None, None)
        };
        Pkt {
            time,
            rel,
            src: src.unwrap_or(unspecified),
            dst: dst.unwrap_or(unspecified),
            ttl_or_hlim: ttl.and_then(|t| u8::try_from(t).ok()).unwrap_or(0),
            router_alert: ra,
            kind,
            group,
            max_resp_ms,
            checksum_good,
            raw: raw.clone(),
        }
    }

    pub fn from_daemon(&self) -> bool {
        self.src == IpAddr::V4(DAEMON_V4) || self.src == IpAddr::V6(DAEMON_LL)
    }

    /// IGMP or MLD (as opposed to, say, the kernel's Router Solicitations).
    pub fn is_membership(&self) -> bool {
        self.kind.starts_with("igmp") || self.kind.starts_with("mld")
    }

    pub fn is_report(&self) -> bool {
        self.kind.ends_with("-report")
    }

    pub fn is_query(&self) -> bool {
        self.kind == "igmp-query" || self.kind == "mld-query"
    }

    /// A report, Leave or Done about `group`.
    pub fn about(&self, group: IpAddr) -> bool {
        self.group == Some(group)
    }
}

impl fmt::Display for Pkt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:8.3} {} -> {} {}",
            self.rel, self.src, self.dst, self.kind
        )?;
        if let Some(group) = self.group {
            write!(f, " group {group}")?;
        }
        if let (true, Some(max_resp)) = (self.is_query(), self.max_resp_ms) {
            write!(f, " max-resp {max_resp}ms")?;
        }
        write!(
            f,
            " ttl {} ra {} checksums {}",
            self.ttl_or_hlim,
            if self.router_alert { "yes" } else { "NO" },
            if self.checksum_good { "good" } else { "BAD" }
        )
    }
}

/// One line per packet, for failure messages.
pub fn listing<'p>(packets: impl IntoIterator<Item = &'p Pkt>) -> String {
    let lines: Vec<String> = packets.into_iter().map(|p| format!("  {p}")).collect();
    if lines.is_empty() {
        "  (no packets)".to_string()
    } else {
        lines.join("\n")
    }
}

/// Reports (any version) from the daemon about `group`.
pub fn daemon_reports(packets: &[Pkt], group: IpAddr) -> Vec<&Pkt> {
    packets
        .iter()
        .filter(|p| p.from_daemon() && p.is_report() && p.about(group))
        .collect()
}

/// Every packet the daemon sent must be well formed: good checksums, Router
/// Alert (optional on IGMPv1 reports only), TTL / hop limit 1, reports to the group itself, Leave to 224.0.0.2,
/// Done to ff02::2. Nothing may come from an unspecified source: the daemon
/// has addresses on both families.
pub fn assert_daemon_packets_well_formed(packets: &[Pkt]) {
    let mut problems = Vec::new();
    for p in packets {
        if p.is_membership() && p.src.is_unspecified() {
            problems.push(format!("unspecified source: {p}"));
        }
        if !p.from_daemon() {
            continue;
        }
        if !p.checksum_good {
            problems.push(format!("bad checksum: {p}"));
        }
        // RFC 1112 predates Router Alert (RFC 2113): a v1 report may go without.
        if !p.router_alert && p.kind != "igmpv1-report" {
            problems.push(format!("no Router Alert: {p}"));
        }
        if p.ttl_or_hlim != 1 {
            problems.push(format!("TTL / hop limit not 1: {p}"));
        }
        let expected_dst = match p.kind.as_str() {
            "igmpv1-report" | "igmpv2-report" | "mld-report" => p.group,
            "igmp-leave" => Some(ALL_ROUTERS_V4.into()),
            "mld-done" => Some(ALL_ROUTERS_V6.into()),
            _ => Some(p.dst),
        };
        if expected_dst != Some(p.dst) {
            problems.push(format!("wrong destination: {p}"));
        }
    }
    assert!(
        problems.is_empty(),
        "malformed packets from the daemon:\n  {}\nfull capture:\n{}",
        problems.join("\n  "),
        listing(packets)
    );
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

// ===========================================================================================
// Peers and IGMPv3 / MLDv2 helpers (used by peers_frr.rs, peers_kernel.rs, v3.rs): group
// records dissected by tshark, the namespace's kernel as a second host, FRR's IGMP views.
// ===========================================================================================

/// tshark fields for IGMPv3 / MLDv2 group records and v3 query sources, on top of
/// [`TSHARK_FIELDS`]. Repeated fields come as lists in record order.
const V3_FIELDS: &[&str] = &[
    "igmp.record_type",
    "igmp.num_src",
    "igmp.saddr",
    "igmp.s",
    "igmp.qrv",
    "igmp.qqic",
    "icmpv6.mldr.mar.record_type",
    "icmpv6.mldr.mar.multicast_address",
    "icmpv6.mldr.mar.nb_sources",
    "icmpv6.mldr.mar.source_address",
    "icmpv6.mld.source_address",
];

/// Every frame of `file` dissected with [`TSHARK_FIELDS`] and [`V3_FIELDS`]: [`Pkt`]s whose
/// [`Pkt::records`] and [`Pkt::query_sources`] work.
pub fn dissect_full(file: &Path) -> Vec<Pkt> {
    tshark_layers(file, TSHARK_FIELDS.iter().chain(V3_FIELDS))
        .iter()
        .map(Pkt::from_tshark)
        .collect()
}

/// Every frame of `file` as tshark's flat map of `fields` (IPv4 header checksums verified too).
fn tshark_layers<'f>(file: &Path, fields: impl Iterator<Item = &'f &'f str>) -> Vec<Value> {
    let file = file.to_str().expect("UTF-8 temp dir");
    let mut args = vec!["-r", file, "-T", "json", "-o", "ip.check_checksum:TRUE"];
    for field in fields {
        args.extend(["-e", *field]);
    }
    let out = run("tshark", &args);
    // tshark exits non-zero on a packet cut short by a live capture but still prints what it
    // read before.
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim().is_empty() {
        return Vec::new();
    }
    let frames: Vec<Value> = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "tshark output is not JSON ({e}): {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    frames
        .into_iter()
        .map(|frame| frame["_source"]["layers"].clone())
        .collect()
}

/// One IGMPv3 / MLDv2 group record (RFC 9776 §4.2.4, RFC 9777 §5.2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// "is_in", "is_ex", "to_in", "to_ex", "allow", "block", or "type-N".
    pub kind: String,
    pub group: IpAddr,
    /// Sorted.
    pub sources: Vec<IpAddr>,
}

impl Record {
    /// An expected record: `Record::new("allow", "232.1.1.1", &["10.99.0.77"])`.
    pub fn new(kind: &str, group: &str, sources: &[&str]) -> Record {
        let mut sources: Vec<IpAddr> = sources.iter().map(|s| ip(s)).collect();
        sources.sort();
        Record {
            kind: kind.to_string(),
            group: ip(group),
            sources,
        }
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sources: Vec<String> = self.sources.iter().map(IpAddr::to_string).collect();
        write!(f, "{} {} {{{}}}", self.kind, self.group, sources.join(","))
    }
}

fn record_kind(code: u64) -> String {
    match code {
        1 => "is_in".to_string(),
        2 => "is_ex".to_string(),
        3 => "to_in".to_string(),
        4 => "to_ex".to_string(),
        5 => "allow".to_string(),
        6 => "block".to_string(),
        other => format!("type-{other}"),
    }
}

fn field_list(raw: &Value, name: &str) -> Vec<String> {
    raw.get(name)
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

impl Pkt {
    /// The group records of an IGMPv3 / MLDv2 report (empty for anything else). Needs a
    /// packet from [`dissect_full`] (or [`Capture::peek_full`] and friends).
    pub fn records(&self) -> Vec<Record> {
        let names = match self.kind.as_str() {
            "igmpv3-report" => [
                "igmp.record_type",
                "igmp.maddr",
                "igmp.num_src",
                "igmp.saddr",
            ],
            "mldv2-report" => [
                "icmpv6.mldr.mar.record_type",
                "icmpv6.mldr.mar.multicast_address",
                "icmpv6.mldr.mar.nb_sources",
                "icmpv6.mldr.mar.source_address",
            ],
            _ => return Vec::new(),
        };
        let [types, groups, counts, sources] = names.map(|name| field_list(&self.raw, name));
        assert!(
            !types.is_empty() && types.len() == groups.len() && types.len() == counts.len(),
            "{self}: records not dissected (use dissect_full / peek_full): {}",
            self.raw
        );
        let mut sources = sources.iter().map(|s| ip(s));
        types
            .iter()
            .zip(&groups)
            .zip(&counts)
            .map(|((kind, group), count)| {
                let count = number(count).expect("a source count");
                let mut list: Vec<IpAddr> = sources.by_ref().take(count as usize).collect();
                assert_eq!(list.len() as u64, count, "{self}: sources cut short");
                list.sort();
                Record {
                    kind: record_kind(number(kind).expect("a record type")),
                    group: ip(group),
                    sources: list,
                }
            })
            .collect()
    }

    /// IGMP version as tshark tells it (1, 2 or 3: queries by length and Max Resp Code).
    pub fn igmp_version(&self) -> Option<u8> {
        field(&self.raw, "igmp.version")
            .and_then(number)
            .and_then(|v| u8::try_from(v).ok())
    }

    /// Sources of an IGMPv3 / MLDv2 group-and-source-specific query (needs [`dissect_full`]).
    pub fn query_sources(&self) -> Vec<IpAddr> {
        let name = if self.kind == "igmp-query" {
            "igmp.saddr"
        } else {
            "icmpv6.mld.source_address"
        };
        let mut list: Vec<IpAddr> = field_list(&self.raw, name).iter().map(|s| ip(s)).collect();
        list.sort();
        list
    }

    /// A v1/v2 message about `group`, or a v3 report with a record for it.
    pub fn covers(&self, group: IpAddr) -> bool {
        match self.kind.as_str() {
            "igmpv3-report" | "mldv2-report" => self.records().iter().any(|r| r.group == group),
            _ => self.about(group),
        }
    }

    /// The packet and its records on one line.
    pub fn full_line(&self) -> String {
        let records: Vec<String> = self.records().iter().map(Record::to_string).collect();
        if records.is_empty() {
            self.to_string()
        } else {
            format!("{self} [{}]", records.join("; "))
        }
    }
}

/// [`listing`] with each v3 report's records.
pub fn full_listing<'p>(packets: impl IntoIterator<Item = &'p Pkt>) -> String {
    let lines: Vec<String> = packets
        .into_iter()
        .map(|p| format!("  {}", p.full_line()))
        .collect();
    if lines.is_empty() {
        "  (no packets)".to_string()
    } else {
        lines.join("\n")
    }
}

pub fn secs_f64(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

impl Capture<'_> {
    /// [`Capture::peek`] with group records ([`dissect_full`]).
    pub fn peek_full(&self) -> Vec<Pkt> {
        dissect_full(&self.file)
    }

    /// [`Capture::wait_for`] on [`Capture::peek_full`]; the failure lists records too.
    pub fn wait_for_full(
        &self,
        what: &str,
        timeout: Duration,
        condition: impl Fn(&[Pkt]) -> bool,
    ) -> Vec<Pkt> {
        self.wait_dissected(
            what,
            timeout,
            Self::peek_full,
            |p| full_listing(p),
            condition,
        )
    }

    /// [`Capture::stop`], then the whole capture with group records.
    pub fn stop_full(&mut self) -> Vec<Pkt> {
        self.stop();
        self.peek_full()
    }
}

impl Daemon<'_> {
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

impl Frr<'_> {
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

/// The namespace's kernel as a second host on the link: sockets made inside the namespace,
/// each joined to one group on one interface (IP_ADD_MEMBERSHIP with an ifindex,
/// IPV6_JOIN_GROUP). Dropping it (or [`KernelMember::leave`]) closes them: the kernel leaves.
pub struct KernelMember<'a> {
    _ns: &'a Netns,
    sockets: Vec<(IpAddr, std::os::fd::OwnedFd)>,
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
fn join_in_current_netns(
    iface: &str,
    groups: &[IpAddr],
) -> Result<Vec<(IpAddr, std::os::fd::OwnedFd)>, String> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let name = std::ffi::CString::new(iface).map_err(|e| e.to_string())?;
    // SAFETY: a NUL-terminated name.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if ifindex == 0 {
        return Err(format!(
            "no interface {iface}: {}",
            std::io::Error::last_os_error()
        ));
    }
    let mut sockets = Vec::new();
    for &group in groups {
        let domain = if group.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        // SAFETY: plain socket(2); the fd is owned right away.
        let fd = unsafe { libc::socket(domain, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(format!("socket: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: fd is a fresh descriptor nobody else owns.
        let socket = unsafe { OwnedFd::from_raw_fd(fd) };
        let rc = match group {
            IpAddr::V4(g) => {
                let mreq = libc::ip_mreqn {
                    imr_multiaddr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(g.octets()),
                    },
                    imr_address: libc::in_addr { s_addr: 0 },
                    imr_ifindex: ifindex as libc::c_int,
                };
                // SAFETY: mreq lives across the call and its size is passed.
                unsafe {
                    libc::setsockopt(
                        fd,
                        libc::IPPROTO_IP,
                        libc::IP_ADD_MEMBERSHIP,
                        (&mreq as *const libc::ip_mreqn).cast(),
                        std::mem::size_of::<libc::ip_mreqn>() as libc::socklen_t,
                    )
                }
            }
            IpAddr::V6(g) => {
                let mreq = libc::ipv6_mreq {
                    ipv6mr_multiaddr: libc::in6_addr {
                        s6_addr: g.octets(),
                    },
                    ipv6mr_interface: ifindex,
                };
                // SAFETY: as above.
                unsafe {
                    libc::setsockopt(
                        fd,
                        libc::IPPROTO_IPV6,
                        libc::IPV6_ADD_MEMBERSHIP,
                        (&mreq as *const libc::ipv6_mreq).cast(),
                        std::mem::size_of::<libc::ipv6_mreq>() as libc::socklen_t,
                    )
                }
            }
        };
        if rc != 0 {
            return Err(format!(
                "joining {group}: {}",
                std::io::Error::last_os_error()
            ));
        }
        sockets.push((group, socket));
    }
    Ok(sockets)
}

impl Netns {
    /// Has the namespace's kernel join `groups` on `iface`, as a process in the namespace
    /// would: it sends its own unsolicited reports onto the link (LAB-NOTES). The sockets are
    /// made on a short-lived thread that enters the namespace; they stay in it.
    pub fn kernel_join(&self, iface: &str, groups: &[&str]) -> KernelMember<'_> {
        let path = Path::new("/var/run/netns").join(&self.name);
        let iface = iface.to_string();
        let groups: Vec<IpAddr> = groups.iter().map(|g| ip(g)).collect();
        let joined = std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            let netns = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            // SAFETY: setns(2) on this thread only; the thread ends right after.
            if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(format!("setns: {}", std::io::Error::last_os_error()));
            }
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

// ===================== end of peers and IGMPv3 / MLDv2 helpers =====================

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tshark_fields_become_packets() {
        let raw: Value = serde_json::from_str(
            r#"{"frame.time_epoch":["1795305522.409277000"],"ip.src":["10.99.0.2"],
                "ip.dst":["239.1.2.3"],"ip.ttl":["1"],"ip.opt.ra":["0"],
                "ip.checksum.status":["1"],"igmp.type":["0x16"],"igmp.maddr":["239.1.2.3"],
                "igmp.checksum.status":["1"],"igmp.max_resp":["0"]}"#,
        )
        .unwrap();
        let p = Pkt::from_tshark(&raw);
        assert_eq!(p.kind, "igmpv2-report");
        assert_eq!(p.group, Some(ip("239.1.2.3")));
        assert!(p.from_daemon() && p.router_alert && p.checksum_good);
        assert_eq!(p.ttl_or_hlim, 1);
        assert_daemon_packets_well_formed(&[p]);

        let raw: Value = serde_json::from_str(
            r#"{"ip.src":["10.99.0.1"],"ip.dst":["224.0.0.1"],"igmp.type":["0x11"],
                "igmp.max_resp":["10"],"igmp.maddr":["0.0.0.0"]}"#,
        )
        .unwrap();
        let p = Pkt::from_tshark(&raw);
        assert!(p.is_query() && p.group.is_some_and(|g| g.is_unspecified()));
        assert_eq!(p.max_resp_ms, Some(1000));

        let raw: Value = serde_json::from_str(
            r#"{"frame.time_epoch":["1.5"],"ipv6.src":["fe80::2"],"ipv6.dst":["ff02::2"],
                "ipv6.hlim":["1"],"ipv6.opt.router_alert":["0"],"icmpv6.type":["132"],
                "icmpv6.mld.multicast_address":["ff12::1234"],"icmpv6.checksum.status":["0"]}"#,
        )
        .unwrap();
        let p = Pkt::from_tshark(&raw);
        assert_eq!(p.kind, "mld-done");
        assert!(!p.checksum_good);
    }

    #[test]
    fn bin_dir_is_the_profile_dir() {
        if std::env::var_os("TUNMCAST_BIN_DIR").is_some() {
            return;
        }
        let dir = bin_dir();
        assert!(dir.join("deps").is_dir(), "{}", dir.display());
    }
}

// ===== Hostile input and fault helpers (hostile.rs, faults.rs) =====

/// Bytes as lowercase hex, no separators (what `mcquerier --raw-hex` takes).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Resident set size of `pid` in KiB (`VmRSS` of /proc/PID/status); `None` once it is gone.
pub fn rss_kib(pid: u32) -> Option<u64> {
    proc_status_field(pid, "VmRSS:")
}

/// Number of threads of `pid` (`Threads` of /proc/PID/status).
pub fn thread_count(pid: u32) -> Option<u64> {
    proc_status_field(pid, "Threads:")
}

fn proc_status_field(pid: u32, name: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

/// Raises this process's open-file limit to at least `want` (the hard limit too if we may,
/// else up to it); children spawned afterwards inherit it. Returns the soft limit in force.
pub fn raise_fd_limit(want: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with valid pointers to local structs.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < want {
            let raised = libc::rlimit {
                rlim_cur: want,
                rlim_max: limit.rlim_max.max(want),
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
                limit.rlim_cur = want.min(limit.rlim_max);
                libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            }
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    limit.rlim_cur
}

/// Sets the open-file limit (soft and hard) of a running process, e.g. a daemon just spawned,
/// so that a test does not depend on the limit it happened to inherit. Needs root to raise.
pub fn set_fd_limit(pid: u32, limit: u64) {
    let new = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: prlimit(2) with a valid pointer to a local struct and no old-limit pointer.
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &new,
            std::ptr::null_mut(),
        )
    };
    if rc != 0 {
        panic!(
            "prlimit({pid}, RLIMIT_NOFILE, {limit}): {}",
            std::io::Error::last_os_error()
        );
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

impl Netns {
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

// ===== end of hostile input and fault helpers =====
