//! A user-space host on a TUN device, built from two stacks: smoltcp for IP and UDP,
//! `membership::Host` for IGMP and MLD. It joins one group, prints the payload of every UDP
//! datagram sent to it (one line each, on stdout), and exits after `--count` of them,
//! leaving the group on the way out.
//!
//! smoltcp has an IGMPv2 / MLDv2 reporter of its own behind its `multicast` feature, and the
//! same feature is what makes its interface accept datagrams to a group
//! (`join_multicast_group`). The example keeps the feature for the acceptance alone and puts
//! [`MembershipSplit`] between smoltcp and the TUN, which takes IGMP and MLD out of both
//! directions: what is read goes to the `Host`, never to smoltcp (so smoltcp answers no
//! query), and what smoltcp writes (its IGMPv2 / MLDv2 join report) is dropped and counted.
//! Only the `Host` speaks IGMP/MLD on the wire.
//!
//! ```text
//! ip tuntap add dev tun0 mode tun
//! ip addr add 10.99.0.1/24 dev tun0 && ip link set tun0 up
//! cargo run -p membership --example smoltcp_tun -- \
//!     --iface tun0 --ipv4 10.99.0.2/24 --group 239.1.2.3 --port 5000 --count 3
//! ```

use std::net::{IpAddr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use membership::wire::ip::{classify, Classified};
use membership::{Config, Host, InterfaceConfig};
use smoltcp::iface::{Interface, SocketSet};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium, TunTapInterface};
use smoltcp::socket::udp;
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{HardwareAddress, IpCidr, Ipv4Cidr};

/// The Host's number for the one interface.
const IF: u32 = 1;

/// Joins a multicast group on a TUN with membership (IGMP/MLD) and smoltcp (UDP), and prints
/// the payloads of the datagrams sent to it.
#[derive(Parser)]
struct Args {
    /// The TUN device to attach to (created if missing, which needs CAP_NET_ADMIN).
    #[arg(long)]
    iface: String,
    /// This host's IPv4 address and prefix length on the link, e.g. 10.99.0.2/24.
    #[arg(long, value_parser = parse_cidr)]
    ipv4: Option<Ipv4Cidr>,
    /// This host's IPv6 link-local address (MLD's source; needed for an IPv6 group).
    #[arg(long)]
    ipv6_ll: Option<Ipv6Addr>,
    /// The group to join.
    #[arg(long)]
    group: IpAddr,
    /// The UDP port to receive on.
    #[arg(long)]
    port: u16,
    /// Exit after this many datagrams.
    #[arg(long, default_value_t = 1)]
    count: usize,
}

fn parse_cidr(text: &str) -> Result<Ipv4Cidr, String> {
    text.parse()
        .map_err(|()| format!("{text:?} is not ADDRESS/PREFIX-LENGTH"))
}

/// smoltcp's TUN device with IGMP and MLD taken out of both directions.
struct MembershipSplit {
    tun: TunTapInterface,
    /// IGMP/MLD packets read from the TUN, for the Host.
    membership_in: Vec<Vec<u8>>,
    /// IGMP/MLD packets smoltcp tried to write.
    smoltcp_own_dropped: u64,
}

fn is_membership(packet: &[u8]) -> bool {
    matches!(
        classify(packet),
        Ok(Classified::Igmp { .. } | Classified::Mld { .. })
    )
}

impl MembershipSplit {
    /// Writes one of the Host's packets onto the TUN.
    fn write(&mut self, now: SmolInstant, packet: &[u8]) {
        if let Some(token) = self.tun.transmit(now) {
            phy::TxToken::consume(token, packet.len(), |buf| buf.copy_from_slice(packet));
        }
    }
}

/// A packet read from the TUN, for smoltcp.
struct Rx(Vec<u8>);

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

/// A packet smoltcp writes: onto the TUN unless it is IGMP or MLD.
struct Tx<'a> {
    tun: <TunTapInterface as Device>::TxToken<'a>,
    smoltcp_own_dropped: &'a mut u64,
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut packet = vec![0; len];
        let result = f(&mut packet);
        if is_membership(&packet) {
            *self.smoltcp_own_dropped += 1;
        } else {
            self.tun.consume(len, |buf| buf.copy_from_slice(&packet));
        }
        result
    }
}

impl Device for MembershipSplit {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn capabilities(&self) -> DeviceCapabilities {
        self.tun.capabilities()
    }

    fn receive(&mut self, now: SmolInstant) -> Option<(Rx, Tx<'_>)> {
        loop {
            let (rx, tx) = self.tun.receive(now)?;
            let packet = phy::RxToken::consume(rx, <[u8]>::to_vec);
            if is_membership(&packet) {
                self.membership_in.push(packet);
                continue;
            }
            let tx = Tx {
                tun: tx,
                smoltcp_own_dropped: &mut self.smoltcp_own_dropped,
            };
            return Some((Rx(packet), tx));
        }
    }

