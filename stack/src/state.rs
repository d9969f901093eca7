//! `--state PATH`: the memberships, written atomically on every change (temporary file, fsync,
//! rename, fsync of the directory) and joined again on start.

use std::fs::{self, File};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub iface: String,
    pub group: IpAddr,
    /// Joins held.
    pub users: u32,
    /// Each join's source filter; absent (older files) means `users` any-source joins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<Request>,
}

/// One join's filter: mode "include" or "exclude", and its sources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub mode: String,
    pub sources: Vec<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateFile {
    pub version: u32,
    pub memberships: Vec<Membership>,
}

pub struct StateStore {
    path: PathBuf,
}

impl StateStore {
    pub fn new(path: &Path) -> StateStore {
        StateStore {
            path: path.to_path_buf(),
        }
    }

    /// The saved memberships; none if the file does not exist yet.
    pub fn load(&self) -> anyhow::Result<Vec<Membership>> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", self.path.display()))
            }
        };
        let state: StateFile = serde_json::from_str(&text)
            .with_context(|| format!("state file {} is not valid", self.path.display()))?;
        anyhow::ensure!(
            state.version == 1,
            "state file {} has unknown version {}",
            self.path.display(),
            state.version
        );
        Ok(state.memberships)
    }

    pub fn save(&self, memberships: Vec<Membership>) -> anyhow::Result<()> {
        let state = StateFile {
            version: 1,
            memberships,
        };
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "state".into());
        let tmp = dir.join(format!(".{name}.tmp"));
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&tmp)?;
            file.write_all(serde_json::to_string_pretty(&state)?.as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            File::open(dir)?.sync_all()
        };
        write().with_context(|| format!("cannot write state file {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing_file() {
        let dir = std::env::temp_dir().join(format!("tunmcast-state-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let store = StateStore::new(&dir.join("s.json"));
        assert_eq!(store.load().unwrap(), vec![]);
        let m = vec![
            Membership {
                iface: "tun0".into(),
                group: "239.1.1.1".parse().unwrap(),
                users: 2,
                requests: vec![],
            },
            Membership {
                iface: "tun0".into(),
                group: "ff12::1".parse().unwrap(),
                users: 1,
                requests: vec![Request {
                    mode: "include".into(),
                    sources: vec!["2001:db8::1".parse().unwrap()],
                }],
            },
        ];
        store.save(m.clone()).unwrap();
        assert_eq!(store.load().unwrap(), m);
        fs::write(dir.join("s.json"), "{ garbage").unwrap();
        assert!(store.load().is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
