//! Hand-written wire code for the few places the vendored crate does not cover: the request
//! header (we must read it for API keys the crate does not know, and must never let a short
//! buffer reach the crate), Produce v0-2, Fetch v0-3 and ListOffsets v0, which the crate does
//! not implement (it follows Kafka 4, whose Produce starts at v3, Fetch at v4, ListOffsets at v1). Old clients need them
//! (and librdkafka < 2.11.1 turns compression off when a broker's minimum Produce version is
//! above 0). Their records are message sets (magic 0/1); like every other records field they
//! pass through here as bytes.
//!
//! Every read is bounds-checked against the bytes remaining and every count is checked
//! before anything is allocated for it.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::requests::{
    FetchPartition, FetchRequest, FetchTopic, ListOffsetsPartition, ListOffsetsRequest,
    ListOffsetsTopic, ProducePartition, ProduceRequest, ProduceTopic,
};
use crate::responses::{FetchResponse, ListOffsetsResponse, ProduceResponse};

/// A bounds-checked cursor over a request buffer. Errors are plain descriptions: the
/// caller wraps them into the right [`crate::DecodeError`] variant.
pub(crate) struct Reader {
    buf: Bytes,
}

impl Reader {
    pub(crate) fn new(buf: Bytes) -> Self {
        Reader { buf }
    }

    /// The unread rest of the buffer.
    pub(crate) fn into_rest(self) -> Bytes {
        self.buf
    }

    fn need(&self, n: usize, what: &str) -> Result<(), String> {
        if self.buf.remaining() < n {
            return Err(format!(
                "{what}: need {n} bytes, {} remaining",
                self.buf.remaining()
            ));
        }
        Ok(())
    }

    pub(crate) fn i8(&mut self, what: &str) -> Result<i8, String> {
        self.need(1, what)?;
        Ok(self.buf.get_i8())
    }

    pub(crate) fn i16(&mut self, what: &str) -> Result<i16, String> {
        self.need(2, what)?;
        Ok(self.buf.get_i16())
    }

    pub(crate) fn i32(&mut self, what: &str) -> Result<i32, String> {
        self.need(4, what)?;
        Ok(self.buf.get_i32())
    }

    pub(crate) fn i64(&mut self, what: &str) -> Result<i64, String> {
        self.need(8, what)?;
        Ok(self.buf.get_i64())
    }

    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<Bytes, String> {
        self.need(n, what)?;
        Ok(self.buf.split_to(n))
    }

    /// A classic (INT16-length) nullable string. `lossy` replaces invalid UTF-8 instead
    /// of failing, which we only want for the informational client id.
    pub(crate) fn nullable_string(
        &mut self,
        what: &str,
        lossy: bool,
    ) -> Result<Option<String>, String> {
        let len = self.i16(what)?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| format!("{what}: negative length {len}"))?;
        let raw = self.take(len, what)?;
        if lossy {
            Ok(Some(String::from_utf8_lossy(&raw).into_owned()))
        } else {
            std::str::from_utf8(&raw)
                .map(|s| Some(s.to_owned()))
                .map_err(|e| format!("{what}: {e}"))
        }
    }

    /// A classic non-nullable string.
    pub(crate) fn string(&mut self, what: &str) -> Result<String, String> {
        self.nullable_string(what, false)?
            .ok_or_else(|| format!("{what}: null where a string is required"))
    }

    /// Classic (INT32-length) nullable bytes, zero-copy.
    pub(crate) fn nullable_bytes(&mut self, what: &str) -> Result<Option<Bytes>, String> {
        let len = self.i32(what)?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| format!("{what}: negative length {len}"))?;
        self.take(len, what).map(Some)
    }

    /// A classic (INT32-count) non-nullable array length, bounded by the bytes remaining
    /// (every element takes at least one byte), so callers may pre-allocate from it.
    pub(crate) fn array_len(&mut self, what: &str) -> Result<usize, String> {
        let n = self.i32(what)?;
        let n = usize::try_from(n).map_err(|_| format!("{what}: invalid array length {n}"))?;
        if n > self.buf.remaining() {
            return Err(format!(
                "{what}: array length {n} exceeds the {} bytes remaining",
                self.buf.remaining()
            ));
        }
        Ok(n)
    }

    /// An unsigned varint of at most 5 bytes (a u32).
    pub(crate) fn uvarint(&mut self, what: &str) -> Result<u32, String> {
        let mut value: u32 = 0;
        for i in 0..5 {
            self.need(1, what)?;
            let byte = self.buf.get_u8();
            if i == 4 && byte > 0x0f {
                return Err(format!("{what}: varint does not fit in 32 bits"));
            }
            value |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("{what}: varint longer than 5 bytes"))
    }

    /// Skips a tagged-field section (flexible versions). Weir reads no tagged fields from
    /// request headers, so their contents are dropped.
    pub(crate) fn skip_tagged_fields(&mut self, what: &str) -> Result<(), String> {
        let count = self.uvarint(what)?;
        for _ in 0..count {
            let _tag = self.uvarint(what)?;
            let size = self.uvarint(what)?;
            let size = usize::try_from(size).map_err(|_| format!("{what}: tagged field size"))?;
            self.take(size, what)?;
        }
        Ok(())
    }
}

