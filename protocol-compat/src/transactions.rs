//! The transaction APIs (KIP-98, KIP-664, KIP-890): requests and responses of AddPartitionsToTxn,
//! AddOffsetsToTxn, EndTxn, WriteTxnMarkers (inter-broker), TxnOffsetCommit,
//! DescribeTransactions and ListTransactions, all mirrored field by field (see `mirror`).
//! InitProducerId, which existed before transactions were served, lives in `requests` and
//! `responses`.

use kafka_protocol::messages as m;

use crate::error::ErrorCode;
use crate::mirror::{kp_default, mirror, ErrorCodes, Mirror, Sample};

// ---------------------------------------------------------------------------------------
// AddPartitionsToTxn (v0-5). v0-3 carry one transaction in top-level fields; v4+ a batch of
// them, each possibly `verify_only` (KIP-890: a partition leader asking the coordinator whether
// a partition is in the transaction). Both shapes are kept; the broker normalizes.
// ---------------------------------------------------------------------------------------

/// AddPartitionsToTxn request (v0-5), in one shape: a v0-3 request is the one transaction of
/// its top-level fields (with `verify_only` false).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddPartitionsToTxnRequest {
    /// The transactions.
    pub transactions: Vec<AddPartitionsToTxnTransaction>,
}

impl Mirror<m::AddPartitionsToTxnRequest> for AddPartitionsToTxnRequest {
    fn to_kp(&self) -> m::AddPartitionsToTxnRequest {
        // Both shapes are filled: the encoder keeps the one of the version it writes.
        let mut k = m::AddPartitionsToTxnRequest::default();
        k.transactions = self.transactions.to_kp();
        if let Some(first) = self.transactions.first() {
            k.v3_and_below_transactional_id = first.transactional_id.to_kp();
            k.v3_and_below_producer_id = first.producer_id.to_kp();
            k.v3_and_below_producer_epoch = first.producer_epoch;
            k.v3_and_below_topics = first.topics.to_kp();
        }
        k
    }
    fn from_kp(k: m::AddPartitionsToTxnRequest) -> Self {
        let mut transactions: Vec<AddPartitionsToTxnTransaction> = Mirror::from_kp(k.transactions);
        let v3_id: String = Mirror::from_kp(k.v3_and_below_transactional_id);
        if transactions.is_empty() && (!v3_id.is_empty() || !k.v3_and_below_topics.is_empty()) {
            transactions.push(AddPartitionsToTxnTransaction {
                transactional_id: v3_id,
                producer_id: Mirror::from_kp(k.v3_and_below_producer_id),
                producer_epoch: k.v3_and_below_producer_epoch,
                verify_only: false,
                topics: Mirror::from_kp(k.v3_and_below_topics),
            });
        }
        AddPartitionsToTxnRequest { transactions }
    }
}

impl Sample for AddPartitionsToTxnRequest {
    fn sample() -> Self {
        AddPartitionsToTxnRequest {
            transactions: Sample::sample(),
        }
    }
}

impl ErrorCodes for AddPartitionsToTxnRequest {}

mirror! {
    /// One transaction of an AddPartitionsToTxn request (v4+).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AddPartitionsToTxnTransaction => m::add_partitions_to_txn_request::AddPartitionsToTxnTransaction {
        /// Transactional id.
        pub transactional_id: String,
        /// Producer id.
        pub producer_id: i64,
        /// Producer epoch.
        pub producer_epoch: i16,
        /// Only check that the partitions are in the transaction; add nothing.
        pub verify_only: bool,
        /// The partitions.
        pub topics: Vec<AddPartitionsToTxnTopic>,
    }
}

mirror! {
    /// Partitions of one topic to add to a transaction.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AddPartitionsToTxnTopic => m::add_partitions_to_txn_request::AddPartitionsToTxnTopic {
        /// Topic name.
        pub name: String,
        /// Partition indexes.
        pub partitions: Vec<i32>,
    }
}

/// AddPartitionsToTxn response, in one shape: at v0-3 the first transaction's results are
/// sent (a v0-3 request has exactly one).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddPartitionsToTxnResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Top-level error (v4+).
    pub error_code: ErrorCode,
    /// Results per transaction.
    pub results_by_transaction: Vec<AddPartitionsToTxnResult>,
}

