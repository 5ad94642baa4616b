//! Weir-owned response types, one per served API, independent of the wire version.
//!
//! Every struct is `Default` with Kafka's own defaults, so the broker fills in only what
//! it knows. The encoder writes each field only at the versions that have it; fields a
//! version lacks are dropped silently (e.g. `throttle_time_ms` at Metadata v0), except
//! where dropping would change meaning (more than one group or coordinator in a response
//! to a pre-batching version), which is an [`crate::EncodeError`].
//!
//! Weir is a single-node broker, so leader epochs default to 0 (not Kafka's -1 =
//! "unknown"): clients compare epochs and a stable 0 is the truthful answer.

use crate::error::ErrorCode;
use crate::requests::Uuid;
use bytes::Bytes;
use kafka_protocol::messages as m;

use crate::mirror::{kp_default, mirror, WeirTag};

/// Kafka's "authorized operations were not requested" marker (`Integer.MIN_VALUE`).
pub const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

pub use crate::apis::Response;

// ---------------------------------------------------------------------------------------
// ApiVersions / Metadata
// ---------------------------------------------------------------------------------------

/// ApiVersions response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiVersionsResponse {
    /// Error code.
    pub error_code: ErrorCode,
    /// Supported APIs. [`ApiVersionsResponse::supported`] fills in [`crate::advertised_apis`].
    pub api_keys: Vec<ApiVersionRange>,
    /// Throttle time (v1+).
    pub throttle_time_ms: i32,
    /// Features (KIP-584, v3+): the range of levels this broker supports and the level the
    /// cluster runs at, e.g. `transaction.version` 2 (KIP-890), which tells a client it may
    /// speak transaction protocol 2.
    pub features: Vec<Feature>,
    /// Epoch of the finalized levels in [`Self::features`] (-1: unknown, and clients then
    /// ignore them).
    pub finalized_features_epoch: i64,
}

/// One feature of ApiVersions v3+: supported levels and the finalized one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Feature {
    /// Kafka's name of the feature (`transaction.version`).
    pub name: String,
    /// Lowest level this broker supports.
    pub min_supported: i16,
    /// Highest level this broker supports.
    pub max_supported: i16,
    /// The level the cluster runs at (absent: not finalized).
    pub finalized: Option<i16>,
}

impl ApiVersionsResponse {
    /// A successful response listing everything Weir serves, without features.
    pub fn supported() -> Self {
        ApiVersionsResponse {
            error_code: ErrorCode::NONE,
            api_keys: crate::versions::supported_api_ranges(),
            throttle_time_ms: 0,
            features: Vec::new(),
            finalized_features_epoch: -1,
        }
    }
}

/// One entry of the ApiVersions list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ApiVersionRange {
    /// API key.
    pub api_key: i16,
    /// Lowest supported version.
    pub min_version: i16,
    /// Highest supported version.
    pub max_version: i16,
}

/// Metadata response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataResponse {
    /// Throttle time (v3+).
    pub throttle_time_ms: i32,
    /// Brokers.
    pub brokers: Vec<MetadataBroker>,
    /// Cluster id (v2+).
    pub cluster_id: Option<String>,
    /// Controller broker id (v1+; -1 = none).
    pub controller_id: i32,
    /// Topics.
    pub topics: Vec<MetadataTopic>,
    /// Cluster authorized operations (v8-10).
    pub cluster_authorized_operations: i32,
}

impl Default for MetadataResponse {
    fn default() -> Self {
        MetadataResponse {
            throttle_time_ms: 0,
            brokers: Vec::new(),
            cluster_id: None,
            controller_id: -1,
            topics: Vec::new(),
            cluster_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
        }
    }
}

/// A broker in a Metadata response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataBroker {
    /// Broker id.
    pub node_id: i32,
    /// Host clients connect to.
    pub host: String,
    /// Port clients connect to.
    pub port: i32,
    /// Rack (v1+).
    pub rack: Option<String>,
}

/// A topic in a Metadata response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataTopic {
    /// Error code (e.g. UNKNOWN_TOPIC_OR_PARTITION).
    pub error_code: ErrorCode,
    /// Topic name.
    pub name: Option<String>,
    /// Topic id (v10+).
    pub topic_id: Uuid,
    /// Internal topic (v1+).
    pub is_internal: bool,
    /// Partitions.
    pub partitions: Vec<MetadataPartition>,
    /// Topic authorized operations (v8+).
    pub topic_authorized_operations: i32,
}

impl Default for MetadataTopic {
    fn default() -> Self {
        MetadataTopic {
            error_code: ErrorCode::NONE,
            name: None,
            topic_id: [0; 16],
            is_internal: false,
            partitions: Vec::new(),
            topic_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
        }
    }
}

/// A partition in a Metadata response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataPartition {
    /// Error code.
    pub error_code: ErrorCode,
    /// Partition index.
    pub partition_index: i32,
    /// Leader broker id.
    pub leader_id: i32,
    /// Leader epoch (v7+).
    pub leader_epoch: i32,
    /// Replica broker ids.
    pub replica_nodes: Vec<i32>,
    /// In-sync replica broker ids.
    pub isr_nodes: Vec<i32>,
    /// Offline replicas (v5+).
    pub offline_replicas: Vec<i32>,
}

// ---------------------------------------------------------------------------------------
// Produce / Fetch / ListOffsets
// ---------------------------------------------------------------------------------------

/// Produce response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProduceResponse {
    /// Per-topic results.
    pub topics: Vec<ProduceTopicResponse>,
    /// Throttle time (v1+).
    pub throttle_time_ms: i32,
    /// KIP-951: the brokers named by the partitions' `current_leader` (v10+, tagged: not
    /// written when empty).
    pub node_endpoints: Vec<NodeEndpoint>,
}

/// One topic of a Produce response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProduceTopicResponse {
    /// Topic name (written before v13).
    pub name: String,
    /// Topic id (written from v13 on).
    pub topic_id: Uuid,
    /// Per-partition results.
    pub partitions: Vec<ProducePartitionResponse>,
}

/// One partition of a Produce response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducePartitionResponse {
    /// Partition index.
    pub index: i32,
    /// Error code.
    pub error_code: ErrorCode,
    /// Offset of the first appended record.
    pub base_offset: i64,
    /// Append time when the topic uses LogAppendTime, else -1 (v2+).
    pub log_append_time_ms: i64,
    /// Log start offset (v5+).
    pub log_start_offset: i64,
    /// Per-batch errors (v8+).
    pub record_errors: Vec<ProduceRecordError>,
    /// Error message (v8+).
    pub error_message: Option<String>,
    /// KIP-951: the partition's leader as the broker knows it, `(leader_id, leader_epoch)`,
    /// sent with `NOT_LEADER_OR_FOLLOWER` so the producer can go there without a Metadata
    /// round trip; its address goes in [`ProduceResponse::node_endpoints`] (v10+, tagged:
    /// `None`, like Kafka's default `(-1, -1)`, is not written).
    pub current_leader: Option<(i32, i32)>,
}

impl Default for ProducePartitionResponse {
    fn default() -> Self {
        ProducePartitionResponse {
            index: 0,
            error_code: ErrorCode::NONE,
            base_offset: -1,
            log_append_time_ms: -1,
            log_start_offset: -1,
            record_errors: Vec::new(),
            error_message: None,
            current_leader: None,
        }
    }
}

/// A record-level error in a Produce response (v8+).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProduceRecordError {
    /// Index of the bad record within the batch.
    pub batch_index: i32,
    /// Why it was rejected.
    pub message: Option<String>,
}

/// Fetch response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Top-level error, e.g. FETCH_SESSION_ID_NOT_FOUND (v7+).
    pub error_code: ErrorCode,
    /// Fetch session id; 0 = no session (v7+).
    pub session_id: i32,
    /// Per-topic data.
    pub topics: Vec<FetchTopicResponse>,
    /// KIP-951: the brokers named by the partitions' `current_leader` (v16+, tagged: not
    /// written when empty).
    pub node_endpoints: Vec<NodeEndpoint>,
}

/// One topic of a Fetch response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchTopicResponse {
    /// Topic name (written before v13).
    pub name: String,
    /// Topic id (written from v13 on).
    pub topic_id: Uuid,
    /// Per-partition data.
    pub partitions: Vec<FetchPartitionResponse>,
}

/// One partition of a Fetch response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPartitionResponse {
    /// Partition index.
    pub partition_index: i32,
    /// Error code.
    pub error_code: ErrorCode,
    /// High watermark.
    pub high_watermark: i64,
    /// Last stable offset (-1 = unknown).
    pub last_stable_offset: i64,
    /// Log start offset (v5+; -1 = unknown).
    pub log_start_offset: i64,
    /// Aborted transactions in the returned range (written as an empty array, not null).
    pub aborted_transactions: Vec<AbortedTransaction>,
    /// Preferred read replica (v11+; -1 = none).
    pub preferred_read_replica: i32,
    /// Raw record batches. Always written as bytes (empty when there is no data), never
    /// as null: librdkafka rejects a -1 length.
    pub records: FetchRecords,
    /// KIP-320 / KIP-595: the follower's log diverges from the leader's, `(epoch,
    /// end_offset)`: the largest epoch of the leader not above the request's
    /// `last_fetched_epoch`, and where it ends; the follower truncates there (v12+, tagged:
    /// `None`, like Kafka's default `(-1, -1)`, is not written).
    pub diverging_epoch: Option<(i32, i64)>,
    /// The partition's leader as the broker knows it, `(leader_id, leader_epoch)`, sent with
    /// `NOT_LEADER_OR_FOLLOWER` / `FENCED_LEADER_EPOCH` (v12+, tagged: `None`, like Kafka's
    /// default `(-1, -1)`, is not written).
    pub current_leader: Option<(i32, i32)>,
}

