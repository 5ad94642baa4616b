//! Share groups (KIP-932) on the wire, for what confluent-kafka's ShareConsumer does not show:
//! the share session rules of ShareFetch/ShareAcknowledge (Kafka's error codes), the share
//! group offset admin APIs, share groups in ListGroups/DescribeGroups/DeleteGroups, and the
//! share state surviving a kill -9 of the broker.

use std::time::{Duration, Instant};

use crate::common::kafka::Conn;
use crate::common::Broker;
use weir_protocol::{
    AcknowledgementBatch, AlterShareGroupOffsetsPartition, AlterShareGroupOffsetsRequest,
    AlterShareGroupOffsetsTopic, DeleteGroupsRequest, DeleteShareGroupOffsetsRequest,
    DeleteShareGroupOffsetsTopic, DescribeGroupsRequest, DescribeShareGroupOffsetsGroup,
    DescribeShareGroupOffsetsRequest, ErrorCode, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResource, IncrementalAlterableConfig, ListGroupsRequest,
    MetadataRequest, MetadataRequestTopic, Request, Response, ShareAcknowledgePartition,
    ShareAcknowledgeRequest, ShareAcknowledgeTopic, ShareFetchPartition, ShareFetchRequest,
    ShareFetchResponse, ShareFetchTopic, ShareGroupDescribeRequest, ShareGroupHeartbeatRequest,
    ShareGroupOffsetsTopic,
};

const GROUP_RESOURCE: i8 = 32;
const ACCEPT: i8 = 1;
const RELEASE: i8 = 2;
const RENEW: i8 = 4;

fn topic_id(conn: &mut Conn, name: &str) -> [u8; 16] {
    id_and_partitions(conn, name).0
}

/// A topic's id and partition count, from Metadata.
fn id_and_partitions(conn: &mut Conn, name: &str) -> ([u8; 16], usize) {
    let Response::Metadata(m) = conn.call(Request::Metadata(MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some(name.into()),
            topic_id: [0; 16],
        }]),
        allow_auto_topic_creation: false,
        ..MetadataRequest::default()
    })) else {
        panic!("not a Metadata response");
    };
    (m.topics[0].topic_id, m.topics[0].partitions.len())
}

fn set_earliest(conn: &mut Conn, group: &str) {
    let Response::IncrementalAlterConfigs(r) = conn.call(Request::IncrementalAlterConfigs(
        IncrementalAlterConfigsRequest {
            resources: vec![IncrementalAlterConfigsResource {
                resource_type: GROUP_RESOURCE,
                resource_name: group.into(),
                configs: vec![IncrementalAlterableConfig {
                    name: "share.auto.offset.reset".into(),
                    config_operation: 0,
                    value: Some("earliest".into()),
                }],
            }],
            validate_only: false,
        },
    )) else {
        panic!("not an IncrementalAlterConfigs response");
    };
    assert_eq!(r.responses[0].error_code, ErrorCode::NONE, "{r:?}");
}

/// A topic with `n` records and a group configured to read it from the start.
fn setup(conn: &mut Conn, topic: &str, group: &str, n: usize) -> [u8; 16] {
    conn.create_topic(topic, 1, &[]);
    let values: Vec<Vec<u8>> = (0..n).map(|i| i.to_string().into_bytes()).collect();
    let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    let produced = conn.produce(topic, 0, &refs, &vec![crate::common::now_ms(); n]);
    assert_eq!(produced.error_code, ErrorCode::NONE);
    set_earliest(conn, group);
    topic_id(conn, topic)
}

fn fetch(
    conn: &mut Conn,
    group: &str,
    member: &str,
    epoch: i32,
    topic: [u8; 16],
    acks: Vec<AcknowledgementBatch>,
) -> ShareFetchResponse {
    let Response::ShareFetch(r) = conn.call(Request::ShareFetch(ShareFetchRequest {
        group_id: Some(group.into()),
        member_id: Some(member.into()),
        share_session_epoch: epoch,
        max_wait_ms: 0,
        min_bytes: 1,
        max_bytes: 1 << 20,
        max_records: 500,
        batch_size: 500,
        share_acquire_mode: 0,
        is_renew_ack: false,
        topics: vec![ShareFetchTopic {
            topic_id: topic,
            partitions: vec![ShareFetchPartition {
                partition_index: 0,
                acknowledgement_batches: acks,
            }],
        }],
        forgotten_topics_data: Vec::new(),
    })) else {
        panic!("not a ShareFetch response");
    };
    r
}

