//! The WebSocket handshakes for MQTT: the HTTP upgrade with the `mqtt` subprotocol.
//!
//! MQTT over WebSocket (MQTT 3.1.1, section 6) sends MQTT packets in binary frames,
//! and the client asks for the subprotocol `mqtt` (old clients: `mqttv3.1`) in its
//! `Sec-WebSocket-Protocol` header; the server must answer with the one it chose.

use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::handshake::{HandshakeError, HandshakeRole};
use tungstenite::http::{HeaderValue, StatusCode};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::WebSocket;

use super::Error;

/// The subprotocols a server accepts, in order of preference.
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];

/// Frame and message limits: MQTT packets are limited by the broker's own maximum
/// packet size, so WebSocket only has to stop absurd frames early.
pub(crate) fn config(max_message_size: usize) -> WebSocketConfig {
    WebSocketConfig {
        max_message_size: Some(max_message_size),
        max_frame_size: Some(max_message_size),
        ..WebSocketConfig::default()
    }
}

fn refuse(status: StatusCode, why: &str) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(format!("{why}\n")));
    *response.status_mut() = status;
    response
}

// The refusal type is tungstenite's, as its callback signature requires.
#[allow(clippy::result_large_err)]
/// Server side: reads the upgrade request, checks path and subprotocol, answers.
pub(crate) fn accept<S: Read + Write>(
    stream: S,
    path: Option<&str>,
    max_message_size: usize,
    timeout: Duration,
) -> Result<WebSocket<S>, Error> {
    let check = |request: &Request, mut response: Response| {
        if let Some(path) = path.filter(|path| request.uri().path() != *path) {
            return Err(refuse(
                StatusCode::NOT_FOUND,
                &format!("MQTT over WebSocket is served at {path}"),
            ));
        }
        let offered = request
            .headers()
            .get_all("Sec-WebSocket-Protocol")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        let Some(chosen) = SUBPROTOCOLS.iter().find(|p| offered.contains(p)) else {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "MQTT over WebSocket needs the 'mqtt' subprotocol (Sec-WebSocket-Protocol: mqtt)",
            ));
        };
        response
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(chosen));
        Ok(response)
    };
    tungstenite::accept_hdr_with_config(stream, check, Some(config(max_message_size)))
        .map_err(|error| handshake_error(error, timeout, Error::WebSocketNotUpgraded))
}

/// The answer to a request that is not a WebSocket upgrade at all: tungstenite gives
/// up on those without a word, and a browser or curl deserves to hear why.
pub(crate) const NOT_AN_UPGRADE: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
    Content-Type: text/plain\r\nConnection: close\r\nContent-Length: 56\r\n\r\n\
    This port speaks MQTT over WebSocket (subprotocol mqtt)\n";

/// Client side: sends the upgrade request for `url` with the `mqtt` subprotocol and
/// any extra headers, and checks the answer.
pub(crate) fn connect<S: Read + Write>(
    stream: S,
    url: &str,
    extra_headers: &[(String, String)],
    max_message_size: usize,
    timeout: Duration,
) -> Result<WebSocket<S>, Error> {
    use tungstenite::client::IntoClientRequest;

    let mut request = url
        .into_client_request()
        .map_err(|e| Error::WebSocketHandshake(e.to_string()))?;
    let headers = request.headers_mut();
    headers.insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
    for (name, value) in extra_headers {
        let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::WebSocketHandshake(format!("invalid header name '{name}'")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| Error::WebSocketHandshake(format!("invalid value for header '{name}'")))?;
        headers.insert(name, value);
    }
    let (socket, response) =
        tungstenite::client::client_with_config(request, stream, Some(config(max_message_size)))
            .map_err(|error| handshake_error(error, timeout, Error::WebSocketHandshake))?;
    let agreed = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok());
    if agreed != Some("mqtt") {
        return Err(Error::WebSocketHandshake(format!(
            "server answered subprotocol {agreed:?}, expected \"mqtt\""
        )));
    }
    Ok(socket)
}

/// Turns tungstenite's handshake failure into ours. On a blocking socket a read
/// "would block" only when its timeout fires, so that is a timeout; an HTTP answer
/// is a refusal; anything else is described by `other`.
fn handshake_error<R: HandshakeRole>(
    error: HandshakeError<R>,
    timeout: Duration,
    other: impl FnOnce(String) -> Error,
) -> Error {
    match error {
        HandshakeError::Interrupted(_) => Error::HandshakeTimeout(timeout),
        HandshakeError::Failure(tungstenite::Error::Io(e))
            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
        {
            Error::HandshakeTimeout(timeout)
        }
        HandshakeError::Failure(tungstenite::Error::Http(response)) => {
            Error::WebSocketHandshake(format!("refused with HTTP {}", response.status()))
        }
        error => other(error.to_string()),
    }
}
