//! The aborted-transaction index of a segment (the role of Kafka's `.txnindex`): one entry per
//! ABORT marker in the segment, so that a read_committed fetch learns which transactions in its
//! range were aborted without reading the log.
//!
//! The log stores entries; it does not derive them (it knows nothing of producers): the broker
//! appends an entry when it appends or replicates an ABORT marker, and again, idempotently, when it
//! rebuilds its producer state from the log's tail after a crash. An entry lives in the index of
//! the segment holding its marker (`last_offset`), so it is deleted with that segment.
//!
//! File `<base:020>.txnindex`: fixed-size entries, each producer id, first offset, last offset,
//! last stable offset (big-endian i64) and a CRC32C of those 32 bytes. Appended as markers are,
//! fsynced unless the log's fsync policy is `never`. At open the entries are checked against the
//! segment (torn or corrupt entries, and entries past the recovered end, are dropped and the file
//! rewritten), so an entry never names a marker the log does not hold.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use crate::Offset;

/// The file name extension of a segment's aborted-transaction index.
pub const TXN_INDEX_EXT: &str = "txnindex";
/// Bytes per entry: four i64 fields and a CRC32C.
pub const ENTRY_BYTES: usize = 8 * 4 + 4;

/// A transaction aborted in this partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AbortedTxn {
    pub producer_id: i64,
    /// The offset of the transaction's first batch in this partition (the marker's own offset
    /// when it wrote no data here).
    pub first_offset: Offset,
    /// The offset of the ABORT marker.
    pub last_offset: Offset,
    /// The last stable offset once this transaction ended (the first offset of the oldest
    /// transaction still open then, else `last_offset + 1`).
    pub last_stable_offset: Offset,
}

impl AbortedTxn {
    /// Whether the fields are consistent (offsets in order, a producer id).
    pub fn is_plausible(&self) -> bool {
        self.producer_id >= 0
            && 0 <= self.first_offset
            && self.first_offset <= self.last_offset
            && 0 <= self.last_stable_offset
            && self.last_stable_offset <= self.last_offset.saturating_add(1)
    }
}

/// The bytes of one entry.
pub fn encode_entry(txn: &AbortedTxn) -> [u8; ENTRY_BYTES] {
    let mut out = [0u8; ENTRY_BYTES];
    out[0..8].copy_from_slice(&txn.producer_id.to_be_bytes());
    out[8..16].copy_from_slice(&txn.first_offset.to_be_bytes());
    out[16..24].copy_from_slice(&txn.last_offset.to_be_bytes());
    out[24..32].copy_from_slice(&txn.last_stable_offset.to_be_bytes());
    let crc = crc32c::crc32c(&out[..32]);
    out[32..36].copy_from_slice(&crc.to_be_bytes());
    out
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(x)
}

/// The entries of an index file's bytes, up to the first that is torn, corrupt, implausible or
/// out of order (by `last_offset`); the flag says whether every byte was a good entry.
pub fn decode(bytes: &[u8]) -> (Vec<AbortedTxn>, bool) {
    let mut out = Vec::with_capacity(bytes.len() / ENTRY_BYTES);
    let mut chunks = bytes.chunks_exact(ENTRY_BYTES);
    for c in chunks.by_ref() {
        let crc = u32::from_be_bytes([c[32], c[33], c[34], c[35]]);
        if crc32c::crc32c(&c[..32]) != crc {
            return (out, false);
        }
        let txn = AbortedTxn {
            producer_id: i64_at(c, 0),
            first_offset: i64_at(c, 8),
            last_offset: i64_at(c, 16),
            last_stable_offset: i64_at(c, 24),
        };
        let in_order = out
            .last()
            .is_none_or(|p: &AbortedTxn| p.last_offset <= txn.last_offset);
        if !txn.is_plausible() || !in_order {
            return (out, false);
        }
        out.push(txn);
    }
    (out, chunks.remainder().is_empty())
}

fn path(dir: &Path, base: Offset) -> std::path::PathBuf {
    dir.join(crate::segment::file_name(base, TXN_INDEX_EXT))
}

