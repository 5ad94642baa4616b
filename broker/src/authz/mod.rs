//! Authorization: Kafka's ACL authorizer. Owns the ACLs (kept in `__weir_meta/acls.json` on a
//! single node, under `acls/` in etcd in a cluster, see [`local`] and `cluster::store`), the
//! `authorizer`, `super-users` and `allow-everyone-if-no-acl-found` settings, and the answer to
//! "may this request do this?" ([`Authz`], one per request). The rules themselves are in
//! [`acl`]; which operation each API needs is decided by the handlers (`handlers::access`), as
//! Kafka's `KafkaApis` does.
//!
//! With the authorizer off (the default) everything is allowed, as in Kafka without an
//! authorizer: the authorized-operations fields then list every operation of the resource type,
//! and the ACL APIs answer `SECURITY_DISABLED`.

pub mod acl;
pub mod local;

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::cluster::store::EtcdStore;
use crate::security::Principal;
pub use acl::{
    supported_operations, AclBinding, AclFilter, AclOperation, Decision, PatternType, Permission,
    ResourceType, CLUSTER_NAME,
};
use acl::{AclIndex, Requester};
use local::{LocalAclError, LocalAclStore};

/// ACLs by id ([`acl_id`]).
pub type AclMap = BTreeMap<String, AclBinding>;

/// Most ACLs kept (every CreateAcls call can add some: bound the store).
pub const MAX_ACLS: usize = 100_000;
/// How long a broker waits to see its own ACL change come back from etcd.
const APPLY_WAIT_MS: u64 = 10_000;

