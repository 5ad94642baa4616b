//! Kafka's legacy message formats, magic 0 and magic 1 ("message sets"), and their conversion to
//! and from the v2 batches the log stores.
//!
//! Old producers (Produce v0-2) send message sets; [`parse_message_set`] reads one (decompressing
//! a compressed wrapper message, bounded) and [`to_v2_batch`] turns it into one v2 batch, as a
//! Kafka 3.x broker up-converts on append. Old consumers (Fetch v0-3) read message sets;
//! [`down_convert`] turns stored v2 batches into magic 0 or 1 messages, as Kafka did before 4.0.
//! This module owns only the formats; which requests need them is the broker's business.
//!
//! A message (both magics, big endian):
//!
//! | field | type | |
//! |---|---|---|
//! | offset | i64 | absolute; inside a magic-1 compressed wrapper, relative to the first inner message |
//! | message_size | i32 | bytes after this field |
//! | crc | u32 | CRC32 (IEEE) of everything after it |
//! | magic | i8 | 0 or 1 |
//! | attributes | i8 | bits 0-2 codec, bit 3 LogAppendTime (magic 1) |
//! | timestamp | i64 | magic 1 only |
//! | key | i32 length + bytes | -1 for null |
//! | value | i32 length + bytes | -1 for null; a compressed wrapper's value is the compressed inner message set |
//!
//! Nothing here allocates from a length on the wire before checking it against the bytes present, and
//! decompression is bounded by the caller's limit.

use crate::batch::{BatchHeader, BATCH_HEADER_LEN, LOG_OVERHEAD};
use crate::compression::{self, Codec, CompressionError};
use crate::records::{self, NewRecord, RecordError};

/// Message format v0 (Kafka < 0.10): no timestamps.
pub const MAGIC_V0: i8 = 0;
/// Message format v1 (Kafka 0.10): timestamps.
pub const MAGIC_V1: i8 = 1;

/// Offset of the magic byte in a message, after offset, message_size and crc. It is at the same
/// place as in a v2 batch, so the first magic byte of a produce payload tells the formats apart.
pub const MAGIC_OFFSET: usize = 16;

const ATTR_CODEC_MASK: u8 = 0x07;
const ATTR_LOG_APPEND_TIME: u8 = 0x08;
const V2_ATTR_LOG_APPEND_TIME: i16 = 0x08;
/// crc, magic, attributes, key length, value length.
const V0_MIN_SIZE: usize = 4 + 1 + 1 + 4 + 4;
/// As v0, plus the timestamp.
const V1_MIN_SIZE: usize = V0_MIN_SIZE + 8;
/// "No timestamp": what every magic-0 record carries once converted.
pub const NO_TIMESTAMP: i64 = -1;

/// Why a message set cannot be read or written.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum LegacyError {
    /// Truncated data or a CRC mismatch (Kafka: CORRUPT_MESSAGE).
    #[error("corrupt message set: {0}")]
    Corrupt(String),
    /// Well-formed but not acceptable (Kafka: INVALID_RECORD).
    #[error("invalid message set: {0}")]
    Invalid(String),
    /// A codec these formats cannot carry: zstd exists only for magic 2 (Kafka:
    /// UNSUPPORTED_COMPRESSION_TYPE).
    #[error("{0:?} compression cannot be used with message format v0/v1")]
    UnsupportedCodec(Codec),
    /// Decompression failed or exceeded its limit.
    #[error("{0}")]
    Compression(#[from] CompressionError),
    /// A stored v2 batch could not be read.
    #[error("{0}")]
    Records(#[from] RecordError),
}

/// One message of a parsed message set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyRecord {
    /// The timestamp (magic 1), or [`NO_TIMESTAMP`] (magic 0).
    pub timestamp_ms: i64,
    /// Key, `None` for null.
    pub key: Option<Vec<u8>>,
    /// Value, `None` for null.
    pub value: Option<Vec<u8>>,
}

