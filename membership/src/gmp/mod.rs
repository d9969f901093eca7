//! The group management engine, generic over the protocol (as netstack3's `gmp`): the
//! [`Protocol`] trait says what differs between IGMP and MLD, and [`Family`] is one address
//! family's group table with everything it does. IGMP and MLD implement the trait in
//! `crate::igmp` and `crate::mld`; nothing here names either.
//!
//! - [`table`]: group records, request changes, the timer wheel's keys and dispatch;
//! - [`input`]: received queries (read through the [`QueryView`] trait) and v1/v2 reports,
//!   checked, counted and dispatched once for both protocols;
//! - [`compat`]: the per-interface host compatibility mode (RFC 9776 §7.2, RFC 9777 §8.2);
//! - [`v1v2`]: the IGMPv1/v2 and MLDv1 per-group state machine ([`v1v2::machine`], pure
//!   functions) and its execution on the table (report timers, reports, Leave / Done);
//! - [`v3`]: the IGMPv3 / MLDv2 state machine: queries, state-change reports, retransmission
//!   and packing.

pub(crate) mod compat;
pub(crate) mod entry;
pub(crate) mod ifaces;
pub(crate) mod index;
pub(crate) mod info;
pub(crate) mod input;
pub(crate) mod table;
pub(crate) mod v1v2;
pub(crate) mod v3;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::fmt::Debug;
use core::net::IpAddr;
use core::time::Duration;

use hashbrown::HashMap;
use rand::rngs::SmallRng;
use rand::Rng;
use rustc_hash::FxBuildHasher;
use slab::Slab;

use crate::config::ProtocolVersion;
use crate::event::{Event, EventQueue};
use crate::stats::{DropReason, Stats};
use crate::timer::TimerWheel;
use crate::{Config, IfIndex, InterfaceConfig, Transmit};

pub(crate) use compat::Compat;
use entry::GroupEntry;
use ifaces::IfaceTable;
pub(crate) use input::{Heard, QueryView};
use table::TimerKey;
use v1v2::machine::{MemberContext, MemberMessage};
pub(crate) use v3::PackedReport;

/// What differs between IGMP and MLD, as far as the shared machinery is concerned.
pub(crate) trait Protocol {
    /// Ipv4Addr or Ipv6Addr.
    type Addr: Copy + Eq + Ord + Debug + Into<IpAddr>;
    /// The protocol's version type.
    type Version: Copy + Into<ProtocolVersion>;
    /// 224.0.0.1 / ff02::1: general queries are sent here.
    const ALL_SYSTEMS: Self::Addr;
    /// Bytes of a v3 report (IP header with Router Alert, extension headers, message header)
    /// before the first record, and of each record's fixed part, and of one address.
    const REPORT_OVERHEAD: usize;
    const RECORD_OVERHEAD: usize;
    const ADDR_LEN: usize;
    /// An address of this family, if `addr` is one.
    fn from_ip(addr: IpAddr) -> Option<Self::Addr>;
    fn is_multicast(addr: &Self::Addr) -> bool;
    fn is_unspecified(addr: &Self::Addr) -> bool;
    /// Whether `addr` may be a source in a filter: unicast, not unspecified (RFC 9776 §3.1).
    fn is_source(addr: &Self::Addr) -> bool;
    /// Whether a joined group is ever reported (never 224.0.0.0/24, ff02::1, scopes 0/1).
    fn reportable(group: &Self::Addr, config: &Config) -> bool;
    /// Unsolicited Report Interval in the v1/v2 (MLDv1) modes.
    fn unsolicited_interval(config: &Config) -> Duration;
    /// The newest mode configured (`--igmp-version`, `--mld-version`).
    fn max_compat(config: &Config) -> Compat;
    /// The protocol version a compatibility mode speaks.
    fn version(mode: Compat) -> Self::Version;
    /// Builds the v1/v2 (MLDv1) message the group's state machine asks for, counting it.
    fn transmit(
        iface: IfIndex,
        addrs: &InterfaceConfig,
        group: Self::Addr,
        message: MemberMessage,
        ctx: &MemberContext,
        stats: &mut Stats,
    ) -> Transmit;
    /// Counts what input heard, in the family's own counters.
    fn count(stats: &mut Stats, heard: Heard);
    /// The family's drop reason for a refused query.
    fn query_drop(problem: QueryProblem) -> DropReason;
    /// The family's drop reason for a refused report.
    fn report_drop(problem: ReportProblem) -> DropReason;
    /// Builds an IGMPv3 / MLDv2 report of one packed report's records, counting it.
    fn v3_report(
        iface: IfIndex,
        addrs: &InterfaceConfig,
        report: PackedReport<Self::Addr>,
        stats: &mut Stats,
    ) -> Transmit;
}

