//! Dead-letter topics for share groups (Weir's `weir.share.dlq.topic`; KIP-1191 proposes the
//! same for Kafka): a record a consumer rejects, or that reaches the delivery limit, or that
//! expires before delivery, is appended to the group's dead-letter topic, exactly once, with
//! headers that say where it came from and why; only then is it archived.
//!
//! Exactly once across crashes: each share-partition writes its dead letters as an idempotent
//! producer of its own (a producer id from the broker's allocator, sequences per dead-letter
//! partition). Before a new batch goes out, its producer id, epoch, base sequence, time and
//! source offsets are recorded durably in the share-partition's state as its intent (at the
//! share coordinator: in-process, or in Weir's tagged field of WriteShareGroupState). The batch
//! is then appended to the dead-letter partition (here if this broker leads it, else a Produce
//! with acks=all to its leader), and committed there; then one write archives its records and
//! clears the intent. A leader that finds an intent (its own after a failed round, or one
//! loaded with the state after a crash or a failover, returned in ReadShareGroupState) builds
//! the same batch from the source log and sends it again with the same producer id and
//! sequence: the dead-letter partition's leader appends it only if its producer state does not
//! have it (as it dedupes any producer's retry). The one case left where a dead letter can be
//! appended twice: that leader refuses the producer (its state for it was lost, e.g. to
//! retention of the dead-letter topic), and the batch goes again from a new producer.
//!
//! The dead-letter partition is `source partition % partitions` of the dead-letter topic, so
//! the dead letters of one source partition stay in order.
//!
//! The dead letter keeps the source record's key, value and headers, and adds:
//! `weir.dlq.source.topic`, `weir.dlq.source.partition`, `weir.dlq.source.offset`,
//! `weir.dlq.group`, `weir.dlq.delivery.count`, `weir.dlq.reason` (`rejected`,
//! `delivery-limit`, `expired`) and `weir.dlq.time.ms` (values as UTF-8 text).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use parking_lot::Mutex;
use weir_protocol::requests::{ProducePartition, ProduceRequest, ProduceTopic};
use weir_protocol::{ErrorCode, Request, Response};
use weir_storage::records::{visit_records, HeaderRef, NewRecord};
use weir_storage::AppendOptions;

use super::partition::ArchiveReason;
use super::records::{DeadLetterIntent, IntentKind, ProducedBatch};
use super::{group_config, IntentChange, Pending, ShareKey, SharedPartition};
use crate::broker::Broker;
use crate::log_scan::{for_each_batch_from, for_each_batch_in};
use crate::partition::Partition;
use crate::producers::SequenceCheck;
use crate::record_checks::MAX_DECOMPRESSED_BATCH_BYTES;
use weir_storage::batch::{set_producer, validate_batch};

pub const HEADER_SOURCE_TOPIC: &str = "weir.dlq.source.topic";
pub const HEADER_SOURCE_PARTITION: &str = "weir.dlq.source.partition";
pub const HEADER_SOURCE_OFFSET: &str = "weir.dlq.source.offset";
pub const HEADER_GROUP: &str = "weir.dlq.group";
pub const HEADER_DELIVERY_COUNT: &str = "weir.dlq.delivery.count";
pub const HEADER_REASON: &str = "weir.dlq.reason";
pub const HEADER_TIME: &str = "weir.dlq.time.ms";
/// Most dead letters appended for one share-partition in one round.
const MAX_PER_ROUND: usize = 500;

