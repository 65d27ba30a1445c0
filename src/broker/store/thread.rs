//! The storage thread: commits the router's batches of changes one at a time, so
//! the router never waits on a disk.

use std::panic::{self, AssertUnwindSafe};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use super::{Change, Storage, StorageError};
use crate::broker::panics;

/// What became of a batch.
#[derive(Debug)]
pub(crate) struct Commit {
    /// The batch's number.
    pub(crate) batch: u64,
    /// `Ok` once every change of the batch is durable.
    pub(crate) result: Result<(), StorageError>,
    /// The batch's changes, given back when the commit failed so that they go
    /// again with the next one; empty after a success.
    pub(crate) changes: Vec<Change>,
}

/// The thread that owns the store while the broker runs.
pub(crate) struct StorageThread {
    batches: Option<Sender<(u64, Vec<Change>)>>,
    /// Where the result of each batch comes back, in order.
    pub(crate) commits: Receiver<Commit>,
    handle: Option<JoinHandle<()>>,
    describe: String,
}

impl StorageThread {
    /// Starts the thread with `storage`, already loaded.
    pub(crate) fn start(mut storage: Box<dyn Storage>) -> std::io::Result<StorageThread> {
        // One batch is committed at a time and the router sends the next only when
        // the last one is back, so neither channel ever holds more than one.
        let (batches, batch_rx) = crossbeam_channel::bounded::<(u64, Vec<Change>)>(1);
        let (commit_tx, commits) = crossbeam_channel::bounded::<Commit>(1);
        let describe = storage.describe();
        let handle = std::thread::Builder::new()
            .name("wren-storage".into())
            .spawn(move || {
                for (batch, changes) in batch_rx {
                    let committed =
                        panic::catch_unwind(AssertUnwindSafe(|| storage.commit(&changes)));
                    let result = match committed {
                        Ok(result) => result,
                        // What the store holds is unknown now: nothing more can be
                        // acknowledged honestly.
                        Err(panic) => panics::stop_process("storage", panics::message(&*panic)),
                    };
                    let changes = if result.is_ok() { Vec::new() } else { changes };
                    let commit = Commit {
                        batch,
                        result,
                        changes,
                    };
                    if commit_tx.send(commit).is_err() {
                        break;
                    }
                }
            })?;
        Ok(StorageThread {
            batches: Some(batches),
            commits,
            handle: Some(handle),
            describe,
        })
    }

    /// Hands a batch to the thread. Never blocks: the router sends one only when
    /// the previous one is back.
    pub(crate) fn send(&self, batch: u64, changes: Vec<Change>) {
        if let Some(batches) = &self.batches {
            // Full or closed only if the thread died; the commit then never comes
            // back and the acknowledgements stay withheld, which is the safe side.
            let _ = batches.try_send((batch, changes));
        }
    }

    /// Where the store is, for log lines.
    pub(crate) fn describe(&self) -> &str {
        &self.describe
    }

    /// Stops the thread after the batch under way, and waits for it.
    pub(crate) fn stop(&mut self) {
        self.batches = None;
        // A result nobody will read must not keep the thread waiting.
        while self.commits.try_recv().is_ok() {}
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for StorageThread {
    fn drop(&mut self) {
        self.stop();
    }
}
