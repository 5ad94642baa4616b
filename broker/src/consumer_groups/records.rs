//! The records a consumer group's state is persisted as in `__consumer_offsets`, in Kafka's own
//! layout, so the group can be rebuilt from the log (after a restart now, and by another
//! coordinator later):
//!
//! | key version | key | value |
//! | --- | --- | --- |
//! | 3 | ConsumerGroupMetadataKey (group) | ConsumerGroupMetadataValue: group epoch |
//! | 5 | ConsumerGroupMemberMetadataKey (group, member) | ConsumerGroupMemberMetadataValue: subscription, client, timeouts |
//! | 6 | ConsumerGroupTargetAssignmentMetadataKey (group) | ConsumerGroupTargetAssignmentMetadataValue: assignment epoch |
//! | 7 | ConsumerGroupTargetAssignmentMemberKey (group, member) | ConsumerGroupTargetAssignmentMemberValue: target partitions |
//! | 8 | ConsumerGroupCurrentMemberAssignmentKey (group, member) | ConsumerGroupCurrentMemberAssignmentValue: epochs, state, owned and revoking partitions |
//! | 11 | ShareGroupMetadataKey (group) | ShareGroupMetadataValue: share group epoch |
//!
//! Keys are non-flexible (a version, then int16-length strings); values are a version (0) and a
//! flexible struct (compact strings and arrays, 16-byte uuids, tagged-field sections that are
//! empty except a classic member's metadata, tag 0 of the member value; the reader skips tags it
//! does not know). A null value is a tombstone. Kafka's regular-expression (16) and partition
//! metadata (4) records are not written: Weir resolves regexes and partition counts afresh.
//! Decoding never panics: a malformed record is an error, not a crash.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Buf, BufMut};

use super::{Assignment, MemberState, TopicId};

const GROUP_EPOCH: i16 = 3;
const MEMBER: i16 = 5;
const TARGET_EPOCH: i16 = 6;
const TARGET_MEMBER: i16 = 7;
const CURRENT: i16 = 8;
/// A share group's epoch (KIP-932 keeps share group membership records in this log too).
const SHARE_GROUP_EPOCH: i16 = 11;
const VALUE_VERSION: i16 = 0;

/// Whether an `__consumer_offsets` key is one of the consumer group records above.
pub fn is_group_record_key(key: &[u8]) -> bool {
    key.len() >= 2
        && matches!(
            i16::from_be_bytes([key[0], key[1]]),
            GROUP_EPOCH | MEMBER | TARGET_EPOCH | TARGET_MEMBER | CURRENT | SHARE_GROUP_EPOCH
        )
}

/// A member's subscription and client details (key version 5).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MemberValue {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
    /// A member that speaks the classic protocol inside a consumer group (online migration):
    /// Kafka's tagged field 0, `ClassicMemberMetadata`.
    pub classic: Option<ClassicMemberValue>,
}

/// What a classic member of a consumer group joined with: its session timeout and the
/// protocols (assignor names and consumer-protocol subscriptions) of its JoinGroup.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ClassicMemberValue {
    pub session_timeout_ms: i32,
    pub protocols: Vec<(String, Vec<u8>)>,
}

/// The tag of `ClassicMemberMetadata` in Kafka's ConsumerGroupMemberMetadataValue.
const CLASSIC_MEMBER_TAG: u64 = 0;

/// A member's current assignment (key version 8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrentValue {
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
}

/// One consumer group record; `None` values are tombstones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupRecord {
    GroupEpoch {
        group_id: String,
        epoch: Option<i32>,
    },
    Member {
        group_id: String,
        member_id: String,
        value: Option<MemberValue>,
    },
    TargetEpoch {
        group_id: String,
        epoch: Option<i32>,
    },
    TargetMember {
        group_id: String,
        member_id: String,
        value: Option<Assignment>,
    },
    Current {
        group_id: String,
        member_id: String,
        value: Option<CurrentValue>,
    },
    /// A share group's epoch (the share group coordinator's, not a consumer group's).
    ShareGroupEpoch {
        group_id: String,
        epoch: Option<i32>,
    },
}

