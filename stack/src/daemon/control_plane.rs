//! The control plane's own state: the `show` replies being streamed, the long joins and leaves
//! being applied (and the requests waiting behind them), the reports this turn's requests
//! owe the wire before their replies, and the control socket's counters.

use super::changes::Changes;
use super::show::ShowJob;
use super::IoStats;

#[derive(Default)]
pub(super) struct ControlPlane {
    /// `show` replies being written, a slice per turn.
    pub shows: Vec<ShowJob>,
    /// Joins and leaves of many hosts being made, a slice per turn, and the requests that
    /// wait for them.
    pub changes: Changes,
    /// Reports the requests of this turn may have made: written before their replies.
    pub reports_owed: usize,
    /// `control_requests` and `control_errors`.
    pub io: IoStats,
}

impl ControlPlane {
    /// A `show` has a slice to write, or a long change one to make: the loop must not sleep.
    pub fn is_busy(&self) -> bool {
        self.shows.iter().any(|job| !job.is_blocked()) || self.changes.is_busy()
    }

    /// Only `show`s whose clients read slowly wait: the loop sleeps a little.
    pub fn is_waiting(&self) -> bool {
        !self.shows.is_empty()
    }
}
