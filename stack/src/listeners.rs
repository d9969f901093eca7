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

use std::collections::{HashMap, HashSet};
use std::io;
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
    let (tx, rx) = bounded(1);
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
    delivered: u64,
    dropped: u64,
}

impl Listener {
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
    /// One message: header, then payload.
    message: Vec<u8>,
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
            message: Vec::with_capacity(control::listen::MAX_MESSAGE),
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

    /// Queues `datagram`, read on `link`, to every listener of its group on that link whose
    /// port and filter admit it. `joined`: whether a host of the link holds the group at all
    /// (a join without a listener receives nothing: there is nobody to hand the data to);
    /// asked only when no listener is there.
    pub fn deliver(
        &mut self,
        link: LinkId,
        datagram: &Datagram<'_>,
        joined: impl FnOnce() -> bool,
    ) {
        self.stats.udp_rcv_datagrams += 1;
        let Some(listeners) = self.by_group.get_mut(&(link, datagram.group)) else {
            if joined() {
                self.stats.udp_drop_no_listener += 1;
            } else {
                self.stats.udp_drop_not_joined += 1;
            }
            return;
        };
        let header = DatagramHeader {
            src: datagram.src,
            sport: datagram.sport,
            group: datagram.group,
            dport: datagram.dport,
            rx_ns: monotonic_ns(),
        };
        let mut header_bytes = [0u8; HEADER_LEN];
        header.emit(&mut header_bytes);
        self.message.clear();
        self.message.extend_from_slice(&header_bytes);
        self.message.extend_from_slice(datagram.payload);
        let (mut port_matched, mut admitted) = (false, false);
        for listener in listeners.iter_mut() {
            if listener.port.is_some_and(|p| p != datagram.dport) {
                continue;
            }
            port_matched = true;
            if !listener.admits(&datagram.src) {
                continue;
            }
            admitted = true;
            if let Some((udp, left)) = &mut listener.forward {
                // The payload, straight to the client's UDP socket. A full socket buffer
                // drops it (counted); a refused send (nobody on that port) loses it, as UDP
                // would.
                match udp.send(datagram.payload) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        listener.dropped += 1;
                        self.stats.udp_drop_queue_full += 1;
                    }
                    _ => {
                        listener.delivered += 1;
                        self.stats.udp_delivered += 1;
                        if let Some(left) = left {
                            *left = left.saturating_sub(1);
                            if *left == 0 {
                                finish(listener);
                                self.closed.push(listener.id);
                            }
                        }
                    }
                }
                continue;
            }
            // MSG_NOSIGNAL: a hung-up client is EPIPE, not SIGPIPE.
            let sent = SockRef::from(&listener.socket)
                .send_with_flags(&self.message, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL);
            let Err(error) = sent else {
                listener.delivered += 1;
                self.stats.udp_delivered += 1;
                continue;
            };
            listener.dropped += 1;
            self.stats.udp_drop_queue_full += 1;
            match error.raw_os_error() {
                Some(libc::EAGAIN | libc::ENOBUFS | libc::EMSGSIZE | libc::EINTR) => {}
                _ => {
                    debug!("listener {}: {error}", listener.id);
                    self.closed.push(listener.id);
                }
            }
        }
        if !port_matched {
            self.stats.udp_drop_port += 1;
        } else if !admitted {
            self.stats.udp_drop_source_filtered += 1;
        }
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

/// The COUNT of a `--udp-to` hand-over message, if `message` is one.
fn forward_count(message: &[u8]) -> Option<u64> {
    let count = message.strip_prefix(&control::listen::FORWARD_MAGIC[..])?;
    Some(u64::from_be_bytes(count.try_into().ok()?))
}

/// Tells a forwarding listener's client that its COUNT went out; the listener is then closed.
fn finish(listener: &mut Listener) {
    listener.forward = None;
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
