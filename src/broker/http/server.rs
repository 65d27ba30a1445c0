//! Just enough HTTP/1.1 to answer one request per connection, with every wait and
//! every size bounded.
//!
//! A request is its head only: the request line and the headers, at most
//! [`MAX_HEAD`] bytes, all of which must arrive before a deadline however the
//! client dribbles them. A request that carries a body is refused (nothing here
//! takes one). Every response closes the connection, so there is no keep-alive
//! state to bound: a browser opens a new connection for each request, which for a
//! page that asks once a second costs nothing worth keeping state for.

use std::fmt;
use std::io::{self, Read};
use std::time::Instant;

/// The most bytes a request line and its headers may take: 8 KiB, as many servers
/// allow by default. Browsers send far less; more is refused with 431.
pub(crate) const MAX_HEAD: usize = 8 * 1024;

/// The most headers a request may have.
const MAX_HEADERS: usize = 64;

/// A request as the handlers see it.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) method: Method,
    /// The path, without the query string.
    pub(crate) path: String,
    /// Header names in lower case, values trimmed.
    pub(crate) headers: Vec<(String, String)>,
}

impl Request {
    /// The first value of header `name` (lower case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The methods served; every other is answered 405.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    /// As GET, without the body.
    Head,
}

/// Why a request could not be read, each with the status it is answered with.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    /// The client closed the connection before a whole request; nobody to answer.
    #[error("connection closed before a complete request")]
    Closed,
    /// The head did not arrive in time (silent or dribbling client): 408.
    #[error("no complete request in time")]
    Timeout,
    /// The head is larger than [`MAX_HEAD`], or has too many headers: 431.
    #[error("request head larger than {MAX_HEAD} bytes or {MAX_HEADERS} headers")]
    TooLarge,
    /// Not HTTP: 400.
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// A method other than GET or HEAD: 405.
    #[error("method {0:?} not allowed")]
    Method(String),
    /// HTTP/2 or some other version: 505.
    #[error("HTTP version {0:?} not supported")]
    Version(String),
    /// The request has a body: 413.
    #[error("requests here carry no body")]
    Body,
    /// The socket failed.
    #[error("reading the request: {0}")]
    Io(#[from] io::Error),
}

impl RequestError {
    /// The response the client gets, if any.
    pub(crate) fn response(&self) -> Option<Response> {
        let (status, text) = match self {
            RequestError::Closed | RequestError::Io(_) => return None,
            RequestError::Timeout => (Status::REQUEST_TIMEOUT, "No complete request in time.\n"),
            RequestError::TooLarge => (
                Status::HEADERS_TOO_LARGE,
                "Request line and headers must fit in 8 KiB.\n",
            ),
            RequestError::Malformed(_) => (Status::BAD_REQUEST, "Malformed HTTP request.\n"),
            RequestError::Method(_) => {
                return Some(
                    Response::text(
                        Status::METHOD_NOT_ALLOWED,
                        "Only GET and HEAD are served.\n",
                    )
                    .header("Allow", "GET, HEAD"),
                )
            }
            RequestError::Version(_) => (
                Status::VERSION_NOT_SUPPORTED,
                "Only HTTP/1.0 and HTTP/1.1 are served.\n",
            ),
            RequestError::Body => (Status::CONTENT_TOO_LARGE, "Requests here carry no body.\n"),
        };
        Some(Response::text(status, text))
    }
}

/// Reads one request head from `reader`, all of it by `deadline`.
///
/// `set_timeout` bounds each read by the time left, so that a client that sends
/// nothing, or a byte now and then, is cut off at the deadline all the same.
pub(crate) fn read_request(
    reader: &mut impl Read,
    deadline: Instant,
    mut set_timeout: impl FnMut(std::time::Duration) -> io::Result<()>,
) -> Result<Request, RequestError> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let end = loop {
        if let Some(end) = head_end(&head) {
            break end;
        }
        if head.len() >= MAX_HEAD {
            return Err(RequestError::TooLarge);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(RequestError::Timeout);
        }
        set_timeout(left)?;
        // Never read past the limit, so a flood costs no more than MAX_HEAD.
        let room = (MAX_HEAD - head.len()).min(chunk.len());
        match reader.read(&mut chunk[..room]) {
            Ok(0) => return Err(RequestError::Closed),
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(RequestError::Timeout)
            }
            Err(e) => return Err(e.into()),
        }
    };
    parse_head(&head[..end])
}

/// Where the head ends (the empty line), if it has arrived. Bare `\n` line ends
/// are accepted, as RFC 9112 allows.
fn head_end(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(nl) = bytes[at..].iter().position(|&b| b == b'\n') {
        let line_end = at + nl;
        let line = &bytes[at..line_end];
        if line.is_empty() || line == b"\r" {
            // An empty line before any request line is tolerated (RFC 9112 2.2).
            if at > 0 && bytes[..at].iter().any(|b| !b.is_ascii_whitespace()) {
                return Some(at);
            }
        }
        at = line_end + 1;
    }
    None
}

/// Parses the request line and headers.
pub(crate) fn parse_head(head: &[u8]) -> Result<Request, RequestError> {
    let text = std::str::from_utf8(head).map_err(|_| RequestError::Malformed("not UTF-8"))?;
    let mut lines = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .skip_while(|l| l.is_empty());
    let request_line = lines
        .next()
        .ok_or(RequestError::Malformed("no request line"))?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(RequestError::Malformed(
            "request line is not METHOD TARGET VERSION",
        ));
    };
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(RequestError::Malformed("method is not a token"));
    }
    if !version.starts_with("HTTP/") {
        return Err(RequestError::Malformed("no HTTP version"));
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(RequestError::Version(truncated(version)));
    }
    if !target.starts_with('/') || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(RequestError::Malformed("target is not an absolute path"));
    }
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(RequestError::TooLarge);
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(RequestError::Malformed("header line without a colon"))?;
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(RequestError::Malformed("header name is not a token"));
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let request = Request {
        method: match method {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            other => return Err(RequestError::Method(truncated(other))),
        },
        path: target.split(['?', '#']).next().unwrap_or("/").to_string(),
        headers,
    };
    let has_body = request.header("transfer-encoding").is_some()
        || request
            .header("content-length")
            .is_some_and(|length| length != "0");
    if has_body {
        return Err(RequestError::Body);
    }
    Ok(request)
}

