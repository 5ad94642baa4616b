//! Small metadata files in a log directory: the log-start-offset checkpoint and the
//! clean-shutdown marker (and the data directory's generation that says which markers count),
//! plus the atomic-replace and directory-fsync helpers they need.
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
/// Written when the log is cleanly closed, with the data directory's generation of that run:
/// the tail needs no validation on open if the marker is of the previous run (see
/// [`Generations`]).
pub(crate) const CLEAN_SHUTDOWN_FILE: &str = "clean-shutdown";
/// In the data directory: the generation of the run that has it open (one more at every open).
pub(crate) const GENERATION_FILE: &str = ".generation";

/// fsyncs a directory so that creations, renames and deletions in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Whether a replaced file must be on disk when the write returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// File and directory fsynced before returning.
    Synced,
    /// Atomic (a reader sees the old or the new contents) but left to writeback: after a power
    /// loss the old contents may be back, or on some file systems an empty file. Only for files
    /// whose loss recovery repairs.
    Deferred,
}

/// Atomically replaces `dir/name` with `contents`, durably.
pub(crate) fn write_atomic(dir: &Path, name: &str, contents: &[u8]) -> io::Result<()> {
    replace(dir, name, contents, Durability::Synced)
}

/// Atomically replaces `dir/name` with `contents` (temporary file, then rename).
pub(crate) fn replace(
    dir: &Path,
    name: &str,
    contents: &[u8],
    durability: Durability,
) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(contents)?;
        if durability == Durability::Synced {
            f.sync_all()?;
        }
    }
    fs::rename(&tmp, dir.join(name))?;
    if durability == Durability::Synced {
        sync_dir(dir)?;
    }
    Ok(())
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
pub(crate) fn write_leader_epochs(
    dir: &Path,
    entries: &[(i32, Offset)],
    durability: Durability,
) -> io::Result<()> {
    let mut text = format!("0\n{}\n", entries.len());
    for (e, o) in entries {
        text.push_str(&format!("{e} {o}\n"));
    }
    replace(dir, LEADER_EPOCH_FILE, text.as_bytes(), durability)
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

/// File holding the log's recovery point (see [`RecoveryPoint`]).
pub(crate) const RECOVERY_POINT_FILE: &str = "recovery-point";

/// How far the active segment's data had been written, and by which boot of the machine: after
/// a crash of the process (not of the machine) everything a finished `pwrite` put in the page
/// cache is still there, so recovery reads only the batch headers below `position` and checks
/// the CRC of the batches after it.
///
/// Written now and then while the log is open ([`crate::Log::checkpoint_recovery_point`]), in
/// place and without an fsync: a torn or stale file is harmless, because the text carries its own
/// CRC32C (a torn one is ignored) and an older point is only a smaller one. After a reboot the
/// page cache is gone, data that was never synced may be garbage, and the point is not used (the
/// boot id differs). A truncation removes the file before it changes the data.
///
/// Format (text): `0`, boot id, segment base offset, position, CRC32C of the lines before, each
/// on its own line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RecoveryPoint {
    pub boot_id: String,
    pub segment_base: Offset,
    pub position: u64,
}

/// This boot of the machine (`/proc/sys/kernel/random/boot_id`); `None` where the system has no
/// such thing, and then no recovery point is written or trusted.
pub(crate) fn boot_id() -> Option<&'static str> {
    static BOOT_ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    BOOT_ID
        .get_or_init(|| {
            let id = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
            let id = id.trim();
            (!id.is_empty() && id.len() <= 64 && !id.contains('\n')).then(|| id.to_string())
        })
        .as_deref()
}

fn recovery_point_text(p: &RecoveryPoint) -> String {
    let body = format!("0\n{}\n{}\n{}\n", p.boot_id, p.segment_base, p.position);
    let crc = crc32c::crc32c(body.as_bytes());
    format!("{body}{crc}\n")
}

/// Writes the recovery point in place (no fsync, see [`RecoveryPoint`]).
pub(crate) fn write_recovery_point(dir: &Path, p: &RecoveryPoint) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let text = recovery_point_text(p);
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(RECOVERY_POINT_FILE))?;
    f.write_all_at(text.as_bytes(), 0)?;
    f.set_len(text.len() as u64)
}

/// Reads the recovery point; `None` if absent, torn or malformed.
pub(crate) fn read_recovery_point(dir: &Path) -> Option<RecoveryPoint> {
    let text = fs::read_to_string(dir.join(RECOVERY_POINT_FILE)).ok()?;
    let mut lines = text.lines();
    if lines.next()? != "0" {
        return None;
    }
    let p = RecoveryPoint {
        boot_id: lines.next()?.to_string(),
        segment_base: lines.next()?.parse().ok()?,
        position: lines.next()?.parse().ok()?,
    };
    // The whole text, its CRC line included, must be what this point writes.
    (recovery_point_text(&p) == text).then_some(p)
}

/// Removes the recovery point (before a truncation: the data below it is about to change). No
/// fsync: a crash of the process sees the removal, and after a reboot no point is trusted.
pub(crate) fn remove_recovery_point(dir: &Path) -> io::Result<()> {
    match fs::remove_file(dir.join(RECOVERY_POINT_FILE)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Which clean-shutdown markers a log opened in this run may trust.
///
/// Every open of a data directory durably writes a new generation (one file, two fsyncs) before
/// any log is opened, and a log closed cleanly writes a marker naming the generation of its run.
/// A marker is trusted only if it names the previous run: a log opened in the previous run and
/// written to has no marker of that run (opening removed the older one, without an fsync, which
/// is the point: a removal undone by a power loss leaves a marker of an older generation, which
/// is not trusted). So starting costs two fsyncs in all, not one directory fsync per log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Generations {
    pub previous: Previous,
    pub current: u64,
}

/// The generation the data directory had before this open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Previous {
    /// No generation file: a directory new or written by a version without generations, whose
    /// markers (`clean`, no generation) were removed durably at every open, so are trusted.
    Unversioned,
    Generation(u64),
    /// The file is unreadable: no marker is trusted.
    Unknown,
}

