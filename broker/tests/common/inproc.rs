//! A broker in this test process, on a loopback port of its own and a runtime thread of its own,
//! for wire-level tests that need no binary (or need the broker's state, a manual clock or a
//! fake disk). Dropping it shuts the broker down and joins its thread.

use std::net::SocketAddr;
use std::sync::Arc;

use weir_broker::broker::Broker;
use weir_broker::clock::SystemClock;
use weir_broker::config::BrokerConfig;

pub struct InProcess {
    pub addr: SocketAddr,
    pub broker: Arc<Broker>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The data directory when the broker was given a temporary one (removed after shutdown).
    _dir: Option<tempfile::TempDir>,
}

impl InProcess {
    /// Starts a broker on a temporary data directory with the default config changed by
    /// `tweak`.
    pub fn start_temp(tweak: impl FnOnce(&mut BrokerConfig)) -> InProcess {
        Self::start_temp_opened(tweak, |config| {
            Broker::open(config, Arc::new(SystemClock)).expect("open broker")
        })
    }

    /// [`InProcess::start_temp`] with the broker opened by `open`.
    pub fn start_temp_opened(
        tweak: impl FnOnce(&mut BrokerConfig),
        open: impl FnOnce(BrokerConfig) -> Arc<Broker>,
    ) -> InProcess {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = BrokerConfig {
            data_dir: dir.path().to_path_buf(),
            ..BrokerConfig::default()
        };
        tweak(&mut config);
        let mut running = Self::start_opened(config, open);
        running._dir = Some(dir);
        running
    }

    /// Starts a broker with `config` (its listener replaced by a free loopback port, no admin
    /// listener) on the system clock.
    pub fn start(config: BrokerConfig) -> InProcess {
        Self::start_opened(config, |config| {
            Broker::open(config, Arc::new(SystemClock)).expect("open broker")
        })
    }

    /// [`InProcess::start`] with the broker opened by `open` (another clock, metrics or disk).
    pub fn start_opened(
        config: BrokerConfig,
        open: impl FnOnce(BrokerConfig) -> Arc<Broker>,
    ) -> InProcess {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = std_listener.local_addr().expect("addr");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let broker = open(BrokerConfig {
            listener: addr,
            admin_listener: None,
            ..config
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let served = broker.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
                weir_broker::run(served, listener, async move {
                    let _ = stop_rx.await;
                })
                .await
                .expect("run");
            });
        });
        InProcess {
            addr,
            broker,
            stop: Some(stop_tx),
            thread: Some(thread),
            _dir: None,
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
