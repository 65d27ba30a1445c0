//! The four transports, end to end over loopback: handshakes, both directions at
//! once, refusals and stalls.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use wren::transport::{Acceptor, Connection, Dialer, Error, Kind, ServerTls};

#[path = "common/certs.rs"]
mod certs;

use certs::make as certificates;

/// Accepts one connection with `acceptor` on a thread; returns the dialer's side and
/// the acceptor's side.
fn pair(acceptor: Acceptor, dial: impl FnOnce(u16) -> Dialer) -> (Connection, Connection) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        acceptor.accept(socket)
    });
    let client = dial(port).connect().expect("client handshake");
    let server = server.join().unwrap().expect("server handshake");
    (client, server)
}

fn read_exact_within(reader: &mut wren::transport::Reader, len: usize) -> Vec<u8> {
    reader
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut data = vec![0; len];
    reader.read_exact(&mut data).expect("data within 10 s");
    data
}

/// The property the design exists for: while one side's reader is blocked waiting
/// for bytes that never come, its writer still gets through at once, and large
/// transfers in both directions at once do not deadlock.
fn both_directions_work_while_a_reader_is_blocked(client: Connection, server: Connection) {
    let Connection {
        reader: mut server_reader,
        writer: mut server_writer,
        ..
    } = server;
    let Connection {
        reader: mut client_reader,
        writer: mut client_writer,
        ..
    } = client;

    // The server's reader blocks: the client sends nothing yet.
    let (got, received) = mpsc::channel();
    let blocked_reader = thread::spawn(move || {
        let data = read_exact_within(&mut server_reader, 3);
        got.send(data).unwrap();
        server_reader
    });
    // Meanwhile the server writes, and the client receives it.
    server_writer.write_all(b"hello").unwrap();
    assert_eq!(read_exact_within(&mut client_reader, 5), b"hello");
    client_writer.write_all(b"abc").unwrap();
    assert_eq!(
        received.recv_timeout(Duration::from_secs(10)).unwrap(),
        b"abc"
    );
    let mut server_reader = blocked_reader.join().unwrap();

    // 4 MiB each way at the same time, in 64 KiB writes.
    let chunk: Vec<u8> = (0..65_536u32).map(|i| (i % 251) as u8).collect();
    let send = |mut writer: wren::transport::Writer, chunk: Vec<u8>| {
        thread::spawn(move || {
            for _ in 0..64 {
                writer.write_all(&chunk).unwrap();
            }
            writer
        })
    };
    let client_sender = send(client_writer, chunk.clone());
    let server_sender = send(server_writer, chunk.clone());
    let expected: Vec<u8> = chunk.repeat(64);
    let client_received = thread::spawn(move || read_exact_within(&mut client_reader, 64 * 65_536));
    assert!(read_exact_within(&mut server_reader, 64 * 65_536) == expected);
    assert!(client_received.join().unwrap() == expected);
    client_sender.join().unwrap();
    server_sender.join().unwrap();
}

#[test]
fn plain_tcp_carries_bytes_both_ways() {
    let (client, server) = pair(Acceptor::tcp(), |port| {
        Dialer::new(Kind::Tcp, "127.0.0.1", port)
    });
    assert_eq!(server.kind, Kind::Tcp);
    both_directions_work_while_a_reader_is_blocked(client, server);
}

#[test]
fn tls_carries_bytes_both_ways_without_polling() {
    let certs = certificates();
    let tls = ServerTls {
        certfile: certs.cert.clone(),
        keyfile: certs.key.clone(),
    };
    let acceptor = Acceptor::tcp().with_tls(tls.acceptor().unwrap());
    let (client, server) = pair(acceptor, |port| {
        let mut dialer = Dialer::new(Kind::Tls, "localhost", port);
        dialer.tls.ca_file = Some(certs.ca.clone());
        dialer
    });
    assert_eq!(server.kind, Kind::Tls);
    both_directions_work_while_a_reader_is_blocked(client, server);
}

#[test]
fn websocket_carries_bytes_both_ways() {
    let (client, server) = pair(Acceptor::websocket().path("/mqtt"), |port| {
        Dialer::new(Kind::WebSocket, "127.0.0.1", port)
    });
    assert_eq!(server.kind, Kind::WebSocket);
    both_directions_work_while_a_reader_is_blocked(client, server);
}

#[test]
fn secure_websocket_carries_bytes_both_ways() {
    let certs = certificates();
    let tls = ServerTls {
        certfile: certs.cert.clone(),
        keyfile: certs.key.clone(),
    };
    let acceptor = Acceptor::websocket()
        .path("/mqtt")
        .with_tls(tls.acceptor().unwrap());
    let (client, server) = pair(acceptor, |port| {
        let mut dialer = Dialer::new(Kind::SecureWebSocket, "localhost", port);
        dialer.tls.ca_file = Some(certs.ca.clone());
        dialer
    });
    assert_eq!(server.kind, Kind::SecureWebSocket);
    both_directions_work_while_a_reader_is_blocked(client, server);
}

#[test]
fn a_prepared_tls_dialer_reuses_its_connector_for_every_connection() {
    let certs = certificates();
    let tls = ServerTls {
        certfile: certs.cert.clone(),
        keyfile: certs.key.clone(),
    };
    let mut prepared = None;
    for _ in 0..3 {
        let acceptor = Acceptor::tcp().with_tls(tls.acceptor().unwrap());
        let (client, server) = pair(acceptor, |port| {
            let dialer = prepared.get_or_insert_with(|| {
                let mut dialer = Dialer::new(Kind::Tls, "localhost", port);
                dialer.tls.ca_file = Some(certs.ca.clone());
                dialer.prepare_tls().expect("the CA file is readable");
                // Read once: later connections must not need it.
                dialer.tls.ca_file = Some("/nonexistent/ca.pem".into());
                dialer
            });
            dialer.port = port;
            dialer.clone()
        });
        assert_eq!(server.kind, Kind::Tls);
        both_directions_work_while_a_reader_is_blocked(client, server);
    }
}

