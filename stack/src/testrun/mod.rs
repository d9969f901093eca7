//! Test runs: IPTV zapping ([`zapping`]) and the RFC 3918 join/leave delay procedure
//! ([`rfc3918`]), their results ([`summary`]) and reports ([`report`]).
//!
//! Sans-IO like the membership core: the loop hands in `now` and the device timestamps of
//! what the hosts wrote (a report, a leave) and read (a datagram), and takes out the joins
//! and leaves that are due ([`Action`]). A run keeps a deadline heap of its hosts' next
//! steps, so a turn costs O(steps due); a datagram, read once for a whole link, costs the
//! zaps waiting on its channel there. Hosts and their segments (the link a datagram is read
//! on) are whatever keys the caller has (`H`, `L`): the daemon's `HostId` and `LinkId`,
//! numbers in the tests.

use std::collections::HashSet;
use std::hash::Hash;
use std::net::IpAddr;

use control::testrun::{RunState, TestReport, TestSpec, Verdict, REPORT_SCHEMA};

pub mod capacity;
pub mod oneshot;
mod procedure;
pub mod report;
pub mod rfc3918;
pub mod summary;
pub mod tally;
pub mod traffic;
pub mod zapping;

pub use procedure::{Action, Probe, Procedure};

/// Nanoseconds on the daemon's monotonic clock (as the delay tracker's).
pub type Nanos = u64;

const MS: Nanos = 1_000_000;

/// How many runs are kept once over (their reports stay available).
pub const KEPT_RUNS: usize = 8;

/// The most zaps (or RFC 3918 host, group and iteration triples) one run makes.
pub const MAX_ZAPS: u64 = 2_000_000;

/// One test run.
pub struct Run<H, L> {
    pub spec: TestSpec,
    pub procedure: Procedure<H, L>,
    pub hosts: u32,
    pub seed: Option<u64>,
    pub start: Nanos,
    pub end: Option<Nanos>,
    pub state: RunState,
    pub error: Option<String>,
    /// Its own streams, when it has some.
    pub traffic: Option<traffic::RunTraffic<H, L>>,
    /// Streams started with it (a test file's `[[stream]]` tables), removed at its end.
    pub file_streams: Vec<u32>,
    /// How its hosts' packets are stamped with their arrival (the report's `arrival_stamps`).
    pub arrival_stamps: Option<String>,
    /// Its results once it is over (its probes change no more), every host listed and no
    /// record: `test status` and `/api/test` then cost O(channels + page), not O(zaps).
    results_at_end: std::sync::OnceLock<summary::Results>,
    /// While it runs, the figures of its settled probes, for the same.
    tally: tally::Tally<H>,
}

impl<H: Copy + Eq + Hash + Ord, L: Copy + Eq + Hash> Run<H, L> {
    /// Its progress alone, in O(1): state, zaps made and planned, elapsed time; no delays,
    /// no checks (the verdict is pending until they are computed: [`Run::report`]).
    pub fn progress(&self, now: Nanos) -> TestReport {
        TestReport {
            schema: REPORT_SCHEMA,
            name: self.spec.name().to_string(),
            kind: self.spec.kind().to_string(),
            spec: self.spec.clone(),
            seed: self.seed,
            state: self.state,
            verdict: match self.state {
                RunState::Error => Verdict::Error,
                _ => Verdict::Pending,
            },
            error: self.error.clone(),
            elapsed_ms: (self.end.unwrap_or(now).saturating_sub(self.start)) / MS,
            arrival_stamps: self.arrival_stamps.clone(),
            hosts: self.hosts,
            zaps_planned: self.procedure.planned(),
            zaps: self.procedure.joins_sent(),
            join_delay: Default::default(),
            leave_delay: Default::default(),
            overlap: Default::default(),
            overlap_packets: 0,
            not_received: 0,
            leave_shared: 0,
            forwarded_without_join: 0,
            forwarded_after_leave: 0,
            buckets: Vec::new(),
            channels: Vec::new(),
            per_host: Vec::new(),
            per_host_total: 0,
            checks: Vec::new(),
            records: Vec::new(),
            records_total: 0,
            traffic: None,
            capacity: None,
        }
    }

