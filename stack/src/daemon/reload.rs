//! SIGHUP: the --config file read again. The log level applies at once; with `[[link]]` tables,
//! links and hosts are added and removed without disturbing the others (removed hosts leave
//! their groups on the wire first). A bad file changes nothing: the error is logged and shown
//! by `show` until a good file is read. [`Reconfigure`] is also how links open and close
//! (at start, and when a device goes away).

use std::ffi::OsString;

use anyhow::bail;
use log::{error, info, warn};

use super::hosts::Hosts;
use super::links::Links;
use super::transmit::Wire;
use super::{Clock, HostId, LinkId};
use crate::config::TestTable;
use crate::delays::DelayTracker;
use crate::listeners::Listeners;
use crate::streams::Streams;
use crate::testrun::TestRuns;
use crate::topology::{LinkSpec, Topology};
use crate::Args;

/// The --config file read again under the command line: what it says, or why it cannot be
/// used (the running configuration is kept).
pub(super) struct Reread {
    pub args: Args,
    pub topology: Topology,
    pub tests: Vec<TestTable>,
}

/// Reads and parses the --config file once, for its options and all its tables.
pub(super) fn reread(argv: &[OsString]) -> Result<Reread, String> {
    Args::from_argv(argv)
        .and_then(|(args, file)| {
            let topology = args.topology(file.as_ref())?;
            let tests = file.map(|f| f.tests).unwrap_or_default();
            Ok(Reread {
                args,
                topology,
                tests,
            })
        })
        .map_err(|e| e.to_string())
}

/// The owners a change of the links reaches: the links and their hosts, the listeners and
/// streams on them, and (to send the leaves of what goes) what the cores send reaches.
pub(super) struct Reconfigure<'a> {
    pub links: &'a mut Links,
    pub hosts: &'a mut Hosts,
    pub listeners: &'a mut Listeners,
    pub delays: &'a mut DelayTracker,
    pub streams: &'a mut Streams,
    pub tests: &'a mut TestRuns<HostId, LinkId>,
    pub topology: &'a mut Topology,
    /// Why the last reload was refused (or a link of it could not open).
    pub config_error: &'a mut Option<String>,
    pub clock: Clock,
}

