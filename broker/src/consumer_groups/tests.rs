//! Deterministic tests of the consumer group state machine: time and topics are passed in.

use super::*;

const T1: TopicId = [1; 16];
const T2: TopicId = [2; 16];

fn topics(list: &[(&str, TopicId, i32)]) -> TopicsView {
    let mut v = TopicsView::default();
    for (name, id, n) in list {
        v.insert(name, *id, *n);
    }
    v
}

fn coordinator() -> ConsumerGroups {
    ConsumerGroups::new(ConsumerGroupConfig {
        session_timeout_ms: 45_000,
        ..ConsumerGroupConfig::default()
    })
}

fn join(member: &str, names: &[&str]) -> Heartbeat {
    Heartbeat {
        group_id: "g".into(),
        member_id: member.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(names.iter().map(|s| s.to_string()).collect()),
        owned: Some(Assignment::new()),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        api_version: 1,
        ..Heartbeat::default()
    }
}

fn beat(member: &str, epoch: i32, owned: &Assignment) -> Heartbeat {
    Heartbeat {
        group_id: "g".into(),
        member_id: member.into(),
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        owned: Some(owned.clone()),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        api_version: 1,
        ..Heartbeat::default()
    }
}

fn parts(topic: TopicId, ps: &[i32]) -> Assignment {
    Assignment::from([(topic, ps.iter().copied().collect())])
}

fn count(a: &Assignment) -> usize {
    a.values().map(BTreeSet::len).sum()
}

fn code<T: std::fmt::Debug>(r: Result<T, GroupError>) -> ErrorCode {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code,
    }
}

/// A simulated member: heartbeats with what it owns, applies the assignment it gets back.
struct Client {
    id: String,
    epoch: i32,
    owned: Assignment,
}

impl Client {
    fn join(cg: &mut ConsumerGroups, id: &str, names: &[&str], t: &TopicsView, now: i64) -> Self {
        let a = cg.heartbeat(join(id, names), t, now).expect("join");
        Client {
            id: id.into(),
            epoch: a.member_epoch,
            owned: a.assignment.expect("a join always answers the assignment"),
        }
    }

    fn beat(&mut self, cg: &mut ConsumerGroups, t: &TopicsView, now: i64) -> HeartbeatAnswer {
        let a = cg
            .heartbeat(beat(&self.id, self.epoch, &self.owned), t, now)
            .expect("heartbeat");
        self.epoch = a.member_epoch;
        if let Some(assignment) = &a.assignment {
            self.owned = assignment.clone();
        }
        a
    }
}

#[test]
fn first_member_gets_every_partition_at_epoch_1() {
    let t = topics(&[("orders", T1, 3)]);
    let mut cg = coordinator();
    let a = cg.heartbeat(join("m1", &["orders"]), &t, 0).expect("join");
    assert_eq!(a.member_id, "m1");
    assert_eq!(a.member_epoch, 1);
    assert_eq!(a.heartbeat_interval_ms, 5_000);
    assert_eq!(a.assignment, Some(parts(T1, &[0, 1, 2])));
    let d = cg.describe("g").expect("group");
    assert_eq!(
        (d.state, d.group_epoch, d.assignment_epoch),
        ("Stable", 1, 1)
    );
    assert_eq!(d.assignor_name, "uniform");
}

#[test]
fn v0_members_get_a_member_id_from_the_coordinator() {
    let t = topics(&[("orders", T1, 1)]);
    let mut cg = coordinator();
    let a = cg
        .heartbeat(
            Heartbeat {
                member_id: String::new(),
                api_version: 0,
                ..join("", &["orders"])
            },
            &t,
            0,
        )
        .expect("join");
    assert!(!a.member_id.is_empty());
    // From v1 the client must bring its own.
    assert_eq!(
        code(cg.heartbeat(join("", &["orders"]), &t, 0)),
        ErrorCode::INVALID_REQUEST
    );
}

/// A second member makes the first revoke half of its partitions before the second gets them;
/// the first keeps consuming what it keeps throughout (no stop-the-world), and both end at the
/// same epoch with disjoint halves.
#[test]
fn partitions_move_incrementally_revoked_before_reassigned() {
    let t = topics(&[("orders", T1, 4)]);
    let mut cg = coordinator();
    let mut a = Client::join(&mut cg, "a", &["orders"], &t, 0);
    assert_eq!(count(&a.owned), 4);

    let mut b = Client::join(&mut cg, "b", &["orders"], &t, 10);
    assert_eq!(cg.describe("g").expect("g").group_epoch, 2);
    // b's target partitions are still a's: it joins at the new epoch with nothing yet.
    assert_eq!(b.epoch, 2);
    assert!(b.owned.is_empty());
    assert_eq!(cg.describe("g").expect("g").state, "Reconciling");

    // a is asked to revoke two partitions and keeps the other two; its epoch does not move yet.
    let before = a.owned.clone();
    let answer = a.beat(&mut cg, &t, 20);
    assert_eq!(answer.member_epoch, 1);
    assert_eq!(count(&a.owned), 2);
    assert!(a.owned[&T1].is_subset(&before[&T1]));
    let kept = a.owned.clone();

    // Until a reports them revoked, b cannot have them.
    b.beat(&mut cg, &t, 30);
    assert!(b.owned.is_empty());

    // a acknowledges (its heartbeat no longer lists them) and moves to epoch 2 keeping its two.
    a.beat(&mut cg, &t, 40);
    assert_eq!(a.epoch, 2);
    assert_eq!(a.owned, kept);

    // Now b gets the two released partitions.
    b.beat(&mut cg, &t, 50);
    assert_eq!(b.epoch, 2);
    assert_eq!(count(&b.owned), 2);
    assert!(b.owned[&T1].is_disjoint(&a.owned[&T1]));
    assert_eq!(cg.describe("g").expect("g").state, "Stable");
}

