//! The answer to a General Query (RFC 9776 §5.2, RFC 9777 §6.2: the current state of every
//! group with reception state, packed into as few reports as fit the MTU), generated report by
//! report from a cursor over the interface's groups as they stand. Nothing is materialised: an
//! answer over 10^6 groups holds one report at a time, not 10^6 records.
//!
//! The records go in group order (the interface's group index), each group's record in the
//! pieces `Packer::split` makes of it, packed exactly as `pack` packs a list. Departure from the
//! order of earlier versions, which packed the records in slot (join) order: the same records
//! and the same packing, in the order a cursor can resume in (the two agree when groups were
//! joined in address order, as batch joins are). State-change records decided at the instant
//! the answer starts go in their own reports, ahead of it, no longer packed with it.
//!
//! Pacing (`Config::answer_burst`): after the first reports, the rest are spread evenly over
//! what is left of the query's Max Resp Time, never past it.

use super::record_of;
use super::records::{current_state, PackedReport, Packer, Pieces};
use crate::gmp::table::TimerKey;
use crate::gmp::{Env, Family, Protocol};
use crate::time::Instant;
use crate::timer::TimerId;
use crate::wire::GroupRecord;
use crate::{Config, IfIndex, Transmit};

/// A General Query answer in progress on one interface.
#[derive(Debug)]
pub(crate) struct Answer<A> {
    /// The last group whose record was taken; `None` before the first.
    after: Option<A>,
    /// What is left of that group's record, split to fit reports.
    pieces: smallvec::IntoIter<[GroupRecord<A>; 1]>,
    /// The report being filled.
    packer: Packer<A>,
    /// Groups not visited yet, as counted when the answer began: with the records a report
    /// holds, the estimate of the reports left that paces the answer.
    groups_left: usize,
    /// Records without sources that fill one report.
    per_report: usize,
    /// Reports sent.
    sent: u32,
    /// When the answer began, and when it must be out: the query's Max Resp Time.
    start: Instant,
    by: Instant,
    /// Whether the interface is in `answers_due`.
    due: bool,
    /// The next paced report's timer.
    timer: Option<TimerId>,
}

impl<A: Copy> Answer<A> {
    /// The reports still to send, estimated: at least one while the answer runs.
    fn reports_left(&self) -> u64 {
        let records = self.groups_left + self.pieces.len() + self.packer.len();
        records.div_ceil(self.per_report).max(1) as u64
    }
}

impl<P: Protocol> Family<P> {
    /// The interface timer fired at `at` for a query whose Max Resp Time ends `by`: the
    /// answer starts from the interface's first group. It goes out through
    /// `Host::poll_transmit` ([`Family::poll_answer`]), report by report.
    pub(in crate::gmp) fn general_response_due(
        &mut self,
        ifindex: IfIndex,
        at: Instant,
        by: Instant,
        env: &mut Env<'_>,
    ) {
        let Some(iface) = self.ifaces.get_mut(&ifindex) else {
            return;
        };
        iface.v3.general = None;
        let groups = iface.groups.len();
        let Some(addrs) = env.interfaces.get(&ifindex) else {
            return;
        };
        let space = usize::from(addrs.mtu).saturating_sub(P::REPORT_OVERHEAD);
        // A new answer replaces one still going: it reports every group as it stands now.
        let due = self.cancel_answer(ifindex);
        self.answers.insert(
            ifindex,
            Answer {
                after: None,
                pieces: Pieces::new().into_iter(),
                packer: Packer::new(space, P::RECORD_OVERHEAD, P::ADDR_LEN),
                groups_left: groups,
                per_report: (space / P::RECORD_OVERHEAD).max(1),
                sent: 0,
                start: at,
                by,
                due: true,
                timer: None,
            },
        );
        if !due {
            self.answers_due.push_back(ifindex);
        }
    }

    /// A paced answer's timer: its next reports are due.
    pub(in crate::gmp) fn answer_due(&mut self, ifindex: IfIndex) {
        if let Some(answer) = self.answers.get_mut(&ifindex) {
            answer.timer = None;
            if !answer.due {
                answer.due = true;
                self.answers_due.push_back(ifindex);
            }
        }
    }

