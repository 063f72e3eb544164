//! One connection's task: set the connection up with [`Client`], then run every producer
//! and consumer channel it carries in a single loop until told to stop.
//!
//! The loop is the whole hot path:
//! - **Publish**: fill the write buffer from the producers' [`PublishTemplate`]s, round
//!   robin, up to [`WRITE_TARGET`] bytes (so hundreds of 100-byte messages go out in one
//!   `write` syscall), within each producer's confirm window and rate.
//! - **Read**: one `read` into a large buffer, then scan every complete frame in place
//!   (`scan.rs`): deliveries are counted, their stamp turned into a latency sample, and
//!   acked (every `--multiple-ack` deliveries); confirms settle the producer's window.
//! - **Wait**: only when neither can make progress, for socket readiness, the rate
//!   limiter's next slot, or the stop signal.
//!
//! Counts reach the shared [`Counters`] once per loop turn, latencies the worker's own
//! [`LatencyCell`] under one uncontended lock per read; nothing is allocated per message.

use std::io::ErrorKind::WouldBlock;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use hdrhistogram::Histogram;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;
use warren_amqp_codec::frame::write_method;
use warren_amqp_codec::methods::*;
use warren_amqp_codec::{FieldTable, FrameType, Method};

use crate::cli::{Plan, Role};
use crate::client::{Client, Error, Result};
use crate::confirms::ConfirmTracker;
use crate::integrity::{Seen, Tracker};
use crate::payload::{now_ns, read_stamp, sequence};
use crate::publish::PublishTemplate;
use crate::scan;
use crate::stats::{Counters, LatencyCell};

/// Stop filling the write buffer past this many bytes: one `write` syscall's worth.
pub const WRITE_TARGET: usize = 128 * 1024;
/// Keep at least this much room for each `read`.
const READ_ROOM: usize = 128 * 1024;
/// Messages a producer may add before the next producer on the connection gets a turn.
const PRODUCER_TURN: u64 = 64;
/// How long a closing connection waits for `close-ok`.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Where the run is, as the main task announces it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Phase {
    Setup,
    /// Publishing starts; the instant is the run's time zero.
    Go(Instant),
    Stop,
}

/// What a worker shares with the main task.
pub struct Shared {
    pub plan: Arc<Plan>,
    pub counters: Arc<Counters>,
    pub done: Arc<Notify>,
    pub producers_total: usize,
    pub tracker: Arc<Tracker>,
}

struct Producer {
    index: u16,
    template: PublishTemplate,
    remaining: Option<u64>,
    sent: u64,
    /// msg/s, 0 = unlimited.
    rate: f64,
    window: u64,
    confirms: ConfirmTracker,
    done: bool,
}

impl Producer {
    /// How many messages may go now; sets `wake` when the rate limiter is the reason
    /// it is none.
    fn allowance(&self, t0: Instant, now: Instant, wake: &mut Option<Instant>) -> u64 {
        let mut n = self.remaining.unwrap_or(u64::MAX);
        if self.window > 0 {
            n = n.min(self.window.saturating_sub(self.confirms.outstanding()));
        }
        if n > 0 && self.rate > 0.0 {
            let due = (now.saturating_duration_since(t0).as_secs_f64() * self.rate) as u64 + 1;
            if due <= self.sent {
                let next = t0 + Duration::from_secs_f64(self.sent as f64 / self.rate);
                *wake = Some(wake.map_or(next, |w| w.min(next)));
                return 0;
            }
            n = n.min(due - self.sent);
        }
        n
    }
}

#[derive(Debug, Clone, Copy)]
enum Content {
    Idle,
    /// `basic.deliver` seen; its content header is next.
    Header(u64),
    Body {
        tag: u64,
        left: u64,
        first: bool,
    },
}

struct Consumer {
    index: u16,
    /// Index of the queue it consumes, for the integrity check.
    queue: u16,
    /// Stream mode: deliveries after which this consumer is done (and stops acking, so
    /// the broker stops sending), and how many it has had.
    target: Option<u64>,
    got: u64,
    /// Stream mode: the first and the latest `x-stream-offset` it got.
    first_offset: Option<u64>,
    last_offset: Option<u64>,
    /// The delivery in progress was flagged `redelivered`.
    redelivered: bool,
    content: Content,
    unacked: u32,
    /// Deliveries not yet added to the shared per-consumer count.
    delivered: u64,
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    Unused,
    Producer(usize),
    Consumer(usize),
}

