//! `--http ADDR:PORT`: a read-only view of the daemon over HTTP/1.1 — `/metrics` for
//! Prometheus, `/api/...` JSON ([`control::http_api`]) and `/`, a live page.
//!
//! The server is one thread with its own mio loop. It never touches the daemon's state: a
//! request that needs it becomes a [`Query`] sent over a channel to the event loop (whose
//! Waker it pokes), and the loop answers with a [`Snapshot`] between packet bursts, walking big
//! tables a slice per turn (see `daemon::http`). The answer comes back on a second channel with
//! this thread's own Waker.
//!
//! What a client cannot do: hold more than [`MAX_CONNECTIONS`] connections (the oldest one
//! still sending its request is closed to make room), take more than [`REQUEST_TIMEOUT`] to
//! send a request (slowloris), send a request head over [`MAX_HEAD`] bytes or any body (413,
//! then the connection closes), or keep a response waiting more than [`WRITE_TIMEOUT`]. Each
//! connection carries one request (`Connection: close`), so every buffer is freed with it.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use control::http_api::{DelayHistograms, GroupsPage, HostsPage, LinksReply, Overview};
use control::protocol::{DelaysReply, StatsReply};
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use log::{debug, info, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

mod routes;

use routes::Route;

/// Connections held at once; beyond them the oldest one still reading its request is closed.
pub const MAX_CONNECTIONS: usize = 256;
/// The longest request head (request line and headers) read.
pub const MAX_HEAD: usize = 8 * 1024;
/// From the connection's accept to its last request byte.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the daemon's event loop may take to answer before the client gets a 503.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to read its response.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Queries waiting for the event loop at once, from every connection: beyond them, 503.
const MAX_QUERIES_IN_FLIGHT: usize = 64;

const LISTENER: Token = Token(0);
const WAKE: Token = Token(1);
const FIRST_CONNECTION: usize = 2;

/// What the HTTP thread asks the event loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    Overview,
    /// Counters, gauges and (with --delays) the delay histograms.
    Metrics,
    Stats,
    Links,
    /// The `delays` reply, at most `limit` pairs per list.
    Delays {
        limit: usize,
    },
    Histograms,
    /// Hosts in link order; `search` keeps those whose address, MAC or link contains it.
    Hosts {
        offset: u64,
        limit: u64,
        search: Option<String>,
    },
    /// Group records, of one host (by its IPv4 or IPv6 link-local address) or of all.
    Groups {
        host: Option<std::net::IpAddr>,
        offset: u64,
        limit: u64,
    },
    /// The latest test run's progress and results (`test status`, no host listed).
    Test,
    /// The `streams` reply: the streams and a page of receivers.
    Streams(control::protocol::StreamsArgs),
    /// A page of the (link, source, group) flows received, their receivers summed.
    StreamFlows {
        iface: Option<String>,
        group: Option<std::net::IpAddr>,
        offset: u64,
        limit: u64,
    },
}

/// The event loop's answer to a [`Query`].
#[derive(Debug)]
pub enum Snapshot {
    Overview(Overview),
    Metrics {
        overview: Overview,
        stats: Box<StatsReply>,
        delays: DelayHistograms,
        /// One-way latency of the test streams, per link (none while streams are unchecked).
        latency: std::collections::BTreeMap<String, control::prometheus::Histogram>,
        /// Test runs' join and leave delays (zap times), every run's; none before the first.
        test_delays: Option<
            Box<(
                control::prometheus::Histogram,
                control::prometheus::Histogram,
            )>,
        >,
    },
    Stats(StatsReply),
    Links(LinksReply),
    Delays(DelaysReply),
    Histograms(DelayHistograms),
    Hosts(HostsPage),
    Groups(GroupsPage),
    Test(control::testrun::TestStatusReply),
    Streams(Box<control::protocol::StreamsReply>),
    StreamFlows(control::streams::FlowsPage),
}

/// A query the loop cannot answer: the HTTP status and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

/// A query on its way to the loop; `ticket` comes back with the answer.
pub struct Asked {
    pub query: Query,
    pub ticket: Ticket,
}

/// Which connection asked: its slab key and its serial number (keys are reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    key: usize,
    serial: u64,
}

/// The loop's side of the server: the queries to answer, where the answers go.
pub struct LoopSide {
    pub queries: Receiver<Asked>,
    answers: Sender<(Ticket, Result<Snapshot, Refusal>)>,
    waker: Arc<Waker>,
}

