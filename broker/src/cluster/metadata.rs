//! Weir's cluster metadata as stored in etcd: the key layout, the JSON records, and the
//! [`ClusterView`] each broker rebuilds from them.
//!
//! Every key lives under one prefix per cluster, `/weir/<cluster-name>/`:
//!
//! | key | value | written by |
//! | --- | --- | --- |
//! | `cluster_id` | the Kafka cluster id (22 characters) | the first broker, create-if-absent |
//! | `brokers/<id>` | [`BrokerRecord`], under the broker's lease | each broker for itself |
//! | `controller` | [`ControllerRecord`], under the controller's lease | whoever wins the election |
//! | `topics/<name>` | [`TopicRecord`]: id, configs, target replica set per partition | any broker handling an admin request; the controller |
//! | `leaders/<topic>/<partition>` | [`LeaderRecord`], under the leader's lease | the partition's leader |
//! | `elections/<topic>/<partition>` | [`ElectionRequest`] | ElectLeaders; removed by the leader |
//! | `acls/<id>` | an [`AclBinding`]; the id is [`acl_id`] of it | CreateAcls / DeleteAcls on any broker |
//! | `configs/broker-default` | the cluster-wide dynamic broker configs (BROKER resource `""`): a JSON object of name to value | AlterConfigs / IncrementalAlterConfigs on any broker |
//! | `configs/groups/<group>` | a group's dynamic configs (GROUP resource), same shape; the rest of the key is the group id, '/' included | AlterConfigs / IncrementalAlterConfigs on any broker |
//! | `quotas/<id>` | a [`QuotaRecord`]; the id is [`QuotaEntity::id`] of its entity | AlterClientQuotas on any broker |
//! | `scram/<user>` | a [`ScramRecord`]: the user's SCRAM credentials by mechanism (salt, StoredKey, ServerKey, iterations; never a password); the rest of the key is the user name, '/' included | AlterUserScramCredentials on any broker |
//!
//! Writes that depend on what they replace are transactions comparing the key's mod revision.
//! Every broker watches the whole prefix from the revision it read, so all apply the same changes
//! in the same order. Owns no IO.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::authz::acl::AclBinding;
use crate::authz::{acl_id, AclMap};
use crate::cluster::etcd::{KeyValue, WatchEvent};
use crate::dynamic_config::Overrides;
use crate::quota::{validate_values, QuotaEntity, QuotaMap, QuotaRecord};
use crate::security::scram::{ScramCredential, ScramMechanism};
use crate::topic_config::TopicConfig;

/// A live broker, registered under its lease. `host` and `port` are where other brokers reach it
/// (its inter-broker listener); `endpoints` what it advertises on each listener.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BrokerRecord {
    pub id: i32,
    pub host: String,
    pub port: i32,
    #[serde(default)]
    pub rack: Option<String>,
    /// The advertised address of each listener, by listener name (empty in records written
    /// before brokers had several listeners).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<BrokerEndpoint>,
}

/// One advertised listener of a broker.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BrokerEndpoint {
    pub listener: String,
    pub host: String,
    pub port: i32,
}

impl BrokerRecord {
    /// The record as clients of listener `name` see it: host and port of that listener, as
    /// Kafka answers each listener with its own addresses. A broker without that listener keeps
    /// its inter-broker address (the brokers of a cluster are expected to share listener names).
    pub fn for_listener(mut self, name: Option<&str>) -> Self {
        if let Some(e) = name.and_then(|n| self.endpoints.iter().find(|e| e.listener == n)) {
            self.host = e.host.clone();
            self.port = e.port;
        }
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ControllerRecord {
    pub id: i32,
}

/// A topic and where its partitions' replicas should be. The replica list of a partition is the
/// target: its leader moves the partition's voter set towards it. The first replica is the
/// preferred leader.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TopicRecord {
    pub name: String,
    /// Topic id as a UUID string.
    pub id: String,
    #[serde(default)]
    pub internal: bool,
    pub config: TopicConfig,
    pub replicas: Vec<Vec<i32>>,
}

/// Who leads a partition, as its leader publishes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeaderRecord {
    pub leader: i32,
    pub epoch: i32,
    /// Voters whose logs reach the high watermark and that fetched recently (Kafka's ISR).
    pub isr: Vec<i32>,
    /// The voter set in force.
    pub voters: Vec<i32>,
}

