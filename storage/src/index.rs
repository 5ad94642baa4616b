//! Sparse, memory-mapped per-segment indexes: the offset index (`.index`) and the time index
//! (`.timeindex`).
//!
//! Both are arrays of fixed-size big-endian entries in a file mapped with `memmap2`. The
//! active segment's index files are pre-sized to their capacity (sparse, so no disk is used)
//! and the entry count is tracked in memory; sealing trims the file to the entries written,
//! so a sealed index's entry count is its file length divided by the entry size.
//!
//! An index holds no file descriptor: the mapping outlives the descriptor it was made from, and
//! the file is opened again only to resize or trim it. A broker with 10,000 partitions keeps one
//! descriptor per partition's active segment (its `.log`), not three.
//!
//! Indexes are hints, never the source of truth: the log verifies that an entry points at a
//! batch with the expected base offset before trusting it and rebuilds the index from the
//! segment when it does not (see `segment.rs`).
//!
//! * Offset index entry (8 bytes): `relative_offset: u32` (batch base offset minus segment
//!   base offset), `position: u32` (byte position of that batch in the segment file).
//! * Time index entry (12 bytes): `timestamp: i64`, `relative_offset: u32`. Meaning: every
//!   batch of the segment whose base offset is `<=` the entry's offset has a max timestamp
//!   `<=` the entry's timestamp. Timestamps strictly increase along the file.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use memmap2::MmapMut;

/// Size of one offset index entry.
pub(crate) const OFFSET_ENTRY: usize = 8;
/// Size of one time index entry.
pub(crate) const TIME_ENTRY: usize = 12;
/// Upper bound of an index file (Kafka's `segment.index.bytes` default).
pub(crate) const MAX_INDEX_BYTES: usize = 10 << 20;

/// A file of fixed-size entries, memory mapped.
pub(crate) struct MmapIndex {
    path: PathBuf,
    mmap: Option<MmapMut>,
    entry_size: usize,
    entries: usize,
    capacity: usize,
}

/// Maps an index file for reading and writing, with read-ahead off. Lookups are binary searches
/// and appends touch one page at a time, so read-ahead only costs: on a fresh (sparse) index it
/// zero-fills a large window of pages at every first touch, which made rebuilding the indexes of
/// 1000 tail segments after a crash spend more time in page faults than in reading the data.
fn map_random(file: &File) -> io::Result<MmapMut> {
    // SAFETY: the file is owned by this log directory and is only modified through this
    // mapping while the log's lock is held; nothing truncates it behind our back.
    let mmap = unsafe { MmapMut::map_mut(file)? };
    #[cfg(unix)]
    mmap.advise(memmap2::Advice::Random)?;
    Ok(mmap)
}

