//! The control socket: a Unix stream socket, one JSON request per line, one JSON reply per line.
//!
//! One thread accepts; each client gets a small thread that reads its lines, hands each request
//! to the event loop over a crossbeam channel (waking it through a `mio::Waker`) and writes back
//! the reply the loop sends. The control side never touches membership state.

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context as _};
use crossbeam_channel::{bounded, Sender};
use log::{debug, warn};
use serde::Deserialize;
use serde_json::{json, Value};

/// Longest request line accepted.
pub const MAX_REQUEST: usize = 64 * 1024;
/// Clients served at once; more are told so and closed.
const MAX_CLIENTS: usize = 4096;
/// A client that sends nothing for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a client waits for the event loop's answer: less than tunmcastctl's 5 s, so that
/// the client gets the error reply rather than a timeout of its own.
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(4);

/// A source filter in a join or leave: `"include": [...]` or `"exclude": [...]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct SourceArgs {
    #[serde(default)]
    pub include: Option<Vec<String>>,
    #[serde(default)]
    pub exclude: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    Join {
        group: String,
        #[serde(default)]
        iface: Option<String>,
        #[serde(flatten)]
        filter: SourceArgs,
    },
    Leave {
        group: String,
        #[serde(default)]
        iface: Option<String>,
        #[serde(flatten)]
        filter: SourceArgs,
    },
    /// A join held by a listener socket handed to the client: see `listeners`.
    Listen {
        group: String,
        #[serde(default)]
        port: Option<u16>,
        #[serde(default)]
        iface: Option<String>,
        #[serde(flatten)]
        filter: SourceArgs,
    },
    Show,
    Stats,
    Ping,
}

/// A request on its way to the event loop, with where its reply goes.
pub struct Envelope {
    pub request: Request,
    pub reply: Sender<Value>,
    /// `listen`: the daemon's end of the listener socket pair.
    pub socket: Option<std::os::fd::OwnedFd>,
}

pub fn error_reply(message: impl std::fmt::Display) -> Value {
    json!({ "ok": false, "error": message.to_string() })
}

/// Parses one request line; the error is the reply to send.
pub fn parse_request(line: &[u8]) -> Result<Request, Value> {
    let text = std::str::from_utf8(line).map_err(|_| error_reply("request is not UTF-8"))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(error_reply("empty request"));
    }
    serde_json::from_str(text).map_err(|e| error_reply(format!("bad request: {e}")))
}

/// The bound control socket. Dropping it removes the socket file.
pub struct ControlSocket {
    path: PathBuf,
    listener: Option<UnixListener>,
}

