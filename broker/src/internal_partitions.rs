//! Ownership of the partitions of an internal topic (`__consumer_offsets`, `__transaction_state`,
//! `__share_group_state`): which of them this broker leads, the state loaded for each, and which
//! partition a key (a group id, a transactional id, a share-partition) belongs to.
//!
//! A coordinator built on an internal topic keeps one state per partition it leads, in an
//! [`InternalPartitions`]. Whoever watches leadership (the cluster runtime, or a single node at
//! start, which leads every partition) hands the partitions led now to [`follow`], which loads
//! the ones newly led and unloads the ones no longer led through the coordinator's
//! [`PartitionOwner`] callbacks. Keys map to partitions as Kafka maps them
//! ([`partition_for`]), so Kafka clients and Weir agree on where a key lives.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::partition::Partition;

/// Java's `String.hashCode` (over UTF-16 code units, wrapping), which Kafka hashes keys with.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The partition of `key` among `partition_count`: Kafka's
/// `Utils.abs(key.hashCode()) % partitionCount`, where `Utils.abs(i32::MIN)` is 0.
/// `partition_count` below 1 is taken as 1.
pub fn partition_for(key: &str, partition_count: i32) -> i32 {
    let hash = java_string_hash(key);
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partition_count.max(1)
}

/// The state a coordinator keeps for each partition of its internal topic that this broker
/// leads, with the topic's partition count (all brokers map keys with the same count: the
/// topic's, never a local setting).
pub struct InternalPartitions<S> {
    partition_count: AtomicI32,
    loaded: RwLock<BTreeMap<i32, Arc<S>>>,
}

impl<S> Default for InternalPartitions<S> {
    fn default() -> Self {
        Self {
            partition_count: AtomicI32::new(0),
            loaded: RwLock::new(BTreeMap::new()),
        }
    }
}

impl<S> InternalPartitions<S> {
    /// The topic's partition count as last set (0: not known yet).
    pub fn partition_count(&self) -> i32 {
        self.partition_count.load(Ordering::Acquire)
    }

    pub fn set_partition_count(&self, count: i32) {
        self.partition_count.store(count, Ordering::Release);
    }

    /// The partition `key` belongs to (`None` while the partition count is unknown).
    pub fn partition_of(&self, key: &str) -> Option<i32> {
        let count = self.partition_count();
        (count > 0).then(|| partition_for(key, count))
    }

    /// The state of `key`'s partition, if this broker has it loaded (leads the partition).
    pub fn for_key(&self, key: &str) -> Option<Arc<S>> {
        self.get(self.partition_of(key)?)
    }

    pub fn get(&self, index: i32) -> Option<Arc<S>> {
        self.loaded.read().get(&index).cloned()
    }

    /// Every loaded state, by partition index.
    pub fn all(&self) -> Vec<(i32, Arc<S>)> {
        self.loaded
            .read()
            .iter()
            .map(|(i, s)| (*i, s.clone()))
            .collect()
    }

    pub fn insert(&self, index: i32, state: Arc<S>) {
        self.loaded.write().insert(index, state);
    }

    pub fn remove(&self, index: i32) -> Option<Arc<S>> {
        self.loaded.write().remove(&index)
    }
}

/// A coordinator that keeps state per led partition of an internal topic.
pub trait PartitionOwner {
    type Error;
    /// The replica each loaded partition was loaded from, by index.
    fn loaded(&self) -> Vec<(i32, Arc<Partition>)>;
    /// This broker now leads `partition` (of a topic with `partition_count` partitions): load
    /// its state from its log. Blocking. A partition that failed to load is not loaded (the
    /// next `follow` tries again).
    fn load(
        &self,
        index: i32,
        partition: Arc<Partition>,
        partition_count: i32,
    ) -> Result<(), Self::Error>;
    /// This broker no longer leads partition `index`: drop its state. Blocking.
    fn unload(&self, index: i32);
}