/// The id of an ACL: a digest of its fields, so the same ACL always has the same id (creating it
/// twice stores it once, on every broker alike) and ids are safe in etcd keys.
pub fn acl_id(acl: &AclBinding) -> String {
    let mut h = Sha256::new();
    for part in [
        acl.resource_type.name(),
        &acl.resource_name,
        acl.pattern_type.name(),
        &acl.principal,
        &acl.host,
        acl.operation.name(),
        acl.permission.name(),
    ] {
        // Length-prefixed, so no two different ACLs hash the same bytes.
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The authorizer settings (`authorizer`, `super-users`, `allow-everyone-if-no-acl-found`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// Whether requests are authorized at all (Kafka: an `authorizer.class.name` is set).
    pub enabled: bool,
    /// Principals allowed everything (`User:admin`), Kafka's `super.users`.
    pub super_users: Vec<String>,
    /// What a resource no ACL applies to allows (Kafka's `allow.everyone.if.no.acl.found`).
    pub allow_everyone_if_no_acl_found: bool,
}

/// Parses Kafka's `super.users`: principals separated by `;` (commas are accepted too).
pub fn parse_super_users(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for p in s.split([';', ',']).map(str::trim).filter(|p| !p.is_empty()) {
        match p.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => out.push(p.to_string()),
            _ => return Err(format!("'{p}' is not a principal like User:admin")),
        }
    }
    Ok(out)
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum AclError {
    /// Kafka's `INVALID_REQUEST`, with its message.
    #[error("{0}")]
    Invalid(String),
    #[error("at most {MAX_ACLS} ACLs can be stored")]
    TooMany,
    /// The store could not keep the change (disk, etcd).
    #[error("{0}")]
    Store(String),
}

impl From<LocalAclError> for AclError {
    fn from(e: LocalAclError) -> Self {
        AclError::Store(e.to_string())
    }
}

impl From<crate::cluster::store::StoreError> for AclError {
    fn from(e: crate::cluster::store::StoreError) -> Self {
        AclError::Store(e.to_string())
    }
}

fn not_applied() -> AclError {
    AclError::Store("the change was written but has not reached this broker yet".into())
}

/// Where the ACLs are kept.
enum Store {
    Local(Arc<LocalAclStore>),
    Cluster(Arc<EtcdStore>),
}

/// The broker's authorizer. See the module docs.
pub struct Authorizer {
    config: AuthorizerConfig,
    super_users: HashSet<String>,
    store: Store,
    /// The index built from the ACLs last seen, and those ACLs (compared by pointer to know
    /// when to rebuild).
    cache: Mutex<(Arc<AclMap>, Arc<AclIndex>)>,
}

impl Authorizer {
    /// The single-node authorizer, its ACLs in `meta_dir`.
    pub fn open_local(
        config: AuthorizerConfig,
        meta_dir: &std::path::Path,
    ) -> Result<Self, AclError> {
        let store = Arc::new(LocalAclStore::open(meta_dir)?);
        Ok(Self::new(config, Store::Local(store)))
    }

    /// A cluster member's authorizer, its ACLs in etcd (every broker watches them).
    pub fn clustered(config: AuthorizerConfig, store: Arc<EtcdStore>) -> Self {
        Self::new(config, Store::Cluster(store))
    }

    fn new(config: AuthorizerConfig, store: Store) -> Self {
        let super_users = config.super_users.iter().cloned().collect();
        Self {
            config,
            super_users,
            store,
            cache: Mutex::new((Arc::default(), Arc::default())),
        }
    }

    pub fn config(&self) -> &AuthorizerConfig {
        &self.config
    }

    pub fn is_enabled(&self) -> bool {
        self.config.enabled
    }

    /// The ACLs now.
    pub fn acls(&self) -> Arc<AclMap> {
        match &self.store {
            Store::Local(s) => s.current(),
            Store::Cluster(s) => s.with_view(|v| v.acls.clone()),
        }
    }

    /// The index of the current ACLs, rebuilt if they changed since last asked.
    fn index(&self) -> Arc<AclIndex> {
        let acls = self.acls();
        let mut cache = self.cache.lock();
        if !Arc::ptr_eq(&cache.0, &acls) {
            let index = Arc::new(AclIndex::new(acls.values()));
            *cache = (acls, index);
        }
        cache.1.clone()
    }

    /// What one request may do: `principal` connecting from `peer`.
    pub fn session(&self, principal: &Principal, peer: IpAddr) -> Authz {
        if !self.config.enabled {
            return Authz(None);
        }
        let principal = principal.to_string();
        let super_user = self.super_users.contains(&principal);
        Authz(Some(Arc::new(Session {
            who: Requester {
                principal,
                host: peer.to_canonical(),
            },
            super_user,
            allow_if_no_acl: self.config.allow_everyone_if_no_acl_found,
            index: if super_user {
                Arc::default()
            } else {
                self.index()
            },
        })))
    }

    /// The ACLs passing `filter`, sorted.
    pub fn describe(&self, filter: &AclFilter) -> Vec<AclBinding> {
        self.acls()
            .values()
            .filter(|a| filter.matches(a))
            .cloned()
            .collect()
    }

    /// Creates ACLs; one result per binding, in order. Invalid bindings are refused one by one;
    /// the valid ones are stored together, durably, before this returns.
    pub async fn create(&self, bindings: Vec<AclBinding>) -> Vec<Result<(), AclError>> {
        let mut results: Vec<Result<(), AclError>> = bindings
            .iter()
            .map(|b| b.validate().map_err(AclError::Invalid))
            .collect();
        let valid: Vec<(String, AclBinding)> = bindings
            .into_iter()
            .zip(&results)
            .filter(|(_, r)| r.is_ok())
            .map(|(b, _)| (acl_id(&b), b))
            .collect();
        if valid.is_empty() {
            return results;
        }
        let outcome = match &self.store {
            Store::Local(store) => {
                let store = store.clone();
                let valid = valid.clone();
                run_blocking(move || {
                    store.update(|acls| {
                        for (id, b) in valid {
                            acls.insert(id, b);
                        }
                        if acls.len() > MAX_ACLS {
                            return Err(AclError::TooMany);
                        }
                        Ok(())
                    })
                })
                .await
            }
            Store::Cluster(store) => {
                let new = valid
                    .iter()
                    .filter(|(id, _)| !store.with_view(|v| v.acls.contains_key(id)))
                    .count();
                if store.with_view(|v| v.acls.len()) + new > MAX_ACLS {
                    Err(AclError::TooMany)
                } else {
                    match store.put_acls(&valid).await {
                        Ok(rev) if store.wait_for_revision(rev, APPLY_WAIT_MS).await => Ok(()),
                        Ok(_) => Err(not_applied()),
                        Err(e) => Err(e.into()),
                    }
                }
            }
        };
        if let Err(e) = outcome {
            for r in results.iter_mut().filter(|r| r.is_ok()) {
                *r = Err(e.clone());
            }
        }
        results
    }

    /// Deletes the ACLs matching each filter; one result per filter (the ACLs it removed), in
    /// order. An ACL matched by several filters is reported by each, as Kafka does.
    pub async fn delete(&self, filters: Vec<AclFilter>) -> Vec<Result<Vec<AclBinding>, AclError>> {
        let current = self.acls();
        let mut results: Vec<Result<Vec<AclBinding>, AclError>> = Vec::new();
        let mut doomed: BTreeMap<String, AclBinding> = BTreeMap::new();
        for f in &filters {
            match f.validate() {
                Err(m) => results.push(Err(AclError::Invalid(m))),
                Ok(()) => {
                    let matched: Vec<(&String, &AclBinding)> =
                        current.iter().filter(|(_, a)| f.matches(a)).collect();
                    for (id, a) in &matched {
                        doomed.insert((*id).clone(), (*a).clone());
                    }
                    results.push(Ok(matched.into_iter().map(|(_, a)| a.clone()).collect()));
                }
            }
        }
        if doomed.is_empty() {
            return results;
        }
        let ids: Vec<String> = doomed.into_keys().collect();
        let outcome = match &self.store {
            Store::Local(store) => {
                let store = store.clone();
                run_blocking(move || {
                    store.update(|acls| {
                        for id in &ids {
                            acls.remove(id);
                        }
                        Ok::<_, AclError>(())
                    })
                })
                .await
            }
            Store::Cluster(store) => match store.delete_acls(&ids).await {
                Ok(rev) if store.wait_for_revision(rev, APPLY_WAIT_MS).await => Ok(()),
                Ok(_) => Err(not_applied()),
                Err(e) => Err(e.into()),
            },
        };
        if let Err(e) = outcome {
            for r in results.iter_mut().filter(|r| r.is_ok()) {
                *r = Err(e.clone());
            }
        }
        results
    }
}

async fn run_blocking(
    f: impl FnOnce() -> Result<(), AclError> + Send + 'static,
) -> Result<(), AclError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|_| Err(AclError::Store("the ACL store's task failed".into())))
}

