//! What tunmcastctl prints: tables for people, Prometheus text for scrapers.

use std::io::{self, Write};

use tools::protocol::{GroupInfo, InterfaceInfo, ListenerInfo, ShowHeader, StatsReply};
use tools::show_stream::ShowSink;

/// Left-aligned columns two spaces apart, no trailing blanks.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let widths = column_widths(headers, rows);
    let mut out = String::new();
    out.push_str(&row_line(
        &headers.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
        &widths,
    ));
    for row in rows {
        out.push_str(&row_line(row, &widths));
    }
    out
}

fn column_widths(headers: &[&str], rows: &[Vec<String>]) -> Vec<usize> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    widths
}

fn row_line(row: &[String], widths: &[usize]) -> String {
    let mut line = String::new();
    for (cell, width) in row.iter().zip(widths) {
        line.push_str(&format!("{cell:<width$}  "));
    }
    let mut line = line.trim_end().to_string();
    line.push('\n');
    line
}

pub fn seconds(ms: u64) -> String {
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

fn dash() -> String {
    "-".into()
}

pub fn interface_table(interfaces: &[InterfaceInfo]) -> String {
    let rows: Vec<Vec<String>> = interfaces
        .iter()
        .map(|i| {
            vec![
                i.iface.clone(),
                i.ipv4.clone(),
                i.ipv6_ll.clone(),
                format!("IGMPv{}", i.igmp_version),
                i.igmp_v1_router_present_ms.map_or_else(dash, seconds),
                i.igmp_v2_querier_present_ms.map_or_else(dash, seconds),
                format!("MLDv{}", i.mld_version),
                i.mld_v1_querier_present_ms.map_or_else(dash, seconds),
            ]
        })
        .collect();
    table(
        &[
            "IFACE",
            "IPV4",
            "IPV6-LL",
            "IGMP",
            "V1-QUERIER-LEFT",
            "V2-QUERIER-LEFT",
            "MLD",
            "MLDV1-QUERIER-LEFT",
        ],
        &rows,
    )
}

pub fn listener_table(listeners: &[ListenerInfo]) -> String {
    let rows: Vec<Vec<String>> = listeners
        .iter()
        .map(|l| {
            vec![
                l.id.to_string(),
                l.iface.clone(),
                l.group.to_string(),
                l.port.map_or_else(|| "any".into(), |p| p.to_string()),
                filter_text(&l.filter_mode, &l.sources),
                l.delivered.to_string(),
                l.dropped.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "LISTENER",
            "IFACE",
            "GROUP",
            "PORT",
            "FILTER",
            "DELIVERED",
            "DROPPED",
        ],
        &rows,
    )
}

const GROUP_HEADERS: [&str; 7] = [
    "IFACE",
    "GROUP",
    "USERS",
    "STATE",
    "TIMER",
    "LAST-REPORTER",
    "FILTER",
];

/// Rows buffered to size the group table's columns; past them, rows are printed as they come
/// with those widths, so that a million groups stream through in constant memory.
const SIZING_ROWS: usize = 10_000;

/// `show` as tables, written as the reply streams in: the interfaces (and listeners) first,
/// then the groups.
pub struct ShowPrinter<'w> {
    out: &'w mut dyn Write,
    buffered: Vec<Vec<String>>,
    widths: Option<Vec<usize>>,
    rows: u64,
    /// The first write error; later output is skipped.
    error: Option<io::Error>,
}

impl ShowSink for ShowPrinter<'_> {
    fn header(&mut self, header: &ShowHeader) {
        let mut text = interface_table(&header.interfaces);
        if !header.listeners.is_empty() {
            text.push('\n');
            text.push_str(&listener_table(&header.listeners));
        }
        text.push('\n');
        let written = self.out.write_all(text.as_bytes());
        self.keep_error(written);
    }

    fn group(&mut self, group: GroupInfo) {
        if self.error.is_none() {
            let written = self.push(&group);
            self.keep_error(written);
        }
    }
}

