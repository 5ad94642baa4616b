//! Fuzz target: arbitrary bytes as a request frame (without the size prefix).
//!
//! Properties: `decode_request` never panics or aborts (libFuzzer reports both, and its
//! RSS limit catches over-allocation); a request that decodes can always be answered,
//! i.e. a default response for it encodes at the request's version; an ApiVersions at an
//! unsupported version gets the KIP-511 answer.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use weir_protocol::*;

#[path = "../../protocol-compat/tests/common/default_response.rs"]
mod default_response;
use default_response::default_response;

fuzz_target!(|data: &[u8]| {
    match decode_request(Bytes::copy_from_slice(data)) {
        Ok((header, request)) => {
            let response = default_response(&request);
            if let Err(e) = encode_response(&header, &response) {
                panic!("a decoded request could not be answered: {e}");
            }
        }
        Err(DecodeError::UnsupportedVersion { header })
            if header.api_key == api_key::API_VERSIONS =>
        {
            let out = encode_api_versions_unsupported(&header);
            assert!(out.len() > 10);
        }
        Err(_) => {}
    }
});
