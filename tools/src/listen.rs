//! `listen`: the data path from tunmcastd to a client, and the client's side of it.
//!
//! A `listen` request on the control socket is a join of its own. The daemon answers it with
//! its reply line and, attached to that line (SCM_RIGHTS), one end of a `SOCK_SEQPACKET`
//! socket pair; the control connection then closes. From then on the socket pair *is* the
//! listener: every datagram the listener's filter admits arrives as one message,
//! [`DatagramHeader`] followed by the UDP payload, and the join lasts exactly as long as the
//! client keeps its end open (exit, Ctrl-C and kill -9 all close it; the daemon sees the
//! hang-up). The daemon's end is non-blocking and bounded by its send buffer: when the
//! client does not keep up, datagrams are dropped and counted, nothing waits.

use std::io::{self, Write};
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::{Client, ClientError, Request};

/// Bytes before the payload in every message of a listener socket.
pub const HEADER_LEN: usize = 48;
/// Format version in byte 0 of the header.
const HEADER_VERSION: u8 = 1;
/// Largest message: the header and the largest UDP payload.
pub const MAX_MESSAGE: usize = HEADER_LEN + 65_535;

/// `--udp-to`, client → daemon on the listener socket: "send the payloads yourself to the UDP
/// socket attached (SCM_RIGHTS), COUNT of them in all (0: no end)"; the magic, then COUNT as
/// a big-endian u64. The daemon then writes each payload with one `send` on that socket, and
/// the client's process is out of the data's way.
pub const FORWARD_MAGIC: &[u8; 8] = b"tmcfwd01";
/// Daemon → client when the COUNT of a forwarding listener is reached, just before the daemon
/// closes the listener: the client exits 0 on it (an end of file without it is an error).
pub const DONE_MAGIC: &[u8; 8] = b"tmcdone1";

/// Where a delivered datagram came from and went to. Layout (big endian):
/// version (1) | family 4 or 6 (1) | source port (2) | destination port (2) | zero (2) |
/// source address (16; IPv4 in the first 4) | group (16) | daemon read time, CLOCK_MONOTONIC
/// ns (8) — then the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatagramHeader {
    pub src: IpAddr,
    pub sport: u16,
    pub group: IpAddr,
    pub dport: u16,
    /// When the daemon read the packet from the device (CLOCK_MONOTONIC, ns).
    pub rx_ns: u64,
}

fn addr_bytes(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(v4) => {
            let mut b = [0; 16];
            b[..4].copy_from_slice(&v4.octets());
            b
        }
        IpAddr::V6(v6) => v6.octets(),
    }
}

impl DatagramHeader {
    pub fn emit(&self, out: &mut [u8; HEADER_LEN]) {
        out[0] = HEADER_VERSION;
        out[1] = if self.group.is_ipv4() { 4 } else { 6 };
        out[2..4].copy_from_slice(&self.sport.to_be_bytes());
        out[4..6].copy_from_slice(&self.dport.to_be_bytes());
        out[6..8].fill(0);
        out[8..24].copy_from_slice(&addr_bytes(self.src));
        out[24..40].copy_from_slice(&addr_bytes(self.group));
        out[40..48].copy_from_slice(&self.rx_ns.to_be_bytes());
    }

    /// The header and payload of one message; `None` if it is not one of ours.
    pub fn parse(message: &[u8]) -> Option<(DatagramHeader, &[u8])> {
        if message.len() < HEADER_LEN || message[0] != HEADER_VERSION {
            return None;
        }
        let addr = |b: &[u8]| -> Option<IpAddr> {
            let b: [u8; 16] = b.try_into().ok()?;
            match message[1] {
                4 => Some(Ipv4Addr::new(b[0], b[1], b[2], b[3]).into()),
                6 => Some(Ipv6Addr::from(b).into()),
                _ => None,
            }
        };
        let u16_at = |i: usize| u16::from_be_bytes([message[i], message[i + 1]]);
        let header = DatagramHeader {
            sport: u16_at(2),
            dport: u16_at(4),
            src: addr(&message[8..24])?,
            group: addr(&message[24..40])?,
            rx_ns: u64::from_be_bytes(message[40..48].try_into().ok()?),
        };
        Some((header, &message[HEADER_LEN..]))
    }
}

/// CLOCK_MONOTONIC in nanoseconds: the clock of [`DatagramHeader::rx_ns`].
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime with a valid pointer to a local timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `GROUP` or `GROUP:PORT`; an IPv6 group with a port is written `[GROUP]:PORT`.
pub fn parse_group_port(text: &str) -> Result<(IpAddr, Option<u16>), String> {
    let text = text.trim();
    if let Ok(group) = text.parse::<IpAddr>() {
        return Ok((group, None));
    }
    match text.parse::<SocketAddr>() {
        Ok(addr) => Ok((addr.ip(), Some(addr.port()))),
        Err(_) => Err(format!(
            "invalid group {text:?}: expected GROUP or GROUP:PORT ([GROUP]:PORT for IPv6)"
        )),
    }
}