/// A produce payload in a legacy format: its records in order, and how they were compressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageSet {
    /// 0 or 1.
    pub magic: i8,
    /// The wrapper message's codec, [`Codec::None`] for plain messages.
    pub codec: Codec,
    /// The (inner) messages.
    pub records: Vec<LegacyRecord>,
}

/// One message, borrowed from the buffer it was read from.
struct Message<'a> {
    magic: i8,
    attributes: u8,
    timestamp_ms: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
}

fn be_i32(b: &[u8]) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    i32::from_be_bytes(a)
}

fn be_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_be_bytes(a)
}

/// Reads an i32-length-prefixed nullable byte string from the front of `buf`.
fn nullable_bytes<'a>(buf: &mut &'a [u8]) -> Result<Option<&'a [u8]>, LegacyError> {
    let short = || LegacyError::Corrupt("message key or value truncated".into());
    let len = be_i32(buf.get(..4).ok_or_else(short)?);
    *buf = &buf[4..];
    if len < 0 {
        return Ok(None);
    }
    let len = usize::try_from(len).map_err(|_| short())?;
    let bytes = buf.get(..len).ok_or_else(short)?;
    *buf = &buf[len..];
    Ok(Some(bytes))
}

/// Splits the message at the front of `buf`: returns it and the rest. `buf` must hold it whole.
fn next_message(buf: &[u8]) -> Result<(Message<'_>, &[u8]), LegacyError> {
    let head = buf
        .get(..LOG_OVERHEAD)
        .ok_or_else(|| LegacyError::Corrupt("message header truncated".into()))?;
    let size = usize::try_from(be_i32(&head[8..]))
        .map_err(|_| LegacyError::Corrupt("negative message size".into()))?;
    let body = buf
        .get(LOG_OVERHEAD..LOG_OVERHEAD.saturating_add(size))
        .ok_or_else(|| LegacyError::Corrupt("message truncated".into()))?;
    if size < V0_MIN_SIZE {
        return Err(LegacyError::Corrupt(format!(
            "message size {size} is below the minimum"
        )));
    }
    let magic = body[4] as i8;
    let min = match magic {
        MAGIC_V0 => V0_MIN_SIZE,
        MAGIC_V1 => V1_MIN_SIZE,
        other => {
            return Err(LegacyError::Invalid(format!(
                "message magic {other} inside a legacy message set"
            )))
        }
    };
    if size < min {
        return Err(LegacyError::Corrupt(format!(
            "message size {size} is below the minimum for magic {magic}"
        )));
    }
    let stored = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    let actual = crc32fast::hash(&body[4..]);
    if stored != actual {
        return Err(LegacyError::Corrupt(format!(
            "message CRC mismatch: stored {stored:#010x}, computed {actual:#010x}"
        )));
    }
    let attributes = body[5];
    let mut rest = &body[6..];
    let timestamp_ms = if magic == MAGIC_V1 {
        let ts = be_i64(rest);
        rest = &rest[8..];
        ts
    } else {
        NO_TIMESTAMP
    };
    let key = nullable_bytes(&mut rest)?;
    let value = nullable_bytes(&mut rest)?;
    if !rest.is_empty() {
        return Err(LegacyError::Corrupt(
            "message has bytes after its value".into(),
        ));
    }
    let message = Message {
        magic,
        attributes,
        timestamp_ms,
        key,
        value,
    };
    Ok((message, &buf[LOG_OVERHEAD + size..]))
}

fn owned(m: &Message<'_>, timestamp_ms: i64) -> LegacyRecord {
    LegacyRecord {
        timestamp_ms,
        key: m.key.map(<[u8]>::to_vec),
        value: m.value.map(<[u8]>::to_vec),
    }
}

