//! A blocking MQTT client: connect, publish, subscribe, with no event loop to drive.
//!
//! ```no_run
//! use wren::client::{Client, QoS};
//!
//! let client = Client::connect("mqtt://127.0.0.1:1883")?;
//! let subscription = client.subscribe("greetings/#", QoS::AtLeastOnce)?;
//! client.publish("greetings/world", "hello", QoS::AtLeastOnce, false)?; // after PUBACK
//! let message = subscription.recv()?;
//! assert_eq!(message.payload_str()?, "hello");
//! client.disconnect()?;
//! # Ok::<(), wren::client::Error>(())
//! ```
//!
//! # What happens underneath
//!
//! [`Client::connect`] opens the connection (TCP, TLS, WebSocket or both, through
//! [`crate::transport`]), sends CONNECT and waits for
//! CONNACK; a refusal comes back as [`Error::ConnectionRefused`] with the broker's
//! reason. It then starts two threads per connection:
//!
//! ```text
//!  Client (Clone + Send + Sync) --commands--> connection thread --write--> socket
//!  Subscription / Messages   <--messages--/        ^
//!                                                  |--packets-- reader thread <-- socket
//! ```
//!
//! - the **reader thread** does blocking reads and decodes packets;
//! - the **connection thread** owns the session (kept in a plain state machine without I/O):
//!   it sends, matches acknowledgements to the callers waiting for them, hands
//!   messages to subscriptions, pings when the connection is idle, and reconnects
//!   with backoff when it breaks, subscribing again and re-sending unacknowledged
//!   QoS 1/2 messages.
//!
//! Every call that waits for the broker has a timeout
//! ([`ClientOptions::with_operation_timeout`]), and the error says which wait ran out
//! ([`Wait`]). Dropping the last `Client` handle sends DISCONNECT and joins the
//! threads.
//!
//! Every packet is logged at `debug` level with the target
//! `wren::client::packets`, in mosquitto's words.
//!
//! # MQTT versions
//!
//! The client speaks MQTT 3.1.1 unless told otherwise
//! ([`ClientOptions::with_protocol`], or `?protocol=5` in the URL): 3.1 for old
//! brokers, or 5; [`ClientOptions::with_protocol_fallback`] speaks 5 where the
//! broker does and 3.1.1 where it refuses 5. The API is the same for every
//! version; over MQTT 5 the broker's answers reach further:
//!
//! - received messages carry their properties ([`Message::properties`]: user
//!   properties in order, content type, response topic, correlation data,
//!   subscription identifiers ...), and [`Publish`] sends them;
//! - CONNECT, the will, SUBSCRIBE, UNSUBSCRIBE and DISCONNECT take properties too
//!   ([`ClientOptions::with_connect_properties`], [`Will::with_properties`],
//!   [`Client::subscribe_with`], [`Client::unsubscribe_with`],
//!   [`Client::disconnect_with`]);
//! - reason codes come back typed: [`Error::PublishRefused`],
//!   [`Error::ConnectionRefused`], [`Error::SubscriptionRefused`] and
//!   [`Subscription::reason_codes`], [`Error::DisconnectedByBroker`];
//! - the broker's Receive Maximum caps the inflight window, so a fast publisher is
//!   never disconnected for sending too much, and its Maximum Packet Size is
//!   checked before sending ([`Error::PacketTooLarge`]);
//! - a session outlives its connection as long as
//!   [`ClientOptions::with_session_expiry`] says (by default as in 3.1.1: a clean
//!   session ends with it, a persistent one is kept), and a client without an id
//!   takes the one the broker assigns ([`Client::client_id`]);
//! - topic aliases are resolved as they come
//!   ([`ClientOptions::with_topic_alias_maximum`]) and put on outgoing messages on
//!   request ([`ClientOptions::with_outgoing_topic_aliases`]); the tables are
//!   [`wren::protocol::IncomingAliases`](crate::protocol::IncomingAliases) and
//!   [`OutgoingAliases`](crate::protocol::OutgoingAliases), which the broker uses
//!   too;
//! - enhanced authentication answers the broker's challenges through an
//!   [`Authenticator`], when connecting and on [`Client::reauthenticate`];
//! - a subscription made with a Subscription Identifier takes only the messages
//!   that carry it, so overlapping subscriptions get each message once.
//!
//! # API conventions
//!
//! - [`ClientOptions`] is a by-value builder: its setters are named `with_*`
//!   ([`with_client_id`](ClientOptions::with_client_id),
//!   [`with_keep_alive`](ClientOptions::with_keep_alive),
//!   [`with_will`](ClientOptions::with_will), ...) and its getters take the plain
//!   names ([`client_id`](ClientOptions::client_id),
//!   [`keep_alive`](ClientOptions::keep_alive), [`will`](ClientOptions::will), ...).
//!   No getter starts with `get_`.
//! - Whatever hands out messages follows one contract: a [`Subscription`],
//!   [`Messages`] and the broker's inline
//!   [`wren::broker::Subscription`](crate::broker::Subscription) all have
//!   `recv()` (waits), `recv_timeout(timeout)` (`Ok(None)` when nothing came in
//!   time), `try_recv()` (never waits, `Ok(None)` when nothing is there yet),
//!   `iter()` and `IntoIterator` (blocking, ending when the subscription is
//!   closed). They fail only once the subscription is closed: here
//!   [`Error::Closed`], when the client is gone for good.
//! - One name per concept. A will is [`Will`] here, what a program asks for (and
//!   what the `will:` of a client settings file,
//!   [`ClientConfig::will`](crate::config::ClientConfig::will), reads into); the
//!   client sends it in CONNECT as [`wren::protocol::Will`](crate::protocol::Will),
//!   the wire form. Per-topic publishing defaults are [`TopicDefaults`], in
//!   options and settings files alike. A [`transport::Connection`](crate::transport::Connection)
//!   is a byte stream; [`Client`] is the MQTT connection built on it.