#[test]
fn member_epochs_are_checked_as_kafka_does() {
    let t = topics(&[("orders", T1, 2)]);
    let mut cg = coordinator();
    let a = Client::join(&mut cg, "a", &["orders"], &t, 0);
    // Ahead of the coordinator: fenced.
    assert_eq!(
        code(cg.heartbeat(beat("a", a.epoch + 1, &a.owned), &t, 1)),
        ErrorCode::FENCED_MEMBER_EPOCH
    );
    // Unknown member at a positive epoch.
    assert_eq!(
        code(cg.heartbeat(beat("nobody", 1, &Assignment::new()), &t, 1)),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
    // The previous epoch is accepted while the member owns only assigned partitions (its last
    // response may have been lost)...
    let _b = Client::join(&mut cg, "b", &["orders"], &t, 2);
    let mut a = a;
    a.beat(&mut cg, &t, 3); // revoke one
    a.beat(&mut cg, &t, 4); // acknowledged: epoch 2
    assert_eq!(a.epoch, 2);
    assert!(cg.heartbeat(beat("a", 1, &a.owned), &t, 5).is_ok());
    // ...but not with partitions it no longer has.
    assert_eq!(
        code(cg.heartbeat(beat("a", 1, &parts(T1, &[0, 1])), &t, 6)),
        ErrorCode::FENCED_MEMBER_EPOCH
    );
    // Epoch 0 always rejoins (KAFKA-19233): the member gets its assignment back.
    let again = cg.heartbeat(join("a", &["orders"]), &t, 7).expect("rejoin");
    assert_eq!(again.member_epoch, 2);
    assert_eq!(again.assignment, Some(a.owned.clone()));
}

#[test]
fn a_group_that_does_not_exist_is_not_found_unless_joining() {
    let t = topics(&[("orders", T1, 1)]);
    let mut cg = coordinator();
    let e = cg
        .heartbeat(beat("a", 3, &Assignment::new()), &t, 0)
        .expect_err("no group");
    assert_eq!(e.code, ErrorCode::GROUP_ID_NOT_FOUND);
    assert_eq!(e.message.as_deref(), Some("Consumer group g not found."));
    assert!(!cg.contains("g"));
}

#[test]
fn invalid_requests_are_refused_with_kafkas_messages() {
    let config = ConsumerGroupConfig::default();
    let cases: Vec<(Heartbeat, ErrorCode, &str)> = vec![
        (
            Heartbeat {
                group_id: " ".into(),
                ..join("m", &["t"])
            },
            ErrorCode::INVALID_REQUEST,
            "GroupId can't be empty.",
        ),
        (
            Heartbeat {
                rebalance_timeout_ms: -1,
                ..join("m", &["t"])
            },
            ErrorCode::INVALID_REQUEST,
            "RebalanceTimeoutMs must be provided in first request.",
        ),
        (
            Heartbeat {
                owned: Some(parts(T1, &[0])),
                ..join("m", &["t"])
            },
            ErrorCode::INVALID_REQUEST,
            "TopicPartitions must be empty when (re-)joining.",
        ),
        (
            Heartbeat {
                subscribed_topic_names: None,
                ..join("m", &[])
            },
            ErrorCode::INVALID_REQUEST,
            "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.",
        ),
        (
            beat("m", -2, &Assignment::new()),
            ErrorCode::INVALID_REQUEST,
            "InstanceId can't be null.",
        ),
        (
            beat("m", -3, &Assignment::new()),
            ErrorCode::INVALID_REQUEST,
            "MemberEpoch is invalid.",
        ),
        (
            Heartbeat {
                server_assignor: Some("sticky".into()),
                ..join("m", &["t"])
            },
            ErrorCode::UNSUPPORTED_ASSIGNOR,
            "ServerAssignor sticky is not supported. Supported assignors: uniform, range.",
        ),
    ];
    for (hb, want, message) in cases {
        let e = validate(&hb, &config).expect_err(message);
        assert_eq!((e.code, e.message.as_deref()), (want, Some(message)));
    }
}

#[test]
fn session_timeout_removes_a_member_and_its_partitions_go_to_the_others() {
    let t = topics(&[("orders", T1, 2)]);
    let mut cg = coordinator();
    let mut a = Client::join(&mut cg, "a", &["orders"], &t, 0);
    let mut b = Client::join(&mut cg, "b", &["orders"], &t, 0);
    a.beat(&mut cg, &t, 1);
    a.beat(&mut cg, &t, 2);
    b.beat(&mut cg, &t, 3);
    assert_eq!((count(&a.owned), count(&b.owned)), (1, 1));
    // Only a keeps heartbeating.
    cg.tick(40_000);
    a.beat(&mut cg, &t, 40_000);
    cg.tick(45_004);
    assert_eq!(cg.describe("g").expect("g").members.len(), 1);
    let answer = a.beat(&mut cg, &t, 45_005);
    assert_eq!(count(&a.owned), 2, "{answer:?}");
    // b's next heartbeat is from a member the group no longer knows.
    assert_eq!(
        code(cg.heartbeat(beat("b", b.epoch, &b.owned), &t, 45_006)),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn a_member_that_does_not_revoke_within_its_rebalance_timeout_is_removed() {
    let t = topics(&[("orders", T1, 2)]);
    let mut cg = coordinator();
    let mut a = Client::join(&mut cg, "a", &["orders"], &t, 0);
    let _b = Client::join(&mut cg, "b", &["orders"], &t, 0);
    a.beat(&mut cg, &t, 100); // asked to revoke one partition, 30 s to do it
                              // a keeps heartbeating (its session is fine) but never lets the partition go.
    let stubborn = parts(T1, &[0, 1]);
    for now in [10_000, 20_000, 30_000] {
        cg.heartbeat(beat("a", a.epoch, &stubborn), &t, now)
            .expect("still a member");
    }
    cg.tick(30_101);
    assert!(cg
        .describe("g")
        .expect("g")
        .members
        .iter()
        .all(|m| m.member_id != "a"));
}

#[test]
fn leaving_bumps_the_epoch_and_frees_the_partitions() {
    let t = topics(&[("orders", T1, 2)]);
    let mut cg = coordinator();
    let mut a = Client::join(&mut cg, "a", &["orders"], &t, 0);
    let mut b = Client::join(&mut cg, "b", &["orders"], &t, 0);
    a.beat(&mut cg, &t, 1);
    a.beat(&mut cg, &t, 2);
    b.beat(&mut cg, &t, 3);
    let left = cg
        .heartbeat(beat("b", -1, &Assignment::new()), &t, 4)
        .expect("leave");
    assert_eq!(left.member_epoch, -1);
    a.beat(&mut cg, &t, 5);
    assert_eq!(count(&a.owned), 2);
    assert_eq!(a.epoch, 3);
}

/// A member that was the only one subscribed to a topic takes the topic with it in one epoch
/// bump; OffsetDelete may then delete that topic's offsets.
#[test]
fn a_leaving_member_takes_its_topics_with_it_in_one_epoch() {
    let t = topics(&[("orders", T1, 1), ("audit", T2, 1)]);
    let mut cg = coordinator();
    let mut a = Client::join(&mut cg, "a", &["orders"], &t, 0);
    let _b = Client::join(&mut cg, "b", &["audit"], &t, 1);
    assert!(cg.is_subscribed("g", "audit"));
    cg.heartbeat(beat("b", -1, &Assignment::new()), &t, 2)
        .expect("leave");
    assert!(!cg.is_subscribed("g", "audit"));
    assert!(cg.is_subscribed("g", "orders"));
    let epoch = cg.describe("g").expect("g").group_epoch;
    a.beat(&mut cg, &t, 3);
    assert_eq!(
        cg.describe("g").expect("g").group_epoch,
        epoch,
        "no second bump"
    );
    assert_eq!(a.epoch, epoch);
}

fn static_join(member: &str, instance: &str) -> Heartbeat {
    Heartbeat {
        instance_id: Some(instance.into()),
        ..join(member, &["orders"])
    }
}

#[test]
fn a_static_member_that_leaves_temporarily_gets_its_partitions_back() {
    let t = topics(&[("orders", T1, 4)]);
    let mut cg = coordinator();
    let a1 = cg.heartbeat(static_join("a1", "A"), &t, 0).expect("join");
    let b = cg.heartbeat(static_join("b", "B"), &t, 0).expect("join");
    let mut a = Client {
        id: "a1".into(),
        epoch: a1.member_epoch,
        owned: a1.assignment.expect("assignment"),
    };
    let mut bc = Client {
        id: "b".into(),
        epoch: b.member_epoch,
        owned: b.assignment.expect("assignment"),
    };
    for now in 1..4 {
        a.beat(&mut cg, &t, now);
        bc.beat(&mut cg, &t, now);
    }
    let a_parts = a.owned.clone();
    let epoch = cg.describe("g").expect("g").group_epoch;

    // Instance A leaves with -2: it keeps its partitions reserved.
    let left = cg
        .heartbeat(
            Heartbeat {
                instance_id: Some("A".into()),
                ..beat("a1", -2, &Assignment::new())
            },
            &t,
            10,
        )
        .expect("static leave");
    assert_eq!(left.member_epoch, -2);
    // Nothing moves to B meanwhile.
    bc.beat(&mut cg, &t, 11);
    assert_eq!(count(&bc.owned), 2);

    // Another process claiming instance B while B is active is refused.
    assert_eq!(
        code(cg.heartbeat(static_join("intruder", "B"), &t, 12)),
        ErrorCode::UNRELEASED_INSTANCE_ID
    );

    // A comes back as a new member id: same partitions, no new group epoch.
    let back = cg
        .heartbeat(static_join("a2", "A"), &t, 13)
        .expect("rejoin");
    assert_eq!(back.assignment, Some(a_parts));
    let d = cg.describe("g").expect("g");
    assert_eq!(d.group_epoch, epoch);
    assert!(d.members.iter().all(|m| m.member_id != "a1"));
    // The old member id is fenced by the new one.
    assert_eq!(
        code(cg.heartbeat(
            Heartbeat {
                instance_id: Some("A".into()),
                ..beat("a1", 1, &Assignment::new())
            },
            &t,
            14
        )),
        ErrorCode::FENCED_INSTANCE_ID
    );
}

#[test]
fn a_static_member_that_does_not_come_back_expires_after_its_session() {
    let t = topics(&[("orders", T1, 2)]);
    let mut cg = coordinator();
    cg.heartbeat(static_join("a1", "A"), &t, 0).expect("join");
    cg.heartbeat(
        Heartbeat {
            instance_id: Some("A".into()),
            ..beat("a1", -2, &Assignment::new())
        },
        &t,
        1,
    )
    .expect("static leave");
    cg.tick(44_000);
    assert_eq!(cg.describe("g").expect("g").members.len(), 1);
    cg.tick(45_001);
    assert_eq!(cg.describe("g").expect("g").state, "Empty");
}

#[test]
fn a_regex_subscription_picks_up_a_topic_created_later() {
    let mut t = topics(&[("metrics-a", T1, 1), ("other", [9; 16], 1)]);
    let mut cg = coordinator();
    let a = cg
        .heartbeat(
            Heartbeat {
                subscribed_topic_names: None,
                subscribed_topic_regex: Some("metrics-.*".into()),
                ..join("a", &[])
            },
            &t,
            0,
        )
        .expect("join");
    // As in Kafka, a new regex is resolved after the heartbeat that brought it: the first
    // answer holds only literal topics (none here), the next one the matches.
    assert_eq!(a.assignment, Some(Assignment::new()));
    let mut c = Client {
        id: "a".into(),
        epoch: a.member_epoch,
        owned: Assignment::new(),
    };
    c.beat(&mut cg, &t, 1);
    assert_eq!(c.owned, parts(T1, &[0]));
    let epoch = c.epoch;
    t.insert("metrics-b", T2, 2);
    let answer = c.beat(&mut cg, &t, 2);
    assert_eq!(answer.member_epoch, epoch + 1);
    let mut want = parts(T1, &[0]);
    want.insert(T2, BTreeSet::from([0, 1]));
    assert_eq!(c.owned, want);
}

/// A subscription of a regex and a topic name: the named topic is assigned at once, the matches
/// of a regex new to the group on the next heartbeat (librdkafka's 0045 expects Kafka's order).
#[test]
fn literal_topics_come_first_and_a_new_regexs_matches_next() {
    let t = topics(&[("metrics-a", T1, 1), ("orders", T2, 2)]);
    let mut cg = coordinator();
    let a = cg
        .heartbeat(
            Heartbeat {
                subscribed_topic_regex: Some("metrics-.*".into()),
                ..join("a", &["orders"])
            },
            &t,
            0,
        )
        .expect("join");
    assert_eq!(a.assignment, Some(parts(T2, &[0, 1])));
    let mut c = Client {
        id: "a".into(),
        epoch: a.member_epoch,
        owned: parts(T2, &[0, 1]),
    };
    assert!(!cg.is_subscribed("g", "metrics-a"), "not resolved yet");
    c.beat(&mut cg, &t, 1);
    assert!(cg.is_subscribed("g", "metrics-a"));
    let mut want = parts(T2, &[0, 1]);
    want.insert(T1, BTreeSet::from([0]));
    assert_eq!(c.owned, want);
}

#[test]
fn an_invalid_regex_is_refused_and_leaves_no_group() {
    let t = topics(&[]);
    let mut cg = coordinator();
    let e = cg
        .heartbeat(
            Heartbeat {
                subscribed_topic_names: None,
                subscribed_topic_regex: Some("(unclosed".into()),
                ..join("a", &[])
            },
            &t,
            0,
        )
        .expect_err("invalid regex");
    assert_eq!(e.code, ErrorCode::INVALID_REGULAR_EXPRESSION);
    assert!(e
        .message
        .as_deref()
        .is_some_and(|m| m.starts_with("SubscribedTopicRegex `(unclosed` is not a valid")));
    assert!(!cg.contains("g"));
}

#[test]
fn the_range_assignor_is_used_when_members_ask_for_it() {
    let t = topics(&[("orders", T1, 3)]);
    let mut cg = coordinator();
    let ask = |m: &str| Heartbeat {
        server_assignor: Some("range".into()),
        ..join(m, &["orders"])
    };
    cg.heartbeat(ask("a"), &t, 0).expect("join");
    cg.heartbeat(ask("b"), &t, 0).expect("join");
    let d = cg.describe("g").expect("g");
    assert_eq!(d.assignor_name, "range");
    let target: BTreeMap<String, Assignment> = d
        .members
        .into_iter()
        .map(|m| (m.member_id, m.target_assignment))
        .collect();
    assert_eq!(target["a"], parts(T1, &[0, 1]));
    assert_eq!(target["b"], parts(T1, &[2]));
}

#[test]
fn offset_commits_and_fetches_check_the_member_epoch() {
    let t = topics(&[("orders", T1, 1)]);
    let mut cg = coordinator();
    assert!(
        cg.validate_offset_commit("g", "", -1, 9).is_none(),
        "not a consumer group"
    );
    let a = Client::join(&mut cg, "a", &["orders"], &t, 0);
    assert_eq!(
        cg.validate_offset_commit("g", "a", a.epoch, 9),
        Some(Ok(()))
    );
    let stale = cg
        .validate_offset_commit("g", "a", a.epoch - 1, 9)
        .expect("consumer group")
        .expect_err("stale");
    assert_eq!(stale.code, ErrorCode::STALE_MEMBER_EPOCH);
    assert_eq!(
        cg.validate_offset_commit("g", "x", 1, 9)
            .expect("consumer group")
            .map_err(|e| e.code),
        Err(ErrorCode::UNKNOWN_MEMBER_ID)
    );
    // Members of a consumer group must commit with v9+.
    assert_eq!(
        cg.validate_offset_commit("g", "a", a.epoch, 8)
            .expect("consumer group")
            .map_err(|e| e.code),
        Err(ErrorCode::UNSUPPORTED_VERSION)
    );
    // Without a member, only while the group is empty.
    assert_eq!(
        cg.validate_offset_commit("g", "", -1, 9)
            .expect("consumer group")
            .map_err(|e| e.code),
        Err(ErrorCode::UNKNOWN_MEMBER_ID)
    );
    assert_eq!(cg.validate_offset_fetch("g", None, -1), Some(Ok(())));
    assert_eq!(
        cg.validate_offset_fetch("g", Some("a"), a.epoch + 1)
            .expect("consumer group")
            .map_err(|e| e.code),
        Err(ErrorCode::STALE_MEMBER_EPOCH)
    );
}

#[test]
fn transactional_commits_fence_stale_members_and_take_anonymous_ones() {
    let t = topics(&[("orders", T1, 1)]);
    let mut cg = coordinator();
    let a = Client::join(&mut cg, "a", &["orders"], &t, 0);
    let check = |cg: &ConsumerGroups, member, instance, epoch| {
        cg.validate_txn_offset_commit("g", member, instance, epoch)
            .expect("consumer group")
            .map_err(|e| e.code)
    };
    assert_eq!(check(&cg, "a", None, a.epoch), Ok(()));
    assert_eq!(
        check(&cg, "a", None, a.epoch - 1),
        Err(ErrorCode::STALE_MEMBER_EPOCH)
    );
    assert_eq!(check(&cg, "x", None, 1), Err(ErrorCode::UNKNOWN_MEMBER_ID));
    // TxnOffsetCommit before v3 names neither member nor epoch: taken (a plain commit is not).
    assert_eq!(check(&cg, "", None, -1), Ok(()));
    assert!(cg
        .validate_txn_offset_commit("other", "", None, -1)
        .is_none());
}

#[test]
fn deleting_needs_an_empty_group() {
    let t = topics(&[("orders", T1, 1)]);
    let mut cg = coordinator();
    Client::join(&mut cg, "a", &["orders"], &t, 0);
    assert_eq!(cg.delete("g"), Some(ErrorCode::NON_EMPTY_GROUP));
    cg.heartbeat(beat("a", -1, &Assignment::new()), &t, 1)
        .expect("leave");
    assert_eq!(cg.delete("g"), Some(ErrorCode::NONE));
    assert!(!cg.contains("g"));
    assert_eq!(cg.delete("g"), None);
}

/// What the records say is what the group was: a coordinator rebuilt from the records of every
/// change describes the same group, and its members continue at their epochs.
#[test]
fn the_group_is_rebuilt_from_its_records() {
    let t = topics(&[("orders", T1, 4)]);
    let mut cg = coordinator();
    let mut log: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut persist = |cg: &mut ConsumerGroups| {
        for r in cg.take_records() {
            let (k, v) = r.encode();
            match v {
                Some(v) => log.insert(k, v),
                None => log.remove(&k),
            };
        }
    };
    let mut a = Client::join(&mut cg, "a", &["orders"], &t, 0);
    persist(&mut cg);
    let mut b = Client::join(&mut cg, "b", &["orders"], &t, 1);
    persist(&mut cg);
    a.beat(&mut cg, &t, 2);
    persist(&mut cg);
    let c = Client::join(&mut cg, "c", &["orders"], &t, 3);
    persist(&mut cg);
    cg.heartbeat(beat("c", -1, &Assignment::new()), &t, 4)
        .expect("leave");
    persist(&mut cg);
    drop(c);

    let mut rebuilt = coordinator();
    for (k, v) in &log {
        let record = GroupRecord::decode(k, Some(v))
            .expect("decodes")
            .expect("group record");
        rebuilt.replay(record, 100);
    }
    rebuilt.finish_replay(&t);
    let (before, after) = (
        cg.describe("g").expect("g"),
        rebuilt.describe("g").expect("rebuilt"),
    );
    assert_eq!(
        (before.state, before.group_epoch, before.assignment_epoch),
        (after.state, after.group_epoch, after.assignment_epoch)
    );
    let view = |d: &GroupDescription| -> Vec<(String, i32, Assignment, Assignment)> {
        d.members
            .iter()
            .map(|m| {
                (
                    m.member_id.clone(),
                    m.member_epoch,
                    m.assignment.clone(),
                    m.target_assignment.clone(),
                )
            })
            .collect()
    };
    assert_eq!(view(&before), view(&after));
    // The members carry on against the rebuilt coordinator.
    a.beat(&mut rebuilt, &t, 101);
    b.beat(&mut rebuilt, &t, 102);
    a.beat(&mut rebuilt, &t, 103);
    b.beat(&mut rebuilt, &t, 104);
    assert_eq!(count(&a.owned) + count(&b.owned), 4);
    assert!(a.owned[&T1].is_disjoint(&b.owned[&T1]));
    // Nothing to write back for state that came from the log.
    assert!(coordinator().take_records().is_empty());
}

// --- Online migration between the classic and the consumer protocol ---

/// A consumer-protocol subscription (version 1) of `names` owning `owned` of "orders".
fn subscription(names: &[&str], owned: &[i32]) -> Bytes {
    let mut b = Vec::new();
    b.extend_from_slice(&1i16.to_be_bytes());
    b.extend_from_slice(&(names.len() as i32).to_be_bytes());
    for n in names {
        b.extend_from_slice(&(n.len() as i16).to_be_bytes());
        b.extend_from_slice(n.as_bytes());
    }
    b.extend_from_slice(&(-1i32).to_be_bytes());
    if owned.is_empty() {
        b.extend_from_slice(&0i32.to_be_bytes());
    } else {
        b.extend_from_slice(&1i32.to_be_bytes());
        b.extend_from_slice(&6i16.to_be_bytes());
        b.extend_from_slice(b"orders");
        b.extend_from_slice(&(owned.len() as i32).to_be_bytes());
        for p in owned {
            b.extend_from_slice(&p.to_be_bytes());
        }
    }
    Bytes::from(b)
}

fn orders(ps: &[i32]) -> consumer_protocol::TopicPartitions {
    consumer_protocol::TopicPartitions::from([("orders".to_string(), ps.to_vec())])
}

/// The partitions of "orders" in a SyncGroup assignment.
fn synced(assignment: &[u8]) -> Vec<i32> {
    consumer_protocol::assignment_partitions(assignment)
        .expect("an assignment")
        .remove("orders")
        .unwrap_or_default()
}

/// A classic group at generation 3 whose one member "a" (range, then roundrobin) owns every
/// partition of "orders".
fn classic_group(partitions: i32) -> MigratingGroup {
    MigratingGroup {
        group_id: "g".into(),
        generation_id: 3,
        protocol_name: Some("range".into()),
        members: vec![MigratingMember {
            member_id: "a".into(),
            client_id: "classic".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocols: vec![
                ("range".into(), subscription(&["orders"], &[])),
                ("roundrobin".into(), subscription(&["orders"], &[])),
            ],
            assignment: consumer_protocol::encode_assignment(
                1,
                &orders(&(0..partitions).collect::<Vec<_>>()),
            ),
            ..MigratingMember::default()
        }],
    }
}

fn classic_join_of(member: &str, owned: &[i32]) -> JoinRequest {
    JoinRequest {
        group_id: "g".into(),
        member_id: member.into(),
        group_instance_id: None,
        client_id: "classic".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), subscription(&["orders"], owned))],
        require_known_member_id: false,
    }
}

