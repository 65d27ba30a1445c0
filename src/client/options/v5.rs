//! The options only MQTT 5 has: CONNECT properties, the limits the client
//! announces (Receive Maximum, Topic Alias Maximum), outgoing topic aliases,
//! enhanced authentication, and falling back to 3.1.1 for a broker that does not
//! speak 5. Over MQTT 3.1 and 3.1.1 they are ignored.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::ClientOptions;
use crate::protocol::Properties;

/// MQTT 5 enhanced authentication, from the client's side: the method named in
/// CONNECT, its first data, and an answer to each challenge the broker sends in an
/// AUTH packet, until the broker accepts (CONNACK 0x00) or refuses.
///
/// A SCRAM or Kerberos exchange is written as one of these; the client calls it
/// on its own thread while connecting (and again on every reconnect), so it must
/// not block for long.
///
/// ```
/// use bytes::Bytes;
/// use wren::client::{Authenticator, ClientOptions};
/// use wren::protocol::ProtocolVersion;
///
/// /// Answers the broker's challenge with the challenge reversed (a toy method
/// /// that a test broker hook understands).
/// struct Reverse;
///
/// impl Authenticator for Reverse {
///     fn method(&self) -> &str {
///         "REVERSE"
///     }
///
///     fn challenge(&self, data: Option<&[u8]>) -> Result<Option<Bytes>, String> {
///         let mut answer = data.ok_or("the challenge has no data")?.to_vec();
///         answer.reverse();
///         Ok(Some(Bytes::from(answer)))
///     }
/// }
///
/// let options = ClientOptions::new("localhost", 1883)
///     .with_protocol(ProtocolVersion::V5)
///     .with_authenticator(Reverse);
/// ```
pub trait Authenticator: Send + Sync + 'static {
    /// The Authentication Method, as the broker knows it (`SCRAM-SHA-256` ...).
    fn method(&self) -> &str;

    /// The Authentication Data sent with CONNECT, if the method starts with some.
    fn initial_data(&self) -> Option<Bytes> {
        None
    }

    /// The answer to one challenge (the broker's AUTH, reason 0x18, and its
    /// Authentication Data). An `Err` ends the exchange and the connection attempt
    /// with [`Error::Authentication`](crate::client::Error::Authentication).
    fn challenge(&self, data: Option<&[u8]>) -> Result<Option<Bytes>, String>;
}

/// An [`Authenticator`] shared by the options' clones.
#[derive(Clone)]
pub(crate) struct AuthenticatorHandle(pub(crate) Arc<dyn Authenticator>);

impl std::fmt::Debug for AuthenticatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Authenticator")
            .field(&self.0.method())
            .finish()
    }
}

impl ClientOptions {
    /// MQTT 5: the CONNECT properties. The ones the client acts on are taken into
    /// its settings as their own setters would: Session Expiry Interval
    /// ([`with_session_expiry`](Self::with_session_expiry)), Receive Maximum
    /// ([`with_receive_maximum`](Self::with_receive_maximum)), Maximum Packet Size
    /// ([`with_max_packet_size`](Self::with_max_packet_size)) and Topic Alias
    /// Maximum ([`with_topic_alias_maximum`](Self::with_topic_alias_maximum)). The
    /// others (user properties, Request Problem Information, Request Response
    /// Information, an Authentication Method and Data for a broker that accepts
    /// them at once) are sent as given. Properties CONNECT cannot carry are left out.
    ///
    /// ```
    /// use wren::client::ClientOptions;
    /// use wren::protocol::{Properties, ProtocolVersion};
    ///
    /// let mut properties = Properties::new();
    /// properties.user_properties.push(("site".into(), "north".into()));
    /// properties.request_response_information = Some(1);
    /// properties.session_expiry_interval = Some(3600);
    /// let options = ClientOptions::new("localhost", 1883)
    ///     .with_protocol(ProtocolVersion::V5)
    ///     .with_connect_properties(properties);
    /// assert_eq!(options.session_expiry(), 3600);
    /// ```
    pub fn with_connect_properties(mut self, properties: Properties) -> ClientOptions {
        let Properties {
            session_expiry_interval,
            receive_maximum,
            maximum_packet_size,
            topic_alias_maximum,
            user_properties,
            request_problem_information,
            request_response_information,
            authentication_method,
            authentication_data,
            ..
        } = properties;
        if let Some(seconds) = session_expiry_interval {
            self.session_expiry = Some(match seconds {
                u32::MAX => Duration::MAX,
                seconds => Duration::from_secs(seconds.into()),
            });
        }
        if let Some(maximum) = receive_maximum {
            self.receive_maximum = Some(maximum);
        }
        if let Some(size) = maximum_packet_size {
            self.max_packet_size = size as usize;
        }
        if let Some(maximum) = topic_alias_maximum {
            self.topic_alias_maximum = maximum;
        }
        self.connect_properties = Properties {
            user_properties,
            request_problem_information,
            request_response_information,
            authentication_method,
            authentication_data,
            ..Properties::new()
        };
        self
    }

