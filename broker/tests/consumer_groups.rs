//! The consumer group protocol (KIP-848) on the wire, against an in-process broker: the errors
//! clients act on (fencing, unknown members, unreleased instance ids, stale epochs on offset
//! commits), how classic and consumer groups share group ids, and a group surviving a restart.
//! The happy paths with a real client are in tests-compat/test_consumer_protocol.py.

use std::path::PathBuf;

use bytes::Bytes;
use weir_broker::config::BrokerConfig;
use weir_protocol::*;

use crate::common::inproc::InProcess;
use crate::common::kafka::Conn as Client;

fn start(data_dir: PathBuf) -> InProcess {
    InProcess::start(BrokerConfig {
        data_dir,
        group_initial_rebalance_delay_ms: 0,
        ..BrokerConfig::default()
    })
}

trait Heartbeat {
    fn heartbeat(&mut self, r: ConsumerGroupHeartbeatRequest) -> ConsumerGroupHeartbeatResponse;
}

impl Heartbeat for Client {
    fn heartbeat(&mut self, r: ConsumerGroupHeartbeatRequest) -> ConsumerGroupHeartbeatResponse {
        match self.call(Request::ConsumerGroupHeartbeat(r)) {
            Response::ConsumerGroupHeartbeat(r) => r,
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn join(group: &str, member: &str, topics: &[&str]) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        group_id: group.into(),
        member_id: member.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(topics.iter().map(|t| t.to_string()).collect()),
        topic_partitions: Some(Vec::new()),
        ..Default::default()
    }
}

fn beat(group: &str, member: &str, epoch: i32) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        group_id: group.into(),
        member_id: member.into(),
        member_epoch: epoch,
        ..Default::default()
    }
}

