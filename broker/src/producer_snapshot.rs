//! Producer-state snapshots: the producer state of one partition (sequences, epochs, open
//! transactions and their first offsets, coordinator epochs) written beside its log, so that
//! start-up reads only the log's tail instead of every batch header.
//!
//! A snapshot taken at offset X is the state after every batch below X. It is written when the
//! log rolls (at the log end as it is then) and at a clean shutdown (at the log end, so the next
//! start reads nothing), named `<X:020>.producer-snapshot` like a segment's files, replaced
//! atomically (temp file and rename, fsynced unless the log's fsync policy is `never`) and
//! checksummed (CRC32C). A snapshot is used only when the log still holds X: X above the log end
//! (a torn tail cut by recovery, a follower's suffix truncated by Raft) or below the log start
//! (retention, DeleteRecords, a follower starting over) makes it unusable, and it is deleted.
//! Anything unreadable (bad checksum, bad length, a different offset inside) falls back to the
//! next older snapshot, then to a full scan: a snapshot can make start-up faster, never the state
//! different. At most [`KEEP_SNAPSHOTS`] are kept per partition.

use std::collections::{HashMap, VecDeque};

use weir_storage::{Durability, FsyncPolicy, Log, Offset};

use crate::producers::{BatchRecord, ProducerEntry, ProducerState, RETAINED_BATCHES};

/// The kind (file name extension) of the log's side files that hold snapshots.
pub const SNAPSHOT_EXT: &str = "producer-snapshot";
/// Snapshots kept per partition (the newest ones).
pub const KEEP_SNAPSHOTS: usize = 3;
/// Larger files are not read (ten million producers would be ~400 MiB; Weir keeps far fewer).
const MAX_SNAPSHOT_BYTES: u64 = 512 << 20;

const MAGIC: &[u8; 4] = b"WPSN";
/// Version 2 adds transactions (coordinator epoch, open transaction, last offset per producer),
/// version 3 the last batch's timestamp; older snapshots are still read (no timestamp: -1).
const VERSION: u16 = 3;
/// magic, version, CRC32C of what follows.
const HEADER_BYTES: usize = 4 + 2 + 4;
/// Producer id, epoch, batch count (version 1).
const ENTRY_V1_BYTES: usize = 8 + 2 + 1;
/// Version 2 adds coordinator epoch, open transaction's first offset (-1: none), last offset.
const ENTRY_V2_BYTES: usize = ENTRY_V1_BYTES + 4 + 8 + 8;
/// Version 3 adds the last batch's max timestamp.
const ENTRY_BYTES: usize = ENTRY_V2_BYTES + 8;
/// First and last sequence, base and last offset.
const BATCH_BYTES: usize = 4 + 4 + 8 + 8;

/// Why a snapshot could not be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a producer snapshot")]
    Magic,
    #[error("unknown snapshot version {0}")]
    Version(u16),
    #[error("checksum mismatch")]
    Checksum,
    #[error("truncated or malformed")]
    Malformed,
    #[error("taken at offset {inside}, named for {named}")]
    WrongOffset { inside: Offset, named: Offset },
    #[error("larger than {MAX_SNAPSHOT_BYTES} bytes")]
    TooLarge,
    #[error("cannot read: {0}")]
    Io(String),
}

