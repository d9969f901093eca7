//! HTTP/1.1 from inside a namespace, on plain sockets: what a scraper, a browser's fetch or an
//! abusive client sends to tunmcastd's `--http` view.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

use crate::Netns;

/// How long a request may take, from connect to the end of the response.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A response read to the end of the connection.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// The header lines, as sent.
    pub head: String,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }
}

/// Parses a whole response; `None` if it is not one.
pub fn parse_response(bytes: &[u8]) -> Option<HttpResponse> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some(HttpResponse {
        status,
        head,
        body: bytes[end + 4..].to_vec(),
    })
}

/// What a client sending `request` got: the response if one came, and whether every byte of
/// the request was taken before the server closed.
#[derive(Debug)]
pub struct Exchange {
    pub response: Option<HttpResponse>,
    pub sent_all: bool,
}

fn exchange(addr: SocketAddr, request: &[u8]) -> Result<Exchange, String> {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(TIMEOUT)).ok();
    stream.set_write_timeout(Some(TIMEOUT)).ok();
    let sent_all = stream.write_all(request).is_ok();
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes); // a reset after the response keeps what came
    Ok(Exchange {
        response: parse_response(&bytes),
        sent_all,
    })
}

impl Netns {
    /// `GET path` from inside the namespace; fails the test if no response comes.
    pub fn http_get(&self, addr: SocketAddr, path: &str) -> HttpResponse {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        let result = self.http_send(addr, request.into_bytes());
        result
            .response
            .unwrap_or_else(|| panic!("no HTTP response to GET {path}"))
    }

    /// Sends `request` as it is from inside the namespace and reads what comes back.
    pub fn http_send(&self, addr: SocketAddr, request: Vec<u8>) -> Exchange {
        self.in_netns(move || exchange(addr, &request))
    }

    /// `n` connections to `addr` from inside the namespace, left idle (they stay in the
    /// namespace after the thread that made them is gone).
    pub fn tcp_connections(&self, addr: SocketAddr, n: usize) -> Vec<TcpStream> {
        self.in_netns(move || {
            (0..n)
                .map(|_| TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| e.to_string()))
                .collect()
        })
    }
}
