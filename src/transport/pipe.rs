//! The byte stream that TLS and WebSocket layers sit on.
//!
//! A [`Pipe`] starts *connected*: reads and writes go straight to the TCP socket, so a
//! TLS or WebSocket handshake runs as ordinary blocking I/O (bounded by the socket's
//! timeouts). Once the handshake is done the pipe is switched to *buffered*: reads take
//! bytes the reader thread has put in, and return [`WouldBlock`](io::ErrorKind) when
//! there are none; writes collect in a buffer the caller takes and sends itself. The
//! layers above never notice the switch, but from then on they never touch the
//! socket: they have become pure functions from bytes to bytes, which is what lets two
//! threads share them (see the [module docs](super)).

use std::io::{self, Read, Write};
use std::net::TcpStream;

use bytes::{Buf, BytesMut};

/// A byte stream that is the socket during a handshake and a pair of buffers after.
#[derive(Debug)]
pub(crate) struct Pipe {
    socket: Option<TcpStream>,
    incoming: BytesMut,
    outgoing: Vec<u8>,
}

impl Pipe {
    /// A pipe connected to `socket`, for the handshake.
    pub(crate) fn connected(socket: TcpStream) -> Pipe {
        Pipe {
            socket: Some(socket),
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

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(socket) = &mut self.socket {
            return socket.read(buf);
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
        match &mut self.socket {
            Some(socket) => socket.write(buf),
            None => {
                self.outgoing.extend_from_slice(buf);
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.socket {
            Some(socket) => socket.flush(),
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
        let mut pipe = Pipe::connected(socket);
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

    fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }
}
