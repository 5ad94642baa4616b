//! The `weir` binary: command-line parsing, logging setup, signals for `weir serve`, and the
//! operator CLI (`cli/`). With `cli/`, the only place that uses `anyhow`.

mod cli;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use weir_broker::admin_http::{self, AdminState};
use weir_broker::clock::SystemClock;
use weir_broker::config::{parse_optional_addr, BrokerConfig, FileConfig};
use weir_broker::metrics::Metrics;

#[derive(Parser)]
#[command(
    name = "weir",
    version,
    about = "A Kafka-wire-compatible message broker"
)]
struct Cli {
    #[command(flatten)]
    common: cli::Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker (defaults: Kafka on 127.0.0.1:9092, data in ./weir-data, no setup needed).
    Serve(ServeArgs),
    #[command(flatten)]
    Cli(cli::CliCommand),
}

/// Flags override `WEIR_*` environment variables, which override the config file, which overrides defaults.
#[derive(clap::Args)]
struct ServeArgs {
    /// TOML config file (keys as the long flags below, e.g. `data-dir = "/var/lib/weir"`).
    #[arg(long, env = "WEIR_CONFIG")]
    config: Option<PathBuf>,
    /// Kafka listener address.
    #[arg(long, env = "WEIR_LISTENER")]
    listener: Option<SocketAddr>,
    /// host:port advertised to clients in Metadata (default: the listener).
    #[arg(long, env = "WEIR_ADVERTISED_LISTENER")]
    advertised_listener: Option<String>,
    /// Admin HTTP listener for metrics and health ("none" disables it).
    #[arg(long, env = "WEIR_ADMIN_LISTENER")]
    admin_listener: Option<String>,
    /// Data directory.
    #[arg(long, env = "WEIR_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Durability: always | never | interval:<ms>.
    #[arg(long, env = "WEIR_FSYNC")]
    fsync: Option<String>,
    /// Create topics on first use (Kafka's auto.create.topics.enable).
    #[arg(long, env = "WEIR_AUTO_CREATE_TOPICS")]
    auto_create_topics: Option<bool>,
    /// Partitions of auto-created topics (Kafka's num.partitions).
    #[arg(long, env = "WEIR_DEFAULT_PARTITIONS")]
    default_partitions: Option<i32>,
    /// Delay before the first rebalance of a new group (Kafka's group.initial.rebalance.delay.ms).
    #[arg(long, env = "WEIR_GROUP_INITIAL_REBALANCE_DELAY_MS")]
    group_initial_rebalance_delay_ms: Option<i64>,
    /// Heartbeat interval of consumer-protocol group members (group.consumer.heartbeat.interval.ms).
    #[arg(long, env = "WEIR_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS")]
    group_consumer_heartbeat_interval_ms: Option<i32>,
    /// Session timeout of consumer-protocol group members (group.consumer.session.timeout.ms).
    #[arg(long, env = "WEIR_GROUP_CONSUMER_SESSION_TIMEOUT_MS")]
    group_consumer_session_timeout_ms: Option<i32>,
    /// Server assignors for consumer-protocol groups, the first the default (group.consumer.assignors).
    #[arg(long, env = "WEIR_GROUP_CONSUMER_ASSIGNORS")]
    group_consumer_assignors: Option<String>,
    /// Node id of this broker.
    #[arg(long, env = "WEIR_NODE_ID")]
    node_id: Option<i32>,
    /// Most open client connections; more are closed at once (Kafka's max.connections).
    #[arg(long, env = "WEIR_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Most open client connections from one IP address (max.connections.per.ip).
    #[arg(long, env = "WEIR_MAX_CONNECTIONS_PER_IP")]
    max_connections_per_ip: Option<usize>,
    /// Requests read ahead of their responses on one connection.
    #[arg(long, env = "WEIR_MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION")]
    max_in_flight_requests_per_connection: Option<usize>,
    /// Largest request frame accepted; larger ones close the connection (socket.request.max.bytes).
    #[arg(long, env = "WEIR_MAX_REQUEST_BYTES")]
    max_request_bytes: Option<usize>,
    /// Bytes of requests read but not yet answered, over all connections (queued.max.request.bytes).
    #[arg(long, env = "WEIR_MAX_QUEUED_REQUEST_BYTES")]
    max_queued_request_bytes: Option<usize>,
    /// Close connections idle for this long (connections.max.idle.ms).
    #[arg(long, env = "WEIR_CONNECTIONS_MAX_IDLE_MS")]
    connections_max_idle_ms: Option<u64>,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "WEIR_LOG_JSON")]
    log_json: bool,
}

