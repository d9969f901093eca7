//! `--state PATH`: the memberships, kept in an append-only journal and joined again on start.
//!
//! Each change appends one line for the group it changed, holding that group's whole set of
//! requests afterwards (an empty set: the group was left), so a change costs one short line
//! whatever the number of groups, and replay is "the last line of each group wins":
//!
//! ```text
//! tunmcast state journal 1
//! 3f0c2a1b {"iface":"tun0","group":"239.1.2.3","users":1}
//! 9d2e55c0 {"iface":"tun0","group":"232.1.1.1","users":1,"requests":[{"mode":"include","sources":["10.99.0.77"]}]}
//! 0b1c2d3e {"iface":"tun0","group":"239.1.2.3","users":0}
//! ```
//!
//! The eight hex digits are the CRC-32 of the JSON after them. A writer thread owns the file:
//! it appends what the event loop sends, and after each batch (everything that arrived while
//! the previous fsync ran: group commit) it fsyncs once and only then releases the replies
//! that were waiting for those changes, so an acknowledged join is on disk. When the file grows
//! past twice what the live groups need, the thread writes them afresh to a new file and
//! renames it over the old one (compaction), off the event loop.
//!
//! On start, a torn or corrupt line (a crash in the middle of an append, a damaged disk) is
//! reported with its line number, and the file is cut back to the valid lines before it.
//! Files of the first format (one JSON document, rewritten whole on every change) are read
//! and converted.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::thread;

use anyhow::{bail, Context as _};
use crossbeam_channel::{Receiver, Sender};
use log::{info, warn};
use serde::{Deserialize, Serialize};

use crate::control::{Body, Part};
use control::Reply;

/// The first line of a journal.
const HEADER: &str = "tunmcast state journal 1";
/// Compaction waits until the file is at least this big...
const COMPACT_MIN_BYTES: u64 = 1 << 20;
/// ...and this many times what the live groups take.
const COMPACT_RATIO: u64 = 2;

/// One group's memberships on one interface: the record of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub iface: String,
    pub group: IpAddr,
    /// Joins held; 0 means the group was left.
    pub users: u32,
    /// Each join's source filter; absent means `users` any-source joins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<Request>,
}

/// One join's filter: mode "include" or "exclude", and its sources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub mode: String,
    pub sources: Vec<IpAddr>,
    /// The owner that set it (`join --owner`, `filter`); absent for an anonymous join (and in
    /// journals written before owners existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// The first format: one JSON document with every membership.
#[derive(Debug, Deserialize)]
struct LegacyStateFile {
    version: u32,
    memberships: Vec<Membership>,
}

/// What was wrong at the end of a journal, and what was kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedTail {
    /// 1-based line number of the first bad line.
    pub line: usize,
    /// Byte offset where the file was cut.
    pub offset: u64,
    pub reason: String,
    /// Valid change lines kept before it.
    pub kept_lines: usize,
}

/// What [`load`] found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The live memberships, in the order their groups first appeared.
    pub memberships: Vec<Membership>,
    pub damaged_tail: Option<DamagedTail>,
    /// The file was in the first format and has been rewritten as a journal.
    pub converted: bool,
}

type Key = (String, IpAddr);

fn encode(m: &Membership) -> Vec<u8> {
    let json = serde_json::to_vec(m).expect("a Membership always serializes");
    let mut line = format!("{:08x} ", crc32fast::hash(&json)).into_bytes();
    line.extend_from_slice(&json);
    line.push(b'\n');
    line
}

/// Parses one journal line (without its newline): the error says what is wrong with it.
fn decode(line: &[u8]) -> Result<Membership, String> {
    let text = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_string())?;
    let (crc, json) = text
        .split_once(' ')
        .ok_or_else(|| "no checksum".to_string())?;
    let crc = u32::from_str_radix(crc, 16).map_err(|_| format!("bad checksum field {crc:?}"))?;
    if crc32fast::hash(json.as_bytes()) != crc {
        return Err("checksum mismatch".into());
    }
    serde_json::from_str(json).map_err(|e| format!("bad record: {e}"))
}

/// The live memberships of a journal, last line of each group winning.
#[derive(Default)]
struct Live {
    order: Vec<Key>,
    latest: HashMap<Key, Membership>,
}

impl Live {
    fn apply(&mut self, m: Membership) {
        let key = (m.iface.clone(), m.group);
        if !self.latest.contains_key(&key) {
            self.order.push(key.clone());
        }
        self.latest.insert(key, m);
    }

    fn into_memberships(mut self) -> Vec<Membership> {
        self.order
            .into_iter()
            .filter_map(|key| self.latest.remove(&key))
            .filter(|m| m.users > 0)
            .collect()
    }
}

