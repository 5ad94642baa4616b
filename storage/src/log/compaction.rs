//! Key-based compaction of a log (`cleanup.policy=compact`, Kafka's log cleaner): for each key
//! only the latest record stays; records of aborted transactions and records without a key go.
//! Tombstones (null values) and the markers of transactions the cleaner emptied go
//! `delete.retention.ms` after the pass that first kept them: that pass stamps the time in their
//! batch (KIP-534's delete horizon), and a later pass, due then, removes them. So a consumer
//! that starts reading within that time sees every delete, whatever the records' timestamps.
//!
//! A pass (see [`Log::compact`]) reads the *dirty* part of the cleanable range (from the cleaner
//! checkpoint on) into a bounded map of key hash → latest offset, then rewrites every sealed
//! segment below the map's end without the records that a later one of their key supersedes.
//! The log is then clean below the map's end (the checkpoint, a side file).
//!
//! It never changes an offset: a record that stays keeps its offset and its batch's offsets; a
//! batch left with no record goes (a gap in the offsets, as in Kafka: readers and followers
//! move on to the next batch), except the last batch of each producer (its header alone keeps
//! the producer's sequence, as Kafka keeps it). A segment left with no batch goes too, unless it
//! is the log's first (its offsets are then a gap up to the next segment).
//! A rewritten segment may so end before the next one starts; recovery knows such segments
//! (the checkpoint's `rewritten_below`) and never lowers the log end below offsets given out.
//! It never touches the active segment, anything at or above the stable end the owner passes
//! (the last stable offset, below the high watermark), nor control batches other than
//! transaction markers.
//!
//! Consecutive small segments are rewritten into one ([`group_segments`], Kafka's grouping by
//! size), so that a compacted log does not keep a file per roll. A rewrite is swapped in
//! crash-safely: the new data goes to `<base>.log.cleaned` (the group's first base), is fsynced
//! and renamed to `<base>.log.swap` (the commit point), the other members' files and the old
//! indexes are removed and the swap file renamed over `<base>.log`. Opening a log finishes an
//! interrupted swap and removes a half-written `.cleaned` file ([`finish_interrupted_swaps`]).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{modified_ms, Log};
use crate::batch::BatchHeader;
use crate::checkpoint::{self, Durability};
use crate::config::{CompactionConfig, LogConfig};
use crate::records::{self, Horizon, Retained, TxnMarkerKind};
use crate::segment::{self, Gaps, Segment, SegmentFile, LOG_EXT};
use crate::txn_index::AbortedTxn;
use crate::{Offset, StorageError};

/// The side file holding the offset below which the log is clean (Kafka's cleaner checkpoint).
const CLEANED_TO_FILE: &str = "cleaner-offset-checkpoint";
/// A rewritten segment being written.
const CLEANED_EXT: &str = "log.cleaned";
/// A rewritten segment, complete and synced, about to replace the segment of its base offset.
const SWAP_EXT: &str = "log.swap";

/// Keys a pass remembers (Kafka bounds its map by `log.cleaner.dedupe.buffer.size`): a 16-byte
/// hash and an offset each, about 50 MiB at most. A dirty part with more keys is cleaned over
/// several passes.
pub(crate) const MAX_KEYS_PER_PASS: usize = 1 << 20;

/// The most a batch's records may take decompressed when the cleaner reads them. A batch over it
/// (or one that cannot be read) keeps all its records (it supersedes nothing it was not read
/// far enough to map).
const MAX_DECOMPRESSED_BATCH_BYTES: usize = 64 << 20;

/// What a compaction pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactionStats {
    /// Segments rewritten (those from which nothing went are left as they are).
    pub segments_rewritten: usize,
    /// Bytes of the rewritten segments before and after.
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Records removed.
    pub records_removed: u64,
    /// The log is clean below this offset now (the pass's map ended there).
    pub cleaned_to: Offset,
}

