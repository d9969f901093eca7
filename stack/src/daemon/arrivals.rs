//! When packets arrive on the devices, as a second thread sees it: the loop reads a thousand
//! TAP ports one after the other, milliseconds apart when a bridge forwarded one datagram to
//! them all, and it may be in the middle of a turn (writing a burst of reports) when a packet
//! comes. A datagram stamped at its read would carry that lag into every join delay and
//! latency measured from it; a capture stamps it as the kernel queues it.
//!
//! The stamper thread waits on every device in an epoll set of its own, each armed for one
//! event (`EPOLLONESHOT`): the first packet to reach an empty device wakes it, and it writes
//! the clock into the device's slot. The loop takes that stamp for the first packet it reads
//! and re-arms the device once it has read it empty; packets read after the first in the same
//! burst are stamped at their read (`Link::arrival_stamp`). A stamp is never before the
//! packet's arrival: the thread reads the clock after epoll found the packet there, each
//! arming has its number (an event of an earlier arming, delivered late, stamps nothing), and
//! the thread stamps nothing once the loop has read a packet of the arming (a thread woken
//! late would give the first packet's stamp to the second). One
//! wake-up of the thread and one `epoll_ctl` of the loop per time a device goes from empty to
//! not, not per packet: under a flood a device stays non-empty and costs nothing more. The
//! protocol state stays the loop's alone: the thread writes stamps, nothing else.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::thread::JoinHandle;

use log::warn;
use parking_lot::{Mutex, RwLock};

use super::clock::Clock;

/// The stop signal's key in the epoll set; devices have keys from 0.
const STOP: u64 = u64::MAX;

/// A device's stamp: the number of its current arming, and the first packet's arrival since
/// (ns), if the thread saw one.
#[derive(Default)]
struct Stamp {
    arming: u32,
    first: Option<u64>,
    /// The loop read a packet of this arming: a stamp the thread makes after it would be a
    /// later packet's, stamped with an earlier one's arrival.
    read: bool,
}

type Slots = Arc<RwLock<HashMap<u32, Arc<Mutex<Stamp>>>>>;

/// An event's data: the device's key and the arming it was made by.
fn event_data(key: u32, arming: u32) -> u64 {
    (u64::from(key) << 32) | u64::from(arming)
}

/// The stamper thread and its epoll set.
pub(super) struct Arrivals {
    epoll: OwnedFd,
    stop: OwnedFd,
    slots: Slots,
    next_key: u32,
    thread: Option<JoinHandle<()>>,
}

/// One device's stamp, as the stamper thread writes it.
pub(super) struct ArrivalSlot {
    key: u32,
    fd: RawFd,
    stamp: Arc<Mutex<Stamp>>,
}

impl ArrivalSlot {
    /// When the first packet of the device's current burst arrived (the daemon clock's ns),
    /// for the first packet read: later calls give `None` until the device is re-armed, and so
    /// does the first if the thread had not stamped it yet (it will not stamp it after).
    pub fn take(&self) -> Option<u64> {
        let mut stamp = self.stamp.lock();
        stamp.read = true;
        stamp.first.take()
    }
}

fn check(result: libc::c_int) -> io::Result<libc::c_int> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

