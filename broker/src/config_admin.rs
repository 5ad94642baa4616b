//! Where the dynamic BROKER and GROUP configs live, and reading and changing them the same way
//! on a single node and in a cluster.
//!
//! A single node keeps all of them in its local file (`dynamic_config::DynamicConfigs`). In a
//! cluster, the cluster-wide broker defaults (BROKER resource `""`) and every group's configs are
//! the cluster's: they live in etcd (`configs/broker-default`, `configs/groups/<group>`), are
//! changed with a compare-and-swap by whichever broker gets the request, and are read from the
//! watched `ClusterView`, so every broker answers and applies the same ones. A broker's own
//! overrides (BROKER resource = its id) stay in its local file in both modes: as in Kafka, only
//! that broker answers for them. The rules (names, values, limits) are `dynamic_config`'s in both
//! places. Owns no wire types.

use std::sync::Arc;

use crate::broker::Broker;
use crate::dynamic_config::{self as dc, BrokerLevel, DynamicConfigError, Overrides};
use crate::topic_config::TopicDefaults;

/// How long a broker waits to see its own config change come back through the etcd watch.
const APPLY_WAIT_MS: u64 = 10_000;

impl Broker {
    /// The dynamic broker configs of a level: this broker's own, or the cluster-wide defaults.
    pub fn broker_overrides(&self, level: BrokerLevel) -> Overrides {
        match (&self.cluster, level) {
            (Some(c), BrokerLevel::ClusterDefault) => {
                c.store.with_view(|v| v.broker_default_configs.clone())
            }
            _ => self.configs.broker(level),
        }
    }

    /// A group's dynamic configs (empty if it has none).
    pub fn group_overrides(&self, group: &str) -> Overrides {
        match &self.cluster {
            Some(c) => c
                .store
                .with_view(|v| v.group_configs.get(group).cloned().unwrap_or_default()),
            None => self.configs.group(group),
        }
    }

    /// Applies `change` to a broker level's overrides, validates the result and (unless
    /// `validate_only`) stores it where that level lives. Returns once this broker reads the
    /// change back.
    pub async fn alter_broker_overrides(
        self: &Arc<Self>,
        level: BrokerLevel,
        validate_only: bool,
        change: impl Fn(&mut Overrides) -> Result<(), DynamicConfigError>,
    ) -> Result<(), DynamicConfigError> {
        let cluster = match (&self.cluster, level) {
            (Some(c), BrokerLevel::ClusterDefault) => c.clone(),
            _ => {
                self.configs.alter_broker(level, validate_only, change)?;
                self.refresh_topic_defaults();
                return Ok(());
            }
        };
        if validate_only {
            return dc::changed_broker(&self.broker_overrides(level), change).map(drop);
        }
        let key = cluster.store.keys().broker_default_configs();
        let mut refused = None;
        let written = cluster
            .store
            .update_overrides(key, |current| {
                refused = None;
                dc::changed_broker(current, &change)
                    .map_err(|e| refused = Some(e))
                    .ok()
            })
            .await
            .map_err(|e| DynamicConfigError::Unavailable(e.to_string()))?;
        self.wait_config_applied(written, refused).await?;
        self.refresh_topic_defaults();
        Ok(())
    }

    /// Puts the topic defaults that the broker levels set (`log.retention.ms`,
    /// `log.cleanup.policy`, `message.max.bytes`, ...: Kafka's synonyms of topic configs) in force
    /// for every topic: this broker's own overrides over the cluster-wide ones. Called whenever
    /// either may have changed; cheap when neither did.
    pub fn refresh_topic_defaults(&self) {
        let own = self.broker_overrides(BrokerLevel::ThisBroker);
        let cluster = self.broker_overrides(BrokerLevel::ClusterDefault);
        self.topics.set_defaults(TopicDefaults::from_levels(&[
            (BrokerLevel::ThisBroker, &own),
            (BrokerLevel::ClusterDefault, &cluster),
        ]));
    }

    /// Writes the cluster-wide `min.insync.replicas` if there is none, with its static value, as
    /// a Kafka 4.1+ cluster does when it starts with eligible leader replicas (KIP-966): every
    /// topic then reports it as a dynamic cluster default.
    pub async fn ensure_cluster_min_insync_replicas(self: &Arc<Self>) {
        const NAME: &str = "min.insync.replicas";
        if self
            .broker_overrides(BrokerLevel::ClusterDefault)
            .contains_key(NAME)
        {
            return;
        }
        let value = dc::default_of(NAME, false).unwrap_or("1").to_string();
        let seeded = self
            .alter_broker_overrides(BrokerLevel::ClusterDefault, false, |set| {
                set.entry(NAME.to_string()).or_insert_with(|| value.clone());
                Ok(())
            })
            .await;
        if let Err(e) = seeded {
            tracing::warn!(error = %e, "cannot write the cluster-wide min.insync.replicas");
        }
    }

    /// Applies `change` to a group's overrides, validates the result and (unless
    /// `validate_only`) stores it where group configs live. The group need not exist (Kafka
    /// allows configuring a group before its first member joins). Returns once this broker reads
    /// the change back.
    pub async fn alter_group_overrides(
        self: &Arc<Self>,
        group: &str,
        validate_only: bool,
        change: impl Fn(&mut Overrides) -> Result<(), DynamicConfigError>,
    ) -> Result<(), DynamicConfigError> {
        let bounds = dc::GroupBounds::of(&self.config);
        let Some(cluster) = self.cluster.clone() else {
            return self
                .configs
                .alter_group(group, validate_only, &bounds, change);
        };
        let (current, groups) = cluster.store.with_view(|v| {
            (
                v.group_configs.get(group).cloned().unwrap_or_default(),
                v.group_configs.len() + usize::from(!v.group_configs.contains_key(group)),
            )
        });
        let next = dc::changed_group(group, &current, &bounds, &change)?;
        if !next.is_empty() {
            dc::check_group_count(groups)?;
        }
        if validate_only {
            return Ok(());
        }
        let key = cluster.store.keys().group_configs(group);
        let mut refused = None;
        let written = cluster
            .store
            .update_overrides(key, |current| {
                refused = None;
                dc::changed_group(group, current, &bounds, &change)
                    .map_err(|e| refused = Some(e))
                    .ok()
            })
            .await
            .map_err(|e| DynamicConfigError::Unavailable(e.to_string()))?;
        self.wait_config_applied(written, refused).await
    }

    /// After a config write to etcd: the refusal if `change` gave up, else waits (bounded) until
    /// this broker's view has the write, so a DescribeConfigs right after sees it.
    async fn wait_config_applied(
        &self,
        written: Option<i64>,
        refused: Option<DynamicConfigError>,
    ) -> Result<(), DynamicConfigError> {
        let Some(revision) = written else {
            return Err(refused.unwrap_or_else(|| {
                DynamicConfigError::InvalidRequest("the config change was refused".into())
            }));
        };
        let Some(cluster) = &self.cluster else {
            return Ok(());
        };
        if cluster
            .store
            .wait_for_revision(revision, APPLY_WAIT_MS)
            .await
        {
            Ok(())
        } else {
            Err(DynamicConfigError::Unavailable(
                "the change is stored but not yet seen by this broker".into(),
            ))
        }
    }
}
