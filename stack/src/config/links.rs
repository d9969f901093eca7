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
//! Every problem is one `ConfigError` naming the line. Overlaps between host ranges are
//! found by sorting the ranges (O(n log n) in the number of blocks, not of hosts).

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;
use std::path::Path;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::ConfigError;
use crate::framing::Mac;
use crate::topology::{eui64_link_local, HostParams, HostSpec, LinkKind, LinkSpec, Topology};

/// The most hosts one `[[link.hosts]]` block may give.
pub const MAX_HOSTS_PER_BLOCK: i64 = 1_000_000;

/// Top-level keys that describe the one link of the short form.
const ONE_LINK_KEYS: &[&str] = &["iface", "tun", "tap", "mac", "ipv4", "ipv6_ll"];
/// The protocol settings, valid at the top level, in a `[[link]]` and in a `[[link.hosts]]`.
const PARAM_KEYS: &[&str] = &[
    "igmp_version",
    "mld_version",
    "robustness",
    "unsolicited_interval_ms",
    "v3_unsolicited_interval_ms",
    "mtu",
];
/// The keys of a `[[link]]` besides `PARAM_KEYS`.
const LINK_KEYS: &[&str] = &[
    "device",
    "kind",
    "suppression",
    "ipv4",
    "ipv6_ll",
    "mac",
    "hosts",
];
/// The keys of a `[[link.hosts]]` besides `PARAM_KEYS`.
const HOST_KEYS: &[&str] = &["count", "ipv4", "ipv6_ll", "mac"];

/// The `[[link]]` tables of `path`, or `None` when it has none (the one-link form).
/// `defaults` are the top-level settings (the command line with the file's top-level keys).
pub fn topology_from_file(
    path: &Path,
    defaults: HostParams,
) -> Result<Option<Topology>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: path.to_path_buf(),
        line: 0,
        message: format!("cannot read: {e}"),
    })?;
    topology_from_text(path, &text, defaults)
}

