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

use crate::authz::Authorizer;
use crate::clock::Clock;
use crate::cluster::runtime::Cluster;
use crate::config::BrokerConfig;
use crate::consumer_groups::records::GroupRecord;
use crate::consumer_groups::{ConsumerGroupConfig, ConsumerGroups, TopicsView};
use crate::dynamic_config::DynamicConfigs;
use crate::fetch_sessions::FetchSessions;
use crate::groups::{GroupConfig, GroupCoordinator};
use crate::internal_partitions::{follow_every_local, PartitionOwner};
use crate::metrics::{Metrics, TimedFileSync};
use crate::offsets::{GroupRecordsWrite, OffsetPartition, OffsetStore};
use crate::partition::{LocalRaftIo, RaftIo};
use crate::producers::ProducerIdAllocator;
use crate::quota::ClientQuotas;
use crate::security::credentials::ClusterCredentialStore;
use crate::security::Security;
use crate::share::ShareCoordinator;
use crate::topics::{ReplicaContext, TopicRegistry};

pub struct Broker {
    pub config: BrokerConfig,
    pub cluster_id: String,
    /// The cluster this broker belongs to (`None`: a single node).
    pub cluster: Option<Arc<Cluster>>,
    pub data: Arc<DataDir>,
    pub topics: TopicRegistry,
    pub offsets: OffsetStore,
    /// Classic groups (JoinGroup/SyncGroup). Lock before `consumer_groups` when taking both.
    pub groups: Mutex<GroupCoordinator>,
    /// Consumer-protocol groups (ConsumerGroupHeartbeat, KIP-848).
    pub consumer_groups: Mutex<ConsumerGroups>,
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
    /// Share groups (KIP-932) and their durable state.
    pub share: ShareCoordinator,
    share_ticks: std::sync::atomic::AtomicU64,
    /// TLS settings, SCRAM credentials, JWT keys (see `security`).
    pub security: Arc<Security>,
    /// ACLs and who may do what (see `authz`).
    pub authorizer: Authorizer,
    /// Client quotas and the rates measured against them (see `quota`).
    pub quotas: ClientQuotas,
    /// The transaction coordinator's state (see `txn`).
    pub txn: crate::txn::TxnCoordinator,
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
    #[error(transparent)]
    Acls(#[from] crate::authz::AclError),
    #[error(transparent)]
    Quotas(#[from] crate::quota::QuotaError),
    #[error(transparent)]
    Transactions(#[from] crate::txn::TxnError),
}

/// Threads writing the producer snapshots of a clean shutdown.
const SHUTDOWN_SNAPSHOT_THREADS: usize = 8;

/// How many group ticks pass between looks for share state of deleted topics.
const SHARE_TOPIC_CHECK_TICKS: u64 = 50;

fn consumer_group_config(config: &BrokerConfig) -> ConsumerGroupConfig {
    ConsumerGroupConfig {
        heartbeat_interval_ms: config.group_consumer_heartbeat_interval_ms,
        session_timeout_ms: config.group_consumer_session_timeout_ms,
        assignors: config.group_consumer_assignors.clone(),
        max_size: config.group_consumer_max_size,
    }
}

fn classic_group_config(config: &BrokerConfig) -> GroupConfig {
    GroupConfig {
        min_session_timeout_ms: config.group_min_session_timeout_ms,
        max_session_timeout_ms: config.group_max_session_timeout_ms,
        initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
        ..GroupConfig::default()
    }
}

/// One line on what opening the partitions' logs recovered after an unclean shutdown.
fn log_recovery(topics: &TopicRegistry) {
    let (mut logs, mut checked_bytes, mut dropped_bytes, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    for topic in topics.all() {
        for p in topic.local_partitions() {
            let r = p.log.recovered();
            if r == weir_storage::Recovered::default() {
                continue;
            }
            logs += 1;
            checked_bytes += r.checked_bytes;
            dropped_bytes += r.dropped_bytes;
            bytes += p.log.active_segment_size();
        }
    }
    if logs > 0 {
        tracing::info!(
            logs,
            tail_bytes = bytes,
            checked_bytes,
            dropped_bytes,
            "recovered the tails of logs not closed cleanly (the CRC checked only after their recovery points)"
        );
    }
}

/// Rebuilds the groups of one offsets partition (those `in_partition` selects) in the group
/// coordinators from what the partition replayed: consumer groups from their records, share
/// groups from their epochs (members join again), classic groups (whose membership is not
/// persisted) as empty groups.
fn rebuild_groups(
    offsets: &OffsetPartition,
    topics: &TopicRegistry,
    coordinator: &mut GroupCoordinator,
    consumer_groups: &mut ConsumerGroups,
    share_groups: &mut crate::share::group::ShareGroups,
    now_ms: i64,
    in_partition: impl Fn(&str) -> bool,
) {
    for (key, value) in offsets.group_records() {
        match GroupRecord::decode(&key, Some(&value)) {
            Ok(Some(GroupRecord::ShareGroupEpoch {
                group_id,
                epoch: Some(epoch),
            })) => share_groups.restore(&group_id, epoch),
            Ok(Some(record)) => consumer_groups.replay(record, now_ms),
            Ok(None) => {}
            Err(reason) => {
                tracing::warn!(%reason, "skipping an unreadable consumer group record");
            }
        }
    }
    consumer_groups.finish_replay_of(&topics_view(topics), &in_partition);
    for group in offsets.groups() {
        // Groups known only through committed offsets are (empty) classic groups, unless they
        // are consumer groups.
        if !consumer_groups.contains(&group) && !share_groups.contains(&group) {
            coordinator.ensure_group(&group);
        }
    }
}

/// The group coordinators as owners of the `__consumer_offsets` partitions this broker leads.
pub struct GroupPartitions<'a>(pub &'a Broker);

impl PartitionOwner for GroupPartitions<'_> {
    type Error = crate::offsets::OffsetError;

    fn loaded(&self) -> Vec<(i32, Arc<crate::partition::Partition>)> {
        self.0
            .offsets
            .loaded()
            .into_iter()
            .map(|(i, p)| (i, p.partition().clone()))
            .collect()
    }

    fn load(
        &self,
        index: i32,
        partition: Arc<crate::partition::Partition>,
        partition_count: i32,
    ) -> Result<(), Self::Error> {
        self.0.load_groups(index, partition, partition_count)
    }

    fn unload(&self, index: i32) {
        self.0.unload_groups(index);
    }
}

/// The share coordinator's side of the share state topic: each partition this broker leads
/// holds the durable state of the share-partitions whose keys hash to it (see `share::store`).
pub struct ShareStatePartitions<'a>(pub &'a Broker);

impl PartitionOwner for ShareStatePartitions<'_> {
    type Error = crate::offsets::OffsetError;

