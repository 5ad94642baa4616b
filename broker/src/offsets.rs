//! Committed consumer-group offsets, kept durably in the internal topic `__consumer_offsets`.
//!
//! Every commit is appended to partition 0 of that topic as a record keyed by (group, topic,
//! partition) in Kafka's own key/value layout (key version 1, value version 3), and a deletion as a
//! tombstone (null value). At start the topic is replayed into memory, so reads never touch the log.
//! Owns the in-memory map and its log; knows nothing of group membership (see `groups`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes};
use parking_lot::RwLock;
use weir_storage::{AppendOptions, StorageError};

use crate::record_codec;
use crate::topics::{Topic, TopicError, TopicRegistry};

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
const KEY_VERSION: i16 = 1;
const VALUE_VERSION: i16 = 3;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    pub commit_timestamp_ms: i64,
}

type GroupOffsets = BTreeMap<(String, i32), CommittedOffset>;

pub struct OffsetStore {
    topic: Arc<Topic>,
    groups: RwLock<HashMap<String, GroupOffsets>>,
}

#[derive(Debug, thiserror::Error)]
pub enum OffsetError {
    #[error(transparent)]
    Topic(#[from] TopicError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("corrupt offsets record: {0}")]
    Corrupt(String),
}

fn put_string(buf: &mut Vec<u8>, s: &str) {
    buf.put_i16(i16::try_from(s.len()).unwrap_or(i16::MAX));
    buf.extend_from_slice(&s.as_bytes()[..s.len().min(i16::MAX as usize)]);
}

fn get_string(buf: &mut &[u8]) -> Option<String> {
    if buf.remaining() < 2 {
        return None;
    }
    let len = buf.get_i16();
    if len < 0 {
        return Some(String::new());
    }
    let len = usize::try_from(len).ok()?;
    if buf.remaining() < len {
        return None;
    }
    let s = String::from_utf8(buf[..len].to_vec()).ok()?;
    buf.advance(len);
    Some(s)
}

fn encode_key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut k = Vec::new();
    k.put_i16(KEY_VERSION);
    put_string(&mut k, group);
    put_string(&mut k, topic);
    k.put_i32(partition);
    k
}

fn decode_key(mut b: &[u8]) -> Option<(String, String, i32)> {
    if b.remaining() < 2 {
        return None;
    }
    let version = b.get_i16();
    if version > KEY_VERSION {
        return None; // version 2 keys are group metadata, which we do not store
    }
    let group = get_string(&mut b)?;
    let topic = get_string(&mut b)?;
    if b.remaining() < 4 {
        return None;
    }
    Some((group, topic, b.get_i32()))
}

fn encode_value(c: &CommittedOffset) -> Vec<u8> {
    let mut v = Vec::new();
    v.put_i16(VALUE_VERSION);
    v.put_i64(c.offset);
    v.put_i32(c.leader_epoch);
    put_string(&mut v, c.metadata.as_deref().unwrap_or(""));
    v.put_i64(c.commit_timestamp_ms);
    v
}

fn decode_value(mut b: &[u8]) -> Option<CommittedOffset> {
    if b.remaining() < 2 + 8 + 4 {
        return None;
    }
    let _version = b.get_i16();
    let offset = b.get_i64();
    let leader_epoch = b.get_i32();
    let metadata = get_string(&mut b)?;
    if b.remaining() < 8 {
        return None;
    }
    Some(CommittedOffset {
        offset,
        leader_epoch,
        metadata: Some(metadata),
        commit_timestamp_ms: b.get_i64(),
    })
}

impl OffsetStore {
    /// Opens (creating if needed) the offsets topic and replays it.
    pub fn open(topics: &TopicRegistry) -> Result<Self, OffsetError> {
        let topic = match topics.get(OFFSETS_TOPIC) {
            Some(t) => t,
            None => topics.create(
                OFFSETS_TOPIC,
                1,
                &[("cleanup.policy".to_string(), "compact".to_string())],
                true,
            )?,
        };
        let store = Self {
            topic,
            groups: RwLock::new(HashMap::new()),
        };
        store.replay()?;
        Ok(store)
    }

