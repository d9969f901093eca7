//! What the HTTP view answers: the request parsed (httparse), checked and routed; the loop's
//! snapshots rendered as JSON or the Prometheus text.

use std::net::IpAddr;

use control::http_api::{DEFAULT_PAGE, MAX_PAGE};
use control::prometheus;
use control::protocol::StreamsArgs;
use control::streams::MAX_RECEIVER_LIMIT;
use serde::Serialize;

use super::{Query, Refusal, Snapshot, MAX_HEAD};

/// The live page: one file, its script and style inline, nothing fetched from elsewhere.
const PAGE: &str = include_str!("page.html");
/// Headers a request may have.
const MAX_HEADERS: usize = 32;
/// The longest `q` search string.
const MAX_SEARCH: usize = 64;
/// The most (host, group) pairs per list of `/api/delays`.
const MAX_DELAY_LIST: usize = 1000;

/// A request the server can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Route {
    /// The live page, which the server has at hand.
    Page,
    /// What the event loop answers.
    Ask(Query),
}

/// What a request head amounts to so far.
#[derive(Debug)]
pub(super) enum Parsed {
    /// More bytes needed.
    Partial,
    Done {
        route: Route,
        /// HEAD: the response without its body.
        head_only: bool,
    },
    Refused(Refusal),
}

fn refused(status: u16, message: impl Into<String>) -> Parsed {
    Parsed::Refused(Refusal {
        status,
        message: message.into(),
    })
}

/// Parses and checks the request head read so far.
pub(super) fn parse_request(head: &[u8]) -> Parsed {
    if head.len() > MAX_HEAD {
        return refused(413, format!("request head longer than {MAX_HEAD} bytes"));
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Ok(httparse::Status::Complete(_)) => {}
        Err(httparse::Error::TooManyHeaders) => {
            return refused(431, format!("more than {MAX_HEADERS} headers"))
        }
        Err(e) => return refused(400, format!("malformed request: {e}")),
    }
    let method = request.method.unwrap_or_default();
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => {
            return refused(
                405,
                format!("{method}: this view is read-only, only GET and HEAD are answered"),
            )
        }
    };
    for header in request.headers.iter() {
        let body = match header.name.to_ascii_lowercase().as_str() {
            "content-length" => std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .is_none_or(|length| length > 0),
            "transfer-encoding" => true,
            _ => false,
        };
        if body {
            return refused(413, "a request here has no body");
        }
    }
    let target = request.path.unwrap_or("/");
    match route(target) {
        Ok(route) => Parsed::Done { route, head_only },
        Err(refusal) => Parsed::Refused(refusal),
    }
}

/// The query string's parameters, each of `allowed` at most once.
fn parameters(path: &str, query: &str, allowed: &[&str]) -> Result<Vec<(String, String)>, Refusal> {
    let mut found: Vec<(String, String)> = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if !allowed.contains(&key.as_ref()) {
            let takes = if allowed.is_empty() {
                "no parameters".to_string()
            } else {
                allowed.join(", ")
            };
            return Err(Refusal {
                status: 400,
                message: format!("unknown parameter {key:?}: {path} takes {takes}"),
            });
        }
        if found.iter().any(|(k, _)| *k == key) {
            return Err(Refusal {
                status: 400,
                message: format!("parameter {key:?} given twice"),
            });
        }
        found.push((key.into_owned(), value.into_owned()));
    }
    Ok(found)
}

fn bad(message: String) -> Refusal {
    Refusal {
        status: 400,
        message,
    }
}

fn number(key: &str, value: &str, range: std::ops::RangeInclusive<u64>) -> Result<u64, Refusal> {
    value
        .parse::<u64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            bad(format!(
                "{key}={value:?}: a number from {} to {}",
                range.start(),
                range.end()
            ))
        })
}

fn address(key: &str, value: &str) -> Result<IpAddr, Refusal> {
    value
        .trim()
        .parse::<IpAddr>()
        .map_err(|_| bad(format!("{key}={value:?}: not an IPv4 or IPv6 address")))
}

