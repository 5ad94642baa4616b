//! The consumer protocol embedded in classic groups: the subscription a consumer sends in
//! JoinGroup's protocol metadata and the assignment it gets back in SyncGroup (Kafka's
//! `ConsumerProtocolSubscription` and `ConsumerProtocolAssignment`, versions 0–3).
//!
//! Owns reading and writing those byte layouts, nothing else: the classic coordinator (`groups`)
//! reads subscriptions for OffsetDelete, the consumer-group coordinator (`consumer_groups`) reads
//! them and writes assignments for classic members of a consumer group (online migration), the
//! CLI and the admin API read them to show groups. The bytes come from clients: every reader
//! returns `None` on malformed input instead of panicking, and allocates only for elements it
//! has read bytes for.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The protocol type of Kafka consumers, whose member metadata is a consumer-protocol subscription.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// The newest subscription and assignment version this module knows; newer ones are read as
/// this one, as Kafka reads them (later versions only add fields at the end).
const LATEST_VERSION: i16 = 3;

/// Partitions by topic name, as the consumer protocol names them.
pub type TopicPartitions = BTreeMap<String, Vec<i32>>;

/// A consumer's subscription, as far as the coordinators use it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subscription {
    pub version: i16,
    pub topics: Vec<String>,
    /// v1+: the partitions the consumer owns as it (re)joins; empty before v1.
    pub owned_partitions: TopicPartitions,
    /// v3+: the consumer's rack.
    pub rack_id: Option<String>,
}

/// An array count (i32, not negative) from the front of `b`.
fn read_count(b: &mut &[u8]) -> Option<usize> {
    if b.remaining() < 4 {
        return None;
    }
    usize::try_from(b.get_i32()).ok()
}

/// A string (i16 length, UTF-8) from the front of `b`; `Some(None)` for a null one.
fn read_nullable_str(b: &mut &[u8]) -> Option<Option<String>> {
    if b.remaining() < 2 {
        return None;
    }
    let len = b.get_i16();
    if len < 0 {
        return Some(None);
    }
    let len = usize::try_from(len).ok()?;
    if b.remaining() < len {
        return None;
    }
    let s = std::str::from_utf8(&b[..len]).ok()?.to_string();
    b.advance(len);
    Some(Some(s))
}

fn read_str(b: &mut &[u8]) -> Option<String> {
    read_nullable_str(b)?
}

/// Nullable bytes (i32 length), skipped.
fn skip_bytes(b: &mut &[u8]) -> Option<()> {
    if b.remaining() < 4 {
        return None;
    }
    let len = b.get_i32();
    if len >= 0 {
        let len = usize::try_from(len).ok()?;
        if len > b.remaining() {
            return None;
        }
        b.advance(len);
    }
    Some(())
}

fn read_topic_partitions(b: &mut &[u8]) -> Option<TopicPartitions> {
    let mut out = TopicPartitions::new();
    for _ in 0..read_count(b)? {
        let topic = read_str(b)?;
        let n = read_count(b)?;
        if b.remaining() < n.checked_mul(4)? {
            return None;
        }
        out.insert(topic, (0..n).map(|_| b.get_i32()).collect());
    }
    Some(out)
}

/// A subscription, every field its version has. `None` if the bytes are not one.
pub fn parse_subscription(metadata: &[u8]) -> Option<Subscription> {
    let mut b = metadata;
    if b.remaining() < 2 {
        return None;
    }
    let version = b.get_i16();
    if version < 0 {
        return None;
    }
    let mut topics = Vec::new();
    for _ in 0..read_count(&mut b)? {
        topics.push(read_str(&mut b)?);
    }
    skip_bytes(&mut b)?;
    let mut subscription = Subscription {
        version,
        topics,
        ..Subscription::default()
    };
    if version >= 1 {
        subscription.owned_partitions = read_topic_partitions(&mut b)?;
    }
    if version >= 2 {
        if b.remaining() < 4 {
            return None;
        }
        let _generation_id = b.get_i32();
    }
    if version >= 3 {
        subscription.rack_id = read_nullable_str(&mut b)?;
    }
    Some(subscription)
}