impl LoopSide {
    /// Hands an answer to the HTTP thread.
    pub fn answer(&self, ticket: Ticket, answer: Result<Snapshot, Refusal>) {
        if self.answers.send((ticket, answer)).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

/// Binds `addr` and starts the server thread; queries wake the event loop through
/// `loop_waker`.
pub fn start(addr: SocketAddr, loop_waker: Arc<Waker>) -> anyhow::Result<LoopSide> {
    use anyhow::Context as _;
    let listener = TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    let local_addr = listener.local_addr()?;
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
    let (queries_tx, queries) = crossbeam_channel::bounded(MAX_QUERIES_IN_FLIGHT);
    let (answers, answers_rx) = crossbeam_channel::unbounded();
    let server = Server {
        poll,
        listener,
        connections: Slab::new(),
        next_serial: 0,
        queries: queries_tx,
        answers: answers_rx,
        loop_waker,
    };
    std::thread::Builder::new()
        .name("http".into())
        .spawn(move || {
            if let Err(e) = server.run() {
                warn!("HTTP server stopped: {e}");
            }
        })
        .context("cannot start the HTTP thread")?;
    if local_addr.ip().is_loopback() {
        info!("HTTP view on http://{local_addr}/ (loopback only)");
    } else {
        warn!(
            "HTTP view on http://{local_addr}/: not a loopback address (--http-public), readable \
             from the network without authentication"
        );
    }
    Ok(LoopSide {
        queries,
        answers,
        waker,
    })
}

enum Phase {
    /// Reading the request head.
    Reading,
    /// Waiting for the event loop's answer to this route.
    Waiting(Route),
    /// Writing the response from `written` on; the connection closes after it.
    Writing { response: Vec<u8>, written: usize },
}

struct Connection {
    stream: TcpStream,
    serial: u64,
    head: Vec<u8>,
    phase: Phase,
    /// When the current phase must be over.
    deadline: Instant,
    /// The request's method is HEAD: the response goes without its body.
    head_only: bool,
}

struct Server {
    poll: Poll,
    listener: TcpListener,
    connections: Slab<Connection>,
    next_serial: u64,
    queries: Sender<Asked>,
    answers: Receiver<(Ticket, Result<Snapshot, Refusal>)>,
    loop_waker: Arc<Waker>,
}

impl Server {
    fn run(mut self) -> io::Result<()> {
        self.poll
            .registry()
            .register(&mut self.listener, LISTENER, Interest::READABLE)?;
        let mut events = Events::with_capacity(256);
        loop {
            let now = Instant::now();
            let timeout = self
                .connections
                .iter()
                .map(|(_, c)| c.deadline.saturating_duration_since(now))
                .min()
                .unwrap_or(Duration::from_secs(60));
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKE => {}
                    Token(t) => {
                        let key = t - FIRST_CONNECTION;
                        if event.is_readable() || event.is_read_closed() {
                            self.read(key);
                        }
                        if event.is_writable() {
                            self.write(key);
                        }
                    }
                }
            }
            self.take_answers();
            self.expire();
        }
    }