    fn transmit(&mut self, now: SmolInstant) -> Option<Tx<'_>> {
        Some(Tx {
            tun: self.tun.transmit(now)?,
            smoltcp_own_dropped: &mut self.smoltcp_own_dropped,
        })
    }
}

/// The one clock of both stacks: milliseconds since start.
struct Clock(std::time::Instant);

impl Clock {
    fn now(&self) -> (membership::Instant, SmolInstant) {
        let millis = u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX);
        let smol = SmolInstant::from_millis(i64::try_from(millis).unwrap_or(i64::MAX));
        (membership::Instant::from_millis(millis), smol)
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.group {
        IpAddr::V4(_) if args.ipv4.is_none() => bail!("an IPv4 group needs --ipv4"),
        IpAddr::V6(_) if args.ipv6_ll.is_none() => bail!("an IPv6 group needs --ipv6-ll"),
        _ => {}
    }
    let tun = TunTapInterface::new(&args.iface, Medium::Ip)
        .with_context(|| format!("cannot attach to TUN {}", args.iface))?;
    let mut device = MembershipSplit {
        tun,
        membership_in: Vec::new(),
        smoltcp_own_dropped: 0,
    };
    let clock = Clock(std::time::Instant::now());
    let (now, smol_now) = clock.now();

    let mut iface = Interface::new(
        smoltcp::iface::Config::new(HardwareAddress::Ip),
        &mut device,
        smol_now,
    );
    iface.update_ip_addrs(|addrs| {
        if let Some(v4) = args.ipv4 {
            addrs
                .push(IpCidr::Ipv4(v4))
                .expect("room for two addresses");
        }
        if let Some(ll) = args.ipv6_ll {
            addrs
                .push(IpCidr::new(ll.into(), 64))
                .expect("room for two addresses");
        }
    });
    // Acceptance of datagrams to the group only: the report this would send is dropped.
    iface
        .join_multicast_group(args.group)
        .context("smoltcp refuses the group")?;

    let mut sockets = SocketSet::new(Vec::new());
    let buffer = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 16], vec![0; 65535]);
    let mut socket = udp::Socket::new(buffer(), buffer());
    socket.bind(args.port).context("cannot bind the UDP port")?;
    let udp = sockets.add(socket);

    // The seed of the Host's random report delays: any value will do outside tests.
    let seed = std::process::id().into();
    let mut host = Host::new(Config::default(), seed);
    host.add_interface(
        IF,
        InterfaceConfig {
            ipv4: args.ipv4.map(|cidr| cidr.address()),
            ipv6_link_local: args.ipv6_ll,
            ..InterfaceConfig::default()
        },
    )?;
    host.join(IF, args.group, now)?;
    eprintln!(
        "joined {} on {}, receiving on port {}",
        args.group, args.iface, args.port
    );

    let mut received = 0;
    loop {
        let (now, smol_now) = clock.now();
        iface.poll(smol_now, &mut device, &mut sockets);
        for packet in std::mem::take(&mut device.membership_in) {
            if let Err(reason) = host.handle_packet(IF, &packet, now) {
                eprintln!("IGMP/MLD packet dropped: {reason:?}");
            }
        }
        host.handle_timeout(now);
        while let Some(tx) = host.poll_transmit() {
            device.write(smol_now, &tx.to_packet());
        }
        while let Some(event) = host.poll_event() {
            eprintln!("{now}: {event:?}");
        }

        let socket = sockets.get_mut::<udp::Socket>(udp);
        while let Ok((payload, meta)) = socket.recv() {
            eprintln!(
                "{} bytes from {} to {:?}",
                payload.len(),
                meta.endpoint,
                meta.local_address
            );
            println!("{}", String::from_utf8_lossy(payload));
            received += 1;
            if received == args.count {
                host.leave(IF, args.group, now)?;
                host.handle_timeout(now);
                while let Some(tx) = host.poll_transmit() {
                    device.write(smol_now, &tx.to_packet());
                }
                eprintln!(
                    "left {}; dropped {} IGMP/MLD packets smoltcp wrote itself",
                    args.group, device.smoltcp_own_dropped
                );
                return Ok(());
            }
        }

        let smol_delay = iface
            .poll_delay(smol_now, &sockets)
            .map(|d| Duration::from_micros(d.total_micros()));
        let host_delay = host
            .poll_timeout()
            .map(|at| at.saturating_duration_since(now));
        let delay = match (smol_delay, host_delay) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        phy::wait(device.tun.as_raw_fd(), delay.map(Into::into))?;
    }
}
