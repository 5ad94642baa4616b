//! Shared by the binary-level tests (cli, metrics, shutdown): start the built `weir` binary on free
//! ports in a temporary data directory, wait for readiness over the admin API, run CLI commands,
//! and make plain HTTP GETs.

#![allow(dead_code)]

pub mod cluster;
pub mod inproc;
pub mod kafka;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_weir");
/// Upper bound for the broker to become ready; only a hang guard, never an assertion on speed.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// The wall clock in milliseconds. Records a test writes carry it: segments whose newest
/// timestamp is older than `retention.ms` (7 days by default) are deleted by the retention pass
/// that runs as the broker starts, and a wholly expired log is emptied, so a record stamped in the
/// past would vanish under the test's feet after a restart.
pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since.as_millis()).expect("millis fit")
}

/// A port on 127.0.0.1 nothing listens on, below the kernel's ephemeral range: the kernel never
/// gives such a port to an outgoing connection, so no client (not even one reconnecting to a
/// stopped broker's port and connecting to itself) can hold it when the broker restarts there.
/// Never the same port twice in one process.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    static STATE: AtomicU64 = AtomicU64::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u16, ephemeral_low.saturating_sub(1).max(10_001));
    // A per-process seed (the pid and the clock) and a step per call: parallel test processes
    // start from different ports.
    let seed = u64::from(std::process::id()) ^ now_ms().unsigned_abs();
    let _ = STATE.compare_exchange(0, seed | 1, Ordering::Relaxed, Ordering::Relaxed);
    for _ in 0..10_000 {
        let x = STATE
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let span = u64::from(high - low) + 1;
        let port = low + u16::try_from((x >> 33) % span).expect("within the span");
        let mut handed_out = HANDED_OUT.lock().expect("port list");
        if handed_out.contains(&port) || TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        handed_out.push(port);
        return port;
    }
    panic!("no free port in {low}..={high}");
}

pub struct Broker {
    pub child: Option<Child>,
    pub kafka: SocketAddr,
    pub admin: SocketAddr,
    pub dir: tempfile::TempDir,
    extra: Vec<String>,
    /// Where the broker's stderr (its log) goes; `stderr.log` in `dir` unless started with
    /// [`Broker::start_with_stderr`].
    stderr_to: Option<PathBuf>,
}

impl Broker {
    /// Starts `weir serve` with `extra` flags and waits until `/v1/ready` answers 200.
    pub fn start(extra: &[&str]) -> Broker {
        Self::start_logging_to(extra, None)
    }

    /// Starts `weir serve` with its stderr appended to `stderr` (say `/dev/full`, a device on
    /// which every write fails as on a full disk) instead of the test's log file.
    pub fn start_with_stderr(extra: &[&str], stderr: &Path) -> Broker {
        Self::start_logging_to(extra, Some(stderr.to_path_buf()))
    }

    fn start_logging_to(extra: &[&str], stderr_to: Option<PathBuf>) -> Broker {
        let dir = tempfile::tempdir().expect("tempdir");
        let kafka: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let admin_port = free_port();
        let admin: SocketAddr = format!("127.0.0.1:{admin_port}").parse().expect("addr");
        let mut b = Broker {
            child: None,
            kafka,
            admin,
            dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            stderr_to,
        };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        let data = self.dir.path().join("data");
        let log_path = self
            .stderr_to
            .clone()
            .unwrap_or_else(|| self.dir.path().join("stderr.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .expect("log file");
        let child = Command::new(BIN)
            .arg("serve")
            .arg("--listener")
            .arg(self.kafka.to_string())
            .arg("--admin-listener")
            .arg(self.admin.to_string())
            .arg("--data-dir")
            .arg(&data)
            .arg("--group-initial-rebalance-delay-ms")
            .arg("0")
            .args(&self.extra)
            .env_remove("WEIR_CONFIG")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn weir serve");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Stops the broker (SIGTERM, clean shutdown) and starts it again on the same ports and data.
    pub fn restart(&mut self) {
        self.signal("TERM");
        assert_eq!(self.wait(), Some(0), "clean exit:\n{}", self.stderr());
        self.spawn();
    }

    /// Starts the broker again on the same ports and data after it exited (or was killed).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "still running");
        self.spawn();
    }

    /// Starts the broker again on the same ports and data, with `extra` flags instead of the
    /// first start's (a later version's settings, say).
    pub fn start_again_with(&mut self, extra: &[&str]) {
        self.extra = extra.iter().map(|s| s.to_string()).collect();
        self.start_again();
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("weir serve exited early ({status}):\n{}", self.stderr());
                }
            }
            if let Ok((200, _)) = http_get(self.admin, "/v1/ready") {
                return;
            }
            if started.elapsed() > START_DEADLINE {
                panic!("weir serve did not become ready:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs a CLI command against this broker with `stdin` as input.
    pub fn cli(&self, args: &[&str], stdin: &str) -> Output {
        run_cli(&self.kafka.to_string(), args, stdin)
    }

    /// Runs a CLI command that must succeed; returns its stdout.
    pub fn cli_ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.cli(args, stdin);
        assert!(
            out.status.success(),
            "weir {args:?} failed: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Sends `signal` (e.g. "TERM") to the broker process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {pid} failed");
    }

    /// Waits for the broker to exit and returns its exit code.
    pub fn wait(&mut self) -> Option<i32> {
        let mut child = self.child.take().expect("running");
        child.wait().expect("wait for weir").code()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn run_cli(brokers: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .arg("--brokers")
        .arg(brokers)
        .args(args)
        .env_remove("WEIR_BROKERS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weir cli");
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("wait for weir cli")
}

/// A plain HTTP/1.0 GET: (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    Ok((status, body.to_string()))
}

/// GET that must answer 200 with JSON.
pub fn get_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let (status, body) = http_get(addr, path).expect("http get");
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).expect("json body")
}

/// The value of the Prometheus sample `name{labels}` (labels as written, e.g.
/// `topic="t",partition="0"`), if present.
pub fn sample(metrics: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = if labels.is_empty() {
        format!("{name} ")
    } else {
        format!("{name}{{{labels}}} ")
    };
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
