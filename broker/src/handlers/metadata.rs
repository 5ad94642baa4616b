//! ApiVersions, Metadata (with topic auto-creation), DescribeTopicPartitions, DescribeCluster,
//! FindCoordinator.

use std::sync::Arc;
use std::time::Duration;

use weir_protocol::requests::{
    DescribeClusterRequest, DescribeQuorumRequest, DescribeQuorumTopic,
    DescribeTopicPartitionsCursor, DescribeTopicPartitionsRequest, FindCoordinatorRequest,
    MetadataRequest,
};
use weir_protocol::responses::{
    ApiVersionsResponse, Coordinator, DescribeClusterBroker, DescribeClusterResponse,
    DescribeQuorumPartitionResponse, DescribeQuorumResponse, DescribeQuorumTopicResponse,
    DescribeTopicPartitionsResponse, DescribeTopicPartitionsResponsePartition,
    DescribeTopicPartitionsResponseTopic, Feature, FindCoordinatorResponse, MetadataBroker,
    MetadataPartition, MetadataResponse, MetadataTopic, QuorumReplicaState,
    AUTHORIZED_OPERATIONS_OMITTED,
};
use weir_protocol::ErrorCode;

use crate::authz::{AclOperation, Authz, ResourceType};
use crate::broker::Broker;
use crate::cluster::metadata::BrokerRecord;
use crate::offsets::OFFSETS_TOPIC;
use crate::topic_admin::CreateSpec;
use crate::topics::{valid_topic_name, Topic};

/// FindCoordinator key types: group ids, transactional ids. (Kafka's third, share-partition keys
/// for the inter-broker share state APIs, needs FindCoordinator v6; Weir serves up to v4 and its
/// brokers find share coordinators from the cluster metadata.)
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;
const KEY_TYPE_SHARE: i8 = 2;
/// The first FindCoordinator version with share keys (KIP-932).
const MIN_SHARE_KEY_VERSION: i16 = 6;

/// ApiVersions: every API served, and the features clients read from it (KIP-584).
pub fn api_versions() -> ApiVersionsResponse {
    ApiVersionsResponse {
        features: vec![Feature {
            name: "transaction.version".into(),
            min_supported: 0,
            max_supported: crate::txn::TRANSACTION_VERSION,
            finalized: Some(crate::txn::TRANSACTION_VERSION),
        }],
        // Levels never change while a broker runs, so one epoch for all.
        finalized_features_epoch: 1,
        ..ApiVersionsResponse::supported()
    }
}

fn describe_topic(broker: &Broker, topic: &Topic) -> MetadataTopic {
    MetadataTopic {
        error_code: ErrorCode::NONE,
        name: Some(topic.name.clone()),
        topic_id: topic.id,
        is_internal: topic.is_internal,
        partitions: (0..i32::try_from(topic.partition_count()).unwrap_or(i32::MAX))
            .map(|index| describe_partition(broker, topic, index))
            .collect(),
        ..MetadataTopic::default()
    }
}

/// One partition as Kafka's Metadata shows it: leader and epoch, the assigned replicas, the
/// in-sync voters (as the leader sees them), and the assigned replicas on brokers that are gone.
fn describe_partition(broker: &Broker, topic: &Topic, index: i32) -> MetadataPartition {
    // One rule for Metadata, the admin API and the metrics (`cluster::status`): the freshest
    // of this broker's replica and the leader's record, a leader on a gone broker is no leader.
    let status = crate::cluster::status::of_partition(broker, topic, index);
    let leader = match status.leader {
        Some(l) if !status.offline => l,
        _ => -1,
    };
    let epoch = status.leader_epoch.unwrap_or(-1);
    let (replicas, isr, offline_replicas) = (status.replicas, status.isr, status.offline_replicas);
    MetadataPartition {
        error_code: if leader < 0 {
            ErrorCode::LEADER_NOT_AVAILABLE
        } else {
            ErrorCode::NONE
        },
        partition_index: index,
        leader_id: leader,
        leader_epoch: epoch,
        replica_nodes: replicas,
        isr_nodes: isr,
        offline_replicas,
    }
}

/// How long after a broker learns of a topic it may leave it out of "all topics" answers while
/// its first leaders are elected.
const NEW_TOPIC_ELECTION_GRACE: Duration = Duration::from_secs(10);