impl Default for FetchPartitionResponse {
    fn default() -> Self {
        FetchPartitionResponse {
            partition_index: 0,
            error_code: ErrorCode::NONE,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            aborted_transactions: Vec::new(),
            preferred_read_replica: -1,
            records: FetchRecords::default(),
            diverging_epoch: None,
            current_leader: None,
        }
    }
}

/// The record batches of one Fetch partition: in memory, or supplied by whoever writes the
/// response (the broker sends them from the segment file, without copying them through the
/// encoder or user space).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchRecords {
    /// Bytes in hand: every decoded response, and what the broker reads into memory.
    Bytes(Bytes),
    /// `len` bytes the response's writer supplies: the encoder writes their length and leaves
    /// them out (see [`crate::encode_response_parts`]).
    Deferred(DeferredRecords),
}

impl FetchRecords {
    /// Length in bytes.
    pub fn len(&self) -> usize {
        match self {
            FetchRecords::Bytes(b) => b.len(),
            FetchRecords::Deferred(d) => d.len(),
        }
    }

    /// No records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, when they are in memory (always so in a decoded response).
    pub fn in_memory(&self) -> Option<&Bytes> {
        match self {
            FetchRecords::Bytes(b) => Some(b),
            FetchRecords::Deferred(_) => None,
        }
    }
}

impl Default for FetchRecords {
    fn default() -> Self {
        FetchRecords::Bytes(Bytes::new())
    }
}

impl From<Bytes> for FetchRecords {
    fn from(bytes: Bytes) -> Self {
        FetchRecords::Bytes(bytes)
    }
}

impl From<Vec<u8>> for FetchRecords {
    fn from(bytes: Vec<u8>) -> Self {
        FetchRecords::Bytes(Bytes::from(bytes))
    }
}

/// Records left out of an encoded response: their length, and an opaque handle by which the
/// response's writer finds them (this crate knows nothing of files; the broker puts a segment
/// range here and downcasts it back with [`DeferredRecords::source`]).
#[derive(Clone)]
pub struct DeferredRecords {
    len: usize,
    source: std::sync::Arc<dyn std::any::Any + Send + Sync>,
}

impl DeferredRecords {
    /// `len` bytes that `source` supplies.
    pub fn new<T: std::any::Any + Send + Sync>(len: usize, source: T) -> Self {
        DeferredRecords {
            len,
            source: std::sync::Arc::new(source),
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The handle given to [`DeferredRecords::new`], if it is a `T`.
    pub fn source<T: std::any::Any>(&self) -> Option<&T> {
        self.source.downcast_ref()
    }
}

impl std::fmt::Debug for DeferredRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeferredRecords")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// Two handles are equal when they are the same handle.
impl PartialEq for DeferredRecords {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && std::sync::Arc::ptr_eq(&self.source, &other.source)
    }
}

impl Eq for DeferredRecords {}

/// An aborted transaction in a Fetch response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AbortedTransaction {
    /// Producer id.
    pub producer_id: i64,
    /// First offset of the aborted transaction.
    pub first_offset: i64,
}

/// ListOffsets response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListOffsetsResponse {
    /// Throttle time (v2+).
    pub throttle_time_ms: i32,
    /// Per-topic results.
    pub topics: Vec<ListOffsetsTopicResponse>,
}

/// One topic of a ListOffsets response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListOffsetsTopicResponse {
    /// Topic name.
    pub name: String,
    /// Per-partition results.
    pub partitions: Vec<ListOffsetsPartitionResponse>,
}

/// One partition of a ListOffsets response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsPartitionResponse {
    /// Partition index.
    pub partition_index: i32,
    /// Error code.
    pub error_code: ErrorCode,
    /// Timestamp of the returned offset (-1 when not applicable).
    pub timestamp: i64,
    /// The offset (-1 when none).
    pub offset: i64,
    /// Leader epoch (v4+).
    pub leader_epoch: i32,
}

impl Default for ListOffsetsPartitionResponse {
    fn default() -> Self {
        ListOffsetsPartitionResponse {
            partition_index: 0,
            error_code: ErrorCode::NONE,
            timestamp: -1,
            offset: -1,
            leader_epoch: 0,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Consumer groups
// ---------------------------------------------------------------------------------------

/// OffsetCommit response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetCommitResponse {
    /// Throttle time (v3+).
    pub throttle_time_ms: i32,
    /// Per-topic results.
    pub topics: Vec<OffsetCommitTopicResponse>,
}

/// One topic of an OffsetCommit response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetCommitTopicResponse {
    /// Topic name.
    pub name: String,
    /// Per-partition results.
    pub partitions: Vec<PartitionError>,
}

mirror! {
    /// A partition index with an error code (used by several responses).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct PartitionError =>
        m::offset_delete_response::OffsetDeleteResponsePartition,
        m::offset_commit_response::OffsetCommitResponsePartition,
        m::alter_replica_log_dirs_response::AlterReplicaLogDirPartitionResult
    {
        /// Partition index.
        pub partition_index: i32,
        /// Error code.
        pub error_code: ErrorCode,
    }
}

/// OffsetFetch response, always in the v8+ multi-group shape.
///
/// Responses to v1-7 must carry exactly one group (the one asked for); its `error_code`
/// becomes the top-level error code (v2+).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetFetchResponse {
    /// Throttle time (v3+).
    pub throttle_time_ms: i32,
    /// Per-group results.
    pub groups: Vec<OffsetFetchGroupResponse>,
}

/// One group of an OffsetFetch response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetFetchGroupResponse {
    /// Group id.
    pub group_id: String,
    /// Group-level error code.
    pub error_code: ErrorCode,
    /// Per-topic results.
    pub topics: Vec<OffsetFetchTopicResponse>,
}

/// One topic of an OffsetFetch response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetFetchTopicResponse {
    /// Topic name.
    pub name: String,
    /// Per-partition results.
    pub partitions: Vec<OffsetFetchPartitionResponse>,
}

/// One partition of an OffsetFetch response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchPartitionResponse {
    /// Partition index.
    pub partition_index: i32,
    /// Committed offset; -1 = none.
    pub committed_offset: i64,
    /// Leader epoch of the commit (v5+; -1 = unknown).
    pub committed_leader_epoch: i32,
    /// Committed metadata.
    pub metadata: Option<String>,
    /// Error code.
    pub error_code: ErrorCode,
}

impl Default for OffsetFetchPartitionResponse {
    fn default() -> Self {
        OffsetFetchPartitionResponse {
            partition_index: 0,
            committed_offset: -1,
            committed_leader_epoch: -1,
            metadata: Some(String::new()),
            error_code: ErrorCode::NONE,
        }
    }
}

/// FindCoordinator response, always in the v4+ batched shape.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FindCoordinatorResponse {
    /// Throttle time (v1+).
    pub throttle_time_ms: i32,
    /// One entry per requested key. Responses to v0-3 must carry exactly one.
    pub coordinators: Vec<Coordinator>,
}

/// One coordinator in a FindCoordinator response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Coordinator {
    /// The key asked for (v4+).
    pub key: String,
    /// Coordinator broker id.
    pub node_id: i32,
    /// Host.
    pub host: String,
    /// Port.
    pub port: i32,
    /// Error code.
    pub error_code: ErrorCode,
    /// Error message (v1+).
    pub error_message: Option<String>,
}

/// JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Error code.
    pub error_code: ErrorCode,
    /// Generation id.
    pub generation_id: i32,
    /// Protocol type (v7+).
    pub protocol_type: Option<String>,
    /// Chosen protocol (null only at v7+; written as "" before).
    pub protocol_name: Option<String>,
    /// Leader member id.
    pub leader: String,
    /// Skip assignment (v9+).
    pub skip_assignment: bool,
    /// The member id assigned to the caller.
    pub member_id: String,
    /// Members (only sent to the leader).
    pub members: Vec<JoinGroupMember>,
}

impl Default for JoinGroupResponse {
    fn default() -> Self {
        JoinGroupResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::NONE,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            member_id: String::new(),
            members: Vec::new(),
        }
    }
}

/// A member in a JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JoinGroupMember {
    /// Member id.
    pub member_id: String,
    /// Static instance id (v5+).
    pub group_instance_id: Option<String>,
    /// Protocol metadata (subscription).
    pub metadata: Bytes,
}

/// SyncGroup response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncGroupResponse {
    /// Throttle time (v1+).
    pub throttle_time_ms: i32,
    /// Error code.
    pub error_code: ErrorCode,
    /// Protocol type (v5+).
    pub protocol_type: Option<String>,
    /// Protocol name (v5+).
    pub protocol_name: Option<String>,
    /// The caller's assignment.
    pub assignment: Bytes,
}

mirror! {
    /// Heartbeat response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct HeartbeatResponse => m::HeartbeatResponse {
        /// Throttle time (v1+).
        pub throttle_time_ms: i32,
        /// Error code.
        pub error_code: ErrorCode,
    }
}

/// LeaveGroup response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaveGroupResponse {
    /// Throttle time (v1+).
    pub throttle_time_ms: i32,
    /// Top-level error code.
    pub error_code: ErrorCode,
    /// Per-member results (v3+; dropped before).
    pub members: Vec<LeaveGroupMemberResponse>,
}

