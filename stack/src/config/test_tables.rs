//! The `[[test]]` tables of the `--config` file (`control::test_file`): test runs the daemon
//! knows by name (`tunmcastctl test start NAME`), or starts with itself (`start = true`).

use std::path::Path;

pub use control::test_file::TestTable;

use super::ConfigError;

/// The `[[test]]` tables of `path` (none when it has none); an error names the file, the line
/// and the key.
pub fn test_tables_from_file(path: &Path) -> Result<Vec<TestTable>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: path.to_path_buf(),
        line: 0,
        message: format!("cannot read: {e}"),
    })?;
    control::test_file::test_tables(&text).map_err(|e| ConfigError {
        path: path.to_path_buf(),
        line: e.line,
        message: e.message,
    })
}
