//! `[[test]]` tables in a TOML file (the daemon's `--config`, or a test file for
//! `tunmcastctl test run`): each one [`TestSpec`] (`kind = "zapping"`,
//! `"rfc3918-join-leave"` or `"rfc3918-capacity"`), its keys the protocol's, plus `start = true` (the daemon starts it
//! when it starts). An error names the line and the key.

use std::fmt;

use serde::Deserialize;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use crate::line_of;
use crate::streams::{StreamSpecArgs, StreamTable};
use crate::testrun::TestSpec;

/// What is wrong with a `[[test]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableError {
    /// 1-based.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.line, self.message)
    }
}

/// One `[[test]]` table: the test, and whether the daemon starts it when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestTable {
    pub spec: TestSpec,
    pub start: bool,
}

/// The `[[test]]` tables of a file's `text` (none when it has none). The file is parsed once;
/// only its `test` key is read here.
pub fn test_tables(text: &str) -> Result<Vec<TestTable>, TableError> {
    let root = DeTable::parse(text).map_err(|e| TableError {
        line: line_of(text, e.span().map_or(0, |s| s.start)),
        message: e.message().trim().to_string(),
    })?;
    let mut root = root.into_inner();
    match root.remove("test") {
        Some(tests) => tests_from_value(text, tests),
        None => Ok(Vec::new()),
    }
}

/// The tests of the value of a file's `test` key (`text` is the file, for lines): each a
/// `[[test]]` table, read as its kind's own struct, so that an error names its key and line.
pub fn tests_from_value(
    text: &str,
    value: Spanned<DeValue<'_>>,
) -> Result<Vec<TestTable>, TableError> {
    let error = |offset: usize, message: String| TableError {
        line: line_of(text, offset),
        message,
    };
    let at = value.span().start;
    let DeValue::Array(items) = value.into_inner() else {
        return Err(error(
            at,
            "`test` holds tests: write each as a [[test]] table".into(),
        ));
    };
    let mut tables: Vec<TestTable> = Vec::new();
    for item in items {
        let at = item.span().start;
        let span = item.span();
        let DeValue::Table(mut table) = item.into_inner() else {
            return Err(error(
                at,
                "`test` holds tests: write each as a [[test]] table".into(),
            ));
        };
        let label = match table.get("name").and_then(|n| n.get_ref().as_str()) {
            Some(name) => format!("[[test]] {name}"),
            None => "[[test]]".to_string(),
        };
        let start = match table.remove_entry("start") {
            None => false,
            Some((_, value)) => match value.get_ref().as_bool() {
                Some(start) => start,
                None => {
                    return Err(error(
                        value.span().start,
                        format!(
                            "{label}: `start` is true or false, not {}",
                            value.get_ref().type_str()
                        ),
                    ))
                }
            },
        };
        let kind = match table.remove_entry("kind") {
            Some((key, value)) => match value.get_ref().as_str() {
                Some(kind) => Spanned::new(key.span(), kind.to_string()),
                None => {
                    return Err(error(
                        value.span().start,
                        format!(
                            "{label}: `kind` is a string, not {}",
                            value.get_ref().type_str()
                        ),
                    ))
                }
            },
            None => {
                return Err(error(
                    at,
                    format!(
                    "{label}: missing key `kind` (zapping, rfc3918-join-leave or rfc3918-capacity)"
                ),
                ))
            }
        };
        // Where each key of the table and of its [test.sla] is written, for `check`'s messages,
        // which start with the key they are about.
        let sla = table.get("sla").and_then(|sla| sla.get_ref().as_table());
        let key_offsets: Vec<(String, usize)> = table
            .keys()
            .chain(sla.into_iter().flat_map(|sla| sla.keys()))
            .map(|k| (k.get_ref().to_string(), k.span().start))
            .collect();
        let check_at = |message: &str| {
            // `streams.source: ...`: the line of `streams`.
            let key = message.split([':', '.']).next().unwrap_or_default().trim();
            key_offsets
                .iter()
                .find(|(k, _)| k == key)
                .map_or(at, |&(_, offset)| offset)
        };
        let problem = |e: toml::de::Error| {
            let offset = e.span().map_or(at, |s| s.start);
            let message = e.message().trim();
            match key_on_line(text, offset) {
                Some(key) if !message.contains(&format!("`{key}`")) => {
                    error(offset, format!("{label}: `{key}`: {message}"))
                }
                _ => error(offset, format!("{label}: {message}")),
            }
        };
        let body = Spanned::new(span, DeValue::Table(table));
        let spec = match kind.get_ref().as_str() {
            "zapping" => TestSpec::Zapping(
                Deserialize::deserialize(ValueDeserializer::from(body)).map_err(problem)?,
            ),
            "rfc3918-join-leave" => TestSpec::JoinLeave(
                Deserialize::deserialize(ValueDeserializer::from(body)).map_err(problem)?,
            ),
            "rfc3918-capacity" => TestSpec::Capacity(
                Deserialize::deserialize(ValueDeserializer::from(body)).map_err(problem)?,
            ),
            other => {
                return Err(error(
                    kind.span().start,
                    format!("{label}: unknown kind `{other}` (zapping, rfc3918-join-leave or rfc3918-capacity)"),
                ))
            }
        };
        spec.check()
            .map_err(|e| error(check_at(&e), format!("{label}: {e}")))?;
        if tables.iter().any(|t| t.spec.name() == spec.name()) {
            return Err(error(
                at,
                format!("{label}: another [[test]] is named {}", spec.name()),
            ));
        }
        tables.push(TestTable { spec, start });
    }
    Ok(tables)
}

