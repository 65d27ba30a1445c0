use std::net::SocketAddr;

use proptest::prelude::*;

use super::*;
use crate::broker::store::{MemoryStorage, SessionRecord, StoredMessage, StoredOwner};
use crate::protocol::{ProtocolVersion, Publish, QoS, TopicFilter, TopicName};

fn publish(topic: &str, payload: &[u8], qos: QoS, retain: bool, id: u16) -> Publish {
    let mut p = Publish::new(
        TopicName::new(topic).unwrap(),
        payload.to_vec(),
        qos,
        retain,
    );
    p.packet_id = PacketId::new(id);
    p
}

fn record(client_id: &str, username: Option<&str>, addr: Option<&str>) -> SessionRecord {
    SessionRecord {
        client_id: client_id.into(),
        owner: StoredOwner {
            username: username.map(Into::into),
            remote_addr: addr.map(|a| a.parse::<SocketAddr>().unwrap()),
            listener: "default".into(),
            protocol: ProtocolVersion::V3_1_1,
        },
        subscriptions: vec![
            (TopicFilter::new("a/+").unwrap(), QoS::AtLeastOnce),
            (TopicFilter::new("#").unwrap(), QoS::ExactlyOnce),
        ],
    }
}

fn put(client_id: &str, seq: u64, message: StoredMessage) -> Change {
    Change::PutMessage {
        client_id: client_id.into(),
        seq,
        message,
    }
}

fn pid(id: u16) -> PacketId {
    PacketId::new(id).unwrap()
}

/// A file store beside a memory store: every batch goes to both, and both
/// must then load the same.
struct Both {
    file: FileStorage,
    memory: MemoryStorage,
}

impl Both {
    fn new(path: &Path) -> Both {
        Both {
            file: FileStorage::open(path).unwrap(),
            memory: MemoryStorage::new(),
        }
    }

    fn commit(&mut self, changes: &[Change]) {
        self.file.commit(changes).unwrap();
        self.memory.commit(changes).unwrap();
        assert_eq!(self.file.load().unwrap(), self.memory.load().unwrap());
    }
}

fn corrupt_message(result: Result<FileStorage, StorageError>) -> String {
    match result {
        Err(StorageError::Corrupt(message)) => message,
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn every_change_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let mut both = Both::new(&dir.path().join("store.redb"));
    both.commit(&[]);
    both.commit(&[
        Change::Retain(publish("a/b", b"hello", QoS::AtMostOnce, true, 0)),
        Change::Retain(publish("a/c", b"", QoS::ExactlyOnce, true, 7)),
        Change::Retain(publish("z", &[0, 255, 1], QoS::AtLeastOnce, true, 0)),
    ]);
    both.commit(&[
        Change::Retain(publish("a/b", b"again", QoS::AtLeastOnce, true, 0)),
        Change::ClearRetained("z".into()),
        Change::ClearRetained("never/set".into()),
    ]);
    both.commit(&[
        Change::Session(record("c1", Some("alice"), Some("127.0.0.1:1883"))),
        Change::Session(record("c2", None, Some("[::1]:40000"))),
        Change::Session(record("c3", Some(""), None)),
        put(
            "c1",
            1,
            StoredMessage::Queued(publish("a/b", b"1", QoS::AtLeastOnce, false, 0)),
        ),
        put(
            "c1",
            2,
            StoredMessage::Sent(publish("a/b", b"2", QoS::ExactlyOnce, true, 9)),
        ),
        put("c1", 3, StoredMessage::Released(pid(65535))),
        put(
            "c2",
            1,
            StoredMessage::Queued(publish("x", &[7; 3000], QoS::ExactlyOnce, false, 0)),
        ),
        Change::Receive {
            client_id: "c1".into(),
            packet_id: pid(4),
        },
        Change::Receive {
            client_id: "c1".into(),
            packet_id: pid(1),
        },
    ]);
    let mut changed = record("c1", None, None);
    changed.owner.protocol = ProtocolVersion::V3_1;
    changed.subscriptions.clear();
    both.commit(&[
        Change::Session(changed),
        put(
            "c1",
            1,
            StoredMessage::Sent(publish("a/b", b"1", QoS::AtLeastOnce, false, 3)),
        ),
        Change::RemoveMessage {
            client_id: "c1".into(),
            seq: 2,
        },
        Change::Release {
            client_id: "c1".into(),
            packet_id: pid(4),
        },
        Change::RemoveMessage {
            client_id: "nobody".into(),
            seq: 1,
        },
    ]);
    // Messages of a client without a record wait, unloaded, for one.
    both.commit(&[put("c9", 5, StoredMessage::Released(pid(2)))]);
    both.commit(&[Change::Session(record("c9", None, None))]);
    both.commit(&[
        Change::RemoveSession("c2".into()),
        Change::RemoveSession("c0".into()),
    ]);
    let state = both.file.load().unwrap();
    assert_eq!(state.retained.len(), 2);
    assert_eq!(state.sessions.len(), 3);
    assert_eq!(state.sessions[0].messages.len(), 2);
    assert_eq!(state.sessions[0].awaiting_pubrel, vec![pid(1)]);
}

#[test]
fn a_batch_applies_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut both = Both::new(&dir.path().join("store.redb"));
    both.commit(&[
        Change::Session(record("c", None, None)),
        put("c", 1, StoredMessage::Released(pid(1))),
        Change::RemoveSession("c".into()),
        Change::Session(record("c", None, None)),
        put("c", 2, StoredMessage::Released(pid(2))),
        Change::Retain(publish("t", b"1", QoS::AtMostOnce, true, 0)),
        Change::ClearRetained("t".into()),
    ]);
    assert_eq!(both.file.load().unwrap().sessions[0].messages.len(), 1);
}