struct Session {
    who: Requester,
    super_user: bool,
    allow_if_no_acl: bool,
    index: Arc<AclIndex>,
}

/// What one request may do (cheap to clone). `Authz(None)`: no authorizer, everything allowed.
#[derive(Clone)]
pub struct Authz(Option<Arc<Session>>);

impl Authz {
    /// No authorizer: everything is allowed.
    pub fn allow_all() -> Self {
        Authz(None)
    }

    pub fn is_enabled(&self) -> bool {
        self.0.is_some()
    }

    /// Whether the request may perform `op` on the resource `name` of `resource_type`.
    pub fn allows(&self, op: AclOperation, resource_type: ResourceType, name: &str) -> bool {
        let Some(s) = &self.0 else { return true };
        if s.super_user {
            return true;
        }
        let allowed = match s.index.decide(&s.who, op, resource_type, name) {
            Decision::Allowed => true,
            Decision::Denied => false,
            Decision::NoAcls => s.allow_if_no_acl,
        };
        if !allowed {
            tracing::debug!(
                principal = %s.who.principal,
                host = %s.who.host,
                operation = %op,
                resource = %format_args!("{resource_type}:{name}"),
                "not authorized"
            );
        }
        allowed
    }

    /// [`Authz::allows`] on the cluster resource.
    pub fn allows_cluster(&self, op: AclOperation) -> bool {
        self.allows(op, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// Whether the request may perform `op` on at least one resource of `resource_type` (Kafka's
    /// `authorizeByResourceType`).
    pub fn allows_any(&self, op: AclOperation, resource_type: ResourceType) -> bool {
        let Some(s) = &self.0 else { return true };
        // As Kafka: a made-up name first, so super users and the no-ACL default count.
        self.allows(op, resource_type, "hardcode") || s.index.allows_any(&s.who, op, resource_type)
    }

    /// The authorized-operations bit field of a resource (Kafka's `Utils.to32BitField` of the
    /// supported operations this request may perform).
    pub fn operations(&self, resource_type: ResourceType, name: &str) -> i32 {
        supported_operations(resource_type)
            .iter()
            .filter(|op| self.allows_quietly(**op, resource_type, name))
            .fold(0i32, |bits, op| bits | (1i32 << op.code()))
    }

    /// [`Authz::allows`] without the debug log (authorized operations ask about everything).
    pub fn allows_quietly(
        &self,
        op: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        let Some(s) = &self.0 else { return true };
        s.super_user
            || match s.index.decide(&s.who, op, resource_type, name) {
                Decision::Allowed => true,
                Decision::Denied => false,
                Decision::NoAcls => s.allow_if_no_acl,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authorizer(
        config: AuthorizerConfig,
        acls: &[AclBinding],
    ) -> (tempfile::TempDir, Authorizer) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalAclStore::open(dir.path()).expect("open");
        store
            .update(|m| {
                for a in acls {
                    m.insert(acl_id(a), a.clone());
                }
                Ok::<_, LocalAclError>(())
            })
            .expect("seed");
        (dir, Authorizer::new(config, Store::Local(Arc::new(store))))
    }

    fn allow(op: AclOperation, rt: ResourceType, name: &str) -> AclBinding {
        AclBinding {
            resource_type: rt,
            resource_name: name.into(),
            pattern_type: PatternType::Literal,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: op,
            permission: Permission::Allow,
        }
    }

    fn on() -> AuthorizerConfig {
        AuthorizerConfig {
            enabled: true,
            ..AuthorizerConfig::default()
        }
    }

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn bit_fields_match_kafka_without_an_authorizer() {
        let az = Authz::allow_all();
        // READ..ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
        assert_eq!(az.operations(ResourceType::Topic, "t"), 0b1101_1111_1000);
        // READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
        assert_eq!(az.operations(ResourceType::Group, "g"), 0b1101_0100_1000);
        // CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE.
        assert_eq!(
            az.operations(ResourceType::Cluster, CLUSTER_NAME),
            0b1_1111_1010_0000
        );
    }

    #[test]
    fn authorized_operations_follow_the_acls() {
        let (_d, a) = authorizer(
            on(),
            &[allow(AclOperation::Write, ResourceType::Topic, "t")],
        );
        let az = a.session(&Principal::user("alice"), LOCAL);
        // WRITE, and DESCRIBE implied by it.
        assert_eq!(
            az.operations(ResourceType::Topic, "t"),
            (1 << AclOperation::Write.code()) | (1 << AclOperation::Describe.code())
        );
        assert_eq!(az.operations(ResourceType::Topic, "u"), 0);
        let bob = a.session(&Principal::user("bob"), LOCAL);
        assert_eq!(bob.operations(ResourceType::Topic, "t"), 0);
    }

    #[test]
    fn super_users_and_the_no_acl_default() {
        let config = AuthorizerConfig {
            super_users: vec!["User:admin".into()],
            ..on()
        };
        let acl = allow(AclOperation::Read, ResourceType::Topic, "t");
        let (_d, a) = authorizer(config.clone(), std::slice::from_ref(&acl));
        let admin = a.session(&Principal::user("admin"), LOCAL);
        assert!(admin.allows(AclOperation::Delete, ResourceType::Topic, "t"));
        assert!(admin.allows_cluster(AclOperation::Alter));
        let bob = a.session(&Principal::user("bob"), LOCAL);
        assert!(!bob.allows(AclOperation::Read, ResourceType::Topic, "t"));
        assert!(!bob.allows(AclOperation::Read, ResourceType::Topic, "no-acls"));
        let everyone = AuthorizerConfig {
            allow_everyone_if_no_acl_found: true,
            ..config
        };
        let (_d, a) = authorizer(everyone, &[acl]);
        let bob = a.session(&Principal::user("bob"), LOCAL);
        // The resource has ACLs (for alice): bob is denied; elsewhere the default allows.
        assert!(!bob.allows(AclOperation::Read, ResourceType::Topic, "t"));
        assert!(bob.allows(AclOperation::Read, ResourceType::Topic, "no-acls"));
        assert!(bob.allows_any(AclOperation::Write, ResourceType::Topic));
        let off = Authorizer::new(
            AuthorizerConfig::default(),
            Store::Local(Arc::new(LocalAclStore::open(_d.path()).expect("open"))),
        );
        assert!(!off.session(&Principal::user("bob"), LOCAL).is_enabled());
    }

    #[tokio::test]
    async fn create_and_delete_are_seen_at_once_and_invalid_bindings_refused_alone() {
        let (_d, a) = authorizer(on(), &[]);
        let alice = Principal::user("alice");
        assert!(!a
            .session(&alice, LOCAL)
            .allows(AclOperation::Read, ResourceType::Topic, "t"));
        let mut bad = allow(AclOperation::Read, ResourceType::Topic, "t");
        bad.principal = "alice".into();
        let results = a
            .create(vec![
                allow(AclOperation::Read, ResourceType::Topic, "t"),
                bad,
            ])
            .await;
        assert!(results[0].is_ok());
        assert!(matches!(results[1], Err(AclError::Invalid(_))));
        assert!(a
            .session(&alice, LOCAL)
            .allows(AclOperation::Read, ResourceType::Topic, "t"));
        let deleted = a
            .delete(vec![AclFilter {
                principal: Some("User:alice".into()),
                ..AclFilter::any()
            }])
            .await;
        assert!(matches!(&deleted[0], Ok(v) if v.len() == 1));
        assert!(!a
            .session(&alice, LOCAL)
            .allows(AclOperation::Read, ResourceType::Topic, "t"));
        assert!(a.describe(&AclFilter::any()).is_empty());
    }

    #[test]
    fn super_users_parse_as_kafka() {
        assert_eq!(
            parse_super_users("User:admin; User:ops"),
            Ok(vec!["User:admin".to_string(), "User:ops".to_string()])
        );
        assert!(parse_super_users("admin").is_err());
        assert_eq!(parse_super_users(""), Ok(Vec::new()));
    }
}