impl GroupRecord {
    pub fn group_id(&self) -> &str {
        match self {
            GroupRecord::GroupEpoch { group_id, .. }
            | GroupRecord::Member { group_id, .. }
            | GroupRecord::TargetEpoch { group_id, .. }
            | GroupRecord::TargetMember { group_id, .. }
            | GroupRecord::Current { group_id, .. }
            | GroupRecord::ShareGroupEpoch { group_id, .. } => group_id,
        }
    }

    /// The record's key and value (`None`: tombstone) as written to the log.
    pub fn encode(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        match self {
            GroupRecord::GroupEpoch { group_id, epoch } => (
                key(GROUP_EPOCH, group_id, None),
                epoch.map(|e| {
                    let mut v = value_header();
                    v.put_i32(e);
                    v.put_u8(0);
                    v
                }),
            ),
            GroupRecord::ShareGroupEpoch { group_id, epoch } => (
                key(SHARE_GROUP_EPOCH, group_id, None),
                epoch.map(|e| {
                    let mut v = value_header();
                    v.put_i32(e);
                    v.put_u8(0);
                    v
                }),
            ),
            GroupRecord::TargetEpoch { group_id, epoch } => (
                key(TARGET_EPOCH, group_id, None),
                epoch.map(|e| {
                    let mut v = value_header();
                    v.put_i32(e);
                    v.put_u8(0);
                    v
                }),
            ),
            GroupRecord::Member {
                group_id,
                member_id,
                value,
            } => (
                key(MEMBER, group_id, Some(member_id)),
                value.as_ref().map(|m| {
                    let mut v = value_header();
                    put_compact_nullable(&mut v, m.instance_id.as_deref());
                    put_compact_nullable(&mut v, m.rack_id.as_deref());
                    put_compact(&mut v, &m.client_id);
                    put_compact(&mut v, &m.client_host);
                    put_uvarint(&mut v, m.subscribed_topic_names.len() as u64 + 1);
                    for name in &m.subscribed_topic_names {
                        put_compact(&mut v, name);
                    }
                    put_compact_nullable(&mut v, m.subscribed_topic_regex.as_deref());
                    v.put_i32(m.rebalance_timeout_ms);
                    put_compact_nullable(&mut v, m.server_assignor.as_deref());
                    match &m.classic {
                        None => v.put_u8(0),
                        Some(c) => {
                            let mut field = Vec::new();
                            field.put_i32(c.session_timeout_ms);
                            put_uvarint(&mut field, c.protocols.len() as u64 + 1);
                            for (name, metadata) in &c.protocols {
                                put_compact(&mut field, name);
                                put_uvarint(&mut field, metadata.len() as u64 + 1);
                                field.extend_from_slice(metadata);
                                field.put_u8(0);
                            }
                            field.put_u8(0);
                            put_uvarint(&mut v, 1);
                            put_uvarint(&mut v, CLASSIC_MEMBER_TAG);
                            put_uvarint(&mut v, field.len() as u64);
                            v.extend_from_slice(&field);
                        }
                    }
                    v
                }),
            ),
            GroupRecord::TargetMember {
                group_id,
                member_id,
                value,
            } => (
                key(TARGET_MEMBER, group_id, Some(member_id)),
                value.as_ref().map(|a| {
                    let mut v = value_header();
                    put_assignment(&mut v, a);
                    v.put_u8(0);
                    v
                }),
            ),
            GroupRecord::Current {
                group_id,
                member_id,
                value,
            } => (
                key(CURRENT, group_id, Some(member_id)),
                value.as_ref().map(|c| {
                    let mut v = value_header();
                    v.put_i32(c.member_epoch);
                    v.put_i32(c.previous_member_epoch);
                    v.put_i8(c.state.value());
                    put_assignment(&mut v, &c.assigned);
                    put_assignment(&mut v, &c.pending_revocation);
                    v.put_u8(0);
                    v
                }),
            ),
        }
    }

