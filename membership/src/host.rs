//! [`Host`]: the one owner of all membership state, and every public operation on it.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::net::IpAddr;

use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::event::{Event, EventQueue};
use crate::filter::{Filter, FilterMode, RequestChange, SourceFilter};
use crate::gmp::info::millis;
use crate::gmp::{Compat, Env, Family, Interfaces};
use crate::igmp::{self, Igmp};
use crate::info::{GroupCursor, GroupInfo, InterfaceInfo};
use crate::mld::{self, Mld};
use crate::stats::{DropReason, Stats};
use crate::time::Instant;
use crate::wire::ip::{classify, Classified, Ipv4Meta, Ipv6Meta, OtherKind};
use crate::{Config, Error, IfIndex, InterfaceConfig, Transmit};

/// The host side of IGMP and MLD on any number of interfaces.
///
/// Sans-IO, driven as quinn-proto's `Connection` is: calls that change state take the current
/// [`Instant`]; packets come in through [`handle_packet`](Host::handle_packet) (or
/// [`handle_igmp`](Host::handle_igmp) / [`handle_mld`](Host::handle_mld)); timers fire in
/// [`handle_timeout`](Host::handle_timeout), due at [`poll_timeout`](Host::poll_timeout); what
/// is to be sent comes out of [`poll_transmit`](Host::poll_transmit), what happened out of
/// [`poll_event`](Host::poll_event).
#[derive(Debug)]
pub struct Host {
    config: Config,
    rng: SmallRng,
    interfaces: Interfaces,
    igmp: Family<Igmp>,
    mld: Family<Mld>,
    outbox: VecDeque<Transmit>,
    events: EventQueue,
    stats: Stats,
    /// The latest time the driver has told us.
    now: Instant,
}

impl Host {
    /// A host with no interfaces. `rng_seed` seeds every random delay it will draw.
    pub fn new(config: Config, rng_seed: u64) -> Host {
        Host {
            rng: SmallRng::seed_from_u64(rng_seed),
            interfaces: Interfaces::default(),
            igmp: Family::default(),
            mld: Family::default(),
            outbox: VecDeque::new(),
            events: EventQueue::new(config.event_capacity),
            stats: Stats::new(),
            now: Instant::ZERO,
            config,
        }
    }

    /// The settings the host was made with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Adds an interface with this host's addresses on it.
    pub fn add_interface(
        &mut self,
        ifindex: IfIndex,
        config: InterfaceConfig,
    ) -> Result<(), Error> {
        if self.interfaces.contains_key(&ifindex) {
            return Err(Error::InterfaceExists(ifindex));
        }
        self.interfaces.insert(ifindex, config);
        self.igmp.add_interface(ifindex);
        self.mld.add_interface(ifindex);
        Ok(())
    }

