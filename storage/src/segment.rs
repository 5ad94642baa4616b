//! One segment of a log: the `.log` data file plus its `.index` and `.timeindex`.
//!
//! A segment owns its files and the in-memory bookkeeping around them: the logical end
//! (`size`, bytes assigned to appends, which is not the file length because files are
//! preallocated), the next offset, the maximum timestamp and the sparse index cadence. It
//! knows how to validate itself at recovery (full CRC check of every batch, for the tail
//! segment) or cheaply (index plausibility plus a short header scan, for sealed segments), and
//! how to rebuild its indexes from the data file.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::batch::{self, BatchHeader, BATCH_HEADER_LEN};
use crate::config::LogConfig;
use crate::index::{MmapIndex, OffsetIndex, TimeIndex, MAX_INDEX_BYTES, OFFSET_ENTRY, TIME_ENTRY};
use crate::log::note_epoch;
use crate::Offset;

/// Extension of segment data files.
pub(crate) const LOG_EXT: &str = "log";
/// Extension of offset index files.
pub(crate) const INDEX_EXT: &str = "index";
/// Extension of time index files.
pub(crate) const TIME_INDEX_EXT: &str = "timeindex";

/// `<20-digit zero-padded base offset>.<ext>`, as in Kafka.
pub(crate) fn file_name(base: Offset, ext: &str) -> String {
    format!("{base:020}.{ext}")
}

/// Parses a segment data file name back into its base offset.
pub(crate) fn parse_file_name(name: &str, ext: &str) -> Option<Offset> {
    let stem = name.strip_suffix(ext)?.strip_suffix('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// The data file of a segment, shared between the log (which reads it) and the data
/// directory's writer thread (which writes and syncs it).
pub(crate) struct SegmentFile {
    pub file: File,
    /// The data file's path (for log lines about failures).
    pub path: PathBuf,
    /// Bytes at the start of the file that are written and acknowledged, i.e. safe to read.
    pub readable: AtomicU64,
    /// Written since the writer last synced it (or told it about it): set by direct writes,
    /// cleared by the writer just before it syncs the file.
    pub dirty: AtomicBool,
    /// Under `fsync=never`/`interval`: bytes before this were handed to the kernel's writeback
    /// ([`crate::writer::WRITEBACK_CHUNK_BYTES`] at a time). Advanced by whoever writes the
    /// file's data: an appender under the log's lock, or the writer for queued writes (never
    /// both at once: appenders write directly only when none of the log's writes is queued).
    pub writeback_from: AtomicU64,
}

/// Entry capacity of the indexes of a segment under `cfg`.
pub(crate) fn index_capacity(cfg: &LogConfig) -> usize {
    let per = cfg.index_interval_bytes.max(1) as u64;
    let want = cfg.effective_segment_bytes() / per + 2;
    (want.min(usize::MAX as u64) as usize).clamp(16, MAX_INDEX_BYTES / TIME_ENTRY)
}

/// Grows `file` from `from` to `to` bytes with real block allocation where the platform
/// supports it, so later writes inside that range do not change the file size.
pub(crate) fn preallocate(file: &File, from: u64, to: u64) -> io::Result<()> {
    if to <= from {
        return Ok(());
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::io::AsRawFd;
        let (Ok(off), Ok(len)) = (
            libc::off_t::try_from(from),
            libc::off_t::try_from(to - from),
        ) else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "size overflow"));
        };
        // SAFETY: plain syscall on an fd we own; no memory is passed.
        let r = unsafe { libc::fallocate(file.as_raw_fd(), 0, off, len) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        // Filesystems without fallocate (tmpfs on old kernels, some FUSE, NFS) get the
        // portable fallback below; real failures such as ENOSPC are reported.
        if !matches!(
            e.raw_os_error(),
            Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) | Some(libc::EINVAL)
        ) {
            return Err(e);
        }
    }
    // Portable fallback: extend the size (sparse). Appends still avoid size changes.
    file.set_len(to)
}

