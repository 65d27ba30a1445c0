//! The values of a store file: a compact binary written by hand (see the layout in
//! `mod.rs`).

use std::net::SocketAddr;

use bytes::Bytes;

use crate::broker::store::{SessionRecord, StoredMessage, StoredOwner, StoredSubscription};
use crate::protocol::codec::Reader as PacketReader;
use crate::protocol::properties::{self, MAX_VARIABLE_BYTE_INTEGER};
use crate::protocol::{
    PacketId, PacketType, Properties, PropertyContext, ProtocolVersion, Publish, QoS, TopicFilter,
    TopicName,
};

// Tags: the first byte of every value. Format 1 wrote the `_V1` tags (and
// MESSAGE_QUEUED, MESSAGE_SENT, MESSAGE_RELEASED); format 2 writes the `_V2` ones
// (and MESSAGE_RELEASED, unchanged) and reads both.
pub(super) const PUBLISH_V1: u8 = 1;
pub(super) const PUBLISH_V2: u8 = 2;
pub(super) const RECORD_V1: u8 = 1;
pub(super) const RECORD_V2: u8 = 2;
pub(super) const MESSAGE_QUEUED: u8 = 1;
pub(super) const MESSAGE_SENT: u8 = 2;
pub(super) const MESSAGE_RELEASED: u8 = 3;
pub(super) const MESSAGE_QUEUED_V2: u8 = 4;
pub(super) const MESSAGE_SENT_V2: u8 = 5;

// The options byte of an encoded subscription (format 2).
pub(super) const NO_LOCAL: u8 = 0b0001;
pub(super) const RETAIN_AS_PUBLISHED: u8 = 0b0010;
pub(super) const HAS_IDENTIFIER: u8 = 0b0100;

// The flags byte of an encoded Publish.
pub(super) const QOS_MASK: u8 = 0b0011;
pub(super) const RETAIN: u8 = 0b0100;
pub(super) const HAS_PACKET_ID: u8 = 0b1000;

// Encoding. Lengths that do not fit their field cannot come from valid MQTT (a
// topic, client identifier or filter is at most 65,535 bytes, a payload at most
// 256 MB), so they are clamped rather than checked: the record stays decodable.

