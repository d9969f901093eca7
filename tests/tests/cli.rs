//! tunmcastctl without a daemon: errors name the socket, exit non-zero, and a
//! bad group is caught before any connection. Needs no root.

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tests::*;

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join("tunmcast-tests")
        .join(format!("{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn ctl(env_socket: Option<&Path>, args: &[&str]) -> Output {
    let mut command = Command::new(bin("tunmcastctl"));
    command.args(args).env_remove("TUNMCAST_CONTROL");
    if let Some(socket) = env_socket {
        command.env("TUNMCAST_CONTROL", socket);
    }
    command.output().expect("run tunmcastctl")
}

/// Exit 1 and exactly one line on stderr, `tunmcastctl: <expected>`.
fn assert_fails_with(out: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr, format!("tunmcastctl: {expected}\n"));
    assert!(out.stdout.is_empty());
}

#[test]
fn no_daemon_error_names_the_socket() {
    let dir = scratch("ctl-no-daemon");
    let socket = dir.join("tun0.sock");
    let socket_text = socket.display().to_string();
    for command in ["ping", "show", "stats"] {
        let out = ctl(None, &["--control", &socket_text, command]);
        assert_fails_with(
            &out,
            &format!("cannot connect to {socket_text}: No such file or directory (is tunmcastd running?)"),
        );
    }
    // The same socket named by the environment instead of the flag.
    let out = ctl(Some(&socket), &["--json", "show"]);
    assert_fails_with(
        &out,
        &format!(
            "cannot connect to {socket_text}: No such file or directory (is tunmcastd running?)"
        ),
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn stale_socket_file_is_reported_as_refused() {
    let dir = scratch("ctl-stale");
    let socket = dir.join("tun0.sock");
    // A socket file nobody listens on any more, as a crashed daemon leaves it.
    drop(UnixListener::bind(&socket).unwrap());
    let out = ctl(None, &["--control", socket.to_str().unwrap(), "ping"]);
    assert_fails_with(
        &out,
        &format!(
            "cannot connect to {}: Connection refused (is tunmcastd running?)",
            socket.display()
        ),
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_group_is_rejected_before_connecting() {
    for group in ["not-an-address", "239.1.2", "ff12::12345", ""] {
        let out = ctl(
            None,
            &["--control", "/nonexistent/tun0.sock", "join", group],
        );
        assert_fails_with(
            &out,
            &format!("invalid group {group:?}: not an IPv4 or IPv6 address"),
        );
    }
    let out = ctl(None, &["--control", "/nonexistent/tun0.sock", "leave", "x"]);
    assert_fails_with(&out, "invalid group \"x\": not an IPv4 or IPv6 address");
}

/// Usage errors exit 2 with clap's message and usage, as the README says; nothing is
/// contacted.
#[test]
fn usage_errors_exit_2() {
    for args in [
        &["join"][..],
        &["frobnicate"],
        &[
            "join",
            "239.1.1.1",
            "--include",
            "10.0.0.1",
            "--exclude",
            "10.0.0.2",
        ],
        &["show", "--no-such-flag"],
    ] {
        let out = ctl(None, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(stderr.contains("Usage: tunmcastctl"), "{args:?}: {stderr}");
    }
}

/// The daemon refuses a bad command line or configuration file with exit 2, one clear message,
/// and nothing touched: no device opened, no control socket made.
#[test]
fn tunmcastd_refuses_a_bad_configuration_with_exit_2_and_touches_nothing() {
    let dir = scratch("daemon-bad-config");
    let socket = dir.join("ctl.sock");
    let config = dir.join("tunmcastd.toml");
    let cases: [(&str, &[&str], &str); 7] = [
        (
            "iface = \"tmcbad0\"\nipv4 = \"10.99.0.2/24\"\nmtu = 100\n",
            &[],
            "tunmcastd.toml:3: `mtu`",
        ),
        (
            "iface = \"tmcbad0\"\nipv4 = \"10.99.0.2/24\"\nrobustnes = 2\n",
            &[],
            "tunmcastd.toml:3: unknown key `robustnes`",
        ),
        ("iface = \"tmcbad0\"\nipv4 = [\n", &[], "tunmcastd.toml:2: "),
        (
            "iface = \"tmcbad0\"\n",
            &["--log-level", "loud"],
            "not a level",
        ),
        // One bad key in each kind of table: the file, the line and the key.
        (
            "[[link]]\ndevice = \"tmcbad0\"\nipv4 = \"10.99.0.2/24\"\nspeed = 10\n",
            &[],
            "tunmcastd.toml:4: [[link]]: unknown field `speed`",
        ),
        (
            "[[link]]\ndevice = \"tmcbad0\"\nipv4 = \"10.99.0.2/24\"\n\
             [[stream]]\nlink = \"tmcbad0\"\nsource = \"10.1.1.1\"\ngroup = \"232.1.1.1\"\n\
             rate = 5\n",
            &[],
            "tunmcastd.toml:8: [[stream]]: unknown field `rate`",
        ),
        (
            "[[link]]\ndevice = \"tmcbad0\"\nipv4 = \"10.99.0.2/24\"\n\
             [[test]]\nkind = \"zapping\"\nchannels = [\"239.1.1.1\"]\nview = 5\n",
            &[],
            "tunmcastd.toml:7: [[test]]: unknown field `view`",
        ),
    ];
    for (text, extra, expected) in cases {
        std::fs::write(&config, text).unwrap();
        let mut command = Command::new(bin("tunmcastd"));
        command
            .arg("--config")
            .arg(&config)
            .arg("--control")
            .arg(&socket)
            .args(extra);
        let out = command.output().expect("run tunmcastd");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text:?}: {stderr}");
        assert!(stderr.contains(expected), "{text:?}: {stderr}");
        assert!(!socket.exists(), "{text:?}: a control socket was made");
    }
    std::fs::remove_dir_all(dir).unwrap();
}
