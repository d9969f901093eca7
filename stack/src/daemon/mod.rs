//! The event loop: the one owner of membership state.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use crossbeam_channel::Receiver;
use log::{info, warn};
use membership::{Config, Host, IfIndex, IgmpVersion, InputPolicy, Instant, MldVersion};
use mio::{Events, Poll, Registry, Waker};
use sd_notify::NotifyState;
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use crate::control::{ControlSocket, Envelope, Part};
use crate::delays::DelayTracker;
use crate::listeners::Listeners;
use crate::state::Journal;
use crate::testrun::TestRuns;
use crate::topology::{HostParams, Topology};
use crate::Args;

mod addrs;
mod changes;
mod hosts;
mod http;
mod links;
mod persist;
mod reload;
mod requests;
mod show;
mod streams;
mod testrun;
mod transmit;

use addrs::{HostsByAddr, HostsByIface, HostsByMac};
use changes::Changes;
use hosts::EmuHost;
use links::Link;
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

/// How often the loop checks that the devices still exist, whatever the core's deadlines.
const DEVICE_CHECK: Duration = Duration::from_secs(1);
/// Largest packet read from a device.
const MTU_BUFFER: usize = 65_536;
/// How long the loop sleeps at most while a `show` waits for its slow client.
const SHOW_WAIT: Duration = Duration::from_millis(5);
/// Packets read in one go from one link before timers, control requests and sends get their
/// turn.
const READ_BURST: usize = 256;

pub(super) use crate::ids::{CoreId, HostId, LinkId};
use crate::ids::{IdVec, Table};
use crate::tokens::Source;

/// A core's settings: `Config` is `#[non_exhaustive]`, so it is built from the default
/// with its builder methods.
fn core_config(args: &Args, params: &HostParams) -> Config {
    let unsolicited = Duration::from_millis(params.unsolicited_interval_ms.into());
    Config::default()
        .with_robustness(params.robustness)
        .with_igmp_unsolicited_interval(unsolicited)
        .with_mld_unsolicited_interval(unsolicited)
        .with_report_link_local_groups(args.report_link_local_groups)
        .with_igmp_max_version(
            IgmpVersion::try_from(params.igmp_version).expect("checked to be 1..=3"),
        )
        .with_mld_max_version(
            MldVersion::try_from(params.mld_version).expect("checked to be 1..=2"),
        )
        .with_v3_unsolicited_interval(Duration::from_millis(
            params.v3_unsolicited_interval_ms.into(),
        ))
        .with_igmp_policy(InputPolicy {
            require_router_alert: args.strict_igmp,
            require_hop_limit_one: args.strict_igmp,
        })
        .with_mld_policy(InputPolicy {
            require_router_alert: !args.lenient_mld,
            require_hop_limit_one: !args.lenient_mld,
        })
        .with_answer_burst(match args.answer_burst {
            0 => u32::MAX,
            burst => burst,
        })
}

fn default_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    nanos ^ (u64::from(std::process::id()) << 32)
}

crate::counters::counters! {
    /// Counters of the daemon itself, beside the core's: one set per link, and the sum.
    struct IoStats {
        tun_rx_packets: "Packets (TUN) or frames (TAP) read from the device.",
        tun_tx_packets: "Packets or frames written to the device.",
        tun_tx_errors: "Writes to the device that failed (the packet is lost).",
        tun_tx_link_down: "Of those, because the link was down.",
        tap_rx_not_for_us: "TAP frames to another station's MAC.",
        tap_rx_other_ethertype: "TAP frames neither IPv4 nor IPv6.",
        tap_rx_truncated: "TAP frames too short for Ethernet.",
        tap_neighbour_answers: "ARP, Neighbour Solicitation and echo requests answered.",
        tap_neighbour_drops: "ARP, ND and ICMP frames addressed to the hosts but not answered.",
        control_requests: "Control requests answered.",
        control_errors: "Control requests refused.",
    }
}

