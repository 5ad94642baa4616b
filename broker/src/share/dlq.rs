//! Dead-letter topics for share groups (Weir's `weir.share.dlq.topic`; KIP-1191 proposes the
//! same for Kafka): a record a consumer rejects, or that reaches the delivery limit, or that
//! expires before delivery, is appended to the group's dead-letter topic, exactly once, with
//! headers that say where it came from and why; only then is it archived.
//!
//! Exactly once across crashes: before appending, the dead-letter partition's log end offset is
//! recorded durably in the share state log (an intent); the records are appended; then the
//! share-partition's records are archived and the intent removed. After a crash between the
//! two, the dead-letter records from the intent's offset on are read back and those already there
//! are archived without being appended again.
//!
//! In a cluster, when no partition of the dead-letter topic is led by the source partition's
//! leader, the dead letters go to the leader of partition `source partition % partitions` as a
//! Produce (acks=all) from an idempotent producer of the share-partition's own ([`RemoteSenders`]):
//! a batch sent again after a timeout or a leader change is appended once. That producer lives in
//! memory: if this broker crashes with a batch in flight, the next leader may append it again.
//!
//! The dead letter keeps the source record's key, value and headers, and adds:
//! `weir.dlq.source.topic`, `weir.dlq.source.partition`, `weir.dlq.source.offset`,
//! `weir.dlq.group`, `weir.dlq.delivery.count`, `weir.dlq.reason` (`rejected`,
//! `delivery-limit`, `expired`) and `weir.dlq.time.ms` (values as UTF-8 text). It goes to the
//! dead-letter topic's partition `source partition % partitions`, so the dead letters of one
//! source partition stay in order.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use parking_lot::Mutex;
use weir_protocol::requests::{ProducePartition, ProduceRequest, ProduceTopic};
use weir_protocol::{ErrorCode, Request, Response};
use weir_storage::records::{visit_records, HeaderRef, NewRecord};
use weir_storage::AppendOptions;

use super::partition::ArchiveReason;
use super::records::DeadLetterIntent;
use super::{group_config, Pending, ShareKey};
use crate::broker::Broker;
use crate::log_scan::{for_each_batch_from, for_each_batch_in};
use crate::record_checks::MAX_DECOMPRESSED_BATCH_BYTES;

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
        .dead_letter_senders
        .retain(|k| broker.share.partition(k).is_some());
    for (key, sp) in broker.share.all_partitions() {
        let letters = sp.lock().pending_dead_letters();
        if letters.is_empty() {
            continue;
        }
        match dead_letter(broker, &key, &letters, now_ms) {
            Ok(done) => {
                let mut sp = sp.lock();
                sp.dead_lettered(&done);
                match broker.share.persist(&key, &mut sp, now_ms) {
                    Ok(p) => pending.extend(p),
                    Err(e) => tracing::warn!(error = ?e, "share state not persisted"),
                }
                drop(sp);
                match broker.share.clear_intent(&key, now_ms) {
                    Ok(p) => pending.push(p),
                    Err(e) => tracing::warn!(error = %e, "dead-letter intent not cleared"),
                }
            }
            Err(reason) => {
                tracing::warn!(group = %key.0, %reason, "dead letters not written; retrying");
            }
        }
    }
    pending
}

