//! The event loop: the one owner of membership state.

use std::io::{self, Read};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use crossbeam_channel::Receiver;
use log::{debug, info, warn};
use membership::{
    Config, FilterMode, Host, InputPolicy, Instant, InterfaceConfig, SourceFilter, Transmit,
};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use serde_json::{json, Map, Value};
use tun_tap::{Iface, Mode};

use crate::control::{error_reply, ControlSocket, Envelope, Request, SourceArgs};
use crate::framing::{FrameDrop, Framing};
use crate::state::{Membership, Request as SavedRequest, StateStore};
use crate::Args;

const TUN: Token = Token(0);
const WAKE: Token = Token(1);
const SIGNAL: Token = Token(2);

/// How often the loop checks that the TUN device still exists, whatever the core's deadlines.
const DEVICE_CHECK: Duration = Duration::from_secs(1);
/// Largest packet read from the device.
const MTU_BUFFER: usize = 65_536;
/// Packets read in one go before timers, control requests and sends get their turn.
const READ_BURST: usize = 256;

fn if_nametoindex(name: &str) -> Option<u32> {
    // Leaves errno set on failure, as callers read it.
    nix::net::if_::if_nametoindex(name).ok()
}

fn core_config(args: &Args) -> Config {
    Config {
        robustness: args.robustness,
        igmp_unsolicited_interval: args.unsolicited_interval(),
        mld_unsolicited_interval: args.unsolicited_interval(),
        report_link_local_groups: args.report_link_local_groups,
        igmp_max_version: args.igmp_version,
        mld_max_version: args.mld_version,
        v3_unsolicited_interval: Duration::from_millis(args.v3_unsolicited_interval_ms),
        igmp_policy: InputPolicy {
            require_router_alert: args.strict_igmp,
            require_hop_limit_one: args.strict_igmp,
        },
        mld_policy: InputPolicy {
            require_router_alert: !args.lenient_mld,
            require_hop_limit_one: !args.lenient_mld,
        },
        ..Config::default()
    }
}

fn default_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    nanos ^ (u64::from(std::process::id()) << 32)
}

/// Counters of the daemon itself, beside the core's.
#[derive(Debug, Default)]
struct IoStats {
    tun_rx_packets: u64,
    tun_tx_packets: u64,
    tun_tx_errors: u64,
    /// Of those, dropped because the link was down.
    tun_tx_link_down: u64,
    /// TAP: frames not for this host, not IP, or too short for Ethernet.
    tap_rx_not_for_us: u64,
    tap_rx_other_ethertype: u64,
    tap_rx_truncated: u64,
    control_requests: u64,
    control_errors: u64,
}

struct Daemon {
    host: Host,
    device: Iface,
    framing: Framing,
    /// "TUN" or "TAP", for messages.
    kind: &'static str,
    ifname: String,
    ifindex: u32,
    args: Args,
    clock: std::time::Instant,
    store: Option<StateStore>,
    io: IoStats,
}

