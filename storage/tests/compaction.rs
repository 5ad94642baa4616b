//! Key-based compaction (`Log::compact`): what stays, what goes, that offsets and batches keep
//! their places, every codec, transactions, and the crash-safe swap.

mod common;

use std::collections::HashMap;
use std::fs;

use proptest::prelude::*;
use weir_storage::batch::{compute_crc, BatchHeader};
use weir_storage::compression::Codec;
use weir_storage::records::{
    encode_batch, encode_batch_compressed, encode_txn_marker, visit_records, NewRecord, TxnMarker,
    TxnMarkerKind,
};
use weir_storage::{AbortedTxn, AppendOptions, CompactionConfig, DataDir, Log, LogConfig};

use common::small_cfg;

/// Every batch served from `from` to the high watermark, following segments; a compacted log
/// may end its batches before the high watermark (its last batches went), so an empty read
/// ends the walk.
fn read_all(log: &Log, from: i64) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut next = from;
    while next < log.high_watermark() {
        let bytes = log.read(next, 1000).expect("read");
        if bytes.is_empty() {
            break;
        }
        weir_storage::batch::validate_batches(&bytes).expect("served batches are valid");
        for (base, b) in weir_storage::batch::testing::split_batches(&bytes) {
            next = BatchHeader::parse(&b).expect("header").last_offset() + 1;
            out.push((base, b));
        }
    }
    out
}

/// Tombstones never expire (unless a test says so), segments of ~1 KiB.
fn compacted_cfg() -> LogConfig {
    LogConfig {
        compaction: Some(CompactionConfig {
            min_cleanable_dirty_ratio: 0.0,
            ..CompactionConfig::default()
        }),
        ..small_cfg()
    }
}

/// One record per entry: `(key, value)`, a `None` value is a tombstone.
fn keyed_batch(records: &[(&str, Option<String>)], ts: i64, codec: Codec) -> Vec<u8> {
    let recs: Vec<NewRecord<'_>> = records
        .iter()
        .map(|(k, v)| NewRecord {
            key: Some(k.as_bytes()),
            value: v.as_deref().map(str::as_bytes),
            headers: &[],
            timestamp_ms: ts,
        })
        .collect();
    match codec {
        Codec::None => encode_batch(&recs),
        c => encode_batch_compressed(&recs, c).expect("compress"),
    }
}

/// One record without a key (the cleaner drops such records).
fn keyless_batch(ts: i64) -> Vec<u8> {
    encode_batch(&[NewRecord {
        key: None,
        value: Some(b"no key"),
        headers: &[],
        timestamp_ms: ts,
    }])
}

/// Every record the log serves: `(offset, key, value)`, checking on the way that batches are
/// valid and in offset order (gaps are where compaction removed whole batches).
fn records(log: &Log) -> Vec<(i64, String, Option<String>)> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    for (_, b) in read_all(log, log.log_start_offset()) {
        let h = BatchHeader::parse(&b).expect("header");
        assert!(h.base_offset >= next, "batches in offset order");
        next = h.last_offset() + 1;
        if h.is_control() {
            continue;
        }
        visit_records(&b, 1 << 20, |r| {
            out.push((
                r.offset,
                String::from_utf8_lossy(r.key.unwrap_or_default()).into_owned(),
                r.value.map(|v| String::from_utf8_lossy(v).into_owned()),
            ))
        })
        .expect("records");
    }
    assert!(next <= log.high_watermark());
    out
}

