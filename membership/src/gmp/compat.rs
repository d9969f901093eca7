//! Host compatibility mode (RFC 9776 §7.2, RFC 9777 §8.2): which version an interface speaks,
//! the Older Version Querier Present timers that decide it, what the querier told us, and the
//! switch of every record when the mode changes.

use core::time::Duration;

use super::entry::GroupMode;
use super::table::TimerKey;
use super::v1v2::machine::MemberContext;
use super::{Env, Family, Protocol};
use crate::event::Event;
use crate::time::Instant;
use crate::timer::TimerId;
use crate::{Config, IfIndex};

/// Host compatibility mode, shared by both protocols: `V1` is IGMPv1, `V2` is IGMPv2 and
/// MLDv1, `V3` is IGMPv3 and MLDv2. Ordered oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Compat {
    V1,
    V2,
    V3,
}

/// Older Version Querier Present timers (RFC 9776 §7.2.1, RFC 9777 §8.2.1); for a host
/// configured no newer than IGMPv2, `v1` is RFC 2236 §4's Version 1 Router Present timer. In
/// the seeds this is `rti_type` aged by the slow timeout; here, timers on the same wheel.
#[derive(Debug, Default)]
pub(crate) struct OlderQueriers {
    v1: Option<TimerId>,
    v2: Option<TimerId>,
}

impl OlderQueriers {
    /// The oldest querier version present.
    pub(super) fn heard(&self) -> Compat {
        match (self.v1, self.v2) {
            (Some(_), _) => Compat::V1,
            (None, Some(_)) => Compat::V2,
            (None, None) => Compat::V3,
        }
    }

    fn slot(&mut self, version: Compat) -> Option<&mut Option<TimerId>> {
        match version {
            Compat::V1 => Some(&mut self.v1),
            Compat::V2 => Some(&mut self.v2),
            Compat::V3 => None,
        }
    }

    /// Both timers, taken out (the interface is going away).
    pub(super) fn take_timers(&mut self) -> [Option<TimerId>; 2] {
        [self.v1.take(), self.v2.take()]
    }

    fn get(&self, version: Compat) -> Option<TimerId> {
        match version {
            Compat::V1 => self.v1,
            Compat::V2 => self.v2,
            Compat::V3 => None,
        }
    }
}

/// v3: Robustness Variable, Query Interval and Query Response Interval learned from the
/// querier's QRV, QQIC and Max Resp Code (RFC 9776 §4.1.6-4.1.7, §8.3).
#[derive(Debug, Default)]
pub(crate) struct QuerierParams {
    pub(super) robustness: Option<u8>,
    pub(super) query_interval: Told,
    pub(super) response_interval: Told,
}

/// A time a querier told us, in whole milliseconds (what the wire carries always is: QQIC's
/// seconds, IGMPv3's tenths of a second, MLDv2's milliseconds), or nothing yet. 4 bytes, not
/// an `Option<Duration>`'s 16: every interface holds two per family.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Told(u32);

impl Default for Told {
    fn default() -> Self {
        Told(u32::MAX)
    }
}

impl Told {
    /// Told `time` (below a millisecond's fraction; at most about 49 days, which no field
    /// can say).
    pub(super) fn set(&mut self, time: Duration) {
        self.0 = u32::try_from(time.as_millis()).map_or(u32::MAX - 1, |ms| ms.min(u32::MAX - 1));
    }

    pub(super) fn get(self) -> Option<Duration> {
        (self.0 != u32::MAX).then(|| Duration::from_millis(u64::from(self.0)))
    }
}

impl<P: Protocol> Family<P> {
    /// The compatibility mode in force: the oldest querier version heard recently, never newer
    /// than configured.
    pub fn compat(&self, ifindex: IfIndex, config: &Config) -> Compat {
        let heard = self
            .ifaces
            .get(&ifindex)
            .map_or(Compat::V3, |i| i.older.heard());
        heard.min(P::max_compat(config))
    }

    /// The version spoken on `ifindex`.
    pub fn version(&self, ifindex: IfIndex, config: &Config) -> P::Version {
        P::version(self.compat(ifindex, config))
    }

    pub(super) fn context(&self, ifindex: IfIndex, config: &Config) -> MemberContext {
        Self::context_in(self.compat(ifindex, config), config)
    }

    /// The context of an interface in compatibility `mode`.
    pub(super) fn context_in(mode: Compat, config: &Config) -> MemberContext {
        MemberContext {
            v1_querier: mode == Compat::V1,
            robustness: config.robustness,
            unsolicited_interval: P::unsolicited_interval(config),
        }
    }

    pub(super) fn robustness(&self, ifindex: IfIndex, config: &Config) -> u8 {
        self.ifaces
            .get(&ifindex)
            .and_then(|i| i.querier.robustness)
            .unwrap_or(config.robustness)
            .max(1)
    }

