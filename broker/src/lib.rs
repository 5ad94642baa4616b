//! The Weir broker: glues the Kafka protocol (`weir-protocol`) to the storage engine
//! (`weir-storage`). It owns tokio, sockets, the clock, and all broker state (topics, groups,
//! offsets, producer ids). See ARCHITECTURE.md for the map.

pub mod admin_http;
pub mod authz;
pub mod broker;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod config_admin;
pub mod console;
pub mod console_api;
pub mod consumer_groups;
pub mod consumer_protocol;
pub mod crash_point;
pub mod dynamic_config;
pub mod errors;
pub mod fetch_sessions;
pub mod groups;
pub mod handlers;
pub mod internal_partitions;
pub mod log_scan;
pub mod metrics;
pub mod offsets;
pub mod partition;
pub mod producer_snapshot;
pub mod producers;
pub mod quota;
pub mod record_checks;
pub mod security;
mod send;
pub mod server;
pub mod share;
pub mod topic_admin;
pub mod topic_config;
pub mod topics;
pub mod txn;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::broker::Broker;

/// How often group timers (session expiry, rebalance deadlines) are checked.
const GROUP_TICK_MS: u64 = 100;
/// How long shutdown waits for in-flight requests before closing anyway.
const SHUTDOWN_GRACE_MS: u64 = 10_000;

/// Runs the broker on `listener` as its first configured listener (a PLAINTEXT one unless the
/// config says otherwise); see [`run_listeners`].
pub async fn run(
    broker: Arc<Broker>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let Some(config) = broker.config.effective_listeners().into_iter().next() else {
        return Err(std::io::Error::other("no listener configured"));
    };
    run_listeners(broker, vec![(config, listener)], shutdown).await
}

/// Runs the broker until `shutdown` resolves, then stops accepting and reading requests, lets
/// in-flight requests finish (answering long polls and parked group calls at once rather than at
/// their deadlines), and flushes and fsyncs every log so the next start has no recovery work.
/// Each listener is served with its own security protocol; connection limits are shared.
pub async fn run_listeners(
    broker: Arc<Broker>,
    listeners: Vec<(security::ListenerConfig, TcpListener)>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let names: Vec<String> = listeners
        .iter()
        .map(|(c, l)| {
            let addr = l
                .local_addr()
                .map_or_else(|_| c.addr.to_string(), |a| a.to_string());
            format!("{}://{addr} ({})", c.name, c.protocol)
        })
        .collect();
    tracing::info!(
        listeners = %names.join(", "),
        data_dir = %broker.config.data_dir.display(),
        cluster_id = %broker.cluster_id,
        fsync = %broker.config.fsync,
        "weir is serving Kafka"
    );
    if broker.cluster.is_none() {
        broker.ensure_cluster_min_insync_replicas().await;
    }
    let limits = server::SharedLimits::new(&broker);
    let mut servers = tokio::task::JoinSet::new();
    for (config, listener) in listeners {
        servers.spawn(server::serve(
            broker.clone(),
            config,
            listener,
            limits.clone(),
            stop_rx.clone(),
        ));
    }
    let timers = tokio::spawn(run_timers(broker.clone(), stop_rx.clone()));
    let cleaner = tokio::spawn(run_log_cleaner(broker.clone(), stop_rx));
    // The cluster's tasks outlive the listener a little: they hand leadership over first.
    let (cluster_stop_tx, cluster_stop_rx) = watch::channel(false);
    if let Some(cluster) = &broker.cluster {
        crate::cluster::runtime::start(cluster, broker.clone(), cluster_stop_rx);
        // Through etcd, seen back through the watch the runtime now follows.
        let b = broker.clone();
        tokio::spawn(async move { b.ensure_cluster_min_insync_replicas().await });
    }
    shutdown.await;
    if let Some(cluster) = &broker.cluster {
        cluster.hand_over(&broker).await;
    }
    let _ = stop_tx.send(true);
    broker.begin_shutdown();
    let all_done = async { while servers.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_millis(SHUTDOWN_GRACE_MS), all_done)
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish within {SHUTDOWN_GRACE_MS} ms");
    }
    timers.abort();
    cleaner.abort();
    let _ = cluster_stop_tx.send(true);
    let b = broker.clone();
    tokio::task::spawn_blocking(move || b.shutdown())
        .await
        .map_err(std::io::Error::other)?;
    tracing::info!("shutdown complete");
    Ok(())
}

