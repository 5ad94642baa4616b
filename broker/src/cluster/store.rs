//! The cluster metadata in etcd as this broker uses it: registration under a lease, the
//! [`ClusterView`] kept current by a watch, and the writes (topics, leaders, election requests,
//! the controller key, ACLs, dynamic configs, quotas, SCRAM credentials), each a transaction where
//! it depends on what it replaces.
//!
//! Owns the etcd connection and the tasks that keep the lease alive and the view current. When
//! etcd is unreachable, the view stays as last seen (the broker keeps serving what it leads),
//! writes fail with [`StoreError::Unavailable`], and the tasks reconnect and reload the whole
//! prefix when etcd is back (a watch cannot resume across a compaction).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::sync::watch;

use crate::authz::acl::AclBinding;
use crate::cluster::etcd::{Compare, EtcdClient, EtcdError, Op};
use crate::cluster::metadata::{
    BrokerRecord, ClusterView, ControllerRecord, ElectionRequest, Keys, LeaderRecord, ScramRecord,
    ScramUsers, TopicRecord,
};
use crate::dynamic_config::Overrides;
use crate::quota::{QuotaEntity, QuotaRecord, QuotaValues};
use crate::security::scram::{ScramCredential, ScramMechanism};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("metadata store (etcd) unavailable: {0}")]
    Unavailable(#[from] EtcdError),
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    #[error("metadata changed concurrently too many times; try again")]
    Contended,
    #[error("metadata record does not encode: {0}")]
    Encode(String),
}

/// How this broker joins a cluster.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub endpoints: Vec<String>,
    pub cluster_name: String,
    /// The broker's lease lives this long without a keep-alive (Kafka's broker.session.timeout.ms).
    pub session_ttl_s: i64,
    pub request_timeout_ms: u64,
}

/// The metadata store of one broker. See the module docs.
pub struct EtcdStore {
    client: EtcdClient,
    keys: Keys,
    me: BrokerRecord,
    ttl_s: i64,
    lease: AtomicI64,
    view: RwLock<ClusterView>,
    changed: watch::Sender<i64>,
    available: AtomicBool,
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Encode(e.to_string()))
}

/// The write of `record` at `key` (no lease), or its deletion when there is no record: how the
/// stores of entities without values (configs, quotas, SCRAM users) forget them.
fn put_or_delete<T: serde::Serialize>(key: Vec<u8>, record: Option<&T>) -> Result<Op, StoreError> {
    Ok(match record {
        Some(record) => Op::Put {
            key,
            value: encode(record)?,
            lease: None,
        },
        None => Op::Delete { key },
    })
}

/// Kafka cluster ids are 16 random bytes in URL-safe base64 without padding (22 characters).
pub fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uuid::Uuid::new_v4().as_u128();
    (0..22)
        .map(|i| ALPHABET[((bytes >> (i * 6)) & 63) as usize] as char)
        .collect()
}

/// How long to wait before trying etcd again after a failure.
const RETRY_MS: u64 = 500;
/// Operations per etcd transaction (etcd's default `--max-txn-ops`).
pub const MAX_TXN_OPS: usize = 128;
/// Transaction retries when a compare-and-swap loses a race.
const CAS_ATTEMPTS: usize = 16;

impl EtcdStore {
    /// Connects, makes sure the cluster has an id, registers this broker under a new lease and
    /// loads the metadata. Fails if etcd cannot be reached now (a broker does not start blind).
    pub async fn connect(cfg: &StoreConfig, me: BrokerRecord) -> Result<Arc<Self>, StoreError> {
        let client = EtcdClient::new(&cfg.endpoints, cfg.request_timeout_ms);
        let keys = Keys::new(&cfg.cluster_name);
        // The first broker to get here names the cluster; everyone else reads that name.
        let id_key = keys.cluster_id();
        client
            .txn(
                &[Compare::Version(id_key.clone(), 0)],
                &[Op::Put {
                    key: id_key,
                    value: new_cluster_id().into_bytes(),
                    lease: None,
                }],
                &[],
            )
            .await?;
        let (tx, _) = watch::channel(0);
        let store = Arc::new(Self {
            client,
            keys,
            me,
            ttl_s: cfg.session_ttl_s.max(2),
            lease: AtomicI64::new(0),
            view: RwLock::new(ClusterView::default()),
            changed: tx,
            available: AtomicBool::new(true),
        });
        store.register().await?;
        store.reload().await?;
        Ok(store)
    }