/// A topic this broker learned of moments ago, some partition of which has had no leader yet:
/// Kafka's brokers learn of a topic together with its leaders, so an "all topics" answer never
/// shows one without them; Weir's replicas elect their first leaders right after, so such a topic
/// is left out until they have (or the grace has passed). Asked for by name, it is shown. A single
/// node creates a topic with its leaders, so there it is always shown.
fn being_created(broker: &Broker, topic: &Topic) -> bool {
    broker.cluster.is_some()
        && topic.known_since.elapsed() < NEW_TOPIC_ELECTION_GRACE
        && crate::cluster::status::of_topic(broker, topic).any(|p| p.leader_epoch.is_none())
}

fn missing_topic(name: Option<String>, topic_id: [u8; 16], error_code: ErrorCode) -> MetadataTopic {
    MetadataTopic {
        error_code,
        name,
        topic_id,
        ..MetadataTopic::default()
    }
}

pub fn brokers(broker: &Broker) -> Vec<MetadataBroker> {
    broker
        .live_brokers()
        .into_iter()
        .map(|b| MetadataBroker {
            node_id: b.id,
            host: b.host,
            port: b.port,
            rack: b.rack,
        })
        .collect()
}

/// The controller as clients see it: the broker holding the controller key in a cluster (this
/// one while none does, so admin clients always have somewhere to go), this one on a single node.
fn controller_id(broker: &Broker) -> i32 {
    broker
        .cluster
        .as_ref()
        .and_then(|c| c.store.with_view(|v| v.controller))
        .unwrap_or(broker.config.node_id)
}

/// Metadata. With an authorizer, as Kafka: topics the client may not DESCRIBE are left out of an
/// "all topics" answer and named ones get `TOPIC_AUTHORIZATION_FAILED` (without saying whether
/// they exist; by topic id without the name), and auto-creation needs CREATE on the cluster or
/// the topic.
pub async fn metadata(
    broker: &Arc<Broker>,
    az: &Authz,
    request: MetadataRequest,
) -> MetadataResponse {
    let describable = |name: &str| az.allows(AclOperation::Describe, ResourceType::Topic, name);
    let topics = match request.topics {
        None => broker
            .topics
            .all()
            .iter()
            .filter(|t| az.allows_quietly(AclOperation::Describe, ResourceType::Topic, &t.name))
            .filter(|t| !being_created(broker, t))
            .map(|t| describe_topic(broker, t))
            .collect(),
        Some(requested) => {
            let mut out = Vec::with_capacity(requested.len());
            for t in requested {
                let found = match &t.name {
                    Some(name) => broker.topics.get(name),
                    None => broker.topics.by_id(t.topic_id),
                };
                match (&t.name, &found) {
                    (Some(name), _) if !describable(name) => {
                        out.push(missing_topic(
                            Some(name.clone()),
                            [0; 16],
                            ErrorCode::TOPIC_AUTHORIZATION_FAILED,
                        ));
                        continue;
                    }
                    (None, Some(topic)) if !describable(&topic.name) => {
                        out.push(missing_topic(
                            None,
                            topic.id,
                            ErrorCode::TOPIC_AUTHORIZATION_FAILED,
                        ));
                        continue;
                    }
                    _ => {}
                }
                if let Some(topic) = found {
                    out.push(describe_topic(broker, &topic));
                    continue;
                }
                let Some(name) = t.name else {
                    out.push(missing_topic(None, t.topic_id, ErrorCode::UNKNOWN_TOPIC_ID));
                    continue;
                };
                if !valid_topic_name(&name) {
                    out.push(missing_topic(
                        Some(name),
                        t.topic_id,
                        ErrorCode::INVALID_TOPIC_EXCEPTION,
                    ));
                    continue;
                }
                if !(broker.config.auto_create_topics && request.allow_auto_topic_creation) {
                    out.push(missing_topic(
                        Some(name),
                        t.topic_id,
                        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                    ));
                    continue;
                }
                if !az.allows_cluster(AclOperation::Create)
                    && !az.allows(AclOperation::Create, ResourceType::Topic, &name)
                {
                    out.push(missing_topic(
                        Some(name),
                        [0; 16],
                        ErrorCode::TOPIC_AUTHORIZATION_FAILED,
                    ));
                    continue;
                }
                // An internal topic asked for before its coordinator created it gets its own
                // partition count and configs, as Kafka creates it.
                let spec = CreateSpec::internal(&broker.config, &name).unwrap_or(CreateSpec {
                    name: name.clone(),
                    partitions: -1,
                    replication_factor: -1,
                    assignment: Vec::new(),
                    configs: Vec::new(),
                    internal: false,
                    validate_only: false,
                });
                let created = broker.create_topic(spec).await;
                match created.ok().and_then(|_| broker.topics.get(&name)) {
                    // As Kafka, whose controller creates the topic after this answer: the
                    // creating request learns only that it is on its way, and clients ask
                    // again (`LEADER_NOT_AVAILABLE`, no partitions). Clients that time records
                    // out from the first answer (rust-rdkafka's suite) count on this.
                    Some(topic) => {
                        tracing::info!(topic = %name, "auto-created topic");
                        out.push(MetadataTopic {
                            is_internal: topic.is_internal,
                            ..missing_topic(Some(name), [0; 16], ErrorCode::LEADER_NOT_AVAILABLE)
                        });
                    }
                    // Lost a race with another creator: describe the winner's topic.
                    _ => match broker.topics.get(&name) {
                        Some(topic) => out.push(describe_topic(broker, &topic)),
                        None => out.push(missing_topic(
                            Some(name),
                            t.topic_id,
                            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                        )),
                    },
                }
            }
            out
        }
    };
    let mut topics: Vec<MetadataTopic> = topics;
    if request.include_topic_authorized_operations {
        // As Kafka: every topic in the answer, those answered with an error included.
        for t in &mut topics {
            // Topics refused to this client say nothing more, not even what it may do.
            if t.error_code == ErrorCode::TOPIC_AUTHORIZATION_FAILED {
                continue;
            }
            let name = t.name.as_deref().unwrap_or_default();
            t.topic_authorized_operations = az.operations(ResourceType::Topic, name);
        }
    }
    MetadataResponse {
        brokers: brokers(broker),
        cluster_id: Some(broker.cluster_id.clone()),
        controller_id: controller_id(broker),
        topics,
        // Only Metadata v8-10 carry it (later versions moved it to DescribeCluster); the encoder
        // drops it elsewhere, and the request field is false there.
        cluster_authorized_operations: if request.include_cluster_authorized_operations {
            cluster_operations(az)
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        },
        ..MetadataResponse::default()
    }
}

