//! Per-log configuration ([`LogConfig`], [`FsyncPolicy`]) and the append request/response
//! types ([`AppendOptions`], [`AppendResult`]).

use std::fmt;
use std::str::FromStr;

use crate::Offset;

/// When appended data is forced to stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// No append is acknowledged before an fdatasync covers it. Concurrent appends share one
    /// fdatasync per file (group commit by the data directory's writer thread).
    Always,
    /// Appends are acknowledged once written to the page cache; dirty files are fdatasync'ed at
    /// least every `interval_ms` milliseconds.
    Interval {
        /// Maximum time data may stay un-synced.
        interval_ms: u64,
    },
    /// Appends are acknowledged once written to the page cache; the OS decides when to write
    /// back (Kafka's default: durability comes from replication).
    Never,
}

/// Error from parsing an [`FsyncPolicy`].
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("invalid fsync policy {0:?}: expected \"always\", \"never\" or \"interval:<ms>\"")]
pub struct ParseFsyncPolicyError(pub String);

impl FromStr for FsyncPolicy {
    type Err = ParseFsyncPolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        match t.as_str() {
            "always" => Ok(FsyncPolicy::Always),
            "never" => Ok(FsyncPolicy::Never),
            _ => t
                .strip_prefix("interval:")
                .and_then(|ms| ms.trim().parse::<u64>().ok())
                .map(|interval_ms| FsyncPolicy::Interval { interval_ms })
                .ok_or_else(|| ParseFsyncPolicyError(s.to_string())),
        }
    }
}

impl fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsyncPolicy::Always => write!(f, "always"),
            FsyncPolicy::Never => write!(f, "never"),
            FsyncPolicy::Interval { interval_ms } => write!(f, "interval:{interval_ms}"),
        }
    }
}

/// Configuration of one log (partition). Field names follow Kafka's topic configs.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// `segment.bytes`: roll to a new segment when the active one would exceed this size.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's first batch is older than this.
    pub segment_ms: Option<i64>,
    /// `retention.bytes`: delete oldest segments while the log is larger than this.
    pub retention_bytes: Option<u64>,
    /// `retention.ms`: delete segments whose newest timestamp is older than this.
    pub retention_ms: Option<i64>,
    /// `index.interval.bytes`: bytes between sparse index entries.
    pub index_interval_bytes: u32,
    /// `flush.messages`/`flush.ms` equivalent.
    pub fsync: FsyncPolicy,
    /// Segment files are grown in chunks of this many bytes with `fallocate`, so appends do not
    /// change the file size (and fdatasync does not commit inode metadata). 0 disables.
    pub preallocate_bytes: u64,
    /// `cleanup.policy` with `compact`: how [`crate::Log::compact`] cleans the log. `None`: the
    /// log is never compacted.
    pub compaction: Option<CompactionConfig>,
}

/// The topic configs of key-based compaction (Kafka's log cleaner), in Kafka's names.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CompactionConfig {
    /// `min.cleanable.dirty.ratio`: a log is cleaned once the part not yet cleaned is at least
    /// this share of the cleanable bytes.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: a segment whose newest record is younger than this is not
    /// cleaned (nor anything after it).
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a log whose oldest uncleaned segment is older than this is
    /// cleaned whatever its dirty ratio.
    pub max_compaction_lag_ms: i64,
    /// `delete.retention.ms`: how long a tombstone (a record with a null value), or the marker
    /// of a transaction the cleaner emptied, stays after the pass that first kept it (its
    /// delete horizon, KIP-534), so that consumers reading from the start see the deletion.
    pub delete_retention_ms: i64,
}

impl Default for CompactionConfig {
    /// Kafka's defaults.
    fn default() -> Self {
        CompactionConfig {
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: 24 * 60 * 60 * 1000,
        }
    }
}

/// Kafka's default `segment.ms` and `retention.ms`: 7 days.
pub const SEVEN_DAYS_MS: i64 = 7 * 24 * 60 * 60 * 1000;

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: Some(SEVEN_DAYS_MS),
            retention_bytes: None,
            retention_ms: Some(SEVEN_DAYS_MS),
            index_interval_bytes: 4096,
            fsync: FsyncPolicy::Never,
            preallocate_bytes: 16 << 20,
            compaction: None,
        }
    }
}

/// Largest segment the engine creates: positions in the index are 32-bit, as in Kafka.
pub(crate) const MAX_SEGMENT_BYTES: u64 = i32::MAX as u64;

impl LogConfig {
    /// `segment_bytes` clamped to what the on-disk format can address.
    pub(crate) fn effective_segment_bytes(&self) -> u64 {
        self.segment_bytes.clamp(1, MAX_SEGMENT_BYTES)
    }

    /// The age at which the active segment rolls: `segment.ms`, and for a compacted log at most
    /// `max.compaction.lag.ms` (KIP-354, Kafka's `LogConfig.maxSegmentMs`), since the cleaner
    /// never touches the active segment: a record in it could otherwise wait past that lag.
    pub(crate) fn max_segment_ms(&self) -> Option<i64> {
        let lag = self
            .compaction
            .map(|c| c.max_compaction_lag_ms)
            .filter(|&ms| ms > 0 && ms < i64::MAX);
        match (self.segment_ms, lag) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Per-append options.
#[derive(Clone, Debug, Default)]
pub struct AppendOptions {
    /// If set, the topic uses LogAppendTime: every batch is stamped with this time (attribute
    /// bit 0x08, base and max timestamp) and its CRC recomputed.
    pub log_append_time_ms: Option<i64>,
    /// `max.message.bytes`: reject any batch larger than this with
    /// [`crate::StorageError::RecordTooLarge`].
    pub max_batch_bytes: Option<u32>,
    /// If set, every batch's partition leader epoch field is set to this (the leader's epoch;
    /// the field is outside the CRC, so the producer's bytes stay valid).
    pub partition_leader_epoch: Option<i32>,
}

/// What an append assigned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendResult {
    /// Offset of the first record of the first batch.
    pub base_offset: Offset,
    /// Offset of the last record of the last batch.
    pub last_offset: Offset,
    /// The LogAppendTime stamped on the batches, if requested.
    pub log_append_time_ms: Option<i64>,
    /// The log start offset at the time of the append.
    pub log_start_offset: Offset,
    /// Number of batches appended.
    pub batches: u32,
    /// The partition leader epoch stamped on the batches (`AppendOptions::partition_leader_epoch`),
    /// if one was: whoever waits for the append to be replicated checks it is still that epoch's.
    pub partition_leader_epoch: Option<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsync_policy_parse_display() {
        for p in [
            FsyncPolicy::Always,
            FsyncPolicy::Never,
            FsyncPolicy::Interval { interval_ms: 250 },
        ] {
            assert_eq!(p.to_string().parse::<FsyncPolicy>(), Ok(p));
        }
        assert_eq!("ALWAYS".parse(), Ok(FsyncPolicy::Always));
        assert!("interval:".parse::<FsyncPolicy>().is_err());
        assert!("sometimes".parse::<FsyncPolicy>().is_err());
    }
}
