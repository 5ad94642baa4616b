//! The etcd client against a real etcd server (Debian's `etcd-server`, installed by
//! scripts/test.sh): KV, transactions, leases and watches as the cluster code uses them.

use std::time::{Duration, Instant};

use crate::common::cluster::Etcd;
use crate::common::free_port;
use weir_broker::cluster::etcd::{Compare, EtcdClient, EtcdError, Op, WatchEvent};

async fn ready(client: &EtcdClient) {
    let started = Instant::now();
    loop {
        if client.put(b"/probe", b"x", None).await.is_ok() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "etcd not serving"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn kv_transactions_leases_and_watches() {
    let etcd = Etcd::start();
    let client = EtcdClient::new(&[format!("http://{}", etcd.endpoint)], 5_000);
    ready(&client).await;

    client.put(b"/weir/t/a", b"1", None).await.expect("put");
    client.put(b"/weir/t/b", b"2", None).await.expect("put");
    client.put(b"/weir/u", b"3", None).await.expect("put");
    let (kvs, revision) = client.get_prefix(b"/weir/t/").await.expect("range");
    let got: Vec<(&[u8], &[u8])> = kvs.iter().map(|kv| (&kv.key[..], &kv.value[..])).collect();
    assert_eq!(
        got,
        vec![
            (&b"/weir/t/a"[..], &b"1"[..]),
            (&b"/weir/t/b"[..], &b"2"[..])
        ]
    );
    assert!(revision > 0);

    // Create-if-absent succeeds once.
    let create = |v: &'static [u8]| {
        (
            vec![Compare::Version(b"/weir/t/c".to_vec(), 0)],
            vec![Op::Put {
                key: b"/weir/t/c".to_vec(),
                value: v.to_vec(),
                lease: None,
            }],
        )
    };
    let (c, s) = create(b"first");
    assert!(client.txn(&c, &s, &[]).await.expect("txn").succeeded);
    let (c, s) = create(b"second");
    assert!(!client.txn(&c, &s, &[]).await.expect("txn").succeeded);
    let kv = client
        .get(b"/weir/t/c")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(kv.value, b"first");
    // Compare-and-swap on the mod revision.
    let stale = kv.mod_revision - 1;
    let swap = |rev| {
        (
            vec![Compare::ModRevision(b"/weir/t/c".to_vec(), rev)],
            vec![Op::Put {
                key: b"/weir/t/c".to_vec(),
                value: b"swapped".to_vec(),
                lease: None,
            }],
        )
    };
    let (c, s) = swap(stale);
    assert!(!client.txn(&c, &s, &[]).await.expect("txn").succeeded);
    let (c, s) = swap(kv.mod_revision);
    assert!(client.txn(&c, &s, &[]).await.expect("txn").succeeded);

    // A watch from the revision we read sees later changes, in order, deletes included.
    let mut watch = client
        .watch(b"/weir/t/", revision + 1)
        .await
        .expect("watch");
    client.delete(b"/weir/t/a").await.expect("delete");
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let batch = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("watch event in time")
            .expect("watch batch");
        seen.extend(batch.events);
    }
    let names: Vec<String> = seen
        .iter()
        .map(|e| match e {
            WatchEvent::Put(kv) => format!("put {}", String::from_utf8_lossy(&kv.value)),
            WatchEvent::Delete { key, .. } => format!("delete {}", String::from_utf8_lossy(key)),
        })
        .collect();
    assert_eq!(names, ["put first", "put swapped", "delete /weir/t/a"]);

    // A key under a lease disappears when the lease is revoked; keep-alive of a dead lease says so.
    let lease = client.lease_grant(30).await.expect("lease");
    client
        .put(b"/weir/t/leased", b"x", Some(lease))
        .await
        .expect("put with lease");
    assert!(client
        .lease_keepalive(lease)
        .await
        .expect("keepalive")
        .is_some());
    client.lease_revoke(lease).await.expect("revoke");
    assert!(client.get(b"/weir/t/leased").await.expect("get").is_none());
    assert_eq!(
        client.lease_keepalive(lease).await.expect("keepalive"),
        None
    );
}