/// A new `SOCK_SEQPACKET` socket pair, close-on-exec; the first end non-blocking (the daemon's).
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: socketpair(2) with a valid pointer to two ints.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: two fresh descriptors nobody else owns.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on a descriptor we own.
    let nonblocking = unsafe {
        let flags = libc::fcntl(ours.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(ours.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK)
    };
    if nonblocking != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((ours, theirs))
}

/// Space for one descriptor's control message.
fn cmsg_space() -> usize {
    // SAFETY: CMSG_SPACE is a pure size computation.
    unsafe { libc::CMSG_SPACE(mem::size_of::<RawFd>() as u32) as usize }
}

/// Writes `bytes` on a stream socket with `fd` attached (SCM_RIGHTS), all of it.
pub fn send_with_fd(stream: &UnixStream, bytes: &[u8], fd: RawFd) -> io::Result<()> {
    let sent = sendmsg_with_fd(stream.as_raw_fd(), bytes, fd)?;
    // The descriptor went with the first byte; the rest of a short write is plain data.
    (&*stream).write_all(&bytes[sent..])
}

/// Sends `bytes` as one message on a `SOCK_SEQPACKET` socket with `fd` attached.
pub fn send_message_with_fd(socket: &OwnedFd, bytes: &[u8], fd: RawFd) -> io::Result<()> {
    let sent = sendmsg_with_fd(socket.as_raw_fd(), bytes, fd)?;
    if sent == bytes.len() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "message cut short",
        ))
    }
}

/// One sendmsg(2) of `bytes` with `fd` attached; the bytes sent.
fn sendmsg_with_fd(socket: RawFd, bytes: &[u8], fd: RawFd) -> io::Result<usize> {
    let mut control = vec![0u8; cmsg_space()];
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    // SAFETY: msghdr is plain data; every pointer in it outlives the sendmsg call, and the
    // control buffer is CMSG_SPACE(sizeof fd) bytes, exactly one SCM_RIGHTS message.
    let sent = unsafe {
        let mut msg: libc::msghdr = mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = control.len() as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        libc::sendmsg(socket, &msg, libc::MSG_NOSIGNAL)
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sent as usize)
}

/// Reads some bytes from a stream socket, and the descriptor attached to them if any.
pub fn recv_with_fd(stream: &impl AsRawFd, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    let mut control = vec![0u8; cmsg_space()];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: as in send_with_fd; the kernel writes at most msg_controllen control bytes, and
    // CMSG_FIRSTHDR / CMSG_NXTHDR only walk what it wrote.
    unsafe {
        let mut msg: libc::msghdr = mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = control.len() as _;
        let n = libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut fd = None;
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let raw = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
                fd = Some(OwnedFd::from_raw_fd(raw));
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        Ok((n as usize, fd))
    }
}

impl Client {
    /// Sends a `listen` request; on success returns the reply and the listener socket.
    pub fn listen(
        &mut self,
        request: &Request,
    ) -> Result<(Map<String, Value>, OwnedFd), ClientError> {
        let mut line = serde_json::to_vec(request).expect("a Request always serializes");
        line.push(b'\n');
        self.writer.write_all(&line).map_err(|e| self.io_error(e))?;
        // The reply comes in one sendmsg with the descriptor on its first byte.
        let mut reply = Vec::new();
        let mut socket = None;
        let mut buf = [0u8; 4096];
        while !reply.ends_with(b"\n") {
            let (n, fd) = recv_with_fd(&self.writer, &mut buf).map_err(|e| self.io_error(e))?;
            if n == 0 {
                return Err(ClientError::Closed {
                    path: self.path.clone(),
                });
            }
            socket = socket.or(fd);
            reply.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&reply);
        let object = self.parse_reply(text.trim_end())?;
        let socket = socket.ok_or_else(|| ClientError::BadReply {
            path: self.path.clone(),
            detail: "no listener socket came with the reply".into(),
        })?;
        Ok((object, socket))
    }
}

/// What `tunmcastctl listen` does with each datagram.
pub struct ListenOptions {
    /// Exit after this many datagrams.
    pub count: Option<u64>,
    /// One JSON object per line instead of text.
    pub json: bool,
    /// Forward each payload to this UDP address instead of printing it.
    pub udp_to: Option<SocketAddr>,
}

