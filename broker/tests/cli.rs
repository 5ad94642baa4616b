//! The operator CLI end to end: the built `weir` binary against a broker it started itself.

use crate::common::Broker;

#[test]
fn topic_lifecycle() {
    let b = Broker::start(&[]);
    let out = b.cli_ok(
        &[
            "topic",
            "create",
            "orders",
            "-p",
            "3",
            "-c",
            "retention.ms=3600000",
        ],
        "",
    );
    assert_eq!(out.trim(), "created topic orders with 3 partition(s)");

    let list = b.cli_ok(&["topic", "list"], "");
    assert_eq!(list, "TOPIC   PARTITIONS\norders  3\n");

    let desc: serde_json::Value =
        serde_json::from_str(&b.cli_ok(&["topic", "describe", "orders", "--output", "json"], ""))
            .expect("json");
    assert_eq!(desc["partitions"].as_array().map(Vec::len), Some(3));
    let retention = desc["configs"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "retention.ms"))
        .cloned()
        .expect("retention.ms listed");
    assert_eq!(retention["value"], "3600000");
    assert_eq!(retention["default"], false);

    b.cli_ok(
        &[
            "topic",
            "alter",
            "orders",
            "-p",
            "5",
            "-c",
            "retention.ms=60000",
        ],
        "",
    );
    let desc: serde_json::Value =
        serde_json::from_str(&b.cli_ok(&["topic", "describe", "orders", "--output", "json"], ""))
            .expect("json");
    assert_eq!(desc["partitions"].as_array().map(Vec::len), Some(5));
    let retention = desc["configs"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "retention.ms"))
        .cloned()
        .expect("retention.ms listed");
    assert_eq!(retention["value"], "60000");

    // Shrinking is refused with a hint.
    let shrink = b.cli(&["topic", "alter", "orders", "-p", "2"], "");
    assert!(!shrink.status.success());
    let err = String::from_utf8_lossy(&shrink.stderr);
    assert!(err.contains("INVALID_PARTITIONS"), "{err}");

    let out = b.cli_ok(&["topic", "delete", "orders"], "");
    assert_eq!(out.trim(), "deleted topic orders");
    let list = b.cli_ok(&["topic", "list", "--output", "json"], "");
    assert_eq!(list.trim(), r#"{"topics":[]}"#);

    let missing = b.cli(&["topic", "describe", "orders"], "");
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{err}");
}

#[test]
fn produce_then_consume_exactly_and_group_lag() {
    let b = Broker::start(&[]);
    b.cli_ok(&["topic", "create", "lines", "-p", "1"], "");
    let produced: serde_json::Value = serde_json::from_str(&b.cli_ok(
        &["produce", "lines", "-H", "source=test", "--output", "json"],
        "first\nsecond\nthird\n",
    ))
    .expect("json");
    assert_eq!(produced["records"], 3);
    assert_eq!(produced["partitions"][0]["first_offset"], 0);
    assert_eq!(produced["partitions"][0]["last_offset"], 2);

    let out = b.cli_ok(&["consume", "lines", "--from-beginning", "-n", "3"], "");
    assert_eq!(out, "first\nsecond\nthird\n");

    // JSON output carries offsets and headers.
    let out = b.cli_ok(
        &[
            "consume",
            "lines",
            "--partition",
            "0",
            "--offset",
            "1",
            "-n",
            "1",
            "--output",
            "json",
        ],
        "",
    );
    let rec: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(rec["offset"], 1);
    assert_eq!(rec["value"], "second");
    assert_eq!(rec["headers"]["source"], "test");

    // As a group: read two, commit, and the group shows offset 2 with lag 1.
    let out = b.cli_ok(
        &[
            "consume",
            "lines",
            "--from-beginning",
            "-n",
            "2",
            "--group",
            "readers",
        ],
        "",
    );
    assert_eq!(out, "first\nsecond\n");
    let desc: serde_json::Value =
        serde_json::from_str(&b.cli_ok(&["group", "describe", "readers", "--output", "json"], ""))
            .expect("json");
    assert_eq!(desc["state"], "Empty");
    let offsets = desc["offsets"].as_array().expect("offsets");
    assert_eq!(offsets.len(), 1);
    assert_eq!(offsets[0]["topic"], "lines");
    assert_eq!(offsets[0]["partition"], 0);
    assert_eq!(offsets[0]["committed_offset"], 2);
    assert_eq!(offsets[0]["log_end_offset"], 3);
    assert_eq!(offsets[0]["lag"], 1);

    // The human table shows the same.
    let table = b.cli_ok(&["group", "describe", "readers"], "");
    let row = table
        .lines()
        .find(|l| l.starts_with("lines"))
        .expect("row for lines");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..5], ["lines", "0", "2", "3", "1"]);

    // The group resumes from its committed offset.
    let out = b.cli_ok(&["consume", "lines", "-n", "1", "--group", "readers"], "");
    assert_eq!(out, "third\n");

    let list = b.cli_ok(&["group", "list"], "");
    assert!(list.lines().any(|l| l.starts_with("readers")), "{list}");

    let reset = b.cli_ok(
        &[
            "group",
            "reset-offsets",
            "readers",
            "--topic",
            "lines",
            "--to-earliest",
            "--output",
            "json",
        ],
        "",
    );
    let reset: serde_json::Value = serde_json::from_str(reset.trim()).expect("json");
    assert_eq!(reset["offsets"][0]["committed_offset"], 0);

    b.cli_ok(&["group", "delete", "readers"], "");
    let list = b.cli_ok(&["group", "list", "--output", "json"], "");
    assert!(!list.contains("\"readers\""), "{list}");
}

