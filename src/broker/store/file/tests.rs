use std::net::SocketAddr;

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::broker::store::{
    MemoryStorage, SessionRecord, StoredMessage, StoredOwner, StoredSubscription,
};
use crate::protocol::{Properties, ProtocolVersion, Publish, QoS, TopicFilter, TopicName};

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
    SessionRecord::new(
        client_id,
        StoredOwner::new(
            username.map(Into::into),
            addr.map(|a| a.parse::<SocketAddr>().unwrap()),
            "default",
            ProtocolVersion::V3_1_1,
        ),
        vec![sub("a/+", QoS::AtLeastOnce), sub("#", QoS::ExactlyOnce)],
    )
}

fn sub(filter: &str, qos: QoS) -> StoredSubscription {
    StoredSubscription::new(TopicFilter::new(filter).unwrap(), qos)
}

/// Every property a PUBLISH may carry, user properties (a name repeated) out of
/// alphabetical order, subscription identifiers at both ends of their range.
fn every_property() -> Properties {
    Properties {
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(3600),
        content_type: Some("application/json".into()),
        response_topic: Some("replies/c".into()),
        correlation_data: Some(Bytes::from_static(&[0, 1, 0xff])),
        subscription_identifiers: vec![268_435_455, 1, 300],
        topic_alias: Some(9),
        user_properties: vec![
            ("z".into(), "last first".into()),
            ("a".into(), "".into()),
            ("z".into(), "again".into()),
        ],
        ..Properties::new()
    }
}

/// A message with every property set.
fn full_publish(topic: &str, qos: QoS, retain: bool, id: u16) -> Publish {
    let mut p = publish(topic, b"with properties", qos, retain, id);
    p.properties = Some(Box::new(every_property()));
    p
}