/// `/api/streams`: the `streams` request, bounded as the other pages are (a page of streams
/// unless `stream_limit` says otherwise).
fn streams_route(path: &str, query: &str) -> Result<Route, Refusal> {
    let mut args = StreamsArgs {
        stream_limit: Some(DEFAULT_PAGE),
        ..StreamsArgs::default()
    };
    let allowed = [
        "host",
        "group",
        "iface",
        "offset",
        "limit",
        "stream_offset",
        "stream_limit",
    ];
    let offsets = 0..=u64::from(u32::MAX);
    for (key, value) in parameters(path, query, &allowed)? {
        match key.as_str() {
            "host" => args.host = Some(address(&key, &value)?),
            "group" => args.group = Some(address(&key, &value)?),
            "iface" => args.iface = Some(value),
            "offset" => args.offset = Some(number(&key, &value, offsets.clone())?),
            "limit" => args.limit = Some(number(&key, &value, 1..=MAX_RECEIVER_LIMIT)?),
            "stream_offset" => args.stream_offset = Some(number(&key, &value, offsets.clone())?),
            _ => args.stream_limit = Some(number(&key, &value, 1..=MAX_PAGE)?),
        }
    }
    Ok(Route::Ask(Query::Streams(args)))
}

/// The route of a request target (path and query string).
fn route(target: &str) -> Result<Route, Refusal> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let none = |route: Route| parameters(path, query, &[]).map(|_| route);
    match path {
        "/" | "/index.html" => none(Route::Page),
        "/metrics" => none(Route::Ask(Query::Metrics)),
        "/api/overview" => none(Route::Ask(Query::Overview)),
        "/api/stats" => none(Route::Ask(Query::Stats)),
        "/api/links" => none(Route::Ask(Query::Links)),
        "/api/histograms" => none(Route::Ask(Query::Histograms)),
        "/api/test" => none(Route::Ask(Query::Test)),
        "/api/delays" => {
            let mut limit = 100;
            for (key, value) in parameters(path, query, &["limit"])? {
                if key == "limit" {
                    limit = number(&key, &value, 0..=MAX_DELAY_LIST as u64)? as usize;
                }
            }
            Ok(Route::Ask(Query::Delays { limit }))
        }
        "/api/hosts" => {
            let (mut offset, mut limit, mut search) = (0, DEFAULT_PAGE, None);
            for (key, value) in parameters(path, query, &["offset", "limit", "q"])? {
                match key.as_str() {
                    "offset" => offset = number(&key, &value, 0..=u64::from(u32::MAX))?,
                    "limit" => limit = number(&key, &value, 1..=MAX_PAGE)?,
                    _ => {
                        let text = value.trim().to_lowercase();
                        if text.len() > MAX_SEARCH {
                            return Err(bad(format!("q: at most {MAX_SEARCH} characters")));
                        }
                        search = (!text.is_empty()).then_some(text);
                    }
                }
            }
            Ok(Route::Ask(Query::Hosts {
                offset,
                limit,
                search,
            }))
        }
        "/api/groups" => {
            let (mut offset, mut limit, mut host) = (0, DEFAULT_PAGE, None);
            for (key, value) in parameters(path, query, &["host", "offset", "limit"])? {
                match key.as_str() {
                    "offset" => offset = number(&key, &value, 0..=u64::from(u32::MAX))?,
                    "limit" => limit = number(&key, &value, 1..=MAX_PAGE)?,
                    _ => {
                        let addr = value.trim().parse::<IpAddr>().map_err(|_| {
                            bad(format!("host={value:?}: not an IPv4 or IPv6 address"))
                        })?;
                        host = Some(addr);
                    }
                }
            }
            Ok(Route::Ask(Query::Groups {
                host,
                offset,
                limit,
            }))
        }
        "/api/streams" => streams_route(path, query),
        "/api/stream-flows" => {
            let (mut iface, mut group, mut offset, mut limit) = (None, None, 0, DEFAULT_PAGE);
            for (key, value) in parameters(path, query, &["group", "iface", "offset", "limit"])? {
                match key.as_str() {
                    "group" => group = Some(address(&key, &value)?),
                    "iface" => iface = Some(value),
                    "offset" => offset = number(&key, &value, 0..=u64::from(u32::MAX))?,
                    _ => limit = number(&key, &value, 1..=MAX_PAGE)?,
                }
            }
            Ok(Route::Ask(Query::StreamFlows {
                iface,
                group,
                offset,
                limit,
            }))
        }
        _ => Err(Refusal {
            status: 404,
            message: format!(
                "no such path {path:?}: try /, /metrics, /api/overview, /api/hosts, \
                 /api/groups, /api/links, /api/stats, /api/delays, /api/histograms, /api/test, \
                 /api/streams or /api/stream-flows"
            ),
        }),
    }
}

/// A response, written whole and followed by the end of the connection.
pub(super) struct Response {
    status: u16,
    content_type: &'static str,
    extra_headers: &'static str,
    body: Vec<u8>,
}

impl Response {
    fn json(value: &impl Serialize) -> Response {
        Response {
            status: 200,
            content_type: "application/json",
            extra_headers: "",
            body: serde_json::to_vec(value).expect("API types always serialize"),
        }
    }

