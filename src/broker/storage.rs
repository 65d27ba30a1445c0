//! Where the broker keeps what must outlive it: retained messages and persistent
//! sessions.
//!
//! The router calls a [`Storage`] when a retained message changes, when a persistent
//! session's subscriptions change or its client disconnects, and at shutdown; it
//! loads everything back at start. [`MemoryStorage`], the default, keeps it in memory
//! (so nothing survives the process); a store on disk implements the same trait and
//! is given to [`BrokerBuilder::storage`](super::BrokerBuilder::storage).
//!
//! Calls happen on the router thread, so an implementation should be quick (buffer
//! and write in [`Storage::flush`], for instance).

use std::collections::BTreeMap;

use crate::protocol::{PacketId, Publish, QoS, TopicFilter};

/// An error of the store. The router logs it and goes on serving clients.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// Reading or writing the store failed.
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The stored data cannot be understood.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// An unacknowledged outbound message of a saved session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoredInflight {
    /// A QoS 1 or 2 PUBLISH sent and not yet PUBACK'd or PUBREC'd; it holds its
    /// packet identifier.
    Publish(Publish),
    /// A QoS 2 message PUBREC'd, waiting for PUBCOMP.
    PubRel(PacketId),
}

/// A persistent session as saved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredSession {
    /// The client identifier the session belongs to.
    pub client_id: String,
    /// The user name of the client that made the session: a client with another
    /// user name (or none) gets a fresh session instead of this one.
    pub username: Option<String>,
    /// Its subscriptions and their granted QoS.
    pub subscriptions: Vec<(TopicFilter, QoS)>,
    /// Sent and unacknowledged messages, oldest first.
    pub inflight: Vec<StoredInflight>,
    /// Messages waiting to be sent, oldest first.
    pub queued: Vec<Publish>,
    /// Inbound QoS 2 packet identifiers received and not yet released by PUBREL.
    pub awaiting_pubrel: Vec<PacketId>,
}

impl StoredSession {
    /// A saved session with subscriptions only.
    pub fn new(client_id: impl Into<String>) -> StoredSession {
        StoredSession {
            client_id: client_id.into(),
            username: None,
            subscriptions: Vec::new(),
            inflight: Vec::new(),
            queued: Vec::new(),
            awaiting_pubrel: Vec::new(),
        }
    }
}

/// Where the broker keeps what must outlive it: retained messages and persistent
/// sessions.
///
/// The router calls it when a retained message changes, when a persistent session's
/// subscriptions change or its client disconnects, and at shutdown (then
/// [`flush`](Storage::flush)); it loads everything back at start. [`MemoryStorage`],
/// the default, keeps it in memory; a store on disk implements this trait and is
/// given to [`BrokerBuilder::storage`](super::BrokerBuilder::storage).
///
/// Calls happen on the router thread, so an implementation should be quick (buffer,
/// and write in `flush`, which runs after each batch of work). An error is logged
/// and the broker goes on serving clients.
pub trait Storage: Send {
    /// Stores `message` as the retained message of its topic, replacing any other.
    fn save_retained(&mut self, message: &Publish) -> Result<(), StorageError>;
    /// Removes the retained message of `topic`.
    fn remove_retained(&mut self, topic: &str) -> Result<(), StorageError>;
    /// Every retained message, at start.
    fn load_retained(&mut self) -> Result<Vec<Publish>, StorageError>;
    /// Stores `session`, replacing any saved under the same client identifier.
    fn save_session(&mut self, session: &StoredSession) -> Result<(), StorageError>;
    /// Removes the session of `client_id` (a clean session replaced it).
    fn remove_session(&mut self, client_id: &str) -> Result<(), StorageError>;
    /// Every saved session, at start.
    fn load_sessions(&mut self) -> Result<Vec<StoredSession>, StorageError>;
    /// Makes everything saved so far durable. Called after each batch of work and at
    /// shutdown.
    fn flush(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
}

/// Keeps retained messages and sessions in memory: they last as long as the process.
/// The default store.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    retained: BTreeMap<String, Publish>,
    sessions: BTreeMap<String, StoredSession>,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }
}

impl Storage for MemoryStorage {
    fn save_retained(&mut self, message: &Publish) -> Result<(), StorageError> {
        self.retained
            .insert(message.topic.to_string(), message.clone());
        Ok(())
    }

    fn remove_retained(&mut self, topic: &str) -> Result<(), StorageError> {
        self.retained.remove(topic);
        Ok(())
    }

    fn load_retained(&mut self) -> Result<Vec<Publish>, StorageError> {
        Ok(self.retained.values().cloned().collect())
    }

    fn save_session(&mut self, session: &StoredSession) -> Result<(), StorageError> {
        self.sessions
            .insert(session.client_id.clone(), session.clone());
        Ok(())
    }

    fn remove_session(&mut self, client_id: &str) -> Result<(), StorageError> {
        self.sessions.remove(client_id);
        Ok(())
    }

    fn load_sessions(&mut self) -> Result<Vec<StoredSession>, StorageError> {
        Ok(self.sessions.values().cloned().collect())
    }
}
