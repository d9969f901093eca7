//! `--state`: joining the journal's memberships again on start, and recording each change.

use std::net::IpAddr;

use log::{debug, info, warn};
use membership::SourceFilter;

use super::Daemon;
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
            if m.iface != self.ifname {
                warn!(
                    "state file: skipping {} on unknown interface {}",
                    m.group, m.iface
                );
                continue;
            }
            let requests: Vec<SourceFilter> = if m.requests.is_empty() {
                vec![SourceFilter::exclude(Vec::new()); m.users.max(1) as usize]
            } else {
                m.requests
                    .iter()
                    .map(|r| match r.mode.as_str() {
                        "include" => SourceFilter::include(r.sources.clone()),
                        _ => SourceFilter::exclude(r.sources.clone()),
                    })
                    .collect()
            };
            for filter in requests {
                if let Err(e) = self.host.join_filter(self.ifindex, m.group, filter, now) {
                    warn!("state file: cannot join {}: {e}", m.group);
                    break;
                }
            }
            joined += 1;
            debug!(
                "joined {} on {} again (users {})",
                m.group, self.ifname, m.users
            );
        }
        if joined > 0 {
            info!(
                "state file {}: joined {joined} groups on {} again",
                path.display(),
                self.ifname
            );
        }
        self.journal = Some(Journal::start(&path, &loaded.memberships)?);
        Ok(())
    }

    /// Appends `group`'s memberships now to the journal, if there is one: one line, whatever
    /// the number of groups. The reply to the request waits until it is on disk.
    pub(super) fn record_change(&mut self, group: IpAddr) {
        let Some(journal) = &self.journal else {
            return;
        };
        let info = self.host.group(self.ifindex, group, self.now());
        let mut membership = Membership {
            iface: self.ifname.clone(),
            group,
            users: info.as_ref().map_or(0, |g| g.users),
            requests: info
                .iter()
                .flat_map(|g| g.requests.iter())
                .map(|r| SavedRequest {
                    mode: r.mode.name().to_string(),
                    sources: r.sources.clone(),
                })
                .collect(),
        };
        // Listeners' joins belong to their connections, not to the state file.
        self.listeners.unsaved(&mut membership);
        // Plain joins are the common case: `users` says how many, no list needed.
        if membership
            .requests
            .iter()
            .all(|r| r.mode == "exclude" && r.sources.is_empty())
        {
            membership.requests.clear();
        }
        journal.change(membership);
        self.changed_this_request = true;
    }
}
