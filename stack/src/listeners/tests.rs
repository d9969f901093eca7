//! Listeners with real socket pairs and a real UDP socket, without a daemon: batched delivery
//! keeps each listener's order and allocates nothing per datagram once its buffers have grown.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::UdpSocket;
use std::os::fd::{AsRawFd, OwnedFd};

use membership::{Config, Host, InterfaceConfig};

use super::*;
use crate::ids::Id;

/// Counts the allocations of the thread that asks ([`allocations`]); the other tests of this
/// binary, on their own threads, do not disturb the count.
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is handed to the system allocator unchanged; the counter is a
// thread-local Cell, which neither allocates nor locks.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

const GROUP: &str = "239.1.2.3";

struct Fixture {
    _poll: mio::Poll,
    listeners: Listeners,
    host: Host,
    owner: Owner,
}

fn fixture() -> Fixture {
    let poll = mio::Poll::new().unwrap();
    let listeners = Listeners::new(poll.registry().try_clone().unwrap());
    let mut host = Host::new(Config::default(), 7);
    let interface = InterfaceConfig {
        ipv4: Some("10.99.0.2".parse().unwrap()),
        ..InterfaceConfig::default()
    };
    host.add_interface(1, interface).unwrap();
    let owner = Owner {
        link: LinkId::from_index(0),
        host: HostId::from_index(0),
        core: CoreId::from_index(0),
        ifindex: 1,
    };
    Fixture {
        _poll: poll,
        listeners,
        host,
        owner,
    }
}

impl Fixture {
    /// A listener of GROUP, any source; the client's end of its socket.
    fn open(&mut self) -> (ListenerId, OwnedFd) {
        let (ours, theirs) = seqpacket_pair().unwrap();
        let (id, _) = self
            .listeners
            .open(
                &mut self.host,
                self.owner,
                GROUP.parse().unwrap(),
                None,
                SourceFilter::exclude(Vec::new()),
                ours,
                Instant::ZERO,
            )
            .unwrap();
        (id, theirs)
    }

    /// Datagrams numbered `from..to` (first 4 payload bytes), then the end of the turn.
    fn turn(&mut self, numbers: std::ops::Range<u32>) {
        let mut payload = [0x5a; 64];
        for n in numbers {
            payload[..4].copy_from_slice(&n.to_be_bytes());
            let datagram = Datagram {
                src: "10.99.0.1".parse().unwrap(),
                group: GROUP.parse().unwrap(),
                sport: 40000,
                dport: 5000,
                payload: &payload,
            };
            self.listeners.deliver(self.owner.link, &datagram, || true);
        }
        self.listeners.flush();
    }
}

