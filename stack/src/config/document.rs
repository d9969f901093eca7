//! The `--config` file read once: its text parsed once into one typed [`ConfigFile`] — the
//! top-level options, the `[[link]]`, `[[stream]]` and `[[test]]` tables — which every table
//! reader takes instead of a path. Every error is a [`ConfigError`] naming the file, the line
//! and, when there is one, the key.

use std::path::{Path, PathBuf};

use control::test_file::{key_on_line, TestTable};
use toml::de::{DeString, DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::links::LinkTable;
use super::ConfigError;
use control::line_of;
use control::streams::StreamTable;

/// One top-level key of the file: a long option of `tunmcastd` (checked against clap's
/// definition by [`super::args_from_options`]).
#[derive(Debug, Clone)]
pub struct TopLevelOption {
    pub key: Spanned<String>,
    pub value: Spanned<toml::Value>,
}

/// The whole `--config` file, parsed once.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    text: String,
    /// The top-level keys, in the file's order.
    pub options: Vec<TopLevelOption>,
    /// The `[[link]]` tables; `None` when there are none (the one-link form).
    pub links: Option<Vec<Spanned<LinkTable>>>,
    /// The `[[stream]]` tables, checked against the links by [`super::streams`].
    pub streams: Vec<Spanned<StreamTable>>,
    /// The `[[test]]` tables, already checked (they depend on nothing else in the file).
    pub tests: Vec<TestTable>,
}

impl ConfigFile {
    /// Reads and parses the file at `path`.
    pub fn read(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            line: 0,
            message: format!("cannot read: {e}"),
        })?;
        ConfigFile::parse(path, text)
    }

    /// Parses `text`, the contents of the file at `path`.
    pub fn parse(path: &Path, text: String) -> Result<ConfigFile, ConfigError> {
        let mut file = ConfigFile {
            path: path.to_path_buf(),
            text: String::new(),
            options: Vec::new(),
            links: None,
            streams: Vec::new(),
            tests: Vec::new(),
        };
        let at = |offset: usize, message: String| ConfigError {
            path: path.to_path_buf(),
            line: line_of(&text, offset),
            message,
        };
        let root = DeTable::parse(&text)
            .map_err(|e| at(e.span().map_or(0, |s| s.start), e.message().trim().into()))?;
        let mut options = Vec::new();
        for (key, value) in root.into_inner() {
            let name = key.get_ref().to_string();
            match name.as_str() {
                "link" => file.links = Some(tables(&text, path, &key, value, "links")?),
                "stream" => file.streams = tables(&text, path, &key, value, "streams")?,
                "test" => {
                    file.tests =
                        control::test_file::tests_from_value(&text, value).map_err(|e| {
                            ConfigError {
                                path: path.to_path_buf(),
                                line: e.line,
                                message: e.message,
                            }
                        })?
                }
                _ => {
                    let span = value.span();
                    let value: toml::Value =
                        serde::Deserialize::deserialize(ValueDeserializer::from(value))
                            .map_err(|e| de_error(&text, path, "", &e))?;
                    options.push(TopLevelOption {
                        key: Spanned::new(key.span(), name),
                        value: Spanned::new(span, value),
                    });
                }
            }
        }
        options.sort_by_key(|o| o.key.span().start);
        file.options = options;
        file.text = text;
        Ok(file)
    }

    /// The 1-based line of a byte offset into the file.
    pub fn line(&self, offset: usize) -> usize {
        line_of(&self.text, offset)
    }

    /// An error at a byte offset of the file.
    pub fn error(&self, offset: usize, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: self.path.clone(),
            line: self.line(offset),
            message: message.into(),
        }
    }
}

/// The `[[key]]` tables of `value` (`what` they hold: "links", ...) as `T`; a lone `[key]` table
/// (a slip of one bracket) or any other value is refused.
fn tables<T: serde::de::DeserializeOwned>(
    text: &str,
    path: &Path,
    key: &Spanned<DeString<'_>>,
    value: Spanned<DeValue<'_>>,
    what: &str,
) -> Result<T, ConfigError> {
    let name = key.get_ref();
    let refused = |message: String| ConfigError {
        path: path.to_path_buf(),
        line: line_of(text, key.span().start),
        message,
    };
    match value.get_ref() {
        DeValue::Array(items) if items.iter().all(|t| t.get_ref().is_table()) => {}
        DeValue::Table(_) => {
            return Err(refused(format!(
                "unknown key `{name}`: {what} are [[{name}]] tables, with two brackets"
            )))
        }
        _ => {
            return Err(refused(format!(
                "`{name}` holds {what}: write each as a [[{name}]] table"
            )))
        }
    }
    T::deserialize(ValueDeserializer::from(value))
        .map_err(|e| de_error(text, path, &format!("[[{name}]]"), &e))
}

/// A serde error inside `section` (`[[link]]`, ...) as a [`ConfigError`]: its line, and the key
/// written on that line when the message does not name it already. A `[[link]]` section is
/// told `[[link.hosts]]` when the error is in one of those.
fn de_error(text: &str, path: &Path, section: &str, e: &toml::de::Error) -> ConfigError {
    let offset = e.span().map_or(0, |s| s.start);
    let mut message = e.message().trim().to_string();
    let line = line_at(text, offset).trim();
    if let Some(key) = key_on_line(text, offset) {
        // An unknown field names itself (the line may be a whole inline table).
        if !message.contains(&format!("`{key}`")) && !message.starts_with("unknown field") {
            message = format!("`{key}`: {message}");
        }
    } else if line.starts_with('[')
        && !line.starts_with("[[")
        && message.contains("expected a sequence")
    {
        // `[link.hosts]` for `[[link.hosts]]`: a slip of one bracket.
        let name = line.trim_matches(|c| c == '[' || c == ']');
        message = format!("{line} is one table: write [[{name}]] tables, with two brackets");
    }
    let section = match header_before(text, offset) {
        Some(header) if section == "[[link]]" && header.starts_with("[[link.hosts") => {
            "[[link.hosts]]"
        }
        _ => section,
    };
    if !section.is_empty() {
        message = format!("{section}: {message}");
    }
    ConfigError {
        path: path.to_path_buf(),
        line: line_of(text, offset),
        message,
    }
}

