//! [`FileStorage`]: the storage contract in one file on disk, kept by
//! [redb](https://www.redb.org), a pure-Rust, ACID, crash-safe embedded
//! database with no server.
//!
//! # Layout
//!
//! The file is one redb database with five tables:
//!
//! | table      | key                        | value                       |
//! |------------|----------------------------|-----------------------------|
//! | `meta`     | `&str` (`"format"`)        | `u32`: the format version   |
//! | `retained` | topic (`&str`)             | an encoded [`Publish`]      |
//! | `sessions` | client identifier (`&str`) | an encoded [`SessionRecord`]|
//! | `messages` | `(client identifier, seq)` | an encoded [`StoredMessage`]|
//! | `incoming` | `(client identifier, packet identifier)` | nothing      |
//!
//! redb orders a tuple key element by element, so one client's messages are one
//! contiguous range, oldest `seq` first, and its inbound QoS 2 packet identifiers
//! another: loading a session and removing one are range operations, and a
//! client identifier that is a prefix of another ("a", "ab") is a different range.
//!
//! # Encoding
//!
//! Values are a compact binary written by hand rather than serde, so that the
//! format on disk is exactly what this file says and cannot drift with a derive.
//! Every value starts with a tag byte that names what follows (and so its
//! encoding: a later format adds tags, it does not reinterpret old ones); integers
//! are big-endian; a string is its length (`u16`, or `u8` for a socket address)
//! then its UTF-8; a payload is a `u32` length then its bytes.
//!
//! - A message (`Publish`) is a flags byte (QoS in bits 0-1, RETAIN in bit 2, bit
//!   3 when a packet identifier follows), the packet identifier (`u16`) if any,
//!   the topic, the payload, then (format 2) its MQTT 5 properties exactly as a
//!   PUBLISH carries them: the property length (a variable byte integer, 0 for
//!   none) and the properties, written and read by the protocol's own property
//!   codec (`PropertyContext::Publish`, user properties in their order). DUP is
//!   not kept: a stored message is resent with DUP set by its session anyway.
//! - `retained`: tag 2, then a message with properties; tag 1 (format 1), a
//!   message without.
//! - `sessions`: tag 2, the user name (a presence byte 0 or 1, then the string),
//!   the remote address (a presence byte, then its text form), the listener, the
//!   protocol level (3, 4 or 5), the session expiry interval (`u32`, `u32::MAX`
//!   for never), the number of subscriptions (`u32`), then each filter, its QoS
//!   byte, its options byte (No Local in bit 0, Retain As Published in bit 1, bit
//!   2 when a Subscription Identifier (`u32`) follows) and the identifier if any.
//!   Tag 1 (format 1) is the same without the expiry interval and without the
//!   options and identifiers: it loads with every option off and an interval of
//!   `u32::MAX`. The client identifier is the key, not repeated.
//! - `messages`: tag 4 `Queued` or 5 `Sent`, then a message with properties; tag 3
//!   `Released`, then the packet identifier; tags 1 `Queued` and 2 `Sent` (format
//!   1), then a message without properties.
//!
//! Decoding checks every length against what remains and rejects trailing bytes: a
//! record that does not decode makes [`load`](Storage::load) fail with
//! [`StorageError::Corrupt`] naming the file and the table, never a silently
//! emptier broker.
//!
//! # Format version
//!
//! `meta` holds the format version (now 2) under the key `format`, written when
//! the file is made and checked at every open: a file of an unknown version is
//! refused as corrupt rather than misread. A file of version 1 (an earlier
//! release) is read as it is, by the tags of its values, and marked version 2 when
//! opened, since what this code writes into it from then on is of version 2: an
//! earlier release then refuses the file by its version.
//!
//! # Size
//!
//! Removed records free their pages and redb reuses them, so a store whose sessions
//! come and go stays the size of what it holds at its busiest. The file does not
//! shrink by itself, though: [`FileStorage::open`] compacts it once, so a file grown
//! by an old backlog gives (most of) the space back at the next start. An empty
//! store takes a few megabytes: redb reserves its allocator state up front.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableTable, TableDefinition};

mod codec;
#[cfg(test)]
mod tests;

use self::codec::*;

use super::{Change, Storage, StorageError};
use super::{StoredSession, StoredState};
use crate::protocol::PacketId;

/// The version of the layout and encoding this code writes.
const FORMAT_VERSION: u32 = 2;
/// The oldest version this code reads: a file of it is marked [`FORMAT_VERSION`]
/// when opened, its values read by their tags as they are.
const OLDEST_FORMAT_VERSION: u32 = 1;
/// The key of the format version in `meta`.
const FORMAT_KEY: &str = "format";

