//! The records of `__transaction_state` in Kafka's layout: key `(version 0, transactional_id)`,
//! value version 0 `(producer_id, producer_epoch, transaction_timeout_ms, transaction_status,
//! transaction_partitions [(topic, [partition])], last_update_timestamp_ms,
//! start_timestamp_ms)`; a null value (tombstone) removes the transactional id.

use std::collections::BTreeSet;

use bytes::{Buf, BufMut};

use super::state::{TxnMetadata, TxnState};

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;

/// A decoding failure: the bytes are not a record this module wrote.
#[derive(Debug, thiserror::Error)]
#[error("unreadable __transaction_state record: {0}")]
pub struct RecordError(pub &'static str);

fn put_string(buf: &mut Vec<u8>, s: &str) {
    let len = s.len().min(i16::MAX as usize);
    buf.put_i16(i16::try_from(len).unwrap_or(i16::MAX));
    buf.extend_from_slice(&s.as_bytes()[..len]);
}

fn get_string(buf: &mut &[u8]) -> Result<String, RecordError> {
    if buf.remaining() < 2 {
        return Err(RecordError("short string length"));
    }
    let len = usize::try_from(buf.get_i16()).map_err(|_| RecordError("null string"))?;
    if buf.remaining() < len {
        return Err(RecordError("short string"));
    }
    let s = std::str::from_utf8(&buf[..len])
        .map_err(|_| RecordError("string not UTF-8"))?
        .to_string();
    buf.advance(len);
    Ok(s)
}

pub fn encode_key(transactional_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + transactional_id.len());
    k.put_i16(KEY_VERSION);
    put_string(&mut k, transactional_id);
    k
}

pub fn decode_key(mut b: &[u8]) -> Result<String, RecordError> {
    if b.remaining() < 2 {
        return Err(RecordError("short key"));
    }
    if b.get_i16() != KEY_VERSION {
        return Err(RecordError("unknown key version"));
    }
    get_string(&mut b)
}

pub fn encode_value(m: &TxnMetadata) -> Vec<u8> {
    let mut v = Vec::new();
    v.put_i16(VALUE_VERSION);
    v.put_i64(m.producer_id);
    v.put_i16(m.producer_epoch);
    v.put_i32(m.timeout_ms);
    v.put_i8(m.state.id());
    // Partitions grouped by topic, as Kafka writes them.
    let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
    for (t, p) in &m.partitions {
        match topics.last_mut() {
            Some((last, ps)) if *last == t.as_str() => ps.push(*p),
            _ => topics.push((t.as_str(), vec![*p])),
        }
    }
    v.put_i32(i32::try_from(topics.len()).unwrap_or(i32::MAX));
    for (t, ps) in topics {
        put_string(&mut v, t);
        v.put_i32(i32::try_from(ps.len()).unwrap_or(i32::MAX));
        for p in ps {
            v.put_i32(p);
        }
    }
    v.put_i64(m.last_update_ms);
    v.put_i64(m.start_ms);
    v
}

pub fn decode_value(transactional_id: &str, mut b: &[u8]) -> Result<TxnMetadata, RecordError> {
    if b.remaining() < 2 + 8 + 2 + 4 + 1 + 4 {
        return Err(RecordError("short value"));
    }
    if b.get_i16() != VALUE_VERSION {
        return Err(RecordError("unknown value version"));
    }
    let producer_id = b.get_i64();
    let producer_epoch = b.get_i16();
    let timeout_ms = b.get_i32();
    let state = TxnState::from_id(b.get_i8()).ok_or(RecordError("unknown state"))?;
    let topics = b.get_i32();
    let mut partitions = BTreeSet::new();
    for _ in 0..topics.max(0) {
        let topic = get_string(&mut b)?;
        if b.remaining() < 4 {
            return Err(RecordError("short partition count"));
        }
        let count = b.get_i32();
        // Each partition takes four bytes: a count beyond what is left is corrupt.
        if usize::try_from(count).unwrap_or(0) > b.remaining() / 4 {
            return Err(RecordError("partition count beyond the value"));
        }
        for _ in 0..count.max(0) {
            partitions.insert((topic.clone(), b.get_i32()));
        }
    }
    if b.remaining() < 16 {
        return Err(RecordError("short timestamps"));
    }
    let last_update_ms = b.get_i64();
    let start_ms = b.get_i64();
    Ok(TxnMetadata {
        transactional_id: transactional_id.to_string(),
        producer_id,
        producer_epoch,
        last_producer_epoch: -1,
        timeout_ms,
        state,
        partitions,
        start_ms,
        last_update_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_value_round_trip() {
        let m = TxnMetadata {
            transactional_id: "tx-1".into(),
            producer_id: 42,
            producer_epoch: 3,
            last_producer_epoch: -1,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: [
                ("a".to_string(), 0),
                ("a".to_string(), 2),
                ("b".to_string(), 1),
            ]
            .into_iter()
            .collect(),
            start_ms: 100,
            last_update_ms: 200,
        };
        assert_eq!(decode_key(&encode_key("tx-1")).expect("key"), "tx-1");
        let v = encode_value(&m);
        assert_eq!(decode_value("tx-1", &v).expect("value"), m);
        for cut in 0..v.len() {
            assert!(decode_value("tx-1", &v[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn value_layout_is_kafkas() {
        let m = TxnMetadata {
            transactional_id: "t".into(),
            producer_id: 1,
            producer_epoch: 2,
            last_producer_epoch: -1,
            timeout_ms: 3,
            state: TxnState::PrepareCommit,
            partitions: [("x".to_string(), 5)].into_iter().collect(),
            start_ms: 6,
            last_update_ms: 7,
        };
        let mut want = Vec::new();
        want.extend_from_slice(&0i16.to_be_bytes());
        want.extend_from_slice(&1i64.to_be_bytes());
        want.extend_from_slice(&2i16.to_be_bytes());
        want.extend_from_slice(&3i32.to_be_bytes());
        want.push(2);
        want.extend_from_slice(&1i32.to_be_bytes());
        want.extend_from_slice(&1i16.to_be_bytes());
        want.push(b'x');
        want.extend_from_slice(&1i32.to_be_bytes());
        want.extend_from_slice(&5i32.to_be_bytes());
        want.extend_from_slice(&7i64.to_be_bytes());
        want.extend_from_slice(&6i64.to_be_bytes());
        assert_eq!(encode_value(&m), want);
        assert_eq!(encode_key("t"), vec![0, 0, 0, 1, b't']);
    }
}
