//! Joins and leaves of many hosts: applied a slice of hosts a loop turn, each slice's reports
//! written before the next, so that a request for a million hosts neither holds the loop for
//! seconds (queries, devices and other clients wait meanwhile) nor outlives the control
//! socket's reply timeout (the client hears [`Part::Working`] once a second until its reply).
//!
//! Requests that change memberships and come while a long change is being applied wait for it
//! (the loop's `answer_requests` keeps them in order), so that pipelined requests still act in
//! the order they were sent; reads (`ping`, `show`, `stats`, `delays`, `streams`, `test status`,
//! `test report`) are answered at once and see the change as far as it went.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant as WallClock};

use control::protocol::{Change, ChangeReply};
use crossbeam_channel::Sender;
use log::{info, warn};
use membership::{Error, SourceFilter};

use super::requests::Answer;
use super::requests::{describe, source_filter, OwnedOp};
use super::requests::{target_hosts, Memberships};
use super::HostId;
use crate::control::{Body, DaemonReply, Envelope, Part, Request};

/// The most changes (host × group) applied in one loop turn: about 4 ms of a release build's
/// joins and their reports. A request up to this size is applied at once, as it always was.
pub(super) const CHANGE_SLICE: usize = 4096;

/// How often a client waiting behind a long change hears that the loop is still at it.
const WORKING_EVERY: Duration = Duration::from_secs(1);

/// A join or leave of `groups` on `targets`, applied from `next` on.
pub(super) struct ChangeJob {
    join: bool,
    groups: Vec<IpAddr>,
    filter: Option<SourceFilter>,
    targets: Vec<HostId>,
    /// The first target not yet changed.
    next: usize,
    /// Changes made so far.
    done: usize,
    /// The group's users on the last host changed.
    users: u32,
    /// A change of this job is in the journal: the reply waits for it to be on disk.
    durable: bool,
    /// Where the reply goes, once the job is queued.
    reply: Option<Sender<Part>>,
    /// When the client last heard of the job.
    heard: WallClock,
}

impl ChangeJob {
    fn changes(&self) -> usize {
        self.targets.len().saturating_mul(self.groups.len())
    }

    fn finished(&self) -> bool {
        self.next >= self.targets.len()
    }

    /// Queued by the loop with the request's reply channel.
    pub(super) fn start(&mut self, reply: Sender<Part>) {
        self.reply = Some(reply);
    }

    /// Changes made so far.
    pub(super) fn done(&self) -> usize {
        self.done
    }

    /// Every host has been changed (or a refusal ended it).
    pub(super) fn is_finished(&self) -> bool {
        self.finished()
    }

    /// A slice changed the journal: the reply waits until it is on disk.
    pub(super) fn note_durable(&mut self, changed: bool) {
        self.durable |= changed;
    }

    /// Where the reply goes, and whether it waits for the journal.
    pub(super) fn into_reply_sink(mut self) -> Option<(Sender<Part>, bool)> {
        self.reply.take().map(|to| (to, self.durable))
    }
}

/// The long changes being applied, and the requests waiting for them.
#[derive(Default)]
pub(super) struct Changes {
    running: VecDeque<ChangeJob>,
    waiting: VecDeque<Envelope>,
}

impl Changes {
    /// Whether `request` must wait for the changes before it (it changes memberships).
    pub(super) fn must_wait(&self, request: &Request) -> bool {
        let busy = !self.running.is_empty() || !self.waiting.is_empty();
        busy && !matches!(
            request,
            Request::Ping
                | Request::Show(_)
                | Request::Stats(_)
                | Request::Delays(_)
                | Request::Streams(_)
                | Request::TestStatus(_)
                | Request::TestReport(_)
        )
    }

    pub(super) fn wait(&mut self, envelope: Envelope) {
        self.waiting.push_back(envelope);
    }

    pub(super) fn push(&mut self, job: ChangeJob) {
        self.running.push_back(job);
    }

    /// Whether a slice is due: the loop does not sleep then.
    /// The change that runs, taken to apply its next slice ([`Changes::resume`] puts it back).
    pub(super) fn take_running(&mut self) -> Option<ChangeJob> {
        self.keep_alive();
        self.running.pop_front()
    }

    /// Puts back the change [`Changes::take_running`] took: it runs on next turn.
    pub(super) fn resume(&mut self, job: ChangeJob) {
        self.running.push_front(job);
    }

    pub(super) fn is_busy(&self) -> bool {
        !self.running.is_empty()
    }

    /// The next request that waited, once no change runs.
    pub(super) fn next_waiting(&mut self) -> Option<Envelope> {
        if self.running.is_empty() {
            self.waiting.pop_front()
        } else {
            None
        }
    }

