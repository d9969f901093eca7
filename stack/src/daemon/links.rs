//! Links: one TUN or TAP device each, all served by the one loop. [`Links`] owns the devices:
//! opens and registers them, reads and writes their frames, notices a device that went away,
//! and keeps each link's hosts in configuration order, their MACs and the members of each
//! group. What a frame carries is handed on in `receive.rs`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::IpAddr;
use std::ops::{Index, IndexMut};
use std::os::fd::AsRawFd;

use anyhow::Context as _;
use control::protocol::LinkInfo;
use log::warn;
use membership::Instant;
use mio::unix::SourceFd;
use mio::{Interest, Registry};
use tun_tap::{Iface, Mode};

use super::addrs::HostsByMac;
use super::arrivals::{ArrivalSlot, Arrivals};
use super::clock::{Clock, RealtimeOffset};
use super::kernel_stamps::KernelStamps;
use super::{HostId, LinkId};
use crate::ids::Table;
use crate::tokens::Source;
use crate::topology::{LinkKind, LinkSpec, Topology};
use crate::ArrivalStamping;

crate::counters::counters! {
    /// Counters of the daemon itself, beside the core's: one set per link, and the sum.
    pub(crate) struct IoStats {
        tun_rx_packets: "Packets (TUN) or frames (TAP) read from the device.",
        tun_tx_packets: "Packets or frames written to the device.",
        tun_tx_errors: "Writes to the device that failed (the packet is lost).",
        tun_tx_link_down: "Of those, because the link was down.",
        tap_rx_not_for_us: "TAP frames to another station's MAC.",
        tap_rx_other_ethertype: "TAP frames neither IPv4 nor IPv6.",
        tap_rx_truncated: "TAP frames too short for Ethernet.",
        tap_neighbour_answers: "ARP, Neighbour Solicitation and echo requests answered.",
        tap_neighbour_drops: "ARP, ND and ICMP frames addressed to the hosts but not answered.",
        rx_kernel_stamps: "Packets read stamped with the time the kernel sent them to the device.",
        rx_kernel_stamps_missed: "Packets read whose kernel stamp was lost (stamped at their read).",
        control_requests: "Control requests answered.",
        control_errors: "Control requests refused.",
    }
}

/// One device and the hosts on it.
pub(super) struct Link {
    pub device: Iface,
    pub name: String,
    pub kind: LinkKind,
    /// The kernel's index of the device, to notice that it was deleted.
    pub ifindex: u32,
    /// v1/v2 reports one host sends are heard by the others (a shared LAN).
    pub suppression: bool,
    pub io: IoStats,
    /// The live hosts, in the order of the configuration: the first is the default one.
    pub hosts: Vec<HostId>,
    /// Unicast frames find their host by MAC (TAP).
    pub by_mac: HostsByMac,
    /// The hosts that joined each group since the start: the datagrams of a group are
    /// attributed to these (delays), and a report one of them sends is heard by the others.
    pub members: HashMap<IpAddr, HashSet<HostId>>,
    /// The device may hold packets (mio is edge-triggered: after a capped burst it may still
    /// hold some without a new event).
    pub readable: bool,
    /// How its packets are stamped with their arrival.
    stamps: LinkStamps,
    /// Multicast packets still being handed to the hosts, oldest first.
    pub fanouts: VecDeque<Fanout>,
    /// Whether a host holds a group, as last found for a datagram no listener took (see
    /// `Receive::link_holds`).
    pub member_hints: HashMap<IpAddr, MemberHint>,
}

/// What `Receive::link_holds` last found for a group.
#[derive(Clone, Copy)]
pub(super) enum MemberHint {
    /// This host held it (asked again each time).
    Host(HostId),
    /// Nobody, as of this join epoch (`Hosts::join_epoch`).
    Nobody(u64),
}

