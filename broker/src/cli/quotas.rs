//! `weir quota set|list|remove`: client quotas (producer_byte_rate, consumer_byte_rate,
//! request_percentage) of users and client-ids, and connection_creation_rate of client IPs,
//! through a running broker (AlterClientQuotas /
//! DescribeClientQuotas, which need ALTER_CONFIGS or DESCRIBE_CONFIGS on the cluster when the
//! authorizer is on).

use clap::{Args, Subcommand};
use serde_json::json;
use weir_protocol::*;

use super::client::{expect_response, Client};
use super::{check, parse_kv, Output};

#[derive(Subcommand, Debug)]
pub enum QuotaCommand {
    /// Set quotas of an entity: `weir quota set --user alice producer_byte_rate=1048576`.
    Set(QuotaArgs),
    /// List the entities with quotas (all, or those matching --user / --client-id).
    List(QuotaArgs),
    /// Remove quotas of an entity (the keys given, or all of them).
    Remove(QuotaArgs),
}

#[derive(Args, Debug, Clone, Default)]
pub struct QuotaArgs {
    /// The user (the principal's name, `alice` for `User:alice`).
    #[arg(long, conflicts_with = "user_default")]
    pub user: Option<String>,
    /// The default user (every user without a quota of its own).
    #[arg(long)]
    pub user_default: bool,
    /// The client id.
    #[arg(long, conflicts_with = "client_id_default")]
    pub client_id: Option<String>,
    /// The default client id.
    #[arg(long)]
    pub client_id_default: bool,
    /// A client IP address (its only quota: connection_creation_rate).
    #[arg(long, conflicts_with_all = ["ip_default", "user", "user_default", "client_id", "client_id_default"])]
    pub ip: Option<String>,
    /// The default IP (every client IP without a quota of its own).
    #[arg(long, conflicts_with_all = ["user", "user_default", "client_id", "client_id_default"])]
    pub ip_default: bool,
    /// `set`: key=value pairs; `remove`: keys (none: all of the entity's quotas).
    pub values: Vec<String>,
}

impl QuotaArgs {
    fn components(&self) -> Vec<QuotaEntityComponent> {
        let mut out = Vec::new();
        if self.user.is_some() || self.user_default {
            out.push(QuotaEntityComponent {
                entity_type: "user".into(),
                entity_name: self.user.clone(),
            });
        }
        if self.client_id.is_some() || self.client_id_default {
            out.push(QuotaEntityComponent {
                entity_type: "client-id".into(),
                entity_name: self.client_id.clone(),
            });
        }
        if self.ip.is_some() || self.ip_default {
            out.push(QuotaEntityComponent {
                entity_type: "ip".into(),
                entity_name: self.ip.clone(),
            });
        }
        out
    }

    fn entity(&self) -> anyhow::Result<Vec<QuotaEntityComponent>> {
        let c = self.components();
        if c.is_empty() {
            anyhow::bail!(
                "name an entity: --user NAME or --user-default, and/or --client-id NAME or --client-id-default; or --ip ADDRESS or --ip-default"
            );
        }
        Ok(c)
    }
}

fn show(entity: &[QuotaEntityComponent]) -> String {
    entity
        .iter()
        .map(|c| {
            format!(
                "{}={}",
                c.entity_type,
                c.entity_name.as_deref().unwrap_or("<default>")
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

async fn describe(
    client: &mut Client,
    components: Vec<QuotaFilterComponent>,
    strict: bool,
) -> anyhow::Result<Vec<QuotaEntry>> {
    let r = client
        .call(Request::DescribeClientQuotas(DescribeClientQuotasRequest {
            components,
            strict,
        }))
        .await?;
    let r = expect_response!(r, DescribeClientQuotas);
    check(
        r.error_code,
        "cannot list quotas",
        r.error_message.as_deref(),
    )?;
    Ok(r.entries.unwrap_or_default())
}

fn filter_of(components: &[QuotaEntityComponent]) -> Vec<QuotaFilterComponent> {
    components
        .iter()
        .map(|c| QuotaFilterComponent {
            entity_type: c.entity_type.clone(),
            match_type: if c.entity_name.is_some() { 0 } else { 1 },
            match_value: c.entity_name.clone(),
        })
        .collect()
}

async fn alter(
    client: &mut Client,
    entity: Vec<QuotaEntityComponent>,
    ops: Vec<QuotaOp>,
) -> anyhow::Result<()> {
    let shown = show(&entity);
    let r = client
        .call(Request::AlterClientQuotas(AlterClientQuotasRequest {
            entries: vec![QuotaAlteration { entity, ops }],
            validate_only: false,
        }))
        .await?;
    let r = expect_response!(r, AlterClientQuotas);
    for e in &r.entries {
        check(
            e.error_code,
            &format!("cannot change the quotas of {shown}"),
            e.error_message.as_deref(),
        )?;
    }
    Ok(())
}

pub async fn run(client: &mut Client, out: &Output, cmd: QuotaCommand) -> anyhow::Result<()> {
    match cmd {
        QuotaCommand::Set(a) => {
            let entity = a.entity()?;
            if a.values.is_empty() {
                anyhow::bail!(
                    "give the quotas to set as key=value (e.g. producer_byte_rate=1048576)"
                );
            }
            let mut ops = Vec::new();
            for kv in &a.values {
                let (key, value) = parse_kv(kv)?;
                let value: f64 = value
                    .parse()
                    .map_err(|_| anyhow::anyhow!("{key}: '{value}' is not a number"))?;
                ops.push(QuotaOp {
                    key,
                    value,
                    remove: false,
                });
            }
            let shown = show(&entity);
            alter(client, entity, ops).await?;
            out.message(
                &json!({"entity": shown, "set": a.values}),
                &format!("set {} for {shown}", a.values.join(", ")),
            );
        }
        QuotaCommand::Remove(a) => {
            let entity = a.entity()?;
            let keys: Vec<String> = if a.values.is_empty() {
                describe(client, filter_of(&entity), true)
                    .await?
                    .into_iter()
                    .flat_map(|e| e.values.into_iter().map(|v| v.key))
                    .collect()
            } else {
                a.values.clone()
            };
            let shown = show(&entity);
            if !keys.is_empty() {
                let ops = keys
                    .iter()
                    .map(|key| QuotaOp {
                        key: key.clone(),
                        value: 0.0,
                        remove: true,
                    })
                    .collect();
                alter(client, entity, ops).await?;
            }
            out.message(
                &json!({"entity": shown, "removed": keys}),
                &format!("removed {} from {shown}", keys.join(", ")),
            );
        }
        QuotaCommand::List(a) => {
            let entries = describe(client, filter_of(&a.components()), false).await?;
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    vec![
                        show(&e.entity),
                        e.values
                            .iter()
                            .map(|v| format!("{}={}", v.key, v.value))
                            .collect::<Vec<_>>()
                            .join(","),
                    ]
                })
                .collect();
            let json: Vec<serde_json::Value> = entries
                .iter()
                .map(|e| {
                    let values: serde_json::Map<String, serde_json::Value> = e
                        .values
                        .iter()
                        .map(|v| (v.key.clone(), json!(v.value)))
                        .collect();
                    json!({"entity": show(&e.entity), "values": values})
                })
                .collect();
            out.table(&json!(json), &["ENTITY", "QUOTAS"], &rows);
        }
    }
    Ok(())
}
