//! Weir benchmark load generator (driven by `benches/run.sh`).
//!
//! * `create-topic` — creates a topic through the Kafka admin API and waits until its metadata
//!   shows every partition with a leader (both Weir and the peer broker are driven this way).
//! * `latency` — open-loop end-to-end latency: a producer sends at a fixed rate, each payload
//!   carrying the time the message was *scheduled* to be sent; a consumer in the same process
//!   records `receive time - scheduled time` into an HdrHistogram. Measuring from the scheduled
//!   (not the actual) send time corrects for coordinated omission: if the producer falls behind
//!   because the broker is slow, the delay counts as latency.
//!
//! Output is one JSON object on stdout; diagnostics go to stderr.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

#[derive(Parser)]
#[command(about = "Load generator for Weir's benchmark harness")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a topic and wait until all its partitions have a leader.
    CreateTopic {
        #[arg(long)]
        bootstrap: String,
        #[arg(long)]
        topic: String,
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        /// Seconds to wait for the topic to appear in metadata.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Open-loop end-to-end latency at a fixed message rate.
    Latency {
        #[arg(long)]
        bootstrap: String,
        #[arg(long)]
        topic: String,
        /// Messages per second (scheduled, open loop).
        #[arg(long)]
        rate: f64,
        /// Seconds of sending.
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// Seconds at the start whose messages are sent but not recorded.
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        /// Record value size in bytes (>= 16).
        #[arg(long, default_value_t = 1024)]
        size: usize,
        /// Producer acks: 0, 1 or all.
        #[arg(long, default_value = "all")]
        acks: String,
        /// Producer linger.ms.
        #[arg(long, default_value_t = 0)]
        linger_ms: u64,
        /// Extra librdkafka properties, key=value, for both clients.
        #[arg(long = "set")]
        set: Vec<String>,
    },
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.cmd {
        Cmd::CreateTopic { bootstrap, topic, partitions, timeout } => {
            create_topic(&bootstrap, &topic, partitions, Duration::from_secs(timeout))
        }
        Cmd::Latency { bootstrap, topic, rate, duration, warmup, size, acks, linger_ms, set } => {
            latency(LatencyArgs { bootstrap, topic, rate, duration, warmup, size: size.max(16), acks, linger_ms, set })
        }
    };
    std::process::exit(code);
}

fn create_topic(bootstrap: &str, topic: &str, partitions: i32, timeout: Duration) -> i32 {
    let admin: AdminClient<DefaultClientContext> = match ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
    {
        Ok(a) => a,
        Err(e) => {
            eprintln!("loadgen: admin client: {e}");
            return 1;
        }
    };
    let rt = BlockOn;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    match rt.block(admin.create_topics([&new], &opts)) {
        Ok(results) => {
            for r in results {
                match r {
                    Ok(_) => {}
                    Err((t, RDKafkaErrorCode::TopicAlreadyExists)) => eprintln!("loadgen: {t} already exists"),
                    Err((t, code)) => {
                        eprintln!("loadgen: create {t}: {code:?}");
                        return 1;
                    }
                }
            }
        }
        Err(e) => {
            eprintln!("loadgen: create_topics: {e}");
            return 1;
        }
    }
    // Wait for metadata to list every partition with a leader.
    let consumer: BaseConsumer = match ClientConfig::new().set("bootstrap.servers", bootstrap).create() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("loadgen: metadata client: {e}");
            return 1;
        }
    };
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            if let Some(t) = md.topics().iter().find(|t| t.name() == topic) {
                let ready = t.error().is_none()
                    && t.partitions().len() == partitions as usize
                    && t.partitions().iter().all(|p| p.leader() >= 0);
                if ready {
                    println!("{{\"topic\":\"{topic}\",\"partitions\":{partitions}}}");
                    return 0;
                }
            }
        }
        if Instant::now() > deadline {
            eprintln!("loadgen: topic {topic} not ready after {timeout:?}");
            return 1;
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// A minimal executor for the admin client's futures (avoids pulling in an async runtime).
struct BlockOn;
impl BlockOn {
    fn block<F: std::future::Future>(&self, fut: F) -> F::Output {
        use std::task::{Context, Poll, Wake, Waker};
        struct ThreadWaker(thread::Thread);
        impl Wake for ThreadWaker {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut fut = std::pin::pin!(fut);
        loop {
            match fut.as_mut().poll(&mut cx) {
                Poll::Ready(v) => return v,
                Poll::Pending => thread::park_timeout(Duration::from_millis(50)),
            }
        }
    }
}

struct LatencyArgs {
    bootstrap: String,
    topic: String,
    rate: f64,
    duration: f64,
    warmup: f64,
    size: usize,
    acks: String,
    linger_ms: u64,
    set: Vec<String>,
}

/// Counts delivery outcomes and records produce-acknowledgement latency (scheduled send time to
/// delivery report), which splits end-to-end latency into its producer and consumer halves.
struct Counting {
    base: Instant,
    warm: u64,
    ok: AtomicU64,
    err: AtomicU64,
    ack: std::sync::Mutex<Histogram<u64>>,
}
impl ClientContext for Counting {}
impl ProducerContext for Counting {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                if let Some(p) = m.payload().filter(|p| p.len() >= 16) {
                    let sched = u64::from_le_bytes(p[0..8].try_into().unwrap());
                    let seq = u64::from_le_bytes(p[8..16].try_into().unwrap());
                    if seq >= self.warm {
                        let us = (self.base.elapsed().as_nanos() as u64).saturating_sub(sched) / 1000;
                        self.ack.lock().unwrap().saturating_record(us.max(1));
                    }
                }
                self.ok.fetch_add(1, Ordering::Relaxed)
            }
            Err((e, _)) => {
                if self.err.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!("loadgen: delivery error: {e}");
                }
                0
            }
        };
    }
}