struct Worker {
    producers: Vec<Producer>,
    consumers: Vec<Consumer>,
    /// Channel number -> role.
    slots: Vec<Slot>,
    wbuf: BytesMut,
    auto_ack: bool,
    multiple_ack: u32,
    blocked: bool,
    closing: bool,
    close_ok: bool,
    rr: usize,
    // Tallies not yet added to the shared counters.
    published: u64,
    confirmed: u64,
    nacked: u64,
    consumed: u64,
    consumed_bytes: u64,
    /// Deliveries of the current read batch, for the integrity tracker.
    seen: Vec<Seen>,
    /// Stream mode: every consumer gets every message, each carrying its offset.
    stream: bool,
    offset_errors: u64,
    shared: Arc<Shared>,
    latency: Arc<LatencyCell>,
}

/// Runs one connection: setup, `ready`, wait for [`Phase::Go`], the loop, close.
pub async fn run(
    name: String,
    roles: Vec<Role>,
    shared: Arc<Shared>,
    latency: Arc<LatencyCell>,
    ready: mpsc::Sender<std::result::Result<(), String>>,
    mut phase: watch::Receiver<Phase>,
) -> Result<()> {
    let plan = shared.plan.clone();
    let mut client = match setup(&name, &roles, &plan).await {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(format!("{name}: {e}"))).await;
            return Err(e);
        }
    };
    let _ = ready.send(Ok(())).await;
    let frame_max = client.frame_max;
    let t0 = loop {
        let now = *phase.borrow_and_update();
        match now {
            Phase::Go(t0) => break t0,
            Phase::Stop => return client.close(CLOSE_WAIT).await,
            Phase::Setup => {}
        }
        if phase.changed().await.is_err() {
            return Ok(());
        }
    };

    let args = &plan.args;
    let mut w = Worker {
        producers: Vec::new(),
        consumers: Vec::new(),
        slots: vec![Slot::Unused; roles.len() + 1],
        wbuf: BytesMut::with_capacity(2 * WRITE_TARGET),
        auto_ack: args.auto_ack,
        multiple_ack: args.multiple_ack,
        blocked: false,
        closing: false,
        close_ok: false,
        rr: 0,
        published: 0,
        confirmed: 0,
        nacked: 0,
        consumed: 0,
        consumed_bytes: 0,
        seen: Vec::new(),
        stream: plan.stream_offset.is_some(),
        offset_errors: 0,
        shared: shared.clone(),
        latency,
    };
    for (i, role) in roles.iter().enumerate() {
        let channel = i as u16 + 1;
        match *role {
            Role::Producer { index, count, rate } => {
                w.slots[channel as usize] = Slot::Producer(w.producers.len());
                w.producers.push(Producer {
                    index,
                    template: PublishTemplate::new(
                        channel,
                        &plan.exchange,
                        &plan.routing_key,
                        args.size,
                        args.persistent,
                        frame_max,
                    ),
                    remaining: count,
                    sent: 0,
                    rate,
                    window: args.confirm as u64,
                    confirms: ConfirmTracker::new(),
                    done: false,
                });
            }
            Role::Consumer { index, queue } => {
                w.slots[channel as usize] = Slot::Consumer(w.consumers.len());
                w.consumers.push(Consumer {
                    index,
                    queue,
                    target: plan
                        .stream_offset
                        .as_ref()
                        .and(plan.consume_target)
                        .map(|t| t / args.consumers as u64),
                    got: 0,
                    first_offset: None,
                    last_offset: None,
                    redelivered: false,
                    content: Content::Idle,
                    unacked: 0,
                    delivered: 0,
                });
            }
        }
    }
    let (stream, rbuf, _) = client.into_parts();
    w.run(stream, rbuf, t0, phase).await
}

/// Connects and opens every channel: confirm mode for producers, qos and consume for
/// consumers (so all consumers are registered before anyone publishes).
async fn setup(name: &str, roles: &[Role], plan: &Plan) -> Result<Client> {
    let args = &plan.args;
    let mut c = Client::connect(&plan.uri, name).await?;
    for (i, role) in roles.iter().enumerate() {
        let ch = i as u16 + 1;
        c.open_channel(ch).await?;
        match role {
            Role::Producer { .. } => {
                if args.confirm > 0 {
                    c.confirm_select(ch).await?;
                }
            }
            Role::Consumer { index, queue } => {
                if args.prefetch > 0 && !args.auto_ack {
                    c.qos(ch, args.prefetch).await?;
                }
                let tag = format!("warren-perf-c{index}");
                let mut arguments = FieldTable::new();
                if let Some(offset) = &plan.stream_offset {
                    arguments.insert("x-stream-offset", offset.clone());
                }
                c.consume(
                    ch,
                    &plan.queues[*queue as usize],
                    &tag,
                    args.auto_ack,
                    arguments,
                )
                .await?;
            }
        }
    }
    Ok(c)
}

