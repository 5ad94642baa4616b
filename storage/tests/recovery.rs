//! Crash-recovery tests: torn tails at every byte, bit flips, garbage in the preallocated tail,
//! and torn segments behind an empty tail.

mod common;

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use common::*;
use weir_storage::batch::{validate_batches, BatchHeader};
use weir_storage::{AppendOptions, DataDir, LogConfig};

fn cfg() -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 20,
        preallocate_bytes: 4096,
        ..small_cfg()
    }
}

/// Builds a log of 5 batches of varying sizes, stops it uncleanly (no trim, no marker) and
/// returns (batches as sent, position and length of the last batch, data file path).
fn template(root: &Path) -> (Vec<Vec<u8>>, u64, u64, PathBuf) {
    let dd = DataDir::open(root).expect("open");
    let log = dd.open_log("t-0", cfg()).expect("log");
    let mut sent = Vec::new();
    for i in 0..5u64 {
        let b = batch(i, 1 + i as usize * 2, 100 + i as i64);
        log.append(b.clone(), &AppendOptions::default())
            .expect("append");
        sent.push(b);
    }
    let path = log.active_segment_path().expect("segment path");
    dd.shutdown_unclean();
    let last_len = sent[4].len() as u64;
    let last_pos: u64 = sent[..4].iter().map(|b| b.len() as u64).sum();
    // Preallocation makes the file longer than the data.
    assert!(fs::metadata(&path).expect("meta").len() >= last_pos + last_len);
    (sent, last_pos, last_len, path)
}

/// Opens `root`, checks that exactly the first `keep` batches are served (byte-identical
/// payloads, valid CRCs) and that the next append gets the next offset.
fn check_recovered(root: &Path, sent: &[Vec<u8>], keep: usize) {
    let dd = DataDir::open(root).expect("open");
    let log = dd.open_log("t-0", cfg()).expect("log");
    let expected_end: i64 = sent[..keep]
        .iter()
        .map(|b| BatchHeader::parse(b).expect("h").record_count as i64)
        .sum();
    assert_eq!(log.log_end_offset(), expected_end);
    assert_eq!(log.high_watermark(), expected_end);
    let got = read_all(&log, 0);
    assert_eq!(got.len(), keep);
    for ((_, g), s) in got.iter().zip(sent) {
        assert!(same_payload(g, s), "recovered batch differs");
    }
    let r = log
        .append(batch(77, 2, 1), &AppendOptions::default())
        .expect("append after recovery");
    assert_eq!(r.base_offset, expected_end);
    let tail = log.read(expected_end, 1 << 20).expect("read new batch");
    let hs = validate_batches(&tail).expect("valid");
    assert_eq!(hs.len(), 1);
    assert_eq!(hs[0].base_offset, expected_end);
    dd.shutdown_unclean();
}

#[test]
fn torn_last_batch_at_every_byte() {
    let base = tempfile::tempdir().expect("tmp");
    let tpl = base.path().join("tpl");
    let (sent, last_pos, last_len, seg) = template(&tpl);
    let rel = seg.strip_prefix(&tpl).expect("relative").to_path_buf();
    for cut in last_pos..last_pos + last_len {
        let root = base.path().join(format!("cut-{cut}"));
        copy_dir(&tpl, &root);
        File::options()
            .write(true)
            .open(root.join(&rel))
            .expect("f")
            .set_len(cut)
            .expect("truncate");
        check_recovered(&root, &sent, 4);
        fs::remove_dir_all(&root).expect("cleanup");
    }
    // Cuts inside the zero-filled preallocated area lose nothing.
    for extra in [0u64, 1, 100] {
        let root = base.path().join(format!("zero-{extra}"));
        copy_dir(&tpl, &root);
        File::options()
            .write(true)
            .open(root.join(&rel))
            .expect("f")
            .set_len(last_pos + last_len + extra)
            .expect("truncate");
        check_recovered(&root, &sent, 5);
    }
}