#[test]
fn an_untrusted_certificate_is_refused_by_the_client() {
    let certs = certificates();
    let other = certificates();
    let tls = ServerTls {
        certfile: certs.cert.clone(),
        keyfile: certs.key.clone(),
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = Acceptor::tcp().with_tls(tls.acceptor().unwrap());
    let server = thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        acceptor.accept(socket).is_err()
    });
    let mut dialer = Dialer::new(Kind::Tls, "localhost", port);
    dialer.tls.ca_file = Some(other.ca.clone());
    let error = dialer.connect().unwrap_err();
    assert!(matches!(error, Error::TlsHandshake(_)), "{error}");
    assert!(server.join().unwrap());

    // --insecure lets it through.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = Acceptor::tcp().with_tls(tls.acceptor().unwrap());
    let server = thread::spawn(move || acceptor.accept(listener.accept().unwrap().0).is_ok());
    let mut dialer = Dialer::new(Kind::Tls, "localhost", port);
    dialer.tls.insecure = true;
    assert!(dialer.connect().is_ok());
    assert!(server.join().unwrap());
}

/// Sends `request` to a WebSocket acceptor and returns the HTTP status line it
/// answers with.
fn http_status_for(request: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let acceptor = Acceptor::websocket().path("/mqtt");
    let server = thread::spawn(move || acceptor.accept(listener.accept().unwrap().0));
    let mut socket = TcpStream::connect(address).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    socket.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    let _ = socket.read_to_end(&mut response);
    assert!(server.join().unwrap().is_err());
    let text = String::from_utf8_lossy(&response).into_owned();
    text.lines().next().unwrap_or_default().to_string()
}

const UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

#[test]
fn a_websocket_upgrade_without_the_mqtt_subprotocol_gets_400() {
    let request = format!("GET /mqtt HTTP/1.1\r\nHost: x\r\n{UPGRADE}\r\n");
    assert!(http_status_for(&request).starts_with("HTTP/1.1 400"));
}

#[test]
fn a_websocket_upgrade_on_another_path_gets_404() {
    let request =
        format!("GET /other HTTP/1.1\r\nHost: x\r\n{UPGRADE}Sec-WebSocket-Protocol: mqtt\r\n\r\n");
    assert!(http_status_for(&request).starts_with("HTTP/1.1 404"));
}

#[test]
fn a_plain_http_request_gets_an_http_error_not_a_hang() {
    let status = http_status_for("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(status.starts_with("HTTP/1.1 4"), "status line: {status:?}");
}

#[test]
fn an_old_mqttv31_subprotocol_is_accepted() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let acceptor = Acceptor::websocket().path("/mqtt");
    let server = thread::spawn(move || acceptor.accept(listener.accept().unwrap().0));
    let mut socket = TcpStream::connect(address).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!(
        "GET /mqtt HTTP/1.1\r\nHost: x\r\n{UPGRADE}Sec-WebSocket-Protocol: mqttv3.1\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).unwrap();
    let mut response = [0; 512];
    let n = socket.read(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response[..n]);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("sec-websocket-protocol: mqttv3.1"),
        "{text}"
    );
    assert!(server.join().unwrap().is_ok());
}

#[test]
fn a_stalled_tls_handshake_times_out() {
    let certs = certificates();
    let tls = ServerTls {
        certfile: certs.cert.clone(),
        keyfile: certs.key.clone(),
    };
    let acceptor = Acceptor::tcp()
        .with_tls(tls.acceptor().unwrap())
        .handshake_timeout(Duration::from_millis(300));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let started = Instant::now();
        let result = acceptor.accept(listener.accept().unwrap().0);
        (result, started.elapsed())
    });
    // Connect and say nothing.
    let _silent = TcpStream::connect(address).unwrap();
    let (result, elapsed) = server.join().unwrap();
    assert!(
        matches!(result, Err(Error::HandshakeTimeout(_))),
        "{:?}",
        result.err()
    );
    assert!(elapsed < Duration::from_secs(30));
}

#[test]
fn a_stalled_websocket_upgrade_times_out() {
    let acceptor = Acceptor::websocket()
        .path("/mqtt")
        .handshake_timeout(Duration::from_millis(300));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let server = thread::spawn(move || acceptor.accept(listener.accept().unwrap().0));
    let mut silent = TcpStream::connect(address).unwrap();
    silent.write_all(b"GET /mqtt HTTP/1.1\r\n").unwrap(); // and then nothing
    let result = server.join().unwrap();
    assert!(
        matches!(result, Err(Error::HandshakeTimeout(_))),
        "{:?}",
        result.err()
    );
}

#[test]
fn closing_ends_a_blocked_read_on_the_other_side() {
    let (client, server) = pair(Acceptor::websocket().path("/mqtt"), |port| {
        Dialer::new(Kind::WebSocket, "127.0.0.1", port)
    });
    let Connection {
        reader: mut server_reader,
        ..
    } = server;
    let reading = thread::spawn(move || {
        server_reader
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0; 16];
        server_reader.read(&mut buf)
    });
    let Connection {
        mut writer, closer, ..
    } = client;
    writer.close_gracefully();
    closer.close();
    assert_eq!(reading.join().unwrap().unwrap(), 0);
}
