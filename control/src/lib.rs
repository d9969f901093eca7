//! The tunmcastd control protocol, defined once for the daemon (`stack`) and its clients
//! (`tools`).
//!
//! The daemon listens on a Unix stream socket and speaks one JSON object per line in each
//! direction: a request ([`protocol::Request`]) such as `{"cmd":"join","group":"239.1.2.3"}`
//! gets a reply in the one envelope [`Reply`]: `{"ok":true,...}` or
//! `{"ok":false,"error":"..."}`. A `listen` request turns into a listener socket whose wire
//! format is [`listen`]. The read-only HTTP view serves [`http_api`] pages and
//! [`prometheus`] text.

pub mod http_api;
pub mod listen;
pub mod prometheus;
pub mod protocol;
mod reply;
pub mod stream_header;
pub mod streams;
pub mod test_capacity;
pub mod test_file;
pub mod test_traffic;
pub mod testrun;

pub use protocol::Request;

/// The 1-based line of byte `offset` in `text`: where a configuration or test file's error is,
/// for the daemon's reader and the client's alike.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
pub use reply::Reply;
