//! The address ranges of the `[[link]]` tables: each range checked alone (it stays in its
//! prefix, does not wrap or turn multicast), then all of them against each other by sorting
//! (O(n log n) in the number of ranges, not of hosts).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{ConfigError, ConfigFile};
use crate::framing::Mac;

/// `count` consecutive addresses from `first` must stay in its prefix and not reach its
/// broadcast address.
pub(super) fn check_ipv4_range(first: Ipv4Addr, prefix_len: u8, count: u32) -> Result<(), String> {
    let last = u64::from(u32::from(first)) + u64::from(count) - 1;
    let last = u32::try_from(last)
        .map_err(|_| format!("{count} hosts from {first} run past 255.255.255.255"))?;
    let mask = u32::MAX
        .checked_shl(32 - u32::from(prefix_len))
        .unwrap_or(0);
    let network = Ipv4Addr::from(u32::from(first) & mask);
    let last_addr = Ipv4Addr::from(last);
    if last & mask != u32::from(first) & mask {
        return Err(format!(
            "{count} hosts from {first} run out of {network}/{prefix_len} (the last would be {last_addr})"
        ));
    }
    // /31 and /32 have no broadcast address (RFC 3021).
    if prefix_len <= 30 && last == u32::from(first) | !mask {
        return Err(format!(
            "{count} hosts from {first} reach {last_addr}, the broadcast address of {network}/{prefix_len}"
        ));
    }
    Ok(())
}

/// `count` consecutive MACs from `first` must not wrap or turn multicast.
pub(super) fn check_mac_range(first: Mac, count: u32) -> Result<(), String> {
    let last = mac_number(first) + u64::from(count) - 1;
    if last > 0xffff_ffff_ffff {
        return Err(format!(
            "{count} hosts from {first} run past ff:ff:ff:ff:ff:ff"
        ));
    }
    let last = mac_from_number(last);
    if last.is_multicast() {
        return Err(format!(
            "{count} hosts from {first} reach {last}, a multicast MAC"
        ));
    }
    Ok(())
}

pub(super) fn mac_number(mac: Mac) -> u64 {
    let m = mac.0;
    u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]])
}

pub(super) fn mac_from_number(n: u64) -> Mac {
    let b = n.to_be_bytes();
    Mac([b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// A range of addresses given at some line: `first ..= last` within `scope` (0: all links;
/// a link's index + 1 for link-local addresses, which need only be unique on their link).
pub(super) struct Claim {
    scope: usize,
    first: u128,
    last: u128,
    at: usize,
}

impl Claim {
    pub(super) fn new(at: usize, scope: usize, first: u128, count: u32) -> Claim {
        Claim {
            scope,
            first,
            last: first + u128::from(count) - 1,
            at,
        }
    }
}

#[derive(Default)]
pub(super) struct Claims {
    pub(super) ipv4: Vec<Claim>,
    pub(super) mac: Vec<Claim>,
    pub(super) ipv6: Vec<Claim>,
}

impl Claims {
    pub(super) fn check(&mut self, file: &ConfigFile) -> Result<(), ConfigError> {
        let v4 = |n: u128| Ipv4Addr::from(n as u32).to_string();
        let mac = |n: u128| mac_from_number(n as u64).to_string();
        let v6 = |n: u128| Ipv6Addr::from(n).to_string();
        no_overlap(file, &mut self.ipv4, "IPv4 addresses", &v4)?;
        no_overlap(file, &mut self.mac, "MACs", &mac)?;
        no_overlap(file, &mut self.ipv6, "IPv6 link-local addresses", &v6)
    }
}

/// Refuses the first overlap between `claims`, reported at the one later in the file.
fn no_overlap(
    file: &ConfigFile,
    claims: &mut [Claim],
    what: &str,
    show: &dyn Fn(u128) -> String,
) -> Result<(), ConfigError> {
    claims.sort_unstable_by_key(|c| (c.scope, c.first, c.at));
    let mut widest: Option<&Claim> = None;
    let mut found: Option<(&Claim, &Claim)> = None;
    for claim in claims.iter() {
        match widest {
            Some(w) if w.scope == claim.scope && claim.first <= w.last => {
                let (earlier, later) = if w.at < claim.at {
                    (w, claim)
                } else {
                    (claim, w)
                };
                // Keep the overlap that comes first in the file, for a stable message.
                if found.is_none_or(|(_, l)| later.at < l.at) {
                    found = Some((earlier, later));
                }
                if claim.last > w.last {
                    widest = Some(claim);
                }
            }
            _ => widest = Some(claim),
        }
    }
    match found {
        None => Ok(()),
        Some((earlier, later)) => Err(file.error(
            later.at,
            format!(
                "{what} {} to {} overlap those given on line {} ({} to {})",
                show(later.first),
                show(later.last),
                file.line(earlier.at),
                show(earlier.first),
                show(earlier.last)
            ),
        )),
    }
}