/// The most partitions a DescribeTopicPartitions response holds (Kafka's
/// `max.request.partition.size.limit` default).
const MAX_DESCRIBED_PARTITIONS: usize = 2000;

/// DescribeTopicPartitions (KIP-966): the partitions of the named topics (or of every topic the
/// client may DESCRIBE), in topic name order, at most `response_partition_limit` of them, from
/// the cursor on; `next_cursor` says where the next page starts. A topic the client may not
/// DESCRIBE is `TOPIC_AUTHORIZATION_FAILED` when named and left out when listing all, as in
/// Metadata. Eligible leader replicas (KIP-966's ELR) are not kept by Weir: empty lists.
pub fn describe_topic_partitions(
    broker: &Broker,
    az: &Authz,
    request: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let limit = usize::try_from(request.response_partition_limit)
        .ok()
        .filter(|l| *l > 0)
        .map_or(MAX_DESCRIBED_PARTITIONS, |l| {
            l.min(MAX_DESCRIBED_PARTITIONS)
        });
    let mut names: Vec<String> = if request.topics.is_empty() {
        broker
            .topics
            .all()
            .iter()
            .filter(|t| az.allows_quietly(AclOperation::Describe, ResourceType::Topic, &t.name))
            .filter(|t| !being_created(broker, t))
            .map(|t| t.name.clone())
            .collect()
    } else {
        request.topics.into_iter().map(|t| t.name).collect()
    };
    names.sort();
    names.dedup();
    let (first_partition, from) = match &request.cursor {
        Some(c) => (c.partition_index.max(0), Some(c.topic_name.clone())),
        None => (0, None),
    };
    let mut out = DescribeTopicPartitionsResponse::default();
    let mut left = limit;
    let mut names = names
        .into_iter()
        .filter(|n| from.as_ref().is_none_or(|f| n >= f))
        .peekable();
    while let Some(name) = names.next() {
        if left == 0 {
            out.next_cursor = Some(DescribeTopicPartitionsCursor {
                topic_name: name,
                partition_index: 0,
            });
            break;
        }
        let refused = |error_code| DescribeTopicPartitionsResponseTopic {
            error_code,
            name: Some(name.clone()),
            ..DescribeTopicPartitionsResponseTopic::default()
        };
        if !az.allows(AclOperation::Describe, ResourceType::Topic, &name) {
            out.topics
                .push(refused(ErrorCode::TOPIC_AUTHORIZATION_FAILED));
            continue;
        }
        let Some(topic) = broker.topics.get(&name) else {
            out.topics
                .push(refused(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION));
            continue;
        };
        let count = i32::try_from(topic.partition_count()).unwrap_or(i32::MAX);
        let start = if from.as_deref() == Some(name.as_str()) {
            first_partition
        } else {
            0
        };
        let mut partitions = Vec::new();
        let mut index = start;
        while index < count && left > 0 {
            let p = describe_partition(broker, &topic, index);
            partitions.push(DescribeTopicPartitionsResponsePartition {
                error_code: p.error_code,
                partition_index: p.partition_index,
                leader_id: p.leader_id,
                leader_epoch: p.leader_epoch,
                replica_nodes: p.replica_nodes,
                isr_nodes: p.isr_nodes,
                eligible_leader_replicas: Some(Vec::new()),
                last_known_elr: Some(Vec::new()),
                offline_replicas: p.offline_replicas,
            });
            index += 1;
            left -= 1;
        }
        out.topics.push(DescribeTopicPartitionsResponseTopic {
            error_code: ErrorCode::NONE,
            name: Some(name.clone()),
            topic_id: topic.id,
            is_internal: topic.is_internal,
            partitions,
            topic_authorized_operations: az.operations(ResourceType::Topic, &name),
        });
        if index < count {
            out.next_cursor = Some(DescribeTopicPartitionsCursor {
                topic_name: name,
                partition_index: index,
            });
            break;
        }
        if left == 0 {
            if let Some(next) = names.peek() {
                out.next_cursor = Some(DescribeTopicPartitionsCursor {
                    topic_name: next.clone(),
                    partition_index: 0,
                });
            }
            break;
        }
    }
    out
}

