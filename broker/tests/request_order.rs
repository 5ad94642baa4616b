//! Requests pipelined on one connection take effect in the order they were sent, as in Kafka: each
//! request sees the state changes of the requests before it. Over a real socket to the built
//! binary, every request is written before any response is read.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::Broker;
use bytes::{Bytes, BytesMut};
use weir_protocol::client::{decode_response, encode_request};
use weir_protocol::{
    CreatableTopic, CreatePartitionsRequest, CreatePartitionsTopic, CreateTopicsRequest,
    DeleteTopicsRequest, DeleteTopicsTopic, ErrorCode, ProducePartition, ProduceRequest,
    ProduceTopic, Request, Response,
};
use weir_storage::records::{encode_batch, NewRecord};

const ROUNDS: usize = 20;

fn produce(topic: &str, partition: i32) -> Request {
    let batch = encode_batch(&[NewRecord {
        value: Some(b"v"),
        timestamp_ms: crate::common::now_ms(),
        ..NewRecord::default()
    }]);
    Request::Produce(ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: 30_000,
        topics: vec![ProduceTopic {
            name: topic.into(),
            topic_id: [0; 16],
            partitions: vec![ProducePartition {
                index: partition,
                records: Some(Bytes::from(batch)),
            }],
        }],
        legacy_formats_allowed: false,
        adds_partitions_to_txn: false,
        uses_topic_ids: false,
    })
}

/// The error codes a response carries, flattened.
fn errors(response: &Response) -> Vec<ErrorCode> {
    match response {
        Response::CreateTopics(r) => r.topics.iter().map(|t| t.error_code).collect(),
        Response::CreatePartitions(r) => r.results.iter().map(|t| t.error_code).collect(),
        Response::DeleteTopics(r) => r.responses.iter().map(|t| t.error_code).collect(),
        Response::Produce(r) => r
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect(),
        other => panic!("unexpected response {other:?}"),
    }
}

#[test]
fn pipelined_topic_changes_and_produces_apply_in_request_order() {
    let b = Broker::start(&["--auto-create-topics", "false"]);
    let mut stream = TcpStream::connect(b.kafka).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    for round in 0..ROUNDS {
        let topic = format!("pipelined-{round}");
        let requests = vec![
            Request::CreateTopics(CreateTopicsRequest {
                topics: vec![CreatableTopic {
                    name: topic.clone(),
                    num_partitions: 1,
                    replication_factor: 1,
                    ..CreatableTopic::default()
                }],
                timeout_ms: 30_000,
                validate_only: false,
            }),
            produce(&topic, 0),
            Request::CreatePartitions(CreatePartitionsRequest {
                topics: vec![CreatePartitionsTopic {
                    name: topic.clone(),
                    count: 2,
                    assignments: None,
                }],
                timeout_ms: 30_000,
                validate_only: false,
            }),
            produce(&topic, 1),
            Request::DeleteTopics(DeleteTopicsRequest {
                topics: vec![DeleteTopicsTopic {
                    name: Some(topic.clone()),
                    ..DeleteTopicsTopic::default()
                }],
                timeout_ms: 30_000,
            }),
            produce(&topic, 0),
        ];
        let mut sent = Vec::new();
        for (i, request) in requests.into_iter().enumerate() {
            let api_key = request.api_key();
            let corr = i32::try_from(i).expect("small");
            let (frame, version) = encode_request(corr, "order-test", &request).expect("encode");
            stream.write_all(&frame).expect("send");
            sent.push((corr, api_key, version));
        }
        let mut got = Vec::new();
        for (corr, api_key, version) in sent {
            let mut prefix = [0u8; 4];
            stream.read_exact(&mut prefix).expect("response length");
            let len = usize::try_from(i32::from_be_bytes(prefix)).expect("length");
            let mut body = BytesMut::zeroed(len);
            stream.read_exact(&mut body).expect("response body");
            let (c, response) = decode_response(api_key, version, body.freeze()).expect("decode");
            assert_eq!(c, corr);
            got.push(errors(&response));
        }
        let ok = vec![ErrorCode::NONE];
        assert_eq!(
            got,
            vec![
                ok.clone(),
                ok.clone(),
                ok.clone(),
                ok.clone(),
                ok,
                vec![ErrorCode::UNKNOWN_TOPIC_OR_PARTITION],
            ],
            "round {round}: create, produce, add a partition, produce to it, delete, produce"
        );
    }
}
