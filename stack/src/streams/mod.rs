//! Test streams: multicast UDP the daemon sends ([`send`], paced by [`pace`]) and checks per
//! (host, source, group) where its hosts receive it ([`check`]). [`Streams`] owns both sides:
//! the stream table, the pacer's deadlines and the receiver records; the daemon hands it the
//! clock, the device writes and the frames its links read, each once per flow ([`window`],
//! [`latency`]) whatever the number of hosts it reaches.

pub mod check;
pub mod latency;
pub mod pace;
pub mod record;
pub mod send;
pub mod summary;
pub mod window;

use std::collections::BTreeMap;
use std::net::IpAddr;

use control::protocol::{nth_address, StreamInfo, StreamSpecArgs};
use control::stream_header::StreamHeader;
use control::streams::{
    DEFAULT_PORT, DEFAULT_PPS, DEFAULT_SIZE, DEFAULT_SOURCE_PORT, MAX_PPS, MAX_STREAMS_PER_REQUEST,
};

use crate::framing::Mac;
use crate::ids::{LinkId, StreamId};
use check::Receivers;
use pace::{Nanos, Pacer, Schedule};
use send::{FrameSpec, StreamFrame};

/// Packets sent at most in one turn of the loop: the protocol's transmits, the control
/// requests and the devices' reads get their turn between, and a late turn catches up over
/// the next ones.
pub const TURN_BUDGET: usize = 1024;
/// The largest burst.
pub const MAX_BURST: u32 = 1000;

/// One stream as asked for, checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamSpec {
    /// The device to send on.
    pub link: String,
    pub source: IpAddr,
    pub group: IpAddr,
    pub port: u16,
    pub source_port: u16,
    pub pps: u32,
    pub size: u16,
    /// Packets to send; `None`: until stopped.
    pub limit: Option<u64>,
    /// The source MAC on a TAP; `None`: 02:00 and the source's last four bytes.
    pub mac: Option<Mac>,
    pub burst: u32,
}

impl StreamSpec {
    /// The streams a request (or a `[[stream]]` table) asks for: one per group. The error
    /// names the key that is wrong.
    pub fn expand(args: &StreamSpecArgs) -> Result<Vec<StreamSpec>, String> {
        let groups = args.groups.unwrap_or(1);
        if groups == 0 || groups > MAX_STREAMS_PER_REQUEST {
            return Err(format!(
                "`group`: the count of groups must be 1 to {MAX_STREAMS_PER_REQUEST}"
            ));
        }
        if !args.group.is_multicast() {
            return Err(format!(
                "`group`: {} is not a multicast address",
                args.group
            ));
        }
        if args.source.is_ipv4() != args.group.is_ipv4() {
            return Err(format!(
                "`source`: {} is not of the same family as group {}",
                args.source, args.group
            ));
        }
        if args.source.is_multicast() || args.source.is_unspecified() {
            return Err(format!(
                "`source`: {} is not a unicast address",
                args.source
            ));
        }
        let pps = args.pps.unwrap_or(DEFAULT_PPS);
        if pps == 0 || pps > MAX_PPS {
            return Err(format!("`pps`: {pps}: must be 1 to {MAX_PPS}"));
        }
        let size = args.size.unwrap_or(DEFAULT_SIZE);
        control::stream_header::check_size(usize::from(size))
            .map_err(|e| format!("`size`: {e}"))?;
        let burst = args.burst.unwrap_or(1);
        if burst == 0 || burst > MAX_BURST {
            return Err(format!("`burst`: {burst}: must be 1 to {MAX_BURST}"));
        }
        let limit = match (args.count, args.seconds) {
            (Some(_), Some(_)) => return Err("give `count` or `seconds`, not both".into()),
            (Some(0), None) => return Err("`count`: must be 1 or more".into()),
            (Some(count), None) => Some(count),
            (None, Some(0)) => return Err("`seconds`: must be 1 or more".into()),
            (None, Some(seconds)) => Some(seconds.saturating_mul(u64::from(pps))),
            (None, None) => None,
        };
        let mac = match &args.mac {
            Some(text) => {
                let mac: Mac = text.parse().map_err(|e| format!("`mac`: {e}"))?;
                if mac.is_multicast() {
                    return Err(format!("`mac`: {text} is a multicast MAC"));
                }
                Some(mac)
            }
            None => None,
        };
        if args.link.is_empty() {
            return Err("`link`: empty".into());
        }
        (0..groups)
            .map(|n| {
                let group = nth_address(args.group, n)
                    .filter(IpAddr::is_multicast)
                    .ok_or_else(|| {
                        format!(
                            "`group`: {}+{groups} runs past the multicast range",
                            args.group
                        )
                    })?;
                Ok(StreamSpec {
                    link: args.link.clone(),
                    source: args.source,
                    group,
                    port: args.port.unwrap_or(DEFAULT_PORT),
                    source_port: args.source_port.unwrap_or(DEFAULT_SOURCE_PORT),
                    pps,
                    size,
                    limit,
                    mac,
                    burst,
                })
            })
            .collect()
    }

