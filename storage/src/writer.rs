//! The data directory's writer thread: it performs every queued segment write of the logs in one
//! directory and hands what it wrote to the [`Syncer`], which performs their data fsyncs; the
//! two together are what makes group commit work.
//!
//! Appenders assign offsets under their log's lock, queue a [`WriteReq`] and (for
//! `FsyncPolicy::Always`) wait on its [`Completion`]. The writer drains everything queued and
//! writes it in queue order, then hands the group to the syncer, which issues **one fdatasync
//! per touched file** and only then advances each log's high watermark and wakes the appenders.
//! The two run side by side: while the syncer waits for fdatasyncs, the writer already writes
//! the next group (so a request waits for the fdatasync in flight and then its own, not also
//! for the writes in between). Groups are answered one at a time, in order; how the syncer
//! keeps many files' fdatasyncs in flight is in [`crate::syncer`]. Under `Interval` the writer
//! hands dirty files to the syncer when the interval expires; under `Never` only on flush,
//! segment seal and shutdown.
//!
//! Appends under `Never`/`Interval` normally skip the queue: the appender writes under its
//! log's lock (when nothing of that log is queued) and only tells the writer, once per file
//! per sync cycle, that the file is dirty ([`Msg::Dirty`]). That saves a thread hand-off per
//! append when no fsync has to be waited for.
//!
//! A failed write or fsync poisons the log ([`LogSync::poisoned`]): after a failed fsync the
//! kernel may have dropped the dirty pages, so retrying could report success for lost data.
//! A failure *before* any offset is assigned (growing a segment file, rolling to a new one —
//! where a full disk shows first, because files are preallocated) leaves the log intact: the
//! append fails and the next one retries. Both are tracked in [`LogSync`] so operators see
//! them ([`WriteFailure`]): logged once per state change, and readable for metrics.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use parking_lot::{Condvar, Mutex};

use crate::config::FsyncPolicy;
use crate::segment::SegmentFile;
use crate::syncer::Syncer;
use crate::{Offset, StorageError};

/// The file operations of appends that can fail for reasons outside the program: forcing data
/// to stable storage, writing it, and growing segment files. The default is the OS
/// (`fdatasync`/`fsync`, `pwrite`, `fallocate`); tests substitute failing implementations to
/// exercise poisoning and a full disk.
pub trait FileSync: Send + Sync + 'static {
    /// Makes the file's data (and the metadata needed to read it) durable: `fdatasync`.
    fn sync_data(&self, file: &File) -> io::Result<()>;
    /// Makes the file's data and all metadata durable: `fsync`. Used after truncation.
    fn sync_all(&self, file: &File) -> io::Result<()> {
        self.sync_data(file)?;
        file.sync_all()
    }
    /// Writes all of `buf` at `pos` (`pwrite`). Offsets are already assigned to the data, so a
    /// failure poisons the log.
    fn write_all_at(&self, file: &File, buf: &[u8], pos: u64) -> io::Result<()> {
        file.write_all_at(buf, pos)
    }
    /// Grows `file` from `from` to `to` bytes with real blocks (`fallocate`, or a size change
    /// where unsupported). Runs before offsets are assigned, so a failure (`ENOSPC`) fails the
    /// append and leaves the log usable.
    fn allocate(&self, file: &File, from: u64, to: u64) -> io::Result<()> {
        crate::segment::preallocate(file, from, to)
    }
    /// Starts writing `len` bytes of `file` from `from` back to the disk without waiting
    /// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`). A hint: durability is still decided by the
    /// fdatasyncs, and a failure here only means the kernel writes those pages back later.
    fn start_writeback(&self, file: &File, from: u64, len: u64) -> io::Result<()> {
        crate::segment::start_writeback(file, from, len)
    }
}

/// [`FileSync`] backed by the operating system.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsFileSync;

impl FileSync for OsFileSync {
    fn sync_data(&self, file: &File) -> io::Result<()> {
        file.sync_data()
    }
    fn sync_all(&self, file: &File) -> io::Result<()> {
        file.sync_all()
    }
}

