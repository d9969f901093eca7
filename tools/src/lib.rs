//! tunmcast tools: the client side of the tunmcastd control protocol.
//!
//! The daemon listens on a Unix stream socket and speaks one JSON object per
//! line in each direction: a request such as `{"cmd":"join","group":"239.1.2.3"}`
//! gets a reply `{"ok":true,...}` or `{"ok":false,"error":"..."}`.
//! [`Client`] carries one request/reply exchange at a time; [`control_path`]
//! finds the socket the way every tool should (flag, then environment, then
//! the only socket in [`RUN_DIR`]).

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

pub mod listen;
pub mod packet_socket;
pub mod show_stream;

/// `--generate` (man pages, completions), shared with the daemon through the `clidoc` crate.
pub use clidoc as generate;
/// The protocol, the HTTP API's types and the Prometheus text live in the `control` crate,
/// shared with the daemon; these are the paths the tools have always used.
pub use control::{http_api, prometheus, protocol, stream_header, Request};

/// Where tunmcastd puts its control sockets by default, one per instance.
pub const RUN_DIR: &str = "/run/tunmcast";
/// Environment variable naming the control socket when no flag is given.
pub const CONTROL_ENV: &str = "TUNMCAST_CONTROL";
/// How long to wait for the daemon's reply before giving up.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// A reply longer than this is not something tunmcastd would send.
const MAX_REPLY_BYTES: u64 = 16 << 20;

/// Everything that can go wrong between a tool and the daemon.
#[derive(Debug)]
pub enum ClientError {
    /// No socket given and none could be found; says what was tried.
    NoSocket(String),
    Connect {
        path: PathBuf,
        source: io::Error,
    },
    Io {
        path: PathBuf,
        source: io::Error,
    },
    Timeout {
        path: PathBuf,
    },
    /// The daemon closed the connection before replying.
    Closed {
        path: PathBuf,
    },
    /// The reply is not the JSON object the protocol promises.
    BadReply {
        path: PathBuf,
        detail: String,
    },
    /// The daemon understood the request and refused it.
    Daemon(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::NoSocket(tried) => write!(f, "cannot find the control socket: {tried}"),
            ClientError::Connect { path, source } => {
                write!(
                    f,
                    "cannot connect to {}: {}",
                    path.display(),
                    describe_io_error(source)
                )?;
                if matches!(
                    source.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) {
                    write!(f, " (is tunmcastd running?)")?;
                }
                Ok(())
            }
            ClientError::Io { path, source } => write!(
                f,
                "talking to tunmcastd on {}: {}",
                path.display(),
                describe_io_error(source)
            ),
            ClientError::Timeout { path } => write!(
                f,
                "no reply from tunmcastd on {} within {} s",
                path.display(),
                REPLY_TIMEOUT.as_secs()
            ),
            ClientError::Closed { path } => write!(
                f,
                "tunmcastd on {} closed the connection without replying",
                path.display()
            ),
            ClientError::BadReply { path, detail } => write!(
                f,
                "unexpected reply from tunmcastd on {}: {detail}",
                path.display()
            ),
            ClientError::Daemon(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Connect { source, .. } | ClientError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The OS message without Rust's " (os error N)" suffix, for one-line errors.
pub fn describe_io_error(e: &io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(cut) if text.ends_with(')') => text[..cut].to_string(),
        _ => text,
    }
}

/// Finds the control socket: `explicit` (the `--control` flag), else
/// `$TUNMCAST_CONTROL`, else the only `*.sock` in [`RUN_DIR`].
pub fn control_path(explicit: Option<&Path>) -> Result<PathBuf, ClientError> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os(CONTROL_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let tried = format!("--control not given, {CONTROL_ENV} not set, and");
    let entries = match std::fs::read_dir(RUN_DIR) {
        Ok(entries) => entries,
        Err(e) => {
            return Err(ClientError::NoSocket(format!(
                "{tried} {RUN_DIR}/ cannot be read: {} (is tunmcastd running?)",
                describe_io_error(&e)
            )))
        }
    };
    let mut sockets: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "sock"))
        .collect();
    sockets.sort();
    match sockets.len() {
        1 => Ok(sockets.remove(0)),
        0 => Err(ClientError::NoSocket(format!(
            "{tried} there is no *.sock in {RUN_DIR}/ (is tunmcastd running?)"
        ))),
        _ => {
            let names: Vec<String> = sockets.iter().map(|p| p.display().to_string()).collect();
            Err(ClientError::NoSocket(format!(
                "{tried} {RUN_DIR}/ holds several sockets ({}): choose one with --control",
                names.join(", ")
            )))
        }
    }
}

