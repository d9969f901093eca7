//! An AF_PACKET datagram socket on one interface: it writes packets onto the link towards
//! whatever holds the TUN (and nowhere else), and, opened with [`PacketSocket::open`], hears
//! both directions of the link. mcquerier listens and injects with it, mcflood floods with it.
//!
//! LAB-NOTES:
//! - Sending with `sll_protocol` 0x0800 / 0x86DD puts the packet on the link towards the TUN
//!   holder only: the namespace's own IGMP/MLD stack never hears it. A TUN has no link-layer
//!   header, so no link address is needed; the protocol only says what the packet is.
//! - A socket bound to `ETH_P_ALL` sees both directions (one bound to a single protocol sees
//!   only incoming packets), and never its own sends.

use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    bind, recvmsg, sendto, socket, AddressFamily, LinkAddr, MsgFlags, SockFlag, SockType,
    SockaddrLike,
};

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

/// A packet read from the link.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub len: usize,
    /// `sll_protocol`: 0x0800, 0x86dd, ...
    pub ethertype: u16,
    /// Sent by the kernel side (`PACKET_OUTGOING`); otherwise it came from the TUN holder.
    pub outgoing: bool,
}

/// An AF_PACKET `SOCK_DGRAM` socket on one interface.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: u32,
}

impl PacketSocket {
    /// A socket that writes onto interface `ifindex` and hears both directions of its link.
    pub fn open(ifindex: u32) -> io::Result<PacketSocket> {
        let socket = PacketSocket::sender(ifindex)?;
        bind(
            socket.fd.as_raw_fd(),
            &link_address(ifindex, libc::ETH_P_ALL as u16)?,
        )?;
        Ok(socket)
    }

    /// A socket of whole link-layer frames (SOCK_RAW: Ethernet on a TAP or a veth) on
    /// interface `ifindex`, hearing both directions; [`PacketSocket::send`] writes a frame as
    /// it is.
    pub fn open_frames(ifindex: u32) -> io::Result<PacketSocket> {
        let fd = socket(
            AddressFamily::Packet,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        let socket = PacketSocket { fd, ifindex };
        bind(
            socket.fd.as_raw_fd(),
            &link_address(ifindex, libc::ETH_P_ALL as u16)?,
        )?;
        Ok(socket)
    }

    /// A socket that only writes onto interface `ifindex`: it is bound to nothing, so it
    /// receives nothing (nothing queues up on it during a flood).
    pub fn sender(ifindex: u32) -> io::Result<PacketSocket> {
        // Protocol 0 at creation: the socket receives nothing until bind() ties it to the
        // interface, so no packet of another interface slips into its queue meanwhile.
        let fd = socket(
            AddressFamily::Packet,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        Ok(PacketSocket { fd, ifindex })
    }

    /// Writes one packet onto the link, towards the TUN holder only; `ethertype` sets the
    /// packet's protocol. Errors (ENOBUFS included) are the caller's to retry.
    pub fn send(&self, ethertype: u16, packet: &[u8]) -> io::Result<()> {
        let address = link_address(self.ifindex, ethertype)?;
        let sent = sendto(self.fd.as_raw_fd(), packet, &address, MsgFlags::empty())?;
        if sent != packet.len() {
            return Err(io::Error::other(format!(
                "short send: {sent} of {} bytes",
                packet.len()
            )));
        }
        Ok(())
    }

    /// Waits until a packet can be read or `timeout` passes. `false` on timeout or signal.
    pub fn wait_readable(&self, timeout: Duration) -> io::Result<bool> {
        // Round up, so that we never wake just before a deadline and spin.
        let millis = timeout.as_micros().div_ceil(1000);
        let timeout = PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(ready) => Ok(ready > 0),
            Err(Errno::EINTR) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Reads one packet without blocking; `None` when the queue is empty.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<Received>> {
        loop {
            let mut iov = [IoSliceMut::new(buf)];
            let message = match recvmsg::<LinkAddr>(
                self.fd.as_raw_fd(),
                &mut iov,
                None,
                MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(message) => message,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return Ok(None),
                Err(error) => return Err(error.into()),
            };
            let from = message
                .address
                .ok_or_else(|| io::Error::other("AF_PACKET packet without an address"))?;
            return Ok(Some(Received {
                len: message.bytes,
                ethertype: u16::from_be(from.protocol()),
                outgoing: from.pkttype() == libc::PACKET_OUTGOING,
            }));
        }
    }
}

/// The `sockaddr_ll` of interface `ifindex` and protocol `ethertype`, for bind and sendto.
fn link_address(ifindex: u32, ethertype: u16) -> io::Result<LinkAddr> {
    let address = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: ethertype.to_be(),
        sll_ifindex: i32::try_from(ifindex)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface index"))?,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // nix has no safe constructor of a LinkAddr (nor socket2 of an AF_PACKET SockAddr): the
    // one unsafe block of this module.
    // SAFETY: `address` is a fully initialised sockaddr_ll of family AF_PACKET and `len` its
    // size; from_raw copies it and checks the family and length.
    unsafe { LinkAddr::from_raw(std::ptr::from_ref(&address).cast(), Some(len)) }
        .ok_or_else(|| io::Error::other("sockaddr_ll refused by nix"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_address_holds_the_fields_in_network_order() {
        let address = link_address(7, ETHERTYPE_IPV6).unwrap();
        assert_eq!(address.ifindex(), 7);
        assert_eq!(u16::from_be(address.protocol()), ETHERTYPE_IPV6);
        assert_eq!(address.family(), Some(AddressFamily::Packet));
    }
}