mod connection;
mod delivery;
mod error;
mod message;
mod options;
mod outgoing;
mod packet_log;
mod state;
mod subscription;
mod worker;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::{Receiver, RecvTimeoutError, SendTimeoutError, Sender};
use parking_lot::Mutex;

pub use self::error::{Error, Wait};
pub use self::message::Message;
pub use self::options::Authenticator;
pub use self::options::{
    ClientOptions, IntoClientOptions, Reconnect, TlsVersion, TopicDefaults, Will,
};
pub use self::outgoing::Publish;
pub use self::packet_log::PACKET_LOG_TARGET;
pub use self::subscription::{IntoIter, Iter, Messages, Subscription};
pub use crate::protocol::{
    ConnectReturnCode, Properties, ProtocolVersion, QoS, ReasonCode, SubscribeFilter,
    SubscribeReturnCode,
};
pub use crate::transport::{ClientTls, Kind};

use self::delivery::Target;
use self::subscription::inbox_parts;
use self::worker::{Command, Control, Status, Worker};
use crate::protocol::{self, Disconnect, PropertyContext, TopicFilter, TopicName};

/// How many requests may wait for the connection thread. A caller beyond it waits
/// (with the operation timeout) instead of memory growing. (The thread itself keeps
/// a bounded number more, taken in ahead of the inflight window.)
const REQUEST_QUEUE: usize = 256;

/// A connection to an MQTT broker.
///
/// Cheap to clone: clones share the connection and may be used from many threads at
/// once. The connection closes (with DISCONNECT) when [`disconnect`](Self::disconnect)
/// is called or the last clone is dropped.
///
/// ```no_run
/// use std::thread;
/// use wren::client::{Client, QoS};
///
/// let client = Client::connect("mqtt://127.0.0.1:1883")?;
/// let workers: Vec<_> = (0..4)
///     .map(|n| {
///         let client = client.clone();
///         thread::spawn(move || client.publish(&format!("jobs/{n}"), "done", QoS::AtLeastOnce, false))
///     })
///     .collect();
/// for worker in workers {
///     worker.join().expect("publisher thread panicked")?;
/// }
/// # Ok::<(), wren::client::Error>(())
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    client_id: String,
    options: ClientOptions,
    commands: Sender<Command>,
    control: Sender<Control>,
    status: Arc<Status>,
    worker: Mutex<Option<JoinHandle<()>>>,
    next_receiver: AtomicU64,
    disconnecting: AtomicBool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.inner.client_id)
            .field("broker", &self.inner.options.address())
            .field("connected", &self.is_connected())
            .finish()
    }
}