/// A multicast packet being handed to the hosts of a link with more than a slice of them
/// (`receive::FANOUT_SLICE`): a General Query reaching a million hosts is a million core calls
/// (a second of the loop), so they are spread over loop turns, a slice a turn, and the control
/// socket and the devices are served in between. Every host gets the packet with the time it
/// was read, so its timers run from the query (its answer is due within the query's Max Resp
/// Time), not from its turn. Packets are handed on in the order they were read.
pub(super) struct Fanout {
    pub packet: Vec<u8>,
    /// Only the hosts holding this group get it (a query about one group).
    pub only: Option<IpAddr>,
    /// The hosts to hand it to, when not every host of the link: the group's members.
    pub hosts: Option<Vec<HostId>>,
    /// The index in `hosts` (else the link's host list) of the next host to hand it to.
    pub next: usize,
    /// When it was read.
    pub now: Instant,
}

/// How often the distance of the kernel's stamps' clock (CLOCK_REALTIME) from the daemon's is
/// sampled again: a step of the wall clock is felt for at most this long.
const REALTIME_RESAMPLE_NS: u64 = 1_000_000_000;

/// How a link's packets are stamped with their arrival (`--arrival-stamps`): a single loop
/// reading a thousand devices that one bridge forwarded a datagram to at the same instant reads
/// the last of them milliseconds after the first, and a capture stamps them all at once.
enum LinkStamps {
    /// With the time the kernel sent the frame to the device, from the packet socket's copy
    /// (`kernel_stamps.rs`): a capture's time.
    Kernel,
    /// The first packet after the device was empty: when the stamper thread saw it arrive
    /// (`arrivals.rs`); the others at their read.
    Woken(ArrivalSlot),
    /// At their read.
    Read,
}

impl Link {
    /// The link and its device's counters, as `show` and `/api/links` list it.
    pub fn info(&self) -> LinkInfo {
        LinkInfo {
            iface: self.name.clone(),
            device: self.kind_name().to_lowercase(),
            ifindex: self.ifindex,
            suppression: self.suppression,
            hosts: self.hosts.len() as u64,
            stats: self
                .io
                .described()
                .into_iter()
                .filter(|(name, _, _)| !name.starts_with("control_"))
                .map(|(name, value, _)| (name.to_string(), value))
                .collect(),
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            LinkKind::Tun => "TUN",
            LinkKind::Tap => "TAP",
        }
    }
}

/// What one read from a device gave.
pub(super) enum Received {
    /// A frame of this many bytes.
    Frame(usize),
    /// Nothing more for now.
    Empty,
    /// The device failed (deleted?): why, for the log.
    Failed(String),
}

/// The links: their devices, registered with the loop under [`Source::Link`], and the
/// counters of those closed since the start.
pub(super) struct Links {
    all: Table<LinkId, Link>,
    registry: Registry,
    /// How packets are stamped with their arrival.
    stamping: ArrivalStamping,
    /// The stamper thread: when packets arrive on the devices it watches.
    arrivals: Arrivals,
    /// The kernel's stamps of the links' packets (`--arrival-stamps kernel`, with the
    /// privilege).
    kernel: Option<KernelStamps>,
    /// What turns a kernel stamp into the daemon clock's time, sampled again each
    /// [`REALTIME_RESAMPLE_NS`].
    realtime: Option<RealtimeOffset>,
    /// Every link keeps each group's members (`Link::members`), every host that joined it since
    /// the daemon started keeping them, and every host that held it then: a group's holders
    /// are among its members. From the start with delays or checked streams, else from the
    /// first stream checked or test run on (`Hosts::note_all_members`), for good.
    pub members_complete: bool,
    closed: IoStats,
}

impl Index<LinkId> for Links {
    type Output = Link;

    fn index(&self, id: LinkId) -> &Link {
        &self.all[id]
    }
}

impl IndexMut<LinkId> for Links {
    fn index_mut(&mut self, id: LinkId) -> &mut Link {
        &mut self.all[id]
    }
}

