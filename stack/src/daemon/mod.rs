//! The event loop: the one owner of membership state. The loop's state is split into owners,
//! each keeping its data consistent behind its methods: the links (`Links`: devices,
//! framing, neighbour answers), the membership cores and emulated hosts (`Hosts`), the
//! control plane (`ControlPlane`: streamed shows, long changes, pipelined requests), the
//! data path (`Listeners`), persistence (`Persistence`), delay and traffic measurement
//! (`DelayTracker`, `Streams`) and the test runs (`TestRuns`). A concern that spans
//! owners borrows just those it needs, as one of the views built here: `Receive` (what a
//! link reads), `Wire` (what the cores send), `Memberships` (joins, leaves, listeners),
//! `Traffic` (streams), `Testing` (test runs), `Reconfigure` (links opened and closed),
//! and `View` (every owner, read only: `show`, `stats`, the HTTP view). The loop dispatches
//! one enum of token sources (`Source`).

use std::ffi::OsString;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use crossbeam_channel::Receiver;
use log::{info, warn};
use mio::{Events, Poll, Waker};
use sd_notify::NotifyState;
use signal_hook::consts::SIGHUP;
use signal_hook_mio::v1_0::Signals;

use crate::control::{ControlSocket, Envelope};
use crate::delays::DelayTracker;
use crate::listeners::Listeners;
use crate::streams::Streams;
use crate::testrun::TestRuns;
use crate::topology::Topology;
use crate::Args;

mod addrs;
mod arrivals;
mod changes;
mod clock;
mod control_plane;
mod dispatch;
mod hosts;
mod http;
mod kernel_stamps;
mod links;
mod persist;
mod receive;
mod reload;
mod requests;
mod service;
mod show;
mod streams;
mod testrun;
mod transmit;
mod view;

use clock::Clock;
use control_plane::ControlPlane;
use hosts::{CoreSettings, Hosts};
use links::IoStats;
use links::Links;
use persist::Persistence;
use receive::Receive;
use reload::Reconfigure;
use requests::Memberships;
use service::{default_seed, raise_fd_limit, service_notify, signal_name, HANDLED_SIGNALS};
use streams::Traffic;
use testrun::Testing;
use transmit::Wire;
use view::View;

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
use crate::tokens::Source;

/// The loop's owners.
struct Daemon {
    links: Links,
    hosts: Hosts,
    control: ControlPlane,
    persist: Persistence,
    listeners: Listeners,
    delays: DelayTracker,
    /// Test streams: those sent, and what the hosts receive of any.
    streams: Streams,
    /// `tunmcastctl test ...` and the `[[test]]` tables: zapping, RFC 3918 join/leave delay.
    tests: TestRuns<HostId, LinkId>,
    /// `--http`: the server's queries and the walks answering them.
    http: Option<http::HttpPort>,
    /// What runs now: the command line's one link, or the file's `[[link]]` tables.
    topology: Topology,
    /// Why the last reload was refused.
    config_error: Option<String>,
    args: Args,
    /// The command line as given, for re-reading the --config file under it on SIGHUP.
    argv: Vec<OsString>,
    clock: Clock,
    /// The last flush stopped at its budget: more may be due now.
    transmits_due: bool,
    /// Packets sent since the allocator last gave its free pages back.
    untrimmed_sends: usize,
}

