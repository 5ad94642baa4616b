//! Weir-owned request types, one per served API, independent of the wire version.
//!
//! Each struct carries the union of the fields of every version we serve. Fields a given
//! version does not send hold the value Kafka defines as that version's implicit default
//! (documented per field), so the broker never has to look at `api_version` to interpret
//! a request. Where versions change *meaning* rather than just add fields (Metadata's
//! "all topics", OffsetFetch's single vs. batched groups, FindCoordinator's single vs.
//! batched keys, LeaveGroup's single member vs. member list, DeleteTopics' names vs.
//! name-or-id), the decoder normalises to the newest shape.

use bytes::Bytes;
use kafka_protocol::messages as m;

use crate::mirror::{kp_default, mirror, Mirror, Sample, WeirTag};

/// A 16-byte Kafka UUID (topic id). All zeroes is Kafka's "no id".
pub type Uuid = [u8; 16];

/// The request header (v1 or v2: tagged fields are read and dropped).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestHeader {
    /// The API key (see [`crate::api_key`]).
    pub api_key: i16,
    /// The API version the client used; responses are encoded at the same version.
    pub api_version: i16,
    /// Echoed back in the response header.
    pub correlation_id: i32,
    /// The client id; `None` when the client sent a null string.
    pub client_id: Option<String>,
}

pub use crate::apis::Request;

// ---------------------------------------------------------------------------------------
// ApiVersions / Metadata
// ---------------------------------------------------------------------------------------

/// ApiVersions request (v0-4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiVersionsRequest {
    /// Client library name (v3+; empty before).
    pub client_software_name: String,
    /// Client library version (v3+; empty before).
    pub client_software_version: String,
}

/// Metadata request (v0-12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataRequest {
    /// `None` = all topics. (v0 encodes "all" as an empty list; v1+ as null. The decoder
    /// maps both to `None`; `Some(vec![])` therefore always means "no topics".)
    pub topics: Option<Vec<MetadataRequestTopic>>,
    /// Whether missing topics may be auto-created (v4+; `true` before, as Kafka defines).
    pub allow_auto_topic_creation: bool,
    /// v8-10.
    pub include_cluster_authorized_operations: bool,
    /// v8+.
    pub include_topic_authorized_operations: bool,
}

impl Default for MetadataRequest {
    fn default() -> Self {
        MetadataRequest {
            topics: None,
            allow_auto_topic_creation: true,
            include_cluster_authorized_operations: false,
            include_topic_authorized_operations: false,
        }
    }
}

/// A topic asked for in a Metadata request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataRequestTopic {
    /// Topic name; `None` when the client asks by id (v10+ may send a null name).
    pub name: Option<String>,
    /// Topic id (v10+; zero before or when asking by name).
    pub topic_id: Uuid,
}

// ---------------------------------------------------------------------------------------
// Produce / Fetch / ListOffsets
// ---------------------------------------------------------------------------------------

/// Produce request (v0-13).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProduceRequest {
    /// Transactional id (v3+; `None` before).
    pub transactional_id: Option<String>,
    /// 0 = no response is expected, 1 = leader, -1 = all in-sync replicas.
    pub acks: i16,
    /// How long the broker may wait for acks.
    pub timeout_ms: i32,
    /// Per-topic data.
    pub topics: Vec<ProduceTopic>,
    /// Whether the records may be magic-0/1 message sets (Produce v0-2). Kafka refuses anything but
    /// magic-2 batches in v3+ requests (INVALID_RECORD), and so does Weir.
    pub legacy_formats_allowed: bool,
    /// Whether a transactional batch adds its partition to the producer's transaction by itself
    /// (Produce v12+, transaction protocol 2 of KIP-890). Before v12 the client adds partitions
    /// with AddPartitionsToTxn and the broker only verifies them.
    pub adds_partitions_to_txn: bool,
    /// Whether topics are named by id (v13+, KIP-516): their `name` is empty as decoded and an id
    /// the broker does not know is UNKNOWN_TOPIC_ID.
    pub uses_topic_ids: bool,
}

/// One topic of a Produce request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProduceTopic {
    /// Topic name (before v13; the broker fills it in from `topic_id` after).
    pub name: String,
    /// Topic id (v13+; zero before).
    pub topic_id: Uuid,
    /// Per-partition data.
    pub partitions: Vec<ProducePartition>,
}

/// One partition of a Produce request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProducePartition {
    /// Partition index.
    pub index: i32,
    /// The record batches exactly as the client sent them (not decoded, not decompressed;
    /// the broker validates magic, CRC and counts itself). `None` for a null field.
    pub records: Option<Bytes>,
}

/// Fetch request (v0-17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// Cluster id the client believes it talks to (v12+; `None` before).
    pub cluster_id: Option<String>,
    /// -1 for consumers; a broker id for followers.
    pub replica_id: i32,
    /// Maximum time to wait for `min_bytes`.
    pub max_wait_ms: i32,
    /// Minimum bytes to accumulate before answering.
    pub min_bytes: i32,
    /// Maximum bytes in the whole response (soft limit: the first batch is always sent).
    pub max_bytes: i32,
    /// 0 = READ_UNCOMMITTED, 1 = READ_COMMITTED.
    pub isolation_level: i8,
    /// Fetch session id (v7+; 0 = no session before).
    pub session_id: i32,
    /// Fetch session epoch (v7+; -1 = sessionless before).
    pub session_epoch: i32,
    /// Topics to fetch.
    pub topics: Vec<FetchTopic>,
    /// Partitions to remove from an incremental session (v7+; empty before).
    pub forgotten_topics: Vec<ForgottenTopic>,
    /// Rack of the consumer (v11+; empty before).
    pub rack_id: String,
    /// The newest record format the fetcher reads: 2 (v4+), 1 (v2-3) or 0 (v0-1). Stored batches
    /// are down-converted for older fetchers, as Kafka did before 4.0.
    pub record_magic: i8,
    /// Whether topics are named by id (v13+, KIP-516): their `name` is empty as decoded, an id
    /// the broker does not know is UNKNOWN_TOPIC_ID, and a fetch session is either by id or by
    /// name throughout (FETCH_SESSION_TOPIC_ID_ERROR otherwise).
    pub uses_topic_ids: bool,
}

impl Default for FetchRequest {
    fn default() -> Self {
        FetchRequest {
            cluster_id: None,
            replica_id: -1,
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: i32::MAX,
            isolation_level: 0,
            session_id: 0,
            session_epoch: -1,
            topics: Vec::new(),
            forgotten_topics: Vec::new(),
            rack_id: String::new(),
            record_magic: 2,
            uses_topic_ids: false,
        }
    }
}

/// One topic of a Fetch request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchTopic {
    /// Topic name (before v13; the broker fills it in from `topic_id` after).
    pub name: String,
    /// Topic id (v13+; zero before).
    pub topic_id: Uuid,
    /// Partitions to fetch.
    pub partitions: Vec<FetchPartition>,
}

/// One partition of a Fetch request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPartition {
    /// Partition index.
    pub partition: i32,
    /// Leader epoch the client knows (v9+; -1 = unknown).
    pub current_leader_epoch: i32,
    /// Offset to fetch from.
    pub fetch_offset: i64,
    /// Epoch of the last fetched record (v12+; -1 = unknown). Followers only.
    pub last_fetched_epoch: i32,
    /// Follower's log start offset (v5+; -1 for consumers).
    pub log_start_offset: i64,
    /// Maximum bytes for this partition.
    pub partition_max_bytes: i32,
}

impl Default for FetchPartition {
    fn default() -> Self {
        FetchPartition {
            partition: 0,
            current_leader_epoch: -1,
            fetch_offset: 0,
            last_fetched_epoch: -1,
            log_start_offset: -1,
            partition_max_bytes: 0,
        }
    }
}

