//! A data directory: the set of logs under one path and the writer thread that performs their
//! writes and fsyncs (group commit across every log in the directory).
//!
//! Layout: `<data dir>/<log name>/` per log, plus `.lock` (an `flock` held while open, so two
//! brokers cannot share a directory) and `.generation` (which clean-shutdown markers count, see
//! `checkpoint::Generations`). Removed logs are first renamed to a hidden
//! `.<name>.deleting` directory, so a crash mid-removal never resurrects a half-deleted log.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::Mutex;

use crate::checkpoint;
use crate::config::LogConfig;
use crate::log::Log;
use crate::writer::{self, FileSync, Msg, OsFileSync, WriterCounters, WriterStats};
use crate::StorageError;

const LOCK_FILE: &str = ".lock";
const DELETING_SUFFIX: &str = ".deleting";

/// Threads closing logs at shutdown (each close waits on fsyncs).
const CLOSE_THREADS: usize = 16;

/// Options for [`DataDir::open_with`].
#[derive(Clone)]
pub struct DataDirOptions {
    /// How data is written, forced to disk and files grown. Replace only to inject failures in
    /// tests.
    pub file_sync: Arc<dyn FileSync>,
}

impl Default for DataDirOptions {
    fn default() -> Self {
        DataDirOptions {
            file_sync: Arc::new(OsFileSync),
        }
    }
}

impl std::fmt::Debug for DataDirOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataDirOptions").finish_non_exhaustive()
    }
}

struct WriterThread {
    tx: Sender<Msg>,
    handle: JoinHandle<()>,
}

/// One data directory: owns its logs and the group-commit writer thread. `Send + Sync`.
pub struct DataDir {
    path: PathBuf,
    logs: Mutex<HashMap<String, Arc<Log>>>,
    writer: Mutex<Option<WriterThread>>,
    stats: Arc<WriterCounters>,
    file_io: Arc<dyn FileSync>,
    /// Which clean-shutdown markers this run trusts, and the one it writes.
    generations: checkpoint::Generations,
    _lock: File,
}

impl std::fmt::Debug for DataDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataDir").field("path", &self.path).finish()
    }
}

/// A log name usable as a directory name: Kafka's topic charset plus the `-<partition>` suffix.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

fn lock_dir(path: &Path) -> Result<File, StorageError> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path.join(LOCK_FILE))?;
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        // SAFETY: plain syscall on an fd we own.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r != 0 {
            return Err(StorageError::Locked(path.display().to_string()));
        }
    }
    Ok(f)
}

/// Space on the file system of a data directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskSpace {
    pub total_bytes: u64,
    pub usable_bytes: u64,
}

impl DataDir {
    /// Opens (creating if needed) a data directory and starts its writer thread.
    pub fn open(path: &Path) -> Result<Arc<DataDir>, StorageError> {
        Self::open_with(path, DataDirOptions::default())
    }

