//! What replication needs from the log: stamping leader epochs, appending a leader's batches as
//! they are (a follower), truncating to a batch boundary and starting over at an offset, the
//! leader-epoch cache kept across restarts, and reads bounded by a high watermark.

mod common;

use common::{batch, read_all, small_cfg};
use weir_storage::batch::BatchHeader;
use weir_storage::{AppendOptions, DataDir, FsyncPolicy, LogConfig, StorageError};

fn epoch(e: i32) -> AppendOptions {
    AppendOptions {
        partition_leader_epoch: Some(e),
        ..AppendOptions::default()
    }
}

fn always(mut cfg: LogConfig) -> LogConfig {
    cfg.fsync = FsyncPolicy::Always;
    cfg
}

#[test]
fn leader_appends_stamp_epochs_and_the_cache_survives_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let data = DataDir::open(dir.path()).expect("open");
        let log = data.open_log("t-0", small_cfg()).expect("log");
        for (i, e) in [1, 1, 3, 3, 3, 7].iter().enumerate() {
            log.append(batch(i as u64, 2, 0), &epoch(*e))
                .expect("append");
        }
        assert_eq!(log.leader_epochs(), vec![(1, 0), (3, 4), (7, 10)]);
        let stored = read_all(&log, 0);
        let epochs: Vec<i32> = stored
            .iter()
            .map(|(_, b)| {
                BatchHeader::parse(b)
                    .expect("header")
                    .partition_leader_epoch
            })
            .collect();
        assert_eq!(epochs, vec![1, 1, 3, 3, 3, 7]);
        data.shutdown();
    }
    // Clean restart, then a crash (no clean shutdown) after another epoch.
    {
        let data = DataDir::open(dir.path()).expect("reopen");
        let log = data.open_log("t-0", small_cfg()).expect("log");
        assert_eq!(log.leader_epochs(), vec![(1, 0), (3, 4), (7, 10)]);
        log.append(batch(9, 1, 0), &epoch(8)).expect("append");
        data.shutdown_unclean();
    }
    let data = DataDir::open(dir.path()).expect("reopen after crash");
    let log = data.open_log("t-0", small_cfg()).expect("log");
    assert_eq!(log.leader_epochs(), vec![(1, 0), (3, 4), (7, 10), (8, 12)]);
}

#[test]
fn a_new_epoch_is_checkpointed_without_fsync_and_recovered_from_the_tail_if_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let checkpoint = dir.path().join("t-0").join("leader-epoch-checkpoint");
    let before_epoch_8;
    {
        let data = DataDir::open(dir.path()).expect("open");
        let log = data.open_log("t-0", small_cfg()).expect("log");
        log.append(batch(0, 2, 0), &epoch(3)).expect("append");
        // An epoch noted by an append is written, but left to writeback.
        assert!(!log.epochs_synced());
        log.roll().expect("roll");
        // A roll syncs it: recovery reads only the tail segment's batches.
        assert!(log.epochs_synced());
        before_epoch_8 = std::fs::read(&checkpoint).expect("checkpoint");
        log.append(batch(1, 2, 0), &epoch(8)).expect("append");
        assert!(!log.epochs_synced());
        assert_eq!(log.leader_epochs(), vec![(3, 0), (8, 2)]);
        data.shutdown_unclean();
    }
    // A power loss took the unsynced write back: the file says what it said before epoch 8.
    std::fs::write(&checkpoint, &before_epoch_8).expect("restore the old checkpoint");
    {
        let data = DataDir::open(dir.path()).expect("reopen after the crash");
        let log = data.open_log("t-0", small_cfg()).expect("log");
        assert_eq!(log.leader_epochs(), vec![(3, 0), (8, 2)]);
        // Open wrote what it recovered, synced.
        assert!(log.epochs_synced());
        data.shutdown_unclean();
    }
    {
        // A crash again: this time the file written by the open is what the tail says, but
        // whether it reached the disk is unknown after a crash, so a roll must still sync it.
        let data = DataDir::open(dir.path()).expect("reopen after the second crash");
        let log = data.open_log("t-0", small_cfg()).expect("log");
        assert_eq!(log.leader_epochs(), vec![(3, 0), (8, 2)]);
        assert!(!log.epochs_synced());
        log.append(batch(2, 2, 0), &epoch(9)).expect("append");
        assert!(!log.epochs_synced());
        data.shutdown();
        // A clean shutdown synced it: a clean open trusts the file without reading the tail.
        assert!(log.epochs_synced());
    }
    let text = std::fs::read_to_string(&checkpoint).expect("checkpoint");
    assert_eq!(text, "0\n3\n3 0\n8 2\n9 4\n");
    let data = DataDir::open(dir.path()).expect("clean reopen");
    let log = data.open_log("t-0", small_cfg()).expect("log");
    assert_eq!(log.leader_epochs(), vec![(3, 0), (8, 2), (9, 4)]);
}

