//! Batched delivery: the datagrams of one loop turn are stored once ([`Turn`]), each listener
//! queues the ones it admits ([`Queued`]), and at the end of the turn each listener's queue
//! goes out in one `sendmmsg(2)` (or a few, when some fail): a datagram to 100 listeners costs
//! 100 queue entries, and a turn 100 system calls, not 100 per datagram.
//!
//! A forwarding listener's (`--udp-to`) runs of equal-sized payloads go as one UDP GSO message
//! each (`UDP_SEGMENT`, Linux ≥ 4.18): the kernel cuts it into the same datagrams that one
//! send each would make, at the cost of one pass down the stack. Where the socket refuses GSO
//! (a route that cannot take it), the listener falls back to one message per datagram.
//!
//! Order is kept: each queue is sent from its head, and what fails on a full socket buffer is
//! the tail, dropped whole and counted (the bound is the kernel's send buffer, as before).

use std::io;
use std::mem;
use std::os::fd::RawFd;

use control::listen::HEADER_LEN;

/// The most datagrams a turn holds before they are sent: `sendmmsg` takes at most 1024
/// messages (UIO_MAXIOV) in one call.
pub(super) const TURN_DATAGRAMS: usize = 1024;
/// The most bytes a turn holds before they are sent (a burst of large datagrams).
pub(super) const TURN_BYTES: usize = 1 << 20;
/// Segments in one UDP GSO message (the kernel's UDP_MAX_SEGMENTS is 64 or more).
const GSO_SEGMENTS: usize = 64;
/// Payload bytes in one UDP GSO message: within one IP datagram's 65,535 with headers.
const GSO_BYTES: usize = 65_000;
/// `UDP_SEGMENT` (linux/udp.h): libc does not name it for every target.
const UDP_SEGMENT: libc::c_int = 103;

/// One datagram of the turn: its place in [`Turn`]. Valid until the turn is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Queued(u32);

/// The datagrams of one loop turn, each stored once as its listener message: the header, then
/// the payload (a forwarding listener sends the payload alone).
#[derive(Default)]
pub(super) struct Turn {
    bytes: Vec<u8>,
    /// Where each datagram's message starts in `bytes`, and its length.
    messages: Vec<(usize, usize)>,
}

impl Turn {
    /// Whether the turn must be sent before another datagram of `payload_len` bytes is stored.
    pub fn is_full(&self, payload_len: usize) -> bool {
        self.messages.len() >= TURN_DATAGRAMS
            || (!self.messages.is_empty()
                && self.bytes.len() + HEADER_LEN + payload_len > TURN_BYTES)
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Stores one datagram's message. The caller checks [`Turn::is_full`] first.
    pub fn store(&mut self, header: &[u8; HEADER_LEN], payload: &[u8]) -> Queued {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(header);
        self.bytes.extend_from_slice(payload);
        self.messages.push((start, HEADER_LEN + payload.len()));
        Queued(u32::try_from(self.messages.len() - 1).expect("at most TURN_DATAGRAMS"))
    }

    /// Header and payload, as a listener socket carries it.
    pub fn message(&self, queued: Queued) -> &[u8] {
        let (start, len) = self.messages[queued.0 as usize];
        &self.bytes[start..start + len]
    }

    /// The UDP payload alone, as a forwarding listener sends it.
    pub fn payload(&self, queued: Queued) -> &[u8] {
        &self.message(queued)[HEADER_LEN..]
    }

    /// Forgets the datagrams (every queue holding them was sent); keeps the memory.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.messages.clear();
    }
}

/// How a listener's messages are sent and what a failure means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Carrier {
    /// The listener socket itself (`SOCK_SEQPACKET`): header and payload per message.
    Listener,
    /// The client's connected UDP socket (`--udp-to`): payloads, in GSO runs where planned.
    Udp,
}

/// One message of a batch: `segments` consecutive datagrams of the queue from `first` (more
/// than one only in a UDP GSO message, all of `segment_len` bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Message {
    pub first: usize,
    pub segments: usize,
    pub segment_len: usize,
}

/// What became of one listener's queue.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Outcome {
    /// Datagrams the kernel took.
    pub sent: u64,
    /// Datagrams a forwarding listener's UDP socket refused (nobody on that port: lost as UDP
    /// loses them, and counted delivered as before).
    pub refused: u64,
    /// Datagrams dropped on a full queue (the tail of the batch), or on a socket found broken.
    pub queue_full: u64,
    /// The listener socket is broken (the client is gone): end the listener.
    pub closed: bool,
    /// The UDP socket refused a GSO message: send this listener one message per datagram.
    pub gso_refused: bool,
}