#[tokio::test]
async fn an_unreachable_etcd_is_an_error_not_a_hang() {
    let port = free_port();
    let client = EtcdClient::new(&[format!("http://127.0.0.1:{port}")], 1_000);
    let err = client.get(b"/x").await.expect_err("nothing listens");
    assert!(
        matches!(
            err,
            EtcdError::Unreachable { .. } | EtcdError::Timeout { .. }
        ),
        "{err}"
    );
}

mod store {
    use super::*;
    use weir_broker::cluster::metadata::{BrokerRecord, LeaderRecord, TopicRecord};
    use weir_broker::cluster::store::{EtcdStore, StoreConfig, StoreError};
    use weir_broker::topic_config::TopicConfig;

    fn config(endpoint: &str) -> StoreConfig {
        StoreConfig {
            endpoints: vec![format!("http://{endpoint}")],
            cluster_name: "test".into(),
            session_ttl_s: 2,
            request_timeout_ms: 5_000,
        }
    }

    fn broker(id: i32) -> BrokerRecord {
        BrokerRecord {
            id,
            host: "127.0.0.1".into(),
            port: 9000 + id,
            rack: None,
            endpoints: Vec::new(),
        }
    }

    /// The stores of brokers 1 and 2, connected (their watches not running yet).
    async fn two_brokers(etcd: &Etcd) -> (std::sync::Arc<EtcdStore>, std::sync::Arc<EtcdStore>) {
        ready(&EtcdClient::new(
            &[format!("http://{}", etcd.endpoint)],
            5_000,
        ))
        .await;
        let a = EtcdStore::connect(&config(&etcd.endpoint), broker(1))
            .await
            .expect("connect a");
        let b = EtcdStore::connect(&config(&etcd.endpoint), broker(2))
            .await
            .expect("connect b");
        (a, b)
    }

