//! The test streams' requests (`stream_add`, `stream_remove`, `stream_start`, `stream_stop`,
//! `streams`), the `[[stream]]` tables of the configuration file, and the loop's sending turn.
//! [`crate::streams::Streams`] does the work; this is where the daemon's links, hosts and
//! clock meet it.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use control::prometheus::Histogram;
use control::protocol::{
    ReceiverCounts, ReceiverInfo, StreamIdsArgs, StreamIdsReply, StreamSpecArgs, StreamsArgs,
    StreamsReply,
};
use control::streams::{
    FlowInfo, FlowsPage, StreamCounters, DEFAULT_RECEIVER_LIMIT, MAX_RECEIVER_LIMIT,
};
use log::{info, warn};

use super::links::Audience;
use super::{Daemon, HostId, LinkId};
use crate::datapath::Datagram;
use crate::ids::{FlowId, Id, StreamId};
use crate::streams::check::{listener_receiver, Admission};
use crate::streams::{StreamSpec, TURN_BUDGET};
use crate::topology::LinkKind;
use control::stream_header::StreamHeader;

/// Delay tracker records a read burst hands datagrams to at most (then it ends, the link still
/// readable): a datagram goes only to the records it changes (`delays::feed`: the first of each
/// source after a host's report), but a source new to the link, or a General Query answered by
/// 10^4 hosts, makes that every member once (about 0.3 µs each); the bound lets the protocol's
/// timers run between such frames. The test streams' checking does not count here: it costs
/// O(1) per frame whatever the members (`streams::check`).
pub(super) const MEMBER_WORK_PER_BURST: usize = 16 * 1024;

/// Which of `stream_remove`, `stream_start`, `stream_stop`.
#[derive(Clone, Copy)]
pub(super) enum StreamAction {
    Remove,
    Start,
    Stop,
}

impl Daemon {
    /// A multicast datagram read on link `id` at `at`, handed to the members of its group the
    /// frame was for: counted per host, its time given to the delay tracker (unless the host's
    /// filter excludes its source: a wrong source cannot fake a join), and, with a stream
    /// header, checked once for its flow (link, source, group), whose counts are every member's
    /// (`streams::check`). Where the link keeps member sets (delays, streams checked, hosts
    /// that hear each other). O(1) whatever the members (the per-host counter is the
    /// group's, `member_datagrams`), but for a new flow or source (each member once) and the
    /// delay records a host's report left to check (`delays::feed`).
    pub(super) fn datagram_to_members(
        &mut self,
        id: LinkId,
        datagram: &Datagram<'_>,
        audience: Audience,
        at: u64,
    ) {
        let header = self
            .streams
            .is_checking()
            .then(|| StreamHeader::decode(datagram.payload))
            .flatten();
        let members = self.links[id].members.get(&datagram.group);
        // Interned only for a group some host joined: a flood of datagrams to ever new
        // groups makes no flows.
        let joined_by_some = members.is_some_and(|m| !m.is_empty());
        // A frame for one host's MAC on a shared link is not its flow's: checked only when it
        // reaches every member.
        let reaches_all = match audience {
            Audience::Everyone => true,
            Audience::One(_) => members.is_none_or(|m| m.iter().all(|&h| audience.admits(h))),
        };
        if let Some(header) = header.filter(|_| joined_by_some && reaches_all) {
            let flow = self.stream_flow(id, datagram, at);
            // What each `listen` client receives, checked against its own filter: a client
            // that asked INCLUDE {S1} counts S2's datagrams as leaks even when another join of
            // its host admits S2.
            let listeners: Vec<(u32, Admission)> = self
                .listeners
                .reached(id, datagram)
                .map(|(listener, admitted)| {
                    let admission = if admitted {
                        Admission::Admitted
                    } else {
                        Admission::Excluded
                    };
                    (listener_receiver(listener.as_u64()), admission)
                })
                .collect();
            self.streams
                .receivers
                .frame(flow, &header, datagram.payload.len(), at, &listeners);
        }
        if joined_by_some {
            match audience {
                Audience::Everyone => self
                    .member_datagrams
                    .read_for_every_member(id, datagram.group),
                Audience::One(host) => {
                    let members = self.links[id].members.get(&datagram.group);
                    if members.is_some_and(|m| m.contains(&host)) {
                        self.hosts[host].io.host_rx_datagrams += 1;
                    }
                }
            }
        }
        if joined_by_some && self.delays.is_on() {
            self.delay_datagram(id, datagram, audience, at);
        }
        if header.is_some() && !joined_by_some {
            self.streams.receivers.not_joined(id);
        }
    }

