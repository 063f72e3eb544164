//! `warren-perf compare`: a scenario matrix against several brokers in one run.
//!
//! Points are interleaved (for each scenario, for each repetition, every broker in
//! turn), so a slow spell of the shared machine hits every broker alike. Each point is
//! one child `warren-perf run --json` (a fresh process: no state carried between points,
//! and its CPU is its own), or a memory probe done here. Around each point the machine's
//! busy time is sampled: CPU used by anything other than the broker and the load tool
//! is recorded as `noise_cores`, and a point noisier than `--max-noise` is run again.
//!
//! Output in `--out`: `runs.csv` (every repetition), `summary.csv` (min / median / max
//! per scenario and broker), `results.json` (all of it plus the machine and versions,
//! what `warren-perf plot` reads) and `summary.md` (tables and the targets' verdicts).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::task::JoinSet;

use crate::client::Client;
use crate::procstat;
use crate::scenarios::{self, Kind, Metric, Scenario};
use crate::uri::AmqpUri;

#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// A broker to measure, NAME=URI, repeatable; the first is the one judged against
    /// the targets.
    #[arg(long = "broker", value_name = "NAME=URI", required = true, value_parser = parse_pair)]
    pub brokers: Vec<(String, String)>,
    /// The process of broker NAME, NAME=PID [default: the process listening on the URI's
    /// port].
    #[arg(long = "broker-pid", value_name = "NAME=PID", value_parser = parse_pair)]
    pub broker_pids: Vec<(String, String)>,
    /// The broker the others are compared with [default: the last --broker].
    #[arg(long)]
    pub baseline: Option<String>,
    /// Scenario to run, repeatable (see --list) [default: the preset].
    #[arg(long = "scenario", value_name = "NAME")]
    pub scenarios: Vec<String>,
    /// Named sets of scenarios, comma-separated: headline, targets, scaling, all.
    #[arg(long, default_value = "headline")]
    pub preset: String,
    /// Print the scenarios and their flags, then exit.
    #[arg(long)]
    pub list: bool,
    /// Repetitions of each point.
    #[arg(long, default_value_t = 3)]
    pub repeat: u32,
    /// Multiply every scenario's message count (0.1 for a quick look).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Directory for the results (created).
    #[arg(long, default_value = "compare-results")]
    pub out: PathBuf,
    /// Run a point again (at most twice) when other processes used more than this many
    /// cores on average during it.
    #[arg(long, default_value_t = 0.3)]
    pub max_noise: f64,
    /// KEY=VALUE recorded with the results (versions, commit, ...), repeatable.
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub meta: Vec<(String, String)>,
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .filter(|(a, _)| !a.is_empty())
        .ok_or_else(|| format!("{s:?}: expected NAME=VALUE"))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BrokerInfo {
    pub name: String,
    /// The URI without its password.
    pub uri: String,
    pub pid: Option<u32>,
    /// Product and version as the broker announces them.
    pub product: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub group: String,
    pub x: f64,
    pub title: String,
    pub metric: String,
    pub higher_is_better: bool,
    pub flags: String,
    pub target_ratio: Option<f64>,
    pub target_cpu_too: bool,
    pub target_absolute: Option<f64>,
}

/// One repetition of one scenario against one broker.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunRecord {
    pub scenario: String,
    pub broker: String,
    pub rep: u32,
    pub ok: bool,
    pub error: String,
    /// The scenario's figure (msg/s, p99 µs or RSS KiB).
    pub value: f64,
    pub publish_rate: f64,
    pub consume_rate: f64,
    pub broker_cpu_us_per_msg: f64,
    pub client_cpu_us_per_msg: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub rss_kb: u64,
    pub elapsed_s: f64,
    /// Cores other processes kept busy on average during the point.
    pub noise_cores: f64,
    pub load1: f64,
    pub attempts: u32,
    pub integrity: String,
}