/// Starts the kernel's writeback of `len` bytes of `file` from `from` without waiting for it
/// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`; nothing elsewhere). It neither waits for nor
/// reports I/O errors, so it cannot consume a writeback error a later fdatasync must see (the
/// `WAIT_AFTER` flag would).
pub(crate) fn start_writeback(file: &File, from: u64, len: u64) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::io::AsRawFd;
        let (Ok(off), Ok(len)) = (libc::off64_t::try_from(from), libc::off64_t::try_from(len))
        else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "size overflow"));
        };
        // SAFETY: plain syscall on an fd we own; no memory is passed.
        let r = unsafe {
            libc::sync_file_range(file.as_raw_fd(), off, len, libc::SYNC_FILE_RANGE_WRITE)
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, from, len);
    Ok(())
}

/// Reads the header of the batch at `pos`, if a plausible one is there within `limit`.
pub(crate) fn read_header(file: &File, pos: u64, limit: u64) -> io::Result<Option<BatchHeader>> {
    if pos.saturating_add(BATCH_HEADER_LEN as u64) > limit {
        return Ok(None);
    }
    let mut buf = [0u8; BATCH_HEADER_LEN];
    file.read_exact_at(&mut buf, pos)?;
    match BatchHeader::parse(&buf) {
        Ok(h) if pos.saturating_add(h.total_len() as u64) <= limit && h.last_offset_delta >= 0 => {
            Ok(Some(h))
        }
        _ => Ok(None),
    }
}

/// A read-only mapping of the first `len` bytes of `file` (`None` when `len` is 0), read
/// sequentially: for scans that must not copy the data. The caller makes sure nothing truncates
/// the file below `len` while the mapping lives (a read past the end of a file faults).
pub(crate) fn map_prefix(file: &File, len: u64) -> io::Result<Option<memmap2::Mmap>> {
    if len == 0 {
        return Ok(None);
    }
    let len = usize::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment too large to map"))?;
    // SAFETY: the mapping is read-only and the caller guarantees the file keeps at least `len`
    // bytes while it is alive (see above); its bytes are only read as plain data.
    let map = unsafe { memmap2::MmapOptions::new().len(len).map(file)? };
    // Advice only: a failure changes nothing but read-ahead.
    let _ = map.advise(memmap2::Advice::Sequential);
    Ok(Some(map))
}

/// The header of the batch at `pos` of `data` (a mapped file), if a plausible one is there (as
/// [`read_header`] checks: whole header, whole batch within `data`, non-negative offset delta).
pub(crate) fn header_in(data: &[u8], pos: u64) -> Option<BatchHeader> {
    let start = usize::try_from(pos).ok()?;
    let header = data.get(start..start.checked_add(BATCH_HEADER_LEN)?)?;
    let h = BatchHeader::parse(header).ok()?;
    (start.checked_add(h.total_len())? <= data.len() && h.last_offset_delta >= 0).then_some(h)
}

/// The whole batches at the start of `data` (a mapped segment), in order, each with its header,
/// up to the first that [`header_in`] does not take.
pub(crate) fn batches(data: &[u8]) -> impl Iterator<Item = (BatchHeader, &[u8])> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let h = header_in(data, pos as u64)?;
        let batch = &data[pos..pos + h.total_len()];
        pos += h.total_len();
        Some((h, batch))
    })
}

