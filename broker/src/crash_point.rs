//! Crash points: a test seam that aborts the process at a named point of the code, as a
//! `kill -9` landing exactly there would, so that tests can check what a crash between two
//! steps leaves behind when no signal could hit that moment reliably. Inert unless the
//! environment variable `WEIR_CRASH_AT` names a point when the process first reaches one;
//! never set it outside tests.

use std::sync::OnceLock;

/// The dead letters of a share-partition are in the dead-letter partition (committed there),
/// and not yet archived in the share state (`share::dlq`).
pub const DEAD_LETTERS_SENT: &str = "dead-letters-sent";

/// The environment variable naming the crash point armed in this process.
pub const ENV: &str = "WEIR_CRASH_AT";

/// Aborts the process if `point` is the armed crash point.
pub fn reached(point: &str) {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| std::env::var(ENV).ok().filter(|p| !p.is_empty()));
    if armed.as_deref() == Some(point) {
        tracing::error!(point, "crash point reached: aborting ({ENV})");
        std::process::abort();
    }
}