/// Reads the journal at `path` (none yet: nothing), cutting a damaged tail and converting a
/// file of the first format. Errors are for files that are not ours or cannot be read.
pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::default()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut reader = BufReader::new(file);
    let mut first = Vec::new();
    reader
        .read_until(b'\n', &mut first)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if first.is_empty() {
        return Ok(Loaded::default());
    }
    if first.trim_ascii_start().starts_with(b"{") {
        return convert_legacy(path);
    }
    if first.trim_ascii_end() != HEADER.as_bytes() {
        bail!(
            "state file {} is not a tunmcast state journal (first line {:?})",
            path.display(),
            String::from_utf8_lossy(first.trim_ascii_end())
        );
    }
    let mut live = Live::default();
    let mut offset = first.len() as u64;
    let mut line_no = 1;
    let mut kept = 0;
    let mut damaged_tail = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let result = match line.strip_suffix(b"\n") {
            None => Err("torn: the line has no end (a write cut short)".to_string()),
            Some(body) => decode(body),
        };
        match result {
            Ok(m) => {
                live.apply(m);
                kept += 1;
                offset += n as u64;
            }
            Err(reason) => {
                damaged_tail = Some(DamagedTail {
                    line: line_no,
                    offset,
                    reason,
                    kept_lines: kept,
                });
                break;
            }
        }
    }
    if let Some(tail) = &damaged_tail {
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(tail.offset).and_then(|()| f.sync_all()));
        file.with_context(|| format!("cannot cut the damaged tail of {}", path.display()))?;
    }
    Ok(Loaded {
        memberships: live.into_memberships(),
        damaged_tail,
        converted: false,
    })
}

fn convert_legacy(path: &Path) -> anyhow::Result<Loaded> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let legacy: LegacyStateFile = serde_json::from_str(&text)
        .with_context(|| format!("state file {} is not valid", path.display()))?;
    anyhow::ensure!(
        legacy.version == 1,
        "state file {} has unknown version {}",
        path.display(),
        legacy.version
    );
    let memberships: Vec<Membership> = legacy
        .memberships
        .into_iter()
        .filter(|m| m.users > 0)
        .collect();
    write_whole(path, memberships.iter())
        .with_context(|| format!("cannot convert {} to a journal", path.display()))?;
    Ok(Loaded {
        memberships,
        damaged_tail: None,
        converted: true,
    })
}

/// Writes `memberships` as a fresh journal: a temporary file, fsync, rename, fsync of the
/// directory. Returns the file's size.
fn write_whole<'m>(
    path: &Path,
    memberships: impl Iterator<Item = &'m Membership>,
) -> io::Result<u64> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut out = io::BufWriter::new(File::create(&tmp)?);
    out.write_all(HEADER.as_bytes())?;
    out.write_all(b"\n")?;
    let mut size = HEADER.len() as u64 + 1;
    for m in memberships {
        let line = encode(m);
        size += line.len() as u64;
        out.write_all(&line)?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()?;
    Ok(size)
}

enum Message<B> {
    Change(Membership),
    /// Sent once the changes before it are on disk; a failure to save becomes its warning.
    Reply(Sender<Part<B>>, Reply<B>),
    Stop,
}

/// The journal's writer thread, as the event loop sees it: sends never block.
pub struct Journal<B = Body> {
    tx: Sender<Message<B>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl<B: Send + 'static> Journal<B> {
    /// Starts the writer on `path`, whose content is `live` (what [`load`] returned).
    pub fn start(path: &Path, live: &[Membership]) -> anyhow::Result<Journal<B>> {
        let mut writer = Writer::open(path, live)?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let thread = thread::Builder::new()
            .name("state-journal".into())
            .spawn(move || writer.run(&rx))
            .context("cannot start the state journal thread")?;
        Ok(Journal {
            tx,
            thread: Some(thread),
        })
    }

    /// Records `m` as the group's state now.
    pub fn change(&self, m: Membership) {
        let _ = self.tx.send(Message::Change(m));
    }

    /// Sends `reply` on `to` once every change recorded before it is on disk; if they could
    /// not be written, with a `"warning"` saying so.
    pub fn reply_when_durable(&self, to: Sender<Part<B>>, reply: Reply<B>) {
        if let Err(crossbeam_channel::SendError(Message::Reply(to, reply))) =
            self.tx.send(Message::Reply(to, reply))
        {
            let _ = to.send(Part::Whole {
                reply,
                warning: None,
            });
        }
    }

