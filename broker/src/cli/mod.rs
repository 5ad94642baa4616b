//! The operator CLI: `weir topic|produce|consume|partitions|group|dlq|cluster|user|acl|quota`. Talks to a
//! single broker or a cluster over the Kafka protocol (the `client` module sends each request to the
//! broker that owns it, as Kafka's clients do), prints human tables by default and JSON with
//! `--output json`. Every error says what to do next. Uses `anyhow`, like `main.rs`.

mod acls;
mod client;
mod cluster;
mod data;
mod dlq;
mod groups;
mod output;
mod partitions;
mod quotas;
mod records;
mod route;
mod topics;
mod users;

use clap::{Args, Subcommand, ValueEnum};

pub use output::Output;

/// Where the broker is and how to print.
#[derive(Args, Clone, Debug)]
pub struct Common {
    /// Bootstrap broker(s), comma-separated host:port.
    #[arg(
        long,
        env = "WEIR_BROKERS",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    pub brokers: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table, global = true)]
    pub output: Format,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Human-readable tables.
    Table,
    /// JSON, for scripts.
    Json,
}

/// The CLI subcommands (flattened into `weir`'s own).
#[derive(Subcommand, Debug)]
pub enum CliCommand {
    /// Create, list, describe, alter and delete topics.
    #[command(subcommand)]
    Topic(topics::TopicCommand),
    /// Produce lines from stdin as records (one record per line).
    Produce(data::ProduceArgs),
    /// Consume records and print their values, one per line.
    Consume(data::ConsumeArgs),
    /// Move partition replicas between brokers and elect preferred leaders.
    #[command(subcommand)]
    Partitions(partitions::PartitionsCommand),
    /// List, describe, reset offsets of and delete consumer groups.
    #[command(subcommand)]
    Group(groups::GroupCommand),
    /// Share groups' dead-letter topics: list, show, send back.
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// The cluster: brokers, partitions and their health, leadership balance.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Create, list and delete users (SCRAM credentials for SASL).
    #[command(subcommand)]
    User(users::UserCommand),
    /// Add, list and remove ACLs (with the authorizer on).
    #[command(subcommand)]
    Acl(acls::AclCommand),
    /// Set, list and remove client quotas (byte rates, request time) of users and client ids.
    #[command(subcommand)]
    Quota(quotas::QuotaCommand),
}

/// Runs one CLI command to completion.
pub fn run(common: Common, command: CliCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let out = Output::new(common.output);
    if let CliCommand::User(c) = &command {
        if let Some(dir) = c.data_dir().cloned() {
            if let CliCommand::User(c) = command {
                return users::run_offline(&out, &dir, c);
            }
        }
    }
    if let CliCommand::Acl(c) = &command {
        if let Some(dir) = c.data_dir().cloned() {
            if let CliCommand::Acl(c) = command {
                return acls::run_offline(&out, &dir, c);
            }
        }
    }
    runtime.block_on(async move {
        let mut client = client::Client::connect(&common.brokers).await?;
        match command {
            CliCommand::Topic(c) => topics::run(&mut client, &out, c).await,
            CliCommand::Produce(a) => data::produce(&mut client, &out, a).await,
            CliCommand::Consume(a) => data::consume(&mut client, &out, a).await,
            CliCommand::Partitions(c) => partitions::run(&mut client, &out, c).await,
            CliCommand::Group(c) => groups::run(&mut client, &out, c).await,
            CliCommand::Dlq(c) => dlq::run(&mut client, &out, c).await,
            CliCommand::Cluster(c) => cluster::run(&mut client, &out, c).await,
            CliCommand::User(c) => users::run(&mut client, &out, c).await,
            CliCommand::Acl(c) => acls::run(&mut client, &out, c).await,
            CliCommand::Quota(c) => quotas::run(&mut client, &out, c).await,
        }
    })
}

/// Splits `key=value`.
fn parse_kv(s: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => anyhow::bail!("'{s}' is not key=value"),
    }
}

/// An error code as a user-facing error, with a hint where one helps.
fn check(code: weir_protocol::ErrorCode, what: &str, message: Option<&str>) -> anyhow::Result<()> {
    use weir_protocol::ErrorCode as E;
    if code.is_none() {
        return Ok(());
    }
    let hint = match code {
        E::UNKNOWN_TOPIC_OR_PARTITION => " (list topics with `weir topic list`)",
        E::TOPIC_ALREADY_EXISTS => " (see it with `weir topic describe`)",
        E::GROUP_ID_NOT_FOUND => " (list groups with `weir group list`)",
        E::NON_EMPTY_GROUP => " (stop the group's consumers first)",
        E::INVALID_PARTITIONS => " (partition counts can only grow)",
        E::INVALID_CONFIG => " (see docs/configuration.md for topic configs)",
        E::INVALID_REPLICA_ASSIGNMENT => " (list the brokers with `weir cluster info`)",
        E::PREFERRED_LEADER_NOT_AVAILABLE => {
            " (the preferred replica is not in sync yet; try again)"
        }
        E::NOT_LEADER_OR_FOLLOWER
        | E::LEADER_NOT_AVAILABLE
        | E::NOT_COORDINATOR
        | E::COORDINATOR_NOT_AVAILABLE => " (the cluster is still electing; try again)",
        E::SECURITY_DISABLED => " (start the broker with --authorizer on)",
        E::CLUSTER_AUTHORIZATION_FAILED => {
            " (this needs rights on the cluster: a super user, or ACLs added with `weir acl add`)"
        }
        _ => "",
    };
    match message {
        Some(m) if !m.is_empty() => anyhow::bail!("{what}: {code}: {m}{hint}"),
        _ => anyhow::bail!("{what}: {code}{hint}"),
    }
}
