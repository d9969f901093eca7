//! The sans-IO host side of IP multicast group management: IGMPv1/v2 (RFC 1112, RFC 2236),
//! IGMPv3 (RFC 9776), MLDv1 (RFC 2710) and MLDv2 (RFC 9777), with the NetBSD `igmp.c` 1.49
//! and KAME `mld6.c` seeds as the behaviour of record for the older versions.
//!
//! The core does no I/O, reads no clock and owns no randomness source. It is driven as
//! quinn-proto's `Connection` is: the driver passes a seed into [`Host::new`] and the time
//! ([`Instant`]) into every call that changes state, feeds it received packets
//! ([`Host::handle_packet`]), fires its timers with [`Host::handle_timeout`] when
//! [`Host::poll_timeout`] comes due, writes out what [`Host::poll_transmit`] hands back
//! ([`Transmit`]: IGMP over IPv4 or MLD over IPv6, saying which groups it reports or leaves)
//! until it gives `None`, and may learn what happened from [`Host::poll_event`].
//!
//! ```
//! use membership::{Carries, Config, Host, Instant, InterfaceConfig};
//!
//! let mut host = Host::new(Config::default(), 42);
//! host.add_interface(1, InterfaceConfig {
//!     ipv4: Some("192.0.2.7".parse().unwrap()),
//!     ..InterfaceConfig::default()
//! }).unwrap();
//! host.join(1, "239.1.2.3".parse().unwrap(), Instant::ZERO).unwrap();
//! let tx = host.poll_transmit().expect("the join's report");
//! // An IGMPv3 CHANGE_TO_EXCLUDE {} report: one record, a join.
//! let Carries::Records(records) = tx.carries() else { panic!("not a v3 report") };
//! assert!(records.map(|r| (r.group.to_string(), r.is_leave)).eq([("239.1.2.3".into(), false)]));
//! let _packet: Vec<u8> = tx.to_packet();
//! assert_eq!(host.poll_transmit(), None);
//! // Its retransmission is due within the Unsolicited Report Interval (1 s). The timeout may
//! // come early (the timer wheel's coarse slots), never late: a driver just goes round again.
//! let mut retransmission = None;
//! while retransmission.is_none() {
//!     let due = host.poll_timeout().expect("a retransmission timer");
//!     assert!(due < Instant::from_millis(1000));
//!     host.handle_timeout(due);
//!     retransmission = host.poll_transmit();
//! }
//! ```
//!
//! One generic engine (`gmp`) serves both protocols; `igmp` and `mld` are thin adapters that
//! parse and check each family's messages, and the engine dispatches them once, through a
//! query view and a report view. [`wire`] holds the message formats, usable on their own.
//!
//! [`Config`] is `#[non_exhaustive]`: build it from [`Config::default`] (or [`Config::v2`])
//! with its `with_*` builder methods.
//!
//! Features: `std` (default) builds against the standard library; without it the crate is
//! `no_std` with `alloc`. `serde` derives `Serialize` for the info types.

#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;

mod config;
mod error;
mod event;
mod filter;
mod gmp;
mod host;
mod igmp;
mod info;
mod mld;
pub mod stats;
pub mod time;
#[cfg(feature = "__bench")]
#[doc(hidden)]
pub mod timer;
#[cfg(not(feature = "__bench"))]
mod timer;
mod transmit;
pub mod wire;

pub use config::{
    BadVersion, Config, IgmpVersion, InputPolicy, InterfaceConfig, MldVersion, ProtocolVersion,
};
pub use error::Error;
pub use event::Event;
pub use filter::{FilterMode, SourceFilter};
pub use host::{is_valid_owner, Host};
pub use info::{GroupCursor, GroupInfo, InterfaceInfo};
pub use stats::{DropReason, Stats};
pub use time::Instant;
pub use transmit::{
    CarriedRecord, CarriedRecords, Carries, FamilyTransmit, IgmpTransmit, Message, MldTransmit,
    Transmit,
};
pub use wire::ip::{Ipv4Meta, Ipv6Meta};

/// An interface, as the driver numbers it.
pub type IfIndex = u32;

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
