//! `__consumer_offsets` as a partitioned topic on a single node: groups spread over its partitions
//! as Kafka spreads them (`abs(groupId.hashCode) % partitions`), every one coordinated by the
//! single node; committed offsets survive a restart; a data directory written with a
//! one-partition `__consumer_offsets` keeps its offsets (and its partition count) after upgrade.

use std::collections::BTreeSet;
use std::path::PathBuf;

use weir_broker::config::BrokerConfig;
use weir_broker::internal_partitions::partition_for;
use weir_protocol::*;

use crate::common::inproc::InProcess;
use crate::common::kafka::Conn as Client;

const OFFSETS: &str = "__consumer_offsets";
/// FindCoordinator key type of groups.
const GROUP: i8 = 0;

/// Starts an in-process broker on `data_dir`; `partitions`: offsets.topic.num.partitions (the
/// default when `None`).
fn start(data_dir: PathBuf, partitions: Option<i32>) -> InProcess {
    let defaults = BrokerConfig::default();
    InProcess::start(BrokerConfig {
        data_dir,
        group_initial_rebalance_delay_ms: 0,
        offsets_topic_num_partitions: partitions.unwrap_or(defaults.offsets_topic_num_partitions),
        ..defaults
    })
}

trait OffsetsCalls {
    fn commit(&mut self, group: &str, topic: &str, partitions: i32, offset: i64);
    fn fetch(&mut self, group: &str) -> Vec<(String, i32, i64)>;
    fn offsets_partitions(&mut self) -> usize;
    fn offsets_log_ends(&mut self, partitions: i32) -> Vec<i64>;
    fn list_groups(&mut self) -> BTreeSet<String>;
}

impl OffsetsCalls for Client {
    /// Commits `offset` for every partition of `topic` (classic simple-consumer commit).
    fn commit(&mut self, group: &str, topic: &str, partitions: i32, offset: i64) {
        let Response::OffsetCommit(r) = self.call(Request::OffsetCommit(OffsetCommitRequest {
            group_id: group.into(),
            generation_id: -1,
            topics: vec![OffsetCommitTopic {
                name: topic.into(),
                partitions: (0..partitions)
                    .map(|p| OffsetCommitPartition {
                        partition_index: p,
                        committed_offset: offset,
                        ..OffsetCommitPartition::default()
                    })
                    .collect(),
            }],
            ..OffsetCommitRequest::default()
        })) else {
            panic!("not an OffsetCommit response");
        };
        for p in &r.topics[0].partitions {
            assert_eq!(p.error_code, ErrorCode::NONE, "commit of {group}: {r:?}");
        }
    }

    /// The committed offsets of `group` (all topics), as (topic, partition, offset).
    fn fetch(&mut self, group: &str) -> Vec<(String, i32, i64)> {
        let Response::OffsetFetch(r) = self.call(Request::OffsetFetch(OffsetFetchRequest {
            groups: vec![OffsetFetchGroup {
                group_id: group.into(),
                ..OffsetFetchGroup::default()
            }],
            require_stable: false,
        })) else {
            panic!("not an OffsetFetch response");
        };
        assert_eq!(r.groups.len(), 1);
        assert_eq!(r.groups[0].error_code, ErrorCode::NONE, "{r:?}");
        r.groups[0]
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.clone(), p.partition_index, p.committed_offset))
            })
            .collect()
    }

    /// The partition count of `__consumer_offsets` per Metadata.
    fn offsets_partitions(&mut self) -> usize {
        let Response::Metadata(m) = self.call(Request::Metadata(MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                name: Some(OFFSETS.into()),
                topic_id: [0; 16],
            }]),
            allow_auto_topic_creation: false,
            ..MetadataRequest::default()
        })) else {
            panic!("not a Metadata response");
        };
        let t = &m.topics[0];
        assert_eq!(t.error_code, ErrorCode::NONE, "{m:?}");
        assert!(t.is_internal);
        t.partitions.len()
    }

    /// The log end offset of each partition of `__consumer_offsets`.
    fn offsets_log_ends(&mut self, partitions: i32) -> Vec<i64> {
        let Response::ListOffsets(r) = self.call(Request::ListOffsets(ListOffsetsRequest {
            topics: vec![ListOffsetsTopic {
                name: OFFSETS.into(),
                partitions: (0..partitions)
                    .map(|p| ListOffsetsPartition {
                        partition_index: p,
                        ..ListOffsetsPartition::default()
                    })
                    .collect(),
            }],
            ..ListOffsetsRequest::default()
        })) else {
            panic!("not a ListOffsets response");
        };
        let mut ends = vec![0; usize::try_from(partitions).expect("count")];
        for p in &r.topics[0].partitions {
            assert_eq!(p.error_code, ErrorCode::NONE, "{r:?}");
            ends[usize::try_from(p.partition_index).expect("index")] = p.offset;
        }
        ends
    }

    fn list_groups(&mut self) -> BTreeSet<String> {
        let Response::ListGroups(r) = self.call(Request::ListGroups(ListGroupsRequest::default()))
        else {
            panic!("not a ListGroups response");
        };
        r.groups.into_iter().map(|g| g.group_id).collect()
    }
}

