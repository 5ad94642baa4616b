//! The helper threads that issue one group's fdatasyncs side by side (see [`crate::writer`]).
//!
//! A group commit that touches many files (a produce request carrying batches for hundreds of
//! partitions) has its fdatasyncs in flight together, so the file system shares journal commits
//! between them and the device queues them. The threads doing that used to be created and
//! joined for every group: on a small machine, CPU taken from the network path hundreds of
//! times a second. Here they are started the first time a job can use them (a data directory
//! whose groups touch one file at a time never starts any), then wait for work, and are joined
//! by [`SyncPool::shutdown`].
//!
//! The pool owns no policy: which files a job syncs, and what a failed fdatasync means (the
//! log is poisoned), are the writer's. It runs one job at a time; a second caller waits until
//! the pool is free.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use crate::segment::SegmentFile;
use crate::writer::{FileSync, LogSync, WriterCounters};

/// Stack of a helper thread: it only calls fdatasync and, on failure, logs.
const HELPER_STACK_BYTES: usize = 256 * 1024;

/// A log's file to fdatasync, and the log a failure poisons.
pub(crate) type FileToSync = (Arc<LogSync>, Arc<SegmentFile>);

/// The files of one job, each fdatasynced once by whichever thread claims it.
struct SyncJob {
    files: Vec<FileToSync>,
    next: AtomicUsize,
    what: &'static str,
}

impl SyncJob {
    /// Claims and syncs files until none is left. A poisoned log's file is skipped; a failure
    /// poisons its log.
    fn work(&self, sync: &dyn FileSync, stats: &WriterCounters) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let Some((log, file)) = self.files.get(i) else {
                return;
            };
            if log.is_poisoned() {
                continue;
            }
            stats.fsync_issued();
            file.dirty.store(false, Ordering::SeqCst);
            if let Err(e) = sync.sync_data(&file.file) {
                log.poison(self.what, &file.path, &e);
            }
        }
    }
}

#[derive(Default)]
struct State {
    /// The job being synced, if any; each helper joins it once (by `generation`).
    job: Option<Arc<SyncJob>>,
    generation: u64,
    /// Helpers inside the current job.
    busy: usize,
    closed: bool,
}

/// What the helpers share with the callers.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// A job was posted, or the pool closed.
    work: Condvar,
    /// A helper left a job, or a job ended.
    left: Condvar,
}

impl Shared {
    /// A helper's loop: joins each posted job once, until the pool is closed.
    /// `seen` is the generation when the helper was started: a job posted after that is joined
    /// even if the thread gets to run only once it is posted.
    fn serve(&self, mut seen: u64, sync: &dyn FileSync, stats: &WriterCounters) {
        loop {
            let job = {
                let mut st = self.state.lock();
                loop {
                    if st.closed {
                        return;
                    }
                    if st.generation != seen {
                        seen = st.generation;
                        if let Some(job) = &st.job {
                            let job = Arc::clone(job);
                            st.busy += 1;
                            break job;
                        }
                    }
                    self.work.wait(&mut st);
                }
            };
            job.work(sync, stats);
            let mut st = self.state.lock();
            st.busy -= 1;
            if st.busy == 0 {
                self.left.notify_all();
            }
        }
    }
}

/// Helper threads for [`SyncPool::sync_files`]; see the module docs.
pub(crate) struct SyncPool {
    shared: Arc<Shared>,
    sync: Arc<dyn FileSync>,
    stats: Arc<WriterCounters>,
    /// Most helpers to start: the fdatasyncs in flight at once, less the caller's own.
    max_helpers: usize,
    helpers: Mutex<Vec<JoinHandle<()>>>,
}

impl SyncPool {
    /// A pool that keeps up to `max_in_flight` fdatasyncs of a job in flight at once (the
    /// caller's own included).
    pub(crate) fn new(
        sync: Arc<dyn FileSync>,
        stats: Arc<WriterCounters>,
        max_in_flight: usize,
    ) -> Self {
        Self {
            shared: Arc::default(),
            sync,
            stats,
            max_helpers: max_in_flight.saturating_sub(1),
            helpers: Mutex::new(Vec::new()),
        }
    }