/// The line of `text` holding `offset`.
fn line_at(text: &str, offset: usize) -> &str {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    &text[start..end]
}

/// The last table header (`[name]` or `[[name]]`) at or before `offset`.
fn header_before(text: &str, offset: usize) -> Option<&str> {
    let offset = offset.min(text.len());
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    text[..end]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use crate::Args;

    /// The whole reading of a `--config` file as `tunmcastd` does it (options, links, streams,
    /// tests), from a real file; the error as printed.
    fn read(name: &str, text: &str) -> Result<(), String> {
        // A directory of its own per file name: the tests run in parallel.
        let dir = std::env::temp_dir().join(format!(
            "tunmcast-config-{}-{}",
            std::process::id(),
            name.replace('.', "-")
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let argv: Vec<OsString> = vec!["tunmcastd".into(), "--config".into(), path.into()];
        let result = Args::from_argv(&argv)
            .and_then(|(args, file)| args.topology(file.as_ref()).map(|_| ()))
            .map_err(|e| e.to_string());
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    const LINK: &str = "[[link]]\ndevice = \"tap1\"\nkind = \"tap\"\n\
                        [[link.hosts]]\ncount = 2\nipv4 = \"10.0.0.1/24\"\n";
    const STREAM: &str = "[[stream]]\nlink = \"tap1\"\nsource = \"10.1.1.1\"\n\
                          group = \"232.1.1.1\"\n";
    const TEST: &str = "[[test]]\nkind = \"zapping\"\nchannels = [\"239.1.1.1\"]\n";

    #[test]
    fn a_good_file_with_every_kind_of_table_is_read() {
        let text = format!(
            "log_level = \"info\"\n{LINK}{STREAM}{TEST}[test.sla]\nmax_join_delay_ms = 5\n"
        );
        assert_eq!(read("good.toml", &text), Ok(()));
    }

    #[test]
    fn one_bad_key_in_each_kind_of_table_names_the_file_the_line_and_the_key() {
        let cases = [
            // A top-level option.
            (
                format!("log_level = \"info\"\nrobustnes = 2\n{LINK}"),
                "top.toml:2: unknown key `robustnes`",
            ),
            // A [[link]].
            (
                format!("log_level = \"info\"\n{LINK}")
                    .replace("kind = \"tap\"\n", "kind = \"tap\"\nspeed = 10\n"),
                "link.toml:5: [[link]]: unknown field `speed`",
            ),
            // A [[link.hosts]].
            (
                format!("{LINK}colour = \"red\"\n"),
                "hosts.toml:7: [[link.hosts]]: unknown field `colour`",
            ),
            // A [[stream]].
            (
                format!("{LINK}{STREAM}rate = 5\n"),
                "stream.toml:11: [[stream]]: unknown field `rate`",
            ),
            // A [[test]].
            (
                format!("{LINK}{TEST}view = 5\n"),
                "test.toml:10: [[test]]: unknown field `view`",
            ),
            // A [test.sla].
            (
                format!("{LINK}{TEST}[test.sla]\nmax_delay_ms = 5\n"),
                "sla.toml:11: [[test]]: unknown field `max_delay_ms`",
            ),
        ];
        for (text, expected) in cases {
            let name = expected.split(':').next().unwrap();
            let error = read(name, &text).unwrap_err();
            let (path, rest) = error.split_once(name).expect("the file is named");
            assert!(path.ends_with('/'), "{error}");
            assert!(
                rest.starts_with(expected.trim_start_matches(name)),
                "{text}\n{error}"
            );
        }
    }

    #[test]
    fn one_bad_value_in_each_kind_of_table_names_the_line_and_the_key() {
        let cases = [
            (
                format!("robustness = \"x\"\n{LINK}"),
                "/v.toml:1: `robustness`: ",
            ),
            (
                LINK.replace("kind = \"tap\"\n", "kind = \"tap\"\nmtu = true\n"),
                "/v.toml:4: [[link]]: `mtu`: invalid type: boolean `true`",
            ),
            (
                format!("{LINK}robustness = 11\n"),
                "/v.toml:7: `robustness` must be 1 to 10, not 11",
            ),
            (
                format!("{LINK}{STREAM}pps = -1\n"),
                "/v.toml:11: [[stream]]: `pps`: invalid value: integer `-1`",
            ),
            (
                format!("{LINK}{TEST}view_ms = \"x\"\n"),
                "/v.toml:10: [[test]]: `view_ms`: invalid type: string \"x\"",
            ),
        ];
        for (text, expected) in cases {
            let error = read("v.toml", &text).unwrap_err();
            assert!(error.contains(expected), "{text}\n{error}");
        }
    }

    #[test]
    fn a_file_that_cannot_be_read_is_named() {
        let argv: Vec<OsString> = vec![
            "tunmcastd".into(),
            "--config".into(),
            "/nonexistent/tunmcastd.toml".into(),
        ];
        let error = Args::from_argv(&argv).unwrap_err().to_string();
        assert!(
            error.starts_with("/nonexistent/tunmcastd.toml: cannot read: "),
            "{error}"
        );
    }
}
