//! The data directory's syncer: it fdatasyncs what the writer thread wrote and then answers
//! the appends and flushes waiting for it (see [`crate::writer`] for the whole path).
//!
//! The writer hands each written group over ([`Syncer::put`]); the syncer thread
//! ([`Syncer::run`]) takes it at once and starts one fdatasync per file of the group, on helper
//! threads, up to [`MAX_CONCURRENT_FSYNCS`] in flight, so a group touching hundreds of
//! partitions waits about as long as the slowest of them (the file system shares journal
//! commits between concurrent fdatasyncs and the device queues them). It does not wait for one
//! group's fdatasyncs to end before starting the next group's: a file whose fdatasync is
//! running gets at most one more queued behind it, which covers every later group that wrote
//! to it meanwhile. The rules that keep this correct:
//!
//! - An fdatasync of a file starts only after the writes it must cover (it is started for a
//!   group that was handed over after its writes), so it covers them.
//! - Groups are answered one at a time in the order they were handed over, each once every
//!   fdatasync started for it has ended: a log's high watermark only ever covers a prefix of
//!   durable data.
//! - When a single fdatasync is to start and none is running (one hot partition), the syncer
//!   thread issues it itself, with no hand-off to a helper; groups arriving meanwhile merge
//!   into one, as they did before helpers existed.
//!
//! Helpers are started the first time two fdatasyncs are in flight and kept until shutdown.
//! The syncer owns no policy: a failed fdatasync poisons its log, and the writer decides what
//! to sync.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use crate::segment::SegmentFile;
use crate::writer::{
    answer, key, sync_file_data, Completer, Done, FileSync, LogSync, WriterCounters, Written,
};

/// At most this many fdatasyncs are in flight at once. On the project machine's disk a raw
/// loop over 1000 files gave about 10k fdatasyncs/s from 4 threads, 25k from 16 and 32k from
/// 64, and the engine over 1000 partitions 10–20% more with 32 than with 16
/// (`benches/examples/storage_vs_disk.rs`, `many-files`).
pub(crate) const MAX_CONCURRENT_FSYNCS: usize = 32;

/// Stack of a helper thread: it only calls fdatasync and, on failure, logs.
const HELPER_STACK_BYTES: usize = 256 * 1024;

/// One fdatasync for a helper to issue.
struct SyncItem {
    log: Arc<LogSync>,
    file: Arc<SegmentFile>,
}

impl SyncItem {
    fn sync(&self, sync: &dyn FileSync, stats: &WriterCounters) {
        sync_file_data(&self.log, &self.file, sync, stats);
    }
}

/// What the writer, the syncer thread and the helpers share, under one lock.
#[derive(Default)]
struct Shared {
    /// Handed over by the writer and not yet taken by the syncer thread (merged).
    pending: Written,
    /// fdatasyncs waiting for a helper.
    work: VecDeque<SyncItem>,
    /// Files (by address) whose fdatasync a helper has finished, for the syncer thread.
    finished: Vec<usize>,
    /// The writer hands nothing over any more.
    closed: bool,
    /// Helpers return (set by the syncer thread once everything is answered).
    quit: bool,
}

/// See the module docs.
pub(crate) struct Syncer {
    shared: Mutex<Shared>,
    /// Wakes the syncer thread: a group was handed over, a helper finished, or closing.
    to_syncer: Condvar,
    /// Wakes helpers: work queued, or quitting.
    to_helpers: Condvar,
    sync: Arc<dyn FileSync>,
    stats: Arc<WriterCounters>,
    helpers: Mutex<Vec<JoinHandle<()>>>,
    /// Most helpers to start ([`MAX_CONCURRENT_FSYNCS`]; fewer in tests).
    max_helpers: usize,
}

impl Syncer {
    pub(crate) fn new(sync: Arc<dyn FileSync>, stats: Arc<WriterCounters>) -> Arc<Self> {
        Self::with_max_helpers(sync, stats, MAX_CONCURRENT_FSYNCS)
    }

    fn with_max_helpers(
        sync: Arc<dyn FileSync>,
        stats: Arc<WriterCounters>,
        max_helpers: usize,
    ) -> Arc<Self> {
        Arc::new(Self {
            shared: Mutex::default(),
            to_syncer: Condvar::new(),
            to_helpers: Condvar::new(),
            sync,
            stats,
            helpers: Mutex::new(Vec::new()),
            max_helpers,
        })
    }

    /// The writer hands a written group over. Its size is bounded by the appends in flight,
    /// which the appenders' callers bound.
    pub(crate) fn put(&self, group: Written) {
        if group.is_empty() {
            return;
        }
        self.shared.lock().pending.absorb(group);
        self.to_syncer.notify_one();
    }