/// A segment and its in-memory state. Guarded by the owning log's lock.
pub(crate) struct Segment {
    pub base: Offset,
    pub dir: PathBuf,
    pub file: Arc<SegmentFile>,
    /// Logical end: bytes assigned to appends (some may still be queued for writing).
    pub size: u64,
    /// Current file length (>= size when preallocated).
    pub allocated: u64,
    /// One past the last offset assigned in this segment (== base when empty).
    pub next_offset: Offset,
    pub index: OffsetIndex,
    pub time_index: TimeIndex,
    /// Largest batch max-timestamp in the segment (i64::MIN when empty).
    pub max_ts: i64,
    /// Where the first batch holding `max_ts` is: its base offset for the active segment and
    /// for segments whose indexes were built by reading them (recovery, rebuilds). For a
    /// segment opened from its sealed time index it is the offset of the index's last entry,
    /// which is that batch or the first indexed batch after it (an entry is added at the first
    /// index point after the maximum rose); [`crate::Log::max_timestamp`] scans from the offset
    /// index entry before it, so opening a log never reads whole sealed segments for this.
    pub offset_of_max_ts: Offset,
    bytes_since_index: u64,
    /// Whether the segment is no longer active (its index files are trimmed).
    pub sealed: bool,
    /// Age reference for `segment.ms` rolling: the time of the first append to the segment
    /// (for a recovered segment, its first batch's max timestamp). Not the producer's
    /// timestamps of later batches: old client timestamps must not roll on every append.
    pub roll_ts: Option<i64>,
    /// The transactions aborted by a marker in this segment, in marker order (its
    /// `txn_index` file, loaded).
    pub aborted: Vec<crate::txn_index::AbortedTxn>,
}

/// Outcome of validating a segment's batches.
struct Scan {
    end: u64,
    next_offset: Option<Offset>,
    /// Bytes of the batches whose CRC was checked.
    checked_bytes: u64,
    /// The leader epochs the walk saw start, so that recovery need not walk the headers again
    /// for them.
    epoch_starts: EpochStarts,
}

/// `(leader epoch, first offset)` of each epoch that starts in a run of batches, both strictly
/// increasing (as the log's epoch cache notes them).
pub(crate) type EpochStarts = Vec<(i32, Offset)>;

/// Whether a segment's batches may leave offsets out (the log cleaner removed whole batches
/// from it). A scan that checks batches refuses gaps where it can: in a segment the cleaner
/// never rewrote, a base offset that does not follow on is corruption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gaps {
    Refused,
    Allowed,
}

/// What recovering a tail segment did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Bytes after the last valid batch, cut off (a torn write, or preallocated space).
    pub dropped_bytes: u64,
    /// Bytes of the batches whose CRC32C was checked (those after the recovery point).
    pub checked_bytes: u64,
}

impl Segment {
    fn path(dir: &Path, base: Offset, ext: &str) -> PathBuf {
        dir.join(file_name(base, ext))
    }