/// Partitions to drop from an incremental fetch session.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ForgottenTopic {
    /// Topic name (before v13).
    pub name: String,
    /// Topic id (v13+; zero before).
    pub topic_id: Uuid,
    /// Partition indexes.
    pub partitions: Vec<i32>,
}

/// ListOffsets request (v1-7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsRequest {
    /// -1 for consumers.
    pub replica_id: i32,
    /// 0 = READ_UNCOMMITTED, 1 = READ_COMMITTED (v2+; 0 before).
    pub isolation_level: i8,
    /// Topics to look up.
    pub topics: Vec<ListOffsetsTopic>,
}

impl Default for ListOffsetsRequest {
    fn default() -> Self {
        ListOffsetsRequest {
            replica_id: -1,
            isolation_level: 0,
            topics: Vec::new(),
        }
    }
}

/// One topic of a ListOffsets request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListOffsetsTopic {
    /// Topic name.
    pub name: String,
    /// Partitions to look up.
    pub partitions: Vec<ListOffsetsPartition>,
}

/// One partition of a ListOffsets request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsPartition {
    /// Partition index.
    pub partition_index: i32,
    /// Leader epoch the client knows (v4+; -1 = unknown).
    pub current_leader_epoch: i32,
    /// -1 = latest, -2 = earliest, -3 = max timestamp (v7+), otherwise a timestamp in ms.
    pub timestamp: i64,
}

impl Default for ListOffsetsPartition {
    fn default() -> Self {
        ListOffsetsPartition {
            partition_index: 0,
            current_leader_epoch: -1,
            timestamp: -1,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Consumer groups
// ---------------------------------------------------------------------------------------

/// OffsetCommit request (v2-9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitRequest {
    /// Group id.
    pub group_id: String,
    /// Generation id (classic groups) or member epoch (v9+ consumer groups); -1 = simple
    /// (standalone) commit.
    pub generation_id: i32,
    /// Member id; empty for standalone commits.
    pub member_id: String,
    /// Static membership instance id (v7+; `None` before).
    pub group_instance_id: Option<String>,
    /// Retention time (v2-4; -1 = broker default, and always -1 from v5).
    pub retention_time_ms: i64,
    /// Offsets to commit.
    pub topics: Vec<OffsetCommitTopic>,
}

impl Default for OffsetCommitRequest {
    fn default() -> Self {
        OffsetCommitRequest {
            group_id: String::new(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
            retention_time_ms: -1,
            topics: Vec::new(),
        }
    }
}

/// One topic of an OffsetCommit request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetCommitTopic {
    /// Topic name.
    pub name: String,
    /// Partitions to commit.
    pub partitions: Vec<OffsetCommitPartition>,
}

/// One partition of an OffsetCommit request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitPartition {
    /// Partition index.
    pub partition_index: i32,
    /// The offset to commit.
    pub committed_offset: i64,
    /// Leader epoch of the last consumed record (v6+; -1 = unknown).
    pub committed_leader_epoch: i32,
    /// Client metadata string.
    pub committed_metadata: Option<String>,
}

impl Default for OffsetCommitPartition {
    fn default() -> Self {
        OffsetCommitPartition {
            partition_index: 0,
            committed_offset: 0,
            committed_leader_epoch: -1,
            committed_metadata: None,
        }
    }
}

/// OffsetFetch request (v1-9), always in the v8+ multi-group shape.
///
/// v1-7 requests decode to exactly one group; a response to them must then carry exactly
/// one group too.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetFetchRequest {
    /// Groups to fetch offsets for.
    pub groups: Vec<OffsetFetchGroup>,
    /// Wait for pending transactional offsets (v7+; `false` before).
    pub require_stable: bool,
}

/// One group of an OffsetFetch request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchGroup {
    /// Group id.
    pub group_id: String,
    /// Member id (v9+, consumer-group protocol; `None` otherwise).
    pub member_id: Option<String>,
    /// Member epoch (v9+; -1 otherwise).
    pub member_epoch: i32,
    /// `None` = all committed partitions of the group (v2+ may send null).
    pub topics: Option<Vec<OffsetFetchTopic>>,
}

impl Default for OffsetFetchGroup {
    fn default() -> Self {
        OffsetFetchGroup {
            group_id: String::new(),
            member_id: None,
            member_epoch: -1,
            topics: None,
        }
    }
}

/// One topic of an OffsetFetch request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetFetchTopic {
    /// Topic name.
    pub name: String,
    /// Partitions asked for.
    pub partition_indexes: Vec<i32>,
}

/// FindCoordinator request (v0-6), always in the v4+ batched shape.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FindCoordinatorRequest {
    /// 0 = group, 1 = transaction (v1+; 0 before), 2 = share (v6+: a share-partition key
    /// `group:topicId:partition`, KIP-932).
    pub key_type: i8,
    /// Keys to look up. v0-3 send exactly one key; the response must then carry exactly
    /// one coordinator.
    pub keys: Vec<String>,
}

/// JoinGroup request (v2-9).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JoinGroupRequest {
    /// Group id.
    pub group_id: String,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// Member id; empty when joining for the first time.
    pub member_id: String,
    /// Static membership instance id (v5+).
    pub group_instance_id: Option<String>,
    /// Protocol type, e.g. "consumer".
    pub protocol_type: String,
    /// Supported assignment protocols, in order of preference.
    pub protocols: Vec<JoinGroupProtocol>,
    /// Why the member (re)joins (v8+).
    pub reason: Option<String>,
}

/// One protocol offered in a JoinGroup request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JoinGroupProtocol {
    /// Protocol name, e.g. "range".
    pub name: String,
    /// Opaque protocol metadata (subscription).
    pub metadata: Bytes,
}

/// SyncGroup request (v0-5).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncGroupRequest {
    /// Group id.
    pub group_id: String,
    /// Generation id.
    pub generation_id: i32,
    /// Member id.
    pub member_id: String,
    /// Static membership instance id (v3+).
    pub group_instance_id: Option<String>,
    /// Protocol type (v5+).
    pub protocol_type: Option<String>,
    /// Protocol name (v5+).
    pub protocol_name: Option<String>,
    /// Assignments; only the leader sends them.
    pub assignments: Vec<SyncGroupAssignment>,
}

/// One member's assignment in a SyncGroup request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncGroupAssignment {
    /// Member id.
    pub member_id: String,
    /// Opaque assignment.
    pub assignment: Bytes,
}

mirror! {
    /// Heartbeat request (v0-4).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct HeartbeatRequest => m::HeartbeatRequest {
        /// Group id.
        pub group_id: String,
        /// Generation id.
        pub generation_id: i32,
        /// Member id.
        pub member_id: String,
        /// Static membership instance id (v3+).
        pub group_instance_id: Option<String>,
    }
}

/// LeaveGroup request (v0-5), always in the v3+ member-list shape.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaveGroupRequest {
    /// Group id.
    pub group_id: String,
    /// Leaving members. v0-2 carry exactly one member (the request's `member_id`).
    pub members: Vec<LeaveGroupMember>,
}

/// One leaving member.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaveGroupMember {
    /// Member id.
    pub member_id: String,
    /// Static membership instance id (v3+).
    pub group_instance_id: Option<String>,
    /// Why the member leaves (v5+).
    pub reason: Option<String>,
}

mirror! {
    /// ListGroups request (v0-5).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ListGroupsRequest => m::ListGroupsRequest {
        /// Only list groups in these states, compared case-insensitively (v4+; empty = all).
        pub states_filter: Vec<String>,
        /// Only list groups of these types: "classic", "consumer" (v5+; empty = all).
        pub types_filter: Vec<String>,
    }
}

mirror! {
    /// DescribeGroups request (v0-6).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeGroupsRequest => m::DescribeGroupsRequest {
        /// Group ids.
        pub groups: Vec<String>,
        /// v3+.
        pub include_authorized_operations: bool,
    }
}