/// Counters of the writer thread's work, for metrics and benchmarks.
#[derive(Debug, Default)]
pub(crate) struct WriterCounters {
    groups: AtomicU64,
    writes: AtomicU64,
    bytes: AtomicU64,
    fsyncs: AtomicU64,
    writebacks: AtomicU64,
}

/// A snapshot of a data directory's writer statistics (monotonic since open).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Batches of queued requests processed (each ends with at most one fdatasync per file).
    pub groups: u64,
    /// Append writes performed (by the writer, or directly by appenders under
    /// `fsync=never`/`interval`).
    pub writes: u64,
    /// Bytes written by appends.
    pub bytes: u64,
    /// Data fsyncs issued (group commit, interval, flush and seal syncs).
    pub fsyncs: u64,
    /// Writebacks started without waiting (`fsync=never`/`interval`, one per
    /// [`WRITEBACK_CHUNK_BYTES`] written to a file).
    pub writebacks: u64,
}

impl WriterCounters {
    /// Counts an append written directly by its appender (no writer hand-off).
    pub fn direct_write(&self, bytes: usize) {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> WriterStats {
        WriterStats {
            groups: self.groups.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            fsyncs: self.fsyncs.load(Ordering::Relaxed),
            writebacks: self.writebacks.load(Ordering::Relaxed),
        }
    }
}

/// Why a log cannot take appends right now (see [`crate::Log::write_failure`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteFailure {
    /// The OS error number (`libc::ENOSPC`, ...), if the failure was an OS error.
    pub errno: Option<i32>,
    /// A write or fsync failed after offsets were assigned: the log refuses every append until
    /// it is reopened (a broker restart). Otherwise nothing was written, and the next append
    /// tries again.
    pub poisoned: bool,
}

impl WriteFailure {
    /// A short, bounded name of the cause, e.g. `ENOSPC` (for log lines and metric labels).
    pub fn cause(&self) -> &'static str {
        errno_name(self.errno)
    }
}

/// Names of the errors a failing disk or file system reports; anything else is `other`.
fn errno_name(errno: Option<i32>) -> &'static str {
    match errno {
        Some(libc::ENOSPC) => "ENOSPC",
        Some(libc::EDQUOT) => "EDQUOT",
        Some(libc::EIO) => "EIO",
        Some(libc::EROFS) => "EROFS",
        Some(libc::EFBIG) => "EFBIG",
        Some(libc::EACCES) => "EACCES",
        Some(libc::EPERM) => "EPERM",
        Some(libc::EMFILE) => "EMFILE",
        Some(libc::ENFILE) => "ENFILE",
        Some(libc::ENOMEM) => "ENOMEM",
        _ => "other",
    }
}

/// The part of a log the writer updates: its high watermark, poison flag and write failures.
#[derive(Debug)]
pub(crate) struct LogSync {
    pub hw: AtomicI64,
    pub poisoned: AtomicBool,
    /// Write requests queued to the writer and not yet completed. While non-zero, appends must
    /// queue too (instead of writing directly) so the high watermark advances in order.
    pub inflight: AtomicU64,
    /// Log name and directory, for the log lines of failures.
    name: String,
    dir: PathBuf,
    /// Set while `failure` holds a failure (a cheap check on every successful append).
    failing: AtomicBool,
    failure: parking_lot::Mutex<Option<WriteFailure>>,
}

