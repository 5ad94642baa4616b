//! Record batches as the CLI writes and reads them: uncompressed v2 batches with keys, values and
//! headers, and Kafka's default partitioner (murmur2 of the key) so keyed records land where other
//! Kafka clients would put them.

use anyhow::{bail, Context};
use bytes::{BufMut, Bytes};

/// One record to produce or one consumed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliRecord {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// v2 batch header length up to and including the record count.
const HEADER_LEN: usize = 61;

fn put_varint(buf: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.push((z as u8) | 0x80);
        z >>= 7;
    }
    buf.push(z as u8);
}

fn put_len_bytes(buf: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varint(buf, -1),
        Some(b) => {
            put_varint(buf, b.len() as i64);
            buf.extend_from_slice(b);
        }
    }
}

/// One uncompressed batch of `records` (base offset 0: the broker assigns offsets), all stamped
/// `timestamp_ms`.
pub fn encode_batch(records: &[CliRecord], timestamp_ms: i64) -> Bytes {
    let mut body = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let mut rec = Vec::new();
        rec.push(0); // attributes
        put_varint(&mut rec, 0); // timestamp delta
        put_varint(&mut rec, i as i64); // offset delta
        put_len_bytes(&mut rec, r.key.as_deref());
        put_len_bytes(&mut rec, r.value.as_deref());
        put_varint(&mut rec, r.headers.len() as i64);
        for (k, v) in &r.headers {
            put_len_bytes(&mut rec, Some(k.as_bytes()));
            put_len_bytes(&mut rec, v.as_deref());
        }
        put_varint(&mut body, rec.len() as i64);
        body.extend_from_slice(&rec);
    }
    let count = records.len() as i32;
    let mut batch = Vec::with_capacity(HEADER_LEN + body.len());
    batch.put_i64(0); // base offset
    batch.put_i32((HEADER_LEN - 12 + body.len()) as i32);
    batch.put_i32(-1); // partition leader epoch
    batch.put_i8(2); // magic
    batch.put_u32(0); // crc, below
    batch.put_i16(0); // attributes: no compression, CreateTime
    batch.put_i32(count - 1); // last offset delta
    batch.put_i64(timestamp_ms);
    batch.put_i64(timestamp_ms);
    batch.put_i64(-1); // producer id
    batch.put_i16(-1);
    batch.put_i32(-1);
    batch.put_i32(count);
    batch.extend_from_slice(&body);
    let crc = weir_storage::batch::compute_crc(&batch);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(batch)
}

struct Cursor<'a> {
    whole: &'a Bytes,
    pos: usize,
    end: usize,
}

impl Cursor<'_> {
    fn byte(&mut self) -> anyhow::Result<u8> {
        if self.pos >= self.end {
            bail!("record truncated");
        }
        let b = self.whole[self.pos];
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> anyhow::Result<i64> {
        let mut z: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            z |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(((z >> 1) as i64) ^ -((z & 1) as i64));
            }
        }
        bail!("malformed varint")
    }

    fn bytes(&mut self) -> anyhow::Result<Option<Bytes>> {
        let len = self.varint()?;
        if len < 0 {
            return Ok(None);
        }
        let len = usize::try_from(len).context("record length")?;
        let end = self.pos.checked_add(len).context("record length")?;
        if end > self.end {
            bail!("record truncated");
        }
        let out = self.whole.slice(self.pos..end);
        self.pos = end;
        Ok(Some(out))
    }
}

fn be_i64(b: &[u8], at: usize) -> Option<i64> {
    b.get(at..at + 8)?.try_into().ok().map(i64::from_be_bytes)
}

fn be_i32(b: &[u8], at: usize) -> Option<i32> {
    b.get(at..at + 4)?.try_into().ok().map(i32::from_be_bytes)
}

fn be_i16(b: &[u8], at: usize) -> Option<i16> {
    b.get(at..at + 2)?.try_into().ok().map(i16::from_be_bytes)
}