    /// The metadata as last seen.
    pub fn view(&self) -> ClusterView {
        self.view.read().clone()
    }

    /// Runs `f` on the current view without cloning it.
    pub fn with_view<R>(&self, f: impl FnOnce(&ClusterView) -> R) -> R {
        f(&self.view.read())
    }

    /// Notified (with the etcd revision) every time the view changes.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.changed.subscribe()
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub fn node_id(&self) -> i32 {
        self.me.id
    }

    /// Whether etcd answered the last time it was asked.
    pub fn is_available(&self) -> bool {
        self.available.load(Ordering::Acquire)
    }

    fn note<T>(&self, r: Result<T, EtcdError>) -> Result<T, StoreError> {
        self.available.store(r.is_ok(), Ordering::Release);
        Ok(r?)
    }

    async fn register(&self) -> Result<(), StoreError> {
        let lease = self.note(self.client.lease_grant(self.ttl_s).await)?;
        let value = encode(&self.me)?;
        // Re-putting the key moves it to the new lease: an old registration of ours (before a
        // crash) can no longer delete it when its lease runs out.
        self.note(
            self.client
                .put(&self.keys.broker(self.me.id), &value, Some(lease))
                .await,
        )?;
        self.lease.store(lease, Ordering::Release);
        tracing::info!(node_id = self.me.id, lease, "registered in the cluster");
        Ok(())
    }

    /// Reads the whole prefix into a fresh view.
    async fn reload(&self) -> Result<i64, StoreError> {
        let (kvs, revision) = self.note(self.client.get_prefix(self.keys.prefix()).await)?;
        let mut view = ClusterView::default();
        for kv in &kvs {
            if let Err(e) = view.apply_put(&self.keys, kv) {
                tracing::warn!(error = %e, "skipping a metadata record");
            }
        }
        view.revision = revision;
        *self.view.write() = view;
        self.changed.send_replace(revision);
        Ok(revision)
    }

