//! Storage engine throughput: appends of 1 KiB-record batches (16 KiB and 1 MiB) under each
//! fsync policy, `always` with 1 and 4 concurrent appenders, and sequential reads.
//!
//! Kept short on purpose (small samples, few seconds each) so the whole run takes minutes on
//! a 2-core machine. Set `WEIR_BENCH_DIR` to put the logs on a specific disk (default: the
//! system temp dir).

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use weir_benches::make_batch;
use weir_storage::{AppendOptions, DataDir, FsyncPolicy, Log, LogConfig};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("WEIR_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d).expect("bench dir"),
        None => tempfile::tempdir().expect("temp dir"),
    }
}

fn config(fsync: FsyncPolicy) -> LogConfig {
    LogConfig {
        segment_bytes: 128 * MIB as u64,
        // Bounded disk use: old segments are dropped as the bench goes.
        retention_bytes: Some(512 * MIB as u64),
        fsync,
        ..LogConfig::default()
    }
}

/// Runs `iters` appends of `batch` spread over `threads` appenders; returns the elapsed time.
fn run_appends(log: &Arc<Log>, batch: &Arc<Vec<u8>>, iters: u64, threads: u64) -> Duration {
    let per = iters.div_ceil(threads);
    let start = Instant::now();
    let hs: Vec<_> = (0..threads)
        .map(|_| {
            let (log, batch) = (Arc::clone(log), Arc::clone(batch));
            std::thread::spawn(move || {
                for _ in 0..per {
                    log.append(batch.as_ref().clone(), &AppendOptions::default())
                        .expect("append");
                }
            })
        })
        .collect();
    for h in hs {
        h.join().expect("appender thread");
    }
    let el = start.elapsed();
    // Retention outside the timed region.
    log.enforce_retention(0, i64::MAX).expect("retention");
    el
}

fn appends(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    let cases: &[(&str, FsyncPolicy, u64)] = &[
        ("never", FsyncPolicy::Never, 1),
        (
            "interval-1000ms",
            FsyncPolicy::Interval { interval_ms: 1000 },
            1,
        ),
        ("always", FsyncPolicy::Always, 1),
        ("always", FsyncPolicy::Always, 4),
    ];
    for &batch_bytes in &[16 * KIB, MIB] {
        let batch = Arc::new(make_batch(batch_bytes, KIB));
        for &(name, policy, threads) in cases {
            let dir = bench_dir();
            let dd = DataDir::open(dir.path()).expect("data dir");
            let log = dd.open_log("bench-0", config(policy)).expect("log");
            g.throughput(Throughput::Bytes(batch.len() as u64));
            let id = BenchmarkId::new(
                format!("{name}/{threads}thr"),
                format!("{}KiB", batch_bytes / KIB),
            );
            g.bench_function(id, |b| {
                b.iter_custom(|iters| run_appends(&log, &batch, iters, threads))
            });
            dd.shutdown();
        }
    }
    g.finish();
}

fn reads(c: &mut Criterion) {
    let mut g = c.benchmark_group("read");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    let dir = bench_dir();
    let dd = DataDir::open(dir.path()).expect("data dir");
    let log = dd
        .open_log("bench-0", config(FsyncPolicy::Never))
        .expect("log");
    let batch = make_batch(16 * KIB, KIB);
    // 256 MiB of 16 KiB batches (page cache resident on this machine: measures the engine,
    // not the disk).
    let total = 256 * MIB;
    for _ in 0..total / batch.len() {
        log.append(batch.clone(), &AppendOptions::default())
            .expect("fill");
    }
    let hw = log.high_watermark();
    let per_batch = 16i64;
    for &fetch in &[64 * KIB, MIB] {
        // A read returns whole batches only: this many bytes per call.
        let per_read = (fetch / batch.len()).max(1) * batch.len();
        g.throughput(Throughput::Bytes(per_read as u64));
        let mut next = 0i64;
        g.bench_function(
            BenchmarkId::new("sequential", format!("{}KiB-fetch", fetch / KIB)),
            |b| {
                b.iter(|| {
                    if next >= hw {
                        next = 0;
                    }
                    let bytes = log.read(next, fetch).expect("read");
                    next += (bytes.len() / batch.len()).max(1) as i64 * per_batch;
                    bytes
                })
            },
        );
    }
    g.finish();
    dd.shutdown();
}

criterion_group!(benches, appends, reads);
criterion_main!(benches);