/// A sealed segment as the pass sees it.
struct Cleanable {
    base: Offset,
    end: Offset,
    size: u64,
    /// Newest timestamp (the file's modification time if its batches carry none).
    newest_ms: i64,
    file: Arc<SegmentFile>,
    /// Entries in its offset index (a bound on what a merged segment's index takes).
    index_entries: usize,
    /// Whether its transaction index names aborted transactions (it then starts a group: the
    /// merged segment keeps the first member's transaction index).
    has_aborted: bool,
}

/// Key hashes are already uniform: hashing them again would only cost time.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

/// Key hash → offset of the latest record with that key in the dirty part.
type KeyMap = HashMap<u128, Offset, BuildHasherDefault<PassThrough>>;

fn key_hash(key: &[u8]) -> u128 {
    twox_hash::XxHash3_128::oneshot(key)
}

/// The aborted transactions of the log, by producer: `(first offset, marker offset)`.
struct Aborted(HashMap<i64, Vec<(Offset, Offset)>>);

impl Aborted {
    fn new(txns: Vec<AbortedTxn>) -> Self {
        let mut by_producer: HashMap<i64, Vec<(Offset, Offset)>> = HashMap::new();
        for t in txns {
            by_producer
                .entry(t.producer_id)
                .or_default()
                .push((t.first_offset, t.last_offset));
        }
        Aborted(by_producer)
    }

    /// Whether the transactional batch of `producer_id` at `base` belongs to an aborted
    /// transaction.
    fn covers(&self, producer_id: i64, base: Offset) -> bool {
        self.0
            .get(&producer_id)
            .is_some_and(|v| v.iter().any(|&(first, last)| first <= base && base <= last))
    }
}

/// The cleaner's checkpoint (a side file: two offsets and a time).
#[derive(Clone, Copy, Debug, Default)]
struct Checkpoint {
    /// The log is clean below it: a pass maps the keys from there on.
    cleaned_to: Offset,
    /// Segments below it may have been rewritten (written before a pass rewrites any), so
    /// their offsets may have gaps.
    rewritten_below: Offset,
    /// The earliest delete horizon (KIP-534) of a batch the last pass kept with something that
    /// may go once it has passed (a tombstone, the marker of an emptied transaction): a pass is
    /// due then, however little is dirty.
    next_horizon_ms: Option<i64>,
}

fn read_checkpoint(dir: &Path) -> Checkpoint {
    let text = fs::read_to_string(dir.join(CLEANED_TO_FILE)).unwrap_or_default();
    let mut fields = text.split_whitespace().map(|f| f.parse::<i64>().ok());
    let cleaned_to = fields.next().flatten().unwrap_or(0);
    let rewritten_below = fields
        .next()
        .flatten()
        .unwrap_or(cleaned_to)
        .max(cleaned_to);
    // Absent in checkpoints written before horizons, "none" when no batch waits for one.
    let next_horizon_ms = fields.next().flatten();
    Checkpoint {
        cleaned_to,
        rewritten_below,
        next_horizon_ms,
    }
}

/// How a scan that checks the batches of the segment at `base` must treat offset gaps.
pub(super) fn gaps_in(dir: &Path, base: Offset) -> Gaps {
    if base < read_checkpoint(dir).rewritten_below {
        Gaps::Allowed
    } else {
        Gaps::Refused
    }
}

