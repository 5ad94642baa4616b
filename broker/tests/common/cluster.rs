//! A real cluster for tests: a throwaway single-member etcd (Debian's `etcd-server`, installed by
//! scripts/test.sh) and brokers `weir serve --node-id N --etcd ...` that find each other in it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use weir_protocol::{MetadataRequest, MetadataResponse, Request, Response};

use super::kafka::Conn;
use super::{free_port, Broker};

/// Upper bound for a cluster to form or a leader to show up; a hang guard, not a speed check.
const CLUSTER_DEADLINE: Duration = Duration::from_secs(60);

/// A single-member etcd on free ports, killed on drop.
pub struct Etcd {
    child: Child,
    /// `host:port` of its client listener.
    pub endpoint: String,
    _dir: tempfile::TempDir,
}

impl Etcd {
    pub fn start() -> Etcd {
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

/// etcd and brokers 1..=n (`brokers[i]` is node id i+1). Brokers are dropped (killed) before
/// etcd.
pub struct Cluster {
    pub brokers: Vec<Broker>,
    pub etcd: Etcd,
}

impl Cluster {
    /// Starts etcd and `n` brokers with `extra` flags, and waits until every broker lists every
    /// broker in Metadata.
    pub fn start(n: i32, extra: &[&str]) -> Cluster {
        let etcd = Etcd::start();
        let endpoint = format!("http://{}", etcd.endpoint);
        let brokers = (1..=n)
            .map(|node| {
                let node = node.to_string();
                let mut args = vec!["--node-id", &node, "--etcd", &endpoint];
                args.extend_from_slice(extra);
                Broker::start(&args)
            })
            .collect();
        let c = Cluster { brokers, etcd };
        for node in 1..=n {
            c.wait_until(&format!("broker {node} to see every broker"), || {
                let m = c.metadata(node, Some(Vec::new()));
                (m.brokers.len() == c.brokers.len()).then_some(())
            });
        }
        c
    }

    pub fn broker(&self, node: i32) -> &Broker {
        let i = usize::try_from(node - 1).expect("node ids start at 1");
        &self.brokers[i]
    }

    /// A connection to broker `node`.
    pub fn conn(&self, node: i32) -> Conn {
        Conn::connect(self.broker(node).kafka)
    }

    /// Metadata of `topics` (`None`: all) as broker `node` answers it.
    pub fn metadata(&self, node: i32, topics: Option<Vec<String>>) -> MetadataResponse {
        let request = MetadataRequest {
            topics: topics.map(|t| {
                t.into_iter()
                    .map(|name| weir_protocol::MetadataRequestTopic {
                        name: Some(name),
                        ..Default::default()
                    })
                    .collect()
            }),
            allow_auto_topic_creation: false,
            ..MetadataRequest::default()
        };
        match self.conn(node).call(Request::Metadata(request)) {
            Response::Metadata(m) => m,
            other => panic!("not a Metadata response: {other:?}"),
        }
    }

    /// The leader of `topic`-`partition` once one is elected, as broker 1 sees it.
    pub fn leader_of(&self, topic: &str, partition: i32) -> i32 {
        self.wait_until(&format!("a leader of {topic}-{partition}"), || {
            let m = self.metadata(1, Some(vec![topic.to_string()]));
            m.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .find(|p| p.partition_index == partition)
                .map(|p| p.leader_id)
                .filter(|l| *l >= 0)
        })
    }

    /// Polls `probe` until it gives a value; panics with `what` after [`CLUSTER_DEADLINE`].
    pub fn wait_until<T>(&self, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
        let started = Instant::now();
        loop {
            if let Some(v) = probe() {
                return v;
            }
            assert!(started.elapsed() < CLUSTER_DEADLINE, "waited for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
