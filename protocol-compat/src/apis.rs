//! The one table of the APIs Weir serves, and everything generated from it: the
//! [`api_key`] constants, the [`Request`] and [`Response`] enums and their `api_key()`, the
//! version table ApiVersions advertises, and the decode/encode dispatch of both the broker
//! side (`codec`) and the client side (`client`).
//!
//! An entry with `mirror(KpRequest, KpResponse)` is converted entirely by
//! [`crate::mirror::Mirror`]: its request and response types are declared with
//! [`crate::mirror::mirror!`] and nothing else is written by hand. An entry without it is
//! converted by the hand-written `decode_custom`/`encode_custom` in `codec` and `client`,
//! which the APIs whose shape changes between versions need (Metadata's "all topics",
//! OffsetFetch's batched groups, FindCoordinator's batched keys, LeaveGroup's member list,
//! Produce v0-2). See "Adding an API" in docs/protocol.md.
//!
//! An entry with `advertise = false` is served (decoded, encoded, on both sides) but not listed
//! in ApiVersions: the inter-broker Raft APIs, which only Weir brokers send, and APIs whose
//! broker side is not written yet, so that clients keep treating them as unsupported.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages as m;

#[allow(unused_imports)] // used by the generated arms of mirrored entries
use crate::mirror::{ErrorCodes, Mirror, Sample};
use crate::requests::*;
use crate::responses::*;
use crate::transactions::*;

