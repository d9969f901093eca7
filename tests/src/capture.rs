//! tcpdump captures of a namespace's interfaces, read back through tshark.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::processes::{require_tool, Spawned};
use crate::tshark::{dissect_full, full_listing, listing, tshark_layers, Pkt, TSHARK_FIELDS};
use crate::{ms, secs, wait_until, Netns};

impl Netns {
    /// Starts tcpdump on `iface` (both directions, `igmp or ip6`) and returns
    /// once it is capturing.
    pub fn capture(&self, iface: &str) -> Capture<'_> {
        self.capture_matching(iface, "igmp or ip6")
    }

    /// As [`Netns::capture`], of the frames matching the tcpdump filter `filter`.
    pub fn capture_matching(&self, iface: &str, filter: &str) -> Capture<'_> {
        require_tool("tcpdump");
        require_tool("tshark");
        // The .pcap suffix matters: Debian's AppArmor profile for tcpdump only
        // lets it write files named like that.
        let file = self.dir.join(format!(
            "{iface}-{}.pcap",
            self.spawned.load(Ordering::Relaxed)
        ));
        let process = self.tcpdump("tcpdump", iface, filter, &file);
        let mut capture = Capture {
            _ns: self,
            process,
            file,
            stopped: false,
        };
        let listening = wait_until(secs(10), || {
            if let Some(status) = capture.process.try_status() {
                panic!(
                    "tcpdump exited ({status}): {}",
                    capture.process.stderr_text()
                );
            }
            capture.process.stderr_text().contains("listening on")
        });
        assert!(listening, "tcpdump did not start capturing within 10 s");
        capture
    }

    /// Starts tcpdump (process label `label`) writing the frames of `iface` that match
    /// `filter` to `file`, both directions; returns at once (the caller waits for "listening
    /// on" in its stderr).
    pub fn tcpdump(&self, label: &str, iface: &str, filter: &str, file: &Path) -> Spawned {
        let file_arg = file.to_str().expect("UTF-8 temp dir");
        // -Z root: Debian's tcpdump otherwise drops to user tcpdump, which may not
        // write here. --immediate-mode: hand packets over at once, not per block. In that
        // mode the ring has one slot per snapshot length: with the default 256 KiB a 2 MiB
        // ring holds 8 frames, and a burst of a hundred hosts' reports lost most of its
        // frames in the capture ("dropped by kernel"). 9 KiB slots in 16 MiB: ~1800 frames.
        self.spawn(
            label,
            Path::new("tcpdump"),
            &[
                "-i",
                iface,
                "-Z",
                "root",
                "-U",
                "--immediate-mode",
                "-s",
                "9216",
                "-B",
                "16384",
                "-w",
                file_arg,
                filter,
            ],
        )
    }
}

/// A tcpdump capture in a namespace.
pub struct Capture<'a> {
    _ns: &'a Netns,
    process: Spawned,
    file: PathBuf,
    stopped: bool,
}

impl Capture<'_> {
    pub fn file(&self) -> &Path {
        &self.file
    }

    fn size(&self) -> u64 {
        fs::metadata(&self.file).map(|m| m.len()).unwrap_or(0)
    }

    /// Dissects what has been captured so far (tcpdump keeps running).
    pub fn peek(&self) -> Vec<Pkt> {
        self.packets().iter().map(Pkt::from_tshark).collect()
    }

    /// Waits until `condition` holds for the packets captured so far and returns
    /// them; fails the test with a listing of the capture on timeout. Only
    /// re-dissects when the file grew (or every second), so waiting is cheap.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        condition: impl Fn(&[Pkt]) -> bool,
    ) -> Vec<Pkt> {
        self.wait_dissected(what, timeout, Self::peek, |p| listing(p), condition)
    }

    /// The loop behind `wait_for` and `wait_for_full`: `dissect` reads the capture, `list`
    /// renders it for the failure message.
    fn wait_dissected(
        &self,
        what: &str,
        timeout: Duration,
        dissect: impl Fn(&Self) -> Vec<Pkt>,
        list: impl Fn(&[Pkt]) -> String,
        condition: impl Fn(&[Pkt]) -> bool,
    ) -> Vec<Pkt> {
        let deadline = Instant::now() + timeout;
        let mut seen_size = u64::MAX;
        let mut dissected_at = Instant::now();
        let mut packets = Vec::new();
        loop {
            let size = self.size();
            if size != seen_size || dissected_at.elapsed() >= secs(1) {
                seen_size = size;
                dissected_at = Instant::now();
                packets = dissect(self);
                if condition(&packets) {
                    return packets;
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for: {what}\ncaptured so far:\n{}",
                    list(&packets)
                );
            }
            std::thread::sleep(ms(50));
        }
    }

    /// Stops tcpdump once the capture file has stopped growing (so nothing
    /// already on the wire is lost), then dissects the whole capture.
    pub fn stop(&mut self) -> Vec<Pkt> {
        if !self.stopped {
            let mut size = self.size();
            let mut stable_since = Instant::now();
            let give_up = Instant::now() + secs(3);
            while stable_since.elapsed() < ms(300) && Instant::now() < give_up {
                std::thread::sleep(ms(50));
                let now_size = self.size();
                if now_size != size {
                    size = now_size;
                    stable_since = Instant::now();
                }
            }
            self.process.signal(Signal::SIGINT);
            if self.process.wait_timeout(secs(5)).is_none() {
                panic!("tcpdump ignored SIGINT for 5 s");
            }
            self.stopped = true;
        }
        self.peek()
    }

    /// Every frame as tshark's flat field map: `{"ip.src":["10.99.0.2"], ...}`
    /// (IPv4 header checksums verified too).
    pub fn packets(&self) -> Vec<Value> {
        tshark_layers(&self.file, TSHARK_FIELDS.iter())
    }

    /// [`Capture::peek`] with group records ([`dissect_full`]).
    pub fn peek_full(&self) -> Vec<Pkt> {
        dissect_full(&self.file)
    }

    /// [`Capture::wait_for`] on [`Capture::peek_full`]; the failure lists records too.
    pub fn wait_for_full(
        &self,
        what: &str,
        timeout: Duration,
        condition: impl Fn(&[Pkt]) -> bool,
    ) -> Vec<Pkt> {
        self.wait_dissected(
            what,
            timeout,
            Self::peek_full,
            |p| full_listing(p),
            condition,
        )
    }

    /// [`Capture::stop`], then the whole capture with group records.
    pub fn stop_full(&mut self) -> Vec<Pkt> {
        self.stop();
        self.peek_full()
    }
}

impl Drop for Capture<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.stopped {
            self.process.signal(Signal::SIGINT);
            self.process.wait_timeout(secs(2));
            self.stopped = true;
            let packets: Vec<Pkt> = self.peek();
            eprintln!(
                "\n----- capture {} -----\n{}",
                self.file.display(),
                listing(&packets)
            );
        }
    }
}
