//! Kafka error codes as the broker uses them (defined once, in `weir-protocol`).

pub use weir_protocol::ErrorCode;