    async fn until(what: &str, mut f: impl FnMut() -> bool) {
        let started = Instant::now();
        while !f() {
            assert!(started.elapsed() < Duration::from_secs(20), "{what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn brokers_share_one_view_of_the_metadata() {
        let etcd = Etcd::start();
        let (a, b) = two_brokers(&etcd).await;
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let ta = tokio::spawn(a.clone().run(stop.clone()));
        let tb = tokio::spawn(b.clone().run(stop.clone()));
        // One cluster id, chosen by the first.
        assert!(a.view().cluster_id.is_some());
        assert_eq!(a.view().cluster_id, b.view().cluster_id);
        until("a sees both brokers", || a.view().brokers.len() == 2).await;

        let record = TopicRecord {
            name: "orders".into(),
            id: uuid::Uuid::new_v4().to_string(),
            internal: false,
            config: TopicConfig::default(),
            replicas: vec![vec![1, 2], vec![2, 1]],
        };
        a.create_topic(&record).await.expect("create");
        assert!(matches!(
            b.create_topic(&record).await,
            Err(StoreError::TopicExists(_))
        ));
        until("b sees the topic", || {
            b.view().topics.contains_key("orders")
        })
        .await;
        b.update_topic("orders", |t| {
            t.replicas.push(vec![1]);
            Ok(())
        })
        .await
        .expect("update");
        until("a sees 3 partitions", || {
            a.view()
                .topics
                .get("orders")
                .is_some_and(|t| t.replicas.len() == 3)
        })
        .await;

        // A leader record of an older epoch never replaces a newer one.
        let leader = |leader, epoch| LeaderRecord {
            leader,
            epoch,
            isr: vec![leader],
            voters: vec![1, 2],
        };
        a.publish_leader("orders", 0, &leader(1, 5))
            .await
            .expect("publish");
        b.publish_leader("orders", 0, &leader(2, 4))
            .await
            .expect("stale publish is a no-op");
        until("b sees epoch 5 from a", || {
            b.view()
                .leaders
                .get(&("orders".to_string(), 0))
                .is_some_and(|l| l.epoch == 5 && l.leader == 1)
        })
        .await;

        // One controller at a time.
        let won_a = a.campaign().await.expect("campaign");
        let won_b = b.campaign().await.expect("campaign");
        assert!(won_a ^ won_b, "exactly one controller: {won_a} {won_b}");

        // A broker that stops disappears at once (its lease is revoked), with its leader records.
        a.delete_topic("orders").await.expect("delete");
        assert!(matches!(
            a.delete_topic("orders").await,
            Err(StoreError::UnknownTopic(_))
        ));
        let _ = stop_tx.send(true);
        ta.await.expect("a stops");
        tb.await.expect("b stops");
        let (kvs, _) = EtcdClient::new(&[format!("http://{}", etcd.endpoint)], 5_000)
            .get_prefix(b"/weir/test/brokers/")
            .await
            .expect("range");
        assert!(kvs.is_empty(), "registrations left behind: {kvs:?}");
    }

    /// `catch_up` answers only once the view holds everything etcd held when it was called: a
    /// broker registered a moment ago is there (placement relies on this), and without a watch
    /// to bring the change it says so instead of pretending.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_view_catches_up_with_etcd_on_demand() {
        let etcd = Etcd::start();
        let (a, b) = two_brokers(&etcd).await;
        assert_eq!(a.view().brokers.len(), 1, "a loaded before b registered");
        // a's watch is not running: nothing can bring b's registration.
        assert!(!a.catch_up(200).await.expect("etcd answers"));

        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let ta = tokio::spawn(a.clone().run(stop.clone()));
        let tb = tokio::spawn(b.clone().run(stop.clone()));
        assert!(a.catch_up(10_000).await.expect("etcd answers"));
        let ids: Vec<i32> = a.view().brokers.keys().copied().collect();
        assert_eq!(ids, vec![1, 2]);
        let _ = stop_tx.send(true);
        ta.await.expect("a stops");
        tb.await.expect("b stops");
    }

    /// ACLs in a cluster: created through one broker's authorizer, in force on the other once
    /// its watch delivers them; deleted through the other, gone from the first. A change answers
    /// only once the broker that made it has seen it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acls_are_shared_through_etcd() {
        use weir_broker::authz::{
            AclBinding, AclFilter, AclOperation, Authorizer, AuthorizerConfig, PatternType,
            Permission, ResourceType,
        };
        use weir_broker::security::Principal;

        let etcd = Etcd::start();
        let (a, b) = two_brokers(&etcd).await;
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let ta = tokio::spawn(a.clone().run(stop.clone()));
        let tb = tokio::spawn(b.clone().run(stop.clone()));
        let on = AuthorizerConfig {
            enabled: true,
            ..AuthorizerConfig::default()
        };
        let authz_a = Authorizer::clustered(on.clone(), a.clone());
        let authz_b = Authorizer::clustered(on, b.clone());
        let alice = Principal::user("alice");
        let host: std::net::IpAddr = "10.0.0.1".parse().expect("ip");
        let may_read = |az: &Authorizer| {
            az.session(&alice, host)
                .allows(AclOperation::Read, ResourceType::Topic, "orders")
        };
        assert!(!may_read(&authz_a) && !may_read(&authz_b));

        let read = AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: "ord".into(),
            pattern_type: PatternType::Prefixed,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: AclOperation::Read,
            permission: Permission::Allow,
        };
        let results = authz_a.create(vec![read.clone()]).await;
        assert!(results[0].is_ok(), "{results:?}");
        // In force on a at once, on b once its watch has the record.
        assert!(may_read(&authz_a));
        until("b applies the ACL", || may_read(&authz_b)).await;
        assert_eq!(authz_b.describe(&AclFilter::any()), vec![read.clone()]);