    /// Its results now: `host_limit` hosts listed (all for the report), the records with
    /// `with_records`.
    pub fn report(
        &self,
        now: Nanos,
        name: &dyn Fn(H) -> String,
        host_limit: usize,
        with_records: bool,
    ) -> TestReport {
        self.report_page(now, name, 0..host_limit, with_records)
    }

    /// [`Run::report`] listing the hosts of `hosts` (their places in address order).
    pub fn report_page(
        &self,
        now: Nanos,
        name: &dyn Fn(H) -> String,
        hosts: std::ops::Range<usize>,
        with_records: bool,
    ) -> TestReport {
        let judge = judge_of(&self.spec, self.start, with_records);
        let (mut r, per_host_total) = if self.state == RunState::Running && !with_records {
            // The settled zaps' figures: O(channels + page); the zaps made so far.
            let (mut r, total) =
                self.tally
                    .results(self.procedure.probes(), &judge, name, hosts.clone());
            r.zaps = self.procedure.joins_sent();
            (r, total)
        } else if with_records {
            let mut r = summary::results(self.procedure.probes(), &judge, name);
            let per_host_total = r.per_host.len() as u64;
            r.per_host.truncate(hosts.end);
            r.per_host.drain(..hosts.start.min(r.per_host.len()));
            (r, per_host_total)
        } else {
            let at_end = self
                .results_at_end
                .get_or_init(|| summary::results(self.procedure.probes(), &judge, name));
            (at_end.page(hosts.clone()), at_end.per_host.len() as u64)
        };
        let traffic = self.traffic.as_ref().map(|t| {
            let result = t.result(name, hosts.clone());
            r.checks.extend(t.checks(self.spec.sla(), &result));
            result
        });
        let capacity = match &self.procedure {
            Procedure::Capacity(c) => {
                // Its joins are its zaps: no probe counts them.
                r.zaps = c.joins_sent();
                let result = c.result().clone();
                if let Some(min) = self.spec.sla().min_capacity {
                    r.checks.push(control::testrun::Check {
                        name: "min_capacity".into(),
                        scope: "overall".into(),
                        measured: u64::from(result.groups),
                        threshold: u64::from(min),
                        unit: "groups".into(),
                        pass: result.groups >= min,
                    });
                }
                Some(result)
            }
            _ => None,
        };
        let verdict = match self.state {
            RunState::Running => Verdict::Pending,
            RunState::Error => Verdict::Error,
            RunState::Finished | RunState::Stopped => summary::verdict(&r.checks),
        };
        TestReport {
            schema: REPORT_SCHEMA,
            name: self.spec.name().to_string(),
            kind: self.spec.kind().to_string(),
            spec: self.spec.clone(),
            seed: self.seed,
            state: self.state,
            verdict,
            error: self.error.clone(),
            elapsed_ms: (self.end.unwrap_or(now).saturating_sub(self.start)) / MS,
            arrival_stamps: self.arrival_stamps.clone(),
            hosts: self.hosts,
            zaps_planned: self.procedure.planned(),
            zaps: r.zaps,
            join_delay: r.join_delay,
            leave_delay: r.leave_delay,
            overlap: r.overlap,
            overlap_packets: r.overlap_packets,
            not_received: r.not_received,
            leave_shared: r.leave_shared,
            forwarded_without_join: r.forwarded_without_join,
            forwarded_after_leave: r.forwarded_after_leave,
            buckets: r.buckets,
            channels: r.channels,
            per_host: r.per_host,
            per_host_total,
            checks: r.checks,
            records: r.records,
            records_total: r.records_total,
            traffic,
            capacity,
        }
    }
}

/// How `spec`'s probes are judged (a run started at `start`).
fn judge_of(spec: &TestSpec, start: Nanos, with_records: bool) -> summary::Judge<'_> {
    let (not_received_limit, forwarding_checks) = match spec {
        TestSpec::Zapping(z) => (z.not_received_ms * MS, false),
        TestSpec::JoinLeave(j) => (j.hold_ms * MS, true),
        TestSpec::Capacity(c) => (c.step_ms * MS, false),
    };
    summary::Judge {
        sla: spec.sla(),
        thresholds_ms: spec.thresholds_ms(),
        not_received_limit,
        forwarding_checks,
        start,
        with_records,
    }
}

