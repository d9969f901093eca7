//! When packets arrive on the devices, as the kernel stamps them: the time a capture
//! (tcpdump, tshark) gives them. The kernel hands every frame it sends a device to the packet
//! sockets hooked to it (`dev_queue_xmit_nit`), one copy stamped once for all of them, and only
//! then queues it for the device's reader. So a packet socket filtered to the frames sent to
//! the links' devices (`PACKET_OUTGOING`) holds a stamped copy of every frame the loop reads
//! from them, each device's in the same order, queued before the frame itself: the loop takes a
//! frame's stamp from its copy when it reads the frame, whatever it was busy with when the
//! frame came, and without a thread to wake.
//!
//! The copies and the frames are matched by their first bytes ([`PREFIX`]: the link, IP and
//! transport headers, whose lengths and checksums tell apart two frames of one flow, and a test
//! stream's sequence number), kept as a hash: a copy with no frame (the device's queue was full
//! and dropped it) is passed over, a frame with no copy (the socket's buffer was full) is
//! stamped at its read. Two identical frames one after the other, the first of them dropped by
//! the device, give the second the first's stamp.
//!
//! One socket serves every link: the kernel waits for a grace period (`synchronize_net`) each
//! time it closes a hooked packet socket, and a thousand links' sockets took 18 s to close. It
//! costs the kernel one clone of each frame a link's device is sent, and the loop one
//! `recvmmsg` per [`BATCH`] frames, so it is hooked only while something measures (delays,
//! checked streams, a test run), and unhooked by closing it on a thread of its own. It needs
//! `CAP_NET_RAW`; without it (or with `--arrival-stamps thread`) the stamper thread of
//! `arrivals.rs` stamps the devices instead.

use std::collections::VecDeque;
use std::hash::Hasher;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// How many first bytes of a frame tell it from the others.
const PREFIX: usize = 128;
/// Copies taken from the socket in one call.
const BATCH: usize = 32;
/// Copies kept waiting for their frames, per link: more than a TAP device queues (500).
const PENDING_MAX: usize = 1024;
/// Copies a frame is compared with, at most.
const SCAN: usize = 64;
/// The socket's receive buffer: a few devices' full queues of copies (each costs the kernel
/// about 1 KiB of buffer).
const SOCKET_BUFFER: libc::c_int = 8 << 20;
/// Room for one `SCM_TIMESTAMPNS` control message (`CMSG_SPACE` of a timespec: 32 bytes).
const CONTROL_WORDS: usize = 8;

/// The copy of a frame the kernel sent a device.
#[derive(Clone, Copy, Debug)]
struct Copy {
    /// What it is matched by: the hash of its first bytes ([`PREFIX`]) and their number.
    key: (u64, usize),
    /// When the kernel sent it (CLOCK_REALTIME, ns).
    sent_ns: i64,
}

impl Copy {
    /// What the copy of `frame` (its whole or first [`PREFIX`] bytes) is matched by.
    fn key(frame: &[u8]) -> (u64, usize) {
        let prefix = &frame[..frame.len().min(PREFIX)];
        let mut hasher = rustc_hash::FxHasher::default();
        hasher.write(prefix);
        (hasher.finish(), prefix.len())
    }

    fn of(bytes: &[u8], sent_ns: i64) -> Copy {
        Copy {
            key: Copy::key(bytes),
            sent_ns,
        }
    }
}

/// One device's copies whose frames the loop has not read yet, in the order the kernel sent
/// them (the order of the device's queue).
#[derive(Default)]
struct Copies(VecDeque<Copy>);

/// What [`Copies::find`] found of a frame's copy.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    /// Its stamp (CLOCK_REALTIME, ns).
    Sent(i64),
    /// Not among the next [`SCAN`] copies: passed over (its frame to be stamped at its read).
    Passed,
    /// Not here yet: more may be on the socket.
    NotYet,
}

impl Copies {
    fn push(&mut self, copy: Copy) {
        if self.0.len() == PENDING_MAX {
            self.0.pop_front();
        }
        self.0.push_back(copy);
    }

    /// The copy of the frame of `key` just read, and the copies before it gone (of frames the
    /// device dropped).
    fn find(&mut self, key: (u64, usize)) -> Found {
        let window = self.0.len().min(SCAN);
        if let Some(at) = self.0.range(..window).position(|c| c.key == key) {
            let sent = self.0[at].sent_ns;
            self.0.drain(..=at);
            return Found::Sent(sent);
        }
        if window < SCAN {
            return Found::NotYet;
        }
        // Not among the next SCAN copies: either its copy was lost (the socket's buffer was
        // full) and these are of the frames after it, or more than SCAN frames before it were
        // dropped by the device. Both happen only while the loop cannot keep up; the window
        // moves on so that a frame costs at most SCAN comparisons, and the frames whose copies
        // it passes are stamped at their read.
        self.0.drain(..SCAN);
        Found::Passed
    }
}

