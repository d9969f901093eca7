//! When packets arrive on the devices, as the kernel stamps them: the time a capture
//! (tcpdump, tshark) gives them. The kernel hands every frame it sends a device to the packet
//! sockets bound to it (`dev_queue_xmit_nit`), one copy stamped once for all of them, and only
//! then queues it for the device's reader. So a packet socket bound to each link, filtered to
//! the frames sent to the device (`PACKET_OUTGOING`), holds a stamped copy of every frame the
//! loop reads from it, in the same order, queued before the frame itself: the loop takes a
//! frame's stamp from its copy when it reads the frame, whatever it was busy with when the
//! frame came, and without a thread to wake.
//!
//! The copies and the frames are matched by their first bytes ([`PREFIX`]: the link, IP and
//! transport headers, whose lengths and checksums tell apart two frames of one flow): a copy
//! with no frame (the device's queue was full and dropped it) is passed over, a frame with no
//! copy (the socket's buffer was full) is stamped at its read. Two identical frames one after
//! the other, the first of them dropped by the device, give the second the first's stamp: a
//! test stream's datagrams carry their sequence number, and never are.
//!
//! This costs the kernel one clone of each frame a device is sent, and the loop one
//! `recvmmsg` per [`BATCH`] frames: the sockets are hooked only while something measures
//! (delays, checked streams, a test run). It needs `CAP_NET_RAW`; without it (or with
//! `--arrival-stamps thread`) the stamper thread of `arrivals.rs` stamps the devices instead.

use std::collections::VecDeque;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// How many first bytes of a frame are kept to match it with its copy.
pub(super) const PREFIX: usize = 128;
/// Copies taken from a socket in one call.
const BATCH: usize = 32;
/// Copies kept waiting for their frames, per link: more than a TAP device queues (500).
const PENDING_MAX: usize = 1024;
/// Copies a frame is compared with, at most.
const SCAN: usize = 64;
/// The socket's receive buffer: a full device queue of copies (each costs the kernel about
/// 1 KiB of buffer) and a loop's turn more.
const SOCKET_BUFFER: libc::c_int = 2 << 20;
/// Room for one `SCM_TIMESTAMPNS` control message (`CMSG_SPACE` of a timespec: 32 bytes).
const CONTROL_WORDS: usize = 8;

/// The copy of a frame the kernel sent a device.
struct Copy {
    /// Its first bytes (all of them when it is shorter than [`PREFIX`]).
    bytes: [u8; PREFIX],
    len: usize,
    /// When the kernel sent it (CLOCK_REALTIME, ns).
    sent_ns: i64,
}

impl Copy {
    fn is_of(&self, frame: &[u8]) -> bool {
        let n = frame.len().min(PREFIX);
        self.len == n && self.bytes[..n] == frame[..n]
    }
}

/// A link's packet socket and the copies taken from it whose frames were not read yet.
pub(super) struct KernelStamps {
    socket: OwnedFd,
    ifindex: i32,
    pending: VecDeque<Copy>,
    hooked: bool,
}

/// The buffers copies are taken into, one set for all links (the loop reads one at a time).
pub(super) struct CopyBuffers {
    bytes: Box<[[u8; PREFIX]; BATCH]>,
    control: Box<[[u64; CONTROL_WORDS]; BATCH]>,
}

