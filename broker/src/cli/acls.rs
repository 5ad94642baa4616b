//! `weir acl add|list|remove`: Kafka's ACLs, with the flags of Kafka's `kafka-acls.sh`
//! (`--allow-principal User:alice --operation Read --topic orders`). Through a running broker
//! (CreateAcls / DescribeAcls / DeleteAcls, which need ALTER or DESCRIBE on the cluster), or
//! with `--data-dir` straight into a stopped single-node broker's ACL file, to give the first
//! rights to a broker whose authorizer lets nobody in yet.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;
use weir_broker::authz::local::{LocalAclError, LocalAclStore};
use weir_broker::authz::{
    acl_id, AclBinding, AclFilter, AclOperation, PatternType, Permission, ResourceType,
    CLUSTER_NAME,
};
use weir_protocol::*;

use super::client::{expect_response, Client};
use super::{check, Output};

#[derive(Subcommand, Debug)]
pub enum AclCommand {
    /// Add ACLs: every principal × host × operation × resource given.
    Add(Box<AclArgs>),
    /// List ACLs (all, or those of the resources and principal given).
    List(Box<AclArgs>),
    /// Remove ACLs: those matching the principals, hosts, operations and resources given (all
    /// ACLs of a resource when only the resource is given).
    Remove(Box<AclArgs>),
}

impl AclCommand {
    pub fn data_dir(&self) -> Option<&PathBuf> {
        match self {
            AclCommand::Add(a) | AclCommand::List(a) | AclCommand::Remove(a) => a.data_dir.as_ref(),
        }
    }
}

#[derive(Args, Debug, Clone, Default)]
pub struct AclArgs {
    /// Principal allowed (`User:alice`, `User:*` for everyone); repeatable.
    #[arg(long)]
    pub allow_principal: Vec<String>,
    /// Principal denied; repeatable. A DENY wins over any ALLOW.
    #[arg(long)]
    pub deny_principal: Vec<String>,
    /// Host the allowed principals may connect from (default `*`); repeatable.
    #[arg(long)]
    pub allow_host: Vec<String>,
    /// Host the denied principals are denied from (default `*`); repeatable.
    #[arg(long)]
    pub deny_host: Vec<String>,
    /// Only ACLs of this principal, allowed or denied (`list` only).
    #[arg(long)]
    pub principal: Option<String>,
    /// Operation: Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs,
    /// AlterConfigs, IdempotentWrite, CreateTokens, DescribeTokens or All; repeatable or
    /// comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub operation: Vec<String>,
    /// Topic (`*` for all topics); repeatable.
    #[arg(long)]
    pub topic: Vec<String>,
    /// Consumer group (`*` for all groups); repeatable.
    #[arg(long)]
    pub group: Vec<String>,
    /// The cluster.
    #[arg(long)]
    pub cluster: bool,
    /// Transactional id; repeatable.
    #[arg(long)]
    pub transactional_id: Vec<String>,
    /// Delegation token id; repeatable.
    #[arg(long)]
    pub delegation_token: Vec<String>,
    /// User principal (USER resources, for token operations); repeatable.
    #[arg(long)]
    pub user_principal: Vec<String>,
    /// literal or prefixed (the name is a prefix); list and remove also take any (both) and
    /// match (every ACL that applies to the name). Default: literal, any for list.
    #[arg(long)]
    pub resource_pattern_type: Option<String>,
    /// Edit the ACL file of this data directory directly instead of going through a broker
    /// (single node only, while the broker is stopped: a running broker does not see the change).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

impl AclArgs {
    fn resources(&self) -> Vec<(ResourceType, String)> {
        let mut out = Vec::new();
        let mut add = |rt, names: &[String]| out.extend(names.iter().map(|n| (rt, n.clone())));
        add(ResourceType::Topic, &self.topic);
        add(ResourceType::Group, &self.group);
        add(ResourceType::TransactionalId, &self.transactional_id);
        add(ResourceType::DelegationToken, &self.delegation_token);
        add(ResourceType::User, &self.user_principal);
        if self.cluster {
            out.push((ResourceType::Cluster, CLUSTER_NAME.to_string()));
        }
        out
    }

