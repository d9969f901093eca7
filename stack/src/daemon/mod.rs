//! The event loop: the one owner of membership state.

use std::ffi::OsString;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use crossbeam_channel::Receiver;
use log::{debug, info, warn};
use membership::{
    Config, Event, Host, IgmpVersion, InputPolicy, Instant, InterfaceConfig, MldVersion, Transmit,
};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use sd_notify::NotifyState;
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use tun_tap::{Iface, Mode};

use crate::control::{ControlSocket, Envelope};
use crate::datapath::Sorted;
use crate::framing::{FrameDrop, Framing};
use crate::listeners::Listeners;
use crate::state::Journal;
use crate::Args;

mod persist;
mod requests;
mod show;

use requests::Answer;
use show::ShowJob;

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
/// How long the loop sleeps at most while a `show` waits for its slow client.
const SHOW_WAIT: Duration = Duration::from_millis(5);
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

crate::counters::counters! {
    /// Counters of the daemon itself, beside the core's.
    struct IoStats {
        tun_rx_packets: "Packets (TUN) or frames (TAP) read from the device.",
        tun_tx_packets: "Packets or frames written to the device.",
        tun_tx_errors: "Writes to the device that failed (the packet is lost).",
        tun_tx_link_down: "Of those, because the link was down.",
        tap_rx_not_for_us: "TAP frames to another station's MAC.",
        tap_rx_other_ethertype: "TAP frames neither IPv4 nor IPv6.",
        tap_rx_truncated: "TAP frames too short for Ethernet.",
        control_requests: "Control requests answered.",
        control_errors: "Control requests refused.",
    }
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
    /// `show` replies being written, a slice per turn.
    shows: Vec<ShowJob>,
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
        shows: Vec::new(),
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
            // A readable device, or a `show` with its next slice to write: no sleep.
            let busy = device_readable || self.shows.iter().any(|job| !job.is_blocked());
            let timeout = if busy {
                Duration::ZERO
            } else if !self.shows.is_empty() {
                SHOW_WAIT // its client is reading slowly
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
            self.answer_requests(requests)?;
            self.advance_shows();
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

    /// Answers every request waiting. Their packets go out first (a join's report is on the
    /// wire when its reply arrives), then the replies, those that changed the state file
    /// once the change is on disk.
    fn answer_requests(&mut self, requests: &Receiver<Envelope>) -> anyhow::Result<()> {
        let mut replies = Vec::new();
        while let Ok(envelope) = requests.try_recv() {
            match self.handle_request(envelope.request, envelope.socket) {
                Answer::Reply(reply) => {
                    let durable = std::mem::take(&mut self.changed_this_request);
                    replies.push((envelope.reply, reply, durable));
                }
                Answer::Show(mut job) => {
                    job.start(envelope.reply);
                    self.shows.push(job);
                }
            }
        }
        if replies.is_empty() {
            return Ok(());
        }
        self.flush()?;
        for (to, reply, durable) in replies {
            match &self.journal {
                Some(journal) if durable => journal.reply_when_durable(to, reply),
                _ => {
                    let _ = to.send(reply);
                }
            }
        }
        Ok(())
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
            Sorted::Datagram(datagram) => {
                let joined = self.host.is_joined(self.ifindex, datagram.group);
                return self.listeners.deliver(&datagram, joined);
            }
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
}

/// Tells the service manager (systemd, `Type=notify`) about a state change; nothing when the
/// daemon was not started by one (`NOTIFY_SOCKET` unset).
fn service_notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!("cannot notify the service manager: {e}");
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
