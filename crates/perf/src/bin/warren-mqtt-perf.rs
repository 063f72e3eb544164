//! `warren-mqtt-perf`: an MQTT load generator for side-by-side throughput probes (Warren,
//! RabbitMQ's MQTT plugin, Mosquitto), written on Warren's MQTT codec over tokio so the
//! client is never the bottleneck a Python client would be.
//!
//! Publishers send `--messages` each, pipelined (QoS 0: as fast as the socket takes
//! them; QoS 1: up to `--inflight` unacknowledged). Subscribers acknowledge QoS 1
//! deliveries at once. In `pairs` mode subscriber `j` subscribes to publisher
//! `j % publishers`' topic; in `fanout` mode every subscriber subscribes to every topic.
//! Prints one JSON line: rates of publishing (until the last PUBACK) and of delivery
//! (first publish to last delivery), and how many messages arrived.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use warren_mqtt_codec::{
    decode, encode, Connect, Packet, ProtocolVersion, PubReply, Publish, QoS, Subscribe,
    Subscription, SubscriptionOptions,
};

#[derive(Parser, Debug, Clone)]
struct Args {
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 1883)]
    port: u16,
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    #[arg(long, default_value_t = 1)]
    subscribers: usize,
    /// Messages per publisher.
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    #[arg(long, default_value_t = 100)]
    size: usize,
    #[arg(long, default_value_t = 0)]
    qos: u8,
    /// QoS 1 publishes in flight per publisher.
    #[arg(long, default_value_t = 100)]
    inflight: usize,
    /// pairs | fanout
    #[arg(long, default_value = "pairs")]
    mode: String,
    #[arg(long, default_value = "guest")]
    username: String,
    #[arg(long, default_value = "guest")]
    password: String,
    /// Give up waiting for deliveries after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

const V: ProtocolVersion = ProtocolVersion::V3_1_1;

async fn connect(a: &Args, id: String) -> TcpStream {
    let mut s = TcpStream::connect((a.host.as_str(), a.port))
        .await
        .expect("connect");
    s.set_nodelay(true).ok();
    let mut c = Connect::new(V, id.as_str());
    c.keep_alive = 600;
    c.username = Some(a.username.as_str().into());
    c.password = Some(Bytes::from(a.password.clone()));
    let mut b = BytesMut::new();
    encode(&Packet::Connect(Box::new(c)), V, &mut b).unwrap();
    s.write_all(&b).await.unwrap();
    let mut rb = BytesMut::with_capacity(64);
    loop {
        if let Some(p) = decode(&mut rb, V, 0).unwrap() {
            match p {
                Packet::ConnAck(ack) if ack.code.0 == 0 => return s,
                other => panic!("connect refused: {other:?}"),
            }
        }
        if s.read_buf(&mut rb).await.unwrap() == 0 {
            panic!("closed during connect");
        }
    }
}