impl ControlSocket {
    /// Binds `path` (mode 0600), creating its directory and replacing a stale socket; refuses
    /// to take over a socket another daemon still answers on.
    pub fn bind(path: &Path) -> anyhow::Result<ControlSocket> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)
                .with_context(|| format!("cannot create control directory {}", dir.display()))?;
        }
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                bail!(
                    "control socket {} is in use by a running daemon",
                    path.display()
                );
            }
            fs::remove_file(path)
                .with_context(|| format!("cannot remove stale socket {}", path.display()))?;
        }
        let listener = UnixListener::bind(path)
            .with_context(|| format!("cannot bind control socket {}", path.display()))?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot chmod {}", path.display()))?;
        Ok(ControlSocket {
            path: path.to_path_buf(),
            listener: Some(listener),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts the accept thread.
    pub fn serve(&mut self, requests: Sender<Envelope>, waker: Arc<mio::Waker>) -> io::Result<()> {
        let listener = self.listener.take().expect("serve is called once");
        let clients = Arc::new(AtomicUsize::new(0));
        thread::Builder::new()
            .name("control".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    let stream = match stream {
                        Ok(stream) => stream,
                        Err(e) => {
                            // Typically EMFILE: back off rather than spin and flood the log.
                            warn!("control: accept failed: {e}");
                            thread::sleep(Duration::from_millis(250));
                            continue;
                        }
                    };
                    if clients.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
                        clients.fetch_sub(1, Ordering::SeqCst);
                        let mut stream = stream;
                        let _ = writeln!(stream, "{}", error_reply("too many control clients"));
                        continue;
                    }
                    let requests = requests.clone();
                    let waker = waker.clone();
                    let clients = clients.clone();
                    let spawned = thread::Builder::new()
                        .name("control-client".into())
                        .stack_size(128 * 1024)
                        .spawn(move || {
                            if let Err(e) = serve_client(stream, &requests, &waker) {
                                debug!("control: client ended: {e}");
                            }
                            clients.fetch_sub(1, Ordering::SeqCst);
                        });
                    if let Err(e) = spawned {
                        warn!("control: cannot start a client thread: {e}");
                    }
                }
            })?;
        Ok(())
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn serve_client(
    stream: UnixStream,
    requests: &Sender<Envelope>,
    waker: &mio::Waker,
) -> io::Result<()> {
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    stream.set_write_timeout(Some(REPLY_TIMEOUT))?;
    // One descriptor per client: reads and writes share the stream.
    let mut writer = &stream;
    let mut reader = BufReader::new(&stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .by_ref()
            .take(MAX_REQUEST as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(()); // hung up
        }
        if line.last() != Some(&b'\n') {
            if line.len() > MAX_REQUEST {
                // The rest of the line cannot be told from the next request: answer and close.
                let reply = error_reply(format!("request longer than {MAX_REQUEST} bytes"));
                writeln!(writer, "{reply}")?;
                return Ok(());
            }
            return Ok(()); // hung up in the middle of a request: nothing to answer
        }
        let reply = match parse_request(&line) {
            Ok(request @ Request::Listen { .. }) => {
                match crate::listeners::hand_over(&stream, request, requests, waker)? {
                    Some(refusal) => refusal,
                    None => return Ok(()), // the listener socket carries on alone
                }
            }
            Ok(request) => {
                let (tx, rx) = bounded(1);
                let envelope = Envelope {
                    request,
                    reply: tx,
                    socket: None,
                };
                if requests.send(envelope).is_err() {
                    return Ok(()); // the daemon is shutting down
                }
                waker.wake()?;
                rx.recv_timeout(REPLY_TIMEOUT)
                    .unwrap_or_else(|_| error_reply("daemon did not answer"))
            }
            Err(reply) => reply,
        };
        writeln!(writer, "{reply}")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse() {
        assert_eq!(
            parse_request(br#"{"cmd":"join","group":"239.1.1.1"}"#),
            Ok(Request::Join {
                group: "239.1.1.1".into(),
                iface: None,
                filter: SourceArgs::default(),
            })
        );
        assert_eq!(
            parse_request(b"{\"cmd\":\"leave\",\"group\":\"ff12::1\",\"iface\":\"tun0\"}\n"),
            Ok(Request::Leave {
                group: "ff12::1".into(),
                iface: Some("tun0".into()),
                filter: SourceArgs::default(),
            })
        );
        assert_eq!(parse_request(br#"{"cmd":"show"}"#), Ok(Request::Show));
        assert_eq!(
            parse_request(br#"{"cmd":"join","group":"232.1.1.1","include":["10.0.0.1"]}"#),
            Ok(Request::Join {
                group: "232.1.1.1".into(),
                iface: None,
                filter: SourceArgs {
                    include: Some(vec!["10.0.0.1".into()]),
                    exclude: None
                },
            })
        );
    }

    #[test]
    fn bad_requests_get_errors() {
        for bad in [
            &b"not json"[..],
            b"",
            b"{}",
            b"[1,2]",
            br#"{"cmd":"explode"}"#,
            br#"{"cmd":"join"}"#,
            br#"{"cmd":"join","group":"239.1.1.1","extra":1}"#,
            b"\xff\xfe",
        ] {
            let reply = parse_request(bad).unwrap_err();
            assert_eq!(reply["ok"], false, "{bad:?}");
            assert!(reply["error"].as_str().is_some_and(|e| !e.is_empty()));
        }
    }
}