/// `weir produce` to a topic that does not exist yet auto-creates it, asking again while the
/// broker answers that it is on its way, as Kafka clients do.
#[test]
fn produce_auto_creates_a_topic() {
    let b = Broker::start(&[]);
    let produced: serde_json::Value =
        serde_json::from_str(&b.cli_ok(&["produce", "fresh", "--output", "json"], "one\ntwo\n"))
            .expect("json");
    assert_eq!(produced["records"], 2);
    let out = b.cli_ok(&["consume", "fresh", "--from-beginning", "-n", "2"], "");
    assert_eq!(out, "one\ntwo\n");
}

#[test]
fn keys_and_cluster_info() {
    let b = Broker::start(&[]);
    b.cli_ok(&["topic", "create", "keyed", "-p", "4"], "");
    b.cli_ok(
        &["produce", "keyed", "--key-separator", ":"],
        "a:1\nb:2\na:3\n",
    );
    let out = b.cli_ok(
        &[
            "consume",
            "keyed",
            "--from-beginning",
            "-n",
            "3",
            "--output",
            "json",
        ],
        "",
    );
    let recs: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(recs.len(), 3);
    // Same key, same partition, in order.
    let a: Vec<&serde_json::Value> = recs.iter().filter(|r| r["key"] == "a").collect();
    assert_eq!(a.len(), 2);
    assert_eq!(a[0]["partition"], a[1]["partition"]);
    assert_eq!(a[0]["value"], "1");
    assert_eq!(a[1]["value"], "3");

    let bad = b.cli(
        &["produce", "keyed", "--key-separator", ":"],
        "no-separator\n",
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("line 1 has no key separator"));

    let info: serde_json::Value =
        serde_json::from_str(&b.cli_ok(&["cluster", "info", "--output", "json"], ""))
            .expect("json");
    assert_eq!(info["brokers"][0]["port"], b.kafka.port());
    assert_eq!(info["topics"], 1);
    assert_eq!(info["partitions"], 4);
    assert_eq!(info["cluster_id"].as_str().map(str::len), Some(22));
}

#[test]
fn unreachable_broker_says_what_to_do() {
    let port = crate::common::free_port();
    let out = crate::common::run_cli(&format!("127.0.0.1:{port}"), &["topic", "list"], "");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot connect to 127.0.0.1:{port}"))
            && err.contains("is `weir serve` running?"),
        "{err}"
    );
}

