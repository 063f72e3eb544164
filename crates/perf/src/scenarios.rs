//! The scenario catalog `warren-perf compare` runs: the seed's headline workload and one
//! scenario per target of the benchmark, each a `warren-perf run` command line (or a
//! memory probe), with the figure it is judged by and the target ratio against the
//! baseline broker.

/// What a scenario measures.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// One `warren-perf run` with these flags.
    Run(Vec<String>),
    /// Fill a queue with the first flags (`--keep`), then time draining it with the
    /// second; `{queue}` in either is the queue's name.
    Drain(Vec<String>, Vec<String>),
    /// The broker's RSS with nothing connected.
    IdleRss,
    /// The broker's RSS with this many idle connections, one channel each.
    IdleConnections(usize),
}

/// The figure a scenario is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// msg/s, higher is better.
    Throughput,
    /// p99 end-to-end latency in µs, lower is better.
    P99,
    /// Broker RSS in KiB, lower is better.
    Rss,
}

impl Metric {
    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::Throughput)
    }

    pub fn name(self) -> &'static str {
        match self {
            Metric::Throughput => "msg/s",
            Metric::P99 => "p99 latency (µs)",
            Metric::Rss => "RSS (KiB)",
        }
    }
}

/// A goal against the baseline broker: "at least `ratio` times better".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    pub ratio: f64,
    /// Also: broker CPU per message at most 1/`ratio` of the baseline's.
    pub cpu_too: bool,
    /// An absolute floor in the metric's unit (the moonshot's 800,000 msg/s).
    pub absolute: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    /// Scenarios plotted together ("seed", "scaling", ...).
    pub group: &'static str,
    /// Position within the group (message size, producer count, ...).
    pub x: f64,
    pub title: String,
    pub kind: Kind,
    pub metric: Metric,
    pub target: Option<Target>,
}

fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

fn scaled(n: u64, scale: f64) -> u64 {
    ((n as f64 * scale).round() as u64).max(1)
}

/// Every scenario, with message counts multiplied by `scale`.
pub fn catalog(scale: f64) -> Vec<Scenario> {
    let c = |n: u64| scaled(n, scale);
    let ratio = |ratio: f64| {
        Some(Target {
            ratio,
            cpu_too: false,
            absolute: None,
        })
    };
    let mut v = Vec::new();
    for size in [100, 500, 1000] {
        v.push(Scenario {
            name: format!("seed-{size}"),
            group: "seed",
            x: size as f64,
            title: format!(
                "1 producer, 4 consumers, manual ack, prefetch 100, {} x {size} B",
                c(100_000)
            ),
            kind: Kind::Run(args(&format!(
                "-x 1 -y 4 -q 100 -C {} -s {size}",
                c(100_000)
            ))),
            metric: Metric::Throughput,
            target: Some(Target {
                ratio: 5.0,
                cpu_too: true,
                absolute: None,
            }),
        });
    }
    // The seed workload on a stream: each of the 4 consumers reads every message, so the
    // figure is deliveries per second (4 per message published).
    for size in [100, 500, 1000] {
        v.push(Scenario {
            name: format!("seed-stream-{size}"),
            group: "seed-stream",
            x: size as f64,
            title: format!(
                "stream, 1 producer, 4 consumers each reading every message, prefetch 1000, \
                 ack every 100, {} x {size} B (deliveries/s)",
                c(100_000)
            ),
            kind: Kind::Run(args(&format!(
                "-x 1 -y 4 -q 1000 -A 100 -C {} -s {size} --queue-type stream",
                c(100_000)
            ))),
            metric: Metric::Throughput,
            target: ratio(5.0),
        });
    }
    v.push(Scenario {
        name: "stream-replay".into(),
        group: "stream",
        x: 100.0,
        title: format!(
            "replay a stream from first, 1 consumer, prefetch 1000, ack every 100, {} x 100 B \
             (filled with confirms first)",
            c(1_000_000)
        ),
        kind: Kind::Drain(
            args(&format!(
                "-x 1 -y 0 -s 100 -C {} -c 1000 -u {{queue}} --queue-type stream --keep",
                c(1_000_000)
            )),
            args(&format!(
                "-x 0 -y 1 -q 1000 -A 100 -C {} -u {{queue}} --queue-type stream \
                 --delete-queues",
                c(1_000_000)
            )),
        ),
        metric: Metric::Throughput,
        target: None,
    });
    v.push(Scenario {
        name: "publish-16".into(),
        group: "targets",
        x: 16.0,
        title: format!(
            "publish only, 1 producer, {} x 16 B (until all are queued)",
            c(500_000)
        ),
        kind: Kind::Run(args(&format!(
            "-x 1 -y 0 -s 16 -C {} --await-queued",
            c(500_000)
        ))),
        metric: Metric::Throughput,
        target: ratio(10.0),
    });
    v.push(Scenario {
        name: "drain-16".into(),
        group: "targets",
        x: 16.0,
        title: format!(
            "drain a pre-filled queue, 1 consumer, auto-ack, {} x 16 B",
            c(300_000)
        ),
        kind: Kind::Drain(
            args(&format!(
                "-x 1 -y 0 -s 16 -C {} -u {{queue}} --keep --await-queued",
                c(300_000)
            )),
            args(&format!(
                "-x 0 -y 1 -a -C {} -u {{queue}} --delete-queues",
                c(300_000)
            )),
        ),
        metric: Metric::Throughput,
        target: ratio(10.0),
    });
    v.push(Scenario {
        name: "persistent-confirm-1000".into(),
        group: "targets",
        x: 1000.0,
        title: format!(
            "persistent, durable queue, confirms window 1000, publish only, {} x 1 KB",
            c(100_000)
        ),
        kind: Kind::Run(args(&format!(
            "-x 1 -y 0 -s 1000 -f -c 1000 -C {}",
            c(100_000)
        ))),
        metric: Metric::Throughput,
        target: ratio(3.0),
    });
    v.push(Scenario {
        name: "fanout-10".into(),
        group: "targets",
        x: 10.0,
        title: format!(
            "fanout to 10 queues, 1 consumer each, manual ack, prefetch 100, {} x 100 B \
             (deliveries/s)",
            c(30_000)
        ),
        kind: Kind::Run(args(&format!(
            "-x 1 -y 10 -q 100 -s 100 -C {} -e perf-fanout-{{rand}} -t fanout --queues 10",
            c(30_000)
        ))),
        metric: Metric::Throughput,
        target: ratio(5.0),
    });
    v.push(Scenario {
        name: "latency-10k".into(),
        group: "latency",
        x: 10_000.0,
        title: "latency at 10,000 msg/s, 1 producer, 1 consumer, 100 B, 10 s".into(),
        kind: Kind::Run(args("-x 1 -y 1 -q 100 -s 100 -r 10000 -z 10")),
        metric: Metric::P99,
        target: ratio(3.0),
    });
    v.push(Scenario {
        name: "idle-rss".into(),
        group: "memory",
        x: 0.0,
        title: "broker RSS, nothing connected".into(),
        kind: Kind::IdleRss,
        metric: Metric::Rss,
        target: ratio(5.0),
    });
    v.push(Scenario {
        name: "idle-connections-500".into(),
        group: "memory",
        x: 500.0,
        title: "broker RSS with 500 idle connections, one channel each".into(),
        kind: Kind::IdleConnections(500),
        metric: Metric::Rss,
        target: ratio(5.0),
    });
    v.push(Scenario {
        name: "idle-connections-1000".into(),
        group: "memory",
        x: 1000.0,
        title: "broker RSS with 1,000 idle connections, one channel each".into(),
        kind: Kind::IdleConnections(1000),
        metric: Metric::Rss,
        target: ratio(5.0),
    });
    v.push(Scenario {
        name: "moonshot-16".into(),
        group: "targets",
        x: 16.0,
        title: format!(
            "1 producer, 1 consumer, auto-ack, {} x 16 B (LavinMQ: 800k msg/s)",
            c(2_000_000)
        ),
        kind: Kind::Run(args(&format!("-x 1 -y 1 -a -s 16 -C {}", c(2_000_000)))),
        metric: Metric::Throughput,
        target: Some(Target {
            ratio: 1.0,
            cpu_too: false,
            absolute: Some(800_000.0),
        }),
    });
    for n in [1, 2, 4, 8, 16] {
        v.push(Scenario {
            name: format!("scaling-{n}"),
            group: "scaling",
            x: n as f64,
            title: format!(
                "{n} producers, {n} consumers, manual ack, prefetch 100, {} x 100 B",
                c(100_000)
            ),
            kind: Kind::Run(args(&format!(
                "-x {n} -y {n} -q 100 -s 100 -C {}",
                c(100_000)
            ))),
            metric: Metric::Throughput,
            target: None,
        });
    }
    v
}