/// Every interface's addresses and MTU, by interface number: found in one hash probe (a core
/// may hold a million emulated hosts as interfaces, and every report sent looks its interface
/// up). Not ordered: what goes out interface by interface sorts the numbers first.
pub(crate) type Interfaces = HashMap<IfIndex, InterfaceConfig, FxBuildHasher>;

/// The Host's parts that every operation needs besides the family itself.
pub(crate) struct Env<'a> {
    pub config: &'a Config,
    pub interfaces: &'a Interfaces,
    pub rng: &'a mut SmallRng,
    pub out: &'a mut VecDeque<Transmit>,
    pub stats: &'a mut Stats,
    pub events: &'a mut EventQueue,
}

impl Env<'_> {
    /// Queues an event for `Host::poll_event`, or counts it dropped.
    pub fn event(&mut self, event: Event) {
        self.events.push(event, self.stats);
    }
}

/// One address family's group table: every interface's records, timers and pending reports.
#[derive(Debug)]
pub(crate) struct Family<P: Protocol> {
    ifaces: IfaceTable<P::Addr>,
    records: Slab<GroupEntry<P::Addr>>,
    wheel: TimerWheel<TimerKey>,
    /// v3 records decided since the last `flush_reports`: what happens at one instant (a
    /// shutdown's leaves, a restart's joins, a General Query response) goes out packed into as
    /// few reports as fit the MTU.
    pending: Vec<v3::Decided<P::Addr>>,
    /// General Query answers in progress, by interface: a cursor each, never the records.
    answers: BTreeMap<IfIndex, v3::Answer<P::Addr>>,
    /// The interfaces whose answer has reports due, in the order their timers fired.
    answers_due: VecDeque<IfIndex>,
    /// Group records visited by the walks over an interface's groups (a query, a mode change,
    /// a General Query answer): the work that must stay proportional to the interface's own
    /// groups. Counted for the tests and benchmarks.
    visited: u64,
}

impl<P: Protocol> Default for Family<P> {
    fn default() -> Self {
        Family {
            ifaces: IfaceTable::default(),
            records: Slab::new(),
            wheel: TimerWheel::new(),
            pending: Vec::new(),
            answers: BTreeMap::new(),
            answers_due: VecDeque::new(),
            visited: 0,
        }
    }
}

impl<P: Protocol> Family<P> {
    /// Group records held, joined or being left (their leaves still to be retransmitted).
    /// O(1).
    pub fn record_count(&self) -> usize {
        self.records.len()
    }

    /// Group records visited by per-interface walks so far.
    #[cfg(feature = "__bench")]
    pub fn records_visited(&self) -> u64 {
        self.visited
    }

    /// Group records held on `ifindex`. O(1).
    pub fn iface_record_count(&self, ifindex: IfIndex) -> usize {
        self.ifaces.get(&ifindex).map_or(0, |i| i.groups.len())
    }

    /// Forgets interface `ifindex` altogether: its records and their index entries, its
    /// pending v3 records and General Query answer, and every timer of it cancelled in the
    /// wheel (report, general response, answer, retransmission, older-querier). Nothing is
    /// sent: leave first, and call this once the leaves are out. O(the interface's groups +
    /// pending records).
    pub fn remove_interface(&mut self, ifindex: IfIndex) {
        let Some(iface) = self.ifaces.get(&ifindex) else {
            return;
        };
        let keys: Vec<usize> = iface.groups.slots().map(|k| k as usize).collect();
        for key in keys {
            self.remove(key);
        }
        let Some(mut iface) = self.ifaces.remove(&ifindex) else {
            return;
        };
        let timers = [iface.v3.general.take(), iface.v3.retransmit.take()];
        for timer in timers
            .into_iter()
            .chain(iface.older.take_timers())
            .flatten()
        {
            self.wheel.cancel(timer);
        }
        self.pending.retain(|decided| decided.iface != ifindex);
        self.cancel_answer(ifindex);
    }
}