/// `weir group describe`, `group list` and the admin API show consumer-protocol (KIP-848) groups
/// too: their members and assignments come from ConsumerGroupDescribe.
#[test]
fn group_commands_show_consumer_protocol_groups() {
    use std::io::{Read, Write};
    use weir_protocol::client::{decode_response, encode_request};
    use weir_protocol::{ConsumerGroupHeartbeatRequest, ErrorCode, Request, Response};

    let b = Broker::start(&[]);
    b.cli_ok(&["topic", "create", "events", "-p", "2"], "");
    // Join a consumer group as a member would, over the wire.
    let mut s = std::net::TcpStream::connect(b.kafka).expect("connect");
    let request = Request::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest {
        group_id: "modern".into(),
        member_id: "member-1".into(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(vec!["events".into()]),
        topic_partitions: Some(Vec::new()),
        ..Default::default()
    });
    let (frame, v) = encode_request(1, "cli-test", &request).expect("encode");
    s.write_all(&frame).expect("write");
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("size");
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).expect("body");
    let (_, response) =
        decode_response(request.api_key(), v, body.into()).expect("decode response");
    let Response::ConsumerGroupHeartbeat(joined) = response else {
        panic!("unexpected {response:?}")
    };
    assert_eq!(joined.error_code, ErrorCode::NONE);

    let desc: serde_json::Value =
        serde_json::from_str(&b.cli_ok(&["group", "describe", "modern", "--output", "json"], ""))
            .expect("json");
    assert_eq!(desc["state"], "Stable");
    assert_eq!(desc["protocol_type"], "consumer");
    assert_eq!(desc["members"][0]["member_id"], "member-1");
    assert_eq!(
        desc["members"][0]["assignment"]["events"],
        serde_json::json!([0, 1])
    );

    let list: serde_json::Value =
        serde_json::from_str(&b.cli_ok(&["group", "list", "--output", "json"], "")).expect("json");
    let modern = list["groups"]
        .as_array()
        .and_then(|gs| gs.iter().find(|g| g["group_id"] == "modern"))
        .cloned()
        .expect("modern listed");
    assert_eq!(modern["type"], "consumer");

    // The admin API lists and describes it too.
    let groups = crate::common::get_json(b.admin, "/v1/groups");
    let listed = groups["groups"]
        .as_array()
        .and_then(|gs| gs.iter().find(|g| g["group_id"] == "modern"))
        .cloned()
        .expect("modern in /v1/groups");
    assert_eq!(listed["state"], "Stable");
    let detail = crate::common::get_json(b.admin, "/v1/groups/modern");
    assert_eq!(detail["protocol_type"], "consumer");
    assert_eq!(detail["members"][0]["member_id"], "member-1");
}

/// `weir acl add|list|remove` through a broker with the authorizer on (the CLI's PLAINTEXT
/// principal, `User:ANONYMOUS`, is the super user here), and what it says without an authorizer.
#[test]
fn acl_commands() {
    let b = Broker::start(&["--authorizer", "on", "--super-users", "User:ANONYMOUS"]);
    let out = b.cli_ok(
        &[
            "acl",
            "add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read,Write",
            "--topic",
            "orders",
        ],
        "",
    );
    assert!(out.starts_with("added 2 ACL(s)\n"), "{out}");
    b.cli_ok(
        &[
            "acl",
            "add",
            "--deny-principal",
            "User:bob",
            "--deny-host",
            "10.0.0.9",
            "--operation",
            "All",
            "--topic",
            "ord",
            "--resource-pattern-type",
            "prefixed",
        ],
        "",
    );
    let listed: serde_json::Value =
        serde_json::from_str(&b.cli_ok(&["acl", "list", "--output", "json"], "")).expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");
    let bob: serde_json::Value = serde_json::from_str(&b.cli_ok(
        &["acl", "list", "--principal", "User:bob", "--output", "json"],
        "",
    ))
    .expect("json");
    assert_eq!(
        bob,
        serde_json::json!([{
            "resource_type": "TOPIC", "resource_name": "ord", "pattern_type": "PREFIXED",
            "principal": "User:bob", "host": "10.0.0.9", "operation": "ALL", "permission": "DENY",
        }])
    );
    // MATCH lists what applies to a topic: its literal ACLs and the prefix covering it.
    let applies: serde_json::Value = serde_json::from_str(&b.cli_ok(
        &[
            "acl",
            "list",
            "--topic",
            "orders",
            "--resource-pattern-type",
            "match",
            "--output",
            "json",
        ],
        "",
    ))
    .expect("json");
    assert_eq!(applies.as_array().map(Vec::len), Some(3), "{applies}");

    let out = b.cli_ok(
        &[
            "acl",
            "remove",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Write",
            "--topic",
            "orders",
        ],
        "",
    );
    assert!(out.starts_with("removed 1 ACL(s)\n"), "{out}");
    let out = b.cli_ok(&["acl", "remove", "--topic", "orders"], "");
    assert!(out.starts_with("removed 1 ACL(s)\n"), "{out}");
    let left: serde_json::Value =
        serde_json::from_str(&b.cli_ok(&["acl", "list", "--output", "json"], "")).expect("json");
    assert_eq!(left.as_array().map(Vec::len), Some(1), "{left}");

    let bad = b.cli(
        &[
            "acl",
            "add",
            "--allow-principal",
            "alice",
            "--operation",
            "Read",
            "--topic",
            "t",
        ],
        "",
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("principal"));

    // Without an authorizer, Kafka's SECURITY_DISABLED with what to do.
    let plain = Broker::start(&[]);
    let out = plain.cli(&["acl", "list"], "");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("SECURITY_DISABLED") && err.contains("--authorizer on"),
        "{err}"
    );
}
