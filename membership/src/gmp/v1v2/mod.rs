//! The IGMPv1/v2 and MLDv1 path: carries out the per-group state [`machine`]'s decisions for a
//! record (report timers, reports, Leave / Done) while the interface is in an older mode.

pub(crate) mod machine;

use core::time::Duration;

use super::entry::GroupMode;
use super::table::TimerKey;
use super::{random_delay, Compat, Env, Family, Protocol};
use crate::time::Instant;
use crate::IfIndex;
use machine::{Actions, Member, MemberContext, MemberEvent, TimerCmd};

impl<P: Protocol> Family<P> {
    /// A group gained or lost reception state in an older mode. v1/v2 and MLDv1 cannot express
    /// sources: only gaining and losing reception state count, as a join and a leave.
    pub(super) fn reception_changed(
        &mut self,
        key: usize,
        had: bool,
        has: bool,
        now: Instant,
        env: &mut Env<'_>,
    ) {
        let record = &self.records[key];
        let (ifindex, group) = (record.iface, record.group);
        let ctx = self.context(ifindex, env.config);
        match (had, has) {
            (false, true) => {
                let (member, actions) = machine::join(true, &ctx);
                self.apply(key, member, actions, &ctx, now, env);
            }
            (true, false) => {
                let member = match record.mode {
                    GroupMode::Older(member) => member,
                    GroupMode::V3 { .. } => return,
                };
                self.remove(key);
                if let Some(send) = machine::leave(member, &ctx) {
                    if let Some(addrs) = env.interfaces.get(&ifindex) {
                        let tx = P::transmit(ifindex, addrs, group, send, &ctx, env.stats);
                        env.out.push_back(tx);
                    }
                }
            }
            _ => {}
        }
    }

    /// A v1/v2 (MLDv1) query for `target` (None: every group), or a newer query heard in an
    /// older mode and handled as one of that mode (RFC 9776 §7.2.1, RFC 9777 §8.2.1).
    pub fn query(
        &mut self,
        ifindex: IfIndex,
        target: Option<P::Addr>,
        max_delay: Duration,
        from_v1_querier: bool,
        now: Instant,
        env: &mut Env<'_>,
    ) {
        let Some(iface) = self.ifaces.get(&ifindex) else {
            return;
        };
        // `Family::context`, from the interface in hand: one lookup, not two.
        let ctx = Self::context_in(
            iface.older.heard().min(P::max_compat(env.config)),
            env.config,
        );
        let event = MemberEvent::Query {
            max_delay,
            from_v1_querier,
        };
        match target {
            None => {
                for key in self.keys_on(ifindex) {
                    self.event(key, event, &ctx, now, env);
                }
            }
            Some(group) => {
                let records = &self.records;
                let group_of = |s: u32| records[s as usize].group;
                if let Some(key) = iface.groups.get(&group, group_of).map(|k| k as usize) {
                    self.event(key, event, &ctx, now, env);
                }
            }
        }
    }

    /// Another host's v1/v2 (MLDv1) report. Returns whether we are a member of the group. In v3
    /// mode reports from others change nothing (RFC 9776 §5.2: no suppression).
    pub fn report_heard(
        &mut self,
        ifindex: IfIndex,
        group: P::Addr,
        v1: bool,
        now: Instant,
        env: &mut Env<'_>,
    ) -> bool {
        // One lookup of the interface for its record and its mode (`Family::compat`).
        let Some((key, mode)) = self.ifaces.get(&ifindex).and_then(|i| {
            let key = i.groups.get(&group, |s| self.records[s as usize].group)?;
            Some((key as usize, i.older.heard().min(P::max_compat(env.config))))
        }) else {
            return false;
        };
        if mode < Compat::V3 {
            let ctx = Self::context_in(mode, env.config);
            self.event(key, MemberEvent::ReportHeard { v1 }, &ctx, now, env);
        }
        true
    }

    /// A record's report timer fired.
    pub(super) fn report_timer_expired(&mut self, key: usize, at: Instant, env: &mut Env<'_>) {
        let ctx = self.context(self.records[key].iface, env.config);
        self.event(key, MemberEvent::TimerExpired, &ctx, at, env);
    }

    fn event(
        &mut self,
        key: usize,
        event: MemberEvent,
        ctx: &MemberContext,
        now: Instant,
        env: &mut Env<'_>,
    ) {
        let record = &self.records[key];
        let GroupMode::Older(member) = record.mode else {
            return;
        };
        if !record.has_reception_state() {
            return;
        }
        let remaining = record
            .timer
            .and_then(|t| self.wheel.deadline(t))
            .map(|deadline| deadline - now);
        let (member, actions) = machine::on_event(member, event, remaining, ctx);
        self.apply(key, member, actions, ctx, now, env);
    }

    /// Carries out one transition's actions for record `key`.
    fn apply(
        &mut self,
        key: usize,
        member: Member,
        actions: Actions,
        ctx: &MemberContext,
        now: Instant,
        env: &mut Env<'_>,
    ) {
        let record = &mut self.records[key];
        let GroupMode::Older(ref mut current) = record.mode else {
            return;
        };
        *current = member;
        let report = &mut record.timer;
        match actions.timer {
            TimerCmd::Keep => {}
            TimerCmd::Cancel => {
                if let Some(timer) = report.take() {
                    self.wheel.cancel(timer);
                }
            }
            TimerCmd::StartRandom { max } => {
                if let Some(timer) = report.take() {
                    self.wheel.cancel(timer);
                }
                let at = now + random_delay(env.rng, max);
                *report = Some(self.wheel.schedule(at, TimerKey::Report(key)));
            }
        }
        if let Some(send) = actions.send {
            if let Some(addrs) = env.interfaces.get(&record.iface) {
                let tx = P::transmit(record.iface, addrs, record.group, send, ctx, env.stats);
                env.out.push_back(tx);
            }
        }
    }
}