/// Parses a produce payload in message format v0 or v1: plain messages of one magic, or exactly
/// one compressed wrapper message, whose inner messages are decompressed into at most
/// `max_decompressed_bytes`. Checks every CRC (wrapper and inner) and the rules Kafka's log
/// validator applies to these formats.
pub fn parse_message_set(
    buf: &[u8],
    max_decompressed_bytes: usize,
) -> Result<MessageSet, LegacyError> {
    let mut shallow = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        let (m, tail) = next_message(rest)?;
        shallow.push(m);
        rest = tail;
    }
    let first = shallow
        .first()
        .ok_or_else(|| LegacyError::Invalid("no message in the message set".into()))?;
    let magic = first.magic;
    if let Some(m) = shallow.iter().find(|m| m.magic != magic) {
        return Err(LegacyError::Invalid(format!(
            "message magic {} differs from the first message's {magic}",
            m.magic
        )));
    }
    let compressed = shallow.iter().any(|m| m.attributes & ATTR_CODEC_MASK != 0);
    if !compressed {
        let records = shallow.iter().map(|m| owned(m, m.timestamp_ms)).collect();
        return Ok(MessageSet {
            magic,
            codec: Codec::None,
            records,
        });
    }
    if shallow.len() > 1 {
        return Err(LegacyError::Invalid(
            "a compressed message set must be exactly one wrapper message".into(),
        ));
    }
    let wrapper = first;
    let codec = Codec::from_id(wrapper.attributes & ATTR_CODEC_MASK)?;
    if codec == Codec::Zstd {
        return Err(LegacyError::UnsupportedCodec(codec));
    }
    let value = wrapper.value.ok_or_else(|| {
        LegacyError::Invalid("compressed wrapper message with a null value".into())
    })?;
    let inner = compression::decompress(codec, value, max_decompressed_bytes, magic == MAGIC_V0)?;
    let log_append_time = magic == MAGIC_V1 && wrapper.attributes & ATTR_LOG_APPEND_TIME != 0;
    let mut records = Vec::new();
    let mut rest = &inner[..];
    while !rest.is_empty() {
        let (m, tail) = next_message(rest)?;
        if m.magic != magic {
            return Err(LegacyError::Invalid(format!(
                "inner message magic {} differs from its wrapper's {magic}",
                m.magic
            )));
        }
        if m.attributes & ATTR_CODEC_MASK != 0 {
            return Err(LegacyError::Invalid(
                "a compressed wrapper message contains a compressed message".into(),
            ));
        }
        let ts = if log_append_time {
            wrapper.timestamp_ms
        } else {
            m.timestamp_ms
        };
        records.push(owned(&m, ts));
        rest = tail;
    }
    if records.is_empty() {
        return Err(LegacyError::Invalid(
            "compressed wrapper message without inner messages".into(),
        ));
    }
    Ok(MessageSet {
        magic,
        codec,
        records,
    })
}

/// The one v2 batch (base offset 0, CreateTime, no producer id) holding `set`'s records, compressed
/// with the set's codec. Keys, values and timestamps are kept (magic-0 records have none: -1).
pub fn to_v2_batch(set: &MessageSet) -> Result<Vec<u8>, CompressionError> {
    let records: Vec<NewRecord<'_>> = set
        .records
        .iter()
        .map(|r| NewRecord {
            key: r.key.as_deref(),
            value: r.value.as_deref(),
            headers: &[],
            timestamp_ms: r.timestamp_ms,
        })
        .collect();
    match set.codec {
        Codec::None => Ok(records::encode_batch(&records)),
        codec => records::encode_batch_compressed(&records, codec),
    }
}

