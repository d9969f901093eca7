//! The kernel side of the link: what an interface looks like (index, addresses, flags), the
//! AF_PACKET socket that hears both directions of the link (and, with --inject, writes onto
//! it), and the IP sockets that send queries through the namespace's own IP stack.
//!
//! LAB-NOTES:
//! - An AF_PACKET `SOCK_DGRAM` socket sending with `sll_protocol` 0x0800 / 0x86DD puts the
//!   packet on the link towards whatever holds the TUN, and nowhere else: the namespace's own
//!   IGMP/MLD stack never hears it. A socket bound to `ETH_P_ALL` sees both directions (one
//!   bound to a single protocol sees only incoming packets), and never its own sends.
//! - A query sent through an IP socket to a multicast group leaves by the interface (the TUN
//!   holder reads it) and, with `IP_MULTICAST_LOOP` / `IPV6_MULTICAST_LOOP` on, is looped back
//!   to the kernel's own stack, which answers it as any host on the link would (Linux checks
//!   looped-back reports, not queries). The AF_PACKET socket sees such a query once, as
//!   `PACKET_OUTGOING`; the looped-back copy is `PACKET_LOOPBACK`, which AF_PACKET drops.
//! - IPv4: `IPPROTO_RAW` implies `IP_HDRINCL`, so the packet goes out as built (TTL 1, Router
//!   Alert, TOS 0xc0); the kernel only fills the ID (0 here, with DF) and a 0.0.0.0 source.
//! - IPv6: a raw `IPPROTO_ICMPV6` socket has the kernel build the IPv6 header and compute the
//!   ICMPv6 checksum (always, at offset 2); the Router Alert comes from a sticky
//!   `IPV6_HOPOPTS`, the source from bind(), hop limit 1 from `IPV6_MULTICAST_HOPS`, flow
//!   label 0 from `IPV6_AUTOFLOWLABEL` off (traffic class is 0 by default).

use std::ffi::{CStr, CString};
use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr;
use std::time::Duration;

use anyhow::{bail, Context};

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

/// `ICMPV6_FILTER` of <linux/icmpv6.h>, which the libc crate lacks.
const ICMPV6_FILTER: libc::c_int = 1;
/// A hop-by-hop options header holding a Router Alert for MLD (RFC 2711: type 5, length 2,
/// value 0) and a 2-byte PadN; the kernel fills the next header byte (here 0).
const HOP_BY_HOP_ROUTER_ALERT: [u8; 8] = [0, 0, 5, 2, 0, 0, 1, 0];

/// An interface of the current network namespace, as `getifaddrs` shows it.
#[derive(Debug, Clone)]
pub struct Interface {
    pub name: String,
    pub index: u32,
    /// Its first IPv4 address.
    pub ipv4: Option<Ipv4Addr>,
    /// Its first link-local (fe80::/10) IPv6 address.
    pub link_local: Option<Ipv6Addr>,
    /// Administratively up.
    pub up: bool,
    /// Lower layer up: on a TUN, some process holds the device. Without it the kernel drops
    /// everything it would send onto the link.
    pub carrier: bool,
}