/// The topics of a subscription: the version-0 fields every later version starts with.
/// `None` if the bytes are not such a subscription.
pub fn subscription_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut b = metadata;
    if b.remaining() < 2 {
        return None;
    }
    let _version = b.get_i16();
    let mut topics = Vec::new();
    for _ in 0..read_count(&mut b)? {
        topics.push(read_str(&mut b)?);
    }
    skip_bytes(&mut b)?;
    Some(topics)
}

/// The version of a subscription, which its assignment is written in (capped to the newest
/// this module writes); 0 if unreadable.
pub fn subscription_version(metadata: &[u8]) -> i16 {
    match metadata {
        [hi, lo, ..] => i16::from_be_bytes([*hi, *lo]).clamp(0, LATEST_VERSION),
        _ => 0,
    }
}

/// A version-0 subscription of `topics` (what the `weir` CLI joins with).
pub fn encode_subscription(topics: &[String]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    put_count(&mut b, topics.len());
    for t in topics {
        put_str(&mut b, t);
    }
    b.put_i32(-1); // no user data
    b.freeze()
}

/// The partitions of an assignment by topic: the version-0 fields every later version starts
/// with. Empty bytes (a member not yet assigned): nothing. `None` if the bytes are not such an
/// assignment.
pub fn assignment_partitions(assignment: &[u8]) -> Option<TopicPartitions> {
    let mut b = assignment;
    if b.is_empty() {
        return Some(TopicPartitions::new());
    }
    if b.remaining() < 2 {
        return None;
    }
    let _version = b.get_i16();
    read_topic_partitions(&mut b)
}

/// An assignment of `partitions` in `version` (its fields are the same in versions 0–3), with
/// no user data.
pub fn encode_assignment(version: i16, partitions: &TopicPartitions) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(version.clamp(0, LATEST_VERSION));
    put_count(&mut b, partitions.len());
    for (topic, ps) in partitions {
        put_str(&mut b, topic);
        put_count(&mut b, ps.len());
        for &p in ps {
            b.put_i32(p);
        }
    }
    b.put_i32(-1); // no user data
    b.freeze()
}

/// Counts come from in-memory collections far below `i32::MAX`.
fn put_count(b: &mut BytesMut, n: usize) {
    b.put_i32(i32::try_from(n).unwrap_or(i32::MAX));
}