impl Reconfigure<'_> {
    fn tracking(&self) -> bool {
        self.delays.is_on() || self.streams.is_checking()
    }

    /// Sends everything the cores have due (the leaves of what goes).
    fn flush(&mut self) {
        let _ = Wire {
            hosts: &mut *self.hosts,
            links: &mut *self.links,
            delays: &mut *self.delays,
            streams: &mut *self.streams,
            tests: &mut *self.tests,
            clock: self.clock,
        }
        .flush_up_to(usize::MAX);
    }

    fn add_host(
        &mut self,
        link: LinkId,
        spec: crate::topology::HostSpec,
        kernel: Option<u32>,
    ) -> anyhow::Result<HostId> {
        let tracking = self.tracking();
        self.hosts
            .add_host(self.links, link, spec, kernel, tracking, self.clock.now())
    }

    /// Opens the device of `spec`, registers it with the loop and creates its hosts.
    pub fn open_link(&mut self, spec: &LinkSpec) -> anyhow::Result<LinkId> {
        let id = self.links.open(spec)?;
        let ifindex = self.links[id].ifindex;
        for (n, host) in spec.hosts.iter().enumerate() {
            let kernel = (n == 0).then_some(ifindex);
            let host = self.add_host(id, *host, kernel)?;
            self.links[id].hosts.push(host);
        }
        if spec.hosts.len() > 1 {
            info!(
                "{} {} (ifindex {ifindex}): {} hosts, suppression {}",
                self.links[id].kind_name(),
                spec.device,
                spec.hosts.len(),
                spec.suppression
            );
        }
        Ok(id)
    }

    /// Closes a link: its hosts are retired (their state is gone with the device), the device
    /// is closed. The daemon ends when it was the last link.
    pub fn close_link(&mut self, id: LinkId, why: &str) -> anyhow::Result<()> {
        // Its live hosts, and those removed earlier whose leaves are still going out.
        let mut retired = self.links[id].hosts.clone();
        retired.extend(self.hosts.departing_on(id));
        let link = self.links.close(id);
        self.streams.link_closed(id);
        self.hosts
            .forget_hosts(&retired, self.links, self.listeners);
        self.topology.links.retain(|l| l.device != link.name);
        if self.links.is_empty() {
            bail!("{why}");
        }
        error!("{why}: the link is closed, the other links go on");
        Ok(())
    }

    /// Opens and closes links, adds and removes hosts, to go from the running topology to
    /// `new`. O(links + hosts changed) plus the diff's O(links + hosts).
    pub fn apply_topology(&mut self, mut new: Topology) {
        let old = std::mem::take(self.topology);
        let diff = old.diff(&new);
        if diff.is_empty() {
            *self.topology = new;
            return;
        }
        let now = self.clock.now();
        let link_ids: Vec<Option<LinkId>> = old
            .links
            .iter()
            .map(|l| self.links.named(&l.device))
            .collect();
        let mut added_hosts = 0;
        let mut removed_hosts = 0;
        for kept in &diff.links_kept {
            let Some(id) = link_ids[kept.old_link] else {
                continue;
            };
            let old_hosts = self.links[id].hosts.clone();
            let new_spec = &new.links[kept.new_link];
            self.links[id].suppression = new_spec.suppression;
            let removed: Vec<HostId> = kept
                .hosts_removed
                .iter()
                .filter_map(|&h| old_hosts.get(h).copied())
                .collect();
            removed_hosts += removed.len();
            self.hosts
                .remove_hosts(&removed, now, self.links, self.listeners);
            let mut hosts: Vec<Option<HostId>> = vec![None; new_spec.hosts.len()];
            for &(o, n) in &kept.hosts_unchanged {
                hosts[n] = old_hosts.get(o).copied();
            }
            for &n in &kept.hosts_added {
                match self.add_host(id, new_spec.hosts[n], None) {
                    Ok(host) => {
                        hosts[n] = Some(host);
                        added_hosts += 1;
                    }
                    Err(e) => warn!("SIGHUP: cannot add host {}: {e}", new_spec.hosts[n].ipv4.0),
                }
            }
            self.links[id].hosts = hosts.into_iter().flatten().collect();
        }
        let mut failed = Vec::new();
        for &added in &diff.links_added {
            let spec = new.links[added].clone();
            match self.open_link(&spec) {
                Ok(_) => info!(
                    "SIGHUP: link {} added with {} hosts",
                    spec.device,
                    spec.hosts.len()
                ),
                Err(e) => {
                    warn!("SIGHUP: {e:#}");
                    *self.config_error = Some(format!("{e:#}"));
                    failed.push(spec.device);
                }
            }
        }
        // Removed last, so that the daemon never finds itself without a link on the way.
        for &removed in &diff.links_removed {
            let Some(id) = link_ids[removed] else {
                continue;
            };
            let hosts = self.links[id].hosts.clone();
            self.hosts
                .remove_hosts(&hosts, now, self.links, self.listeners);
            // The leaves go out before the device closes.
            self.flush();
            info!("SIGHUP: link {} removed", old.links[removed].device);
            let _ = self.close_link(id, "removed by the configuration");
        }
        new.links.retain(|l| !failed.contains(&l.device));
        if added_hosts + removed_hosts > 0 {
            info!("SIGHUP: {added_hosts} hosts added, {removed_hosts} removed");
        }
        *self.topology = new;
    }
}

/// Applies what of the options can change while running (the log level) and names what needs a
/// restart; true when the file's `[[link]]` tables are to be applied (they are not when the
/// command line names the one link).
pub(super) fn apply_options(running: &mut Args, new: &Args, path: &std::path::Path) -> bool {
    let (old_filter, new_filter) = (running.log_filter(), new.log_filter());
    if new_filter != old_filter {
        crate::logging::reload(&new_filter);
    }
    let mut restart_needed = new.differs_beyond_reloadable(running);
    // The `[[link]]` tables are applied here; the one link of the command line is not.
    let links_from_file = running.iface.is_none() && new.iface.is_none();
    if links_from_file {
        restart_needed.retain(|name| {
            !matches!(
                *name,
                "igmp_version"
                    | "mld_version"
                    | "robustness"
                    | "unsolicited_interval_ms"
                    | "v3_unsolicited_interval_ms"
                    | "mtu"
            )
        });
    }
    info!(
        "SIGHUP: re-read {}: log level {new_filter:?}{}",
        path.display(),
        if restart_needed.is_empty() {
            String::new()
        } else {
            format!(
                "; changed, taking effect on restart: {}",
                restart_needed.join(", ")
            )
        }
    );
    running.log_level = new.log_level.clone();
    links_from_file
}
