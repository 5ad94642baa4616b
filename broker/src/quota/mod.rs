//! Client quotas, as Kafka's (`docs/security.md#quotas`): the quota values set per user and/or
//! client-id entity with AlterClientQuotas (kept in `__weir_meta/quotas.json` on a single node,
//! under `quotas/` in etcd in a cluster, watched into the `ClusterView`), Kafka's precedence of
//! entities (KIP-55), and the sensors that measure each client's produce bytes, fetch bytes and
//! request time against them and say how long to throttle it (`rate`). The connection does the
//! throttling (`server`): it answers with the throttle time, then stops reading for that long.
//!
//! The `ip` entity (KIP-612) stands alone, never with a user or client-id, and carries one key,
//! `connection_creation_rate`: how many connections per second a client IP may open. The accept
//! loop (`server`) asks [`ClientQuotas::record_connection`] about each new connection.

pub mod local;
pub mod rate;

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::cluster::store::EtcdStore;
use local::{LocalQuotaError, LocalQuotaStore};
use rate::Sensors;

/// The quota keys Weir enforces.
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
pub const REQUEST_PERCENTAGE: &str = "request_percentage";
/// The one key of an `ip` entity: connections per second.
pub const CONNECTION_CREATION_RATE: &str = "connection_creation_rate";
/// Kafka's quota keys Weir does not enforce, refused rather than stored for nothing.
const UNSUPPORTED_KEYS: &[&str] = &["controller_mutation_rate"];

pub const USER: &str = "user";
pub const CLIENT_ID: &str = "client-id";
pub const IP: &str = "ip";

/// Most quota entities kept (every AlterClientQuotas can add some: bound the store).
pub const MAX_ENTITIES: usize = 10_000;
/// Longest entity name accepted.
pub const MAX_NAME_BYTES: usize = 1024;
/// How long a change written to etcd may take to come back through this broker's watch.
const APPLY_WAIT_MS: u64 = 5_000;

/// One component of an entity: the default entity (`<default>`) or a named one.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum EntityName {
    Default,
    Named(String),
}

impl EntityName {
    fn matches(&self, name: &str) -> bool {
        matches!(self, EntityName::Named(n) if n == name)
    }
}

impl std::fmt::Display for EntityName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntityName::Default => f.write_str("<default>"),
            EntityName::Named(n) => f.write_str(n),
        }
    }
}

/// A quota entity: a user, a client-id, or both (at least one); or an IP address alone.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct QuotaEntity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<EntityName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<EntityName>,
    /// A client IP (its canonical text) or the default IP; never with `user` or `client_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<EntityName>,
}

impl std::fmt::Display for QuotaEntity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(u) = &self.user {
            parts.push(format!("user={u}"));
        }
        if let Some(c) = &self.client_id {
            parts.push(format!("client-id={c}"));
        }
        if let Some(ip) = &self.ip {
            parts.push(format!("ip={ip}"));
        }
        f.write_str(&parts.join(","))
    }
}

impl QuotaEntity {
    /// The entity from Kafka's (entity type, name) components; `None` names the default.
    pub fn from_components(
        components: &[(String, Option<String>)],
    ) -> Result<QuotaEntity, QuotaError> {
        let mut entity = QuotaEntity::default();
        if components.is_empty() {
            return Err(QuotaError::Invalid(
                "Invalid empty client quota entity".into(),
            ));
        }
        for (kind, name) in components {
            if name.as_ref().is_some_and(|n| n.len() > MAX_NAME_BYTES) {
                return Err(QuotaError::Invalid(format!(
                    "{kind} name longer than {MAX_NAME_BYTES} bytes"
                )));
            }
            let name = match (kind.as_str(), name) {
                (_, None) => EntityName::Default,
                // Kafka takes IP addresses only (no host names); kept in canonical form so that
                // `::1` and `0:0::1` are one entity.
                (IP, Some(n)) => match n.parse::<std::net::IpAddr>() {
                    Ok(ip) => EntityName::Named(ip.to_string()),
                    Err(_) => {
                        return Err(QuotaError::Invalid(format!(
                            "{n} is not a valid IP address"
                        )))
                    }
                },
                (_, Some(n)) => EntityName::Named(n.clone()),
            };
            let slot = match kind.as_str() {
                USER => &mut entity.user,
                CLIENT_ID => &mut entity.client_id,
                IP => &mut entity.ip,
                other => {
                    return Err(QuotaError::Invalid(format!(
                        "Unhandled client quota entity type: {other}"
                    )))
                }
            };
            if slot.is_some() {
                return Err(QuotaError::Invalid(format!(
                    "Duplicate {kind} entity in the client quota entity"
                )));
            }
            *slot = Some(name);
        }
        if entity.ip.is_some() && (entity.user.is_some() || entity.client_id.is_some()) {
            return Err(QuotaError::Invalid(
                "Invalid quota entity combination: ip with user or client-id".into(),
            ));
        }
        Ok(entity)
    }