/// Raises the soft limit on open files to the hard one: every control client holds one.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            if let Err(errno) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                warn!(
                    "cannot raise the open-file limit: {}",
                    io::Error::from(errno)
                );
            }
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    raise_fd_limit();
    let (mode, kind, framing) = if args.tap {
        let framing = Framing::Ethernet { mac: args.mac() };
        (Mode::Tap, "TAP", framing)
    } else {
        (Mode::Tun, "TUN", Framing::Ip)
    };
    let device = Iface::without_packet_info(&args.tun, mode)
        .with_context(|| format!("cannot attach to {kind} device {}", args.tun))?;
    device
        .set_non_blocking()
        .with_context(|| format!("cannot make the {kind} device non-blocking"))?;
    let ifname = device.name().to_string();
    let ifindex = if_nametoindex(&ifname)
        .with_context(|| format!("{kind} device {ifname} has no interface index"))?;

    let mut host = Host::new(core_config(&args), args.seed.unwrap_or_else(default_seed));
    host.add_interface(
        ifindex,
        InterfaceConfig {
            ipv4: Some(args.ipv4.0),
            ipv6_link_local: Some(args.ipv6_link_local()),
            mtu: args.mtu,
        },
    )?;

    let mut poll = Poll::new().context("cannot create the event loop")?;
    poll.registry()
        .register(&mut SourceFd(&device.as_raw_fd()), TUN, Interest::READABLE)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);

    let (mut signal_read, signal_write) = UnixStream::pair()?;
    signal_read.set_nonblocking(true)?;
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::low_level::pipe::register(signal, signal_write.try_clone()?)
            .context("cannot install signal handlers")?;
    }
    poll.registry().register(
        &mut SourceFd(&signal_read.as_raw_fd()),
        SIGNAL,
        Interest::READABLE,
    )?;

    let (requests_tx, requests) = crossbeam_channel::unbounded();
    let mut control = ControlSocket::bind(&args.control_path())?;
    control.serve(requests_tx, waker.clone())?;

    let store = args.state.as_deref().map(StateStore::new);
    let mut daemon = Daemon {
        host,
        device,
        framing,
        kind,
        ifname,
        ifindex,
        clock: std::time::Instant::now(),
        store,
        io: IoStats::default(),
        args,
    };
    info!(
        "tunmcastd on {} {} (ifindex {}): IPv4 {}/{}, IPv6 {}, control {}",
        daemon.kind,
        daemon.ifname,
        daemon.ifindex,
        daemon.args.ipv4.0,
        daemon.args.ipv4.1,
        daemon.args.ipv6_link_local(),
        control.path().display()
    );
    daemon.restore()?;
    daemon.flush()?;

    let result = daemon.event_loop(&mut poll, &requests, &mut signal_read);
    drop(control); // removes the socket file
    result
}

impl Daemon {
    fn now(&self) -> Instant {
        Instant::from_millis(u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn event_loop(
        &mut self,
        poll: &mut Poll,
        requests: &Receiver<Envelope>,
        signals: &mut UnixStream,
    ) -> anyhow::Result<()> {
        let mut events = Events::with_capacity(64);
        let mut buf = vec![0u8; MTU_BUFFER];
        // mio is edge-triggered: after a capped burst the device may still hold packets
        // without a new event, so we remember it and poll without sleeping.
        let mut device_readable = false;
        let mut next_device_check = self.clock.elapsed() + DEVICE_CHECK;
        loop {
            let now = self.now();
            let timeout = if device_readable {
                Duration::ZERO
            } else {
                self.host
                    .next_deadline()
                    .map_or(DEVICE_CHECK, |at| (at - now).min(DEVICE_CHECK))
            };
            if let Err(e) = poll.poll(&mut events, Some(timeout)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e).context("event loop poll failed");
            }
            for event in events.iter() {
                match event.token() {
                    TUN => device_readable = true,
                    SIGNAL => {
                        let mut drain = [0u8; 16];
                        while matches!(signals.read(&mut drain), Ok(n) if n > 0) {}
                        return self.shutdown();
                    }
                    _ => {} // WAKE: the requests are drained below, every turn
                }
            }
            // Control requests are answered between bursts, so a flood cannot starve them.
            while let Ok(envelope) = requests.try_recv() {
                let reply = self.handle_request(envelope.request);
                let _ = envelope.reply.send(reply);
            }
            if device_readable {
                device_readable = self.read_burst(&mut buf)?;
            }
            if self.clock.elapsed() >= next_device_check {
                self.check_device()?;
                next_device_check = self.clock.elapsed() + DEVICE_CHECK;
            }
            self.flush()?;
        }
    }

    /// The device is deleted when its name is gone or names another interface. Only ENODEV
    /// counts: `if_nametoindex` needs a socket, and running out of descriptors must not be
    /// taken for a deleted device (a read on a deleted TUN fails with EBADFD anyway).
    fn check_device(&self) -> anyhow::Result<()> {
        match if_nametoindex(&self.ifname) {
            Some(index) if index == self.ifindex => Ok(()),
            Some(_) => bail!(
                "{} device {} has gone away (the name is another device now)",
                self.kind,
                self.ifname
            ),
            None if io::Error::last_os_error().raw_os_error() == Some(libc::ENODEV) => {
                bail!("{} device {} has gone away", self.kind, self.ifname)
            }
            None => {
                warn!(
                    "cannot check {} device {}: {}",
                    self.kind,
                    self.ifname,
                    io::Error::last_os_error()
                );
                Ok(())
            }
        }
    }

    /// Reads at most [`READ_BURST`] packets; returns whether the device may hold more.
    fn read_burst(&mut self, buf: &mut [u8]) -> anyhow::Result<bool> {
        for _ in 0..READ_BURST {
            match self.device.recv(buf) {
                Ok(n) => {
                    self.io.tun_rx_packets += 1;
                    match self.framing.decap(&buf[..n]) {
                        Ok(packet) => self.handle_packet(packet),
                        Err(FrameDrop::NotForUs) => self.io.tap_rx_not_for_us += 1,
                        Err(FrameDrop::OtherEtherType) => self.io.tap_rx_other_ethertype += 1,
                        Err(FrameDrop::Truncated) => self.io.tap_rx_truncated += 1,
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("{} device {} failed (deleted?)", self.kind, self.ifname)
                    })
                }
            }
        }
        Ok(true)
    }