    /// The writer hands nothing over any more; [`Self::run`] returns once all is answered.
    pub(crate) fn close(&self) {
        self.shared.lock().closed = true;
        self.to_syncer.notify_one();
    }

    /// The syncer thread's loop, until closed and everything handed over is answered.
    pub(crate) fn run(self: &Arc<Self>) {
        let mut rolling = Rolling::default();
        let mut start = Vec::new();
        loop {
            let (group, finished) = {
                let mut sh = self.shared.lock();
                loop {
                    if !sh.pending.is_empty() || !sh.finished.is_empty() {
                        break (
                            std::mem::take(&mut sh.pending),
                            std::mem::take(&mut sh.finished),
                        );
                    }
                    if sh.closed && rolling.is_idle() {
                        sh.quit = true;
                        drop(sh);
                        self.to_helpers.notify_all();
                        return;
                    }
                    self.to_syncer.wait(&mut sh);
                }
            };
            for file in finished {
                rolling.finished(file, &mut start);
            }
            rolling.take(group, &mut start);
            // One hot partition: sync it here rather than hand it to a helper and wait.
            while start.len() == 1 && rolling.running == 1 {
                let item = start.pop().expect("one item");
                item.sync(self.sync.as_ref(), &self.stats);
                rolling.finished(key(&item.file), &mut start);
                rolling.answer_ready();
            }
            if !start.is_empty() {
                let n = start.len();
                self.shared.lock().work.extend(start.drain(..));
                self.start_helpers(rolling.running);
                for _ in 0..n {
                    self.to_helpers.notify_one();
                }
            }
            rolling.answer_ready();
        }
    }

    /// Starts helpers until `wanted` (at most `max_helpers`) run. A helper that
    /// cannot be started leaves its share to the others; with none at all, the syncer thread
    /// issues the queued fdatasyncs itself (call it after queuing them).
    fn start_helpers(self: &Arc<Self>, wanted: usize) {
        let wanted = wanted.min(self.max_helpers);
        let mut helpers = self.helpers.lock();
        while helpers.len() < wanted {
            let me = Arc::clone(self);
            match std::thread::Builder::new()
                .name("weir-fsync".into())
                .stack_size(HELPER_STACK_BYTES)
                .spawn(move || me.serve())
            {
                Ok(h) => helpers.push(h),
                Err(e) => {
                    tracing::warn!(error = %e, running = helpers.len(), "could not start a storage sync helper thread");
                    break;
                }
            }
        }
        if helpers.is_empty() {
            drop(helpers);
            // No helper at all: issue the queued fdatasyncs here.
            let work: Vec<SyncItem> = self.shared.lock().work.drain(..).collect();
            let mut done = Vec::with_capacity(work.len());
            for item in work {
                item.sync(self.sync.as_ref(), &self.stats);
                done.push(key(&item.file));
            }
            self.shared.lock().finished.extend(done);
        }
    }

    /// A helper's loop: issues queued fdatasyncs until told to quit.
    fn serve(&self) {
        loop {
            let item = {
                let mut sh = self.shared.lock();
                loop {
                    if let Some(item) = sh.work.pop_front() {
                        break item;
                    }
                    if sh.quit {
                        return;
                    }
                    self.to_helpers.wait(&mut sh);
                }
            };
            item.sync(self.sync.as_ref(), &self.stats);
            self.shared.lock().finished.push(key(&item.file));
            self.to_syncer.notify_one();
        }
    }

    /// Joins the helpers; call after [`Self::run`] has returned.
    pub(crate) fn join_helpers(&self) {
        for h in std::mem::take(&mut *self.helpers.lock()) {
            if let Err(panic) = h.join() {
                std::panic::resume_unwind(panic);
            }
        }
    }
}

/// A group taken by the syncer thread and not answered yet.
struct Waiting {
    /// fdatasyncs started for it that have not ended.
    unsynced: usize,
    completions: Vec<Done>,
    flushes: Vec<(Arc<LogSync>, Completer)>,
}

/// A file with an fdatasync running, and the groups that wait for the next one.
struct FileSlot {
    log: Arc<LogSync>,
    file: Arc<SegmentFile>,
    /// Groups (by sequence number) the running fdatasync covers.
    running: Vec<u64>,
    /// Groups that wrote to the file after the running fdatasync started.
    queued: Vec<u64>,
}

/// The syncer thread's bookkeeping (no IO, no locks): which fdatasyncs are running or
/// queued, and which groups wait for them.
#[derive(Default)]
struct Rolling {
    /// In the order handed over; the front has sequence number `front_seq`.
    groups: VecDeque<Waiting>,
    front_seq: u64,
    files: HashMap<usize, FileSlot>,
    /// fdatasyncs started and not ended.
    running: usize,
}

