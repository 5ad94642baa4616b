//! Functional tests of the log API: reads, rolls, retention, delete-records, indexes,
//! timestamps, LogAppendTime, fsync policies, group commit and poisoning.

mod common;

use std::fs::{self, File};
use std::io;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;

use common::*;
use parking_lot::Mutex;
use weir_storage::batch::{validate_batches, BatchHeader};
use weir_storage::{AppendOptions, DataDir, FileSync, FsyncPolicy, LogConfig, StorageError};

fn opts() -> AppendOptions {
    AppendOptions::default()
}

#[test]
fn append_assigns_offsets_and_reads_whole_batches() {
    let d = tempfile::tempdir().expect("tmp");
    let dd = DataDir::open(d.path()).expect("open");
    let log = dd.open_log("t-0", small_cfg()).expect("log");
    let r1 = log.append(batch(1, 3, 10), &opts()).expect("append");
    assert_eq!((r1.base_offset, r1.last_offset, r1.batches), (0, 2, 1));
    // Two batches in one append (as in a Produce request).
    let mut two = batch(2, 2, 11);
    two.extend(batch(3, 1, 12));
    let r2 = log.append(two, &opts()).expect("append");
    assert_eq!((r2.base_offset, r2.last_offset, r2.batches), (3, 5, 2));
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(log.high_watermark(), 6);

    // Offset in the middle of a batch returns that whole batch.
    let b = log.read(1, 1 << 20).expect("read");
    let hs = validate_batches(&b).expect("valid");
    assert_eq!(
        hs.iter().map(|h| h.base_offset).collect::<Vec<_>>(),
        vec![0, 3, 5]
    );
    // max_bytes smaller than the first batch: still the first batch, whole, and only it.
    let b = log.read(3, 1).expect("read");
    let hs = validate_batches(&b).expect("valid");
    assert_eq!(hs.len(), 1);
    assert_eq!(hs[0].base_offset, 3);
    // At the high watermark: empty. Past the log end: out of range.
    assert!(log.read(6, 100).expect("read").is_empty());
    assert!(matches!(
        log.read(7, 100),
        Err(StorageError::OffsetOutOfRange { requested: 7, .. })
    ));
    assert!(matches!(
        log.read(-1, 100),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn invalid_appends_rejected() {
    let d = tempfile::tempdir().expect("tmp");
    let dd = DataDir::open(d.path()).expect("open");
    let log = dd.open_log("t-0", small_cfg()).expect("log");
    let mut bad = batch(1, 1, 1);
    let n = bad.len();
    bad[n - 1] ^= 0xff;
    assert!(matches!(
        log.append(bad, &opts()),
        Err(StorageError::InvalidBatch(_))
    ));
    assert!(matches!(
        log.append(Vec::new(), &opts()),
        Err(StorageError::EmptyAppend)
    ));
    let big = batch(1, 10, 1);
    let o = AppendOptions {
        max_batch_bytes: Some(50),
        ..opts()
    };
    assert!(matches!(
        log.append(big, &o),
        Err(StorageError::RecordTooLarge { max: 50, .. })
    ));
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn rolls_by_size_and_reads_across_segments() {
    let d = tempfile::tempdir().expect("tmp");
    let dd = DataDir::open(d.path()).expect("open");
    let log = dd.open_log("t-0", small_cfg()).expect("log");
    let mut sent = Vec::new();
    for i in 0..60 {
        let b = batch(i, 2, 1000 + i as i64);
        log.append(b.clone(), &opts()).expect("append");
        sent.push(b);
    }
    assert!(log.segment_count() > 3, "segments: {}", log.segment_count());
    let got = read_all(&log, 0);
    assert_eq!(got.len(), sent.len());
    for ((_, g), s) in got.iter().zip(&sent) {
        assert!(same_payload(g, s));
    }
    // Every segment file name is its 20-digit base offset.
    for base in log.segment_base_offsets() {
        assert!(log.dir().join(format!("{base:020}.log")).exists());
        assert!(log.dir().join(format!("{base:020}.index")).exists());
        assert!(log.dir().join(format!("{base:020}.timeindex")).exists());
    }
    // Reopen after a clean shutdown: same content, appends continue.
    dd.shutdown();
    drop(dd);
    let dd = DataDir::open(d.path()).expect("reopen");
    let log = dd.open_log("t-0", small_cfg()).expect("log");
    assert_eq!(log.log_end_offset(), 120);
    assert_eq!(read_all(&log, 0).len(), 60);
    assert_eq!(
        log.append(batch(99, 1, 1), &opts())
            .expect("append")
            .base_offset,
        120
    );
}

#[test]
fn rolls_by_age() {
    let d = tempfile::tempdir().expect("tmp");
    let dd = DataDir::open(d.path()).expect("open");
    let cfg = LogConfig {
        segment_bytes: 1 << 20,
        segment_ms: Some(60_000),
        ..small_cfg()
    };
    let log = dd.open_log("t-0", cfg).expect("log");
    // First batch stamped an hour ago: the active segment is already older than segment.ms.
    // The age reference is the time of the segment's first append ("now" is the
    // LogAppendTime when given, else the wall clock), not the producer's timestamps.
    log.append(
        batch(1, 1, 1),
        &AppendOptions {
            log_append_time_ms: Some(1_000),
            ..opts()
        },
    )
    .expect("append");
    log.append(
        batch(1, 1, 1),
        &AppendOptions {
            log_append_time_ms: Some(2_000),
            ..opts()
        },
    )
    .expect("append");
    assert_eq!(log.segment_count(), 1);
    log.append(
        batch(2, 1, 2_000),
        &AppendOptions {
            log_append_time_ms: Some(1_000 + 3_600_000),
            ..opts()
        },
    )
    .expect("append");
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
}

#[test]
fn retention_by_bytes_and_time() {
    let d = tempfile::tempdir().expect("tmp");
    let dd = DataDir::open(d.path()).expect("open");
    let log = dd.open_log("t-0", small_cfg()).expect("log");
    for i in 0..60 {
        log.append(batch(i, 2, 1_000 + i as i64 * 100), &opts())
            .expect("append");
    }
    let segs = log.segment_count();
    assert!(segs >= 4);
    // Nothing configured: nothing deleted.
    assert_eq!(
        log.enforce_retention(i64::MAX / 2, i64::MAX)
            .expect("retention"),
        0
    );

    // By time: segments whose newest batch is older than now - retention.
    let bases = log.segment_base_offsets();
    log.set_config(LogConfig {
        retention_ms: Some(1_000),
        ..small_cfg()
    });
    // "now" is just after the 2nd segment's newest record: the first segment expires, the 2nd
    // (newest batch within retention) stops the sweep.
    let first_seg_last = (bases[1] / 2 - 1) as i64; // batch index of the first segment's last batch
    let now = 1_000 + first_seg_last * 100 + 1_001;
    assert_eq!(log.enforce_retention(now, i64::MAX).expect("retention"), 1);
    assert_eq!(log.log_start_offset(), bases[1]);
    assert!(matches!(
        log.read(0, 100),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert!(!log.dir().join(format!("{:020}.log", bases[0])).exists());

    // By bytes: keep deleting oldest sealed segments while the rest still exceeds the limit.
    log.set_config(LogConfig {
        retention_bytes: Some(2_500),
        ..small_cfg()
    });
    let n = log.enforce_retention(0, i64::MAX).expect("retention");
    assert!(n >= 1);
    assert!(log.size_bytes() >= 2_500 || log.segment_count() == 1);
    let remaining = log.segment_base_offsets();
    assert_eq!(log.log_start_offset(), remaining[0]);
    // Nothing above the committed end goes, the active segment included.
    log.set_config(LogConfig {
        retention_ms: Some(0),
        ..small_cfg()
    });
    let committed = log.log_end_offset() - 2;
    log.enforce_retention(i64::MAX / 2, committed)
        .expect("retention");
    assert_eq!(log.segment_count(), 1);
    let start = log.log_start_offset();
    assert!(start <= committed);
    assert_eq!(read_all(&log, start).len() as i64, (120 - start) / 2);
    // Once everything is committed and expired, the active segment goes too, as in Kafka: the
    // log rolls, then the old active segment is deleted; the log is empty, its start at its end.
    log.enforce_retention(i64::MAX / 2, i64::MAX)
        .expect("retention");
    assert_eq!(log.segment_count(), 1);
    let start = log.log_start_offset();
    assert_eq!(start, log.log_end_offset());
    assert_eq!(start, 120);
    assert!(read_all(&log, start).is_empty());

    // The new log start survives a restart.
    dd.shutdown();
    drop(dd);
    let dd = DataDir::open(d.path()).expect("reopen");
    let log = dd.open_log("t-0", small_cfg()).expect("log");
    assert_eq!(log.log_start_offset(), start);
}

#[test]
fn delete_records_advances_start_and_deletes_segments() {
    let d = tempfile::tempdir().expect("tmp");
    let dd = DataDir::open(d.path()).expect("open");
    let log = dd.open_log("t-0", small_cfg()).expect("log");
    for i in 0..40 {
        log.append(batch(i, 2, 1), &opts()).expect("append");
    }
    let bases = log.segment_base_offsets();
    assert!(matches!(
        log.delete_records_before(81),
        Err(StorageError::OffsetOutOfRange { requested: 81, .. })
    ));
    // Mid-segment, mid-batch: start moves, the segment holding it stays.
    let target = bases[1] + 1;
    assert_eq!(log.delete_records_before(target).expect("delete"), target);
    assert_eq!(log.log_start_offset(), target);
    assert_eq!(log.segment_base_offsets()[0], bases[1]);
    assert!(matches!(
        log.read(target - 1, 100),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    // Reading at the start returns the batch containing it.
    let b = log.read(target, 1).expect("read");
    assert_eq!(BatchHeader::parse(&b).expect("h").base_offset, target - 1);
    // Going backwards is a no-op.
    assert_eq!(log.delete_records_before(0).expect("noop"), target);
    // Up to the high watermark is allowed: everything but the active segment goes.
    assert_eq!(log.delete_records_before(80).expect("delete"), 80);
    assert_eq!(log.segment_count(), 1);
    assert!(log.read(80, 100).expect("read").is_empty());
    dd.shutdown();
    drop(dd);
    let dd = DataDir::open(d.path()).expect("reopen");
    let log = dd.open_log("t-0", small_cfg()).expect("log");
    assert_eq!(log.log_start_offset(), 80);
    assert_eq!(log.log_end_offset(), 80);
    assert_eq!(
        log.append(batch(1, 1, 1), &opts())
            .expect("append")
            .base_offset,
        80
    );
}

#[test]
fn index_rebuilt_when_deleted_truncated_or_garbage() {
    let d = tempfile::tempdir().expect("tmp");
    let dd = DataDir::open(d.path()).expect("open");
    let log = dd.open_log("t-0", small_cfg()).expect("log");
    let mut sent = Vec::new();
    for i in 0..60 {
        let b = batch(i, 2, i as i64);
        log.append(b.clone(), &opts()).expect("append");
        sent.push(b);
    }
    let bases = log.segment_base_offsets();
    assert!(bases.len() >= 6, "segments: {}", bases.len());
    let dir = log.dir().to_path_buf();
    dd.shutdown();
    drop(dd);
    let idx = |b: i64, ext: &str| dir.join(format!("{b:020}.{ext}"));
    fs::remove_file(idx(bases[0], "index")).expect("rm");
    fs::remove_file(idx(bases[0], "timeindex")).expect("rm");
    File::options()
        .write(true)
        .open(idx(bases[1], "index"))
        .expect("f")
        .set_len(5)
        .expect("trunc");
    File::options()
        .write(true)
        .open(idx(bases[2], "timeindex"))
        .expect("f")
        .set_len(0)
        .expect("trunc");
    // Same length, wrong content: passes the cheap open-time check only if plausible, and the
    // lookup-time check against the data must catch it.
    let len = fs::metadata(idx(bases[3], "index")).expect("meta").len() as usize;
    let mut garbage = vec![0u8; len];
    for (i, c) in garbage.chunks_mut(8).enumerate() {
        c[..4].copy_from_slice(&(i as u32).to_be_bytes());
        c[4..].copy_from_slice(&((i * 7) as u32).to_be_bytes());
    }
    fs::write(idx(bases[3], "index"), garbage).expect("write");
    // Plausible at open (first and last entries intact) but wrong in the middle: only the
    // lookup-time check against the data can catch this one.
    let p4 = idx(bases[4], "index");
    let mut entries = fs::read(&p4).expect("read index");
    assert!(entries.len() >= 24, "need 3+ entries");
    let n = entries.len();
    for c in entries[8..n - 8].chunks_mut(8) {
        let pos = u32::from_be_bytes([c[4], c[5], c[6], c[7]]);
        c[4..].copy_from_slice(&(pos + 3).to_be_bytes());
    }
    fs::write(&p4, entries).expect("write");

    let dd = DataDir::open(d.path()).expect("reopen");
    let log = dd.open_log("t-0", small_cfg()).expect("log");
    let got = read_all(&log, 0);
    assert_eq!(got.len(), sent.len());
    for ((_, g), s) in got.iter().zip(&sent) {
        assert!(same_payload(g, s));
    }
    // Every offset reads back its own batch (exercises index lookups in every segment).
    for o in 0..120 {
        let b = log.read(o, 1).expect("read");
        let h = BatchHeader::parse(&b).expect("h");
        assert!(h.base_offset <= o && o <= h.last_offset(), "offset {o}");
    }
    for b in &bases[..5] {
        let m = fs::metadata(idx(*b, "index")).expect("rebuilt index");
        assert!(m.len() > 0 && m.len() % 8 == 0);
        let m = fs::metadata(idx(*b, "timeindex")).expect("rebuilt timeindex");
        assert!(m.len() > 0 && m.len() % 12 == 0);
    }
    // Time lookups work on the rebuilt time indexes too.
    assert_eq!(log.offset_for_timestamp(10).expect("ts"), Some((20, 10)));
}

#[test]
fn offset_for_timestamp_batch_and_record_level() {
    let d = tempfile::tempdir().expect("tmp");
    let dd = DataDir::open(d.path()).expect("open");
    let log = dd.open_log("t-0", small_cfg()).expect("log");
    // Batch i holds records stamped 1000*i + {0, 10, 20}.
    for i in 0..30i64 {
        let t = 1000 * i;
        log.append(batch_ts(i as u64, &[t, t + 10, t + 20]), &opts())
            .expect("append");
    }
    assert!(log.segment_count() > 2);
    assert_eq!(log.offset_for_timestamp(-5).expect("ts"), Some((0, 0)));
    assert_eq!(log.offset_for_timestamp(0).expect("ts"), Some((0, 0)));
    // Record-level answer inside an uncompressed batch.
    assert_eq!(
        log.offset_for_timestamp(5_005).expect("ts"),
        Some((16, 5_010))
    );
    assert_eq!(
        log.offset_for_timestamp(5_020).expect("ts"),
        Some((17, 5_020))
    );
    assert_eq!(
        log.offset_for_timestamp(5_021).expect("ts"),
        Some((18, 6_000))
    );
    assert_eq!(
        log.offset_for_timestamp(29_020).expect("ts"),
        Some((89, 29_020))
    );
    assert_eq!(log.offset_for_timestamp(29_021).expect("ts"), None);
    // Below the log start, answers are clamped to it.
    log.delete_records_before(50).expect("delete");
    let (o, _) = log.offset_for_timestamp(0).expect("ts").expect("some");
    assert!(o >= 50);
    // LogAppendTime batches answer at batch granularity with the append time.
    log.append(
        batch(99, 3, 1),
        &AppendOptions {
            log_append_time_ms: Some(50_000),
            ..opts()
        },
    )
    .expect("append");
    assert_eq!(
        log.offset_for_timestamp(40_000).expect("ts"),
        Some((90, 50_000))
    );
}

#[test]
fn first_batch_stamped_from_answers_batch_base_offsets_from_headers() {
    let d = tempfile::tempdir().expect("tmp");
    let dd = DataDir::open(d.path()).expect("open");
    let log = dd.open_log("t-0", small_cfg()).expect("log");
    // Batch i holds records stamped 1000*i + {0, 10, 20}; batch 12 is stamped in the future
    // (a record that is not due holds back the ones after it, whatever their stamps).
    for i in 0..30i64 {
        let t = if i == 12 { 900_000 } else { 1000 * i };
        log.append(batch_ts(i as u64, &[t, t + 10, t + 20]), &opts())
            .expect("append");
    }
    assert!(log.segment_count() > 2);
    assert_eq!(log.first_batch_stamped_from(i64::MIN).expect("ts"), Some(0));
    // Inside batch 5 (stamps 5000..=5020): its base, not the record.
    assert_eq!(log.first_batch_stamped_from(5_005).expect("ts"), Some(15));
    assert_eq!(log.first_batch_stamped_from(5_021).expect("ts"), Some(18));
    // Batch 12's future stamp qualifies before batches 13.. do.
    assert_eq!(log.first_batch_stamped_from(20_000).expect("ts"), Some(36));
    assert_eq!(log.first_batch_stamped_from(900_021).expect("ts"), None);
    log.delete_records_before(50).expect("delete");
    assert_eq!(log.first_batch_stamped_from(0).expect("ts"), Some(50));
}

#[test]
fn log_append_time_rewrite_keeps_valid_crc() {
    let d = tempfile::tempdir().expect("tmp");
    let dd = DataDir::open(d.path()).expect("open");
    let log = dd.open_log("t-0", small_cfg()).expect("log");
    let mut two = batch(1, 3, 5);
    two.extend(batch(2, 1, 6));
    let r = log
        .append(
            two,
            &AppendOptions {
                log_append_time_ms: Some(1_700_000_000_000),
                ..opts()
            },
        )
        .expect("append");
    assert_eq!(r.log_append_time_ms, Some(1_700_000_000_000));
    let bytes = log.read(0, 1 << 20).expect("read");
    let hs = validate_batches(&bytes).expect("CRC valid after rewrite");
    assert_eq!(hs.len(), 2);
    for h in hs {
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 1_700_000_000_000);
        assert_eq!(h.base_timestamp, 1_700_000_000_000);
    }
    // And it survives full recovery validation.
    dd.shutdown_unclean();
    drop(dd);
    let dd = DataDir::open(d.path()).expect("reopen");
    let log = dd.open_log("t-0", small_cfg()).expect("log");
    assert_eq!(log.high_watermark(), 4);
}

/// Blocks the first fdatasync until released, so a test can queue appends behind it and
/// observe exactly how they are grouped. Counts fdatasyncs and writes.
struct GatedSync {
    gate: Mutex<Option<mpsc::Receiver<()>>>,
    entered: Mutex<Option<mpsc::Sender<()>>>,
    calls: std::sync::atomic::AtomicUsize,
    writes: std::sync::atomic::AtomicUsize,
}

impl FileSync for GatedSync {
    fn write_all_at(&self, file: &File, buf: &[u8], pos: u64) -> io::Result<()> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        std::os::unix::fs::FileExt::write_all_at(file, buf, pos)
    }
    fn sync_data(&self, file: &File) -> io::Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(tx) = self.entered.lock().take() {
            let _ = tx.send(());
        }
        if let Some(rx) = self.gate.lock().take() {
            let _ = rx.recv();
        }
        file.sync_data()
    }
}

#[test]
fn group_commit_shares_one_fdatasync_and_gates_high_watermark() {
    let d = tempfile::tempdir().expect("tmp");
    let (release, gate) = mpsc::channel();
    let (entered_tx, entered) = mpsc::channel();
    let sync = Arc::new(GatedSync {
        gate: Mutex::new(Some(gate)),
        entered: Mutex::new(Some(entered_tx)),
        calls: Default::default(),
        writes: Default::default(),
    });
    let dd = open_with_sync(d.path(), sync.clone());
    let cfg = LogConfig {
        fsync: FsyncPolicy::Always,
        ..LogConfig::default()
    };
    let log = dd.open_log("t-0", cfg.clone()).expect("log");
    let other = dd.open_log("u-0", cfg).expect("log");
    let first = log.append_pending(batch(0, 1, 1), &opts()).expect("queue");
    entered
        .recv()
        .expect("writer is inside the first fdatasync");
    // Not durable yet: not readable, high watermark unchanged.
    assert_eq!(log.high_watermark(), 0);
    assert_eq!(log.log_end_offset(), 1);
    assert!(log.read(0, 100).expect("read").is_empty());
    // Queue 10 more on this log and 5 on another while the fsync is stuck.
    let pend: Vec<_> = (1..=10)
        .map(|i| log.append_pending(batch(i, 1, 1), &opts()).expect("queue"))
        .collect();
    let pend2: Vec<_> = (0..5)
        .map(|i| {
            other
                .append_pending(batch(i, 1, 1), &opts())
                .expect("queue")
        })
        .collect();
    // The writer does not wait for the fdatasync in flight: the queued appends are written
    // meanwhile, and acknowledged only after their own fdatasync.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sync.writes.load(Ordering::SeqCst) < 16 {
        if std::time::Instant::now() > deadline {
            // Unblock the writer first, or dropping the data directory would wait for it.
            release.send(()).expect("release");
            panic!(
                "queued appends not written while an fdatasync is in flight: {} of 16",
                sync.writes.load(Ordering::SeqCst)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(log.high_watermark(), 0);
    assert_eq!(sync.calls.load(Ordering::SeqCst), 1);
    release.send(()).expect("release");
    assert_eq!(first.wait().expect("durable").base_offset, 0);
    for (i, p) in pend.into_iter().enumerate() {
        assert_eq!(p.wait().expect("durable").base_offset, i as i64 + 1);
    }
    for p in pend2 {
        p.wait().expect("durable");
    }
    // 1 for the first append + one per file for the 15 queued behind it.
    assert_eq!(sync.calls.load(Ordering::SeqCst), 3);
    assert_eq!(log.high_watermark(), 11);
    assert_eq!(read_all(&log, 0).len(), 11);
}

/// The first fdatasync is held by a [`GatedSync`] until released; every later one waits, up to
/// a hang guard, until `peers` fdatasyncs are in flight together, and the most seen at once is
/// recorded.
struct PeerSync {
    first: GatedSync,
    peers: usize,
    in_flight: Mutex<usize>,
    changed: parking_lot::Condvar,
    most_at_once: std::sync::atomic::AtomicUsize,
}

impl FileSync for PeerSync {
    fn sync_data(&self, file: &File) -> io::Result<()> {
        if self.first.calls.load(Ordering::SeqCst) == 0 {
            return self.first.sync_data(file);
        }
        let mut n = self.in_flight.lock();
        *n += 1;
        self.most_at_once.fetch_max(*n, Ordering::SeqCst);
        self.changed.notify_all();
        let guard = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while *n < self.peers && !self.changed.wait_until(&mut n, guard).timed_out() {}
        *n -= 1;
        drop(n);
        file.sync_data()
    }
}

#[test]
fn one_groups_fdatasyncs_of_several_files_are_in_flight_together() {
    let d = tempfile::tempdir().expect("tmp");
    let (release, gate) = mpsc::channel();
    let (entered_tx, entered) = mpsc::channel();
    let sync = Arc::new(PeerSync {
        first: GatedSync {
            gate: Mutex::new(Some(gate)),
            entered: Mutex::new(Some(entered_tx)),
            calls: Default::default(),
            writes: Default::default(),
        },
        peers: 4,
        in_flight: Mutex::new(0),
        changed: parking_lot::Condvar::new(),
        most_at_once: Default::default(),
    });
    let dd = open_with_sync(d.path(), sync.clone());
    let cfg = LogConfig {
        fsync: FsyncPolicy::Always,
        ..LogConfig::default()
    };
    let first_log = dd.open_log("gate-0", cfg.clone()).expect("log");
    let logs: Vec<_> = (0..4)
        .map(|i| dd.open_log(&format!("t-{i}"), cfg.clone()).expect("log"))
        .collect();
    let first = first_log
        .append_pending(batch(0, 1, 1), &opts())
        .expect("queue");
    entered
        .recv()
        .expect("writer is inside the first fdatasync");
    // Four partitions' appends queued behind it: the next group touches four files.
    let pending: Vec<_> = logs
        .iter()
        .map(|l| l.append_pending(batch(0, 1, 1), &opts()).expect("queue"))
        .collect();
    release.send(()).expect("release");
    first.wait().expect("durable");
    for p in pending {
        p.wait().expect("durable");
    }
    assert_eq!(sync.most_at_once.load(Ordering::SeqCst), 4);
    for l in &logs {
        assert_eq!(l.high_watermark(), 1);
    }
}

/// Holds the fdatasync of chosen files (by inode) until released, telling when one is held, and
/// records the inode of every call.
#[derive(Default)]
struct InodeGates {
    gates: Mutex<std::collections::HashMap<u64, mpsc::Receiver<()>>>,
    held: Mutex<Option<mpsc::Sender<u64>>>,
    calls: Mutex<Vec<u64>>,
}

impl InodeGates {
    fn gate(&self, path: &std::path::Path) -> mpsc::Sender<()> {
        use std::os::unix::fs::MetadataExt;
        let (release, gate) = mpsc::channel();
        let ino = fs::metadata(path).expect("segment").ino();
        self.gates.lock().insert(ino, gate);
        release
    }
}

impl FileSync for InodeGates {
    fn sync_data(&self, file: &File) -> io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let ino = file.metadata()?.ino();
        self.calls.lock().push(ino);
        let gate = self.gates.lock().remove(&ino);
        if let Some(gate) = gate {
            if let Some(held) = self.held.lock().as_ref() {
                let _ = held.send(ino);
            }
            let _ = gate.recv_timeout(std::time::Duration::from_secs(10));
        }
        file.sync_data()
    }
}

#[test]
fn a_later_groups_fdatasync_runs_beside_an_earlier_slow_one_and_is_answered_after_it() {
    let d = tempfile::tempdir().expect("tmp");
    let sync = Arc::new(InodeGates::default());
    let (held_tx, held) = mpsc::channel();
    *sync.held.lock() = Some(held_tx);
    let dd = open_with_sync(d.path(), sync.clone());
    let cfg = LogConfig {
        fsync: FsyncPolicy::Always,
        ..LogConfig::default()
    };
    let open = |name: &str| dd.open_log(name, cfg.clone()).expect("log");
    let (gate0, a, b, c) = (open("gate-0"), open("a-0"), open("b-0"), open("c-0"));
    let path = |log: &Arc<weir_storage::Log>| log.active_segment_path().expect("segment");
    let release_first = sync.gate(&path(&gate0));
    let release_a = sync.gate(&path(&a));
    let first = gate0
        .append_pending(batch(0, 1, 1), &opts())
        .expect("queue");
    held.recv().expect("the first fdatasync is held");
    // A and C are written while the first is held, so they are synced as one group.
    let pa = a.append_pending(batch(1, 1, 1), &opts()).expect("queue");
    let pc = c.append_pending(batch(2, 1, 1), &opts()).expect("queue");
    std::thread::sleep(std::time::Duration::from_millis(50));
    release_first.send(()).expect("release");
    first.wait().expect("durable");
    held.recv().expect("A's fdatasync is held");
    // A later group on another partition: its fdatasync is issued while A's is held...
    let pb = b.append_pending(batch(3, 1, 1), &opts()).expect("queue");
    let b_ino = {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(path(&b)).expect("segment").ino()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !sync.calls.lock().contains(&b_ino) {
        assert!(
            std::time::Instant::now() < deadline,
            "B's fdatasync never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    // ...but no append is answered before those of the group handed over earlier.
    assert!(!pb.is_complete() && !pa.is_complete() && !pc.is_complete());
    assert_eq!(b.high_watermark(), 0);
    release_a.send(()).expect("release");
    for p in [pa, pc, pb] {
        assert_eq!(p.wait().expect("durable").base_offset, 0);
    }
    for log in [&a, &b, &c] {
        assert_eq!(log.high_watermark(), 1);
    }
}

#[test]
fn concurrent_appenders_get_unique_contiguous_offsets() {
    let d = tempfile::tempdir().expect("tmp");
    let dd = DataDir::open(d.path()).expect("open");
    let cfg = LogConfig {
        fsync: FsyncPolicy::Always,
        ..small_cfg()
    };
    let log = dd.open_log("t-0", cfg).expect("log");
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                (0..25u64)
                    .map(|i| {
                        log.append(batch(t * 100 + i, 2, 1), &AppendOptions::default())
                            .expect("append")
                            .base_offset
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<i64> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("join"))
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..100).map(|i| i * 2).collect::<Vec<_>>());
    assert_eq!(log.high_watermark(), 200);
    assert_eq!(read_all(&log, 0).len(), 100);
}

#[test]
fn failed_fsync_poisons_log_forever() {
    let d = tempfile::tempdir().expect("tmp");
    let sync = flaky();
    let dd = open_with_sync(d.path(), sync.clone());
    let cfg = LogConfig {
        fsync: FsyncPolicy::Always,
        ..small_cfg()
    };
    let log = dd.open_log("t-0", cfg.clone()).expect("log");
    let healthy = dd.open_log("h-0", cfg).expect("log");
    log.append(batch(0, 1, 1), &opts()).expect("append");
    sync.fail.store(true, Ordering::SeqCst);
    assert!(matches!(
        log.append(batch(1, 1, 1), &opts()),
        Err(StorageError::Poisoned)
    ));
    sync.fail.store(false, Ordering::SeqCst);
    // Never retried, even though fsync would now succeed.
    assert!(matches!(
        log.append(batch(2, 1, 1), &opts()),
        Err(StorageError::Poisoned)
    ));
    assert!(log.is_poisoned());
    assert!(matches!(log.flush(), Err(StorageError::Poisoned)));
    // Acknowledged data stays readable; the failed append never became visible.
    assert_eq!(log.high_watermark(), 1);
    assert_eq!(read_all(&log, 0).len(), 1);
    // Other logs of the directory are unaffected.
    healthy
        .append(batch(0, 1, 1), &opts())
        .expect("healthy log still appends");
    // Reopening recovers from disk: a new instance that appends after the durable data.
    let reopened = dd.open_log("t-0", small_cfg()).expect("reopen");
    assert!(!Arc::ptr_eq(&log, &reopened));
    assert!(!reopened.is_poisoned());
    let hw = reopened.high_watermark();
    assert!(hw >= 1, "acknowledged data survives");
    assert_eq!(
        reopened
            .append(batch(3, 1, 1), &opts())
            .expect("append")
            .base_offset,
        hw
    );
    // The old instance is closed for good.
    assert!(matches!(
        log.append(batch(4, 1, 1), &opts()),
        Err(StorageError::Poisoned | StorageError::Closed)
    ));
}

#[test]
fn interval_and_never_policies_sync_on_flush() {
    let d = tempfile::tempdir().expect("tmp");
    let sync = flaky();
    let dd = open_with_sync(d.path(), sync.clone());
    let log = dd.open_log("t-0", small_cfg()).expect("log");
    log.append(batch(0, 1, 1), &opts()).expect("append");
    assert_eq!(
        sync.calls.load(Ordering::SeqCst),
        0,
        "fsync=never does not sync on append"
    );
    log.flush().expect("flush");
    assert_eq!(sync.calls.load(Ordering::SeqCst), 1);
    log.set_config(LogConfig {
        fsync: FsyncPolicy::Interval { interval_ms: 1 },
        ..small_cfg()
    });
    log.append(batch(1, 1, 1), &opts()).expect("append");
    // A failing interval sync poisons the log just the same; flush() observes it (it waits
    // behind the interval sync or performs the sync itself).
    sync.fail.store(true, Ordering::SeqCst);
    log.append(batch(2, 1, 1), &opts())
        .expect("acknowledged before the interval sync");
    assert!(log.flush().is_err());
    assert!(matches!(
        log.append(batch(3, 1, 1), &opts()),
        Err(StorageError::Poisoned)
    ));
}

#[test]
fn data_dir_names_remove_lock_and_shutdown() {
    let d = tempfile::tempdir().expect("tmp");
    let dd = DataDir::open(d.path()).expect("open");
    assert!(matches!(
        DataDir::open(d.path()),
        Err(StorageError::Locked(_))
    ));
    assert!(matches!(
        dd.open_log("../x", small_cfg()),
        Err(StorageError::InvalidLogName(_))
    ));
    let a = dd.open_log("orders-0", small_cfg()).expect("log");
    dd.open_log("orders-1", small_cfg()).expect("log");
    a.append(batch(0, 1, 1), &opts()).expect("append");
    // Opening again returns the same log.
    let again = dd.open_log("orders-0", small_cfg()).expect("log");
    assert!(Arc::ptr_eq(&a, &again));
    assert_eq!(dd.log_names().expect("names"), vec!["orders-0", "orders-1"]);
    dd.remove_log("orders-1").expect("remove");
    assert_eq!(dd.log_names().expect("names"), vec!["orders-0"]);
    assert!(!d.path().join("orders-1").exists());
    dd.shutdown();
    assert!(matches!(
        a.append(batch(1, 1, 1), &opts()),
        Err(StorageError::Closed)
    ));
    assert!(d.path().join("orders-0").join("clean-shutdown").exists());
    drop(dd);
    let dd = DataDir::open(d.path()).expect("reopen after shutdown releases the lock");
    let a = dd.open_log("orders-0", small_cfg()).expect("log");
    // The marker is consumed at open so a later crash is recovered properly.
    assert!(!d.path().join("orders-0").join("clean-shutdown").exists());
    assert_eq!(a.high_watermark(), 1);
}

/// Reports every fdatasync on a channel.
struct NotifySync(Mutex<mpsc::Sender<()>>);

impl FileSync for NotifySync {
    fn sync_data(&self, file: &File) -> io::Result<()> {
        let _ = self.0.lock().send(());
        file.sync_data()
    }
}

#[test]
fn interval_policy_syncs_without_flush() {
    let d = tempfile::tempdir().expect("tmp");
    let (tx, rx) = mpsc::channel();
    let dd = open_with_sync(d.path(), Arc::new(NotifySync(Mutex::new(tx))));
    let log = dd
        .open_log(
            "t-0",
            LogConfig {
                fsync: FsyncPolicy::Interval { interval_ms: 20 },
                ..small_cfg()
            },
        )
        .expect("log");
    log.append(batch(0, 1, 1), &opts()).expect("append");
    // Blocks until the writer's interval timer fires; the generous bound only turns a hang
    // into a failure, it does not assert on speed.
    rx.recv_timeout(std::time::Duration::from_secs(120))
        .expect("interval fdatasync happened without any flush");
    assert_eq!(dd.writer_stats().fsyncs, 1);
    assert_eq!(dd.writer_stats().writes, 1);
}

#[test]
fn concurrent_reads_appends_and_retention() {
    let d = tempfile::tempdir().expect("tmp");
    let dd = DataDir::open(d.path()).expect("open");
    let log = dd
        .open_log(
            "t-0",
            LogConfig {
                retention_bytes: Some(4096),
                fsync: FsyncPolicy::Always,
                ..small_cfg()
            },
        )
        .expect("log");
    let appenders: Vec<_> = (0..2u64)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for i in 0..150 {
                    log.append(batch(t * 1000 + i, 2, 1), &AppendOptions::default())
                        .expect("append");
                }
            })
        })
        .collect();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let log = Arc::clone(&log);
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut served = 0usize;
            let mut extra = 0;
            // Reads for as long as the appenders run, then a few hundred more.
            for i in 0i64.. {
                if done.load(Ordering::SeqCst) {
                    extra += 1;
                    if extra > 300 {
                        break;
                    }
                }
                let hw = log.high_watermark();
                let start = log.log_start_offset();
                if hw == start {
                    continue;
                }
                let o = start + (i * 7919) % (hw - start);
                match log.read(o, 700) {
                    Ok(bytes) => {
                        let hs = validate_batches(&bytes).expect("never a corrupt batch");
                        if let Some(h) = hs.first() {
                            assert!(h.base_offset <= o && o <= h.last_offset());
                            served += 1;
                        }
                    }
                    // Retention may have moved the start since we looked.
                    Err(StorageError::OffsetOutOfRange { .. }) => {}
                    Err(e) => panic!("read failed: {e}"),
                }
                if i % 50 == 0 {
                    log.enforce_retention(0, i64::MAX).expect("retention");
                }
            }
            served
        })
    };
    for a in appenders {
        a.join().expect("appender");
    }
    done.store(true, Ordering::SeqCst);
    assert!(reader.join().expect("reader") > 0);
    log.enforce_retention(0, i64::MAX).expect("retention");
    assert_eq!(log.high_watermark(), 600);
    let start = log.log_start_offset();
    assert!(start > 0, "retention deleted something");
    let all = read_all(&log, start);
    assert_eq!(all.last().map(|(b, _)| *b), Some(598));
}

#[test]
fn public_types_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<DataDir>();
    assert_send_sync::<weir_storage::Log>();
    assert_send::<weir_storage::PendingAppend>();
    assert_send_sync::<StorageError>();
}

