//! The command line (`warren-perf run ...`) and its validation into a [`Plan`]: which
//! connections to open and which producers and consumers (channels) each carries.
//!
//! Flag names follow RabbitMQ's PerfTest where they exist (`-x` producers, `-y`
//! consumers, `-s` size, `-C` count, `-z` duration, `-r` rate, `-q` prefetch, `-a`
//! auto-ack, `-u` queue, `-e` exchange, `-k` routing key), so PerfTest command lines carry
//! over. Defaults differ where PerfTest's would make a run endless or unbounded: without
//! `--count` or `--duration` a run publishes 100,000 messages, and prefetch is 1000
//! (PerfTest: unlimited).

use clap::{Args, Parser, Subcommand};
use warren_amqp_codec::{FieldTable, FieldValue};

use crate::payload::STAMP_LEN;
use crate::uri::AmqpUri;

#[derive(Debug, Parser)]
#[command(
    name = "warren-perf",
    version,
    about = "Load generator for AMQP 0-9-1 brokers (Warren, RabbitMQ, ...)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Publish and consume through one queue and report throughput, latency and cost.
    Run(RunArgs),
    /// Run a scenario matrix against several brokers, interleaved and repeated, and
    /// write CSV, JSON and a markdown summary.
    Compare(crate::compare::CompareArgs),
    /// Render PNG and SVG charts from a `compare` results directory.
    Plot(crate::plot::PlotArgs),
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Broker URI: amqp://user:pass@host:port/vhost (vhost percent-encoded, %2f = "/").
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub uri: String,
    /// Number of producers (one channel each).
    #[arg(short = 'x', long, default_value_t = 1)]
    pub producers: usize,
    /// Number of consumers (one channel each).
    #[arg(short = 'y', long, default_value_t = 1)]
    pub consumers: usize,
    /// Queue to use [default: a fresh "perf-<random>", deleted at the end unless --keep].
    #[arg(short = 'u', long)]
    pub queue: Option<String>,
    /// Exchange to publish to ("" = the default exchange, routing by queue name). A
    /// missing exchange is declared (and deleted at the end unless --keep).
    #[arg(short = 'e', long, default_value = "")]
    pub exchange: String,
    /// Queues, each bound to --exchange with the routing key, so each gets a copy of
    /// every message (fanout); consumers are dealt round-robin over them. With more than
    /// one, names are "<queue>-0", "<queue>-1", ...
    #[arg(long, default_value_t = 1)]
    pub queues: u16,
    /// Type for an exchange warren-perf declares.
    #[arg(short = 't', long, default_value = "direct")]
    pub exchange_type: String,
    /// Routing key for publishes and the queue binding [default: the queue name].
    #[arg(short = 'k', long)]
    pub routing_key: Option<String>,
    /// Message body size in bytes; the first 16 carry the send time and sequence.
    #[arg(short = 's', long, default_value_t = 16)]
    pub size: usize,
    /// Total messages to publish, split across producers [default: 100000 unless
    /// --duration is given]. With no producers: messages to consume.
    #[arg(short = 'C', long)]
    pub count: Option<u64>,
    /// Stop after this many seconds (0 = until Ctrl-C).
    #[arg(short = 'z', long)]
    pub duration: Option<f64>,
    /// Publish rate limit in msg/s across all producers (0 = unlimited).
    #[arg(short = 'r', long, default_value_t = 0)]
    pub rate: u64,
    /// Publish persistent messages (delivery mode 2) to a durable queue.
    #[arg(short = 'f', long)]
    pub persistent: bool,
    /// Declare the queue durable even without --persistent.
    #[arg(long)]
    pub durable: bool,
    /// Publisher confirms with at most WINDOW unconfirmed per producer (0 = off).
    #[arg(short = 'c', long, value_name = "WINDOW", default_value_t = 0)]
    pub confirm: u32,
    /// Per-consumer prefetch (basic.qos prefetch_count; 0 = unlimited).
    #[arg(short = 'q', long, default_value_t = 1000)]
    pub prefetch: u16,
    /// Consume with no_ack (the broker forgets a message once sent).
    #[arg(short = 'a', long)]
    pub auto_ack: bool,
    /// Ack every N deliveries with multiple=true (1 = ack each delivery on its own).
    #[arg(short = 'A', long, value_name = "N", default_value_t = 1)]
    pub multiple_ack: u32,
    /// Spread producers and consumers over this many connections, one channel each
    /// (0 = one connection per producer and per consumer).
    #[arg(long, default_value_t = 0)]
    pub connections: usize,
    /// Keep the queue (and any exchange warren-perf declared) at the end.
    #[arg(long)]
    pub keep: bool,
    /// Delete the queues at the end even if they existed before the run (for draining a
    /// queue an earlier `--keep` run filled).
    #[arg(long, conflicts_with = "keep")]
    pub delete_queues: bool,
    /// Without consumers: the run ends when the queues hold every message published
    /// (polled with passive declares), not when the last publish left the socket, so
    /// the rate and the broker's CPU cover what the broker took to enqueue them.
    #[arg(long)]
    pub await_queued: bool,
    /// Queue argument KEY=VALUE for the declare, repeatable (integers and true/false are
    /// sent as such): --queue-arg x-queue-type=quorum --queue-arg x-max-length=100000.
    #[arg(long = "queue-arg", value_name = "KEY=VALUE", value_parser = parse_queue_arg)]
    pub queue_args: Vec<(String, FieldValue)>,
    /// Queue type to declare (`x-queue-type`): classic, quorum or stream. `stream`
    /// switches the run to stream mode: the queue is durable, every consumer reads every
    /// message from `--stream-offset`, acks are credit (`--multiple-ack` N acks every Nth
    /// with multiple=true), and the integrity check wants each consumer to get each
    /// message exactly once and in order. `--count` is then per consumer when nobody
    /// publishes (a replay: each consumer reads COUNT messages).
    #[arg(long, value_name = "TYPE")]
    pub queue_type: Option<String>,
    /// Where stream consumers start (`x-stream-offset`): first, last, next, an offset
    /// (number) or an interval such as 1h or 30s [default: next when the run publishes,
    /// first when it only consumes].
    #[arg(long, value_name = "OFFSET", value_parser = parse_stream_offset)]
    pub stream_offset: Option<FieldValue>,
    /// Broker process id: report its CPU time per message and memory from /proc.
    #[arg(long, value_name = "PID")]
    pub broker_pid: Option<u32>,
    /// Print per-second samples and the summary as JSON lines on stdout.
    #[arg(long)]
    pub json: bool,
    /// No per-second progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Threads for the connections. 1 runs everything on one thread woken only by epoll,
    /// which costs the least CPU (and so steals the least from a broker on the same
    /// box); 0 = one per core, at most one per connection.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Give up when nothing is published or consumed for this many seconds (0 = never).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub stall_timeout: u64,
}

