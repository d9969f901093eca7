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

    /// How far CLOCK_REALTIME (a kernel's packet stamps) is ahead of this clock, now. The
    /// two are read one after the other, and a thread the OS stops in between would take the
    /// pause into the distance: the realtime is read before and after, and a pair more than
    /// [`TIGHT_NS`] apart is read again (the tightest of a few kept).
    pub fn realtime_offset(self) -> RealtimeOffset {
        let realtime = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
        };
        let mut best: Option<(i128, i128, u64)> = None;
        for _ in 0..5 {
            let before = realtime();
            let clock = self.now_ns();
            let after = realtime();
            let spread = after - before;
            if best.is_none_or(|(s, _, _)| spread < s) {
                best = Some((spread, (before + after) / 2 - i128::from(clock), clock));
            }
            if spread < TIGHT_NS {
                break;
            }
        }
        let (_, ahead_ns, sampled_at) = best.expect("sampled at least once");
        RealtimeOffset {
            ahead_ns,
            sampled_at,
        }
    }
}

/// A pair of clock readings taken closer than this is taken as one instant.
const TIGHT_NS: i128 = 2_000;

/// CLOCK_REALTIME's distance ahead of the daemon's clock (see [`Clock::realtime_offset`]). It
/// changes only when the wall clock is stepped (both clocks are slewed alike), so it is
/// sampled again now and then, not for each stamp.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RealtimeOffset {
    ahead_ns: i128,
    /// When it was sampled (the daemon clock's ns).
    pub sampled_at: u64,
}

impl RealtimeOffset {
    /// The daemon clock's ns of `real_ns`, a time of CLOCK_REALTIME (0 for one before the
    /// daemon started).
    pub fn to_clock(self, real_ns: i64) -> u64 {
        u64::try_from((i128::from(real_ns) - self.ahead_ns).max(0)).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wall-clock time read between two readings of the daemon's clock converts to a time
    /// between them (to the sampling's precision).
    #[test]
    fn a_realtime_reading_lands_between_the_clock_readings_around_it() {
        let clock = Clock::start();
        let offset = clock.realtime_offset();
        for _ in 0..1000 {
            let before = clock.now_ns();
            let real = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as i64;
            let after = clock.now_ns();
            let at = offset.to_clock(real);
            // The offset's own spread: at most TIGHT_NS, unless the machine stopped the
            // thread through five samplings.
            let slack = 50_000;
            assert!(
                at + slack >= before && at <= after + slack,
                "{before} <= {at} <= {after}"
            );
        }
        assert_eq!(offset.to_clock(0), 0, "before the start: 0");
    }
}
