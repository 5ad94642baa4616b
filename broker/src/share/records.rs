//! The records of the share state log (`__share_group_state`): keys and values, encoded and
//! decoded. Decoding never trusts a length beyond the bytes present.
//!
//! - Group key `[0][group]`, value `[version i16][group epoch i32]`: a share group exists (a
//!   tombstone deletes it).
//! - Partition key `[1][group][topic id][partition i32]`, value `[version i16][kind u8][start
//!   offset i64][count i32]` then `count` state batches `[first i64][last i64][state u8][delivery
//!   count u16]`. Kind 0 is a snapshot (the whole state), kind 1 an update (the start offset and
//!   the offsets that changed, applied over what came before). A tombstone deletes the state.
//!
//! - Dead-letter intent key `[2][group][topic id][partition i32]`, value `[version i16][dead
//!   letter topic][partition i32][offset i64]`: dead letters of this share-partition are being
//!   appended to that partition of the dead-letter topic, whose log ended at that offset before;
//!   a tombstone once they are archived. After a crash in between, the records from that offset
//!   on say which dead letters are already there, so none is appended twice.
//!
//! Strings are `[len u16][utf-8]`. Integers are big-endian.

use bytes::{Buf, BufMut};

use super::partition::{ArchiveReason, PersistedPartition, PersistedState, StateBatch};
use crate::consumer_groups::TopicId;

const VERSION: i16 = 0;
const GROUP_KEY: u8 = 0;
const PARTITION_KEY: u8 = 1;
const INTENT_KEY: u8 = 2;
const SNAPSHOT: u8 = 0;
const UPDATE: u8 = 1;
/// Bytes of one encoded state batch.
const BATCH_BYTES: usize = 8 + 8 + 1 + 2;

/// A decoded key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StateKey {
    Group(String),
    Partition {
        group: String,
        topic_id: TopicId,
        partition: i32,
    },
    DeadLetterIntent {
        group: String,
        topic_id: TopicId,
        partition: i32,
    },
}

/// Where dead letters of a share-partition are being appended (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetterIntent {
    pub topic: String,
    pub partition: i32,
    /// The dead-letter partition's log end offset before the append.
    pub from_offset: i64,
}

pub fn encode_intent_value(i: &DeadLetterIntent) -> Vec<u8> {
    let mut out = Vec::new();
    out.put_i16(VERSION);
    put_str(&mut out, &i.topic);
    out.put_i32(i.partition);
    out.put_i64(i.from_offset);
    out
}

pub fn decode_intent_value(mut b: &[u8]) -> Option<DeadLetterIntent> {
    if b.remaining() < 2 {
        return None;
    }
    let _version = b.get_i16();
    let topic = get_str(&mut b)?;
    if b.remaining() < 12 {
        return None;
    }
    Some(DeadLetterIntent {
        topic,
        partition: b.get_i32(),
        from_offset: b.get_i64(),
    })
}

/// A decoded partition value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartitionValue {
    Snapshot(PersistedPartition),
    Update(PersistedPartition),
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let bytes = &s.as_bytes()[..s.len().min(usize::from(u16::MAX))];
    out.put_u16(u16::try_from(bytes.len()).unwrap_or(u16::MAX));
    out.extend_from_slice(bytes);
}

fn get_str(b: &mut &[u8]) -> Option<String> {
    if b.remaining() < 2 {
        return None;
    }
    let len = usize::from(b.get_u16());
    if b.remaining() < len {
        return None;
    }
    let s = String::from_utf8(b[..len].to_vec()).ok()?;
    b.advance(len);
    Some(s)
}

impl StateKey {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            StateKey::Group(g) => {
                out.put_u8(GROUP_KEY);
                put_str(&mut out, g);
            }
            StateKey::Partition {
                group,
                topic_id,
                partition,
            } => {
                out.put_u8(PARTITION_KEY);
                put_str(&mut out, group);
                out.extend_from_slice(topic_id);
                out.put_i32(*partition);
            }
            StateKey::DeadLetterIntent {
                group,
                topic_id,
                partition,
            } => {
                out.put_u8(INTENT_KEY);
                put_str(&mut out, group);
                out.extend_from_slice(topic_id);
                out.put_i32(*partition);
            }
        }
        out
    }

    pub fn decode(mut b: &[u8]) -> Option<StateKey> {
        if b.remaining() < 1 {
            return None;
        }
        match b.get_u8() {
            GROUP_KEY => Some(StateKey::Group(get_str(&mut b)?)),
            kind @ (PARTITION_KEY | INTENT_KEY) => {
                let group = get_str(&mut b)?;
                if b.remaining() < 16 + 4 {
                    return None;
                }
                let mut topic_id = [0u8; 16];
                b.copy_to_slice(&mut topic_id);
                let partition = b.get_i32();
                Some(if kind == PARTITION_KEY {
                    StateKey::Partition {
                        group,
                        topic_id,
                        partition,
                    }
                } else {
                    StateKey::DeadLetterIntent {
                        group,
                        topic_id,
                        partition,
                    }
                })
            }
            _ => None,
        }
    }
}

pub fn encode_group_value(group_epoch: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(6);
    out.put_i16(VERSION);
    out.put_i32(group_epoch);
    out
}