/// Decodes a Produce v0-2 body (v0-2 differ only in the record format inside `records`,
/// which we do not parse).
pub(crate) fn decode_produce_v0_2(body: Bytes) -> Result<ProduceRequest, String> {
    let mut r = Reader::new(body);
    let acks = r.i16("acks")?;
    let timeout_ms = r.i32("timeout_ms")?;
    let topic_count = r.array_len("topic_data")?;
    let mut topics = Vec::with_capacity(topic_count);
    for _ in 0..topic_count {
        let name = r.string("topic name")?;
        let partition_count = r.array_len("partition_data")?;
        let mut partitions = Vec::with_capacity(partition_count);
        for _ in 0..partition_count {
            let index = r.i32("partition index")?;
            let records = r.nullable_bytes("records")?;
            partitions.push(ProducePartition { index, records });
        }
        topics.push(ProduceTopic {
            name,
            partitions,
            ..ProduceTopic::default()
        });
    }
    Ok(ProduceRequest {
        transactional_id: None,
        acks,
        timeout_ms,
        topics,
        legacy_formats_allowed: true,
        adds_partitions_to_txn: false,
        uses_topic_ids: false,
    })
}

/// Decodes a Fetch v0-3 body. v3 adds the response-wide `max_bytes`; before it there is no such
/// limit. v0-1 read message format 0, v2-3 format 1.
pub(crate) fn decode_fetch_v0_3(version: i16, body: Bytes) -> Result<FetchRequest, String> {
    let mut r = Reader::new(body);
    let replica_id = r.i32("replica_id")?;
    let max_wait_ms = r.i32("max_wait_ms")?;
    let min_bytes = r.i32("min_bytes")?;
    let max_bytes = if version >= 3 {
        r.i32("max_bytes")?
    } else {
        i32::MAX
    };
    let topic_count = r.array_len("topics")?;
    let mut topics = Vec::with_capacity(topic_count);
    for _ in 0..topic_count {
        let name = r.string("topic name")?;
        let partition_count = r.array_len("partitions")?;
        let mut partitions = Vec::with_capacity(partition_count);
        for _ in 0..partition_count {
            let partition = r.i32("partition")?;
            let fetch_offset = r.i64("fetch_offset")?;
            let partition_max_bytes = r.i32("partition_max_bytes")?;
            partitions.push(FetchPartition {
                partition,
                fetch_offset,
                partition_max_bytes,
                ..FetchPartition::default()
            });
        }
        topics.push(FetchTopic {
            name,
            partitions,
            ..FetchTopic::default()
        });
    }
    Ok(FetchRequest {
        replica_id,
        max_wait_ms,
        min_bytes,
        max_bytes,
        topics,
        record_magic: if version >= 2 { 1 } else { 0 },
        ..FetchRequest::default()
    })
}

fn put_bytes(out: &mut BytesMut, b: &[u8]) -> Result<(), String> {
    let len = i32::try_from(b.len()).map_err(|_| format!("bytes of length {}", b.len()))?;
    out.put_i32(len);
    out.put_slice(b);
    Ok(())
}