    /// Decodes a record read back from the log. `Ok(None)`: not a consumer group record.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Option<Self>, String> {
        let mut k = key;
        let version = get_i16(&mut k)?;
        let group_id = get_string(&mut k)?;
        let member_id = match version {
            MEMBER | TARGET_MEMBER | CURRENT => Some(get_string(&mut k)?),
            GROUP_EPOCH | TARGET_EPOCH | SHARE_GROUP_EPOCH => None,
            _ => return Ok(None),
        };
        let mut v = match value {
            Some(v) => {
                let mut v = v;
                let value_version = get_i16(&mut v)?;
                if value_version != VALUE_VERSION {
                    return Err(format!("value version {value_version} of key {version}"));
                }
                Some(v)
            }
            None => None,
        };
        let member_id = || member_id.clone().unwrap_or_default();
        Ok(Some(match version {
            GROUP_EPOCH => GroupRecord::GroupEpoch {
                group_id,
                epoch: v.as_mut().map(get_i32).transpose()?,
            },
            TARGET_EPOCH => GroupRecord::TargetEpoch {
                group_id,
                epoch: v.as_mut().map(get_i32).transpose()?,
            },
            SHARE_GROUP_EPOCH => GroupRecord::ShareGroupEpoch {
                group_id,
                epoch: v.as_mut().map(get_i32).transpose()?,
            },
            MEMBER => GroupRecord::Member {
                group_id,
                member_id: member_id(),
                value: v
                    .as_mut()
                    .map(|v| -> Result<MemberValue, String> {
                        let instance_id = get_compact_nullable(v)?;
                        let rack_id = get_compact_nullable(v)?;
                        let client_id = get_compact(v)?;
                        let client_host = get_compact(v)?;
                        let n = get_count(v)?;
                        let mut subscribed_topic_names = Vec::with_capacity(n.min(1024));
                        for _ in 0..n {
                            subscribed_topic_names.push(get_compact(v)?);
                        }
                        Ok(MemberValue {
                            instance_id,
                            rack_id,
                            client_id,
                            client_host,
                            subscribed_topic_names,
                            subscribed_topic_regex: get_compact_nullable(v)?,
                            rebalance_timeout_ms: get_i32(v)?,
                            server_assignor: get_compact_nullable(v)?,
                            classic: get_member_tags(v)?,
                        })
                    })
                    .transpose()?,
            },
            TARGET_MEMBER => GroupRecord::TargetMember {
                group_id,
                member_id: member_id(),
                value: v.as_mut().map(get_assignment).transpose()?,
            },
            _ => GroupRecord::Current {
                group_id,
                member_id: member_id(),
                value: v
                    .as_mut()
                    .map(|v| -> Result<CurrentValue, String> {
                        Ok(CurrentValue {
                            member_epoch: get_i32(v)?,
                            previous_member_epoch: get_i32(v)?,
                            state: MemberState::from_value(get_i8(v)?),
                            assigned: get_assignment(v)?,
                            pending_revocation: get_assignment(v)?,
                        })
                    })
                    .transpose()?,
            },
        }))
    }
}

fn value_header() -> Vec<u8> {
    let mut v = Vec::with_capacity(64);
    v.put_i16(VALUE_VERSION);
    v
}

fn key(version: i16, group_id: &str, member_id: Option<&str>) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + group_id.len() + member_id.map_or(0, |m| 2 + m.len()));
    k.put_i16(version);
    put_string(&mut k, group_id);
    if let Some(m) = member_id {
        put_string(&mut k, m);
    }
    k
}

/// Group and member ids are far below 32 KiB (the request frame bounds them); longer ones are
/// cut rather than mis-framed.
fn put_string(buf: &mut Vec<u8>, s: &str) {
    let len = s.len().min(i16::MAX as usize);
    buf.put_i16(len as i16);
    buf.extend_from_slice(&s.as_bytes()[..len]);
}

fn put_uvarint(buf: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        buf.put_u8((n as u8) | 0x80);
        n >>= 7;
    }
    buf.put_u8(n as u8);
}

fn put_compact(buf: &mut Vec<u8>, s: &str) {
    put_uvarint(buf, s.len() as u64 + 1);
    buf.extend_from_slice(s.as_bytes());
}

fn put_compact_nullable(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_compact(buf, s),
        None => put_uvarint(buf, 0),
    }
}

fn put_assignment(buf: &mut Vec<u8>, a: &Assignment) {
    put_uvarint(buf, a.len() as u64 + 1);
    for (topic, partitions) in a {
        buf.extend_from_slice(topic);
        put_uvarint(buf, partitions.len() as u64 + 1);
        for p in partitions {
            buf.put_i32(*p);
        }
        buf.put_u8(0);
    }
}

