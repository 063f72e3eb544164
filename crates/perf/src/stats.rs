//! What a run measures and how it is reported.
//!
//! Workers count into [`Counters`] (relaxed atomics, added once per read or write batch,
//! not per message) and record latencies into their own [`LatencyCell`] (a histogram
//! behind a mutex that only the once-a-second reporter ever contends for). The reporter
//! turns those into a [`Sample`] per second; the end of the run into a [`Summary`]. Both
//! serialize to one JSON object per line (`--json`) and render as text for people.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Run-wide message counters.
#[derive(Debug, Default)]
pub struct Counters {
    /// Publishes written into a connection's write buffer.
    pub published: AtomicU64,
    /// Publishes the broker confirmed with `basic.ack`.
    pub confirmed: AtomicU64,
    /// Publishes the broker refused with `basic.nack`.
    pub nacked: AtomicU64,
    /// Deliveries received in full.
    pub consumed: AtomicU64,
    /// Body bytes of those deliveries.
    pub consumed_bytes: AtomicU64,
    /// Producers that have sent (and, with confirms, settled) everything.
    pub producers_done: AtomicUsize,
    /// Connections the broker has blocked (`connection.blocked`) right now.
    pub blocked: AtomicUsize,
    /// Deliveries of a message already delivered, not flagged `redelivered`.
    pub duplicates: AtomicU64,
    /// Deliveries of a message already delivered, flagged `redelivered`.
    pub redelivered_again: AtomicU64,
    /// Deliveries per consumer (by consumer index), to see how the broker spread them.
    pub per_consumer: Vec<AtomicU64>,
    /// Stream mode: consumers that have received their share.
    pub consumers_done: AtomicUsize,
    /// Stream mode: first deliveries of a number below one the consumer already had.
    pub out_of_order: AtomicU64,
    /// Stream mode: deliveries whose `x-stream-offset` header was missing or not above
    /// the consumer's previous one.
    pub offset_errors: AtomicU64,
    /// Stream mode: per consumer, the first and the last `x-stream-offset` it got
    /// ([`NO_OFFSET`] before any).
    pub per_consumer_offsets: Vec<[AtomicU64; 2]>,
    /// Messages sent per producer (by producer index), for the loss check.
    pub per_producer: Vec<AtomicU64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub published: u64,
    pub confirmed: u64,
    pub nacked: u64,
    pub consumed: u64,
}

/// No `x-stream-offset` seen yet.
pub const NO_OFFSET: u64 = u64::MAX;

impl Counters {
    pub fn new(consumers: usize, producers: usize) -> Counters {
        Counters {
            per_consumer: (0..consumers).map(|_| AtomicU64::new(0)).collect(),
            per_consumer_offsets: (0..consumers)
                .map(|_| [AtomicU64::new(NO_OFFSET), AtomicU64::new(NO_OFFSET)])
                .collect(),
            per_producer: (0..producers).map(|_| AtomicU64::new(0)).collect(),
            ..Default::default()
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            published: self.published.load(Relaxed),
            confirmed: self.confirmed.load(Relaxed),
            nacked: self.nacked.load(Relaxed),
            consumed: self.consumed.load(Relaxed),
        }
    }
}

/// Latencies in nanoseconds, from 1 ns to an hour, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

/// One worker's latency histograms: end-to-end (stamp to delivery) and confirm (publish
/// to `basic.ack`). The reporter drains them every second.
pub struct LatencyCell {
    pub end_to_end: Mutex<Histogram<u64>>,
    pub confirm: Mutex<Histogram<u64>>,
}

impl LatencyCell {
    pub fn new() -> Arc<LatencyCell> {
        Arc::new(LatencyCell {
            end_to_end: Mutex::new(new_histogram()),
            confirm: Mutex::new(new_histogram()),
        })
    }

    /// Moves everything recorded so far into `e2e` and `confirm`, leaving the cell empty.
    pub fn drain_into(&self, e2e: &mut Histogram<u64>, confirm: &mut Histogram<u64>) {
        for (cell, into) in [(&self.end_to_end, e2e), (&self.confirm, confirm)] {
            let mut h = cell.lock().unwrap_or_else(|p| p.into_inner());
            if !h.is_empty() {
                into.add(&*h).expect("same bounds");
                h.reset();
            }
        }
    }
}

/// Percentiles of a latency histogram, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    pub samples: u64,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Option<Latency> {
        if h.is_empty() {
            return None;
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Some(Latency {
            samples: h.len(),
            min: us(h.min()),
            mean: h.mean() / 1000.0,
            p50: us(h.value_at_quantile(0.50)),
            p95: us(h.value_at_quantile(0.95)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        })
    }
}

/// Broker process figures (`--broker-pid`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct BrokerSample {
    pub cpu_percent: f64,
    pub rss_kb: u64,
}