/// Writes `letters` of `key` to the group's dead-letter topic; returns the offsets now done.
fn dead_letter(
    broker: &Broker,
    key: &ShareKey,
    letters: &[(i64, ArchiveReason, u16)],
    now_ms: i64,
) -> Result<Vec<i64>, String> {
    let (group, topic_id, index) = (key.0.as_str(), key.1, key.2);
    let letters = &letters[..letters.len().min(MAX_PER_ROUND)];
    let all: Vec<i64> = letters.iter().map(|l| l.0).collect();
    let config = group_config(&broker.share.defaults, &broker.group_overrides(group));
    let Some(dlq_name) = config.dlq_topic else {
        // The dead-letter topic was unset meanwhile: archive them.
        return Ok(all);
    };
    let Some(source_topic) = broker.topics.by_id(topic_id) else {
        return Ok(all);
    };
    let Some(source) = broker.topics.partition(&source_topic.name, index) else {
        return Err("the source partition is not here".into());
    };
    let dlq_topic = match broker.topics.get(&dlq_name) {
        Some(t) => t,
        None if broker.config.auto_create_topics && broker.cluster.is_none() => broker
            .topics
            .create(&dlq_name, 1, &[], false)
            .map_err(|e| format!("cannot create dead-letter topic {dlq_name}: {e}"))?,
        None => return Err(format!("dead-letter topic {dlq_name} does not exist")),
    };
    let count = i32::try_from(dlq_topic.partition_count())
        .unwrap_or(1)
        .max(1);
    // The source partition's number, or (in a cluster) any partition of the dead-letter topic
    // this broker leads: dead letters are appended by the source partition's leader.
    let led = |i: i32| {
        broker
            .topics
            .partition(&dlq_name, i)
            .filter(|p| p.leader_epoch().is_some())
            .map(|p| (i, p))
    };
    let Some((dlq_index, dlq)) = led(index.rem_euclid(count)).or_else(|| (0..count).find_map(led))
    else {
        let target = Target {
            dlq: &dlq_name,
            partition: index.rem_euclid(count),
            source_topic: &source_topic.name,
            source: &source,
        };
        return send_to_leader(broker, key, letters, &target, now_ms);
    };
    // After a crash: what is already there is done.
    let mut done: BTreeSet<i64> = BTreeSet::new();
    if let Some(intent) = broker.share.intent(key) {
        if let Some(p) = broker.topics.partition(&intent.topic, intent.partition) {
            done =
                already_dead_lettered(&p.log, intent.from_offset, group, &source_topic.name, index);
        }
    }
    let wanted: BTreeSet<i64> = all.iter().copied().filter(|o| !done.contains(o)).collect();
    let records = read_records(&source.log, &wanted);
    if !records.is_empty() {
        let intent = DeadLetterIntent {
            topic: dlq_name.clone(),
            partition: dlq_index,
            from_offset: dlq.log.log_end_offset(),
        };
        let mut p = Pending::default();
        p.push(
            broker
                .share
                .record_intent(key, intent, now_ms)
                .map_err(|e| e.to_string())?,
        );
        broker.share.wait(p).map_err(|e| e.to_string())?;
        let batch = encode_letters(&records, letters, &source_topic.name, index, group, now_ms);
        let appended = dlq
            .append(batch, &AppendOptions::default())
            .map_err(|e| format!("{e:?}"))?;
        let appended = appended.wait().map_err(|e| e.to_string())?;
        dlq.note_durable();
        broker.appended.notify_waiters();
        // Archived only once a failover of the dead-letter partition cannot lose them.
        crate::offsets::wait_replicated(&dlq, &appended).map_err(|e| e.to_string())?;
    }
    // Offsets no longer in the source log (retention) cannot be dead-lettered: they are archived.
    Ok(all)
}

/// Most bytes of source records dead-lettered to another broker in one Produce.
const MAX_REMOTE_BATCH_BYTES: usize = 1 << 20;
/// A sender starts over with a new producer id before its sequence numbers would wrap.
const MAX_SEQUENCE: i32 = i32::MAX - MAX_PER_ROUND as i32;

/// The idempotent producers that send dead letters to other brokers, one per share-partition
/// (leader side, in memory).
#[derive(Default)]
pub struct RemoteSenders {
    senders: Mutex<HashMap<ShareKey, RemoteSender>>,
}

impl RemoteSenders {
    /// Forgets the senders of share-partitions no longer loaded here.
    pub fn retain(&self, mut loaded: impl FnMut(&ShareKey) -> bool) {
        self.senders.lock().retain(|k, _| loaded(k));
    }
}

struct RemoteSender {
    producer_id: i64,
    next_sequence: i32,
    /// The batch sent last without an answer that it was appended: sent again, unchanged, until
    /// it is (the leader appends it once).
    in_flight: Option<InFlight>,
}

struct InFlight {
    topic: String,
    partition: i32,
    batch: Bytes,
    records: i32,
    /// The source offsets this batch settles (those no longer in the source log included).
    offsets: Vec<i64>,
}

/// Where dead letters go when no partition of the dead-letter topic is led here.
struct Target<'a> {
    dlq: &'a str,
    partition: i32,
    source_topic: &'a str,
    source: &'a crate::partition::Partition,
}