/// A source record read back from its log.
struct SourceRecord {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Reads the records at `offsets` (ascending) from `log`; offsets no longer in the log are absent.
fn read_records(log: &weir_storage::Log, offsets: &BTreeSet<i64>) -> BTreeMap<i64, SourceRecord> {
    let mut out = BTreeMap::new();
    let (Some(&first), Some(&last)) = (offsets.first(), offsets.last()) else {
        return out;
    };
    // A batch that does not validate ends the read: what was found before it is kept.
    let _ = for_each_batch_in(log, first, last + 1, |h, batch| {
        if h.is_control()
            || offsets
                .range(h.base_offset..=h.last_offset())
                .next()
                .is_none()
        {
            return;
        }
        let _ = visit_records(batch, MAX_DECOMPRESSED_BATCH_BYTES, |r| {
            if offsets.contains(&r.offset) {
                out.insert(
                    r.offset,
                    SourceRecord {
                        key: r.key.map(<[u8]>::to_vec),
                        value: r.value.map(<[u8]>::to_vec),
                        headers: r.headers().unwrap_or_default(),
                    },
                );
            }
        });
    });
    out
}

fn header<'a>(headers: &'a [(String, Option<Vec<u8>>)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.as_deref())
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// One batch of the dead letters of `letters` found in `records` (source `topic`/`index`, share
/// group `group`), with the `weir.dlq.*` headers.
fn encode_letters(
    records: &BTreeMap<i64, SourceRecord>,
    letters: &[(i64, ArchiveReason, u16)],
    topic: &str,
    index: i32,
    group: &str,
    now_ms: i64,
) -> Vec<u8> {
    // Each record found, in offset order, with the texts of its headers.
    let reasons: BTreeMap<i64, (&ArchiveReason, u16)> = letters
        .iter()
        .map(|(offset, reason, count)| (*offset, (reason, *count)))
        .collect();
    let found: Vec<(&SourceRecord, [String; 7])> = records
        .iter()
        .filter_map(|(offset, r)| {
            let (reason, count) = reasons.get(offset)?;
            Some((
                r,
                [
                    topic.to_string(),
                    index.to_string(),
                    offset.to_string(),
                    group.to_string(),
                    count.to_string(),
                    reason.as_str().to_string(),
                    now_ms.to_string(),
                ],
            ))
        })
        .collect();
    let names = [
        HEADER_SOURCE_TOPIC,
        HEADER_SOURCE_PARTITION,
        HEADER_SOURCE_OFFSET,
        HEADER_GROUP,
        HEADER_DELIVERY_COUNT,
        HEADER_REASON,
        HEADER_TIME,
    ];
    let headers: Vec<Vec<HeaderRef<'_>>> = found
        .iter()
        .map(|(r, text)| {
            r.headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_deref()))
                .chain(
                    names
                        .iter()
                        .zip(text.iter())
                        .map(|(n, v)| (*n, Some(v.as_bytes()))),
                )
                .collect()
        })
        .collect();
    let new: Vec<NewRecord<'_>> = found
        .iter()
        .zip(&headers)
        .map(|((r, _), h)| NewRecord {
            key: r.key.as_deref(),
            value: r.value.as_deref(),
            headers: h,
            timestamp_ms: now_ms,
        })
        .collect();
    weir_storage::records::encode_batch(&new)
}

/// The source offsets of `group`/`topic`/`partition` already in `dlq` from `from` on.
fn already_dead_lettered(
    dlq: &weir_storage::Log,
    from: i64,
    group: &str,
    topic: &str,
    partition: i32,
) -> BTreeSet<i64> {
    let mut found = BTreeSet::new();
    let partition_text = partition.to_string();
    let _ = for_each_batch_from(dlq, from, |_, batch| {
        let _ = visit_records(batch, MAX_DECOMPRESSED_BATCH_BYTES, |r| {
            let Ok(headers) = r.headers() else {
                return;
            };
            if header(&headers, HEADER_GROUP) == Some(group)
                && header(&headers, HEADER_SOURCE_TOPIC) == Some(topic)
                && header(&headers, HEADER_SOURCE_PARTITION) == Some(partition_text.as_str())
            {
                if let Some(o) = header(&headers, HEADER_SOURCE_OFFSET).and_then(|o| o.parse().ok())
                {
                    found.insert(o);
                }
            }
        });
    });
    found
}

