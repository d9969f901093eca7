//! The `[[link]]` tables of the configuration file: many links, many hosts per TAP link.
//!
//! ```toml
//! [[link]]
//! device = "tap1"
//! kind = "tap"                  # "tun" (the default) or "tap"
//! suppression = false           # default true
//! [[link.hosts]]
//! count = 1000
//! mac = "02:00:00:00:01:00"     # each next host's MAC is one more
//! ipv4 = "10.99.1.10/24"        # each next host's address is one more
//! ```
//!
//! A link without `[[link.hosts]]` has one host, given by the link's own `ipv4`, `ipv6_ll`
//! and (TAP) `mac`. On a TAP a host's MAC defaults to 02:00 followed by its IPv4 address, as
//! `--mac` does; its `ipv6_ll` to the modified EUI-64 address of its MAC (RFC 4291 §2.5.1),
//! unless given (then each next host's is one more). On a TUN (no MAC) `ipv6_ll` defaults to
//! fe80:: followed by the IPv4 address, as `--ipv6-ll` does. The protocol settings
//! (`igmp_version`, `mld_version`, `robustness`, `unsolicited_interval_ms`,
//! `v3_unsolicited_interval_ms`, `mtu`) may be given at the top level, per link and per host
//! block; the innermost wins. Keys are spelled with `_` here.
//!
//! The tables are serde structs of the parsed file ([`ConfigFile::links`]), unknown keys
//! refused; here their values are checked (ranges, device names, host counts) and the hosts
//! expanded. Every problem is one `ConfigError` naming the line and the key. Overlaps between
//! host ranges are found by sorting the ranges (`claims`: O(n log n) in the number of
//! blocks, not of hosts).

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, ConfigFile};
use crate::framing::Mac;
use crate::topology::{eui64_link_local, HostParams, HostSpec, LinkKind, LinkSpec, Topology};
use claims::{check_ipv4_range, check_mac_range, mac_from_number, mac_number, Claim, Claims};

/// The most hosts one `[[link.hosts]]` block may give.
pub const MAX_HOSTS_PER_BLOCK: i64 = 1_000_000;

/// Top-level keys that describe the one link of the short form.
const ONE_LINK_KEYS: &[&str] = &["iface", "tun", "tap", "mac", "ipv4", "ipv6_ll"];

/// A table that may hold the protocol settings besides its own keys: serde's `flatten` would
/// lose `deny_unknown_fields`, so the settings are repeated in each table by this macro.
macro_rules! table_with_params {
    (
        $(#[$meta:meta])*
        pub struct $name:ident { $($(#[$field_meta:meta])* $field:ident: $ty:ty,)* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$field_meta])* $field: $ty,)*
            igmp_version: Option<Spanned<Integer>>,
            mld_version: Option<Spanned<Integer>>,
            robustness: Option<Spanned<Integer>>,
            unsolicited_interval_ms: Option<Spanned<Integer>>,
            v3_unsolicited_interval_ms: Option<Spanned<Integer>>,
            mtu: Option<Spanned<Integer>>,
        }

        impl $name {
            /// `base` with this table's settings over it.
            fn params(
                &self,
                base: HostParams,
                file: &ConfigFile,
            ) -> Result<HostParams, ConfigError> {
                with_params(base, file, [
                    &self.igmp_version,
                    &self.mld_version,
                    &self.robustness,
                    &self.unsolicited_interval_ms,
                    &self.v3_unsolicited_interval_ms,
                    &self.mtu,
                ])
            }
        }
    };
}

/// `base` with the settings given (in the order of [`table_with_params`]) over it. The ranges
/// are the command line's.
fn with_params(
    base: HostParams,
    file: &ConfigFile,
    [igmp_version, mld_version, robustness, interval, v3_interval, mtu]: [&Option<Spanned<Integer>>;
        6],
) -> Result<HostParams, ConfigError> {
    let mut params = base;
    if let Some(v) = ranged(file, "igmp_version", igmp_version, 1..=3)? {
        params.igmp_version = v as u8;
    }
    if let Some(v) = ranged(file, "mld_version", mld_version, 1..=2)? {
        params.mld_version = v as u8;
    }
    if let Some(v) = ranged(file, "robustness", robustness, 1..=10)? {
        params.robustness = v as u8;
    }
    if let Some(v) = ranged(file, "unsolicited_interval_ms", interval, 1..=3_600_000)? {
        params.unsolicited_interval_ms = v as u32;
    }
    if let Some(v) = ranged(
        file,
        "v3_unsolicited_interval_ms",
        v3_interval,
        1..=3_600_000,
    )? {
        params.v3_unsolicited_interval_ms = v as u32;
    }
    if let Some(v) = ranged(file, "mtu", mtu, 576..=65_535)? {
        params.mtu = v as u16;
    }
    Ok(params)
}

/// A TOML integer, so that a value of another type is refused as "expected an integer"
/// (serde's own word would be Rust's `i64`).
#[derive(Debug, Clone, Copy)]
pub struct Integer(i64);

impl<'de> Deserialize<'de> for Integer {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Integer, D::Error> {
        struct IntegerVisitor;
        impl serde::de::Visitor<'_> for IntegerVisitor {
            type Value = Integer;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Integer, E> {
                Ok(Integer(n))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Integer, E> {
                i64::try_from(n)
                    .map(Integer)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(n), &self))
            }
        }
        deserializer.deserialize_i64(IntegerVisitor)
    }
}

/// `kind` of a `[[link]]`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum KindKey {
    Tun,
    Tap,
}