impl Mirror<m::AddPartitionsToTxnResponse> for AddPartitionsToTxnResponse {
    fn to_kp(&self) -> m::AddPartitionsToTxnResponse {
        let mut k = m::AddPartitionsToTxnResponse::default();
        k.throttle_time_ms = self.throttle_time_ms;
        k.error_code = self.error_code.to_kp();
        k.results_by_transaction = self.results_by_transaction.to_kp();
        if let Some(first) = self.results_by_transaction.first() {
            k.results_by_topic_v3_and_below = first.topic_results.to_kp();
        }
        k
    }
    fn from_kp(k: m::AddPartitionsToTxnResponse) -> Self {
        let mut results_by_transaction: Vec<AddPartitionsToTxnResult> =
            Mirror::from_kp(k.results_by_transaction);
        if results_by_transaction.is_empty() && !k.results_by_topic_v3_and_below.is_empty() {
            results_by_transaction.push(AddPartitionsToTxnResult {
                transactional_id: String::new(),
                topic_results: Mirror::from_kp(k.results_by_topic_v3_and_below),
            });
        }
        AddPartitionsToTxnResponse {
            throttle_time_ms: k.throttle_time_ms,
            error_code: Mirror::from_kp(k.error_code),
            results_by_transaction,
        }
    }
}

impl Sample for AddPartitionsToTxnResponse {
    fn sample() -> Self {
        AddPartitionsToTxnResponse {
            throttle_time_ms: Sample::sample(),
            error_code: Sample::sample(),
            results_by_transaction: Sample::sample(),
        }
    }
}

impl ErrorCodes for AddPartitionsToTxnResponse {
    fn error_codes(&self, out: &mut Vec<ErrorCode>) {
        self.error_code.error_codes(out);
        self.results_by_transaction.error_codes(out);
    }
}

mirror! {
    /// The results of one transaction (v4+).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AddPartitionsToTxnResult => m::add_partitions_to_txn_response::AddPartitionsToTxnResult {
        /// Transactional id.
        pub transactional_id: String,
        /// Per-topic results.
        pub topic_results: Vec<AddPartitionsToTxnTopicResult>,
    }
}

mirror! {
    /// The results of one topic.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AddPartitionsToTxnTopicResult => m::add_partitions_to_txn_response::AddPartitionsToTxnTopicResult {
        /// Topic name.
        pub name: String,
        /// Per-partition results.
        pub results_by_partition: Vec<AddPartitionsToTxnPartitionResult>,
    }
}

mirror! {
    /// The result of one partition.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AddPartitionsToTxnPartitionResult => m::add_partitions_to_txn_response::AddPartitionsToTxnPartitionResult {
        /// Partition index.
        pub partition_index: i32,
        /// Error code.
        pub partition_error_code: ErrorCode,
    }
}

// ---------------------------------------------------------------------------------------
// AddOffsetsToTxn (v0-4), EndTxn (v0-5)
// ---------------------------------------------------------------------------------------

mirror! {
    /// AddOffsetsToTxn request (v0-4).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AddOffsetsToTxnRequest => m::AddOffsetsToTxnRequest {
        /// Transactional id.
        pub transactional_id: String,
        /// Producer id.
        pub producer_id: i64,
        /// Producer epoch.
        pub producer_epoch: i16,
        /// The group whose offsets the transaction will commit.
        pub group_id: String,
    }
}

mirror! {
    /// AddOffsetsToTxn response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct AddOffsetsToTxnResponse => m::AddOffsetsToTxnResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Error code.
        pub error_code: ErrorCode,
    }
}

mirror! {
    /// EndTxn request (v0-5; v5 is transaction protocol 2 of KIP-890).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct EndTxnRequest => m::EndTxnRequest {
        /// Transactional id.
        pub transactional_id: String,
        /// Producer id.
        pub producer_id: i64,
        /// Producer epoch.
        pub producer_epoch: i16,
        /// Commit (`true`) or abort.
        pub committed: bool,
    }
}

