//! Control requests, answered by the event loop: joins and leaves (one group, COUNT consecutive
//! groups, or a list), listeners, counters, ping. `show` is in `show.rs`.

use std::net::IpAddr;
use std::os::fd::OwnedFd;

use control::protocol::{
    ChangeReply, DelaysArgs, DelaysReply, FilterArgs, HostRange, ListenArgs, ListenReply,
    StatsArgs, StatsReply, MAX_BATCH,
};
use log::{info, warn};
use membership::{Error, FilterMode, SourceFilter};

use super::changes::ChangeJob;
use super::hosts::Hosts;
use super::links::Links;
use super::persist::Persistence;
use super::show::ShowJob;
use super::view::View;
use super::{Clock, HostId};
use crate::control::{Body, DaemonReply};
use crate::listeners::{Listeners, Owner, LISTENER_OWNER_PREFIX};
use crate::topology::Topology;

/// What the loop does with a request.
pub(super) enum Answer {
    /// The whole reply.
    Reply(DaemonReply),
    /// A reply streamed over later turns of the loop.
    Show(ShowJob),
    /// A change of more hosts than one turn makes: applied a slice a turn, then answered.
    Change(ChangeJob),
}

/// The owners a membership change reaches: the hosts and their cores, the links (whose
/// members it notes), the listeners, the journal.
pub(super) struct Memberships<'a> {
    pub hosts: &'a mut Hosts,
    pub links: &'a mut Links,
    pub listeners: &'a mut Listeners,
    pub persist: &'a mut Persistence,
    pub topology: &'a Topology,
    /// Someone counts each group's members (delays measured, streams checked): see
    /// [`Hosts::note_member`].
    pub tracking: bool,
    pub clock: Clock,
    /// Reports the requests of this turn may have made: written before their replies.
    pub reports_owed: &'a mut usize,
}