    /// Writes what is pending and stops the writer.
    pub fn stop(mut self) {
        let _ = self.tx.send(Message::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Writer {
    path: PathBuf,
    file: File,
    /// Every group's latest line, for compaction.
    live: HashMap<Key, Vec<u8>>,
    live_bytes: u64,
    file_bytes: u64,
    /// The error of the last failed write, reported with the replies it concerns.
    failed: Option<String>,
}

impl Writer {
    fn open(path: &Path, live: &[Membership]) -> anyhow::Result<Writer> {
        // Start from a compact file: what was loaded, written afresh (this also creates it).
        let file_bytes = write_whole(path, live.iter())
            .with_context(|| format!("cannot write state file {}", path.display()))?;
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open state file {}", path.display()))?;
        let mut writer = Writer {
            path: path.to_path_buf(),
            file,
            live: HashMap::new(),
            live_bytes: HEADER.len() as u64 + 1,
            file_bytes,
            failed: None,
        };
        for m in live {
            writer.remember(m, encode(m));
        }
        Ok(writer)
    }

    fn remember(&mut self, m: &Membership, line: Vec<u8>) {
        let key = (m.iface.clone(), m.group);
        if let Some(old) = self.live.remove(&key) {
            self.live_bytes -= old.len() as u64;
        }
        if m.users > 0 {
            self.live_bytes += line.len() as u64;
            self.live.insert(key, line);
        }
    }

    fn run<B>(&mut self, rx: &Receiver<Message<B>>) {
        let mut replies = Vec::new();
        let mut batch = Vec::new();
        while let Ok(first) = rx.recv() {
            // Everything that queued up during the last fsync goes into this one.
            let mut stop = false;
            for message in std::iter::once(first).chain(rx.try_iter()) {
                match message {
                    Message::Change(m) => {
                        let line = encode(&m);
                        batch.extend_from_slice(&line);
                        self.remember(&m, line);
                    }
                    Message::Reply(to, reply) => replies.push((to, reply)),
                    Message::Stop => stop = true,
                }
            }
            if !batch.is_empty() {
                self.commit(&batch);
                batch.clear();
            }
            for (to, reply) in replies.drain(..) {
                let warning = self.failed.as_ref().map(|e| format!("not saved: {e}"));
                let _ = to.send(Part::Whole { reply, warning });
            }
            if stop {
                return;
            }
        }
    }

    fn commit(&mut self, batch: &[u8]) {
        let result = self
            .file
            .write_all(batch)
            .and_then(|()| self.file.sync_data());
        match result {
            Ok(()) => {
                self.failed = None;
                self.file_bytes += batch.len() as u64;
            }
            Err(e) => {
                let error = format!("cannot write state file {}: {e}", self.path.display());
                warn!("{error}");
                self.failed = Some(error);
                return;
            }
        }
        if self.file_bytes >= COMPACT_MIN_BYTES && self.file_bytes > COMPACT_RATIO * self.live_bytes
        {
            self.compact();
        }
    }

    /// Rewrites the file with only the live groups' lines.
    fn compact(&mut self) {
        let before = self.file_bytes;
        let lines: Vec<Membership> = self
            .live
            .values()
            .filter_map(|line| decode(&line[..line.len() - 1]).ok())
            .collect();
        let reopened = write_whole(&self.path, lines.iter()).and_then(|size| {
            let file = OpenOptions::new().append(true).open(&self.path)?;
            Ok((size, file))
        });
        match reopened {
            Ok((size, file)) => {
                self.file = file;
                self.file_bytes = size;
                info!(
                    "state file {} compacted: {} groups, {before} -> {size} bytes",
                    self.path.display(),
                    self.live.len()
                );
            }
            Err(e) => warn!("cannot compact state file {}: {e}", self.path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(test: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tunmcast-state-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn any_source(group: &str, users: u32) -> Membership {
        Membership {
            iface: "tun0".into(),
            group: group.parse().unwrap(),
            users,
            requests: vec![],
        }
    }

    /// The bytes of a reply `{"ok":true}` once the journal lets it go.
    fn durable(journal: &Journal<()>) -> Vec<u8> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        journal.reply_when_durable(tx, Reply::Ok(()));
        rx.recv().unwrap().to_bytes().into_owned()
    }

    #[test]
    fn a_warning_joins_the_reply_object() {
        #[derive(Serialize)]
        struct Users {
            users: u32,
        }
        let reply = Part::Whole {
            reply: Reply::Ok(Users { users: 1 }),
            warning: Some("disk \"full\"".into()),
        };
        assert_eq!(
            &*reply.to_bytes(),
            b"{\"ok\":true,\"users\":1,\"warning\":\"disk \\\"full\\\"\"}\n"
        );
    }

    #[test]
    fn changes_replay_last_line_wins_and_left_groups_go() {
        let dir = scratch("replay");
        let path = dir.join("state");
        assert!(load(&path).unwrap().memberships.is_empty());
        let ssm = Membership {
            requests: vec![
                Request {
                    mode: "include".into(),
                    sources: vec!["10.0.0.1".parse().unwrap()],
                    owner: None,
                },
                Request {
                    mode: "include".into(),
                    sources: vec!["10.0.0.2".parse().unwrap()],
                    owner: Some("app1".into()),
                },
            ],
            ..any_source("232.1.1.1", 2)
        };
        let journal = Journal::start(&path, &[]).unwrap();
        journal.change(any_source("239.1.1.1", 1));
        journal.change(ssm.clone());
        journal.change(any_source("239.1.1.1", 2));
        journal.change(any_source("ff12::1", 1));
        journal.change(any_source("ff12::1", 0));
        assert_eq!(durable(&journal), b"{\"ok\":true}\n");
        journal.stop();
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.memberships, vec![any_source("239.1.1.1", 2), ssm]);
        assert_eq!(loaded.damaged_tail, None);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A journal line written before owners existed loads, its requests anonymous.
    #[test]
    fn lines_without_owners_still_load() {
        let line = r#"{"iface":"tun0","group":"232.1.1.1","users":1,"requests":[{"mode":"include","sources":["10.0.0.1"]}]}"#;
        let m: Membership = serde_json::from_str(line).unwrap();
        assert_eq!(m.requests[0].owner, None);
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            line,
            "written back the same"
        );
    }

    #[test]
    fn a_torn_or_corrupt_tail_is_reported_and_cut_keeping_the_valid_prefix() {
        let dir = scratch("torn");
        let path = dir.join("state");
        let journal = Journal::start(&path, &[]).unwrap();
        journal.change(any_source("239.1.1.1", 1));
        journal.change(any_source("239.1.1.2", 1));
        durable(&journal);
        journal.stop();
        let good = fs::read(&path).unwrap();
        let torn_line = encode(&any_source("239.1.1.3", 1));
        let mut flipped = encode(&any_source("239.1.1.4", 1));
        flipped[20] ^= 0x01;
        // A write cut short at the very end; a flipped bit, and garbage, with a good line after
        // them (which is not trusted: it follows damage).
        for (tail, more, reason) in [
            (&torn_line[..torn_line.len() - 5], false, "torn"),
            (&flipped[..], true, "checksum mismatch"),
            (&b"garbage\n"[..], true, "no checksum"),
        ] {
            let mut damaged = good.clone();
            damaged.extend_from_slice(tail);
            if more {
                damaged.extend_from_slice(&encode(&any_source("239.1.1.5", 1)));
            }
            fs::write(&path, &damaged).unwrap();
            let loaded = load(&path).unwrap();
            let tail_report = loaded.damaged_tail.expect("reported");
            assert!(tail_report.reason.contains(reason), "{tail_report:?}");
            assert_eq!((tail_report.line, tail_report.kept_lines), (4, 2));
            assert_eq!(tail_report.offset, good.len() as u64);
            assert_eq!(
                loaded.memberships,
                vec![any_source("239.1.1.1", 1), any_source("239.1.1.2", 1)]
            );
            assert_eq!(
                fs::read(&path).unwrap(),
                good,
                "cut back to the valid prefix"
            );
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_first_format_is_converted_and_foreign_files_refused() {
        let dir = scratch("legacy");
        let path = dir.join("state.json");
        fs::write(
            &path,
            r#"{"version":1,"memberships":[{"iface":"tun0","group":"239.1.1.1","users":2}]}"#,
        )
        .unwrap();
        let loaded = load(&path).unwrap();
        assert!(loaded.converted);
        assert_eq!(loaded.memberships, vec![any_source("239.1.1.1", 2)]);
        assert!(fs::read_to_string(&path).unwrap().starts_with(HEADER));
        assert_eq!(load(&path).unwrap().memberships, loaded.memberships);
        fs::write(&path, "hello\nworld\n").unwrap();
        assert!(load(&path).is_err());
        fs::write(&path, r#"{"version":7,"memberships":[]}"#).unwrap();
        assert!(load(&path).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_file_is_compacted_when_it_outgrows_the_live_groups() {
        let dir = scratch("compact");
        let path = dir.join("state");
        let journal = Journal::start(&path, &[]).unwrap();
        // 10 live groups, changed over and over: far past COMPACT_MIN_BYTES of history.
        for round in 0..3000u32 {
            for g in 0..10 {
                journal.change(any_source(&format!("239.9.0.{g}"), 1 + round % 5));
            }
        }
        durable(&journal);
        journal.stop();
        let size = fs::metadata(&path).unwrap().len();
        assert!(size < COMPACT_MIN_BYTES, "not compacted: {size} bytes");
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.memberships.len(), 10);
        assert!(loaded.memberships.iter().all(|m| m.users == 1 + 2999 % 5));
        fs::remove_dir_all(&dir).unwrap();
    }
}