/// A publish on its way, returned by [`Client::publish_nowait`].
///
/// Wait on it to learn that the broker acknowledged the message. Dropping it does
/// not cancel the publish.
#[derive(Debug)]
pub struct Pending {
    reply: Option<Receiver<Result<(), Error>>>,
    wait: Wait,
    timeout: Duration,
    status: Arc<Status>,
}

impl Pending {
    /// Waits for the acknowledgement (PUBACK for QoS 1, PUBCOMP for QoS 2), at most
    /// the operation timeout. QoS 0 has nothing to wait for.
    pub fn wait(self) -> Result<(), Error> {
        let timeout = self.timeout;
        self.wait_timeout(timeout)
    }

    /// Waits at most `timeout` for the acknowledgement.
    pub fn wait_timeout(self, timeout: Duration) -> Result<(), Error> {
        match &self.reply {
            None => Ok(()),
            Some(reply) => receive(reply, timeout, self.wait, &self.status),
        }
    }

    /// Waits at most `timeout` for the outcome, and keeps the `Pending` to wait
    /// again: `None` if the broker has not answered in time. A QoS 1/2 message
    /// stays the client's while it reconnects (it is sent again), so a caller
    /// that must not give up on it waits in a loop.
    pub fn wait_for(&self, timeout: Duration) -> Option<Result<(), Error>> {
        let Some(reply) = &self.reply else {
            return Some(Ok(())); // QoS 0: nothing to wait for
        };
        crossbeam_channel::select! {
            recv(reply) -> result => Some(result.unwrap_or_else(|_| Err(ended(&self.status)))),
            recv(self.status.gone) -> _ => {
                Some(reply.try_recv().unwrap_or_else(|_| Err(ended(&self.status))))
            }
            default(timeout) => None,
        }
    }

    /// The outcome if it is known, `None` if the broker has not answered yet. Never
    /// blocks.
    pub fn try_wait(&self) -> Option<Result<(), Error>> {
        match &self.reply {
            None => Some(Ok(())),
            Some(reply) => match reply.try_recv() {
                Ok(result) => Some(result),
                Err(crossbeam_channel::TryRecvError::Empty) => None,
                Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    Some(Err(ended(&self.status)))
                }
            },
        }
    }
}

impl Client {
    /// Connects to the broker and returns once it has accepted (CONNACK).
    ///
    /// Takes a URL (`"mqtt://user:pass@host:1883"`, as `&str` or [`url::Url`];
    /// `mqtts://`, `ws://` and `wss://` too, see [`ClientOptions::from_url`]) or
    /// [`ClientOptions`].
    pub fn connect(options: impl IntoClientOptions) -> Result<Client, Error> {
        let mut options = options.into_client_options()?;
        options.validate()?;
        let client_id = match options.client_id.as_deref() {
            Some(id) if !id.is_empty() => id.to_owned(),
            // MQTT 5: the broker assigns one [MQTT-3.2.2-16].
            _ if options.protocol == ProtocolVersion::V5 => String::new(),
            _ => options::random_client_id(),
        };
        let opened = connection::open(&options, &client_id)?;
        // Reconnections speak what the first connection spoke, with the id the
        // broker assigned, so that a session kept is resumed.
        options.protocol = opened.version;
        options.protocol_fallback = false;
        let client_id = match &opened.assigned_client_id {
            Some(assigned) => assigned.clone(),
            None if client_id.is_empty() => options::random_client_id(),
            None => client_id,
        };
        log::debug!(
            "Client {client_id} connected to {} (session present: {})",
            options.address(),
            opened.session_present
        );
        let (commands, command_queue) = crossbeam_channel::bounded(REQUEST_QUEUE);
        let (control, control_queue) = crossbeam_channel::unbounded();
        let (status, alive) = Status::new();
        let status = Arc::new(status);
        let worker = Worker::new(
            options.clone(),
            client_id.clone(),
            opened.link,
            opened.terms,
            command_queue,
            control_queue,
            status.clone(),
            alive,
        );
        let handle = std::thread::Builder::new()
            .name(format!("wren-client {client_id}"))
            .spawn(move || worker.run())
            .map_err(|e| Error::io(options.address(), e))?;
        Ok(Client {
            inner: Arc::new(Inner {
                client_id,
                options,
                commands,
                control,
                status,
                worker: Mutex::new(Some(handle)),
                next_receiver: AtomicU64::new(1),
                disconnecting: AtomicBool::new(false),
            }),
        })
    }

