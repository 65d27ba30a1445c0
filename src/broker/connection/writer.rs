//! The writer of a connection: batched writes from its outbox, on a thread that
//! runs only while there is something to write.
//!
//! The writer is the last to see each packet before the wire, in wire order, so it
//! is where packets take their connection's form: encoded for the client's MQTT
//! version, and, for an MQTT 5 client that accepts them, with topic aliases in place
//! of topics it has already been sent ([`OutgoingAliases`]).
//!
//! Most connections are quiet most of the time, and a thread that waits costs a
//! stack and two memory mappings, which caps how many connections a machine holds.
//! So the writer's thread ends after [`WRITER_IDLE`] without work, leaving what it
//! had ([`WriterParts`]: the socket's write half, the aliases given, the buffer) in
//! the connection's [`WriterSlot`]. A quiet connection is then one reader thread.
//!
//! While no thread runs, what the router puts in the outbox is written one of two
//! ways ([`Wake`]):
//!
//! - over plain TCP, by the router itself at the end of its batch, with one send
//!   that does not wait ([`PendingWrites`]); only what the socket does not take
//!   starts a writer thread, which writes it first. The router writes to most
//!   connections this way, and no thread wakes for a message;
//! - over TLS and WebSocket, by a writer thread started for it: their records
//!   cannot be cut short where the socket's buffer ends and finished later, so
//!   every write there may wait, and only a writer thread may wait.
//!
//! Writer threads are counted against a cap ([`WriterPool`]), so that a machine's
//! mapping limit holds a reader for every connection and a writer for many at
//! once, never more: a connection whose writer cannot start yet waits in line, and
//! the next writer thread to stop starts it. Over plain TCP a writer stalled by a
//! client that does not read gives its thread up to the line after each
//! [`WRITE_SLICE`] without progress, keeping what it has not written, so clients
//! that stop reading cannot hold every writer thread; it gives up on the client
//! after `packet-timeout` without progress, as a writer that waits does.
//!
//! Starting and stopping never lose a packet: the slot's `running` flag and the
//! outbox's queue are read crosswise with sequentially consistent operations. The
//! router puts a packet in, then reads the flag; a stopping writer clears the flag,
//! then looks at the queue. One of them sees the other, so either the writer stays
//! or the router writes the packet (or starts a new thread for it). The router
//! writes only to a resting slot, under its lock, and a thread writes what the
//! router left in the buffer before anything else, so bytes keep their order.

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::broker::event::{ConnectionId, Flush, Inbox, OutboxReceiver, PendingWrites, Wake};
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
/// How long a writer thread waits for work before it ends. Long enough that a
/// connection with traffic keeps its thread (starting one costs tens of
/// microseconds, on the router's thread), short enough that idle connections
/// soon hold none. The same for connections the router writes to itself: with
/// 100 ms instead, a hundred subscribers of a flood that paused started a hundred
/// threads again each time, and fan-out fell by a sixth to a half.
pub(crate) const WRITER_IDLE: Duration = Duration::from_secs(2);
/// Over plain TCP, the longest one write waits for a client that takes nothing
/// before its writer lets others waiting for a thread go first.
pub(super) const WRITE_SLICE: Duration = Duration::from_secs(1);

/// Everything a writer thread works with, kept in the [`WriterSlot`] while no
/// thread runs.
pub(super) struct WriterParts {
    pub(super) stream: Arc<TcpStream>,
    pub(super) output: transport::Writer,
    pub(super) outbox: OutboxReceiver,
    pub(super) router: Inbox,
    pub(super) id: ConnectionId,
    pub(super) remote_addr: SocketAddr,
    pub(super) counters: Arc<Counters>,
    pub(super) form: WireForm,
    /// Disconnects when the reader has finished (see [`LINGER`]).
    pub(super) reader_done: Receiver<()>,
    pub(super) aliases: OutgoingAliases,
    /// Grows with the first batches; an idle connection holds only what it needed.
    pub(super) buffer: Vec<u8>,
    /// Whether the last packet written was the broker's DISCONNECT.
    pub(super) said_goodbye: bool,
    /// Since when the client has taken none of the bytes written to it.
    pub(super) stalled_since: Option<Instant>,
    /// How long a client may take none of them before it is given up on
    /// (`packet-timeout`).
    pub(super) give_up_after: Duration,
}

