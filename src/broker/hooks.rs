//! Hooks: how an embedding program decides who may connect, publish and subscribe,
//! and how it watches what the broker does. See [`Hook`].

use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;

use crate::protocol::{
    ConnectReturnCode, ProtocolVersion, Publish, QoS, ReasonCode, TopicFilter, TopicName,
};

/// What a CONNECT asks for, as seen by [`Hook::authenticate`].
#[derive(Clone)]
#[non_exhaustive]
pub struct ConnectInfo {
    /// The client identifier (an assigned one if the client sent none).
    pub client_id: String,
    /// The user name, if the client gave one.
    pub username: Option<String>,
    /// The password, if the client gave one. Never logged.
    pub password: Option<Bytes>,
    /// Where the connection comes from.
    pub remote_addr: SocketAddr,
    /// The name of the listener it arrived on.
    pub listener: String,
    /// The MQTT version the client speaks.
    pub protocol: ProtocolVersion,
    /// Whether the client asked for a clean session.
    pub clean_session: bool,
}

impl std::fmt::Debug for ConnectInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectInfo")
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("remote_addr", &self.remote_addr)
            .field("listener", &self.listener)
            .field("protocol", &self.protocol)
            .field("clean_session", &self.clean_session)
            .finish()
    }
}

/// Who a connected client is, as seen by authorization checks and observers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientInfo {
    /// The client identifier.
    pub client_id: String,
    /// The user name the client authenticated with, if any.
    pub username: Option<String>,
    /// Where the connection comes from.
    pub remote_addr: SocketAddr,
    /// The name of the listener it arrived on.
    pub listener: String,
    /// The MQTT version the client speaks.
    pub protocol: ProtocolVersion,
}

/// The answer of [`Hook::authenticate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthDecision {
    /// Let the client in; later hooks are not asked.
    Allow,
    /// Refuse with this CONNACK return code (normally
    /// [`ConnectReturnCode::BadUserNameOrPassword`] or
    /// [`ConnectReturnCode::NotAuthorized`]); later hooks are not asked.
    Deny(ConnectReturnCode),
    /// No opinion: ask the next hook, or fall back to the configuration.
    Defer,
}

/// One step of MQTT 5 enhanced authentication (section 4.12), as
/// [`Hook::authenticate_enhanced`] sees it.
///
/// A client names an Authentication Method in its CONNECT; the broker and the client
/// then trade Authentication Data in AUTH packets until the hook that handles the
/// method says yes or no. The same exchange runs again when a connected client
/// re-authenticates (an AUTH with reason 0x19).
#[non_exhaustive]
pub struct AuthExchange<'a> {
    /// The CONNECT (its password removed once the connection is accepted).
    pub connect: &'a ConnectInfo,
    /// The Authentication Method the client named.
    pub method: &'a str,
    /// The Authentication Data of the client's last packet, if any.
    pub data: Option<&'a [u8]>,
    /// Bytes the hook keeps from one step of this exchange to the next (a nonce,
    /// say); empty at the first step.
    pub state: &'a mut Vec<u8>,
    /// Whether a connected client is re-authenticating.
    pub reauthentication: bool,
}

/// The answer of [`Hook::authenticate_enhanced`] to one step.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthStep {
    /// Send the client this Authentication Data in an AUTH with reason 0x18
    /// "Continue authentication", and ask again with its answer.
    Continue(Option<Bytes>),
    /// The client is who it says: it is let in (CONNACK 0x00, or AUTH 0x00 after
    /// re-authentication), with this Authentication Data if any.
    Success(Option<Bytes>),
    /// Refused with this reason code (0x87 "Not authorized", 0x86 "Bad user name or
    /// password", 0x8C "Bad authentication method" ...): in the CONNACK, or in the
    /// DISCONNECT that ends a failed re-authentication.
    Fail(ReasonCode),
    /// This hook does not handle the method: ask the next one. When no hook
    /// handles it, the client is refused with 0x8C "Bad authentication method".
    NotHandled,
}

/// An error inside a hook. The check it happened in denies.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HookError(pub String);

impl HookError {
    /// An error with a message for the log.
    pub fn new(message: impl Into<String>) -> HookError {
        HookError(message.into())
    }
}