/// Sends the dead letters of `key` to the leader of the dead-letter partition on another broker
/// (blocking: Produce with acks=all); returns the source offsets now done.
fn send_to_leader(
    broker: &Broker,
    key: &ShareKey,
    letters: &[(i64, ArchiveReason, u16)],
    target: &Target<'_>,
    now_ms: i64,
) -> Result<Vec<i64>, String> {
    let unreachable = || {
        format!(
            "no leader of dead-letter partition {}-{} is known",
            target.dlq, target.partition
        )
    };
    let cluster = broker.cluster.as_ref().ok_or_else(unreachable)?;
    let leader = broker
        .cluster_leader(target.dlq, target.partition)
        .filter(|l| l.leader >= 0)
        .ok_or_else(unreachable)?;
    let addr = cluster
        .store
        .with_view(|v| crate::cluster::runtime::address(v, leader.leader))
        .ok_or_else(unreachable)?;
    let senders = &broker.share.dead_letter_senders;
    // Taken out while the request is out, put back after (only the tick thread sends).
    let taken = senders.senders.lock().remove(key);
    let mut sender = match taken {
        Some(s) if s.next_sequence <= MAX_SEQUENCE => s,
        _ => RemoteSender {
            producer_id: broker
                .new_producer_id()
                .map_err(|e| format!("no producer id for dead letters: {e:?}"))?,
            next_sequence: 0,
            in_flight: None,
        },
    };
    let to = (leader.leader, addr.as_str());
    match send_round(broker, key, letters, target, to, &mut sender, now_ms) {
        // The sender is dropped: the next round starts over with a new producer id.
        Err(RoundError::StartOver(reason)) => {
            tracing::warn!(group = %key.0, %reason, "dead-letter producer refused; starting over with a new producer id");
            Err(reason)
        }
        Err(RoundError::Retry(reason)) => {
            senders.senders.lock().insert(key.clone(), sender);
            Err(reason)
        }
        Ok(done) => {
            senders.senders.lock().insert(key.clone(), sender);
            Ok(done)
        }
    }
}

/// Why a round of [`send_round`] did not settle its dead letters.
enum RoundError {
    /// The batch stays in flight, to be sent again unchanged.
    Retry(String),
    /// The leader refused the producer (it lost its state, or never had it after a
    /// truncation): the batch may be in the log already, so this is the one case where a dead
    /// letter can be appended twice without a crash.
    StartOver(String),
}

/// One Produce of `sender` to broker `to` (id, address): the batch in flight again, or a new
/// one of `letters`. Returns the source offsets now done.
fn send_round(
    broker: &Broker,
    key: &ShareKey,
    letters: &[(i64, ArchiveReason, u16)],
    target: &Target<'_>,
    (node, addr): (i32, &str),
    sender: &mut RemoteSender,
    now_ms: i64,
) -> Result<Vec<i64>, RoundError> {
    let flight = match sender.in_flight.take() {
        Some(f) => f,
        None => new_flight(key, letters, target, sender, now_ms),
    };
    if flight.records == 0 {
        // None of them is in the source log any more (retention): nothing to send.
        return Ok(flight.offsets);
    }
    let request = Request::Produce(ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: i32::try_from(crate::offsets::OFFSETS_COMMIT_TIMEOUT_MS).unwrap_or(i32::MAX),
        topics: vec![ProduceTopic {
            name: flight.topic.clone(),
            partitions: vec![ProducePartition {
                index: flight.partition,
                records: Some(flight.batch.clone()),
            }],
        }],
        legacy_formats_allowed: false,
        adds_partitions_to_txn: false,
    });
    let answer = broker
        .share
        .remote
        .send(node, addr, request)
        .and_then(super::persister::wait_reply);
    let code = match answer {
        Ok(Response::Produce(r)) => r
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .map(|p| p.error_code)
            .next()
            .unwrap_or(ErrorCode::UNKNOWN_SERVER_ERROR),
        Ok(_) => ErrorCode::UNKNOWN_SERVER_ERROR,
        Err(e) => {
            sender.in_flight = Some(flight);
            return Err(RoundError::Retry(format!(
                "dead letters not sent to broker {node}: {e}"
            )));
        }
    };
    let what = format!(
        "dead-letter partition {}-{}",
        flight.topic, flight.partition
    );
    match code {
        // A duplicate is a batch the leader already has: sent before, its answer lost.
        ErrorCode::NONE | ErrorCode::DUPLICATE_SEQUENCE_NUMBER => {
            sender.next_sequence += flight.records;
            Ok(flight.offsets)
        }
        ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER
        | ErrorCode::UNKNOWN_PRODUCER_ID
        | ErrorCode::INVALID_PRODUCER_EPOCH => Err(RoundError::StartOver(format!(
            "{what} refused the producer: {code:?}"
        ))),
        _ => {
            sender.in_flight = Some(flight);
            Err(RoundError::Retry(format!("{what} answered {code:?}")))
        }
    }
}