/// Reads the index of the segment `[base, next_offset)`, keeping only well-formed entries whose
/// marker the segment holds; rewrites the file when it dropped anything. Absent: empty.
pub(crate) fn load(
    dir: &Path,
    base: Offset,
    next_offset: Offset,
    max_bytes: u64,
) -> io::Result<Vec<AbortedTxn>> {
    let p = path(dir, base);
    let len = match fs::metadata(&p) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    // Every entry needs a marker batch (far more than ENTRY_BYTES) in the segment: a larger
    // file is not an index of it.
    let bytes = if len > max_bytes {
        Vec::new()
    } else {
        fs::read(&p)?
    };
    let (mut entries, clean) = decode(&bytes);
    let before = entries.len();
    entries.retain(|t| t.last_offset >= base && t.last_offset < next_offset);
    if !clean || entries.len() != before || len > max_bytes {
        tracing::warn!(path = %p.display(), kept = entries.len(), "rewriting a transaction index that does not match its segment");
        rewrite(dir, base, &entries, true)?;
    }
    Ok(entries)
}

/// Appends one entry to the file of segment `base`.
pub(crate) fn append(dir: &Path, base: Offset, txn: &AbortedTxn, durable: bool) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path(dir, base))?;
    f.write_all(&encode_entry(txn))?;
    if durable {
        f.sync_data()?;
    }
    Ok(())
}

/// Replaces the file of segment `base` with `entries` (removes it when there are none).
pub(crate) fn rewrite(
    dir: &Path,
    base: Offset,
    entries: &[AbortedTxn],
    durable: bool,
) -> io::Result<()> {
    let p = path(dir, base);
    if entries.is_empty() {
        return match fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    let mut bytes = Vec::with_capacity(entries.len() * ENTRY_BYTES);
    for t in entries {
        bytes.extend_from_slice(&encode_entry(t));
    }
    let tmp = p.with_extension("txnindex.tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        if durable {
            f.sync_all()?;
        }
    }
    fs::rename(&tmp, &p)?;
    if durable {
        crate::checkpoint::sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn txn(pid: i64, first: i64, last: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: last + 1,
        }
    }

    #[test]
    fn entries_round_trip_and_a_torn_or_flipped_tail_is_cut() {
        let entries = vec![txn(1, 0, 5), txn(2, 3, 9), txn(1, 10, 12)];
        let mut bytes = Vec::new();
        for t in &entries {
            bytes.extend_from_slice(&encode_entry(t));
        }
        assert_eq!(decode(&bytes), (entries.clone(), true));
        assert_eq!(
            decode(&bytes[..bytes.len() - 3]),
            (entries[..2].to_vec(), false)
        );
        let mut flipped = bytes.clone();
        flipped[ENTRY_BYTES + 20] ^= 1;
        assert_eq!(decode(&flipped), (entries[..1].to_vec(), false));
        // Out of marker order: not an index Weir wrote.
        let mut swapped = encode_entry(&entries[1]).to_vec();
        swapped.extend_from_slice(&encode_entry(&entries[0]));
        assert_eq!(decode(&swapped), (vec![entries[1]], false));
    }

    #[test]
    fn load_drops_entries_past_the_segment_end_and_rewrites() {
        let dir = tempfile::tempdir().expect("tempdir");
        for t in [txn(1, 0, 5), txn(2, 3, 9), txn(1, 10, 12)] {
            append(dir.path(), 0, &t, false).expect("append");
        }
        let loaded = load(dir.path(), 0, 10, 1 << 20).expect("load");
        assert_eq!(loaded, vec![txn(1, 0, 5), txn(2, 3, 9)]);
        let again = load(dir.path(), 0, 100, 1 << 20).expect("load");
        assert_eq!(again, loaded);
        assert_eq!(load(dir.path(), 0, 5, 1 << 20).expect("load"), Vec::new());
        assert!(!path(dir.path(), 0).exists());
    }

    proptest! {
        /// Whatever the bytes, decoding neither panics nor returns an entry it did not check.
        #[test]
        fn decode_accepts_only_good_entries(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let (entries, clean) = decode(&bytes);
            prop_assert!(entries.len() <= bytes.len() / ENTRY_BYTES);
            prop_assert!(entries.iter().all(AbortedTxn::is_plausible));
            if clean {
                prop_assert_eq!(entries.len() * ENTRY_BYTES, bytes.len());
            }
        }

        #[test]
        fn encoded_entries_decode(raw in proptest::collection::vec((0i64..1000, 0i64..1000, 0i64..50), 0..20)) {
            let mut entries: Vec<AbortedTxn> = raw.iter().map(|&(pid, first, span)| txn(pid, first, first + span)).collect();
            entries.sort_by_key(|t| t.last_offset);
            let bytes: Vec<u8> = entries.iter().flat_map(encode_entry).collect();
            prop_assert_eq!(decode(&bytes), (entries, true));
        }
    }
}
