//! Weir's storage engine: durable per-partition logs of Kafka v2 record batches.
//!
//! The engine sees bytes and offsets only. A [`DataDir`] owns a directory of logs and the
//! writer thread that performs their writes and fsyncs (group commit); a [`Log`] is one
//! partition: segmented files with sparse memory-mapped indexes, crash recovery, retention and
//! offset bookkeeping. See `docs/storage.md` for the on-disk format and the rules.
//!
//! Module map: [`batch`] (v2 header parsing/validation), [`records`] (the records inside v2
//! batches), [`compression`] (bounded codecs), [`legacy`] (message formats v0/v1 and their
//! conversion to and from v2 batches), `config` (policies and options), `segment` and `index`
//! (files), `slice` (reads answered as a file range), [`txn_index`] (the aborted-transaction
//! index of a segment), `writer` (group commit), `log`, `datadir`, `checkpoint` (small metadata
//! files), `error`.

pub mod batch;
mod checkpoint;
pub mod compression;
mod config;
mod datadir;
mod error;
mod index;
pub mod legacy;
mod log;
pub mod records;
mod segment;
mod slice;
mod syncer;
pub mod txn_index;
mod writer;

/// A Kafka offset.
pub type Offset = i64;

pub use checkpoint::Durability;
pub use config::{
    AppendOptions, AppendResult, CompactionConfig, FsyncPolicy, LogConfig, ParseFsyncPolicyError,
};
pub use datadir::{DataDir, DataDirOptions, DiskSpace};
pub use error::StorageError;
pub use log::{CompactionStats, Log, PendingAppend};
pub use segment::Recovered;
pub use slice::RecordSlice;
pub use txn_index::AbortedTxn;
pub use writer::{FileSync, OsFileSync, WriteFailure, WriterStats};