/// A request that a partition's leadership move to `preferred` (ElectLeaders).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ElectionRequest {
    pub preferred: i32,
}

/// The keys of one cluster.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

/// What a key under the prefix names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    ClusterId,
    Broker(i32),
    Controller,
    Topic(String),
    Leader(String, i32),
    Election(String, i32),
    Acl(String),
    BrokerDefaultConfigs,
    GroupConfigs(String),
    Quota(QuotaEntity),
    Scram(String),
    Other,
}

/// A user's SCRAM credentials by mechanism, as kept in etcd and in the view.
pub type ScramUsers = BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>;

/// The value of `scram/<user>`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScramRecord {
    pub user: String,
    pub credentials: BTreeMap<ScramMechanism, ScramCredential>,
}

const BROKER_DEFAULT_CONFIGS: &str = "configs/broker-default";
const GROUP_CONFIGS: &str = "configs/groups/";
const SCRAM_USERS: &str = "scram/";

impl Keys {
    pub fn new(cluster_name: &str) -> Self {
        Self {
            prefix: format!("/weir/{cluster_name}/"),
        }
    }

    pub fn prefix(&self) -> &[u8] {
        self.prefix.as_bytes()
    }

    pub fn cluster_id(&self) -> Vec<u8> {
        format!("{}cluster_id", self.prefix).into_bytes()
    }

    pub fn broker(&self, id: i32) -> Vec<u8> {
        format!("{}brokers/{id}", self.prefix).into_bytes()
    }

    pub fn controller(&self) -> Vec<u8> {
        format!("{}controller", self.prefix).into_bytes()
    }

    pub fn topic(&self, name: &str) -> Vec<u8> {
        format!("{}topics/{name}", self.prefix).into_bytes()
    }

    pub fn leader(&self, topic: &str, partition: i32) -> Vec<u8> {
        format!("{}leaders/{topic}/{partition}", self.prefix).into_bytes()
    }

    pub fn leaders_of(&self, topic: &str) -> Vec<u8> {
        format!("{}leaders/{topic}/", self.prefix).into_bytes()
    }

    pub fn election(&self, topic: &str, partition: i32) -> Vec<u8> {
        format!("{}elections/{topic}/{partition}", self.prefix).into_bytes()
    }

    pub fn acl(&self, id: &str) -> Vec<u8> {
        format!("{}acls/{id}", self.prefix).into_bytes()
    }

    pub fn broker_default_configs(&self) -> Vec<u8> {
        format!("{}{BROKER_DEFAULT_CONFIGS}", self.prefix).into_bytes()
    }

    /// A group's configs. Group ids may contain '/' (unlike topic names): the whole rest of the
    /// key is the id.
    pub fn group_configs(&self, group: &str) -> Vec<u8> {
        format!("{}{GROUP_CONFIGS}{group}", self.prefix).into_bytes()
    }

    pub fn quota(&self, id: &str) -> Vec<u8> {
        format!("{}quotas/{id}", self.prefix).into_bytes()
    }

    /// A user's SCRAM credentials; the whole rest of the key is the user name.
    pub fn scram_user(&self, user: &str) -> Vec<u8> {
        format!("{}{SCRAM_USERS}{user}", self.prefix).into_bytes()
    }

