//! `warren-perf run`: the orchestration around the workers.
//!
//! 1. A control connection declares what the run needs (exchange if missing, the queue,
//!    the binding).
//! 2. One task per connection (`worker.rs`) connects and opens its channels; all
//!    consumers are registered before the main task says go.
//! 3. Every second the main task samples the counters, drains the workers' latency
//!    histograms and, with `--broker-pid`, the broker's CPU and RSS, and reports.
//! 4. The run ends when consumers have seen `--count` messages (or, without consumers,
//!    producers have sent and settled theirs), when `--duration` is up, on Ctrl-C, when
//!    nothing moved for `--stall-timeout` seconds, or when a connection fails.
//! 5. Workers close their connections, the control connection deletes what it created
//!    (unless `--keep`), and the summary goes to stdout.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cli::{Plan, Role};
use crate::client::Client;
use crate::integrity::Tracker;
use crate::procstat::{self, ProcSample};
use crate::stats::{
    new_histogram, BrokerCost, BrokerSample, ClientCost, Counters, Integrity, Latency, LatencyCell,
    MissingReport, Sample, Snapshot, StreamReport, Summary, NO_OFFSET,
};
use crate::worker::{self, Phase, Shared};

/// Exit status of a run that stopped making progress.
pub const EXIT_STALLED: i32 = 3;
/// Exit status of a run in which messages were lost or delivered twice.
pub const EXIT_INTEGRITY: i32 = 4;
/// Missing sequence numbers listed per (queue, producer) in the report.
const MISSING_EXAMPLES: usize = 5;