/// One per-second report line.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub kind: &'static str,
    /// Seconds since publishing started.
    pub t: f64,
    pub published: u64,
    pub consumed: u64,
    pub publish_rate: f64,
    pub consume_rate: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirm_rate: Option<f64>,
    /// Published but not yet consumed (with consumers), or not yet confirmed (without).
    pub in_flight: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unconfirmed: Option<u64>,
    pub blocked_connections: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<Latency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirm_latency_us: Option<Latency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker: Option<BrokerSample>,
}

impl Sample {
    /// The progress line for stderr.
    pub fn progress_line(&self) -> String {
        let mut s = format!(
            "[{:>6.1}s] sent {:>9} msg/s  recv {:>9} msg/s  in-flight {:>9}",
            self.t,
            group(self.publish_rate.round() as u64),
            group(self.consume_rate.round() as u64),
            group_i(self.in_flight),
        );
        if let Some(r) = self.confirm_rate {
            let _ = write!(s, "  confirmed {:>9} msg/s", group(r.round() as u64));
        }
        if let Some(l) = &self.latency_us {
            let _ = write!(
                s,
                "  latency p50 {} p99 {} max {}",
                micros(l.p50),
                micros(l.p99),
                micros(l.max)
            );
        }
        if let Some(b) = &self.broker {
            let _ = write!(
                s,
                "  broker {:.0}% cpu {} rss",
                b.cpu_percent,
                kib(b.rss_kb)
            );
        }
        if self.blocked_connections > 0 {
            let _ = write!(s, "  BLOCKED x{}", self.blocked_connections);
        }
        s
    }
}

/// Broker cost over the run (`--broker-pid`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct BrokerCost {
    pub pid: u32,
    pub cpu_seconds: f64,
    pub cpu_us_per_msg: f64,
    pub rss_kb_before: u64,
    pub rss_kb_after: u64,
    /// VmHWM: the broker's peak RSS since it started (not just during this run).
    pub peak_rss_kb_before: u64,
    pub peak_rss_kb_after: u64,
}

/// Our own cost over the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ClientCost {
    pub cpu_seconds: f64,
    pub cpu_us_per_msg: f64,
    pub cpu_seconds_per_million: f64,
}

/// The end-of-run report.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub kind: &'static str,
    pub broker_product: String,
    pub uri: String,
    pub queue: String,
    pub producers: usize,
    pub consumers: usize,
    pub connections: usize,
    pub size: usize,
    pub count: Option<u64>,
    pub duration_s: Option<f64>,
    pub rate_limit: u64,
    pub persistent: bool,
    pub confirm: u32,
    pub prefetch: u16,
    pub auto_ack: bool,
    pub multiple_ack: u32,
    pub elapsed_s: f64,
    pub published: u64,
    pub confirmed: u64,
    pub nacked: u64,
    pub consumed: u64,
    /// Deliveries per consumer, in consumer order.
    pub consumed_per_consumer: Vec<u64>,
    /// Published messages over the time producers took to send them all.
    pub publish_rate: f64,
    /// Consumed messages over the whole run.
    pub consume_rate: f64,
    /// Each consumer's deliveries over the whole run, in consumer order.
    pub consume_rate_per_consumer: Vec<f64>,
    /// Body bytes received over the whole run, in MB/s (10^6 bytes).
    pub consume_mb_per_s: f64,
    /// Stream mode: where consumers started and which offsets they got.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<Latency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirm_latency_us: Option<Latency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker: Option<BrokerCost>,
    pub client: ClientCost,
    /// Why the run stopped: "count", "duration", "interrupted", "stalled", "error".
    pub ended_by: String,
    pub integrity: Integrity,
}

/// A stream run's offsets.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StreamReport {
    /// The `x-stream-offset` consumers asked for.
    pub start: String,
    /// Per consumer, the first and last `x-stream-offset` delivered (`None`: nothing).
    pub first_offsets: Vec<Option<u64>>,
    pub last_offsets: Vec<Option<u64>>,
}

/// Messages of one (queue, producer) that never arrived.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MissingReport {
    pub queue: String,
    pub producer: u16,
    pub count: u64,
    /// The first few missing sequence numbers.
    pub first: Vec<u64>,
}

/// Whether the broker delivered every message sent exactly once to each queue.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Integrity {
    /// Loss was checked (see `verdict` for why not).
    pub checked: bool,
    /// Messages sent and neither delivered nor still queued (nor nacked).
    pub lost: u64,
    /// Second deliveries of a message not flagged `redelivered`.
    pub duplicates: u64,
    /// Second deliveries flagged `redelivered` (requeues; not an error).
    pub redelivered_again: u64,
    /// Stream mode: deliveries that came after a later message of the same producer.
    pub out_of_order: u64,
    /// Stream mode: deliveries without an `x-stream-offset` header above the previous.
    pub offset_errors: u64,
    /// Distinct (queue, producer, sequence) deliveries seen.
    pub distinct: u64,
    /// Messages still ready in the queues after a timed run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_in_queues: Option<u64>,
    /// Not yet delivered when the check ran, per (queue, producer).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<MissingReport>,
    /// One line for people.
    pub verdict: String,
}