mirror! {
    /// DeleteGroups request (v0-2).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DeleteGroupsRequest => m::DeleteGroupsRequest {
        /// Group ids.
        pub groups: Vec<String> as groups_names,
    }
}

mirror! {
    /// OffsetDelete request (v0).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct OffsetDeleteRequest => m::OffsetDeleteRequest {
        /// Group id.
        pub group_id: String,
        /// Topics whose committed offsets are deleted.
        pub topics: Vec<OffsetDeleteTopic>,
    }
}

mirror! {
    /// One topic of an OffsetDelete request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct OffsetDeleteTopic => m::offset_delete_request::OffsetDeleteRequestTopic {
        /// Topic name.
        pub name: String,
        /// Partition indexes.
        pub partitions: Vec<i32>,
    }
}

impl Mirror<m::offset_delete_request::OffsetDeleteRequestPartition> for i32 {
    fn to_kp(&self) -> m::offset_delete_request::OffsetDeleteRequestPartition {
        m::offset_delete_request::OffsetDeleteRequestPartition::default()
            .with_partition_index(*self)
    }
    fn from_kp(k: m::offset_delete_request::OffsetDeleteRequestPartition) -> Self {
        k.partition_index
    }
}

// ---------------------------------------------------------------------------------------
// The consumer group protocol (KIP-848)
// ---------------------------------------------------------------------------------------

mirror! {
    /// ConsumerGroupHeartbeat request (v0-1, KIP-848). Fields a member leaves unchanged since
    /// its last heartbeat are null (`None`, or -1 for `rebalance_timeout_ms`).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ConsumerGroupHeartbeatRequest => m::ConsumerGroupHeartbeatRequest {
        /// Group id.
        pub group_id: String,
        /// Member id: generated by the client from v1; empty at v0 when joining.
        pub member_id: String,
        /// 0 = join, -1 = leave, -2 = static member leaves temporarily, else the current epoch.
        pub member_epoch: i32,
        /// Static membership instance id.
        pub instance_id: Option<String>,
        /// Rack id.
        pub rack_id: Option<String>,
        /// -1 = unchanged.
        pub rebalance_timeout_ms: i32,
        /// `None` = unchanged.
        pub subscribed_topic_names: Option<Vec<String>>,
        /// RE2/J regular expression subscription (v1+); `None` = unchanged.
        pub subscribed_topic_regex: Option<String>,
        /// Server-side assignor; `None` = unchanged.
        pub server_assignor: Option<String>,
        /// Partitions the member owns; `None` = unchanged.
        pub topic_partitions: Option<Vec<ConsumerGroupTopicPartitions>>,
    }
}
kp_default!(ConsumerGroupHeartbeatRequest => m::ConsumerGroupHeartbeatRequest);

mirror! {
    /// Partitions of one topic, by topic id (ConsumerGroupHeartbeat request and response).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ConsumerGroupTopicPartitions =>
        m::consumer_group_heartbeat_request::TopicPartitions,
        m::consumer_group_heartbeat_response::TopicPartitions
    {
        /// Topic id.
        pub topic_id: Uuid,
        /// Partition indexes.
        pub partitions: Vec<i32>,
    }
}

mirror! {
    /// ConsumerGroupDescribe request (v0-1, KIP-848).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ConsumerGroupDescribeRequest => m::ConsumerGroupDescribeRequest {
        /// Group ids.
        pub group_ids: Vec<String>,
        /// Whether to include authorized operations.
        pub include_authorized_operations: bool,
    }
}

// ---------------------------------------------------------------------------------------
// Producer ids, admin
// ---------------------------------------------------------------------------------------

/// InitProducerId request (v0-5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitProducerIdRequest {
    /// `None` for idempotent-only producers.
    pub transactional_id: Option<String>,
    /// Transaction timeout.
    pub transaction_timeout_ms: i32,
    /// Current producer id when bumping the epoch (v3+; -1 otherwise).
    pub producer_id: i64,
    /// Current epoch (v3+; -1 otherwise).
    pub producer_epoch: i16,
}

impl Default for InitProducerIdRequest {
    fn default() -> Self {
        InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: 0,
            producer_id: -1,
            producer_epoch: -1,
        }
    }
}

/// CreateTopics request (v2-7).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateTopicsRequest {
    /// Topics to create.
    pub topics: Vec<CreatableTopic>,
    /// How long to wait for creation.
    pub timeout_ms: i32,
    /// Validate only; create nothing.
    pub validate_only: bool,
}

/// One topic to create.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreatableTopic {
    /// Topic name.
    pub name: String,
    /// Partition count; -1 = broker default (v4+).
    pub num_partitions: i32,
    /// Replication factor; -1 = broker default (v4+).
    pub replication_factor: i16,
    /// Manual replica assignment (empty when using counts).
    pub assignments: Vec<CreatableReplicaAssignment>,
    /// Topic configs.
    pub configs: Vec<ConfigEntry>,
}

/// Manual assignment of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreatableReplicaAssignment {
    /// Partition index.
    pub partition_index: i32,
    /// Replica broker ids.
    pub broker_ids: Vec<i32>,
}

/// A config name and value (CreateTopics, AlterConfigs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigEntry {
    /// Config name.
    pub name: String,
    /// Config value; `None` = null.
    pub value: Option<String>,
}

/// DeleteTopics request (v1-6), always in the v6 name-or-id shape.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteTopicsRequest {
    /// Topics to delete. v1-5 give names only (`topic_id` zero).
    pub topics: Vec<DeleteTopicsTopic>,
    /// How long to wait for deletion.
    pub timeout_ms: i32,
}

/// One topic to delete.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteTopicsTopic {
    /// Topic name; `None` when deleting by id (v6+).
    pub name: Option<String>,
    /// Topic id; zero when deleting by name.
    pub topic_id: Uuid,
}

/// CreatePartitions request (v0-3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreatePartitionsRequest {
    /// Topics to grow.
    pub topics: Vec<CreatePartitionsTopic>,
    /// How long to wait.
    pub timeout_ms: i32,
    /// Validate only.
    pub validate_only: bool,
}

/// One topic to grow.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreatePartitionsTopic {
    /// Topic name.
    pub name: String,
    /// New total partition count.
    pub count: i32,
    /// Replica broker ids of each new partition; `None` = broker chooses.
    pub assignments: Option<Vec<Vec<i32>>>,
}

/// DescribeConfigs request (v1-4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribeConfigsRequest {
    /// Resources to describe.
    pub resources: Vec<DescribeConfigsResource>,
    /// Include synonyms.
    pub include_synonyms: bool,
    /// Include documentation (v3+).
    pub include_documentation: bool,
}

/// One resource to describe.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribeConfigsResource {
    /// 2 = topic, 4 = broker, 8 = broker logger.
    pub resource_type: i8,
    /// Resource name (topic name, or broker id as a string).
    pub resource_name: String,
    /// `None` = all keys.
    pub configuration_keys: Option<Vec<String>>,
}

/// AlterConfigs request (v0-2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlterConfigsRequest {
    /// Resources to alter (each replaces the full config set).
    pub resources: Vec<AlterConfigsResource>,
    /// Validate only.
    pub validate_only: bool,
}

/// One resource of an AlterConfigs request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlterConfigsResource {
    /// Resource type (see [`DescribeConfigsResource::resource_type`]).
    pub resource_type: i8,
    /// Resource name.
    pub resource_name: String,
    /// New configs.
    pub configs: Vec<ConfigEntry>,
}

/// IncrementalAlterConfigs request (v0-1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IncrementalAlterConfigsRequest {
    /// Resources to alter.
    pub resources: Vec<IncrementalAlterConfigsResource>,
    /// Validate only.
    pub validate_only: bool,
}

/// One resource of an IncrementalAlterConfigs request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IncrementalAlterConfigsResource {
    /// Resource type.
    pub resource_type: i8,
    /// Resource name.
    pub resource_name: String,
    /// Operations.
    pub configs: Vec<IncrementalAlterableConfig>,
}

