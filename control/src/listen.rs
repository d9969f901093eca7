//! `listen`: the data path from tunmcastd to a client, the part both ends share (the
//! client's side is `tools::listen`).
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
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

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
}