    /// The next report of the answers due at `now`, built now; `None` when none is due.
    pub fn poll_answer(&mut self, now: Instant, env: &mut Env<'_>) -> Option<Transmit> {
        while let Some(&ifindex) = self.answers_due.front() {
            // An entry left by an answer cancelled (its interface removed, and maybe added
            // again with a new answer, between two polls) is dropped: only a due answer goes.
            if !self.answers.get(&ifindex).is_some_and(|a| a.due) {
                self.answers_due.pop_front();
                continue;
            }
            if let Some(addrs) = env.interfaces.get(&ifindex) {
                if let Some((report, last)) = self.next_answer_report(ifindex, env.config) {
                    if last {
                        // Done: not polled once more only to find that out (one lookup of
                        // everything an interface's answer touches fewer, per host).
                        self.answers_due.pop_front();
                        self.cancel_answer(ifindex);
                    } else {
                        self.pace(ifindex, now, env.config.answer_burst);
                    }
                    // A General Query answer holds current-state records: no leaves.
                    return Some(P::v3_report(ifindex, addrs, report, env.stats));
                }
            }
            self.answers_due.pop_front();
            self.cancel_answer(ifindex);
        }
        None
    }

    /// After a report of the answer on `ifindex` (at the front of `answers_due`): the next
    /// one is due at once within the burst, else at its share of the time left before `by`.
    /// Report k after the burst, of R in all, goes at start + (by - start) × k / (R + 1), R
    /// estimated again each time; the estimate never reaches zero while reports remain, so
    /// the last ones close in on `by` and never pass it.
    fn pace(&mut self, ifindex: IfIndex, now: Instant, burst: u32) {
        let Some(answer) = self.answers.get_mut(&ifindex) else {
            return;
        };
        answer.sent = answer.sent.saturating_add(1);
        if answer.sent < burst {
            return;
        }
        let paced = u64::from(answer.sent - burst) + 1;
        let span = answer
            .by
            .saturating_duration_since(answer.start)
            .as_millis() as u64;
        let share = span * paced / (paced + answer.reports_left());
        let next = Instant::from_millis(answer.start.as_millis() + share);
        if next <= now {
            return;
        }
        answer.due = false;
        if let Some(stale) = answer.timer.take() {
            self.wheel.cancel(stale);
        }
        answer.timer = Some(self.wheel.schedule(next, TimerKey::Answer(ifindex)));
        self.answers_due.pop_front();
    }

    /// Drops the answer in progress on `ifindex`, if any (the interface leaves v3, or goes,
    /// or a new answer replaces it); whether it was due.
    pub(in crate::gmp) fn cancel_answer(&mut self, ifindex: IfIndex) -> bool {
        let Some(answer) = self.answers.remove(&ifindex) else {
            return false;
        };
        if let Some(timer) = answer.timer {
            self.wheel.cancel(timer);
        }
        answer.due
    }

    /// Whether answers wait for `poll_answer`.
    pub(in crate::gmp) fn has_answers_due(&self) -> bool {
        !self.answers_due.is_empty()
    }

    /// The next report of the answer on `ifindex`: groups taken from the cursor until one
    /// report is full, and whether it is the last (the cursor reached the interface's last
    /// group); `None` once the last has gone.
    fn next_answer_report(
        &mut self,
        ifindex: IfIndex,
        config: &Config,
    ) -> Option<(PackedReport<P::Addr>, bool)> {
        let answer = self.answers.get_mut(&ifindex)?;
        let groups = &self.ifaces.get(&ifindex)?.groups;
        let records = &self.records;
        let group_of = |s: u32| records[s as usize].group;
        loop {
            for piece in answer.pieces.by_ref() {
                if let Some(full) = answer.packer.add(piece, false) {
                    return Some((full, false));
                }
            }
            let Some((group, key)) = groups.next_after(answer.after, group_of) else {
                return answer.packer.finish().map(|report| (report, true));
            };
            answer.after = Some(group);
            answer.groups_left = answer.groups_left.saturating_sub(1);
            self.visited += 1;
            if !P::reportable(&group, config) {
                continue;
            }
            let record = &self.records[key as usize];
            if let Some(state) = current_state(&record.filter(), None) {
                answer.pieces = answer.packer.split(record_of(group, state)).into_iter();
            }
        }
    }
}
