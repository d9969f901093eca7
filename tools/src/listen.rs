//! `listen`: the client's side of the data path from tunmcastd (the socket pair, the header
//! and the descriptor passing that both ends share are [`control::listen`], re-exported here).

use std::io::{self, Write};
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use serde_json::{json, Map, Value};

pub use control::listen::*;

use crate::{Client, ClientError, Request};

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
    use std::os::unix::net::UnixStream;

    use super::*;

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
