//! Kafka record batch (magic v2) header parsing, validation and the few in-place rewrites the
//! log performs (base offset assignment, LogAppendTime).
//!
//! The storage engine treats the records inside a batch as opaque bytes: it only reads and
//! rewrites the fixed 61-byte header. Layout (big endian):
//!
//! | offset | field                  | type |
//! |--------|------------------------|------|
//! | 0      | baseOffset             | i64  |
//! | 8      | batchLength            | i32  |
//! | 12     | partitionLeaderEpoch   | i32  |
//! | 16     | magic                  | i8   |
//! | 17     | crc (CRC32C of 21..)   | u32  |
//! | 21     | attributes             | i16  |
//! | 23     | lastOffsetDelta        | i32  |
//! | 27     | baseTimestamp          | i64  |
//! | 35     | maxTimestamp           | i64  |
//! | 43     | producerId             | i64  |
//! | 51     | producerEpoch          | i16  |
//! | 53     | baseSequence           | i32  |
//! | 57     | recordCount            | i32  |
//! | 61     | records ...            |      |

use bytes::{Bytes, BytesMut};

/// Length of the fixed v2 batch header.
pub const BATCH_HEADER_LEN: usize = 61;
/// Bytes before `batchLength` counts: baseOffset (8) + batchLength (4).
pub const LOG_OVERHEAD: usize = 12;
/// The only record batch format version the engine stores.
pub const MAGIC_V2: i8 = 2;
/// Start of the CRC-covered region (the attributes field).
pub const CRC_START: usize = 21;

const OFF_BATCH_LENGTH: usize = 8;
const OFF_LEADER_EPOCH: usize = 12;
const OFF_MAGIC: usize = 16;
const OFF_CRC: usize = 17;
const OFF_ATTRIBUTES: usize = 21;
const OFF_LAST_OFFSET_DELTA: usize = 23;
const OFF_BASE_TIMESTAMP: usize = 27;
const OFF_MAX_TIMESTAMP: usize = 35;
const OFF_PRODUCER_ID: usize = 43;
const OFF_PRODUCER_EPOCH: usize = 51;
const OFF_BASE_SEQUENCE: usize = 53;
const OFF_RECORD_COUNT: usize = 57;

/// Attribute bits: compression codec (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
pub const ATTR_COMPRESSION_MASK: i16 = 0x07;
/// Attribute bit: timestamps are LogAppendTime (set by the broker) rather than CreateTime.
pub const ATTR_LOG_APPEND_TIME: i16 = 0x08;
/// Attribute bit: the batch belongs to a transaction.
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
/// Attribute bit: the batch is a control batch (transaction markers).
pub const ATTR_CONTROL: i16 = 0x20;
/// Attribute bit (KIP-534): the log cleaner stamped a delete horizon in the batch, which its base
/// timestamp field then holds (the records' timestamp deltas are relative to it). Tombstones and
/// transaction markers in the batch may go once the horizon has passed.
pub const ATTR_DELETE_HORIZON: i16 = 0x40;

/// Why a byte sequence is not a valid v2 record batch.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// Fewer bytes than a header, or than the batch length announces.
    #[error("buffer too short for a record batch")]
    TooShort,
    /// Magic byte other than 2.
    #[error("unsupported magic {0} (only v2 batches are stored)")]
    BadMagic(i8),
    /// A batchLength that cannot hold a v2 header.
    #[error("bad batch length {0}")]
    BadLength(i32),
    /// Stored CRC does not match the CRC32C of the batch contents.
    #[error("CRC mismatch: header says {expected:#010x}, contents hash to {actual:#010x}")]
    CrcMismatch {
        /// CRC stored in the header.
        expected: u32,
        /// CRC computed over the bytes.
        actual: u32,
    },
    /// lastOffsetDelta is negative.
    #[error("bad lastOffsetDelta {0}")]
    BadLastOffsetDelta(i32),
    /// recordCount is negative or larger than the offset span allows.
    #[error("bad record count {count} for lastOffsetDelta {last_offset_delta}")]
    BadRecordCount {
        /// The header's recordCount.
        count: i32,
        /// The header's lastOffsetDelta.
        last_offset_delta: i32,
    },
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(a)
}
fn be_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[at..at + 2]);
    i16::from_be_bytes(a)
}