impl Memberships<'_> {
    pub(super) fn tracking(&self) -> bool {
        self.tracking
    }

    /// `filter`: one owner's filter for a group replaced in one step on every host named.
    pub(super) fn set_filter(&mut self, args: &FilterArgs) -> DaemonReply {
        let targets = match target_hosts(
            self.hosts,
            self.links,
            self.topology,
            &args.iface,
            &args.host,
            &args.hosts,
        ) {
            Ok(targets) => targets,
            Err(refusal) => return DaemonReply::Err(refusal),
        };
        let filter = match source_filter(&args.include, &args.exclude) {
            Ok(Some(filter)) => filter,
            Ok(None) => return DaemonReply::refuse("filter needs include or exclude sources"),
            Err(e) => return DaemonReply::refuse(e),
        };
        self.owned_change(OwnedOp::Set(filter), &args.owner, &[args.group], &targets)
    }

    /// Why an anonymous leave found nothing to drop: names the owners that hold the group.
    pub(super) fn owned_only(&self, id: HostId, group: IpAddr) -> String {
        let owners: Vec<String> = self
            .hosts
            .group(id, group, self.clock.now())
            .map(|g| g.owners.into_iter().flatten().collect())
            .unwrap_or_default();
        if owners.is_empty() {
            return format!("{group}: {}", Error::NoSuchFilter);
        }
        format!(
            "{group}: {} on {}; it is held by owner {} (leave --owner NAME)",
            Error::NoSuchFilter,
            self.hosts.label(id, self.links),
            owners.join(", ")
        )
    }

    /// The filter `owner` holds for `group` on host `id`, if any.
    fn owner_filter(&self, id: HostId, group: IpAddr, owner: &str) -> Option<SourceFilter> {
        let info = self.hosts.group(id, group, self.clock.now())?;
        let at = info
            .owners
            .iter()
            .position(|o| o.as_deref() == Some(owner))?;
        info.requests.get(at).cloned()
    }

    /// A change of `owner`'s request for each group on each host: every new filter is worked
    /// out first, so that a refused request changes nothing, then each is set in one step
    /// (`Host::set_filter`: one merge, one State Change Report).
    pub(super) fn owned_change(
        &mut self,
        op: OwnedOp,
        owner: &str,
        groups: &[IpAddr],
        targets: &[HostId],
    ) -> DaemonReply {
        if !membership::is_valid_owner(owner) {
            return DaemonReply::refuse(Error::BadOwner(owner.into()));
        }
        if owner.starts_with(LISTENER_OWNER_PREFIX) {
            return DaemonReply::refuse(format!(
                "owner names beginning with {LISTENER_OWNER_PREFIX} are the listeners' own"
            ));
        }
        if groups.len().saturating_mul(targets.len()) > MAX_BATCH as usize {
            return DaemonReply::refuse(format!("more than {MAX_BATCH} changes in one request"));
        }
        let mut plan = Vec::with_capacity(groups.len() * targets.len());
        for &id in targets {
            for &group in groups {
                if !group.is_multicast() {
                    return DaemonReply::refuse(Error::NotMulticast(group));
                }
                let current = self.owner_filter(id, group, owner);
                match op.next(current, owner, group) {
                    Ok(filter) => plan.push((id, group, filter)),
                    Err(e) => {
                        return DaemonReply::refuse(format!(
                            "{e} on {}",
                            self.hosts.label(id, self.links)
                        ))
                    }
                }
            }
        }
        let now = self.clock.now();
        let mut users = 0;
        for (done, (id, group, filter)) in plan.iter().enumerate() {
            let core = self.hosts[*id].core;
            let (engine, ifindex) = self.hosts.engine_of(*id);
            let result = engine.set_filter(ifindex, *group, owner, filter.clone(), now);
            self.hosts.drain_events(core, self.links);
            match result {
                Ok(n) => {
                    users = n;
                    if filter.mode == FilterMode::Exclude || !filter.sources.is_empty() {
                        self.hosts
                            .note_member(self.links, *id, *group, self.tracking());
                    }
                    self.persist.record(
                        self.hosts,
                        self.links,
                        self.listeners,
                        *id,
                        *group,
                        self.clock.now(),
                    );
                }
                Err(e) if done > 0 => {
                    warn!("{group}: {e} (after {done} changes of the request were made)");
                    return DaemonReply::refuse(format!(
                        "{group}: {e} (the {done} changes before it were made)"
                    ));
                }
                Err(e) => return DaemonReply::refuse(format!("{group}: {e}")),
            }
        }
        let label = self.hosts.label(targets[0], self.links);
        let (verb, filter) = match &op {
            OwnedOp::Join(f) => ("join", f.clone()),
            OwnedOp::Leave(f) => ("leave", f.clone()),
            OwnedOp::Set(f) => ("filter", Some(f.clone())),
        };
        info!(
            "{verb} {}{} owner {owner} on {label}{} (users {users})",
            groups[0],
            describe(&filter),
            match targets.len() {
                1 => String::new(),
                n => format!(" and {} more hosts", n - 1),
            }
        );
        DaemonReply::Ok(Body::Change(ChangeReply {
            iface: label,
            group: groups[0],
            count: groups.len() as u32,
            users,
            warning: None,
            hosts: targets.len() as u32,
        }))
    }

    /// A join held by the listener `socket` (see `listeners`): on the host `--host` or
    /// `--iface` names (default: the first host of the first link); the datagrams read on its
    /// link reach it.
    pub(super) fn listen(&mut self, args: ListenArgs, socket: OwnedFd) -> DaemonReply {
        let targets = match target_hosts(
            self.hosts,
            self.links,
            self.topology,
            &args.iface,
            &args.host,
            &args.hosts,
        ) {
            Ok(targets) => targets,
            Err(refusal) => return DaemonReply::Err(refusal),
        };
        let &[id] = &targets[..] else {
            return DaemonReply::refuse(
                "a listener is the join of one host: give --host, not a range",
            );
        };
        let filter = match source_filter(&args.include, &args.exclude) {
            Ok(filter) => filter.unwrap_or_else(|| SourceFilter::exclude(Vec::new())),
            Err(e) => return DaemonReply::refuse(e),
        };
        let now = self.clock.now();
        let h = &self.hosts[id];
        let owner = Owner {
            link: h.link,
            host: id,
            core: h.core,
            ifindex: h.ifindex,
        };
        match self.listeners.open(
            self.hosts.engine_mut(owner.core),
            owner,
            args.group,
            args.port,
            filter,
            socket,
            now,
        ) {
            Ok((listener, users)) => {
                self.hosts
                    .note_member(self.links, id, args.group, self.tracking());
                DaemonReply::Ok(Body::Listen(ListenReply {
                    id: listener.as_u64(),
                    iface: self.hosts.label(id, self.links),
                    group: args.group,
                    port: args.port,
                    users,
                }))
            }
            Err(refusal) => DaemonReply::Err(refusal),
        }
    }
}

