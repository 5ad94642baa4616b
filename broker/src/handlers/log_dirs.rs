//! DescribeLogDirs and AlterReplicaLogDirs (KIP-113). A Weir broker has one log directory, its
//! data directory: it describes that one (every local replica's size and lag, the file
//! system's size and free space), and a move of a replica to it is a move to where it already
//! is. Both need the cluster operation Kafka names (DESCRIBE, ALTER).

use std::path::Path;

use weir_protocol::requests::{AlterReplicaLogDirsRequest, DescribeLogDirsRequest};
use weir_protocol::responses::{
    AlterReplicaLogDirTopicResult, AlterReplicaLogDirsResponse, DescribeLogDirsPartition,
    DescribeLogDirsResponse, DescribeLogDirsResult, DescribeLogDirsTopic, PartitionError,
};
use weir_protocol::ErrorCode;

use crate::authz::{AclOperation, Authz};
use crate::broker::Broker;

/// The data directory as Kafka names a log directory: its absolute path.
fn log_dir(broker: &Broker) -> String {
    let path = broker.data.path();
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// DescribeLogDirs: the replicas in the data directory (`topics: None`: all of them; named
/// partitions this broker does not host are left out, as Kafka does).
pub fn describe_log_dirs(
    broker: &Broker,
    az: &Authz,
    r: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    if !az.allows_cluster(AclOperation::Describe) {
        // v3+ carries the error; before, Kafka answers an empty list.
        return DescribeLogDirsResponse {
            error_code: ErrorCode::CLUSTER_AUTHORIZATION_FAILED,
            ..DescribeLogDirsResponse::default()
        };
    }
    let wanted = |topic: &str, index: i32| match &r.topics {
        None => true,
        Some(topics) => topics
            .iter()
            .any(|t| t.topic == topic && t.partitions.contains(&index)),
    };
    let mut topics = Vec::new();
    for topic in broker.topics.all() {
        let partitions: Vec<DescribeLogDirsPartition> = topic
            .local_partitions()
            .filter(|p| wanted(&topic.name, p.index))
            .map(|p| {
                let end = p.log.log_end_offset();
                DescribeLogDirsPartition {
                    partition_index: p.index,
                    partition_size: i64::try_from(p.log.size_bytes()).unwrap_or(i64::MAX),
                    // Kafka's lag of a replica: how far its log end is behind the high
                    // watermark (0 on a leader, whose log end is at or past it).
                    offset_lag: (p.high_watermark() - end).max(0),
                    is_future_key: false,
                }
            })
            .collect();
        if !partitions.is_empty() {
            topics.push(DescribeLogDirsTopic {
                name: topic.name.clone(),
                partitions,
            });
        }
    }
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    let (total_bytes, usable_bytes) = match broker.data.space() {
        Ok(s) => (
            i64::try_from(s.total_bytes).unwrap_or(i64::MAX),
            i64::try_from(s.usable_bytes).unwrap_or(i64::MAX),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the data directory's file system size");
            (-1, -1)
        }
    };
    DescribeLogDirsResponse {
        results: vec![DescribeLogDirsResult {
            error_code: ErrorCode::NONE,
            log_dir: log_dir(broker),
            topics,
            total_bytes,
            usable_bytes,
        }],
        ..DescribeLogDirsResponse::default()
    }
}

/// AlterReplicaLogDirs: only the data directory exists, so a replica hosted here is already in
/// it (`NONE`); another path is `LOG_DIR_NOT_FOUND`, a replica not hosted here
/// `REPLICA_NOT_AVAILABLE`, as Kafka answers them.
pub fn alter_replica_log_dirs(
    broker: &Broker,
    az: &Authz,
    r: AlterReplicaLogDirsRequest,
) -> AlterReplicaLogDirsResponse {
    let allowed = az.allows_cluster(AclOperation::Alter);
    let ours = log_dir(broker);
    let same_dir = |path: &str| {
        path == ours
            || std::fs::canonicalize(Path::new(path)).is_ok_and(|p| p.display().to_string() == ours)
    };
    let mut results = Vec::new();
    for dir in r.dirs {
        let dir_known = same_dir(&dir.path);
        for t in dir.topics {
            let topic = broker.topics.get(&t.name);
            let partitions = t
                .partitions
                .iter()
                .map(|&partition_index| PartitionError {
                    partition_index,
                    error_code: if !allowed {
                        ErrorCode::CLUSTER_AUTHORIZATION_FAILED
                    } else if !dir_known {
                        ErrorCode::LOG_DIR_NOT_FOUND
                    } else if topic
                        .as_ref()
                        .is_some_and(|t| t.partition(partition_index).is_some())
                    {
                        ErrorCode::NONE
                    } else {
                        ErrorCode::REPLICA_NOT_AVAILABLE
                    },
                })
                .collect();
            results.push(AlterReplicaLogDirTopicResult {
                topic_name: t.name,
                partitions,
            });
        }
    }
    AlterReplicaLogDirsResponse {
        results,
        ..AlterReplicaLogDirsResponse::default()
    }
}