/// How long after it is made a probe of `spec` may still change: a zap's first datagram
/// comes while it is watched (`view_ms`), its leave's datagrams for twice the grace; an RFC
/// 3918 iteration's for its whole length. A second more for reports written late.
fn settling_horizon(spec: &TestSpec) -> Nanos {
    let ms = match spec {
        TestSpec::Zapping(z) => z.view_ms.max(2 * z.leave_grace_ms),
        TestSpec::JoinLeave(j) => 2 * j.check_ms + j.hold_ms + 2 * j.leave_grace_ms,
        TestSpec::Capacity(_) => 0,
    };
    (ms + 1000) * MS
}

/// The daemon's test runs: at most one running, the last [`KEPT_RUNS`] kept, and the tests of
/// the configuration file, startable by name.
pub struct TestRuns<H, L> {
    runs: Vec<Run<H, L>>,
    running: Option<usize>,
    /// The `[[test]]` tables.
    pub configured: Vec<TestSpec>,
    /// The running run's hosts: only their reports and leaves are its.
    by_host: HashSet<H>,
    /// Every run's join and leave delays, for `/metrics`.
    histograms: tally::ZapHistograms,
    /// `--run-test`: the one test the daemon runs before it exits.
    pub one_shot: Option<std::sync::Arc<oneshot::OneShot>>,
}

impl<H, L> Default for TestRuns<H, L> {
    fn default() -> TestRuns<H, L> {
        TestRuns {
            runs: Vec::new(),
            running: None,
            configured: Vec::new(),
            by_host: HashSet::new(),
            histograms: tally::ZapHistograms::default(),
            one_shot: None,
        }
    }
}

impl<H: Copy + Eq + Hash + Ord, L: Copy + Eq + Hash> TestRuns<H, L> {
    /// The join and leave delays of every run's settled probes (`/metrics`); `None` before the
    /// first run, so that a daemon that never ran a test shows no such families.
    pub fn histograms(&self) -> Option<&tally::ZapHistograms> {
        (!self.runs.is_empty()).then_some(&self.histograms)
    }

    /// Whether the `--run-test` run is over (its reports written) or could not start: the
    /// daemon then leaves every group and exits.
    pub fn one_shot_over(&self) -> bool {
        self.one_shot.as_ref().is_some_and(|o| o.is_over())
    }

    /// `--run-test`: a line of its run's progress at `now`, every
    /// [`oneshot::PROGRESS_EVERY`] while it runs (O(1)).
    pub fn one_shot_progress(&self, now: Nanos) -> Option<String> {
        let one = self.one_shot.as_ref()?;
        let run = self.run(Some(self.running_name()?)).ok()?;
        one.progress(now, || run.progress(now))
    }

    /// `--run-test`: once its run is over (finished, stopped or failed; its streams settled
    /// first), its reports written (hosts named by `name`) and the exit status set, once.
    pub fn finish_one_shot(&self, now: Nanos, name: &dyn Fn(H) -> String) {
        let Some(one) = &self.one_shot else {
            return;
        };
        if one.is_over() {
            return;
        }
        let Ok(run) = self.run(Some(one.spec.name())) else {
            return;
        };
        if run.state == RunState::Running {
            return;
        }
        let report = run.report(now, name, usize::MAX, true);
        if let Err(e) = one.finish(&report) {
            eprintln!("tunmcastd: --run-test {}: {e}", one.file.display());
        }
        log::info!(
            "--run-test {}: test {} over, exit status {}",
            one.file.display(),
            report.name,
            one.exit_code().unwrap_or(oneshot::CANNOT_RUN)
        );
    }

