//! The `[[stream]]` tables of the configuration file: test streams the daemon sends.
//!
//! ```toml
//! [[stream]]
//! link = "tap-src"          # one of the daemon's devices
//! source = "10.1.1.1"
//! group = "232.1.1.1+100"   # GROUP+COUNT: COUNT streams on consecutive groups
//! port = 5000               # destination UDP port (default 5000); source_port (4000)
//! pps = 1000                # packets per second (default 1000)
//! size = 64                 # UDP payload bytes, the 24-byte header included (default 64)
//! count = 10000             # or seconds = 10; default: until stopped
//! mac = "02:00:0a:01:01:01" # the source MAC on a TAP (default 02:00 + the source's last 4 bytes)
//! burst = 1                 # packets sent back to back each time (default 1)
//! ```
//!
//! Read with serde (unknown keys refused); an error names the file, the line of the table
//! and the key.

use super::{ConfigError, ConfigFile};
use crate::streams::StreamSpec;

/// The streams of the `[[stream]]` tables of `file`, each on one of `devices`.
pub fn streams(file: &ConfigFile, devices: &[&str]) -> Result<Vec<StreamSpec>, ConfigError> {
    let mut specs = Vec::new();
    for (n, table) in file.streams.iter().enumerate() {
        let at = table.span().start;
        let t = table.get_ref();
        let fail = |message: String| file.error(at, format!("[[stream]] #{}: {message}", n + 1));
        if !devices.contains(&t.link.as_str()) {
            return Err(fail(format!(
                "`link`: {} is not a link of this file (its links: {})",
                t.link,
                devices.join(", ")
            )));
        }
        let args = t.to_args().map_err(fail)?;
        specs.extend(StreamSpec::expand(&args).map_err(fail)?);
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    fn read(text: &str) -> Result<Vec<StreamSpec>, String> {
        let file = ConfigFile::parse(std::path::Path::new("/etc/lab.toml"), text.to_string())
            .map_err(|e| e.to_string())?;
        streams(&file, &["tap1", "tap2"]).map_err(|e| e.to_string())
    }

    #[test]
    fn tables_make_streams_with_their_defaults() {
        let text = "log_level = \"info\"\n[[link]]\ndevice = \"tap1\"\n\
                    [[stream]]\nlink = \"tap1\"\nsource = \"10.1.1.1\"\ngroup = \"232.1.1.1+3\"\n\
                    pps = 500\nsize = 100\nseconds = 2\n\
                    [[stream]]\nlink = \"tap2\"\nsource = \"2001:db8::1\"\ngroup = \"ff3e::1\"\n\
                    mac = \"02:00:00:00:00:09\"\nburst = 4\n";
        let specs = read(text).unwrap();
        assert_eq!(specs.len(), 4);
        assert_eq!(specs[2].group, "232.1.1.3".parse::<IpAddr>().unwrap());
        assert_eq!(
            (specs[0].pps, specs[0].size, specs[0].limit),
            (500, 100, Some(1000))
        );
        assert_eq!(
            (specs[3].pps, specs[3].size, specs[3].limit, specs[3].burst),
            (1000, 64, None, 4)
        );
        assert_eq!(specs[3].port, 5000);
        assert!(read("iface = \"tap1\"\n").unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_file_the_line_and_the_key() {
        let head = "[[link]]\ndevice = \"tap1\"\n";
        let cases = [
            ("[[stream]]\nlink = \"tap1\"\nsource = \"10.1.1.1\"\ngroup = \"232.1.1.1\"\nrate = 5\n", ":7: [[stream]]: unknown field `rate`"),
            ("[[stream]]\nlink = \"tap9\"\nsource = \"10.1.1.1\"\ngroup = \"232.1.1.1\"\n", "[[stream]] #1: `link`: tap9 is not a link"),
            ("[[stream]]\nlink = \"tap1\"\nsource = \"10.1.1.1\"\ngroup = \"232.1.1.1\"\nsize = 10\n", "[[stream]] #1: `size`: size 10"),
            ("[[stream]]\nlink = \"tap1\"\nsource = \"10.1.1.1\"\ngroup = \"232.1.1.1+x\"\n", "`group`: invalid count"),
            ("[[stream]]\nlink = \"tap1\"\nsource = \"10.1.1.1\"\ngroup = \"10.0.0.1\"\n", "`group`: 10.0.0.1 is not a multicast"),
            ("[[stream]]\nlink = \"tap1\"\nsource = \"nope\"\ngroup = \"232.1.1.1\"\n", "[[stream]]: "),
            ("[[stream]]\nlink = \"tap1\"\ngroup = \"232.1.1.1\"\n", "missing field `source`"),
            ("[[stream]]\nlink = \"tap1\"\nsource = \"10.1.1.1\"\ngroup = \"232.1.1.1\"\npps = 0\n", "`pps`"),
        ];
        for (text, expected) in cases {
            let error = read(&format!("{head}{text}")).unwrap_err();
            assert!(error.starts_with("/etc/lab.toml:"), "{error}");
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }
}