/// Appends the pending dead letters of every share-partition to their groups' dead-letter
/// topics and archives them. Blocking. Returns what is left to wait for.
pub fn run(broker: &Broker, now_ms: i64) -> Pending {
    let mut pending = Pending::default();
    broker
        .share
        .dead_letter_producers
        .retain(|k| broker.share.partition(k).is_some());
    for (key, sp) in broker.share.all_partitions() {
        let (letters, intent) = {
            let sp = sp.lock();
            (sp.pending_dead_letters(), sp.dead_letter_intent().cloned())
        };
        if letters.is_empty() && intent.is_none() {
            continue;
        }
        let settled = dead_letter(broker, &key, &sp, &letters, intent, now_ms);
        let done = match settled {
            Ok(done) => done,
            Err(RoundError::Retry(reason)) => {
                tracing::warn!(group = %key.0, %reason, "dead letters not written; retrying");
                continue;
            }
            Err(RoundError::StartOver(reason)) => {
                // The batch may be in the dead-letter log already: the one case where a dead
                // letter can be appended twice. The next round sends them again as a new batch
                // of a new producer.
                tracing::warn!(group = %key.0, %reason, "dead-letter producer refused; starting over with a new producer id");
                broker.share.dead_letter_producers.forget(&key);
                Vec::new()
            }
        };
        // Archived, and the intent cleared, in one write.
        let mut sp = sp.lock();
        sp.dead_lettered(&done);
        match broker
            .share
            .persist_with(&key, &mut sp, IntentChange::Clear, now_ms)
        {
            Ok(p) => pending.extend(p),
            Err(e) => tracing::warn!(error = ?e, "share state not persisted"),
        }
    }
    pending
}

/// Why a dead-letter round did not settle its dead letters.
enum RoundError {
    /// The batch of the intent is sent again, unchanged, next round.
    Retry(String),
    /// The dead-letter partition's leader refused the producer (it lost its state, or never had
    /// it after a truncation): the batch may be in the log already.
    StartOver(String),
}

impl From<String> for RoundError {
    fn from(reason: String) -> Self {
        RoundError::Retry(reason)
    }
}

/// Settles the dead letters of `key`: the batch of its intent if it has one (this leader's,
/// or one a crashed leader left), else a new batch of `letters` (recorded as the intent
/// first). Returns the source offsets now in the dead-letter topic (or gone from the source
/// log), to archive.
fn dead_letter(
    broker: &Broker,
    key: &ShareKey,
    sp: &SharedPartition,
    letters: &[(i64, ArchiveReason, u16)],
    intent: Option<DeadLetterIntent>,
    now_ms: i64,
) -> Result<Vec<i64>, RoundError> {
    let flight = match prepare(broker, key, sp, letters, intent, now_ms)? {
        Prepared::Settled(done) => return Ok(done),
        Prepared::Send(flight) => flight,
    };
    send(broker, &flight)?;
    broker.share.dead_letter_producers.sent(key, &flight);
    crate::crash_point::reached(crate::crash_point::DEAD_LETTERS_SENT);
    Ok(flight.settles)
}

/// What a round does once its intent is durable.
enum Prepared {
    /// Nothing to send: these source offsets are settled.
    Settled(Vec<i64>),
    /// Send this batch (its intent is recorded).
    Send(Flight),
}

