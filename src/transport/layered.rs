//! Reading and writing one TLS or WebSocket connection from two threads.
//!
//! The TLS session and the WebSocket framing state live in one [`Layers`] value behind
//! a mutex, sitting on a [`Pipe`] that no longer touches the socket. The reading
//! thread does a plain blocking read on its own handle of the TCP socket, then locks
//! the layers only long enough to feed them those bytes and take out the plaintext.
//! The writing thread locks them only long enough to turn plaintext into bytes for the
//! wire, and writes those on the socket itself. Nobody holds the layers' lock while
//! blocked on the network, so neither direction waits for the other, a message for an
//! idle subscriber goes out the moment it is written, and an idle connection is two
//! threads asleep in the kernel.
//!
//! Bytes for the wire must reach it in the order the layers produced them (TLS records
//! are numbered). So whoever takes bytes out of the pipe locks the socket's writing
//! side *before* letting go of the layers: the order of taking is the order of
//! writing. The lock order is always layers, then socket, never the reverse.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use native_tls::TlsStream;
use parking_lot::Mutex;
use tungstenite::{Message, WebSocket};

use super::pipe::Pipe;

/// The protocol layers between MQTT's bytes and TCP's.
pub(crate) enum Layers {
    /// MQTT over TLS (`mqtts://`).
    Tls(Box<TlsStream<Pipe>>),
    /// MQTT in WebSocket binary frames (`ws://`).
    WebSocket(Box<WebSocket<Pipe>>),
    /// MQTT in WebSocket frames inside TLS (`wss://`).
    SecureWebSocket(Box<WebSocket<TlsStream<Pipe>>>),
}

/// What reading from the layers found.
#[derive(Debug, PartialEq, Eq)]
enum ReadStatus {
    /// Everything the layers could decode was taken; they need more bytes.
    NeedBytes,
    /// The peer closed the connection (TLS close_notify or a WebSocket close).
    Closed,
}

impl Layers {
    fn pipe(&mut self) -> &mut Pipe {
        match self {
            Layers::Tls(tls) => tls.get_mut(),
            Layers::WebSocket(ws) => ws.get_mut(),
            Layers::SecureWebSocket(ws) => ws.get_mut().get_mut(),
        }
    }

    /// Moves all the application bytes the layers can decode now into `out`.
    fn read_available(&mut self, out: &mut BytesMut) -> io::Result<ReadStatus> {
        match self {
            Layers::Tls(tls) => read_tls(tls, out),
            Layers::WebSocket(ws) => read_websocket(ws, out),
            Layers::SecureWebSocket(ws) => read_websocket(ws, out),
        }
    }

    /// Turns application bytes into wire bytes, left in the pipe.
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Layers::Tls(tls) => tls.write_all(data),
            Layers::WebSocket(ws) => write_websocket(ws, data),
            Layers::SecureWebSocket(ws) => write_websocket(ws, data),
        }
    }

    /// Starts an orderly close: TLS close_notify, WebSocket close frame.
    fn close(&mut self) {
        // Best effort: the socket is shut down right after, whatever happens here.
        let _ = match self {
            Layers::Tls(tls) => tls.shutdown(),
            Layers::WebSocket(ws) => ws.close(None).map_err(websocket_error),
            Layers::SecureWebSocket(ws) => ws.close(None).map_err(websocket_error),
        };
    }
}

fn read_tls(tls: &mut TlsStream<Pipe>, out: &mut BytesMut) -> io::Result<ReadStatus> {
    let mut chunk = [0u8; 8 * 1024];
    loop {
        match tls.read(&mut chunk) {
            Ok(0) => return Ok(ReadStatus::Closed),
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ReadStatus::NeedBytes),
            Err(e) => return Err(e),
        }
    }
}

fn read_websocket<S: Read + Write>(
    ws: &mut WebSocket<S>,
    out: &mut BytesMut,
) -> io::Result<ReadStatus> {
    loop {
        match ws.read() {
            Ok(Message::Binary(data)) => out.extend_from_slice(&data),
            Ok(Message::Text(_)) => {
                // MQTT over WebSocket is carried in binary frames only.
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "WebSocket text frame received; MQTT must be sent in binary frames",
                ));
            }
            // Pings are answered by tungstenite itself (the pong waits in the pipe);
            // a close frame is answered likewise, and the next read reports the end.
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_)) => {}
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                return Ok(ReadStatus::Closed)
            }
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                return Ok(ReadStatus::NeedBytes)
            }
            Err(e) => return Err(websocket_error(e)),
        }
    }
}

fn write_websocket<S: Read + Write>(ws: &mut WebSocket<S>, data: &[u8]) -> io::Result<()> {
    ws.send(Message::Binary(data.to_vec()))
        .map_err(websocket_error)
}

pub(crate) fn websocket_error(error: tungstenite::Error) -> io::Error {
    match error {
        tungstenite::Error::Io(e) => e,
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            io::ErrorKind::BrokenPipe.into()
        }
        other => io::Error::new(io::ErrorKind::InvalidData, format!("WebSocket: {other}")),
    }
}