/// One member of a LeaveGroup response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaveGroupMemberResponse {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// Error code.
    pub error_code: ErrorCode,
}

mirror! {
    /// ListGroups response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ListGroupsResponse => m::ListGroupsResponse {
        /// Throttle time (v1+).
        pub throttle_time_ms: i32,
        /// Error code.
        pub error_code: ErrorCode,
        /// Groups.
        pub groups: Vec<ListedGroup>,
    }
}

mirror! {
    /// One group of a ListGroups response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ListedGroup => m::list_groups_response::ListedGroup {
        /// Group id.
        pub group_id: String,
        /// Protocol type ("consumer"; empty for simple groups).
        pub protocol_type: String,
        /// Group state, e.g. "Stable" (v4+).
        pub group_state: String,
        /// Group type, "classic" or "consumer" (v5+).
        pub group_type: String,
    }
}

mirror! {
    /// DescribeGroups response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeGroupsResponse => m::DescribeGroupsResponse {
        /// Throttle time (v1+).
        pub throttle_time_ms: i32,
        /// Groups.
        pub groups: Vec<DescribedGroup>,
    }
}

mirror! {
    /// One group of a DescribeGroups response.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribedGroup => m::describe_groups_response::DescribedGroup {
        /// Error code.
        pub error_code: ErrorCode,
        /// Error message (v6+).
        pub error_message: Option<String>,
        /// Group id.
        pub group_id: String,
        /// State, e.g. "Stable", "Empty", "Dead".
        pub group_state: String,
        /// Protocol type.
        pub protocol_type: String,
        /// Chosen protocol name.
        pub protocol_data: String,
        /// Members.
        pub members: Vec<DescribedGroupMember>,
        /// Authorized operations (v3+).
        pub authorized_operations: i32,
    }
}

impl Default for DescribedGroup {
    fn default() -> Self {
        DescribedGroup {
            error_code: ErrorCode::NONE,
            error_message: None,
            group_id: String::new(),
            group_state: String::new(),
            protocol_type: String::new(),
            protocol_data: String::new(),
            members: Vec::new(),
            authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
        }
    }
}

mirror! {
    /// One member of a described group.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribedGroupMember => m::describe_groups_response::DescribedGroupMember {
        /// Member id.
        pub member_id: String,
        /// Static instance id (v4+).
        pub group_instance_id: Option<String>,
        /// Client id.
        pub client_id: String,
        /// Client host.
        pub client_host: String,
        /// Protocol metadata.
        pub member_metadata: Bytes,
        /// Assignment.
        pub member_assignment: Bytes,
    }
}

mirror! {
    /// DeleteGroups response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DeleteGroupsResponse => m::DeleteGroupsResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Per-group results.
        pub results: Vec<DeleteGroupResult>,
    }
}

mirror! {
    /// One group of a DeleteGroups response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DeleteGroupResult => m::delete_groups_response::DeletableGroupResult {
        /// Group id.
        pub group_id: String,
        /// Error code.
        pub error_code: ErrorCode,
    }
}

mirror! {
    /// OffsetDelete response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct OffsetDeleteResponse => m::OffsetDeleteResponse {
        /// Top-level error code.
        pub error_code: ErrorCode,
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Per-topic results.
        pub topics: Vec<OffsetDeleteTopicResponse>,
    }
}

mirror! {
    /// One topic of an OffsetDelete response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct OffsetDeleteTopicResponse => m::offset_delete_response::OffsetDeleteResponseTopic {
        /// Topic name.
        pub name: String,
        /// Per-partition results.
        pub partitions: Vec<PartitionError>,
    }
}

// ---------------------------------------------------------------------------------------
// The consumer group protocol (KIP-848)
// ---------------------------------------------------------------------------------------

mirror! {
    /// ConsumerGroupHeartbeat response.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ConsumerGroupHeartbeatResponse => m::ConsumerGroupHeartbeatResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Error code.
        pub error_code: ErrorCode,
        /// Error message.
        pub error_message: Option<String>,
        /// The member id (the coordinator's at v0, the client's from v1).
        pub member_id: Option<String>,
        /// The member epoch.
        pub member_epoch: i32,
        /// How long the member waits before its next heartbeat.
        pub heartbeat_interval_ms: i32,
        /// The member's assignment; `None` when unchanged.
        pub assignment: Option<ConsumerGroupAssignment>,
    }
}
kp_default!(ConsumerGroupHeartbeatResponse => m::ConsumerGroupHeartbeatResponse);

mirror! {
    /// The assignment in a ConsumerGroupHeartbeat response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ConsumerGroupAssignment => m::consumer_group_heartbeat_response::Assignment {
        /// Assigned partitions by topic id.
        pub topic_partitions: Vec<crate::requests::ConsumerGroupTopicPartitions>,
    }
}

mirror! {
    /// ConsumerGroupDescribe response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ConsumerGroupDescribeResponse => m::ConsumerGroupDescribeResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Groups.
        pub groups: Vec<ConsumerGroupDescribedGroup>,
    }
}

mirror! {
    /// One group of a ConsumerGroupDescribe response.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ConsumerGroupDescribedGroup => m::consumer_group_describe_response::DescribedGroup {
        /// Error code.
        pub error_code: ErrorCode,
        /// Error message.
        pub error_message: Option<String>,
        /// Group id.
        pub group_id: String,
        /// "Empty", "Assigning", "Reconciling", "Stable" or "Dead".
        pub group_state: String,
        /// Group epoch.
        pub group_epoch: i32,
        /// Target assignment epoch.
        pub assignment_epoch: i32,
        /// The server assignor in use.
        pub assignor_name: String,
        /// Members.
        pub members: Vec<ConsumerGroupDescribedMember>,
        /// Authorized operations.
        pub authorized_operations: i32,
    }
}
kp_default!(ConsumerGroupDescribedGroup => m::consumer_group_describe_response::DescribedGroup);

mirror! {
    /// One member of a ConsumerGroupDescribe response.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ConsumerGroupDescribedMember => m::consumer_group_describe_response::Member {
        /// Member id.
        pub member_id: String,
        /// Static instance id.
        pub instance_id: Option<String>,
        /// Rack id.
        pub rack_id: Option<String>,
        /// Member epoch.
        pub member_epoch: i32,
        /// Client id.
        pub client_id: String,
        /// Client host.
        pub client_host: String,
        /// Subscribed topic names.
        pub subscribed_topic_names: Vec<String>,
        /// Subscribed regular expression.
        pub subscribed_topic_regex: Option<String>,
        /// The member's current assignment.
        pub assignment: ConsumerGroupDescribeAssignment,
        /// The member's target assignment.
        pub target_assignment: ConsumerGroupDescribeAssignment,
        /// -1 unknown, 0 classic protocol, 1 consumer protocol (v1+).
        pub member_type: i8,
    }
}
kp_default!(ConsumerGroupDescribedMember => m::consumer_group_describe_response::Member);

mirror! {
    /// An assignment in a ConsumerGroupDescribe response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ConsumerGroupDescribeAssignment => m::consumer_group_describe_response::Assignment {
        /// Partitions by topic.
        pub topic_partitions: Vec<ConsumerGroupDescribeTopicPartitions>,
    }
}

mirror! {
    /// Partitions of one topic in a ConsumerGroupDescribe response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ConsumerGroupDescribeTopicPartitions => m::consumer_group_describe_response::TopicPartitions {
        /// Topic id.
        pub topic_id: Uuid,
        /// Topic name.
        pub topic_name: String,
        /// Partition indexes.
        pub partitions: Vec<i32>,
    }
}

// ---------------------------------------------------------------------------------------
// Producer ids, admin
// ---------------------------------------------------------------------------------------

/// InitProducerId response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitProducerIdResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Error code.
    pub error_code: ErrorCode,
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
}

impl Default for InitProducerIdResponse {
    fn default() -> Self {
        InitProducerIdResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::NONE,
            producer_id: -1,
            producer_epoch: 0,
        }
    }
}

/// CreateTopics response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateTopicsResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Per-topic results.
    pub topics: Vec<CreatableTopicResult>,
}

/// One topic of a CreateTopics response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatableTopicResult {
    /// Topic name.
    pub name: String,
    /// Topic id (v7+).
    pub topic_id: Uuid,
    /// Error code.
    pub error_code: ErrorCode,
    /// Error message.
    pub error_message: Option<String>,
    /// Why configs are missing (v5+, tagged).
    pub topic_config_error_code: ErrorCode,
    /// Partition count (v5+; -1 = unknown).
    pub num_partitions: i32,
    /// Replication factor (v5+; -1 = unknown).
    pub replication_factor: i16,
    /// The topic's configs (v5+; `None` = not returned).
    pub configs: Option<Vec<CreatableTopicConfig>>,
}

impl Default for CreatableTopicResult {
    fn default() -> Self {
        CreatableTopicResult {
            name: String::new(),
            topic_id: [0; 16],
            error_code: ErrorCode::NONE,
            error_message: None,
            topic_config_error_code: ErrorCode::NONE,
            num_partitions: -1,
            replication_factor: -1,
            configs: None,
        }
    }
}

/// A config of a created topic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreatableTopicConfig {
    /// Name.
    pub name: String,
    /// Value.
    pub value: Option<String>,
    /// Read-only.
    pub read_only: bool,
    /// Config source (see [`DescribeConfigsEntry::config_source`]).
    pub config_source: i8,
    /// Sensitive (value hidden).
    pub is_sensitive: bool,
}