/// A token character of RFC 9110 5.6.2.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// At most 32 characters of what a client sent, for a log line.
fn truncated(text: &str) -> String {
    text.chars().take(32).collect()
}

/// An HTTP status code and its reason phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Status(pub(crate) u16, pub(crate) &'static str);

impl Status {
    pub(crate) const OK: Status = Status(200, "OK");
    pub(crate) const BAD_REQUEST: Status = Status(400, "Bad Request");
    pub(crate) const UNAUTHORIZED: Status = Status(401, "Unauthorized");
    pub(crate) const NOT_FOUND: Status = Status(404, "Not Found");
    pub(crate) const METHOD_NOT_ALLOWED: Status = Status(405, "Method Not Allowed");
    pub(crate) const REQUEST_TIMEOUT: Status = Status(408, "Request Timeout");
    pub(crate) const CONTENT_TOO_LARGE: Status = Status(413, "Content Too Large");
    pub(crate) const HEADERS_TOO_LARGE: Status = Status(431, "Request Header Fields Too Large");
    pub(crate) const SERVICE_UNAVAILABLE: Status = Status(503, "Service Unavailable");
    pub(crate) const VERSION_NOT_SUPPORTED: Status = Status(505, "HTTP Version Not Supported");
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.0, self.1)
    }
}

/// A whole response, written in one go.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: Status,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Response {
    /// A response with `body` of `content_type`.
    pub(crate) fn new(status: Status, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", content_type.to_string())],
            body: body.into(),
        }
    }

    /// A plain-text response.
    pub(crate) fn text(status: Status, body: &str) -> Response {
        Response::new(status, "text/plain; charset=utf-8", body)
    }

    /// Adds a header.
    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// The bytes on the wire: the body is left out for HEAD, its length is not.
    pub(crate) fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {}\r\n", self.status);
        for (name, value) in &self.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str(&format!(
            "Content-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
             Connection: close\r\n\r\n",
            self.body.len()
        ));
        let mut bytes = out.into_bytes();
        if !head_only {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn read(bytes: &[u8]) -> Result<Request, RequestError> {
        read_request(
            &mut &bytes[..],
            Instant::now() + Duration::from_secs(5),
            |_| Ok(()),
        )
    }

    #[test]
    fn a_get_with_headers_and_a_query_is_read() {
        let request =
            read(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAuthorization:  Basic eA== \r\n\r\n")
                .unwrap();
        assert_eq!(request.method, Method::Get);
        assert_eq!(request.path, "/metrics");
        assert_eq!(request.header("host"), Some("a"));
        assert_eq!(request.header("authorization"), Some("Basic eA=="));
    }

    #[test]
    fn bare_line_feeds_end_lines_too() {
        let request = read(b"HEAD / HTTP/1.0\nHost: a\n\n").unwrap();
        assert_eq!(request.method, Method::Head);
    }

    #[test]
    fn bad_heads_are_refused_with_their_reason() {
        let cases: [(&[u8], u16); 8] = [
            (b"POST / HTTP/1.1\r\n\r\n", 405),
            (b"GET / HTTP/2.0\r\n\r\n", 505),
            (b"GET / FTP/1.1\r\n\r\n", 400),
            (b"GET /\r\n\r\n", 400),
            (b"GET http://x/ HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\n", 413),
            (b"\xff / HTTP/1.1\r\n\r\n", 400),
        ];
        for (head, status) in cases {
            let error = read(head).unwrap_err();
            assert_eq!(
                error.response().unwrap().status.0,
                status,
                "{:?}: {error}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn a_head_over_the_limit_is_refused_without_reading_on() {
        let mut head = b"GET / HTTP/1.1\r\nX: ".to_vec();
        head.resize(MAX_HEAD * 4, b'a');
        assert!(matches!(read(&head), Err(RequestError::TooLarge)));
    }

    #[test]
    fn an_unfinished_head_at_the_end_of_the_stream_is_closed() {
        assert!(matches!(
            read(b"GET / HTTP/1.1\r\nHost"),
            Err(RequestError::Closed)
        ));
    }

    proptest::proptest! {
        /// Whatever a client sends, reading it ends in a request or an error with
        /// an answer, never a panic, and never reads past the limit.
        #[test]
        fn any_bytes_are_read_without_panicking(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
            prefix in proptest::sample::select(vec![&b""[..], b"GET / HTTP/1.1\r\n", b"GET /x"]),
        ) {
            let mut input = prefix.to_vec();
            input.extend_from_slice(&bytes);
            input.extend_from_slice(b"\r\n\r\n");
            match read(&input) {
                Ok(request) => proptest::prop_assert!(request.path.starts_with('/')),
                Err(RequestError::Closed) => {}
                Err(error) => proptest::prop_assert!(error.response().is_some()),
            }
        }
    }

    #[test]
    fn head_responses_keep_the_length_and_drop_the_body() {
        let response = Response::text(Status::OK, "ok\n");
        let bytes = String::from_utf8(response.to_bytes(true)).unwrap();
        assert!(bytes.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(bytes.contains("Content-Length: 3\r\n"));
        assert!(bytes.ends_with("\r\n\r\n"));
    }
}
