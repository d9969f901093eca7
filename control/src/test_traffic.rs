//! A test run's own traffic: the streams it starts on one of the daemon's links, one per
//! channel (and, RFC 3918 §8, background streams no host of the run joins), stops at its end,
//! and what its hosts received of them ([`TrafficResult`], the report's `traffic`).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::protocol::nth_address;
use crate::streams::{StreamSpecArgs, MAX_PPS};

/// The most background streams a run starts.
pub const MAX_BACKGROUND: u32 = 10_000;

/// `streams = { link = "...", source = "...", ... }` of a `[[test]]`, or `--stream-link`,
/// `--source`, `--pps` of `tunmcastctl test ...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestTraffic {
    /// The daemon's link (TUN or TAP) the streams are sent on: the source side of the device
    /// under test.
    pub link: String,
    /// Their source address, of the channels' family.
    pub source: IpAddr,
    /// Packets per second of each channel's stream (default: the streams' default, 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pps: Option<u32>,
    /// UDP payload bytes (default: the streams' default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u16>,
    /// RFC 3918 §8 (burdened): the first of `background_count` consecutive groups sent too,
    /// that no host of the run joins: they load the device while it is measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background_group: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub background_count: u32,
    /// Packets per second of each background stream (default: `pps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background_pps: Option<u32>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl TestTraffic {
    /// What is wrong with it for these `channels`: names the key (`streams.KEY`).
    pub fn check(&self, channels: &[IpAddr]) -> Result<(), String> {
        if self.link.is_empty() {
            return Err("streams.link: empty".into());
        }
        let family = channels.first().is_none_or(|g| g.is_ipv4());
        if self.source.is_multicast() || self.source.is_unspecified() {
            return Err(format!(
                "streams.source: {} is not a unicast address",
                self.source
            ));
        }
        if self.source.is_ipv4() != family {
            return Err(format!(
                "streams.source: {} is not of the channels' family",
                self.source
            ));
        }
        for (key, pps) in [("pps", self.pps), ("background_pps", self.background_pps)] {
            if pps.is_some_and(|p| p == 0 || p > MAX_PPS) {
                return Err(format!("streams.{key}: 1 to {MAX_PPS}"));
            }
        }
        match (self.background_group, self.background_count) {
            (None, 0) => {}
            (None, _) => return Err("streams.background_group: give the first group".into()),
            (Some(_), 0) => {
                return Err("streams.background_count: 1 or more background streams".into())
            }
            (Some(_), n) if n > MAX_BACKGROUND => {
                return Err(format!(
                    "streams.background_count: at most {MAX_BACKGROUND}"
                ))
            }
            (Some(first), n) => {
                if !first.is_multicast() || first.is_ipv4() != family {
                    return Err(format!(
                        "streams.background_group: {first} is not a multicast group of the \
                         channels' family"
                    ));
                }
                let last = nth_address(first, n - 1)
                    .filter(IpAddr::is_multicast)
                    .ok_or_else(|| {
                        format!(
                            "streams.background_group: {first}+{n} runs past the multicast range"
                        )
                    })?;
                if let Some(g) = channels.iter().find(|g| within(**g, first, last)) {
                    return Err(format!(
                        "streams.background_group: channel {g} is among the background groups \
                         ({first} to {last})"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The stream requests for `channels`: one stream each.
    pub fn channel_streams(&self, channels: &[IpAddr]) -> Vec<StreamSpecArgs> {
        channels
            .iter()
            .map(|&group| {
                let mut args = StreamSpecArgs::new(&self.link, self.source, group);
                args.pps = self.pps;
                args.size = self.size;
                args
            })
            .collect()
    }

    /// The background streams' request, if any: consecutive groups.
    pub fn background_streams(&self) -> Option<StreamSpecArgs> {
        let first = self
            .background_group
            .filter(|_| self.background_count > 0)?;
        let mut args = StreamSpecArgs::new(&self.link, self.source, first);
        args.groups = Some(self.background_count);
        args.pps = self.background_pps.or(self.pps);
        args.size = self.size;
        Some(args)
    }
}

/// Whether `g` lies in `first..=last` (one family).
fn within(g: IpAddr, first: IpAddr, last: IpAddr) -> bool {
    match (g, first, last) {
        (IpAddr::V4(g), IpAddr::V4(a), IpAddr::V4(b)) => (a..=b).contains(&g),
        (IpAddr::V6(g), IpAddr::V6(a), IpAddr::V6(b)) => (a..=b).contains(&g),
        _ => false,
    }
}

/// What the run's hosts received of its streams: per channel (and overall) the datagrams,
/// those lost while joined (per host session, from its first datagram to its leave: the
/// sequence numbers between less the datagrams read) and the one-way latency
/// of the datagrams read (the stream headers' send time to the device read, ns); per host
/// the datagrams and the loss.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficResult {
    /// The run's channel streams and background streams.
    pub streams: u32,
    pub background_streams: u32,
    /// Per host session received and lost, summed: of the sessions over (every one once the
    /// run is over).
    pub received: u64,
    pub lost: u64,
    /// Over every datagram of the run's channel streams read on the hosts' links.
    pub latency: Latency,
    /// Background datagrams read on the hosts' links: no host joined them.
    pub background_received: u64,
    pub channels: Vec<TrafficPart>,
    /// Per host: `test status` lists a page, the report all.
    pub per_host: Vec<TrafficPart>,
}

/// One-way latency, nanoseconds (p50 / p99 within 9 %, log buckets; max exact).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

/// One channel or one host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficPart {
    /// The channel (group) or the host (IPv4 address).
    pub of: String,
    pub received: u64,
    /// Lost while joined.
    pub lost: u64,
    /// Channels only: the latency of its datagrams read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traffic() -> TestTraffic {
        TestTraffic {
            link: "tap-src".into(),
            source: "10.99.0.250".parse().unwrap(),
            pps: Some(500),
            size: None,
            background_group: None,
            background_count: 0,
            background_pps: None,
        }
    }

    #[test]
    fn streams_of_the_channels_and_the_background() {
        let channels: Vec<IpAddr> =
            vec!["239.1.1.1".parse().unwrap(), "239.1.1.9".parse().unwrap()];
        let t = TestTraffic {
            background_group: Some("239.2.0.1".parse().unwrap()),
            background_count: 50,
            ..traffic()
        };
        assert_eq!(t.check(&channels), Ok(()));
        let streams = t.channel_streams(&channels);
        assert_eq!(streams.len(), 2);
        assert_eq!((streams[1].group, streams[1].pps), (channels[1], Some(500)));
        let background = t.background_streams().unwrap();
        assert_eq!((background.groups, background.pps), (Some(50), Some(500)));
        assert!(traffic().background_streams().is_none());
    }

    #[test]
    fn bad_traffic_names_the_key() {
        let channels: Vec<IpAddr> =
            vec!["239.1.1.1".parse().unwrap(), "239.1.1.9".parse().unwrap()];
        for (t, expected) in [
            (
                TestTraffic {
                    source: "2001:db8::1".parse().unwrap(),
                    ..traffic()
                },
                "streams.source: 2001:db8::1 is not of the channels' family",
            ),
            (
                TestTraffic {
                    pps: Some(0),
                    ..traffic()
                },
                "streams.pps:",
            ),
            (
                TestTraffic {
                    background_count: 3,
                    ..traffic()
                },
                "streams.background_group: give the first group",
            ),
            (
                TestTraffic {
                    background_group: Some("239.1.1.5".parse().unwrap()),
                    background_count: 10,
                    ..traffic()
                },
                "streams.background_group: channel 239.1.1.9 is among the background groups",
            ),
            (
                TestTraffic {
                    background_group: Some("239.1.1.5".parse().unwrap()),
                    background_count: MAX_BACKGROUND + 1,
                    ..traffic()
                },
                "streams.background_count: at most",
            ),
        ] {
            let error = t.check(&channels).unwrap_err();
            assert!(error.starts_with(expected), "{error}");
        }
    }
}