    /// [`DataDir::open`] with explicit options (a custom [`FileSync`] for fault injection).
    pub fn open_with(path: &Path, opts: DataDirOptions) -> Result<Arc<DataDir>, StorageError> {
        fs::create_dir_all(path)?;
        let lock = lock_dir(path)?;
        // Finish removals interrupted by a crash.
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(DELETING_SUFFIX) {
                if let Err(e) = fs::remove_dir_all(entry.path()) {
                    tracing::warn!(path = %entry.path().display(), error = %e, "could not finish log removal");
                }
            }
        }
        // Before any log opens, so that no marker of this run can exist before it is durable.
        let generations = checkpoint::next_generation(path)?;
        let (tx, rx) = mpsc::channel();
        let sync = Arc::clone(&opts.file_sync);
        let stats = Arc::new(WriterCounters::default());
        let thread_stats = Arc::clone(&stats);
        let handle = std::thread::Builder::new()
            .name("weir-storage-writer".into())
            .spawn(move || writer::run(rx, sync, thread_stats))?;
        Ok(Arc::new(DataDir {
            path: path.to_path_buf(),
            logs: Mutex::new(HashMap::new()),
            writer: Mutex::new(Some(WriterThread { tx, handle })),
            stats,
            file_io: opts.file_sync,
            generations,
            _lock: lock,
        }))
    }

    /// Counters of the writer thread (group commit effectiveness: `writes / fsyncs`).
    pub fn writer_stats(&self) -> WriterStats {
        self.stats.snapshot()
    }

    /// The directory path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The size of the file system holding the directory and the bytes free for this process
    /// (`statvfs`: `f_blocks` and `f_bavail` in `f_frsize` units), as Kafka's DescribeLogDirs
    /// reports them.
    pub fn space(&self) -> io::Result<DiskSpace> {
        let path = std::ffi::CString::new(self.path.as_os_str().as_encoded_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
        // SAFETY: `path` is NUL-terminated and `stat` is a valid out-pointer for one statvfs.
        let r = unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: statvfs returned 0, so it filled `stat`.
        let stat = unsafe { stat.assume_init() };
        // The fields are `u64` on 64-bit Linux and 32 bits wide elsewhere: widen either way.
        #[allow(clippy::useless_conversion)]
        let (unit, blocks, available) = (
            u64::from(stat.f_frsize),
            u64::from(stat.f_blocks),
            u64::from(stat.f_bavail),
        );
        Ok(DiskSpace {
            total_bytes: blocks.saturating_mul(unit),
            usable_bytes: available.saturating_mul(unit),
        })
    }

    /// Opens the log `name` (a subdirectory), creating it if missing and recovering it if
    /// present. Opening a log that is already open returns the same instance with `config`
    /// applied — unless it is poisoned: then it is closed and reopened (recovered) from disk,
    /// and the old instance keeps failing.
    pub fn open_log(&self, name: &str, config: LogConfig) -> Result<Arc<Log>, StorageError> {
        if !valid_name(name) {
            return Err(StorageError::InvalidLogName(name.to_string()));
        }
        let tx = match &*self.writer.lock() {
            Some(w) => w.tx.clone(),
            None => return Err(StorageError::Closed),
        };
        let mut logs = self.logs.lock();
        if let Some(log) = logs.get(name) {
            if log.is_poisoned() {
                // Reopening is how a poisoned log recovers: drain its queue, then recover
                // the tail from what is actually on disk, all of it checked (after a failed
                // fsync the page cache may not hold what the disk does).
                let _ = log.close(false);
                checkpoint::remove_recovery_point(&self.path.join(name))?;
            } else if !log.is_closed() {
                log.set_config(config);
                return Ok(Arc::clone(log));
            }
        }
        let log = Arc::new(Log::open(
            self.path.join(name),
            name,
            config,
            tx,
            Arc::clone(&self.stats),
            Arc::clone(&self.file_io),
            self.generations,
        )?);
        logs.insert(name.to_string(), Arc::clone(&log));
        Ok(log)
    }

    /// Closes and deletes the log `name` (no error if it does not exist).
    pub fn remove_log(&self, name: &str) -> Result<(), StorageError> {
        if !valid_name(name) {
            return Err(StorageError::InvalidLogName(name.to_string()));
        }
        let log = self.logs.lock().remove(name);
        if let Some(log) = log {
            // Its data is about to be deleted: no need for a clean close.
            let _ = log.close(false);
        }
        let dir = self.path.join(name);
        if !dir.exists() {
            return Ok(());
        }
        let tomb = self.path.join(format!(".{name}{DELETING_SUFFIX}"));
        let _ = fs::remove_dir_all(&tomb);
        fs::rename(&dir, &tomb)?;
        checkpoint::sync_dir(&self.path)?;
        fs::remove_dir_all(&tomb)?;
        Ok(())
    }

    /// Writes the recovery point of every open log that was written to since the last call
    /// (see [`Log::checkpoint_recovery_point`]); returns how many were written. A log whose
    /// point cannot be written keeps its previous one (logged), which is only older.
    pub fn checkpoint_recovery_points(&self) -> usize {
        let logs: Vec<Arc<Log>> = self.logs.lock().values().cloned().collect();
        let mut written = 0;
        for log in logs {
            match log.checkpoint_recovery_point() {
                Ok(true) => written += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(log = log.name(), error = %e, "recovery point not written")
                }
            }
        }
        written
    }

    /// Names of the logs present on disk (open or not).
    pub fn log_names(&self) -> Result<Vec<String>, StorageError> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.path)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            if let Some(n) = entry.file_name().to_str() {
                if valid_name(n) {
                    names.push(n.to_string());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    /// Flushes and fsyncs every open log, marks each cleanly closed (so the next open skips
    /// tail validation) and stops the writer thread. Idempotent; later appends fail with
    /// [`StorageError::Closed`].
    pub fn shutdown(&self) {
        self.stop(true);
    }

    /// Simulates a crash for tests: stops accepting appends and stops the writer after it has
    /// written what was queued, but writes no clean-shutdown markers, so the next open runs
    /// full tail recovery.
    pub fn shutdown_unclean(&self) {
        self.stop(false);
    }

    fn stop(&self, clean: bool) {
        let logs: Vec<Arc<Log>> = self.logs.lock().drain().map(|(_, l)| l).collect();
        // Closing a log is a few fsyncs; with thousands of logs, doing them one after another
        // takes seconds to minutes. The device handles concurrent syncs far better, so close the
        // logs from a bounded set of threads.
        let threads = logs.len().clamp(1, CLOSE_THREADS);
        let chunk = logs.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            for part in logs.chunks(chunk) {
                scope.spawn(move || {
                    for log in part {
                        if let Err(e) = log.close(clean) {
                            tracing::error!(log = log.name(), error = %e, "log did not close cleanly");
                        }
                    }
                });
            }
        });
        if let Some(w) = self.writer.lock().take() {
            let _ = w.tx.send(Msg::Shutdown);
            drop(w.tx);
            if w.handle.join().is_err() {
                tracing::error!("storage writer thread panicked");
            }
        }
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        self.stop(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("orders-3"));
        assert!(valid_name("a.b_c-0"));
        assert!(!valid_name(""));
        assert!(!valid_name("."));
        assert!(!valid_name(".."));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(".hidden"));
    }
}
