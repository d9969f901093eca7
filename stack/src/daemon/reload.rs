//! SIGHUP: the --config file read again. The log level applies at once; with `[[link]]` tables,
//! links and hosts are added and removed without disturbing the others (removed hosts leave
//! their groups on the wire first). A bad file changes nothing: the error is logged and shown
//! by `show` until a good file is read.

use log::{info, warn};

use super::{Daemon, HostId, LinkId};
use crate::topology::Topology;
use crate::Args;

impl Daemon {
    pub(super) fn reread_config(&mut self) -> anyhow::Result<()> {
        let Some(path) = self.args.config.clone() else {
            info!(
                "SIGHUP: no --config file to re-read; log level stays {:?}",
                self.args.log_filter()
            );
            return Ok(());
        };
        // The file is read and parsed once, for its options and all its tables.
        let parsed = Args::from_argv(&self.argv).and_then(|(new, file)| {
            let topology = new.topology(file.as_ref())?;
            let tests = file.map(|f| f.tests).unwrap_or_default();
            Ok((topology, new, tests))
        });
        let (topology, new, tests) = match parsed {
            Ok(parsed) => parsed,
            Err(e) => {
                warn!("SIGHUP: {e}; the running configuration is kept");
                self.config_error = Some(e.to_string());
                return Ok(());
            }
        };
        self.config_error = None;
        // The [[test]] tables: startable by name from now on (a running test goes on).
        self.tests.configured = tests.into_iter().map(|t| t.spec).collect();
        let (old_filter, new_filter) = (self.args.log_filter(), new.log_filter());
        if new_filter != old_filter {
            crate::logging::reload(&new_filter);
        }
        let mut restart_needed = new.differs_beyond_reloadable(&self.args);
        // The `[[link]]` tables are applied here; the one link of the command line is not.
        let from_file = self.args.iface.is_none();
        if from_file && new.iface.is_none() {
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
        self.args.log_level = new.log_level;
        let streams = topology.streams.clone();
        if from_file && new.iface.is_none() {
            self.apply_topology(topology);
        }
        self.configure_streams(&streams);
        Ok(())
    }

    /// Opens and closes links, adds and removes hosts, to go from the running topology to
    /// `new`. O(links + hosts changed) plus the diff's O(links + hosts).
    fn apply_topology(&mut self, mut new: Topology) {
        let old = std::mem::take(&mut self.topology);
        let diff = old.diff(&new);
        if diff.is_empty() {
            self.topology = new;
            return;
        }
        let now = self.now();
        let link_ids: Vec<Option<LinkId>> = old
            .links
            .iter()
            .map(|l| self.link_named(&l.device))
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
            self.remove_hosts(&removed, now);
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
                    self.config_error = Some(format!("{e:#}"));
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
            self.remove_hosts(&hosts, now);
            // The leaves go out before the device closes.
            let _ = self.flush();
            info!("SIGHUP: link {} removed", old.links[removed].device);
            let _ = self.close_link(id, "removed by the configuration");
        }
        new.links.retain(|l| !failed.contains(&l.device));
        if added_hosts + removed_hosts > 0 {
            info!("SIGHUP: {added_hosts} hosts added, {removed_hosts} removed");
        }
        self.topology = new;
    }
}