#[derive(Deserialize)]
struct StreamDocument {
    #[serde(default)]
    stream: Vec<Spanned<StreamTable>>,
}

/// The `[[stream]]` tables of a test file's `text`, as `stream_add` requests (the daemon
/// checks the rest); an error names the line and the key.
pub fn stream_tables(text: &str) -> Result<Vec<StreamSpecArgs>, TableError> {
    let document: StreamDocument = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let message = e.message().trim();
        TableError {
            line: line_of(text, offset),
            message: match key_on_line(text, offset) {
                Some(key) if !message.contains(&format!("`{key}`")) => {
                    format!("[[stream]]: `{key}`: {message}")
                }
                _ => format!("[[stream]]: {message}"),
            },
        }
    })?;
    document
        .stream
        .into_iter()
        .map(|table| {
            let line = line_of(text, table.span().start);
            table.get_ref().to_args().map_err(|e| TableError {
                line,
                message: format!("[[stream]]: {e}"),
            })
        })
        .collect()
}

/// The key of the `key = value` line of `text` holding `offset`, if that is such a line.
pub fn key_on_line(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = text[start..end].trim_start();
    if line.starts_with('[') || line.starts_with('#') {
        return None;
    }
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
    (!key.is_empty()).then(|| key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<TestTable>, String> {
        test_tables(text).map_err(|e| format!("lab.toml:{e}"))
    }

    #[test]
    fn zapping_and_join_leave_tables() {
        let tables = read(
            r#"iface = "tap0"

[[test]]
kind = "zapping"
name = "iptv"
hosts = "10.0.0.2-10.0.0.9"
channels = ["239.1.1.1", "239.1.1.2"]
view_ms = 500
count = 4
order = "random"
seed = 7
start = true

[test.sla]
max_join_delay_ms = 200

[[test]]
kind = "rfc3918-join-leave"
groups = ["ff3e::1"]
iterations = 2
"#,
        )
        .unwrap();
        assert_eq!(tables.len(), 2);
        assert!(tables[0].start);
        let crate::testrun::TestSpec::Zapping(z) = &tables[0].spec else {
            panic!("zapping");
        };
        assert_eq!(z.view_ms, 500);
        assert_eq!(z.hosts.unwrap()[1].to_string(), "10.0.0.9");
        assert_eq!(z.sla.max_join_delay_ms, Some(200));
        assert_eq!(z.thresholds_ms, vec![125, 250, 500, 1000, 2000]);
        assert!(!tables[1].start);
        assert_eq!(tables[1].spec.name(), "join-delay");
        assert!(read("iface = \"tun0\"\n").unwrap().is_empty());
    }

    #[test]
    fn tests_with_their_own_streams_and_a_capacity_test() {
        let tables = read(
            r#"[[test]]
kind = "rfc3918-join-leave"
name = "burdened"
groups = ["239.1.1.1", "239.1.1.2"]
streams = { link = "tap-src", source = "10.99.0.250", pps = 500, background_group = "239.2.0.1", background_count = 20 }

[test.sla]
max_loss = 0
max_latency_us = 5000

[[test]]
kind = "rfc3918-capacity"
first_group = "239.6.0.1"
start_groups = 8
step_groups = 8
max_groups = 32
streams = { link = "tap-src", source = "10.99.0.250" }
"#,
        )
        .unwrap();
        let traffic = tables[0].spec.traffic().expect("streams read");
        assert_eq!(traffic.link, "tap-src");
        assert_eq!((traffic.pps, traffic.background_count), (Some(500), 20));
        assert_eq!(tables[0].spec.sla().max_latency_us, Some(5000));
        let TestSpec::Capacity(capacity) = &tables[1].spec else {
            panic!("{:?}", tables[1].spec);
        };
        assert_eq!(capacity.steps(), vec![8, 16, 24, 32]);
        assert_eq!(tables[1].spec.channels().len(), 32);
    }

    #[test]
    fn stream_tables_of_a_test_file() {
        let text = "[[test]]\nkind = \"zapping\"\nchannels = [\"239.1.1.1\"]\n\n\
                    [[stream]]\nlink = \"tap-src\"\nsource = \"10.0.0.1\"\ngroup = \"239.1.1.1+4\"\npps = 200\n\n\
                    [[stream]]\nlink = \"tap-src\"\nsource = \"10.0.0.1\"\ngroup = \"239.9.9.9\"\n";
        let streams = stream_tables(text).unwrap();
        assert_eq!(streams.len(), 2);
        assert_eq!(
            (streams[0].groups, streams[0].pps, streams[1].groups),
            (Some(4), Some(200), None)
        );
        assert!(stream_tables("[[test]]\nkind = \"zapping\"\n")
            .unwrap()
            .is_empty());
        for (text, expected) in [
            (
                "[[stream]]\nlink = \"t\"\nsource = \"10.0.0.1\"\ngroup = \"239.1.1.1+0\"\n",
                "1: [[stream]]: `group`: invalid count in \"239.1.1.1+0\": expected GROUP+COUNT",
            ),
            (
                "[[stream]]\nlink = \"t\"\nsource = \"10.0.0.1\"\ngroup = \"239.1.1.1\"\nrate = 3\n",
                "5: [[stream]]: unknown field `rate`",
            ),
            (
                "[[stream]]\nlink = \"t\"\nsource = \"x\"\ngroup = \"239.1.1.1\"\n",
                "3: [[stream]]: `source`:",
            ),
        ] {
            let error = stream_tables(text).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{error}");
        }
    }

    #[test]
    fn bad_tables_name_the_file_the_line_and_the_key() {
        let cases = [
            (
                "[[test]]\nkind = \"zapping\"\nchannels = [\"239.1.1.1\"]\nview = 5\n",
                "lab.toml:4: [[test]]: unknown field `view`",
            ),
            (
                "[[test]]\nname = \"a\"\nchannels = [\"239.1.1.1\"]\n",
                "lab.toml:1: [[test]] a: missing key `kind`",
            ),
            (
                "[[test]]\nkind = \"zapping\"\nchannels = [\"239.1.1.1\", \"10.1.1.1\"]\n",
                "lab.toml:3: [[test]]: channels: 10.1.1.1 is not a multicast address",
            ),
            (
                "[[test]]\nkind = \"zapping\"\nchannels = [\"239.1.1.1\"]\nview_ms = 0\n",
                "lab.toml:4: [[test]]: view_ms: 1 to 3600000 ms",
            ),
            (
                "[[test]]\nkind = \"zapping\"\nchannels = [\"239.1.1.1\"]\nhosts = \"10.0.0.9-10.0.0.2\"\n",
                "the range is empty",
            ),
            (
                "[[test]]\nkind = \"flood\"\n",
                "lab.toml:2: [[test]]: unknown kind `flood`",
            ),
            (
                "[[test]]\nkind = \"zapping\"\nchannels = [\"239.1.1.1\"]\n[[test]]\nkind = \"zapping\"\nchannels = [\"239.1.1.2\"]\n",
                "lab.toml:4: [[test]]: another [[test]] is named zapping",
            ),
            ("test = 3\n", "lab.toml:1: `test` holds tests"),
            (
                "[[test]]\nkind = \"zapping\"\nchannels = [\"239.1.1.1\"]\nview_ms = \"x\"\n",
                "lab.toml:4: [[test]]: `view_ms`: invalid type: string \"x\", expected u64",
            ),
            (
                "[[test]]\nkind = \"zapping\"\nchannels = [\"239.1.1.1\"]\nstreams = { link = \"tap0\", source = \"ff1e::1\" }\n",
                "lab.toml:4: [[test]]: streams.source: ff1e::1 is not a unicast address",
            ),
            (
                "[[test]]\nkind = \"zapping\"\nchannels = [\"239.1.1.1\"]\nstreams = { link = \"tap0\", source = \"10.0.0.1\", rate = 5 }\n",
                "unknown field `rate`",
            ),
            (
                "[[test]]\nkind = \"zapping\"\nchannels = [\"239.1.1.1\"]\n[test.sla]\nmax_loss = 0\n",
                "streams: max_loss and max_latency_us need the run's own streams",
            ),
            (
                "[[test]]\nkind = \"rfc3918-capacity\"\nfirst_group = \"239.6.0.1\"\nmax_groups = 5000\n",
                "lab.toml:4: [[test]]: max_groups: 1 to 4096 groups",
            ),
            (
                "[[test]]\nkind = \"zapping\"\nchannels = [\"239.1.1.1\"]\n[test.sla]\nmax_join_delay_ms = -5\n",
                "lab.toml:5: [[test]]: `max_join_delay_ms`: invalid value: integer `-5`",
            ),
        ];
        for (text, expected) in cases {
            let error = read(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
