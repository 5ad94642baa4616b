//! Interleaved comparison of fsync=always appends against the disk's own limit.
//!
//! The shared benchmark machine's fdatasync latency swings by 5x within seconds, so numbers
//! taken minutes apart (criterion, then fio) cannot be divided meaningfully. This tool
//! alternates short runs of the engine and of a fio-equivalent raw loop (sequential `pwrite`
//! of the same block size into a preallocated file, `fdatasync` every `k` writes) and reports
//! the medians. Usage: `storage_vs_disk <dir on the disk> [rounds] [seconds per run]`.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_storage::{AppendOptions, DataDir, FsyncPolicy, LogConfig};

const MIB: f64 = 1024.0 * 1024.0;

/// Engine: `threads` appenders of `batch` with fsync=always for `secs`; (MiB/s, appends per
/// fdatasync).
fn engine(root: &Path, batch: &Arc<Vec<u8>>, threads: usize, secs: f64) -> (f64, f64) {
    let _ = std::fs::remove_dir_all(root);
    let dd = DataDir::open(root).expect("data dir");
    let log = dd
        .open_log(
            "cmp-0",
            LogConfig {
                fsync: FsyncPolicy::Always,
                ..LogConfig::default()
            },
        )
        .expect("log");
    let stop = Arc::new(AtomicBool::new(false));
    let bytes = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let hs: Vec<_> = (0..threads)
        .map(|_| {
            let (log, batch, stop, bytes) = (
                Arc::clone(&log),
                Arc::clone(batch),
                Arc::clone(&stop),
                Arc::clone(&bytes),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    log.append(batch.as_ref().clone(), &AppendOptions::default())
                        .expect("append");
                    bytes.fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for h in hs {
        h.join().expect("appender");
    }
    let r = bytes.load(Ordering::Relaxed) as f64 / MIB / t.elapsed().as_secs_f64();
    let st = dd.writer_stats();
    let per_sync = st.writes as f64 / st.fsyncs.max(1) as f64;
    dd.shutdown();
    drop(dd);
    let _ = std::fs::remove_dir_all(root);
    (r, per_sync)
}

/// fio-equivalent: sequential pwrite of `bs` into a preallocated file, fdatasync every `k`
/// writes, for `secs`; MiB/s.
fn raw(dir: &Path, bs: usize, k: usize, secs: f64) -> f64 {
    let p = dir.join("raw.dat");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&p)
        .expect("raw file");
    let size: u64 = 512 << 20;
    f.set_len(0).expect("truncate");
    // Same preallocation as fio's default (fallocate=native).
    {
        use std::os::unix::io::AsRawFd;
        // SAFETY: plain syscall on an fd we own; no memory is passed.
        let r = unsafe { fallocate(f.as_raw_fd(), 0, 0, size as i64) };
        assert_eq!(r, 0, "fallocate");
    }
    let buf = vec![0x5au8; bs];
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed().as_secs_f64() < secs {
        let pos = (n * bs as u64) % (size - bs as u64);
        f.write_all_at(&buf, pos).expect("pwrite");
        n += 1;
        if n.is_multiple_of(k as u64) {
            f.sync_data().expect("fdatasync");
        }
    }
    let r = (n * bs as u64) as f64 / MIB / t.elapsed().as_secs_f64();
    drop(f);
    let _ = std::fs::remove_file(&p);
    r
}

// Declared here rather than via the libc crate to keep this bench crate's dependencies (and
// the shared lock file) unchanged; glibc exports it with this signature on 64-bit Linux.
extern "C" {
    fn fallocate(fd: i32, mode: i32, offset: i64, len: i64) -> i32;
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "target-bench-io".into());
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let secs: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1.5);
    let dir = Path::new(&dir).join(format!("cmp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    println!("| batch | appenders | engine MiB/s | appends per fdatasync | raw k=1 MiB/s | raw k=appenders MiB/s | engine / raw k=1 | engine / raw k=appenders |");
    println!("|---|---|---|---|---|---|---|---|");
    for &(bs, threads) in &[(16 * 1024, 1), (16 * 1024, 4), (1 << 20, 1), (1 << 20, 4)] {
        let batch = Arc::new(weir_benches::make_batch(bs, 1024));
        let (mut e, mut g, mut r1, mut rk) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            // Alternate which runs first so a slow phase of the disk does not always hit
            // the same contender.
            if round % 2 == 1 {
                r1.push(raw(&dir, batch.len(), 1, secs));
                if threads > 1 {
                    rk.push(raw(&dir, batch.len(), threads, secs));
                }
            }
            let (mibs, per_sync) = engine(&dir.join("engine"), &batch, threads, secs);
            e.push(mibs);
            g.push(per_sync);
            if round % 2 == 0 {
                r1.push(raw(&dir, batch.len(), 1, secs));
                if threads > 1 {
                    rk.push(raw(&dir, batch.len(), threads, secs));
                }
            }
        }
        let (e, g, r1) = (median(e), median(g), median(r1));
        let rk = if rk.is_empty() { r1 } else { median(rk) };
        println!(
            "| {} KiB | {} | {:.1} | {:.2} | {:.1} | {:.1} | {:.0}% | {:.0}% |",
            bs / 1024,
            threads,
            e,
            g,
            r1,
            rk,
            100.0 * e / r1,
            100.0 * e / rk
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