    fn replay(&self) -> Result<(), OffsetError> {
        let Some(partition) = self.topic.partitions.first() else {
            return Ok(());
        };
        let mut groups = self.groups.write();
        let mut corrupt = None;
        crate::log_scan::for_each_batch(&partition.log, |_, batch| {
            let records = match record_codec::decode_records(&Bytes::copy_from_slice(batch)) {
                Ok(r) => r,
                Err(e) => {
                    corrupt.get_or_insert(e.to_string());
                    return;
                }
            };
            for r in records {
                let Some((group, topic, p)) = r.key.as_deref().and_then(decode_key) else {
                    continue;
                };
                match r.value.as_deref().and_then(decode_value) {
                    Some(v) => {
                        groups.entry(group).or_default().insert((topic, p), v);
                    }
                    None => {
                        if let Some(g) = groups.get_mut(&group) {
                            g.remove(&(topic, p));
                            if g.is_empty() {
                                groups.remove(&group);
                            }
                        }
                    }
                }
            }
        })?;
        match corrupt {
            Some(reason) => Err(OffsetError::Corrupt(reason)),
            None => Ok(()),
        }
    }

    fn append(
        &self,
        records: &[(Vec<u8>, Option<Vec<u8>>)],
        now_ms: i64,
    ) -> Result<(), OffsetError> {
        let Some(partition) = self.topic.partitions.first() else {
            return Ok(());
        };
        let refs: Vec<record_codec::KeyValue<'_>> = records
            .iter()
            .map(|(k, v)| (Some(k.as_slice()), v.as_deref()))
            .collect();
        let batch = record_codec::encode_batch(&refs, now_ms);
        partition.log.append(batch, &AppendOptions::default())?;
        Ok(())
    }

    /// Durably commits offsets for one group; returns once the commit is in the log.
    pub fn commit(
        &self,
        group: &str,
        offsets: &[(String, i32, CommittedOffset)],
        now_ms: i64,
    ) -> Result<(), OffsetError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let records: Vec<(Vec<u8>, Option<Vec<u8>>)> = offsets
            .iter()
            .map(|(t, p, c)| (encode_key(group, t, *p), Some(encode_value(c))))
            .collect();
        self.append(&records, now_ms)?;
        let mut groups = self.groups.write();
        let g = groups.entry(group.to_string()).or_default();
        for (t, p, c) in offsets {
            g.insert((t.clone(), *p), c.clone());
        }
        Ok(())
    }

    pub fn fetch(&self, group: &str, topic: &str, partition: i32) -> Option<CommittedOffset> {
        self.groups
            .read()
            .get(group)
            .and_then(|g| g.get(&(topic.to_string(), partition)).cloned())
    }

    /// All committed offsets of a group, ordered by topic and partition.
    pub fn fetch_all(&self, group: &str) -> Vec<(String, i32, CommittedOffset)> {
        self.groups
            .read()
            .get(group)
            .map(|g| {
                g.iter()
                    .map(|((t, p), c)| (t.clone(), *p, c.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn groups(&self) -> Vec<String> {
        self.groups.read().keys().cloned().collect()
    }

    /// Deletes committed offsets (OffsetDelete, DeleteGroups, deleted topics) with tombstones.
    pub fn delete(
        &self,
        group: &str,
        partitions: &[(String, i32)],
        now_ms: i64,
    ) -> Result<(), OffsetError> {
        if partitions.is_empty() {
            return Ok(());
        }
        let records: Vec<(Vec<u8>, Option<Vec<u8>>)> = partitions
            .iter()
            .map(|(t, p)| (encode_key(group, t, *p), None))
            .collect();
        self.append(&records, now_ms)?;
        let mut groups = self.groups.write();
        if let Some(g) = groups.get_mut(group) {
            for (t, p) in partitions {
                g.remove(&(t.clone(), *p));
            }
            if g.is_empty() {
                groups.remove(group);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_value_round_trip() {
        let key = encode_key("g", "orders", 7);
        assert_eq!(
            decode_key(&key),
            Some(("g".to_string(), "orders".to_string(), 7))
        );
        let value = CommittedOffset {
            offset: 42,
            leader_epoch: -1,
            metadata: Some("meta".into()),
            commit_timestamp_ms: 1_700_000_000_000,
        };
        assert_eq!(decode_value(&encode_value(&value)), Some(value));
        assert_eq!(decode_key(&key[..5]), None);
    }
}