    /// Kafka's (entity type, name) components, user first.
    pub fn components(&self) -> Vec<(String, Option<String>)> {
        let name = |n: &EntityName| match n {
            EntityName::Default => None,
            EntityName::Named(s) => Some(s.clone()),
        };
        let mut out = Vec::new();
        if let Some(u) = &self.user {
            out.push((USER.to_string(), name(u)));
        }
        if let Some(c) = &self.client_id {
            out.push((CLIENT_ID.to_string(), name(c)));
        }
        if let Some(ip) = &self.ip {
            out.push((IP.to_string(), name(ip)));
        }
        out
    }

    /// The id of the entity's record in etcd (`quotas/<id>`): URL-safe base64 of its JSON,
    /// since names may hold any character, '/' included.
    pub fn id(&self) -> String {
        use base64::Engine as _;
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// The entity named by `id`, if it is one.
    pub fn from_id(id: &str) -> Option<QuotaEntity> {
        use base64::Engine as _;
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(id)
            .ok()?;
        let entity: QuotaEntity = serde_json::from_slice(&json).ok()?;
        let user_or_client = entity.user.is_some() || entity.client_id.is_some();
        (user_or_client != entity.ip.is_some()).then_some(entity)
    }
}

/// One entity's quota values, by key.
pub type QuotaValues = BTreeMap<String, f64>;

/// Every entity's quota values.
pub type QuotaMap = BTreeMap<QuotaEntity, QuotaValues>;

/// One entity's values as stored (in `quotas.json` and in etcd).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QuotaRecord {
    pub entity: QuotaEntity,
    pub values: QuotaValues,
}

/// Whether `value` is acceptable for `key`; the message says why not.
pub fn validate_value(key: &str, value: f64) -> Result<(), QuotaError> {
    match key {
        PRODUCER_BYTE_RATE | CONSUMER_BYTE_RATE => {
            if !(value.is_finite() && value >= 1.0 && value.fract() == 0.0 && value <= 9.2e18) {
                return Err(QuotaError::Invalid(format!(
                    "Invalid value {value} for {key}: a positive whole number of bytes per second"
                )));
            }
        }
        REQUEST_PERCENTAGE => {
            if !(value.is_finite() && value > 0.0) {
                return Err(QuotaError::Invalid(format!(
                    "Invalid value {value} for {key}: a positive percentage"
                )));
            }
        }
        CONNECTION_CREATION_RATE => {
            // Kafka's is an int at least 0 (0: no connection from the IP is accepted).
            if !(value.is_finite()
                && value >= 0.0
                && value.fract() == 0.0
                && value <= f64::from(i32::MAX))
            {
                return Err(QuotaError::Invalid(format!(
                    "Invalid value {value} for {key}: a whole number of connections per second, 0 or more"
                )));
            }
        }
        k if UNSUPPORTED_KEYS.contains(&k) => {
            return Err(QuotaError::Invalid(format!(
                "Quota {k} is not supported by Weir"
            )))
        }
        k => return Err(QuotaError::Invalid(format!("Unknown quota key {k}"))),
    }
    Ok(())
}

/// Whether `key` belongs to `entity`'s kind: `connection_creation_rate` to an `ip` entity and
/// only it, the other keys to user / client-id entities.
pub fn validate_key_for(entity: &QuotaEntity, key: &str) -> Result<(), QuotaError> {
    let ip_key = key == CONNECTION_CREATION_RATE;
    if entity.ip.is_some() && !ip_key {
        return Err(QuotaError::Invalid(format!(
            "Quota {key} cannot be set for an ip entity (only {CONNECTION_CREATION_RATE})"
        )));
    }
    if entity.ip.is_none() && ip_key {
        return Err(QuotaError::Invalid(format!(
            "Quota {key} can only be set for an ip entity"
        )));
    }
    Ok(())
}