const META: TableDefinition<&str, u32> = TableDefinition::new("meta");
const RETAINED: TableDefinition<&str, &[u8]> = TableDefinition::new("retained");
const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
const MESSAGES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("messages");
const INCOMING: TableDefinition<(&str, u16), ()> = TableDefinition::new("incoming");

/// An embedded, crash-safe store in one file: what the broker opens for
/// `persistence: {enabled: true, path: ...}`.
///
/// Each [`commit`](Storage::commit) is one redb write transaction, made durable
/// (written and fsync'd) before it returns, so a committed batch survives a crash
/// of the process or of the machine, and a batch cut short by one leaves no trace.
/// The file is locked while open: a second broker on it is refused with
/// [`StorageError::InUse`].
///
/// The file holds five redb tables: `meta` (the format version, checked at
/// open), `retained` (by topic), `sessions` (by client identifier), `messages`
/// (by client identifier and `seq`) and `incoming` (inbound QoS 2 packet
/// identifiers by client identifier), their values in a compact, versioned binary
/// encoding; `src/broker/store/file/mod.rs` describes it byte by byte.
pub struct FileStorage {
    db: Database,
    path: PathBuf,
}

impl fmt::Debug for FileStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStorage")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl FileStorage {
    /// Opens the store at `path`, making the file (and any missing parent
    /// directories) if there is none, then compacts it once so the space of what
    /// was removed before is given back.
    ///
    /// Fails, naming the path, with [`StorageError::InUse`] when another process
    /// (or another `FileStorage` in this one) has the file open,
    /// [`StorageError::Corrupt`] when the file is not a store of this format (not
    /// a redb database, truncated, another format version), and
    /// [`StorageError::Io`] when the file cannot be read or written.
    ///
    /// ```no_run
    /// use wren::broker::{Broker, FileStorage};
    /// use wren::config::BrokerConfig;
    ///
    /// let store = FileStorage::open("/var/lib/wren/store.redb")?;
    /// let config = BrokerConfig::with_tcp_listener("127.0.0.1:1883".parse()?);
    /// let broker = Broker::builder(config).storage(Box::new(store)).start()?;
    /// # drop(broker);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<FileStorage, StorageError> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| io_error(&path, e, "cannot make its directory"))?;
        }
        guard(&path, || {
            let db = Database::create(&path).map_err(|e| error(&path, e))?;
            let mut store = FileStorage {
                db,
                path: path.clone(),
            };
            store.check_format()?;
            store.compact()?;
            Ok(store)
        })
    }

    /// Writes the format version (and makes the tables) into a new file, or checks
    /// the version of an existing one.
    fn check_format(&self) -> Result<(), StorageError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        let found = {
            let fresh = txn
                .list_tables()
                .map_err(|e| self.error(e))?
                .next()
                .is_none();
            if fresh {
                None
            } else {
                let meta = txn.open_table(META).map_err(|e| self.error(e))?;
                let version = meta
                    .get(FORMAT_KEY)
                    .map_err(|e| self.error(e))?
                    .map(|v| v.value());
                Some(version)
            }
        };
        match found {
            None => {
                // A new file: the version and every table, in one transaction, so
                // a file is either empty (and made again) or complete.
                let mut meta = txn.open_table(META).map_err(|e| self.error(e))?;
                meta.insert(FORMAT_KEY, FORMAT_VERSION)
                    .map_err(|e| self.error(e))?;
                drop(meta);
                txn.open_table(RETAINED).map_err(|e| self.error(e))?;
                txn.open_table(SESSIONS).map_err(|e| self.error(e))?;
                txn.open_table(MESSAGES).map_err(|e| self.error(e))?;
                txn.open_table(INCOMING).map_err(|e| self.error(e))?;
                txn.commit().map_err(|e| self.error(e))
            }
            Some(Some(FORMAT_VERSION)) => {
                txn.abort().map_err(|e| self.error(e))?;
                Ok(())
            }
            Some(Some(old @ OLDEST_FORMAT_VERSION..FORMAT_VERSION)) => {
                // A file of an older release: its values keep their tags and are
                // read as they are; new ones are written in this format, so the
                // file is marked with it now, and an older broker refuses it by
                // its version rather than by a tag it does not know.
                let mut meta = txn.open_table(META).map_err(|e| self.error(e))?;
                meta.insert(FORMAT_KEY, FORMAT_VERSION)
                    .map_err(|e| self.error(e))?;
                drop(meta);
                txn.commit().map_err(|e| self.error(e))?;
                log::info!(
                    "store {}: format version {old} upgraded to {FORMAT_VERSION}",
                    self.path.display()
                );
                Ok(())
            }
            Some(Some(other)) => Err(self.corrupt(format_args!(
                "format version {other}, this broker reads versions \
                 {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION}"
            ))),
            Some(None) => {
                Err(self.corrupt("a redb database without a format version: not a wren store"))
            }
        }
    }

    /// Gives the pages freed by removed records back to the file system.
    fn compact(&mut self) -> Result<(), StorageError> {
        match self.db.compact() {
            Ok(done) => {
                log::debug!(
                    "store {}: {}",
                    self.path.display(),
                    if done {
                        "compacted"
                    } else {
                        "nothing to compact"
                    }
                );
                Ok(())
            }
            Err(redb::CompactionError::Storage(e)) => Err(self.error(e)),
            // A savepoint or a live read transaction makes compaction impossible
            // (this code makes neither): not worth refusing to start over, the
            // file is only bigger than it needs to be.
            Err(e) => {
                log::debug!("store {}: not compacted: {e}", self.path.display());
                Ok(())
            }
        }
    }

    fn error(&self, e: impl Into<redb::Error>) -> StorageError {
        error(&self.path, e)
    }

    fn corrupt(&self, what: impl fmt::Display) -> StorageError {
        StorageError::Corrupt(format!("{}: {what}", self.path.display()))
    }

    fn apply(&self, txn: &redb::WriteTransaction, changes: &[Change]) -> Result<(), StorageError> {
        let mut retained = txn.open_table(RETAINED).or_store(self)?;
        let mut sessions = txn.open_table(SESSIONS).or_store(self)?;
        let mut messages = txn.open_table(MESSAGES).or_store(self)?;
        let mut incoming = txn.open_table(INCOMING).or_store(self)?;
        let mut buf = Vec::new();
        for change in changes {
            buf.clear();
            match change {
                Change::Retain(publish) => {
                    encode_retained(publish, &mut buf);
                    retained
                        .insert(publish.topic.as_str(), buf.as_slice())
                        .or_store(self)?;
                }
                Change::ClearRetained(topic) => {
                    retained.remove(topic.as_str()).or_store(self)?;
                }
                Change::Session(record) => {
                    encode_record(record, &mut buf);
                    sessions
                        .insert(record.client_id.as_str(), buf.as_slice())
                        .or_store(self)?;
                }
                Change::RemoveSession(client_id) => {
                    let id = client_id.as_str();
                    sessions.remove(id).or_store(self)?;
                    messages
                        .retain_in((id, 0)..=(id, u64::MAX), |_, _| false)
                        .or_store(self)?;
                    incoming
                        .retain_in((id, 0)..=(id, u16::MAX), |_, _| false)
                        .or_store(self)?;
                }
                Change::PutMessage {
                    client_id,
                    seq,
                    message,
                } => {
                    encode_message(message, &mut buf);
                    messages
                        .insert((client_id.as_str(), *seq), buf.as_slice())
                        .or_store(self)?;
                }
                Change::RemoveMessage { client_id, seq } => {
                    messages.remove((client_id.as_str(), *seq)).or_store(self)?;
                }
                Change::Receive {
                    client_id,
                    packet_id,
                } => {
                    incoming
                        .insert((client_id.as_str(), packet_id.get()), ())
                        .or_store(self)?;
                }
                Change::Release {
                    client_id,
                    packet_id,
                } => {
                    incoming
                        .remove((client_id.as_str(), packet_id.get()))
                        .or_store(self)?;
                }
            }
        }
        Ok(())
    }
}