/// One config operation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IncrementalAlterableConfig {
    /// Config name.
    pub name: String,
    /// 0 = SET, 1 = DELETE, 2 = APPEND, 3 = SUBTRACT.
    pub config_operation: i8,
    /// Value (ignored for DELETE).
    pub value: Option<String>,
}

mirror! {
    /// DeleteRecords request (v0-2).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DeleteRecordsRequest => m::DeleteRecordsRequest {
        /// Topics.
        pub topics: Vec<DeleteRecordsTopic>,
        /// How long to wait.
        pub timeout_ms: i32,
    }
}

mirror! {
    /// One topic of a DeleteRecords request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DeleteRecordsTopic => m::delete_records_request::DeleteRecordsTopic {
        /// Topic name.
        pub name: String,
        /// Partitions.
        pub partitions: Vec<DeleteRecordsPartition>,
    }
}

mirror! {
    /// One partition of a DeleteRecords request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DeleteRecordsPartition => m::delete_records_request::DeleteRecordsPartition {
        /// Partition index.
        pub partition_index: i32,
        /// Delete everything before this offset; -1 = high watermark.
        pub offset: i64,
    }
}

mirror! {
    /// DescribeCluster request (v0-1).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeClusterRequest => m::DescribeClusterRequest {
        /// Include cluster authorized operations.
        pub include_cluster_authorized_operations: bool,
        /// 1 = brokers, 2 = controllers (v1+; 1 before).
        pub endpoint_type: i8,
    }
}

impl Default for DescribeClusterRequest {
    fn default() -> Self {
        DescribeClusterRequest {
            include_cluster_authorized_operations: false,
            endpoint_type: 1,
        }
    }
}

mirror! {
    /// OffsetForLeaderEpoch request (v2-4).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OffsetForLeaderEpochRequest => m::OffsetForLeaderEpochRequest {
        /// -1 for consumers (v3+; -2 = "debug" before, as Kafka defines).
        pub replica_id: i32,
        /// Topics.
        pub topics: Vec<OffsetForLeaderTopic>,
    }
}

impl Default for OffsetForLeaderEpochRequest {
    fn default() -> Self {
        OffsetForLeaderEpochRequest {
            replica_id: -1,
            topics: Vec::new(),
        }
    }
}

mirror! {
    /// One topic of an OffsetForLeaderEpoch request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct OffsetForLeaderTopic => m::offset_for_leader_epoch_request::OffsetForLeaderTopic {
        /// Topic name.
        pub topic: String,
        /// Partitions.
        pub partitions: Vec<OffsetForLeaderPartition>,
    }
}

mirror! {
    /// One partition of an OffsetForLeaderEpoch request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct OffsetForLeaderPartition => m::offset_for_leader_epoch_request::OffsetForLeaderPartition {
        /// Partition index.
        pub partition: i32,
        /// Leader epoch the client knows (-1 = unknown).
        pub current_leader_epoch: i32,
        /// The epoch whose end offset is asked for.
        pub leader_epoch: i32,
    }
}

// ---------------------------------------------------------------------------------------
// Cluster admin: leader election, partition reassignment
// ---------------------------------------------------------------------------------------

mirror! {
    /// ElectLeaders request (v0-2).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ElectLeadersRequest => m::ElectLeadersRequest {
        /// 0 = preferred replica, 1 = unclean (first live replica when none is in sync) (v1+;
        /// 0 before).
        pub election_type: i8,
        /// The partitions to elect leaders for; `None` = every partition.
        pub topic_partitions: Option<Vec<ElectLeadersTopic>>,
        /// How long to wait for the elections.
        pub timeout_ms: i32,
    }
}

impl Default for ElectLeadersRequest {
    fn default() -> Self {
        ElectLeadersRequest {
            election_type: 0,
            topic_partitions: Some(Vec::new()),
            timeout_ms: 60_000,
        }
    }
}

mirror! {
    /// One topic of an ElectLeaders request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ElectLeadersTopic => m::elect_leaders_request::TopicPartitions {
        /// Topic name.
        pub topic: String,
        /// Partition indexes.
        pub partitions: Vec<i32>,
    }
}

mirror! {
    /// AlterPartitionReassignments request (v0-1).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AlterPartitionReassignmentsRequest => m::AlterPartitionReassignmentsRequest {
        /// How long to wait.
        pub timeout_ms: i32,
        /// Whether a reassignment may change a partition's replication factor (v1+; `true`
        /// before, as Kafka defines).
        pub allow_replication_factor_change: bool,
        /// Topics to reassign.
        pub topics: Vec<ReassignableTopic>,
    }
}

impl Default for AlterPartitionReassignmentsRequest {
    fn default() -> Self {
        AlterPartitionReassignmentsRequest {
            timeout_ms: 60_000,
            allow_replication_factor_change: true,
            topics: Vec::new(),
        }
    }
}

mirror! {
    /// One topic of an AlterPartitionReassignments request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ReassignableTopic => m::alter_partition_reassignments_request::ReassignableTopic {
        /// Topic name.
        pub name: String,
        /// Partitions to reassign.
        pub partitions: Vec<ReassignablePartition>,
    }
}

mirror! {
    /// One partition of an AlterPartitionReassignments request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ReassignablePartition => m::alter_partition_reassignments_request::ReassignablePartition {
        /// Partition index.
        pub partition_index: i32,
        /// The target replica broker ids; `None` cancels a pending reassignment.
        pub replicas: Option<Vec<i32>>,
    }
}

mirror! {
    /// ListPartitionReassignments request (v0).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ListPartitionReassignmentsRequest => m::ListPartitionReassignmentsRequest {
        /// How long to wait.
        pub timeout_ms: i32,
        /// Topics to list; `None` = every ongoing reassignment.
        pub topics: Option<Vec<ListPartitionReassignmentsTopic>>,
    }
}

impl Default for ListPartitionReassignmentsRequest {
    fn default() -> Self {
        ListPartitionReassignmentsRequest {
            timeout_ms: 60_000,
            topics: None,
        }
    }
}

mirror! {
    /// One topic of a ListPartitionReassignments request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ListPartitionReassignmentsTopic => m::list_partition_reassignments_request::ListPartitionReassignmentsTopics {
        /// Topic name.
        pub name: String,
        /// Partition indexes.
        pub partition_indexes: Vec<i32>,
    }
}

// ---------------------------------------------------------------------------------------
// Inter-broker Raft (KIP-595, KIP-996 pre-vote); the directory ids of KIP-853 are not carried
// ---------------------------------------------------------------------------------------

mirror! {
    /// Vote request (v0-2): a replica asks a voter for its vote (or, with
    /// [`VotePartition::pre_vote`], whether it would grant one).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct VoteRequest => m::VoteRequest {
        /// Cluster id of the sender (`None` = not checked).
        pub cluster_id: Option<String>,
        /// Replica id of the voter receiving the request (v1+; -1 before).
        pub voter_id: i32,
        /// Topics.
        pub topics: Vec<VoteTopic>,
    }
}

impl Default for VoteRequest {
    fn default() -> Self {
        VoteRequest {
            cluster_id: None,
            voter_id: -1,
            topics: Vec::new(),
        }
    }
}

mirror! {
    /// One topic of a Vote request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct VoteTopic => m::vote_request::TopicData {
        /// Topic name.
        pub topic_name: String,
        /// Partitions.
        pub partitions: Vec<VotePartition>,
    }
}

mirror! {
    /// One partition of a Vote request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct VotePartition => m::vote_request::PartitionData {
        /// Partition index.
        pub partition_index: i32,
        /// The sender's epoch: a candidate's bumped epoch; for a pre-vote, the epoch of the
        /// prospective candidate (Kafka's `ReplicaEpoch`, `CandidateEpoch` before v2).
        pub replica_epoch: i32,
        /// The sender's replica id (Kafka's `ReplicaId`, `CandidateId` before v2).
        pub replica_id: i32,
        /// Epoch of the sender's last batch.
        pub last_offset_epoch: i32,
        /// The sender's log end offset.
        pub last_offset: i64,
        /// A pre-vote (KIP-996): would the voter grant the vote? Nothing is persisted (v2+;
        /// `false` before).
        pub pre_vote: bool,
    }
}

