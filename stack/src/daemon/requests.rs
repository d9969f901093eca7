//! Control requests, answered by the event loop: joins and leaves (one group, COUNT consecutive
//! groups, or a list), listeners, counters, ping. `show` is in `show.rs`.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::OwnedFd;

use control::protocol::{
    ChangeReply, DelaysArgs, DelaysReply, FilterArgs, HostRange, ListenArgs, ListenReply,
    PingReply, StatsArgs, StatsReply, MAX_BATCH,
};
use log::{info, warn};
use membership::{Error, FilterMode, SourceFilter};

use super::changes::ChangeJob;
use super::show::ShowJob;
use super::streams::StreamAction;
use super::{Daemon, HostId, LinkId};
use crate::control::{Body, DaemonReply, Request};
use crate::listeners::{Owner, LISTENER_OWNER_PREFIX};

/// What the loop does with a request.
pub(super) enum Answer {
    /// The whole reply.
    Reply(DaemonReply),
    /// A reply streamed over later turns of the loop.
    Show(ShowJob),
    /// A change of more hosts than one turn makes: applied a slice a turn, then answered.
    Change(ChangeJob),
}

impl Daemon {
    pub(super) fn handle_request(&mut self, request: Request, socket: Option<OwnedFd>) -> Answer {
        self.io.control_requests += 1;
        let answer = match (request, socket) {
            (Request::Listen(args), Some(socket)) => Answer::Reply(self.listen(args, socket)),
            (Request::Listen(_), None) => {
                Answer::Reply(DaemonReply::refuse("listen needs a listener socket"))
            }
            (Request::Join(change), _) => self.change(true, &change),
            (Request::Leave(change), _) => self.change(false, &change),
            (Request::Filter(args), _) => Answer::Reply(self.set_filter(&args)),
            (Request::Show(args), _) => self.show(&args),
            (Request::Stats(args), _) => Answer::Reply(self.stats(&args).map(Body::Stats).into()),
            (Request::Delays(args), _) => {
                Answer::Reply(self.delays_reply(&args).map(Body::Delays).into())
            }
            (Request::Ping, _) => Answer::Reply(DaemonReply::Ok(Body::Ping(PingReply {
                version: env!("CARGO_PKG_VERSION").to_string(),
            }))),
            (Request::StreamAdd(args), _) => {
                Answer::Reply(self.stream_add(&args).map(Body::StreamIds).into())
            }
            (Request::StreamRemove(args), _) => Answer::Reply(
                self.stream_action(StreamAction::Remove, &args)
                    .map(Body::StreamIds)
                    .into(),
            ),
            (Request::StreamStart(args), _) => Answer::Reply(
                self.stream_action(StreamAction::Start, &args)
                    .map(Body::StreamIds)
                    .into(),
            ),
            (Request::StreamStop(args), _) => Answer::Reply(
                self.stream_action(StreamAction::Stop, &args)
                    .map(Body::StreamIds)
                    .into(),
            ),
            (Request::Streams(args), _) => {
                Answer::Reply(self.streams_reply(&args).map(Body::Streams).into())
            }
            (Request::TestStart(args), _) => Answer::Reply(self.test_start(&args)),
            (Request::TestStatus(select), _) => Answer::Reply(self.test_status(&select)),
            (Request::TestReport(select), _) => Answer::Reply(self.test_report(&select)),
            (Request::TestStop(select), _) => Answer::Reply(self.test_stop(&select)),
        };
        if matches!(&answer, Answer::Reply(reply) if !reply.is_ok()) {
            self.io.control_errors += 1;
        }
        answer
    }

    /// The link `iface` names (default: none, meaning any).
    pub(super) fn check_iface(&self, iface: &Option<String>) -> Result<Option<LinkId>, String> {
        let Some(name) = iface else {
            return Ok(None);
        };
        self.link_named(name).map(Some).ok_or_else(|| {
            let names: Vec<&str> = self.links.iter().map(|(_, l)| l.name.as_str()).collect();
            format!(
                "unknown interface {name} (this daemon serves {})",
                names.join(", ")
            )
        })
    }