fn partitions(r: &ConsumerGroupHeartbeatResponse) -> Vec<i32> {
    r.assignment
        .as_ref()
        .map(|a| {
            a.topic_partitions
                .iter()
                .flat_map(|t| t.partitions.iter().copied())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn heartbeat_errors_are_kafkas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path().to_path_buf());
    let mut c = Client::connect(broker.addr);
    c.create_topic("orders", 2, &[]);

    let joined = c.heartbeat(join("g", "m1", &["orders"]));
    assert_eq!(joined.error_code, ErrorCode::NONE);
    assert_eq!(joined.member_id.as_deref(), Some("m1"));
    assert_eq!(joined.member_epoch, 1);
    assert_eq!(joined.heartbeat_interval_ms, 5_000);
    assert_eq!(partitions(&joined), vec![0, 1]);

    let ahead = c.heartbeat(beat("g", "m1", 7));
    assert_eq!(ahead.error_code, ErrorCode::FENCED_MEMBER_EPOCH);
    let unknown = c.heartbeat(beat("g", "nobody", 1));
    assert_eq!(unknown.error_code, ErrorCode::UNKNOWN_MEMBER_ID);
    let missing_group = c.heartbeat(beat("no-such-group", "m1", 1));
    assert_eq!(missing_group.error_code, ErrorCode::GROUP_ID_NOT_FOUND);

    let no_timeout = c.heartbeat(ConsumerGroupHeartbeatRequest {
        rebalance_timeout_ms: -1,
        ..join("g", "m2", &["orders"])
    });
    assert_eq!(no_timeout.error_code, ErrorCode::INVALID_REQUEST);
    assert_eq!(
        no_timeout.error_message.as_deref(),
        Some("RebalanceTimeoutMs must be provided in first request.")
    );
    let sticky = c.heartbeat(ConsumerGroupHeartbeatRequest {
        server_assignor: Some("sticky".into()),
        ..join("g", "m2", &["orders"])
    });
    assert_eq!(sticky.error_code, ErrorCode::UNSUPPORTED_ASSIGNOR);
    let bad_regex = c.heartbeat(ConsumerGroupHeartbeatRequest {
        subscribed_topic_names: None,
        subscribed_topic_regex: Some("orders(".into()),
        ..join("g", "m2", &[])
    });
    assert_eq!(bad_regex.error_code, ErrorCode::INVALID_REGULAR_EXPRESSION);

    // Static membership: a second process cannot take an instance id that is still in use.
    let a = c.heartbeat(ConsumerGroupHeartbeatRequest {
        instance_id: Some("instance-a".into()),
        ..join("g", "s1", &["orders"])
    });
    assert_eq!(a.error_code, ErrorCode::NONE);
    let intruder = c.heartbeat(ConsumerGroupHeartbeatRequest {
        instance_id: Some("instance-a".into()),
        ..join("g", "s2", &["orders"])
    });
    assert_eq!(intruder.error_code, ErrorCode::UNRELEASED_INSTANCE_ID);
    // Once it left temporarily (-2), a new process with the same instance id takes over.
    let left = c.heartbeat(ConsumerGroupHeartbeatRequest {
        instance_id: Some("instance-a".into()),
        ..beat("g", "s1", -2)
    });
    assert_eq!((left.error_code, left.member_epoch), (ErrorCode::NONE, -2));
    let replaced = c.heartbeat(ConsumerGroupHeartbeatRequest {
        instance_id: Some("instance-a".into()),
        ..join("g", "s2", &["orders"])
    });
    assert_eq!(replaced.error_code, ErrorCode::NONE);
    let old = c.heartbeat(ConsumerGroupHeartbeatRequest {
        instance_id: Some("instance-a".into()),
        ..beat("g", "s1", 2)
    });
    assert_eq!(old.error_code, ErrorCode::FENCED_INSTANCE_ID);
}

fn commit(group: &str, member: &str, epoch: i32, offset: i64) -> Request {
    Request::OffsetCommit(OffsetCommitRequest {
        group_id: group.into(),
        generation_id: epoch,
        member_id: member.into(),
        topics: vec![OffsetCommitTopic {
            name: "orders".into(),
            partitions: vec![OffsetCommitPartition {
                partition_index: 0,
                committed_offset: offset,
                ..Default::default()
            }],
        }],
        ..Default::default()
    })
}

fn commit_error(r: Response) -> ErrorCode {
    match r {
        Response::OffsetCommit(r) => r.topics[0].partitions[0].error_code,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn offset_commits_and_fetches_check_the_member_epoch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path().to_path_buf());
    let mut c = Client::connect(broker.addr);
    c.create_topic("orders", 1, &[]);
    let joined = c.heartbeat(join("g", "m1", &["orders"]));
    assert_eq!(joined.member_epoch, 1);

    assert_eq!(
        commit_error(c.call_at(commit("g", "m1", 0, 5), 9)),
        ErrorCode::STALE_MEMBER_EPOCH
    );
    assert_eq!(
        commit_error(c.call_at(commit("g", "stranger", 1, 5), 9)),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
    // A member of a consumer group commits with v9 or later.
    assert_eq!(
        commit_error(c.call_at(commit("g", "m1", 1, 5), 8)),
        ErrorCode::UNSUPPORTED_VERSION
    );
    assert_eq!(
        commit_error(c.call_at(commit("g", "m1", 1, 5), 9)),
        ErrorCode::NONE
    );

    let fetch = |member: Option<&str>, epoch: i32| {
        Request::OffsetFetch(OffsetFetchRequest {
            groups: vec![OffsetFetchGroup {
                group_id: "g".into(),
                member_id: member.map(str::to_string),
                member_epoch: epoch,
                topics: None,
            }],
            require_stable: false,
        })
    };
    let Response::OffsetFetch(stale) = c.call_at(fetch(Some("m1"), 3), 9) else {
        panic!("unexpected response")
    };
    assert_eq!(stale.groups[0].error_code, ErrorCode::STALE_MEMBER_EPOCH);
    let Response::OffsetFetch(ok) = c.call_at(fetch(Some("m1"), 1), 9) else {
        panic!("unexpected response")
    };
    assert_eq!(ok.groups[0].error_code, ErrorCode::NONE);
    assert_eq!(ok.groups[0].topics[0].partitions[0].committed_offset, 5);
    // Admin clients name no member.
    let Response::OffsetFetch(admin) = c.call_at(fetch(None, -1), 9) else {
        panic!("unexpected response")
    };
    assert_eq!(admin.groups[0].error_code, ErrorCode::NONE);
}

fn classic_join(group: &str, member: &str) -> Request {
    classic_join_as(group, member, "consumer")
}

fn classic_join_as(group: &str, member: &str, protocol_type: &str) -> Request {
    Request::JoinGroup(JoinGroupRequest {
        group_id: group.into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        member_id: member.into(),
        protocol_type: protocol_type.into(),
        protocols: vec![JoinGroupProtocol {
            name: "range".into(),
            metadata: Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        }],
        ..Default::default()
    })
}

#[test]
fn classic_and_consumer_groups_share_the_id_space_as_kafka() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path().to_path_buf());
    let mut c = Client::connect(broker.addr);
    c.create_topic("orders", 1, &[]);
    let joined = c.heartbeat(join("cg", "m1", &["orders"]));
    assert_eq!(joined.error_code, ErrorCode::NONE);

    // A classic member of another protocol than Kafka consumers' cannot join a consumer group
    // (consumers can: see `classic_members_join_a_consumer_group_and_convert_a_classic_one`).
    let Response::JoinGroup(j) = c.call(classic_join_as("cg", "x", "connect")) else {
        panic!("unexpected response")
    };
    assert_eq!(j.error_code, ErrorCode::INCONSISTENT_GROUP_PROTOCOL);

    // DescribeGroups tells the truth from v6; earlier versions see a "Dead" group, as Kafka 4.
    let describe = |groups: &[&str]| {
        Request::DescribeGroups(DescribeGroupsRequest {
            groups: groups.iter().map(|g| g.to_string()).collect(),
            include_authorized_operations: false,
        })
    };
    let Response::DescribeGroups(v6) = c.call_at(describe(&["cg"]), 6) else {
        panic!("unexpected response")
    };
    assert_eq!(v6.groups[0].error_code, ErrorCode::GROUP_ID_NOT_FOUND);
    assert_eq!(
        v6.groups[0].error_message.as_deref(),
        Some("Group cg is not a classic group.")
    );
    let Response::DescribeGroups(v5) = c.call_at(describe(&["cg"]), 5) else {
        panic!("unexpected response")
    };
    assert_eq!(
        (v5.groups[0].error_code, v5.groups[0].group_state.as_str()),
        (ErrorCode::NONE, "Dead")
    );

    // A classic group with a member of another protocol type: not convertible.
    let Response::JoinGroup(first) = c.call(classic_join_as("classic", "", "connect")) else {
        panic!("unexpected response")
    };
    assert_eq!(first.error_code, ErrorCode::MEMBER_ID_REQUIRED);
    let Response::JoinGroup(member) =
        c.call(classic_join_as("classic", &first.member_id, "connect"))
    else {
        panic!("unexpected response")
    };
    assert_eq!(member.error_code, ErrorCode::NONE);
    let refused = c.heartbeat(join("classic", "m9", &["orders"]));
    assert_eq!(refused.error_code, ErrorCode::GROUP_ID_NOT_FOUND);
    assert_eq!(
        refused.error_message.as_deref(),
        Some("Group classic is not a consumer group.")
    );

    // ListGroups v5 reports and filters by type.
    let list = |types: &[&str]| {
        Request::ListGroups(ListGroupsRequest {
            states_filter: Vec::new(),
            types_filter: types.iter().map(|t| t.to_string()).collect(),
        })
    };
    let Response::ListGroups(all) = c.call(list(&[])) else {
        panic!("unexpected response")
    };
    let mut seen: Vec<(String, String, String)> = all
        .groups
        .iter()
        .map(|g| {
            (
                g.group_id.clone(),
                g.group_type.clone(),
                g.protocol_type.clone(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("cg".into(), "consumer".into(), "consumer".into()),
            ("classic".into(), "classic".into(), "connect".into()),
        ]
    );
    let Response::ListGroups(consumer_only) = c.call(list(&["Consumer"])) else {
        panic!("unexpected response")
    };
    let ids: Vec<&str> = consumer_only
        .groups
        .iter()
        .map(|g| g.group_id.as_str())
        .collect();
    assert_eq!(ids, vec!["cg"]);

    // ConsumerGroupDescribe describes consumer groups only.
    let Response::ConsumerGroupDescribe(d) = c.call(Request::ConsumerGroupDescribe(
        ConsumerGroupDescribeRequest {
            group_ids: vec!["cg".into(), "classic".into(), "absent".into()],
            include_authorized_operations: false,
        },
    )) else {
        panic!("unexpected response")
    };
    assert_eq!(d.groups[0].error_code, ErrorCode::NONE);
    assert_eq!(d.groups[0].group_state, "Stable");
    assert_eq!(d.groups[0].members[0].member_id, "m1");
    assert_eq!(
        d.groups[0].members[0].assignment.topic_partitions[0].topic_name,
        "orders"
    );
    assert_eq!(
        d.groups[1].error_message.as_deref(),
        Some("Group classic is not a consumer group.")
    );
    assert_eq!(
        d.groups[2].error_message.as_deref(),
        Some("Group absent not found.")
    );

    // Once the consumer group is empty, a classic member converts it (Kafka's downgrade of an
    // empty group): the join proceeds, asking for a member id as any classic join does.
    let left = c.heartbeat(beat("cg", "m1", -1));
    assert_eq!(left.error_code, ErrorCode::NONE);
    let Response::JoinGroup(converted) = c.call(classic_join("cg", "")) else {
        panic!("unexpected response")
    };
    assert_eq!(converted.error_code, ErrorCode::MEMBER_ID_REQUIRED);
}

fn sync(
    group: &str,
    member: &str,
    generation_id: i32,
    assignments: Vec<SyncGroupAssignment>,
) -> Request {
    Request::SyncGroup(SyncGroupRequest {
        group_id: group.into(),
        generation_id,
        member_id: member.into(),
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments,
        ..Default::default()
    })
}

fn classic_heartbeat(group: &str, member: &str, generation_id: i32) -> Request {
    Request::Heartbeat(HeartbeatRequest {
        group_id: group.into(),
        generation_id,
        member_id: member.into(),
        ..Default::default()
    })
}

/// Online migration on the wire: a classic consumer joins a consumer group with members (no
/// leader, its member epoch as generation), heartbeats and syncs there, shows as a classic
/// member; a classic group of consumers is converted by a consumer-protocol member once its
/// leader's assignment is in, and goes back to classic when that member leaves.
#[test]
fn classic_members_join_a_consumer_group_and_convert_a_classic_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path().to_path_buf());
    let mut c = Client::connect(broker.addr);
    c.create_topic("orders", 1, &[]);
    assert_eq!(
        c.heartbeat(join("cg", "m1", &["orders"])).error_code,
        ErrorCode::NONE
    );
    let Response::JoinGroup(first) = c.call(classic_join("cg", "")) else {
        panic!("unexpected response")
    };
    assert_eq!(first.error_code, ErrorCode::MEMBER_ID_REQUIRED);
    let Response::JoinGroup(joined) = c.call(classic_join("cg", &first.member_id)) else {
        panic!("unexpected response")
    };
    assert_eq!(joined.error_code, ErrorCode::NONE, "{joined:?}");
    assert_eq!(joined.member_id, first.member_id);
    assert_ne!(joined.leader, joined.member_id);
    assert!(joined.members.is_empty());
    assert_eq!(joined.protocol_name.as_deref(), Some("range"));
    let classic_id = joined.member_id.clone();
    let Response::SyncGroup(synced) =
        c.call(sync("cg", &classic_id, joined.generation_id, Vec::new()))
    else {
        panic!("unexpected response")
    };
    assert_eq!(synced.error_code, ErrorCode::NONE);
    // The one partition stays with m1: an empty assignment in the consumer protocol.
    assert_eq!(
        weir_broker::consumer_protocol::assignment_partitions(&synced.assignment),
        Some(Default::default())
    );
    let Response::Heartbeat(hb) =
        c.call(classic_heartbeat("cg", &classic_id, joined.generation_id))
    else {
        panic!("unexpected response")
    };
    assert_eq!(hb.error_code, ErrorCode::NONE);
    let Response::Heartbeat(stale) = c.call(classic_heartbeat("cg", &classic_id, 99)) else {
        panic!("unexpected response")
    };
    assert_eq!(stale.error_code, ErrorCode::ILLEGAL_GENERATION);
    let Response::ConsumerGroupDescribe(d) = c.call(Request::ConsumerGroupDescribe(
        ConsumerGroupDescribeRequest {
            group_ids: vec!["cg".into()],
            include_authorized_operations: false,
        },
    )) else {
        panic!("unexpected response")
    };
    let types: Vec<(String, i8)> = d.groups[0]
        .members
        .iter()
        .map(|m| (m.member_id.clone(), m.member_type))
        .collect();
    assert!(types.contains(&("m1".to_string(), 1)), "{types:?}");
    assert!(types.contains(&(classic_id.clone(), 0)), "{types:?}");
    let Response::LeaveGroup(left) = c.call(Request::LeaveGroup(LeaveGroupRequest {
        group_id: "cg".into(),
        members: vec![LeaveGroupMember {
            member_id: classic_id.clone(),
            ..Default::default()
        }],
    })) else {
        panic!("unexpected response")
    };
    assert_eq!(left.members[0].error_code, ErrorCode::NONE);

    // A classic group of consumers: not convertible between the join and the leader's sync,
    // converted after it.
    let Response::JoinGroup(first) = c.call(classic_join("old", "")) else {
        panic!("unexpected response")
    };
    let Response::JoinGroup(leader) = c.call(classic_join("old", &first.member_id)) else {
        panic!("unexpected response")
    };
    assert_eq!(leader.leader, leader.member_id);
    let early = c.heartbeat(join("old", "m2", &["orders"]));
    assert_eq!(early.error_code, ErrorCode::COORDINATOR_LOAD_IN_PROGRESS);
    let Response::SyncGroup(synced) = c.call(sync(
        "old",
        &leader.member_id,
        leader.generation_id,
        vec![SyncGroupAssignment {
            member_id: leader.member_id.clone(),
            assignment: weir_broker::consumer_protocol::encode_assignment(
                0,
                &[("orders".to_string(), vec![0])].into_iter().collect(),
            ),
        }],
    )) else {
        panic!("unexpected response")
    };
    assert_eq!(synced.error_code, ErrorCode::NONE);
    let upgraded = c.heartbeat(join("old", "m2", &["orders"]));
    assert_eq!(upgraded.error_code, ErrorCode::NONE, "{upgraded:?}");
    // The partition is still the classic member's: m2 waits, the classic member must rejoin.
    assert!(partitions(&upgraded).is_empty());
    let Response::Heartbeat(rejoin) = c.call(classic_heartbeat(
        "old",
        &leader.member_id,
        leader.generation_id,
    )) else {
        panic!("unexpected response")
    };
    assert_eq!(rejoin.error_code, ErrorCode::REBALANCE_IN_PROGRESS);
    // m2 leaves: the group is classic again, and its member must rejoin there.
    let gone = c.heartbeat(beat("old", "m2", upgraded.member_epoch));
    assert_eq!(gone.error_code, ErrorCode::NONE);
    let left = c.heartbeat(beat("old", "m2", -1));
    assert_eq!(left.error_code, ErrorCode::NONE);
    let Response::ListGroups(all) = c.call(Request::ListGroups(ListGroupsRequest::default()))
    else {
        panic!("unexpected response")
    };
    let old = all
        .groups
        .iter()
        .find(|g| g.group_id == "old")
        .expect("listed");
    assert_eq!(
        (old.group_type.as_str(), old.group_state.as_str()),
        ("classic", "PreparingRebalance")
    );
    let Response::JoinGroup(back) = c.call(classic_join("old", &leader.member_id)) else {
        panic!("unexpected response")
    };
    assert_eq!(back.error_code, ErrorCode::NONE, "{back:?}");
    assert_eq!(back.leader, leader.member_id);
}