/// Completes the segment swaps a crash interrupted and removes half-written rewrites. Called
/// by [`Log::open`] before it lists the segments. A swap file that merged several segments
/// replaces those its batches reach into: a later member whose every batch went stays as it
/// was (superseded records come back, to be cleaned again; no offset is served twice).
pub(super) fn finish_interrupted_swaps(dir: &Path) -> io::Result<()> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        if let Ok(name) = entry?.file_name().into_string() {
            names.push(name);
        }
    }
    let log_bases: Vec<Offset> = names
        .iter()
        .filter_map(|n| segment::parse_file_name(n, LOG_EXT))
        .collect();
    for name in &names {
        let path = dir.join(name);
        if segment::parse_file_name(name, CLEANED_EXT).is_some() {
            fs::remove_file(path)?;
        } else if let Some(base) = segment::parse_file_name(name, SWAP_EXT) {
            // The swap file was complete and synced before it got its name.
            let end = batches_end(&path, base)?;
            for &other in log_bases.iter().filter(|&&b| b > base && b < end) {
                Segment::delete_files(dir, other);
            }
            Segment::delete_indexes(dir, base)?;
            fs::rename(&path, dir.join(segment::file_name(base, LOG_EXT)))?;
            tracing::info!(dir = %dir.display(), base, end, "finished an interrupted compaction swap");
        }
    }
    checkpoint::sync_dir(dir)
}

/// One past the last offset of the batches in the segment file at `path` (`base` if none).
fn batches_end(path: &Path, base: Offset) -> io::Result<Offset> {
    let file = fs::File::open(path)?;
    let len = file.metadata()?.len();
    let map = segment::map_prefix(&file, len)?;
    let data: &[u8] = map.as_deref().unwrap_or_default();
    Ok(segment::batches(data)
        .last()
        .map_or(base, |(h, _)| h.last_offset() + 1))
}

impl Log {
    /// One compaction pass, if the log is compacted (`LogConfig::compaction`) and due: its
    /// dirty part is at least `min.cleanable.dirty.ratio` of the cleanable bytes, or older than
    /// `max.compaction.lag.ms`, or a delete horizon the last pass kept a batch for has passed.
    /// Cleanable are the sealed segments below `stable_end` (the
    /// partition's last stable offset) whose records are all older than
    /// `min.compaction.lag.ms`. `None` when nothing was due.
    ///
    /// Passes over one log run one at a time. The reading and writing happen under no lock:
    /// appends, reads, retention and truncations go on (none of them changes a sealed
    /// segment's bytes; they may only delete whole segments). The log's metadata lock is taken
    /// briefly to look at the segments and for each swap, which happens only if the segment is
    /// still the one read; reads of a segment being replaced see the old file or the new one.
    pub fn compact(
        &self,
        now_ms: i64,
        stable_end: Offset,
    ) -> Result<Option<CompactionStats>, StorageError> {
        let _one_pass = self.cleaning.lock();
        let (config, cleanable, log_start) = {
            let _meta = self.meta.lock();
            let st = self.state.lock();
            if st.closed {
                return Err(StorageError::Closed);
            }
            let Some(config) = st.config.compaction else {
                return Ok(None);
            };
            let upper = self.sync.hw.load(Ordering::Acquire).min(stable_end);
            let sealed = st.segments.len().saturating_sub(1);
            let mut cleanable = Vec::new();
            for seg in st.segments.values().take(sealed) {
                // A segment the cleaner emptied holds nothing young: its file's fresh
                // modification time must not hold back the segments after it.
                let newest_ms = if seg.size == 0 {
                    i64::MIN
                } else if seg.max_ts >= 0 {
                    seg.max_ts
                } else {
                    modified_ms(&seg.file.file).unwrap_or(now_ms)
                };
                if seg.next_offset > upper
                    || now_ms.saturating_sub(newest_ms) < config.min_compaction_lag_ms
                {
                    break;
                }
                cleanable.push(Cleanable {
                    base: seg.base,
                    end: seg.next_offset,
                    size: seg.size,
                    newest_ms,
                    file: Arc::clone(&seg.file),
                    index_entries: seg.index.0.len(),
                    has_aborted: !seg.aborted.is_empty(),
                });
            }
            (config, cleanable, st.log_start)
        };
        let checkpoint = read_checkpoint(&self.dir);
        let cleaned_to = checkpoint.cleaned_to.max(log_start);
        // Something kept until its delete horizon may go now, even if nothing is dirty.
        let horizon_passed = checkpoint.next_horizon_ms.is_some_and(|at| now_ms >= at)
            && cleanable.iter().any(|s| s.base < cleaned_to);
        if !horizon_passed && !is_due(&config, &cleanable, cleaned_to, now_ms) {
            return Ok(None);
        }
        let aborted = Aborted::new(self.all_aborted_txns());
        let (keys, map_end) = map_dirty_keys(&cleanable, cleaned_to, &aborted)?;
        let last_of_producer = last_batch_of_each_producer(&cleanable)?;
        if map_end <= cleaned_to && !horizon_passed {
            return Ok(None);
        }
        let mut stats = CompactionStats {
            cleaned_to: map_end,
            ..CompactionStats::default()
        };
        // Before any segment changes: recovery must know that segments below `map_end` may
        // have gaps.
        {
            let _meta = self.meta.lock();
            let before = read_checkpoint(&self.dir);
            self.write_checkpoint(Checkpoint {
                rewritten_below: before.rewritten_below.max(map_end),
                ..before
            })?;
        }
        let pass = Pass {
            map_end,
            aborted: &aborted,
            last_of_producer: &last_of_producer,
            now_ms,
            new_horizon_ms: now_ms.saturating_add(config.delete_retention_ms),
        };
        // Kafka's cleaner keeps the latest record of each key, and no record without a key.
        let superseded = |offset: Offset, key: Option<&[u8]>| -> bool {
            key.is_none_or(|key| {
                keys.get(&key_hash(key))
                    .is_some_and(|&latest| latest > offset)
            })
        };
        let mut walk = Walk::default();
        let mut complete = true;
        let below_map_end: Vec<&Cleanable> =
            cleanable.iter().filter(|s| s.base < map_end).collect();
        for group in group_segments(&below_map_end, &self.config()) {
            complete &= self.rewrite_group(&group, &pass, superseded, &mut walk, &mut stats)?;
        }
        // A segment deleted or reset under the pass (retention, DeleteRecords, a follower
        // starting over) leaves the checkpoint where it was: the log changed under the map.
        if complete {
            let _meta = self.meta.lock();
            let now = read_checkpoint(&self.dir);
            if now.rewritten_below >= map_end {
                self.write_checkpoint(Checkpoint {
                    cleaned_to: map_end,
                    rewritten_below: now.rewritten_below,
                    next_horizon_ms: walk.next_horizon_ms,
                })?;
            }
        }
        Ok(Some(stats))
    }

