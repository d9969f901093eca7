//! The control socket: a Unix stream socket, one JSON request per line, one JSON reply per line.
//!
//! One thread accepts; each client gets a small thread that reads its lines, hands each request
//! to the event loop over a crossbeam channel (waking it through a `mio::Waker`) and writes back
//! the reply the loop sends. The control side never touches membership state.

use std::collections::VecDeque;
use std::fs;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context as _};
use crossbeam_channel::{bounded, Sender};
use log::{debug, warn};
use serde::Serialize;

/// Longest request line accepted.
pub const MAX_REQUEST: usize = 64 * 1024;
/// Clients served at once; more are told so and closed.
const MAX_CLIENTS: usize = 4096;
/// A client that sends nothing for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a client waits for the event loop's answer: less than tunmcastctl's 5 s, so that
/// the client gets the error reply rather than a timeout of its own.
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(4);

pub use control::protocol::Request;
use control::protocol::{
    ChangeReply, DelaysReply, GroupInfo, ListenReply, PingReply, ShowHeader, StatsReply,
    StreamIdsReply, StreamsReply,
};
use control::Reply;

/// Requests of one connection read ahead (pipelined) before their replies are written.
const MAX_IN_FLIGHT: usize = 1024;
/// Parts of one streamed reply (`show`) queued between the loop and the client's thread.
pub const STREAM_DEPTH: usize = 4;

/// What a whole reply of the daemon carries after `"ok":true`: one of the protocol's reply
/// types, written as its own fields.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Body {
    Change(ChangeReply),
    Listen(ListenReply),
    Stats(StatsReply),
    Delays(DelaysReply),
    Ping(PingReply),
    StreamIds(StreamIdsReply),
    Streams(StreamsReply),
    /// `show` of one group: the whole reply at once.
    Show(ShowGroups),
    TestStart(control::testrun::TestStartReply),
    TestStatus(control::testrun::TestStatusReply),
    TestReport(control::testrun::TestReportReply),
}

/// `show` of one group: the header's fields, the group's records, their number.
#[derive(Debug, Serialize)]
pub struct ShowGroups {
    #[serde(flatten)]
    pub header: ShowHeader,
    pub groups: Vec<GroupInfo>,
    pub total_groups: u64,
}

/// A reply of the daemon, in the protocol's one envelope.
pub type DaemonReply = Reply<Body>;

/// What goes from the loop to a client's thread for one request. A whole reply is a typed
/// value, serialised only there, at the edge: [`Part::to_bytes`].
#[derive(Debug)]
pub enum Part<B = Body> {
    /// The whole reply, and the warning to add when its change could not be saved.
    Whole {
        reply: Reply<B>,
        warning: Option<String>,
    },
    /// One part of a streamed reply (`show`), already serialised; the last ends with the
    /// newline.
    Stream(Vec<u8>),
    /// The loop is still applying the request (a join of a million hosts, a slice a turn):
    /// written as one space, which JSON readers skip before the reply, so that neither this
    /// side nor the client gives up while the reply is on its way.
    Working,
}

impl<B: Serialize> Part<B> {
    /// A whole reply without a warning.
    pub fn whole(reply: Reply<B>) -> Part<B> {
        Part::Whole {
            reply,
            warning: None,
        }
    }

    /// The bytes written to the client: the reply's line, or the streamed part as it is.
    pub fn to_bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        match self {
            Part::Whole { reply, warning } => reply.to_line_with_warning(warning.as_deref()).into(),
            Part::Stream(bytes) => bytes[..].into(),
            Part::Working => b" "[..].into(),
        }
    }

    /// Whether this part ends its reply.
    fn ends_reply(&self) -> bool {
        match self {
            Part::Whole { .. } => true,
            Part::Stream(bytes) => bytes.ends_with(b"\n"),
            Part::Working => false,
        }
    }
}

/// A request on its way to the event loop, with where its reply goes: one whole reply, or
/// for a streamed reply several parts (the last ends with the newline).
pub struct Envelope {
    pub request: Request,
    pub reply: Sender<Part>,
    /// `listen`: the daemon's end of the listener socket pair.
    pub socket: Option<std::os::fd::OwnedFd>,
}

/// The line of a refusal the control side makes itself (the loop never saw the request).
pub fn refusal_line(message: impl std::fmt::Display) -> Vec<u8> {
    DaemonReply::refuse(message).to_line()
}