fn ack(first: i64, last: i64, t: i8) -> AcknowledgementBatch {
    AcknowledgementBatch {
        first_offset: first,
        last_offset: last,
        acknowledge_types: vec![t],
    }
}

/// The acquired (first, last, delivery count) runs of partition 0 of a fetch.
fn acquired(r: &ShareFetchResponse) -> Vec<(i64, i64, i16)> {
    r.responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .flat_map(|p| p.acquired_records.iter())
        .map(|a| (a.first_offset, a.last_offset, a.delivery_count))
        .collect()
}

fn acknowledge(
    conn: &mut Conn,
    group: &str,
    member: &str,
    epoch: i32,
    topic: [u8; 16],
    acks: Vec<AcknowledgementBatch>,
) -> weir_protocol::ShareAcknowledgeResponse {
    let Response::ShareAcknowledge(r) =
        conn.call(Request::ShareAcknowledge(ShareAcknowledgeRequest {
            group_id: Some(group.into()),
            member_id: Some(member.into()),
            share_session_epoch: epoch,
            is_renew_ack: acks.iter().any(|a| a.acknowledge_types.contains(&RENEW)),
            topics: vec![ShareAcknowledgeTopic {
                topic_id: topic,
                partitions: vec![ShareAcknowledgePartition {
                    partition_index: 0,
                    acknowledgement_batches: acks,
                }],
            }],
        }))
    else {
        panic!("not a ShareAcknowledge response");
    };
    r
}

#[test]
fn share_sessions_follow_kafkas_epoch_rules() {
    let broker = Broker::start(&[]);
    let mut conn = Conn::connect(broker.kafka);
    let topic = setup(&mut conn, "orders", "g", 10);

    // Acknowledgements may not open a session.
    let r = fetch(&mut conn, "g", "m1", 0, topic, vec![ack(0, 0, ACCEPT)]);
    assert_eq!(r.error_code, ErrorCode::INVALID_REQUEST);
    // Nor may a ShareAcknowledge.
    let r = acknowledge(&mut conn, "g", "m1", 0, topic, vec![ack(0, 0, ACCEPT)]);
    assert_eq!(r.error_code, ErrorCode::INVALID_SHARE_SESSION_EPOCH);

    let r = fetch(&mut conn, "g", "m1", 0, topic, Vec::new());
    assert_eq!(r.error_code, ErrorCode::NONE);
    assert_eq!(acquired(&r), vec![(0, 9, 1)]);
    assert!(
        r.acquisition_lock_timeout_ms > 0,
        "the lock duration is announced"
    );

    // The next epoch is 1; 2 is refused, and an unknown member has no session.
    let r = fetch(&mut conn, "g", "m1", 2, topic, Vec::new());
    assert_eq!(r.error_code, ErrorCode::INVALID_SHARE_SESSION_EPOCH);
    let r = fetch(&mut conn, "g", "other", 1, topic, Vec::new());
    assert_eq!(r.error_code, ErrorCode::SHARE_SESSION_NOT_FOUND);

    // Acknowledging another member's records, or twice, is INVALID_RECORD_STATE.
    fetch(&mut conn, "g", "m2", 0, topic, Vec::new());
    let r = fetch(&mut conn, "g", "m2", 1, topic, vec![ack(0, 1, ACCEPT)]);
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.acknowledge_error_code, ErrorCode::INVALID_RECORD_STATE);

    let r = acknowledge(
        &mut conn,
        "g",
        "m1",
        1,
        topic,
        vec![ack(0, 4, ACCEPT), ack(5, 9, RELEASE)],
    );
    assert_eq!(r.error_code, ErrorCode::NONE);
    assert_eq!(r.responses[0].partitions[0].error_code, ErrorCode::NONE);
    // Released records go to the next fetch, their delivery count raised.
    let r = fetch(&mut conn, "g", "m2", 2, topic, Vec::new());
    assert_eq!(acquired(&r), vec![(5, 9, 2)]);
    let r = acknowledge(&mut conn, "g", "m1", 2, topic, vec![ack(0, 0, ACCEPT)]);
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        ErrorCode::INVALID_RECORD_STATE
    );
    // The final epoch closes the session; it is gone afterwards.
    let r = acknowledge(&mut conn, "g", "m1", -1, topic, Vec::new());
    assert_eq!(r.error_code, ErrorCode::NONE);
    let r = acknowledge(&mut conn, "g", "m1", 3, topic, Vec::new());
    assert_eq!(r.error_code, ErrorCode::SHARE_SESSION_NOT_FOUND);
}