    fn accept(&mut self) {
        loop {
            let (mut stream, peer) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    // Out of descriptors, most likely: the connections held are served.
                    warn!("HTTP: cannot accept: {e}");
                    return;
                }
            };
            if self.connections.len() >= MAX_CONNECTIONS && !self.evict_oldest_reader() {
                debug!("HTTP: {peer} refused, {MAX_CONNECTIONS} connections busy");
                continue; // dropped: closed
            }
            let entry = self.connections.vacant_entry();
            let token = Token(entry.key() + FIRST_CONNECTION);
            if let Err(e) = self.poll.registry().register(
                &mut stream,
                token,
                Interest::READABLE | Interest::WRITABLE,
            ) {
                warn!("HTTP: cannot register a connection: {e}");
                continue;
            }
            self.next_serial += 1;
            entry.insert(Connection {
                stream,
                serial: self.next_serial,
                head: Vec::new(),
                phase: Phase::Reading,
                deadline: Instant::now() + REQUEST_TIMEOUT,
                head_only: false,
            });
        }
    }

    /// Closes the connection that has been sending its request the longest; false if every
    /// connection has sent its request (and is waiting for or reading its answer).
    fn evict_oldest_reader(&mut self) -> bool {
        let oldest = self
            .connections
            .iter()
            .filter(|(_, c)| matches!(c.phase, Phase::Reading))
            .min_by_key(|(_, c)| c.deadline)
            .map(|(key, _)| key);
        match oldest {
            Some(key) => {
                self.close(key);
                true
            }
            None => false,
        }
    }

    fn close(&mut self, key: usize) {
        if let Some(mut connection) = self.connections.try_remove(key) {
            let _ = self.poll.registry().deregister(&mut connection.stream);
        }
    }

    fn read(&mut self, key: usize) {
        let Some(connection) = self.connections.get_mut(key) else {
            return;
        };
        if !matches!(connection.phase, Phase::Reading) {
            return; // one request per connection: what follows it is not read
        }
        let mut chunk = [0u8; 4096];
        loop {
            match connection.stream.read(&mut chunk) {
                Ok(0) => {
                    self.close(key); // hung up before a whole request
                    return;
                }
                Ok(n) => {
                    let room = MAX_HEAD + 1 - connection.head.len();
                    connection.head.extend_from_slice(&chunk[..n.min(room)]);
                    if connection.head.len() > MAX_HEAD {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.close(key);
                    return;
                }
            }
        }
        let parsed = routes::parse_request(&connection.head);
        match parsed {
            routes::Parsed::Partial => {}
            routes::Parsed::Done { route, head_only } => {
                connection.head_only = head_only;
                connection.head = Vec::new();
                self.dispatch(key, route);
            }
            routes::Parsed::Refused(refusal) => {
                connection.head = Vec::new();
                self.respond(key, routes::error_response(&refusal));
            }
        }
    }

    /// Answers `route` at once, or asks the loop.
    fn dispatch(&mut self, key: usize, route: Route) {
        match route.query() {
            None => {
                let response = route.static_response();
                self.respond(key, response);
            }
            Some(query) => {
                let connection = &mut self.connections[key];
                let ticket = Ticket {
                    key,
                    serial: connection.serial,
                };
                match self.queries.try_send(Asked { query, ticket }) {
                    Ok(()) => {
                        connection.phase = Phase::Waiting(route);
                        connection.deadline = Instant::now() + ANSWER_TIMEOUT;
                        let _ = self.loop_waker.wake();
                    }
                    Err(_) => {
                        let refusal = Refusal {
                            status: 503,
                            message: "too many requests waiting for the daemon".into(),
                        };
                        self.respond(key, routes::error_response(&refusal));
                    }
                }
            }
        }
    }

    fn take_answers(&mut self) {
        loop {
            let (ticket, answer) = match self.answers.try_recv() {
                Ok(answer) => answer,
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
            };
            let Some(connection) = self.connections.get_mut(ticket.key) else {
                continue; // closed meanwhile
            };
            if connection.serial != ticket.serial {
                continue; // its slot holds a newer connection
            }
            let Phase::Waiting(route) = std::mem::replace(&mut connection.phase, Phase::Reading)
            else {
                continue;
            };
            let response = match answer {
                Ok(snapshot) => route.render(snapshot),
                Err(refusal) => routes::error_response(&refusal),
            };
            self.respond(ticket.key, response);
        }
    }

    /// Starts writing `response` (the body dropped for HEAD) and closes when it is out.
    fn respond(&mut self, key: usize, response: routes::Response) {
        let Some(connection) = self.connections.get_mut(key) else {
            return;
        };
        connection.phase = Phase::Writing {
            response: response.into_bytes(connection.head_only),
            written: 0,
        };
        connection.deadline = Instant::now() + WRITE_TIMEOUT;
        self.write(key);
    }

    fn write(&mut self, key: usize) {
        let Some(connection) = self.connections.get_mut(key) else {
            return;
        };
        let Phase::Writing { response, written } = &mut connection.phase else {
            return;
        };
        while *written < response.len() {
            match connection.stream.write(&response[*written..]) {
                Ok(0) => break,
                Ok(n) => *written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let _ = connection.stream.shutdown(Shutdown::Write);
        self.close(key);
    }

    /// Closes what is past its deadline; a query the loop did not answer in time gets a 503.
    fn expire(&mut self) {
        let now = Instant::now();
        let late: Vec<usize> = self
            .connections
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(key, _)| key)
            .collect();
        for key in late {
            if matches!(self.connections[key].phase, Phase::Waiting(_)) {
                let refusal = Refusal {
                    status: 503,
                    message: "the daemon did not answer in time".into(),
                };
                self.respond(key, routes::error_response(&refusal));
            } else {
                self.close(key);
            }
        }
    }
}