/// What a log's clean-shutdown marker says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CleanMarker {
    Absent,
    /// Written by a version without generations.
    Unversioned,
    Generation(u64),
    Unreadable,
}

impl Generations {
    /// Whether a log with `marker` was closed cleanly and not written since.
    pub fn trusts(&self, marker: CleanMarker) -> bool {
        match (marker, self.previous) {
            (CleanMarker::Unversioned, Previous::Unversioned) => true,
            (CleanMarker::Generation(g), Previous::Generation(p)) => g == p,
            _ => false,
        }
    }
}

/// Reads the data directory's generation and durably writes the next one.
pub(crate) fn next_generation(root: &Path) -> io::Result<Generations> {
    let previous = match fs::read_to_string(root.join(GENERATION_FILE)) {
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(g) => Previous::Generation(g),
            Err(_) => Previous::Unknown,
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Previous::Unversioned,
        Err(e) => return Err(e),
    };
    let current = match previous {
        Previous::Generation(g) => g.saturating_add(1),
        Previous::Unversioned => 1,
        // Above any generation a marker can name (unless the clock is badly wrong, in which
        // case some marker is just not trusted).
        Previous::Unknown => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(u64::MAX / 2, |d| d.as_secs() << 20),
    };
    write_atomic(root, GENERATION_FILE, format!("{current}\n").as_bytes())?;
    Ok(Generations { previous, current })
}

/// Writes the clean-shutdown marker of `generation` durably.
pub(crate) fn mark_clean(dir: &Path, generation: u64) -> io::Result<()> {
    write_atomic(
        dir,
        CLEAN_SHUTDOWN_FILE,
        format!("clean {generation}\n").as_bytes(),
    )
}

/// Reads the clean-shutdown marker.
pub(crate) fn read_clean(dir: &Path) -> CleanMarker {
    match fs::read_to_string(dir.join(CLEAN_SHUTDOWN_FILE)) {
        Ok(text) => match text.trim().strip_prefix("clean") {
            Some("") => CleanMarker::Unversioned,
            Some(g) => g
                .trim()
                .parse()
                .map_or(CleanMarker::Unreadable, CleanMarker::Generation),
            None => CleanMarker::Unreadable,
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => CleanMarker::Absent,
        Err(_) => CleanMarker::Unreadable,
    }
}

/// Removes the clean-shutdown marker as a log opens. Durably only when it names the current
/// generation (the log was closed and is reopened within this run): that marker would be
/// trusted by the next run if a crash undid its removal. Any other marker can never be trusted
/// again, so its removal needs no fsync.
pub(crate) fn remove_clean(dir: &Path, marker: CleanMarker, current: u64) -> io::Result<()> {
    if marker == CleanMarker::Absent {
        return Ok(());
    }
    match fs::remove_file(dir.join(CLEAN_SHUTDOWN_FILE)) {
        Ok(()) if marker == CleanMarker::Generation(current) => sync_dir(dir),
        Ok(()) => Ok(()),
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
    fn clean_markers_are_trusted_only_from_the_previous_generation() {
        let root = tempfile::tempdir().expect("tempdir");
        let log = tempfile::tempdir().expect("tempdir");
        assert_eq!(read_clean(log.path()), CleanMarker::Absent);
        // A directory from before generations: its unversioned markers are trusted once.
        fs::write(log.path().join(CLEAN_SHUTDOWN_FILE), "clean\n").expect("write");
        let first = next_generation(root.path()).expect("generation");
        assert_eq!(first.previous, Previous::Unversioned);
        assert!(first.trusts(read_clean(log.path())));
        remove_clean(log.path(), read_clean(log.path()), first.current).expect("remove");
        assert_eq!(read_clean(log.path()), CleanMarker::Absent);

        mark_clean(log.path(), first.current).expect("mark");
        let second = next_generation(root.path()).expect("generation");
        assert_eq!(second.previous, Previous::Generation(first.current));
        assert!(second.trusts(read_clean(log.path())));
        // The same marker, resurrected in a later run (its removal lost to a crash), is not.
        let third = next_generation(root.path()).expect("generation");
        assert!(!third.trusts(read_clean(log.path())));
        // Nor an unversioned one once generations exist, nor garbage.
        fs::write(log.path().join(CLEAN_SHUTDOWN_FILE), "clean\n").expect("write");
        assert!(!third.trusts(read_clean(log.path())));
        fs::write(log.path().join(CLEAN_SHUTDOWN_FILE), "clean x").expect("write");
        assert_eq!(read_clean(log.path()), CleanMarker::Unreadable);
        // An unreadable generation file trusts nothing and moves past every marker.
        fs::write(root.path().join(GENERATION_FILE), "zz").expect("write");
        let unknown = next_generation(root.path()).expect("generation");
        assert_eq!(unknown.previous, Previous::Unknown);
        assert!(unknown.current > third.current);
        mark_clean(log.path(), third.current).expect("mark");
        assert!(!unknown.trusts(read_clean(log.path())));
    }
}
