//! tunmcast tools: the client side of the tunmcastd control protocol.
//!
//! The daemon listens on a Unix stream socket and speaks one JSON object per
//! line in each direction: a request such as `{"cmd":"join","group":"239.1.2.3"}`
//! gets a reply `{"ok":true,...}` or `{"ok":false,"error":"..."}`.
//! [`Client`] carries one request/reply exchange at a time; [`control_path`]
//! finds the socket the way every tool should (flag, then environment, then
//! the only socket in [`RUN_DIR`]).

pub mod generate;

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub mod listen;

/// Where tunmcastd puts its control sockets by default, one per instance.
pub const RUN_DIR: &str = "/run/tunmcast";
/// Environment variable naming the control socket when no flag is given.
pub const CONTROL_ENV: &str = "TUNMCAST_CONTROL";
/// How long to wait for the daemon's reply before giving up.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// A reply longer than this is not something tunmcastd would send.
const MAX_REPLY_BYTES: u64 = 16 << 20;

/// One control request, serialized as a single JSON line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Request {
    Join {
        group: IpAddr,
        /// `None` means the daemon's only interface.
        #[serde(skip_serializing_if = "Option::is_none")]
        iface: Option<String>,
        /// Source filter: INCLUDE these sources only...
        #[serde(skip_serializing_if = "Option::is_none")]
        include: Option<Vec<IpAddr>>,
        /// ...or every source but these.
        #[serde(skip_serializing_if = "Option::is_none")]
        exclude: Option<Vec<IpAddr>>,
    },
    Leave {
        group: IpAddr,
        #[serde(skip_serializing_if = "Option::is_none")]
        iface: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        include: Option<Vec<IpAddr>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        exclude: Option<Vec<IpAddr>>,
    },
    /// A join that lasts as long as the connection's listener socket: see [`listen`].
    Listen {
        group: IpAddr,
        /// Only datagrams to this UDP destination port.
        #[serde(skip_serializing_if = "Option::is_none")]
        port: Option<u16>,
        #[serde(skip_serializing_if = "Option::is_none")]
        iface: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        include: Option<Vec<IpAddr>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        exclude: Option<Vec<IpAddr>>,
    },
    Show,
    Stats,
    Ping,
}

/// Reply to `join` and `leave`.
#[derive(Debug, Clone, Deserialize)]
pub struct MembershipReply {
    pub iface: String,
    pub group: String,
    /// Local users of the group after the operation (0 after the last leave).
    pub users: u64,
}

/// Reply to `show`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ShowReply {
    #[serde(default)]
    pub interfaces: Vec<InterfaceInfo>,
    #[serde(default)]
    pub groups: Vec<GroupInfo>,
    #[serde(default)]
    pub listeners: Vec<ListenerInfo>,
}

/// A `listen` client as `show` lists it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListenerInfo {
    pub id: u64,
    pub iface: String,
    pub group: String,
    #[serde(default)]
    pub port: Option<u16>,
    pub filter_mode: String,
    #[serde(default)]
    pub sources: Vec<String>,
    /// Datagrams queued to the client.
    pub delivered: u64,
    /// Datagrams lost because the client's queue was full.
    pub dropped: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct InterfaceInfo {
    pub iface: String,
    #[serde(default)]
    pub ipv4: Option<String>,
    #[serde(default)]
    pub ipv6_ll: Option<String>,
    #[serde(default)]
    pub igmp_version: Option<u8>,
    /// Time left until the IGMPv1-router-present timer expires (RFC 2236 §4).
    #[serde(default)]
    pub igmp_v1_router_present_ms: Option<u64>,
    #[serde(default)]
    pub mld_version: Option<u8>,
    /// Compatibility-mode timers: older queriers present (ms left), v3 general response due.
    #[serde(default)]
    pub igmp_v2_querier_present_ms: Option<u64>,
    #[serde(default)]
    pub mld_v1_querier_present_ms: Option<u64>,
    #[serde(default)]
    pub igmp_general_response_ms: Option<u64>,
    #[serde(default)]
    pub mld_general_response_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct GroupInfo {
    pub iface: String,
    pub group: String,
    #[serde(default)]
    pub family: Option<String>,
    #[serde(default)]
    pub users: u64,
    #[serde(default)]
    pub state: Option<String>,
    /// Time left until the pending report, if one is scheduled.
    #[serde(default)]
    pub timer_ms: Option<u64>,
    #[serde(default)]
    pub last_reporter: Option<bool>,
    #[serde(default)]
    pub filter_mode: Option<String>,
    #[serde(default)]
    pub sources: Vec<String>,
    /// v3: a state-change retransmission is due in this many ms.
    #[serde(default)]
    pub retransmit_ms: Option<u64>,
}

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

    fn io_error(&self, source: io::Error) -> ClientError {
        let path = self.path.clone();
        match source.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ClientError::Timeout { path },
            _ => ClientError::Io { path, source },
        }
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
    fn requests_are_one_json_object_each() {
        let join = Request::Join {
            group: "239.1.2.3".parse().unwrap(),
            iface: None,
            include: None,
            exclude: None,
        };
        assert_eq!(
            serde_json::to_string(&join).unwrap(),
            r#"{"cmd":"join","group":"239.1.2.3"}"#
        );
        let leave = Request::Leave {
            group: "ff12::1234".parse().unwrap(),
            iface: Some("tun0".into()),
            include: None,
            exclude: None,
        };
        assert_eq!(
            serde_json::to_string(&leave).unwrap(),
            r#"{"cmd":"leave","group":"ff12::1234","iface":"tun0"}"#
        );
        let ssm = Request::Join {
            group: "232.1.1.1".parse().unwrap(),
            iface: None,
            include: Some(vec!["10.0.0.1".parse().unwrap()]),
            exclude: None,
        };
        assert_eq!(
            serde_json::to_string(&ssm).unwrap(),
            r#"{"cmd":"join","group":"232.1.1.1","include":["10.0.0.1"]}"#
        );
        assert_eq!(
            serde_json::to_string(&Request::Show).unwrap(),
            r#"{"cmd":"show"}"#
        );
    }

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