    fn handle_packet(&mut self, packet: &[u8]) {
        let now = self.now();
        let stats = self.host.stats();
        let queries_before = stats.igmp.igmp_rcv_queries + stats.mld.mld_rcv_queries;
        match self.host.handle_packet(self.ifindex, packet, now) {
            Ok(()) => {
                let stats = self.host.stats();
                if stats.igmp.igmp_rcv_queries + stats.mld.mld_rcv_queries > queries_before {
                    info!("query on {} from {}", self.ifname, source_of(packet));
                } else {
                    debug!("accepted {} bytes from {}", packet.len(), source_of(packet));
                }
            }
            Err(reason) => debug!(
                "dropped {} bytes from {}: {}",
                packet.len(),
                source_of(packet),
                reason.describe()
            ),
        }
    }

    /// Sends everything the core has due.
    fn flush(&mut self) -> anyhow::Result<()> {
        let mut out: Vec<Transmit> = Vec::new();
        self.host.poll(self.now(), |tx| out.push(tx));
        for tx in out {
            let packet = self.framing.encap(tx.to_packet(), tx.dst);
            match self.device.send(&packet) {
                Ok(_) => {
                    self.io.tun_tx_packets += 1;
                    debug!("sent {} {} -> {}", tx.message, tx.src, tx.dst);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.io.tun_tx_errors += 1;
                    warn!(
                        "{} device {} is full: a packet was dropped",
                        self.kind, self.ifname
                    );
                }
                // EIO: the link is down (a device we created, not yet set up on the kernel
                // side). Like a host on a dead link, we lose the packet and carry on.
                Err(e) if e.raw_os_error() == Some(libc::EIO) => {
                    self.io.tun_tx_errors += 1;
                    self.io.tun_tx_link_down += 1;
                    if self.io.tun_tx_link_down == 1 {
                        warn!(
                            "{} device {} is down: packets are dropped until it is up",
                            self.kind, self.ifname
                        );
                    }
                    debug!(
                        "dropped {:?} {} -> {}: link down",
                        tx.message, tx.src, tx.dst
                    );
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("cannot write to {} device {}", self.kind, self.ifname)
                    })
                }
            }
        }
        Ok(())
    }

    fn shutdown(&mut self) -> anyhow::Result<()> {
        info!("signal received: leaving every group");
        // The state file keeps the memberships, so that a restart joins them again.
        self.host.leave_all(self.now());
        self.flush()?;
        // IGMPv3 / MLDv2 leaves are state changes, retransmitted Robustness - 1 times within
        // the Unsolicited Report Interval (RFC 9776 §5.1): stay until they are out, bounded.
        let limit =
            self.clock.elapsed() + Duration::from_millis(self.args.v3_unsolicited_interval_ms) * 2;
        while !self.host.groups(self.now()).is_empty() && self.clock.elapsed() < limit {
            let wait = self
                .host
                .next_deadline()
                .map_or(Duration::from_millis(10), |at| at - self.now());
            std::thread::sleep(wait.min(Duration::from_millis(100)));
            self.flush()?;
        }
        Ok(())
    }

    fn restore(&mut self) -> anyhow::Result<()> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let now = self.now();
        for m in store.load()? {
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
            info!(
                "joined {} on {} again (users {})",
                m.group, self.ifname, m.users
            );
        }
        Ok(())
    }

    fn save_state(&self) -> Result<(), String> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let memberships = self
            .host
            .groups(self.now())
            .into_iter()
            .filter(|g| g.users > 0)
            .map(|g| Membership {
                iface: self.ifname.clone(),
                group: g.group,
                users: g.users,
                requests: g
                    .requests
                    .iter()
                    .map(|r| SavedRequest {
                        mode: r.mode.name().to_string(),
                        sources: r.sources.clone(),
                    })
                    .collect(),
            })
            .collect();
        store.save(memberships).map_err(|e| format!("{e:#}"))
    }

    fn check_iface(&self, iface: &Option<String>) -> Result<(), Value> {
        match iface {
            Some(name) if *name != self.ifname => Err(error_reply(format!(
                "unknown interface {name} (this daemon serves {})",
                self.ifname
            ))),
            _ => Ok(()),
        }
    }

    fn handle_request(&mut self, request: Request) -> Value {
        self.io.control_requests += 1;
        let reply = self.answer(request);
        if reply["ok"] != true {
            self.io.control_errors += 1;
        }
        reply
    }

    fn answer(&mut self, request: Request) -> Value {
        let now = self.now();
        match request {
            Request::Ping => json!({ "ok": true, "version": env!("CARGO_PKG_VERSION") }),
            Request::Join {
                group,
                iface,
                filter,
            } => self.membership(true, &group, &iface, &filter, now),
            Request::Leave {
                group,
                iface,
                filter,
            } => self.membership(false, &group, &iface, &filter, now),
            Request::Show => self.show(now),
            Request::Stats => self.stats(),
        }
    }

    /// A join (`join` true) or a leave, with or without a source filter.
    fn membership(
        &mut self,
        join: bool,
        group: &str,
        iface: &Option<String>,
        filter: &SourceArgs,
        now: Instant,
    ) -> Value {
        let (group, filter) = match self.group_arg(group, iface, filter) {
            Ok(g) => g,
            Err(reply) => return reply,
        };
        let result = match (join, &filter) {
            (true, None) => self.host.join(self.ifindex, group, now),
            (true, Some(f)) => self.host.join_filter(self.ifindex, group, f.clone(), now),
            (false, None) => self.host.leave(self.ifindex, group, now),
            (false, Some(f)) => self.host.leave_filter(self.ifindex, group, f.clone(), now),
        };
        let verb = if join { "join" } else { "leave" };
        match result {
            Ok(users) => {
                info!(
                    "{verb} {group}{} on {} (users {users})",
                    describe(&filter),
                    self.ifname
                );
                self.changed_reply(group, users)
            }
            Err(membership::Error::NotJoined(_)) => {
                error_reply(format!("{group} is not joined on {}", self.ifname))
            }
            Err(e) => error_reply(e),
        }
    }

    fn group_arg(
        &self,
        group: &str,
        iface: &Option<String>,
        filter: &SourceArgs,
    ) -> Result<(IpAddr, Option<SourceFilter>), Value> {
        self.check_iface(iface)?;
        let group = group
            .trim()
            .parse::<IpAddr>()
            .map_err(|_| error_reply(format!("{group:?} is not an IP address")))?;
        let parse = |list: &[String]| -> Result<Vec<IpAddr>, Value> {
            list.iter()
                .map(|s| {
                    s.trim()
                        .parse::<IpAddr>()
                        .map_err(|_| error_reply(format!("source {s:?} is not an IP address")))
                })
                .collect()
        };
        let filter = match (&filter.include, &filter.exclude) {
            (Some(_), Some(_)) => {
                return Err(error_reply("give include or exclude sources, not both"))
            }
            (Some(list), None) => Some(SourceFilter::include(parse(list)?)),
            (None, Some(list)) => Some(SourceFilter::exclude(parse(list)?)),
            (None, None) => None,
        };
        Ok((group, filter))
    }

    fn changed_reply(&mut self, group: IpAddr, users: u32) -> Value {
        // The core has queued the report or Leave: send it before answering.
        if let Err(e) = self.flush() {
            warn!("{e:#}");
        }
        let mut reply = json!({
            "ok": true,
            "iface": self.ifname,
            "group": group.to_string(),
            "users": users,
        });
        if let Err(e) = self.save_state() {
            warn!("{e}");
            reply["warning"] = json!(e);
        }
        reply
    }

    fn show(&self, now: Instant) -> Value {
        let interfaces: Vec<Value> = self
            .host
            .interfaces(now)
            .into_iter()
            .map(|i| {
                json!({
                    "iface": self.ifname,
                    "ifindex": i.iface,
                    "device": self.kind.to_lowercase(),
                    "mac": match self.framing {
                        Framing::Ethernet { mac } => Some(mac.to_string()),
                        Framing::Ip => None,
                    },
                    "ipv4": self.args.ipv4.0.to_string(),
                    "ipv4_prefix_len": self.args.ipv4.1,
                    "ipv6_ll": self.args.ipv6_link_local().to_string(),
                    "igmp_version": i.igmp_version,
                    "igmp_max_version": self.args.igmp_version,
                    "igmp_v1_router_present_ms": i.igmp_v1_querier_ms,
                    "igmp_v2_querier_present_ms": i.igmp_v2_querier_ms,
                    "igmp_general_response_ms": i.igmp_general_response_ms,
                    "mld_version": i.mld_version,
                    "mld_max_version": self.args.mld_version,
                    "mld_v1_querier_present_ms": i.mld_v1_querier_ms,
                    "mld_general_response_ms": i.mld_general_response_ms,
                    "igmp_groups": i.igmp_groups,
                    "mld_groups": i.mld_groups,
                })
            })
            .collect();
        let groups: Vec<Value> = self
            .host
            .groups(now)
            .into_iter()
            .map(|g| {
                json!({
                    "iface": self.ifname,
                    "group": g.group.to_string(),
                    "family": if g.group.is_ipv4() { "ipv4" } else { "ipv6" },
                    "users": g.users,
                    "state": g.state,
                    "timer_ms": g.timer_ms,
                    "last_reporter": g.last_reporter,
                    "unsolicited_left": g.unsolicited_left,
                    "retransmit_ms": g.retransmit_ms,
                    "filter_mode": g.filter_mode,
                    "requests": g.requests.iter().map(|r| json!({
                        "mode": r.mode.name(),
                        "sources": r.sources.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                    "sources": g.sources.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({ "ok": true, "interfaces": interfaces, "groups": groups })
    }

    fn stats(&self) -> Value {
        let mut counters = Map::new();
        for (name, value) in self.host.stats().counters() {
            counters.insert(name.to_string(), json!(value));
        }
        let io = &self.io;
        for (name, value) in [
            ("tun_rx_packets", io.tun_rx_packets),
            ("tun_tx_packets", io.tun_tx_packets),
            ("tun_tx_errors", io.tun_tx_errors),
            ("tun_tx_link_down", io.tun_tx_link_down),
            ("tap_rx_not_for_us", io.tap_rx_not_for_us),
            ("tap_rx_other_ethertype", io.tap_rx_other_ethertype),
            ("tap_rx_truncated", io.tap_rx_truncated),
            ("control_requests", io.control_requests),
            ("control_errors", io.control_errors),
        ] {
            counters.insert(name.to_string(), json!(value));
        }
        json!({ "ok": true, "stats": counters })
    }
}

fn describe(filter: &Option<SourceFilter>) -> String {
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

/// The source address of an IP packet, for log lines.
fn source_of(packet: &[u8]) -> String {
    match packet.first().map(|b| b >> 4) {
        Some(4) if packet.len() >= 20 => {
            std::net::Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]).to_string()
        }
        Some(6) if packet.len() >= 24 => {
            let bytes: [u8; 16] = packet[8..24].try_into().expect("16 bytes");
            std::net::Ipv6Addr::from(bytes).to_string()
        }
        _ => "?".into(),
    }
}