/// Opens the data directory `dir` and its log. A reopen right after a close may find the
/// directory's lock still held for a moment: the kill -9 test in this binary spawns child
/// processes, and a child holds a copy of every descriptor (the lock's too) from its fork until
/// its exec closes them. So a `Locked` is tried again for up to 5 s.
fn open(dir: &std::path::Path, cfg: LogConfig) -> (std::sync::Arc<DataDir>, std::sync::Arc<Log>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let dd = loop {
        match DataDir::open(dir) {
            Err(weir_storage::StorageError::Locked(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            r => break r.expect("data dir"),
        }
    };
    let log = dd.open_log("t-0", cfg).expect("log");
    (dd, log)
}

#[test]
fn only_the_latest_record_of_each_key_stays_at_its_offset_in_every_codec() {
    for codec in [
        Codec::None,
        Codec::Gzip,
        Codec::Snappy,
        Codec::Lz4,
        Codec::Zstd,
    ] {
        let dir = tempfile::tempdir().expect("tmp");
        let (_dd, log) = open(dir.path(), compacted_cfg());
        let mut latest = HashMap::new();
        for round in 0..30 {
            let recs: Vec<(&str, Option<String>)> = ["a", "b", "c"]
                .iter()
                .map(|k| (*k, Some(format!("{k}{round}"))))
                .collect();
            let r = log
                .append(keyed_batch(&recs, 1_000, codec), &AppendOptions::default())
                .expect("append");
            for (i, (k, _)) in recs.iter().enumerate() {
                latest.insert(
                    k.to_string(),
                    (r.base_offset + i as i64, format!("{k}{round}")),
                );
            }
        }
        log.roll().expect("roll");
        let end = log.log_end_offset();
        let before = records(&log);
        assert_eq!(before.len(), 90);
        let stats = log
            .compact(2_000, end)
            .expect("compact")
            .expect("a pass was due");
        assert!(stats.records_removed == 87, "{codec:?}: {stats:?}");
        assert!(stats.bytes_after < stats.bytes_before, "{stats:?}");
        assert_eq!(stats.cleaned_to, end);
        let after = records(&log);
        let mut want: Vec<_> = latest
            .into_iter()
            .map(|(k, (o, v))| (o, k, Some(v)))
            .collect();
        want.sort();
        assert_eq!(after, want, "{codec:?}");
        assert_eq!(log.log_end_offset(), end, "no offset moves");
        // Nothing is due any more: the log is clean up to its end.
        assert_eq!(log.compact(2_000, end).expect("compact"), None);
    }
}

#[test]
fn empty_batches_keep_their_producer_and_sequence() {
    let dir = tempfile::tempdir().expect("tmp");
    let (_dd, log) = open(dir.path(), compacted_cfg());
    let mut b = keyed_batch(
        &[("k", Some("old".into())), ("k", Some("old2".into()))],
        5,
        Codec::Lz4,
    );
    weir_storage::batch::set_producer(&mut b, 42, 3, 7);
    log.append(b, &AppendOptions::default()).expect("append");
    log.append(
        keyed_batch(&[("k", Some("new".into()))], 6, Codec::None),
        &AppendOptions::default(),
    )
    .expect("append");
    log.roll().expect("roll");
    log.compact(10, log.log_end_offset()).expect("compact");
    let batches = read_all(&log, 0);
    let h = BatchHeader::parse(&batches[0].1).expect("header");
    assert_eq!(
        (h.base_offset, h.last_offset_delta, h.record_count),
        (0, 1, 0),
        "the batch spans its offsets without records"
    );
    assert_eq!(
        (
            h.producer_id,
            h.producer_epoch,
            h.base_sequence,
            h.compression()
        ),
        (42, 3, 7, 0)
    );
    assert_eq!(records(&log), vec![(2, "k".into(), Some("new".into()))]);
}

#[test]
fn emptied_batches_go_and_the_log_end_survives_a_crash_after_a_roll() {
    let dir = tempfile::tempdir().expect("tmp");
    let end = {
        let (dd, log) = open(dir.path(), compacted_cfg());
        for i in 0..30 {
            log.append(
                keyed_batch(&[("k", Some(format!("v{i}")))], 1, Codec::None),
                &AppendOptions::default(),
            )
            .expect("append");
        }
        // The last batch before the roll goes too (no key): the segment then ends before the
        // next one starts.
        log.append(keyless_batch(1), &AppendOptions::default())
            .expect("append");
        log.roll().expect("roll");
        let bases = log.segment_base_offsets();
        let end = log.log_end_offset();
        assert_eq!(end, 31);
        log.compact(10, end).expect("compact").expect("due");
        let batches: Vec<i64> = read_all(&log, 0).iter().map(|(b, _)| *b).collect();
        assert_eq!(batches, vec![29], "one batch left in {bases:?}");
        // Emptied segments go, but the first (the log start's place) and the active one.
        assert_eq!(
            log.segment_base_offsets(),
            vec![bases[0], bases[2], bases[3]],
            "of {bases:?}"
        );
        assert_eq!(records(&log), vec![(29, "k".into(), Some("v29".into()))]);
        assert_eq!(log.log_end_offset(), end);
        // A crash right after a roll: the empty tail is dropped and the compacted segment
        // before it recovered; it still ends where it did.
        drop(log);
        dd.shutdown_unclean();
        drop(dd);
        end
    };
    let (_dd, log) = open(dir.path(), compacted_cfg());
    assert_eq!(log.log_end_offset(), end, "no offset is given out twice");
    assert_eq!(records(&log), vec![(29, "k".into(), Some("v29".into()))]);
    // Reading from an offset inside a gap serves the next batch.
    let bytes = log.read(3, 1000).expect("read");
    let h = BatchHeader::parse(&bytes).expect("batch");
    assert!(h.base_offset > 3);
}

#[test]
fn a_follower_copies_a_log_with_gaps() {
    let dir = tempfile::tempdir().expect("tmp");
    let (_dd, log) = open(dir.path(), small_cfg());
    let at = |base: i64, n: usize| {
        let mut b = keyed_batch(&vec![("k", Some("v".to_string())); n], 1, Codec::None);
        b[..8].copy_from_slice(&base.to_be_bytes());
        b
    };
    let mut two = at(0, 2);
    two.extend(at(5, 1));
    log.append_replicated(two)
        .expect("increasing offsets with a gap")
        .wait()
        .expect("durable");
    assert_eq!(log.log_end_offset(), 6);
    log.append_replicated(at(9, 1))
        .expect("a gap before the batch")
        .wait()
        .expect("durable");
    assert_eq!(log.log_end_offset(), 10);
    assert!(
        log.append_replicated(at(9, 1)).is_err(),
        "offsets never go back"
    );
    let mut back = at(10, 2);
    back.extend(at(11, 1));
    assert!(log.append_replicated(back).is_err(), "overlapping batches");
    let got: Vec<i64> = records(&log).iter().map(|r| r.0).collect();
    assert_eq!(got, vec![0, 1, 5, 9]);
}

/// `delete.retention.ms` of 1 s, every pass due as soon as something is dirty.
fn retention_1s_cfg() -> LogConfig {
    LogConfig {
        compaction: Some(CompactionConfig {
            min_cleanable_dirty_ratio: 0.0,
            delete_retention_ms: 1_000,
            ..CompactionConfig::default()
        }),
        ..small_cfg()
    }
}

/// The batches the log serves that carry a delete horizon: `(base offset, horizon)`.
fn horizons(log: &Log) -> Vec<(i64, i64)> {
    read_all(log, log.log_start_offset())
        .iter()
        .filter_map(|(base, b)| Some((*base, BatchHeader::parse(b).ok()?.delete_horizon_ms()?)))
        .collect()
}

#[test]
fn tombstones_stay_for_delete_retention_after_their_first_cleaning_then_go() {
    let dir = tempfile::tempdir().expect("tmp");
    let (_dd, log) = open(dir.path(), retention_1s_cfg());
    // Records stamped long ago (a replay, event time): their age must not decide.
    log.append(
        keyed_batch(
            &[("gone", Some("v".into())), ("kept", Some("v".into()))],
            100,
            Codec::None,
        ),
        &AppendOptions::default(),
    )
    .expect("append");
    log.append(keyless_batch(100), &AppendOptions::default())
        .expect("append");
    log.append(
        keyed_batch(&[("gone", None)], 100, Codec::None),
        &AppendOptions::default(),
    )
    .expect("append");
    log.roll().expect("roll");
    let end = log.log_end_offset();
    log.compact(10_000, end).expect("compact").expect("due");
    assert_eq!(
        records(&log),
        vec![
            (1, "kept".into(), Some("v".into())),
            (3, "gone".into(), None)
        ],
        "the first cleaning keeps the tombstone however old its timestamp"
    );
    assert_eq!(
        horizons(&log),
        vec![(3, 11_000)],
        "the pass stamped now + delete.retention.ms in the tombstone's batch"
    );
    let mut stamps = Vec::new();
    for (_, b) in read_all(&log, 3) {
        visit_records(&b, 1 << 20, |r| stamps.push(r.timestamp_ms)).expect("records");
    }
    assert_eq!(
        stamps,
        vec![100],
        "the record's own timestamp reads back unchanged"
    );
    assert_eq!(
        log.compact(10_999, end).expect("compact"),
        None,
        "nothing is dirty and the horizon has not passed"
    );
    let stats = log
        .compact(11_000, end)
        .expect("compact")
        .expect("the horizon makes a pass due");
    assert_eq!(stats.records_removed, 1);
    assert_eq!(records(&log), vec![(1, "kept".into(), Some("v".into()))]);
    assert_eq!(
        log.compact(20_000, end).expect("compact"),
        None,
        "nothing waits any more"
    );
}

/// `records` as a transactional batch of producer `pid` (epoch 0, sequence `seq`).
fn txn_batch(records: &[(&str, Option<String>)], pid: i64, seq: i32) -> Vec<u8> {
    let mut txn = keyed_batch(records, 1, Codec::None);
    weir_storage::batch::set_producer(&mut txn, pid, 0, seq);
    let attrs = i16::from_be_bytes([txn[21], txn[22]]) | weir_storage::batch::ATTR_TRANSACTIONAL;
    txn[21..23].copy_from_slice(&attrs.to_be_bytes());
    let crc = compute_crc(&txn);
    txn[17..21].copy_from_slice(&crc.to_be_bytes());
    txn
}

/// The transaction marker of producer `pid` (epoch 0).
fn txn_marker(pid: i64, kind: TxnMarkerKind) -> Vec<u8> {
    encode_txn_marker(
        &TxnMarker {
            producer_id: pid,
            producer_epoch: 0,
            kind,
            coordinator_epoch: 0,
        },
        1,
    )
}

/// Base offsets of the control batches the log serves.
fn control_batches(log: &Log) -> Vec<i64> {
    read_all(log, 0)
        .iter()
        .filter(|(_, b)| BatchHeader::parse(b).is_ok_and(|h| h.is_control()))
        .map(|(base, _)| *base)
        .collect()
}

#[test]
fn the_commit_marker_of_an_emptied_transaction_goes_after_its_horizon() {
    let dir = tempfile::tempdir().expect("tmp");
    let (_dd, log) = open(dir.path(), retention_1s_cfg());
    let opts = AppendOptions::default();
    let append = |b: Vec<u8>| log.append(b, &opts).expect("append").base_offset;
    append(txn_batch(&[("k", Some("in txn 1".into()))], 9, 0));
    let first_marker = append(txn_marker(9, TxnMarkerKind::Commit));
    append(keyed_batch(&[("k", Some("later".into()))], 1, Codec::None));
    append(txn_batch(&[("j", Some("in txn 2".into()))], 9, 1));
    let second_marker = append(txn_marker(9, TxnMarkerKind::Commit));
    append(txn_batch(&[("m", Some("in txn 3".into()))], 9, 2));
    let last_marker = append(txn_marker(9, TxnMarkerKind::Commit));
    log.roll().expect("roll");
    let end = log.log_end_offset();
    log.compact(10_000, end).expect("compact").expect("due");
    assert_eq!(
        records(&log),
        vec![
            (2, "k".into(), Some("later".into())),
            (3, "j".into(), Some("in txn 2".into())),
            (5, "m".into(), Some("in txn 3".into()))
        ]
    );
    assert_eq!(
        control_batches(&log),
        vec![first_marker, second_marker, last_marker],
        "an emptied transaction's marker stays until its horizon"
    );
    assert_eq!(horizons(&log), vec![(first_marker, 11_000)]);
    log.compact(11_000, end)
        .expect("compact")
        .expect("due at the horizon");
    assert_eq!(
        control_batches(&log),
        vec![second_marker, last_marker],
        "the marker of a transaction with records, and the producer's last batch, stay"
    );
    assert_eq!(records(&log).len(), 3);
    assert_eq!(log.log_end_offset(), end, "the log end stays");
}

#[test]
fn nothing_at_or_after_the_stable_end_or_in_the_active_segment_is_touched() {
    let dir = tempfile::tempdir().expect("tmp");
    let (_dd, log) = open(dir.path(), compacted_cfg());
    for i in 0..60 {
        log.append(
            keyed_batch(&[("k", Some(format!("v{i}")))], 1, Codec::None),
            &AppendOptions::default(),
        )
        .expect("append");
    }
    let bases = log.segment_base_offsets();
    assert!(bases.len() >= 3, "small segments rolled: {bases:?}");
    // The stable end falls inside the second segment: only the first is cleanable.
    let stable_end = bases[1] + 1;
    let stats = log.compact(10, stable_end).expect("compact").expect("due");
    assert_eq!(
        stats.cleaned_to, bases[1],
        "the pass ends with the first segment"
    );
    assert_eq!(stats.records_removed as i64, bases[1] - 1);
    let got = records(&log);
    assert_eq!(got.first().map(|r| r.0), Some(bases[1] - 1));
    assert_eq!(
        got.len() as i64,
        60 - (bases[1] - 1),
        "nothing after the first segment went"
    );
    // Nothing new is stable: no pass is due.
    assert_eq!(log.compact(10, stable_end).expect("compact"), None);
}

#[test]
fn records_of_aborted_transactions_go_and_markers_stay() {
    let dir = tempfile::tempdir().expect("tmp");
    let (_dd, log) = open(dir.path(), compacted_cfg());
    log.append(
        keyed_batch(&[("k", Some("committed-before".into()))], 1, Codec::None),
        &AppendOptions::default(),
    )
    .expect("append");
    let first = log
        .append(
            txn_batch(&[("k", Some("aborted".into()))], 9, 0),
            &AppendOptions::default(),
        )
        .expect("append")
        .base_offset;
    let mut marker = txn_marker(9, TxnMarkerKind::Abort);
    weir_storage::batch::set_producer(&mut marker, 9, 0, -1);
    let at = log
        .append(marker, &AppendOptions::default())
        .expect("marker")
        .base_offset;
    log.append_aborted_txn(AbortedTxn {
        producer_id: 9,
        first_offset: first,
        last_offset: at,
        last_stable_offset: at + 1,
    })
    .expect("index");
    log.roll().expect("roll");
    log.compact(10, log.log_end_offset())
        .expect("compact")
        .expect("due");
    assert_eq!(
        records(&log),
        vec![(0, "k".into(), Some("committed-before".into()))],
        "the aborted record neither stays nor supersedes the committed one"
    );
    let markers = read_all(&log, 0)
        .iter()
        .filter(|(_, b)| BatchHeader::parse(b).is_ok_and(|h| h.is_control()))
        .count();
    assert_eq!(markers, 1, "the marker stays");
}

#[test]
fn a_reopened_log_serves_the_compacted_records_and_an_interrupted_swap_is_finished() {
    let dir = tempfile::tempdir().expect("tmp");
    let twin = tempfile::tempdir().expect("tmp");
    let fill = |log: &Log| {
        for i in 0..40 {
            log.append(
                keyed_batch(
                    &[
                        ("x", Some(format!("x{i}"))),
                        (&format!("u{i}"), Some(format!("u{i}"))),
                    ],
                    1,
                    Codec::Gzip,
                ),
                &AppendOptions::default(),
            )
            .expect("append");
        }
        log.roll().expect("roll");
    };
    let compacted = {
        let (dd, log) = open(dir.path(), compacted_cfg());
        fill(&log);
        log.compact(10, log.log_end_offset())
            .expect("compact")
            .expect("due");
        let want = records(&log);
        drop(log);
        dd.shutdown();
        drop(dd);
        want
    };
    let (dd, log) = open(dir.path(), compacted_cfg());
    assert_eq!(records(&log), compacted, "reopened");
    drop(log);
    dd.shutdown();
    drop(dd);

    // The twin has the same log uncompacted; a crash left the cleaner's swap file of its first
    // segment (complete) and a half-written rewrite of another.
    let (dd2, log2) = open(twin.path(), compacted_cfg());
    fill(&log2);
    let bases = log2.segment_base_offsets();
    drop(log2);
    dd2.shutdown();
    drop(dd2);
    let name = |b: i64, ext: &str| format!("{b:020}.{ext}");
    fs::copy(
        dir.path().join("t-0").join(name(bases[0], "log")),
        twin.path().join("t-0").join(name(bases[0], "log.swap")),
    )
    .expect("copy");
    fs::write(
        twin.path().join("t-0").join(name(bases[1], "log.cleaned")),
        b"half",
    )
    .expect("write");
    let (_dd3, log3) = open(twin.path(), compacted_cfg());
    let got = records(&log3);
    let first_end = bases[1];
    assert_eq!(
        got.iter().filter(|r| r.0 < first_end).collect::<Vec<_>>(),
        compacted
            .iter()
            .filter(|r| r.0 < first_end)
            .collect::<Vec<_>>(),
        "the first segment is the swapped-in one"
    );
    assert_eq!(
        got.iter().filter(|r| r.0 >= first_end).count() as i64,
        (80 - first_end)
    );
    let leftovers: Vec<_> = fs::read_dir(twin.path().join("t-0"))
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".swap") || n.ends_with(".cleaned"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Lookups by offset go through the rebuilt index.
    let last = compacted.iter().rfind(|r| r.0 < first_end).expect("one");
    let bytes = log3.read(last.0, 1).expect("read");
    let h = BatchHeader::parse(&bytes).expect("batch");
    assert!(h.base_offset <= last.0 && last.0 <= h.last_offset());
}

/// One step of the model test.
#[derive(Debug, Clone)]
enum Step {
    /// A batch of `(key, value or tombstone)`.
    Append(Vec<(u8, Option<u8>)>),
    Roll,
    /// A pass with this stable end, as a share of the log end (per mille).
    Compact(u16),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => prop::collection::vec((0u8..6, prop::option::weighted(0.8, any::<u8>())), 1..5)
            .prop_map(Step::Append),
        1 => Just(Step::Roll),
        2 => (0u16..=1000).prop_map(Step::Compact),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Against a model of every record appended: after any sequence of appends, rolls and
    /// passes, each record served is one that was appended at that offset; a record that is
    /// the latest of its key is always served, unless it is a tombstone and tombstones expire
    /// (`delete.retention.ms` 0, the clock moving on at each pass); what is gone was superseded
    /// by a later record of its key, or was an expired tombstone, below a pass's end; batches
    /// are in offset order up to the log end; and a reopened log serves the same.
    #[test]
    fn compaction_keeps_the_latest_of_every_key(
        steps in prop::collection::vec(step(), 1..60),
        tombstones_expire in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().expect("tmp");
        let mut cfg = compacted_cfg();
        if tombstones_expire {
            if let Some(c) = cfg.compaction.as_mut() {
                c.delete_retention_ms = 0;
            }
        }
        let (dd, log) = open(dir.path(), cfg.clone());
        let mut now_ms = 10;
        let mut appended: Vec<(i64, String, Option<String>)> = Vec::new();
        let mut cleaned_to = 0i64;
        for s in steps {
            match s {
                Step::Append(recs) => {
                    let owned: Vec<(String, Option<String>)> = recs
                        .iter()
                        .map(|(k, v)| (format!("k{k}"), v.map(|v| format!("v{v}"))))
                        .collect();
                    let refs: Vec<(&str, Option<String>)> =
                        owned.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
                    let base = log.append(keyed_batch(&refs, 1, Codec::None), &AppendOptions::default()).expect("append").base_offset;
                    for (i, (k, v)) in owned.into_iter().enumerate() {
                        appended.push((base + i as i64, k, v));
                    }
                }
                Step::Roll => log.roll().expect("roll"),
                Step::Compact(share) => {
                    let end = log.log_end_offset() * i64::from(share) / 1000;
                    now_ms += 1;
                    if let Some(stats) = log.compact(now_ms, end).expect("compact") {
                        // A pass due to a delete horizon alone cleans below the earlier end.
                        prop_assert!(stats.cleaned_to <= end.max(cleaned_to));
                        cleaned_to = cleaned_to.max(stats.cleaned_to);
                    }
                }
            }
        }
        let served = records(&log);
        let mut latest: HashMap<&str, i64> = HashMap::new();
        for (o, k, _) in &appended {
            latest.insert(k, *o);
        }
        let by_offset: HashMap<i64, &(i64, String, Option<String>)> =
            appended.iter().map(|r| (r.0, r)).collect();
        for r in &served {
            prop_assert_eq!(Some(&r), by_offset.get(&r.0), "served as appended");
        }
        let served_offsets: std::collections::HashSet<i64> = served.iter().map(|r| r.0).collect();
        for (o, k, v) in &appended {
            let expired_tombstone = tombstones_expire && v.is_none();
            if latest[k.as_str()] == *o && !expired_tombstone {
                prop_assert!(served_offsets.contains(o), "the latest of {} at {} is served", k, o);
            } else if !served_offsets.contains(o) {
                prop_assert!(*o < cleaned_to, "{} went although no pass reached it", o);
            }
        }
        drop(log);
        dd.shutdown();
        drop(dd);
        let (_dd, log) = open(dir.path(), cfg);
        prop_assert_eq!(records(&log), served, "the same after reopening");
    }
}

const KILL9_CHILD_DIR: &str = "WEIR_COMPACTION_KILL9_DIR";
const KILL9_CHILD_FIRST: &str = "WEIR_COMPACTION_KILL9_FIRST";
/// Keys the kill -9 child writes, one record per batch.
const KILL9_KEYS: u64 = 20;

fn kill9_cfg() -> LogConfig {
    LogConfig {
        fsync: weir_storage::FsyncPolicy::Always,
        ..compacted_cfg()
    }
}

/// The child side of `compaction_survives_kill9_anywhere`: appends `k{i % KILL9_KEYS}` =
/// `v{i}` and prints each acknowledged offset; every 40 appends it rolls and runs a pass, so a
/// kill lands in the middle of rewrites and swaps as often as between them.
#[test]
fn compaction_kill9_child() {
    let Ok(dir) = std::env::var(KILL9_CHILD_DIR) else {
        return;
    };
    let first: u64 = std::env::var(KILL9_CHILD_FIRST)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let dd = DataDir::open(std::path::Path::new(&dir)).expect("open");
    let log = dd.open_log("t-0", kill9_cfg()).expect("log");
    use std::io::Write;
    for i in first..first + 20_000 {
        let key = format!("k{}", i % KILL9_KEYS);
        let r = log
            .append(
                keyed_batch(&[(key.as_str(), Some(format!("v{i}")))], 1, Codec::Gzip),
                &AppendOptions::default(),
            )
            .expect("append");
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "ACK {} {i}", r.base_offset);
        let _ = out.flush();
        if i % 40 == 39 {
            log.roll().expect("roll");
            if let Ok(Some(_)) = log.compact(10, log.high_watermark()) {
                let _ = writeln!(out, "PASS");
                let _ = out.flush();
            }
        }
    }
}

/// kill -9 at any point of appends, rolls and compaction passes, several times over the same
/// log (rounds from `WEIR_COMPACTION_KILL9_ROUNDS`, default 12): after each, the log opens
/// without leftovers, its end is past every acknowledged offset, every record it serves is the
/// one appended at that offset, and for every key a record at or after its latest acknowledged
/// one is served (the cleaner never removes a key's latest record).
#[test]
fn compaction_survives_kill9_anywhere() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let rounds: u64 = std::env::var("WEIR_COMPACTION_KILL9_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let d = tempfile::tempdir().expect("tmp");
    let exe = std::env::current_exe().expect("test binary path");
    // offset -> i of every acknowledged append, over all rounds.
    let mut acked: std::collections::BTreeMap<i64, u64> = Default::default();
    for round in 0..rounds {
        let first = round * 1_000_000;
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "compaction_kill9_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(KILL9_CHILD_DIR, d.path())
            .env(KILL9_CHILD_FIRST, first.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        // After a different number of passes each round, kill the child just as it starts a
        // roll and a pass (its acknowledgement of every 40th append comes right before), a
        // little later each round: inside the pass's reads, its writes, its swaps.
        let mut passes = 0;
        let wanted = 2 + round % 4;
        for line in lines.by_ref() {
            let line = line.expect("line");
            if line == "PASS" {
                passes += 1;
            } else if let Some(rest) = line.strip_prefix("ACK ") {
                let mut it = rest.split(' ');
                let (Some(o), Some(i)) = (it.next(), it.next()) else {
                    continue;
                };
                let i: u64 = i.parse().expect("i");
                acked.insert(o.parse().expect("offset"), i);
                if passes >= wanted && i % 40 == 39 {
                    break;
                }
            }
        }
        assert!(
            passes >= wanted,
            "round {round}: the child stopped after {passes} passes"
        );
        std::thread::sleep(std::time::Duration::from_micros(
            2_500 + (round * 577) % 2_500,
        ));
        child.kill().expect("kill -9");
        let _ = child.wait();
        for line in lines {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix("ACK ") {
                let mut it = rest.split(' ');
                if let (Some(o), Some(i)) = (it.next(), it.next()) {
                    acked.insert(o.parse().expect("offset"), i.parse().expect("i"));
                }
            }
        }

        let interrupted: Vec<_> = fs::read_dir(d.path().join("t-0"))
            .expect("dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".swap") || n.ends_with(".cleaned"))
            .collect();
        eprintln!("round {round}: killed with {interrupted:?} in the log's directory");
        let (dd, log) = open(d.path(), kill9_cfg());
        let leftovers: Vec<_> = fs::read_dir(d.path().join("t-0"))
            .expect("dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".swap") || n.ends_with(".cleaned"))
            .collect();
        assert!(leftovers.is_empty(), "round {round}: {leftovers:?}");
        let last = *acked.keys().next_back().expect("acks");
        assert!(
            log.log_end_offset() > last,
            "round {round}: the end went back"
        );
        let served = records(&log);
        for (o, k, v) in &served {
            if let Some(i) = acked.get(o) {
                assert_eq!(
                    (k.as_str(), v.as_deref()),
                    (
                        format!("k{}", i % KILL9_KEYS).as_str(),
                        Some(format!("v{i}").as_str())
                    ),
                    "round {round}: offset {o}"
                );
            } else {
                assert!(*o > last, "round {round}: offset {o} was never appended");
            }
        }
        for key in 0..KILL9_KEYS {
            let name = format!("k{key}");
            let Some(latest) = acked.iter().rev().find(|(_, i)| *i % KILL9_KEYS == key) else {
                continue;
            };
            assert!(
                served.iter().any(|(o, k, _)| *k == name && o >= latest.0),
                "round {round}: {name}'s latest record (offset {}) is gone",
                latest.0
            );
        }
        drop(log);
        dd.shutdown();
        drop(dd);
    }
}

/// `n` one-record batches of distinct keys, each in a segment of its own (a roll after each),
/// then an active segment; nothing is superseded.
fn one_batch_segments(log: &Log, n: usize) {
    for i in 0..n {
        log.append(
            keyed_batch(
                &[(&format!("u{i:03}"), Some(format!("v{i}")))],
                1,
                Codec::None,
            ),
            &AppendOptions::default(),
        )
        .expect("append");
        log.roll().expect("roll");
    }
}

/// The sizes of the data files of the log's segments, by base offset.
fn segment_file_sizes(dir: &std::path::Path) -> Vec<(i64, u64)> {
    let mut out: Vec<(i64, u64)> = fs::read_dir(dir.join("t-0"))
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let base = name.strip_suffix(".log")?.parse().ok()?;
            Some((base, e.metadata().ok()?.len()))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn small_segments_are_merged_up_to_segment_bytes_and_a_crash_mid_swap_is_finished() {
    let dir = tempfile::tempdir().expect("tmp");
    let twin = tempfile::tempdir().expect("tmp");
    let (dd, log) = open(dir.path(), compacted_cfg());
    one_batch_segments(&log, 30);
    let before = records(&log);
    assert_eq!(before.len(), 30);
    assert_eq!(log.segment_base_offsets().len(), 31);
    let stats = log
        .compact(10, log.log_end_offset())
        .expect("compact")
        .expect("due");
    assert_eq!(stats.records_removed, 0);
    assert_eq!(
        stats.segments_rewritten, 30,
        "every sealed segment went into a merged one"
    );
    let bases = log.segment_base_offsets();
    assert!(
        bases.len() <= 5,
        "30 small segments merged into a few: {bases:?}"
    );
    assert_eq!(records(&log), before, "every record at its offset");
    let sizes = segment_file_sizes(dir.path());
    assert_eq!(
        sizes.len(),
        bases.len(),
        "no file left of a merged segment: {sizes:?}"
    );
    assert!(
        sizes.iter().all(|&(_, len)| len <= 1024),
        "merged segments stay within segment.bytes: {sizes:?}"
    );
    assert!(
        sizes.iter().filter(|&&(_, len)| len > 0).count() >= 2,
        "{sizes:?}"
    );
    // Every offset is found through the rebuilt indexes.
    for (offset, _, _) in &before {
        let h = BatchHeader::parse(&log.read(*offset, 1).expect("read")).expect("batch");
        assert_eq!(h.base_offset, *offset);
    }
    assert_eq!(
        log.compact(10, log.log_end_offset()).expect("compact"),
        None,
        "merged and clean: nothing due"
    );
    let merged_first = fs::read(dir.path().join("t-0").join(format!("{:020}.log", bases[0])))
        .expect("merged segment");
    drop(log);
    dd.shutdown();
    drop(dd);
    let (dd, log) = open(dir.path(), compacted_cfg());
    assert_eq!(records(&log), before, "reopened");
    assert_eq!(log.segment_base_offsets(), bases);
    drop(log);
    dd.shutdown();
    drop(dd);

    // A crash right after the swap of the first merged segment was committed, before its other
    // members were deleted: opening finishes the swap and removes the members it covers.
    let (dd2, log2) = open(twin.path(), compacted_cfg());
    one_batch_segments(&log2, 30);
    drop(log2);
    dd2.shutdown();
    drop(dd2);
    fs::write(
        twin.path()
            .join("t-0")
            .join(format!("{:020}.log.swap", bases[0])),
        &merged_first,
    )
    .expect("swap file");
    let (_dd3, log3) = open(twin.path(), compacted_cfg());
    assert_eq!(records(&log3), before, "each record once, at its offset");
    let twin_bases = log3.segment_base_offsets();
    assert_eq!(twin_bases[0], bases[0]);
    assert_eq!(
        twin_bases[1], bases[1],
        "the segments the swap covers are gone, the next one stays"
    );
}

#[test]
fn an_aborted_transactions_marker_and_its_index_entry_go_after_its_horizon() {
    let dir = tempfile::tempdir().expect("tmp");
    let (dd, log) = open(dir.path(), retention_1s_cfg());
    let opts = AppendOptions::default();
    let append = |b: Vec<u8>| log.append(b, &opts).expect("append").base_offset;
    let first = append(txn_batch(&[("k", Some("aborted".into()))], 9, 0));
    let mut abort = txn_marker(9, TxnMarkerKind::Abort);
    weir_storage::batch::set_producer(&mut abort, 9, 0, -1);
    let abort_at = append(abort);
    log.append_aborted_txn(AbortedTxn {
        producer_id: 9,
        first_offset: first,
        last_offset: abort_at,
        last_stable_offset: abort_at + 1,
    })
    .expect("index");
    append(txn_batch(&[("j", Some("committed".into()))], 9, 1));
    let commit_at = append(txn_marker(9, TxnMarkerKind::Commit));
    log.roll().expect("roll");
    let end = log.log_end_offset();
    log.compact(10_000, end).expect("compact").expect("due");
    assert_eq!(
        records(&log),
        vec![(2, "j".into(), Some("committed".into()))]
    );
    assert_eq!(control_batches(&log), vec![abort_at, commit_at]);
    assert_eq!(
        log.aborted_txns(0, end).len(),
        1,
        "the entry stays with its marker"
    );
    log.compact(11_000, end)
        .expect("compact")
        .expect("due at the horizon");
    assert_eq!(
        control_batches(&log),
        vec![commit_at],
        "the ABORT marker of the emptied transaction went; the producer's last batch stays"
    );
    assert!(
        log.aborted_txns(0, end).is_empty(),
        "its index entry went first"
    );
    assert_eq!(
        records(&log),
        vec![(2, "j".into(), Some("committed".into()))]
    );
    drop(log);
    dd.shutdown();
    drop(dd);
    let (_dd, log) = open(dir.path(), retention_1s_cfg());
    assert!(
        log.aborted_txns(0, end).is_empty(),
        "the index entry stays gone after reopening"
    );
    assert_eq!(control_batches(&log), vec![commit_at]);
}

#[test]
fn the_active_segment_of_a_compacted_log_rolls_at_max_compaction_lag() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = LogConfig {
        segment_bytes: 1 << 20,
        compaction: Some(CompactionConfig {
            max_compaction_lag_ms: 60_000,
            ..CompactionConfig::default()
        }),
        ..small_cfg()
    };
    let (_dd, log) = open(dir.path(), cfg);
    let at = |ms: i64| AppendOptions {
        log_append_time_ms: Some(ms),
        ..AppendOptions::default()
    };
    let k = |v: &str| keyed_batch(&[("k", Some(v.into()))], 1, Codec::None);
    log.append(k("first"), &at(1_000)).expect("append");
    log.append(k("second"), &at(61_000)).expect("append");
    assert_eq!(
        log.segment_base_offsets(),
        vec![0],
        "not older than the lag yet"
    );
    log.append(k("third"), &at(61_001)).expect("append");
    assert_eq!(
        log.segment_base_offsets(),
        vec![0, 2],
        "with no segment.ms, max.compaction.lag.ms rolls the active segment (KIP-354)"
    );
    // The rolled segment is cleanable now, and overdue whatever the dirty ratio.
    log.compact(121_002, log.log_end_offset())
        .expect("compact")
        .expect("due");
    let got: Vec<i64> = records(&log).iter().map(|r| r.0).collect();
    assert_eq!(got, vec![1, 2]);
}
