//! Errors of the client.
//!
//! One enum for everything a [`Client`](super::Client) call can fail with. Each variant
//! says when it happens and, where one exists, which setting of
//! [`ClientOptions`](super::ClientOptions) controls it.

use std::fmt;
use std::io;

use crate::protocol::{
    ConnectReturnCode, DecodeError, EncodeError, PacketType, ReasonCode, TopicError,
};

/// Which wait of the client ran out of time.
///
/// Carried by [`Error::Timeout`], so that "timed out" always says what was being
/// waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Wait {
    /// Opening the TCP connection ([`ClientOptions::with_connect_timeout`](super::ClientOptions::with_connect_timeout)).
    TcpConnect,
    /// The broker's CONNACK after our CONNECT ([`ClientOptions::with_connect_timeout`](super::ClientOptions::with_connect_timeout)).
    ConnAck,
    /// The PUBACK that completes a QoS 1 publish ([`ClientOptions::with_operation_timeout`](super::ClientOptions::with_operation_timeout)).
    PubAck,
    /// The PUBCOMP that completes a QoS 2 publish ([`ClientOptions::with_operation_timeout`](super::ClientOptions::with_operation_timeout)).
    PubComp,
    /// The SUBACK answering a SUBSCRIBE ([`ClientOptions::with_operation_timeout`](super::ClientOptions::with_operation_timeout)).
    SubAck,
    /// The UNSUBACK answering an UNSUBSCRIBE ([`ClientOptions::with_operation_timeout`](super::ClientOptions::with_operation_timeout)).
    UnsubAck,
    /// Room in the client's queue of requests, or in its inflight window
    /// ([`ClientOptions::with_max_inflight`](super::ClientOptions::with_max_inflight)), for a
    /// new request ([`ClientOptions::with_operation_timeout`](super::ClientOptions::with_operation_timeout)).
    Queue,
    /// The PINGRESP answering a keep-alive PINGREQ
    /// ([`ClientOptions::with_pingresp_timeout`](super::ClientOptions::with_pingresp_timeout)); when it does
    /// not come the connection is considered dead.
    PingResp,
    /// The connection thread's goodbye after DISCONNECT
    /// ([`ClientOptions::with_operation_timeout`](super::ClientOptions::with_operation_timeout)).
    Disconnect,
    /// The response to a [`Client::request`](super::Client::request), within the
    /// timeout the call gave.
    Response,
    /// The broker's AUTH that ends an MQTT 5 re-authentication
    /// ([`Client::reauthenticate`](super::Client::reauthenticate),
    /// [`ClientOptions::with_operation_timeout`](super::ClientOptions::with_operation_timeout)).
    Auth,
}

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Wait::TcpConnect => "opening the TCP connection",
            Wait::ConnAck => "the broker's CONNACK",
            Wait::PubAck => "the broker's PUBACK",
            Wait::PubComp => "the broker's PUBCOMP",
            Wait::SubAck => "the broker's SUBACK",
            Wait::UnsubAck => "the broker's UNSUBACK",
            Wait::Queue => "room in the client's request queue or inflight window",
            Wait::PingResp => "the broker's PINGRESP",
            Wait::Disconnect => "the connection thread to finish DISCONNECT",
            Wait::Response => "the response to a request",
            Wait::Auth => "the broker's AUTH ending re-authentication",
        })
    }
}