    fn tick(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// Both families and the environment their operations need, borrowed apart.
    fn split(&mut self) -> (&mut Family<Igmp>, &mut Family<Mld>, Env<'_>) {
        let env = Env {
            config: &self.config,
            interfaces: &self.interfaces,
            rng: &mut self.rng,
            out: &mut self.outbox,
            stats: &mut self.stats,
            events: &mut self.events,
        };
        (&mut self.igmp, &mut self.mld, env)
    }

    fn change(
        &mut self,
        ifindex: IfIndex,
        group: IpAddr,
        change: RequestChange<IpAddr>,
        now: Instant,
    ) -> Result<u32, Error> {
        self.tick(now);
        let (igmp, mld, mut env) = self.split();
        match group {
            IpAddr::V4(g) => igmp.request(ifindex, g, change, now, &mut env),
            IpAddr::V6(g) => mld.request(ifindex, g, change, now, &mut env),
        }
    }

    /// Adds a request for `group` with a source filter (RFC 9776 §3.1: like a socket's
    /// IP_ADD_SOURCE_MEMBERSHIP / MCAST_JOIN_SOURCE_GROUP). The interface state merges every
    /// request held; a v3 host reports the change at once. Returns the requests held.
    #[must_use = "a refused join changed nothing: the error says why"]
    pub fn join_filter(
        &mut self,
        ifindex: IfIndex,
        group: IpAddr,
        filter: SourceFilter,
        now: Instant,
    ) -> Result<u32, Error> {
        if filter.mode == FilterMode::Include && filter.sources.is_empty() {
            return Err(Error::EmptyInclude);
        }
        let filter = Filter {
            mode: filter.mode,
            sources: filter.sources.into_iter().collect(),
        };
        self.change(ifindex, group, RequestChange::Add(filter), now)
    }

    /// Drops sources from anonymous requests: INCLUDE S drops S from the anonymous INCLUDE
    /// requests that list them; EXCLUDE S drops one anonymous EXCLUDE request with exactly S.
    /// Owned requests change only through [`Host::set_filter`]. Returns the requests left.
    #[must_use = "a refused leave changed nothing: the error says why"]
    pub fn leave_filter(
        &mut self,
        ifindex: IfIndex,
        group: IpAddr,
        filter: SourceFilter,
        now: Instant,
    ) -> Result<u32, Error> {
        let sources = filter.sources.into_iter().collect();
        let change = match filter.mode {
            FilterMode::Include => RequestChange::DropIncluded(sources),
            FilterMode::Exclude => RequestChange::DropExclude(sources),
        };
        self.change(ifindex, group, change, now)
    }

    /// Sets `owner`'s source filter for `group` in one step, as RFC 3678's `setsourcefilter`
    /// does for a socket: the owner's request is made if it holds none, replaced if it does,
    /// and dropped by INCLUDE {}. The interface state is merged again once (RFC 9776 §3.2,
    /// RFC 9777 §4.2) and a v3 host reports the difference in one State Change Report
    /// (INCLUDE (A) → INCLUDE (B): ALLOW (B − A), BLOCK (A − B)); v1/v2 (MLDv1) hosts report
    /// only when the group gains or loses all reception.
    ///
    /// An owner is any name a client gives (1 to 64 printable characters, no spaces); its
    /// request is touched only by this call, [`Host::leave_interface`] and
    /// [`Host::leave_all`], never by the anonymous [`Host::leave`] / [`Host::leave_filter`].
    /// INCLUDE {} for an owner that holds nothing is [`Error::NoSuchOwner`] (or
    /// [`Error::NotJoined`] when the group holds no request at all). Returns the requests held
    /// for the group.
    #[must_use = "a refused filter changed nothing: the error says why"]
    pub fn set_filter(
        &mut self,
        ifindex: IfIndex,
        group: IpAddr,
        owner: &str,
        filter: SourceFilter,
        now: Instant,
    ) -> Result<u32, Error> {
        if !is_valid_owner(owner) {
            return Err(Error::BadOwner(owner.into()));
        }
        let filter = Filter {
            mode: filter.mode,
            sources: filter.sources.into_iter().collect(),
        };
        self.change(
            ifindex,
            group,
            RequestChange::SetOwner(owner.into(), filter),
            now,
        )
    }

    /// Joins `group` (IPv4: IGMP, IPv6: MLD) for one more user, any source. The first join
    /// reports at once; further joins only count. Returns the number of users (requests).
    #[must_use = "a refused join changed nothing: the error says why"]
    pub fn join(&mut self, ifindex: IfIndex, group: IpAddr, now: Instant) -> Result<u32, Error> {
        self.join_filter(ifindex, group, SourceFilter::exclude(Vec::new()), now)
    }

    /// Drops one anonymous any-source user of `group`, or, with none left, every anonymous
    /// request for it (owned ones stay: see [`Host::set_filter`]). The last one leaves: Leave / Done if we reported last (v2), a
    /// CHANGE_TO_INCLUDE {} (v3). Returns the users left.
    #[must_use = "a refused leave changed nothing: the error says why"]
    pub fn leave(&mut self, ifindex: IfIndex, group: IpAddr, now: Instant) -> Result<u32, Error> {
        self.change(ifindex, group, RequestChange::LeaveGroup, now)
    }

    /// Leaves every group on every interface, as a host shutting down does.
    pub fn leave_all(&mut self, now: Instant) {
        self.tick(now);
        let ifindexes = self.ifindexes();
        let (igmp, mld, mut env) = self.split();
        for ifindex in ifindexes {
            igmp.leave_all(ifindex, now, &mut env);
            mld.leave_all(ifindex, now, &mut env);
        }
    }

    /// Leaves every group on `ifindex`, as a host going away does (an emulated host removed
    /// from a link). The interface stays, with nothing joined: its leaves go out as usual.
    pub fn leave_interface(&mut self, ifindex: IfIndex, now: Instant) {
        self.tick(now);
        let (igmp, mld, mut env) = self.split();
        igmp.leave_all(ifindex, now, &mut env);
        mld.leave_all(ifindex, now, &mut env);
    }

    /// Removes interface `ifindex` and everything the core holds for it: its group records,
    /// their timers and its own (cancelled in the timer wheel), its pending reports. Nothing
    /// more is sent for it, so leave first ([`Host::leave_interface`]) and remove once the
    /// leaves are out (see [`Host::group_records`]). An unknown interface is an error.
    pub fn remove_interface(&mut self, ifindex: IfIndex) -> Result<(), Error> {
        if self.interfaces.remove(&ifindex).is_none() {
            return Err(Error::UnknownInterface(ifindex));
        }
        self.igmp.remove_interface(ifindex);
        self.mld.remove_interface(ifindex);
        self.outbox.retain(|tx| tx.iface() != ifindex);
        Ok(())
    }

    /// Group records the core holds, joined or being left (a leave's retransmissions still
    /// due), over every interface. O(1): a driver waiting for its leaves to go out asks this,
    /// not [`Host::groups`].
    pub fn group_records(&self) -> usize {
        self.igmp.record_count() + self.mld.record_count()
    }

    /// Group records held on `ifindex`, joined or being left. O(1).
    pub fn interface_group_records(&self, ifindex: IfIndex) -> usize {
        self.igmp.iface_record_count(ifindex) + self.mld.iface_record_count(ifindex)
    }

    /// Group records visited so far by walks over one interface's groups (queries, mode
    /// changes, General Query answers), both families: a measure of work, for tests and
    /// benchmarks that check it grows with the interface's own groups, never with all of them.
    #[cfg(feature = "__bench")]
    #[doc(hidden)]
    pub fn records_visited(&self) -> u64 {
        self.igmp.records_visited() + self.mld.records_visited()
    }

    /// A whole IP packet read from the link: classified, validated, handled. Anything that is
    /// not IGMP or MLD, or is malformed, is counted under its reason and dropped.
    #[must_use = "a dropped packet is counted, and its reason returned"]
    pub fn handle_packet(
        &mut self,
        ifindex: IfIndex,
        packet: &[u8],
        now: Instant,
    ) -> Result<(), DropReason> {
        self.stats.ip_rcv_total += 1;
        let classified = classify(packet).map_err(|e| self.stats.reject(e.into()))?;
        match classified {
            Classified::Igmp { meta, payload } => self.handle_igmp(ifindex, &meta, payload, now),
            Classified::Mld { meta, payload } => self.handle_mld(ifindex, &meta, payload, now),
            Classified::Other(OtherKind::Ipv4(_)) => Err(self.stats.reject(DropReason::OtherIpv4)),
            Classified::Other(OtherKind::Ipv6(_) | OtherKind::Icmpv6(_)) => {
                Err(self.stats.reject(DropReason::OtherIpv6))
            }
        }
    }

    /// One IGMP message (the IPv4 payload) received on `ifindex`, with the IP fields that
    /// matter (RFC 2236 §2, RFC 9776 §4).
    #[must_use = "a dropped message is counted, and its reason returned"]
    pub fn handle_igmp(
        &mut self,
        ifindex: IfIndex,
        meta: &Ipv4Meta,
        payload: &[u8],
        now: Instant,
    ) -> Result<(), DropReason> {
        self.tick(now);
        let (family, _, mut env) = self.split();
        igmp::input(family, &mut env, ifindex, meta, payload, now)
    }

    /// One MLD message (the ICMPv6 message after the IPv6 header chain) received on
    /// `ifindex`, with the IP fields that matter (RFC 2710 §3, RFC 9777 §5).
    #[must_use = "a dropped message is counted, and its reason returned"]
    pub fn handle_mld(
        &mut self,
        ifindex: IfIndex,
        meta: &Ipv6Meta,
        payload: &[u8],
        now: Instant,
    ) -> Result<(), DropReason> {
        self.tick(now);
        let (_, family, mut env) = self.split();
        mld::input(family, &mut env, ifindex, meta, payload, now)
    }

    /// Tells the host the time `now` (as quinn-proto's `Connection::handle_timeout`): every
    /// timer due by then fires, and what it sends is queued for
    /// [`poll_transmit`](Host::poll_transmit), what it notes for
    /// [`poll_event`](Host::poll_event). Call it when [`poll_timeout`](Host::poll_timeout)
    /// comes due (calling it earlier or more often is harmless), then drain `poll_transmit`.
    /// Follow-up timers are drawn from each timer's deadline, not from `now`, so a late call
    /// does not stretch the schedule.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tick(now);
        let (igmp, mld, mut env) = self.split();
        igmp.advance(now, &mut env);
        mld.advance(now, &mut env);
        igmp.flush_reports(&mut env);
        mld.flush_reports(&mut env);
    }

