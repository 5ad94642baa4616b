//! Error types of the storage engine: [`StorageError`] for log and data-directory operations.
//!
//! Batch-format errors live in [`crate::batch::BatchError`] and are wrapped by
//! [`StorageError::InvalidBatch`].

use crate::batch::BatchError;
use crate::Offset;

/// Everything that can go wrong in a storage operation.
#[derive(thiserror::Error, Debug)]
pub enum StorageError {
    /// An operating-system I/O error (open, read, write, fsync, rename, ...).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A previous fsync (or write) of this log failed. The page cache state after a failed
    /// fsync is unknowable, so the log refuses every later append instead of retrying.
    #[error(
        "log is poisoned by an earlier failed write or fsync; reopen it after fixing the disk"
    )]
    Poisoned,
    /// The requested offset is outside `[log_start, log_end]`.
    #[error("offset {requested} out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        /// The offset the caller asked for.
        requested: Offset,
        /// The log start offset at the time of the request.
        log_start: Offset,
        /// The log end offset at the time of the request.
        log_end: Offset,
    },
    /// The appended bytes are not a valid sequence of v2 record batches.
    #[error("invalid record batch: {0}")]
    InvalidBatch(#[from] BatchError),
    /// A batch is larger than the configured maximum (`max.message.bytes`).
    #[error("record batch of {size} bytes exceeds the maximum of {max} bytes")]
    RecordTooLarge {
        /// Size of the offending batch (or of the whole append when it exceeds a segment's
        /// addressable size).
        size: usize,
        /// The limit that was exceeded.
        max: u32,
    },
    /// The log (or its data directory) has been shut down or removed.
    #[error("log or data directory is closed")]
    Closed,
    /// A log name that cannot be used as a directory name.
    #[error("invalid log name {0:?}")]
    InvalidLogName(String),
    /// Offset arithmetic would overflow `i64` (or a segment's 32-bit relative offsets).
    #[error("offset overflow")]
    OffsetOverflow,
    /// The data directory is already opened by another `DataDir` (in this or another process).
    #[error("data directory {0} is locked by another process or instance")]
    Locked(String),
    /// A replicated append does not continue the log: its first offset is below the log end
    /// offset, or its batches repeat or go back in offsets. (Skipping offsets is fine: a
    /// compacted leader log has gaps.)
    #[error("replicated batches at offset {got} do not continue the log at {expected}")]
    NotContiguous {
        /// Where the log ends (or where the next batch had to start).
        expected: Offset,
        /// Where the batch starts.
        got: Offset,
    },
    /// A truncation point that is not the start of a batch (or is outside the log).
    #[error("cannot truncate at offset {0}: not a batch boundary of the log")]
    NotABatchBoundary(Offset),
    /// An append contained no batch at all.
    #[error("append with no record batch")]
    EmptyAppend,
    /// An aborted-transaction index entry with inconsistent offsets or no producer id.
    #[error("inconsistent aborted-transaction index entry")]
    InvalidTxnIndexEntry,
}