/// A record with every field of format 2 set: an MQTT 5 owner, an expiry
/// interval, subscriptions with each option and identifier.
fn full_record(client_id: &str) -> SessionRecord {
    SessionRecord::new(
        client_id,
        StoredOwner::new(
            Some("alice".into()),
            Some("[::1]:40000".parse().unwrap()),
            "tls",
            ProtocolVersion::V5,
        ),
        vec![
            sub("a/+", QoS::AtLeastOnce).with_no_local(true),
            sub("b/#", QoS::ExactlyOnce).with_retain_as_published(true),
            sub("c", QoS::AtMostOnce).with_identifier(Some(1)),
            sub("d", QoS::AtLeastOnce)
                .with_no_local(true)
                .with_retain_as_published(true)
                .with_identifier(Some(268_435_455)),
            sub("e", QoS::ExactlyOnce),
        ],
    )
    .with_session_expiry_interval(120)
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
    encode_record(&full_record("c"), &mut record_bytes);
    let mut message_bytes = Vec::new();
    encode_message(
        &StoredMessage::Sent(full_publish("a/b", QoS::ExactlyOnce, true, 5)),
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
fn format_2_values_round_trip_with_every_field() {
    let record = full_record("c");
    let mut bytes = Vec::new();
    encode_record(&record, &mut bytes);
    assert_eq!(bytes[0], RECORD_V2);
    assert_eq!(decode_record("c", &bytes).unwrap(), record);
    for never in [0, u32::MAX] {
        let record = record.clone().with_session_expiry_interval(never);
        let mut bytes = Vec::new();
        encode_record(&record, &mut bytes);
        assert_eq!(decode_record("c", &bytes).unwrap(), record);
    }

    for message in [
        StoredMessage::Queued(full_publish("a/b", QoS::AtLeastOnce, false, 0)),
        StoredMessage::Sent(full_publish("a/b", QoS::ExactlyOnce, true, 65535)),
        StoredMessage::Queued(publish("a/b", b"none", QoS::AtLeastOnce, false, 0)),
    ] {
        let mut bytes = Vec::new();
        encode_message(&message, &mut bytes);
        assert_eq!(decode_message(&bytes).unwrap(), message);
    }
    let retained = full_publish("r", QoS::AtLeastOnce, true, 0);
    let mut bytes = Vec::new();
    encode_retained(&retained, &mut bytes);
    assert_eq!(bytes[0], PUBLISH_V2);
    let decoded = decode_retained(&bytes).unwrap();
    assert_eq!(decoded, retained);
    let properties = decoded.properties.unwrap();
    assert_eq!(
        properties.user_properties,
        every_property().user_properties,
        "user properties keep their order"
    );
    assert_eq!(
        properties.subscription_identifiers,
        vec![268_435_455, 1, 300]
    );

    // An empty set of properties is stored as none, as on the wire.
    let mut empty = publish("r", b"", QoS::AtMostOnce, true, 0);
    empty.properties = Some(Box::default());
    let mut bytes = Vec::new();
    encode_retained(&empty, &mut bytes);
    empty.properties = None;
    assert_eq!(decode_retained(&bytes).unwrap(), empty);
}

#[test]
fn format_2_values_survive_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let mut both = Both::new(&path);
    both.commit(&[
        Change::Retain(full_publish("r", QoS::ExactlyOnce, true, 0)),
        Change::Session(full_record("c")),
        put(
            "c",
            1,
            StoredMessage::Queued(full_publish("a/b", QoS::AtLeastOnce, false, 0)),
        ),
        put(
            "c",
            2,
            StoredMessage::Sent(full_publish("d", QoS::ExactlyOnce, false, 8)),
        ),
    ]);
    drop(both.file);
    let mut again = FileStorage::open(&path).unwrap();
    let state = again.load().unwrap();
    assert_eq!(state, both.memory.load().unwrap());
    assert_eq!(state.sessions[0].record, full_record("c"));
}

#[test]
fn properties_a_publish_cannot_carry_are_left_out() {
    // Not from a client (the router checks theirs): stored without them rather
    // than written as a block that would fail the check when loaded.
    let mut p = publish("a", b"m", QoS::AtLeastOnce, false, 0);
    p.properties = Some(Box::new(Properties {
        reason_string: Some("not in a PUBLISH".into()),
        ..Properties::new()
    }));
    let mut bytes = Vec::new();
    encode_message(&StoredMessage::Queued(p.clone()), &mut bytes);
    p.properties = None;
    assert_eq!(decode_message(&bytes).unwrap(), StoredMessage::Queued(p));
}

/// Format 1 bytes as the previous release wrote them, byte by byte.
#[test]
fn format_1_values_still_decode() {
    // A record: user name "u", no address, listener "l", level 4, one
    // subscription "a/#" at QoS 1.
    let record_v1 = [
        RECORD_V1, 1, 0, 1, b'u', 0, 0, 1, b'l', 4, 0, 0, 0, 1, 0, 3, b'a', b'/', b'#', 1,
    ];
    assert_eq!(
        decode_record("c", &record_v1).unwrap(),
        SessionRecord::new(
            "c",
            StoredOwner::new(Some("u".into()), None, "l", ProtocolVersion::V3_1_1),
            vec![sub("a/#", QoS::AtLeastOnce)],
        )
    );
    // Sent: QoS 2 with packet identifier 0x0102, topic "t", payload "hi".
    let body = [0b1010, 0x01, 0x02, 0, 1, b't', 0, 0, 0, 2, b'h', b'i'];
    let expected = publish("t", b"hi", QoS::ExactlyOnce, false, 0x0102);
    let message_v1 = [&[MESSAGE_SENT][..], &body].concat();
    assert_eq!(
        decode_message(&message_v1).unwrap(),
        StoredMessage::Sent(expected.clone())
    );
    let message_v1 = [&[MESSAGE_QUEUED][..], &body].concat();
    assert_eq!(
        decode_message(&message_v1).unwrap(),
        StoredMessage::Queued(expected.clone())
    );
    // Retained: the same with RETAIN.
    let mut retained_v1 = [&[PUBLISH_V1][..], &body].concat();
    retained_v1[1] |= RETAIN;
    let mut expected_retained = expected;
    expected_retained.retain = true;
    assert_eq!(decode_retained(&retained_v1).unwrap(), expected_retained);
    // Format 1 has no property block: a byte after the payload is an error.
    assert!(decode_message(&[&message_v1[..], &[0]].concat()).is_err());

    // The kept format 1 encoder: every option off, expiry never.
    let mut bytes = Vec::new();
    encode_record_v1(&full_record("c"), &mut bytes);
    assert_eq!(bytes[0], RECORD_V1);
    let decoded = decode_record("c", &bytes).unwrap();
    assert_eq!(decoded.session_expiry_interval, u32::MAX);
    assert_eq!(decoded.owner, full_record("c").owner);
    let filters = |r: &SessionRecord| {
        r.subscriptions
            .iter()
            .map(|s| sub(s.filter.as_str(), s.qos))
            .collect::<Vec<_>>()
    };
    assert_eq!(decoded.subscriptions, filters(&full_record("c")));
}

#[test]
fn a_format_1_file_loads_and_is_marked_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    // A file as the previous release made and filled it.
    let old = SessionRecord::new(
        "c",
        StoredOwner::new(
            None,
            Some("10.0.0.1:5000".parse().unwrap()),
            "default",
            ProtocolVersion::V3_1_1,
        ),
        vec![sub("a/+", QoS::AtLeastOnce), sub("#", QoS::ExactlyOnce)],
    );
    let queued = publish("a/b", b"q", QoS::AtLeastOnce, false, 0);
    let retained = publish("r", b"kept", QoS::AtLeastOnce, true, 0);
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META).unwrap().insert(FORMAT_KEY, 1).unwrap();
        let mut bytes = Vec::new();
        encode_record_v1(&old, &mut bytes);
        txn.open_table(SESSIONS)
            .unwrap()
            .insert("c", bytes.as_slice())
            .unwrap();
        let mut bytes = vec![MESSAGE_QUEUED];
        encode_publish_v1(&queued, &mut bytes);
        let mut messages = txn.open_table(MESSAGES).unwrap();
        messages.insert(("c", 1), bytes.as_slice()).unwrap();
        messages
            .insert(("c", 2), [MESSAGE_RELEASED, 0, 7].as_slice())
            .unwrap();
        drop(messages);
        let mut bytes = vec![PUBLISH_V1];
        encode_publish_v1(&retained, &mut bytes);
        txn.open_table(RETAINED)
            .unwrap()
            .insert("r", bytes.as_slice())
            .unwrap();
        txn.open_table(INCOMING)
            .unwrap()
            .insert(("c", 3), ())
            .unwrap();
        txn.commit().unwrap();
    }
    let mut store = FileStorage::open(&path).unwrap();
    let expected = StoredState::new(
        vec![retained],
        vec![StoredSession::new(
            old,
            vec![
                (1, StoredMessage::Queued(queued)),
                (2, StoredMessage::Released(pid(7))),
            ],
            vec![pid(3)],
        )],
    );
    assert_eq!(store.load().unwrap(), expected);
    // Format 2 values go in beside the format 1 ones.
    store.commit(&[Change::Session(full_record("d"))]).unwrap();
    drop(store);
    let db = Database::create(&path).unwrap();
    let version = db
        .begin_read()
        .unwrap()
        .open_table(META)
        .unwrap()
        .get(FORMAT_KEY)
        .unwrap()
        .map(|v| v.value());
    drop(db);
    assert_eq!(version, Some(FORMAT_VERSION));
    let state = FileStorage::open(&path).unwrap().load().unwrap();
    assert_eq!(state.sessions[0], expected.sessions[0]);
    assert_eq!(state.sessions[1].record, full_record("d"));
}

