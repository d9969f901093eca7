//! Processes: the workspace binaries, commands run to completion, processes spawned in a
//! namespace and killed on drop, and what /proc and the rlimits say about them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::ms;

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

pub(crate) fn require_tool(tool: &str) {
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

pub(crate) fn signal_pid(pid: u32, signal: Signal) {
    // An already-dead pid only yields ESRCH.
    let _ = kill(Pid::from_raw(pid as i32), signal);
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
        signal_pid(child.id(), Signal::SIGKILL);
        let _ = child.wait();
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
    /// A started `child` whose stdout and stderr go to these files.
    pub(crate) fn new(child: Child, stdout: PathBuf, stderr: PathBuf) -> Spawned {
        Spawned {
            child,
            stdout,
            stderr,
            status: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: Signal) {
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
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 0;
    };
    if soft < want && setrlimit(Resource::RLIMIT_NOFILE, want, hard.max(want)).is_err() {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, want.min(hard), hard);
    }
    getrlimit(Resource::RLIMIT_NOFILE).map_or(soft, |(soft, _)| soft)
}

/// Sets the open-file limit (soft and hard) of a running process, e.g. a daemon just spawned,
/// so that a test does not depend on the limit it happened to inherit. Needs root to raise.
pub fn set_fd_limit(pid: u32, limit: u64) {
    // prlimit(1): nix has no prlimit(2).
    run_ok(
        "prlimit",
        &[
            "--pid",
            &pid.to_string(),
            &format!("--nofile={limit}:{limit}"),
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bin_dir_is_the_profile_dir() {
        if std::env::var_os("TUNMCAST_BIN_DIR").is_some() {
            return;
        }
        let dir = bin_dir();
        assert!(dir.join("deps").is_dir(), "{}", dir.display());
    }
}
