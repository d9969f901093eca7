//! The data path's second half: `listen` clients, each a join of its own with its own source
//! filter (the per-socket filter of RFC 9776 §3.2, Linux `ip_mc_sf_allow`), and the delivery
//! of datagrams to them.
//!
//! A listener is one end of a `SOCK_SEQPACKET` pair whose other end went to the client (see
//! [`control::listen`]). The event loop owns the daemon's end: non-blocking, so a full queue
//! (the kernel's send buffer: the bound of this consumer's queue) means the datagram is
//! dropped and counted for that listener, and the loop carries on. The end is registered in
//! mio: when the client goes away, however it goes, the hang-up wakes the loop and the join
//! is dropped. Listeners are found by (link, group) in a hash map: nothing per datagram grows
//! with the number of groups, and a datagram read on one link reaches that link's listeners
//! only. Each listener's join is one emulated host's ([`Owner`]).
//!
//! Delivery is batched (`listeners/batch.rs`): a datagram is stored once for the loop turn and queued to
//! each listener that admits it; [`Listeners::flush`] sends each listener's queue in one
//! `sendmmsg` at the end of the turn's reads, in order.

mod batch;

use std::collections::{HashMap, HashSet};
use std::io;
use std::mem;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use control::listen::{monotonic_ns, send_with_fd, seqpacket_pair, DatagramHeader, HEADER_LEN};
use crossbeam_channel::{bounded, Sender};
use log::{debug, info, warn};
use membership::{FilterMode, Host, IfIndex, Instant, SourceFilter};
use mio::unix::SourceFd;
use mio::{Interest, Registry};
use socket2::SockRef;

use batch::{Carrier, Message, Outcome, Queued, Scratch, Turn};

use crate::control::{DaemonReply, Envelope, Part, Request, REPLY_TIMEOUT};
use crate::datapath::{Datagram, UdpDrop};
use crate::ids::{CoreId, HostId, IdVec, LinkId, ListenerId};
use crate::state::Membership;
use crate::tokens::Source;
use control::protocol::ListenerInfo;

/// Send buffer asked for each listener socket: its queue bound (about 1000 small datagrams;
/// the kernel counts each message's full buffer size, not only its bytes).
const QUEUE_BYTES: libc::c_int = 1 << 20;

/// Control-thread side of `listen`: makes the socket pair, hands the loop its end with the
/// request, and on success sends the reply with the client's end attached. `Ok(None)`: done,
/// the connection may close; `Ok(Some(reply))`: refused, answer and carry on.
pub fn hand_over(
    stream: &UnixStream,
    request: Request,
    requests: &Sender<Envelope>,
    waker: &mio::Waker,
) -> io::Result<Option<DaemonReply>> {
    let (ours, theirs) = match seqpacket_pair() {
        Ok(pair) => pair,
        Err(e) => {
            return Ok(Some(DaemonReply::refuse(format!(
                "cannot make a listener socket: {e}"
            ))))
        }
    };
    // Room for a `Part::Working` (the request waits behind a long change) and the reply.
    let (tx, rx) = bounded(2);
    let envelope = Envelope {
        request,
        reply: tx,
        socket: Some(ours),
    };
    if requests.send(envelope).is_err() {
        return Ok(Some(DaemonReply::refuse("the daemon is shutting down")));
    }
    waker.wake()?;
    // If the loop answers after we gave up, `theirs` is closed by then: the hang-up ends the
    // listener it made.
    let reply = loop {
        match rx.recv_timeout(REPLY_TIMEOUT) {
            Ok(Part::Whole { reply, .. }) => break reply,
            // Behind a long change: the loop is alive.
            Ok(Part::Working) => continue,
            Ok(Part::Stream(_)) => unreachable!("listen is answered with a whole reply"),
            Err(_) => break DaemonReply::refuse("daemon did not answer"),
        }
    };
    if !reply.is_ok() {
        return Ok(Some(reply));
    }
    send_with_fd(stream, &reply.to_line(), theirs.as_raw_fd())?;
    Ok(None)
}

