//! The cluster APIs on a single node, over a real socket to the built binary.
//!
//! - The inter-broker Raft APIs (Vote, BeginQuorumEpoch, EndQuorumEpoch) are not advertised and
//!   a client that sends one anyway gets `UNKNOWN_SERVER_ERROR` on a connection that stays
//!   usable, not a closed socket.
//! - The cluster admin APIs (ElectLeaders, AlterPartitionReassignments,
//!   ListPartitionReassignments) are advertised and answer as a one-broker Kafka cluster does:
//!   every partition already has its preferred leader, the only possible replica set is the one
//!   it has, and nothing is being moved.

use crate::common::kafka::Conn;
use crate::common::Broker;
use weir_protocol::{
    api_key as k, AlterPartitionReassignmentsRequest, ApiVersionsRequest, BeginQuorumEpochRequest,
    ElectLeadersRequest, ElectLeadersTopic, EndQuorumEpochRequest, ErrorCode,
    ListPartitionReassignmentsRequest, ReassignablePartition, ReassignableTopic, Request, Response,
    VotePartition, VoteRequest, VoteTopic,
};

const INTER_BROKER: [i16; 3] = [k::VOTE, k::BEGIN_QUORUM_EPOCH, k::END_QUORUM_EPOCH];
const CLUSTER_ADMIN: [i16; 3] = [
    k::ELECT_LEADERS,
    k::ALTER_PARTITION_REASSIGNMENTS,
    k::LIST_PARTITION_REASSIGNMENTS,
];

fn advertised(conn: &mut Conn) -> Vec<i16> {
    let Response::ApiVersions(r) = conn.call(Request::ApiVersions(ApiVersionsRequest::default()))
    else {
        panic!("not an ApiVersions response");
    };
    assert_eq!(r.error_code, ErrorCode::NONE);
    r.api_keys.iter().map(|a| a.api_key).collect()
}

#[test]
fn inter_broker_apis_are_not_advertised_and_refused_on_a_single_node() {
    let broker = Broker::start(&[]);
    let mut conn = Conn::connect(broker.kafka);
    let listed = advertised(&mut conn);
    for key in INTER_BROKER {
        assert!(!listed.contains(&key), "api {key} is advertised");
    }
    assert!(listed.contains(&k::FETCH));

    let vote = conn.call(Request::Vote(VoteRequest {
        cluster_id: None,
        voter_id: 1,
        topics: vec![VoteTopic {
            topic_name: "orders".into(),
            partitions: vec![VotePartition {
                partition_index: 0,
                replica_epoch: 3,
                replica_id: 2,
                last_offset_epoch: 2,
                last_offset: 10,
                pre_vote: true,
            }],
        }],
    }));
    let Response::Vote(vote) = vote else {
        panic!("not a Vote response: {vote:?}");
    };
    assert_eq!(vote.error_code, ErrorCode::UNKNOWN_SERVER_ERROR);
    assert!(vote.topics.is_empty(), "no vote is granted: {vote:?}");

    let begin = conn.call(Request::BeginQuorumEpoch(BeginQuorumEpochRequest::default()));
    assert!(
        matches!(&begin, Response::BeginQuorumEpoch(r) if r.error_code == ErrorCode::UNKNOWN_SERVER_ERROR),
        "{begin:?}"
    );
    let end = conn.call(Request::EndQuorumEpoch(EndQuorumEpochRequest::default()));
    assert!(
        matches!(&end, Response::EndQuorumEpoch(r) if r.error_code == ErrorCode::UNKNOWN_SERVER_ERROR),
        "{end:?}"
    );
    // The connection still serves ordinary requests.
    assert_eq!(advertised(&mut conn), listed);
}

#[test]
fn cluster_admin_apis_answer_as_a_one_broker_cluster() {
    let broker = Broker::start(&[]);
    let mut conn = Conn::connect(broker.kafka);
    let listed = advertised(&mut conn);
    for key in CLUSTER_ADMIN {
        assert!(listed.contains(&key), "api {key} is not advertised");
    }
    conn.create_topic("orders", 2, &[]);

    let elect = conn.call(Request::ElectLeaders(ElectLeadersRequest {
        election_type: 0,
        topic_partitions: Some(vec![
            ElectLeadersTopic {
                topic: "orders".into(),
                partitions: vec![0, 1, 7],
            },
            ElectLeadersTopic {
                topic: "missing".into(),
                partitions: vec![0],
            },
        ]),
        timeout_ms: 5_000,
    }));
    let Response::ElectLeaders(elect) = elect else {
        panic!("not an ElectLeaders response: {elect:?}");
    };
    assert_eq!(elect.error_code, ErrorCode::NONE);
    let codes: Vec<(String, i32, ErrorCode)> = elect
        .replica_election_results
        .iter()
        .flat_map(|t| {
            t.partition_result
                .iter()
                .map(|p| (t.topic.clone(), p.partition_id, p.error_code))
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            ("orders".into(), 0, ErrorCode::ELECTION_NOT_NEEDED),
            ("orders".into(), 1, ErrorCode::ELECTION_NOT_NEEDED),
            ("orders".into(), 7, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
            ("missing".into(), 0, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
        ]
    );
    // Every partition: those needing nothing are left out, as Kafka does.
    let all = conn.call(Request::ElectLeaders(ElectLeadersRequest {
        topic_partitions: None,
        ..Default::default()
    }));
    assert!(
        matches!(&all, Response::ElectLeaders(r) if r.error_code == ErrorCode::NONE && r.replica_election_results.is_empty()),
        "{all:?}"
    );

    let reassign = |conn: &mut Conn, replicas: Option<Vec<i32>>| {
        let r = conn.call(Request::AlterPartitionReassignments(
            AlterPartitionReassignmentsRequest {
                topics: vec![ReassignableTopic {
                    name: "orders".into(),
                    partitions: vec![ReassignablePartition {
                        partition_index: 0,
                        replicas,
                    }],
                }],
                ..Default::default()
            },
        ));
        let Response::AlterPartitionReassignments(r) = r else {
            panic!("not an AlterPartitionReassignments response: {r:?}");
        };
        assert_eq!(r.error_code, ErrorCode::NONE);
        r.responses[0].partitions[0].error_code
    };
    // The replica set it has: nothing to do.
    assert_eq!(reassign(&mut conn, Some(vec![0])), ErrorCode::NONE);
    // Brokers that do not exist.
    assert_eq!(
        reassign(&mut conn, Some(vec![1, 2, 3])),
        ErrorCode::INVALID_REPLICA_ASSIGNMENT
    );
    assert_eq!(
        reassign(&mut conn, Some(vec![0, 0])),
        ErrorCode::INVALID_REPLICA_ASSIGNMENT
    );
    // Cancelling when nothing moves.
    assert_eq!(
        reassign(&mut conn, None),
        ErrorCode::NO_REASSIGNMENT_IN_PROGRESS
    );

    let list = conn.call(Request::ListPartitionReassignments(
        ListPartitionReassignmentsRequest::default(),
    ));
    assert!(
        matches!(&list, Response::ListPartitionReassignments(r) if r.error_code == ErrorCode::NONE && r.topics.is_empty()),
        "{list:?}"
    );
}
