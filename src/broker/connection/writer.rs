//! The writer thread of a connection: batched writes from its outbox.

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread;

use crate::broker::event::{ConnectionId, Inbox, OutboxReceiver};
use crate::broker::panics;
use crate::broker::stats::{bump, Counters};
use crate::protocol::Packet;
use crate::transport;

/// Stack size of a writer thread: encoding only.
const WRITER_STACK_SIZE: usize = 64 * 1024;
/// A writer stops draining its outbox into one buffer beyond this many bytes.
const WRITE_BATCH: usize = 64 * 1024;

/// Starts the writer thread of connection `id`, which writes what the router puts
/// in `outbox` to `output` until the router drops the outbox. A panic in it closes
/// the socket, so that the reader sees the end and tells the router.
pub(super) fn spawn(
    stream: Arc<TcpStream>,
    output: transport::Writer,
    outbox: OutboxReceiver,
    router: Inbox,
    id: ConnectionId,
    remote_addr: SocketAddr,
    counters: Arc<Counters>,
) -> io::Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name(format!("wren-write-{id}"))
        .stack_size(WRITER_STACK_SIZE)
        .spawn(move || {
            let written = panic::catch_unwind(AssertUnwindSafe(|| {
                write_loop(stream.clone(), output, outbox, &router, id, &counters)
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
/// paused for this connection go on.
fn write_loop(
    stream: Arc<TcpStream>,
    mut output: transport::Writer,
    outbox: OutboxReceiver,
    router: &Inbox,
    id: ConnectionId,
    counters: &Counters,
) {
    // Grows with the first batches; an idle connection holds only what it needed.
    let mut buffer = Vec::new();
    while let Ok(packet) = outbox.recv() {
        encode(&packet, &mut buffer, counters);
        while buffer.len() < WRITE_BATCH {
            match outbox.try_recv() {
                Ok(packet) => encode(&packet, &mut buffer, counters),
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
    let _ = stream.shutdown(Shutdown::Both);
}

fn encode(packet: &Packet, buffer: &mut Vec<u8>, counters: &Counters) {
    match packet.encode(buffer) {
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