/// The hosts with the same protocol settings share one membership core, each one an
/// interface of it (the core's settings are per core, its state per interface). "Host" in the
/// daemon means an emulated host ([`EmuHost`]); the core's `membership::Host` is its `engine`.
struct Core {
    params: HostParams,
    engine: Host,
}

struct Daemon {
    cores: IdVec<CoreId, Core>,
    links: Table<LinkId, Link>,
    hosts: Table<HostId, EmuHost>,
    /// (core, core ifindex) -> host: where a transmit leaves.
    by_iface: HostsByIface,
    /// Live hosts by their IPv4 and IPv6 link-local addresses: `--host`, `--hosts`.
    by_addr: HostsByAddr,
    /// The hosts whose address another link's host has too, by (link, address): rare (two labs
    /// numbered alike), and how each link still finds its own for ARP / ND.
    shared_addrs: HashMap<(LinkId, IpAddr), HostId>,
    /// Hosts removed by a reload whose leaves are still going out: their core interfaces are
    /// removed once the core holds no record of them.
    departing: Vec<HostId>,
    /// The next synthetic core ifindex, for hosts after a link's first.
    next_ifindex: IfIndex,
    /// The IPv4 address of every host ever made, by its delay number ([`EmuHost`]): numbers
    /// are never reused, so a removed host's delay figures never mix with a new host's.
    delay_hosts: Vec<Ipv4Addr>,
    /// What runs now: the command line's one link, or the file's `[[link]]` tables.
    topology: Topology,
    /// Why the last reload was refused.
    config_error: Option<String>,
    registry: Registry,
    seed: u64,
    args: Args,
    /// The command line as given, for re-reading the --config file under it on SIGHUP.
    argv: Vec<OsString>,
    clock: std::time::Instant,
    /// `--state`: the journal's writer.
    journal: Option<Journal>,
    /// The request being answered changed what the journal holds.
    changed_this_request: bool,
    /// Control counters, and the device counters of links closed since the start.
    io: IoStats,
    listeners: Listeners,
    /// `show` replies being written, a slice per turn.
    shows: Vec<ShowJob>,
    /// Joins and leaves of many hosts being made, a slice per turn, and the requests that
    /// wait for them.
    changes: Changes,
    /// The last flush stopped at its budget: more may be due now.
    transmits_due: bool,
    /// Counts the joins made (`note_member`): a link's "nobody holds this group" stays true
    /// until it moves.
    join_epoch: u64,
    /// The core the next flush starts with, so that a budget cut shares the turns.
    next_flush_core: usize,
    /// Reports the requests of this turn may have made: written before their replies.
    reports_owed: usize,
    /// Hosts handed a datagram in this read burst (see `streams::MEMBER_WORK_PER_BURST`).
    member_work: usize,
    /// Packets sent since the allocator last gave its free pages back.
    untrimmed_sends: usize,
    delays: DelayTracker,
    /// Each host's `host_rx_datagrams` read for every member of a group (O(1) a datagram).
    member_datagrams: crate::member_datagrams::MemberDatagrams,
    /// `tunmcastctl test ...` and the `[[test]]` tables: zapping, RFC 3918 join/leave delay.
    tests: TestRuns<HostId, LinkId>,
    /// `--http`: the server's queries and the walks answering them.
    http: Option<http::HttpPort>,
    /// Test streams: those sent, and what the hosts receive of any.
    streams: crate::streams::Streams,
}

/// A reply to send once the turn's reports are out: where, what, and whether it waits for
/// the journal.
type PendingReply = (
    crossbeam_channel::Sender<Part>,
    crate::control::DaemonReply,
    bool,
);

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

