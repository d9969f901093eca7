//! `--config FILE`: the daemon's options in a TOML file, re-read on SIGHUP.
//!
//! Every long option of `tunmcastd` is a key (`iface = "tun0"`, `ipv4 = "10.99.0.2/24"`,
//! `igmp_version = 2`, `tap = true`, `log_level = "debug"`; `-` and `_` are the same in a key).
//! Options on the command line win over the file. Values are checked by the same parsers as
//! the command line, and an error names the file, the line and the key.
//!
//! The file is read and parsed once ([`ConfigFile`]); its top-level keys are turned into
//! command-line arguments placed before the real ones, so that there is one definition of
//! every option (the clap one) and one set of checks.
//!
//! Besides these top-level keys (the one-link form, exactly like the command line), a file may
//! hold `[[link]]` tables for many links and many hosts ([`links`]), `[[stream]]` tables
//! ([`streams`]) and `[[test]]` tables ([`TestTable`], read by `control::test_file`): each
//! reader takes the parsed file.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use clap::{ArgAction, CommandFactory};
use toml::Value;

use crate::Args;

pub mod document;
pub mod links;
pub mod streams;
pub use control::test_file::TestTable;

pub use document::ConfigFile;

/// What is wrong with a configuration file: one line for a human, naming the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    /// 1-based; 0 when the problem is not on one line (the file cannot be read).
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// The path given with `--config PATH` or `--config=PATH` in `argv`, if any. Looked up before
/// clap parses, because the file may hold the options clap requires.
pub fn config_path(argv: &[OsString]) -> Option<PathBuf> {
    let mut args = argv.iter().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--" {
            return None;
        }
        if arg == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(path) = arg.to_str().and_then(|a| a.strip_prefix("--config=")) {
            return Some(PathBuf::from(path));
        }
    }
    None
}

/// The top-level options of `file` as command-line arguments (`--key value`, `--flag`), in
/// file order, each value checked alone by its option's own parser so that an error names its
/// line and key.
pub fn args_from_options(file: &ConfigFile) -> Result<Vec<OsString>, ConfigError> {
    let command = Args::command();
    // The same options with nothing required, to check one value at a time.
    let mut value_checker = Args::command().mut_args(|a| {
        a.required(false)
            .requires(clap::builder::Resettable::<clap::Id>::Reset)
    });
    let mut argv: Vec<OsString> = Vec::new();
    for option in &file.options {
        let key = option.key.get_ref();
        let at = option.key.span().start;
        let value = option.value.get_ref();
        let error = |message: String| file.error(at, message);
        let name = key.replace('_', "-");
        let arg = command
            .get_arguments()
            .find(|a| {
                a.get_long() == Some(name.as_str())
                    || a.get_all_aliases()
                        .is_some_and(|aliases| aliases.contains(&name.as_str()))
            })
            .filter(|a| !matches!(a.get_id().as_str(), "config" | "help" | "version"));
        let Some(arg) = arg else {
            let keys: Vec<String> = command
                .get_arguments()
                .filter_map(|a| a.get_long())
                .filter(|l| !matches!(*l, "config" | "help" | "version"))
                .map(|l| l.replace('-', "_"))
                .collect();
            return Err(error(format!(
                "unknown key `{key}` (the keys are tunmcastd's long options, and the tables \
                 [[link]], [[stream]] and [[test]]: {})",
                keys.join(", ")
            )));
        };
        let long = format!("--{}", arg.get_long().expect("found by its long name"));
        match (arg.get_action(), value) {
            (ArgAction::SetTrue, Value::Boolean(true)) => argv.push(OsString::from(&long)),
            (ArgAction::SetTrue, Value::Boolean(false)) => {}
            (ArgAction::SetTrue, other) => {
                return Err(error(format!(
                    "`{key}` is true or false, not {}",
                    other.type_str()
                )))
            }
            (_, Value::String(s)) => argv.extend([OsString::from(&long), s.into()]),
            (_, Value::Integer(i)) => argv.extend([OsString::from(&long), i.to_string().into()]),
            (_, other) => {
                return Err(error(format!(
                    "`{key}` takes a string or a number, not {}",
                    other.type_str()
                )))
            }
        }
        // The value goes through the option's own parser now, alone, so that the error can
        // name the line; the whole command line is checked again afterwards.
        if !matches!(arg.get_action(), ArgAction::SetTrue) {
            let alone = [
                OsString::from("tunmcastd"),
                long.into(),
                argv[argv.len() - 1].clone(),
            ];
            if let Err(e) = value_checker.try_get_matches_from_mut(alone) {
                let detail = e.to_string();
                let detail = detail
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("error: ");
                return Err(error(format!("`{key}`: {detail}")));
            }
        }
    }
    Ok(argv)
}