    /// The status line, the headers and the body; without the body for a HEAD request (the
    /// headers still say its length).
    pub fn into_bytes(self, head_only: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\
             Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n{}\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len(),
            self.extra_headers,
        )
        .into_bytes();
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// `{"error":"..."}` with the refusal's status.
pub(super) fn error_response(refusal: &Refusal) -> Response {
    #[derive(Serialize)]
    struct Error<'a> {
        error: &'a str,
    }
    Response {
        status: refusal.status,
        extra_headers: if refusal.status == 405 {
            "Allow: GET, HEAD\r\n"
        } else {
            ""
        },
        ..Response::json(&Error {
            error: &refusal.message,
        })
    }
}

impl Route {
    /// What to ask the event loop; `None` for what the server answers alone.
    pub fn query(&self) -> Option<Query> {
        match self {
            Route::Page => None,
            Route::Ask(query) => Some(query.clone()),
        }
    }

    /// The response to a route with no query.
    pub fn static_response(&self) -> Response {
        Response {
            status: 200,
            content_type: "text/html; charset=utf-8",
            // Nothing but this server's own answers: the page works without a network.
            extra_headers: "Content-Security-Policy: default-src 'none'; connect-src 'self'; \
                            script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                            img-src data:\r\n",
            body: PAGE.as_bytes().to_vec(),
        }
    }