impl LogSync {
    pub fn new(hw: Offset, name: &str, dir: &Path) -> Self {
        LogSync {
            hw: AtomicI64::new(hw),
            poisoned: AtomicBool::new(false),
            inflight: AtomicU64::new(0),
            name: name.to_string(),
            dir: dir.to_path_buf(),
            failing: AtomicBool::new(false),
            failure: parking_lot::Mutex::new(None),
        }
    }
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }
    /// A write or fsync of data with assigned offsets failed: refuse every later append.
    pub fn poison(&self, what: &str, path: &Path, e: &io::Error) {
        let errno = e.raw_os_error();
        *self.failure.lock() = Some(WriteFailure {
            errno,
            poisoned: true,
        });
        self.failing.store(true, Ordering::Release);
        if !self.poisoned.swap(true, Ordering::AcqRel) {
            tracing::error!(
                log = %self.name,
                path = %path.display(),
                errno = errno.unwrap_or(0),
                cause = errno_name(errno),
                error = %e,
                "{what} failed; log poisoned, refusing appends until it is reopened (restart the broker after fixing the disk)"
            );
        }
    }
    /// An append failed before any offset was assigned (the log is intact): logged once until
    /// an append succeeds again.
    pub fn note_failure(&self, what: &str, e: &io::Error) {
        let errno = e.raw_os_error();
        let mut failure = self.failure.lock();
        if failure.is_some_and(|f| f.poisoned) {
            return;
        }
        let fresh = WriteFailure {
            errno,
            poisoned: false,
        };
        if *failure != Some(fresh) {
            tracing::warn!(
                log = %self.name,
                path = %self.dir.display(),
                errno = errno.unwrap_or(0),
                cause = errno_name(errno),
                error = %e,
                "{what} failed; appends to this log fail until it succeeds again"
            );
        }
        *failure = Some(fresh);
        self.failing.store(true, Ordering::Release);
    }
    /// An append got past the steps that failed before: writes have resumed.
    pub fn note_success(&self) {
        if !self.failing.load(Ordering::Acquire) {
            return;
        }
        let mut failure = self.failure.lock();
        if let Some(f) = *failure {
            if f.poisoned {
                return;
            }
            tracing::info!(
                log = %self.name,
                path = %self.dir.display(),
                cause = f.cause(),
                "appends to this log succeed again"
            );
        }
        *failure = None;
        self.failing.store(false, Ordering::Release);
    }
    /// The current failure, if any.
    pub fn failure(&self) -> Option<WriteFailure> {
        if !self.failing.load(Ordering::Acquire) {
            return None;
        }
        *self.failure.lock()
    }
}

/// A one-shot result slot an appender waits on.
pub(crate) struct Completion {
    slot: Mutex<Option<Result<(), StorageError>>>,
    cv: Condvar,
}

impl Completion {
    pub fn new() -> Arc<Self> {
        Arc::new(Completion {
            slot: Mutex::new(None),
            cv: Condvar::new(),
        })
    }

    fn complete(&self, r: Result<(), StorageError>) {
        let mut s = self.slot.lock();
        if s.is_none() {
            *s = Some(r);
            self.cv.notify_all();
        }
    }

    /// An already successful completion (for appends that needed no writer hand-off).
    pub fn done_ok() -> Arc<Self> {
        Arc::new(Completion {
            slot: Mutex::new(Some(Ok(()))),
            cv: Condvar::new(),
        })
    }

    /// Whether the outcome is already known, so `wait` will not block.
    pub fn is_complete(&self) -> bool {
        self.slot.lock().is_some()
    }

    /// Blocks until the writer has finished with the request.
    pub fn wait(&self) -> Result<(), StorageError> {
        let mut s = self.slot.lock();
        loop {
            if let Some(r) = s.take() {
                // Leave a marker so a second wait does not block forever.
                *s = Some(match &r {
                    Ok(()) => Ok(()),
                    Err(_) => Err(StorageError::Closed),
                });
                return r;
            }
            self.cv.wait(&mut s);
        }
    }
}

/// Completes its [`Completion`] with `Closed` if dropped unanswered (e.g. the writer stopped
/// with the request still queued), so no appender can wait forever.
pub(crate) struct Completer(pub Arc<Completion>);

impl Completer {
    fn finish(self, r: Result<(), StorageError>) {
        self.0.complete(r);
    }
}

impl Drop for Completer {
    fn drop(&mut self) {
        self.0.complete(Err(StorageError::Closed));
    }
}

/// One append's bytes, already stamped with offsets, and where they go.
pub(crate) struct WriteReq {
    pub log: Arc<LogSync>,
    pub file: Arc<SegmentFile>,
    pub pos: u64,
    pub data: BytesMut,
    /// One past the last offset in `data`: the high watermark once this is done.
    pub next_offset: Offset,
    pub policy: FsyncPolicy,
    pub done: Completer,
}