    /// The hosts a request names: `host`, every host of the `hosts` range, or the first host
    /// of the `iface` link (of the first link without it).
    pub(super) fn target_hosts(
        &self,
        iface: &Option<String>,
        host: &Option<IpAddr>,
        hosts: &Option<HostRange>,
    ) -> Result<Vec<HostId>, String> {
        let link = self.check_iface(iface)?;
        let on_link = |id: HostId| -> Result<HostId, String> {
            match link {
                Some(link) if self.hosts[id].link != link => Err(format!(
                    "host {} is not on {}",
                    self.hosts[id].addrs.ipv4.0, self.links[link].name
                )),
                _ => Ok(id),
            }
        };
        match (host, hosts) {
            (Some(_), Some(_)) => Err("give host or hosts, not both".into()),
            (Some(addr), None) => match self.by_addr.get(addr) {
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
                        match self.by_addr.get(&addr) {
                            Some(id) => on_link(id),
                            None => Err(format!("no host has the address {addr}")),
                        }
                    })
                    .collect()
            }
            (None, None) => self
                .default_host(link)
                .map(|id| vec![id])
                .ok_or_else(|| "no host to act on".into()),
        }
    }

    /// `filter`: one owner's filter for a group replaced in one step on every host named.
    fn set_filter(&mut self, args: &FilterArgs) -> DaemonReply {
        let targets = match self.target_hosts(&args.iface, &args.host, &args.hosts) {
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
        let h = &self.hosts[id];
        let owners: Vec<String> = self.cores[h.core]
            .engine
            .group(h.ifindex, group, self.now())
            .map(|g| g.owners.into_iter().flatten().collect())
            .unwrap_or_default();
        if owners.is_empty() {
            return format!("{group}: {}", Error::NoSuchFilter);
        }
        format!(
            "{group}: {} on {}; it is held by owner {} (leave --owner NAME)",
            Error::NoSuchFilter,
            self.host_label(id),
            owners.join(", ")
        )
    }

    /// The filter `owner` holds for `group` on host `id`, if any.
    fn owner_filter(&self, id: HostId, group: IpAddr, owner: &str) -> Option<SourceFilter> {
        let h = &self.hosts[id];
        let info = self.cores[h.core]
            .engine
            .group(h.ifindex, group, self.now())?;
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
                        return DaemonReply::refuse(format!("{e} on {}", self.host_label(id)))
                    }
                }
            }
        }
        let now = self.now();
        let mut users = 0;
        for (done, (id, group, filter)) in plan.iter().enumerate() {
            let (core, ifindex) = (self.hosts[*id].core, self.hosts[*id].ifindex);
            let result =
                self.cores[core]
                    .engine
                    .set_filter(ifindex, *group, owner, filter.clone(), now);
            while let Some(event) = self.cores[core].engine.poll_event() {
                self.log_event(core, &event);
            }
            match result {
                Ok(n) => {
                    users = n;
                    if filter.mode == FilterMode::Exclude || !filter.sources.is_empty() {
                        self.note_member(*id, *group);
                    }
                    self.record_change(*id, *group);
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
        let label = self.host_label(targets[0]);
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
    fn listen(&mut self, args: ListenArgs, socket: OwnedFd) -> DaemonReply {
        let targets = match self.target_hosts(&args.iface, &args.host, &args.hosts) {
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
        let now = self.now();
        let h = &self.hosts[id];
        let owner = Owner {
            link: h.link,
            host: id,
            core: h.core,
            ifindex: h.ifindex,
        };
        match self.listeners.open(
            &mut self.cores[owner.core].engine,
            owner,
            args.group,
            args.port,
            filter,
            socket,
            now,
        ) {
            Ok((listener, users)) => {
                self.note_member(id, args.group);
                DaemonReply::Ok(Body::Listen(ListenReply {
                    id: listener.as_u64(),
                    iface: self.host_label(id),
                    group: args.group,
                    port: args.port,
                    users,
                }))
            }
            Err(refusal) => DaemonReply::Err(refusal),
        }
    }

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
            let Some(id) = self.by_addr.get(&addr) else {
                return Err(format!("no host has the address {addr}"));
            };
            for (name, value, help) in self.host_stats(id).described() {
                add(name, value, help);
            }
            return Ok(reply);
        }
        if let Some(link) = self.check_iface(&args.iface)? {
            for (name, value, help) in self.links[link].io.described() {
                add(name, value, help);
            }
            for (name, value, help) in self.stream_stats(Some(link)) {
                add(name, value, help);
            }
            for &id in &self.links[link].hosts {
                for (name, value, help) in self.host_stats(id).described() {
                    add(name, value, help);
                }
            }
            return Ok(reply);
        }
        for core in &self.cores {
            for (name, value, help) in core.engine.stats().described() {
                add(name, value, help);
            }
        }
        for (name, value, help) in self.io.described() {
            add(name, value, help);
        }
        for (_, link) in &self.links {
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

    /// `delays`: the RFC 3918 figures, hosts named by their IPv4 address.
    pub(super) fn delays_reply(&mut self, args: &DelaysArgs) -> Result<DelaysReply, String> {
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
                self.delay_hosts
                    .get(n as usize)
                    .map_or_else(|| format!("#{n}"), Ipv4Addr::to_string)
            });
        if args.reset {
            self.delays.reset();
        }
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