    /// Packets built and waiting for [`poll_transmit`](Host::poll_transmit) (General Query
    /// answers, built one report per call, not counted): a driver that writes fewer a turn
    /// than its timers make can hold [`handle_timeout`](Host::handle_timeout) back while
    /// these are many, so that the timers wait in the wheel (a few bytes each, one per
    /// record at most) instead of as built packets that would grow with every turn.
    pub fn transmits_queued(&self) -> usize {
        self.outbox.len()
    }

    /// The next packet to send, if any; call again until `None`, after every call that may
    /// send (a join or leave, a packet handled, [`handle_timeout`](Host::handle_timeout)).
    /// Takes no clock: the time is the latest the host was told. A General Query answer is
    /// built here one report per call from a cursor over the groups, so a driver that sends
    /// each packet before asking for the next holds one report of it at a time, whatever the
    /// number of groups.
    #[must_use = "a transmit not taken is a packet never sent"]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if self.outbox.is_empty() {
            let (igmp, mld, mut env) = self.split();
            igmp.flush_reports(&mut env);
            mld.flush_reports(&mut env);
        }
        if let Some(tx) = self.outbox.pop_front() {
            return Some(tx);
        }
        // General Query answers last: state-change reports are never held up behind them.
        let now = self.now;
        let (igmp, mld, mut env) = self.split();
        igmp.poll_answer(now, &mut env)
            .or_else(|| mld.poll_answer(now, &mut env))
    }

    /// The next event, oldest first. Events are kept up to
    /// [`Config::event_capacity`]; further ones are counted in [`Stats::events_dropped`].
    #[must_use = "an event not taken is lost to the driver"]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop()
    }

    /// When the host next has something to do: the instant to pass to
    /// [`handle_timeout`](Host::handle_timeout), the driver's sleep deadline. The latest time
    /// told when packets wait for [`poll_transmit`](Host::poll_transmit); `None` with no timer
    /// running. Never later than the next timer's deadline, and exact within 64 ms of the
    /// latest time told; a timer further off is due at the start of its timer wheel slot,
    /// which may be earlier (a `handle_timeout` then fires nothing and the deadline moves on).
    #[must_use = "a driver that ignores the timeout never fires the host's timers"]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.outbox.is_empty() || self.igmp.has_pending() || self.mld.has_pending() {
            return Some(self.now);
        }
        let igmp = self.igmp.next_deadline();
        let mld = self.mld.next_deadline();
        match (igmp, mld) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Every counter.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Whether `group` has a record on `ifindex` (joined, or being left): the cheap test a data
    /// path makes per datagram.
    pub fn is_joined(&self, ifindex: IfIndex, group: IpAddr) -> bool {
        match group {
            IpAddr::V4(g) => self.igmp.has_record(ifindex, g),
            IpAddr::V6(g) => self.mld.has_record(ifindex, g),
        }
    }

    /// Whether `ifindex`'s filter for `group` admits datagrams from `source` (the interface
    /// state, every request merged): `None` when the group is not joined there (no record,
    /// or one being left), `Some(false)` when the filter excludes the source. O(log of the
    /// group's sources): a data path may ask it per datagram.
    pub fn admits_source(&self, ifindex: IfIndex, group: IpAddr, source: IpAddr) -> Option<bool> {
        match (group, source) {
            (IpAddr::V4(g), IpAddr::V4(s)) => self.igmp.admits_source(ifindex, g, s),
            (IpAddr::V6(g), IpAddr::V6(s)) => self.mld.admits_source(ifindex, g, s),
            // A source of the other family is never in a filter of this group.
            _ => self.is_joined(ifindex, group).then_some(false),
        }
    }

    /// One group on one interface, as [`Host::groups`] lists it; `None` without a record.
    pub fn group(&self, ifindex: IfIndex, group: IpAddr, now: Instant) -> Option<GroupInfo> {
        match group {
            IpAddr::V4(g) => self.igmp.find_group_info(ifindex, g, &self.config, now),
            IpAddr::V6(g) => self.mld.find_group_info(ifindex, g, &self.config, now),
        }
    }

    /// Up to `max` group records from `cursor` on (start at [`GroupCursor::START`]), appended
    /// to `out` in table order (IPv4, then IPv6; not sorted); the cursor to go on from, or
    /// `None` when every record has been visited. A call costs what it lists, so a view of a
    /// million groups can be built a slice at a time between packets. A group held throughout
    /// a walk is listed exactly once; one joined or left during it may or may not be.
    pub fn groups_page(
        &self,
        cursor: GroupCursor,
        max: usize,
        now: Instant,
        out: &mut Vec<GroupInfo>,
    ) -> Option<GroupCursor> {
        let before = out.len();
        if !cursor.ipv6 {
            let next = self
                .igmp
                .group_infos_page(cursor.slot, max, &self.config, now, out);
            if let Some(slot) = next {
                return Some(GroupCursor { ipv6: false, slot });
            }
        }
        let from = if cursor.ipv6 { cursor.slot } else { 0 };
        let left = max - (out.len() - before);
        if left == 0 {
            return Some(GroupCursor {
                ipv6: true,
                slot: from,
            });
        }
        self.mld
            .group_infos_page(from, left, &self.config, now, out)
            .map(|slot| GroupCursor { ipv6: true, slot })
    }

    /// Up to `max` group records of interface `ifindex`, IPv4 groups then IPv6 ones, each in
    /// address order, the first `skip` passed over, appended to `out`: a page of one
    /// interface's groups that costs what it lists (plus `skip`), not the whole table.
    pub fn interface_groups_page(
        &self,
        ifindex: IfIndex,
        skip: usize,
        max: usize,
        now: Instant,
        out: &mut Vec<GroupInfo>,
    ) {
        let v4 = self.igmp.iface_record_count(ifindex);
        let before = out.len();
        self.igmp
            .iface_group_infos(ifindex, skip, max, &self.config, now, out);
        let left = max - (out.len() - before);
        self.mld.iface_group_infos(
            ifindex,
            skip.saturating_sub(v4),
            left,
            &self.config,
            now,
            out,
        );
    }

    /// Every group record on every interface, sorted by interface and group.
    pub fn groups(&self, now: Instant) -> Vec<GroupInfo> {
        let mut all = Vec::new();
        self.igmp.group_infos(&self.config, now, &mut all);
        self.mld.group_infos(&self.config, now, &mut all);
        all.sort_by_key(|g| (g.iface, g.group));
        all
    }

    /// Every interface: the versions spoken and the timers that hold them, by number.
    pub fn interfaces(&self, now: Instant) -> Vec<InterfaceInfo> {
        self.ifindexes()
            .into_iter()
            .filter_map(|ifindex| self.interface(ifindex, now))
            .collect()
    }

    /// Every interface's number, in order.
    fn ifindexes(&self) -> Vec<IfIndex> {
        let mut ifindexes: Vec<IfIndex> = self.interfaces.keys().copied().collect();
        ifindexes.sort_unstable();
        ifindexes
    }

    /// One interface, as [`Host::interfaces`] lists it; `None` if it is not one of this host's.
    /// Costs what one interface costs, for views that page through many.
    pub fn interface(&self, ifindex: IfIndex, now: Instant) -> Option<InterfaceInfo> {
        if !self.interfaces.contains_key(&ifindex) {
            return None;
        }
        let (igmp, mld, config) = (&self.igmp, &self.mld, &self.config);
        Some(InterfaceInfo {
            iface: ifindex,
            igmp_version: igmp.version(ifindex, config),
            igmp_v1_querier_ms: igmp
                .older_querier_left(ifindex, Compat::V1, now)
                .map(millis),
            igmp_v2_querier_ms: igmp
                .older_querier_left(ifindex, Compat::V2, now)
                .map(millis),
            mld_version: mld.version(ifindex, config),
            // MLDv1 is the V2 mode.
            mld_v1_querier_ms: mld.older_querier_left(ifindex, Compat::V2, now).map(millis),
            igmp_general_response_ms: igmp.general_response_left(ifindex, now).map(millis),
            mld_general_response_ms: mld.general_response_left(ifindex, now).map(millis),
            igmp_groups: igmp.group_count(ifindex),
            mld_groups: mld.group_count(ifindex),
        })
    }
}

/// Whether `owner` is a valid name for [`Host::set_filter`]: 1 to 64 printable ASCII
/// characters, no spaces (it is shown and journalled as one word).
pub fn is_valid_owner(owner: &str) -> bool {
    (1..=64).contains(&owner.len()) && owner.bytes().all(|b| b.is_ascii_graphic())
}