pub fn run(
    args: Args,
    topology: Topology,
    tests: Vec<crate::config::TestTable>,
) -> anyhow::Result<()> {
    raise_fd_limit();
    let mut poll = Poll::new().context("cannot create the event loop")?;
    let waker = Arc::new(Waker::new(poll.registry(), Source::Wake.token())?);
    let mut daemon = Daemon {
        cores: IdVec::new(),
        links: Table::new(),
        hosts: Table::new(),
        by_iface: HostsByIface::default(),
        by_addr: HostsByAddr::default(),
        shared_addrs: HashMap::new(),
        departing: Vec::new(),
        next_ifindex: hosts::FIRST_SYNTHETIC_IFINDEX,
        delay_hosts: Vec::new(),
        topology: Topology::default(),
        config_error: None,
        registry: poll.registry().try_clone()?,
        seed: args.seed.unwrap_or_else(default_seed),
        clock: std::time::Instant::now(),
        journal: None,
        changed_this_request: false,
        io: IoStats::default(),
        listeners: Listeners::new(poll.registry().try_clone()?),
        shows: Vec::new(),
        changes: Changes::default(),
        join_epoch: 0,
        transmits_due: false,
        next_flush_core: 0,
        reports_owed: 0,
        member_work: 0,
        untrimmed_sends: 0,
        member_datagrams: Default::default(),
        delays: if args.delays {
            DelayTracker::default()
        } else {
            DelayTracker::off()
        },
        argv: std::env::args_os().collect(),
        http: None,
        streams: crate::streams::Streams::new(
            args.check_streams || args.delays || !topology.streams.is_empty(),
            crate::delays::DEFAULT_LEAVE_GRACE,
        ),
        tests: TestRuns::default(),
        args,
    };
    // Every device first: a link that cannot be opened at start is a start-up error.
    for spec in &topology.links {
        daemon.open_link(spec)?;
    }
    daemon.configure_streams(&topology.streams);
    daemon.topology = topology;

    let mut signals = Signals::new(HANDLED_SIGNALS).context("cannot install signal handlers")?;
    poll.registry().register(
        &mut signals,
        Source::Signal.token(),
        mio::Interest::READABLE,
    )?;

    let (requests_tx, requests) = crossbeam_channel::unbounded();
    let mut control = ControlSocket::bind(&daemon.args.control_path())?;
    control.serve(requests_tx, waker.clone())?;
    daemon.start_http(&waker)?;
    daemon.log_start(control.path());
    daemon.restore()?;
    daemon.start_configured_tests(tests)?;
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

    /// Nanoseconds since the start: the delay measurements' clock.
    fn now_ns(&self) -> u64 {
        u64::try_from(self.clock.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn log_start(&self, control: &std::path::Path) {
        if let [link] = &self.topology.links[..] {
            if let [host] = &link.hosts[..] {
                let (id, _) = self.links.iter().next().expect("the one link is open");
                info!(
                    "tunmcastd on {} {} (ifindex {}): IPv4 {}/{}, IPv6 {}, control {}",
                    self.links[id].kind_name(),
                    link.device,
                    self.links[id].ifindex,
                    host.ipv4.0,
                    host.ipv4.1,
                    host.ipv6_ll,
                    control.display()
                );
                return;
            }
        }
        info!(
            "tunmcastd on {} links with {} hosts, control {}",
            self.topology.links.len(),
            self.topology.host_count(),
            control.display()
        );
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.cores
            .iter()
            .filter_map(|c| c.engine.poll_timeout())
            .min()
    }

    fn event_loop(
        &mut self,
        poll: &mut Poll,
        requests: &Receiver<Envelope>,
        signals: &mut Signals,
    ) -> anyhow::Result<()> {
        let mut events = Events::with_capacity(64);
        let mut buf = vec![0u8; MTU_BUFFER];
        let mut next_device_check = self.clock.elapsed() + DEVICE_CHECK;
        loop {
            let now = self.now();
            // A readable device, a packet still being handed to a link's hosts, a `show` with
            // its next slice to write, packets due beyond the last turn's budget, or an HTTP
            // walk or query waiting: no sleep.
            let busy = self.transmits_due
                || self.streams.more_due()
                || self
                    .links
                    .iter()
                    .any(|(_, l)| l.readable || !l.fanouts.is_empty())
                || self.shows.iter().any(|job| !job.is_blocked())
                || self.changes.is_busy()
                || self.http_busy();
            let timeout = if busy {
                Duration::ZERO
            } else if !self.shows.is_empty() {
                SHOW_WAIT // its client is reading slowly
            } else {
                let core = self
                    .next_deadline()
                    .map_or(DEVICE_CHECK, |at| (at - now).min(DEVICE_CHECK));
                let stream = self.streams.next_deadline().map_or(DEVICE_CHECK, |at| {
                    Duration::from_nanos(at.saturating_sub(self.now_ns()))
                });
                core.min(stream)
            };
            let timeout = self.test_wait(timeout);
            if let Err(e) = poll.poll(&mut events, Some(timeout)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e).context("event loop poll failed");
            }
            for event in events.iter() {
                match Source::of(event.token()) {
                    Some(Source::Signal) => {
                        let pending: Vec<i32> = signals.pending().collect();
                        for signal in pending {
                            if signal == SIGHUP {
                                self.reload()?;
                            } else {
                                info!("{}: leaving every group", signal_name(signal));
                                return self.shutdown();
                            }
                        }
                    }
                    Some(Source::Listener(id)) => self.listeners.readable(id),
                    Some(Source::Link(id)) => {
                        if let Some(link) = self.links.get_mut(id) {
                            link.readable = true;
                        }
                    }
                    // Wake: the requests are drained below, every turn.
                    Some(Source::Wake) | None => {}
                }
            }
            // Control requests are answered between bursts, so a flood cannot starve them.
            self.answer_requests(requests)?;
            self.advance_changes();
            self.advance_shows();
            self.serve_http();
            let readable: Vec<LinkId> = self
                .links
                .iter()
                .filter(|(_, l)| l.readable)
                .map(|(id, _)| id)
                .collect();
            for id in readable {
                self.read_burst(id, &mut buf)?;
            }
            let fanning: Vec<LinkId> = self
                .links
                .iter()
                .filter(|(_, l)| !l.fanouts.is_empty())
                .map(|(id, _)| id)
                .collect();
            for id in fanning {
                self.continue_fanout(id);
            }
            if self.clock.elapsed() >= next_device_check {
                self.check_devices()?;
                self.remove_departed();
                self.trim_heap_if_due();
                next_device_check = self.clock.elapsed() + DEVICE_CHECK;
            }
            if self.listeners.has_closed() {
                let now = self.now();
                let mut cores: IdVec<CoreId, &mut Host> = self.cores.map(|c| &mut c.engine);
                self.listeners.reap(&mut cores, now);
            }
            self.advance_tests();
            self.flush_some(0);
            // Test streams last: the protocol's packets and the replies went out first.
            self.send_streams();
        }
    }

    /// Answers every request waiting. Their packets go out first (a join's report is on the
    /// wire when its reply arrives), then the replies, those that changed the state file
    /// once the change is on disk.
    fn answer_requests(&mut self, requests: &Receiver<Envelope>) -> anyhow::Result<()> {
        let mut replies = Vec::new();
        // Those that waited for a long change, in their order, once none runs.
        while let Some(envelope) = self.changes.next_waiting() {
            self.answer_request(envelope, &mut replies);
        }
        while let Ok(envelope) = requests.try_recv() {
            if self.changes.must_wait(&envelope.request) {
                self.changes.wait(envelope);
            } else {
                self.answer_request(envelope, &mut replies);
            }
        }
        if replies.is_empty() {
            return Ok(());
        }
        // A change's state-change reports come first in what is due: a budget of what the
        // requests may have made puts them on the wire before the replies, without writing
        // all that timers have due first (a million hosts' answers would hold the replies).
        let owed = std::mem::take(&mut self.reports_owed);
        self.flush_some(owed);
        for (to, reply, durable) in replies {
            match &self.journal {
                Some(journal) if durable => journal.reply_when_durable(to, reply),
                _ => {
                    let _ = to.send(Part::whole(reply));
                }
            }
        }
        Ok(())
    }

    /// Answers one request: a whole reply into `replies` (sent once the turn's reports are
    /// out), or a job of later turns.
    fn answer_request(&mut self, envelope: Envelope, replies: &mut Vec<PendingReply>) {
        match self.handle_request(envelope.request, envelope.socket) {
            Answer::Reply(reply) => {
                let durable = std::mem::take(&mut self.changed_this_request);
                replies.push((envelope.reply, reply, durable));
            }
            Answer::Show(mut job) => {
                job.start(envelope.reply);
                self.shows.push(job);
            }
            Answer::Change(mut job) => {
                job.start(envelope.reply);
                self.changes.push(job);
            }
        }
    }

    /// SIGHUP: re-reads the --config file and applies what can change while running (the log
    /// level, the `[[link]]` tables); what needs a restart is named. A bad file changes nothing
    /// and is shown by `show`. Memberships, timers and the wire of what stays are not touched.
    fn reload(&mut self) -> anyhow::Result<()> {
        if let Ok(now) = NotifyState::monotonic_usec_now() {
            service_notify(&[NotifyState::Reloading, now]);
        }
        let result = self.reread_config();
        service_notify(&[NotifyState::Ready, NotifyState::Status(&self.status_line())]);
        result
    }

    /// What `systemctl status` shows beside the unit.
    fn status_line(&self) -> String {
        let groups = self.total_groups(&|_| true);
        match &self.topology.links[..] {
            [link] => format!(
                "serving {} {}: {groups} groups",
                if link.kind == crate::topology::LinkKind::Tap {
                    "TAP"
                } else {
                    "TUN"
                },
                link.device
            ),
            links => format!(
                "serving {} links, {} hosts: {groups} groups",
                links.len(),
                self.by_addr.hosts()
            ),
        }
    }

    /// Groups of the hosts `wanted` admits, on every core.
    fn total_groups(&self, wanted: &dyn Fn(HostId) -> bool) -> u64 {
        let now = self.now();
        let mut total = 0;
        for (c, core) in self.cores.iter_ids() {
            for i in core.engine.interfaces(now) {
                if let Some(id) = self.by_iface.get(c, i.iface) {
                    if !self.hosts[id].retired && wanted(id) {
                        total += (i.igmp_groups + i.mld_groups) as u64;
                    }
                }
            }
        }
        total
    }

    fn shutdown(&mut self) -> anyhow::Result<()> {
        service_notify(&[
            NotifyState::Stopping,
            NotifyState::Status("leaving every group"),
        ]);
        self.stop_test(None);
        // The state file keeps the memberships, so that a restart joins them again.
        let now = self.now();
        for core in &mut self.cores {
            core.engine.leave_all(now);
        }
        self.flush()?;
        // IGMPv3 / MLDv2 leaves are state changes, retransmitted Robustness - 1 times within
        // the Unsolicited Report Interval (RFC 9776 §5.1): stay until they are out, bounded.
        let longest = self
            .cores
            .iter()
            .map(|c| c.params.v3_unsolicited_interval_ms)
            .max()
            .unwrap_or(0);
        let limit = self.clock.elapsed() + Duration::from_millis(longest.into()) * 2;
        // O(cores) a pass: the cores count their records.
        while self.cores.iter().any(|c| c.engine.group_records() > 0)
            && self.clock.elapsed() < limit
        {
            let wait = self
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

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn answer_burst_reaches_the_cores_and_zero_sends_every_report_at_once() {
        let config = |extra: &[&str]| {
            let mut argv = vec!["tunmcastd", "--tun", "t0", "--ipv4", "10.99.0.2/24"];
            argv.extend(extra);
            core_config(&Args::parse_from(argv), &HostParams::default())
        };
        assert_eq!(config(&[]).answer_burst, Config::default().answer_burst);
        assert_eq!(config(&["--answer-burst", "100"]).answer_burst, 100);
        assert_eq!(config(&["--answer-burst", "0"]).answer_burst, u32::MAX);
    }
}