table_with_params! {
    /// One `[[link]]` table.
    pub struct LinkTable {
        device: Option<Spanned<String>>,
        kind: Option<KindKey>,
        suppression: Option<bool>,
        ipv4: Option<Spanned<String>>,
        ipv6_ll: Option<Spanned<String>>,
        mac: Option<Spanned<String>>,
        hosts: Option<Vec<Spanned<HostBlock>>>,
    }
}

table_with_params! {
    /// One `[[link.hosts]]` table: `count` consecutive hosts.
    pub struct HostBlock {
        count: Option<Spanned<Integer>>,
        ipv4: Option<Spanned<String>>,
        ipv6_ll: Option<Spanned<String>>,
        mac: Option<Spanned<String>>,
    }
}

/// The value of `key` if within `range`.
fn ranged(
    file: &ConfigFile,
    key: &str,
    value: &Option<Spanned<Integer>>,
    range: RangeInclusive<i64>,
) -> Result<Option<i64>, ConfigError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let Integer(n) = *value.get_ref();
    if range.contains(&n) {
        Ok(Some(n))
    } else {
        Err(file.error(
            value.span().start,
            format!(
                "`{key}` must be {} to {}, not {n}",
                range.start(),
                range.end()
            ),
        ))
    }
}

/// The `[[link]]` tables of `file`, or `None` when it has none (the one-link form).
/// `defaults` are the top-level settings (the command line with the file's top-level keys).
pub fn topology(file: &ConfigFile, defaults: HostParams) -> Result<Option<Topology>, ConfigError> {
    let Some(links) = &file.links else {
        return Ok(None);
    };
    for option in &file.options {
        let key = option.key.get_ref();
        let name = key.replace('-', "_");
        if ONE_LINK_KEYS.contains(&name.as_str()) {
            return Err(file.error(
                option.key.span().start,
                format!(
                    "`{key}` describes the one link of the short form, and this file has [[link]] \
                     tables: give `{}` inside a [[link]] (`device` for `iface`), or drop the \
                     [[link]] tables",
                    if name == "iface" || name == "tun" {
                        "device"
                    } else {
                        &name
                    },
                ),
            ));
        }
    }

    let mut topology = Topology::default();
    let mut claims = Claims::default();
    // Each device's first [[link]], by the offset of its `device`.
    let mut devices: HashMap<String, usize> = HashMap::new();
    for (index, link) in links.iter().enumerate() {
        let spec = parse_link(file, link, index, defaults, &mut claims)?;
        let device_at = link.get_ref().device.as_ref().map_or(0, |d| d.span().start);
        if let Some(&first) = devices.get(&spec.device) {
            return Err(file.error(
                device_at,
                format!(
                    "device `{}` is already the device of the [[link]] on line {}",
                    spec.device,
                    file.line(first)
                ),
            ));
        }
        devices.insert(spec.device.clone(), device_at);
        topology.links.push(spec);
    }
    claims.check(file)?;
    Ok(Some(topology))
}