/// Whether stored values are valid for their entity (the local file and etcd records).
pub fn validate_values(entity: &QuotaEntity, values: &QuotaValues) -> Result<(), QuotaError> {
    values.iter().try_for_each(|(k, v)| {
        validate_value(k, *v)?;
        validate_key_for(entity, k)
    })
}

/// One change of an AlterClientQuotas entry: set `key` to `Some(value)`, or remove it.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaChange {
    pub key: String,
    pub value: Option<f64>,
}

/// Applies `changes` to `values` after checking them all (a duplicate key is refused, as
/// Kafka).
pub fn apply_changes(values: &mut QuotaValues, changes: &[QuotaChange]) -> Result<(), QuotaError> {
    let mut seen = std::collections::HashSet::new();
    for c in changes {
        if !seen.insert(c.key.as_str()) {
            return Err(QuotaError::Invalid(format!(
                "Duplicate quota key {}",
                c.key
            )));
        }
        match c.value {
            Some(v) => validate_value(&c.key, v)?,
            None => validate_value(&c.key, 1.0)?,
        }
    }
    for c in changes {
        match c.value {
            Some(v) => {
                values.insert(c.key.clone(), v);
            }
            None => {
                values.remove(&c.key);
            }
        }
    }
    Ok(())
}

/// How a DescribeClientQuotas component matches an entity's name of its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameMatch {
    Exact(String),
    Default,
    /// Any named (not default) entity.
    Specified,
}

/// A DescribeClientQuotas filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaFilter {
    pub user: Option<NameMatch>,
    pub client_id: Option<NameMatch>,
    pub ip: Option<NameMatch>,
    pub strict: bool,
}

impl QuotaFilter {
    /// The filter from Kafka's (entity type, match type, match) components.
    pub fn new(
        components: &[(String, i8, Option<String>)],
        strict: bool,
    ) -> Result<QuotaFilter, QuotaError> {
        let mut f = QuotaFilter {
            user: None,
            client_id: None,
            ip: None,
            strict,
        };
        for (kind, match_type, name) in components {
            let m = match (match_type, name) {
                // An IP in its canonical form, as entities are kept.
                (0, Some(n)) if kind == IP => NameMatch::Exact(
                    n.parse::<std::net::IpAddr>()
                        .map_or_else(|_| n.clone(), |ip| ip.to_string()),
                ),
                (0, Some(n)) => NameMatch::Exact(n.clone()),
                (1, None) => NameMatch::Default,
                (2, None) => NameMatch::Specified,
                _ => {
                    return Err(QuotaError::Invalid(format!(
                        "Invalid match type {match_type} with match {name:?} for {kind}"
                    )))
                }
            };
            let slot = match kind.as_str() {
                USER => &mut f.user,
                CLIENT_ID => &mut f.client_id,
                IP => &mut f.ip,
                other => {
                    return Err(QuotaError::Invalid(format!(
                        "Custom entity type {other} is not supported"
                    )))
                }
            };
            if slot.is_some() {
                return Err(QuotaError::Invalid(format!(
                    "Duplicate {kind} filter component"
                )));
            }
            *slot = Some(m);
        }
        if f.ip.is_some() && (f.user.is_some() || f.client_id.is_some()) {
            return Err(QuotaError::Invalid(
                "Invalid entity filter component combination: ip with user or client-id".into(),
            ));
        }
        Ok(f)
    }

    pub fn matches(&self, e: &QuotaEntity) -> bool {
        fn one(m: &Option<NameMatch>, name: &Option<EntityName>, strict: bool) -> bool {
            match (m, name) {
                (None, None) => true,
                (None, Some(_)) => !strict,
                (Some(_), None) => false,
                (Some(NameMatch::Exact(want)), Some(n)) => n.matches(want),
                (Some(NameMatch::Default), Some(n)) => *n == EntityName::Default,
                (Some(NameMatch::Specified), Some(n)) => *n != EntityName::Default,
            }
        }
        one(&self.user, &e.user, self.strict)
            && one(&self.client_id, &e.client_id, self.strict)
            && one(&self.ip, &e.ip, self.strict)
    }
}

/// What a quota measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaKind {
    /// Produce request bytes per second.
    Produce,
    /// Fetch response bytes per second.
    Fetch,
    /// Request handling time, in percent of one thread.
    Request,
}