crate::counters::counters! {
    /// Data-path counters, in `stats`.
    pub struct DataStats {
        udp_rcv_datagrams: "Well-formed UDP datagrams to a multicast group.",
        udp_delivered: "Copies queued to listeners (one datagram to three listeners: three).",
        udp_drop_not_joined: "Datagrams dropped: the group is not joined on this link.",
        udp_drop_no_listener: "Datagrams dropped: the group is joined, but no listen client takes its data.",
        udp_drop_port: "Datagrams dropped: the group's listeners all want another port.",
        udp_drop_source_filtered: "Datagrams dropped: no listener's filter admits the source.",
        udp_drop_truncated: "Datagrams dropped: shorter than their UDP header.",
        udp_drop_bad_length: "Datagrams dropped: UDP length disagrees with the packet.",
        udp_drop_bad_checksum: "Datagrams dropped: UDP checksum wrong.",
        udp_drop_fragment: "Datagrams dropped: IP fragments (not reassembled).",
        udp_drop_queue_full: "Copies lost because a listener's queue was full.",
        listeners_opened: "listen clients opened.",
        listeners_closed: "listen clients gone (their joins left).",
    }
}

/// Whose join a listener holds: an emulated host, by its link, its number in the daemon, and
/// its core and interface there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub link: LinkId,
    pub host: HostId,
    pub core: CoreId,
    pub ifindex: IfIndex,
}

/// Where listeners are filed: a group on a link.
type Key = (LinkId, IpAddr);

struct Listener {
    id: ListenerId,
    owner: Owner,
    port: Option<u16>,
    /// Sources sorted: the filter as the core holds it, and binary search per datagram.
    filter: SourceFilter,
    socket: OwnedFd,
    /// `--udp-to`: the client's connected UDP socket, to which the loop sends the payloads
    /// itself, and how many are still to go (None: no end).
    forward: Option<(std::net::UdpSocket, Option<u64>)>,
    /// Whether its UDP socket takes GSO messages (until it refuses one).
    gso: bool,
    /// Its COUNT went out: it takes nothing more while it waits to be closed.
    finished: bool,
    /// This turn's datagrams for it, oldest first.
    queue: Vec<Queued>,
    delivered: u64,
    dropped: u64,
}

impl Listener {
    /// Whether the queue holds all that is left of a forwarding listener's COUNT.
    fn count_queued(&self) -> bool {
        matches!(self.forward, Some((_, Some(left))) if self.queue.len() as u64 >= left)
    }

    /// RFC 9776 §3.2 at the socket: INCLUDE admits the listed sources, EXCLUDE the others.
    fn admits(&self, src: &IpAddr) -> bool {
        let listed = self.filter.sources.binary_search(src).is_ok();
        listed == (self.filter.mode == FilterMode::Include)
    }
}

pub struct Listeners {
    registry: Registry,
    by_group: HashMap<Key, Vec<Listener>>,
    group_of: HashMap<ListenerId, Key>,
    next_id: ListenerId,
    /// Listeners found closed, to be ended by [`Listeners::reap`].
    closed: Vec<ListenerId>,
    /// This turn's datagrams, each stored once.
    turn: Turn,
    /// The groups with a listener whose queue holds something.
    pending: Vec<Key>,
    /// Buffers reused by every batch.
    scratch: Scratch,
    plan: Vec<Message>,
    pub stats: DataStats,
}

impl Listeners {
    pub fn new(registry: Registry) -> Listeners {
        Listeners {
            registry,
            by_group: HashMap::new(),
            group_of: HashMap::new(),
            next_id: ListenerId::FIRST,
            closed: Vec::new(),
            turn: Turn::default(),
            pending: Vec::new(),
            scratch: Scratch::default(),
            plan: Vec::new(),
            stats: DataStats::default(),
        }
    }

