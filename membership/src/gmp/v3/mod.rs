//! The IGMPv3 / MLDv2 path (RFC 9776 §5, RFC 9777 §6): queries answered by the five rules of
//! RFC 9776 §5.2, state-change reports and their retransmission, and the packing of everything
//! decided at one instant into as few reports as fit the MTU.

mod answer;
mod records;

use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

pub(crate) use answer::Answer;
use records::{current_state, pack};
pub(crate) use records::{PackedReport, Retransmit};

use super::entry::GroupMode;
use super::table::TimerKey;
use super::{answer_window, random_delay, Compat, Env, Family, Protocol};
use crate::filter::Filter;
use crate::time::Instant;
use crate::timer::TimerId;
use crate::wire::GroupRecord;
use crate::IfIndex;

/// Per interface: the v3 timers.
#[derive(Debug, Default)]
pub(crate) struct V3Iface {
    /// The pending response to a General Query (the "interface timer").
    pub(in crate::gmp) general: Option<TimerId>,
    /// One retransmission timer for every group with state-change news left, as Linux does: a
    /// retransmission carries all of them, packed, instead of one report per group.
    pub(in crate::gmp) retransmit: Option<TimerId>,
    /// The records with news left.
    pub(in crate::gmp) changed: Changed,
}

/// The records (slab keys) with news left, each once: added when its news start, taken off
/// when they end. A Vec of u32, not a set: a burst of a million joins costs 4 bytes each
/// here. Boxed, and only while it holds any: 8 bytes in every interface, not a Vec's 24.
#[derive(Debug, Default)]
// The box is the point: one allocation more, only while news is pending, 16 bytes less in
// every interface.
#[allow(clippy::box_collection)]
pub(crate) struct Changed(Option<Box<Vec<u32>>>);

impl Changed {
    /// Adds a record, which is not listed yet.
    pub(in crate::gmp) fn push(&mut self, key: u32) {
        self.0.get_or_insert_with(Box::default).push(key);
    }

    /// Takes a record off the list, if it is on it.
    pub(in crate::gmp) fn remove(&mut self, key: u32) {
        if let Some(keys) = &mut self.0 {
            keys.retain(|&k| k != key);
        }
        self.tidy();
    }

    pub(in crate::gmp) fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|keys| keys.is_empty())
    }

    /// Every record listed, taken out: the list is empty after.
    pub(in crate::gmp) fn take(&mut self) -> Vec<u32> {
        self.0.take().map(|keys| *keys).unwrap_or_default()
    }

    /// The list is `keys` (taken out with [`Changed::take`] and gone through).
    pub(in crate::gmp) fn set(&mut self, keys: Vec<u32>) {
        self.0 = Some(Box::new(keys));
        self.tidy();
    }

    pub(in crate::gmp) fn clear(&mut self) {
        self.0 = None;
    }

    fn tidy(&mut self) {
        if self.is_empty() {
            self.0 = None;
        }
    }
}

/// The wire record of one of a group's record bodies.
fn record_of<A: Copy>(group: A, (kind, sources): records::RecordBody<A>) -> GroupRecord<A> {
    GroupRecord {
        kind,
        group,
        sources: sources.into_iter().collect(),
        aux_data: Vec::new(),
    }
}

/// A v3 record decided and not yet packed: its interface, and whether it is the group's
/// leave (the group had no reception state left when it was decided).
#[derive(Debug)]
pub(crate) struct Decided<A> {
    pub(in crate::gmp) iface: IfIndex,
    record: GroupRecord<A>,
    is_leave: bool,
}