        let deleted = authz_b
            .delete(vec![AclFilter {
                principal: Some("User:alice".into()),
                ..AclFilter::any()
            }])
            .await;
        assert!(matches!(&deleted[0], Ok(v) if *v == vec![read.clone()]));
        assert!(!may_read(&authz_b));
        until("a drops the ACL", || !may_read(&authz_a)).await;

        // A record that is not the ACL its key names is not trusted.
        let client = EtcdClient::new(&[format!("http://{}", etcd.endpoint)], 5_000);
        client
            .put(
                b"/weir/test/acls/0123",
                &serde_json::to_vec(&read).expect("json"),
                None,
            )
            .await
            .expect("put");
        let marker = AclBinding {
            resource_name: "marker".into(),
            ..read.clone()
        };
        assert!(authz_a.create(vec![marker]).await[0].is_ok());
        until("b has the marker", || {
            authz_b.describe(&AclFilter::any()).len() == 1
        })
        .await;
        assert!(!may_read(&authz_b));

        let _ = stop_tx.send(true);
        ta.await.expect("a stops");
        tb.await.expect("b stops");
    }

    /// Quota and SCRAM records written through one broker reach the other's view, more than
    /// one transaction's worth at once; emptied entries are deleted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn quotas_and_scram_users_reach_every_view_in_chunks() {
        use std::collections::BTreeMap;
        use weir_broker::cluster::store::MAX_TXN_OPS;
        use weir_broker::quota::{EntityName, QuotaEntity, QuotaValues};
        use weir_broker::security::scram::ScramMechanism;

        let etcd = Etcd::start();
        let (a, b) = two_brokers(&etcd).await;
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let ta = tokio::spawn(a.clone().run(stop.clone()));
        let tb = tokio::spawn(b.clone().run(stop.clone()));
        let n = MAX_TXN_OPS + 3;
        let entity = |i: usize| QuotaEntity {
            user: Some(EntityName::Named(format!("user-{i}"))),
            client_id: None,
            ip: None,
        };
        let rate = QuotaValues::from([("producer_byte_rate".to_string(), 1024.0)]);
        let quotas: Vec<_> = (0..n).map(|i| (entity(i), rate.clone())).collect();
        a.put_quotas(&quotas).await.expect("put quotas");
        let cred = ScramMechanism::Sha256.credential("pw", 4096);
        let users: BTreeMap<_, _> = (0..n)
            .map(|i| {
                (
                    format!("user-{i}"),
                    BTreeMap::from([(ScramMechanism::Sha256, cred.clone())]),
                )
            })
            .collect();
        a.put_scram_users(&users).await.expect("put users");
        until("b sees every quota and user", || {
            let v = b.view();
            v.quotas.len() == n && v.scram.len() == n
        })
        .await;
        assert_eq!(b.view().quotas[&entity(n - 1)], rate);

        // Empty values delete: the first entry of each, and one past the first chunk.
        let gone = [0, MAX_TXN_OPS];
        let quotas: Vec<_> = gone
            .iter()
            .map(|&i| (entity(i), QuotaValues::new()))
            .collect();
        b.put_quotas(&quotas).await.expect("delete quotas");
        let users: BTreeMap<_, _> = gone
            .iter()
            .map(|&i| (format!("user-{i}"), BTreeMap::new()))
            .collect();
        b.put_scram_users(&users).await.expect("delete users");
        until("a sees the deletions", || {
            let v = a.view();
            v.quotas.len() == n - 2 && v.scram.len() == n - 2
        })
        .await;
        assert!(!a.view().scram.contains_key("user-0"));
        assert!(a.view().scram.contains_key("user-1"));

        let _ = stop_tx.send(true);
        ta.await.expect("a stops");
        tb.await.expect("b stops");
    }
}