impl Interface {
    pub fn lookup(name: &str) -> anyhow::Result<Interface> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ {
            bail!(
                "{name:?} is not a valid interface name (1 to {} bytes)",
                libc::IFNAMSIZ - 1
            );
        }
        let c_name = CString::new(name)
            .map_err(|_| anyhow::anyhow!("{name:?} is not a valid interface name"))?;
        // SAFETY: `c_name` is a valid NUL-terminated string.
        let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
        if index == 0 {
            let error = io::Error::last_os_error();
            if error.raw_os_error() == Some(libc::ENODEV) {
                bail!("no interface named {name} in this network namespace");
            }
            return Err(error).with_context(|| format!("{name}: looking up the interface"));
        }
        let mut interface = Interface {
            name: name.to_owned(),
            index,
            ipv4: None,
            link_local: None,
            up: false,
            carrier: false,
        };
        interface
            .read_addresses()
            .with_context(|| format!("{name}: reading interface addresses (getifaddrs)"))?;
        Ok(interface)
    }

    fn read_addresses(&mut self) -> io::Result<()> {
        let mut head: *mut libc::ifaddrs = ptr::null_mut();
        // SAFETY: getifaddrs writes a list head we free below with freeifaddrs.
        if unsafe { libc::getifaddrs(&mut head) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut flags: libc::c_uint = 0;
        let mut cursor = head;
        while !cursor.is_null() {
            // SAFETY: every node of the list stays valid until freeifaddrs.
            let entry = unsafe { &*cursor };
            cursor = entry.ifa_next;
            if entry.ifa_name.is_null() {
                continue;
            }
            // SAFETY: ifa_name is a NUL-terminated string owned by the list.
            let entry_name = unsafe { CStr::from_ptr(entry.ifa_name) };
            if entry_name.to_bytes() != self.name.as_bytes() {
                continue;
            }
            // Every entry of the interface (AF_PACKET, AF_INET, AF_INET6) carries its flags.
            flags |= entry.ifa_flags;
            if entry.ifa_addr.is_null() {
                continue;
            }
            // SAFETY: ifa_addr points to a sockaddr whose family tells its real type.
            match i32::from(unsafe { (*entry.ifa_addr).sa_family }) {
                libc::AF_INET => {
                    // SAFETY: an AF_INET address is a sockaddr_in.
                    let sin = unsafe { &*entry.ifa_addr.cast::<libc::sockaddr_in>() };
                    let addr = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
                    self.ipv4.get_or_insert(addr);
                }
                libc::AF_INET6 => {
                    // SAFETY: an AF_INET6 address is a sockaddr_in6.
                    let sin6 = unsafe { &*entry.ifa_addr.cast::<libc::sockaddr_in6>() };
                    let addr = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                    if addr.is_unicast_link_local() {
                        self.link_local.get_or_insert(addr);
                    }
                }
                _ => {}
            }
        }
        // SAFETY: `head` came from getifaddrs and no reference into the list outlives this.
        unsafe { libc::freeifaddrs(head) };
        self.up = flags & libc::IFF_UP as libc::c_uint != 0;
        self.carrier = flags & libc::IFF_LOWER_UP as libc::c_uint != 0;
        Ok(())
    }
}

/// A packet read from the link.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub len: usize,
    /// `sll_protocol`: 0x0800, 0x86dd, ...
    pub ethertype: u16,
    /// Sent by the kernel side (`PACKET_OUTGOING`); otherwise it came from the TUN holder.
    pub outgoing: bool,
}

/// An AF_PACKET datagram socket bound to one interface and to every protocol.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
}

impl PacketSocket {
    pub fn open(interface: &Interface) -> io::Result<PacketSocket> {
        let ifindex = i32::try_from(interface.index)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface index"))?;
        // Protocol 0 at creation: the socket receives nothing until bind() ties it to the
        // interface, so no packet of another interface slips into its queue meanwhile.
        // SAFETY: plain socket(2) call.
        let raw =
            unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let socket = PacketSocket { fd, ifindex };
        let address = socket.address(libc::ETH_P_ALL as u16);
        // SAFETY: `address` is a properly initialised sockaddr_ll of the length given.
        let result = unsafe {
            libc::bind(
                socket.fd.as_raw_fd(),
                ptr::from_ref(&address).cast::<libc::sockaddr>(),
                sockaddr_ll_len(),
            )
        };
        if result != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(socket)
    }

