//! What the host hands the driver to send, typed by family: an IPv4 packet always carries
//! IGMP and an IPv6 one MLD, and each transmit says what it tells the routers (a report or a
//! leave of which group, or a v3 report's records and which of them are leaves), so that a
//! driver measuring or forwarding by group needs no lookup of its own.

use alloc::vec;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use smallvec::SmallVec;

use crate::wire::igmp::IgmpRepr;
use crate::wire::mld::MldRepr;
use crate::wire::{GroupRecord, RecordType};
use crate::{wire, IfIndex};

/// One packet for the driver to write, IGMP over IPv4 or MLD over IPv6.
///
/// IGMP and MLD messages always go with TTL / hop limit 1 and the Router Alert option
/// (RFC 2236 §2, RFC 9776 §4; RFC 2710 §3, RFC 9777 §5), which [`Transmit::to_packet`] adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// An IGMP message in an IPv4 packet.
    Igmp(IgmpTransmit),
    /// An MLD message in an IPv6 packet.
    Mld(MldTransmit),
}

/// One family's transmit: on which interface, from and to whom, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyTransmit<A, M> {
    /// The interface to send on.
    pub iface: IfIndex,
    /// The IP source: the interface's address, or the unspecified address without one.
    pub src: A,
    /// The IP destination: the group, all-routers, or the v3 reports' address.
    pub dst: A,
    /// The message.
    pub message: M,
    /// Which of a v3 report's records are leaves; empty for any other message.
    leaves: LeaveMask,
}

/// An IGMP message from an IPv4 address to another.
pub type IgmpTransmit = FamilyTransmit<Ipv4Addr, IgmpRepr>;

/// An MLD message from an IPv6 address to another.
pub type MldTransmit = FamilyTransmit<Ipv6Addr, MldRepr>;

impl<A, M> FamilyTransmit<A, M> {
    /// A v1/v2 (MLDv1) message: no records.
    pub(crate) fn new(iface: IfIndex, src: A, dst: A, message: M) -> Self {
        FamilyTransmit {
            iface,
            src,
            dst,
            message,
            leaves: LeaveMask::default(),
        }
    }

    /// A v3 report whose records at the positions set in `leaves` are leaves.
    pub(crate) fn with_leaves(
        iface: IfIndex,
        src: A,
        dst: A,
        message: M,
        leaves: LeaveMask,
    ) -> Self {
        FamilyTransmit {
            iface,
            src,
            dst,
            message,
            leaves,
        }
    }
}

/// A transmit's message, borrowed: what [`Transmit::message`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// An IGMP message, for an IPv4 packet.
    Igmp(&'a IgmpRepr),
    /// An MLD message, for an IPv6 packet.
    Mld(&'a MldRepr),
}

/// What a transmit tells the routers about this host's groups.
#[derive(Debug, Clone)]
pub enum Carries<'a> {
    /// An IGMPv1/v2 or MLDv1 report of one group: others on the link hear it too.
    Report(IpAddr),
    /// An IGMPv2 Leave Group or MLD Done for one group.
    Leave(IpAddr),
    /// An IGMPv3 / MLDv2 report: its records, each a join or change, or a leave.
    Records(CarriedRecords<'a>),
    /// A query. A [`Host`](crate::Host) never sends one; the message types can hold any
    /// IGMP / MLD message.
    Query,
}

/// One record of an IGMPv3 / MLDv2 report, as [`CarriedRecords`] lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CarriedRecord {
    /// The group the record is about.
    pub group: IpAddr,
    /// Its record type.
    pub kind: RecordType,
    /// Whether the group had no reception state left when the record was decided: the record
    /// is its leave (a TO_IN({}), or a BLOCK of the last sources, or a retransmission of one).
    pub is_leave: bool,
}

/// The records of a v3 report in wire order, each with its group and whether it is a leave:
/// read from the message itself, no allocation.
#[derive(Debug, Clone)]
pub struct CarriedRecords<'a> {
    records: RecordsOf<'a>,
    leaves: &'a LeaveMask,
    next: usize,
}