/// The bytes of a snapshot of `state` taken at `offset`.
pub fn encode(state: &ProducerState, offset: Offset) -> Vec<u8> {
    let mut body = Vec::with_capacity(12 + state.producers.len() * (ENTRY_BYTES + BATCH_BYTES));
    body.extend_from_slice(&offset.to_be_bytes());
    let count = u32::try_from(state.producers.len()).unwrap_or(u32::MAX);
    body.extend_from_slice(&count.to_be_bytes());
    // Sorted, so the same state always gives the same bytes.
    let mut ids: Vec<&i64> = state.producers.keys().collect();
    ids.sort_unstable();
    for id in ids.into_iter().take(count as usize) {
        let entry = &state.producers[id];
        body.extend_from_slice(&id.to_be_bytes());
        body.extend_from_slice(&entry.epoch.to_be_bytes());
        let n = entry.batches.len().min(RETAINED_BATCHES);
        body.push(n as u8);
        body.extend_from_slice(&entry.coordinator_epoch.to_be_bytes());
        body.extend_from_slice(&entry.txn_first_offset.unwrap_or(-1).to_be_bytes());
        body.extend_from_slice(&entry.last_offset.to_be_bytes());
        body.extend_from_slice(&entry.last_timestamp_ms.to_be_bytes());
        for b in entry.batches.iter().skip(entry.batches.len() - n) {
            body.extend_from_slice(&b.first_seq.to_be_bytes());
            body.extend_from_slice(&b.last_seq.to_be_bytes());
            body.extend_from_slice(&b.base_offset.to_be_bytes());
            body.extend_from_slice(&b.last_offset.to_be_bytes());
        }
    }
    let mut out = Vec::with_capacity(HEADER_BYTES + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Reads big-endian fields off the front of a byte slice.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(SnapshotError::Malformed)?;
        self.0 = rest;
        Ok(*head)
    }
    fn i64(&mut self) -> Result<i64, SnapshotError> {
        self.take().map(i64::from_be_bytes)
    }
    fn i32(&mut self) -> Result<i32, SnapshotError> {
        self.take().map(i32::from_be_bytes)
    }
    fn i16(&mut self) -> Result<i16, SnapshotError> {
        self.take().map(i16::from_be_bytes)
    }
}

/// The state in a snapshot's bytes, checked against the offset its file is named for.
pub fn decode(bytes: &[u8], named: Offset) -> Result<ProducerState, SnapshotError> {
    let mut r = Reader(bytes);
    if &r.take::<4>()? != MAGIC {
        return Err(SnapshotError::Magic);
    }
    let version = u16::from_be_bytes(r.take()?);
    let entry_bytes = match version {
        1 => ENTRY_V1_BYTES,
        2 => ENTRY_V2_BYTES,
        VERSION => ENTRY_BYTES,
        _ => return Err(SnapshotError::Version(version)),
    };
    let crc = u32::from_be_bytes(r.take()?);
    if crc32c::crc32c(r.0) != crc {
        return Err(SnapshotError::Checksum);
    }
    let inside = r.i64()?;
    if inside != named {
        return Err(SnapshotError::WrongOffset { inside, named });
    }
    let count = u32::from_be_bytes(r.take()?) as usize;
    if count > r.0.len() / entry_bytes {
        return Err(SnapshotError::Malformed);
    }
    let mut producers = HashMap::with_capacity(count);
    for _ in 0..count {
        let id = r.i64()?;
        let epoch = r.i16()?;
        let [n] = r.take::<1>()?;
        if id < 0 || usize::from(n) > RETAINED_BATCHES {
            return Err(SnapshotError::Malformed);
        }
        let (coordinator_epoch, txn_first_offset, last_offset) = if version == 1 {
            (-1, None, None)
        } else {
            let c = r.i32()?;
            let t = r.i64()?;
            let l = r.i64()?;
            if t < -1 || t >= inside || l < -1 || l >= inside {
                return Err(SnapshotError::Malformed);
            }
            (c, (t >= 0).then_some(t), Some(l))
        };
        let last_timestamp_ms = if version >= 3 { r.i64()? } else { -1 };
        let mut batches = VecDeque::with_capacity(usize::from(n));
        for _ in 0..n {
            let b = BatchRecord {
                first_seq: r.i32()?,
                last_seq: r.i32()?,
                base_offset: r.i64()?,
                last_offset: r.i64()?,
            };
            if b.base_offset > b.last_offset || b.last_offset >= inside {
                return Err(SnapshotError::Malformed);
            }
            batches.push_back(b);
        }
        let last_offset =
            last_offset.unwrap_or_else(|| batches.back().map_or(-1, |b| b.last_offset));
        let entry = ProducerEntry {
            epoch,
            batches,
            coordinator_epoch,
            txn_first_offset,
            last_offset,
            last_timestamp_ms,
        };
        if producers.insert(id, entry).is_some() {
            return Err(SnapshotError::Malformed);
        }
    }
    if !r.0.is_empty() {
        return Err(SnapshotError::Malformed);
    }
    Ok(ProducerState::from_producers(producers))
}

fn name(offset: Offset) -> String {
    Log::offset_side_file_name(offset, SNAPSHOT_EXT)
}