/// Everything that can go wrong in the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL could not be parsed, or does not describe an MQTT broker.
    #[error("invalid broker URL '{url}': {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The options contradict each other or MQTT (for instance a persistent session
    /// without a client id, [MQTT-3.1.3-7]).
    #[error("invalid client options: {0}")]
    InvalidOptions(String),
    /// A topic name given to `publish`, or a filter given to `subscribe`, breaks the
    /// topic rules of MQTT.
    #[error("invalid topic '{topic}': {error}")]
    InvalidTopic {
        /// The topic or filter as given.
        topic: String,
        /// Which rule it breaks.
        error: TopicError,
    },
    /// The broker could not be reached or the connection broke.
    #[error("connection to {address} failed: {source}")]
    Io {
        /// Where the client was connecting, or was connected.
        address: String,
        /// What the operating system said.
        source: io::Error,
    },
    /// The TLS handshake or WebSocket upgrade failed: an untrusted certificate, a
    /// wrong host name, a path the server does not serve, ...
    #[error("connection to {address} failed: {source}")]
    Transport {
        /// Where the client was connecting.
        address: String,
        /// What went wrong, from the transport layer.
        source: crate::transport::Error,
    },
    /// The broker answered CONNECT with a refusal: "not authorised", "bad user name
    /// or password", ... Over MQTT 3.1.1 `code` is the reason code of the 3.1.1
    /// return code ([`ConnectReturnCode::reason_code`]; the return code itself is
    /// [`ConnectReturnCode::from_reason`] of it).
    #[error("{}", refusal_text(*.code, .reason.as_deref()))]
    ConnectionRefused {
        /// The CONNACK's reason code: 0x86 bad user name or password, 0x87 not
        /// authorized, 0x8A banned, 0x84 unsupported protocol version ...
        code: ReasonCode,
        /// MQTT 5: the broker's Reason String, if it sent one.
        reason: Option<String>,
    },
    /// MQTT 5: the broker ended the connection with a DISCONNECT and this reason
    /// (0x8E session taken over, 0x8B server shutting down, 0x93 receive maximum
    /// exceeded ...). The client reconnects as after any lost connection.
    #[error("the broker closed the connection: {code}{}", .reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    DisconnectedByBroker {
        /// The DISCONNECT's reason code.
        code: ReasonCode,
        /// Its Reason String, if the broker sent one.
        reason: Option<String>,
    },
    /// MQTT 5 enhanced authentication failed on this side: no
    /// [`Authenticator`](super::Authenticator) for the broker's challenge, the
    /// authenticator's own error, or an exchange that does not end.
    #[error("authentication failed: {0}")]
    Authentication(String),
    /// MQTT 5: the broker refused a QoS 1/2 message, with this reason code in its
    /// PUBACK or PUBREC: 0x87 not authorized, 0x97 quota exceeded, 0x99 payload
    /// format invalid ... (0x10 "no matching subscribers" is not a refusal). A
    /// message the broker said it would refuse (a QoS above its Maximum QoS: 0x9B;
    /// RETAIN where it has no retained messages: 0x9A) is refused the same way
    /// before it is sent.
    #[error("the broker refused the message: {0}")]
    PublishRefused(ReasonCode),
    /// The message is larger than the broker takes (the Maximum Packet Size of its
    /// MQTT 5 CONNACK); it was not sent.
    #[error("the message is {size} bytes as a packet, more than the broker's maximum of {max}")]
    PacketTooLarge {
        /// The PUBLISH packet's size in bytes.
        size: usize,
        /// The most the broker takes.
        max: usize,
    },
    /// A wait ran out of time; the variant of [`Wait`] says which.
    #[error("timed out waiting for {0}")]
    Timeout(Wait),
    /// The client is not connected at the moment (it may be reconnecting), and the
    /// call cannot wait for it: a QoS 0 publish, or any call after the connection
    /// was lost for good.
    #[error("not connected to the broker{}", .0.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    Disconnected(Option<String>),
    /// [`Client::disconnect`](super::Client::disconnect) was called, on this handle or a
    /// clone of it. A [`Subscription`](super::Subscription) or
    /// [`Messages`](super::Messages) also says so once its client is gone for good,
    /// disconnected or its connection lost without reconnecting.
    #[error("the client has been disconnected")]
    Closed,
    /// The broker refused a subscription: SUBACK return code 0x80, or an MQTT 5
    /// reason code (0x87 not authorized, 0x97 quota exceeded, 0x9E shared
    /// subscriptions not supported ...).
    #[error("the broker refused the subscription to '{filter}': {code}")]
    SubscriptionRefused {
        /// The filter refused (the first, when several were).
        filter: String,
        /// Its code in the SUBACK (0x80 over MQTT 3.1.1).
        code: ReasonCode,
    },
    /// The broker sent bytes that are not valid MQTT; the connection was closed.
    #[error("the broker broke the protocol: {0}")]
    Protocol(#[from] DecodeError),
    /// The broker sent a valid packet that makes no sense at this point.
    #[error("the broker sent an unexpected {0}")]
    UnexpectedPacket(PacketType),
    /// A packet could not be encoded (a payload over 256 MiB, a field over 64 KiB).
    #[error("cannot encode the packet: {0}")]
    Encode(#[from] EncodeError),
    /// The payload of a message is not UTF-8 ([`Message::payload_str`](super::Message::payload_str)).
    #[error("the payload of the message on '{topic}' is not UTF-8: {source}")]
    PayloadNotUtf8 {
        /// Where the message was published.
        topic: String,
        /// Where the first invalid byte is.
        source: std::str::Utf8Error,
    },
    /// A payload could not be turned into or read as JSON.
    #[error("JSON payload{}: {source}", .topic.as_deref().map(|t| format!(" on '{t}'")).unwrap_or_default())]
    Json {
        /// Where the message was published, when reading one.
        topic: Option<String>,
        /// What serde_json said.
        source: serde_json::Error,
    },
}

impl Error {
    pub(crate) fn io(address: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            address: address.into(),
            source,
        }
    }

    pub(crate) fn topic(topic: &str, error: TopicError) -> Error {
        Error::InvalidTopic {
            topic: topic.to_owned(),
            error,
        }
    }

    /// What a call made after the connection was lost for good, for this reason,
    /// fails with: the broker's DISCONNECT as itself, so that its reason code can
    /// be matched; anything else as [`Error::Disconnected`] with the reason.
    pub(crate) fn lost_for_good(&self) -> Error {
        match self {
            Error::DisconnectedByBroker { .. } => self.duplicate(),
            other => Error::Disconnected(Some(other.to_string())),
        }
    }

    /// A copy of this error for a second waiter (the `io::Error` and `serde_json`
    /// sources are not `Clone`, so they are carried as text).
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Io { address, source } => Error::Io {
                address: address.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            Error::ConnectionRefused { code, reason } => Error::ConnectionRefused {
                code: *code,
                reason: reason.clone(),
            },
            Error::DisconnectedByBroker { code, reason } => Error::DisconnectedByBroker {
                code: *code,
                reason: reason.clone(),
            },
            Error::Timeout(wait) => Error::Timeout(*wait),
            Error::Disconnected(reason) => Error::Disconnected(reason.clone()),
            Error::Closed => Error::Closed,
            Error::Protocol(e) => Error::Protocol(e.clone()),
            Error::UnexpectedPacket(p) => Error::UnexpectedPacket(*p),
            Error::Encode(e) => Error::Encode(e.clone()),
            other => Error::Disconnected(Some(other.to_string())),
        }
    }
}