/// Messages to the writer thread.
pub(crate) enum Msg {
    Write(WriteReq),
    /// Sync everything written so far for this log, then answer.
    Flush {
        log: Arc<LogSync>,
        done: Completer,
    },
    /// An appender wrote to this file directly (fsync=never/interval): track it as dirty so
    /// interval syncs, flushes and seals cover it.
    Dirty {
        log: Arc<LogSync>,
        file: Arc<SegmentFile>,
        interval: Option<Duration>,
    },
    /// Start the kernel's writeback of `file`'s bytes `from..to` (written without fsync).
    Writeback {
        file: Arc<SegmentFile>,
        from: u64,
        to: u64,
    },
    /// A segment stopped being active: trim it to its logical size and fsync it.
    Seal {
        log: Arc<LogSync>,
        file: Arc<SegmentFile>,
        len: u64,
    },
    Shutdown,
}

struct Dirty {
    log: Arc<LogSync>,
    files: Vec<Arc<SegmentFile>>,
    since: Instant,
    interval: Option<Duration>,
}

pub(crate) fn key<T>(a: &Arc<T>) -> usize {
    Arc::as_ptr(a) as usize
}

fn add_file(files: &mut Vec<Arc<SegmentFile>>, f: &Arc<SegmentFile>) {
    if !files.iter().any(|x| Arc::ptr_eq(x, f)) {
        files.push(Arc::clone(f));
    }
}

pub(crate) struct Done {
    log: Arc<LogSync>,
    file: Arc<SegmentFile>,
    end: u64,
    next_offset: Offset,
    done: Completer,
}

/// Under `fsync=never`/`interval`, every this many bytes written to a segment file the writer
/// starts their writeback, so that a file's dirty pages stay a few MiB instead of piling up to
/// the kernel's dirty limit. Piled up, they are written back in a burst that throttles the
/// broker's own writes (balance_dirty_pages) and, under a memory limit (a container), must be
/// written back before their memory can be reclaimed: both show as stalls of hundreds of ms.
pub(crate) const WRITEBACK_CHUNK_BYTES: u64 = 4 << 20;

/// If `file` has [`WRITEBACK_CHUNK_BYTES`] or more written up to `end` since its last
/// writeback, marks them handed over and returns the range to start writing back. Called under
/// the log's lock (or by the writer, which writes a log's queued data in order).
pub(crate) fn writeback_due(file: &SegmentFile, end: u64) -> Option<(u64, u64)> {
    let from = file.writeback_from.load(Ordering::Acquire);
    if end < from.saturating_add(WRITEBACK_CHUNK_BYTES) {
        return None;
    }
    file.writeback_from.store(end, Ordering::Release);
    Some((from, end))
}

fn start_writeback(
    sync: &dyn FileSync,
    stats: &WriterCounters,
    file: &SegmentFile,
    from: u64,
    to: u64,
) {
    stats.writebacks.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = sync.start_writeback(&file.file, from, to - from) {
        tracing::debug!(path = %file.path.display(), error = %e, "starting writeback failed; the kernel writes these pages back later");
    }
}

/// Upper bound on messages handled as one group, so a flood of appends cannot postpone the
/// group's fsync (and everyone's acknowledgement) indefinitely.
const MAX_GROUP: usize = 1024;

/// What one group left for the syncer: files to fdatasync, then the appends and flushes to
/// answer, in queue order. Groups the syncer has not taken yet merge into one.
#[derive(Default)]
pub(crate) struct Written {
    pub to_sync: Vec<(Arc<LogSync>, Arc<SegmentFile>)>,
    /// The files of `to_sync` (by address), so a group of many appends adds each file once
    /// without a scan.
    sync_keys: HashSet<usize>,
    pub completions: Vec<Done>,
    pub flushes: Vec<(Arc<LogSync>, Completer)>,
}

impl Written {
    pub fn is_empty(&self) -> bool {
        self.to_sync.is_empty() && self.completions.is_empty() && self.flushes.is_empty()
    }

    /// Adds `file` to the files to fdatasync, once.
    pub fn sync_file(&mut self, log: &Arc<LogSync>, file: &Arc<SegmentFile>) {
        if self.sync_keys.insert(key(file)) {
            self.to_sync.push((Arc::clone(log), Arc::clone(file)));
        }
    }

    pub fn absorb(&mut self, later: Written) {
        for (log, file) in &later.to_sync {
            self.sync_file(log, file);
        }
        self.completions.extend(later.completions);
        self.flushes.extend(later.flushes);
    }