pub(super) fn put_str16(out: &mut Vec<u8>, s: &str) {
    let bytes = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// A message as format 2 writes it (after its tag): the format 1 fields, then its
/// property block.
pub(super) fn encode_publish(publish: &Publish, out: &mut Vec<u8>) {
    encode_publish_v1(publish, out);
    encode_properties(publish, out);
}

/// The property block of a message: its MQTT 5 properties exactly as a PUBLISH
/// carries them on the wire (property length, then the properties, user
/// properties in their order), written by the protocol's own encoder.
///
/// Properties a PUBLISH may not carry (a value out of range, a property of
/// another packet, a string too long) cannot come from a client, which the
/// router checks; were they there, they would fail the check on loading and stop
/// the broker, so they are left out with a warning and the message is kept
/// without them.
fn encode_properties(publish: &Publish, out: &mut Vec<u8>) {
    let present = properties::present(&publish.properties);
    match properties::encoded_len(present, PropertyContext::Publish) {
        Ok(_) => properties::write(out, present),
        Err(e) => {
            log::warn!(
                "store: the properties of a message to {:?} cannot be stored, kept without them: {e}",
                publish.topic.as_str()
            );
            properties::write(out, None);
        }
    }
}

/// A message as format 1 wrote it (after its tag): no properties.
pub(super) fn encode_publish_v1(publish: &Publish, out: &mut Vec<u8>) {
    let mut flags = publish.qos as u8 & QOS_MASK;
    if publish.retain {
        flags |= RETAIN;
    }
    if publish.packet_id.is_some() {
        flags |= HAS_PACKET_ID;
    }
    out.push(flags);
    if let Some(id) = publish.packet_id {
        out.extend_from_slice(&id.get().to_be_bytes());
    }
    put_str16(out, publish.topic.as_str());
    let payload = &publish.payload[..publish.payload.len().min(u32::MAX as usize)];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

/// A session record as format 2 writes it: format 1's fields, the session expiry
/// interval after the protocol level, and an options byte (and identifier) after
/// each subscription's QoS.
pub(super) fn encode_record(record: &SessionRecord, out: &mut Vec<u8>) {
    out.push(RECORD_V2);
    encode_owner(&record.owner, out);
    out.extend_from_slice(&record.session_expiry_interval.to_be_bytes());
    out.extend_from_slice(&(record.subscriptions.len() as u32).to_be_bytes());
    for sub in &record.subscriptions {
        put_str16(out, sub.filter.as_str());
        out.push(sub.qos as u8);
        let mut options = 0;
        if sub.no_local {
            options |= NO_LOCAL;
        }
        if sub.retain_as_published {
            options |= RETAIN_AS_PUBLISHED;
        }
        if sub.identifier.is_some() {
            options |= HAS_IDENTIFIER;
        }
        out.push(options);
        if let Some(id) = sub.identifier {
            out.extend_from_slice(&id.to_be_bytes());
        }
    }
}

/// A session record as format 1 wrote it: no options, no expiry. Kept to show,
/// in the tests, that what an older release wrote still loads.
#[cfg(test)]
pub(super) fn encode_record_v1(record: &SessionRecord, out: &mut Vec<u8>) {
    out.push(RECORD_V1);
    encode_owner(&record.owner, out);
    out.extend_from_slice(&(record.subscriptions.len() as u32).to_be_bytes());
    for sub in &record.subscriptions {
        put_str16(out, sub.filter.as_str());
        out.push(sub.qos as u8);
    }
}

/// The owner of a session record, the same in both formats.
fn encode_owner(owner: &StoredOwner, out: &mut Vec<u8>) {
    match &owner.username {
        Some(name) => {
            out.push(1);
            put_str16(out, name);
        }
        None => out.push(0),
    }
    match owner.remote_addr {
        Some(addr) => {
            // The text form of a socket address is at most 55 bytes.
            let text = addr.to_string();
            out.push(1);
            out.push(text.len() as u8);
            out.extend_from_slice(text.as_bytes());
        }
        None => out.push(0),
    }
    put_str16(out, &owner.listener);
    out.push(owner.protocol.level());
}

/// A retained message as format 2 writes it.
pub(super) fn encode_retained(publish: &Publish, out: &mut Vec<u8>) {
    out.push(PUBLISH_V2);
    encode_publish(publish, out);
}

/// A session's message as format 2 writes it.
pub(super) fn encode_message(message: &StoredMessage, out: &mut Vec<u8>) {
    match message {
        StoredMessage::Queued(publish) => {
            out.push(MESSAGE_QUEUED_V2);
            encode_publish(publish, out);
        }
        StoredMessage::Sent(publish) => {
            out.push(MESSAGE_SENT_V2);
            encode_publish(publish, out);
        }
        StoredMessage::Released(id) => {
            out.push(MESSAGE_RELEASED);
            out.extend_from_slice(&id.get().to_be_bytes());
        }
    }
}

// Decoding: the bytes may be anything (a damaged disk, a bug of an older
// version), so every read is checked and a failure says what was wrong.

/// Reads a value front to back; every read fails, rather than panics, past the end.
pub(super) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { rest: bytes }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if n > self.rest.len() {
            return Err(format!(
                "{what}: {n} bytes needed, {} left",
                self.rest.len()
            ));
        }
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(taken)
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, String> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn utf8(&mut self, n: usize, what: &str) -> Result<&'a str, String> {
        std::str::from_utf8(self.take(n, what)?).map_err(|e| format!("{what}: not UTF-8: {e}"))
    }

    fn str16(&mut self, what: &str) -> Result<&'a str, String> {
        let n = self.u16(what)? as usize;
        self.utf8(n, what)
    }

    fn flag(&mut self, what: &str) -> Result<bool, String> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(format!("{what}: presence byte {other}")),
        }
    }

    fn qos(&mut self, what: &str) -> Result<QoS, String> {
        let bits = self.u8(what)?;
        QoS::from_u8(bits).ok_or_else(|| format!("{what}: QoS {bits}"))
    }

    fn packet_id(&mut self, what: &str) -> Result<PacketId, String> {
        PacketId::new(self.u16(what)?).ok_or_else(|| format!("{what}: packet identifier 0"))
    }

    /// A property block as [`encode_properties`] writes it, checked as a PUBLISH
    /// received from a client is.
    fn properties(&mut self) -> Result<Option<Box<Properties>>, String> {
        let mut reader = PacketReader::new(PacketType::Publish, Bytes::copy_from_slice(self.rest));
        let properties = properties::decode(&mut reader, PropertyContext::Publish)
            .map_err(|e| format!("properties: {e}"))?;
        let used = self.rest.len() - reader.remaining();
        self.rest = &self.rest[used..];
        Ok(properties)
    }

    fn finish(self) -> Result<(), String> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(format!("{n} bytes after the end of the record")),
        }
    }
}

/// A message as format 2 wrote it: format 1's fields, then its properties.
pub(super) fn decode_publish(r: &mut Reader<'_>) -> Result<Publish, String> {
    let mut publish = decode_publish_v1(r)?;
    publish.properties = r.properties()?;
    Ok(publish)
}

/// A message as format 1 wrote it: no properties.
pub(super) fn decode_publish_v1(r: &mut Reader<'_>) -> Result<Publish, String> {
    let flags = r.u8("flags")?;
    if flags & !(QOS_MASK | RETAIN | HAS_PACKET_ID) != 0 {
        return Err(format!("unknown flags {flags:#04x}"));
    }
    let qos = QoS::from_u8(flags & QOS_MASK).ok_or("QoS 3")?;
    let packet_id = if flags & HAS_PACKET_ID != 0 {
        Some(r.packet_id("packet identifier")?)
    } else {
        None
    };
    let topic = r.str16("topic")?;
    let topic = TopicName::new(topic).map_err(|e| format!("topic {topic:?}: {e}"))?;
    let len = r.u32("payload length")? as usize;
    let payload = Bytes::copy_from_slice(r.take(len, "payload")?);
    Ok(Publish {
        dup: false,
        qos,
        retain: flags & RETAIN != 0,
        topic,
        packet_id,
        payload,
        properties: None,
    })
}

