//! One partition's log: an ordered set of segments with offset assignment, reads, recovery,
//! retention, delete-records and high-watermark bookkeeping.
//!
//! Locking: `state` (a mutex) guards the segment map and offset assignment and is held only
//! briefly — appends hold it to validate nothing but to stamp offsets and queue the write;
//! reads hold it for the index lookup and do their `pread`s after releasing it. Waiting for
//! durability happens outside every lock (see `writer.rs`). `meta` serializes operations that
//! delete segments and rewrite the log-start checkpoint, which do file-system syncs and should
//! not stall appends.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::batch::{self, BatchHeader, IntoValidated, ValidatedBatches, BATCH_HEADER_LEN};
use crate::checkpoint::{self, Durability};
use crate::config::{AppendOptions, AppendResult, FsyncPolicy, LogConfig, MAX_SEGMENT_BYTES};
use crate::segment::{self, read_header, Gaps, Recovered, Segment, SegmentFile, LOG_EXT};
use crate::slice::{self, RecordSlice};
use crate::txn_index::{self, AbortedTxn};
use crate::writer::{
    writeback_due, Completer, Completion, FileSync, LogSync, Msg, WriteFailure, WriteReq,
    WriterCounters,
};
use crate::{Offset, StorageError};

mod compaction;
pub use compaction::CompactionStats;

struct LogState {
    config: LogConfig,
    /// Keyed by base offset; the last one is the active segment. Never empty.
    segments: BTreeMap<Offset, Segment>,
    log_start: Offset,
    leo: Offset,
    closed: bool,
    /// `(leader epoch, first offset)` of every epoch in the log, both strictly increasing
    /// (Kafka's leader-epoch cache), persisted in `leader-epoch-checkpoint` when it changes.
    epochs: Vec<(i32, Offset)>,
    /// Whether `leader-epoch-checkpoint` on disk is `epochs`, fsynced. A new epoch noted by an
    /// append is written without fsync (see [`Log::save_epochs`]); a roll and a clean close
    /// sync it first.
    epochs_synced: bool,
}

/// Moves the epoch cache's start up to the log start: earlier epochs go, the one covering the
/// new start starts there. Returns whether it changed.
fn trim_epochs_to_start(st: &mut LogState) -> bool {
    let start = st.log_start;
    if start >= st.leo {
        // Nothing left: no batch carries an epoch any more.
        let changed = !st.epochs.is_empty();
        st.epochs.clear();
        return changed;
    }
    let Some(i) = st.epochs.iter().rposition(|&(_, s)| s <= start) else {
        return false;
    };
    if i == 0 && st.epochs[0].1 == start {
        return false;
    }
    st.epochs.drain(..i);
    st.epochs[0].1 = start;
    true
}

/// Adds `(epoch, offset)` if `epoch` is newer than the last one. Batches written before epochs
/// were stamped carry -1 (or whatever the client sent): they count as epoch 0. Returns whether
/// the cache changed.
pub(crate) fn note_epoch(epochs: &mut Vec<(i32, Offset)>, epoch: i32, offset: Offset) -> bool {
    let epoch = epoch.max(0);
    match epochs.last() {
        Some(&(last, _)) if epoch <= last => false,
        _ => {
            epochs.push((epoch, offset));
            true
        }
    }
}

impl LogState {
    fn active(&self) -> Option<&Segment> {
        self.segments.values().next_back()
    }
    fn active_mut(&mut self) -> Option<&mut Segment> {
        self.segments.values_mut().next_back()
    }
}

/// Whether an append assigns offsets (a leader) or keeps those in the batches (a follower).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Offsets {
    Assign,
    Keep,
}

/// The first preallocation of a segment; later ones double it up to `preallocate_bytes`.
const MIN_PREALLOCATE_BYTES: u64 = 64 * 1024;

/// A file's last modification time in milliseconds since the epoch.
fn modified_ms(file: &std::fs::File) -> Option<i64> {
    let modified = file.metadata().ok()?.modified().ok()?;
    let since = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(since.as_millis()).ok()
}

/// What a read asks for: batches from the one holding `offset`, up to `max_bytes` (at least one
/// batch if `min_one_batch`), below the high watermark and `upper`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Read {
    pub offset: Offset,
    pub max_bytes: usize,
    pub min_one_batch: bool,
    pub upper: Option<Offset>,
}

/// Answers a [`Read`] from one segment file, from `position` on, below the high watermark
/// `hw`; `None` when the segment ends before the read's offset.
type ReadSegment<T> = fn(&Arc<SegmentFile>, u64, Offset, &Read) -> io::Result<Option<T>>;

/// Where a read starts (see [`Log::read_start`]).
struct ReadStart {
    file: Arc<SegmentFile>,
    segment_base: Offset,
    position: u64,
    /// The high watermark when the read started (capped at the read's upper bound).
    hw: Offset,
}

/// A batch found by a time lookup: where it is, its header, and the log start when it was found.
struct FoundBatch {
    file: Arc<SegmentFile>,
    position: u64,
    header: BatchHeader,
    log_start: Offset,
}

/// A partition's log. `Send + Sync`; share it as `Arc<Log>`.
pub struct Log {
    name: String,
    dir: PathBuf,
    state: Mutex<LogState>,
    meta: Mutex<()>,
    /// Held by a compaction pass from start to end: passes over one log run one at a time.
    cleaning: Mutex<()>,
    sync: Arc<LogSync>,
    leo: AtomicI64,
    log_start: AtomicI64,
    writer: Sender<Msg>,
    stats: Arc<WriterCounters>,
    /// Writes and file growth of appends (the data directory's [`FileSync`]).
    file_io: Arc<dyn FileSync>,
    /// The data directory's generation of this run, written into the clean-shutdown marker.
    generation: u64,
    /// The recovery point last written (segment base, position), so an unchanged one is not
    /// written again.
    recovery_point: Mutex<Option<(Offset, u64)>>,
    /// What opening the log had to recover.
    recovered: Recovered,
}

/// An append whose offsets are assigned and whose write is queued; see [`Log::append_pending`].
pub struct PendingAppend {
    /// What the append was assigned. Not yet durable (nor readable) until [`Self::wait`].
    pub result: AppendResult,
    done: Arc<Completion>,
}

impl std::fmt::Debug for PendingAppend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingAppend")
            .field("result", &self.result)
            .finish_non_exhaustive()
    }
}

impl PendingAppend {
    /// Whether [`Self::wait`] would return at once (always the case under fsync=never, whose
    /// appends complete before `append_pending` returns). Lets async callers skip a thread hop.
    pub fn is_complete(&self) -> bool {
        self.done.is_complete()
    }