    /// The source MAC on a TAP.
    pub fn source_mac(&self) -> Mac {
        self.mac.unwrap_or_else(|| {
            let o: [u8; 4] = match self.source {
                IpAddr::V4(v4) => v4.octets(),
                IpAddr::V6(v6) => v6.octets()[12..].try_into().expect("4 bytes"),
            };
            Mac([0x02, 0x00, o[0], o[1], o[2], o[3]])
        })
    }
}

/// Where a stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamState {
    Running,
    Stopped,
    /// Its count or time is reached.
    Done,
}

impl StreamState {
    fn name(self) -> &'static str {
        match self {
            StreamState::Running => "running",
            StreamState::Stopped => "stopped",
            StreamState::Done => "done",
        }
    }
}

/// One stream being sent.
struct Stream {
    spec: StreamSpec,
    link: LinkId,
    frame: StreamFrame,
    schedule: Schedule,
    /// Changes at each start and stop: the pacer's entries of an earlier epoch are stale.
    epoch: u32,
    state: StreamState,
    /// Packets written since the stream was made (the sequence number of the next).
    sequence: u64,
    send_errors: u64,
    /// Made from the configuration file: a reload replaces it.
    configured: bool,
}

/// The streams and their receivers.
pub struct Streams {
    table: BTreeMap<StreamId, Stream>,
    next_id: StreamId,
    pacer: Pacer,
    pub receivers: Receivers,
    /// Datagrams are checked (the links keep their groups' members): from the start with
    /// streams in the file, `--check-streams` or `--delays`; else from the first stream added.
    checking: bool,
    /// The last turn stopped at its budget.
    more_due: bool,
}

impl Streams {
    pub fn new(checking: bool, leave_grace: Nanos) -> Streams {
        Streams {
            table: BTreeMap::new(),
            next_id: StreamId::FIRST,
            pacer: Pacer::default(),
            receivers: Receivers::new(leave_grace),
            checking,
            more_due: false,
        }
    }

    pub fn is_checking(&self) -> bool {
        self.checking
    }

    /// The first report of a join (or a change) of `group` went out for host `host` (its
    /// number for the daemon's life) on `link`; `admission` says what its filter says of a
    /// source now. Nothing is kept while streams are not checked.
    pub fn host_joined(
        &mut self,
        host: u32,
        link: LinkId,
        group: IpAddr,
        admission: impl Fn(IpAddr) -> check::Admission,
    ) {
        if self.checking {
            self.receivers.joined(host, link, group, admission);
        }
    }

    /// The leave of `group` went out for host `host` on `link` at `at`.
    pub fn host_left(&mut self, host: u32, link: LinkId, group: IpAddr, at: Nanos) {
        if self.checking {
            self.receivers.left(host, link, group, at);
        }
    }

    /// Packets were due beyond the last turn's budget: the loop must not sleep.
    pub fn more_due(&self) -> bool {
        self.more_due
    }

