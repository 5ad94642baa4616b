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
//! - Dead-letter intent key `[2][group][topic id][partition i32]`: dead letters of this
//!   share-partition are being appended to a partition of the dead-letter topic; a tombstone
//!   once they are archived. Two kinds of value:
//!   - version 1, a produced batch: `[1 i16][dead letter topic][partition i32][producer id
//!     i64][producer epoch i16][base sequence i32][time i64][count i32]` then `count` source
//!     offsets `i64`. The dead letters of those source offsets were built at that time and sent
//!     as one batch of that idempotent producer. After a crash, the next leader builds the same
//!     batch and sends it again with the same producer id and sequence: the dead-letter
//!     partition's leader appends it only if it does not have it.
//!   - version 0 (written by older Weir versions): `[0 i16][dead letter topic][partition
//!     i32][offset i64]`, the dead-letter partition's log end offset before a plain append; the
//!     records from that offset on say which dead letters are already there.
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
    pub kind: IntentKind,
}

/// How the dead letters of an intent are appended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntentKind {
    /// One batch of an idempotent producer (version 1).
    Produced(ProducedBatch),
    /// A plain append after the dead-letter partition's log end offset `from_offset` (version
    /// 0, older Weir versions).
    AppendedAfter { from_offset: i64 },
}

/// The dead-letter batch of a [`IntentKind::Produced`] intent: enough to build it again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducedBatch {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    /// The batch's time: its records' timestamps and `weir.dlq.time.ms`.
    pub time_ms: i64,
    /// The source offsets whose dead letters the batch holds, ascending.
    pub offsets: Vec<i64>,
}

/// Most source offsets in one intent (one dead-letter round's records).
pub const MAX_INTENT_OFFSETS: usize = 4_096;
const PRODUCED: i16 = 1;

pub fn encode_intent_value(i: &DeadLetterIntent) -> Vec<u8> {
    let mut out = Vec::new();
    match &i.kind {
        IntentKind::AppendedAfter { from_offset } => {
            out.put_i16(VERSION);
            put_str(&mut out, &i.topic);
            out.put_i32(i.partition);
            out.put_i64(*from_offset);
        }
        IntentKind::Produced(b) => {
            out.put_i16(PRODUCED);
            put_str(&mut out, &i.topic);
            out.put_i32(i.partition);
            out.put_i64(b.producer_id);
            out.put_i16(b.producer_epoch);
            out.put_i32(b.base_sequence);
            out.put_i64(b.time_ms);
            out.put_i32(i32::try_from(b.offsets.len()).unwrap_or(i32::MAX));
            for o in &b.offsets {
                out.put_i64(*o);
            }
        }
    }
    out
}

pub fn decode_intent_value(mut b: &[u8]) -> Option<DeadLetterIntent> {
    if b.remaining() < 2 {
        return None;
    }
    let version = b.get_i16();
    let topic = get_str(&mut b)?;
    if b.remaining() < 4 {
        return None;
    }
    let partition = b.get_i32();
    let kind = match version {
        VERSION => {
            if b.remaining() < 8 {
                return None;
            }
            IntentKind::AppendedAfter {
                from_offset: b.get_i64(),
            }
        }
        PRODUCED => {
            if b.remaining() < 8 + 2 + 4 + 8 + 4 {
                return None;
            }
            let (producer_id, producer_epoch, base_sequence, time_ms) =
                (b.get_i64(), b.get_i16(), b.get_i32(), b.get_i64());
            let count = usize::try_from(b.get_i32()).ok()?;
            if count > MAX_INTENT_OFFSETS || b.remaining() < count * 8 {
                return None;
            }
            IntentKind::Produced(ProducedBatch {
                producer_id,
                producer_epoch,
                base_sequence,
                time_ms,
                offsets: (0..count).map(|_| b.get_i64()).collect(),
            })
        }
        _ => return None,
    };
    Some(DeadLetterIntent {
        topic,
        partition,
        kind,
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
        for kind in [
            IntentKind::AppendedAfter { from_offset: 77 },
            IntentKind::Produced(ProducedBatch {
                producer_id: 9,
                producer_epoch: 0,
                base_sequence: 12,
                time_ms: 1_700_000_000_000,
                offsets: vec![3, 5, 8],
            }),
        ] {
            let intent = DeadLetterIntent {
                topic: "dlq".into(),
                partition: 2,
                kind,
            };
            let encoded = encode_intent_value(&intent);
            assert_eq!(decode_intent_value(&encoded), Some(intent));
            assert_eq!(decode_intent_value(&encoded[..encoded.len() - 1]), None);
        }
        // A version-0 value as older versions wrote it.
        let mut old = vec![0, 0, 0, 3];
        old.extend_from_slice(b"dlq");
        old.extend_from_slice(&2i32.to_be_bytes());
        old.extend_from_slice(&77i64.to_be_bytes());
        assert_eq!(
            decode_intent_value(&old).map(|i| i.kind),
            Some(IntentKind::AppendedAfter { from_offset: 77 })
        );
        // A count of offsets beyond the bytes present is refused.
        let mut lying = encode_intent_value(&DeadLetterIntent {
            topic: "d".into(),
            partition: 0,
            kind: IntentKind::Produced(ProducedBatch {
                producer_id: 1,
                producer_epoch: 0,
                base_sequence: 0,
                time_ms: 0,
                offsets: vec![1],
            }),
        });
        let at = lying.len() - 12;
        lying[at..at + 4].copy_from_slice(&2i32.to_be_bytes());
        assert_eq!(decode_intent_value(&lying), None);
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

    use proptest::prelude::*;

    fn arb_intent() -> impl Strategy<Value = DeadLetterIntent> {
        let kind = prop_oneof![
            any::<i64>().prop_map(|from_offset| IntentKind::AppendedAfter { from_offset }),
            (
                any::<i64>(),
                any::<i16>(),
                any::<i32>(),
                any::<i64>(),
                proptest::collection::vec(any::<i64>(), 0..64),
            )
                .prop_map(
                    |(producer_id, producer_epoch, base_sequence, time_ms, offsets)| {
                        IntentKind::Produced(ProducedBatch {
                            producer_id,
                            producer_epoch,
                            base_sequence,
                            time_ms,
                            offsets,
                        })
                    }
                ),
        ];
        ("[a-z.]{0,20}", any::<i32>(), kind).prop_map(|(topic, partition, kind)| DeadLetterIntent {
            topic,
            partition,
            kind,
        })
    }

    proptest! {
        /// Every intent decodes to itself, and no cut of its encoding decodes.
        #[test]
        fn intents_round_trip_and_cuts_are_refused(intent in arb_intent()) {
            let encoded = encode_intent_value(&intent);
            prop_assert_eq!(decode_intent_value(&encoded), Some(intent));
            for cut in 0..encoded.len() {
                prop_assert_eq!(decode_intent_value(&encoded[..cut]), None);
            }
        }

        /// The share state log's decoders take any bytes (a corrupt or hostile record) without
        /// panicking or reading past them.
        #[test]
        fn decoders_take_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = StateKey::decode(&bytes);
            let _ = decode_group_value(&bytes);
            let _ = decode_partition_value(&bytes);
            let _ = decode_intent_value(&bytes);
        }
    }
}