impl<P: Protocol> Family<P> {
    /// An IGMPv3 / MLDv2 query. In an older mode it is handled as a query of that mode.
    #[allow(clippy::too_many_arguments)]
    pub fn v3_query(
        &mut self,
        ifindex: IfIndex,
        target: Option<P::Addr>,
        sources: BTreeSet<P::Addr>,
        max_delay: Duration,
        querier: (u8, Duration),
        now: Instant,
        env: &mut Env<'_>,
    ) {
        let Some(iface) = self.ifaces.get_mut(&ifindex) else {
            return;
        };
        // `Family::compat`, from the interface in hand: one lookup, not two.
        let mode = iface.older.heard().min(P::max_compat(env.config));
        // RFC 9776 §4.1.6-4.1.7: a QRV of 0 keeps the old value; QQIC gives the interval.
        let (qrv, qqi) = querier;
        if qrv != 0 {
            iface.querier.robustness = Some(qrv);
        }
        if !qqi.is_zero() {
            iface.querier.query_interval.set(qqi);
        }
        // RFC 9776 §8.3: the Query Response Interval is the general queries' Max Resp Time;
        // last-member (group-specific) queries use shorter ones.
        if target.is_none() {
            iface.querier.response_interval.set(max_delay);
        }
        let window = answer_window(max_delay, env.config);
        if mode < Compat::V3 {
            self.query(ifindex, target, window, mode == Compat::V1, now, env);
            return;
        }
        let at = now + random_delay(env.rng, window);
        // Rule 1: a general response due sooner covers this query.
        if let Some(general) = iface.v3.general.and_then(|t| self.wheel.deadline(t)) {
            if general <= at {
                return;
            }
        }
        let Some(group) = target else {
            // Rule 2: (re)schedule the interface timer.
            if let Some(timer) = iface.v3.general.take() {
                self.wheel.cancel(timer);
            }
            let by = now + window;
            iface.v3.general = Some(
                self.wheel
                    .schedule(at, TimerKey::GeneralResponse(ifindex, by)),
            );
            return;
        };
        let records = &self.records;
        let group_of = |s: u32| records[s as usize].group;
        let Some(key) = iface.groups.get(&group, group_of).map(|k| k as usize) else {
            return;
        };
        let record = &mut self.records[key];
        if !record.has_reception_state() || !P::reportable(&group, env.config) {
            return;
        }
        if !matches!(record.mode, GroupMode::V3 { .. }) {
            return;
        }
        let queried_now = record.queried().is_some();
        let pending = record.timer.and_then(|t| self.wheel.deadline(t));
        let queried = match pending {
            // Rule 3: nothing pending: schedule, remembering the sources.
            None => (!sources.is_empty()).then_some(sources),
            // Rule 4: the whole group is asked for.
            Some(_) if sources.is_empty() || !queried_now => None,
            // Rule 5: add the sources.
            Some(_) => {
                let mut all = record.set_queried(None).unwrap_or_default();
                all.extend(sources);
                Some(all)
            }
        };
        record.set_queried(queried);
        let response = &mut record.timer;
        match pending {
            None => {
                *response = Some(self.wheel.schedule(at, TimerKey::Report(key)));
            }
            Some(due) => {
                if at < due {
                    if let Some(timer) = response.take() {
                        self.wheel.cancel(timer);
                    }
                    *response = Some(self.wheel.schedule(at, TimerKey::Report(key)));
                }
            }
        }
    }

    /// A group's query-response timer fired: its current state, or the queried part of it.
    pub(super) fn query_response_due(&mut self, key: usize) {
        let record = &mut self.records[key];
        if !matches!(record.mode, GroupMode::V3 { .. }) {
            return;
        }
        let queried = record.set_queried(None);
        if let Some(state) = current_state(&record.filter(), queried.as_ref()) {
            let (ifindex, group) = (record.iface, record.group);
            self.pending.push(Decided {
                iface: ifindex,
                record: record_of(group, state),
                is_leave: false,
            });
        }
    }