    /// What `key` names. Topic names cannot contain '/', so the split is unambiguous; a group id
    /// is whatever follows `configs/groups/`.
    pub fn kind(&self, key: &[u8]) -> KeyKind {
        let Some(rest) = std::str::from_utf8(key)
            .ok()
            .and_then(|k| k.strip_prefix(self.prefix.as_str()))
        else {
            return KeyKind::Other;
        };
        if rest == BROKER_DEFAULT_CONFIGS {
            return KeyKind::BrokerDefaultConfigs;
        }
        if let Some(user) = rest.strip_prefix(SCRAM_USERS) {
            return if user.is_empty() {
                KeyKind::Other
            } else {
                KeyKind::Scram(user.to_string())
            };
        }
        if let Some(group) = rest.strip_prefix(GROUP_CONFIGS) {
            return if group.is_empty() {
                KeyKind::Other
            } else {
                KeyKind::GroupConfigs(group.to_string())
            };
        }
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            ["cluster_id"] => KeyKind::ClusterId,
            ["controller"] => KeyKind::Controller,
            ["brokers", id] => id.parse().map_or(KeyKind::Other, KeyKind::Broker),
            ["topics", name] => KeyKind::Topic((*name).to_string()),
            ["leaders", topic, p] => p
                .parse()
                .map_or(KeyKind::Other, |p| KeyKind::Leader((*topic).to_string(), p)),
            ["elections", topic, p] => p.parse().map_or(KeyKind::Other, |p| {
                KeyKind::Election((*topic).to_string(), p)
            }),
            ["acls", id] => KeyKind::Acl((*id).to_string()),
            ["quotas", id] => QuotaEntity::from_id(id).map_or(KeyKind::Other, KeyKind::Quota),
            _ => KeyKind::Other,
        }
    }
}

/// The metadata as one broker currently sees it. Cheap to clone (topics are shared).
#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    pub cluster_id: Option<String>,
    pub controller: Option<i32>,
    pub brokers: BTreeMap<i32, BrokerRecord>,
    pub topics: BTreeMap<String, Arc<TopicRecord>>,
    /// etcd mod revision of each topic record (for compare-and-swap updates).
    pub topic_revisions: BTreeMap<String, i64>,
    pub leaders: BTreeMap<(String, i32), LeaderRecord>,
    pub elections: BTreeMap<(String, i32), ElectionRequest>,
    /// The ACLs by id. Replaced (not changed in place) when they change, so the authorizer
    /// knows to rebuild its index by comparing pointers.
    pub acls: Arc<AclMap>,
    /// The cluster-wide dynamic broker configs (BROKER resource `""`).
    pub broker_default_configs: Overrides,
    /// Each group's dynamic configs (groups without any are absent). Shared, as it may be large
    /// and the view is cloned.
    pub group_configs: Arc<BTreeMap<String, Overrides>>,
    /// The client quotas by entity (replaced, not changed in place, like `acls`).
    pub quotas: Arc<QuotaMap>,
    /// SCRAM credentials by user (shared: the view is cloned).
    pub scram: Arc<ScramUsers>,
    /// The etcd revision this view reflects.
    pub revision: i64,
}

/// A value that did not parse; the key is skipped (and logged) rather than trusted.
#[derive(Debug, thiserror::Error)]
#[error("metadata key {key}: {reason}")]
pub struct BadRecord {
    pub key: String,
    pub reason: String,
}

fn parse<T: serde::de::DeserializeOwned>(key: &[u8], value: &[u8]) -> Result<T, BadRecord> {
    serde_json::from_slice(value).map_err(|e| BadRecord {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: e.to_string(),
    })
}