    fn write_checkpoint(&self, c: Checkpoint) -> Result<(), StorageError> {
        let horizon = c
            .next_horizon_ms
            .map_or_else(|| "none".to_string(), |at| at.to_string());
        let text = format!("{} {} {horizon}\n", c.cleaned_to, c.rewritten_below);
        self.write_side_file(CLEANED_TO_FILE, text.as_bytes(), Durability::Synced)
    }

    /// Lowers the cleaner checkpoint to `end` (the log was truncated or reset there: what comes
    /// after is new and dirty). Called under the metadata lock.
    pub(super) fn cap_cleaned_to(&self, end: Offset) -> Result<(), StorageError> {
        let c = read_checkpoint(&self.dir);
        if c.rewritten_below > end {
            self.write_checkpoint(Checkpoint {
                cleaned_to: c.cleaned_to.min(end),
                rewritten_below: end,
                ..c
            })?;
        }
        Ok(())
    }

    /// Rewrites a run of sealed segments (see [`group_segments`]) into one, at the first
    /// member's base offset, without the records `superseded` names, those of aborted
    /// transactions and tombstones whose batch's delete horizon has passed (below the pass's map
    /// end; a batch at or after it is copied whole), without the batches left empty that need
    /// not stay and without the markers of transactions left with no batch once their
    /// horizon has passed; batches keeping a tombstone or such a marker get a horizon at their
    /// first cleaning (KIP-534). Swaps the new file in for the first member and deletes the
    /// others; leaves a lone segment alone when nothing changes. Returns false if a member was
    /// no longer the log's when the new file was ready (deleted meanwhile): the new file is then
    /// thrown away.
    fn rewrite_group(
        &self,
        group: &[&Cleanable],
        pass: &Pass<'_>,
        superseded: impl Fn(Offset, Option<&[u8]>) -> bool,
        walk: &mut Walk,
        stats: &mut CompactionStats,
    ) -> Result<bool, StorageError> {
        let base = group[0].base;
        let cleaned_path = self.dir.join(segment::file_name(base, CLEANED_EXT));
        let mut out = BufWriter::new(fs::File::create(&cleaned_path)?);
        // Merging segments is a change in itself.
        let (mut written, mut removed, mut changed) = (0u64, 0u64, group.len() > 1);
        // `(producer id, offset)` of the ABORT markers that go: their index entries go first.
        let mut removed_aborts: Vec<(i64, Offset)> = Vec::new();
        for seg in group {
            // Each member is sealed: nothing writes or truncates it (a truncation only cuts the
            // segment holding an offset above the high watermark), a deletion only unlinks it, so
            // its mapping stays valid.
            let map = segment::map_prefix(&seg.file.file, seg.size)?;
            let data: &[u8] = map.as_deref().unwrap_or_default();
            for (h, bytes) in segment::batches(data) {
                let last_of_producer = h.producer_id >= 0
                    && pass.last_of_producer.get(&h.producer_id) == Some(&h.base_offset);
                let rebuilt = if h.base_offset >= pass.map_end {
                    Retained::Whole
                } else if h.is_control() {
                    match pass.marker(bytes, &h, last_of_producer, walk) {
                        ControlBatch::Kept(r) => r,
                        ControlBatch::Removed { abort } => {
                            if abort {
                                removed_aborts.push((h.producer_id, h.base_offset));
                            }
                            removed += 1;
                            changed = true;
                            continue;
                        }
                    }
                } else {
                    let aborted =
                        h.is_transactional() && pass.aborted.covers(h.producer_id, h.base_offset);
                    let tombstones_go = h.delete_horizon_ms().is_some_and(|at| pass.now_ms >= at);
                    let (mut kept, mut tombstone_kept) = (0i64, false);
                    let horizon = Horizon::IfTombstoneKept(pass.new_horizon_ms);
                    let r = records::retain_records(
                        bytes,
                        MAX_DECOMPRESSED_BATCH_BYTES,
                        horizon,
                        |r| {
                            let tombstone = r.value.is_none();
                            let k = !(aborted
                                || superseded(r.offset, r.key)
                                || (tombstone && tombstones_go));
                            kept += i64::from(k);
                            tombstone_kept |= k && tombstone;
                            k
                        },
                    );
                    match r {
                        Ok(r) => {
                            removed += (i64::from(h.record_count) - kept).max(0) as u64;
                            if tombstone_kept {
                                // Stamped now if it had no horizon yet.
                                walk.wait_for(h.delete_horizon_ms().unwrap_or(pass.new_horizon_ms));
                            }
                            r
                        }
                        Err(e) => {
                            tracing::warn!(log = %self.name, offset = h.base_offset, error = %e, "compaction keeps a batch it cannot read");
                            Retained::Whole
                        }
                    }
                };
                let bytes = match &rebuilt {
                    Retained::Whole => bytes,
                    Retained::Rebuilt(b) => {
                        changed = true;
                        b.as_slice()
                    }
                    Retained::Emptied(b) => {
                        changed = true;
                        if !last_of_producer {
                            continue;
                        }
                        b.as_slice()
                    }
                };
                if h.is_transactional() && !h.is_control() {
                    walk.open_txn_keeps_a_batch.insert(h.producer_id);
                }
                out.write_all(bytes)?;
                written += bytes.len() as u64;
            }
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        if !changed {
            drop(file);
            fs::remove_file(&cleaned_path)?;
            return Ok(true);
        }
        file.sync_all()?;
        drop(file);
        let _meta = self.meta.lock();
        let still_there = {
            let st = self.state.lock();
            !st.closed
                && group.iter().all(|seg| {
                    st.segments
                        .get(&seg.base)
                        .is_some_and(|old| Arc::ptr_eq(&old.file, &seg.file))
                })
        };
        if !still_there {
            fs::remove_file(&cleaned_path)?;
            return Ok(false);
        }
        if !removed_aborts.is_empty() {
            self.drop_abort_entries(base, &removed_aborts)?;
        }
        stats.segments_rewritten += group.len();
        stats.bytes_before += group.iter().map(|s| s.size).sum::<u64>();
        stats.records_removed += removed;
        if written == 0 && self.remove_emptied_group(group) {
            fs::remove_file(&cleaned_path)?;
            return Ok(true);
        }
        let swap_path = self.dir.join(segment::file_name(base, SWAP_EXT));
        fs::rename(&cleaned_path, &swap_path)?;
        checkpoint::sync_dir(&self.dir)?;
        // Committed: the other members go (recovery removes those the swap's batches reach if
        // a crash comes first; see `finish_interrupted_swaps`).
        for seg in &group[1..] {
            Segment::delete_files(&self.dir, seg.base);
        }
        Segment::delete_indexes(&self.dir, base)?;
        fs::rename(&swap_path, self.dir.join(segment::file_name(base, LOG_EXT)))?;
        checkpoint::sync_dir(&self.dir)?;
        let config = self.config();
        let mut fresh = Segment::open_indexing(&self.dir, base, &config)?;
        let mut st = self.state.lock();
        for seg in &group[1..] {
            st.segments.remove(&seg.base);
        }
        match st.segments.get_mut(&base) {
            Some(old) if Arc::ptr_eq(&old.file, &group[0].file) => {
                fresh.aborted = std::mem::take(&mut old.aborted);
                *old = fresh;
            }
            // Checked above, and only holders of the metadata lock remove segments; a log
            // closed meanwhile has its files as swapped, which its next open reads.
            _ => return Ok(false),
        }
        drop(st);
        stats.bytes_after += written;
        Ok(true)
    }
}

impl Log {
    /// Removes the transaction index entries of the ABORT markers `removed` (`(producer id,
    /// marker offset)`) from the segment at `base`, durably, before the rewrite without those
    /// markers is swapped in. Only that order is safe: an entry without its marker would make a
    /// read_committed consumer skip the producer's later batches (it waits for the marker),
    /// while a marker without its entry is a control batch consumers pass over. A rewritten
    /// group's markers with entries are all in its first segment (see [`group_segments`]).
    /// Called with the metadata lock held.
    fn drop_abort_entries(
        &self,
        base: Offset,
        removed: &[(i64, Offset)],
    ) -> Result<(), StorageError> {
        let mut st = self.state.lock();
        let Some(seg) = st.segments.get_mut(&base) else {
            return Ok(());
        };
        let kept: Vec<AbortedTxn> = seg
            .aborted
            .iter()
            .filter(|t| !removed.contains(&(t.producer_id, t.last_offset)))
            .copied()
            .collect();
        if kept.len() != seg.aborted.len() {
            crate::txn_index::rewrite(&self.dir, base, &kept, true)?;
            seg.aborted = kept;
        }
        Ok(())
    }

