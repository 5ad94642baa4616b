//! Responses encoded as a sequence of parts, so that record batches need not be copied into
//! the encoder's buffer: a Fetch response is mostly records, which the broker can send from the
//! segment file (sendfile) or from the `Bytes` it already holds.
//!
//! This module owns the part list and the hand-written Fetch v4-12 body, the one response whose
//! records are left out. Every other response is encoded by the table in [`crate::apis`] into
//! one part. The Fetch body must stay byte-for-byte what the vendored crate writes; the tests
//! below check that for every version.

use bytes::{BufMut, Bytes, BytesMut};

use crate::responses::{DeferredRecords, FetchRecords, FetchResponse};

/// In-memory records up to this size are copied into the surrounding part; larger ones become a
/// part of their own (a vectored write sends them without a copy).
const INLINE_RECORDS_MAX_BYTES: usize = 16 * 1024;

/// One piece of an encoded response, in wire order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponsePart {
    /// Encoded bytes.
    Bytes(Bytes),
    /// Records the writer of the response supplies (see [`DeferredRecords`]).
    Deferred(DeferredRecords),
}

impl ResponsePart {
    /// Length in bytes on the wire.
    pub fn len(&self) -> usize {
        match self {
            ResponsePart::Bytes(b) => b.len(),
            ResponsePart::Deferred(d) => d.len(),
        }
    }

    /// Nothing on the wire.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A whole response frame (size prefix included) as parts; written one after the other they
/// are the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseParts {
    parts: Vec<ResponsePart>,
    len: usize,
}

impl ResponseParts {
    /// A frame made of `parts`, in wire order (the first holds the size prefix).
    pub fn new(parts: Vec<ResponsePart>) -> Self {
        ResponseParts {
            len: parts.iter().map(ResponsePart::len).sum(),
            parts,
        }
    }

    /// A frame in one buffer.
    pub fn single(frame: Bytes) -> Self {
        ResponseParts {
            len: frame.len(),
            parts: vec![ResponsePart::Bytes(frame)],
        }
    }

    /// Length of the frame in bytes, size prefix included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true for a frame (the size prefix alone is 4 bytes); here for completeness.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The parts, in wire order.
    pub fn parts(&self) -> &[ResponsePart] {
        &self.parts
    }

    /// The parts, in wire order.
    pub fn into_parts(self) -> Vec<ResponsePart> {
        self.parts
    }

    /// The frame in one buffer; `None` if a part is deferred (its bytes are not here).
    pub fn into_bytes(self) -> Option<Bytes> {
        if let [ResponsePart::Bytes(b)] = self.parts.as_slice() {
            return Some(b.clone());
        }
        let mut out = BytesMut::with_capacity(self.len);
        for part in &self.parts {
            match part {
                ResponsePart::Bytes(b) => out.put_slice(b),
                ResponsePart::Deferred(_) => return None,
            }
        }
        Some(out.freeze())
    }
}

impl From<Bytes> for ResponseParts {
    fn from(frame: Bytes) -> Self {
        ResponseParts::single(frame)
    }
}

/// Builds the parts of one frame: encoded fields go into a growing buffer; large records are
/// cut out as parts of their own.
pub(crate) struct PartsWriter {
    done: Vec<ResponsePart>,
    /// The first buffer stays mutable until [`PartsWriter::finish`] writes the size prefix.
    first: Option<BytesMut>,
    current: BytesMut,
}

impl PartsWriter {
    /// Starts a frame whose first bytes are `head` (size placeholder and response header).
    pub(crate) fn new(head: BytesMut) -> Self {
        PartsWriter {
            done: Vec::new(),
            first: None,
            current: head,
        }
    }

    /// Where encoded fields go.
    pub(crate) fn buf(&mut self) -> &mut BytesMut {
        &mut self.current
    }

    fn cut(&mut self) {
        let current = std::mem::take(&mut self.current);
        if self.first.is_none() {
            self.first = Some(current);
        } else if !current.is_empty() {
            self.done.push(ResponsePart::Bytes(current.freeze()));
        }
    }

    /// Records, without their length (the caller wrote it).
    pub(crate) fn put_records(&mut self, records: &FetchRecords) {
        match records {
            FetchRecords::Bytes(b) if b.len() <= INLINE_RECORDS_MAX_BYTES => {
                self.current.put_slice(b)
            }
            FetchRecords::Bytes(b) => {
                self.cut();
                self.done.push(ResponsePart::Bytes(b.clone()));
            }
            FetchRecords::Deferred(d) => {
                self.cut();
                self.done.push(ResponsePart::Deferred(d.clone()));
            }
        }
    }