impl Storage for FileStorage {
    fn load(&mut self) -> Result<StoredState, StorageError> {
        let path = self.path.clone();
        guard(&path, || self.load_all())
    }

    fn commit(&mut self, changes: &[Change]) -> Result<(), StorageError> {
        if changes.is_empty() {
            return Ok(());
        }
        // One transaction for the batch, committed with redb's default durability
        // (fsync before returning): all of it survives a power loss, or none.
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        self.apply(&txn, changes)?;
        txn.commit().map_err(|e| self.error(e))
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

impl FileStorage {
    fn load_all(&mut self) -> Result<StoredState, StorageError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let retained_table = self.read_table(&txn, RETAINED)?;
        let sessions_table = self.read_table(&txn, SESSIONS)?;
        let messages_table = self.read_table(&txn, MESSAGES)?;
        let incoming_table = self.read_table(&txn, INCOMING)?;

        let mut state = StoredState::default();
        for entry in retained_table.iter().map_err(|e| self.error(e))? {
            let (topic, value) = entry.map_err(|e| self.error(e))?;
            let publish = decode_retained(value.value()).map_err(|what| {
                self.corrupt(format_args!(
                    "table retained, topic {:?}: {what}",
                    topic.value()
                ))
            })?;
            state.retained.push(publish);
        }

        // Only sessions with a record are loaded: messages and packet
        // identifiers of a client without one wait, as in MemoryStorage, for a
        // record that names them (or for RemoveSession).
        for entry in sessions_table.iter().map_err(|e| self.error(e))? {
            let (key, value) = entry.map_err(|e| self.error(e))?;
            let client_id = key.value();
            let record = decode_record(client_id, value.value()).map_err(|what| {
                self.corrupt(format_args!("table sessions, client {client_id:?}: {what}"))
            })?;
            let mut messages = Vec::new();
            let range = messages_table
                .range((client_id, 0)..=(client_id, u64::MAX))
                .map_err(|e| self.error(e))?;
            for entry in range {
                let (key, value) = entry.map_err(|e| self.error(e))?;
                let (_, seq) = key.value();
                let message = decode_message(value.value()).map_err(|what| {
                    self.corrupt(format_args!(
                        "table messages, client {client_id:?}, seq {seq}: {what}"
                    ))
                })?;
                messages.push((seq, message));
            }
            let mut awaiting_pubrel = Vec::new();
            let range = incoming_table
                .range((client_id, 0)..=(client_id, u16::MAX))
                .map_err(|e| self.error(e))?;
            for entry in range {
                let (key, _) = entry.map_err(|e| self.error(e))?;
                let (_, id) = key.value();
                let id = PacketId::new(id).ok_or_else(|| {
                    self.corrupt(format_args!(
                        "table incoming, client {client_id:?}: packet identifier 0"
                    ))
                })?;
                awaiting_pubrel.push(id);
            }
            state.sessions.push(StoredSession {
                record,
                messages,
                awaiting_pubrel,
            });
        }
        Ok(state)
    }
}

impl FileStorage {
    /// Opens a table to read; every table is made with the file, so one missing
    /// means the file is not (or no longer) a whole store.
    fn read_table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        txn: &redb::ReadTransaction,
        table: TableDefinition<K, V>,
    ) -> Result<redb::ReadOnlyTable<K, V>, StorageError> {
        txn.open_table(table).map_err(|e| match e {
            redb::TableError::TableDoesNotExist(name) => {
                self.corrupt(format_args!("table {name} is missing"))
            }
            e => self.error(e),
        })
    }
}

