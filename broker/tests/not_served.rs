//! The cluster APIs the protocol layer decodes before the broker serves them (the inter-broker
//! Raft APIs Vote, BeginQuorumEpoch, EndQuorumEpoch; the admin APIs ElectLeaders,
//! AlterPartitionReassignments, ListPartitionReassignments), over a real socket to the built
//! binary: ApiVersions does not list them, and a client that sends one anyway gets an
//! `UNKNOWN_SERVER_ERROR` answer (with a message where the response has one) on a connection
//! that stays usable, not a closed socket.

mod common;

use common::kafka::Conn;
use common::Broker;
use weir_protocol::{
    api_key as k, AlterPartitionReassignmentsRequest, ApiVersionsRequest, BeginQuorumEpochRequest,
    ElectLeadersRequest, ElectLeadersTopic, EndQuorumEpochRequest, ErrorCode,
    ListPartitionReassignmentsRequest, ReassignablePartition, ReassignableTopic, Request, Response,
    VotePartition, VoteRequest, VoteTopic,
};

const NOT_SERVED: [i16; 6] = [
    k::ELECT_LEADERS,
    k::ALTER_PARTITION_REASSIGNMENTS,
    k::LIST_PARTITION_REASSIGNMENTS,
    k::VOTE,
    k::BEGIN_QUORUM_EPOCH,
    k::END_QUORUM_EPOCH,
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
fn cluster_apis_are_not_advertised_and_answer_not_served() {
    let broker = Broker::start(&[]);
    let mut conn = Conn::connect(broker.kafka);
    let listed = advertised(&mut conn);
    for key in NOT_SERVED {
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

    let elect = conn.call(Request::ElectLeaders(ElectLeadersRequest {
        topic_partitions: Some(vec![ElectLeadersTopic {
            topic: "orders".into(),
            partitions: vec![0, 1],
        }]),
        ..Default::default()
    }));
    let Response::ElectLeaders(elect) = elect else {
        panic!("not an ElectLeaders response: {elect:?}");
    };
    assert_eq!(elect.error_code, ErrorCode::UNKNOWN_SERVER_ERROR);
    let results = &elect.replica_election_results;
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].topic, "orders");
    let partitions: Vec<i32> = results[0]
        .partition_result
        .iter()
        .map(|p| p.partition_id)
        .collect();
    assert_eq!(partitions, vec![0, 1]);
    for p in &results[0].partition_result {
        assert_eq!(p.error_code, ErrorCode::UNKNOWN_SERVER_ERROR);
        let message = p.error_message.as_deref().unwrap_or_default();
        assert!(message.contains("not served yet"), "{message}");
    }

    let alter = conn.call(Request::AlterPartitionReassignments(
        AlterPartitionReassignmentsRequest {
            topics: vec![ReassignableTopic {
                name: "orders".into(),
                partitions: vec![ReassignablePartition {
                    partition_index: 0,
                    replicas: Some(vec![1, 2, 3]),
                }],
            }],
            ..Default::default()
        },
    ));
    let Response::AlterPartitionReassignments(alter) = alter else {
        panic!("not an AlterPartitionReassignments response: {alter:?}");
    };
    assert_eq!(alter.error_code, ErrorCode::UNKNOWN_SERVER_ERROR);
    assert!(alter
        .error_message
        .as_deref()
        .is_some_and(|m| m.contains("not served yet")));

    let list = conn.call(Request::ListPartitionReassignments(
        ListPartitionReassignmentsRequest::default(),
    ));
    let Response::ListPartitionReassignments(list) = list else {
        panic!("not a ListPartitionReassignments response: {list:?}");
    };
    assert_eq!(list.error_code, ErrorCode::UNKNOWN_SERVER_ERROR);
    assert!(list
        .error_message
        .as_deref()
        .is_some_and(|m| m.contains("not served yet")));

    // The connection still serves ordinary requests.
    assert_eq!(advertised(&mut conn), listed);
}