/// As [`topology_from_file`], from the file's text.
pub fn topology_from_text(
    path: &Path,
    text: &str,
    defaults: HostParams,
) -> Result<Option<Topology>, ConfigError> {
    let file = File { path, text };
    let document = DeTable::parse(text)
        .map_err(|e| file.error(e.span().map_or(0, |s| s.start), e.message().trim()))?;
    let document = document.get_ref();
    let Some((_, links)) = document.iter().find(|(k, _)| k.get_ref() == "link") else {
        return Ok(None);
    };
    let Some(links) = links
        .get_ref()
        .as_array()
        .filter(|a| a.iter().all(|t| t.get_ref().is_table()))
    else {
        return Err(file.error(
            links.span().start,
            "`link` holds links: write each as a [[link]] table",
        ));
    };
    for (key, _) in document.iter() {
        let name = key.get_ref().replace('-', "_");
        if ONE_LINK_KEYS.contains(&name.as_str()) {
            return Err(file.error(
                key.span().start,
                format!(
                    "`{}` describes the one link of the short form, and this file has [[link]] \
                     tables: give `{}` inside a [[link]] (`device` for `iface`), or drop the \
                     [[link]] tables",
                    key.get_ref(),
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
    let mut devices: HashMap<String, usize> = HashMap::new();
    for (index, link) in links.iter().enumerate() {
        let table = Table::new(&file, link, "[[link]]")?;
        let spec = parse_link(&table, index, defaults, &mut claims)?;
        let device_at = table.get("device").map_or(0, |v| v.span().start);
        if let Some(&first) = devices.get(&spec.device) {
            return Err(file.error(
                device_at,
                format!(
                    "device `{}` is already the device of the [[link]] on line {first}",
                    spec.device
                ),
            ));
        }
        devices.insert(spec.device.clone(), file.line(device_at));
        topology.links.push(spec);
    }
    claims.check(&file)?;
    Ok(Some(topology))
}

/// The file being read, to turn byte offsets into lines.
struct File<'a> {
    path: &'a Path,
    text: &'a str,
}

impl File<'_> {
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn error(&self, offset: usize, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: self.path.to_path_buf(),
            line: self.line(offset),
            message: message.into(),
        }
    }
}

/// One `[[link]]` or `[[link.hosts]]` table, its keys checked against those it may hold.
struct Table<'f, 't, 'i> {
    file: &'f File<'f>,
    table: &'t DeTable<'i>,
    at: usize,
    name: &'static str,
}

impl<'f, 't, 'i> Table<'f, 't, 'i> {
    fn new(
        file: &'f File<'f>,
        value: &'t Spanned<DeValue<'i>>,
        name: &'static str,
    ) -> Result<Self, ConfigError> {
        let table = value
            .get_ref()
            .as_table()
            .ok_or_else(|| file.error(value.span().start, format!("{name} must be a table")))?;
        let keys = if name == "[[link]]" {
            LINK_KEYS
        } else {
            HOST_KEYS
        };
        let keys = || keys.iter().chain(PARAM_KEYS);
        for (key, _) in table.iter() {
            if !keys().any(|k| *k == key.get_ref()) {
                return Err(file.error(
                    key.span().start,
                    format!(
                        "unknown key `{}` in {name} (its keys are: {})",
                        key.get_ref(),
                        keys().copied().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        Ok(Table {
            file,
            table,
            at: value.span().start,
            name,
        })
    }

    fn get(&self, key: &str) -> Option<&'t Spanned<DeValue<'i>>> {
        self.table
            .iter()
            .find(|(k, _)| k.get_ref() == key)
            .map(|(_, v)| v)
    }

    fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let at = self.get(key).map_or(self.at, |v| v.span().start);
        self.file.error(at, message)
    }

    fn string(&self, key: &str) -> Result<Option<&'t str>, ConfigError> {
        match self.get(key).map(Spanned::get_ref) {
            None => Ok(None),
            Some(DeValue::String(s)) => Ok(Some(s.as_ref())),
            Some(other) => Err(self.error(
                key,
                format!("`{key}` is a string, not {}", other.type_str()),
            )),
        }
    }

    /// A string parsed by `parse`, whose error is put after the key's name.
    fn parsed<T>(
        &self,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        self.string(key)?
            .map(|s| parse(s).map_err(|e| self.error(key, format!("`{key}`: {e}"))))
            .transpose()
    }

    fn integer(&self, key: &str, range: RangeInclusive<i64>) -> Result<Option<i64>, ConfigError> {
        let Some(value) = self.get(key).map(Spanned::get_ref) else {
            return Ok(None);
        };
        let DeValue::Integer(integer) = value else {
            return Err(self.error(
                key,
                format!("`{key}` is a number, not {}", value.type_str()),
            ));
        };
        i64::from_str_radix(integer.as_str(), integer.radix())
            .ok()
            .filter(|n| range.contains(n))
            .map(Some)
            .ok_or_else(|| {
                self.error(
                    key,
                    format!(
                        "`{key}` must be {} to {}, not {integer}",
                        range.start(),
                        range.end()
                    ),
                )
            })
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.get(key).map(Spanned::get_ref) {
            None => Ok(None),
            Some(DeValue::Boolean(b)) => Ok(Some(*b)),
            Some(other) => Err(self.error(
                key,
                format!("`{key}` is true or false, not {}", other.type_str()),
            )),
        }
    }

    /// `base` with this table's settings over it. The ranges are the command line's.
    fn params(&self, base: HostParams) -> Result<HostParams, ConfigError> {
        let mut params = base;
        let small = |key, range| -> Result<Option<u8>, ConfigError> {
            Ok(self.integer(key, range)?.map(|n| n as u8))
        };
        let interval = |key| -> Result<Option<u32>, ConfigError> {
            Ok(self.integer(key, 1..=3_600_000)?.map(|n| n as u32))
        };
        if let Some(v) = small("igmp_version", 1..=3)? {
            params.igmp_version = v;
        }
        if let Some(v) = small("mld_version", 1..=2)? {
            params.mld_version = v;
        }
        if let Some(v) = small("robustness", 1..=10)? {
            params.robustness = v;
        }
        if let Some(v) = interval("unsolicited_interval_ms")? {
            params.unsolicited_interval_ms = v;
        }
        if let Some(v) = interval("v3_unsolicited_interval_ms")? {
            params.v3_unsolicited_interval_ms = v;
        }
        if let Some(v) = self.integer("mtu", 576..=65_535)? {
            params.mtu = v as u16;
        }
        Ok(params)
    }
}

fn parse_link(
    table: &Table,
    index: usize,
    defaults: HostParams,
    claims: &mut Claims,
) -> Result<LinkSpec, ConfigError> {
    let device = table
        .string("device")?
        .ok_or_else(|| table.error("device", "a [[link]] needs `device`"))?;
    // IFNAMSIZ is 16 with the NUL; the kernel refuses '/' and white space in names.
    if device.is_empty()
        || device.len() > 15
        || device == "."
        || device == ".."
        || device.contains(|c: char| c == '/' || c == ':' || c.is_whitespace())
    {
        return Err(table.error(
            "device",
            format!("`device` {device:?} is not a device name (1 to 15 characters, no '/', ':' or spaces)"),
        ));
    }
    let kind = match table.string("kind")? {
        None | Some("tun") => LinkKind::Tun,
        Some("tap") => LinkKind::Tap,
        Some(other) => {
            return Err(table.error(
                "kind",
                format!("`kind` is \"tun\" or \"tap\", not {other:?}"),
            ))
        }
    };
    let params = table.params(defaults)?;
    let mut link = LinkSpec {
        device: device.to_string(),
        kind,
        suppression: table.boolean("suppression")?.unwrap_or(true),
        mtu: params.mtu,
        hosts: Vec::new(),
    };
    let scope = index + 1;
    match table.get("hosts") {
        None => {
            if table.get("ipv4").is_none() {
                return Err(table.error(
                    "ipv4",
                    "a [[link]] without [[link.hosts]] needs `ipv4` (its one host's address)",
                ));
            }
            expand_block(table, 1, params, scope, &mut link, claims)?;
        }
        Some(hosts) => {
            for key in ["ipv4", "ipv6_ll", "mac"] {
                if table.get(key).is_some() {
                    return Err(table.error(
                        key,
                        format!(
                            "`{key}` of a [[link]] is its one host's, and this link has \
                             [[link.hosts]]: give `{key}` in each [[link.hosts]]"
                        ),
                    ));
                }
            }
            let blocks = hosts
                .get_ref()
                .as_array()
                .ok_or_else(|| table.error("hosts", "`hosts` holds [[link.hosts]] tables"))?;
            for block in blocks.iter() {
                let block = Table::new(table.file, block, "[[link.hosts]]")?;
                let count = block
                    .integer("count", 1..=MAX_HOSTS_PER_BLOCK)?
                    .unwrap_or(1);
                let params = block.params(params)?;
                expand_block(&block, count as u32, params, scope, &mut link, claims)?;
            }
        }
    }
    Ok(link)
}

/// Appends the `count` hosts of `block` (a `[[link.hosts]]`, or a `[[link]]` for its one
/// host) to `link`, checking that every address range stays valid and claiming the ranges.
fn expand_block(
    block: &Table,
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
        .parsed("ipv4", crate::parse_ipv4_prefix)?
        .ok_or_else(|| block.error("ipv4", format!("a {} needs `ipv4`", block.name)))?;
    check_ipv4_range(first_ipv4, prefix_len, count)
        .map_err(|problem| block.error("ipv4", format!("`ipv4`: {problem}")))?;
    claims.ipv4.push(Claim::new(
        block,
        "ipv4",
        0,
        u32::from(first_ipv4).into(),
        count,
    ));

    let mac = block.parsed("mac", |s| s.parse::<Mac>())?;
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
        claims
            .mac
            .push(Claim::new(block, "mac", 0, mac_number(mac).into(), count));
    }

    let first_ipv6 = block.parsed("ipv6_ll", crate::parse_link_local)?;
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
            .push(Claim::new(block, "ipv6_ll", scope, first, count));
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

/// `count` consecutive addresses from `first` must stay in its prefix and not reach its
/// broadcast address.
fn check_ipv4_range(first: Ipv4Addr, prefix_len: u8, count: u32) -> Result<(), String> {
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
fn check_mac_range(first: Mac, count: u32) -> Result<(), String> {
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

fn mac_number(mac: Mac) -> u64 {
    let m = mac.0;
    u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]])
}

fn mac_from_number(n: u64) -> Mac {
    let b = n.to_be_bytes();
    Mac([b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// A range of addresses given at some line: `first ..= last` within `scope` (0: all links;
/// a link's index + 1 for link-local addresses, which need only be unique on their link).
struct Claim {
    scope: usize,
    first: u128,
    last: u128,
    at: usize,
}

impl Claim {
    fn new(table: &Table, key: &str, scope: usize, first: u128, count: u32) -> Claim {
        Claim {
            scope,
            first,
            last: first + u128::from(count) - 1,
            at: table.get(key).map_or(table.at, |v| v.span().start),
        }
    }
}

#[derive(Default)]
struct Claims {
    ipv4: Vec<Claim>,
    mac: Vec<Claim>,
    ipv6: Vec<Claim>,
}

impl Claims {
    fn check(&mut self, file: &File) -> Result<(), ConfigError> {
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
    file: &File,
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

#[cfg(test)]
mod tests;