fn apply(cfg: &mut ClientConfig, set: &[String]) {
    for kv in set {
        if let Some((k, v)) = kv.split_once('=') {
            cfg.set(k, v);
        }
    }
}

fn latency(a: LatencyArgs) -> i32 {
    // All times are nanoseconds since `base`, shared by the producer and consumer threads.
    let base = Instant::now();
    let total = (a.rate * a.duration).round() as u64;
    let warm = (a.rate * a.warmup).round() as u64;
    if total == 0 {
        eprintln!("loadgen: nothing to send");
        return 1;
    }

    let mut ccfg = ClientConfig::new();
    ccfg.set("bootstrap.servers", &a.bootstrap)
        .set("group.id", "weir-loadgen")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    apply(&mut ccfg, &a.set);
    let consumer: BaseConsumer = match ccfg.create() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("loadgen: consumer: {e}");
            return 1;
        }
    };
    let mut tpl = TopicPartitionList::new();
    if tpl.add_partition_offset(&a.topic, 0, Offset::Beginning).is_err() || consumer.assign(&tpl).is_err() {
        eprintln!("loadgen: assign failed");
        return 1;
    }

    let done_sending = Arc::new(AtomicBool::new(false));
    let sent_count = Arc::new(AtomicU64::new(0));
    let consumer_thread = {
        let done_sending = done_sending.clone();
        let sent_count = sent_count.clone();
        thread::spawn(move || {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).expect("histogram");
            let mut received = 0u64;
            let mut consume_errors = 0u64;
            let mut drain_deadline: Option<Instant> = None;
            // When the last message came back: with the first scheduled send, the rate the whole
            // path (producer, broker, consumer) kept up with.
            let mut last_received_ns = 0u64;
            loop {
                match consumer.poll(Duration::from_millis(50)) {
                    Some(Ok(m)) => {
                        let now = base.elapsed().as_nanos() as u64;
                        if let Some(p) = m.payload() {
                            if p.len() >= 16 {
                                let sched = u64::from_le_bytes(p[0..8].try_into().unwrap());
                                let seq = u64::from_le_bytes(p[8..16].try_into().unwrap());
                                received += 1;
                                last_received_ns = now;
                                if seq >= warm {
                                    let us = now.saturating_sub(sched) / 1000;
                                    hist.saturating_record(us.max(1));
                                }
                            }
                        }
                    }
                    Some(Err(e)) => {
                        consume_errors += 1;
                        if consume_errors <= 5 {
                            eprintln!("loadgen: consume error: {e}");
                        }
                    }
                    None => {}
                }
                if done_sending.load(Ordering::Acquire) {
                    let d = *drain_deadline.get_or_insert_with(|| Instant::now() + Duration::from_secs(15));
                    if received >= sent_count.load(Ordering::Acquire) || Instant::now() > d {
                        break;
                    }
                }
            }
            (hist, received, consume_errors, last_received_ns)
        })
    };

    let ctx = Counting {
        base,
        warm,
        ok: AtomicU64::new(0),
        err: AtomicU64::new(0),
        ack: std::sync::Mutex::new(Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).expect("histogram")),
    };
    let mut pcfg = ClientConfig::new();
    pcfg.set("bootstrap.servers", &a.bootstrap)
        .set("acks", &a.acks)
        .set("linger.ms", a.linger_ms.to_string())
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576");
    apply(&mut pcfg, &a.set);
    let producer: ThreadedProducer<Counting> = match pcfg.create_with_context(ctx) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("loadgen: producer: {e}");
            return 1;
        }
    };
    // Connect and learn the partition leader before the clock starts.
    let _ = producer.client().fetch_metadata(Some(&a.topic), Duration::from_secs(10));

    let mut payload = vec![0x5au8; a.size];
    let interval_ns = 1e9 / a.rate;
    let t0 = base.elapsed().as_nanos() as u64 + 1_000_000;
    let mut sent = 0u64;
    let mut queue_full = 0u64;
    let mut max_behind_ns = 0u64;
    while sent < total {
        let now = base.elapsed().as_nanos() as u64;
        let due = if now < t0 { 0 } else { (((now - t0) as f64 / interval_ns) as u64 + 1).min(total) };
        if sent >= due {
            let next = t0 + (sent as f64 * interval_ns) as u64;
            let wait = next.saturating_sub(now);
            if wait > 50_000 {
                thread::sleep(Duration::from_nanos(wait - 50_000));
            } else {
                std::hint::spin_loop();
            }
            continue;
        }
        while sent < due {
            let sched = t0 + (sent as f64 * interval_ns) as u64;
            payload[0..8].copy_from_slice(&sched.to_le_bytes());
            payload[8..16].copy_from_slice(&sent.to_le_bytes());
            loop {
                match producer.send(BaseRecord::<(), [u8], ()>::to(&a.topic).partition(0).payload(&payload[..])) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        queue_full += 1;
                        thread::sleep(Duration::from_micros(200));
                    }
                    Err((e, _)) => {
                        eprintln!("loadgen: send: {e}");
                        return 1;
                    }
                }
            }
            sent += 1;
            sent_count.store(sent, Ordering::Release);
        }
        let behind = base.elapsed().as_nanos() as u64 - (t0 + ((sent - 1) as f64 * interval_ns) as u64);
        max_behind_ns = max_behind_ns.max(behind);
    }
    let send_secs = (base.elapsed().as_nanos() as u64 - t0) as f64 / 1e9;
    let flush = producer.flush(Duration::from_secs(15));
    done_sending.store(true, Ordering::Release);
    let (hist, received, consume_errors, last_received_ns) = consumer_thread.join().expect("consumer thread");
    let end_to_end_secs = last_received_ns.saturating_sub(t0) as f64 / 1e9;
    let ctx = producer.context();
    let q = |p: f64| hist.value_at_quantile(p) as f64 / 1000.0;
    let ack = ctx.ack.lock().unwrap().clone();
    let qa = |p: f64| ack.value_at_quantile(p) as f64 / 1000.0;
    println!(
        "{{\"ack_p50_ms\":{:.3},\"ack_p99_ms\":{:.3},\"ack_p999_ms\":{:.3},\"rate\":{},\"sent\":{},\"send_secs\":{:.3},\"achieved_rate\":{:.1},\"end_to_end_rate\":{:.1},\"delivered\":{},\"delivery_errors\":{},\"received\":{},\"recorded\":{},\"consume_errors\":{},\"queue_full\":{},\"flush_ok\":{},\"max_send_lag_ms\":{:.3},\"p50_ms\":{:.3},\"p90_ms\":{:.3},\"p99_ms\":{:.3},\"p999_ms\":{:.3},\"max_ms\":{:.3}}}",
        qa(0.5),
        qa(0.99),
        qa(0.999),
        a.rate,
        sent,
        send_secs,
        sent as f64 / send_secs.max(1e-9),
        received as f64 / end_to_end_secs.max(1e-9),
        ctx.ok.load(Ordering::Relaxed),
        ctx.err.load(Ordering::Relaxed),
        received,
        hist.len(),
        consume_errors,
        queue_full,
        flush.is_ok(),
        max_behind_ns as f64 / 1e6,
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        hist.max() as f64 / 1000.0
    );
    if received < sent {
        eprintln!("loadgen: only {received} of {sent} messages came back");
    }
    0
}