/// Connects, joins with `request` (a [`Request::Listen`]) and hands every datagram to
/// stdout or `--udp-to` until `count` is reached or the daemon goes away.
pub fn listen(path: &Path, request: &Request, options: &ListenOptions) -> anyhow::Result<()> {
    let (reply, socket) = Client::connect(path)?.listen(request)?;
    // The control connection is closed now: the listener socket holds the join.
    let forward = match options.udp_to {
        Some(to) => {
            let local: SocketAddr = match to {
                SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
                SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
            };
            let udp = UdpSocket::bind(local)?;
            udp.connect(to)
                .map_err(|e| anyhow::anyhow!("cannot send to {to}: {e}"))?;
            Some(udp)
        }
        None => None,
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if forward.is_none() && !options.json {
        let group = reply.get("group").and_then(Value::as_str).unwrap_or("?");
        let iface = reply.get("iface").and_then(Value::as_str).unwrap_or("?");
        writeln!(out, "listening to {group} on {iface}")?;
        out.flush()?;
    }
    if let Some(udp) = &forward {
        return hand_forwarding_over(&socket, udp, options.count);
    }
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut received = 0u64;
    while options.count.is_none_or(|n| received < n) {
        // Take what is queued without waiting; flush output only before blocking.
        let n = match recv(&socket, &mut buf, libc::MSG_DONTWAIT) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                out.flush()?;
                recv(&socket, &mut buf, 0)
            }
            other => other,
        }?;
        if n == 0 {
            out.flush()?;
            anyhow::bail!("tunmcastd closed the listener (daemon stopped?)");
        }
        let Some((header, payload)) = DatagramHeader::parse(&buf[..n]) else {
            continue;
        };
        received += 1;
        match &forward {
            // A refused send (nobody on that port yet) loses the datagram, as UDP would.
            Some(udp) => {
                let _ = udp.send(payload);
            }
            None if options.json => writeln!(out, "{}", datagram_json(&header, payload))?,
            None => writeln!(out, "{}", datagram_line(&header, payload))?,
        }
    }
    out.flush()?;
    Ok(())
}

/// `--udp-to`: gives the daemon the connected UDP socket, so that it writes the payloads
/// itself; forwards what was queued on the listener before the daemon took over, and waits
/// for the daemon's word that COUNT were sent (or for the daemon to go away: an error).
fn hand_forwarding_over(
    socket: &OwnedFd,
    udp: &UdpSocket,
    count: Option<u64>,
) -> anyhow::Result<()> {
    let mut request = FORWARD_MAGIC.to_vec();
    request.extend_from_slice(&count.unwrap_or(0).to_be_bytes());
    send_message_with_fd(socket, &request, udp.as_raw_fd())?;
    let mut slots = vec![0u8; BATCH * BATCH_SLOT];
    loop {
        let lens = recv_batch(socket, &mut slots, BATCH)?;
        if lens.is_empty() {
            anyhow::bail!("tunmcastd closed the listener (daemon stopped?)");
        }
        let mut payloads = Vec::new();
        let mut done = false;
        for (i, &len) in lens.iter().enumerate() {
            let message = &slots[i * BATCH_SLOT..i * BATCH_SLOT + len];
            if message == DONE_MAGIC {
                done = true;
            } else if let Some((_, payload)) = DatagramHeader::parse(message) {
                payloads.push(payload);
            }
        }
        // Datagrams queued before the daemon had the socket: they come this way once.
        let _ = send_batch(udp, &payloads);
        if done {
            return Ok(());
        }
    }
}

/// Datagrams taken (and forwarded) per system call with `--udp-to`.
const BATCH: usize = 64;
/// Room for one datagram of a batch: the largest payload the daemon hands over in one UDP
/// datagram to a local socket is far below 64 KiB in practice, but a message is never cut.
const BATCH_SLOT: usize = MAX_MESSAGE;