/// Writes a snapshot of `state` taken at `offset` (the caller guarantees that `state` is the
/// state after every batch below it) and deletes the snapshots beyond the newest
/// [`KEEP_SNAPSHOTS`] and those below the log start.
pub fn write(
    log: &Log,
    state: &ProducerState,
    offset: Offset,
) -> Result<(), weir_storage::StorageError> {
    let durability = match log.config().fsync {
        FsyncPolicy::Never => Durability::Deferred,
        _ => Durability::Synced,
    };
    log.write_side_file(&name(offset), &encode(state, offset), durability)?;
    let offsets = log.offset_side_files(SNAPSHOT_EXT)?;
    let start = log.log_start_offset();
    let keep_from = offsets.len().saturating_sub(KEEP_SNAPSHOTS);
    for (i, &o) in offsets.iter().enumerate() {
        if (i < keep_from || o < start) && o != offset {
            log.remove_side_file(&name(o))?;
        }
    }
    Ok(())
}

fn read(log: &Log, offset: Offset) -> Result<ProducerState, SnapshotError> {
    let file = log.dir().join(name(offset));
    let len = std::fs::metadata(&file)
        .map_err(|e| SnapshotError::Io(e.to_string()))?
        .len();
    if len > MAX_SNAPSHOT_BYTES {
        return Err(SnapshotError::TooLarge);
    }
    let bytes = std::fs::read(&file).map_err(|e| SnapshotError::Io(e.to_string()))?;
    decode(&bytes, offset)
}