/// The parsed fixed header of a v2 record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record (assigned by the log on append).
    pub base_offset: i64,
    /// Length of the batch after this field (total length minus 12).
    pub batch_length: i32,
    /// Leader epoch of the partition when the batch was appended.
    pub partition_leader_epoch: i32,
    /// Format version, always 2 for stored batches.
    pub magic: i8,
    /// CRC32C of bytes from `attributes` to the end of the batch.
    pub crc: u32,
    /// Compression, timestamp type, transactional and control bits.
    pub attributes: i16,
    /// Offset of the last record relative to `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record (CreateTime) or the append time (LogAppendTime).
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Idempotent/transactional producer id, -1 if none.
    pub producer_id: i64,
    /// Producer epoch, -1 if none.
    pub producer_epoch: i16,
    /// Sequence number of the first record, -1 if none.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub record_count: i32,
}

impl BatchHeader {
    /// Parses the 61-byte header at the start of `buf`. Checks only that the header is present,
    /// that magic is 2 and that batchLength can hold a header; see [`validate_batches`] for the
    /// full check.
    pub fn parse(buf: &[u8]) -> Result<Self, BatchError> {
        if buf.len() < BATCH_HEADER_LEN {
            return Err(BatchError::TooShort);
        }
        let magic = buf[OFF_MAGIC] as i8;
        let batch_length = be_i32(buf, OFF_BATCH_LENGTH);
        if magic != MAGIC_V2 {
            return Err(BatchError::BadMagic(magic));
        }
        if (batch_length as i64) < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i64 {
            return Err(BatchError::BadLength(batch_length));
        }
        Ok(BatchHeader {
            base_offset: be_i64(buf, 0),
            batch_length,
            partition_leader_epoch: be_i32(buf, OFF_LEADER_EPOCH),
            magic,
            crc: be_u32(buf, OFF_CRC),
            attributes: be_i16(buf, OFF_ATTRIBUTES),
            last_offset_delta: be_i32(buf, OFF_LAST_OFFSET_DELTA),
            base_timestamp: be_i64(buf, OFF_BASE_TIMESTAMP),
            max_timestamp: be_i64(buf, OFF_MAX_TIMESTAMP),
            producer_id: be_i64(buf, OFF_PRODUCER_ID),
            producer_epoch: be_i16(buf, OFF_PRODUCER_EPOCH),
            base_sequence: be_i32(buf, OFF_BASE_SEQUENCE),
            record_count: be_i32(buf, OFF_RECORD_COUNT),
        })
    }

    /// Compression codec id (attributes bits 0-2).
    pub fn compression(&self) -> u8 {
        (self.attributes & ATTR_COMPRESSION_MASK) as u8
    }

    /// Whether the batch is part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    /// Whether the batch is a control batch (commit/abort marker).
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// Whether the timestamps are LogAppendTime.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_LOG_APPEND_TIME != 0
    }

    /// The delete horizon the log cleaner stamped in the batch (KIP-534), if any.
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        (self.attributes & ATTR_DELETE_HORIZON != 0).then_some(self.base_timestamp)
    }

    /// Total size of the batch in bytes (`batch_length + 12`).
    pub fn total_len(&self) -> usize {
        // parse() guarantees batch_length >= 49, so the cast cannot wrap.
        self.batch_length as usize + LOG_OVERHEAD
    }

    /// Offset of the last record (`base_offset + last_offset_delta`), saturating.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(self.last_offset_delta as i64)
    }
}

/// CRC32C of the CRC-covered region of one whole batch (`batch[21..]`).
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(batch.get(CRC_START..).unwrap_or(&[]))
}