    fn address(&self, ethertype: u16) -> libc::sockaddr_ll {
        // SAFETY: sockaddr_ll is plain old data; all zeroes is a valid value.
        let mut address: libc::sockaddr_ll = unsafe { mem::zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_protocol = ethertype.to_be();
        address.sll_ifindex = self.ifindex;
        address
    }

    /// Writes one packet onto the link, towards the TUN holder only. A TUN has no link-layer
    /// header: no address needed, `ethertype` only sets the packet's protocol.
    pub fn send(&self, ethertype: u16, packet: &[u8]) -> io::Result<()> {
        send_to(&self.fd, packet, &self.address(ethertype))
    }

    /// Waits until a packet can be read or `timeout` passes. `false` on timeout or signal.
    pub fn wait_readable(&self, timeout: Duration) -> io::Result<bool> {
        // Round up, so that we never wake just before a deadline and spin.
        let millis = timeout.as_micros().div_ceil(1000);
        let millis = libc::c_int::try_from(millis).unwrap_or(libc::c_int::MAX);
        let mut pollfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut pollfd, 1, millis) };
        if ready < 0 {
            let error = io::Error::last_os_error();
            return if error.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(error)
            };
        }
        Ok(ready > 0)
    }

    /// Reads one packet without blocking; `None` when the queue is empty.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<Received>> {
        loop {
            // SAFETY: sockaddr_ll is plain old data; all zeroes is a valid value.
            let mut from: libc::sockaddr_ll = unsafe { mem::zeroed() };
            let mut from_len = sockaddr_ll_len();
            // SAFETY: the buffer and the address are valid for the lengths given.
            let got = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    ptr::from_mut(&mut from).cast::<libc::sockaddr>(),
                    &mut from_len,
                )
            };
            let Ok(len) = usize::try_from(got) else {
                let error = io::Error::last_os_error();
                match error.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => return Ok(None),
                    _ => return Err(error),
                }
            };
            return Ok(Some(Received {
                len,
                ethertype: u16::from_be(from.sll_protocol),
                outgoing: from.sll_pkttype == libc::PACKET_OUTGOING,
            }));
        }
    }
}

/// Sends IGMP packets, exactly as given, through the IPv4 stack of the namespace: out of one
/// interface and looped back to the kernel's own IGMP.
#[derive(Debug)]
pub struct Ipv4Sender {
    fd: OwnedFd,
}

impl Ipv4Sender {
    pub fn open(interface: &Interface) -> io::Result<Ipv4Sender> {
        let fd = raw_socket(libc::AF_INET, libc::IPPROTO_RAW)?;
        // Implied by IPPROTO_RAW; said anyway, so that nothing depends on it.
        set_option(&fd, libc::IPPROTO_IP, libc::IP_HDRINCL, &1_i32)?;
        let ifindex = i32::try_from(interface.index)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface index"))?;
        // No address: the source is in the header we write (IP_HDRINCL routes with any source).
        let multicast_if = libc::ip_mreqn {
            imr_multiaddr: libc::in_addr { s_addr: 0 },
            imr_address: libc::in_addr { s_addr: 0 },
            imr_ifindex: ifindex,
        };
        set_option(&fd, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &multicast_if)?;
        set_option(&fd, libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, &1_i32)?;
        Ok(Ipv4Sender { fd })
    }

    /// Sends a whole IPv4 packet, header included, to the multicast group `dst`.
    pub fn send(&self, packet: &[u8], dst: Ipv4Addr) -> io::Result<()> {
        // SAFETY: sockaddr_in is plain old data; all zeroes is a valid value.
        let mut address: libc::sockaddr_in = unsafe { mem::zeroed() };
        address.sin_family = libc::AF_INET as libc::sa_family_t;
        address.sin_addr.s_addr = u32::from_ne_bytes(dst.octets());
        send_to(&self.fd, packet, &address)
    }
}

/// Sends ICMPv6 (MLD) messages through the IPv6 stack of the namespace, from one source, out
/// of one interface, with hop limit 1 and a Router Alert, looped back to the kernel's own MLD.
#[derive(Debug)]
pub struct Icmpv6Sender {
    fd: OwnedFd,
    ifindex: u32,
}