impl Default for CopyBuffers {
    fn default() -> CopyBuffers {
        CopyBuffers {
            bytes: Box::new([[0; PREFIX]; BATCH]),
            control: Box::new([[0; CONTROL_WORDS]; BATCH]),
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

/// The classic BPF program keeping only the frames the kernel sends the device: load the
/// packet type, keep the whole frame if it is `PACKET_OUTGOING`, else nothing.
fn outgoing_only() -> [libc::sock_filter; 4] {
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    [
        op(
            LD_W_ABS,
            0,
            0,
            (libc::SKF_AD_OFF + libc::SKF_AD_PKTTYPE) as u32,
        ),
        op(JEQ_K, 0, 1, u32::from(libc::PACKET_OUTGOING)),
        op(RET_K, 0, 0, u32::MAX),
        op(RET_K, 0, 0, 0),
    ]
}

/// A packet socket receiving nothing yet (protocol 0, unbound), filtered to the frames the
/// kernel sends a device, stamping them, its buffer sized for a device's queue.
fn unbound_socket() -> io::Result<OwnedFd> {
    // SAFETY: a plain syscall; the descriptor is owned once created.
    let socket = unsafe {
        OwnedFd::from_raw_fd(check(libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        ))?)
    };
    let filter = outgoing_only();
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
        &socket,
        libc::SOL_SOCKET,
        libc::SO_ATTACH_FILTER,
        program_bytes,
    )?;
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
    /// A packet socket on the device of index `ifindex`, receiving stamped copies of the frames
    /// the kernel sends it from now on if `hooked` (see [`KernelStamps::hook`]). Fails
    /// without CAP_NET_RAW.
    pub fn open(ifindex: u32, hooked: bool) -> io::Result<KernelStamps> {
        let ifindex = i32::try_from(ifindex)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface index"))?;
        let mut stamps = KernelStamps {
            socket: unbound_socket()?,
            ifindex,
            pending: VecDeque::new(),
            hooked: false,
        };
        stamps.hook(hooked)?;
        Ok(stamps)
    }

    /// Receives the copies (`on`) or not: the kernel clones each frame a device is sent for
    /// the sockets hooked to it, a cost worth paying only while something measures. A socket
    /// is hooked by binding it to the device (a device that is down, once it comes up), and
    /// unhooked by closing it (binding to protocol 0 keeps the protocol it has): a new one,
    /// unbound, takes its place.
    pub fn hook(&mut self, on: bool) -> io::Result<()> {
        if on == self.hooked {
            return Ok(());
        }
        // The copies of a socket unhooked are of frames already read, or to be read before
        // a later hook: none is a later frame's.
        self.pending.clear();
        if !on {
            self.socket = unbound_socket()?;
            self.hooked = false;
            return Ok(());
        }
        // SAFETY: an all-zero sockaddr_ll is valid; its fields are set below.
        let mut address: libc::sockaddr_ll = unsafe { zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        address.sll_ifindex = self.ifindex;
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

    /// Whether the socket receives copies (see [`KernelStamps::hook`]).
    pub fn is_hooked(&self) -> bool {
        self.hooked
    }

    /// When the kernel sent the device `frame`, just read from it (CLOCK_REALTIME ns); `None`
    /// when its copy is not there (dropped by a full socket buffer). Only while hooked.
    pub fn sent_ns(&mut self, frame: &[u8], buffers: &mut CopyBuffers) -> Option<i64> {
        loop {
            let window = self.pending.len().min(SCAN);
            if let Some(at) = self.pending.range(..window).position(|c| c.is_of(frame)) {
                let sent = self.pending[at].sent_ns;
                // The copies before it are of frames the device dropped.
                self.pending.drain(..=at);
                return Some(sent);
            }
            if window == SCAN {
                // Not among the next SCAN copies: either its copy was lost (the socket's
                // buffer was full) and these are of the frames after it, or more than SCAN
                // frames before it were dropped by the device. Both happen only while the
                // loop cannot keep up; the window moves on so that a frame costs at most SCAN
                // comparisons, and the frames whose copies it passes are stamped at their read.
                self.pending.drain(..SCAN);
                return None;
            }
            // The frame's copy was queued on the socket before the frame on the device: it is
            // there unless it was dropped.
            match self.take_copies(buffers) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    log::debug!("arrival stamps: cannot read the kernel's copies: {e}");
                    return None;
                }
            }
        }
    }

    /// Takes up to [`BATCH`] copies from the socket into `pending`: how many.
    fn take_copies(&mut self, buffers: &mut CopyBuffers) -> io::Result<usize> {
        // SAFETY: all-zero iovecs and mmsghdrs are valid; each is pointed below at buffers
        // that outlive the call, with their lengths.
        let mut iovecs: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut messages: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for (i, (iovec, message)) in iovecs.iter_mut().zip(messages.iter_mut()).enumerate() {
            iovec.iov_base = buffers.bytes[i].as_mut_ptr().cast();
            iovec.iov_len = PREFIX;
            message.msg_hdr.msg_iov = iovec;
            message.msg_hdr.msg_iovlen = 1;
            message.msg_hdr.msg_control = buffers.control[i].as_mut_ptr().cast();
            message.msg_hdr.msg_controllen = size_of::<[u64; CONTROL_WORDS]>();
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
            let Some(sent_ns) = timestamp(&message.msg_hdr) else {
                continue;
            };
            if self.pending.len() == PENDING_MAX {
                self.pending.pop_front();
            }
            let len = (message.msg_len as usize).min(PREFIX);
            self.pending.push_back(Copy {
                bytes: buffers.bytes[i],
                len,
                sent_ns,
            });
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
