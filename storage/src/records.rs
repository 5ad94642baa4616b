//! The records inside v2 batches: the one encoder and decoder Weir has for them.
//!
//! The log itself never looks inside a batch; this module is for the few places that author or read
//! records themselves (the broker's internal topics, the CLI, tests, the key check of compacted topics
//! and the legacy-format conversions in [`crate::legacy`]). [`decode_records`] refuses compressed
//! batches and allocates no more than the bytes it was given; [`visit_records`] decompresses, bounded
//! by a caller-given limit on the decompressed size.

use crate::batch::varint::{read_varlong, write_varlong};
use crate::batch::{
    compute_crc, validate_batch, BatchHeader, ATTR_COMPRESSION_MASK, ATTR_DELETE_HORIZON,
    BATCH_HEADER_LEN,
};
use crate::compression::{self, Codec, CompressionError};

/// Offset of the CRC field in a batch.
const CRC_AT: usize = 17;
/// Offset of the base (first) timestamp field in a batch.
const BASE_TIMESTAMP_AT: usize = 27;
/// baseOffset + batchLength: the part of a batch its length field does not count.
const LENGTH_PREFIX: usize = 12;

/// A decoded record header: name and value (`None` for null).
pub type Header = (String, Option<Vec<u8>>);

/// A record header to encode: name and value (`None` encodes a null value).
pub type HeaderRef<'a> = (&'a str, Option<&'a [u8]>);

/// A record to encode. `None` key or value encodes a null.
#[derive(Clone, Copy, Debug, Default)]
pub struct NewRecord<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [HeaderRef<'a>],
    pub timestamp_ms: i64,
}

/// A decoded record, with its absolute offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RecordError {
    #[error("batch header: {0}")]
    Batch(#[from] crate::batch::BatchError),
    #[error("compressed batch (codec {0}): records cannot be read without decompressing")]
    Compressed(u8),
    #[error("record truncated or malformed")]
    Malformed,
    #[error("{0}")]
    Compression(#[from] CompressionError),
}

/// A record of a batch, borrowed from the batch (or from its decompressed records).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// Absolute offset (the batch's base offset plus the record's delta).
    pub offset: i64,
    /// The record's timestamp; for a LogAppendTime batch, the batch's (as Kafka's consumers read it).
    pub timestamp_ms: i64,
    /// Key, `None` for null.
    pub key: Option<&'a [u8]>,
    /// Value, `None` for null.
    pub value: Option<&'a [u8]>,
    header_count: i64,
    headers: &'a [u8],
}

impl RecordView<'_> {
    /// The record's headers (name, value).
    pub fn headers(&self) -> Result<Vec<Header>, RecordError> {
        let mut r = Cursor { buf: self.headers };
        let mut out = Vec::new();
        for _ in 0..self.header_count.max(0) {
            let name_len = usize::try_from(r.varint()?).map_err(|_| RecordError::Malformed)?;
            let name = String::from_utf8_lossy(r.take(name_len)?).into_owned();
            out.push((name, r.nullable()?.map(<[u8]>::to_vec)));
        }
        Ok(out)
    }
}

fn put_len(buf: &mut Vec<u8>, len: usize) {
    write_varlong(buf, i64::try_from(len).unwrap_or(i64::MAX));
}

fn put_nullable(buf: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => write_varlong(buf, -1),
        Some(b) => {
            put_len(buf, b.len());
            buf.extend_from_slice(b);
        }
    }
}