    /// The delay tracker's share of a datagram for the members of its group on link `id`:
    /// for every member, only the records it changes (`delays::feed`); for one host, its
    /// record. Only the right (S,G) measures: a source the filter excludes neither makes a
    /// join nor, after the leave, delays it.
    fn delay_datagram(&mut self, id: LinkId, datagram: &Datagram<'_>, audience: Audience, at: u64) {
        let Daemon {
            delays,
            links,
            hosts,
            cores,
            member_work,
            ..
        } = self;
        let (group, source) = (datagram.group, datagram.src);
        let admits = |host: HostId, number: u32| {
            hosts.get(host).is_some_and(|h| {
                h.delay_number == number
                    && cores[h.core].engine.admits_source(h.ifindex, group, source) == Some(true)
            })
        };
        match audience {
            Audience::Everyone => {
                let members = || {
                    links[id]
                        .members
                        .get(&group)
                        .into_iter()
                        .flatten()
                        .map(|&h| (h, hosts[h].delay_number))
                };
                let handed = delays.datagram_for_members(id, group, source, at, members, admits);
                *member_work = member_work.saturating_add(handed);
            }
            Audience::One(host) => {
                let number = hosts[host].delay_number;
                delays.datagram(number, group, source, admits(host, number), at);
            }
        }
    }

    /// What host `host`'s filter says of `source` in `group`.
    fn admission(&self, host: HostId, group: IpAddr, source: IpAddr) -> Admission {
        let h = &self.hosts[host];
        Admission::of(
            self.cores[h.core]
                .engine
                .admits_source(h.ifindex, group, source),
        )
    }

    /// The flow of `datagram` on link `id`; a new one gives each member of its group its
    /// reception (once per flow: O(the group's members)).
    fn stream_flow(&mut self, id: LinkId, datagram: &Datagram<'_>, at: u64) -> FlowId {
        let (flow, new) = self
            .streams
            .receivers
            .flow(id, datagram.src, datagram.group);
        if new {
            if let Some(members) = self.links[id].members.get(&datagram.group) {
                for &host in members {
                    let admission = self.admission(host, datagram.group, datagram.src);
                    let number = self.hosts[host].delay_number;
                    self.streams.receivers.classify(number, flow, admission, at);
                }
            }
        }
        flow
    }

    /// The first report of a join (or a change) of `group` went out for host `id`: its
    /// receptions of the group's flows on its link.
    pub(super) fn stream_host_joined(&mut self, id: HostId, group: IpAddr) {
        let Daemon {
            streams,
            hosts,
            cores,
            ..
        } = self;
        let h = &hosts[id];
        let engine = &cores[h.core].engine;
        streams.host_joined(h.delay_number, h.link, group, |source| {
            Admission::of(engine.admits_source(h.ifindex, group, source))
        });
    }

    /// Sends the stream packets due, up to the turn's budget, through the links' devices.
    pub(super) fn send_streams(&mut self) {
        let Daemon {
            streams,
            links,
            clock,
            ..
        } = self;
        streams.send_due(
            || u64::try_from(clock.elapsed().as_nanos()).unwrap_or(u64::MAX),
            TURN_BUDGET,
            |link, frame| links.get_mut(link).is_some_and(|l| l.write(frame)),
        );
    }

    /// Makes the streams of `specs` (checked already); the error names the first that
    /// cannot be made, and then none is.
    fn add_streams(
        &mut self,
        specs: Vec<StreamSpec>,
        configured: bool,
    ) -> Result<Vec<u32>, String> {
        let mut placed = Vec::with_capacity(specs.len());
        for spec in specs {
            let link = self.link_named(&spec.link).ok_or_else(|| {
                let names: Vec<&str> = self.links.iter().map(|(_, l)| l.name.as_str()).collect();
                format!(
                    "`link`: unknown link {} (this daemon serves {})",
                    spec.link,
                    names.join(", ")
                )
            })?;
            placed.push((spec, link));
        }
        let now = self.now_ns();
        let mut ids = Vec::with_capacity(placed.len());
        for (spec, link) in placed {
            let ethernet = self.links[link].kind == LinkKind::Tap;
            match self.streams.add(spec, link, ethernet, configured, now) {
                Ok(id) => ids.push(id),
                Err(e) => {
                    for id in ids {
                        self.streams.remove(id);
                    }
                    return Err(e);
                }
            }
        }
        Ok(ids.into_iter().map(StreamId::as_u32).collect())
    }

