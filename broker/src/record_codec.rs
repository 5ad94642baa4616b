//! Encoding and decoding of uncompressed v2 record batches written by the broker itself (internal
//! topics such as `__consumer_offsets`).
//!
//! Client batches are never re-encoded: they travel as bytes. This module exists only for records the
//! broker authors and later reads back, so it handles uncompressed batches and rejects anything else.

use bytes::{BufMut, Bytes};

/// Header length of a v2 batch up to and including `recordCount`.
const HEADER_LEN: usize = 61;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("batch truncated")]
    Truncated,
    #[error("compressed batch (codec {0}) in an internal topic")]
    Compressed(u8),
    #[error("malformed varint or length")]
    Malformed,
}

/// One record of a decoded batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
}

fn put_varint(buf: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.push((z as u8) | 0x80);
        z >>= 7;
    }
    buf.push(z as u8);
}

fn put_bytes(buf: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varint(buf, -1),
        Some(b) => {
            put_varint(buf, b.len() as i64);
            buf.extend_from_slice(b);
        }
    }
}

/// Builds one uncompressed batch (base offset 0, to be assigned by the log) of `records`.
/// A record's key and value; `None` is a null.
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

pub fn encode_batch(records: &[KeyValue<'_>], timestamp_ms: i64) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, (key, value)) in records.iter().enumerate() {
        let mut rec = Vec::new();
        rec.push(0); // attributes
        put_varint(&mut rec, 0); // timestamp delta
        put_varint(&mut rec, i as i64); // offset delta
        put_bytes(&mut rec, *key);
        put_bytes(&mut rec, *value);
        put_varint(&mut rec, 0); // headers
        put_varint(&mut body, rec.len() as i64);
        body.extend_from_slice(&rec);
    }
    let count = records.len() as i32;
    let mut batch = Vec::with_capacity(HEADER_LEN + body.len());
    batch.put_i64(0);
    batch.put_i32((HEADER_LEN - 12 + body.len()) as i32);
    batch.put_i32(0); // partition leader epoch
    batch.put_i8(2);
    batch.put_u32(0); // crc, filled below
    batch.put_i16(0);
    batch.put_i32(count - 1);
    batch.put_i64(timestamp_ms);
    batch.put_i64(timestamp_ms);
    batch.put_i64(-1);
    batch.put_i16(-1);
    batch.put_i32(-1);
    batch.put_i32(count);
    batch.extend_from_slice(&body);
    let crc = weir_storage::batch::compute_crc(&batch);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn varint(&mut self) -> Result<i64, CodecError> {
        let mut z: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or(CodecError::Truncated)?;
            self.pos += 1;
            z |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(((z >> 1) as i64) ^ -((z & 1) as i64));
            }
        }
        Err(CodecError::Malformed)
    }

    fn bytes(&mut self, whole: &Bytes) -> Result<Option<Bytes>, CodecError> {
        let len = self.varint()?;
        if len < 0 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| CodecError::Malformed)?;
        let end = self.pos.checked_add(len).ok_or(CodecError::Malformed)?;
        if end > self.buf.len() {
            return Err(CodecError::Truncated);
        }
        let out = whole.slice(self.pos..end);
        self.pos = end;
        Ok(Some(out))
    }
}

fn be_i64(b: &[u8], at: usize) -> Result<i64, CodecError> {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map(i64::from_be_bytes)
        .ok_or(CodecError::Truncated)
}

fn be_i32(b: &[u8], at: usize) -> Result<i32, CodecError> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(i32::from_be_bytes)
        .ok_or(CodecError::Truncated)
}

/// Decodes every record of the concatenated uncompressed batches in `data`.
pub fn decode_records(data: &Bytes) -> Result<Vec<Record>, CodecError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < data.len() {
        let base_offset = be_i64(data, at)?;
        let length = usize::try_from(be_i32(data, at + 8)?).map_err(|_| CodecError::Malformed)?;
        let end = at.checked_add(12 + length).ok_or(CodecError::Malformed)?;
        if end > data.len() || 12 + length < HEADER_LEN {
            return Err(CodecError::Truncated);
        }
        let attributes = i16::from_be_bytes([data[at + 21], data[at + 22]]);
        let codec = (attributes & 0x7) as u8;
        if codec != 0 {
            return Err(CodecError::Compressed(codec));
        }
        let base_ts = be_i64(data, at + 27)?;
        let count = be_i32(data, at + 57)?;
        let body = data.slice(at..end);
        let mut c = Cursor {
            buf: &body,
            pos: HEADER_LEN,
        };
        for _ in 0..count.max(0) {
            let len = usize::try_from(c.varint()?).map_err(|_| CodecError::Malformed)?;
            let rec_end = c.pos.checked_add(len).ok_or(CodecError::Malformed)?;
            if rec_end > body.len() {
                return Err(CodecError::Truncated);
            }
            c.pos += 1; // record attributes
            let ts_delta = c.varint()?;
            let offset_delta = c.varint()?;
            let key = c.bytes(&body)?;
            let value = c.bytes(&body)?;
            c.pos = rec_end; // headers are not used by internal records
            out.push(Record {
                offset: base_offset + offset_delta,
                timestamp: base_ts + ts_delta,
                key,
                value,
            });
        }
        at = end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_valid_crc() {
        let batch = encode_batch(
            &[
                (Some(b"k1"), Some(b"v1")),
                (None, None),
                (Some(b""), Some(b"x")),
            ],
            42,
        );
        let headers = weir_storage::batch::validate_batches(&batch).expect("valid batch");
        assert_eq!(headers.len(), 1);
        assert_eq!(headers[0].record_count, 3);
        let recs = decode_records(&Bytes::from(batch)).expect("decode");
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(recs[1].value, None);
        assert_eq!(recs[2].offset, 2);
        assert_eq!(recs[2].timestamp, 42);
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let batch = encode_batch(&[(Some(b"key"), Some(b"value"))], 1);
        for cut in 0..batch.len() {
            let data = Bytes::copy_from_slice(&batch[..cut]);
            assert!(
                cut == 0 || decode_records(&data).is_err(),
                "cut at {cut} decoded"
            );
        }
    }
}