mirror! {
    /// EndTxn response.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct EndTxnResponse => m::EndTxnResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Error code.
        pub error_code: ErrorCode,
        /// The producer id for the next transaction (v5+).
        pub producer_id: i64,
        /// The producer epoch for the next transaction (v5+).
        pub producer_epoch: i16,
    }
}
kp_default!(EndTxnResponse => m::EndTxnResponse);

// ---------------------------------------------------------------------------------------
// WriteTxnMarkers (v1; v0 was removed by Kafka 4.0): coordinator to partition leader.
// ---------------------------------------------------------------------------------------

mirror! {
    /// WriteTxnMarkers request (v1).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct WriteTxnMarkersRequest => m::WriteTxnMarkersRequest {
        /// The markers to write.
        pub markers: Vec<WritableTxnMarker>,
    }
}

mirror! {
    /// One transaction's marker, for some partitions.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct WritableTxnMarker => m::write_txn_markers_request::WritableTxnMarker {
        /// Producer id.
        pub producer_id: i64,
        /// Producer epoch.
        pub producer_epoch: i16,
        /// Commit (`true`) or abort.
        pub transaction_result: bool,
        /// The partitions.
        pub topics: Vec<WritableTxnMarkerTopic>,
        /// The epoch of the coordinator writing it.
        pub coordinator_epoch: i32,
    }
}

mirror! {
    /// Partitions of one topic to write a marker to.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct WritableTxnMarkerTopic => m::write_txn_markers_request::WritableTxnMarkerTopic {
        /// Topic name.
        pub name: String,
        /// Partition indexes.
        pub partition_indexes: Vec<i32>,
    }
}

mirror! {
    /// WriteTxnMarkers response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct WriteTxnMarkersResponse => m::WriteTxnMarkersResponse {
        /// Results per marker.
        pub markers: Vec<WritableTxnMarkerResult>,
    }
}

mirror! {
    /// The results of one marker.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct WritableTxnMarkerResult => m::write_txn_markers_response::WritableTxnMarkerResult {
        /// Producer id.
        pub producer_id: i64,
        /// Per-topic results.
        pub topics: Vec<WritableTxnMarkerTopicResult>,
    }
}

mirror! {
    /// The results of one topic.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct WritableTxnMarkerTopicResult => m::write_txn_markers_response::WritableTxnMarkerTopicResult {
        /// Topic name.
        pub name: String,
        /// Per-partition results.
        pub partitions: Vec<WritableTxnMarkerPartitionResult>,
    }
}

mirror! {
    /// The result of one partition.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct WritableTxnMarkerPartitionResult => m::write_txn_markers_response::WritableTxnMarkerPartitionResult {
        /// Partition index.
        pub partition_index: i32,
        /// Error code.
        pub error_code: ErrorCode,
    }
}

// ---------------------------------------------------------------------------------------
// TxnOffsetCommit (v0-5)
// ---------------------------------------------------------------------------------------

mirror! {
    /// TxnOffsetCommit request (v0-5).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TxnOffsetCommitRequest => m::TxnOffsetCommitRequest {
        /// Transactional id.
        pub transactional_id: String,
        /// Group id.
        pub group_id: String,
        /// Producer id.
        pub producer_id: i64,
        /// Producer epoch.
        pub producer_epoch: i16,
        /// Group generation (v3+; -1 before).
        pub generation_id: i32,
        /// Member id (v3+; empty before).
        pub member_id: String,
        /// Static member id (v3+).
        pub group_instance_id: Option<String>,
        /// The offsets.
        pub topics: Vec<TxnOffsetCommitRequestTopic>,
    }
}
kp_default!(TxnOffsetCommitRequest => m::TxnOffsetCommitRequest);

mirror! {
    /// Offsets of one topic.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct TxnOffsetCommitRequestTopic => m::txn_offset_commit_request::TxnOffsetCommitRequestTopic {
        /// Topic name.
        pub name: String,
        /// Partitions.
        pub partitions: Vec<TxnOffsetCommitRequestPartition>,
    }
}

