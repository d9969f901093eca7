//! The daemon's one clock.

use std::time::Duration;

use membership::Instant;

/// The daemon's clock, from its start: milliseconds for the cores, nanoseconds for the
/// measurements.
#[derive(Clone, Copy)]
pub(crate) struct Clock {
    start: std::time::Instant,
}

impl Clock {
    pub fn start() -> Clock {
        Clock {
            start: std::time::Instant::now(),
        }
    }

    pub fn elapsed(self) -> Duration {
        self.start.elapsed()
    }

    /// The cores' time.
    pub fn now(self) -> Instant {
        Instant::from_millis(u64::try_from(self.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// Nanoseconds since the start: the delay measurements' clock.
    pub fn now_ns(self) -> u64 {
        u64::try_from(self.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}