#[test]
fn policy_switch_keeps_acknowledgements_in_order() {
    let d = tempfile::tempdir().expect("tmp");
    let (release, gate) = mpsc::channel();
    let (entered_tx, entered) = mpsc::channel();
    let sync = Arc::new(GatedSync {
        gate: Mutex::new(Some(gate)),
        entered: Mutex::new(Some(entered_tx)),
        calls: Default::default(),
        writes: Default::default(),
    });
    let dd = open_with_sync(d.path(), sync.clone());
    let log = dd
        .open_log(
            "t-0",
            LogConfig {
                fsync: FsyncPolicy::Always,
                ..small_cfg()
            },
        )
        .expect("log");
    let first = log.append_pending(batch(0, 1, 1), &opts()).expect("queue");
    entered.recv().expect("writer is inside the fdatasync");
    log.set_config(small_cfg()); // fsync=never from now on
                                 // The fsync=never append may not overtake the pending fsync=always one: it queues
                                 // behind it instead of writing directly, and the high watermark stays put.
    let second = log.append_pending(batch(1, 1, 1), &opts()).expect("queue");
    assert_eq!(log.high_watermark(), 0);
    assert!(log.read(0, 100).expect("read").is_empty());
    release.send(()).expect("release");
    assert_eq!(first.wait().expect("durable").base_offset, 0);
    assert_eq!(second.wait().expect("written").base_offset, 1);
    assert_eq!(log.high_watermark(), 2);
    // Once drained, fsync=never appends write directly again (no writer hand-off).
    let before = dd.writer_stats();
    log.append(batch(2, 1, 1), &opts()).expect("append");
    assert_eq!(log.high_watermark(), 3);
    assert_eq!(dd.writer_stats().writes, before.writes + 1);
    assert_eq!(read_all(&log, 0).len(), 3);
}