    /// Blocks until the data is readable and durable per the log's fsync policy.
    pub fn wait(self) -> Result<AppendResult, StorageError> {
        self.done.wait()?;
        Ok(self.result)
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn out_of_range(requested: Offset, log_start: Offset, log_end: Offset) -> StorageError {
    StorageError::OffsetOutOfRange {
        requested,
        log_start,
        log_end,
    }
}

impl Log {
    /// Opens (recovering) or creates the log in `dir`.
    pub(crate) fn open(
        dir: PathBuf,
        name: &str,
        config: LogConfig,
        writer: Sender<Msg>,
        stats: Arc<WriterCounters>,
        file_io: Arc<dyn FileSync>,
        generations: checkpoint::Generations,
    ) -> Result<Log, StorageError> {
        fs::create_dir_all(&dir)?;
        let marker = checkpoint::read_clean(&dir);
        let clean = generations.trusts(marker);
        let ckpt_start = checkpoint::read_log_start(&dir);

        compaction::finish_interrupted_swaps(&dir)?;
        let mut bases = Vec::new();
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let fname = entry.file_name();
            let Some(fname) = fname.to_str() else {
                continue;
            };
            if let Some(b) = segment::parse_file_name(fname, LOG_EXT) {
                bases.push(b);
            } else if fname.ends_with(".tmp") {
                // A checkpoint replacement interrupted by a crash.
                let _ = fs::remove_file(entry.path());
            }
        }
        bases.sort_unstable();
        // Index files whose data file is gone (a deletion interrupted by a crash).
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let fname = entry.file_name();
            let Some(fname) = fname.to_str() else {
                continue;
            };
            let orphan = [
                segment::INDEX_EXT,
                segment::TIME_INDEX_EXT,
                txn_index::TXN_INDEX_EXT,
            ]
            .iter()
            .filter_map(|ext| segment::parse_file_name(fname, ext))
            .any(|b| bases.binary_search(&b).is_err());
            if orphan {
                let _ = fs::remove_file(entry.path());
            }
        }

        // Segments entirely below the persisted log start were being deleted.
        if let Some(start) = ckpt_start {
            while bases.len() > 1 && bases[1] <= start {
                Segment::delete_files(&dir, bases[0]);
                bases.remove(0);
            }
        }

        let mut segments = BTreeMap::new();
        let mut recovered = Recovered::default();
        // After a crash: the epochs starting in the tail segment, as its recovery saw them.
        let mut tail_epochs = None;
        let n = bases.len();
        for i in 0..n.saturating_sub(1) {
            let seg = Segment::open_sealed(&dir, bases[i], bases.get(i + 1).copied(), &config)?;
            segments.insert(bases[i], seg);
        }
        if let Some(&tail) = bases.last() {
            if clean {
                let mut seg = Segment::open_sealed(&dir, tail, None, &config)?;
                seg.reactivate(&config)?;
                segments.insert(tail, seg);
            } else {
                // Below the recovery point only the batch headers are read (see
                // `checkpoint::RecoveryPoint`); it describes this tail segment only.
                let point = checkpoint::read_recovery_point(&dir).filter(|p| {
                    p.segment_base == tail && checkpoint::boot_id() == Some(p.boot_id.as_str())
                });
                let mut trusted_below = point.map_or(0, |p| p.position);
                let mut tail = tail;
                // The base of the empty tail segment deleted below, if one was.
                let mut emptied_tail = None;
                loop {
                    let gaps = compaction::gaps_in(&dir, tail);
                    let (mut seg, done, epoch_starts) =
                        Segment::recover(&dir, tail, &config, trusted_below, gaps)?;
                    tail_epochs = Some(epoch_starts);
                    trusted_below = 0;
                    recovered.dropped_bytes += done.dropped_bytes;
                    recovered.checked_bytes += done.checked_bytes;
                    if done.dropped_bytes > 0 {
                        tracing::warn!(
                            log = name,
                            base = tail,
                            dropped = done.dropped_bytes,
                            "truncated torn or preallocated tail"
                        );
                    }
                    if gaps == Gaps::Allowed {
                        // The log cleaner rewrote it, sealed and synced whole: it is not torn,
                        // and it ends where the segment after it started, whether or not its
                        // last batches are still there (offsets are never given out twice).
                        if let Some(end) = emptied_tail {
                            seg.next_offset = seg.next_offset.max(end);
                        }
                        segments.insert(tail, seg);
                        break;
                    }
                    // An empty tail after a crash may hide a torn end of the previous segment
                    // (its last writes were queued when the roll happened): validate that one.
                    if seg.size == 0 && !segments.is_empty() {
                        drop(seg);
                        Segment::delete_files(&dir, tail);
                        emptied_tail = Some(tail);
                        let Some((&prev, _)) = segments.iter().next_back() else {
                            break;
                        };
                        segments.remove(&prev);
                        tail = prev;
                        continue;
                    }
                    segments.insert(tail, seg);
                    break;
                }
            }
        }

        let first_base = segments.keys().next().copied();
        let mut log_start = match (ckpt_start, first_base) {
            (Some(c), Some(f)) => c.max(f),
            (Some(c), None) => c,
            (None, Some(f)) => f,
            (None, None) => 0,
        };
        let mut leo = segments
            .values()
            .next_back()
            .map_or(log_start, |s| s.next_offset);
        if segments.is_empty() || log_start > leo {
            // Nothing at or above the log start survives: start an empty segment there.
            for (&b, _) in segments.iter() {
                Segment::delete_files(&dir, b);
            }
            segments.clear();
            leo = log_start;
            segments.insert(log_start, Segment::create(&dir, log_start, &config)?);
            checkpoint::sync_dir(&dir)?;
        }
        log_start = log_start.max(segments.keys().next().copied().unwrap_or(log_start));
        for seg in segments.values_mut() {
            seg.aborted = txn_index::load(&dir, seg.base, seg.next_offset, seg.size)?;
        }
        let (epochs, epochs_synced) =
            Self::recover_epochs(&dir, &segments, tail_epochs, log_start, leo)?;
        // Before the first write: a marker left behind would describe a tail that changed.
        checkpoint::remove_clean(&dir, marker, generations.current)?;
        Ok(Log {
            name: name.to_string(),
            state: Mutex::new(LogState {
                config,
                segments,
                log_start,
                leo,
                closed: false,
                epochs,
                epochs_synced,
            }),
            meta: Mutex::new(()),
            cleaning: Mutex::new(()),
            sync: Arc::new(LogSync::new(leo, name, &dir)),
            leo: AtomicI64::new(leo),
            log_start: AtomicI64::new(log_start),
            writer,
            stats,
            file_io,
            dir,
            generation: generations.current,
            recovery_point: Mutex::new(None),
            recovered,
        })
    }

    /// The leader-epoch cache at open: the checkpoint, cut to the log as recovered; after a
    /// crash the tail segment's batches may carry epochs the checkpoint missed, so
    /// `tail_epochs` (what the tail's recovery saw start) are added. Without a checkpoint (a log
    /// written before epochs were kept, or one lost) every batch header is read once and the
    /// checkpoint written. Also says whether the checkpoint on disk is known to be synced.
    fn recover_epochs(
        dir: &Path,
        segments: &BTreeMap<Offset, Segment>,
        tail_epochs: Option<Vec<(i32, Offset)>>,
        log_start: Offset,
        leo: Offset,
    ) -> Result<(Vec<(i32, Offset)>, bool), StorageError> {
        // Only an unclean open recovers the tail (and sees its epochs).
        let opened_clean = tail_epochs.is_none();
        // At open: nothing truncates the files meanwhile, so they can be read mapped.
        let scan = |seg: &Segment, epochs: &mut Vec<(i32, Offset)>| -> io::Result<()> {
            let limit = seg.file.readable.load(Ordering::Acquire);
            let map = segment::map_prefix(&seg.file.file, limit)?;
            let data: &[u8] = map.as_deref().unwrap_or_default();
            for (h, _) in segment::batches(data) {
                note_epoch(epochs, h.partition_leader_epoch, h.base_offset);
            }
            Ok(())
        };
        let on_disk = checkpoint::read_leader_epochs(dir);
        let mut epochs = match on_disk.clone() {
            Some(e) => e,
            None => {
                // After a crash the tail's epochs come from its recovery (added below): the
                // tail is not walked a second time for them.
                let walk = segments
                    .len()
                    .saturating_sub(usize::from(tail_epochs.is_some()));
                let mut epochs = Vec::new();
                for seg in segments.values().take(walk) {
                    scan(seg, &mut epochs)?;
                }
                epochs
            }
        };
        epochs.retain(|&(_, start)| start < leo);
        for (epoch, start) in tail_epochs.into_iter().flatten() {
            note_epoch(&mut epochs, epoch, start);
        }
        // The epoch that covers the log start starts there; an empty log has none.
        if log_start >= leo {
            epochs.clear();
        } else if let Some(i) = epochs.iter().rposition(|&(_, start)| start <= log_start) {
            epochs.drain(..i);
            epochs[0].1 = log_start;
        }
        // Rewriting an unchanged checkpoint costs two fsyncs per log at every start: with
        // thousands of logs, seconds.
        if on_disk.as_ref() != Some(&epochs) {
            checkpoint::write_leader_epochs(dir, &epochs, Durability::Synced)?;
            return Ok((epochs, true));
        }
        // After a crash an unchanged file may be one written without fsync before it (still in
        // the page cache): the next roll or clean close must sync it. A clean close synced it.
        Ok((epochs, opened_clean))
    }

