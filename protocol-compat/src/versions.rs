//! The API keys and version ranges Weir serves.
//!
//! Ranges are capped at what the vendored kafka-protocol 0.18 can decode (plus the old
//! Produce and Fetch versions hand-written in `legacy`), and at the newest version whose
//! shape Weir's types represent without topic ids (Fetch stops at 12 because v13+
//! addresses topics by id only).

use crate::responses::ApiVersionRange;

/// Kafka API keys (only the ones Weir serves have named constants).
pub mod api_key {
    /// Produce.
    pub const PRODUCE: i16 = 0;
    /// Fetch.
    pub const FETCH: i16 = 1;
    /// ListOffsets.
    pub const LIST_OFFSETS: i16 = 2;
    /// Metadata.
    pub const METADATA: i16 = 3;
    /// OffsetCommit.
    pub const OFFSET_COMMIT: i16 = 8;
    /// OffsetFetch.
    pub const OFFSET_FETCH: i16 = 9;
    /// FindCoordinator.
    pub const FIND_COORDINATOR: i16 = 10;
    /// JoinGroup.
    pub const JOIN_GROUP: i16 = 11;
    /// Heartbeat.
    pub const HEARTBEAT: i16 = 12;
    /// LeaveGroup.
    pub const LEAVE_GROUP: i16 = 13;
    /// SyncGroup.
    pub const SYNC_GROUP: i16 = 14;
    /// DescribeGroups.
    pub const DESCRIBE_GROUPS: i16 = 15;
    /// ListGroups.
    pub const LIST_GROUPS: i16 = 16;
    /// ApiVersions.
    pub const API_VERSIONS: i16 = 18;
    /// CreateTopics.
    pub const CREATE_TOPICS: i16 = 19;
    /// DeleteTopics.
    pub const DELETE_TOPICS: i16 = 20;
    /// DeleteRecords.
    pub const DELETE_RECORDS: i16 = 21;
    /// InitProducerId.
    pub const INIT_PRODUCER_ID: i16 = 22;
    /// OffsetForLeaderEpoch.
    pub const OFFSET_FOR_LEADER_EPOCH: i16 = 23;
    /// DescribeConfigs.
    pub const DESCRIBE_CONFIGS: i16 = 32;
    /// AlterConfigs.
    pub const ALTER_CONFIGS: i16 = 33;
    /// CreatePartitions.
    pub const CREATE_PARTITIONS: i16 = 37;
    /// DeleteGroups.
    pub const DELETE_GROUPS: i16 = 42;
    /// IncrementalAlterConfigs.
    pub const INCREMENTAL_ALTER_CONFIGS: i16 = 44;
    /// OffsetDelete.
    pub const OFFSET_DELETE: i16 = 47;
    /// DescribeCluster.
    pub const DESCRIBE_CLUSTER: i16 = 60;
}

use api_key as k;

/// `(api_key, min_version, max_version)`, sorted by api key.
static SUPPORTED: &[(i16, i16, i16)] = &[
    // Produce v0-2 carry message formats 0 and 1, which the broker up-converts to magic 2.
    (k::PRODUCE, 0, 11),
    // Fetch v0-3 (hand-written in `legacy`) read message formats 0 and 1: the broker down-converts.
    (k::FETCH, 0, 12),
    // ListOffsets v0 (hand-written in `legacy`) is what clients of the 0.9 protocol send.
    (k::LIST_OFFSETS, 0, 7),
    (k::METADATA, 0, 12),
    (k::OFFSET_COMMIT, 2, 9),
    (k::OFFSET_FETCH, 1, 9),
    (k::FIND_COORDINATOR, 0, 4),
    (k::JOIN_GROUP, 2, 9),
    (k::HEARTBEAT, 0, 4),
    (k::LEAVE_GROUP, 0, 5),
    (k::SYNC_GROUP, 0, 5),
    (k::DESCRIBE_GROUPS, 0, 5),
    (k::LIST_GROUPS, 0, 4),
    (k::API_VERSIONS, 0, 4),
    (k::CREATE_TOPICS, 2, 7),
    (k::DELETE_TOPICS, 1, 6),
    (k::DELETE_RECORDS, 0, 2),
    (k::INIT_PRODUCER_ID, 0, 5),
    (k::OFFSET_FOR_LEADER_EPOCH, 2, 4),
    (k::DESCRIBE_CONFIGS, 1, 4),
    (k::ALTER_CONFIGS, 0, 2),
    (k::CREATE_PARTITIONS, 0, 3),
    (k::DELETE_GROUPS, 0, 2),
    (k::INCREMENTAL_ALTER_CONFIGS, 0, 1),
    (k::OFFSET_DELETE, 0, 0),
    (k::DESCRIBE_CLUSTER, 0, 1),
];

/// `(api_key, min_version, max_version)` of everything Weir serves, sorted by api key.
/// This is exactly what ApiVersions advertises.
pub fn supported_apis() -> &'static [(i16, i16, i16)] {
    SUPPORTED
}

/// The supported version range of `api_key`, or `None` if Weir does not serve it.
pub fn supported_range(api_key: i16) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(key, _, _)| *key == api_key)
        .map(|&(_, min, max)| (min, max))
}

/// [`supported_apis`] as ApiVersions entries.
pub(crate) fn supported_api_ranges() -> Vec<ApiVersionRange> {
    SUPPORTED
        .iter()
        .map(|&(api_key, min_version, max_version)| ApiVersionRange {
            api_key,
            min_version,
            max_version,
        })
        .collect()
}