    /// Removes the segments of `group`, which the cleaner left with no batch, unless the first
    /// is the log's first (which keeps the log start's place, empty) or has a transaction
    /// index: their offsets become a gap up to the next segment, and a log does not keep a file
    /// (and a descriptor) per emptied segment. A crash midway leaves index files without data
    /// (deleted at open) or old segments (cleaned again). Called with the metadata lock held.
    fn remove_emptied_group(&self, group: &[&Cleanable]) -> bool {
        let mut st = self.state.lock();
        let base = group[0].base;
        let first = st.segments.keys().next().copied();
        let removable =
            first != Some(base) && st.segments.get(&base).is_some_and(|s| s.aborted.is_empty());
        if !removable {
            return false;
        }
        for seg in group {
            st.segments.remove(&seg.base);
        }
        drop(st);
        for seg in group {
            Segment::delete_files(&self.dir, seg.base);
        }
        true
    }
}

/// The runs of consecutive segments a pass merges into one each (Kafka's
/// `groupSegmentsBySize`): together at most `segment.bytes` before cleaning and the entries of
/// one offset index, spanning fewer than 2^32 offsets (an index holds offsets relative to its
/// base). A segment with aborted transactions starts a run: the merged segment keeps the first
/// member's transaction index.
fn group_segments<'a>(segs: &[&'a Cleanable], cfg: &LogConfig) -> Vec<Vec<&'a Cleanable>> {
    let max_bytes = cfg.effective_segment_bytes();
    let max_entries = segment::index_capacity(cfg);
    let mut groups: Vec<Vec<&Cleanable>> = Vec::new();
    let (mut bytes, mut entries) = (0u64, 0usize);
    for &seg in segs {
        let joins = groups.last().is_some_and(|g| {
            !seg.has_aborted
                && bytes + seg.size <= max_bytes
                && entries + seg.index_entries <= max_entries
                && seg.end.saturating_sub(g[0].base) <= i64::from(u32::MAX)
        });
        match groups.last_mut() {
            Some(g) if joins => {
                g.push(seg);
                bytes += seg.size;
                entries += seg.index_entries;
            }
            _ => {
                groups.push(vec![seg]);
                (bytes, entries) = (seg.size, seg.index_entries);
            }
        }
    }
    groups
}

