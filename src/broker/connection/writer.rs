//! The writer thread of a connection: batched writes from its outbox.
//!
//! The writer is the last to see each packet before the wire, in wire order, so it
//! is where packets take their connection's form: encoded for the client's MQTT
//! version, and, for an MQTT 5 client that accepts them, with topic aliases in place
//! of topics it has already been sent ([`OutgoingAliases`]).

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crossbeam_channel::Receiver;

use crate::broker::event::{ConnectionId, Inbox, OutboxReceiver};
use crate::broker::panics;
use crate::broker::stats::{bump, Counters};

use crate::protocol::{OutgoingAliases, Packet, ProtocolVersion};
use crate::transport;

/// Stack size of a writer thread: encoding only.
const WRITER_STACK_SIZE: usize = 64 * 1024;
/// A writer stops draining its outbox into one buffer beyond this many bytes.
const WRITE_BATCH: usize = 64 * 1024;
/// After the broker's DISCONNECT, how long the connection stays open for the client
/// to read it and close first. Closing at once would throw away what the client
/// sent meanwhile, and TCP answers that with a reset that can destroy the
/// DISCONNECT before the client reads it.
const LINGER: Duration = Duration::from_secs(2);

/// Starts the writer thread of connection `id`, which writes what the router puts
/// in `outbox` to `output` until the router drops the outbox. A panic in it closes
/// the socket, so that the reader sees the end and tells the router.
#[allow(clippy::too_many_arguments)] // one call site, each argument named there
pub(super) fn spawn(
    stream: Arc<TcpStream>,
    output: transport::Writer,
    outbox: OutboxReceiver,
    router: Inbox,
    id: ConnectionId,
    remote_addr: SocketAddr,
    counters: Arc<Counters>,
    form: WireForm,
    reader_done: Receiver<()>,
) -> io::Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name(format!("wren-write-{id}"))
        .stack_size(WRITER_STACK_SIZE)
        .spawn(move || {
            let written = panic::catch_unwind(AssertUnwindSafe(|| {
                write_loop(
                    stream.clone(),
                    output,
                    outbox,
                    &router,
                    id,
                    &counters,
                    form,
                    &reader_done,
                )
            }));
            if let Err(panic) = written {
                log::error!(
                    "The writer thread of connection {id} from {remote_addr} panicked ({}); \
                     that connection is closed, the broker goes on.",
                    panics::message(&*panic)
                );
                // The reader sees the end and tells the router.
                let _ = stream.shutdown(Shutdown::Both);
            }
        })
}

/// Drains the outbox into one buffer per write until the router drops the outbox.
/// After each write it tells `router` if the outbox has drained, so that publishers
/// paused for this connection go on. When the last packet was the broker's
/// DISCONNECT, it ends its side of the connection and lingers until the client
/// closes (the reader is done) or [`LINGER`] has passed.
#[allow(clippy::too_many_arguments)] // one call site, each argument named there
fn write_loop(
    stream: Arc<TcpStream>,
    mut output: transport::Writer,
    outbox: OutboxReceiver,
    router: &Inbox,
    id: ConnectionId,
    counters: &Counters,
    form: WireForm,
    reader_done: &Receiver<()>,
) {
    let mut said_goodbye = false;
    let mut aliases = OutgoingAliases::new(form.topic_alias_maximum);
    // Grows with the first batches; an idle connection holds only what it needed.
    let mut buffer = Vec::new();
    while let Ok(packet) = outbox.recv() {
        said_goodbye = matches!(packet, Packet::Disconnect(_));
        encode(packet, form.version, &mut aliases, &mut buffer, counters);
        while buffer.len() < WRITE_BATCH {
            match outbox.try_recv() {
                Ok(packet) => {
                    said_goodbye = matches!(packet, Packet::Disconnect(_));
                    encode(packet, form.version, &mut aliases, &mut buffer, counters)
                }
                Err(_) => break,
            }
        }
        if let Err(error) = output.write_all(&buffer) {
            log::debug!("Write to {:?} failed: {error}.", stream.peer_addr().ok());
            break;
        }
        bump(&counters.bytes_sent, buffer.len() as u64);
        outbox.report_drained(router, id);
        buffer.clear();
        // One huge message must not pin its buffer for the life of the connection.
        if buffer.capacity() > 4 * WRITE_BATCH {
            buffer = Vec::new();
        }
    }
    // Say goodbye properly over TLS and WebSocket (close_notify, close frame).
    output.close_gracefully();
    if said_goodbye {
        let _ = stream.shutdown(Shutdown::Write);
        let _ = reader_done.recv_timeout(LINGER);
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// How a connection's packets go on the wire.
#[derive(Debug, Clone, Copy)]
pub(super) struct WireForm {
    /// The MQTT version the client speaks.
    pub(super) version: ProtocolVersion,
    /// MQTT 5: the topic aliases the broker may use towards the client (0: none).
    pub(super) topic_alias_maximum: u16,
}

fn encode(
    mut packet: Packet,
    version: ProtocolVersion,
    aliases: &mut OutgoingAliases,
    buffer: &mut Vec<u8>,
    counters: &Counters,
) {
    if let Packet::Publish(publish) = &mut packet {
        aliases.apply(publish);
    }
    let packet = &packet;
    match packet.encode_for(version, buffer) {
        Ok(()) => {
            bump(&counters.messages_sent, 1);
            if let Packet::Publish(publish) = packet {
                bump(&counters.publish_sent, 1);
                bump(&counters.publish_bytes_sent, publish.payload.len() as u64);
            }
        }
        Err(error) => log::error!("Cannot encode {packet}: {error}; not sent."),
    }
}