/// One uncompressed batch of `records` with base offset 0 (the log assigns offsets), CreateTime, no
/// producer id. The batch's base timestamp is the first record's, its max timestamp the largest.
pub fn encode_batch(records: &[NewRecord<'_>]) -> Vec<u8> {
    let base_ts = records.first().map_or(-1, |r| r.timestamp_ms);
    let body = encode_records(records, base_ts);
    assemble_batch(records, base_ts, Codec::None, &body)
}

/// Like [`encode_batch`], with the records compressed by `codec` (gzip, snappy or lz4).
pub fn encode_batch_compressed(
    records: &[NewRecord<'_>],
    codec: Codec,
) -> Result<Vec<u8>, CompressionError> {
    let base_ts = records.first().map_or(-1, |r| r.timestamp_ms);
    let body = compression::compress(codec, &encode_records(records, base_ts), false)?;
    Ok(assemble_batch(records, base_ts, codec, &body))
}

/// The records section of a batch whose base timestamp is `base_ts`.
fn encode_records(records: &[NewRecord<'_>], base_ts: i64) -> Vec<u8> {
    let mut body = Vec::new();
    let mut rec = Vec::new();
    for (i, r) in records.iter().enumerate() {
        rec.clear();
        rec.push(0); // record attributes
                     // Wrapping, as Kafka's arithmetic on longs: the decoder adds the delta back the same way.
        write_varlong(&mut rec, r.timestamp_ms.wrapping_sub(base_ts));
        write_varlong(&mut rec, i64::try_from(i).unwrap_or(i64::MAX));
        put_nullable(&mut rec, r.key);
        put_nullable(&mut rec, r.value);
        put_len(&mut rec, r.headers.len());
        for (name, value) in r.headers {
            put_len(&mut rec, name.len());
            rec.extend_from_slice(name.as_bytes());
            put_nullable(&mut rec, *value);
        }
        put_len(&mut body, rec.len());
        body.extend_from_slice(&rec);
    }
    body
}

/// A whole batch: header for `records` around the (maybe compressed) records section `body`.
fn assemble_batch(records: &[NewRecord<'_>], base_ts: i64, codec: Codec, body: &[u8]) -> Vec<u8> {
    let max_ts = records.iter().map(|r| r.timestamp_ms).max().unwrap_or(-1);
    let count = i32::try_from(records.len()).unwrap_or(i32::MAX);
    let length = i32::try_from(BATCH_HEADER_LEN - LENGTH_PREFIX + body.len()).unwrap_or(i32::MAX);
    let mut b = Vec::with_capacity(BATCH_HEADER_LEN + body.len());
    b.extend_from_slice(&0i64.to_be_bytes()); // base offset
    b.extend_from_slice(&length.to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    b.push(2); // magic
    b.extend_from_slice(&0u32.to_be_bytes()); // crc, filled below
    b.extend_from_slice(&(i16::from(codec.id()) & ATTR_COMPRESSION_MASK).to_be_bytes()); // attributes
    b.extend_from_slice(&(count - 1).max(0).to_be_bytes());
    b.extend_from_slice(&base_ts.to_be_bytes());
    b.extend_from_slice(&max_ts.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    b.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    b.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    b.extend_from_slice(&count.to_be_bytes());
    b.extend_from_slice(body);
    let crc = compute_crc(&b);
    b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    b
}

/// One control batch holding a single control record: key `(version 0, control_type)`, value
/// `value`. Kafka consumers skip control batches (they only act on transaction markers), so the
/// broker can keep its own markers in a partition's log this way.
pub fn encode_control_batch(control_type: i16, value: &[u8], timestamp_ms: i64) -> Vec<u8> {
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&control_type.to_be_bytes());
    let mut b = encode_batch(&[NewRecord {
        key: Some(&key),
        value: Some(value),
        headers: &[],
        timestamp_ms,
    }]);
    let attrs = crate::batch::ATTR_CONTROL.to_be_bytes();
    b[21..23].copy_from_slice(&attrs);
    let crc = compute_crc(&b);
    b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Control record type of a transaction marker that aborts (Kafka's `ControlRecordType.ABORT`).
pub const CONTROL_TYPE_ABORT: i16 = 0;
/// Control record type of a transaction marker that commits (Kafka's `ControlRecordType.COMMIT`).
pub const CONTROL_TYPE_COMMIT: i16 = 1;

/// Which way a transaction ended, as its marker says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnMarkerKind {
    Abort,
    Commit,
}

/// A transaction marker: the control batch a transaction coordinator has written into every
/// partition of a transaction when it ends (Kafka's `EndTransactionMarker`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnMarker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub kind: TxnMarkerKind,
    /// The epoch of the coordinator that wrote it; a partition refuses markers from older ones.
    pub coordinator_epoch: i32,
}

/// Encodes `marker` as Kafka does: a transactional control batch of one record whose key is
/// `(version 0, ABORT|COMMIT)` and whose value is `(version 0, coordinator_epoch)`, carrying the
/// producer id and epoch in the batch header and no sequence (-1).
pub fn encode_txn_marker(marker: &TxnMarker, timestamp_ms: i64) -> Vec<u8> {
    let control_type = match marker.kind {
        TxnMarkerKind::Abort => CONTROL_TYPE_ABORT,
        TxnMarkerKind::Commit => CONTROL_TYPE_COMMIT,
    };
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&marker.coordinator_epoch.to_be_bytes());
    let mut b = encode_control_batch(control_type, &value, timestamp_ms);
    let attrs = crate::batch::ATTR_CONTROL | crate::batch::ATTR_TRANSACTIONAL;
    b[21..23].copy_from_slice(&attrs.to_be_bytes());
    b[43..51].copy_from_slice(&marker.producer_id.to_be_bytes());
    b[51..53].copy_from_slice(&marker.producer_epoch.to_be_bytes());
    let crc = compute_crc(&b);
    b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    b
}

/// The transaction marker in `batch`, or `None` if it is not a well-formed transactional control
/// batch of type ABORT or COMMIT.
pub fn decode_txn_marker(batch: &[u8]) -> Option<TxnMarker> {
    let h = validate_batch(batch).ok()?;
    if !h.is_transactional() {
        return None;
    }
    let (control_type, value) = decode_control_batch(batch)?;
    let kind = match control_type {
        CONTROL_TYPE_ABORT => TxnMarkerKind::Abort,
        CONTROL_TYPE_COMMIT => TxnMarkerKind::Commit,
        _ => return None,
    };
    let epoch_bytes: [u8; 4] = value.get(2..6)?.try_into().ok()?;
    Some(TxnMarker {
        producer_id: h.producer_id,
        producer_epoch: h.producer_epoch,
        kind,
        coordinator_epoch: i32::from_be_bytes(epoch_bytes),
    })
}

/// The control type and value of the first record of a control batch (`None` if `batch` is not
/// an uncompressed control batch with a well-formed control key).
pub fn decode_control_batch(batch: &[u8]) -> Option<(i16, Vec<u8>)> {
    let h = validate_batch(batch).ok()?;
    if !h.is_control() || h.compression() != 0 {
        return None;
    }
    let mut c = Cursor {
        buf: batch.get(BATCH_HEADER_LEN..h.total_len())?,
    };
    let _len = c.varint().ok()?;
    let _attributes = c.take(1).ok()?;
    let _ts_delta = c.varint().ok()?;
    let _offset_delta = c.varint().ok()?;
    let key = c.nullable().ok()??;
    let value = c.nullable().ok()?.unwrap_or_default();
    if key.len() < 4 {
        return None;
    }
    let control_type = i16::from_be_bytes([key[2], key[3]]);
    Some((control_type, value.to_vec()))
}

struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn varint(&mut self) -> Result<i64, RecordError> {
        let (v, n) = read_varlong(self.buf).ok_or(RecordError::Malformed)?;
        self.buf = &self.buf[n..];
        Ok(v)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], RecordError> {
        if len > self.buf.len() {
            return Err(RecordError::Malformed);
        }
        let (head, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(head)
    }

    fn nullable(&mut self) -> Result<Option<&'a [u8]>, RecordError> {
        let len = self.varint()?;
        if len < 0 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| RecordError::Malformed)?;
        self.take(len).map(Some)
    }
}

/// Parses one record (the bytes after its length prefix) of a batch with header `h`.
fn parse_record<'a>(h: &BatchHeader, rec: &'a [u8]) -> Result<RecordView<'a>, RecordError> {
    let mut r = Cursor { buf: rec };
    r.take(1)?; // record attributes
    let timestamp_delta = r.varint()?;
    let offset_delta = r.varint()?;
    let key = r.nullable()?;
    let value = r.nullable()?;
    let header_count = r.varint()?;
    let timestamp_ms = if h.is_log_append_time() {
        h.max_timestamp
    } else {
        h.base_timestamp.wrapping_add(timestamp_delta)
    };
    Ok(RecordView {
        offset: h.base_offset.saturating_add(offset_delta),
        timestamp_ms,
        key,
        value,
        header_count,
        headers: r.buf,
    })
}

