//! The control requests, answered between the loop's bursts: each to the owner that answers
//! it, its reply sent once the turn's reports are out (after the journal has the change); the
//! long ones (`show` of many groups, a change of many hosts) a slice a turn.

use std::os::fd::OwnedFd;

use control::protocol::PingReply;
use crossbeam_channel::Receiver;

use super::changes::CHANGE_SLICE;
use super::requests::Answer;
use super::show;
use super::streams::StreamAction;
use super::Daemon;
use crate::control::{Body, DaemonReply, Envelope, Part, Request};

/// A reply to send once the turn's reports are out: where, what, and whether it waits for
/// the journal.
type PendingReply = (
    crossbeam_channel::Sender<Part>,
    crate::control::DaemonReply,
    bool,
);

impl Daemon {
    /// Answers every request waiting. Their packets go out first (a join's report is on the
    /// wire when its reply arrives), then the replies, those that changed the state file
    /// once the change is on disk.
    pub(super) fn answer_requests(&mut self, requests: &Receiver<Envelope>) {
        let mut replies = Vec::new();
        // Those that waited for a long change, in their order, once none runs.
        while let Some(envelope) = self.control.changes.next_waiting() {
            self.answer_request(envelope, &mut replies);
        }
        while let Ok(envelope) = requests.try_recv() {
            if self.control.changes.must_wait(&envelope.request) {
                self.control.changes.wait(envelope);
            } else {
                self.answer_request(envelope, &mut replies);
            }
        }
        if replies.is_empty() {
            return;
        }
        // A change's state-change reports come first in what is due: a budget of what the
        // requests may have made puts them on the wire before the replies, without writing
        // all that timers have due first (a million hosts' answers would hold the replies).
        let owed = std::mem::take(&mut self.control.reports_owed);
        self.flush_some(owed);
        for (to, reply, durable) in replies {
            self.persist.reply(to, reply, durable);
        }
    }

    /// Answers one request: a whole reply into `replies` (sent once the turn's reports are
    /// out), or a job of later turns.
    fn answer_request(&mut self, envelope: Envelope, replies: &mut Vec<PendingReply>) {
        match self.handle_request(envelope.request, envelope.socket) {
            Answer::Reply(reply) => {
                let durable = self.persist.take_changed();
                replies.push((envelope.reply, reply, durable));
            }
            Answer::Show(mut job) => {
                job.start(envelope.reply);
                self.control.shows.push(job);
            }
            Answer::Change(mut job) => {
                job.start(envelope.reply);
                self.control.changes.push(job);
            }
        }
    }

    /// One request to the owner that answers it.
    fn handle_request(&mut self, request: Request, socket: Option<OwnedFd>) -> Answer {
        self.control.io.control_requests += 1;
        let reply = |r: Result<Body, String>| Answer::Reply(r.into());
        let answer = match (request, socket) {
            (Request::Listen(args), Some(socket)) => {
                Answer::Reply(self.memberships().listen(args, socket))
            }
            (Request::Listen(_), None) => {
                Answer::Reply(DaemonReply::refuse("listen needs a listener socket"))
            }
            (Request::Join(change), _) => self.memberships().change(true, &change),
            (Request::Leave(change), _) => self.memberships().change(false, &change),
            (Request::Filter(args), _) => Answer::Reply(self.memberships().set_filter(&args)),
            (Request::Show(args), _) => self.view().show(&args),
            (Request::Stats(args), _) => reply(self.view().stats(&args).map(Body::Stats)),
            (Request::Delays(args), _) => {
                let delays = self.view().delays_reply(&args);
                if delays.is_ok() && args.reset {
                    self.delays.reset();
                }
                reply(delays.map(Body::Delays))
            }
            (Request::Ping, _) => Answer::Reply(DaemonReply::Ok(Body::Ping(PingReply {
                version: env!("CARGO_PKG_VERSION").to_string(),
            }))),
            (Request::StreamAdd(args), _) => {
                reply(self.traffic().stream_add(&args).map(Body::StreamIds))
            }
            (Request::StreamRemove(args), _) => reply(
                self.traffic()
                    .stream_action(StreamAction::Remove, &args)
                    .map(Body::StreamIds),
            ),
            (Request::StreamStart(args), _) => reply(
                self.traffic()
                    .stream_action(StreamAction::Start, &args)
                    .map(Body::StreamIds),
            ),
            (Request::StreamStop(args), _) => reply(
                self.traffic()
                    .stream_action(StreamAction::Stop, &args)
                    .map(Body::StreamIds),
            ),
            (Request::Streams(args), _) => {
                reply(self.view().streams_reply(&args).map(Body::Streams))
            }
            (Request::TestStart(args), _) => Answer::Reply(self.testing().test_start(&args)),
            (Request::TestStatus(select), _) => Answer::Reply(self.view().test_status(&select)),
            (Request::TestReport(select), _) => Answer::Reply(self.view().test_report(&select)),
            (Request::TestStop(select), _) => Answer::Reply(self.testing().test_stop(&select)),
        };
        if matches!(&answer, Answer::Reply(reply) if !reply.is_ok()) {
            self.control.io.control_errors += 1;
        }
        answer
    }

    /// One slice of the oldest long change; its reports go out now, ahead of what the timers
    /// have due, and its reply once the last slice is made (after the journal has it, when it
    /// keeps one).
    pub(super) fn advance_changes(&mut self) {
        let Some(mut job) = self.control.changes.take_running() else {
            return;
        };
        let before = job.done();
        let result = self.memberships().apply_changes(&mut job, CHANGE_SLICE);
        job.note_durable(self.persist.take_changed());
        self.flush_some(job.done() - before);
        if !job.is_finished() && result.is_ok() {
            self.control.changes.resume(job);
            return;
        }
        let reply = match result {
            Ok(()) => self.memberships().change_reply(&job),
            Err(refusal) => {
                self.control.io.control_errors += 1;
                DaemonReply::refuse(refusal)
            }
        };
        if let Some((to, durable)) = job.into_reply_sink() {
            self.persist.reply(to, reply, durable);
        }
    }

    /// Writes the next part of every running `show`.
    pub(super) fn advance_shows(&mut self) {
        let mut shows = std::mem::take(&mut self.control.shows);
        show::advance_shows(&mut shows, &self.view());
        self.control.shows = shows;
    }
}
