//! The broker's shared state: topics, committed offsets, the group coordinator, producer ids, the
//! clock and the "something was appended" signal that wakes long-polling fetches.
//!
//! One `Broker` per process, shared by every connection task. It owns the storage `DataDir` and is
//! the only place that opens or shuts it down.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;
use weir_storage::{DataDir, DataDirOptions, FileSync, OsFileSync};

use crate::clock::Clock;
use crate::config::BrokerConfig;
use crate::dynamic_config::DynamicConfigs;
use crate::fetch_sessions::FetchSessions;
use crate::groups::{GroupConfig, GroupCoordinator};
use crate::metrics::{Metrics, TimedFileSync};
use crate::offsets::OffsetStore;
use crate::producers::ProducerIdAllocator;
use crate::security::Security;
use crate::topics::TopicRegistry;

pub struct Broker {
    pub config: BrokerConfig,
    pub cluster_id: String,
    pub data: Arc<DataDir>,
    pub topics: TopicRegistry,
    pub offsets: OffsetStore,
    pub groups: Mutex<GroupCoordinator>,
    pub producer_ids: ProducerIdAllocator,
    pub fetch_sessions: Mutex<FetchSessions>,
    /// Notified after every append, so parked fetches re-check their partitions (and at shutdown,
    /// so they answer at once).
    pub appended: Notify,
    /// Set once shutdown has begun: nothing waits for more data or members any more.
    stopping: AtomicBool,
    pub clock: Arc<dyn Clock>,
    /// Prometheus metrics (see `metrics`).
    pub metrics: Arc<Metrics>,
    /// Dynamic BROKER and GROUP configs set through the Admin API.
    pub configs: DynamicConfigs,
    /// TLS settings, SCRAM credentials, JWT keys (see `security`).
    pub security: Arc<Security>,
}

tokio::task_local! {
    /// The listener whose request is being handled, so that [`Broker::advertised`] answers
    /// with that listener's advertised address (set by `server` around `handlers::dispatch`).
    pub static CURRENT_LISTENER: Arc<str>;
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] weir_storage::StorageError),
    #[error(transparent)]
    Topics(#[from] crate::topics::TopicError),
    #[error(transparent)]
    Offsets(#[from] crate::offsets::OffsetError),
    #[error(transparent)]
    Security(#[from] crate::security::SecurityError),
}

/// Kafka cluster ids are 16 random bytes in URL-safe base64 without padding (22 characters).
fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uuid::Uuid::new_v4().as_u128();
    (0..22)
        .map(|i| ALPHABET[((bytes >> (i * 6)) & 63) as usize] as char)
        .collect()
}

fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> OpenError + '_ {
    move |source| OpenError::DataDir {
        path: path.to_path_buf(),
        source,
    }
}

impl Broker {
    /// Opens (recovering) the data directory and everything kept in it.
    pub fn open(config: BrokerConfig, clock: Arc<dyn Clock>) -> Result<Arc<Self>, OpenError> {
        Self::open_with_metrics(config, clock, Arc::new(Metrics::new()))
    }

    /// [`Broker::open`] recording into `metrics` (created before the broker so the admin
    /// listener can serve while the data directory is recovered).
    pub fn open_with_metrics(
        config: BrokerConfig,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, OpenError> {
        Self::open_with(config, clock, metrics, OsFileSync)
    }

    /// [`Broker::open_with_metrics`] with the storage's file operations done by `file_io`
    /// (tests inject disk failures through it).
    pub fn open_with<S: FileSync>(
        config: BrokerConfig,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        file_io: S,
    ) -> Result<Arc<Self>, OpenError> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let meta_dir = dir.join("__weir_meta");
        std::fs::create_dir_all(&meta_dir).map_err(io_err(&meta_dir))?;
        let cluster_file = meta_dir.join("cluster_id");
        let cluster_id = match std::fs::read_to_string(&cluster_file) {
            Ok(id) => id.trim().to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = new_cluster_id();
                std::fs::write(&cluster_file, &id).map_err(io_err(&cluster_file))?;
                id
            }
            Err(e) => return Err(io_err(&cluster_file)(e)),
        };
        let data = DataDir::open_with(
            &dir.join("logs"),
            DataDirOptions {
                file_sync: Arc::new(TimedFileSync {
                    inner: file_io,
                    metrics: metrics.clone(),
                }),
            },
        )?;
        let topics = TopicRegistry::open(&dir, data.clone(), config.fsync)?;
        let offsets = OffsetStore::open(&topics)?;
        let producer_ids = ProducerIdAllocator::open(&meta_dir).map_err(io_err(&meta_dir))?;
        let configs = DynamicConfigs::open(&meta_dir).map_err(io_err(&meta_dir))?;
        let security = Arc::new(Security::open(
            &config.security,
            &config.effective_listeners(),
            &meta_dir,
        )?);
        let mut coordinator = GroupCoordinator::new(GroupConfig {
            min_session_timeout_ms: config.group_min_session_timeout_ms,
            max_session_timeout_ms: config.group_max_session_timeout_ms,
            initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
            ..GroupConfig::default()
        });
        for group in offsets.groups() {
            coordinator.ensure_group(&group);
        }
        Ok(Arc::new(Self {
            config,
            cluster_id,
            data,
            topics,
            offsets,
            groups: Mutex::new(coordinator),
            producer_ids,
            fetch_sessions: Mutex::new(FetchSessions::default()),
            appended: Notify::new(),
            stopping: AtomicBool::new(false),
            clock,
            metrics,
            configs,
            security,
        }))
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// host and port this broker advertises to clients: those of the listener the current
    /// request came on (Kafka answers each listener with its own advertised address), or of
    /// the first listener outside a request.
    pub fn advertised(&self) -> (String, i32) {
        let listeners = self.config.effective_listeners();
        let current = CURRENT_LISTENER.try_with(|name| name.clone()).ok();
        let listener = current
            .and_then(|name| listeners.iter().find(|l| *l.name == *name))
            .or_else(|| listeners.first());
        match listener {
            Some(l) => {
                let (host, port) = l.advertised_host_port();
                (host, i32::from(port))
            }
            None => (
                self.config.listener.ip().to_string(),
                i32::from(self.config.listener.port()),
            ),
        }
    }

    /// Shutdown has begun: parked long-poll fetches answer at once with what they have, parked
    /// JoinGroup/SyncGroup calls are answered NOT_COORDINATOR, and none parks from now on, so
    /// in-flight requests finish in moments instead of holding shutdown up to their time limits.
    pub fn begin_shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        // A fetch checks the flag after registering for this wake-up, so none can miss both.
        self.appended.notify_waiters();
        self.groups.lock().close();
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Flushes and fsyncs every log and stops the storage writer: the next start has no recovery work.
    pub fn shutdown(&self) {
        self.data.shutdown();
    }
}