/// The batch a round sends (see [`dead_letter`]); a new one is recorded as the
/// share-partition's intent before this returns.
fn prepare(
    broker: &Broker,
    key: &ShareKey,
    sp: &SharedPartition,
    letters: &[(i64, ArchiveReason, u16)],
    intent: Option<DeadLetterIntent>,
    now_ms: i64,
) -> Result<Prepared, RoundError> {
    let (group, topic_id, index) = (key.0.as_str(), key.1, key.2);
    let all: Vec<i64> = letters.iter().map(|l| l.0).collect();
    let config = group_config(&broker.share.defaults, &broker.group_overrides(group));
    let Some(dlq_name) = config.dlq_topic else {
        // The dead-letter topic was unset meanwhile: archive them.
        return Ok(Prepared::Settled(all));
    };
    let Some(source_topic) = broker.topics.by_id(topic_id) else {
        return Ok(Prepared::Settled(all));
    };
    let Some(source) = broker.topics.partition(&source_topic.name, index) else {
        return Err(RoundError::Retry("the source partition is not here".into()));
    };
    let pending: BTreeSet<i64> = all.iter().copied().collect();
    let flight = match intent {
        Some(DeadLetterIntent {
            topic,
            partition,
            kind: IntentKind::AppendedAfter { from_offset },
        }) => {
            // Left by an older version: those found after the offset are there.
            let found = broker
                .topics
                .partition(&topic, partition)
                .map(|p| {
                    already_dead_lettered(&p.log, from_offset, group, &source_topic.name, index)
                })
                .unwrap_or_default();
            return Ok(Prepared::Settled(
                all.into_iter().filter(|o| found.contains(o)).collect(),
            ));
        }
        Some(DeadLetterIntent {
            topic,
            partition,
            kind: IntentKind::Produced(batch),
        }) => {
            if !batch.offsets.iter().all(|o| pending.contains(o)) {
                // Its dead letters were archived meanwhile (or the state was reset): stale.
                return Ok(Prepared::Settled(Vec::new()));
            }
            let records = read_records(&source.log, &batch.offsets.iter().copied().collect());
            if records.is_empty() {
                // Gone from the source log (retention) before the batch was settled: whether or
                // not it got there, there is nothing left to send.
                return Ok(Prepared::Settled(batch.offsets));
            }
            let source = (source_topic.name.as_str(), key);
            let settles = batch.offsets.clone();
            flight_of(
                &records,
                letters,
                source,
                (&topic, partition),
                &batch,
                settles,
            )
        }
        None => {
            let dlq_topic = match broker.topics.get(&dlq_name) {
                Some(t) => t,
                None if broker.config.auto_create_topics && broker.cluster.is_none() => broker
                    .topics
                    .create(&dlq_name, 1, &[], false)
                    .map_err(|e| format!("cannot create dead-letter topic {dlq_name}: {e}"))?,
                None => return Err(format!("dead-letter topic {dlq_name} does not exist").into()),
            };
            let count = i32::try_from(dlq_topic.partition_count())
                .unwrap_or(1)
                .max(1);
            let target = (dlq_name.as_str(), index.rem_euclid(count));
            let producer = broker
                .share
                .dead_letter_producers
                .current(broker, key, target)?;
            let letters = &letters[..letters.len().min(MAX_PER_ROUND)];
            let (records, settles) = next_batch(letters, &source);
            if records.is_empty() {
                // None of them is in the source log any more (retention): nothing to send.
                return Ok(Prepared::Settled(settles));
            }
            let batch = ProducedBatch {
                producer_id: producer.producer_id,
                producer_epoch: 0,
                base_sequence: producer.next_sequence,
                time_ms: now_ms,
                offsets: records.keys().copied().collect(),
            };
            let source = (source_topic.name.as_str(), key);
            let flight = flight_of(&records, letters, source, target, &batch, settles);
            let intent = DeadLetterIntent {
                topic: flight.topic.clone(),
                partition: flight.partition,
                kind: IntentKind::Produced(batch),
            };
            let written = {
                let mut sp = sp.lock();
                broker
                    .share
                    .persist_with(key, &mut sp, IntentChange::Set(intent), now_ms)
            };
            let written =
                written.map_err(|code| format!("dead-letter intent not written: {code:?}"))?;
            broker
                .share
                .wait(written)
                .map_err(|e| format!("dead-letter intent not written: {e}"))?;
            flight
        }
    };
    Ok(Prepared::Send(flight))
}

/// The batch of `batch` (an intent's, new or loaded): the dead letters of `records` (read from
/// source topic and share-partition `source` at the batch's offsets) with their reasons from
/// `letters`, stamped with the batch's time, producer and sequence, for dead-letter partition
/// `target`. A resent batch is built by the same code as the first one, so it is the same
/// batch.
fn flight_of(
    records: &BTreeMap<i64, SourceRecord>,
    letters: &[(i64, ArchiveReason, u16)],
    (source_topic, key): (&str, &ShareKey),
    (topic, partition): (&str, i32),
    batch: &ProducedBatch,
    settles: Vec<i64>,
) -> Flight {
    let mut bytes = encode_letters(records, letters, source_topic, key.2, &key.0, batch.time_ms);
    set_producer(
        &mut bytes,
        batch.producer_id,
        batch.producer_epoch,
        batch.base_sequence,
    );
    Flight {
        topic: topic.to_string(),
        partition,
        producer_id: batch.producer_id,
        base_sequence: batch.base_sequence,
        records: i32::try_from(records.len()).unwrap_or(i32::MAX),
        batch: Bytes::from(bytes),
        settles,
    }
}