#[test]
fn preallocation_grows_with_the_segment_instead_of_reserving_a_whole_chunk() {
    let d = tempfile::tempdir().expect("tmp");
    let dd = DataDir::open(d.path()).expect("open");
    let cfg = LogConfig {
        segment_bytes: 1 << 30,
        preallocate_bytes: 16 << 20,
        ..LogConfig::default()
    };
    let log = dd.open_log("t-0", cfg).expect("log");
    log.append(batch(1, 1, 10), &opts()).expect("append");
    let file_len = |log: &weir_storage::Log| {
        fs::metadata(log.active_segment_path().expect("active segment"))
            .expect("stat")
            .len()
    };
    // An idle partition with one small record must not hold a 16 MiB chunk of disk.
    assert_eq!(file_len(&log), 64 * 1024);
    // Appending ~200 KiB doubles the reservation step by step: 64 KiB, 128 KiB, 256 KiB.
    for i in 0..50 {
        log.append(batch(2 + i, 4, 10), &opts()).expect("append");
    }
    let written = log.size_bytes();
    let allocated = file_len(&log);
    assert!(
        allocated >= written,
        "allocated {allocated} < written {written}"
    );
    assert!(
        allocated <= 2 * written.max(64 * 1024),
        "allocated {allocated} for {written} written"
    );
}

