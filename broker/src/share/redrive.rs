//! Redrive: which dead letters go back where, without their `weir.dlq.*` headers. One plan
//! serves both `weir dlq redrive` (which reads and produces over the wire) and the admin API's
//! `POST /v1/dead-letters/{topic}/redrive` (which goes through the broker's handlers): each reads
//! the dead-letter topic its own way, offers the records here in order, and produces the batches.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::dlq::{HEADER_GROUP, HEADER_REASON, HEADER_SOURCE_PARTITION, HEADER_SOURCE_TOPIC};

/// The prefix of the provenance headers a dead letter carries (see `share::dlq`).
pub const HEADER_PREFIX: &str = "weir.dlq.";

/// A record as read from a dead-letter topic, or as it will be produced back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

impl DeadLetter {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_ref())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

/// Which dead letters to redrive, and where to.
#[derive(Clone, Debug, Default)]
pub struct RedriveFilter {
    /// Produce to this topic instead of each record's source topic.
    pub to: Option<String>,
    /// Only the dead letters of this share group.
    pub group: Option<String>,
    /// Only dead letters with this reason.
    pub reason: Option<String>,
    /// At most this many matching dead letters, in the order offered (`None`: all).
    pub max_records: Option<usize>,
}

/// The records to produce, grouped by (target topic, source partition), in dead-letter order.
#[derive(Debug, Default)]
pub struct RedrivePlan {
    filter: RedriveFilter,
    pub batches: BTreeMap<(String, i32), Vec<DeadLetter>>,
    /// Matching dead letters offered (including `skipped`).
    pub taken: usize,
    /// Matching dead letters with no source topic header and no `to`: not redriven.
    pub skipped: usize,
}

impl RedrivePlan {
    pub fn new(filter: RedriveFilter) -> Self {
        Self {
            filter,
            ..Self::default()
        }
    }

    /// True once `max_records` matching dead letters were offered: offer no more.
    pub fn is_full(&self) -> bool {
        self.filter.max_records.is_some_and(|m| self.taken >= m)
    }

    /// Adds `record` to the plan if it matches the filter (and the plan is not full).
    pub fn offer(&mut self, record: DeadLetter) {
        if self.is_full() {
            return;
        }
        let f = &self.filter;
        if f.group
            .as_deref()
            .is_some_and(|g| record.header(HEADER_GROUP).as_deref() != Some(g))
            || f.reason
                .as_deref()
                .is_some_and(|r| record.header(HEADER_REASON).as_deref() != Some(r))
        {
            return;
        }
        self.taken += 1;
        let Some(target) = f.to.clone().or_else(|| record.header(HEADER_SOURCE_TOPIC)) else {
            self.skipped += 1;
            return;
        };
        // No (or an unreadable) source partition: the first one.
        let partition = record
            .header(HEADER_SOURCE_PARTITION)
            .and_then(|p| p.parse::<i32>().ok())
            .unwrap_or(0);
        let mut clean = record;
        clean.headers.retain(|(k, _)| !k.starts_with(HEADER_PREFIX));
        self.batches
            .entry((target, partition))
            .or_default()
            .push(clean);
    }

    /// How many records the plan produces.
    pub fn records(&self) -> usize {
        self.batches.values().map(Vec::len).sum()
    }
}

/// The partition to produce a batch planned for `partition` to, given the target topic's
/// partition count: the source partition, or the first one if it no longer exists.
pub fn target_partition(partition: i32, partition_count: usize) -> i32 {
    if usize::try_from(partition).is_ok_and(|p| p < partition_count) {
        partition
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(value: &str, headers: &[(&str, &str)]) -> DeadLetter {
        DeadLetter {
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::copy_from_slice(value.as_bytes())),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), Some(Bytes::copy_from_slice(v.as_bytes()))))
                .collect(),
        }
    }

    fn dead(value: &str, topic: &str, partition: &str, group: &str, reason: &str) -> DeadLetter {
        letter(
            value,
            &[
                ("app", "kept"),
                (HEADER_SOURCE_TOPIC, topic),
                (HEADER_SOURCE_PARTITION, partition),
                (HEADER_GROUP, group),
                (HEADER_REASON, reason),
            ],
        )
    }

    #[test]
    fn groups_by_source_and_strips_only_the_dlq_headers() {
        let mut plan = RedrivePlan::new(RedriveFilter::default());
        plan.offer(dead("a", "orders", "1", "g", "rejected"));
        plan.offer(dead("b", "orders", "0", "g", "expired"));
        plan.offer(dead("c", "orders", "1", "h", "rejected"));
        assert_eq!(plan.records(), 3);
        assert_eq!(plan.skipped, 0);
        let one = &plan.batches[&("orders".to_string(), 1)];
        let values: Vec<_> = one.iter().map(|r| r.value.clone().unwrap()).collect();
        assert_eq!(values, vec![Bytes::from("a"), Bytes::from("c")]);
        assert_eq!(
            one[0].headers,
            vec![("app".to_string(), Some(Bytes::from("kept")))]
        );
        assert_eq!(one[0].key, Some(Bytes::from("k")));
        assert_eq!(plan.batches[&("orders".to_string(), 0)].len(), 1);
    }

    #[test]
    fn filters_by_group_and_reason_and_stops_at_max() {
        let filter = RedriveFilter {
            group: Some("g".into()),
            reason: Some("rejected".into()),
            max_records: Some(2),
            ..RedriveFilter::default()
        };
        let mut plan = RedrivePlan::new(filter);
        for v in ["a", "b", "c"] {
            plan.offer(dead("x", "t", "0", "h", "rejected"));
            plan.offer(dead("y", "t", "0", "g", "expired"));
            plan.offer(dead(v, "t", "0", "g", "rejected"));
        }
        assert!(plan.is_full());
        let values: Vec<_> = plan.batches[&("t".to_string(), 0)]
            .iter()
            .map(|r| r.value.clone().unwrap())
            .collect();
        assert_eq!(values, vec![Bytes::from("a"), Bytes::from("b")]);
    }

    #[test]
    fn without_a_source_topic_goes_to_to_or_is_skipped() {
        let mut plan = RedrivePlan::new(RedriveFilter::default());
        plan.offer(letter("v", &[(HEADER_GROUP, "g")]));
        assert_eq!((plan.records(), plan.skipped, plan.taken), (0, 1, 1));
        let mut plan = RedrivePlan::new(RedriveFilter {
            to: Some("retry".into()),
            ..RedriveFilter::default()
        });
        plan.offer(letter("v", &[(HEADER_GROUP, "g")]));
        plan.offer(dead("w", "orders", "3", "g", "rejected"));
        assert_eq!(plan.skipped, 0);
        assert_eq!(plan.batches[&("retry".to_string(), 0)].len(), 1);
        assert_eq!(plan.batches[&("retry".to_string(), 3)].len(), 1);
        assert!(plan.batches[&("retry".to_string(), 0)][0]
            .headers
            .is_empty());
    }

    #[test]
    fn a_missing_partition_falls_back_to_the_first() {
        assert_eq!(target_partition(2, 3), 2);
        assert_eq!(target_partition(3, 3), 0);
        assert_eq!(target_partition(-1, 3), 0);
    }
}
