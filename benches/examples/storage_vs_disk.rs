//! Interleaved comparison of fsync=always appends against the disk's own limit.
//!
//! The shared benchmark machine's fdatasync latency swings by 5x within seconds, so numbers
//! taken minutes apart (criterion, then fio) cannot be divided meaningfully. This tool
//! alternates short runs of the engine and of a fio-equivalent raw loop (sequential `pwrite`
//! of the same block size into a preallocated file, `fdatasync` every `k` writes) and reports
//! the medians. A second table does the same for many partitions (one file each) against a
//! raw loop with the same writes and one fdatasync per write, 32 in flight. Usage:
//! `storage_vs_disk <dir on the disk> [rounds] [seconds per run] [one-file|many-files|all]`.

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
    stop_after(secs, &stop, hs);
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
    preallocate(&f, size);
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

/// The many-files pattern of a broker with many partitions under fsync=always: `partitions`
/// logs in one data directory; `requesters` threads each stand for a Produce request that
/// carries one batch for each of `per_request` distinct partitions (picked at random), queue
/// all of them (`append_pending`) and wait for all, as the broker does. Returns (MiB/s,
/// fdatasyncs per second, appends per fdatasync).
fn engine_many(root: &Path, batch: &Arc<Vec<u8>>, shape: ManyFiles, secs: f64) -> (f64, f64, f64) {
    let _ = std::fs::remove_dir_all(root);
    let dd = DataDir::open(root).expect("data dir");
    let logs: Arc<Vec<_>> = Arc::new(
        (0..shape.partitions)
            .map(|p| {
                dd.open_log(
                    &format!("many-{p}"),
                    LogConfig {
                        fsync: FsyncPolicy::Always,
                        ..LogConfig::default()
                    },
                )
                .expect("log")
            })
            .collect(),
    );
    // A fresh log's first append creates and preallocates its segment file, a metadata change
    // its first fdatasync must commit; the raw files are preallocated before their clock starts
    // too, so each log gets one durable append first.
    let warm: Vec<_> = logs
        .iter()
        .map(|log| {
            log.append_pending(batch.as_ref().clone(), &AppendOptions::default())
                .expect("append")
        })
        .collect();
    for append in warm {
        append.wait().expect("durable");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let bytes = Arc::new(AtomicU64::new(0));
    let before = dd.writer_stats();
    let t = Instant::now();
    let hs: Vec<_> = (0..shape.requesters)
        .map(|r| {
            let (logs, batch, stop, bytes) = (
                Arc::clone(&logs),
                Arc::clone(batch),
                Arc::clone(&stop),
                Arc::clone(&bytes),
            );
            std::thread::spawn(move || {
                let mut rng = XorShift::new(r as u64 + 1);
                let mut perm: Vec<usize> = (0..shape.partitions).collect();
                let mut pending = Vec::with_capacity(shape.per_request);
                while !stop.load(Ordering::Relaxed) {
                    for &p in rng.distinct(&mut perm, shape.per_request) {
                        let append = logs[p]
                            .append_pending(batch.as_ref().clone(), &AppendOptions::default())
                            .expect("append");
                        pending.push(append);
                    }
                    for append in pending.drain(..) {
                        append.wait().expect("durable");
                        bytes.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    stop_after(secs, &stop, hs);
    let elapsed = t.elapsed().as_secs_f64();
    let after = dd.writer_stats();
    let (writes, fsyncs) = (after.writes - before.writes, after.fsyncs - before.fsyncs);
    dd.shutdown();
    drop(logs);
    drop(dd);
    let _ = std::fs::remove_dir_all(root);
    (
        bytes.load(Ordering::Relaxed) as f64 / MIB / elapsed,
        fsyncs as f64 / elapsed,
        writes as f64 / fsyncs.max(1) as f64,
    )
}

/// fio-equivalent of the same pattern (`fio --numjobs=32 --nrfiles=… --file_service_type=random
/// --fdatasync=1`): `jobs` threads, each writing `bs` at the end of a random one of
/// `partitions` preallocated files and then fdatasyncing that file, so every write has its
/// own fdatasync and up to `jobs` are in flight, as in the engine's syncer. Returns (MiB/s,
/// fdatasyncs per second).
fn raw_many(dir: &Path, bs: usize, partitions: usize, jobs: usize, secs: f64) -> (f64, f64) {
    let dir = dir.join("raw-many");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("raw dir");
    const FILE_BYTES: u64 = 4 << 20;
    let files: Arc<Vec<(std::fs::File, AtomicU64)>> = Arc::new(
        (0..partitions)
            .map(|p| {
                let f = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(dir.join(format!("{p}.dat")))
                    .expect("raw file");
                preallocate(&f, FILE_BYTES);
                (f, AtomicU64::new(0))
            })
            .collect(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let hs: Vec<_> = (0..jobs)
        .map(|j| {
            let (files, stop, writes) =
                (Arc::clone(&files), Arc::clone(&stop), Arc::clone(&writes));
            std::thread::spawn(move || {
                let buf = vec![0x5au8; bs];
                let mut rng = XorShift::new(1000 + j as u64);
                while !stop.load(Ordering::Relaxed) {
                    let (f, end) = &files[rng.below(partitions)];
                    let pos =
                        end.fetch_add(bs as u64, Ordering::Relaxed) % (FILE_BYTES - bs as u64);
                    f.write_all_at(&buf, pos).expect("pwrite");
                    f.sync_data().expect("fdatasync");
                    writes.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    stop_after(secs, &stop, hs);
    let elapsed = t.elapsed().as_secs_f64();
    let n = writes.load(Ordering::Relaxed) as f64;
    drop(files);
    let _ = std::fs::remove_dir_all(&dir);
    (n * bs as f64 / MIB / elapsed, n / elapsed)
}

/// The shape of the many-files comparison (see [`engine_many`]).
#[derive(Clone, Copy)]
struct ManyFiles {
    partitions: usize,
    per_request: usize,
    requesters: usize,
}

/// A small deterministic generator (xorshift64*), so the bench needs no extra dependency and
/// each thread's choice of partitions is the same from run to run.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// `k` distinct items of `perm`, by a partial Fisher-Yates shuffle of it.
    fn distinct<'a>(&mut self, perm: &'a mut [usize], k: usize) -> &'a [usize] {
        let k = k.min(perm.len());
        for i in 0..k {
            let j = i + self.below(perm.len() - i);
            perm.swap(i, j);
        }
        &perm[..k]
    }
}

/// Lets the `threads` run for `secs`, then tells them to stop and joins them.
fn stop_after(secs: f64, stop: &AtomicBool, threads: Vec<std::thread::JoinHandle<()>>) {
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for h in threads {
        h.join().expect("bench thread");
    }
}

/// Preallocates `len` bytes of `f` as fio does by default (fallocate=native).
fn preallocate(f: &std::fs::File, len: u64) {
    use std::os::unix::io::AsRawFd;
    // SAFETY: plain syscall on an fd we own; no memory is passed.
    let r = unsafe { fallocate(f.as_raw_fd(), 0, 0, len as i64) };
    assert_eq!(r, 0, "fallocate");
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
    let mode = args.next().unwrap_or_else(|| "all".into());
    let dir = Path::new(&dir).join(format!("cmp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    if mode == "all" || mode == "one-file" {
        one_file(&dir, rounds, secs);
    }
    if mode == "all" || mode == "many-files" {
        many_files(&dir, rounds, secs);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Many partitions, each its own file, under fsync=always: the engine against a raw loop with
/// the same writes, one fdatasync per write and the syncer's concurrency (16).
fn many_files(dir: &Path, rounds: usize, secs: f64) {
    // The engine's most fdatasyncs in flight (`MAX_CONCURRENT_FSYNCS` in storage/src/writer.rs).
    const RAW_JOBS: usize = 32;
    println!();
    println!("| batch | partitions | partitions per request | requests in flight | engine MiB/s | engine fdatasyncs/s | appends per fdatasync | raw MiB/s ({RAW_JOBS} jobs) | raw fdatasyncs/s | engine / raw |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let shapes = [
        (
            1024,
            ManyFiles {
                partitions: 1000,
                per_request: 200,
                requesters: 1,
            },
        ),
        (
            1024,
            ManyFiles {
                partitions: 1000,
                per_request: 200,
                requesters: 4,
            },
        ),
        (
            16 * 1024,
            ManyFiles {
                partitions: 1000,
                per_request: 50,
                requesters: 4,
            },
        ),
    ];
    for (bs, shape) in shapes {
        let batch = Arc::new(weir_benches::make_batch(bs, 1024));
        let (mut e, mut es, mut g, mut r, mut rs) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let mut raw_round = || {
                let (mibs, syncs) = raw_many(dir, batch.len(), shape.partitions, RAW_JOBS, secs);
                r.push(mibs);
                rs.push(syncs);
            };
            if round % 2 == 1 {
                raw_round();
            }
            let (mibs, syncs, per_sync) = engine_many(&dir.join("engine"), &batch, shape, secs);
            e.push(mibs);
            es.push(syncs);
            g.push(per_sync);
            if round % 2 == 0 {
                raw_round();
            }
        }
        let ratios: Vec<f64> = e.iter().zip(&r).map(|(e, r)| e / r).collect();
        let (lo, hi) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        println!(
            "| {:.1} KiB | {} | {} | {} | {:.1} | {:.0} | {:.2} | {:.1} | {:.0} | {:.0}% [{:.0}–{:.0}] |",
            batch.len() as f64 / 1024.0,
            shape.partitions,
            shape.per_request,
            shape.requesters,
            median(e),
            median(es),
            median(g),
            median(r),
            median(rs),
            100.0 * median(ratios),
            100.0 * lo,
            100.0 * hi,
        );
    }
}

/// One log under fsync=always: the engine against fio's `--fdatasync=k` at the same write size.
fn one_file(dir: &Path, rounds: usize, secs: f64) {
    println!("| batch | appenders | engine MiB/s | appends per fdatasync | raw k=1 MiB/s | raw k=appenders MiB/s | engine / raw k=1 | engine / raw k=appenders |");
    println!("|---|---|---|---|---|---|---|---|");
    for &(bs, threads) in &[(16 * 1024, 1), (16 * 1024, 4), (1 << 20, 1), (1 << 20, 4)] {
        let batch = Arc::new(weir_benches::make_batch(bs, 1024));
        let (mut e, mut g, mut r1, mut rk) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            // Alternate which runs first so a slow phase of the disk does not always hit
            // the same contender.
            if round % 2 == 1 {
                r1.push(raw(dir, batch.len(), 1, secs));
                if threads > 1 {
                    rk.push(raw(dir, batch.len(), threads, secs));
                }
            }
            let (mibs, per_sync) = engine(&dir.join("engine"), &batch, threads, secs);
            e.push(mibs);
            g.push(per_sync);
            if round % 2 == 0 {
                r1.push(raw(dir, batch.len(), 1, secs));
                if threads > 1 {
                    rk.push(raw(dir, batch.len(), threads, secs));
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
}