/// Group ids that fall into `wanted` distinct partitions of `partitions`.
fn groups_in_distinct_partitions(partitions: i32, wanted: usize) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut groups = Vec::new();
    for i in 0.. {
        let g = format!("group-{i}");
        if seen.insert(partition_for(&g, partitions)) {
            groups.push(g);
            if groups.len() == wanted {
                break;
            }
        }
    }
    groups
}

#[test]
fn groups_spread_over_the_offsets_partitions_are_all_coordinated_by_a_single_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path().to_path_buf(), Some(8));
    let mut c = Client::connect(broker.addr);
    c.create_topic("orders", 2, &[]);
    let groups = groups_in_distinct_partitions(8, 5);
    assert_eq!(c.offsets_partitions(), 8);

    // FindCoordinator, batched (v4+) and one key at a time (v3): this node for every group.
    let Response::FindCoordinator(found) =
        c.call(Request::FindCoordinator(FindCoordinatorRequest {
            key_type: GROUP,
            keys: groups.clone(),
        }))
    else {
        panic!("not a FindCoordinator response");
    };
    assert_eq!(found.coordinators.len(), groups.len());
    for (k, g) in found.coordinators.iter().zip(&groups) {
        assert_eq!(&k.key, g);
        assert_eq!(k.error_code, ErrorCode::NONE, "{found:?}");
        assert_eq!(k.node_id, 0);
        assert_eq!(k.port, i32::from(broker.addr.port()));
    }
    let Response::FindCoordinator(one) = c.call_at(
        Request::FindCoordinator(FindCoordinatorRequest {
            key_type: GROUP,
            keys: vec![groups[1].clone()],
        }),
        3,
    ) else {
        panic!("not a FindCoordinator response");
    };
    assert_eq!(one.coordinators[0].error_code, ErrorCode::NONE);
    assert_eq!(one.coordinators[0].node_id, 0);
    // Share-partition keys (type 2) need v6 (Kafka answers them INVALID_REQUEST below), and
    // must read `group:topicId:partition`; other types do not exist: INVALID_REQUEST, not a
    // group's coordinator.
    let refused_at = |c: &mut Client, key_type: i8, keys: &[String], version: i16| {
        let Response::FindCoordinator(refused) = c.call_at(
            Request::FindCoordinator(FindCoordinatorRequest {
                key_type,
                keys: keys.to_vec(),
            }),
            version,
        ) else {
            panic!("not a FindCoordinator response");
        };
        assert_eq!(refused.coordinators.len(), keys.len());
        for k in &refused.coordinators {
            assert_eq!(k.error_code, ErrorCode::INVALID_REQUEST, "{refused:?}");
            assert_eq!(k.node_id, -1);
        }
    };
    let share_key = "g1:AAAAAAAAAAAAAAAAAAAAAQ:3".to_string();
    refused_at(&mut c, 2, std::slice::from_ref(&share_key), 5);
    refused_at(&mut c, 2, &groups, 6);
    for key_type in [3, -1] {
        refused_at(&mut c, key_type, &groups, 6);
    }
    // A share-partition key at v6: this node, which owns every share state partition.
    let Response::FindCoordinator(share) = c.call_at(
        Request::FindCoordinator(FindCoordinatorRequest {
            key_type: 2,
            keys: vec![share_key.clone()],
        }),
        6,
    ) else {
        panic!("not a FindCoordinator response");
    };
    assert_eq!(share.coordinators[0].key, share_key);
    assert_eq!(
        share.coordinators[0].error_code,
        ErrorCode::NONE,
        "{share:?}"
    );
    assert_eq!(share.coordinators[0].node_id, 0);

    for (i, g) in groups.iter().enumerate() {
        c.commit(g, "orders", 2, 10 + i64::try_from(i).expect("i"));
    }
    for (i, g) in groups.iter().enumerate() {
        let offset = 10 + i64::try_from(i).expect("i");
        assert_eq!(
            c.fetch(g),
            vec![("orders".into(), 0, offset), ("orders".into(), 1, offset)]
        );
    }
    // Each group's commit went to its own partition, and only there.
    let ends = c.offsets_log_ends(8);
    let used: BTreeSet<i32> = groups.iter().map(|g| partition_for(g, 8)).collect();
    for (p, end) in ends.iter().enumerate() {
        let p = i32::try_from(p).expect("p");
        assert_eq!(*end > 0, used.contains(&p), "partition {p}: {ends:?}");
    }
    assert_eq!(c.list_groups(), groups.iter().cloned().collect());

    // A batched OffsetFetch (v8+) of several groups: all answered here.
    let Response::OffsetFetch(r) = c.call(Request::OffsetFetch(OffsetFetchRequest {
        groups: groups
            .iter()
            .map(|g| OffsetFetchGroup {
                group_id: g.clone(),
                ..OffsetFetchGroup::default()
            })
            .collect(),
        require_stable: false,
    })) else {
        panic!("not an OffsetFetch response");
    };
    assert_eq!(r.groups.len(), groups.len());
    assert!(r
        .groups
        .iter()
        .all(|g| g.error_code == ErrorCode::NONE && g.topics.len() == 1));
}