/// The keys that give a run of hosts: a `[[link.hosts]]`, or a `[[link]]` for its one host.
struct Block<'a> {
    file: &'a ConfigFile,
    /// `[[link]]` or `[[link.hosts]]`.
    name: &'static str,
    /// Where the table starts, for a problem with no key of its own.
    at: usize,
    count: Option<&'a Spanned<Integer>>,
    ipv4: Option<&'a Spanned<String>>,
    ipv6_ll: Option<&'a Spanned<String>>,
    mac: Option<&'a Spanned<String>>,
}

impl Block<'_> {
    /// Where `key` is written, else where the table starts.
    fn at_key(&self, key: &str) -> usize {
        let span = match key {
            "count" => self.count.map(Spanned::span),
            "ipv4" => self.ipv4.map(Spanned::span),
            "ipv6_ll" => self.ipv6_ll.map(Spanned::span),
            "mac" => self.mac.map(Spanned::span),
            _ => None,
        };
        span.map_or(self.at, |s| s.start)
    }

    fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        self.file.error(self.at_key(key), message)
    }

    /// The string of `key` parsed by `parse`, whose error is put after the key's name.
    fn parsed<T>(
        &self,
        key: &str,
        value: Option<&Spanned<String>>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        value
            .map(|s| parse(s.get_ref()).map_err(|e| self.error(key, format!("`{key}`: {e}"))))
            .transpose()
    }
}

fn parse_link(
    file: &ConfigFile,
    link: &Spanned<LinkTable>,
    index: usize,
    defaults: HostParams,
    claims: &mut Claims,
) -> Result<LinkSpec, ConfigError> {
    let at = link.span().start;
    let link = link.get_ref();
    let device = link
        .device
        .as_ref()
        .ok_or_else(|| file.error(at, "a [[link]] needs `device`"))?;
    let device_at = device.span().start;
    let device = device.get_ref();
    // IFNAMSIZ is 16 with the NUL; the kernel refuses '/' and white space in names.
    if device.is_empty()
        || device.len() > 15
        || device == "."
        || device == ".."
        || device.contains(|c: char| c == '/' || c == ':' || c.is_whitespace())
    {
        return Err(file.error(
            device_at,
            format!("`device` {device:?} is not a device name (1 to 15 characters, no '/', ':' or spaces)"),
        ));
    }
    let kind = match link.kind {
        None | Some(KindKey::Tun) => LinkKind::Tun,
        Some(KindKey::Tap) => LinkKind::Tap,
    };
    let params = link.params(defaults, file)?;
    let mut spec = LinkSpec {
        device: device.to_string(),
        kind,
        suppression: link.suppression.unwrap_or(true),
        mtu: params.mtu,
        hosts: Vec::new(),
    };
    let scope = index + 1;
    let own = Block {
        file,
        name: "[[link]]",
        at,
        count: None,
        ipv4: link.ipv4.as_ref(),
        ipv6_ll: link.ipv6_ll.as_ref(),
        mac: link.mac.as_ref(),
    };
    match &link.hosts {
        None => {
            if link.ipv4.is_none() {
                return Err(own.error(
                    "ipv4",
                    "a [[link]] without [[link.hosts]] needs `ipv4` (its one host's address)",
                ));
            }
            expand_block(&own, 1, params, scope, &mut spec, claims)?;
        }
        Some(blocks) => {
            for (key, given) in [
                ("ipv4", own.ipv4.is_some()),
                ("ipv6_ll", own.ipv6_ll.is_some()),
                ("mac", own.mac.is_some()),
            ] {
                if given {
                    return Err(own.error(
                        key,
                        format!(
                            "`{key}` of a [[link]] is its one host's, and this link has \
                             [[link.hosts]]: give `{key}` in each [[link.hosts]]"
                        ),
                    ));
                }
            }
            for block in blocks {
                let host = block.get_ref();
                let count =
                    ranged(file, "count", &host.count, 1..=MAX_HOSTS_PER_BLOCK)?.unwrap_or(1);
                let params = host.params(params, file)?;
                let block = Block {
                    file,
                    name: "[[link.hosts]]",
                    at: block.span().start,
                    count: host.count.as_ref(),
                    ipv4: host.ipv4.as_ref(),
                    ipv6_ll: host.ipv6_ll.as_ref(),
                    mac: host.mac.as_ref(),
                };
                expand_block(&block, count as u32, params, scope, &mut spec, claims)?;
            }
        }
    }
    Ok(spec)
}