#[test]
fn bit_flip_in_last_batch_drops_it() {
    let base = tempfile::tempdir().expect("tmp");
    let tpl = base.path().join("tpl");
    let (sent, last_pos, last_len, seg) = template(&tpl);
    let rel = seg.strip_prefix(&tpl).expect("relative").to_path_buf();
    for i in 0..last_len {
        // partitionLeaderEpoch (bytes 12..16) is outside the CRC in the v2 format, so a flip
        // there is undetectable by design (as in Kafka).
        if (12..16).contains(&i) {
            continue;
        }
        let root = base.path().join(format!("flip-{i}"));
        copy_dir(&tpl, &root);
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(root.join(&rel))
            .expect("f");
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, last_pos + i).expect("read");
        b[0] ^= 1 << (i % 8);
        f.write_all_at(&b, last_pos + i).expect("write");
        drop(f);
        check_recovered(&root, &sent, 4);
        fs::remove_dir_all(&root).expect("cleanup");
    }
}

#[test]
fn garbage_in_preallocated_tail_is_discarded() {
    let base = tempfile::tempdir().expect("tmp");
    let tpl = base.path().join("tpl");
    let (sent, last_pos, last_len, seg) = template(&tpl);
    let rel = seg.strip_prefix(&tpl).expect("relative").to_path_buf();
    let end = last_pos + last_len;
    let cases: Vec<(&str, u64, Vec<u8>)> = vec![
        (
            "random-at-end",
            end,
            (0..200u32).map(|i| (i * 37 + 11) as u8).collect(),
        ),
        ("random-after-zeros", end + 100, vec![0xAB; 300]),
        // A well-formed batch with a valid CRC but the wrong offset (a stale copy).
        ("stale-valid-batch", end, sent[0].clone()),
        ("header-only", end, sent[1][..61].to_vec()),
    ];
    for (name, at, bytes) in cases {
        let root = base.path().join(name);
        copy_dir(&tpl, &root);
        let f = OpenOptions::new()
            .write(true)
            .open(root.join(&rel))
            .expect("f");
        f.write_all_at(&bytes, at).expect("write garbage");
        drop(f);
        check_recovered(&root, &sent, 5);
    }
}

#[test]
fn empty_tail_segment_exposes_torn_previous_segment() {
    let d = tempfile::tempdir().expect("tmp");
    let dd = DataDir::open(d.path()).expect("open");
    let log = dd.open_log("t-0", small_cfg()).expect("log");
    let mut sent = Vec::new();
    for i in 0..30u64 {
        let b = batch(i, 2, 1);
        log.append(b.clone(), &AppendOptions::default())
            .expect("append");
        sent.push(b);
    }
    let bases = log.segment_base_offsets();
    assert!(bases.len() >= 3);
    let dir = log.dir().to_path_buf();
    dd.shutdown_unclean();
    drop(dd);
    // Crash image: the roll to the last segment happened (file exists, empty) but the previous
    // segment's last batch was only half written.
    let n = bases.len();
    let seg = |b: i64| dir.join(format!("{b:020}.log"));
    File::options()
        .write(true)
        .open(seg(bases[n - 1]))
        .expect("f")
        .set_len(0)
        .expect("t");
    let prev = seg(bases[n - 2]);
    let prev_data: u64 = (bases[n - 2]..bases[n - 1])
        .step_by(2)
        .map(|o| sent[(o / 2) as usize].len() as u64)
        .sum();
    File::options()
        .write(true)
        .open(&prev)
        .expect("f")
        .set_len(prev_data - 10)
        .expect("t");

    let dd = DataDir::open(d.path()).expect("reopen");
    let log = dd.open_log("t-0", small_cfg()).expect("log");
    let lost_from = bases[n - 1] - 2;
    assert_eq!(log.log_end_offset(), lost_from);
    let got = read_all(&log, 0);
    assert_eq!(got.len() as i64, lost_from / 2);
    for ((_, g), s) in got.iter().zip(&sent) {
        assert!(same_payload(g, s));
    }
    assert_eq!(
        log.append(batch(1, 1, 1), &AppendOptions::default())
            .expect("append")
            .base_offset,
        lost_from
    );
}