impl Rolling {
    fn is_idle(&self) -> bool {
        self.groups.is_empty() && self.running == 0
    }

    /// Takes a group: each of its files gets an fdatasync now, or joins the one queued behind
    /// the file's running fdatasync. fdatasyncs to start are added to `start`.
    fn take(&mut self, group: Written, start: &mut Vec<SyncItem>) {
        if group.is_empty() {
            return;
        }
        let seq = self.front_seq + self.groups.len() as u64;
        let Written {
            to_sync,
            completions,
            flushes,
            ..
        } = group;
        let unsynced = to_sync.len();
        for (log, file) in to_sync {
            let slot = self.files.entry(key(&file)).or_insert_with(|| FileSlot {
                log,
                file,
                running: Vec::new(),
                queued: Vec::new(),
            });
            slot.queued.push(seq);
            if slot.running.is_empty() {
                Self::start(slot, &mut self.running, start);
            }
        }
        self.groups.push_back(Waiting {
            unsynced,
            completions,
            flushes,
        });
    }

    fn start(slot: &mut FileSlot, running: &mut usize, start: &mut Vec<SyncItem>) {
        slot.running = std::mem::take(&mut slot.queued);
        *running += 1;
        start.push(SyncItem {
            log: Arc::clone(&slot.log),
            file: Arc::clone(&slot.file),
        });
    }

    /// The fdatasync of `file` ended: the groups it covered wait for one fewer; the file's
    /// queued fdatasync, if any, is added to `start`.
    fn finished(&mut self, file: usize, start: &mut Vec<SyncItem>) {
        let Some(slot) = self.files.get_mut(&file) else {
            debug_assert!(false, "an fdatasync ended for a file with none running");
            return;
        };
        self.running -= 1;
        for seq in slot.running.drain(..) {
            let waiting = &mut self.groups[(seq - self.front_seq) as usize];
            waiting.unsynced -= 1;
        }
        if slot.queued.is_empty() {
            self.files.remove(&file);
        } else {
            Self::start(slot, &mut self.running, start);
        }
    }