pub fn run(
    args: Args,
    topology: Topology,
    tests: Vec<crate::config::TestTable>,
    one_shot: Option<Arc<crate::testrun::oneshot::OneShot>>,
) -> anyhow::Result<()> {
    raise_fd_limit();
    let mut poll = Poll::new().context("cannot create the event loop")?;
    let waker = Arc::new(Waker::new(poll.registry(), Source::Wake.token())?);
    let clock = Clock::start();
    let arrivals = arrivals::Arrivals::start(clock).context("cannot start the arrival stamps")?;
    let mut daemon = Daemon {
        links: Links::new(poll.registry().try_clone()?, args.arrival_stamps, arrivals),
        hosts: Hosts::new(
            args.seed.unwrap_or_else(default_seed),
            CoreSettings::of(&args),
        ),
        control: ControlPlane::default(),
        persist: Persistence::default(),
        listeners: Listeners::new(poll.registry().try_clone()?),
        delays: if args.delays {
            DelayTracker::default()
        } else {
            DelayTracker::off()
        },
        streams: Streams::new(
            args.check_streams || args.delays || !topology.streams.is_empty(),
            crate::delays::DEFAULT_LEAVE_GRACE,
        ),
        tests: TestRuns::default(),
        http: None,
        topology: Topology::default(),
        config_error: None,
        argv: std::env::args_os().collect(),
        clock,
        transmits_due: false,
        untrimmed_sends: 0,
        args,
    };
    // Every device first: a link that cannot be opened at start is a start-up error.
    for spec in &topology.links {
        daemon.reconfigure().open_link(spec)?;
    }
    daemon.traffic().configure_streams(&topology.streams);
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
    if let Some(addr) = daemon.args.http {
        daemon.http = Some(http::HttpPort::start(addr, &waker)?);
    }
    daemon.log_start(control.path());
    let tracking = daemon.tracking();
    daemon.links.members_complete = tracking;
    daemon.persist = Persistence::restore(
        daemon.args.state.as_deref(),
        &mut daemon.hosts,
        &mut daemon.links,
        &daemon.topology,
        tracking,
        daemon.clock.now(),
    )?;
    daemon.testing().start_configured_tests(tests, one_shot)?;
    daemon.flush();
    // The control socket is bound and the saved state restored: tell systemd (Type=notify).
    service_notify(&[
        NotifyState::Ready,
        NotifyState::Status(&daemon.status_line()),
    ]);

    let result = daemon.event_loop(&mut poll, &requests, &mut signals);
    // Everything acknowledged is on disk already; this waits for the last appends.
    daemon.persist.stop();
    drop(control); // removes the socket file
    result
}

/// The views: each concern's borrow of just the owners it reaches.
impl Daemon {
    /// Someone counts each group's members: see [`Hosts::note_member`].
    fn tracking(&self) -> bool {
        self.delays.is_on() || self.streams.is_checking()
    }

    fn view(&self) -> View<'_> {
        View {
            hosts: &self.hosts,
            links: &self.links,
            listeners: &self.listeners,
            delays: &self.delays,
            streams: &self.streams,
            tests: &self.tests,
            topology: &self.topology,
            args: &self.args,
            config_error: self.config_error.as_deref(),
            control_io: &self.control.io,
            clock: self.clock,
        }
    }

    fn wire(&mut self) -> Wire<'_> {
        Wire {
            hosts: &mut self.hosts,
            links: &mut self.links,
            delays: &mut self.delays,
            streams: &mut self.streams,
            tests: &mut self.tests,
            clock: self.clock,
        }
    }

    fn receive(&mut self) -> Receive<'_> {
        Receive {
            links: &mut self.links,
            hosts: &mut self.hosts,
            listeners: &mut self.listeners,
            delays: &mut self.delays,
            streams: &mut self.streams,
            tests: &mut self.tests,
            clock: self.clock,
            member_work: 0,
        }
    }

    fn memberships(&mut self) -> Memberships<'_> {
        Memberships {
            tracking: self.delays.is_on() || self.streams.is_checking(),
            hosts: &mut self.hosts,
            links: &mut self.links,
            listeners: &mut self.listeners,
            persist: &mut self.persist,
            topology: &self.topology,
            clock: self.clock,
            reports_owed: &mut self.control.reports_owed,
        }
    }

    fn traffic(&mut self) -> Traffic<'_> {
        Traffic {
            streams: &mut self.streams,
            links: &mut self.links,
            clock: self.clock,
        }
    }

    fn testing(&mut self) -> Testing<'_> {
        Testing {
            tests: &mut self.tests,
            streams: &mut self.streams,
            links: &mut self.links,
            hosts: &mut self.hosts,
            topology: &self.topology,
            delays_on: self.delays.is_on(),
            clock: self.clock,
            reports_owed: &mut self.control.reports_owed,
        }
    }

    fn reconfigure(&mut self) -> Reconfigure<'_> {
        Reconfigure {
            links: &mut self.links,
            hosts: &mut self.hosts,
            listeners: &mut self.listeners,
            delays: &mut self.delays,
            streams: &mut self.streams,
            tests: &mut self.tests,
            topology: &mut self.topology,
            config_error: &mut self.config_error,
            clock: self.clock,
        }
    }
}