/// The hosts a request names: `host`, every host of the `hosts` range, or the first host of
/// the `iface` link (of the first link without it).
pub(super) fn target_hosts(
    hosts: &Hosts,
    links: &Links,
    topology: &Topology,
    iface: &Option<String>,
    host: &Option<IpAddr>,
    range: &Option<HostRange>,
) -> Result<Vec<HostId>, String> {
    let link = links.check_iface(iface)?;
    let on_link = |id: HostId| -> Result<HostId, String> {
        match link {
            Some(link) if hosts[id].link != link => Err(format!(
                "host {} is not on {}",
                hosts[id].addrs.ipv4.0, links[link].name
            )),
            _ => Ok(id),
        }
    };
    match (host, range) {
        (Some(_), Some(_)) => Err("give host or hosts, not both".into()),
        (Some(addr), None) => match hosts.find(addr) {
            Some(id) => Ok(vec![on_link(id)?]),
            None => Err(format!("no host has the address {addr}")),
        },
        (None, Some([first, last])) => {
            let (first, last) = (u32::from(*first), u32::from(*last));
            if first > last || u64::from(last - first) >= u64::from(MAX_BATCH) {
                return Err(format!("a host range holds 1 to {MAX_BATCH} hosts"));
            }
            (first..=last)
                .map(|a| {
                    let addr = IpAddr::V4(a.into());
                    match hosts.find(&addr) {
                        Some(id) => on_link(id),
                        None => Err(format!("no host has the address {addr}")),
                    }
                })
                .collect()
        }
        (None, None) => links
            .default_host(link, topology)
            .map(|id| vec![id])
            .ok_or_else(|| "no host to act on".into()),
    }
}

impl View<'_> {
    /// The counters: every one (the cores', the devices', the control socket's, the data
    /// path's), or one link's (its device's, its hosts' summed), or one host's.
    pub(super) fn stats(&self, args: &StatsArgs) -> Result<StatsReply, String> {
        let mut reply = StatsReply::default();
        let mut add = |name: &str, value: u64, help: &str| {
            *reply.stats.entry(name.to_string()).or_default() += value;
            reply
                .help
                .entry(name.to_string())
                .or_insert_with(|| help.to_string());
        };
        if let Some(addr) = args.host {
            let Some(id) = self.hosts.find(&addr) else {
                return Err(format!("no host has the address {addr}"));
            };
            for (name, value, help) in self.hosts.host_stats(id).described() {
                add(name, value, help);
            }
            return Ok(reply);
        }
        if let Some(link) = self.links.check_iface(&args.iface)? {
            for (name, value, help) in self.links[link].io.described() {
                add(name, value, help);
            }
            for (name, value, help) in self.stream_stats(Some(link)) {
                add(name, value, help);
            }
            for &id in &self.links[link].hosts {
                for (name, value, help) in self.hosts.host_stats(id).described() {
                    add(name, value, help);
                }
            }
            return Ok(reply);
        }
        for (_, core) in self.hosts.cores() {
            for (name, value, help) in core.engine.stats().described() {
                add(name, value, help);
            }
        }
        // The control socket's, and the devices' of the links closed since the start.
        for io in [self.control_io, self.links.closed_io()] {
            for (name, value, help) in io.described() {
                add(name, value, help);
            }
        }
        for (_, link) in self.links.iter() {
            for (name, value, help) in link.io.described() {
                add(name, value, help);
            }
        }
        for (name, value, help) in self.listeners.stats.described() {
            add(name, value, help);
        }
        for (name, value, help) in self.stream_stats(None) {
            add(name, value, help);
        }
        reply.per_link = self.stream_stats_per_link();
        reply.per_stream = self.stream_stats_per_stream();
        Ok(reply)
    }

    /// `delays`: the RFC 3918 figures, hosts named by their IPv4 address (`reset` is the
    /// loop's to do).
    pub(super) fn delays_reply(&self, args: &DelaysArgs) -> Result<DelaysReply, String> {
        if !self.delays.is_on() {
            return Err(
                "delays are not measured: start tunmcastd with --delays (delays = true in \
                        the --config file)"
                    .into(),
            );
        }
        let reply = self
            .delays
            .report(args.limit.unwrap_or(100))
            .map_hosts(|n| {
                self.hosts
                    .delay_host(n)
                    .map_or_else(|| format!("#{n}"), |addr| addr.to_string())
            });
        Ok(reply)
    }
}