macro_rules! apis {
    ($(
        $key:ident = $num:literal: $variant:ident($req:ident, $resp:ident), $min:literal..=$max:literal
            $(, advertise = $advertise:literal)?
            $(, mirror($kpreq:path, $kpresp:path))?;
    )*) => {
        /// Kafka API keys (only the ones Weir serves have named constants).
        pub mod api_key {
            $(
                #[doc = concat!(stringify!($variant), ".")]
                pub const $key: i16 = $num;
            )*
        }

        /// A decoded request body.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Request {
            $(
                #[doc = concat!(stringify!($variant), " (", stringify!($num), ").")]
                $variant($req),
            )*
        }

        impl Request {
            /// The API key of this request.
            pub fn api_key(&self) -> i16 {
                match self {
                    $(Request::$variant(_) => api_key::$key,)*
                }
            }
        }

        /// A response body, to be encoded at the request's version by
        /// [`crate::encode_response`].
        #[derive(Debug, Clone, PartialEq)]
        pub enum Response {
            $(
                #[doc = concat!(stringify!($variant), " (", stringify!($num), ").")]
                $variant($resp),
            )*
        }

        impl Response {
            /// The API key of this response.
            pub fn api_key(&self) -> i16 {
                match self {
                    $(Response::$variant(_) => api_key::$key,)*
                }
            }

            /// The `Default` response of `api_key`, or `None` if Weir does not serve it.
            pub fn default_for(api_key: i16) -> Option<Response> {
                match api_key {
                    $(api_key::$key => Some(Response::$variant(Default::default())),)*
                    _ => None,
                }
            }
        }

        /// Kafka's name of a served API (`"Fetch"`), or `None` if Weir does not serve it.
        pub fn api_name(key: i16) -> Option<&'static str> {
            match key {
                $(api_key::$key => Some(stringify!($variant)),)*
                _ => None,
            }
        }

        /// `(api_key, min_version, max_version)`, in the table's order (sorted by key): every
        /// API decoded and encoded, advertised or not.
        pub(crate) static SUPPORTED: &[(i16, i16, i16)] = &[$((api_key::$key, $min, $max),)*];

        /// Whether ApiVersions lists `key`. Entries with `advertise = false` are decoded and
        /// encoded like any other, but clients are not told about them (yet).
        pub(crate) fn advertised(key: i16) -> bool {
            match key {
                $(api_key::$key => apis!(@advertise $($advertise)?),)*
                _ => false,
            }
        }

        /// Broker side: the body of a request of `key` at version `v`.
        pub(crate) fn decode_request_body(key: i16, v: i16, b: &mut Bytes) -> Result<Request, String> {
            match key {
                $(api_key::$key => apis!(@decode Request $variant crate::codec::decode_custom; key v b; $($kpreq)?),)*
                other => Err(format!("api key {other} has no decoder")),
            }
        }

        /// Broker side: the body of `response` at version `v`.
        pub(crate) fn encode_response_body(out: &mut BytesMut, v: i16, response: &Response) -> Result<(), String> {
            match response {
                $(Response::$variant(r) => apis!(@encode r crate::codec::encode_custom; out v response; $($kpresp)?),)*
            }
        }

        /// Client side: the version the client speaks for `key`. Mirrored APIs use the newest
        /// version served.
        pub(crate) fn client_version(key: i16) -> Option<i16> {
            match key {
                $(api_key::$key => apis!(@client_version key $max; $($kpreq)?),)*
                _ => None,
            }
        }

        /// Client side: the body of `request` at version `v`.
        pub(crate) fn encode_request_body(out: &mut BytesMut, v: i16, request: &Request) -> Result<(), String> {
            match request {
                $(Request::$variant(r) => apis!(@encode r crate::client::encode_custom; out v request; $($kpreq)?),)*
            }
        }

        /// Client side: the body of a response to a request of `key` at version `v`.
        pub(crate) fn decode_response_body(key: i16, v: i16, b: &mut Bytes) -> Result<Response, String> {
            match key {
                $(api_key::$key => apis!(@decode Response $variant crate::client::decode_custom; key v b; $($kpresp)?),)*
                other => Err(format!("api key {other} is not implemented by the client")),
            }
        }

        /// The error codes of a mirrored response into `out`; `false` for the hand-written APIs,
        /// whose codes `response_errors` collects.
        pub(crate) fn mirrored_error_codes(response: &Response, out: &mut Vec<crate::ErrorCode>) -> bool {
            match response {
                $(Response::$variant(r) => apis!(@errors r out; $($kpresp)?),)*
            }
        }

        /// A request of `key` with every field set, for mirrored APIs (`None` for the others).
        pub(crate) fn sample_request(key: i16) -> Option<Request> {
            match key {
                $(api_key::$key => apis!(@sample Request $variant $req; $($kpreq)?),)*
                _ => None,
            }
        }

        /// A response of `key` with every field set, for mirrored APIs (`None` for the others).
        pub(crate) fn sample_response(key: i16) -> Option<Response> {
            match key {
                $(api_key::$key => apis!(@sample Response $variant $resp; $($kpresp)?),)*
                _ => None,
            }
        }
    };

    (@decode $enum:ident $variant:ident $fallback:path; $key:ident $v:ident $b:ident; $kp:path) => {{
        let msg: $kp = crate::codec::kp($b, $v)?;
        Ok($enum::$variant(Mirror::from_kp(msg)))
    }};
    (@decode $enum:ident $variant:ident $fallback:path; $key:ident $v:ident $b:ident;) => {
        $fallback($key, $v, $b)
    };
    (@encode $r:ident $fallback:path; $out:ident $v:ident $whole:ident; $kp:path) => {{
        let msg: $kp = Mirror::to_kp($r);
        crate::codec::put($out, $v, &msg)
    }};
    (@encode $r:ident $fallback:path; $out:ident $v:ident $whole:ident;) => {{
        let _ = $r;
        $fallback($out, $v, $whole)
    }};
    (@errors $r:ident $out:ident; $kp:path) => {{
        ErrorCodes::error_codes($r, $out);
        true
    }};
    (@errors $r:ident $out:ident;) => {{
        let _ = $r;
        false
    }};
    (@advertise) => {
        true
    };
    (@advertise $advertise:literal) => {
        $advertise
    };
    (@client_version $key:ident $max:literal; $kp:path) => {
        Some($max)
    };
    (@client_version $key:ident $max:literal;) => {
        crate::client::custom_client_version($key)
    };
    (@sample $enum:ident $variant:ident $ty:ident; $kp:path) => {
        Some($enum::$variant(<$ty as Sample>::sample()))
    };
    (@sample $enum:ident $variant:ident $ty:ident;) => {
        None
    };
}