/// Calls `f` with every record of the one whole, validated batch `batch` (see
/// [`crate::batch::validate_batch`]), decompressing it first if needed; the decompressed records may
/// take at most `max_decompressed_bytes`. The declared record count must match the records present,
/// with no bytes left over, as Kafka checks. Returns the batch header.
pub fn visit_records(
    batch: &[u8],
    max_decompressed_bytes: usize,
    mut f: impl FnMut(RecordView<'_>),
) -> Result<BatchHeader, RecordError> {
    visit_encoded_records(batch, max_decompressed_bytes, |view, _| f(view))
}

/// [`visit_records`], also passing each record's encoding (its length prefix included) as it
/// stands in the uncompressed records section.
fn visit_encoded_records(
    batch: &[u8],
    max_decompressed_bytes: usize,
    mut f: impl FnMut(RecordView<'_>, &[u8]),
) -> Result<BatchHeader, RecordError> {
    let h = BatchHeader::parse(batch)?;
    let section = batch
        .get(BATCH_HEADER_LEN..h.total_len())
        .ok_or(RecordError::Malformed)?;
    let codec = Codec::from_id(h.compression())?;
    let decompressed;
    let mut c = Cursor {
        buf: if codec == Codec::None {
            section
        } else {
            decompressed = compression::decompress(codec, section, max_decompressed_bytes, false)?;
            &decompressed
        },
    };
    for _ in 0..h.record_count.max(0) {
        let before = c.buf;
        let len = usize::try_from(c.varint()?).map_err(|_| RecordError::Malformed)?;
        let view = parse_record(&h, c.take(len)?)?;
        let encoded = &before[..before.len() - c.buf.len()];
        f(view, encoded);
    }
    if !c.buf.is_empty() {
        return Err(RecordError::Malformed);
    }
    Ok(h)
}

/// What [`retain_records`] made of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retained {
    /// Every record was kept: the batch stays as it is, byte for byte.
    Whole,
    /// The batch rebuilt with the records kept.
    Rebuilt(Vec<u8>),
    /// No record was kept: the batch's header alone, for a caller that must keep the batch's
    /// offsets or producer sequence (Kafka keeps the last batch of each producer so).
    Emptied(Vec<u8>),
}

/// Whether [`retain_records`] stamps a delete horizon (KIP-534) in the batch it returns. A batch
/// that has one keeps it: the horizon is stamped once, at the first cleaning that keeps the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Horizon {
    /// Leave the batch's timestamps as they are.
    Unchanged,
    /// Stamp this horizon if the batch keeps a record with a null value (a tombstone).
    IfTombstoneKept(i64),
    /// Stamp this horizon if the batch keeps any record (a transaction marker the cleaner may
    /// remove once the horizon has passed).
    Always(i64),
}