#[test]
fn a_corrupt_format_2_value_says_what_is_wrong() {
    let mut good = Vec::new();
    encode_record(
        &SessionRecord::new(
            "c",
            StoredOwner::new(None, None, "l", ProtocolVersion::V5),
            vec![sub("a", QoS::AtLeastOnce).with_identifier(Some(5))],
        ),
        &mut good,
    );
    assert!(decode_record("c", &good).is_ok());
    // Tag, no user name, no address, listener (3 bytes), level (at 6), expiry (4),
    // count (4), filter (3), QoS, options (at 19), identifier (4).
    let options = good.len() - 5;
    assert_eq!((good[6], options), (5, 19));
    let expect = |bytes: &[u8], what: &str| {
        let error = decode_record("c", bytes).unwrap_err();
        assert!(error.contains(what), "{error:?} should say {what:?}");
    };
    let mut bad = good.clone();
    bad[options] = 0x80;
    expect(&bad, "unknown subscription options 0x80");
    let mut bad = good.clone();
    bad[options + 1..].copy_from_slice(&[0; 4]);
    expect(&bad, "subscription identifier 0");
    let mut bad = good.clone();
    bad[options + 1..].copy_from_slice(&268_435_456u32.to_be_bytes());
    expect(&bad, "subscription identifier 268435456");
    expect(&good[..good.len() - 1], "subscription identifier");
    let mut bad = good.clone();
    bad[6] = 6;
    expect(&bad, "protocol level 6");
    let mut bad = good.clone();
    bad.push(0);
    expect(&bad, "1 bytes after the end");

    let mut message = Vec::new();
    encode_message(
        &StoredMessage::Queued(publish("t", b"p", QoS::AtLeastOnce, false, 0)),
        &mut message,
    );
    let without = &message[..message.len() - 1];
    let expect = |block: &[u8], what: &str| {
        let bytes = [without, block].concat();
        let error = decode_message(&bytes).unwrap_err();
        assert!(error.contains(what), "{error:?} should say {what:?}");
        assert!(error.starts_with("properties: "), "{error:?}");
    };
    expect(&[], "property length");
    // Session Expiry Interval, which a PUBLISH may not carry.
    expect(&[5, 0x11, 0, 0, 0, 1], "must not carry property 0x11");
    // Message Expiry Interval twice.
    expect(&[10, 0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 1], "more than once");
    // A property length past the end.
    expect(&[9, 0x02, 0, 0, 0, 1], "runs past");
    // A user property cut short.
    expect(&[4, 0x26, 0, 1, b'k'], "User Property");
    // Trailing bytes after the block.
    let error = decode_message(&[&message[..], &[1]].concat()).unwrap_err();
    assert!(error.contains("after the end"), "{error:?}");

    // Through the file: Corrupt, naming the file, the table and the fault.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    drop(FileStorage::open(&path).unwrap());
    let mut bad = good.clone();
    bad[options + 1..].copy_from_slice(&[0; 4]);
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(SESSIONS)
            .unwrap()
            .insert("c", bad.as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let message = match FileStorage::open(&path).unwrap().load() {
        Err(StorageError::Corrupt(message)) => message,
        other => panic!("expected Corrupt, got {other:?}"),
    };
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("table sessions"), "{message}");
    assert!(message.contains("subscription identifier 0"), "{message}");
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
        (topic.clone(), 1..4u16).prop_map(|(t, id)| StoredMessage::Sent(full_publish(
            t,
            QoS::AtLeastOnce,
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
        topic
            .clone()
            .prop_map(|t| Change::Retain(full_publish(t, QoS::AtLeastOnce, true, 0))),
        client
            .clone()
            .prop_map(|c| Change::Session(full_record(&c))),
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