/// The packet socket of every link whose packets the kernel stamps, and each link's copies
/// taken from it whose frames were not read yet (by the device's interface index).
pub(super) struct KernelStamps {
    socket: OwnedFd,
    /// The copies waiting for their frames, of each device watched.
    pending: rustc_hash::FxHashMap<u32, Copies>,
    hooked: bool,
    buffers: CopyBuffers,
}

/// The buffers copies are taken into.
struct CopyBuffers {
    bytes: Box<[[u8; PREFIX]; BATCH]>,
    control: Box<[[u64; CONTROL_WORDS]; BATCH]>,
    addresses: Box<[libc::sockaddr_ll; BATCH]>,
}

impl Default for CopyBuffers {
    fn default() -> CopyBuffers {
        CopyBuffers {
            bytes: Box::new([[0; PREFIX]; BATCH]),
            control: Box::new([[0; CONTROL_WORDS]; BATCH]),
            // SAFETY: an all-zero sockaddr_ll is valid.
            addresses: Box::new(unsafe { zeroed() }),
        }
    }
}

fn check(result: libc::c_int) -> io::Result<libc::c_int> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

fn set_option(
    socket: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &[u8],
) -> io::Result<()> {
    // SAFETY: `value` is live and its length is passed with it.
    check(unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            value.as_ptr().cast(),
            value.len() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// The classic BPF program keeping only the frames the kernel sends the devices of interface
/// indexes `lowest..=highest` (the loop passes over the copies of other devices in between):
/// the whole frame if its packet type is `PACKET_OUTGOING` and its device in the range, else
/// nothing. `None`: no device, nothing kept.
fn outgoing_to(range: Option<(u32, u32)>) -> Vec<libc::sock_filter> {
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
    const JGT_K: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let ancillary = |field: libc::c_int| (libc::SKF_AD_OFF + field) as u32;
    let Some((lowest, highest)) = range else {
        return vec![op(RET_K, 0, 0, 0)];
    };
    vec![
        op(LD_W_ABS, 0, 0, ancillary(libc::SKF_AD_PKTTYPE)),
        op(JEQ_K, 0, 4, u32::from(libc::PACKET_OUTGOING)),
        op(LD_W_ABS, 0, 0, ancillary(libc::SKF_AD_IFINDEX)),
        op(JGE_K, 0, 2, lowest),
        op(JGT_K, 1, 0, highest),
        op(RET_K, 0, 0, u32::MAX),
        op(RET_K, 0, 0, 0),
    ]
}

fn attach(socket: &OwnedFd, filter: &[libc::sock_filter]) -> io::Result<()> {
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: `program` and the filter it points to live across the call, which copies them;
    // the option's value is the fprog's bytes.
    let program_bytes = unsafe {
        std::slice::from_raw_parts(
            (&program as *const libc::sock_fprog).cast::<u8>(),
            size_of::<libc::sock_fprog>(),
        )
    };
    set_option(
        socket,
        libc::SOL_SOCKET,
        libc::SO_ATTACH_FILTER,
        program_bytes,
    )
}

/// A packet socket receiving nothing yet (protocol 0, unbound), filtered by `filter`, stamping
/// what it receives, its buffer sized for the devices' queues.
fn unbound_socket(filter: &[libc::sock_filter]) -> io::Result<OwnedFd> {
    // SAFETY: a plain syscall; the descriptor is owned once created.
    let socket = unsafe {
        OwnedFd::from_raw_fd(check(libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        ))?)
    };
    attach(&socket, filter)?;
    let on: libc::c_int = 1;
    set_option(
        &socket,
        libc::SOL_SOCKET,
        libc::SO_TIMESTAMPNS,
        &on.to_ne_bytes(),
    )?;
    // Above the system's rmem_max with CAP_NET_ADMIN; up to it without.
    let size = SOCKET_BUFFER.to_ne_bytes();
    if set_option(&socket, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &size).is_err() {
        set_option(&socket, libc::SOL_SOCKET, libc::SO_RCVBUF, &size)?;
    }
    Ok(socket)
}

impl KernelStamps {
    /// The packet socket, unhooked, no device watched. Fails without CAP_NET_RAW.
    pub fn open() -> io::Result<KernelStamps> {
        Ok(KernelStamps {
            socket: unbound_socket(&outgoing_to(None))?,
            pending: rustc_hash::FxHashMap::default(),
            hooked: false,
            buffers: CopyBuffers::default(),
        })
    }

    /// The filter for the devices watched now.
    fn filter(&self) -> Vec<libc::sock_filter> {
        let lowest = self.pending.keys().min().copied();
        let highest = self.pending.keys().max().copied();
        outgoing_to(lowest.zip(highest))
    }

    /// Takes copies of the frames sent to the device of index `ifindex` too.
    pub fn watch(&mut self, ifindex: u32) -> io::Result<()> {
        self.pending.insert(ifindex, Copies::default());
        let filter = self.filter();
        attach(&self.socket, &filter).inspect_err(|_| {
            self.pending.remove(&ifindex);
        })
    }

    /// No longer takes copies of the frames sent to the device of index `ifindex`.
    pub fn unwatch(&mut self, ifindex: u32) {
        if self.pending.remove(&ifindex).is_some() {
            let filter = self.filter();
            if let Err(e) = attach(&self.socket, &filter) {
                log::warn!("arrival stamps: cannot narrow the kernel's copies: {e}");
            }
        }
    }

    /// Whether the socket receives copies (see [`KernelStamps::hook`]).
    pub fn is_hooked(&self) -> bool {
        self.hooked
    }

    /// Receives the copies (`on`) or not: the kernel clones each frame a device is sent for
    /// the sockets hooked to it, a cost worth paying only while something measures. The socket
    /// is hooked by binding it to every device (its filter keeps the links'), and unhooked by
    /// closing it (binding to protocol 0 keeps the protocol it has), on a thread of its own
    /// (the kernel waits for a grace period): a new one, unbound, takes its place.
    pub fn hook(&mut self, on: bool) -> io::Result<()> {
        if on == self.hooked {
            return Ok(());
        }
        // The copies of a socket unhooked are of frames already read, or to be read before a
        // later hook: none is a later frame's.
        for copies in self.pending.values_mut() {
            *copies = Copies::default();
        }
        if !on {
            let fresh = unbound_socket(&self.filter())?;
            let old = std::mem::replace(&mut self.socket, fresh);
            self.hooked = false;
            let closing = std::thread::Builder::new().name("stamps-close".into());
            // If no thread can be made, closed here.
            let _ = closing.spawn(move || drop(old));
            return Ok(());
        }
        // SAFETY: an all-zero sockaddr_ll is valid; its fields are set below.
        let mut address: libc::sockaddr_ll = unsafe { zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: `address` lives across the call and its size is passed with it.
        check(unsafe {
            libc::bind(
                self.socket.as_raw_fd(),
                (&address as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        self.hooked = true;
        Ok(())
    }

    /// When the kernel sent `frame`, just read from the device of index `ifindex`, to the
    /// device (CLOCK_REALTIME ns); `None` when its copy is not there (dropped by a full socket
    /// buffer), or while unhooked.
    pub fn sent_ns(&mut self, ifindex: u32, frame: &[u8]) -> Option<i64> {
        if !self.hooked {
            return None;
        }
        let copy_of = Copy::key(frame);
        loop {
            match self.pending.get_mut(&ifindex)?.find(copy_of) {
                Found::Sent(sent_ns) => return Some(sent_ns),
                Found::Passed => return None,
                Found::NotYet => {}
            }
            // The frame's copy was queued on the socket before the frame on the device: it is
            // there unless it was dropped.
            match self.take_copies() {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    log::debug!("arrival stamps: cannot read the kernel's copies: {e}");
                    return None;
                }
            }
        }
    }

    /// Takes up to [`BATCH`] copies from the socket, each to its device's `pending`: how many.
    fn take_copies(&mut self) -> io::Result<usize> {
        let buffers = &mut self.buffers;
        // SAFETY: all-zero iovecs and mmsghdrs are valid; each is pointed below at buffers
        // that outlive the call, with their lengths.
        let mut iovecs: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut messages: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for (i, (iovec, message)) in iovecs.iter_mut().zip(messages.iter_mut()).enumerate() {
            iovec.iov_base = buffers.bytes[i].as_mut_ptr().cast();
            iovec.iov_len = PREFIX;
            let header = &mut message.msg_hdr;
            header.msg_name = (&mut buffers.addresses[i] as *mut libc::sockaddr_ll).cast();
            header.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            header.msg_iov = iovec;
            header.msg_iovlen = 1;
            header.msg_control = buffers.control[i].as_mut_ptr().cast();
            header.msg_controllen = size_of::<[u64; CONTROL_WORDS]>();
        }
        // SAFETY: `messages` has BATCH entries, each pointing at live buffers (above).
        let n = unsafe {
            libc::recvmmsg(
                self.socket.as_raw_fd(),
                messages.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        let n = n as usize;
        for (i, message) in messages[..n].iter().enumerate() {
            let ifindex = buffers.addresses[i].sll_ifindex as u32;
            // A device in the filter's range that is not a link's.
            let Some(copies) = self.pending.get_mut(&ifindex) else {
                continue;
            };
            let Some(sent_ns) = timestamp(&message.msg_hdr) else {
                continue;
            };
            let len = (message.msg_len as usize).min(PREFIX);
            copies.push(Copy::of(&buffers.bytes[i][..len], sent_ns));
        }
        Ok(n)
    }
}

/// The `SCM_TIMESTAMPNS` of a received message, in ns.
fn timestamp(header: &libc::msghdr) -> Option<i64> {
    // SAFETY: the control buffer was filled by recvmmsg, whose msg_controllen bounds the
    // walk; CMSG_* stay within it and the timespec is read unaligned.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let at: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                return Some(at.tv_sec * 1_000_000_000 + at.tv_nsec);
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u8) -> Vec<u8> {
        vec![n; 60]
    }

    fn copies_of(frames: &[u8]) -> Copies {
        let mut copies = Copies::default();
        for &n in frames {
            copies.push(Copy::of(&frame(n), i64::from(n) * 1000));
        }
        copies
    }

    /// Each frame read takes its own copy's stamp, in order; the copies of frames the device
    /// dropped are passed over; a frame whose copy is not there yet asks for more.
    #[test]
    fn frames_take_their_copies_stamps_and_pass_over_the_dropped() {
        // The kernel sent 1..=5; the device dropped 2 and 3.
        let mut copies = copies_of(&[1, 2, 3, 4, 5]);
        assert_eq!(copies.find(Copy::key(&frame(1))), Found::Sent(1000));
        assert_eq!(copies.find(Copy::key(&frame(4))), Found::Sent(4000));
        assert_eq!(copies.0.len(), 1, "2 and 3 gone with 4");
        assert_eq!(copies.find(Copy::key(&frame(5))), Found::Sent(5000));
        assert_eq!(copies.find(Copy::key(&frame(6))), Found::NotYet);
    }

    /// Only the first PREFIX bytes count: frames alike in them are one to the match; frames of
    /// other lengths are not.
    #[test]
    fn a_copy_is_matched_by_its_first_bytes_and_their_number() {
        let long = vec![7u8; 1500];
        let mut copies = Copies::default();
        copies.push(Copy::of(&long[..PREFIX], 1));
        let mut other_tail = long.clone();
        other_tail[PREFIX + 10] = 8;
        assert_eq!(copies.find(Copy::key(&other_tail)), Found::Sent(1));
        copies.push(Copy::of(&long[..60], 2));
        assert_eq!(copies.find(Copy::key(&long[..61])), Found::NotYet);
        assert_eq!(copies.find(Copy::key(&long[..60])), Found::Sent(2));
    }

    /// A frame whose copy was lost costs SCAN comparisons at most: the window moves on, and
    /// the frames after it find theirs again once past it.
    #[test]
    fn a_lost_copy_moves_the_window_on() {
        let mut copies = Copies::default();
        for n in 0..(SCAN as i64 + 10) {
            copies.push(Copy::of(&n.to_be_bytes(), n));
        }
        let lost = 1_000_000i64.to_be_bytes();
        assert_eq!(copies.find(Copy::key(&lost)), Found::Passed);
        assert_eq!(copies.0.len(), 10, "the window passed over");
        let next = (SCAN as i64 + 3).to_be_bytes();
        assert_eq!(copies.find(Copy::key(&next)), Found::Sent(SCAN as i64 + 3));
    }

    /// A device's unread copies are bounded: the oldest go first.
    #[test]
    fn the_copies_kept_are_bounded() {
        let mut copies = Copies::default();
        for n in 0..(PENDING_MAX as i64 + 5) {
            copies.push(Copy::of(&n.to_be_bytes(), n));
        }
        assert_eq!(copies.0.len(), PENDING_MAX);
        assert_eq!(copies.0[0].sent_ns, 5);
    }

    /// The filter keeps nothing without a device, and checks the packet type and the range of
    /// devices with one; every jump lands inside it.
    #[test]
    fn the_filter_checks_the_direction_and_the_devices_range() {
        assert_eq!(outgoing_to(None).len(), 1);
        let program = outgoing_to(Some((5, 9)));
        assert_eq!(program.len(), 7);
        assert_eq!((program[3].k, program[4].k), (5, 9));
        for (i, op) in program.iter().enumerate() {
            if op.code & 0x07 == libc::BPF_JMP as u16 {
                for offset in [op.jt, op.jf] {
                    assert!(i + 1 + usize::from(offset) < program.len());
                }
            }
        }
    }
}
