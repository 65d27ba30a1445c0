//! Connecting to the broker from the shared options, and reporting a failure the
//! way mosquitto's tools do, with the same exit code.
//!
//! | failure | stderr | exit |
//! |---|---|---|
//! | the broker refused (CONNACK ≠ 0) | `Connection error: Connection Refused: not authorised.` | the CONNACK code |
//! | nothing listens | `Error: Connection refused` | 1 |
//! | unknown host | `Unable to connect (Lookup error.).` | 1 |

use std::io;
use std::time::Duration;

use wren::client::{Client, ClientOptions, Error, Reconnect, Will};
use wren::protocol::{Properties, ProtocolVersion, ReasonCode, MAX_REMAINING_LENGTH};
use wren::transport::ClientTls;

use super::cli::{to_properties, ConnectArgs};
use super::exit::{self, Reporter};

/// The client options `args` describe; `reconnect` is the tool's own choice, which
/// a `--config` file may override.
pub fn client_options(args: &ConnectArgs, reconnect: Reconnect) -> ClientOptions {
    let kind = args.effective_scheme();
    let mut options =
        ClientOptions::new(args.host.clone(), args.effective_port()).with_transport(kind);
    if let Some(path) = &args.websocket_path {
        options = options.with_websocket_path(path.as_str());
    }
    if kind.is_tls() {
        options = options.with_tls(ClientTls {
            ca_file: args.tls.ca_file.clone(),
            ca_data: args.tls.ca_data.clone(),
            client_cert: args.tls.cert.clone().zip(args.tls.key.clone()),
            insecure: args.tls.insecure,
            ..ClientTls::default()
        });
        if let Some(version) = args.tls.min_version {
            options = options.with_tls_min_version(version);
        }
    }
    options = options
        .with_client_id(args.effective_client_id())
        .with_clean_session(args.clean_session)
        .with_keep_alive(Duration::from_secs(u64::from(args.keep_alive)))
        .with_protocol(args.protocol)
        .with_max_inflight(u16::try_from(args.max_inflight).unwrap_or(u16::MAX))
        .with_reconnect(args.reconnect.unwrap_or(reconnect));
    if args.protocol == ProtocolVersion::V5 {
        // mosquitto's session expiry: -x, or for ever with -c, else 0 (the
        // property is in the CONNECT properties when it is not 0).
        let expiry = args.session_expiry.unwrap_or(0);
        options = options.with_session_expiry(Duration::from_secs(u64::from(expiry)));
    }
    match (&args.username, &args.password) {
        (Some(username), Some(password)) => {
            options = options.with_credentials(username.clone(), password.clone());
        }
        (Some(username), None) => options = options.with_username(username.clone()),
        // MQTT 5 allows a password alone; over 3.1.1 it is refused before
        // connecting (see `connect`).
        (None, Some(password)) => options = options.with_password(password.clone()),
        (None, None) => {}
    }
    let v5 = args.protocol == ProtocolVersion::V5;
    if let Some(topic) = &args.will.topic {
        let mut will = Will::new(
            topic.as_str(),
            args.will.payload.clone().unwrap_or_default(),
            args.will.qos,
            args.will.retain,
        );
        if v5 {
            will = will.with_properties(to_properties(&args.properties.will));
        }
        options = options.with_will(will);
    }
    if v5 {
        // As libmosquitto: no Maximum Packet Size unless -D gives one, and a
        // Receive Maximum of 20.
        options = options
            .with_max_packet_size(MAX_REMAINING_LENGTH + 5)
            .with_receive_maximum(args.receive_maximum)
            .with_connect_properties(to_properties(&args.properties.connect));
        if args.properties.publish.iter().any(|p| p.id == TOPIC_ALIAS) {
            // `-D publish topic-alias N`: the first message carries the topic and
            // an alias, later ones the alias alone, as with mosquitto_pub. The
            // client chooses the alias number (within the broker's maximum).
            options = options.with_outgoing_topic_aliases(true);
        }
    }
    options
}

/// Connects, or reports why not and returns the exit code to leave with.
/// `refused_note` is printed after the refusal itself, if given (only wren-pub,
/// as only mosquitto_pub, gives one).
pub fn connect(
    args: &ConnectArgs,
    reconnect: Reconnect,
    refused_note: Option<&str>,
    report: &Reporter,
) -> Result<Client, u8> {
    if !args.clean_session && args.effective_client_id().is_empty() {
        // MQTT 5 with -c and -x 0 but no -i: mosquitto's library refuses it, and
        // each tool says so in its own words.
        report.error(match refused_note {
            Some(_) => "Error: Invalid id.\n",
            None => "Error: Invalid id and/or clean_session.\n",
        });
        return Err(exit::FAILURE);
    }
    if args.protocol != ProtocolVersion::V5 {
        // Properties and then -V 3.x: mosquitto's library cannot send them.
        if args.will.topic.is_some() && !args.properties.will.is_empty() {
            report.error("Error: Problem setting will.\n");
            return Err(exit::FAILURE);
        }
        if !args.properties.connect.is_empty() {
            report.error("Unable to connect (This feature is not supported.).\n");
            return Err(exit::FAILURE);
        }
    }
    if args.password.is_some() && args.username.is_none() && args.protocol != ProtocolVersion::V5 {
        // MQTT 3.1.1 has no password without a user name [MQTT-3.1.2-22].
        report.error("Error: Problem setting username and/or password.\n");
        return Err(exit::FAILURE);
    }
    Client::connect(client_options(args, reconnect)).map_err(|error| {
        let (text, code) = if args.protocol == ProtocolVersion::V5 {
            describe_v5(&error, refused_note.map(|_| REFUSED_NOTE_V5))
        } else {
            describe(&error, refused_note)
        };
        report.error(&text);
        code
    })
}