    /// Whether a run is going: the loop then credits datagrams to the hosts.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Starts `spec` on `hosts`, each with its segment, at `now` (`seed`: the random order's
    /// when the spec gives none). Its first steps are due at once.
    pub fn start(
        &mut self,
        spec: TestSpec,
        hosts: Vec<(H, L)>,
        seed: u64,
        now: Nanos,
    ) -> Result<(), String> {
        spec.check()?;
        if let Some(i) = self.running {
            return Err(format!(
                "test {} is running: one at a time (tunmcastctl test stop)",
                self.runs[i].spec.name()
            ));
        }
        if hosts.is_empty() {
            return Err("the test names no host".into());
        }
        // Every zap is a record of about 150 bytes, kept for the report.
        let zaps = match &spec {
            TestSpec::Zapping(z) => {
                u64::from(z.count.unwrap_or(z.channels.len() as u32)) * hosts.len() as u64
            }
            TestSpec::JoinLeave(j) => {
                u64::from(j.iterations) * j.groups.len() as u64 * hosts.len() as u64
            }
            TestSpec::Capacity(c) => {
                if hosts.len() != 1 {
                    return Err(format!(
                        "hosts: a capacity run joins from one host, not {}",
                        hosts.len()
                    ));
                }
                u64::from(c.max_groups)
            }
        };
        if zaps > MAX_ZAPS {
            return Err(format!(
                "{zaps} zaps planned ({} hosts): at most {MAX_ZAPS} in one run",
                hosts.len()
            ));
        }
        let (procedure, seed) = match &spec {
            TestSpec::Zapping(z) => {
                let seed = z.seed.unwrap_or(seed);
                let run = zapping::Zapping::new(z, &hosts, seed, now);
                (Procedure::Zapping(run), Some(seed))
            }
            TestSpec::JoinLeave(j) => {
                let run = rfc3918::JoinLeave::new(j, &hosts, now);
                (Procedure::JoinLeave(run), None)
            }
            TestSpec::Capacity(c) => (
                Procedure::Capacity(capacity::Capacity::new(c, hosts[0])),
                None,
            ),
        };
        if self.runs.len() >= KEPT_RUNS {
            self.runs.remove(0);
        }
        self.by_host = hosts.iter().map(|&(h, _)| h).collect();
        let tally = tally::Tally::new(
            hosts.iter().map(|&(h, _)| h),
            settling_horizon(&spec),
            spec.thresholds_ms().len(),
        );
        self.runs.push(Run {
            spec,
            procedure,
            hosts: hosts.len() as u32,
            seed,
            start: now,
            end: None,
            state: RunState::Running,
            error: None,
            traffic: None,
            file_streams: Vec::new(),
            arrival_stamps: None,
            results_at_end: std::sync::OnceLock::new(),
            tally,
        });
        self.running = Some(self.runs.len() - 1);
        Ok(())
    }

    /// When the running run's next step is due.
    pub fn next_deadline(&self) -> Option<Nanos> {
        self.running
            .and_then(|i| self.runs[i].procedure.next_deadline())
    }

    /// The steps due at `now`, in `out`; a run whose hosts are all done is finished.
    pub fn due(&mut self, now: Nanos, out: &mut Vec<Action<H>>) {
        let Some(i) = self.running else {
            return;
        };
        let run = &mut self.runs[i];
        run.procedure.due(now, out);
        let judge = judge_of(&run.spec, run.start, false);
        let over = run.procedure.is_over();
        // A run over settles all its probes: the histograms count every one.
        let until = if over { Nanos::MAX } else { now };
        run.tally
            .settle(run.procedure.probes(), until, &judge, &mut self.histograms);
        if over {
            run.state = RunState::Finished;
            run.end = Some(now);
            self.running = None;
            self.by_host.clear();
        }
    }

    /// Stops the running run (`test stop`, shutdown, an error): `out` gets the leaves of
    /// every group it holds. `error`: why it could not go on.
    pub fn stop(&mut self, now: Nanos, error: Option<String>, out: &mut Vec<Action<H>>) {
        let Some(i) = self.running.take() else {
            return;
        };
        let run = &mut self.runs[i];
        run.procedure.held(out);
        let judge = judge_of(&run.spec, run.start, false);
        run.tally.settle(
            run.procedure.probes(),
            Nanos::MAX,
            &judge,
            &mut self.histograms,
        );
        run.state = match error {
            Some(_) => RunState::Error,
            None => RunState::Stopped,
        };
        run.error = error;
        run.end = Some(now);
        self.by_host.clear();
    }

    fn running_run(&mut self, host: H) -> Option<&mut Run<H, L>> {
        let i = self.running?;
        if !self.by_host.contains(&host) {
            return None;
        }
        Some(&mut self.runs[i])
    }

