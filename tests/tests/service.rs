//! tunmcastd as a service: the systemd readiness protocol against a real NOTIFY_SOCKET
//! listener, the unit file checked by systemd itself, and the man pages and shell completions
//! that scripts/install.sh installs.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;

use tests::*;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

/// Reads one notification (a datagram of `KEY=VALUE` lines) within `timeout`.
fn next_notification(socket: &UnixDatagram, timeout: std::time::Duration) -> Option<String> {
    socket.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = [0u8; 4096];
    socket
        .recv(&mut buf)
        .ok()
        .map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// READY=1 comes once the control socket answers and the state file's groups are joined
/// again; RELOADING=1 then READY=1 on SIGHUP; STOPPING=1 on SIGTERM, before the groups are
/// left.
#[test]
fn readiness_reload_and_stopping_reach_the_notify_socket() {
    let Some(ns) = Netns::new("sd_notify") else {
        return;
    };
    ns.tun(TUN, KERNEL_V4_CIDR, KERNEL_LL);
    let notify_path = ns.dir().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).expect("bind the NOTIFY_SOCKET listener");
    let state = ns.dir().join("state.json");
    std::fs::write(
        &state,
        r#"{"version":1,"memberships":[{"iface":"tun0","group":"239.7.7.7","users":1}]}"#,
    )
    .unwrap();
    let socket = ns.dir().join("ctl.sock");
    let tunmcastd = bin("tunmcastd");
    let notify_env = format!("NOTIFY_SOCKET={}", notify_path.display());
    let args = [
        notify_env.as_str(),
        tunmcastd.to_str().unwrap(),
        "--iface",
        TUN,
        "--ipv4",
        DAEMON_V4_CIDR,
        "--control",
        socket.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
    ];
    let mut daemon = ns.spawn("tunmcastd", Path::new("/usr/bin/env"), &args);

    let ready = next_notification(&notify, secs(10)).expect("no notification within 10 s");
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    assert!(
        ready
            .lines()
            .any(|l| l.starts_with("STATUS=serving TUN tun0: 1 groups")),
        "{ready:?}"
    );
    // Ready means ready: the socket answers and the saved group is joined already.
    let show = Command::new(bin("tunmcastctl"))
        .args(["--control", socket.to_str().unwrap(), "--json", "show"])
        .output()
        .unwrap();
    assert!(show.status.success(), "{show:?}");
    assert!(
        String::from_utf8_lossy(&show.stdout).contains("239.7.7.7"),
        "{show:?}"
    );

    daemon.signal(Signal::SIGHUP);
    let reloading = next_notification(&notify, secs(5)).expect("no RELOADING=1");
    assert!(
        reloading.lines().any(|l| l == "RELOADING=1"),
        "{reloading:?}"
    );
    assert!(
        reloading.lines().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "{reloading:?}"
    );
    let ready = next_notification(&notify, secs(5)).expect("no READY=1 after the reload");
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");

    daemon.signal(Signal::SIGTERM);
    let stopping = next_notification(&notify, secs(5)).expect("no STOPPING=1");
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    let status = daemon.wait_timeout(secs(5)).expect("exit after SIGTERM");
    assert_eq!(status.code(), Some(0), "{}", daemon.stderr_text());
}

/// `systemd-analyze verify` accepts the unit (with its @SBINDIR@ filled in as the install
/// script does), so systemd will too.
#[test]
fn the_systemd_unit_verifies() {
    let dir = std::env::temp_dir()
        .join("tunmcast-tests")
        .join(format!("unit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let unit = std::fs::read_to_string(repo_root().join("packaging/systemd/tunmcastd@.service"))
        .expect("packaging/systemd/tunmcastd@.service");
    let sbin = bin("tunmcastd").parent().unwrap().display().to_string();
    let path = dir.join("tunmcastd@tun0.service");
    std::fs::write(&path, unit.replace("@SBINDIR@", &sbin)).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze (package systemd) is needed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Outside a booted systemd, verify also complains about the host's own units; only what
    // it says about ours counts.
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("tunmcastd@"))
        .collect();
    assert!(ours.is_empty(), "systemd-analyze verify:\n{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// scripts/install.sh into a staging DESTDIR: every binary, a man page each that `man` renders
/// with the options `--help` lists, and completions bash accepts.
#[test]
fn install_script_stages_binaries_man_pages_completions_and_the_unit() {
    let stage = std::env::temp_dir()
        .join("tunmcast-tests")
        .join(format!("install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(&stage).unwrap();
    let profile = if bin("tunmcastd").parent().unwrap().ends_with("release") {
        "release"
    } else {
        "dev"
    };
    let out = Command::new(repo_root().join("scripts/install.sh"))
        .env("DESTDIR", &stage)
        .env("PREFIX", "/usr")
        .env("SYSCONFDIR", "/etc")
        .env("CARGO_PROFILE", profile)
        .output()
        .expect("run scripts/install.sh");
    assert!(
        out.status.success(),
        "install.sh failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let usr = stage.join("usr");
    for (file, section, option) in [
        ("sbin/tunmcastd", "8", "--log-level"),
        ("bin/tunmcastctl", "1", "--control"),
        ("bin/mcquerier", "1", "--max-resp-ms"),
        ("bin/mcflood", "1", "--count"),
    ] {
        let binary = usr.join(file);
        assert!(binary.is_file(), "{} not installed", binary.display());
        let name = binary.file_name().unwrap().to_str().unwrap().to_string();
        let page = usr.join(format!("share/man/man{section}/{name}.{section}"));
        let rendered = Command::new("man")
            .arg("-l")
            .arg(&page)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .expect("man (package man-db) is needed");
        let text = String::from_utf8_lossy(&rendered.stdout).replace('\u{2010}', "-");
        assert!(rendered.status.success(), "{}", page.display());
        assert!(
            text.contains("NAME") && text.contains(option),
            "{name}:\n{text}"
        );
        let bash = usr.join(format!("share/bash-completion/completions/{name}"));
        let check = Command::new("bash").arg("-n").arg(&bash).output().unwrap();
        assert!(check.status.success(), "{}: {check:?}", bash.display());
        assert!(std::fs::read_to_string(&bash).unwrap().contains(option));
        for other in [
            format!("share/zsh/site-functions/_{name}"),
            format!("share/fish/vendor_completions.d/{name}.fish"),
        ] {
            let text = std::fs::read_to_string(usr.join(&other)).unwrap_or_default();
            assert!(text.contains(option.trim_start_matches('-')), "{other}");
        }
    }
    let unit = std::fs::read_to_string(usr.join("lib/systemd/system/tunmcastd@.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/sbin/tunmcastd --config /etc/tunmcast/%i.toml"));
    assert!(stage.join("etc/tunmcast/tunmcastd.toml.example").is_file());
    std::fs::remove_dir_all(&stage).unwrap();
}
