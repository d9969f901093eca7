//! The daemon's logger: env_logger's formatting and filter syntax, with a filter that SIGHUP can
//! replace while every thread (the event loop, the control threads) keeps logging through it.
//!
//! The filter is shared state read on every log call from several threads and written only on
//! a reload, so it sits behind a `parking_lot::RwLock`: readers never block each other, and
//! the rare writer swaps the whole logger at once.

use std::io::Write;
use std::sync::OnceLock;

use log::{LevelFilter, Log, Metadata, Record};
use parking_lot::RwLock;

/// The filter used when neither `--log-level` nor `RUST_LOG` gives one.
pub const DEFAULT_FILTER: &str = "info";

static LOGGER: OnceLock<ReloadableLogger> = OnceLock::new();

struct ReloadableLogger {
    inner: RwLock<env_logger::Logger>,
}

impl Log for ReloadableLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.inner.read().enabled(metadata)
    }

    fn log(&self, record: &Record) {
        self.inner.read().log(record)
    }

    fn flush(&self) {
        self.inner.read().flush()
    }
}

/// Checks a filter in env_logger's syntax (`info`, `warn,stack=debug`, ...): the error says
/// what is wrong with it.
pub fn check_filter(spec: &str) -> Result<(), String> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err("empty log level".into());
    }
    let mut errors = Vec::new();
    for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        // `level` or `module=level`. env_logger would also take a bare module name, and only
        // warn on stderr about a bad directive and drop it: a typo would leave the daemon
        // logging less than asked, so both are refused here.
        let (target, level) = match directive.split_once('=') {
            Some((target, level)) => (Some(target.trim()), level.trim()),
            None => (None, directive),
        };
        if target.is_some_and(|t| t.is_empty() || t.contains(char::is_whitespace)) {
            errors.push(format!("{directive:?}: bad module name"));
        }
        if level.parse::<LevelFilter>().is_err() {
            errors.push(format!(
                "{directive:?}: not a level (off, error, warn, info, debug, trace; \
                 MODULE=LEVEL for one module)"
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

fn build(spec: &str) -> env_logger::Logger {
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(spec);
    if stderr_is_journal() {
        // journald stamps the time and the unit; a `<N>` prefix gives the syslog priority
        // (sd-daemon(3)), so `journalctl -p warning` finds the warnings.
        builder.format(|out, record| {
            let priority = match record.level() {
                log::Level::Error => 3,
                log::Level::Warn => 4,
                log::Level::Info => 6,
                log::Level::Debug | log::Level::Trace => 7,
            };
            writeln!(out, "<{priority}>{}: {}", record.target(), record.args())
        });
    }
    builder.build()
}

/// Whether stderr is the journal's stream: systemd sets `JOURNAL_STREAM` to its
/// `device:inode` (systemd.exec(5)); a redirected stderr no longer matches.
fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    let stderr = std::io::stderr();
    let Ok(fd) = stderr.as_fd().try_clone_to_owned() else {
        return false;
    };
    match std::fs::File::from(fd).metadata() {
        Ok(meta) => dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino()),
        Err(_) => false,
    }
}

/// Installs the logger with `spec` (checked with [`check_filter`]). Called once, at start.
pub fn init(spec: &str) {
    let logger = build(spec);
    let max = logger.filter();
    let installed = LOGGER.get_or_init(|| ReloadableLogger {
        inner: RwLock::new(logger),
    });
    if log::set_logger(installed).is_ok() {
        log::set_max_level(max);
    }
}

/// Replaces the filter of the installed logger with `spec` (checked with [`check_filter`]).
pub fn reload(spec: &str) {
    let Some(installed) = LOGGER.get() else {
        return init(spec);
    };
    let logger = build(spec);
    let max = logger.filter();
    *installed.inner.write() = logger;
    log::set_max_level(max);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The only test that touches JOURNAL_STREAM, so setting it cannot race another.
    #[test]
    fn the_journal_is_recognised_by_its_device_and_inode() {
        use std::os::fd::AsFd;
        use std::os::unix::fs::MetadataExt;
        let fd = std::io::stderr().as_fd().try_clone_to_owned().unwrap();
        let meta = std::fs::File::from(fd).metadata().unwrap();
        std::env::set_var("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
        assert!(stderr_is_journal());
        std::env::set_var(
            "JOURNAL_STREAM",
            format!("{}:{}", meta.dev(), meta.ino() + 1),
        );
        assert!(!stderr_is_journal());
        std::env::set_var("JOURNAL_STREAM", "garbage");
        assert!(!stderr_is_journal());
        std::env::remove_var("JOURNAL_STREAM");
        assert!(!stderr_is_journal());
    }

    #[test]
    fn filters_are_checked() {
        for good in [
            "info",
            "debug",
            "warn,stack=debug",
            "stack::control=trace",
            "off",
        ] {
            assert_eq!(check_filter(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "  ",
            "loud",
            "stack=loud",
            "=debug",
            "info,my mod=debug",
        ] {
            assert!(check_filter(bad).is_err(), "{bad:?}");
        }
    }
}