/// What an owner asks for one group.
pub(super) enum OwnedOp {
    /// `join --owner`: a request if it holds none; INCLUDE sources added to its INCLUDE one
    /// (RFC 3678 MCAST_JOIN_SOURCE_GROUP). `None`: any source.
    Join(Option<SourceFilter>),
    /// `leave --owner`: the request dropped; INCLUDE sources taken from its INCLUDE one
    /// (MCAST_LEAVE_SOURCE_GROUP); EXCLUDE S drops it if it is exactly EXCLUDE S.
    Leave(Option<SourceFilter>),
    /// `filter`: the request replaced (setsourcefilter); INCLUDE {} drops it.
    Set(SourceFilter),
}

impl OwnedOp {
    /// The owner's next filter given its `current` one, or why the request is refused.
    fn next(
        &self,
        current: Option<SourceFilter>,
        owner: &str,
        group: IpAddr,
    ) -> Result<SourceFilter, String> {
        let sorted = |f: &SourceFilter| {
            let mut s = f.sources.clone();
            s.sort();
            s.dedup();
            s
        };
        let none = || SourceFilter::include(Vec::new());
        let holds_nothing = || format!("owner {owner} holds no filter for {group}");
        let include = |f: &SourceFilter| f.mode == FilterMode::Include;
        match (self, current) {
            (OwnedOp::Set(f), None) if include(f) && f.sources.is_empty() => Err(holds_nothing()),
            (OwnedOp::Set(f), _) => Ok(f.clone()),
            (OwnedOp::Join(Some(f)), _) if include(f) && f.sources.is_empty() => {
                Err(Error::EmptyInclude.to_string())
            }
            (OwnedOp::Join(f), None) => Ok(f
                .clone()
                .unwrap_or_else(|| SourceFilter::exclude(Vec::new()))),
            (OwnedOp::Join(Some(f)), Some(c)) if include(f) && include(&c) => {
                let mut sources = c.sources;
                sources.extend(f.sources.iter().copied());
                sources.sort();
                sources.dedup();
                Ok(SourceFilter::include(sources))
            }
            (OwnedOp::Join(_), Some(c)) => Err(format!(
                "owner {owner} already holds {} {{{}}} for {group}: change it with filter",
                c.mode.name(),
                list(&c.sources)
            )),
            (OwnedOp::Leave(_), None) => Err(holds_nothing()),
            (OwnedOp::Leave(None), Some(_)) => Ok(none()),
            (OwnedOp::Leave(Some(f)), Some(c)) if include(f) && include(&c) => {
                let missing: Vec<IpAddr> = f
                    .sources
                    .iter()
                    .filter(|s| !c.sources.contains(s))
                    .copied()
                    .collect();
                if !missing.is_empty() {
                    return Err(format!(
                        "owner {owner} does not include {{{}}} for {group}",
                        list(&missing)
                    ));
                }
                let left = c.sources.iter().filter(|s| !f.sources.contains(s));
                Ok(SourceFilter::include(left.copied().collect()))
            }
            (OwnedOp::Leave(Some(f)), Some(c)) if !include(f) && sorted(f) == sorted(&c) => {
                Ok(none())
            }
            (OwnedOp::Leave(Some(_)), Some(c)) => Err(format!(
                "owner {owner} holds {} {{{}}} for {group}, not that filter",
                c.mode.name(),
                list(&c.sources)
            )),
        }
    }
}

fn list(sources: &[IpAddr]) -> String {
    let text: Vec<String> = sources.iter().map(|s| s.to_string()).collect();
    text.join(",")
}

/// The filter of `--include` / `--exclude`; `None` for a plain (any-source) request.
pub(super) fn source_filter(
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
