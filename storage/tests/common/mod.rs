//! Shared helpers for the storage integration tests: batch builders, configs, full-log reads.
#![allow(dead_code)]

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use weir_storage::batch::testing::{
    build_batch, build_batch_with_timestamps, split_batches, RecordRef,
};
use weir_storage::batch::validate_batches;
use weir_storage::{DataDir, DataDirOptions, FileSync, FsyncPolicy, Log, LogConfig};

/// A batch of `n` records whose values identify `(tag, record index)`.
pub fn batch(tag: u64, n: usize, ts: i64) -> Vec<u8> {
    let vals: Vec<Vec<u8>> = (0..n).map(|j| format!("v{tag}-{j}").into_bytes()).collect();
    let recs: Vec<RecordRef<'_>> = vals
        .iter()
        .map(|v| (Some(&b"key"[..]), Some(v.as_slice())))
        .collect();
    build_batch(&recs, ts)
}

/// A batch whose records have the given timestamps.
pub fn batch_ts(tag: u64, ts: &[i64]) -> Vec<u8> {
    let vals: Vec<Vec<u8>> = (0..ts.len())
        .map(|j| format!("t{tag}-{j}").into_bytes())
        .collect();
    let recs: Vec<RecordRef<'_>> = vals.iter().map(|v| (None, Some(v.as_slice()))).collect();
    build_batch_with_timestamps(&recs, ts)
}

/// Small segments, dense indexes, preallocation on: exercises rolls and index paths.
pub fn small_cfg() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        segment_ms: None,
        retention_bytes: None,
        retention_ms: None,
        index_interval_bytes: 256,
        fsync: FsyncPolicy::Never,
        preallocate_bytes: 512,
        compaction: None,
    }
}

/// Reads every readable batch from `from` to the high watermark, following segments.
pub fn read_all(log: &Log, from: i64) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut next = from;
    let hw = log.high_watermark();
    while next < hw {
        let bytes = log.read(next, 1000).expect("read");
        assert!(
            !bytes.is_empty(),
            "read at {next} below hw {hw} returned nothing"
        );
        validate_batches(&bytes).expect("served batches are valid");
        for (base, b) in split_batches(&bytes) {
            let h = weir_storage::batch::BatchHeader::parse(&b).expect("header");
            next = h.base_offset + h.last_offset_delta as i64 + 1;
            out.push((base, b));
        }
    }
    out
}

/// Same batch modulo the base offset field (which the log rewrites).
pub fn same_payload(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a[8..] == b[8..]
}

/// A [`FileSync`] that counts calls and can be told to fail.
#[derive(Default)]
pub struct FlakySync {
    pub fail: AtomicBool,
    pub calls: AtomicUsize,
}

impl FileSync for FlakySync {
    fn sync_data(&self, file: &File) -> io::Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected fdatasync failure"));
        }
        file.sync_data()
    }
}

/// Opens a data directory whose writes, fsyncs and allocations go through `file_sync` (a fault
/// injector or a recorder).
pub fn open_with_sync(path: &Path, file_sync: Arc<dyn FileSync>) -> Arc<DataDir> {
    DataDir::open_with(path, DataDirOptions { file_sync }).expect("open")
}

pub fn flaky() -> Arc<FlakySync> {
    Arc::new(FlakySync::default())
}

/// Copies a directory tree (for re-running recovery from the same starting state).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let t = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), t).expect("copy");
        }
    }
}

/// A [`FileSync`] whose file growth (`allocate`) and writes (`write_all_at`) can be made to fail
/// with `ENOSPC`, as on a full disk.
#[derive(Default)]
pub struct FullDisk {
    pub allocate_full: AtomicBool,
    pub write_full: AtomicBool,
}

fn enospc() -> io::Error {
    io::Error::from_raw_os_error(libc_enospc())
}

/// `ENOSPC` on Linux (the tests run there; the storage crate is Unix-only).
pub fn libc_enospc() -> i32 {
    28
}

impl FileSync for FullDisk {
    fn sync_data(&self, file: &File) -> io::Result<()> {
        file.sync_data()
    }
    fn write_all_at(&self, file: &File, buf: &[u8], pos: u64) -> io::Result<()> {
        if self.write_full.load(Ordering::SeqCst) {
            return Err(enospc());
        }
        std::os::unix::fs::FileExt::write_all_at(file, buf, pos)
    }
    fn allocate(&self, file: &File, from: u64, to: u64) -> io::Result<()> {
        if self.allocate_full.load(Ordering::SeqCst) {
            return Err(enospc());
        }
        if to > from {
            file.set_len(to)?;
        }
        Ok(())
    }
}