/// Runs `f`, which reads a file that may be damaged, turning a panic into
/// [`StorageError::Corrupt`].
///
/// redb trusts some of what it reads: opening a file cut short (shorter than its
/// header says) fails an assertion inside redb 2 rather than returning an error.
/// A damaged store must stop the broker with a message naming the file, not with
/// a panic of the storage thread, so opening and loading, the two reads of
/// whatever is on disk, run under this guard. (Commits only follow a successful
/// open and load, and are not guarded: a panic there is a bug to see.)
fn guard<T>(path: &Path, f: impl FnOnce() -> Result<T, StorageError>) -> Result<T, StorageError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        Err(StorageError::Corrupt(format!(
            "{}: damaged, redb failed reading it: {what}",
            path.display()
        )))
    })
}

/// `.or_store(store)`: a redb result as the store's, naming the file.
trait OrStore<T> {
    fn or_store(self, store: &FileStorage) -> Result<T, StorageError>;
}

impl<T, E: Into<redb::Error>> OrStore<T> for Result<T, E> {
    fn or_store(self, store: &FileStorage) -> Result<T, StorageError> {
        self.map_err(|e| store.error(e))
    }
}

/// Maps a redb error to the store's, naming the file.
fn error(path: &Path, e: impl Into<redb::Error>) -> StorageError {
    let path_text = path.display();
    match e.into() {
        redb::Error::DatabaseAlreadyOpen => StorageError::InUse(path_text.to_string()),
        // redb reports a header it cannot parse, and a file that ends early, as
        // these: the file is not what it should be, not the disk failing.
        redb::Error::Io(e)
            if matches!(
                e.kind(),
                io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
            ) =>
        {
            StorageError::Corrupt(format!("{path_text}: damaged or not a redb database ({e})"))
        }
        redb::Error::Io(e) => io_error(path, e, "I/O error"),
        redb::Error::Corrupted(what) => StorageError::Corrupt(format!("{path_text}: {what}")),
        redb::Error::UpgradeRequired(version) => StorageError::Corrupt(format!(
            "{path_text}: redb file format {version}, which this build cannot read"
        )),
        e @ (redb::Error::TableTypeMismatch { .. }
        | redb::Error::TableIsMultimap(_)
        | redb::Error::TableIsNotMultimap(_)
        | redb::Error::TypeDefinitionChanged { .. }) => {
            StorageError::Corrupt(format!("{path_text}: not a wren store: {e}"))
        }
        e => StorageError::Backend(format!("{path_text}: {e}")),
    }
}

/// An I/O error with the path in its message, of the same kind.
fn io_error(path: &Path, e: io::Error, what: &str) -> StorageError {
    StorageError::Io(io::Error::new(
        e.kind(),
        format!("{}: {what}: {e}", path.display()),
    ))
}