    /// Tells every client waiting (for its change or behind one) that the loop is at work,
    /// once a [`WORKING_EVERY`].
    fn keep_alive(&mut self) {
        let now = WallClock::now();
        let Some(job) = self.running.front_mut() else {
            return;
        };
        if now.duration_since(job.heard) < WORKING_EVERY {
            return;
        }
        job.heard = now;
        let sinks = self.running.iter().filter_map(|j| j.reply.as_ref());
        for sink in sinks.chain(self.waiting.iter().map(|e| &e.reply)) {
            // One place is always left for the reply itself, which the loop sends blocking: a
            // request pipelined behind the change on the same connection is not read from
            // until the change's reply is written, and its channel must not fill with these.
            // A closed channel: the client is gone.
            if sink.len() + 1 < sink.capacity().unwrap_or(usize::MAX) {
                let _ = sink.try_send(Part::Working);
            }
        }
    }
}

impl Memberships<'_> {
    /// A join (`join` true) or leave of every group the request names, on every host it
    /// names. The groups are checked first (multicast, joined for a leave), so that a refused
    /// request changes nothing; a host's changes happen at one instant, so IGMPv3 / MLDv2 pack
    /// its records into as few reports as the MTU allows. Up to [`CHANGE_SLICE`] changes are
    /// made at once; more, a slice a turn (the loop's `advance_changes`).
    pub(super) fn change(&mut self, join: bool, change: &Change) -> Answer {
        let refuse = |e: String| Answer::Reply(DaemonReply::refuse(e));
        let targets = match target_hosts(
            self.hosts,
            self.links,
            self.topology,
            &change.iface,
            &change.host,
            &change.hosts,
        ) {
            Ok(targets) => targets,
            Err(refusal) => return Answer::Reply(DaemonReply::Err(refusal)),
        };
        let groups = match change.groups() {
            Ok(groups) => groups,
            Err(e) => return refuse(e.to_string()),
        };
        if let Some(owner) = &change.owner {
            let filter = match source_filter(&change.include, &change.exclude) {
                Ok(filter) => filter,
                Err(e) => return refuse(e),
            };
            let op = match join {
                true => OwnedOp::Join(filter),
                false => OwnedOp::Leave(filter),
            };
            return Answer::Reply(self.owned_change(op, owner, &groups, &targets));
        }
        if groups.len().saturating_mul(targets.len()) > control::protocol::MAX_BATCH as usize {
            return refuse(format!(
                "{} groups on {} hosts: more than {} changes in one request",
                groups.len(),
                targets.len(),
                control::protocol::MAX_BATCH
            ));
        }
        let filter = match source_filter(&change.include, &change.exclude) {
            Ok(filter) => filter,
            Err(e) => return refuse(e),
        };
        let now = self.clock.now();
        for group in &groups {
            if !group.is_multicast() {
                return refuse(Error::NotMulticast(*group).to_string());
            }
            if !join {
                for &id in &targets {
                    if self.hosts.group(id, *group, now).is_none() {
                        return refuse(format!(
                            "{group} is not joined on {}",
                            self.hosts.label(id, self.links)
                        ));
                    }
                }
            }
        }
        let mut job = ChangeJob {
            join,
            groups,
            filter,
            targets,
            next: 0,
            done: 0,
            users: 0,
            durable: false,
            reply: None,
            heard: WallClock::now(),
        };
        if job.changes() > CHANGE_SLICE {
            return Answer::Change(job);
        }
        match self.apply_changes(&mut job, usize::MAX) {
            Err(refusal) => refuse(refusal),
            Ok(()) => {
                // At most one report a host and group, before the reply (see answer_requests).
                *self.reports_owed = self.reports_owed.saturating_add(job.changes());
                Answer::Reply(self.change_reply(&job))
            }
        }
    }

    /// Makes the changes of `job`'s next hosts, whole hosts, until `budget` changes are made.
    /// A refusal ends the job: it names the change that failed and how many were made.
    pub(super) fn apply_changes(
        &mut self,
        job: &mut ChangeJob,
        budget: usize,
    ) -> Result<(), String> {
        let now = self.clock.now();
        let mut made = 0usize;
        while !job.finished() && made < budget {
            let id = job.targets[job.next];
            let core = self.hosts[id].core;
            for &group in &job.groups {
                let (engine, ifindex) = self.hosts.engine_of(id);
                let result = match (job.join, &job.filter) {
                    (true, None) => engine.join(ifindex, group, now),
                    (true, Some(f)) => engine.join_filter(ifindex, group, f.clone(), now),
                    (false, None) => engine.leave(ifindex, group, now),
                    (false, Some(f)) => engine.leave_filter(ifindex, group, f.clone(), now),
                };
                self.hosts.drain_events(core, self.links);
                match result {
                    Ok(n) => {
                        job.users = n;
                        job.done += 1;
                        made += 1;
                        if job.join {
                            self.hosts
                                .note_member(self.links, id, group, self.tracking());
                        }
                        self.persist.record(
                            self.hosts,
                            self.links,
                            self.listeners,
                            id,
                            group,
                            self.clock.now(),
                        );
                    }
                    Err(e) => {
                        let error = match e {
                            Error::NotJoined(_) => {
                                format!(
                                    "{group} is not joined on {}",
                                    self.hosts.label(id, self.links)
                                )
                            }
                            Error::NoSuchFilter if !job.join => self.owned_only(id, group),
                            e => format!("{group}: {e}"),
                        };
                        job.next = job.targets.len();
                        if job.done > 0 {
                            let done = job.done;
                            warn!("{error} (after {done} changes of the request were made)");
                            return Err(format!(
                                "{error} (the {done} changes before it were made)"
                            ));
                        }
                        return Err(error);
                    }
                }
            }
            job.next += 1;
        }
        Ok(())
    }

    /// The reply to a finished change, logged.
    pub(super) fn change_reply(&self, job: &ChangeJob) -> DaemonReply {
        let verb = if job.join { "join" } else { "leave" };
        let first = job.groups[0];
        let count = job.groups.len() as u32;
        let label = self.hosts.label(job.targets[0], self.links);
        let on = if job.targets.len() == 1 {
            label.clone()
        } else {
            format!("{} hosts from {label}", job.targets.len())
        };
        if count == 1 {
            info!(
                "{verb} {first}{} on {on} (users {})",
                describe(&job.filter),
                job.users
            );
        } else {
            info!(
                "{verb} {count} groups from {first}{} on {on}",
                describe(&job.filter)
            );
        }
        DaemonReply::Ok(Body::Change(ChangeReply {
            iface: label,
            group: first,
            count,
            users: job.users,
            warning: None,
            hosts: job.targets.len() as u32,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Id;
    use crossbeam_channel::bounded;

    fn job(heard: WallClock, reply: Sender<Part>) -> ChangeJob {
        ChangeJob {
            join: true,
            groups: vec!["239.1.1.1".parse().unwrap()],
            filter: None,
            targets: (0..10_000).map(HostId::from_index).collect(),
            next: 0,
            done: 0,
            users: 0,
            durable: false,
            reply: Some(reply),
            heard,
        }
    }

    #[test]
    fn clients_waiting_on_a_long_change_hear_it_is_working_once_a_second() {
        let mut changes = Changes::default();
        let (job_tx, job_rx) = bounded(crate::control::STREAM_DEPTH);
        let (waiter_tx, waiter_rx) = bounded(crate::control::STREAM_DEPTH);
        changes.push(job(WallClock::now(), job_tx));
        let leave = Request::Leave(Change::default());
        assert!(
            changes.must_wait(&leave),
            "a change waits behind a running one"
        );
        assert!(!changes.must_wait(&Request::Ping), "a read does not");
        changes.wait(Envelope {
            request: leave,
            reply: waiter_tx,
            socket: None,
        });
        // Within the second: nothing.
        changes.keep_alive();
        assert!(job_rx.try_recv().is_err() && waiter_rx.try_recv().is_err());
        // A second on: both hear it, once.
        changes.running[0].heard -= WORKING_EVERY;
        changes.keep_alive();
        assert!(matches!(job_rx.try_recv(), Ok(Part::Working)));
        assert!(matches!(waiter_rx.try_recv(), Ok(Part::Working)));
        changes.keep_alive();
        assert!(job_rx.try_recv().is_err() && waiter_rx.try_recv().is_err());
        // A waiter nobody reads yet (pipelined behind the change) gets at most three: the
        // fourth place stays for its reply, which the loop sends blocking.
        for _ in 0..10 {
            changes.running[0].heard -= WORKING_EVERY;
            changes.keep_alive();
        }
        assert_eq!(waiter_rx.len(), 3);
        assert!(changes.waiting[0].reply.try_send(Part::Working).is_ok());
        while job_rx.try_recv().is_ok() {}
        // The waiting request comes back only once no change runs.
        assert!(changes.next_waiting().is_none());
        changes.running.clear();
        assert!(changes.next_waiting().is_some());
        assert!(!changes.is_busy());
    }

    #[test]
    fn a_job_counts_its_changes_and_knows_when_it_is_done() {
        let (tx, _rx) = bounded(1);
        let mut job = job(WallClock::now(), tx);
        assert_eq!(job.changes(), 10_000);
        assert!(!job.finished());
        job.next = job.targets.len();
        assert!(job.finished());
    }
}