/// The newest usable snapshot and the offset it was taken at; deletes the unusable ones met on
/// the way (above the log end, below the log start, unreadable).
pub fn load_latest(log: &Log) -> Option<(ProducerState, Offset)> {
    let offsets = match log.offset_side_files(SNAPSHOT_EXT) {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(log = log.name(), error = %e, "cannot list producer snapshots; reading the whole log");
            return None;
        }
    };
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    let mut found = None;
    for &offset in offsets.iter().rev() {
        if found.is_some() {
            break;
        }
        let why = if offset > end {
            "above the log end".to_string()
        } else if offset < start {
            "below the log start".to_string()
        } else {
            match read(log, offset) {
                Ok(state) => {
                    found = Some((state, offset));
                    continue;
                }
                Err(e) => e.to_string(),
            }
        };
        tracing::info!(log = log.name(), offset, reason = %why, "dropping a producer snapshot");
        if let Err(e) = log.remove_side_file(&name(offset)) {
            tracing::warn!(log = log.name(), offset, error = %e, "cannot delete a producer snapshot");
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;
    use weir_storage::batch::compute_crc;
    use weir_storage::records::{encode_batch, NewRecord};
    use weir_storage::{AppendOptions, DataDir, LogConfig};

    use super::*;
    use crate::producers::SequenceCheck;

    /// An idempotent batch of `n` records from producer `pid`, epoch `epoch`, first sequence `seq`.
    fn batch(pid: i64, epoch: i16, seq: i32, n: usize) -> Vec<u8> {
        let value = [7u8; 40];
        let records: Vec<NewRecord<'_>> = (0..n)
            .map(|_| NewRecord {
                key: None,
                value: Some(&value),
                headers: &[],
                timestamp_ms: 1_700_000_000_000,
            })
            .collect();
        let mut b = encode_batch(&records);
        b[43..51].copy_from_slice(&pid.to_be_bytes());
        b[51..53].copy_from_slice(&epoch.to_be_bytes());
        b[53..57].copy_from_slice(&seq.to_be_bytes());
        let crc = compute_crc(&b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    fn open(dir: &std::path::Path) -> (Arc<DataDir>, Arc<Log>) {
        let data = DataDir::open(dir).expect("data dir");
        let config = LogConfig {
            segment_bytes: 4096,
            ..LogConfig::default()
        };
        let log = data.open_log("t-0", config).expect("log");
        (data, log)
    }

    /// Appends as the produce handler does: check, append, record, snapshot if rolled.
    fn produce(log: &Log, state: &mut ProducerState, pid: i64, epoch: i16, seq: i32, n: usize) {
        let b = batch(pid, epoch, seq, n);
        let header = weir_storage::batch::validate_batch(&b).expect("valid batch");
        assert_eq!(state.check(&header), SequenceCheck::Append);
        let r = log.append(b, &AppendOptions::default()).expect("append");
        state.record(&header, r.base_offset);
        state.snapshot_if_rolled(log);
    }

    /// The state a scan of the whole log gives, with no snapshot: what a recovery must equal.
    fn full_scan(log: &Log) -> ProducerState {
        let mut state = ProducerState::default();
        crate::log_scan::for_each_batch(log, |h, b| state.apply(log, h, b, h.base_offset))
            .expect("scan");
        state.forget_below(log.log_start_offset());
        state
    }

    /// Four producers writing `batches` batches round-robin, three records each.
    fn fill(log: &Log, state: &mut ProducerState, batches: i32) {
        for i in 0..batches {
            let pid = i64::from(i % 4);
            produce(log, state, pid, 0, (i / 4) * 3, 3);
        }
    }

    #[test]
    fn a_large_log_with_a_roll_snapshot_is_read_only_after_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (data, log) = open(dir.path());
        let mut state = ProducerState::default();
        fill(&log, &mut state, 2000);
        let segments = log.segment_count();
        assert!(segments > 50, "{segments} segments");
        let total = log.size_bytes();
        let tail = log.active_segment_size();
        drop(log);
        data.shutdown_unclean();
        drop(data);

        let (_data, log) = open(dir.path());
        let r = ProducerState::recover_counted(&log);
        // A snapshot at the last roll (after the batch that rolled): only the active segment
        // is read.
        let at = r.snapshot.expect("a snapshot");
        assert!(at >= log.active_segment_base(), "snapshot at {at}");
        assert!(
            r.bytes_read <= tail,
            "read {} of {total} bytes",
            r.bytes_read
        );
        assert!(r.batches_read < 50, "read {} batches", r.batches_read);
        assert_eq!(r.state.producers, full_scan(&log).producers);
        assert_eq!(r.state.producers, state.producers);
    }

    #[test]
    fn without_a_snapshot_recovery_reads_only_the_batch_headers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (data, log) = open(dir.path());
        let mut state = ProducerState::default();
        fill(&log, &mut state, 600);
        let total = log.size_bytes();
        let log_dir = log.dir().to_path_buf();
        drop(log);
        data.shutdown_unclean();
        drop(data);
        for entry in std::fs::read_dir(&log_dir).expect("log dir") {
            let path = entry.expect("entry").path();
            if path.extension().and_then(|e| e.to_str()) == Some(SNAPSHOT_EXT) {
                std::fs::remove_file(path).expect("remove snapshot");
            }
        }

        let (_data, log) = open(dir.path());
        let r = ProducerState::recover_counted(&log);
        assert_eq!(r.snapshot, None);
        assert_eq!(r.batches_read, 600);
        assert_eq!(
            r.bytes_read,
            600 * weir_storage::batch::BATCH_HEADER_LEN as u64,
            "headers only, of {total} bytes of batches"
        );
        assert_eq!(r.state.producers, full_scan(&log).producers);
        assert_eq!(r.state.producers, state.producers);
    }

    #[test]
    fn a_clean_shutdown_snapshot_leaves_nothing_to_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (data, log) = open(dir.path());
        let mut state = ProducerState::default();
        fill(&log, &mut state, 300);
        state.write_snapshot(&log);
        let end = log.log_end_offset();
        drop(log);
        data.shutdown();
        drop(data);

        let (_data, log) = open(dir.path());
        let r = ProducerState::recover_counted(&log);
        assert_eq!(r.snapshot, Some(end));
        assert_eq!((r.batches_read, r.bytes_read), (0, 0));
        assert_eq!(r.state.producers, state.producers);
        // A retry of each producer's last batch is still recognised.
        let retry = batch(3, 0, (299 / 4) * 3, 3);
        let header = weir_storage::batch::validate_batch(&retry).expect("valid");
        assert!(matches!(
            r.state.check(&header),
            SequenceCheck::Duplicate { .. }
        ));
    }

    #[test]
    fn snapshots_are_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_data, log) = open(dir.path());
        let mut state = ProducerState::default();
        fill(&log, &mut state, 1000);
        let snapshots = log.offset_side_files(SNAPSHOT_EXT).expect("list");
        assert_eq!(snapshots.len(), KEEP_SNAPSHOTS);
        assert!(snapshots
            .last()
            .is_some_and(|&o| o >= log.active_segment_base()));
    }

    #[test]
    fn a_corrupt_snapshot_falls_back_to_the_older_one_then_to_a_full_scan() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_data, log) = open(dir.path());
        let mut state = ProducerState::default();
        fill(&log, &mut state, 1000);
        let snapshots = log.offset_side_files(SNAPSHOT_EXT).expect("list");
        let newest = *snapshots.last().expect("a snapshot");
        let path = log.dir().join(name(newest));
        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).expect("write");

        let r = ProducerState::recover_counted(&log);
        assert_eq!(r.snapshot, Some(snapshots[snapshots.len() - 2]));
        assert_eq!(r.state.producers, state.producers);
        // The corrupt one is gone.
        assert!(!log
            .offset_side_files(SNAPSHOT_EXT)
            .expect("list")
            .contains(&newest));

        // A snapshot under another offset's name, a truncated one: none usable, full scan.
        let rest = log.offset_side_files(SNAPSHOT_EXT).expect("list");
        let good = std::fs::read(log.dir().join(name(rest[0]))).expect("read");
        for (i, &o) in rest.iter().enumerate() {
            let bad = if i == 0 {
                &good[..good.len() / 2]
            } else {
                &good[..]
            };
            std::fs::write(log.dir().join(name(o)), bad).expect("write");
        }
        let r = ProducerState::recover_counted(&log);
        assert_eq!(r.snapshot, None);
        assert_eq!(r.state.producers, state.producers);
        assert!(log
            .offset_side_files(SNAPSHOT_EXT)
            .expect("list")
            .is_empty());
    }

    #[test]
    fn snapshots_above_a_truncation_or_below_the_log_start_are_not_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_data, log) = open(dir.path());
        let mut state = ProducerState::default();
        fill(&log, &mut state, 1000);
        let snapshots = log.offset_side_files(SNAPSHOT_EXT).expect("list");
        // A follower's suffix truncated by Raft, just below the newest snapshot.
        let cut = snapshots[snapshots.len() - 1] - 3;
        log.truncate_to(cut).expect("truncate");
        let r = ProducerState::recover_counted(&log);
        assert_eq!(r.snapshot, Some(snapshots[snapshots.len() - 2]));
        assert_eq!(r.state.producers, full_scan(&log).producers);
        assert_ne!(r.state.producers, state.producers);
        assert!(!log
            .offset_side_files(SNAPSHOT_EXT)
            .expect("list")
            .contains(&snapshots[snapshots.len() - 1]));

        // DeleteRecords past every snapshot left: a full scan from the new log start.
        let start = log.log_end_offset() - 3;
        log.delete_records_before(start).expect("delete records");
        let r = ProducerState::recover_counted(&log);
        assert_eq!(r.snapshot, None);
        assert_eq!(r.state.producers, full_scan(&log).producers);
        assert_eq!(r.state.producers.len(), 1);
    }

    #[test]
    fn decode_refuses_what_encode_did_not_write() {
        let mut state = ProducerState::default();
        let h = weir_storage::batch::validate_batch(&batch(5, 2, 0, 3)).expect("valid");
        state.record(&h, 10);
        let bytes = encode(&state, 13);
        assert_eq!(
            decode(&bytes, 13).expect("decode").producers,
            state.producers
        );
        assert_eq!(
            decode(&bytes, 14).err(),
            Some(SnapshotError::WrongOffset {
                inside: 13,
                named: 14
            })
        );
        assert_eq!(
            decode(&bytes[..9], 13).err(),
            Some(SnapshotError::Malformed)
        );
        let mut flipped = bytes.clone();
        flipped[HEADER_BYTES + 3] ^= 0x40;
        assert_eq!(decode(&flipped, 13).err(), Some(SnapshotError::Checksum));
        assert_eq!(
            decode(b"KAFKxxxxxxxx", 13).err(),
            Some(SnapshotError::Magic)
        );
        // A batch at or above the snapshot's offset cannot be in it.
        assert_eq!(
            decode(&encode(&state, 12), 12).err(),
            Some(SnapshotError::Malformed)
        );
        assert_ne!(state.producers[&5].last_timestamp_ms, -1);

        // A version 2 snapshot (written before timestamps were kept) is read, without them.
        let ts_at = HEADER_BYTES + 8 + 4 + ENTRY_V2_BYTES;
        let mut v2 = bytes[..ts_at].to_vec();
        v2.extend_from_slice(&bytes[ts_at + 8..]);
        v2[4..6].copy_from_slice(&2u16.to_be_bytes());
        let crc = crc32c::crc32c(&v2[HEADER_BYTES..]);
        v2[6..10].copy_from_slice(&crc.to_be_bytes());
        let mut expected = state.producers.clone();
        expected.values_mut().for_each(|e| e.last_timestamp_ms = -1);
        assert_eq!(decode(&v2, 13).expect("version 2").producers, expected);
        let mut v4 = bytes.clone();
        v4[4..6].copy_from_slice(&4u16.to_be_bytes());
        assert_eq!(decode(&v4, 13).err(), Some(SnapshotError::Version(4)));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Produce {
            pid: i64,
            bump_epoch: bool,
            records: usize,
        },
        Roll,
        Snapshot,
        /// Truncate to the base offset of the batch this far from the end (a follower).
        Truncate(usize),
        /// Move the log start to the base of the batch this far from the end.
        DeleteRecords(usize),
        /// Flip a byte of the newest snapshot.
        Corrupt,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (0i64..4, proptest::bool::weighted(0.1), 1usize..4)
                .prop_map(|(pid, bump_epoch, records)| Op::Produce { pid, bump_epoch, records }),
            1 => Just(Op::Roll),
            1 => Just(Op::Snapshot),
            1 => (0usize..6).prop_map(Op::Truncate),
            1 => (0usize..10).prop_map(Op::DeleteRecords),
            1 => Just(Op::Corrupt),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Whatever happened to the log and its snapshots, a recovery gives the state a full
        /// scan gives: snapshots make starts faster, never the state different.
        #[test]
        fn recovery_equals_a_full_scan(ops in proptest::collection::vec(op(), 1..120), clean in any::<bool>()) {
            let dir = tempfile::tempdir().expect("tempdir");
            let (data, log) = open(dir.path());
            let mut state = ProducerState::default();
            // Per producer: epoch and next sequence; the batch base offsets of the log.
            let mut next: HashMap<i64, (i16, i32)> = HashMap::new();
            let mut bases: Vec<Offset> = Vec::new();
            for op in ops {
                match op {
                    Op::Produce { pid, bump_epoch, records } => {
                        let (epoch, seq) = next.entry(pid).or_insert((0, 0));
                        if bump_epoch {
                            *epoch += 1;
                            *seq = 0;
                        }
                        // After a truncation the state may be behind: new epoch, sequence 0.
                        let b = batch(pid, *epoch, *seq, records);
                        let h = weir_storage::batch::validate_batch(&b).expect("valid");
                        if state.check(&h) != SequenceCheck::Append {
                            *epoch += 1;
                            *seq = 0;
                        }
                        bases.push(log.log_end_offset());
                        produce(&log, &mut state, pid, *epoch, *seq, records);
                        *seq += records as i32;
                    }
                    Op::Roll => log.roll().expect("roll"),
                    Op::Snapshot => state.write_snapshot(&log),
                    Op::Truncate(back) => {
                        let start = log.log_start_offset();
                        if let Some(&at) = bases.iter().rev().nth(back).filter(|&&b| b >= start) {
                            log.truncate_to(at).expect("truncate");
                            bases.retain(|&b| b < at);
                            state = ProducerState::recover(&log);
                        }
                    }
                    Op::DeleteRecords(back) => {
                        if let Some(&at) = bases.iter().rev().nth(back) {
                            log.delete_records_before(at).expect("delete records");
                        }
                    }
                    Op::Corrupt => {
                        if let Some(&o) = log.offset_side_files(SNAPSHOT_EXT).expect("list").last() {
                            let path = log.dir().join(name(o));
                            let mut bytes = std::fs::read(&path).expect("read");
                            let i = bytes.len() / 2;
                            bytes[i] ^= 0x10;
                            std::fs::write(&path, &bytes).expect("write");
                        }
                    }
                }
            }
            if clean {
                state.write_snapshot(&log);
            }
            drop(log);
            if clean { data.shutdown() } else { data.shutdown_unclean() }
            drop(data);
            let (_data, log) = open(dir.path());
            let recovered = ProducerState::recover(&log);
            prop_assert_eq!(&recovered.producers, &full_scan(&log).producers);
        }
    }

    /// A transactional data batch of one record, or a marker, applied as the leader does.
    fn append_txn(log: &Log, state: &mut ProducerState, b: Vec<u8>) -> Offset {
        let header = weir_storage::batch::validate_batch(&b).expect("valid batch");
        let r = log
            .append(b.clone(), &AppendOptions::default())
            .expect("append");
        state.apply(log, &header, &b, r.base_offset);
        state.snapshot_if_rolled(log);
        r.base_offset
    }

    fn txn_batch(pid: i64, seq: i32) -> Vec<u8> {
        let mut b = batch(pid, 0, seq, 1);
        let attrs = i16::from_be_bytes([b[21], b[22]]) | weir_storage::batch::ATTR_TRANSACTIONAL;
        b[21..23].copy_from_slice(&attrs.to_be_bytes());
        let crc = compute_crc(&b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    #[derive(Clone, Debug)]
    enum TxnOp {
        Data(i64),
        End(i64, bool),
        Roll,
        Crash,
        CleanRestart,
    }

    fn txn_op() -> impl Strategy<Value = TxnOp> {
        prop_oneof![
            6 => (0i64..4).prop_map(TxnOp::Data),
            3 => (0i64..4, any::<bool>()).prop_map(|(p, c)| TxnOp::End(p, c)),
            1 => Just(TxnOp::Roll),
            1 => Just(TxnOp::Crash),
            1 => Just(TxnOp::CleanRestart),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Producers interleaving transactions, commits and aborts across rolls, crashes and
        /// restarts: the open transactions and the aborted-transaction index always equal a
        /// model's, and a read of any range gets exactly the model's aborts for it.
        #[test]
        fn open_transactions_and_the_abort_index_match_a_model(ops in proptest::collection::vec(txn_op(), 1..80)) {
            use weir_storage::records::{encode_txn_marker, TxnMarker, TxnMarkerKind};
            let dir = tempfile::tempdir().expect("tempdir");
            let (mut data, mut log) = open(dir.path());
            let mut state = ProducerState::default();
            let mut seq: HashMap<i64, i32> = HashMap::new();
            let mut open_model: std::collections::BTreeMap<i64, Offset> = Default::default();
            let mut aborted_model: Vec<(i64, Offset, Offset)> = Vec::new();
            for op in ops {
                match op {
                    TxnOp::Data(pid) => {
                        let s = seq.entry(pid).or_insert(0);
                        let at = append_txn(&log, &mut state, txn_batch(pid, *s));
                        *s += 1;
                        open_model.entry(pid).or_insert(at);
                    }
                    TxnOp::End(pid, commit) => {
                        let marker = TxnMarker {
                            producer_id: pid,
                            producer_epoch: 0,
                            kind: if commit { TxnMarkerKind::Commit } else { TxnMarkerKind::Abort },
                            coordinator_epoch: 0,
                        };
                        prop_assert_eq!(state.check_marker(&marker, 1), Ok(()));
                        let at = append_txn(&log, &mut state, encode_txn_marker(&marker, 0));
                        let first = open_model.remove(&pid).unwrap_or(at);
                        if !commit {
                            aborted_model.push((pid, first, at));
                        }
                    }
                    TxnOp::Roll => log.roll().expect("roll"),
                    TxnOp::Crash | TxnOp::CleanRestart => {
                        let clean = matches!(op, TxnOp::CleanRestart);
                        if clean {
                            state.write_snapshot(&log);
                        }
                        drop(log);
                        if clean { data.shutdown() } else { data.shutdown_unclean() }
                        drop(data);
                        (data, log) = open(dir.path());
                        state = ProducerState::recover(&log);
                    }
                }
                let open_now: Vec<(i64, Offset)> = open_model.iter().map(|(&p, &o)| (p, o)).collect();
                let mut got = state.open_transactions();
                got.sort_unstable();
                prop_assert_eq!(got, open_now);
                let indexed: Vec<(i64, Offset, Offset)> = log
                    .all_aborted_txns()
                    .iter()
                    .map(|t| (t.producer_id, t.first_offset, t.last_offset))
                    .collect();
                prop_assert_eq!(&indexed, &aborted_model);
            }
            let end = log.log_end_offset();
            for from in 0..end {
                for upper in [from + 1, from + 3, end] {
                    let mut got: Vec<(i64, Offset)> = log
                        .aborted_txns(from, upper)
                        .iter()
                        .map(|t| (t.producer_id, t.first_offset))
                        .collect();
                    got.sort_unstable();
                    let mut want: Vec<(i64, Offset)> = aborted_model
                        .iter()
                        .filter(|&&(_, first, last)| last >= from && first < upper)
                        .map(|&(p, f, _)| (p, f))
                        .collect();
                    want.sort_unstable();
                    prop_assert_eq!(got, want, "from {} upper {}", from, upper);
                }
            }
        }
    }
}