    /// Replaces a small file of the log's owner in the log's directory (say, replication state
    /// kept beside the log), atomically; with [`Durability::Synced`], fsynced (file and
    /// directory) before this returns. Names are the caller's; they must not collide with the
    /// log's own files.
    pub fn write_side_file(
        &self,
        name: &str,
        contents: &[u8],
        durability: Durability,
    ) -> Result<(), StorageError> {
        Ok(checkpoint::replace(&self.dir, name, contents, durability)?)
    }

    /// A file written with [`Self::write_side_file`], if present.
    pub fn read_side_file(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        match fs::read(self.dir.join(name)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a file written with [`Self::write_side_file`]; absent is fine.
    pub fn remove_side_file(&self, name: &str) -> Result<(), StorageError> {
        match fs::remove_file(self.dir.join(name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The name of the side file of kind `ext` that belongs to `offset`, `<offset:020>.<ext>`
    /// like a segment's files (the owner's per-offset state, e.g. a snapshot taken at a roll).
    /// `ext` must not be one of the log's own extensions (`log`, `index`, `timeindex`).
    pub fn offset_side_file_name(offset: Offset, ext: &str) -> String {
        segment::file_name(offset, ext)
    }

    /// The offsets of the side files of kind `ext` present (see [`Self::offset_side_file_name`]),
    /// ascending. Files of interrupted writes (`.tmp`) are not listed (and are removed at open).
    pub fn offset_side_files(&self, ext: &str) -> Result<Vec<Offset>, StorageError> {
        let mut offsets = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            if let Some(o) = entry
                .file_name()
                .to_str()
                .and_then(|n| segment::parse_file_name(n, ext))
            {
                offsets.push(o);
            }
        }
        offsets.sort_unstable();
        Ok(offsets)
    }

    /// The base offset of the active (last) segment: it moves when the log rolls.
    pub fn active_segment_base(&self) -> Offset {
        self.state
            .lock()
            .segments
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
    }

    /// The leader-epoch cache: `(epoch, first offset)` of every leader epoch in the log.
    pub fn leader_epochs(&self) -> Vec<(i32, Offset)> {
        self.state.lock().epochs.clone()
    }

    /// The log's name (its directory name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `records` may hold several concatenated v2 batches (as in a Produce request). Validates
    /// all (CRC, lengths, magic==2), assigns consecutive offsets, writes them atomically.
    /// Returns once the data is readable AND durable per the fsync policy. Concurrent callers
    /// share one fdatasync (group commit): internal locks are held only for offset assignment
    /// and queuing, not while waiting for the fsync.
    pub fn append(
        &self,
        records: impl IntoValidated,
        opts: &AppendOptions,
    ) -> Result<AppendResult, StorageError> {
        self.append_pending(records, opts)?.wait()
    }

    /// Two-phase variant for callers that must make a check + offset assignment atomic
    /// (idempotent producer): offsets are assigned and the write queued when this returns;
    /// [`PendingAppend::wait`] blocks until durable. Appends queued later on the same log are
    /// never acknowledged before this one.
    pub fn append_pending(
        &self,
        records: impl IntoValidated,
        opts: &AppendOptions,
    ) -> Result<PendingAppend, StorageError> {
        self.append_inner(records.into_validated()?, opts, Offsets::Assign)
    }

    /// Appends batches that already carry their offsets and leader epochs (a follower writing
    /// what it fetched from the leader): nothing in them is rewritten. They must continue the log
    /// exactly: the first base offset is the log end offset and each batch follows the previous.
    pub fn append_replicated(
        &self,
        records: impl IntoValidated,
    ) -> Result<PendingAppend, StorageError> {
        self.append_inner(
            records.into_validated()?,
            &AppendOptions::default(),
            Offsets::Keep,
        )
    }

    fn append_inner(
        &self,
        batches: ValidatedBatches,
        opts: &AppendOptions,
        offsets: Offsets,
    ) -> Result<PendingAppend, StorageError> {
        let (mut records, mut headers) = batches.into_parts();
        if headers.is_empty() {
            return Err(StorageError::EmptyAppend);
        }
        if let Some(max) = opts.max_batch_bytes {
            if let Some(h) = headers.iter().find(|h| h.total_len() > max as usize) {
                return Err(StorageError::RecordTooLarge {
                    size: h.total_len(),
                    max,
                });
            }
        }
        if records.len() as u64 > MAX_SEGMENT_BYTES {
            return Err(StorageError::RecordTooLarge {
                size: records.len(),
                max: MAX_SEGMENT_BYTES as u32,
            });
        }
        let mut span: i64 = 0;
        for h in &headers {
            span = span
                .checked_add(h.last_offset_delta as i64 + 1)
                .ok_or(StorageError::OffsetOverflow)?;
        }
        if span > u32::MAX as i64 {
            return Err(StorageError::OffsetOverflow);
        }
        if offsets == Offsets::Keep {
            // A leader's compacted log has gaps where whole batches went: offsets increase,
            // they need not be contiguous.
            for w in headers.windows(2) {
                if w[1].base_offset <= w[0].last_offset() {
                    return Err(StorageError::NotContiguous {
                        expected: w[0].last_offset() + 1,
                        got: w[1].base_offset,
                    });
                }
            }
        }
        if let Some(epoch) = opts.partition_leader_epoch {
            let mut pos = 0;
            for h in headers.iter_mut() {
                let len = h.total_len();
                batch::set_partition_leader_epoch(&mut records[pos..pos + len], epoch);
                h.partition_leader_epoch = epoch;
                pos += len;
            }
        }
        // CRC recomputation is the expensive part of LogAppendTime: do it before locking.
        if let Some(t) = opts.log_append_time_ms {
            let mut pos = 0;
            for h in headers.iter_mut() {
                let len = h.total_len();
                batch::set_log_append_time(&mut records[pos..pos + len], t);
                h.max_timestamp = t;
                h.base_timestamp = t;
                pos += len;
            }
        }
        let now = opts.log_append_time_ms.unwrap_or_else(now_ms);
        let len = records.len() as u64;

        let mut st = self.state.lock();
        if st.closed {
            return Err(StorageError::Closed);
        }
        if self.sync.is_poisoned() {
            return Err(StorageError::Poisoned);
        }
        let (base, next) = match offsets {
            Offsets::Assign => {
                let base = st.leo;
                (
                    base,
                    base.checked_add(span).ok_or(StorageError::OffsetOverflow)?,
                )
            }
            Offsets::Keep => {
                let first = headers[0].base_offset;
                if first < st.leo {
                    return Err(StorageError::NotContiguous {
                        expected: st.leo,
                        got: first,
                    });
                }
                let last = headers[headers.len() - 1].last_offset();
                if last.saturating_sub(first) >= u32::MAX as i64 {
                    return Err(StorageError::OffsetOverflow);
                }
                (first, last + 1)
            }
        };
        // Rolling and growing the file are the steps a full disk fails first (the data itself
        // goes into preallocated space). No offset is assigned yet, so a failure here leaves
        // the log intact: the append fails and the next one tries again.
        match self.make_room(&mut st, len, next, now) {
            Ok(()) => self.sync.note_success(),
            Err(StorageError::Io(e)) => {
                self.sync.note_failure("growing the log", &e);
                return Err(StorageError::Io(e));
            }
            Err(e) => return Err(e),
        }
        let interval = st.config.index_interval_bytes;
        let policy = st.config.fsync;
        let log_start = st.log_start;
        let seg = st.active_mut().ok_or(StorageError::Closed)?;
        if seg.size == 0 {
            seg.roll_ts = Some(now);
        }
        let file_pos = seg.size;
        let end = file_pos + len;
        let mut cur = base;
        let mut pos = 0usize;
        let mut epochs_changed = false;
        for h in &headers {
            let blen = h.total_len();
            match offsets {
                Offsets::Assign => batch::set_base_offset(&mut records[pos..pos + blen], cur),
                Offsets::Keep => cur = h.base_offset,
            }
            epochs_changed |= note_epoch(&mut st.epochs, h.partition_leader_epoch, cur);
            let seg = st.active_mut().ok_or(StorageError::Closed)?;
            seg.note_batch(
                cur,
                file_pos + pos as u64,
                blen as u64,
                h.max_timestamp,
                interval,
            );
            cur += h.last_offset_delta as i64 + 1;
            pos += blen;
        }
        if epochs_changed {
            self.save_epochs(&mut st, Durability::Deferred)?;
        }
        let seg = st.active_mut().ok_or(StorageError::Closed)?;
        seg.size = end;
        seg.next_offset = next;
        let file = Arc::clone(&seg.file);
        st.leo = next;
        self.leo.store(next, Ordering::Release);
        let result = AppendResult {
            base_offset: base,
            last_offset: next - 1,
            log_append_time_ms: opts.log_append_time_ms,
            log_start_offset: log_start,
            batches: headers.len() as u32,
            partition_leader_epoch: opts.partition_leader_epoch,
        };
        if policy != FsyncPolicy::Always && self.sync.inflight.load(Ordering::Acquire) == 0 {
            // Nothing to wait for and nothing of this log queued: write here, under the lock
            // (which keeps this log's writes in offset order), instead of handing off.
            if let Err(e) = self.file_io.write_all_at(&file.file, &records, file_pos) {
                self.sync.poison("segment write", &file.path, &e);
                return Err(StorageError::Io(e));
            }
            self.stats.direct_write(records.len());
            file.readable.fetch_max(end, Ordering::AcqRel);
            self.sync.hw.fetch_max(next, Ordering::AcqRel);
            if let Some((from, to)) = writeback_due(&file, end) {
                let msg = Msg::Writeback {
                    file: Arc::clone(&file),
                    from,
                    to,
                };
                self.writer.send(msg).map_err(|_| StorageError::Closed)?;
            }
            if !file.dirty.swap(true, Ordering::SeqCst) {
                let interval = match policy {
                    FsyncPolicy::Interval { interval_ms } => {
                        Some(Duration::from_millis(interval_ms))
                    }
                    _ => None,
                };
                let msg = Msg::Dirty {
                    log: Arc::clone(&self.sync),
                    file,
                    interval,
                };
                self.writer.send(msg).map_err(|_| StorageError::Closed)?;
            }
            return Ok(PendingAppend {
                result,
                done: Completion::done_ok(),
            });
        }
        let done = Completion::new();
        let req = WriteReq {
            log: Arc::clone(&self.sync),
            file,
            pos: file_pos,
            data: records,
            next_offset: next,
            policy,
            done: Completer(Arc::clone(&done)),
        };
        // Sent under the lock so the writer sees this log's writes in offset order.
        self.sync.inflight.fetch_add(1, Ordering::AcqRel);
        if self.writer.send(Msg::Write(req)).is_err() {
            self.sync.inflight.fetch_sub(1, Ordering::AcqRel);
            return Err(StorageError::Closed);
        }
        drop(st);
        Ok(PendingAppend { result, done })
    }

    /// Makes the active segment able to take `len` more bytes: rolls if needed, then grows the
    /// file so the bytes land in allocated space.
    fn make_room(
        &self,
        st: &mut LogState,
        len: u64,
        next: Offset,
        now: i64,
    ) -> Result<(), StorageError> {
        self.maybe_roll(st, len, next, now)?;
        let prealloc = st.config.preallocate_bytes;
        let seg_bytes = st.config.effective_segment_bytes();
        let seg = st.active_mut().ok_or(StorageError::Closed)?;
        let end = seg.size + len;
        if end > seg.allocated {
            if prealloc > 0 {
                // Grow geometrically (double what the segment has, from MIN_PREALLOCATE_BYTES) up
                // to chunks of `preallocate_bytes`, never past the segment size: a partition that
                // holds a few records reserves kilobytes, not a whole chunk, while a busy one
                // still pays one size change per chunk.
                let chunk = seg
                    .allocated
                    .clamp(MIN_PREALLOCATE_BYTES.min(prealloc), prealloc);
                let target = end.max(seg.allocated + chunk).min(seg_bytes.max(end));
                self.file_io
                    .allocate(&seg.file.file, seg.allocated, target)?;
                seg.allocated = target;
            } else {
                seg.allocated = end;
            }
        }
        Ok(())
    }

    /// Rolls to a new segment at the log end offset if the active one is full, too old, out of
    /// index space or cannot address `next` with 32-bit relative offsets.
    fn maybe_roll(
        &self,
        st: &mut LogState,
        len: u64,
        next: Offset,
        now: i64,
    ) -> Result<(), StorageError> {
        let cfg = &st.config;
        let Some(seg) = st.active() else {
            return Err(StorageError::Closed);
        };
        if seg.size == 0 {
            return Ok(());
        }
        let too_big = seg.size + len > cfg.effective_segment_bytes();
        let too_old = match (cfg.max_segment_ms(), seg.roll_ts) {
            (Some(ms), Some(first)) => now.saturating_sub(first) > ms,
            _ => false,
        };
        let rel_overflow = next.saturating_sub(seg.base) > u32::MAX as i64;
        if too_big || too_old || rel_overflow || seg.indexes_full() {
            self.roll_locked(st)?;
        }
        Ok(())
    }

    fn roll_locked(&self, st: &mut LogState) -> Result<(), StorageError> {
        let new_base = st.leo;
        if st.active().is_none_or(|s| s.base == new_base) {
            return Ok(());
        }
        // Recovery after a crash rebuilds epochs from the tail segment only: an epoch that
        // started in the segment being sealed must be in the synced checkpoint.
        if !st.epochs_synced {
            self.save_epochs(st, Durability::Synced)?;
        }
        let new = Segment::create(&self.dir, new_base, &st.config)?;
        // The new file's directory entry must be durable before data in it is acknowledged.
        checkpoint::sync_dir(&self.dir)?;
        if let Some(old) = st.active_mut() {
            old.seal_indexes()?;
            let msg = Msg::Seal {
                log: Arc::clone(&self.sync),
                file: Arc::clone(&old.file),
                len: old.size,
            };
            self.writer.send(msg).map_err(|_| StorageError::Closed)?;
        }
        st.segments.insert(new_base, new);
        Ok(())
    }

    /// Writes the epoch cache to `leader-epoch-checkpoint`.
    ///
    /// A new epoch noted by an append (once per election) is written `Deferred`: Kafka fsyncs
    /// it there, but the file only has to be right when it is trusted, and it is trusted whole
    /// only after a clean close (which syncs it first). After a crash, open cuts the checkpoint
    /// to the recovered log and adds the epochs of the tail segment's batches, which carry their
    /// epoch; a roll syncs the checkpoint first, so no epoch can start in an older segment and
    /// be missing. A checkpoint lost or emptied by a power loss is rebuilt from every segment.
    /// Synced here, the first append of every partition after a start (which elects anew) cost
    /// two fsyncs under the log's lock, each waiting behind the writeback of dirty data.
    fn save_epochs(&self, st: &mut LogState, durability: Durability) -> io::Result<()> {
        checkpoint::write_leader_epochs(&self.dir, &st.epochs, durability)?;
        st.epochs_synced = durability == Durability::Synced;
        Ok(())
    }

    /// Starts a new segment at the log end offset now (no-op if the active one is empty).
    pub fn roll(&self) -> Result<(), StorageError> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(StorageError::Closed);
        }
        self.roll_locked(&mut st)
    }

    /// Whole batches starting with the batch containing `offset`, up to `max_bytes`; if the
    /// first batch alone is larger than `max_bytes` it is still returned whole (progress is
    /// guaranteed). Batches come from one segment. Empty when `offset` is at (or past) the
    /// high watermark; `Err(OffsetOutOfRange)` if `offset < log_start_offset` or
    /// `offset > log_end_offset`.
    pub fn read(&self, offset: Offset, max_bytes: usize) -> Result<Vec<u8>, StorageError> {
        self.read_batches(offset, max_bytes, true)
    }

    /// Like [`Self::read`], but never returns more than `max_bytes`: if the first batch alone is
    /// larger, the answer is empty. For the partitions of a fetch after the first one that
    /// returned data (Kafka lets only that one exceed the limits, KIP-74).
    pub fn read_within(&self, offset: Offset, max_bytes: usize) -> Result<Vec<u8>, StorageError> {
        self.read_batches(offset, max_bytes, false)
    }

    /// Like [`Self::read`] (or [`Self::read_within`] without `min_one_batch`), but only batches
    /// that start below `upper`: consumers read below the replicated high watermark, which can
    /// be lower than what this log has on disk.
    pub fn read_below(
        &self,
        offset: Offset,
        max_bytes: usize,
        upper: Offset,
        min_one_batch: bool,
    ) -> Result<Vec<u8>, StorageError> {
        self.read_bounded(offset, max_bytes, min_one_batch, Some(upper))
    }

    /// Like [`Self::read_below`], but the batches stay in their segment file: the answer says
    /// where they are, and the caller sends them from there (a consumer's Fetch, with
    /// sendfile) or reads them when it needs them in memory ([`RecordSlice::read_to_vec`]).
    pub fn slice_below(
        &self,
        offset: Offset,
        max_bytes: usize,
        upper: Offset,
        min_one_batch: bool,
    ) -> Result<Option<RecordSlice>, StorageError> {
        let read = Read {
            offset,
            max_bytes,
            min_one_batch,
            upper: Some(upper),
        };
        self.read_with(&read, slice::slice_from)
    }

    fn read_batches(
        &self,
        offset: Offset,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<Vec<u8>, StorageError> {
        self.read_bounded(offset, max_bytes, min_one_batch, None)
    }

    fn read_bounded(
        &self,
        offset: Offset,
        max_bytes: usize,
        min_one_batch: bool,
        upper: Option<Offset>,
    ) -> Result<Vec<u8>, StorageError> {
        let read = Read {
            offset,
            max_bytes,
            min_one_batch,
            upper,
        };
        Ok(self.read_with(&read, read_from)?.unwrap_or_default())
    }

    /// Runs `read` on the segment holding `offset`, then on the segments after it until one
    /// answers (a segment answers `None` when it ends before `offset`, e.g. after a crash cut
    /// it). `None` when there is nothing to read.
    fn read_with<T>(
        &self,
        read: &Read,
        from_segment: ReadSegment<T>,
    ) -> Result<Option<T>, StorageError> {
        let mut after: Option<Offset> = None;
        loop {
            let Some(start) = self.read_start(read.offset, read.upper, after)? else {
                return Ok(None);
            };
            after = Some(start.segment_base);
            if let Some(answer) = from_segment(&start.file, start.position, start.hw, read)? {
                return Ok(Some(answer));
            }
        }
    }

    /// Where a read of `offset` starts: in the segment holding it (`after == None`) or at the
    /// start of the segment after `after`. `None` when there is nothing to read: `offset` at or
    /// past the high watermark (capped at `upper`), or no such segment.
    fn read_start(
        &self,
        offset: Offset,
        upper: Option<Offset>,
        after: Option<Offset>,
    ) -> Result<Option<ReadStart>, StorageError> {
        let mut st = self.state.lock();
        if offset < st.log_start || offset > st.leo {
            return Err(out_of_range(offset, st.log_start, st.leo));
        }
        let hw = self.sync.hw.load(Ordering::Acquire);
        let hw = upper.map_or(hw, |u| hw.min(u));
        if offset >= hw {
            return Ok(None);
        }
        let cfg = st.config.clone();
        let seg = match after {
            None => st.segments.range_mut(..=offset).next_back().map(|(_, s)| s),
            Some(a) => st.segments.range_mut(a + 1..).next().map(|(_, s)| s),
        };
        let Some(seg) = seg else {
            return Ok(None);
        };
        let position = if after.is_none() {
            seg.start_position(offset, &cfg)?
        } else {
            0
        };
        Ok(Some(ReadStart {
            file: Arc::clone(&seg.file),
            segment_base: seg.base,
            position,
            hw,
        }))
    }

    /// The headers of the batches from the one holding `offset` on, below the high watermark,
    /// at most `max_batches`, read without the batches themselves (a scan that needs only the
    /// headers, such as rebuilding producer state, reads ~61 bytes per batch instead of all the
    /// data). From one segment per call, like [`Self::read`]; empty at or past the high
    /// watermark. Same errors as [`Self::read`]. Truncations and deletions wait for it (it reads
    /// the segment through a mapping).
    pub fn read_headers(
        &self,
        offset: Offset,
        max_batches: usize,
    ) -> Result<Vec<BatchHeader>, StorageError> {
        let _meta = self.meta.lock();
        let mut after: Option<Offset> = None;
        loop {
            let Some(start) = self.read_start(offset, None, after)? else {
                return Ok(Vec::new());
            };
            after = Some(start.segment_base);
            let limit = start.file.readable.load(Ordering::Acquire);
            let mut pos = start.position;
            // Mapped, so the data between headers is neither copied nor read (with small
            // batches a windowed `pread` copied the whole log); `meta` keeps truncations out
            // while the mapping lives.
            let map = segment::map_prefix(&start.file.file, limit)?;
            let data: &[u8] = map.as_deref().unwrap_or_default();
            let mut headers = Vec::new();
            while headers.len() < max_batches.max(1) {
                let Some(h) = segment::header_in(data, pos) else {
                    break;
                };
                if h.base_offset >= start.hw {
                    return Ok(headers);
                }
                pos += h.total_len() as u64;
                if h.last_offset() >= offset {
                    headers.push(h);
                }
            }
            if !headers.is_empty() {
                return Ok(headers);
            }
            // Not in this segment (it ends early, e.g. after a crash cut it): try the next.
        }
    }

    /// Removes everything at and above `offset`, which must be the first offset of a batch or
    /// the log end offset (a follower dropping the part of its log that diverges from the
    /// leader's). Waits for queued writes first; the truncation is durable when this returns.
    /// `offset` below the log start is `OffsetOutOfRange` (use [`Self::reset_to`]).
    pub fn truncate_to(&self, offset: Offset) -> Result<(), StorageError> {
        let _meta = self.meta.lock();
        self.flush()?;
        self.forget_recovery_point()?;
        let mut st = self.state.lock();
        if st.closed {
            return Err(StorageError::Closed);
        }
        if offset < st.log_start || offset > st.leo {
            return Err(out_of_range(offset, st.log_start, st.leo));
        }
        if offset == st.leo {
            return Ok(());
        }
        // Find the byte position of `offset` in the segment holding it, before changing anything.
        let cfg = st.config.clone();
        let (&seg_base, seg) = st
            .segments
            .range_mut(..=offset)
            .next_back()
            .ok_or(StorageError::NotABatchBoundary(offset))?;
        let cut = if offset == seg_base {
            0
        } else {
            let mut pos = seg.start_position(offset, &cfg)?;
            let limit = seg.file.readable.load(Ordering::Acquire);
            loop {
                match read_header(&seg.file.file, pos, limit)? {
                    Some(h) if h.base_offset == offset => break pos,
                    Some(h) if h.base_offset < offset => pos += h.total_len() as u64,
                    _ => return Err(StorageError::NotABatchBoundary(offset)),
                }
            }
        };
        let later: Vec<Offset> = st.segments.range(seg_base + 1..).map(|(b, _)| *b).collect();
        for b in later {
            st.segments.remove(&b);
            Segment::delete_files(&self.dir, b);
        }
        let seg = st
            .segments
            .get_mut(&seg_base)
            .ok_or(StorageError::NotABatchBoundary(offset))?;
        let before = seg.aborted.len();
        seg.aborted.retain(|t| t.last_offset < offset);
        if seg.aborted.len() != before {
            txn_index::rewrite(&self.dir, seg_base, &seg.aborted, true)?;
        }
        seg.file.file.set_len(cut)?;
        seg.size = cut;
        seg.allocated = cut;
        seg.next_offset = offset;
        seg.file.readable.store(cut, Ordering::Release);
        seg.reactivate(&cfg)?;
        seg.reindex(&cfg)?;
        seg.file.file.sync_all()?;
        checkpoint::sync_dir(&self.dir)?;
        st.leo = offset;
        self.leo.store(offset, Ordering::Release);
        let hw = self.sync.hw.load(Ordering::Acquire).min(offset);
        self.sync.hw.store(hw, Ordering::Release);
        st.epochs.retain(|&(_, start)| start < offset);
        self.save_epochs(&mut st, Durability::Synced)?;
        drop(st);
        self.cap_cleaned_to(offset)
    }

    /// Drops the whole log and starts an empty one at `offset` (a follower that is behind the
    /// leader's log start starts over there). Durable when this returns.
    pub fn reset_to(&self, offset: Offset) -> Result<(), StorageError> {
        if offset < 0 {
            return Err(StorageError::OffsetOverflow);
        }
        let _meta = self.meta.lock();
        self.flush()?;
        self.forget_recovery_point()?;
        checkpoint::write_log_start(&self.dir, offset)?;
        let mut st = self.state.lock();
        if st.closed {
            return Err(StorageError::Closed);
        }
        let bases: Vec<Offset> = st.segments.keys().copied().collect();
        for b in bases {
            st.segments.remove(&b);
            Segment::delete_files(&self.dir, b);
        }
        let seg = Segment::create(&self.dir, offset, &st.config)?;
        st.segments.insert(offset, seg);
        checkpoint::sync_dir(&self.dir)?;
        st.log_start = offset;
        st.leo = offset;
        self.log_start.store(offset, Ordering::Release);
        self.leo.store(offset, Ordering::Release);
        self.sync.hw.store(offset, Ordering::Release);
        st.epochs.clear();
        self.save_epochs(&mut st, Durability::Synced)?;
        drop(st);
        self.cap_cleaned_to(offset)
    }

    /// Records a transaction aborted by the marker at `txn.last_offset` (already appended) in the
    /// index of the segment holding the marker. Idempotent: an entry for the same producer and
    /// marker is not added twice (recovery re-adds the entries of the markers it reads). Durable
    /// when this returns unless the fsync policy is `never`. A marker the log does not hold
    /// (above its end, below its start) is `OffsetOutOfRange`.
    pub fn append_aborted_txn(&self, txn: AbortedTxn) -> Result<(), StorageError> {
        if !txn.is_plausible() {
            return Err(StorageError::InvalidTxnIndexEntry);
        }
        let mut st = self.state.lock();
        if txn.last_offset < st.log_start || txn.last_offset >= st.leo {
            return Err(out_of_range(txn.last_offset, st.log_start, st.leo));
        }
        let durable = st.config.fsync != FsyncPolicy::Never;
        let Some((&base, seg)) = st.segments.range_mut(..=txn.last_offset).next_back() else {
            return Err(out_of_range(
                txn.last_offset,
                txn.last_offset,
                txn.last_offset,
            ));
        };
        if seg
            .aborted
            .iter()
            .any(|t| t.last_offset == txn.last_offset && t.producer_id == txn.producer_id)
        {
            return Ok(());
        }
        if seg
            .aborted
            .last()
            .is_none_or(|t| t.last_offset <= txn.last_offset)
        {
            txn_index::append(&self.dir, base, &txn, durable)?;
            seg.aborted.push(txn);
        } else {
            // An entry lost in a crash, re-derived after later ones: keep marker order.
            let at = seg
                .aborted
                .partition_point(|t| t.last_offset <= txn.last_offset);
            seg.aborted.insert(at, txn);
            txn_index::rewrite(&self.dir, base, &seg.aborted, durable)?;
        }
        Ok(())
    }

    /// The aborted transactions a read of `[from, upper)` must report (Kafka's fetch
    /// `aborted_transactions`): those whose marker is at or after `from` and whose first offset
    /// is below `upper`. Reads only the in-memory indexes of the segments from the one holding
    /// `from` on, never the log. A transaction's marker may sit in a segment after `upper`, so
    /// the walk goes on (as Kafka's) until an entry's last stable offset reaches `upper`: a
    /// transaction open below `upper` would have held that LSO back, so none aborted later can
    /// start below `upper`.
    pub fn aborted_txns(&self, from: Offset, upper: Offset) -> Vec<AbortedTxn> {
        let st = self.state.lock();
        let start = st
            .segments
            .range(..=from)
            .next_back()
            .map_or(Offset::MIN, |(&b, _)| b);
        let mut out = Vec::new();
        for seg in st.segments.range(start..).map(|(_, s)| s) {
            out.extend(
                seg.aborted
                    .iter()
                    .filter(|t| t.last_offset >= from && t.first_offset < upper),
            );
            if seg.aborted.iter().any(|t| t.last_stable_offset >= upper) {
                break;
            }
        }
        out
    }

    /// Every aborted-transaction index entry of the log, oldest marker first (tests, tools).
    pub fn all_aborted_txns(&self) -> Vec<AbortedTxn> {
        let st = self.state.lock();
        st.segments
            .values()
            .flat_map(|s| s.aborted.iter().copied())
            .collect()
    }

    /// The first offset that may be read.
    pub fn log_start_offset(&self) -> Offset {
        self.log_start.load(Ordering::Acquire)
    }

    /// One past the last assigned offset (includes appends not yet durable).
    pub fn log_end_offset(&self) -> Offset {
        self.leo.load(Ordering::Acquire)
    }

    /// One past the last offset that is readable: written, and durable under `fsync=always`.
    pub fn high_watermark(&self) -> Offset {
        self.sync.hw.load(Ordering::Acquire)
    }

    /// Whether a failed write or fsync has poisoned this log.
    pub fn is_poisoned(&self) -> bool {
        self.sync.is_poisoned()
    }

    /// Why appends to this log fail right now: `None` while they succeed. A failure that is not
    /// poisoning (the disk was full when the log had to grow) clears with the next append that
    /// gets past that step.
    pub fn write_failure(&self) -> Option<WriteFailure> {
        self.sync.failure()
    }

    /// First record at or after `ts_ms`: `(offset, timestamp)`. For uncompressed CreateTime
    /// batches the answer is record-level; otherwise it is the base offset and max timestamp of
    /// the first batch whose max timestamp is `>= ts_ms`. `None` if no readable batch
    /// qualifies.
    pub fn offset_for_timestamp(&self, ts_ms: i64) -> Result<Option<(Offset, i64)>, StorageError> {
        let Some(found) = self.find_batch_stamped_from(ts_ms)? else {
            return Ok(None);
        };
        let (h, log_start) = (&found.header, found.log_start);
        let mut buf = vec![0u8; h.total_len()];
        found.file.file.read_exact_at(&mut buf, found.position)?;
        Ok(Some(
            batch::first_record_at_or_after(&buf, ts_ms)
                .filter(|(o, _)| *o >= log_start)
                .unwrap_or((h.base_offset.max(log_start), h.max_timestamp)),
        ))
    }

    /// The base offset of the first readable batch whose max timestamp is `>= ts_ms` (clamped
    /// to the log start), or `None` if no batch below the high watermark has one. Unlike
    /// [`Self::offset_for_timestamp`] it reads batch headers only: one time index lookup and
    /// the headers from the indexed position on.
    pub fn first_batch_stamped_from(&self, ts_ms: i64) -> Result<Option<Offset>, StorageError> {
        Ok(self
            .find_batch_stamped_from(ts_ms)?
            .map(|f| f.header.base_offset.max(f.log_start)))
    }

    /// The first readable batch whose max timestamp is `>= ts_ms`.
    fn find_batch_stamped_from(&self, ts_ms: i64) -> Result<Option<FoundBatch>, StorageError> {
        // Segments are visited one at a time, each lookup under the lock and each scan
        // outside it; normally the first segment whose max timestamp qualifies has the answer.
        let mut after: Option<Offset> = None;
        loop {
            let (file, mut pos, hw, log_start, base) = {
                let mut st = self.state.lock();
                let hw = self.sync.hw.load(Ordering::Acquire);
                let log_start = st.log_start;
                let cfg = st.config.clone();
                let from_base = match after {
                    Some(a) => a + 1,
                    None => st
                        .segments
                        .range(..=log_start)
                        .next_back()
                        .map_or(log_start, |(b, _)| *b),
                };
                let Some(seg) = st
                    .segments
                    .range_mut(from_base..)
                    .map(|(_, s)| s)
                    .find(|s| s.max_ts >= ts_ms)
                else {
                    return Ok(None);
                };
                if seg.base >= hw {
                    return Ok(None);
                }
                let from = seg
                    .time_index
                    .lookup_before(ts_ms)
                    .map_or(seg.base, |(_, rel)| seg.base + rel as i64);
                let pos = seg.start_position(from.max(log_start), &cfg)?;
                (Arc::clone(&seg.file), pos, hw, log_start, seg.base)
            };
            after = Some(base);
            let limit = file.readable.load(Ordering::Acquire);
            while let Some(h) = read_header(&file.file, pos, limit)? {
                if h.base_offset >= hw {
                    return Ok(None);
                }
                if h.max_timestamp >= ts_ms && h.last_offset() >= log_start {
                    return Ok(Some(FoundBatch {
                        file,
                        position: pos,
                        header: h,
                        log_start,
                    }));
                }
                pos += h.total_len() as u64;
            }
        }
    }

    /// The record with the largest timestamp (Kafka's ListOffsets `MAX_TIMESTAMP`): `(offset,
    /// timestamp)`, the earliest such record if several share it. `None` for an empty log, or
    /// if that record is not readable yet (above the high watermark).
    ///
    /// Costs one index lookup and a read of the batch holding it, whatever the log's size: each
    /// segment knows its largest timestamp and where the batch holding it is. Within the batch
    /// the record is found as Kafka does: with LogAppendTime every record carries the batch's
    /// time, so it is the first; otherwise the first record stamped with the batch's maximum.
    /// Records of compressed batches are not decoded here: their first record when it carries
    /// the maximum (its timestamp is the batch's base timestamp), else the batch's last record.
    pub fn max_timestamp(&self) -> Result<Option<(Offset, i64)>, StorageError> {
        let (file, start, max_ts, hw) = {
            let mut st = self.state.lock();
            let hw = self.sync.hw.load(Ordering::Acquire);
            let cfg = st.config.clone();
            // The first segment with the largest maximum, as Kafka picks it.
            let mut best: Option<&mut Segment> = None;
            for seg in st.segments.values_mut() {
                if seg.size > 0 && best.as_ref().is_none_or(|b| seg.max_ts > b.max_ts) {
                    best = Some(seg);
                }
            }
            let Some(seg) = best else {
                return Ok(None);
            };
            let hint = seg.offset_of_max_ts.saturating_sub(1).max(seg.base);
            let start = if seg.offset_of_max_ts > seg.base {
                seg.start_position(hint, &cfg)?
            } else {
                0
            };
            (Arc::clone(&seg.file), start, seg.max_ts, hw)
        };
        let limit = file.readable.load(Ordering::Acquire);
        // From the hint first; from the segment start if the hint was stale (a rebuilt index).
        for from in [start, 0] {
            let mut pos = from;
            while let Some(h) = read_header(&file.file, pos, limit)? {
                if h.max_timestamp == max_ts {
                    if h.base_offset >= hw {
                        return Ok(None);
                    }
                    let mut buf = vec![0u8; h.total_len()];
                    file.file.read_exact_at(&mut buf, pos)?;
                    return Ok(Some((batch::offset_of_max_timestamp(&buf, &h), max_ts)));
                }
                pos += h.total_len() as u64;
            }
            if from == 0 {
                break;
            }
        }
        Ok(None)
    }

    /// Advances the log start offset to `offset` (Kafka DeleteRecords), persists it and deletes
    /// whole segments below it. Returns the new log start offset. `offset` above the high
    /// watermark (or negative) is `OffsetOutOfRange`.
    pub fn delete_records_before(&self, offset: Offset) -> Result<Offset, StorageError> {
        let _meta = self.meta.lock();
        {
            let st = self.state.lock();
            let hw = self.sync.hw.load(Ordering::Acquire);
            if offset < 0 || offset > hw {
                return Err(out_of_range(offset, st.log_start, st.leo));
            }
            if offset <= st.log_start {
                return Ok(st.log_start);
            }
        }
        // Persist first: once the new start is durable, deleting the files is merely cleanup
        // that recovery redoes if interrupted.
        checkpoint::write_log_start(&self.dir, offset)?;
        let victims = {
            let mut st = self.state.lock();
            st.log_start = st.log_start.max(offset);
            self.log_start.store(st.log_start, Ordering::Release);
            if trim_epochs_to_start(&mut st) {
                self.save_epochs(&mut st, Durability::Synced)?;
            }
            let start = st.log_start;
            self.take_segments_below(&mut st, |_, next_base| next_base <= start)
        };
        self.delete_segment_files(victims);
        Ok(self.log_start_offset())
    }

    /// Removes from the map, oldest first, the sealed segments for which `pred(segment,
    /// next_base)` holds, stopping at the first that does not. Never the active segment, never
    /// one holding data above the high watermark.
    fn take_segments_below(
        &self,
        st: &mut LogState,
        mut pred: impl FnMut(&Segment, Offset) -> bool,
    ) -> Vec<Offset> {
        let hw = self.sync.hw.load(Ordering::Acquire);
        let bases: Vec<Offset> = st.segments.keys().copied().collect();
        let mut victims = Vec::new();
        for w in bases.windows(2) {
            let (b, next_base) = (w[0], w[1]);
            let Some(seg) = st.segments.get(&b) else {
                break;
            };
            if next_base > hw || !pred(seg, next_base) {
                break;
            }
            victims.push(b);
        }
        for b in &victims {
            st.segments.remove(b);
        }
        victims
    }

    fn delete_segment_files(&self, victims: Vec<Offset>) {
        for b in victims {
            Segment::delete_files(&self.dir, b);
        }
    }

    /// Deletes whole segments that are past `retention.ms` (by their largest timestamp) or that
    /// keep the log above `retention.bytes`, oldest first, up to `committed_end` (exclusive: the
    /// replicated high watermark; records above it may still be needed by the replicas); advances
    /// and persists the log start offset. Returns the number deleted.
    ///
    /// As Kafka: when every segment qualifies, the active one included (non-empty and wholly
    /// committed), the log rolls first and the old active segment goes too, so an idle topic's
    /// expired records do not stay for want of a newer segment; the log is then empty, its start
    /// at its end.
    pub fn enforce_retention(
        &self,
        now_ms: i64,
        committed_end: Offset,
    ) -> Result<u64, StorageError> {
        self.enforce_retention_rolling(now_ms, committed_end, true)
    }

    /// [`Self::enforce_retention`]; `may_roll` is false on the pass after a roll, so appends
    /// racing with retention cannot make it roll again and again.
    fn enforce_retention_rolling(
        &self,
        now_ms: i64,
        committed_end: Offset,
        may_roll: bool,
    ) -> Result<u64, StorageError> {
        let meta = self.meta.lock();
        let (roll_first, plan) = {
            let st = self.state.lock();
            let cfg = &st.config;
            let hw = self.sync.hw.load(Ordering::Acquire).min(committed_end);
            let mut remaining: u64 = st.segments.values().map(|s| s.size).sum();
            // Each segment with the offset its records end before: the next segment's base, or
            // the log end for the active one.
            let mut bounds: Vec<(Offset, Offset)> = st
                .segments
                .keys()
                .zip(st.segments.keys().skip(1).chain(std::iter::once(&st.leo)))
                .map(|(&b, &next)| (b, next))
                .collect();
            if st.active().is_some_and(|a| a.base == st.leo) {
                // An empty active segment holds nothing to delete.
                bounds.pop();
            }
            let mut count = 0usize;
            for &(base, next) in &bounds {
                let Some(seg) = st.segments.get(&base) else {
                    break;
                };
                if next > hw {
                    break;
                }
                let by_start = next <= st.log_start;
                // Kafka's rule: a segment whose batches carry no timestamp (-1) ages from the
                // file's last modification, never from "the epoch".
                let seg_ts = if seg.max_ts >= 0 {
                    seg.max_ts
                } else {
                    modified_ms(&seg.file.file).unwrap_or(now_ms)
                };
                let by_time = cfg
                    .retention_ms
                    .is_some_and(|r| r >= 0 && now_ms.saturating_sub(seg_ts) > r);
                let by_bytes = cfg
                    .retention_bytes
                    .is_some_and(|r| remaining.saturating_sub(seg.size) >= r);
                if !(by_start || by_time || by_bytes) {
                    break;
                }
                remaining -= seg.size;
                count += 1;
            }
            let roll_first = may_roll && count > 0 && count == st.segments.len();
            count = count.min(st.segments.len() - 1);
            let plan = bounds
                .get(count.saturating_sub(1))
                .filter(|_| count > 0)
                .map(|&(_, next)| (count, next.max(st.log_start)));
            (roll_first, plan)
        };
        if roll_first {
            // The active segment goes too: it becomes a sealed one first (a new, empty active
            // segment starts at the log end), then the same rules delete it.
            drop(meta);
            self.roll()?;
            return self.enforce_retention_rolling(now_ms, committed_end, false);
        }
        let Some((count, new_start)) = plan else {
            return Ok(0);
        };
        if new_start > self.log_start_offset() {
            checkpoint::write_log_start(&self.dir, new_start)?;
        }
        let victims = {
            let mut st = self.state.lock();
            st.log_start = st.log_start.max(new_start);
            self.log_start.store(st.log_start, Ordering::Release);
            if trim_epochs_to_start(&mut st) {
                self.save_epochs(&mut st, Durability::Synced)?;
            }
            let mut n = 0;
            self.take_segments_below(&mut st, |_, next_base| {
                n += 1;
                n <= count && next_base <= new_start
            })
        };
        let deleted = victims.len() as u64;
        self.delete_segment_files(victims);
        Ok(deleted)
    }

    /// Records how far the active segment has been written (its recovery point, see
    /// `checkpoint::RecoveryPoint`), so that recovery after a crash of the process checks only
    /// the data written after it. Call now and then (the broker does, every second): the data
    /// written since the last call is what a recovery reads whole. Cheap when nothing changed.
    /// Returns whether a new point was written.
    pub fn checkpoint_recovery_point(&self) -> Result<bool, StorageError> {
        let Some(boot_id) = checkpoint::boot_id() else {
            return Ok(false);
        };
        // Under `meta`: a truncation (which removes the point first) cannot run in between.
        // Not waited for: the broker's timers call this every second, and a log busy with a
        // truncation or a deletion (which can wait on an fsync) gets its point at the next call.
        let Some(_meta) = self.meta.try_lock() else {
            return Ok(false);
        };
        let point = {
            let st = self.state.lock();
            if st.closed {
                return Ok(false);
            }
            match st.active() {
                Some(seg) => (seg.base, seg.file.readable.load(Ordering::Acquire)),
                None => return Ok(false),
            }
        };
        let mut written = self.recovery_point.lock();
        if *written == Some(point) || point.1 == 0 {
            return Ok(false);
        }
        checkpoint::write_recovery_point(
            &self.dir,
            &checkpoint::RecoveryPoint {
                boot_id: boot_id.to_string(),
                segment_base: point.0,
                position: point.1,
            },
        )?;
        *written = Some(point);
        Ok(true)
    }

    /// Removes the recovery point (call with `meta` held, before changing data below it).
    fn forget_recovery_point(&self) -> Result<(), StorageError> {
        checkpoint::remove_recovery_point(&self.dir)?;
        *self.recovery_point.lock() = None;
        Ok(())
    }

    /// What opening this log had to recover (all zero after a clean shutdown).
    pub fn recovered(&self) -> Recovered {
        self.recovered
    }

    /// Forces everything appended so far to stable storage (whatever the fsync policy).
    pub fn flush(&self) -> Result<(), StorageError> {
        let done = Completion::new();
        self.writer
            .send(Msg::Flush {
                log: Arc::clone(&self.sync),
                done: Completer(Arc::clone(&done)),
            })
            .map_err(|_| StorageError::Closed)?;
        done.wait()
    }

    /// Bytes in all segments (logical sizes, excluding preallocated space).
    pub fn size_bytes(&self) -> u64 {
        self.state.lock().segments.values().map(|s| s.size).sum()
    }

    /// Number of segments (including the active one).
    pub fn segment_count(&self) -> usize {
        self.state.lock().segments.len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<Offset> {
        self.state.lock().segments.keys().copied().collect()
    }

    /// Replaces the configuration. Takes effect for later appends, rolls and retention runs.
    pub fn set_config(&self, config: LogConfig) {
        self.state.lock().config = config;
    }

    /// The current configuration.
    pub fn config(&self) -> LogConfig {
        self.state.lock().config.clone()
    }

    /// Stops accepting appends, waits for queued writes, syncs everything and leaves the
    /// files so that the next open needs no recovery (trimmed, indexes sealed, clean marker).
    /// With `clean == false` only the first two steps happen (crash simulation in tests).
    pub(crate) fn close(&self, clean: bool) -> Result<(), StorageError> {
        {
            let mut st = self.state.lock();
            if st.closed {
                return Ok(());
            }
            st.closed = true;
        }
        let flushed = self.flush();
        if !clean {
            return Ok(());
        }
        flushed?;
        let mut st = self.state.lock();
        if self.sync.is_poisoned() {
            return Err(StorageError::Poisoned);
        }
        if let Some(seg) = st.active_mut() {
            seg.seal_indexes()?;
            seg.file.file.set_len(seg.size)?;
            seg.allocated = seg.size;
            seg.file.file.sync_all()?;
        }
        // A clean open trusts the checkpoint without reading the tail.
        if !st.epochs_synced {
            self.save_epochs(&mut st, Durability::Synced)?;
        }
        checkpoint::mark_clean(&self.dir, self.generation)?;
        Ok(())
    }

    /// Whether the log has been closed.
    pub fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// Test hook: the active segment's data file path.
    #[doc(hidden)]
    pub fn active_segment_path(&self) -> Option<PathBuf> {
        let st = self.state.lock();
        st.active()
            .map(|s| self.dir.join(segment::file_name(s.base, LOG_EXT)))
    }

    /// Test hook: whether `leader-epoch-checkpoint` on disk is the epoch cache, fsynced.
    #[doc(hidden)]
    pub fn epochs_synced(&self) -> bool {
        self.state.lock().epochs_synced
    }

    /// Size of the segment file region of the active segment that recovery would consider.
    #[doc(hidden)]
    pub fn active_segment_size(&self) -> u64 {
        self.state.lock().active().map_or(0, |s| s.size)
    }
}

/// Reads whole batches from `file` starting with the one containing `offset`, scanning from
/// `pos`. `None` if the segment has no such batch (the caller moves to the next segment).
fn read_from(
    file: &Arc<SegmentFile>,
    mut pos: u64,
    hw: Offset,
    read: &Read,
) -> io::Result<Option<Vec<u8>>> {
    let Read {
        offset,
        max_bytes,
        min_one_batch,
        ..
    } = *read;
    let limit = file.readable.load(Ordering::Acquire);
    let first = loop {
        let Some(h) = read_header(&file.file, pos, limit)? else {
            return Ok(None);
        };
        if h.base_offset >= hw {
            return Ok(Some(Vec::new()));
        }
        if h.last_offset() >= offset {
            break h;
        }
        pos += h.total_len() as u64;
    };
    if !min_one_batch && first.total_len() > max_bytes {
        return Ok(Some(Vec::new()));
    }
    let want = (max_bytes as u64)
        .max(first.total_len() as u64)
        .min(limit - pos);
    let mut buf = vec![0u8; want as usize];
    file.file.read_exact_at(&mut buf, pos)?;
    let mut end = 0usize;
    while end + BATCH_HEADER_LEN <= buf.len() {
        let Ok(h) = BatchHeader::parse(&buf[end..]) else {
            break;
        };
        let t = h.total_len();
        if end + t > buf.len() || !slice::batch_belongs(&h, end, max_bytes, hw) {
            break;
        }
        end += t;
    }
    buf.truncate(end);
    Ok(Some(buf))
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("name", &self.name)
            .field("log_start", &self.log_start_offset())
            .field("hw", &self.high_watermark())
            .field("leo", &self.log_end_offset())
            .finish()
    }
}