    /// The frame, with its size prefix written over the first 4 bytes.
    pub(crate) fn finish(mut self) -> Result<ResponseParts, String> {
        self.cut();
        let mut first = self.first.take().unwrap_or_default();
        let len = first.len() + self.done.iter().map(ResponsePart::len).sum::<usize>();
        let size =
            i32::try_from(len.saturating_sub(4)).map_err(|_| format!("response of {len} bytes"))?;
        let Some(prefix) = first.get_mut(..4) else {
            return Err("response frame without its size prefix".into());
        };
        prefix.copy_from_slice(&size.to_be_bytes());
        let mut parts = Vec::with_capacity(self.done.len() + 1);
        parts.push(ResponsePart::Bytes(first.freeze()));
        parts.extend(self.done);
        Ok(ResponseParts { parts, len })
    }
}

/// Encodes a Fetch v4-12 body: v5 adds `log_start_offset`, v7 the session fields, v11
/// `preferred_read_replica`, v12 the flexible (compact, tagged) encoding with the tagged
/// `diverging_epoch` (tag 0) and `current_leader` (tag 1). Records are never null.
pub(crate) fn encode_fetch(w: &mut PartsWriter, v: i16, r: &FetchResponse) -> Result<(), String> {
    let flexible = v >= 12;
    let records: usize = r
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| 64 + p.records.len().min(INLINE_RECORDS_MAX_BYTES))
        .sum();
    let out = w.buf();
    out.reserve(records + 32);
    out.put_i32(r.throttle_time_ms);
    if v >= 7 {
        out.put_i16(r.error_code.0);
        out.put_i32(r.session_id);
    }
    put_len(out, flexible, r.topics.len())?;
    for t in &r.topics {
        let out = w.buf();
        if v >= 13 {
            out.put_slice(&t.topic_id);
        } else {
            put_string(out, flexible, &t.name)?;
        }
        put_len(out, flexible, t.partitions.len())?;
        for p in &t.partitions {
            let out = w.buf();
            out.put_i32(p.partition_index);
            out.put_i16(p.error_code.0);
            out.put_i64(p.high_watermark);
            out.put_i64(p.last_stable_offset);
            if v >= 5 {
                out.put_i64(p.log_start_offset);
            }
            put_len(out, flexible, p.aborted_transactions.len())?;
            for a in &p.aborted_transactions {
                out.put_i64(a.producer_id);
                out.put_i64(a.first_offset);
                if flexible {
                    out.put_u8(0); // no tagged fields
                }
            }
            if v >= 11 {
                out.put_i32(p.preferred_read_replica);
            }
            put_len(out, flexible, p.records.len())?;
            w.put_records(&p.records);
            if flexible {
                // Kafka's defaults (-1, -1) are not written, as the generated encoders do.
                let diverging = p.diverging_epoch.filter(|d| *d != (-1, -1));
                let leader = p.current_leader.filter(|l| *l != (-1, -1));
                let out = w.buf();
                put_uvarint(
                    out,
                    u32::from(diverging.is_some()) + u32::from(leader.is_some()),
                );
                if let Some((epoch, end_offset)) = diverging {
                    put_uvarint(out, 0); // tag
                    put_uvarint(out, 4 + 8 + 1); // size
                    out.put_i32(epoch);
                    out.put_i64(end_offset);
                    out.put_u8(0);
                }
                if let Some((leader_id, leader_epoch)) = leader {
                    put_uvarint(out, 1);
                    put_uvarint(out, 4 + 4 + 1);
                    out.put_i32(leader_id);
                    out.put_i32(leader_epoch);
                    out.put_u8(0);
                }
            }
        }
        if flexible {
            w.buf().put_u8(0);
        }
    }
    if flexible {
        let out = w.buf();
        if v >= 16 && !r.node_endpoints.is_empty() {
            let mut field = BytesMut::new();
            put_len(&mut field, true, r.node_endpoints.len())?;
            for n in &r.node_endpoints {
                field.put_i32(n.node_id);
                put_string(&mut field, true, &n.host)?;
                field.put_i32(n.port);
                match &n.rack {
                    Some(rack) => put_string(&mut field, true, rack)?,
                    None => put_uvarint(&mut field, 0), // compact null
                }
                field.put_u8(0);
            }
            let size = u32::try_from(field.len())
                .map_err(|_| format!("node endpoints of {} bytes", field.len()))?;
            put_uvarint(out, 1); // one tagged field
            put_uvarint(out, 0); // tag 0: node_endpoints
            put_uvarint(out, size);
            out.put_slice(&field);
        } else {
            out.put_u8(0);
        }
    }
    Ok(())
}

