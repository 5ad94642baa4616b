//! `/metrics` and the JSON admin API of a running `weir serve`, after real traffic from the CLI.

use crate::common::{get_json, http_get, sample, Broker};

#[test]
fn metrics_and_admin_api_reflect_traffic() {
    let b = Broker::start(&["--fsync", "always"]);
    b.cli_ok(&["topic", "create", "m", "-p", "2"], "");
    b.cli_ok(&["produce", "m", "--partition", "1"], "x\ny\nz\n");
    b.cli_ok(
        &[
            "consume",
            "m",
            "--group",
            "mg",
            "--from-beginning",
            "-n",
            "2",
        ],
        "",
    );
    // An error response: describing a topic that does not exist.
    assert!(!b.cli(&["topic", "describe", "nope"], "").status.success());

    let (status, text) = http_get(b.admin, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200);
    // 3 one-byte values in one batch: 61-byte header + 3 records of 8 bytes each, plus headers.
    let produced =
        sample(&text, "weir_produce_bytes_total", r#"topic="m""#).expect("produce bytes");
    assert!(produced >= 61.0 + 3.0, "{produced}");
    let fetched = sample(&text, "weir_fetch_bytes_total", r#"topic="m""#).expect("fetch bytes");
    assert_eq!(fetched, produced);
    assert_eq!(
        sample(
            &text,
            "weir_partition_log_end_offset",
            r#"topic="m",partition="1""#
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &text,
            "weir_partition_log_end_offset",
            r#"topic="m",partition="0""#
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            "weir_partition_size_bytes",
            r#"topic="m",partition="1""#
        ),
        Some(produced)
    );
    assert_eq!(
        sample(
            &text,
            "weir_group_committed_offset",
            r#"group="mg",topic="m",partition="1""#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            "weir_group_lag",
            r#"group="mg",topic="m",partition="1""#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "weir_requests_total", r#"api="Produce",version="9""#),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "weir_request_duration_seconds_count",
            r#"api="Produce",version="9""#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "weir_response_errors_total",
            r#"api="Metadata",error="UNKNOWN_TOPIC_OR_PARTITION",code="3""#
        ),
        Some(1.0)
    );
    // fsync=always: the produce and the offset commits were fsynced.
    let fsyncs = sample(&text, "weir_fsync_duration_seconds_count", "").expect("fsync count");
    assert!(fsyncs >= 2.0, "{fsyncs}");
    // Every CLI run was one connection (closing may still be under way, so only its presence is
    // checked for the gauge).
    assert!(sample(&text, "weir_connections_active", "").is_some());
    assert_eq!(
        sample(&text, "weir_connections_accepted_total", ""),
        Some(4.0)
    );
    assert!(text.ends_with("# EOF\n"));

    assert_eq!(get_json(b.admin, "/v1/health")["status"], "ok");
    assert_eq!(get_json(b.admin, "/v1/ready")["ready"], true);

    let topics = get_json(b.admin, "/v1/topics");
    let m = topics["topics"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["name"] == "m"))
        .cloned()
        .expect("topic m listed");
    assert_eq!(m["partitions"], 2);

    let topic = get_json(b.admin, "/v1/topics/m");
    assert_eq!(topic["partitions"][1]["log_start_offset"], 0);
    assert_eq!(topic["partitions"][1]["log_end_offset"], 3);
    assert_eq!(topic["partitions"][1]["high_watermark"], 3);
    assert!(topic["configs"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["name"] == "cleanup.policy")));

    let groups = get_json(b.admin, "/v1/groups");
    assert_eq!(groups["groups"][0]["group_id"], "mg");
    let group = get_json(b.admin, "/v1/groups/mg");
    assert_eq!(group["state"], "Empty");
    // Sorted by topic and partition; the CLI committed its position on both partitions.
    assert_eq!(group["offsets"][0]["partition"], 0);
    assert_eq!(group["offsets"][0]["committed_offset"], 0);
    assert_eq!(group["offsets"][0]["lag"], 0);
    assert_eq!(group["offsets"][1]["partition"], 1);
    assert_eq!(group["offsets"][1]["committed_offset"], 2);
    assert_eq!(group["offsets"][1]["high_watermark"], 3);
    assert_eq!(group["offsets"][1]["lag"], 1);

    let config = get_json(b.admin, "/v1/config");
    assert_eq!(config["fsync"], "always");
    assert_eq!(config["listener"], b.kafka.to_string());
    // No setup: no authorizer.
    assert_eq!(config["authorizer"], "off");

    let (status, body) = http_get(b.admin, "/v1/topics/nope").expect("GET");
    assert_eq!(status, 404);
    assert!(body.contains("no topic named 'nope'"), "{body}");
}

