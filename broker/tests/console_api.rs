//! The admin API's write endpoints and bounded reads (the ones the web console uses), against a
//! running `weir serve`: each change is seen by the Kafka side (the CLI), bad input is a 400 with
//! a reason, and lists and windows are bounded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::common::{get_json, http_get, Broker};

/// An HTTP/1.0 request with an optional JSON body: (status, body as JSON, or a string).
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let (head, body) = text.split_once("\r\n\r\n").expect("header end");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let json = serde_json::from_str(body).unwrap_or(serde_json::Value::String(body.to_string()));
    (status, json)
}

#[test]
fn topics_are_created_altered_written_read_and_deleted_through_the_admin_api() {
    let b = Broker::start(&[]);
    let (status, v) = request(
        b.admin,
        "POST",
        "/v1/topics",
        Some(r#"{"name":"web","partitions":2,"configs":{"retention.ms":"60000"}}"#),
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["partitions"], 2);
    // The Kafka side sees it.
    let described = b.cli_ok(&["topic", "describe", "web"], "");
    assert!(described.contains("web"), "{described}");
    let (status, v) = request(
        b.admin,
        "POST",
        "/v1/topics",
        Some(r#"{"name":"web","partitions":1}"#),
    );
    assert_eq!(status, 409, "{v}");
    assert!(
        v["error"]
            .as_str()
            .expect("error")
            .contains("TOPIC_ALREADY_EXISTS"),
        "{v}"
    );

    let (status, v) = request(
        b.admin,
        "PATCH",
        "/v1/topics/web/configs",
        Some(r#"{"set":{"retention.ms":"120000"}}"#),
    );
    assert_eq!(status, 200, "{v}");
    let t = get_json(b.admin, "/v1/topics/web");
    let retention = t["configs"]
        .as_array()
        .expect("configs")
        .iter()
        .find(|c| c["name"] == "retention.ms")
        .expect("retention.ms")
        .clone();
    assert_eq!(retention["value"], "120000");
    let (status, v) = request(
        b.admin,
        "PATCH",
        "/v1/topics/web/configs",
        Some(r#"{"set":{"retention.ms":"soon"}}"#),
    );
    assert_eq!(status, 400, "{v}");

    // Produce from the API and from the CLI; read both back in one window.
    let (status, v) = request(
        b.admin,
        "POST",
        "/v1/topics/web/messages",
        Some(r#"{"partition":1,"key":"k","value":"{\"a\":1}","headers":{"h":"v"}}"#),
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["offset"], 0);
    b.cli_ok(&["produce", "web", "--partition", "1"], "second\n");
    let w = get_json(b.admin, "/v1/topics/web/messages?partition=1&offset=0");
    let records = w["records"].as_array().expect("records");
    assert_eq!(records.len(), 2, "{w}");
    assert_eq!(records[0]["key"], "aw=="); // base64 of "k"
    assert_eq!(records[0]["value"], "eyJhIjoxfQ==");
    assert_eq!(records[0]["headers"][0]["key"], "h");
    assert_eq!(records[1]["value"], "c2Vjb25k");
    assert_eq!(w["next_offset"], 2);
    // The window is bounded by limit, and by offset from the end.
    let w = get_json(
        b.admin,
        "/v1/topics/web/messages?partition=1&offset=-1&limit=1",
    );
    assert_eq!(w["records"].as_array().expect("records").len(), 1);
    assert_eq!(w["records"][0]["offset"], 1);
    let w = get_json(
        b.admin,
        "/v1/topics/web/messages?partition=1&timestamp_ms=0&limit=1",
    );
    assert_eq!(w["records"][0]["offset"], 0, "{w}");

    for (path, says) in [
        ("/v1/topics/web/messages?limit=501", "limit must be"),
        ("/v1/topics/web/messages?limit=0", "limit must be"),
        (
            "/v1/topics/web/messages?offset=x",
            "offset must be a number",
        ),
        (
            "/v1/topics/web/messages?offset=1&timestamp_ms=1",
            "not both",
        ),
        ("/v1/topics/web/messages?part=1", "unknown query parameter"),
        ("/v1/topics?limit=100000", "limit must be"),
        ("/v1/topics?internal=maybe", "internal must be"),
    ] {
        let (status, v) = request(b.admin, "GET", path, None);
        assert_eq!(status, 400, "{path}: {v}");
        assert!(
            v["error"].as_str().expect("error").contains(says),
            "{path}: {v}"
        );
    }
    let (status, _) = request(b.admin, "GET", "/v1/topics/web/messages?partition=7", None);
    assert_eq!(status, 404);
    for body in [
        "not json",
        r#"{"name":"x","partitions":"two"}"#,
        r#"{"name":"x","colour":"red"}"#,
        r#"{"name":"bad/name"}"#,
    ] {
        let (status, v) = request(b.admin, "POST", "/v1/topics", Some(body));
        assert!(status == 400 || status == 422, "{body}: {status} {v}");
    }
    let big = format!(r#"{{"value":"{}"}}"#, "x".repeat(1_100_000));
    let (status, v) = request(b.admin, "POST", "/v1/topics/web/messages", Some(&big));
    assert!(status == 400 || status == 413, "{status} {v}");

    let (status, v) = request(b.admin, "DELETE", "/v1/topics/web", None);
    assert_eq!(status, 200, "{v}");
    assert!(!b.cli(&["topic", "describe", "web"], "").status.success());
    let (status, _) = request(b.admin, "DELETE", "/v1/topics/web", None);
    assert_eq!(status, 404);
}

#[test]
fn group_offsets_are_reset_with_a_preview_and_groups_deleted() {
    let b = Broker::start(&[]);
    b.cli_ok(&["topic", "create", "g", "-p", "1"], "");
    b.cli_ok(&["produce", "g"], "a\nb\nc\nd\n");
    b.cli_ok(
        &[
            "consume",
            "g",
            "--group",
            "rg",
            "--from-beginning",
            "-n",
            "4",
        ],
        "",
    );
    let g = get_json(b.admin, "/v1/groups/rg");
    assert_eq!(g["offsets"][0]["committed_offset"], 4, "{g}");

    // A preview changes nothing.
    let (status, v) = request(
        b.admin,
        "POST",
        "/v1/groups/rg/reset-offsets",
        Some(r#"{"topic":"g","to":"offset","offset":1}"#),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["partitions"][0]["current_offset"], 4);
    assert_eq!(v["partitions"][0]["new_offset"], 1);
    assert_eq!(
        get_json(b.admin, "/v1/groups/rg")["offsets"][0]["committed_offset"],
        4
    );

    let (status, v) = request(
        b.admin,
        "POST",
        "/v1/groups/rg/reset-offsets",
        Some(r#"{"topic":"g","to":"offset","offset":1,"dry_run":false}"#),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        get_json(b.admin, "/v1/groups/rg")["offsets"][0]["committed_offset"],
        1
    );
    // A consumer of the group resumes there.
    let out = b.cli_ok(&["consume", "g", "--group", "rg", "-n", "3"], "");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["b", "c", "d"], "{out}");

    // Targets stay within the log; earliest and shift.
    let (_, v) = request(
        b.admin,
        "POST",
        "/v1/groups/rg/reset-offsets",
        Some(r#"{"to":"shift","shift":-100}"#),
    );
    assert_eq!(v["partitions"][0]["new_offset"], 0, "{v}");
    let (_, v) = request(
        b.admin,
        "POST",
        "/v1/groups/rg/reset-offsets",
        Some(r#"{"topic":"g","to":"offset","offset":99}"#),
    );
    assert_eq!(v["partitions"][0]["new_offset"], 4, "{v}");

    for (body, says) in [
        (r#"{"topic":"g","to":"yesterday"}"#, "to must be"),
        (r#"{"topic":"g","to":"offset"}"#, "needs offset"),
        (r#"{"topic":"g","to":"timestamp"}"#, "needs timestamp_ms"),
        (
            r#"{"topic":"g","to":"earliest","partitions":[3]}"#,
            "no partition 3",
        ),
        (
            r#"{"to":"earliest","partitions":[0]}"#,
            "partitions needs topic",
        ),
    ] {
        let (status, v) = request(b.admin, "POST", "/v1/groups/rg/reset-offsets", Some(body));
        assert_eq!(status, 400, "{body}: {v}");
        assert!(
            v["error"].as_str().expect("error").contains(says),
            "{body}: {v}"
        );
    }

    let (status, v) = request(b.admin, "DELETE", "/v1/groups/rg", None);
    assert_eq!(status, 200, "{v}");
    let (status, _) = http_get(b.admin, "/v1/groups/rg").expect("get");
    assert_eq!(status, 404);
    let (status, v) = request(b.admin, "DELETE", "/v1/groups/rg", None);
    assert_eq!(status, 404, "{v}");
}

#[test]
fn a_topic_list_page_holds_only_the_page_whatever_the_topic_count() {
    let b = Broker::start(&[]);
    // Many topics through the API; the list pages and searches on the server.
    for i in 0..120 {
        let (status, v) = request(
            b.admin,
            "POST",
            "/v1/topics",
            Some(&format!(r#"{{"name":"many-{i:05}","partitions":1}}"#)),
        );
        assert_eq!(status, 201, "{v}");
    }
    let page = get_json(b.admin, "/v1/topics?limit=50&internal=false");
    assert_eq!(page["topics"].as_array().expect("topics").len(), 50);
    assert_eq!(page["total"], 120);
    assert_eq!(page["next"], "many-00049");
    let page = get_json(b.admin, "/v1/topics?limit=50&after=many-00099");
    assert_eq!(page["topics"].as_array().expect("topics").len(), 20);
    assert_eq!(page["next"], serde_json::Value::Null);
    let found = get_json(b.admin, "/v1/topics?search=MANY-0011");
    assert_eq!(found["total"], 10);
    let (_, body) = http_get(b.admin, "/v1/topics?limit=50").expect("get");
    // A page's size follows the limit, not the number of topics.
    assert!(body.len() < 50 * 300, "{} bytes", body.len());

    // Records and high watermarks (the console's message rate) of a topic with data.
    let mut c = crate::common::kafka::Conn::connect(b.kafka);
    let now = crate::common::now_ms();
    c.create_topic("measured", 2, &[]);
    for partition in [0, 1] {
        let r = c.produce("measured", partition, &[b"a", b"b", b"c"], &[now; 3]);
        assert!(r.error_code.is_none(), "{r:?}");
    }
    let found = get_json(b.admin, "/v1/topics?search=measured");
    let t = &found["topics"][0];
    assert_eq!(
        (&t["records"], &t["high_watermarks"]),
        (&6.into(), &6.into()),
        "{t}"
    );
}

#[test]
fn the_console_is_served_from_the_binary() {
    let b = Broker::start(&[]);
    let (status, page) = http_get(b.admin, "/console/").expect("get");
    assert_eq!(status, 200);
    assert!(page.contains("/console/app.js"));
    let (status, js) = http_get(b.admin, "/console/app.js").expect("get");
    assert_eq!(status, 200);
    assert!(js.contains("/v1/topics"));
}
