//! IGMPv3 / MLDv2 host logic (RFC 9776 §5, RFC 9777 §6), written once for both: the
//! state-change records of each transition, the retransmission state that merges further
//! changes, the current-state records that answer queries, and the packing of records into
//! reports. Pure functions over sets: the parent module schedules them.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec;
use alloc::vec::Vec;

use smallvec::{smallvec, SmallVec};

use crate::filter::{Filter, FilterMode};
use crate::transmit::LeaveMask;
use crate::wire::{GroupRecord, RecordType};

/// One group record to send: its type and sources.
pub type RecordBody<A> = (RecordType, BTreeSet<A>);

/// The records a transition from `old` to `new` sends (RFC 9776 §5.1 table, RFC 9777 §6.1).
/// Empty ALLOW and BLOCK records are left out.
pub fn state_change<A: Ord + Copy>(old: &Filter<A>, new: &Filter<A>) -> Vec<RecordBody<A>> {
    use FilterMode::*;
    let diff = |a: &BTreeSet<A>, b: &BTreeSet<A>| a.difference(b).copied().collect::<BTreeSet<A>>();
    let records = match (old.mode, new.mode) {
        (Include, Include) => vec![
            (
                RecordType::AllowNewSources,
                diff(&new.sources, &old.sources),
            ),
            (
                RecordType::BlockOldSources,
                diff(&old.sources, &new.sources),
            ),
        ],
        (Exclude, Exclude) => vec![
            (
                RecordType::AllowNewSources,
                diff(&old.sources, &new.sources),
            ),
            (
                RecordType::BlockOldSources,
                diff(&new.sources, &old.sources),
            ),
        ],
        (Include, Exclude) => vec![(RecordType::ChangeToExclude, new.sources.clone())],
        (Exclude, Include) => vec![(RecordType::ChangeToInclude, new.sources.clone())],
    };
    records
        .into_iter()
        .filter(|(kind, sources)| {
            !sources.is_empty()
                || matches!(
                    kind,
                    RecordType::ChangeToExclude | RecordType::ChangeToInclude
                )
        })
        .collect()
}

/// What is still to be retransmitted for a group (RFC 9776 §5.1, RFC 9777 §6.1): a filter-mode
/// change counts its own retransmissions; otherwise each source keeps its own count, so that a
/// further change merges into what is pending instead of restarting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retransmit<A> {
    /// Reports left that carry TO_IN / TO_EX.
    pub mode_change: u8,
    /// Sources to announce as allowed / blocked, with the reports each has left.
    pub sources: BTreeMap<A, u8>,
}

impl<A> Default for Retransmit<A> {
    fn default() -> Self {
        Retransmit {
            mode_change: 0,
            sources: BTreeMap::new(),
        }
    }
}

impl<A: Ord + Copy> Retransmit<A> {
    #[cfg(test)]
    pub fn is_done(&self) -> bool {
        self.mode_change == 0 && self.sources.is_empty()
    }

    /// Records a change from `old` to `new`, to be sent `robustness` times in all.
    ///
    /// RFC 9777 §6.1 (RFC 3810 §6.1, RFC 9776 §5.1): the records of the latest change are
    /// merged into what is pending, not sent instead of it. A filter-mode change sets the
    /// Filter Mode Retransmission Counter to [Robustness Variable]; a source-list change sets
    /// the counter of each source it names, and leaves a pending filter-mode change running.
    /// Every combination follows from these two rules:
    /// - pending mode change + new mode change: the counter starts again, TO_IN / TO_EX of the
    ///   current state;
    /// - pending mode change + new source change: the remaining TO_IN / TO_EX reports go first
    ///   (with the current state), and the sources follow in ALLOW / BLOCK once they are out
    ///   (TAHI MLDv2 3.7: TO_EX (S3), then ALLOW (S1));
    /// - pending source changes + new mode change: the mode-change record carries the whole
    ///   state, so the pending sources are moot (each would have reached zero within the same
    ///   [Robustness Variable] reports anyway);
    /// - pending source changes + new source change: each source keeps its own counter.
    pub fn change(&mut self, old: &Filter<A>, new: &Filter<A>, robustness: u8) {
        if old.mode != new.mode {
            self.mode_change = robustness;
            self.sources.clear();
            return;
        }
        for (_, sources) in state_change(old, new) {
            for source in sources {
                self.sources.insert(source, robustness);
            }
        }
    }