/// Topic names are at most 249 bytes; longer strings are cut rather than mis-framed.
fn put_str(b: &mut BytesMut, s: &str) {
    let len = s.len().min(i16::MAX as usize);
    b.put_i16(len as i16);
    b.put_slice(&s.as_bytes()[..len]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// A subscription of `version` written field by field, as a client writes it.
    fn subscription_v(
        version: i16,
        names: &[&str],
        owned: &[(&str, &[i32])],
        rack: Option<&str>,
    ) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&version.to_be_bytes());
        b.extend_from_slice(&(names.len() as i32).to_be_bytes());
        for t in names {
            b.extend_from_slice(&(t.len() as i16).to_be_bytes());
            b.extend_from_slice(t.as_bytes());
        }
        b.extend_from_slice(&3i32.to_be_bytes()); // user data
        b.extend_from_slice(b"abc");
        if version >= 1 {
            b.extend_from_slice(&(owned.len() as i32).to_be_bytes());
            for (t, ps) in owned {
                b.extend_from_slice(&(t.len() as i16).to_be_bytes());
                b.extend_from_slice(t.as_bytes());
                b.extend_from_slice(&(ps.len() as i32).to_be_bytes());
                for p in *ps {
                    b.extend_from_slice(&p.to_be_bytes());
                }
            }
        }
        if version >= 2 {
            b.extend_from_slice(&7i32.to_be_bytes());
        }
        if version >= 3 {
            match rack {
                Some(r) => {
                    b.extend_from_slice(&(r.len() as i16).to_be_bytes());
                    b.extend_from_slice(r.as_bytes());
                }
                None => b.extend_from_slice(&(-1i16).to_be_bytes()),
            }
        }
        b
    }

    #[test]
    fn subscriptions_of_every_version_are_read_with_their_fields() {
        let v0 = subscription_v(0, &["a", "bc"], &[], None);
        let s = parse_subscription(&v0).expect("v0");
        assert_eq!((s.version, s.topics.clone()), (0, topics(&["a", "bc"])));
        assert!(s.owned_partitions.is_empty());
        assert_eq!(subscription_topics(&v0), Some(topics(&["a", "bc"])));

        let v1 = subscription_v(1, &["a"], &[("a", &[0, 2])], None);
        let s = parse_subscription(&v1).expect("v1");
        assert_eq!(s.owned_partitions.get("a"), Some(&vec![0, 2]));

        let v3 = subscription_v(3, &["a"], &[("a", &[1])], Some("rack-1"));
        let s = parse_subscription(&v3).expect("v3");
        assert_eq!(s.rack_id.as_deref(), Some("rack-1"));
        assert_eq!(s.owned_partitions.get("a"), Some(&vec![1]));
        assert_eq!(subscription_version(&v3), 3);
        // A newer version is read as the newest known (fields only ever added at the end).
        let mut v9 = v3.clone();
        v9[1] = 9;
        v9.extend_from_slice(b"later fields");
        assert_eq!(
            parse_subscription(&v9).map(|s| s.rack_id),
            Some(Some("rack-1".into()))
        );
        assert_eq!(subscription_version(&v9), 3);

        // Cut anywhere: refused, not misread.
        for cut in 0..v3.len() {
            assert_eq!(parse_subscription(&v3[..cut]), None, "cut at {cut}");
        }
        assert_eq!(subscription_topics(b"meta"), None);
        // A count far beyond the bytes present fails without allocating for it.
        let mut huge = vec![0, 0];
        huge.extend_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(subscription_topics(&huge), None);
        assert_eq!(parse_subscription(&huge), None);
    }

    #[test]
    fn the_cli_subscription_reads_back() {
        let b = encode_subscription(&topics(&["x", "y"]));
        assert_eq!(subscription_topics(&b), Some(topics(&["x", "y"])));
        assert_eq!(
            parse_subscription(&b).map(|s| s.topics),
            Some(topics(&["x", "y"]))
        );
    }

    #[test]
    fn assignments_round_trip_and_garbage_is_rejected() {
        let partitions = TopicPartitions::from([("a".into(), vec![0, 2]), ("bc".into(), vec![1])]);
        let b = encode_assignment(3, &partitions);
        assert_eq!(&b[..2], &[0, 3]);
        assert_eq!(assignment_partitions(&b), Some(partitions.clone()));
        assert_eq!(assignment_partitions(&[]), Some(TopicPartitions::new()));
        // Cut inside the second topic's partitions.
        assert_eq!(assignment_partitions(&b[..b.len() - 6]), None);
        // Counts far beyond the bytes present fail without allocating for them.
        let mut huge = vec![0, 0];
        huge.extend_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(assignment_partitions(&huge), None);
        let mut many = vec![0, 0, 0, 0, 0, 1, 0, 1, b'a'];
        many.extend_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(assignment_partitions(&many), None);
    }

    proptest::proptest! {
        /// Any bytes: an answer or `None`, never a panic.
        #[test]
        fn readers_take_any_bytes(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..96),
        ) {
            let _ = assignment_partitions(&bytes);
            let _ = subscription_topics(&bytes);
            let _ = parse_subscription(&bytes);
            let _ = subscription_version(&bytes);
        }
    }
}