#[test]
fn a_log_without_a_checkpoint_rebuilds_its_epochs_from_the_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let data = DataDir::open(dir.path()).expect("open");
        let log = data.open_log("t-0", small_cfg()).expect("log");
        // Batches as clients send them (epoch -1) count as epoch 0.
        log.append(batch(0, 3, 0), &AppendOptions::default())
            .expect("append");
        log.append(batch(1, 3, 0), &epoch(2)).expect("append");
        data.shutdown();
    }
    std::fs::remove_file(dir.path().join("t-0").join("leader-epoch-checkpoint")).expect("rm");
    let data = DataDir::open(dir.path()).expect("reopen");
    let log = data.open_log("t-0", small_cfg()).expect("log");
    assert_eq!(log.leader_epochs(), vec![(0, 0), (2, 3)]);
}

#[test]
fn after_a_crash_a_log_without_a_checkpoint_rebuilds_its_epochs_tail_included() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let data = DataDir::open(dir.path()).expect("open");
        let log = data.open_log("t-0", small_cfg()).expect("log");
        // Enough for several 1 KiB segments, an epoch starting in an early one and one in the
        // tail.
        for i in 0..40u64 {
            let e = if i < 3 {
                1
            } else if i < 39 {
                4
            } else {
                6
            };
            log.append(batch(i, 2, 0), &epoch(e)).expect("append");
        }
        assert!(log.segment_count() > 2);
        assert_eq!(log.leader_epochs(), vec![(1, 0), (4, 6), (6, 78)]);
        data.shutdown_unclean();
    }
    std::fs::remove_file(dir.path().join("t-0").join("leader-epoch-checkpoint")).expect("rm");
    let data = DataDir::open(dir.path()).expect("reopen after the crash");
    let log = data.open_log("t-0", small_cfg()).expect("log");
    assert_eq!(log.leader_epochs(), vec![(1, 0), (4, 6), (6, 78)]);
}

#[test]
fn followers_append_the_leaders_batches_unchanged_and_only_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = DataDir::open(dir.path()).expect("open");
    let leader = data.open_log("leader", small_cfg()).expect("log");
    let follower = data.open_log("follower", always(small_cfg())).expect("log");
    for i in 0..5 {
        leader
            .append(batch(i, 3, 0), &epoch(4 + i as i32 / 3))
            .expect("append");
    }
    // Reads stop at segment ends: gather the whole log.
    let bytes: Vec<u8> = read_all(&leader, 0)
        .into_iter()
        .flat_map(|(_, b)| b)
        .collect();
    let (first_two, rest) = {
        let h0 = BatchHeader::parse(&bytes).expect("h0").total_len();
        let h1 = BatchHeader::parse(&bytes[h0..]).expect("h1").total_len();
        bytes.split_at(h0 + h1)
    };
    follower
        .append_replicated(first_two.to_vec())
        .expect("first part");
    // Behind the log end: refused, nothing written. (After it is a gap, which a compacted
    // leader log has: `compaction.rs` covers it.)
    let err = follower
        .append_replicated(first_two.to_vec())
        .expect_err("behind");
    assert!(matches!(
        err,
        StorageError::NotContiguous {
            expected: 6,
            got: 0
        }
    ));
    follower
        .append_replicated(rest.to_vec())
        .expect("rest")
        .wait()
        .expect("durable");
    assert_eq!(follower.log_end_offset(), 15);
    assert_eq!(follower.leader_epochs(), leader.leader_epochs());
    let a = read_all(&leader, 0);
    let b = read_all(&follower, 0);
    assert_eq!(a.len(), b.len());
    for ((oa, ba), (ob, bb)) in a.iter().zip(&b) {
        assert_eq!(oa, ob);
        assert_eq!(ba, bb, "byte for byte, offsets and epochs included");
    }
}

