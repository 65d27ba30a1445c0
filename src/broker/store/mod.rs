//! Where the broker keeps what must outlive it: retained messages, persistent
//! sessions and the QoS 1/2 messages they hold.
//!
//! The router never writes to a store itself. As it handles a batch of events it
//! writes down each [`Change`] to what must survive (a retained message set, a
//! message queued for a persistent session, a packet identifier released ...);
//! at the end of the batch it hands the list to the storage thread, which
//! [`commit`](Storage::commit)s it in one transaction while the router goes on
//! routing (group commit). The acknowledgements the batch produced (PUBACK,
//! PUBREC, PUBCOMP, SUBACK, UNSUBACK, CONNACK) and the messages it sent to
//! persistent sessions wait until that commit returns: nothing is acknowledged
//! before it is durable (DESIGN, "Durability"). QoS 0 messages and clean sessions
//! never reach a store.
//!
//! Two stores implement [`Storage`]:
//!
//! - [`FileStorage`]: an embedded, crash-safe database in one file (redb), what
//!   `persistence: {enabled: true, path: ...}` opens;
//! - [`MemoryStorage`]: the same contract in memory, shared by its clones, so a
//!   program can stop a [`Broker`](super::Broker) and start another with the
//!   state of the first (and the router's tests can read what was committed).
//!
//! Without a store (the default), the router writes nothing down at all.

mod file;
mod memory;
mod thread;

pub use file::FileStorage;
pub use memory::MemoryStorage;
pub(crate) use thread::{Commit, StorageThread};

use std::net::SocketAddr;

use crate::protocol::{PacketId, ProtocolVersion, Publish, QoS, TopicFilter};

/// An error of the store. A failed commit withholds the acknowledgements that
/// waited for it; the router logs it, counts it, and tries again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// Reading or writing the store failed.
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The stored data cannot be understood: the message names the file and
    /// what is wrong. The broker refuses to start on it rather than start empty.
    #[error("the store is corrupt: {0}")]
    Corrupt(String),
    /// Another process (a second broker) has the store open.
    #[error("the store {0} is in use by another process (is another broker running on it?)")]
    InUse(String),
    /// Any other failure of the database under the store.
    #[error("storage error: {0}")]
    Backend(String),
}

/// The client a persistent session belongs to, as last seen: read access for the
/// session's messages is checked against it while the client is away, across a
/// restart too.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredOwner {
    /// The user name the client authenticated with, if any. A client with another
    /// user name (or none) gets a fresh session instead of this one.
    pub username: Option<String>,
    /// Where its last connection came from.
    pub remote_addr: Option<SocketAddr>,
    /// The listener its last connection arrived on.
    pub listener: String,
    /// The MQTT version it spoke.
    pub protocol: ProtocolVersion,
}

impl StoredOwner {
    /// The owner of a session, for a store that loads sessions it kept itself.
    pub fn new(
        username: Option<String>,
        remote_addr: Option<SocketAddr>,
        listener: impl Into<String>,
        protocol: ProtocolVersion,
    ) -> StoredOwner {
        StoredOwner {
            username,
            remote_addr,
            listener: listener.into(),
            protocol,
        }
    }
}

/// A subscription of a persistent session, with the MQTT 5 options that change
/// what its messages look like (section 3.8.3.1), so a session taken back after a
/// restart delivers as it did before.
///
/// MQTT 3.1 and 3.1.1 subscriptions have every option off; [`new`](Self::new)
/// makes one, and the `with_` builders set the MQTT 5 options.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredSubscription {
    /// The topic filter subscribed to.
    pub filter: TopicFilter,
    /// The QoS granted: the most its messages are delivered with.
    pub qos: QoS,
    /// No Local: the client's own messages are not sent back to it on this
    /// subscription [MQTT-3.8.3-3].
    pub no_local: bool,
    /// Retain As Published: messages keep the RETAIN flag they were published with
    /// instead of having it cleared.
    pub retain_as_published: bool,
    /// The Subscription Identifier (1 to 268,435,455) the client gave the
    /// subscription, sent back with every message it matches.
    pub identifier: Option<u32>,
}

impl StoredSubscription {
    /// A subscription to `filter` granted `qos`, every MQTT 5 option off: what an
    /// MQTT 3.1 or 3.1.1 subscription is.
    pub fn new(filter: TopicFilter, qos: QoS) -> StoredSubscription {
        StoredSubscription {
            filter,
            qos,
            no_local: false,
            retain_as_published: false,
            identifier: None,
        }
    }

    /// The subscription with No Local set as given.
    pub fn with_no_local(mut self, no_local: bool) -> StoredSubscription {
        self.no_local = no_local;
        self
    }

    /// The subscription with Retain As Published set as given.
    pub fn with_retain_as_published(mut self, retain_as_published: bool) -> StoredSubscription {
        self.retain_as_published = retain_as_published;
        self
    }

    /// The subscription with the Subscription Identifier given (`None`: none).
    pub fn with_identifier(mut self, identifier: Option<u32>) -> StoredSubscription {
        self.identifier = identifier;
        self
    }
}

/// A persistent session's own record: who owns it, what it subscribed to and how
/// long it outlives its connection. Its messages are stored one by one beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionRecord {
    /// The client identifier the session belongs to.
    pub client_id: String,
    /// The client that made it.
    pub owner: StoredOwner,
    /// Its subscriptions, their granted QoS and options.
    pub subscriptions: Vec<StoredSubscription>,
    /// Seconds the session outlives its connection (MQTT 5 Session Expiry
    /// Interval); `u32::MAX` means never, the MQTT 5 meaning of 0xFFFFFFFF and what
    /// every MQTT 3.1 and 3.1.1 persistent session gets.
    pub session_expiry_interval: u32,
}