/// The command line with the file's options placed before the real ones, which win.
pub fn merged_argv(argv: &[OsString], from_file: Vec<OsString>) -> Vec<OsString> {
    let mut merged = Vec::with_capacity(argv.len() + from_file.len());
    merged.extend(argv.first().cloned());
    merged.extend(from_file);
    merged.extend(argv.iter().skip(1).cloned());
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::path::Path;

    fn args_from_text(path: &Path, text: &str) -> Result<Vec<OsString>, ConfigError> {
        args_from_options(&ConfigFile::parse(path, text.to_string())?)
    }

    fn parse(text: &str, cli: &[&str]) -> Result<Args, String> {
        let path = Path::new("/etc/tunmcastd.toml");
        let from_file = args_from_text(path, text).map_err(|e| e.to_string())?;
        let mut argv: Vec<OsString> = vec!["tunmcastd".into(), "--config".into(), path.into()];
        argv.extend(cli.iter().map(OsString::from));
        Args::try_parse_from(merged_argv(&argv, from_file)).map_err(|e| e.to_string())
    }

    #[test]
    fn the_file_gives_options_and_the_command_line_wins() {
        let text = "iface = \"tun7\"\nipv4 = \"10.99.0.2/24\"\nrobustness = 3\n\
                    tap = true\nlog_level = \"debug\"\nstrict_igmp = false\n";
        let args = parse(text, &[]).unwrap();
        assert_eq!(args.iface.as_deref(), Some("tun7"));
        assert_eq!(args.robustness, 3);
        assert!(args.tap && !args.strict_igmp);
        assert_eq!(args.log_level.as_deref(), Some("debug"));
        let args = parse(text, &["--robustness", "4", "--iface", "tun8"]).unwrap();
        assert_eq!((args.iface.as_deref(), args.robustness), (Some("tun8"), 4));
        // The old spelling of the device key still works.
        let args = parse("tun = \"tun9\"\nipv4 = \"10.99.0.2/24\"\n", &[]).unwrap();
        assert_eq!(args.iface.as_deref(), Some("tun9"));
    }

    #[test]
    fn errors_name_the_file_the_line_and_the_key() {
        let cases = [
            (
                "iface = \"t\"\nbogus = 1\n",
                "/etc/tunmcastd.toml:2: unknown key `bogus`",
            ),
            (
                "iface = \"t\"\n\nrobustness = 0\n",
                "/etc/tunmcastd.toml:3: `robustness`",
            ),
            ("ipv4 = \"10.1.1.1\"\n", "/etc/tunmcastd.toml:1: `ipv4`"),
            (
                "tap = \"yes\"\n",
                "/etc/tunmcastd.toml:1: `tap` is true or false, not string",
            ),
            (
                "mtu = [1500]\n",
                "/etc/tunmcastd.toml:1: `mtu` takes a string or a number",
            ),
            (
                "config = \"x\"\n",
                "/etc/tunmcastd.toml:1: unknown key `config`",
            ),
            ("iface = \"t\"\nipv4 = \n", "/etc/tunmcastd.toml:2: "),
            (
                "[link]\niface = \"t\"\n",
                "/etc/tunmcastd.toml:1: unknown key `link`",
            ),
        ];
        for (text, expected) in cases {
            let error = parse(text, &[]).unwrap_err();
            assert!(error.starts_with(expected), "{text:?}: {error}");
        }
    }

    #[test]
    fn link_tables_are_left_to_the_links_reader() {
        let text = "log_level = \"debug\"\niface = \"t\"\nipv4 = \"10.99.0.2/24\"\n\
                    [[link]]\ndevice = \"tun0\"\n";
        let from_file = args_from_text(Path::new("/c.toml"), text).unwrap();
        assert_eq!(from_file.len(), 6);
        let error = args_from_text(Path::new("/c.toml"), "[link]\ndevice = \"t\"\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "/c.toml:1: unknown key `link`: links are [[link]] tables, with two brackets"
        );
    }

    #[test]
    fn the_config_path_is_found_before_parsing() {
        let argv = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            config_path(&argv(&["d", "--ipv4", "x", "--config", "/a.toml"])),
            Some(PathBuf::from("/a.toml"))
        );
        assert_eq!(
            config_path(&argv(&["d", "--config=/b.toml"])),
            Some(PathBuf::from("/b.toml"))
        );
        assert_eq!(config_path(&argv(&["d", "--", "--config", "x"])), None);
        assert_eq!(config_path(&argv(&["d", "--iface", "t"])), None);
    }
}