impl Worker {
    async fn run(
        &mut self,
        stream: TcpStream,
        mut rbuf: BytesMut,
        t0: Instant,
        mut phase: watch::Receiver<Phase>,
    ) -> Result<()> {
        let mut close_deadline = None;
        // Frames stashed during setup are processed before the first read.
        self.process(&mut rbuf)?;
        loop {
            let wake = self.fill(t0, Instant::now());
            self.flush_tallies();
            if self.closing
                && (self.close_ok || close_deadline.is_some_and(|d| Instant::now() >= d))
            {
                return Ok(());
            }
            let interest = if self.wbuf.is_empty() {
                Interest::READABLE
            } else {
                Interest::READABLE | Interest::WRITABLE
            };
            let ready = tokio::select! {
                r = stream.ready(interest) => Some(r?),
                r = phase.changed(), if !self.closing => {
                    if r.is_err() || *phase.borrow() == Phase::Stop {
                        self.start_close();
                        close_deadline = Some(Instant::now() + CLOSE_WAIT);
                    }
                    None
                }
                _ = sleep_until(wake.or(close_deadline)), if wake.is_some() || close_deadline.is_some() => None,
            };
            let Some(ready) = ready else { continue };
            if ready.is_writable() && !self.wbuf.is_empty() {
                match stream.try_write(&self.wbuf) {
                    Ok(n) => self.wbuf.advance(n),
                    Err(e) if e.kind() == WouldBlock => {}
                    Err(_) if self.closing => return Ok(()),
                    Err(e) => return Err(e.into()),
                }
            }
            if ready.is_readable() || ready.is_read_closed() {
                if rbuf.capacity() - rbuf.len() < READ_ROOM {
                    let want = scan::wanted(&rbuf).unwrap_or(0).saturating_sub(rbuf.len());
                    rbuf.reserve(READ_ROOM.max(want));
                }
                match stream.try_read_buf(&mut rbuf) {
                    Ok(0) if self.closing => return Ok(()),
                    Ok(0) => {
                        return Err(Error::Protocol(
                            "the broker closed the connection without connection.close".into(),
                        ))
                    }
                    Ok(_) => {
                        if let Err(e) = self.process(&mut rbuf) {
                            // Best effort: a close-ok we owe the broker goes out first.
                            let _ = stream.try_write(&self.wbuf);
                            return Err(e);
                        }
                    }
                    Err(e) if e.kind() == WouldBlock => {}
                    Err(_) if self.closing => return Ok(()),
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }

    /// Appends publishes until the write buffer holds [`WRITE_TARGET`] bytes or no
    /// producer may send more; returns when the rate limiter next allows one.
    fn fill(&mut self, t0: Instant, now: Instant) -> Option<Instant> {
        let mut wake = None;
        if self.blocked || self.closing || self.producers.is_empty() {
            return wake;
        }
        let ts = now_ns();
        let n = self.producers.len();
        let mut progressed = true;
        while progressed && self.wbuf.len() < WRITE_TARGET {
            progressed = false;
            for k in 0..n {
                let p = &mut self.producers[(self.rr + k) % n];
                let allowed = p.allowance(t0, now, &mut wake).min(PRODUCER_TURN);
                let mut sent = 0;
                while sent < allowed && self.wbuf.len() < WRITE_TARGET {
                    p.template
                        .write(&mut self.wbuf, ts, sequence(p.index, p.sent));
                    p.sent += 1;
                    if p.window > 0 {
                        p.confirms.published(ts);
                    }
                    sent += 1;
                }
                if let Some(r) = &mut p.remaining {
                    *r -= sent;
                }
                self.published += sent;
                progressed |= sent > 0;
            }
            self.rr = (self.rr + 1) % n;
        }
        // A producer is done once everything it sent is on the wire and settled.
        if self.wbuf.is_empty() {
            for p in &mut self.producers {
                if !p.done && p.remaining == Some(0) && p.confirms.outstanding() == 0 {
                    p.done = true;
                    let c = &self.shared.counters;
                    if c.producers_done.fetch_add(1, Relaxed) + 1 == self.shared.producers_total {
                        self.shared.done.notify_one();
                    }
                }
            }
        }
        wake
    }

    fn flush_tallies(&mut self) {
        let c = &self.shared.counters;
        if self.published > 0 {
            c.published
                .fetch_add(std::mem::take(&mut self.published), Relaxed);
        }
        if self.confirmed > 0 {
            c.confirmed
                .fetch_add(std::mem::take(&mut self.confirmed), Relaxed);
        }
        if self.nacked > 0 {
            c.nacked
                .fetch_add(std::mem::take(&mut self.nacked), Relaxed);
        }
        for p in &self.producers {
            c.per_producer[p.index as usize].store(p.sent, Relaxed);
        }
        if self.offset_errors > 0 {
            c.offset_errors
                .fetch_add(std::mem::take(&mut self.offset_errors), Relaxed);
        }
        if self.consumed_bytes > 0 {
            c.consumed_bytes
                .fetch_add(std::mem::take(&mut self.consumed_bytes), Relaxed);
        }
        if self.consumed > 0 {
            let n = std::mem::take(&mut self.consumed);
            let total = c.consumed.fetch_add(n, Relaxed) + n;
            let again = c.duplicates.load(Relaxed) + c.redelivered_again.load(Relaxed);
            if self
                .shared
                .plan
                .consume_target
                .is_some_and(|t| total.saturating_sub(again) >= t)
            {
                self.shared.done.notify_one();
            }
            for k in &mut self.consumers {
                if k.delivered > 0 {
                    c.per_consumer[k.index as usize]
                        .fetch_add(std::mem::take(&mut k.delivered), Relaxed);
                }
                if let (Some(first), Some(last)) = (k.first_offset, k.last_offset) {
                    let [f, l] = &c.per_consumer_offsets[k.index as usize];
                    f.store(first, Relaxed);
                    l.store(last, Relaxed);
                }
            }
        }
    }

    fn start_close(&mut self) {
        self.closing = true;
        let m = ConnectionClose {
            reply_code: 200,
            reply_text: "warren-perf done".into(),
            ..Default::default()
        };
        write_method(&mut self.wbuf, 0, &m.into());
    }

    /// Handles every complete frame in `rbuf`, then drops them from it.
    fn process(&mut self, rbuf: &mut BytesMut) -> Result<()> {
        let now = now_ns();
        let latency = self.latency.clone();
        let mut e2e: Option<MutexGuard<'_, Histogram<u64>>> = None;
        let mut conf: Option<MutexGuard<'_, Histogram<u64>>> = None;
        let mut at = 0;
        while let Some((f, total)) = scan::peek(&rbuf[at..])? {
            at += total;
            if self.closing {
                if f.kind == FrameType::Method && f.channel == 0 {
                    self.slow_method(0, f.payload)?;
                }
                continue;
            }
            let slot = self
                .slots
                .get(f.channel as usize)
                .copied()
                .unwrap_or(Slot::Unused);
            match (f.kind, slot) {
                (FrameType::Method, _) => {
                    let ids = scan::method_ids(f.payload);
                    match slot {
                        Slot::Consumer(i) if ids == scan::BASIC_DELIVER => {
                            let (tag, redelivered) =
                                scan::deliver_fields(f.payload).ok_or_else(truncated)?;
                            let c = &mut self.consumers[i];
                            c.content = Content::Header(tag);
                            c.redelivered = redelivered;
                        }
                        Slot::Producer(i) if ids == scan::BASIC_ACK || ids == scan::BASIC_NACK => {
                            let (tag, multiple) =
                                scan::ack_fields(f.payload).ok_or_else(truncated)?;
                            let h = conf.get_or_insert_with(|| lock(&latency.confirm));
                            let n = self.producers[i].confirms.settle(tag, multiple, |sent| {
                                h.saturating_record(now.saturating_sub(sent));
                            });
                            if ids == scan::BASIC_ACK {
                                self.confirmed += n;
                            } else {
                                self.nacked += n;
                            }
                        }
                        _ => self.slow_method(f.channel, f.payload)?,
                    }
                }
                (FrameType::Header, Slot::Consumer(i)) => {
                    if let Content::Header(tag) = self.consumers[i].content {
                        if self.stream {
                            let c = &mut self.consumers[i];
                            match scan::stream_offset(f.payload) {
                                Some(o) if c.last_offset.is_none_or(|l| o > l) => {
                                    c.first_offset.get_or_insert(o);
                                    c.last_offset = Some(o);
                                }
                                _ => self.offset_errors += 1,
                            }
                        }
                        let size = scan::body_size(f.payload).ok_or_else(truncated)?;
                        if size == 0 {
                            self.delivered(f.channel, i, tag);
                        } else {
                            self.consumers[i].content = Content::Body {
                                tag,
                                left: size,
                                first: true,
                            };
                        }
                    }
                }
                (FrameType::Body, Slot::Consumer(i)) => {
                    if let Content::Body { tag, left, first } = self.consumers[i].content {
                        if first {
                            if let Some((sent, seq)) = read_stamp(f.payload) {
                                let h = e2e.get_or_insert_with(|| lock(&latency.end_to_end));
                                h.saturating_record(now.saturating_sub(sent));
                                let c = &self.consumers[i];
                                self.seen.push(Seen {
                                    // Streams: every consumer gets everything.
                                    queue: if self.stream { c.index } else { c.queue },
                                    seq,
                                    redelivered: c.redelivered,
                                });
                            }
                        }
                        self.consumed_bytes += f.payload.len() as u64;
                        let left = left.saturating_sub(f.payload.len() as u64);
                        if left == 0 {
                            self.delivered(f.channel, i, tag);
                        } else {
                            self.consumers[i].content = Content::Body {
                                tag,
                                left,
                                first: false,
                            };
                        }
                    }
                }
                _ => {}
            }
        }
        rbuf.advance(at);
        drop((e2e, conf));
        if !self.seen.is_empty() {
            let a = self.shared.tracker.apply(&self.seen);
            self.seen.clear();
            let c = &self.shared.counters;
            if a.duplicates > 0 {
                c.duplicates.fetch_add(a.duplicates, Relaxed);
            }
            if a.redelivered_again > 0 {
                c.redelivered_again.fetch_add(a.redelivered_again, Relaxed);
            }
            if a.out_of_order > 0 {
                c.out_of_order.fetch_add(a.out_of_order, Relaxed);
            }
        }
        Ok(())
    }

    /// A delivery is complete: count it, and ack as `--multiple-ack` says.
    #[inline]
    fn delivered(&mut self, channel: u16, i: usize, tag: u64) {
        self.consumed += 1;
        let c = &mut self.consumers[i];
        c.content = Content::Idle;
        c.delivered += 1;
        c.got += 1;
        if let Some(target) = c.target {
            if c.got >= target {
                // Done: no more credit, so the broker stops sending.
                if c.got == target {
                    let n = &self.shared.counters.consumers_done;
                    if n.fetch_add(1, Relaxed) + 1 == self.shared.plan.args.consumers {
                        self.shared.done.notify_one();
                    }
                }
                return;
            }
        }
        if self.auto_ack {
            return;
        }
        c.unacked += 1;
        if c.unacked >= self.multiple_ack {
            c.unacked = 0;
            let m = BasicAck {
                delivery_tag: tag,
                multiple: self.multiple_ack > 1,
            };
            write_method(&mut self.wbuf, channel, &m.into());
        }
    }

    /// Methods off the hot path, decoded in full by the codec.
    fn slow_method(&mut self, channel: u16, payload: &[u8]) -> Result<()> {
        let m = Method::decode(&bytes::Bytes::copy_from_slice(payload))?;
        match m {
            Method::ConnectionBlocked(_) if !self.blocked => {
                self.blocked = true;
                self.shared.counters.blocked.fetch_add(1, Relaxed);
            }
            Method::ConnectionUnblocked(_) if self.blocked => {
                self.blocked = false;
                self.shared.counters.blocked.fetch_sub(1, Relaxed);
            }
            Method::ConnectionCloseOk(_) if self.closing => self.close_ok = true,
            Method::ConnectionClose(c) => {
                write_method(&mut self.wbuf, 0, &ConnectionCloseOk {}.into());
                if self.closing {
                    // Both sides closed at once: their close is as good as our close-ok.
                    self.close_ok = true;
                    return Ok(());
                }
                return Err(Error::Closed {
                    channel: 0,
                    code: c.reply_code,
                    text: c.reply_text.to_string(),
                });
            }
            Method::ChannelClose(c) => {
                return Err(Error::Closed {
                    channel,
                    code: c.reply_code,
                    text: c.reply_text.to_string(),
                })
            }
            Method::BasicCancel(c) => {
                return Err(Error::Protocol(format!(
                    "the broker cancelled consumer {} (queue deleted?)",
                    c.consumer_tag
                )))
            }
            Method::ChannelFlow(f) => {
                write_method(
                    &mut self.wbuf,
                    channel,
                    &ChannelFlowOk { active: f.active }.into(),
                );
            }
            _ => {}
        }
        Ok(())
    }
}

fn truncated() -> Error {
    Error::Protocol("truncated frame payload".into())
}

fn lock(m: &std::sync::Mutex<Histogram<u64>>) -> MutexGuard<'_, Histogram<u64>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