    fn loaded(&self) -> Vec<(i32, Arc<crate::partition::Partition>)> {
        self.0.share.state_partitions()
    }

    fn load(
        &self,
        index: i32,
        partition: Arc<crate::partition::Partition>,
        partition_count: i32,
    ) -> Result<(), Self::Error> {
        self.0
            .share
            .load_state_partition(index, partition, partition_count, |group| {
                self.0.is_group_coordinator(group)
            })
    }

    fn unload(&self, index: i32) {
        self.0.share.unload_state_partition(index);
    }
}

fn topics_view(topics: &TopicRegistry) -> TopicsView {
    let mut view = TopicsView::default();
    for t in topics.all() {
        view.insert(
            &t.name,
            t.id,
            i32::try_from(t.partition_count()).unwrap_or(i32::MAX),
        );
    }
    view
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
        Self::open_inner(config, clock, metrics, file_io, None)
    }

    /// Opens a broker of a cluster: its metadata comes from etcd through `cluster` (already
    /// connected), and its partitions are the replicas the metadata assigns to it.
    pub fn open_clustered(
        config: BrokerConfig,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        cluster: Arc<Cluster>,
    ) -> Result<Arc<Self>, OpenError> {
        Self::open_inner(config, clock, metrics, OsFileSync, Some(cluster))
    }

    fn open_inner<S: FileSync>(
        config: BrokerConfig,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        file_io: S,
        cluster: Option<Arc<Cluster>>,
    ) -> Result<Arc<Self>, OpenError> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let meta_dir = dir.join("__weir_meta");
        std::fs::create_dir_all(&meta_dir).map_err(io_err(&meta_dir))?;
        let cluster_file = meta_dir.join("cluster_id");
        let cluster_id = match (&cluster, std::fs::read_to_string(&cluster_file)) {
            (Some(c), _) => c
                .store
                .with_view(|v| v.cluster_id.clone())
                .unwrap_or_default(),
            (None, Ok(id)) => id.trim().to_string(),
            (None, Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = new_cluster_id();
                std::fs::write(&cluster_file, &id).map_err(io_err(&cluster_file))?;
                id
            }
            (None, Err(e)) => return Err(io_err(&cluster_file)(e)),
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
        let io: Arc<dyn RaftIo> = match &cluster {
            Some(c) => c.io.clone(),
            None => Arc::new(LocalRaftIo {
                clock: clock.clone(),
            }),
        };
        let replicas = ReplicaContext {
            node_id: config.node_id,
            io,
            election_timeout_ms: config.replica_election_timeout_ms,
            election_jitter_ms: config.replica_election_timeout_ms,
        };
        let (topics, offsets_topic, producer_ids, share_state_topic) = match &cluster {
            Some(c) => {
                let topics =
                    TopicRegistry::open_clustered(&dir, data.clone(), config.fsync, replicas)?;
                topics.apply_view(&c.store.view())?;
                // A group is coordinated by the leader of its offsets partition: this broker
                // loads a partition's groups when it becomes that leader (`cluster::runtime`).
                let producer_ids = ProducerIdAllocator::open_clustered(&meta_dir, config.node_id)
                    .map_err(io_err(&meta_dir))?;
                // Share state follows the leaders of the share state partitions.
                (topics, None, producer_ids, None)
            }
            None => {
                let topics = TopicRegistry::open(&dir, data.clone(), config.fsync, replicas)?;
                // A single node leads every offsets partition: all are loaded below.
                let offsets_topic =
                    OffsetStore::open_topic(&topics, config.offsets_topic_num_partitions)?;
                let producer_ids =
                    ProducerIdAllocator::open(&meta_dir).map_err(io_err(&meta_dir))?;
                let share_state_topic = crate::share::store::open_topic(
                    &topics,
                    config.share_coordinator_state_topic_num_partitions,
                )?;
                (
                    topics,
                    Some(offsets_topic),
                    producer_ids,
                    Some(share_state_topic),
                )
            }
        };
        log_recovery(&topics);
        let share = ShareCoordinator::new(config.share.clone());
        let configs = DynamicConfigs::open(&meta_dir).map_err(io_err(&meta_dir))?;
        let security = Arc::new(match &cluster {
            Some(c) => {
                let credentials = Arc::new(
                    ClusterCredentialStore::open(c.store.clone(), &meta_dir)
                        .map_err(crate::security::SecurityError::from)?,
                );
                // Until the bootstrap users are in etcd they are served from the file.
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    let moving = credentials.clone();
                    runtime.spawn(async move { moving.move_bootstrap_users().await });
                }
                Security::open_with_store(
                    &config.security,
                    &config.effective_listeners(),
                    credentials,
                )?
            }
            None => Security::open(&config.security, &config.effective_listeners(), &meta_dir)?,
        });
        let authorizer = match &cluster {
            Some(c) => Authorizer::clustered(config.authorizer.clone(), c.store.clone()),
            None => Authorizer::open_local(config.authorizer.clone(), &meta_dir)?,
        };
        let quotas = match &cluster {
            Some(c) => ClientQuotas::clustered(c.store.clone()),
            None => ClientQuotas::open_local(&meta_dir)?,
        };
        let broker = Arc::new(Self {
            groups: Mutex::new(GroupCoordinator::new(classic_group_config(&config))),
            consumer_groups: Mutex::new(ConsumerGroups::new(consumer_group_config(&config))),
            config,
            cluster_id,
            cluster,
            data,
            topics,
            offsets: OffsetStore::new(),
            producer_ids,
            fetch_sessions: Mutex::new(FetchSessions::default()),
            appended: Notify::new(),
            stopping: AtomicBool::new(false),
            clock,
            metrics,
            configs,
            share,
            share_ticks: std::sync::atomic::AtomicU64::new(0),
            security,
            authorizer,
            quotas,
            txn: crate::txn::TxnCoordinator::default(),
        });
        if let Some(topic) = offsets_topic {
            if let Err(e) = follow_every_local(&GroupPartitions(&broker), &topic) {
                broker.shutdown();
                return Err(e.into());
            }
            // A single node leads every transaction state partition too (if the topic exists:
            // it is created by the first transactional producer).
            if let Err(e) = broker.txn.load_local(&broker.topics) {
                broker.shutdown();
                return Err(e.into());
            }
        }
        // After the groups (a single node coordinates every group), the share state: a single
        // node leads every partition of the share state topic.
        if let Some(topic) = share_state_topic {
            if let Err(e) = follow_every_local(&ShareStatePartitions(&broker), &topic) {
                broker.shutdown();
                return Err(e.into());
            }
        }
        broker.refresh_topic_defaults();
        Ok(broker)
    }

    /// Who leads a partition per the cluster metadata (`None` on a single node or if unknown).
    pub fn cluster_leader(
        &self,
        topic: &str,
        partition: i32,
    ) -> Option<crate::cluster::metadata::LeaderRecord> {
        let c = self.cluster.as_ref()?;
        c.store
            .with_view(|v| v.leaders.get(&(topic.to_string(), partition)).cloned())
    }

    /// Whether broker `id` is registered (alive) in the cluster; on a single node only itself.
    pub fn is_broker_alive(&self, id: i32) -> bool {
        match &self.cluster {
            Some(c) => c.store.with_view(|v| v.brokers.contains_key(&id)),
            None => id == self.config.node_id,
        }
    }

    /// Every broker's id, host, port and rack (this one alone on a single node), with the
    /// addresses of the listener the current request came on.
    pub fn live_brokers(&self) -> Vec<crate::cluster::metadata::BrokerRecord> {
        match &self.cluster {
            Some(c) => {
                let listener = CURRENT_LISTENER.try_with(|name| name.clone()).ok();
                c.store.with_view(|v| {
                    v.brokers
                        .values()
                        .map(|b| b.clone().for_listener(listener.as_deref()))
                        .collect()
                })
            }
            None => {
                let (host, port) = self.advertised();
                vec![crate::cluster::metadata::BrokerRecord {
                    id: self.config.node_id,
                    host,
                    port,
                    rack: None,
                    endpoints: Vec::new(),
                }]
            }
        }
    }

    /// One live broker as [`Broker::live_brokers`] describes it.
    pub fn broker_record(&self, id: i32) -> Option<crate::cluster::metadata::BrokerRecord> {
        let c = self.cluster.as_ref()?;
        let listener = CURRENT_LISTENER.try_with(|name| name.clone()).ok();
        c.store.with_view(|v| {
            v.brokers
                .get(&id)
                .map(|b| b.clone().for_listener(listener.as_deref()))
        })
    }

    /// A new producer id, or the error Kafka answers when none can be allocated.
    pub fn new_producer_id(&self) -> Result<i64, weir_protocol::ErrorCode> {
        self.producer_ids.next().map_err(|e| {
            tracing::error!(error = %e, "cannot allocate a producer id");
            weir_protocol::ErrorCode::KAFKA_STORAGE_ERROR
        })
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The topics as the consumer group coordinator sees them.
    pub fn topics_view(&self) -> TopicsView {
        topics_view(&self.topics)
    }

    /// Queues the consumer group coordinator's pending records in their groups' partitions of
    /// `__consumer_offsets`. Call with the coordinator locked, so the logs have the changes in the
    /// order they were made; then wait for the result with [`Broker::wait_group_records`].
    pub fn queue_group_records(
        &self,
        coordinator: &mut ConsumerGroups,
        now_ms: i64,
    ) -> Result<GroupRecordsWrite, crate::offsets::OffsetError> {
        let records: Vec<_> = coordinator
            .take_records()
            .iter()
            .map(|r| {
                let (key, value) = r.encode();
                (r.group_id().to_string(), key, value)
            })
            .collect();
        self.offsets.append_group_records(records, now_ms)
    }

    /// Blocks until queued group records are durable.
    pub fn wait_group_records(
        &self,
        pending: GroupRecordsWrite,
        now_ms: i64,
    ) -> Result<(), crate::offsets::OffsetError> {
        self.offsets.wait_group_records(pending, now_ms)
    }

    /// Group timers: classic sessions and rebalances, consumer-group sessions and revocations
    /// (whose removals are written to the log).
    pub fn tick_groups(&self, now_ms: i64) -> Result<(), crate::offsets::OffsetError> {
        let pending = {
            let mut classic = self.groups.lock();
            classic.tick(now_ms);
            let mut cg = self.consumer_groups.lock();
            cg.tick(now_ms);
            // A consumer-protocol member's session ran out in a group of classic members.
            for group in cg.take_downgrades() {
                classic.adopt(group, now_ms);
            }
            self.queue_group_records(&mut cg, now_ms)?
        };
        self.wait_group_records(pending, now_ms)?;
        self.tick_share(now_ms)
    }

    /// Share group timers: member sessions, record locks, the bound on the share state log, and
    /// the state of deleted topics.
    fn tick_share(&self, now_ms: i64) -> Result<(), crate::offsets::OffsetError> {
        // Leader side, on every broker: drop the share-partitions of data partitions no longer
        // led here (at the epoch they were loaded under), then their timers and dead letters.
        let dropped = self.share.drop_unled(|(_, topic_id, index)| {
            let topic = self.topics.by_id(*topic_id)?;
            self.topics.partition(&topic.name, *index)?.leader_epoch()
        });
        if dropped > 0 {
            tracing::info!(dropped, "share-partitions dropped: their leadership moved");
        }
        let mut pending = self.share.tick(now_ms);
        pending.extend(crate::share::dlq::run(self, now_ms));
        // Group coordinator side: the members of the share groups coordinated here.
        pending.extend(self.share.tick_groups(&self.offsets, now_ms));
        // Owner side (the state partitions led here): the state of deleted topics, the bound on
        // each partition's log.
        let ticks = self.share_ticks.fetch_add(1, Ordering::Relaxed);
        if ticks.is_multiple_of(SHARE_TOPIC_CHECK_TICKS) {
            pending.extend(
                self.share
                    .forget_deleted_topics(|id| self.topics.by_id(*id).is_some(), now_ms),
            );
        }
        self.share.wait(pending)?;
        self.share.compact_if_due(now_ms)
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

    /// Whether this broker coordinates `group` now: it leads (and has loaded) the group's
    /// partition of `__consumer_offsets`. On a single node, which leads every partition, always.
    pub fn is_group_coordinator(&self, group: &str) -> bool {
        self.offsets.owns(group)
    }

    /// Loads the groups of offsets partition `index` (this broker leads it now): replays the
    /// partition and rebuilds its groups next to the groups of the other partitions. Blocking.
    fn load_groups(
        &self,
        index: i32,
        partition: Arc<crate::partition::Partition>,
        partition_count: i32,
    ) -> Result<(), crate::offsets::OffsetError> {
        // Replayed before the groups are locked: other groups go on meanwhile, and this
        // partition's groups are not coordinated here until it is installed below.
        let loaded = self.offsets.replay(partition)?;
        let in_partition =
            |id: &str| crate::internal_partitions::partition_for(id, partition_count) == index;
        let mut classic = self.groups.lock();
        let mut cg = self.consumer_groups.lock();
        let mut share = self.share.groups.lock();
        // Leftovers of an earlier term as this partition's leader.
        classic.unload(in_partition);
        cg.unload(in_partition);
        share.unload(in_partition);
        rebuild_groups(
            &loaded,
            &self.topics,
            &mut classic,
            &mut cg,
            &mut share,
            self.now_ms(),
            in_partition,
        );
        self.offsets.install(index, loaded, partition_count);
        tracing::info!(
            partition = index,
            "coordinating the groups of {} partition {index}",
            crate::offsets::OFFSETS_TOPIC
        );
        Ok(())
    }

    /// Drops the groups of offsets partition `index` (another broker leads it now): their
    /// parked JoinGroup/SyncGroup calls are answered NOT_COORDINATOR. Blocking.
    fn unload_groups(&self, index: i32) {
        let mut classic = self.groups.lock();
        let mut cg = self.consumer_groups.lock();
        let mut share = self.share.groups.lock();
        let in_partition = |id: &str| self.offsets.partition_of(id) == Some(index);
        self.offsets.unload(index);
        classic.unload(in_partition);
        cg.unload(in_partition);
        share.unload(in_partition);
        tracing::info!(
            partition = index,
            "no longer coordinating the groups of {} partition {index}",
            crate::offsets::OFFSETS_TOPIC
        );
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

    /// Writes a producer snapshot at the end of every local log, then flushes and fsyncs every log
    /// and stops the storage writer: the next start has no recovery work and reads no log.
    pub fn shutdown(&self) {
        let partitions: Vec<Arc<crate::partition::Partition>> = self
            .topics
            .all()
            .iter()
            .flat_map(|t| t.local_partitions().cloned().collect::<Vec<_>>())
            .collect();
        // A snapshot is a write and (per the fsync policy) two fsyncs: spread them over a few
        // threads, as the data directory closes its logs.
        let chunk = partitions.len().div_ceil(SHUTDOWN_SNAPSHOT_THREADS).max(1);
        std::thread::scope(|scope| {
            for part in partitions.chunks(chunk) {
                scope.spawn(move || {
                    for p in part {
                        if !p.log.is_closed() {
                            p.producers.lock().write_snapshot(&p.log);
                        }
                    }
                });
            }
        });
        self.data.shutdown();
    }
}