    /// Joins `group` on `owner`'s interface of its core `host` with `filter` and makes
    /// `socket` its listener.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        &mut self,
        host: &mut Host,
        owner: Owner,
        group: IpAddr,
        port: Option<u16>,
        mut filter: SourceFilter,
        socket: OwnedFd,
        now: Instant,
    ) -> Result<(ListenerId, u32), String> {
        filter.sources.sort();
        filter.sources.dedup();
        if filter.mode == FilterMode::Include && filter.sources.is_empty() {
            return Err(membership::Error::EmptyInclude.to_string());
        }
        let ifindex = owner.ifindex;
        // The join is the listener's own request, like a socket's: closing it changes no
        // other join (RFC 3678; `Host::set_filter`).
        let id = self.next_id;
        let users = host
            .set_filter(ifindex, group, &listener_owner(id), filter.clone(), now)
            .map_err(|e| e.to_string())?;
        self.next_id = id.next();
        set_queue_bytes(&socket);
        let token = Source::Listener(id).token();
        // Readable with nothing to read means hung up: the client never writes.
        if let Err(e) = self.registry.register(
            &mut SourceFd(&socket.as_raw_fd()),
            token,
            Interest::READABLE,
        ) {
            let _ = leave(host, ifindex, group, id, now);
            return Err(format!("cannot watch the listener socket: {e}"));
        }
        info!(
            "listener {id}: {group}{} {} (users {users})",
            port.map(|p| format!(" port {p}")).unwrap_or_default(),
            describe(&filter),
        );
        let key = (owner.link, group);
        self.by_group.entry(key).or_default().push(Listener {
            id,
            owner,
            port,
            filter,
            socket,
            forward: None,
            gso: false,
            finished: false,
            queue: Vec::new(),
            delivered: 0,
            dropped: 0,
        });
        self.group_of.insert(id, key);
        self.stats.listeners_opened += 1;
        Ok((id, users))
    }

    /// A listener socket became readable: the client hung up (or wrote, which it should not).
    pub fn readable(&mut self, id: ListenerId) {
        let Some(key) = self.group_of.get(&id) else {
            return;
        };
        let Some(listener) = self
            .by_group
            .get_mut(key)
            .and_then(|ls| ls.iter_mut().find(|l| l.id == id))
        else {
            return;
        };
        let mut buf = [0u8; 64];
        loop {
            match control::listen::recv_with_fd(&listener.socket, &mut buf) {
                Ok((0, _)) => break self.closed.push(id),
                Ok((n, fd)) => {
                    // The client hands its UDP socket over (`--udp-to`); anything else from
                    // it is ignored.
                    if let (Some(fd), Some(count)) = (fd, forward_count(&buf[..n])) {
                        let udp = std::net::UdpSocket::from(fd);
                        if udp.set_nonblocking(true).is_err() {
                            continue;
                        }
                        // What was queued before counts: the client forwards those itself.
                        let left = (count > 0).then(|| count.saturating_sub(listener.delivered));
                        debug!("listener {id}: the loop forwards its payloads ({count})");
                        listener.forward = Some((udp, left));
                        listener.gso = true;
                        if left == Some(0) {
                            finish(listener);
                            self.closed.push(id);
                            break;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => break self.closed.push(id),
            }
        }
    }

    /// Whether a listener of `group` is on `link` (then [`Listeners::deliver`] does not ask
    /// whether the group is held).
    pub fn takes(&self, link: LinkId, group: IpAddr) -> bool {
        self.by_group.contains_key(&(link, group))
    }

    /// The listeners of `datagram`'s group on `link` that take its port, each with whether its
    /// own filter (its owner's request, not the host's merged filter) admits the source: what
    /// each client is owed, for the test streams' checks. O(the group's listeners).
    pub fn reached(
        &self,
        link: LinkId,
        datagram: &Datagram<'_>,
    ) -> impl Iterator<Item = (ListenerId, bool)> + '_ {
        let src = datagram.src;
        let dport = datagram.dport;
        self.by_group
            .get(&(link, datagram.group))
            .into_iter()
            .flatten()
            .filter(move |l| !l.finished && l.port.is_none_or(|p| p == dport))
            .map(move |l| (l.id, l.admits(&src)))
    }

    /// Queues `datagram`, read on `link`, to every listener of its group on that link whose
    /// port and filter admit it; [`Listeners::flush`] sends the queues. `joined`: whether a
    /// host of the link holds the group at all (a join without a listener receives nothing:
    /// there is nobody to hand the data to); asked only when no listener is there.
    ///
    /// Per datagram: one hash lookup, one copy into the turn, one queue entry per listener
    /// admitting it; no allocation once the buffers have grown to a turn's size.
    pub fn deliver(
        &mut self,
        link: LinkId,
        datagram: &Datagram<'_>,
        joined: impl FnOnce() -> bool,
    ) {
        self.stats.udp_rcv_datagrams += 1;
        if self.turn.is_full(datagram.payload.len()) {
            self.flush();
        }
        let key = (link, datagram.group);
        let Some(listeners) = self.by_group.get_mut(&key) else {
            if joined() {
                self.stats.udp_drop_no_listener += 1;
            } else {
                self.stats.udp_drop_not_joined += 1;
            }
            return;
        };
        let (mut port_matched, mut admitted, mut was_pending) = (false, false, false);
        let mut live = false;
        let mut stored = None;
        for listener in listeners.iter_mut() {
            was_pending |= !listener.queue.is_empty();
            if listener.finished || listener.count_queued() {
                continue;
            }
            live = true;
            if listener.port.is_some_and(|p| p != datagram.dport) {
                continue;
            }
            port_matched = true;
            if !listener.admits(&datagram.src) {
                continue;
            }
            admitted = true;
            let queued = *stored.get_or_insert_with(|| {
                let header = DatagramHeader {
                    src: datagram.src,
                    sport: datagram.sport,
                    group: datagram.group,
                    dport: datagram.dport,
                    rx_ns: monotonic_ns(),
                };
                let mut header_bytes = [0u8; HEADER_LEN];
                header.emit(&mut header_bytes);
                self.turn.store(&header_bytes, datagram.payload)
            });
            listener.queue.push(queued);
        }
        if admitted && !was_pending {
            self.pending.push(key);
        }
        if !live {
            self.stats.udp_drop_no_listener += 1;
        } else if !port_matched {
            self.stats.udp_drop_port += 1;
        } else if !admitted {
            self.stats.udp_drop_source_filtered += 1;
        }
    }

    /// Sends every listener's queue of this turn, one `sendmmsg` each (more only when some
    /// fail), and forgets the turn's datagrams. A listener whose socket is full loses the tail
    /// of its queue (counted); its order and the others' queues are kept.
    pub fn flush(&mut self) {
        if self.turn.is_empty() {
            return;
        }
        for key in self.pending.drain(..) {
            // Gone in the turn (its host removed): nothing to send.
            let Some(listeners) = self.by_group.get_mut(&key) else {
                continue;
            };
            for listener in listeners.iter_mut().filter(|l| !l.queue.is_empty()) {
                let queue = mem::take(&mut listener.queue);
                send_queue(
                    listener,
                    &queue,
                    &self.turn,
                    &mut self.scratch,
                    &mut self.plan,
                    &mut self.stats,
                    &mut self.closed,
                );
                listener.queue = queue;
                listener.queue.clear();
            }
        }
        self.turn.clear();
    }

    pub fn dropped(&mut self, reason: UdpDrop) {
        let counter = match reason {
            UdpDrop::Truncated => &mut self.stats.udp_drop_truncated,
            UdpDrop::BadLength => &mut self.stats.udp_drop_bad_length,
            UdpDrop::BadChecksum => &mut self.stats.udp_drop_bad_checksum,
            UdpDrop::Fragment => &mut self.stats.udp_drop_fragment,
        };
        *counter += 1;
    }

    /// Whether some listener waits to be ended by [`Listeners::reap`].
    pub fn has_closed(&self) -> bool {
        !self.closed.is_empty()
    }

    /// Ends the listeners found closed: each one's join leaves its owner's interface of its
    /// core (`cores[owner.core]`).
    pub fn reap(&mut self, cores: &mut IdVec<CoreId, &mut Host>, now: Instant) {
        for id in std::mem::take(&mut self.closed) {
            let Some(key) = self.group_of.remove(&id) else {
                continue; // already ended
            };
            let group = key.1;
            let listeners = self.by_group.get_mut(&key).expect("indexed group");
            let i = listeners
                .iter()
                .position(|l| l.id == id)
                .expect("indexed listener");
            let listener = listeners.swap_remove(i);
            let _ = self
                .registry
                .deregister(&mut SourceFd(&listener.socket.as_raw_fd()));
            let Owner { core, ifindex, .. } = listener.owner;
            let Some(host) = cores.get_mut(core) else {
                continue;
            };
            let users = leave(host, ifindex, group, id, now);
            if listeners.is_empty() {
                self.by_group.remove(&key);
            }
            self.stats.listeners_closed += 1;
            info!(
                "listener {id} closed: {group} {} left (users {users}; delivered {}, dropped {})",
                describe(&listener.filter),
                listener.delivered,
                listener.dropped
            );
        }
    }

    /// Ends the listeners of the `hosts`, which are gone (removed by a reload, or their link
    /// closed): their sockets close, so their clients see the end; the hosts' groups are left
    /// by whoever removed them. One pass over the listeners for all of them.
    pub fn forget_owners(&mut self, hosts: &HashSet<HostId>) {
        if self.group_of.is_empty() {
            return;
        }
        let mut emptied = Vec::new();
        for (key, listeners) in &mut self.by_group {
            listeners.retain(|l| {
                if !hosts.contains(&l.owner.host) {
                    return true;
                }
                let _ = self
                    .registry
                    .deregister(&mut SourceFd(&l.socket.as_raw_fd()));
                self.group_of.remove(&l.id);
                self.stats.listeners_closed += 1;
                info!("listener {} closed: its host is gone", l.id);
                false
            });
            if listeners.is_empty() {
                emptied.push(*key);
            }
        }
        for key in emptied {
            self.by_group.remove(&key);
        }
    }

    /// For `show`, in the order they were opened; `label` names an owner host.
    pub fn show(&self, label: &dyn Fn(HostId) -> String) -> Vec<ListenerInfo> {
        let mut all: Vec<(&IpAddr, &Listener)> = self
            .by_group
            .iter()
            .flat_map(|((_, g), ls)| ls.iter().map(move |l| (g, l)))
            .collect();
        all.sort_by_key(|(_, l)| l.id);
        all.into_iter()
            .map(|(group, l)| ListenerInfo {
                id: l.id.as_u64(),
                iface: label(l.owner.host),
                group: *group,
                port: l.port,
                filter_mode: l.filter.mode.name().to_string(),
                sources: l.filter.sources.clone(),
                delivered: l.delivered,
                dropped: l.dropped,
            })
            .collect()
    }

    /// Listener joins belong to their connections, not to the state file: takes them out of
    /// `m`, one group's memberships of host `owner` on `link` (one request each).
    pub fn unsaved(&self, link: LinkId, owner: HostId, m: &mut Membership) {
        let Some(listeners) = self.by_group.get(&(link, m.group)) else {
            return;
        };
        for l in listeners.iter().filter(|l| l.owner.host == owner) {
            let name = listener_owner(l.id);
            let found = m
                .requests
                .iter()
                .position(|r| r.owner.as_deref() == Some(name.as_str()));
            if let Some(i) = found {
                m.requests.remove(i);
                m.users = m.users.saturating_sub(1);
            }
        }
    }
}

/// Sends `queue`, listener `l`'s datagrams of `turn`, and counts what became of them.
fn send_queue(
    l: &mut Listener,
    queue: &[Queued],
    turn: &Turn,
    scratch: &mut Scratch,
    plan: &mut Vec<Message>,
    stats: &mut DataStats,
    closed: &mut Vec<ListenerId>,
) {
    let Some((udp, left)) = &mut l.forward else {
        batch::plan(queue.iter().map(|&q| turn.message(q).len()), false, plan);
        let fd = l.socket.as_raw_fd();
        let outcome = batch::drain(Carrier::Listener, plan, |messages| {
            scratch.sendmmsg(fd, messages, |i| turn.message(queue[i]))
        });
        count(l, stats, &outcome);
        if outcome.closed {
            debug!("listener {}: its socket is broken", l.id);
            closed.push(l.id);
        }
        return;
    };
    let fd = udp.as_raw_fd();
    let mut start = 0;
    let mut outcome = Outcome::default();
    while start < queue.len() {
        let rest = &queue[start..];
        batch::plan(rest.iter().map(|&q| turn.payload(q).len()), l.gso, plan);
        let part = batch::drain(Carrier::Udp, plan, |messages| {
            scratch.sendmmsg(fd, messages, |i| turn.payload(rest[i]))
        });
        outcome.sent += part.sent;
        outcome.refused += part.refused;
        outcome.queue_full += part.queue_full;
        if !part.gso_refused {
            break;
        }
        debug!(
            "listener {}: its UDP socket refuses GSO: one message per datagram",
            l.id
        );
        l.gso = false;
        start += usize::try_from(part.sent + part.refused).expect("at most a turn");
    }
    // A refused send (nobody on that port) loses the datagram as UDP would: delivered.
    outcome.sent += outcome.refused;
    let finished = match left {
        Some(left) => {
            *left = left.saturating_sub(outcome.sent);
            *left == 0
        }
        None => false,
    };
    count(l, stats, &outcome);
    if finished {
        finish(l);
        closed.push(l.id);
    }
}

fn count(l: &mut Listener, stats: &mut DataStats, outcome: &Outcome) {
    l.delivered += outcome.sent;
    l.dropped += outcome.queue_full;
    stats.udp_delivered += outcome.sent;
    stats.udp_drop_queue_full += outcome.queue_full;
}

/// The COUNT of a `--udp-to` hand-over message, if `message` is one.
fn forward_count(message: &[u8]) -> Option<u64> {
    let count = message.strip_prefix(&control::listen::FORWARD_MAGIC[..])?;
    Some(u64::from_be_bytes(count.try_into().ok()?))
}

/// Tells a forwarding listener's client that its COUNT went out; the listener is then closed.
fn finish(listener: &mut Listener) {
    listener.forward = None;
    listener.finished = true;
    let _ = SockRef::from(&listener.socket).send_with_flags(
        &control::listen::DONE_MAGIC[..],
        libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
    );
}

/// The owner of listener `id`'s join in the core. `join --owner` and `filter` refuse names
/// of this form, so that no client can change a listener's join.
pub fn listener_owner(id: ListenerId) -> String {
    format!("{LISTENER_OWNER_PREFIX}{id}")
}

/// What every listener's owner name begins with.
pub const LISTENER_OWNER_PREFIX: &str = "listen-";

/// Drops listener `id`'s request; returns the requests left.
fn leave(host: &mut Host, ifindex: IfIndex, group: IpAddr, id: ListenerId, now: Instant) -> u32 {
    let none = SourceFilter::include(Vec::new());
    match host.set_filter(ifindex, group, &listener_owner(id), none, now) {
        Ok(users) => users,
        Err(e) => {
            warn!("listener {id} leaving {group}: {e}");
            0
        }
    }
}

fn describe(filter: &SourceFilter) -> String {
    let sources: Vec<String> = filter.sources.iter().map(|s| s.to_string()).collect();
    format!("{} {{{}}}", filter.mode.name(), sources.join(","))
}

fn set_queue_bytes(socket: &OwnedFd) {
    for option in [libc::SO_SNDBUFFORCE, libc::SO_SNDBUF] {
        // SAFETY: setsockopt with a pointer to a local int and its size.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&QUEUE_BYTES as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