mirror! {
    /// BeginQuorumEpoch request (v0-1): a new leader tells the voters of its epoch.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct BeginQuorumEpochRequest => m::BeginQuorumEpochRequest {
        /// Cluster id of the sender (`None` = not checked).
        pub cluster_id: Option<String>,
        /// Replica id of the voter receiving the request (v1+; -1 before).
        pub voter_id: i32,
        /// Topics.
        pub topics: Vec<BeginQuorumEpochTopic>,
        /// The leader's endpoints (v1+; empty before).
        pub leader_endpoints: Vec<LeaderEndpoint>,
    }
}

impl Default for BeginQuorumEpochRequest {
    fn default() -> Self {
        BeginQuorumEpochRequest {
            cluster_id: None,
            voter_id: -1,
            topics: Vec::new(),
            leader_endpoints: Vec::new(),
        }
    }
}

mirror! {
    /// One topic of a BeginQuorumEpoch request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct BeginQuorumEpochTopic => m::begin_quorum_epoch_request::TopicData {
        /// Topic name.
        pub topic_name: String,
        /// Partitions.
        pub partitions: Vec<BeginQuorumEpochPartition>,
    }
}

mirror! {
    /// One partition of a BeginQuorumEpoch request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct BeginQuorumEpochPartition => m::begin_quorum_epoch_request::PartitionData {
        /// Partition index.
        pub partition_index: i32,
        /// Replica id of the new leader.
        pub leader_id: i32,
        /// Its epoch.
        pub leader_epoch: i32,
    }
}

mirror! {
    /// A listener of the sending leader (BeginQuorumEpoch and EndQuorumEpoch v1+).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct LeaderEndpoint =>
        m::begin_quorum_epoch_request::LeaderEndpoint,
        m::end_quorum_epoch_request::LeaderEndpoint
    {
        /// Listener name.
        pub name: String,
        /// Host.
        pub host: String,
        /// Port.
        pub port: u16,
    }
}

mirror! {
    /// EndQuorumEpoch request (v0-1): a resigning leader tells the voters, with the order in
    /// which they should stand.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct EndQuorumEpochRequest => m::EndQuorumEpochRequest {
        /// Cluster id of the sender (`None` = not checked).
        pub cluster_id: Option<String>,
        /// Topics.
        pub topics: Vec<EndQuorumEpochTopic>,
        /// The leader's endpoints (v1+; empty before).
        pub leader_endpoints: Vec<LeaderEndpoint>,
    }
}

mirror! {
    /// One topic of an EndQuorumEpoch request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct EndQuorumEpochTopic => m::end_quorum_epoch_request::TopicData {
        /// Topic name.
        pub topic_name: String,
        /// Partitions.
        pub partitions: Vec<EndQuorumEpochPartition>,
    }
}

/// One partition of an EndQuorumEpoch request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EndQuorumEpochPartition {
    /// Partition index.
    pub partition_index: i32,
    /// Replica id of the resigning leader.
    pub leader_id: i32,
    /// Its epoch.
    pub leader_epoch: i32,
    /// Replica ids in the order they should stand for election, the first at once. Kafka's
    /// `PreferredSuccessors` in v0 and the ids of `PreferredCandidates` in v1 (whose directory
    /// ids are written as zero).
    pub preferred_successors: Vec<i32>,
}

// The field changed shape between versions (a list of ids in v0, of structs in v1); the
// vendored encoder writes each only at its own version, so both are set and the one present
// is read.
/// A request part: no error codes.
impl crate::mirror::ErrorCodes for EndQuorumEpochPartition {}

impl Mirror<m::end_quorum_epoch_request::PartitionData> for EndQuorumEpochPartition {
    fn to_kp(&self) -> m::end_quorum_epoch_request::PartitionData {
        let mut k = m::end_quorum_epoch_request::PartitionData::default();
        k.partition_index = self.partition_index;
        k.leader_id = m::BrokerId(self.leader_id);
        k.leader_epoch = self.leader_epoch;
        k.preferred_successors = self.preferred_successors.clone();
        k.preferred_candidates = self
            .preferred_successors
            .iter()
            .map(|&id| {
                m::end_quorum_epoch_request::ReplicaInfo::default()
                    .with_candidate_id(m::BrokerId(id))
            })
            .collect();
        k
    }
    fn from_kp(k: m::end_quorum_epoch_request::PartitionData) -> Self {
        let preferred_successors = if k.preferred_candidates.is_empty() {
            k.preferred_successors
        } else {
            k.preferred_candidates
                .iter()
                .map(|c| c.candidate_id.0)
                .collect()
        };
        EndQuorumEpochPartition {
            partition_index: k.partition_index,
            leader_id: k.leader_id.0,
            leader_epoch: k.leader_epoch,
            preferred_successors,
        }
    }
}

impl Sample for EndQuorumEpochPartition {
    fn sample() -> Self {
        EndQuorumEpochPartition {
            partition_index: 1,
            leader_id: 1,
            leader_epoch: 1,
            // Two different ids, so a mapping that loses the order shows.
            preferred_successors: vec![2, 3],
        }
    }
}

// ---------------------------------------------------------------------------------------
// Share groups (KIP-932)
// ---------------------------------------------------------------------------------------

mirror! {
    /// ShareGroupHeartbeat request (v1, Kafka 4.1). Fields unchanged since the member's last
    /// heartbeat are null.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareGroupHeartbeatRequest => m::ShareGroupHeartbeatRequest {
        /// Group id.
        pub group_id: String,
        /// Member id, generated by the client.
        pub member_id: String,
        /// 0 = join, -1 = leave, else the current epoch.
        pub member_epoch: i32,
        /// Rack id.
        pub rack_id: Option<String>,
        /// `None` = unchanged.
        pub subscribed_topic_names: Option<Vec<String>>,
    }
}

mirror! {
    /// ShareGroupDescribe request (v1).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareGroupDescribeRequest => m::ShareGroupDescribeRequest {
        /// Group ids.
        pub group_ids: Vec<String>,
        /// Whether to include authorized operations.
        pub include_authorized_operations: bool,
    }
}

mirror! {
    /// One acknowledgement batch (ShareFetch and ShareAcknowledge): `acknowledge_types` holds
    /// one type for the whole range or one per offset (0 gap, 1 accept, 2 release, 3 reject,
    /// and from v2 4 renew).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AcknowledgementBatch =>
        m::share_fetch_request::AcknowledgementBatch,
        m::share_acknowledge_request::AcknowledgementBatch
    {
        /// First offset.
        pub first_offset: i64,
        /// Last offset (inclusive).
        pub last_offset: i64,
        /// Acknowledge types.
        pub acknowledge_types: Vec<i8>,
    }
}

mirror! {
    /// ShareFetch request (v1, Kafka 4.1; v2, Kafka 4.2, adds the acquire mode and renewals).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareFetchRequest => m::ShareFetchRequest {
        /// Group id.
        pub group_id: Option<String>,
        /// Member id.
        pub member_id: Option<String>,
        /// 0 opens a share session, -1 closes it, else the session's next epoch.
        pub share_session_epoch: i32,
        /// Longest wait for records.
        pub max_wait_ms: i32,
        /// Bytes to wait for.
        pub min_bytes: i32,
        /// Most bytes to return.
        pub max_bytes: i32,
        /// Most records to acquire.
        pub max_records: i32,
        /// The preferred size of acquired batches.
        pub batch_size: i32,
        /// 0 batch-optimized (`max_records` is soft, whole log batches), 1 record-limit
        /// (`max_records` is strict) (KIP-1206, v2+).
        pub share_acquire_mode: i8,
        /// The acknowledgements include renewals (type 4) and nothing is to be fetched
        /// (KIP-1222, v2+).
        pub is_renew_ack: bool,
        /// Partitions to add to the session (and acknowledge).
        pub topics: Vec<ShareFetchTopic>,
        /// Partitions to remove from the session.
        pub forgotten_topics_data: Vec<ShareForgottenTopic>,
    }
}