pub fn decode_group_value(mut b: &[u8]) -> Option<i32> {
    if b.remaining() < 6 {
        return None;
    }
    let _version = b.get_i16();
    Some(b.get_i32())
}

pub fn state_code(s: PersistedState) -> u8 {
    match s {
        PersistedState::Available => 0,
        PersistedState::Acknowledged => 2,
        PersistedState::Archived => 4,
        PersistedState::Archiving(ArchiveReason::Rejected) => 5,
        PersistedState::Archiving(ArchiveReason::DeliveryLimit) => 6,
        PersistedState::Archiving(ArchiveReason::Expired) => 7,
        PersistedState::Parked => 8,
        PersistedState::ParkedArchiving(ArchiveReason::Rejected) => 9,
        PersistedState::ParkedArchiving(ArchiveReason::DeliveryLimit) => 10,
        PersistedState::ParkedArchiving(ArchiveReason::Expired) => 11,
    }
}

pub fn state_of(code: u8) -> Option<PersistedState> {
    Some(match code {
        0 => PersistedState::Available,
        2 => PersistedState::Acknowledged,
        4 => PersistedState::Archived,
        5 => PersistedState::Archiving(ArchiveReason::Rejected),
        6 => PersistedState::Archiving(ArchiveReason::DeliveryLimit),
        7 => PersistedState::Archiving(ArchiveReason::Expired),
        8 => PersistedState::Parked,
        9 => PersistedState::ParkedArchiving(ArchiveReason::Rejected),
        10 => PersistedState::ParkedArchiving(ArchiveReason::DeliveryLimit),
        11 => PersistedState::ParkedArchiving(ArchiveReason::Expired),
        _ => return None,
    })
}

pub fn encode_partition_value(value: &PartitionValue) -> Vec<u8> {
    let (kind, p) = match value {
        PartitionValue::Snapshot(p) => (SNAPSHOT, p),
        PartitionValue::Update(p) => (UPDATE, p),
    };
    let mut out = Vec::with_capacity(2 + 1 + 8 + 4 + p.batches.len() * BATCH_BYTES);
    out.put_i16(VERSION);
    out.put_u8(kind);
    out.put_i64(p.start_offset);
    out.put_i32(i32::try_from(p.batches.len()).unwrap_or(i32::MAX));
    for b in &p.batches {
        out.put_i64(b.first_offset);
        out.put_i64(b.last_offset);
        out.put_u8(state_code(b.state));
        out.put_u16(b.delivery_count);
    }
    out
}

pub fn decode_partition_value(mut b: &[u8]) -> Option<PartitionValue> {
    if b.remaining() < 2 + 1 + 8 + 4 {
        return None;
    }
    let _version = b.get_i16();
    let kind = b.get_u8();
    let start_offset = b.get_i64();
    let count = usize::try_from(b.get_i32()).ok()?;
    if b.remaining() < count.checked_mul(BATCH_BYTES)? {
        return None;
    }
    let mut batches = Vec::with_capacity(count);
    for _ in 0..count {
        let first_offset = b.get_i64();
        let last_offset = b.get_i64();
        let state = state_of(b.get_u8())?;
        let delivery_count = b.get_u16();
        if first_offset > last_offset {
            return None;
        }
        batches.push(StateBatch {
            first_offset,
            last_offset,
            state,
            delivery_count,
        });
    }
    let p = PersistedPartition {
        start_offset,
        batches,
    };
    match kind {
        SNAPSHOT => Some(PartitionValue::Snapshot(p)),
        UPDATE => Some(PartitionValue::Update(p)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_round_trip() {
        for key in [
            StateKey::Group("g".into()),
            StateKey::Partition {
                group: "g".into(),
                topic_id: [3; 16],
                partition: 7,
            },
        ] {
            assert_eq!(StateKey::decode(&key.encode()), Some(key));
        }
        assert_eq!(decode_group_value(&encode_group_value(42)), Some(42));
        let intent = DeadLetterIntent {
            topic: "dlq".into(),
            partition: 2,
            from_offset: 77,
        };
        assert_eq!(
            decode_intent_value(&encode_intent_value(&intent)),
            Some(intent)
        );
        let key = StateKey::DeadLetterIntent {
            group: "g".into(),
            topic_id: [4; 16],
            partition: 1,
        };
        assert_eq!(StateKey::decode(&key.encode()), Some(key));
        let value = PartitionValue::Update(PersistedPartition {
            start_offset: 10,
            batches: vec![
                StateBatch {
                    first_offset: 10,
                    last_offset: 12,
                    state: PersistedState::Acknowledged,
                    delivery_count: 1,
                },
                StateBatch {
                    first_offset: 13,
                    last_offset: 13,
                    state: PersistedState::Archiving(ArchiveReason::DeliveryLimit),
                    delivery_count: 5,
                },
            ],
        });
        let encoded = encode_partition_value(&value);
        assert_eq!(decode_partition_value(&encoded), Some(value));
        // Truncated or lying input is refused, never read past.
        assert_eq!(decode_partition_value(&encoded[..encoded.len() - 1]), None);
        let mut lying = encoded.clone();
        lying[11..15].copy_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(decode_partition_value(&lying), None);
    }
}