/// A refused CONNECT in mosquitto's words: its 3.1.1 text where the code is one
/// of 3.1.1's (`Connection Refused: not authorised.`), else the MQTT 5 reason and
/// the broker's Reason String.
fn refusal_text(code: ReasonCode, reason: Option<&str>) -> String {
    let return_code = ConnectReturnCode::from_reason(code);
    let mut text = if return_code.reason_code() == code {
        return_code.to_string()
    } else {
        format!("Connection Refused: {code}.")
    };
    if let Some(reason) = reason {
        text.push_str(&format!(" The broker says: {reason}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: ReasonCode) -> Error {
        Error::ConnectionRefused { code, reason: None }
    }

    #[test]
    fn a_refusal_reads_like_mosquittos() {
        let error = refused(ConnectReturnCode::BadUserNameOrPassword.reason_code());
        assert_eq!(
            error.to_string(),
            "Connection Refused: bad user name or password."
        );
        let error = refused(ConnectReturnCode::NotAuthorized.reason_code());
        assert_eq!(error.to_string(), "Connection Refused: not authorised.");
        let error = Error::ConnectionRefused {
            code: ReasonCode::BANNED,
            reason: Some("too many attempts".into()),
        };
        assert_eq!(
            error.to_string(),
            "Connection Refused: Banned (0x8A). The broker says: too many attempts"
        );
    }

    #[test]
    fn a_timeout_names_its_wait() {
        assert_eq!(
            Error::Timeout(Wait::PubAck).to_string(),
            "timed out waiting for the broker's PUBACK"
        );
    }
}