async fn subscriber(
    a: Args,
    topics: Vec<String>,
    received: Arc<AtomicU64>,
    expected: u64,
    last: Arc<Progress>,
) {
    let id = format!("bench-sub-{}", rand_id());
    let mut s = connect(&a, id).await;
    let sub = Subscribe {
        packet_id: 1,
        properties: Default::default(),
        subscriptions: topics
            .iter()
            .map(|t| Subscription {
                filter: t.as_str().into(),
                options: SubscriptionOptions::new(if a.qos == 0 {
                    QoS::AtMostOnce
                } else {
                    QoS::AtLeastOnce
                }),
            })
            .collect(),
    };
    let mut b = BytesMut::new();
    encode(&Packet::Subscribe(sub), V, &mut b).unwrap();
    s.write_all(&b).await.unwrap();
    let (mut r, mut w) = s.into_split();
    let mut rb = BytesMut::with_capacity(256 << 10);
    let mut wb = BytesMut::new();
    let mut got = 0u64;
    // SUBACK first.
    loop {
        if let Some(Packet::SubAck(_)) = decode(&mut rb, V, 0).unwrap() {
            break;
        }
        if r.read_buf(&mut rb).await.unwrap() == 0 {
            return;
        }
    }
    last.ready.fetch_add(1, Ordering::SeqCst);
    while got < expected {
        while let Some(p) = decode(&mut rb, V, 0).unwrap() {
            if let Packet::Publish(p) = p {
                got += 1;
                if p.qos != QoS::AtMostOnce {
                    encode(&Packet::PubAck(PubReply::new(p.packet_id)), V, &mut wb).unwrap();
                }
            }
        }
        if !wb.is_empty() {
            w.write_all(&wb).await.unwrap();
            wb.clear();
        }
        if got >= expected {
            break;
        }
        if rb.capacity() - rb.len() < 16 << 10 {
            rb.reserve(256 << 10);
        }
        match r.read_buf(&mut rb).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    received.fetch_add(got, Ordering::SeqCst);
    last.mark();
}

async fn publisher(a: Args, topic: String) -> Duration {
    let id = format!("bench-pub-{}", rand_id());
    let s = connect(&a, id).await;
    let (mut r, mut w) = s.into_split();
    let payload = Bytes::from(vec![b'x'; a.size]);
    let start = Instant::now();
    if a.qos == 0 {
        let mut b = BytesMut::with_capacity(256 << 10);
        for _ in 0..a.messages {
            encode(
                &Packet::Publish(Publish::new(topic.as_str(), payload.clone())),
                V,
                &mut b,
            )
            .unwrap();
            if b.len() > 128 << 10 {
                w.write_all(&b).await.unwrap();
                b.clear();
            }
        }
        w.write_all(&b).await.unwrap();
        return start.elapsed();
    }
    let window = Arc::new(Semaphore::new(a.inflight));
    let win = window.clone();
    let total = a.messages;
    let acker = tokio::spawn(async move {
        let mut rb = BytesMut::with_capacity(64 << 10);
        let mut acked = 0u64;
        while acked < total {
            while let Some(p) = decode(&mut rb, V, 0).unwrap() {
                if let Packet::PubAck(_) = p {
                    acked += 1;
                    win.add_permits(1);
                }
            }
            if acked >= total {
                break;
            }
            if r.read_buf(&mut rb).await.unwrap() == 0 {
                break;
            }
        }
    });
    let mut b = BytesMut::with_capacity(64 << 10);
    let mut pid = 0u16;
    for _ in 0..a.messages {
        let permit = match window.try_acquire() {
            Ok(p) => p,
            Err(_) => {
                if !b.is_empty() {
                    w.write_all(&b).await.unwrap();
                    b.clear();
                }
                window.acquire().await.unwrap()
            }
        };
        permit.forget();
        pid = pid.wrapping_add(1).max(1);
        let mut p = Publish::new(topic.as_str(), payload.clone());
        p.qos = QoS::AtLeastOnce;
        p.packet_id = pid;
        encode(&Packet::Publish(p), V, &mut b).unwrap();
        if b.len() > 64 << 10 {
            w.write_all(&b).await.unwrap();
            b.clear();
        }
    }
    w.write_all(&b).await.unwrap();
    let _ = acker.await;
    start.elapsed()
}

fn rand_id() -> String {
    use std::hash::{BuildHasher, RandomState};
    format!("{:x}", RandomState::new().hash_one(Instant::now()))
}

/// How many subscribers are ready, and when the last one got its last message.
#[derive(Default)]
struct Progress {
    ready: AtomicU64,
    last: std::sync::Mutex<Option<Instant>>,
}

impl Progress {
    fn mark(&self) {
        let mut at = self.last.lock().unwrap();
        let now = Instant::now();
        if at.is_none_or(|t| now > t) {
            *at = Some(now);
        }
    }
}

#[tokio::main]
async fn main() {
    let a = Args::parse();
    let run = rand_id();
    let topics: Vec<String> = (0..a.publishers)
        .map(|i| format!("bench/{run}/{i}"))
        .collect();
    let received = Arc::new(AtomicU64::new(0));
    let last = Arc::new(Progress::default());
    let mut subs = Vec::new();
    let mut expected_total = 0;
    for j in 0..a.subscribers {
        let (mine, expected) = if a.mode == "fanout" {
            (topics.clone(), a.messages * a.publishers as u64)
        } else {
            let t = topics[j % a.publishers].clone();
            (vec![t], a.messages)
        };
        expected_total += expected;
        subs.push(tokio::spawn(subscriber(
            a.clone(),
            mine,
            received.clone(),
            expected,
            last.clone(),
        )));
    }
    while last.ready.load(Ordering::SeqCst) < a.subscribers as u64 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let pubs: Vec<_> = topics
        .iter()
        .map(|t| tokio::spawn(publisher(a.clone(), t.clone())))
        .collect();
    let mut publish_time = Duration::ZERO;
    for p in pubs {
        publish_time = publish_time.max(p.await.unwrap());
    }
    let deadline = tokio::time::sleep(Duration::from_secs(a.timeout));
    tokio::pin!(deadline);
    for s in subs {
        tokio::select! {
            _ = s => {}
            _ = &mut deadline => break,
        }
    }
    let delivered = received.load(Ordering::SeqCst);
    let end = last.last.lock().unwrap().unwrap_or_else(Instant::now);
    let total_pub = a.messages * a.publishers as u64;
    let secs = end.duration_since(start).as_secs_f64();
    println!(
        "{{\"qos\":{},\"size\":{},\"publishers\":{},\"subscribers\":{},\"mode\":\"{}\",\"published\":{},\"delivered\":{},\"expected\":{},\"publish_rate\":{:.0},\"delivery_rate\":{:.0},\"seconds\":{:.3}}}",
        a.qos, a.size, a.publishers, a.subscribers, a.mode, total_pub, delivered, expected_total,
        total_pub as f64 / publish_time.as_secs_f64(), delivered as f64 / secs, secs
    );
}
