//! The sans-IO host side of IP multicast group management: IGMPv1/v2 (RFC 1112, RFC 2236),
//! IGMPv3 (RFC 9776), MLDv1 (RFC 2710) and MLDv2 (RFC 9777), with the NetBSD `igmp.c` 1.49
//! and KAME `mld6.c` seeds as the behaviour of record for the older versions.
//!
//! The core does no I/O, reads no clock and owns no randomness source: the driver passes the
//! time ([`Instant`]) into every call and a seed into [`Host::new`], feeds it received packets
//! ([`Host::handle_packet`]), writes out what [`Host::poll`] hands back ([`Transmit`]), sleeps
//! until [`Host::next_deadline`], and may learn what happened from [`Host::poll_event`].
//!
//! ```
//! use membership::{Config, Host, Instant, InterfaceConfig};
//!
//! let mut host = Host::new(Config::default(), 42);
//! host.add_interface(1, InterfaceConfig {
//!     ipv4: Some("192.0.2.7".parse().unwrap()),
//!     ..InterfaceConfig::default()
//! }).unwrap();
//! host.join(1, "239.1.2.3".parse().unwrap(), Instant::ZERO).unwrap();
//! let mut sent = Vec::new();
//! host.poll(Instant::ZERO, |tx| sent.push(tx.to_packet()));
//! assert_eq!(sent.len(), 1); // an IGMPv3 CHANGE_TO_EXCLUDE {} report
//! ```
//!
//! One generic engine serves both protocols; `igmp` and `mld` are thin adapters that validate
//! and translate messages. [`wire`] holds the message formats, usable on their own.
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
pub use transmit::{Message, Transmit};
pub use wire::ip::{Ipv4Meta, Ipv6Meta};

/// An interface, as the driver numbers it.
pub type IfIndex = u32;

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