    /// The next report's records against the current state `now`, counting one transmission.
    ///
    /// While the Filter Mode Retransmission Counter is above zero the report carries TO_IN /
    /// TO_EX alone (RFC 9777 §6.3 item 4: "if instead"...). Every State Change Report sent
    /// decreases every source's counter too, whether or not it carried the source (RFC 9777
    /// §6.1: "each time a State Change Report is sent the counter is decreased by one unit"),
    /// so a source changed while a mode change is pending is announced by the reports left
    /// after the last TO_IN / TO_EX, if any. Otherwise ALLOW and BLOCK are rebuilt from the
    /// sources with transmissions left, according to the current state: a source the state
    /// allows goes in ALLOW, one it blocks in BLOCK.
    pub fn next(&mut self, now: &Filter<A>) -> Vec<RecordBody<A>> {
        if self.mode_change > 0 {
            self.mode_change -= 1;
            let kind = match now.mode {
                FilterMode::Include => RecordType::ChangeToInclude,
                FilterMode::Exclude => RecordType::ChangeToExclude,
            };
            for left in self.sources.values_mut() {
                *left -= 1;
            }
            self.sources.retain(|_, left| *left > 0);
            return vec![(kind, now.sources.clone())];
        }
        let mut allow = BTreeSet::new();
        let mut block = BTreeSet::new();
        for (&source, left) in self.sources.iter_mut() {
            let listed = now.sources.contains(&source);
            let allowed = match now.mode {
                FilterMode::Include => listed,
                FilterMode::Exclude => !listed,
            };
            if allowed {
                allow.insert(source);
            } else {
                block.insert(source);
            }
            *left -= 1;
        }
        self.sources.retain(|_, left| *left > 0);
        [
            (RecordType::AllowNewSources, allow),
            (RecordType::BlockOldSources, block),
        ]
        .into_iter()
        .filter(|(_, s)| !s.is_empty())
        .collect()
    }
}

/// The current-state record for a group (RFC 9776 §5.2). With `queried` sources (a group-and-
/// source-specific query): INCLUDE(A) answers IS_IN(A ∩ Q), EXCLUDE(A) answers IS_IN(Q − A); an
/// empty answer sends nothing.
pub fn current_state<A: Ord + Copy>(
    filter: &Filter<A>,
    queried: Option<&BTreeSet<A>>,
) -> Option<RecordBody<A>> {
    match queried {
        None => {
            if !filter.has_reception_state() {
                return None;
            }
            let kind = match filter.mode {
                FilterMode::Include => RecordType::ModeIsInclude,
                FilterMode::Exclude => RecordType::ModeIsExclude,
            };
            Some((kind, filter.sources.clone()))
        }
        Some(q) => {
            let sources: BTreeSet<A> = match filter.mode {
                FilterMode::Include => filter.sources.intersection(q).copied().collect(),
                FilterMode::Exclude => q.difference(&filter.sources).copied().collect(),
            };
            (!sources.is_empty()).then_some((RecordType::ModeIsInclude, sources))
        }
    }
}

/// Splits records over as few reports as fit `space` bytes of records each (RFC 9776 §5.2,
/// RFC 9777 §6.2): a record too large for one report is split into records of the same type
/// over several reports, except IS_EX / TO_EX, which carry as many sources as fit. Each record
/// comes with whether it is a leave; its pieces are.
pub(crate) fn pack<A: Copy>(
    records: Vec<(GroupRecord<A>, bool)>,
    space: usize,
    record_overhead: usize,
    addr_len: usize,
) -> Vec<PackedReport<A>> {
    let mut packer = Packer::new(space, record_overhead, addr_len);
    let mut reports = Vec::new();
    for (record, is_leave) in records {
        for piece in packer.split(record) {
            reports.extend(packer.add(piece, is_leave));
        }
    }
    reports.extend(packer.finish());
    reports
}

/// The pieces [`Packer::split`] makes of a record: one, held in place, unless it is too large
/// for a report.
pub(crate) type Pieces<A> = SmallVec<[GroupRecord<A>; 1]>;

/// One report's records, and which of them are leaves.
#[derive(Debug)]
pub(crate) struct PackedReport<A> {
    pub records: Vec<GroupRecord<A>>,
    pub leaves: LeaveMask,
}

/// Fills reports with records in order, one report at a time: a record goes into the report
/// being filled when it fits, else it starts the next one. What [`pack`] does for a list, and
/// a General Query answer does group by group, never holding more than one report.
#[derive(Debug)]
pub(crate) struct Packer<A> {
    space: usize,
    record_overhead: usize,
    addr_len: usize,
    /// Bytes of records in `report`.
    used: usize,
    report: Vec<GroupRecord<A>>,
    /// Which of `report`'s records are leaves.
    leaves: LeaveMask,
}