/// Fully validates one batch at the start of `buf` (which may continue with more batches):
/// header, length within `buf`, magic, CRC32C and counts. Returns the header.
pub fn validate_batch(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let h = BatchHeader::parse(buf)?;
    let total = h.total_len();
    let batch = buf.get(..total).ok_or(BatchError::TooShort)?;
    if h.last_offset_delta < 0 {
        return Err(BatchError::BadLastOffsetDelta(h.last_offset_delta));
    }
    // Compaction may remove records but never adds any, so the count is bounded by the span.
    if h.record_count < 0 || h.record_count as i64 > h.last_offset_delta as i64 + 1 {
        return Err(BatchError::BadRecordCount {
            count: h.record_count,
            last_offset_delta: h.last_offset_delta,
        });
    }
    let actual = compute_crc(batch);
    if actual != h.crc {
        return Err(BatchError::CrcMismatch {
            expected: h.crc,
            actual,
        });
    }
    Ok(h)
}

/// Validate a buffer of concatenated batches (lengths, magic 2, CRC32C, last_offset_delta >= 0,
/// record_count >= 0 and consistent); returns their headers. Never panics, and allocates only
/// in proportion to the batches actually present in `buf`, never based on wire counts.
pub fn validate_batches(buf: &[u8]) -> Result<Vec<BatchHeader>, BatchError> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < buf.len() {
        let h = validate_batch(&buf[pos..])?;
        pos += h.total_len();
        out.push(h);
    }
    Ok(out)
}

/// Concatenated batches that passed [`validate_batches`], with their headers: what a `Log`
/// appends. Built only by validating, so a caller that validated once (a produce request)
/// hands the result on and the log does not compute the CRCs again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedBatches {
    bytes: BytesMut,
    headers: Vec<BatchHeader>,
}

impl ValidatedBatches {
    /// Validates `bytes` (see [`validate_batches`]). The log stamps offsets into the batches in
    /// place, so it needs them to itself: a buffer nothing else holds (a `Vec`, or the batches of
    /// a request whose buffer has no other holder) is taken as it is, a shared one is copied.
    pub fn new(bytes: impl Into<Bytes>) -> Result<Self, BatchError> {
        let bytes = bytes
            .into()
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        let headers = validate_batches(&bytes)?;
        Ok(Self { bytes, headers })
    }

