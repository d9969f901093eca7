//! The `[[test]]` tables of the `--config` file (`control::test_file`): test runs the daemon
//! knows by name (`tunmcastctl test start NAME`), or starts with itself (`start = true`).

use std::path::Path;

pub use control::test_file::TestTable;

use super::{ConfigError, ConfigFile};

/// The `[[test]]` tables of `path` (none when it has none), read by the one reader of the
/// file ([`ConfigFile`]); an error names the file, the line and the key. The tables of a file
/// already read are its [`ConfigFile::tests`].
pub fn test_tables_from_file(path: &Path) -> Result<Vec<TestTable>, ConfigError> {
    Ok(ConfigFile::read(path)?.tests)
}