pub(super) fn decode_retained(bytes: &[u8]) -> Result<Publish, String> {
    let mut r = Reader::new(bytes);
    let publish = match r.u8("tag")? {
        PUBLISH_V1 => decode_publish_v1(&mut r)?,
        PUBLISH_V2 => decode_publish(&mut r)?,
        tag => return Err(format!("unknown tag {tag}")),
    };
    r.finish()?;
    Ok(publish)
}

pub(super) fn decode_record(client_id: &str, bytes: &[u8]) -> Result<SessionRecord, String> {
    let mut r = Reader::new(bytes);
    let v2 = match r.u8("tag")? {
        RECORD_V1 => false,
        RECORD_V2 => true,
        tag => return Err(format!("unknown tag {tag}")),
    };
    let username = if r.flag("user name")? {
        Some(r.str16("user name")?.to_string())
    } else {
        None
    };
    let remote_addr = if r.flag("remote address")? {
        let n = r.u8("remote address")? as usize;
        let text = r.utf8(n, "remote address")?;
        Some(
            text.parse::<SocketAddr>()
                .map_err(|e| format!("remote address {text:?}: {e}"))?,
        )
    } else {
        None
    };
    let listener = r.str16("listener")?.to_string();
    let protocol = match r.u8("protocol level")? {
        3 => ProtocolVersion::V3_1,
        4 => ProtocolVersion::V3_1_1,
        5 => ProtocolVersion::V5,
        level => return Err(format!("protocol level {level}")),
    };
    // Format 1 kept persistent sessions of MQTT 3.1 and 3.1.1 only: they never
    // expire.
    let session_expiry_interval = if v2 {
        r.u32("session expiry interval")?
    } else {
        u32::MAX
    };
    let count = r.u32("subscription count")? as usize;
    // A subscription takes at least 3 bytes: a corrupt count cannot make us
    // reserve more than the record could hold.
    let mut subscriptions = Vec::with_capacity(count.min(r.rest.len() / 3));
    for _ in 0..count {
        let filter = r.str16("filter")?;
        let filter = TopicFilter::new(filter).map_err(|e| format!("filter {filter:?}: {e}"))?;
        let sub = StoredSubscription::new(filter, r.qos("granted QoS")?);
        let sub = if v2 {
            decode_options(&mut r, sub)?
        } else {
            sub
        };
        subscriptions.push(sub);
    }
    r.finish()?;
    Ok(SessionRecord {
        client_id: client_id.to_string(),
        owner: StoredOwner {
            username,
            remote_addr,
            listener,
            protocol,
        },
        subscriptions,
        session_expiry_interval,
    })
}

/// The options byte of a format 2 subscription, and its identifier if it has one.
fn decode_options(
    r: &mut Reader<'_>,
    sub: StoredSubscription,
) -> Result<StoredSubscription, String> {
    let options = r.u8("subscription options")?;
    if options & !(NO_LOCAL | RETAIN_AS_PUBLISHED | HAS_IDENTIFIER) != 0 {
        return Err(format!(
            "filter {:?}: unknown subscription options {options:#04x}",
            sub.filter.as_str()
        ));
    }
    let identifier = if options & HAS_IDENTIFIER != 0 {
        match r.u32("subscription identifier")? {
            id @ 1..=MAX_VARIABLE_BYTE_INTEGER => Some(id),
            id => {
                return Err(format!(
                    "filter {:?}: subscription identifier {id}, not 1 to \
                     {MAX_VARIABLE_BYTE_INTEGER}",
                    sub.filter.as_str()
                ))
            }
        }
    } else {
        None
    };
    Ok(sub
        .with_no_local(options & NO_LOCAL != 0)
        .with_retain_as_published(options & RETAIN_AS_PUBLISHED != 0)
        .with_identifier(identifier))
}

pub(super) fn decode_message(bytes: &[u8]) -> Result<StoredMessage, String> {
    let mut r = Reader::new(bytes);
    let message = match r.u8("tag")? {
        MESSAGE_QUEUED => StoredMessage::Queued(decode_publish_v1(&mut r)?),
        MESSAGE_SENT => StoredMessage::Sent(decode_publish_v1(&mut r)?),
        MESSAGE_QUEUED_V2 => StoredMessage::Queued(decode_publish(&mut r)?),
        MESSAGE_SENT_V2 => StoredMessage::Sent(decode_publish(&mut r)?),
        MESSAGE_RELEASED => StoredMessage::Released(r.packet_id("packet identifier")?),
        tag => return Err(format!("unknown tag {tag}")),
    };
    r.finish()?;
    Ok(message)
}
