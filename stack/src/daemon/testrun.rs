//! Test runs in the loop: the `test_*` requests, and the joins and leaves the running test
//! has due (`crate::testrun`), made as its own owner's requests so that they never touch a
//! user's joins of the same groups.

use std::sync::Arc;
use std::time::Duration;

use control::testrun::{
    ReportFormat, TestReportReply, TestSelect, TestSpec, TestStartArgs, TestStartReply,
    TestStatusReply,
};
use log::{info, warn};
use membership::SourceFilter;

use super::hosts::Hosts;
use super::links::Links;
use super::requests::target_hosts;
use super::streams::{StreamAction, Traffic};
use super::view::View;
use super::{Clock, HostId, LinkId};
use crate::control::{Body, DaemonReply};
use crate::streams::Streams;
use crate::testrun::oneshot::OneShot;
use crate::testrun::traffic::RunTraffic;
use crate::testrun::{owner_name, report, Action, TestRuns};
use crate::topology::Topology;
use control::streams::{StreamIdsArgs, StreamSpecArgs};

/// Hosts `test status` lists unless told.
const STATUS_HOSTS: usize = 20;

/// The owners a test run reaches: the runs, the streams it starts (on the links), and the
/// hosts whose joins and leaves it makes.
pub(super) struct Testing<'a> {
    pub tests: &'a mut TestRuns<HostId, LinkId>,
    pub streams: &'a mut Streams,
    pub links: &'a mut Links,
    pub hosts: &'a mut Hosts,
    pub topology: &'a Topology,
    /// Delays are measured: see [`Hosts::note_member`].
    pub delays_on: bool,
    pub clock: Clock,
    /// Reports the run's steps made: written before the turn's replies.
    pub reports_owed: &'a mut usize,
}

