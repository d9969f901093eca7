//! `--state`: joining the journal's memberships again on start, and recording each change.
//! A record names its host as `Hosts::label` does: `tap1/10.99.1.10`, or the device alone for
//! the one host of the command line's link.

use std::net::IpAddr;
use std::path::Path;

use crossbeam_channel::Sender;
use log::{debug, info, warn};
use membership::{Instant, SourceFilter};

use super::hosts::{Hosts, SOLICITED_NODE_OWNER};
use super::links::Links;
use super::HostId;
use crate::control::{DaemonReply, Part};
use crate::listeners::Listeners;
use crate::state::{self, Journal, Membership, Request as SavedRequest};
use crate::topology::Topology;

/// `--state`: the journal, and whether the request being answered changed what it holds (its
/// reply then waits until the change is on disk).
#[derive(Default)]
pub(super) struct Persistence {
    journal: Option<Journal>,
    changed: bool,
}

impl Persistence {
    /// Joins the memberships of the journal at `path` again (nothing without `--state`), then
    /// starts its writer. `tracking`: see [`Hosts::note_member`].
    pub fn restore(
        path: Option<&Path>,
        hosts: &mut Hosts,
        links: &mut Links,
        topology: &Topology,
        tracking: bool,
        now: Instant,
    ) -> anyhow::Result<Persistence> {
        let Some(path) = path else {
            return Ok(Persistence::default());
        };
        let loaded = state::load(path)?;
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
        let mut joined = 0usize;
        for m in &loaded.memberships {
            let Some(id) = hosts.by_label(&m.iface, links, topology) else {
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
            for (owner, filter) in requests {
                let (engine, ifindex) = hosts.engine_of(id);
                let joined = match owner {
                    Some(owner) => engine.set_filter(ifindex, m.group, owner, filter, now),
                    None => engine.join_filter(ifindex, m.group, filter, now),
                };
                if let Err(e) = joined {
                    warn!("state file: cannot join {}: {e}", m.group);
                    break;
                }
            }
            hosts.note_member(links, id, m.group, tracking);
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
        Ok(Persistence {
            journal: Some(Journal::start(path, &loaded.memberships)?),
            changed: false,
        })
    }

    /// Appends `group`'s memberships on host `host` now to the journal, if there is one: one
    /// line, whatever the number of groups. The reply to the request waits until it is on
    /// disk.
    pub fn record(
        &mut self,
        hosts: &Hosts,
        links: &Links,
        listeners: &Listeners,
        host: HostId,
        group: IpAddr,
        now: Instant,
    ) {
        let Some(journal) = &self.journal else {
            return;
        };
        let info = hosts.group(host, group, now);
        let mut membership = Membership {
            iface: hosts.label(host, links),
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
        listeners.unsaved(hosts[host].link, host, &mut membership);
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
        journal.change(membership);
        self.changed = true;
    }

    /// Whether what was answered since the last call changed the journal; forgets it.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// Sends `reply` to `to`: once the change is on disk when it made one (`durable`).
    pub fn reply(&self, to: Sender<Part>, reply: DaemonReply, durable: bool) {
        match &self.journal {
            Some(journal) if durable => journal.reply_when_durable(to, reply),
            _ => {
                let _ = to.send(Part::whole(reply));
            }
        }
    }

    /// Waits for the last appends (everything acknowledged is on disk already).
    pub fn stop(&mut self) {
        if let Some(journal) = self.journal.take() {
            journal.stop();
        }
    }
}
