//! The record-level rules of Kafka's log validator that Weir applies on produce, and the
//! conversions between the legacy message formats and the v2 batches the log stores.
//!
//! Batches are stored as sent, so nothing here runs on the common path: records are only read
//! (decompressing if needed) for compacted topics, whose records must have keys, and for message
//! sets of the legacy formats (Produce v0-2), which are up-converted. Fetch v0-3 is served by
//! down-converting (see [`down_convert`]). Rejections carry KIP-467 per-record errors.

use weir_protocol::responses::ProduceRecordError;
use weir_protocol::ErrorCode;
use weir_storage::batch::BatchHeader;
use weir_storage::compression::CompressionError;
use weir_storage::legacy::{self, LegacyError};
use weir_storage::records::{self, RecordError};

/// The most a batch's records may take once decompressed when the broker has to read them. A
/// batch expanding past it (a "zip bomb") is refused, never buffered.
pub const MAX_DECOMPRESSED_BATCH_BYTES: usize = 64 << 20;

/// Why a partition's records were refused, as the Produce response says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub error_code: ErrorCode,
    pub message: String,
    /// KIP-467: which records of the failing batch were refused, and why.
    pub record_errors: Vec<ProduceRecordError>,
}

impl Rejection {
    fn plain(error_code: ErrorCode, message: String) -> Self {
        Rejection {
            error_code,
            message,
            record_errors: Vec::new(),
        }
    }
}

fn compression_rejection(e: &CompressionError) -> Rejection {
    let code = match e {
        CompressionError::TooLarge { .. } => ErrorCode::MESSAGE_TOO_LARGE,
        _ => ErrorCode::CORRUPT_MESSAGE,
    };
    Rejection::plain(code, e.to_string())
}

fn record_rejection(e: &RecordError) -> Rejection {
    match e {
        RecordError::Compression(c) => compression_rejection(c),
        other => Rejection::plain(ErrorCode::CORRUPT_MESSAGE, other.to_string()),
    }
}

fn legacy_rejection(e: &LegacyError) -> Rejection {
    match e {
        LegacyError::Corrupt(_) => Rejection::plain(ErrorCode::CORRUPT_MESSAGE, e.to_string()),
        LegacyError::Invalid(_) => Rejection::plain(ErrorCode::INVALID_RECORD, e.to_string()),
        LegacyError::UnsupportedCodec(_) => {
            Rejection::plain(ErrorCode::UNSUPPORTED_COMPRESSION_TYPE, e.to_string())
        }
        LegacyError::Compression(c) => compression_rejection(c),
        LegacyError::Records(r) => record_rejection(r),
    }
}

/// The rejection for keyless records of a compacted topic: INVALID_RECORD with one record error
/// per keyless record (their indexes within the batch), as Kafka's log validator answers.
fn keyless(partition: &str, batch_indexes: &[i32]) -> Option<Rejection> {
    let first = *batch_indexes.first()?;
    let message = format!(
        "Compacted topic cannot accept message without key in topic partition {partition}."
    );
    Some(Rejection {
        error_code: ErrorCode::INVALID_RECORD,
        message: format!(
            "{} record(s) of the batch rejected, the first at batch index {first}: {message}",
            batch_indexes.len()
        ),
        record_errors: batch_indexes
            .iter()
            .map(|&batch_index| ProduceRecordError {
                batch_index,
                message: Some(message.clone()),
            })
            .collect(),
    })
}

/// Checks that every record of the validated v2 `batches` (whose `headers` are given) has a key,
/// for a compacted topic named `partition` (`topic-index`). Stops at the first batch with keyless
/// records, as Kafka does.
pub fn check_keys(
    batches: &[u8],
    headers: &[BatchHeader],
    partition: &str,
) -> Result<(), Rejection> {
    let mut position = 0usize;
    for h in headers {
        let batch = batches
            .get(position..position + h.total_len())
            .ok_or_else(|| {
                Rejection::plain(ErrorCode::CORRUPT_MESSAGE, "batch truncated".into())
            })?;
        position += h.total_len();
        let mut index = 0i32;
        let mut missing = Vec::new();
        records::visit_records(batch, MAX_DECOMPRESSED_BATCH_BYTES, |r| {
            if r.key.is_none() {
                missing.push(index);
            }
            index = index.saturating_add(1);
        })
        .map_err(|e| record_rejection(&e))?;
        if let Some(rejection) = keyless(partition, &missing) {
            return Err(rejection);
        }
    }
    Ok(())
}

/// Up-converts a legacy message set (magic 0/1) to one v2 batch, as a Kafka 3.x broker does on
/// append. With `compacted_partition` (`topic-index` of a compacted topic), every record must
/// have a key.
pub fn up_convert(
    message_set: &[u8],
    compacted_partition: Option<String>,
) -> Result<Vec<u8>, Rejection> {
    let set = legacy::parse_message_set(message_set, MAX_DECOMPRESSED_BATCH_BYTES)
        .map_err(|e| legacy_rejection(&e))?;
    if let Some(partition) = compacted_partition {
        let missing: Vec<i32> = set
            .records
            .iter()
            .enumerate()
            .filter(|(_, r)| r.key.is_none())
            .map(|(i, _)| i32::try_from(i).unwrap_or(i32::MAX))
            .collect();
        if let Some(rejection) = keyless(&partition, &missing) {
            return Err(rejection);
        }
    }
    legacy::to_v2_batch(&set).map_err(|e| compression_rejection(&e))
}

/// Why stored batches could not be down-converted for an old fetcher.
pub fn down_convert_error_code(e: &LegacyError) -> ErrorCode {
    match e {
        // Kafka answers a Fetch < v10 that would need zstd with UNSUPPORTED_COMPRESSION_TYPE.
        LegacyError::UnsupportedCodec(_) => ErrorCode::UNSUPPORTED_COMPRESSION_TYPE,
        _ => ErrorCode::CORRUPT_MESSAGE,
    }
}

/// Converts stored v2 batches (a log read) to message format `to_magic` (0 or 1) for a fetch
/// from `fetch_offset`, at most `max_bytes` but at least one message.
pub fn down_convert(
    data: &[u8],
    to_magic: i8,
    fetch_offset: i64,
    max_bytes: usize,
) -> Result<Vec<u8>, LegacyError> {
    legacy::down_convert(
        data,
        to_magic,
        fetch_offset,
        max_bytes,
        MAX_DECOMPRESSED_BATCH_BYTES,
    )
}