/// The text mosquitto's tools print for a failure to connect, and the exit code.
fn describe(error: &Error, refused_note: Option<&str>) -> (String, u8) {
    match error {
        Error::ConnectionRefused { code, .. } => {
            let return_code = wren::protocol::ConnectReturnCode::from_reason(*code);
            let mut text = format!("Connection error: {return_code}\n");
            text.push_str(refused_note.unwrap_or_default());
            (text, return_code as u8)
        }
        Error::Io { source, .. } if is_lookup_failure(source) => (
            "Unable to connect (Lookup error.).\n".to_owned(),
            exit::FAILURE,
        ),
        Error::Io { source, .. } => (format!("Error: {}\n", os_message(source)), exit::FAILURE),
        other => (format!("Error: {other}\n"), exit::FAILURE),
    }
}

/// The identifier of the Topic Alias property.
const TOPIC_ALIAS: u8 = 0x23;

/// What mosquitto_pub adds after an MQTT 5 refusal: its network loop ends with a
/// protocol error.
const REFUSED_NOTE_V5: &str =
    "Error: A network protocol error occurred when communicating with the broker.\n";

/// As [`describe`], for MQTT 5: mosquitto names the CONNACK's reason code and
/// exits with it (135 for Not authorized).
fn describe_v5(error: &Error, refused_note: Option<&str>) -> (String, u8) {
    match error {
        Error::ConnectionRefused { code: reason, .. } => {
            let reason = *reason;
            let mut text = if reason == ReasonCode::UNSUPPORTED_PROTOCOL_VERSION {
                format!(
                    "Connection error: {}. Try connecting to an MQTT v5 broker, or use MQTT v3.x mode.\n",
                    reason_string(reason)
                )
            } else {
                format!("Connection error: {}\n", reason_string(reason))
            };
            text.push_str(refused_note.unwrap_or_default());
            (text, reason.0)
        }
        other => describe(other, refused_note),
    }
}

/// mosquitto's text for an MQTT 5 reason code (`mosquitto_reason_string`).
pub fn reason_string(code: ReasonCode) -> &'static str {
    match code.0 {
        0xA1 => "Subscription identifiers not supported",
        _ => code.name().unwrap_or("Unknown reason"),
    }
}

/// How the tools leave: DISCONNECT, in MQTT 5 with the `-D disconnect`
/// properties, and after a signal or `-W` with reason code 4 (Disconnect with
/// Will Message), as mosquitto_sub sends it, so that the broker publishes the will.
#[derive(Debug, Clone)]
pub struct Goodbye {
    v5: bool,
    properties: Properties,
}

impl Goodbye {
    /// The DISCONNECT that `args` ask for.
    pub fn new(args: &ConnectArgs) -> Goodbye {
        Goodbye {
            v5: args.protocol == ProtocolVersion::V5,
            properties: to_properties(&args.properties.disconnect),
        }
    }

    /// Sends DISCONNECT (after what is in flight); `with_will` for reason code 4.
    pub fn send(&self, client: &Client, with_will: bool) -> Result<(), Error> {
        if !self.v5 {
            return client.disconnect();
        }
        let reason = if with_will {
            ReasonCode::DISCONNECT_WITH_WILL_MESSAGE
        } else {
            ReasonCode::NORMAL_DISCONNECTION
        };
        client.disconnect_with(reason, self.properties.clone())
    }
}

/// Whether resolving the host name failed (rather than connecting to it).
fn is_lookup_failure(error: &io::Error) -> bool {
    // std reports getaddrinfo failures without an OS error number, as
    // "failed to lookup address information: ...".
    error.raw_os_error().is_none()
        && (error.to_string().contains("lookup") || error.kind() == io::ErrorKind::NotFound)
}

/// The operating system's text for `error` without Rust's " (os error N)" suffix:
/// `Connection refused`, as C's `strerror` gives it to mosquitto.
pub fn os_message(error: &io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error ") {
        Some(end) => text[..end].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_print_mosquittos_lines_and_exit_with_the_return_code() {
        use wren::protocol::ConnectReturnCode;
        let refused = Error::ConnectionRefused {
            code: ConnectReturnCode::NotAuthorized.reason_code(),
            reason: None,
        };
        assert_eq!(
            describe(&refused, Some("Error: The connection was refused.\n")),
            (
                "Connection error: Connection Refused: not authorised.\n\
                 Error: The connection was refused.\n"
                    .to_owned(),
                5
            )
        );
        let bad_password = Error::ConnectionRefused {
            code: ConnectReturnCode::BadUserNameOrPassword.reason_code(),
            reason: None,
        };
        assert_eq!(
            describe(&bad_password, None),
            (
                "Connection error: Connection Refused: bad user name or password.\n".to_owned(),
                4
            )
        );
    }

    #[test]
    fn os_messages_read_like_strerror() {
        let refused = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(os_message(&refused), "Connection refused");
    }
}