    /// fdatasyncs every file of `files` (skipping poisoned logs; a failure poisons its log), the
    /// caller and helpers at once, and returns when all are done.
    pub(crate) fn sync_files(&self, files: Vec<FileToSync>, what: &'static str) {
        let job = Arc::new(SyncJob {
            files,
            next: AtomicUsize::new(0),
            what,
        });
        let wanted = job.files.len().saturating_sub(1).min(self.max_helpers);
        let posted = wanted > 0 && self.post(&job, wanted);
        job.work(self.sync.as_ref(), &self.stats);
        if posted {
            let mut st = self.shared.state.lock();
            // Every file is claimed; those claimed by helpers are done when none is busy.
            while st.busy > 0 {
                self.shared.left.wait(&mut st);
            }
            st.job = None;
            self.shared.left.notify_all();
        }
    }

    /// Makes `job` the pool's job and wakes up to `wanted` helpers, starting helpers first if
    /// fewer are running. False if no helper can take it (none could be started, or the pool
    /// is shut down): the caller then syncs every file itself.
    fn post(&self, job: &Arc<SyncJob>, wanted: usize) -> bool {
        let running = self.start_helpers(wanted);
        if running == 0 {
            return false;
        }
        let mut st = self.shared.state.lock();
        while st.job.is_some() {
            self.shared.left.wait(&mut st);
        }
        if st.closed {
            return false;
        }
        st.job = Some(Arc::clone(job));
        st.generation += 1;
        for _ in 0..wanted.min(running) {
            self.shared.work.notify_one();
        }
        true
    }

    /// Starts helpers until `wanted` run (or one cannot be started); returns how many run.
    fn start_helpers(&self, wanted: usize) -> usize {
        let mut helpers = self.helpers.lock();
        let seen = {
            let st = self.shared.state.lock();
            if st.closed {
                return 0;
            }
            st.generation
        };
        while helpers.len() < wanted {
            let (shared, sync, stats) = (
                Arc::clone(&self.shared),
                Arc::clone(&self.sync),
                Arc::clone(&self.stats),
            );
            match std::thread::Builder::new()
                .name("weir-fsync".into())
                .stack_size(HELPER_STACK_BYTES)
                .spawn(move || shared.serve(seen, sync.as_ref(), &stats))
            {
                Ok(h) => helpers.push(h),
                Err(e) => {
                    // Fewer helpers only means fewer fdatasyncs in flight at once.
                    tracing::warn!(error = %e, running = helpers.len(), "could not start a storage sync helper thread");
                    break;
                }
            }
        }
        helpers.len()
    }