impl<A: Copy> Packer<A> {
    /// Reports of `space` bytes of records; a record takes `record_overhead` bytes and
    /// `addr_len` per source.
    pub fn new(space: usize, record_overhead: usize, addr_len: usize) -> Packer<A> {
        Packer {
            space,
            record_overhead,
            addr_len,
            used: 0,
            report: Vec::new(),
            leaves: LeaveMask::default(),
        }
    }

    /// The pieces `record` goes out as: itself when it fits one report; else records of its
    /// type with the sources split among them, or, for IS_EX / TO_EX, as many as fit.
    /// A record that fits is returned in place, nothing allocated: nearly every record does.
    pub fn split(&self, mut record: GroupRecord<A>) -> Pieces<A> {
        let max_sources = self.space.saturating_sub(self.record_overhead) / self.addr_len;
        if record.sources.len() <= max_sources {
            return smallvec![record];
        }
        if matches!(
            record.kind,
            RecordType::ModeIsExclude | RecordType::ChangeToExclude
        ) {
            record.sources.truncate(max_sources);
            return smallvec![record];
        }
        record
            .sources
            .chunks(max_sources.max(1))
            .map(|chunk| GroupRecord {
                kind: record.kind,
                group: record.group,
                sources: chunk.to_vec(),
                aux_data: Vec::new(),
            })
            .collect()
    }

    /// Adds one piece (from [`Packer::split`]), a leave or not; the report it closed, when it
    /// did not fit in the one being filled.
    pub fn add(&mut self, piece: GroupRecord<A>, is_leave: bool) -> Option<PackedReport<A>> {
        let size = self.record_overhead + self.addr_len * piece.sources.len();
        let full = if self.report.is_empty() || self.used + size > self.space {
            let full = self.finish();
            self.used = size;
            full
        } else {
            self.used += size;
            None
        };
        if is_leave {
            self.leaves.insert(self.report.len());
        }
        self.report.push(piece);
        full
    }

    /// Records in the report being filled.
    pub fn len(&self) -> usize {
        self.report.len()
    }