/// What a pass decided before it rewrites segments.
struct Pass<'a> {
    /// Records below it are judged by the key map; batches from it on stay whole.
    map_end: Offset,
    aborted: &'a Aborted,
    /// The base offset of each producer's last batch in the cleanable segments.
    last_of_producer: &'a HashMap<i64, Offset>,
    now_ms: i64,
    /// The delete horizon a batch gets at its first cleaning: now plus `delete.retention.ms`.
    new_horizon_ms: i64,
}

impl Pass<'_> {
    /// What becomes of the control batch `bytes` (header `h`, below the map end). A transaction marker goes once no batch of its transaction is left before it (the
    /// cleaner removed them all) and its delete horizon has passed; it gets its horizon the
    /// first time it is found so. The last batch of a producer (its epoch) and any other control
    /// batch stay.
    fn marker(
        &self,
        bytes: &[u8],
        h: &BatchHeader,
        last_of_producer: bool,
        walk: &mut Walk,
    ) -> ControlBatch {
        let kept_whole = ControlBatch::Kept(Retained::Whole);
        if !h.is_transactional() {
            return kept_whole;
        }
        let txn_empty = !walk.open_txn_keeps_a_batch.remove(&h.producer_id);
        let Some(marker) = records::decode_txn_marker(bytes) else {
            return kept_whole;
        };
        if !txn_empty || last_of_producer {
            return kept_whole;
        }
        match h.delete_horizon_ms() {
            Some(at) if self.now_ms >= at => ControlBatch::Removed {
                abort: marker.kind == TxnMarkerKind::Abort,
            },
            Some(at) => {
                walk.wait_for(at);
                kept_whole
            }
            None => {
                let stamped = records::retain_records(
                    bytes,
                    MAX_DECOMPRESSED_BATCH_BYTES,
                    Horizon::Always(self.new_horizon_ms),
                    |_| true,
                );
                // A marker is one small uncompressed record; one that cannot be rebuilt stays.
                let r = stamped.unwrap_or(Retained::Whole);
                if matches!(r, Retained::Rebuilt(_)) {
                    walk.wait_for(self.new_horizon_ms);
                }
                ControlBatch::Kept(r)
            }
        }
    }
}