/// Rebuilds the one whole, validated batch `batch` with only the records `keep` says yes to, as
/// Kafka's log cleaner does for magic 2: the header keeps its base offset and last offset delta
/// (the batch still spans the same offsets, so offsets stay contiguous batch by batch and a
/// consumer moves past it), its timestamps, producer id, epoch, base sequence (an idempotent
/// producer's state survives) and flags; the records kept are copied as they were encoded (their
/// deltas stay right) and compressed again with the batch's codec. A batch left with no record
/// is its header, uncompressed, with a count of 0. Decompression is bounded by
/// `max_decompressed_bytes`.
///
/// With a delete horizon to stamp (`horizon`), the batch gets the horizon flag and the horizon in
/// its base timestamp field, and every kept record's timestamp delta is re-based on it, so the
/// records' timestamps read back unchanged (Kafka's `MemoryRecordsBuilder` does the same).
pub fn retain_records(
    batch: &[u8],
    max_decompressed_bytes: usize,
    horizon: Horizon,
    mut keep: impl FnMut(&RecordView<'_>) -> bool,
) -> Result<Retained, RecordError> {
    let mut kept = Vec::new();
    let mut count = 0i32;
    let mut tombstone_kept = false;
    let h = visit_encoded_records(batch, max_decompressed_bytes, |view, encoded| {
        if keep(&view) {
            kept.extend_from_slice(encoded);
            count += 1;
            tombstone_kept |= view.value.is_none();
        }
    })?;
    let stamp = match horizon {
        _ if h.delete_horizon_ms().is_some() || count == 0 => None,
        Horizon::Unchanged => None,
        Horizon::IfTombstoneKept(at) => tombstone_kept.then_some(at),
        Horizon::Always(at) => Some(at),
    };
    if count == h.record_count && stamp.is_none() {
        return Ok(Retained::Whole);
    }
    let mut attributes = i16::from_be_bytes([batch[21], batch[22]]);
    if let Some(at) = stamp {
        kept = rebase_timestamps(&kept, count, h.base_timestamp, at)?;
        attributes |= ATTR_DELETE_HORIZON;
    }
    let body = if count == 0 {
        attributes &= !ATTR_COMPRESSION_MASK;
        Vec::new()
    } else {
        compression::compress(Codec::from_id(h.compression())?, &kept, false)?
    };
    let length = i32::try_from(BATCH_HEADER_LEN - LENGTH_PREFIX + body.len())
        .map_err(|_| RecordError::Malformed)?;
    let mut b = Vec::with_capacity(BATCH_HEADER_LEN + body.len());
    b.extend_from_slice(&batch[..BATCH_HEADER_LEN]);
    b[LENGTH_PREFIX - 4..LENGTH_PREFIX].copy_from_slice(&length.to_be_bytes());
    b[21..23].copy_from_slice(&attributes.to_be_bytes());
    if let Some(at) = stamp {
        b[BASE_TIMESTAMP_AT..BASE_TIMESTAMP_AT + 8].copy_from_slice(&at.to_be_bytes());
    }
    b[BATCH_HEADER_LEN - 4..BATCH_HEADER_LEN].copy_from_slice(&count.to_be_bytes());
    b.extend_from_slice(&body);
    let crc = compute_crc(&b);
    b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(if count == 0 {
        Retained::Emptied(b)
    } else {
        Retained::Rebuilt(b)
    })
}

/// The `count` encoded records of `section` (length prefixes included) with their timestamp
/// deltas moved from base timestamp `from` to `to` (wrapping, as the decoder adds them back).
fn rebase_timestamps(
    section: &[u8],
    count: i32,
    from: i64,
    to: i64,
) -> Result<Vec<u8>, RecordError> {
    let mut out = Vec::with_capacity(section.len() + 16);
    let mut c = Cursor { buf: section };
    let mut rec = Vec::new();
    for _ in 0..count {
        let len = usize::try_from(c.varint()?).map_err(|_| RecordError::Malformed)?;
        let mut r = Cursor { buf: c.take(len)? };
        let attributes = r.take(1)?;
        let delta = r.varint()?;
        rec.clear();
        rec.extend_from_slice(attributes);
        write_varlong(&mut rec, from.wrapping_add(delta).wrapping_sub(to));
        rec.extend_from_slice(r.buf);
        put_len(&mut out, rec.len());
        out.extend_from_slice(&rec);
    }
    Ok(out)
}

/// Decodes every record of the concatenated uncompressed batches in `data` (as a log read or a
/// Fetch response carries them). A partial batch at the end, which a Fetch response may hold, is
/// ignored; control batches (transaction markers) are skipped. Counts from the wire never size an
/// allocation beyond the bytes present.
pub fn decode_records(data: &[u8]) -> Result<Vec<Record>, RecordError> {
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= BATCH_HEADER_LEN {
        let declared = BatchHeader::parse(rest)?.total_len();
        if declared > rest.len() {
            break; // partial trailing batch
        }
        let h = validate_batch(rest)?;
        let total = h.total_len();
        if h.is_control() {
            rest = &rest[total..];
            continue;
        }
        if h.compression() != 0 {
            return Err(RecordError::Compressed(h.compression()));
        }
        let mut c = Cursor {
            buf: &rest[BATCH_HEADER_LEN..total],
        };
        for _ in 0..h.record_count.max(0) {
            let len = usize::try_from(c.varint()?).map_err(|_| RecordError::Malformed)?;
            let view = parse_record(&h, c.take(len)?)?;
            out.push(Record {
                offset: view.offset,
                timestamp_ms: view.timestamp_ms,
                key: view.key.map(<[u8]>::to_vec),
                value: view.value.map(<[u8]>::to_vec),
                headers: view.headers()?,
            });
        }
        rest = &rest[total..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txn_markers_round_trip_and_plain_control_batches_are_not_markers() {
        for kind in [TxnMarkerKind::Abort, TxnMarkerKind::Commit] {
            let marker = TxnMarker {
                producer_id: 4242,
                producer_epoch: 7,
                kind,
                coordinator_epoch: 3,
            };
            let b = encode_txn_marker(&marker, 1_700_000_000_000);
            let h = validate_batch(&b).expect("valid batch");
            assert!(h.is_control() && h.is_transactional());
            assert_eq!(
                (h.producer_id, h.producer_epoch, h.base_sequence),
                (4242, 7, -1)
            );
            assert_eq!(decode_txn_marker(&b), Some(marker));
            assert!(decode_records(&b).expect("decodes").is_empty());
        }
        let plain = encode_control_batch(CONTROL_TYPE_COMMIT, &[0, 0, 0, 0, 0, 3], 0);
        assert_eq!(decode_txn_marker(&plain), None);
        let data = encode_batch(&[NewRecord::default()]);
        assert_eq!(decode_txn_marker(&data), None);
    }

    #[test]
    fn control_batches_round_trip_and_are_skipped_by_record_decoding() {
        let b = encode_control_batch(0x5701, b"{\"voters\":[1,2]}", 7);
        let h = validate_batch(&b).expect("valid");
        assert!(h.is_control());
        assert_eq!(
            decode_control_batch(&b),
            Some((0x5701, b"{\"voters\":[1,2]}".to_vec()))
        );
        assert_eq!(decode_records(&b), Ok(Vec::new()));
        assert_eq!(
            decode_control_batch(&encode_batch(&[NewRecord::default()])),
            None
        );
    }

    #[test]
    fn round_trip_with_headers_nulls_and_timestamps() {
        let headers = [("h1", Some(&b"v"[..])), ("h2", None)];
        let batch = encode_batch(&[
            NewRecord {
                key: Some(b"k1"),
                value: Some(b"v1"),
                headers: &headers,
                timestamp_ms: 10,
            },
            NewRecord {
                key: None,
                value: None,
                headers: &[],
                timestamp_ms: 12,
            },
        ]);
        let h = crate::batch::validate_batches(&batch).expect("valid batch");
        assert_eq!((h[0].record_count, h[0].max_timestamp), (2, 12));
        let recs = decode_records(&[batch.clone(), batch].concat()).expect("decode");
        assert_eq!(recs.len(), 4);
        assert_eq!(recs[0].key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(
            recs[0].headers,
            vec![
                ("h1".to_string(), Some(b"v".to_vec())),
                ("h2".to_string(), None)
            ]
        );
        assert_eq!(
            (recs[1].offset, recs[1].timestamp_ms, recs[1].value.clone()),
            (1, 12, None)
        );
    }

    #[test]
    fn a_truncated_batch_yields_no_records_and_no_panic() {
        let batch = encode_batch(&[NewRecord {
            key: Some(b"key"),
            value: Some(b"value"),
            headers: &[],
            timestamp_ms: 1,
        }]);
        for cut in 0..batch.len() {
            assert!(
                decode_records(&batch[..cut]).map_or(true, |r| r.is_empty()),
                "cut at {cut} produced records"
            );
        }
        let mut corrupt = batch.clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        assert!(
            decode_records(&corrupt).is_err(),
            "a CRC mismatch must be an error"
        );
    }

    proptest::proptest! {
        /// Whatever the records, codec and choice: the rebuilt batch is valid, spans the same
        /// offsets with the same header fields, and holds exactly the records kept, in order.
        #[test]
        fn retain_records_keeps_exactly_the_chosen_records(
            records in proptest::collection::vec(
                (
                    proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..8)),
                    proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..40)),
                    0i64..1000,
                    proptest::bool::ANY,
                ),
                1..20,
            ),
            codec in proptest::sample::select(vec![
                Codec::None,
                Codec::Gzip,
                Codec::Snappy,
                Codec::Lz4,
                Codec::Zstd,
            ]),
            horizon in proptest::option::of(-5_000i64..5_000_000_000_000),
        ) {
            let new: Vec<NewRecord<'_>> = records
                .iter()
                .map(|(k, v, ts, _)| NewRecord {
                    key: k.as_deref(),
                    value: v.as_deref(),
                    headers: &[],
                    timestamp_ms: *ts,
                })
                .collect();
            let mut batch = match codec {
                Codec::None => encode_batch(&new),
                c => encode_batch_compressed(&new, c).expect("compress"),
            };
            crate::batch::set_base_offset(&mut batch, 100);
            let before = validate_batch(&batch).expect("valid");
            let mut i = 0;
            let rule = horizon.map_or(Horizon::Unchanged, Horizon::IfTombstoneKept);
            let retained = retain_records(&batch, 1 << 20, rule, |_| {
                i += 1;
                records[i - 1].3
            })
            .expect("retain");
            let kept: Vec<_> = records
                .iter()
                .enumerate()
                .filter(|(_, r)| r.3)
                .map(|(j, r)| (100 + j as i64, r.0.clone(), r.1.clone(), r.2))
                .collect();
            let rebuilt = match retained {
                Retained::Whole => {
                    proptest::prop_assert_eq!(kept.len(), records.len());
                    batch.clone()
                }
                Retained::Rebuilt(b) => b,
                Retained::Emptied(b) => {
                    proptest::prop_assert!(kept.is_empty());
                    b
                }
            };
            let after = validate_batch(&rebuilt).expect("the rebuilt batch is valid");
            // A kept tombstone gets the horizon in the base timestamp's place; nothing else moves.
            let stamped = horizon.filter(|_| kept.iter().any(|r| r.2.is_none()));
            proptest::prop_assert_eq!(after.delete_horizon_ms(), stamped);
            proptest::prop_assert_eq!(
                (after.base_offset, after.last_offset_delta, after.base_timestamp, after.max_timestamp),
                (before.base_offset, before.last_offset_delta, stamped.unwrap_or(before.base_timestamp), before.max_timestamp)
            );
            proptest::prop_assert_eq!(after.record_count as usize, kept.len());
            let mut got = Vec::new();
            visit_records(&rebuilt, 1 << 20, |r| {
                got.push((r.offset, r.key.map(<[u8]>::to_vec), r.value.map(<[u8]>::to_vec), r.timestamp_ms))
            })
            .expect("records");
            proptest::prop_assert_eq!(got, kept);
        }
    }
}