/// The cluster's authorized operations, as Kafka: none at all without DESCRIBE on the cluster.
fn cluster_operations(az: &Authz) -> i32 {
    if az.allows_cluster(AclOperation::Describe) {
        az.operations(ResourceType::Cluster, crate::authz::CLUSTER_NAME)
    } else {
        0
    }
}

pub fn describe_cluster(
    broker: &Broker,
    az: &Authz,
    request: &DescribeClusterRequest,
) -> DescribeClusterResponse {
    DescribeClusterResponse {
        cluster_authorized_operations: if request.include_cluster_authorized_operations {
            cluster_operations(az)
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        },
        cluster_id: broker.cluster_id.clone(),
        controller_id: controller_id(broker),
        brokers: broker
            .live_brokers()
            .into_iter()
            .map(|b| DescribeClusterBroker {
                broker_id: b.id,
                host: b.host,
                port: b.port,
                rack: b.rack,
            })
            .collect(),
        ..DescribeClusterResponse::default()
    }
}

/// The metadata partition KRaft's quorum is, the only one Kafka's DescribeQuorum describes.
const CLUSTER_METADATA_TOPIC: &str = "__cluster_metadata";

/// DescribeQuorum (KIP-595). Weir has no KRaft quorum: its metadata lives in etcd in a cluster
/// and in the data directory on a single node. So that the tools and clients that ask see who
/// holds the metadata, the answer describes that authority as a quorum of one: the controller
/// (this node on a single node) is the leader and only voter, at epoch 0 (Weir has no controller
/// epochs), every other live broker an observer; the high watermark is the etcd revision of the
/// metadata this broker has applied (0 on a single node), the voter's log end offset the same,
/// and what is not known (observers' offsets, fetch times) is -1. Anything but partition 0 of
/// `__cluster_metadata` is UNKNOWN_TOPIC_OR_PARTITION, as Kafka answers.
pub fn describe_quorum(broker: &Broker, request: DescribeQuorumRequest) -> DescribeQuorumResponse {
    let is_quorum = |t: &DescribeQuorumTopic| {
        t.topic_name == CLUSTER_METADATA_TOPIC
            && t.partitions.len() == 1
            && t.partitions[0].partition_index == 0
    };
    if !(request.topics.len() == 1 && is_quorum(&request.topics[0])) {
        let topics = request
            .topics
            .into_iter()
            .map(|t| DescribeQuorumTopicResponse {
                topic_name: t.topic_name,
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| DescribeQuorumPartitionResponse {
                        partition_index: p.partition_index,
                        error_code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                        leader_id: -1,
                        leader_epoch: -1,
                        high_watermark: -1,
                        ..DescribeQuorumPartitionResponse::default()
                    })
                    .collect(),
            })
            .collect();
        return DescribeQuorumResponse {
            topics,
            ..DescribeQuorumResponse::default()
        };
    }
    let leader = controller_id(broker);
    let high_watermark = broker
        .cluster
        .as_ref()
        .map_or(0, |c| c.store.with_view(|v| v.revision).max(0));
    let replica = |replica_id: i32, log_end_offset: i64| QuorumReplicaState {
        replica_id,
        log_end_offset,
        last_fetch_timestamp: -1,
        last_caught_up_timestamp: -1,
    };
    let observers = broker
        .live_brokers()
        .into_iter()
        .filter(|b| b.id != leader)
        .map(|b| replica(b.id, -1))
        .collect();
    DescribeQuorumResponse {
        topics: vec![DescribeQuorumTopicResponse {
            topic_name: CLUSTER_METADATA_TOPIC.to_owned(),
            partitions: vec![DescribeQuorumPartitionResponse {
                partition_index: 0,
                leader_id: leader,
                leader_epoch: 0,
                high_watermark,
                current_voters: vec![replica(leader, high_watermark)],
                observers,
                ..DescribeQuorumPartitionResponse::default()
            }],
        }],
        ..DescribeQuorumResponse::default()
    }
}