impl MmapIndex {
    /// Creates (or truncates) an empty index able to hold `capacity` entries.
    pub fn create(path: &Path, entry_size: usize, capacity: usize) -> io::Result<Self> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        let mut idx = MmapIndex {
            path: path.to_path_buf(),
            mmap: None,
            entry_size,
            entries: 0,
            capacity: 0,
        };
        idx.resize(capacity)?;
        Ok(idx)
    }

    /// Opens an existing (sealed or cleanly closed) index. Fails with `InvalidData` if the file
    /// length is not a whole number of entries.
    pub fn open(path: &Path, entry_size: usize) -> io::Result<Self> {
        let file = Self::open_file(path)?;
        let len = file.metadata()?.len();
        if len % entry_size as u64 != 0 || len > MAX_INDEX_BYTES as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("index {} has bad length {len}", path.display()),
            ));
        }
        let entries = (len / entry_size as u64) as usize;
        let mmap = if entries > 0 {
            Some(map_random(&file)?)
        } else {
            None
        };
        Ok(MmapIndex {
            path: path.to_path_buf(),
            mmap,
            entry_size,
            entries,
            capacity: entries,
        })
    }

    fn open_file(path: &Path) -> io::Result<File> {
        OpenOptions::new().read(true).write(true).open(path)
    }

    /// Sets the file to `capacity` entries and maps it again; returns the file, still open.
    fn resize(&mut self, capacity: usize) -> io::Result<File> {
        let capacity = capacity.max(self.entries);
        if let Some(m) = self.mmap.take() {
            m.flush()?;
        }
        let file = Self::open_file(&self.path)?;
        file.set_len((capacity * self.entry_size) as u64)?;
        if capacity > 0 {
            self.mmap = Some(map_random(&file)?);
        }
        self.capacity = capacity;
        Ok(file)
    }

    /// Grows the mapping so that `capacity` entries fit (for a segment that becomes active).
    pub fn make_active(&mut self, capacity: usize) -> io::Result<()> {
        if capacity > self.capacity {
            self.resize(capacity)?;
        }
        Ok(())
    }

    /// Trims the file to the entries written and flushes it (segment sealing / clean close).
    pub fn trim_and_sync(&mut self) -> io::Result<()> {
        self.resize(self.entries)?.sync_all()
    }

    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_full(&self) -> bool {
        self.entries >= self.capacity
    }

    pub fn entry(&self, i: usize) -> &[u8] {
        match &self.mmap {
            Some(m) if i < self.entries => &m[i * self.entry_size..(i + 1) * self.entry_size],
            _ => &[],
        }
    }

    /// Appends an entry; returns false (and writes nothing) if the index is full. A missing
    /// sparse entry only costs a longer scan, so a full index is not an error.
    pub fn push(&mut self, bytes: &[u8]) -> bool {
        if self.entries >= self.capacity || bytes.len() != self.entry_size {
            return false;
        }
        let at = self.entries * self.entry_size;
        match &mut self.mmap {
            Some(m) => {
                m[at..at + self.entry_size].copy_from_slice(bytes);
                self.entries += 1;
                true
            }
            None => false,
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Sparse map from relative offset to file position.
pub(crate) struct OffsetIndex(pub MmapIndex);

impl OffsetIndex {
    pub fn get(&self, i: usize) -> Option<(u32, u32)> {
        let e = self.0.entry(i);
        if e.len() != OFFSET_ENTRY {
            return None;
        }
        Some((u32_at(e, 0), u32_at(e, 4)))
    }

    pub fn last(&self) -> Option<(u32, u32)> {
        self.0.len().checked_sub(1).and_then(|i| self.get(i))
    }

    pub fn push(&mut self, rel: u32, pos: u32) -> bool {
        let mut b = [0u8; OFFSET_ENTRY];
        b[..4].copy_from_slice(&rel.to_be_bytes());
        b[4..].copy_from_slice(&pos.to_be_bytes());
        self.0.push(&b)
    }

    /// Largest entry with relative offset `<= rel` (binary search; assumes sorted entries,
    /// which the caller verifies against the segment before trusting the answer).
    pub fn lookup(&self, rel: u32) -> Option<(u32, u32)> {
        let (mut lo, mut hi) = (0usize, self.0.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid) {
                Some((r, _)) if r <= rel => lo = mid + 1,
                _ => hi = mid,
            }
        }
        lo.checked_sub(1).and_then(|i| self.get(i))
    }

    /// O(1) plausibility check of a sealed index against its segment: first entry at position
    /// 0, last entry after the first and inside the segment, offsets below `max_rel`.
    pub fn is_plausible(&self, segment_size: u64, max_rel: Option<u64>) -> bool {
        if segment_size == 0 {
            return self.0.len() == 0;
        }
        let (Some(first), Some(last)) = (self.get(0), self.last()) else {
            return false;
        };
        if first.1 != 0 || (last.1 as u64) >= segment_size {
            return false;
        }
        if self.0.len() > 1 && (last.0 <= first.0 || last.1 <= first.1) {
            return false;
        }
        max_rel.is_none_or(|m| (last.0 as u64) < m)
    }
}

/// Sparse map from timestamp to relative offset.
pub(crate) struct TimeIndex(pub MmapIndex);

impl TimeIndex {
    pub fn get(&self, i: usize) -> Option<(i64, u32)> {
        let e = self.0.entry(i);
        if e.len() != TIME_ENTRY {
            return None;
        }
        Some((i64_at(e, 0), u32_at(e, 8)))
    }

    pub fn last(&self) -> Option<(i64, u32)> {
        self.0.len().checked_sub(1).and_then(|i| self.get(i))
    }

    pub fn push(&mut self, ts: i64, rel: u32) -> bool {
        let mut b = [0u8; TIME_ENTRY];
        b[..8].copy_from_slice(&ts.to_be_bytes());
        b[8..].copy_from_slice(&rel.to_be_bytes());
        self.0.push(&b)
    }

    /// Room left for regular entries: one slot is kept for the final entry written at seal,
    /// which records the segment's maximum timestamp.
    pub fn has_room(&self) -> bool {
        self.0.len() + 1 < self.0.capacity
    }

    /// Largest entry with timestamp `< ts`.
    pub fn lookup_before(&self, ts: i64) -> Option<(i64, u32)> {
        let (mut lo, mut hi) = (0usize, self.0.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid) {
                Some((t, _)) if t < ts => lo = mid + 1,
                _ => hi = mid,
            }
        }
        lo.checked_sub(1).and_then(|i| self.get(i))
    }

    /// O(1) plausibility check of a sealed time index (see [`OffsetIndex::is_plausible`]).
    pub fn is_plausible(&self, segment_size: u64, max_rel: Option<u64>) -> bool {
        if segment_size == 0 {
            return self.0.len() == 0;
        }
        let (Some(first), Some(last)) = (self.get(0), self.last()) else {
            return false;
        };
        if self.0.len() > 1 && (last.0 <= first.0 || last.1 <= first.1) {
            return false;
        }
        max_rel.is_none_or(|m| (last.1 as u64) < m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_lookup_and_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("0.index");
        let mut idx = OffsetIndex(MmapIndex::create(&p, OFFSET_ENTRY, 4).expect("create"));
        assert!(idx.lookup(5).is_none());
        assert!(idx.push(0, 0));
        assert!(idx.push(10, 100));
        assert!(idx.push(20, 200));
        assert_eq!(idx.lookup(15), Some((10, 100)));
        assert_eq!(idx.lookup(20), Some((20, 200)));
        assert_eq!(idx.lookup(0), Some((0, 0)));
        idx.0.trim_and_sync().expect("trim");
        let idx = OffsetIndex(MmapIndex::open(&p, OFFSET_ENTRY).expect("open"));
        assert_eq!(idx.0.len(), 3);
        assert!(idx.is_plausible(300, Some(30)));
        assert!(!idx.is_plausible(150, Some(30)));
        assert!(!idx.is_plausible(300, Some(15)));
    }

    #[test]
    fn full_index_refuses_pushes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut idx =
            TimeIndex(MmapIndex::create(&dir.path().join("t"), TIME_ENTRY, 2).expect("create"));
        assert!(idx.has_room());
        assert!(idx.push(1, 0));
        assert!(!idx.has_room());
        assert!(idx.push(2, 1));
        assert!(!idx.push(3, 2));
        assert_eq!(idx.lookup_before(2), Some((1, 0)));
        assert_eq!(idx.lookup_before(1), None);
    }

    /// The files this process holds open (Linux: /proc/self/fd).
    #[cfg(target_os = "linux")]
    fn open_files() -> Vec<std::path::PathBuf> {
        std::fs::read_dir("/proc/self/fd")
            .expect("/proc/self/fd")
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .collect()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_index_keeps_no_file_open_and_still_grows_and_trims() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("0.index");
        let mut idx = OffsetIndex(MmapIndex::create(&p, OFFSET_ENTRY, 1).expect("create"));
        assert!(idx.push(0, 0));
        assert!(!idx.0.push(&[0u8; OFFSET_ENTRY]), "full at one entry");
        idx.0.make_active(3).expect("grow");
        assert!(idx.push(10, 100));
        assert!(!open_files().contains(&p), "the index file is held open");
        idx.0.trim_and_sync().expect("trim");
        assert_eq!(
            std::fs::metadata(&p).expect("stat").len(),
            2 * OFFSET_ENTRY as u64
        );
        let reopened = OffsetIndex(MmapIndex::open(&p, OFFSET_ENTRY).expect("open"));
        assert!(
            !open_files().contains(&p),
            "the reopened index file is held open"
        );
        assert_eq!(reopened.lookup(15), Some((10, 100)));
    }

    #[test]
    fn bad_length_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("x.index");
        std::fs::write(&p, [0u8; 7]).expect("write");
        assert!(MmapIndex::open(&p, OFFSET_ENTRY).is_err());
    }
}