fn put_uvarint(out: &mut BytesMut, mut n: u32) {
    while n >= 0x80 {
        out.put_u8((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.put_u8(n as u8);
}

/// An array's element count, or a byte string's length: compact (`n + 1` as an unsigned
/// varint) in flexible versions, an `i32` before.
fn put_len(out: &mut BytesMut, flexible: bool, n: usize) -> Result<(), String> {
    if flexible {
        let n = u32::try_from(n)
            .ok()
            .and_then(|n| n.checked_add(1))
            .ok_or_else(|| format!("length {n} does not fit a compact length"))?;
        put_uvarint(out, n);
    } else {
        let n = i32::try_from(n).map_err(|_| format!("length {n} does not fit an i32"))?;
        out.put_i32(n);
    }
    Ok(())
}

fn put_string(out: &mut BytesMut, flexible: bool, s: &str) -> Result<(), String> {
    if flexible {
        put_len(out, true, s.len())?;
    } else {
        let n = i16::try_from(s.len()).map_err(|_| format!("string of {} bytes", s.len()))?;
        out.put_i16(n);
    }
    out.put_slice(s.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages as m;
    use kafka_protocol::protocol::{Encodable, StrBytes};
    use proptest::prelude::*;

    use super::*;
    use crate::error::ErrorCode;
    use crate::mirror::Mirror;
    use crate::responses::{
        AbortedTransaction, FetchPartitionResponse, FetchTopicResponse, NodeEndpoint,
    };

    /// The same response as the vendored crate's message, which the broker used to encode.
    fn crate_message(r: &FetchResponse) -> m::FetchResponse {
        let mut msg = m::FetchResponse::default();
        msg.throttle_time_ms = r.throttle_time_ms;
        msg.error_code = r.error_code.0;
        msg.session_id = r.session_id;
        msg.responses = r
            .topics
            .iter()
            .map(|t| {
                let mut e = m::fetch_response::FetchableTopicResponse::default();
                e.topic = m::TopicName(StrBytes::from_string(t.name.clone()));
                e.topic_id = uuid::Uuid::from_bytes(t.topic_id);
                e.partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let mut e = m::fetch_response::PartitionData::default();
                        e.partition_index = p.partition_index;
                        e.error_code = p.error_code.0;
                        e.high_watermark = p.high_watermark;
                        e.last_stable_offset = p.last_stable_offset;
                        e.log_start_offset = p.log_start_offset;
                        e.aborted_transactions = Some(
                            p.aborted_transactions
                                .iter()
                                .map(|a| {
                                    let mut e = m::fetch_response::AbortedTransaction::default();
                                    e.producer_id = m::ProducerId(a.producer_id);
                                    e.first_offset = a.first_offset;
                                    e
                                })
                                .collect(),
                        );
                        e.preferred_read_replica = m::BrokerId(p.preferred_read_replica);
                        e.records = p.records.in_memory().cloned();
                        if let Some((epoch, end_offset)) = p.diverging_epoch {
                            e.diverging_epoch.epoch = epoch;
                            e.diverging_epoch.end_offset = end_offset;
                        }
                        if let Some((leader_id, leader_epoch)) = p.current_leader {
                            e.current_leader.leader_id = m::BrokerId(leader_id);
                            e.current_leader.leader_epoch = leader_epoch;
                        }
                        e
                    })
                    .collect();
                e
            })
            .collect();
        msg.node_endpoints = r.node_endpoints.to_kp();
        msg
    }

    fn encode_body(v: i16, r: &FetchResponse) -> ResponseParts {
        let mut head = BytesMut::new();
        head.put_i32(0);
        let mut w = PartsWriter::new(head);
        encode_fetch(&mut w, v, r).expect("encodes");
        w.finish().expect("finishes")
    }

    /// Parts written one after the other, deferred ones filled from `fill`.
    fn concatenate(parts: &ResponseParts, fill: &dyn Fn(&DeferredRecords) -> Bytes) -> Vec<u8> {
        let mut out = Vec::new();
        for part in parts.parts() {
            match part {
                ResponsePart::Bytes(b) => out.extend_from_slice(b),
                ResponsePart::Deferred(d) => out.extend_from_slice(&fill(d)),
            }
        }
        out
    }

    fn pair() -> impl Strategy<Value = Option<(i32, i64)>> {
        prop_oneof![
            Just(None),
            Just(Some((-1, -1))),
            (any::<i32>(), any::<i64>()).prop_map(Some),
        ]
    }

    fn partition() -> impl Strategy<Value = FetchPartitionResponse> {
        (
            (
                any::<i32>(),
                any::<i16>(),
                any::<i64>(),
                any::<i64>(),
                any::<i64>(),
            ),
            proptest::collection::vec((any::<i64>(), any::<i64>()), 0..3),
            any::<i32>(),
            // Both sides of the inline limit.
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..64),
                (INLINE_RECORDS_MAX_BYTES - 2..INLINE_RECORDS_MAX_BYTES + 300)
                    .prop_map(|n| vec![7u8; n]),
            ],
            pair(),
            pair().prop_map(|p| p.map(|(a, b)| (a, b as i32))),
        )
            .prop_map(
                |((index, error, hw, lso, start), aborted, replica, records, d, l)| {
                    FetchPartitionResponse {
                        partition_index: index,
                        error_code: ErrorCode(error),
                        high_watermark: hw,
                        last_stable_offset: lso,
                        log_start_offset: start,
                        aborted_transactions: aborted
                            .into_iter()
                            .map(|(producer_id, first_offset)| AbortedTransaction {
                                producer_id,
                                first_offset,
                            })
                            .collect(),
                        preferred_read_replica: replica,
                        records: FetchRecords::from(records),
                        diverging_epoch: d,
                        current_leader: l,
                    }
                },
            )
    }

    fn response() -> impl Strategy<Value = FetchResponse> {
        (
            any::<i32>(),
            any::<i16>(),
            any::<i32>(),
            proptest::collection::vec(
                (
                    "[a-z._-]{0,20}",
                    any::<[u8; 16]>(),
                    proptest::collection::vec(partition(), 0..3),
                ),
                0..3,
            ),
            proptest::collection::vec(
                (
                    any::<i32>(),
                    "[a-z.-]{0,20}",
                    any::<i32>(),
                    proptest::option::of("[a-z0-9-]{0,8}"),
                ),
                0..3,
            ),
        )
            .prop_map(
                |(throttle, error, session, topics, endpoints)| FetchResponse {
                    throttle_time_ms: throttle,
                    error_code: ErrorCode(error),
                    session_id: session,
                    topics: topics
                        .into_iter()
                        .map(|(name, topic_id, partitions)| FetchTopicResponse {
                            name,
                            topic_id,
                            partitions,
                        })
                        .collect(),
                    node_endpoints: endpoints
                        .into_iter()
                        .map(|(node_id, host, port, rack)| NodeEndpoint {
                            node_id,
                            host,
                            port,
                            rack,
                        })
                        .collect(),
                },
            )
    }

    proptest! {
        /// The hand-written Fetch body is what the vendored crate writes, at every version.
        #[test]
        fn fetch_body_is_the_crates_encoding(r in response(), v in 4i16..=17) {
            let mut expected = BytesMut::new();
            expected.put_i32(0);
            crate_message(&r).encode(&mut expected, v).expect("the crate encodes");
            let size = (expected.len() - 4) as i32;
            expected[..4].copy_from_slice(&size.to_be_bytes());
            let parts = encode_body(v, &r);
            prop_assert_eq!(parts.len(), expected.len());
            prop_assert_eq!(parts.clone().into_bytes().expect("all in memory"), expected.freeze());
        }

        /// Deferred records leave a hole of their length, and the frame is whole once the
        /// writer fills it.
        #[test]
        fn deferred_records_are_left_out_and_filled_in(r in response(), v in 4i16..=17) {
            let in_memory = encode_body(v, &r).into_bytes().expect("all in memory");
            let mut deferred = r.clone();
            let mut held = 0;
            for p in deferred.topics.iter_mut().flat_map(|t| &mut t.partitions) {
                let bytes = p.records.in_memory().cloned().unwrap_or_default();
                held += bytes.len();
                p.records = FetchRecords::Deferred(DeferredRecords::new(bytes.len(), bytes));
            }
            let parts = encode_body(v, &deferred);
            let encoded: usize = parts
                .parts()
                .iter()
                .filter_map(|p| match p {
                    ResponsePart::Bytes(b) => Some(b.len()),
                    ResponsePart::Deferred(_) => None,
                })
                .sum();
            prop_assert_eq!(encoded + held, in_memory.len());
            prop_assert_eq!(parts.clone().into_bytes().is_none(), held > 0 || parts.parts().len() > 1);
            let filled = concatenate(&parts, &|d| d.source::<Bytes>().cloned().expect("a Bytes handle"));
            prop_assert_eq!(filled, in_memory.to_vec());
        }
    }
}
