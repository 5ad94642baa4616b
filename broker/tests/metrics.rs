//! `/metrics` and the JSON admin API of a running `weir serve`, after real traffic from the CLI.

mod common;

use common::{get_json, http_get, sample, Broker};

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