impl Testing<'_> {
    fn tracking(&self) -> bool {
        self.delays_on || self.streams.is_checking()
    }

    fn traffic(&mut self) -> Traffic<'_> {
        Traffic {
            streams: &mut *self.streams,
            links: &mut *self.links,
            clock: self.clock,
        }
    }

    pub(super) fn test_start(&mut self, args: &TestStartArgs) -> DaemonReply {
        let spec = match (&args.test, &args.name) {
            (Some(spec), None) => spec.clone(),
            (None, Some(name)) => match self.tests.configured.iter().find(|t| t.name() == name) {
                Some(spec) => spec.clone(),
                None => {
                    let names: Vec<&str> =
                        self.tests.configured.iter().map(TestSpec::name).collect();
                    return DaemonReply::refuse(format!(
                        "no [[test]] named {name} in the configuration file (it has: {})",
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    ));
                }
            },
            _ => return DaemonReply::refuse("give a test or the name of a configured one"),
        };
        match self.start_test_with(spec, &args.streams) {
            Ok(reply) => DaemonReply::Ok(Body::TestStart(reply)),
            Err(e) => DaemonReply::refuse(e),
        }
    }

    /// Starts `spec` on its hosts; nothing changes when it is refused.
    pub(super) fn start_test(&mut self, spec: TestSpec) -> Result<TestStartReply, String> {
        self.start_test_with(spec, &[])
    }

    /// Starts `spec` with `streams` (a test file's `[[stream]]` tables) started first and
    /// removed at its end; nothing changes when it is refused.
    fn start_test_with(
        &mut self,
        spec: TestSpec,
        streams: &[StreamSpecArgs],
    ) -> Result<TestStartReply, String> {
        spec.check()?;
        let (iface, hosts) = match &spec {
            TestSpec::Zapping(z) => (&z.iface, &z.hosts),
            TestSpec::JoinLeave(j) => (&j.iface, &j.hosts),
            TestSpec::Capacity(c) => (&c.iface, &c.hosts),
        };
        let targets: Vec<(HostId, LinkId)> =
            target_hosts(self.hosts, self.links, self.topology, iface, &None, hosts)?
                .into_iter()
                .map(|id| (id, self.hosts[id].link))
                .collect();
        if let Some(running) = self.tests.running_name() {
            return Err(format!(
                "test {running} is running: one at a time (tunmcastctl test stop)"
            ));
        }
        let reply = TestStartReply {
            name: spec.name().to_string(),
            kind: spec.kind().to_string(),
            hosts: targets.len() as u32,
        };
        // Its streams first (a bad link refuses the test), then the run.
        let mut file_streams = Vec::new();
        for args in streams {
            match self.traffic().stream_add(args) {
                Ok(reply) => file_streams.extend(reply.ids),
                Err(e) => {
                    self.remove_test_streams(file_streams);
                    return Err(format!("[[stream]] of {}: {e}", args.group));
                }
            }
        }
        let traffic = match spec.traffic() {
            Some(_) => match self.start_test_streams(&spec, &targets) {
                Ok(traffic) => Some(traffic),
                Err(e) => {
                    self.remove_test_streams(file_streams);
                    return Err(e);
                }
            },
            None => None,
        };
        let now = self.clock.now_ns();
        if let Err(e) = self.tests.start(spec, targets, self.hosts.seed(), now) {
            if let Some(traffic) = traffic {
                self.remove_test_streams(traffic.stream_ids());
            }
            self.remove_test_streams(file_streams);
            return Err(e);
        }
        if let Some(traffic) = traffic {
            self.tests.attach_traffic(traffic);
        }
        self.tests
            .attach_arrival_stamps(self.links.arrival_stamping().join(", "));
        self.tests.attach_streams(file_streams);
        info!(
            "test {} ({}) started on {} hosts",
            reply.name, reply.kind, reply.hosts
        );
        // Its first steps are due now.
        self.advance_tests();
        Ok(reply)
    }

    pub(super) fn test_stop(&mut self, select: &TestSelect) -> DaemonReply {
        let Some(running) = self.tests.running_name().map(str::to_string) else {
            return DaemonReply::refuse("no test is running");
        };
        if select.name.as_deref().is_some_and(|n| n != running) {
            return DaemonReply::refuse(format!("test {running} is running, not that one"));
        }
        self.stop_test(None);
        let run = self
            .tests
            .run(Some(&running))
            .expect("the run just stopped is kept");
        info!("test {running} stopped: a partial report");
        DaemonReply::Ok(Body::TestStart(TestStartReply {
            name: running,
            kind: run.spec.kind().to_string(),
            hosts: run.hosts,
        }))
    }

    /// Stops the running test (`error`: why it cannot go on), leaving what it holds.
    pub(super) fn stop_test(&mut self, error: Option<String>) {
        let mut actions = Vec::new();
        self.tests.stop(self.clock.now_ns(), error, &mut actions);
        self.test_actions(actions);
        self.settle_test_traffic();
        self.finish_one_shot();
    }

    /// The running test's steps due now. Once a turn: O(steps due).
    pub(super) fn advance_tests(&mut self) {
        if !self.tests.is_running() {
            return;
        }
        let mut actions = Vec::new();
        self.tests.due(self.clock.now_ns(), &mut actions);
        if !actions.is_empty() {
            self.test_actions(actions);
        }
        if let Some(line) = self.tests.one_shot_progress(self.clock.now_ns()) {
            eprintln!("{line}");
        }
        if !self.tests.is_running() {
            if let Ok(run) = self.tests.run(None) {
                info!("test {} is over", run.spec.name());
            }
            self.settle_test_traffic();
            self.finish_one_shot();
        }
    }

    /// `--run-test`: its reports once its run is over ([`crate::testrun::TestRuns`]).
    fn finish_one_shot(&mut self) {
        let now = self.clock.now_ns();
        let hosts = &*self.hosts;
        self.tests
            .finish_one_shot(now, &|id| test_host_name(hosts, id));
    }

    /// How long the loop may sleep, at most `timeout`, for the running test's next step.
    pub(super) fn test_wait(&self, timeout: Duration) -> Duration {
        match self.tests.next_deadline() {
            Some(at) => timeout.min(Duration::from_nanos(at.saturating_sub(self.clock.now_ns()))),
            None => timeout,
        }
    }

    /// The joins and leaves of the run, as its owner's requests; a host gone stops it.
    fn test_actions(&mut self, actions: Vec<Action<HostId>>) {
        let Some(owner) = self
            .tests
            .running_name()
            .or_else(|| self.tests.run(None).ok().map(|r| r.spec.name()))
            .map(owner_name)
        else {
            return;
        };
        let now = self.clock.now();
        for action in actions {
            let (id, group) = match action {
                Action::Join { host, group, .. } | Action::Leave { host, group } => (host, group),
            };
            let Some(core) = self.hosts.get(id).filter(|h| !h.retired).map(|h| h.core) else {
                self.stop_test(Some(format!("host {id} is gone")));
                return;
            };
            let filter = match action {
                Action::Join { source: None, .. } => SourceFilter::exclude(Vec::new()),
                Action::Join {
                    source: Some(source),
                    ..
                } => SourceFilter::include(vec![source]),
                Action::Leave { .. } => SourceFilter::include(Vec::new()),
            };
            let (engine, ifindex) = self.hosts.engine_of(id);
            let result = engine.set_filter(ifindex, group, &owner, filter, now);
            self.hosts.drain_events(core, self.links);
            match (result, action) {
                (Ok(_), Action::Join { .. }) => {
                    self.hosts
                        .note_member(self.links, id, group, self.tracking())
                }
                (Ok(_), Action::Leave { .. }) => {}
                (Err(e), _) => {
                    let why = format!("{group} on {}: {e}", self.hosts.label(id, self.links));
                    warn!("test stopped: {why}");
                    self.stop_test(Some(why));
                    return;
                }
            }
            *self.reports_owed = self.reports_owed.saturating_add(1);
        }
    }

    /// Starts the streams of `spec`'s traffic (given) on its link: one per channel, and its
    /// background ones. Nothing is left of them when one cannot start.
    fn start_test_streams(
        &mut self,
        spec: &TestSpec,
        targets: &[(HostId, LinkId)],
    ) -> Result<RunTraffic<HostId, LinkId>, String> {
        let traffic = spec.traffic().expect("given");
        let channels = spec.channels().to_vec();
        let mut channel_streams = Vec::with_capacity(channels.len());
        for args in traffic.channel_streams(&channels) {
            match self.traffic().stream_add(&args) {
                Ok(reply) => channel_streams.extend(reply.ids),
                Err(e) => {
                    self.remove_test_streams(channel_streams);
                    return Err(format!("streams: {e}"));
                }
            }
        }
        let background = match traffic.background_streams() {
            Some(args) => match self.traffic().stream_add(&args) {
                Ok(reply) => reply.ids,
                Err(e) => {
                    self.remove_test_streams(channel_streams);
                    return Err(format!("streams (background): {e}"));
                }
            },
            None => Vec::new(),
        };
        let run = RunTraffic::new(
            traffic.source,
            channels,
            &channel_streams,
            &background,
            targets,
        );
        info!(
            "test {}: {} channel streams and {} background streams from {} on {}",
            spec.name(),
            channel_streams.len(),
            background.len(),
            traffic.source,
            traffic.link
        );
        Ok(run)
    }

    fn remove_test_streams(&mut self, ids: Vec<u32>) {
        if ids.is_empty() {
            return;
        }
        let args = StreamIdsArgs { ids, all: false };
        if let Err(e) = self.traffic().stream_action(StreamAction::Remove, &args) {
            warn!("the test's streams: {e}");
        }
    }

    /// The latest run is over: its streams are removed and its hosts' sessions closed.
    fn settle_test_traffic(&mut self) {
        if let Some(traffic) = self.tests.traffic_to_settle() {
            traffic.settle();
            let ids = traffic.stream_ids();
            self.remove_test_streams(ids);
        }
        let file_streams = self.tests.take_ended_streams();
        self.remove_test_streams(file_streams);
    }

    /// Keeps the `[[test]]` tables of the `--config` file (read with the rest of it at start)
    /// and starts those marked `start = true` (one at a time: the first).
    pub(super) fn start_configured_tests(
        &mut self,
        tables: Vec<crate::config::TestTable>,
        one_shot: Option<Arc<OneShot>>,
    ) -> anyhow::Result<()> {
        let first = tables.iter().find(|t| t.start).map(|t| t.spec.clone());
        self.tests.configured = tables.into_iter().map(|t| t.spec).collect();
        if let Some(one) = one_shot {
            if let Some(first) = &first {
                info!(
                    "--run-test: [[test]] {} (start = true) is not started",
                    first.name()
                );
            }
            self.tests.one_shot = Some(one.clone());
            if let Err(e) = self.start_test_with(one.spec.clone(), &one.streams) {
                one.could_not_run(&e);
            }
            return Ok(());
        }
        if let Some(spec) = first {
            let name = spec.name().to_string();
            self.start_test(spec)
                .map_err(|e| anyhow::anyhow!("[[test]] {name} cannot start: {e}"))?;
        }
        Ok(())
    }
}