/// Encodes a Fetch v0-3 response body: v1 adds `throttle_time_ms` in front. Records are always
/// written as bytes (empty when there is no data), never null.
pub(crate) fn encode_fetch_v0_3(
    out: &mut BytesMut,
    version: i16,
    resp: &FetchResponse,
) -> Result<(), String> {
    let records: usize = resp
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.records.len() + 32)
        .sum();
    out.reserve(records);
    if version >= 1 {
        out.put_i32(resp.throttle_time_ms);
    }
    put_array_len(out, resp.topics.len())?;
    for topic in &resp.topics {
        put_string(out, &topic.name)?;
        put_array_len(out, topic.partitions.len())?;
        for p in &topic.partitions {
            out.put_i32(p.partition_index);
            out.put_i16(p.error_code.0);
            out.put_i64(p.high_watermark);
            // Fetch v0-3 is always down-converted, which reads the records into memory.
            let records = p
                .records
                .in_memory()
                .ok_or("Fetch v0-3 records must be in memory")?;
            put_bytes(out, records)?;
        }
    }
    Ok(())
}

fn put_string(out: &mut BytesMut, s: &str) -> Result<(), String> {
    let len = i16::try_from(s.len()).map_err(|_| format!("string of {} bytes", s.len()))?;
    out.put_i16(len);
    out.put_slice(s.as_bytes());
    Ok(())
}

fn put_array_len(out: &mut BytesMut, n: usize) -> Result<(), String> {
    let n = i32::try_from(n).map_err(|_| format!("array of {n} elements"))?;
    out.put_i32(n);
    Ok(())
}

/// Encodes a Produce v0-2 response body: v1 adds `throttle_time_ms` at the end, v2 adds
/// `log_append_time_ms` per partition.
pub(crate) fn encode_produce_v0_2(
    out: &mut BytesMut,
    version: i16,
    resp: &ProduceResponse,
) -> Result<(), String> {
    put_array_len(out, resp.topics.len())?;
    for topic in &resp.topics {
        put_string(out, &topic.name)?;
        put_array_len(out, topic.partitions.len())?;
        for p in &topic.partitions {
            out.put_i32(p.index);
            out.put_i16(p.error_code.0);
            out.put_i64(p.base_offset);
            if version >= 2 {
                out.put_i64(p.log_append_time_ms);
            }
        }
    }
    if version >= 1 {
        out.put_i32(resp.throttle_time_ms);
    }
    Ok(())
}

/// Decodes a ListOffsets v0 body. Its `max_num_offsets` is read and not kept: Weir answers at
/// most one offset per partition, which is what every client asks for.
pub(crate) fn decode_list_offsets_v0(body: Bytes) -> Result<ListOffsetsRequest, String> {
    let mut r = Reader::new(body);
    let replica_id = r.i32("replica_id")?;
    let topic_count = r.array_len("topics")?;
    let mut topics = Vec::with_capacity(topic_count);
    for _ in 0..topic_count {
        let name = r.string("topic name")?;
        let partition_count = r.array_len("partitions")?;
        let mut partitions = Vec::with_capacity(partition_count);
        for _ in 0..partition_count {
            let partition_index = r.i32("partition")?;
            let timestamp = r.i64("timestamp")?;
            let _max_num_offsets = r.i32("max_num_offsets")?;
            partitions.push(ListOffsetsPartition {
                partition_index,
                timestamp,
                ..ListOffsetsPartition::default()
            });
        }
        topics.push(ListOffsetsTopic { name, partitions });
    }
    Ok(ListOffsetsRequest {
        replica_id,
        topics,
        ..ListOffsetsRequest::default()
    })
}

/// Encodes a ListOffsets v0 response body: per partition an array of offsets ("old style"),
/// holding the found offset, or empty when there is none.
pub(crate) fn encode_list_offsets_v0(
    out: &mut BytesMut,
    resp: &ListOffsetsResponse,
) -> Result<(), String> {
    put_array_len(out, resp.topics.len())?;
    for topic in &resp.topics {
        put_string(out, &topic.name)?;
        put_array_len(out, topic.partitions.len())?;
        for p in &topic.partitions {
            out.put_i32(p.partition_index);
            out.put_i16(p.error_code.0);
            if p.offset >= 0 && p.error_code.is_none() {
                put_array_len(out, 1)?;
                out.put_i64(p.offset);
            } else {
                put_array_len(out, 0)?;
            }
        }
    }
    Ok(())
}