    /// The loop's snapshot as this route's response.
    pub fn render(&self, snapshot: Snapshot) -> Response {
        match snapshot {
            Snapshot::Metrics {
                overview,
                stats,
                delays,
                latency,
                test_delays,
            } => {
                let mut text = prometheus::counters(&stats);
                prometheus::gauge(
                    &mut text,
                    "links",
                    "Links (devices) served.",
                    overview.links,
                );
                prometheus::gauge(&mut text, "hosts", "Emulated hosts.", overview.hosts);
                prometheus::gauge(
                    &mut text,
                    "group_records",
                    "Group records of every host (groups joined, and being left).",
                    overview.group_records,
                );
                if delays.measured {
                    prometheus::histogram(
                        &mut text,
                        "join_delay_seconds",
                        "RFC 3918 join delay: first report written to first datagram read, \
                         per (host, group).",
                        &delays.join,
                    );
                    prometheus::histogram(
                        &mut text,
                        "leave_delay_seconds",
                        "RFC 3918 leave delay: leave written to last datagram read, per \
                         (host, group).",
                        &delays.leave,
                    );
                }
                if let Some(delays) = &test_delays {
                    let (join, leave) = &**delays;
                    prometheus::histogram(
                        &mut text,
                        "test_join_delay_seconds",
                        "Test runs' join delays (zap times): the new channel's first report \
                         written to its first datagram read, per zap or RFC 3918 iteration, \
                         every run's.",
                        join,
                    );
                    prometheus::histogram(
                        &mut text,
                        "test_leave_delay_seconds",
                        "Test runs' leave delays: the old channel's leave written to its last \
                         datagram read, per zap or RFC 3918 iteration, every run's.",
                        leave,
                    );
                }
                if !latency.is_empty() {
                    prometheus::labelled_histograms(
                        &mut text,
                        "stream_latency_seconds",
                        "One-way latency of the test streams' datagrams the hosts received, \
                         send to read on the daemon's clock, per link (each counted at its \
                         latency bucket's middle, within 1/16 of its value).",
                        "link",
                        latency.iter().map(|(link, h)| (link.as_str(), h)),
                    );
                }
                Response {
                    status: 200,
                    content_type: "text/plain; version=0.0.4; charset=utf-8",
                    extra_headers: "",
                    body: text.into_bytes(),
                }
            }
            Snapshot::Overview(overview) => Response::json(&overview),
            Snapshot::Stats(stats) => Response::json(&stats),
            Snapshot::Links(links) => Response::json(&links),
            Snapshot::Delays(delays) => Response::json(&delays),
            Snapshot::Histograms(histograms) => Response::json(&histograms),
            Snapshot::Hosts(page) => Response::json(&page),
            Snapshot::Groups(page) => Response::json(&page),
            Snapshot::Test(status) => Response::json(&status),
            Snapshot::Streams(reply) => Response::json(&reply),
            Snapshot::StreamFlows(page) => Response::json(&page),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Parsed {
        parse_request(text.as_bytes())
    }

    fn status(parsed: Parsed) -> u16 {
        match parsed {
            Parsed::Refused(refusal) => refusal.status,
            Parsed::Done { .. } => 200,
            Parsed::Partial => 0,
        }
    }

    #[test]
    fn routes_and_their_parameters() {
        let done = |text: &str| match parse(text) {
            Parsed::Done { route, .. } => route,
            other => panic!("{text:?}: {other:?}"),
        };
        assert_eq!(done("GET / HTTP/1.1\r\n\r\n"), Route::Page);
        assert_eq!(
            done("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Ask(Query::Metrics)
        );
        assert_eq!(
            done("GET /api/hosts?offset=5&limit=20&q=10.99.0.1%31 HTTP/1.1\r\n\r\n"),
            Route::Ask(Query::Hosts {
                offset: 5,
                limit: 20,
                search: Some("10.99.0.11".into())
            })
        );
        assert_eq!(
            done("GET /api/groups?host=fe80::a63:a HTTP/1.0\r\n\r\n"),
            Route::Ask(Query::Groups {
                host: Some("fe80::a63:a".parse().unwrap()),
                offset: 0,
                limit: DEFAULT_PAGE
            })
        );
        assert_eq!(
            done("GET /api/streams?group=232.1.1.1&offset=10&limit=5&iface=tap1 HTTP/1.1\r\n\r\n"),
            Route::Ask(Query::Streams(StreamsArgs {
                host: None,
                group: Some("232.1.1.1".parse().unwrap()),
                iface: Some("tap1".into()),
                limit: Some(5),
                offset: Some(10),
                stream_limit: Some(DEFAULT_PAGE),
                stream_offset: None,
            }))
        );
        assert_eq!(
            done("GET /api/stream-flows?limit=20 HTTP/1.1\r\n\r\n"),
            Route::Ask(Query::StreamFlows {
                iface: None,
                group: None,
                offset: 0,
                limit: 20
            })
        );
        assert!(matches!(
            parse("HEAD /api/stats HTTP/1.1\r\n\r\n"),
            Parsed::Done {
                head_only: true,
                ..
            }
        ));
    }

    #[test]
    fn bad_requests_get_clear_statuses() {
        assert_eq!(status(parse("GET /metrics HTTP/1.1\r\nHost")), 0);
        assert_eq!(status(parse("GET /nope HTTP/1.1\r\n\r\n")), 404);
        assert_eq!(status(parse("POST /api/hosts HTTP/1.1\r\n\r\n")), 405);
        assert_eq!(status(parse("DELETE / HTTP/1.1\r\n\r\n")), 405);
        assert_eq!(
            status(parse("GET / HTTP/1.1\r\nContent-Length: 10485760\r\n\r\n")),
            413
        );
        assert_eq!(
            status(parse("GET /api/hosts?limit=0 HTTP/1.1\r\n\r\n")),
            400
        );
        for bad in [
            "/api/streams?limit=10001",
            "/api/streams?host=nobody",
            "/api/streams?group=1.2.3",
            "/api/streams?rate=1",
            "/api/streams?stream_limit=1001",
            "/api/stream-flows?host=10.0.0.1",
            "/api/stream-flows?limit=0",
        ] {
            let request = format!("GET {bad} HTTP/1.1\r\n\r\n");
            assert_eq!(status(parse(&request)), 400, "{bad}");
        }
        assert_eq!(
            status(parse("GET /api/hosts?limit=1001 HTTP/1.1\r\n\r\n")),
            400
        );
        assert_eq!(
            status(parse("GET /api/hosts?offset=x HTTP/1.1\r\n\r\n")),
            400
        );
        assert_eq!(
            status(parse("GET /api/hosts?bogus=1 HTTP/1.1\r\n\r\n")),
            400
        );
        assert_eq!(
            status(parse("GET /api/groups?host=nope HTTP/1.1\r\n\r\n")),
            400
        );
        assert_eq!(status(parse("GET /metrics?x=1 HTTP/1.1\r\n\r\n")), 400);
        assert_eq!(
            status(parse("GET /api/hosts?limit=1&limit=2 HTTP/1.1\r\n\r\n")),
            400
        );
        assert_eq!(status(parse("\x01\x02 garbage\r\n\r\n")), 400);
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(status(parse(&long)), 413);
        let Parsed::Refused(refusal) = parse("GET /api/hosts?bogus=1 HTTP/1.1\r\n\r\n") else {
            unreachable!()
        };
        assert!(
            refusal.message.contains("offset, limit, q"),
            "{}",
            refusal.message
        );
    }

    #[test]
    fn responses_say_their_length_and_close() {
        let text = String::from_utf8(
            error_response(&Refusal {
                status: 405,
                message: "no".into(),
            })
            .into_bytes(false),
        )
        .unwrap();
        assert!(
            text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{text}"
        );
        assert!(text.contains("Allow: GET, HEAD\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.ends_with("\r\n\r\n{\"error\":\"no\"}"));
        assert!(text.contains("Content-Length: 14\r\n"));
    }
}