    /// Makes a stream on `link` (a TAP when `ethernet`) and starts it at `now`.
    pub fn add(
        &mut self,
        spec: StreamSpec,
        link: LinkId,
        ethernet: bool,
        configured: bool,
        now: Nanos,
    ) -> Result<StreamId, String> {
        let frame = StreamFrame::build(&FrameSpec {
            source: spec.source,
            group: spec.group,
            source_port: spec.source_port,
            port: spec.port,
            size: spec.size,
            ethernet: ethernet.then(|| spec.source_mac()),
        })?;
        let id = self.next_id;
        self.next_id = id.next();
        self.checking = true;
        let schedule = Schedule {
            start_ns: now,
            pps: spec.pps,
            burst: spec.burst,
            sent: 0,
            limit: spec.limit,
        };
        self.table.insert(
            id,
            Stream {
                spec,
                link,
                frame,
                schedule,
                epoch: 0,
                state: StreamState::Stopped,
                sequence: 0,
                send_errors: 0,
                configured,
            },
        );
        self.start(id, now);
        Ok(id)
    }

    pub fn contains(&self, id: StreamId) -> bool {
        self.table.contains_key(&id)
    }

    /// Every stream's id, in order.
    pub fn ids(&self) -> Vec<StreamId> {
        self.table.keys().copied().collect()
    }

    pub fn remove(&mut self, id: StreamId) -> bool {
        self.table.remove(&id).is_some()
    }

    /// (Re)starts stream `id` at `now`: its rate counts from now, its sequence goes on; a
    /// stream that was done sends its count (or time) again.
    pub fn start(&mut self, id: StreamId, now: Nanos) {
        let Some(stream) = self.table.get_mut(&id) else {
            return;
        };
        if stream.state == StreamState::Running {
            return;
        }
        stream.epoch = stream.epoch.wrapping_add(1);
        stream.schedule.start_ns = now;
        stream.schedule.sent = 0;
        stream.state = StreamState::Running;
        if let Some(at) = stream.schedule.next_due() {
            self.pacer.schedule(id, stream.epoch, at);
        }
    }

    pub fn stop(&mut self, id: StreamId) {
        if let Some(stream) = self.table.get_mut(&id) {
            if stream.state == StreamState::Running {
                stream.state = StreamState::Stopped;
                stream.epoch = stream.epoch.wrapping_add(1);
            }
        }
    }

    /// The streams of a link that closed go with it.
    pub fn link_closed(&mut self, link: LinkId) {
        self.table.retain(|_, s| s.link != link);
        self.receivers.link_closed(link);
    }

    /// The configured streams (from the file) and their ids.
    pub fn configured(&self) -> impl Iterator<Item = (StreamId, &StreamSpec)> {
        self.table
            .iter()
            .filter(|(_, s)| s.configured)
            .map(|(id, s)| (*id, &s.spec))
    }

    /// When the next packet is due, if any stream runs.
    pub fn next_deadline(&self) -> Option<Nanos> {
        self.pacer.next_deadline()
    }

    /// Sends what is due, at most `budget` packets, earliest deadline first, one burst per
    /// stream at a time (a stream behind catches up over the turns, the others keep their
    /// pace). `clock` stamps each packet right before `write` puts it on its link; `write`
    /// says whether it went out. Returns the packets sent.
    pub fn send_due(
        &mut self,
        mut clock: impl FnMut() -> Nanos,
        budget: usize,
        mut write: impl FnMut(LinkId, &[u8]) -> bool,
    ) -> usize {
        let now = clock();
        let mut sent = 0;
        while sent < budget {
            let Some((id, epoch)) = self.pacer.pop_due(now) else {
                break;
            };
            let Some(stream) = self.table.get_mut(&id) else {
                continue; // removed
            };
            if stream.epoch != epoch || stream.state != StreamState::Running {
                continue; // stopped or restarted since
            }
            let mut in_burst = 0;
            while sent < budget && in_burst < stream.spec.burst {
                match stream.schedule.next_due() {
                    Some(at) if at <= now => {}
                    _ => break,
                }
                let header = StreamHeader {
                    stream: id.as_u32(),
                    sequence: stream.sequence,
                    sent_ns: clock(),
                };
                if !write(stream.link, stream.frame.stamp(&header)) {
                    stream.send_errors += 1;
                }
                // A packet lost at the device still takes its number: receivers count it lost.
                stream.sequence += 1;
                stream.schedule.sent += 1;
                sent += 1;
                in_burst += 1;
            }
            match stream.schedule.next_due() {
                Some(at) => self.pacer.schedule(id, stream.epoch, at),
                None => stream.state = StreamState::Done,
            }
        }
        self.more_due = self.pacer.next_deadline().is_some_and(|at| at <= now);
        sent
    }