impl Integrity {
    pub fn ok(&self) -> bool {
        self.lost == 0 && self.duplicates == 0 && self.out_of_order == 0 && self.offset_errors == 0
    }
}

impl Summary {
    /// The human table for stdout.
    pub fn table(&self) -> String {
        let mut rows: Vec<(&str, String)> = Vec::new();
        rows.push(("broker", format!("{} at {}", self.broker_product, self.uri)));
        let ack = if self.auto_ack {
            "auto-ack".to_string()
        } else if self.multiple_ack > 1 {
            format!("ack every {} (multiple)", self.multiple_ack)
        } else {
            "ack each".to_string()
        };
        rows.push((
            "workload",
            format!(
                "{}p/{}c over {} conns, {} B{}, {}, prefetch {}, {}{}",
                self.producers,
                self.consumers,
                self.connections,
                self.size,
                if self.persistent { " persistent" } else { "" },
                if self.confirm > 0 {
                    format!("confirm window {}", self.confirm)
                } else {
                    "no confirms".into()
                },
                self.prefetch,
                ack,
                if self.rate_limit > 0 {
                    format!(", rate limit {} msg/s", group(self.rate_limit))
                } else {
                    String::new()
                }
            ),
        ));
        rows.push(("queue", self.queue.clone()));
        rows.push((
            "elapsed",
            format!("{:.3} s (ended by {})", self.elapsed_s, self.ended_by),
        ));
        rows.push((
            "published",
            format!(
                "{:>11} msgs  {:>11} msg/s",
                group(self.published),
                group(self.publish_rate.round() as u64)
            ),
        ));
        if self.confirm > 0 {
            rows.push((
                "confirmed",
                format!(
                    "{:>11} msgs  ({} nacked)",
                    group(self.confirmed),
                    group(self.nacked)
                ),
            ));
        }
        rows.push((
            "consumed",
            format!(
                "{:>11} msgs  {:>11} msg/s  {:.1} MB/s",
                group(self.consumed),
                group(self.consume_rate.round() as u64),
                self.consume_mb_per_s
            ),
        ));
        if self.consumed_per_consumer.len() > 1 {
            let v = &self.consumed_per_consumer;
            let (min, max) = (v.iter().min().unwrap_or(&0), v.iter().max().unwrap_or(&0));
            let r = &self.consume_rate_per_consumer;
            let (rmin, rmax) = (
                r.iter().copied().fold(f64::INFINITY, f64::min),
                r.iter().copied().fold(0.0, f64::max),
            );
            rows.push((
                "per consumer",
                format!(
                    "min {}  max {} msgs  ({} - {} msg/s)",
                    group(*min),
                    group(*max),
                    group(rmin.round() as u64),
                    group(rmax.round() as u64)
                ),
            ));
        }
        if let Some(st) = &self.stream {
            let range = |i: usize| match (st.first_offsets[i], st.last_offsets[i]) {
                (Some(a), Some(b)) => format!("{a}..={b}"),
                _ => "-".into(),
            };
            let ranges: Vec<String> = (0..st.first_offsets.len()).map(range).collect();
            rows.push((
                "stream",
                format!(
                    "from {}; offsets per consumer {}",
                    st.start,
                    ranges.join(", ")
                ),
            ));
        }
        let lat = |l: &Latency| {
            format!(
                "p50 {}  p95 {}  p99 {}  p99.9 {}  max {}",
                micros(l.p50),
                micros(l.p95),
                micros(l.p99),
                micros(l.p999),
                micros(l.max)
            )
        };
        if let Some(l) = &self.latency_us {
            rows.push(("latency", lat(l)));
        }
        if let Some(l) = &self.confirm_latency_us {
            rows.push(("confirm latency", lat(l)));
        }
        if let Some(b) = &self.broker {
            rows.push((
                "broker cpu",
                format!(
                    "{:.2} s  = {:.2} µs/msg  (pid {})",
                    b.cpu_seconds, b.cpu_us_per_msg, b.pid
                ),
            ));
            rows.push((
                "broker memory",
                format!(
                    "rss {} -> {}  peak {} -> {}",
                    kib(b.rss_kb_before),
                    kib(b.rss_kb_after),
                    kib(b.peak_rss_kb_before),
                    kib(b.peak_rss_kb_after)
                ),
            ));
        }
        rows.push((
            "client cpu",
            format!(
                "{:.2} s  = {:.2} µs/msg  = {:.2} s per million msgs",
                self.client.cpu_seconds,
                self.client.cpu_us_per_msg,
                self.client.cpu_seconds_per_million
            ),
        ));
        rows.push(("integrity", self.integrity.verdict.clone()));
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        rows.iter()
            .map(|(k, v)| format!("{k:<width$}  {v}\n"))
            .collect()
    }
}