mirror! {
    /// One topic of a ShareFetch request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareFetchTopic => m::share_fetch_request::FetchTopic {
        /// Topic id.
        pub topic_id: Uuid,
        /// Partitions.
        pub partitions: Vec<ShareFetchPartition>,
    }
}

mirror! {
    /// One partition of a ShareFetch request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareFetchPartition => m::share_fetch_request::FetchPartition {
        /// Partition index.
        pub partition_index: i32,
        /// Acknowledgements piggybacked on the fetch.
        pub acknowledgement_batches: Vec<AcknowledgementBatch>,
    }
}

mirror! {
    /// Partitions a ShareFetch removes from its session.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareForgottenTopic => m::share_fetch_request::ForgottenTopic {
        /// Topic id.
        pub topic_id: Uuid,
        /// Partition indexes.
        pub partitions: Vec<i32>,
    }
}

mirror! {
    /// ShareAcknowledge request (v1; v2 adds renewals).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareAcknowledgeRequest => m::ShareAcknowledgeRequest {
        /// Group id.
        pub group_id: Option<String>,
        /// Member id.
        pub member_id: Option<String>,
        /// The session's next epoch; -1 closes the session.
        pub share_session_epoch: i32,
        /// The acknowledgements include renewals (type 4) (KIP-1222, v2+).
        pub is_renew_ack: bool,
        /// Acknowledgements by topic.
        pub topics: Vec<ShareAcknowledgeTopic>,
    }
}

mirror! {
    /// One topic of a ShareAcknowledge request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareAcknowledgeTopic => m::share_acknowledge_request::AcknowledgeTopic {
        /// Topic id.
        pub topic_id: Uuid,
        /// Partitions.
        pub partitions: Vec<ShareAcknowledgePartition>,
    }
}

mirror! {
    /// One partition of a ShareAcknowledge request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareAcknowledgePartition => m::share_acknowledge_request::AcknowledgePartition {
        /// Partition index.
        pub partition_index: i32,
        /// Acknowledgements.
        pub acknowledgement_batches: Vec<AcknowledgementBatch>,
    }
}

mirror! {
    /// DescribeShareGroupOffsets request (v0).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeShareGroupOffsetsRequest => m::DescribeShareGroupOffsetsRequest {
        /// Groups.
        pub groups: Vec<DescribeShareGroupOffsetsGroup>,
    }
}

mirror! {
    /// One group of a DescribeShareGroupOffsets request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeShareGroupOffsetsGroup =>
        m::describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup
    {
        /// Group id.
        pub group_id: String,
        /// Topics; `None` = every topic the group has state for.
        pub topics: Option<Vec<ShareGroupOffsetsTopic>>,
    }
}

mirror! {
    /// Partitions of one topic by name (DescribeShareGroupOffsets request).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareGroupOffsetsTopic =>
        m::describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestTopic
    {
        /// Topic name.
        pub topic_name: String,
        /// Partition indexes.
        pub partitions: Vec<i32>,
    }
}

mirror! {
    /// AlterShareGroupOffsets request (v0).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AlterShareGroupOffsetsRequest => m::AlterShareGroupOffsetsRequest {
        /// Group id.
        pub group_id: String,
        /// New start offsets by topic.
        pub topics: Vec<AlterShareGroupOffsetsTopic>,
    }
}

mirror! {
    /// One topic of an AlterShareGroupOffsets request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AlterShareGroupOffsetsTopic =>
        m::alter_share_group_offsets_request::AlterShareGroupOffsetsRequestTopic
    {
        /// Topic name.
        pub topic_name: String,
        /// Partitions.
        pub partitions: Vec<AlterShareGroupOffsetsPartition>,
    }
}

mirror! {
    /// One partition of an AlterShareGroupOffsets request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AlterShareGroupOffsetsPartition =>
        m::alter_share_group_offsets_request::AlterShareGroupOffsetsRequestPartition
    {
        /// Partition index.
        pub partition_index: i32,
        /// The new share-partition start offset.
        pub start_offset: i64,
    }
}

mirror! {
    /// DeleteShareGroupOffsets request (v0).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DeleteShareGroupOffsetsRequest => m::DeleteShareGroupOffsetsRequest {
        /// Group id.
        pub group_id: String,
        /// Topics whose share state is deleted.
        pub topics: Vec<DeleteShareGroupOffsetsTopic>,
    }
}

mirror! {
    /// One topic of a DeleteShareGroupOffsets request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DeleteShareGroupOffsetsTopic =>
        m::delete_share_group_offsets_request::DeleteShareGroupOffsetsRequestTopic
    {
        /// Topic name.
        pub topic_name: String,
    }
}

// ---------------------------------------------------------------------------------------
// SASL authentication and SCRAM credentials
// ---------------------------------------------------------------------------------------

mirror! {
    /// SaslHandshake request (v0-1): the mechanism the client wants. After v0 the SASL tokens
    /// follow as bare size-prefixed frames; after v1 they come in SaslAuthenticate requests.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct SaslHandshakeRequest => m::SaslHandshakeRequest {
        /// Mechanism name, e.g. `SCRAM-SHA-256`.
        pub mechanism: String,
    }
}

mirror! {
    /// SaslAuthenticate request (v0-2): one SASL token from the client (KIP-152).
    #[derive(Clone, PartialEq, Eq, Default)]
    pub struct SaslAuthenticateRequest => m::SaslAuthenticateRequest {
        /// The client's SASL token (may hold a password: never logged).
        pub auth_bytes: Bytes,
    }
}

impl std::fmt::Debug for SaslAuthenticateRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslAuthenticateRequest")
            .field(
                "auth_bytes",
                &format_args!("<{} bytes>", self.auth_bytes.len()),
            )
            .finish()
    }
}

mirror! {
    /// DescribeUserScramCredentials request (v0).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeUserScramCredentialsRequest => m::DescribeUserScramCredentialsRequest {
        /// Users to describe; `None` or empty: all users.
        pub users: Option<Vec<String>>,
    }
}

impl Mirror<m::describe_user_scram_credentials_request::UserName> for String {
    fn to_kp(&self) -> m::describe_user_scram_credentials_request::UserName {
        m::describe_user_scram_credentials_request::UserName::default().with_name(
            kafka_protocol::protocol::StrBytes::from_string(self.clone()),
        )
    }
    fn from_kp(k: m::describe_user_scram_credentials_request::UserName) -> Self {
        k.name.as_str().to_owned()
    }
}

mirror! {
    /// AlterUserScramCredentials request (v0).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AlterUserScramCredentialsRequest => m::AlterUserScramCredentialsRequest {
        /// Credentials to delete.
        pub deletions: Vec<ScramCredentialDeletion>,
        /// Credentials to add or replace.
        pub upsertions: Vec<ScramCredentialUpsertion>,
    }
}

mirror! {
    /// One deletion of an AlterUserScramCredentials request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ScramCredentialDeletion => m::alter_user_scram_credentials_request::ScramCredentialDeletion {
        /// User name.
        pub name: String,
        /// 1: SCRAM-SHA-256, 2: SCRAM-SHA-512.
        pub mechanism: i8,
    }
}

