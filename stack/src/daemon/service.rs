//! What the daemon does as a service: the signals it handles, systemd's readiness protocol,
//! the open-file limit, the default seed.

use std::io;

use log::warn;
use sd_notify::NotifyState;
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};

/// Signals a shell or a service manager sends. SIGHUP reloads; the others leave every group on
/// the wire and exit 0 (SIGKILL cannot be caught: `--state` covers it).
pub(super) const HANDLED_SIGNALS: [i32; 4] = [SIGHUP, SIGINT, SIGTERM, SIGQUIT];

pub(super) fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGHUP => "SIGHUP",
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        SIGQUIT => "SIGQUIT",
        _ => "signal",
    }
}

pub(super) fn default_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    nanos ^ (u64::from(std::process::id()) << 32)
}

/// Raises the soft limit on open files to the hard one: every control client holds one.
pub(super) fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            if let Err(errno) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                warn!(
                    "cannot raise the open-file limit: {}",
                    io::Error::from(errno)
                );
            }
        }
    }
}

/// Tells the service manager (systemd, `Type=notify`) about a state change; nothing when the
/// daemon was not started by one (`NOTIFY_SOCKET` unset).
pub(super) fn service_notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!("cannot notify the service manager: {e}");
    }
}