#[test]
fn committed_offsets_of_every_partition_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let groups = groups_in_distinct_partitions(16, 6);
    {
        let broker = start(dir.path().to_path_buf(), None);
        let mut c = Client::connect(broker.addr);
        c.create_topic("events", 3, &[]);
        for (i, g) in groups.iter().enumerate() {
            c.commit(g, "events", 3, 100 * i64::try_from(i + 1).expect("i"));
        }
        assert_eq!(c.offsets_partitions(), 16);
    }
    let broker = start(dir.path().to_path_buf(), None);
    let mut c = Client::connect(broker.addr);
    for (i, g) in groups.iter().enumerate() {
        let offset = 100 * i64::try_from(i + 1).expect("i");
        assert_eq!(
            c.fetch(g),
            (0..3)
                .map(|p| ("events".to_string(), p, offset))
                .collect::<Vec<_>>(),
            "group {g}"
        );
    }
    // Groups known by their offsets are listed again after the restart.
    assert_eq!(c.list_groups(), groups.iter().cloned().collect());
}

#[test]
fn a_one_partition_offsets_topic_keeps_its_offsets_and_partition_count_after_upgrade() {
    let dir = tempfile::tempdir().expect("tempdir");
    let groups = groups_in_distinct_partitions(16, 4);
    {
        // The layout of earlier Weir versions: one partition holds every group.
        let broker = start(dir.path().to_path_buf(), Some(1));
        let mut c = Client::connect(broker.addr);
        c.create_topic("legacy", 1, &[]);
        for (i, g) in groups.iter().enumerate() {
            c.commit(g, "legacy", 1, 7 + i64::try_from(i).expect("i"));
        }
        assert_eq!(c.offsets_partitions(), 1);
    }
    // Started with the default partition count: the existing topic is kept as it is (Kafka never
    // changes it), so every group still finds its offsets in partition 0.
    let broker = start(dir.path().to_path_buf(), None);
    let mut c = Client::connect(broker.addr);
    assert_eq!(c.offsets_partitions(), 1);
    for (i, g) in groups.iter().enumerate() {
        let offset = 7 + i64::try_from(i).expect("i");
        assert_eq!(c.fetch(g), vec![("legacy".to_string(), 0, offset)]);
    }
    // New commits keep going to the one partition.
    c.commit(&groups[0], "legacy", 1, 99);
    assert_eq!(c.fetch(&groups[0]), vec![("legacy".to_string(), 0, 99)]);
    assert_eq!(c.list_groups(), groups.iter().cloned().collect());
}