mirror! {
    /// One upsertion of an AlterUserScramCredentials request: the client salts and hashes the
    /// password, so the broker never sees it.
    #[derive(Clone, PartialEq, Eq, Default)]
    pub struct ScramCredentialUpsertion => m::alter_user_scram_credentials_request::ScramCredentialUpsertion {
        /// User name.
        pub name: String,
        /// 1: SCRAM-SHA-256, 2: SCRAM-SHA-512.
        pub mechanism: i8,
        /// PBKDF2 iterations.
        pub iterations: i32,
        /// Salt.
        pub salt: Bytes,
        /// PBKDF2(password, salt, iterations) (secret: never logged).
        pub salted_password: Bytes,
    }
}

impl std::fmt::Debug for ScramCredentialUpsertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredentialUpsertion")
            .field("name", &self.name)
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .field("salt", &format_args!("<{} bytes>", self.salt.len()))
            .field("salted_password", &"<redacted>")
            .finish()
    }
}

// ---------------------------------------------------------------------------------------
// ACLs
// ---------------------------------------------------------------------------------------

mirror! {
    /// DescribeAcls request (v1-3): a filter over the ACLs. Codes are Kafka's `ResourceType`,
    /// `PatternType`, `AclOperation` and `AclPermissionType`.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeAclsRequest => m::DescribeAclsRequest {
        /// Resource type (1 = ANY).
        pub resource_type_filter: i8,
        /// Resource name; `None` = any.
        pub resource_name_filter: Option<String>,
        /// Pattern type (1 = ANY, 2 = MATCH, 3 = LITERAL, 4 = PREFIXED).
        pub pattern_type_filter: i8,
        /// Principal; `None` = any.
        pub principal_filter: Option<String>,
        /// Host; `None` = any.
        pub host_filter: Option<String>,
        /// Operation (1 = ANY).
        pub operation: i8,
        /// Permission (1 = ANY, 2 = DENY, 3 = ALLOW).
        pub permission_type: i8,
    }
}

mirror! {
    /// CreateAcls request (v1-3).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct CreateAclsRequest => m::CreateAclsRequest {
        /// ACLs to create.
        pub creations: Vec<AclCreation>,
    }
}

mirror! {
    /// One ACL of a CreateAcls request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AclCreation => m::create_acls_request::AclCreation {
        /// Resource type.
        pub resource_type: i8,
        /// Resource name.
        pub resource_name: String,
        /// Pattern type (3 = LITERAL, 4 = PREFIXED).
        pub resource_pattern_type: i8,
        /// Principal, `User:alice`.
        pub principal: String,
        /// Host, or `*`.
        pub host: String,
        /// Operation.
        pub operation: i8,
        /// Permission (2 = DENY, 3 = ALLOW).
        pub permission_type: i8,
    }
}

mirror! {
    /// DeleteAcls request (v1-3).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DeleteAclsRequest => m::DeleteAclsRequest {
        /// Filters; every ACL matching one is deleted.
        pub filters: Vec<DeleteAclsFilter>,
    }
}

mirror! {
    /// One filter of a DeleteAcls request (the fields of a DescribeAcls request).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DeleteAclsFilter => m::delete_acls_request::DeleteAclsFilter {
        /// Resource type (1 = ANY).
        pub resource_type_filter: i8,
        /// Resource name; `None` = any.
        pub resource_name_filter: Option<String>,
        /// Pattern type (1 = ANY, 2 = MATCH, 3 = LITERAL, 4 = PREFIXED).
        pub pattern_type_filter: i8,
        /// Principal; `None` = any.
        pub principal_filter: Option<String>,
        /// Host; `None` = any.
        pub host_filter: Option<String>,
        /// Operation (1 = ANY).
        pub operation: i8,
        /// Permission (1 = ANY).
        pub permission_type: i8,
    }
}

// ---------------------------------------------------------------------------------------
// Client quotas (KIP-546)
// ---------------------------------------------------------------------------------------

mirror! {
    /// DescribeClientQuotas request (v0-1): a filter of entity components.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeClientQuotasRequest => m::DescribeClientQuotasRequest {
        /// One filter per entity type; an entity matches when it passes every component.
        pub components: Vec<QuotaFilterComponent>,
        /// Whether entities with entity types the filter does not name are left out.
        pub strict: bool,
    }
}

mirror! {
    /// One component of a DescribeClientQuotas filter.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct QuotaFilterComponent => m::describe_client_quotas_request::ComponentData {
        /// `user`, `client-id` or `ip`.
        pub entity_type: String,
        /// 0 = exactly `match_value`, 1 = the default entity, 2 = any specified entity.
        pub match_type: i8,
        /// The name matched with `match_type` 0.
        pub match_value: Option<String> as _match,
    }
}

mirror! {
    /// AlterClientQuotas request (v0-1).
    #[derive(Debug, Clone, PartialEq, Default)]
    pub struct AlterClientQuotasRequest => m::AlterClientQuotasRequest {
        /// One entry per entity.
        pub entries: Vec<QuotaAlteration>,
        /// Validate without applying.
        pub validate_only: bool,
    }
}

mirror! {
    /// The changes to one entity's quotas.
    #[derive(Debug, Clone, PartialEq, Default)]
    pub struct QuotaAlteration => m::alter_client_quotas_request::EntryData {
        /// The entity's components.
        pub entity: Vec<QuotaEntityComponent>,
        /// The changes.
        pub ops: Vec<QuotaOp>,
    }
}

mirror! {
    /// One component of a quota entity; `entity_name` `None` is the default entity.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct QuotaEntityComponent => m::alter_client_quotas_request::EntityData,
        m::describe_client_quotas_response::EntityData,
        m::alter_client_quotas_response::EntityData {
        /// `user`, `client-id` or `ip`.
        pub entity_type: String,
        /// The name, or `None` for the default.
        pub entity_name: Option<String>,
    }
}

mirror! {
    /// Sets or removes one quota value.
    #[derive(Debug, Clone, PartialEq, Default)]
    pub struct QuotaOp => m::alter_client_quotas_request::OpData {
        /// `producer_byte_rate`, `consumer_byte_rate`, `request_percentage`, ...
        pub key: String,
        /// The value to set.
        pub value: f64,
        /// Whether to remove the value instead.
        pub remove: bool,
    }
}

// ---------------------------------------------------------------------------------------
// Share group state (KIP-932's inter-broker persister APIs): a share-partition's leader reads
// and writes its durable state at the broker that owns the group's share state partition.
// ---------------------------------------------------------------------------------------

mirror! {
    /// One state batch of a share-partition: a range of offsets with one delivery state (0
    /// available, 2 acknowledged, 4 archived) and delivery count. WriteShareGroupState's and
    /// ReadShareGroupState's.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareStateBatch =>
        m::write_share_group_state_request::StateBatch,
        m::read_share_group_state_response::StateBatch
    {
        /// First offset.
        pub first_offset: i64,
        /// Last offset (inclusive).
        pub last_offset: i64,
        /// Delivery state.
        pub delivery_state: i8,
        /// Delivery count.
        pub delivery_count: i16,
    }
}

mirror! {
    /// InitializeShareGroupState request (v0): share-partitions start at an offset.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct InitializeShareGroupStateRequest => m::InitializeShareGroupStateRequest {
        /// Group id.
        pub group_id: String,
        /// Topics.
        pub topics: Vec<InitializeShareStateTopic>,
    }
}

mirror! {
    /// One topic of an InitializeShareGroupState request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct InitializeShareStateTopic =>
        m::initialize_share_group_state_request::InitializeStateData
    {
        /// Topic id.
        pub topic_id: Uuid,
        /// Partitions.
        pub partitions: Vec<InitializeShareStatePartition>,
    }
}

mirror! {
    /// One partition of an InitializeShareGroupState request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct InitializeShareStatePartition =>
        m::initialize_share_group_state_request::PartitionData
    {
        /// Partition index.
        pub partition: i32,
        /// The state epoch the new state starts.
        pub state_epoch: i32,
        /// The offset the share-partition starts at.
        pub start_offset: i64,
    }
}