#[test]
fn reopening_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    // Parent directories are made as needed.
    let path = dir.path().join("deep/er/store.redb");
    let mut both = Both::new(&path);
    both.commit(&[
        Change::Retain(publish("a", b"r", QoS::AtLeastOnce, true, 0)),
        Change::Session(record("c", Some("u"), Some("10.0.0.1:5000"))),
        put(
            "c",
            1,
            StoredMessage::Queued(publish("a", b"m", QoS::AtLeastOnce, false, 0)),
        ),
        Change::Receive {
            client_id: "c".into(),
            packet_id: pid(3),
        },
    ]);
    assert_eq!(both.file.describe(), path.display().to_string());
    drop(both.file);
    let mut again = FileStorage::open(&path).unwrap();
    assert_eq!(again.load().unwrap(), both.memory.load().unwrap());
}

#[test]
fn a_second_opener_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let first = FileStorage::open(&path).unwrap();
    match FileStorage::open(&path) {
        Err(StorageError::InUse(p)) => assert_eq!(p, path.display().to_string()),
        other => panic!("expected InUse, got {other:?}"),
    }
    drop(first);
    FileStorage::open(&path).unwrap();
}

#[test]
fn a_garbage_file_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    std::fs::write(&path, b"retained: a/b hello\n".repeat(500)).unwrap();
    let message = corrupt_message(FileStorage::open(&path));
    assert!(message.contains(&path.display().to_string()), "{message}");
    // Short garbage too, shorter than redb's header.
    std::fs::write(&path, b"hello").unwrap();
    let message = corrupt_message(FileStorage::open(&path));
    assert!(message.contains(&path.display().to_string()), "{message}");
}

#[test]
fn a_truncated_file_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let mut store = FileStorage::open(&path).unwrap();
    let batch: Vec<Change> = (0..200)
        .map(|seq| {
            put(
                "c",
                seq,
                StoredMessage::Queued(publish("t", &[1; 1024], QoS::AtLeastOnce, false, 0)),
            )
        })
        .chain([Change::Session(record("c", None, None))])
        .collect();
    store.commit(&batch).unwrap();
    drop(store);
    let len = std::fs::metadata(&path).unwrap().len();
    for keep in [len / 2, 4096, 100] {
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(keep).unwrap();
        drop(file);
        let message = corrupt_message(FileStorage::open(&path).and_then(|mut s| {
            s.load()?;
            Ok(s)
        }));
        assert!(
            message.contains(&path.display().to_string()),
            "{keep}: {message}"
        );
    }
}

#[test]
fn an_unknown_format_version_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    drop(FileStorage::open(&path).unwrap());
    let db = Database::create(&path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(META)
        .unwrap()
        .insert(FORMAT_KEY, 99)
        .unwrap();
    txn.commit().unwrap();
    drop(db);
    let message = corrupt_message(FileStorage::open(&path));
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("format version 99"), "{message}");
}