/// Brings `owner` in line with the partitions this broker leads now (`leading`, by index, of a
/// topic with `partition_count` partitions): unloads what it no longer leads (or leads through
/// another replica object, e.g. after the topic was recreated), then loads what it newly leads.
/// Returns the partitions that failed to load.
pub fn follow<O: PartitionOwner + ?Sized>(
    owner: &O,
    leading: &[(i32, Arc<Partition>)],
    partition_count: i32,
) -> Vec<(i32, O::Error)> {
    let loaded = owner.loaded();
    for (index, partition) in &loaded {
        let still = leading
            .iter()
            .any(|(i, p)| i == index && Arc::ptr_eq(p, partition));
        if !still {
            owner.unload(*index);
        }
    }
    let mut failed = Vec::new();
    for (index, partition) in leading {
        let already = loaded
            .iter()
            .any(|(i, p)| i == index && Arc::ptr_eq(p, partition));
        if !already {
            if let Err(e) = owner.load(*index, partition.clone(), partition_count) {
                failed.push((*index, e));
            }
        }
    }
    failed
}

/// Loads every partition of `topic` that has a replica here into `owner`: a single node leads
/// them all. The first partition that failed to load, if any, is the error.
pub fn follow_every_local<O: PartitionOwner + ?Sized>(
    owner: &O,
    topic: &crate::topics::Topic,
) -> Result<(), O::Error> {
    let leading: Vec<_> = topic
        .local_partitions()
        .map(|p| (p.index, p.clone()))
        .collect();
    let count = i32::try_from(topic.partition_count()).unwrap_or(i32::MAX);
    match follow(owner, &leading, count).into_iter().next() {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_javas_string_hash_code() {
        // Values Java's String.hashCode gives.
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("console-consumer-1234"), 836_395_459);
        assert_eq!(java_string_hash("my-group"), -1_906_497_762);
        assert_eq!(java_string_hash("Aa"), java_string_hash("BB"));
        // Over UTF-16 code units: a character outside the BMP counts as its two surrogates
        // (0xD83D * 31 + 0xDE00), one in the BMP as itself, not as its UTF-8 bytes.
        assert_eq!(java_string_hash("\u{1F600}"), 1_772_899);
        assert_eq!(java_string_hash("é"), 233);
    }

    #[test]
    fn partition_is_kafkas_abs_of_the_hash_modulo_the_count() {
        assert_eq!(partition_for("", 50), 0);
        assert_eq!(partition_for("a", 50), 97 % 50);
        assert_eq!(partition_for("console-consumer-1234", 50), 836_395_459 % 50);
        // A negative hash: its absolute value.
        assert_eq!(partition_for("my-group", 16), 1_906_497_762 % 16);
        assert_eq!(partition_for("my-group", 50), 1_906_497_762 % 50);
        // "polygenelubricants" hashes to i32::MIN, whose absolute value does not fit: Kafka's
        // Utils.abs maps it to 0 (a plain abs would panic or stay negative).
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        assert_eq!(partition_for("polygenelubricants", 7), 0);
        for count in 1..=64 {
            for key in ["", "g", "my-group", "polygenelubricants", "\u{1F600}"] {
                assert!((0..count).contains(&partition_for(key, count)));
            }
        }
        assert_eq!(partition_for("anything", 0), 0);
    }

    #[test]
    fn keys_map_only_once_the_count_is_known() {
        let parts: InternalPartitions<String> = InternalPartitions::default();
        assert_eq!(parts.partition_of("g"), None);
        parts.set_partition_count(16);
        let p = partition_for("g", 16);
        assert_eq!(parts.partition_of("g"), Some(p));
        assert!(parts.for_key("g").is_none());
        parts.insert(p, Arc::new("state".into()));
        assert_eq!(
            parts.for_key("g").as_deref().map(String::as_str),
            Some("state")
        );
        assert_eq!(
            parts.remove(p).as_deref().map(String::as_str),
            Some("state")
        );
        assert!(parts.for_key("g").is_none());
    }
}