#[test]
fn share_groups_in_the_group_apis_and_offset_admin() {
    let broker = Broker::start(&[]);
    let mut conn = Conn::connect(broker.kafka);
    let topic = setup(&mut conn, "jobs", "workers", 5);
    let Response::ShareGroupHeartbeat(hb) =
        conn.call(Request::ShareGroupHeartbeat(ShareGroupHeartbeatRequest {
            group_id: "workers".into(),
            member_id: "member-1".into(),
            member_epoch: 0,
            rack_id: None,
            subscribed_topic_names: Some(vec!["jobs".into()]),
        }))
    else {
        panic!("not a ShareGroupHeartbeat response");
    };
    assert_eq!(hb.error_code, ErrorCode::NONE, "{hb:?}");
    assert_eq!(hb.member_epoch, 1);
    let assignment = hb.assignment.expect("an assignment");
    assert_eq!(assignment.topic_partitions[0].topic_id, topic);
    assert_eq!(assignment.topic_partitions[0].partitions, vec![0]);

    // Acquire and accept 0..=2, so the start offset moves to 3.
    fetch(&mut conn, "workers", "member-1", 0, topic, Vec::new());
    let r = acknowledge(
        &mut conn,
        "workers",
        "member-1",
        1,
        topic,
        vec![ack(0, 2, ACCEPT)],
    );
    assert_eq!(r.responses[0].partitions[0].error_code, ErrorCode::NONE);

    // The admin API's view of the share group.
    let view = crate::common::get_json(broker.admin, "/v1/share-groups/workers");
    assert_eq!(view["state"], "Stable");
    assert_eq!(view["members"][0]["member_id"], "member-1");
    let p = &view["partitions"][0];
    assert_eq!(
        (&p["topic"], &p["start_offset"], &p["acquired"], &p["lag"]),
        (
            &serde_json::json!("jobs"),
            &serde_json::json!(3),
            &serde_json::json!(2),
            &serde_json::json!(2)
        )
    );
    let (status, _) =
        crate::common::http_get(broker.admin, "/v1/share-groups/nobody").expect("admin api");
    assert_eq!(status, 404);
    assert_eq!(
        crate::common::get_json(broker.admin, "/v1/share-groups")["share_groups"][0]["group_id"],
        "workers"
    );

    let Response::ListGroups(l) = conn.call(Request::ListGroups(ListGroupsRequest {
        types_filter: vec!["share".into()],
        ..ListGroupsRequest::default()
    })) else {
        panic!("not a ListGroups response");
    };
    assert_eq!(l.groups.len(), 1, "{l:?}");
    assert_eq!(
        (
            l.groups[0].group_id.as_str(),
            l.groups[0].group_type.as_str()
        ),
        ("workers", "share")
    );
    assert_eq!(l.groups[0].group_state, "Stable");

    let Response::ShareGroupDescribe(d) =
        conn.call(Request::ShareGroupDescribe(ShareGroupDescribeRequest {
            group_ids: vec!["workers".into(), "nobody".into()],
            include_authorized_operations: false,
        }))
    else {
        panic!("not a ShareGroupDescribe response");
    };
    assert_eq!(d.groups[0].error_code, ErrorCode::NONE);
    assert_eq!(d.groups[0].members[0].member_id, "member-1");
    assert_eq!(
        d.groups[0].members[0].assignment.topic_partitions[0].topic_name,
        "jobs"
    );
    assert_eq!(d.groups[1].error_code, ErrorCode::GROUP_ID_NOT_FOUND);

    let Response::DescribeGroups(dg) = conn.call(Request::DescribeGroups(DescribeGroupsRequest {
        groups: vec!["workers".into()],
        ..DescribeGroupsRequest::default()
    })) else {
        panic!("not a DescribeGroups response");
    };
    assert_eq!(dg.groups[0].error_code, ErrorCode::GROUP_ID_NOT_FOUND);

    // The start offset and (v1, KIP-1226) the lag: records up to the high watermark not yet
    // delivered to completion.
    let describe_at = |conn: &mut Conn, version: i16| {
        let Response::DescribeShareGroupOffsets(o) = conn.call_at(
            Request::DescribeShareGroupOffsets(DescribeShareGroupOffsetsRequest {
                groups: vec![DescribeShareGroupOffsetsGroup {
                    group_id: "workers".into(),
                    topics: Some(vec![ShareGroupOffsetsTopic {
                        topic_name: "jobs".into(),
                        partitions: vec![0],
                    }]),
                }],
            }),
            version,
        ) else {
            panic!("not a DescribeShareGroupOffsets response");
        };
        assert_eq!(o.groups[0].error_code, ErrorCode::NONE, "{o:?}");
        let p = &o.groups[0].topics[0].partitions[0];
        (p.start_offset, p.lag)
    };
    let describe = |conn: &mut Conn| describe_at(conn, 1);
    assert_eq!(describe(&mut conn), (3, 2));
    // Offset 4 accepted before 3: the start stays, the lag counts only 3.
    let r = acknowledge(
        &mut conn,
        "workers",
        "member-1",
        2,
        topic,
        vec![ack(4, 4, ACCEPT)],
    );
    assert_eq!(r.responses[0].partitions[0].error_code, ErrorCode::NONE);
    assert_eq!(describe(&mut conn), (3, 1));
    // v0 has no lag on the wire (read back as Kafka's "not available").
    assert_eq!(describe_at(&mut conn, 0), (3, -1));
    // So do the metrics of the partition's leader.
    let (_, metrics) = crate::common::http_get(broker.admin, "/metrics").expect("GET /metrics");
    let labels = r#"group="workers",topic="jobs",partition="0""#;
    let metric = |name| crate::common::sample(&metrics, name, labels);
    assert_eq!(metric("weir_share_group_lag"), Some(1.0), "{metrics}");
    assert_eq!(metric("weir_share_group_start_offset"), Some(3.0));
    assert_eq!(metric("weir_share_group_acquired_records"), Some(1.0));
    // `weir group describe` shows the same for a share group.
    let desc: serde_json::Value = serde_json::from_str(
        &broker.cli_ok(&["group", "describe", "workers", "--output", "json"], ""),
    )
    .expect("json");
    assert_eq!(
        (&desc["type"], &desc["state"]),
        (&serde_json::json!("share"), &serde_json::json!("Stable"))
    );
    assert_eq!(desc["members"][0]["member_id"], "member-1");
    assert_eq!(
        desc["members"][0]["assignment"]["jobs"],
        serde_json::json!([0])
    );
    assert_eq!(
        desc["offsets"],
        serde_json::json!([{"topic": "jobs", "partition": 0, "start_offset": 3, "lag": 1}])
    );
    let table = broker.cli_ok(&["group", "describe", "workers"], "");
    let row = table
        .lines()
        .find(|l| l.starts_with("jobs"))
        .expect("a row for jobs");
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        ["jobs", "0", "3", "1"],
        "{table}"
    );
    let reset = broker.cli(
        &[
            "group",
            "reset-offsets",
            "workers",
            "--topic",
            "jobs",
            "--to-earliest",
        ],
        "",
    );
    assert!(
        !reset.status.success(),
        "share group offsets are not reset by reset-offsets"
    );

    // Offsets of a group with members cannot be changed, nor the group deleted.
    let alter = |conn: &mut Conn, offset: i64| {
        let Response::AlterShareGroupOffsets(a) = conn.call(Request::AlterShareGroupOffsets(
            AlterShareGroupOffsetsRequest {
                group_id: "workers".into(),
                topics: vec![AlterShareGroupOffsetsTopic {
                    topic_name: "jobs".into(),
                    partitions: vec![AlterShareGroupOffsetsPartition {
                        partition_index: 0,
                        start_offset: offset,
                    }],
                }],
            },
        )) else {
            panic!("not an AlterShareGroupOffsets response");
        };
        a
    };
    assert_eq!(alter(&mut conn, 1).error_code, ErrorCode::NON_EMPTY_GROUP);
    let Response::DeleteGroups(del) = conn.call(Request::DeleteGroups(DeleteGroupsRequest {
        groups: vec!["workers".into()],
    })) else {
        panic!("not a DeleteGroups response");
    };
    assert_eq!(del.results[0].error_code, ErrorCode::NON_EMPTY_GROUP);

    // The member leaves: its acquired record (3) is available again, and the group is empty.
    let Response::ShareGroupHeartbeat(left) =
        conn.call(Request::ShareGroupHeartbeat(ShareGroupHeartbeatRequest {
            group_id: "workers".into(),
            member_id: "member-1".into(),
            member_epoch: -1,
            rack_id: None,
            subscribed_topic_names: None,
        }))
    else {
        panic!("not a ShareGroupHeartbeat response");
    };
    assert_eq!(left.member_epoch, -1);
    let a = alter(&mut conn, 1);
    assert_eq!(a.error_code, ErrorCode::NONE, "{a:?}");
    assert_eq!(a.responses[0].partitions[0].error_code, ErrorCode::NONE);
    assert_eq!(describe(&mut conn), (1, 4));
    // A new member reads from the altered start: records 1..=4.
    let r = fetch(&mut conn, "workers", "member-2", 0, topic, Vec::new());
    assert_eq!(acquired(&r), vec![(1, 4, 1)]);

    let Response::DeleteShareGroupOffsets(d) = conn.call(Request::DeleteShareGroupOffsets(
        DeleteShareGroupOffsetsRequest {
            group_id: "workers".into(),
            topics: vec![DeleteShareGroupOffsetsTopic {
                topic_name: "jobs".into(),
            }],
        },
    )) else {
        panic!("not a DeleteShareGroupOffsets response");
    };
    assert_eq!(d.error_code, ErrorCode::NONE);
    assert_eq!(d.responses[0].error_code, ErrorCode::NONE);
    assert_eq!(describe(&mut conn), (-1, -1), "no state after deletion");

    let Response::DeleteGroups(del) = conn.call(Request::DeleteGroups(DeleteGroupsRequest {
        groups: vec!["workers".into()],
    })) else {
        panic!("not a DeleteGroups response");
    };
    assert_eq!(del.results[0].error_code, ErrorCode::NONE);
    let Response::ListGroups(l) = conn.call(Request::ListGroups(ListGroupsRequest::default()))
    else {
        panic!("not a ListGroups response");
    };
    assert!(l.groups.iter().all(|g| g.group_id != "workers"), "{l:?}");
}