/// Appends one message to `out`.
fn put_message(
    out: &mut Vec<u8>,
    offset: i64,
    magic: i8,
    attributes: u8,
    timestamp_ms: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) {
    let start = out.len();
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes()); // message_size, below
    out.extend_from_slice(&0u32.to_be_bytes()); // crc, below
    out.push(magic as u8);
    out.push(attributes);
    if magic == MAGIC_V1 {
        out.extend_from_slice(&timestamp_ms.to_be_bytes());
    }
    for field in [key, value] {
        match field {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(b) => {
                // Fields come from stored batches, themselves far below 2 GiB.
                out.extend_from_slice(&i32::try_from(b.len()).unwrap_or(i32::MAX).to_be_bytes());
                out.extend_from_slice(b);
            }
        }
    }
    let size = i32::try_from(out.len() - start - LOG_OVERHEAD).unwrap_or(i32::MAX);
    out[start + 8..start + 12].copy_from_slice(&size.to_be_bytes());
    let crc = crc32fast::hash(&out[start + LOG_OVERHEAD + 4..]);
    out[start + 12..start + 16].copy_from_slice(&crc.to_be_bytes());
}

/// A record read from a stored batch, as down-conversion needs it.
struct Converted {
    offset: i64,
    timestamp_ms: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
}

/// Converts the stored v2 batches in `data` (a log read, which may end with a partial batch) to
/// messages of `to_magic` (0 or 1) for a fetch from `fetch_offset`, as Kafka's down-conversion
/// does: control batches are dropped, headers are dropped (these formats have none), magic-0
/// messages lose their timestamps, and a compressed batch becomes one wrapper message of the same
/// codec holding all its records (clients skip those before their fetch offset), while records of
/// an uncompressed batch before `fetch_offset` are left out.
///
/// Output stops before the message that would take it past `max_bytes`, but holds at least one
/// message so that a consumer always progresses. A zstd batch, which these formats cannot carry,
/// ends the output there; if it is the first, the result is [`LegacyError::UnsupportedCodec`].
pub fn down_convert(
    data: &[u8],
    to_magic: i8,
    fetch_offset: i64,
    max_bytes: usize,
    max_decompressed_bytes: usize,
) -> Result<Vec<u8>, LegacyError> {
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= BATCH_HEADER_LEN {
        let h = BatchHeader::parse(rest).map_err(RecordError::from)?;
        let Some(batch) = rest.get(..h.total_len()) else {
            break; // partial trailing batch
        };
        rest = &rest[h.total_len()..];
        if h.is_control() {
            continue;
        }
        let codec = Codec::from_id(h.compression())?;
        if codec == Codec::Zstd {
            if out.is_empty() {
                return Err(LegacyError::UnsupportedCodec(codec));
            }
            break;
        }
        let mut recs = Vec::new();
        records::visit_records(batch, max_decompressed_bytes, |r| {
            if codec != Codec::None || r.offset >= fetch_offset {
                recs.push(Converted {
                    offset: r.offset,
                    timestamp_ms: r.timestamp_ms,
                    key: r.key.map(<[u8]>::to_vec),
                    value: r.value.map(<[u8]>::to_vec),
                });
            }
        })?;
        let log_append_time = to_magic == MAGIC_V1 && h.attributes & V2_ATTR_LOG_APPEND_TIME != 0;
        let timestamp_bits = if log_append_time {
            ATTR_LOG_APPEND_TIME
        } else {
            0
        };
        let mut piece = Vec::new();
        if codec == Codec::None {
            for r in &recs {
                piece.clear();
                put_message(
                    &mut piece,
                    r.offset,
                    to_magic,
                    timestamp_bits,
                    r.timestamp_ms,
                    r.key.as_deref(),
                    r.value.as_deref(),
                );
                if !out.is_empty() && out.len() + piece.len() > max_bytes {
                    return Ok(out);
                }
                out.extend_from_slice(&piece);
            }
            continue;
        }
        let (Some(first), Some(last)) = (recs.first(), recs.last()) else {
            continue;
        };
        let mut inner = Vec::new();
        for r in &recs {
            // Magic 1 numbers inner messages from 0 and the wrapper carries the last absolute offset;
            // magic 0 uses absolute offsets throughout.
            let inner_offset = if to_magic == MAGIC_V1 {
                r.offset - first.offset
            } else {
                r.offset
            };
            put_message(
                &mut inner,
                inner_offset,
                to_magic,
                timestamp_bits,
                r.timestamp_ms,
                r.key.as_deref(),
                r.value.as_deref(),
            );
        }
        let packed = compression::compress(codec, &inner, to_magic == MAGIC_V0)?;
        let wrapper_ts = recs
            .iter()
            .map(|r| r.timestamp_ms)
            .max()
            .unwrap_or(NO_TIMESTAMP);
        put_message(
            &mut piece,
            last.offset,
            to_magic,
            codec.id() | timestamp_bits,
            wrapper_ts,
            None,
            Some(&packed),
        );
        if !out.is_empty() && out.len() + piece.len() > max_bytes {
            return Ok(out);
        }
        out.extend_from_slice(&piece);
    }
    Ok(out)
}