/// Whether every message sent reached every queue exactly once.
///
/// Checked when bodies carry stamps, the queues started empty, producers are part of the
/// run, and no queue argument makes the broker drop messages on purpose. Messages still
/// in the queues when a timed run stops are not lost: the queues' ready counts (read
/// after the workers closed, so unacknowledged deliveries are back) cover them. That
/// count may include a message delivered and requeued, so on a timed run up to
/// prefetch x consumers losses could hide behind requeues; a counted run has none.
async fn check_integrity(
    plan: &Plan,
    shared: &Shared,
    ctl: &mut Control,
    ended_by: &str,
    failed: bool,
) -> Integrity {
    let c = &shared.counters;
    let args = &plan.args;
    let mut out = Integrity {
        checked: false,
        duplicates: c.duplicates.load(Relaxed),
        redelivered_again: c.redelivered_again.load(Relaxed),
        distinct: shared.tracker.distinct(),
        ..Default::default()
    };
    let dropping_args = [
        "x-max-length",
        "x-max-length-bytes",
        "x-message-ttl",
        "x-expires",
    ];
    let skip = if !args.stamped() {
        Some("bodies under 16 bytes carry no sequence number")
    } else if args.consumers == 0 {
        Some("no consumers")
    } else if ctl.preexisting > 0 {
        Some("the queues held messages before the run")
    } else if failed {
        Some("the run failed")
    } else if plan
        .queue_args
        .iter()
        .any(|(k, _)| dropping_args.contains(&k.as_str()))
    {
        Some("queue arguments let the broker drop messages")
    } else {
        None
    };
    let sent: Vec<u64> = c.per_producer.iter().map(|p| p.load(Relaxed)).collect();
    if let (None, true) = (skip, args.producers > 0) {
        let nq = plan.queues.len() as u16;
        let mut left = None;
        for attempt in 0..10 {
            let missing = shared.tracker.missing(nq, &sent, MISSING_EXAMPLES);
            let total: u64 = missing.iter().map(|m| m.count).sum();
            // A counted run consumed everything it sent, or stalled: whatever is still
            // missing is gone. A timed run may have left messages queued.
            let queued: u64 = if ended_by == "count" || ended_by == "stalled" {
                0
            } else {
                match ctl.ready_counts(plan).await {
                    Some(v) => v.iter().sum(),
                    None => {
                        out.verdict = "not checked: cannot read the queues' message counts".into();
                        return out;
                    }
                }
            };
            let nacked = c.nacked.load(Relaxed);
            let lost = total.saturating_sub(queued).saturating_sub(nacked);
            left = Some(queued);
            out.checked = true;
            out.lost = lost;
            out.missing = missing
                .iter()
                .map(|m| MissingReport {
                    queue: plan.queues[m.queue as usize].clone(),
                    producer: m.producer,
                    count: m.count,
                    first: m.first.clone(),
                })
                .collect();
            if lost == 0 || attempt == 9 || ended_by == "count" || ended_by == "stalled" {
                break;
            }
            // A broker may still be routing the last publishes or requeueing.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        out.left_in_queues = left;
    }
    out.verdict = match (out.checked, skip) {
        (false, Some(why)) if out.duplicates == 0 => format!("not checked for loss: {why}"),
        (false, None) if out.duplicates == 0 => "not checked for loss: no producers".into(),
        _ => String::new(),
    };
    if out.verdict.is_empty() {
        let mut problems = Vec::new();
        if out.lost > 0 {
            let examples: Vec<String> = out
                .missing
                .iter()
                .map(|m| format!("{} p{} seq {:?}", m.queue, m.producer, m.first))
                .collect();
            problems.push(format!(
                "LOST {} message(s) (sent, never delivered: {})",
                out.lost,
                examples.join("; ")
            ));
        }
        if out.duplicates > 0 {
            problems.push(format!(
                "DUPLICATED {} delivery(ies) not flagged redelivered",
                out.duplicates
            ));
        }
        out.verdict = if problems.is_empty() {
            "ok: every message sent was delivered exactly once to each queue".into()
        } else {
            problems.join("; ")
        };
    }
    out
}

/// Stream mode: whether every consumer got every message exactly once, in order, each
/// with an `x-stream-offset` above the one before.
///
/// With producers, a counted run must have delivered everything each producer sent to
/// every consumer; a timed run stops with messages still on their way, so only the gaps
/// below what each consumer saw count (a stream delivers in order: what was skipped will
/// not come). A replay of messages published before the run is checked for gaps,
/// duplicates and order from where each consumer started.
fn check_stream_integrity(
    plan: &Plan,
    shared: &Shared,
    preexisting: u64,
    ended_by: &str,
    failed: bool,
) -> Integrity {
    let c = &shared.counters;
    let args = &plan.args;
    let mut out = Integrity {
        duplicates: c.duplicates.load(Relaxed),
        out_of_order: c.out_of_order.load(Relaxed),
        offset_errors: c.offset_errors.load(Relaxed),
        distinct: shared.tracker.distinct(),
        ..Default::default()
    };
    let starts_before_run = !matches!(
        plan.stream_offset.as_ref().and_then(|o| o.as_str()),
        Some("next")
    );
    let skip = if !args.stamped() {
        Some("bodies under 16 bytes carry no sequence number")
    } else if args.consumers == 0 {
        Some("no consumers")
    } else if failed {
        Some("the run failed")
    } else if args.producers > 0 && preexisting > 0 && starts_before_run {
        Some("the stream held messages before the run and consumers read them too")
    } else if plan
        .queue_args
        .iter()
        .any(|(k, _)| k.as_str() == "x-max-length-bytes" || k.as_str() == "x-max-age")
    {
        Some("stream retention may remove messages before they are read")
    } else {
        None
    };
    if skip.is_none() {
        let sent: Vec<u64> = c.per_producer.iter().map(|p| p.load(Relaxed)).collect();
        let counted = ended_by == "count" || ended_by == "stalled";
        let missing = if args.producers > 0 && counted {
            shared
                .tracker
                .missing(args.consumers as u16, &sent, MISSING_EXAMPLES)
        } else {
            shared.tracker.gaps(MISSING_EXAMPLES)
        };
        out.checked = true;
        out.lost = missing.iter().map(|m| m.count).sum();
        out.missing = missing
            .iter()
            .map(|m| MissingReport {
                queue: format!("consumer c{}", m.queue),
                producer: m.producer,
                count: m.count,
                first: m.first.clone(),
            })
            .collect();
    }
    let mut problems = Vec::new();
    if out.lost > 0 {
        let examples: Vec<String> = out
            .missing
            .iter()
            .map(|m| format!("{} p{} seq {:?}", m.queue, m.producer, m.first))
            .collect();
        problems.push(format!(
            "LOST {} message(s) (a consumer never got them: {})",
            out.lost,
            examples.join("; ")
        ));
    }
    if out.duplicates > 0 {
        problems.push(format!(
            "DUPLICATED {} delivery(ies) (a consumer got a message twice)",
            out.duplicates
        ));
    }
    if out.out_of_order > 0 {
        problems.push(format!(
            "OUT OF ORDER: {} delivery(ies) came after a later message of their producer",
            out.out_of_order
        ));
    }
    if out.offset_errors > 0 {
        problems.push(format!(
            "BAD OFFSETS: {} delivery(ies) without an x-stream-offset header above the \
             consumer's previous one",
            out.offset_errors
        ));
    }
    out.verdict = match (problems.is_empty(), skip) {
        (false, _) => problems.join("; "),
        (true, Some(why)) => format!("not checked for loss: {why}"),
        (true, None) if args.producers > 0 => {
            "ok: every consumer got every message sent exactly once, in order".into()
        }
        (true, None) => "ok: every consumer read without gaps, duplicates or reordering".into(),
    };
    out
}

/// Runs the plan; returns the process exit status.
pub async fn run(plan: Plan) -> Result<i32, String> {
    let plan = Arc::new(plan);
    let args = &plan.args;
    let mut ctl = Control::connect(&plan).await?;
    let producers_total = args.producers;
    let n_conns = plan.connections.len();
    if !args.quiet {
        eprintln!(
            "warren-perf: {} at {}, queue {}, {}p/{}c over {} connections, {} B messages",
            ctl.client.server,
            plan.uri,
            plan.queues.join(","),
            args.producers,
            args.consumers,
            n_conns,
            args.size
        );
        if !args.stamped() {
            eprintln!(
                "warren-perf: --size {} < 16: no room for a timestamp, latency is not measured",
                args.size
            );
        }
        if ctl.preexisting > 0 {
            eprintln!(
                "warren-perf: the queues already hold {} messages (not checked for loss \
                 or duplicates)",
                ctl.preexisting
            );
        }
    }

    let shared = Arc::new(Shared {
        plan: plan.clone(),
        counters: Arc::new(Counters::new(args.consumers, args.producers)),
        done: Arc::new(Notify::new()),
        producers_total,
        tracker: Arc::new(match plan.stream_offset {
            // A replay reads what earlier runs published: start where each consumer did.
            Some(_) => Tracker::ordered(args.producers == 0),
            None => Tracker::new(),
        }),
    });
    let (phase_tx, phase_rx) = watch::channel(Phase::Setup);
    let (ready_tx, mut ready_rx) = mpsc::channel(n_conns);
    let mut cells = Vec::with_capacity(n_conns);
    let mut workers = JoinSet::new();
    for (i, roles) in plan.connections.iter().enumerate() {
        let cell = LatencyCell::new();
        cells.push(cell.clone());
        let kinds: Vec<String> = roles
            .iter()
            .map(|r| match r {
                Role::Producer { index, .. } => format!("p{index}"),
                Role::Consumer { index, .. } => format!("c{index}"),
            })
            .collect();
        let name = format!("warren-perf {} ({})", i, kinds.join(","));
        workers.spawn(worker::run(
            name,
            roles.clone(),
            shared.clone(),
            cell,
            ready_tx.clone(),
            phase_rx.clone(),
        ));
    }
    drop(ready_tx);

    // Everyone connected and subscribed, or nobody runs.
    let mut setup_error = None;
    for _ in 0..n_conns {
        match ready_rx.recv().await {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                setup_error = Some(e);
                break;
            }
            None => {
                setup_error = Some("a connection task ended during setup".to_string());
                break;
            }
        }
    }
    if let Some(e) = setup_error {
        let _ = phase_tx.send(Phase::Stop);
        join_all(&mut workers).await;
        ctl.teardown(&plan).await;
        return Err(e);
    }

    let broker_before = args.broker_pid.and_then(|pid| procstat::sample(pid).ok());
    if let (Some(pid), None) = (args.broker_pid, broker_before) {
        eprintln!("warren-perf: cannot read /proc/{pid}: broker cost not reported");
    }
    let self_before = procstat::self_cpu();
    let t0 = Instant::now();
    let _ = phase_tx.send(Phase::Go(t0));

    let mut rep = Reporter::new(&plan, t0, broker_before);
    let mut ticker = tokio::time::interval_at(t0 + Duration::from_secs(1), Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let deadline = plan.duration.map(|d| t0 + Duration::from_secs_f64(d));
    let mut publish_end: Option<Instant> = None;
    let mut stalled_for = 0u64;
    let mut last_snap = Snapshot::default();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let ended_by: String;
    let mut failure: Option<String> = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let snap = shared.counters.snapshot();
                rep.tick(&shared.counters, snap, &cells);
                if snap == last_snap {
                    stalled_for += 1;
                    if args.stall_timeout > 0 && stalled_for >= args.stall_timeout {
                        eprintln!(
                            "warren-perf: nothing moved for {stalled_for} s (published {}, consumed {}); giving up",
                            snap.published, snap.consumed
                        );
                        ended_by = "stalled".into();
                        break;
                    }
                } else {
                    stalled_for = 0;
                }
                last_snap = snap;
            }
            _ = shared.done.notified() => {}
            _ = sleep_until(deadline) => {
                ended_by = "duration".into();
                break;
            }
            _ = &mut ctrl_c => {
                ended_by = "interrupted".into();
                break;
            }
            Some(res) = workers.join_next() => {
                failure = Some(match res {
                    Ok(Err(e)) => e.to_string(),
                    Ok(Ok(())) => "a connection task ended early".to_string(),
                    Err(e) => format!("a connection task panicked: {e}"),
                });
                ended_by = "error".into();
                break;
            }
        }
        let c = &shared.counters;
        if publish_end.is_none()
            && producers_total > 0
            && c.producers_done.load(Relaxed) == producers_total
        {
            publish_end = Some(Instant::now());
        }
        let again = c.duplicates.load(Relaxed) + c.redelivered_again.load(Relaxed);
        let consumed_enough = plan
            .consume_target
            .is_some_and(|t| c.consumed.load(Relaxed).saturating_sub(again) >= t);
        let finished = if plan.stream_offset.is_some() && args.consumers > 0 {
            // Every consumer has its share, not counting copies (a consumer that got
            // one is still owed a message).
            consumed_enough && c.consumers_done.load(Relaxed) == args.consumers
        } else if args.consumers > 0 {
            consumed_enough
        } else {
            publish_end.is_some()
        };
        if finished {
            ended_by = "count".into();
            break;
        }
    }
    if ended_by == "count" && args.await_queued && args.consumers == 0 {
        match await_queued(&plan, &shared.counters, &mut ctl).await {
            Ok(()) => publish_end = Some(Instant::now()),
            Err(e) => {
                eprintln!("warren-perf: {e}");
                failure = Some(e);
            }
        }
    }
    let end = Instant::now();
    let self_after = procstat::self_cpu();
    let broker_after = args.broker_pid.and_then(|pid| procstat::sample(pid).ok());
    let _ = phase_tx.send(Phase::Stop);
    if let Some(e) = &failure {
        eprintln!("warren-perf: {e}");
    }
    for e in join_all(&mut workers).await {
        eprintln!("warren-perf: while closing: {e}");
    }
    let integrity = if plan.stream_offset.is_some() {
        check_stream_integrity(
            &plan,
            &shared,
            ctl.preexisting,
            &ended_by,
            failure.is_some(),
        )
    } else {
        check_integrity(&plan, &shared, &mut ctl, &ended_by, failure.is_some()).await
    };
    ctl.teardown(&plan).await;

    let snap = shared.counters.snapshot();
    let summary = rep.summary(
        &ctl.client.server,
        &shared.counters,
        snap,
        end,
        publish_end,
        &cells,
        (broker_before, broker_after),
        self_after.saturating_sub(self_before),
        ended_by,
        integrity,
    );
    if args.json {
        println!("{}", serde_json::to_string(&summary).expect("serializable"));
    } else {
        print!("{}", summary.table());
    }
    if !summary.integrity.ok() {
        eprintln!("warren-perf: {}", summary.integrity.verdict);
    }
    Ok(match (failure, summary.ended_by.as_str()) {
        (Some(_), _) => 1,
        _ if !summary.integrity.ok() => EXIT_INTEGRITY,
        (None, "stalled") => EXIT_STALLED,
        _ => 0,
    })
}