#[test]
fn share_state_survives_kill_9() {
    let broker = accept_some_then_kill_9(&["--fsync", "always"], &["--fsync", "always"]);
    assert_eq!(share_state_partitions(&broker), 16, "the default count");
}

#[test]
fn a_data_dir_with_one_share_state_partition_keeps_it_and_its_state() {
    // Data directories written before the share state topic had more partitions.
    let one = [
        "--fsync",
        "always",
        "--share-coordinator-state-topic-num-partitions",
        "1",
    ];
    let broker = accept_some_then_kill_9(&one, &["--fsync", "always"]);
    assert_eq!(
        share_state_partitions(&broker),
        1,
        "an existing topic keeps its count"
    );
}

fn share_state_partitions(broker: &Broker) -> usize {
    id_and_partitions(&mut Conn::connect(broker.kafka), "__share_group_state").1
}

/// Starts a broker with `first`, accepts some records and releases others, kills it with
/// SIGKILL while it holds more, starts it again with `then`: nothing accepted comes back,
/// nothing unaccepted is lost.
fn accept_some_then_kill_9(first: &[&str], then: &[&str]) -> Broker {
    let mut broker = Broker::start(first);
    let mut conn = Conn::connect(broker.kafka);
    let topic = setup(&mut conn, "events", "durable", 10);
    let r = fetch(&mut conn, "durable", "m", 0, topic, Vec::new());
    assert_eq!(acquired(&r), vec![(0, 9, 1)]);
    // 0..=3 accepted, 4..=5 released, 6..=9 still held when the broker dies.
    let r = acknowledge(
        &mut conn,
        "durable",
        "m",
        1,
        topic,
        vec![ack(0, 3, ACCEPT), ack(4, 5, RELEASE)],
    );
    assert_eq!(r.responses[0].partitions[0].error_code, ErrorCode::NONE);
    drop(conn);
    broker.signal("KILL");
    broker.wait();
    broker.start_again_with(then);
    let mut conn = Conn::connect(broker.kafka);
    // Nothing accepted comes back; nothing unaccepted is lost. The released records were
    // delivered once before.
    let r = fetch(&mut conn, "durable", "m2", 0, topic, Vec::new());
    assert_eq!(acquired(&r), vec![(4, 5, 2), (6, 9, 1)]);
    broker
}