/// The numbers of the messages waiting on a listener's client end, in order.
fn drain_listener(client: &OwnedFd) -> Vec<u32> {
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        // SAFETY: recv into a local buffer within its length.
        let n = unsafe {
            libc::recv(
                client.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n <= 0 {
            return got;
        }
        let (_, payload) = DatagramHeader::parse(&buf[..n as usize]).expect("a datagram");
        got.push(u32::from_be_bytes(payload[..4].try_into().unwrap()));
    }
}

fn drain_udp(socket: &UdpSocket) -> Vec<u32> {
    socket.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while let Ok(n) = socket.recv(&mut buf) {
        assert_eq!(n, 64);
        got.push(u32::from_be_bytes(buf[..4].try_into().unwrap()));
    }
    got
}

#[test]
fn batches_keep_order_and_allocate_nothing_per_datagram() {
    let mut f = fixture();
    let clients: Vec<(ListenerId, OwnedFd)> = (0..3).map(|_| f.open()).collect();
    // The third hands its UDP socket over (`--udp-to`): its payloads go as GSO runs.
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let forward = UdpSocket::bind("127.0.0.1:0").unwrap();
    forward.connect(sink.local_addr().unwrap()).unwrap();
    let mut handover = control::listen::FORWARD_MAGIC.to_vec();
    handover.extend_from_slice(&0u64.to_be_bytes());
    control::listen::send_message_with_fd(&clients[2].1, &handover, forward.as_raw_fd()).unwrap();
    f.listeners.readable(clients[2].0);

    // Each client takes what came after each turn (a socket holds a few hundred).
    let mut got = [Vec::new(), Vec::new(), Vec::new()];
    let take = |got: &mut [Vec<u32>; 3]| {
        got[0].extend(drain_listener(&clients[0].1));
        got[1].extend(drain_listener(&clients[1].1));
        got[2].extend(drain_udp(&sink));
    };
    // The first turn grows the buffers; the later ones allocate nothing.
    f.turn(0..200);
    take(&mut got);
    let mut during = 0;
    for turn in 1..3 {
        let before = allocations();
        f.turn(turn * 200..(turn + 1) * 200);
        during += allocations() - before;
        take(&mut got);
    }
    assert_eq!(during, 0, "allocations in 400 datagrams to 3 listeners");
    // The counter does count.
    let before = allocations();
    drop(std::hint::black_box(Vec::<u8>::with_capacity(10)));
    assert_eq!(allocations() - before, 1);

    let all: Vec<u32> = (0..600).collect();
    assert_eq!(got, [all.clone(), all.clone(), all]);
    assert_eq!(f.listeners.stats.udp_delivered, 3 * 600);
    assert_eq!(f.listeners.stats.udp_drop_queue_full, 0);
}

#[test]
fn a_full_listener_loses_its_tail_and_the_others_lose_nothing() {
    let mut f = fixture();
    let (_, slow) = f.open();
    let (_, fast) = f.open();
    // More than the slow one's socket holds, in turns of 500.
    let mut fast_got = Vec::new();
    for turn in 0..10 {
        f.turn(turn * 500..(turn + 1) * 500);
        fast_got.extend(drain_listener(&fast));
    }
    let slow_got = drain_listener(&slow);
    assert_eq!(fast_got, (0..5000).collect::<Vec<u32>>());
    assert!(slow_got.len() < 5000, "the slow one's queue is bounded");
    assert!(slow_got.windows(2).all(|w| w[0] < w[1]), "in order");
    let shown = f.listeners.show(&|_| "lo".into());
    assert_eq!(
        (shown[0].delivered, shown[0].dropped),
        (slow_got.len() as u64, 5000 - slow_got.len() as u64)
    );
    assert_eq!(
        f.listeners.stats.udp_drop_queue_full,
        5000 - slow_got.len() as u64
    );
}

#[test]
fn a_forwarding_listener_takes_its_count_and_nothing_after() {
    let mut f = fixture();
    let (id, client) = f.open();
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let forward = UdpSocket::bind("127.0.0.1:0").unwrap();
    forward.connect(sink.local_addr().unwrap()).unwrap();
    let mut handover = control::listen::FORWARD_MAGIC.to_vec();
    handover.extend_from_slice(&5u64.to_be_bytes());
    control::listen::send_message_with_fd(&client, &handover, forward.as_raw_fd()).unwrap();
    f.listeners.readable(id);
    f.turn(0..8);
    f.turn(8..10);
    assert_eq!(drain_udp(&sink), [0, 1, 2, 3, 4]);
    // The client is told, and nothing else comes on its socket.
    let mut buf = [0u8; 64];
    // SAFETY: recv into a local buffer within its length.
    let n = unsafe {
        libc::recv(
            client.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    };
    assert_eq!(&buf[..n as usize], &control::listen::DONE_MAGIC[..]);
    assert!(drain_listener(&client).is_empty());
    assert!(f.listeners.has_closed());
    let stats = &f.listeners.stats;
    assert_eq!(stats.udp_delivered, 5);
    // What came after the COUNT, in the same turn and later: nobody took it.
    assert_eq!(stats.udp_drop_no_listener, 5);
}
