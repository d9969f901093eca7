//! The event loop's side of `--http` (the server is in `crate::http`): queries taken between
//! packet bursts, a few per turn; those over the whole host or group table are walks of at
//! most [`WALK_SLICE`] entries per turn, so a page at 10^5 hosts never holds a query waiting.
//! Nothing here changes state.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use control::http_api::{DelayHistograms, GroupsPage, HostInfo, HostsPage, LinksReply, Overview};
use control::prometheus::Histogram;
use control::protocol::{self, DelaysArgs, StatsArgs};
use membership::GroupCursor;
use mio::Waker;

use super::view::View;
use super::{CoreId, HostId, LinkId};
use crate::http::{self, Asked, LoopSide, Query, Refusal, Snapshot, Ticket};

/// Hosts or group records one walk visits per turn of the loop.
const WALK_SLICE: usize = 1024;
/// Queries taken from the server per turn.
const QUERIES_PER_TURN: usize = 16;
/// A groups page stops growing past about this many bytes of JSON (sources make records big).
const MAX_PAGE_BYTES: usize = 2 << 20;

/// The server's channel ends and the walks under way.
pub(super) struct HttpPort {
    side: LoopSide,
    walks: Vec<Walk>,
}

/// A page being gathered over turns of the loop.
struct Walk {
    ticket: Ticket,
    offset: u64,
    limit: u64,
    /// Entries that matched so far, listed or skipped.
    matched: u64,
    kind: WalkKind,
}

enum WalkKind {
    Hosts {
        search: Option<String>,
        /// Position: the link's place in the link table's order, and the host's on the link.
        link: usize,
        index: usize,
        page: Vec<HostInfo>,
    },
    Groups {
        cursor: Option<(CoreId, GroupCursor)>,
        page: Vec<protocol::GroupInfo>,
        bytes: usize,
        total: u64,
        /// The page filled before the walk's end.
        more: bool,
    },
}

/// What the loop does with a query.
enum Started {
    Answered(Result<Snapshot, Refusal>),
    Walking(Walk),
}

/// A control protocol refusal as an HTTP one.
fn refusal(status: u16, message: String) -> Refusal {
    Refusal { status, message }
}

impl HttpPort {
    /// `--http`: binds and starts the server; its queries wake the loop through `waker`.
    pub(super) fn start(addr: SocketAddr, waker: &Arc<Waker>) -> anyhow::Result<HttpPort> {
        Ok(HttpPort {
            side: http::start(addr, waker.clone())?,
            walks: Vec::new(),
        })
    }

    /// A walk has its next slice to do, or queries beyond a turn's share wait (their wakes
    /// are spent): the loop must not sleep.
    pub(super) fn is_busy(&self) -> bool {
        !self.walks.is_empty() || !self.side.queries.is_empty()
    }

    /// Takes the server's queries and advances the walks by a slice each.
    pub(super) fn serve(&mut self, view: &View) {
        for _ in 0..QUERIES_PER_TURN {
            let Ok(Asked { query, ticket }) = self.side.queries.try_recv() else {
                break;
            };
            match view.http_query(query, ticket) {
                Started::Walking(walk) => self.walks.push(walk),
                Started::Answered(answer) => self.side.answer(ticket, answer),
            }
        }
        let mut walks = std::mem::take(&mut self.walks);
        walks.retain_mut(|walk| match view.advance_walk(walk) {
            Some(answer) => {
                self.side.answer(walk.ticket, answer);
                false
            }
            None => true,
        });
        self.walks = walks;
    }
}

