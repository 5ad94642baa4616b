//! The etcd client against a real etcd server (Debian's `etcd-server`, installed by
//! scripts/test.sh): KV, transactions, leases and watches as the cluster code uses them.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use weir_broker::cluster::etcd::{Compare, EtcdClient, EtcdError, Op, WatchEvent};

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A throwaway single-member etcd on free ports.
struct Etcd {
    child: Child,
    endpoint: String,
    _dir: tempfile::TempDir,
}

impl Etcd {
    fn start() -> Etcd {
        let dir = tempfile::tempdir().expect("tempdir");
        let client = free_port();
        let peer = free_port();
        let endpoint = format!("127.0.0.1:{client}");
        let child = Command::new("etcd")
            .arg("--data-dir")
            .arg(dir.path().join("etcd"))
            .arg("--listen-client-urls")
            .arg(format!("http://{endpoint}"))
            .arg("--advertise-client-urls")
            .arg(format!("http://{endpoint}"))
            .arg("--listen-peer-urls")
            .arg(format!("http://127.0.0.1:{peer}"))
            .arg("--initial-advertise-peer-urls")
            .arg(format!("http://127.0.0.1:{peer}"))
            .arg("--initial-cluster")
            .arg(format!("default=http://127.0.0.1:{peer}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd must be installed (scripts/test.sh installs Debian's etcd-server)");
        let started = Instant::now();
        while std::net::TcpStream::connect(&endpoint).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "etcd did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Etcd {
            child,
            endpoint,
            _dir: dir,
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