    /// The client id this client connected with: the one set, or over MQTT 5 the
    /// one the broker assigned (its Assigned Client Identifier), or else one made
    /// up.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The version of MQTT this client speaks: the one asked for, or 3.1.1 for a
    /// broker that refused 5 (see
    /// [`ClientOptions::with_protocol_fallback`]).
    pub fn protocol(&self) -> ProtocolVersion {
        self.inner.options.protocol
    }

    /// The options this client was made with.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// Whether the client is connected right now (not reconnecting, not closed).
    pub fn is_connected(&self) -> bool {
        self.inner.status.connected.load(Ordering::SeqCst)
    }

    /// Publishes a message and returns once the broker has it: after PUBACK for
    /// QoS 1 and PUBCOMP for QoS 2. QoS 0 returns once the message is handed to the
    /// connection thread, and fails with [`Error::Disconnected`] while reconnecting.
    ///
    /// ```no_run
    /// use wren::client::{Client, QoS};
    ///
    /// let client = Client::connect("mqtt://127.0.0.1:1883")?;
    /// client.publish("lights/kitchen", "on", QoS::ExactlyOnce, true)?;
    /// # Ok::<(), wren::client::Error>(())
    /// ```
    pub fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<(), Error> {
        self.publish_nowait(topic, payload, qos, retain)?.wait()
    }

    /// Publishes without waiting for the acknowledgement; wait on the returned
    /// [`Pending`] later. Waits only when the inflight window
    /// ([`ClientOptions::with_max_inflight`]) and the request queue are full, at most the
    /// operation timeout.
    ///
    /// ```no_run
    /// use wren::client::{Client, QoS};
    ///
    /// let client = Client::connect("mqtt://127.0.0.1:1883")?;
    /// let pending: Vec<_> = (0..1000)
    ///     .map(|n| client.publish_nowait("counter", n.to_string(), QoS::AtLeastOnce, false))
    ///     .collect::<Result<_, _>>()?;
    /// for publish in pending {
    ///     publish.wait()?;
    /// }
    /// # Ok::<(), wren::client::Error>(())
    /// ```
    pub fn publish_nowait(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<Pending, Error> {
        let topic = TopicName::new(topic).map_err(|e| Error::topic(topic, e))?;
        self.publish_packet(protocol::Publish::new(topic, payload, qos, retain))
    }

    /// Publishes `message`, with its MQTT 5 properties, and returns once the
    /// broker has it as [`publish`](Self::publish) does.
    ///
    /// ```no_run
    /// use wren::client::{Client, Publish, QoS};
    ///
    /// let client = Client::connect("mqtt://127.0.0.1:1883")?;
    /// client.send(Publish::new("greetings", "hello").qos(QoS::AtLeastOnce).retain(true))?;
    /// # Ok::<(), wren::client::Error>(())
    /// ```
    pub fn send(&self, message: Publish) -> Result<(), Error> {
        self.send_nowait(message)?.wait()
    }

    /// [`send`](Self::send) without waiting for the acknowledgement, as
    /// [`publish_nowait`](Self::publish_nowait).
    pub fn send_nowait(&self, message: Publish) -> Result<Pending, Error> {
        self.publish_packet(message.into_packet()?)
    }

    /// MQTT 5 request / response in one call: sends `request` with a Response
    /// Topic and Correlation Data (its own, or made up for this call), and returns
    /// the first message on that topic carrying the same Correlation Data, within
    /// `timeout` ([`Error::Timeout`] with [`Wait::Response`] otherwise). The
    /// responder answers with [`Publish::response_to`].
    ///
    /// The made-up Response Topic is `wren/responses/` and a random name; the call
    /// subscribes to it for its own duration.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use wren::client::{Client, ClientOptions, Publish};
    /// use wren::protocol::ProtocolVersion;
    ///
    /// let client = Client::connect(
    ///     ClientOptions::from_url("mqtt://127.0.0.1:1883")?.with_protocol(ProtocolVersion::V5),
    /// )?;
    /// let answer = client.request(Publish::new("services/time", ""), Duration::from_secs(5))?;
    /// println!("{}", answer.payload_str()?);
    /// # Ok::<(), wren::client::Error>(())
    /// ```
    pub fn request(&self, request: Publish, timeout: Duration) -> Result<Message, Error> {
        let deadline = std::time::Instant::now() + timeout;
        let response_topic = match &request.properties().response_topic {
            Some(topic) => topic.clone(),
            None => format!("wren/responses/{}", options::random_client_id()),
        };
        let correlation = match &request.properties().correlation_data {
            Some(data) => data.clone(),
            None => Bytes::from(options::random_client_id().into_bytes()),
        };
        let responses = self.subscribe(&response_topic, QoS::AtLeastOnce)?;
        let request = request
            .response_topic(response_topic)
            .correlation_data(correlation.clone());
        self.send(request)?;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match responses.recv_timeout(left)? {
                Some(message)
                    if message.properties().correlation_data.as_ref() == Some(&correlation) =>
                {
                    return Ok(message)
                }
                // Another request's late response: not ours.
                Some(_) => continue,
                None => return Err(Error::Timeout(Wait::Response)),
            }
        }
    }