    pub fn headers(&self) -> &[BatchHeader] {
        &self.headers
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Each batch on its own, without validating again or copying.
    pub fn into_split(mut self) -> Vec<ValidatedBatches> {
        if self.headers.len() <= 1 {
            return vec![self];
        }
        self.headers
            .iter()
            .map(|h| ValidatedBatches {
                bytes: self.bytes.split_to(h.total_len()),
                headers: vec![*h],
            })
            .collect()
    }

    pub(crate) fn into_parts(self) -> (BytesMut, Vec<BatchHeader>) {
        (self.bytes, self.headers)
    }
}

/// What a `Log` append accepts: raw bytes (validated by the log) or batches validated already.
pub trait IntoValidated {
    fn into_validated(self) -> Result<ValidatedBatches, BatchError>;
}

impl IntoValidated for Vec<u8> {
    fn into_validated(self) -> Result<ValidatedBatches, BatchError> {
        ValidatedBatches::new(self)
    }
}

impl IntoValidated for ValidatedBatches {
    fn into_validated(self) -> Result<ValidatedBatches, BatchError> {
        Ok(self)
    }
}

/// Rewrites the base offset of the batch starting at `batch[0]`. The field is outside the
/// CRC-covered region, so the CRC stays valid.
pub(crate) fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Rewrites the partition leader epoch of the batch starting at `batch[0]` (outside the CRC).
pub(crate) fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[OFF_LEADER_EPOCH..OFF_LEADER_EPOCH + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Marks a batch as LogAppendTime with timestamp `ts`: sets attribute bit 0x08, base and max
/// timestamp, and recomputes the CRC (all three fields are inside the CRC-covered region).
/// `batch` must be exactly one whole, already validated batch.
pub(crate) fn set_log_append_time(batch: &mut [u8], ts: i64) {
    let attrs = be_i16(batch, OFF_ATTRIBUTES) | ATTR_LOG_APPEND_TIME;
    batch[OFF_ATTRIBUTES..OFF_ATTRIBUTES + 2].copy_from_slice(&attrs.to_be_bytes());
    batch[OFF_BASE_TIMESTAMP..OFF_BASE_TIMESTAMP + 8].copy_from_slice(&ts.to_be_bytes());
    batch[OFF_MAX_TIMESTAMP..OFF_MAX_TIMESTAMP + 8].copy_from_slice(&ts.to_be_bytes());
    let crc = compute_crc(batch);
    batch[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Makes the batch starting at `batch[0]` (one whole v2 batch) an idempotent producer's: sets
/// its producer id, epoch and base sequence and recomputes the CRC. A leader then appends it at
/// most once however often it is sent (Kafka's duplicate detection). Panics on a slice shorter
/// than a batch header (a caller's bug: the broker builds these batches itself).
pub fn set_producer(batch: &mut [u8], producer_id: i64, producer_epoch: i16, base_sequence: i32) {
    batch[OFF_PRODUCER_ID..OFF_PRODUCER_ID + 8].copy_from_slice(&producer_id.to_be_bytes());
    batch[OFF_PRODUCER_EPOCH..OFF_PRODUCER_EPOCH + 2]
        .copy_from_slice(&producer_epoch.to_be_bytes());
    batch[OFF_BASE_SEQUENCE..OFF_BASE_SEQUENCE + 4].copy_from_slice(&base_sequence.to_be_bytes());
    let crc = compute_crc(batch);
    batch[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Zigzag varint helpers for the v2 record format (used by record-level timestamp lookup and by
/// `records`).
pub(crate) mod varint {
    /// Decodes a zigzag varlong from the front of `buf`; returns the value and its length.
    pub fn read_varlong(buf: &[u8]) -> Option<(i64, usize)> {
        let mut v: u64 = 0;
        for (i, b) in buf.iter().enumerate().take(10) {
            v |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                let z = ((v >> 1) as i64) ^ -((v & 1) as i64);
                return Some((z, i + 1));
            }
        }
        None
    }

    /// Encodes `v` as a zigzag varlong onto `out`.
    pub fn write_varlong(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            if z < 0x80 {
                out.push(z as u8);
                return;
            }
            out.push((z as u8 & 0x7f) | 0x80);
            z >>= 7;
        }
    }
}

/// For an uncompressed batch, the offset and timestamp of the first record whose timestamp is
/// `>= ts`. Returns `None` if the records cannot be parsed (the caller then falls back to batch
/// granularity) or no record qualifies.
pub(crate) fn first_record_at_or_after(batch: &[u8], ts: i64) -> Option<(i64, i64)> {
    let h = BatchHeader::parse(batch).ok()?;
    if h.compression() != 0 || h.is_log_append_time() {
        return None;
    }
    let mut rest = batch.get(BATCH_HEADER_LEN..h.total_len())?;
    for _ in 0..h.record_count {
        let (len, n) = varint::read_varlong(rest)?;
        let len = usize::try_from(len).ok()?;
        let rec = rest.get(n..n.checked_add(len)?)?;
        // attributes (1 byte), timestampDelta varlong, offsetDelta varint
        let body = rec.get(1..)?;
        let (ts_delta, n1) = varint::read_varlong(body)?;
        let (off_delta, _) = varint::read_varlong(body.get(n1..)?)?;
        let rts = h.base_timestamp.checked_add(ts_delta)?;
        if rts >= ts {
            return Some((h.base_offset.checked_add(off_delta)?, rts));
        }
        rest = rest.get(n + len..)?;
    }
    None
}

/// The offset of the first record of `batch` (one whole batch with header `h`) stamped with the
/// batch's max timestamp, as Kafka's `RecordBatch.offsetOfMaxTimestamp` finds it. Under
/// LogAppendTime every record carries the batch's time, so it is the first record. Compressed
/// batches are not decoded: the first record if it carries the maximum (its timestamp is the
/// base timestamp), otherwise the last record (producers stamp records in order).
pub(crate) fn offset_of_max_timestamp(batch: &[u8], h: &BatchHeader) -> i64 {
    if h.is_log_append_time() {
        return h.base_offset;
    }
    match first_record_at_or_after(batch, h.max_timestamp) {
        Some((offset, _)) => offset,
        // A delete horizon takes the base timestamp's place: it says nothing of the first record.
        None if h.base_timestamp == h.max_timestamp && h.delete_horizon_ms().is_none() => {
            h.base_offset
        }
        None => h.last_offset(),
    }
}

/// Helpers that build valid v2 batches, for this crate's tests and other crates' tests
/// (enable the `testing` feature).
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use super::*;

    /// A decoded record: key and value.
    pub type Record = (Option<Vec<u8>>, Option<Vec<u8>>);

    /// A record to encode: key and value, `None` for null.
    pub type RecordRef<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

    /// Builds one uncompressed v2 batch with base offset 0, CreateTime `timestamp` for every
    /// record, no producer id and no headers. Records are `(key, value)`; `None` encodes null.
    pub fn build_batch(records: &[RecordRef<'_>], timestamp: i64) -> Vec<u8> {
        let ts: Vec<i64> = records.iter().map(|_| timestamp).collect();
        build_batch_with_timestamps(records, &ts)
    }

    /// Like [`build_batch`] but with one timestamp per record (the batch's base timestamp is
    /// the first, max timestamp the largest).
    pub fn build_batch_with_timestamps(records: &[RecordRef<'_>], timestamps: &[i64]) -> Vec<u8> {
        assert_eq!(records.len(), timestamps.len(), "one timestamp per record");
        let records: Vec<crate::records::NewRecord<'_>> = records
            .iter()
            .zip(timestamps)
            .map(|(&(key, value), &timestamp_ms)| crate::records::NewRecord {
                key,
                value,
                headers: &[],
                timestamp_ms,
            })
            .collect();
        crate::records::encode_batch(&records)
    }

    /// Decodes the records of one uncompressed batch (panics on malformed input: test use).
    pub fn decode_records(batch: &[u8]) -> Vec<Record> {
        crate::records::decode_records(batch)
            .expect("well-formed uncompressed batch")
            .into_iter()
            .map(|r| (r.key, r.value))
            .collect()
    }

    /// Splits a buffer of concatenated batches into `(base_offset, batch bytes)` pairs
    /// (panics on malformed input: test use).
    pub fn split_batches(buf: &[u8]) -> Vec<(i64, Vec<u8>)> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < buf.len() {
            let h = BatchHeader::parse(&buf[pos..]).expect("batch header");
            out.push((h.base_offset, buf[pos..pos + h.total_len()].to_vec()));
            pos += h.total_len();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use bytes::BufMut;

    use super::testing::*;
    use super::*;

    /// Two batches in a request body as the broker reads it, sliced out as decoding does.
    fn batches_in_a_request() -> (Bytes, *const u8, Vec<u8>) {
        let mut two = build_batch(&[(Some(b"k"), Some(b"v"))], 1);
        two.extend(build_batch(&[(None, Some(b"vv"))], 2));
        let mut body = BytesMut::new();
        body.put_slice(b"request header");
        body.put_slice(&two);
        body.put_slice(b"more");
        let body = body.freeze();
        let records = body.slice(14..14 + two.len());
        let at = records.as_ptr();
        (records, at, two)
    }

    #[test]
    fn batches_nothing_else_holds_are_validated_in_place() {
        let (records, at, two) = batches_in_a_request();
        let validated = ValidatedBatches::new(records).expect("valid");
        assert_eq!(
            validated.bytes().as_ptr(),
            at,
            "the request's buffer itself"
        );
        assert_eq!(validated.bytes(), &two[..]);
        // Split without copying either.
        let split = validated.into_split();
        assert_eq!(split.len(), 2);
        assert_eq!(split[0].bytes().as_ptr(), at);
        assert_eq!(
            [split[0].bytes(), split[1].bytes()].concat(),
            two,
            "the same bytes, in order"
        );
    }

    #[test]
    fn shared_batches_are_copied() {
        let (records, at, two) = batches_in_a_request();
        let other = records.slice(0..8);
        let validated = ValidatedBatches::new(records).expect("valid");
        assert_ne!(validated.bytes().as_ptr(), at);
        assert_eq!(validated.bytes(), &two[..]);
        assert_eq!(
            &other[..],
            &two[..8],
            "the other holder's bytes are untouched"
        );
    }

    #[test]
    fn build_and_validate_roundtrip() {
        let b = build_batch(&[(Some(b"k"), Some(b"v")), (None, Some(b"vv"))], 1234);
        let hs = validate_batches(&b).expect("valid");
        assert_eq!(hs.len(), 1);
        let h = hs[0];
        assert_eq!(h.record_count, 2);
        assert_eq!(h.last_offset_delta, 1);
        assert_eq!(h.max_timestamp, 1234);
        assert_eq!(h.total_len(), b.len());
        assert_eq!(
            decode_records(&b),
            vec![
                (Some(b"k".to_vec()), Some(b"v".to_vec())),
                (None, Some(b"vv".to_vec()))
            ]
        );
    }

    #[test]
    fn crc_mismatch_detected() {
        let mut b = build_batch(&[(None, Some(b"hello"))], 1);
        let last = b.len() - 1;
        b[last] ^= 1;
        assert!(matches!(
            validate_batches(&b),
            Err(BatchError::CrcMismatch { .. })
        ));
    }

    #[test]
    fn producer_stamp_recomputes_crc() {
        let mut b = build_batch(&[(None, Some(b"x")), (None, Some(b"y"))], 1);
        set_producer(&mut b, 4_000_000_001, 3, 17);
        let h = validate_batch(&b).expect("valid after the stamp");
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (4_000_000_001, 3, 17)
        );
        assert_eq!(h.record_count, 2);
    }

    #[test]
    fn base_offset_rewrite_keeps_crc() {
        let mut b = build_batch(&[(None, Some(b"x"))], 1);
        set_base_offset(&mut b, 77);
        let h = validate_batch(&b).expect("still valid");
        assert_eq!(h.base_offset, 77);
    }

    #[test]
    fn log_append_time_rewrite_recomputes_crc() {
        let mut b = build_batch(&[(None, Some(b"x")), (None, Some(b"y"))], 1);
        set_log_append_time(&mut b, 99_000);
        let h = validate_batch(&b).expect("valid after rewrite");
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 99_000);
        assert_eq!(h.base_timestamp, 99_000);
    }

    #[test]
    fn record_level_timestamp_lookup() {
        let b = build_batch_with_timestamps(
            &[(None, Some(b"a")), (None, Some(b"b")), (None, Some(b"c"))],
            &[10, 20, 30],
        );
        assert_eq!(first_record_at_or_after(&b, 15), Some((1, 20)));
        assert_eq!(first_record_at_or_after(&b, 5), Some((0, 10)));
        assert_eq!(first_record_at_or_after(&b, 31), None);
    }

    #[test]
    fn bad_magic_and_short() {
        let mut b = build_batch(&[(None, Some(b"x"))], 1);
        assert_eq!(validate_batches(&b[..10]), Err(BatchError::TooShort));
        assert_eq!(
            validate_batches(&b[..b.len() - 1]),
            Err(BatchError::TooShort)
        );
        b[16] = 1;
        assert_eq!(validate_batches(&b), Err(BatchError::BadMagic(1)));
    }

    proptest::proptest! {
        #[test]
        fn validate_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = validate_batches(&bytes);
            let _ = first_record_at_or_after(&bytes, 0);
        }

        #[test]
        fn validate_never_panics_on_mutated_valid_batches(
            flips in proptest::collection::vec((0usize..200, proptest::num::u8::ANY), 0..8),
            cut in 0usize..300,
        ) {
            let mut b = build_batch(&[(Some(b"key"), Some(b"value")), (None, None)], 5);
            b.extend(build_batch(&[(None, Some(&[7u8; 40]))], 6));
            for (i, x) in flips {
                let n = b.len();
                b[i % n] ^= x;
            }
            b.truncate(cut.min(b.len()));
            let _ = validate_batches(&b);
            let _ = first_record_at_or_after(&b, 5);
        }
    }
}