/// Receives up to `want` messages into the `BATCH_SLOT`-sized slots of `slots`, waiting for
/// the first one; their lengths (none: the daemon closed the socket).
fn recv_batch(socket: &OwnedFd, slots: &mut [u8], want: usize) -> io::Result<Vec<usize>> {
    let want = want.min(slots.len() / BATCH_SLOT);
    let mut iovecs: Vec<libc::iovec> = slots
        .chunks_mut(BATCH_SLOT)
        .take(want)
        .map(|slot| libc::iovec {
            iov_base: slot.as_mut_ptr().cast(),
            iov_len: slot.len(),
        })
        .collect();
    let mut headers = mmsg_headers(&mut iovecs);
    loop {
        // SAFETY: every header points at one iovec of a slot we own, valid for the call;
        // MSG_WAITFORONE: block for the first message only, then take what is queued.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                headers.len() as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n >= 0 {
            let n = n as usize;
            // A zero-length message is the hang-up (SOCK_SEQPACKET end of file).
            if n == 1 && headers[0].msg_len == 0 {
                return Ok(Vec::new());
            }
            return Ok(headers[..n].iter().map(|h| h.msg_len as usize).collect());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// One message header per iovec, for recvmmsg / sendmmsg: no address, no control data. The
/// headers point into `iovecs`, which must outlive the call they are used in.
fn mmsg_headers(iovecs: &mut [libc::iovec]) -> Vec<libc::mmsghdr> {
    iovecs
        .iter_mut()
        .map(|iov| {
            // SAFETY: a zeroed mmsghdr is a valid "no name, no control" header.
            let mut h: libc::mmsghdr = unsafe { mem::zeroed() };
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
            h
        })
        .collect()
}

/// Sends each of `payloads` as one datagram on the connected `udp` socket, in one call.
fn send_batch(udp: &UdpSocket, payloads: &[&[u8]]) -> io::Result<()> {
    let mut iovecs: Vec<libc::iovec> = payloads
        .iter()
        .map(|p| libc::iovec {
            iov_base: p.as_ptr() as *mut libc::c_void,
            iov_len: p.len(),
        })
        .collect();
    let mut headers = mmsg_headers(&mut iovecs);
    let mut sent = 0;
    while sent < headers.len() {
        // SAFETY: the headers point at iovecs over payloads that outlive the call.
        let n = unsafe {
            libc::sendmmsg(
                udp.as_raw_fd(),
                headers[sent..].as_mut_ptr(),
                (headers.len() - sent) as libc::c_uint,
                0,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        sent += n as usize;
    }
    Ok(())
}

fn recv(socket: &OwnedFd, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
    loop {
        // SAFETY: recv(2) into a buffer we own, within its length.
        let n = unsafe {
            libc::recv(
                socket.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                flags,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `{"src":..,"sport":..,"group":..,"dport":..,"len":..,"payload_hex":..,"rx_ns":..}`
pub fn datagram_json(header: &DatagramHeader, payload: &[u8]) -> Value {
    json!({
        "src": header.src.to_string(),
        "sport": header.sport,
        "group": header.group.to_string(),
        "dport": header.dport,
        "len": payload.len(),
        "payload_hex": hex(payload),
        "rx_ns": header.rx_ns,
    })
}

/// `10.99.0.1:40000 > 239.1.2.3:5000 len 5 68656c6c6f`
pub fn datagram_line(header: &DatagramHeader, payload: &[u8]) -> String {
    format!(
        "{} > {} len {} {}",
        SocketAddr::new(header.src, header.sport),
        SocketAddr::new(header.group, header.dport),
        payload.len(),
        hex(payload)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        for (src, group) in [("10.99.0.1", "239.1.2.3"), ("fe80::1", "ff12::1234")] {
            let header = DatagramHeader {
                src: src.parse().unwrap(),
                sport: 40000,
                group: group.parse().unwrap(),
                dport: 5000,
                rx_ns: 123_456_789,
            };
            let mut message = [0u8; HEADER_LEN + 3];
            header.emit((&mut message[..HEADER_LEN]).try_into().unwrap());
            message[HEADER_LEN..].copy_from_slice(b"abc");
            assert_eq!(DatagramHeader::parse(&message), Some((header, &b"abc"[..])));
        }
        assert_eq!(DatagramHeader::parse(&[1; 10]), None);
        assert_eq!(DatagramHeader::parse(&[9; HEADER_LEN]), None);
    }

    #[test]
    fn group_and_port() {
        assert_eq!(
            parse_group_port("239.1.2.3:5000"),
            Ok(("239.1.2.3".parse().unwrap(), Some(5000)))
        );
        assert_eq!(
            parse_group_port("239.1.2.3"),
            Ok(("239.1.2.3".parse().unwrap(), None))
        );
        assert_eq!(
            parse_group_port("[ff12::1]:5000"),
            Ok(("ff12::1".parse().unwrap(), Some(5000)))
        );
        assert_eq!(
            parse_group_port("ff12::1"),
            Ok(("ff12::1".parse().unwrap(), None))
        );
        for bad in ["239.1.2.3:", "ff12::1:x", "239.1.2.3:70000", "host:1"] {
            assert!(parse_group_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_descriptor_travels_with_a_line() {
        let (a, b) = UnixStream::pair().unwrap();
        let (ours, theirs) = seqpacket_pair().unwrap();
        send_with_fd(&a, b"{\"ok\":true}\n", theirs.as_raw_fd()).unwrap();
        drop(theirs);
        let mut buf = [0u8; 64];
        let (n, fd) = recv_with_fd(&b, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"{\"ok\":true}\n");
        let fd = fd.expect("a descriptor");
        // SAFETY: send(2) from a local buffer on a descriptor we own.
        let sent = unsafe { libc::send(ours.as_raw_fd(), b"x".as_ptr().cast(), 1, 0) };
        assert_eq!(sent, 1);
        assert_eq!(recv(&fd, &mut buf, 0).unwrap(), 1);
    }
}