fn need(b: &[u8], n: usize, what: &str) -> Result<(), String> {
    if b.remaining() < n {
        return Err(format!("{what}: {n} bytes needed, {} left", b.remaining()));
    }
    Ok(())
}

fn get_i8(b: &mut &[u8]) -> Result<i8, String> {
    need(b, 1, "int8")?;
    Ok(b.get_i8())
}

fn get_i16(b: &mut &[u8]) -> Result<i16, String> {
    need(b, 2, "int16")?;
    Ok(b.get_i16())
}

fn get_i32(b: &mut &[u8]) -> Result<i32, String> {
    need(b, 4, "int32")?;
    Ok(b.get_i32())
}

fn get_uvarint(b: &mut &[u8]) -> Result<u64, String> {
    let mut n: u64 = 0;
    for shift in (0..64).step_by(7) {
        need(b, 1, "varint")?;
        let byte = b.get_u8();
        n |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(n);
        }
    }
    Err("varint longer than 10 bytes".into())
}

fn get_bytes<'a>(b: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], String> {
    need(b, n, what)?;
    let (head, tail) = b.split_at(n);
    *b = tail;
    Ok(head)
}

fn get_string(b: &mut &[u8]) -> Result<String, String> {
    let len = get_i16(b)?;
    let len = usize::try_from(len).map_err(|_| format!("string length {len}"))?;
    let bytes = get_bytes(b, len, "string")?;
    String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string())
}

/// A compact array or string length: the element count, bounded by the bytes left.
fn get_count(b: &mut &[u8]) -> Result<usize, String> {
    let n = get_uvarint(b)?;
    let n = usize::try_from(n.saturating_sub(1)).map_err(|_| "count overflows".to_string())?;
    if n > b.remaining() {
        return Err(format!(
            "count {n} exceeds the {} bytes left",
            b.remaining()
        ));
    }
    Ok(n)
}

fn get_compact_nullable(b: &mut &[u8]) -> Result<Option<String>, String> {
    let n = get_uvarint(b)?;
    if n == 0 {
        return Ok(None);
    }
    let len = usize::try_from(n - 1).map_err(|_| "string length overflows".to_string())?;
    let bytes = get_bytes(b, len, "compact string")?;
    String::from_utf8(bytes.to_vec())
        .map(Some)
        .map_err(|e| e.to_string())
}

fn get_compact(b: &mut &[u8]) -> Result<String, String> {
    get_compact_nullable(b)?.ok_or_else(|| "null for a non-nullable string".to_string())
}

/// The tagged fields of a member value: the classic member metadata (tag 0) if present, the
/// others skipped. A value that ends before its tagged-field section has none.
fn get_member_tags(b: &mut &[u8]) -> Result<Option<ClassicMemberValue>, String> {
    if b.is_empty() {
        return Ok(None);
    }
    let mut classic = None;
    for _ in 0..get_uvarint(b)? {
        let tag = get_uvarint(b)?;
        let size =
            usize::try_from(get_uvarint(b)?).map_err(|_| "tag size overflows".to_string())?;
        let mut field = get_bytes(b, size, "tagged field")?;
        if tag != CLASSIC_MEMBER_TAG {
            continue;
        }
        let f = &mut field;
        let session_timeout_ms = get_i32(f)?;
        let n = get_count(f)?;
        let mut protocols = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            let name = get_compact(f)?;
            let len = get_count(f)?;
            let metadata = get_bytes(f, len, "protocol metadata")?.to_vec();
            skip_tagged(f)?;
            protocols.push((name, metadata));
        }
        classic = Some(ClassicMemberValue {
            session_timeout_ms,
            protocols,
        });
    }
    Ok(classic)
}

/// Skips a tagged-field section (Weir writes none; newer Kafka versions may).
fn skip_tagged(b: &mut &[u8]) -> Result<(), String> {
    let n = get_uvarint(b)?;
    for _ in 0..n {
        get_uvarint(b)?;
        let size = get_uvarint(b)?;
        let size = usize::try_from(size).map_err(|_| "tag size overflows".to_string())?;
        get_bytes(b, size, "tagged field")?;
    }
    Ok(())
}