#[test]
fn another_redb_database_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let db = Database::create(&path).unwrap();
    let txn = db.begin_write().unwrap();
    const OTHER: TableDefinition<u64, u64> = TableDefinition::new("other");
    txn.open_table(OTHER).unwrap().insert(1, 2).unwrap();
    txn.commit().unwrap();
    drop(db);
    let message = corrupt_message(FileStorage::open(&path));
    assert!(message.contains("format version"), "{message}");
}

#[test]
fn a_record_that_does_not_decode_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let mut store = FileStorage::open(&path).unwrap();
    store
        .commit(&[
            Change::Session(record("c", None, None)),
            put("c", 1, StoredMessage::Released(pid(1))),
        ])
        .unwrap();
    drop(store);
    let tamper = |table: TableDefinition<(&str, u64), &[u8]>, value: &[u8]| {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(table)
            .unwrap()
            .insert(("c", 1), value)
            .unwrap();
        txn.commit().unwrap();
    };
    // A Released message cut short.
    tamper(MESSAGES, &[MESSAGE_RELEASED, 0]);
    let mut store = FileStorage::open(&path).unwrap();
    let message = match store.load() {
        Err(StorageError::Corrupt(message)) => message,
        other => panic!("expected Corrupt, got {other:?}"),
    };
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("table messages"), "{message}");
}

#[test]
fn decoding_never_panics_on_damaged_records() {
    let mut record_bytes = Vec::new();
    encode_record(&record("c", Some("u"), Some("[::1]:1")), &mut record_bytes);
    let mut message_bytes = Vec::new();
    encode_message(
        &StoredMessage::Sent(publish("a/b", b"payload", QoS::ExactlyOnce, true, 5)),
        &mut message_bytes,
    );
    assert!(decode_record("c", &record_bytes).is_ok());
    assert!(decode_message(&message_bytes).is_ok());
    // Every truncation and every single-byte change: an error or a value,
    // never a panic; truncations are always errors.
    for cut in 0..record_bytes.len() {
        assert!(decode_record("c", &record_bytes[..cut]).is_err());
    }
    for cut in 0..message_bytes.len() {
        assert!(decode_message(&message_bytes[..cut]).is_err());
    }
    for bytes in [&record_bytes, &message_bytes] {
        for i in 0..bytes.len() {
            for b in [0, 1, 0x7f, 0x80, 0xff] {
                let mut damaged = bytes.clone();
                damaged[i] = b;
                let _ = decode_record("c", &damaged);
                let _ = decode_message(&damaged);
                let _ = decode_retained(&damaged);
            }
        }
    }
    // A huge subscription count reserves nothing it cannot fill.
    assert!(decode_record("c", &[RECORD_V1, 0, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff]).is_err());
}

#[test]
fn removing_a_session_leaves_other_clients_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut both = Both::new(&dir.path().join("store.redb"));
    let mut batch = Vec::new();
    for id in ["a", "ab", "", "b"] {
        batch.push(Change::Session(record(id, None, None)));
        for seq in [0, 1, u64::MAX] {
            batch.push(put(id, seq, StoredMessage::Released(pid(9))));
        }
        for packet in [1, 2, u16::MAX] {
            batch.push(Change::Receive {
                client_id: id.into(),
                packet_id: pid(packet),
            });
        }
    }
    both.commit(&batch);
    both.commit(&[Change::RemoveSession("a".into())]);
    both.commit(&[Change::RemoveSession("".into())]);
    let state = both.file.load().unwrap();
    let ids: Vec<&str> = state
        .sessions
        .iter()
        .map(|s| s.record.client_id.as_str())
        .collect();
    assert_eq!(ids, ["ab", "b"]);
    for session in &state.sessions {
        assert_eq!(session.messages.len(), 3);
        assert_eq!(session.awaiting_pubrel.len(), 3);
    }
    // The record made again finds nothing of the old session.
    both.commit(&[Change::Session(record("a", None, None))]);
    let state = both.file.load().unwrap();
    assert!(state.sessions[0].messages.is_empty());
    assert!(state.sessions[0].awaiting_pubrel.is_empty());
}

