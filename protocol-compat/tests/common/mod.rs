//! Test-side helpers: play the client. Requests are encoded and responses decoded with
//! kafka-protocol (its `client` feature is enabled for tests only), so every test checks
//! Weir's bytes against an independent implementation of the wire format.

#![allow(dead_code)] // each test binary uses a different subset

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader as KpHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use weir_protocol::{RequestHeader, Response};

pub const CLIENT_ID: &str = "weir-test";

/// Encodes a request frame (without the size prefix) the way a client would.
pub fn request_frame<T: Encodable>(
    api_key: i16,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Bytes {
    let key = ApiKey::try_from(api_key).expect("known api key");
    let mut header = KpHeader::default();
    header.request_api_key = api_key;
    header.request_api_version = version;
    header.correlation_id = correlation_id;
    header.client_id = Some(StrBytes::from_static_str(CLIENT_ID));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, key.request_header_version(version))
        .expect("encode header");
    body.encode(&mut buf, version).expect("encode body");
    buf.freeze()
}

/// Decodes a request frame with Weir and checks the header.
pub fn decode<T: Encodable>(api_key: i16, version: i16, body: &T) -> weir_protocol::Request {
    let frame = request_frame(api_key, version, 4242, body);
    let (header, request) = weir_protocol::decode_request(frame)
        .unwrap_or_else(|e| panic!("api {api_key} v{version}: {e}"));
    assert_eq!(header.api_key, api_key);
    assert_eq!(header.api_version, version);
    assert_eq!(header.correlation_id, 4242);
    assert_eq!(header.client_id.as_deref(), Some(CLIENT_ID));
    assert_eq!(request.api_key(), api_key);
    request
}

pub fn header(api_key: i16, version: i16) -> RequestHeader {
    RequestHeader {
        api_key,
        api_version: version,
        correlation_id: 77,
        client_id: Some(CLIENT_ID.into()),
    }
}

/// Encodes `response` with Weir and decodes it back with kafka-protocol, checking the
/// size prefix, the correlation id, the response header version (ApiVersions always v0,
/// flexible versions v1, others v0) and that the body is consumed exactly.
pub fn roundtrip<T: Decodable>(api_key: i16, version: i16, response: &Response) -> T {
    let bytes = weir_protocol::encode_response(&header(api_key, version), response)
        .unwrap_or_else(|e| panic!("encode api {api_key} v{version}: {e}"));
    let mut buf = bytes.clone();
    let size = buf.get_i32();
    assert_eq!(size as usize, buf.remaining(), "size prefix");
    assert_eq!(buf.get_i32(), 77, "correlation id");
    let key = ApiKey::try_from(api_key).expect("known api key");
    let expected_header_version = if api_key == 18 {
        0
    } else {
        key.response_header_version(version)
    };
    if expected_header_version >= 1 {
        // Empty tagged-field section: Weir writes no tagged fields.
        assert_eq!(buf.get_u8(), 0, "response header tagged fields");
    }
    let body = T::decode(&mut buf, version)
        .unwrap_or_else(|e| panic!("kafka-protocol decode api {api_key} v{version}: {e:#}"));
    assert_eq!(
        buf.remaining(),
        0,
        "api {api_key} v{version}: trailing bytes"
    );
    body
}

pub fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

pub fn versions(api_key: i16) -> std::ops::RangeInclusive<i16> {
    let (min, max) = weir_protocol::supported_range(api_key).expect("served api");
    min..=max
}

/// The served versions kafka-protocol 0.18 can encode and decode: it starts Produce at v3, Fetch
/// at v4 and ListOffsets at v1 (Kafka 4); Weir serves the older ones by hand, tested by hand, and
/// the other versions Kafka 4 removed by rewriting them (tested with [`kafka3`]).
pub fn crate_versions(api_key: i16) -> std::ops::RangeInclusive<i16> {
    let served = versions(api_key);
    let first = match api_key {
        0 => 3,
        1 => 4,
        2 => 1,
        // The other versions Kafka 4 removed are rewritten (see kafka3.rs).
        _ => served
            .clone()
            .find(|&v| weir_protocol::testing::client_encodes(api_key, v))
            .unwrap_or(*served.start()),
    };
    first.max(*served.start())..=*served.end()
}

// Shared with the fuzz target (fuzz/fuzz_targets/decode_request.rs includes the same file).
pub mod default_response;
pub mod kafka3;