fn get_assignment(b: &mut &[u8]) -> Result<Assignment, String> {
    let topics = get_count(b)?;
    let mut out = BTreeMap::new();
    for _ in 0..topics {
        let id: TopicId = get_bytes(b, 16, "topic id")?
            .try_into()
            .map_err(|_| "topic id".to_string())?;
        let n = get_count(b)?;
        let mut partitions = BTreeSet::new();
        for _ in 0..n {
            partitions.insert(get_i32(b)?);
        }
        skip_tagged(b)?;
        if !partitions.is_empty() {
            out.insert(id, partitions);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(r: GroupRecord) {
        let (k, v) = r.encode();
        assert!(is_group_record_key(&k));
        assert_eq!(GroupRecord::decode(&k, v.as_deref()), Ok(Some(r)));
    }

    #[test]
    fn every_record_round_trips() {
        let assignment = Assignment::from([
            ([7; 16], BTreeSet::from([0, 3])),
            ([9; 16], BTreeSet::from([1])),
        ]);
        round_trip(GroupRecord::ShareGroupEpoch {
            group_id: "sg".into(),
            epoch: Some(7),
        });
        round_trip(GroupRecord::ShareGroupEpoch {
            group_id: "sg".into(),
            epoch: None,
        });
        round_trip(GroupRecord::GroupEpoch {
            group_id: "g".into(),
            epoch: Some(4),
        });
        round_trip(GroupRecord::TargetEpoch {
            group_id: "g".into(),
            epoch: None,
        });
        round_trip(GroupRecord::Member {
            group_id: "g".into(),
            member_id: "m".into(),
            value: Some(MemberValue {
                instance_id: Some("i".into()),
                rack_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                subscribed_topic_names: vec!["a".into(), "b".into()],
                subscribed_topic_regex: Some("t.*".into()),
                rebalance_timeout_ms: 300_000,
                server_assignor: Some("range".into()),
                classic: None,
            }),
        });
        round_trip(GroupRecord::Member {
            group_id: "g".into(),
            member_id: "classic".into(),
            value: Some(MemberValue {
                client_id: "c".into(),
                subscribed_topic_names: vec!["a".into()],
                rebalance_timeout_ms: 300_000,
                classic: Some(ClassicMemberValue {
                    session_timeout_ms: 45_000,
                    protocols: vec![
                        ("range".into(), vec![0, 3, 0, 0, 0, 0]),
                        ("roundrobin".into(), Vec::new()),
                    ],
                }),
                ..MemberValue::default()
            }),
        });
        round_trip(GroupRecord::TargetMember {
            group_id: "g".into(),
            member_id: "m".into(),
            value: Some(assignment.clone()),
        });
        round_trip(GroupRecord::Current {
            group_id: "g".into(),
            member_id: "m".into(),
            value: Some(CurrentValue {
                member_epoch: 5,
                previous_member_epoch: 4,
                state: MemberState::UnrevokedPartitions,
                assigned: assignment,
                pending_revocation: Assignment::new(),
            }),
        });
    }

    /// The group epoch record byte for byte as Kafka writes it: key version 3 and an int16-length
    /// group id; value version 0, the epoch and an empty tagged-field section.
    #[test]
    fn group_epoch_layout_matches_kafka() {
        let (k, v) = GroupRecord::GroupEpoch {
            group_id: "g1".into(),
            epoch: Some(2),
        }
        .encode();
        assert_eq!(k, vec![0, 3, 0, 2, b'g', b'1']);
        assert_eq!(v, Some(vec![0, 0, 0, 0, 0, 2, 0]));
    }

    #[test]
    fn offset_commit_keys_are_not_group_records_and_garbage_is_an_error() {
        assert!(!is_group_record_key(&[0, 1, 0, 1, b'g']));
        assert_eq!(GroupRecord::decode(&[0, 1, 0, 1, b'g'], None), Ok(None));
        let (k, _) = GroupRecord::GroupEpoch {
            group_id: "g".into(),
            epoch: None,
        }
        .encode();
        assert!(GroupRecord::decode(&k, Some(&[0, 0, 1])).is_err());
        // A huge compact array count in a truncated value is refused, not allocated.
        let (k, _) = GroupRecord::TargetMember {
            group_id: "g".into(),
            member_id: "m".into(),
            value: None,
        }
        .encode();
        assert!(GroupRecord::decode(&k, Some(&[0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f])).is_err());
    }
}