#[test]
fn clean_shutdown_skips_validation_and_keeps_everything() {
    let d = tempfile::tempdir().expect("tmp");
    let dd = DataDir::open(d.path()).expect("open");
    let log = dd.open_log("t-0", cfg()).expect("log");
    for i in 0..10u64 {
        log.append(batch(i, 3, 1), &AppendOptions::default())
            .expect("append");
    }
    let seg = log.active_segment_path().expect("path");
    let size = log.active_segment_size();
    dd.shutdown();
    drop(dd);
    // Clean close trims the preallocated tail.
    assert_eq!(fs::metadata(&seg).expect("meta").len(), size);
    let dd = DataDir::open(d.path()).expect("reopen");
    let log = dd.open_log("t-0", cfg()).expect("log");
    assert_eq!(log.log_end_offset(), 30);
    assert_eq!(read_all(&log, 0).len(), 10);
    assert_eq!(
        log.append(batch(1, 1, 1), &AppendOptions::default())
            .expect("a")
            .base_offset,
        30
    );
}

#[test]
fn a_clean_marker_brought_back_by_a_crash_is_not_trusted() {
    // Opening a cleanly closed log removes its marker without an fsync (the data directory's
    // generation makes that safe). A power loss can undo the removal: the marker is back, but
    // the tail was written after it, and must be validated.
    let d = tempfile::tempdir().expect("tmp");
    let marker = d.path().join("t-0").join("clean-shutdown");
    let dd = DataDir::open(d.path()).expect("open");
    let log = dd.open_log("t-0", cfg()).expect("log");
    for i in 0..5u64 {
        log.append(batch(i, 3, 1), &AppendOptions::default())
            .expect("append");
    }
    dd.shutdown();
    drop(dd);
    let old_marker = fs::read(&marker).expect("a clean close writes the marker");

    let dd = DataDir::open(d.path()).expect("reopen");
    let log = dd.open_log("t-0", cfg()).expect("log");
    assert_eq!(log.log_end_offset(), 15);
    assert!(!marker.exists(), "opening removes the marker");
    let pos = log.active_segment_size();
    log.append(batch(9, 3, 1), &AppendOptions::default())
        .expect("append");
    let seg = log.active_segment_path().expect("path");
    dd.shutdown_unclean();
    drop(dd);
    // The crash: the last batch torn (a byte of its records changed), the marker back.
    let f = OpenOptions::new()
        .write(true)
        .open(&seg)
        .expect("open segment");
    f.write_all_at(&[0xA5], pos + 70).expect("corrupt");
    fs::write(&marker, &old_marker).expect("resurrect the marker");

    let dd = DataDir::open(d.path()).expect("reopen after the crash");
    let log = dd.open_log("t-0", cfg()).expect("log");
    assert_eq!(
        log.log_end_offset(),
        15,
        "the torn batch was trusted instead of validated"
    );
    assert_eq!(read_all(&log, 0).len(), 5);
}

/// Appends `n` batches tagged from `first_tag` (5 records each); returns them as sent.
fn append_batches(log: &weir_storage::Log, first_tag: u64, n: u64) -> Vec<Vec<u8>> {
    (first_tag..first_tag + n)
        .map(|tag| {
            let b = batch(tag, 5, 1_000 + tag as i64);
            log.append(b.clone(), &AppendOptions::default())
                .expect("append");
            b
        })
        .collect()
}

fn total_len(batches: &[Vec<u8>]) -> u64 {
    batches.iter().map(|b| b.len() as u64).sum()
}

/// Opens `root` after a crash; checks every batch of `sent` is served as sent; returns what the
/// open recovered.
fn reopen_and_check(root: &Path, sent: &[Vec<u8>]) -> weir_storage::Recovered {
    let dd = DataDir::open(root).expect("open");
    let log = dd.open_log("t-0", cfg()).expect("log");
    let got = read_all(&log, 0);
    assert_eq!(got.len(), sent.len(), "batches served after recovery");
    for ((_, g), s) in got.iter().zip(sent) {
        assert!(same_payload(g, s), "recovered batch differs");
    }
    let recovered = log.recovered();
    dd.shutdown_unclean();
    recovered
}

