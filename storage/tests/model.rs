//! Model-based property test: random sequences of append (in rising leader epochs) / read /
//! restart / delete-records / retention / timestamp lookup / truncation / reset against a simple
//! in-memory model of the log. Reads must return exactly the model's batches, and the
//! leader-epoch cache must match the model's epochs.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use proptest::prelude::*;
use weir_storage::batch::testing::{split_batches, RecordRef};
use weir_storage::batch::BatchHeader;
use weir_storage::{AppendOptions, DataDir, FsyncPolicy, Log, LogConfig, StorageError};

#[derive(Debug, Clone)]
enum Op {
    /// One append of several batches, each `(records, value_len)`; `true`: in a new epoch.
    Append(Vec<(usize, usize)>, bool),
    Read {
        pick: usize,
        max_bytes: usize,
    },
    Restart {
        clean: bool,
    },
    DeleteRecords {
        pick: usize,
    },
    RetentionBytes(u64),
    RetentionTime {
        keep_last: usize,
    },
    TimeLookup(i64),
    /// Truncate at the start of a batch (picked among the batches), as a follower does.
    Truncate {
        pick: usize,
    },
    /// Start over empty, `ahead` offsets past the end.
    Reset {
        ahead: i64,
    },
    /// Write the recovery point (as the broker does every second): a later crash checks only
    /// what was written after it, and must still recover exactly the model.
    RecoveryPoint,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (prop::collection::vec((1usize..4, 0usize..120), 1..4), prop::bool::weighted(0.2))
            .prop_map(|(spec, new_epoch)| Op::Append(spec, new_epoch)),
        4 => (any::<usize>(), 0usize..1500).prop_map(|(pick, max_bytes)| Op::Read { pick, max_bytes }),
        1 => any::<bool>().prop_map(|clean| Op::Restart { clean }),
        1 => any::<usize>().prop_map(|pick| Op::DeleteRecords { pick }),
        1 => (0u64..3000).prop_map(Op::RetentionBytes),
        1 => (0usize..20).prop_map(|keep_last| Op::RetentionTime { keep_last }),
        2 => (-5i64..2000).prop_map(Op::TimeLookup),
        1 => any::<usize>().prop_map(|pick| Op::Truncate { pick }),
        1 => (0i64..50).prop_map(|ahead| Op::Reset { ahead }),
        2 => Just(Op::RecoveryPoint),
    ]
}

struct ModelBatch {
    base: i64,
    last: i64,
    ts: i64,
    epoch: i32,
    bytes: Vec<u8>,
}

#[derive(Default)]
struct Model {
    batches: Vec<ModelBatch>,
    start: i64,
    end: i64,
    clock: i64,
    epoch: i32,
}

impl Model {
    fn visible(&self) -> impl Iterator<Item = &ModelBatch> {
        self.batches.iter().filter(move |b| b.last >= self.start)
    }

    /// The leader-epoch cache the log should hold: the first visible offset of each epoch.
    fn epochs(&self) -> Vec<(i32, i64)> {
        let mut out: Vec<(i32, i64)> = Vec::new();
        for b in self.visible() {
            if out.last().is_none_or(|&(e, _)| b.epoch > e) {
                out.push((b.epoch, b.base.max(self.start)));
            }
        }
        out
    }
}

fn cfg(policy: FsyncPolicy) -> LogConfig {
    LogConfig {
        segment_bytes: 700,
        segment_ms: None,
        retention_bytes: None,
        retention_ms: None,
        index_interval_bytes: 150,
        fsync: policy,
        preallocate_bytes: 256,
        compaction: None,
    }
}

fn open(root: &Path, policy: FsyncPolicy) -> (Arc<DataDir>, Arc<Log>) {
    let dd = DataDir::open(root).expect("open");
    let log = dd.open_log("m-0", cfg(policy)).expect("log");
    (dd, log)
}

fn check_full(log: &Log, m: &Model) {
    assert_eq!(log.log_start_offset(), m.start);
    assert_eq!(log.log_end_offset(), m.end);
    assert_eq!(log.high_watermark(), m.end);
    let got = read_all(log, m.start);
    let want: Vec<&ModelBatch> = m.visible().collect();
    assert_eq!(got.len(), want.len(), "batch count");
    for ((base, g), w) in got.iter().zip(want) {
        assert_eq!(*base, w.base);
        assert!(same_epoch_payload(g, &w.bytes));
    }
    assert_eq!(log.leader_epochs(), m.epochs(), "leader-epoch cache");
}