    /// The report being filled, if it holds anything; the packer is empty after.
    pub fn finish(&mut self) -> Option<PackedReport<A>> {
        self.used = 0;
        let records = core::mem::take(&mut self.report);
        let leaves = core::mem::take(&mut self.leaves);
        (!records.is_empty()).then_some(PackedReport { records, leaves })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::tests::{exc, inc};

    fn set(s: &[u8]) -> BTreeSet<u8> {
        s.iter().copied().collect()
    }

    use RecordType::*;

    type ChangeRow = (Filter<u8>, Filter<u8>, Vec<RecordBody<u8>>);
    type AnswerRow = (Filter<u8>, Option<BTreeSet<u8>>, Option<RecordBody<u8>>);

    /// RFC 9776 §5.1's table.
    #[test]
    fn state_change_records() {
        #[rustfmt::skip]
        let table: Vec<ChangeRow> = vec![
            (inc(&[1, 2]), inc(&[2, 3]), vec![(AllowNewSources, set(&[3])), (BlockOldSources, set(&[1]))]),
            (inc(&[1]), inc(&[1, 2]), vec![(AllowNewSources, set(&[2]))]),
            (inc(&[1, 2]), inc(&[1]), vec![(BlockOldSources, set(&[2]))]),
            (exc(&[1, 2]), exc(&[2, 3]), vec![(AllowNewSources, set(&[1])), (BlockOldSources, set(&[3]))]),
            (inc(&[1]), exc(&[2]), vec![(ChangeToExclude, set(&[2]))]),
            (inc(&[]), exc(&[]), vec![(ChangeToExclude, set(&[]))]),
            (exc(&[]), inc(&[]), vec![(ChangeToInclude, set(&[]))]),
            (exc(&[4]), inc(&[5]), vec![(ChangeToInclude, set(&[5]))]),
            (inc(&[1]), inc(&[1]), vec![]),
        ];
        for (old, new, want) in table {
            assert_eq!(state_change(&old, &new), want, "{old:?} -> {new:?}");
        }
    }

    #[test]
    fn retransmissions_count_down_and_merge() {
        let mut r = Retransmit::default();
        // INCLUDE {1} -> INCLUDE {1,2}: ALLOW {2} twice in all.
        r.change(&inc(&[1]), &inc(&[1, 2]), 2);
        assert_eq!(r.next(&inc(&[1, 2])), vec![(AllowNewSources, set(&[2]))]);
        // Before the retransmission, 3 is blocked... i.e. INCLUDE {1,2} -> INCLUDE {2}: BLOCK {1}.
        r.change(&inc(&[1, 2]), &inc(&[2]), 2);
        assert_eq!(
            r.next(&inc(&[2])),
            vec![(AllowNewSources, set(&[2])), (BlockOldSources, set(&[1]))]
        );
        assert_eq!(r.next(&inc(&[2])), vec![(BlockOldSources, set(&[1]))]);
        assert!(r.is_done());
        assert_eq!(r.next(&inc(&[2])), vec![]);
    }

    #[test]
    fn a_source_that_flips_back_is_reported_by_its_current_state() {
        let mut r = Retransmit::default();
        r.change(&inc(&[]), &inc(&[7]), 2);
        assert_eq!(r.next(&inc(&[7])), vec![(AllowNewSources, set(&[7]))]);
        r.change(&inc(&[7]), &inc(&[]), 2);
        assert_eq!(r.next(&inc(&[])), vec![(BlockOldSources, set(&[7]))]);
    }

    #[test]
    fn mode_change_takes_over_pending_source_news() {
        let mut r = Retransmit::default();
        r.change(&inc(&[1]), &inc(&[1, 2]), 3);
        r.change(&inc(&[1, 2]), &exc(&[9]), 2);
        assert_eq!(r.next(&exc(&[9])), vec![(ChangeToExclude, set(&[9]))]);
        // A further change in the same mode while TO_EX is pending: the last TO_EX carries the
        // state, then the source follows (RFC 9777 §6.1; TAHI MLDv2 3.7.a-c).
        r.change(&exc(&[9]), &exc(&[]), 2);
        assert_eq!(r.next(&exc(&[])), vec![(ChangeToExclude, set(&[]))]);
        assert_eq!(r.next(&exc(&[])), vec![(AllowNewSources, set(&[9]))]);
        assert!(r.is_done());
        assert_eq!(r.next(&exc(&[])), vec![]);
    }

    #[test]
    fn current_state_answers() {
        #[rustfmt::skip]
        let table: Vec<AnswerRow> = vec![
            (inc(&[1, 2]), None, Some((ModeIsInclude, set(&[1, 2])))),
            (exc(&[3]), None, Some((ModeIsExclude, set(&[3])))),
            (exc(&[]), None, Some((ModeIsExclude, set(&[])))),
            (inc(&[]), None, None),
            (inc(&[1, 2]), Some(set(&[2, 3])), Some((ModeIsInclude, set(&[2])))),
            (inc(&[1, 2]), Some(set(&[3])), None),
            (exc(&[1, 2]), Some(set(&[2, 3])), Some((ModeIsInclude, set(&[3])))),
            (exc(&[1, 2]), Some(set(&[1])), None),
        ];
        for (filter, q, want) in table {
            assert_eq!(current_state(&filter, q.as_ref()), want, "{filter:?} {q:?}");
        }
    }

    fn rec(kind: RecordType, group: u8, n: usize) -> GroupRecord<u8> {
        GroupRecord {
            kind,
            group,
            sources: (0..n as u8).collect(),
            aux_data: Vec::new(),
        }
    }

    #[test]
    fn packing_fills_reports_and_splits_large_records() {
        // Space for 3 sources per record (8 + 4 * 3 = 20 bytes).
        let reports = pack(
            vec![
                (rec(RecordType::ModeIsInclude, 1, 1), false),
                (rec(RecordType::ModeIsInclude, 2, 0), true),
                (rec(RecordType::ModeIsInclude, 3, 7), true),
                (rec(RecordType::ModeIsExclude, 4, 7), false),
            ],
            20,
            8,
            4,
        );
        let shape: Vec<Vec<(u8, usize)>> = reports
            .iter()
            .map(|r| {
                r.records
                    .iter()
                    .map(|g| (g.group, g.sources.len()))
                    .collect()
            })
            .collect();
        // A leave's pieces are leaves, at their places in their reports.
        let leaves: Vec<Vec<bool>> = reports
            .iter()
            .map(|r| (0..r.records.len()).map(|i| r.leaves.contains(i)).collect())
            .collect();
        assert_eq!(
            leaves,
            vec![
                vec![false, true],
                vec![true],
                vec![true],
                vec![true],
                vec![false]
            ]
        );
        // 12 + 8 fit together; 7 IS_IN sources split 3/3/1; IS_EX truncated to 3.
        assert_eq!(
            shape,
            vec![
                vec![(1, 1), (2, 0)],
                vec![(3, 3)],
                vec![(3, 3)],
                vec![(3, 1)],
                vec![(4, 3)]
            ]
        );
    }
}