// Ranges are those of Kafka 3.9 at the bottom (old clients keep working: the versions Kafka 4.0
// removed, KIP-896, that the vendored kafka-protocol 0.18 cannot decode are rewritten by
// `removed_versions` or, for Produce, Fetch and ListOffsets, decoded by `legacy`) and of Kafka
// 4.1 at the top (Fetch 17: v18's high watermark in the request is KIP-1166, after 4.1). Sorted
// by api key.
apis! {
    // Produce advertises 0 although only magic-2 batches are accepted by the broker:
    // librdkafka < 2.11.1 disables compression when the broker's minimum is above 0.
    // v12 only says the client speaks transaction protocol 2 (KIP-890): a transactional batch
    // adds its partition to the transaction by itself. v13 names topics by id (KIP-516), as
    // Fetch does from v13 on.
    PRODUCE = 0: Produce(ProduceRequest, ProduceResponse), 0..=13;
    FETCH = 1: Fetch(FetchRequest, FetchResponse), 0..=17;
    LIST_OFFSETS = 2: ListOffsets(ListOffsetsRequest, ListOffsetsResponse), 0..=10;
    METADATA = 3: Metadata(MetadataRequest, MetadataResponse), 0..=13;
    OFFSET_COMMIT = 8: OffsetCommit(OffsetCommitRequest, OffsetCommitResponse), 0..=9;
    OFFSET_FETCH = 9: OffsetFetch(OffsetFetchRequest, OffsetFetchResponse), 0..=9;
    FIND_COORDINATOR = 10: FindCoordinator(FindCoordinatorRequest, FindCoordinatorResponse), 0..=6;
    JOIN_GROUP = 11: JoinGroup(JoinGroupRequest, JoinGroupResponse), 0..=9;
    HEARTBEAT = 12: Heartbeat(HeartbeatRequest, HeartbeatResponse), 0..=4,
        mirror(m::HeartbeatRequest, m::HeartbeatResponse);
    LEAVE_GROUP = 13: LeaveGroup(LeaveGroupRequest, LeaveGroupResponse), 0..=5;
    SYNC_GROUP = 14: SyncGroup(SyncGroupRequest, SyncGroupResponse), 0..=5;
    DESCRIBE_GROUPS = 15: DescribeGroups(DescribeGroupsRequest, DescribeGroupsResponse), 0..=6,
        mirror(m::DescribeGroupsRequest, m::DescribeGroupsResponse);
    LIST_GROUPS = 16: ListGroups(ListGroupsRequest, ListGroupsResponse), 0..=5,
        mirror(m::ListGroupsRequest, m::ListGroupsResponse);
    SASL_HANDSHAKE = 17: SaslHandshake(SaslHandshakeRequest, SaslHandshakeResponse), 0..=1,
        mirror(m::SaslHandshakeRequest, m::SaslHandshakeResponse);
    API_VERSIONS = 18: ApiVersions(ApiVersionsRequest, ApiVersionsResponse), 0..=4;
    CREATE_TOPICS = 19: CreateTopics(CreateTopicsRequest, CreateTopicsResponse), 0..=7;
    DELETE_TOPICS = 20: DeleteTopics(DeleteTopicsRequest, DeleteTopicsResponse), 0..=6;
    DELETE_RECORDS = 21: DeleteRecords(DeleteRecordsRequest, DeleteRecordsResponse), 0..=2,
        mirror(m::DeleteRecordsRequest, m::DeleteRecordsResponse);
    INIT_PRODUCER_ID = 22: InitProducerId(InitProducerIdRequest, InitProducerIdResponse), 0..=5;
    OFFSET_FOR_LEADER_EPOCH = 23: OffsetForLeaderEpoch(OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse), 0..=4,
        mirror(m::OffsetForLeaderEpochRequest, m::OffsetForLeaderEpochResponse);
    // Transactions (KIP-98; v4+ of AddPartitionsToTxn and v5 of EndTxn are KIP-890's protocol 2).
    ADD_PARTITIONS_TO_TXN = 24: AddPartitionsToTxn(AddPartitionsToTxnRequest, AddPartitionsToTxnResponse), 0..=5,
        mirror(m::AddPartitionsToTxnRequest, m::AddPartitionsToTxnResponse);
    ADD_OFFSETS_TO_TXN = 25: AddOffsetsToTxn(AddOffsetsToTxnRequest, AddOffsetsToTxnResponse), 0..=4,
        mirror(m::AddOffsetsToTxnRequest, m::AddOffsetsToTxnResponse);
    END_TXN = 26: EndTxn(EndTxnRequest, EndTxnResponse), 0..=5,
        mirror(m::EndTxnRequest, m::EndTxnResponse);
    // Coordinator to partition leader; v0 was removed by Kafka 4.0 (KIP-896).
    WRITE_TXN_MARKERS = 27: WriteTxnMarkers(WriteTxnMarkersRequest, WriteTxnMarkersResponse), 1..=1,
        mirror(m::WriteTxnMarkersRequest, m::WriteTxnMarkersResponse);
    TXN_OFFSET_COMMIT = 28: TxnOffsetCommit(TxnOffsetCommitRequest, TxnOffsetCommitResponse), 0..=5,
        mirror(m::TxnOffsetCommitRequest, m::TxnOffsetCommitResponse);
    DESCRIBE_ACLS = 29: DescribeAcls(DescribeAclsRequest, DescribeAclsResponse), 0..=3,
        mirror(m::DescribeAclsRequest, m::DescribeAclsResponse);
    CREATE_ACLS = 30: CreateAcls(CreateAclsRequest, CreateAclsResponse), 0..=3,
        mirror(m::CreateAclsRequest, m::CreateAclsResponse);
    DELETE_ACLS = 31: DeleteAcls(DeleteAclsRequest, DeleteAclsResponse), 0..=3,
        mirror(m::DeleteAclsRequest, m::DeleteAclsResponse);
    DESCRIBE_CONFIGS = 32: DescribeConfigs(DescribeConfigsRequest, DescribeConfigsResponse), 0..=4;
    ALTER_CONFIGS = 33: AlterConfigs(AlterConfigsRequest, AlterConfigsResponse), 0..=2;
    // Log directories (KIP-113): Weir has one, the data directory.
    ALTER_REPLICA_LOG_DIRS = 34: AlterReplicaLogDirs(AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse), 0..=2,
        mirror(m::AlterReplicaLogDirsRequest, m::AlterReplicaLogDirsResponse);
    DESCRIBE_LOG_DIRS = 35: DescribeLogDirs(DescribeLogDirsRequest, DescribeLogDirsResponse), 0..=4,
        mirror(m::DescribeLogDirsRequest, m::DescribeLogDirsResponse);
    SASL_AUTHENTICATE = 36: SaslAuthenticate(SaslAuthenticateRequest, SaslAuthenticateResponse), 0..=2,
        mirror(m::SaslAuthenticateRequest, m::SaslAuthenticateResponse);
    CREATE_PARTITIONS = 37: CreatePartitions(CreatePartitionsRequest, CreatePartitionsResponse), 0..=3;
    DELETE_GROUPS = 42: DeleteGroups(DeleteGroupsRequest, DeleteGroupsResponse), 0..=2,
        mirror(m::DeleteGroupsRequest, m::DeleteGroupsResponse);
    // Admin APIs of the cluster (preferred-leader election, reassignment).
    ELECT_LEADERS = 43: ElectLeaders(ElectLeadersRequest, ElectLeadersResponse), 0..=2,
        mirror(m::ElectLeadersRequest, m::ElectLeadersResponse);
    INCREMENTAL_ALTER_CONFIGS = 44: IncrementalAlterConfigs(IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse), 0..=1;
    ALTER_PARTITION_REASSIGNMENTS = 45: AlterPartitionReassignments(AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse), 0..=1,
        mirror(m::AlterPartitionReassignmentsRequest, m::AlterPartitionReassignmentsResponse);
    LIST_PARTITION_REASSIGNMENTS = 46: ListPartitionReassignments(ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse), 0..=0,
        mirror(m::ListPartitionReassignmentsRequest, m::ListPartitionReassignmentsResponse);
    OFFSET_DELETE = 47: OffsetDelete(OffsetDeleteRequest, OffsetDeleteResponse), 0..=0,
        mirror(m::OffsetDeleteRequest, m::OffsetDeleteResponse);
    // Client quotas (KIP-546).
    DESCRIBE_CLIENT_QUOTAS = 48: DescribeClientQuotas(DescribeClientQuotasRequest, DescribeClientQuotasResponse), 0..=1,
        mirror(m::DescribeClientQuotasRequest, m::DescribeClientQuotasResponse);
    ALTER_CLIENT_QUOTAS = 49: AlterClientQuotas(AlterClientQuotasRequest, AlterClientQuotasResponse), 0..=1,
        mirror(m::AlterClientQuotasRequest, m::AlterClientQuotasResponse);
    DESCRIBE_USER_SCRAM_CREDENTIALS = 50: DescribeUserScramCredentials(DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse), 0..=0,
        mirror(m::DescribeUserScramCredentialsRequest, m::DescribeUserScramCredentialsResponse);
    ALTER_USER_SCRAM_CREDENTIALS = 51: AlterUserScramCredentials(AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse), 0..=0,
        mirror(m::AlterUserScramCredentialsRequest, m::AlterUserScramCredentialsResponse);
    // Inter-broker Raft APIs (KIP-595, KIP-996 pre-vote): only Weir brokers send them.
    VOTE = 52: Vote(VoteRequest, VoteResponse), 0..=2, advertise = false,
        mirror(m::VoteRequest, m::VoteResponse);
    BEGIN_QUORUM_EPOCH = 53: BeginQuorumEpoch(BeginQuorumEpochRequest, BeginQuorumEpochResponse), 0..=1, advertise = false,
        mirror(m::BeginQuorumEpochRequest, m::BeginQuorumEpochResponse);
    END_QUORUM_EPOCH = 54: EndQuorumEpoch(EndQuorumEpochRequest, EndQuorumEpochResponse), 0..=1, advertise = false,
        mirror(m::EndQuorumEpochRequest, m::EndQuorumEpochResponse);
    // KIP-595/853. Weir has no KRaft quorum: the broker describes its metadata authority.
    DESCRIBE_QUORUM = 55: DescribeQuorum(DescribeQuorumRequest, DescribeQuorumResponse), 0..=2,
        mirror(m::DescribeQuorumRequest, m::DescribeQuorumResponse);
    DESCRIBE_CLUSTER = 60: DescribeCluster(DescribeClusterRequest, DescribeClusterResponse), 0..=2,
        mirror(m::DescribeClusterRequest, m::DescribeClusterResponse);
    // KIP-664 (kafka-transactions.sh describe-producers).
    DESCRIBE_PRODUCERS = 61: DescribeProducers(DescribeProducersRequest, DescribeProducersResponse), 0..=0,
        mirror(m::DescribeProducersRequest, m::DescribeProducersResponse);
    DESCRIBE_TRANSACTIONS = 65: DescribeTransactions(DescribeTransactionsRequest, DescribeTransactionsResponse), 0..=0,
        mirror(m::DescribeTransactionsRequest, m::DescribeTransactionsResponse);
    LIST_TRANSACTIONS = 66: ListTransactions(ListTransactionsRequest, ListTransactionsResponse), 0..=2,
        mirror(m::ListTransactionsRequest, m::ListTransactionsResponse);
    CONSUMER_GROUP_HEARTBEAT = 68: ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse), 0..=1,
        mirror(m::ConsumerGroupHeartbeatRequest, m::ConsumerGroupHeartbeatResponse);
    CONSUMER_GROUP_DESCRIBE = 69: ConsumerGroupDescribe(ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse), 0..=1,
        mirror(m::ConsumerGroupDescribeRequest, m::ConsumerGroupDescribeResponse);
    // KIP-1142 (v0 was KIP-714's ListClientMetricsResources).
    LIST_CONFIG_RESOURCES = 74: ListConfigResources(ListConfigResourcesRequest, ListConfigResourcesResponse), 0..=1,
        mirror(m::ListConfigResourcesRequest, m::ListConfigResourcesResponse);
    // KIP-966: topics' partitions, paged (Kafka's admin client's describeTopics).
    DESCRIBE_TOPIC_PARTITIONS = 75: DescribeTopicPartitions(DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse), 0..=0,
        mirror(m::DescribeTopicPartitionsRequest, m::DescribeTopicPartitionsResponse);
    // Share groups (KIP-932) at the versions Kafka 4.1 serves (v0 was 4.0's early access); ShareFetch
    // and ShareAcknowledge also at Kafka 4.2's v2 (KIP-1206 acquire modes, KIP-1222 renewals; the
    // vendored crate is patched for them, see vendor/kafka-protocol/VENDORED.md).
    SHARE_GROUP_HEARTBEAT = 76: ShareGroupHeartbeat(ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse), 1..=1,
        mirror(m::ShareGroupHeartbeatRequest, m::ShareGroupHeartbeatResponse);
    SHARE_GROUP_DESCRIBE = 77: ShareGroupDescribe(ShareGroupDescribeRequest, ShareGroupDescribeResponse), 1..=1,
        mirror(m::ShareGroupDescribeRequest, m::ShareGroupDescribeResponse);
    SHARE_FETCH = 78: ShareFetch(ShareFetchRequest, ShareFetchResponse), 1..=2,
        mirror(m::ShareFetchRequest, m::ShareFetchResponse);
    SHARE_ACKNOWLEDGE = 79: ShareAcknowledge(ShareAcknowledgeRequest, ShareAcknowledgeResponse), 1..=2,
        mirror(m::ShareAcknowledgeRequest, m::ShareAcknowledgeResponse);
    // The share group state persister (KIP-932): only Weir brokers send them, to the owner of a
    // share-partition's state.
    INITIALIZE_SHARE_GROUP_STATE = 83: InitializeShareGroupState(InitializeShareGroupStateRequest, InitializeShareGroupStateResponse), 0..=0, advertise = false,
        mirror(m::InitializeShareGroupStateRequest, m::InitializeShareGroupStateResponse);
    READ_SHARE_GROUP_STATE = 84: ReadShareGroupState(ReadShareGroupStateRequest, ReadShareGroupStateResponse), 0..=0, advertise = false,
        mirror(m::ReadShareGroupStateRequest, m::ReadShareGroupStateResponse);
    WRITE_SHARE_GROUP_STATE = 85: WriteShareGroupState(WriteShareGroupStateRequest, WriteShareGroupStateResponse), 0..=0, advertise = false,
        mirror(m::WriteShareGroupStateRequest, m::WriteShareGroupStateResponse);
    DELETE_SHARE_GROUP_STATE = 86: DeleteShareGroupState(DeleteShareGroupStateRequest, DeleteShareGroupStateResponse), 0..=0, advertise = false,
        mirror(m::DeleteShareGroupStateRequest, m::DeleteShareGroupStateResponse);
    READ_SHARE_GROUP_STATE_SUMMARY = 87: ReadShareGroupStateSummary(ReadShareGroupStateSummaryRequest, ReadShareGroupStateSummaryResponse), 0..=1, advertise = false,
        mirror(m::ReadShareGroupStateSummaryRequest, m::ReadShareGroupStateSummaryResponse);
    DESCRIBE_SHARE_GROUP_OFFSETS = 90: DescribeShareGroupOffsets(DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsetsResponse), 0..=1,
        mirror(m::DescribeShareGroupOffsetsRequest, m::DescribeShareGroupOffsetsResponse);
    ALTER_SHARE_GROUP_OFFSETS = 91: AlterShareGroupOffsets(AlterShareGroupOffsetsRequest, AlterShareGroupOffsetsResponse), 0..=0,
        mirror(m::AlterShareGroupOffsetsRequest, m::AlterShareGroupOffsetsResponse);
    DELETE_SHARE_GROUP_OFFSETS = 92: DeleteShareGroupOffsets(DeleteShareGroupOffsetsRequest, DeleteShareGroupOffsetsResponse), 0..=0,
        mirror(m::DeleteShareGroupOffsetsRequest, m::DeleteShareGroupOffsetsResponse);
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiKey;

    #[test]
    fn table_is_sorted_and_within_what_kafka_protocol_decodes() {
        assert!(SUPPORTED.windows(2).all(|w| w[0].0 < w[1].0));
        for &(key, min, max) in SUPPORTED {
            let range = ApiKey::try_from(key)
                .unwrap_or_else(|_| panic!("kafka-protocol knows api key {key}"))
                .valid_versions();
            // Produce v0-2, Fetch v0-3 and ListOffsets v0 are decoded and encoded by hand
            // (`legacy`); the other versions Kafka 4 removed are rewritten into the oldest
            // the crate has (`removed_versions`).
            let min = match key {
                api_key::PRODUCE => min.max(3),
                api_key::FETCH => min.max(4),
                api_key::LIST_OFFSETS => min.max(1),
                _ => crate::removed_versions::served_as(key, min).unwrap_or(min),
            };
            assert!(
                min <= max && range.min <= min && max <= range.max,
                "api key {key}: {min}..={max} outside {range:?}"
            );
        }
    }
}
