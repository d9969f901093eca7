//! `show`, streamed: the reply is written a slice of groups at a time between turns of the
//! event loop, so that listing a million groups neither holds the view in memory nor keeps a
//! query waiting.
//!
//! The reply is one JSON object on one line:
//! `{"ok":true,"interfaces":[...],"listeners":[...],"groups":[` (the first part, sent at once),
//! then parts of at most [`SLICE`] groups, then `],"total_groups":N}` and the newline. The
//! parts go to the client's thread over a channel of [`STREAM_DEPTH`] parts: when the client
//! reads slowly the channel fills and the walk waits, costing nothing.

use std::collections::HashSet;
use std::io::Write as _;

use control::protocol::{self, InterfaceInfo, LinkInfo, ShowArgs, ShowHeader};
use crossbeam_channel::{Sender, TrySendError};
use membership::{GroupCursor, GroupInfo, IfIndex};

use super::requests::{target_hosts, Answer};
use super::view::View;
use super::{CoreId, HostId};
use crate::control::{Body, DaemonReply, Part, ShowGroups};

#[cfg(doc)]
use crate::control::STREAM_DEPTH;

/// Groups written per turn of the loop and per part of the reply.
const SLICE: usize = 1024;

/// A `show` reply being written.
pub(crate) struct ShowJob {
    /// Where the walk of the group tables stands (which core, where in it); `None` once it is
    /// over.
    cursor: Option<(CoreId, GroupCursor)>,
    /// Only the groups of these hosts (core, ifindex); all without.
    only: Option<HashSet<(CoreId, IfIndex)>>,
    /// Groups still to list (`--limit`).
    left: u64,
    /// No group listed yet (no comma before the next).
    first: bool,
    /// The first part, until it is handed over.
    head: Option<Vec<u8>>,
    sink: Option<Sender<Part>>,
}

impl ShowJob {
    /// The job still has parts to send.
    pub(crate) fn is_running(&self) -> bool {
        self.sink.is_some()
    }

    /// The client's thread cannot take a part now.
    pub(crate) fn is_blocked(&self) -> bool {
        self.sink.as_ref().is_some_and(Sender::is_full)
    }

    pub(crate) fn start(&mut self, sink: Sender<Part>) {
        self.sink = Some(sink);
    }

    /// Hands `part` over; false (and the job ends) when the client is gone.
    fn send(&mut self, part: Vec<u8>) -> bool {
        let Some(sink) = &self.sink else {
            return false;
        };
        match sink.try_send(Part::Stream(part)) {
            Ok(()) => true,
            // Checked by the caller with `is_blocked`; a race only delays the walk.
            Err(TrySendError::Full(part)) => sink.send(part).is_ok(),
            Err(TrySendError::Disconnected(_)) => {
                self.sink = None;
                false
            }
        }
    }
}