    /// The background work: keep the lease alive, keep the view current. Returns when `stop`
    /// turns true (the lease is then revoked, so the broker disappears from the cluster at once).
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let keepalive = tokio::spawn(self.clone().keep_alive(stop.clone()));
        let watcher = tokio::spawn(self.clone().watch_loop(stop.clone()));
        let _ = stop.wait_for(|s| *s).await;
        keepalive.abort();
        watcher.abort();
        let lease = self.lease.load(Ordering::Acquire);
        if lease != 0 {
            let _ = self.client.lease_revoke(lease).await;
        }
    }

    async fn keep_alive(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let period = Duration::from_millis((self.ttl_s as u64 * 1000 / 3).max(300));
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(period) => {}
            }
            let lease = self.lease.load(Ordering::Acquire);
            match self.client.lease_keepalive(lease).await {
                Ok(Some(_)) => self.available.store(true, Ordering::Release),
                Ok(None) => {
                    // The lease ran out (etcd was away longer than the session): register again.
                    tracing::warn!(
                        node_id = self.me.id,
                        "broker lease expired; registering again"
                    );
                    if let Err(e) = self.register().await {
                        tracing::warn!(error = %e, "re-registration failed");
                    }
                }
                Err(e) => {
                    self.available.store(false, Ordering::Release);
                    tracing::warn!(error = %e, "lease keep-alive failed");
                }
            }
        }
    }

    async fn watch_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut revision = self.view.read().revision;
        loop {
            let watch = match self.client.watch(self.keys.prefix(), revision + 1).await {
                Ok(w) => w,
                Err(e) => {
                    self.available.store(false, Ordering::Release);
                    tracing::debug!(error = %e, "cannot watch etcd; retrying");
                    tokio::select! {
                        _ = stop.changed() => return,
                        _ = tokio::time::sleep(Duration::from_millis(RETRY_MS)) => {}
                    }
                    // After an outage, changes may be compacted away: start from a full read.
                    match self.reload().await {
                        Ok(r) => revision = r,
                        Err(e) => tracing::debug!(error = %e, "cannot reload the metadata"),
                    }
                    continue;
                }
            };
            self.available.store(true, Ordering::Release);
            let mut watch = watch;
            loop {
                let batch = tokio::select! {
                    _ = stop.changed() => return,
                    b = watch.next() => b,
                };
                match batch {
                    Ok(batch) => {
                        if batch.events.is_empty() {
                            continue;
                        }
                        let mut view = self.view.write();
                        for e in &batch.events {
                            if let Err(err) = view.apply(&self.keys, e) {
                                tracing::warn!(error = %err, "skipping a metadata record");
                            }
                        }
                        view.revision = view.revision.max(batch.revision);
                        revision = view.revision;
                        drop(view);
                        self.changed.send_replace(revision);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "etcd watch ended; reconnecting");
                        break;
                    }
                }
            }
        }
    }

    // ----------------------------------------------------------------------------------------
    // Writes
    // ----------------------------------------------------------------------------------------

    /// Puts `value` at `key` unless the key exists. Returns the revision reached and whether it
    /// wrote.
    async fn put_if_absent(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(i64, bool), StoreError> {
        let r = self.note(
            self.client
                .txn(
                    &[Compare::Version(key.clone(), 0)],
                    &[Op::Put {
                        key,
                        value,
                        lease: None,
                    }],
                    &[],
                )
                .await,
        )?;
        Ok((r.revision, r.succeeded))
    }

    /// Creates a topic record if no topic of that name exists.
    pub async fn create_topic(&self, record: &TopicRecord) -> Result<(), StoreError> {
        let (_, created) = self
            .put_if_absent(self.keys.topic(&record.name), encode(record)?)
            .await?;
        if created {
            Ok(())
        } else {
            Err(StoreError::TopicExists(record.name.clone()))
        }
    }

    /// Deletes a topic record and the topic's leader records and election requests.
    pub async fn delete_topic(&self, name: &str) -> Result<(), StoreError> {
        let key = self.keys.topic(name);
        let r = self.note(
            self.client
                .txn(
                    &[Compare::Version(key.clone(), 0)],
                    &[],
                    &[
                        Op::Delete { key },
                        Op::DeletePrefix {
                            prefix: self.keys.leaders_of(name),
                        },
                    ],
                )
                .await,
        )?;
        // The failure branch ran when the key existed (version != 0).
        if r.succeeded {
            Err(StoreError::UnknownTopic(name.to_string()))
        } else {
            Ok(())
        }
    }

    /// Changes a topic record with `change`, as a compare-and-swap on its revision (retried if
    /// another broker changed it meanwhile).
    pub async fn update_topic(
        &self,
        name: &str,
        mut change: impl FnMut(&mut TopicRecord) -> Result<(), StoreError>,
    ) -> Result<TopicRecord, StoreError> {
        let key = self.keys.topic(name);
        for _ in 0..CAS_ATTEMPTS {
            let Some(kv) = self.note(self.client.get(&key).await)? else {
                return Err(StoreError::UnknownTopic(name.to_string()));
            };
            let mut record: TopicRecord =
                serde_json::from_slice(&kv.value).map_err(|e| StoreError::Encode(e.to_string()))?;
            change(&mut record)?;
            let value = encode(&record)?;
            let r = self.note(
                self.client
                    .txn(
                        &[Compare::ModRevision(key.clone(), kv.mod_revision)],
                        &[Op::Put {
                            key: key.clone(),
                            value,
                            lease: None,
                        }],
                        &[],
                    )
                    .await,
            )?;
            if r.succeeded {
                return Ok(record);
            }
        }
        Err(StoreError::Contended)
    }

    /// Publishes who leads a partition, under this broker's lease (so the record goes when the
    /// broker does). Never replaces a record of a newer epoch.
    pub async fn publish_leader(
        &self,
        topic: &str,
        partition: i32,
        record: &LeaderRecord,
    ) -> Result<(), StoreError> {
        let key = self.keys.leader(topic, partition);
        let value = encode(record)?;
        let lease = self.lease.load(Ordering::Acquire);
        for _ in 0..CAS_ATTEMPTS {
            let current = self.note(self.client.get(&key).await)?;
            let compare = match &current {
                Some(kv) => {
                    let existing: Option<LeaderRecord> = serde_json::from_slice(&kv.value).ok();
                    if existing.is_some_and(|e| e.epoch > record.epoch) {
                        return Ok(());
                    }
                    Compare::ModRevision(key.clone(), kv.mod_revision)
                }
                None => Compare::Version(key.clone(), 0),
            };
            let r = self.note(
                self.client
                    .txn(
                        &[compare],
                        &[Op::Put {
                            key: key.clone(),
                            value: value.clone(),
                            lease: (lease != 0).then_some(lease),
                        }],
                        &[],
                    )
                    .await,
            )?;
            if r.succeeded {
                return Ok(());
            }
        }
        Err(StoreError::Contended)
    }

    /// Asks that a partition's leadership move to `preferred` (ElectLeaders).
    pub async fn request_election(
        &self,
        topic: &str,
        partition: i32,
        preferred: i32,
    ) -> Result<(), StoreError> {
        let value = encode(&ElectionRequest { preferred })?;
        self.note(
            self.client
                .put(&self.keys.election(topic, partition), &value, None)
                .await,
        )?;
        Ok(())
    }

    /// Removes an election request once acted on.
    pub async fn clear_election(&self, topic: &str, partition: i32) -> Result<(), StoreError> {
        self.note(
            self.client
                .delete(&self.keys.election(topic, partition))
                .await,
        )?;
        Ok(())
    }

    /// Writes ACL records (`acls/<id>`), at most [`MAX_TXN_OPS`] per transaction. An ACL that
    /// exists already is written again unchanged. Returns the revision of the last write.
    pub async fn put_acls(&self, acls: &[(String, AclBinding)]) -> Result<i64, StoreError> {
        let mut revision = 0;
        for chunk in acls.chunks(MAX_TXN_OPS) {
            let mut ops = Vec::with_capacity(chunk.len());
            for (id, acl) in chunk {
                ops.push(Op::Put {
                    key: self.keys.acl(id),
                    value: encode(acl)?,
                    lease: None,
                });
            }
            revision = self.note(self.client.txn(&[], &ops, &[]).await)?.revision;
        }
        Ok(revision)
    }

    /// Deletes ACL records by id, at most [`MAX_TXN_OPS`] per transaction (deleting one that is
    /// gone already is not an error). Returns the revision of the last write.
    pub async fn delete_acls(&self, ids: &[String]) -> Result<i64, StoreError> {
        let mut revision = 0;
        for chunk in ids.chunks(MAX_TXN_OPS) {
            let ops: Vec<Op> = chunk
                .iter()
                .map(|id| Op::Delete {
                    key: self.keys.acl(id),
                })
                .collect();
            revision = self.note(self.client.txn(&[], &ops, &[]).await)?.revision;
        }
        Ok(revision)
    }

    /// Changes a set of dynamic config overrides (a `configs/...` key, see `Keys`) as a
    /// compare-and-swap on its revision, retried if another broker changed it meanwhile.
    /// `change` gets the stored set (empty if none) and returns the next one, or `None` to give
    /// up without writing (the caller keeps the reason). An empty set removes the key. Returns
    /// the revision of the write, `None` if `change` gave up.
    pub async fn update_overrides(
        &self,
        key: Vec<u8>,
        mut change: impl FnMut(&Overrides) -> Option<Overrides>,
    ) -> Result<Option<i64>, StoreError> {
        for _ in 0..CAS_ATTEMPTS {
            let current = self.note(self.client.get(&key).await)?;
            let (compare, stored) = match &current {
                Some(kv) => (
                    Compare::ModRevision(key.clone(), kv.mod_revision),
                    serde_json::from_slice(&kv.value)
                        .map_err(|e| StoreError::Encode(e.to_string()))?,
                ),
                None => (Compare::Version(key.clone(), 0), Overrides::new()),
            };
            let Some(next) = change(&stored) else {
                return Ok(None);
            };
            let op = put_or_delete(key.clone(), (!next.is_empty()).then_some(&next))?;
            let r = self.note(self.client.txn(&[compare], &[op], &[]).await)?;
            if r.succeeded {
                return Ok(Some(r.revision));
            }
        }
        Err(StoreError::Contended)
    }

    /// Writes each entity's quota record (`quotas/<id>`), deleting those left without values.
    /// Returns the revision of the last write.
    pub async fn put_quotas(
        &self,
        entries: &[(QuotaEntity, QuotaValues)],
    ) -> Result<i64, StoreError> {
        let ops = entries
            .iter()
            .map(|(entity, values)| {
                let record = (!values.is_empty()).then(|| QuotaRecord {
                    entity: entity.clone(),
                    values: values.clone(),
                });
                put_or_delete(self.keys.quota(&entity.id()), record.as_ref())
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.write_chunked(&ops).await
    }

    /// Writes each user's SCRAM credentials (`scram/<user>`), deleting users left without any.
    /// Returns the revision of the last write.
    pub async fn put_scram_users(&self, users: &ScramUsers) -> Result<i64, StoreError> {
        let ops = users
            .iter()
            .map(|(user, credentials)| {
                let record = (!credentials.is_empty()).then(|| ScramRecord {
                    user: user.clone(),
                    credentials: credentials.clone(),
                });
                put_or_delete(self.keys.scram_user(user), record.as_ref())
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.write_chunked(&ops).await
    }

    /// Runs `ops` as transactions of at most [`MAX_TXN_OPS`] operations each, in order; returns
    /// the revision of the last.
    async fn write_chunked(&self, ops: &[Op]) -> Result<i64, StoreError> {
        let mut revision = 0;
        for chunk in ops.chunks(MAX_TXN_OPS) {
            revision = self.note(self.client.txn(&[], chunk, &[]).await)?.revision;
        }
        Ok(revision)
    }

    /// Writes `user`'s credentials only if the cluster has none for that user (a broker's
    /// bootstrap users, see `ClusterCredentialStore`). Returns the revision reached and whether
    /// it wrote.
    pub async fn create_scram_user(
        &self,
        user: &str,
        credentials: &BTreeMap<ScramMechanism, ScramCredential>,
    ) -> Result<(i64, bool), StoreError> {
        let value = encode(&ScramRecord {
            user: user.to_string(),
            credentials: credentials.clone(),
        })?;
        self.put_if_absent(self.keys.scram_user(user), value).await
    }

    /// Waits (at most `timeout_ms`) until this broker's view reflects etcd revision `revision`:
    /// a change this broker wrote has come back through the watch. Returns whether it did.
    pub async fn wait_for_revision(&self, revision: i64, timeout_ms: u64) -> bool {
        let mut changed = self.subscribe();
        let reached = changed.wait_for(|r| *r >= revision);
        tokio::time::timeout(Duration::from_millis(timeout_ms), reached)
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Waits (at most `timeout_ms`) until this broker's view is as new as etcd is now: what any
    /// broker saw before this call (a broker that registered, a topic created elsewhere) is then
    /// in the view. For decisions a client may have checked against another broker's view, such
    /// as placing replicas on the brokers Metadata listed.
    pub async fn catch_up(&self, timeout_ms: u64) -> Result<bool, StoreError> {
        // A one-key read answers with etcd's current revision.
        let (_, revision) = self.note(self.client.get_prefix(&self.keys.cluster_id()).await)?;
        Ok(self.wait_for_revision(revision, timeout_ms).await)
    }

    /// Tries to become the controller: takes the controller key under this broker's lease if
    /// nobody holds it. Returns whether this broker is the controller.
    pub async fn campaign(&self) -> Result<bool, StoreError> {
        let key = self.keys.controller();
        let lease = self.lease.load(Ordering::Acquire);
        let value = encode(&ControllerRecord { id: self.me.id })?;
        let r = self.note(
            self.client
                .txn(
                    &[Compare::Version(key.clone(), 0)],
                    &[Op::Put {
                        key: key.clone(),
                        value: value.clone(),
                        lease: Some(lease),
                    }],
                    &[],
                )
                .await,
        )?;
        if r.succeeded {
            return Ok(true);
        }
        // Already ours (for instance after re-registering under a new lease)?
        let current = self.note(self.client.get(&key).await)?;
        Ok(current.is_some_and(|kv| kv.value == value && kv.lease == lease))
    }
}
