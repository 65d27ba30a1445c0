//! Ten thousand clients on a stock Linux: `wren-broker` accepts them (its default
//! `max-connections`), serves them all, and holds one thread for each once they are
//! quiet.
//!
//! Every connection has a reader thread, and a writer thread only while it has
//! something to write, from a pool capped so that the default `vm.max_map_count`
//! (65,530 mappings, four per thread) holds a reader for every connection and every
//! writer that may run. Here all the subscribers receive a message at once, so
//! most wait their turn for a writer: each must get it all the same.
//!
//! The broker runs as its own process (each side needs 10,000 sockets). Where the
//! test's own file limit cannot hold that many, it says so and uses what it can.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::raw::{connect_packet, encode, publish_packet, subscribe_packet};
use common::{free_port, poll};
use wren::protocol::QoS;

const CLIENTS: usize = 10_000;

/// How many sockets this process may open, raised to its hard limit first.
fn file_limit() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the struct given, nothing else.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
}

/// The threads of process `pid`.
fn threads_of(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Reads exactly `n` bytes.
fn read_bytes(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    stream.read_exact(&mut bytes).expect("the broker's answer");
    bytes
}

#[test]
fn ten_thousand_clients_are_served_and_hold_one_thread_each_when_quiet() {
    let clients = CLIENTS.min(file_limit().saturating_sub(200));
    if clients < CLIENTS {
        eprintln!(
            "This process may open {} files: testing {clients} clients instead of {CLIENTS}.",
            clients + 200
        );
    }
    let port = free_port();
    let mut broker = Command::new(env!("CARGO_BIN_EXE_wren-broker"))
        .args(["-p", &port.to_string()])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("wren-broker is built with the tests");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    assert!(
        poll(Duration::from_secs(10), || TcpStream::connect(addr).is_ok()),
        "wren-broker did not start"
    );

    // Connect and subscribe, each in one write; the answers are read afterwards.
    // The last of the clients is the publisher.
    let subscribers = clients - 1;
    let mut streams = Vec::with_capacity(subscribers);
    for n in 0..subscribers {
        let mut stream = TcpStream::connect(addr).expect("connection accepted");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut hello = encode(connect_packet(&format!("c{n}"), true, 0));
        hello.extend(encode(subscribe_packet(
            1,
            &[("everyone", QoS::AtMostOnce)],
        )));
        stream.write_all(&hello).unwrap();
        streams.push(stream);
    }
    for stream in &mut streams {
        // CONNACK 0, then SUBACK granting QoS 0.
        assert_eq!(read_bytes(stream, 4), [0x20, 0x02, 0x00, 0x00]);
        assert_eq!(read_bytes(stream, 5), [0x90, 0x03, 0x00, 0x01, 0x00]);
    }

    // Quiet: the writers end, and each connection holds its reader alone.
    let pid = broker.id();
    let settled = poll(Duration::from_secs(30), || {
        threads_of(pid) <= subscribers + 64
    });
    let threads = threads_of(pid);
    assert!(
        settled,
        "{threads} threads for {subscribers} quiet connections (a reader each, and a few more)"
    );

    // One message to everyone at once: every subscriber gets it.
    let mut publisher = TcpStream::connect(addr).unwrap();
    publisher
        .write_all(&encode(connect_packet("publisher", true, 0)))
        .unwrap();
    publisher
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    assert_eq!(read_bytes(&mut publisher, 4), [0x20, 0x02, 0x00, 0x00]);
    let message = encode(publish_packet(
        "everyone",
        b"hello",
        QoS::AtMostOnce,
        false,
        0,
    ));
    publisher.write_all(&message).unwrap();
    for stream in &mut streams {
        assert_eq!(read_bytes(stream, message.len()), message);
    }

    let _ = broker.kill();
    let _ = broker.wait();
}