/// Why a client's connection ended, as told to [`Hook::on_disconnected`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The client sent DISCONNECT; its will is discarded.
    Disconnect,
    /// The client sent an MQTT 5 DISCONNECT with reason 0x04 "Disconnect with Will
    /// Message": it leaves, and asks for its will to be published.
    DisconnectWithWill,
    /// The network connection closed or failed without a DISCONNECT.
    ConnectionLost(String),
    /// Nothing arrived for one and a half keep-alive periods [MQTT-3.1.2-24].
    KeepAliveTimeout,
    /// The client broke a rule of MQTT; `why` says which. `code` is the reason
    /// code of the DISCONNECT an MQTT 5 client is sent (0x81 malformed packet, 0x82
    /// protocol error, 0x93 receive maximum exceeded, 0x94 topic alias invalid, 0x95
    /// packet too large ...), or `None` when the connection is closed without one.
    /// As mosquitto, the broker explains errors in what a client publishes,
    /// subscribes and unsubscribes, and closes silently on the rest (a broken
    /// acknowledgement, a second CONNECT).
    ProtocolViolation {
        /// The reason code of the DISCONNECT a v5 client is sent, if any.
        code: Option<ReasonCode>,
        /// Which rule, for the log.
        why: String,
    },
    /// Another connection took over the session with the same client identifier
    /// [MQTT-3.1.4-2]; its will is published.
    TakenOver,
    /// Another connection with the same client identifier resumed this persistent
    /// session, itself asking for a persistent one (clean session 0 on both): the
    /// client is still there, so its will is not published, as mosquitto 2.0 does and
    /// MQTT 5 says.
    SessionResumed,
    /// The broker could not send to a client that stopped reading.
    SlowConsumer,
    /// The store could not keep up: too many of the client's packets waited for
    /// it to commit (it is failing, or far slower than the client).
    StoreBehind,
    /// Re-authentication (MQTT 5 AUTH) failed: the hooks refused with this code.
    AuthenticationFailed(ReasonCode),
    /// The broker is shutting down.
    Shutdown,
}

impl DisconnectReason {
    /// A protocol violation answered with 0x82 "Protocol Error".
    pub fn protocol_error(why: impl Into<String>) -> DisconnectReason {
        DisconnectReason::ProtocolViolation {
            code: Some(ReasonCode::PROTOCOL_ERROR),
            why: why.into(),
        }
    }

    /// A protocol violation after which the connection is closed without a
    /// DISCONNECT.
    pub fn protocol_violation(why: impl Into<String>) -> DisconnectReason {
        DisconnectReason::ProtocolViolation {
            code: None,
            why: why.into(),
        }
    }

    /// Whether the client's will is published: always, except after DISCONNECT
    /// ([MQTT-3.1.2-8], [MQTT-3.1.2-10]), when the same client resumed its
    /// persistent session, or when the broker itself stops.
    pub fn publishes_will(&self) -> bool {
        !matches!(
            self,
            DisconnectReason::Disconnect
                | DisconnectReason::SessionResumed
                | DisconnectReason::Shutdown
        )
    }

    /// The reason code of the DISCONNECT the broker sends an MQTT 5 client before
    /// closing its connection [MQTT-3.14.0-1], or `None` when it sends none: the
    /// client left itself, its connection is gone, or it stopped reading.
    pub fn reason_code(&self) -> Option<ReasonCode> {
        match self {
            DisconnectReason::Disconnect
            | DisconnectReason::DisconnectWithWill
            | DisconnectReason::ConnectionLost(_)
            | DisconnectReason::SlowConsumer => None,
            DisconnectReason::KeepAliveTimeout => Some(ReasonCode::KEEP_ALIVE_TIMEOUT),
            DisconnectReason::ProtocolViolation { code, .. } => *code,
            DisconnectReason::TakenOver | DisconnectReason::SessionResumed => {
                Some(ReasonCode::SESSION_TAKEN_OVER)
            }
            DisconnectReason::StoreBehind => Some(ReasonCode::SERVER_BUSY),
            DisconnectReason::AuthenticationFailed(code) => Some(*code),
            DisconnectReason::Shutdown => Some(ReasonCode::SERVER_SHUTTING_DOWN),
        }
    }
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DisconnectReason::Disconnect => f.write_str("client sent DISCONNECT"),
            DisconnectReason::DisconnectWithWill => {
                f.write_str("client sent DISCONNECT asking for its will")
            }
            DisconnectReason::ConnectionLost(why) => write!(f, "connection lost: {why}"),
            DisconnectReason::KeepAliveTimeout => f.write_str("keep-alive timeout"),
            DisconnectReason::ProtocolViolation { why, .. } => {
                write!(f, "protocol violation: {why}")
            }
            DisconnectReason::TakenOver => {
                f.write_str("session taken over by a new connection with the same client id")
            }
            DisconnectReason::SessionResumed => f.write_str(
                "persistent session resumed by a new connection with the same client id",
            ),
            DisconnectReason::SlowConsumer => {
                f.write_str("client stopped reading and its outgoing queue is full")
            }
            DisconnectReason::StoreBehind => {
                f.write_str("too many packets wait for the store to commit")
            }
            DisconnectReason::AuthenticationFailed(code) => {
                write!(f, "re-authentication failed ({code})")
            }
            DisconnectReason::Shutdown => f.write_str("broker shutting down"),
        }
    }
}