/// Parses one request line; the error is the refusal to send.
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    let text = std::str::from_utf8(line).map_err(|_| "request is not UTF-8".to_string())?;
    let text = text.trim();
    if text.is_empty() {
        return Err("empty request".into());
    }
    serde_json::from_str(text).map_err(|e| format!("bad request: {e}"))
}

/// The bound control socket. Dropping it removes the socket file.
pub struct ControlSocket {
    path: PathBuf,
    listener: Option<UnixListener>,
}

impl ControlSocket {
    /// Binds `path` (mode 0600), creating its directory and replacing a stale socket; refuses
    /// to take over a socket another daemon still answers on.
    pub fn bind(path: &Path) -> anyhow::Result<ControlSocket> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)
                .with_context(|| format!("cannot create control directory {}", dir.display()))?;
        }
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                bail!(
                    "control socket {} is in use by a running daemon",
                    path.display()
                );
            }
            fs::remove_file(path)
                .with_context(|| format!("cannot remove stale socket {}", path.display()))?;
        }
        let listener = UnixListener::bind(path)
            .with_context(|| format!("cannot bind control socket {}", path.display()))?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot chmod {}", path.display()))?;
        Ok(ControlSocket {
            path: path.to_path_buf(),
            listener: Some(listener),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts the accept thread.
    pub fn serve(&mut self, requests: Sender<Envelope>, waker: Arc<mio::Waker>) -> io::Result<()> {
        let listener = self.listener.take().expect("serve is called once");
        let clients = Arc::new(AtomicUsize::new(0));
        thread::Builder::new()
            .name("control".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    let stream = match stream {
                        Ok(stream) => stream,
                        Err(e) => {
                            // Typically EMFILE: back off rather than spin and flood the log.
                            warn!("control: accept failed: {e}");
                            thread::sleep(Duration::from_millis(250));
                            continue;
                        }
                    };
                    if clients.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
                        clients.fetch_sub(1, Ordering::SeqCst);
                        let mut stream = stream;
                        let _ = stream.write_all(&refusal_line("too many control clients"));
                        continue;
                    }
                    let requests = requests.clone();
                    let waker = waker.clone();
                    let clients = clients.clone();
                    let spawned = thread::Builder::new()
                        .name("control-client".into())
                        .stack_size(128 * 1024)
                        .spawn(move || {
                            if let Err(e) = serve_client(stream, &requests, &waker) {
                                debug!("control: client ended: {e}");
                            }
                            clients.fetch_sub(1, Ordering::SeqCst);
                        });
                    if let Err(e) = spawned {
                        warn!("control: cannot start a client thread: {e}");
                    }
                }
            })?;
        Ok(())
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Serves one connection: reads requests, hands them to the loop, writes the replies in
/// order. Requests already sent (pipelined) are read and handed over before the replies to the
/// earlier ones are waited for, so that a client with many requests in flight gets them all
/// handled in one turn of the loop (and, with --state, saved with one fsync).
fn serve_client(
    stream: UnixStream,
    requests: &Sender<Envelope>,
    waker: &mio::Waker,
) -> io::Result<()> {
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    stream.set_write_timeout(Some(REPLY_TIMEOUT))?;
    // One descriptor per client: reads and writes share the stream.
    let mut writer = BufWriter::with_capacity(64 * 1024, &stream);
    let mut reader = BufReader::with_capacity(64 * 1024, &stream);
    let mut in_flight: VecDeque<Pending> = VecDeque::new();
    let mut line = Vec::new();
    loop {
        // Block for a request only when no reply is owed.
        if in_flight.is_empty() || reader.buffer().contains(&b'\n') {
            line.clear();
            let n = reader
                .by_ref()
                .take(MAX_REQUEST as u64 + 1)
                .read_until(b'\n', &mut line)?;
            if n == 0 {
                return finish(&mut writer, &mut in_flight); // hung up
            }
            if line.last() != Some(&b'\n') {
                finish(&mut writer, &mut in_flight)?;
                if line.len() > MAX_REQUEST {
                    // The rest of the line cannot be told from the next request: answer, close.
                    let reply = refusal_line(format!("request longer than {MAX_REQUEST} bytes"));
                    writer.write_all(&reply)?;
                    writer.flush()?;
                }
                return Ok(()); // or hung up in the middle of a request: nothing to answer
            }
            match parse_request(&line) {
                Ok(request @ Request::Listen(_)) => {
                    // The connection becomes the listener's: everything before it is answered.
                    finish(&mut writer, &mut in_flight)?;
                    drop(writer);
                    match crate::listeners::hand_over(&stream, request, requests, waker)? {
                        Some(refusal) => {
                            (&stream).write_all(&refusal.to_line())?;
                            writer = BufWriter::with_capacity(64 * 1024, &stream);
                            continue;
                        }
                        None => return Ok(()), // the listener socket carries on alone
                    }
                }
                Ok(request) => {
                    let (tx, rx) = bounded(STREAM_DEPTH);
                    let envelope = Envelope {
                        request,
                        reply: tx,
                        socket: None,
                    };
                    if requests.send(envelope).is_err() {
                        return Ok(()); // the daemon is shutting down
                    }
                    in_flight.push_back(Pending::Loop(rx));
                }
                Err(refusal) => in_flight.push_back(Pending::Ready(DaemonReply::refuse(refusal))),
            }
            if in_flight.len() < MAX_IN_FLIGHT && reader.buffer().contains(&b'\n') {
                continue; // more requests already here: hand them over first
            }
            waker.wake()?;
        }
        // Answer the oldest request; then read on, or answer the next.
        if let Some(pending) = in_flight.pop_front() {
            if !write_reply(&mut writer, pending)? {
                return Ok(());
            }
            if in_flight.is_empty() || !reader.buffer().contains(&b'\n') {
                writer.flush()?;
            }
        }
    }
}