/// 1234567 -> "1,234,567".
pub fn group(n: u64) -> String {
    let digits = n.to_string().into_bytes();
    let lead = match digits.len() % 3 {
        0 => 3,
        r => r,
    };
    let (head, rest) = digits.split_at(lead.min(digits.len()));
    let mut out = String::from_utf8_lossy(head).into_owned();
    for chunk in rest.chunks(3) {
        out.push(',');
        out.push_str(&String::from_utf8_lossy(chunk));
    }
    out
}

fn group_i(n: i64) -> String {
    if n < 0 {
        format!("-{}", group(n.unsigned_abs()))
    } else {
        group(n as u64)
    }
}

/// Microseconds, shown in the unit that keeps 3 significant digits readable.
pub fn micros(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{:.2} s", us / 1_000_000.0)
    }
}

pub fn kib(kb: u64) -> String {
    if kb < 10 * 1024 {
        format!("{kb} KiB")
    } else {
        format!("{:.1} MiB", kb as f64 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_percentiles_in_microseconds() {
        let mut h = new_histogram();
        for us in 1..=1000u64 {
            h.record(us * 1000).unwrap();
        }
        let l = Latency::of(&h).unwrap();
        assert_eq!(l.samples, 1000);
        let close = |a: f64, b: f64| (a - b).abs() / b < 0.001;
        assert!(close(l.p50, 500.0), "{l:?}");
        assert!(close(l.p99, 990.0), "{l:?}");
        assert!(close(l.p999, 999.0), "{l:?}");
        assert!(close(l.max, 1000.0), "{l:?}");
        assert!(close(l.mean, 500.5), "{l:?}");
        assert!(Latency::of(&new_histogram()).is_none());
    }

    #[test]
    fn cells_drain_and_reset() {
        let cell = LatencyCell::new();
        cell.end_to_end.lock().unwrap().record(5_000).unwrap();
        cell.confirm.lock().unwrap().record(7_000).unwrap();
        let (mut a, mut b) = (new_histogram(), new_histogram());
        cell.drain_into(&mut a, &mut b);
        cell.drain_into(&mut a, &mut b);
        assert_eq!((a.len(), b.len()), (1, 1));
        assert!(cell.end_to_end.lock().unwrap().is_empty());
    }

    #[test]
    fn number_formatting() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1234567), "1,234,567");
        assert_eq!(group(123456), "123,456");
        assert_eq!(group(12345), "12,345");
        assert_eq!(group_i(-12345), "-12,345");
        assert_eq!(micros(12.4), "12 µs");
        assert_eq!(micros(1500.0), "1.50 ms");
        assert_eq!(micros(2_500_000.0), "2.50 s");
        assert_eq!(kib(2048), "2048 KiB");
        assert_eq!(kib(20480), "20.0 MiB");
    }

    #[test]
    fn summary_serializes_as_one_json_object_with_kind() {
        let s = Summary {
            kind: "summary",
            broker_product: "Warren 0.1.0".into(),
            uri: "amqp://guest@127.0.0.1:5672/%2f".into(),
            queue: "perf-1".into(),
            producers: 1,
            consumers: 4,
            connections: 5,
            size: 100,
            count: Some(100_000),
            duration_s: None,
            rate_limit: 0,
            persistent: false,
            confirm: 0,
            prefetch: 1000,
            auto_ack: false,
            multiple_ack: 1,
            elapsed_s: 1.0,
            published: 100_000,
            confirmed: 0,
            nacked: 0,
            consumed: 100_000,
            consumed_per_consumer: vec![25_000; 4],
            publish_rate: 100_000.0,
            consume_rate: 100_000.0,
            consume_rate_per_consumer: vec![25_000.0; 4],
            consume_mb_per_s: 10.0,
            stream: None,
            latency_us: None,
            confirm_latency_us: None,
            broker: None,
            client: ClientCost::default(),
            ended_by: "count".into(),
            integrity: Integrity::default(),
        };
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["kind"], "summary");
        assert_eq!(v["consume_rate"], 100_000.0);
        assert!(v.get("latency_us").is_none());
        let table = s.table();
        assert!(table.contains("100,000 msg/s"), "{table}");
        assert!(table.contains("1p/4c over 5 conns"), "{table}");
        assert!(table.contains("10.0 MB/s"), "{table}");
        assert!(!table.contains("stream"), "{table}");
    }
}