impl<'w> ShowPrinter<'w> {
    pub fn new(out: &'w mut dyn Write) -> ShowPrinter<'w> {
        ShowPrinter {
            out,
            buffered: Vec::new(),
            widths: None,
            rows: 0,
            error: None,
        }
    }

    fn keep_error(&mut self, result: io::Result<()>) {
        if let Err(e) = result {
            self.error.get_or_insert(e);
        }
    }

    fn push(&mut self, g: &GroupInfo) -> io::Result<()> {
        self.rows += 1;
        let row = group_row(g);
        match &self.widths {
            Some(widths) => self.out.write_all(row_line(&row, widths).as_bytes()),
            None => {
                self.buffered.push(row);
                if self.buffered.len() >= SIZING_ROWS {
                    self.flush_buffered()?;
                }
                Ok(())
            }
        }
    }

    fn flush_buffered(&mut self) -> io::Result<()> {
        let widths = column_widths(&GROUP_HEADERS, &self.buffered);
        let headers: Vec<String> = GROUP_HEADERS.iter().map(|h| h.to_string()).collect();
        self.out.write_all(row_line(&headers, &widths).as_bytes())?;
        for row in self.buffered.drain(..) {
            self.out.write_all(row_line(&row, &widths).as_bytes())?;
        }
        self.widths = Some(widths);
        Ok(())
    }

    /// Ends the group table (`complete`: the reply was read whole); says so when there were
    /// no groups. Returns the first write error.
    pub fn finish(mut self, complete: bool) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if !complete && self.rows == 0 {
            return Ok(());
        }
        if self.widths.is_none() {
            self.flush_buffered()?;
        }
        if self.rows == 0 {
            self.out.write_all(b"(no groups joined)\n")?;
        }
        self.out.flush()
    }
}

fn group_row(g: &GroupInfo) -> Vec<String> {
    vec![
        g.iface.clone(),
        g.group.to_string(),
        g.users.to_string(),
        g.state.clone(),
        g.timer_ms.map_or_else(dash, seconds),
        if g.last_reporter { "yes" } else { "no" }.into(),
        filter_text(&g.filter_mode, &g.sources) + &owners_text(g),
    ]
}

/// The owned requests after the group's filter (the last column, so it may be any length):
/// " [app1: include {10.0.0.1}; app2: exclude {}]"; nothing without owners.
fn owners_text(g: &GroupInfo) -> String {
    let owned: Vec<String> = g
        .requests
        .iter()
        .filter_map(|r| {
            let owner = r.owner.as_ref()?;
            let sources: Vec<String> = r.sources.iter().map(|s| s.to_string()).collect();
            Some(format!("{owner}: {} {{{}}}", r.mode, sources.join(",")))
        })
        .collect();
    if owned.is_empty() {
        return String::new();
    }
    format!(" [{}]", owned.join("; "))
}

/// "include {10.0.0.1,10.0.0.2}", "exclude {10.0.0.9}", and "exclude {} (any source)": an
/// empty EXCLUDE filter is what a plain join asks for, and it is spelled out for the reader.
pub fn filter_text(mode: &str, sources: &[std::net::IpAddr]) -> String {
    if mode == "exclude" && sources.is_empty() {
        return "exclude {} (any source)".into();
    }
    let sources: Vec<String> = sources.iter().map(|s| s.to_string()).collect();
    format!("{mode} {{{}}}", sources.join(","))
}

pub fn stats_table(stats: &StatsReply) -> String {
    let rows: Vec<Vec<String>> = stats
        .stats
        .iter()
        .map(|(name, value)| vec![name.clone(), value.to_string()])
        .collect();
    table(&["NAME", "VALUE"], &rows)
}

/// Every counter in the Prometheus text exposition format (version 0.0.4): `tunmcast_NAME_total`
/// with its HELP and TYPE lines, for node_exporter's textfile collector or a scrape; the same
/// text as the daemon's `GET /metrics` starts with.
pub fn prometheus(stats: &StatsReply) -> String {
    tools::prometheus::counters(stats)
}

