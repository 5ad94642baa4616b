//! A blocking Kafka client for wire-level tests: one connection, one request at a time, Weir's own
//! request and response types (encoded by `weir_protocol::client`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use weir_protocol::client::{decode_response, encode_request, encode_request_at};
use weir_protocol::{
    ConfigEntry, CreatableTopic, CreateTopicsRequest, ErrorCode, ProducePartition, ProduceRequest,
    ProduceTopic, Request, Response,
};
use weir_storage::batch::{compute_crc, ATTR_TRANSACTIONAL};
use weir_storage::records::{encode_batch, NewRecord};

/// A batch of `n` records stamped now, from producer `pid` (epoch, first sequence),
/// transactional or not (`pid` -1: no producer).
pub fn producer_batch(pid: i64, epoch: i16, seq: i32, n: usize, transactional: bool) -> Vec<u8> {
    let value = b"payload".to_vec();
    let now = crate::common::now_ms();
    let records: Vec<NewRecord<'_>> = (0..n)
        .map(|_| NewRecord {
            value: Some(&value),
            timestamp_ms: now,
            ..NewRecord::default()
        })
        .collect();
    let mut b = encode_batch(&records);
    if transactional {
        let attrs = i16::from_be_bytes([b[21], b[22]]) | ATTR_TRANSACTIONAL;
        b[21..23].copy_from_slice(&attrs.to_be_bytes());
    }
    b[43..51].copy_from_slice(&pid.to_be_bytes());
    b[51..53].copy_from_slice(&epoch.to_be_bytes());
    b[53..57].copy_from_slice(&seq.to_be_bytes());
    let crc = compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

pub struct Conn {
    stream: TcpStream,
    next_correlation_id: i32,
}

impl Conn {
    pub fn connect(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        Conn {
            stream,
            next_correlation_id: 1,
        }
    }

    /// Sends `request` (at the highest version Weir's client speaks) and returns its response.
    pub fn call(&mut self, request: Request) -> Response {
        let corr = self.next_correlation_id;
        let (frame, version) = encode_request(corr, "wire-test", &request).expect("encode");
        self.exchange(request.api_key(), frame, version)
    }

    /// Sends `request` at `version` and returns its response.
    pub fn call_at(&mut self, request: Request, version: i16) -> Response {
        let corr = self.next_correlation_id;
        let frame = encode_request_at(corr, "wire-test", &request, version).expect("encode");
        self.exchange(request.api_key(), frame, version)
    }

    fn exchange(&mut self, api_key: i16, frame: Bytes, version: i16) -> Response {
        let corr = self.next_correlation_id;
        self.next_correlation_id += 1;
        self.stream.write_all(&frame).expect("send");
        let mut prefix = [0u8; 4];
        self.stream.read_exact(&mut prefix).expect("response size");
        let len = usize::try_from(i32::from_be_bytes(prefix)).expect("size");
        let mut body = BytesMut::zeroed(len);
        self.stream.read_exact(&mut body).expect("response body");
        let (got, response) = decode_response(api_key, version, body.freeze()).expect("decode");
        assert_eq!(got, corr, "correlation id");
        response
    }

    /// Produces one encoded batch (acks=all) with `transactional_id`; the partition's answer.
    pub fn produce_batch(
        &mut self,
        transactional_id: Option<&str>,
        topic: &str,
        partition: i32,
        batch: Vec<u8>,
    ) -> weir_protocol::ProducePartitionResponse {
        self.produce_batch_at(None, transactional_id, topic, partition, batch)
    }

    /// [`Self::produce_batch`] at Produce `version` (`None`: the client's own).
    pub fn produce_batch_at(
        &mut self,
        version: Option<i16>,
        transactional_id: Option<&str>,
        topic: &str,
        partition: i32,
        batch: Vec<u8>,
    ) -> weir_protocol::ProducePartitionResponse {
        let request = Request::Produce(ProduceRequest {
            transactional_id: transactional_id.map(str::to_string),
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
        });
        let response = match version {
            Some(v) => self.call_at(request, v),
            None => self.call(request),
        };
        let Response::Produce(mut r) = response else {
            panic!("not a Produce response: {response:?}");
        };
        r.topics.remove(0).partitions.remove(0)
    }

    /// Creates a topic; panics unless it succeeds.
    pub fn create_topic(&mut self, name: &str, partitions: i32, configs: &[(&str, &str)]) {
        let response = self.call(Request::CreateTopics(CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: name.into(),
                num_partitions: partitions,
                replication_factor: 1,
                assignments: Vec::new(),
                configs: configs
                    .iter()
                    .map(|(k, v)| ConfigEntry {
                        name: k.to_string(),
                        value: Some(v.to_string()),
                    })
                    .collect(),
            }],
            timeout_ms: 30_000,
            validate_only: false,
        }));
        let Response::CreateTopics(r) = response else {
            panic!("not a CreateTopics response: {response:?}");
        };
        assert_eq!(r.topics[0].error_code, ErrorCode::NONE, "{r:?}");
    }

    /// Produces one batch of `values` (record `i` stamped `timestamps[i]`) with acks=-1; returns
    /// the partition's response (error code, base offset, log append time).
    pub fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        values: &[&[u8]],
        timestamps: &[i64],
    ) -> weir_protocol::ProducePartitionResponse {
        let records: Vec<NewRecord<'_>> = values
            .iter()
            .zip(timestamps)
            .map(|(v, &timestamp_ms)| NewRecord {
                value: Some(v),
                timestamp_ms,
                ..NewRecord::default()
            })
            .collect();
        self.produce_batch(None, topic, partition, encode_batch(&records))
    }
}