#[test]
fn segments_without_timestamps_age_from_their_file_time_not_from_the_epoch() {
    let d = tempfile::tempdir().expect("tmp");
    let dd = DataDir::open(d.path()).expect("open");
    let log = dd
        .open_log(
            "t-0",
            LogConfig {
                retention_ms: Some(60_000),
                ..small_cfg()
            },
        )
        .expect("log");
    for i in 0..20 {
        log.append(batch_ts(i, &[-1, -1]), &opts()).expect("append");
    }
    assert!(log.segment_count() > 1, "the test needs a closed segment");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    assert_eq!(
        log.enforce_retention(now, i64::MAX).expect("retention"),
        0,
        "fresh segments were deleted"
    );
    assert_eq!(log.log_start_offset(), 0);
    assert!(
        log.enforce_retention(now + 120_000, i64::MAX)
            .expect("retention")
            > 0,
        "old enough: deleted"
    );
}

#[test]
fn max_timestamp_is_the_earliest_record_holding_it_and_survives_reopening() {
    let d = tempfile::tempdir().expect("tmp");
    let dd = DataDir::open(d.path()).expect("open");
    let log = dd.open_log("t-0", small_cfg()).expect("log");
    assert_eq!(log.max_timestamp().expect("empty"), None);
    // Batch i (3 records, offsets 3i..3i+2) holds its largest timestamp in the middle record;
    // batch 7 holds the log's maximum (9_999), then later batches (and segments) stay below it,
    // and batch 20 repeats the maximum (the earlier record wins, as in Kafka).
    for i in 0..30i64 {
        let peak = if i == 7 || i == 20 { 9_999 } else { 100 * i };
        log.append(batch_ts(i as u64, &[peak - 5, peak, peak - 1]), &opts())
            .expect("append");
    }
    assert!(log.segment_count() >= 3, "{}", log.segment_count());
    // The middle record of batch 7, not the last offset of its batch (KAFKA-16310).
    assert_eq!(log.max_timestamp().expect("max"), Some((22, 9_999)));

    // A clean reopen takes sealed segments' maxima from their time indexes, a crash rebuilds
    // the tail: same answer both ways.
    drop(log);
    dd.shutdown();
    drop(dd);
    let dd = DataDir::open(d.path()).expect("reopen");
    let log = dd.open_log("t-0", small_cfg()).expect("log");
    assert_eq!(log.max_timestamp().expect("max"), Some((22, 9_999)));
    log.append(batch_ts(99, &[10_000, 20_000, 15_000]), &opts())
        .expect("append");
    assert_eq!(log.max_timestamp().expect("max"), Some((91, 20_000)));
    dd.shutdown_unclean();
    drop(log);
    drop(dd);
    let dd = DataDir::open(d.path()).expect("reopen");
    let log = dd.open_log("t-0", small_cfg()).expect("log");
    assert_eq!(log.max_timestamp().expect("max"), Some((91, 20_000)));

    // LogAppendTime: every record carries the batch's time, so the first record holds it.
    log.append(
        batch(100, 3, 1),
        &AppendOptions {
            log_append_time_ms: Some(50_000),
            ..opts()
        },
    )
    .expect("append");
    assert_eq!(log.max_timestamp().expect("max"), Some((93, 50_000)));
}