impl ClusterView {
    /// Applies one key's current value.
    pub fn apply_put(&mut self, keys: &Keys, kv: &KeyValue) -> Result<(), BadRecord> {
        match keys.kind(&kv.key) {
            KeyKind::ClusterId => {
                self.cluster_id = Some(String::from_utf8_lossy(&kv.value).trim().to_string());
            }
            KeyKind::Broker(id) => {
                let rec: BrokerRecord = parse(&kv.key, &kv.value)?;
                self.brokers.insert(id, rec);
            }
            KeyKind::Controller => {
                let rec: ControllerRecord = parse(&kv.key, &kv.value)?;
                self.controller = Some(rec.id);
            }
            KeyKind::Topic(name) => {
                let rec: TopicRecord = parse(&kv.key, &kv.value)?;
                self.topic_revisions.insert(name.clone(), kv.mod_revision);
                self.topics.insert(name, Arc::new(rec));
            }
            KeyKind::Leader(topic, p) => {
                let rec: LeaderRecord = parse(&kv.key, &kv.value)?;
                self.leaders.insert((topic, p), rec);
            }
            KeyKind::Election(topic, p) => {
                let rec: ElectionRequest = parse(&kv.key, &kv.value)?;
                self.elections.insert((topic, p), rec);
            }
            KeyKind::Acl(id) => {
                let acl: AclBinding = parse(&kv.key, &kv.value)?;
                // A record must be what its key says (and a valid ACL): anything else was not
                // written by a broker and is not trusted.
                if acl.validate().is_err() || acl_id(&acl) != id {
                    return Err(BadRecord {
                        key: String::from_utf8_lossy(&kv.key).into_owned(),
                        reason: "not a valid ACL for this key".into(),
                    });
                }
                Arc::make_mut(&mut self.acls).insert(id, acl);
            }
            KeyKind::BrokerDefaultConfigs => {
                self.broker_default_configs = parse(&kv.key, &kv.value)?;
            }
            KeyKind::GroupConfigs(group) => {
                let set: Overrides = parse(&kv.key, &kv.value)?;
                Arc::make_mut(&mut self.group_configs).insert(group, set);
            }
            KeyKind::Quota(entity) => {
                let rec: QuotaRecord = parse(&kv.key, &kv.value)?;
                if rec.entity != entity || validate_values(&entity, &rec.values).is_err() {
                    return Err(BadRecord {
                        key: String::from_utf8_lossy(&kv.key).into_owned(),
                        reason: "not valid quotas for this key".into(),
                    });
                }
                Arc::make_mut(&mut self.quotas).insert(entity, rec.values);
            }
            KeyKind::Scram(user) => {
                let rec: ScramRecord = parse(&kv.key, &kv.value)?;
                if rec.user != user || rec.credentials.is_empty() {
                    return Err(BadRecord {
                        key: String::from_utf8_lossy(&kv.key).into_owned(),
                        reason: "not SCRAM credentials of this key's user".into(),
                    });
                }
                Arc::make_mut(&mut self.scram).insert(user, rec.credentials);
            }
            KeyKind::Other => {}
        }
        Ok(())
    }

    pub fn apply_delete(&mut self, keys: &Keys, key: &[u8]) {
        match keys.kind(key) {
            KeyKind::ClusterId => self.cluster_id = None,
            KeyKind::Broker(id) => {
                self.brokers.remove(&id);
            }
            KeyKind::Controller => self.controller = None,
            KeyKind::Topic(name) => {
                self.topics.remove(&name);
                self.topic_revisions.remove(&name);
            }
            KeyKind::Leader(topic, p) => {
                self.leaders.remove(&(topic, p));
            }
            KeyKind::Election(topic, p) => {
                self.elections.remove(&(topic, p));
            }
            KeyKind::Acl(id) => {
                if self.acls.contains_key(&id) {
                    Arc::make_mut(&mut self.acls).remove(&id);
                }
            }
            KeyKind::BrokerDefaultConfigs => self.broker_default_configs.clear(),
            KeyKind::GroupConfigs(group) => {
                if self.group_configs.contains_key(&group) {
                    Arc::make_mut(&mut self.group_configs).remove(&group);
                }
            }
            KeyKind::Quota(entity) => {
                if self.quotas.contains_key(&entity) {
                    Arc::make_mut(&mut self.quotas).remove(&entity);
                }
            }
            KeyKind::Scram(user) => {
                if self.scram.contains_key(&user) {
                    Arc::make_mut(&mut self.scram).remove(&user);
                }
            }
            KeyKind::Other => {}
        }
    }

    /// Applies a watch event; a bad record is reported and skipped.
    pub fn apply(&mut self, keys: &Keys, event: &WatchEvent) -> Result<(), BadRecord> {
        match event {
            WatchEvent::Put(kv) => self.apply_put(keys, kv),
            WatchEvent::Delete { key, .. } => {
                self.apply_delete(keys, key);
                Ok(())
            }
        }
    }

    /// Replicas hosted per broker, for placement.
    pub fn replica_load(&self) -> BTreeMap<i32, usize> {
        let mut load = BTreeMap::new();
        for t in self.topics.values() {
            for r in t.replicas.iter().flatten() {
                *load.entry(*r).or_default() += 1;
            }
        }
        load
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: Vec<u8>, value: &str) -> KeyValue {
        KeyValue {
            key,
            value: value.as_bytes().to_vec(),
            mod_revision: 7,
            create_revision: 1,
            version: 1,
            lease: 0,
        }
    }

