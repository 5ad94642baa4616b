//! Small metadata files in a log directory: the log-start-offset checkpoint and the
//! clean-shutdown marker, plus the atomic-replace and directory-fsync helpers they need.
//!
//! Checkpoint format (text, like Kafka's checkpoint files):
//!
//! ```text
//! 0            <- format version
//! 1234         <- log start offset
//! ```
//!
//! It is replaced atomically (write temp file, fsync, rename, fsync directory), so a reader sees
//! either the old or the new value. An unreadable checkpoint is ignored with a warning: the log
//! start then falls back to the first segment's base offset, which never exposes deleted data
//! (segments below the start are deleted before the next checkpoint could be lost).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use crate::Offset;

/// File holding the persisted log start offset.
pub(crate) const LOG_START_FILE: &str = "log-start-offset.checkpoint";
/// Present only while the log is cleanly closed: the tail needs no validation on open.
pub(crate) const CLEAN_SHUTDOWN_FILE: &str = "clean-shutdown";

/// fsyncs a directory so that creations, renames and deletions in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Atomically replaces `dir/name` with `contents`, durably.
pub(crate) fn write_atomic(dir: &Path, name: &str, contents: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

/// Persists the log start offset.
pub(crate) fn write_log_start(dir: &Path, offset: Offset) -> io::Result<()> {
    write_atomic(dir, LOG_START_FILE, format!("0\n{offset}\n").as_bytes())
}

/// Reads the persisted log start offset; `None` if absent or unreadable.
pub(crate) fn read_log_start(dir: &Path) -> Option<Offset> {
    let text = match fs::read_to_string(dir.join(LOG_START_FILE)) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "unreadable log start checkpoint");
            return None;
        }
    };
    let mut lines = text.lines();
    match (
        lines.next(),
        lines.next().map(|l| l.trim().parse::<Offset>()),
    ) {
        (Some("0"), Some(Ok(o))) if o >= 0 => Some(o),
        _ => {
            tracing::warn!(dir = %dir.display(), "malformed log start checkpoint ignored");
            None
        }
    }
}

/// File holding the leader-epoch cache: the first offset of every leader epoch in the log.
pub(crate) const LEADER_EPOCH_FILE: &str = "leader-epoch-checkpoint";

/// Persists the leader-epoch entries (Kafka's layout: version, count, `epoch offset` lines).
pub(crate) fn write_leader_epochs(dir: &Path, entries: &[(i32, Offset)]) -> io::Result<()> {
    let mut text = format!("0\n{}\n", entries.len());
    for (e, o) in entries {
        text.push_str(&format!("{e} {o}\n"));
    }
    write_atomic(dir, LEADER_EPOCH_FILE, text.as_bytes())
}

/// Reads the leader-epoch entries; `None` if absent or malformed (the caller rebuilds them from
/// the batches).
pub(crate) fn read_leader_epochs(dir: &Path) -> Option<Vec<(i32, Offset)>> {
    let text = fs::read_to_string(dir.join(LEADER_EPOCH_FILE)).ok()?;
    let mut lines = text.lines();
    if lines.next()? != "0" {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    let mut entries = Vec::with_capacity(count.min(1024));
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let mut parts = line.split_whitespace();
        let e: i32 = parts.next()?.parse().ok()?;
        let o: Offset = parts.next()?.parse().ok()?;
        entries.push((e, o));
    }
    let increasing = entries
        .windows(2)
        .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1);
    (entries.len() == count && increasing).then_some(entries)
}

/// Writes the clean-shutdown marker durably.
pub(crate) fn mark_clean(dir: &Path) -> io::Result<()> {
    write_atomic(dir, CLEAN_SHUTDOWN_FILE, b"clean\n")
}

/// Whether the clean-shutdown marker is present.
pub(crate) fn is_clean(dir: &Path) -> bool {
    dir.join(CLEAN_SHUTDOWN_FILE).exists()
}

/// Removes the clean-shutdown marker durably. Must happen before the first write after open:
/// otherwise a crash could leave a torn tail that the next open would trust.
pub(crate) fn clear_clean(dir: &Path) -> io::Result<()> {
    match fs::remove_file(dir.join(CLEAN_SHUTDOWN_FILE)) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_start_roundtrip_and_garbage() {
        let d = tempfile::tempdir().expect("tempdir");
        assert_eq!(read_log_start(d.path()), None);
        write_log_start(d.path(), 1234).expect("write");
        assert_eq!(read_log_start(d.path()), Some(1234));
        fs::write(d.path().join(LOG_START_FILE), "zz").expect("write");
        assert_eq!(read_log_start(d.path()), None);
    }

    #[test]
    fn clean_marker() {
        let d = tempfile::tempdir().expect("tempdir");
        assert!(!is_clean(d.path()));
        mark_clean(d.path()).expect("mark");
        assert!(is_clean(d.path()));
        clear_clean(d.path()).expect("clear");
        assert!(!is_clean(d.path()));
        clear_clean(d.path()).expect("idempotent");
    }
}