/// A batch of dead letters on its way to a dead-letter partition.
struct Flight {
    topic: String,
    partition: i32,
    producer_id: i64,
    base_sequence: i32,
    records: i32,
    batch: Bytes,
    /// The source offsets this batch settles (those no longer in the source log included).
    settles: Vec<i64>,
}

/// Sends `flight` to its dead-letter partition's leader: appended here if this broker leads
/// it, else a Produce (acks=all) to the leader. Either way the producer's sequence decides: a
/// batch the partition has already is not appended again. Returns once it is committed.
fn send(broker: &Broker, flight: &Flight) -> Result<(), RoundError> {
    let what = || {
        format!(
            "dead-letter partition {}-{}",
            flight.topic, flight.partition
        )
    };
    if broker.topics.get(&flight.topic).is_none() {
        // Deleted since the batch was made (it went with it, if it got there): the letters go
        // again, where the group's config sends them now.
        return Err(RoundError::StartOver(format!("{} is gone", what())));
    }
    if let Some(dlq) = broker
        .topics
        .partition(&flight.topic, flight.partition)
        .filter(|p| p.leader_epoch().is_some())
    {
        return append_here(broker, &dlq, flight).map_err(|e| match e {
            RoundError::StartOver(r) => RoundError::StartOver(format!("{}: {r}", what())),
            RoundError::Retry(r) => RoundError::Retry(format!("{}: {r}", what())),
        });
    }
    let unreachable = || format!("no leader of {} is known", what());
    let cluster = broker.cluster.as_ref().ok_or_else(unreachable)?;
    let leader = broker
        .cluster_leader(&flight.topic, flight.partition)
        .filter(|l| l.leader >= 0)
        .ok_or_else(unreachable)?;
    let addr = cluster
        .store
        .with_view(|v| crate::cluster::runtime::address(v, leader.leader))
        .ok_or_else(unreachable)?;
    let request = Request::Produce(ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: i32::try_from(crate::offsets::OFFSETS_COMMIT_TIMEOUT_MS).unwrap_or(i32::MAX),
        topics: vec![ProduceTopic {
            name: flight.topic.clone(),
            topic_id: [0; 16],
            partitions: vec![ProducePartition {
                index: flight.partition,
                records: Some(flight.batch.clone()),
            }],
        }],
        legacy_formats_allowed: false,
        adds_partitions_to_txn: false,
        uses_topic_ids: false,
    });
    let node = leader.leader;
    let answer = broker
        .share
        .remote
        .send(node, &addr, request)
        .and_then(super::persister::wait_reply)
        .map_err(|e| format!("dead letters not sent to broker {node}: {e}"))?;
    let code = match answer {
        Response::Produce(r) => r
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .map(|p| p.error_code)
            .next()
            .unwrap_or(ErrorCode::UNKNOWN_SERVER_ERROR),
        _ => ErrorCode::UNKNOWN_SERVER_ERROR,
    };
    match code {
        // A duplicate is a batch the leader already has: sent before, its answer lost.
        ErrorCode::NONE | ErrorCode::DUPLICATE_SEQUENCE_NUMBER => Ok(()),
        ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER
        | ErrorCode::UNKNOWN_PRODUCER_ID
        | ErrorCode::INVALID_PRODUCER_EPOCH => Err(RoundError::StartOver(format!(
            "{} refused the producer: {code:?}",
            what()
        ))),
        _ => Err(RoundError::Retry(format!("{} answered {code:?}", what()))),
    }
}