    /// fdatasyncs the group's files one after another, then answers it: the writer's own way
    /// when the syncer thread could not be started.
    fn sync_inline_and_answer(self, sync: &dyn FileSync, stats: &WriterCounters) {
        for (log, file) in &self.to_sync {
            sync_file_data(log, file, sync, stats);
        }
        answer(self.completions, self.flushes);
    }
}

/// fdatasyncs one file of a log for a group: skipped for a poisoned log, and a failure poisons
/// the log (never retried: the kernel may have dropped the dirty pages).
pub(crate) fn sync_file_data(
    log: &LogSync,
    file: &SegmentFile,
    sync: &dyn FileSync,
    stats: &WriterCounters,
) {
    if log.is_poisoned() {
        return;
    }
    stats.fsyncs.fetch_add(1, Ordering::Relaxed);
    file.dirty.store(false, Ordering::SeqCst);
    if let Err(e) = sync.sync_data(&file.file) {
        log.poison("fdatasync", &file.path, &e);
    }
}

/// Acknowledges a synced group's appends and flushes, in queue order, so a log's high watermark
/// only ever covers a prefix of durable (or, without fsync, written) data.
pub(crate) fn answer(completions: Vec<Done>, flushes: Vec<(Arc<LogSync>, Completer)>) {
    for c in completions {
        if c.log.is_poisoned() {
            c.log.inflight.fetch_sub(1, Ordering::AcqRel);
            c.done.finish(Err(StorageError::Poisoned));
            continue;
        }
        c.file.readable.fetch_max(c.end, Ordering::AcqRel);
        c.log.hw.fetch_max(c.next_offset, Ordering::AcqRel);
        // After the high watermark: an appender that sees zero may write directly.
        c.log.inflight.fetch_sub(1, Ordering::AcqRel);
        c.done.finish(Ok(()));
    }
    for (log, done) in flushes {
        done.finish(if log.is_poisoned() {
            Err(StorageError::Poisoned)
        } else {
            Ok(())
        });
    }
}

/// The writer thread's main loop, with its syncer thread beside it: the writer writes each
/// group and hands it over; the syncer fdatasyncs and answers it while the writer already writes
/// the next (the group's write no longer adds to the next group's wait). Returns when told to
/// shut down or when every sender is gone, after the syncer has answered everything handed over.
pub(crate) fn run(rx: Receiver<Msg>, sync: Arc<dyn FileSync>, stats: Arc<WriterCounters>) {
    let syncer = Syncer::new(Arc::clone(&sync), Arc::clone(&stats));
    let syncer_thread = {
        let syncer = Arc::clone(&syncer);
        std::thread::Builder::new()
            .name("weir-storage-sync".into())
            .spawn(move || syncer.run())
    };
    if let Err(e) = &syncer_thread {
        // Without a syncer the writer syncs each group itself, as before pipelining.
        tracing::warn!(error = %e, "could not start the storage syncer thread; the writer syncs its groups itself");
    }
    let pipelined = syncer_thread.is_ok();
    write_groups(&rx, sync.as_ref(), &stats, |group| {
        if pipelined {
            syncer.put(group);
        } else {
            group.sync_inline_and_answer(sync.as_ref(), &stats);
        }
    });
    syncer.close();
    if let Ok(thread) = syncer_thread {
        if let Err(panic) = thread.join() {
            std::panic::resume_unwind(panic);
        }
    }
    syncer.join_helpers();
    // Answer anything still queued so no appender waits forever.
    while let Ok(m) = rx.try_recv() {
        drop(m);
    }
}