#[test]
fn max_timestamp_of_a_sealed_segment_whose_maximum_came_before_its_last_index_entry() {
    // The segment's maximum is in an early batch and later batches are older, so the time
    // index's last entry (written at an index point after the maximum) is not that batch.
    let d = tempfile::tempdir().expect("tmp");
    // Batches are ~90 bytes: the first is indexed, the next index point is the fourth.
    let cfg = LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 200,
        ..small_cfg()
    };
    let dd = DataDir::open(d.path()).expect("open");
    let log = dd.open_log("t-0", cfg.clone()).expect("log");
    log.append(batch_ts(0, &[10, 20]), &opts()).expect("append");
    log.append(batch_ts(1, &[30, 500, 40]), &opts())
        .expect("append");
    for i in 2..8u64 {
        log.append(batch_ts(i, &[50, 60]), &opts()).expect("append");
    }
    log.roll().expect("roll");
    log.append(batch_ts(9, &[70]), &opts()).expect("append");
    assert_eq!(log.max_timestamp().expect("max"), Some((3, 500)));
    drop(log);
    dd.shutdown();
    drop(dd);
    let dd = DataDir::open(d.path()).expect("reopen");
    let log = dd.open_log("t-0", cfg).expect("log");
    assert_eq!(log.max_timestamp().expect("max"), Some((3, 500)));
}

