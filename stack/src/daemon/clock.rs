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

    /// The daemon clock's ns of `real_ns`, a time of CLOCK_REALTIME a moment ago (a kernel's
    /// stamp): its age taken from now, so that a step of the wall clock in between is all the
    /// error there can be.
    pub fn at_realtime(self, real_ns: i64) -> u64 {
        let now = self.now_ns();
        let real_now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        let age = u64::try_from(real_now.saturating_sub(real_ns)).unwrap_or(0);
        now.saturating_sub(age)
    }
}