/// DeleteTopics response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteTopicsResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Per-topic results.
    pub responses: Vec<DeletableTopicResult>,
}

/// One topic of a DeleteTopics response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeletableTopicResult {
    /// Topic name (null only at v6+ for unknown ids).
    pub name: Option<String>,
    /// Topic id (v6+).
    pub topic_id: Uuid,
    /// Error code.
    pub error_code: ErrorCode,
    /// Error message (v5+).
    pub error_message: Option<String>,
}

/// CreatePartitions response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreatePartitionsResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Per-topic results.
    pub results: Vec<CreatePartitionsTopicResult>,
}

/// One topic of a CreatePartitions response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreatePartitionsTopicResult {
    /// Topic name.
    pub name: String,
    /// Error code.
    pub error_code: ErrorCode,
    /// Error message.
    pub error_message: Option<String>,
}

/// DescribeConfigs response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribeConfigsResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Per-resource results.
    pub results: Vec<DescribeConfigsResult>,
}

/// One resource of a DescribeConfigs response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribeConfigsResult {
    /// Error code.
    pub error_code: ErrorCode,
    /// Error message.
    pub error_message: Option<String>,
    /// Resource type.
    pub resource_type: i8,
    /// Resource name.
    pub resource_name: String,
    /// Config entries.
    pub configs: Vec<DescribeConfigsEntry>,
}

/// One config entry of a DescribeConfigs response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeConfigsEntry {
    /// Name.
    pub name: String,
    /// Value.
    pub value: Option<String>,
    /// Read-only.
    pub read_only: bool,
    /// 1 = dynamic topic, 2 = dynamic broker, 3 = dynamic default broker, 4 = static
    /// broker, 5 = default, 6 = dynamic broker logger, -1 = unknown.
    pub config_source: i8,
    /// Sensitive.
    pub is_sensitive: bool,
    /// Synonyms (when asked for).
    pub synonyms: Vec<DescribeConfigsSynonym>,
    /// Config type (v3+): 1 boolean, 2 string, 3 int, 4 short, 5 long, 6 double, 7 list,
    /// 8 class, 9 password; 0 = unknown.
    pub config_type: i8,
    /// Documentation (v3+).
    pub documentation: Option<String>,
}

impl Default for DescribeConfigsEntry {
    fn default() -> Self {
        DescribeConfigsEntry {
            name: String::new(),
            value: None,
            read_only: false,
            config_source: -1,
            is_sensitive: false,
            synonyms: Vec::new(),
            config_type: 0,
            documentation: None,
        }
    }
}

/// A config synonym.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribeConfigsSynonym {
    /// Name.
    pub name: String,
    /// Value.
    pub value: Option<String>,
    /// Source.
    pub source: i8,
}

/// AlterConfigs response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlterConfigsResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Per-resource results.
    pub responses: Vec<AlterConfigsResourceResponse>,
}

/// IncrementalAlterConfigs response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IncrementalAlterConfigsResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Per-resource results.
    pub responses: Vec<AlterConfigsResourceResponse>,
}

/// One resource of an (Incremental)AlterConfigs response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlterConfigsResourceResponse {
    /// Error code.
    pub error_code: ErrorCode,
    /// Error message.
    pub error_message: Option<String>,
    /// Resource type.
    pub resource_type: i8,
    /// Resource name.
    pub resource_name: String,
}

mirror! {
    /// DeleteRecords response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DeleteRecordsResponse => m::DeleteRecordsResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Per-topic results.
        pub topics: Vec<DeleteRecordsTopicResult>,
    }
}

mirror! {
    /// One topic of a DeleteRecords response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DeleteRecordsTopicResult => m::delete_records_response::DeleteRecordsTopicResult {
        /// Topic name.
        pub name: String,
        /// Per-partition results.
        pub partitions: Vec<DeleteRecordsPartitionResult>,
    }
}

mirror! {
    /// One partition of a DeleteRecords response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DeleteRecordsPartitionResult => m::delete_records_response::DeleteRecordsPartitionResult {
        /// Partition index.
        pub partition_index: i32,
        /// New log start offset.
        pub low_watermark: i64,
        /// Error code.
        pub error_code: ErrorCode,
    }
}

mirror! {
    /// DescribeCluster response.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeClusterResponse => m::DescribeClusterResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Error code.
        pub error_code: ErrorCode,
        /// Error message.
        pub error_message: Option<String>,
        /// Endpoint type (v1+; 1 = brokers).
        pub endpoint_type: i8,
        /// Cluster id.
        pub cluster_id: String,
        /// Controller id (-1 = none).
        pub controller_id: i32,
        /// Brokers.
        pub brokers: Vec<DescribeClusterBroker>,
        /// Cluster authorized operations.
        pub cluster_authorized_operations: i32,
    }
}

impl Default for DescribeClusterResponse {
    fn default() -> Self {
        DescribeClusterResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::NONE,
            error_message: None,
            endpoint_type: 1,
            cluster_id: String::new(),
            controller_id: -1,
            brokers: Vec::new(),
            cluster_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
        }
    }
}

mirror! {
    /// A broker in a DescribeCluster response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeClusterBroker => m::describe_cluster_response::DescribeClusterBroker {
        /// Broker id.
        pub broker_id: i32,
        /// Host.
        pub host: String,
        /// Port.
        pub port: i32,
        /// Rack.
        pub rack: Option<String>,
    }
}

mirror! {
    /// OffsetForLeaderEpoch response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct OffsetForLeaderEpochResponse => m::OffsetForLeaderEpochResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Per-topic results.
        pub topics: Vec<OffsetForLeaderTopicResult>,
    }
}

mirror! {
    /// One topic of an OffsetForLeaderEpoch response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct OffsetForLeaderTopicResult => m::offset_for_leader_epoch_response::OffsetForLeaderTopicResult {
        /// Topic name.
        pub topic: String,
        /// Per-partition results.
        pub partitions: Vec<EpochEndOffset>,
    }
}

mirror! {
    /// One partition of an OffsetForLeaderEpoch response.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct EpochEndOffset => m::offset_for_leader_epoch_response::EpochEndOffset {
        /// Error code.
        pub error_code: ErrorCode,
        /// Partition index.
        pub partition: i32,
        /// The largest epoch <= the requested one (-1 = unknown).
        pub leader_epoch: i32,
        /// Its end offset (-1 = unknown).
        pub end_offset: i64,
    }
}

impl Default for EpochEndOffset {
    fn default() -> Self {
        EpochEndOffset {
            error_code: ErrorCode::NONE,
            partition: 0,
            leader_epoch: -1,
            end_offset: -1,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Cluster admin: leader election, partition reassignment
// ---------------------------------------------------------------------------------------

mirror! {
    /// ElectLeaders response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ElectLeadersResponse => m::ElectLeadersResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Top-level error code (v1+; dropped before, so v0 answers carry it per partition).
        pub error_code: ErrorCode,
        /// Per-topic results (empty when the request asked for every partition and failed
        /// as a whole).
        pub replica_election_results: Vec<ReplicaElectionResult>,
    }
}

mirror! {
    /// One topic of an ElectLeaders response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ReplicaElectionResult => m::elect_leaders_response::ReplicaElectionResult {
        /// Topic name.
        pub topic: String,
        /// Per-partition results.
        pub partition_result: Vec<ElectLeadersPartitionResult>,
    }
}

mirror! {
    /// One partition of an ElectLeaders response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ElectLeadersPartitionResult => m::elect_leaders_response::PartitionResult {
        /// Partition index.
        pub partition_id: i32,
        /// Error code (`ELECTION_NOT_NEEDED` when the preferred replica already leads).
        pub error_code: ErrorCode,
        /// Error message; `None` without an error.
        pub error_message: Option<String>,
    }
}

mirror! {
    /// AlterPartitionReassignments response.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AlterPartitionReassignmentsResponse => m::AlterPartitionReassignmentsResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Whether replication factor changes were allowed (v1+).
        pub allow_replication_factor_change: bool,
        /// Top-level error code.
        pub error_code: ErrorCode,
        /// Top-level error message; `None` without an error.
        pub error_message: Option<String>,
        /// Per-topic results.
        pub responses: Vec<ReassignableTopicResponse>,
    }
}

impl Default for AlterPartitionReassignmentsResponse {
    fn default() -> Self {
        AlterPartitionReassignmentsResponse {
            throttle_time_ms: 0,
            allow_replication_factor_change: true,
            error_code: ErrorCode::NONE,
            error_message: None,
            responses: Vec::new(),
        }
    }
}

mirror! {
    /// One topic of an AlterPartitionReassignments response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ReassignableTopicResponse => m::alter_partition_reassignments_response::ReassignableTopicResponse {
        /// Topic name.
        pub name: String,
        /// Per-partition results.
        pub partitions: Vec<ReassignablePartitionResponse>,
    }
}

mirror! {
    /// One partition of an AlterPartitionReassignments response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ReassignablePartitionResponse => m::alter_partition_reassignments_response::ReassignablePartitionResponse {
        /// Partition index.
        pub partition_index: i32,
        /// Error code (`NO_REASSIGNMENT_IN_PROGRESS` for a cancel with nothing to cancel).
        pub error_code: ErrorCode,
        /// Error message; `None` without an error.
        pub error_message: Option<String>,
    }
}