/// Named sets of scenarios.
pub fn preset(name: &str) -> Option<Vec<&'static str>> {
    Some(match name {
        "headline" => vec!["seed-100", "seed-500", "seed-1000"],
        // Memory first: idle RSS means a broker that has not run anything yet.
        "targets" => vec![
            "idle-rss",
            "idle-connections-500",
            "idle-connections-1000",
            "seed-100",
            "seed-500",
            "seed-1000",
            "publish-16",
            "drain-16",
            "persistent-confirm-1000",
            "fanout-10",
            "latency-10k",
            "moonshot-16",
        ],
        "scaling" => vec![
            "scaling-1",
            "scaling-2",
            "scaling-4",
            "scaling-8",
            "scaling-16",
        ],
        // The seed's plots with a stream beside the classic queue, and a replay.
        "streams" => vec![
            "seed-100",
            "seed-stream-100",
            "seed-500",
            "seed-stream-500",
            "seed-1000",
            "seed-stream-1000",
            "stream-replay",
        ],
        "all" => catalog(1.0)
            .into_iter()
            .map(|s| &*Box::leak(s.name.into_boxed_str()))
            .collect(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn every_run_scenario_is_a_valid_command_line() {
        for s in catalog(0.01) {
            let lines = match &s.kind {
                Kind::Run(a) => vec![a.clone()],
                Kind::Drain(a, b) => vec![a.clone(), b.clone()],
                _ => continue,
            };
            for a in lines {
                let mut v = vec!["warren-perf".to_string(), "run".into()];
                v.extend(
                    a.iter()
                        .map(|x| x.replace("{queue}", "q").replace("{rand}", "1")),
                );
                let Command::Run(r) = Cli::try_parse_from(&v).unwrap().command else {
                    panic!("not a run");
                };
                r.plan().unwrap_or_else(|e| panic!("{}: {e}", s.name));
            }
        }
        for p in ["headline", "targets", "scaling", "streams", "all"] {
            let names = preset(p).unwrap();
            let all = catalog(1.0);
            assert!(
                names.iter().all(|n| all.iter().any(|s| s.name == *n)),
                "{p}"
            );
        }
        for s in catalog(0.000_001) {
            if let Kind::Run(a) = &s.kind {
                if let Some(i) = a.iter().position(|x| x == "-C") {
                    assert_ne!(a[i + 1], "0", "{}", s.name);
                }
            }
        }
    }
}