impl QuotaKind {
    pub fn key(self) -> &'static str {
        match self {
            QuotaKind::Produce => PRODUCER_BYTE_RATE,
            QuotaKind::Fetch => CONSUMER_BYTE_RATE,
            QuotaKind::Request => REQUEST_PERCENTAGE,
        }
    }
}

/// The quota of `kind` that applies to `user` with `client_id`, in Kafka's order of precedence
/// (`/config/users/<user>/clients/<client-id>` first, `/config/clients/<default>` last), and
/// the pair its rate is kept for: the user and/or client-id the deciding entity names, so that
/// a default quota is applied to each user (or client-id) separately, as Kafka's metric tags.
pub fn resolve(
    quotas: &QuotaMap,
    kind: QuotaKind,
    user: &str,
    client_id: &str,
) -> Option<(f64, (String, String))> {
    use EntityName::{Default as D, Named};
    let u = || Some(Named(user.to_string()));
    let c = || Some(Named(client_id.to_string()));
    let order = [
        (u(), c()),
        (u(), Some(D)),
        (u(), None),
        (Some(D), c()),
        (Some(D), Some(D)),
        (Some(D), None),
        (None, c()),
        (None, Some(D)),
    ];
    order.into_iter().find_map(|(user_part, client_part)| {
        let tags = (
            if user_part.is_some() { user } else { "" }.to_string(),
            if client_part.is_some() { client_id } else { "" }.to_string(),
        );
        let entity = QuotaEntity {
            user: user_part,
            client_id: client_part,
            ip: None,
        };
        quotas
            .get(&entity)
            .and_then(|v| v.get(kind.key()))
            .map(|v| (*v, tags))
    })
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum QuotaError {
    #[error("{0}")]
    Invalid(String),
    #[error("too many quota entities (at most {MAX_ENTITIES})")]
    TooMany,
    #[error("quota store: {0}")]
    Store(String),
}

impl From<LocalQuotaError> for QuotaError {
    fn from(e: LocalQuotaError) -> Self {
        QuotaError::Store(e.to_string())
    }
}

impl From<crate::cluster::store::StoreError> for QuotaError {
    fn from(e: crate::cluster::store::StoreError) -> Self {
        QuotaError::Store(e.to_string())
    }
}

enum Store {
    Local(Arc<LocalQuotaStore>),
    Cluster(Arc<EtcdStore>),
}

/// The `connection_creation_rate` that applies to `ip`: its own entity's, else the default IP
/// entity's (Kafka's order); `None`: unlimited.
pub fn connection_rate_for_ip(quotas: &QuotaMap, ip: std::net::IpAddr) -> Option<f64> {
    let entity = |name| QuotaEntity {
        ip: Some(name),
        ..QuotaEntity::default()
    };
    [
        entity(EntityName::Named(ip.to_string())),
        entity(EntityName::Default),
    ]
    .iter()
    .find_map(|e| quotas.get(e).and_then(|v| v.get(CONNECTION_CREATION_RATE)))
    .copied()
}

/// The broker's quotas: the configured values and the sensors measuring clients against them.
pub struct ClientQuotas {
    store: Store,
    sensors: Mutex<Sensors<(QuotaKind, String, String)>>,
    /// Connections created per client IP (bounded like `sensors`; idle IPs make room).
    ip_sensors: Mutex<Sensors<std::net::IpAddr>>,
}

impl ClientQuotas {
    /// A single node's quotas, kept in `meta_dir`.
    pub fn open_local(meta_dir: &std::path::Path) -> Result<Self, QuotaError> {
        Ok(Self::new(Store::Local(Arc::new(LocalQuotaStore::open(
            meta_dir,
        )?))))
    }

    /// A cluster member's quotas, kept in etcd (every broker watches them).
    pub fn clustered(store: Arc<EtcdStore>) -> Self {
        Self::new(Store::Cluster(store))
    }

    fn new(store: Store) -> Self {
        Self {
            store,
            sensors: Mutex::new(Sensors::default()),
            ip_sensors: Mutex::new(Sensors::default()),
        }
    }

    /// The quota values now.
    pub fn quotas(&self) -> Arc<QuotaMap> {
        match &self.store {
            Store::Local(s) => s.current(),
            Store::Cluster(s) => s.with_view(|v| v.quotas.clone()),
        }
    }

    /// Records `value` (bytes, or percent-seconds of request time) for the client and returns
    /// how long to throttle it; 0 when no quota of `kind` applies to it.
    pub fn record(
        &self,
        kind: QuotaKind,
        user: &str,
        client_id: &str,
        value: f64,
        now_ms: i64,
    ) -> i64 {
        let quotas = self.quotas();
        if quotas.is_empty() {
            return 0;
        }
        let Some((bound, (u, c))) = resolve(&quotas, kind, user, client_id) else {
            return 0;
        };
        self.sensors
            .lock()
            .record(&(kind, u, c), value, bound, now_ms)
    }

    /// Records a new connection from `ip` against its `connection_creation_rate` and returns 0
    /// to accept it, or how long to hold it before closing it (a refused connection is not
    /// counted, as Kafka's `ConnectionQuotas`).
    pub fn record_connection(&self, ip: std::net::IpAddr, now_ms: i64) -> i64 {
        let quotas = self.quotas();
        let Some(bound) = connection_rate_for_ip(&quotas, ip) else {
            return 0;
        };
        self.ip_sensors
            .lock()
            .record_unless_over(&ip, 1.0, bound, now_ms)
    }

    /// The entities passing `filter`, with their values.
    pub fn describe(&self, filter: &QuotaFilter) -> Vec<(QuotaEntity, QuotaValues)> {
        self.quotas()
            .iter()
            .filter(|(e, _)| filter.matches(e))
            .map(|(e, v)| (e.clone(), v.clone()))
            .collect()
    }

    /// Applies each entity's changes (checked first, one result per entry in order); with
    /// `validate_only` nothing is stored. The valid entries are stored together, durably,
    /// before this returns.
    pub async fn alter(
        &self,
        entries: Vec<(Result<QuotaEntity, QuotaError>, Vec<QuotaChange>)>,
        validate_only: bool,
    ) -> Vec<Result<(), QuotaError>> {
        let current = self.quotas();
        let mut next: Vec<(QuotaEntity, QuotaValues)> = Vec::new();
        let mut results = Vec::with_capacity(entries.len());
        for (entity, changes) in entries {
            let outcome = entity.and_then(|e| {
                if next.iter().any(|(n, _)| *n == e) {
                    return Err(QuotaError::Invalid(format!(
                        "Entity {e} appears more than once in the request"
                    )));
                }
                let mut values = current.get(&e).cloned().unwrap_or_default();
                apply_changes(&mut values, &changes)?;
                changes
                    .iter()
                    .try_for_each(|c| validate_key_for(&e, &c.key))?;
                next.push((e, values));
                Ok(())
            });
            results.push(outcome);
        }
        let new_entities = next
            .iter()
            .filter(|(e, v)| !v.is_empty() && !current.contains_key(e))
            .count();
        if current.len() + new_entities > MAX_ENTITIES {
            for r in results.iter_mut().filter(|r| r.is_ok()) {
                *r = Err(QuotaError::TooMany);
            }
            return results;
        }
        if validate_only || next.is_empty() {
            return results;
        }
        let outcome = match &self.store {
            Store::Local(store) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.put(next))
                    .await
                    .unwrap_or_else(|_| Err(QuotaError::Store("the store's task failed".into())))
            }
            Store::Cluster(store) => match store.put_quotas(&next).await {
                Ok(rev) if store.wait_for_revision(rev, APPLY_WAIT_MS).await => Ok(()),
                Ok(_) => Err(QuotaError::Store(
                    "the change was written but has not reached this broker yet".into(),
                )),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(user: Option<EntityName>, client_id: Option<EntityName>) -> QuotaEntity {
        QuotaEntity {
            user,
            client_id,
            ip: None,
        }
    }

    fn named(s: &str) -> Option<EntityName> {
        Some(EntityName::Named(s.into()))
    }

    const D: Option<EntityName> = Some(EntityName::Default);

    #[test]
    fn precedence_follows_kafka_from_most_to_least_specific() {
        let levels = [
            entity(named("alice"), named("app")),
            entity(named("alice"), D),
            entity(named("alice"), None),
            entity(D, named("app")),
            entity(D, D),
            entity(D, None),
            entity(None, named("app")),
            entity(None, D),
        ];
        let mut quotas = QuotaMap::new();
        for (i, e) in levels.iter().enumerate() {
            quotas.insert(
                e.clone(),
                QuotaValues::from([(PRODUCER_BYTE_RATE.into(), (i + 1) as f64)]),
            );
        }
        // Removing the most specific level each time reveals the next one.
        for (i, e) in levels.iter().enumerate() {
            let (bound, _) =
                resolve(&quotas, QuotaKind::Produce, "alice", "app").expect("a quota applies");
            assert_eq!(bound, (i + 1) as f64, "level {i}: {e}");
            quotas.remove(e);
        }
        assert_eq!(resolve(&quotas, QuotaKind::Produce, "alice", "app"), None);
    }

    #[test]
    fn each_kind_is_resolved_on_its_own_and_defaults_are_per_client() {
        let mut quotas = QuotaMap::new();
        quotas.insert(
            entity(named("alice"), None),
            QuotaValues::from([(CONSUMER_BYTE_RATE.into(), 10.0)]),
        );
        quotas.insert(
            entity(None, D),
            QuotaValues::from([(PRODUCER_BYTE_RATE.into(), 20.0)]),
        );
        assert_eq!(
            resolve(&quotas, QuotaKind::Fetch, "alice", "x"),
            Some((10.0, ("alice".into(), String::new())))
        );
        // The client-id default gives each client-id its own rate.
        assert_eq!(
            resolve(&quotas, QuotaKind::Produce, "alice", "x"),
            Some((20.0, (String::new(), "x".into())))
        );
        assert_eq!(resolve(&quotas, QuotaKind::Fetch, "bob", "x"), None);
        assert_eq!(resolve(&quotas, QuotaKind::Request, "alice", "x"), None);
    }

    #[test]
    fn entities_and_values_are_checked_as_kafka() {
        let c = |t: &str, n: Option<&str>| (t.to_string(), n.map(String::from));
        assert!(QuotaEntity::from_components(&[]).is_err());
        assert!(QuotaEntity::from_components(&[c(USER, Some("a")), c(USER, Some("b"))]).is_err());
        assert!(QuotaEntity::from_components(&[c("group", Some("a"))]).is_err());
        assert!(QuotaEntity::from_components(&[c(IP, Some("not-an-ip"))]).is_err());
        assert_eq!(
            QuotaEntity::from_components(&[c(CLIENT_ID, None), c(USER, Some("a"))]).ok(),
            Some(entity(named("a"), D))
        );
        assert!(validate_value(PRODUCER_BYTE_RATE, 1024.0).is_ok());
        assert!(validate_value(PRODUCER_BYTE_RATE, 10.5).is_err());
        assert!(validate_value(CONSUMER_BYTE_RATE, 0.0).is_err());
        assert!(validate_value(REQUEST_PERCENTAGE, 12.5).is_ok());
        assert!(validate_value(REQUEST_PERCENTAGE, f64::NAN).is_err());
        assert!(validate_value("controller_mutation_rate", 1.0).is_err());
        assert!(validate_value("bogus", 1.0).is_err());
        let mut values = QuotaValues::new();
        let set = |k: &str, v| QuotaChange {
            key: k.into(),
            value: Some(v),
        };
        assert!(apply_changes(
            &mut values,
            &[set(PRODUCER_BYTE_RATE, 1.0), set(PRODUCER_BYTE_RATE, 2.0)]
        )
        .is_err());
        assert!(values.is_empty());
    }

    #[test]
    fn filters_match_as_describe_client_quotas() {
        let all = [
            entity(named("alice"), None),
            entity(named("alice"), named("app")),
            entity(D, None),
            entity(None, named("app")),
        ];
        let pick = |f: QuotaFilter| -> Vec<QuotaEntity> {
            all.iter().filter(|e| f.matches(e)).cloned().collect()
        };
        let f = |c: &[(&str, i8, Option<&str>)], strict| {
            let c: Vec<(String, i8, Option<String>)> = c
                .iter()
                .map(|(t, m, n)| (t.to_string(), *m, n.map(String::from)))
                .collect();
            QuotaFilter::new(&c, strict).expect("valid filter")
        };
        assert_eq!(
            pick(f(&[(USER, 0, Some("alice"))], false)),
            vec![all[0].clone(), all[1].clone()]
        );
        assert_eq!(
            pick(f(&[(USER, 0, Some("alice"))], true)),
            vec![all[0].clone()]
        );
        assert_eq!(pick(f(&[(USER, 1, None)], false)), vec![all[2].clone()]);
        assert_eq!(
            pick(f(&[(USER, 2, None)], false)),
            vec![all[0].clone(), all[1].clone()]
        );
        assert_eq!(pick(f(&[], false)).len(), 4);
        assert!(pick(f(&[(IP, 2, None)], false)).is_empty());
        assert!(QuotaFilter::new(&[(USER.into(), 5, None)], false).is_err());
        assert!(QuotaFilter::new(&[(USER.into(), 0, None)], false).is_err());
        assert!(QuotaFilter::new(&[(USER.into(), 1, Some("a".into()))], false).is_err());
        assert!(QuotaFilter::new(&[(USER.into(), 2, None), (IP.into(), 2, None)], false).is_err());
    }

    #[test]
    fn ip_entities_stand_alone_with_their_one_key() {
        let c = |t: &str, n: Option<&str>| (t.to_string(), n.map(String::from));
        let ip = QuotaEntity::from_components(&[c(IP, Some("0:0::1"))]).expect("an ip entity");
        assert_eq!(ip.ip, Some(EntityName::Named("::1".into())));
        assert_eq!(ip.components(), vec![c(IP, Some("::1"))]);
        assert!(QuotaEntity::from_components(&[c(IP, Some("host.example"))]).is_err());
        assert!(QuotaEntity::from_components(&[c(IP, None), c(USER, Some("a"))]).is_err());
        let default_ip = QuotaEntity::from_components(&[c(IP, None)]).expect("the default ip");
        assert!(validate_key_for(&default_ip, CONNECTION_CREATION_RATE).is_ok());
        assert!(validate_key_for(&default_ip, PRODUCER_BYTE_RATE).is_err());
        assert!(validate_key_for(&entity(named("a"), None), CONNECTION_CREATION_RATE).is_err());
        assert!(validate_value(CONNECTION_CREATION_RATE, 0.0).is_ok());
        assert!(validate_value(CONNECTION_CREATION_RATE, 2.5).is_err());
        assert!(validate_value(CONNECTION_CREATION_RATE, -1.0).is_err());
        assert_eq!(QuotaEntity::from_id(&ip.id()), Some(ip.clone()));
        // An entity with an ip and a user is not a record a broker trusts.
        let mixed = QuotaEntity {
            user: named("a"),
            ..ip.clone()
        };
        assert_eq!(QuotaEntity::from_id(&mixed.id()), None);

        let rate = |v: f64| QuotaValues::from([(CONNECTION_CREATION_RATE.into(), v)]);
        let mut quotas = QuotaMap::new();
        let local: std::net::IpAddr = "127.0.0.1".parse().expect("ip");
        let other: std::net::IpAddr = "10.0.0.1".parse().expect("ip");
        assert_eq!(connection_rate_for_ip(&quotas, local), None);
        quotas.insert(default_ip.clone(), rate(5.0));
        quotas.insert(
            QuotaEntity::from_components(&[c(IP, Some("127.0.0.1"))]).expect("ip"),
            rate(2.0),
        );
        assert_eq!(connection_rate_for_ip(&quotas, local), Some(2.0));
        assert_eq!(connection_rate_for_ip(&quotas, other), Some(5.0));
        // User and client-id quotas never come from an ip entity.
        assert_eq!(resolve(&quotas, QuotaKind::Produce, "127.0.0.1", "x"), None);

        let f = |m: i8, n: Option<&str>, strict| {
            QuotaFilter::new(&[(IP.into(), m, n.map(String::from))], strict).expect("filter")
        };
        assert!(f(0, Some("::1"), true).matches(&ip));
        assert!(f(2, None, true).matches(&ip));
        assert!(!f(2, None, true).matches(&default_ip));
        assert!(f(1, None, true).matches(&default_ip));
        let users = QuotaFilter::new(&[(USER.into(), 2, None)], false).expect("filter");
        assert!(!users.matches(&ip));
        assert!(QuotaFilter::new(&[], false).expect("filter").matches(&ip));
    }

    #[test]
    fn entity_ids_round_trip() {
        let e = entity(named("a/b"), D);
        assert_eq!(QuotaEntity::from_id(&e.id()), Some(e.clone()));
        assert!(!e.id().contains('/'));
        assert_eq!(QuotaEntity::from_id("not base64!"), None);
    }
}