/// A connection to one tunmcastd control socket.
pub struct Client {
    path: PathBuf,
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Client {
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let connect_error = |source| ClientError::Connect {
            path: path.to_path_buf(),
            source,
        };
        let stream = UnixStream::connect(path).map_err(connect_error)?;
        let setup = || -> io::Result<UnixStream> {
            stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
            stream.set_write_timeout(Some(REPLY_TIMEOUT))?;
            stream.try_clone()
        };
        let reader = setup().map_err(connect_error)?;
        Ok(Client {
            path: path.to_path_buf(),
            writer: stream,
            reader: BufReader::new(reader),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends one request and returns the reply object minus its `"ok"` member.
    /// A `{"ok":false}` reply becomes [`ClientError::Daemon`].
    pub fn request(&mut self, request: &Request) -> Result<Map<String, Value>, ClientError> {
        let mut line = serde_json::to_vec(request).expect("a Request always serializes");
        line.push(b'\n');
        self.writer
            .write_all(&line)
            .and_then(|()| self.writer.flush())
            .map_err(|e| self.io_error(e))?;
        let mut reply = String::new();
        let read = (&mut self.reader)
            .take(MAX_REPLY_BYTES)
            .read_line(&mut reply)
            .map_err(|e| self.io_error(e))?;
        if read == 0 {
            return Err(ClientError::Closed {
                path: self.path.clone(),
            });
        }
        self.parse_reply(reply.trim_end())
    }

    /// Writes one request line.
    pub fn send(&mut self, request: &Request) -> Result<(), ClientError> {
        let mut line = serde_json::to_vec(request).expect("a Request always serializes");
        line.push(b'\n');
        self.writer
            .write_all(&line)
            .and_then(|()| self.writer.flush())
            .map_err(|e| self.io_error(e))
    }

    /// The reader of the replies, for a streamed one ([`show_stream`]).
    pub fn reader(&mut self) -> &mut BufReader<UnixStream> {
        &mut self.reader
    }

    /// Sends `request` and copies its reply, whatever its size and without its `"ok"`, to `out`
    /// as it arrives (the newline that ends it included). A `{"ok":false}` reply becomes
    /// [`ClientError::Daemon`] and nothing is written.
    pub fn request_into(
        &mut self,
        request: &Request,
        out: &mut dyn Write,
    ) -> Result<(), ClientError> {
        self.send(request)?;
        let path = self.path.clone();
        let io_error = |source: io::Error| io_error(&path, source);
        let head = self.reader.fill_buf().map_err(io_error)?;
        if head.is_empty() {
            return Err(ClientError::Closed {
                path: self.path.clone(),
            });
        }
        if head.starts_with(b"{\"ok\":false") {
            let mut line = String::new();
            (&mut self.reader)
                .take(MAX_REPLY_BYTES)
                .read_line(&mut line)
                .map_err(io_error)?;
            return self.parse_reply(line.trim_end()).map(|_| ());
        }
        // As for every reply a tool prints, "ok" is left out: the exit status says it.
        const OK: &[u8] = b"{\"ok\":true,";
        if head.starts_with(OK) {
            self.reader.consume(OK.len());
            out.write_all(b"{").map_err(|e| ClientError::Io {
                path: PathBuf::from("standard output"),
                source: e,
            })?;
        }
        loop {
            let chunk = self.reader.fill_buf().map_err(io_error)?;
            if chunk.is_empty() {
                return Err(ClientError::Closed {
                    path: self.path.clone(),
                });
            }
            let (n, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(at) => (at + 1, true),
                None => (chunk.len(), false),
            };
            let written = out.write_all(&chunk[..n]);
            self.reader.consume(n);
            written.map_err(|e| ClientError::Io {
                path: PathBuf::from("standard output"),
                source: e,
            })?;
            if done {
                return Ok(());
            }
        }
    }

    fn parse_reply(&self, line: &str) -> Result<Map<String, Value>, ClientError> {
        let bad = |detail: String| ClientError::BadReply {
            path: self.path.clone(),
            detail,
        };
        let mut object = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(object)) => object,
            Ok(_) => return Err(bad("not a JSON object".into())),
            Err(e) => return Err(bad(format!("invalid JSON: {e}"))),
        };
        match object.remove("ok") {
            Some(Value::Bool(true)) => Ok(object),
            Some(Value::Bool(false)) => {
                let message = object
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("request refused (no error message given)");
                Err(ClientError::Daemon(message.to_string()))
            }
            _ => Err(bad("no boolean \"ok\" member".into())),
        }
    }

    pub(crate) fn io_error(&self, source: io::Error) -> ClientError {
        io_error(&self.path, source)
    }
}

/// A read or write failure on the control socket; a timeout is said as one.
fn io_error(path: &Path, source: io::Error) -> ClientError {
    let path = path.to_path_buf();
    match source.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ClientError::Timeout { path },
        _ => ClientError::Io { path, source },
    }
}

/// Connects, sends one request, returns the reply (minus `"ok"`).
pub fn request(path: &Path, request: &Request) -> Result<Map<String, Value>, ClientError> {
    Client::connect(path)?.request(request)
}

/// Decodes a reply object (minus `"ok"`) into one of the typed replies.
pub fn decode<T: serde::de::DeserializeOwned>(
    path: &Path,
    reply: &Map<String, Value>,
) -> Result<T, ClientError> {
    T::deserialize(Value::Object(reply.clone())).map_err(|e| ClientError::BadReply {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_error_suffix_is_dropped() {
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(describe_io_error(&e), "No such file or directory");
    }

    #[test]
    fn connect_error_names_the_socket_and_hints() {
        let e = Client::connect(Path::new("/nonexistent/tun0.sock"))
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "cannot connect to /nonexistent/tun0.sock: No such file or directory \
             (is tunmcastd running?)"
        );
    }
}