    /// MQTT 5: the Receive Maximum announced to the broker: how many QoS 1/2
    /// messages it may send before this client acknowledges them. Unset, the broker
    /// may send up to 65,535; a subscription that is not read holds back the
    /// acknowledgements either way (see
    /// [`with_message_capacity`](Self::with_message_capacity)).
    pub fn with_receive_maximum(mut self, maximum: u16) -> ClientOptions {
        self.receive_maximum = Some(maximum.max(1));
        self
    }

    /// MQTT 5: how many topic aliases the broker may use when it sends messages to
    /// this client (its Topic Alias Maximum): 0 by default, none. The client
    /// resolves them; [`Message::topic`](crate::client::Message::topic) is always
    /// the whole topic, and [`Message::properties`](crate::client::Message::properties)
    /// keeps the alias the broker used.
    pub fn with_topic_alias_maximum(mut self, maximum: u16) -> ClientOptions {
        self.topic_alias_maximum = maximum;
        self
    }

    /// MQTT 5: put topic aliases on outgoing messages, as many as the broker's
    /// Topic Alias Maximum allows (off by default). The first message on a topic
    /// carries the topic and its alias; later ones the alias alone, which saves the
    /// topic's bytes on every message to a few busy topics. Aliases last one
    /// connection; they are set up again after a reconnect.
    pub fn with_outgoing_topic_aliases(mut self, enabled: bool) -> ClientOptions {
        self.outgoing_topic_aliases = enabled;
        self
    }

    /// MQTT 5: authenticate with an enhanced authentication method (see
    /// [`Authenticator`]). Its method and first data go in CONNECT; the client
    /// answers each AUTH challenge with [`Authenticator::challenge`].
    pub fn with_authenticator(mut self, authenticator: impl Authenticator) -> ClientOptions {
        self.authenticator = Some(AuthenticatorHandle(Arc::new(authenticator)));
        self
    }

    /// Speak MQTT 5 where the broker does, else 3.1.1: the first connection tries
    /// version 5, and a broker that refuses it (CONNACK "unacceptable protocol
    /// version" 0x01 or "unsupported protocol version" 0x84) is asked again in
    /// 3.1.1, which the client then keeps. Sets the protocol to 5.
    /// [`Client::protocol`](crate::client::Client::protocol) says which was spoken.
    pub fn with_protocol_fallback(mut self) -> ClientOptions {
        self.protocol = crate::protocol::ProtocolVersion::V5;
        self.protocol_fallback = true;
        self
    }

    /// MQTT 5: the CONNECT properties sent as given (see
    /// [`with_connect_properties`](Self::with_connect_properties)).
    pub fn connect_properties(&self) -> &Properties {
        &self.connect_properties
    }

    /// MQTT 5: the Receive Maximum announced, if one is.
    pub fn receive_maximum(&self) -> Option<u16> {
        self.receive_maximum
    }

    /// MQTT 5: how many topic aliases the broker may use towards this client.
    pub fn topic_alias_maximum(&self) -> u16 {
        self.topic_alias_maximum
    }

    /// MQTT 5: whether outgoing messages get topic aliases.
    pub fn outgoing_topic_aliases(&self) -> bool {
        self.outgoing_topic_aliases
    }

    /// Whether a broker that refuses MQTT 5 is asked again in 3.1.1.
    pub fn protocol_fallback(&self) -> bool {
        self.protocol_fallback
    }
}