impl View<'_> {
    /// The answer at once, or the walk that will give it.
    fn http_query(&self, query: Query, ticket: Ticket) -> Started {
        let walk = |kind, offset, limit| Walk {
            ticket,
            offset,
            limit,
            matched: 0,
            kind,
        };
        match query {
            Query::Hosts {
                offset,
                limit,
                search,
            } => {
                let kind = WalkKind::Hosts {
                    search,
                    link: 0,
                    index: 0,
                    page: Vec::new(),
                };
                Started::Walking(walk(kind, offset, limit))
            }
            Query::Groups {
                host: Some(addr),
                offset,
                limit,
            } => Started::Answered(self.host_groups(addr, offset, limit)),
            Query::Groups {
                host: None,
                offset,
                limit,
            } => Started::Walking(walk(self.groups_walk(), offset, limit)),
            query => Started::Answered(self.snapshot(query)),
        }
    }

    /// The answer to a query that needs no walk.
    fn snapshot(&self, query: Query) -> Result<Snapshot, Refusal> {
        let all = StatsArgs::default();
        Ok(match query {
            Query::Overview => Snapshot::Overview(self.overview()),
            Query::Metrics => Snapshot::Metrics {
                overview: self.overview(),
                stats: Box::new(self.stats(&all).map_err(|r| refusal(500, r))?),
                delays: self.delay_histograms(),
                latency: self.latency_histograms(),
                test_delays: self
                    .tests
                    .histograms()
                    .map(|h| Box::new((h.join.clone(), h.leave.clone()))),
            },
            Query::Stats => Snapshot::Stats(self.stats(&all).map_err(|r| refusal(500, r))?),
            Query::Links => Snapshot::Links(self.links_reply()),
            Query::Histograms => Snapshot::Histograms(self.delay_histograms()),
            Query::Delays { limit } => {
                let args = DelaysArgs {
                    reset: false,
                    limit: Some(limit),
                };
                Snapshot::Delays(self.delays_reply(&args).map_err(|r| refusal(404, r))?)
            }
            Query::Test => Snapshot::Test(self.latest_test_status()),
            Query::Streams(args) => Snapshot::Streams(Box::new(
                self.streams_reply(&args).map_err(|r| refusal(400, r))?,
            )),
            Query::StreamFlows {
                iface,
                group,
                offset,
                limit,
            } => Snapshot::StreamFlows(
                self.stream_flows(&iface, group, offset, limit)
                    .map_err(|r| refusal(400, r))?,
            ),
            Query::Hosts { .. } | Query::Groups { .. } => unreachable!("walked"),
        })
    }

    /// A page of one host's groups, from the core's index of its interface: O(offset +
    /// limit), whatever the other hosts hold.
    fn host_groups(
        &self,
        addr: std::net::IpAddr,
        offset: u64,
        limit: u64,
    ) -> Result<Snapshot, Refusal> {
        let Some(id) = self.hosts.find(&addr) else {
            return Err(Refusal {
                status: 404,
                message: format!("no host has the address {addr}"),
            });
        };
        let (core, ifindex) = (self.hosts[id].core, self.hosts[id].ifindex);
        let engine = &self.hosts.core(core).engine;
        let total = engine.interface_group_records(ifindex) as u64;
        let mut records = Vec::new();
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        let max = usize::try_from(limit).unwrap_or(usize::MAX);
        engine.interface_groups_page(ifindex, skip, max, self.clock.now(), &mut records);
        let end = offset + records.len() as u64;
        Ok(Snapshot::Groups(GroupsPage {
            offset,
            limit,
            total,
            next_offset: (end < total).then_some(end),
            groups: records.iter().map(|g| self.group_info(core, g)).collect(),
        }))
    }

    /// The start of a walk over every host's group records.
    fn groups_walk(&self) -> WalkKind {
        WalkKind::Groups {
            cursor: self.hosts.first_core().map(|c| (c, GroupCursor::START)),
            page: Vec::new(),
            bytes: 0,
            total: self
                .hosts
                .cores()
                .map(|(_, c)| c.engine.group_records() as u64)
                .sum(),
            more: false,
        }
    }

    fn overview(&self) -> Overview {
        Overview {
            version: env!("CARGO_PKG_VERSION").to_string(),
            links: self.links.len() as u64,
            hosts: self.hosts.live() as u64,
            group_records: self
                .hosts
                .cores()
                .map(|(_, c)| c.engine.group_records() as u64)
                .sum(),
            delays: self.delays.is_on(),
            uptime_ms: u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Every (host, group) measured, counted into the histograms: O(measurements).
    fn delay_histograms(&self) -> DelayHistograms {
        let mut histograms = DelayHistograms {
            measured: self.delays.is_on(),
            join: Histogram::delays(),
            leave: Histogram::delays(),
        };
        for pair in self.delays.delays() {
            if let Some(ns) = pair.join_delay_ns {
                histograms.join.observe_ns(ns);
            }
            if let Some(ns) = pair.leave_delay_ns {
                histograms.leave.observe_ns(ns);
            }
        }
        histograms
    }

    /// Every link and its device's counters (as `show` lists them: O(links), whatever the
    /// hosts).
    fn links_reply(&self) -> LinksReply {
        let links = self.links.iter().map(|(_, link)| link.info()).collect();
        LinksReply { links }
    }

    /// One host as `/api/hosts` lists it.
    fn host_info(&self, id: HostId) -> Option<HostInfo> {
        let host = &self.hosts[id];
        let interface = self
            .hosts
            .core(host.core)
            .engine
            .interface(host.ifindex, self.clock.now())?;
        Some(HostInfo {
            interface: self.interface_info(id, &interface),
            link: self
                .links
                .get(host.link)
                .map_or_else(String::new, |l| l.name.clone()),
            stats: self
                .hosts
                .host_stats(id)
                .described()
                .into_iter()
                .map(|(name, value, _)| (name.to_string(), value))
                .collect(),
        })
    }

    /// Whether host `id`'s addresses, MAC or link contain `search` (lower case).
    fn host_matches(&self, id: HostId, search: &str, text: &mut String) -> bool {
        let host = &self.hosts[id];
        text.clear();
        let _ = write!(text, "{} {}", host.addrs.ipv4.0, host.addrs.ipv6_ll);
        if let Some(mac) = host.addrs.mac {
            let _ = write!(text, " {mac}");
        }
        if let Some(link) = self.links.get(host.link) {
            let _ = write!(text, " {}", link.name);
        }
        text.make_ascii_lowercase();
        text.contains(search)
    }

    /// One slice of `walk`; its answer once it is over.
    fn advance_walk(&self, walk: &mut Walk) -> Option<Result<Snapshot, Refusal>> {
        let Walk {
            offset,
            limit,
            matched,
            kind,
            ..
        } = walk;
        match kind {
            WalkKind::Hosts {
                search,
                link,
                index,
                page,
            } => {
                let links: Vec<LinkId> = self.links.iter().map(|(id, _)| id).collect();
                let mut text = String::new();
                for _ in 0..WALK_SLICE {
                    let Some(&link_id) = links.get(*link) else {
                        return Some(Ok(Snapshot::Hosts(HostsPage {
                            offset: *offset,
                            limit: *limit,
                            total: *matched,
                            hosts: std::mem::take(page),
                        })));
                    };
                    let Some(&id) = self.links[link_id].hosts.get(*index) else {
                        (*link, *index) = (*link + 1, 0);
                        continue;
                    };
                    *index += 1;
                    if self.hosts.get(id).is_none_or(|h| h.retired) {
                        continue;
                    }
                    if let Some(search) = search {
                        if !self.host_matches(id, search, &mut text) {
                            continue;
                        }
                    }
                    if *matched >= *offset && (page.len() as u64) < *limit {
                        page.extend(self.host_info(id));
                    }
                    *matched += 1;
                }
                None
            }
            WalkKind::Groups {
                cursor,
                page,
                bytes,
                total,
                more,
            } => {
                let now = self.clock.now();
                let mut records = Vec::new();
                let mut walked = 0;
                while let Some((core, at)) = *cursor {
                    if walked >= WALK_SLICE || *more {
                        break;
                    }
                    records.clear();
                    let next = self.hosts.core(core).engine.groups_page(
                        at,
                        WALK_SLICE - walked,
                        now,
                        &mut records,
                    );
                    walked += records.len().max(1);
                    for info in &records {
                        let key = (core, info.iface);
                        let live = self.hosts.live_at_iface(key.0, key.1);
                        if !live {
                            continue;
                        }
                        if (page.len() as u64) >= *limit || *bytes >= MAX_PAGE_BYTES {
                            *more = true;
                            break;
                        }
                        if *matched >= *offset {
                            let group = self.group_info(core, info);
                            let sources: usize = group.sources.len()
                                + group
                                    .requests
                                    .iter()
                                    .map(|r| r.sources.len())
                                    .sum::<usize>();
                            *bytes += 300 + 42 * sources;
                            page.push(group);
                        }
                        *matched += 1;
                    }
                    *cursor = match next {
                        Some(next) => Some((core, next)),
                        None => self.hosts.core_after(core).map(|c| (c, GroupCursor::START)),
                    };
                }
                if cursor.is_some() && !*more {
                    return None;
                }
                Some(Ok(Snapshot::Groups(GroupsPage {
                    offset: *offset,
                    limit: *limit,
                    total: *total,
                    next_offset: more.then_some(*offset + page.len() as u64),
                    groups: std::mem::take(page),
                })))
            }
        }
    }
}