fn sync_of(member: &str, generation_id: i32) -> ClassicSync<'_> {
    ClassicSync {
        group_id: "g",
        member_id: member,
        instance_id: None,
        generation_id,
        protocol_type: Some("consumer"),
        protocol_name: Some("range"),
    }
}

/// The partitions of "orders" each member holds now: the classic member's as its SyncGroup
/// says, the consumer-protocol member's as its heartbeats said.
fn assert_disjoint(classic: &[i32], modern: &Assignment) {
    let modern = modern.get(&T1).cloned().unwrap_or_default();
    assert!(
        classic.iter().all(|p| !modern.contains(p)),
        "{classic:?} and {modern:?} overlap"
    );
}

#[test]
fn an_upgraded_classic_member_gives_up_partitions_through_join_and_sync() {
    let t = topics(&[("orders", T1, 4)]);
    let mut cg = coordinator();
    cg.upgrade(classic_group(4), &t, 0).expect("upgrade");
    // The classic member is in at its generation, with its partitions, before anyone else.
    let d = cg.describe("g").expect("group");
    assert_eq!((d.group_epoch, d.assignment_epoch), (3, 3));
    assert_eq!(d.members[0].assignment, parts(T1, &[0, 1, 2, 3]));
    assert_eq!(
        cg.classic_heartbeat("g", "a", None, 3, 100),
        ErrorCode::NONE
    );

    // A consumer-protocol member joins: half the partitions are its target, none free yet.
    let mut b = Client::join(&mut cg, "b", &["orders"], &t, 200);
    assert_eq!(b.epoch, 4);
    assert!(b.owned.is_empty(), "{:?}", b.owned);
    // The classic member is asked to rejoin; a cooperative one rejoins still owning all four.
    assert_eq!(
        cg.classic_heartbeat("g", "a", None, 3, 300),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    let joined = cg
        .classic_join(classic_join_of("a", &[0, 1, 2, 3]), &t, 400)
        .expect("rejoin");
    assert_eq!(
        (joined.generation_id, joined.protocol_name.as_str()),
        (3, "range")
    );
    let kept = synced(&cg.classic_sync(&sync_of("a", 3), 500).expect("sync"));
    assert_eq!(kept.len(), 2);
    // Until it rejoins without the others, it must rejoin and b gets nothing.
    assert_eq!(
        cg.classic_heartbeat("g", "a", None, 3, 600),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    b.beat(&mut cg, &t, 650);
    assert!(b.owned.is_empty(), "{:?}", b.owned);
    let joined = cg
        .classic_join(classic_join_of("a", &kept), &t, 700)
        .expect("rejoin");
    assert_eq!(joined.generation_id, 4);
    assert_eq!(
        synced(&cg.classic_sync(&sync_of("a", 4), 800).expect("sync")),
        kept
    );
    assert_eq!(
        cg.classic_heartbeat("g", "a", None, 4, 900),
        ErrorCode::NONE
    );
    // Now b gets the two a gave up.
    b.beat(&mut cg, &t, 1_000);
    assert_eq!(count(&b.owned), 2);
    assert_disjoint(&kept, &b.owned);
    assert_eq!(cg.describe("g").expect("group").state, "Stable");
}

#[test]
fn a_classic_member_joining_a_consumer_group_waits_for_released_partitions() {
    let t = topics(&[("orders", T1, 4)]);
    let mut cg = coordinator();
    let mut b = Client::join(&mut cg, "b", &["orders"], &t, 0);
    assert_eq!(count(&b.owned), 4);
    // An eager classic member joins (empty member id: it is given one).
    let joined = cg
        .classic_join(classic_join_of("", &[]), &t, 100)
        .expect("join");
    let c = joined.member_id.clone();
    assert!(!c.is_empty());
    let gen = joined.generation_id;
    assert!(synced(&cg.classic_sync(&sync_of(&c, gen), 200).expect("sync")).is_empty());
    assert_eq!(
        cg.classic_heartbeat("g", &c, None, gen, 300),
        ErrorCode::NONE
    );
    // b revokes two partitions; the classic member is then told to rejoin for them.
    b.beat(&mut cg, &t, 400);
    assert_eq!(count(&b.owned), 2);
    b.beat(&mut cg, &t, 500);
    assert_eq!(
        cg.classic_heartbeat("g", &c, None, gen, 600),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    let joined = cg
        .classic_join(classic_join_of(&c, &[]), &t, 700)
        .expect("rejoin");
    let got = synced(
        &cg.classic_sync(&sync_of(&c, joined.generation_id), 800)
            .expect("sync"),
    );
    assert_eq!(got.len(), 2);
    assert_disjoint(&got, &b.owned);
}

#[test]
fn the_last_consumer_protocol_member_leaving_hands_the_group_back_to_classic() {
    let t = topics(&[("orders", T1, 4)]);
    let mut cg = coordinator();
    cg.upgrade(classic_group(4), &t, 0).expect("upgrade");
    let b = Client::join(&mut cg, "b", &["orders"], &t, 100);
    assert!(cg.take_downgrades().is_empty());
    cg.take_records();
    // b leaves: only the classic member is left, so the group goes back, with its partitions.
    let left = cg.heartbeat(
        Heartbeat {
            member_epoch: LEAVE_GROUP_MEMBER_EPOCH,
            ..beat(&b.id, b.epoch, &b.owned)
        },
        &t,
        200,
    );
    assert!(left.is_ok(), "{left:?}");
    assert!(!cg.contains("g"));
    let back = cg.take_downgrades();
    assert_eq!(back.len(), 1);
    let g = &back[0];
    assert_eq!(g.members.len(), 1);
    assert_eq!(g.members[0].member_id, "a");
    assert_eq!(g.members[0].session_timeout_ms, 10_000);
    assert_eq!(g.members[0].protocols.len(), 2);
    assert_eq!(synced(&g.members[0].assignment), vec![0, 1, 2, 3]);
    assert!(g.generation_id > 3);
    // The group's records are removed from the log: its members' and both epochs.
    let records = cg.take_records();
    assert!(records.contains(&GroupRecord::GroupEpoch {
        group_id: "g".into(),
        epoch: None
    }));
    assert!(records.contains(&GroupRecord::Member {
        group_id: "g".into(),
        member_id: "a".into(),
        value: None
    }));
}

#[test]
fn a_consumer_protocol_member_whose_session_ends_downgrades_too() {
    let t = topics(&[("orders", T1, 2)]);
    let mut cg = coordinator();
    cg.upgrade(classic_group(2), &t, 0).expect("upgrade");
    Client::join(&mut cg, "b", &["orders"], &t, 0);
    // The classic member keeps heartbeating; b's 45 s session runs out.
    assert_eq!(
        cg.classic_heartbeat("g", "a", None, 3, 40_000),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    cg.tick(46_000);
    assert_eq!(cg.take_downgrades().len(), 1);
    assert!(!cg.contains("g"));
}

#[test]
fn classic_requests_are_checked_as_kafka_checks_them() {
    let t = topics(&[("orders", T1, 2)]);
    let mut cg = coordinator();
    cg.upgrade(classic_group(2), &t, 0).expect("upgrade");
    let b = Client::join(&mut cg, "b", &["orders"], &t, 0);
    // Another protocol type, or assignors the classic members do not share.
    let mut other = classic_join_of("", &[]);
    other.protocol_type = "connect".into();
    assert_eq!(
        cg.classic_join(other, &t, 10),
        Err(ErrorCode::INCONSISTENT_GROUP_PROTOCOL)
    );
    let mut sticky = classic_join_of("", &[]);
    sticky.protocols = vec![("sticky".into(), subscription(&["orders"], &[]))];
    assert_eq!(
        cg.classic_join(sticky, &t, 10),
        Err(ErrorCode::INCONSISTENT_GROUP_PROTOCOL)
    );
    // Generations, unknown and consumer-protocol members, the protocol named in SyncGroup.
    assert_eq!(
        cg.classic_sync(&sync_of("a", 2), 20),
        Err(ErrorCode::ILLEGAL_GENERATION)
    );
    assert_eq!(
        cg.classic_heartbeat("g", "a", None, 9, 20),
        ErrorCode::ILLEGAL_GENERATION
    );
    assert_eq!(
        cg.classic_heartbeat("g", &b.id, None, b.epoch, 20),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        cg.classic_heartbeat("g", "nobody", None, 3, 20),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
    let wrong_name = ClassicSync {
        protocol_name: Some("roundrobin"),
        ..sync_of("a", 3)
    };
    assert_eq!(
        cg.classic_sync(&wrong_name, 20),
        Err(ErrorCode::INCONSISTENT_GROUP_PROTOCOL)
    );
    // The group moved on (b joined): a SyncGroup of the old generation must rejoin first.
    assert_eq!(
        cg.classic_sync(&sync_of("a", 3), 20),
        Err(ErrorCode::REBALANCE_IN_PROGRESS)
    );
    // A classic member commits with its generation at any OffsetCommit version.
    assert_eq!(cg.validate_offset_commit("g", "a", 3, 2), Some(Ok(())));
    assert_eq!(
        cg.validate_offset_commit("g", "a", 2, 8)
            .map(|r| r.map_err(|e| e.code)),
        Some(Err(ErrorCode::ILLEGAL_GENERATION))
    );
    assert_eq!(
        cg.validate_offset_commit("g", &b.id, b.epoch, 8)
            .map(|r| r.map_err(|e| e.code)),
        Some(Err(ErrorCode::UNSUPPORTED_VERSION))
    );
    // LeaveGroup removes classic members only.
    assert_eq!(
        cg.classic_leave("g", &[("a".into(), None), (b.id.clone(), None)]),
        vec![ErrorCode::NONE, ErrorCode::UNKNOWN_MEMBER_ID]
    );
    assert_eq!(cg.describe("g").expect("group").members.len(), 1);
}

#[test]
fn classic_members_are_rebuilt_from_their_records() {
    let t = topics(&[("orders", T1, 2)]);
    let mut cg = coordinator();
    cg.upgrade(classic_group(2), &t, 0).expect("upgrade");
    Client::join(&mut cg, "b", &["orders"], &t, 0);
    let mut again = coordinator();
    for r in cg.take_records() {
        again.replay(r, 1_000);
    }
    again.finish_replay(&t);
    // Still a classic member (its heartbeat is taken), at its epoch, with its protocols.
    assert_eq!(
        again.classic_heartbeat("g", "a", None, 3, 1_100),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    let joined = again
        .classic_join(classic_join_of("a", &[]), &t, 1_200)
        .expect("rejoin");
    assert_eq!(joined.generation_id, 4);
}