#[test]
fn read_within_never_returns_more_than_asked() {
    let d = tempfile::tempdir().expect("tmp");
    let dd = DataDir::open(d.path()).expect("open");
    let log = dd.open_log("t-0", small_cfg()).expect("log");
    let one = batch(0, 3, 10);
    let len = one.len();
    log.append(one, &opts()).expect("append");
    log.append(batch(1, 3, 10), &opts()).expect("append");
    // `read` returns the first batch even when it is larger than asked (progress); the strict
    // variant returns nothing then, and whole batches within the limit otherwise.
    assert_eq!(log.read(0, len - 1).expect("read").len(), len);
    assert!(log.read_within(0, len - 1).expect("read").is_empty());
    assert_eq!(log.read_within(0, len).expect("read").len(), len);
    assert_eq!(
        log.read_within(0, 2 * len + 10).expect("read").len(),
        2 * len
    );
}

#[test]
fn disk_full_while_growing_the_log_fails_the_append_but_not_the_log() {
    let d = tempfile::tempdir().expect("tmp");
    let disk = Arc::new(FullDisk::default());
    let dd = open_with_sync(d.path(), disk.clone());
    let cfg = LogConfig {
        preallocate_bytes: 256,
        ..small_cfg()
    };
    let log = dd.open_log("t-0", cfg).expect("log");
    log.append(batch(0, 1, 1), &opts()).expect("append");
    assert_eq!(log.write_failure(), None);
    disk.allocate_full.store(true, Ordering::SeqCst);
    // Appends that need the file to grow fail with the OS error; nothing is assigned.
    let mut failed = None;
    for i in 1..100u64 {
        match log.append(batch(i, 4, 1), &opts()) {
            Ok(_) => continue,
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    let err = failed.expect("the log had to grow");
    assert!(
        matches!(&err, StorageError::Io(e) if e.raw_os_error() == Some(libc_enospc())),
        "{err:?}"
    );
    let failure = log.write_failure().expect("failure is visible");
    assert_eq!(failure.errno, Some(libc_enospc()));
    assert_eq!(failure.cause(), "ENOSPC");
    assert!(!failure.poisoned);
    assert!(!log.is_poisoned());
    let leo = log.log_end_offset();
    assert_eq!(log.high_watermark(), leo);
    // Space is back: the next append succeeds right after the last acknowledged offset.
    disk.allocate_full.store(false, Ordering::SeqCst);
    let r = log
        .append(batch(200, 2, 1), &opts())
        .expect("append resumes");
    assert_eq!(r.base_offset, leo);
    assert_eq!(log.write_failure(), None);
    assert_eq!(read_all(&log, 0).last().map(|(o, _)| *o), Some(leo));
}

#[test]
fn disk_full_on_write_poisons_the_log() {
    let d = tempfile::tempdir().expect("tmp");
    let disk = Arc::new(FullDisk::default());
    let dd = open_with_sync(d.path(), disk.clone());
    for policy in [FsyncPolicy::Never, FsyncPolicy::Always] {
        let name = format!("t{}-0", policy == FsyncPolicy::Always);
        let cfg = LogConfig {
            fsync: policy,
            ..small_cfg()
        };
        let log = dd.open_log(&name, cfg).expect("log");
        log.append(batch(0, 1, 1), &opts()).expect("append");
        disk.write_full.store(true, Ordering::SeqCst);
        assert!(log.append(batch(1, 1, 1), &opts()).is_err());
        disk.write_full.store(false, Ordering::SeqCst);
        // Offsets were assigned to data that is not on disk: never retried.
        assert!(matches!(
            log.append(batch(2, 1, 1), &opts()),
            Err(StorageError::Poisoned)
        ));
        let failure = log.write_failure().expect("failure is visible");
        assert_eq!(
            (failure.errno, failure.poisoned),
            (Some(libc_enospc()), true)
        );
        assert_eq!(log.high_watermark(), 1);
    }
}

#[test]
fn read_headers_walks_the_batches_across_segments_without_their_data() {
    let d = tempfile::tempdir().expect("tmp");
    let dd = DataDir::open(d.path()).expect("open");
    let log = dd.open_log("h-0", small_cfg()).expect("log");
    for tag in 0..30u64 {
        log.append(
            batch(tag, 1 + (tag % 4) as usize, 10),
            &AppendOptions::default(),
        )
        .expect("append");
        if tag % 7 == 6 {
            log.roll().expect("roll");
        }
    }
    assert!(
        log.segment_count() > 3,
        "small segments: the walk crosses rolls"
    );
    let expected: Vec<(i64, usize)> = read_all(&log, 0)
        .iter()
        .map(|(base, b)| (*base, b.len()))
        .collect();
    // Walked the way a caller does: from one past the last header of each answer.
    let mut walked = Vec::new();
    let mut next = 0;
    loop {
        let headers = log.read_headers(next, 4).expect("headers");
        let Some(last) = headers.last() else { break };
        assert!(headers.len() <= 4);
        next = last.last_offset() + 1;
        walked.extend(headers.iter().map(|h| (h.base_offset, h.total_len())));
    }
    assert_eq!(walked, expected);
    // From inside a batch: the batch holding the offset comes first.
    let (second_base, _) = expected[1];
    let inside = log.read_headers(second_base + 1, 1).expect("headers");
    let holding = expected.iter().rev().find(|(b, _)| *b <= second_base + 1);
    assert_eq!(
        inside.first().map(|h| h.base_offset),
        holding.map(|(b, _)| *b)
    );
    // At the high watermark there is nothing; past the end is out of range.
    let end = log.log_end_offset();
    assert!(log.read_headers(end, 10).expect("at end").is_empty());
    assert!(log.read_headers(end + 1, 10).is_err());
}

/// A read as a file range names exactly the batches a copying read returns, with batches
/// larger than the slice walker's header window and many small ones inside one window.
#[test]
fn a_slice_names_the_batches_a_read_copies() {
    let d = tempfile::tempdir().expect("tmp");
    let dd = DataDir::open(d.path()).expect("open");
    let cfg = LogConfig {
        segment_bytes: 1 << 20,
        index_interval_bytes: 4096,
        ..small_cfg()
    };
    let log = dd.open_log("t-0", cfg).expect("log");
    let mut ends = Vec::new();
    for i in 0..120u64 {
        // Mostly small batches; every seventh holds ~20 KiB of records.
        let n = if i % 7 == 0 {
            1800
        } else {
            1 + (i as usize % 5)
        };
        let r = log.append(batch(i, n, 10), &opts()).expect("append");
        ends.push(r.last_offset + 1);
    }
    let end = log.log_end_offset();
    for offset in (0..end).step_by(97) {
        for max_bytes in [0, 1, 100, 8 * 1024, 20_000, 64 * 1024, 1 << 20] {
            for (upper, min_one) in [(end, true), (end, false), (end / 2, true)] {
                let read = log
                    .read_below(offset, max_bytes, upper, min_one)
                    .expect("read");
                let slice = log
                    .slice_below(offset, max_bytes, upper, min_one)
                    .expect("slice");
                let in_file = slice
                    .as_ref()
                    .map(|s| s.read_to_vec().expect("reads"))
                    .unwrap_or_default();
                assert_eq!(
                    in_file, read,
                    "offset {offset}, max {max_bytes}, upper {upper}"
                );
                let next = validate_batches(&read)
                    .expect("valid")
                    .last()
                    .map(|h| h.last_offset() + 1);
                assert_eq!(slice.as_ref().and_then(|s| s.next_offset()), next);
                if let Some(next) = next {
                    assert!(ends.contains(&next), "ends at a batch end");
                }
            }
        }
    }
}

/// Records the writebacks the storage starts (and does the file operations for real).
#[derive(Default)]
struct WritebackRecorder {
    started: Mutex<Vec<(u64, u64)>>,
}

impl FileSync for WritebackRecorder {
    fn sync_data(&self, file: &File) -> io::Result<()> {
        file.sync_data()
    }
    fn start_writeback(&self, _file: &File, from: u64, len: u64) -> io::Result<()> {
        self.started.lock().push((from, from + len));
        Ok(())
    }
}

/// Appends `count` batches of one 64 KiB record to a fresh log under `fsync` and returns the
/// writeback ranges started, the bytes written, and the writer's writeback count.
fn writebacks_after_appends(fsync: FsyncPolicy, count: u64) -> (Vec<(u64, u64)>, u64, u64) {
    use weir_storage::batch::testing::{build_batch, RecordRef};
    let d = tempfile::tempdir().expect("tmp");
    let recorder = Arc::new(WritebackRecorder::default());
    let dd = open_with_sync(d.path(), recorder.clone());
    let cfg = LogConfig {
        fsync,
        ..LogConfig::default()
    };
    let log = dd.open_log("t-0", cfg).expect("log");
    let value = vec![7u8; 64 << 10];
    let mut written = 0;
    for _ in 0..count {
        let records: [RecordRef<'_>; 1] = [(None, Some(&value[..]))];
        let b = build_batch(&records, 1);
        written += b.len() as u64;
        log.append(b, &opts()).expect("append");
    }
    log.flush().expect("flush");
    let writebacks = dd.writer_stats().writebacks;
    let started = recorder.started.lock().clone();
    dd.shutdown();
    (started, written, writebacks)
}

/// Under fsync=never a file's written data is handed to the kernel's writeback every 4 MiB
/// (`sync_file_range`), in order and without gaps, so its dirty pages stay a few MiB instead of
/// piling up to the kernel's dirty limit. Under fsync=always the fdatasyncs do it.
#[test]
fn writes_without_fsync_start_their_writeback_every_few_mib() {
    let (started, written, count) = writebacks_after_appends(FsyncPolicy::Never, 200);
    assert!(written > 12 << 20, "{written}");
    assert_eq!(count, started.len() as u64);
    assert!(started.len() >= 3, "{started:?}");
    assert_eq!(started[0].0, 0, "{started:?}");
    for w in started.windows(2) {
        assert_eq!(w[0].1, w[1].0, "contiguous: {started:?}");
    }
    for &(from, to) in &started {
        assert!(to - from >= 4 << 20, "at least a chunk: {started:?}");
        assert!(
            to - from < (4 << 20) + (128 << 10),
            "about a chunk: {started:?}"
        );
    }
    let last = started.last().expect("some").1;
    assert!(
        last <= written && written - last < 4 << 20,
        "{last} of {written}"
    );

    let (started, _, count) = writebacks_after_appends(FsyncPolicy::Always, 100);
    assert_eq!((started.len(), count), (0, 0), "{started:?}");
}