/// Test helpers that write message sets the way old producers do.
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use super::*;

    /// A message to write: timestamp, key, value (`None` for null).
    pub type NewMessage<'a> = (i64, Option<&'a [u8]>, Option<&'a [u8]>);

    /// A message set of plain messages of `magic`, one per `(timestamp, key, value)`, with
    /// offsets 0, 1, ... (the broker assigns real ones).
    pub fn plain_set(magic: i8, records: &[NewMessage<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, (ts, key, value)) in records.iter().enumerate() {
            put_message(&mut out, i as i64, magic, 0, *ts, *key, *value);
        }
        out
    }

    /// One compressed wrapper message holding `records` (inner offsets as Kafka's producers
    /// write them: from 0 for magic 1, and also from 0 for magic 0).
    pub fn compressed_set(magic: i8, codec: Codec, records: &[NewMessage<'_>]) -> Vec<u8> {
        let inner = plain_set(magic, records);
        let packed = compression::compress(codec, &inner, magic == MAGIC_V0).expect("compress");
        let last = records.len() as i64 - 1;
        let ts = records.iter().map(|r| r.0).max().unwrap_or(NO_TIMESTAMP);
        let mut out = Vec::new();
        put_message(&mut out, last, magic, codec.id(), ts, None, Some(&packed));
        out
    }

    /// A message as an old consumer sees it: offset, timestamp, key, value.
    pub type ReadMessage = (i64, i64, Option<Vec<u8>>, Option<Vec<u8>>);

    /// Parses a message set as an old consumer does, inner messages of wrappers resolved to
    /// absolute offsets. Panics on malformed input (test use).
    pub fn read_set(buf: &[u8]) -> Vec<ReadMessage> {
        let mut out = Vec::new();
        let mut rest = buf;
        while !rest.is_empty() {
            let offset = be_i64(rest);
            let (m, tail) = next_message(rest).expect("well-formed message");
            rest = tail;
            let codec = Codec::from_id(m.attributes & ATTR_CODEC_MASK).expect("codec");
            if codec == Codec::None {
                out.push((
                    offset,
                    m.timestamp_ms,
                    m.key.map(<[u8]>::to_vec),
                    m.value.map(<[u8]>::to_vec),
                ));
                continue;
            }
            let inner = compression::decompress(
                codec,
                m.value.expect("wrapper value"),
                1 << 30,
                m.magic == MAGIC_V0,
            )
            .expect("decompress");
            let inner_msgs = read_set(&inner);
            let last_inner = inner_msgs.last().map_or(0, |x| x.0);
            for (o, ts, k, v) in inner_msgs {
                let abs = if m.magic == MAGIC_V1 {
                    offset - last_inner + o
                } else {
                    o
                };
                out.push((abs, ts, k, v));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::batch::{set_base_offset, validate_batches};

    const CODECS: [Codec; 4] = [Codec::None, Codec::Gzip, Codec::Snappy, Codec::Lz4];

    fn sample() -> Vec<NewMessage<'static>> {
        vec![
            (1_700_000_000_000, Some(b"k1"), Some(b"v1")),
            (1_700_000_000_005, None, Some(b"v2")),
            (1_700_000_000_003, Some(b"k3"), None),
        ]
    }

    fn set_for(magic: i8, codec: Codec) -> Vec<u8> {
        match codec {
            Codec::None => plain_set(magic, &sample()),
            c => compressed_set(magic, c, &sample()),
        }
    }

    #[test]
    fn up_conversion_keeps_keys_values_and_timestamps() {
        for magic in [MAGIC_V0, MAGIC_V1] {
            for codec in CODECS {
                let set = parse_message_set(&set_for(magic, codec), 1 << 20).expect("parse");
                assert_eq!((set.magic, set.codec), (magic, codec));
                let batch = to_v2_batch(&set).expect("convert");
                let headers = validate_batches(&batch).expect("a valid v2 batch");
                assert_eq!(headers.len(), 1);
                assert_eq!(headers[0].compression(), codec.id());
                let mut got = Vec::new();
                records::visit_records(&batch, 1 << 20, |r| {
                    got.push((r.offset, r.timestamp_ms, r.key.map(<[u8]>::to_vec)))
                })
                .expect("records");
                let want: Vec<_> = sample()
                    .iter()
                    .enumerate()
                    .map(|(i, (ts, k, _))| {
                        let ts = if magic == MAGIC_V0 { NO_TIMESTAMP } else { *ts };
                        (i as i64, ts, k.map(<[u8]>::to_vec))
                    })
                    .collect();
                assert_eq!(got, want, "magic {magic} {codec:?}");
            }
        }
    }

    #[test]
    fn down_conversion_round_trips_through_an_old_consumers_parser() {
        for codec in CODECS {
            let set = parse_message_set(&set_for(MAGIC_V1, codec), 1 << 20).expect("parse");
            let mut batch = to_v2_batch(&set).expect("convert");
            set_base_offset(&mut batch, 40);
            for to_magic in [MAGIC_V0, MAGIC_V1] {
                let out = down_convert(&batch, to_magic, 40, 1 << 20, 1 << 20).expect("down");
                let got = read_set(&out);
                let want: Vec<ReadMessage> = sample()
                    .iter()
                    .enumerate()
                    .map(|(i, (ts, k, v))| {
                        let ts = if to_magic == MAGIC_V0 {
                            NO_TIMESTAMP
                        } else {
                            *ts
                        };
                        (
                            40 + i as i64,
                            ts,
                            k.map(<[u8]>::to_vec),
                            v.map(<[u8]>::to_vec),
                        )
                    })
                    .collect();
                assert_eq!(got, want, "{codec:?} to magic {to_magic}");
                // And what was written reads back as a produce payload of that magic.
                let again = parse_message_set(&out, 1 << 20).expect("reparse");
                assert_eq!((again.magic, again.codec), (to_magic, codec));
            }
        }
    }

    #[test]
    fn down_conversion_starts_at_the_fetch_offset_and_respects_max_bytes() {
        let mut batch = to_v2_batch(&parse_message_set(&plain_set(1, &sample()), 1 << 20).unwrap())
            .expect("convert");
        set_base_offset(&mut batch, 10);
        let from_11 = read_set(&down_convert(&batch, 1, 11, 1 << 20, 1 << 20).expect("down"));
        assert_eq!(from_11.iter().map(|m| m.0).collect::<Vec<_>>(), [11, 12]);
        let one = read_set(&down_convert(&batch, 1, 10, 1, 1 << 20).expect("down"));
        assert_eq!(one.len(), 1, "at least one message even over max_bytes");
    }

    #[test]
    fn down_conversion_drops_control_batches_and_headers() {
        let headers = [("h", Some(&b"x"[..]))];
        let with_headers = records::encode_batch(&[NewRecord {
            key: Some(b"k"),
            value: Some(b"v"),
            headers: &headers,
            timestamp_ms: 7,
        }]);
        // A transaction marker: a control batch (attributes transactional | control).
        let mut control = records::encode_batch(&[NewRecord {
            key: Some(&[0, 0, 0, 1]),
            value: Some(&[0, 0, 0, 0, 0, 0]),
            headers: &[],
            timestamp_ms: 8,
        }]);
        control[21..23].copy_from_slice(&0x30i16.to_be_bytes());
        let crc = crate::batch::compute_crc(&control);
        control[17..21].copy_from_slice(&crc.to_be_bytes());
        set_base_offset(&mut control, 1);
        let mut data = with_headers;
        data.extend_from_slice(&control);
        let out = down_convert(&data, MAGIC_V1, 0, 1 << 20, 1 << 20).expect("down");
        assert_eq!(
            read_set(&out),
            vec![(0, 7, Some(b"k".to_vec()), Some(b"v".to_vec()))]
        );
    }

    #[test]
    fn zstd_batches_cannot_be_down_converted() {
        let mut zstd = records::encode_batch(&[NewRecord {
            key: Some(b"k"),
            value: Some(b"v"),
            headers: &[],
            timestamp_ms: 7,
        }]);
        // Only the attribute matters: conversion refuses before reading the records.
        zstd[21..23].copy_from_slice(&4i16.to_be_bytes());
        let crc = crate::batch::compute_crc(&zstd);
        zstd[17..21].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(
            down_convert(&zstd, MAGIC_V0, 0, 1 << 20, 1 << 20),
            Err(LegacyError::UnsupportedCodec(Codec::Zstd))
        );
        // After convertible data, the output stops before it instead.
        let mut data = plain_set_batch();
        data.extend_from_slice(&zstd);
        let out = down_convert(&data, MAGIC_V0, 0, 1 << 20, 1 << 20).expect("down");
        assert_eq!(read_set(&out).len(), sample().len());
    }

    fn plain_set_batch() -> Vec<u8> {
        to_v2_batch(&parse_message_set(&plain_set(1, &sample()), 1 << 20).expect("parse"))
            .expect("convert")
    }

    #[test]
    fn wrong_crc_mixed_magic_and_two_wrappers_are_refused() {
        let mut bad = plain_set(1, &sample());
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(
            parse_message_set(&bad, 1 << 20),
            Err(LegacyError::Corrupt(_))
        ));
        let mut mixed = plain_set(0, &sample()[..1]);
        mixed.extend(plain_set(1, &sample()[..1]));
        assert!(matches!(
            parse_message_set(&mixed, 1 << 20),
            Err(LegacyError::Invalid(_))
        ));
        let mut two = compressed_set(1, Codec::Gzip, &sample());
        two.extend(compressed_set(1, Codec::Gzip, &sample()));
        assert!(matches!(
            parse_message_set(&two, 1 << 20),
            Err(LegacyError::Invalid(_))
        ));
    }

    #[test]
    fn a_compressed_wrapper_beyond_the_limit_is_refused() {
        let big = vec![0u8; 1 << 20];
        let set = compressed_set(1, Codec::Gzip, &[(1, None, Some(&big))]);
        assert!(set.len() < 10_000);
        assert!(matches!(
            parse_message_set(&set, 1 << 16),
            Err(LegacyError::Compression(CompressionError::TooLarge { .. }))
        ));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = parse_message_set(&bytes, 4096);
            let _ = down_convert(&bytes, 1, 0, 4096, 4096);
        }

        #[test]
        fn parse_never_panics_on_mutated_valid_sets(
            magic in 0i8..2,
            codec in 0u8..4,
            flips in proptest::collection::vec((0usize..400, proptest::num::u8::ANY), 0..6),
            cut in 0usize..500,
        ) {
            let codec = Codec::from_id(codec).expect("codec");
            let mut b = set_for(magic, codec);
            for (i, x) in flips {
                let n = b.len();
                b[i % n] ^= x;
            }
            b.truncate(cut.min(b.len()));
            if let Ok(set) = parse_message_set(&b, 4096) {
                let batch = to_v2_batch(&set).expect("a parsed set converts");
                proptest::prop_assert!(validate_batches(&batch).is_ok());
            }
        }
    }
}
