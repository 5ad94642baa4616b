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

pub mod client;
mod codec;
mod error;
pub mod frame;
mod legacy;
pub mod requests;
mod response_errors;
pub mod responses;
mod versions;

pub use codec::{decode_request, encode_api_versions_unsupported, encode_response};
pub use error::{DecodeError, EncodeError, ErrorCode};
pub use requests::*;
pub use responses::*;
pub use versions::{api_key, supported_apis, supported_range};