mirror! {
    /// ListPartitionReassignments response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ListPartitionReassignmentsResponse => m::ListPartitionReassignmentsResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Top-level error code.
        pub error_code: ErrorCode,
        /// Top-level error message; `None` without an error.
        pub error_message: Option<String>,
        /// Ongoing reassignments per topic.
        pub topics: Vec<OngoingTopicReassignment>,
    }
}

mirror! {
    /// One topic of a ListPartitionReassignments response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct OngoingTopicReassignment => m::list_partition_reassignments_response::OngoingTopicReassignment {
        /// Topic name.
        pub name: String,
        /// Partitions being reassigned.
        pub partitions: Vec<OngoingPartitionReassignment>,
    }
}

mirror! {
    /// One partition being reassigned.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct OngoingPartitionReassignment => m::list_partition_reassignments_response::OngoingPartitionReassignment {
        /// Partition index.
        pub partition_index: i32,
        /// The current replica set (old and new replicas while it moves).
        pub replicas: Vec<i32>,
        /// Replicas being added.
        pub adding_replicas: Vec<i32>,
        /// Replicas being removed.
        pub removing_replicas: Vec<i32>,
    }
}

// ---------------------------------------------------------------------------------------
// Inter-broker Raft (KIP-595, KIP-996 pre-vote). The tagged `node_endpoints` of the v1+
// responses are not carried: Weir brokers know each other's addresses from the cluster
// metadata, and an unset tagged field is not written.
// ---------------------------------------------------------------------------------------

mirror! {
    /// Vote response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct VoteResponse => m::VoteResponse {
        /// Top-level error code (e.g. `INCONSISTENT_CLUSTER_ID`).
        pub error_code: ErrorCode,
        /// Topics.
        pub topics: Vec<VoteTopicResponse>,
    }
}

mirror! {
    /// One topic of a Vote response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct VoteTopicResponse => m::vote_response::TopicData {
        /// Topic name.
        pub topic_name: String,
        /// Partitions.
        pub partitions: Vec<VotePartitionResponse>,
    }
}

mirror! {
    /// One partition of a Vote response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct VotePartitionResponse => m::vote_response::PartitionData {
        /// Partition index.
        pub partition_index: i32,
        /// Error code (e.g. `FENCED_LEADER_EPOCH`, `UNKNOWN_TOPIC_OR_PARTITION`).
        pub error_code: ErrorCode,
        /// The leader the voter knows, -1 if none.
        pub leader_id: i32,
        /// The voter's epoch.
        pub leader_epoch: i32,
        /// Whether the vote (or pre-vote) was granted.
        pub vote_granted: bool,
    }
}

mirror! {
    /// BeginQuorumEpoch response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct BeginQuorumEpochResponse => m::BeginQuorumEpochResponse {
        /// Top-level error code.
        pub error_code: ErrorCode,
        /// Topics.
        pub topics: Vec<QuorumEpochTopicResponse>,
    }
}

mirror! {
    /// EndQuorumEpoch response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct EndQuorumEpochResponse => m::EndQuorumEpochResponse {
        /// Top-level error code.
        pub error_code: ErrorCode,
        /// Topics.
        pub topics: Vec<QuorumEpochTopicResponse>,
    }
}

mirror! {
    /// One topic of a BeginQuorumEpoch or EndQuorumEpoch response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct QuorumEpochTopicResponse =>
        m::begin_quorum_epoch_response::TopicData,
        m::end_quorum_epoch_response::TopicData
    {
        /// Topic name.
        pub topic_name: String,
        /// Partitions.
        pub partitions: Vec<QuorumEpochPartitionResponse>,
    }
}

mirror! {
    /// One partition of a BeginQuorumEpoch or EndQuorumEpoch response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct QuorumEpochPartitionResponse =>
        m::begin_quorum_epoch_response::PartitionData,
        m::end_quorum_epoch_response::PartitionData
    {
        /// Partition index.
        pub partition_index: i32,
        /// Error code (e.g. `FENCED_LEADER_EPOCH`).
        pub error_code: ErrorCode,
        /// The leader the receiver knows, -1 if none.
        pub leader_id: i32,
        /// The receiver's epoch.
        pub leader_epoch: i32,
    }
}

// ---------------------------------------------------------------------------------------
// Share groups (KIP-932)
// ---------------------------------------------------------------------------------------

mirror! {
    /// ShareGroupHeartbeat response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareGroupHeartbeatResponse => m::ShareGroupHeartbeatResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Error code.
        pub error_code: ErrorCode,
        /// Error message.
        pub error_message: Option<String>,
        /// Member id.
        pub member_id: Option<String>,
        /// The member's new epoch.
        pub member_epoch: i32,
        /// How often to heartbeat.
        pub heartbeat_interval_ms: i32,
        /// The member's partitions; `None` = unchanged.
        pub assignment: Option<ShareGroupAssignment>,
    }
}

mirror! {
    /// A share member's assignment (ShareGroupHeartbeat response).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareGroupAssignment => m::share_group_heartbeat_response::Assignment {
        /// Partitions by topic id.
        pub topic_partitions: Vec<ShareGroupTopicPartitions>,
    }
}

mirror! {
    /// Partitions of one topic, by topic id (ShareGroupHeartbeat response).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareGroupTopicPartitions => m::share_group_heartbeat_response::TopicPartitions {
        /// Topic id.
        pub topic_id: Uuid,
        /// Partition indexes.
        pub partitions: Vec<i32>,
    }
}

mirror! {
    /// ShareGroupDescribe response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareGroupDescribeResponse => m::ShareGroupDescribeResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Groups.
        pub groups: Vec<ShareGroupDescribedGroup>,
    }
}

mirror! {
    /// One group of a ShareGroupDescribe response.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ShareGroupDescribedGroup => m::share_group_describe_response::DescribedGroup {
        /// Error code.
        pub error_code: ErrorCode,
        /// Error message.
        pub error_message: Option<String>,
        /// Group id.
        pub group_id: String,
        /// "Empty", "Stable" or "Dead".
        pub group_state: String,
        /// Group epoch.
        pub group_epoch: i32,
        /// Assignment epoch.
        pub assignment_epoch: i32,
        /// The assignor in use ("simple").
        pub assignor_name: String,
        /// Members.
        pub members: Vec<ShareGroupDescribedMember>,
        /// Authorized operations.
        pub authorized_operations: i32,
    }
}
kp_default!(ShareGroupDescribedGroup => m::share_group_describe_response::DescribedGroup);

mirror! {
    /// One member of a ShareGroupDescribe response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareGroupDescribedMember => m::share_group_describe_response::Member {
        /// Member id.
        pub member_id: String,
        /// Rack id.
        pub rack_id: Option<String>,
        /// Member epoch.
        pub member_epoch: i32,
        /// Client id.
        pub client_id: String,
        /// Client host.
        pub client_host: String,
        /// Subscribed topic names.
        pub subscribed_topic_names: Vec<String>,
        /// The member's assignment.
        pub assignment: ShareGroupDescribeAssignment,
    }
}

mirror! {
    /// An assignment in a ShareGroupDescribe response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareGroupDescribeAssignment => m::share_group_describe_response::Assignment {
        /// Partitions by topic.
        pub topic_partitions: Vec<ShareGroupDescribeTopicPartitions>,
    }
}

mirror! {
    /// Partitions of one topic in a ShareGroupDescribe response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareGroupDescribeTopicPartitions => m::share_group_describe_response::TopicPartitions {
        /// Topic id.
        pub topic_id: Uuid,
        /// Topic name.
        pub topic_name: String,
        /// Partition indexes.
        pub partitions: Vec<i32>,
    }
}

mirror! {
    /// The leader of a partition as a share response reports it.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareLeaderIdAndEpoch =>
        m::share_fetch_response::LeaderIdAndEpoch,
        m::share_acknowledge_response::LeaderIdAndEpoch
    {
        /// Leader broker id (-1 unknown).
        pub leader_id: i32,
        /// Leader epoch (-1 unknown).
        pub leader_epoch: i32,
    }
}

mirror! {
    /// A broker's address, as KIP-951 responses (Produce v10+, Fetch v16+, the share APIs)
    /// carry it for the leaders their partitions name.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct NodeEndpoint =>
        m::produce_response::NodeEndpoint,
        m::fetch_response::NodeEndpoint,
        m::share_fetch_response::NodeEndpoint,
        m::share_acknowledge_response::NodeEndpoint
    {
        /// Broker id.
        pub node_id: i32,
        /// Host.
        pub host: String,
        /// Port.
        pub port: i32,
        /// Rack.
        pub rack: Option<String>,
    }
}

mirror! {
    /// ShareFetch response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareFetchResponse => m::ShareFetchResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Top-level error code.
        pub error_code: ErrorCode,
        /// Top-level error message.
        pub error_message: Option<String>,
        /// How long the acquired records stay locked.
        pub acquisition_lock_timeout_ms: i32,
        /// Partitions by topic.
        pub responses: Vec<ShareFetchTopicResponse>,
        /// Endpoints of leaders named in partition errors.
        pub node_endpoints: Vec<NodeEndpoint>,
    }
}

mirror! {
    /// One topic of a ShareFetch response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareFetchTopicResponse => m::share_fetch_response::ShareFetchableTopicResponse {
        /// Topic id.
        pub topic_id: Uuid,
        /// Partitions.
        pub partitions: Vec<ShareFetchPartitionData>,
    }
}