/// The loop.
impl Daemon {
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

    fn event_loop(
        &mut self,
        poll: &mut Poll,
        requests: &Receiver<Envelope>,
        signals: &mut Signals,
    ) -> anyhow::Result<()> {
        // Room for every device of a large lab in one wake-up: a datagram a bridge forwards to
        // a thousand ports makes a thousand readable at once.
        let mut events = Events::with_capacity(1024);
        let mut buf = vec![0u8; MTU_BUFFER];
        let mut next_device_check = self.clock.elapsed() + DEVICE_CHECK;
        loop {
            let now = self.clock.now();
            // A readable device, a packet still being handed to a link's hosts, a `show` with
            // its next slice to write, packets due beyond the last turn's budget, or an HTTP
            // walk or query waiting: no sleep.
            let busy = self.transmits_due
                || self.streams.more_due()
                || self
                    .links
                    .iter()
                    .any(|(_, l)| l.readable || !l.fanouts.is_empty())
                || self.control.is_busy()
                || self.http.as_ref().is_some_and(http::HttpPort::is_busy);
            let timeout = if busy {
                Duration::ZERO
            } else if self.control.is_waiting() {
                SHOW_WAIT // its client is reading slowly
            } else {
                let core = self
                    .hosts
                    .next_deadline()
                    .map_or(DEVICE_CHECK, |at| (at - now).min(DEVICE_CHECK));
                let stream = self.streams.next_deadline().map_or(DEVICE_CHECK, |at| {
                    Duration::from_nanos(at.saturating_sub(self.clock.now_ns()))
                });
                core.min(stream)
            };
            let timeout = self.testing().test_wait(timeout);
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
                                self.reload();
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
            self.answer_requests(requests);
            if !self.links.members_complete && (self.tracking() || self.tests.is_running()) {
                // The first stream checked or test run: before any packet is read (a
                // group-specific query is then handed to the group's members alone), the hosts
                // that joined before are members too.
                self.hosts
                    .note_all_members(&mut self.links, self.clock.now());
                self.links.members_complete = true;
            }
            self.advance_changes();
            self.advance_shows();
            self.serve_http();
            self.links.measure_arrivals(
                self.delays.is_on() || self.streams.is_checking() || self.tests.is_running(),
            );
            for id in self.links.ids_where(|l| l.readable) {
                if let Err(why) = self.receive().read_burst(id, &mut buf) {
                    self.reconfigure().close_link(id, &why)?;
                }
            }
            for id in self.links.ids_where(|l| !l.fanouts.is_empty()) {
                self.receive().continue_fanout(id);
            }
            if self.clock.elapsed() >= next_device_check {
                for (id, why) in self.links.gone_devices() {
                    self.reconfigure().close_link(id, &why)?;
                }
                self.hosts.remove_departed();
                self.trim_heap_if_due();
                next_device_check = self.clock.elapsed() + DEVICE_CHECK;
            }
            if self.listeners.has_closed() {
                let now = self.clock.now();
                let mut engines = self.hosts.engines_mut();
                self.listeners.reap(&mut engines, now);
            }
            self.testing().advance_tests();
            if self.tests.one_shot_over() {
                info!("--run-test: over, leaving every group");
                return self.shutdown();
            }
            self.flush_some(0);
            // Test streams last: the protocol's packets and the replies went out first.
            self.traffic().send_streams();
        }
    }

    /// Sends everything the cores have due, each packet written before the next is asked
    /// for. For start-up, shutdown and links being closed; the loop uses
    /// [`Daemon::flush_some`].
    fn flush(&mut self) {
        self.flush_up_to(usize::MAX);
    }

    /// [`Daemon::flush`] of at most [`transmit::FLUSH_BUDGET`] packets, plus `owed` (the
    /// reports this turn's requests may have made): a loop that is behind on its timers (a
    /// million hosts answering one query) gives the control socket and the devices a turn
    /// every so many packets, rather than writing all that is due first. Sets `transmits_due`
    /// when it stopped at the budget, so that the loop comes back at once.
    fn flush_some(&mut self, owed: usize) {
        self.transmits_due = self.flush_up_to(transmit::FLUSH_BUDGET.saturating_add(owed));
    }