#[test]
fn truncation_removes_the_suffix_durably_and_appends_continue_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let data = DataDir::open(dir.path()).expect("open");
        let log = data.open_log("t-0", small_cfg()).expect("log");
        // Enough to span several 1 KiB segments.
        for i in 0..40 {
            log.append(batch(i, 2, 0), &epoch(1 + (i as i32) / 20))
                .expect("append");
        }
        assert!(log.segment_count() > 3);
        assert!(matches!(
            log.truncate_to(41),
            Err(StorageError::NotABatchBoundary(41))
        ));
        log.truncate_to(30).expect("truncate inside the log");
        assert_eq!(log.log_end_offset(), 30);
        assert_eq!(log.high_watermark(), 30);
        assert_eq!(log.leader_epochs(), vec![(1, 0)]);
        let stored = read_all(&log, 0);
        assert_eq!(stored.last().map(|(o, _)| *o), Some(28));
        // Appending continues at the cut, in a new epoch.
        let r = log.append(batch(100, 2, 0), &epoch(5)).expect("append");
        assert_eq!(r.base_offset, 30);
        assert_eq!(log.leader_epochs(), vec![(1, 0), (5, 30)]);
        data.shutdown_unclean();
    }
    // Nothing truncated comes back after a crash.
    let data = DataDir::open(dir.path()).expect("reopen");
    let log = data.open_log("t-0", small_cfg()).expect("log");
    assert_eq!(log.log_end_offset(), 32);
    let stored = read_all(&log, 0);
    assert_eq!(stored.len(), 16);
    // Same records; only the offset and epoch fields (outside the CRC) were set by the log.
    assert_eq!(stored[15].1[16..], batch(100, 2, 0)[16..]);
    assert_eq!(log.leader_epochs(), vec![(1, 0), (5, 30)]);
}

#[test]
fn truncating_to_a_segment_base_and_to_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = DataDir::open(dir.path()).expect("open");
    let log = data.open_log("t-0", small_cfg()).expect("log");
    for i in 0..30 {
        log.append(batch(i, 1, 0), &epoch(1)).expect("append");
    }
    let bases = log.segment_base_offsets();
    let second = bases[1];
    log.truncate_to(second).expect("at a segment base");
    assert_eq!(log.log_end_offset(), second);
    assert_eq!(log.segment_base_offsets()[..], bases[..2]);
    log.truncate_to(0).expect("everything");
    assert_eq!(log.log_end_offset(), 0);
    assert!(log.leader_epochs().is_empty());
    log.append(batch(7, 1, 0), &epoch(2)).expect("append");
    assert_eq!(read_all(&log, 0).len(), 1);
}

#[test]
fn reset_starts_an_empty_log_at_the_leaders_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let data = DataDir::open(dir.path()).expect("open");
        let log = data.open_log("t-0", small_cfg()).expect("log");
        for i in 0..10 {
            log.append(batch(i, 1, 0), &epoch(1)).expect("append");
        }
        log.reset_to(500).expect("reset");
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (500, 500));
        assert!(matches!(
            log.read(3, 100),
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        // The leader's batch at 500 is appended as it is.
        let leader = data.open_log("leader", small_cfg()).expect("log");
        leader.reset_to(500).expect("reset leader");
        leader.append(batch(1, 2, 0), &epoch(9)).expect("append");
        let bytes = leader.read(500, 1 << 20).expect("read");
        log.append_replicated(bytes)
            .expect("replicated")
            .wait()
            .expect("durable");
        data.shutdown_unclean();
    }
    let data = DataDir::open(dir.path()).expect("reopen");
    let log = data.open_log("t-0", small_cfg()).expect("log");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (500, 502));
    assert_eq!(log.leader_epochs(), vec![(9, 500)]);
}

#[test]
fn reads_below_a_high_watermark_stop_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = DataDir::open(dir.path()).expect("open");
    let log = data.open_log("t-0", small_cfg()).expect("log");
    for i in 0..4 {
        log.append(batch(i, 2, 0), &epoch(1)).expect("append");
    }
    let bytes = log.read_below(0, 1 << 20, 4, true).expect("read");
    let headers = weir_storage::batch::validate_batches(&bytes).expect("valid");
    assert_eq!(
        headers.iter().map(|h| h.base_offset).collect::<Vec<_>>(),
        vec![0, 2]
    );
    assert!(log
        .read_below(4, 1 << 20, 4, true)
        .expect("read")
        .is_empty());
    // The first batch is served whole even if the bound falls inside it (records below the
    // bound are committed; a batch is committed whole since bounds are batch ends).
    assert!(!log
        .read_below(0, 1 << 20, 1, true)
        .expect("read")
        .is_empty());
}

#[test]
fn deleting_records_moves_the_epoch_cache_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = DataDir::open(dir.path()).expect("open");
    let log = data.open_log("t-0", small_cfg()).expect("log");
    for i in 0..30 {
        log.append(batch(i, 1, 0), &epoch(1 + i as i32 / 10))
            .expect("append");
    }
    let bases = log.segment_base_offsets();
    let cut = bases[2];
    log.delete_records_before(cut).expect("delete");
    let epochs = log.leader_epochs();
    assert_eq!(epochs[0].1, cut);
    assert!(epochs
        .windows(2)
        .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1));
}
