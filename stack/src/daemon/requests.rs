//! Control requests, answered by the event loop: joins and leaves (one group, COUNT consecutive
//! groups, or a list), listeners, counters, ping. `show` is in `show.rs`.

use std::net::IpAddr;
use std::os::fd::OwnedFd;

use log::{info, warn};
use membership::{Error, FilterMode, SourceFilter};
use tools::protocol::{Change, ChangeReply, ListenArgs, ListenReply, PingReply, StatsReply};

use super::show::ShowJob;
use super::Daemon;
use crate::control::{error_reply, is_ok, ok_reply, Request};

/// What the loop does with a request.
pub(super) enum Answer {
    /// The whole reply.
    Reply(Vec<u8>),
    /// A reply streamed over later turns of the loop.
    Show(ShowJob),
}

impl Daemon {
    pub(super) fn handle_request(&mut self, request: Request, socket: Option<OwnedFd>) -> Answer {
        self.io.control_requests += 1;
        let answer = match (request, socket) {
            (Request::Listen(args), Some(socket)) => Answer::Reply(self.listen(args, socket)),
            (Request::Listen(_), None) => {
                Answer::Reply(error_reply("listen needs a listener socket"))
            }
            (Request::Join(change), _) => Answer::Reply(self.change(true, &change)),
            (Request::Leave(change), _) => Answer::Reply(self.change(false, &change)),
            (Request::Show(args), _) => self.show(&args),
            (Request::Stats, _) => Answer::Reply(ok_reply(&self.stats())),
            (Request::Ping, _) => Answer::Reply(ok_reply(&PingReply {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })),
        };
        if matches!(&answer, Answer::Reply(reply) if !is_ok(reply)) {
            self.io.control_errors += 1;
        }
        answer
    }

    pub(super) fn check_iface(&self, iface: &Option<String>) -> Result<(), Vec<u8>> {
        match iface {
            Some(name) if *name != self.ifname => Err(error_reply(format!(
                "unknown interface {name} (this daemon serves {})",
                self.ifname
            ))),
            _ => Ok(()),
        }
    }

    /// A join (`join` true) or leave of every group the request names. The groups are checked
    /// first (multicast, joined for a leave), so that a refused request changes nothing; the
    /// changes of one request happen at one instant, so IGMPv3 / MLDv2 pack their records into
    /// as few reports as the MTU allows.
    fn change(&mut self, join: bool, change: &Change) -> Vec<u8> {
        if let Err(refusal) = self.check_iface(&change.iface) {
            return refusal;
        }
        let groups = match change.groups() {
            Ok(groups) => groups,
            Err(e) => return error_reply(e),
        };
        let filter = match source_filter(&change.include, &change.exclude) {
            Ok(filter) => filter,
            Err(e) => return error_reply(e),
        };
        let now = self.now();
        for group in &groups {
            if !group.is_multicast() {
                return error_reply(Error::NotMulticast(*group));
            }
            if !join && self.host.group(self.ifindex, *group, now).is_none() {
                return error_reply(format!("{group} is not joined on {}", self.ifname));
            }
        }
        let mut users = 0;
        for (done, group) in groups.iter().enumerate() {
            let result = match (join, &filter) {
                (true, None) => self.host.join(self.ifindex, *group, now),
                (true, Some(f)) => self.host.join_filter(self.ifindex, *group, f.clone(), now),
                (false, None) => self.host.leave(self.ifindex, *group, now),
                (false, Some(f)) => self.host.leave_filter(self.ifindex, *group, f.clone(), now),
            };
            match result {
                Ok(n) => {
                    users = n;
                    self.record_change(*group);
                }
                Err(e) => {
                    let error = match e {
                        Error::NotJoined(_) => {
                            format!("{group} is not joined on {}", self.ifname)
                        }
                        e => format!("{group}: {e}"),
                    };
                    if done > 0 {
                        warn!("{error} (after {done} groups of the request were changed)");
                        return error_reply(format!(
                            "{error} (the {done} groups before it were changed)"
                        ));
                    }
                    return error_reply(error);
                }
            }
        }
        let verb = if join { "join" } else { "leave" };
        let first = groups[0];
        let count = groups.len() as u32;
        if count == 1 {
            info!(
                "{verb} {first}{} on {} (users {users})",
                describe(&filter),
                self.ifname
            );
        } else {
            info!(
                "{verb} {count} groups from {first}{} on {}",
                describe(&filter),
                self.ifname
            );
        }
        ok_reply(&ChangeReply {
            iface: self.ifname.clone(),
            group: first,
            count,
            users,
            warning: None,
        })
    }

    /// A join held by the listener `socket` (see `listeners`).
    fn listen(&mut self, args: ListenArgs, socket: OwnedFd) -> Vec<u8> {
        if let Err(refusal) = self.check_iface(&args.iface) {
            return refusal;
        }
        let filter = match source_filter(&args.include, &args.exclude) {
            Ok(filter) => filter.unwrap_or_else(|| SourceFilter::exclude(Vec::new())),
            Err(e) => return error_reply(e),
        };
        let now = self.now();
        match self.listeners.open(
            &mut self.host,
            self.ifindex,
            args.group,
            args.port,
            filter,
            socket,
            now,
        ) {
            Ok((id, users)) => ok_reply(&ListenReply {
                id: id as u64,
                iface: self.ifname.clone(),
                group: args.group,
                port: args.port,
                users,
            }),
            Err(refusal) => refusal,
        }
    }

    /// Every counter: the core's, the device's and the control socket's, the data path's.
    fn stats(&self) -> StatsReply {
        let mut reply = StatsReply::default();
        let mut add = |name: &str, value: u64, help: &str| {
            reply.stats.insert(name.to_string(), value);
            reply.help.insert(name.to_string(), help.to_string());
        };
        for (name, value, help) in self.host.stats().described() {
            add(name, value, help);
        }
        for (name, value, help) in self.io.described() {
            add(name, value, help);
        }
        for (name, value, help) in self.listeners.stats.described() {
            add(name, value, help);
        }
        reply
    }
}

/// The filter of `--include` / `--exclude`; `None` for a plain (any-source) request.
fn source_filter(
    include: &Option<Vec<IpAddr>>,
    exclude: &Option<Vec<IpAddr>>,
) -> Result<Option<SourceFilter>, String> {
    match (include, exclude) {
        (Some(_), Some(_)) => Err("give include or exclude sources, not both".into()),
        (Some(list), None) => Ok(Some(SourceFilter::include(list.clone()))),
        (None, Some(list)) => Ok(Some(SourceFilter::exclude(list.clone()))),
        (None, None) => Ok(None),
    }
}

/// " include {10.0.0.1}" and the like, for log lines; nothing for a plain request.
pub(super) fn describe(filter: &Option<SourceFilter>) -> String {
    match filter {
        None => String::new(),
        Some(f) => {
            let sources: Vec<String> = f.sources.iter().map(|s| s.to_string()).collect();
            let mode = match f.mode {
                FilterMode::Include => "include",
                FilterMode::Exclude => "exclude",
            };
            format!(" {mode} {{{}}}", sources.join(","))
        }
    }
}