impl Links {
    pub fn new(registry: Registry, stamping: ArrivalStamping, arrivals: Arrivals) -> Links {
        Links {
            all: Table::new(),
            registry,
            stamping,
            arrivals,
            kernel: (stamping == ArrivalStamping::Kernel)
                .then(|| {
                    KernelStamps::open()
                        .map_err(|e| {
                            warn!(
                                "no kernel stamps ({e}): packets stamped by a thread woken by them"
                            )
                        })
                        .ok()
                })
                .flatten(),
            realtime: None,
            members_complete: false,
            closed: IoStats::default(),
        }
    }

    /// How the links' packets are stamped with their arrival, each way once (`kernel`,
    /// `thread`, `read`), in that order.
    pub fn arrival_stamping(&self) -> Vec<&'static str> {
        let mut ways = [false; 3];
        for (_, link) in self.all.iter() {
            let way = match link.stamps {
                LinkStamps::Kernel if self.kernel.is_some() => 0,
                LinkStamps::Kernel | LinkStamps::Read => 2,
                LinkStamps::Woken(_) => 1,
            };
            ways[way] = true;
        }
        ["kernel", "thread", "read"]
            .into_iter()
            .zip(ways)
            .filter_map(|(name, used)| used.then_some(name))
            .collect()
    }

    /// Whether something measures arrivals (delays, checked streams, a test run): the kernel
    /// stamps cost the kernel a clone of each frame and are taken only while it does.
    pub fn measure_arrivals(&mut self, on: bool) {
        if let Some(kernel) = &mut self.kernel {
            if kernel.is_hooked() != on {
                if let Err(e) = kernel.hook(on) {
                    // Not tried again each turn: its links' packets are stamped at their read.
                    warn!("no more kernel stamps: cannot switch them on or off: {e}");
                    self.kernel = None;
                }
            }
        }
    }

    /// The stamp of `frame`, read now (`read_at`, the daemon clock's ns) from link `id`'s
    /// device: when it arrived, as the link's [`LinkStamps`] tell. Never after its read.
    pub fn arrival_stamp(&mut self, id: LinkId, frame: &[u8], read_at: u64, clock: Clock) -> u64 {
        let link = &mut self.all[id];
        let arrived = match &mut link.stamps {
            LinkStamps::Kernel => {
                let sent = match self.kernel.as_mut() {
                    // Not measuring: no copies to take.
                    Some(kernel) if kernel.is_hooked() => kernel.sent_ns(link.ifindex, frame),
                    _ => return read_at,
                };
                match sent {
                    Some(sent) => {
                        link.io.rx_kernel_stamps += 1;
                        let realtime = match self.realtime {
                            Some(r)
                                if read_at.saturating_sub(r.sampled_at) < REALTIME_RESAMPLE_NS =>
                            {
                                r
                            }
                            _ => *self.realtime.insert(clock.realtime_offset()),
                        };
                        Some(realtime.to_clock(sent))
                    }
                    None => {
                        link.io.rx_kernel_stamps_missed += 1;
                        None
                    }
                }
            }
            LinkStamps::Woken(slot) => slot.take(),
            LinkStamps::Read => None,
        };
        arrived.map_or(read_at, |at| at.min(read_at))
    }

    /// How the packets of the device `name` (of index `ifindex`, descriptor `fd`) are to be
    /// stamped: as asked, else as well as this process can.
    fn link_stamps(&mut self, name: &str, ifindex: u32, fd: std::os::fd::RawFd) -> LinkStamps {
        if let Some(kernel) = &mut self.kernel {
            match kernel.watch(ifindex) {
                Ok(()) => return LinkStamps::Kernel,
                Err(e) => warn!(
                    "{name}: no kernel stamps ({e}): packets stamped by a thread woken by them"
                ),
            }
        }
        if self.stamping == ArrivalStamping::Read {
            return LinkStamps::Read;
        }
        match self.arrivals.watch(fd) {
            Ok(slot) => LinkStamps::Woken(slot),
            Err(e) => {
                warn!("{name}: packets stamped at their read: {e}");
                LinkStamps::Read
            }
        }
    }

    pub fn get(&self, id: LinkId) -> Option<&Link> {
        self.all.get(id)
    }

    pub fn get_mut(&mut self, id: LinkId) -> Option<&mut Link> {
        self.all.get_mut(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (LinkId, &Link)> {
        self.all.iter()
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// The ids of the links `which` admits.
    pub fn ids_where(&self, which: impl Fn(&Link) -> bool) -> Vec<LinkId> {
        self.all
            .iter()
            .filter(|(_, l)| which(l))
            .map(|(id, _)| id)
            .collect()
    }

    /// The device counters of the links closed since the start.
    pub fn closed_io(&self) -> &IoStats {
        &self.closed
    }

    /// The link called `name`.
    pub fn named(&self, name: &str) -> Option<LinkId> {
        self.all
            .iter()
            .find(|(_, l)| l.name == name)
            .map(|(id, _)| id)
    }

    /// The link a request's `iface` names, or why there is none.
    pub fn check_iface(&self, iface: &Option<String>) -> Result<Option<LinkId>, String> {
        let Some(name) = iface else {
            return Ok(None);
        };
        self.named(name).map(Some).ok_or_else(|| {
            let names: Vec<&str> = self.all.iter().map(|(_, l)| l.name.as_str()).collect();
            format!(
                "unknown interface {name} (this daemon serves {})",
                names.join(", ")
            )
        })
    }

    /// The first host of link `link` (default: the first link of the configuration).
    pub fn default_host(&self, link: Option<LinkId>, topology: &Topology) -> Option<HostId> {
        let link = match link {
            Some(link) => link,
            None => topology.links.iter().find_map(|l| self.named(&l.device))?,
        };
        self.all.get(link)?.hosts.first().copied()
    }

    /// Opens the device of `spec` and registers it with the loop; its hosts are the caller's
    /// to add.
    pub fn open(&mut self, spec: &LinkSpec) -> anyhow::Result<LinkId> {
        let (mode, kind) = match spec.kind {
            LinkKind::Tun => (Mode::Tun, "TUN"),
            LinkKind::Tap => (Mode::Tap, "TAP"),
        };
        let device = Iface::without_packet_info(&spec.device, mode)
            .with_context(|| format!("cannot attach to {kind} device {}", spec.device))?;
        device
            .set_non_blocking()
            .with_context(|| format!("cannot make the {kind} device non-blocking"))?;
        let name = device.name().to_string();
        let ifindex = if_nametoindex(&name)
            .with_context(|| format!("{kind} device {name} has no interface index"))?;
        let id = self.all.next_id();
        self.registry.register(
            &mut SourceFd(&device.as_raw_fd()),
            Source::Link(id).token(),
            Interest::READABLE,
        )?;
        let stamps = self.link_stamps(&name, ifindex, device.as_raw_fd());
        let mut hosts = Vec::new();
        // Sized once: grown by doubling, the vectors freed on the way stay in the RSS.
        hosts.reserve_exact(spec.hosts.len());
        let inserted = self.all.insert(Link {
            device,
            name,
            kind: spec.kind,
            ifindex,
            suppression: spec.suppression,
            io: IoStats::default(),
            hosts,
            by_mac: HostsByMac::default(),
            members: HashMap::new(),
            fanouts: VecDeque::new(),
            member_hints: HashMap::new(),
            // Packets may be waiting already (a device reopened by a reload).
            readable: true,
            stamps,
        });
        debug_assert_eq!(
            inserted, id,
            "the token was registered for the key the link got"
        );
        Ok(id)
    }

    /// Closes link `id`'s device; its counters stay in the daemon's.
    pub fn close(&mut self, id: LinkId) -> Link {
        let link = self.all.remove(id);
        let _ = self
            .registry
            .deregister(&mut SourceFd(&link.device.as_raw_fd()));
        match &link.stamps {
            LinkStamps::Woken(slot) => self.arrivals.unwatch(slot),
            LinkStamps::Kernel => {
                if let Some(kernel) = &mut self.kernel {
                    kernel.unwatch(link.ifindex);
                }
            }
            LinkStamps::Read => {}
        }
        self.closed.add(&link.io);
        link
    }

    /// One read from link `id`'s device into `buf`.
    pub fn recv(&mut self, id: LinkId, buf: &mut [u8]) -> Received {
        let link = &mut self.all[id];
        loop {
            match link.device.recv(buf) {
                Ok(n) => return Received::Frame(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    link.readable = false;
                    if let LinkStamps::Woken(slot) = &link.stamps {
                        self.arrivals.rearm(slot);
                    }
                    return Received::Empty;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Received::Failed(format!(
                        "{} device {} failed (deleted?): {e}",
                        link.kind_name(),
                        link.name
                    ))
                }
            }
        }
    }

    /// Writes one frame to link `id`; false when it was lost (counted).
    pub fn write(&mut self, id: LinkId, frame: &[u8]) -> bool {
        self.all[id].write(frame)
    }

    /// The links whose device is gone, and why. The device is deleted when its name is gone
    /// or names another interface. Only ENODEV counts: `if_nametoindex` needs a socket, and
    /// running out of descriptors must not be taken for a deleted device (a read on a deleted
    /// TUN fails with EBADFD anyway).
    pub fn gone_devices(&self) -> Vec<(LinkId, String)> {
        let mut gone = Vec::new();
        for (id, link) in self.all.iter() {
            let why = match if_nametoindex(&link.name) {
                Some(index) if index == link.ifindex => None,
                Some(_) => Some(format!(
                    "{} device {} has gone away (the name is another device now)",
                    link.kind_name(),
                    link.name
                )),
                None if io::Error::last_os_error().raw_os_error() == Some(libc::ENODEV) => Some(
                    format!("{} device {} has gone away", link.kind_name(), link.name),
                ),
                None => {
                    warn!(
                        "cannot check {} device {}: {}",
                        link.kind_name(),
                        link.name,
                        io::Error::last_os_error()
                    );
                    None
                }
            };
            if let Some(why) = why {
                gone.push((id, why));
            }
        }
        gone
    }
}

pub(super) fn if_nametoindex(name: &str) -> Option<u32> {
    // Leaves errno set on failure, as callers read it.
    nix::net::if_::if_nametoindex(name).ok()
}

impl Link {
    /// Writes one frame to the device; false when it was lost (counted).
    pub fn write(&mut self, frame: &[u8]) -> bool {
        let link = self;
        match link.device.send(frame) {
            Ok(_) => {
                link.io.tun_tx_packets += 1;
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                link.io.tun_tx_errors += 1;
                warn!(
                    "{} device {} is full: a packet was dropped",
                    link.kind_name(),
                    link.name
                );
                false
            }
            // EIO: the link is down (a device we created, not yet set up on the kernel
            // side). Like a host on a dead link, we lose the packet and carry on.
            Err(e) if e.raw_os_error() == Some(libc::EIO) => {
                link.io.tun_tx_errors += 1;
                link.io.tun_tx_link_down += 1;
                if link.io.tun_tx_link_down == 1 {
                    warn!(
                        "{} device {} is down: packets are dropped until it is up",
                        link.kind_name(),
                        link.name
                    );
                }
                false
            }
            Err(e) => {
                link.io.tun_tx_errors += 1;
                warn!(
                    "cannot write to {} device {}: {e}",
                    link.kind_name(),
                    link.name
                );
                false
            }
        }
    }
}
