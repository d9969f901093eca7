//! The receiver records read in bulk: a page of them in a stable order, their sums per (link,
//! source, group), and the latency histograms per link, for `streams`, the live view's
//! `/api/streams` and `/api/stream-flows`, and `/metrics`. Each is one pass over the records
//! (O(records + flows)); none keeps state.

use std::collections::BTreeMap;

use control::protocol::ReceiverCounts;

use super::check::{Flow, Nanos, ReceiverFigures, ReceiverKey, Receivers};
use crate::ids::LinkId;

/// A page of receiver records and the sums over every one admitted.
pub struct RecordsPage {
    /// Every record admitted, listed or not.
    pub total: u64,
    pub totals: ReceiverCounts,
    /// From the offset, at most the limit, by host number and then flow id.
    pub records: Vec<(ReceiverKey, ReceiverFigures)>,
}

/// One (link, source, group): its receivers' counts summed, its latency quantiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowSummary {
    pub flow: Flow,
    pub receivers: u64,
    pub counts: ReceiverCounts,
    pub p50_ns: Nanos,
    pub p99_ns: Nanos,
}

impl Receivers {
    /// The records `wanted` admits that counted something: their sums, and those from the
    /// `offset`-th to the `offset + limit`-th in the order of their packed key (host number,
    /// then flow id), which a record keeps for its life, so that pages do not shift as
    /// datagrams come. O(records): the page is selected, only it is sorted.
    pub fn page(
        &self,
        wanted: impl Fn(&ReceiverKey) -> bool,
        offset: u64,
        limit: u64,
    ) -> RecordsPage {
        let mut totals = ReceiverCounts::default();
        let mut keys: Vec<(u64, ReceiverFigures)> = Vec::new();
        for (&packed, record) in &self.records {
            if !wanted(&self.key_of(packed)) {
                continue;
            }
            if let Some(figures) = self.figures(packed, record) {
                totals.add(&figures.counts());
                keys.push((packed, figures));
            }
        }
        let total = keys.len() as u64;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(keys.len());
        let end = start
            .saturating_add(usize::try_from(limit).unwrap_or(usize::MAX))
            .min(keys.len());
        if start < keys.len() && start > 0 {
            keys.select_nth_unstable_by_key(start, |(k, _)| *k);
        }
        let page = &mut keys[start..];
        if end - start < page.len() && end > start {
            page.select_nth_unstable_by_key(end - start, |(k, _)| *k);
        }
        let page = &mut page[..end - start];
        page.sort_unstable_by_key(|(k, _)| *k);
        RecordsPage {
            total,
            totals,
            records: page
                .iter()
                .map(|(packed, figures)| (self.key_of(*packed), *figures))
                .collect(),
        }
    }

    /// Every flow `wanted` admits that has a record that counted something, with its
    /// records' counts summed, ordered by link, group and source.
    pub fn flow_summaries(&self, wanted: impl Fn(&Flow) -> bool) -> Vec<FlowSummary> {
        let mut sums: Vec<Option<(u64, ReceiverCounts)>> = vec![None; self.flows.len()];
        for (&packed, record) in &self.records {
            let flow = (packed as u32) as usize;
            let Some(figures) = self.figures(packed, record) else {
                continue;
            };
            let Some(sum) = sums.get_mut(flow) else {
                continue;
            };
            let (receivers, counts) = sum.get_or_insert_with(Default::default);
            *receivers += 1;
            counts.add(&figures.counts());
        }
        let mut summaries: Vec<FlowSummary> = sums
            .into_iter()
            .zip(&self.flows)
            .filter_map(|(sum, state)| {
                let (receivers, counts) = sum?;
                wanted(&state.flow).then(|| FlowSummary {
                    flow: state.flow,
                    receivers,
                    counts,
                    p50_ns: state.histogram.quantile(0.5),
                    p99_ns: state.histogram.quantile(0.99),
                })
            })
            .collect();
        summaries.sort_unstable_by_key(|s| (s.flow.0, s.flow.2, s.flow.1));
        summaries
    }