/// A single node through the cluster views: `/v1/cluster`, `/v1/cluster/partitions` (filters and
/// paging), `/v1/cluster/replicas`, the replication gauges, and `weir cluster nodes|partitions|
/// leaders`. Every partition is a healthy Raft group of one led by node 0.
#[test]
fn cluster_views_of_a_single_node() {
    let b = Broker::start(&[]);
    b.cli_ok(&["topic", "create", "c", "-p", "3"], "");
    b.cli_ok(&["produce", "c", "--partition", "2"], "x\ny\n");

    let c = get_json(b.admin, "/v1/cluster");
    assert_eq!(c["mode"], "single-node");
    assert_eq!(c["node_id"], 0);
    assert_eq!(c["controller_id"], 0);
    assert_eq!(c["is_controller"], true);
    assert_eq!(c["etcd_reachable"], serde_json::Value::Null);
    assert_eq!(c["brokers"][0]["node_id"], 0);
    assert_eq!(c["brokers"][0]["port"], b.kafka.port());
    assert_eq!(c["cluster_id"].as_str().map(str::len), Some(22));

    let all = get_json(b.admin, "/v1/cluster/partitions?topic=c");
    assert_eq!(all["total"], 3);
    assert_eq!(all["next"], serde_json::Value::Null);
    for (i, p) in all["partitions"]
        .as_array()
        .expect("list")
        .iter()
        .enumerate()
    {
        assert_eq!(p["topic"], "c");
        assert_eq!(p["partition"], i);
        assert_eq!(p["replicas"], serde_json::json!([0]));
        assert_eq!(p["isr"], serde_json::json!([0]));
        assert_eq!(p["leader"], 0);
        assert_eq!(p["under_replicated"], false);
        assert_eq!(p["offline"], false);
    }
    let none = get_json(b.admin, "/v1/cluster/partitions?under_replicated=true");
    assert_eq!(none["total"], 0);
    // Paging: two pages of two over c's three partitions.
    let first = get_json(b.admin, "/v1/cluster/partitions?topic=c&limit=2");
    assert_eq!(first["partitions"].as_array().map(Vec::len), Some(2));
    assert_eq!(first["next"], "c/1");
    let second = get_json(b.admin, "/v1/cluster/partitions?topic=c&limit=2&after=c/1");
    assert_eq!(second["partitions"][0]["partition"], 2);
    assert_eq!(second["next"], serde_json::Value::Null);
    let (status, body) =
        http_get(b.admin, "/v1/cluster/partitions?under-replicated=true").expect("GET");
    assert_eq!(status, 400);
    assert!(body.contains("unknown query parameter"), "{body}");

    let replicas = get_json(b.admin, "/v1/cluster/replicas?topic=c&role=leader");
    assert_eq!(replicas["total"], 3);
    let r2 = &replicas["replicas"][2];
    assert_eq!(r2["role"], "leader");
    assert_eq!(r2["high_watermark"], 2);
    assert_eq!(r2["log_end_offset"], 2);
    assert_eq!(r2["followers"], serde_json::json!([]));

    let (_, text) = http_get(b.admin, "/metrics").expect("GET /metrics");
    assert_eq!(
        sample(
            &text,
            "weir_partition_role",
            r#"topic="c",partition="1",role="leader""#
        ),
        Some(1.0)
    );
    assert!(sample(
        &text,
        "weir_partition_leader_epoch",
        r#"topic="c",partition="1""#
    )
    .is_some_and(|e| e >= 1.0));
    // c's three partitions and the default 16 of __consumer_offsets and of __share_group_state.
    assert_eq!(sample(&text, "weir_leader_partitions", ""), Some(35.0));
    assert_eq!(
        sample(&text, "weir_under_replicated_partitions", ""),
        Some(0.0)
    );
    assert_eq!(sample(&text, "weir_offline_partitions", ""), Some(0.0));
    assert_eq!(sample(&text, "weir_controller_active", ""), Some(1.0));
    assert_eq!(sample(&text, "weir_live_brokers", ""), Some(1.0));
    assert_eq!(sample(&text, "weir_etcd_reachable", ""), None);

    let nodes: serde_json::Value =
        serde_json::from_str(&b.cli_ok(&["cluster", "nodes", "--output", "json"], ""))
            .expect("json");
    assert_eq!(nodes["brokers"][0]["node_id"], 0);
    assert_eq!(nodes["brokers"][0]["controller"], true);
    assert_eq!(nodes["brokers"][0]["leaders"], 35);
    let parts: serde_json::Value = serde_json::from_str(&b.cli_ok(
        &["cluster", "partitions", "--topic", "c", "--output", "json"],
        "",
    ))
    .expect("json");
    assert_eq!(parts["partitions"].as_array().map(Vec::len), Some(3));
    assert_eq!(parts["partitions"][2]["isr"], serde_json::json!([0]));
    let table = b.cli_ok(&["cluster", "partitions", "--under-replicated"], "");
    assert_eq!(table.lines().count(), 1, "only the header: {table}");
    let leaders = b.cli_ok(&["cluster", "leaders"], "");
    assert!(
        leaders.contains("other than the preferred one: 0; without a live leader: 0"),
        "{leaders}"
    );
}