fn churn(store: &mut FileStorage, round: u64) {
    let seqs = round * 200..(round + 1) * 200;
    let puts: Vec<Change> = seqs
        .clone()
        .map(|seq| {
            put(
                "c",
                seq,
                StoredMessage::Queued(publish(
                    "t",
                    &[round as u8; 1024],
                    QoS::AtLeastOnce,
                    false,
                    0,
                )),
            )
        })
        .collect();
    store.commit(&puts).unwrap();
    let removes: Vec<Change> = seqs
        .map(|seq| Change::RemoveMessage {
            client_id: "c".into(),
            seq,
        })
        .collect();
    store.commit(&removes).unwrap();
}

#[test]
fn churn_keeps_the_file_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let mut store = FileStorage::open(&path).unwrap();
    store
        .commit(&[Change::Session(record("c", None, None))])
        .unwrap();
    let size = || std::fs::metadata(&path).unwrap().len();
    for round in 0..5 {
        churn(&mut store, round);
    }
    let early = size();
    for round in 5..50 {
        churn(&mut store, round);
    }
    let late = size();
    assert!(
        late <= early + early / 4,
        "after 5 rounds {early} bytes, after 50 {late}"
    );
    assert!(store.load().unwrap().sessions[0].messages.is_empty());
}

#[test]
fn opening_compacts_a_grown_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let mut store = FileStorage::open(&path).unwrap();
    let backlog: Vec<Change> = (0..4000)
        .map(|seq| {
            put(
                "c",
                seq,
                StoredMessage::Queued(publish("t", &[3; 1024], QoS::AtLeastOnce, false, 0)),
            )
        })
        .collect();
    store.commit(&backlog).unwrap();
    let removes: Vec<Change> = (0..4000)
        .map(|seq| Change::RemoveMessage {
            client_id: "c".into(),
            seq,
        })
        .collect();
    store.commit(&removes).unwrap();
    drop(store);
    let grown = std::fs::metadata(&path).unwrap().len();
    drop(FileStorage::open(&path).unwrap());
    let compacted = std::fs::metadata(&path).unwrap().len();
    assert!(
        compacted < grown / 2,
        "grown {grown} bytes, compacted {compacted}"
    );
}

fn change() -> impl Strategy<Value = Change> {
    let client = prop::sample::select(vec!["a", "ab", "b"]).prop_map(String::from);
    let topic = prop::sample::select(vec!["t", "t/1", "u"]);
    let message = prop_oneof![
        (topic.clone(), any::<Vec<u8>>()).prop_map(|(t, p)| StoredMessage::Queued(publish(
            t,
            &p,
            QoS::AtLeastOnce,
            false,
            0
        ))),
        (topic.clone(), 1..4u16).prop_map(|(t, id)| StoredMessage::Sent(publish(
            t,
            b"x",
            QoS::ExactlyOnce,
            false,
            id
        ))),
        (1..4u16).prop_map(|id| StoredMessage::Released(pid(id))),
    ];
    prop_oneof![
        (topic.clone(), any::<bool>()).prop_map(|(t, r)| Change::Retain(publish(
            t,
            b"r",
            QoS::AtMostOnce,
            r,
            0
        ))),
        topic.prop_map(|t| Change::ClearRetained(t.into())),
        (client.clone(), any::<bool>()).prop_map(|(c, u)| Change::Session(record(
            &c,
            u.then_some("u"),
            None
        ))),
        client.clone().prop_map(Change::RemoveSession),
        (client.clone(), 0..6u64, message).prop_map(|(client_id, seq, message)| {
            Change::PutMessage {
                client_id,
                seq,
                message,
            }
        }),
        (client.clone(), 0..6u64)
            .prop_map(|(client_id, seq)| Change::RemoveMessage { client_id, seq }),
        (client.clone(), 1..4u16).prop_map(|(client_id, id)| Change::Receive {
            client_id,
            packet_id: pid(id)
        }),
        (client, 1..4u16).prop_map(|(client_id, id)| Change::Release {
            client_id,
            packet_id: pid(id)
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn random_batches_load_as_in_memory(
        batches in prop::collection::vec(prop::collection::vec(change(), 0..12), 1..6)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let mut both = Both::new(&path);
        for batch in &batches {
            both.commit(batch);
        }
        drop(both.file);
        let mut again = FileStorage::open(&path).unwrap();
        prop_assert_eq!(again.load().unwrap(), both.memory.load().unwrap());
    }
}