impl View<'_> {
    pub(super) fn test_status(&self, select: &TestSelect) -> DaemonReply {
        if select.brief {
            return match self.tests.run(select.name.as_deref()) {
                Ok(run) => DaemonReply::Ok(Body::TestStatus(TestStatusReply {
                    tests: vec![run.progress(self.clock.now_ns())],
                })),
                Err(e) => DaemonReply::refuse(e),
            };
        }
        let offset = select.host_offset.unwrap_or(0);
        let hosts = offset..offset.saturating_add(select.host_limit.unwrap_or(STATUS_HOSTS));
        match self.test_reports(select.name.as_deref(), hosts) {
            Ok(status) => DaemonReply::Ok(Body::TestStatus(status)),
            Err(e) => DaemonReply::refuse(e),
        }
    }

    /// The latest run's status, no host listed (none when no test has run): the HTTP view's.
    pub(super) fn latest_test_status(&self) -> TestStatusReply {
        let now = self.clock.now_ns();
        let tests = self
            .tests
            .run(None)
            .ok()
            .map(|run| run.report(now, &|id| self.test_host_name(id), 0, false));
        TestStatusReply {
            tests: tests.into_iter().collect(),
        }
    }

    /// The status of the run `name`, or of every run kept; the hosts of `hosts` listed (their
    /// places in address order).
    pub(super) fn test_reports(
        &self,
        name: Option<&str>,
        hosts: std::ops::Range<usize>,
    ) -> Result<TestStatusReply, String> {
        let now = self.clock.now_ns();
        let host_name = |id: HostId| self.test_host_name(id);
        let tests = match name {
            Some(_) => vec![self
                .tests
                .run(name)?
                .report_page(now, &host_name, hosts, false)],
            None => self
                .tests
                .runs()
                .iter()
                .map(|run| run.report_page(now, &host_name, hosts.clone(), false))
                .collect(),
        };
        Ok(TestStatusReply { tests })
    }

    pub(super) fn test_report(&self, select: &TestSelect) -> DaemonReply {
        let run = match self.tests.run(select.name.as_deref()) {
            Ok(run) => run,
            Err(e) => return DaemonReply::refuse(e),
        };
        let format = select.format.unwrap_or(ReportFormat::Json);
        let report = run.report(
            self.clock.now_ns(),
            &|id| self.test_host_name(id),
            usize::MAX,
            true,
        );
        DaemonReply::Ok(Body::TestReport(TestReportReply {
            name: report.name.clone(),
            format,
            verdict: report.verdict,
            content: report::render(&report, format),
        }))
    }

    fn test_host_name(&self, id: HostId) -> String {
        test_host_name(self.hosts, id)
    }
}

/// A host as reports name it: its IPv4 address.
fn test_host_name(hosts: &Hosts, id: HostId) -> String {
    hosts
        .get(id)
        .map_or_else(|| format!("#{id}"), |h| h.addrs.ipv4.0.to_string())
}