/// FindCoordinator. With an authorizer, as Kafka: a group key needs DESCRIBE on the group, a
/// transactional id DESCRIBE on it, a share-partition key (v6+, the share coordinator other
/// brokers' persisters look for) CLUSTER_ACTION on the cluster.
pub async fn find_coordinator(
    broker: &Arc<Broker>,
    az: &Authz,
    version: i16,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    if request.key_type == KEY_TYPE_SHARE && version >= MIN_SHARE_KEY_VERSION {
        let coordinators = group_coordinators(broker).await;
        return FindCoordinatorResponse {
            coordinators: request
                .keys
                .into_iter()
                .map(|key| {
                    if !az.allows_cluster(AclOperation::ClusterAction) {
                        return no_coordinator(key, ErrorCode::CLUSTER_AUTHORIZATION_FAILED, None);
                    }
                    share_coordinator(broker, &coordinators, key)
                })
                .collect(),
            ..FindCoordinatorResponse::default()
        };
    }
    if ![KEY_TYPE_GROUP, KEY_TYPE_TRANSACTION].contains(&request.key_type) {
        // As Kafka: a type it does not know, or share keys below v6, is an invalid request.
        let message = format!("unknown coordinator key type {}", request.key_type);
        return FindCoordinatorResponse {
            coordinators: request
                .keys
                .into_iter()
                .map(|key| no_coordinator(key, ErrorCode::INVALID_REQUEST, Some(message.clone())))
                .collect(),
            ..FindCoordinatorResponse::default()
        };
    }
    let coordinators = group_coordinators(broker).await;
    if request.key_type == KEY_TYPE_TRANSACTION {
        // The first lookup of a transactional id creates the state topic, as in Kafka.
        crate::txn::TxnCoordinator::ensure_clustered(broker).await;
    }
    let coordinators = request
        .keys
        .into_iter()
        .map(|key| {
            let (resource, refusal) = if request.key_type == KEY_TYPE_TRANSACTION {
                (
                    ResourceType::TransactionalId,
                    ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                )
            } else {
                (ResourceType::Group, ErrorCode::GROUP_AUTHORIZATION_FAILED)
            };
            if !az.allows(AclOperation::Describe, resource, &key) {
                return no_coordinator(key, refusal, None);
            }
            if request.key_type == KEY_TYPE_TRANSACTION {
                let found = txn_coordinator(broker, &key);
                return coordinator_of(key, found, "the transaction state partition");
            }
            let found = group_coordinator(broker, &coordinators, &key);
            coordinator_of(key, found, "the offsets partition")
        })
        .collect();
    FindCoordinatorResponse {
        coordinators,
        ..FindCoordinatorResponse::default()
    }
}

/// The share coordinator of share-partition key `key` (`group:topicId:partition`): this
/// broker on a single node, else the leader of the share state partition the key hashes to.
fn share_coordinator(broker: &Broker, coordinators: &Coordinators, key: String) -> Coordinator {
    let Some(share_key) = crate::share::parse_coordinator_key(&key) else {
        let message =
            format!("invalid share-partition key {key:?}: expected group:topicId:partition");
        return no_coordinator(key, ErrorCode::INVALID_REQUEST, Some(message));
    };
    // The same key-to-partition mapping as this broker's own persister routes by.
    let found = match coordinators {
        Coordinators::ThisNode(b) => Some(b.clone()),
        _ => broker
            .share
            .state_partition_of(&share_key)
            .and_then(|index| internal_leader(broker, crate::share::SHARE_STATE_TOPIC, index)),
    };
    coordinator_of(key, found, "the share state partition")
}