/// Decisions and observations an embedding program plugs into the broker.
///
/// Every method has a default: checks allow (authentication defers to the
/// configuration) and observers do nothing. Implement what you need and register
/// the hook with [`Broker::add_hook`](super::Broker::add_hook) or
/// [`BrokerBuilder::hook`](super::BrokerBuilder::hook). Several hooks are asked in the
/// order they were added:
///
/// - [`authenticate`](Hook::authenticate): the first hook that returns
///   [`AuthDecision::Allow`] or [`AuthDecision::Deny`] decides. When every hook says
///   [`AuthDecision::Defer`], nobody has checked the client's credentials: it counts
///   as anonymous, user name or not, and is let in only where anonymous clients are
///   (see [`AuthConfig::allows_anonymous_on`](crate::config::AuthConfig::allows_anonymous_on)),
///   as in mosquitto.
/// - [`authorize_subscribe`](Hook::authorize_subscribe) and
///   [`authorize_publish`](Hook::authorize_publish): every hook must allow.
/// - the `on_*` observers: every hook is told.
///
/// Checks fail closed: a hook that returns an error or panics denies, the panic is
/// caught and logged, and the broker goes on serving everyone else.
///
/// Authentication runs on the connecting client's own thread, not on the router, so
/// a slow password hash delays only that client. Authorization runs on the thread of
/// the client that publishes or subscribes. Observers run on the router thread and
/// must return quickly.
///
/// ```
/// use wren::broker::{AuthDecision, ConnectInfo, Hook, HookError};
/// use wren::protocol::ConnectReturnCode;
///
/// /// Lets in only the user "sensor" with the password "secret".
/// struct OneUser;
///
/// impl Hook for OneUser {
///     fn authenticate(&self, connect: &ConnectInfo) -> Result<AuthDecision, HookError> {
///         match (connect.username.as_deref(), connect.password.as_deref()) {
///             (Some("sensor"), Some(b"secret")) => Ok(AuthDecision::Allow),
///             _ => Ok(AuthDecision::Deny(ConnectReturnCode::BadUserNameOrPassword)),
///         }
///     }
/// }
/// # let _ = OneUser;
/// ```
pub trait Hook: Send + Sync {
    /// May this client connect? Runs on the client's connection thread.
    fn authenticate(&self, connect: &ConnectInfo) -> Result<AuthDecision, HookError> {
        let _ = connect;
        Ok(AuthDecision::Defer)
    }

    /// One step of MQTT 5 enhanced authentication, for a client that named an
    /// Authentication Method (see [`AuthExchange`]). Runs on the client's connection
    /// thread, instead of [`authenticate`](Hook::authenticate), at each step of the
    /// exchange. The default handles no method.
    fn authenticate_enhanced(
        &self,
        exchange: &mut AuthExchange<'_>,
    ) -> Result<AuthStep, HookError> {
        let _ = exchange;
        Ok(AuthStep::NotHandled)
    }

    /// May this client subscribe to `filter`? A refusal answers SUBACK 0x80 for that
    /// filter [MQTT-3.9.3-1].
    fn authorize_subscribe(&self, client: &ClientInfo, filter: &TopicFilter) -> bool {
        let _ = (client, filter);
        true
    }

    /// May this client publish to `topic`? A refused PUBLISH is acknowledged as usual
    /// and dropped, as MQTT 3.1.1 has no way to say no [MQTT-3.3.5-2]; a refused will
    /// topic refuses the CONNECT with 0x05.
    fn authorize_publish(&self, client: &ClientInfo, topic: &TopicName) -> bool {
        let _ = (client, topic);
        true
    }

    /// May this subscriber receive a message published to `topic`? Asked for every
    /// delivery, as mosquitto checks read access: a subscription to `a/#` may be
    /// allowed while some topics below `a/` are not. A refused message is skipped
    /// for this subscriber only. Not asked when no hook is registered.
    fn authorize_receive(&self, client: &ClientInfo, topic: &TopicName) -> bool {
        let _ = (client, topic);
        true
    }

    /// A client's CONNECT was accepted.
    fn on_connected(&self, client: &ClientInfo) {
        let _ = client;
    }

