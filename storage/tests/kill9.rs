//! kill -9 test: a child process (this test binary, re-executed) appends with fsync=always from
//! several threads, writes its recovery point every millisecond and prints every acknowledged
//! offset; the parent SIGKILLs it mid-stream, reopens the log and checks that every
//! acknowledged append is present with its content.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use weir_storage::batch::testing::decode_records;
use weir_storage::batch::validate_batches;
use weir_storage::{AppendOptions, DataDir, FsyncPolicy, LogConfig};

const CHILD_ENV: &str = "WEIR_STORAGE_KILL9_DIR";

fn child_cfg() -> LogConfig {
    LogConfig {
        // Small segments so the kill can also land around rolls.
        segment_bytes: 16 * 1024,
        fsync: FsyncPolicy::Always,
        ..small_cfg()
    }
}

/// The child side. Does nothing unless re-executed by the parent test with `CHILD_ENV` set.
#[test]
fn kill9_child_appender() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dd = DataDir::open(Path::new(&dir)).expect("open");
    let log = dd.open_log("k-0", child_cfg()).expect("log");
    let next = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(60);
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let (log, next) = (Arc::clone(&log), Arc::clone(&next));
            std::thread::spawn(move || {
                // Bounded: the parent normally kills us long before either limit.
                while Instant::now() < deadline {
                    let tag = next.fetch_add(1, Ordering::SeqCst);
                    if tag > 200_000 {
                        break;
                    }
                    let r = log
                        .append(
                            batch(tag, 1 + (tag % 3) as usize, tag as i64),
                            &AppendOptions::default(),
                        )
                        .expect("append");
                    use std::io::Write;
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "ACK {} {}", r.base_offset, tag);
                    let _ = out.flush();
                }
            })
        })
        .collect();
    // The recovery point, written far more often than the broker does (every second), so the
    // kill lands just after one, in the middle of appends and rolls: recovery then trusts the
    // data before it and must still find every acknowledged append.
    let points = {
        let (log, next) = (Arc::clone(&log), Arc::clone(&next));
        std::thread::spawn(move || {
            while Instant::now() < deadline && next.load(Ordering::SeqCst) <= 200_000 {
                log.checkpoint_recovery_point().expect("recovery point");
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    for t in threads {
        let _ = t.join();
    }
    let _ = points.join();
}

/// Kills the child if the test fails before it does.
struct KillOnDrop(Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn kill9_loses_no_acknowledged_append() {
    let d = tempfile::tempdir().expect("tmp");
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = KillOnDrop(
        Command::new(exe)
            .args([
                "--exact",
                "kill9_child_appender",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, d.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut acks: Vec<(i64, u64)> = Vec::new();
    let parse = |l: &str| -> Option<(i64, u64)> {
        let mut it = l.strip_prefix("ACK ")?.split(' ');
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    };
    for line in lines.by_ref() {
        let line = line.expect("line");
        if let Some(a) = parse(&line) {
            acks.push(a);
            if acks.len() >= 400 {
                break;
            }
        }
    }
    assert!(
        acks.len() >= 400,
        "child stopped early after {} acks",
        acks.len()
    );
    // SIGKILL mid-stream: the child is appending from three threads right now.
    child.0.kill().expect("kill -9");
    let _ = child.0.wait();
    // Whatever was printed before the kill was acknowledged too.
    for line in lines {
        let Ok(line) = line else { break };
        if let Some(a) = parse(&line) {
            acks.push(a);
        }
    }

    let dd = DataDir::open(d.path()).expect("reopen after kill");
    let log = dd.open_log("k-0", child_cfg()).expect("log");
    let max_acked = acks.iter().map(|(o, _)| *o).max().expect("acks");
    assert!(log.high_watermark() > max_acked);
    for (offset, tag) in &acks {
        let bytes = log.read(*offset, 1).expect("read acknowledged offset");
        let hs = validate_batches(&bytes).expect("valid batch");
        assert_eq!(hs.len(), 1);
        assert_eq!(hs[0].base_offset, *offset);
        let n = 1 + (tag % 3) as usize;
        let expected: Vec<_> = (0..n)
            .map(|j| {
                (
                    Some(b"key".to_vec()),
                    Some(format!("v{tag}-{j}").into_bytes()),
                )
            })
            .collect();
        assert_eq!(
            decode_records(&bytes),
            expected,
            "content of offset {offset}"
        );
    }
    // The whole recovered log is valid and contiguous, and appends continue after it.
    let all = read_all(&log, 0);
    let mut next = 0;
    for (base, b) in &all {
        assert_eq!(*base, next);
        next += validate_batches(b).expect("valid")[0].last_offset_delta as i64 + 1;
    }
    let r = log
        .append(batch(1, 1, 1), &AppendOptions::default())
        .expect("append");
    assert_eq!(r.base_offset, log.log_end_offset() - 1);
}