    /// Hands a PUBLISH to the connection thread; the [`Pending`] waits for its
    /// acknowledgement.
    fn publish_packet(&self, publish: protocol::Publish) -> Result<Pending, Error> {
        let qos = publish.qos;
        let (reply, wait) = match qos {
            QoS::AtMostOnce => {
                if self.inner.disconnecting.load(Ordering::SeqCst) {
                    return Err(Error::Closed);
                }
                if !self.is_connected() {
                    return Err(ended_or(&self.inner.status, Error::Disconnected(None)));
                }
                (None, Wait::Queue)
            }
            QoS::AtLeastOnce => (Some(crossbeam_channel::bounded(1)), Wait::PubAck),
            QoS::ExactlyOnce => (Some(crossbeam_channel::bounded(1)), Wait::PubComp),
        };
        let (sender, receiver) = reply.unzip();
        self.command(Command::Publish {
            publish,
            reply: sender,
        })?;
        Ok(Pending {
            reply: receiver,
            wait,
            timeout: self.inner.options.operation_timeout,
            status: self.inner.status.clone(),
        })
    }

    /// Publishes `value` as JSON.
    pub fn publish_json<T: serde::Serialize + ?Sized>(
        &self,
        topic: &str,
        value: &T,
        qos: QoS,
        retain: bool,
    ) -> Result<(), Error> {
        let payload = serde_json::to_vec(value).map_err(|source| Error::Json {
            topic: None,
            source,
        })?;
        self.publish(topic, payload, qos, retain)
    }

    /// Publishes with the QoS and retain flag configured for `topic`
    /// ([`ClientOptions::with_topic_defaults`]), or the client's defaults
    /// ([`ClientOptions::with_default_qos`], [`ClientOptions::with_default_retain`]).
    pub fn publish_default(&self, topic: &str, payload: impl Into<Bytes>) -> Result<(), Error> {
        let defaults = self.inner.options.defaults_for(topic);
        self.publish(topic, payload, defaults.qos, defaults.retain)
    }

    /// Subscribes to `filter` and returns once the broker has granted it (SUBACK).
    /// The [`Subscription`] yields the matching messages and unsubscribes when
    /// dropped.
    pub fn subscribe(&self, filter: &str, qos: QoS) -> Result<Subscription, Error> {
        self.subscribe_many(&[(filter, qos)])
    }

    /// Subscribes to several filters with one SUBSCRIBE; the [`Subscription`] yields
    /// messages matching any of them (once each). Fails with
    /// [`Error::SubscriptionRefused`] if the broker refuses any filter.
    pub fn subscribe_many(&self, filters: &[(&str, QoS)]) -> Result<Subscription, Error> {
        if filters.is_empty() {
            return Err(Error::InvalidOptions(
                "SUBSCRIBE needs at least one filter [MQTT-3.8.3-3]".into(),
            ));
        }
        let filters: Vec<SubscribeFilter> = filters
            .iter()
            .map(|(filter, qos)| {
                TopicFilter::new(*filter)
                    .map(|f| SubscribeFilter::new(f, *qos))
                    .map_err(|e| Error::topic(filter, e))
            })
            .collect::<Result<_, _>>()?;
        self.subscribe_filters(filters)
    }