/// Same batch modulo the base offset and leader epoch fields (which the log sets).
fn same_epoch_payload(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a[8..12] == b[8..12] && a[16..] == b[16..]
}

fn run(ops: Vec<Op>, policy: FsyncPolicy) {
    let d = tempfile::tempdir().expect("tmp");
    let (mut dd, mut log) = open(d.path(), policy);
    let mut m = Model::default();
    let mut tag = 0u64;
    for op in ops {
        match op {
            Op::Append(spec, new_epoch) => {
                if new_epoch {
                    m.epoch += 1;
                }
                let mut buf = Vec::new();
                let mut parts = Vec::new();
                for (n, vlen) in spec {
                    m.clock += 10;
                    tag += 1;
                    let vals: Vec<Vec<u8>> = (0..n)
                        .map(|j| vec![(tag as u8) ^ (j as u8); vlen])
                        .collect();
                    let recs: Vec<RecordRef<'_>> =
                        vals.iter().map(|v| (None, Some(v.as_slice()))).collect();
                    let b = weir_storage::batch::testing::build_batch(&recs, m.clock);
                    parts.push((n as i64, m.clock, b.clone()));
                    buf.extend(b);
                }
                let opts = AppendOptions {
                    partition_leader_epoch: Some(m.epoch),
                    ..AppendOptions::default()
                };
                let r = log.append(buf, &opts).expect("append");
                assert_eq!(r.base_offset, m.end);
                for (n, ts, b) in parts {
                    m.batches.push(ModelBatch {
                        base: m.end,
                        last: m.end + n - 1,
                        ts,
                        epoch: m.epoch,
                        bytes: b,
                    });
                    m.end += n;
                }
                assert_eq!(r.last_offset, m.end - 1);
            }
            Op::Read { pick, max_bytes } => {
                let offset = if m.end + 3 > 0 {
                    (pick % (m.end as usize + 3)) as i64 - 1
                } else {
                    0
                };
                let res = log.read(offset, max_bytes);
                // The same read as a file range names the same bytes.
                let sliced = log.slice_below(offset, max_bytes, i64::MAX, true);
                match (&res, &sliced) {
                    (Ok(bytes), Ok(slice)) => {
                        let in_file = slice
                            .as_ref()
                            .map(|s| s.read_to_vec().expect("slice reads"))
                            .unwrap_or_default();
                        assert_eq!(&in_file, bytes, "slice of {offset}, {max_bytes} bytes");
                        let next = split_batches(bytes)
                            .last()
                            .map(|(_, b)| BatchHeader::parse(b).expect("h").last_offset() + 1);
                        assert_eq!(slice.as_ref().and_then(|s| s.next_offset()), next);
                    }
                    (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                    other => panic!("read and slice disagree: {other:?}"),
                }
                if offset < m.start || offset > m.end {
                    assert!(
                        matches!(res, Err(StorageError::OffsetOutOfRange { .. })),
                        "offset {offset}"
                    );
                    continue;
                }
                let bytes = res.expect("read");
                if offset == m.end {
                    assert!(bytes.is_empty());
                    continue;
                }
                let got = split_batches(&bytes);
                assert!(!got.is_empty());
                assert!(
                    got.len() == 1 || bytes.len() <= max_bytes,
                    "max_bytes honoured"
                );
                let first = m
                    .batches
                    .iter()
                    .position(|b| b.base <= offset && offset <= b.last)
                    .expect("model batch");
                for (i, (base, g)) in got.iter().enumerate() {
                    let w = &m.batches[first + i];
                    assert_eq!(*base, w.base);
                    assert!(same_epoch_payload(g, &w.bytes));
                }
            }
            Op::Restart { clean } => {
                if clean {
                    dd.shutdown();
                } else {
                    dd.shutdown_unclean();
                }
                drop(log);
                drop(dd);
                (dd, log) = open(d.path(), policy);
                check_full(&log, &m);
            }
            Op::RecoveryPoint => {
                log.checkpoint_recovery_point().expect("recovery point");
            }
            Op::DeleteRecords { pick } => {
                let offset = (pick % (m.end as usize + 3)) as i64;
                let r = log.delete_records_before(offset);
                if offset > m.end {
                    assert!(matches!(r, Err(StorageError::OffsetOutOfRange { .. })));
                } else {
                    m.start = m.start.max(offset);
                    assert_eq!(r.expect("delete"), m.start);
                }
            }
            Op::TimeLookup(ts) => {
                // Every record of a model batch has the batch's timestamp, and timestamps
                // increase with offsets.
                let want = m
                    .visible()
                    .find(|b| b.ts >= ts)
                    .map(|b| (b.base.max(m.start), b.ts));
                assert_eq!(
                    log.offset_for_timestamp(ts).expect("lookup"),
                    want,
                    "ts {ts}"
                );
            }
            Op::Truncate { pick } => {
                let boundaries: Vec<i64> = m
                    .batches
                    .iter()
                    .map(|b| b.base)
                    .chain(std::iter::once(m.end))
                    .collect();
                let offset = boundaries[pick % boundaries.len()];
                let r = log.truncate_to(offset);
                if offset < m.start {
                    assert!(matches!(r, Err(StorageError::OffsetOutOfRange { .. })));
                } else {
                    r.expect("truncate");
                    m.batches.retain(|b| b.base < offset);
                    m.end = offset;
                }
                assert_eq!(log.leader_epochs(), m.epochs());
            }
            Op::Reset { ahead } => {
                let offset = m.end + ahead;
                log.reset_to(offset).expect("reset");
                m.batches.clear();
                m.start = offset;
                m.end = offset;
                assert!(log.leader_epochs().is_empty());
            }
            Op::RetentionBytes(bytes) => {
                let before = log.log_start_offset();
                log.set_config(LogConfig {
                    retention_bytes: Some(bytes),
                    ..cfg(policy)
                });
                log.enforce_retention(0, i64::MAX).expect("retention");
                log.set_config(cfg(policy));
                adopt_start(&log, &mut m, before);
                assert!(log.size_bytes() >= bytes.min(log.size_bytes()));
            }
            Op::RetentionTime { keep_last } => {
                let before = log.log_start_offset();
                // Expire everything older than the last `keep_last` batches' timestamps.
                let cutoff = m.batches.iter().rev().nth(keep_last).map_or(0, |b| b.ts);
                log.set_config(LogConfig {
                    retention_ms: Some(100),
                    ..cfg(policy)
                });
                log.enforce_retention(cutoff + 101, i64::MAX)
                    .expect("retention");
                log.set_config(cfg(policy));
                adopt_start(&log, &mut m, before);
                // Nothing newer than the cutoff was deleted.
                let newest_deleted = m
                    .batches
                    .iter()
                    .filter(|b| b.last >= before && b.last < m.start)
                    .map(|b| b.ts)
                    .max();
                assert!(newest_deleted.is_none_or(|t| t <= cutoff));
            }
        }
        assert_eq!(log.log_end_offset(), m.end);
        assert_eq!(log.high_watermark(), m.end);
        assert_eq!(log.log_start_offset(), m.start);
    }
    check_full(&log, &m);
    dd.shutdown();
}

/// Retention moves the start to a segment boundary: check it is a batch boundary at or after
/// the old start and adopt it.
fn adopt_start(log: &Log, m: &mut Model, before: i64) {
    let s = log.log_start_offset();
    assert!(s >= before);
    if s != before {
        assert!(
            m.batches.iter().any(|b| b.base == s) || s == m.end,
            "start {s} not a batch boundary"
        );
        // Retention deletes the active segment only after rolling it (Kafka's rule for a wholly
        // expired log), so the start can reach the end, never pass it.
        assert!(s <= m.end);
        m.start = s;
    }
    // The first served batch is the one at the new start.
    if m.start < m.end {
        let b = log.read(m.start, 1).expect("read at start");
        let h = BatchHeader::parse(&b).expect("h");
        assert!(h.base_offset <= m.start && m.start <= h.last_offset());
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn log_matches_model(ops in prop::collection::vec(op(), 1..60)) {
        run(ops, FsyncPolicy::Never);
    }

    #[test]
    fn log_matches_model_fsync_always(ops in prop::collection::vec(op(), 1..30)) {
        run(ops, FsyncPolicy::Always);
    }
}