#[derive(Debug, Clone, Copy)]
enum RecordsOf<'a> {
    V4(&'a [GroupRecord<Ipv4Addr>]),
    V6(&'a [GroupRecord<Ipv6Addr>]),
}

impl Iterator for CarriedRecords<'_> {
    type Item = CarriedRecord;

    fn next(&mut self) -> Option<CarriedRecord> {
        let at = self.next;
        let (group, kind) = match self.records {
            RecordsOf::V4(records) => records.get(at).map(|r| (IpAddr::V4(r.group), r.kind))?,
            RecordsOf::V6(records) => records.get(at).map(|r| (IpAddr::V6(r.group), r.kind))?,
        };
        self.next += 1;
        Some(CarriedRecord {
            group,
            kind,
            is_leave: self.leaves.contains(at),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let len = match self.records {
            RecordsOf::V4(records) => records.len(),
            RecordsOf::V6(records) => records.len(),
        };
        let left = len.saturating_sub(self.next);
        (left, Some(left))
    }
}

impl ExactSizeIterator for CarriedRecords<'_> {}

impl Transmit {
    /// The interface to send on.
    pub fn iface(&self) -> IfIndex {
        match self {
            Transmit::Igmp(tx) => tx.iface,
            Transmit::Mld(tx) => tx.iface,
        }
    }

    /// The IP source.
    pub fn src(&self) -> IpAddr {
        match self {
            Transmit::Igmp(tx) => tx.src.into(),
            Transmit::Mld(tx) => tx.src.into(),
        }
    }

    /// The IP destination.
    pub fn dst(&self) -> IpAddr {
        match self {
            Transmit::Igmp(tx) => tx.dst.into(),
            Transmit::Mld(tx) => tx.dst.into(),
        }
    }

    /// The message, borrowed.
    pub fn message(&self) -> Message<'_> {
        match self {
            Transmit::Igmp(tx) => Message::Igmp(&tx.message),
            Transmit::Mld(tx) => Message::Mld(&tx.message),
        }
    }

    /// The whole IP packet: IPv4 with TOS 0xc0, DF, TTL 1 and Router Alert, as the Linux kernel
    /// sends it; IPv6 with hop limit 1 and a hop-by-hop Router Alert.
    pub fn to_packet(&self) -> Vec<u8> {
        match self {
            Transmit::Igmp(tx) => {
                let mut body = vec![0; tx.message.buffer_len()];
                tx.message.emit(&mut body);
                wire::ip::build_ipv4(tx.src, tx.dst, &body)
            }
            Transmit::Mld(tx) => {
                let mut body = vec![0; tx.message.buffer_len()];
                tx.message.emit(&tx.src, &tx.dst, &mut body);
                wire::ip::build_ipv6(tx.src, tx.dst, &body)
            }
        }
    }

    /// What the message tells the routers: a report or a leave of one group, or a v3
    /// report's records.
    pub fn carries(&self) -> Carries<'_> {
        use IgmpRepr as I;
        use MldRepr as M;
        let (records, leaves) = match self {
            Transmit::Igmp(tx) => match &tx.message {
                I::ReportV1 { group } | I::ReportV2 { group } => {
                    return Carries::Report((*group).into())
                }
                I::Leave { group } => return Carries::Leave((*group).into()),
                I::Query { .. } | I::QueryV3 { .. } => return Carries::Query,
                I::ReportV3 { records } => (RecordsOf::V4(records), &tx.leaves),
            },
            Transmit::Mld(tx) => match &tx.message {
                M::Report { group } => return Carries::Report((*group).into()),
                M::Done { group } => return Carries::Leave((*group).into()),
                M::Query { .. } | M::QueryV2 { .. } => return Carries::Query,
                M::ReportV2 { records } => (RecordsOf::V6(records), &tx.leaves),
            },
        };
        Carries::Records(CarriedRecords {
            records,
            leaves,
            next: 0,
        })
    }

    /// Every group the message is about, in wire order: the group of a v1/v2 message, each
    /// record's group of a v3 report.
    pub fn groups(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let (single, records) = match self.carries() {
            Carries::Report(group) | Carries::Leave(group) => (Some(group), None),
            Carries::Records(records) => (None, Some(records)),
            Carries::Query => (None, None),
        };
        single
            .into_iter()
            .chain(records.into_iter().flatten().map(|r| r.group))
    }

    /// The group a v1/v2 (MLDv1) message is about (the destination of a report, the group of
    /// a Leave).
    pub fn group(&self) -> Option<IpAddr> {
        match self.carries() {
            Carries::Report(group) | Carries::Leave(group) => Some(group),
            Carries::Records(_) | Carries::Query => None,
        }
    }
}

/// Which records of a v3 report are leaves, one bit per record in wire order. Inline up to
/// 128 records, so a report with no leaf past its 128th record allocates nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LeaveMask(SmallVec<[u64; 2]>);

impl LeaveMask {
    /// Marks record `at` a leave.
    pub(crate) fn insert(&mut self, at: usize) {
        let (word, bit) = (at / 64, at % 64);
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << bit;
    }

    /// Whether record `at` is a leave.
    pub(crate) fn contains(&self, at: usize) -> bool {
        self.0
            .get(at / 64)
            .is_some_and(|w| w & (1 << (at % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leave_mask_holds_records_inline_and_past_128() {
        let mut mask = LeaveMask::default();
        for at in [0, 63, 64, 127] {
            mask.insert(at);
        }
        assert!(!mask.0.spilled());
        mask.insert(200);
        for at in [0, 63, 64, 127, 200] {
            assert!(mask.contains(at), "{at}");
        }
        for at in [1, 62, 65, 128, 199, 201, 10_000] {
            assert!(!mask.contains(at), "{at}");
        }
    }
}