    /// Tells the helpers to return and joins them. Call once nothing can post a job any more.
    pub(crate) fn shutdown(&self) {
        self.shared.state.lock().closed = true;
        self.shared.work.notify_all();
        for h in std::mem::take(&mut *self.helpers.lock()) {
            if let Err(panic) = h.join() {
                std::panic::resume_unwind(panic);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::fs::File;
    use std::io;
    use std::os::unix::io::AsRawFd;
    use std::sync::atomic::{AtomicBool, AtomicU64};
    use std::time::{Duration, Instant};

    use super::*;

    /// Counts fdatasyncs per file descriptor; fails those of `failing`; and holds calls in
    /// waves of `peers` (each call, up to a hang guard, until its wave has all arrived),
    /// recording the most in flight at once.
    #[derive(Default)]
    struct Recorder {
        calls: Mutex<HashMap<i32, usize>>,
        failing: Option<i32>,
        peers: usize,
        /// (calls arrived so far, calls in flight)
        arrivals: Mutex<(usize, usize)>,
        changed: Condvar,
        most_at_once: AtomicUsize,
    }

    impl FileSync for Recorder {
        fn sync_data(&self, file: &File) -> io::Result<()> {
            *self.calls.lock().entry(file.as_raw_fd()).or_default() += 1;
            let mut a = self.arrivals.lock();
            let wave_end = (a.0 / self.peers.max(1) + 1) * self.peers;
            a.0 += 1;
            a.1 += 1;
            self.most_at_once.fetch_max(a.1, Ordering::SeqCst);
            self.changed.notify_all();
            let guard = Instant::now() + Duration::from_secs(5);
            while a.0 < wave_end && !self.changed.wait_until(&mut a, guard).timed_out() {}
            a.1 -= 1;
            drop(a);
            if self.failing == Some(file.as_raw_fd()) {
                return Err(io::Error::other("injected fdatasync failure"));
            }
            Ok(())
        }
    }

    fn files(dir: &std::path::Path, n: usize) -> Vec<FileToSync> {
        (0..n)
            .map(|i| {
                let path = dir.join(format!("{i}.log"));
                let file = File::create(&path).expect("create");
                let log = Arc::new(LogSync::new(0, &format!("t-{i}"), dir));
                let seg = Arc::new(SegmentFile {
                    file,
                    path,
                    readable: AtomicU64::new(0),
                    dirty: AtomicBool::new(true),
                    writeback_from: AtomicU64::new(0),
                });
                (log, seg)
            })
            .collect()
    }

    fn pool(sync: &Arc<Recorder>, max_in_flight: usize) -> SyncPool {
        SyncPool::new(
            Arc::clone(sync) as Arc<dyn FileSync>,
            Arc::default(),
            max_in_flight,
        )
    }

    #[test]
    fn a_job_of_one_file_starts_no_helper() {
        let d = tempfile::tempdir().expect("tmp");
        let sync = Arc::new(Recorder::default());
        let pool = pool(&sync, 32);
        let one = files(d.path(), 1);
        let fd = one[0].1.file.as_raw_fd();
        pool.sync_files(one, "fdatasync");
        assert_eq!(pool.helpers.lock().len(), 0);
        assert_eq!(sync.calls.lock().get(&fd), Some(&1));
        pool.shutdown();
    }

    #[test]
    fn every_file_is_synced_once_with_up_to_max_in_flight_by_reused_helpers() {
        let d = tempfile::tempdir().expect("tmp");
        let sync = Arc::new(Recorder {
            peers: 4,
            ..Recorder::default()
        });
        let pool = pool(&sync, 4);
        for round in 0..3 {
            let dir = d.path().join(round.to_string());
            std::fs::create_dir_all(&dir).expect("dir");
            let job = files(&dir, 12);
            let fds: Vec<i32> = job.iter().map(|(_, f)| f.file.as_raw_fd()).collect();
            pool.sync_files(job, "fdatasync");
            let calls = sync.calls.lock();
            for fd in fds {
                assert_eq!(calls.get(&fd), Some(&1), "round {round}: fd {fd}");
            }
            drop(calls);
            assert!(pool.shared.state.lock().job.is_none());
            // Three helpers beside the caller, started once and reused.
            assert_eq!(pool.helpers.lock().len(), 3);
            sync.calls.lock().clear();
        }
        assert_eq!(sync.most_at_once.load(Ordering::SeqCst), 4);
        pool.shutdown();
        assert!(pool.helpers.lock().is_empty());
    }

    #[test]
    fn a_failed_fdatasync_poisons_its_log_and_a_poisoned_log_is_skipped() {
        let d = tempfile::tempdir().expect("tmp");
        let job = files(d.path(), 3);
        let (ok, failing, poisoned) = (
            job[0].1.file.as_raw_fd(),
            job[1].1.file.as_raw_fd(),
            job[2].1.file.as_raw_fd(),
        );
        job[2].0.poisoned.store(true, Ordering::SeqCst);
        let logs: Vec<_> = job.iter().map(|(l, _)| Arc::clone(l)).collect();
        let sync = Arc::new(Recorder {
            failing: Some(failing),
            ..Recorder::default()
        });
        let pool = pool(&sync, 32);
        pool.sync_files(job, "fdatasync");
        let calls = sync.calls.lock();
        assert_eq!(calls.get(&ok), Some(&1));
        assert_eq!(calls.get(&failing), Some(&1));
        assert_eq!(calls.get(&poisoned), None);
        assert!(!logs[0].is_poisoned());
        assert!(logs[1].is_poisoned());
        drop(calls);
        pool.shutdown();
    }

    #[test]
    fn after_shutdown_the_caller_syncs_alone() {
        let d = tempfile::tempdir().expect("tmp");
        let sync = Arc::new(Recorder::default());
        let pool = pool(&sync, 8);
        pool.shutdown();
        let job = files(d.path(), 5);
        let fds: Vec<i32> = job.iter().map(|(_, f)| f.file.as_raw_fd()).collect();
        pool.sync_files(job, "fdatasync");
        assert_eq!(pool.helpers.lock().len(), 0);
        assert_eq!(sync.most_at_once.load(Ordering::SeqCst), 1);
        for fd in fds {
            assert_eq!(sync.calls.lock().get(&fd), Some(&1));
        }
    }
}