    /// The interface state of record `key` changed from `old`: sends the state-change report
    /// at once (RFC 9776 §5.1) and leaves what is left of it to the interface's retransmission
    /// timer.
    pub(super) fn state_changed(
        &mut self,
        key: usize,
        old: &Filter<P::Addr>,
        now: Instant,
        env: &mut Env<'_>,
    ) {
        let ifindex = self.records[key].iface;
        let robustness = self.robustness(ifindex, env.config);
        let record = &mut self.records[key];
        let listed = !record.news_done();
        let GroupMode::V3 {
            router_any_source, ..
        } = &mut record.mode
        else {
            return;
        };
        // The first change after an older mode starts from what the router holds, (*,G)
        // (RFC 9777 §8.3.2, RFC 9776 §7.3.2), not from our filter, which it never heard.
        let any_source = Filter::any_source();
        let old = if core::mem::take(router_any_source) {
            &any_source
        } else {
            old
        };
        record.with_news(|news, filter| news.change(old, filter, robustness));
        self.send_next_records(key);
        if self.records[key].news_done() {
            if listed {
                // Done at once (robustness 1): off the list again.
                if let Some(iface) = self.ifaces.get_mut(&ifindex) {
                    iface.v3.changed.remove(key as u32);
                }
            }
            return;
        }
        let Some(iface) = self.ifaces.get_mut(&ifindex) else {
            return;
        };
        if !listed {
            // A slot number: the table never holds 2^32 records (see `Family::change`).
            iface.v3.changed.push(key as u32);
        }
        if iface.v3.retransmit.is_none() {
            // At random in (0, Unsolicited Report Interval]; a change while the timer runs
            // rides along with the retransmission already scheduled.
            let delay = random_delay(env.rng, env.config.v3_unsolicited_interval)
                .max(Duration::from_millis(1));
            iface.v3.retransmit = Some(
                self.wheel
                    .schedule(now + delay, TimerKey::Retransmit(ifindex)),
            );
        }
    }

    /// The interface's retransmission timer: every group's next records in one go.
    pub(super) fn retransmit(&mut self, ifindex: IfIndex, at: Instant, env: &mut Env<'_>) {
        let Some(iface) = self.ifaces.get_mut(&ifindex) else {
            return;
        };
        iface.v3.retransmit = None;
        // In slot order, as the groups' records have always gone out.
        let mut keys = iface.v3.changed.take();
        keys.sort_unstable();
        let mut still = Vec::new();
        for key in keys.into_iter().map(|k| k as usize) {
            self.send_next_records(key);
            if self.records[key].news_done() {
                self.forget_if_done(key);
            } else {
                still.push(key as u32);
            }
        }
        let Some(iface) = self.ifaces.get_mut(&ifindex) else {
            return;
        };
        iface.v3.changed.set(still);
        if !iface.v3.changed.is_empty() {
            let delay = random_delay(env.rng, env.config.v3_unsolicited_interval)
                .max(Duration::from_millis(1));
            iface.v3.retransmit = Some(
                self.wheel
                    .schedule(at + delay, TimerKey::Retransmit(ifindex)),
            );
        }
    }

    /// Queues a group's next state-change records, counting one transmission. They are its
    /// leave when the group has no reception state left.
    fn send_next_records(&mut self, key: usize) {
        let record = &mut self.records[key];
        if record.news_done() {
            return;
        }
        let Some((bodies, is_leave)) =
            record.with_news(|news, filter| (news.next(filter), !filter.has_reception_state()))
        else {
            return;
        };
        let (iface, group) = (record.iface, record.group);
        self.pending.extend(bodies.into_iter().map(|body| Decided {
            iface,
            record: record_of(group, body),
            is_leave,
        }));
    }

    /// Packs the pending v3 records of each interface, in the order they were decided, into
    /// as few reports as fit its MTU (RFC 9776 §5.2, RFC 9777 §6.2).
    pub fn flush_reports(&mut self, env: &mut Env<'_>) {
        if self.pending.is_empty() {
            return;
        }
        let mut pending = core::mem::take(&mut self.pending);
        // By interface, each in the order its records were decided (the sort is stable):
        // O(n log n) whatever the number of interfaces (hosts) with news.
        pending.sort_by_key(|decided| decided.iface);
        let mut records = pending.into_iter().peekable();
        while let Some(first) = records.next() {
            let ifindex = first.iface;
            let mut batch = vec![(first.record, first.is_leave)];
            while let Some(next) = records.next_if(|d| d.iface == ifindex) {
                batch.push((next.record, next.is_leave));
            }
            let Some(addrs) = env.interfaces.get(&ifindex) else {
                continue;
            };
            let space = usize::from(addrs.mtu).saturating_sub(P::REPORT_OVERHEAD);
            for report in pack(batch, space, P::RECORD_OVERHEAD, P::ADDR_LEN) {
                let tx = P::v3_report(ifindex, addrs, report, env.stats);
                env.out.push_back(tx);
            }
        }
        // `pending` was taken, not drained: the memory of a large burst (a million groups
        // retransmitted at once) goes back, instead of staying as the Vec's capacity.
    }
}