/// Appends the `count` hosts of `block` (a `[[link.hosts]]`, or a `[[link]]` for its one
/// host) to `link`, checking that every address range stays valid and claiming the ranges.
fn expand_block(
    block: &Block,
    count: u32,
    params: HostParams,
    scope: usize,
    link: &mut LinkSpec,
    claims: &mut Claims,
) -> Result<(), ConfigError> {
    if link.kind == LinkKind::Tun && link.hosts.len() + count as usize > 1 {
        return Err(block.error(
            "count",
            format!(
                "a TUN link has one host, and this gives {} to `{}`: many hosts need \
                 kind = \"tap\"",
                link.hosts.len() + count as usize,
                link.device
            ),
        ));
    }
    let (first_ipv4, prefix_len) = block
        .parsed("ipv4", block.ipv4, crate::parse_ipv4_prefix)?
        .ok_or_else(|| block.error("ipv4", format!("a {} needs `ipv4`", block.name)))?;
    check_ipv4_range(first_ipv4, prefix_len, count)
        .map_err(|problem| block.error("ipv4", format!("`ipv4`: {problem}")))?;
    claims.ipv4.push(Claim::new(
        block.at_key("ipv4"),
        0,
        u32::from(first_ipv4).into(),
        count,
    ));

    let mac = block.parsed("mac", block.mac, |s| s.parse::<Mac>())?;
    let first_mac = match (link.kind, mac) {
        (LinkKind::Tun, Some(_)) => {
            return Err(block.error(
                "mac",
                "`mac` on a TUN link, which carries no Ethernet: use kind = \"tap\"",
            ))
        }
        (LinkKind::Tun, None) => None,
        (LinkKind::Tap, Some(mac)) => Some(mac),
        // As `--mac` defaults: 02:00 and the IPv4 address, unique when the addresses are.
        (LinkKind::Tap, None) => {
            let o = first_ipv4.octets();
            Some(Mac([0x02, 0x00, o[0], o[1], o[2], o[3]]))
        }
    };
    if let Some(mac) = first_mac {
        check_mac_range(mac, count)
            .map_err(|problem| block.error("mac", format!("`mac`: {problem}")))?;
        claims.mac.push(Claim::new(
            block.at_key("mac"),
            0,
            mac_number(mac).into(),
            count,
        ));
    }

    let first_ipv6 = block.parsed("ipv6_ll", block.ipv6_ll, crate::parse_link_local)?;
    if let Some(first) = first_ipv6 {
        let first = u128::from(first);
        let in_link_local = |n: u128| n >> 118 == 0xfe80 >> 6;
        if !first
            .checked_add(u128::from(count) - 1)
            .is_some_and(in_link_local)
        {
            return Err(block.error(
                "ipv6_ll",
                format!(
                    "`ipv6_ll`: {count} hosts from {} run out of fe80::/10",
                    Ipv6Addr::from(first)
                ),
            ));
        }
        claims
            .ipv6
            .push(Claim::new(block.at_key("ipv6_ll"), scope, first, count));
    }

    link.hosts.reserve(count as usize);
    for i in 0..count {
        let ipv4 = Ipv4Addr::from(u32::from(first_ipv4) + i);
        let mac = first_mac.map(|m| mac_from_number(mac_number(m) + u64::from(i)));
        let ipv6_ll = match (first_ipv6, mac) {
            (Some(first), _) => Ipv6Addr::from(u128::from(first) + u128::from(i)),
            (None, Some(mac)) => eui64_link_local(mac),
            // As `--ipv6-ll` defaults: fe80:: and the 32 bits of the IPv4 address.
            (None, None) => {
                Ipv6Addr::from(u128::from(0xfe80u16) << 112 | u128::from(u32::from(ipv4)))
            }
        };
        link.hosts.push(HostSpec {
            mac,
            ipv4: (ipv4, prefix_len),
            ipv6_ll,
            params,
        });
    }
    Ok(())
}

mod claims;

#[cfg(test)]
mod tests;
