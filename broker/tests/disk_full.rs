//! A full disk, injected through the storage's file-operations seam into an in-process broker:
//! the producer gets KAFKA_STORAGE_ERROR, the broker logs the cause once (path and errno) and
//! exposes it as a metric, and logs again when appends succeed once more. A write that fails after
//! offsets were assigned poisons the log for good (until restart), and says so.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::common::inproc::InProcess;
use crate::common::kafka::Conn;
use weir_broker::broker::Broker;
use weir_broker::clock::SystemClock;
use weir_broker::metrics::Metrics;
use weir_protocol::ErrorCode;
use weir_storage::FileSync;

const ENOSPC: i32 = 28;

#[derive(Default)]
struct FullDisk {
    allocate_full: AtomicBool,
    write_full: AtomicBool,
}

struct Disk(Arc<FullDisk>);

impl FileSync for Disk {
    fn sync_data(&self, file: &File) -> io::Result<()> {
        file.sync_data()
    }
    fn write_all_at(&self, file: &File, buf: &[u8], pos: u64) -> io::Result<()> {
        if self.0.write_full.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(ENOSPC));
        }
        std::os::unix::fs::FileExt::write_all_at(file, buf, pos)
    }
    fn allocate(&self, file: &File, from: u64, to: u64) -> io::Result<()> {
        if self.0.allocate_full.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(ENOSPC));
        }
        if to > from {
            file.set_len(to)?;
        }
        Ok(())
    }
}

/// Log output, captured for assertions.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
    fn lines_with(&self, needle: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains(needle))
            .map(String::from)
            .collect()
    }
}

fn start(disk: Arc<FullDisk>) -> InProcess {
    InProcess::start_temp_opened(
        |_| {},
        |config| {
            Broker::open_with(
                config,
                Arc::new(SystemClock),
                Arc::new(Metrics::new()),
                Disk(disk),
            )
            .expect("open broker")
        },
    )
}

fn metrics(b: &Broker) -> String {
    b.metrics.encode(Some(b)).expect("encode metrics")
}

#[test]
fn a_full_disk_is_logged_once_measured_and_recovered_from() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let disk = Arc::new(FullDisk::default());
    let running = start(disk.clone());
    let mut conn = Conn::connect(running.addr);
    conn.create_topic("full", 1, &[]);
    conn.create_topic("poison", 1, &[]);
    let log_dir = running.broker.data.path().join("full-0");

    // The segment cannot grow: every produce fails with KAFKA_STORAGE_ERROR...
    disk.allocate_full.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        let p = conn.produce("full", 0, &[b"x"], &[1]);
        assert_eq!(p.error_code, ErrorCode::KAFKA_STORAGE_ERROR);
    }
    // ...logged once, with the path and errno, and counted by cause.
    let warned = logs.lines_with("appends to this log fail");
    assert_eq!(warned.len(), 1, "{}", logs.text());
    assert!(warned[0].contains("WARN"), "{}", warned[0]);
    assert!(
        warned[0].contains(&log_dir.display().to_string()),
        "{}",
        warned[0]
    );
    assert!(
        warned[0].contains("errno=28") && warned[0].contains("ENOSPC"),
        "{}",
        warned[0]
    );
    let m = metrics(&running.broker);
    assert!(
        m.contains(r#"weir_logs_unable_to_write{cause="ENOSPC",poisoned="false"} 1"#),
        "{m}"
    );

    // Room again: the next produce succeeds, says so, and the gauge clears.
    disk.allocate_full.store(false, Ordering::SeqCst);
    let p = conn.produce("full", 0, &[b"x"], &[1]);
    assert_eq!((p.error_code, p.base_offset), (ErrorCode::NONE, 0));
    let resumed = logs.lines_with("succeed again");
    assert_eq!(resumed.len(), 1, "{}", logs.text());
    assert!(
        resumed[0].contains(&log_dir.display().to_string()),
        "{}",
        resumed[0]
    );
    assert!(!metrics(&running.broker).contains("weir_logs_unable_to_write{"));

    // A write failing after offsets were assigned poisons the log: never retried, even once the
    // disk has room, and reported as such.
    assert_eq!(
        conn.produce("poison", 0, &[b"x"], &[1]).error_code,
        ErrorCode::NONE
    );
    disk.write_full.store(true, Ordering::SeqCst);
    let p = conn.produce("poison", 0, &[b"x"], &[1]);
    assert_eq!(p.error_code, ErrorCode::KAFKA_STORAGE_ERROR);
    disk.write_full.store(false, Ordering::SeqCst);
    let p = conn.produce("poison", 0, &[b"x"], &[1]);
    assert_eq!(p.error_code, ErrorCode::KAFKA_STORAGE_ERROR);
    let poisoned = logs.lines_with("log poisoned");
    assert_eq!(poisoned.len(), 1, "{}", logs.text());
    assert!(poisoned[0].contains("ERROR"), "{}", poisoned[0]);
    let segment = running
        .broker
        .data
        .path()
        .join("poison-0")
        .join("00000000000000000000.log");
    assert!(
        poisoned[0].contains(&segment.display().to_string()),
        "{}",
        poisoned[0]
    );
    assert!(poisoned[0].contains("errno=28"), "{}", poisoned[0]);
    let m = metrics(&running.broker);
    assert!(
        m.contains(r#"weir_logs_unable_to_write{cause="ENOSPC",poisoned="true"} 1"#),
        "{m}"
    );
}