    /// Subscribes with MQTT 5's subscription options: each [`SubscribeFilter`]
    /// says its QoS, and whether the client's own messages come back (No Local),
    /// whether RETAIN is kept as published, and when retained messages are sent
    /// (Retain Handling). The options hold across reconnections. Over MQTT 3.1.1
    /// only the QoS travels.
    ///
    /// ```no_run
    /// use wren::client::{Client, QoS};
    /// use wren::protocol::{RetainHandling, SubscribeFilter, TopicFilter};
    ///
    /// # let client: Client = todo!();
    /// let mut chat = SubscribeFilter::new(TopicFilter::new("chat/#")?, QoS::AtLeastOnce);
    /// chat.no_local = true; // not my own messages
    /// chat.retain_handling = RetainHandling::DoNotSend;
    /// let messages = client.subscribe_filters(vec![chat])?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe_filters(&self, filters: Vec<SubscribeFilter>) -> Result<Subscription, Error> {
        let names: Vec<String> = filters.iter().map(|f| f.filter.to_string()).collect();
        let subscription = self.subscribe_with(filters, Properties::new())?;
        let refused = subscription
            .reason_codes()
            .iter()
            .zip(names)
            .find(|(code, _)| code.is_error());
        match refused {
            None => Ok(subscription),
            // Dropping the subscription unsubscribes the filters that were granted.
            Some((code, filter)) => Err(Error::SubscriptionRefused {
                filter,
                code: *code,
            }),
        }
    }

    /// Subscribes with MQTT 5 SUBSCRIBE properties (a Subscription Identifier, user
    /// properties), and takes a partial refusal: the [`Subscription`] comes back
    /// when the broker granted at least one filter, with the SUBACK's code for each
    /// in [`Subscription::reason_codes`]. Only when every filter is refused does it
    /// fail, with [`Error::SubscriptionRefused`] for the first. The properties are
    /// sent again with the filters if the client has to subscribe again after a
    /// reconnect.
    ///
    /// ```no_run
    /// use wren::client::{Client, QoS};
    /// use wren::protocol::{Properties, SubscribeFilter, TopicFilter};
    ///
    /// # let client: Client = todo!();
    /// let mut properties = Properties::new();
    /// properties.subscription_identifiers.push(7);
    /// let filters = vec![SubscribeFilter::new(TopicFilter::new("alerts/#")?, QoS::AtLeastOnce)];
    /// let alerts = client.subscribe_with(filters, properties)?;
    /// for message in &alerts {
    ///     // Messages this subscription brought carry its identifier.
    ///     assert!(message.properties().subscription_identifiers.contains(&7));
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe_with(
        &self,
        filters: Vec<SubscribeFilter>,
        properties: Properties,
    ) -> Result<Subscription, Error> {
        if filters.is_empty() {
            return Err(Error::InvalidOptions(
                "SUBSCRIBE needs at least one filter [MQTT-3.8.3-3]".into(),
            ));
        }
        let id = self.inner.next_receiver.fetch_add(1, Ordering::Relaxed);
        let (sender, stalled, parts) = inbox_parts(
            id,
            self.inner.options.message_capacity,
            self.inner.control.clone(),
        );
        let properties = self.properties_for(properties, PropertyContext::Subscribe)?;
        let target = Target {
            id,
            filters: Some(filters.iter().map(|f| f.filter.clone()).collect()),
            subscription_id: properties
                .as_ref()
                .and_then(|p| p.subscription_identifiers.first().copied()),
            sender,
            stalled,
        };
        // Made before asking, so that if the wait fails the drop cleans up.
        let pending_subscription = parts.subscription(Vec::new());
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.command(Command::Subscribe {
            filters: filters.clone(),
            properties,
            target,
            reply,
        })?;
        let (packet_id, codes) = receive(
            &answer,
            self.inner.options.operation_timeout,
            Wait::SubAck,
            &self.inner.status,
        )?;
        let granted: Vec<(TopicFilter, QoS)> = filters
            .iter()
            .zip(&codes)
            .filter_map(|(filter, code)| Some((filter.filter.clone(), code.granted_qos()?)))
            .collect();
        if granted.is_empty() {
            let refused = codes.first().copied().unwrap_or(ReasonCode(0x80));
            return Err(Error::SubscriptionRefused {
                filter: filters[0].filter.to_string(),
                code: refused,
            });
        }
        let mut subscription = pending_subscription;
        subscription.set_granted(packet_id, granted, codes);
        Ok(subscription)
    }

    /// Every message this client receives, whatever subscription brought it. Make
    /// it before subscribing so that nothing is missed; it subscribes to nothing by
    /// itself.
    pub fn messages(&self) -> Messages {
        let id = self.inner.next_receiver.fetch_add(1, Ordering::Relaxed);
        let (sender, stalled, parts) = inbox_parts(
            id,
            self.inner.options.message_capacity,
            self.inner.control.clone(),
        );
        let _ = self.inner.control.send(Control::Register(Target {
            id,
            filters: None,
            subscription_id: None,
            sender,
            stalled,
        }));
        parts.messages()
    }

    /// Unsubscribes from `filter` and returns once the broker confirms (UNSUBACK).
    /// Subscriptions with this filter stay open but receive nothing more from it.
    pub fn unsubscribe(&self, filter: &str) -> Result<(), Error> {
        self.unsubscribe_many(&[filter])
    }

    /// Unsubscribes from several filters with one UNSUBSCRIBE.
    pub fn unsubscribe_many(&self, filters: &[&str]) -> Result<(), Error> {
        self.unsubscribe_with(filters, Properties::new()).map(drop)
    }

    /// Unsubscribes with MQTT 5 UNSUBSCRIBE properties (user properties) and
    /// returns the UNSUBACK's code for each filter: 0x00 success, 0x11 "no
    /// subscription existed", 0x87 not authorized ... (empty over MQTT 3.1.1, whose
    /// UNSUBACK has none).
    pub fn unsubscribe_with(
        &self,
        filters: &[&str],
        properties: Properties,
    ) -> Result<Vec<ReasonCode>, Error> {
        if filters.is_empty() {
            return Err(Error::InvalidOptions(
                "UNSUBSCRIBE needs at least one filter [MQTT-3.10.3-2]".into(),
            ));
        }
        let filters: Vec<TopicFilter> = filters
            .iter()
            .map(|filter| TopicFilter::new(*filter).map_err(|e| Error::topic(filter, e)))
            .collect::<Result<_, _>>()?;
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.command(Command::Unsubscribe {
            filters,
            properties: self.properties_for(properties, PropertyContext::Unsubscribe)?,
            reply,
        })?;
        receive(
            &answer,
            self.inner.options.operation_timeout,
            Wait::UnsubAck,
            &self.inner.status,
        )
    }

    /// MQTT 5: authenticates again on this connection with the
    /// [`Authenticator`] the client connected with (section 4.12.1), and returns
    /// once the broker has accepted. A broker that refuses ends the connection;
    /// the error then says why ([`Error::DisconnectedByBroker`]), and the client
    /// reconnects as after any lost connection, authenticating from the start.
    pub fn reauthenticate(&self) -> Result<(), Error> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.command(Command::Reauthenticate { reply })?;
        receive(
            &answer,
            self.inner.options.operation_timeout,
            Wait::Auth,
            &self.inner.status,
        )
    }

    /// Waits (at most the operation timeout) for the QoS 1/2 messages in flight to
    /// be acknowledged, sends DISCONNECT, closes the connection and stops the
    /// threads. Every clone of this client is closed with it.
    pub fn disconnect(&self) -> Result<(), Error> {
        self.inner.disconnect(Disconnect::default())
    }

    /// [`disconnect`](Self::disconnect) with an MQTT 5 reason code and properties
    /// (a Session Expiry Interval that changes the one of CONNECT, a Reason String,
    /// user properties). 0x04 "disconnect with will message" asks the broker to
    /// publish the will all the same; 0x00 is a normal disconnection. Over MQTT
    /// 3.1.1 DISCONNECT carries neither.
    ///
    /// ```no_run
    /// use wren::client::Client;
    /// use wren::protocol::{Properties, ReasonCode};
    ///
    /// # let client: Client = todo!();
    /// client.disconnect_with(ReasonCode::DISCONNECT_WITH_WILL_MESSAGE, Properties::new())?;
    /// # Ok::<(), wren::client::Error>(())
    /// ```
    pub fn disconnect_with(&self, reason: ReasonCode, properties: Properties) -> Result<(), Error> {
        let mut goodbye = Disconnect::new(reason);
        goodbye.properties = self.properties_for(properties, PropertyContext::Disconnect)?;
        self.inner.disconnect(goodbye)
    }

    /// MQTT 5 properties to send in a packet of `context`'s kind: `None` over 3.1.1
    /// or when nothing that may go there is set. Values MQTT forbids (a
    /// Subscription Identifier of 0, say) are refused here, before sending, with
    /// [`Error::InvalidOptions`].
    fn properties_for(
        &self,
        properties: Properties,
        context: PropertyContext,
    ) -> Result<Option<Box<Properties>>, Error> {
        let properties = properties.restricted_to(context);
        if self.inner.options.protocol != ProtocolVersion::V5 || properties.is_empty() {
            return Ok(None);
        }
        properties
            .check(context)
            .map_err(|error| Error::InvalidOptions(format!("properties: {error}")))?;
        Ok(Some(Box::new(properties)))
    }

    fn command(&self, command: Command) -> Result<(), Error> {
        if self.inner.disconnecting.load(Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        match self
            .inner
            .commands
            .send_timeout(command, self.inner.options.operation_timeout)
        {
            Ok(()) => Ok(()),
            Err(SendTimeoutError::Timeout(_)) => Err(Error::Timeout(Wait::Queue)),
            Err(SendTimeoutError::Disconnected(_)) => Err(ended(&self.inner.status)),
        }
    }
}

