//! `show`, streamed: the reply is written a slice of groups at a time between turns of the
//! event loop, so that listing a million groups neither holds the view in memory nor keeps a
//! query waiting.
//!
//! The reply is one JSON object on one line:
//! `{"ok":true,"interfaces":[...],"listeners":[...],"groups":[` (the first part, sent at once),
//! then parts of at most [`SLICE`] groups, then `],"total_groups":N}` and the newline. The
//! parts go to the client's thread over a channel of [`STREAM_DEPTH`] parts: when the client
//! reads slowly the channel fills and the walk waits, costing nothing.

use std::io::Write as _;

use crossbeam_channel::{Sender, TrySendError};
use membership::{GroupCursor, GroupInfo};
use serde::Serialize;
use tools::protocol::{self, InterfaceInfo, ShowArgs, ShowHeader};

use super::requests::Answer;
use super::Daemon;
use crate::control::{error_reply, ok_reply};
use crate::framing::Framing;

#[cfg(doc)]
use crate::control::STREAM_DEPTH;

/// Groups written per turn of the loop and per part of the reply.
const SLICE: usize = 1024;

/// A `show` reply being written.
pub(crate) struct ShowJob {
    /// Where the walk of the group table stands; `None` once it is over.
    cursor: Option<GroupCursor>,
    /// Groups still to list (`--limit`).
    left: u64,
    /// The first part, until it is handed over.
    head: Option<Vec<u8>>,
    sink: Option<Sender<Vec<u8>>>,
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

    pub(crate) fn start(&mut self, sink: Sender<Vec<u8>>) {
        self.sink = Some(sink);
    }

    /// Hands `part` over; false (and the job ends) when the client is gone.
    fn send(&mut self, part: Vec<u8>) -> bool {
        let Some(sink) = &self.sink else {
            return false;
        };
        match sink.try_send(part) {
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

impl Daemon {
    /// Starts a `show`: the whole reply for one group, else a job whose first part is ready.
    pub(super) fn show(&self, args: &ShowArgs) -> Answer {
        if let Err(refusal) = self.check_iface(&args.iface) {
            return Answer::Reply(refusal);
        }
        let now = self.now();
        let interfaces: Vec<InterfaceInfo> = self
            .host
            .interfaces(now)
            .into_iter()
            .map(|i| self.interface_info(&i))
            .collect();
        let total: u64 = interfaces
            .iter()
            .map(|i| i.igmp_groups + i.mld_groups)
            .sum();
        let header = ShowHeader {
            interfaces,
            listeners: self.listeners.show(&self.ifname),
        };
        if let Some(group) = args.group {
            let Some(info) = self.host.group(self.ifindex, group, now) else {
                return Answer::Reply(error_reply(format!(
                    "{group} is not joined on {}",
                    self.ifname
                )));
            };
            #[derive(Serialize)]
            struct OneGroup {
                #[serde(flatten)]
                header: ShowHeader,
                groups: [protocol::GroupInfo; 1],
                total_groups: u64,
            }
            return Answer::Reply(ok_reply(&OneGroup {
                header,
                groups: [self.group_info(&info)],
                total_groups: total,
            }));
        }
        let mut head = ok_reply(&header);
        head.truncate(head.len() - 2); // the closing brace and the newline
        head.extend_from_slice(b",\"groups\":[");
        Answer::Show(ShowJob {
            cursor: Some(GroupCursor::START),
            left: args.limit.unwrap_or(u64::MAX),
            head: Some(head),
            sink: None,
        })
    }

    /// Writes the next part of every running `show`; drops the finished ones.
    pub(super) fn advance_shows(&mut self) {
        let mut jobs = std::mem::take(&mut self.shows);
        for job in &mut jobs {
            if job.is_blocked() {
                continue;
            }
            if let Some(head) = job.head.take() {
                if !job.send(head) {
                    continue;
                }
            }
            let part = self.next_part(job);
            job.send(part);
            if job.cursor.is_none() {
                job.sink = None; // the last part is out
            }
        }
        jobs.retain(ShowJob::is_running);
        self.shows.append(&mut jobs);
    }

    /// Up to [`SLICE`] groups, comma-separated, and the end of the reply after the last.
    fn next_part(&self, job: &mut ShowJob) -> Vec<u8> {
        let now = self.now();
        let mut part = Vec::with_capacity(SLICE * 256);
        if let Some(cursor) = job.cursor {
            let want = SLICE.min(usize::try_from(job.left).unwrap_or(usize::MAX));
            let mut page: Vec<GroupInfo> = Vec::with_capacity(want);
            let next = self.host.groups_page(cursor, want, now, &mut page);
            for info in &page {
                if job.left == 0 {
                    break;
                }
                // A comma before every group but the very first of the reply.
                if cursor != GroupCursor::START || !std::ptr::eq(info, &page[0]) {
                    part.push(b',');
                }
                serde_json::to_writer(&mut part, &self.group_info(info))
                    .expect("a group always serializes");
                job.left -= 1;
            }
            job.cursor = next.filter(|_| job.left > 0);
        }
        if job.cursor.is_none() {
            let total: usize = self
                .host
                .interfaces(now)
                .iter()
                .map(|i| i.igmp_groups + i.mld_groups)
                .sum();
            let _ = writeln!(part, "],\"total_groups\":{total}}}");
        }
        part
    }

    /// A core group record as the protocol lists it.
    pub(super) fn group_info(&self, g: &GroupInfo) -> protocol::GroupInfo {
        protocol::GroupInfo {
            iface: self.ifname.clone(),
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
                .map(|r| protocol::FilterInfo {
                    mode: r.mode.name().into(),
                    sources: r.sources.clone(),
                })
                .collect(),
        }
    }

    fn interface_info(&self, i: &membership::InterfaceInfo) -> InterfaceInfo {
        InterfaceInfo {
            iface: self.ifname.clone(),
            ifindex: i.iface,
            device: self.kind.to_lowercase(),
            mac: match self.framing {
                Framing::Ethernet { mac } => Some(mac.to_string()),
                Framing::Ip => None,
            },
            ipv4: self.args.ipv4.0.to_string(),
            ipv4_prefix_len: self.args.ipv4.1,
            ipv6_ll: self.args.ipv6_link_local().to_string(),
            igmp_version: i.igmp_version.number(),
            igmp_max_version: self.args.igmp_version,
            igmp_v1_router_present_ms: i.igmp_v1_querier_ms,
            igmp_v2_querier_present_ms: i.igmp_v2_querier_ms,
            igmp_general_response_ms: i.igmp_general_response_ms,
            mld_version: i.mld_version.number(),
            mld_max_version: self.args.mld_version,
            mld_v1_querier_present_ms: i.mld_v1_querier_ms,
            mld_general_response_ms: i.mld_general_response_ms,
            igmp_groups: i.igmp_groups as u64,
            mld_groups: i.mld_groups as u64,
        }
    }
}