/// Decodes the records of the concatenated batches in `data` (a Fetch response's records). A
/// partial batch at the end (cut by the fetch size limit) is ignored; control batches are skipped.
/// Compressed batches are an error.
pub fn decode_batches(data: &Bytes) -> anyhow::Result<Vec<CliRecord>> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 12 <= data.len() {
        let base_offset = be_i64(data, at).context("batch header")?;
        let batch_len = be_i32(data, at + 8).context("batch header")?;
        let batch_len = usize::try_from(batch_len).context("negative batch length")?;
        let end = at + 12 + batch_len;
        if end > data.len() {
            break; // partial batch
        }
        if batch_len + 12 < HEADER_LEN {
            bail!("batch at offset {base_offset} is shorter than a v2 header");
        }
        let magic = data[at + 16];
        if magic != 2 {
            bail!("batch at offset {base_offset} has magic {magic}; only v2 batches are supported");
        }
        let attributes = be_i16(data, at + 21).context("batch header")?;
        let first_ts = be_i64(data, at + 27).context("batch header")?;
        let count = be_i32(data, at + 57).context("batch header")?;
        let codec = attributes & 0x7;
        let is_control = attributes & 0x20 != 0;
        if codec != 0 {
            bail!(
                "batch at offset {base_offset} is compressed (codec {codec}); `weir consume` reads \
                 only uncompressed batches"
            );
        }
        let mut cur = Cursor {
            whole: data,
            pos: at + HEADER_LEN,
            end,
        };
        for _ in 0..count.max(0) {
            let len = cur.varint()?;
            let len = usize::try_from(len).context("record length")?;
            let rec_end = cur.pos.checked_add(len).context("record length")?;
            if rec_end > end {
                bail!("record truncated");
            }
            let mut rec = Cursor {
                whole: data,
                pos: cur.pos,
                end: rec_end,
            };
            rec.byte()?; // attributes
            let ts_delta = rec.varint()?;
            let offset_delta = rec.varint()?;
            let key = rec.bytes()?;
            let value = rec.bytes()?;
            let n_headers = rec.varint()?;
            let mut headers = Vec::new();
            for _ in 0..n_headers.max(0) {
                let k = rec.bytes()?.unwrap_or_default();
                let v = rec.bytes()?;
                headers.push((String::from_utf8_lossy(&k).into_owned(), v));
            }
            cur.pos = rec_end;
            if !is_control {
                out.push(CliRecord {
                    offset: base_offset + offset_delta,
                    timestamp: first_ts + ts_delta,
                    key,
                    value,
                    headers,
                });
            }
        }
        at = end;
    }
    Ok(out)
}

/// Kafka's murmur2 hash (as in the Java client's `Utils.murmur2`).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    match tail.len() {
        3 => {
            h ^= u32::from(tail[2]) << 16;
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        2 => {
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        1 => {
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        _ => {}
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner picks for `key` among `partitions`.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    if partitions <= 0 {
        return 0;
    }
    (murmur2(key) & 0x7fff_ffff) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_round_trips_with_headers() {
        let records = vec![
            CliRecord {
                offset: 0,
                timestamp: 0,
                key: Some(Bytes::from_static(b"k")),
                value: Some(Bytes::from_static(b"hello")),
                headers: vec![("h".into(), Some(Bytes::from_static(b"v")))],
            },
            CliRecord {
                offset: 0,
                timestamp: 0,
                key: None,
                value: Some(Bytes::from_static(b"world")),
                headers: Vec::new(),
            },
        ];
        let batch = encode_batch(&records, 1_700_000_000_000);
        let back = decode_batches(&batch).expect("decode");
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].offset, 0);
        assert_eq!(back[1].offset, 1);
        assert_eq!(back[0].timestamp, 1_700_000_000_000);
        assert_eq!(back[0].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(back[0].headers, records[0].headers);
        assert_eq!(back[1].value.as_deref(), Some(&b"world"[..]));
        // A cut-off second copy is ignored, not an error.
        let mut two = batch.to_vec();
        two.extend_from_slice(&batch[..20]);
        assert_eq!(decode_batches(&Bytes::from(two)).expect("decode").len(), 2);
    }

    #[test]
    fn murmur2_matches_the_java_client() {
        // Values from Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58897971
        );
    }
}