/// Splits `lens` (the queued datagrams' sizes, in order) into messages: with GSO, each run of
/// equal sizes up to [`GSO_SEGMENTS`] and [`GSO_BYTES`] is one message; otherwise one each.
pub(super) fn plan(lens: impl Iterator<Item = usize>, gso: bool, out: &mut Vec<Message>) {
    out.clear();
    for (i, len) in lens.enumerate() {
        if let Some(last) = out.last_mut() {
            let fits = gso
                && last.segment_len == len
                && len > 0
                && last.segments < GSO_SEGMENTS
                && (last.segments + 1) * len <= GSO_BYTES;
            if fits {
                last.segments += 1;
                continue;
            }
        }
        out.push(Message {
            first: i,
            segments: 1,
            segment_len: len,
        });
    }
}

/// Sends `messages` in order through `send` (one `sendmmsg`: it returns how many messages
/// went, or the error of the first when none did) until all are sent or a failure ends the
/// batch, as the [`Carrier`] says: a full socket drops the rest; on a UDP socket a refused
/// message is lost alone and the others go on; a GSO refusal stops for a new plan.
pub(super) fn drain(
    carrier: Carrier,
    messages: &[Message],
    mut send: impl FnMut(&[Message]) -> io::Result<usize>,
) -> Outcome {
    let mut outcome = Outcome::default();
    let segments = |ms: &[Message]| ms.iter().map(|m| m.segments as u64).sum::<u64>();
    let mut rest = messages;
    while !rest.is_empty() {
        let error = match send(rest) {
            Ok(0) => io::Error::from_raw_os_error(libc::EAGAIN),
            Ok(n) => {
                let n = n.min(rest.len());
                outcome.sent += segments(&rest[..n]);
                rest = &rest[n..];
                continue;
            }
            Err(e) => e,
        };
        let errno = error.raw_os_error().unwrap_or(libc::EIO);
        if errno == libc::EINTR {
            continue;
        }
        match carrier {
            Carrier::Listener => match errno {
                libc::EAGAIN | libc::ENOBUFS => {
                    outcome.queue_full += segments(rest);
                    break;
                }
                libc::EMSGSIZE => {
                    outcome.queue_full += segments(&rest[..1]);
                    rest = &rest[1..];
                }
                _ => {
                    outcome.queue_full += segments(rest);
                    outcome.closed = true;
                    break;
                }
            },
            Carrier::Udp => match errno {
                libc::EAGAIN => {
                    outcome.queue_full += segments(rest);
                    break;
                }
                libc::EIO | libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP
                    if rest[0].segments > 1 =>
                {
                    outcome.gso_refused = true;
                    break;
                }
                _ => {
                    outcome.refused += segments(&rest[..1]);
                    rest = &rest[1..];
                }
            },
        }
    }
    outcome
}

/// Reused buffers of the `sendmmsg` calls: one iovec per datagram, one header per message, one
/// `UDP_SEGMENT` control message per GSO message. Emptied after each call: no pointer in them
/// outlives it.
#[derive(Default)]
pub(super) struct Scratch {
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    control: Vec<u8>,
}

// SAFETY: the raw pointers in the buffers are written and used within one `sendmmsg` call and
// cleared before it returns; between calls the buffers are empty.
unsafe impl Send for Scratch {}

/// Space for one `UDP_SEGMENT` control message (a u16).
fn segment_cmsg_space() -> usize {
    // SAFETY: CMSG_SPACE is a pure size computation.
    unsafe { libc::CMSG_SPACE(mem::size_of::<u16>() as u32) as usize }
}