/// `delays`: the summary, one line per group, and the lists.
pub fn delays(reply: &tools::protocol::DelaysReply) -> String {
    use tools::protocol::DelaySummary;
    let ms = |ns: u64| format!("{:.1}", ns as f64 / 1e6);
    let cells = |s: &DelaySummary| -> [String; 4] {
        if s.count == 0 {
            return [0.to_string(), "-".into(), "-".into(), "-".into()];
        }
        [
            s.count.to_string(),
            ms(s.p50_ns),
            ms(s.p99_ns),
            ms(s.max_ns),
        ]
    };
    let mut rows = Vec::new();
    let mut row = |name: String, join: &DelaySummary, leave: &DelaySummary| {
        let mut r = vec![name];
        r.extend(cells(join));
        r.extend(cells(leave));
        rows.push(r);
    };
    row("all".into(), &reply.join, &reply.leave);
    for g in &reply.groups {
        row(g.group.to_string(), &g.join, &g.leave);
    }
    let mut text = table(
        &[
            "GROUP",
            "JOINS",
            "JOIN P50 MS",
            "P99",
            "MAX",
            "LEAVES",
            "LEAVE P50 MS",
            "P99",
            "MAX",
        ],
        &rows,
    );
    let list = |name: &str, total: usize, pairs: &[tools::protocol::HostGroup]| {
        let shown: Vec<String> = pairs
            .iter()
            .map(|p| format!("{} {}", p.host, p.group))
            .collect();
        format!(
            "{name}: {total}{}{}\n",
            if total > 0 { "\n  " } else { "" },
            shown.join("\n  ")
        )
    };
    text.push_str(&list(
        "never forwarded",
        reply.never_forwarded_total,
        &reply.never_forwarded,
    ));
    text.push_str(&list(
        &format!(
            "still forwarded {} ms after the leave",
            reply.leave_grace_ns / 1_000_000
        ),
        reply.forwarded_after_leave_total,
        &reply.forwarded_after_leave,
    ));
    if reply.untracked > 0 {
        text.push_str(&format!("not measured (table full): {}\n", reply.untracked));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_trim() {
        let text = table(
            &["NAME", "VALUE"],
            &[
                vec!["igmp_snd_reports".into(), "3".into()],
                vec!["x".into(), "12".into()],
            ],
        );
        assert_eq!(
            text,
            "NAME              VALUE\nigmp_snd_reports  3\nx                 12\n"
        );
    }

    #[test]
    fn groups_stream_into_an_aligned_table() {
        let group: GroupInfo = serde_json::from_str(
            r#"{"iface":"tun0","group":"239.1.2.3","family":"ipv4","users":2,
                "state":"delaying","timer_ms":1234,"last_reporter":true,"unsolicited_left":1,
                "filter_mode":"exclude","sources":[],"requests":[]}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        let mut table = ShowPrinter::new(&mut out);
        table.group(group);
        table.finish(true).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(
                "tun0   239.1.2.3  2      delaying  1.234s  yes            exclude {} (any source)"
            ),
            "{text}"
        );
        let mut out = Vec::new();
        ShowPrinter::new(&mut out).finish(true).unwrap();
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with("(no groups joined)\n"));
    }

    #[test]
    fn owners_follow_the_filter() {
        let group: GroupInfo = serde_json::from_str(
            r#"{"iface":"tun0","group":"232.1.1.1","family":"ipv4","users":3,
                "state":"idle","last_reporter":false,"unsolicited_left":0,
                "filter_mode":"include","sources":["10.0.0.1","10.0.0.2"],
                "requests":[{"mode":"include","sources":["10.0.0.1"],"owner":"app1"},
                            {"mode":"include","sources":["10.0.0.2"]},
                            {"mode":"include","sources":[],"owner":"app2"}]}"#,
        )
        .unwrap();
        assert_eq!(
            group_row(&group)[6],
            "include {10.0.0.1,10.0.0.2} [app1: include {10.0.0.1}; app2: include {}]"
        );
    }

    #[test]
    fn prometheus_text_has_help_type_and_samples() {
        let mut stats = StatsReply::default();
        stats.stats.insert("igmp_rcv_queries".into(), 7);
        stats.help.insert(
            "igmp_rcv_queries".into(),
            "IGMP queries received\\ok".into(),
        );
        let text = prometheus(&stats);
        assert_eq!(
            text,
            "# HELP tunmcast_igmp_rcv_queries_total IGMP queries received\\\\ok\n\
             # TYPE tunmcast_igmp_rcv_queries_total counter\n\
             tunmcast_igmp_rcv_queries_total 7\n"
        );
    }
}
