//! `[[test]]` tables in a TOML file (the daemon's `--config`, or a test file for
//! `tunmcastctl test run`): each one [`TestSpec`] (`kind = "zapping"` or
//! `"rfc3918-join-leave"`), its keys the protocol's, plus `start = true` (the daemon starts it
//! when it starts). An error names the line and the key.

use std::fmt;

use serde::Deserialize;
use toml::Spanned;

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

#[derive(Deserialize)]
struct Document {
    #[serde(default)]
    test: Vec<Spanned<toml::Table>>,
}

/// The `[[test]]` tables of a file's `text` (none when it has none).
pub fn test_tables(text: &str) -> Result<Vec<TestTable>, TableError> {
    let error = |offset: usize, message: String| TableError {
        line: text[..offset.min(text.len())].matches('\n').count() + 1,
        message,
    };
    // Only the `test` key is read here; the rest of the file is the other readers'.
    let mut document: toml::Table = toml::from_str(text).map_err(|e| {
        error(
            e.span().map_or(0, |s| s.start),
            e.message().trim().to_string(),
        )
    })?;
    let Some(tests) = document.remove("test") else {
        return Ok(Vec::new());
    };
    if !tests
        .as_array()
        .is_some_and(|a| a.iter().all(toml::Value::is_table))
    {
        return Err(error(
            text.find("test").unwrap_or(0),
            "`test` holds tests: write each as a [[test]] table".into(),
        ));
    }
    let spanned: Document = toml::from_str(text).map_err(|e| {
        error(
            e.span().map_or(0, |s| s.start),
            e.message().trim().to_string(),
        )
    })?;
    let mut tables: Vec<TestTable> = Vec::new();
    for table in spanned.test {
        let at = table.span().start;
        let mut table = table.into_inner();
        let start = match table.remove("start") {
            None => false,
            Some(toml::Value::Boolean(start)) => start,
            Some(other) => {
                return Err(error(
                    at,
                    format!(
                        "[[test]] `start` is true or false, not {}",
                        other.type_str()
                    ),
                ))
            }
        };
        let label = match table.get("name").and_then(toml::Value::as_str) {
            Some(name) => format!("[[test]] {name}"),
            None => "[[test]]".to_string(),
        };
        let key_line = |key: &str| -> usize {
            // The line of the key inside the table, when the message names one.
            text[at..]
                .find(&format!("\n{key}"))
                .map_or(at, |offset| at + offset + 1)
        };
        let kind = match table.remove("kind") {
            Some(toml::Value::String(kind)) => kind,
            Some(other) => {
                return Err(error(
                    key_line("kind"),
                    format!("{label}: `kind` is a string, not {}", other.type_str()),
                ))
            }
            None => {
                return Err(error(
                    at,
                    format!(
                    "{label}: missing key `kind` (zapping, rfc3918-join-leave or rfc3918-capacity)"
                ),
                ))
            }
        };
        // Each kind's own struct, so that an error names the key it is about.
        let problem = |(key, message): (Option<String>, String)| match key {
            Some(key) if !message.contains(&format!("`{key}`")) => {
                error(key_line(&key), format!("{label}: `{key}`: {message}"))
            }
            _ => {
                let line = message.split('`').nth(1).map_or(at, key_line);
                error(line, format!("{label}: {message}"))
            }
        };
        let spec = match kind.as_str() {
            "zapping" => TestSpec::Zapping(typed(&table).map_err(problem)?),
            "rfc3918-join-leave" => TestSpec::JoinLeave(typed(&table).map_err(problem)?),
            "rfc3918-capacity" => TestSpec::Capacity(typed(&table).map_err(problem)?),
            other => {
                return Err(error(
                    key_line("kind"),
                    format!("{label}: unknown kind `{other}` (zapping, rfc3918-join-leave or rfc3918-capacity)"),
                ))
            }
        };
        spec.check().map_err(|e| {
            // `streams.source`: the line of `streams`.
            let key = e
                .split([':', '.'])
                .next()
                .unwrap_or_default()
                .trim()
                .to_string();
            error(key_line(&key), format!("{label}: {e}"))
        })?;
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

/// `table` as a `T`; an error with the key it is about, when toml knows it. The table is
/// written out and read again as text: the text reader knows where a bad value is (a
/// `toml::Value` does not), and that place names the key.
fn typed<T: serde::de::DeserializeOwned>(
    table: &toml::Table,
) -> Result<T, (Option<String>, String)> {
    let text = toml::to_string(table).map_err(|e| (None, e.to_string()))?;
    toml::from_str(&text).map_err(|e| {
        let key = e.span().and_then(|span| {
            let line_start = text[..span.start].rfind('\n').map_or(0, |i| i + 1);
            let (key, _) = text[line_start..].split_once('=')?;
            Some(key.trim().to_string()).filter(|k| !k.starts_with('['))
        });
        (key, e.message().trim().to_string())
    })
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
    fn a_test_with_its_own_streams() {
        let tables = read(
            r#"[[test]]
kind = "rfc3918-join-leave"
name = "burdened"
groups = ["239.1.1.1", "239.1.1.2"]
streams = { link = "tap-src", source = "10.99.0.250", pps = 500, background_group = "239.2.0.1", background_count = 20 }

[test.sla]
max_loss = 0
max_latency_us = 5000
"#,
        )
        .unwrap();
        let traffic = tables[0].spec.traffic().expect("streams read");
        assert_eq!(traffic.link, "tap-src");
        assert_eq!((traffic.pps, traffic.background_count), (Some(500), 20));
        assert_eq!(tables[0].spec.sla().max_latency_us, Some(5000));
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