    fn pattern_type(&self, default: PatternType) -> anyhow::Result<PatternType> {
        match &self.resource_pattern_type {
            None => Ok(default),
            Some(s) => PatternType::parse(s).ok_or_else(|| {
                anyhow::anyhow!("'{s}' is not a pattern type (literal, prefixed, any, match)")
            }),
        }
    }

    fn operations(&self) -> anyhow::Result<Vec<AclOperation>> {
        self.operation
            .iter()
            .map(|o| {
                AclOperation::parse(o.trim())
                    .filter(|op| *op != AclOperation::Any)
                    .ok_or_else(|| anyhow::anyhow!("'{o}' is not an ACL operation (see --help)"))
            })
            .collect()
    }

    /// (principal, permission, hosts) of the allow and deny principals.
    fn entries(&self) -> Vec<(String, Permission, Vec<String>)> {
        let hosts = |h: &[String]| {
            if h.is_empty() {
                vec!["*".to_string()]
            } else {
                h.to_vec()
            }
        };
        let allow = self
            .allow_principal
            .iter()
            .map(|p| (p.clone(), Permission::Allow, hosts(&self.allow_host)));
        let deny = self
            .deny_principal
            .iter()
            .map(|p| (p.clone(), Permission::Deny, hosts(&self.deny_host)));
        allow.chain(deny).collect()
    }