/// The FindCoordinator answer for `key`: the broker `found`, or COORDINATOR_NOT_AVAILABLE while
/// `partition` (which holds the key's state) has no known leader.
fn coordinator_of(key: String, found: Option<BrokerRecord>, partition: &str) -> Coordinator {
    match found {
        Some(b) => Coordinator {
            key,
            node_id: b.id,
            host: b.host,
            port: b.port,
            error_code: ErrorCode::NONE,
            error_message: None,
        },
        None => no_coordinator(
            key,
            ErrorCode::COORDINATOR_NOT_AVAILABLE,
            Some(format!("{partition} has no leader yet")),
        ),
    }
}

/// A FindCoordinator answer for `key` without a coordinator.
fn no_coordinator(
    key: String,
    error_code: ErrorCode,
    error_message: Option<String>,
) -> Coordinator {
    Coordinator {
        key,
        node_id: -1,
        host: String::new(),
        port: -1,
        error_code,
        error_message,
    }
}

/// Where groups are coordinated: on a single node this broker (it leads every offsets
/// partition); in a cluster the offsets topic's partition count, from which each group's
/// coordinator is its partition's leader. The topic is created on first need, as Kafka creates
/// `__consumer_offsets`, with `offsets_topic_num_partitions` partitions.
enum Coordinators {
    ThisNode(BrokerRecord),
    Partitions(i32),
    /// The offsets topic does not exist yet.
    Unknown,
}

async fn group_coordinators(broker: &Arc<Broker>) -> Coordinators {
    if broker.cluster.is_none() {
        let (host, port) = broker.advertised();
        return Coordinators::ThisNode(BrokerRecord {
            id: broker.config.node_id,
            host,
            port,
            rack: None,
            endpoints: Vec::new(),
        });
    }
    // The share state topic is created alongside (the leader of each of its partitions holds
    // the state of the share-partitions whose keys hash to it).
    broker.ensure_internal_topic(OFFSETS_TOPIC).await;
    broker
        .ensure_internal_topic(crate::share::SHARE_STATE_TOPIC)
        .await;
    match broker.topics.get(OFFSETS_TOPIC) {
        Some(t) => Coordinators::Partitions(i32::try_from(t.partition_count()).unwrap_or(i32::MAX)),
        None => Coordinators::Unknown,
    }
}

/// The broker coordinating `group`: the leader of its offsets partition, as this broker's
/// replica or else the cluster metadata knows it.
fn group_coordinator(
    broker: &Broker,
    coordinators: &Coordinators,
    group: &str,
) -> Option<BrokerRecord> {
    let count = match coordinators {
        Coordinators::ThisNode(b) => return Some(b.clone()),
        Coordinators::Partitions(count) => *count,
        Coordinators::Unknown => return None,
    };
    let index = crate::internal_partitions::partition_for(group, count);
    internal_leader(broker, OFFSETS_TOPIC, index)
}

/// The broker coordinating `transactional_id`: this one on a single node (it leads every
/// partition of `__transaction_state`, created by the first transactional InitProducerId); in a
/// cluster the leader of its partition of that topic (`None` while the topic or the leader is
/// not known).
fn txn_coordinator(broker: &Broker, transactional_id: &str) -> Option<BrokerRecord> {
    if broker.cluster.is_none() {
        let (host, port) = broker.advertised();
        return Some(BrokerRecord {
            id: broker.config.node_id,
            host,
            port,
            rack: None,
            endpoints: Vec::new(),
        });
    }
    let index = crate::txn::TxnCoordinator::partition_of(&broker.topics, transactional_id)?;
    internal_leader(broker, crate::txn::TXN_TOPIC, index)
}

/// The leader of partition `index` of internal topic `topic`, as this broker's replica or else
/// the cluster metadata knows it.
fn internal_leader(broker: &Broker, topic: &str, index: i32) -> Option<BrokerRecord> {
    let leader = match broker
        .topics
        .partition(topic, index)
        .and_then(|p| p.leader())
    {
        Some(l) => l,
        None => broker.cluster_leader(topic, index)?.leader,
    };
    broker.broker_record(leader)
}
