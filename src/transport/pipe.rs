//! The byte stream that TLS and WebSocket layers sit on.
//!
//! A [`Pipe`] starts *connected*: reads and writes go straight to the TCP socket, so a
//! TLS or WebSocket handshake runs as ordinary blocking I/O. Each of those reads and
//! writes may take only the time left before the handshake's deadline, so a peer that
//! trickles its handshake a byte at a time runs out of time as surely as a silent one
//! (a plain read timeout would start again with every byte). Once the handshake is
//! done the pipe is switched to *buffered*: reads take bytes the reader thread has
//! put in, and return [`WouldBlock`](io::ErrorKind) when there are none; writes
//! collect in a buffer the caller takes and sends itself. The layers above never
//! notice the switch, but from then on they never touch the
//! socket: they have become pure functions from bytes to bytes, which is what lets two
//! threads share them (see the [module docs](super)).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};

/// A byte stream that is the socket during a handshake and a pair of buffers after.
#[derive(Debug)]
pub(crate) struct Pipe {
    socket: Option<Arc<TcpStream>>,
    /// When the handshake must be done; `None` for no bound.
    deadline: Option<Instant>,
    incoming: BytesMut,
    outgoing: Vec<u8>,
}

impl Pipe {
    /// A pipe connected to `socket`, for a handshake that must be done by `deadline`.
    /// It sets the socket's timeouts as it goes; the caller clears them afterwards.
    pub(crate) fn connected(socket: Arc<TcpStream>, deadline: Option<Instant>) -> Pipe {
        Pipe {
            socket: Some(socket),
            deadline,
            incoming: BytesMut::new(),
            outgoing: Vec::new(),
        }
    }

    /// Lets go of the socket: from now on reads and writes use the buffers.
    pub(crate) fn buffer(&mut self) {
        self.socket = None;
    }

    /// Bytes read from the socket by the caller, for the layers to read.
    pub(crate) fn feed(&mut self, raw: &[u8]) {
        self.incoming.extend_from_slice(raw);
    }

    /// Bytes the layers wrote, for the caller to send.
    pub(crate) fn take_outgoing(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.outgoing)
    }
}

/// The time left before `deadline` for the next socket operation of a handshake, or
/// an error of kind `WouldBlock` once it has passed: what a blocking socket reports
/// when its timeout fires, and what the TLS and WebSocket libraries turn into an
/// unfinished handshake.
fn time_left(deadline: Option<Instant>) -> io::Result<Option<Duration>> {
    let Some(deadline) = deadline else {
        return Ok(None);
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "the handshake's deadline has passed",
        ));
    }
    Ok(Some(left))
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(socket) = &self.socket {
            socket.set_read_timeout(time_left(self.deadline)?)?;
            return (&**socket).read(buf);
        }
        if self.incoming.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.incoming.len());
        buf[..n].copy_from_slice(&self.incoming[..n]);
        self.incoming.advance(n);
        Ok(n)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &self.socket {
            Some(socket) => {
                socket.set_write_timeout(time_left(self.deadline)?)?;
                (&**socket).write(buf)
            }
            None => {
                self.outgoing.extend_from_slice(buf);
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &self.socket {
            Some(socket) => (&**socket).flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffered_pipe_reads_what_was_fed_then_would_block() {
        let (socket, _peer) = tcp_pair();
        let mut pipe = Pipe::connected(Arc::new(socket), None);
        pipe.buffer();
        pipe.feed(b"abc");
        let mut buf = [0; 2];
        assert_eq!(pipe.read(&mut buf).unwrap(), 2);
        assert_eq!(pipe.read(&mut buf).unwrap(), 1);
        assert_eq!(
            pipe.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        pipe.write_all(b"xyz").unwrap();
        assert_eq!(pipe.take_outgoing(), b"xyz");
        assert!(pipe.take_outgoing().is_empty());
    }

    #[test]
    fn a_connected_pipe_gives_up_at_its_deadline_however_the_bytes_trickle() {
        let (socket, mut peer) = tcp_pair();
        let deadline = Instant::now() + Duration::from_millis(300);
        let mut pipe = Pipe::connected(Arc::new(socket), Some(deadline));
        let mut buf = [0; 1];
        let error = loop {
            // One byte at a time, each well within any per-read timeout.
            peer.write_all(b"x").unwrap();
            match pipe.read(&mut buf) {
                Ok(n) => {
                    assert_eq!(n, 1);
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(error) => break error,
            }
        };
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
        assert!(Instant::now() >= deadline);
    }

    fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }
}