/// Why a query was refused; the adapter maps it to its own drop reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueryProblem {
    BadGroup,
    BadDestination,
    GeneralWithSources,
}

/// Why a report was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReportProblem {
    BadGroup,
    GroupMismatch,
}

/// Which groups a query covers: `None` for a general query.
///
/// Departure from the seeds, RFC wins: NetBSD igmp.c 1.49 picks the records by the IP
/// destination (all of them when it is 224.0.0.1, else the one equal to it) and ignores the
/// group field; RFC 2236 §2.1 and RFC 2710 §3.6 define the query by its group field. A general
/// query must go to all-systems; a group-specific one to the group or, as the Linux bridge
/// sends them, to all-systems (RFC 9776 §4.1.12 allows a host to accept both).
///
/// Either may also go to `own`, this host's unicast address on the interface: RFC 9776
/// §4.1.12 and RFC 9777 §5.1.15 (RFC 3376 §4.1.12, RFC 3810 §5.1.15) say a host MUST accept
/// and process a query sent to any address, unicast or multicast, assigned to the interface.
/// Departure from the IGMP seed, RFC wins: NetBSD igmp.c 1.49 drops a v2 query to any
/// non-multicast destination (and a v1 query not to all-hosts). The MLD seeds check no
/// destination at all (their kernel hands them only what is addressed to the host); we see
/// the whole link, so a unicast destination that is not ours stays a bad destination. The
/// rule holds for every version alike, as the sentence names no version.
pub(crate) fn query_target<P: Protocol>(
    group: P::Addr,
    dst: P::Addr,
    own: Option<P::Addr>,
    sources: usize,
) -> Result<Option<P::Addr>, QueryProblem> {
    let to_us = own.is_some_and(|own| own == dst && !P::is_unspecified(&own));
    if P::is_unspecified(&group) {
        if sources > 0 {
            return Err(QueryProblem::GeneralWithSources);
        }
        if dst != P::ALL_SYSTEMS && !to_us {
            return Err(QueryProblem::BadDestination);
        }
        return Ok(None);
    }
    if !P::is_multicast(&group) {
        return Err(QueryProblem::BadGroup);
    }
    if dst != group && dst != P::ALL_SYSTEMS && !to_us {
        return Err(QueryProblem::BadDestination);
    }
    Ok(Some(group))
}

/// A v1/v2 report (MLDv1 report) names a multicast group and is sent to it.
pub(crate) fn check_report<P: Protocol>(group: P::Addr, dst: P::Addr) -> Result<(), ReportProblem> {
    if !P::is_multicast(&group) {
        return Err(ReportProblem::BadGroup);
    }
    if group != dst {
        return Err(ReportProblem::GroupMismatch);
    }
    Ok(())
}

/// How long after a query its answer may be due: the query's Max Resp Time less
/// [`Config::answer_margin`], the margin at most a tenth of it.
fn answer_window(max: Duration, config: &Config) -> Duration {
    max - config.answer_margin.min(max / 10)
}

/// Uniform over [0, max) at millisecond resolution, from the host's seeded RNG: a report
/// drawn so never lands on the deadline itself (Linux draws `get_random_u32_below(max)` too;
/// NetBSD's `IGMP_RANDOM_DELAY`, `cprng_fast32() % X + 1`, gives [1, max],
/// which may). A `max` under 1 ms gives 0.
fn random_delay(rng: &mut SmallRng, max: Duration) -> Duration {
    let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    if max_ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(rng.gen_range(0..max_ms))
}

#[cfg(test)]
mod random_delay_tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn random_delays_are_below_the_maximum_and_cover_it() {
        let mut rng = SmallRng::seed_from_u64(7);
        let max = Duration::from_millis(10);
        let drawn: Vec<Duration> = (0..1000).map(|_| random_delay(&mut rng, max)).collect();
        assert!(
            drawn.iter().all(|&d| d < max),
            "a delay reached the deadline"
        );
        for ms in 0..10 {
            assert!(
                drawn.contains(&Duration::from_millis(ms)),
                "{ms} ms never drawn"
            );
        }
        assert_eq!(
            random_delay(&mut rng, Duration::from_micros(900)),
            Duration::ZERO
        );
    }
}