mirror! {
    /// Offset of one partition.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct TxnOffsetCommitRequestPartition => m::txn_offset_commit_request::TxnOffsetCommitRequestPartition {
        /// Partition index.
        pub partition_index: i32,
        /// Offset.
        pub committed_offset: i64,
        /// Leader epoch (v2+; -1 before).
        pub committed_leader_epoch: i32,
        /// Metadata.
        pub committed_metadata: Option<String>,
    }
}

mirror! {
    /// TxnOffsetCommit response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct TxnOffsetCommitResponse => m::TxnOffsetCommitResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Per-topic results.
        pub topics: Vec<TxnOffsetCommitResponseTopic>,
    }
}

mirror! {
    /// Results of one topic.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct TxnOffsetCommitResponseTopic => m::txn_offset_commit_response::TxnOffsetCommitResponseTopic {
        /// Topic name.
        pub name: String,
        /// Per-partition results.
        pub partitions: Vec<TxnOffsetCommitResponsePartition>,
    }
}

mirror! {
    /// Result of one partition.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct TxnOffsetCommitResponsePartition => m::txn_offset_commit_response::TxnOffsetCommitResponsePartition {
        /// Partition index.
        pub partition_index: i32,
        /// Error code.
        pub error_code: ErrorCode,
    }
}

// ---------------------------------------------------------------------------------------
// DescribeTransactions (v0), ListTransactions (v0-2)
// ---------------------------------------------------------------------------------------

mirror! {
    /// DescribeTransactions request (v0).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeTransactionsRequest => m::DescribeTransactionsRequest {
        /// The transactional ids to describe.
        pub transactional_ids: Vec<String>,
    }
}

mirror! {
    /// DescribeTransactions response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribeTransactionsResponse => m::DescribeTransactionsResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// One state per transactional id asked for.
        pub transaction_states: Vec<DescribedTransaction>,
    }
}

mirror! {
    /// One described transaction.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribedTransaction => m::describe_transactions_response::TransactionState {
        /// Error code.
        pub error_code: ErrorCode,
        /// Transactional id.
        pub transactional_id: String,
        /// Kafka's state name (`Ongoing`, `CompleteCommit`, ...).
        pub transaction_state: String,
        /// Transaction timeout.
        pub transaction_timeout_ms: i32,
        /// When the ongoing transaction started (-1 if none).
        pub transaction_start_time_ms: i64,
        /// Producer id.
        pub producer_id: i64,
        /// Producer epoch.
        pub producer_epoch: i16,
        /// The partitions in the transaction.
        pub topics: Vec<DescribedTransactionTopic>,
    }
}

mirror! {
    /// The partitions of one topic in a described transaction.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DescribedTransactionTopic => m::describe_transactions_response::TopicData {
        /// Topic name.
        pub topic: String,
        /// Partition indexes.
        pub partitions: Vec<i32>,
    }
}

mirror! {
    /// ListTransactions request (v0-2).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ListTransactionsRequest => m::ListTransactionsRequest {
        /// Only these states (empty: all).
        pub state_filters: Vec<String>,
        /// Only these producer ids (empty: all).
        pub producer_id_filters: Vec<i64>,
        /// Only transactions running longer than this (v1+; -1: all).
        pub duration_filter: i64,
        /// Only transactional ids matching this regular expression (v2+).
        pub transactional_id_pattern: Option<String>,
    }
}
kp_default!(ListTransactionsRequest => m::ListTransactionsRequest);

mirror! {
    /// ListTransactions response.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ListTransactionsResponse => m::ListTransactionsResponse {
        /// Throttle time.
        pub throttle_time_ms: i32,
        /// Error code.
        pub error_code: ErrorCode,
        /// State filters that name no state.
        pub unknown_state_filters: Vec<String>,
        /// The transactions.
        pub transaction_states: Vec<ListedTransaction>,
    }
}

mirror! {
    /// One listed transaction.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ListedTransaction => m::list_transactions_response::TransactionState {
        /// Transactional id.
        pub transactional_id: String,
        /// Producer id.
        pub producer_id: i64,
        /// Kafka's state name.
        pub transaction_state: String,
    }
}