    #[test]
    fn keys_round_trip_through_kind() {
        let k = Keys::new("dev");
        assert_eq!(k.kind(&k.broker(3)), KeyKind::Broker(3));
        assert_eq!(k.kind(&k.topic("orders")), KeyKind::Topic("orders".into()));
        assert_eq!(
            k.kind(&k.leader("a.b-c", 12)),
            KeyKind::Leader("a.b-c".into(), 12)
        );
        assert_eq!(k.kind(&k.controller()), KeyKind::Controller);
        assert_eq!(k.kind(b"/weir/other/brokers/1"), KeyKind::Other);
        assert_eq!(k.kind(&k.broker(1)[..10]), KeyKind::Other);
    }

    #[test]
    fn config_keys_have_their_own_places() {
        let k = Keys::new("dev");
        assert_eq!(
            k.broker_default_configs(),
            b"/weir/dev/configs/broker-default"
        );
        assert_eq!(
            k.group_configs("orders"),
            b"/weir/dev/configs/groups/orders"
        );
        assert_eq!(
            k.kind(&k.broker_default_configs()),
            KeyKind::BrokerDefaultConfigs
        );
        // Group ids may hold '/' (and anything else a client sends): the rest of the key.
        for group in ["orders", "a/b", "configs/groups/x", "/", "g "] {
            assert_eq!(
                k.kind(&k.group_configs(group)),
                KeyKind::GroupConfigs(group.to_string()),
                "{group:?}"
            );
        }
        // No group without a name, and other clusters' keys are not ours.
        assert_eq!(k.kind(&k.group_configs("")), KeyKind::Other);
        assert_eq!(k.kind(b"/weir/other/configs/groups/g"), KeyKind::Other);
        assert_eq!(
            k.kind(b"/weir/dev/configs/broker-default/x"),
            KeyKind::Other
        );
    }