/// Where a connection's writer stands: running on a thread, resting with its
/// parts, waiting in line for a thread, or finished.
enum SlotState {
    Running,
    Resting(Box<WriterParts>),
    Waiting(Box<WriterParts>),
    Closed,
}

/// The cap on writer threads running at once, and the connections waiting for one.
pub(crate) struct WriterPool {
    max: usize,
    state: Mutex<PoolState>,
    /// How many connections wait in line: read by every writer with nothing to
    /// do, which then gives its place up at once rather than after [`WRITER_IDLE`].
    waiting: std::sync::atomic::AtomicUsize,
}

struct PoolState {
    running: usize,
    waiting: std::collections::VecDeque<Weak<WriterSlot>>,
}

impl WriterPool {
    /// A pool of at most `max` writer threads.
    pub(crate) fn new(max: usize) -> WriterPool {
        WriterPool {
            max: max.max(1),
            state: Mutex::new(PoolState {
                running: 0,
                waiting: std::collections::VecDeque::new(),
            }),
            waiting: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Counts a new thread in if there is room; otherwise puts `slot` in line.
    fn acquire_or_wait(&self, slot: &Weak<WriterSlot>) -> bool {
        let mut state = self.state.lock();
        if state.running < self.max {
            state.running += 1;
            true
        } else {
            state.waiting.push_back(slot.clone());
            self.waiting.store(state.waiting.len(), Ordering::Relaxed);
            false
        }
    }

    /// A thread stops: its place goes to the first connection in line, if any.
    fn release(&self) {
        loop {
            let next = {
                let mut state = self.state.lock();
                let next = state.waiting.pop_front();
                self.waiting.store(state.waiting.len(), Ordering::Relaxed);
                match next {
                    Some(next) => next,
                    None => {
                        state.running -= 1;
                        return;
                    }
                }
            };
            // The place passes on; a connection gone meanwhile passes it further.
            if let Some(slot) = next.upgrade() {
                if slot.start_waiting() {
                    return;
                }
            }
        }
    }

    /// Puts `slot` at the end of the line (its thread then stops and gives its
    /// place to the first in line).
    fn requeue(&self, slot: &Weak<WriterSlot>) {
        let mut state = self.state.lock();
        state.waiting.push_back(slot.clone());
        self.waiting.store(state.waiting.len(), Ordering::Relaxed);
    }

    /// Whether connections wait for a writer thread.
    fn has_waiting(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) > 0
    }

    /// How many writer threads run now.
    #[cfg(test)]
    fn running(&self) -> usize {
        self.state.lock().running
    }
}

/// A connection's writer, between its reader (which waits for it to finish), its
/// outbox (which wakes it) and its threads.
pub(super) struct WriterSlot {
    /// Whether a thread is running (or about to): read without the lock on every
    /// packet the router puts in.
    running: AtomicBool,
    /// Where the router collects the connections it writes to itself; `None` when
    /// every write goes through a thread (TLS, WebSocket).
    direct: Option<Arc<PendingWrites>>,
    /// Whether this slot is in `direct`'s queue already.
    flush_queued: AtomicBool,
    state: Mutex<SlotState>,
    closed: Condvar,
    /// The slot itself, for the threads it starts.
    me: Weak<WriterSlot>,
    pool: Arc<WriterPool>,
}

impl WriterSlot {
    /// A slot holding `parts`, with no thread yet. The router writes to it
    /// through `direct` where the transport allows (see the module documentation);
    /// otherwise the first packet starts a thread.
    pub(super) fn new(
        parts: WriterParts,
        pool: Arc<WriterPool>,
        direct: Option<Arc<PendingWrites>>,
    ) -> Arc<WriterSlot> {
        let direct = direct.filter(|_| parts.output.can_write_now());
        Arc::new_cyclic(|me| WriterSlot {
            running: AtomicBool::new(false),
            direct,
            flush_queued: AtomicBool::new(false),
            state: Mutex::new(SlotState::Resting(Box::new(parts))),
            closed: Condvar::new(),
            me: me.clone(),
            pool,
        })
    }