/// What a pass does with a control batch.
enum ControlBatch {
    Kept(Retained),
    /// A transaction marker goes; an ABORT marker's transaction index entry must go first.
    Removed {
        abort: bool,
    },
}

/// What a pass carries from batch to batch, in offset order over every segment it walks.
#[derive(Default)]
struct Walk {
    /// Producers whose current transaction (since their last marker) still has a batch in the
    /// log after this pass.
    open_txn_keeps_a_batch: HashSet<i64>,
    /// The earliest delete horizon of a batch kept with something that may go after it.
    next_horizon_ms: Option<i64>,
}

impl Walk {
    fn wait_for(&mut self, horizon_ms: i64) {
        self.next_horizon_ms = Some(
            self.next_horizon_ms
                .map_or(horizon_ms, |at| at.min(horizon_ms)),
        );
    }
}

/// The base offset of the last batch of each producer (id ≥ 0) in the cleanable segments,
/// from their headers.
fn last_batch_of_each_producer(
    cleanable: &[Cleanable],
) -> Result<HashMap<i64, Offset>, StorageError> {
    let mut last = HashMap::new();
    for seg in cleanable {
        let map = segment::map_prefix(&seg.file.file, seg.size)?;
        let data: &[u8] = map.as_deref().unwrap_or_default();
        for (h, _) in segment::batches(data) {
            if h.producer_id >= 0 {
                last.insert(h.producer_id, h.base_offset);
            }
        }
    }
    Ok(last)
}