    #[test]
    fn the_view_follows_config_puts_and_deletes() {
        let k = Keys::new("dev");
        let mut v = ClusterView::default();
        v.apply_put(
            &k,
            &kv(k.broker_default_configs(), r#"{"log.retention.ms":"1000"}"#),
        )
        .expect("broker defaults");
        v.apply_put(
            &k,
            &kv(
                k.group_configs("a/b"),
                r#"{"share.delivery.count.limit":"3"}"#,
            ),
        )
        .expect("group configs");
        assert_eq!(v.broker_default_configs["log.retention.ms"], "1000");
        assert_eq!(v.group_configs["a/b"]["share.delivery.count.limit"], "3");
        // A value that is not a set of strings is skipped; what was there stays.
        assert!(v
            .apply_put(&k, &kv(k.group_configs("a/b"), r#"{"x":1}"#))
            .is_err());
        assert_eq!(v.group_configs["a/b"]["share.delivery.count.limit"], "3");
        v.apply_delete(&k, &k.group_configs("a/b"));
        v.apply_delete(&k, &k.broker_default_configs());
        assert!(v.group_configs.is_empty());
        assert!(v.broker_default_configs.is_empty());
    }

    #[test]
    fn a_broker_is_described_with_the_addresses_of_the_asking_listener() {
        let k = Keys::new("dev");
        let mut v = ClusterView::default();
        let rec = r#"{"id":1,"host":"10.0.0.1","port":9092,"endpoints":[
            {"listener":"PLAINTEXT","host":"10.0.0.1","port":9092},
            {"listener":"SASL_SSL","host":"kafka1.example","port":9094}]}"#;
        v.apply_put(&k, &kv(k.broker(1), rec)).expect("broker");
        let b = v.brokers[&1].clone();
        let external = b.clone().for_listener(Some("SASL_SSL"));
        assert_eq!(
            (external.host.as_str(), external.port),
            ("kafka1.example", 9094)
        );
        // Outside a request and for a listener the broker lacks: the inter-broker address.
        let none = b.clone().for_listener(None);
        assert_eq!((none.host.as_str(), none.port), ("10.0.0.1", 9092));
        let other = b.for_listener(Some("INTERNAL"));
        assert_eq!((other.host.as_str(), other.port), ("10.0.0.1", 9092));
        // A record without endpoints (written before listeners) still reads.
        v.apply_put(&k, &kv(k.broker(2), r#"{"id":2,"host":"h","port":1}"#))
            .expect("old broker record");
        assert!(v.brokers[&2].endpoints.is_empty());
    }

    #[test]
    fn scram_records_are_applied_only_for_their_keys_user() {
        let k = Keys::new("dev");
        let mut v = ClusterView::default();
        let cred = ScramMechanism::Sha256.credential("pw", 4096);
        let record = |user: &str| {
            serde_json::to_string(&ScramRecord {
                user: user.into(),
                credentials: BTreeMap::from([(ScramMechanism::Sha256, cred.clone())]),
            })
            .expect("json")
        };
        // User names may hold '/': the whole rest of the key is the name.
        v.apply_put(&k, &kv(k.scram_user("ops/alice"), &record("ops/alice")))
            .expect("scram user");
        assert_eq!(
            v.scram["ops/alice"].get(&ScramMechanism::Sha256),
            Some(&cred)
        );
        // A record naming another user is not trusted.
        assert!(v
            .apply_put(&k, &kv(k.scram_user("bob"), &record("mallory")))
            .is_err());
        assert!(!v.scram.contains_key("bob"));
        v.apply_delete(&k, &k.scram_user("ops/alice"));
        assert!(v.scram.is_empty());
    }

    #[test]
    fn quota_records_are_applied_only_when_they_match_their_key() {
        use crate::quota::{EntityName, QuotaValues};
        let k = Keys::new("dev");
        let mut v = ClusterView::default();
        let alice = QuotaEntity {
            user: Some(EntityName::Named("alice/ops".into())),
            client_id: None,
            ip: None,
        };
        let record = |entity: &QuotaEntity, rate: f64| {
            serde_json::to_string(&QuotaRecord {
                entity: entity.clone(),
                values: QuotaValues::from([("producer_byte_rate".to_string(), rate)]),
            })
            .expect("json")
        };
        let key = k.quota(&alice.id());
        assert_eq!(k.kind(&key), KeyKind::Quota(alice.clone()));
        v.apply_put(&k, &kv(key.clone(), &record(&alice, 1024.0)))
            .expect("quota");
        assert_eq!(v.quotas[&alice]["producer_byte_rate"], 1024.0);
        // A record of another entity, or with a value a broker would refuse, is not trusted.
        let bob = QuotaEntity {
            user: Some(EntityName::Named("bob".into())),
            client_id: None,
            ip: None,
        };
        assert!(v
            .apply_put(&k, &kv(key.clone(), &record(&bob, 1.0)))
            .is_err());
        assert!(v
            .apply_put(&k, &kv(key.clone(), &record(&alice, -1.0)))
            .is_err());
        assert_eq!(v.quotas[&alice]["producer_byte_rate"], 1024.0);
        v.apply_delete(&k, &key);
        assert!(v.quotas.is_empty());
    }

    #[test]
    fn the_view_follows_puts_and_deletes_and_skips_bad_values() {
        let k = Keys::new("dev");
        let mut v = ClusterView::default();
        v.apply_put(&k, &kv(k.broker(1), r#"{"id":1,"host":"h","port":9092}"#))
            .expect("broker");
        let leader = r#"{"leader":1,"epoch":4,"isr":[1],"voters":[1]}"#;
        v.apply_put(&k, &kv(k.leader("t", 0), leader))
            .expect("leader");
        assert_eq!(v.brokers[&1].port, 9092);
        assert_eq!(v.leaders[&("t".to_string(), 0)].epoch, 4);
        assert!(v.apply_put(&k, &kv(k.broker(2), "{not json")).is_err());
        assert!(!v.brokers.contains_key(&2));
        v.apply(
            &k,
            &WatchEvent::Delete {
                key: k.broker(1),
                mod_revision: 9,
            },
        )
        .expect("delete");
        assert!(v.brokers.is_empty());
    }
}
