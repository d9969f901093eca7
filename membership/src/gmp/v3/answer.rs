//! The answer to a General Query (RFC 9776 §5.2, RFC 9777 §6.2: the current state of every
//! group with reception state, packed into as few reports as fit the MTU), generated report by
//! report from a cursor over the interface's groups as they stand. Nothing is materialised: an
//! answer over 10^6 groups holds one report at a time, not 10^6 records.
//!
//! The records go in group order (the interface's group index), each group's record in the
//! pieces `Packer::split` makes of it, packed exactly as `pack` packs a list.

use alloc::vec::{IntoIter, Vec};
use core::ops::Bound;

use super::records::{current_state, Packer};
use super::records_of;
use crate::gmp::{Env, Family, Protocol};
use crate::wire::GroupRecord;
use crate::{Config, IfIndex, Transmit};

/// A General Query answer in progress on one interface.
#[derive(Debug)]
pub(crate) struct Answer<A> {
    /// The last group whose record was taken; `None` before the first.
    after: Option<A>,
    /// What is left of that group's record, split to fit reports.
    pieces: IntoIter<GroupRecord<A>>,
    /// The report being filled.
    packer: Packer<A>,
}

impl<P: Protocol> Family<P> {
    /// The interface timer fired: the answer starts from the interface's first group. It goes
    /// out through `Host::poll_transmit` ([`Family::poll_answer`]), report by report.
    pub(in crate::gmp) fn general_response_due(&mut self, ifindex: IfIndex, env: &mut Env<'_>) {
        let Some(iface) = self.ifaces.get_mut(&ifindex) else {
            return;
        };
        iface.v3.general = None;
        let Some(addrs) = env.interfaces.get(&ifindex) else {
            return;
        };
        let space = usize::from(addrs.mtu).saturating_sub(P::REPORT_OVERHEAD);
        let answer = Answer {
            after: None,
            pieces: Vec::new().into_iter(),
            packer: Packer::new(space, P::RECORD_OVERHEAD, P::ADDR_LEN),
        };
        // A new answer replaces one still going: it reports every group as it stands now.
        self.answers.insert(ifindex, answer);
        self.answers_due.push_back(ifindex);
    }

    /// The next report of the answers due, built now; `None` when none is due.
    pub fn poll_answer(&mut self, env: &mut Env<'_>) -> Option<Transmit> {
        while let Some(&ifindex) = self.answers_due.front() {
            if let Some(addrs) = env.interfaces.get(&ifindex) {
                if let Some(report) = self.next_answer_report(ifindex, env.config) {
                    return Some(P::v3_report(ifindex, addrs, report, env.stats));
                }
            }
            self.answers_due.pop_front();
            self.answers.remove(&ifindex);
        }
        None
    }

    /// Drops the answer in progress on `ifindex`, if any (the interface leaves v3, or goes).
    pub(in crate::gmp) fn cancel_answer(&mut self, ifindex: IfIndex) {
        self.answers.remove(&ifindex);
    }

    /// Whether answers wait for `poll_answer`.
    pub(in crate::gmp) fn has_answers_due(&self) -> bool {
        !self.answers_due.is_empty()
    }

    /// The next report of the answer on `ifindex`: groups taken from the cursor until one
    /// report is full; `None` once the last has gone.
    fn next_answer_report(
        &mut self,
        ifindex: IfIndex,
        config: &Config,
    ) -> Option<Vec<GroupRecord<P::Addr>>> {
        let answer = self.answers.get_mut(&ifindex)?;
        let groups = &self.ifaces.get(&ifindex)?.groups;
        loop {
            for piece in answer.pieces.by_ref() {
                if let Some(full) = answer.packer.add(piece) {
                    return Some(full);
                }
            }
            let from = match answer.after {
                Some(group) => Bound::Excluded(group),
                None => Bound::Unbounded,
            };
            let Some((&group, &key)) = groups.range((from, Bound::Unbounded)).next() else {
                return answer.packer.finish();
            };
            answer.after = Some(group);
            self.visited += 1;
            if !P::reportable(&group, config) {
                continue;
            }
            let record = &self.records[key as usize];
            if let Some(state) = current_state(&record.filter, None) {
                let pieces: Vec<_> = records_of(group, alloc::vec![state])
                    .into_iter()
                    .flat_map(|r| answer.packer.split(r))
                    .collect();
                answer.pieces = pieces.into_iter();
            }
        }
    }
}