    /// Waits until the writer has finished: written what the router left, said
    /// goodbye and closed the socket.
    pub(super) fn wait_closed(&self) {
        let mut state = self.state.lock();
        while !matches!(*state, SlotState::Closed) {
            self.closed.wait(&mut state);
        }
    }

    /// Starts a thread for the resting parts, if no thread runs, or puts the
    /// connection in line when the pool is full.
    fn start(&self) {
        let mut state = self.state.lock();
        let give_back = self.start_locked(&mut state);
        drop(state);
        if give_back {
            self.pool.release();
        }
    }

    /// [`start`](Self::start) with the slot's lock held. True when the thread could
    /// not start and its place in the pool is to be given back, which the caller
    /// does once it has let go of the lock.
    fn start_locked(&self, state: &mut MutexGuard<'_, SlotState>) -> bool {
        if !matches!(**state, SlotState::Resting(_)) {
            return false;
        }
        // From here on the outbox need not wake this slot: it runs or waits.
        self.running.store(true, Ordering::SeqCst);
        let SlotState::Resting(parts) = std::mem::replace(&mut **state, SlotState::Running) else {
            return false;
        };
        if self.pool.acquire_or_wait(&self.me) {
            !self.spawn(state, parts)
        } else {
            **state = SlotState::Waiting(parts);
            false
        }
    }

    /// Starts the thread of a connection that waited in line, with the place of
    /// a thread that stopped. False if it needs none any more.
    fn start_waiting(&self) -> bool {
        let mut state = self.state.lock();
        let SlotState::Waiting(parts) = std::mem::replace(&mut *state, SlotState::Running) else {
            return false;
        };
        let spawned = self.spawn(&mut state, parts);
        drop(state);
        if !spawned {
            // Passed on to the next in line.
            self.pool.release();
        }
        true
    }

    /// Spawns a thread for `parts`, its place in the pool taken. On failure the
    /// connection is closed, and the caller gives the place back once it has let
    /// go of the slot's lock.
    fn spawn(&self, state: &mut SlotState, parts: Box<WriterParts>) -> bool {
        let stream = parts.stream.clone();
        let id = parts.id;
        let spawned = match self.me.upgrade() {
            Some(slot) => thread::Builder::new()
                .name(format!("wren-write-{id}"))
                .stack_size(WRITER_STACK_SIZE)
                .spawn(move || slot.run(parts))
                .map(drop),
            None => Err(std::io::Error::other("the connection is gone")),
        };
        if let Err(error) = spawned {
            log::error!("Cannot start a writer thread for connection {id}: {error}; closing it.");
            // The reader sees the end and tells the router.
            let _ = stream.shutdown(Shutdown::Both);
            *state = SlotState::Closed;
            self.closed.notify_all();
            return false;
        }
        true
    }

    /// A writer thread: writes until the outbox is closed, or rests when there is
    /// nothing to do. A panic closes the socket, so that the reader sees the end
    /// and tells the router.
    fn run(self: Arc<WriterSlot>, parts: Box<WriterParts>) {
        let stream = parts.stream.clone();
        let (id, remote_addr) = (parts.id, parts.remote_addr);
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| write_loop(&self, parts)));
        match outcome {
            Ok(Stopped) => {}
            Err(panic) => {
                log::error!(
                    "The writer thread of connection {id} from {remote_addr} panicked ({}); \
                     that connection is closed, the broker goes on.",
                    panics::message(&*panic)
                );
                let _ = stream.shutdown(Shutdown::Both);
                self.close();
            }
        }
        // This thread's place goes to the next connection in line.
        self.pool.release();
    }

    /// Puts `parts` to rest, unless work has come: then hands them back. The
    /// outbox's channel, quiet for [`WRITER_IDLE`], is renewed, which gives its
    /// block of slots back.
    fn rest(&self, mut parts: Box<WriterParts>) -> Result<(), Box<WriterParts>> {
        let mut state = self.state.lock();
        self.running.store(false, Ordering::SeqCst);
        if parts.outbox.has_work() {
            self.running.store(true, Ordering::SeqCst);
            return Err(parts);
        }
        parts.outbox.renew();
        *state = SlotState::Resting(parts);
        Ok(())
    }

    /// Goes to the end of the line with `parts` and what they have not written:
    /// the thread stops, and a later one goes on where it stopped.
    fn yield_place(&self, parts: Box<WriterParts>) {
        *self.state.lock() = SlotState::Waiting(parts);
        self.pool.requeue(&self.me);
    }

    fn close(&self) {
        let mut state = self.state.lock();
        *state = SlotState::Closed;
        self.closed.notify_all();
    }
}