    /// Answers, in order, the groups at the front whose fdatasyncs have all ended.
    fn answer_ready(&mut self) {
        while self.groups.front().is_some_and(|g| g.unsynced == 0) {
            let Some(g) = self.groups.pop_front() else {
                break;
            };
            self.front_seq += 1;
            answer(g.completions, g.flushes);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::fs::File;
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, AtomicU64};

    use super::*;
    use crate::writer::Completion;

    fn file(dir: &Path, name: &str) -> (Arc<LogSync>, Arc<SegmentFile>) {
        let path = dir.join(name);
        let seg = SegmentFile {
            file: File::create(&path).expect("create"),
            path,
            readable: AtomicU64::new(0),
            dirty: AtomicBool::new(true),
            writeback_from: AtomicU64::new(0),
        };
        (Arc::new(LogSync::new(0, name, dir)), Arc::new(seg))
    }

    /// A group that syncs `files` and has one flush to answer, whose completion is returned.
    fn group(files: &[&(Arc<LogSync>, Arc<SegmentFile>)]) -> (Written, Arc<Completion>) {
        let mut g = Written::default();
        for (log, f) in files {
            g.sync_file(log, f);
        }
        let done = Completion::new();
        g.flushes
            .push((Arc::clone(&files[0].0), Completer(Arc::clone(&done))));
        (g, done)
    }

    fn started(start: &mut Vec<SyncItem>) -> Vec<usize> {
        start.drain(..).map(|i| key(&i.file)).collect()
    }

    #[test]
    fn a_later_group_is_synced_at_once_but_answered_after_the_earlier_one() {
        let d = tempfile::tempdir().expect("tmp");
        let (a, b, c) = (
            file(d.path(), "a"),
            file(d.path(), "b"),
            file(d.path(), "c"),
        );
        let mut r = Rolling::default();
        let mut start = Vec::new();
        let (g0, done0) = group(&[&a, &c]);
        r.take(g0, &mut start);
        assert_eq!(started(&mut start), vec![key(&a.1), key(&c.1)]);
        let (g1, done1) = group(&[&b]);
        r.take(g1, &mut start);
        // B's fdatasync starts while A's and C's run: no barrier between groups.
        assert_eq!(started(&mut start), vec![key(&b.1)]);
        assert_eq!(r.running, 3);
        r.finished(key(&b.1), &mut start);
        r.answer_ready();
        assert!(
            !done1.is_complete(),
            "answered before the group handed over first"
        );
        r.finished(key(&c.1), &mut start);
        r.answer_ready();
        assert!(!done0.is_complete() && !done1.is_complete());
        r.finished(key(&a.1), &mut start);
        r.answer_ready();
        assert!(matches!(done0.wait(), Ok(())));
        assert!(matches!(done1.wait(), Ok(())));
        assert!(start.is_empty());
        assert!(r.is_idle() && r.files.is_empty());
    }

    #[test]
    fn groups_writing_a_file_whose_fdatasync_runs_share_the_next_one() {
        let d = tempfile::tempdir().expect("tmp");
        let a = file(d.path(), "a");
        let mut r = Rolling::default();
        let mut start = Vec::new();
        let (g0, done0) = group(&[&a]);
        r.take(g0, &mut start);
        assert_eq!(started(&mut start).len(), 1);
        let (g1, done1) = group(&[&a]);
        let (g2, done2) = group(&[&a]);
        r.take(g1, &mut start);
        r.take(g2, &mut start);
        // No second fdatasync of a file while one runs: it may not cover the later writes.
        assert!(start.is_empty());
        r.finished(key(&a.1), &mut start);
        r.answer_ready();
        assert!(matches!(done0.wait(), Ok(())));
        assert!(!done1.is_complete() && !done2.is_complete());
        // One more fdatasync covers both later groups.
        assert_eq!(started(&mut start), vec![key(&a.1)]);
        assert_eq!(r.running, 1);
        r.finished(key(&a.1), &mut start);
        r.answer_ready();
        assert!(matches!(done1.wait(), Ok(())));
        assert!(matches!(done2.wait(), Ok(())));
        assert!(start.is_empty());
        assert!(r.is_idle() && r.files.is_empty());
    }

    /// Counts fdatasyncs per file descriptor.
    #[derive(Default)]
    struct Counting(Mutex<HashMap<i32, usize>>);

    impl FileSync for Counting {
        fn sync_data(&self, file: &File) -> std::io::Result<()> {
            use std::os::unix::io::AsRawFd;
            *self.0.lock().entry(file.as_raw_fd()).or_default() += 1;
            Ok(())
        }
    }

    /// Runs a syncer with at most `max_helpers` helpers over one group of `files` files and
    /// returns, once its flush is answered, the fdatasyncs per file and the helpers started.
    fn sync_one_group(max_helpers: usize, files: usize) -> (Vec<usize>, usize) {
        use std::os::unix::io::AsRawFd;
        let d = tempfile::tempdir().expect("tmp");
        let counting = Arc::new(Counting::default());
        let syncer = Syncer::with_max_helpers(counting.clone(), Arc::default(), max_helpers);
        let thread = {
            let syncer = Arc::clone(&syncer);
            std::thread::spawn(move || syncer.run())
        };
        let all: Vec<_> = (0..files)
            .map(|i| file(d.path(), &format!("f{i}")))
            .collect();
        let (g, done) = group(&all.iter().collect::<Vec<_>>());
        syncer.put(g);
        // Polled with a deadline, so a syncer that never answers fails the test, not hangs it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !done.is_complete() {
            assert!(
                std::time::Instant::now() < deadline,
                "the group was never answered"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(matches!(done.wait(), Ok(())));
        syncer.close();
        thread.join().expect("syncer thread");
        let started = syncer.helpers.lock().len();
        syncer.join_helpers();
        let calls = counting.0.lock();
        let per_file = all
            .iter()
            .map(|(_, f)| calls.get(&f.file.as_raw_fd()).copied().unwrap_or(0))
            .collect();
        (per_file, started)
    }

    #[test]
    fn the_syncer_syncs_each_file_of_a_group_once_with_helpers_or_alone() {
        assert_eq!(sync_one_group(2, 5), (vec![1; 5], 2));
        // No helper thread can be had: the syncer thread issues every fdatasync itself.
        assert_eq!(sync_one_group(0, 5), (vec![1; 5], 0));
        // One file: issued by the syncer thread, no helper started.
        assert_eq!(sync_one_group(4, 1), (vec![1], 0));
    }

    #[test]
    fn a_group_with_nothing_to_sync_waits_only_for_earlier_groups() {
        let d = tempfile::tempdir().expect("tmp");
        let a = file(d.path(), "a");
        let mut r = Rolling::default();
        let mut start = Vec::new();
        let (g0, done0) = group(&[&a]);
        r.take(g0, &mut start);
        let mut g1 = Written::default();
        let done1 = Completion::new();
        g1.flushes
            .push((Arc::clone(&a.0), Completer(Arc::clone(&done1))));
        r.take(g1, &mut start);
        r.answer_ready();
        assert!(!done0.is_complete() && !done1.is_complete());
        r.finished(key(&a.1), &mut start);
        r.answer_ready();
        assert!(matches!(done0.wait(), Ok(())));
        assert!(matches!(done1.wait(), Ok(())));
        assert!(r.is_idle());
    }
}