    pub(super) fn stream_add(&mut self, args: &StreamSpecArgs) -> Result<StreamIdsReply, String> {
        let specs = StreamSpec::expand(args)?;
        let ids = self.add_streams(specs, false)?;
        info!(
            "{} stream(s) of {} from {} on {}: ids {:?}",
            ids.len(),
            args.group,
            args.source,
            args.link,
            ids
        );
        Ok(StreamIdsReply { ids })
    }

    /// Removes, starts or stops the streams named (all of them with `all`); an unknown id
    /// refuses the whole request.
    pub(super) fn stream_action(
        &mut self,
        action: StreamAction,
        args: &StreamIdsArgs,
    ) -> Result<StreamIdsReply, String> {
        let ids: Vec<StreamId> = match (args.all, args.ids.is_empty()) {
            (true, true) => self.streams.ids(),
            (true, false) => return Err("give stream ids or `all`, not both".into()),
            (false, true) => return Err("no stream named: give ids or `all`".into()),
            (false, false) => args
                .ids
                .iter()
                .map(|&n| {
                    let id = StreamId::from_index(n as usize);
                    self.streams
                        .contains(id)
                        .then_some(id)
                        .ok_or_else(|| format!("no stream {n}"))
                })
                .collect::<Result<_, _>>()?,
        };
        let now = self.now_ns();
        for &id in &ids {
            match action {
                StreamAction::Remove => {
                    self.streams.remove(id);
                }
                StreamAction::Start => self.streams.start(id, now),
                StreamAction::Stop => self.streams.stop(id),
            }
        }
        Ok(StreamIdsReply {
            ids: ids.into_iter().map(StreamId::as_u32).collect(),
        })
    }

    /// `streams`: the streams and a page of at most `limit` receivers the filters admit
    /// (from `offset`), the totals over every one admitted. O(streams + receivers), with a
    /// bounded reply.
    pub(super) fn streams_reply(&self, args: &StreamsArgs) -> Result<StreamsReply, String> {
        let link = self.check_iface(&args.iface)?;
        let host = match args.host {
            Some(addr) => match self.by_addr.get(&addr) {
                Some(id) => Some(self.hosts[id].delay_number),
                None => return Err(format!("no host has the address {addr}")),
            },
            None => None,
        };
        let limit = args.limit.unwrap_or(DEFAULT_RECEIVER_LIMIT);
        if limit > MAX_RECEIVER_LIMIT {
            return Err(format!("`limit`: at most {MAX_RECEIVER_LIMIT}"));
        }
        let group_ok = |g: IpAddr| args.group.is_none_or(|want| want == g);
        let link_ok = |l: LinkId| link.is_none_or(|want| want == l);
        let name = |l: LinkId| {
            self.links
                .get(l)
                .map_or_else(|| "?".into(), |l| l.name.clone())
        };
        let mut streams = self
            .streams
            .infos(self.now_ns(), |l, g| link_ok(l) && group_ok(g), name);
        let total_streams = args.stream_limit.map(|_| streams.len() as u64);
        if let Some(stream_limit) = args.stream_limit {
            let skip = usize::try_from(args.stream_offset.unwrap_or(0)).unwrap_or(usize::MAX);
            let take = usize::try_from(stream_limit).unwrap_or(usize::MAX);
            streams = streams.into_iter().skip(skip).take(take).collect();
        }
        let page = self.streams.receivers.page(
            |key| link_ok(key.link) && group_ok(key.group) && host.is_none_or(|h| h == key.host),
            args.offset.unwrap_or(0),
            limit,
        );
        let mut reply = StreamsReply {
            streams,
            total_streams,
            total_receivers: page.total,
            totals: page.totals,
            ..StreamsReply::default()
        };
        for (key, record) in page.records {
            let (min_ns, max_ns) = record.latency_range();
            let (p50_ns, p99_ns) = self.streams.receivers.quantiles(&key);
            reply.receivers.push(ReceiverInfo {
                host: match key.listener() {
                    Some(n) => format!("listener {n}"),
                    None => self
                        .delay_hosts
                        .get(key.host as usize)
                        .map_or_else(|| format!("#{}", key.host), Ipv4Addr::to_string),
                },
                link: name(key.link),
                source: key.source,
                group: key.group,
                counts: record.counts(),
                min_ns,
                p50_ns,
                p99_ns,
                max_ns,
            });
        }
        reply.not_joined = self
            .streams
            .receivers
            .not_joined_counts()
            .filter(|(l, _)| link_ok(*l))
            .map(|(l, n)| (name(l), n))
            .collect::<BTreeMap<_, _>>();
        Ok(reply)
    }