impl Wake for WriterSlot {
    fn wake(&self) {
        // Pairs with the fence in `OutboxReceiver::has_work` (see the module
        // documentation).
        fence(Ordering::SeqCst);
        if self.running.load(Ordering::SeqCst) {
            return;
        }
        match &self.direct {
            Some(pending) => {
                if !self.flush_queued.swap(true, Ordering::Relaxed) {
                    if let Some(me) = self.me.upgrade() {
                        pending.push(me);
                    }
                }
            }
            None => self.start(),
        }
    }

    fn closed(&self) {
        fence(Ordering::SeqCst);
        if !self.running.load(Ordering::SeqCst) {
            // Saying goodbye may wait (see `LINGER`): a thread's work.
            self.start();
        }
    }
}

impl Flush for WriterSlot {
    /// The router's write: encodes what waits in the outbox (up to
    /// [`WRITE_BATCH`]) after what is left in the buffer, sends what the socket
    /// takes without waiting, and starts a thread for the rest; or, when the
    /// router has no time to `write`, starts the thread at once.
    fn flush(&self, write: bool) -> Option<ConnectionId> {
        self.flush_queued.store(false, Ordering::Relaxed);
        let mut state = self.state.lock();
        // A thread has started meanwhile: it writes the packets.
        let SlotState::Resting(parts) = &mut *state else {
            return None;
        };
        if write {
            fill(parts);
        }
        if !parts.buffer.is_empty() {
            match parts.output.write_now(&parts.buffer) {
                Some(Ok(sent)) => {
                    bump(&parts.counters.bytes_sent, sent as u64);
                    parts.buffer.drain(..sent);
                }
                // The thread's write fails the same way and closes the connection.
                Some(Err(error)) => log::debug!("Write to {} failed: {error}.", parts.remote_addr),
                None => {}
            }
        }
        let drained = parts.outbox.drained().then_some(parts.id);
        if parts.buffer.is_empty() && !parts.outbox.has_work() {
            shrink(&mut parts.buffer);
            parts.outbox.renew_if_due(Instant::now());
            return drained;
        }
        let give_back = self.start_locked(&mut state);
        drop(state);
        if give_back {
            self.pool.release();
        }
        drained
    }
}
/// A writer thread has stopped: resting in its slot, or finished and closed.
struct Stopped;

/// Drains the outbox into one buffer per write until the router drops the outbox,
/// or rests after [`WRITER_IDLE`] without work. After each write it tells the
/// router if the outbox has drained, so that publishers paused for this connection
/// go on. When the outbox is closed and the last packet was the broker's
/// DISCONNECT, it ends its side of the connection and lingers until the client
/// closes (the reader is done) or [`LINGER`] has passed.
fn write_loop(slot: &WriterSlot, mut parts: Box<WriterParts>) -> Stopped {
    loop {
        // What the router could not write goes first.
        if parts.buffer.is_empty() {
            // With connections waiting for a thread, one with nothing to write
            // gives its place up at once.
            let idle = if slot.pool.has_waiting() {
                Duration::ZERO
            } else {
                WRITER_IDLE
            };
            let packet = match parts.outbox.recv_timeout(idle) {
                Ok(packet) => packet,
                Err(RecvTimeoutError::Timeout) => match slot.rest(parts) {
                    Ok(()) => return Stopped,
                    Err(back) => {
                        parts = back;
                        continue;
                    }
                },
                Err(RecvTimeoutError::Disconnected) => break,
            };
            parts.encode(packet);
        }
        fill(&mut parts);
        match write_out(&mut parts, slot) {
            Written::All => {}
            Written::Failed => break,
            Written::Stalled => {
                slot.yield_place(parts);
                return Stopped;
            }
        }
        let WriterParts {
            outbox,
            router,
            id,
            buffer,
            ..
        } = &mut *parts;
        outbox.report_drained(router, *id);
        buffer.clear();
        shrink(buffer);
    }
    // Say goodbye properly over TLS and WebSocket (close_notify, close frame).
    parts.output.close_gracefully();
    if parts.said_goodbye {
        let _ = parts.stream.shutdown(Shutdown::Write);
        let _ = parts.reader_done.recv_timeout(LINGER);
    }
    let _ = parts.stream.shutdown(Shutdown::Both);
    slot.close();
    Stopped
}

