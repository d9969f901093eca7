//! What the host hands the driver to send.

use alloc::vec;
use alloc::vec::Vec;
use core::net::IpAddr;

use crate::wire::igmp::IgmpRepr;
use crate::wire::mld::MldRepr;
use crate::{wire, IfIndex};

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// An IGMP message, for an IPv4 packet.
    Igmp(IgmpRepr),
    /// An MLD message, for an IPv6 packet.
    Mld(MldRepr),
}

/// One packet for the driver to write: on which interface, from and to whom, and what.
///
/// IGMP and MLD messages always go with TTL / hop limit 1 and the Router Alert option
/// (RFC 2236 §2, RFC 9776 §4; RFC 2710 §3, RFC 9777 §5), which [`Transmit::to_packet`] adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The interface to send on.
    pub iface: IfIndex,
    /// The IP source: the interface's address, or the unspecified address without one.
    pub src: IpAddr,
    /// The IP destination: the group, all-routers, or the v3 reports' address.
    pub dst: IpAddr,
    /// The message.
    pub message: Message,
}

impl Transmit {
    /// The whole IP packet: IPv4 with TOS 0xc0, DF, TTL 1 and Router Alert, as the Linux kernel
    /// sends it; IPv6 with hop limit 1 and a hop-by-hop Router Alert.
    pub fn to_packet(&self) -> Vec<u8> {
        match (&self.message, self.src, self.dst) {
            (Message::Igmp(repr), IpAddr::V4(src), IpAddr::V4(dst)) => {
                let mut body = vec![0; repr.buffer_len()];
                repr.emit(&mut body);
                wire::ip::build_ipv4(src, dst, &body)
            }
            (Message::Mld(repr), IpAddr::V6(src), IpAddr::V6(dst)) => {
                let mut body = vec![0; repr.buffer_len()];
                repr.emit(&src, &dst, &mut body);
                wire::ip::build_ipv6(src, dst, &body)
            }
            _ => unreachable!("transmits are built with matching address families"),
        }
    }

    /// Every group the message is about: the group of a v1/v2 message, each record's group of a
    /// v3 report.
    pub fn groups(&self) -> Vec<IpAddr> {
        match &self.message {
            Message::Igmp(IgmpRepr::ReportV3 { records }) => {
                records.iter().map(|r| IpAddr::V4(r.group)).collect()
            }
            Message::Mld(MldRepr::ReportV2 { records }) => {
                records.iter().map(|r| IpAddr::V6(r.group)).collect()
            }
            _ => self.group().into_iter().collect(),
        }
    }

    /// The group a v1/v2 (MLDv1) message is about (the destination of a report, the group of
    /// a Leave).
    pub fn group(&self) -> Option<IpAddr> {
        use IgmpRepr as I;
        use MldRepr as M;
        match &self.message {
            Message::Igmp(I::ReportV1 { group } | I::ReportV2 { group } | I::Leave { group }) => {
                Some((*group).into())
            }
            Message::Mld(M::Report { group } | M::Done { group }) => Some((*group).into()),
            _ => None,
        }
    }
}