mirror! {
    /// One partition of a ShareFetch response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareFetchPartitionData => m::share_fetch_response::PartitionData {
        /// Partition index.
        pub partition_index: i32,
        /// Fetch error.
        pub error_code: ErrorCode,
        /// Fetch error message.
        pub error_message: Option<String>,
        /// Error of the acknowledgements piggybacked on the fetch.
        pub acknowledge_error_code: ErrorCode,
        /// Their error message.
        pub acknowledge_error_message: Option<String>,
        /// The partition's leader.
        pub current_leader: ShareLeaderIdAndEpoch,
        /// Record batches, as stored.
        pub records: Option<Bytes>,
        /// The offset runs acquired by this member.
        pub acquired_records: Vec<ShareAcquiredRecords>,
    }
}

mirror! {
    /// A run of acquired offsets with its delivery count.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareAcquiredRecords => m::share_fetch_response::AcquiredRecords {
        /// First offset.
        pub first_offset: i64,
        /// Last offset (inclusive).
        pub last_offset: i64,
        /// How often these records have been delivered.
        pub delivery_count: i16,
    }
}

mirror! {
    /// ShareAcknowledge response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareAcknowledgeResponse => m::ShareAcknowledgeResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Top-level error code.
        pub error_code: ErrorCode,
        /// Top-level error message.
        pub error_message: Option<String>,
        /// How long acquired records stay locked (v2+).
        pub acquisition_lock_timeout_ms: i32,
        /// Partitions by topic.
        pub responses: Vec<ShareAcknowledgeTopicResponse>,
        /// Endpoints of leaders named in partition errors.
        pub node_endpoints: Vec<NodeEndpoint>,
    }
}

mirror! {
    /// One topic of a ShareAcknowledge response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareAcknowledgeTopicResponse => m::share_acknowledge_response::ShareAcknowledgeTopicResponse {
        /// Topic id.
        pub topic_id: Uuid,
        /// Partitions.
        pub partitions: Vec<ShareAcknowledgePartitionData>,
    }
}

mirror! {
    /// One partition of a ShareAcknowledge response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareAcknowledgePartitionData => m::share_acknowledge_response::PartitionData {
        /// Partition index.
        pub partition_index: i32,
        /// Error code.
        pub error_code: ErrorCode,
        /// Error message.
        pub error_message: Option<String>,
        /// The partition's leader.
        pub current_leader: ShareLeaderIdAndEpoch,
    }
}

mirror! {
    /// DescribeShareGroupOffsets response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeShareGroupOffsetsResponse => m::DescribeShareGroupOffsetsResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Groups.
        pub groups: Vec<DescribeShareGroupOffsetsGroupResponse>,
    }
}

mirror! {
    /// One group of a DescribeShareGroupOffsets response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeShareGroupOffsetsGroupResponse =>
        m::describe_share_group_offsets_response::DescribeShareGroupOffsetsResponseGroup
    {
        /// Group id.
        pub group_id: String,
        /// Topics.
        pub topics: Vec<DescribeShareGroupOffsetsTopicResponse>,
        /// Group-level error.
        pub error_code: ErrorCode,
        /// Its message.
        pub error_message: Option<String>,
    }
}

mirror! {
    /// One topic of a DescribeShareGroupOffsets response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeShareGroupOffsetsTopicResponse =>
        m::describe_share_group_offsets_response::DescribeShareGroupOffsetsResponseTopic
    {
        /// Topic name.
        pub topic_name: String,
        /// Topic id.
        pub topic_id: Uuid,
        /// Partitions.
        pub partitions: Vec<DescribeShareGroupOffsetsPartitionResponse>,
    }
}

mirror! {
    /// One partition of a DescribeShareGroupOffsets response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeShareGroupOffsetsPartitionResponse =>
        m::describe_share_group_offsets_response::DescribeShareGroupOffsetsResponsePartition
    {
        /// Partition index.
        pub partition_index: i32,
        /// The share-partition start offset (-1: none).
        pub start_offset: i64,
        /// Leader epoch.
        pub leader_epoch: i32,
        /// Records not yet delivered to completion (v1+, KIP-1226; -1: not known).
        pub lag: i64,
        /// Error code.
        pub error_code: ErrorCode,
        /// Error message.
        pub error_message: Option<String>,
    }
}

mirror! {
    /// AlterShareGroupOffsets response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AlterShareGroupOffsetsResponse => m::AlterShareGroupOffsetsResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Top-level error.
        pub error_code: ErrorCode,
        /// Its message.
        pub error_message: Option<String>,
        /// Topics.
        pub responses: Vec<AlterShareGroupOffsetsTopicResponse>,
    }
}

mirror! {
    /// One topic of an AlterShareGroupOffsets response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AlterShareGroupOffsetsTopicResponse =>
        m::alter_share_group_offsets_response::AlterShareGroupOffsetsResponseTopic
    {
        /// Topic name.
        pub topic_name: String,
        /// Topic id.
        pub topic_id: Uuid,
        /// Partitions.
        pub partitions: Vec<ShareGroupPartitionResult>,
    }
}

mirror! {
    /// One partition's result in an AlterShareGroupOffsets response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareGroupPartitionResult =>
        m::alter_share_group_offsets_response::AlterShareGroupOffsetsResponsePartition
    {
        /// Partition index.
        pub partition_index: i32,
        /// Error code.
        pub error_code: ErrorCode,
        /// Error message.
        pub error_message: Option<String>,
    }
}

mirror! {
    /// DeleteShareGroupOffsets response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DeleteShareGroupOffsetsResponse => m::DeleteShareGroupOffsetsResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Top-level error.
        pub error_code: ErrorCode,
        /// Its message.
        pub error_message: Option<String>,
        /// Topics.
        pub responses: Vec<DeleteShareGroupOffsetsTopicResponse>,
    }
}

mirror! {
    /// One topic of a DeleteShareGroupOffsets response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DeleteShareGroupOffsetsTopicResponse =>
        m::delete_share_group_offsets_response::DeleteShareGroupOffsetsResponseTopic
    {
        /// Topic name.
        pub topic_name: String,
        /// Topic id.
        pub topic_id: Uuid,
        /// Error code.
        pub error_code: ErrorCode,
        /// Error message.
        pub error_message: Option<String>,
    }
}

// ---------------------------------------------------------------------------------------
// SASL authentication and SCRAM credentials
// ---------------------------------------------------------------------------------------

mirror! {
    /// SaslHandshake response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct SaslHandshakeResponse => m::SaslHandshakeResponse {
        /// Error code (UNSUPPORTED_SASL_MECHANISM when the mechanism is not enabled).
        pub error_code: ErrorCode,
        /// The mechanisms enabled on this listener.
        pub mechanisms: Vec<String>,
    }
}

mirror! {
    /// SaslAuthenticate response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct SaslAuthenticateResponse => m::SaslAuthenticateResponse {
        /// Error code.
        pub error_code: ErrorCode,
        /// Error message.
        pub error_message: Option<String>,
        /// The server's SASL token.
        pub auth_bytes: Bytes,
        /// Milliseconds until the client must re-authenticate, 0 for never (v1+, KIP-368).
        pub session_lifetime_ms: i64,
    }
}

mirror! {
    /// DescribeUserScramCredentials response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeUserScramCredentialsResponse => m::DescribeUserScramCredentialsResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Top-level error code.
        pub error_code: ErrorCode,
        /// Top-level error message.
        pub error_message: Option<String>,
        /// Per-user results.
        pub results: Vec<DescribeUserScramCredentialsResult>,
    }
}

mirror! {
    /// One user of a DescribeUserScramCredentials response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeUserScramCredentialsResult => m::describe_user_scram_credentials_response::DescribeUserScramCredentialsResult {
        /// User name.
        pub user: String,
        /// Error code.
        pub error_code: ErrorCode,
        /// Error message.
        pub error_message: Option<String>,
        /// The user's credentials (mechanism and iterations only).
        pub credential_infos: Vec<ScramCredentialInfo>,
    }
}

mirror! {
    /// One credential of a user: mechanism (1: SCRAM-SHA-256, 2: SCRAM-SHA-512) and iterations.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct ScramCredentialInfo => m::describe_user_scram_credentials_response::CredentialInfo {
        /// Mechanism.
        pub mechanism: i8,
        /// PBKDF2 iterations.
        pub iterations: i32,
    }
}

mirror! {
    /// AlterUserScramCredentials response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AlterUserScramCredentialsResponse => m::AlterUserScramCredentialsResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Per-user results.
        pub results: Vec<AlterUserScramCredentialsResult>,
    }
}

mirror! {
    /// One user of an AlterUserScramCredentials response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AlterUserScramCredentialsResult => m::alter_user_scram_credentials_response::AlterUserScramCredentialsResult {
        /// User name.
        pub user: String,
        /// Error code.
        pub error_code: ErrorCode,
        /// Error message.
        pub error_message: Option<String>,
    }
}

// ---------------------------------------------------------------------------------------
// ACLs
// ---------------------------------------------------------------------------------------

mirror! {
    /// DescribeAcls response: the matching ACLs grouped by resource pattern.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeAclsResponse => m::DescribeAclsResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Error code (`SECURITY_DISABLED` without an authorizer).
        pub error_code: ErrorCode,
        /// Error message.
        pub error_message: Option<String>,
        /// Resource patterns and their ACLs.
        pub resources: Vec<DescribeAclsResource>,
    }
}

