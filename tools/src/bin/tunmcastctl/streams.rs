//! `tunmcastctl stream add|remove|start|stop` and `tunmcastctl streams`: the test streams the
//! daemon sends, and what its hosts receive of every (host, source, group).

use std::net::IpAddr;

use tools::protocol::{StreamIdsArgs, StreamIdsReply, StreamSpecArgs, StreamsArgs, StreamsReply};
use tools::Request;

use super::render::table;

/// What `stream` does.
#[derive(clap::Subcommand)]
pub enum StreamCommand {
    /// Send a multicast UDP test stream (or one per group of GROUP+COUNT) on one of the
    /// daemon's links. Every payload starts with a 24-byte header (magic TMC1, stream id,
    /// sequence number, send time in ns; big-endian), so that receivers count loss,
    /// duplicates, reordering and latency. Prints the new streams' ids.
    Add {
        /// The daemon's link (TUN or TAP device) to send on.
        #[arg(long, value_name = "NAME")]
        link: String,
        /// Source address (of the group's family).
        #[arg(long, value_name = "ADDR")]
        source: IpAddr,
        /// Group, or GROUP+COUNT for COUNT streams on consecutive groups.
        #[arg(long, value_name = "GROUP[+COUNT]")]
        group: String,
        /// Destination UDP port (default 5000).
        #[arg(long, value_name = "PORT")]
        port: Option<u16>,
        /// Source UDP port (default 4000).
        #[arg(long, value_name = "PORT")]
        source_port: Option<u16>,
        /// Packets per second of each stream (default 1000).
        #[arg(long, value_name = "N")]
        pps: Option<u32>,
        /// UDP payload bytes, the header included: 24 to 1452 (default 64).
        #[arg(long, value_name = "BYTES")]
        size: Option<u16>,
        /// Stop after N packets.
        #[arg(long, value_name = "N", conflicts_with = "seconds")]
        count: Option<u64>,
        /// Stop after S seconds.
        #[arg(long, value_name = "S")]
        seconds: Option<u64>,
        /// Source MAC on a TAP (default 02:00 and the source address's last four bytes).
        #[arg(long, value_name = "MAC")]
        mac: Option<String>,
        /// Send N packets back to back each time, at the same rate (default 1).
        #[arg(long, value_name = "N")]
        burst: Option<u32>,
    },
    /// Remove streams.
    Remove(StreamIds),
    /// Start stopped (or finished) streams again; their sequence numbers go on.
    Start(StreamIds),
    /// Stop streams (they stay listed).
    Stop(StreamIds),
}

/// Stream ids, or every stream.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub struct StreamIds {
    /// The streams' ids, as `stream add` printed them.
    #[arg(value_name = "ID")]
    ids: Vec<u32>,
    /// Every stream.
    #[arg(long)]
    all: bool,
}

/// What `streams` lists.
#[derive(clap::Args)]
pub struct StreamsFilter {
    /// Only the receivers of this emulated host.
    #[arg(long, value_name = "ADDR")]
    host: Option<IpAddr>,
    /// Only this group's streams and receivers.
    #[arg(long, value_name = "GROUP")]
    group: Option<IpAddr>,
    /// Only this link's streams and receivers.
    #[arg(long = "iface", visible_alias = "dev", value_name = "NAME")]
    iface: Option<String>,
    /// List at most N receivers (default 1000, at most 10000); the totals count all.
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
    /// Skip the first N receivers (in the order of their host's number): with --limit, a page.
    #[arg(long, value_name = "N")]
    offset: Option<u64>,
}

/// `GROUP` or `GROUP+COUNT`.
fn group_count(text: &str) -> anyhow::Result<(IpAddr, Option<u32>)> {
    control::streams::group_and_count(text).map_err(anyhow::Error::msg)
}

impl StreamCommand {
    /// The request, its arguments checked as far as the client can.
    pub fn request(&self) -> anyhow::Result<Request> {
        let ids = |s: &StreamIds| StreamIdsArgs {
            ids: s.ids.clone(),
            all: s.all,
        };
        Ok(match self {
            StreamCommand::Add {
                link,
                source,
                group,
                port,
                source_port,
                pps,
                size,
                count,
                seconds,
                mac,
                burst,
            } => {
                let (first, groups) = group_count(group)?;
                if !first.is_multicast() {
                    anyhow::bail!("invalid group {first}: not a multicast address");
                }
                if source.is_ipv4() != first.is_ipv4() {
                    anyhow::bail!("source {source} is not of the same family as group {first}");
                }
                if let Some(size) = size {
                    control_size(*size)?;
                }
                Request::StreamAdd(StreamSpecArgs {
                    groups,
                    port: *port,
                    source_port: *source_port,
                    pps: *pps,
                    size: *size,
                    count: *count,
                    seconds: *seconds,
                    mac: mac.clone(),
                    burst: *burst,
                    ..StreamSpecArgs::new(link, *source, first)
                })
            }
            StreamCommand::Remove(s) => Request::StreamRemove(ids(s)),
            StreamCommand::Start(s) => Request::StreamStart(ids(s)),
            StreamCommand::Stop(s) => Request::StreamStop(ids(s)),
        })
    }
}