    /// A query of an older version (IGMPv1/v2, MLDv1) was heard: its querier is present.
    pub fn older_querier_heard(
        &mut self,
        ifindex: IfIndex,
        version: Compat,
        now: Instant,
        env: &mut Env<'_>,
    ) {
        if version >= P::max_compat(env.config) {
            // A querier of the newest version we speak changes nothing (an IGMPv2 host
            // hearing IGMPv2 queries): no timer to keep.
            return;
        }
        let before = self.compat(ifindex, env.config);
        let timeout = self.older_querier_timeout(ifindex, env.config);
        let Some(slot) = self
            .ifaces
            .get_mut(&ifindex)
            .and_then(|i| i.older.slot(version))
        else {
            return;
        };
        if let Some(timer) = slot.take() {
            self.wheel.cancel(timer);
        }
        *slot = Some(
            self.wheel
                .schedule(now + timeout, TimerKey::OlderQuerier(ifindex, version)),
        );
        let after = self.compat(ifindex, env.config);
        if before == Compat::V3 && after < Compat::V3 {
            self.leave_v3_mode(ifindex, env);
        }
        self.mode_changed(ifindex, before, after, env);
    }

    /// An Older Version Querier Present timer ran out.
    pub(super) fn older_querier_expired(
        &mut self,
        ifindex: IfIndex,
        version: Compat,
        env: &mut Env<'_>,
    ) {
        let before = self.compat(ifindex, env.config);
        if let Some(slot) = self
            .ifaces
            .get_mut(&ifindex)
            .and_then(|i| i.older.slot(version))
        {
            *slot = None;
        }
        let after = self.compat(ifindex, env.config);
        if before < Compat::V3 && after == Compat::V3 {
            self.enter_v3_mode(ifindex);
        }
        self.mode_changed(ifindex, before, after, env);
    }

    fn mode_changed(&mut self, ifindex: IfIndex, from: Compat, to: Compat, env: &mut Env<'_>) {
        if from != to {
            env.event(Event::CompatibilityModeChanged {
                iface: ifindex,
                from: P::version(from).into(),
                to: P::version(to).into(),
            });
        }
    }

    /// RFC 9776 §7.2.1 / RFC 9777 §8.2.1: Robustness × Query Interval + Query Response
    /// Interval, with what the querier told us. A host configured no newer than IGMPv2 keeps
    /// RFC 2236 §4's Version 1 Router Present Timeout (400 s; the seed's 270 s).
    fn older_querier_timeout(&self, ifindex: IfIndex, config: &Config) -> Duration {
        if P::max_compat(config) < Compat::V3 {
            return config.v1_querier_timeout;
        }
        let querier = self.ifaces.get(&ifindex).map(|i| &i.querier);
        let robustness = self.robustness(ifindex, config);
        let interval = querier
            .and_then(|q| q.query_interval.get())
            .unwrap_or(config.query_interval);
        let response = querier
            .and_then(|q| q.response_interval.get())
            .unwrap_or(config.query_response_interval);
        interval * u32::from(robustness) + response
    }

    /// Entering an older mode cancels v3's pending responses and retransmissions (RFC 9776
    /// §7.2.1); groups being left in v3 are forgotten, the others start idle in the v1/v2
    /// machine.
    fn leave_v3_mode(&mut self, ifindex: IfIndex, env: &Env<'_>) {
        self.pending.retain(|decided| decided.iface != ifindex);
        self.cancel_answer(ifindex);
        if let Some(iface) = self.ifaces.get_mut(&ifindex) {
            iface.v3.changed.clear();
            for timer in [iface.v3.general.take(), iface.v3.retransmit.take()]
                .into_iter()
                .flatten()
            {
                self.wheel.cancel(timer);
            }
        }
        for key in self.keys_on(ifindex) {
            self.cancel_timer(key);
            let record = &mut self.records[key];
            let reportable = P::reportable(&record.group, env.config);
            record.set_mode(GroupMode::new(Compat::V2, reportable));
            self.forget_if_done(key);
        }
    }

    /// Back to v3 from an older mode: the v1/v2 machines stop.
    fn enter_v3_mode(&mut self, ifindex: IfIndex) {
        for key in self.keys_on(ifindex) {
            self.cancel_timer(key);
            let record = &mut self.records[key];
            // What the older reports told the router: (*,G). Its next change is reported
            // against EXCLUDE {} (TAHI MLDv2 6.1.a: leaving INCLUDE {S1} sends TO_IN {}, which
            // ends the (*,G) state, not BLOCK {S1}, which a router in EXCLUDE {} ignores).
            let router_any_source = record.has_reception_state();
            record.set_mode(GroupMode::V3 {
                mode_change: 0,
                router_any_source,
            });
        }
    }

    /// Time left on an Older Version Querier Present timer.
    pub fn older_querier_left(
        &self,
        ifindex: IfIndex,
        version: Compat,
        now: Instant,
    ) -> Option<Duration> {
        let timer = self.ifaces.get(&ifindex)?.older.get(version);
        self.timer_left(timer, now)
    }
}