    /// A client's connection ended.
    fn on_disconnected(&self, client: &ClientInfo, reason: &DisconnectReason) {
        let _ = (client, reason);
    }

    /// The broker accepted a message from a client (after the authorization check).
    fn on_published(&self, client: &ClientInfo, publish: &Publish) {
        let _ = (client, publish);
    }

    /// The broker handed a message to a subscriber's connection.
    fn on_delivered(&self, client: &ClientInfo, publish: &Publish) {
        let _ = (client, publish);
    }

    /// A client subscribed to `filter` and was granted `qos`.
    fn on_subscribed(&self, client: &ClientInfo, filter: &TopicFilter, qos: QoS) {
        let _ = (client, filter, qos);
    }

    /// A client unsubscribed from `filter`.
    fn on_unsubscribed(&self, client: &ClientInfo, filter: &TopicFilter) {
        let _ = (client, filter);
    }
}

/// The registered hooks, shared by the connection threads and the router.
///
/// The list is replaced whole when a hook is added (rare) and shared as one `Arc`
/// when it is used (for every PUBLISH and, with hooks, every delivery), so using it
/// costs a reference count, not a copy of the list. A broker without hooks does not
/// even pay that: a flag read says there is nothing to ask, with no lock and no
/// write to memory that every connection thread shares.
#[derive(Clone)]
pub(crate) struct Hooks {
    hooks: Arc<RwLock<HookList>>,
    any: Arc<AtomicBool>,
}