/// The group's epochs, members and assignments are in `__consumer_offsets`: after a restart the
/// member carries on at its epoch instead of being told the group does not exist.
#[test]
fn a_consumer_group_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let epoch = {
        let broker = start(dir.path().to_path_buf());
        let mut c = Client::connect(broker.addr);
        c.create_topic("orders", 2, &[]);
        let a = c.heartbeat(join("g", "a", &["orders"]));
        let b = c.heartbeat(join("g", "b", &["orders"]));
        assert_eq!((a.member_epoch, b.member_epoch), (1, 2));
        // a revokes what b gets and acknowledges.
        let revoke = c.heartbeat(beat("g", "a", 1));
        assert_eq!(partitions(&revoke).len(), 1);
        let acked = c.heartbeat(ConsumerGroupHeartbeatRequest {
            topic_partitions: revoke.assignment.map(|a| a.topic_partitions),
            ..beat("g", "a", 1)
        });
        assert_eq!(acked.member_epoch, 2);
        acked.member_epoch
    };
    let broker = start(dir.path().to_path_buf());
    let mut c = Client::connect(broker.addr);
    let again = c.heartbeat(beat("g", "a", epoch));
    assert_eq!(again.error_code, ErrorCode::NONE);
    assert_eq!(again.member_epoch, epoch);
    let b = c.heartbeat(beat("g", "b", 2));
    assert_eq!(b.error_code, ErrorCode::NONE);
    let Response::ConsumerGroupDescribe(d) = c.call(Request::ConsumerGroupDescribe(
        ConsumerGroupDescribeRequest {
            group_ids: vec!["g".into()],
            include_authorized_operations: false,
        },
    )) else {
        panic!("unexpected response")
    };
    assert_eq!(d.groups[0].group_epoch, 2);
    assert_eq!(d.groups[0].members.len(), 2);
}