    /// A report (or leave) naming `group` was written for `host` at `at`.
    pub fn report_sent(&mut self, host: H, group: IpAddr, at: Nanos) {
        if let Some(run) = self.running_run(host) {
            run.procedure.report_sent(host, group, at);
            if let Some(t) = &mut run.traffic {
                t.joined(host, group);
            }
        }
    }

    /// The Leave / TO_IN({}) of `host` for `group` was written at `at`.
    pub fn left(&mut self, host: H, group: IpAddr, at: Nanos) {
        if let Some(run) = self.running_run(host) {
            run.procedure.left(host, group, at);
            if let Some(t) = &mut run.traffic {
                t.left(host, group);
            }
        }
    }

    /// A datagram of `group` was read on `segment` at `at` (once for all its hosts).
    pub fn datagram(&mut self, segment: L, group: IpAddr, at: Nanos) {
        if let Some(i) = self.running {
            self.runs[i].procedure.datagram(segment, group, at);
        }
    }

    /// Gives the running run its own streams: from now on only their datagrams are credited
    /// to it ([`TestRuns::stream_datagram`]).
    pub fn attach_traffic(&mut self, traffic: traffic::RunTraffic<H, L>) {
        if let Some(i) = self.running {
            self.runs[i].traffic = Some(traffic);
        }
    }

    /// Says how the running run's packets are stamped with their arrival, for its report.
    pub fn attach_arrival_stamps(&mut self, how: String) {
        if let Some(i) = self.running {
            self.runs[i].arrival_stamps = Some(how);
        }
    }

    /// Gives the running run the streams started with it, to remove at its end.
    pub fn attach_streams(&mut self, ids: Vec<u32>) {
        if let Some(i) = self.running {
            self.runs[i].file_streams = ids;
        }
    }

    /// The streams started with the latest run, once it is over (once: they are taken).
    pub fn take_ended_streams(&mut self) -> Vec<u32> {
        if self.running.is_some() {
            return Vec::new();
        }
        self.runs
            .last_mut()
            .map(|r| std::mem::take(&mut r.file_streams))
            .unwrap_or_default()
    }

    /// A datagram read on `segment`, with its source and its stream header's stream number
    /// and send time (if it has one): for a run with its own streams, credited only when it
    /// is its channel stream's (its latency noted); for a run without, as
    /// [`TestRuns::datagram`].
    pub fn stream_datagram(
        &mut self,
        segment: L,
        source: IpAddr,
        group: IpAddr,
        header: Option<(u32, u64, Nanos)>,
        at: Nanos,
    ) {
        let Some(i) = self.running else {
            return;
        };
        let run = &mut self.runs[i];
        if let Some(traffic) = &mut run.traffic {
            if traffic.datagram(segment, source, group, header, at) != traffic::Credit::Channel {
                return;
            }
        }
        match (&mut run.procedure, header) {
            (Procedure::Capacity(c), Some((_, sequence, _))) => {
                c.datagram(segment, group, sequence, at)
            }
            (procedure, _) => procedure.datagram(segment, group, at),
        }
    }

    /// The latest run's streams when it is over and they are not settled yet: the daemon
    /// then stops them and settles what the hosts received.
    pub fn traffic_to_settle(&mut self) -> Option<&mut traffic::RunTraffic<H, L>> {
        if self.running.is_some() {
            return None;
        }
        self.runs
            .last_mut()?
            .traffic
            .as_mut()
            .filter(|t| !t.is_settled())
    }

    /// The run named `name` (default: the latest).
    pub fn run(&self, name: Option<&str>) -> Result<&Run<H, L>, String> {
        match name {
            None => self
                .runs
                .last()
                .ok_or_else(|| "no test has run".to_string()),
            Some(name) => self
                .runs
                .iter()
                .rev()
                .find(|r| r.spec.name() == name)
                .ok_or_else(|| format!("no test run named {name}")),
        }
    }

    /// Every run kept, oldest first.
    pub fn runs(&self) -> &[Run<H, L>] {
        &self.runs
    }

    /// The name of the running run.
    pub fn running_name(&self) -> Option<&str> {
        self.running.map(|i| self.runs[i].spec.name())
    }
}

/// A run's own owner name for its joins: not a listener's, not likely a user's.
pub fn owner_name(test: &str) -> String {
    format!("test:{test}")
}