impl Scratch {
    /// One `sendmmsg` of `messages` on `fd`, whose datagrams are `parts(i)` of the queue; the
    /// number of messages sent.
    pub fn sendmmsg<'a>(
        &mut self,
        fd: RawFd,
        messages: &[Message],
        part: impl Fn(usize) -> &'a [u8],
    ) -> io::Result<usize> {
        let Some(last) = messages.last() else {
            return Ok(0);
        };
        let first = messages[0].first;
        let datagrams = last.first + last.segments - first;
        let space = segment_cmsg_space();
        self.iovecs.clear();
        self.iovecs.extend((first..first + datagrams).map(|i| {
            let bytes = part(i);
            libc::iovec {
                iov_base: bytes.as_ptr() as *mut libc::c_void,
                iov_len: bytes.len(),
            }
        }));
        self.control.clear();
        self.control.resize(space * messages.len(), 0);
        self.headers.clear();
        for (n, m) in messages.iter().enumerate() {
            // SAFETY: a zeroed mmsghdr is a valid "no name, no control" header.
            let mut h: libc::mmsghdr = unsafe { mem::zeroed() };
            h.msg_hdr.msg_iov = self.iovecs[m.first - first..].as_mut_ptr();
            h.msg_hdr.msg_iovlen = m.segments as _;
            if m.segments > 1 {
                let control = &mut self.control[n * space..(n + 1) * space];
                h.msg_hdr.msg_control = control.as_mut_ptr().cast();
                h.msg_hdr.msg_controllen = space as _;
                // SAFETY: the control buffer is CMSG_SPACE(u16) bytes, room for exactly the
                // one message CMSG_FIRSTHDR finds in it.
                unsafe {
                    let cmsg = libc::CMSG_FIRSTHDR(&h.msg_hdr);
                    (*cmsg).cmsg_level = libc::SOL_UDP;
                    (*cmsg).cmsg_type = UDP_SEGMENT;
                    (*cmsg).cmsg_len = libc::CMSG_LEN(mem::size_of::<u16>() as u32) as _;
                    let size = u16::try_from(m.segment_len).expect("GSO segments fit a datagram");
                    std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), size);
                }
            }
            self.headers.push(h);
        }
        // SAFETY: each header points at iovecs over buffers borrowed for this call and at its
        // own control space; all outlive the call. MSG_NOSIGNAL: a hung-up peer is EPIPE.
        let n = unsafe {
            libc::sendmmsg(
                fd,
                self.headers.as_mut_ptr(),
                self.headers.len() as libc::c_uint,
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        let result = if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        };
        self.headers.clear();
        self.iovecs.clear();
        result
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsRawFd, OwnedFd};

    use super::*;

    fn singles(n: usize) -> Vec<Message> {
        let mut out = Vec::new();
        plan(std::iter::repeat_n(10, n), false, &mut out);
        out
    }

    #[test]
    fn runs_of_equal_sizes_make_gso_messages() {
        let mut out = Vec::new();
        let lens = [64, 64, 64, 100, 64, 64];
        plan(lens.iter().copied(), true, &mut out);
        let shape: Vec<(usize, usize, usize)> = out
            .iter()
            .map(|m| (m.first, m.segments, m.segment_len))
            .collect();
        assert_eq!(shape, [(0, 3, 64), (3, 1, 100), (4, 2, 64)]);
        plan(lens.iter().copied(), false, &mut out);
        assert_eq!(out.len(), 6);
        // Capped by segments and by bytes.
        plan(std::iter::repeat_n(8, 150), true, &mut out);
        assert_eq!(
            out.iter().map(|m| m.segments).collect::<Vec<_>>(),
            [64, 64, 22]
        );
        plan(std::iter::repeat_n(30_000, 5), true, &mut out);
        assert_eq!(
            out.iter().map(|m| m.segments).collect::<Vec<_>>(),
            [2, 2, 1]
        );
    }

    #[test]
    fn partial_sends_go_on_from_where_they_stopped() {
        let messages = singles(10);
        let mut calls = Vec::new();
        let outcome = drain(Carrier::Listener, &messages, |rest| {
            calls.push(rest[0].first);
            Ok(rest.len().min(4))
        });
        assert_eq!(calls, [0, 4, 8]);
        assert_eq!(outcome.sent, 10);
        assert_eq!(outcome.queue_full, 0);
    }

    #[test]
    fn a_full_queue_drops_the_tail_in_order() {
        let messages = singles(10);
        let mut script = vec![Ok(3), Err(io::Error::from_raw_os_error(libc::EINTR)), Ok(2)];
        script.push(Err(io::Error::from_raw_os_error(libc::EAGAIN)));
        script.reverse();
        let outcome = drain(Carrier::Listener, &messages, |_| script.pop().unwrap());
        assert_eq!(
            (outcome.sent, outcome.queue_full, outcome.closed),
            (5, 5, false)
        );
        let mut script = vec![Ok(6), Err(io::Error::from_raw_os_error(libc::EAGAIN))];
        script.reverse();
        let outcome = drain(Carrier::Udp, &messages, |_| script.pop().unwrap());
        assert_eq!((outcome.sent, outcome.queue_full), (6, 4));
    }

    #[test]
    fn failures_are_told_apart_by_carrier() {
        let messages = singles(4);
        // A refused UDP message is lost alone; the rest go on.
        let mut script = vec![
            Ok(1),
            Err(io::Error::from_raw_os_error(libc::ECONNREFUSED)),
            Ok(2),
        ];
        script.reverse();
        let outcome = drain(Carrier::Udp, &messages, |_| script.pop().unwrap());
        assert_eq!(
            (outcome.sent, outcome.refused, outcome.queue_full),
            (3, 1, 0)
        );
        // A broken listener socket ends the listener; what was left is counted.
        let mut script = vec![Ok(1), Err(io::Error::from_raw_os_error(libc::EPIPE))];
        script.reverse();
        let outcome = drain(Carrier::Listener, &messages, |_| script.pop().unwrap());
        assert_eq!(
            (outcome.sent, outcome.queue_full, outcome.closed),
            (1, 3, true)
        );
        // An oversized message is dropped alone.
        let mut script = vec![Err(io::Error::from_raw_os_error(libc::EMSGSIZE)), Ok(3)];
        script.reverse();
        let outcome = drain(Carrier::Listener, &messages, |_| script.pop().unwrap());
        assert_eq!(
            (outcome.sent, outcome.queue_full, outcome.closed),
            (3, 1, false)
        );
        // A GSO message refused stops the batch for a plan without GSO.
        let mut gso = Vec::new();
        plan([5, 5, 5, 7].into_iter(), true, &mut gso);
        let mut script = vec![Err(io::Error::from_raw_os_error(libc::EIO))];
        let outcome = drain(Carrier::Udp, &gso, |_| script.pop().unwrap());
        assert_eq!((outcome.sent, outcome.gso_refused), (0, true));
    }

    #[test]
    fn a_turn_is_bounded() {
        let mut turn = Turn::default();
        let header = [1u8; HEADER_LEN];
        assert!(!turn.is_full(TURN_BYTES * 2), "one datagram always fits");
        let q = turn.store(&header, b"abc");
        assert_eq!(turn.payload(q), b"abc");
        assert_eq!(&turn.message(q)[..HEADER_LEN], &header[..]);
        assert!(turn.is_full(TURN_BYTES));
        while !turn.is_full(1) {
            turn.store(&header, b"x");
        }
        assert_eq!(turn.messages.len(), TURN_DATAGRAMS);
        turn.clear();
        assert!(turn.is_empty());
    }

    fn seqpacket() -> (OwnedFd, OwnedFd) {
        control::listen::seqpacket_pair().unwrap()
    }

    /// A real socket: the kernel takes what its buffer holds, in order, and the rest is the
    /// counted tail.
    #[test]
    fn sendmmsg_on_a_small_buffer_keeps_order_and_counts_the_rest() {
        let (ours, theirs) = seqpacket();
        let small: libc::c_int = 4096;
        // SAFETY: setsockopt with a pointer to a local int and its size.
        unsafe {
            libc::setsockopt(
                ours.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&small as *const libc::c_int).cast(),
                mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let mut turn = Turn::default();
        let queue: Vec<Queued> = (0u32..200)
            .map(|i| turn.store(&[0; HEADER_LEN], &i.to_be_bytes()))
            .collect();
        let messages = singles(queue.len());
        let mut scratch = Scratch::default();
        let outcome = drain(Carrier::Listener, &messages, |rest| {
            scratch.sendmmsg(ours.as_raw_fd(), rest, |i| turn.message(queue[i]))
        });
        assert!(outcome.sent > 0 && outcome.queue_full > 0, "{outcome:?}");
        assert_eq!(outcome.sent + outcome.queue_full, 200);
        let mut buf = [0u8; 256];
        for expected in 0..outcome.sent as u32 {
            // SAFETY: recv into a local buffer within its length.
            let n = unsafe {
                libc::recv(
                    theirs.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            assert_eq!(n as usize, HEADER_LEN + 4);
            assert_eq!(&buf[HEADER_LEN..HEADER_LEN + 4], &expected.to_be_bytes());
        }
    }

    /// A GSO message to a real UDP socket arrives as the datagrams one send each would make.
    #[test]
    fn gso_runs_arrive_as_separate_datagrams() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.connect(rx.local_addr().unwrap()).unwrap();
        let mut turn = Turn::default();
        let payloads: Vec<Vec<u8>> = (0u8..10)
            .map(|i| if i == 7 { vec![i; 3] } else { vec![i; 20] })
            .collect();
        let queue: Vec<Queued> = payloads
            .iter()
            .map(|p| turn.store(&[0; HEADER_LEN], p))
            .collect();
        let mut messages = Vec::new();
        plan(
            queue.iter().map(|&q| turn.payload(q).len()),
            true,
            &mut messages,
        );
        assert_eq!(messages.len(), 3);
        let mut scratch = Scratch::default();
        let outcome = drain(Carrier::Udp, &messages, |rest| {
            scratch.sendmmsg(tx.as_raw_fd(), rest, |i| turn.payload(queue[i]))
        });
        assert_eq!(outcome.sent, 10, "{outcome:?}");
        rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let mut buf = [0u8; 100];
        for p in &payloads {
            let n = rx.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &p[..]);
        }
    }
}