/// Re-reads TLS certificates and keys and the JWKS (on SIGHUP: `always`; on the timer: only if a
/// file changed). Open connections keep what they negotiated; a bad file keeps the old settings.
pub fn reload_security(broker: &Broker, always: bool) {
    let result = if always {
        broker.security.reload()
    } else {
        broker.security.reload_if_changed()
    };
    match result {
        Ok(true) => tracing::info!("reloaded TLS certificates and keys / JWKS"),
        Ok(false) => {}
        Err(e) => {
            tracing::error!(error = %e, "cannot reload security files; keeping the current ones")
        }
    }
}

/// The log cleaner (Kafka's, one thread): every `log_cleaner_backoff_ms` a pass over the
/// compacted partitions. Its own task, so that a long pass delays no other timer.
async fn run_log_cleaner(broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(
        broker.config.log_cleaner_backoff_ms.max(100),
    ));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {
                let b = broker.clone();
                let now = b.now_ms();
                if let Ok(passes) = tokio::task::spawn_blocking(move || b.topics.compact_logs(now)).await {
                    for (topic, stats) in passes {
                        let labels = crate::metrics::TopicLabels { topic };
                        broker.metrics.log_cleaner_removed_records.get_or_create(&labels).inc_by(stats.records_removed);
                        broker.metrics
                            .log_cleaner_reclaimed_bytes
                            .get_or_create(&labels)
                            .inc_by(stats.bytes_before.saturating_sub(stats.bytes_after));
                    }
                }
            }
        }
    }
}

async fn run_timers(broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    let mut group_tick = tokio::time::interval(Duration::from_millis(GROUP_TICK_MS));
    let mut retention_tick = tokio::time::interval(Duration::from_millis(
        broker.config.log_retention_check_interval_ms.max(1_000),
    ));
    let mut recovery_point_tick = tokio::time::interval(Duration::from_millis(
        broker.config.log_recovery_point_interval_ms.max(100),
    ));
    let reload_ms = broker.config.security.security_reload_check_interval_ms;
    let mut reload_tick = tokio::time::interval(Duration::from_millis(reload_ms.max(100)));
    let mut txn_tick = tokio::time::interval(Duration::from_millis(
        broker
            .config
            .transaction_abort_timed_out_transaction_cleanup_interval_ms
            .max(1),
    ));
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = group_tick.tick() => {
                let b = broker.clone();
                let now = b.now_ms();
                let ticked = tokio::task::spawn_blocking(move || b.tick_groups(now)).await;
                if !matches!(ticked, Ok(Ok(()))) {
                    tracing::error!("consumer group changes failed to reach {}", crate::offsets::OFFSETS_TOPIC);
                }
            }
            _ = retention_tick.tick() => {
                let b = broker.clone();
                let now = b.now_ms();
                let _ = tokio::task::spawn_blocking(move || b.topics.enforce_retention(now)).await;
            }
            _ = recovery_point_tick.tick() => {
                let b = broker.clone();
                let _ = tokio::task::spawn_blocking(move || b.topics.checkpoint_recovery_points()).await;
            }
            _ = txn_tick.tick() => crate::txn::markers::tick(&broker).await,
            _ = reload_tick.tick(), if reload_ms > 0 => {
                let b = broker.clone();
                let _ = tokio::task::spawn_blocking(move || reload_security(&b, false)).await;
            }
        }
    }
}