    /// A page of the (link, source, group) flows the hosts receive, each with its receivers'
    /// counters summed (the live view's per-(S,G) table): O(records + flows).
    pub(super) fn stream_flows(
        &self,
        iface: &Option<String>,
        group: Option<IpAddr>,
        offset: u64,
        limit: u64,
    ) -> Result<FlowsPage, String> {
        let link = self.check_iface(iface)?;
        let flows = self.streams.receivers.flow_summaries(|&(l, _, g)| {
            link.is_none_or(|want| want == l) && group.is_none_or(|want| want == g)
        });
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let max = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(FlowsPage {
            offset,
            limit,
            total: flows.len() as u64,
            flows: flows
                .into_iter()
                .skip(start)
                .take(max)
                .map(|f| FlowInfo {
                    link: self
                        .links
                        .get(f.flow.0)
                        .map_or_else(|| "?".into(), |l| l.name.clone()),
                    source: f.flow.1,
                    group: f.flow.2,
                    receivers: f.receivers,
                    counts: f.counts,
                    p50_ns: f.p50_ns,
                    p99_ns: f.p99_ns,
                })
                .collect(),
        })
    }

    /// The one-way latency the hosts measured, a histogram per link (by name): a bounded
    /// label set whatever the hosts and streams. Each datagram is counted at its latency
    /// histogram bucket's middle (within 1/16 of its value).
    pub(super) fn latency_histograms(&self) -> BTreeMap<String, Histogram> {
        self.streams
            .receivers
            .latency_by_link()
            .into_iter()
            .filter_map(|(link, buckets)| {
                let name = self.links.get(link)?.name.clone();
                let mut histogram = Histogram::latencies();
                for (ns, count) in buckets {
                    histogram.observe_ns_times(ns, u64::from(count));
                }
                Some((name, histogram))
            })
            .collect()
    }

    /// The test streams' counters of every link that has any: one pass over the streams
    /// and one over the receiver records.
    fn stream_counts_by_link(&self) -> BTreeMap<LinkId, LinkStreamCounts> {
        let mut by_link: BTreeMap<LinkId, LinkStreamCounts> = BTreeMap::new();
        for (link, sent, errors) in self.streams.sent() {
            let counts = by_link.entry(link).or_default();
            counts.sent += sent;
            counts.errors += errors;
        }
        for (key, record) in self.streams.receivers.records() {
            by_link
                .entry(key.link)
                .or_default()
                .rx
                .add(&record.counts());
        }
        for (link, n) in self.streams.receivers.not_joined_counts() {
            by_link.entry(link).or_default().not_joined += n;
        }
        by_link
    }

    /// The stream counters for `stats`: of one link, or summed over all; none while streams
    /// are neither sent nor checked (`stats` stays as it was without them).
    pub(super) fn stream_stats(
        &self,
        link: Option<LinkId>,
    ) -> Vec<(&'static str, u64, &'static str)> {
        if !self.streams.is_checking() {
            return Vec::new();
        }
        let mut sum = LinkStreamCounts::default();
        for (l, counts) in self.stream_counts_by_link() {
            if link.is_none_or(|want| want == l) {
                sum.add(&counts);
            }
        }
        sum.described()
    }

    /// The stream counters per link, by link name, for `stats`' `per_link` (Prometheus
    /// labels); empty when no stream is sent or checked.
    pub(super) fn stream_stats_per_link(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        self.stream_counts_by_link()
            .into_iter()
            .filter_map(|(link, counts)| {
                let name = self.links.get(link)?.name.clone();
                let counters = counts
                    .described()
                    .into_iter()
                    .map(|(n, v, _)| (n.to_string(), v))
                    .collect();
                Some((name, counters))
            })
            .collect()
    }