    /// The one-way latency every link's hosts measured, as (bucket middle, count) pairs of
    /// its flows' histograms, per link: O(flows × buckets).
    pub fn latency_by_link(&self) -> BTreeMap<LinkId, Vec<(Nanos, u32)>> {
        let mut by_link: BTreeMap<LinkId, Vec<(Nanos, u32)>> = BTreeMap::new();
        for state in &self.flows {
            let buckets: Vec<(Nanos, u32)> = state.histogram.occupied().collect();
            if !buckets.is_empty() {
                by_link.entry(state.flow.0).or_default().extend(buckets);
            }
        }
        by_link
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Id;
    use crate::streams::check::Admission;
    use control::stream_header::StreamHeader;

    /// 50 hosts, the even ones on link 0 and the odd ones on link 1, which misses sequence 5
    /// of S1; every host joined INCLUDE {S1}, S2 sends one datagram to each link.
    fn filled() -> (Receivers, LinkId) {
        let mut receivers = Receivers::new(1_000_000_000);
        let group = "232.1.1.1".parse().unwrap();
        for link in [0, 1].map(LinkId::from_index) {
            let (f1, _) = receivers.flow(link, "10.1.1.1".parse().unwrap(), group);
            let (f2, _) = receivers.flow(link, "10.1.1.2".parse().unwrap(), group);
            let odd = link.index() as u32;
            for host in (0..25u32).rev().map(|h| h * 2 + odd) {
                receivers.classify(host, f1, Admission::Admitted, 0);
                receivers.classify(host, f2, Admission::Excluded, 0);
            }
            for sequence in 0..10u64 {
                if odd == 1 && sequence == 5 {
                    continue;
                }
                let header = StreamHeader {
                    stream: 1,
                    sequence,
                    sent_ns: 0,
                };
                receivers.frame(f1, &header, 64, 1000 + 40 * u64::from(odd), &[]);
            }
            let header = StreamHeader {
                stream: 2,
                sequence: 0,
                sent_ns: 0,
            };
            receivers.frame(f2, &header, 64, 2000, &[]);
        }
        (receivers, LinkId::from_index(0))
    }

    #[test]
    fn pages_are_in_host_order_and_cover_every_record_once() {
        let (receivers, _) = filled();
        let mut seen = Vec::new();
        let mut offset = 0;
        loop {
            let page = receivers.page(|_| true, offset, 7);
            assert_eq!(page.total, 100);
            assert_eq!(page.totals.received, 50 * 10 - 25);
            assert_eq!(page.totals.lost, 25);
            assert_eq!(page.totals.source_leaks, 50);
            if page.records.is_empty() {
                break;
            }
            offset += page.records.len() as u64;
            seen.extend(page.records.iter().map(|(k, _)| (k.host, k.source)));
        }
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(seen, sorted, "pages follow each other in order");
        sorted.dedup();
        assert_eq!(sorted.len(), 100);
        // Past the end: the totals, no record.
        let page = receivers.page(|k| k.host == 3, 5, 10);
        assert_eq!((page.total, page.records.len()), (2, 0));
    }

    #[test]
    fn flows_sum_their_receivers() {
        let (receivers, link) = filled();
        let flows = receivers.flow_summaries(|_| true);
        assert_eq!(flows.len(), 4, "two sources on two links");
        let s1 = &flows[0];
        assert_eq!(
            (s1.flow.0, s1.flow.1.to_string()),
            (link, "10.1.1.1".into())
        );
        assert_eq!(
            (s1.receivers, s1.counts.received, s1.counts.lost),
            (25, 250, 0)
        );
        let odd = flows
            .iter()
            .find(|f| f.flow.0 != link && f.flow.1.to_string() == "10.1.1.1")
            .unwrap();
        assert_eq!(
            (odd.receivers, odd.counts.received, odd.counts.lost),
            (25, 225, 25)
        );
        // Latencies 1000 and 1040 ns: the middle buckets around them.
        assert!((960..=1100).contains(&s1.p50_ns), "{}", s1.p50_ns);
        let s2 = &flows[1];
        assert_eq!((s2.receivers, s2.counts.source_leaks), (25, 25));
        assert_eq!(s2.p50_ns, 0, "a leak has no latency counted");
        assert!(receivers
            .flow_summaries(|f| f.1.to_string() == "10.1.1.9")
            .is_empty());
        // Each frame counted once per host that received it.
        let by_link = receivers.latency_by_link();
        let counted: u32 = by_link.values().flatten().map(|(_, n)| n).sum();
        assert_eq!(counted, 475);
        assert_eq!(by_link[&link].iter().map(|(_, n)| n).sum::<u32>(), 250);
    }
}