/// How [`write_out`] ended.
enum Written {
    /// The whole buffer is written.
    All,
    /// The connection is broken, or its client took nothing for `packet-timeout`.
    Failed,
    /// The client takes nothing and others wait for a thread: the buffer holds
    /// what is left to write.
    Stalled,
}

/// Writes the buffer. Over TLS and WebSocket in one call, which waits up to
/// `packet-timeout`; over plain TCP a slice at a time (see [`WRITE_SLICE`]),
/// keeping what a stalled client has not taken when others wait for a thread.
fn write_out(parts: &mut WriterParts, slot: &WriterSlot) -> Written {
    let WriterParts {
        stream,
        output,
        counters,
        buffer,
        stalled_since,
        give_up_after,
        ..
    } = parts;
    let failed = |error: std::io::Error| {
        log::debug!("Write to {:?} failed: {error}.", stream.peer_addr().ok());
        Written::Failed
    };
    if !output.can_write_now() {
        return match output.write_all(buffer) {
            Ok(()) => {
                bump(&counters.bytes_sent, buffer.len() as u64);
                Written::All
            }
            Err(error) => failed(error),
        };
    }
    let mut written = 0;
    while written < buffer.len() {
        match output.write(&buffer[written..]) {
            Ok(0) => return failed(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                written += n;
                *stalled_since = None;
                bump(&counters.bytes_sent, n as u64);
            }
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                let now = Instant::now();
                let since = *stalled_since.get_or_insert(now);
                if now.duration_since(since) >= *give_up_after {
                    return failed(error);
                }
                if slot.pool.has_waiting() {
                    buffer.drain(..written);
                    return Written::Stalled;
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return failed(error),
        }
    }
    Written::All
}

/// How a connection's packets go on the wire.
#[derive(Debug, Clone, Copy)]
pub(super) struct WireForm {
    /// The MQTT version the client speaks.
    pub(super) version: ProtocolVersion,
    /// MQTT 5: the topic aliases the broker may use towards the client (0: none).
    pub(super) topic_alias_maximum: u16,
}

impl WriterParts {
    /// Encodes `packet` at the end of the buffer.
    fn encode(&mut self, packet: Packet) {
        self.said_goodbye = matches!(packet, Packet::Disconnect(_));
        encode(
            packet,
            self.form.version,
            &mut self.aliases,
            &mut self.buffer,
            &self.counters,
        );
    }
}

/// Encodes what waits in the outbox after what the buffer holds, up to
/// [`WRITE_BATCH`] bytes.
fn fill(parts: &mut WriterParts) {
    while parts.buffer.len() < WRITE_BATCH {
        match parts.outbox.try_recv() {
            Ok(packet) => parts.encode(packet),
            Err(_) => break,
        }
    }
}

/// One huge message must not pin its buffer for the life of the connection.
fn shrink(buffer: &mut Vec<u8>) {
    if buffer.is_empty() && buffer.capacity() > 4 * WRITE_BATCH {
        *buffer = Vec::new();
    }
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

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::super::tests::{shared_with_inbox, tcp_pair};
    use super::*;
    use crate::broker::event::{outbox, Outbox};
    use crate::config::Limits;
    use crate::transport::Acceptor;

    /// A connection's writer in `pool`, its outbox, and the client's end.
    fn connection(
        pool: &Arc<WriterPool>,
        id: ConnectionId,
    ) -> (Arc<WriterSlot>, Outbox, TcpStream) {
        connection_written_by(pool, id, None)
    }

    /// [`connection`], with the router writing to it through `direct`.
    fn connection_written_by(
        pool: &Arc<WriterPool>,
        id: ConnectionId,
        direct: Option<Arc<PendingWrites>>,
    ) -> (Arc<WriterSlot>, Outbox, TcpStream) {
        let (server, client) = tcp_pair();
        // As the reader sets it over plain TCP, shorter (see `WRITE_SLICE`).
        server
            .set_write_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let remote_addr = client.local_addr().unwrap();
        let stream = Arc::new(server);
        let transport = Acceptor::tcp().accept(Arc::clone(&stream)).unwrap();
        let (shared, _inbox) = shared_with_inbox(Limits::default());
        let (outbox, receiver) = outbox(10);
        let (_reading, reader_done) = crossbeam_channel::bounded(0);
        let slot = WriterSlot::new(
            WriterParts {
                stream,
                output: transport.writer,
                outbox: receiver,
                router: shared.router.clone(),
                id,
                remote_addr,
                counters: shared.counters.clone(),
                form: WireForm {
                    version: ProtocolVersion::V3_1_1,
                    topic_alias_maximum: 0,
                },
                reader_done,
                aliases: OutgoingAliases::new(0),
                buffer: Vec::new(),
                said_goodbye: false,
                stalled_since: None,
                give_up_after: Duration::from_secs(60),
            },
            pool.clone(),
            direct,
        );
        let outbox = outbox.with_waker(slot.clone());
        (slot, outbox, client)
    }

    fn read_pingresp(client: &mut TcpStream) {
        let mut bytes = [0u8; 2];
        client.read_exact(&mut bytes).unwrap();
        assert_eq!(bytes, [0xD0, 0x00]);
    }

    fn wait_for(what: &str, condition: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !condition() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_quiet_writer_rests_and_the_next_packet_wakes_it() {
        let pool = Arc::new(WriterPool::new(4));
        let (slot, outbox, mut client) = connection(&pool, 1);
        assert_eq!(pool.running(), 0, "no thread before the first packet");
        outbox.try_send(Packet::PingResp).unwrap();
        read_pingresp(&mut client);
        wait_for("the writer to rest", || pool.running() == 0);
        outbox.try_send(Packet::PingResp).unwrap();
        read_pingresp(&mut client);
        // Dropping the outbox wakes the writer to close, even from rest.
        wait_for("the writer to rest again", || pool.running() == 0);
        drop(outbox);
        slot.wait_closed();
        assert_eq!(client.read(&mut [0u8; 1]).unwrap(), 0, "closed");
        wait_for("the pool to be empty", || pool.running() == 0);
    }

    #[test]
    fn connections_beyond_the_pools_cap_wait_their_turn() {
        let pool = Arc::new(WriterPool::new(1));
        let connections: Vec<_> = (1..=3).map(|id| connection(&pool, id)).collect();
        for (_, outbox, _) in &connections {
            outbox.try_send(Packet::PingResp).unwrap();
        }
        assert!(pool.running() <= 1);
        for (_, _, client) in &connections {
            let mut client = client.try_clone().unwrap();
            read_pingresp(&mut client);
        }
        for (slot, outbox, _) in connections {
            drop(outbox);
            slot.wait_closed();
        }
        wait_for("the pool to be empty", || pool.running() == 0);
    }

    #[test]
    fn the_router_writes_to_a_resting_connection_itself_and_no_thread_starts() {
        let pool = Arc::new(WriterPool::new(4));
        let pending = Arc::new(PendingWrites::default());
        let (slot, outbox, mut client) = connection_written_by(&pool, 1, Some(pending.clone()));
        outbox.try_send(Packet::PingResp).unwrap();
        outbox.try_send(Packet::PingResp).unwrap();
        assert!(
            !pending.is_empty(),
            "the connection asks to be written once"
        );
        assert_eq!(
            pool.running(),
            0,
            "no thread for a packet the router writes"
        );
        assert!(pending.flush(true).is_empty());
        assert!(pending.is_empty());
        read_pingresp(&mut client);
        read_pingresp(&mut client);
        assert_eq!(pool.running(), 0, "written without a thread");
        drop(outbox);
        slot.wait_closed();
        wait_for("the pool to be empty", || pool.running() == 0);
    }

    #[test]
    fn what_the_socket_does_not_take_goes_to_a_thread_in_order() {
        let pool = Arc::new(WriterPool::new(4));
        let pending = Arc::new(PendingWrites::default());
        let (slot, outbox, mut client) = connection_written_by(&pool, 1, Some(pending.clone()));
        // Far more than a loopback socket buffers while the client reads nothing,
        // flushed a batch at a time.
        const COUNT: u16 = 4000;
        for n in 1..=COUNT {
            outbox
                .try_send(Packet::Publish(numbered_publish(n, 1000)))
                .unwrap();
            if n % 50 == 0 {
                pending.flush(true);
            }
        }
        pending.flush(true);
        assert_eq!(
            pool.running(),
            1,
            "the socket filled up: a thread writes the rest"
        );
        read_publishes_in_order(&mut client, COUNT);
        drop(outbox);
        slot.wait_closed();
        wait_for("the pool to be empty", || pool.running() == 0);
    }

    #[test]
    fn a_client_that_does_not_read_lets_others_have_the_only_writer_thread() {
        let pool = Arc::new(WriterPool::new(1));
        let (stalled, stalled_outbox, mut stalled_client) = connection(&pool, 1);
        let (other, other_outbox, mut other_client) = connection(&pool, 2);
        // Far more than the sockets between them buffer: the writer stalls.
        const COUNT: u16 = 4000;
        for n in 1..=COUNT {
            stalled_outbox
                .try_send(Packet::Publish(numbered_publish(n, 4096)))
                .unwrap();
        }
        wait_for("the writer to start", || pool.running() == 1);
        other_outbox.try_send(Packet::PingResp).unwrap();
        // The stalled writer gives its thread up after a slice without progress.
        other_client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        read_pingresp(&mut other_client);
        // And goes on where it stopped once the client reads again.
        stalled_client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        read_publishes_in_order(&mut stalled_client, COUNT);
        drop(stalled_outbox);
        drop(other_outbox);
        stalled.wait_closed();
        other.wait_closed();
        wait_for("the pool to be empty", || pool.running() == 0);
    }

    /// A QoS 1 PUBLISH numbered `n` by its packet identifier.
    fn numbered_publish(n: u16, size: usize) -> crate::protocol::Publish {
        let mut publish = crate::protocol::Publish::new(
            crate::protocol::TopicName::new("t").unwrap(),
            vec![7u8; size],
            crate::protocol::QoS::AtLeastOnce,
            false,
        );
        publish.packet_id = Some(crate::protocol::PacketId::new(n).unwrap());
        publish
    }

    /// Reads PUBLISH packets 1 to `count`, checking their order.
    fn read_publishes_in_order(client: &mut TcpStream, count: u16) {
        let mut decoder = crate::protocol::Decoder::new().with_version(ProtocolVersion::V3_1_1);
        let mut next = 1;
        let mut received = bytes::BytesMut::new();
        let mut buffer = vec![0u8; 64 * 1024];
        let deadline = Instant::now() + Duration::from_secs(30);
        while next <= count {
            assert!(Instant::now() < deadline, "timed out at packet {next}");
            let read = client.read(&mut buffer).unwrap();
            assert!(read > 0, "closed at packet {next}");
            received.extend_from_slice(&buffer[..read]);
            while let Some(packet) = decoder.decode(&mut received).unwrap() {
                let Packet::Publish(publish) = packet else {
                    panic!("not a PUBLISH: {packet}")
                };
                assert_eq!(publish.packet_id.map(|id| id.get()), Some(next), "in order");
                next += 1;
            }
        }
    }

    #[test]
    fn a_busy_router_hands_the_packets_to_a_thread() {
        let pool = Arc::new(WriterPool::new(4));
        let pending = Arc::new(PendingWrites::default());
        let (slot, outbox, mut client) = connection_written_by(&pool, 1, Some(pending.clone()));
        outbox.try_send(Packet::PingResp).unwrap();
        outbox.try_send(Packet::PingResp).unwrap();
        pending.flush(false);
        read_pingresp(&mut client);
        read_pingresp(&mut client);
        wait_for("the thread to rest", || pool.running() == 0);
        drop(outbox);
        slot.wait_closed();
    }
}
