//! The event loop: the one owner of membership state.

use std::ffi::{CString, OsString};
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use crossbeam_channel::Receiver;
use log::{debug, info, warn};
use membership::{
    Config, Event, FilterMode, Host, IgmpVersion, InputPolicy, Instant, InterfaceConfig,
    MldVersion, SourceFilter, Transmit,
};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use sd_notify::NotifyState;
use serde_json::{json, Map, Value};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use tun_tap::{Iface, Mode};

use crate::control::{error_reply, ControlSocket, Envelope, Request, SourceArgs};
use crate::datapath::Sorted;
use crate::framing::{FrameDrop, Framing};
use crate::listeners::Listeners;
use crate::state::{self, Journal, Membership, Request as SavedRequest};
use crate::Args;

/// Signals a shell or a service manager sends. SIGHUP reloads; the others leave every group on
/// the wire and exit 0 (SIGKILL cannot be caught: `--state` covers it).
const HANDLED_SIGNALS: [i32; 4] = [SIGHUP, SIGINT, SIGTERM, SIGQUIT];

fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGHUP => "SIGHUP",
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        SIGQUIT => "SIGQUIT",
        _ => "signal",
    }
}

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
    let name = CString::new(name).ok()?;
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (index != 0).then_some(index)
}

fn core_config(args: &Args) -> Config {
    Config {
        robustness: args.robustness,
        igmp_unsolicited_interval: args.unsolicited_interval(),
        mld_unsolicited_interval: args.unsolicited_interval(),
        report_link_local_groups: args.report_link_local_groups,
        igmp_max_version: IgmpVersion::try_from(args.igmp_version)
            .expect("clap keeps --igmp-version in 1..=3"),
        mld_max_version: MldVersion::try_from(args.mld_version)
            .expect("clap keeps --mld-version in 1..=2"),
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
    /// The command line as given, for re-reading the --config file under it on SIGHUP.
    argv: Vec<OsString>,
    clock: std::time::Instant,
    /// `--state`: the journal's writer.
    journal: Option<Journal>,
    /// The request being answered changed what the journal holds.
    changed_this_request: bool,
    io: IoStats,
    listeners: Listeners,
}

/// Raises the soft limit on open files to the hard one: every control client holds one.
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                warn!(
                    "cannot raise the open-file limit: {}",
                    io::Error::last_os_error()
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
    let device = Iface::without_packet_info(&args.iface, mode)
        .with_context(|| format!("cannot attach to {kind} device {}", args.iface))?;
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

    let mut signals = Signals::new(HANDLED_SIGNALS).context("cannot install signal handlers")?;
    poll.registry()
        .register(&mut signals, SIGNAL, Interest::READABLE)?;

    let (requests_tx, requests) = crossbeam_channel::unbounded();
    let mut control = ControlSocket::bind(&args.control_path())?;
    control.serve(requests_tx, waker.clone())?;

    let mut daemon = Daemon {
        host,
        device,
        framing,
        kind,
        ifname,
        ifindex,
        clock: std::time::Instant::now(),
        journal: None,
        changed_this_request: false,
        io: IoStats::default(),
        listeners: Listeners::new(poll.registry().try_clone()?),
        args,
        argv: std::env::args_os().collect(),
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
    // The control socket is bound and the saved state restored: tell systemd (Type=notify).
    service_notify(&[
        NotifyState::Ready,
        NotifyState::Status(&daemon.status_line()),
    ]);

    let result = daemon.event_loop(&mut poll, &requests, &mut signals);
    // Everything acknowledged is on disk already; this waits for the last appends.
    if let Some(journal) = daemon.journal.take() {
        journal.stop();
    }
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
        signals: &mut Signals,
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
                        let pending: Vec<i32> = signals.pending().collect();
                        for signal in pending {
                            if signal == SIGHUP {
                                self.reload();
                            } else {
                                info!("{}: leaving every group", signal_name(signal));
                                return self.shutdown();
                            }
                        }
                    }
                    token if Listeners::owns(token) => self.listeners.readable(token),
                    _ => {} // WAKE: the requests are drained below, every turn
                }
            }
            // Control requests are answered between bursts, so a flood cannot starve them.
            while let Ok(envelope) = requests.try_recv() {
                let reply = self.handle_request(envelope.request, envelope.socket);
                match (
                    &self.journal,
                    std::mem::take(&mut self.changed_this_request),
                ) {
                    (Some(journal), true) => journal.reply_when_durable(envelope.reply, reply),
                    _ => {
                        let _ = envelope.reply.send(reply);
                    }
                }
            }
            if device_readable {
                device_readable = self.read_burst(&mut buf)?;
            }
            if self.clock.elapsed() >= next_device_check {
                self.check_device()?;
                next_device_check = self.clock.elapsed() + DEVICE_CHECK;
            }
            if self.listeners.has_closed() {
                let now = self.now();
                self.listeners.reap(&mut self.host, self.ifindex, now);
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
        // Multicast UDP is the data path's; the core sees (and counts) everything else.
        match crate::datapath::sort(packet) {
            Sorted::Datagram(datagram) => return self.listeners.deliver(&datagram),
            Sorted::Dropped(reason) => return self.listeners.dropped(reason),
            Sorted::NotMulticastUdp => {}
        }
        let now = self.now();
        match self.host.handle_packet(self.ifindex, packet, now) {
            Ok(()) => {
                let mut query = false;
                while let Some(event) = self.host.poll_event() {
                    query |= matches!(event, Event::QueryHeard { .. });
                    self.log_event(&event);
                }
                if query {
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

    /// What the core reports having done, at debug level (mode changes at info).
    fn log_event(&self, event: &Event) {
        match event {
            Event::CompatibilityModeChanged { from, to, .. } => {
                info!("{}: {from} -> {to} (compatibility mode)", self.ifname)
            }
            other => debug!("{}: {other:?}", self.ifname),
        }
    }

    /// Sends everything the core has due.
    fn flush(&mut self) -> anyhow::Result<()> {
        let mut out: Vec<Transmit> = Vec::new();
        self.host.poll(self.now(), |tx| out.push(tx));
        while let Some(event) = self.host.poll_event() {
            self.log_event(&event);
        }
        for tx in out {
            let packet = self.framing.encap(tx.to_packet(), tx.dst);
            match self.device.send(&packet) {
                Ok(_) => {
                    self.io.tun_tx_packets += 1;
                    debug!("sent {:?} {} -> {}", tx.message, tx.src, tx.dst);
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

    /// SIGHUP: re-reads the --config file and applies what can change while running (the log
    /// level); what needs a restart is named. A bad file changes nothing. Memberships, timers
    /// and the wire are not touched.
    fn reload(&mut self) {
        if let Ok(now) = NotifyState::monotonic_usec_now() {
            service_notify(&[NotifyState::Reloading, now]);
        }
        self.reread_config();
        service_notify(&[NotifyState::Ready, NotifyState::Status(&self.status_line())]);
    }

    /// What `systemctl status` shows beside the unit.
    fn status_line(&self) -> String {
        let now = self.now();
        let groups: usize = self
            .host
            .interfaces(now)
            .iter()
            .map(|i| i.igmp_groups + i.mld_groups)
            .sum();
        format!("serving {} {}: {groups} groups", self.kind, self.ifname)
    }

    fn reread_config(&mut self) {
        let Some(path) = self.args.config.clone() else {
            info!(
                "SIGHUP: no --config file to re-read; log level stays {:?}",
                self.args.log_filter()
            );
            return;
        };
        let new = match Args::from_argv(&self.argv) {
            Ok(new) => new,
            Err(e) => {
                warn!("SIGHUP: {e}; the running configuration is kept");
                return;
            }
        };
        let (old_filter, new_filter) = (self.args.log_filter(), new.log_filter());
        if new_filter != old_filter {
            crate::logging::reload(&new_filter);
        }
        let restart_needed = new.differs_beyond_reloadable(&self.args);
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
    }

    fn shutdown(&mut self) -> anyhow::Result<()> {
        service_notify(&[
            NotifyState::Stopping,
            NotifyState::Status("leaving every group"),
        ]);
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

    /// Joins the memberships of the `--state` journal again, then starts its writer.
    fn restore(&mut self) -> anyhow::Result<()> {
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
    fn record_change(&mut self, group: IpAddr) {
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

    fn check_iface(&self, iface: &Option<String>) -> Result<(), Value> {
        match iface {
            Some(name) if *name != self.ifname => Err(error_reply(format!(
                "unknown interface {name} (this daemon serves {})",
                self.ifname
            ))),
            _ => Ok(()),
        }
    }

    fn handle_request(&mut self, request: Request, socket: Option<OwnedFd>) -> Value {
        self.io.control_requests += 1;
        let reply = match (request, socket) {
            (
                Request::Listen {
                    group,
                    port,
                    iface,
                    filter,
                },
                Some(socket),
            ) => self.listen(&group, port, &iface, &filter, socket),
            (request, _) => self.answer(request),
        };
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
            Request::Listen { .. } => error_reply("listen needs a listener socket"),
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

    /// A join held by the listener `socket` (see `listeners`).
    fn listen(
        &mut self,
        group: &str,
        port: Option<u16>,
        iface: &Option<String>,
        filter: &SourceArgs,
        socket: OwnedFd,
    ) -> Value {
        let (group, filter) = match self.group_arg(group, iface, filter) {
            Ok(g) => g,
            Err(reply) => return reply,
        };
        let filter = filter.unwrap_or_else(|| SourceFilter::exclude(Vec::new()));
        let now = self.now();
        match self.listeners.open(
            &mut self.host,
            self.ifindex,
            group,
            port,
            filter,
            socket,
            now,
        ) {
            Ok((id, users)) => {
                if let Err(e) = self.flush() {
                    warn!("{e:#}");
                }
                json!({
                    "ok": true,
                    "id": id,
                    "iface": self.ifname,
                    "group": group.to_string(),
                    "port": port,
                    "users": users,
                })
            }
            Err(reply) => reply,
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
        self.record_change(group);
        json!({
            "ok": true,
            "iface": self.ifname,
            "group": group.to_string(),
            "users": users,
        })
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
                    "igmp_version": i.igmp_version.number(),
                    "igmp_max_version": self.args.igmp_version,
                    "igmp_v1_router_present_ms": i.igmp_v1_querier_ms,
                    "igmp_v2_querier_present_ms": i.igmp_v2_querier_ms,
                    "igmp_general_response_ms": i.igmp_general_response_ms,
                    "mld_version": i.mld_version.number(),
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
        let listeners = self.listeners.show(&self.ifname);
        json!({ "ok": true, "interfaces": interfaces, "groups": groups, "listeners": listeners })
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
        for (name, value) in self.listeners.stats.counters() {
            counters.insert(name.to_string(), json!(value));
        }
        json!({ "ok": true, "stats": counters })
    }
}

/// Tells the service manager (systemd, `Type=notify`) about a state change; nothing when the
/// daemon was not started by one (`NOTIFY_SOCKET` unset).
fn service_notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!("cannot notify the service manager: {e}");
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
