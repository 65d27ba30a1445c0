//! [`MemoryStorage`]: the storage contract kept in memory.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{
    Change, SessionRecord, Storage, StorageError, StoredMessage, StoredSession, StoredState,
};
use crate::protocol::{PacketId, Publish};

/// Keeps what a store keeps in memory: it lasts as long as the process. Clones
/// share one store, so a program can give a clone to a [`Broker`](crate::broker::Broker),
/// stop it, and start another broker on the same state:
///
/// ```no_run
/// use wren::broker::{Broker, MemoryStorage};
/// use wren::config::BrokerConfig;
///
/// let config = BrokerConfig::with_tcp_listener("127.0.0.1:1883".parse()?);
/// let store = MemoryStorage::new();
/// let broker = Broker::builder(config.clone())
///     .storage(Box::new(store.clone()))
///     .start()?;
/// // ... clients connect, subscribe with persistent sessions, publish ...
/// broker.shutdown();
/// // The sessions, their messages and the retained messages are back.
/// let again = Broker::builder(config).storage(Box::new(store)).start()?;
/// # drop(again);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    inner: Arc<Mutex<Contents>>,
}

#[derive(Debug, Default)]
struct Contents {
    retained: BTreeMap<String, Publish>,
    sessions: BTreeMap<String, Held>,
}

#[derive(Debug)]
struct Held {
    record: Option<SessionRecord>,
    messages: BTreeMap<u64, StoredMessage>,
    awaiting_pubrel: BTreeSet<PacketId>,
}

impl Held {
    fn new() -> Held {
        Held {
            record: None,
            messages: BTreeMap::new(),
            awaiting_pubrel: BTreeSet::new(),
        }
    }
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }
}

impl MemoryStorage {
    /// What the store holds now: what a broker started on it would load.
    pub fn contents(&self) -> StoredState {
        let contents = self.inner.lock();
        StoredState {
            retained: contents.retained.values().cloned().collect(),
            sessions: contents
                .sessions
                .values()
                .filter_map(|held| {
                    Some(StoredSession {
                        record: held.record.clone()?,
                        messages: held
                            .messages
                            .iter()
                            .map(|(seq, message)| (*seq, message.clone()))
                            .collect(),
                        awaiting_pubrel: held.awaiting_pubrel.iter().copied().collect(),
                    })
                })
                .collect(),
        }
    }
}

impl Storage for MemoryStorage {
    fn load(&mut self) -> Result<StoredState, StorageError> {
        Ok(self.contents())
    }

    fn commit(&mut self, changes: &[Change]) -> Result<(), StorageError> {
        let mut contents = self.inner.lock();
        for change in changes {
            contents.apply(change);
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}

impl Contents {
    fn apply(&mut self, change: &Change) {
        match change {
            Change::Retain(publish) => {
                self.retained
                    .insert(publish.topic.to_string(), publish.clone());
            }
            Change::ClearRetained(topic) => {
                self.retained.remove(topic);
            }
            Change::Session(record) => {
                self.session(&record.client_id).record = Some(record.clone());
            }
            Change::RemoveSession(client_id) => {
                self.sessions.remove(client_id);
            }
            Change::PutMessage {
                client_id,
                seq,
                message,
            } => {
                self.session(client_id)
                    .messages
                    .insert(*seq, message.clone());
            }
            Change::RemoveMessage { client_id, seq } => {
                if let Some(held) = self.sessions.get_mut(client_id) {
                    held.messages.remove(seq);
                }
            }
            Change::Receive {
                client_id,
                packet_id,
            } => {
                self.session(client_id).awaiting_pubrel.insert(*packet_id);
            }
            Change::Release {
                client_id,
                packet_id,
            } => {
                if let Some(held) = self.sessions.get_mut(client_id) {
                    held.awaiting_pubrel.remove(packet_id);
                }
            }
        }
    }

    fn session(&mut self, client_id: &str) -> &mut Held {
        self.sessions
            .entry(client_id.to_string())
            .or_insert_with(Held::new)
    }
}