/// A payload size the header fits in.
fn control_size(size: u16) -> anyhow::Result<()> {
    tools::stream_header::check_size(usize::from(size)).map_err(anyhow::Error::msg)
}

impl StreamsFilter {
    pub fn request(&self) -> Request {
        Request::Streams(StreamsArgs {
            host: self.host,
            group: self.group,
            iface: self.iface.clone(),
            limit: self.limit,
            offset: self.offset,
            stream_limit: None,
            stream_offset: None,
        })
    }
}

/// The line after `stream add|remove|start|stop`.
pub fn ids_line(verb: &str, reply: &StreamIdsReply) -> String {
    let ids: Vec<String> = reply.ids.iter().map(u32::to_string).collect();
    format!("{verb} {} stream(s): {}\n", ids.len(), ids.join(" "))
}

/// `streams` as tables: the streams, the receivers, the totals.
pub fn render(reply: &StreamsReply) -> String {
    let streams: Vec<Vec<String>> = reply
        .streams
        .iter()
        .map(|s| {
            vec![
                s.id.to_string(),
                s.link.clone(),
                s.source.to_string(),
                s.group.to_string(),
                s.port.to_string(),
                s.pps.to_string(),
                format!("{:.1}", s.rate_pps),
                s.sent.to_string(),
                s.send_errors.to_string(),
                s.state.clone(),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "ID", "LINK", "SOURCE", "GROUP", "PORT", "PPS", "RATE", "SENT", "ERRORS", "STATE",
        ],
        &streams,
    );
    let ms = |ns: u64| format!("{:.3}", ns as f64 / 1e6);
    let receivers: Vec<Vec<String>> = reply
        .receivers
        .iter()
        .map(|r| {
            let c = &r.counts;
            vec![
                r.host.clone(),
                r.link.clone(),
                r.source.to_string(),
                r.group.to_string(),
                c.received.to_string(),
                c.lost.to_string(),
                c.duplicates.to_string(),
                c.reordered.to_string(),
                c.source_leaks.to_string(),
                c.after_leave.to_string(),
                ms(r.min_ns),
                ms(r.p50_ns),
                ms(r.p99_ns),
                ms(r.max_ns),
            ]
        })
        .collect();
    out.push('\n');
    out.push_str(&table(
        &[
            "HOST",
            "LINK",
            "SOURCE",
            "GROUP",
            "RECEIVED",
            "LOST",
            "DUP",
            "REORDERED",
            "LEAKS",
            "AFTER-LEAVE",
            "MIN-MS",
            "P50-MS",
            "P99-MS",
            "MAX-MS",
        ],
        &receivers,
    ));
    let t = &reply.totals;
    out.push_str(&format!(
        "\n{} receivers ({} listed): received {}, lost {}, duplicates {}, reordered {}, \
         source leaks {}, after leave {}, bytes {}\n",
        reply.total_receivers,
        reply.receivers.len(),
        t.received,
        t.lost,
        t.duplicates,
        t.reordered,
        t.source_leaks,
        t.after_leave,
        t.bytes
    ));
    for (link, n) in &reply.not_joined {
        out.push_str(&format!(
            "{link}: {n} stream datagrams for groups no host joined\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_count_and_bad_arguments() {
        assert_eq!(
            group_count("232.1.1.1+10").unwrap(),
            ("232.1.1.1".parse().unwrap(), Some(10))
        );
        for bad in ["232.1.1.1+0", "232.1.1.1+", "x", "x+2"] {
            assert!(group_count(bad).is_err(), "{bad}");
        }
        let add = |group: &str, source: &str, size: Option<u16>| {
            StreamCommand::Add {
                link: "tap0".into(),
                source: source.parse().unwrap(),
                group: group.into(),
                port: None,
                source_port: None,
                pps: None,
                size,
                count: None,
                seconds: None,
                mac: None,
                burst: None,
            }
            .request()
        };
        assert!(add("232.1.1.1+4", "10.1.1.1", None).is_ok());
        let error = |r: anyhow::Result<Request>| r.unwrap_err().to_string();
        assert!(error(add("10.0.0.1", "10.1.1.1", None)).contains("not a multicast"));
        assert!(error(add("ff3e::1", "10.1.1.1", None)).contains("same family"));
        assert!(error(add("232.1.1.1", "10.1.1.1", Some(20))).contains("24-byte header"));
    }
}