impl Icmpv6Sender {
    /// `src` need not be an address of the interface (tests may want a foreign one); `::`
    /// lets the kernel choose.
    pub fn open(interface: &Interface, src: Ipv6Addr) -> anyhow::Result<Icmpv6Sender> {
        let fd = raw_socket(libc::AF_INET6, libc::IPPROTO_ICMPV6)
            .context("opening a raw ICMPv6 socket")?;
        // We never read this socket: let no ICMPv6 message queue up on it.
        set_option(
            &fd,
            libc::IPPROTO_ICMPV6,
            ICMPV6_FILTER,
            &[u32::MAX; 8], // struct icmp6_filter, every type blocked
        )
        .context("setting ICMPV6_FILTER")?;
        set_option(&fd, libc::IPPROTO_IPV6, libc::IPV6_FREEBIND, &1_i32)
            .context("setting IPV6_FREEBIND")?;
        let ifindex = interface.index;
        let address = sockaddr_in6(src, ifindex);
        // SAFETY: `address` is a properly initialised sockaddr_in6 of the length given.
        let result = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                ptr::from_ref(&address).cast::<libc::sockaddr>(),
                mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        };
        if result != 0 {
            return Err(io::Error::last_os_error())
                .with_context(|| format!("binding to {src}%{}", interface.name));
        }
        let index = libc::c_int::try_from(ifindex)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface index"))?;
        set_option(&fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF, &index)
            .context("setting IPV6_MULTICAST_IF")?;
        set_option(&fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, &1_i32)
            .context("setting IPV6_MULTICAST_HOPS")?;
        set_option(&fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, &1_i32)
            .context("setting IPV6_MULTICAST_LOOP")?;
        // Flow label 0, as the kernel's own MLD messages have (not a hash of the flow).
        set_option(&fd, libc::IPPROTO_IPV6, libc::IPV6_AUTOFLOWLABEL, &0_i32)
            .context("setting IPV6_AUTOFLOWLABEL")?;
        set_option(
            &fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_HOPOPTS,
            &HOP_BY_HOP_ROUTER_ALERT,
        )
        .context("setting IPV6_HOPOPTS (Router Alert)")?;
        Ok(Icmpv6Sender { fd, ifindex })
    }

    /// Sends one ICMPv6 message to the multicast group `dst`; the kernel fills its checksum.
    pub fn send(&self, message: &[u8], dst: Ipv6Addr) -> io::Result<()> {
        send_to(&self.fd, message, &sockaddr_in6(dst, self.ifindex))
    }
}

fn raw_socket(family: libc::c_int, protocol: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call.
    let raw = unsafe { libc::socket(family, libc::SOCK_RAW | libc::SOCK_CLOEXEC, protocol) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// setsockopt(2) with a value of plain old data.
fn set_option<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is valid for reads of its size.
    let result = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            ptr::from_ref(value).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// sendto(2) of one whole datagram to a sockaddr of type `A`.
fn send_to<A>(fd: &OwnedFd, data: &[u8], address: &A) -> io::Result<()> {
    // SAFETY: the buffer and the address are valid for the lengths given.
    let sent = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            data.as_ptr().cast(),
            data.len(),
            0,
            ptr::from_ref(address).cast::<libc::sockaddr>(),
            mem::size_of::<A>() as libc::socklen_t,
        )
    };
    match usize::try_from(sent) {
        Err(_) => Err(io::Error::last_os_error()),
        Ok(n) if n != data.len() => Err(io::Error::other(format!(
            "short send: {n} of {} bytes",
            data.len()
        ))),
        Ok(_) => Ok(()),
    }
}

fn sockaddr_in6(addr: Ipv6Addr, scope_id: u32) -> libc::sockaddr_in6 {
    // SAFETY: sockaddr_in6 is plain old data; all zeroes is a valid value.
    let mut address: libc::sockaddr_in6 = unsafe { mem::zeroed() };
    address.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    address.sin6_addr.s6_addr = addr.octets();
    address.sin6_scope_id = scope_id;
    address
}

fn sockaddr_ll_len() -> libc::socklen_t {
    mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t
}