/// Appends `flight` to `dlq`, led here, checked against its producers' sequences as a Produce
/// is, and waits until it (or the batch already there) is committed.
fn append_here(broker: &Broker, dlq: &Partition, flight: &Flight) -> Result<(), RoundError> {
    let header =
        validate_batch(&flight.batch).map_err(|e| format!("dead-letter batch not valid: {e:?}"))?;
    let mut producers = dlq.producers.lock();
    let (last_offset, epoch) = match producers.check(&header) {
        SequenceCheck::Append => {
            let appended = dlq
                .append(flight.batch.to_vec(), &AppendOptions::default())
                .map_err(|e| format!("{e:?}"))?;
            producers.record(&header, appended.result.base_offset);
            producers.snapshot_if_rolled(&dlq.log);
            drop(producers);
            let appended = appended.wait().map_err(|e| e.to_string())?;
            dlq.note_durable();
            broker.appended.notify_waiters();
            (appended.last_offset, appended.partition_leader_epoch)
        }
        SequenceCheck::Duplicate { last_offset, .. } => (last_offset, dlq.leader_epoch()),
        SequenceCheck::Reject(code) => {
            return Err(RoundError::StartOver(format!(
                "the producer is refused: {code:?}"
            )));
        }
    };
    // Archived only once a failover of the dead-letter partition cannot lose them.
    if let Some(epoch) = epoch {
        dlq.wait_committed_blocking(
            last_offset,
            epoch,
            crate::offsets::OFFSETS_COMMIT_TIMEOUT_MS,
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Most bytes of source records dead-lettered in one batch.
const MAX_BATCH_BYTES: usize = 1 << 20;
/// A producer starts over with a new producer id before its sequence numbers would wrap.
const MAX_SEQUENCE: i32 = i32::MAX - MAX_PER_ROUND as i32;
const _: () = assert!(MAX_PER_ROUND <= super::records::MAX_INTENT_OFFSETS);

/// The idempotent producers of dead letters, one per share-partition (leader side, in memory:
/// a new leader goes on with the producer of the intent it loads, or a new one).
#[derive(Default)]
pub struct DeadLetterProducers {
    producers: Mutex<HashMap<ShareKey, DeadLetterProducer>>,
}

#[derive(Clone)]
struct DeadLetterProducer {
    producer_id: i64,
    /// The dead-letter partition it writes to: its sequences are that partition's.
    target: (String, i32),
    next_sequence: i32,
}

impl DeadLetterProducers {
    /// Forgets the producers of share-partitions no longer loaded here.
    pub fn retain(&self, mut loaded: impl FnMut(&ShareKey) -> bool) {
        self.producers.lock().retain(|k, _| loaded(k));
    }

    fn forget(&self, key: &ShareKey) {
        self.producers.lock().remove(key);
    }

    /// The producer of `key` for dead-letter partition `target`: the current one, or a new
    /// producer id if it wrote elsewhere or its sequences would wrap.
    fn current(
        &self,
        broker: &Broker,
        key: &ShareKey,
        (topic, partition): (&str, i32),
    ) -> Result<DeadLetterProducer, String> {
        let current = self.producers.lock().get(key).cloned();
        if let Some(p) = current.filter(|p| {
            p.target.0 == topic && p.target.1 == partition && p.next_sequence <= MAX_SEQUENCE
        }) {
            return Ok(p);
        }
        let p = DeadLetterProducer {
            producer_id: broker
                .new_producer_id()
                .map_err(|e| format!("no producer id for dead letters: {e:?}"))?,
            target: (topic.to_string(), partition),
            next_sequence: 0,
        };
        self.put(key, p.clone());
        Ok(p)
    }

    fn put(&self, key: &ShareKey, producer: DeadLetterProducer) {
        self.producers.lock().insert(key.clone(), producer);
    }

    /// `flight` is in its partition: its producer goes on after it.
    fn sent(&self, key: &ShareKey, flight: &Flight) {
        self.put(
            key,
            DeadLetterProducer {
                producer_id: flight.producer_id,
                target: (flight.topic.clone(), flight.partition),
                next_sequence: flight.base_sequence.saturating_add(flight.records),
            },
        );
    }
}

/// The source records of the next batch: those of `letters` found in the source log, up to
/// [`MAX_BATCH_BYTES`] of keys and values (one Produce must stay under the broker's request
/// size; the rest waits for the next round), and the source offsets the batch settles (those
/// no longer in the source log included).
fn next_batch(
    letters: &[(i64, ArchiveReason, u16)],
    source: &Partition,
) -> (BTreeMap<i64, SourceRecord>, Vec<i64>) {
    let mut wanted: BTreeSet<i64> = letters.iter().map(|l| l.0).collect();
    let mut records = read_records(&source.log, &wanted);
    // The first record past the byte bound (never the first one) and those after it wait.
    let mut bytes = 0usize;
    let cut = records.iter().skip(1).find_map(|(offset, r)| {
        bytes += r.key.as_ref().map_or(0, Vec::len) + r.value.as_ref().map_or(0, Vec::len);
        (bytes > MAX_BATCH_BYTES).then_some(*offset)
    });
    if let Some(cut) = cut {
        records.split_off(&cut);
        wanted.split_off(&cut);
    }
    (records, wanted.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::SystemClock;
    use crate::config::BrokerConfig;
    use crate::share::partition::{AckBatch, AckType, Disposition, MemberId};

    fn open(dir: &std::path::Path) -> Arc<Broker> {
        let config = BrokerConfig {
            data_dir: dir.to_path_buf(),
            ..BrokerConfig::default()
        };
        Broker::open(config, Arc::new(SystemClock)).expect("broker")
    }

    fn append(broker: &Broker, topic: &str, records: &[NewRecord<'_>]) {
        let p = broker.topics.partition(topic, 0).expect("partition");
        let batch = weir_storage::records::encode_batch(records);
        p.append(batch, &AppendOptions::default())
            .expect("append")
            .wait()
            .expect("durable");
        p.note_durable();
    }

    /// A broker with topics `src` (one poison record) and `dead`, group `g` dead-lettering to
    /// `dead`, and the poison record rejected: pending for the dead-letter topic.
    fn rejected_poison(dir: &std::path::Path) -> (Arc<Broker>, ShareKey, SharedPartition) {
        let broker = open(dir);
        broker.topics.create("src", 1, &[], false).expect("topic");
        broker.topics.create("dead", 1, &[], false).expect("topic");
        broker
            .configs
            .alter_group("g", false, &Default::default(), |set| {
                set.insert("weir.share.dlq.topic".into(), "dead".into());
                Ok(())
            })
            .expect("config");
        append(
            &broker,
            "src",
            &[NewRecord {
                value: Some(b"poison"),
                timestamp_ms: 1,
                ..NewRecord::default()
            }],
        );
        let topic_id = broker.topics.get("src").expect("src").id;
        let key: ShareKey = ("g".into(), topic_id, 0);
        let sp = load(&broker, &key);
        let member: MemberId = Arc::from("m");
        let mut pending = Pending::default();
        {
            let mut sp = sp.lock();
            sp.acquire(&member, &[(0, 0)], 10, 0, |_| Disposition::Deliver);
            sp.acknowledge(
                &member,
                &[AckBatch {
                    first_offset: 0,
                    last_offset: 0,
                    types: vec![AckType::Reject],
                }],
                0,
            )
            .expect("reject");
            pending.extend(broker.share.persist(&key, &mut sp, 0).expect("persist"));
        }
        broker.share.wait(pending).expect("durable");
        (broker, key, sp)
    }

    fn load(broker: &Broker, key: &ShareKey) -> SharedPartition {
        let epoch = broker
            .topics
            .partition("src", 0)
            .and_then(|p| p.leader_epoch())
            .expect("leader");
        let settings = group_config(&broker.share.defaults, &broker.configs.group("g"));
        broker
            .share
            .load_partition(key, epoch, &settings.partition, || 0, 0)
            .expect("loaded")
    }

    fn log_end(broker: &Broker, topic: &str) -> i64 {
        let p = broker.topics.partition(topic, 0).expect("partition");
        p.log.log_end_offset()
    }

    /// Stops the broker in the middle of a dead-letter round, restarts it from `dir` and runs a
    /// round: the poison record is in `dead` once, archived, and no intent is left.
    fn crash_and_check(
        broker: Arc<Broker>,
        sp: SharedPartition,
        dir: &std::path::Path,
        key: &ShareKey,
    ) {
        drop(sp);
        broker.shutdown();
        drop(broker);
        let broker = open(dir);
        let sp = load(&broker, key);
        assert_eq!(sp.lock().pending_dead_letters().len(), 1);
        assert!(
            sp.lock().dead_letter_intent().is_some(),
            "the intent survived the crash"
        );
        let pending = run(&broker, 10);
        broker.share.wait(pending).expect("durable");
        let dead = broker.topics.partition("dead", 0).expect("dead");
        assert_eq!(
            dead.log.log_end_offset(),
            1,
            "the dead letter is there once"
        );
        assert_eq!(
            sp.lock().start_offset(),
            1,
            "the rejected record is archived"
        );
        assert!(sp.lock().dead_letter_intent().is_none());
        drop(sp);
        broker.shutdown();
        drop(broker);
        // And the archive is durable: loaded again, nothing is pending.
        let broker = open(dir);
        let sp = load(&broker, key);
        assert!(sp.lock().pending_dead_letters().is_empty());
        assert!(sp.lock().dead_letter_intent().is_none());
        broker.shutdown();
    }

    #[test]
    fn a_dead_letter_sent_before_a_crash_is_not_appended_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (broker, key, sp) = rejected_poison(dir.path());
        let (letters, intent) = {
            let sp = sp.lock();
            (sp.pending_dead_letters(), sp.dead_letter_intent().cloned())
        };
        assert!(intent.is_none());
        // The first half of a round: the intent, the dead letter appended; then the crash
        // before the record is archived.
        let done = dead_letter(&broker, &key, &sp, &letters, intent, 5).ok();
        assert_eq!(done, Some(vec![0]));
        assert_eq!(log_end(&broker, "dead"), 1);
        crash_and_check(broker, sp, dir.path(), &key);
    }

    #[test]
    fn a_dead_letter_intended_before_a_crash_is_appended_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (broker, key, sp) = rejected_poison(dir.path());
        let letters = sp.lock().pending_dead_letters();
        // The intent recorded, the crash before the dead letter is sent.
        let prepared = prepare(&broker, &key, &sp, &letters, None, 5).ok();
        assert!(matches!(prepared, Some(Prepared::Send(_))));
        assert_eq!(log_end(&broker, "dead"), 0);
        crash_and_check(broker, sp, dir.path(), &key);
    }

    #[test]
    fn an_intent_to_a_deleted_dead_letter_topic_goes_where_the_config_says_now() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (broker, key, sp) = rejected_poison(dir.path());
        let letters = sp.lock().pending_dead_letters();
        let prepared = prepare(&broker, &key, &sp, &letters, None, 5).ok();
        assert!(matches!(prepared, Some(Prepared::Send(_))));
        // Before it is sent, the dead-letter topic is deleted and the group sent elsewhere.
        broker.topics.delete("dead").expect("deleted");
        broker.topics.create("dead2", 1, &[], false).expect("topic");
        broker
            .configs
            .alter_group("g", false, &Default::default(), |set| {
                set.insert("weir.share.dlq.topic".into(), "dead2".into());
                Ok(())
            })
            .expect("config");
        for round in 0..2 {
            let pending = run(&broker, 10 + round);
            broker.share.wait(pending).expect("durable");
        }
        assert_eq!(log_end(&broker, "dead2"), 1);
        assert_eq!(
            sp.lock().start_offset(),
            1,
            "the rejected record is archived"
        );
        assert!(sp.lock().dead_letter_intent().is_none());
        drop(sp);
        broker.shutdown();
    }
}
