//! `--state`: joining the journal's memberships again on start, and recording each change.
//! A record names its host as `host_label` does: `tap1/10.99.1.10`, or the device alone for
//! the one host of the command line's link.

use std::net::IpAddr;

use log::{debug, info, warn};
use membership::SourceFilter;

use super::hosts::SOLICITED_NODE_OWNER;
use super::{Daemon, HostId};
use crate::state::{self, Journal, Membership, Request as SavedRequest};

impl Daemon {
    /// Joins the memberships of the `--state` journal again, then starts its writer.
    pub(super) fn restore(&mut self) -> anyhow::Result<()> {
        let Some(path) = self.args.state.clone() else {
            return Ok(());
        };
        let loaded = state::load(&path)?;
        if let Some(tail) = &loaded.damaged_tail {
            warn!(
                "state file {}: line {} is damaged ({}); kept the {} valid changes before it \
                 and cut the file at byte {}",
                path.display(),
                tail.line,
                tail.reason,
                tail.kept_lines,
                tail.offset
            );
        }
        if loaded.converted {
            info!("state file {}: converted to a journal", path.display());
        }
        let now = self.now();
        let mut joined = 0usize;
        for m in &loaded.memberships {
            let Some(id) = self.host_by_label(&m.iface) else {
                warn!(
                    "state file: skipping {} on unknown interface {}",
                    m.group, m.iface
                );
                continue;
            };
            let requests: Vec<(Option<&str>, SourceFilter)> = if m.requests.is_empty() {
                vec![(None, SourceFilter::exclude(Vec::new())); m.users.max(1) as usize]
            } else {
                m.requests
                    .iter()
                    .map(|r| {
                        let filter = match r.mode.as_str() {
                            "include" => SourceFilter::include(r.sources.clone()),
                            _ => SourceFilter::exclude(r.sources.clone()),
                        };
                        (r.owner.as_deref(), filter)
                    })
                    .collect()
            };
            let (core, ifindex) = {
                let h = &self.hosts[id];
                (h.core, h.ifindex)
            };
            for (owner, filter) in requests {
                let engine = &mut self.cores[core].engine;
                let joined = match owner {
                    Some(owner) => engine.set_filter(ifindex, m.group, owner, filter, now),
                    None => engine.join_filter(ifindex, m.group, filter, now),
                };
                if let Err(e) = joined {
                    warn!("state file: cannot join {}: {e}", m.group);
                    break;
                }
            }
            self.note_member(id, m.group);
            joined += 1;
            debug!(
                "joined {} on {} again (users {})",
                m.group, m.iface, m.users
            );
        }
        if joined > 0 {
            info!(
                "state file {}: joined {joined} groups again",
                path.display(),
            );
        }
        self.journal = Some(Journal::start(&path, &loaded.memberships)?);
        Ok(())
    }

    /// Appends `group`'s memberships now to the journal, if there is one: one line, whatever
    /// the number of groups. The reply to the request waits until it is on disk.
    pub(super) fn record_change(&mut self, host: HostId, group: IpAddr) {
        if self.journal.is_none() {
            return;
        }
        let h = &self.hosts[host];
        let info = self.cores[h.core]
            .engine
            .group(h.ifindex, group, self.now());
        let mut membership = Membership {
            iface: self.host_label(host),
            group,
            users: info.as_ref().map_or(0, |g| g.users),
            requests: info
                .iter()
                .flat_map(|g| g.requests.iter().zip(&g.owners))
                .map(|(r, owner)| SavedRequest {
                    mode: r.mode.name().to_string(),
                    sources: r.sources.clone(),
                    owner: owner.clone(),
                })
                .collect(),
        };
        // Listeners' joins belong to their connections, not to the state file; a host's
        // solicited-node join to the host itself (`--solicited-node` makes it on start).
        self.listeners
            .unsaved(self.hosts[host].link, host, &mut membership);
        let before = membership.requests.len();
        membership
            .requests
            .retain(|r| r.owner.as_deref() != Some(SOLICITED_NODE_OWNER));
        let dropped = (before - membership.requests.len()) as u32;
        membership.users = membership.users.saturating_sub(dropped);
        // Plain anonymous joins are the common case: `users` says how many, no list needed.
        if membership
            .requests
            .iter()
            .all(|r| r.mode == "exclude" && r.sources.is_empty() && r.owner.is_none())
        {
            membership.requests.clear();
        }
        if let Some(journal) = &self.journal {
            journal.change(membership);
        }
        self.changed_this_request = true;
    }
}

impl Daemon {
    /// The host a journal record names: `device/IPv4`, or `device` for its first host.
    fn host_by_label(&self, label: &str) -> Option<HostId> {
        match label.split_once('/') {
            Some((device, ipv4)) => {
                let addr: std::net::Ipv4Addr = ipv4.parse().ok()?;
                let id = self.by_addr.get(&IpAddr::V4(addr))?;
                let link = self.link_named(device)?;
                (self.hosts[id].link == link).then_some(id)
            }
            None => self.default_host(Some(self.link_named(label)?)),
        }
    }
}