/// What both halves of a layered connection share.
struct Shared {
    layers: Mutex<Layers>,
    /// The socket's writing side; see the module docs for the lock order.
    socket_writer: Mutex<Arc<TcpStream>>,
}

impl Shared {
    /// Sends what the layers left in the pipe, keeping wire order (module docs).
    fn send_outgoing(&self, mut layers: parking_lot::MutexGuard<'_, Layers>) -> io::Result<()> {
        let outgoing = layers.pipe().take_outgoing();
        if outgoing.is_empty() {
            return Ok(());
        }
        let socket = self.socket_writer.lock();
        drop(layers);
        (&**socket).write_all(&outgoing)
    }
}

/// Bytes read from the socket at a time.
const RAW_READ: usize = 8 * 1024;

/// The reading half of a layered connection.
pub(crate) struct LayeredReader {
    socket: Arc<TcpStream>,
    shared: Arc<Shared>,
    /// Plaintext decoded but not yet handed to the caller.
    plain: BytesMut,
    closed: bool,
}

/// The writing half of a layered connection.
pub(crate) struct LayeredWriter {
    shared: Arc<Shared>,
}

/// Splits a connection whose handshakes are done into its two halves. `layers` must
/// still sit on a connected pipe: this switches it to buffered.
pub(crate) fn split(socket: Arc<TcpStream>, mut layers: Layers) -> (LayeredReader, LayeredWriter) {
    layers.pipe().buffer();
    let shared = Arc::new(Shared {
        layers: Mutex::new(layers),
        socket_writer: Mutex::new(Arc::clone(&socket)),
    });
    (
        LayeredReader {
            socket,
            shared: Arc::clone(&shared),
            plain: BytesMut::new(),
            closed: false,
        },
        LayeredWriter { shared },
    )
}

impl LayeredReader {
    pub(crate) fn socket(&self) -> &TcpStream {
        &self.socket
    }
}

impl Read for LayeredReader {
    /// Reads application bytes. Fails with [`io::ErrorKind::Interrupted`] when bytes
    /// arrived but carried none (a WebSocket ping, part of a TLS record), which
    /// `read_exact` and the like retry, and which lets a caller check its deadlines.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.plain.is_empty() {
                let n = buf.len().min(self.plain.len());
                buf[..n].copy_from_slice(&self.plain[..n]);
                self.plain.advance(n);
                if self.plain.is_empty() && self.plain.capacity() > 4 * RAW_READ {
                    // One large message must not pin its buffer for the life of the
                    // connection; ordinary ones reuse it.
                    self.plain = BytesMut::new();
                }
                return Ok(n);
            }
            if self.closed {
                return Ok(0);
            }
            // First what the layers already hold (bytes that came with the
            // handshake, or a TLS record split across two reads)...
            let mut layers = self.shared.layers.lock();
            let status = layers.read_available(&mut self.plain)?;
            // ...and whatever they want said back (a pong, a close reply).
            self.shared.send_outgoing(layers)?;
            if status == ReadStatus::Closed {
                self.closed = true;
                continue;
            }
            if !self.plain.is_empty() {
                continue;
            }
            // Then wait for the network, holding no lock.
            // Raw bytes only pass through on their way into the layers, so they are
            // read onto the stack: an idle connection keeps no buffer for them.
            let mut raw = [0u8; RAW_READ];
            let n = (&*self.socket).read(&mut raw)?;
            if n == 0 {
                return Ok(0);
            }
            let mut layers = self.shared.layers.lock();
            layers.pipe().feed(&raw[..n]);
            let status = layers.read_available(&mut self.plain)?;
            self.shared.send_outgoing(layers)?;
            if status == ReadStatus::Closed {
                self.closed = true;
            }
            if self.plain.is_empty() && !self.closed {
                // Bytes came, but none for the caller: a WebSocket ping, part of a
                // TLS record. Say so rather than wait again inside this call, so a
                // caller with a deadline looks at its clock: a peer that only ever
                // pings must not keep it waiting here forever.
                return Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "transport control data only; read again",
                ));
            }
        }
    }
}

impl LayeredWriter {
    /// Bounds how long a write to the socket may block.
    pub(crate) fn set_write_timeout(&self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        self.shared.socket_writer.lock().set_write_timeout(timeout)
    }

    /// Sends the layers' closing words (TLS close_notify, WebSocket close frame).
    pub(crate) fn close(&self) -> io::Result<()> {
        let mut layers = self.shared.layers.lock();
        layers.close();
        self.shared.send_outgoing(layers)
    }
}

impl Write for LayeredWriter {
    /// Writes `data` whole: over WebSocket, one call is one binary frame.
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut layers = self.shared.layers.lock();
        layers.write_all(data)?;
        self.shared.send_outgoing(layers)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        (&**self.shared.socket_writer.lock()).flush()
    }
}
