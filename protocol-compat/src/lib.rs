//! Weir's Kafka wire protocol layer.
//!
//! This crate is the only one in Weir that names `kafka-protocol` types. It turns request
//! frames into Weir-owned, version-agnostic [`Request`] values and Weir-owned
//! [`Response`] values into complete response frames. It is pure: no IO, no async, no
//! sockets.
//!
//! The flow for one request:
//!
//! 1. Read 4 bytes and validate them with [`frame::frame_len`] (bounded by
//!    [`frame::DEFAULT_MAX_REQUEST_BYTES`], or
//!    [`frame::MAX_UNAUTHENTICATED_REQUEST_BYTES`] before authentication).
//! 2. Read that many bytes and call [`decode_request`].
//! 3. Handle the [`Request`], build a [`Response`], and write the bytes returned by
//!    [`encode_response`] (they include the size prefix and the right response header).
//!
//! On [`DecodeError::UnsupportedVersion`] for ApiVersions, answer with
//! [`encode_api_versions_unsupported`] (KIP-511); on any other error close the
//! connection.
//!
//! Hostile input never panics or over-allocates: lengths are checked here before the
//! vendored (and patched, see `vendor/kafka-protocol/VENDORED.md`) decoder runs, and that
//! decoder bounds every wire count by the bytes remaining. Record batches are never
//! decoded or decompressed here; they pass through as [`bytes::Bytes`].

mod apis;
pub mod client;
mod codec;
mod error;
pub mod frame;
mod legacy;
mod mirror;
mod parts;
mod removed_versions;
pub mod requests;
mod response_errors;
pub mod responses;
pub mod sasl;
pub mod transactions;
mod versions;

pub use apis::{api_key, api_name};
pub use codec::{
    decode_request, encode_api_versions_unsupported, encode_response, encode_response_parts,
};
pub use error::{DecodeError, EncodeError, ErrorCode};
pub use mirror::{WeirTag, WEIR_TAG};
pub use parts::{ResponsePart, ResponseParts};
pub use requests::*;
pub use responses::*;
pub use transactions::*;
pub use versions::{advertised_apis, supported_apis, supported_range};

/// Helpers for tests and fuzzing: not part of the API.
#[doc(hidden)]
pub mod testing {
    use bytes::Bytes;

    use crate::{Request, Response};

    /// A request of `api_key` with every field set (every list with two elements), for the
    /// APIs the table in `apis` mirrors; `None` for the hand-written ones.
    pub fn sample_request(api_key: i16) -> Option<Request> {
        crate::apis::sample_request(api_key)
    }

    /// Whether Weir's client side can encode requests of `api_key` at `version`: not the
    /// versions Kafka 4 removed that the broker side still serves by rewriting them (only old
    /// clients send those; see `removed_versions`).
    pub fn client_encodes(api_key: i16, version: i16) -> bool {
        crate::removed_versions::served_as(api_key, version).is_none()
    }

    /// A response of `api_key` with every field set, like [`sample_request`].
    pub fn sample_response(api_key: i16) -> Option<Response> {
        crate::apis::sample_response(api_key)
    }

    /// A request frame (without the size prefix) of `api_key` at `version` with every field
    /// set, for the APIs the table in `apis` mirrors; `None` for the hand-written ones. The
    /// hostile-input tests and the fuzz corpus use it, so a new API is covered without a
    /// hand-written seed.
    pub fn sample_request_frame(
        api_key: i16,
        version: i16,
    ) -> Option<Result<Bytes, crate::client::ClientError>> {
        let request = sample_request(api_key)?;
        Some(
            crate::client::encode_request_at(7, "weir-sample", &request, version)
                .map(|frame| frame.slice(4..)),
        )
    }
}
