//! The kernel side of the link: what an interface looks like (index, addresses, flags), and
//! the IP sockets that send queries through the namespace's own IP stack. The AF_PACKET socket
//! that hears both directions of the link (and, with --inject, writes onto it) is
//! [`tools::packet_socket`].
//!
//! LAB-NOTES:
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

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use anyhow::{bail, Context};
use nix::errno::Errno;
use nix::ifaddrs::getifaddrs;
use nix::net::if_::{if_nametoindex, InterfaceFlags};
use nix::sys::socket::setsockopt;
use nix::{setsockopt_impl, sockopt_impl};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

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
        let index = match if_nametoindex(name) {
            Ok(index) => index,
            Err(Errno::ENODEV) => bail!("no interface named {name} in this network namespace"),
            Err(error) => {
                return Err(io::Error::from(error))
                    .with_context(|| format!("{name}: looking up the interface"))
            }
        };
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
        let mut flags = InterfaceFlags::empty();
        for entry in getifaddrs()?.filter(|entry| entry.interface_name == self.name) {
            // Every entry of the interface (AF_PACKET, AF_INET, AF_INET6) carries its flags.
            flags |= entry.flags;
            let Some(address) = entry.address else {
                continue;
            };
            if let Some(v4) = address.as_sockaddr_in() {
                self.ipv4.get_or_insert(v4.ip());
            } else if let Some(v6) = address.as_sockaddr_in6() {
                if v6.ip().is_unicast_link_local() {
                    self.link_local.get_or_insert(v6.ip());
                }
            }
        }
        self.up = flags.contains(InterfaceFlags::IFF_UP);
        self.carrier = flags.contains(InterfaceFlags::IFF_LOWER_UP);
        Ok(())
    }
}

// The options neither socket2 nor nix wraps, declared with nix's own macro for that.
sockopt_impl!(
    /// `IP_MULTICAST_IF` by interface index (socket2 sets it by address only).
    MulticastIfIndexV4, SetOnly, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, libc::ip_mreqn
);
sockopt_impl!(
    /// `ICMPV6_FILTER`: a `struct icmp6_filter`, one bit per ICMPv6 type, set = blocked.
    Icmpv6Filter, SetOnly, libc::IPPROTO_ICMPV6, ICMPV6_FILTER, [u32; 8]
);
sockopt_impl!(
    /// `IPV6_AUTOFLOWLABEL`.
    Ipv6AutoFlowLabel, SetOnly, libc::IPPROTO_IPV6, libc::IPV6_AUTOFLOWLABEL, bool
);
sockopt_impl!(
    /// `IPV6_HOPOPTS`: a sticky hop-by-hop options header.
    Ipv6HopOpts, SetOnly, libc::IPPROTO_IPV6, libc::IPV6_HOPOPTS, [u8; 8]
);

/// Sends IGMP packets, exactly as given, through the IPv4 stack of the namespace: out of one
/// interface and looped back to the kernel's own IGMP.
#[derive(Debug)]
pub struct Ipv4Sender {
    socket: Socket,
}

impl Ipv4Sender {
    pub fn open(interface: &Interface) -> io::Result<Ipv4Sender> {
        let protocol = Protocol::from(libc::IPPROTO_RAW);
        let socket = Socket::new(Domain::IPV4, Type::RAW, Some(protocol))?;
        // Implied by IPPROTO_RAW; said anyway, so that nothing depends on it.
        socket.set_header_included_v4(true)?;
        let ifindex = i32::try_from(interface.index)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface index"))?;
        // No address: the source is in the header we write (IP_HDRINCL routes with any source).
        let multicast_if = libc::ip_mreqn {
            imr_multiaddr: libc::in_addr { s_addr: 0 },
            imr_address: libc::in_addr { s_addr: 0 },
            imr_ifindex: ifindex,
        };
        setsockopt(&socket, MulticastIfIndexV4, &multicast_if)?;
        socket.set_multicast_loop_v4(true)?;
        Ok(Ipv4Sender { socket })
    }

    /// Sends a whole IPv4 packet, header included, to the multicast group `dst`.
    pub fn send(&self, packet: &[u8], dst: Ipv4Addr) -> io::Result<()> {
        let to = SockAddr::from(SocketAddrV4::new(dst, 0));
        whole(packet, self.socket.send_to(packet, &to))
    }
}

/// Sends ICMPv6 (MLD) messages through the IPv6 stack of the namespace, from one source, out
/// of one interface, with hop limit 1 and a Router Alert, looped back to the kernel's own MLD.
#[derive(Debug)]
pub struct Icmpv6Sender {
    socket: Socket,
    ifindex: u32,
}

impl Icmpv6Sender {
    /// `src` need not be an address of the interface (tests may want a foreign one); `::`
    /// lets the kernel choose.
    pub fn open(interface: &Interface, src: Ipv6Addr) -> anyhow::Result<Icmpv6Sender> {
        let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
            .context("opening a raw ICMPv6 socket")?;
        // We never read this socket: let no ICMPv6 message queue up on it.
        setsockopt(&socket, Icmpv6Filter, &[u32::MAX; 8]).context("setting ICMPV6_FILTER")?;
        socket
            .set_freebind_v6(true)
            .context("setting IPV6_FREEBIND")?;
        let ifindex = interface.index;
        socket
            .bind(&SocketAddrV6::new(src, 0, 0, ifindex).into())
            .with_context(|| format!("binding to {src}%{}", interface.name))?;
        socket
            .set_multicast_if_v6(ifindex)
            .context("setting IPV6_MULTICAST_IF")?;
        socket
            .set_multicast_hops_v6(1)
            .context("setting IPV6_MULTICAST_HOPS")?;
        socket
            .set_multicast_loop_v6(true)
            .context("setting IPV6_MULTICAST_LOOP")?;
        // Flow label 0, as the kernel's own MLD messages have (not a hash of the flow).
        setsockopt(&socket, Ipv6AutoFlowLabel, &false).context("setting IPV6_AUTOFLOWLABEL")?;
        setsockopt(&socket, Ipv6HopOpts, &HOP_BY_HOP_ROUTER_ALERT)
            .context("setting IPV6_HOPOPTS (Router Alert)")?;
        Ok(Icmpv6Sender { socket, ifindex })
    }

    /// Sends one ICMPv6 message to the multicast group `dst`; the kernel fills its checksum.
    pub fn send(&self, message: &[u8], dst: Ipv6Addr) -> io::Result<()> {
        let to = SockAddr::from(SocketAddrV6::new(dst, 0, 0, self.ifindex));
        whole(message, self.socket.send_to(message, &to))
    }
}

/// A send of one whole datagram: a short one is an error.
fn whole(data: &[u8], sent: io::Result<usize>) -> io::Result<()> {
    match sent? {
        n if n != data.len() => Err(io::Error::other(format!(
            "short send: {n} of {} bytes",
            data.len()
        ))),
        _ => Ok(()),
    }
}