#[test]
fn after_a_crash_only_the_batches_after_the_recovery_point_are_read_whole() {
    let root = tempfile::tempdir().expect("tmp");
    let dd = DataDir::open(root.path()).expect("open");
    let log = dd.open_log("t-0", cfg()).expect("log");
    let mut sent = append_batches(&log, 0, 40);
    assert!(
        log.checkpoint_recovery_point().expect("point written"),
        "a log written to has a new recovery point"
    );
    assert!(
        !log.checkpoint_recovery_point().expect("point"),
        "an unchanged recovery point is not written again"
    );
    let after = append_batches(&log, 40, 3);
    sent.extend(after.iter().cloned());
    dd.shutdown_unclean();
    drop((log, dd));

    let recovered = reopen_and_check(root.path(), &sent);
    assert_eq!(
        recovered.checked_bytes,
        total_len(&after),
        "only the 3 batches after the point are checked, not the 40 before it"
    );
}

#[test]
fn a_torn_batch_after_the_recovery_point_is_still_cut() {
    let root = tempfile::tempdir().expect("tmp");
    let dd = DataDir::open(root.path()).expect("open");
    let log = dd.open_log("t-0", cfg()).expect("log");
    let mut sent = append_batches(&log, 0, 10);
    assert!(log.checkpoint_recovery_point().expect("point"));
    let after = append_batches(&log, 10, 2);
    let path = log.active_segment_path().expect("segment path");
    dd.shutdown_unclean();
    drop((log, dd));
    // Flip a byte inside the last batch's records (covered by its CRC).
    let last_pos = total_len(&sent) + after[0].len() as u64;
    let f = OpenOptions::new().write(true).open(&path).expect("open");
    f.write_all_at(&[0xff], last_pos + after[1].len() as u64 - 3)
        .expect("flip");
    sent.push(after[0].clone());

    let recovered = reopen_and_check(root.path(), &sent);
    assert!(recovered.dropped_bytes >= after[1].len() as u64);
}

/// A recovery point written by another boot of the machine (the page cache it relied on is
/// gone) or torn is not used: the whole tail segment is checked.
#[test]
fn a_recovery_point_of_another_boot_or_torn_is_ignored() {
    let root = tempfile::tempdir().expect("tmp");
    let dd = DataDir::open(root.path()).expect("open");
    let log = dd.open_log("t-0", cfg()).expect("log");
    let sent = append_batches(&log, 0, 20);
    assert!(log.checkpoint_recovery_point().expect("point"));
    let point_file = root.path().join("t-0").join("recovery-point");
    let text = fs::read_to_string(&point_file).expect("point file");
    dd.shutdown_unclean();
    drop((log, dd));

    // The same point from another boot, with a valid CRC.
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        5,
        "version, boot id, segment base, position, CRC: {text:?}"
    );
    let body = format!(
        "0\n00000000-0000-0000-0000-000000000000\n{}\n{}\n",
        lines[2], lines[3]
    );
    let other_boot = format!("{body}{}\n", crc32c::crc32c(body.as_bytes()));
    fs::write(&point_file, other_boot).expect("write");
    let recovered = reopen_and_check(root.path(), &sent);
    assert_eq!(recovered.checked_bytes, total_len(&sent));

    // This boot's point, torn (its position changed, its CRC not).
    let torn = text.replacen(lines[3], &format!("{}", total_len(&sent) - 1), 1);
    fs::write(&point_file, torn).expect("write");
    let recovered = reopen_and_check(root.path(), &sent);
    assert_eq!(recovered.checked_bytes, total_len(&sent));

    // And intact, it is used.
    fs::write(&point_file, &text).expect("write");
    let recovered = reopen_and_check(root.path(), &sent);
    assert_eq!(recovered.checked_bytes, 0);
}

/// A truncation (a follower cutting a divergent suffix) removes the point before it changes the
/// data below it: after a crash, what was written since is checked whole.
#[test]
fn a_truncation_removes_the_recovery_point() {
    let root = tempfile::tempdir().expect("tmp");
    let dd = DataDir::open(root.path()).expect("open");
    let log = dd.open_log("t-0", cfg()).expect("log");
    let mut sent = append_batches(&log, 0, 20);
    assert!(log.checkpoint_recovery_point().expect("point"));
    log.truncate_to(50).expect("truncate to batch 10");
    sent.truncate(10);
    sent.extend(append_batches(&log, 100, 10));
    dd.shutdown_unclean();
    drop((log, dd));

    let recovered = reopen_and_check(root.path(), &sent);
    assert_eq!(
        recovered.checked_bytes,
        total_len(&sent),
        "no point survives a truncation"
    );
}