impl View<'_> {
    /// Starts a `show`: the whole reply for one group, else a job whose first part is ready.
    pub(super) fn show(&self, args: &ShowArgs) -> Answer {
        let link = match self.links.check_iface(&args.iface) {
            Ok(link) => link,
            Err(refusal) => return Answer::Reply(DaemonReply::Err(refusal)),
        };
        // The hosts shown: those named, or those of the link, or all.
        let only: Option<Vec<HostId>> = if args.host.is_some() || args.hosts.is_some() {
            match target_hosts(
                self.hosts,
                self.links,
                self.topology,
                &args.iface,
                &args.host,
                &args.hosts,
            ) {
                Ok(hosts) => Some(hosts),
                Err(refusal) => return Answer::Reply(DaemonReply::Err(refusal)),
            }
        } else {
            link.map(|link| self.links[link].hosts.clone())
        };
        let only: Option<HashSet<(CoreId, IfIndex)>> = only.map(|hosts| {
            hosts
                .iter()
                .map(|&h| (self.hosts[h].core, self.hosts[h].ifindex))
                .collect()
        });
        let wanted = |key: &(CoreId, IfIndex)| only.as_ref().is_none_or(|o| o.contains(key));
        let now = self.clock.now();
        let mut interfaces = Vec::new();
        let mut total = 0u64;
        for (c, core) in self.hosts.cores() {
            for i in core.engine.interfaces(now) {
                let Some(id) = self.hosts.at_iface(c, i.iface) else {
                    continue;
                };
                if self.hosts[id].retired || !wanted(&(c, i.iface)) {
                    continue;
                }
                total += (i.igmp_groups + i.mld_groups) as u64;
                interfaces.push(self.interface_info(id, &i));
            }
        }
        let header = ShowHeader {
            interfaces,
            listeners: self.listeners.show(&|h| self.hosts.label(h, self.links)),
            links: self.link_infos(),
            config_error: self.config_error.map(str::to_string),
        };
        if let Some(group) = args.group {
            let mut found = Vec::new();
            for (c, core) in self.hosts.cores() {
                for i in core.engine.interfaces(now) {
                    let key = (c, i.iface);
                    let live = self.hosts.live_at_iface(key.0, key.1);
                    if !live || !wanted(&key) {
                        continue;
                    }
                    if let Some(info) = core.engine.group(i.iface, group, now) {
                        found.push(self.group_info(c, &info));
                    }
                }
            }
            if found.is_empty() {
                let on = match (link, self.links.len()) {
                    (Some(link), _) => self.links[link].name.clone(),
                    (None, 1) => self.links.iter().next().expect("one").1.name.clone(),
                    (None, _) => "any host".into(),
                };
                return Answer::Reply(DaemonReply::refuse(format!(
                    "{group} is not joined on {on}"
                )));
            }
            return Answer::Reply(DaemonReply::Ok(Body::Show(ShowGroups {
                header,
                groups: found,
                total_groups: total,
            })));
        }
        let mut head = control::Reply::Ok(&header).to_line();
        head.truncate(head.len() - 2); // the closing brace and the newline
        head.extend_from_slice(b",\"groups\":[");
        Answer::Show(ShowJob {
            cursor: self.hosts.first_core().map(|c| (c, GroupCursor::START)),
            only,
            first: true,
            left: args.limit.unwrap_or(u64::MAX),
            head: Some(head),
            sink: None,
        })
    }

    /// Every link and its device counters.
    fn link_infos(&self) -> Vec<LinkInfo> {
        if self.args.iface.is_some() {
            return Vec::new(); // the one link of the command line: `interfaces` says it all
        }
        self.topology
            .links
            .iter()
            .filter_map(|spec| {
                let link = &self.links[self.links.named(&spec.device)?];
                Some(link.info())
            })
            .collect()
    }

    /// Up to [`SLICE`] groups, comma-separated, and the end of the reply after the last.
    fn next_part(&self, job: &mut ShowJob) -> Vec<u8> {
        let now = self.clock.now();
        let mut part = Vec::with_capacity(SLICE * 256);
        let mut page: Vec<GroupInfo> = Vec::with_capacity(SLICE);
        let mut walked = 0;
        // A slice walks at most SLICE records, listed or not.
        while let Some((core, cursor)) = job.cursor {
            if walked >= SLICE || job.left == 0 {
                break;
            }
            page.clear();
            let next =
                self.hosts
                    .core(core)
                    .engine
                    .groups_page(cursor, SLICE - walked, now, &mut page);
            walked += page.len().max(1);
            for info in &page {
                if job.left == 0 {
                    break;
                }
                let key = (core, info.iface);
                let live = self.hosts.live_at_iface(key.0, key.1);
                if !live || job.only.as_ref().is_some_and(|o| !o.contains(&key)) {
                    continue;
                }
                // A comma before every group but the very first of the reply.
                if !std::mem::take(&mut job.first) {
                    part.push(b',');
                }
                serde_json::to_writer(&mut part, &self.group_info(core, info))
                    .expect("a group always serializes");
                job.left -= 1;
            }
            job.cursor = match next {
                Some(next) => Some((core, next)),
                None => self.hosts.core_after(core).map(|c| (c, GroupCursor::START)),
            };
            if job.left == 0 {
                job.cursor = None;
            }
        }
        if job.cursor.is_none() {
            let only = &job.only;
            let total = self.hosts.total_groups(
                &|h| {
                    only.as_ref()
                        .is_none_or(|o| o.contains(&(self.hosts[h].core, self.hosts[h].ifindex)))
                },
                now,
            );
            let _ = writeln!(part, "],\"total_groups\":{total}}}");
        }
        part
    }

    /// A core group record as the protocol lists it.
    pub(super) fn group_info(&self, core: CoreId, g: &GroupInfo) -> protocol::GroupInfo {
        protocol::GroupInfo {
            iface: self
                .hosts
                .at_iface(core, g.iface)
                .map_or_else(|| g.iface.to_string(), |h| self.hosts.label(h, self.links)),
            group: g.group,
            family: if g.group.is_ipv4() { "ipv4" } else { "ipv6" }.into(),
            users: g.users,
            state: g.state.into(),
            timer_ms: g.timer_ms,
            last_reporter: g.last_reporter,
            unsolicited_left: g.unsolicited_left,
            retransmit_ms: g.retransmit_ms,
            filter_mode: g.filter_mode.into(),
            sources: g.sources.clone(),
            requests: g
                .requests
                .iter()
                .zip(&g.owners)
                .map(|(r, owner)| protocol::FilterInfo {
                    mode: r.mode.name().into(),
                    sources: r.sources.clone(),
                    owner: owner.clone(),
                })
                .collect(),
        }
    }

    pub(super) fn interface_info(
        &self,
        id: HostId,
        i: &membership::InterfaceInfo,
    ) -> InterfaceInfo {
        let host = &self.hosts[id];
        let spec = &host.addrs;
        let params = &self.hosts.core(host.core).params;
        InterfaceInfo {
            iface: self.hosts.label(id, self.links),
            ifindex: i.iface,
            device: self
                .links
                .get(host.link)
                .map_or("?", |l| l.kind_name())
                .to_lowercase(),
            mac: spec.mac.map(|mac| mac.to_string()),
            ipv4: spec.ipv4.0.to_string(),
            ipv4_prefix_len: spec.ipv4.1,
            ipv6_ll: spec.ipv6_ll.to_string(),
            igmp_version: i.igmp_version.number(),
            igmp_max_version: params.igmp_version,
            igmp_v1_router_present_ms: i.igmp_v1_querier_ms,
            igmp_v2_querier_present_ms: i.igmp_v2_querier_ms,
            igmp_general_response_ms: i.igmp_general_response_ms,
            mld_version: i.mld_version.number(),
            mld_max_version: params.mld_version,
            mld_v1_querier_present_ms: i.mld_v1_querier_ms,
            mld_general_response_ms: i.mld_general_response_ms,
            igmp_groups: i.igmp_groups as u64,
            mld_groups: i.mld_groups as u64,
        }
    }
}

/// Writes the next part of every running `show`; drops the finished ones.
pub(super) fn advance_shows(shows: &mut Vec<ShowJob>, view: &View) {
    let mut jobs = std::mem::take(shows);
    for job in &mut jobs {
        if job.is_blocked() {
            continue;
        }
        if let Some(head) = job.head.take() {
            if !job.send(head) {
                continue;
            }
        }
        let part = view.next_part(job);
        job.send(part);
        if job.cursor.is_none() {
            job.sink = None; // the last part is out
        }
    }
    jobs.retain(ShowJob::is_running);
    shows.append(&mut jobs);
}