    fn flush_up_to(&mut self, budget: usize) -> bool {
        let (sent, more) = self.wire().flush_up_to(budget);
        self.untrimmed_sends = self.untrimmed_sends.saturating_add(sent);
        if sent >= transmit::TRIM_AFTER {
            self.trim_heap();
        }
        more
    }

    /// Gives the allocator's free pages back once [`transmit::TRIM_AFTER`] packets went out
    /// since the last time, whatever the size of each flush: the loop calls it once a second.
    /// A join of many hosts leaves each of its retransmission states to be freed over the next
    /// seconds, a few in each turn; without this their pages stayed in RSS (at 10^5 hosts
    /// with 2 groups each, about 66 B per membership of 270).
    fn trim_heap_if_due(&mut self) {
        if self.untrimmed_sends >= transmit::TRIM_AFTER {
            self.trim_heap();
        }
    }

    fn trim_heap(&mut self) {
        self.untrimmed_sends = 0;
        transmit::release_free_memory();
    }

    /// Takes the HTTP server's queries and advances its walks.
    fn serve_http(&mut self) {
        if let Some(mut port) = self.http.take() {
            port.serve(&self.view());
            self.http = Some(port);
        }
    }

    /// SIGHUP: re-reads the --config file and applies what can change while running (the log
    /// level, the `[[link]]` tables); what needs a restart is named. A bad file changes nothing
    /// and is shown by `show`. Memberships, timers and the wire of what stays are not touched.
    fn reload(&mut self) {
        if let Ok(now) = NotifyState::monotonic_usec_now() {
            service_notify(&[NotifyState::Reloading, now]);
        }
        self.reread_config();
        service_notify(&[NotifyState::Ready, NotifyState::Status(&self.status_line())]);
    }

    fn reread_config(&mut self) {
        let Some(path) = self.args.config.clone() else {
            info!(
                "SIGHUP: no --config file to re-read; log level stays {:?}",
                self.args.log_filter()
            );
            return;
        };
        let reread = match reload::reread(&self.argv) {
            Ok(reread) => reread,
            Err(e) => {
                warn!("SIGHUP: {e}; the running configuration is kept");
                self.config_error = Some(e);
                return;
            }
        };
        self.config_error = None;
        // The [[test]] tables: startable by name from now on (a running test goes on).
        self.tests.configured = reread.tests.into_iter().map(|t| t.spec).collect();
        let links_from_file = reload::apply_options(&mut self.args, &reread.args, &path);
        let streams = reread.topology.streams.clone();
        if links_from_file {
            self.reconfigure().apply_topology(reread.topology);
        }
        self.traffic().configure_streams(&streams);
    }

    /// What `systemctl status` shows beside the unit.
    fn status_line(&self) -> String {
        let groups = self.hosts.total_groups(&|_| true, self.clock.now());
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
                self.hosts.live()
            ),
        }
    }

    fn shutdown(&mut self) -> anyhow::Result<()> {
        service_notify(&[
            NotifyState::Stopping,
            NotifyState::Status("leaving every group"),
        ]);
        self.testing().stop_test(None);
        // The state file keeps the memberships, so that a restart joins them again.
        self.hosts.leave_all(self.clock.now());
        self.flush();
        // IGMPv3 / MLDv2 leaves are state changes, retransmitted Robustness - 1 times within
        // the Unsolicited Report Interval (RFC 9776 §5.1): stay until they are out, bounded.
        let longest = self.hosts.longest_v3_interval_ms();
        let limit = self.clock.elapsed() + Duration::from_millis(longest.into()) * 2;
        // O(cores) a pass: the cores count their records.
        while self.hosts.hold_records() && self.clock.elapsed() < limit {
            let wait = self
                .hosts
                .next_deadline()
                .map_or(Duration::from_millis(10), |at| at - self.clock.now());
            std::thread::sleep(wait.min(Duration::from_millis(100)));
            self.flush();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