    fn open_data(dir: &Path, base: Offset, create: bool) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(create)
            .open(Self::path(dir, base, LOG_EXT))
    }

    fn empty(dir: &Path, base: Offset, file: File, index: OffsetIndex, time: TimeIndex) -> Self {
        Segment {
            base,
            dir: dir.to_path_buf(),
            file: Arc::new(SegmentFile {
                file,
                path: Self::path(dir, base, LOG_EXT),
                readable: AtomicU64::new(0),
                dirty: AtomicBool::new(false),
                writeback_from: AtomicU64::new(0),
            }),
            size: 0,
            allocated: 0,
            next_offset: base,
            index,
            time_index: time,
            max_ts: i64::MIN,
            offset_of_max_ts: base,
            bytes_since_index: 0,
            sealed: false,
            roll_ts: None,
            aborted: Vec::new(),
        }
    }

    fn fresh_indexes(dir: &Path, base: Offset, cap: usize) -> io::Result<(OffsetIndex, TimeIndex)> {
        Ok((
            OffsetIndex(MmapIndex::create(
                &Self::path(dir, base, INDEX_EXT),
                OFFSET_ENTRY,
                cap,
            )?),
            TimeIndex(MmapIndex::create(
                &Self::path(dir, base, TIME_INDEX_EXT),
                TIME_ENTRY,
                cap,
            )?),
        ))
    }

    /// Creates a new, empty active segment.
    pub fn create(dir: &Path, base: Offset, cfg: &LogConfig) -> io::Result<Self> {
        let file = Self::open_data(dir, base, true)?;
        let (index, time) = Self::fresh_indexes(dir, base, index_capacity(cfg))?;
        Ok(Self::empty(dir, base, file, index, time))
    }

    /// Records index entries for a batch placed at `pos` (called in offset order).
    pub fn note_batch(
        &mut self,
        base_offset: Offset,
        pos: u64,
        len: u64,
        max_ts: i64,
        interval: u32,
    ) {
        let rel = (base_offset - self.base) as u32;
        if self.roll_ts.is_none() {
            self.roll_ts = Some(max_ts);
        }
        if max_ts > self.max_ts {
            self.max_ts = max_ts;
            self.offset_of_max_ts = base_offset;
        }
        if self.index.0.len() == 0 || self.bytes_since_index >= interval as u64 {
            if self.index.push(rel, pos as u32) {
                self.bytes_since_index = 0;
            }
            let last_t = self.time_index.last().map_or(i64::MIN, |e| e.0);
            if self.max_ts > last_t && self.time_index.has_room() {
                self.time_index.push(self.max_ts, rel);
            }
        }
        self.bytes_since_index += len;
    }

    /// Whether the indexes can take no more regular entries (the segment should roll).
    pub fn indexes_full(&self) -> bool {
        self.index.0.is_full() || !self.time_index.has_room()
    }

    /// Validates the data file from position 0 (lengths, magic, offset order, and the CRC32C of
    /// every batch that ends after `trusted_below`), truncates it after the last valid batch
    /// and rebuilds both indexes. Used for the tail segment after an unclean shutdown;
    /// `trusted_below` is the log's recovery point (0: check every batch). Returns the
    /// recovered segment, what recovery did, and the leader epochs that start in the segment's
    /// valid batches.
    pub fn recover(
        dir: &Path,
        base: Offset,
        cfg: &LogConfig,
        trusted_below: u64,
        gaps: Gaps,
    ) -> io::Result<(Self, Recovered, EpochStarts)> {
        let file = Self::open_data(dir, base, false)?;
        let file_len = file.metadata()?.len();
        let (index, time) = Self::fresh_indexes(dir, base, index_capacity(cfg))?;
        let mut seg = Self::empty(dir, base, file, index, time);
        let scan = seg.scan(file_len, trusted_below, cfg.index_interval_bytes, gaps)?;
        if scan.end < file_len {
            seg.file.file.set_len(scan.end)?;
        }
        seg.size = scan.end;
        seg.allocated = scan.end;
        seg.next_offset = scan.next_offset.unwrap_or(base);
        seg.file.readable.store(scan.end, Ordering::Release);
        let recovered = Recovered {
            dropped_bytes: file_len - scan.end,
            checked_bytes: scan.checked_bytes,
        };
        Ok((seg, recovered, scan.epoch_starts))
    }

    /// Walks batches from position 0 up to `limit`, indexing each. Checks the CRC of every batch
    /// that ends after `check_after` (reading it whole: 0 checks all, `u64::MAX` none) and
    /// trusts the headers of the others. Stops at the first batch that is short, malformed, out
    /// of offset order or (when checked) corrupt: for a preallocated file that is where the
    /// zero-filled tail starts.
    ///
    /// Reads through a mapping of the file, so neither the headers nor the checked batches are
    /// copied: call it only where nothing can truncate the file meanwhile (at open, or under the
    /// owning log's lock, which truncations take).
    fn scan(
        &mut self,
        limit: u64,
        check_after: u64,
        interval: u32,
        gaps: Gaps,
    ) -> io::Result<Scan> {
        let f = Arc::clone(&self.file);
        let map = map_prefix(&f.file, limit)?;
        let data: &[u8] = map.as_deref().unwrap_or_default();
        let mut pos = 0u64;
        let mut expect = self.base;
        let mut next = None;
        let mut checked_bytes = 0u64;
        let mut epoch_starts = Vec::new();
        while let Some(h) = header_in(data, pos) {
            let len = h.total_len() as u64;
            // The base offset is outside the CRC: one that does not follow on (or, where
            // compaction may have removed batches, one that goes back) means corruption. A
            // zero-filled preallocated tail reads as offset 0.
            let follows = match gaps {
                Gaps::Refused => h.base_offset == expect,
                Gaps::Allowed => h.base_offset >= expect,
            };
            if !follows
                || h.last_offset().saturating_sub(self.base) > u32::MAX as i64
                || pos > u32::MAX as u64
            {
                break;
            }
            if pos + len > check_after {
                // In bounds: header_in checked pos + len <= data.len().
                let whole = &data[pos as usize..(pos + len) as usize];
                if batch::validate_batch(whole).is_err() {
                    break;
                }
                checked_bytes += len;
            }
            self.note_batch(h.base_offset, pos, len, h.max_timestamp, interval);
            note_epoch(&mut epoch_starts, h.partition_leader_epoch, h.base_offset);
            pos += len;
            expect = h.last_offset() + 1;
            next = Some(expect);
        }
        Ok(Scan {
            end: pos,
            next_offset: next,
            checked_bytes,
            epoch_starts,
        })
    }

    /// Opens a segment that was sealed (or cleanly closed) without reading its data: the index
    /// is checked for plausibility and its last entry is verified against the data file, from
    /// where a short header scan finds the true end. A bad index is rebuilt from the data file.
    /// `next_base` is the following segment's base offset, if any.
    pub fn open_sealed(
        dir: &Path,
        base: Offset,
        next_base: Option<Offset>,
        cfg: &LogConfig,
    ) -> io::Result<Self> {
        let file = Self::open_data(dir, base, false)?;
        let file_len = file.metadata()?.len();
        let max_rel = next_base.map(|n| n.saturating_sub(base).max(0) as u64);
        let idx = MmapIndex::open(&Self::path(dir, base, INDEX_EXT), OFFSET_ENTRY)
            .ok()
            .map(OffsetIndex)
            .filter(|i| i.is_plausible(file_len, max_rel));
        let tidx = MmapIndex::open(&Self::path(dir, base, TIME_INDEX_EXT), TIME_ENTRY)
            .ok()
            .map(TimeIndex)
            .filter(|i| i.is_plausible(file_len, max_rel));
        if let (Some(index), Some(time)) = (idx, tidx) {
            let mut seg = Self::empty(dir, base, file, index, time);
            if seg.finish_open_from_index(file_len)? {
                seg.sealed = true;
                return Ok(seg);
            }
        }
        tracing::warn!(dir = %dir.display(), base, "rebuilding missing or corrupt segment index");
        Self::open_indexing(dir, base, cfg)
    }

    /// Opens a sealed segment whose indexes are to be built anew from its data file's batch
    /// headers (a bad index, or a data file the log cleaner just rewrote), and seals them.
    pub fn open_indexing(dir: &Path, base: Offset, cfg: &LogConfig) -> io::Result<Self> {
        let file = Self::open_data(dir, base, false)?;
        let file_len = file.metadata()?.len();
        let (index, time) = Self::fresh_indexes(dir, base, index_capacity(cfg))?;
        let mut seg = Self::empty(dir, base, file, index, time);
        let scan = seg.scan(file_len, u64::MAX, cfg.index_interval_bytes, Gaps::Allowed)?;
        seg.size = scan.end;
        seg.allocated = file_len;
        seg.next_offset = scan.next_offset.unwrap_or(base);
        seg.file.readable.store(scan.end, Ordering::Release);
        seg.seal_indexes()?;
        Ok(seg)
    }

    /// Removes the segment's two indexes (not its data, nor its transaction index): the log
    /// cleaner's swap makes them stale.
    pub fn delete_indexes(dir: &Path, base: Offset) -> io::Result<()> {
        for ext in [INDEX_EXT, TIME_INDEX_EXT] {
            match fs::remove_file(Self::path(dir, base, ext)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Completes `open_sealed` from a plausible index: verifies the last entry points at a
    /// batch with the expected base offset and scans headers from there to the end. Returns
    /// false if the index does not match the data.
    fn finish_open_from_index(&mut self, file_len: u64) -> io::Result<bool> {
        let (mut pos, mut next) = (0u64, None);
        if let Some((rel, p)) = self.index.last() {
            match read_header(&self.file.file, p as u64, file_len)? {
                Some(h) if h.base_offset == self.base + rel as i64 => pos = p as u64,
                _ => return Ok(false),
            }
        }
        while let Some(h) = read_header(&self.file.file, pos, file_len)? {
            if next.is_some_and(|n| h.base_offset < n) {
                break;
            }
            if self.roll_ts.is_none() && pos == 0 {
                self.roll_ts = Some(h.max_timestamp);
            }
            pos += h.total_len() as u64;
            next = Some(h.last_offset() + 1);
        }
        if pos == 0 && file_len > 0 && self.index.0.len() > 0 {
            return Ok(false);
        }
        if self.roll_ts.is_none() {
            if let Some(h) = read_header(&self.file.file, 0, file_len)? {
                self.roll_ts = Some(h.max_timestamp);
            }
        }
        if let Some((ts, rel)) = self.time_index.last() {
            self.max_ts = ts;
            self.offset_of_max_ts = self.base + rel as i64;
        }
        self.size = pos;
        self.allocated = file_len;
        self.next_offset = next.unwrap_or(self.base);
        self.file.readable.store(pos, Ordering::Release);
        Ok(true)
    }

    /// Makes a cleanly closed tail segment appendable again: regrows the index mappings and
    /// drops any bytes after the logical end.
    pub fn reactivate(&mut self, cfg: &LogConfig) -> io::Result<()> {
        let cap = index_capacity(cfg);
        self.sealed = false;
        self.index.0.make_active(cap)?;
        self.time_index.0.make_active(cap)?;
        if self.allocated > self.size {
            self.file.file.set_len(self.size)?;
            self.allocated = self.size;
        }
        // Index cadence restarts conservatively: the next batch may add an entry early.
        self.bytes_since_index = u64::MAX / 2;
        Ok(())
    }

    /// Writes the final time index entry (the segment's maximum timestamp) and trims and syncs
    /// both index files. Called when the segment stops being active.
    pub fn seal_indexes(&mut self) -> io::Result<()> {
        self.sealed = true;
        let last_t = self.time_index.last().map_or(i64::MIN, |e| e.0);
        if self.max_ts > last_t && self.size > 0 {
            let rel = (self.offset_of_max_ts - self.base) as u32;
            self.time_index.push(self.max_ts, rel);
        }
        self.index.0.trim_and_sync()?;
        self.time_index.0.trim_and_sync()
    }

    /// Rebuilds both indexes from the readable part of the data file (headers only). Used when
    /// a lookup finds an index entry that does not match the data.
    pub fn rebuild_indexes(&mut self, cfg: &LogConfig) -> io::Result<()> {
        tracing::warn!(dir = %self.dir.display(), base = self.base, "index does not match data; rebuilding");
        self.reindex(cfg)
    }

    /// Rebuilds both indexes from the data file (after a truncation, or when they are bad).
    pub fn reindex(&mut self, cfg: &LogConfig) -> io::Result<()> {
        let (index, time) = Self::fresh_indexes(&self.dir, self.base, index_capacity(cfg))?;
        self.index = index;
        self.time_index = time;
        self.max_ts = i64::MIN;
        self.bytes_since_index = 0;
        let limit = self.file.readable.load(Ordering::Acquire);
        self.scan(limit, u64::MAX, cfg.index_interval_bytes, Gaps::Allowed)?;
        if self.sealed {
            // Keep the sealed-file invariant: length == entries, final time entry present.
            self.seal_indexes()?;
        }
        Ok(())
    }

    /// Position from which to scan for `offset`: the nearest index entry at or below it, after
    /// checking that the entry points at a batch with the expected base offset (rebuilding the
    /// index once if not). Falls back to 0.
    pub fn start_position(&mut self, offset: Offset, cfg: &LogConfig) -> io::Result<u64> {
        for attempt in 0..2 {
            let rel = (offset - self.base).clamp(0, u32::MAX as i64) as u32;
            let Some((erel, pos)) = self.index.lookup(rel) else {
                return Ok(0);
            };
            let limit = self.file.readable.load(Ordering::Acquire);
            match read_header(&self.file.file, pos as u64, limit)? {
                Some(h) if h.base_offset == self.base + erel as i64 => return Ok(pos as u64),
                _ if attempt == 0 => self.rebuild_indexes(cfg)?,
                _ => {}
            }
        }
        Ok(0)
    }

    /// Removes the segment's files.
    pub fn delete_files(dir: &Path, base: Offset) {
        for ext in [
            LOG_EXT,
            INDEX_EXT,
            TIME_INDEX_EXT,
            crate::txn_index::TXN_INDEX_EXT,
        ] {
            let p = Self::path(dir, base, ext);
            if let Err(e) = fs::remove_file(&p) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %p.display(), error = %e, "could not delete segment file");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_roundtrip() {
        assert_eq!(file_name(42, LOG_EXT), "00000000000000000042.log");
        assert_eq!(
            parse_file_name("00000000000000000042.log", LOG_EXT),
            Some(42)
        );
        assert_eq!(parse_file_name("42.log", LOG_EXT), None);
        assert_eq!(parse_file_name("00000000000000000042.index", LOG_EXT), None);
        assert_eq!(parse_file_name("0000000000000000004x.log", LOG_EXT), None);
    }

    /// Batches of every size, small and larger than a page, back to back, and a limit that cuts
    /// the last one: a walk of the mapped file finds the same headers as one `read_header` per
    /// batch.
    #[test]
    fn a_mapped_header_walk_finds_what_read_header_finds() {
        use crate::batch::testing::build_batch;
        let value_lens = [10usize, 40_000, 10, 10, 70_000, 3, 20_000, 90_000, 10, 5];
        let mut data = Vec::new();
        for (i, len) in value_lens.iter().enumerate() {
            let value = vec![b'x'; *len];
            let mut b = build_batch(&[(None, Some(value.as_slice()))], i as i64);
            b[..8].copy_from_slice(&(i as i64).to_be_bytes());
            data.extend_from_slice(&b);
        }
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("data");
        std::fs::write(&path, &data).expect("write");
        let file = File::open(&path).expect("open");
        for limit in [data.len() as u64, data.len() as u64 - 7] {
            let mut expected = Vec::new();
            let mut pos = 0;
            while let Some(h) = read_header(&file, pos, limit).expect("read") {
                pos += h.total_len() as u64;
                expected.push(h);
            }
            let map = map_prefix(&file, limit).expect("map");
            let mapped: &[u8] = map.as_deref().unwrap_or_default();
            let mut got = Vec::new();
            let mut pos = 0;
            while let Some(h) = header_in(mapped, pos) {
                pos += h.total_len() as u64;
                got.push(h);
            }
            assert_eq!(got, expected);
            let whole = value_lens.len() - usize::from(limit < data.len() as u64);
            assert_eq!(got.len(), whole);
        }
    }

    #[test]
    fn capacity_bounds() {
        let cfg = LogConfig::default();
        let c = index_capacity(&cfg);
        assert!(c >= 16 && c * TIME_ENTRY <= MAX_INDEX_BYTES);
        let tiny = LogConfig {
            segment_bytes: 100,
            ..LogConfig::default()
        };
        assert_eq!(index_capacity(&tiny), 16);
    }
}