/// Whether a pass is due: something dirty is cleanable, and it is at least the configured share
/// of the cleanable bytes or has waited longer than `max.compaction.lag.ms`.
fn is_due(
    config: &CompactionConfig,
    cleanable: &[Cleanable],
    cleaned_to: Offset,
    now_ms: i64,
) -> bool {
    let Some(first_dirty) = cleanable.iter().find(|s| s.end > cleaned_to) else {
        return false;
    };
    let total: u64 = cleanable.iter().map(|s| s.size).sum();
    let dirty: u64 = cleanable
        .iter()
        .filter(|s| s.end > cleaned_to)
        .map(|s| s.size)
        .sum();
    let overdue = now_ms.saturating_sub(first_dirty.newest_ms) > config.max_compaction_lag_ms;
    overdue || (total > 0 && dirty as f64 >= config.min_cleanable_dirty_ratio * total as f64)
}

/// Maps the keys of the dirty records (from `cleaned_to` on) to their latest offsets, batch by
/// batch until the map is full. Returns the map and the offset it ends before (a batch
/// boundary). Records of aborted transactions, control batches and batches that cannot be read
/// map nothing.
fn map_dirty_keys(
    cleanable: &[Cleanable],
    cleaned_to: Offset,
    aborted: &Aborted,
) -> Result<(KeyMap, Offset), StorageError> {
    let mut keys = KeyMap::default();
    let mut end = cleaned_to;
    for seg in cleanable.iter().filter(|s| s.end > cleaned_to) {
        let map = segment::map_prefix(&seg.file.file, seg.size)?;
        let data: &[u8] = map.as_deref().unwrap_or_default();
        for (h, bytes) in segment::batches(data) {
            if h.last_offset() < cleaned_to {
                continue;
            }
            if !keys.is_empty() && keys.len() + h.record_count.max(0) as usize > MAX_KEYS_PER_PASS {
                return Ok((keys, end));
            }
            let skip = h.is_control()
                || (h.is_transactional() && aborted.covers(h.producer_id, h.base_offset));
            if !skip {
                let mapped = records::visit_records(bytes, MAX_DECOMPRESSED_BATCH_BYTES, |r| {
                    if let Some(key) = r.key {
                        keys.insert(key_hash(key), r.offset);
                    }
                });
                if let Err(e) = mapped {
                    tracing::warn!(offset = h.base_offset, error = %e, "compaction cannot read a batch; its keys are not mapped");
                }
            }
            end = h.last_offset() + 1;
        }
    }
    Ok((keys, end))
}