/// A new batch of `sender` holding the dead letters of `letters` found in the source log, up to
/// [`MAX_REMOTE_BATCH_BYTES`] of keys and values (one Produce must stay under the broker's
/// request size; the rest waits for the next round).
fn new_flight(
    key: &ShareKey,
    letters: &[(i64, ArchiveReason, u16)],
    target: &Target<'_>,
    sender: &RemoteSender,
    now_ms: i64,
) -> InFlight {
    let mut wanted: BTreeSet<i64> = letters.iter().map(|l| l.0).collect();
    let mut records = read_records(&target.source.log, &wanted);
    // The first record past the byte bound (never the first one) and those after it wait.
    let mut bytes = 0usize;
    let cut = records.iter().skip(1).find_map(|(offset, r)| {
        bytes += r.key.as_ref().map_or(0, Vec::len) + r.value.as_ref().map_or(0, Vec::len);
        (bytes > MAX_REMOTE_BATCH_BYTES).then_some(*offset)
    });
    if let Some(cut) = cut {
        records.split_off(&cut);
        wanted.split_off(&cut);
    }
    let count = i32::try_from(records.len()).unwrap_or(i32::MAX);
    let mut batch = encode_letters(
        &records,
        letters,
        target.source_topic,
        key.2,
        &key.0,
        now_ms,
    );
    if count > 0 {
        weir_storage::batch::set_producer(&mut batch, sender.producer_id, 0, sender.next_sequence);
    }
    InFlight {
        topic: target.dlq.to_string(),
        partition: target.partition,
        batch: Bytes::from(batch),
        records: count,
        offsets: wanted.into_iter().collect(),
    }
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

    #[test]
    fn a_dead_letter_written_before_a_crash_is_not_written_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key: ShareKey;
        {
            let broker = open(dir.path());
            broker.topics.create("src", 1, &[], false).expect("topic");
            broker.topics.create("dead", 1, &[], false).expect("topic");
            broker
                .configs
                .alter_group("g", false, |set| {
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
            key = ("g".into(), topic_id, 0);
            let settings = group_config(&broker.share.defaults, &broker.configs.group("g"));
            let mut pending = Pending::default();
            let epoch = broker
                .topics
                .partition("src", 0)
                .and_then(|p| p.leader_epoch())
                .expect("leader");
            let sp = broker
                .share
                .load_partition(&key, epoch, &settings.partition, || 0, 0)
                .expect("init");
            let member: MemberId = Arc::from("m");
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
            // The first half of a dead-lettering: the intent and the dead letter itself, then
            // the crash before the record is archived.
            let intent = DeadLetterIntent {
                topic: "dead".into(),
                partition: 0,
                from_offset: 0,
            };
            pending.push(broker.share.record_intent(&key, intent, 0).expect("intent"));
            broker.share.wait(pending).expect("durable");
            let headers: [HeaderRef<'_>; 4] = [
                (HEADER_SOURCE_TOPIC, Some(b"src")),
                (HEADER_SOURCE_PARTITION, Some(b"0")),
                (HEADER_SOURCE_OFFSET, Some(b"0")),
                (HEADER_GROUP, Some(b"g")),
            ];
            append(
                &broker,
                "dead",
                &[NewRecord {
                    value: Some(b"poison"),
                    headers: &headers,
                    timestamp_ms: 1,
                    ..NewRecord::default()
                }],
            );
            broker.shutdown();
        }
        let broker = open(dir.path());
        let epoch = broker
            .topics
            .partition("src", 0)
            .and_then(|p| p.leader_epoch())
            .expect("leader");
        let settings = group_config(&broker.share.defaults, &broker.configs.group("g"));
        let sp = broker
            .share
            .load_partition(&key, epoch, &settings.partition, || 99, 0)
            .expect("restored");
        assert_eq!(sp.lock().pending_dead_letters().len(), 1);
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
        assert!(broker.share.intent(&key).is_none());
        broker.shutdown();
    }
}
