//! Data-path helpers (datapath.rs): `tunmcastctl listen` clients, and the namespace's kernel
//! sending UDP to a group onto the link from chosen source addresses, optionally behind an
//! IPv6 hop-by-hop header.

use std::fs::File;
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::{ip, must_wait, Daemon, Netns, Spawned};

impl Daemon<'_> {
    /// Starts `tunmcastctl --control SOCKET --json listen ARGS` and returns once `show` lists
    /// one more listener than before.
    pub fn listen(&self, args: &[&str]) -> Spawned {
        let before = self.listeners().len();
        let socket = self.socket.to_str().expect("UTF-8 socket path");
        let mut full = vec!["--control", socket, "--json", "listen"];
        full.extend_from_slice(args);
        let mut process = self.ns.spawn("listen", &self.ctl, &full);
        must_wait(
            &format!("listener `{}` to be registered", args.join(" ")),
            crate::secs(5),
            || {
                if let Some(status) = process.try_status() {
                    panic!(
                        "listen {args:?} exited ({status}): {}",
                        process.stderr_text()
                    );
                }
                self.listeners().len() > before
            },
        );
        process
    }

    /// `show`'s listeners.
    pub fn listeners(&self) -> Vec<Value> {
        self.show()["listeners"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// The `--json` datagrams a listener printed so far.
pub fn received(listener: &Spawned) -> Vec<Value> {
    listener
        .stdout_text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Waits until the listener printed at least `n` datagrams; returns their payloads (hex).
pub fn wait_payloads(listener: &Spawned, n: usize, timeout: Duration) -> Vec<String> {
    let mut got = Vec::new();
    let ok = crate::wait_until(timeout, || {
        got = received(listener);
        got.len() >= n
    });
    assert!(ok, "wanted {n} datagrams within {timeout:?}, got {got:?}");
    got.iter()
        .map(|d| d["payload_hex"].as_str().expect("payload_hex").to_string())
        .collect()
}

/// Datagrams of `len` bytes from `src` to `group:port` for `duration`, `rate` per second
/// (paced in batches of 100; 0: as fast as the kernel takes them; ENOBUFS retried).
#[derive(Debug, Clone, Copy)]
pub struct Flood {
    pub src: IpAddr,
    pub group: IpAddr,
    pub port: u16,
    pub duration: Duration,
    pub rate: u64,
    pub len: usize,
}

/// One datagram for [`Netns::kernel_send`].
#[derive(Debug, Clone)]
pub struct Udp {
    pub src: IpAddr,
    pub group: IpAddr,
    pub port: u16,
    pub payload: Vec<u8>,
    /// IPv6: send it behind a hop-by-hop header (PadN only), as IPV6_HOPOPTS makes it.
    pub hop_by_hop: bool,
}

impl Udp {
    pub fn new(src: &str, group: &str, port: u16, payload: &[u8]) -> Udp {
        Udp {
            src: ip(src),
            group: ip(group),
            port,
            payload: payload.to_vec(),
            hop_by_hop: false,
        }
    }

    pub fn with_hop_by_hop(mut self) -> Udp {
        self.hop_by_hop = true;
        self
    }
}

/// A UDP socket of this namespace bound to `src`, sending multicast out of `ifindex`.
fn sender(src: IpAddr, ifindex: u32, hop_by_hop: bool) -> std::io::Result<UdpSocket> {
    let socket = match src {
        IpAddr::V4(v4) => {
            let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
            socket.bind(&SocketAddrV4::new(v4, 0).into())?;
            socket.set_multicast_if_v4(&v4)?;
            socket
        }
        IpAddr::V6(v6) => {
            let socket = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::DGRAM, None)?;
            socket.bind(&SocketAddrV6::new(v6, 0, 0, ifindex).into())?;
            socket.set_multicast_if_v6(ifindex)?;
            socket
        }
    };
    if hop_by_hop {
        // Next header (the kernel fills it in), length 0 (8 bytes), PadN of 4. Neither socket2
        // nor nix wraps IPV6_HOPOPTS: the one setsockopt of the harness written by hand.
        let option = [0u8, 0, 1, 4, 0, 0, 0, 0];
        // SAFETY: setsockopt with a pointer to `option` and its length, on a live socket.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_IPV6,
                libc::IPV6_HOPOPTS,
                option.as_ptr().cast(),
                option.len() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(socket.into())
}

impl Netns {
    /// A TAP device `name` with the kernel's standard addresses on it, and tunmcastd on it as
    /// a host with its own MAC (`--tap`) and the daemon's standard addresses.
    pub fn tap_daemon(&self, name: &str) -> Daemon<'_> {
        self.ip(&["tuntap", "add", "dev", name, "mode", "tap"]);
        self.ip(&["link", "set", name, "addrgenmode", "none"]);
        self.ip(&["addr", "add", crate::KERNEL_V4_CIDR, "dev", name]);
        let ll = format!("{}/64", crate::KERNEL_LL);
        self.ip(&["-6", "addr", "add", &ll, "dev", name, "nodad"]);
        self.ip(&["link", "set", name, "up"]);
        let socket = self.dir().join("ctl.sock");
        let socket_arg = socket.to_str().expect("UTF-8 temp dir").to_string();
        let args = [
            "--tap",
            "--iface",
            name,
            "--ipv4",
            crate::DAEMON_V4_CIDR,
            "--ipv6-ll",
            "fe80::2",
            "--control",
            &socket_arg,
        ];
        self.spawn_daemon_with(&args, &socket)
    }

    /// Runs `f` on a thread inside the namespace (sockets it makes belong to the namespace).
    pub(crate) fn in_netns<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> T {
        let path = Path::new("/var/run/netns").join(self.name());
        let result = std::thread::spawn(move || {
            let netns = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            // SAFETY: setns(2) on this thread only; the thread ends right after.
            if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(format!("setns: {}", std::io::Error::last_os_error()));
            }
            f()
        })
        .join()
        .expect("the namespace thread does not panic");
        result.unwrap_or_else(|e| panic!("in netns {}: {e}", self.name()))
    }

    /// The namespace's kernel sends `datagrams` out of `iface`, in order.
    pub fn kernel_send(&self, iface: &str, datagrams: &[Udp]) {
        let iface = iface.to_string();
        let datagrams = datagrams.to_vec();
        self.in_netns(move || {
            let ifindex = ifindex(&iface)?;
            for d in &datagrams {
                let socket = sender(d.src, ifindex, d.hop_by_hop)
                    .map_err(|e| format!("socket from {}: {e}", d.src))?;
                let to: SocketAddr = match d.group {
                    IpAddr::V6(g) => SocketAddrV6::new(g, d.port, 0, ifindex).into(),
                    g => (g, d.port).into(),
                };
                socket
                    .send_to(&d.payload, to)
                    .map_err(|e| format!("send to {to}: {e}"))?;
            }
            Ok(())
        })
    }

    /// The namespace's kernel sends `flood` out of `iface`; returns how many it sent.
    pub fn kernel_flood(&self, iface: &str, flood: &Flood) -> u64 {
        let iface = iface.to_string();
        let Flood {
            src,
            group,
            port,
            duration,
            rate,
            len,
        } = *flood;
        self.in_netns(move || {
            let ifindex = ifindex(&iface)?;
            let socket = sender(src, ifindex, false).map_err(|e| e.to_string())?;
            let start = std::time::Instant::now();
            let payload = vec![0x5a; len];
            let mut sent = 0;
            while start.elapsed() < duration {
                if rate > 0 && sent % 100 == 0 {
                    let due = Duration::from_secs_f64(sent as f64 / rate as f64);
                    if let Some(ahead) = due.checked_sub(start.elapsed()) {
                        std::thread::sleep(ahead);
                    }
                }
                match socket.send_to(&payload, (group, port)) {
                    Ok(_) => sent += 1,
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                        std::thread::sleep(Duration::from_micros(50))
                    }
                    Err(e) => return Err(format!("flood: {e}")),
                }
            }
            Ok(sent)
        })
    }

    /// The namespace's kernel sends `count` datagrams of `len` bytes (at least 4) from `src` to
    /// `group:port` out of `iface`, as fast as it takes them (ENOBUFS retried), each numbered
    /// by its first 4 bytes (big endian, from 0).
    pub fn kernel_numbered_burst(
        &self,
        iface: &str,
        (src, group, port): (IpAddr, IpAddr, u16),
        count: u32,
        len: usize,
    ) {
        assert!(len >= 4, "room for the number");
        let iface = iface.to_string();
        self.in_netns(move || {
            let ifindex = ifindex(&iface)?;
            let socket = sender(src, ifindex, false).map_err(|e| e.to_string())?;
            let mut payload = vec![0x5a; len];
            let mut n = 0;
            while n < count {
                payload[..4].copy_from_slice(&n.to_be_bytes());
                match socket.send_to(&payload, (group, port)) {
                    Ok(_) => n += 1,
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                        std::thread::sleep(Duration::from_micros(50))
                    }
                    Err(e) => return Err(format!("burst: {e}")),
                }
            }
            Ok(())
        })
    }

    /// A UDP socket bound to `addr` inside the namespace (e.g. where `--udp-to` sends).
    pub fn udp_socket(&self, addr: &str) -> UdpSocket {
        let addr: SocketAddr = addr.parse().expect("HOST:PORT");
        self.in_netns(move || UdpSocket::bind(addr).map_err(|e| format!("bind {addr}: {e}")))
    }
}

fn ifindex(iface: &str) -> Result<u32, String> {
    let name = std::ffi::CString::new(iface).map_err(|e| e.to_string())?;
    // SAFETY: a NUL-terminated name.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => Err(format!("no interface {iface}")),
        index => Ok(index),
    }
}