mirror! {
    /// One resource pattern of a DescribeAcls response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeAclsResource => m::describe_acls_response::DescribeAclsResource {
        /// Resource type.
        pub resource_type: i8,
        /// Resource name.
        pub resource_name: String,
        /// Pattern type.
        pub pattern_type: i8,
        /// The ACLs of this pattern.
        pub acls: Vec<AclDescription>,
    }
}

mirror! {
    /// One ACL of a resource pattern.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AclDescription => m::describe_acls_response::AclDescription {
        /// Principal.
        pub principal: String,
        /// Host.
        pub host: String,
        /// Operation.
        pub operation: i8,
        /// Permission.
        pub permission_type: i8,
    }
}

mirror! {
    /// CreateAcls response: one result per creation, in request order.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct CreateAclsResponse => m::CreateAclsResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Results.
        pub results: Vec<AclCreationResult>,
    }
}

mirror! {
    /// The result of one ACL creation.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AclCreationResult => m::create_acls_response::AclCreationResult {
        /// Error code.
        pub error_code: ErrorCode,
        /// Error message.
        pub error_message: Option<String>,
    }
}

mirror! {
    /// DeleteAcls response: one result per filter, in request order.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DeleteAclsResponse => m::DeleteAclsResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Results.
        pub filter_results: Vec<DeleteAclsFilterResult>,
    }
}

mirror! {
    /// The result of one DeleteAcls filter.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DeleteAclsFilterResult => m::delete_acls_response::DeleteAclsFilterResult {
        /// Error code.
        pub error_code: ErrorCode,
        /// Error message.
        pub error_message: Option<String>,
        /// The ACLs the filter deleted.
        pub matching_acls: Vec<DeleteAclsMatchingAcl>,
    }
}

mirror! {
    /// One ACL deleted by a filter.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DeleteAclsMatchingAcl => m::delete_acls_response::DeleteAclsMatchingAcl {
        /// Error code.
        pub error_code: ErrorCode,
        /// Error message.
        pub error_message: Option<String>,
        /// Resource type.
        pub resource_type: i8,
        /// Resource name.
        pub resource_name: String,
        /// Pattern type.
        pub pattern_type: i8,
        /// Principal.
        pub principal: String,
        /// Host.
        pub host: String,
        /// Operation.
        pub operation: i8,
        /// Permission.
        pub permission_type: i8,
    }
}

// ---------------------------------------------------------------------------------------
// Client quotas (KIP-546)
// ---------------------------------------------------------------------------------------

mirror! {
    /// DescribeClientQuotas response.
    #[derive(Debug, Clone, PartialEq, Default)]
    pub struct DescribeClientQuotasResponse => m::DescribeClientQuotasResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Error code.
        pub error_code: ErrorCode,
        /// Error message.
        pub error_message: Option<String>,
        /// The matching entities and their quotas (`None` on error).
        pub entries: Option<Vec<QuotaEntry>>,
    }
}

mirror! {
    /// One entity and its quota values.
    #[derive(Debug, Clone, PartialEq, Default)]
    pub struct QuotaEntry => m::describe_client_quotas_response::EntryData {
        /// The entity's components.
        pub entity: Vec<crate::requests::QuotaEntityComponent>,
        /// Its values.
        pub values: Vec<QuotaValue>,
    }
}

mirror! {
    /// One quota value.
    #[derive(Debug, Clone, PartialEq, Default)]
    pub struct QuotaValue => m::describe_client_quotas_response::ValueData {
        /// The quota's name.
        pub key: String,
        /// Its value.
        pub value: f64,
    }
}

mirror! {
    /// AlterClientQuotas response: one result per entry, in request order.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AlterClientQuotasResponse => m::AlterClientQuotasResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Results.
        pub entries: Vec<QuotaAlterationResult>,
    }
}

mirror! {
    /// The result of one entity's changes.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct QuotaAlterationResult => m::alter_client_quotas_response::EntryData {
        /// Error code.
        pub error_code: ErrorCode,
        /// Error message.
        pub error_message: Option<String>,
        /// The entity.
        pub entity: Vec<crate::requests::QuotaEntityComponent>,
    }
}

macro_rules! throttled {
    ($($variant:ident),* $(;)? unthrottled: $($none:ident),*) => {
        impl Response {
            /// Sets the response's `throttle_time_ms` (quotas, KIP-219). Returns `false` for the
            /// responses without one (SASL, the inter-broker Raft APIs).
            pub fn set_throttle_time_ms(&mut self, throttle_time_ms: i32) -> bool {
                match self {
                    $(Response::$variant(r) => {
                        r.throttle_time_ms = throttle_time_ms;
                        true
                    })*
                    $(Response::$none(_) => false,)*
                }
            }
        }
    };
}

throttled! {
    Produce, Fetch, ListOffsets, Metadata, OffsetCommit, OffsetFetch, FindCoordinator, JoinGroup,
    Heartbeat, LeaveGroup, SyncGroup, DescribeGroups, ListGroups, ApiVersions, CreateTopics,
    DeleteTopics, DeleteRecords, InitProducerId, OffsetForLeaderEpoch, DescribeAcls, CreateAcls,
    DeleteAcls, DescribeConfigs, AlterConfigs, CreatePartitions, DeleteGroups, ElectLeaders,
    IncrementalAlterConfigs, AlterPartitionReassignments, ListPartitionReassignments, OffsetDelete,
    DescribeClientQuotas, AlterClientQuotas, DescribeUserScramCredentials,
    AlterUserScramCredentials, DescribeCluster, ConsumerGroupHeartbeat, ConsumerGroupDescribe,
    ShareGroupHeartbeat, ShareGroupDescribe, ShareFetch, ShareAcknowledge,
    DescribeShareGroupOffsets, AlterShareGroupOffsets, DeleteShareGroupOffsets, AddPartitionsToTxn,
    AddOffsetsToTxn, EndTxn, TxnOffsetCommit, DescribeTransactions, ListTransactions,
    DescribeTopicPartitions, DescribeLogDirs, AlterReplicaLogDirs, ListConfigResources,
    DescribeProducers;
    unthrottled: SaslHandshake, SaslAuthenticate, Vote, BeginQuorumEpoch, EndQuorumEpoch, DescribeQuorum,
    WriteTxnMarkers, InitializeShareGroupState, ReadShareGroupState, WriteShareGroupState, DeleteShareGroupState,
    ReadShareGroupStateSummary
}

// ---------------------------------------------------------------------------------------
// Share group state (inter-broker persister APIs)
// ---------------------------------------------------------------------------------------

pub use crate::requests::ShareStateBatch;

mirror! {
    /// The result of one partition of InitializeShareGroupState, WriteShareGroupState or
    /// DeleteShareGroupState.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareStatePartitionResult =>
        m::initialize_share_group_state_response::PartitionResult,
        m::write_share_group_state_response::PartitionResult,
        m::delete_share_group_state_response::PartitionResult
    {
        /// Partition index.
        pub partition: i32,
        /// Error code.
        pub error_code: ErrorCode,
        /// Error message.
        pub error_message: Option<String>,
    }
}

mirror! {
    /// One topic of an InitializeShareGroupState, WriteShareGroupState or DeleteShareGroupState
    /// response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShareStateTopicResult =>
        m::initialize_share_group_state_response::InitializeStateResult,
        m::write_share_group_state_response::WriteStateResult,
        m::delete_share_group_state_response::DeleteStateResult
    {
        /// Topic id.
        pub topic_id: Uuid,
        /// Partitions.
        pub partitions: Vec<ShareStatePartitionResult>,
    }
}

mirror! {
    /// InitializeShareGroupState response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct InitializeShareGroupStateResponse => m::InitializeShareGroupStateResponse {
        /// Topics.
        pub results: Vec<ShareStateTopicResult>,
    }
}

mirror! {
    /// WriteShareGroupState response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct WriteShareGroupStateResponse => m::WriteShareGroupStateResponse {
        /// Topics.
        pub results: Vec<ShareStateTopicResult>,
    }
}

mirror! {
    /// DeleteShareGroupState response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DeleteShareGroupStateResponse => m::DeleteShareGroupStateResponse {
        /// Topics.
        pub results: Vec<ShareStateTopicResult>,
    }
}

mirror! {
    /// ReadShareGroupState response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ReadShareGroupStateResponse => m::ReadShareGroupStateResponse {
        /// Topics.
        pub results: Vec<ReadShareStateTopicResult>,
    }
}

mirror! {
    /// One topic of a ReadShareGroupState response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ReadShareStateTopicResult => m::read_share_group_state_response::ReadStateResult {
        /// Topic id.
        pub topic_id: Uuid,
        /// Partitions.
        pub partitions: Vec<ReadShareStatePartitionResult>,
    }
}

mirror! {
    /// One partition of a ReadShareGroupState response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ReadShareStatePartitionResult =>
        m::read_share_group_state_response::PartitionResult
    {
        /// Partition index.
        pub partition: i32,
        /// Error code.
        pub error_code: ErrorCode,
        /// Error message.
        pub error_message: Option<String>,
        /// The state epoch.
        pub state_epoch: i32,
        /// The start offset (-1: no state).
        pub start_offset: i64,
        /// The state of the offsets from the start offset on.
        pub state_batches: Vec<ShareStateBatch>,
        /// Weir's dead-letter intent, if the state has one (see the broker's `share::records`).
        pub weir: WeirTag as unknown_tagged_fields,
    }
}

mirror! {
    /// ReadShareGroupStateSummary response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ReadShareGroupStateSummaryResponse => m::ReadShareGroupStateSummaryResponse {
        /// Topics.
        pub results: Vec<ReadShareStateSummaryTopicResult>,
    }
}