/// Receives messages in groups and writes them; each group's syncs and answers go to
/// `hand_over`, and so do the interval syncs of unqueued (directly written) data.
fn write_groups(
    rx: &Receiver<Msg>,
    sync: &dyn FileSync,
    stats: &WriterCounters,
    mut hand_over: impl FnMut(Written),
) {
    let mut dirty: HashMap<usize, Dirty> = HashMap::new();
    let mut stop = false;
    while !stop {
        let timeout = dirty
            .values()
            .filter_map(|d| {
                d.interval
                    .map(|i| (d.since + i).saturating_duration_since(Instant::now()))
            })
            .min();
        let first = match timeout {
            Some(t) => match rx.recv_timeout(t) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            },
            None => match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => break,
            },
        };
        let mut group: Vec<Msg> = first.into_iter().collect();
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(m) => group.push(m),
                Err(_) => break,
            }
        }

        if !group.is_empty() {
            stats.groups.fetch_add(1, Ordering::Relaxed);
        }
        let mut written = Written::default();
        for m in group {
            match m {
                Msg::Write(req) => {
                    if req.log.is_poisoned() {
                        req.log.inflight.fetch_sub(1, Ordering::AcqRel);
                        req.done.finish(Err(StorageError::Poisoned));
                        continue;
                    }
                    stats.writes.fetch_add(1, Ordering::Relaxed);
                    stats
                        .bytes
                        .fetch_add(req.data.len() as u64, Ordering::Relaxed);
                    if let Err(e) = sync.write_all_at(&req.file.file, &req.data, req.pos) {
                        req.log.poison("segment write", &req.file.path, &e);
                        req.log.inflight.fetch_sub(1, Ordering::AcqRel);
                        req.done.finish(Err(StorageError::Io(e)));
                        continue;
                    }
                    match req.policy {
                        FsyncPolicy::Always => written.sync_file(&req.log, &req.file),
                        FsyncPolicy::Interval { .. } | FsyncPolicy::Never => {
                            let end = req.pos + req.data.len() as u64;
                            if let Some((from, to)) = writeback_due(&req.file, end) {
                                start_writeback(sync, stats, &req.file, from, to);
                            }
                            let interval = match req.policy {
                                FsyncPolicy::Interval { interval_ms } => {
                                    Some(Duration::from_millis(interval_ms))
                                }
                                _ => None,
                            };
                            let d = dirty.entry(key(&req.log)).or_insert_with(|| Dirty {
                                log: Arc::clone(&req.log),
                                files: Vec::new(),
                                since: Instant::now(),
                                interval,
                            });
                            d.interval = interval;
                            add_file(&mut d.files, &req.file);
                        }
                    }
                    written.completions.push(Done {
                        end: req.pos + req.data.len() as u64,
                        log: req.log,
                        file: req.file,
                        next_offset: req.next_offset,
                        done: req.done,
                    });
                }
                Msg::Dirty {
                    log,
                    file,
                    interval,
                } => {
                    let d = dirty.entry(key(&log)).or_insert_with(|| Dirty {
                        log: Arc::clone(&log),
                        files: Vec::new(),
                        since: Instant::now(),
                        interval,
                    });
                    d.interval = interval;
                    add_file(&mut d.files, &file);
                }
                Msg::Flush { log, done } => {
                    if let Some(d) = dirty.remove(&key(&log)) {
                        for f in &d.files {
                            written.sync_file(&log, f);
                        }
                    }
                    written.flushes.push((log, done));
                }
                Msg::Writeback { file, from, to } => {
                    start_writeback(sync, stats, &file, from, to);
                }
                Msg::Seal { log, file, len } => {
                    if let Some(d) = dirty.get_mut(&key(&log)) {
                        d.files.retain(|f| !Arc::ptr_eq(f, &file));
                    }
                    if !log.is_poisoned() {
                        stats.fsyncs.fetch_add(1, Ordering::Relaxed);
                        file.dirty.store(false, Ordering::SeqCst);
                        let r = file
                            .file
                            .set_len(len)
                            .and_then(|_| sync.sync_all(&file.file));
                        if let Err(e) = r {
                            log.poison("segment seal fsync", &file.path, &e);
                        }
                    }
                }
                Msg::Shutdown => stop = true,
            }
        }

        hand_over(written);

        let now = Instant::now();
        let due: Vec<usize> = dirty
            .iter()
            .filter(|(_, d)| d.interval.is_some_and(|i| d.since + i <= now))
            .map(|(k, _)| *k)
            .collect();
        // Interval syncs go to the syncer like a group with nothing to answer: the writer
        // does not wait for them.
        let mut interval = Written::default();
        for d in due.into_iter().filter_map(|k| dirty.remove(&k)) {
            for f in &d.files {
                interval.sync_file(&d.log, f);
            }
        }
        hand_over(interval);
    }
}