    /// The ACLs `add` creates.
    fn bindings(&self) -> anyhow::Result<Vec<AclBinding>> {
        let resources = self.resources();
        anyhow::ensure!(
            !resources.is_empty(),
            "name a resource: --topic, --group, --cluster, --transactional-id, \
             --delegation-token or --user-principal"
        );
        let entries = self.entries();
        anyhow::ensure!(
            !entries.is_empty(),
            "name a principal: --allow-principal or --deny-principal (e.g. User:alice)"
        );
        let operations = self.operations()?;
        anyhow::ensure!(
            !operations.is_empty(),
            "name an operation: --operation Read (see --help)"
        );
        let pattern_type = self.pattern_type(PatternType::Literal)?;
        anyhow::ensure!(
            matches!(pattern_type, PatternType::Literal | PatternType::Prefixed),
            "ACLs are literal or prefixed"
        );
        let mut out = Vec::new();
        for (rt, name) in &resources {
            for (principal, permission, hosts) in &entries {
                for host in hosts {
                    for op in &operations {
                        let b = AclBinding {
                            resource_type: *rt,
                            resource_name: name.clone(),
                            pattern_type,
                            principal: principal.clone(),
                            host: host.clone(),
                            operation: *op,
                            permission: *permission,
                        };
                        b.validate().map_err(|e| anyhow::anyhow!("{b}: {e}"))?;
                        out.push(b);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The filters `list` (`for_list`) or `remove` match with.
    fn filters(&self, for_list: bool) -> anyhow::Result<Vec<AclFilter>> {
        let default = if for_list {
            PatternType::Any
        } else {
            PatternType::Literal
        };
        let pattern_type = self.pattern_type(default)?;
        let resources: Vec<(ResourceType, Option<String>)> = {
            let r = self.resources();
            if r.is_empty() {
                vec![(ResourceType::Any, None)]
            } else {
                r.into_iter().map(|(t, n)| (t, Some(n))).collect()
            }
        };
        let mut entries: Vec<(Option<String>, Permission, Option<String>)> = Vec::new();
        for (p, perm, hosts) in self.entries() {
            let explicit = match perm {
                Permission::Allow => !self.allow_host.is_empty(),
                _ => !self.deny_host.is_empty(),
            };
            if explicit {
                entries.extend(hosts.into_iter().map(|h| (Some(p.clone()), perm, Some(h))));
            } else {
                entries.push((Some(p.clone()), perm, None));
            }
        }
        if entries.is_empty() {
            entries.push((self.principal.clone(), Permission::Any, None));
        }
        let mut operations = self.operations()?;
        if operations.is_empty() {
            operations.push(AclOperation::Any);
        }
        let mut out = Vec::new();
        for (rt, name) in &resources {
            for (principal, permission, host) in &entries {
                for op in &operations {
                    out.push(AclFilter {
                        resource_type: *rt,
                        resource_name: name.clone(),
                        pattern_type,
                        principal: principal.clone(),
                        host: host.clone(),
                        operation: *op,
                        permission: *permission,
                    });
                }
            }
        }
        Ok(out)
    }
}

fn print_acls(out: &Output, acls: &[AclBinding]) {
    let json = json!(acls
        .iter()
        .map(|a| json!({
            "resource_type": a.resource_type.name(),
            "resource_name": a.resource_name,
            "pattern_type": a.pattern_type.name(),
            "principal": a.principal,
            "host": a.host,
            "operation": a.operation.name(),
            "permission": a.permission.name(),
        }))
        .collect::<Vec<_>>());
    let rows: Vec<Vec<String>> = acls
        .iter()
        .map(|a| {
            vec![
                a.resource_type.name().to_string(),
                a.resource_name.clone(),
                a.pattern_type.name().to_string(),
                a.principal.clone(),
                a.host.clone(),
                a.operation.name().to_string(),
                a.permission.name().to_string(),
            ]
        })
        .collect();
    out.table(
        &json,
        &[
            "RESOURCE_TYPE",
            "NAME",
            "PATTERN",
            "PRINCIPAL",
            "HOST",
            "OPERATION",
            "PERMISSION",
        ],
        &rows,
    );
}

fn done(out: &Output, verb: &str, acls: &[AclBinding]) {
    if out.is_json() {
        print_acls(out, acls);
    } else {
        println!("{verb} {} ACL(s)", acls.len());
        print_acls(out, acls);
    }
}

/// Runs a command against the ACL file of a stopped broker's data directory.
pub fn run_offline(
    out: &Output,
    data_dir: &std::path::Path,
    cmd: AclCommand,
) -> anyhow::Result<()> {
    let meta = data_dir.join("__weir_meta");
    std::fs::create_dir_all(&meta)?;
    let store = LocalAclStore::open(&meta)?;
    match cmd {
        AclCommand::Add(a) => {
            let bindings = a.bindings()?;
            store.update(|acls| {
                for b in &bindings {
                    acls.insert(acl_id(b), b.clone());
                }
                Ok::<_, LocalAclError>(())
            })?;
            done(out, "added", &bindings);
        }
        AclCommand::List(a) => {
            let filters = a.filters(true)?;
            let acls: Vec<AclBinding> = store
                .current()
                .values()
                .filter(|acl| filters.iter().any(|f| f.matches(acl)))
                .cloned()
                .collect();
            print_acls(out, &acls);
        }
        AclCommand::Remove(a) => {
            anyhow::ensure!(
                !a.resources().is_empty(),
                "name the resource whose ACLs to remove (--topic, --group, --cluster, ...)"
            );
            let filters = a.filters(false)?;
            let removed = store.update(|acls| {
                let doomed: Vec<String> = acls
                    .iter()
                    .filter(|(_, acl)| filters.iter().any(|f| f.matches(acl)))
                    .map(|(id, _)| id.clone())
                    .collect();
                Ok::<_, LocalAclError>(
                    doomed
                        .iter()
                        .filter_map(|id| acls.remove(id))
                        .collect::<Vec<_>>(),
                )
            })?;
            done(out, "removed", &removed);
        }
    }
    Ok(())
}

fn binding(
    resource_type: i8,
    resource_name: String,
    pattern_type: i8,
    principal: String,
    host: String,
    operation: i8,
    permission: i8,
) -> AclBinding {
    AclBinding {
        resource_type: ResourceType::from_code(resource_type),
        resource_name,
        pattern_type: PatternType::from_code(pattern_type),
        principal,
        host,
        operation: AclOperation::from_code(operation),
        permission: Permission::from_code(permission),
    }
}

pub async fn run(client: &mut Client, out: &Output, cmd: AclCommand) -> anyhow::Result<()> {
    match cmd {
        AclCommand::Add(a) => {
            let bindings = a.bindings()?;
            let creations = bindings
                .iter()
                .map(|b| AclCreation {
                    resource_type: b.resource_type.code(),
                    resource_name: b.resource_name.clone(),
                    resource_pattern_type: b.pattern_type.code(),
                    principal: b.principal.clone(),
                    host: b.host.clone(),
                    operation: b.operation.code(),
                    permission_type: b.permission.code(),
                })
                .collect();
            let r = client
                .call(Request::CreateAcls(CreateAclsRequest { creations }))
                .await?;
            let r = expect_response!(r, CreateAcls);
            for (res, b) in r.results.iter().zip(&bindings) {
                check(
                    res.error_code,
                    &format!("cannot add {b}"),
                    res.error_message.as_deref(),
                )?;
            }
            done(out, "added", &bindings);
        }
        AclCommand::List(a) => {
            let mut acls: Vec<AclBinding> = Vec::new();
            for f in a.filters(true)? {
                let r = client
                    .call(Request::DescribeAcls(DescribeAclsRequest {
                        resource_type_filter: f.resource_type.code(),
                        resource_name_filter: f.resource_name,
                        pattern_type_filter: f.pattern_type.code(),
                        principal_filter: f.principal,
                        host_filter: f.host,
                        operation: f.operation.code(),
                        permission_type: f.permission.code(),
                    }))
                    .await?;
                let r = expect_response!(r, DescribeAcls);
                check(r.error_code, "cannot list ACLs", r.error_message.as_deref())?;
                for res in r.resources {
                    for d in res.acls {
                        let b = binding(
                            res.resource_type,
                            res.resource_name.clone(),
                            res.pattern_type,
                            d.principal,
                            d.host,
                            d.operation,
                            d.permission_type,
                        );
                        if !acls.contains(&b) {
                            acls.push(b);
                        }
                    }
                }
            }
            print_acls(out, &acls);
        }
        AclCommand::Remove(a) => {
            anyhow::ensure!(
                !a.resources().is_empty(),
                "name the resource whose ACLs to remove (--topic, --group, --cluster, ...)"
            );
            let filters = a
                .filters(false)?
                .into_iter()
                .map(|f| DeleteAclsFilter {
                    resource_type_filter: f.resource_type.code(),
                    resource_name_filter: f.resource_name,
                    pattern_type_filter: f.pattern_type.code(),
                    principal_filter: f.principal,
                    host_filter: f.host,
                    operation: f.operation.code(),
                    permission_type: f.permission.code(),
                })
                .collect();
            let r = client
                .call(Request::DeleteAcls(DeleteAclsRequest { filters }))
                .await?;
            let r = expect_response!(r, DeleteAcls);
            let mut removed = Vec::new();
            for res in r.filter_results {
                check(
                    res.error_code,
                    "cannot remove ACLs",
                    res.error_message.as_deref(),
                )?;
                for m in res.matching_acls {
                    let b = binding(
                        m.resource_type,
                        m.resource_name,
                        m.pattern_type,
                        m.principal,
                        m.host,
                        m.operation,
                        m.permission_type,
                    );
                    if !removed.contains(&b) {
                        removed.push(b);
                    }
                }
            }
            done(out, "removed", &removed);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> AclArgs {
        AclArgs {
            allow_principal: vec!["User:alice".into()],
            operation: vec!["read".into(), "Describe".into()],
            topic: vec!["orders".into()],
            group: vec!["g".into()],
            ..AclArgs::default()
        }
    }

    #[test]
    fn add_creates_every_combination() {
        let b = args().bindings().expect("bindings");
        assert_eq!(b.len(), 4);
        assert!(b
            .iter()
            .all(|b| b.host == "*" && b.permission == Permission::Allow));
        let bad = AclArgs {
            allow_principal: vec!["alice".into()],
            ..args()
        };
        assert!(bad.bindings().is_err());
        let no_op = AclArgs {
            operation: Vec::new(),
            ..args()
        };
        assert!(no_op.bindings().is_err());
    }

    #[test]
    fn list_without_flags_matches_everything() {
        let f = AclArgs::default().filters(true).expect("filters");
        assert_eq!(f, vec![AclFilter::any()]);
    }
}
