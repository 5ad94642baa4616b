//! `weir partitions` on a single node, where every partition has its only possible replica set
//! and leader: the commands answer as Kafka would (nothing to move or elect) and refuse what
//! cannot be. The cluster behaviour is in tests-compat/test_cli_cluster.py.

use crate::common::Broker;

#[test]
fn partition_commands_on_a_single_node() {
    let b = Broker::start(&[]);
    b.cli_ok(&["topic", "create", "moves", "-p", "2"], "");

    assert_eq!(
        b.cli_ok(&["partitions", "reassignments"], "").trim(),
        "no reassignment in progress"
    );
    let listed: serde_json::Value = serde_json::from_str(&b.cli_ok(
        &[
            "partitions",
            "reassignments",
            "--topic",
            "moves",
            "--output",
            "json",
        ],
        "",
    ))
    .expect("json");
    assert_eq!(listed, serde_json::json!({"reassignments": []}));

    // Node 0 is the only broker: moving there changes nothing, anywhere else is refused.
    let out = b.cli_ok(
        &[
            "partitions",
            "reassign",
            "--topic",
            "moves",
            "--partition",
            "1",
            "--replicas",
            "0",
            "--wait",
        ],
        "",
    );
    assert_eq!(out.trim(), "moved moves[1] to replicas 0");
    let bad = b.cli(
        &[
            "partitions",
            "reassign",
            "--topic",
            "moves",
            "--partition",
            "0",
            "--replicas",
            "0,7",
        ],
        "",
    );
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("cannot reassign moves[0]: INVALID_REPLICA_ASSIGNMENT")
            && err.contains("broker 7"),
        "{err}"
    );
    let cancel = b.cli(
        &[
            "partitions",
            "reassign",
            "--topic",
            "moves",
            "--partition",
            "0",
            "--cancel",
        ],
        "",
    );
    assert_eq!(cancel.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&cancel.stderr).contains("NO_REASSIGNMENT_IN_PROGRESS"));
    // --replicas or --cancel, not both and not neither.
    let neither = b.cli(
        &[
            "partitions",
            "reassign",
            "--topic",
            "moves",
            "--partition",
            "0",
        ],
        "",
    );
    assert_eq!(neither.status.code(), Some(2));

    let elected = b.cli_ok(&["partitions", "elect-leaders", "--topic", "moves"], "");
    assert_eq!(
        elected,
        "TOPIC  PARTITION  RESULT\nmoves  0          already leads\nmoves  1          already leads\n"
    );
    assert_eq!(
        b.cli_ok(&["partitions", "elect-leaders", "--all"], "")
            .trim(),
        "every partition is led by its preferred replica"
    );
    let missing = b.cli(
        &[
            "partitions",
            "elect-leaders",
            "--topic",
            "moves",
            "--partition",
            "9",
        ],
        "",
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("UNKNOWN_TOPIC_OR_PARTITION"));
}