impl Inner {
    fn disconnect(&self, goodbye: Disconnect) -> Result<(), Error> {
        if self.disconnecting.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let (reply, done) = crossbeam_channel::bounded(1);
        if self
            .control
            .send(Control::Disconnect(reply, goodbye))
            .is_ok()
        {
            // The thread waits at most the operation timeout for acknowledgements;
            // allow for one reconnect attempt in progress on top.
            let limit = self.options.operation_timeout + self.options.connect_timeout;
            match done.recv_timeout(limit) {
                Ok(()) | Err(RecvTimeoutError::Disconnected) => {}
                Err(RecvTimeoutError::Timeout) => return Err(Error::Timeout(Wait::Disconnect)),
            }
        }
        if let Some(worker) = self.worker.lock().take() {
            let _ = worker.join();
        }
        Ok(())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(error) = self.disconnect(Disconnect::default()) {
            log::warn!("Client {}: {error}", self.client_id);
        }
    }
}

/// Waits for a reply from the connection thread.
fn receive<T>(
    reply: &Receiver<Result<T, Error>>,
    timeout: Duration,
    wait: Wait,
    status: &Status,
) -> Result<T, Error> {
    crossbeam_channel::select! {
        recv(reply) -> result => result.unwrap_or_else(|_| Err(ended(status))),
        // The thread has finished: an answer it gave is there now, or none will come.
        recv(status.gone) -> _ => reply.try_recv().unwrap_or_else(|_| Err(ended(status))),
        default(timeout) => Err(Error::Timeout(wait)),
    }
}

/// The error for a request the connection thread will never answer.
fn ended(status: &Status) -> Error {
    ended_or(status, Error::Closed)
}

fn ended_or(status: &Status, otherwise: Error) -> Error {
    match &*status.lost.lock() {
        Some(reason) => reason.lost_for_good(),
        None => otherwise,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shareable<T: Clone + Send + Sync + 'static>() {}
    fn sendable<T: Send + 'static>() {}
    fn shared_error<T: std::error::Error + Send + Sync + 'static>() {}

    #[test]
    fn handles_can_be_shared_between_threads() {
        shareable::<Client>();
        shareable::<ClientOptions>();
        shareable::<Message>();
        sendable::<Subscription>();
        sendable::<Messages>();
        sendable::<Pending>();
        sendable::<Error>();
        shared_error::<Error>();
    }
}