mirror! {
    /// One topic of a ReadShareGroupStateSummary response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ReadShareStateSummaryTopicResult =>
        m::read_share_group_state_summary_response::ReadStateSummaryResult
    {
        /// Topic id.
        pub topic_id: Uuid,
        /// Partitions.
        pub partitions: Vec<ReadShareStateSummaryPartitionResult>,
    }
}

mirror! {
    /// One partition of a ReadShareGroupStateSummary response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ReadShareStateSummaryPartitionResult =>
        m::read_share_group_state_summary_response::PartitionResult
    {
        /// Partition index.
        pub partition: i32,
        /// Error code.
        pub error_code: ErrorCode,
        /// Error message.
        pub error_message: Option<String>,
        /// The state epoch.
        pub state_epoch: i32,
        /// The leader epoch of the last writer.
        pub leader_epoch: i32,
        /// The start offset (-1: no state).
        pub start_offset: i64,
        /// Offsets at or after the start offset whose delivery is complete (v1+, KIP-1226; -1:
        /// not known).
        pub delivery_complete_count: i32,
        /// Weir's count of records parked below the start offset (see the broker's
        /// `share::persister`).
        pub weir: WeirTag as unknown_tagged_fields,
    }
}

// ---------------------------------------------------------------------------------------
// Topic and log directory descriptions (KIP-966, KIP-113)
// ---------------------------------------------------------------------------------------

mirror! {
    /// DescribeTopicPartitions response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeTopicPartitionsResponse => m::DescribeTopicPartitionsResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Topics, in name order.
        pub topics: Vec<DescribeTopicPartitionsResponseTopic>,
        /// Where the next page starts; `None` when this is the last.
        pub next_cursor: Option<crate::requests::DescribeTopicPartitionsCursor>,
    }
}

mirror! {
    /// A topic of a DescribeTopicPartitions response.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeTopicPartitionsResponseTopic => m::describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic {
        /// Error code.
        pub error_code: ErrorCode,
        /// Topic name.
        pub name: Option<String>,
        /// Topic id.
        pub topic_id: Uuid,
        /// Internal topic.
        pub is_internal: bool,
        /// Partitions.
        pub partitions: Vec<DescribeTopicPartitionsResponsePartition>,
        /// Authorized operations (always computed for this API).
        pub topic_authorized_operations: i32,
    }
}
kp_default!(DescribeTopicPartitionsResponseTopic => m::describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic);

mirror! {
    /// A partition of a DescribeTopicPartitions response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeTopicPartitionsResponsePartition => m::describe_topic_partitions_response::DescribeTopicPartitionsResponsePartition {
        /// Error code.
        pub error_code: ErrorCode,
        /// Partition index.
        pub partition_index: i32,
        /// Leader (-1 = none).
        pub leader_id: i32,
        /// Leader epoch.
        pub leader_epoch: i32,
        /// Replicas.
        pub replica_nodes: Vec<i32>,
        /// In-sync replicas.
        pub isr_nodes: Vec<i32>,
        /// Eligible leader replicas (KIP-966); `None` when not used.
        pub eligible_leader_replicas: Option<Vec<i32>>,
        /// Last known eligible leader replicas; `None` when not used.
        pub last_known_elr: Option<Vec<i32>>,
        /// Offline replicas.
        pub offline_replicas: Vec<i32>,
    }
}

mirror! {
    /// DescribeProducers response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeProducersResponse => m::DescribeProducersResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Per-topic answers.
        pub topics: Vec<DescribeProducersTopicResponse>,
    }
}

mirror! {
    /// A topic of a DescribeProducers response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeProducersTopicResponse => m::describe_producers_response::TopicResponse {
        /// Topic name.
        pub name: String,
        /// Per-partition answers.
        pub partitions: Vec<DescribeProducersPartitionResponse>,
    }
}

mirror! {
    /// A partition of a DescribeProducers response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeProducersPartitionResponse => m::describe_producers_response::PartitionResponse {
        /// Partition index.
        pub partition_index: i32,
        /// Error code.
        pub error_code: ErrorCode,
        /// Its message.
        pub error_message: Option<String>,
        /// The producers the partition holds state for.
        pub active_producers: Vec<ActiveProducer>,
    }
}

mirror! {
    /// A producer's state in one partition, as DescribeProducers gives it.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ActiveProducer => m::describe_producers_response::ProducerState {
        /// Producer id.
        pub producer_id: i64,
        /// Producer epoch.
        pub producer_epoch: i32,
        /// The last sequence number appended (-1: none).
        pub last_sequence: i32,
        /// The max timestamp of its last batch, ms (-1: unknown).
        pub last_timestamp: i64,
        /// The epoch of the coordinator whose marker the partition last took (-1: none).
        pub coordinator_epoch: i32,
        /// The first offset of its open transaction here (-1: none).
        pub current_txn_start_offset: i64,
    }
}

mirror! {
    /// DescribeQuorum response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeQuorumResponse => m::DescribeQuorumResponse {
        /// Top-level error (v2+; e.g. CLUSTER_AUTHORIZATION_FAILED).
        pub error_code: ErrorCode,
        /// Its message (v2+).
        pub error_message: Option<String>,
        /// Per-topic answers.
        pub topics: Vec<DescribeQuorumTopicResponse>,
    }
}

mirror! {
    /// A topic of a DescribeQuorum response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeQuorumTopicResponse => m::describe_quorum_response::TopicData {
        /// Topic name.
        pub topic_name: String,
        /// Per-partition answers.
        pub partitions: Vec<DescribeQuorumPartitionResponse>,
    }
}

mirror! {
    /// A partition of a DescribeQuorum response: the quorum's leader and its replicas.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeQuorumPartitionResponse => m::describe_quorum_response::PartitionData {
        /// Partition index.
        pub partition_index: i32,
        /// Error code.
        pub error_code: ErrorCode,
        /// Its message (v2+).
        pub error_message: Option<String>,
        /// The leader's id (-1: none).
        pub leader_id: i32,
        /// The leader's epoch.
        pub leader_epoch: i32,
        /// The high watermark.
        pub high_watermark: i64,
        /// The voters.
        pub current_voters: Vec<QuorumReplicaState>,
        /// The observers.
        pub observers: Vec<QuorumReplicaState>,
    }
}

mirror! {
    /// A replica of the metadata quorum, as DescribeQuorum describes it.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct QuorumReplicaState => m::describe_quorum_response::ReplicaState {
        /// The replica's node id.
        pub replica_id: i32,
        /// Its log end offset (-1: unknown).
        pub log_end_offset: i64,
        /// When it last fetched, ms since the epoch (v1+; -1: unknown).
        pub last_fetch_timestamp: i64,
        /// When it was last caught up, ms since the epoch (v1+; -1: unknown).
        pub last_caught_up_timestamp: i64,
    }
}

mirror! {
    /// DescribeLogDirs response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeLogDirsResponse => m::DescribeLogDirsResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Error code (v3+).
        pub error_code: ErrorCode,
        /// One per log directory.
        pub results: Vec<DescribeLogDirsResult>,
    }
}

mirror! {
    /// One log directory in a DescribeLogDirs response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeLogDirsResult => m::describe_log_dirs_response::DescribeLogDirsResult {
        /// Error code.
        pub error_code: ErrorCode,
        /// Absolute path.
        pub log_dir: String,
        /// Topics with replicas in it.
        pub topics: Vec<DescribeLogDirsTopic>,
        /// Size of the file system (v4+; -1 unknown).
        pub total_bytes: i64,
        /// Free space for the broker (v4+; -1 unknown).
        pub usable_bytes: i64,
    }
}

mirror! {
    /// A topic in a DescribeLogDirs response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeLogDirsTopic => m::describe_log_dirs_response::DescribeLogDirsTopic {
        /// Topic name.
        pub name: String,
        /// Partitions.
        pub partitions: Vec<DescribeLogDirsPartition>,
    }
}

mirror! {
    /// A partition's replica in a DescribeLogDirs response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeLogDirsPartition => m::describe_log_dirs_response::DescribeLogDirsPartition {
        /// Partition index.
        pub partition_index: i32,
        /// Bytes of its log.
        pub partition_size: i64,
        /// How far the replica is behind its leader (0 on the leader).
        pub offset_lag: i64,
        /// A future replica being moved here (never in Weir).
        pub is_future_key: bool,
    }
}

mirror! {
    /// AlterReplicaLogDirs response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AlterReplicaLogDirsResponse => m::AlterReplicaLogDirsResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Results by topic.
        pub results: Vec<AlterReplicaLogDirTopicResult>,
    }
}

mirror! {
    /// A topic's results in an AlterReplicaLogDirs response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AlterReplicaLogDirTopicResult => m::alter_replica_log_dirs_response::AlterReplicaLogDirTopicResult {
        /// Topic name.
        pub topic_name: String,
        /// Partitions.
        pub partitions: Vec<PartitionError>,
    }
}

mirror! {
    /// ListConfigResources response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ListConfigResourcesResponse => m::ListConfigResourcesResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Error code.
        pub error_code: ErrorCode,
        /// The resources.
        pub config_resources: Vec<ListedConfigResource>,
    }
}

mirror! {
    /// A resource in a ListConfigResources response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ListedConfigResource => m::list_config_resources_response::ConfigResource {
        /// Resource name.
        pub resource_name: String,
        /// Resource type (v1+; client metrics before).
        pub resource_type: i8,
    }
}