fn parse_queue_arg(s: &str) -> Result<(String, FieldValue), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected KEY=VALUE"))?;
    let value = if let Ok(i) = v.parse::<i64>() {
        FieldValue::I64(i)
    } else if let Ok(b) = v.parse::<bool>() {
        FieldValue::Bool(b)
    } else {
        FieldValue::from(v)
    };
    Ok((k.to_string(), value))
}

fn parse_stream_offset(s: &str) -> Result<FieldValue, String> {
    if let Ok(n) = s.parse::<i64>() {
        if n < 0 {
            return Err(format!("{s}: offsets start at 0"));
        }
        return Ok(FieldValue::I64(n));
    }
    let interval = s.len() > 1
        && s[..s.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && matches!(
            s.as_bytes()[s.len() - 1],
            b'Y' | b'M' | b'D' | b'h' | b'm' | b's'
        );
    if matches!(s, "first" | "last" | "next") || interval {
        Ok(FieldValue::from(s))
    } else {
        Err(format!(
            "{s:?}: expected first, last, next, an offset or an interval (7D, 12h, 30m, 10s)"
        ))
    }
}

/// What one channel does.
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    Producer {
        /// 0-based, written into the top of each message's sequence word.
        index: u16,
        /// Messages to send; `None` = until stopped.
        count: Option<u64>,
        /// msg/s for this producer; 0 = unlimited.
        rate: f64,
    },
    Consumer {
        index: u16,
        /// Index into [`Plan::queues`].
        queue: u16,
    },
}