impl SessionRecord {
    /// A session's record, for a store that loads sessions it kept itself; its
    /// session never expires ([`with_session_expiry_interval`] changes that).
    ///
    /// [`with_session_expiry_interval`]: Self::with_session_expiry_interval
    pub fn new(
        client_id: impl Into<String>,
        owner: StoredOwner,
        subscriptions: Vec<StoredSubscription>,
    ) -> SessionRecord {
        SessionRecord {
            client_id: client_id.into(),
            owner,
            subscriptions,
            session_expiry_interval: u32::MAX,
        }
    }

    /// The record with its session outliving its connection by `seconds`
    /// (`u32::MAX`: never expiring).
    pub fn with_session_expiry_interval(mut self, seconds: u32) -> SessionRecord {
        self.session_expiry_interval = seconds;
        self
    }
}

/// A QoS 1 or 2 message held by a persistent session for its client, in one of its
/// three states (section 4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoredMessage {
    /// Waiting to be sent. The message keeps its MQTT 5 properties (an empty set
    /// may load as `None`, which means the same).
    Queued(Publish),
    /// Sent (it holds its packet identifier) and not yet PUBACK'd or PUBREC'd.
    Sent(Publish),
    /// A QoS 2 message PUBREC'd: PUBREL sent, waiting for PUBCOMP. Only the packet
    /// identifier is kept; the client has the message.
    Released(PacketId),
}

/// One change to what the store holds. A batch of them is committed at once.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// The retained message of its topic, replacing any other.
    Retain(Publish),
    /// The retained message of this topic is cleared.
    ClearRetained(String),
    /// A persistent session is made, or its owner or subscriptions changed: the
    /// record replaces any stored under the same client identifier (its messages
    /// stay).
    Session(SessionRecord),
    /// The session of this client identifier ends: its record, messages and packet
    /// identifiers go.
    RemoveSession(String),
    /// A message of a session, new or in a new state; `seq` orders a session's
    /// messages and names one.
    PutMessage {
        /// Whose message it is.
        client_id: String,
        /// Its place in the session, unique and increasing.
        seq: u64,
        /// The message in its state.
        message: StoredMessage,
    },
    /// A message of a session is done (acknowledged) or dropped.
    RemoveMessage {
        /// Whose message it was.
        client_id: String,
        /// Its place in the session.
        seq: u64,
    },
    /// An inbound QoS 2 packet identifier is held until PUBREL [MQTT-4.3.3-2].
    Receive {
        /// Whose packet identifier it is.
        client_id: String,
        /// The identifier.
        packet_id: PacketId,
    },
    /// A PUBREL released an inbound QoS 2 packet identifier.
    Release {
        /// Whose packet identifier it was.
        client_id: String,
        /// The identifier.
        packet_id: PacketId,
    },
}

/// A persistent session as loaded at start.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredSession {
    /// Its record.
    pub record: SessionRecord,
    /// Its messages in `seq` order, oldest first.
    pub messages: Vec<(u64, StoredMessage)>,
    /// Inbound QoS 2 packet identifiers received and not yet released by PUBREL.
    pub awaiting_pubrel: Vec<PacketId>,
}

impl StoredSession {
    /// A session as a store loads it: its record, its messages in `seq` order and
    /// its inbound QoS 2 packet identifiers waiting for PUBREL.
    pub fn new(
        record: SessionRecord,
        messages: Vec<(u64, StoredMessage)>,
        awaiting_pubrel: Vec<PacketId>,
    ) -> StoredSession {
        StoredSession {
            record,
            messages,
            awaiting_pubrel,
        }
    }
}

/// Everything a store holds, as loaded at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredState {
    /// The retained messages.
    pub retained: Vec<Publish>,
    /// The persistent sessions.
    pub sessions: Vec<StoredSession>,
}

impl StoredState {
    /// What a store loads: its retained messages and persistent sessions.
    pub fn new(retained: Vec<Publish>, sessions: Vec<StoredSession>) -> StoredState {
        StoredState { retained, sessions }
    }
}

/// Where the broker keeps what must outlive it.
///
/// A store of your own (a database the program already has, say) implements it;
/// the types it loads have constructors (`StoredState::new`, `StoredSession::new`,
/// `SessionRecord::new`, `StoredSubscription::new`, `StoredOwner::new`), and [`MemoryStorage`] shows the
/// meaning of each [`Change`] in a few lines.
///
/// [`commit`](Storage::commit) runs on the broker's storage thread, one batch at a
/// time, while the router goes on: it may take the time a disk needs. When it
/// returns `Ok`, every change of the batch must survive a crash of the process
/// (and, for a store on disk, of the machine); when it returns an error, none of
/// them may be visible after a restart. [`load`](Storage::load) runs once, before
/// the broker serves anyone.
pub trait Storage: Send {
    /// Everything stored, at start.
    fn load(&mut self) -> Result<StoredState, StorageError>;
    /// Makes `changes` durable, all or none, in the order given.
    fn commit(&mut self, changes: &[Change]) -> Result<(), StorageError>;
    /// Where the store is, for log lines ("memory", or a path).
    fn describe(&self) -> String;
}
