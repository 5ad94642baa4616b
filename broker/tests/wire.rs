//! Hostile and odd input on the Kafka listener, over a real socket to an in-process broker: every bad
//! frame closes that connection, and the broker keeps serving others.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use weir_broker::config::BrokerConfig;

use crate::common::inproc::InProcess;

fn start() -> InProcess {
    start_with(|_| {})
}

fn start_with(tweak: impl FnOnce(&mut BrokerConfig)) -> InProcess {
    InProcess::start_temp(|config| {
        config.max_request_bytes = 1 << 20;
        tweak(config);
    })
}

fn connect(addr: std::net::SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s
}

/// An ApiVersions request (header v1, body empty for v0-v2).
fn api_versions_request(version: i16, correlation_id: i32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&18i16.to_be_bytes());
    body.extend_from_slice(&version.to_be_bytes());
    body.extend_from_slice(&correlation_id.to_be_bytes());
    body.extend_from_slice(&4i16.to_be_bytes());
    body.extend_from_slice(b"test");
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

/// Reads one response frame; None if the broker closed the connection.
fn read_response(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let len = usize::try_from(i32::from_be_bytes(len)).expect("non-negative length");
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

fn is_closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1];
    matches!(s.read(&mut buf), Ok(0) | Err(_))
}

/// ApiVersions v0 answer: correlation id, then error code.
fn answers_api_versions(addr: std::net::SocketAddr) -> bool {
    let mut s = connect(addr);
    s.write_all(&api_versions_request(0, 42)).expect("write");
    let Some(r) = read_response(&mut s) else {
        return false;
    };
    r.len() > 6 && r[0..4] == 42i32.to_be_bytes() && r[4..6] == [0, 0]
}

#[test]
fn hostile_frames_close_the_connection_and_the_broker_keeps_serving() {
    let broker = start();
    assert!(answers_api_versions(broker.addr));

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("negative frame length", (-5i32).to_be_bytes().to_vec()),
        (
            "frame larger than max request size",
            (64i32 << 20).to_be_bytes().to_vec(),
        ),
        (
            "header shorter than 8 bytes",
            [3i32.to_be_bytes().to_vec(), vec![0, 3, 0]].concat(),
        ),
        ("unknown api key", {
            let mut f = api_versions_request(0, 1);
            f[4..6].copy_from_slice(&999i16.to_be_bytes());
            f
        }),
        // Metadata v1 whose topic array claims 2^31-1 entries in a 4-byte body.
        ("huge array count", {
            let mut body = Vec::new();
            body.extend_from_slice(&3i16.to_be_bytes());
            body.extend_from_slice(&1i16.to_be_bytes());
            body.extend_from_slice(&7i32.to_be_bytes());
            body.extend_from_slice(&(-1i16).to_be_bytes());
            body.extend_from_slice(&i32::MAX.to_be_bytes());
            [(body.len() as i32).to_be_bytes().to_vec(), body].concat()
        }),
        ("client id longer than the frame", {
            let mut body = Vec::new();
            body.extend_from_slice(&18i16.to_be_bytes());
            body.extend_from_slice(&0i16.to_be_bytes());
            body.extend_from_slice(&7i32.to_be_bytes());
            body.extend_from_slice(&i16::MAX.to_be_bytes());
            [(body.len() as i32).to_be_bytes().to_vec(), body].concat()
        }),
    ];
    for (what, bytes) in cases {
        let mut s = connect(broker.addr);
        s.write_all(&bytes).expect("write");
        assert!(is_closed(&mut s), "{what}: connection should be closed");
        assert!(
            answers_api_versions(broker.addr),
            "{what}: broker stopped answering"
        );
    }
}

#[test]
fn api_versions_at_an_unknown_version_gets_a_v0_answer_with_unsupported_version() {
    let broker = start();
    let mut s = connect(broker.addr);
    s.write_all(&api_versions_request(99, 5)).expect("write");
    let r = read_response(&mut s).expect("an answer, not a closed connection");
    assert_eq!(r[0..4], 5i32.to_be_bytes());
    assert_eq!(i16::from_be_bytes([r[4], r[5]]), 35, "UNSUPPORTED_VERSION");
    let count = i32::from_be_bytes([r[6], r[7], r[8], r[9]]);
    assert!(
        count > 20,
        "the answer lists the APIs we serve, got {count}"
    );
    // The connection stays usable for the client's retry at a version we serve.
    s.write_all(&api_versions_request(0, 6)).expect("write");
    let r = read_response(&mut s).expect("second answer");
    assert_eq!(r[0..4], 6i32.to_be_bytes());
    assert_eq!(r[4..6], [0, 0]);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let broker = start();
    let mut s = connect(broker.addr);
    let mut batch = Vec::new();
    for id in 0..50 {
        batch.extend_from_slice(&api_versions_request(0, id));
    }
    s.write_all(&batch).expect("write");
    for id in 0..50i32 {
        let r = read_response(&mut s).expect("response");
        assert_eq!(r[0..4], id.to_be_bytes(), "response {id} out of order");
    }
}

#[test]
fn a_request_memory_budget_smaller_than_the_pipeline_still_answers_everything() {
    // Room for one request at a time: the reader must wait for each answer, not deadlock.
    let broker = start_with(|c| c.max_queued_request_bytes = 1024);
    let mut clients: Vec<TcpStream> = (0..3).map(|_| connect(broker.addr)).collect();
    for s in &mut clients {
        let mut batch = Vec::new();
        for id in 0..20 {
            batch.extend_from_slice(&api_versions_request(0, id));
        }
        s.write_all(&batch).expect("write");
    }
    for s in &mut clients {
        for id in 0..20i32 {
            let r = read_response(s).expect("response");
            assert_eq!(r[0..4], id.to_be_bytes());
        }
    }
}
