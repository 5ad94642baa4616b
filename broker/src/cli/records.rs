//! Record batches as the CLI writes and reads them: uncompressed v2 batches with keys, values and
//! headers, and Kafka's default partitioner (murmur2 of the key) so keyed records land where other
//! Kafka clients would put them.

use bytes::Bytes;
use weir_storage::records::{HeaderRef, NewRecord, RecordError};

/// One record to produce or one consumed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliRecord {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// One uncompressed batch of `records` (base offset 0: the broker assigns offsets), all stamped
/// `timestamp_ms`.
pub fn encode_batch(records: &[CliRecord], timestamp_ms: i64) -> Bytes {
    let headers: Vec<Vec<HeaderRef<'_>>> = records
        .iter()
        .map(|r| {
            r.headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_deref()))
                .collect()
        })
        .collect();
    let new: Vec<NewRecord<'_>> = records
        .iter()
        .zip(&headers)
        .map(|(r, h)| NewRecord {
            key: r.key.as_deref(),
            value: r.value.as_deref(),
            headers: h,
            timestamp_ms,
        })
        .collect();
    Bytes::from(weir_storage::records::encode_batch(&new))
}

/// Decodes the records of the concatenated batches in `data` (a Fetch response's records). A
/// partial batch at the end (cut by the fetch size limit) is ignored; control batches are skipped.
/// Compressed batches are an error.
pub fn decode_batches(data: &Bytes) -> anyhow::Result<Vec<CliRecord>> {
    let records = weir_storage::records::decode_records(data).map_err(|e| match e {
        RecordError::Compressed(codec) => anyhow::anyhow!(
            "a batch is compressed (codec {codec}); `weir consume` reads only uncompressed batches"
        ),
        other => anyhow::anyhow!("cannot read the fetched records: {other}"),
    })?;
    Ok(records
        .into_iter()
        .map(|r| CliRecord {
            offset: r.offset,
            timestamp: r.timestamp_ms,
            key: r.key.map(Bytes::from),
            value: r.value.map(Bytes::from),
            headers: r
                .headers
                .into_iter()
                .map(|(k, v)| (k, v.map(Bytes::from)))
                .collect(),
        })
        .collect())
}

/// The offset after the last whole batch in `data` (a Fetch response's records), or `None` when
/// it holds none. Consumers move past batches they skip (control batches, such as the one a new
/// partition leader writes when its epoch starts) with it, or they would fetch them forever.
pub fn next_offset(data: &[u8]) -> Option<i64> {
    let mut at = 0usize;
    let mut next = None;
    while let Some(rest) = data.get(at..) {
        let Ok(header) = weir_storage::batch::BatchHeader::parse(rest) else {
            break;
        };
        if header.total_len() > rest.len() {
            break;
        }
        next = Some(header.last_offset().saturating_add(1));
        at += header.total_len();
    }
    next
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
    fn next_offset_passes_whole_batches_only() {
        let one = CliRecord {
            offset: 0,
            timestamp: 0,
            key: None,
            value: Some(Bytes::from_static(b"x")),
            headers: Vec::new(),
        };
        let batch = encode_batch(&[one.clone(), one.clone(), one], 0);
        assert_eq!(next_offset(&[]), None);
        assert_eq!(next_offset(&batch), Some(3));
        // A second batch at offset 3, then one cut off by the fetch size limit.
        let mut second = batch.to_vec();
        second[..8].copy_from_slice(&3i64.to_be_bytes());
        let mut data = batch.to_vec();
        data.extend_from_slice(&second);
        data.extend_from_slice(&batch[..30]);
        assert_eq!(next_offset(&data), Some(6));
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