/// Min / median / max over the repetitions of one scenario against one broker.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SummaryRow {
    pub scenario: String,
    pub broker: String,
    pub runs: usize,
    pub failed: usize,
    pub min: f64,
    pub median: f64,
    pub max: f64,
    pub broker_cpu_us_per_msg: f64,
    pub client_cpu_us_per_msg: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub rss_kb: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub meta: BTreeMap<String, String>,
    pub subject: String,
    pub baseline: String,
    pub brokers: Vec<BrokerInfo>,
    pub scenarios: Vec<ScenarioInfo>,
    pub runs: Vec<RunRecord>,
    pub summary: Vec<SummaryRow>,
}

pub async fn compare(args: CompareArgs) -> Result<i32, String> {
    let catalog = scenarios::catalog(args.scale);
    if args.list {
        for s in &catalog {
            println!(
                "{:<26} {}\n{:<26} {}",
                s.name,
                s.title,
                "",
                flags_of(&s.kind)
            );
        }
        return Ok(0);
    }
    let names: Vec<String> = if args.scenarios.is_empty() {
        let mut v = Vec::new();
        for p in args.preset.split(',') {
            let names = scenarios::preset(p).ok_or_else(|| format!("unknown --preset {p:?}"))?;
            v.extend(names.into_iter().map(str::to_string));
        }
        v
    } else {
        args.scenarios.clone()
    };
    let mut chosen: Vec<Scenario> = Vec::new();
    for n in &names {
        let s = catalog
            .iter()
            .find(|s| &s.name == n)
            .ok_or_else(|| format!("unknown scenario {n:?} (see --list)"))?;
        chosen.push(s.clone());
    }
    raise_fd_limit();
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;

    let mut brokers = Vec::new();
    for (name, uri) in &args.brokers {
        let parsed = AmqpUri::parse(uri).map_err(|e| format!("--broker {name}: {e}"))?;
        let pid = match args.broker_pids.iter().find(|(n, _)| n == name) {
            Some((_, p)) => Some(
                p.parse::<u32>()
                    .map_err(|_| format!("--broker-pid {name}={p}: not a pid"))?,
            ),
            None => procstat::pid_listening_on(parsed.port),
        };
        if pid.is_none() {
            eprintln!(
                "warren-perf compare: no process found listening on port {} for {name}; \
                 its CPU and memory are not measured (give --broker-pid {name}=PID)",
                parsed.port
            );
        }
        let product = match Client::connect(&parsed, "warren-perf compare").await {
            Ok(mut c) => {
                let p = c.server.clone();
                let _ = c.close(Duration::from_secs(2)).await;
                p
            }
            Err(e) => return Err(format!("cannot connect to {name} at {parsed}: {e}")),
        };
        brokers.push((
            uri.clone(),
            BrokerInfo {
                name: name.clone(),
                uri: parsed.to_string(),
                pid,
                product,
            },
        ));
    }
    let subject = brokers[0].1.name.clone();
    let baseline = args
        .baseline
        .clone()
        .unwrap_or_else(|| brokers.last().expect("at least one").1.name.clone());
    if !brokers.iter().any(|(_, b)| b.name == baseline) {
        return Err(format!("--baseline {baseline}: no such --broker"));
    }

    let mut meta: BTreeMap<String, String> = machine_meta();
    meta.insert("max_noise".into(), args.max_noise.to_string());
    meta.insert("load1_start".into(), format!("{:.2}", procstat::load1()));
    meta.insert("repeat".into(), args.repeat.to_string());
    meta.insert("scale".into(), args.scale.to_string());
    for (k, v) in &args.meta {
        meta.insert(k.clone(), v.clone());
    }

    let exe = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
    let mut runs = Vec::new();
    for s in &chosen {
        for rep in 1..=args.repeat {
            for (uri, b) in &brokers {
                let mut rec = RunRecord::default();
                for attempt in 1..=3 {
                    rec = point(&exe, s, uri, b).await;
                    rec.rep = rep;
                    rec.attempts = attempt;
                    if !rec.ok || rec.noise_cores <= args.max_noise || s.metric == Metric::Rss {
                        break;
                    }
                    eprintln!(
                        "  other processes used {:.2} cores during that run: again",
                        rec.noise_cores
                    );
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                eprintln!(
                    "[{} {}/{}] {:<10} {}",
                    s.name,
                    rep,
                    args.repeat,
                    b.name,
                    describe(s.metric, &rec)
                );
                runs.push(rec);
            }
        }
    }
    meta.insert("load1_end".into(), format!("{:.2}", procstat::load1()));

    let summary = summarize(&chosen, &brokers, &runs);
    let results = Results {
        meta,
        subject,
        baseline,
        brokers: brokers.into_iter().map(|(_, b)| b).collect(),
        scenarios: chosen.iter().map(scenario_info).collect(),
        runs,
        summary,
    };
    write_results(&args.out, &results)?;
    eprintln!(
        "warren-perf compare: results in {} (runs.csv, summary.csv, results.json, summary.md)",
        args.out.display()
    );
    let failed = results.runs.iter().filter(|r| !r.ok).count();
    if failed > 0 {
        eprintln!("warren-perf compare: {failed} run(s) failed");
        return Ok(1);
    }
    Ok(0)
}

fn flags_of(kind: &Kind) -> String {
    match kind {
        Kind::Run(a) => a.join(" "),
        Kind::Drain(a, b) => format!("fill: {} / drain: {}", a.join(" "), b.join(" ")),
        Kind::IdleRss => "(RSS of the broker process)".into(),
        Kind::IdleConnections(n) => format!("({n} connections with a channel each, then RSS)"),
    }
}

fn scenario_info(s: &Scenario) -> ScenarioInfo {
    ScenarioInfo {
        name: s.name.clone(),
        group: s.group.into(),
        x: s.x,
        title: s.title.clone(),
        metric: s.metric.name().into(),
        higher_is_better: s.metric.higher_is_better(),
        flags: flags_of(&s.kind),
        target_ratio: s.target.map(|t| t.ratio),
        target_cpu_too: s.target.is_some_and(|t| t.cpu_too),
        target_absolute: s.target.and_then(|t| t.absolute),
    }
}

fn describe(metric: Metric, r: &RunRecord) -> String {
    if !r.ok {
        return format!("FAILED: {}", r.error);
    }
    let mut s = match metric {
        Metric::Throughput => format!(
            "{:>10.0} msg/s  broker {:.2} µs/msg  client {:.2} µs/msg",
            r.value, r.broker_cpu_us_per_msg, r.client_cpu_us_per_msg
        ),
        Metric::P99 => format!(
            "p99 {:.0} µs (p50 {:.0}, p99.9 {:.0})  broker {:.2} µs/msg",
            r.p99_us, r.p50_us, r.p999_us, r.broker_cpu_us_per_msg
        ),
        Metric::Rss => format!("RSS {:.1} MiB", r.rss_kb as f64 / 1024.0),
    };
    if r.noise_cores > 0.05 {
        let _ = write!(s, "  (noise {:.2} cores)", r.noise_cores);
    }
    s
}

/// Runs one point and measures the machine around it.
async fn point(exe: &Path, s: &Scenario, uri: &str, b: &BrokerInfo) -> RunRecord {
    let mut rec = RunRecord {
        scenario: s.name.clone(),
        broker: b.name.clone(),
        load1: procstat::load1(),
        ..Default::default()
    };
    let busy0 = procstat::system_busy();
    let kids0 = procstat::children_cpu();
    let self0 = procstat::self_cpu();
    let broker0 = b.pid.and_then(|p| procstat::sample(p).ok());
    let t0 = std::time::Instant::now();
    let outcome = match &s.kind {
        Kind::Run(flags) => run_child(exe, uri, b.pid, flags).await.map(Some),
        Kind::Drain(fill, drain) => {
            let queue = format!("perf-drain-{:08x}", rand::random::<u32>());
            let sub = |v: &[String]| -> Vec<String> {
                v.iter().map(|a| a.replace("{queue}", &queue)).collect()
            };
            match run_child(exe, uri, None, &sub(fill)).await {
                Ok(_) => run_child(exe, uri, b.pid, &sub(drain)).await.map(Some),
                Err(e) => Err(format!("filling the queue: {e}")),
            }
        }
        Kind::IdleRss => match b.pid {
            Some(_) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                Ok(None)
            }
            None => Err("no broker pid".into()),
        },
        Kind::IdleConnections(n) => match b.pid {
            Some(pid) => idle_connections(uri, *n, pid).await.map(|rss| {
                rec.rss_kb = rss;
                None
            }),
            None => Err("no broker pid".into()),
        },
    };
    let wall = t0.elapsed().as_secs_f64().max(1e-3);
    let broker1 = b.pid.and_then(|p| procstat::sample(p).ok());
    if let (Some(a), Some(z)) = (busy0, procstat::system_busy()) {
        let busy = z.saturating_sub(a).as_secs_f64();
        let ours = (procstat::children_cpu().saturating_sub(kids0)
            + procstat::self_cpu().saturating_sub(self0))
        .as_secs_f64();
        let broker = match (broker0, broker1) {
            (Some(a), Some(z)) => z.cpu.saturating_sub(a.cpu).as_secs_f64(),
            _ => 0.0,
        };
        rec.noise_cores = ((busy - ours - broker) / wall).max(0.0);
    }
    match outcome {
        Err(e) => rec.error = e,
        Ok(Some(sum)) => fill_from_summary(&mut rec, s.metric, &sum),
        Ok(None) => {
            rec.ok = true;
            if rec.rss_kb == 0 {
                rec.rss_kb = rss_of(b.pid);
            }
            rec.value = rec.rss_kb as f64;
            rec.integrity = "n/a".into();
        }
    }
    rec
}