/// A reply owed to the client, in request order.
enum Pending {
    /// Answered without the loop (a request that did not parse).
    Ready(DaemonReply),
    /// The loop's answer, in one part or more.
    Loop(crossbeam_channel::Receiver<Part>),
}

/// Writes one reply whole; `false` when it cannot be finished (the loop gave up on a streamed
/// reply midway): the connection must close, as the client cannot tell where it stopped.
fn write_reply(writer: &mut impl Write, pending: Pending) -> io::Result<bool> {
    let rx = match pending {
        Pending::Ready(reply) => {
            writer.write_all(&reply.to_line())?;
            return Ok(true);
        }
        Pending::Loop(rx) => rx,
    };
    let mut started = false;
    loop {
        match rx.recv_timeout(REPLY_TIMEOUT) {
            Ok(part) => {
                writer.write_all(&part.to_bytes())?;
                if part.ends_reply() {
                    return Ok(true);
                }
                if matches!(part, Part::Working) {
                    writer.flush()?;
                    continue;
                }
                if !started {
                    // The first part of a long reply goes out at once.
                    writer.flush()?;
                    started = true;
                }
            }
            Err(_) if !started => {
                writer.write_all(&refusal_line("daemon did not answer"))?;
                return Ok(true);
            }
            Err(_) => {
                warn!("control: a streamed reply stopped midway; closing the connection");
                return Ok(false);
            }
        }
    }
}

/// Writes every reply still owed, then flushes.
fn finish(writer: &mut impl Write, in_flight: &mut VecDeque<Pending>) -> io::Result<()> {
    while let Some(pending) = in_flight.pop_front() {
        if !write_reply(writer, pending)? {
            break;
        }
    }
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_have_one_shape_with_ok_first() {
        let ping = Part::whole(DaemonReply::Ok(Body::Ping(PingReply {
            version: "1".into(),
        })));
        assert_eq!(&*ping.to_bytes(), b"{\"ok\":true,\"version\":\"1\"}\n");
        assert_eq!(refusal_line("no"), b"{\"ok\":false,\"error\":\"no\"}\n");
        let warned = Part::<()>::Whole {
            reply: Reply::Ok(()),
            warning: Some("not saved".into()),
        };
        assert_eq!(
            &*warned.to_bytes(),
            b"{\"ok\":true,\"warning\":\"not saved\"}\n"
        );
    }

    #[test]
    fn bad_requests_get_errors() {
        for bad in [
            &b"not json"[..],
            b"",
            b"{}",
            b"[1,2]",
            br#"{"cmd":"explode"}"#,
            br#"{"cmd":"join","group":"239.1.1.1","extra":1}"#,
            br#"{"cmd":"join","group":"not-an-address"}"#,
            b"\xff\xfe",
        ] {
            let reply = refusal_line(parse_request(bad).unwrap_err());
            let reply: serde_json::Value = serde_json::from_slice(&reply).unwrap();
            assert_eq!(reply["ok"], false, "{bad:?}");
            assert!(reply["error"].as_str().is_some_and(|e| !e.is_empty()));
        }
    }
}