    /// Each stream's link, packets written and packets lost at the device.
    pub fn sent(&self) -> impl Iterator<Item = (LinkId, u64, u64)> + '_ {
        self.table
            .values()
            .map(|s| (s.link, s.sequence - s.send_errors, s.send_errors))
    }

    /// The streams `wanted` admits (by link and group), as `streams` lists them; `name`
    /// names a link.
    pub fn infos(
        &self,
        now: Nanos,
        wanted: impl Fn(LinkId, IpAddr) -> bool,
        name: impl Fn(LinkId) -> String,
    ) -> Vec<StreamInfo> {
        self.table
            .iter()
            .filter(|(_, s)| wanted(s.link, s.spec.group))
            .map(|(id, s)| {
                // A finished stream's rate is over its own span, up to when its next packet
                // would have been due.
                let end = match s.state {
                    StreamState::Done => now.min(s.schedule.due(s.schedule.sent)),
                    _ => now,
                };
                let elapsed = end.saturating_sub(s.schedule.start_ns);
                let rate_pps = if elapsed == 0 || s.state == StreamState::Stopped {
                    0.0
                } else {
                    s.schedule.sent as f64 * 1e9 / elapsed as f64
                };
                StreamInfo {
                    id: id.as_u32(),
                    link: name(s.link),
                    group: s.spec.group,
                    source: s.spec.source,
                    port: s.spec.port,
                    size: s.spec.size,
                    pps: s.spec.pps,
                    sent: s.sequence - s.send_errors,
                    send_errors: s.send_errors,
                    rate_pps,
                    state: s.state.name().into(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Id;

    fn spec(pps: u32, burst: u32, limit: Option<u64>) -> StreamSpec {
        StreamSpec {
            link: "tap0".into(),
            source: "10.1.1.1".parse().unwrap(),
            group: "232.1.1.1".parse().unwrap(),
            port: 5000,
            source_port: 4000,
            pps,
            size: 64,
            limit,
            mac: None,
            burst,
        }
    }

    /// Runs turns at the given instants; returns the packets each stream sent, and the
    /// largest number any turn sent.
    fn run_turns(
        streams: &mut Streams,
        turns: impl Iterator<Item = Nanos>,
        budget: usize,
    ) -> (BTreeMap<u32, u64>, usize) {
        let mut per_stream = BTreeMap::new();
        let mut largest = 0;
        for at in turns {
            let sent = streams.send_due(
                || at,
                budget,
                |_, frame| {
                    let header = StreamHeader::decode(&frame[14 + 20 + 8..]).unwrap();
                    *per_stream.entry(header.stream).or_insert(0) += 1;
                    true
                },
            );
            largest = largest.max(sent);
        }
        (per_stream, largest)
    }

    #[test]
    fn exactly_n_packets_in_n_over_pps_seconds() {
        let mut streams = Streams::new(false, 0);
        let link = LinkId::from_index(0);
        streams
            .add(spec(1000, 1, None), link, true, false, 0)
            .unwrap();
        // Turns every 1 ms up to just before packet 5000 is due (at 5 s).
        let (sent, _) = run_turns(
            &mut streams,
            (0..5000).map(|ms| ms * 1_000_000 + 999_999),
            usize::MAX,
        );
        assert_eq!(sent[&1], 5000);
        assert!(!streams.more_due());
    }

    #[test]
    fn the_rate_holds_within_one_percent_over_ten_seconds_of_irregular_turns() {
        let mut streams = Streams::new(false, 0);
        let link = LinkId::from_index(0);
        for pps in [1000, 333, 12_345] {
            streams
                .add(spec(pps, 1, None), link, true, false, 0)
                .unwrap();
        }
        streams
            .add(spec(1000, 10, None), link, true, false, 0)
            .unwrap();
        // Turns 0.1 to 7 ms apart, as a loaded loop takes them.
        let mut at = 0;
        let turns = std::iter::from_fn(|| {
            at += 100_000 + (at * 7919 % 6_900_000);
            (at <= 10_000_000_000).then_some(at)
        });
        let (sent, _) = run_turns(&mut streams, turns, usize::MAX);
        for (id, pps) in [(1, 1000u64), (2, 333), (3, 12_345), (4, 1000)] {
            let expected = pps * 10;
            assert!(
                sent[&id].abs_diff(expected) * 100 <= expected,
                "stream {id}: {} of {expected}",
                sent[&id]
            );
        }
    }

    #[test]
    fn a_turn_sends_at_most_its_budget_and_the_rest_follows() {
        let mut streams = Streams::new(false, 0);
        let link = LinkId::from_index(0);
        for n in 0..1000u32 {
            let s = StreamSpec {
                group: nth_address("232.1.0.0".parse().unwrap(), n).unwrap(),
                ..spec(100, 1, Some(10))
            };
            streams.add(s, link, true, false, 0).unwrap();
        }
        // One late turn at 1 s owes 1000 streams × 10 packets (the last due at 0.09 s).
        let (sent, largest) = run_turns(&mut streams, std::iter::repeat_n(1_000_000_000, 12), 1024);
        assert_eq!(largest, 1024);
        assert_eq!(sent.values().sum::<u64>(), 10_000);
        assert!(
            sent.values().all(|&n| n == 10),
            "each stream sends its count"
        );
        assert!(!streams.more_due());
        assert!(streams
            .infos(2_000_000_000, |_, _| true, |_| "tap0".into())
            .iter()
            .all(|s| s.state == "done"));
    }

    #[test]
    fn stopped_and_removed_streams_send_nothing_and_a_start_goes_on() {
        let mut streams = Streams::new(false, 0);
        let link = LinkId::from_index(0);
        let a = streams
            .add(spec(1000, 1, None), link, true, false, 0)
            .unwrap();
        let b = streams
            .add(spec(1000, 1, None), link, true, false, 0)
            .unwrap();
        streams.stop(a);
        assert!(streams.remove(b));
        let (sent, _) = run_turns(&mut streams, [10_000_000].into_iter(), usize::MAX);
        assert!(sent.is_empty());
        streams.start(a, 20_000_000);
        streams.start(a, 20_000_000); // twice: one schedule
        let (sent, _) = run_turns(&mut streams, [20_500_000].into_iter(), usize::MAX);
        assert_eq!(sent[&a.as_u32()], 1);
    }

    #[test]
    fn bad_requests_name_the_key() {
        let args = |f: &dyn Fn(&mut StreamSpecArgs)| {
            let mut a = StreamSpecArgs::new(
                "tap0",
                "10.1.1.1".parse().unwrap(),
                "232.1.1.1".parse().unwrap(),
            );
            f(&mut a);
            StreamSpec::expand(&a)
        };
        assert_eq!(args(&|_| {}).unwrap().len(), 1);
        let three = args(&|a| a.groups = Some(3)).unwrap();
        assert_eq!(three[2].group, "232.1.1.3".parse::<IpAddr>().unwrap());
        assert_eq!(args(&|a| a.seconds = Some(2)).unwrap()[0].limit, Some(2000));
        for (change, key) in [
            (
                &(|a: &mut StreamSpecArgs| a.size = Some(10)) as &dyn Fn(&mut StreamSpecArgs),
                "`size`",
            ),
            (&|a| a.pps = Some(0), "`pps`"),
            (&|a| a.group = "10.0.0.1".parse().unwrap(), "`group`"),
            (&|a| a.source = "fe80::1".parse().unwrap(), "`source`"),
            (&|a| a.mac = Some("01:00:5e:00:00:01".into()), "`mac`"),
            (&|a| a.mac = Some("zz".into()), "`mac`"),
            (&|a| a.burst = Some(0), "`burst`"),
            (
                &|a| {
                    a.count = Some(1);
                    a.seconds = Some(1);
                },
                "`count` or `seconds`",
            ),
            (
                &|a| {
                    a.group = "239.255.255.255".parse().unwrap();
                    a.groups = Some(2);
                },
                "`group`",
            ),
        ] {
            let error = args(change).unwrap_err();
            assert!(error.contains(key), "{error}");
        }
    }
}