#[test]
fn dead_letters_are_listed_shown_and_redriven_by_the_cli() {
    let broker = Broker::start(&[]);
    let mut conn = Conn::connect(broker.kafka);
    let topic = setup(&mut conn, "payments", "billing", 3);
    conn.create_topic("payments.dlq", 1, &[]);
    let Response::IncrementalAlterConfigs(r) = conn.call(Request::IncrementalAlterConfigs(
        IncrementalAlterConfigsRequest {
            resources: vec![IncrementalAlterConfigsResource {
                resource_type: GROUP_RESOURCE,
                resource_name: "billing".into(),
                configs: vec![IncrementalAlterableConfig {
                    name: "weir.share.dlq.topic".into(),
                    config_operation: 0,
                    value: Some("payments.dlq".into()),
                }],
            }],
            validate_only: false,
        },
    )) else {
        panic!("not an IncrementalAlterConfigs response");
    };
    assert_eq!(r.responses[0].error_code, ErrorCode::NONE);
    // A member joins, as a ShareConsumer does before it fetches: the group exists from then on.
    join(&mut conn, "billing", "m", "payments");
    let r = fetch(&mut conn, "billing", "m", 0, topic, Vec::new());
    assert_eq!(acquired(&r), vec![(0, 2, 1)]);
    const REJECT: i8 = 3;
    let r = acknowledge(
        &mut conn,
        "billing",
        "m",
        1,
        topic,
        vec![ack(0, 0, ACCEPT), ack(1, 1, REJECT), ack(2, 2, ACCEPT)],
    );
    assert_eq!(r.responses[0].partitions[0].error_code, ErrorCode::NONE);

    // The broker's timer moves the rejected record to the dead-letter topic.
    let started = Instant::now();
    let shown = loop {
        let shown: serde_json::Value = serde_json::from_str(
            &broker.cli_ok(&["dlq", "show", "payments.dlq", "--output", "json"], ""),
        )
        .expect("json");
        if shown.as_array().is_some_and(|a| !a.is_empty()) {
            break shown;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no dead letter"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(shown.as_array().map(Vec::len), Some(1));
    assert_eq!(shown[0]["source_topic"], "payments");
    assert_eq!(shown[0]["source_offset"], "1");
    assert_eq!(shown[0]["group"], "billing");
    assert_eq!(shown[0]["reason"], "rejected");
    assert_eq!(shown[0]["value"], "1");

    let list = broker.cli_ok(&["dlq", "list"], "");
    assert_eq!(
        list,
        "GROUP    DEAD-LETTER TOPIC  RECORDS\nbilling  payments.dlq       1\n"
    );

    let out = broker.cli_ok(&["dlq", "redrive", "payments.dlq"], "");
    assert_eq!(out.trim(), "redrove 1 dead letter(s) from payments.dlq");
    // The record is back at the end of its source topic, without the dead-letter headers.
    let consumed = broker.cli_ok(
        &[
            "consume",
            "payments",
            "--from-beginning",
            "-e",
            "--output",
            "json",
        ],
        "",
    );
    let last: serde_json::Value =
        serde_json::from_str(consumed.lines().last().expect("records")).expect("json");
    assert_eq!(last["offset"], 3);
    assert_eq!(last["value"], "1");
    assert_eq!(last["headers"], serde_json::json!({}));
}

fn join(conn: &mut Conn, group: &str, member: &str, topic: &str) -> i32 {
    let Response::ShareGroupHeartbeat(hb) =
        conn.call(Request::ShareGroupHeartbeat(ShareGroupHeartbeatRequest {
            group_id: group.into(),
            member_id: member.into(),
            member_epoch: 0,
            rack_id: None,
            subscribed_topic_names: Some(vec![topic.into()]),
        }))
    else {
        panic!("not a ShareGroupHeartbeat response");
    };
    assert_eq!(hb.error_code, ErrorCode::NONE, "{hb:?}");
    hb.member_epoch
}

#[test]
fn share_group_epochs_never_go_back_after_kill_9() {
    // The group epoch lives in the group's __consumer_offsets partition: a restarted coordinator
    // rebuilds the group from it, so a member joining afterwards gets a newer epoch than any
    // handed out before, never one a fenced member could still hold.
    let mut broker = Broker::start(&["--fsync", "always"]);
    let mut conn = Conn::connect(broker.kafka);
    setup(&mut conn, "orders", "epochs", 1);
    assert_eq!(join(&mut conn, "epochs", "m1", "orders"), 1);
    assert_eq!(join(&mut conn, "epochs", "m2", "orders"), 2);
    drop(conn);
    broker.signal("KILL");
    broker.wait();
    broker.start_again();
    let mut conn = Conn::connect(broker.kafka);
    assert_eq!(join(&mut conn, "epochs", "m3", "orders"), 3);
}

/// A ShareFetch (v2) of at most `max_records` in acquire mode `mode` (KIP-1206), acknowledging
/// nothing.
fn fetch_in_mode(
    conn: &mut Conn,
    group: &str,
    member: &str,
    epoch: i32,
    topic: [u8; 16],
    max_records: i32,
    mode: i8,
) -> ShareFetchResponse {
    let Response::ShareFetch(r) = conn.call(Request::ShareFetch(ShareFetchRequest {
        group_id: Some(group.into()),
        member_id: Some(member.into()),
        share_session_epoch: epoch,
        max_bytes: 1 << 20,
        max_records,
        batch_size: max_records,
        share_acquire_mode: mode,
        topics: vec![ShareFetchTopic {
            topic_id: topic,
            partitions: vec![ShareFetchPartition {
                partition_index: 0,
                acknowledgement_batches: Vec::new(),
            }],
        }],
        ..ShareFetchRequest::default()
    })) else {
        panic!("not a ShareFetch response");
    };
    r
}

/// A renewing ShareFetch (KIP-1222): acknowledgements only, every fetch limit zero unless
/// `max_records` says otherwise.
fn renewing_fetch(
    conn: &mut Conn,
    member: &str,
    epoch: i32,
    topic: [u8; 16],
    acks: Vec<AcknowledgementBatch>,
    max_records: i32,
) -> ShareFetchResponse {
    let Response::ShareFetch(r) = conn.call(Request::ShareFetch(ShareFetchRequest {
        group_id: Some("g".into()),
        member_id: Some(member.into()),
        share_session_epoch: epoch,
        max_bytes: 0,
        max_records,
        is_renew_ack: true,
        topics: vec![ShareFetchTopic {
            topic_id: topic,
            partitions: vec![ShareFetchPartition {
                partition_index: 0,
                acknowledgement_batches: acks,
            }],
        }],
        ..ShareFetchRequest::default()
    })) else {
        panic!("not a ShareFetch response");
    };
    r
}

#[test]
fn record_limit_mode_never_acquires_more_than_max_records() {
    let broker = Broker::start(&[]);
    let mut conn = Conn::connect(broker.kafka);
    // One log batch of 10 records.
    let topic = setup(&mut conn, "orders", "soft", 10);
    set_earliest(&mut conn, "strict");

    // Batch-optimized (mode 0, and all that v1 knows): the batch begun is acquired whole.
    let r = fetch_in_mode(&mut conn, "soft", "m1", 0, topic, 3, 0);
    assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
    assert_eq!(acquired(&r), vec![(0, 9, 1)]);

    // Record-limit (mode 1): three records, the batch acquired in part; the batch's bytes go
    // back whole, as Kafka's do (the client hands out only the acquired offsets).
    let r = fetch_in_mode(&mut conn, "strict", "m1", 0, topic, 3, 1);
    assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
    assert_eq!(acquired(&r), vec![(0, 2, 1)]);
    let records = r.responses[0].partitions[0]
        .records
        .clone()
        .unwrap_or_default();
    assert!(
        !records.is_empty(),
        "the batch holding the records goes back"
    );
    let r = fetch_in_mode(&mut conn, "strict", "m1", 1, topic, 3, 1);
    assert_eq!(acquired(&r), vec![(3, 5, 1)]);
    // Another member, batch-optimized, takes the rest of the batch begun.
    let r = fetch_in_mode(&mut conn, "strict", "m2", 0, topic, 3, 0);
    assert_eq!(acquired(&r), vec![(6, 9, 1)]);

    // A mode Kafka does not define is INVALID_REQUEST, and the session stays where it was.
    let r = fetch_in_mode(&mut conn, "strict", "m1", 2, topic, 3, 2);
    assert_eq!(r.error_code, ErrorCode::INVALID_REQUEST);
    let r = fetch_in_mode(&mut conn, "strict", "m1", 2, topic, 3, 1);
    assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
    assert!(acquired(&r).is_empty(), "all ten are held: {r:?}");
}

#[test]
fn renew_acknowledgements_keep_records_locked_past_the_lock_duration() {
    const LOCK_MS: u64 = 2_000;
    let broker = Broker::start(&["--group-share-record-lock-duration-ms", "2000"]);
    let mut conn = Conn::connect(broker.kafka);
    let topic = setup(&mut conn, "orders", "g", 5);
    let r = fetch(&mut conn, "g", "m1", 0, topic, Vec::new());
    assert_eq!(acquired(&r), vec![(0, 4, 1)]);
    let mut epoch = 1;
    let partition_error = |r: &weir_protocol::ShareAcknowledgeResponse| {
        assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
        r.responses[0].partitions[0].error_code
    };

    // ShareAcknowledge v1 (Kafka 4.1) knows no Renew.
    let v1 = ShareAcknowledgeRequest {
        group_id: Some("g".into()),
        member_id: Some("m1".into()),
        share_session_epoch: epoch,
        is_renew_ack: true, // not on the wire at v1
        topics: vec![ShareAcknowledgeTopic {
            topic_id: topic,
            partitions: vec![ShareAcknowledgePartition {
                partition_index: 0,
                acknowledgement_batches: vec![ack(0, 4, RENEW)],
            }],
        }],
    };
    let Response::ShareAcknowledge(r) = conn.call_at(Request::ShareAcknowledge(v1.clone()), 1)
    else {
        panic!("not a ShareAcknowledge response");
    };
    assert_eq!(partition_error(&r), ErrorCode::INVALID_REQUEST);
    epoch += 1;
    // Nor does v2 without IsRenewAck.
    let Response::ShareAcknowledge(r) =
        conn.call(Request::ShareAcknowledge(ShareAcknowledgeRequest {
            share_session_epoch: epoch,
            is_renew_ack: false,
            ..v1
        }))
    else {
        panic!("not a ShareAcknowledge response");
    };
    assert_eq!(partition_error(&r), ErrorCode::INVALID_REQUEST);
    epoch += 1;

    // Only the holder renews.
    let r = fetch(&mut conn, "g", "m2", 0, topic, Vec::new());
    assert!(acquired(&r).is_empty(), "m1 holds them: {r:?}");
    let r = acknowledge(&mut conn, "g", "m2", 1, topic, vec![ack(0, 0, RENEW)]);
    assert_eq!(partition_error(&r), ErrorCode::INVALID_RECORD_STATE);

    // A renewing ShareFetch may not ask for records.
    let r = renewing_fetch(&mut conn, "m1", epoch, topic, vec![ack(0, 4, RENEW)], 10);
    assert_eq!(r.error_code, ErrorCode::INVALID_REQUEST);

    // Renewing every quarter lock, for two and a half lock durations, keeps all five with m1;
    // a renewing ShareFetch acquires nothing, although three newer records are there.
    let values: [&[u8]; 3] = [b"5", b"6", b"7"];
    let produced = conn.produce("orders", 0, &values, &[crate::common::now_ms(); 3]);
    assert_eq!(produced.error_code, ErrorCode::NONE);
    let renew_until = Instant::now() + Duration::from_millis(LOCK_MS * 5 / 2);
    let mut renewals = 0;
    while Instant::now() < renew_until {
        if renewals % 2 == 0 {
            let r = acknowledge(&mut conn, "g", "m1", epoch, topic, vec![ack(0, 4, RENEW)]);
            assert_eq!(partition_error(&r), ErrorCode::NONE);
            assert_eq!(r.acquisition_lock_timeout_ms, 2_000, "{r:?}");
        } else {
            let r = renewing_fetch(&mut conn, "m1", epoch, topic, vec![ack(0, 4, RENEW)], 0);
            assert_eq!(r.error_code, ErrorCode::NONE, "{r:?}");
            let p = &r.responses[0].partitions[0];
            assert_eq!(p.acknowledge_error_code, ErrorCode::NONE, "{r:?}");
            assert!(
                acquired(&r).is_empty(),
                "a renewing fetch acquires nothing: {r:?}"
            );
        }
        epoch += 1;
        renewals += 1;
        std::thread::sleep(Duration::from_millis(LOCK_MS / 4));
    }
    // m2 gets the newer records only: the renewed ones are still m1's.
    let r = fetch(&mut conn, "g", "m2", 2, topic, Vec::new());
    assert_eq!(acquired(&r), vec![(5, 7, 1)], "{r:?}");
    let r = acknowledge(&mut conn, "g", "m2", 3, topic, vec![ack(5, 7, ACCEPT)]);
    assert_eq!(partition_error(&r), ErrorCode::NONE);

    // Renew is not final: m1 accepts two of its five afterwards and stops renewing the rest,
    // whose lock then runs out and hands them to m2 (delivered a second time).
    let r = acknowledge(&mut conn, "g", "m1", epoch, topic, vec![ack(0, 1, ACCEPT)]);
    assert_eq!(partition_error(&r), ErrorCode::NONE);
    let mut m2_epoch = 4;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = fetch(&mut conn, "g", "m2", m2_epoch, topic, Vec::new());
        m2_epoch += 1;
        let got = acquired(&r);
        if !got.is_empty() {
            assert_eq!(got, vec![(2, 4, 2)], "{r:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the lock of the records m1 stopped renewing never ran out"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