impl Arrivals {
    /// Starts the stamper thread, stamping with `clock`.
    pub fn start(clock: Clock) -> io::Result<Arrivals> {
        // SAFETY: plain syscalls; each descriptor is owned once created.
        let epoll =
            unsafe { OwnedFd::from_raw_fd(check(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
        let stop = unsafe {
            OwnedFd::from_raw_fd(check(libc::eventfd(
                0,
                libc::EFD_CLOEXEC | libc::EFD_NONBLOCK,
            ))?)
        };
        ctl(
            epoll.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            stop.as_raw_fd(),
            libc::EPOLLIN as u32,
            STOP,
        )?;
        let slots: Slots = Arc::default();
        let thread = {
            let (epoll, slots) = (epoll.as_raw_fd(), slots.clone());
            std::thread::Builder::new()
                .name("arrivals".into())
                .spawn(move || stamp_arrivals(epoll, &slots, clock))?
        };
        Ok(Arrivals {
            epoll,
            stop,
            slots,
            next_key: 0,
            thread: Some(thread),
        })
    }

    /// Watches device `fd` (until [`Arrivals::unwatch`]): its slot.
    pub fn watch(&mut self, fd: RawFd) -> io::Result<ArrivalSlot> {
        let key = self.next_key;
        self.next_key = self.next_key.wrapping_add(1);
        let stamp = Arc::new(Mutex::new(Stamp::default()));
        self.slots.write().insert(key, stamp.clone());
        let slot = ArrivalSlot { key, fd, stamp };
        let data = event_data(key, 0);
        if let Err(e) = ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, ARMED, data) {
            self.slots.write().remove(&key);
            return Err(e);
        }
        Ok(slot)
    }

    /// Arms `slot`'s device for its next first packet: after the loop read it empty.
    pub fn rearm(&self, slot: &ArrivalSlot) {
        let arming = {
            let mut stamp = slot.stamp.lock();
            stamp.arming = stamp.arming.wrapping_add(1);
            stamp.first = None;
            stamp.read = false;
            stamp.arming
        };
        // A packet that came after the last read fires at once: its stamp is this call's time,
        // a little late, never lost.
        let data = event_data(slot.key, arming);
        let epoll = self.epoll.as_raw_fd();
        if let Err(e) = ctl(epoll, libc::EPOLL_CTL_MOD, slot.fd, ARMED, data) {
            warn!("arrival stamps: cannot re-arm a device: {e}");
        }
    }

    /// Stops watching `slot`'s device, before it is closed.
    pub fn unwatch(&self, slot: &ArrivalSlot) {
        let _ = ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_DEL, slot.fd, 0, 0);
        self.slots.write().remove(&slot.key);
    }
}

impl Drop for Arrivals {
    fn drop(&mut self) {
        let one: u64 = 1;
        // SAFETY: an 8-byte write from a live u64 to the eventfd the thread waits on.
        let _ = unsafe { libc::write(self.stop.as_raw_fd(), (&one as *const u64).cast(), 8) };
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

const ARMED: u32 = (libc::EPOLLIN | libc::EPOLLONESHOT) as u32;

fn ctl(epoll: RawFd, op: libc::c_int, fd: RawFd, events: u32, key: u64) -> io::Result<()> {
    let mut event = libc::epoll_event { events, u64: key };
    // SAFETY: `event` lives across the call; the kernel copies it.
    check(unsafe { libc::epoll_ctl(epoll, op, fd, &mut event) }).map(|_| ())
}

/// The thread: each device's first packet after its arming, stamped.
fn stamp_arrivals(epoll: RawFd, slots: &Slots, clock: Clock) {
    // A stamp is as good as the thread's wake-up: on a machine whose cores are busy (the
    // loop, a capture, the device under test) a normal thread waits its turn for them. The
    // lowest real-time priority puts it first; it runs microseconds per device that turns
    // non-empty. Without the privilege it stays a normal thread.
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: `param` lives across the call; 0 is the calling thread.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } != 0 {
        log::debug!(
            "arrival stamps: no real-time priority ({}): stamped at normal priority",
            io::Error::last_os_error()
        );
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    loop {
        // SAFETY: `events` has room for the count passed.
        let n = unsafe { libc::epoll_wait(epoll, events.as_mut_ptr(), events.len() as i32, -1) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            warn!(
                "arrival stamps: epoll_wait failed: {}",
                io::Error::last_os_error()
            );
            return;
        }
        // Read after epoll found the packets there: never before they came.
        let now = clock.now_ns();
        let slots = slots.read();
        for event in &events[..n as usize] {
            let data = event.u64;
            if data == STOP {
                return;
            }
            let (key, arming) = ((data >> 32) as u32, data as u32);
            if let Some(stamp) = slots.get(&key) {
                let mut stamp = stamp.lock();
                if stamp.arming == arming && !stamp.read && stamp.first.is_none() {
                    stamp.first = Some(now);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    use super::*;

    /// Waits up to a second for the thread to stamp `slot` (without reading, which would
    /// stop it), then reads the stamp.
    fn stamped(slot: &ArrivalSlot) -> Option<u64> {
        for _ in 0..1000 {
            if slot.stamp.lock().first.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        slot.take()
    }

    /// The first packet after an arming is stamped once, between its sending and its read;
    /// nothing more until the device is re-armed; a packet that came before the re-arming is
    /// stamped at it.
    #[test]
    fn the_first_packet_of_each_arming_is_stamped_once_and_never_before_it_came() {
        let clock = Clock::start();
        let mut arrivals = Arrivals::start(clock).unwrap();
        let (mut tx, mut rx) = UnixStream::pair().unwrap();
        rx.set_nonblocking(true).unwrap();
        let slot = arrivals.watch(rx.as_raw_fd()).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(slot.stamp.lock().first, None, "nothing came");

        let sent = clock.now_ns();
        tx.write_all(b"a").unwrap();
        let at = stamped(&slot).expect("the first packet stamped");
        assert!(at >= sent && at <= clock.now_ns(), "{sent} <= {at}");
        tx.write_all(b"b").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            slot.take(),
            None,
            "the second is not the first of an arming"
        );

        let mut buf = [0; 8];
        assert_eq!(rx.read(&mut buf).unwrap(), 2);
        let before = clock.now_ns();
        tx.write_all(b"c").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        arrivals.rearm(&slot);
        let at = stamped(&slot).expect("a packet there at the re-arming is stamped");
        assert!(
            at > before,
            "stamped at the re-arming, not before the packet came"
        );

        // A packet read before the thread stamped it: nothing stamped after.
        assert_eq!(rx.read(&mut buf).unwrap(), 1);
        arrivals.rearm(&slot);
        assert_eq!(slot.take(), None, "read before any packet came");
        tx.write_all(b"d").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(slot.take(), None, "the arming's first read was taken");

        arrivals.unwatch(&slot);
        drop(arrivals); // the thread stops
    }
}