    /// `--stream-metrics N`: the counters of the first N streams by id, each with what the
    /// receivers of its (source, group) got; empty without the option. O(streams + records).
    pub(super) fn stream_stats_per_stream(&self) -> Vec<StreamCounters> {
        let Some(first) = self.args.stream_metrics else {
            return Vec::new();
        };
        let name = |l: LinkId| {
            self.links
                .get(l)
                .map_or_else(|| "?".into(), |l| l.name.clone())
        };
        let mut streams = self.streams.infos(self.now_ns(), |_, _| true, name);
        streams.truncate(first as usize);
        let mut received: HashMap<(IpAddr, IpAddr), ReceiverCounts> = HashMap::new();
        for flow in self.streams.receivers.flow_summaries(|_| true) {
            let (_, source, group) = flow.flow;
            received
                .entry((source, group))
                .or_default()
                .add(&flow.counts);
        }
        streams
            .into_iter()
            .map(|s| {
                let counts = LinkStreamCounts {
                    sent: s.sent,
                    errors: s.send_errors,
                    rx: received
                        .get(&(s.source, s.group))
                        .copied()
                        .unwrap_or_default(),
                    not_joined: 0,
                };
                StreamCounters {
                    id: s.id,
                    link: s.link,
                    source: s.source,
                    group: s.group,
                    counters: counts
                        .described()
                        .into_iter()
                        .filter(|(n, _, _)| *n != "stream_rx_not_joined")
                        .map(|(n, v, _)| (n.to_string(), v))
                        .collect(),
                }
            })
            .collect()
    }

    /// The configuration file's `[[stream]]` tables, at start or after a reload: streams
    /// already running as asked are kept (their sequence goes on), those gone are removed,
    /// new ones made. Streams added with `stream add` are not touched.
    pub(super) fn configure_streams(&mut self, specs: &[StreamSpec]) {
        // The file's tables as a multiset: each running stream matched takes one of its copies.
        let mut wanted: HashMap<&StreamSpec, usize> = HashMap::new();
        for spec in specs {
            *wanted.entry(spec).or_default() += 1;
        }
        let mut gone = Vec::new();
        for (id, spec) in self.streams.configured() {
            match wanted.get_mut(spec) {
                Some(left) if *left > 0 => *left -= 1,
                _ => gone.push(id),
            }
        }
        for id in gone {
            self.streams.remove(id);
        }
        // In the file's order.
        let mut new = Vec::new();
        for spec in specs {
            if let Some(left) = wanted.get_mut(spec).filter(|left| **left > 0) {
                *left -= 1;
                new.push(spec.clone());
            }
        }
        if new.is_empty() {
            return;
        }
        let count = new.len();
        match self.add_streams(new, true) {
            Ok(ids) => info!("{count} stream(s) from the configuration file: ids {ids:?}"),
            Err(e) => warn!("cannot make the configuration file's streams: {e}"),
        }
    }
}

/// One link's test-stream counters.
#[derive(Default)]
struct LinkStreamCounts {
    sent: u64,
    errors: u64,
    rx: ReceiverCounts,
    not_joined: u64,
}

impl LinkStreamCounts {
    fn add(&mut self, other: &LinkStreamCounts) {
        self.sent += other.sent;
        self.errors += other.errors;
        self.rx.add(&other.rx);
        self.not_joined += other.not_joined;
    }

    /// Each counter with its name and what it counts, as `stats` lists them.
    fn described(&self) -> Vec<(&'static str, u64, &'static str)> {
        let rx = &self.rx;
        vec![
            (
                "stream_tx_packets",
                self.sent,
                "Test stream packets written to the device.",
            ),
            (
                "stream_tx_errors",
                self.errors,
                "Test stream packets the device refused (lost).",
            ),
            (
                "stream_rx_received",
                rx.received,
                "Test stream datagrams received by the hosts whose filter admits them.",
            ),
            (
                "stream_rx_lost",
                rx.lost,
                "Test stream sequence numbers the hosts never received.",
            ),
            (
                "stream_rx_duplicates",
                rx.duplicates,
                "Test stream datagrams received twice.",
            ),
            (
                "stream_rx_reordered",
                rx.reordered,
                "Test stream datagrams received after a later one.",
            ),
            (
                "stream_rx_source_leaks",
                rx.source_leaks,
                "Test stream datagrams from a source the host's filter excludes.",
            ),
            (
                "stream_rx_after_leave",
                rx.after_leave,
                "Test stream datagrams later than the leave grace after the host left.",
            ),
            (
                "stream_rx_not_joined",
                self.not_joined,
                "Test stream datagrams for a group no host of the link joined.",
            ),
        ]
    }
}