mirror! {
    /// ReadShareGroupState request (v0): a share-partition's leader loads its state.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ReadShareGroupStateRequest => m::ReadShareGroupStateRequest {
        /// Group id.
        pub group_id: String,
        /// Topics.
        pub topics: Vec<ReadShareStateTopic>,
    }
}

mirror! {
    /// One topic of a ReadShareGroupState / ReadShareGroupStateSummary request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ReadShareStateTopic =>
        m::read_share_group_state_request::ReadStateData,
        m::read_share_group_state_summary_request::ReadStateSummaryData
    {
        /// Topic id.
        pub topic_id: Uuid,
        /// Partitions.
        pub partitions: Vec<ReadShareStatePartition>,
    }
}

mirror! {
    /// One partition of a ReadShareGroupState / ReadShareGroupStateSummary request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ReadShareStatePartition =>
        m::read_share_group_state_request::PartitionData,
        m::read_share_group_state_summary_request::PartitionData
    {
        /// Partition index.
        pub partition: i32,
        /// The reader's leader epoch of the data partition (-1: not a leader).
        pub leader_epoch: i32,
    }
}

mirror! {
    /// ReadShareGroupStateSummary request (v0): start offsets, for the admin APIs.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ReadShareGroupStateSummaryRequest => m::ReadShareGroupStateSummaryRequest {
        /// Group id.
        pub group_id: String,
        /// Topics.
        pub topics: Vec<ReadShareStateTopic>,
    }
}

mirror! {
    /// WriteShareGroupState request (v0): a share-partition's leader makes changes durable.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct WriteShareGroupStateRequest => m::WriteShareGroupStateRequest {
        /// Group id.
        pub group_id: String,
        /// Topics.
        pub topics: Vec<WriteShareStateTopic>,
    }
}

mirror! {
    /// One topic of a WriteShareGroupState request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct WriteShareStateTopic => m::write_share_group_state_request::WriteStateData {
        /// Topic id.
        pub topic_id: Uuid,
        /// Partitions.
        pub partitions: Vec<WriteShareStatePartition>,
    }
}

mirror! {
    /// One partition of a WriteShareGroupState request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct WriteShareStatePartition => m::write_share_group_state_request::PartitionData {
        /// Partition index.
        pub partition: i32,
        /// The state epoch the writer loaded.
        pub state_epoch: i32,
        /// The writer's leader epoch of the data partition.
        pub leader_epoch: i32,
        /// The new start offset.
        pub start_offset: i64,
        /// The ranges whose state changed.
        pub state_batches: Vec<ShareStateBatch>,
        /// Weir's dead-letter intent change (absent: none; empty: cleared; see the broker's
        /// `share::records`).
        pub weir: WeirTag as unknown_tagged_fields,
    }
}

mirror! {
    /// DeleteShareGroupState request (v0).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DeleteShareGroupStateRequest => m::DeleteShareGroupStateRequest {
        /// Group id.
        pub group_id: String,
        /// Topics.
        pub topics: Vec<DeleteShareStateTopic>,
    }
}

mirror! {
    /// One topic of a DeleteShareGroupState request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DeleteShareStateTopic => m::delete_share_group_state_request::DeleteStateData {
        /// Topic id.
        pub topic_id: Uuid,
        /// Partitions.
        pub partitions: Vec<DeleteShareStatePartition>,
    }
}

mirror! {
    /// One partition of a DeleteShareGroupState request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DeleteShareStatePartition => m::delete_share_group_state_request::PartitionData {
        /// Partition index.
        pub partition: i32,
    }
}

// ---------------------------------------------------------------------------------------
// Topic and log directory descriptions (KIP-966, KIP-113)
// ---------------------------------------------------------------------------------------

mirror! {
    /// DescribeTopicPartitions request (v0, KIP-966): topics' partitions, paged.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeTopicPartitionsRequest => m::DescribeTopicPartitionsRequest {
        /// Topics by name; empty = every topic.
        pub topics: Vec<DescribeTopicPartitionsTopic>,
        /// The most partitions the response may hold.
        pub response_partition_limit: i32,
        /// Where to start: a topic and a partition of it.
        pub cursor: Option<DescribeTopicPartitionsCursor>,
    }
}
kp_default!(DescribeTopicPartitionsRequest => m::DescribeTopicPartitionsRequest);

mirror! {
    /// A topic named in a DescribeTopicPartitions request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeTopicPartitionsTopic => m::describe_topic_partitions_request::TopicRequest {
        /// Topic name.
        pub name: String,
    }
}

mirror! {
    /// Where a DescribeTopicPartitions page starts (the request's cursor and the response's
    /// `next_cursor`).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeTopicPartitionsCursor =>
        m::describe_topic_partitions_request::Cursor,
        m::describe_topic_partitions_response::Cursor {
        /// Topic name.
        pub topic_name: String,
        /// First partition of that topic.
        pub partition_index: i32,
    }
}

mirror! {
    /// DescribeLogDirs request (v1-4).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeLogDirsRequest => m::DescribeLogDirsRequest {
        /// Topics and partitions to describe; `None` = all.
        pub topics: Option<Vec<DescribeLogDirsRequestTopic>>,
    }
}

mirror! {
    /// A topic of a DescribeLogDirs request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeLogDirsRequestTopic => m::describe_log_dirs_request::DescribableLogDirTopic {
        /// Topic name.
        pub topic: String,
        /// Partition indexes.
        pub partitions: Vec<i32>,
    }
}

mirror! {
    /// AlterReplicaLogDirs request (v1-2).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AlterReplicaLogDirsRequest => m::AlterReplicaLogDirsRequest {
        /// Target directories with the replicas to move there.
        pub dirs: Vec<AlterReplicaLogDir>,
    }
}

mirror! {
    /// A target directory of an AlterReplicaLogDirs request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AlterReplicaLogDir => m::alter_replica_log_dirs_request::AlterReplicaLogDir {
        /// Absolute path of the directory.
        pub path: String,
        /// Topics.
        pub topics: Vec<AlterReplicaLogDirTopic>,
    }
}

mirror! {
    /// A topic of an AlterReplicaLogDirs request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AlterReplicaLogDirTopic => m::alter_replica_log_dirs_request::AlterReplicaLogDirTopic {
        /// Topic name.
        pub name: String,
        /// Partition indexes.
        pub partitions: Vec<i32>,
    }
}

mirror! {
    /// ListConfigResources request (v0-1; v0 was ListClientMetricsResources, KIP-714).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ListConfigResourcesRequest => m::ListConfigResourcesRequest {
        /// Resource types to list (v1+); empty = every type.
        pub resource_types: Vec<i8>,
    }
}

mirror! {
    /// DescribeQuorum request (v0-2, KIP-595): the metadata quorum's partition to describe.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeQuorumRequest => m::DescribeQuorumRequest {
        /// Topics (Kafka's controllers answer only `__cluster_metadata`).
        pub topics: Vec<DescribeQuorumTopic>,
    }
}

mirror! {
    /// A topic of a DescribeQuorum request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeQuorumTopic => m::describe_quorum_request::TopicData {
        /// Topic name.
        pub topic_name: String,
        /// Partitions.
        pub partitions: Vec<DescribeQuorumPartition>,
    }
}

mirror! {
    /// A partition of a DescribeQuorum request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeQuorumPartition => m::describe_quorum_request::PartitionData {
        /// Partition index.
        pub partition_index: i32,
    }
}

mirror! {
    /// DescribeProducers request (v0, KIP-664): the active producers of partitions.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeProducersRequest => m::DescribeProducersRequest {
        /// Topics and partitions to describe.
        pub topics: Vec<DescribeProducersTopic>,
    }
}

mirror! {
    /// A topic of a DescribeProducers request.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeProducersTopic => m::describe_producers_request::TopicRequest {
        /// Topic name.
        pub name: String,
        /// Partition indexes.
        pub partition_indexes: Vec<i32>,
    }
}
