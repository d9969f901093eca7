//! What happened inside the host, for the driver to log or measure (as quinn-proto's
//! `poll_endpoint_events`): drained with [`Host::poll_event`](crate::Host::poll_event).

use alloc::collections::VecDeque;
use core::net::IpAddr;
use core::time::Duration;

use crate::config::ProtocolVersion;
use crate::filter::SourceFilter;
use crate::stats::Stats;
use crate::IfIndex;

/// Something that happened on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A valid query was accepted (RFC 2236 §2, RFC 2710 §3.6, RFC 9776 §4.1, RFC 9777 §5.1).
    QueryHeard {
        /// The interface it arrived on.
        iface: IfIndex,
        /// The query's version, by its form: an IGMP query with Max Resp Code 0 is IGMPv1.
        version: ProtocolVersion,
        /// The group asked about; `None` for a General Query.
        group: Option<IpAddr>,
        /// The Maximum Response Time the query allows (10 s for IGMPv1).
        max_resp: Duration,
    },
    /// The host compatibility mode changed (RFC 9776 §7.2, RFC 9777 §8.2): an older querier
    /// was heard, or its Older Version Querier Present timer ran out.
    CompatibilityModeChanged {
        /// The interface.
        iface: IfIndex,
        /// The version spoken before.
        from: ProtocolVersion,
        /// The version spoken now.
        to: ProtocolVersion,
    },
    /// A group gained reception state: the first request for it was made.
    Joined {
        /// The interface.
        iface: IfIndex,
        /// The group.
        group: IpAddr,
    },
    /// A group lost all reception state: its last request was dropped.
    Left {
        /// The interface.
        iface: IfIndex,
        /// The group.
        group: IpAddr,
    },
    /// A joined group's merged source filter changed (RFC 9776 §3.2).
    FilterChanged {
        /// The interface.
        iface: IfIndex,
        /// The group.
        group: IpAddr,
        /// The interface state now.
        filter: SourceFilter,
    },
}

impl Event {
    /// The interface the event is about.
    pub fn iface(&self) -> IfIndex {
        match self {
            Event::QueryHeard { iface, .. }
            | Event::CompatibilityModeChanged { iface, .. }
            | Event::Joined { iface, .. }
            | Event::Left { iface, .. }
            | Event::FilterChanged { iface, .. } => *iface,
        }
    }
}

/// Events not yet taken, at most `capacity` of them; the rest are counted as dropped.
#[derive(Debug)]
pub(crate) struct EventQueue {
    queue: VecDeque<Event>,
    capacity: usize,
}

impl EventQueue {
    pub(crate) fn new(capacity: usize) -> EventQueue {
        EventQueue {
            queue: VecDeque::new(),
            capacity,
        }
    }

    pub(crate) fn push(&mut self, event: Event, stats: &mut Stats) {
        if self.queue.len() < self.capacity {
            self.queue.push_back(event);
        } else {
            stats.events_dropped += 1;
        }
    }

    pub(crate) fn pop(&mut self) -> Option<Event> {
        self.queue.pop_front()
    }
}