/// A validated run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub uri: AmqpUri,
    /// The queues consumers read from; every published message reaches each of them.
    pub queues: Vec<String>,
    /// We made the name up: the queue is ours to delete.
    pub generated_queue: bool,
    pub exchange: String,
    pub exchange_type: String,
    pub routing_key: String,
    pub durable: bool,
    pub queue_args: FieldTable,
    /// Messages to publish in total (`None` = until the duration ends).
    pub count: Option<u64>,
    /// Deliveries after which consumers are done (`count` per queue unless there are no
    /// producers; in stream mode `count` per consumer).
    pub consume_target: Option<u64>,
    /// Stream mode: every consumer reads every message, starting at this
    /// `x-stream-offset`.
    pub stream_offset: Option<FieldValue>,
    pub duration: Option<f64>,
    /// Roles per connection; each role is one channel, numbered from 1.
    pub connections: Vec<Vec<Role>>,
    pub threads: usize,
    pub args: RunArgs,
}

impl RunArgs {
    pub fn plan(&self) -> Result<Plan, String> {
        let uri = AmqpUri::parse(&self.uri)?;
        if self.producers + self.consumers == 0 {
            return Err("nothing to do: --producers and --consumers are both 0".into());
        }
        if self.producers > u16::MAX as usize || self.consumers > u16::MAX as usize {
            return Err("at most 65535 producers and 65535 consumers".into());
        }
        if self.multiple_ack == 0 {
            return Err("--multiple-ack must be at least 1".into());
        }
        if self.auto_ack && self.multiple_ack > 1 {
            return Err("--multiple-ack makes no sense with --auto-ack".into());
        }
        if !self.auto_ack && self.prefetch > 0 && self.multiple_ack > self.prefetch as u32 {
            return Err(format!(
                "--multiple-ack {} exceeds --prefetch {}: consumers would stall waiting for \
                 deliveries the broker will not send before an ack",
                self.multiple_ack, self.prefetch
            ));
        }
        let stream = self.queue_type.as_deref() == Some("stream");
        if stream && self.auto_ack {
            return Err(
                "stream consumers must acknowledge: --auto-ack is refused by \
                        brokers for streams"
                    .into(),
            );
        }
        if stream && self.prefetch == 0 {
            return Err("stream consumers need a prefetch (--prefetch N > 0)".into());
        }
        if !stream && self.stream_offset.is_some() {
            return Err("--stream-offset needs --queue-type stream".into());
        }
        if let Some(d) = self.duration {
            if !(d >= 0.0 && d.is_finite()) {
                return Err(format!("--duration {d}: must be a number of seconds >= 0"));
            }
        }
        let duration = self.duration.filter(|d| *d > 0.0);
        let count = match (self.count, self.duration) {
            (Some(c), _) => Some(c),
            (None, Some(_)) => None,
            (None, None) => Some(100_000),
        };
        if self.size > 512 * 1024 * 1024 {
            return Err("--size is capped at 512 MiB".into());
        }
        let (queue, generated_queue) = match &self.queue {
            Some(q) if q.len() > 255 => return Err("--queue: names are at most 255 bytes".into()),
            Some(q) if q.is_empty() => {
                return Err("--queue: give a name, or leave the flag out for a fresh queue".into())
            }
            Some(q) => (q.clone(), false),
            None => (format!("perf-{:08x}", rand::random::<u32>()), true),
        };
        if self.queues == 0 {
            return Err("--queues must be at least 1".into());
        }
        if self.queues > 1 && self.exchange.is_empty() {
            return Err(
                "--queues N needs --exchange: the default exchange routes to one queue".into(),
            );
        }
        let routing_key = self.routing_key.clone().unwrap_or_else(|| queue.clone());
        let queues: Vec<String> = if self.queues == 1 {
            vec![queue]
        } else {
            (0..self.queues).map(|i| format!("{queue}-{i}")).collect()
        };
        let nq = queues.len() as u64;

        // One connection per role by default; otherwise roles dealt round-robin, consumers
        // first so every connection gets its share of each kind.
        let p = self.producers as u64;
        let mut roles: Vec<Role> = (0..self.consumers)
            .map(|i| Role::Consumer {
                index: i as u16,
                queue: (i % queues.len()) as u16,
            })
            .collect();
        for i in 0..self.producers {
            let share = count.map(|c| c / p + u64::from((i as u64) < c % p));
            roles.push(Role::Producer {
                index: i as u16,
                count: share,
                rate: self.rate as f64 / p as f64,
            });
        }
        let n_conns = match self.connections {
            0 => roles.len(),
            n => n.min(roles.len()),
        };
        let mut connections: Vec<Vec<Role>> = vec![Vec::new(); n_conns];
        for (i, r) in roles.into_iter().enumerate() {
            connections[i % n_conns].push(r);
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = match self.threads {
            0 => cores.min(n_conns).max(1),
            n => n,
        };
        let consume_target = match (stream, self.producers) {
            // Every consumer gets every message of its queue, and every queue gets
            // every message.
            (true, 0) => self.count.map(|c| c * self.consumers as u64),
            (true, _) => count.map(|c| c * self.consumers as u64),
            (false, 0) => self.count,
            (false, _) => count.map(|c| c * nq),
        };
        let stream_offset = stream.then(|| {
            self.stream_offset.clone().unwrap_or_else(|| {
                FieldValue::from(if self.producers > 0 { "next" } else { "first" })
            })
        });
        let mut queue_args: FieldTable = self
            .queue_args
            .iter()
            .cloned()
            .map(|(k, v)| (k.into(), v))
            .collect();
        if let Some(t) = &self.queue_type {
            queue_args.insert("x-queue-type", FieldValue::from(t.as_str()));
        }
        Ok(Plan {
            uri,
            queues,
            generated_queue,
            exchange: self.exchange.clone(),
            exchange_type: self.exchange_type.clone(),
            routing_key,
            // Streams (and quorum queues) are durable only.
            durable: self.durable
                || self.persistent
                || self.queue_type.as_deref().is_some_and(|t| t != "classic"),
            queue_args,
            count: if self.producers == 0 { None } else { count },
            consume_target,
            stream_offset,
            duration,
            connections,
            threads,
            args: self.clone(),
        })
    }

    /// Whether bodies carry a stamp (and so whether latency can be measured).
    pub fn stamped(&self) -> bool {
        self.size >= STAMP_LEN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Plan, String> {
        let mut v = vec!["warren-perf", "run"];
        v.extend_from_slice(args);
        match Cli::try_parse_from(v).map_err(|e| e.to_string())?.command {
            Command::Run(r) => r.plan(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn defaults_make_a_finite_run_on_a_fresh_queue() {
        let p = parse(&[]).unwrap();
        assert_eq!(p.uri.addr(), "127.0.0.1:5672");
        assert_eq!(p.count, Some(100_000));
        assert_eq!(p.consume_target, Some(100_000));
        assert!(p.generated_queue && p.queues[0].starts_with("perf-"));
        assert_eq!(p.queues.len(), 1);
        assert_eq!(p.routing_key, p.queues[0]);
        assert_eq!(p.connections.len(), 2);
        assert_eq!(p.args.prefetch, 1000);
        assert_eq!(p.threads, 1);
        assert!(!p.durable);
    }

    #[test]
    fn seed_benchmark_splits_into_five_connections() {
        let p = parse(&[
            "--uri",
            "amqp://guest:guest@127.0.0.1:5673/%2f",
            "--producers",
            "1",
            "--consumers",
            "4",
            "--count",
            "100000",
            "--size",
            "100",
        ])
        .unwrap();
        assert_eq!(p.connections.len(), 5);
        assert!(p.connections.iter().all(|c| c.len() == 1));
        let producers: Vec<_> = p
            .connections
            .iter()
            .flatten()
            .filter_map(|r| match r {
                Role::Producer { count, .. } => Some(*count),
                _ => None,
            })
            .collect();
        assert_eq!(producers, vec![Some(100_000)]);
        assert_eq!(p.args.size, 100);
    }

    #[test]
    fn count_and_rate_are_shared_between_producers() {
        let p = parse(&[
            "-x",
            "3",
            "-y",
            "2",
            "-C",
            "10",
            "-r",
            "300",
            "--connections",
            "2",
        ])
        .unwrap();
        assert_eq!(p.connections.len(), 2);
        assert_eq!(p.connections[0].len() + p.connections[1].len(), 5);
        let mut counts = Vec::new();
        for r in p.connections.iter().flatten() {
            if let Role::Producer { count, rate, .. } = r {
                counts.push(count.unwrap());
                assert_eq!(*rate, 100.0);
            }
        }
        counts.sort();
        assert_eq!(counts, vec![3, 3, 4]);
        let p = parse(&["-x", "3", "-y", "3", "--threads", "0"]).unwrap();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(p.threads, cores.min(6));
    }

    #[test]
    fn duration_alone_means_no_count() {
        let p = parse(&["-z", "5", "--persistent", "-c", "100"]).unwrap();
        assert_eq!(p.count, None);
        assert_eq!(p.duration, Some(5.0));
        assert!(p.durable);
        let p = parse(&["-z", "0"]).unwrap();
        assert_eq!((p.count, p.duration), (None, None));
    }

    #[test]
    fn consumers_only_consume_count() {
        let p = parse(&["-x", "0", "-y", "2", "-C", "50", "-u", "existing"]).unwrap();
        assert_eq!(p.count, None);
        assert_eq!(p.consume_target, Some(50));
        assert!(!p.generated_queue);
        assert_eq!(p.queues, vec!["existing".to_string()]);
    }

    #[test]
    fn fanout_queues_multiply_the_consume_target() {
        let p = parse(&[
            "-e", "fx", "-t", "fanout", "--queues", "3", "-y", "4", "-C", "10", "-u", "f",
        ])
        .unwrap();
        assert_eq!(p.queues, vec!["f-0", "f-1", "f-2"]);
        assert_eq!(p.consume_target, Some(30));
        assert_eq!(p.count, Some(10));
        let qs: Vec<u16> = p
            .connections
            .iter()
            .flatten()
            .filter_map(|r| match r {
                Role::Consumer { queue, .. } => Some(*queue),
                _ => None,
            })
            .collect();
        assert_eq!(qs, vec![0, 1, 2, 0]);
        assert!(parse(&["--queues", "2"])
            .unwrap_err()
            .contains("--exchange"));
        assert!(parse(&["--queues", "0"]).is_err());
    }

    #[test]
    fn queue_args_are_typed() {
        let p = parse(&[
            "--queue-arg",
            "x-queue-type=quorum",
            "--queue-arg",
            "x-max-length=10",
        ])
        .unwrap();
        assert_eq!(
            p.queue_args.get("x-queue-type").and_then(|v| v.as_str()),
            Some("quorum")
        );
        assert_eq!(p.queue_args.get("x-max-length"), Some(&FieldValue::I64(10)));
        assert!(parse(&["--queue-arg", "novalue"]).is_err());
    }

    #[test]
    fn stream_mode_reads_everything_with_every_consumer() {
        let p = parse(&[
            "--queue-type",
            "stream",
            "-y",
            "4",
            "-C",
            "1000",
            "-A",
            "100",
        ])
        .unwrap();
        assert!(p.durable);
        assert_eq!(
            p.queue_args.get("x-queue-type").and_then(|v| v.as_str()),
            Some("stream")
        );
        assert_eq!(p.consume_target, Some(4000));
        assert_eq!(p.stream_offset, Some(FieldValue::from("next")));
        // A replay: each consumer reads --count, from the start by default.
        let p = parse(&[
            "--queue-type",
            "stream",
            "-x",
            "0",
            "-y",
            "2",
            "-C",
            "50",
            "-u",
            "s",
        ])
        .unwrap();
        assert_eq!(p.consume_target, Some(100));
        assert_eq!(p.stream_offset, Some(FieldValue::from("first")));
        for (arg, want) in [
            ("last", FieldValue::from("last")),
            ("42", FieldValue::I64(42)),
            ("30m", FieldValue::from("30m")),
        ] {
            let p = parse(&["--queue-type", "stream", "--stream-offset", arg]).unwrap();
            assert_eq!(p.stream_offset, Some(want));
        }
        for bad in ["-1", "soon", "m", "1.5h"] {
            assert!(
                parse(&["--queue-type", "stream", "--stream-offset", bad]).is_err(),
                "{bad}"
            );
        }
        assert!(parse(&["--queue-type", "stream", "-a"])
            .unwrap_err()
            .contains("acknowledge"));
        assert!(parse(&["--queue-type", "stream", "-q", "0"])
            .unwrap_err()
            .contains("prefetch"));
        assert!(parse(&["--stream-offset", "first"])
            .unwrap_err()
            .contains("--queue-type stream"));
        let p = parse(&["--queue-type", "classic"]).unwrap();
        assert!(!p.durable && p.stream_offset.is_none());
    }

    #[test]
    fn contradictions_are_refused() {
        assert!(parse(&["-x", "0", "-y", "0"])
            .unwrap_err()
            .contains("nothing to do"));
        assert!(parse(&["-a", "-A", "10"]).unwrap_err().contains("auto-ack"));
        assert!(parse(&["-q", "10", "-A", "50"])
            .unwrap_err()
            .contains("stall"));
        assert!(parse(&["-A", "50", "-q", "0"]).is_ok());
        assert!(parse(&["-z", "-1"]).is_err());
        assert!(parse(&["--uri", "amqps://x"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }
}
