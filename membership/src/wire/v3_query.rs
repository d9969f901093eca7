//! What IGMPv3 and MLDv2 queries add to IGMPv2 / MLDv1 ones, laid out alike in both
//! (RFC 9776 §4.1.4 to §4.1.9, RFC 9777 §5.1.6 to §5.1.11): `Resv(4) | S(1) | QRV(3)`, QQIC,
//! Number of Sources, Source Addresses. One set of accessors serves both protocols.

use core::net::{Ipv4Addr, Ipv6Addr};
use core::time::Duration;

use super::decode_code8;
use super::igmp::IgmpRepr;
use super::mld::MldRepr;

/// S flag (Suppress Router-Side Processing) in the `Resv | S | QRV` byte.
const FLAG_SUPPRESS_ROUTER: u8 = 0x08;
/// Querier's Robustness Variable in the `Resv | S | QRV` byte.
const QRV_MASK: u8 = 0x07;

/// The S flag of a `Resv | S | QRV` byte.
pub(super) fn suppress_router_of(flags: u8) -> bool {
    flags & FLAG_SUPPRESS_ROUTER != 0
}

/// The QRV of a `Resv | S | QRV` byte.
pub(super) fn qrv_of(flags: u8) -> u8 {
    flags & QRV_MASK
}

/// The `Resv(4) = 0 | S | QRV` byte; QRV above 7 is truncated to 3 bits.
pub(super) fn flags_byte(suppress_router: bool, qrv: u8) -> u8 {
    let s = if suppress_router {
        FLAG_SUPPRESS_ROUTER
    } else {
        0
    };
    s | (qrv & QRV_MASK)
}

/// The fields of an IGMPv3 (`A = Ipv4Addr`) or MLDv2 (`A = Ipv6Addr`) query beyond those of
/// IGMPv2 / MLDv1, borrowed from its Repr ([`IgmpRepr::v3_query`], [`MldRepr::v3_query`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V3QueryFields<'a, A> {
    /// S flag: when set, receiving routers suppress the timer updates they would normally
    /// make on hearing this query (RFC 9776 §4.1, RFC 9777 §5.1).
    pub suppress_router: bool,
    /// Querier's Robustness Variable, 0..=7.
    pub qrv: u8,
    /// Querier's Query Interval Code.
    pub qqic: u8,
    /// Empty but for a group-and-source-specific query.
    pub sources: &'a [A],
}

impl<A> V3QueryFields<'_, A> {
    /// The Querier's Query Interval QQIC stands for (RFC 9776 §4.1.7, RFC 9777 §5.1.9).
    pub fn query_interval(&self) -> Duration {
        Duration::from_secs(u64::from(decode_code8(self.qqic)))
    }
}

impl IgmpRepr {
    /// S flag, QRV, QQIC and sources of an IGMPv3 query; `None` for any other message.
    pub fn v3_query(&self) -> Option<V3QueryFields<'_, Ipv4Addr>> {
        match self {
            IgmpRepr::QueryV3 {
                suppress_router,
                qrv,
                qqic,
                sources,
                ..
            } => Some(V3QueryFields {
                suppress_router: *suppress_router,
                qrv: *qrv,
                qqic: *qqic,
                sources,
            }),
            _ => None,
        }
    }
}

impl MldRepr {
    /// S flag, QRV, QQIC and sources of an MLDv2 query; `None` for any other message.
    pub fn v3_query(&self) -> Option<V3QueryFields<'_, Ipv6Addr>> {
        match self {
            MldRepr::QueryV2 {
                suppress_router,
                qrv,
                qqic,
                sources,
                ..
            } => Some(V3QueryFields {
                suppress_router: *suppress_router,
                qrv: *qrv,
                qqic: *qqic,
                sources,
            }),
            _ => None,
        }
    }
}