/// Polls the queues until they hold every message published (each queue a copy).
async fn await_queued(plan: &Plan, counters: &Counters, ctl: &mut Control) -> Result<(), String> {
    let want = counters.published.load(Relaxed) + ctl.preexisting;
    let mut last = 0;
    let mut last_change = Instant::now();
    loop {
        let counts = ctl
            .ready_counts(plan)
            .await
            .ok_or("--await-queued: cannot read the queues' message counts")?;
        if counts.iter().all(|&n| n >= want) {
            return Ok(());
        }
        let least = counts.iter().copied().min().unwrap_or(0);
        if least != last {
            (last, last_change) = (least, Instant::now());
        } else if plan.args.stall_timeout > 0
            && last_change.elapsed() > Duration::from_secs(plan.args.stall_timeout)
        {
            return Err(format!(
                "--await-queued: the queues hold {least} of {want} messages and stopped growing"
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Waits (bounded) for every worker; returns their errors.
async fn join_all(workers: &mut JoinSet<crate::client::Result<()>>) -> Vec<String> {
    let mut errors = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, workers.join_next()).await {
            Ok(Some(Ok(Ok(())))) => {}
            Ok(Some(Ok(Err(e)))) => errors.push(e.to_string()),
            Ok(Some(Err(e))) => errors.push(format!("task failed: {e}")),
            Ok(None) => break,
            Err(_) => {
                errors.push(format!(
                    "{} connections did not close in time",
                    workers.len()
                ));
                workers.abort_all();
                break;
            }
        }
    }
    errors
}

/// The control connection: declares before the run, deletes after it.
struct Control {
    client: Client,
    channel: u16,
    created_queues: Vec<String>,
    created_exchange: bool,
    /// Messages the queues held before the run.
    preexisting: u64,
}

impl Control {
    async fn connect(plan: &Plan) -> Result<Control, String> {
        let err = |what: &str, e: crate::client::Error| format!("{what}: {e}");
        let mut client = Client::connect(&plan.uri, "warren-perf control")
            .await
            .map_err(|e| err(&format!("cannot connect to {}", plan.uri), e))?;
        let mut ch = 1;
        client
            .open_channel(ch)
            .await
            .map_err(|e| err("channel.open", e))?;
        let mut created_exchange = false;
        if !plan.exchange.is_empty() {
            let x = &plan.exchange;
            match client
                .exchange_declare(ch, x, &plan.exchange_type, true, false)
                .await
            {
                Ok(()) => {}
                Err(e) if e.code() == Some(404) => {
                    ch += 1;
                    client
                        .open_channel(ch)
                        .await
                        .map_err(|e| err("channel.open", e))?;
                    client
                        .exchange_declare(ch, x, &plan.exchange_type, false, plan.durable)
                        .await
                        .map_err(|e| err(&format!("exchange.declare {x:?}"), e))?;
                    created_exchange = true;
                }
                Err(e) => return Err(err(&format!("exchange.declare {x:?}"), e)),
            }
        }
        let mut ctl = Control {
            client,
            channel: ch,
            created_queues: Vec::new(),
            created_exchange,
            preexisting: 0,
        };
        for q in &plan.queues {
            if let Err(e) = ctl.declare_queue(plan, q).await {
                ctl.teardown(plan).await;
                return Err(e);
            }
        }
        Ok(ctl)
    }

    /// Declares (or finds) queue `q` and binds it to the run's exchange.
    async fn declare_queue(&mut self, plan: &Plan, q: &str) -> Result<(), String> {
        let err = |what: &str, e: crate::client::Error| format!("{what}: {e}");
        let declare_err = |e| err(&format!("queue.declare {q:?}"), e);
        let existing = if plan.generated_queue {
            None
        } else {
            match self
                .client
                .queue_declare(self.channel, q, true, false, Default::default())
                .await
            {
                Ok(n) => Some(n),
                Err(e) if e.code() == Some(404) => {
                    // The failed passive declare closed the channel.
                    self.channel += 1;
                    self.client
                        .open_channel(self.channel)
                        .await
                        .map_err(|e| err("channel.open", e))?;
                    None
                }
                Err(e) => return Err(declare_err(e)),
            }
        };
        match existing {
            Some(n) => self.preexisting += n as u64,
            None => {
                let n = self
                    .client
                    .queue_declare(
                        self.channel,
                        q,
                        false,
                        plan.durable,
                        plan.queue_args.clone(),
                    )
                    .await
                    .map_err(declare_err)?;
                self.preexisting += n as u64;
                self.created_queues.push(q.to_string());
            }
        }
        if !plan.exchange.is_empty() {
            self.client
                .queue_bind(self.channel, q, &plan.exchange, &plan.routing_key)
                .await
                .map_err(|e| err("queue.bind", e))?;
        }
        Ok(())
    }

    /// Messages ready in each of the run's queues (after the workers closed, so
    /// unacknowledged deliveries are back in them); `None` if any cannot be read.
    async fn ready_counts(&mut self, plan: &Plan) -> Option<Vec<u64>> {
        let mut v = Vec::with_capacity(plan.queues.len());
        for q in &plan.queues {
            let n = self
                .client
                .queue_declare(self.channel, q, true, false, Default::default())
                .await
                .ok()?;
            v.push(n as u64);
        }
        Some(v)
    }

    /// Deletes what we created (unless `--keep`), then closes. Failures are warnings.
    async fn teardown(&mut self, plan: &Plan) {
        let ch = self.channel;
        if plan.args.delete_queues {
            self.created_queues = plan.queues.clone();
        }
        if !plan.args.keep {
            for q in std::mem::take(&mut self.created_queues) {
                if let Err(e) = self.client.queue_delete(ch, &q).await {
                    eprintln!("warren-perf: could not delete queue {q:?}: {e}");
                }
            }
            if self.created_exchange {
                if let Err(e) = self.client.exchange_delete(ch, &plan.exchange).await {
                    eprintln!(
                        "warren-perf: could not delete exchange {:?}: {e}",
                        plan.exchange
                    );
                }
                self.created_exchange = false;
            }
        }
        let _ = self.client.close(Duration::from_secs(2)).await;
    }
}

/// Per-second sampling and the totals behind the summary.
struct Reporter {
    plan: Arc<Plan>,
    json: bool,
    quiet: bool,
    confirm: bool,
    consumers: bool,
    broker_pid: Option<u32>,
    t0: Instant,
    last_t: Instant,
    last: Snapshot,
    last_broker: Option<ProcSample>,
    e2e: Histogram<u64>,
    confirm_lat: Histogram<u64>,
    iv_e2e: Histogram<u64>,
    iv_confirm: Histogram<u64>,
}

impl Reporter {
    fn new(plan: &Arc<Plan>, t0: Instant, broker: Option<ProcSample>) -> Reporter {
        Reporter {
            plan: plan.clone(),
            json: plan.args.json,
            quiet: plan.args.quiet,
            confirm: plan.args.confirm > 0,
            consumers: plan.args.consumers > 0,
            broker_pid: plan.args.broker_pid,
            t0,
            last_t: t0,
            last: Snapshot::default(),
            last_broker: broker,
            e2e: new_histogram(),
            confirm_lat: new_histogram(),
            iv_e2e: new_histogram(),
            iv_confirm: new_histogram(),
        }
    }

    fn drain(&mut self, cells: &[Arc<LatencyCell>]) {
        for c in cells {
            c.drain_into(&mut self.iv_e2e, &mut self.iv_confirm);
        }
        self.e2e.add(&self.iv_e2e).expect("same bounds");
        self.confirm_lat.add(&self.iv_confirm).expect("same bounds");
    }

    fn tick(&mut self, counters: &Counters, snap: Snapshot, cells: &[Arc<LatencyCell>]) {
        let now = Instant::now();
        let dt = now.duration_since(self.last_t).as_secs_f64().max(1e-9);
        self.drain(cells);
        let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / dt;
        let broker = self
            .broker_pid
            .and_then(|pid| procstat::sample(pid).ok())
            .map(|s| {
                let cpu = self.last_broker.map_or(0.0, |b| {
                    s.cpu.saturating_sub(b.cpu).as_secs_f64() / dt * 100.0
                });
                self.last_broker = Some(s);
                BrokerSample {
                    cpu_percent: cpu,
                    rss_kb: s.rss_kb,
                }
            });
        let settled = snap.confirmed + snap.nacked;
        let sample = Sample {
            kind: "sample",
            t: now.duration_since(self.t0).as_secs_f64(),
            published: snap.published,
            consumed: snap.consumed,
            publish_rate: rate(snap.published, self.last.published),
            consume_rate: rate(snap.consumed, self.last.consumed),
            confirm_rate: self
                .confirm
                .then(|| rate(settled, self.last.confirmed + self.last.nacked)),
            in_flight: if self.consumers {
                snap.published as i64 - snap.consumed as i64
            } else {
                snap.published as i64 - settled as i64
            },
            unconfirmed: self.confirm.then(|| snap.published.saturating_sub(settled)),
            blocked_connections: counters.blocked.load(Relaxed),
            latency_us: Latency::of(&self.iv_e2e),
            confirm_latency_us: Latency::of(&self.iv_confirm),
            broker,
        };
        self.iv_e2e.reset();
        self.iv_confirm.reset();
        self.last = snap;
        self.last_t = now;
        if !self.quiet {
            eprintln!("{}", sample.progress_line());
        }
        if self.json {
            println!("{}", serde_json::to_string(&sample).expect("serializable"));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn summary(
        &mut self,
        server: &str,
        counters: &Counters,
        snap: Snapshot,
        end: Instant,
        publish_end: Option<Instant>,
        cells: &[Arc<LatencyCell>],
        (before, after): (Option<ProcSample>, Option<ProcSample>),
        client_cpu: Duration,
        ended_by: String,
        integrity: Integrity,
    ) -> Summary {
        self.drain(cells);
        let t0 = self.t0;
        let elapsed = end.duration_since(t0).as_secs_f64().max(1e-9);
        let publish_elapsed = publish_end
            .map_or(elapsed, |p| p.duration_since(t0).as_secs_f64())
            .max(1e-9);
        // Per message moved: consumed if anyone consumed, else published.
        let moved = if snap.consumed > 0 {
            snap.consumed
        } else {
            snap.published
        };
        let per_msg = |secs: f64| {
            if moved == 0 {
                0.0
            } else {
                secs * 1e6 / moved as f64
            }
        };
        let broker = match (self.broker_pid, before, after) {
            (Some(pid), Some(b), Some(a)) => {
                let cpu = a.cpu.saturating_sub(b.cpu).as_secs_f64();
                Some(BrokerCost {
                    pid,
                    cpu_seconds: cpu,
                    cpu_us_per_msg: per_msg(cpu),
                    rss_kb_before: b.rss_kb,
                    rss_kb_after: a.rss_kb,
                    peak_rss_kb_before: b.hwm_kb,
                    peak_rss_kb_after: a.hwm_kb,
                })
            }
            _ => None,
        };
        let cpu = client_cpu.as_secs_f64();
        let plan = &self.plan;
        let a = &plan.args;
        Summary {
            kind: "summary",
            broker_product: server.to_string(),
            uri: plan.uri.to_string(),
            queue: plan.queues.join(","),
            producers: a.producers,
            consumers: a.consumers,
            connections: plan.connections.len(),
            size: a.size,
            count: plan.count.or(plan.consume_target),
            duration_s: plan.duration,
            rate_limit: a.rate,
            persistent: a.persistent,
            confirm: a.confirm,
            prefetch: a.prefetch,
            auto_ack: a.auto_ack,
            multiple_ack: a.multiple_ack,
            elapsed_s: elapsed,
            published: snap.published,
            confirmed: snap.confirmed,
            nacked: snap.nacked,
            consumed: snap.consumed,
            consumed_per_consumer: counters
                .per_consumer
                .iter()
                .map(|c| c.load(Relaxed))
                .collect(),
            publish_rate: snap.published as f64 / publish_elapsed,
            consume_rate: snap.consumed as f64 / elapsed,
            consume_rate_per_consumer: counters
                .per_consumer
                .iter()
                .map(|c| c.load(Relaxed) as f64 / elapsed)
                .collect(),
            consume_mb_per_s: counters.consumed_bytes.load(Relaxed) as f64 / elapsed / 1e6,
            stream: plan.stream_offset.as_ref().map(|o| {
                let offsets = |k: usize| {
                    counters
                        .per_consumer_offsets
                        .iter()
                        .map(|o| Some(o[k].load(Relaxed)).filter(|&v| v != NO_OFFSET))
                        .collect()
                };
                StreamReport {
                    start: match o.as_i64() {
                        Some(n) => n.to_string(),
                        None => o.as_str().unwrap_or("?").to_string(),
                    },
                    first_offsets: offsets(0),
                    last_offsets: offsets(1),
                }
            }),
            latency_us: Latency::of(&self.e2e),
            confirm_latency_us: Latency::of(&self.confirm_lat),
            broker,
            client: ClientCost {
                cpu_seconds: cpu,
                cpu_us_per_msg: per_msg(cpu),
                cpu_seconds_per_million: per_msg(cpu),
            },
            ended_by,
            integrity,
        }
    }
}