impl ServeArgs {
    fn into_config(self) -> anyhow::Result<(BrokerConfig, bool)> {
        let mut config = BrokerConfig::default();
        if let Some(path) = &self.config {
            FileConfig::load(path)?.apply(&mut config)?;
        }
        if let Some(v) = self.listener {
            config.listener = v;
        }
        if let Some(v) = self.advertised_listener {
            config.advertised_listener = Some(v);
        }
        if let Some(v) = self.admin_listener {
            config.admin_listener = parse_optional_addr(&v).map_err(anyhow::Error::msg)?;
        }
        if let Some(v) = self.data_dir {
            config.data_dir = v;
        }
        if let Some(v) = self.fsync {
            config.fsync = v.parse().map_err(|e| {
                anyhow::anyhow!("--fsync {v}: {e} (use always, never or interval:<ms>)")
            })?;
        }
        if let Some(v) = self.auto_create_topics {
            config.auto_create_topics = v;
        }
        if let Some(v) = self.default_partitions {
            anyhow::ensure!(v >= 1, "--default-partitions must be at least 1");
            config.default_partitions = v;
        }
        if let Some(v) = self.group_initial_rebalance_delay_ms {
            config.group_initial_rebalance_delay_ms = v;
        }
        if let Some(v) = self.group_consumer_heartbeat_interval_ms {
            config.group_consumer_heartbeat_interval_ms = v;
        }
        if let Some(v) = self.group_consumer_session_timeout_ms {
            config.group_consumer_session_timeout_ms = v;
        }
        if let Some(v) = &self.group_consumer_assignors {
            config.group_consumer_assignors = weir_broker::config::parse_assignors(v)
                .map_err(|e| anyhow::anyhow!("--group-consumer-assignors {v}: {e}"))?;
        }
        anyhow::ensure!(
            config.group_consumer_heartbeat_interval_ms >= 1,
            "group-consumer-heartbeat-interval-ms must be at least 1"
        );
        anyhow::ensure!(
            config.group_consumer_session_timeout_ms > config.group_consumer_heartbeat_interval_ms,
            "group-consumer-session-timeout-ms must be above the heartbeat interval"
        );
        if let Some(v) = self.node_id {
            config.node_id = v;
        }
        if let Some(v) = self.max_connections {
            config.max_connections = v;
        }
        if let Some(v) = self.max_connections_per_ip {
            config.max_connections_per_ip = v;
        }
        if let Some(v) = self.max_in_flight_requests_per_connection {
            config.max_in_flight_requests_per_connection = v;
        }
        if let Some(v) = self.max_request_bytes {
            config.max_request_bytes = v;
        }
        if let Some(v) = self.max_queued_request_bytes {
            config.max_queued_request_bytes = v;
        }
        if let Some(v) = self.connections_max_idle_ms {
            config.connections_max_idle_ms = v;
        }
        anyhow::ensure!(
            config.max_connections >= 1,
            "max-connections must be at least 1"
        );
        anyhow::ensure!(
            config.max_connections_per_ip >= 1,
            "max-connections-per-ip must be at least 1"
        );
        anyhow::ensure!(
            config.max_in_flight_requests_per_connection >= 1,
            "max-in-flight-requests-per-connection must be at least 1"
        );
        anyhow::ensure!(
            config.max_request_bytes >= 1024,
            "max-request-bytes must be at least 1024"
        );
        anyhow::ensure!(
            config.max_queued_request_bytes >= 1024,
            "max-queued-request-bytes must be at least 1024"
        );
        anyhow::ensure!(
            config.connections_max_idle_ms >= 1,
            "connections-max-idle-ms must be at least 1"
        );
        Ok((config, self.log_json))
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let (config, json) = args.into_config()?;
            init_logging(json);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(serve(config))
        }
        Command::Cli(command) => {
            if let Err(e) = cli::run(cli.common, command) {
                eprintln!("error: {e:#}");
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

async fn serve(config: BrokerConfig) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listener)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (is another broker running? use --listener)",
                config.listener
            )
        })?;
    let metrics = Arc::new(Metrics::new());
    let admin_state = AdminState::new(metrics.clone(), config.clone());
    let (admin_stop, admin_task) = match config.admin_listener {
        Some(addr) => {
            let admin = tokio::net::TcpListener::bind(addr).await.with_context(|| {
                format!(
                    "cannot listen on admin address {addr} (is another broker running? \
                     use --admin-listener, or --admin-listener none to disable it)"
                )
            })?;
            tracing::info!(admin_listener = %addr, "admin HTTP API and /metrics listening");
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(admin_http::serve(admin, admin_state.clone(), async move {
                let _ = rx.await;
            }));
            (Some(tx), Some(task))
        }
        None => (None, None),
    };
    let data_dir = config.data_dir.clone();
    let broker = tokio::task::spawn_blocking(move || {
        weir_broker::broker::Broker::open_with_metrics(config, Arc::new(SystemClock), metrics)
    })
    .await?
    .with_context(|| format!("cannot open data directory {}", data_dir.display()))?;
    admin_state.set_broker(broker.clone());
    let state = admin_state.clone();
    let result = weir_broker::run(broker, listener, async move {
        shutdown_signal().await;
        state.set_not_ready();
    })
    .await;
    if let Some(stop) = admin_stop {
        let _ = stop.send(());
    }
    if let Some(task) = admin_task {
        match task.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "admin listener failed"),
            Err(e) => tracing::warn!(error = %e, "admin listener task failed"),
            Ok(Ok(())) => {}
        }
    }
    Ok(result?)
}

/// Resolves on the first SIGTERM or SIGINT; a second one exits at once.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutting down (send the signal again to exit at once)");
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        std::process::exit(130);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve_args(args: &[&str]) -> ServeArgs {
        let cli = Cli::try_parse_from(std::iter::once("weir").chain(args.iter().copied()))
            .expect("parse");
        match cli.command {
            Command::Serve(a) => a,
            Command::Cli(_) => panic!("not serve"),
        }
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("weir.toml");
        std::fs::write(
            &file,
            "max-connections = 5\nmax-request-bytes = 4096\nconnections-max-idle-ms = 1000\n",
        )
        .expect("write");
        let path = file.to_string_lossy().into_owned();
        let (c, _) = serve_args(&["serve", "--config", &path, "--max-connections", "7"])
            .into_config()
            .expect("config");
        assert_eq!(c.max_connections, 7);
        assert_eq!(c.max_request_bytes, 4096);
        assert_eq!(c.connections_max_idle_ms, 1000);
        assert_eq!(
            c.max_connections_per_ip,
            BrokerConfig::default().max_connections_per_ip
        );
    }

    #[test]
    fn limits_are_validated() {
        let err = serve_args(&["serve", "--max-in-flight-requests-per-connection", "0"])
            .into_config()
            .expect_err("zero in-flight");
        assert!(err
            .to_string()
            .contains("max-in-flight-requests-per-connection"));
    }
}
