//! The daemon's logger: env_logger's formatting and filter syntax, with a filter that SIGHUP can
//! replace while every thread (the event loop, the control threads) keeps logging through it.
//!
//! The filter is shared state read on every log call from several threads and written only on
//! a reload, so it sits behind a `parking_lot::RwLock`: readers never block each other, and
//! the rare writer swaps the whole logger at once.

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
    env_logger::Builder::new().parse_filters(spec).build()
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