/// An immutable list of hooks, shared by reference count.
type HookList = Arc<[Arc<dyn Hook>]>;

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            hooks: Arc::new(RwLock::new(Arc::from(Vec::new()))),
            any: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl Hooks {
    pub(crate) fn add(&self, hook: Arc<dyn Hook>) {
        let mut hooks = self.hooks.write();
        let mut list = hooks.to_vec();
        list.push(hook);
        *hooks = Arc::from(list);
        self.any.store(true, Ordering::Release);
    }

    /// The hooks registered now; an observer may register another meanwhile without
    /// deadlocking.
    fn snapshot(&self) -> HookList {
        Arc::clone(&self.hooks.read())
    }

    /// Runs the authentication chain; `None` means every hook deferred.
    pub(crate) fn authenticate(&self, connect: &ConnectInfo) -> Option<AuthDecision> {
        for hook in self.snapshot().iter() {
            let result = catch_unwind(AssertUnwindSafe(|| hook.authenticate(connect)));
            match result {
                Ok(Ok(AuthDecision::Defer)) => continue,
                Ok(Ok(decision)) => return Some(decision),
                Ok(Err(error)) => {
                    log::warn!(
                        "Authentication hook failed for client {}: {error}; refusing.",
                        connect.client_id
                    );
                    return Some(AuthDecision::Deny(ConnectReturnCode::NotAuthorized));
                }
                Err(_) => {
                    log::error!(
                        "Authentication hook panicked for client {}; refusing.",
                        connect.client_id
                    );
                    return Some(AuthDecision::Deny(ConnectReturnCode::NotAuthorized));
                }
            }
        }
        None
    }

    /// Runs one step of enhanced authentication: the first hook that handles the
    /// method answers. An error or a panic refuses with 0x87 (fail closed).
    pub(crate) fn authenticate_enhanced(&self, exchange: &mut AuthExchange<'_>) -> AuthStep {
        for hook in self.snapshot().iter() {
            let result = catch_unwind(AssertUnwindSafe(|| hook.authenticate_enhanced(exchange)));
            match result {
                Ok(Ok(AuthStep::NotHandled)) => continue,
                Ok(Ok(step)) => return step,
                Ok(Err(error)) => {
                    log::warn!(
                        "Enhanced authentication hook failed for client {}: {error}; refusing.",
                        exchange.connect.client_id
                    );
                    return AuthStep::Fail(ReasonCode::NOT_AUTHORIZED);
                }
                Err(_) => {
                    log::error!(
                        "Enhanced authentication hook panicked for client {}; refusing.",
                        exchange.connect.client_id
                    );
                    return AuthStep::Fail(ReasonCode::NOT_AUTHORIZED);
                }
            }
        }
        AuthStep::NotHandled
    }

    pub(crate) fn authorize_subscribe(&self, client: &ClientInfo, filter: &TopicFilter) -> bool {
        self.all_allow("subscribe", client, |hook| {
            hook.authorize_subscribe(client, filter)
        })
    }

    pub(crate) fn authorize_publish(&self, client: &ClientInfo, topic: &TopicName) -> bool {
        self.all_allow("publish", client, |hook| {
            hook.authorize_publish(client, topic)
        })
    }

    pub(crate) fn authorize_receive(&self, client: &ClientInfo, topic: &TopicName) -> bool {
        self.all_allow("receive", client, |hook| {
            hook.authorize_receive(client, topic)
        })
    }

    fn all_allow(
        &self,
        what: &str,
        client: &ClientInfo,
        check: impl Fn(&dyn Hook) -> bool,
    ) -> bool {
        if self.is_empty() {
            return true;
        }
        for hook in self.snapshot().iter() {
            match catch_unwind(AssertUnwindSafe(|| check(hook.as_ref()))) {
                Ok(true) => {}
                Ok(false) => return false,
                Err(_) => {
                    log::error!(
                        "Authorization hook ({what}) panicked for client {}; denying.",
                        client.client_id
                    );
                    return false;
                }
            }
        }
        true
    }

    /// Tells every hook; a panicking observer is logged and skipped.
    pub(crate) fn observe(&self, what: &str, notify: impl Fn(&dyn Hook)) {
        if self.is_empty() {
            return;
        }
        for hook in self.snapshot().iter() {
            if catch_unwind(AssertUnwindSafe(|| notify(hook.as_ref()))).is_err() {
                log::error!("A hook panicked in {what}; ignored.");
            }
        }
    }

    /// Whether any hook is registered (observers are skipped entirely when none is).
    pub(crate) fn is_empty(&self) -> bool {
        !self.any.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> ClientInfo {
        ClientInfo {
            client_id: "c".into(),
            username: None,
            remote_addr: SocketAddr::from(([127, 0, 0, 1], 1)),
            listener: "test".into(),
            protocol: ProtocolVersion::V3_1_1,
        }
    }

    fn connect() -> ConnectInfo {
        ConnectInfo {
            client_id: "c".into(),
            username: Some("u".into()),
            password: None,
            remote_addr: SocketAddr::from(([127, 0, 0, 1], 1)),
            listener: "test".into(),
            protocol: ProtocolVersion::V3_1_1,
            clean_session: true,
        }
    }

    struct Panics;
    impl Hook for Panics {
        fn authenticate(&self, _: &ConnectInfo) -> Result<AuthDecision, HookError> {
            panic!("boom")
        }
        fn authorize_publish(&self, _: &ClientInfo, _: &TopicName) -> bool {
            panic!("boom")
        }
        fn on_connected(&self, _: &ClientInfo) {
            panic!("boom")
        }
    }

    struct Fails;
    impl Hook for Fails {
        fn authenticate(&self, _: &ConnectInfo) -> Result<AuthDecision, HookError> {
            Err(HookError::new("database unreachable"))
        }
    }

    struct AllowAll;
    impl Hook for AllowAll {
        fn authenticate(&self, _: &ConnectInfo) -> Result<AuthDecision, HookError> {
            Ok(AuthDecision::Allow)
        }
    }

    struct DenyTopic;
    impl Hook for DenyTopic {
        fn authorize_subscribe(&self, _: &ClientInfo, filter: &TopicFilter) -> bool {
            filter.as_str() != "secret"
        }
    }

    #[test]
    fn no_hooks_means_no_opinion_and_everything_authorized() {
        let hooks = Hooks::default();
        assert_eq!(hooks.authenticate(&connect()), None);
        assert!(hooks.authorize_publish(&client(), &TopicName::new("a").unwrap()));
    }

    #[test]
    fn a_panicking_or_failing_hook_denies_invariant_5() {
        for hook in [Arc::new(Panics) as Arc<dyn Hook>, Arc::new(Fails)] {
            let hooks = Hooks::default();
            hooks.add(hook);
            hooks.add(Arc::new(AllowAll));
            assert_eq!(
                hooks.authenticate(&connect()),
                Some(AuthDecision::Deny(ConnectReturnCode::NotAuthorized))
            );
        }
        let hooks = Hooks::default();
        hooks.add(Arc::new(Panics));
        assert!(!hooks.authorize_publish(&client(), &TopicName::new("a").unwrap()));
        hooks.observe("on_connected", |h| h.on_connected(&client()));
    }

    #[test]
    fn the_first_decisive_hook_wins_and_every_hook_must_authorize() {
        let hooks = Hooks::default();
        hooks.add(Arc::new(DenyTopic));
        hooks.add(Arc::new(AllowAll));
        assert_eq!(hooks.authenticate(&connect()), Some(AuthDecision::Allow));
        assert!(!hooks.authorize_subscribe(&client(), &TopicFilter::new("secret").unwrap()));
        assert!(hooks.authorize_subscribe(&client(), &TopicFilter::new("open").unwrap()));
    }
}