fn rss_of(pid: Option<u32>) -> u64 {
    pid.and_then(|p| procstat::sample(p).ok())
        .map_or(0, |s| s.rss_kb)
}

fn fill_from_summary(rec: &mut RunRecord, metric: Metric, sum: &Value) {
    let f = |path: &[&str]| {
        let mut v = sum;
        for p in path {
            v = &v[*p];
        }
        v.as_f64().unwrap_or(0.0)
    };
    rec.publish_rate = f(&["publish_rate"]);
    rec.consume_rate = f(&["consume_rate"]);
    rec.broker_cpu_us_per_msg = f(&["broker", "cpu_us_per_msg"]);
    rec.client_cpu_us_per_msg = f(&["client", "cpu_us_per_msg"]);
    rec.p50_us = f(&["latency_us", "p50"]);
    rec.p99_us = f(&["latency_us", "p99"]);
    rec.p999_us = f(&["latency_us", "p999"]);
    rec.rss_kb = f(&["broker", "rss_kb_after"]) as u64;
    rec.elapsed_s = f(&["elapsed_s"]);
    rec.integrity = sum["integrity"]["verdict"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let consumers = f(&["consumers"]);
    rec.value = match metric {
        Metric::Throughput if consumers > 0.0 => rec.consume_rate,
        Metric::Throughput => rec.publish_rate,
        Metric::P99 => rec.p99_us,
        Metric::Rss => rec.rss_kb as f64,
    };
    rec.ok = true;
}

/// Runs `warren-perf run --json` and returns its summary object.
async fn run_child(
    exe: &Path,
    uri: &str,
    pid: Option<u32>,
    flags: &[String],
) -> Result<Value, String> {
    let rand = format!("{:08x}", rand::random::<u32>());
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("run")
        .arg("--uri")
        .arg(uri)
        .args(["--json", "--quiet"]);
    if let Some(p) = pid {
        cmd.arg("--broker-pid").arg(p.to_string());
    }
    cmd.args(flags.iter().map(|f| f.replace("{rand}", &rand)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = cmd
        .output()
        .await
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary = stdout
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["kind"] == "summary");
    if !out.status.success() {
        let why = stderr.trim().lines().last().unwrap_or("").to_string();
        return Err(format!("warren-perf run exited with {}: {why}", out.status));
    }
    summary.ok_or_else(|| "warren-perf run printed no summary".to_string())
}

/// Opens `n` connections with a channel each, lets the broker settle, and returns the
/// RSS of process `pid` while they are all open and idle.
async fn idle_connections(uri: &str, n: usize, pid: u32) -> Result<u64, String> {
    let uri = AmqpUri::parse(uri)?;
    let mut set = JoinSet::new();
    let mut clients = Vec::with_capacity(n);
    let mut next = 0;
    while clients.len() < n {
        while next < n && set.len() < 50 {
            let uri = uri.clone();
            set.spawn(async move {
                // A broker out of file descriptors accepts the TCP connection and never
                // answers: give up instead of waiting forever.
                tokio::time::timeout(Duration::from_secs(15), async {
                    let mut c = Client::connect(&uri, "warren-perf idle").await?;
                    c.open_channel(1).await?;
                    Ok::<Client, crate::client::Error>(c)
                })
                .await
                .map_err(|_| {
                    crate::client::Error::Protocol(
                        "no answer within 15 s (is the broker out of file descriptors?)".into(),
                    )
                })?
            });
            next += 1;
        }
        match set.join_next().await {
            Some(Ok(Ok(c))) => clients.push(c),
            Some(Ok(Err(e))) => {
                let opened = clients.len();
                for mut c in clients {
                    let _ = c.close(Duration::from_millis(200)).await;
                }
                return Err(format!("{opened} of {n} connections opened, then: {e}"));
            }
            Some(Err(e)) => return Err(format!("connect task: {e}")),
            None => break,
        }
    }
    // Let the broker finish setting them up (RabbitMQ starts several processes per
    // connection and channel) before reading its RSS.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss = procstat::sample(pid)
        .map_err(|e| format!("cannot read /proc/{pid}: {e}"))?
        .rss_kb;
    let mut closing = JoinSet::new();
    for mut c in clients {
        closing.spawn(async move {
            let _ = c.close(Duration::from_secs(5)).await;
        });
    }
    while closing.join_next().await.is_some() {}
    Ok(rss)
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn summarize(
    scenarios: &[Scenario],
    brokers: &[(String, BrokerInfo)],
    runs: &[RunRecord],
) -> Vec<SummaryRow> {
    let mut out = Vec::new();
    for s in scenarios {
        for (_, b) in brokers {
            let all: Vec<&RunRecord> = runs
                .iter()
                .filter(|r| r.scenario == s.name && r.broker == b.name)
                .collect();
            let ok: Vec<&RunRecord> = all.iter().copied().filter(|r| r.ok).collect();
            let col = |f: fn(&RunRecord) -> f64| {
                let mut v: Vec<f64> = ok.iter().map(|r| f(r)).collect();
                median(&mut v)
            };
            let mut values: Vec<f64> = ok.iter().map(|r| r.value).collect();
            out.push(SummaryRow {
                scenario: s.name.clone(),
                broker: b.name.clone(),
                runs: all.len(),
                failed: all.len() - ok.len(),
                min: values
                    .iter()
                    .copied()
                    .fold(f64::INFINITY, f64::min)
                    .min(f64::MAX),
                max: values.iter().copied().fold(0.0, f64::max),
                median: median(&mut values),
                broker_cpu_us_per_msg: col(|r| r.broker_cpu_us_per_msg),
                client_cpu_us_per_msg: col(|r| r.client_cpu_us_per_msg),
                p50_us: col(|r| r.p50_us),
                p99_us: col(|r| r.p99_us),
                p999_us: col(|r| r.p999_us),
                rss_kb: col(|r| r.rss_kb as f64),
            });
            if ok.is_empty() {
                out.last_mut().expect("just pushed").min = 0.0;
            }
        }
    }
    out
}

fn machine_meta() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    if let Some(model) = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
    {
        m.insert("cpu".into(), model.1.trim().to_string());
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    m.insert("cores".into(), cores.to_string());
    if let Some(kb) = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    {
        m.insert("memory".into(), format!("{:.1} GiB", kb as f64 / 1048576.0));
    }
    m.insert(
        "kernel".into(),
        read("/proc/sys/kernel/osrelease").trim().to_string(),
    );
    m.insert(
        "hostname".into(),
        read("/proc/sys/kernel/hostname").trim().to_string(),
    );
    m.insert("date".into(), utc_now());
    m.insert("warren_perf".into(), env!("CARGO_PKG_VERSION").to_string());
    m
}

/// "YYYY-MM-DD HH:MM:SS UTC" without a date crate (civil-from-days, Howard Hinnant).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we hand them.
    unsafe {
        let mut l: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

fn write_results(dir: &Path, r: &Results) -> Result<(), String> {
    let write = |name: &str, text: String| {
        std::fs::write(dir.join(name), text)
            .map_err(|e| format!("cannot write {}: {e}", dir.join(name).display()))
    };
    write(
        "results.json",
        serde_json::to_string_pretty(r).expect("serializable") + "\n",
    )?;
    let mut csv = String::from(
        "scenario,broker,rep,ok,value,publish_rate,consume_rate,broker_cpu_us_per_msg,\
         client_cpu_us_per_msg,p50_us,p99_us,p999_us,rss_kb,elapsed_s,noise_cores,load1,\
         attempts,integrity,error\n",
    );
    for x in &r.runs {
        let _ = writeln!(
            csv,
            "{},{},{},{},{:.1},{:.1},{:.1},{:.3},{:.3},{:.1},{:.1},{:.1},{},{:.3},{:.2},{:.2},{},{},{}",
            x.scenario,
            x.broker,
            x.rep,
            x.ok,
            x.value,
            x.publish_rate,
            x.consume_rate,
            x.broker_cpu_us_per_msg,
            x.client_cpu_us_per_msg,
            x.p50_us,
            x.p99_us,
            x.p999_us,
            x.rss_kb,
            x.elapsed_s,
            x.noise_cores,
            x.load1,
            x.attempts,
            csv_field(&x.integrity),
            csv_field(&x.error)
        );
    }
    write("runs.csv", csv)?;
    let mut csv = String::from(
        "scenario,broker,runs,failed,min,median,max,broker_cpu_us_per_msg,\
         client_cpu_us_per_msg,p50_us,p99_us,p999_us,rss_kb\n",
    );
    for s in &r.summary {
        let _ = writeln!(
            csv,
            "{},{},{},{},{:.1},{:.1},{:.1},{:.3},{:.3},{:.1},{:.1},{:.1},{:.0}",
            s.scenario,
            s.broker,
            s.runs,
            s.failed,
            s.min,
            s.median,
            s.max,
            s.broker_cpu_us_per_msg,
            s.client_cpu_us_per_msg,
            s.p50_us,
            s.p99_us,
            s.p999_us,
            s.rss_kb
        );
    }
    write("summary.csv", csv)?;
    write("summary.md", markdown(r))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A figure in the metric's unit, for tables.
fn fmt_value(metric: &str, v: f64) -> String {
    match metric {
        "msg/s" => crate::stats::group(v.round() as u64),
        "RSS (KiB)" => format!("{:.1} MiB", v / 1024.0),
        _ => crate::stats::micros(v),
    }
}

/// How the subject did against the baseline on one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Subject better by this factor (baseline / subject for lower-is-better figures).
    pub ratio: f64,
    /// Baseline CPU per message / subject CPU per message.
    pub cpu_ratio: f64,
    pub met: bool,
    pub text: String,
}

pub fn verdict(s: &ScenarioInfo, subject: &SummaryRow, base: &SummaryRow) -> Option<Verdict> {
    let target = s.target_ratio?;
    if subject.runs == subject.failed || base.runs == base.failed {
        return Some(Verdict {
            ratio: 0.0,
            cpu_ratio: 0.0,
            met: false,
            text: "no result (runs failed)".into(),
        });
    }
    let ratio = if s.higher_is_better {
        subject.median / base.median.max(1e-9)
    } else {
        base.median / subject.median.max(1e-9)
    };
    let cpu_ratio = base.broker_cpu_us_per_msg / subject.broker_cpu_us_per_msg.max(1e-9);
    let mut parts = Vec::new();
    let mut met = true;
    if let Some(abs) = s.target_absolute {
        if subject.median >= abs {
            parts.push(format!(
                "met: {} ≥ {}",
                fmt_value(&s.metric, subject.median),
                fmt_value(&s.metric, abs)
            ));
        } else {
            met = false;
            parts.push(format!(
                "missed: {} is {:.0}% of {}",
                fmt_value(&s.metric, subject.median),
                100.0 * subject.median / abs,
                fmt_value(&s.metric, abs)
            ));
        }
    } else if ratio >= target {
        parts.push(format!("met: {ratio:.1}x ≥ {target}x"));
    } else {
        met = false;
        parts.push(format!(
            "missed: {ratio:.1}x of {target}x ({:.0}% of the target)",
            100.0 * ratio / target
        ));
    }
    if s.target_cpu_too {
        if cpu_ratio >= target {
            parts.push(format!("CPU/msg met: 1/{cpu_ratio:.1}"));
        } else {
            met = false;
            parts.push(format!(
                "CPU/msg missed: 1/{cpu_ratio:.1} of 1/{target} ({:.0}%)",
                100.0 * cpu_ratio / target
            ));
        }
    }
    Some(Verdict {
        ratio,
        cpu_ratio,
        met,
        text: parts.join("; "),
    })
}

fn markdown(r: &Results) -> String {
    let mut md = String::new();
    let m = |k: &str| r.meta.get(k).cloned().unwrap_or_else(|| "?".into());
    let _ = writeln!(md, "# warren-perf compare, {}\n", m("date"));
    let _ = writeln!(
        md,
        "Generated by `warren-perf compare` (do not edit; re-run the script instead).\n"
    );
    let _ = writeln!(
        md,
        "- Machine: {} cores, {}, {}, Linux {}; broker and load tool share it",
        m("cores"),
        m("cpu"),
        m("memory"),
        m("kernel")
    );
    let _ = writeln!(
        md,
        "- Load average (1 min) at start / end: {} / {}; each run's own in runs.csv, with \
         `noise_cores` = CPU other processes used during it (runs over {} were repeated)",
        m("load1_start"),
        m("load1_end"),
        r.meta
            .get("max_noise")
            .cloned()
            .unwrap_or_else(|| "the limit".into())
    );
    for b in &r.brokers {
        let _ = writeln!(
            md,
            "- `{}`: {} at {}{}",
            b.name,
            b.product,
            b.uri,
            b.pid.map_or(String::new(), |p| format!(" (pid {p})"))
        );
    }
    for (k, v) in &r.meta {
        if ![
            "date",
            "cores",
            "cpu",
            "memory",
            "kernel",
            "load1_start",
            "load1_end",
            "max_noise",
        ]
        .contains(&k.as_str())
        {
            let _ = writeln!(md, "- {k}: {v}");
        }
    }
    let _ = writeln!(
        md,
        "\nEach point: median of {} repetitions (min / median / max shown), brokers \
         interleaved. Broker CPU is from `/proc/PID/stat` over the run (10 ms ticks).\n",
        m("repeat")
    );

    let row = |sc: &str, b: &str| {
        r.summary
            .iter()
            .find(|x| x.scenario == sc && x.broker == b)
            .cloned()
            .unwrap_or_default()
    };
    let with_targets: Vec<&ScenarioInfo> = r
        .scenarios
        .iter()
        .filter(|s| s.target_ratio.is_some())
        .collect();
    if !with_targets.is_empty() && r.subject != r.baseline {
        let _ = writeln!(
            md,
            "## Targets: {} against {}\n\n| scenario | figure | {} | {} | ratio | target | verdict |\n|---|---|---:|---:|---:|---|---|",
            r.subject, r.baseline, r.subject, r.baseline
        );
        for s in with_targets {
            let (a, b) = (row(&s.name, &r.subject), row(&s.name, &r.baseline));
            let Some(v) = verdict(s, &a, &b) else {
                continue;
            };
            let target = match s.target_absolute {
                Some(abs) => format!("≥ {}", fmt_value(&s.metric, abs)),
                None if s.target_cpu_too => {
                    format!(
                        "{}x, CPU/msg ≤ 1/{}",
                        s.target_ratio.unwrap_or(0.0),
                        s.target_ratio.unwrap_or(0.0)
                    )
                }
                None => format!("{}x", s.target_ratio.unwrap_or(0.0)),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {:.1}x{} | {} | {} |",
                s.name,
                s.metric,
                fmt_value(&s.metric, a.median),
                fmt_value(&s.metric, b.median),
                v.ratio,
                if s.target_cpu_too {
                    format!(" (CPU 1/{:.1})", v.cpu_ratio)
                } else {
                    String::new()
                },
                target,
                v.text
            );
        }
        md.push('\n');
    }

    let _ = writeln!(md, "## Every scenario\n");
    for s in &r.scenarios {
        let _ = writeln!(
            md,
            "### {}\n\n{} — `{}`\n\n| broker | {} min / median / max | broker µs/msg | warren-perf µs/msg | latency p50 / p99 / p99.9 | broker RSS | failed |\n|---|---|---:|---:|---|---:|---:|",
            s.name, s.title, s.flags, s.metric
        );
        for b in &r.brokers {
            let x = row(&s.name, &b.name);
            let _ = writeln!(
                md,
                "| {} | {} / {} / {} | {:.2} | {:.2} | {} / {} / {} | {:.1} MiB | {}/{} |",
                b.name,
                fmt_value(&s.metric, x.min),
                fmt_value(&s.metric, x.median),
                fmt_value(&s.metric, x.max),
                x.broker_cpu_us_per_msg,
                x.client_cpu_us_per_msg,
                crate::stats::micros(x.p50_us),
                crate::stats::micros(x.p99_us),
                crate::stats::micros(x.p999_us),
                x.rss_kb / 1024.0,
                x.failed,
                x.runs
            );
        }
        let errors: Vec<&RunRecord> = r
            .runs
            .iter()
            .filter(|x| x.scenario == s.name && !x.ok)
            .collect();
        for e in errors {
            let _ = writeln!(md, "\n- {} rep {} failed: {}", e.broker, e.rep, e.error);
        }
        md.push('\n');
    }
    let plots: Vec<&str> = [
        "seed-100",
        "seed-500",
        "seed-1000",
        "targets",
        "latency",
        "scaling",
        "cpu",
    ]
    .into_iter()
    .collect();
    let _ = writeln!(
        md,
        "Charts (`warren-perf plot`): {}",
        plots
            .iter()
            .map(|p| format!("[{p}]({p}.svg)"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_dates() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
        let d = utc_now();
        assert!(
            d.starts_with("20") && d.ends_with("UTC") && d.len() == 23,
            "{d}"
        );
    }

    fn info(higher: bool, ratio: f64, cpu: bool, abs: Option<f64>) -> ScenarioInfo {
        ScenarioInfo {
            name: "s".into(),
            group: "g".into(),
            x: 0.0,
            title: String::new(),
            metric: if higher {
                "msg/s".into()
            } else {
                "p99 latency (µs)".into()
            },
            higher_is_better: higher,
            flags: String::new(),
            target_ratio: Some(ratio),
            target_cpu_too: cpu,
            target_absolute: abs,
        }
    }

    fn row(median: f64, cpu: f64) -> SummaryRow {
        SummaryRow {
            runs: 3,
            median,
            broker_cpu_us_per_msg: cpu,
            ..Default::default()
        }
    }

    #[test]
    fn verdicts_say_by_how_much() {
        let v = verdict(
            &info(true, 5.0, true, None),
            &row(600.0, 2.0),
            &row(100.0, 20.0),
        )
        .unwrap();
        assert!(v.met, "{v:?}");
        assert_eq!(v.ratio, 6.0);
        let v = verdict(
            &info(true, 5.0, true, None),
            &row(300.0, 2.0),
            &row(100.0, 20.0),
        )
        .unwrap();
        assert!(!v.met);
        assert!(
            v.text.contains("3.0x of 5x (60% of the target)"),
            "{}",
            v.text
        );
        let v = verdict(
            &info(false, 3.0, false, None),
            &row(100.0, 0.0),
            &row(400.0, 0.0),
        )
        .unwrap();
        assert!(v.met && v.ratio == 4.0, "{v:?}");
        let v = verdict(
            &info(true, 1.0, false, Some(800_000.0)),
            &row(600_000.0, 0.0),
            &row(1.0, 0.0),
        )
        .unwrap();
        assert!(!v.met);
        assert!(v.text.contains("75% of 800,000"), "{}", v.text);
        let mut failed = row(1.0, 1.0);
        failed.failed = 3;
        assert!(
            !verdict(&info(true, 2.0, false, None), &failed, &row(1.0, 1.0))
                .unwrap()
                .met
        );
    }
}
